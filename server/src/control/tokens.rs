//! API tokens: an admin creates one for a user (shown once, stored as its
//! SHA-256), or revokes it. A request that presents one acts as that user,
//! with the user's role, recorded as actor kind `token` with the token's id;
//! every use is audited.

use super::{ControlError, ControlPlane};
use crate::audit::{ActorKind, NewEvent, Outcome, RequestMeta};
use crate::identity::{Actor, random_id, random_secret};
use crate::store::StoreError;
use crate::store::tokens::TokenRow;
use app::model::Role;
use serde_json::json;
use sha2::{Digest, Sha256};

/// Every token starts so, which makes a leaked one easy to search for.
const PREFIX: &str = "fdt_";

fn hash(token: &str) -> String {
    crate::audit::hex(&Sha256::digest(token.as_bytes()))
}

impl ControlPlane {
    /// Creates a token for `user` (admins); returns it with the one and
    /// only copy of the secret.
    pub async fn create_token(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        user: &str,
        label: &str,
    ) -> Result<(TokenRow, String), ControlError> {
        self.require(actor, Role::Admin, "token.create", meta)
            .await?;
        let owner = self
            .store
            .user_by_name(user)
            .await?
            .ok_or_else(|| ControlError::NotFound(format!("the account {user}")))?;
        let id = format!("tok_{}", &random_id()[..16]);
        let secret = format!("{PREFIX}{}", random_secret(40));
        let label = if label.trim().is_empty() {
            "api"
        } else {
            label.trim()
        };
        let event = NewEvent::new(actor.record(), "token.create", Outcome::Succeeded, meta)
            .target(&id)
            .params(json!({ "user": owner.name, "label": label }));
        let row = self
            .store
            .create_token(&id, owner.id, label, &hash(&secret), &actor.name, &event)
            .await?;
        Ok((row, secret))
    }

    /// Revokes a token (admins): it stops working at once.
    pub async fn revoke_token(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        id: &str,
    ) -> Result<(), ControlError> {
        self.require(actor, Role::Admin, "token.revoke", meta)
            .await?;
        let event =
            NewEvent::new(actor.record(), "token.revoke", Outcome::Succeeded, meta).target(id);
        match self.store.revoke_token(id, &event).await {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound) => Err(ControlError::NotFound(format!("a live token {id}"))),
            Err(e) => Err(e.into()),
        }
    }

    /// The actor a presented token acts as, when it is live and its user
    /// enabled; the use is audited (`token.use`, with what was asked).
    /// An unknown or revoked token is audited as a refusal and gives None.
    pub async fn token_actor(
        &self,
        token: &str,
        meta: &RequestMeta,
        target: &str,
    ) -> Result<Option<Actor>, ControlError> {
        let found = match token.starts_with(PREFIX) {
            true => self.store.token_by_hash(&hash(token)).await?,
            false => None,
        };
        let user = match &found {
            Some(row) if row.revoked_at.is_none() => self
                .store
                .user_by_id(row.user_id)
                .await?
                .filter(|u| !u.disabled),
            _ => None,
        };
        let (Some(row), Some(user)) = (found.as_ref(), user) else {
            let why = match &found {
                None => "unknown API token",
                Some(row) if row.revoked_at.is_some() => "revoked API token",
                Some(_) => "the token's account is disabled",
            };
            let mut refusal = crate::identity::anonymous(None);
            if let Some(row) = &found {
                refusal.kind = ActorKind::Token;
                refusal.id = row.id.clone();
            }
            self.store
                .append_audit(
                    &NewEvent::new(refusal, "token.use", Outcome::Denied, meta)
                        .target(target)
                        .error(why),
                )
                .await?;
            return Ok(None);
        };
        let actor = Actor {
            kind: ActorKind::Token,
            id: row.id.clone(),
            name: user.name.clone(),
            role: user.role,
        };
        self.store
            .append_audit(
                &NewEvent::new(actor.record(), "token.use", Outcome::Succeeded, meta)
                    .target(target)
                    .params(json!({ "label": row.label })),
            )
            .await?;
        Ok(Some(actor))
    }
}
