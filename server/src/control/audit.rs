//! The audit trail for leads: the review screen (filtered keyset pages, one
//! event with everything about its target, the review queue and its
//! marks), export (streamed, page by page, so memory is flat however long
//! the trail) and verification. Exports, verifications and marks are
//! audited.

use super::{ControlError, ControlPlane};
use crate::audit::{AuditEvent, NewEvent, Outcome, RequestMeta, Verdict};
use crate::export::Format;
use crate::identity::Actor;
use crate::store::audit_filter::Filter;
use crate::store::operations::OperationRow;
use crate::store::reviews::{self, ReviewRow};
use crate::store::{Store, StoreError};
use app::model::{
    AuditDetail, AuditEventView, AuditQuery, AuditView, ChainState, ReviewItem, ReviewMark, Role,
};
use futures_util::stream::{FusedStream, StreamExt};
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
///
/// The stream is fused: once it has ended it keeps answering `None`. A
/// bare `unfold` panics when polled again after its end, and tower-http's
/// compression does poll a body once more (for trailers) after its data
/// ended, which cut every compressed export short.
pub fn rows(
    store: Store,
    filter: Filter,
    format: Format,
) -> impl FusedStream<Item = Result<String, crate::store::StoreError>> + Send + 'static {
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
    .fuse()
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
        impl FusedStream<Item = Result<String, crate::store::StoreError>> + Send + 'static,
        ControlError,
    > {
        self.require(actor, Role::Lead, "audit.export", meta)
            .await?;
        let filter = filter.normalised()?;
        let event =
            NewEvent::new(actor.record(), "audit.export", Outcome::Succeeded, meta).params(json!({
                "format": match format { Format::Csv => "csv", Format::JsonLines => "jsonl" },
                "actor": filter.actor, "action": filter.action, "environment": filter.environment,
                "outcome": filter.outcome, "since": filter.since, "until": filter.until,
            }));
        self.store.append_audit(&event).await?;
        Ok(rows(self.store.clone(), filter, format))
    }

    /// Recomputes the chain for a lead; the check itself is audited, and
    /// its outcome is what the overview shows leads.
    pub async fn verify_audit_as(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
    ) -> Result<Verdict, ControlError> {
        self.require(actor, Role::Lead, "audit.verify", meta)
            .await?;
        let verdict = self.store.verify_audit().await?;
        let event = match &verdict {
            Verdict::Intact { count } => {
                NewEvent::new(actor.record(), "audit.verify", Outcome::Succeeded, meta)
                    .params(json!({ "intact": true, "count": count }))
            }
            Verdict::Broken { seq, .. } => {
                NewEvent::new(actor.record(), "audit.verify", Outcome::Failed, meta)
                    .params(json!({ "intact": false, "broken_at": seq }))
                    .error(format!("broken at seq {seq}"))
            }
        };
        self.store.append_audit(&event).await?;
        Ok(verdict)
    }

    /// The newest verification's outcome, from the trail itself (so every
    /// panel on a shared store agrees).
    pub(crate) async fn chain_state(&self) -> Result<ChainState, ControlError> {
        let filter = Filter {
            action: Some("audit.verify".into()),
            ..Filter::default()
        };
        let newest = self.store.audit_newest(&filter, None, 10).await?;
        // Refused attempts to verify say nothing about the chain.
        let Some(event) = newest.into_iter().find(|e| e.outcome != "denied") else {
            return Ok(ChainState {
                checked_at: None,
                checked_by: None,
                intact: false,
                count: None,
                broken_at: None,
            });
        };
        let params: serde_json::Value = serde_json::from_str(&event.params).unwrap_or_default();
        Ok(ChainState {
            checked_at: Some(event.at),
            checked_by: Some(event.actor_name),
            intact: event.outcome == "succeeded",
            count: params["count"].as_i64(),
            broken_at: params["broken_at"].as_i64(),
        })
    }

    /// The `/audit` page (leads): one page of the filtered trail, newest
    /// first, the review queue and the chain's state.
    pub async fn audit_view(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        query: AuditQuery,
    ) -> Result<AuditView, ControlError> {
        self.require(actor, Role::Lead, "audit.view", meta).await?;
        let (events, next_before) = self.audit_events(&query, PAGE_SIZE).await?;
        let queue = self.review_queue().await?;
        Ok(AuditView {
            viewer: super::viewer_of(actor),
            query,
            events,
            next_before,
            queue,
            environments: self
                .config
                .environments
                .iter()
                .map(|e| e.name.to_string())
                .collect(),
            chain: self.chain_state().await?,
        })
    }

    /// `GET /api/v1/audit` (leads): a page of the filtered trail, newest
    /// first, and the cursor of the next.
    pub async fn audit_list(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        query: AuditQuery,
        limit: i64,
    ) -> Result<(Vec<AuditEventView>, Option<i64>), ControlError> {
        self.require(actor, Role::Lead, "audit.view", meta).await?;
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ControlError::Invalid(format!(
                "`limit` must be between 1 and {MAX_PAGE}, not {limit}"
            )));
        }
        self.audit_events(&query, limit).await
    }

    async fn audit_events(
        &self,
        query: &AuditQuery,
        limit: i64,
    ) -> Result<(Vec<AuditEventView>, Option<i64>), ControlError> {
        let filter = Filter::from(query).normalised()?;
        // One more than shown tells whether there is a next page.
        let mut events = self
            .store
            .audit_newest(&filter, query.before, limit + 1)
            .await?;
        let more = events.len() as i64 > limit;
        events.truncate(limit as usize);
        let next = more.then(|| events.last().map(|e| e.seq)).flatten();
        Ok((events.into_iter().map(event_view).collect(), next))
    }

    /// What waits for a lead's review, newest first.
    async fn review_queue(&self) -> Result<Vec<ReviewItem>, ControlError> {
        let production: Vec<String> = self
            .config
            .environments
            .iter()
            .filter(|e| e.is_production())
            .map(|e| e.name.to_string())
            .collect();
        let queue = self.store.review_queue(&production, QUEUE_SIZE).await?;
        let mut items = Vec::new();
        for op in queue.operations {
            let seq = self.store.first_event_of(&op.id).await?;
            items.push(ReviewItem {
                item: reviews::operation_item(&op.id),
                why: operation_why(&op).to_owned(),
                summary: format!("{} on {} ({})", op.kind, op.environment, op.state),
                environment: Some(op.environment),
                actor: op.requested_by,
                at: op.created_at,
                seq,
            });
        }
        for event in queue.refusals {
            items.push(ReviewItem {
                item: reviews::event_item(event.seq),
                why: "refused".to_owned(),
                summary: format!(
                    "{} refused: {}",
                    event.action,
                    event.error.as_deref().unwrap_or("no reason recorded")
                ),
                environment: event.environment,
                actor: event.actor_name,
                at: event.at,
                seq: Some(event.seq),
            });
        }
        items.sort_by(|a, b| b.at.cmp(&a.at));
        Ok(items)
    }

    /// `/audit/{seq}` (leads): the event, the operation it belongs to with
    /// every step, every event about the same target, and its review.
    pub async fn audit_detail(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        seq: i64,
    ) -> Result<AuditDetail, ControlError> {
        self.require(actor, Role::Lead, "audit.view", meta).await?;
        let event = self
            .store
            .audit_event(seq)
            .await?
            .ok_or_else(|| ControlError::NotFound(format!("audit event {seq}")))?;
        let op = match &event.target {
            Some(target) => self.store.operation(target).await?.map(|(op, _)| op),
            None => None,
        };
        let operation = match &op {
            Some(op) => Some(self.operation_view(actor, meta, &op.id).await?),
            None => None,
        };
        let related = match &event.target {
            Some(target) => {
                let filter = Filter {
                    target: Some(target.clone()),
                    ..Filter::default()
                };
                let mut related = self.store.audit_newest(&filter, None, RELATED).await?;
                related.reverse();
                related.into_iter().map(event_view).collect()
            }
            None => Vec::new(),
        };
        let (review_item, review_why) = match &op {
            Some(op) if !operation_why(op).is_empty() => (
                Some(reviews::operation_item(&op.id)),
                Some(operation_why(op).to_owned()),
            ),
            _ if self.is_reviewable_refusal(&event) => (
                Some(reviews::event_item(event.seq)),
                Some("refused".to_owned()),
            ),
            _ => (None, None),
        };
        let reviewed = match &review_item {
            Some(item) => self.store.review_of(item).await?.map(mark_view),
            None => None,
        };
        Ok(AuditDetail {
            viewer: super::viewer_of(actor),
            event: event_view(event),
            operation,
            related,
            review_item,
            review_why,
            reviewed,
        })
    }

    fn is_reviewable_refusal(&self, event: &AuditEvent) -> bool {
        event.outcome == "denied"
            && event.environment.as_deref().is_some_and(|env| {
                self.config
                    .environments
                    .iter()
                    .any(|e| e.name.as_str() == env && e.is_production())
            })
    }

    /// Marks a queue item reviewed (leads) with a note; the mark is an
    /// `audit.review` event. An item can be marked once.
    pub async fn mark_reviewed(
        &self,
        actor: &Actor,
        meta: &RequestMeta,
        item: &str,
        note: &str,
    ) -> Result<ReviewMark, ControlError> {
        self.require(actor, Role::Lead, "audit.review", meta)
            .await?;
        let note = note.trim();
        let refuse = async |error: ControlError| -> Result<ReviewMark, ControlError> {
            self.record_refusal(Some(actor), "audit.review", item, &error.to_string(), meta)
                .await?;
            Err(error)
        };
        if note.is_empty() {
            return refuse(ControlError::Invalid(
                "Say what you checked: the note is required.".into(),
            ))
            .await;
        }
        let environment = match self.reviewable(item).await? {
            Some(environment) => environment,
            None => {
                return refuse(ControlError::NotFound(format!(
                    "`{item}` in the review queue (an operation that was break-glass, failed or \
                     needs attention, or a refusal on production)"
                )))
                .await;
            }
        };
        let mut event = NewEvent::new(actor.record(), "audit.review", Outcome::Succeeded, meta)
            .target(item)
            .params(json!({ "note": note }));
        if let Some(environment) = &environment {
            event = event.environment(environment);
        }
        match self
            .store
            .mark_reviewed(item, &actor.name, note, &event)
            .await
        {
            Ok(row) => Ok(mark_view(row)),
            Err(StoreError::Duplicate) => {
                let by = self
                    .store
                    .review_of(item)
                    .await?
                    .map(|r| format!(" by {} at {}", r.reviewed_by, r.reviewed_at))
                    .unwrap_or_default();
                refuse(ControlError::Conflict(format!(
                    "{item} was already marked reviewed{by}."
                )))
                .await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The environment of a reviewable item, or None when `item` names
    /// nothing that belongs in the queue.
    async fn reviewable(&self, item: &str) -> Result<Option<Option<String>>, ControlError> {
        if let Some(id) = item.strip_prefix("op:") {
            return Ok(self
                .store
                .operation(id)
                .await?
                .map(|(op, _)| op)
                .filter(|op| !operation_why(op).is_empty())
                .map(|op| Some(op.environment)));
        }
        if let Some(seq) = item.strip_prefix("event:").and_then(|s| s.parse().ok()) {
            return Ok(self
                .store
                .audit_event(seq)
                .await?
                .filter(|e| self.is_reviewable_refusal(e))
                .map(|e| e.environment));
        }
        Ok(None)
    }
}

/// Rows per page of the review screen.
const PAGE_SIZE: i64 = 50;
/// The most a REST page may hold.
const MAX_PAGE: i64 = 500;
/// Queue items of each kind shown at once.
const QUEUE_SIZE: i64 = 100;
/// Events about one target shown on the detail view.
const RELATED: i64 = 500;

/// Why an operation needs review, or "" when it does not.
fn operation_why(op: &OperationRow) -> &'static str {
    match op.state.as_str() {
        "needs_attention" => "needs_attention",
        "failed" => "failed",
        _ if op.break_glass == 1 => "break_glass",
        _ => "",
    }
}

fn mark_view(row: ReviewRow) -> ReviewMark {
    ReviewMark {
        reviewed_by: row.reviewed_by,
        reviewed_at: row.reviewed_at,
        note: row.note,
        seq: row.review_seq,
    }
}

/// An event as the review screen shows it: its parameters indented.
pub fn event_view(event: AuditEvent) -> AuditEventView {
    let params = serde_json::from_str::<serde_json::Value>(&event.params)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(event.params);
    AuditEventView {
        seq: event.seq,
        at: event.at,
        actor_kind: event.actor_kind,
        actor_id: event.actor_id,
        actor_name: event.actor_name,
        actor_role: event.actor_role,
        action: event.action,
        environment: event.environment,
        target: event.target,
        params,
        outcome: event.outcome,
        error: event.error,
        request_id: event.request_id,
        ip: event.ip,
        user_agent: event.user_agent,
        hash: event.hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::store::tests::TestStore;
    use std::sync::Arc;

    /// 1,000 audited actions at once through the application layer (token
    /// creations, sign-outs, role refusals and 401s): every one is in the
    /// trail, the sequence numbers have no gap and the chain verifies.
    async fn a_thousand_concurrent_actions(backend: &str) {
        let t = TestStore::new(backend).await;
        let plane = ControlPlane::new(t.store.clone(), Arc::new(Config::from_toml("").unwrap()));
        let meta = RequestMeta::default();
        let root = Actor::system("test");
        let (ada, _) = plane
            .add_user(
                &root,
                &meta,
                "ada",
                Role::Viewer,
                Some("a long enough password".into()),
            )
            .await
            .unwrap();
        let ada = Actor::user(&ada);
        let before = t.store.audit_head_seq().await.unwrap();
        let tasks: Vec<_> = (0..1000)
            .map(|i| {
                let (plane, root, ada, meta) =
                    (plane.clone(), root.clone(), ada.clone(), meta.clone());
                tokio::spawn(async move {
                    match i % 4 {
                        0 => plane
                            .create_token(&root, &meta, "ada", &format!("t{i}"))
                            .await
                            .map(|_| ()),
                        1 => plane.sign_out(&ada, &meta).await,
                        2 => plane
                            .add_user(&ada, &meta, &format!("u{i}"), Role::Admin, None)
                            .await
                            .map(|_| ()),
                        _ => plane.signed_in(None, "/api/v1/me", &meta).await.map(|_| ()),
                    }
                })
            })
            .collect();
        let mut refused = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => {}
                Err(ControlError::Forbidden(_) | ControlError::Unauthorized) => refused += 1,
                Err(other) => panic!("unexpected: {other:?}"),
            }
        }
        assert_eq!(refused, 500);
        let head = t.store.audit_head_seq().await.unwrap();
        assert_eq!(head - before, 1000, "one event per action");
        let all = t
            .store
            .audit_filtered(&Filter::default(), 0, 5000)
            .await
            .unwrap();
        let seqs: Vec<i64> = all.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=head).collect::<Vec<_>>(), "gapless");
        let count = |action: &str, outcome: &str| {
            all.iter()
                .filter(|e| e.action == action && e.outcome == outcome)
                .count()
        };
        assert_eq!(count("token.create", "succeeded"), 250);
        assert_eq!(count("auth.logout", "succeeded"), 250);
        assert_eq!(count("user.add", "denied"), 250);
        assert_eq!(count("request.refused", "denied"), 250);
        assert_eq!(plane.store().list_tokens().await.unwrap().len(), 250);
        assert_eq!(
            t.store.verify_audit().await.unwrap(),
            Verdict::Intact { count: head as u64 }
        );
        t.drop_all().await;
    }

    /// tower-http's compression polls a body once more after its data ended
    /// (for trailers); a bare `unfold` panicked there and cut every
    /// compressed export short.
    #[tokio::test]
    async fn an_export_polled_again_after_its_end_stays_ended_instead_of_panicking() {
        let t = TestStore::new("sqlite").await;
        let plane = ControlPlane::new(t.store.clone(), Arc::new(Config::from_toml("").unwrap()));
        plane
            .add_user(
                &Actor::system("test"),
                &RequestMeta::default(),
                "ada",
                Role::Lead,
                Some("a long enough password".into()),
            )
            .await
            .unwrap();
        let mut stream =
            std::pin::pin!(rows(t.store.clone(), Filter::default(), Format::JsonLines));
        let mut lines = String::new();
        while let Some(chunk) = stream.next().await {
            lines.push_str(&chunk.unwrap());
        }
        assert_eq!(lines.lines().count(), 1, "the one event: {lines}");
        assert!(stream.is_terminated());
        for _ in 0..3 {
            assert!(stream.next().await.is_none(), "still ended");
        }
        t.drop_all().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_thousand_concurrent_audited_actions_on_sqlite() {
        a_thousand_concurrent_actions("sqlite").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_thousand_concurrent_audited_actions_on_postgres() {
        a_thousand_concurrent_actions("postgres").await;
    }
}
