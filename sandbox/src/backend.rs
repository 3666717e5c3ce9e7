//! The sample app itself, as far as a smoke check sees it: `GET
//! /{environment}/health` answers 200 with the live commit, or 503 while
//! the live commit is one whose pipeline failed its smoke test (the
//! scenario's bad release) or nothing is live.

use super::render::RenderSim;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

#[derive(Clone)]
struct Backend {
    render: RenderSim,
    /// Environment → Render service.
    services: Arc<BTreeMap<String, String>>,
    /// Commits whose health check fails.
    unhealthy: Arc<BTreeSet<String>>,
}

/// The router; `services` maps environment names to Render service ids.
pub fn router(
    render: RenderSim,
    services: BTreeMap<String, String>,
    unhealthy: BTreeSet<String>,
) -> Router {
    Router::new()
        .route("/{env}/health", get(health))
        .with_state(Backend {
            render,
            services: Arc::new(services),
            unhealthy: Arc::new(unhealthy),
        })
}

async fn health(State(backend): State<Backend>, Path(env): Path<String>) -> Response {
    let Some(service) = backend.services.get(&env) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match backend.render.live_commit(service) {
        Some(commit) if !backend.unhealthy.contains(&commit) => {
            (StatusCode::OK, format!("ok {commit}")).into_response()
        }
        Some(commit) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy {commit}"),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "nothing is live").into_response(),
    }
}
