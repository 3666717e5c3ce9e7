//! Types that cross the wire between the server and the browser.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a person may do in the panel. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Deployer,
    Lead,
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Deployer, Role::Lead, Role::Admin];

    /// The role's name as typed on the command line and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Deployer => "deployer",
            Role::Lead => "lead",
            Role::Admin => "admin",
        }
    }

    /// Whether this role includes `required`.
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not one of the role names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`: expected viewer, deployer, lead or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// The signed-in person, as the pages show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub name: String,
    pub role: Role,
}

/// One configured environment, as the overview lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentSummary {
    pub name: String,
    pub branch: String,
    pub deploy_workflow: String,
    pub render_service_id: String,
    /// Secret environment variables this environment needs but the process lacks.
    pub missing_secrets: Vec<String>,
}

/// Everything the overview page shows.
/// The overview: every environment with what a team checks first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    pub viewer: Viewer,
    pub environments: Vec<EnvironmentView>,
    /// The audit chain's last verification, for leads (None for others).
    pub chain: Option<ChainState>,
}

/// The outcome of the newest verification of the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainState {
    /// None: never verified yet.
    pub checked_at: Option<String>,
    pub checked_by: Option<String>,
    pub intact: bool,
    /// Events checked (when intact).
    pub count: Option<i64>,
    /// The first bad sequence number (when broken).
    pub broken_at: Option<i64>,
}

/// One environment as the overview shows it. Times are RFC 3339 UTC text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentView {
    pub summary: EnvironmentSummary,
    /// The deploy serving now.
    pub live: Option<ReleaseView>,
    /// The newest good release before the live one: the one-click rollback target.
    pub last_good: Option<ReleaseView>,
    /// The newest pipeline run on the environment's branch.
    pub branch_head_run: Option<RunView>,
    pub database: DatabaseView,
    /// Upstream sources whose data is out of date, and why.
    pub stale: Vec<StaleNotice>,
    /// The environment's lock, when it is locked.
    pub lock: Option<LockView>,
    /// The operation running (or waiting) on the environment.
    pub operation: Option<OperationBrief>,
    /// The one-click rollback to the last good release, when there is one.
    pub rollback: Option<OneClick>,
}

/// An environment's lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockView {
    pub reason: String,
    pub locked_by: String,
    pub locked_at: String,
}

/// An operation in a line: what, where it stands, and where to see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationBrief {
    pub id: String,
    /// `rollback` or `deploy`.
    pub kind: String,
    /// `awaiting_approval`, `running`, `succeeded`, `failed`, `needs_attention`.
    pub state: String,
    pub requested_by: String,
    pub created_at: String,
}

/// What the overview's "Roll back to …" offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneClick {
    pub target_deploy_id: String,
    /// "abc1234 · Fix the login" — the release rolled back to.
    pub label: String,
    /// No database change and nothing blocks: a reason and a confirm are
    /// enough. Otherwise the button opens the guided rollback.
    pub direct: bool,
    /// Why it cannot run now (the first blocking check), if so.
    pub blocked: Option<String>,
    /// A fresh Idempotency-Key for the button's form (one per page view).
    pub idempotency_key: String,
}

/// One preflight check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckView {
    pub id: String,
    /// `pass`, `warn` or `block`.
    pub level: String,
    pub sentence: String,
}

/// A deploy the guided rollback may go to, greyed out with the reason when
/// it may not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetView {
    pub deploy_id: String,
    pub label: String,
    pub created_at: String,
    pub verdict: String,
    /// Why not, when it is not a possible target.
    pub unavailable: Option<String>,
}

/// One revision a downgrade undoes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStepView {
    pub revision: String,
    pub message: String,
    /// What its `downgrade()` destroys, in words; empty when nothing.
    pub data_loss: Vec<String>,
}

/// A commit the rollback takes off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanCommitView {
    pub sha: String,
    pub message: String,
    pub author: String,
    pub ci: Option<String>,
}

/// The guided rollback page: the plan for the chosen target and options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackView {
    pub viewer: Viewer,
    pub environment: EnvironmentSummary,
    pub from: Option<ReleaseView>,
    pub to: Option<ReleaseView>,
    pub targets: Vec<TargetView>,
    pub database: bool,
    pub revert_code: bool,
    pub commits: Vec<PlanCommitView>,
    /// `alembic_version` now, when read.
    pub current_revisions: Option<Vec<String>>,
    pub target_heads: Option<Vec<String>>,
    pub path: Vec<PathStepView>,
    pub downgrade_to: Option<String>,
    pub needs_database_change: bool,
    pub checks: Vec<CheckView>,
    /// `deployer` or `lead`.
    pub required_role: Role,
    pub typed_confirmation: Option<String>,
    pub second_approval: bool,
    pub break_glass: bool,
    pub blocked: bool,
    /// The branch head the plan was made at, sent back to detect a move.
    pub branch_head: Option<String>,
    /// A fresh Idempotency-Key for the form, so a double submit is one rollback.
    pub idempotency_key: String,
}

/// One step of an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationStepView {
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

/// An operation with every step: the operation page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationView {
    pub viewer: Viewer,
    pub brief: OperationBrief,
    pub environment: String,
    pub reason: String,
    pub summary: String,
    pub requested_role: String,
    pub approved_by: Option<String>,
    pub break_glass: bool,
    pub updated_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
    pub steps: Vec<OperationStepView>,
    /// The viewer is a lead other than the requester and it waits for approval.
    pub can_approve: bool,
    /// The viewer is a lead and it needs attention.
    pub can_resolve: bool,
    /// The environment is still locked (a lead unlocks it with a note).
    pub locked: bool,
    pub can_unlock: bool,
}

/// Where the environment's database stands against the code that is live.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DatabaseView {
    /// The rows of `alembic_version`; None until first read.
    pub current: Option<Vec<String>>,
    /// The heads of the live commit's migrations directory, once read.
    pub code_heads: Option<Vec<String>>,
    /// `at_head`, `pending`, `drift` or `unknown`.
    pub state: String,
    /// In words: "at head", "2 revisions pending", "at a revision the code does not know".
    pub summary: String,
    pub read_at: Option<String>,
}

/// An upstream whose data is out of date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleNotice {
    /// "GitHub", "Render" or "the database".
    pub source: String,
    /// When data last came in, if ever.
    pub since: Option<String>,
    /// The last failure, in plain words.
    pub reason: String,
}

/// One deploy joined with its commit, pipeline and migration head, judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseView {
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
    pub reason: String,
    pub is_live: bool,
    /// The Alembic heads at this commit, once read.
    pub migration_heads: Option<Vec<String>>,
    pub run_ids: Vec<u64>,
    pub commit_url: String,
    pub deploy_url: String,
}

/// A pipeline run with its jobs and steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunView {
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
    pub jobs: Vec<JobView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub html_url: String,
    pub steps: Vec<StepView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepView {
    pub number: u32,
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
}

/// The revision graph of the live commit against the database.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MigrationsView {
    pub environment: String,
    /// The commit whose migrations directory is shown.
    pub commit_sha: Option<String>,
    /// The live deploy, when one is live.
    pub live_deploy_id: Option<String>,
    pub database: DatabaseView,
    pub heads: Vec<String>,
    pub pending: Vec<String>,
    pub drift: Vec<String>,
    /// Parents first.
    pub revisions: Vec<RevisionView>,
    /// Files that could not be read, as `file:line: why`.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionView {
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

/// A page of one environment's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentPage<T> {
    pub viewer: Viewer,
    pub environment: EnvironmentSummary,
    pub stale: Vec<StaleNotice>,
    pub items: T,
    /// For lists that go by keyset pages (releases, deploys, runs): the
    /// `cursor` that asks for the next, older page; None on the last.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

impl<T> EnvironmentPage<T> {
    /// The link to the next, older page of `here` (a page's path), if any.
    pub fn older_href(&self, here: &str) -> Option<String> {
        self.next_cursor
            .as_deref()
            .map(|cursor| format!("{here}?cursor={}", urlencode(cursor)))
    }
}

/// One account, as the admin page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: String,
}

/// What the admin page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminView {
    pub viewer: Viewer,
    pub accounts: Vec<Account>,
    pub tokens: Vec<TokenView>,
}

/// One API token as the admin page lists it (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    pub id: String,
    pub user: String,
    pub label: String,
    pub created_at: String,
    pub created_by: String,
    pub revoked_at: Option<String>,
}

/// A token just created: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    pub id: String,
    pub user: String,
    pub token: String,
}

/// The audit page's filters, as they appear in its URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub environment: Option<String>,
    pub outcome: Option<String>,
    pub target: Option<String>,
    /// UTC, `2026-11-24T09:30`, `2026-11-24` or RFC 3339; inclusive.
    pub since: Option<String>,
    /// Same forms; exclusive.
    pub until: Option<String>,
    /// Keyset cursor: show events with a smaller sequence number.
    pub before: Option<i64>,
}

impl AuditQuery {
    /// The query string for these filters (without the cursor), for links
    /// to the next page and to the export.
    pub fn to_query_string(&self) -> String {
        let pairs = [
            ("actor", &self.actor),
            ("action", &self.action),
            ("environment", &self.environment),
            ("outcome", &self.outcome),
            ("target", &self.target),
            ("since", &self.since),
            ("until", &self.until),
        ];
        pairs
            .iter()
            .filter_map(|(name, value)| {
                value
                    .as_deref()
                    .filter(|v| !v.is_empty())
                    .map(|v| format!("{name}={}", urlencode(v)))
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
fn urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// One audit event as the review screen shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEventView {
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
    /// The parameters as indented JSON.
    pub params: String,
    /// `started`, `succeeded`, `failed` or `denied`.
    pub outcome: String,
    pub error: Option<String>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub hash: String,
}

/// Something in the leads' review queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewItem {
    /// `op:<id>` or `event:<seq>`: what "mark reviewed" names.
    pub item: String,
    /// Why it is here: `break_glass`, `failed`, `needs_attention`, `refused`.
    pub why: String,
    pub summary: String,
    pub environment: Option<String>,
    pub actor: String,
    pub at: String,
    /// The event the detail view opens on.
    pub seq: Option<i64>,
}

/// A lead's "reviewed" mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewMark {
    pub reviewed_by: String,
    pub reviewed_at: String,
    pub note: String,
    /// The `audit.review` event.
    pub seq: i64,
}

/// The `/audit` page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditView {
    pub viewer: Viewer,
    pub query: AuditQuery,
    pub events: Vec<AuditEventView>,
    /// The cursor of the next (older) page, when there is one.
    pub next_before: Option<i64>,
    pub queue: Vec<ReviewItem>,
    pub environments: Vec<String>,
    pub chain: ChainState,
}

/// `/audit/{seq}`: one event, and everything about what it acted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDetail {
    pub viewer: Viewer,
    pub event: AuditEventView,
    /// The operation the event belongs to, with every step.
    pub operation: Option<OperationView>,
    /// Every event about the same target, oldest first (at most 500).
    pub related: Vec<AuditEventView>,
    /// The queue item this event stands for, if it is one.
    pub review_item: Option<String>,
    /// Why it needs review (see [`ReviewItem::why`]).
    pub review_why: Option<String>,
    pub reviewed: Option<ReviewMark>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_from_viewer_to_admin() {
        assert!(Role::Admin.allows(Role::Lead));
        assert!(Role::Lead.allows(Role::Deployer));
        assert!(Role::Deployer.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Deployer));
        assert!(!Role::Lead.allows(Role::Admin));
    }

    #[test]
    fn a_role_round_trips_through_its_name_and_unknown_names_are_refused() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert_eq!("root".parse::<Role>(), Err(UnknownRole("root".into())));
    }

    #[test]
    fn an_audit_query_makes_a_shareable_query_string_without_its_cursor() {
        let query = AuditQuery {
            actor: Some("dana".into()),
            action: Some("rollback.start".into()),
            environment: Some(String::new()),
            since: Some("2026-11-24T09:30".into()),
            before: Some(42),
            ..AuditQuery::default()
        };
        assert_eq!(
            query.to_query_string(),
            "actor=dana&action=rollback.start&since=2026-11-24T09%3A30"
        );
        let odd = AuditQuery {
            actor: Some("a&b=c d".into()),
            ..AuditQuery::default()
        };
        assert_eq!(odd.to_query_string(), "actor=a%26b%3Dc%20d");
    }
}
