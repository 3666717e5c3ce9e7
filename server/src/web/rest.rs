//! `/api/v1`: JSON over the application layer. Errors are
//! `{"error": {"code": "...", "message": "..."}}`.

use super::{AppState, Caller};
use crate::control::ControlError;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use http::StatusCode;
use serde_json::json;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/me", get(me))
        .route("/environments", get(environments))
        .route("/environments/{env}/releases", get(releases))
        .route("/environments/{env}/runs", get(runs))
        .route("/environments/{env}/deploys", get(deploys))
        .route("/environments/{env}/migrations", get(migrations))
        .route(
            "/environments/{env}/lock",
            axum::routing::put(lock).delete(unlock),
        )
        .route("/environments/{env}/gate", get(gate))
        .fallback(not_found)
}

/// An error in the API's shape.
pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

/// A [`ControlError`] as an API response; internal details go to the log only.
pub(crate) struct ApiError(ControlError);

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self.0 {
            ControlError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ControlError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ControlError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ControlError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ControlError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ControlError::Store(error) => {
                tracing::error!(%error, "store failure");
                return error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "something went wrong on the server; the log has the details",
                );
            }
        };
        error_response(status, code, &self.0.to_string())
    }
}

async fn me(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let actor = state
        .control
        .signed_in(caller.actor.as_ref(), "/api/v1/me", &caller.meta)
        .await?;
    Ok(Json(json!({ "name": actor.name, "role": actor.role })).into_response())
}

async fn environments(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let actor = state
        .control
        .signed_in(caller.actor.as_ref(), "/api/v1/environments", &caller.meta)
        .await?;
    let overview = state.control.overview(&actor, &caller.meta).await?;
    Ok(Json(overview.environments).into_response())
}

/// The signed-in actor for `target`; a refusal is audited.
async fn actor(
    state: &AppState,
    caller: &Caller,
    target: &str,
) -> Result<crate::identity::Actor, ApiError> {
    Ok(state
        .control
        .signed_in(caller.actor.as_ref(), target, &caller.meta)
        .await?)
}

/// `GET /environments/{env}/releases`: the release timeline, newest first.
async fn releases(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(env): Path<String>,
) -> Result<Response, ApiError> {
    let target = format!("/api/v1/environments/{env}/releases");
    let actor = actor(&state, &caller, &target).await?;
    let page = state.control.timeline(&actor, &caller.meta, &env).await?;
    Ok(Json(page).into_response())
}

/// `GET /environments/{env}/runs`: the runs on the environment's branch.
async fn runs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(env): Path<String>,
) -> Result<Response, ApiError> {
    let target = format!("/api/v1/environments/{env}/runs");
    let actor = actor(&state, &caller, &target).await?;
    let page = state.control.runs(&actor, &caller.meta, &env).await?;
    Ok(Json(page).into_response())
}

/// `GET /environments/{env}/deploys`: the environment's deploys, newest first.
async fn deploys(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(env): Path<String>,
) -> Result<Response, ApiError> {
    let target = format!("/api/v1/environments/{env}/deploys");
    let actor = actor(&state, &caller, &target).await?;
    let page = state.control.deploys(&actor, &caller.meta, &env).await?;
    Ok(Json(page).into_response())
}

/// `GET /environments/{env}/migrations`: the live commit's revision graph
/// against the database.
async fn migrations(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(env): Path<String>,
) -> Result<Response, ApiError> {
    let target = format!("/api/v1/environments/{env}/migrations");
    let actor = actor(&state, &caller, &target).await?;
    let page = state.control.migrations(&actor, &caller.meta, &env).await?;
    Ok(Json(page).into_response())
}

async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

#[derive(serde::Deserialize)]
struct LockBody {
    reason: String,
}

#[derive(serde::Deserialize)]
struct UnlockBody {
    note: String,
}

#[derive(serde::Deserialize)]
struct GateQuery {
    #[serde(default)]
    sha: String,
}

/// `PUT /environments/{env}/lock {"reason"}`: 200 with the lock; 409 when
/// it is already locked.
async fn lock(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(env): Path<String>,
    Json(body): Json<LockBody>,
) -> Result<Response, ApiError> {
    let actor = actor(&state, &caller, &format!("/api/v1/environments/{env}/lock")).await?;
    let lock = state
        .control
        .lock_environment(&actor, &caller.meta, &env, &body.reason)
        .await?;
    Ok(Json(lock).into_response())
}

/// `DELETE /environments/{env}/lock {"note"}`: 204; leads only.
async fn unlock(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(env): Path<String>,
    Json(body): Json<UnlockBody>,
) -> Result<Response, ApiError> {
    let actor = actor(&state, &caller, &format!("/api/v1/environments/{env}/lock")).await?;
    state
        .control
        .unlock_environment(&actor, &caller.meta, &env, &body.note)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /environments/{env}/gate?sha=`: 200 `{"allowed": true}`, or 423
/// `{"allowed": false, "reason"}` while the environment is locked.
async fn gate(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(env): Path<String>,
    Query(query): Query<GateQuery>,
) -> Result<Response, ApiError> {
    let actor = actor(&state, &caller, &format!("/api/v1/environments/{env}/gate")).await?;
    let gate = state
        .control
        .gate(&actor, &caller.meta, &env, &query.sha)
        .await?;
    let status = if gate.allowed {
        StatusCode::OK
    } else {
        StatusCode::LOCKED
    };
    Ok((status, Json(gate)).into_response())
}
