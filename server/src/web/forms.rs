//! The pages' actions as plain form posts under `/actions/`, so rollbacks,
//! approvals and unlocks work without JavaScript: each hands the form to
//! the application layer and redirects (303) to the page that shows the
//! result, with `?error=` when it was refused.

use super::AppState;
use super::extract::{SignedIn, SignedInForm, status_of};
use super::guard::encode_component;
use crate::control::{ControlError, DeployAsk, RollbackAsk, RunAction};
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use domain::IdempotencyKey;
use serde::Deserialize;

pub(crate) fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/env/{env}/rollback", post(rollback))
        .route("/env/{env}/deploy", post(deploy))
        .route("/env/{env}/unlock", post(unlock))
        .route("/operations/{id}/approve", post(approve))
        .route("/operations/{id}/resolve", post(resolve))
        .route("/runs/{id}/rerun", post(rerun))
        .route("/runs/{id}/cancel", post(cancel))
        .route("/audit/review", post(review))
        .route("/audit/verify", post(verify))
}

/// A checkbox: present ("on") when ticked.
fn ticked(value: &Option<String>) -> bool {
    value
        .as_deref()
        .is_some_and(|v| !v.is_empty() && v != "false")
}

fn blank_to_none(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The form's Idempotency-Key (the page puts a fresh one in every form).
fn form_key(value: Option<String>) -> Result<Option<IdempotencyKey>, ControlError> {
    Ok(blank_to_none(value)
        .map(|key| IdempotencyKey::parse(&key))
        .transpose()?)
}

#[derive(Deserialize)]
pub(crate) struct RollbackForm {
    target_deploy_id: Option<String>,
    database: Option<String>,
    revert_code: Option<String>,
    #[serde(default)]
    reason: String,
    confirm_revision: Option<String>,
    planned_branch_head: Option<String>,
    idempotency_key: Option<String>,
    /// Where to go back to on a refusal: `overview` or the guided page.
    back: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct DeployForm {
    commit: Option<String>,
    #[serde(default)]
    reason: String,
    idempotency_key: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct RerunForm {
    failed_only: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct NoteForm {
    #[serde(default)]
    note: String,
    /// For resolve: `succeeded` or `failed`.
    outcome: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct ReviewForm {
    #[serde(default)]
    item: String,
    #[serde(default)]
    note: String,
    /// The audit event the form was on: the detail page to go back to.
    seq: Option<i64>,
}

/// Back to `page` with the refusal's sentence, or a 500 for a store failure.
fn refused(page: &str, error: ControlError) -> Response {
    let (status, _) = status_of(&error);
    if status.is_server_error() {
        tracing::error!(%error, "store failure in a form action");
        return status.into_response();
    }
    let joiner = if page.contains('?') { '&' } else { '?' };
    Redirect::to(&format!(
        "{page}{joiner}error={}",
        encode_component(&error.to_string())
    ))
    .into_response()
}

fn operation_page(id: &str) -> Response {
    Redirect::to(&format!("/operations/{id}")).into_response()
}

async fn rollback(
    State(state): State<AppState>,
    SignedInForm(caller): SignedInForm,
    Path(env): Path<String>,
    Form(form): Form<RollbackForm>,
) -> Response {
    let ask = RollbackAsk {
        target_deploy_id: blank_to_none(form.target_deploy_id),
        database: ticked(&form.database),
        revert_code: ticked(&form.revert_code),
        reason: form.reason,
        confirm_revision: blank_to_none(form.confirm_revision),
        planned_branch_head: blank_to_none(form.planned_branch_head),
    };
    let started = async {
        let key = form_key(form.idempotency_key)?;
        state
            .control
            .start_rollback(&caller.actor, &caller.meta, &env, &ask, key.as_ref())
            .await
    };
    match started.await {
        Ok(started) => operation_page(&started.id),
        Err(error) => {
            let page = if form.back.as_deref() == Some("overview") {
                "/".to_owned()
            } else {
                let mut page = format!("/env/{env}/rollback?");
                if let Some(target) = &ask.target_deploy_id {
                    page.push_str(&format!("target={}&", encode_component(target)));
                }
                if ask.database {
                    page.push_str("database=on&");
                }
                if ask.revert_code {
                    page.push_str("revert_code=on&");
                }
                page.pop();
                page
            };
            refused(&page, error)
        }
    }
}

async fn deploy(
    State(state): State<AppState>,
    SignedInForm(caller): SignedInForm,
    Path(env): Path<String>,
    Form(form): Form<DeployForm>,
) -> Response {
    let ask = DeployAsk {
        commit: blank_to_none(form.commit),
        reason: form.reason,
    };
    let started = async {
        let key = form_key(form.idempotency_key)?;
        state
            .control
            .start_deploy(&caller.actor, &caller.meta, &env, &ask, key.as_ref())
            .await
    };
    match started.await {
        Ok(started) => operation_page(&started.id),
        Err(error) => refused(&format!("/env/{env}/deploys"), error),
    }
}

async fn unlock(
    State(state): State<AppState>,
    SignedInForm(caller): SignedInForm,
    Path(env): Path<String>,
    Form(form): Form<NoteForm>,
) -> Response {
    match state
        .control
        .unlock_environment(&caller.actor, &caller.meta, &env, &form.note)
        .await
    {
        Ok(()) => Redirect::to("/").into_response(),
        Err(error) => refused("/", error),
    }
}

async fn approve(
    State(state): State<AppState>,
    SignedInForm(caller): SignedInForm,
    Path(id): Path<String>,
) -> Response {
    match state
        .control
        .approve_operation(&caller.actor, &caller.meta, &id)
        .await
    {
        Ok(()) => operation_page(&id),
        Err(error) => refused(&format!("/operations/{id}"), error),
    }
}

async fn resolve(
    State(state): State<AppState>,
    SignedInForm(caller): SignedInForm,
    Path(id): Path<String>,
    Form(form): Form<NoteForm>,
) -> Response {
    let succeeded = form.outcome.as_deref() == Some("succeeded");
    match state
        .control
        .resolve_operation(&caller.actor, &caller.meta, &id, &form.note, succeeded)
        .await
    {
        Ok(()) => operation_page(&id),
        Err(error) => refused(&format!("/operations/{id}"), error),
    }
}

async fn rerun(
    State(state): State<AppState>,
    SignedInForm(caller): SignedInForm,
    Path(id): Path<u64>,
    Form(form): Form<RerunForm>,
) -> Response {
    run_action(
        state,
        caller,
        id,
        RunAction::Rerun {
            failed_only: ticked(&form.failed_only),
        },
    )
    .await
}

async fn cancel(
    State(state): State<AppState>,
    SignedInForm(caller): SignedInForm,
    Path(id): Path<u64>,
) -> Response {
    run_action(state, caller, id, RunAction::Cancel).await
}

async fn run_action(state: AppState, caller: SignedIn, id: u64, action: RunAction) -> Response {
    let page = format!("/runs/{id}");
    match state
        .control
        .run_action(&caller.actor, &caller.meta, id, action)
        .await
    {
        Ok(()) => Redirect::to(&page).into_response(),
        Err(error) => refused(&page, error),
    }
}

async fn review(
    State(state): State<AppState>,
    SignedInForm(caller): SignedInForm,
    Form(form): Form<ReviewForm>,
) -> Response {
    let page = match form.seq {
        Some(seq) => format!("/audit/{seq}"),
        None => "/audit".to_owned(),
    };
    match state
        .control
        .mark_reviewed(&caller.actor, &caller.meta, &form.item, &form.note)
        .await
    {
        Ok(_) => Redirect::to(&page).into_response(),
        Err(error) => refused(&page, error),
    }
}

async fn verify(State(state): State<AppState>, SignedInForm(caller): SignedInForm) -> Response {
    match state
        .control
        .verify_audit_as(&caller.actor, &caller.meta)
        .await
    {
        Ok(_) => Redirect::to("/audit").into_response(),
        Err(error) => refused("/audit", error),
    }
}
