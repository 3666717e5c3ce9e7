//! Locking an environment, unlocking it, and the gate the deploy workflow
//! asks before it deploys. A deployer may lock (a rollback locks too); only
//! a lead unlocks, with a note. Every change and every refusal is audited.

use super::{ControlError, ControlPlane};
use crate::audit::{NewEvent, Outcome, RequestMeta};
use crate::identity::Actor;
use crate::store::StoreError;
use crate::store::locks::LockRow;
use app::model::Role;
use serde::Serialize;
use serde_json::json;

/// The gate's answer for one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gate {
    pub allowed: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn words(text: &str, what: &str) -> Result<String, ControlError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ControlError::Invalid(format!(
            "Say {what}: it goes into the audit trail."
        )));
    }
    if text.chars().count() > 500 {
        return Err(ControlError::Invalid(format!(
            "Keep {what} under 500 characters."
        )));
    }
    Ok(text.to_owned())
}

impl ControlPlane {
    /// Locks `env` with a reason (deployer and up).
    pub async fn lock_environment(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        env: &str,
        reason: &str,
    ) -> Result<LockRow, ControlError> {
        self.require_on(actor, Role::Deployer, "environment.lock", Some(env), meta)
            .await?;
        self.environment(env)?;
        let reason = words(reason, "why the environment is locked")?;
        let event = NewEvent::new(actor.record(), "environment.lock", Outcome::Succeeded, meta)
            .environment(env)
            .params(json!({ "reason": reason }));
        match self
            .store
            .lock_environment(env, &reason, &actor.name, &event)
            .await
        {
            Ok(lock) => Ok(lock),
            Err(StoreError::Duplicate) => {
                let held = self.store.environment_lock(env).await?;
                let by = held
                    .map(|l| format!(" by {}: {}", l.locked_by, l.reason))
                    .unwrap_or_default();
                self.record_refusal(Some(actor), "environment.lock", env, "already locked", meta)
                    .await?;
                Err(ControlError::Conflict(format!(
                    "{env} is already locked{by}."
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Unlocks `env` with a note (lead and up).
    pub async fn unlock_environment(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        env: &str,
        note: &str,
    ) -> Result<(), ControlError> {
        self.require_on(actor, Role::Lead, "environment.unlock", Some(env), meta)
            .await?;
        self.environment(env)?;
        let note = words(note, "why it is safe to unlock")?;
        let held = self.store.environment_lock(env).await?;
        let event = NewEvent::new(
            actor.record(),
            "environment.unlock",
            Outcome::Succeeded,
            meta,
        )
        .environment(env)
        .params(json!({ "note": note, "lock": held }));
        match self.store.unlock_environment(env, &event).await {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound) => {
                Err(ControlError::Conflict(format!("{env} is not locked.")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the deploy workflow may deploy `sha` to `env` now (viewer
    /// and up: the workflow's token needs no more).
    pub async fn gate(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        env: &str,
        sha: &str,
    ) -> Result<Gate, ControlError> {
        self.require(actor, Role::Viewer, "environment.gate", meta)
            .await?;
        self.environment(env)?;
        Ok(match self.store.environment_lock(env).await? {
            None => Gate {
                allowed: true,
                reason: None,
            },
            Some(lock) => Gate {
                allowed: false,
                reason: Some(format!(
                    "{env} is locked by {} since {}: {}. Deploying {} waits until a lead unlocks it.",
                    lock.locked_by,
                    lock.locked_at,
                    lock.reason,
                    if sha.is_empty() { "this commit" } else { sha }
                )),
            },
        })
    }
}
