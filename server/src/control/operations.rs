//! Rollbacks, deploys and CI actions through the application layer: each
//! checks the role, writes the audit event and only then acts. A rollback
//! is planned from the store (and GitHub's compare), refused with the
//! blocking check's sentence, created in one transaction with its event
//! (one active operation per environment, enforced by the store), then
//! carried out by the [`Executor`](crate::operations::Executor).

use super::{ControlError, ControlPlane, Pause, viewer_of};
use crate::audit::{NewEvent, Outcome, RequestMeta};
use crate::config::{EnvironmentConfig, RevertConfig};
use crate::identity::{Actor, random_id};
use crate::operations::{DeployRequest, OperationState, Request, RollbackRequest, request_hash};
use crate::releases;
use crate::rollback::plan::CheckId;
use crate::rollback::{
    self, Level, Plan, PlanInput, RevertMode, RollbackOptions, RunningOperation,
};
use crate::store::operations::{Created, NewOperation, OperationRow, StepRow};
use crate::views;
use app::model::{
    CheckView, OneClick, OperationBrief, OperationStepView, OperationView, PathStepView,
    PlanCommitView, Role, RollbackView, TargetView,
};
use domain::{IdempotencyKey, short_sha};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// How many releases a plan looks at.
const PLAN_RELEASES: i64 = 100;
/// How long a plan waits for GitHub's compare and branch head.
const GITHUB_WAIT: Duration = Duration::from_secs(10);

/// What a person asks a rollback to do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackAsk {
    /// None: the last good release.
    #[serde(default)]
    pub target_deploy_id: Option<String>,
    #[serde(default)]
    pub database: bool,
    #[serde(default)]
    pub revert_code: bool,
    #[serde(default)]
    pub reason: String,
    /// The target revision, typed, when the downgrade destroys data.
    #[serde(default)]
    pub confirm_revision: Option<String>,
    /// The branch head the plan was shown at; a moved branch re-plans.
    #[serde(default)]
    pub planned_branch_head: Option<String>,
}

/// One keyed request on its way: who asked for what, with which
/// Idempotency-Key, and the fingerprint of its body.
struct Attempt<'a> {
    actor: &'a Actor,
    meta: &'a RequestMeta,
    action: &'static str,
    env: &'a str,
    key: Option<&'a IdempotencyKey>,
    hash: String,
}

/// What a person asks a deploy to do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployAsk {
    /// None: the branch's head.
    #[serde(default)]
    pub commit: Option<String>,
    #[serde(default)]
    pub reason: String,
}

/// A created (or replayed) operation: the same reply for the same key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Started {
    pub id: String,
    pub kind: String,
    pub environment: String,
    pub requested_by: String,
    pub created_at: String,
    pub url: String,
    /// `running`, or `awaiting_approval` when a second lead must approve.
    pub initial_state: OperationState,
    /// True when this reply repeats an earlier one for the same key.
    #[serde(skip)]
    pub replayed: bool,
}

impl Started {
    fn of(op: &OperationRow, replayed: bool) -> Started {
        // From the stored plan, so a replay later says what the first reply said.
        let second_approval = serde_json::from_str::<serde_json::Value>(&op.plan)
            .ok()
            .and_then(|p| p.pointer("/requirements/second_approval")?.as_bool())
            == Some(true);
        let initial_state = if second_approval {
            OperationState::AwaitingApproval
        } else {
            OperationState::Running
        };
        Started {
            id: op.id.clone(),
            kind: op.kind.clone(),
            environment: op.environment.clone(),
            requested_by: op.requested_by.clone(),
            created_at: op.created_at.clone(),
            url: format!("/api/v1/operations/{}", op.id),
            initial_state,
            replayed,
        }
    }
}

fn reason_text(reason: &str) -> Result<String, ControlError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ControlError::Invalid(
            "Say why: the reason goes into the lock, the audit trail and the announcement.".into(),
        ));
    }
    if reason.chars().count() > 500 {
        return Err(ControlError::Invalid(
            "Keep the reason under 500 characters.".into(),
        ));
    }
    Ok(reason.to_owned())
}

fn level_word(level: Level) -> &'static str {
    match level {
        Level::Pass => "pass",
        Level::Warn => "warn",
        Level::Block => "block",
    }
}

fn brief(op: &OperationRow) -> OperationBrief {
    OperationBrief {
        id: op.id.clone(),
        kind: op.kind.clone(),
        state: op.state.to_string(),
        requested_by: op.requested_by.clone(),
        created_at: op.created_at.clone(),
    }
}

fn step_view(step: StepRow) -> OperationStepView {
    OperationStepView {
        position: step.position,
        name: step.name,
        title: step.title,
        state: step.state.to_string(),
        started_at: step.started_at,
        finished_at: step.finished_at,
        upstream_id: step.upstream_id,
        upstream_url: step.upstream_url,
        detail: step.detail,
        log: step.log,
    }
}

/// The release's commit with its migrations directory, from GitHub (the
/// commit itself only when the store does not have it).
async fn read_commit(
    gh: &dyn crate::integrations::github::GithubSource,
    release: &releases::Release,
    migrations_path: &str,
) -> Result<releases::CommitRecord, crate::integrations::github::GithubError> {
    let sha = &release.deploy.commit_sha;
    let mut commit = match &release.commit {
        Some(commit) => commit.clone(),
        None => gh.commit(sha).await?,
    };
    commit.migrations = Some(gh.migrations_at(sha, migrations_path).await?);
    Ok(commit)
}

impl ControlPlane {
    /// Everything a plan is made from, read from the store; with `github`,
    /// also GitHub's compare and the branch's head (bounded waits).
    async fn plan_input(
        &self,
        env: &EnvironmentConfig,
        target: Option<String>,
        options: RollbackOptions,
        planned_head: Option<String>,
        github: bool,
    ) -> Result<PlanInput, ControlError> {
        let name = env.name.as_str();
        let releases = self
            .releases_reaching(env, PLAN_RELEASES, target.as_deref())
            .await?;
        let database = self.store.database_state(name).await?.map(|d| d.versions);
        let running = self
            .store
            .active_operations()
            .await?
            .into_iter()
            .find(|op| op.environment == name)
            .map(|op| RunningOperation {
                id: op.id,
                kind: op.kind,
            });
        let lock = self
            .store
            .environment_lock(name)
            .await?
            .map(|l| rollback::Lock {
                reason: l.reason,
                by: Some(l.locked_by),
            });
        let mut input = PlanInput {
            environment: name.to_owned(),
            target,
            database,
            comparison: None,
            commit_ci: BTreeMap::new(),
            running,
            lock,
            options,
            branch_head_now: None,
            branch_head_planned: planned_head,
            retention: None,
            now: time::OffsetDateTime::now_utc(),
            require_approval_for: env.require_approval_for.clone(),
            releases,
        };
        let gh = self
            .executor
            .as_ref()
            .and_then(|e| e.upstreams().github.clone());
        if github && let Some(gh) = gh {
            let live = input.releases.iter().find(|r| r.is_live).cloned();
            let target = match &input.target {
                Some(id) => input.releases.iter().find(|r| &r.deploy.id == id).cloned(),
                None => releases::last_good(&input.releases).cloned(),
            };
            // The sync reads the commits of the newest deploys only; an
            // older target's commit and migrations are read when a plan
            // needs them, and kept.
            if let Some(target) = &target
                && target
                    .commit
                    .as_ref()
                    .and_then(|c| c.migrations.as_ref())
                    .is_none()
                && let Ok(Ok(commit)) = tokio::time::timeout(
                    GITHUB_WAIT,
                    read_commit(gh.as_ref(), target, &env.migrations_path),
                )
                .await
            {
                self.store
                    .upsert_commits(std::slice::from_ref(&commit))
                    .await?;
                for release in input
                    .releases
                    .iter_mut()
                    .filter(|r| r.deploy.commit_sha == commit.sha)
                {
                    release.commit = Some(commit.clone());
                }
            }
            if let (Some(live), Some(target)) = (live, target)
                && let Ok(Ok(comparison)) = tokio::time::timeout(
                    GITHUB_WAIT,
                    gh.compare(&target.deploy.commit_sha, &live.deploy.commit_sha),
                )
                .await
            {
                let shas: Vec<String> = comparison.commits.iter().map(|c| c.sha.clone()).collect();
                let runs = self.store.runs_for_shas(&shas).await?;
                for sha in shas {
                    let mut of: Vec<_> = runs
                        .iter()
                        .filter(|r| r.head_sha == sha && r.workflow_file == env.deploy_workflow)
                        .collect();
                    of.sort_by_key(|r| std::cmp::Reverse(r.created_at));
                    input.commit_ci.insert(sha, releases::ci_state(&of));
                }
                input.comparison = Some(comparison);
            }
            if let Ok(Ok(head)) =
                tokio::time::timeout(GITHUB_WAIT, gh.branch_head(&env.branch)).await
            {
                input.branch_head_now = Some(head);
            }
        }
        Ok(input)
    }

    fn options(&self, database: bool, revert_code: bool) -> RollbackOptions {
        RollbackOptions {
            database,
            revert_code,
            revert_mode: match self.config.operations.revert {
                RevertConfig::PullRequest => RevertMode::PullRequest,
                RevertConfig::FastForward => RevertMode::FastForward,
            },
        }
    }

    /// The rollback plan, with no side effects (viewer and up).
    pub async fn rollback_plan(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        env: &str,
        ask: &RollbackAsk,
    ) -> Result<Plan, ControlError> {
        self.require(actor, Role::Viewer, "rollback.plan", meta)
            .await?;
        let config = self.environment(env)?;
        let input = self
            .plan_input(
                config,
                ask.target_deploy_id.clone(),
                self.options(ask.database, ask.revert_code),
                ask.planned_branch_head.clone(),
                true,
            )
            .await?;
        Ok(rollback::plan(&input))
    }

    /// The guided rollback page for `ask`'s target and options.
    pub async fn rollback_view(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        env: &str,
        ask: &RollbackAsk,
    ) -> Result<RollbackView, ControlError> {
        self.require(actor, Role::Viewer, "rollback.plan", meta)
            .await?;
        let config = self.environment(env)?;
        let options = self.options(ask.database, ask.revert_code);
        let input = self
            .plan_input(config, ask.target_deploy_id.clone(), options, None, true)
            .await?;
        let plan = rollback::plan(&input);
        let links = self.links();
        let live_id = plan.from.as_ref().map(|r| r.deploy.id.clone());
        let targets = input
            .releases
            .iter()
            .filter(|r| Some(&r.deploy.id) != live_id.as_ref())
            .map(|release| {
                let mut one = input.clone();
                one.target = Some(release.deploy.id.clone());
                one.options = RollbackOptions::default();
                one.comparison = None;
                let p = rollback::plan(&one);
                TargetView {
                    deploy_id: release.deploy.id.clone(),
                    label: rollback::plan::label(release),
                    created_at: views::release_view(release, &links).created_at,
                    verdict: views::release_view(release, &links).verdict,
                    unavailable: p
                        .checks
                        .iter()
                        .find(|c| {
                            c.level == Level::Block
                                && matches!(c.id, CheckId::Target | CheckId::TargetWentLive)
                        })
                        .map(|c| c.sentence.clone()),
                }
            })
            .collect();
        let summary = self
            .environment_summaries()
            .into_iter()
            .find(|s| s.name == env)
            .ok_or_else(|| ControlError::NotFound(format!("the environment {env}")))?;
        Ok(RollbackView {
            viewer: viewer_of(actor),
            environment: summary,
            from: plan.from.as_ref().map(|r| views::release_view(r, &links)),
            to: plan.to.as_ref().map(|r| views::release_view(r, &links)),
            targets,
            database: ask.database,
            revert_code: ask.revert_code,
            commits: plan
                .commits
                .iter()
                .map(|c| PlanCommitView {
                    sha: c.commit.sha.clone(),
                    message: c.commit.message.lines().next().unwrap_or("").to_owned(),
                    author: c.commit.author.clone(),
                    ci: c.ci.map(|ci| views::ci_word(ci).to_owned()),
                })
                .collect(),
            current_revisions: plan.database.clone(),
            target_heads: plan.target_heads.clone(),
            path: plan
                .alembic_path
                .iter()
                .map(|r| PathStepView {
                    revision: r.id.clone(),
                    message: r.message.clone(),
                    data_loss: r.data_loss.iter().map(|d| d.detail.clone()).collect(),
                })
                .collect(),
            downgrade_to: plan.downgrade_to.clone(),
            needs_database_change: plan.needs_database_change,
            checks: plan
                .checks
                .iter()
                .map(|c| CheckView {
                    id: c.id.to_string(),
                    level: level_word(c.level).to_owned(),
                    sentence: c.sentence.clone(),
                })
                .collect(),
            required_role: plan.requirements.required_role,
            typed_confirmation: plan.requirements.typed_confirmation.clone(),
            second_approval: plan.requirements.second_approval,
            break_glass: plan.requirements.break_glass,
            blocked: plan.blocked(),
            branch_head: input.branch_head_now.clone(),
            // The page's form gets its own (see `web::backend`).
            idempotency_key: String::new(),
        })
    }

    /// The overview's one-click offer for `env`, from the store only.
    pub(super) async fn one_click(
        &self,
        env: &EnvironmentConfig,
    ) -> Result<Option<OneClick>, ControlError> {
        let input = self
            .plan_input(env, None, RollbackOptions::default(), None, false)
            .await?;
        let plan = rollback::plan(&input);
        let Some(to) = &plan.to else {
            return Ok(None);
        };
        Ok(Some(OneClick {
            target_deploy_id: to.deploy.id.clone(),
            label: rollback::plan::label(to),
            direct: plan.one_click(),
            blocked: plan
                .checks
                .iter()
                .find(|c| c.level == Level::Block)
                .map(|c| c.sentence.clone()),
            // Filled per page view (the environments are cached).
            idempotency_key: String::new(),
        }))
    }

    /// Writes a refusal and gives the error back.
    async fn refuse<T>(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        action: &str,
        env: &str,
        error: ControlError,
    ) -> Result<T, ControlError> {
        let event = NewEvent::new(actor.record(), action, Outcome::Denied, meta)
            .environment(env)
            .error(error.to_string());
        self.store.append_audit(&event).await?;
        Err(error)
    }

    /// An earlier operation with this key, replayed when the body is the same.
    async fn replay(
        &self,
        attempt: &Attempt<'_>,
        existing: OperationRow,
    ) -> Result<Started, ControlError> {
        if existing.request_hash == attempt.hash {
            return Ok(Started::of(&existing, true));
        }
        let error = ControlError::Invalid(format!(
            "This Idempotency-Key was used for another request (operation {}); use a new key for a new request.",
            existing.id
        ));
        self.refuse_attempt(attempt, error).await
    }

    /// Writes the attempt's refusal and gives the error back.
    async fn refuse_attempt(
        &self,
        attempt: &Attempt<'_>,
        error: ControlError,
    ) -> Result<Started, ControlError> {
        self.refuse(
            attempt.actor,
            attempt.meta,
            attempt.action,
            attempt.env,
            error,
        )
        .await
    }

    /// Refuses a keyed request, unless its key started an operation in the
    /// meantime: a request with the same key that won the race (on this
    /// panel or another) may be what made this one's plan block, and its
    /// operation is the answer to this one too. Read after everything the
    /// refusal was decided from, so a refusal is only ever given for a state
    /// in which the key had started nothing.
    async fn refuse_keyed(
        &self,
        attempt: &Attempt<'_>,
        error: ControlError,
    ) -> Result<Started, ControlError> {
        if let Some(key) = attempt.key
            && let Some(existing) = self
                .store
                .operation_by_key(&attempt.actor.name, key.as_str())
                .await?
        {
            return self.replay(attempt, existing).await;
        }
        self.refuse_attempt(attempt, error).await
    }

    /// Creates the operation and starts it, or says why not. The store
    /// decides in one transaction whether the key started one already,
    /// another operation is active, or the environment is locked.
    async fn create(
        &self,
        attempt: &Attempt<'_>,
        request: Request,
        plan: serde_json::Value,
        awaiting_approval: bool,
        break_glass: bool,
    ) -> Result<Started, ControlError> {
        let (actor, env, key) = (attempt.actor, attempt.env, attempt.key);
        let id = random_id();
        let new = NewOperation {
            id: id.clone(),
            environment: env.to_owned(),
            kind: request.kind().to_owned(),
            state: if awaiting_approval {
                OperationState::AwaitingApproval
            } else {
                OperationState::Running
            }
            .to_owned(),
            request: serde_json::to_string(&request).expect("a request always serialises"),
            plan: plan.to_string(),
            requested_by: actor.name.clone(),
            requested_role: actor.role.as_str().to_owned(),
            break_glass,
            idempotency_key: key.map(|k| k.as_str().to_owned()),
            request_hash: attempt.hash.clone(),
            steps: request
                .steps()
                .into_iter()
                .map(|s| (s.name().to_owned(), s.title(&request)))
                .collect(),
        };
        let event = NewEvent::new(
            actor.record(),
            attempt.action,
            Outcome::Started,
            attempt.meta,
        )
        .environment(env)
        .target(&id)
        .params(json!({
            "request": request,
            "break_glass": break_glass,
            "awaiting_approval": awaiting_approval,
            "idempotency_key": key,
        }));
        match self.store.create_operation(&new, &event).await {
            Ok(Created::New(op)) => {
                if !awaiting_approval && let Some(executor) = &self.executor {
                    executor.start(&op.id);
                }
                self.changed(env);
                Ok(Started::of(&op, false))
            }
            Ok(Created::Existing(op)) => self.replay(attempt, op).await,
            Ok(Created::Busy(op)) => {
                let error = ControlError::Conflict(format!(
                    "Operation {} ({} requested by {}, {}) is already active on {env}; wait for it or have a lead resolve it.",
                    op.id,
                    op.kind,
                    op.requested_by,
                    op.state.as_str().replace('_', " ")
                ));
                self.refuse_keyed(attempt, error).await
            }
            Ok(Created::Locked(lock)) => {
                let error = ControlError::Conflict(format!(
                    "{env} is locked by {} since {}: {}. A lead must unlock it first.",
                    lock.locked_by, lock.locked_at, lock.reason
                ));
                self.refuse_keyed(attempt, error).await
            }
            Err(crate::store::StoreError::Duplicate) => {
                // The unique indexes caught a race the checks did not see.
                let error = ControlError::Conflict(format!(
                    "Another operation was started on {env} at the same moment."
                ));
                self.refuse_keyed(attempt, error).await
            }
            Err(e) => Err(e.into()),
        }
    }

    fn changed(&self, env: &str) {
        if let Some(on_change) = &self.on_change {
            on_change(env, "operation");
        }
    }

    /// Starts a rollback (deployer and up; a database downgrade needs a
    /// lead). `key` is the Idempotency-Key. The order of the answers is
    /// the role (403) before the rules (409, 422): a deployer asking for a
    /// downgrade hears that it needs a lead whatever the preflight says.
    pub async fn start_rollback(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        env: &str,
        ask: &RollbackAsk,
        key: Option<&IdempotencyKey>,
    ) -> Result<Started, ControlError> {
        const ACTION: &str = "rollback.start";
        self.require_on(actor, Role::Deployer, ACTION, Some(env), meta)
            .await?;
        let config = self.environment(env)?;
        let attempt = Attempt {
            actor,
            meta,
            action: ACTION,
            env,
            key,
            hash: request_hash(&json!({
                "environment": env,
                "target_deploy_id": ask.target_deploy_id,
                "database": ask.database,
                "revert_code": ask.revert_code,
                "reason": ask.reason.trim(),
                "confirm_revision": ask.confirm_revision,
            })),
        };
        if let Some(key) = key
            && let Some(existing) = self
                .store
                .operation_by_key(&actor.name, key.as_str())
                .await?
        {
            return self.replay(&attempt, existing).await;
        }
        self.pause(Pause::AfterKeyLookup).await;
        let input = self
            .plan_input(
                config,
                ask.target_deploy_id.clone(),
                self.options(ask.database, ask.revert_code),
                ask.planned_branch_head.clone(),
                true,
            )
            .await?;
        let plan = rollback::plan(&input);
        let requirements = &plan.requirements;
        self.require_on(actor, requirements.required_role, ACTION, Some(env), meta)
            .await?;
        let reason = match reason_text(&ask.reason) {
            Ok(reason) => reason,
            Err(error) => return self.refuse_keyed(&attempt, error).await,
        };
        let blocks: Vec<_> = plan
            .checks
            .iter()
            .filter(|c| c.level == Level::Block)
            .collect();
        if let Some(check) = blocks
            .iter()
            .find(|c| matches!(c.id, CheckId::Operation | CheckId::Lock))
        {
            let error = ControlError::Conflict(check.sentence.clone());
            return self.refuse_keyed(&attempt, error).await;
        }
        if !blocks.is_empty() {
            let sentences: Vec<_> = blocks.iter().map(|c| c.sentence.as_str()).collect();
            let error = ControlError::Invalid(format!(
                "The preflight blocks this rollback: {}",
                sentences.join(" ")
            ));
            return self.refuse_keyed(&attempt, error).await;
        }
        if let Some(revision) = &requirements.typed_confirmation
            && ask.confirm_revision.as_deref().map(str::trim) != Some(revision.as_str())
        {
            let error = ControlError::Invalid(format!(
                "This downgrade destroys data: type the target revision {revision} to confirm."
            ));
            return self.refuse_keyed(&attempt, error).await;
        }
        let Some(to) = &plan.to else {
            let error = ControlError::Invalid("The plan has no target release.".into());
            return self.refuse_keyed(&attempt, error).await;
        };
        let database = ask.database && plan.needs_database_change;
        let request = Request::Rollback(RollbackRequest {
            target_deploy_id: to.deploy.id.clone(),
            target_commit: to.deploy.commit_sha.clone(),
            from_deploy_id: plan.from.as_ref().map(|r| r.deploy.id.clone()),
            database,
            revert_code: ask.revert_code,
            revert_mode: plan.options.revert_mode,
            downgrade_to: if database {
                plan.downgrade_to.clone()
            } else {
                None
            },
            database_only: plan.database_only,
            reason,
        });
        let break_glass = requirements.break_glass && !actor.role.allows(Role::Lead);
        let plan_json = serde_json::to_value(&plan).expect("a plan always serialises");
        self.create(
            &attempt,
            request,
            plan_json,
            requirements.second_approval,
            break_glass,
        )
        .await
    }

    /// Deploys the branch head or a commit through Render's API (deployer
    /// and up); refused while the environment is locked or busy.
    pub async fn start_deploy(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        env: &str,
        ask: &DeployAsk,
        key: Option<&IdempotencyKey>,
    ) -> Result<Started, ControlError> {
        const ACTION: &str = "deploy.trigger";
        self.require_on(actor, Role::Deployer, ACTION, Some(env), meta)
            .await?;
        self.environment(env)?;
        let commit = ask
            .commit
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        let reason = if ask.reason.trim().is_empty() {
            "deploy from Flightdeck".to_owned()
        } else {
            ask.reason.trim().to_owned()
        };
        let attempt = Attempt {
            actor,
            meta,
            action: ACTION,
            env,
            key,
            hash: request_hash(&json!({"environment": env, "commit": commit, "reason": reason})),
        };
        if let Some(sha) = commit
            && (!(7..=40).contains(&sha.len()) || !sha.chars().all(|c| c.is_ascii_hexdigit()))
        {
            let error = ControlError::Invalid(format!("`{sha}` is not a commit sha."));
            return self.refuse_keyed(&attempt, error).await;
        }
        if let Err(error) = reason_text(&reason) {
            return self.refuse_keyed(&attempt, error).await;
        }
        let request = Request::Deploy(DeployRequest {
            commit: commit.map(str::to_owned),
            reason,
        });
        self.create(&attempt, request, json!({}), false, false)
            .await
    }

    /// One operation with its steps (viewer and up).
    pub async fn operation_view(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        id: &str,
    ) -> Result<OperationView, ControlError> {
        self.require(actor, Role::Viewer, "operation.view", meta)
            .await?;
        let (op, steps) = self.operation_row(id).await?;
        let request: Option<Request> = serde_json::from_str(&op.request).ok();
        let lock = self.store.environment_lock(&op.environment).await?;
        let is_lead = actor.role.allows(Role::Lead);
        let summary = match &request {
            Some(Request::Rollback(r)) if r.database_only => format!(
                "Bring {}'s database down to {} under the live code of deploy {} ({})",
                op.environment,
                r.downgrade_to.as_deref().unwrap_or("?"),
                r.target_deploy_id,
                short_sha(&r.target_commit),
            ),
            Some(Request::Rollback(r)) => format!(
                "Roll {} back to deploy {} ({}){}{}",
                op.environment,
                r.target_deploy_id,
                short_sha(&r.target_commit),
                if r.database {
                    format!(
                        ", downgrading the database to {}",
                        r.downgrade_to.as_deref().unwrap_or("?")
                    )
                } else {
                    String::new()
                },
                if r.revert_code {
                    ", reverting the code on GitHub"
                } else {
                    ""
                },
            ),
            Some(Request::Deploy(d)) => format!(
                "Deploy {} to {}",
                d.commit
                    .as_deref()
                    .map(short_sha)
                    .unwrap_or("the branch's head"),
                op.environment
            ),
            None => format!("{} on {}", op.kind, op.environment),
        };
        Ok(OperationView {
            viewer: viewer_of(actor),
            brief: brief(&op),
            environment: op.environment.clone(),
            reason: request
                .as_ref()
                .map(|r| r.reason().to_owned())
                .unwrap_or_default(),
            summary,
            requested_role: op.requested_role.clone(),
            approved_by: op.approved_by.clone(),
            break_glass: op.break_glass == 1,
            updated_at: op.updated_at.clone(),
            finished_at: op.finished_at.clone(),
            error: op.error.clone(),
            steps: steps.into_iter().map(step_view).collect(),
            can_approve: is_lead
                && op.state == OperationState::AwaitingApproval
                && op.requested_by != actor.name,
            can_resolve: is_lead
                && (op.state == OperationState::NeedsAttention
                    || op.state == OperationState::AwaitingApproval),
            can_unlock: is_lead && lock.is_some() && op.active == 0,
            locked: lock.is_some(),
        })
    }

    async fn operation_row(&self, id: &str) -> Result<(OperationRow, Vec<StepRow>), ControlError> {
        self.store
            .operation(id)
            .await?
            .ok_or_else(|| ControlError::NotFound(format!("operation {id}")))
    }

    /// A second lead approves a waiting operation, which then starts.
    pub async fn approve_operation(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        id: &str,
    ) -> Result<(), ControlError> {
        const ACTION: &str = "operation.approve";
        self.require(actor, Role::Lead, ACTION, meta).await?;
        let (op, _) = self.operation_row(id).await?;
        if op.requested_by == actor.name {
            let error = ControlError::Forbidden(
                "A second lead must approve: you requested this operation.".into(),
            );
            return self
                .refuse(actor, meta, ACTION, &op.environment, error)
                .await;
        }
        let event = NewEvent::new(actor.record(), ACTION, Outcome::Succeeded, meta)
            .environment(&op.environment)
            .target(id)
            .params(json!({ "requested_by": op.requested_by }));
        let moved = self
            .store
            .set_operation_state(
                id,
                &[OperationState::AwaitingApproval],
                OperationState::Running,
                None,
                Some(&actor.name),
                &event,
            )
            .await?;
        if !moved {
            let error = ControlError::Conflict(format!(
                "Operation {id} is {}, not waiting for approval.",
                op.state.as_str().replace('_', " ")
            ));
            return self
                .refuse(actor, meta, ACTION, &op.environment, error)
                .await;
        }
        if let Some(executor) = &self.executor {
            executor.start(id);
        }
        self.changed(&op.environment);
        Ok(())
    }

    /// A lead closes an operation that needs attention (after checking
    /// upstream by hand) or rejects one waiting for approval, with a note.
    /// The environment's lock stays until it is unlocked.
    pub async fn resolve_operation(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        id: &str,
        note: &str,
        succeeded: bool,
    ) -> Result<(), ControlError> {
        const ACTION: &str = "operation.resolve";
        self.require(actor, Role::Lead, ACTION, meta).await?;
        let (op, _) = self.operation_row(id).await?;
        let note = match reason_text(note) {
            Ok(note) => note,
            Err(error) => {
                return self
                    .refuse(actor, meta, ACTION, &op.environment, error)
                    .await;
            }
        };
        let to = if succeeded {
            OperationState::Succeeded
        } else {
            OperationState::Failed
        };
        let event = NewEvent::new(actor.record(), ACTION, Outcome::Succeeded, meta)
            .environment(&op.environment)
            .target(id)
            .params(json!({ "note": note, "from": op.state, "to": to }));
        let moved = self
            .store
            .set_operation_state(
                id,
                &[
                    OperationState::NeedsAttention,
                    OperationState::AwaitingApproval,
                ],
                to,
                Some(&format!("resolved by {}: {note}", actor.name)),
                None,
                &event,
            )
            .await?;
        if !moved {
            let error = ControlError::Conflict(format!(
                "Operation {id} is {}; only one that needs attention or waits for approval is resolved by hand.",
                op.state.as_str().replace('_', " ")
            ));
            return self
                .refuse(actor, meta, ACTION, &op.environment, error)
                .await;
        }
        self.changed(&op.environment);
        Ok(())
    }

    /// Re-runs (all or the failed jobs of) or cancels a CI run (deployer and
    /// up). The intent is audited before GitHub is called, the outcome after.
    pub async fn run_action(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        run_id: u64,
        action: RunAction,
    ) -> Result<(), ControlError> {
        let name = action.audit_name();
        self.require(actor, Role::Deployer, name, meta).await?;
        let run = self
            .store
            .run(run_id)
            .await?
            .ok_or_else(|| ControlError::NotFound(format!("run {run_id}")))?;
        let Some(github) = self
            .executor
            .as_ref()
            .and_then(|e| e.upstreams().github.clone())
        else {
            return Err(ControlError::Conflict(
                "GitHub is not configured or its token variable is not set.".into(),
            ));
        };
        let env = self
            .config
            .environments
            .iter()
            .find(|e| e.branch == run.head_branch)
            .map(|e| e.name.to_string());
        let event = |outcome| {
            let mut e = NewEvent::new(actor.record(), name, outcome, meta)
                .target(run_id.to_string())
                .params(
                    json!({ "run": run_id, "workflow": run.workflow_file, "sha": run.head_sha }),
                );
            if let Some(env) = &env {
                e = e.environment(env);
            }
            e
        };
        self.store.append_audit(&event(Outcome::Started)).await?;
        let result = match action {
            RunAction::Rerun { failed_only } => github.rerun(run_id, failed_only).await,
            RunAction::Cancel => github.cancel(run_id).await,
        };
        match result {
            Ok(()) => {
                self.store.append_audit(&event(Outcome::Succeeded)).await?;
                Ok(())
            }
            Err(error) => {
                let message = format!("GitHub refused: {error}");
                self.store
                    .append_audit(&event(Outcome::Failed).error(message.clone()))
                    .await?;
                Err(ControlError::Conflict(message))
            }
        }
    }

    /// The environment's lock and active operation, for the overview.
    pub(super) async fn lock_and_operation(
        &self,
        env: &str,
    ) -> Result<(Option<app::model::LockView>, Option<OperationBrief>), ControlError> {
        let lock = self
            .store
            .environment_lock(env)
            .await?
            .map(|l| app::model::LockView {
                reason: l.reason,
                locked_by: l.locked_by,
                locked_at: l.locked_at,
            });
        let op = match self
            .store
            .active_operations()
            .await?
            .into_iter()
            .find(|o| o.environment == env)
        {
            Some(op) => Some(brief(&op)),
            None => self
                .store
                .recent_operations(env, 1)
                .await?
                .first()
                .map(brief),
        };
        Ok((lock, op))
    }
}

/// What to do to a CI run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAction {
    Rerun { failed_only: bool },
    Cancel,
}

impl RunAction {
    fn audit_name(self) -> &'static str {
        match self {
            RunAction::Rerun { .. } => "run.rerun",
            RunAction::Cancel => "run.cancel",
        }
    }
}
