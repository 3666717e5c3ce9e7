//! A typed client for the parts of Render's public API the panel uses
//! (`shared/contracts/render-subset.json`): services, deploys, rollback and
//! events, with errors a person can read in a stale-data banner.
//!
//! It talks to `https://api.render.com/v1` or, in the sandbox and the tests,
//! to the simulated Render (`flightdeck_sandbox::render`). Every call has a
//! timeout; nothing is retried here (the caller decides, e.g. on
//! [`RenderError::RateLimited`]). The API key is sent only in the
//! `Authorization` header and is never part of an error or a `Debug` output.

use super::{Page, install_tls_provider};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use std::fmt;
use std::time::Duration;
use time::OffsetDateTime;
use url::Url;

/// How long a call may take unless [`RenderClient::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Render's largest page.
const MAX_PAGE: usize = 100;

/// Why a call to Render failed. The messages are meant for people (they
/// appear in the panel's stale-data banner) and never contain the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("Render rejected the API key (HTTP 401); check the key in the configuration")]
    Unauthorized,
    #[error("Render does not know this service, deploy or event (HTTP 404)")]
    NotFound,
    #[error("Render refused because of the service's current state: {0}")]
    Conflict(String),
    #[error("Render refused the request (HTTP {status}): {msg}")]
    Refused { status: u16, msg: String },
    #[error("Render's rate limit was reached; {}", retry_hint(.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    #[error("Render is having trouble (HTTP {status}); try again shortly")]
    Upstream { status: u16 },
    #[error("Render answered with data Flightdeck cannot read ({what})")]
    Malformed { what: String },
    #[error("Render did not answer in time")]
    Timeout,
    #[error("cannot reach Render: {0}")]
    Transport(String),
}

fn retry_hint(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(wait) => format!("it can be tried again in {} s", wait.as_secs().max(1)),
        None => "try again later".to_owned(),
    }
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)*
            /// A value this version does not know (Render adds some now and then).
            Unknown(String),
        }

        impl $name {
            /// The value as Render writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)*
                    Self::Unknown(other) => other,
                }
            }

            fn from_text(text: String) -> Self {
                match text.as_str() {
                    $($text => Self::$variant,)*
                    _ => Self::Unknown(text),
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(Self::from_text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// Where a deploy is (Render's `deployStatus`).
    DeployStatus {
        Created = "created",
        Queued = "queued",
        BuildInProgress = "build_in_progress",
        UpdateInProgress = "update_in_progress",
        Live = "live",
        Deactivated = "deactivated",
        BuildFailed = "build_failed",
        UpdateFailed = "update_failed",
        Canceled = "canceled",
        PreDeployInProgress = "pre_deploy_in_progress",
        PreDeployFailed = "pre_deploy_failed",
    }
);

impl DeployStatus {
    /// Still moving: it may yet go live or fail.
    pub fn in_progress(&self) -> bool {
        matches!(
            self,
            Self::Created
                | Self::Queued
                | Self::BuildInProgress
                | Self::UpdateInProgress
                | Self::PreDeployInProgress
        )
    }

    /// Ended without going live.
    pub fn failed(&self) -> bool {
        matches!(
            self,
            Self::BuildFailed | Self::UpdateFailed | Self::PreDeployFailed | Self::Canceled
        )
    }
}

string_enum!(
    /// What started a deploy.
    DeployTrigger {
        Api = "api",
        BlueprintSync = "blueprint_sync",
        DeployHook = "deploy_hook",
        DeployedByRender = "deployed_by_render",
        Manual = "manual",
        Other = "other",
        NewCommit = "new_commit",
        Rollback = "rollback",
        ServiceResumed = "service_resumed",
        ServiceUpdated = "service_updated",
    }
);

/// A Render service (the fields the panel reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub id: String,
    pub name: String,
    /// Render's `autoDeploy`, `"yes"` or `"no"`.
    #[serde(deserialize_with = "yes_no")]
    pub auto_deploy: bool,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default)]
    pub dashboard_url: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

fn yes_no<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match String::deserialize(d)?.as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        other => Err(serde::de::Error::invalid_value(
            serde::de::Unexpected::Str(other),
            &"\"yes\" or \"no\"",
        )),
    }
}

/// The commit a deploy built.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployCommit {
    pub id: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
}

/// A Render deploy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deploy {
    pub id: String,
    pub status: DeployStatus,
    #[serde(default)]
    pub trigger: Option<DeployTrigger>,
    /// Absent for image-backed deploys.
    #[serde(default)]
    pub commit: Option<DeployCommit>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

/// One entry of a service's event log.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    pub service_id: String,
    /// `deploy_started`, `build_ended`, … (the contract's event types).
    #[serde(rename = "type")]
    pub kind: String,
    /// Shaped by `kind`; see the contract's "Deploy Ended" and siblings.
    pub details: Value,
}

impl Event {
    /// The deploy a deploy event is about.
    pub fn deploy_id(&self) -> Option<&str> {
        self.details.get("deployId").and_then(Value::as_str)
    }

    /// How a deploy or build ended: `succeeded`, `failed` or `canceled`.
    pub fn outcome(&self) -> Option<&str> {
        self.details
            .get("deployStatus")
            .or_else(|| self.details.get("buildStatus"))
            .and_then(Value::as_str)
    }
}

/// What a deploy request started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Triggered {
    /// The deploy was created (HTTP 201).
    Started(Deploy),
    /// Render queued it behind a deploy in progress (HTTP 202, no body).
    Queued,
}

/// One item of a list reply: `{"<kind>": {...}, "cursor": "..."}`.
#[derive(Deserialize)]
struct Listed<T> {
    #[serde(alias = "service", alias = "deploy", alias = "event")]
    item: T,
    cursor: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
}

/// The API key: only ever put into the `Authorization` header.
struct ApiKey(String);

/// A client for one Render account.
pub struct RenderClient {
    http: reqwest::Client,
    base: Url,
    key: ApiKey,
    timeout: Duration,
    /// Items asked for per page (Render allows up to 100).
    page: usize,
}

impl fmt::Debug for RenderClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderClient")
            .field("base", &self.base.as_str())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RenderClient {
    /// A client for the API at `base_url` (`https://api.render.com/v1`, or a
    /// simulator's `http://127.0.0.1:PORT/v1`) with [`DEFAULT_TIMEOUT`].
    pub fn new(base_url: &str, api_key: String) -> Result<Self, RenderError> {
        install_tls_provider();
        let base = Url::parse(base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .ok_or_else(|| RenderError::Transport(format!("{base_url:?} is not an http(s) URL")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(DEFAULT_TIMEOUT)
            .user_agent(concat!("flightdeck/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RenderError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            base,
            key: ApiKey(api_key),
            timeout: DEFAULT_TIMEOUT,
            page: MAX_PAGE,
        })
    }

    /// The same client with a different limit for each call.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Every service of the account.
    pub async fn list_services(&self) -> Result<Vec<Service>, RenderError> {
        self.list(&["services"], &[], usize::MAX, |_: &Service| false)
            .await
    }

    pub async fn get_service(&self, service_id: &str) -> Result<Service, RenderError> {
        self.call(Method::GET, &["services", service_id], &[], None)
            .await
    }

    /// Turns the service's auto-deploy on or off; returns the service after.
    pub async fn set_auto_deploy(
        &self,
        service_id: &str,
        on: bool,
    ) -> Result<Service, RenderError> {
        let body = json!({ "autoDeploy": if on { "yes" } else { "no" } });
        self.call(Method::PATCH, &["services", service_id], &[], Some(body))
            .await
    }

    /// Up to `max` deploys, newest first, following cursors as needed.
    pub async fn list_deploys(
        &self,
        service_id: &str,
        max: usize,
    ) -> Result<Vec<Deploy>, RenderError> {
        self.list_deploys_since(service_id, None, max).await
    }

    /// The deploys newer than `known_newest` (all of them, up to `max`,
    /// when `None` or when it is not found), newest first: what a poller
    /// has not seen yet.
    pub async fn list_deploys_since(
        &self,
        service_id: &str,
        known_newest: Option<&str>,
        max: usize,
    ) -> Result<Vec<Deploy>, RenderError> {
        self.list(
            &["services", service_id, "deploys"],
            &[],
            max,
            |d: &Deploy| Some(d.id.as_str()) == known_newest,
        )
        .await
    }

    /// One page of the service's deploys, newest first: up to `limit` (at
    /// most 100) after the deploy whose cursor is `cursor`, from the newest
    /// when `None`. `next` is the cursor to go on from, `None` after the last
    /// page (a short one).
    pub async fn deploys_page(
        &self,
        service_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Deploy>, RenderError> {
        let limit = limit.clamp(1, self.page);
        let mut query = vec![("limit", limit.to_string())];
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_owned()));
        }
        let listed: Vec<Listed<Deploy>> = self
            .call(
                Method::GET,
                &["services", service_id, "deploys"],
                &query,
                None,
            )
            .await?;
        let last = listed.last().map(|l| l.cursor.clone());
        // A short page is the last; a cursor that does not move would loop.
        let next = last.filter(|last| listed.len() >= limit && Some(last.as_str()) != cursor);
        Ok(Page {
            items: listed.into_iter().map(|l| l.item).collect(),
            next,
        })
    }

    pub async fn get_deploy(
        &self,
        service_id: &str,
        deploy_id: &str,
    ) -> Result<Deploy, RenderError> {
        self.call(
            Method::GET,
            &["services", service_id, "deploys", deploy_id],
            &[],
            None,
        )
        .await
    }

    /// Starts a deploy of `commit_id` (the branch head when `None`).
    pub async fn trigger_deploy(
        &self,
        service_id: &str,
        commit_id: Option<&str>,
        clear_cache: bool,
    ) -> Result<Triggered, RenderError> {
        let mut body = json!({ "clearCache": if clear_cache { "clear" } else { "do_not_clear" } });
        if let Some(commit) = commit_id {
            body["commitId"] = json!(commit);
        }
        let response = self
            .send(
                Method::POST,
                &["services", service_id, "deploys"],
                &[],
                Some(body),
            )
            .await?;
        if response.status() == reqwest::StatusCode::ACCEPTED {
            return Ok(Triggered::Queued);
        }
        self.decode(response).await.map(Triggered::Started)
    }

    /// Cancels a deploy in progress ([`RenderError::Conflict`] when it is not).
    pub async fn cancel_deploy(
        &self,
        service_id: &str,
        deploy_id: &str,
    ) -> Result<Deploy, RenderError> {
        self.call(
            Method::POST,
            &["services", service_id, "deploys", deploy_id, "cancel"],
            &[],
            None,
        )
        .await
    }

    /// Rolls the service back to the image of `deploy_id`; returns the new
    /// (`rollback`) deploy. Render leaves auto-deploy as it was.
    pub async fn rollback(&self, service_id: &str, deploy_id: &str) -> Result<Deploy, RenderError> {
        self.call(
            Method::POST,
            &["services", service_id, "rollback"],
            &[],
            Some(json!({ "deployId": deploy_id })),
        )
        .await
    }

    /// Up to `max` events of the last hour (Render's default window), newest first.
    pub async fn list_events(
        &self,
        service_id: &str,
        max: usize,
    ) -> Result<Vec<Event>, RenderError> {
        self.list(
            &["services", service_id, "events"],
            &[],
            max,
            |_: &Event| false,
        )
        .await
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in new: an http(s) URL has path segments")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// Pages through a list: `max` items at most, stopping before the first
    /// item for which `stop` holds.
    async fn list<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        max: usize,
        mut stop: impl FnMut(&T) -> bool,
    ) -> Result<Vec<T>, RenderError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        while items.len() < max {
            let limit = (max - items.len()).min(self.page);
            let mut page_query = query.to_vec();
            page_query.push(("limit", limit.to_string()));
            if let Some(cursor) = &cursor {
                page_query.push(("cursor", cursor.clone()));
            }
            let page: Vec<Listed<T>> = self.call(Method::GET, segments, &page_query, None).await?;
            let full = page.len() >= limit;
            let last = page.last().map(|l| l.cursor.clone());
            for listed in page {
                if stop(&listed.item) {
                    return Ok(items);
                }
                items.push(listed.item);
            }
            // A short page is the last; a cursor that does not move would loop.
            if !full || last.is_none() || last == cursor {
                break;
            }
            cursor = last;
        }
        Ok(items)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<T, RenderError> {
        let response = self.send(method, segments, query, body).await?;
        self.decode(response).await
    }

    /// Sends one request; any status but 2xx becomes its [`RenderError`].
    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<reqwest::Response, RenderError> {
        let mut request = self
            .http
            .request(method, self.url(segments))
            .bearer_auth(&self.key.0)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout);
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let metrics = crate::metrics::global();
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                let outcome = if error.is_timeout() {
                    "timeout"
                } else {
                    "transport"
                };
                metrics.upstream("render", outcome);
                return Err(self.transport(&error));
            }
        };
        metrics.upstream(
            "render",
            crate::metrics::outcome_of_status(response.status().as_u16()),
        );
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(self.refusal(response).await)
        }
    }

    async fn decode<T: DeserializeOwned>(
        &self,
        response: reqwest::Response,
    ) -> Result<T, RenderError> {
        let bytes = response.bytes().await.map_err(|e| self.transport(&e))?;
        let mut json = serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(&mut json).map_err(|e| {
            let path = e.path().to_string();
            let what = if path == "." {
                e.inner().to_string()
            } else {
                format!("{path}: {}", e.inner())
            };
            RenderError::Malformed {
                what: self.redact(&what),
            }
        })
    }

    async fn refusal(&self, response: reqwest::Response) -> RenderError {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .and_then(|v| v.parse::<u64>().ok())
        };
        // The body is read only for the message; a broken one still leaves the status.
        let msg = match response.bytes().await {
            Ok(bytes) => serde_json::from_slice::<ErrorBody>(&bytes)
                .ok()
                .and_then(|b| b.message)
                .map(|m| self.redact(&m))
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        match status {
            401 => RenderError::Unauthorized,
            404 => RenderError::NotFound,
            409 => RenderError::Conflict(msg),
            429 => RenderError::RateLimited {
                retry_after: header("retry-after")
                    .or_else(|| header("ratelimit-reset"))
                    .map(Duration::from_secs),
            },
            // GitHub-style limits (a proxy in front, or the sandbox's fault):
            // 403 with no requests left and the reset as epoch seconds.
            403 if header("x-ratelimit-remaining") == Some(0) => RenderError::RateLimited {
                retry_after: header("x-ratelimit-reset").map(|reset| {
                    let now = OffsetDateTime::now_utc().unix_timestamp();
                    Duration::from_secs(reset.saturating_sub(u64::try_from(now).unwrap_or(0)))
                }),
            },
            500..=599 => RenderError::Upstream { status },
            _ => RenderError::Refused { status, msg },
        }
    }

    fn transport(&self, error: &reqwest::Error) -> RenderError {
        if error.is_timeout() {
            return RenderError::Timeout;
        }
        // reqwest's own message is terse ("error sending request"); the
        // causes say what went wrong (refused, DNS, TLS).
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        RenderError::Transport(self.redact(&text))
    }

    /// Upstream text with the key blanked, should anything ever echo it.
    fn redact(&self, text: &str) -> String {
        let text = if self.key.0.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.key.0, "[redacted]")
        };
        text.chars().filter(|c| !c.is_control()).take(300).collect()
    }
}

#[cfg(test)]
mod tests;

/// The seam the panel reads and drives Render through; [`RenderClient`] is
/// the one real implementation (tests may put a fake behind it).
#[async_trait::async_trait]
pub trait RenderSource: Send + Sync {
    /// The service's newest deploys, newest first, at most `max`.
    async fn deploys(&self, service_id: &str, max: usize) -> Result<Vec<Deploy>, RenderError>;
    /// One page of the service's deploys, newest first, after `cursor`
    /// (see [`RenderClient::deploys_page`]).
    async fn deploys_page(
        &self,
        service_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Deploy>, RenderError>;
    async fn deploy(&self, service_id: &str, deploy_id: &str) -> Result<Deploy, RenderError>;
    async fn set_auto_deploy(&self, service_id: &str, on: bool) -> Result<Service, RenderError>;
    async fn rollback(&self, service_id: &str, deploy_id: &str) -> Result<Deploy, RenderError>;
    async fn trigger(
        &self,
        service_id: &str,
        commit_id: Option<&str>,
    ) -> Result<Triggered, RenderError>;
}

#[async_trait::async_trait]
impl RenderSource for RenderClient {
    async fn deploys(&self, service_id: &str, max: usize) -> Result<Vec<Deploy>, RenderError> {
        self.list_deploys(service_id, max).await
    }

    async fn deploys_page(
        &self,
        service_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Deploy>, RenderError> {
        RenderClient::deploys_page(self, service_id, cursor, limit).await
    }

    async fn deploy(&self, service_id: &str, deploy_id: &str) -> Result<Deploy, RenderError> {
        self.get_deploy(service_id, deploy_id).await
    }

    async fn set_auto_deploy(&self, service_id: &str, on: bool) -> Result<Service, RenderError> {
        RenderClient::set_auto_deploy(self, service_id, on).await
    }

    async fn rollback(&self, service_id: &str, deploy_id: &str) -> Result<Deploy, RenderError> {
        RenderClient::rollback(self, service_id, deploy_id).await
    }

    async fn trigger(
        &self,
        service_id: &str,
        commit_id: Option<&str>,
    ) -> Result<Triggered, RenderError> {
        self.trigger_deploy(service_id, commit_id, false).await
    }
}
