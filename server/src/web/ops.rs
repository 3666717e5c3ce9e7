//! Endpoints for the machines that run the panel.

use super::AppState;
use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
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

/// Counts every answered request by its route pattern (`unmatched` for
/// paths no route knows, which keeps the label set bounded).
pub(crate) async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let method = request.method().clone();
    let response = next.run(request).await;
    crate::metrics::global().request(
        route.as_deref().unwrap_or("unmatched"),
        method.as_str(),
        response.status().as_u16(),
    );
    response
}

/// `/metrics`: requests by route and status, upstream calls by service and
/// outcome (this process), operations by kind and state and the sync lag
/// per environment and source (from the store).
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let store = state.control.store();
    let mut out = String::new();
    crate::metrics::global().render_counters(&mut out);
    state.pages.render_counters(&mut out);
    match store.operation_counts().await {
        Ok(counts) => crate::metrics::render_operations(&mut out, &counts),
        Err(error) => tracing::warn!(%error, "metrics: cannot count operations"),
    }
    match store.sync_states().await {
        Ok(states) => {
            let now = time::OffsetDateTime::now_utc();
            let lags: Vec<_> = states
                .into_iter()
                .map(|s| {
                    let lag = s
                        .last_ok_at
                        .as_deref()
                        .and_then(|at| {
                            time::OffsetDateTime::parse(
                                at,
                                &time::format_description::well_known::Rfc3339,
                            )
                            .ok()
                        })
                        .map(|at| (now - at).as_seconds_f64().max(0.0));
                    (s.environment, s.source, lag)
                })
                .collect();
            crate::metrics::render_sync_lag(&mut out, &lags);
        }
        Err(error) => tracing::warn!(%error, "metrics: cannot read the sync state"),
    }
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
