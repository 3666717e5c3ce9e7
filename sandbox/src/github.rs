//! A simulated GitHub: the parts of the REST API that Flightdeck uses for
//! one repository, shaped as in `shared/contracts/github-subset.json`, over
//! real HTTP, plus signed webhook deliveries (`push`, `workflow_run`).
//!
//! The repository is a small content-addressed store (blobs, flat trees,
//! commits, refs) whose ids are derived from content without timestamps, so
//! a seeded history has the same shas on every start. Actions runs are
//! schedules: their status, jobs and steps are computed from the clock, so a
//! run moves queued → in_progress → completed by itself. Every request first
//! advances the world to "now", and [`GithubSim::spawn`] also starts a ticker
//! so webhooks and the run-completion hook fire when nobody polls.
//!
//! Every reply carries GitHub's rate-limit headers; every `GET` carries an
//! `ETag`, and a matching `If-None-Match` gets an empty 304 that, as on
//! GitHub, does not count against the limit.

mod actions;
mod git;
mod shapes;
mod webhooks;

use super::faults::Faults;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// How long the phases of a simulated Actions run take.
#[derive(Debug, Clone, Copy)]
pub struct ActionsTiming {
    /// From creation (or re-run) until the first job starts.
    pub queue: Duration,
    /// Each step of each job.
    pub step: Duration,
}

impl Default for ActionsTiming {
    fn default() -> Self {
        Self {
            queue: Duration::from_secs(2),
            step: Duration::from_secs(1),
        }
    }
}

/// Where webhook deliveries go, and the secret that signs them.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    pub url: String,
    pub secret: String,
}

/// A git identity that is also a GitHub account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub email: String,
    pub login: String,
}

/// Everything the simulator needs to start.
#[derive(Debug, Clone)]
pub struct GithubSimConfig {
    /// The one token accepted (`Authorization: Bearer …` or `token …`).
    pub token: String,
    /// The account the token belongs to (`GET /user`, the actor of dispatches).
    pub user: Person,
    pub owner: String,
    pub repo: String,
    /// The branch `GET /repos/{owner}/{repo}` names as default.
    pub default_branch: String,
    pub timing: ActionsTiming,
    pub webhook: Option<WebhookTarget>,
    /// The API root used in `url` fields; when `None`, taken from each
    /// request's `Host` header (and from the listener for webhooks).
    pub base_url: Option<String>,
}

impl GithubSimConfig {
    /// A configuration with default timing, no webhook and `main` as default branch.
    pub fn new(token: &str, owner: &str, repo: &str) -> Self {
        Self {
            token: token.to_owned(),
            user: Person {
                name: "Flightdeck Bot".into(),
                email: "flightdeck-bot@users.noreply.github.com".into(),
                login: "flightdeck-bot".into(),
            },
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            default_branch: "main".into(),
            timing: ActionsTiming::default(),
            webhook: None,
            base_url: None,
        }
    }
}

/// One commit of a seeded history: the *full* tree after it (path → text).
#[derive(Debug, Clone)]
pub struct CommitSeed {
    pub message: String,
    pub author: Person,
    pub at: OffsetDateTime,
    pub files: BTreeMap<String, String>,
}

/// A workflow file and its jobs, run one after the other.
#[derive(Debug, Clone)]
pub struct WorkflowSeed {
    /// The file name under `.github/workflows/`, e.g. `ci.yml`.
    pub file: String,
    pub name: String,
    pub jobs: Vec<JobSeed>,
    /// Branches whose pushes through the API (ref updates) start a `push` run.
    pub push_branches: Vec<String>,
}

/// One job of a workflow and its step names, in order.
#[derive(Debug, Clone)]
pub struct JobSeed {
    pub name: String,
    pub steps: Vec<String>,
}

/// How a run ends when nobody cancels it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The named step of the named job fails; the job's later steps and
    /// the later jobs are skipped, as GitHub does for dependent jobs.
    FailAt {
        job: String,
        step: String,
    },
}

/// A run that already happened (or is happening) when seeded.
#[derive(Debug, Clone)]
pub struct RunSeed {
    pub workflow_file: String,
    pub branch: String,
    pub head_sha: String,
    /// `push`, `workflow_dispatch`, `pull_request`, …
    pub event: String,
    pub created_at: OffsetDateTime,
    pub outcome: Outcome,
}

/// Why a seeding call was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SeedError {
    #[error("no workflow file {0}")]
    UnknownWorkflow(String),
    #[error("no commit {0}")]
    UnknownCommit(String),
    #[error("workflow {workflow} has no job {job} with a step {step}")]
    UnknownStep {
        workflow: String,
        job: String,
        step: String,
    },
    #[error("branch {0} already exists")]
    BranchExists(String),
}

/// What the run-completion hook is told about a dispatched run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedRun {
    /// The workflow's file name, e.g. `db-rollback.yml`.
    pub workflow_file: String,
    pub inputs: BTreeMap<String, String>,
    pub head_sha: String,
    pub head_branch: String,
    pub run_id: u64,
    pub run_attempt: u32,
}

/// Awaited just before a dispatched run would complete successfully;
/// `Err(message)` makes the run conclude `failure` instead.
pub type RunCompletedHook = Arc<
    dyn Fn(CompletedRun) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync,
>;

/// Wraps an async closure as a [`RunCompletedHook`].
pub fn run_completed_hook<F, Fut>(hook: F) -> RunCompletedHook
where
    F: Fn(CompletedRun) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(move |run| Box::pin(hook(run)))
}

/// Counts of the calls that change something, for tests that must prove a
/// call was made exactly once (or never).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallCounts {
    pub dispatches: u32,
    pub reruns: u32,
    pub reruns_failed: u32,
    pub cancels: u32,
    pub refs_created: u32,
    pub ref_updates: u32,
    pub commits_created: u32,
    pub trees_created: u32,
    pub pulls_created: u32,
}

/// The simulator: build it, seed it, then [`GithubSim::spawn`] it (or
/// serve [`GithubSim::router`] yourself).
#[derive(Clone)]
pub struct GithubSim {
    inner: Arc<Inner>,
}

struct Inner {
    config: GithubSimConfig,
    world: Mutex<World>,
    calls: Mutex<CallCounts>,
    hook: Mutex<Option<RunCompletedHook>>,
    rate: Mutex<RateWindow>,
    /// Webhook deliveries, in order; drained by the task `spawn` starts.
    deliveries: mpsc::UnboundedSender<webhooks::Delivery>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<webhooks::Delivery>>>,
    /// Deliveries are only queued once the simulator serves: seeding a
    /// history before that is not news to anyone.
    started: AtomicBool,
    /// The listener's address, for `url` fields of webhook payloads.
    spawned_base: Mutex<Option<String>>,
    faults: Faults,
    /// Where deliveries go; starts as the config's, can be changed.
    webhook: Mutex<Option<WebhookTarget>>,
}

/// The repository and its Actions.
struct World {
    git: git::Store,
    actions: actions::Actions,
    pulls: Vec<git::Pull>,
    created_at: OffsetDateTime,
    /// Events to deliver, collected while the lock is held.
    outbox: Vec<webhooks::Event>,
}

const RATE_LIMIT: u32 = 5000;

#[derive(Debug)]
struct RateWindow {
    reset: OffsetDateTime,
    used: u32,
}

impl GithubSim {
    /// An empty repository (no commits, no workflows).
    pub fn new(config: GithubSimConfig) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let timing = config.timing;
        Self {
            inner: Arc::new(Inner {
                world: Mutex::new(World {
                    git: git::Store::default(),
                    actions: actions::Actions::new(timing),
                    pulls: Vec::new(),
                    created_at: now() - time::Duration::days(400),
                    outbox: Vec::new(),
                }),
                calls: Mutex::new(CallCounts::default()),
                hook: Mutex::new(None),
                rate: Mutex::new(RateWindow {
                    reset: now() + time::Duration::hours(1),
                    used: 0,
                }),
                deliveries: tx,
                receiver: Mutex::new(Some(rx)),
                started: AtomicBool::new(false),
                spawned_base: Mutex::new(None),
                faults: Faults::new(),
                webhook: Mutex::new(config.webhook.clone()),
                config,
            }),
        }
    }

    fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.inner.world)
    }

    fn config(&self) -> &GithubSimConfig {
        &self.inner.config
    }

    /// Commits `seed` on top of `branch` (creating the branch, as a root
    /// commit, when it does not exist yet) and returns its sha.
    pub fn seed_commit(&self, branch: &str, seed: CommitSeed) -> String {
        let mut world = self.world();
        let parent = world.git.branch_head(branch);
        let tree = world.git.insert_files(&seed.files);
        let signature = git::Signature {
            name: seed.author.name.clone(),
            email: seed.author.email.clone(),
            date: seed.at,
        };
        let sha = world.git.insert_commit(git::CommitObj {
            sha: String::new(),
            tree,
            parents: parent.iter().cloned().collect(),
            message: seed.message,
            author: signature.clone(),
            committer: signature,
            login: Some(seed.author.login),
        });
        let name = format!("refs/heads/{branch}");
        world.git.refs.insert(name.clone(), sha.clone());
        if self.inner.started.load(Ordering::SeqCst) {
            let pusher = self.config().user.clone();
            world.outbox.push(webhooks::Event::Push {
                ref_name: name,
                before: parent,
                after: sha.clone(),
                forced: false,
                pusher,
            });
        }
        sha
    }

    /// Creates `refs/heads/{name}` at `sha`.
    pub fn create_branch(&self, name: &str, sha: &str) -> Result<(), SeedError> {
        let mut world = self.world();
        if !world.git.commits.contains_key(sha) {
            return Err(SeedError::UnknownCommit(sha.to_owned()));
        }
        let full = format!("refs/heads/{name}");
        if world.git.refs.contains_key(&full) {
            return Err(SeedError::BranchExists(name.to_owned()));
        }
        world.git.refs.insert(full, sha.to_owned());
        Ok(())
    }

    /// The sha `branch` points at.
    pub fn branch_head(&self, branch: &str) -> Option<String> {
        self.world().git.branch_head(branch)
    }

    /// Adds a workflow and returns its id.
    pub fn add_workflow(&self, seed: WorkflowSeed) -> u64 {
        let mut world = self.world();
        let at = world.created_at + time::Duration::days(1);
        world.actions.add_workflow(seed, at)
    }

    /// Records a run that started at `seed.created_at`; one in the past is
    /// already completed (or as far along as its schedule says).
    pub fn seed_run(&self, seed: RunSeed) -> Result<u64, SeedError> {
        let mut world = self.world();
        let World { git, actions, .. } = &mut *world;
        let commit = git
            .commits
            .get(&seed.head_sha)
            .ok_or_else(|| SeedError::UnknownCommit(seed.head_sha.clone()))?
            .clone();
        let actor = commit
            .login
            .as_ref()
            .map(|login| Person {
                name: commit.author.name.clone(),
                email: commit.author.email.clone(),
                login: login.clone(),
            })
            .unwrap_or_else(|| self.config().user.clone());
        let id = actions.create_run(actions::NewRun {
            workflow_file: &seed.workflow_file,
            branch: &seed.branch,
            head_sha: &seed.head_sha,
            event: &seed.event,
            created_at: seed.created_at,
            outcome: Some(seed.outcome),
            actor,
            inputs: BTreeMap::new(),
            dispatched: false,
            title: commit.message.lines().next().unwrap_or_default().to_owned(),
        })?;
        // What happened before now is history, not news.
        actions.mark_notified(id, now());
        Ok(id)
    }

    /// Runs started from now on for `head_sha` (dispatches, pushes, re-runs)
    /// end with `outcome`; without a policy they succeed.
    pub fn set_outcome_for(&self, head_sha: &str, outcome: Outcome) {
        self.world()
            .actions
            .outcomes
            .insert(head_sha.to_owned(), outcome);
    }

    /// Sets the hook awaited before a dispatched run completes successfully.
    pub fn on_run_completed(&self, hook: RunCompletedHook) {
        *lock(&self.inner.hook) = Some(hook);
    }

    /// The mutating calls received so far.
    pub fn calls(&self) -> CallCounts {
        lock(&self.inner.calls).clone()
    }

    fn count(&self, f: impl FnOnce(&mut CallCounts)) {
        f(&mut lock(&self.inner.calls));
    }

    /// The `push` payload GitHub would send for moving `ref_name`
    /// (e.g. `refs/heads/main`) from `before` to `after`, without sending it.
    pub fn push_payload(&self, ref_name: &str, before: Option<&str>, after: &str) -> Value {
        let base = self.webhook_base();
        let world = self.world();
        webhooks::push_payload(
            self,
            &world,
            &base,
            ref_name,
            before,
            after,
            false,
            &self.config().user,
        )
    }

    /// The `workflow_run` payload (`requested`, `in_progress` or
    /// `completed`) for the run as it is now, without sending it.
    pub fn workflow_run_payload(&self, run_id: u64, action: &str) -> Option<Value> {
        let base = self.webhook_base();
        let world = self.world();
        webhooks::workflow_run_payload(self, &world, &base, run_id, None, action, now())
    }

    fn webhook_base(&self) -> String {
        self.config()
            .base_url
            .clone()
            .or_else(|| lock(&self.inner.spawned_base).clone())
            .unwrap_or_else(|| "http://127.0.0.1".into())
    }

    /// Moves the world to now: starts the completion hooks that are due and
    /// queues the webhook deliveries of what changed.
    fn advance(&self) {
        let at = now();
        let (due, events) = {
            let mut world = self.world();
            let due = world.actions.advance(at);
            let mut events = std::mem::take(&mut world.outbox);
            events.extend(world.actions.take_events());
            (due, events)
        };
        for run in due {
            self.start_hook(run);
        }
        if events.is_empty() || !self.inner.started.load(Ordering::SeqCst) {
            return;
        }
        let Some(target) = lock(&self.inner.webhook).clone() else {
            return;
        };
        let base = self.webhook_base();
        let world = self.world();
        for event in events {
            if let Some(delivery) = webhooks::render_event(self, &world, &base, &target, event)
                && self.inner.deliveries.send(delivery).is_err()
            {
                tracing::warn!("the webhook delivery task has stopped");
            }
        }
    }

    /// Calls the completion hook (once per attempt: the world marked it
    /// running before handing it out) and records its answer.
    fn start_hook(&self, due: actions::DueHook) {
        let hook = lock(&self.inner.hook).clone();
        let sim = self.clone();
        tokio::spawn(async move {
            let result = match hook {
                Some(hook) => hook(due.run.clone()).await,
                None => Ok(()),
            };
            if let Err(message) = &result {
                tracing::info!(run_id = due.run.run_id, %message, "the run-completion hook failed the run");
            }
            sim.world()
                .actions
                .hook_done(due.run.run_id, due.run.run_attempt, result, now());
            sim.advance();
        });
    }

    /// Sends later webhook deliveries to `target` (None: none).
    pub fn set_webhook(&self, target: Option<WebhookTarget>) {
        *lock(&self.inner.webhook) = target;
    }

    /// The faults applied to every route of [`GithubSim::router`] (a shared
    /// handle: set them from a test, or over HTTP at `/_sandbox/faults`).
    pub fn faults(&self) -> Faults {
        self.inner.faults.clone()
    }

    /// The HTTP API, rooted where `https://api.github.com` is, subject to
    /// [`GithubSim::faults`].
    pub fn router(&self) -> Router {
        let repo = Router::new()
            .merge(actions::routes())
            .merge(git::routes())
            .route("/rate_limit", axum::routing::get(rate_limit))
            .route("/user", axum::routing::get(get_user))
            .fallback(|| async { not_found() });
        let api = repo
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                around_every_request,
            ))
            .with_state(self.clone());
        // Beside the faults: tests read the counts whatever faults are set.
        let sim = self.clone();
        self.inner.faults.wrap(api).route(
            "/_sandbox/calls",
            axum::routing::get(move || {
                let sim = sim.clone();
                async move { axum::Json(sim.calls()) }
            }),
        )
    }

    /// Serves the API on `listener` and starts the ticker and the webhook
    /// delivery task; the handle ends when the server stops.
    pub fn spawn(&self, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
        if let Ok(addr) = listener.local_addr() {
            *lock(&self.inner.spawned_base) = Some(format!("http://{addr}"));
        }
        self.inner.started.store(true, Ordering::SeqCst);
        if let Some(rx) = lock(&self.inner.receiver).take() {
            tokio::spawn(webhooks::deliver_all(rx));
        }
        // The ticker holds the simulator weakly: dropping it ends the ticks.
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(100));
            loop {
                interval.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                GithubSim { inner }.advance();
            }
        });
        let router = self.router();
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "the simulated GitHub stopped");
            }
        })
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .or_else(|| value.strip_prefix("token "));
        token.is_some_and(|t| constant_time_eq(t.as_bytes(), self.config().token.as_bytes()))
    }

    /// Takes one request off the budget, or none (a 304); returns the headers' values.
    fn rate(&self, counts: bool) -> (u32, u32, i64) {
        let mut rate = lock(&self.inner.rate);
        let at = now();
        if at >= rate.reset {
            rate.reset = at + time::Duration::hours(1);
            rate.used = 0;
        }
        if counts {
            rate.used = (rate.used + 1).min(RATE_LIMIT);
        }
        (
            rate.used,
            RATE_LIMIT - rate.used,
            rate.reset.unix_timestamp(),
        )
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// GitHub's timestamps: UTC, whole seconds, `Z`.
fn iso(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn parse_iso(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

fn sha256_hex(bytes: &[u8]) -> String {
    crate::support::hex(&<sha2::Sha256 as sha2::Digest>::digest(bytes))
}

/// Auth, "advance to now", ETag / 304 and the rate-limit headers, for every route.
async fn around_every_request(
    State(sim): State<GithubSim>,
    request: Request,
    next: Next,
) -> Response {
    if !sim.authorized(request.headers()) {
        let mut response = error(StatusCode::UNAUTHORIZED, "Bad credentials");
        sim.add_rate_headers(response.headers_mut(), true);
        return response;
    }
    if let Some(response) = wrong_repository(&sim, request.uri()) {
        return response;
    }
    sim.advance();
    let is_get = request.method() == Method::GET;
    let if_none_match = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let counts = request.uri().path() != "/rate_limit";
    let response = next.run(request).await;
    if !(is_get && response.status() == StatusCode::OK) {
        let mut response = response;
        sim.add_rate_headers(response.headers_mut(), counts);
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "Server Error");
    };
    let etag = format!("\"{}\"", sha256_hex(&bytes));
    let matches = if_none_match.is_some_and(|v| {
        v.split(',')
            .any(|tag| tag.trim().trim_start_matches("W/") == etag)
    });
    let mut response = if matches {
        let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
        for name in [header::LINK, header::CACHE_CONTROL] {
            if let Some(value) = parts.headers.get(&name) {
                not_modified.headers_mut().insert(name, value.clone());
            }
        }
        not_modified
    } else {
        parts.headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=60, s-maxage=60"),
        );
        Response::from_parts(parts, Body::from(bytes))
    };
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    sim.add_rate_headers(response.headers_mut(), counts && !matches);
    response
}

impl GithubSim {
    fn add_rate_headers(&self, headers: &mut HeaderMap, counts: bool) {
        let (used, remaining, reset) = self.rate(counts);
        for (name, value) in [
            ("x-ratelimit-limit", RATE_LIMIT.to_string()),
            ("x-ratelimit-remaining", remaining.to_string()),
            ("x-ratelimit-reset", reset.to_string()),
            ("x-ratelimit-used", used.to_string()),
            ("x-ratelimit-resource", "core".to_owned()),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        headers.insert(
            "x-github-api-version-selected",
            HeaderValue::from_static("2022-11-28"),
        );
    }
}

/// `/repos/{owner}/{repo}/…` for any other repository is a 404, as for a
/// private repository the token cannot see.
fn wrong_repository(sim: &GithubSim, uri: &Uri) -> Option<Response> {
    let mut segments = uri.path().trim_start_matches('/').split('/');
    if segments.next() != Some("repos") {
        return None;
    }
    let owner = segments.next().unwrap_or_default();
    let repo = segments.next().unwrap_or_default();
    let config = sim.config();
    if owner.eq_ignore_ascii_case(&config.owner) && repo.eq_ignore_ascii_case(&config.repo) {
        None
    } else {
        Some(not_found())
    }
}

/// The API root for `url` fields: the configured one, or this request's host.
struct Base(String);

impl FromRequestParts<GithubSim> for Base {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        sim: &GithubSim,
    ) -> Result<Self, Self::Rejection> {
        if let Some(base) = &sim.config().base_url {
            return Ok(Base(base.trim_end_matches('/').to_owned()));
        }
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("127.0.0.1");
        Ok(Base(format!("http://{host}")))
    }
}

const DOCS: &str = "https://docs.github.com/rest";

/// GitHub's error body.
fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({
            "message": message,
            "documentation_url": DOCS,
            "status": status.as_u16().to_string(),
        })),
    )
        .into_response()
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found")
}

/// GitHub's 422 body, with field errors when there are any.
fn unprocessable(message: &str, errors: Vec<Value>) -> Response {
    let mut body = json!({
        "message": message,
        "documentation_url": DOCS,
        "status": "422",
    });
    if !errors.is_empty() {
        body["errors"] = Value::Array(errors);
    }
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

/// An error reply, built when it is returned (a `Response` is too big to
/// carry around in a `Result`).
#[derive(Debug)]
enum ApiError {
    Status(StatusCode, String),
    Unprocessable(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Status(status, message) => error(status, &message),
            ApiError::Unprocessable(message) => unprocessable(&message, Vec::new()),
        }
    }
}

/// Parses a JSON body the way GitHub answers bad ones.
fn parse_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| {
        if e.is_data() {
            ApiError::Unprocessable(format!("Invalid request.\n\n{e}"))
        } else {
            ApiError::Status(StatusCode::BAD_REQUEST, "Problems parsing JSON".into())
        }
    })
}

/// `per_page` (default 30, at most 100) and `page` (from 1).
#[derive(Debug, Deserialize, Default)]
struct PageQuery {
    per_page: Option<String>,
    page: Option<String>,
}

/// One page of `items`, and GitHub's `Link` header for the others.
fn paginate<T>(items: Vec<T>, page: &PageQuery, base: &str, uri: &Uri) -> (Vec<T>, Option<String>) {
    let per_page = page
        .per_page
        .as_deref()
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let current = page
        .page
        .as_deref()
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let last = items.len().div_ceil(per_page).max(1);
    let start = (current - 1).saturating_mul(per_page);
    let total = items.len();
    let slice: Vec<T> = items.into_iter().skip(start).take(per_page).collect();
    let link_to = |n: usize| {
        let mut pairs: Vec<(String, String)> = uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .filter(|(k, _)| k != "page")
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        pairs.push(("page".into(), n.to_string()));
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        format!("<{base}{}?{query}>", uri.path())
    };
    let mut links = Vec::new();
    if current > 1 {
        links.push(format!(
            "{}; rel=\"prev\"",
            link_to((current - 1).min(last))
        ));
    }
    if current < last && total > 0 {
        links.push(format!("{}; rel=\"next\"", link_to(current + 1)));
        links.push(format!("{}; rel=\"last\"", link_to(last)));
    }
    if current > 1 {
        links.push(format!("{}; rel=\"first\"", link_to(1)));
    }
    let link = (!links.is_empty()).then(|| links.join(", "));
    (slice, link)
}

/// A JSON reply with an optional `Link` header.
fn with_link(status: StatusCode, body: Value, link: Option<String>) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Some(link) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

async fn rate_limit(State(sim): State<GithubSim>) -> Response {
    let (used, remaining, reset) = sim.rate(false);
    let core = json!({ "limit": RATE_LIMIT, "used": used, "remaining": remaining, "reset": reset });
    let other =
        |limit: u32| json!({ "limit": limit, "used": 0, "remaining": limit, "reset": reset });
    Json(json!({
        "resources": {
            "core": core,
            "search": other(30),
            "graphql": other(5000),
            "integration_manifest": other(5000),
            "code_search": other(10),
        },
        "rate": core,
    }))
    .into_response()
}

async fn get_user(State(sim): State<GithubSim>, Base(base): Base) -> Response {
    let world = sim.world();
    let user = &sim.config().user;
    let mut body = shapes::simple_user(&base, &user.login);
    let created = iso(world.created_at);
    let extra = json!({
        "name": user.name,
        "company": null,
        "blog": "",
        "location": null,
        "email": user.email,
        "hireable": null,
        "bio": null,
        "twitter_username": null,
        "public_repos": 1,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "created_at": created,
        "updated_at": created,
        "private_gists": 0,
        "total_private_repos": 0,
        "owned_private_repos": 0,
        "disk_usage": 1024,
        "collaborators": 0,
        "two_factor_authentication": true,
        "plan": { "name": "free", "space": 976562499, "private_repos": 10000, "collaborators": 0 },
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    Json(body).into_response()
}

#[cfg(test)]
mod tests;
