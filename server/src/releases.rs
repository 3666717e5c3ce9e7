//! Releases: each deploy of an environment joined with its commit, the
//! pipeline runs for that commit, the Alembic head(s) at that commit and the
//! smoke result, then judged good or bad. Plain data in, plain data out:
//! the sync keeps the inputs in the store, the pages and the rollback plan
//! read the result.

use crate::alembic::Revision;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A Render deploy as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRecord {
    pub id: String,
    pub environment: String,
    pub service_id: String,
    pub commit_sha: String,
    pub commit_message: String,
    /// Render's status word (`live`, `build_failed`, …).
    pub status: String,
    /// Render's trigger word (`new_commit`, `deploy_hook`, `rollback`, `api`, …).
    pub trigger: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

/// A GitHub Actions run as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: u64,
    pub workflow_file: String,
    /// The run's title (the head commit's first line for a push).
    pub name: String,
    pub head_sha: String,
    pub head_branch: String,
    pub event: String,
    /// `queued`, `in_progress`, `completed`, …
    pub status: String,
    /// `success`, `failure`, `cancelled`, `skipped`, … once completed.
    pub conclusion: Option<String>,
    pub run_attempt: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub html_url: String,
    /// The latest attempt's jobs, in order.
    pub jobs: Vec<JobRecord>,
}

/// One job of a run, with its steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    pub html_url: String,
    pub steps: Vec<StepRecord>,
}

/// One step of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub number: u32,
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
}

/// A commit as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    pub sha: String,
    pub message: String,
    pub author: String,
    pub author_login: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub committed_at: OffsetDateTime,
    pub html_url: String,
    /// The migrations directory at this commit, once read.
    pub migrations: Option<MigrationsAt>,
}

/// The Alembic revisions of one commit's migrations directory, and the
/// files that could not be read (with file and line).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MigrationsAt {
    pub revisions: Vec<Revision>,
    pub problems: Vec<String>,
}

impl MigrationsAt {
    /// The heads, or None when the revisions do not form a graph.
    pub fn heads(&self) -> Option<Vec<String>> {
        crate::alembic::graph::Graph::new(self.revisions.clone())
            .ok()
            .map(|g| g.heads())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CiState {
    Passed,
    Failed,
    Running,
    /// No run of the pipeline for this commit is known.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmokeState {
    Passed,
    Failed,
    Running,
    /// The pipeline did not get to its smoke test for this commit.
    NotRun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Went live, its pipeline passed and its smoke test did not fail.
    Good,
    /// Its build or update failed, its pipeline failed or its smoke test failed.
    Bad,
    /// Still building, updating or testing.
    Pending,
    /// Canceled before it went live.
    Canceled,
}

/// One deploy of one environment, with everything known about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub deploy: DeployRecord,
    pub commit: Option<CommitRecord>,
    pub ci: CiState,
    /// The ids of the pipeline's runs for this commit, newest first.
    pub runs: Vec<u64>,
    pub smoke: SmokeState,
    pub verdict: Verdict,
    /// Why it is judged so, in words ("build failed on Render").
    pub reason: String,
    /// This is what the environment serves now.
    pub is_live: bool,
}

/// Render's deploy statuses, grouped.
fn deploy_phase(status: &str) -> DeployPhase {
    match status {
        "live" => DeployPhase::Live,
        "deactivated" => DeployPhase::WasLive,
        "build_failed" | "update_failed" | "pre_deploy_failed" => DeployPhase::Failed,
        "canceled" => DeployPhase::Canceled,
        _ => DeployPhase::InProgress,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeployPhase {
    Live,
    WasLive,
    Failed,
    Canceled,
    InProgress,
}

/// The pipeline's state for a commit from its newest run.
pub fn ci_state(runs: &[&RunRecord]) -> CiState {
    match runs.first() {
        None => CiState::None,
        Some(run) if run.status != "completed" => CiState::Running,
        // A failed smoke job is the smoke result, not a CI failure.
        Some(run) => {
            let failed_before_smoke = run.jobs.iter().any(|job| {
                !is_smoke(&job.name)
                    && matches!(
                        job.conclusion.as_deref(),
                        Some("failure" | "timed_out" | "cancelled")
                    )
            });
            match run.conclusion.as_deref() {
                Some("success") => CiState::Passed,
                _ if !failed_before_smoke && run.jobs.iter().any(|j| is_smoke(&j.name)) => {
                    CiState::Passed
                }
                _ => CiState::Failed,
            }
        }
    }
}

fn is_smoke(job: &str) -> bool {
    job.to_ascii_lowercase().contains("smoke")
}

fn smoke_state(runs: &[&RunRecord]) -> SmokeState {
    let Some(run) = runs.first() else {
        return SmokeState::NotRun;
    };
    let Some(job) = run.jobs.iter().find(|j| is_smoke(&j.name)) else {
        return SmokeState::NotRun;
    };
    match job.conclusion.as_deref() {
        None if run.status != "completed" => SmokeState::Running,
        Some("success") => SmokeState::Passed,
        Some("failure" | "timed_out") => SmokeState::Failed,
        _ => SmokeState::NotRun,
    }
}

/// Builds the releases of one environment, newest first. `pipeline` is the
/// deploy workflow's file name; other workflows' runs do not judge a release.
pub fn build(
    deploys: &[DeployRecord],
    commits: &[CommitRecord],
    runs: &[RunRecord],
    pipeline: &str,
) -> Vec<Release> {
    let mut deploys: Vec<&DeployRecord> = deploys.iter().collect();
    deploys.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.id.cmp(&a.id))
    });
    deploys
        .into_iter()
        .map(|deploy| {
            let mut for_commit: Vec<&RunRecord> = runs
                .iter()
                .filter(|r| r.head_sha == deploy.commit_sha && r.workflow_file == pipeline)
                .collect();
            for_commit.sort_by(|a, b| {
                b.created_at
                    .cmp(&a.created_at)
                    .then(b.run_attempt.cmp(&a.run_attempt))
            });
            let ci = ci_state(&for_commit);
            let smoke = smoke_state(&for_commit);
            let phase = deploy_phase(&deploy.status);
            let (verdict, reason) = judge(phase, ci, smoke, &deploy.status);
            Release {
                commit: commits.iter().find(|c| c.sha == deploy.commit_sha).cloned(),
                runs: for_commit.iter().map(|r| r.id).collect(),
                ci,
                smoke,
                verdict,
                reason,
                is_live: phase == DeployPhase::Live,
                deploy: deploy.clone(),
            }
        })
        .collect()
}

fn judge(phase: DeployPhase, ci: CiState, smoke: SmokeState, status: &str) -> (Verdict, String) {
    match phase {
        DeployPhase::Failed => (
            Verdict::Bad,
            format!("the deploy failed on Render ({})", status.replace('_', " ")),
        ),
        DeployPhase::Canceled => (
            Verdict::Canceled,
            "the deploy was canceled before it went live".into(),
        ),
        DeployPhase::InProgress => (
            Verdict::Pending,
            format!("the deploy is in progress ({})", status.replace('_', " ")),
        ),
        DeployPhase::Live | DeployPhase::WasLive => match (ci, smoke) {
            (CiState::Failed, _) => (Verdict::Bad, "its pipeline failed".into()),
            (_, SmokeState::Failed) => (
                Verdict::Bad,
                "the smoke test after the deploy failed".into(),
            ),
            (CiState::Running, _) | (_, SmokeState::Running) => {
                (Verdict::Pending, "its pipeline is still running".into())
            }
            (CiState::None, _) => (
                Verdict::Good,
                "went live; no pipeline run is known for its commit".into(),
            ),
            (CiState::Passed, SmokeState::Passed) => (
                Verdict::Good,
                "went live, pipeline and smoke test passed".into(),
            ),
            (CiState::Passed, SmokeState::NotRun) => {
                (Verdict::Good, "went live and its pipeline passed".into())
            }
        },
    }
}

/// The newest good release that is not the live one: the one-click rollback target.
pub fn last_good(releases: &[Release]) -> Option<&Release> {
    let live = releases.iter().find(|r| r.is_live)?;
    releases
        .iter()
        .filter(|r| r.deploy.created_at < live.deploy.created_at)
        .find(|r| r.verdict == Verdict::Good && r.deploy.commit_sha != live.deploy.commit_sha)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-20 09:00 UTC);

    fn deploy(id: &str, sha: &str, status: &str, minutes: i64) -> DeployRecord {
        DeployRecord {
            id: id.into(),
            environment: "production".into(),
            service_id: "srv-1".into(),
            commit_sha: sha.into(),
            commit_message: format!("commit {sha}"),
            status: status.into(),
            trigger: "deploy_hook".into(),
            created_at: T0 + Duration::minutes(minutes),
            updated_at: T0 + Duration::minutes(minutes),
            finished_at: None,
        }
    }

    fn run(
        id: u64,
        sha: &str,
        conclusion: Option<&str>,
        jobs: &[(&str, Option<&str>)],
    ) -> RunRecord {
        RunRecord {
            id,
            workflow_file: "deploy.yml".into(),
            name: format!("commit {sha}"),
            head_sha: sha.into(),
            head_branch: "main".into(),
            event: "push".into(),
            status: if conclusion.is_some() {
                "completed"
            } else {
                "in_progress"
            }
            .into(),
            conclusion: conclusion.map(Into::into),
            run_attempt: 1,
            created_at: T0 + Duration::minutes(id as i64),
            updated_at: T0 + Duration::minutes(id as i64),
            html_url: format!("https://github.com/o/r/actions/runs/{id}"),
            jobs: jobs
                .iter()
                .map(|(name, conclusion)| JobRecord {
                    name: (*name).into(),
                    status: if conclusion.is_some() {
                        "completed"
                    } else {
                        "in_progress"
                    }
                    .into(),
                    conclusion: conclusion.map(Into::into),
                    started_at: None,
                    completed_at: None,
                    html_url: String::new(),
                    steps: vec![],
                })
                .collect(),
        }
    }

    const ALL_PASS: &[(&str, Option<&str>)] = &[
        ("test", Some("success")),
        ("deploy", Some("success")),
        ("smoke", Some("success")),
    ];

    #[test]
    fn judges_each_deploy_from_render_ci_and_smoke() {
        let deploys = [
            deploy("dep-1", "aaa", "deactivated", 0),
            deploy("dep-2", "bbb", "deactivated", 10),
            deploy("dep-3", "ccc", "build_failed", 20),
            deploy("dep-4", "ddd", "live", 30),
            deploy("dep-5", "eee", "build_in_progress", 40),
            deploy("dep-6", "fff", "canceled", 50),
        ];
        let runs = [
            run(1, "aaa", Some("success"), ALL_PASS),
            run(
                2,
                "bbb",
                Some("failure"),
                &[
                    ("test", Some("success")),
                    ("deploy", Some("success")),
                    ("smoke", Some("failure")),
                ],
            ),
            run(3, "ccc", Some("success"), ALL_PASS),
            run(
                4,
                "ddd",
                Some("success"),
                &[("test", Some("success")), ("deploy", Some("success"))],
            ),
            run(5, "eee", None, &[("test", None)]),
            // Another workflow's failure does not judge a release.
            RunRecord {
                workflow_file: "nightly.yml".into(),
                ..run(6, "ddd", Some("failure"), &[])
            },
        ];
        let releases = build(&deploys, &[], &runs, "deploy.yml");
        let got: Vec<(&str, Verdict, CiState, SmokeState)> = releases
            .iter()
            .map(|r| (r.deploy.id.as_str(), r.verdict, r.ci, r.smoke))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "dep-6",
                    Verdict::Canceled,
                    CiState::None,
                    SmokeState::NotRun
                ),
                (
                    "dep-5",
                    Verdict::Pending,
                    CiState::Running,
                    SmokeState::NotRun
                ),
                ("dep-4", Verdict::Good, CiState::Passed, SmokeState::NotRun),
                ("dep-3", Verdict::Bad, CiState::Passed, SmokeState::Passed),
                ("dep-2", Verdict::Bad, CiState::Passed, SmokeState::Failed),
                ("dep-1", Verdict::Good, CiState::Passed, SmokeState::Passed),
            ]
        );
        assert_eq!(
            releases[3].reason,
            "the deploy failed on Render (build failed)"
        );
        assert_eq!(releases[4].reason, "the smoke test after the deploy failed");
        assert!(releases[2].is_live);
        assert_eq!(
            last_good(&releases).map(|r| r.deploy.id.as_str()),
            Some("dep-1")
        );
    }

    #[test]
    fn the_newest_run_of_a_commit_decides_and_ci_failures_are_bad() {
        let deploys = [
            deploy("dep-1", "aaa", "deactivated", 0),
            deploy("dep-2", "aaa", "live", 5),
        ];
        let mut rerun = run(9, "aaa", Some("success"), ALL_PASS);
        rerun.run_attempt = 2;
        let runs = [
            run(1, "aaa", Some("failure"), &[("test", Some("failure"))]),
            rerun,
        ];
        let releases = build(&deploys, &[], &runs, "deploy.yml");
        assert_eq!(releases[0].runs, vec![9, 1]);
        assert_eq!(releases[0].ci, CiState::Passed);
        // A redeploy of the live commit is not a rollback target.
        assert_eq!(last_good(&releases), None);

        let releases = build(&deploys[..1], &[], &runs[..1], "deploy.yml");
        assert_eq!(
            (releases[0].verdict, releases[0].ci),
            (Verdict::Bad, CiState::Failed)
        );
    }

    #[test]
    fn no_live_deploy_means_no_rollback_target() {
        let deploys = [
            deploy("dep-1", "aaa", "deactivated", 0),
            deploy("dep-2", "bbb", "build_failed", 5),
        ];
        assert_eq!(last_good(&build(&deploys, &[], &[], "deploy.yml")), None);
    }
}
