//! The application layer. Every action from every entry point (pages,
//! server functions, REST, CLI) comes through here: it takes the actor,
//! checks the role, writes the audit event, and only then acts.

use crate::audit::{NewEvent, Outcome, RequestMeta};
use crate::config::Config;
use crate::identity::{self, Actor, User};
use crate::store::{Store, StoreError};
use app::model::{Account, AdminView, EnvironmentSummary, Role, Viewer};
use freshness::{ByAudit, Freshness};
use serde_json::json;
use std::sync::{Arc, Mutex};

pub mod audit;
pub mod freshness;
pub mod locks;
pub mod operations;
mod reads;
pub mod tokens;

pub use operations::{DeployAsk, RollbackAsk, RunAction, Started};
pub use reads::PageAsk;

/// Why an action was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("sign in first")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} was not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// Too many attempts; try again after this many seconds.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_seconds: u64,
    },
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
}

impl From<domain::InvalidValue> for ControlError {
    fn from(error: domain::InvalidValue) -> Self {
        ControlError::Invalid(error.to_string())
    }
}

/// Failed sign-ins for one account name within [`SIGN_IN_WINDOW`] after
/// which sign-in is refused (429) until the window has passed.
pub const FAILED_SIGN_INS: i64 = 5;
/// See [`FAILED_SIGN_INS`].
pub const SIGN_IN_WINDOW: time::Duration = time::Duration::minutes(15);

/// The application layer; cheap to clone.
#[derive(Clone)]
pub struct ControlPlane {
    store: Store,
    config: Arc<Config>,
    /// What the caches below are checked against (see [`freshness`]).
    freshness: Freshness,
    /// The overview's environments, built from the synced data of one
    /// `data_version`; rebuilt when the sync has written since.
    overview_cache: Arc<Mutex<Option<CachedEnvironments>>>,
    /// The actor behind each user id seen in a session (`None`: disabled or
    /// gone), while no account can have changed.
    accounts: Arc<Mutex<ByAudit<i64, Option<Actor>>>>,
    /// The audit chain's newest verification, while no audit event (so no
    /// verification) has been written since.
    chain: Arc<Mutex<ByAudit<(), app::model::ChainState>>>,
    /// Carries operations out; None for a panel that only reads (tests, CLI).
    executor: Option<crate::operations::Executor>,
    /// Told when an operation changes, for live pages.
    on_change: Option<crate::sync::OnChange>,
    /// Holds a request at a [`Pause`] point; only tests set it.
    pause: Option<PauseHook>,
}

/// Points in a request where a test can hold it, to make a race between
/// two requests happen in one chosen order instead of by chance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pause {
    /// A rollback looked its Idempotency-Key up, found nothing, and is
    /// about to plan.
    AfterKeyLookup,
}

/// What a request awaits at a [`Pause`] point.
pub(crate) type PauseHook =
    Arc<dyn Fn(Pause) -> futures_util::future::BoxFuture<'static, ()> + Send + Sync>;

/// The overview's environments and the `data_version` they were built at.
type CachedEnvironments = (i64, Vec<app::model::EnvironmentView>);

impl ControlPlane {
    pub fn new(store: Store, config: Arc<Config>) -> Self {
        Self {
            freshness: Freshness::new(store.clone()),
            store,
            config,
            overview_cache: Arc::default(),
            accounts: Arc::default(),
            chain: Arc::default(),
            executor: None,
            on_change: None,
            pause: None,
        }
    }

    /// Holds requests at [`Pause`] points with `hook` (tests only).
    #[cfg(test)]
    pub(crate) fn with_pause(mut self, hook: PauseHook) -> Self {
        self.pause = Some(hook);
        self
    }

    async fn pause(&self, at: Pause) {
        if let Some(hook) = &self.pause {
            hook(at).await;
        }
    }

    /// Acts upstream through `upstreams` (rollbacks, deploys, CI actions)
    /// and announces changes through `on_change`.
    pub fn with_upstreams(
        mut self,
        upstreams: crate::sync::Upstreams,
        on_change: crate::sync::OnChange,
    ) -> Self {
        self.executor = Some(crate::operations::Executor::new(
            self.store.clone(),
            self.config.clone(),
            upstreams,
            on_change.clone(),
        ));
        self.on_change = Some(on_change);
        self
    }

    /// The executor, when this panel acts upstream.
    pub fn executor(&self) -> Option<&crate::operations::Executor> {
        self.executor.as_ref()
    }

    /// The coalesced check the in-memory caches (here and the session
    /// cache) are keyed on.
    pub fn freshness(&self) -> &Freshness {
        &self.freshness
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configuration, shared (for the sync, which outlives a request).
    pub fn shared_config(&self) -> Arc<Config> {
        self.config.clone()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Checks that `actor` has `required`; a refusal is audited.
    async fn require(
        &self,
        actor: &Actor,
        required: Role,
        action: &str,
        meta: &RequestMeta,
    ) -> Result<(), ControlError> {
        self.require_on(actor, required, action, None, meta).await
    }

    /// [`Self::require`] for an action on an environment: a refusal names
    /// it, so refused attempts on production reach the leads' review queue.
    async fn require_on(
        &self,
        actor: &Actor,
        required: Role,
        action: &str,
        env: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<(), ControlError> {
        if actor.role.allows(required) {
            return Ok(());
        }
        let reason = format!(
            "{action} needs the {required} role; {} is {}",
            actor.name, actor.role
        );
        let mut event =
            NewEvent::new(actor.record(), action, Outcome::Denied, meta).error(reason.clone());
        if let Some(env) = env {
            event = event.environment(env);
        }
        self.store.append_audit(&event).await?;
        Err(ControlError::Forbidden(format!(
            "You need the {required} role for this; you are signed in as {}.",
            actor.role
        )))
    }

    /// Records a request that the web layer refused before it reached an
    /// action (no session, a cross-origin form, …).
    pub async fn record_refusal(
        &self,
        actor: Option<&Actor>,
        action: &str,
        target: &str,
        reason: &str,
        meta: &RequestMeta,
    ) -> Result<(), ControlError> {
        let record = actor
            .map(Actor::record)
            .unwrap_or_else(|| identity::anonymous(None));
        self.store
            .append_audit(
                &NewEvent::new(record, action, Outcome::Denied, meta)
                    .target(target)
                    .error(reason),
            )
            .await?;
        Ok(())
    }

    /// The signed-in actor, or an audited refusal for a caller with no
    /// session or token. Every entry point asks here, so none can forget
    /// to audit the 401.
    pub async fn signed_in(
        &self,
        actor: Option<&Actor>,
        target: &str,
        meta: &RequestMeta,
    ) -> Result<Actor, ControlError> {
        match actor {
            Some(actor) => Ok(actor.clone()),
            None => {
                self.record_refusal(None, "request.refused", target, "not signed in", meta)
                    .await?;
                Err(ControlError::Unauthorized)
            }
        }
    }

    /// Checks a name and password. Success and failure are both audited;
    /// the caller starts the session.
    pub async fn sign_in(
        &self,
        name: &str,
        password: &str,
        meta: &RequestMeta,
    ) -> Result<User, ControlError> {
        if let Some(wait) = self.sign_in_throttled(name).await? {
            self.store
                .append_audit(
                    &NewEvent::new(
                        identity::anonymous(Some(name)),
                        "auth.login_throttled",
                        Outcome::Denied,
                        meta,
                    )
                    .error(format!(
                        "{FAILED_SIGN_INS} failed sign-ins within {} minutes",
                        SIGN_IN_WINDOW.whole_minutes()
                    )),
                )
                .await?;
            return Err(ControlError::RateLimited {
                message: format!(
                    "Too many failed sign-ins for this account: try again in {} minutes.",
                    wait.div_ceil(60)
                ),
                retry_after_seconds: wait,
            });
        }
        let user = self.store.user_by_name(name).await?;
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| identity::DUMMY_HASH.to_owned());
        let matches = identity::verify_password(hash, password.to_owned()).await;
        let reason = match &user {
            None => Some("no such account"),
            Some(u) if u.disabled => Some("the account is disabled"),
            Some(_) if !matches => Some("wrong password"),
            Some(_) => None,
        };
        match (user, reason) {
            (Some(user), None) => {
                self.store
                    .append_audit(&NewEvent::new(
                        Actor::user(&user).record(),
                        "auth.login",
                        Outcome::Succeeded,
                        meta,
                    ))
                    .await?;
                Ok(user)
            }
            (_, reason) => {
                self.store
                    .append_audit(
                        &NewEvent::new(
                            identity::anonymous(Some(name)),
                            "auth.login_failed",
                            Outcome::Denied,
                            meta,
                        )
                        .error(reason.unwrap_or("refused")),
                    )
                    .await?;
                Err(ControlError::Unauthorized)
            }
        }
    }

    /// Seconds to wait when `name` had [`FAILED_SIGN_INS`] failed sign-ins
    /// within [`SIGN_IN_WINDOW`], read from the trail itself (so every panel
    /// on a shared store agrees, and a restart forgets nothing).
    async fn sign_in_throttled(&self, name: &str) -> Result<Option<u64>, ControlError> {
        let now = time::OffsetDateTime::now_utc();
        let since = crate::store::sync::store_time(now - SIGN_IN_WINDOW);
        let recent = self
            .store
            .recent_failed_sign_ins(name, &since, FAILED_SIGN_INS)
            .await?;
        if (recent.len() as i64) < FAILED_SIGN_INS {
            return Ok(None);
        }
        // The window reopens when the oldest of those failures leaves it.
        let oldest = recent
            .last()
            .and_then(|at| {
                time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
            })
            .unwrap_or(now);
        let wait = (oldest + SIGN_IN_WINDOW - now).whole_seconds().max(1);
        Ok(Some(wait as u64))
    }

    /// Audits a sign-out; the caller ends the session.
    pub async fn sign_out(&self, actor: &Actor, meta: &RequestMeta) -> Result<(), ControlError> {
        self.store
            .append_audit(&NewEvent::new(
                actor.record(),
                "auth.logout",
                Outcome::Succeeded,
                meta,
            ))
            .await?;
        Ok(())
    }

    /// The actor behind a session's user id, if the account still exists
    /// and is enabled. Checked on every request, so disabling an account
    /// ends its sessions at once: the answer is kept only while the audit
    /// trail's head stays put, and disabling is audited in the same
    /// transaction. Another process's disable (the CLI, another instance)
    /// is seen within [`freshness::WINDOW`]; this one's at once.
    pub async fn session_actor(&self, user_id: i64) -> Result<Option<Actor>, ControlError> {
        let stamp = self.freshness.stamp().await?;
        let kept = self
            .accounts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(stamp, &user_id);
        if let Some(actor) = kept {
            return Ok(actor);
        }
        let actor = self
            .store
            .user_by_id(user_id)
            .await?
            .filter(|u| !u.disabled)
            .map(|u| Actor::user(&u));
        self.accounts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(stamp, user_id, actor.clone());
        Ok(actor)
    }

    /// Creates an account (admin). Without a password one is generated and
    /// returned, to be shown once.
    pub async fn add_user(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        name: &str,
        role: Role,
        password: Option<String>,
    ) -> Result<(User, Option<String>), ControlError> {
        self.require(actor, Role::Admin, "user.add", meta).await?;
        identity::check_name(name)?;
        let (password, generated) = match password {
            Some(p) if p.chars().count() < identity::MIN_PASSWORD_LEN => {
                return Err(ControlError::Invalid(format!(
                    "a password needs at least {} characters",
                    identity::MIN_PASSWORD_LEN
                )));
            }
            Some(p) => (p, None),
            None => {
                let p = identity::random_secret(20);
                (p.clone(), Some(p))
            }
        };
        let hash = identity::hash_password(password).await;
        let event = NewEvent::new(actor.record(), "user.add", Outcome::Succeeded, meta)
            .target(name)
            .params(json!({ "role": role.as_str() }));
        let user = self
            .store
            .insert_user(name, role, &hash, &event)
            .await
            .map_err(|e| match e {
                StoreError::Duplicate => {
                    ControlError::Conflict(format!("an account named `{name}` already exists"))
                }
                other => other.into(),
            })?;
        Ok((user, generated))
    }

    /// Disables an account (admin); its sessions stop working at once.
    pub async fn disable_user(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        name: &str,
    ) -> Result<(), ControlError> {
        self.require(actor, Role::Admin, "user.disable", meta)
            .await?;
        if actor.name == name && actor.kind == crate::audit::ActorKind::User {
            return Err(ControlError::Invalid(
                "you cannot disable your own account".into(),
            ));
        }
        let event =
            NewEvent::new(actor.record(), "user.disable", Outcome::Succeeded, meta).target(name);
        let disabled = self
            .store
            .disable_user(name, &event)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => ControlError::NotFound(format!("the account `{name}`")),
                other => other.into(),
            });
        // The account's sessions stop at the next request, not a window later.
        self.freshness.invalidate();
        disabled
    }

    /// The admin page's data (admin).
    pub async fn admin_view(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
    ) -> Result<AdminView, ControlError> {
        self.require(actor, Role::Admin, "admin.view", meta).await?;
        let accounts = self
            .store
            .list_users()
            .await?
            .into_iter()
            .map(|u| Account {
                name: u.name,
                role: u.role,
                disabled: u.disabled,
                created_at: u.created_at,
            })
            .collect();
        let tokens = self
            .store
            .list_tokens()
            .await?
            .into_iter()
            .map(|(t, user)| app::model::TokenView {
                id: t.id,
                user,
                label: t.label,
                created_at: t.created_at,
                created_by: t.created_by,
                revoked_at: t.revoked_at,
            })
            .collect();
        Ok(AdminView {
            viewer: viewer_of(actor),
            accounts,
            tokens,
        })
    }

    /// The configured environments, with the secrets each still lacks.
    pub fn environment_summaries(&self) -> Vec<EnvironmentSummary> {
        self.config
            .environments
            .iter()
            .map(|env| EnvironmentSummary {
                name: env.name.to_string(),
                branch: env.branch.clone(),
                deploy_workflow: env.deploy_workflow.clone(),
                render_service_id: env.render_service_id.clone(),
                missing_secrets: env
                    .secret_vars()
                    .into_iter()
                    .filter(|var| self.config.secret(var).is_none())
                    .map(str::to_owned)
                    .collect(),
            })
            .collect()
    }
}

fn viewer_of(actor: &Actor) -> Viewer {
    Viewer {
        name: actor.name.clone(),
        role: actor.role,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::TestStore;

    async fn plane() -> (ControlPlane, TestStore) {
        let t = TestStore::new("sqlite").await;
        let config = Config::from_toml("").unwrap();
        (ControlPlane::new(t.store.clone(), Arc::new(config)), t)
    }

    fn meta() -> RequestMeta {
        RequestMeta::default()
    }

    #[tokio::test]
    async fn a_viewer_cannot_add_an_account_and_the_refusal_is_audited() {
        let (plane, t) = plane().await;
        let (viewer, _) = plane
            .add_user(&Actor::system("cli"), &meta(), "val", Role::Viewer, None)
            .await
            .unwrap();
        let result = plane
            .add_user(&Actor::user(&viewer), &meta(), "eve", Role::Admin, None)
            .await;
        assert!(matches!(result, Err(ControlError::Forbidden(_))));
        assert!(plane.store().user_by_name("eve").await.unwrap().is_none());
        let trail = plane.store().audit_page(0, 10).await.unwrap();
        let last = trail.last().unwrap();
        assert_eq!(
            (last.action.as_str(), last.outcome.as_str()),
            ("user.add", "denied")
        );
        assert_eq!(last.actor_name, "val");
        t.drop_all().await;
    }

    #[tokio::test]
    async fn five_failed_sign_ins_lock_the_name_for_the_window_even_with_the_right_password() {
        let (plane, t) = plane().await;
        let password = "a long enough password";
        plane
            .add_user(
                &Actor::system("cli"),
                &meta(),
                "ada",
                Role::Lead,
                Some(password.into()),
            )
            .await
            .unwrap();
        for _ in 0..FAILED_SIGN_INS {
            let wrong = plane.sign_in("ada", "not the password", &meta()).await;
            assert!(matches!(wrong, Err(ControlError::Unauthorized)));
        }
        match plane.sign_in("ada", password, &meta()).await {
            Err(ControlError::RateLimited {
                message,
                retry_after_seconds,
            }) => {
                assert!(message.contains("15 minutes"), "{message}");
                assert!((1..=15 * 60).contains(&retry_after_seconds));
            }
            other => panic!("expected a rate limit, got {other:?}"),
        }
        // Another name is not affected.
        plane
            .add_user(
                &Actor::system("cli"),
                &meta(),
                "bob",
                Role::Viewer,
                Some(password.into()),
            )
            .await
            .unwrap();
        assert!(plane.sign_in("bob", password, &meta()).await.is_ok());
        let trail = plane.store().audit_page(0, 100).await.unwrap();
        let throttled: Vec<_> = trail
            .iter()
            .filter(|e| e.action == "auth.login_throttled")
            .collect();
        assert_eq!(throttled.len(), 1);
        assert_eq!(
            (
                throttled[0].actor_name.as_str(),
                throttled[0].outcome.as_str()
            ),
            ("ada", "denied")
        );
        t.drop_all().await;
    }

    #[tokio::test]
    async fn sign_in_succeeds_once_and_fails_for_wrong_or_disabled_accounts() {
        let (plane, t) = plane().await;
        let admin = Actor::system("cli");
        plane
            .add_user(
                &admin,
                &meta(),
                "ada",
                Role::Lead,
                Some("a long enough password".into()),
            )
            .await
            .unwrap();
        assert!(
            plane
                .sign_in("ada", "a long enough password", &meta())
                .await
                .is_ok()
        );
        assert!(matches!(
            plane.sign_in("ada", "wrong", &meta()).await,
            Err(ControlError::Unauthorized)
        ));
        assert!(matches!(
            plane.sign_in("nobody", "x", &meta()).await,
            Err(ControlError::Unauthorized)
        ));
        plane.disable_user(&admin, &meta(), "ada").await.unwrap();
        assert!(matches!(
            plane
                .sign_in("ada", "a long enough password", &meta())
                .await,
            Err(ControlError::Unauthorized)
        ));
        let outcomes: Vec<_> = plane
            .store()
            .audit_page(0, 20)
            .await
            .unwrap()
            .into_iter()
            .map(|e| format!("{}:{}:{}", e.action, e.outcome, e.error.unwrap_or_default()))
            .collect();
        assert_eq!(
            outcomes,
            [
                "user.add:succeeded:",
                "auth.login:succeeded:",
                "auth.login_failed:denied:wrong password",
                "auth.login_failed:denied:no such account",
                "user.disable:succeeded:",
                "auth.login_failed:denied:the account is disabled",
            ]
        );
        t.drop_all().await;
    }

    #[tokio::test]
    async fn a_disabled_account_no_longer_resolves_to_an_actor() {
        let (plane, t) = plane().await;
        let admin = Actor::system("cli");
        let (user, _) = plane
            .add_user(&admin, &meta(), "ada", Role::Viewer, None)
            .await
            .unwrap();
        assert!(plane.session_actor(user.id).await.unwrap().is_some());
        plane.disable_user(&admin, &meta(), "ada").await.unwrap();
        assert!(plane.session_actor(user.id).await.unwrap().is_none());
        t.drop_all().await;
    }

    #[tokio::test]
    async fn an_account_disabled_by_another_instance_is_refused_within_the_freshness_window() {
        for backend in ["sqlite", "postgres"] {
            let t = TestStore::new(backend).await;
            let config = Arc::new(Config::from_toml("").unwrap());
            let here = ControlPlane::new(t.store.clone(), config.clone());
            let elsewhere = ControlPlane::new(t.store.clone(), config);
            let admin = Actor::system("cli");
            let (user, _) = elsewhere
                .add_user(&admin, &meta(), "ada", Role::Viewer, None)
                .await
                .unwrap();
            assert!(here.session_actor(user.id).await.unwrap().is_some());
            assert!(here.session_actor(user.id).await.unwrap().is_some());
            elsewhere
                .disable_user(&admin, &meta(), "ada")
                .await
                .unwrap();
            tokio::time::sleep(freshness::WINDOW * 2).await;
            assert!(
                here.session_actor(user.id).await.unwrap().is_none(),
                "{backend}"
            );
            t.drop_all().await;
        }
    }

    #[tokio::test]
    async fn a_short_password_and_a_bad_name_are_refused_before_anything_is_stored() {
        let (plane, t) = plane().await;
        let admin = Actor::system("cli");
        let short = plane
            .add_user(&admin, &meta(), "ada", Role::Viewer, Some("short".into()))
            .await;
        assert!(matches!(short, Err(ControlError::Invalid(_))));
        let bad = plane
            .add_user(&admin, &meta(), "a b", Role::Viewer, None)
            .await;
        assert!(matches!(bad, Err(ControlError::Invalid(_))));
        assert!(plane.store().list_users().await.unwrap().is_empty());
        t.drop_all().await;
    }
}
