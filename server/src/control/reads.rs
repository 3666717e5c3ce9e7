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

/// How many deploys the migrations page looks at, and the overview (which
/// needs only the live release and the last good one before it).
const RELEASES: i64 = 100;
const OVERVIEW_RELEASES: i64 = 20;
/// How many releases, deploys or runs a page shows unless asked, and at most.
pub const PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 500;

/// Which keyset page of a list to show: the items just older than
/// `cursor` (a `next_cursor` given before; the newest when None), at most
/// `limit` of them ([`PAGE`] when None). Never an offset: a page stays the
/// same while newer items arrive.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct PageAsk {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

impl PageAsk {
    /// The page that starts after `cursor` (the first: None), of the
    /// default size.
    pub fn from_cursor(cursor: Option<String>) -> Self {
        Self {
            cursor,
            limit: None,
        }
    }

    /// The limit asked for, checked.
    fn limit(&self) -> Result<i64, ControlError> {
        let limit = self.limit.unwrap_or(PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ControlError::Invalid(format!(
                "`limit` must be between 1 and {MAX_PAGE}, not {limit}"
            )));
        }
        Ok(limit)
    }

    /// The cursor asked for as (creation time as the store writes it, id).
    fn after(&self) -> Result<Option<(String, String)>, ControlError> {
        self.cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(parse_cursor)
            .transpose()
    }
}

/// The cursor of the page after an item: its creation time and its id.
fn cursor_of(created_at: time::OffsetDateTime, id: &str) -> String {
    format!("{}~{id}", crate::store::sync::store_time(created_at))
}

fn parse_cursor(text: &str) -> Result<(String, String), ControlError> {
    let invalid = || ControlError::Invalid(format!("`cursor` {text:?} is not one this panel gave"));
    let (at, id) = text.split_once('~').ok_or_else(invalid)?;
    let at = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .map_err(|_| invalid())?;
    if id.is_empty() {
        return Err(invalid());
    }
    Ok((crate::store::sync::store_time(at), id.to_owned()))
}

/// One more item than shown tells whether there is a next page.
fn split_page<T>(
    mut items: Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next = more.then(|| items.last().map(&cursor)).flatten();
    (items, next)
}

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
        self.releases_for(env, &deploys).await
    }

    /// The newest `limit` releases, and older pages of `limit` after them
    /// until the one a rollback wants is among them: the deploy `target`,
    /// or (None) the last good release before the live one. A rollback
    /// target can be far older than the newest page (the sync keeps the
    /// history back to `sync.history_days`).
    pub(super) async fn releases_reaching(
        &self,
        env: &EnvironmentConfig,
        limit: i64,
        target: Option<&str>,
    ) -> Result<Vec<Release>, ControlError> {
        let mut releases = self.releases_of(env, limit).await?;
        let mut more = releases.len() as i64 >= limit;
        while more {
            let found = match target {
                Some(id) => releases.iter().any(|r| r.deploy.id == id),
                // Without a live release in view there is nothing to look
                // back from.
                None => {
                    !releases.iter().any(|r| r.is_live) || releases::last_good(&releases).is_some()
                }
            };
            let Some(last) = releases.last().filter(|_| !found) else {
                break;
            };
            let at = crate::store::sync::store_time(last.deploy.created_at);
            let deploys = self
                .store
                .deploys_before(env.name.as_str(), (&at, &last.deploy.id), limit)
                .await?;
            more = deploys.len() as i64 >= limit;
            releases.extend(self.releases_for(env, &deploys).await?);
        }
        Ok(releases)
    }

    /// These deploys as releases, with their commits and pipeline runs.
    async fn releases_for(
        &self,
        env: &EnvironmentConfig,
        deploys: &[crate::releases::DeployRecord],
    ) -> Result<Vec<Release>, ControlError> {
        let mut shas: Vec<String> = deploys.iter().map(|d| d.commit_sha.clone()).collect();
        shas.sort();
        shas.dedup();
        let commits = self.store.commits_by_sha(&shas).await?;
        let runs = self.store.runs_for_shas(&shas).await?;
        Ok(releases::build(
            deploys,
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
            next_cursor: None,
        })
    }

    /// A page whose items are one keyset page of a list, with its next cursor.
    async fn keyset_page<T>(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        action: &str,
        env: &str,
        items: impl AsyncFnOnce(&EnvironmentConfig) -> Result<(Vec<T>, Option<String>), ControlError>,
    ) -> Result<EnvironmentPage<Vec<T>>, ControlError> {
        let page = self.page(actor, meta, action, env, items).await?;
        let (items, next_cursor) = page.items;
        Ok(EnvironmentPage {
            viewer: page.viewer,
            environment: page.environment,
            stale: page.stale,
            items,
            next_cursor,
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
            let releases = self.releases_reaching(env, OVERVIEW_RELEASES, None).await?;
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

    /// The release timeline of one environment, newest first: the first page.
    pub async fn timeline(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        env: &str,
    ) -> Result<EnvironmentPage<Vec<ReleaseView>>, ControlError> {
        self.timeline_page(actor, meta, env, &PageAsk::default())
            .await
    }

    /// One keyset page of the release timeline, newest first.
    pub async fn timeline_page(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        env: &str,
        ask: &PageAsk,
    ) -> Result<EnvironmentPage<Vec<ReleaseView>>, ControlError> {
        self.release_page(actor, meta, "releases.view", env, ask)
            .await
    }

    /// One keyset page of the environment's deploys, newest first.
    pub async fn deploys_page(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        env: &str,
        ask: &PageAsk,
    ) -> Result<EnvironmentPage<Vec<ReleaseView>>, ControlError> {
        self.release_page(actor, meta, "deploys.view", env, ask)
            .await
    }

    async fn release_page(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        action: &str,
        env: &str,
        ask: &PageAsk,
    ) -> Result<EnvironmentPage<Vec<ReleaseView>>, ControlError> {
        let links = self.links();
        self.keyset_page(actor, meta, action, env, async |config| {
            let limit = ask.limit()?;
            let after = ask.after()?;
            let name = config.name.as_str();
            let deploys = match &after {
                None => self.store.deploys(name, limit + 1).await?,
                Some((at, id)) => {
                    self.store
                        .deploys_before(name, (at.as_str(), id.as_str()), limit + 1)
                        .await?
                }
            };
            let (deploys, next) = split_page(deploys, limit, |d| cursor_of(d.created_at, &d.id));
            let releases = self.releases_for(config, &deploys).await?;
            Ok((
                releases
                    .iter()
                    .map(|r| views::release_view(r, &links))
                    .collect(),
                next,
            ))
        })
        .await
    }

    /// One keyset page of the runs on the environment's branch, newest first.
    pub async fn runs_page(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        env: &str,
        ask: &PageAsk,
    ) -> Result<EnvironmentPage<Vec<RunView>>, ControlError> {
        self.keyset_page(actor, meta, "runs.view", env, async |config| {
            let limit = ask.limit()?;
            let after = match ask.after()? {
                None => None,
                Some((at, id)) => {
                    let id: u64 = id.parse().map_err(|_| {
                        ControlError::Invalid("`cursor` is not one this panel gave".into())
                    })?;
                    Some((at, id))
                }
            };
            let runs = match &after {
                None => self.store.runs_on_branch(&config.branch, limit + 1).await?,
                Some((at, id)) => {
                    self.store
                        .runs_before(&config.branch, (at.as_str(), *id), limit + 1)
                        .await?
                }
            };
            let (runs, next) =
                split_page(runs, limit, |r| cursor_of(r.created_at, &r.id.to_string()));
            Ok((runs.iter().map(views::run_view).collect(), next))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_names_an_items_time_and_id_and_reads_back() {
        let at = time::macros::datetime!(2026-11-30 08:15:02.5 UTC);
        let cursor = cursor_of(at, "dep-d0abc");
        assert_eq!(cursor, "2026-11-30T08:15:02.500000Z~dep-d0abc");
        assert_eq!(
            parse_cursor(&cursor).unwrap(),
            (
                "2026-11-30T08:15:02.500000Z".to_owned(),
                "dep-d0abc".to_owned()
            )
        );
    }

    #[test]
    fn a_cursor_the_panel_did_not_give_is_refused() {
        for bad in ["", "12", "yesterday~dep-1", "2026-11-30T08:15:02Z~", "50"] {
            assert!(
                matches!(parse_cursor(bad), Err(ControlError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_page_is_its_limit_and_the_cursor_of_its_last_item_when_more_follow() {
        let (items, next) = split_page(vec![5, 4, 3], 2, |n| n.to_string());
        assert_eq!((items, next), (vec![5, 4], Some("4".to_owned())));
        let (items, next) = split_page(vec![5, 4], 2, |n| n.to_string());
        assert_eq!((items, next), (vec![5, 4], None));
    }

    #[test]
    fn a_limit_outside_the_bounds_is_refused() {
        for limit in [0, -1, MAX_PAGE + 1] {
            let ask = PageAsk {
                cursor: None,
                limit: Some(limit),
            };
            assert!(matches!(ask.limit(), Err(ControlError::Invalid(_))));
        }
        assert_eq!(PageAsk::default().limit().unwrap(), PAGE);
    }
}
