//! A panic while a response body is being sent. `CatchPanicLayer` only
//! sees the handler's future: once the handler has answered, the body is
//! polled by hyper, and a panic there unwinds through the connection task,
//! which drops the connection with no word in the log but the panic hook's.
//! [`guard_bodies`] wraps every response body in a [`GuardedBody`] that
//! catches such a panic, logs it with the route, counts it in `/metrics`
//! (`flightdeck_body_panics_total{route}`) and ends the body with an error,
//! so hyper closes the response as failed (a chunked body without its last
//! chunk: clients see it cut short rather than complete).

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The error a guarded body ends with after its inner body panicked.
#[derive(Debug, thiserror::Error)]
#[error("the response body panicked while it was being sent")]
pub struct BodyPanicked;

/// Wraps the response's body in a [`GuardedBody`] labelled with the
/// request's route pattern (`unmatched` when no route matched).
pub(crate) async fn guard_bodies(request: Request, next: Next) -> Response {
    let route: Arc<str> = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .into();
    let response = next.run(request).await;
    response.map(|body| Body::new(GuardedBody::new(body, route)))
}

/// A body that turns a panic in its inner body into an error, logged and
/// counted once, and that never polls its inner body again after it ended,
/// failed or panicked.
pub struct GuardedBody<B> {
    inner: B,
    route: Arc<str>,
    ended: bool,
}

impl<B> GuardedBody<B> {
    pub fn new(inner: B, route: Arc<str>) -> Self {
        GuardedBody {
            inner,
            route,
            ended: false,
        }
    }
}

impl<B> HttpBody for GuardedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        // The inner body is never touched again after a panic (`ended`),
        // so whatever state the panic left it in cannot be observed.
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| {
            Pin::new(&mut this.inner).poll_frame(cx)
        }));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Some(Ok(frame)))) => Poll::Ready(Some(Ok(frame))),
            Ok(Poll::Ready(Some(Err(error)))) => {
                this.ended = true;
                Poll::Ready(Some(Err(error.into())))
            }
            Ok(Poll::Ready(None)) => {
                this.ended = true;
                Poll::Ready(None)
            }
            Err(payload) => {
                this.ended = true;
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(not a string)".to_owned());
                tracing::error!(
                    route = %this.route,
                    panic = %message,
                    "a response body panicked; the response was cut short"
                );
                crate::metrics::global().body_panic(&this.route);
                Poll::Ready(Some(Err(BodyPanicked.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.ended {
            SizeHint::with_exact(0)
        } else {
            self.inner.size_hint()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// Two data frames, then a panic on the third poll.
    struct PanicsOnThird(u8);

    impl HttpBody for PanicsOnThird {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0 += 1;
            if self.0 > 2 {
                panic!("poll number {} of a test body", self.0);
            }
            Poll::Ready(Some(Ok(Frame::data(Bytes::from(format!(
                "chunk {}\n",
                self.0
            ))))))
        }
    }

    fn panics_counted(route: &str) -> u64 {
        let mut out = String::new();
        crate::metrics::global().render_counters(&mut out);
        let line = format!("flightdeck_body_panics_total{{route=\"{route}\"}} ");
        out.lines()
            .find_map(|l| l.strip_prefix(line.as_str()))
            .map_or(0, |n| n.parse().unwrap())
    }

    #[tokio::test]
    async fn a_body_that_panics_ends_with_an_error_is_counted_and_is_not_polled_again() {
        let route = "/test/body-guard/{panics}";
        let before = panics_counted(route);
        let mut body = GuardedBody::new(PanicsOnThird(0), route.into());

        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        let second = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(
            (&first[..], &second[..]),
            (&b"chunk 1\n"[..], &b"chunk 2\n"[..])
        );

        let error = body.frame().await.unwrap().unwrap_err();
        assert!(error.is::<BodyPanicked>(), "{error}");
        assert_eq!(panics_counted(route), before + 1);

        // Ended: the inner body (which would panic again) is left alone.
        assert!(body.is_end_stream());
        assert!(body.frame().await.is_none());
        assert!(body.frame().await.is_none());
        assert_eq!(panics_counted(route), before + 1, "counted once");
    }

    #[tokio::test]
    async fn a_router_answers_with_a_body_cut_short_and_counted_when_the_body_panics() {
        use axum::routing::get;
        use tower::ServiceExt;
        let route = "/test/body-guard/streamed";
        let before = panics_counted(route);
        let app = axum::Router::new()
            .route(route, get(|| async { Body::new(PanicsOnThird(0)) }))
            .layer(axum::middleware::from_fn(guard_bodies));
        let response = app
            .oneshot(http::Request::get(route).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "the head was sent before the panic");
        let collected = response.into_body().collect().await;
        assert!(
            collected.is_err(),
            "the body ends with an error, not as complete"
        );
        assert_eq!(panics_counted(route), before + 1);
    }

    #[tokio::test]
    async fn a_body_that_ends_is_passed_through_whole_and_stays_ended() {
        let mut body = GuardedBody::new(Body::from("whole"), "/test/body-guard/whole".into());
        let bytes = (&mut body).collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"whole");
        assert!(body.frame().await.is_none());
    }
}
