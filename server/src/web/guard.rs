//! Request guards that run before any handler.

use super::{AppState, Caller};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, Method, StatusCode, header};

/// Refuses a state-changing request (anything but GET, HEAD and OPTIONS)
/// whose `Origin` (or, without one, `Referer`) is not this panel. Leptos
/// server functions have no CSRF protection of their own; SameSite=Strict
/// cookies are the second line. Webhooks carry signatures instead.
pub(crate) async fn same_origin_for_changes(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) || request.uri().path().starts_with("/webhooks/")
    {
        return next.run(request).await;
    }
    let headers = request.headers();
    let refusal = match claimed_origin(headers) {
        Some(origin) if is_own_origin(&state, headers, &origin) => None,
        Some(origin) => Some(format!("cross-origin request from {origin}")),
        // Scripts and CLIs that send a bearer token and no cookie cannot be
        // a forged browser request.
        None if is_bearer_only(headers) => None,
        None => Some("a state-changing request without Origin or Referer".to_owned()),
    };
    let Some(reason) = refusal else {
        return next.run(request).await;
    };
    let caller = request.extensions().get::<Caller>().cloned();
    let path = request.uri().path().to_owned();
    if let Some(caller) = &caller
        && let Err(error) = state
            .control
            .record_refusal(
                caller.actor.as_ref(),
                "request.refused",
                &path,
                &reason,
                &caller.meta,
            )
            .await
    {
        tracing::error!(%error, "could not audit a refused request");
    }
    refuse(&path, StatusCode::FORBIDDEN, "cross_origin", &reason)
}

/// Sends people who are not signed in to the sign-in page, remembering
/// where they were going. API, server-function and event-stream calls get
/// a 401 from their handlers instead.
pub(crate) async fn pages_need_sign_in(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let public = path == "/login"
        || path == "/healthz"
        || path == "/readyz"
        || path == "/metrics"
        || path == "/events"
        || path == "/favicon.ico"
        || path == "/robots.txt"
        || ["/auth/", "/pkg/", "/api/", "/_fn/", "/webhooks/"]
            .iter()
            .any(|prefix| path.starts_with(prefix));
    let signed_in = request
        .extensions()
        .get::<Caller>()
        .is_some_and(|c| c.actor.is_some());
    if public || signed_in || request.method() != Method::GET {
        return next.run(request).await;
    }
    let wanted = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    Redirect::to(&format!("/login?next={}", encode_component(wanted))).into_response()
}

fn claimed_origin(headers: &HeaderMap) -> Option<String> {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        return Some(origin.to_owned());
    }
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    let url = url::Url::parse(referer).ok()?;
    Some(url.origin().ascii_serialization())
}

fn is_own_origin(state: &AppState, headers: &HeaderMap, origin: &str) -> bool {
    let public = &state.control.config().server.public_url;
    if public.origin().ascii_serialization() == origin {
        return true;
    }
    // The panel is also reachable under the address the client used (the
    // sandbox on 127.0.0.1 while public_url says localhost); a forged
    // cross-site request carries the attacker's origin, never this one.
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| origin == format!("{}://{host}", public.scheme()))
}

fn is_bearer_only(headers: &HeaderMap) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer "));
    bearer && !headers.contains_key(header::COOKIE)
}

/// A refusal in the shape the caller expects: the API's JSON error, or text.
pub(crate) fn refuse(path: &str, status: StatusCode, code: &str, message: &str) -> Response {
    if path.starts_with("/api/") {
        super::rest::error_response(status, code, message)
    } else {
        (status, format!("{message}\n")).into_response()
    }
}

/// Percent-encodes everything but unreserved characters and `/`.
pub(crate) fn encode_component(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
