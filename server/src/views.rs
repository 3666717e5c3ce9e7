//! From what the store keeps to what the pages and the REST API show:
//! releases, runs, the migration graph against the database, and stale-data
//! notices. Plain functions over plain data.

use crate::alembic::graph::Graph;
use crate::releases::{CiState, CommitRecord, JobRecord, Release, RunRecord, SmokeState, Verdict};
use crate::store::sync::{DatabaseState, SyncState, store_time};
use app::model::{
    DatabaseView, JobView, MigrationsView, ReleaseView, RevisionView, RunView, StaleNotice,
    StepView,
};
use time::OffsetDateTime;

/// Where links to GitHub and Render point.
#[derive(Debug, Clone)]
pub struct Links {
    /// `https://github.com/{owner}/{repo}`, when GitHub is configured.
    pub repository: Option<String>,
}

impl Links {
    pub fn commit(&self, sha: &str) -> String {
        match &self.repository {
            Some(repo) => format!("{repo}/commit/{sha}"),
            None => String::new(),
        }
    }

    pub fn deploy(service_id: &str, deploy_id: &str) -> String {
        format!("https://dashboard.render.com/web/{service_id}/deploys/{deploy_id}")
    }
}

fn time_text(t: OffsetDateTime) -> String {
    store_time(t)
}

/// The word pages and the API use for a CI state.
pub(crate) fn ci_word(ci: CiState) -> &'static str {
    match ci {
        CiState::Passed => "passed",
        CiState::Failed => "failed",
        CiState::Running => "running",
        CiState::None => "none",
    }
}

fn smoke_word(smoke: SmokeState) -> &'static str {
    match smoke {
        SmokeState::Passed => "passed",
        SmokeState::Failed => "failed",
        SmokeState::Running => "running",
        SmokeState::NotRun => "not_run",
    }
}

fn verdict_word(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Good => "good",
        Verdict::Bad => "bad",
        Verdict::Pending => "pending",
        Verdict::Canceled => "canceled",
    }
}

pub fn release_view(release: &Release, links: &Links) -> ReleaseView {
    let d = &release.deploy;
    ReleaseView {
        environment: d.environment.clone(),
        deploy_id: d.id.clone(),
        deploy_status: d.status.clone(),
        trigger: d.trigger.clone(),
        created_at: time_text(d.created_at),
        finished_at: d.finished_at.map(time_text),
        commit_sha: d.commit_sha.clone(),
        commit_message: release
            .commit
            .as_ref()
            .map(|c| c.message.clone())
            .unwrap_or_else(|| d.commit_message.clone()),
        author: release.commit.as_ref().map(|c| c.author.clone()),
        ci: ci_word(release.ci).into(),
        smoke: smoke_word(release.smoke).into(),
        verdict: verdict_word(release.verdict).into(),
        reason: release.reason.clone(),
        is_live: release.is_live,
        migration_heads: release
            .commit
            .as_ref()
            .and_then(|c| c.migrations.as_ref())
            .and_then(|m| m.heads()),
        run_ids: release.runs.clone(),
        commit_url: links.commit(&d.commit_sha),
        deploy_url: Links::deploy(&d.service_id, &d.id),
    }
}

fn job_view(job: &JobRecord) -> JobView {
    JobView {
        name: job.name.clone(),
        status: job.status.clone(),
        conclusion: job.conclusion.clone(),
        started_at: job.started_at.map(time_text),
        completed_at: job.completed_at.map(time_text),
        html_url: job.html_url.clone(),
        steps: job
            .steps
            .iter()
            .map(|s| StepView {
                number: s.number,
                name: s.name.clone(),
                status: s.status.clone(),
                conclusion: s.conclusion.clone(),
                started_at: s.started_at.map(time_text),
                completed_at: s.completed_at.map(time_text),
            })
            .collect(),
    }
}

pub fn run_view(run: &RunRecord) -> RunView {
    RunView {
        id: run.id,
        name: run.name.clone(),
        workflow_file: run.workflow_file.clone(),
        branch: run.head_branch.clone(),
        head_sha: run.head_sha.clone(),
        event: run.event.clone(),
        status: run.status.clone(),
        conclusion: run.conclusion.clone(),
        attempt: run.run_attempt,
        created_at: time_text(run.created_at),
        updated_at: time_text(run.updated_at),
        html_url: run.html_url.clone(),
        jobs: run.jobs.iter().map(job_view).collect(),
    }
}

/// The database against the code of `commit`.
pub fn database_view(db: Option<&DatabaseState>, commit: Option<&CommitRecord>) -> DatabaseView {
    let current = db.map(|d| d.versions.clone());
    let migrations = commit.and_then(|c| c.migrations.as_ref());
    let graph = migrations.and_then(|m| Graph::new(m.revisions.clone()).ok());
    let (state, summary) = match (&current, &graph) {
        (None, _) => ("unknown", "the database has not been read yet".to_owned()),
        (Some(_), None) => (
            "unknown",
            "the code's migrations have not been read yet".to_owned(),
        ),
        (Some(current), Some(graph)) => {
            let s = graph.state(current);
            if !s.drift.is_empty() {
                (
                    "drift",
                    format!(
                        "the database is at {}, which the live code does not contain",
                        s.drift.join(", ")
                    ),
                )
            } else if !s.pending.is_empty() {
                let n = s.pending.len();
                (
                    "pending",
                    format!("{n} revision{} pending", if n == 1 { "" } else { "s" }),
                )
            } else {
                ("at_head", "at the code's head".to_owned())
            }
        }
    };
    DatabaseView {
        current,
        code_heads: graph.as_ref().map(Graph::heads),
        state: state.into(),
        summary,
        read_at: db.map(|d| d.read_at.clone()),
    }
}

pub fn migrations_view(
    environment: &str,
    commit: Option<&CommitRecord>,
    db: Option<&DatabaseState>,
) -> MigrationsView {
    let database = database_view(db, commit);
    let Some(migrations) = commit.and_then(|c| c.migrations.as_ref()) else {
        return MigrationsView {
            environment: environment.into(),
            commit_sha: commit.map(|c| c.sha.clone()),
            database,
            ..MigrationsView::default()
        };
    };
    let mut problems = migrations.problems.clone();
    let graph = match Graph::new(migrations.revisions.clone()) {
        Ok(graph) => Some(graph),
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    let current = db.map(|d| d.versions.clone()).unwrap_or_default();
    let (heads, pending, drift, revisions) = match &graph {
        None => Default::default(),
        Some(graph) => {
            let state = graph.state(&current);
            let applied = graph.ancestry(current.iter().map(String::as_str));
            let revisions = graph
                .ordered()
                .map(|r| RevisionView {
                    id: r.id.clone(),
                    down: r.down.clone(),
                    message: r.message.clone(),
                    create_date: r.create_date.clone(),
                    is_head: state.heads.contains(&r.id),
                    is_current: current.contains(&r.id),
                    is_applied: db.is_some() && applied.contains(&r.id),
                    data_loss: r.data_loss.iter().map(|d| d.detail.clone()).collect(),
                })
                .collect();
            (state.heads, state.pending, state.drift, revisions)
        }
    };
    MigrationsView {
        environment: environment.into(),
        commit_sha: commit.map(|c| c.sha.clone()),
        live_deploy_id: None,
        database,
        heads,
        pending,
        drift,
        revisions,
        problems,
    }
}

/// What a source key is called on a page.
pub fn source_name(source: &str) -> &'static str {
    match source {
        s if s.starts_with("github") => "GitHub",
        s if s.starts_with("render") => "Render",
        _ => "the database",
    }
}

/// The notices for the sources of one environment whose last sync failed.
pub fn stale_notices(states: &[SyncState], environment: &str) -> Vec<StaleNotice> {
    states
        .iter()
        .filter(|s| s.environment == environment)
        .filter_map(|s| {
            s.last_error.as_ref().map(|reason| StaleNotice {
                source: source_name(&s.source).into(),
                since: s.last_ok_at.clone(),
                reason: reason.clone(),
            })
        })
        .collect()
}
