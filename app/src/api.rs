//! Server functions: the browser's way into the application layer.
//!
//! Each body only finds the server's [`backend::PanelBackend`] and hands it
//! the request; the backend authenticates, checks the role and audits.

use crate::error::AppError;
use crate::model::{
    AdminView, AuditDetail, AuditView, EnvironmentPage, MigrationsView, NewToken, OperationView,
    Overview, ReleaseView, RollbackView, RunView,
};
use leptos::prelude::*;

/// The form field that carries a rollback's Idempotency-Key. Each page
/// view gets fresh keys; the server's page cache finds them by this name.
pub const IDEMPOTENCY_FIELD: &str = "idempotency_key";

#[cfg(feature = "ssr")]
pub mod backend {
    //! The seam between the pages and the server's application layer.

    use crate::error::AppError;
    use crate::model::{
        AdminView, AuditDetail, AuditQuery, AuditView, EnvironmentPage, MigrationsView, NewToken,
        OperationView, Overview, ReleaseView, RollbackView, RunView,
    };
    use http::request::Parts;
    use std::future::Future;
    use std::sync::Arc;

    /// What the server functions need from the application layer. The
    /// server implements it; `Parts` carries the session and the caller.
    #[async_trait::async_trait]
    pub trait PanelBackend: Send + Sync + 'static {
        async fn overview(&self, request: &Parts) -> Result<Overview, AppError>;
        async fn admin_view(&self, request: &Parts) -> Result<AdminView, AppError>;
        async fn disable_account(&self, request: &Parts, name: String) -> Result<(), AppError>;
        async fn timeline(
            &self,
            request: &Parts,
            env: String,
            cursor: Option<String>,
        ) -> Result<EnvironmentPage<Vec<ReleaseView>>, AppError>;
        async fn runs(
            &self,
            request: &Parts,
            env: String,
            cursor: Option<String>,
        ) -> Result<EnvironmentPage<Vec<RunView>>, AppError>;
        async fn run(&self, request: &Parts, id: u64)
        -> Result<EnvironmentPage<RunView>, AppError>;
        async fn deploys(
            &self,
            request: &Parts,
            env: String,
            cursor: Option<String>,
        ) -> Result<EnvironmentPage<Vec<ReleaseView>>, AppError>;
        async fn migrations(
            &self,
            request: &Parts,
            env: String,
        ) -> Result<EnvironmentPage<MigrationsView>, AppError>;
        async fn rollback(
            &self,
            request: &Parts,
            env: String,
            target: Option<String>,
            database: bool,
            revert_code: bool,
        ) -> Result<RollbackView, AppError>;
        async fn operation(&self, request: &Parts, id: String) -> Result<OperationView, AppError>;
        async fn audit(&self, request: &Parts, query: AuditQuery) -> Result<AuditView, AppError>;
        async fn audit_event(&self, request: &Parts, seq: i64) -> Result<AuditDetail, AppError>;
        async fn create_token(
            &self,
            request: &Parts,
            user: String,
            label: String,
        ) -> Result<NewToken, AppError>;
        async fn revoke_token(&self, request: &Parts, id: String) -> Result<(), AppError>;
    }

    /// How the backend is provided as Leptos context.
    pub type SharedBackend = Arc<dyn PanelBackend>;

    /// Runs `call` with the backend and the current request, and gives the
    /// response the error's HTTP status.
    pub async fn with_backend<T, F, Fut>(call: F) -> Result<T, AppError>
    where
        F: FnOnce(SharedBackend, Parts) -> Fut,
        Fut: Future<Output = Result<T, AppError>>,
    {
        use leptos::prelude::use_context;
        let backend = use_context::<SharedBackend>()
            .ok_or_else(|| AppError::Internal("no-backend".into()))?;
        let parts =
            use_context::<Parts>().ok_or_else(|| AppError::Internal("no-request".into()))?;
        let result = call(backend, parts).await;
        if let Err(error) = &result
            && let Some(response) = use_context::<leptos_axum::ResponseOptions>()
            && let Ok(status) = http::StatusCode::from_u16(error.status())
        {
            response.set_status(status);
        }
        result
    }
}

/// The overview of every configured environment.
#[server(prefix = "/_fn", endpoint = "overview")]
pub async fn get_overview() -> Result<Overview, AppError> {
    backend::with_backend(|b, req| async move { b.overview(&req).await }).await
}

/// Accounts, for admins.
#[server(prefix = "/_fn", endpoint = "admin_view")]
pub async fn get_admin_view() -> Result<AdminView, AppError> {
    backend::with_backend(|b, req| async move { b.admin_view(&req).await }).await
}

/// Disables an account: its sessions stop working at once.
#[server(prefix = "/_fn", endpoint = "disable_account")]
pub async fn disable_account(name: String) -> Result<(), AppError> {
    backend::with_backend(|b, req| async move { b.disable_account(&req, name).await }).await
}

/// One page of an environment's release timeline, newest first: the
/// releases older than `cursor` (a page's `next_cursor`), or the newest.
#[server(prefix = "/_fn", endpoint = "timeline")]
pub async fn get_timeline(
    env: String,
    cursor: Option<String>,
) -> Result<EnvironmentPage<Vec<ReleaseView>>, AppError> {
    backend::with_backend(|b, req| async move { b.timeline(&req, env, cursor).await }).await
}

/// One page of the pipeline runs on an environment's branch, newest first.
#[server(prefix = "/_fn", endpoint = "runs")]
pub async fn get_runs(
    env: String,
    cursor: Option<String>,
) -> Result<EnvironmentPage<Vec<RunView>>, AppError> {
    backend::with_backend(|b, req| async move { b.runs(&req, env, cursor).await }).await
}

/// One run with its jobs and steps.
#[server(prefix = "/_fn", endpoint = "run")]
pub async fn get_run(id: u64) -> Result<EnvironmentPage<RunView>, AppError> {
    backend::with_backend(|b, req| async move { b.run(&req, id).await }).await
}

/// One page of an environment's deploys, newest first.
#[server(prefix = "/_fn", endpoint = "deploys")]
pub async fn get_deploys(
    env: String,
    cursor: Option<String>,
) -> Result<EnvironmentPage<Vec<ReleaseView>>, AppError> {
    backend::with_backend(|b, req| async move { b.deploys(&req, env, cursor).await }).await
}

/// The revision graph of the live commit against the database.
#[server(prefix = "/_fn", endpoint = "migrations")]
pub async fn get_migrations(env: String) -> Result<EnvironmentPage<MigrationsView>, AppError> {
    backend::with_backend(|b, req| async move { b.migrations(&req, env).await }).await
}

/// The guided rollback's plan for a target (None: the last good release)
/// and options. No side effects.
#[server(prefix = "/_fn", endpoint = "rollback")]
pub async fn get_rollback(
    env: String,
    target: Option<String>,
    database: bool,
    revert_code: bool,
) -> Result<RollbackView, AppError> {
    backend::with_backend(|b, req| async move {
        b.rollback(&req, env, target, database, revert_code).await
    })
    .await
}

/// One operation with every step.
#[server(prefix = "/_fn", endpoint = "operation")]
pub async fn get_operation(id: String) -> Result<OperationView, AppError> {
    backend::with_backend(|b, req| async move { b.operation(&req, id).await }).await
}

/// One page of the audit trail with the review queue (leads). The filters
/// are separate arguments: a browser sends them form-encoded, flat.
#[server(prefix = "/_fn", endpoint = "audit")]
#[allow(clippy::too_many_arguments)]
pub async fn get_audit(
    actor: Option<String>,
    action: Option<String>,
    environment: Option<String>,
    outcome: Option<String>,
    target: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<i64>,
) -> Result<AuditView, AppError> {
    let query = crate::model::AuditQuery {
        actor,
        action,
        environment,
        outcome,
        target,
        since,
        until,
        before,
    };
    backend::with_backend(|b, req| async move { b.audit(&req, query).await }).await
}

/// One audit event with everything about its target (leads).
#[server(prefix = "/_fn", endpoint = "audit_event")]
pub async fn get_audit_event(seq: i64) -> Result<AuditDetail, AppError> {
    backend::with_backend(|b, req| async move { b.audit_event(&req, seq).await }).await
}

/// Creates an API token for an account (admins); the reply is the only
/// time the token is shown.
#[server(prefix = "/_fn", endpoint = "create_token")]
pub async fn create_token(user: String, label: String) -> Result<NewToken, AppError> {
    backend::with_backend(|b, req| async move { b.create_token(&req, user, label).await }).await
}

/// Revokes an API token (admins): it stops working at once.
#[server(prefix = "/_fn", endpoint = "revoke_token")]
pub async fn revoke_token(id: String) -> Result<(), AppError> {
    backend::with_backend(|b, req| async move { b.revoke_token(&req, id).await }).await
}
