//! `/api/v1`: JSON over the application layer, in the API's own types
//! ([`types`]), described by an OpenAPI 3.1 document generated from them
//! ([`ApiDoc`], served at `/api/v1/openapi.json`, rendered at `/api/docs`,
//! checked in as `docs/openapi.json`). Errors are
//! `{"error": {"code": "...", "message": "..."}}`.

mod docs;
pub mod types;

use super::AppState;
use super::extract::{ApiError, ApiJson, IdempotencyHeader, SignedIn};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use types::*;
use utoipa::OpenApi;

pub(crate) use docs::docs_page;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
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
        .route("/environments/{env}/rollbacks/plan", post(plan))
        .route("/environments/{env}/rollbacks", post(start_rollback))
        .route("/operations/{id}", get(operation))
        .route("/operations/{id}/approve", post(approve))
        .route("/operations/{id}/resolve", post(resolve))
        .route("/runs/{id}/rerun", post(rerun))
        .route("/runs/{id}/cancel", post(cancel))
        .route("/audit", get(audit_list))
        .route("/audit/reviews", post(audit_review))
        .route("/audit/export", get(audit_export))
        .route("/audit/verify", get(audit_verify))
        .fallback(not_found)
        .layer(axum::middleware::map_response(json_errors))
}

/// The OpenAPI document of `/api/v1`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Flightdeck REST API",
        version = "1",
        description = "Releases, rollbacks and the audit trail of a Flightdeck panel. \
            Authenticate with `Authorization: Bearer fdt_…` (an API token) or the session \
            cookie from the same origin; a state change with the cookie must carry the \
            panel's `Origin`. Every error is `{\"error\": {\"code\", \"message\"}}`."
    ),
    paths(
        openapi_json, me, environments, releases, runs, deploys, start_deploy, migrations,
        lock, unlock, gate, plan, start_rollback, operation, approve, resolve, rerun, cancel,
        audit_list, audit_review, audit_export, audit_verify
    ),
    components(schemas(ErrorReply, ErrorBody, ExportFormat)),
    modifiers(&Conventions),
    security(("bearer" = []), ("session" = [])),
    tags(
        (name = "caller", description = "Who is calling"),
        (name = "environments", description = "Releases, runs, deploys, migrations, locks and the deploy gate"),
        (name = "operations", description = "Rollbacks and deploys, carried out step by step"),
        (name = "runs", description = "Pipeline runs on GitHub Actions"),
        (name = "audit", description = "The append-only, hash-chained audit trail (leads and up)"),
    )
)]
pub struct ApiDoc;

/// What every operation shares: the security schemes and the error
/// replies any of them can give.
struct Conventions;

impl utoipa::Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, Schema};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("fdt_…")
                    .description(Some(
                        "An API token (`flightdeck token create`); it acts with its account's role.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::SESSION_COOKIE,
                "The session cookie of a sign-in on the same origin.",
            ))),
        );
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorReply")))
                        .build(),
                )
                .build()
        };
        let common = [
            ("400", "A path, query or body value that does not parse"),
            ("401", "No session or token (audited)"),
            (
                "403",
                "The role does not allow it, or a state change from another origin (audited)",
            ),
            ("404", "Unknown environment, operation or run"),
            ("405", "The path exists with another method"),
            ("500", "A failure on the server; its log has the details"),
        ];
        for (path, item) in openapi.paths.paths.iter_mut() {
            // The document itself is public and answers only itself.
            let public = path.ends_with("/openapi.json");
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let responses = &mut operation.responses.responses;
                for (status, description) in common {
                    if public && status != "405" {
                        continue;
                    }
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error(description).into());
                }
                if public {
                    operation.security = Some(Vec::new());
                }
                if let Some(body) = &mut operation.request_body {
                    // An optional body is absent or an object, never `null`.
                    for content in body.content.values_mut() {
                        if let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema
                            && let Some(object) = one_of
                                .items
                                .iter()
                                .find(|item| matches!(item, RefOr::Ref(_)))
                                .cloned()
                        {
                            content.schema = Some(object);
                        }
                    }
                    responses
                        .entry("415".to_owned())
                        .or_insert_with(|| error("A body that is not `application/json`").into());
                }
            }
        }
    }
}

/// The document as served and checked in: pretty JSON and a final newline.
pub fn openapi_document() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    text.push('\n');
    text
}

/// Gives every error the API's shape, including the ones axum writes as
/// plain text before a handler runs (a path or query that does not parse,
/// a method the route does not have).
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
        Json(ErrorReply {
            error: ErrorBody {
                code: code.to_owned(),
                message: message.to_owned(),
            },
        }),
    )
        .into_response()
}

async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// This document (no sign-in needed).
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "caller",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object))
)]
async fn openapi_json() -> Response {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        openapi_document(),
    )
        .into_response()
}

/// Who is calling: the signed-in person, or the account a token acts as.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "caller",
    responses((status = 200, description = "The caller", body = Me))
)]
async fn me(caller: SignedIn) -> Json<Me> {
    Json(Me {
        name: caller.actor.name,
        role: caller.actor.role.into(),
    })
}

/// Every environment: live release, newest pipeline run, database, stale
/// data, lock and operation (the overview's data).
#[utoipa::path(
    get,
    path = "/api/v1/environments",
    tag = "environments",
    responses((status = 200, description = "Every configured environment", body = Vec<Environment>))
)]
async fn environments(
    State(state): State<AppState>,
    caller: SignedIn,
) -> Result<Json<Vec<Environment>>, ApiError> {
    let overview = state.control.overview(&caller.actor, &caller.meta).await?;
    Ok(Json(
        overview
            .environments
            .into_iter()
            .map(Environment::from)
            .collect(),
    ))
}

/// One keyset page of the release timeline, newest first, and
/// `next_cursor` for the next.
#[utoipa::path(
    get,
    path = "/api/v1/environments/{env}/releases",
    tag = "environments",
    params(("env" = String, Path, description = "The environment's name"), PageQuery),
    responses(
        (status = 200, description = "One page of releases", body = ReleasePage),
        (status = 422, description = "A cursor this panel did not give, or a limit out of bounds", body = ErrorReply),
    )
)]
async fn releases(
    State(state): State<AppState>,
    caller: SignedIn,
    Path(env): Path<String>,
    Query(ask): Query<PageQuery>,
) -> Result<Json<ReleasePage>, ApiError> {
    let page = state
        .control
        .timeline_page(&caller.actor, &caller.meta, &env, &ask.into())
        .await?;
    Ok(Json(page.into()))
}

/// One keyset page of the runs on the environment's branch, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/environments/{env}/runs",
    tag = "environments",
    params(("env" = String, Path, description = "The environment's name"), PageQuery),
    responses(
        (status = 200, description = "One page of runs", body = RunPage),
        (status = 422, description = "A cursor this panel did not give, or a limit out of bounds", body = ErrorReply),
    )
)]
async fn runs(
    State(state): State<AppState>,
    caller: SignedIn,
    Path(env): Path<String>,
    Query(ask): Query<PageQuery>,
) -> Result<Json<RunPage>, ApiError> {
    let page = state
        .control
        .runs_page(&caller.actor, &caller.meta, &env, &ask.into())
        .await?;
    Ok(Json(page.into()))
}

/// One keyset page of the environment's deploys, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/environments/{env}/deploys",
    tag = "environments",
    params(("env" = String, Path, description = "The environment's name"), PageQuery),
    responses(
        (status = 200, description = "One page of deploys", body = ReleasePage),
        (status = 422, description = "A cursor this panel did not give, or a limit out of bounds", body = ErrorReply),
    )
)]
async fn deploys(
    State(state): State<AppState>,
    caller: SignedIn,
    Path(env): Path<String>,
    Query(ask): Query<PageQuery>,
) -> Result<Json<ReleasePage>, ApiError> {
    let page = state
        .control
        .deploys_page(&caller.actor, &caller.meta, &env, &ask.into())
        .await?;
    Ok(Json(page.into()))
}

/// The live commit's revision graph against the database.
#[utoipa::path(
    get,
    path = "/api/v1/environments/{env}/migrations",
    tag = "environments",
    params(("env" = String, Path, description = "The environment's name")),
    responses((status = 200, description = "The revision graph", body = MigrationsPage))
)]
async fn migrations(
    State(state): State<AppState>,
    caller: SignedIn,
    Path(env): Path<String>,
) -> Result<Json<MigrationsPage>, ApiError> {
    let page = state
        .control
        .migrations(&caller.actor, &caller.meta, &env)
        .await?;
    Ok(Json(page.into()))
}

/// Locks the environment with a reason (deployer and up).
#[utoipa::path(
    put,
    path = "/api/v1/environments/{env}/lock",
    tag = "environments",
    params(("env" = String, Path, description = "The environment's name")),
    request_body = LockRequest,
    responses(
        (status = 200, description = "The lock", body = Lock),
        (status = 409, description = "Already locked (audited)", body = ErrorReply),
        (status = 422, description = "No reason, or one over 500 characters", body = ErrorReply),
    )
)]
async fn lock(
    State(state): State<AppState>,
    caller: SignedIn,
    Path(env): Path<String>,
    ApiJson(body): ApiJson<LockRequest>,
) -> Result<Json<Lock>, ApiError> {
    let lock = state
        .control
        .lock_environment(&caller.actor, &caller.meta, &env, &body.reason)
        .await?;
    Ok(Json(lock.into()))
}

/// Unlocks the environment with a note (leads and up).
#[utoipa::path(
    delete,
    path = "/api/v1/environments/{env}/lock",
    tag = "environments",
    params(("env" = String, Path, description = "The environment's name")),
    request_body = UnlockRequest,
    responses(
        (status = 204, description = "Unlocked"),
        (status = 409, description = "Not locked, or an operation still runs (audited)", body = ErrorReply),
        (status = 422, description = "No note, or one over 500 characters", body = ErrorReply),
    )
)]
async fn unlock(
    State(state): State<AppState>,
    caller: SignedIn,
    Path(env): Path<String>,
    ApiJson(body): ApiJson<UnlockRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .control
        .unlock_environment(&caller.actor, &caller.meta, &env, &body.note)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The deploy gate the deploy workflow asks before it deploys a commit.
#[utoipa::path(
    get,
    path = "/api/v1/environments/{env}/gate",
    tag = "environments",
    params(("env" = String, Path, description = "The environment's name"), GateQuery),
    responses(
        (status = 200, description = "The commit may deploy", body = Gate),
        (status = 423, description = "The environment is locked: `allowed` is false, with the reason", body = Gate),
    )
)]
async fn gate(
    State(state): State<AppState>,
    caller: SignedIn,
    Path(env): Path<String>,
    Query(query): Query<GateQuery>,
) -> Result<Response, ApiError> {
    let gate = state
        .control
        .gate(&caller.actor, &caller.meta, &env, &query.sha)
        .await?;
    let status = if gate.allowed {
        StatusCode::OK
    } else {
        StatusCode::LOCKED
    };
    Ok((status, Json(Gate::from(gate))).into_response())
}

/// 202 with the operation; a replay says so in `Idempotent-Replayed`.
fn accepted(started: crate::control::Started) -> Response {
    let mut response = (StatusCode::ACCEPTED, Json(Started::from(&started))).into_response();
    if let Ok(value) = http::HeaderValue::from_str(&started.url) {
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

/// Starts a deploy of a commit (the branch's head by default).
#[utoipa::path(
    post,
    path = "/api/v1/environments/{env}/deploys",
    tag = "operations",
    params(
        ("env" = String, Path, description = "The environment's name"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 200 characters: the same key again returns the same operation"),
    ),
    request_body(content = Option<DeployRequest>, description = "Optional: no body is `{}`"),
    responses(
        (status = 202, description = "Started (or replayed)", body = Started, headers(
            ("Location" = String, description = "The operation's page"),
            ("Idempotent-Replayed" = String, description = "`true` when the key was used before"),
        )),
        (status = 409, description = "Another operation runs, or the environment is locked (audited)", body = ErrorReply),
        (status = 422, description = "Refused by the rules (audited), or the key was used with another body", body = ErrorReply),
    )
)]
async fn start_deploy(
    State(state): State<AppState>,
    caller: SignedIn,
    Path(env): Path<String>,
    IdempotencyHeader(key): IdempotencyHeader,
    ApiJson(ask): ApiJson<DeployRequest>,
) -> Result<Response, ApiError> {
    let started = state
        .control
        .start_deploy(&caller.actor, &caller.meta, &env, &ask.into(), key.as_ref())
        .await?;
    Ok(accepted(started))
}

/// The rollback plan, with no side effects (null target: the last good release).
#[utoipa::path(
    post,
    path = "/api/v1/environments/{env}/rollbacks/plan",
    tag = "operations",
    params(("env" = String, Path, description = "The environment's name")),
    request_body(content = Option<RollbackRequest>, description = "Optional: no body is `{}`"),
    responses((status = 200, description = "The plan", body = Plan))
)]
async fn plan(
    State(state): State<AppState>,
    caller: SignedIn,
    Path(env): Path<String>,
    ApiJson(ask): ApiJson<RollbackRequest>,
) -> Result<Json<Plan>, ApiError> {
    let plan = state
        .control
        .rollback_plan(&caller.actor, &caller.meta, &env, &ask.into())
        .await?;
    Ok(Json(plan.into()))
}

/// Starts a rollback; the same Idempotency-Key again returns the same one.
#[utoipa::path(
    post,
    path = "/api/v1/environments/{env}/rollbacks",
    tag = "operations",
    params(
        ("env" = String, Path, description = "The environment's name"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 200 characters: the same key again returns the same operation"),
    ),
    request_body(content = Option<RollbackRequest>, description = "Optional: no body is `{}`"),
    responses(
        (status = 202, description = "Started (or replayed)", body = Started, headers(
            ("Location" = String, description = "The operation's page"),
            ("Idempotent-Replayed" = String, description = "`true` when the key was used before"),
        )),
        (status = 409, description = "Another operation runs, or the environment is locked (audited)", body = ErrorReply),
        (status = 422, description = "A preflight check blocks, no reason, a wrong typed revision (audited), or the key was used with another body", body = ErrorReply),
    )
)]
async fn start_rollback(
    State(state): State<AppState>,
    caller: SignedIn,
    Path(env): Path<String>,
    IdempotencyHeader(key): IdempotencyHeader,
    ApiJson(ask): ApiJson<RollbackRequest>,
) -> Result<Response, ApiError> {
    let started = state
        .control
        .start_rollback(&caller.actor, &caller.meta, &env, &ask.into(), key.as_ref())
        .await?;
    Ok(accepted(started))
}

/// An operation with every step.
#[utoipa::path(
    get,
    path = "/api/v1/operations/{id}",
    tag = "operations",
    params(("id" = String, Path, description = "The operation's id")),
    responses((status = 200, description = "The operation", body = Operation))
)]
async fn operation(
    State(state): State<AppState>,
    caller: SignedIn,
    Path(id): Path<String>,
) -> Result<Json<Operation>, ApiError> {
    let view = state
        .control
        .operation_view(&caller.actor, &caller.meta, &id)
        .await?;
    Ok(Json(view.into()))
}

/// A second lead approves an operation that waits for it.
#[utoipa::path(
    post,
    path = "/api/v1/operations/{id}/approve",
    tag = "operations",
    params(("id" = String, Path, description = "The operation's id")),
    responses(
        (status = 200, description = "Approved; it starts", body = Approved),
        (status = 409, description = "It does not wait for approval, or the requester approves (audited)", body = ErrorReply),
    )
)]
async fn approve(
    State(state): State<AppState>,
    caller: SignedIn,
    Path(id): Path<String>,
) -> Result<Json<Approved>, ApiError> {
    state
        .control
        .approve_operation(&caller.actor, &caller.meta, &id)
        .await?;
    Ok(Json(Approved { approved: true }))
}

/// A lead closes an operation that needs attention, or rejects one
/// awaiting approval, with a note.
#[utoipa::path(
    post,
    path = "/api/v1/operations/{id}/resolve",
    tag = "operations",
    params(("id" = String, Path, description = "The operation's id")),
    request_body(content = Option<ResolveRequest>, description = "Optional: no body is `{}`"),
    responses(
        (status = 200, description = "Resolved", body = Resolved),
        (status = 409, description = "It neither needs attention nor waits for approval (audited)", body = ErrorReply),
        (status = 422, description = "No note", body = ErrorReply),
    )
)]
async fn resolve(
    State(state): State<AppState>,
    caller: SignedIn,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ResolveRequest>,
) -> Result<Json<Resolved>, ApiError> {
    state
        .control
        .resolve_operation(
            &caller.actor,
            &caller.meta,
            &id,
            &body.note,
            body.outcome == Resolution::Succeeded,
        )
        .await?;
    Ok(Json(Resolved { resolved: true }))
}

/// Re-runs a pipeline run (all jobs, or only the failed ones).
#[utoipa::path(
    post,
    path = "/api/v1/runs/{id}/rerun",
    tag = "runs",
    params(("id" = u64, Path, description = "The run's id on GitHub")),
    request_body(content = Option<RerunRequest>, description = "Optional: no body is `{}`"),
    responses(
        (status = 202, description = "Asked of GitHub", body = RerunAccepted),
        (status = 409, description = "The run is not finished, or GitHub refused", body = ErrorReply),
    )
)]
async fn rerun(
    State(state): State<AppState>,
    caller: SignedIn,
    Path(id): Path<u64>,
    ApiJson(body): ApiJson<RerunRequest>,
) -> Result<Response, ApiError> {
    state
        .control
        .run_action(
            &caller.actor,
            &caller.meta,
            id,
            crate::control::RunAction::Rerun {
                failed_only: body.failed_only,
            },
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RerunAccepted {
            run: id,
            rerun: true,
        }),
    )
        .into_response())
}

/// Cancels a pipeline run.
#[utoipa::path(
    post,
    path = "/api/v1/runs/{id}/cancel",
    tag = "runs",
    params(("id" = u64, Path, description = "The run's id on GitHub")),
    responses(
        (status = 202, description = "Asked of GitHub", body = CancelAccepted),
        (status = 409, description = "The run is finished, or GitHub refused", body = ErrorReply),
    )
)]
async fn cancel(
    State(state): State<AppState>,
    caller: SignedIn,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    state
        .control
        .run_action(
            &caller.actor,
            &caller.meta,
            id,
            crate::control::RunAction::Cancel,
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(CancelAccepted {
            run: id,
            cancel: true,
        }),
    )
        .into_response())
}

/// The filtered trail, streamed as CSV or JSON lines, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/audit/export",
    tag = "audit",
    params(ExportQuery),
    responses(
        (status = 200, description = "The events, streamed", content(
            (String = "text/csv"),
            (String = "application/x-ndjson"),
        )),
        (status = 422, description = "A time that does not parse", body = ErrorReply),
    )
)]
async fn audit_export(
    State(state): State<AppState>,
    caller: SignedIn,
    Query(query): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    use futures_util::StreamExt;
    let format = crate::export::Format::parse(query.format.as_deref().unwrap_or("csv"))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let rows = state
        .control
        .export_audit(&caller.actor, &caller.meta, query.filter(), format)
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

/// The chain recomputed; names the first bad sequence number when broken.
#[utoipa::path(
    get,
    path = "/api/v1/audit/verify",
    tag = "audit",
    responses((status = 200, description = "The verdict", body = Verification))
)]
async fn audit_verify(
    State(state): State<AppState>,
    caller: SignedIn,
) -> Result<Json<Verification>, ApiError> {
    let verdict = state
        .control
        .verify_audit_as(&caller.actor, &caller.meta)
        .await?;
    Ok(Json(verdict.into()))
}

/// One page of the trail, newest first, and `next_cursor` for the next
/// (keyset: a cursor is a sequence number, never an offset).
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    params(AuditListQuery),
    responses(
        (status = 200, description = "One page of events", body = AuditPage),
        (status = 422, description = "A time that does not parse, or a limit out of bounds (audited)", body = ErrorReply),
    )
)]
async fn audit_list(
    State(state): State<AppState>,
    caller: SignedIn,
    Query(query): Query<AuditListQuery>,
) -> Result<Json<AuditPage>, ApiError> {
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
        .audit_list(&caller.actor, &caller.meta, ask, query.limit.unwrap_or(50))
        .await?;
    Ok(Json(AuditPage {
        events: events.into_iter().map(AuditEvent::from).collect(),
        next_cursor: next,
    }))
}

/// Marks a review-queue item reviewed, with a note.
#[utoipa::path(
    post,
    path = "/api/v1/audit/reviews",
    tag = "audit",
    request_body = ReviewRequest,
    responses(
        (status = 201, description = "The mark", body = ReviewMark),
        (status = 409, description = "Already reviewed (audited)", body = ErrorReply),
        (status = 422, description = "No note, or not a queue item (audited)", body = ErrorReply),
    )
)]
async fn audit_review(
    State(state): State<AppState>,
    caller: SignedIn,
    ApiJson(body): ApiJson<ReviewRequest>,
) -> Result<Response, ApiError> {
    let mark = state
        .control
        .mark_reviewed(&caller.actor, &caller.meta, &body.item, &body.note)
        .await?;
    Ok((StatusCode::CREATED, Json(ReviewMark::from(mark))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `docs/openapi.json` is the document the code generates. After a
    /// change to the API, regenerate it with
    /// `UPDATE_OPENAPI=1 cargo test -p flightdeck --lib openapi`.
    #[test]
    fn the_checked_in_openapi_document_is_the_generated_one() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
        let generated = openapi_document();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "docs/openapi.json differs from the API the code serves; regenerate it with \
             `UPDATE_OPENAPI=1 cargo test -p flightdeck --lib openapi` and review the diff"
        );
    }

    #[test]
    fn every_route_is_in_the_document_with_its_errors_and_security() {
        let doc: serde_json::Value = serde_json::from_str(&openapi_document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        let operations: Vec<String> = paths
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| ["get", "put", "post", "delete"].contains(&k.as_str()))
                    .map(move |method| format!("{} {path}", method.to_uppercase()))
            })
            .collect();
        assert_eq!(operations.len(), 22, "{operations:#?}");
        for (path, item) in paths {
            for (method, operation) in item.as_object().unwrap() {
                let responses = &operation["responses"];
                if path.ends_with("openapi.json") {
                    assert_eq!(operation["security"], json!([]), "{method} {path}");
                    continue;
                }
                for status in ["400", "401", "403", "404", "500"] {
                    assert_eq!(
                        responses[status]["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorReply",
                        "{method} {path} {status}"
                    );
                }
            }
        }
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(schemes["session"]["in"], "cookie");
        assert_eq!(schemes["session"]["name"], super::super::SESSION_COOKIE);
    }

    #[test]
    fn an_api_reply_never_carries_page_only_fields() {
        let doc: serde_json::Value = serde_json::from_str(&openapi_document()).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for (name, schema) in schemas {
            let Some(properties) = schema["properties"].as_object() else {
                continue;
            };
            for field in [
                "viewer",
                "idempotency_key",
                "can_approve",
                "can_resolve",
                "can_unlock",
                "label",
            ] {
                assert!(
                    !properties.contains_key(field),
                    "`{name}.{field}` is in the API"
                );
            }
        }
        assert!(schemas.contains_key("Environment") && schemas.contains_key("Operation"));
    }
}
