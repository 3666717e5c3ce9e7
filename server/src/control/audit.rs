//! The audit trail for leads: export (streamed, page by page, so memory is
//! flat however long the trail) and verification. Both are audited.

use super::{ControlError, ControlPlane};
use crate::audit::{NewEvent, Outcome, RequestMeta, Verdict};
use crate::export::{Filter, Format};
use crate::identity::Actor;
use crate::store::Store;
use app::model::Role;
use futures_util::Stream;
use serde_json::json;

/// Events read from the store per page of an export.
const PAGE: i64 = 1000;

/// Where an export stream is.
enum Next {
    Header,
    After(i64),
    Done,
}

/// The rows of an export, in order: the header, then one page of events at
/// a time, read by keyset (`seq > last`), never all at once.
pub fn rows(
    store: Store,
    filter: Filter,
    format: Format,
) -> impl Stream<Item = Result<String, crate::store::StoreError>> + Send + 'static {
    futures_util::stream::unfold(Next::Header, move |next| {
        let store = store.clone();
        let filter = filter.clone();
        async move {
            match next {
                Next::Header => Some((Ok(format.header()), Next::After(0))),
                Next::After(after) => match store.audit_filtered(&filter, after, PAGE).await {
                    Ok(events) if events.is_empty() => None,
                    Ok(events) => {
                        let last = events.last().map_or(after, |e| e.seq);
                        let text: String = events.iter().map(|e| format.row(e)).collect();
                        Some((Ok(text), Next::After(last)))
                    }
                    Err(error) => Some((Err(error), Next::Done)),
                },
                Next::Done => None,
            }
        }
    })
}

impl ControlPlane {
    /// Starts an export (leads and up): checks the filter, writes the
    /// `audit.export` event, and gives the rows to stream.
    pub async fn export_audit(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        filter: Filter,
        format: Format,
    ) -> Result<
        impl Stream<Item = Result<String, crate::store::StoreError>> + Send + 'static,
        ControlError,
    > {
        self.require(actor, Role::Lead, "audit.export", meta)
            .await?;
        let filter = filter.normalised().map_err(ControlError::Invalid)?;
        let event =
            NewEvent::new(actor.record(), "audit.export", Outcome::Succeeded, meta).params(json!({
                "format": match format { Format::Csv => "csv", Format::JsonLines => "jsonl" },
                "actor": filter.actor, "action": filter.action, "environment": filter.environment,
                "outcome": filter.outcome, "since": filter.since, "until": filter.until,
            }));
        self.store.append_audit(&event).await?;
        Ok(rows(self.store.clone(), filter, format))
    }

    /// Recomputes the chain for a lead; the check itself is audited.
    pub async fn verify_audit_as(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
    ) -> Result<Verdict, ControlError> {
        self.require(actor, Role::Lead, "audit.verify", meta)
            .await?;
        let verdict = self.store.verify_audit().await?;
        let (outcome, error) = match &verdict {
            Verdict::Intact { .. } => (Outcome::Succeeded, None),
            Verdict::Broken { seq, .. } => (Outcome::Failed, Some(format!("broken at seq {seq}"))),
        };
        let mut event = NewEvent::new(actor.record(), "audit.verify", outcome, meta);
        if let Some(error) = error {
            event = event.error(error);
        }
        self.store.append_audit(&event).await?;
        Ok(verdict)
    }
}
