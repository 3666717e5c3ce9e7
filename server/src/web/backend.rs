//! The server functions' view of the application layer.

use super::Caller;
use crate::control::{ControlError, ControlPlane, PageAsk};
use crate::identity::Actor;
use app::api::backend::PanelBackend;
use app::error::AppError;
use app::model::{
    AdminView, AuditDetail, AuditQuery, AuditView, EnvironmentPage, MigrationsView, NewToken,
    OperationView, Overview, ReleaseView, RollbackView, RunView,
};
use http::request::Parts;

/// Implements [`PanelBackend`] over the [`ControlPlane`].
pub(crate) struct WebBackend {
    control: ControlPlane,
}

impl WebBackend {
    pub(crate) fn new(control: ControlPlane) -> Self {
        Self { control }
    }

    /// The caller, who must be signed in; a refusal is audited.
    async fn signed_in(&self, request: &Parts) -> Result<(Actor, Caller), AppError> {
        let caller = request
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| AppError::Internal("no-caller".into()))?;
        let actor = self
            .control
            .signed_in(caller.actor.as_ref(), request.uri.path(), &caller.meta)
            .await
            .map_err(|e| app_error(e, &caller))?;
        Ok((actor, caller))
    }
}

fn app_error(error: ControlError, caller: &Caller) -> AppError {
    match error {
        ControlError::Unauthorized => AppError::Unauthorized,
        ControlError::Forbidden(m) => AppError::Forbidden(m),
        ControlError::NotFound(m) => AppError::NotFound(m),
        ControlError::Conflict(m) => AppError::Conflict(m),
        ControlError::Invalid(m) => AppError::Invalid(m),
        ControlError::RateLimited { message, .. } => AppError::RateLimited(message),
        ControlError::Store(error) => {
            let request = caller.meta.request_id.clone().unwrap_or_default();
            tracing::error!(%error, %request, "store failure in a server function");
            AppError::Internal(request)
        }
    }
}

#[async_trait::async_trait]
impl PanelBackend for WebBackend {
    async fn overview(&self, request: &Parts) -> Result<Overview, AppError> {
        let (actor, caller) = self.signed_in(request).await?;
        let mut overview = self
            .control
            .overview(&actor, &caller.meta)
            .await
            .map_err(|e| app_error(e, &caller))?;
        // The page shows each branch's newest run as one line. Its jobs and
        // steps stay on the run's own page (the REST API's `/environments`
        // still carries them).
        for environment in &mut overview.environments {
            if let Some(run) = &mut environment.branch_head_run {
                run.jobs = Vec::new();
            }
            // A fresh Idempotency-Key for each view's one-click form (a
            // page's concern: the application layer returns none).
            if let Some(one_click) = &mut environment.rollback {
                one_click.idempotency_key = crate::identity::random_id();
            }
        }
        Ok(overview)
    }

    async fn admin_view(&self, request: &Parts) -> Result<AdminView, AppError> {
        let (actor, caller) = self.signed_in(request).await?;
        self.control
            .admin_view(&actor, &caller.meta)
            .await
            .map_err(|e| app_error(e, &caller))
    }

    async fn disable_account(&self, request: &Parts, name: String) -> Result<(), AppError> {
        let (actor, caller) = self.signed_in(request).await?;
        self.control
            .disable_user(&actor, &caller.meta, &name)
            .await
            .map_err(|e| app_error(e, &caller))
    }

    async fn timeline(
        &self,
        request: &Parts,
        env: String,
        cursor: Option<String>,
    ) -> Result<EnvironmentPage<Vec<ReleaseView>>, AppError> {
        let (actor, caller) = self.signed_in(request).await?;
        self.control
            .timeline_page(&actor, &caller.meta, &env, &PageAsk::from_cursor(cursor))
            .await
            .map_err(|e| app_error(e, &caller))
    }

    async fn runs(
        &self,
        request: &Parts,
        env: String,
        cursor: Option<String>,
    ) -> Result<EnvironmentPage<Vec<RunView>>, AppError> {
        let (actor, caller) = self.signed_in(request).await?;
        self.control
            .runs_page(&actor, &caller.meta, &env, &PageAsk::from_cursor(cursor))
            .await
            .map_err(|e| app_error(e, &caller))
    }

    async fn run(&self, request: &Parts, id: u64) -> Result<EnvironmentPage<RunView>, AppError> {
        let (actor, caller) = self.signed_in(request).await?;
        self.control
            .run(&actor, &caller.meta, id)
            .await
            .map_err(|e| app_error(e, &caller))
    }

    async fn deploys(
        &self,
        request: &Parts,
        env: String,
        cursor: Option<String>,
    ) -> Result<EnvironmentPage<Vec<ReleaseView>>, AppError> {
        let (actor, caller) = self.signed_in(request).await?;
        self.control
            .deploys_page(&actor, &caller.meta, &env, &PageAsk::from_cursor(cursor))
            .await
            .map_err(|e| app_error(e, &caller))
    }

    async fn migrations(
        &self,
        request: &Parts,
        env: String,
    ) -> Result<EnvironmentPage<MigrationsView>, AppError> {
        let (actor, caller) = self.signed_in(request).await?;
        self.control
            .migrations(&actor, &caller.meta, &env)
            .await
            .map_err(|e| app_error(e, &caller))
    }

    async fn rollback(
        &self,
        request: &Parts,
        env: String,
        target: Option<String>,
        database: bool,
        revert_code: bool,
    ) -> Result<RollbackView, AppError> {
        let (actor, caller) = self.signed_in(request).await?;
        let ask = crate::control::RollbackAsk {
            target_deploy_id: target.filter(|t| !t.is_empty()),
            database,
            revert_code,
            ..Default::default()
        };
        let mut view = self
            .control
            .rollback_view(&actor, &caller.meta, &env, &ask)
            .await
            .map_err(|e| app_error(e, &caller))?;
        // A fresh Idempotency-Key for the form, so a double submit is one rollback.
        view.idempotency_key = crate::identity::random_id();
        Ok(view)
    }

    async fn operation(&self, request: &Parts, id: String) -> Result<OperationView, AppError> {
        let (actor, caller) = self.signed_in(request).await?;
        self.control
            .operation_view(&actor, &caller.meta, &id)
            .await
            .map_err(|e| app_error(e, &caller))
    }

    async fn audit(&self, request: &Parts, query: AuditQuery) -> Result<AuditView, AppError> {
        let (actor, caller) = self.signed_in(request).await?;
        self.control
            .audit_view(&actor, &caller.meta, query)
            .await
            .map_err(|e| app_error(e, &caller))
    }

    async fn audit_event(&self, request: &Parts, seq: i64) -> Result<AuditDetail, AppError> {
        let (actor, caller) = self.signed_in(request).await?;
        self.control
            .audit_detail(&actor, &caller.meta, seq)
            .await
            .map_err(|e| app_error(e, &caller))
    }

    async fn create_token(
        &self,
        request: &Parts,
        user: String,
        label: String,
    ) -> Result<NewToken, AppError> {
        let (actor, caller) = self.signed_in(request).await?;
        let (row, token) = self
            .control
            .create_token(&actor, &caller.meta, &user, &label)
            .await
            .map_err(|e| app_error(e, &caller))?;
        Ok(NewToken {
            id: row.id,
            user,
            token,
        })
    }

    async fn revoke_token(&self, request: &Parts, id: String) -> Result<(), AppError> {
        let (actor, caller) = self.signed_in(request).await?;
        self.control
            .revoke_token(&actor, &caller.meta, &id)
            .await
            .map_err(|e| app_error(e, &caller))
    }
}
