//! The application layer's read side: what the overview, the environment
//! pages and the REST API show. Everything comes from the store (the sync
//! keeps it current), so a page view never calls an upstream. Each read
//! checks the viewer role; a refusal is audited like any other.

use super::{ControlError, ControlPlane, viewer_of};
use crate::audit::RequestMeta;
use crate::config::EnvironmentConfig;
use crate::identity::Actor;
use crate::releases::{self, Release};
use crate::views::{self, Links};
use app::model::{
    EnvironmentPage, EnvironmentView, MigrationsView, Overview, ReleaseView, Role, RunView,
};

/// How many deploys a timeline looks at, and the overview (which needs
/// only the live release and the last good one before it).
const RELEASES: i64 = 100;
const OVERVIEW_RELEASES: i64 = 20;
const RUNS: i64 = 100;

impl ControlPlane {
    pub(super) fn links(&self) -> Links {
        Links {
            repository: self
                .config
                .github
                .as_ref()
                .map(|g| format!("https://github.com/{}/{}", g.owner, g.repo)),
        }
    }

    pub(super) fn environment(&self, name: &str) -> Result<&EnvironmentConfig, ControlError> {
        self.config
            .environments
            .iter()
            .find(|e| e.name.as_str() == name)
            .ok_or_else(|| ControlError::NotFound(format!("the environment {name}")))
    }

    /// The environment's releases, newest first.
    pub(super) async fn releases_of(
        &self,
        env: &EnvironmentConfig,
        limit: i64,
    ) -> Result<Vec<Release>, ControlError> {
        let deploys = self.store.deploys(env.name.as_str(), limit).await?;
        let mut shas: Vec<String> = deploys.iter().map(|d| d.commit_sha.clone()).collect();
        shas.sort();
        shas.dedup();
        let commits = self.store.commits_by_sha(&shas).await?;
        let runs = self.store.runs_for_shas(&shas).await?;
        Ok(releases::build(
            &deploys,
            &commits,
            &runs,
            &env.deploy_workflow,
        ))
    }

    async fn page<T>(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        action: &str,
        env: &str,
        items: impl AsyncFnOnce(&EnvironmentConfig) -> Result<T, ControlError>,
    ) -> Result<EnvironmentPage<T>, ControlError> {
        self.require(actor, Role::Viewer, action, meta).await?;
        let config = self.environment(env)?;
        let states = self.store.sync_states().await?;
        let summary = self
            .environment_summaries()
            .into_iter()
            .find(|s| s.name == env)
            .ok_or_else(|| ControlError::NotFound(format!("the environment {env}")))?;
        Ok(EnvironmentPage {
            viewer: viewer_of(actor),
            environment: summary,
            stale: views::stale_notices(&states, env),
            items: items(config).await?,
        })
    }

    /// Every environment with its live and last good release, the branch's
    /// newest pipeline run, the database against the live code, and stale data.
    pub async fn overview(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
    ) -> Result<Overview, ControlError> {
        self.require(actor, Role::Viewer, "overview.view", meta)
            .await?;
        // At most one store read per freshness window for all requests; the
        // sync invalidates it when it writes (see `AppState::new`).
        let stamp = self.freshness.stamp().await?;
        let version = stamp.data;
        let cached = self
            .overview_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|(v, _)| *v == version)
            .map(|(_, environments)| environments.clone());
        let environments = match cached {
            Some(environments) => environments,
            None => {
                let environments = self.environment_views().await?;
                let mut cache = self
                    .overview_cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                // A slower rebuild from an older version does not replace a newer one.
                if cache.as_ref().is_none_or(|(v, _)| *v <= version) {
                    *cache = Some((version, environments.clone()));
                }
                environments
            }
        };
        let mut environments = environments;
        for env in &mut environments {
            if let Some(one_click) = &mut env.rollback {
                one_click.idempotency_key = crate::identity::random_id();
            }
        }
        // Leads see the audit chain's state: the newest `audit.verify`
        // event, read again only after the trail has grown.
        let chain = match actor.role.allows(Role::Lead) {
            true => {
                let kept = self
                    .chain
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(stamp, &());
                match kept {
                    Some(chain) => Some(chain),
                    None => {
                        let chain = self.chain_state().await?;
                        self.chain.lock().unwrap_or_else(|p| p.into_inner()).put(
                            stamp,
                            (),
                            chain.clone(),
                        );
                        Some(chain)
                    }
                }
            }
            false => None,
        };
        Ok(Overview {
            viewer: viewer_of(actor),
            environments,
            chain,
        })
    }

    /// The overview's environments, from the store.
    async fn environment_views(&self) -> Result<Vec<EnvironmentView>, ControlError> {
        let states = self.store.sync_states().await?;
        let links = self.links();
        let mut environments = Vec::new();
        for summary in self.environment_summaries() {
            let env = self.environment(&summary.name)?;
            let releases = self.releases_of(env, OVERVIEW_RELEASES).await?;
            let live = releases.iter().find(|r| r.is_live);
            let db = self.store.database_state(&summary.name).await?;
            let branch_head_run = self
                .store
                .runs_on_branch(&env.branch, 5)
                .await?
                .into_iter()
                .find(|r| r.workflow_file == env.deploy_workflow);
            let (lock, operation) = self.lock_and_operation(&summary.name).await?;
            let rollback = self.one_click(env).await?;
            environments.push(EnvironmentView {
                lock,
                operation,
                rollback,
                database: views::database_view(db.as_ref(), live.and_then(|r| r.commit.as_ref())),
                live: live.map(|r| views::release_view(r, &links)),
                last_good: releases::last_good(&releases).map(|r| views::release_view(r, &links)),
                branch_head_run: branch_head_run.as_ref().map(views::run_view),
                stale: views::stale_notices(&states, &summary.name),
                summary,
            });
        }
        Ok(environments)
    }

    /// The release timeline of one environment, newest first.
    pub async fn timeline(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        env: &str,
    ) -> Result<EnvironmentPage<Vec<ReleaseView>>, ControlError> {
        self.release_page(actor, meta, "releases.view", env).await
    }

    /// The deploys of one environment, newest first (the same records as
    /// the timeline; the page shows the deploy's side).
    pub async fn deploys(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        env: &str,
    ) -> Result<EnvironmentPage<Vec<ReleaseView>>, ControlError> {
        self.release_page(actor, meta, "deploys.view", env).await
    }

    async fn release_page(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        action: &str,
        env: &str,
    ) -> Result<EnvironmentPage<Vec<ReleaseView>>, ControlError> {
        let links = self.links();
        self.page(actor, meta, action, env, async |config| {
            Ok(self
                .releases_of(config, RELEASES)
                .await?
                .iter()
                .map(|r| views::release_view(r, &links))
                .collect())
        })
        .await
    }

    /// The pipeline runs on the environment's branch, newest first.
    pub async fn runs(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        env: &str,
    ) -> Result<EnvironmentPage<Vec<RunView>>, ControlError> {
        self.page(actor, meta, "runs.view", env, async |config| {
            Ok(self
                .store
                .runs_on_branch(&config.branch, RUNS)
                .await?
                .iter()
                .map(views::run_view)
                .collect())
        })
        .await
    }

    /// One run, on the page of the environment whose branch it ran on.
    pub async fn run(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        id: u64,
    ) -> Result<EnvironmentPage<RunView>, ControlError> {
        self.require(actor, Role::Viewer, "runs.view", meta).await?;
        let run = self
            .store
            .run(id)
            .await?
            .ok_or_else(|| ControlError::NotFound(format!("run {id}")))?;
        let env = self
            .config
            .environments
            .iter()
            .find(|e| e.branch == run.head_branch)
            .ok_or_else(|| ControlError::NotFound(format!("run {id}")))?;
        let view = views::run_view(&run);
        self.page(actor, meta, "runs.view", env.name.as_str(), async |_| {
            Ok(view)
        })
        .await
    }

    /// The live commit's revision graph against the database.
    pub async fn migrations(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        env: &str,
    ) -> Result<EnvironmentPage<MigrationsView>, ControlError> {
        self.page(actor, meta, "migrations.view", env, async |config| {
            let releases = self.releases_of(config, RELEASES).await?;
            let db = self.store.database_state(config.name.as_str()).await?;
            let live = releases.iter().find(|r| r.is_live);
            let commit = live.and_then(|r| r.commit.clone());
            Ok(MigrationsView {
                live_deploy_id: live.map(|r| r.deploy.id.clone()),
                ..views::migrations_view(config.name.as_str(), commit.as_ref(), db.as_ref())
            })
        })
        .await
    }
}
