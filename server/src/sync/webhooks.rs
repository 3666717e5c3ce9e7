//! Webhook deliveries: checked (signature, then delivery id once only),
//! then the environments they concern are synced at once. Without a
//! configured secret an endpoint is off, never open. Every refused delivery
//! is audited.

use super::Syncer;
use crate::audit::{NewEvent, Outcome, RequestMeta};
use crate::identity;
use crate::signatures::{self, SignatureError, StandardHeaders};
use http::HeaderMap;
use serde_json::Value;

/// What became of a delivery that was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// New: these environments are being synced now.
    Accepted { environments: Vec<String> },
    /// Seen before: nothing was done again.
    Duplicate,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("this webhook endpoint is off: no secret is configured")]
    Off,
    #[error("{0}")]
    Signature(#[from] SignatureError),
    #[error("{0}")]
    Invalid(String),
    #[error("the panel's store failed: {0}")]
    Store(#[from] crate::store::StoreError),
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl Syncer {
    async fn refuse(&self, source: &str, error: WebhookError, meta: &RequestMeta) -> WebhookError {
        let event = NewEvent::new(
            identity::anonymous(Some(source)),
            "webhook.refused",
            Outcome::Denied,
            meta,
        )
        .target(source)
        .error(error.to_string());
        if let Err(e) = self.store.append_audit(&event).await {
            tracing::error!(error = %e, "cannot audit a refused webhook");
        }
        error
    }

    /// `POST /webhooks/github`: `X-Hub-Signature-256` over the raw body,
    /// deduplicated on `X-GitHub-Delivery`; `push` and `workflow_run` sync
    /// the environments of their branch.
    pub async fn github_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        meta: &RequestMeta,
    ) -> Result<Delivery, WebhookError> {
        let Some(secret) = self
            .config
            .github
            .as_ref()
            .and_then(|g| self.config.secret(&g.webhook_secret_env))
        else {
            return Err(WebhookError::Off);
        };
        if let Err(e) = signatures::verify_github(
            secret.expose().as_bytes(),
            body,
            header(headers, "x-hub-signature-256"),
        ) {
            return Err(self.refuse("github", e.into(), meta).await);
        }
        let Some(id) = header(headers, "x-github-delivery").filter(|id| !id.is_empty()) else {
            let error = WebhookError::Invalid("the delivery has no X-GitHub-Delivery id".into());
            return Err(self.refuse("github", error, meta).await);
        };
        if !self.store.record_delivery("github", id).await? {
            return Ok(Delivery::Duplicate);
        }
        let payload: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let branch = match header(headers, "x-github-event") {
            Some("push") => payload["ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("refs/heads/"))
                .map(str::to_owned),
            Some("workflow_run") => payload["workflow_run"]["head_branch"]
                .as_str()
                .map(str::to_owned),
            Some("workflow_job") => payload["workflow_job"]["head_branch"]
                .as_str()
                .map(str::to_owned),
            _ => None,
        };
        let environments = self.environments_for(branch.as_deref(), None);
        for env in &environments {
            self.poke(env);
        }
        Ok(Delivery::Accepted { environments })
    }

    /// `POST /webhooks/render`: Standard Webhooks (id, timestamp within five
    /// minutes, signature), deduplicated on `webhook-id`; a deploy event
    /// syncs the environment of its service.
    pub async fn render_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        meta: &RequestMeta,
    ) -> Result<Delivery, WebhookError> {
        let Some(secret) = self
            .config
            .render
            .as_ref()
            .and_then(|r| self.config.secret(&r.webhook_secret_env))
        else {
            return Err(WebhookError::Off);
        };
        let standard = StandardHeaders {
            id: header(headers, "webhook-id"),
            timestamp: header(headers, "webhook-timestamp"),
            signature: header(headers, "webhook-signature"),
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Err(e) = signatures::verify_standard(secret.expose(), standard, body, now) {
            return Err(self.refuse("render", e.into(), meta).await);
        }
        let id = standard.id.unwrap_or_default();
        if !self.store.record_delivery("render", id).await? {
            return Ok(Delivery::Duplicate);
        }
        let payload: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let service = payload["data"]["serviceId"].as_str();
        let environments = self.environments_for(None, service);
        for env in &environments {
            self.poke(env);
        }
        Ok(Delivery::Accepted { environments })
    }
}
