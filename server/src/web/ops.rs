//! Endpoints for the machines that run the panel.

use super::AppState;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

/// `/healthz`: the process answers.
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// `/readyz`: the store answers too.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let store = state.control.store();
    match store.ping().await {
        Ok(()) => Json(json!({ "status": "ready", "store": store.backend() })).into_response(),
        Err(error) => {
            tracing::warn!(%error, "store unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "store": store.backend() })),
            )
                .into_response()
        }
    }
}
