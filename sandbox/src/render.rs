//! A simulated Render: the parts of its public API that Flightdeck uses,
//! shaped as in `shared/contracts/render-subset.json`, over real HTTP.
//!
//! Time drives the deploys: every read first advances the world to "now",
//! so a deploy moves created → build_in_progress → update_in_progress → live
//! by itself, and the deploy that was live becomes deactivated.
//!
//! Each step is recorded as a Render event (`deploy_started`,
//! `build_started`, `build_ended`, `deploy_ended`), listed by
//! `GET /v1/services/{serviceId}/events` and fetched by `GET /v1/events/{eventId}`.
//! With a webhook target set ([`RenderSim::set_webhook`]), the deploy and
//! build events are also POSTed to it, signed the Standard Webhooks way, by
//! the background ticker that [`RenderSim::spawn`] starts; the ticker also
//! moves deploys along when nobody polls.
//!
//! Every route goes through the simulator's [`Faults`], so tests can make
//! Render slow, failing or rate limited (see [`super::faults`]).

use super::faults::Faults;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::task::JoinHandle;

/// How long each phase of a simulated deploy takes.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub build: Duration,
    pub update: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            build: Duration::from_secs(4),
            update: Duration::from_secs(2),
        }
    }
}

/// A commit the simulated services can build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub id: String,
    pub message: String,
    pub created_at: OffsetDateTime,
}

/// One simulated web service.
#[derive(Debug, Clone)]
pub struct ServiceSeed {
    pub id: String,
    pub name: String,
    pub branch: String,
    pub deploy_hook_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Created,
    BuildInProgress,
    UpdateInProgress,
    Live,
    Deactivated,
    BuildFailed,
    Canceled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::BuildInProgress => "build_in_progress",
            Status::UpdateInProgress => "update_in_progress",
            Status::Live => "live",
            Status::Deactivated => "deactivated",
            Status::BuildFailed => "build_failed",
            Status::Canceled => "canceled",
        }
    }

    fn in_progress(self) -> bool {
        matches!(
            self,
            Status::Created | Status::BuildInProgress | Status::UpdateInProgress
        )
    }
}

#[derive(Debug, Clone)]
struct Deploy {
    id: String,
    service_id: String,
    commit: Commit,
    trigger: &'static str,
    status: Status,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    finished_at: Option<OffsetDateTime>,
    /// A rollback reuses a built image: it has no build phase.
    skips_build: bool,
    fails_build: bool,
    went_live: bool,
    clear_cache: bool,
    /// For a rollback, the deploy rolled back to.
    rollback_of: Option<String>,
    /// How far its events have been recorded.
    recorded: Recorded,
}

/// The events of a deploy recorded so far, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Recorded {
    Nothing,
    Started,
    Built,
    Ended,
}

/// One entry of a service's event log.
#[derive(Debug, Clone)]
struct Event {
    id: String,
    /// Recording order, to keep events of the same instant in order.
    seq: u64,
    service_id: String,
    at: OffsetDateTime,
    kind: &'static str,
    details: Value,
}

/// Where webhooks go, with the key taken from a `whsec_…` secret.
#[derive(Debug, Clone)]
struct WebhookTarget {
    url: String,
    /// `whsec_<base64>`, checked when set.
    secret: String,
}

#[derive(Debug, Clone)]
struct Service {
    seed: ServiceSeed,
    auto_deploy: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

#[derive(Debug)]
struct World {
    services: Vec<Service>,
    /// Oldest first.
    deploys: Vec<Deploy>,
    commits: Vec<Commit>,
    /// Commits whose builds fail (a scenario's broken commit).
    failing_commits: Vec<String>,
    next_id: u64,
    timing: Timing,
    /// Oldest first (by time, then by recording order).
    events: Vec<Event>,
    webhook: Option<WebhookTarget>,
    /// Events waiting for the ticker to deliver them to the webhook.
    outbox: Vec<Event>,
}

/// Counts of the calls that change something, for tests that must prove a
/// call was made exactly once (or never).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallCounts {
    pub deploys_triggered: u32,
    pub rollbacks: u32,
    pub auto_deploy_patches: u32,
    pub cancels: u32,
    pub hook_deploys: u32,
}

/// The simulator: build it, seed it, then serve [`RenderSim::router`].
#[derive(Clone)]
pub struct RenderSim {
    world: Arc<Mutex<World>>,
    calls: Arc<Mutex<CallCounts>>,
    api_key: Arc<str>,
    faults: Faults,
}

/// A webhook secret that is not `whsec_` followed by base64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a Render webhook secret is \"whsec_\" followed by base64")]
pub struct InvalidWebhookSecret;

/// A fresh webhook secret in Render's form, `whsec_<base64>`.
pub fn new_webhook_secret() -> String {
    format!(
        "whsec_{}",
        BASE64.encode(crate::support::random_secret(32).as_bytes())
    )
}

/// How often the background ticker of [`RenderSim::spawn`] runs.
const TICK: Duration = Duration::from_millis(100);

impl RenderSim {
    /// An empty Render account reachable with `api_key`.
    pub fn new(api_key: &str, timing: Timing) -> Self {
        Self {
            world: Arc::new(Mutex::new(World {
                services: Vec::new(),
                deploys: Vec::new(),
                commits: Vec::new(),
                failing_commits: Vec::new(),
                next_id: 1,
                timing,
                events: Vec::new(),
                webhook: None,
                outbox: Vec::new(),
            })),
            calls: Arc::new(Mutex::new(CallCounts::default())),
            api_key: api_key.into(),
            faults: Faults::new(),
        }
    }

    /// The faults applied to every route of [`RenderSim::router`] (a shared
    /// handle: changes apply at once).
    pub fn faults(&self) -> Faults {
        self.faults.clone()
    }

    /// From now on (events still waiting for the previous target are
    /// dropped), deploy and build events are POSTed to `url`, signed with
    /// `secret` (`whsec_<base64>`, as Render shows it), by the ticker of
    /// [`RenderSim::spawn`]. Failed deliveries are logged and dropped.
    pub fn set_webhook(&self, url: &str, secret: &str) -> Result<(), InvalidWebhookSecret> {
        secret
            .strip_prefix("whsec_")
            .and_then(|b64| BASE64.decode(b64).ok())
            .filter(|key| !key.is_empty())
            .ok_or(InvalidWebhookSecret)?;
        let mut world = self.world();
        // What happened before now is history, not news: record it first,
        // so it is not delivered to the new target.
        world.advance(now());
        world.webhook = Some(WebhookTarget {
            url: url.to_owned(),
            secret: secret.to_owned(),
        });
        // Events not yet sent were meant for the previous target.
        world.outbox.clear();
        Ok(())
    }

    /// Stops webhook deliveries (events still waiting are dropped).
    pub fn clear_webhook(&self) {
        let mut world = self.world();
        world.webhook = None;
        world.outbox.clear();
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a service with autoDeploy on.
    pub fn add_service(&self, seed: ServiceSeed, created_at: OffsetDateTime) {
        self.world().services.push(Service {
            seed,
            auto_deploy: true,
            created_at,
            updated_at: created_at,
        });
    }

    /// Makes a commit known (the branch's history, oldest first).
    pub fn add_commit(&self, commit: Commit) {
        self.world().commits.push(commit);
    }

    /// Builds of this commit will fail.
    pub fn fail_builds_of(&self, commit_id: &str) {
        self.world().failing_commits.push(commit_id.to_owned());
    }

    /// Records a deploy that already happened (for seeding history): it
    /// starts at `at` and runs its phases from there.
    pub fn seed_deploy(
        &self,
        service_id: &str,
        commit_id: &str,
        trigger: &'static str,
        at: OffsetDateTime,
    ) -> Option<String> {
        let mut world = self.world();
        let commit = world.commits.iter().find(|c| c.id == commit_id)?.clone();
        let id = world.create_deploy(
            service_id,
            commit,
            trigger,
            Start::Build { clear_cache: false },
            at,
        );
        Some(id)
    }

    /// The key of a service's deploy hook (`POST /deploy/{service}?key=…`).
    pub fn deploy_hook_key(&self, service_id: &str) -> Option<String> {
        self.world()
            .service(service_id)
            .map(|s| s.seed.deploy_hook_key.clone())
    }

    /// The commit the service's live deploy runs now, if any.
    pub fn live_commit(&self, service_id: &str) -> Option<String> {
        let mut world = self.world();
        world.advance(now());
        world
            .deploys
            .iter()
            .rev()
            .find(|d| d.service_id == service_id && d.status == Status::Live)
            .map(|d| d.commit.id.clone())
    }

    /// The mutating calls received so far.
    pub fn calls(&self) -> CallCounts {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn count(&self, f: impl FnOnce(&mut CallCounts)) {
        if let Ok(mut calls) = self.calls.lock() {
            f(&mut calls);
        }
    }

    /// Serves [`RenderSim::router`] on `listener` and runs the ticker that
    /// moves deploys along and delivers webhooks, until the task is aborted.
    pub fn spawn(&self, listener: tokio::net::TcpListener) -> JoinHandle<()> {
        let router = self.router();
        let sim = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                result = axum::serve(listener, router) => {
                    if let Err(error) = result {
                        tracing::error!(%error, "the simulated Render stopped");
                    }
                }
                () = sim.run_ticker() => {}
            }
        })
    }

    async fn run_ticker(&self) {
        crate::support::install_tls_provider();
        // Render waits up to 15 seconds for a receiver; a test receiver is local.
        let http = match reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
        {
            Ok(http) => http,
            Err(error) => {
                tracing::error!(%error, "the simulated Render cannot send webhooks");
                return;
            }
        };
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            self.tick(&http).await;
        }
    }

    /// Advances the world to now and delivers the webhooks that are due, in
    /// the order their events happened.
    async fn tick(&self, http: &reqwest::Client) {
        let (target, due) = {
            let mut world = self.world();
            world.advance(now());
            let due = std::mem::take(&mut world.outbox);
            (world.webhook.clone(), due)
        };
        let Some(target) = target else { return };
        for event in due {
            let service_name = self
                .world()
                .service(&event.service_id)
                .map(|s| s.seed.name.clone());
            let body = webhook_payload(&event, service_name.as_deref());
            deliver(http, &target, &event.id, &body).await;
        }
    }

    /// The HTTP API, rooted where Render's `/v1` is, plus the deploy hook at
    /// `/deploy/{service}`, all subject to [`RenderSim::faults`] (whose admin
    /// routes are at `/_sandbox/faults`).
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/services", get(list_services))
            .route(
                "/services/{service_id}",
                get(get_service).patch(patch_service),
            )
            .route(
                "/services/{service_id}/deploys",
                get(list_deploys).post(trigger_deploy),
            )
            .route(
                "/services/{service_id}/deploys/{deploy_id}",
                get(get_deploy),
            )
            .route(
                "/services/{service_id}/deploys/{deploy_id}/cancel",
                post(cancel_deploy),
            )
            .route("/services/{service_id}/rollback", post(rollback))
            .route("/services/{service_id}/events", get(list_events))
            .route("/events/{event_id}", get(get_event))
            .fallback(|| async { error(StatusCode::NOT_FOUND, "not found") });
        self.faults
            .wrap(
                Router::new()
                    .nest("/v1", api)
                    .route("/deploy/{service_id}", post(deploy_hook).get(deploy_hook))
                    .with_state(self.clone()),
            )
            // Beside the faults: tests read the counts whatever faults are set.
            .merge(
                Router::new()
                    .route("/_sandbox/calls", get(calls))
                    .with_state(self.clone()),
            )
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|key| constant_time_eq(key.as_bytes(), self.api_key.as_bytes()))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("a UTC time always formats")
}

/// How a deploy starts: with a build, or (a rollback) from a built image.
enum Start {
    Build { clear_cache: bool },
    Rollback { of: String },
}

impl World {
    fn create_deploy(
        &mut self,
        service_id: &str,
        commit: Commit,
        trigger: &'static str,
        start: Start,
        at: OffsetDateTime,
    ) -> String {
        let id = format!("dep-sim{:016x}", self.next_id);
        self.next_id += 1;
        let (skips_build, clear_cache, rollback_of) = match start {
            Start::Build { clear_cache } => (false, clear_cache, None),
            Start::Rollback { of } => (true, false, Some(of)),
        };
        let fails_build = !skips_build && self.failing_commits.contains(&commit.id);
        self.deploys.push(Deploy {
            id: id.clone(),
            service_id: service_id.to_owned(),
            commit,
            trigger,
            status: Status::Created,
            created_at: at,
            updated_at: at,
            finished_at: None,
            skips_build,
            fails_build,
            went_live: false,
            clear_cache,
            rollback_of,
            recorded: Recorded::Nothing,
        });
        id
    }

    /// Adds an event to the log (and to the webhook outbox when a webhook
    /// is set and Render would deliver this kind).
    fn record(&mut self, service_id: &str, at: OffsetDateTime, kind: &'static str, details: Value) {
        let seq = self.next_id;
        self.next_id += 1;
        let event = Event {
            id: format!("evt-sim{seq:017x}"),
            seq,
            service_id: service_id.to_owned(),
            at,
            kind,
            details,
        };
        if self.webhook.is_some() && WEBHOOK_KINDS.contains(&kind) {
            self.outbox.push(event.clone());
        }
        self.events.push(event);
    }

    /// Records the events a deploy has reached by `now` and not recorded yet.
    fn record_progress(&mut self, i: usize, built_at: OffsetDateTime) {
        let d = self.deploys[i].clone();
        let build_id = build_id(&d.id);
        let mut due: Vec<(OffsetDateTime, &'static str, Value)> = Vec::new();
        if d.recorded < Recorded::Started {
            let trigger = trigger_details(&d);
            due.push((
                d.created_at,
                "deploy_started",
                json!({ "deployId": d.id, "trigger": trigger }),
            ));
            if !d.skips_build {
                due.push((
                    d.created_at,
                    "build_started",
                    json!({ "buildId": build_id, "trigger": trigger }),
                ));
            }
        }
        let past_build = matches!(
            d.status,
            Status::UpdateInProgress | Status::Live | Status::Deactivated | Status::BuildFailed
        );
        if d.recorded < Recorded::Built && past_build && !d.skips_build {
            let outcome = if d.status == Status::BuildFailed {
                "failed"
            } else {
                "succeeded"
            };
            due.push((
                built_at,
                "build_ended",
                ended_details("buildId", &build_id, "buildStatus", outcome, json!({})),
            ));
        }
        let ended = match d.status {
            Status::BuildFailed => Some(("failed", json!({ "buildFailed": { "id": build_id } }))),
            Status::Live | Status::Deactivated => Some(("succeeded", json!({}))),
            _ => None,
        };
        if let (Some((outcome, reason)), Some(finished)) = (ended, d.finished_at)
            && d.recorded < Recorded::Ended
        {
            due.push((
                finished,
                "deploy_ended",
                ended_details("deployId", &d.id, "deployStatus", outcome, reason),
            ));
        }
        let recorded = if d.finished_at.is_some() {
            Recorded::Ended
        } else if past_build {
            Recorded::Built
        } else {
            Recorded::Started
        };
        self.deploys[i].recorded = recorded.max(d.recorded);
        for (at, kind, details) in due {
            self.record(&d.service_id, at, kind, details);
        }
    }

    /// Cancels a deploy in progress at `at`.
    fn cancel(&mut self, i: usize, at: OffsetDateTime) {
        let d = &mut self.deploys[i];
        let in_build = d.status == Status::BuildInProgress && !d.skips_build;
        d.status = Status::Canceled;
        d.finished_at = Some(at);
        d.updated_at = at;
        d.recorded = Recorded::Ended;
        let (service_id, deploy_id) = (d.service_id.clone(), d.id.clone());
        if in_build {
            self.record(
                &service_id,
                at,
                "build_ended",
                ended_details(
                    "buildId",
                    &build_id(&deploy_id),
                    "buildStatus",
                    "canceled",
                    json!({}),
                ),
            );
        }
        self.record(
            &service_id,
            at,
            "deploy_ended",
            ended_details(
                "deployId",
                &deploy_id,
                "deployStatus",
                "canceled",
                json!({}),
            ),
        );
    }

    /// Keeps the log (and the outbox) in the order things happened: deploys
    /// are advanced one by one, so their events arrive interleaved.
    fn sort_events(&mut self) {
        self.events.sort_by_key(|e| (e.at, e.seq));
        self.outbox.sort_by_key(|e| (e.at, e.seq));
    }

    /// Moves every deploy in progress to where it is at `now`. Deploys go
    /// live in the order of the time they reach live (a rollback skips the
    /// build and can overtake a build), and each deactivates the one before.
    fn advance(&mut self, now: OffsetDateTime) {
        let timing = self.timing;
        let phases = |d: &Deploy| {
            let build = if d.skips_build {
                Duration::ZERO
            } else {
                timing.build
            };
            let built_at = d.created_at + build;
            (built_at, built_at + timing.update)
        };
        let mut order: Vec<usize> = (0..self.deploys.len())
            .filter(|&i| self.deploys[i].status.in_progress())
            .collect();
        order.sort_by_key(|&i| phases(&self.deploys[i]).1);
        let any = !order.is_empty();
        for i in order {
            let (built_at, live_at) = phases(&self.deploys[i]);
            self.step(i, now, built_at, live_at);
            self.record_progress(i, built_at);
        }
        if any {
            self.sort_events();
        }
    }

    /// Moves one deploy in progress to its status at `now`.
    fn step(
        &mut self,
        i: usize,
        now: OffsetDateTime,
        built_at: OffsetDateTime,
        live_at: OffsetDateTime,
    ) {
        let deploy = &mut self.deploys[i];
        if now < built_at {
            deploy.status = Status::BuildInProgress;
            return;
        }
        if deploy.fails_build {
            deploy.status = Status::BuildFailed;
            deploy.finished_at = Some(built_at);
            deploy.updated_at = built_at;
            return;
        }
        if now < live_at {
            deploy.status = Status::UpdateInProgress;
            deploy.updated_at = built_at;
            return;
        }
        deploy.status = Status::Live;
        deploy.went_live = true;
        deploy.finished_at = Some(live_at);
        deploy.updated_at = live_at;
        let (service, id) = (deploy.service_id.clone(), deploy.id.clone());
        for other in self.deploys.iter_mut() {
            if other.service_id == service && other.id != id && other.status == Status::Live {
                other.status = Status::Deactivated;
                other.updated_at = live_at;
            }
        }
    }

    /// Starts a build of `commit` (the branch head when `None`); `None`
    /// when the commit is not on the branch.
    fn build(
        &mut self,
        service_id: &str,
        commit: Option<&str>,
        trigger: &'static str,
        clear_cache: bool,
        at: OffsetDateTime,
    ) -> Option<String> {
        let commit = match commit {
            Some(sha) => self.commits.iter().find(|c| c.id == sha),
            None => self.commits.last(),
        }
        .cloned()?;
        self.advance(at);
        let id = self.create_deploy(
            service_id,
            commit,
            trigger,
            Start::Build { clear_cache },
            at,
        );
        self.advance(at);
        Some(id)
    }

    fn service(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.seed.id == id)
    }
}

const UNKNOWN_COMMIT: &str = "commit not found on the service's branch";

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "id": status.as_u16().to_string(), "message": message })),
    )
        .into_response()
}

fn deploy_json(d: &Deploy) -> Value {
    let mut value = json!({
        "id": d.id,
        "commit": {
            "id": d.commit.id,
            "message": d.commit.message,
            "createdAt": rfc3339(d.commit.created_at),
        },
        "status": d.status.as_str(),
        "trigger": d.trigger,
        "startedAt": rfc3339(d.created_at),
        "createdAt": rfc3339(d.created_at),
        "updatedAt": rfc3339(d.updated_at),
    });
    if let Some(finished) = d.finished_at {
        value["finishedAt"] = json!(rfc3339(finished));
    }
    value
}

fn service_json(s: &Service) -> Value {
    json!({
        "id": s.seed.id,
        "name": s.seed.name,
        "ownerId": "tea-sandbox",
        "type": "web_service",
        "repo": "https://github.com/cuentadesanti/data-simulator",
        "branch": s.seed.branch,
        "autoDeploy": if s.auto_deploy { "yes" } else { "no" },
        "createdAt": rfc3339(s.created_at),
        "updatedAt": rfc3339(s.updated_at),
        "dashboardUrl": format!("https://dashboard.render.com/web/{}", s.seed.id),
        "suspended": "not_suspended",
        "suspenders": [],
        "notifyOnFail": "default",
        "slug": s.seed.name,
        "rootDir": "backend",
        "serviceDetails": {
            "buildPlan": "starter",
            "env": "python",
            "envSpecificDetails": { "buildCommand": "uv sync", "startCommand": "uv run uvicorn app.main:app" },
            "healthCheckPath": "/health",
            "numInstances": 1,
            "openPorts": [{ "port": 10000, "protocol": "TCP" }],
            "plan": "starter",
            "pullRequestPreviewsEnabled": "no",
            "region": "frankfurt",
            "runtime": "python",
            "sshAddress": format!("{}@ssh.frankfurt.render.com", s.seed.id),
            "url": format!("https://{}.onrender.com", s.seed.name),
        },
    })
}

macro_rules! authorize {
    ($sim:expr, $headers:expr) => {
        if !$sim.authorized(&$headers) {
            return error(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
    };
}

#[derive(Debug, Deserialize)]
struct Page {
    cursor: Option<String>,
    limit: Option<usize>,
}

impl Page {
    /// Render's paging: up to `limit` (1..=100, default 20) items after the
    /// one named by `cursor`, each as `{"<key>": item, "cursor": "…"}`.
    fn respond(&self, key: &str, items: Vec<(String, Value)>) -> Response {
        let limit = self.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return error(StatusCode::BAD_REQUEST, "limit must be between 1 and 100");
        }
        let start = match &self.cursor {
            None => 0,
            Some(cursor) => match items.iter().position(|(c, _)| c == cursor) {
                Some(i) => i + 1,
                None => return error(StatusCode::BAD_REQUEST, "invalid cursor"),
            },
        };
        let page: Vec<Value> = items
            .into_iter()
            .skip(start)
            .take(limit)
            .map(|(cursor, item)| json!({ key: item, "cursor": cursor }))
            .collect();
        Json(page).into_response()
    }
}

async fn list_services(
    State(sim): State<RenderSim>,
    headers: HeaderMap,
    Query(page): Query<Page>,
) -> Response {
    authorize!(sim, headers);
    let world = sim.world();
    let items = world
        .services
        .iter()
        .map(|s| (s.seed.id.clone(), service_json(s)))
        .collect();
    page.respond("service", items)
}

async fn get_service(
    State(sim): State<RenderSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    authorize!(sim, headers);
    match sim.world().service(&id) {
        Some(service) => Json(service_json(service)).into_response(),
        None => error(StatusCode::NOT_FOUND, "service not found"),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServicePatch {
    auto_deploy: Option<String>,
}

async fn patch_service(
    State(sim): State<RenderSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<ServicePatch>>,
) -> Response {
    authorize!(sim, headers);
    let Some(Json(patch)) = body else {
        return error(StatusCode::BAD_REQUEST, "invalid JSON body");
    };
    let auto_deploy = match patch.auto_deploy.as_deref() {
        None => None,
        Some("yes") => Some(true),
        Some("no") => Some(false),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "autoDeploy must be \"yes\" or \"no\"",
            );
        }
    };
    let mut world = sim.world();
    let Some(service) = world.services.iter_mut().find(|s| s.seed.id == id) else {
        return error(StatusCode::NOT_FOUND, "service not found");
    };
    if let Some(auto_deploy) = auto_deploy {
        service.auto_deploy = auto_deploy;
        service.updated_at = now();
        sim.count(|c| c.auto_deploy_patches += 1);
    }
    Json(service_json(service)).into_response()
}

async fn list_deploys(
    State(sim): State<RenderSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(page): Query<Page>,
) -> Response {
    authorize!(sim, headers);
    let mut world = sim.world();
    if world.service(&id).is_none() {
        return error(StatusCode::NOT_FOUND, "service not found");
    }
    world.advance(now());
    let items = world
        .deploys
        .iter()
        .rev()
        .filter(|d| d.service_id == id)
        .map(|d| (d.id.clone(), deploy_json(d)))
        .collect();
    page.respond("deploy", items)
}

async fn get_deploy(
    State(sim): State<RenderSim>,
    headers: HeaderMap,
    Path((service_id, deploy_id)): Path<(String, String)>,
) -> Response {
    authorize!(sim, headers);
    let mut world = sim.world();
    world.advance(now());
    match world
        .deploys
        .iter()
        .find(|d| d.id == deploy_id && d.service_id == service_id)
    {
        Some(deploy) => Json(deploy_json(deploy)).into_response(),
        None => error(StatusCode::NOT_FOUND, "deploy not found"),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TriggerBody {
    commit_id: Option<String>,
    clear_cache: Option<String>,
}

async fn trigger_deploy(
    State(sim): State<RenderSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<TriggerBody>>,
) -> Response {
    authorize!(sim, headers);
    let body = body.map(|Json(b)| b).unwrap_or_default();
    if let Some(cache) = body.clear_cache.as_deref()
        && !matches!(cache, "clear" | "do_not_clear")
    {
        return error(
            StatusCode::BAD_REQUEST,
            "clearCache must be \"clear\" or \"do_not_clear\"",
        );
    }
    let mut world = sim.world();
    if world.service(&id).is_none() {
        return error(StatusCode::NOT_FOUND, "service not found");
    }
    let clear_cache = body.clear_cache.as_deref() == Some("clear");
    let Some(deploy_id) = world.build(&id, body.commit_id.as_deref(), "api", clear_cache, now())
    else {
        return error(StatusCode::BAD_REQUEST, UNKNOWN_COMMIT);
    };
    sim.count(|c| c.deploys_triggered += 1);
    let deploy = world
        .deploys
        .iter()
        .find(|d| d.id == deploy_id)
        .expect("just created");
    (StatusCode::CREATED, Json(deploy_json(deploy))).into_response()
}

async fn cancel_deploy(
    State(sim): State<RenderSim>,
    headers: HeaderMap,
    Path((service_id, deploy_id)): Path<(String, String)>,
) -> Response {
    authorize!(sim, headers);
    let mut world = sim.world();
    let at = now();
    world.advance(at);
    let Some(i) = world
        .deploys
        .iter()
        .position(|d| d.id == deploy_id && d.service_id == service_id)
    else {
        return error(StatusCode::NOT_FOUND, "deploy not found");
    };
    if !world.deploys[i].status.in_progress() {
        return error(StatusCode::CONFLICT, "deploy is not in progress");
    }
    world.cancel(i, at);
    world.sort_events();
    sim.count(|c| c.cancels += 1);
    Json(deploy_json(&world.deploys[i])).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RollbackBody {
    deploy_id: String,
}

async fn rollback(
    State(sim): State<RenderSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<RollbackBody>>,
) -> Response {
    authorize!(sim, headers);
    let Some(Json(body)) = body else {
        return error(StatusCode::BAD_REQUEST, "deployId is required");
    };
    let mut world = sim.world();
    let at = now();
    world.advance(at);
    if world.service(&id).is_none() {
        return error(StatusCode::NOT_FOUND, "service not found");
    }
    let Some(target) = world
        .deploys
        .iter()
        .find(|d| d.id == body.deploy_id && d.service_id == id)
        .cloned()
    else {
        return error(StatusCode::NOT_FOUND, "deploy not found");
    };
    if !target.went_live {
        return error(
            StatusCode::BAD_REQUEST,
            "cannot roll back to a deploy that never went live",
        );
    }
    // As on Render, a rollback through the API leaves autoDeploy as it is.
    let deploy_id = world.create_deploy(
        &id,
        target.commit,
        "rollback",
        Start::Rollback { of: target.id },
        at,
    );
    world.advance(at);
    sim.count(|c| c.rollbacks += 1);
    let deploy = world
        .deploys
        .iter()
        .find(|d| d.id == deploy_id)
        .expect("just created");
    (StatusCode::CREATED, Json(deploy_json(deploy))).into_response()
}

#[derive(Debug, Deserialize)]
struct HookQuery {
    key: Option<String>,
    #[serde(rename = "ref")]
    commit: Option<String>,
}

/// `POST /deploy/srv-…?key=…`: no Authorization header, the key is the secret.
async fn deploy_hook(
    State(sim): State<RenderSim>,
    Path(id): Path<String>,
    Query(query): Query<HookQuery>,
) -> Response {
    let mut world = sim.world();
    let Some(service) = world.service(&id) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let key_ok = query
        .key
        .as_deref()
        .is_some_and(|k| constant_time_eq(k.as_bytes(), service.seed.deploy_hook_key.as_bytes()));
    if !key_ok {
        return error(StatusCode::UNAUTHORIZED, "invalid deploy hook key");
    }
    let Some(deploy_id) = world.build(&id, query.commit.as_deref(), "deploy_hook", false, now())
    else {
        return error(StatusCode::BAD_REQUEST, UNKNOWN_COMMIT);
    };
    sim.count(|c| c.hook_deploys += 1);
    Json(json!({ "deploy": { "id": deploy_id } })).into_response()
}

/// The event types of the contract's `eventTypeParam` (the `type` filter).
const EVENT_TYPES: [&str; 37] = [
    "autoscaling_config_changed",
    "autoscaling_ended",
    "autoscaling_started",
    "branch_deleted",
    "build_ended",
    "build_started",
    "commit_ignored",
    "cron_job_run_ended",
    "cron_job_run_started",
    "deploy_ended",
    "deploy_started",
    "disk_created",
    "disk_updated",
    "disk_deleted",
    "image_pull_failed",
    "initial_deploy_hook_ended",
    "initial_deploy_hook_started",
    "instance_count_changed",
    "job_run_ended",
    "maintenance_mode_enabled",
    "maintenance_mode_uri_updated",
    "maintenance_ended",
    "maintenance_started",
    "pipeline_minutes_exhausted",
    "plan_changed",
    "pre_deploy_ended",
    "pre_deploy_started",
    "server_available",
    "server_failed",
    "server_hardware_failure",
    "server_restarted",
    "service_resumed",
    "service_suspended",
    "suspender_added",
    "suspender_removed",
    "zero_downtime_redeploy_ended",
    "zero_downtime_redeploy_started",
];

/// The events the simulator delivers to a webhook: all it records.
const WEBHOOK_KINDS: [&str; 4] = [
    "deploy_started",
    "build_started",
    "build_ended",
    "deploy_ended",
];

/// The details of `build_ended` / `deploy_ended`. The contract still
/// requires the deprecated integer `status` but gives no values; the
/// simulator writes 2, 3, 4 for succeeded, failed, canceled. Readers should
/// use `buildStatus` / `deployStatus`.
fn ended_details(id_key: &str, id: &str, status_key: &str, outcome: &str, reason: Value) -> Value {
    let code = match outcome {
        "succeeded" => 2,
        "failed" => 3,
        _ => 4,
    };
    json!({ id_key: id, status_key: outcome, "status": code, "reason": reason })
}

/// Render's builds have their own `bld-` ids; here one per deploy.
fn build_id(deploy_id: &str) -> String {
    deploy_id.replacen("dep-", "bld-", 1)
}

/// The `trigger` object of `deploy_started` and `build_started`.
fn trigger_details(d: &Deploy) -> Value {
    let mut trigger = json!({
        "firstBuild": false,
        "envUpdated": false,
        "manual": d.trigger == "api",
        "deployedByRender": false,
        "clearCache": d.clear_cache,
        "rollback": d.rollback_of.is_some(),
    });
    if d.trigger == "new_commit" {
        trigger["newCommit"] = json!(d.commit.id);
    }
    if let Some(target) = &d.rollback_of {
        trigger["rollbackTargetDeployId"] = json!(target);
    }
    trigger
}

fn event_json(e: &Event) -> Value {
    json!({
        "id": e.id,
        "timestamp": rfc3339(e.at),
        "serviceId": e.service_id,
        "type": e.kind,
        "details": e.details,
    })
}

/// Render's webhook body: `{type, timestamp, data: {id, serviceId, serviceName, status?}}`;
/// the receiver fetches the rest with `GET /v1/events/{data.id}`.
fn webhook_payload(e: &Event, service_name: Option<&str>) -> Vec<u8> {
    let mut data = json!({ "id": e.id, "serviceId": e.service_id });
    if let Some(name) = service_name {
        data["serviceName"] = json!(name);
    }
    let status = e
        .details
        .get("deployStatus")
        .or_else(|| e.details.get("buildStatus"));
    if let Some(status) = status {
        data["status"] = status.clone();
    }
    let body = json!({ "type": e.kind, "timestamp": rfc3339(e.at), "data": data });
    serde_json::to_vec(&body).expect("a JSON value always serializes")
}

/// POSTs one webhook; a failure is logged, never retried.
async fn deliver(http: &reqwest::Client, target: &WebhookTarget, event_id: &str, body: &[u8]) {
    let id = format!("msg_{event_id}");
    let timestamp = now().unix_timestamp();
    let Some(signature) = crate::signing::standard_signature(&target.secret, &id, timestamp, body)
    else {
        tracing::warn!(webhook_id = %id, "the webhook secret cannot sign");
        return;
    };
    let result = http
        .post(&target.url)
        .header(header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body.to_vec())
        .send()
        .await;
    match result {
        Ok(response) if response.status().is_success() => {}
        Ok(response) => {
            tracing::warn!(webhook_id = %id, status = %response.status(), "the webhook receiver refused a delivery");
        }
        Err(error) => {
            tracing::warn!(webhook_id = %id, %error, "a webhook delivery failed");
        }
    }
}

/// A time in a query: RFC 3339 (as the schema says) or Unix seconds (as
/// its description says).
fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok().or_else(|| {
        text.parse::<i64>()
            .ok()
            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventFilter {
    #[serde(rename = "type")]
    kind: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
}

/// `GET /v1/services/{serviceId}/events`: newest first, between `startTime`
/// (default an hour ago, as Render documents) and `endTime` (default now),
/// of the given `type`s (comma-separated) if any.
async fn list_events(
    State(sim): State<RenderSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(page): Query<Page>,
    Query(filter): Query<EventFilter>,
) -> Response {
    authorize!(sim, headers);
    let at = now();
    let mut kinds = Vec::new();
    for kind in filter.kind.iter().flat_map(|k| k.split(',')) {
        match EVENT_TYPES.iter().find(|t| **t == kind) {
            Some(known) => kinds.push(*known),
            None => return error(StatusCode::BAD_REQUEST, "unknown event type"),
        }
    }
    let window = |text: &Option<String>, default: OffsetDateTime| match text {
        None => Some(default),
        Some(text) => parse_time(text),
    };
    let (Some(start), Some(end)) = (
        window(&filter.start_time, at - time::Duration::hours(1)),
        window(&filter.end_time, at),
    ) else {
        return error(
            StatusCode::BAD_REQUEST,
            "startTime and endTime must be date-times (RFC 3339) or Unix seconds",
        );
    };
    let mut world = sim.world();
    if world.service(&id).is_none() {
        return error(StatusCode::NOT_FOUND, "service not found");
    }
    world.advance(at);
    let items = world
        .events
        .iter()
        .rev()
        .filter(|e| e.service_id == id && start <= e.at && e.at <= end)
        .filter(|e| kinds.is_empty() || kinds.contains(&e.kind))
        .map(|e| (e.id.clone(), event_json(e)))
        .collect();
    page.respond("event", items)
}

async fn get_event(
    State(sim): State<RenderSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    authorize!(sim, headers);
    let mut world = sim.world();
    world.advance(now());
    match world.events.iter().find(|e| e.id == id) {
        Some(event) => Json(event_json(event)).into_response(),
        None => error(StatusCode::NOT_FOUND, "event not found"),
    }
}

#[cfg(test)]
mod tests;

/// `GET /_sandbox/calls`: [`CallCounts`] as JSON, for black-box tests.
async fn calls(State(sim): State<RenderSim>) -> Json<CallCounts> {
    Json(sim.calls())
}
