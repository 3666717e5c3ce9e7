//! Who is calling and from where, resolved once per request.

use super::AppState;
use crate::audit::RequestMeta;
use crate::identity::{Actor, random_id};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::Method;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tower_sessions::Session;

/// Session keys.
pub(crate) const USER_ID: &str = "uid";
pub(crate) const SIGNED_IN_AT: &str = "signed_in_at";

/// The caller of this request, put in the request's extensions.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Option<Actor>,
    pub meta: RequestMeta,
}

/// Resolves the session to an actor (if its account is still enabled and
/// the session is younger than the absolute timeout) and records the
/// request's id, address and user agent.
pub(crate) async fn identify(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let traced = request.extensions().get::<Traced>().cloned();
    let meta = RequestMeta {
        request_id: traced.as_ref().map(|t| t.id.clone()),
        ip: request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string()),
        user_agent: request
            .headers()
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(300).collect()),
    };
    let session = request.extensions().get::<Session>().cloned();
    let mut actor = match session {
        Some(session) => session_actor(&state, &session).await,
        None => None,
    };
    if actor.is_none()
        && let Some(token) = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
    {
        let target = format!("{} {}", request.method(), request.uri().path());
        actor = match state
            .control
            .token_actor(token.trim(), &meta, &target)
            .await
        {
            Ok(actor) => actor,
            Err(error) => {
                tracing::error!(%error, "could not check an API token");
                None
            }
        };
    }
    if let (Some(traced), Some(actor)) = (&traced, &actor)
        && let Some(span) = traced.span.get()
    {
        span.record("actor", actor.name.as_str());
    }
    request.extensions_mut().insert(Caller { actor, meta });
    next.run(request).await
}

/// The request's id, and its span once [`request_span`] made it; put in
/// its extensions by [`trace_ids`]. The span is kept here rather than taken
/// from `Span::current()`, which inside the session layer is that layer's.
#[derive(Clone)]
struct Traced {
    id: String,
    span: Arc<OnceLock<tracing::Span>>,
}

/// The response header with the request's id.
pub(crate) const REQUEST_ID: &str = "x-request-id";

/// Runs outside the request's span: gives the request its id, in the
/// extensions for the span, for [`identify`] (and so the audit trail) and
/// in the `x-request-id` reply header, for whoever reports a problem.
pub(crate) async fn trace_ids(mut request: Request, next: Next) -> Response {
    let id = random_id()[..16].to_owned();
    request.extensions_mut().insert(Traced {
        id: id.clone(),
        span: Arc::default(),
    });
    let mut response = next.run(request).await;
    if let Ok(value) = http::HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// The request's span (see the trace layer in [`super::router`]), with the
/// id [`trace_ids`] gave it; the actor is filled in by [`identify`].
pub(crate) fn request_span<B>(request: &http::Request<B>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("-", MatchedPath::as_str);
    let traced = request.extensions().get::<Traced>();
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        request_id = traced.map_or("-", |t| t.id.as_str()),
        actor = tracing::field::Empty,
    );
    if let Some(traced) = traced {
        let _ = traced.span.set(span.clone());
    }
    span
}

async fn session_actor(state: &AppState, session: &Session) -> Option<Actor> {
    let user_id: i64 = session.get(USER_ID).await.ok().flatten()?;
    let signed_in_at: i64 = session.get(SIGNED_IN_AT).await.ok().flatten().unwrap_or(0);
    let max_age = i64::from(state.control.config().server.session_absolute_hours) * 3600;
    if now_unix() - signed_in_at > max_age {
        let _ = session.flush().await;
        return None;
    }
    match state.control.session_actor(user_id).await {
        Ok(Some(actor)) => Some(actor),
        Ok(None) => {
            // Disabled or deleted: the session ends here.
            let _ = session.flush().await;
            None
        }
        Err(error) => {
            tracing::error!(%error, "could not resolve the session's account");
            None
        }
    }
}

/// Makes the next request read the freshness stamp anew once a request that
/// may have changed something (not GET, HEAD or OPTIONS) is answered, so the
/// change shows on the very next page, not a freshness window later.
pub(crate) async fn changes_refresh_the_stamp(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let changes = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let response = next.run(request).await;
    if changes {
        state.control.freshness().invalidate();
    }
    response
}

pub(crate) fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
