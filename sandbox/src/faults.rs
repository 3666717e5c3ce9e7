//! Fault injection for the simulators: make chosen routes slow, fail, rate
//! limit or answer broken JSON, so tests can see how the panel copes.
//!
//! A [`Faults`] handle is shared (cloning it shares the rules) and changed at
//! run time, from Rust with [`Faults::set`] / [`Faults::clear`], or over HTTP
//! through the admin routes that [`Faults::wrap`] adds:
//!
//! - `GET /_sandbox/faults`: the rules in force, with the calls left for each;
//! - `PUT /_sandbox/faults`: replace them with a JSON list such as
//!   `[{"route": "GET /v1/services/{serviceId}/deploys", "fault": "server_error", "status": 503, "times": 2}]`;
//! - `DELETE /_sandbox/faults`: remove them all.
//!
//! These admin routes exist only on the simulators, which serve loopback
//! ports for tests and the sandbox; the panel never has them, and faults
//! never apply to them.
//!
//! A rule names its route as `METHOD /path` with the route's pattern (any
//! `{name}` matches any parameter, so `{serviceId}` matches the router's
//! `{service_id}`), `METHOD *`, `* /path`, or `*` for every call. The first
//! rule that matches a call applies; a rule with `times` applies to that many
//! calls and then disappears.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What an injected fault does to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Waits this long, then answers normally.
    Latency(Duration),
    /// Answers with this status (meant for 5xx) and a JSON error body.
    ServerError(u16),
    /// GitHub's primary rate limit: 403, `x-ratelimit-remaining: 0`,
    /// `x-ratelimit-reset` a minute from now, "API rate limit exceeded…".
    RateLimited,
    /// 429 with `retry-after` (and Render's `ratelimit-*` headers).
    TooManyRequests { retry_after_secs: u64 },
    /// 200 with `content-type: application/json` and a truncated body.
    MalformedJson,
}

/// A fault and how many calls it applies to (`None`: until cleared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub times: Option<u32>,
}

impl Fault {
    /// Applies to every matching call until cleared.
    pub fn always(kind: FaultKind) -> Self {
        Self { kind, times: None }
    }

    /// Applies to the next `times` matching calls only.
    pub fn times(kind: FaultKind, times: u32) -> Self {
        Self {
            kind,
            times: Some(times),
        }
    }
}

/// A route text that is not `*`, `METHOD *`, `* /path` or `METHOD /path`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a fault route: {0:?} (expected \"*\", \"METHOD *\", \"* /path\" or \"METHOD /path\")")]
pub struct InvalidRoute(String);

/// Which calls a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    text: String,
    method: Option<Method>,
    /// The pattern's segments; `None` for any path.
    path: Option<Vec<String>>,
}

impl Route {
    fn parse(text: &str) -> Result<Self, InvalidRoute> {
        let invalid = || InvalidRoute(text.to_owned());
        let trimmed = text.trim();
        let (method, path) = match trimmed.split_once(' ') {
            None if trimmed == "*" => ("*", "*"),
            None => return Err(invalid()),
            Some((method, path)) => (method, path.trim()),
        };
        let method = match method {
            "*" => None,
            m if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => {
                Some(Method::from_bytes(m.as_bytes()).map_err(|_| invalid())?)
            }
            _ => return Err(invalid()),
        };
        let path = match path {
            "*" => None,
            p if p.starts_with('/') && !p.contains(' ') => Some(segments(p)),
            _ => return Err(invalid()),
        };
        Ok(Self {
            text: trimmed.to_owned(),
            method,
            path,
        })
    }

    fn matches(&self, method: &Method, matched_path: Option<&str>) -> bool {
        if self.method.as_ref().is_some_and(|m| m != method) {
            return false;
        }
        let Some(pattern) = &self.path else {
            return true;
        };
        // A call no route matched (the 404 fallback) has no pattern.
        let Some(actual) = matched_path else {
            return false;
        };
        let actual = segments(actual);
        pattern.len() == actual.len()
            && pattern
                .iter()
                .zip(&actual)
                .all(|(p, a)| p == a || (is_parameter(p) && is_parameter(a)))
    }
}

fn segments(path: &str) -> Vec<String> {
    path.trim_end_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect()
}

fn is_parameter(segment: &str) -> bool {
    segment.starts_with('{') && segment.ends_with('}')
}

#[derive(Debug, Clone)]
struct Rule {
    route: Route,
    fault: Fault,
}

/// The shared set of fault rules; see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<Rule>>>,
    /// Every API request that reached the simulator (admin routes aside),
    /// for tests that prove a call was, or was not, made.
    requests: Arc<std::sync::atomic::AtomicU64>,
    /// The same requests one by one, with their answers.
    log: Arc<Mutex<Vec<Logged>>>,
}

/// One API request a simulator received, and its answer's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// `METHOD /route/{pattern}` (the path itself when no route matched).
    pub route: String,
    /// The path as sent.
    pub path: String,
    /// The query string as sent.
    pub query: Option<String>,
    pub status: u16,
}

impl Faults {
    /// No faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many API requests the simulator has received so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Every API request received so far (admin routes aside), in order.
    pub fn log(&self) -> Vec<Logged> {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn rules(&self) -> MutexGuard<'_, Vec<Rule>> {
        self.rules
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sets the fault for `route`, replacing any rule written the same way
    /// (a fault for zero calls just removes it).
    pub fn set(&self, route: &str, fault: Fault) -> Result<(), InvalidRoute> {
        let route = Route::parse(route)?;
        let mut rules = self.rules();
        rules.retain(|r| r.route.text != route.text);
        if fault.times != Some(0) {
            rules.push(Rule { route, fault });
        }
        Ok(())
    }

    /// Removes the rule for `route` (written as it was set).
    pub fn clear_route(&self, route: &str) {
        let text = route.trim();
        self.rules().retain(|r| r.route.text != text);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules().clear();
    }

    /// The rules in force, in the order they are tried, with the calls each
    /// has left.
    pub fn list(&self) -> Vec<(String, Fault)> {
        self.rules()
            .iter()
            .map(|r| (r.route.text.clone(), r.fault.clone()))
            .collect()
    }

    /// The fault for this call, counting it against the rule's `times`.
    fn take(&self, method: &Method, matched_path: Option<&str>) -> Option<FaultKind> {
        let mut rules = self.rules();
        let i = rules
            .iter()
            .position(|r| r.route.matches(method, matched_path))?;
        let kind = rules[i].fault.kind.clone();
        if let Some(left) = &mut rules[i].fault.times {
            *left = left.saturating_sub(1);
            if *left == 0 {
                rules.remove(i);
            }
        }
        Some(kind)
    }

    /// `router` with the faults applied to every route, plus the admin
    /// routes under `/_sandbox/faults` (which faults never touch).
    pub fn wrap(&self, router: Router) -> Router {
        let admin = Router::new()
            .route(
                "/_sandbox/faults",
                get(admin_list).put(admin_replace).delete(admin_clear),
            )
            .with_state(self.clone());
        router
            .layer(middleware::from_fn_with_state(self.clone(), apply))
            .merge(admin)
    }
}

async fn apply(State(faults): State<Faults>, request: Request, next: Next) -> Response {
    faults
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let route = format!(
        "{} {}",
        request.method(),
        matched.as_deref().unwrap_or(request.uri().path())
    );
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let response = injected(&faults, matched, request, next).await;
    faults
        .log
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(Logged {
            route,
            path,
            query,
            status: response.status().as_u16(),
        });
    response
}

async fn injected(
    faults: &Faults,
    matched: Option<String>,
    request: Request,
    next: Next,
) -> Response {
    let Some(kind) = faults.take(request.method(), matched.as_deref()) else {
        return next.run(request).await;
    };
    tracing::debug!(route = ?matched, fault = ?kind, "injecting a fault");
    match kind {
        FaultKind::Latency(delay) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        FaultKind::ServerError(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = format!(
                "{} {} (injected fault)",
                status.as_u16(),
                status.canonical_reason().unwrap_or("Server Error")
            );
            (status, Json(json!({ "message": message }))).into_response()
        }
        FaultKind::RateLimited => {
            let reset = unix_now() + 60;
            let mut response = (
                StatusCode::FORBIDDEN,
                Json(json!({
                    "message": "API rate limit exceeded for user ID 1. (injected fault)",
                    "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting",
                })),
            )
                .into_response();
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-limit", HeaderValue::from_static("5000"));
            headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
            headers.insert("x-ratelimit-used", HeaderValue::from_static("5000"));
            headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
            headers.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
            response
        }
        FaultKind::TooManyRequests { retry_after_secs } => {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({ "id": "429", "message": "rate limit exceeded (injected fault)" })),
            )
                .into_response();
            let headers = response.headers_mut();
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            headers.insert("ratelimit-limit", HeaderValue::from_static("100"));
            headers.insert("ratelimit-remaining", HeaderValue::from_static("0"));
            headers.insert("ratelimit-reset", HeaderValue::from(retry_after_secs));
            response
        }
        FaultKind::MalformedJson => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"[{"id": "truncated", "status": "li"#,
        )
            .into_response(),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A rule as the admin routes read and write it.
#[derive(Debug, Serialize, Deserialize)]
struct WireRule {
    route: String,
    #[serde(flatten)]
    kind: WireKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    times: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case", deny_unknown_fields)]
enum WireKind {
    Latency { ms: u64 },
    ServerError { status: u16 },
    RateLimited,
    TooManyRequests { retry_after_secs: u64 },
    MalformedJson,
}

impl From<WireKind> for FaultKind {
    fn from(wire: WireKind) -> Self {
        match wire {
            WireKind::Latency { ms } => FaultKind::Latency(Duration::from_millis(ms)),
            WireKind::ServerError { status } => FaultKind::ServerError(status),
            WireKind::RateLimited => FaultKind::RateLimited,
            WireKind::TooManyRequests { retry_after_secs } => {
                FaultKind::TooManyRequests { retry_after_secs }
            }
            WireKind::MalformedJson => FaultKind::MalformedJson,
        }
    }
}

impl From<&FaultKind> for WireKind {
    fn from(kind: &FaultKind) -> Self {
        match *kind {
            FaultKind::Latency(d) => WireKind::Latency {
                ms: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            },
            FaultKind::ServerError(status) => WireKind::ServerError { status },
            FaultKind::RateLimited => WireKind::RateLimited,
            FaultKind::TooManyRequests { retry_after_secs } => {
                WireKind::TooManyRequests { retry_after_secs }
            }
            FaultKind::MalformedJson => WireKind::MalformedJson,
        }
    }
}

async fn admin_list(State(faults): State<Faults>) -> Json<Vec<WireRule>> {
    Json(
        faults
            .list()
            .into_iter()
            .map(|(route, fault)| WireRule {
                route,
                kind: (&fault.kind).into(),
                times: fault.times,
            })
            .collect(),
    )
}

async fn admin_replace(State(faults): State<Faults>, body: axum::body::Bytes) -> Response {
    let bad = |message: String| {
        (StatusCode::BAD_REQUEST, Json(json!({ "message": message }))).into_response()
    };
    let wire: Vec<WireRule> = match serde_json::from_slice(&body) {
        Ok(wire) => wire,
        Err(e) => return bad(format!("expected a JSON list of fault rules: {e}")),
    };
    let mut rules = Vec::with_capacity(wire.len());
    for rule in wire {
        let route = match Route::parse(&rule.route) {
            Ok(route) => route,
            Err(e) => return bad(e.to_string()),
        };
        if rule.times == Some(0) {
            return bad(format!("{}: times must be at least 1", rule.route));
        }
        rules.push(Rule {
            route,
            fault: Fault {
                kind: rule.kind.into(),
                times: rule.times,
            },
        });
    }
    *faults.rules() = rules;
    admin_list(State(faults)).await.into_response()
}

async fn admin_clear(State(faults): State<Faults>) -> StatusCode {
    faults.clear();
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests;
