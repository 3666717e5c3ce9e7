//! The panel's GitHub: the [`GithubSource`] seam the rest of the server
//! reads and writes through, and its one real implementation,
//! [`OctocrabGithub`], which talks to `https://api.github.com` (or, in the
//! sandbox and the tests, to the simulated GitHub in `flightdeck_sandbox::github`)
//! with octocrab.
//!
//! Every call goes through octocrab's raw request path (`build_request` +
//! `execute`) rather than its typed API: the typed API drops the reply's
//! headers, and the panel needs them for conditional requests (`ETag` /
//! `If-None-Match` → [`Fetched::NotModified`], which GitHub does not count
//! against the rate limit) and for the rate-limit headers a poller backs off
//! on ([`OctocrabGithub::rate_limit`]). Replies are decoded into the panel's
//! own records (`crate::releases`), with the JSON path of anything that does
//! not fit in the error.
//!
//! Every call has a timeout; nothing is retried here (the caller decides,
//! e.g. after [`GithubError::RateLimited`]). The token is sent only in the
//! `Authorization` header and never appears in an error or a `Debug` output.

use super::{Page, install_tls_provider};
use crate::alembic::parse_revision;
use crate::releases::{CommitRecord, JobRecord, MigrationsAt, RunRecord, StepRecord};
use base64::Engine;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use time::OffsetDateTime;
use url::Url;

/// How long a call may take unless [`OctocrabGithub::new_with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// GitHub's largest page.
const MAX_PAGE: usize = 100;

/// GitHub's compare lists at most this many commits.
const MAX_COMPARE_COMMITS: usize = 250;

/// Why a call to GitHub failed. The messages are meant for people (they
/// appear in the panel's stale-data banner) and never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GithubError {
    #[error("GitHub refused the token (401); check the token in the configuration")]
    Unauthorized,
    /// What was looked for, e.g. "run 42" or "branch main".
    #[error("GitHub does not know {0} (404)")]
    NotFound(String),
    #[error(
        "GitHub refused to move the branch because it is not a fast-forward (the branch moved)"
    )]
    NotFastForward,
    #[error("GitHub refused the request (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    #[error("GitHub is rate limiting us {}", until_text(.until))]
    RateLimited { until: Option<OffsetDateTime> },
    #[error("GitHub is having trouble (HTTP {status}); try again shortly")]
    Upstream { status: u16 },
    #[error("GitHub answered with something that is not the expected JSON ({what})")]
    Malformed { what: String },
    #[error("GitHub did not answer in time")]
    Timeout,
    #[error("cannot reach GitHub: {0}")]
    Transport(String),
    /// The client could not be built from its configuration.
    #[error("the GitHub client is not set up right: {0}")]
    Config(String),
}

impl GithubError {
    /// Worth trying again later without changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Upstream { .. } | Self::Timeout | Self::Transport(_)
        )
    }
}

fn until_text(until: &Option<OffsetDateTime>) -> String {
    let Some(until) = until else {
        return "for now; try again later".to_owned();
    };
    let until = until.to_offset(time::UtcOffset::UTC);
    let today = OffsetDateTime::now_utc().date();
    if until.date() == today {
        format!("until {:02}:{:02} UTC", until.hour(), until.minute())
    } else {
        format!(
            "until {} {:02}:{:02} UTC",
            until.date(),
            until.hour(),
            until.minute()
        )
    }
}

/// GitHub's request budget as its last reply told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests left in the current window.
    pub remaining: u32,
    /// When the window starts again.
    pub reset: OffsetDateTime,
}

/// The result of a conditional read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched<T> {
    /// Changed (or first read): the value and the `ETag` to send next time.
    Fresh { value: T, etag: Option<String> },
    /// The first page still has the `ETag` that was sent: nothing changed.
    NotModified,
}

impl<T> Fetched<T> {
    /// The value when fresh.
    pub fn fresh(self) -> Option<T> {
        match self {
            Self::Fresh { value, .. } => Some(value),
            Self::NotModified => None,
        }
    }
}

/// How `head` relates to `base` in [`Comparison`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareStatus {
    Ahead,
    Behind,
    Identical,
    Diverged,
    /// A word this version does not know.
    #[serde(other)]
    Unknown,
}

/// A file changed between two commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedFile {
    /// The path in the repository.
    pub name: String,
    /// `added`, `removed`, `modified`, `renamed`, …
    pub status: String,
}

/// What lies between two commits (GitHub's compare).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    pub status: CompareStatus,
    pub ahead_by: u32,
    pub behind_by: u32,
    /// The commits in `head` but not in `base`, oldest first (at most 250,
    /// GitHub's limit).
    pub commits: Vec<CommitRecord>,
    /// The files changed from the merge base to `head`.
    pub files: Vec<ChangedFile>,
}

/// A pull request just opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRef {
    pub number: u64,
    pub html_url: String,
}

/// Everything the panel reads from and writes to one GitHub repository.
///
/// Runs come without jobs: every [`RunRecord`] from [`GithubSource::runs`]
/// and [`GithubSource::run`] has an empty `jobs`, because the jobs cost one
/// more call per run and a completed run's jobs never change. The caller
/// asks for the jobs it needs with [`GithubSource::jobs`], or with
/// [`GithubSource::fill_jobs`] and a filter, typically "not completed, or not
/// stored yet".
#[async_trait::async_trait]
pub trait GithubSource: Send + Sync {
    /// Up to `max` runs of `workflow_file` (e.g. `deploy.yml`) on `branch`,
    /// newest first, following pages. With `etag` (from an earlier
    /// [`Fetched::Fresh`]) the first page is asked for conditionally, and
    /// an unchanged one gives [`Fetched::NotModified`] without reading on.
    async fn runs(
        &self,
        workflow_file: &str,
        branch: &str,
        max: usize,
        etag: Option<&str>,
    ) -> Result<Fetched<Vec<RunRecord>>, GithubError>;

    /// One page (up to 100) of `workflow_file`'s runs on `branch` created
    /// between `since` and `until` (both included), newest first, without
    /// jobs: the first page when `page` is `None`, otherwise the page at
    /// `page`, a `next` from an earlier call (from GitHub's `Link` header).
    /// A window that ends in the past does not shift when new runs arrive,
    /// so its pages stay put between passes.
    async fn runs_created_page(
        &self,
        workflow_file: &str,
        branch: &str,
        since: OffsetDateTime,
        until: OffsetDateTime,
        page: Option<&str>,
    ) -> Result<Page<RunRecord>, GithubError>;

    /// GitHub's request budget as its last reply told it, when known.
    fn rate_limit(&self) -> Option<RateLimit> {
        None
    }

    /// The jobs of the run's latest attempt, in order, with their steps.
    async fn jobs(&self, run_id: u64) -> Result<Vec<JobRecord>, GithubError>;

    /// Fills `jobs` of each run for which `want` holds (one call each);
    /// returns how many were filled.
    async fn fill_jobs(
        &self,
        runs: &mut [RunRecord],
        want: &(dyn for<'r> Fn(&'r RunRecord) -> bool + Sync),
    ) -> Result<usize, GithubError> {
        let mut filled = 0;
        for run in runs.iter_mut() {
            if want(run) {
                run.jobs = self.jobs(run.id).await?;
                filled += 1;
            }
        }
        Ok(filled)
    }

    /// One run (its latest attempt), without jobs.
    async fn run(&self, run_id: u64) -> Result<RunRecord, GithubError>;

    /// Up to `max` commits reachable from `branch`, newest first; `etag` as
    /// for [`GithubSource::runs`]. `migrations` is left `None`.
    async fn commits(
        &self,
        branch: &str,
        max: usize,
        etag: Option<&str>,
    ) -> Result<Fetched<Vec<CommitRecord>>, GithubError>;

    /// One commit by sha (or any ref GitHub resolves).
    async fn commit(&self, sha: &str) -> Result<CommitRecord, GithubError>;

    /// What `head` has that `base` has not, and the other way round.
    async fn compare(&self, base: &str, head: &str) -> Result<Comparison, GithubError>;

    /// The Alembic revisions in `dir_path` at commit `sha`. A file that
    /// cannot be read or parsed, and a directory that does not exist, are
    /// `problems` (`file:line: message`), not errors.
    async fn migrations_at(&self, sha: &str, dir_path: &str) -> Result<MigrationsAt, GithubError>;

    /// Starts `workflow_file` on `git_ref` with `inputs`; returns the new run's id.
    async fn dispatch(
        &self,
        workflow_file: &str,
        git_ref: &str,
        inputs: BTreeMap<String, String>,
    ) -> Result<u64, GithubError>;

    /// Re-runs a completed run: every job, or only the failed ones.
    async fn rerun(&self, run_id: u64, failed_only: bool) -> Result<(), GithubError>;

    /// Asks GitHub to cancel a run that has not completed.
    async fn cancel(&self, run_id: u64) -> Result<(), GithubError>;

    /// The sha `branch` points at.
    async fn branch_head(&self, branch: &str) -> Result<String, GithubError>;

    /// Creates (without moving any ref) a commit whose tree is
    /// `tree_source_sha`'s tree and whose parent is `branch`'s head: the
    /// code of an older commit, on top of the branch. Returns its sha.
    async fn commit_with_tree_of(
        &self,
        branch: &str,
        tree_source_sha: &str,
        message: &str,
    ) -> Result<String, GithubError>;

    /// Moves `branch` to `new_sha` only if that is a fast-forward (never a
    /// force push); otherwise [`GithubError::NotFastForward`].
    async fn fast_forward(&self, branch: &str, new_sha: &str) -> Result<(), GithubError>;

    /// Creates `refs/heads/{name}` at `sha`.
    async fn create_branch(&self, name: &str, sha: &str) -> Result<(), GithubError>;

    /// Opens a pull request from `head` into `base`.
    async fn open_pull(
        &self,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<PullRef, GithubError>;
}

/// Names the thing a 404 is about; only built when one happens.
type What<'a> = &'a (dyn Fn() -> String + Sync);

/// Takes one page's items out of its body.
type PageItems<'a, T> = &'a (dyn Fn(&OctocrabGithub, &str) -> Result<Vec<T>, GithubError> + Sync);

/// The token: only ever put into the `Authorization` header (by octocrab).
struct Token(String);

/// The real [`GithubSource`]: octocrab against one repository.
pub struct OctocrabGithub {
    octo: octocrab::Octocrab,
    /// Scheme, host and port of the API, to check `Link` URLs against.
    origin: url::Origin,
    /// `/repos/{owner}/{repo}`, percent-encoded.
    repo_path: String,
    token: Token,
    timeout: Duration,
    /// Items asked for per page (GitHub allows up to 100).
    page: usize,
    rate: Mutex<Option<RateLimit>>,
}

impl fmt::Debug for OctocrabGithub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OctocrabGithub")
            .field("origin", &self.origin.ascii_serialization())
            .field("repo", &self.repo_path)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// One reply, read in full.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl OctocrabGithub {
    /// A client for `owner/repo` on the API at `api_url`
    /// (`https://api.github.com`, a GitHub Enterprise `…/api/v3`, or a
    /// simulator's `http://127.0.0.1:PORT`) with [`DEFAULT_TIMEOUT`].
    /// Must be called inside a Tokio runtime (octocrab starts a task).
    pub fn new(api_url: &str, owner: &str, repo: &str, token: String) -> Result<Self, GithubError> {
        Self::new_with_timeout(api_url, owner, repo, token, DEFAULT_TIMEOUT)
    }

    /// As [`OctocrabGithub::new`], with `timeout` for each call.
    pub fn new_with_timeout(
        api_url: &str,
        owner: &str,
        repo: &str,
        token: String,
        timeout: Duration,
    ) -> Result<Self, GithubError> {
        install_tls_provider();
        let base = Url::parse(api_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .ok_or_else(|| GithubError::Config(format!("{api_url:?} is not an http(s) URL")))?;
        if owner.is_empty() || repo.is_empty() {
            return Err(GithubError::Config(
                "the owner and the repository must be named".into(),
            ));
        }
        // octocrab unwraps the header it builds from the token: check first.
        if token.is_empty() || HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
            return Err(GithubError::Config(
                "the token is empty or has characters that cannot be sent in a header".into(),
            ));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(GithubError::Config(
                "the client must be created inside the Tokio runtime".into(),
            ));
        }
        let octo = octocrab::Octocrab::builder()
            .base_uri(base.as_str())
            .map_err(|_| GithubError::Config(format!("{api_url:?} is not a usable URL")))?
            .personal_token(token.clone())
            .set_connect_timeout(Some(timeout))
            .set_read_timeout(Some(timeout))
            .set_write_timeout(Some(timeout))
            .build()
            .map_err(|e| GithubError::Config(redact(&token, &e.to_string())))?;
        let repo_path = format!("/repos/{}/{}", encode_path(owner), encode_path(repo));
        Ok(Self {
            octo,
            origin: base.origin(),
            repo_path,
            token: Token(token),
            timeout,
            page: MAX_PAGE,
            rate: Mutex::new(None),
        })
    }

    /// The budget GitHub reported on its last reply, if any reply had it.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        *self.rate.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `/repos/{owner}/{repo}{rest}`.
    fn repo(&self, rest: &str) -> String {
        format!("{}{rest}", self.repo_path)
    }

    /// Sends one request and reads the whole reply, within the timeout.
    async fn send(
        &self,
        method: Method,
        uri: &str,
        body: Option<&Value>,
        headers: HeaderMap,
    ) -> Result<Reply, GithubError> {
        tracing::debug!(%method, uri, "calling GitHub");
        let work = async {
            let mut builder = http::Request::builder()
                .method(method)
                .uri(uri)
                .header(header::ACCEPT, "application/vnd.github+json");
            for (name, value) in &headers {
                builder = builder.header(name, value);
            }
            let request = self
                .octo
                .build_request(builder, body)
                .map_err(|e| self.transport(&e))?;
            let response = self
                .octo
                .execute(request)
                .await
                .map_err(|e| self.transport(&e))?;
            let (parts, body) = response.into_parts();
            let body = self
                .octo
                .body_to_string(http::Response::new(body))
                .await
                .map_err(|e| match e {
                    octocrab::Error::InvalidUtf8 { .. } => GithubError::Malformed {
                        what: "the reply is not UTF-8 text".into(),
                    },
                    e => self.transport(&e),
                })?;
            Ok(Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        let metrics = crate::metrics::global();
        let reply = match tokio::time::timeout(self.timeout, work).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(error)) => {
                metrics.upstream("github", "transport");
                return Err(error);
            }
            Err(_) => {
                metrics.upstream("github", "timeout");
                return Err(GithubError::Timeout);
            }
        };
        metrics.upstream(
            "github",
            crate::metrics::outcome_of_status(reply.status.as_u16()),
        );
        self.note_rate(&reply.headers);
        Ok(reply)
    }

    /// Sends and turns any status but 2xx (and 304, for conditional reads)
    /// into its error; `what` names the thing for a 404.
    async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<&Value>,
        headers: HeaderMap,
        what: What<'_>,
    ) -> Result<Reply, GithubError> {
        let reply = self.send(method, uri, body, headers).await?;
        if reply.status.is_success() || reply.status == StatusCode::NOT_MODIFIED {
            Ok(reply)
        } else {
            Err(self.refusal(&reply, what))
        }
    }

    async fn get<T: DeserializeOwned>(&self, uri: &str, what: What<'_>) -> Result<T, GithubError> {
        let reply = self
            .call(Method::GET, uri, None, HeaderMap::new(), what)
            .await?;
        self.decode(&reply.body)
    }

    fn note_rate(&self, headers: &HeaderMap) {
        let remaining = header_u64(headers, "x-ratelimit-remaining");
        let reset = header_u64(headers, "x-ratelimit-reset").and_then(epoch);
        if let (Some(remaining), Some(reset)) = (remaining, reset) {
            *self.rate.lock().unwrap_or_else(PoisonError::into_inner) = Some(RateLimit {
                remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
                reset,
            });
        }
    }

    fn refusal(&self, reply: &Reply, what: &dyn Fn() -> String) -> GithubError {
        let status = reply.status.as_u16();
        let message = serde_json::from_str::<ErrorBody>(&reply.body)
            .ok()
            .and_then(|b| b.message)
            .map(|m| self.redact(&m))
            .unwrap_or_default();
        let retry_after = header_u64(&reply.headers, "retry-after")
            .map(|secs| OffsetDateTime::now_utc() + Duration::from_secs(secs));
        let reset = header_u64(&reply.headers, "x-ratelimit-reset").and_then(epoch);
        let exhausted = header_u64(&reply.headers, "x-ratelimit-remaining") == Some(0);
        match status {
            401 => GithubError::Unauthorized,
            // The primary limit (no requests left), or a secondary limit
            // (GitHub then says how long to wait, or says so in words).
            403 if exhausted => GithubError::RateLimited {
                until: reset.or(retry_after),
            },
            403 if retry_after.is_some() || message.to_lowercase().contains("rate limit") => {
                GithubError::RateLimited {
                    until: retry_after.or(reset),
                }
            }
            429 => GithubError::RateLimited {
                until: retry_after.or(reset),
            },
            404 => GithubError::NotFound(what()),
            500..=599 => GithubError::Upstream { status },
            _ => GithubError::Refused { status, message },
        }
    }

    fn decode<T: DeserializeOwned>(&self, body: &str) -> Result<T, GithubError> {
        let mut json = serde_json::Deserializer::from_str(body);
        serde_path_to_error::deserialize(&mut json).map_err(|e| {
            let path = e.path().to_string();
            let what = if path == "." {
                e.inner().to_string()
            } else {
                format!("at {path}: {}", e.inner())
            };
            GithubError::Malformed {
                what: self.redact(&what),
            }
        })
    }

    fn transport(&self, error: &octocrab::Error) -> GithubError {
        // octocrab's message is terse ("Service Error: …"); the causes say
        // what went wrong (refused, DNS, TLS, a read that timed out).
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            let more = cause.to_string();
            let timed_out = cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
            if timed_out || more.contains("timed out") {
                return GithubError::Timeout;
            }
            if !text.contains(&more) {
                text.push_str(": ");
                text.push_str(&more);
            }
            source = cause.source();
        }
        GithubError::Transport(self.redact(&text))
    }

    /// Upstream text with the token blanked, should anything ever echo it.
    fn redact(&self, text: &str) -> String {
        redact(&self.token.0, text)
    }

    /// The next page's URL from a `Link` header, only if it is on this API.
    fn next_link(&self, headers: &HeaderMap) -> Result<Option<String>, GithubError> {
        let Some(link) = headers.get(header::LINK).and_then(|v| v.to_str().ok()) else {
            return Ok(None);
        };
        for part in link.split(',') {
            let mut pieces = part.split(';');
            let target = pieces.next().unwrap_or_default().trim();
            if !pieces.any(|p| p.trim() == "rel=\"next\"") {
                continue;
            }
            let target = target.trim_start_matches('<').trim_end_matches('>');
            let url = Url::parse(target).map_err(|_| GithubError::Malformed {
                what: "the Link header's next page is not a URL".into(),
            })?;
            // The token goes only to the configured API (octocrab would
            // not send it elsewhere either; the page would then be a 401).
            if url.origin() != self.origin {
                return Err(GithubError::Malformed {
                    what: "the Link header points away from the configured API".into(),
                });
            }
            return Ok(Some(url.to_string()));
        }
        Ok(None)
    }

    /// Up to `max` items from a paged list starting at `first`, the first
    /// page conditional on `etag`; `items` takes a page's items out of its body.
    async fn pages<T>(
        &self,
        first: String,
        max: usize,
        etag: Option<&str>,
        what: What<'_>,
        items: PageItems<'_, T>,
    ) -> Result<Fetched<Vec<T>>, GithubError>
    where
        T: Send,
    {
        let mut headers = HeaderMap::new();
        if let Some(etag) = etag
            && let Ok(value) = HeaderValue::from_str(etag)
        {
            headers.insert(header::IF_NONE_MATCH, value);
        }
        let mut uri = first;
        let mut found = Vec::new();
        let mut fresh_etag = None;
        let mut first_page = true;
        loop {
            let reply = self
                .call(Method::GET, &uri, None, std::mem::take(&mut headers), what)
                .await?;
            if reply.status == StatusCode::NOT_MODIFIED {
                if first_page {
                    return Ok(Fetched::NotModified);
                }
                return Err(GithubError::Malformed {
                    what: "a later page answered 304 to a request that was not conditional".into(),
                });
            }
            if first_page {
                fresh_etag = reply
                    .headers
                    .get(header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                first_page = false;
            }
            let page = items(self, &reply.body)?;
            let empty = page.is_empty();
            found.extend(page);
            if found.len() >= max {
                found.truncate(max);
                break;
            }
            match self.next_link(&reply.headers)? {
                Some(next) if !empty => uri = next,
                _ => break,
            }
        }
        Ok(Fetched::Fresh {
            value: found,
            etag: fresh_etag,
        })
    }

    fn per_page(&self, max: usize) -> usize {
        max.clamp(1, self.page)
    }

    async fn post(
        &self,
        uri: &str,
        body: Option<&Value>,
        what: What<'_>,
    ) -> Result<Reply, GithubError> {
        self.call(Method::POST, uri, body, HeaderMap::new(), what)
            .await
    }
}

fn redact(token: &str, text: &str) -> String {
    let text = if token.is_empty() {
        text.to_owned()
    } else {
        text.replace(token, "[redacted]")
    };
    text.chars().filter(|c| !c.is_control()).take(300).collect()
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// A time as GitHub's search syntax takes it: UTC, whole seconds.
fn github_time(t: OffsetDateTime) -> String {
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

fn epoch(seconds: u64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(i64::try_from(seconds).ok()?).ok()
}

/// Percent-encodes a path, keeping its `/`s.
fn encode_path(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn query(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
}

// GitHub's shapes, reduced to what the records need.

#[derive(Deserialize)]
struct GhRunsPage {
    workflow_runs: Vec<GhRun>,
}

#[derive(Deserialize)]
struct GhRun {
    id: u64,
    /// `.github/workflows/deploy.yml`, sometimes with `@ref` after it.
    path: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    display_title: Option<String>,
    head_sha: String,
    head_branch: Option<String>,
    event: String,
    status: Option<String>,
    conclusion: Option<String>,
    #[serde(default)]
    run_attempt: Option<u32>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    html_url: String,
}

impl From<GhRun> for RunRecord {
    fn from(run: GhRun) -> Self {
        let file = run.path.split('@').next().unwrap_or_default();
        let workflow_file = file.rsplit('/').next().unwrap_or(file).to_owned();
        RunRecord {
            id: run.id,
            workflow_file,
            name: run.display_title.or(run.name).unwrap_or_default(),
            head_sha: run.head_sha,
            head_branch: run.head_branch.unwrap_or_default(),
            event: run.event,
            status: run.status.unwrap_or_else(|| "queued".to_owned()),
            conclusion: run.conclusion,
            run_attempt: run.run_attempt.unwrap_or(1),
            created_at: run.created_at,
            updated_at: run.updated_at,
            html_url: run.html_url,
            jobs: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
struct GhJobsPage {
    jobs: Vec<GhJob>,
}

#[derive(Deserialize)]
struct GhJob {
    name: String,
    status: String,
    conclusion: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    started_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    completed_at: Option<OffsetDateTime>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    steps: Option<Vec<GhStep>>,
}

#[derive(Deserialize)]
struct GhStep {
    number: u32,
    name: String,
    status: String,
    conclusion: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    started_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    completed_at: Option<OffsetDateTime>,
}

impl From<GhJob> for JobRecord {
    fn from(job: GhJob) -> Self {
        JobRecord {
            name: job.name,
            status: job.status,
            conclusion: job.conclusion,
            started_at: job.started_at,
            completed_at: job.completed_at,
            html_url: job.html_url.unwrap_or_default(),
            steps: job
                .steps
                .unwrap_or_default()
                .into_iter()
                .map(|s| StepRecord {
                    number: s.number,
                    name: s.name,
                    status: s.status,
                    conclusion: s.conclusion,
                    started_at: s.started_at,
                    completed_at: s.completed_at,
                })
                .collect(),
        }
    }
}

#[derive(Deserialize)]
struct GhCommit {
    sha: String,
    html_url: String,
    commit: GhGitCommit,
    /// The GitHub account of the author, when the e-mail maps to one.
    author: Option<GhAccount>,
}

#[derive(Deserialize)]
struct GhGitCommit {
    message: String,
    author: Option<GhSignature>,
    committer: Option<GhSignature>,
}

#[derive(Deserialize)]
struct GhSignature {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    date: Option<OffsetDateTime>,
}

#[derive(Deserialize)]
struct GhAccount {
    login: String,
}

impl GhCommit {
    fn record(self) -> Result<CommitRecord, GithubError> {
        let date = |s: &Option<GhSignature>| s.as_ref().and_then(|s| s.date);
        let committed_at = date(&self.commit.committer)
            .or(date(&self.commit.author))
            .ok_or_else(|| GithubError::Malformed {
                what: format!("commit {} has no date", self.sha),
            })?;
        Ok(CommitRecord {
            author: self.commit.author.and_then(|a| a.name).unwrap_or_default(),
            author_login: self.author.map(|a| a.login),
            committed_at,
            message: self.commit.message,
            html_url: self.html_url,
            sha: self.sha,
            migrations: None,
        })
    }
}

fn records(commits: Vec<GhCommit>) -> Result<Vec<CommitRecord>, GithubError> {
    commits.into_iter().map(GhCommit::record).collect()
}

#[derive(Deserialize)]
struct GhCompare {
    status: CompareStatus,
    ahead_by: u32,
    behind_by: u32,
    commits: Vec<GhCommit>,
    #[serde(default)]
    files: Option<Vec<GhFile>>,
}

#[derive(Deserialize)]
struct GhCompareCommits {
    commits: Vec<GhCommit>,
}

#[derive(Deserialize)]
struct GhFile {
    filename: String,
    status: String,
}

#[derive(Deserialize)]
struct GhEntry {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    path: String,
}

#[derive(Deserialize)]
struct GhFileContent {
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct GhRef {
    object: GhObject,
}

#[derive(Deserialize)]
struct GhObject {
    sha: String,
}

#[derive(Deserialize)]
struct GhGitCommitObject {
    sha: String,
    tree: GhObject,
}

#[derive(Deserialize)]
struct GhDispatched {
    workflow_run_id: u64,
}

/// Alembic loads every `.py` file of the versions directory except
/// `__init__` and editor lock files (its `_only_source_rev_file` pattern).
fn is_revision_file(name: &str) -> bool {
    name.ends_with(".py") && !name.starts_with("__init__") && !name.starts_with(".#")
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

#[async_trait::async_trait]
impl GithubSource for OctocrabGithub {
    async fn runs(
        &self,
        workflow_file: &str,
        branch: &str,
        max: usize,
        etag: Option<&str>,
    ) -> Result<Fetched<Vec<RunRecord>>, GithubError> {
        let per_page = self.per_page(max).to_string();
        let uri = format!(
            "{}?{}",
            self.repo(&format!(
                "/actions/workflows/{}/runs",
                encode_path(workflow_file)
            )),
            query(&[
                ("branch", branch),
                ("per_page", &per_page),
                ("exclude_pull_requests", "true"),
            ])
        );
        let what = || format!("the workflow {workflow_file}");
        self.pages(uri, max, etag, &what, &|me, body| {
            let page: GhRunsPage = me.decode(body)?;
            Ok(page
                .workflow_runs
                .into_iter()
                .map(RunRecord::from)
                .collect())
        })
        .await
    }

    async fn runs_created_page(
        &self,
        workflow_file: &str,
        branch: &str,
        since: OffsetDateTime,
        until: OffsetDateTime,
        page: Option<&str>,
    ) -> Result<Page<RunRecord>, GithubError> {
        let uri = match page {
            // A page kept in the store goes only to the configured API.
            Some(next) => match Url::parse(next) {
                Ok(url) if url.origin() == self.origin => next.to_owned(),
                _ => {
                    return Err(GithubError::Malformed {
                        what: "the next page is not on the configured API".into(),
                    });
                }
            },
            None => format!(
                "{}?{}",
                self.repo(&format!(
                    "/actions/workflows/{}/runs",
                    encode_path(workflow_file)
                )),
                query(&[
                    ("branch", branch),
                    ("per_page", &self.page.to_string()),
                    ("exclude_pull_requests", "true"),
                    (
                        "created",
                        &format!("{}..{}", github_time(since), github_time(until)),
                    ),
                ])
            ),
        };
        let what = || format!("the workflow {workflow_file}");
        let reply = self
            .call(Method::GET, &uri, None, HeaderMap::new(), &what)
            .await?;
        let runs: GhRunsPage = self.decode(&reply.body)?;
        let next = match runs.workflow_runs.is_empty() {
            true => None,
            false => self.next_link(&reply.headers)?,
        };
        Ok(Page {
            items: runs
                .workflow_runs
                .into_iter()
                .map(RunRecord::from)
                .collect(),
            next,
        })
    }

    fn rate_limit(&self) -> Option<RateLimit> {
        OctocrabGithub::rate_limit(self)
    }

    async fn jobs(&self, run_id: u64) -> Result<Vec<JobRecord>, GithubError> {
        let uri = format!(
            "{}?{}",
            self.repo(&format!("/actions/runs/{run_id}/jobs")),
            query(&[("filter", "latest"), ("per_page", &self.page.to_string())])
        );
        let what = || format!("run {run_id}");
        let fetched = self
            .pages(uri, usize::MAX, None, &what, &|me, body| {
                let page: GhJobsPage = me.decode(body)?;
                Ok(page.jobs.into_iter().map(JobRecord::from).collect())
            })
            .await?;
        Ok(fetched.fresh().unwrap_or_default())
    }

    async fn run(&self, run_id: u64) -> Result<RunRecord, GithubError> {
        let run: GhRun = self
            .get(&self.repo(&format!("/actions/runs/{run_id}")), &|| {
                format!("run {run_id}")
            })
            .await?;
        Ok(run.into())
    }

    async fn commits(
        &self,
        branch: &str,
        max: usize,
        etag: Option<&str>,
    ) -> Result<Fetched<Vec<CommitRecord>>, GithubError> {
        let per_page = self.per_page(max).to_string();
        let uri = format!(
            "{}?{}",
            self.repo("/commits"),
            query(&[("sha", branch), ("per_page", &per_page)])
        );
        let what = || format!("branch {branch}");
        self.pages(uri, max, etag, &what, &|me, body| {
            records(me.decode::<Vec<GhCommit>>(body)?)
        })
        .await
    }

    async fn commit(&self, sha: &str) -> Result<CommitRecord, GithubError> {
        let uri = self.repo(&format!("/commits/{}", encode_path(sha)));
        let commit: GhCommit = match self.get(&uri, &|| format!("commit {sha}")).await {
            // GitHub answers an unknown sha with 422 "No commit found for SHA".
            Err(GithubError::Refused { status: 422, .. }) => {
                return Err(GithubError::NotFound(format!("commit {sha}")));
            }
            other => other?,
        };
        commit.record()
    }

    async fn compare(&self, base: &str, head: &str) -> Result<Comparison, GithubError> {
        let uri = format!(
            "{}?{}",
            self.repo(&format!(
                "/compare/{}...{}",
                encode_path(base),
                encode_path(head)
            )),
            query(&[("per_page", &self.page.to_string())])
        );
        let what = || format!("{base} or {head}");
        let reply = self
            .call(Method::GET, &uri, None, HeaderMap::new(), &what)
            .await?;
        let first: GhCompare = self.decode(&reply.body)?;
        let mut commits = records(first.commits)?;
        let mut next = self.next_link(&reply.headers)?;
        // Later pages carry more commits (GitHub lists 250 at most).
        while let Some(uri) = next.take() {
            if commits.len() >= MAX_COMPARE_COMMITS {
                break;
            }
            let reply = self
                .call(Method::GET, &uri, None, HeaderMap::new(), &what)
                .await?;
            let page: GhCompareCommits = self.decode(&reply.body)?;
            if page.commits.is_empty() {
                break;
            }
            commits.extend(records(page.commits)?);
            next = self.next_link(&reply.headers)?;
        }
        Ok(Comparison {
            status: first.status,
            ahead_by: first.ahead_by,
            behind_by: first.behind_by,
            commits,
            files: first
                .files
                .unwrap_or_default()
                .into_iter()
                .map(|f| ChangedFile {
                    name: f.filename,
                    status: f.status,
                })
                .collect(),
        })
    }

    async fn migrations_at(&self, sha: &str, dir_path: &str) -> Result<MigrationsAt, GithubError> {
        let dir = dir_path.trim_matches('/');
        let contents = |path: &str| {
            format!(
                "{}?{}",
                self.repo(&format!("/contents/{}", encode_path(path))),
                query(&[("ref", sha)])
            )
        };
        let mut found = MigrationsAt::default();
        let reply = self
            .send(Method::GET, &contents(dir), None, HeaderMap::new())
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            let message = serde_json::from_str::<ErrorBody>(&reply.body)
                .ok()
                .and_then(|b| b.message)
                .unwrap_or_default();
            // The same 404 says "the commit does not exist": that is an error.
            if message.starts_with("No commit found") {
                return Err(GithubError::NotFound(format!("commit {sha}")));
            }
            found
                .problems
                .push(format!("{dir} does not exist at commit {}", short(sha)));
            return Ok(found);
        }
        if !reply.status.is_success() {
            return Err(self.refusal(&reply, &|| format!("{dir} at {sha}")));
        }
        let listing: Value = self.decode(&reply.body)?;
        if !listing.is_array() {
            found.problems.push(format!(
                "{dir} is a file at commit {}, not a directory",
                short(sha)
            ));
            return Ok(found);
        }
        let entries: Vec<GhEntry> = self.decode(&reply.body)?;
        for entry in entries {
            if entry.kind != "file" || !is_revision_file(&entry.name) {
                continue;
            }
            let file: GhFileContent = self
                .get(&contents(&entry.path), &|| {
                    format!("{} at {sha}", entry.path)
                })
                .await?;
            let text = match (file.encoding.as_deref(), file.content) {
                (Some("base64"), Some(content)) => {
                    let packed: String = content.split_whitespace().collect();
                    base64::engine::general_purpose::STANDARD
                        .decode(packed)
                        .ok()
                        .and_then(|bytes| String::from_utf8(bytes).ok())
                }
                _ => None,
            };
            let Some(text) = text else {
                found.problems.push(format!(
                    "{}: GitHub did not send the file as base64 UTF-8 text (a file over 1 MB is sent without content)",
                    entry.name
                ));
                continue;
            };
            match parse_revision(&entry.name, &text) {
                Ok(revision) => found.revisions.push(revision),
                Err(e) => found.problems.push(e.to_string()),
            }
        }
        Ok(found)
    }

    async fn dispatch(
        &self,
        workflow_file: &str,
        git_ref: &str,
        inputs: BTreeMap<String, String>,
    ) -> Result<u64, GithubError> {
        let uri = self.repo(&format!(
            "/actions/workflows/{}/dispatches",
            encode_path(workflow_file)
        ));
        let body = json!({ "ref": git_ref, "inputs": inputs, "return_run_details": true });
        let reply = self
            .post(&uri, Some(&body), &|| {
                format!("the workflow {workflow_file}")
            })
            .await?;
        if reply.status == StatusCode::NO_CONTENT {
            return Err(GithubError::Malformed {
                what: "the dispatch reply has no run id (this GitHub ignores return_run_details)"
                    .into(),
            });
        }
        let dispatched: GhDispatched = self.decode(&reply.body)?;
        Ok(dispatched.workflow_run_id)
    }

    async fn rerun(&self, run_id: u64, failed_only: bool) -> Result<(), GithubError> {
        let action = if failed_only {
            "rerun-failed-jobs"
        } else {
            "rerun"
        };
        let uri = self.repo(&format!("/actions/runs/{run_id}/{action}"));
        self.post(&uri, None, &|| format!("run {run_id}")).await?;
        Ok(())
    }

    async fn cancel(&self, run_id: u64) -> Result<(), GithubError> {
        let uri = self.repo(&format!("/actions/runs/{run_id}/cancel"));
        self.post(&uri, None, &|| format!("run {run_id}")).await?;
        Ok(())
    }

    async fn branch_head(&self, branch: &str) -> Result<String, GithubError> {
        let uri = self.repo(&format!("/git/ref/heads/{}", encode_path(branch)));
        let found: GhRef = self.get(&uri, &|| format!("branch {branch}")).await?;
        Ok(found.object.sha)
    }

    async fn commit_with_tree_of(
        &self,
        branch: &str,
        tree_source_sha: &str,
        message: &str,
    ) -> Result<String, GithubError> {
        let head = self.branch_head(branch).await?;
        let source: GhGitCommitObject = self
            .get(
                &self.repo(&format!("/git/commits/{}", encode_path(tree_source_sha))),
                &|| format!("commit {tree_source_sha}"),
            )
            .await?;
        let body = json!({ "message": message, "tree": source.tree.sha, "parents": [head] });
        let reply = self
            .post(&self.repo("/git/commits"), Some(&body), &|| {
                "the repository".to_owned()
            })
            .await?;
        let created: GhGitCommitObject = self.decode(&reply.body)?;
        Ok(created.sha)
    }

    async fn fast_forward(&self, branch: &str, new_sha: &str) -> Result<(), GithubError> {
        let uri = self.repo(&format!("/git/refs/heads/{}", encode_path(branch)));
        let body = json!({ "sha": new_sha, "force": false });
        let result = self
            .call(Method::PATCH, &uri, Some(&body), HeaderMap::new(), &|| {
                format!("branch {branch}")
            })
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(GithubError::Refused {
                status: 422,
                message,
            }) => {
                let lower = message.to_lowercase();
                if lower.contains("fast forward") || lower.contains("fast-forward") {
                    Err(GithubError::NotFastForward)
                } else if lower.contains("reference does not exist") {
                    Err(GithubError::NotFound(format!("branch {branch}")))
                } else {
                    Err(GithubError::Refused {
                        status: 422,
                        message,
                    })
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn create_branch(&self, name: &str, sha: &str) -> Result<(), GithubError> {
        let body = json!({ "ref": format!("refs/heads/{name}"), "sha": sha });
        self.post(&self.repo("/git/refs"), Some(&body), &|| {
            "the repository".to_owned()
        })
        .await?;
        Ok(())
    }

    async fn open_pull(
        &self,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<PullRef, GithubError> {
        let request = json!({ "title": title, "head": head, "base": base, "body": body });
        let reply = self
            .post(&self.repo("/pulls"), Some(&request), &|| {
                "the repository".to_owned()
            })
            .await?;
        self.decode(&reply.body)
    }
}

#[cfg(test)]
mod tests;
