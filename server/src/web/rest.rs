//! `/api/v1`: JSON over the application layer. Errors are
//! `{"error": {"code": "...", "message": "..."}}`.

use super::{AppState, Caller};
use crate::control::{ControlError, PageAsk};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use domain::IdempotencyKey;
use http::StatusCode;
use serde_json::json;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/me", get(me))
        .route("/environments", get(environments))
        .route("/environments/{env}/releases", get(releases))
        .route("/environments/{env}/runs", get(runs))
        .route(
            "/environments/{env}/deploys",
            get(deploys).post(start_deploy),
        )
        .route("/environments/{env}/migrations", get(migrations))
        .route(
            "/environments/{env}/lock",
            axum::routing::put(lock).delete(unlock),
        )
        .route("/environments/{env}/gate", get(gate))
        .route(
            "/environments/{env}/rollbacks/plan",
            axum::routing::post(plan),
        )
        .route(
            "/environments/{env}/rollbacks",
            axum::routing::post(start_rollback),
        )
        .route("/operations/{id}", get(operation))
        .route("/operations/{id}/approve", axum::routing::post(approve))
        .route("/operations/{id}/resolve", axum::routing::post(resolve))
        .route("/runs/{id}/rerun", axum::routing::post(rerun))
        .route("/runs/{id}/cancel", axum::routing::post(cancel))
        .route("/audit", get(audit_list))
        .route("/audit/reviews", axum::routing::post(audit_review))
        .route("/audit/export", get(audit_export))
        .route("/audit/verify", get(audit_verify))
        .fallback(not_found)
        .layer(axum::middleware::map_response(json_errors))
}

/// Gives every error the API's shape, including the ones axum writes as
/// plain text before a handler runs (a body that is not JSON, a path or
/// query that does not parse, a method the route does not have).
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    // axum's rejections are one short sentence; anything longer is cut.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() || status.is_server_error() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let mut fixed = error_response(status, status_code(status), &message);
    // Keep what the client needs to act on (Allow, Retry-After, …).
    for name in [
        http::header::ALLOW,
        http::header::RETRY_AFTER,
        http::header::WWW_AUTHENTICATE,
    ] {
        if let Some(value) = parts.headers.get(&name) {
            fixed.headers_mut().insert(name, value.clone());
        }
    }
    fixed
}

/// The error code that goes with a status.
fn status_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "invalid",
        423 => "locked",
        429 => "rate_limited",
        500..=599 => "internal",
        _ => "error",
    }
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
            ControlError::RateLimited {
                retry_after_seconds,
                ..
            } => {
                let mut response = error_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    &self.0.to_string(),
                );
                response
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, (*retry_after_seconds).into());
                return response;
            }
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

/// `GET /environments/{env}/releases?cursor=&limit=`: one keyset page of
/// the release timeline, newest first, and `next_cursor` for the next.
async fn releases(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(env): Path<String>,
    Query(ask): Query<PageAsk>,
) -> Result<Response, ApiError> {
    let target = format!("/api/v1/environments/{env}/releases");
    let actor = actor(&state, &caller, &target).await?;
    let page = state
        .control
        .timeline_page(&actor, &caller.meta, &env, &ask)
        .await?;
    Ok(Json(page).into_response())
}

/// `GET /environments/{env}/runs?cursor=&limit=`: one keyset page of the
/// runs on the environment's branch, newest first, and `next_cursor`.
async fn runs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(env): Path<String>,
    Query(ask): Query<PageAsk>,
) -> Result<Response, ApiError> {
    let target = format!("/api/v1/environments/{env}/runs");
    let actor = actor(&state, &caller, &target).await?;
    let page = state
        .control
        .runs_page(&actor, &caller.meta, &env, &ask)
        .await?;
    Ok(Json(page).into_response())
}

/// `GET /environments/{env}/deploys?cursor=&limit=`: one keyset page of the
/// environment's deploys, newest first, and `next_cursor`.
async fn deploys(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(env): Path<String>,
    Query(ask): Query<PageAsk>,
) -> Result<Response, ApiError> {
    let target = format!("/api/v1/environments/{env}/deploys");
    let actor = actor(&state, &caller, &target).await?;
    let page = state
        .control
        .deploys_page(&actor, &caller.meta, &env, &ask)
        .await?;
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

/// A request the API cannot read: a 400 in the API's shape.
struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        error_response(StatusCode::BAD_REQUEST, "bad_request", &self.0)
    }
}

/// The body as JSON (an empty body is `T::default()`).
fn body<T: serde::de::DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, BadRequest> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| BadRequest(format!("the body is not the JSON this endpoint takes: {e}")))
}

/// The `Idempotency-Key` header, when sent.
fn idempotency_key(headers: &http::HeaderMap) -> Result<Option<IdempotencyKey>, BadRequest> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("\u{fffd}");
    IdempotencyKey::parse_trimmed(text)
        .map(Some)
        .map_err(|_| BadRequest(format!("Idempotency-Key must be {}", IdempotencyKey::RULE)))
}

/// 202 with the operation; a replay says so in `Idempotent-Replayed`.
fn accepted(started: crate::control::Started) -> Response {
    let location = started.url.clone();
    let mut response = (StatusCode::ACCEPTED, Json(&started)).into_response();
    if let Ok(value) = http::HeaderValue::from_str(&location) {
        response.headers_mut().insert(http::header::LOCATION, value);
    }
    if started.replayed {
        response.headers_mut().insert(
            "idempotent-replayed",
            http::HeaderValue::from_static("true"),
        );
    }
    response
}

/// `POST /environments/{env}/deploys {"commit"?, "reason"?}` → 202.
async fn start_deploy(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(env): Path<String>,
    headers: http::HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let actor = actor(
        &state,
        &caller,
        &format!("/api/v1/environments/{env}/deploys"),
    )
    .await?;
    let (ask, key) = match (
        body::<crate::control::DeployAsk>(&bytes),
        idempotency_key(&headers),
    ) {
        (Ok(ask), Ok(key)) => (ask, key),
        (Err(bad), _) | (_, Err(bad)) => return Ok(bad.into_response()),
    };
    let started = state
        .control
        .start_deploy(&actor, &caller.meta, &env, &ask, key.as_ref())
        .await?;
    Ok(accepted(started))
}

/// `POST /environments/{env}/rollbacks/plan` → the plan; no side effects.
async fn plan(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(env): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let actor = actor(
        &state,
        &caller,
        &format!("/api/v1/environments/{env}/rollbacks/plan"),
    )
    .await?;
    let ask = match body::<crate::control::RollbackAsk>(&bytes) {
        Ok(ask) => ask,
        Err(bad) => return Ok(bad.into_response()),
    };
    let plan = state
        .control
        .rollback_plan(&actor, &caller.meta, &env, &ask)
        .await?;
    Ok(Json(plan).into_response())
}

/// `POST /environments/{env}/rollbacks` with `Idempotency-Key` → 202; 409
/// while busy or locked; 422 when the preflight blocks.
async fn start_rollback(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(env): Path<String>,
    headers: http::HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let actor = actor(
        &state,
        &caller,
        &format!("/api/v1/environments/{env}/rollbacks"),
    )
    .await?;
    let (ask, key) = match (
        body::<crate::control::RollbackAsk>(&bytes),
        idempotency_key(&headers),
    ) {
        (Ok(ask), Ok(key)) => (ask, key),
        (Err(bad), _) | (_, Err(bad)) => return Ok(bad.into_response()),
    };
    let started = state
        .control
        .start_rollback(&actor, &caller.meta, &env, &ask, key.as_ref())
        .await?;
    Ok(accepted(started))
}

/// `GET /operations/{id}`: the operation with every step.
async fn operation(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let actor = actor(&state, &caller, &format!("/api/v1/operations/{id}")).await?;
    let view = state
        .control
        .operation_view(&actor, &caller.meta, &id)
        .await?;
    Ok(Json(view).into_response())
}

/// `POST /operations/{id}/approve`: a second lead approves.
async fn approve(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let actor = actor(&state, &caller, &format!("/api/v1/operations/{id}/approve")).await?;
    state
        .control
        .approve_operation(&actor, &caller.meta, &id)
        .await?;
    Ok(Json(json!({ "approved": true })).into_response())
}

#[derive(serde::Deserialize, Default)]
struct ResolveBody {
    #[serde(default)]
    note: String,
    /// `succeeded` or `failed`.
    #[serde(default)]
    outcome: String,
}

/// `POST /operations/{id}/resolve {"note", "outcome"}`: a lead closes an
/// operation that needs attention, or rejects one awaiting approval.
async fn resolve(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let actor = actor(&state, &caller, &format!("/api/v1/operations/{id}/resolve")).await?;
    let resolve = match body::<ResolveBody>(&bytes) {
        Ok(resolve) => resolve,
        Err(bad) => return Ok(bad.into_response()),
    };
    state
        .control
        .resolve_operation(
            &actor,
            &caller.meta,
            &id,
            &resolve.note,
            resolve.outcome == "succeeded",
        )
        .await?;
    Ok(Json(json!({ "resolved": true })).into_response())
}

#[derive(serde::Deserialize, Default)]
struct RerunBody {
    #[serde(default)]
    failed_only: bool,
}

/// `POST /runs/{id}/rerun {"failed_only"?}` → 202.
async fn rerun(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<u64>,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let actor = actor(&state, &caller, &format!("/api/v1/runs/{id}/rerun")).await?;
    let rerun = match body::<RerunBody>(&bytes) {
        Ok(rerun) => rerun,
        Err(bad) => return Ok(bad.into_response()),
    };
    state
        .control
        .run_action(
            &actor,
            &caller.meta,
            id,
            crate::control::RunAction::Rerun {
                failed_only: rerun.failed_only,
            },
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "run": id, "rerun": true })),
    )
        .into_response())
}

/// `POST /runs/{id}/cancel` → 202.
async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    let actor = actor(&state, &caller, &format!("/api/v1/runs/{id}/cancel")).await?;
    state
        .control
        .run_action(&actor, &caller.meta, id, crate::control::RunAction::Cancel)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "run": id, "cancel": true })),
    )
        .into_response())
}

#[derive(serde::Deserialize)]
struct ExportQuery {
    #[serde(default = "csv")]
    format: String,
    #[serde(flatten)]
    filter: crate::store::audit_filter::Filter,
}

fn csv() -> String {
    "csv".into()
}

/// `GET /audit/export?format=csv|jsonl&actor=&action=&environment=&outcome=&since=&until=`:
/// the filtered trail, streamed (leads and up).
async fn audit_export(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    use futures_util::StreamExt;
    let actor = actor(&state, &caller, "/api/v1/audit/export").await?;
    let format = match crate::export::Format::parse(&query.format) {
        Ok(format) => format,
        Err(error) => return Ok(BadRequest(error.to_string()).into_response()),
    };
    let rows = state
        .control
        .export_audit(&actor, &caller.meta, query.filter, format)
        .await?;
    let body = axum::body::Body::from_stream(rows.map(|chunk| {
        chunk.map(axum::body::Bytes::from).map_err(|error| {
            tracing::error!(%error, "the store failed during an audit export");
            std::io::Error::other("the store failed")
        })
    }));
    let extension = match format {
        crate::export::Format::Csv => "csv",
        crate::export::Format::JsonLines => "jsonl",
    };
    Ok((
        [
            (http::header::CONTENT_TYPE, format.content_type().to_owned()),
            (
                http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"flightdeck-audit.{extension}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// `GET /audit/verify`: the chain recomputed; names the first bad sequence
/// number when it is broken (leads and up).
async fn audit_verify(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let actor = actor(&state, &caller, "/api/v1/audit/verify").await?;
    let verdict = state.control.verify_audit_as(&actor, &caller.meta).await?;
    Ok(Json(match verdict {
        crate::audit::Verdict::Intact { count } => json!({ "intact": true, "count": count }),
        crate::audit::Verdict::Broken { seq, fault } => json!({
            "intact": false,
            "first_bad_seq": seq,
            "fault": format!("{fault:?}"),
        }),
    })
    .into_response())
}

/// The filters one by one: `#[serde(flatten)]` would hand the numbers to
/// serde as text, which a query string cannot then parse.
#[derive(serde::Deserialize)]
struct AuditListQuery {
    actor: Option<String>,
    action: Option<String>,
    environment: Option<String>,
    outcome: Option<String>,
    target: Option<String>,
    since: Option<String>,
    until: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<i64>,
    limit: Option<i64>,
}

/// `GET /audit?actor=&action=&environment=&outcome=&target=&since=&until=&cursor=&limit=`:
/// one page of the trail, newest first, and `next_cursor` for the next
/// (keyset: a cursor is a sequence number, never an offset). Leads and up.
async fn audit_list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<AuditListQuery>,
) -> Result<Response, ApiError> {
    let actor = actor(&state, &caller, "/api/v1/audit").await?;
    let ask = app::model::AuditQuery {
        actor: query.actor,
        action: query.action,
        environment: query.environment,
        outcome: query.outcome,
        target: query.target,
        since: query.since,
        until: query.until,
        before: query.cursor,
    };
    let (events, next) = state
        .control
        .audit_list(&actor, &caller.meta, ask, query.limit.unwrap_or(50))
        .await?;
    Ok(Json(json!({ "events": events, "next_cursor": next })).into_response())
}

#[derive(serde::Deserialize)]
struct ReviewBody {
    item: String,
    #[serde(default)]
    note: String,
}

/// `POST /audit/reviews {"item": "op:…"|"event:<seq>", "note"}`: marks a
/// review-queue item reviewed (leads and up); 409 when it already is.
async fn audit_review(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<ReviewBody>,
) -> Result<Response, ApiError> {
    let actor = actor(&state, &caller, "/api/v1/audit/reviews").await?;
    let mark = state
        .control
        .mark_reviewed(&actor, &caller.meta, &body.item, &body.note)
        .await?;
    Ok((StatusCode::CREATED, Json(mark)).into_response())
}
