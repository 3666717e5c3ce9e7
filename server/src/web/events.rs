//! `GET /events`: server-sent events that tell signed-in browsers what
//! changed, so live pages refetch it. The sync sends a [`Change`] into the
//! [`AppState`]'s sender after it stores new data; every open stream gets it
//! as `event: change` with `{"environment": "...", "what": "..."}`.

use super::{AppState, Caller};
use axum::Extension;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, FusedStream, StreamExt};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// How many changes a slow reader may fall behind before it is told to
/// refetch everything instead.
const BACKLOG: usize = 256;

/// How often an idle stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The environment name of a change that concerns every environment.
pub const ALL: &str = "*";

/// Something the panel's data of one environment changed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The environment's name, or [`ALL`].
    pub environment: String,
    /// What changed: `deploys`, `runs`, `commits`, `database`, `sync`, …
    pub what: String,
}

impl Change {
    pub fn new(environment: impl Into<String>, what: impl Into<String>) -> Self {
        Self {
            environment: environment.into(),
            what: what.into(),
        }
    }
}

/// The sender the sync announces changes on. Sending with no stream open
/// is fine (the error only says nobody listens).
pub fn changes() -> broadcast::Sender<Change> {
    broadcast::channel(BACKLOG).0
}

/// Streams changes to a signed-in caller; anyone else gets 401 (audited).
pub(crate) async fn events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Response {
    if let Err(error) = state
        .control
        .signed_in(caller.actor.as_ref(), "/events", &caller.meta)
        .await
    {
        return match error {
            crate::control::ControlError::Unauthorized => {
                (StatusCode::UNAUTHORIZED, "sign in first\n").into_response()
            }
            other => {
                tracing::error!(error = %other, "could not check the caller of /events");
                (StatusCode::INTERNAL_SERVER_ERROR, "try again later\n").into_response()
            }
        };
    }
    Sse::new(change_events(
        state.changes.subscribe(),
        state.closing.subscribe(),
    ))
    .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
    .into_response()
}

/// The receiver as SSE events; a reader that fell behind gets one change
/// for [`ALL`] in place of what it missed. It ends when the sender goes or
/// `closing` turns true (the server is stopping: graceful shutdown waits
/// for every response to end, and this one would not by itself). Fused:
/// once ended it keeps answering `None` (a bare `unfold` panics when a body
/// polls it again after its end).
fn change_events(
    receiver: broadcast::Receiver<Change>,
    mut closing: watch::Receiver<bool>,
) -> impl FusedStream<Item = Result<Event, Infallible>> {
    let closed = async move {
        // An error means the sender is gone: the server is gone too.
        let _ = closing.wait_for(|closing| *closing).await;
    };
    stream::unfold(receiver, |mut receiver| async move {
        let change = match receiver.recv().await {
            Ok(change) => change,
            Err(broadcast::error::RecvError::Lagged(_)) => Change::new(ALL, "all"),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        let event = Event::default()
            .event("change")
            .json_data(&change)
            .unwrap_or_else(|_| Event::default().event("change").data("{}"));
        Some((Ok(event), receiver))
    })
    .take_until(closed)
    .fuse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_change_stream_ends_when_the_sender_goes_and_stays_ended() {
        let sender = changes();
        let closing = watch::Sender::new(false);
        let mut events = std::pin::pin!(change_events(sender.subscribe(), closing.subscribe()));
        sender.send(Change::new("production", "deploys")).unwrap();
        drop(sender);
        assert!(events.next().await.is_some(), "the change sent before");
        for _ in 0..3 {
            assert!(events.next().await.is_none(), "ended, and still ended");
        }
    }

    #[tokio::test]
    async fn the_change_stream_ends_when_the_server_starts_closing() {
        let sender = changes();
        let closing = watch::Sender::new(false);
        let mut events = std::pin::pin!(change_events(sender.subscribe(), closing.subscribe()));
        sender.send(Change::new("production", "deploys")).unwrap();
        assert!(events.next().await.is_some(), "open while the server runs");
        closing.send_replace(true);
        // The sender is still there: only the closing ends the stream.
        assert!(events.next().await.is_none(), "ended on closing");
        assert!(events.next().await.is_none(), "and still ended");
        drop(sender);
    }
}
