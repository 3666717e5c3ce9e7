//! GitHub Actions: workflows, runs as schedules over the clock (queue, then
//! each job's steps in order), attempts, re-runs, cancels and dispatches.
//!
//! A run's state is computed, not stored: given its attempt's start, the
//! timing, a cancel time and the completion hook's answer, [`view`] says
//! where every job and step is at any instant. That keeps past runs,
//! running ones and webhook snapshots consistent with each other.

use super::shapes::{node_id, simple_user};
use super::webhooks::Event;
use super::{
    ActionsTiming, ApiError, Base, CompletedRun, GithubSim, Outcome, PageQuery, Person, SeedError,
    WorkflowSeed, World, error, iso, not_found, paginate, parse_body, unprocessable, with_link,
};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;

pub(super) struct Workflow {
    pub id: u64,
    pub seed: WorkflowSeed,
    pub created_at: OffsetDateTime,
    next_run_number: u64,
}

pub(super) struct Run {
    pub id: u64,
    pub workflow_id: u64,
    pub workflow_file: String,
    pub workflow_name: String,
    pub run_number: u64,
    pub event: String,
    pub branch: String,
    pub head_sha: String,
    pub title: String,
    pub created_at: OffsetDateTime,
    pub actor: Person,
    pub inputs: BTreeMap<String, String>,
    /// Created through the API's dispatch: the completion hook applies.
    pub dispatched: bool,
    pub attempts: Vec<Attempt>,
}

pub(super) struct Attempt {
    pub number: u32,
    pub queued_at: OffsetDateTime,
    pub triggering_actor: Person,
    jobs: Vec<PlannedJob>,
    /// (job index, step index) of the step that fails.
    fail_at: Option<(usize, usize)>,
    cancelled_at: Option<OffsetDateTime>,
    hook: Hook,
    /// The last `workflow_run` phase delivered (0 requested, 1 in_progress, 2 completed).
    notified: Option<u8>,
}

enum PlannedJob {
    Run {
        id: u64,
        name: String,
        steps: Vec<String>,
    },
    /// A job that passed in an earlier attempt and was not re-run.
    Reused(JobView),
}

#[derive(Debug, Clone)]
enum Hook {
    NotNeeded,
    Waiting,
    Running,
    Done {
        at: OffsetDateTime,
        result: Result<(), String>,
    },
}

#[derive(Debug, Clone)]
pub(super) struct StepView {
    pub name: String,
    pub number: usize,
    pub status: &'static str,
    pub conclusion: Option<&'static str>,
    pub started_at: Option<OffsetDateTime>,
    pub completed_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub(super) struct JobView {
    pub id: u64,
    pub name: String,
    pub run_attempt: u32,
    pub status: &'static str,
    pub conclusion: Option<&'static str>,
    pub created_at: OffsetDateTime,
    pub started_at: OffsetDateTime,
    pub completed_at: Option<OffsetDateTime>,
    pub steps: Vec<StepView>,
}

#[derive(Debug, Clone)]
pub(super) struct AttemptView {
    pub status: &'static str,
    pub conclusion: Option<&'static str>,
    pub updated_at: OffsetDateTime,
    pub jobs: Vec<JobView>,
    /// 0 queued, 1 in progress, 2 completed.
    pub phase: u8,
    /// The last step's time is up and the completion hook has not answered.
    awaiting_hook: bool,
}

/// The hook to call for an attempt whose last step is due.
pub(super) struct DueHook {
    pub run: CompletedRun,
}

pub(super) struct NewRun<'a> {
    pub workflow_file: &'a str,
    pub branch: &'a str,
    pub head_sha: &'a str,
    pub event: &'a str,
    pub created_at: OffsetDateTime,
    /// `None`: the policy for the sha (see `set_outcome_for`), else success.
    pub outcome: Option<Outcome>,
    pub actor: Person,
    pub inputs: BTreeMap<String, String>,
    pub dispatched: bool,
    pub title: String,
}

pub(super) struct Actions {
    timing: ActionsTiming,
    pub workflows: Vec<Workflow>,
    /// Oldest first.
    pub runs: Vec<Run>,
    pub outcomes: HashMap<String, Outcome>,
    next_run_id: u64,
    next_job_id: u64,
    events: Vec<Event>,
}

fn missing() -> ApiError {
    ApiError::Status(StatusCode::NOT_FOUND, "Not Found".into())
}

fn later(a: OffsetDateTime, b: OffsetDateTime) -> OffsetDateTime {
    if a > b { a } else { b }
}

impl Actions {
    pub fn new(timing: ActionsTiming) -> Self {
        Self {
            timing,
            workflows: Vec::new(),
            runs: Vec::new(),
            outcomes: HashMap::new(),
            next_run_id: 7_100_000_001,
            next_job_id: 19_300_000_001,
            events: Vec::new(),
        }
    }

    pub fn add_workflow(&mut self, seed: WorkflowSeed, at: OffsetDateTime) -> u64 {
        let id = 5_000_000 + self.workflows.len() as u64 * 7 + 1;
        self.workflows.push(Workflow {
            id,
            seed,
            created_at: at,
            next_run_number: 1,
        });
        id
    }

    fn workflow_by_key(&self, key: &str) -> Option<&Workflow> {
        self.workflows
            .iter()
            .find(|w| w.id.to_string() == key || w.seed.file == key)
    }

    pub fn run(&self, id: u64) -> Option<&Run> {
        self.runs.iter().find(|r| r.id == id)
    }

    fn fail_index(
        seed: &WorkflowSeed,
        outcome: &Outcome,
    ) -> Result<Option<(usize, usize)>, SeedError> {
        match outcome {
            Outcome::Success => Ok(None),
            Outcome::FailAt { job, step } => seed
                .jobs
                .iter()
                .enumerate()
                .find_map(|(ji, j)| {
                    (j.name == *job)
                        .then(|| j.steps.iter().position(|s| s == step).map(|si| (ji, si)))
                        .flatten()
                })
                .map(Some)
                .ok_or_else(|| SeedError::UnknownStep {
                    workflow: seed.file.clone(),
                    job: job.clone(),
                    step: step.clone(),
                }),
        }
    }

    fn plan_jobs(&mut self, seed: &WorkflowSeed) -> Vec<PlannedJob> {
        seed.jobs
            .iter()
            .map(|j| {
                let id = self.next_job_id;
                self.next_job_id += 1;
                PlannedJob::Run {
                    id,
                    name: j.name.clone(),
                    steps: if j.steps.is_empty() {
                        vec!["Set up job".into()]
                    } else {
                        j.steps.clone()
                    },
                }
            })
            .collect()
    }

    pub fn create_run(&mut self, new: NewRun<'_>) -> Result<u64, SeedError> {
        let index = self
            .workflows
            .iter()
            .position(|w| w.seed.file == new.workflow_file)
            .ok_or_else(|| SeedError::UnknownWorkflow(new.workflow_file.to_owned()))?;
        let seed = self.workflows[index].seed.clone();
        let outcome = new
            .outcome
            .or_else(|| self.outcomes.get(new.head_sha).cloned())
            .unwrap_or(Outcome::Success);
        let fail_at = Self::fail_index(&seed, &outcome)?;
        let jobs = self.plan_jobs(&seed);
        let workflow = &mut self.workflows[index];
        let run_number = workflow.next_run_number;
        workflow.next_run_number += 1;
        let id = self.next_run_id;
        self.next_run_id += 1;
        let hook = if new.dispatched && fail_at.is_none() {
            Hook::Waiting
        } else {
            Hook::NotNeeded
        };
        self.runs.push(Run {
            id,
            workflow_id: workflow.id,
            workflow_file: seed.file.clone(),
            workflow_name: seed.name.clone(),
            run_number,
            event: new.event.to_owned(),
            branch: new.branch.to_owned(),
            head_sha: new.head_sha.to_owned(),
            title: new.title,
            created_at: new.created_at,
            actor: new.actor.clone(),
            inputs: new.inputs,
            dispatched: new.dispatched,
            attempts: vec![Attempt {
                number: 1,
                queued_at: new.created_at,
                triggering_actor: new.actor,
                jobs,
                fail_at,
                cancelled_at: None,
                hook,
                notified: None,
            }],
        });
        Ok(id)
    }

    /// Treats every phase reached by `at` as already delivered.
    pub fn mark_notified(&mut self, run_id: u64, at: OffsetDateTime) {
        let timing = self.timing;
        if let Some(run) = self.runs.iter_mut().find(|r| r.id == run_id) {
            for attempt in &mut run.attempts {
                attempt.notified = Some(view(attempt, timing, at).phase);
            }
        }
    }

    /// The view of `run`'s attempt `number` (the latest when `None`) at `at`.
    pub fn view_of(
        &self,
        run: &Run,
        number: Option<u32>,
        at: OffsetDateTime,
    ) -> Option<AttemptView> {
        let attempt = match number {
            Some(n) => run.attempts.iter().find(|a| a.number == n)?,
            None => run.attempts.last()?,
        };
        Some(view(attempt, self.timing, at))
    }

    /// Hooks that are due now (each handed out once), and the phases
    /// reached since the last call queued as `workflow_run` events.
    pub fn advance(&mut self, now: OffsetDateTime) -> Vec<DueHook> {
        let timing = self.timing;
        let mut due = Vec::new();
        for run in &mut self.runs {
            let Some(attempt) = run.attempts.last_mut() else {
                continue;
            };
            let current = view(attempt, timing, now);
            if current.awaiting_hook && matches!(attempt.hook, Hook::Waiting) {
                attempt.hook = Hook::Running;
                due.push(DueHook {
                    run: CompletedRun {
                        workflow_file: run.workflow_file.clone(),
                        inputs: run.inputs.clone(),
                        head_sha: run.head_sha.clone(),
                        head_branch: run.branch.clone(),
                        run_id: run.id,
                        run_attempt: attempt.number,
                    },
                });
            }
            let from = attempt.notified.map_or(0, |n| n + 1);
            for phase in from..=current.phase {
                let started = attempt.queued_at + timing.queue;
                let (action, at) = match phase {
                    0 => ("requested", attempt.queued_at),
                    1 => {
                        // A run cancelled while queued never was in progress.
                        if attempt.cancelled_at.is_some_and(|c| c < started) {
                            continue;
                        }
                        ("in_progress", started)
                    }
                    _ => ("completed", now),
                };
                self.events.push(Event::WorkflowRun {
                    run_id: run.id,
                    attempt: attempt.number,
                    action,
                    at,
                });
            }
            attempt.notified = Some(current.phase);
        }
        due
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    pub fn hook_done(
        &mut self,
        run_id: u64,
        number: u32,
        result: Result<(), String>,
        at: OffsetDateTime,
    ) {
        if let Some(attempt) = self
            .runs
            .iter_mut()
            .find(|r| r.id == run_id)
            .and_then(|r| r.attempts.iter_mut().find(|a| a.number == number))
        {
            attempt.hook = Hook::Done { at, result };
        }
    }

    /// A new attempt; `only_failed` keeps the jobs that passed.
    fn rerun(
        &mut self,
        run_id: u64,
        only_failed: bool,
        actor: Person,
        now: OffsetDateTime,
    ) -> Result<(), ApiError> {
        let timing = self.timing;
        let index = self
            .runs
            .iter()
            .position(|r| r.id == run_id)
            .ok_or_else(missing)?;
        let (seed, previous, head_sha, dispatched, number) = {
            let run = &self.runs[index];
            let last = run.attempts.last().ok_or_else(missing)?;
            let previous = view(last, timing, now);
            if previous.phase < 2 {
                return Err(ApiError::Status(
                    StatusCode::FORBIDDEN,
                    "This workflow is already running".into(),
                ));
            }
            let seed = self
                .workflows
                .iter()
                .find(|w| w.id == run.workflow_id)
                .map(|w| w.seed.clone())
                .ok_or_else(missing)?;
            (
                seed,
                previous,
                run.head_sha.clone(),
                run.dispatched,
                last.number + 1,
            )
        };
        let mut jobs = self.plan_jobs(&seed);
        if only_failed {
            if previous
                .jobs
                .iter()
                .all(|j| j.conclusion == Some("success"))
            {
                return Err(ApiError::Status(
                    StatusCode::FORBIDDEN,
                    "There are no failed jobs to re-run".into(),
                ));
            }
            for (planned, old) in jobs.iter_mut().zip(&previous.jobs) {
                if old.conclusion == Some("success") {
                    *planned = PlannedJob::Reused(old.clone());
                }
            }
        }
        let outcome = self
            .outcomes
            .get(&head_sha)
            .cloned()
            .unwrap_or(Outcome::Success);
        let fail_at = Self::fail_index(&seed, &outcome)
            .ok()
            .flatten()
            .filter(|(job, _)| matches!(jobs.get(*job), Some(PlannedJob::Run { .. })));
        let hook = if dispatched && fail_at.is_none() {
            Hook::Waiting
        } else {
            Hook::NotNeeded
        };
        self.runs[index].attempts.push(Attempt {
            number,
            queued_at: now,
            triggering_actor: actor,
            jobs,
            fail_at,
            cancelled_at: None,
            hook,
            notified: None,
        });
        Ok(())
    }
}

/// Where `attempt` is at `at`: the heart of the simulation.
pub(super) fn view(attempt: &Attempt, timing: ActionsTiming, at: OffsetDateTime) -> AttemptView {
    let step = timing.step;
    let queued_at = attempt.queued_at;
    let start = queued_at + timing.queue;
    // A cancel only shows in views of instants after it.
    let cut = attempt.cancelled_at.filter(|c| *c <= at);
    let horizon = cut.unwrap_or(at);
    let last_run = attempt
        .jobs
        .iter()
        .rposition(|j| matches!(j, PlannedJob::Run { .. }));
    let mut jobs = Vec::new();
    // After a failure or a cancel: when, and how the remaining jobs end.
    let mut stop: Option<(OffsetDateTime, &'static str)> = None;
    let mut next_start = Some(start);
    let mut awaiting_hook = false;
    let mut failed = false;
    let mut updated = queued_at;
    for (ji, planned) in attempt.jobs.iter().enumerate() {
        let (id, name, steps) = match planned {
            PlannedJob::Reused(old) => {
                jobs.push(old.clone());
                continue;
            }
            PlannedJob::Run { id, name, steps } => (*id, name, steps),
        };
        let mut job = JobView {
            id,
            name: name.clone(),
            run_attempt: attempt.number,
            status: "queued",
            conclusion: None,
            created_at: queued_at,
            started_at: queued_at,
            completed_at: None,
            steps: Vec::new(),
        };
        if let Some((when, conclusion)) = stop {
            job.status = "completed";
            job.conclusion = Some(conclusion);
            job.started_at = when;
            job.completed_at = Some(when);
            jobs.push(job);
            continue;
        }
        let Some(job_start) = next_start.filter(|s| *s <= horizon) else {
            if let Some(c) = cut {
                job.status = "completed";
                job.conclusion = Some("cancelled");
                job.started_at = c;
                job.completed_at = Some(c);
                stop = Some((c, "cancelled"));
                updated = later(updated, c);
            }
            next_start = None;
            jobs.push(job);
            continue;
        };
        job.status = "in_progress";
        job.started_at = job_start;
        updated = later(updated, job_start);
        let mut s0 = Some(job_start);
        let mut ended: Option<(OffsetDateTime, &'static str)> = None;
        for (si, step_name) in steps.iter().enumerate() {
            let mut sv = StepView {
                name: step_name.clone(),
                number: si + 1,
                status: "queued",
                conclusion: None,
                started_at: None,
                completed_at: None,
            };
            if ended.is_some() {
                sv.status = "completed";
                sv.conclusion = Some("skipped");
                job.steps.push(sv);
                continue;
            }
            let Some(begin) = s0.filter(|s| *s <= horizon) else {
                if cut.is_some() {
                    sv.status = "completed";
                    sv.conclusion = Some("skipped");
                }
                s0 = None;
                job.steps.push(sv);
                continue;
            };
            let mut end = Some(begin + step);
            let mut fails = attempt.fail_at == Some((ji, si));
            if Some(ji) == last_run && si + 1 == steps.len() && !fails {
                match &attempt.hook {
                    Hook::NotNeeded => {}
                    Hook::Waiting | Hook::Running => {
                        if begin + step <= horizon && cut.is_none() {
                            awaiting_hook = true;
                        }
                        end = None;
                    }
                    Hook::Done {
                        at: answered,
                        result,
                    } => {
                        end = Some(later(begin + step, *answered));
                        fails = result.is_err();
                    }
                }
            }
            sv.started_at = Some(begin);
            match end.filter(|e| *e <= horizon) {
                Some(e) => {
                    sv.status = "completed";
                    sv.completed_at = Some(e);
                    updated = later(updated, e);
                    if fails {
                        sv.conclusion = Some("failure");
                        ended = Some((e, "failure"));
                    } else {
                        sv.conclusion = Some("success");
                    }
                }
                None => {
                    if let Some(c) = cut {
                        sv.status = "completed";
                        sv.conclusion = Some("cancelled");
                        sv.completed_at = Some(c);
                        ended = Some((c, "cancelled"));
                        updated = later(updated, c);
                    } else {
                        sv.status = "in_progress";
                    }
                }
            }
            s0 = end;
            job.steps.push(sv);
        }
        match ended {
            Some((when, conclusion)) => {
                job.status = "completed";
                job.conclusion = Some(conclusion);
                job.completed_at = Some(when);
                failed |= conclusion == "failure";
                stop = Some((
                    when,
                    if conclusion == "failure" {
                        "skipped"
                    } else {
                        "cancelled"
                    },
                ));
                next_start = None;
            }
            None if job.steps.iter().all(|s| s.status == "completed") => {
                let when = job
                    .steps
                    .last()
                    .and_then(|s| s.completed_at)
                    .unwrap_or(job_start);
                job.status = "completed";
                job.conclusion = Some("success");
                job.completed_at = Some(when);
                next_start = Some(when);
            }
            None => next_start = None,
        }
        jobs.push(job);
    }
    let all_done = jobs.iter().all(|j| j.status == "completed");
    let (status, conclusion, phase) = if cut.is_some() && all_done {
        ("completed", Some("cancelled"), 2)
    } else if all_done {
        (
            "completed",
            Some(if failed { "failure" } else { "success" }),
            2,
        )
    } else if horizon < start {
        ("queued", None, 0)
    } else {
        ("in_progress", None, 1)
    };
    AttemptView {
        status,
        conclusion,
        updated_at: updated,
        jobs,
        phase,
        awaiting_hook,
    }
}

pub(super) fn routes() -> Router<GithubSim> {
    let r = "/repos/{owner}/{repo}/actions";
    Router::new()
        .route(&format!("{r}/runs"), get(list_runs))
        .route(&format!("{r}/runs/{{run_id}}"), get(get_run))
        .route(
            &format!("{r}/runs/{{run_id}}/attempts/{{attempt}}"),
            get(get_attempt),
        )
        .route(&format!("{r}/runs/{{run_id}}/jobs"), get(list_jobs))
        .route(
            &format!("{r}/runs/{{run_id}}/attempts/{{attempt}}/jobs"),
            get(list_attempt_jobs),
        )
        .route(&format!("{r}/jobs/{{job_id}}"), get(get_job))
        .route(&format!("{r}/runs/{{run_id}}/rerun"), post(rerun))
        .route(
            &format!("{r}/runs/{{run_id}}/rerun-failed-jobs"),
            post(rerun_failed),
        )
        .route(&format!("{r}/runs/{{run_id}}/cancel"), post(cancel))
        .route(&format!("{r}/runs/{{run_id}}/force-cancel"), post(cancel))
        .route(&format!("{r}/workflows"), get(list_workflows))
        .route(&format!("{r}/workflows/{{workflow_id}}"), get(get_workflow))
        .route(
            &format!("{r}/workflows/{{workflow_id}}/runs"),
            get(list_workflow_runs),
        )
        .route(
            &format!("{r}/workflows/{{workflow_id}}/dispatches"),
            post(dispatch),
        )
}

impl GithubSim {
    fn actions_api(&self, base: &str) -> String {
        format!(
            "{base}/repos/{}/{}/actions",
            self.config().owner,
            self.config().repo
        )
    }

    fn html(&self) -> String {
        format!(
            "https://github.com/{}/{}",
            self.config().owner,
            self.config().repo
        )
    }

    pub(super) fn workflow_json(&self, base: &str, w: &Workflow) -> Value {
        let html = self.html();
        json!({
            "id": w.id,
            "node_id": node_id("08:Workflow", w.id),
            "name": w.seed.name,
            "path": format!(".github/workflows/{}", w.seed.file),
            "state": "active",
            "created_at": iso(w.created_at),
            "updated_at": iso(w.created_at),
            "url": format!("{}/workflows/{}", self.actions_api(base), w.id),
            "html_url": format!("{html}/blob/{}/.github/workflows/{}", self.config().default_branch, w.seed.file),
            "badge_url": format!("{html}/actions/workflows/{}/badge.svg", w.seed.file),
        })
    }

    /// `workflow-run` for attempt `view` of `run`.
    pub(super) fn run_json(
        &self,
        world: &World,
        base: &str,
        run: &Run,
        attempt: &Attempt,
        view: &AttemptView,
    ) -> Value {
        let api = self.actions_api(base);
        let html = self.html();
        let id = run.id;
        let repo = self.repository_json(world, base);
        let head_commit = world
            .git
            .commits
            .get(&run.head_sha)
            .map_or(Value::Null, |c| {
                json!({
                    "id": c.sha,
                    "tree_id": c.tree,
                    "message": c.message,
                    "timestamp": iso(c.committer.date),
                    "author": { "name": c.author.name, "email": c.author.email },
                    "committer": { "name": c.committer.name, "email": c.committer.email },
                })
            });
        let check_suite = id + 20_000_000_000;
        let mut value = json!({
            "id": id,
            "name": run.workflow_name,
            "node_id": node_id("011:WorkflowRun", id),
            "check_suite_id": check_suite,
            "check_suite_node_id": node_id("010:CheckSuite", check_suite),
            "head_branch": run.branch,
            "head_sha": run.head_sha,
            "path": format!(".github/workflows/{}", run.workflow_file),
            "display_title": run.title,
            "run_number": run.run_number,
            "event": run.event,
            "status": view.status,
            "conclusion": view.conclusion,
            "workflow_id": run.workflow_id,
            "url": format!("{api}/runs/{id}"),
            "html_url": format!("{html}/actions/runs/{id}"),
            "pull_requests": [],
        });
        super::shapes::extend(
            &mut value,
            json!({
                "created_at": iso(run.created_at),
                "updated_at": iso(view.updated_at),
                "actor": simple_user(base, &run.actor.login),
                "run_attempt": attempt.number,
                "referenced_workflows": [],
                "run_started_at": iso(attempt.queued_at),
                "triggering_actor": simple_user(base, &attempt.triggering_actor.login),
                "jobs_url": format!("{api}/runs/{id}/jobs"),
                "logs_url": format!("{api}/runs/{id}/logs"),
                "check_suite_url": format!("{base}/repos/{}/{}/check-suites/{check_suite}", self.config().owner, self.config().repo),
                "artifacts_url": format!("{api}/runs/{id}/artifacts"),
                "cancel_url": format!("{api}/runs/{id}/cancel"),
                "rerun_url": format!("{api}/runs/{id}/rerun"),
                "previous_attempt_url": if attempt.number > 1 {
                    json!(format!("{api}/runs/{id}/attempts/{}", attempt.number - 1))
                } else { Value::Null },
                "workflow_url": format!("{api}/workflows/{}", run.workflow_id),
                "head_commit": head_commit,
                "repository": repo,
                "head_repository": repo,
                "head_repository_id": repo["id"],
            }),
        );
        value
    }

    /// `job`.
    pub(super) fn job_json(&self, base: &str, run: &Run, job: &JobView) -> Value {
        let api = self.actions_api(base);
        let started = job.status != "queued" && job.conclusion != Some("skipped");
        let (runner_id, runner_name, group_id, group_name) = if started {
            (
                json!(2),
                json!("GitHub Actions 2"),
                json!(0),
                json!("GitHub Actions"),
            )
        } else {
            (Value::Null, Value::Null, Value::Null, Value::Null)
        };
        json!({
            "id": job.id,
            "run_id": run.id,
            "run_url": format!("{api}/runs/{}", run.id),
            "run_attempt": job.run_attempt,
            "node_id": node_id("08:CheckRun", job.id),
            "head_sha": run.head_sha,
            "url": format!("{api}/jobs/{}", job.id),
            "html_url": format!("{}/actions/runs/{}/job/{}", self.html(), run.id, job.id),
            "status": job.status,
            "conclusion": job.conclusion,
            "created_at": iso(job.created_at),
            "started_at": iso(job.started_at),
            "completed_at": job.completed_at.map(iso),
            "name": job.name,
            "steps": job.steps.iter().map(|s| json!({
                "name": s.name,
                "status": s.status,
                "conclusion": s.conclusion,
                "number": s.number,
                "started_at": s.started_at.map(iso),
                "completed_at": s.completed_at.map(iso),
            })).collect::<Vec<_>>(),
            "check_run_url": format!("{base}/repos/{}/{}/check-runs/{}", self.config().owner, self.config().repo, job.id),
            "labels": ["ubuntu-latest"],
            "runner_id": runner_id,
            "runner_name": runner_name,
            "runner_group_id": group_id,
            "runner_group_name": group_name,
            "workflow_name": run.workflow_name,
            "head_branch": run.branch,
        })
    }

    fn latest_run_json(&self, world: &World, base: &str, run: &Run, at: OffsetDateTime) -> Value {
        let attempt = run.attempts.last().expect("a run has an attempt");
        let view = view(attempt, world.actions.timing, at);
        self.run_json(world, base, run, attempt, &view)
    }
}

fn number(params: &HashMap<String, String>, key: &str) -> Option<u64> {
    params.get(key).and_then(|v| v.parse().ok())
}

#[derive(Debug, Deserialize)]
struct RunsQuery {
    branch: Option<String>,
    event: Option<String>,
    status: Option<String>,
    head_sha: Option<String>,
    actor: Option<String>,
    /// GitHub's date qualifier, e.g. `2026-01-01T00:00:00Z..2026-02-01T00:00:00Z`.
    created: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

/// The instants a `created` qualifier admits: `A..B`, `A..*`, `*..B`,
/// `>=A`, `>A`, `<=A`, `<A` or `A`, each a date (`2026-01-31`, the whole
/// day, UTC) or a date-time (`2026-01-31T10:00:00Z`); `..` includes both ends.
/// None when the text is none of these.
pub(super) fn created_range(text: &str) -> Option<impl Fn(OffsetDateTime) -> bool> {
    use std::ops::Bound::{self, Excluded, Included, Unbounded};
    use time::format_description::well_known::Rfc3339;
    // A value's first and last instant.
    let span = |v: &str| -> Option<(OffsetDateTime, OffsetDateTime)> {
        if let Ok(t) = OffsetDateTime::parse(v, &Rfc3339) {
            return Some((t, t));
        }
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let day = time::Date::parse(v, format).ok()?.midnight().assume_utc();
        Some((
            day,
            day + time::Duration::days(1) - time::Duration::nanoseconds(1),
        ))
    };
    let text = text.trim();
    let (low, high): (Bound<OffsetDateTime>, Bound<OffsetDateTime>) =
        if let Some((a, b)) = text.split_once("..") {
            let low = match a {
                "*" => Unbounded,
                a => Included(span(a)?.0),
            };
            let high = match b {
                "*" => Unbounded,
                b => Included(span(b)?.1),
            };
            (low, high)
        } else if let Some(v) = text.strip_prefix(">=") {
            (Included(span(v)?.0), Unbounded)
        } else if let Some(v) = text.strip_prefix("<=") {
            (Unbounded, Included(span(v)?.1))
        } else if let Some(v) = text.strip_prefix('>') {
            (Excluded(span(v)?.1), Unbounded)
        } else if let Some(v) = text.strip_prefix('<') {
            (Unbounded, Excluded(span(v)?.0))
        } else {
            let (a, b) = span(text)?;
            (Included(a), Included(b))
        };
    Some(move |t: OffsetDateTime| {
        let above = match low {
            Included(l) => t >= l,
            Excluded(l) => t > l,
            Unbounded => true,
        };
        let below = match high {
            Included(h) => t <= h,
            Excluded(h) => t < h,
            Unbounded => true,
        };
        above && below
    })
}

const RUN_STATUSES: &[&str] = &[
    "requested",
    "in_progress",
    "completed",
    "queued",
    "pending",
    "waiting",
];

fn runs_page(
    sim: &GithubSim,
    base: &str,
    uri: &Uri,
    query: &RunsQuery,
    workflow: Option<u64>,
) -> Response {
    let created = match query.created.as_deref().map(created_range) {
        None => None,
        Some(Some(range)) => Some(range),
        Some(None) => {
            return unprocessable(
                "Invalid value for `created`",
                vec![json!({ "field": "created", "code": "invalid" })],
            );
        }
    };
    let world = sim.world();
    let at = super::now();
    let runs: Vec<(&Run, AttemptView)> = world
        .actions
        .runs
        .iter()
        .rev()
        .filter(|r| workflow.is_none_or(|w| r.workflow_id == w))
        .filter(|r| query.branch.as_deref().is_none_or(|b| r.branch == b))
        .filter(|r| query.event.as_deref().is_none_or(|e| r.event == e))
        .filter(|r| query.head_sha.as_deref().is_none_or(|s| r.head_sha == s))
        .filter(|r| query.actor.as_deref().is_none_or(|a| r.actor.login == a))
        .filter(|r| created.as_ref().is_none_or(|c| c(r.created_at)))
        .filter_map(|r| world.actions.view_of(r, None, at).map(|v| (r, v)))
        .filter(|(_, v)| {
            query.status.as_deref().is_none_or(|s| {
                if RUN_STATUSES.contains(&s) {
                    v.status == s
                } else {
                    v.conclusion == Some(s)
                }
            })
        })
        .collect();
    let total = runs.len();
    let (page, link) = paginate(runs, &query.page, base, uri);
    let items: Vec<Value> = page
        .iter()
        .map(|(r, v)| sim.run_json(&world, base, r, r.attempts.last().expect("an attempt"), v))
        .collect();
    with_link(
        StatusCode::OK,
        json!({ "total_count": total, "workflow_runs": items }),
        link,
    )
}

async fn list_runs(
    State(sim): State<GithubSim>,
    Base(base): Base,
    uri: Uri,
    Query(query): Query<RunsQuery>,
) -> Response {
    runs_page(&sim, &base, &uri, &query, None)
}

async fn list_workflow_runs(
    State(sim): State<GithubSim>,
    Base(base): Base,
    uri: Uri,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<RunsQuery>,
) -> Response {
    let key = params.get("workflow_id").cloned().unwrap_or_default();
    let Some(id) = sim.world().actions.workflow_by_key(&key).map(|w| w.id) else {
        return not_found();
    };
    runs_page(&sim, &base, &uri, &query, Some(id))
}

async fn get_run(
    State(sim): State<GithubSim>,
    Base(base): Base,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let world = sim.world();
    match number(&params, "run_id").and_then(|id| world.actions.run(id)) {
        Some(run) => Json(sim.latest_run_json(&world, &base, run, super::now())).into_response(),
        None => not_found(),
    }
}

async fn get_attempt(
    State(sim): State<GithubSim>,
    Base(base): Base,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let world = sim.world();
    let Some(run) = number(&params, "run_id").and_then(|id| world.actions.run(id)) else {
        return not_found();
    };
    let Some(attempt) = number(&params, "attempt")
        .and_then(|n| run.attempts.iter().find(|a| u64::from(a.number) == n))
    else {
        return not_found();
    };
    let view = view(attempt, world.actions.timing, super::now());
    Json(sim.run_json(&world, &base, run, attempt, &view)).into_response()
}

#[derive(Debug, Deserialize)]
struct JobsQuery {
    filter: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

fn jobs_page(
    sim: &GithubSim,
    base: &str,
    uri: &Uri,
    run: &Run,
    jobs: Vec<JobView>,
    page: &PageQuery,
) -> Response {
    let total = jobs.len();
    let (jobs, link) = paginate(jobs, page, base, uri);
    let items: Vec<Value> = jobs.iter().map(|j| sim.job_json(base, run, j)).collect();
    with_link(
        StatusCode::OK,
        json!({ "total_count": total, "jobs": items }),
        link,
    )
}

async fn list_jobs(
    State(sim): State<GithubSim>,
    Base(base): Base,
    uri: Uri,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<JobsQuery>,
) -> Response {
    let world = sim.world();
    let Some(run) = number(&params, "run_id").and_then(|id| world.actions.run(id)) else {
        return not_found();
    };
    let at = super::now();
    let jobs = match query.filter.as_deref().unwrap_or("latest") {
        "latest" => world
            .actions
            .view_of(run, None, at)
            .map(|v| v.jobs)
            .unwrap_or_default(),
        "all" => {
            let mut jobs = Vec::new();
            for attempt in &run.attempts {
                let view = view(attempt, world.actions.timing, at);
                jobs.extend(
                    view.jobs
                        .into_iter()
                        .filter(|j| j.run_attempt == attempt.number),
                );
            }
            jobs
        }
        _ => {
            return unprocessable(
                "Validation Failed",
                vec![json!({ "resource": "Job", "field": "filter", "code": "invalid" })],
            );
        }
    };
    jobs_page(&sim, &base, &uri, run, jobs, &query.page)
}

async fn list_attempt_jobs(
    State(sim): State<GithubSim>,
    Base(base): Base,
    uri: Uri,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<JobsQuery>,
) -> Response {
    let world = sim.world();
    let Some(run) = number(&params, "run_id").and_then(|id| world.actions.run(id)) else {
        return not_found();
    };
    let Some(n) = number(&params, "attempt").and_then(|n| u32::try_from(n).ok()) else {
        return not_found();
    };
    let Some(view) = world.actions.view_of(run, Some(n), super::now()) else {
        return not_found();
    };
    jobs_page(&sim, &base, &uri, run, view.jobs, &query.page)
}

async fn get_job(
    State(sim): State<GithubSim>,
    Base(base): Base,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let Some(job_id) = number(&params, "job_id") else {
        return not_found();
    };
    let world = sim.world();
    let at = super::now();
    for run in &world.actions.runs {
        for attempt in &run.attempts {
            let owns = attempt
                .jobs
                .iter()
                .any(|j| matches!(j, PlannedJob::Run { id, .. } if *id == job_id));
            if !owns {
                continue;
            }
            let view = view(attempt, world.actions.timing, at);
            if let Some(job) = view.jobs.iter().find(|j| j.id == job_id) {
                return Json(sim.job_json(&base, run, job)).into_response();
            }
        }
    }
    not_found()
}

fn run_id_of(params: &HashMap<String, String>) -> u64 {
    number(params, "run_id").unwrap_or(0)
}

async fn rerun(
    State(sim): State<GithubSim>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let actor = sim.config().user.clone();
    let result = sim
        .world()
        .actions
        .rerun(run_id_of(&params), false, actor, super::now());
    match result {
        Ok(()) => {
            sim.count(|c| c.reruns += 1);
            (StatusCode::CREATED, Json(json!({}))).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn rerun_failed(
    State(sim): State<GithubSim>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let actor = sim.config().user.clone();
    let result = sim
        .world()
        .actions
        .rerun(run_id_of(&params), true, actor, super::now());
    match result {
        Ok(()) => {
            sim.count(|c| c.reruns_failed += 1);
            (StatusCode::CREATED, Json(json!({}))).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn cancel(
    State(sim): State<GithubSim>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let at = super::now();
    let mut world = sim.world();
    let timing = world.actions.timing;
    let id = run_id_of(&params);
    let Some(attempt) = world
        .actions
        .runs
        .iter_mut()
        .find(|r| r.id == id)
        .and_then(|r| r.attempts.last_mut())
    else {
        return not_found();
    };
    if view(attempt, timing, at).phase == 2 {
        return error(
            StatusCode::CONFLICT,
            "Cannot cancel a workflow run that is completed.",
        );
    }
    attempt.cancelled_at = Some(at);
    drop(world);
    sim.count(|c| c.cancels += 1);
    (StatusCode::ACCEPTED, Json(json!({}))).into_response()
}

async fn list_workflows(
    State(sim): State<GithubSim>,
    Base(base): Base,
    uri: Uri,
    Query(page): Query<PageQuery>,
) -> Response {
    let world = sim.world();
    let all: Vec<&Workflow> = world.actions.workflows.iter().collect();
    let total = all.len();
    let (items, link) = paginate(all, &page, &base, &uri);
    let items: Vec<Value> = items
        .into_iter()
        .map(|w| sim.workflow_json(&base, w))
        .collect();
    with_link(
        StatusCode::OK,
        json!({ "total_count": total, "workflows": items }),
        link,
    )
}

async fn get_workflow(
    State(sim): State<GithubSim>,
    Base(base): Base,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let key = params.get("workflow_id").cloned().unwrap_or_default();
    let world = sim.world();
    match world.actions.workflow_by_key(&key) {
        Some(w) => Json(sim.workflow_json(&base, w)).into_response(),
        None => not_found(),
    }
}

#[derive(Debug, Deserialize)]
struct DispatchBody {
    #[serde(rename = "ref")]
    name: Option<String>,
    inputs: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    return_run_details: bool,
}

/// GitHub's cap on `workflow_dispatch` inputs.
const MAX_INPUTS: usize = 25;

async fn dispatch(
    State(sim): State<GithubSim>,
    Base(base): Base,
    Path(params): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let body: DispatchBody = match parse_body(&body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let Some(name) = body.name else {
        return unprocessable("Invalid request.\n\n\"ref\" wasn't supplied.", Vec::new());
    };
    let inputs = body.inputs.unwrap_or_default();
    if inputs.len() > MAX_INPUTS {
        return unprocessable(
            &format!(
                "you may only define up to {MAX_INPUTS} `inputs` for a `workflow_dispatch` event"
            ),
            Vec::new(),
        );
    }
    let key = params.get("workflow_id").cloned().unwrap_or_default();
    let mut world = sim.world();
    let Some(file) = world
        .actions
        .workflow_by_key(&key)
        .map(|w| w.seed.file.clone())
    else {
        return not_found();
    };
    let branch = name.strip_prefix("refs/heads/").unwrap_or(&name).to_owned();
    let head = world.git.branch_head(&branch).or_else(|| {
        world
            .git
            .refs
            .get(&format!(
                "refs/tags/{}",
                name.trim_start_matches("refs/tags/")
            ))
            .cloned()
    });
    let Some(head_sha) = head else {
        return unprocessable(&format!("No ref found for: {name}"), Vec::new());
    };
    let inputs: BTreeMap<String, String> = inputs
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, text)
        })
        .collect();
    let workflow_name = world
        .actions
        .workflow_by_key(&file)
        .map(|w| w.seed.name.clone())
        .unwrap_or_default();
    let created = world.actions.create_run(NewRun {
        workflow_file: &file,
        branch: &branch,
        head_sha: &head_sha,
        event: "workflow_dispatch",
        created_at: super::now(),
        outcome: None,
        actor: sim.config().user.clone(),
        inputs,
        dispatched: true,
        title: workflow_name,
    });
    let id = match created {
        Ok(id) => id,
        Err(e) => return unprocessable(&e.to_string(), Vec::new()),
    };
    drop(world);
    sim.count(|c| c.dispatches += 1);
    if body.return_run_details {
        let api = sim.actions_api(&base);
        Json(json!({
            "workflow_run_id": id,
            "run_url": format!("{api}/runs/{id}"),
            "html_url": format!("{}/actions/runs/{id}", sim.html()),
        }))
        .into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::created_range;
    use time::macros::datetime;

    #[test]
    fn the_created_qualifier_takes_githubs_date_syntax() {
        let admits = |q: &str, t| created_range(q).expect(q)(t);
        let range = "2026-01-01T10:00:00Z..2026-01-31";
        assert!(
            admits(range, datetime!(2026-01-01 10:00 UTC)),
            "both ends included"
        );
        assert!(
            admits(range, datetime!(2026-01-31 23:59:59 UTC)),
            "a date is its whole day"
        );
        assert!(!admits(range, datetime!(2026-01-01 09:59:59 UTC)));
        assert!(!admits(range, datetime!(2026-02-01 00:00 UTC)));
        assert!(admits("2026-01-01..*", datetime!(2030-01-01 00:00 UTC)));
        assert!(admits(">=2026-01-01", datetime!(2026-01-01 00:00 UTC)));
        assert!(!admits(">2026-01-01", datetime!(2026-01-01 23:00 UTC)));
        assert!(admits("<2026-01-01", datetime!(2025-12-31 23:59:59 UTC)));
        assert!(!admits("<2026-01-01", datetime!(2026-01-01 00:00 UTC)));
        assert!(admits("<=2026-01-01", datetime!(2026-01-01 23:00 UTC)));
        assert!(admits("2026-01-01", datetime!(2026-01-01 12:00 UTC)));
        assert!(!admits("2026-01-01", datetime!(2026-01-02 00:00 UTC)));
        for bad in ["yesterday", "2026-13-01", "2026-01-01...2026-02-01", ""] {
            assert!(created_range(bad).is_none(), "{bad:?}");
        }
    }
}
