//! Operations started from the panel: what a rollback or a deploy is made
//! of (its steps, in order), what was asked (stored with it), and the
//! executor that carries the steps out durably ([`exec`]).
//!
//! States: `awaiting_approval` → `running` → `succeeded` | `failed` |
//! `needs_attention`. An operation is *active* (it blocks every other on
//! its environment) until it succeeds or fails, or until a lead resolves
//! one that needs attention.

use crate::rollback::RevertMode;
use domain::short_sha;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub mod exec;
pub mod runner;
#[cfg(test)]
pub(crate) mod tests;

pub use exec::Executor;

pub use domain::{OperationState, StepState};

/// One step of an operation. The stored name is [`Step::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Lock the environment and turn Render's auto-deploy off.
    Freeze,
    /// Ask Render to roll back to the target deploy.
    RenderRollback,
    /// Ask Render to deploy a commit.
    TriggerDeploy,
    /// Wait until the new deploy is live.
    WaitLive,
    /// Downgrade the database through the migration runner, then read
    /// `alembic_version` back.
    DatabaseDowngrade,
    /// A new commit on the branch with the target's tree.
    CodeRevert,
    /// `GET {BACKEND_URL}{smoke_path}` until it answers 2xx.
    Smoke,
    /// Post the outcome to the configured webhook.
    Notify,
}

const STEPS: [Step; 8] = [
    Step::Freeze,
    Step::RenderRollback,
    Step::TriggerDeploy,
    Step::WaitLive,
    Step::DatabaseDowngrade,
    Step::CodeRevert,
    Step::Smoke,
    Step::Notify,
];

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Freeze => "freeze",
            Step::RenderRollback => "render_rollback",
            Step::TriggerDeploy => "trigger_deploy",
            Step::WaitLive => "wait_live",
            Step::DatabaseDowngrade => "database_downgrade",
            Step::CodeRevert => "code_revert",
            Step::Smoke => "smoke",
            Step::Notify => "notify",
        }
    }

    pub fn from_name(name: &str) -> Option<Step> {
        STEPS.into_iter().find(|s| s.name() == name)
    }

    /// What the step does, as the operation page lists it.
    pub fn title(self, request: &Request) -> String {
        match (self, request) {
            (Step::Freeze, _) => "Lock the environment and turn Render's auto-deploy off".into(),
            (Step::RenderRollback, Request::Rollback(r)) => format!(
                "Roll Render back to deploy {} ({})",
                r.target_deploy_id,
                short_sha(&r.target_commit)
            ),
            (Step::TriggerDeploy, Request::Deploy(d)) => match &d.commit {
                Some(sha) => format!("Deploy commit {} on Render", short_sha(sha)),
                None => "Deploy the branch's head on Render".into(),
            },
            (Step::WaitLive, _) => "Wait until the deploy is live".into(),
            (Step::DatabaseDowngrade, Request::Rollback(r)) => format!(
                "Downgrade the database to {} and read it back",
                r.downgrade_to.as_deref().unwrap_or("?")
            ),
            (Step::CodeRevert, Request::Rollback(r)) => match r.revert_mode {
                RevertMode::PullRequest => format!(
                    "Open a pull request that puts {}'s code back on the branch",
                    short_sha(&r.target_commit)
                ),
                RevertMode::FastForward => format!(
                    "Put {}'s code back on the branch (fast-forward)",
                    short_sha(&r.target_commit)
                ),
            },
            (Step::Smoke, _) => "Smoke check the service".into(),
            (Step::Notify, _) => "Announce the outcome".into(),
            (step, _) => step.name().replace('_', " "),
        }
    }
}

/// A rollback as asked and resolved against its plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRequest {
    pub target_deploy_id: String,
    pub target_commit: String,
    /// The live deploy when it was planned.
    pub from_deploy_id: Option<String>,
    pub database: bool,
    pub revert_code: bool,
    pub revert_mode: RevertMode,
    /// The revision `alembic downgrade` is given, when `database`.
    pub downgrade_to: Option<String>,
    /// The live deploy runs the target's code already: only the database
    /// steps run, Render is not asked to roll back.
    #[serde(default)]
    pub database_only: bool,
    pub reason: String,
}

/// A deploy as asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRequest {
    /// None deploys the branch's head.
    pub commit: Option<String>,
    pub reason: String,
}

/// What an operation was asked to do; stored as JSON with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Request {
    Rollback(RollbackRequest),
    Deploy(DeployRequest),
}

impl Request {
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Rollback(_) => "rollback",
            Request::Deploy(_) => "deploy",
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Request::Rollback(r) => &r.reason,
            Request::Deploy(d) => &d.reason,
        }
    }

    /// The steps, in order.
    pub fn steps(&self) -> Vec<Step> {
        match self {
            Request::Rollback(r) => {
                let mut steps = vec![Step::Freeze];
                if !r.database_only {
                    steps.extend([Step::RenderRollback, Step::WaitLive]);
                }
                if r.database {
                    steps.push(Step::DatabaseDowngrade);
                }
                if r.revert_code {
                    steps.push(Step::CodeRevert);
                }
                steps.extend([Step::Smoke, Step::Notify]);
                steps
            }
            Request::Deploy(_) => vec![
                Step::TriggerDeploy,
                Step::WaitLive,
                Step::Smoke,
                Step::Notify,
            ],
        }
    }
}

/// The fingerprint of a request body, to tell a replay (same key, same
/// body) from a misuse of the key (same key, another body).
pub fn request_hash(body: &serde_json::Value) -> String {
    let canonical = crate::audit::canonical_json(body);
    crate::audit::hex(&Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod unit_tests {
    use super::*;
    use serde_json::json;

    fn rollback(database: bool, revert_code: bool) -> Request {
        Request::Rollback(RollbackRequest {
            target_deploy_id: "dep-1".into(),
            target_commit: "abcdef0123".into(),
            from_deploy_id: None,
            database,
            revert_code,
            revert_mode: RevertMode::PullRequest,
            downgrade_to: database.then(|| "base".into()),
            database_only: false,
            reason: "broken".into(),
        })
    }

    #[test]
    fn a_database_only_rollback_asks_render_for_nothing_and_downgrades_under_the_lock() {
        let mut request = rollback(true, false);
        if let Request::Rollback(r) = &mut request {
            r.database_only = true;
        }
        let names: Vec<_> = request.steps().iter().map(|s| s.name()).collect();
        assert_eq!(names, ["freeze", "database_downgrade", "smoke", "notify"]);
    }

    #[test]
    fn a_request_stored_before_database_only_existed_reads_as_a_full_rollback() {
        let mut text = serde_json::to_value(rollback(true, false)).unwrap();
        text.as_object_mut().unwrap().remove("database_only");
        let Request::Rollback(r) = serde_json::from_value(text).unwrap() else {
            panic!("a rollback");
        };
        assert!(!r.database_only);
    }

    #[test]
    fn a_code_only_rollback_freezes_rolls_back_waits_smokes_and_announces() {
        let names: Vec<_> = rollback(false, false)
            .steps()
            .iter()
            .map(|s| s.name())
            .collect();
        assert_eq!(
            names,
            ["freeze", "render_rollback", "wait_live", "smoke", "notify"]
        );
    }

    #[test]
    fn the_database_and_code_steps_come_after_the_service_is_live_in_that_order() {
        let names: Vec<_> = rollback(true, true)
            .steps()
            .iter()
            .map(|s| s.name())
            .collect();
        assert_eq!(
            names,
            [
                "freeze",
                "render_rollback",
                "wait_live",
                "database_downgrade",
                "code_revert",
                "smoke",
                "notify"
            ]
        );
        for step in rollback(true, true).steps() {
            assert_eq!(Step::from_name(step.name()), Some(step));
        }
    }

    #[test]
    fn the_request_hash_ignores_key_order_and_sees_every_value() {
        let a = request_hash(&json!({"a": 1, "b": "x"}));
        assert_eq!(a, request_hash(&json!({"b": "x", "a": 1})));
        assert_ne!(a, request_hash(&json!({"a": 2, "b": "x"})));
    }

    #[test]
    fn a_stored_request_reads_back_as_it_was_written() {
        let request = rollback(true, false);
        let text = serde_json::to_string(&request).unwrap();
        assert!(text.contains("\"kind\":\"rollback\""), "{text}");
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), request);
    }
}
