//! What `/api/v1` takes and answers: its own types, mapped from what the
//! application layer returns, so a change to a page (its view models, a
//! form's Idempotency-Key, who is looking) never changes the API. The
//! OpenAPI document (`docs/openapi.json`) is generated from these.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Formats a time the way the rest of the API writes it (RFC 3339, UTC).
fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

// ---------------------------------------------------------------- errors

/// Every error: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorReply {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// `bad_request`, `unauthorized`, `forbidden`, `cross_origin`,
    /// `not_found`, `method_not_allowed`, `conflict`, `payload_too_large`,
    /// `unsupported_media_type`, `invalid`, `rate_limited` or `internal`.
    #[schema(example = "not_found")]
    pub code: String,
    /// One sentence for a person.
    pub message: String,
}

// ------------------------------------------------------------ who and where

/// A role; each includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Deployer,
    Lead,
    Admin,
}

impl From<app::model::Role> for Role {
    fn from(role: app::model::Role) -> Self {
        match role {
            app::model::Role::Viewer => Role::Viewer,
            app::model::Role::Deployer => Role::Deployer,
            app::model::Role::Lead => Role::Lead,
            app::model::Role::Admin => Role::Admin,
        }
    }
}

/// The caller: the signed-in person, or the account an API token acts as.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Me {
    pub name: String,
    pub role: Role,
}

/// One configured environment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EnvironmentSummary {
    pub name: String,
    pub branch: String,
    pub deploy_workflow: String,
    pub render_service_id: String,
    /// Secret environment variables this environment needs but the panel lacks.
    pub missing_secrets: Vec<String>,
}

impl From<app::model::EnvironmentSummary> for EnvironmentSummary {
    fn from(s: app::model::EnvironmentSummary) -> Self {
        Self {
            name: s.name,
            branch: s.branch,
            deploy_workflow: s.deploy_workflow,
            render_service_id: s.render_service_id,
            missing_secrets: s.missing_secrets,
        }
    }
}

/// An upstream whose data is out of date.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StaleNotice {
    /// `GitHub`, `Render` or `the database`.
    pub source: String,
    /// When data last came in, if ever (RFC 3339).
    pub since: Option<String>,
    /// The last failure, in plain words.
    pub reason: String,
}

impl From<app::model::StaleNotice> for StaleNotice {
    fn from(s: app::model::StaleNotice) -> Self {
        Self {
            source: s.source,
            since: s.since,
            reason: s.reason,
        }
    }
}

fn stale(notices: Vec<app::model::StaleNotice>) -> Vec<StaleNotice> {
    notices.into_iter().map(StaleNotice::from).collect()
}

// ------------------------------------------------------------ the overview

/// One environment with what a team checks first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Environment {
    pub summary: EnvironmentSummary,
    /// The deploy serving now.
    pub live: Option<Release>,
    /// The newest good release before the live one: the one-click rollback target.
    pub last_good: Option<Release>,
    /// The newest pipeline run of the deploy workflow on the environment's branch.
    pub branch_head_run: Option<Run>,
    pub database: Database,
    /// Upstream sources whose data is out of date, and why.
    pub stale: Vec<StaleNotice>,
    /// The environment's lock, when it is locked.
    pub lock: Option<LockBrief>,
    /// The operation running (or waiting, or the last one) on the environment.
    pub operation: Option<OperationBrief>,
    /// The one-click rollback to the last good release, when there is one.
    pub rollback: Option<OneClick>,
}

impl From<app::model::EnvironmentView> for Environment {
    fn from(e: app::model::EnvironmentView) -> Self {
        Self {
            summary: e.summary.into(),
            live: e.live.map(Release::from),
            last_good: e.last_good.map(Release::from),
            branch_head_run: e.branch_head_run.map(Run::from),
            database: e.database.into(),
            stale: stale(e.stale),
            lock: e.lock.map(|l| LockBrief {
                reason: l.reason,
                locked_by: l.locked_by,
                locked_at: l.locked_at,
            }),
            operation: e.operation.map(OperationBrief::from),
            rollback: e.rollback.map(|r| OneClick {
                target_deploy_id: r.target_deploy_id,
                direct: r.direct,
                blocked: r.blocked,
            }),
        }
    }
}

/// An environment's lock as the overview shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LockBrief {
    pub reason: String,
    pub locked_by: String,
    pub locked_at: String,
}

/// The one-click rollback the overview offers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OneClick {
    pub target_deploy_id: String,
    /// No database change and nothing blocks: a reason is enough.
    pub direct: bool,
    /// Why it cannot run now (the first blocking check), if so.
    pub blocked: Option<String>,
}

/// Where the environment's database stands against the live code.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Database {
    /// The rows of `alembic_version`; null until first read.
    pub current: Option<Vec<String>>,
    /// The heads of the live commit's migrations directory, once read.
    pub code_heads: Option<Vec<String>>,
    /// `at_head`, `pending`, `drift` or `unknown`.
    pub state: String,
    /// The state in words.
    pub summary: String,
    pub read_at: Option<String>,
}

impl From<app::model::DatabaseView> for Database {
    fn from(d: app::model::DatabaseView) -> Self {
        Self {
            current: d.current,
            code_heads: d.code_heads,
            state: d.state,
            summary: d.summary,
            read_at: d.read_at,
        }
    }
}

// ------------------------------------------------------ releases and runs

/// One deploy joined with its commit, pipeline and migration heads, judged.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Release {
    pub environment: String,
    pub deploy_id: String,
    /// Render's status word (`live`, `build_failed`, …).
    pub deploy_status: String,
    pub trigger: String,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub commit_sha: String,
    pub commit_message: String,
    pub author: Option<String>,
    /// `passed`, `failed`, `running` or `none`.
    pub ci: String,
    /// `passed`, `failed`, `running` or `not_run`.
    pub smoke: String,
    /// `good`, `bad`, `pending` or `canceled`.
    pub verdict: String,
    /// Why it is judged so, in words.
    pub reason: String,
    pub is_live: bool,
    /// The Alembic heads at this commit, once read.
    pub migration_heads: Option<Vec<String>>,
    pub run_ids: Vec<u64>,
    pub commit_url: String,
    pub deploy_url: String,
}

impl From<app::model::ReleaseView> for Release {
    fn from(r: app::model::ReleaseView) -> Self {
        Self {
            environment: r.environment,
            deploy_id: r.deploy_id,
            deploy_status: r.deploy_status,
            trigger: r.trigger,
            created_at: r.created_at,
            finished_at: r.finished_at,
            commit_sha: r.commit_sha,
            commit_message: r.commit_message,
            author: r.author,
            ci: r.ci,
            smoke: r.smoke,
            verdict: r.verdict,
            reason: r.reason,
            is_live: r.is_live,
            migration_heads: r.migration_heads,
            run_ids: r.run_ids,
            commit_url: r.commit_url,
            deploy_url: r.deploy_url,
        }
    }
}

/// A pipeline run with its jobs and steps.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Run {
    pub id: u64,
    pub name: String,
    pub workflow_file: String,
    pub branch: String,
    pub head_sha: String,
    pub event: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub attempt: u32,
    pub created_at: String,
    pub updated_at: String,
    pub html_url: String,
    pub jobs: Vec<Job>,
}

impl From<app::model::RunView> for Run {
    fn from(r: app::model::RunView) -> Self {
        Self {
            id: r.id,
            name: r.name,
            workflow_file: r.workflow_file,
            branch: r.branch,
            head_sha: r.head_sha,
            event: r.event,
            status: r.status,
            conclusion: r.conclusion,
            attempt: r.attempt,
            created_at: r.created_at,
            updated_at: r.updated_at,
            html_url: r.html_url,
            jobs: r.jobs.into_iter().map(Job::from).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Job {
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub html_url: String,
    pub steps: Vec<Step>,
}

impl From<app::model::JobView> for Job {
    fn from(j: app::model::JobView) -> Self {
        Self {
            name: j.name,
            status: j.status,
            conclusion: j.conclusion,
            started_at: j.started_at,
            completed_at: j.completed_at,
            html_url: j.html_url,
            steps: j
                .steps
                .into_iter()
                .map(|s| Step {
                    number: s.number,
                    name: s.name,
                    status: s.status,
                    conclusion: s.conclusion,
                    started_at: s.started_at,
                    completed_at: s.completed_at,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Step {
    pub number: u32,
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
}

/// One keyset page of an environment's releases or deploys, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReleasePage {
    pub environment: EnvironmentSummary,
    pub stale: Vec<StaleNotice>,
    pub items: Vec<Release>,
    /// The `cursor` of the next, older page; null on the last.
    pub next_cursor: Option<String>,
}

impl From<app::model::EnvironmentPage<Vec<app::model::ReleaseView>>> for ReleasePage {
    fn from(p: app::model::EnvironmentPage<Vec<app::model::ReleaseView>>) -> Self {
        Self {
            environment: p.environment.into(),
            stale: stale(p.stale),
            items: p.items.into_iter().map(Release::from).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

/// One keyset page of the runs on an environment's branch, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunPage {
    pub environment: EnvironmentSummary,
    pub stale: Vec<StaleNotice>,
    pub items: Vec<Run>,
    /// The `cursor` of the next, older page; null on the last.
    pub next_cursor: Option<String>,
}

impl From<app::model::EnvironmentPage<Vec<app::model::RunView>>> for RunPage {
    fn from(p: app::model::EnvironmentPage<Vec<app::model::RunView>>) -> Self {
        Self {
            environment: p.environment.into(),
            stale: stale(p.stale),
            items: p.items.into_iter().map(Run::from).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

/// The live commit's revision graph against the database.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MigrationsPage {
    pub environment: EnvironmentSummary,
    pub stale: Vec<StaleNotice>,
    pub items: Migrations,
}

impl From<app::model::EnvironmentPage<app::model::MigrationsView>> for MigrationsPage {
    fn from(p: app::model::EnvironmentPage<app::model::MigrationsView>) -> Self {
        let m = p.items;
        Self {
            environment: p.environment.into(),
            stale: stale(p.stale),
            items: Migrations {
                environment: m.environment,
                commit_sha: m.commit_sha,
                live_deploy_id: m.live_deploy_id,
                database: m.database.into(),
                heads: m.heads,
                pending: m.pending,
                drift: m.drift,
                revisions: m
                    .revisions
                    .into_iter()
                    .map(|r| GraphRevision {
                        id: r.id,
                        down: r.down,
                        message: r.message,
                        create_date: r.create_date,
                        is_head: r.is_head,
                        is_current: r.is_current,
                        is_applied: r.is_applied,
                        data_loss: r.data_loss,
                    })
                    .collect(),
                problems: m.problems,
            },
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Migrations {
    pub environment: String,
    /// The commit whose migrations directory is shown.
    pub commit_sha: Option<String>,
    /// The live deploy, when one is live.
    pub live_deploy_id: Option<String>,
    pub database: Database,
    pub heads: Vec<String>,
    pub pending: Vec<String>,
    pub drift: Vec<String>,
    /// Parents first.
    pub revisions: Vec<GraphRevision>,
    /// Files that could not be read, as `file:line: why`.
    pub problems: Vec<String>,
}

/// One revision of the graph, placed against the database.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GraphRevision {
    pub id: String,
    pub down: Vec<String>,
    pub message: String,
    pub create_date: Option<String>,
    pub is_head: bool,
    pub is_current: bool,
    pub is_applied: bool,
    /// What its downgrade destroys, in words.
    pub data_loss: Vec<String>,
}

// ------------------------------------------------------------- locks, gate

/// `PUT /environments/{env}/lock`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LockRequest {
    /// Why (required, at most 500 characters; it goes into the audit trail).
    #[serde(default)]
    pub reason: String,
}

/// `DELETE /environments/{env}/lock`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlockRequest {
    /// Why it may deploy again (required, at most 500 characters).
    #[serde(default)]
    pub note: String,
}

/// A held lock.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Lock {
    pub environment: String,
    pub reason: String,
    pub locked_by: String,
    pub locked_at: String,
}

impl From<crate::store::locks::LockRow> for Lock {
    fn from(l: crate::store::locks::LockRow) -> Self {
        Self {
            environment: l.environment,
            reason: l.reason,
            locked_by: l.locked_by,
            locked_at: l.locked_at,
        }
    }
}

/// The gate's answer for one commit.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Gate {
    pub allowed: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<crate::control::locks::Gate> for Gate {
    fn from(g: crate::control::locks::Gate) -> Self {
        Self {
            allowed: g.allowed,
            reason: g.reason,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GateQuery {
    /// The commit about to be deployed.
    #[serde(default)]
    pub sha: String,
}

/// Which keyset page of a list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// A `next_cursor` given before; the newest page without one.
    pub cursor: Option<String>,
    /// How many items (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

impl From<PageQuery> for crate::control::PageAsk {
    fn from(q: PageQuery) -> Self {
        Self {
            cursor: q.cursor,
            limit: q.limit,
        }
    }
}

// ---------------------------------------------------- rollbacks and deploys

/// What a rollback (or its plan) is asked to do.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The deploy to go back to; null or absent: the last good release.
    #[serde(default)]
    pub target_deploy_id: Option<String>,
    /// Downgrade the database to the target code's head.
    #[serde(default)]
    pub database: bool,
    /// Revert the code on the branch to the target commit's tree.
    #[serde(default)]
    pub revert_code: bool,
    /// Why (required to start one; it goes into the audit trail).
    #[serde(default)]
    pub reason: String,
    /// The target revision, typed, when the downgrade destroys data.
    #[serde(default)]
    pub confirm_revision: Option<String>,
    /// The branch head the plan was shown at; a moved branch re-plans.
    #[serde(default)]
    pub planned_branch_head: Option<String>,
}

impl From<RollbackRequest> for crate::control::RollbackAsk {
    fn from(r: RollbackRequest) -> Self {
        Self {
            target_deploy_id: r.target_deploy_id,
            database: r.database,
            revert_code: r.revert_code,
            reason: r.reason,
            confirm_revision: r.confirm_revision,
            planned_branch_head: r.planned_branch_head,
        }
    }
}

/// What a deploy is asked to do.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// The commit to deploy; null or absent: the branch's head.
    #[serde(default)]
    pub commit: Option<String>,
    /// Why (it goes into the audit trail).
    #[serde(default)]
    pub reason: String,
}

impl From<DeployRequest> for crate::control::DeployAsk {
    fn from(d: DeployRequest) -> Self {
        Self {
            commit: d.commit,
            reason: d.reason,
        }
    }
}

/// A created (or replayed) operation: the same reply for the same key.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Started {
    pub id: String,
    /// `rollback` or `deploy`.
    pub kind: String,
    pub environment: String,
    pub requested_by: String,
    pub created_at: String,
    /// The operation's page.
    pub url: String,
    /// `running`, or `awaiting_approval` when a second lead must approve.
    pub initial_state: String,
}

impl From<&crate::control::Started> for Started {
    fn from(s: &crate::control::Started) -> Self {
        Self {
            id: s.id.clone(),
            kind: s.kind.clone(),
            environment: s.environment.clone(),
            requested_by: s.requested_by.clone(),
            created_at: s.created_at.clone(),
            url: s.url.clone(),
            initial_state: s.initial_state.to_string(),
        }
    }
}

/// A rollback plan: what would happen, what blocks, who must confirm.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Plan {
    pub environment: String,
    pub options: PlanOptions,
    /// The live release; null when nothing is live.
    pub from: Option<PlanRelease>,
    /// The release rolled back to; null when there is none.
    pub to: Option<PlanRelease>,
    /// The commits taken off, oldest first.
    pub commits: Vec<PlanCommit>,
    /// The database's `alembic_version` rows, when read.
    pub database: Option<Vec<String>>,
    /// The target code's Alembic heads, when its migrations were read.
    pub target_heads: Option<Vec<String>>,
    /// The revisions a downgrade to the target head undoes, children first.
    pub alembic_path: Vec<RevisionFile>,
    /// The revision `alembic downgrade` is given (`base` for none).
    pub downgrade_to: Option<String>,
    pub needs_database_change: bool,
    /// Only the database is brought to the live code's head.
    pub database_only: bool,
    /// Every check, in a fixed order.
    pub checks: Vec<Check>,
    pub requirements: Requirements,
}

impl From<crate::rollback::Plan> for Plan {
    fn from(p: crate::rollback::Plan) -> Self {
        Self {
            environment: p.environment,
            options: PlanOptions {
                database: p.options.database,
                revert_code: p.options.revert_code,
                revert_mode: match p.options.revert_mode {
                    crate::rollback::RevertMode::PullRequest => RevertMode::PullRequest,
                    crate::rollback::RevertMode::FastForward => RevertMode::FastForward,
                },
            },
            from: p.from.map(PlanRelease::from),
            to: p.to.map(PlanRelease::from),
            commits: p
                .commits
                .into_iter()
                .map(|c| PlanCommit {
                    commit: c.commit.into(),
                    ci: c.ci.map(|ci| serde_word(&ci)),
                })
                .collect(),
            database: p.database,
            target_heads: p.target_heads,
            alembic_path: p.alembic_path.into_iter().map(RevisionFile::from).collect(),
            downgrade_to: p.downgrade_to,
            needs_database_change: p.needs_database_change,
            database_only: p.database_only,
            checks: p
                .checks
                .into_iter()
                .map(|c| Check {
                    id: c.id.to_string(),
                    level: serde_word(&c.level),
                    sentence: c.sentence,
                })
                .collect(),
            requirements: Requirements {
                required_role: p.requirements.required_role.into(),
                typed_confirmation: p.requirements.typed_confirmation,
                second_approval: p.requirements.second_approval,
                break_glass: p.requirements.break_glass,
            },
        }
    }
}

/// The word a unit enum variant serialises to (its `rename_all` form).
fn serde_word(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(word)) => word,
        _ => String::new(),
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlanOptions {
    pub database: bool,
    pub revert_code: bool,
    pub revert_mode: RevertMode,
}

/// How the code is reverted on GitHub.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevertMode {
    PullRequest,
    FastForward,
}

/// A release as the plan weighs it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlanRelease {
    pub deploy: Deploy,
    pub commit: Option<Commit>,
    /// `passed`, `failed`, `running` or `none`.
    pub ci: String,
    /// The ids of the pipeline's runs for this commit, newest first.
    pub runs: Vec<u64>,
    /// `passed`, `failed`, `running` or `not_run`.
    pub smoke: String,
    /// `good`, `bad`, `pending` or `canceled`.
    pub verdict: String,
    pub reason: String,
    pub is_live: bool,
}

impl From<crate::releases::Release> for PlanRelease {
    fn from(r: crate::releases::Release) -> Self {
        let d = r.deploy;
        Self {
            deploy: Deploy {
                id: d.id,
                environment: d.environment,
                service_id: d.service_id,
                commit_sha: d.commit_sha,
                commit_message: d.commit_message,
                status: d.status,
                trigger: d.trigger,
                created_at: rfc3339(d.created_at),
                updated_at: rfc3339(d.updated_at),
                finished_at: d.finished_at.map(rfc3339),
            },
            commit: r.commit.map(Commit::from),
            ci: serde_word(&r.ci),
            runs: r.runs,
            smoke: serde_word(&r.smoke),
            verdict: serde_word(&r.verdict),
            reason: r.reason,
            is_live: r.is_live,
        }
    }
}

/// A Render deploy.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Deploy {
    pub id: String,
    pub environment: String,
    pub service_id: String,
    pub commit_sha: String,
    pub commit_message: String,
    pub status: String,
    pub trigger: String,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

/// A commit, with its migrations directory once read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Commit {
    pub sha: String,
    pub message: String,
    pub author: String,
    pub author_login: Option<String>,
    pub committed_at: String,
    pub html_url: String,
    pub migrations: Option<CommitMigrations>,
}

impl From<crate::releases::CommitRecord> for Commit {
    fn from(c: crate::releases::CommitRecord) -> Self {
        Self {
            sha: c.sha,
            message: c.message,
            author: c.author,
            author_login: c.author_login,
            committed_at: rfc3339(c.committed_at),
            html_url: c.html_url,
            migrations: c.migrations.map(|m| CommitMigrations {
                revisions: m.revisions.into_iter().map(RevisionFile::from).collect(),
                problems: m.problems,
            }),
        }
    }
}

/// The Alembic revisions of one commit, and the files that could not be read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommitMigrations {
    pub revisions: Vec<RevisionFile>,
    pub problems: Vec<String>,
}

/// One Alembic revision file.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RevisionFile {
    pub id: String,
    /// The parents: empty for a base revision, two or more for a merge.
    pub down: Vec<String>,
    pub branch_labels: Vec<String>,
    pub depends_on: Vec<String>,
    pub message: String,
    pub create_date: Option<String>,
    /// What `downgrade()` destroys, in file order.
    pub data_loss: Vec<DataLoss>,
    pub file: String,
}

impl From<crate::alembic::Revision> for RevisionFile {
    fn from(r: crate::alembic::Revision) -> Self {
        Self {
            id: r.id,
            down: r.down,
            branch_labels: r.branch_labels,
            depends_on: r.depends_on,
            message: r.message,
            create_date: r.create_date,
            data_loss: r
                .data_loss
                .into_iter()
                .map(|d| DataLoss {
                    line: d.line as u64,
                    kind: serde_word(&d.kind),
                    detail: d.detail,
                })
                .collect(),
            file: r.file,
        }
    }
}

/// Something a downgrade destroys.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DataLoss {
    pub line: u64,
    /// `drop_table`, `drop_column`, `narrow_column` or `destructive_sql`.
    pub kind: String,
    pub detail: String,
}

/// A commit the rollback takes off.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlanCommit {
    pub commit: Commit,
    /// Its CI result where known: `passed`, `failed`, `running` or `none`.
    pub ci: Option<String>,
}

/// One preflight check.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Check {
    /// Stable: scripts may key on it.
    pub id: String,
    /// `pass`, `warn` or `block`.
    pub level: String,
    pub sentence: String,
}

/// Who must confirm the rollback, and how.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Requirements {
    pub required_role: Role,
    /// The revision to type when the downgrade destroys data.
    pub typed_confirmation: Option<String>,
    /// A second lead must approve.
    pub second_approval: bool,
    /// A deployer may run it alone; it then lands in the leads' review queue.
    pub break_glass: bool,
}

// ------------------------------------------------------------- operations

/// An operation in a line.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OperationBrief {
    pub id: String,
    /// `rollback` or `deploy`.
    pub kind: String,
    /// `awaiting_approval`, `running`, `succeeded`, `failed`, `needs_attention`.
    pub state: String,
    pub requested_by: String,
    pub created_at: String,
}

impl From<app::model::OperationBrief> for OperationBrief {
    fn from(b: app::model::OperationBrief) -> Self {
        Self {
            id: b.id,
            kind: b.kind,
            state: b.state,
            requested_by: b.requested_by,
            created_at: b.created_at,
        }
    }
}

/// An operation with every step.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Operation {
    pub brief: OperationBrief,
    pub environment: String,
    pub reason: String,
    /// What it does, in one sentence.
    pub summary: String,
    pub requested_role: String,
    pub approved_by: Option<String>,
    pub break_glass: bool,
    pub updated_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
    pub steps: Vec<OperationStep>,
    /// The environment is still locked (a lead unlocks it with a note).
    pub locked: bool,
}

impl From<app::model::OperationView> for Operation {
    fn from(o: app::model::OperationView) -> Self {
        Self {
            brief: o.brief.into(),
            environment: o.environment,
            reason: o.reason,
            summary: o.summary,
            requested_role: o.requested_role,
            approved_by: o.approved_by,
            break_glass: o.break_glass,
            updated_at: o.updated_at,
            finished_at: o.finished_at,
            error: o.error,
            steps: o
                .steps
                .into_iter()
                .map(|s| OperationStep {
                    position: s.position,
                    name: s.name,
                    title: s.title,
                    state: s.state,
                    started_at: s.started_at,
                    finished_at: s.finished_at,
                    upstream_id: s.upstream_id,
                    upstream_url: s.upstream_url,
                    detail: s.detail,
                    log: s.log,
                })
                .collect(),
            locked: o.locked,
        }
    }
}

/// One step of an operation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OperationStep {
    pub position: i32,
    pub name: String,
    pub title: String,
    /// `pending`, `running`, `done`, `failed`, `skipped`.
    pub state: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub upstream_id: Option<String>,
    pub upstream_url: Option<String>,
    pub detail: Option<String>,
    pub log: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Approved {
    pub approved: bool,
}

/// How a lead closes an operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    Succeeded,
    #[default]
    Failed,
}

/// `POST /operations/{id}/resolve`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// What was checked (required; it goes into the audit trail).
    #[serde(default)]
    pub note: String,
    /// How it ended; `failed` when absent. For an operation awaiting
    /// approval, resolving rejects it.
    #[serde(default)]
    pub outcome: Resolution,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Resolved {
    pub resolved: bool,
}

/// `POST /runs/{id}/rerun`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RerunRequest {
    /// Re-run only the failed jobs.
    #[serde(default)]
    pub failed_only: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RerunAccepted {
    pub run: u64,
    pub rerun: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CancelAccepted {
    pub run: u64,
    pub cancel: bool,
}

// ------------------------------------------------------------------ audit

/// The trail's filters; every one narrows, all combine.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditListQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub environment: Option<String>,
    /// `started`, `succeeded`, `failed` or `denied`.
    pub outcome: Option<String>,
    /// An operation id, an account name, … whatever the event acted on.
    pub target: Option<String>,
    /// UTC, `2026-11-24T09:30`, `2026-11-24` or RFC 3339; inclusive.
    pub since: Option<String>,
    /// The same forms; exclusive.
    pub until: Option<String>,
    /// The previous page's `next_cursor` (a sequence number).
    pub cursor: Option<i64>,
    /// How many events (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// One page of the trail, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// The `cursor` of the next, older page; null on the last.
    pub next_cursor: Option<i64>,
}

/// One audit event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEvent {
    pub seq: i64,
    pub at: String,
    /// `user`, `token`, `webhook` or `system`.
    pub actor_kind: String,
    pub actor_id: String,
    pub actor_name: String,
    pub actor_role: Option<String>,
    pub action: String,
    pub environment: Option<String>,
    pub target: Option<String>,
    /// The parameters as JSON text.
    pub params: String,
    /// `started`, `succeeded`, `failed` or `denied`.
    pub outcome: String,
    pub error: Option<String>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The event's link in the hash chain.
    pub hash: String,
}

impl From<app::model::AuditEventView> for AuditEvent {
    fn from(e: app::model::AuditEventView) -> Self {
        Self {
            seq: e.seq,
            at: e.at,
            actor_kind: e.actor_kind,
            actor_id: e.actor_id,
            actor_name: e.actor_name,
            actor_role: e.actor_role,
            action: e.action,
            environment: e.environment,
            target: e.target,
            params: e.params,
            outcome: e.outcome,
            error: e.error,
            request_id: e.request_id,
            ip: e.ip,
            user_agent: e.user_agent,
            hash: e.hash,
        }
    }
}

/// The export's format and filters.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `csv` (the default) or `jsonl`.
    #[serde(default)]
    #[param(value_type = Option<ExportFormat>)]
    pub format: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub environment: Option<String>,
    pub outcome: Option<String>,
    pub target: Option<String>,
    /// RFC 3339, inclusive.
    pub since: Option<String>,
    /// RFC 3339, exclusive.
    pub until: Option<String>,
}

impl ExportQuery {
    pub fn filter(&self) -> crate::store::audit_filter::Filter {
        crate::store::audit_filter::Filter {
            actor: self.actor.clone(),
            action: self.action.clone(),
            environment: self.environment.clone(),
            outcome: self.outcome.clone(),
            target: self.target.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
        }
    }
}

/// The export's formats.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

/// The chain recomputed: intact with its length, or where it breaks.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Verification {
    pub intact: bool,
    /// Events checked, when intact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// The first bad sequence number, when broken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<i64>,
    /// What is wrong there, when broken: `hash_mismatch` (a row was edited),
    /// `broken_link` (a row does not point at the one before it) or `gap`
    /// (a sequence number is missing or out of place).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

impl From<crate::audit::Verdict> for Verification {
    fn from(v: crate::audit::Verdict) -> Self {
        match v {
            crate::audit::Verdict::Intact { count } => Self {
                intact: true,
                count: Some(count),
                first_bad_seq: None,
                fault: None,
            },
            crate::audit::Verdict::Broken { seq, fault } => Self {
                intact: false,
                count: None,
                first_bad_seq: Some(seq),
                fault: Some(fault.as_str().to_owned()),
            },
        }
    }
}

/// `POST /audit/reviews`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// `op:<operation id>` or `event:<seq>`, as the review queue names it.
    #[serde(default)]
    pub item: String,
    /// What was checked (required).
    #[serde(default)]
    pub note: String,
}

/// A lead's "reviewed" mark.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReviewMark {
    pub reviewed_by: String,
    pub reviewed_at: String,
    pub note: String,
    /// The `audit.review` event.
    pub seq: i64,
}

impl From<app::model::ReviewMark> for ReviewMark {
    fn from(m: app::model::ReviewMark) -> Self {
        Self {
            reviewed_by: m.reviewed_by,
            reviewed_at: m.reviewed_at,
            note: m.note,
            seq: m.seq,
        }
    }
}
