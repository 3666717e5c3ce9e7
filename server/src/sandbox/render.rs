//! A simulated Render: the parts of its public API that Flightdeck uses,
//! shaped as in `shared/contracts/render-subset.json`, over real HTTP.
//!
//! Time drives the deploys: every read first advances the world to "now",
//! so a deploy moves created → build_in_progress → update_in_progress → live
//! by itself, and the deploy that was live becomes deactivated.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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
}

/// Counts of the calls that change something, for tests that must prove a
/// call was made exactly once (or never).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
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
}

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
            })),
            calls: Arc::new(Mutex::new(CallCounts::default())),
            api_key: api_key.into(),
        }
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
        let id = world.create_deploy(service_id, commit, trigger, false, at);
        Some(id)
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

    /// The HTTP API, rooted where Render's `/v1` is, plus the deploy hook at `/deploy/{service}`.
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
            .fallback(|| async { error(StatusCode::NOT_FOUND, "not found") });
        Router::new()
            .nest("/v1", api)
            .route("/deploy/{service_id}", post(deploy_hook).get(deploy_hook))
            .with_state(self.clone())
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

impl World {
    fn create_deploy(
        &mut self,
        service_id: &str,
        commit: Commit,
        trigger: &'static str,
        skips_build: bool,
        at: OffsetDateTime,
    ) -> String {
        let id = format!("dep-sim{:016x}", self.next_id);
        self.next_id += 1;
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
        });
        id
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
        for i in order {
            let (built_at, live_at) = phases(&self.deploys[i]);
            let deploy = &mut self.deploys[i];
            if now < built_at {
                deploy.status = Status::BuildInProgress;
                continue;
            }
            if deploy.fails_build {
                deploy.status = Status::BuildFailed;
                deploy.finished_at = Some(built_at);
                deploy.updated_at = built_at;
                continue;
            }
            if now < live_at {
                deploy.status = Status::UpdateInProgress;
                deploy.updated_at = built_at;
                continue;
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
    }

    /// Starts a build of `commit` (the branch head when `None`); `None`
    /// when the commit is not on the branch.
    fn build(
        &mut self,
        service_id: &str,
        commit: Option<&str>,
        trigger: &'static str,
        at: OffsetDateTime,
    ) -> Option<String> {
        let commit = match commit {
            Some(sha) => self.commits.iter().find(|c| c.id == sha),
            None => self.commits.last(),
        }
        .cloned()?;
        self.advance(at);
        let id = self.create_deploy(service_id, commit, trigger, false, at);
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
    let Some(deploy_id) = world.build(&id, body.commit_id.as_deref(), "api", now()) else {
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
    let Some(deploy) = world
        .deploys
        .iter_mut()
        .find(|d| d.id == deploy_id && d.service_id == service_id)
    else {
        return error(StatusCode::NOT_FOUND, "deploy not found");
    };
    if !deploy.status.in_progress() {
        return error(StatusCode::CONFLICT, "deploy is not in progress");
    }
    deploy.status = Status::Canceled;
    deploy.finished_at = Some(at);
    deploy.updated_at = at;
    sim.count(|c| c.cancels += 1);
    Json(deploy_json(deploy)).into_response()
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
    let deploy_id = world.create_deploy(&id, target.commit, "rollback", true, at);
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
    let Some(deploy_id) = world.build(&id, query.commit.as_deref(), "deploy_hook", now()) else {
        return error(StatusCode::BAD_REQUEST, UNKNOWN_COMMIT);
    };
    sim.count(|c| c.hook_deploys += 1);
    Json(json!({ "deploy": { "id": deploy_id } })).into_response()
}

#[cfg(test)]
mod tests;
