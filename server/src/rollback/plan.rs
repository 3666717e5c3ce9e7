//! The rollback plan: what rolling an environment back would do and whether
//! it may run, decided from plain data the caller read from the store. No
//! I/O, no clock: the same input always gives the same plan, so the page can
//! show it before anything runs and the executor can re-check it just before.
//!
//! The plan goes from the live release to the target (by default the last
//! good one), lists the commits it takes off, the Alembic downgrade path from
//! the database's `alembic_version` to the target code's head with what each
//! step destroys, the preflight checks (each pass, warn or block, with a
//! sentence) and who must confirm it.

use crate::alembic::Revision;
use crate::alembic::graph::{self, Graph};
use crate::config::ApprovalKind;
use crate::integrations::github::{CompareStatus, Comparison};
use crate::releases::{self, CiState, CommitRecord, Release, Verdict};
use app::model::Role;
pub use domain::CheckId;
use domain::short_sha;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use time::{Duration, OffsetDateTime};

/// How the code is reverted on GitHub when the rollback reverts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevertMode {
    /// A new commit whose tree is the target's, proposed as a pull request.
    #[default]
    PullRequest,
    /// The same commit, moved onto the branch by a fast-forward ref update.
    FastForward,
}

/// What the person asked the rollback to do besides the Render rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RollbackOptions {
    /// Downgrade the database to the target code's head.
    pub database: bool,
    /// Revert the code on the branch to the target commit's tree.
    pub revert_code: bool,
    pub revert_mode: RevertMode,
}

/// An operation already running on the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningOperation {
    pub id: String,
    /// `rollback`, `deploy`, …
    pub kind: String,
}

/// The environment's lock, when it is locked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub reason: String,
    /// Who set it, when known.
    pub by: Option<String>,
}

/// How far back Render can roll a service back, when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderRetention {
    /// Render keeps the builds of this many most recent deploys.
    pub deploys: Option<usize>,
    /// Render keeps builds younger than this.
    pub max_age: Option<Duration>,
}

/// Everything the plan is made from; the caller reads it from the store.
#[derive(Debug, Clone)]
pub struct PlanInput {
    pub environment: String,
    /// The environment's releases, newest first ([`releases::build`]). The
    /// live and target commits' migrations come from their `commit`.
    pub releases: Vec<Release>,
    /// The deploy to roll back to; None picks [`releases::last_good`].
    pub target: Option<String>,
    /// The rows of the database's `alembic_version`; None when never read.
    pub database: Option<Vec<String>>,
    /// GitHub's compare with base = the target commit and head = the live
    /// commit: its commits are the ones the rollback takes off. None when
    /// not fetched.
    pub comparison: Option<Comparison>,
    /// CI results of commits, by sha, where known; a commit that was
    /// deployed also takes its release's.
    pub commit_ci: BTreeMap<String, CiState>,
    pub running: Option<RunningOperation>,
    pub lock: Option<Lock>,
    pub options: RollbackOptions,
    /// The branch's head commit now, when read.
    pub branch_head_now: Option<String>,
    /// The branch's head commit when the plan was first made; a plan
    /// re-checked later passes the sha it was shown with.
    pub branch_head_planned: Option<String>,
    pub retention: Option<RenderRetention>,
    /// The time the retention is measured against.
    pub now: OffsetDateTime,
    /// The environment's `require_approval_for`.
    pub require_approval_for: Vec<ApprovalKind>,
}

/// How a check weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Pass,
    Warn,
    Block,
}

/// One preflight check. `id` is stable (pages and tests key on it); the
/// sentence is for a tired person at 3 a.m.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub id: CheckId,
    pub level: Level,
    pub sentence: String,
}

/// A commit the rollback takes off, with its CI result where known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanCommit {
    pub commit: CommitRecord,
    pub ci: Option<CiState>,
}

/// Who must confirm the rollback, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requirements {
    /// Deployer for a code-only rollback, lead for a database downgrade.
    pub required_role: Role,
    /// The revision to type when the downgrade destroys data.
    pub typed_confirmation: Option<String>,
    /// A second lead must approve: the downgrade destroys data and the
    /// environment requires approval for `database_downgrade`, or it
    /// requires approval for every `code_rollback`.
    pub second_approval: bool,
    /// A deployer may run it alone as an emergency; it then lands in the
    /// leads' review queue.
    pub break_glass: bool,
}

/// A rollback plan. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub environment: String,
    pub options: RollbackOptions,
    /// The live release; None when nothing is live.
    pub from: Option<Release>,
    /// The release rolled back to; None when there is none.
    pub to: Option<Release>,
    /// The commits taken off, oldest first (as GitHub lists them).
    pub commits: Vec<PlanCommit>,
    /// The database's `alembic_version` rows, when read.
    pub database: Option<Vec<String>>,
    /// The target code's Alembic heads, when its migrations were read.
    pub target_heads: Option<Vec<String>>,
    /// The revisions a downgrade to the target head undoes, children first
    /// (the order Alembic runs them), each with its data loss. Shown even
    /// when the downgrade is not chosen.
    pub alembic_path: Vec<Revision>,
    /// The revision `alembic downgrade` is given (`base` for none), when
    /// a path was found.
    pub downgrade_to: Option<String>,
    /// The database is not at the target code's heads, or either is unknown.
    pub needs_database_change: bool,
    /// The live deploy runs the target's code already and only the
    /// database is brought to the target's head: the second half of the
    /// runbook after a code-only rollback. No Render rollback, no wait.
    pub database_only: bool,
    /// Every check, in a fixed order, so the page shows a full checklist.
    pub checks: Vec<Check>,
    pub requirements: Requirements,
}

impl Plan {
    /// A check blocks the rollback.
    pub fn blocked(&self) -> bool {
        self.checks.iter().any(|c| c.level == Level::Block)
    }

    /// One click and a reason: nothing blocks and the database needs no change.
    pub fn one_click(&self) -> bool {
        !self.blocked() && !self.needs_database_change
    }

    /// The check with this id, if it was made.
    pub fn check(&self, id: CheckId) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }
}

#[derive(Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn push(&mut self, id: CheckId, level: Level, sentence: String) {
        self.0.push(Check {
            id,
            level,
            sentence,
        });
    }
    fn pass(&mut self, id: CheckId, sentence: String) {
        self.push(id, Level::Pass, sentence);
    }
    fn warn(&mut self, id: CheckId, sentence: String) {
        self.push(id, Level::Warn, sentence);
    }
    fn block(&mut self, id: CheckId, sentence: String) {
        self.push(id, Level::Block, sentence);
    }
    /// Changes the verdict of a check made earlier, keeping its place.
    fn revise(&mut self, id: CheckId, level: Level, sentence: String) {
        if let Some(check) = self.0.iter_mut().find(|c| c.id == id) {
            check.level = level;
            check.sentence = sentence;
        }
    }
}

/// `deploy dep-3 (abc1234 "Fix the login form")`.
pub fn label(release: &Release) -> String {
    let mut message: String = release
        .deploy
        .commit_message
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    if message.chars().count() > 60 {
        message = message.chars().take(59).collect::<String>() + "…";
    }
    let sha = short_sha(&release.deploy.commit_sha);
    if message.is_empty() {
        format!("deploy {} ({sha})", release.deploy.id)
    } else {
        format!("deploy {} ({sha} \"{message}\")", release.deploy.id)
    }
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

fn list(ids: &[String]) -> String {
    if ids.is_empty() {
        "base (no revision)".to_owned()
    } else {
        ids.join(", ")
    }
}

/// Makes the plan. Never fails: what stops a rollback is a blocking check.
pub fn plan(input: &PlanInput) -> Plan {
    let env = input.environment.as_str();
    let options = input.options;
    let mut checks = Checks::default();

    match &input.running {
        Some(op) => checks.block(
            CheckId::Operation,
            format!(
                "Another operation ({} {}) is running on {env}; wait for it or resolve it first.",
                op.kind, op.id
            ),
        ),
        None => checks.pass(
            CheckId::Operation,
            format!("No other operation is running on {env}."),
        ),
    }
    match &input.lock {
        Some(lock) => {
            let by = lock
                .by
                .as_deref()
                .map(|by| format!(" by {by}"))
                .unwrap_or_default();
            checks.block(
                CheckId::Lock,
                format!(
                    "{env} is locked{by}: \"{}\". A lead must unlock it before a rollback.",
                    lock.reason
                ),
            );
        }
        None => checks.pass(CheckId::Lock, format!("{env} is not locked.")),
    }
    match (&input.branch_head_now, &input.branch_head_planned) {
        (Some(now), Some(planned)) if now != planned => checks.block(
            CheckId::Branch,
            format!(
                "The branch moved since this plan was made ({} → {}); re-plan before rolling back.",
                short_sha(planned),
                short_sha(now)
            ),
        ),
        (Some(now), _) => checks.pass(
            CheckId::Branch,
            format!(
                "The branch is at {}, as when the plan was made.",
                short_sha(now)
            ),
        ),
        (None, _) if options.revert_code => checks.warn(
            CheckId::Branch,
            "The branch's head has not been read, so the code revert cannot be checked against it."
                .into(),
        ),
        (None, _) => {}
    }

    let releases = &input.releases;
    let live = releases.iter().find(|r| r.is_live);
    match live {
        Some(live) => checks.pass(CheckId::Live, format!("{env} serves {}.", label(live))),
        None => checks.block(
            CheckId::Live,
            format!("No deploy of {env} is live, so there is nothing to roll back from."),
        ),
    }

    let target = match &input.target {
        Some(id) => {
            let found = releases.iter().find(|r| &r.deploy.id == id);
            if found.is_none() {
                checks.block(
                    CheckId::Target,
                    format!("Deploy {id} is not among {env}'s deploys; pick one from the list."),
                );
            }
            found
        }
        None => {
            let found = releases::last_good(releases);
            if found.is_none() {
                checks.block(
                    CheckId::Target,
                    format!(
                        "There is no good release of {env} before the live one to roll back to; pick a deploy by hand."
                    ),
                );
            }
            found
        }
    };
    let same_code = match target {
        Some(target) => check_target(&mut checks, input, live, target),
        None => false,
    };

    let commits = check_commits(&mut checks, input, live, target);
    let db = check_database(&mut checks, input, live, target);
    // The code is where the target is, but the database is not: only the
    // database moves, when that was asked and a path exists.
    let database_only =
        same_code && options.database && db.needs_change && db.downgrade_to.is_some();
    if let (true, Some(target), Some(to)) = (database_only, target, &db.downgrade_to) {
        checks.revise(
            CheckId::Target,
            Level::Pass,
            format!(
                "{env} runs the code of {} already; this rollback only brings the database down to {to}, with no Render rollback.",
                label(target)
            ),
        );
    }

    let change_requested = options.database && db.needs_change;
    let loses_data =
        change_requested && !graph::data_loss(&db.path.iter().collect::<Vec<_>>()).is_empty();
    let required_role = if change_requested {
        Role::Lead
    } else {
        Role::Deployer
    };
    let approval = |kind| input.require_approval_for.contains(&kind);
    let second_approval = (loses_data && approval(ApprovalKind::DatabaseDowngrade))
        || approval(ApprovalKind::CodeRollback);
    let requirements = Requirements {
        required_role,
        typed_confirmation: if loses_data {
            db.downgrade_to.clone()
        } else {
            None
        },
        second_approval,
        break_glass: required_role == Role::Deployer && !second_approval,
    };

    Plan {
        environment: input.environment.clone(),
        options,
        from: live.cloned(),
        to: target.cloned(),
        commits,
        database: input.database.clone(),
        target_heads: db.target_heads,
        alembic_path: db.path,
        downgrade_to: db.downgrade_to,
        needs_database_change: db.needs_change,
        database_only,
        checks: checks.0,
        requirements,
    }
}

/// Render's statuses of a deploy that went live at some point.
fn went_live(release: &Release) -> bool {
    matches!(release.deploy.status.as_str(), "live" | "deactivated")
}

/// Checks the target; true when it runs the live code (the same deploy or
/// the same commit), which leaves only the database to roll back.
fn check_target(
    checks: &mut Checks,
    input: &PlanInput,
    live: Option<&Release>,
    target: &Release,
) -> bool {
    let env = input.environment.as_str();
    let name = label(target);
    let same_code = match live {
        Some(live) if live.deploy.id == target.deploy.id => {
            checks.block(
                CheckId::Target,
                format!(
                    "{name} is the live release of {env} already; there is nothing to roll back."
                ),
            );
            true
        }
        Some(live) if live.deploy.commit_sha == target.deploy.commit_sha => {
            checks.block(
                CheckId::Target,
                format!(
                    "{name} runs the same commit as the live release; there is nothing to roll back."
                ),
            );
            true
        }
        _ => {
            checks.pass(
                CheckId::Target,
                format!("The rollback goes to {name}: {}.", target.reason),
            );
            false
        }
    };
    if went_live(target) {
        checks.pass(
            CheckId::TargetWentLive,
            format!("{name} went live before, so Render can roll back to it."),
        );
        if target.verdict != Verdict::Good {
            checks.warn(
                CheckId::TargetVerdict,
                format!(
                    "{name} is not a good release: {}. Rolling back to it may not help.",
                    target.reason
                ),
            );
        }
    } else {
        checks.block(
            CheckId::TargetWentLive,
            format!(
                "{name} never went live ({}); Render refuses to roll back to it.",
                target.deploy.status.replace('_', " ")
            ),
        );
    }
    if let Some(live) = live
        && target.deploy.created_at > live.deploy.created_at
    {
        checks.warn(
            CheckId::TargetOrder,
            format!("{name} is newer than the live release: this rolls forward, not back."),
        );
    }
    if let Some(retention) = input.retention {
        let newer = input
            .releases
            .iter()
            .take_while(|r| r.deploy.id != target.deploy.id)
            .count();
        let age = input.now - target.deploy.created_at;
        let too_many = retention.deploys.filter(|keep| newer >= *keep);
        let too_old = retention.max_age.filter(|max| age > *max);
        match (too_many, too_old) {
            (Some(keep), _) => checks.warn(
                CheckId::TargetRetention,
                format!(
                    "{name} is older than the last {} Render keeps ({newer} newer); Render may refuse to roll back to it.",
                    plural(keep, "deploy")
                ),
            ),
            (None, Some(max)) => checks.warn(
                CheckId::TargetRetention,
                format!(
                    "{name} is {} days old, older than the {} days Render keeps builds; Render may refuse to roll back to it.",
                    age.whole_days(),
                    max.whole_days()
                ),
            ),
            (None, None) => checks.pass(
                CheckId::TargetRetention,
                format!("{name} is recent enough for Render to still have its build."),
            ),
        }
    }
    same_code
}

fn check_commits(
    checks: &mut Checks,
    input: &PlanInput,
    live: Option<&Release>,
    target: Option<&Release>,
) -> Vec<PlanCommit> {
    let (Some(live), Some(target)) = (live, target) else {
        return Vec::new();
    };
    let env = input.environment.as_str();
    let (from, to) = (
        short_sha(&live.deploy.commit_sha),
        short_sha(&target.deploy.commit_sha),
    );
    let Some(comparison) = &input.comparison else {
        checks.warn(
            CheckId::Commits,
            format!(
                "The commits between {to} and {from} have not been fetched from GitHub yet; the list is missing."
            ),
        );
        return Vec::new();
    };
    let commits: Vec<PlanCommit> = comparison
        .commits
        .iter()
        .map(|commit| PlanCommit {
            ci: input.commit_ci.get(&commit.sha).copied().or_else(|| {
                input
                    .releases
                    .iter()
                    .find(|r| r.deploy.commit_sha == commit.sha)
                    .map(|r| r.ci)
            }),
            commit: commit.clone(),
        })
        .collect();
    match comparison.status {
        CompareStatus::Ahead | CompareStatus::Identical => {
            let authors: BTreeSet<&str> = comparison
                .commits
                .iter()
                .map(|c| c.author_login.as_deref().unwrap_or(&c.author))
                .collect();
            let by = if authors.is_empty() {
                String::new()
            } else {
                format!(
                    " by {}",
                    authors.into_iter().collect::<Vec<_>>().join(", ")
                )
            };
            checks.pass(
                CheckId::Commits,
                format!(
                    "{}{by} come off {env} ({to}..{from}).",
                    plural(comparison.ahead_by as usize, "commit")
                ),
            );
        }
        CompareStatus::Diverged => checks.warn(
            CheckId::Commits,
            format!(
                "The target commit {to} is not an ancestor of the live one {from}: besides taking {} off, the rollback brings back {} that {env} does not run now.",
                plural(comparison.ahead_by as usize, "commit"),
                plural(comparison.behind_by as usize, "commit")
            ),
        ),
        CompareStatus::Behind => checks.warn(
            CheckId::Commits,
            format!(
                "The target commit {to} is newer than the live one {from}: this brings {} in rather than taking any off.",
                plural(comparison.behind_by as usize, "commit")
            ),
        ),
        CompareStatus::Unknown => checks.warn(
            CheckId::Commits,
            format!(
                "GitHub compared {to} and {from} with a status this version does not know; check the commits by hand."
            ),
        ),
    }
    commits
}

/// What the plan found about the database.
struct DatabasePlan {
    target_heads: Option<Vec<String>>,
    needs_change: bool,
    path: Vec<Revision>,
    downgrade_to: Option<String>,
}

fn check_database(
    checks: &mut Checks,
    input: &PlanInput,
    live: Option<&Release>,
    target: Option<&Release>,
) -> DatabasePlan {
    let env = input.environment.as_str();
    let options = input.options;
    // What a check about the downgrade weighs: it blocks only a downgrade
    // that was asked for.
    let if_asked = if options.database {
        Level::Block
    } else {
        Level::Warn
    };
    let mut out = DatabasePlan {
        target_heads: None,
        needs_change: true,
        path: Vec::new(),
        downgrade_to: None,
    };
    let Some(target) = target else {
        return out;
    };
    let migrations = |r: &Release| r.commit.as_ref().and_then(|c| c.migrations.clone());
    let target_graph = match migrations(target) {
        None => {
            checks.push(
                CheckId::TargetMigrations,
                if_asked,
                format!(
                    "The migrations of the target commit {} have not been read, so the plan cannot tell which revision it needs.",
                    short_sha(&target.deploy.commit_sha)
                ),
            );
            None
        }
        Some(m) => match Graph::new(m.revisions) {
            Ok(g) => {
                checks.pass(
                    CheckId::TargetMigrations,
                    format!("The target code's Alembic head is {}.", list(&g.heads())),
                );
                Some(g)
            }
            Err(e) => {
                checks.push(
                    CheckId::TargetMigrations,
                    if_asked,
                    format!("The target commit's migrations do not form a graph: {e}."),
                );
                None
            }
        },
    };
    out.target_heads = target_graph.as_ref().map(Graph::heads);

    let Some(rows) = &input.database else {
        checks.push(
            CheckId::DatabaseState,
            if_asked,
            format!(
                "{env}'s alembic_version has never been read, so the plan cannot tell which schema the database is at{}.",
                if options.database {
                    "; a downgrade cannot be planned"
                } else {
                    ""
                }
            ),
        );
        if options.revert_code {
            checks.warn(
                CheckId::CodeRevert,
                "The database's revision is unknown, so the plan cannot tell whether the pipeline's `alembic upgrade head` still works after the code revert.".into(),
            );
        }
        return out;
    };
    checks.pass(
        CheckId::DatabaseState,
        format!("The database is at {}.", list(rows)),
    );
    let (Some(target_graph), Some(heads)) = (&target_graph, &out.target_heads) else {
        return out;
    };
    let as_set = |ids: &[String]| ids.iter().cloned().collect::<BTreeSet<_>>();
    out.needs_change = as_set(rows) != as_set(heads);

    if rows.len() > 1 && out.needs_change {
        checks.push(
            CheckId::DatabaseHeads,
            if_asked,
            format!(
                "The database has several heads ({}); Flightdeck does not downgrade several heads automatically: merge them or downgrade by hand.",
                rows.join(", ")
            ),
        );
    }

    let state = target_graph.state(rows);
    let code_revert_blocked = if !state.drift.is_empty() {
        let unknown = state.drift.join(", ");
        if !options.database {
            checks.warn(
                CheckId::Schema,
                format!(
                    "The database stays at {unknown}, which the target code does not know: the old code will run on a newer schema. Choose the database downgrade, or be sure the newer schema still works with the old code."
                ),
            );
        }
        if options.revert_code && !options.database {
            checks.block(
                CheckId::CodeRevert,
                format!(
                    "Reverting the code on GitHub would break the pipeline: its `alembic upgrade head` fails with \"Can't locate revision identified by '{}'\", because the reverted code does not contain it. Downgrade the database in the same rollback, or roll back on Render only.",
                    state.drift[0]
                ),
            );
            true
        } else {
            false
        }
    } else if !state.pending.is_empty() {
        checks.warn(
            CheckId::Schema,
            format!(
                "The database has not run {} the target code contains ({}); the target code may expect tables or columns that are not there.",
                plural(state.pending.len(), "revision"),
                state.pending.join(", ")
            ),
        );
        false
    } else {
        checks.pass(
            CheckId::Schema,
            format!(
                "The database is at the target code's head {}; the schema needs no change.",
                list(heads)
            ),
        );
        false
    };
    if options.revert_code && !code_revert_blocked {
        let how = match options.revert_mode {
            RevertMode::PullRequest => "through a pull request",
            RevertMode::FastForward => "by a fast-forward of the branch (never a force push)",
        };
        checks.pass(
            CheckId::CodeRevert,
            format!(
                "The branch's code goes back to the tree of {}, {how}.",
                short_sha(&target.deploy.commit_sha)
            ),
        );
        if let (Some(now), Some(live)) = (&input.branch_head_now, live)
            && now != &live.deploy.commit_sha
        {
            checks.warn(
                CheckId::BranchAhead,
                format!(
                    "The branch is at {}, not at the live commit {}: the revert also undoes the commits after the live one.",
                    short_sha(now),
                    short_sha(&live.deploy.commit_sha)
                ),
            );
        }
    }

    if !out.needs_change {
        if options.database {
            checks.pass(
                CheckId::DowngradePath,
                format!(
                    "The database is at the target's head {} already; there is nothing to downgrade.",
                    list(heads)
                ),
            );
        }
        return out;
    }

    // The path runs on the code that knows the database's revisions: the
    // live code normally (the database is ahead of the target), else the
    // target's, else the newest release's that does (after a code-only
    // rollback, the release rolled back from: the branch still has it).
    let knows_rows = |g: &&Graph| rows.iter().all(|id| g.get(id).is_some());
    let live_graph = live
        .and_then(migrations)
        .and_then(|m| Graph::new(m.revisions).ok())
        .filter(|g| knows_rows(&g))
        .or_else(|| {
            input
                .releases
                .iter()
                .filter_map(migrations)
                .filter_map(|m| Graph::new(m.revisions).ok())
                .find(|g| knows_rows(&g) && heads.iter().all(|h| g.get(h).is_some()))
        });
    let to = match heads.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.as_str())),
        several => Err(format!(
            "the target code has several heads ({}); downgrade by hand",
            several.join(", ")
        )),
    };
    let path = to.and_then(|to| {
        let graph = live_graph
            .as_ref()
            .filter(knows_rows)
            .or(Some(target_graph).filter(knows_rows))
            .ok_or_else(|| {
                format!(
                    "the database is at {}, which neither the live nor the target code contains",
                    list(rows)
                )
            })?;
        let path = graph.downgrade_path(rows, to)?;
        Ok((
            to.unwrap_or("base").to_owned(),
            path.into_iter().cloned().collect::<Vec<_>>(),
        ))
    });
    match path {
        Err(reason) => checks.push(
            CheckId::DowngradePath,
            if_asked,
            format!(
                "The database cannot be downgraded to the target's head {} automatically: {reason}.",
                list(heads)
            ),
        ),
        Ok((to, path)) => {
            let steps = plural(path.len(), "revision");
            if options.database {
                checks.pass(
                    CheckId::DowngradePath,
                    format!(
                        "The database goes down from {} to {to}, undoing {steps}.",
                        list(rows)
                    ),
                );
            } else {
                checks.pass(
                    CheckId::DowngradePath,
                    format!(
                        "A downgrade from {} to {to} ({steps}) is possible; it is not part of this rollback.",
                        list(rows)
                    ),
                );
            }
            let refs: Vec<&Revision> = path.iter().collect();
            let losses = graph::data_loss(&refs);
            if options.database {
                if losses.is_empty() {
                    checks.pass(
                        CheckId::DataLoss,
                        "The downgrade drops no table or column and runs no destructive SQL."
                            .into(),
                    );
                } else {
                    let what: Vec<String> = losses
                        .iter()
                        .map(|(id, loss)| {
                            format!("{} (revision {id}, line {})", loss.detail, loss.line)
                        })
                        .collect();
                    let second = if input
                        .require_approval_for
                        .contains(&ApprovalKind::DatabaseDowngrade)
                    {
                        ", and a second lead's approval"
                    } else {
                        ""
                    };
                    checks.warn(
                        CheckId::DataLoss,
                        format!(
                            "Downgrading to {to} destroys data: {}. It needs a lead, the revision {to} typed to confirm{second}.",
                            what.join("; ")
                        ),
                    );
                }
            }
            out.downgrade_to = Some(to);
            out.path = path;
        }
    }
    out
}

#[cfg(test)]
mod tests;
