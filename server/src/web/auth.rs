//! Sign-in and sign-out: plain form posts, so they work without JavaScript.

use super::context::{SIGNED_IN_AT, USER_ID, now_unix};
use super::guard::encode_component;
use super::{AppState, Caller};
use crate::control::ControlError;
use axum::Extension;
use axum::extract::{Form, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::StatusCode;
use serde::Deserialize;
use tower_sessions::Session;

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    name: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// `POST /auth/login`: checks the password, cycles the session id and
/// redirects to where the person was going.
pub(crate) async fn login(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Session,
    Form(form): Form<SignInForm>,
) -> Response {
    let next = safe_next(&form.next);
    match state
        .control
        .sign_in(&form.name, &form.password, &caller.meta)
        .await
    {
        Ok(user) => {
            // A new id at sign-in, so an id planted before it is worthless.
            let stored = async {
                session.cycle_id().await?;
                session.insert(USER_ID, user.id).await?;
                session.insert(SIGNED_IN_AT, now_unix()).await
            };
            if let Err(error) = stored.await {
                tracing::error!(%error, "could not start a session");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
            Redirect::to(next).into_response()
        }
        Err(ControlError::Unauthorized) => {
            Redirect::to(&format!("/login?error=1&next={}", encode_component(next))).into_response()
        }
        Err(ControlError::RateLimited {
            message,
            retry_after_seconds,
        }) => throttled(&message, retry_after_seconds),
        Err(error) => {
            tracing::error!(%error, "sign-in failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// 429 with `Retry-After` and a page that says so (a plain form post gets
/// HTML back, not a redirect, so the status reaches the browser).
fn throttled(message: &str, retry_after_seconds: u64) -> Response {
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Too many attempts · Flightdeck</title>\
         <link rel=\"stylesheet\" href=\"/pkg/flightdeck.css\"></head><body><main><section class=\"panel error\" role=\"alert\">\
         <h1>Too many attempts</h1><p id=\"error-message\">{}</p><p><a href=\"/login\">Back to sign-in</a></p>\
         </section></main></body></html>",
        html_escape(message)
    );
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (http::header::RETRY_AFTER, retry_after_seconds.to_string()),
            (
                http::header::CONTENT_TYPE,
                "text/html; charset=utf-8".to_owned(),
            ),
        ],
        page,
    )
        .into_response()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `POST /auth/logout`: audits and ends the session.
pub(crate) async fn logout(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Session,
) -> Response {
    if let Some(actor) = &caller.actor
        && let Err(error) = state.control.sign_out(actor, &caller.meta).await
    {
        tracing::error!(%error, "could not audit a sign-out");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    if let Err(error) = session.flush().await {
        tracing::error!(%error, "could not end a session");
    }
    Redirect::to("/login").into_response()
}

/// Only local paths: `//evil.example` and absolute URLs become `/`.
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next("/admin"), "/admin");
        assert_eq!(safe_next("//evil.example/x"), "/");
        assert_eq!(safe_next("https://evil.example"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
        assert_eq!(safe_next(""), "/");
    }
}
