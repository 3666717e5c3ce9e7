//! `POST /webhooks/github` and `POST /webhooks/render`: thin adapters over
//! the sync's webhook intake (signature, dedupe, audited refusals).

use super::{AppState, Caller};
use crate::sync::webhooks::{Delivery, WebhookError};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

fn reply(result: Result<Delivery, WebhookError>) -> Response {
    match result {
        Ok(Delivery::Accepted { environments }) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({ "accepted": true, "environments": environments })),
        )
            .into_response(),
        Ok(Delivery::Duplicate) => {
            axum::Json(json!({ "accepted": false, "duplicate": true })).into_response()
        }
        Err(e @ WebhookError::Off) => {
            super::rest::error_response(StatusCode::NOT_FOUND, "webhook_off", &e.to_string())
        }
        Err(e @ WebhookError::Signature(_)) => {
            super::rest::error_response(StatusCode::UNAUTHORIZED, "bad_signature", &e.to_string())
        }
        Err(e @ WebhookError::Invalid(_)) => {
            super::rest::error_response(StatusCode::BAD_REQUEST, "invalid", &e.to_string())
        }
        Err(WebhookError::Store(error)) => {
            tracing::error!(%error, "store failure while taking a webhook");
            super::rest::error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the panel could not record the delivery",
            )
        }
    }
}

pub(crate) async fn github(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    reply(
        state
            .sync
            .github_webhook(&headers, &body, &caller.meta)
            .await,
    )
}

pub(crate) async fn render(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    reply(
        state
            .sync
            .render_webhook(&headers, &body, &caller.meta)
            .await,
    )
}
