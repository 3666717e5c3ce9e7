//! The sync: keeps the panel's store current with GitHub, Render and each
//! environment's database, so that pages read only the store.
//!
//! One loop per environment runs a pass every `[sync] interval_seconds`, or
//! at once when a verified webhook pokes it. Each upstream source is synced
//! on its own: a failing one keeps its last data, records why (the pages
//! show it as a stale banner) and backs the loop off exponentially, or
//! until a rate limit resets; the others carry on. GitHub is asked with
//! the last ETag, so an unchanged list costs a 304.
//!
//! Each pass reads the newest page of deploys and runs; the first passes
//! also walk back through the older pages to `sync.history_days` (the
//! backfill, see [`backfill`]), within `sync.backfill_requests_per_pass`
//! requests per source and pass, resuming where the last pass stopped.

use crate::config::{Config, EnvironmentConfig};
use crate::integrations::database::{MigrationDatabase, SqlxMigrationDatabase};
use crate::integrations::github::{Fetched, GithubError, GithubSource, OctocrabGithub};
use crate::integrations::render::{Deploy, RenderClient, RenderError, RenderSource};
use crate::releases::{CommitRecord, DeployRecord, RunRecord};
use crate::store::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Notify;

pub mod backfill;
pub mod webhooks;

use backfill::{Backfill, Budget};

/// Source keys in the store's `sync_state`.
pub const GITHUB_RUNS: &str = "github_runs";
pub const GITHUB_COMMITS: &str = "github_commits";
pub const RENDER_DEPLOYS: &str = "render_deploys";
pub const DATABASE: &str = "database";

/// How many of the newest deploys and runs each pass looks at.
const DEPLOYS: usize = 50;
const RUNS: usize = 30;
/// Deploys per backfill page (Render's largest).
const BACKFILL_DEPLOYS: usize = 100;
/// At most this many commits' migrations directories are read per pass.
const MIGRATION_READS: usize = 8;

/// The clients of the upstreams that are configured and have their secrets.
#[derive(Clone, Default)]
pub struct Upstreams {
    pub github: Option<Arc<dyn GithubSource>>,
    pub render: Option<Arc<dyn RenderSource>>,
    /// By environment name.
    pub databases: BTreeMap<String, Arc<dyn MigrationDatabase>>,
    /// The smoke check, the notification webhook and the deploy hook.
    pub hooks: crate::integrations::hooks::Hooks,
}

impl Upstreams {
    /// Builds the real clients. A missing secret leaves that client out (the
    /// overview already names the variable to set); a client that cannot be
    /// built is logged and left out too.
    pub fn from_config(config: &Config) -> Upstreams {
        let mut upstreams = Upstreams::default();
        if let Some(github) = &config.github
            && let Some(token) = config.secret(&github.token_env)
        {
            match OctocrabGithub::new(
                github.api_url.as_str(),
                &github.owner,
                &github.repo,
                token.expose().to_owned(),
            ) {
                Ok(client) => upstreams.github = Some(Arc::new(client)),
                Err(error) => tracing::error!(%error, "the GitHub client cannot be built"),
            }
        }
        if let Some(render) = &config.render
            && let Some(key) = config.secret(&render.api_key_env)
        {
            match RenderClient::new(render.api_url.as_str(), key.expose().to_owned()) {
                Ok(client) => upstreams.render = Some(Arc::new(client)),
                Err(error) => tracing::error!(%error, "the Render client cannot be built"),
            }
        }
        for env in &config.environments {
            let Some(url) = config.secret(&env.database_url_env) else {
                continue;
            };
            match SqlxMigrationDatabase::new(url.expose()) {
                Ok(db) => {
                    upstreams
                        .databases
                        .insert(env.name.to_string(), Arc::new(db));
                }
                Err(error) => {
                    tracing::error!(environment = %env.name, %error, "the database reader cannot be built")
                }
            }
        }
        upstreams
    }
}

/// Told about every change the sync writes: (environment, what changed).
pub type OnChange = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// Why one source's sync failed, and when to try again at the earliest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: String,
    pub retry_after: Option<Duration>,
}

impl From<RenderError> for Failure {
    fn from(error: RenderError) -> Self {
        let retry_after = match &error {
            RenderError::RateLimited { retry_after } => *retry_after,
            _ => None,
        };
        Failure {
            reason: error.to_string(),
            retry_after,
        }
    }
}

impl From<GithubError> for Failure {
    fn from(error: GithubError) -> Self {
        let retry_after = match &error {
            GithubError::RateLimited { until: Some(until) } => {
                let left = *until - OffsetDateTime::now_utc();
                Some(Duration::from_secs(left.whole_seconds().max(1) as u64))
            }
            _ => None,
        };
        Failure {
            reason: error.to_string(),
            retry_after,
        }
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(error: crate::store::StoreError) -> Self {
        Failure {
            reason: format!("the panel's store failed: {error}"),
            retry_after: None,
        }
    }
}

/// What one pass over one environment did, per source.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub changed: Vec<&'static str>,
    pub failed: Vec<(&'static str, Failure)>,
}

/// The sync of every environment; cheap to clone.
#[derive(Clone)]
pub struct Syncer {
    store: Store,
    config: Arc<Config>,
    upstreams: Arc<Upstreams>,
    on_change: OnChange,
    pokes: Arc<BTreeMap<String, Arc<Notify>>>,
}

impl Syncer {
    pub fn new(
        store: Store,
        config: Arc<Config>,
        upstreams: Upstreams,
        on_change: OnChange,
    ) -> Self {
        let pokes = config
            .environments
            .iter()
            .map(|e| (e.name.to_string(), Arc::new(Notify::new())))
            .collect();
        Self {
            store,
            config,
            upstreams: Arc::new(upstreams),
            on_change,
            pokes: Arc::new(pokes),
        }
    }

    /// Makes the environment's loop run a pass now (after a webhook).
    pub fn poke(&self, environment: &str) {
        if let Some(notify) = self.pokes.get(environment) {
            notify.notify_one();
        }
    }

    /// The environments whose branch or Render service is this one.
    pub fn environments_for(&self, branch: Option<&str>, service_id: Option<&str>) -> Vec<String> {
        self.config
            .environments
            .iter()
            .filter(|e| {
                branch.is_some_and(|b| b == e.branch)
                    || service_id.is_some_and(|s| s == e.render_service_id)
            })
            .map(|e| e.name.to_string())
            .collect()
    }

    /// Starts one loop per environment; they end when the runtime does.
    pub fn spawn(&self) -> Vec<tokio::task::JoinHandle<()>> {
        self.config
            .environments
            .iter()
            .map(|env| {
                let sync = self.clone();
                let env = env.clone();
                tokio::spawn(async move { sync.run_loop(env).await })
            })
            .collect()
    }

    async fn run_loop(&self, env: EnvironmentConfig) {
        let interval = Duration::from_secs(self.config.sync.interval_seconds.max(1));
        let max_backoff = Duration::from_secs(self.config.sync.max_backoff_seconds.max(1));
        let notify = self
            .pokes
            .get(env.name.as_str())
            .cloned()
            .unwrap_or_default();
        let mut failures: u32 = 0;
        loop {
            let report = self.pass(&env).await;
            failures = if report.failed.is_empty() {
                0
            } else {
                failures.saturating_add(1)
            };
            let delay = next_delay(interval, max_backoff, failures, &report);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = notify.notified() => {}
            }
        }
    }

    /// One pass over every source of one environment; records each source's
    /// outcome in the store and tells `on_change` what changed.
    pub async fn pass(&self, env: &EnvironmentConfig) -> PassReport {
        let mut report = PassReport::default();
        let name = env.name.as_str();
        if let Some(render) = &self.upstreams.render {
            let outcome = match self.sync_render(env, render.as_ref()).await {
                Ok(newest) => match self.backfill_deploys(env, render.as_ref()).await {
                    Ok(older) => Ok(newest || older),
                    Err(failure) => {
                        if newest {
                            report.changed.push(RENDER_DEPLOYS);
                        }
                        Err(failure)
                    }
                },
                Err(failure) => Err(failure),
            };
            self.settle(name, RENDER_DEPLOYS, outcome, None, &mut report)
                .await;
        }
        if let Some(db) = self.upstreams.databases.get(name) {
            let outcome = self.sync_database(env, db.as_ref()).await;
            self.settle(name, DATABASE, outcome, None, &mut report)
                .await;
        }
        if let Some(github) = &self.upstreams.github {
            let (outcome, etag) = match self.sync_runs(env, github.as_ref()).await {
                Ok((newest, etag)) => match self.backfill_runs(env, github.as_ref()).await {
                    Ok(older) => (Ok(newest || older), etag),
                    Err(failure) => {
                        // The newest page was read: keep its ETag and say
                        // it changed, though the backfill behind it failed.
                        if let Err(error) = self
                            .store
                            .record_sync(name, GITHUB_RUNS, Ok(etag.as_deref()))
                            .await
                        {
                            tracing::error!(%error, "cannot record the sync state");
                        }
                        if newest {
                            report.changed.push(GITHUB_RUNS);
                        }
                        (Err(failure), None)
                    }
                },
                Err(f) => (Err(f), None),
            };
            self.settle(name, GITHUB_RUNS, outcome, etag.as_deref(), &mut report)
                .await;
            let outcome = self.sync_commits(env, github.as_ref()).await;
            self.settle(name, GITHUB_COMMITS, outcome, None, &mut report)
                .await;
        }
        for what in &report.changed {
            (self.on_change)(name, what);
        }
        report
    }

    async fn settle(
        &self,
        env: &str,
        source: &'static str,
        outcome: Result<bool, Failure>,
        etag: Option<&str>,
        report: &mut PassReport,
    ) {
        let recorded = match &outcome {
            Ok(changed) => {
                if *changed {
                    report.changed.push(source);
                }
                self.store.record_sync(env, source, Ok(etag)).await
            }
            Err(failure) => {
                tracing::warn!(environment = env, source, reason = %failure.reason, "sync failed");
                report.failed.push((source, failure.clone()));
                self.store
                    .record_sync(env, source, Err(&failure.reason))
                    .await
            }
        };
        if let Err(error) = recorded {
            tracing::error!(%error, "cannot record the sync state");
        }
    }

    async fn sync_render(
        &self,
        env: &EnvironmentConfig,
        render: &dyn RenderSource,
    ) -> Result<bool, Failure> {
        let deploys = render.deploys(&env.render_service_id, DEPLOYS).await?;
        let records: Vec<DeployRecord> = deploys.iter().map(|d| deploy_record(env, d)).collect();
        let known: BTreeMap<String, DeployRecord> = self
            .store
            .deploys(env.name.as_str(), DEPLOYS as i64 * 2)
            .await?
            .into_iter()
            .map(|d| (d.id.clone(), d))
            .collect();
        let changed: Vec<DeployRecord> = records
            .into_iter()
            .filter(|d| known.get(&d.id) != Some(d))
            .collect();
        if changed.is_empty() {
            return Ok(false);
        }
        self.store.upsert_deploys(&changed).await?;
        Ok(true)
    }

    /// The source's backfill as kept, or a new one (kept at once); `None`
    /// once done.
    async fn backfill_of(
        &self,
        env: &EnvironmentConfig,
        source: &str,
    ) -> Result<Option<Backfill>, Failure> {
        let kept = self
            .store
            .backfill(env.name.as_str(), source)
            .await?
            .and_then(|text| Backfill::parse(&text));
        let backfill = match kept {
            Some(kept) => kept,
            None => {
                // Kept before the first request: a pass cut short on the
                // first page leaves the next one the same horizon and
                // `until`, not the clock of whichever pass ends that page.
                let started =
                    Backfill::start(OffsetDateTime::now_utc(), self.config.sync.history_days);
                self.store
                    .set_backfill(env.name.as_str(), source, &started.to_text())
                    .await?;
                started
            }
        };
        Ok((!backfill.done).then_some(backfill))
    }

    /// Reads older deploys, page by page from the newest back to the
    /// horizon, within this pass's budget; keeps its place after each page.
    async fn backfill_deploys(
        &self,
        env: &EnvironmentConfig,
        render: &dyn RenderSource,
    ) -> Result<bool, Failure> {
        let Some(mut backfill) = self.backfill_of(env, RENDER_DEPLOYS).await? else {
            return Ok(false);
        };
        let mut budget = Budget::new(self.config.sync.backfill_requests_per_pass);
        let mut changed = false;
        while !backfill.done && budget.take() {
            let page = render
                .deploys_page(
                    &env.render_service_id,
                    backfill.next.as_deref(),
                    BACKFILL_DEPLOYS,
                )
                .await?;
            let wanted: Vec<DeployRecord> = page
                .items
                .iter()
                .filter(|d| backfill.wants(d.created_at))
                .map(|d| deploy_record(env, d))
                .collect();
            let ids: Vec<String> = wanted.iter().map(|d| d.id.clone()).collect();
            let known: BTreeSet<String> = self
                .store
                .known_deploy_ids(&ids)
                .await?
                .into_iter()
                .collect();
            // The newest page keeps the known ones current.
            let new: Vec<DeployRecord> = wanted
                .into_iter()
                .filter(|d| !known.contains(&d.id))
                .collect();
            if !new.is_empty() {
                self.store.upsert_deploys(&new).await?;
                changed = true;
            }
            let oldest = page.items.iter().map(|d| d.created_at).min();
            backfill.after_page(oldest, page.next);
            self.store
                .set_backfill(env.name.as_str(), RENDER_DEPLOYS, &backfill.to_text())
                .await?;
        }
        Ok(changed)
    }

    /// Reads older runs of the deploy workflow (with their jobs), page by
    /// page back to the horizon, within this pass's budget (every request
    /// counts, the jobs' too) and GitHub's rate limit; a page is left only
    /// once every run on it is stored, so a pass cut short reads it again
    /// and skips the runs it already has.
    async fn backfill_runs(
        &self,
        env: &EnvironmentConfig,
        github: &dyn GithubSource,
    ) -> Result<bool, Failure> {
        let Some(mut backfill) = self.backfill_of(env, GITHUB_RUNS).await? else {
            return Ok(false);
        };
        let mut budget = Budget::new(self.config.sync.backfill_requests_per_pass);
        let may_call = |budget: &mut Budget| {
            let reserve = github.rate_limit().is_some_and(|rate| {
                backfill::rate_reserve_reached(
                    rate.remaining,
                    rate.reset,
                    OffsetDateTime::now_utc(),
                )
            });
            !reserve && budget.take()
        };
        let mut changed = false;
        'pages: while !backfill.done && may_call(&mut budget) {
            let page = github
                .runs_created_page(
                    &env.deploy_workflow,
                    &env.branch,
                    backfill.horizon,
                    backfill.until,
                    backfill.next.as_deref(),
                )
                .await?;
            let ids: Vec<u64> = page.items.iter().map(|r| r.id).collect();
            let known: BTreeSet<u64> = self.store.known_run_ids(&ids).await?.into_iter().collect();
            for run in &page.items {
                if known.contains(&run.id) || !backfill.wants(run.created_at) {
                    continue;
                }
                if !may_call(&mut budget) {
                    break 'pages;
                }
                let mut run = run.clone();
                run.jobs = github.jobs(run.id).await?;
                // One by one: what was read stays read when the next call fails.
                self.store.upsert_runs(std::slice::from_ref(&run)).await?;
                changed = true;
            }
            let oldest = page.items.iter().map(|r| r.created_at).min();
            backfill.after_page(oldest, page.next);
            self.store
                .set_backfill(env.name.as_str(), GITHUB_RUNS, &backfill.to_text())
                .await?;
        }
        Ok(changed)
    }

    async fn sync_database(
        &self,
        env: &EnvironmentConfig,
        db: &dyn MigrationDatabase,
    ) -> Result<bool, Failure> {
        let versions = db.versions().await.map_err(|e| Failure {
            reason: e.to_string(),
            retry_after: None,
        })?;
        let before = self.store.database_state(env.name.as_str()).await?;
        self.store
            .set_database_state(env.name.as_str(), &versions)
            .await?;
        Ok(before.map(|b| b.versions) != Some(versions))
    }

    /// The deploy workflow's runs on the branch, with the jobs of every run
    /// that is new or has moved since the last pass. Returns the new ETag.
    async fn sync_runs(
        &self,
        env: &EnvironmentConfig,
        github: &dyn GithubSource,
    ) -> Result<(bool, Option<String>), Failure> {
        let states = self.store.sync_states().await?;
        let etag = states
            .iter()
            .find(|s| s.environment == env.name.as_str() && s.source == GITHUB_RUNS)
            .and_then(|s| s.etag.clone());
        let (runs, etag) = match github
            .runs(&env.deploy_workflow, &env.branch, RUNS, etag.as_deref())
            .await?
        {
            Fetched::NotModified => return Ok((false, None)),
            Fetched::Fresh { value, etag } => (value, etag),
        };
        let known: BTreeMap<u64, RunRecord> = self
            .store
            .runs_on_branch(&env.branch, RUNS as i64 * 3)
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        let mut changed = Vec::new();
        for mut run in runs {
            let old = known.get(&run.id);
            let moved = old.is_none_or(|old| {
                old.status != run.status
                    || old.conclusion != run.conclusion
                    || old.run_attempt != run.run_attempt
                    || old.updated_at != run.updated_at
                    || old.jobs.is_empty()
            });
            if !moved {
                continue;
            }
            if run.jobs.is_empty() {
                run.jobs = github.jobs(run.id).await?;
            }
            changed.push(run);
        }
        if !changed.is_empty() {
            self.store.upsert_runs(&changed).await?;
        }
        Ok((!changed.is_empty(), etag))
    }

    /// The commits the releases need (each deploy's and the branch's newest
    /// runs'), and the migrations directory at each of them.
    async fn sync_commits(
        &self,
        env: &EnvironmentConfig,
        github: &dyn GithubSource,
    ) -> Result<bool, Failure> {
        let deploys = self
            .store
            .deploys(env.name.as_str(), DEPLOYS as i64)
            .await?;
        let runs = self.store.runs_on_branch(&env.branch, 5).await?;
        let mut wanted: Vec<String> = Vec::new();
        let mut seen = BTreeSet::new();
        // Newest first, so the live release and the branch head come first.
        for sha in runs
            .iter()
            .map(|r| r.head_sha.clone())
            .chain(deploys.iter().map(|d| d.commit_sha.clone()))
        {
            if !sha.is_empty() && seen.insert(sha.clone()) {
                wanted.push(sha);
            }
        }
        let known: BTreeMap<String, CommitRecord> = self
            .store
            .commits_by_sha(&wanted)
            .await?
            .into_iter()
            .map(|c| (c.sha.clone(), c))
            .collect();
        let mut changed = false;
        let mut reads = 0;
        for sha in wanted {
            let mut commit = match known.get(&sha) {
                Some(c) if c.migrations.is_some() => continue,
                Some(c) => c.clone(),
                None => github.commit(&sha).await?,
            };
            if reads < MIGRATION_READS {
                reads += 1;
                commit.migrations = Some(github.migrations_at(&sha, &env.migrations_path).await?);
            }
            self.store
                .upsert_commits(std::slice::from_ref(&commit))
                .await?;
            changed = true;
        }
        Ok(changed)
    }
}

/// How long the loop waits after a pass: the interval while all is well;
/// after `failures` failing passes in a row, the interval doubled that many
/// times (at most `max_backoff`), and never less than a rate limit asks.
pub fn next_delay(
    interval: Duration,
    max_backoff: Duration,
    failures: u32,
    report: &PassReport,
) -> Duration {
    if failures == 0 {
        return interval;
    }
    let backoff = interval
        .saturating_mul(2u32.saturating_pow(failures.min(16)))
        .min(max_backoff)
        .max(interval);
    let asked = report
        .failed
        .iter()
        .filter_map(|(_, f)| f.retry_after)
        .max()
        .unwrap_or_default();
    backoff.max(asked)
}

fn deploy_record(env: &EnvironmentConfig, d: &Deploy) -> DeployRecord {
    DeployRecord {
        id: d.id.clone(),
        environment: env.name.to_string(),
        service_id: env.render_service_id.clone(),
        commit_sha: d.commit.as_ref().map(|c| c.id.clone()).unwrap_or_default(),
        commit_message: d
            .commit
            .as_ref()
            .map(|c| c.message.clone())
            .unwrap_or_default(),
        status: d.status.as_str().to_owned(),
        trigger: d
            .trigger
            .as_ref()
            .map(|t| t.as_str().to_owned())
            .unwrap_or_else(|| "unknown".to_owned()),
        created_at: d.created_at,
        updated_at: d.updated_at,
        finished_at: d.finished_at,
    }
}

#[cfg(test)]
mod tests;
