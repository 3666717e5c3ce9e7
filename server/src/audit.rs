//! The audit trail's domain: what an event holds, how the chain is hashed,
//! and how a stored trail is verified. Plain Rust; the store persists it.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// The hash before the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    User,
    Token,
    Webhook,
    System,
    /// Nobody signed in (a failed sign-in, an anonymous request).
    Anonymous,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Token => "token",
            ActorKind::Webhook => "webhook",
            ActorKind::System => "system",
            ActorKind::Anonymous => "anonymous",
        }
    }
}

pub use domain::Outcome;

/// Where a request came from, for the trail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The actor as the trail records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorRecord {
    pub kind: ActorKind,
    pub id: String,
    pub name: String,
    pub role: Option<String>,
}

/// An event about to be appended; the store gives it `seq`, `id`, `at` and hashes.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub actor: ActorRecord,
    pub action: String,
    pub environment: Option<String>,
    pub target: Option<String>,
    pub params: Value,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub meta: RequestMeta,
    /// When it happened, if not now: set only to record events that
    /// happened earlier (an import, a benchmark's history). The store
    /// refuses a time before the previous event's or after now, so `at`
    /// never decreases along the chain.
    pub at: Option<time::OffsetDateTime>,
}

impl NewEvent {
    /// An event with no environment, target, params or error.
    pub fn new(actor: ActorRecord, action: &str, outcome: Outcome, meta: &RequestMeta) -> Self {
        Self {
            actor,
            action: action.to_owned(),
            environment: None,
            target: None,
            params: Value::Object(Default::default()),
            outcome,
            error: None,
            meta: meta.clone(),
            at: None,
        }
    }

    /// Records the event as having happened at `at` rather than now (see [`NewEvent::at`]).
    pub fn at(mut self, at: time::OffsetDateTime) -> Self {
        self.at = Some(at);
        self
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    pub fn params(mut self, params: Value) -> Self {
        self.params = redact(params);
        self
    }

    pub fn error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }
}

/// One stored row of the trail. Its fields are in the order of the table's
/// columns (`AUDIT_COLUMNS`): the SQLite store reads them back from JSON
/// arrays in that order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct AuditEvent {
    pub seq: i64,
    pub id: String,
    pub at: String,
    pub actor_kind: String,
    pub actor_id: String,
    pub actor_name: String,
    pub actor_role: Option<String>,
    pub action: String,
    pub environment: Option<String>,
    pub target: Option<String>,
    /// Canonical JSON text.
    pub params: String,
    pub outcome: String,
    pub error: Option<String>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEvent {
    /// Builds the stored row for `new` at position `seq` after `prev_hash`.
    pub fn seal(new: &NewEvent, seq: i64, id: String, at: String, prev_hash: String) -> Self {
        let mut event = AuditEvent {
            seq,
            id,
            at,
            actor_kind: new.actor.kind.as_str().to_owned(),
            actor_id: new.actor.id.clone(),
            actor_name: new.actor.name.clone(),
            actor_role: new.actor.role.clone(),
            action: new.action.clone(),
            environment: new.environment.clone(),
            target: new.target.clone(),
            params: canonical_json(&new.params),
            outcome: new.outcome.as_str().to_owned(),
            error: new.error.clone(),
            request_id: new.meta.request_id.clone(),
            ip: new.meta.ip.clone(),
            user_agent: new.meta.user_agent.clone(),
            prev_hash,
            hash: String::new(),
        };
        event.hash = event.computed_hash();
        event
    }

    /// SHA-256 over `prev_hash` and the canonical JSON of every other field.
    pub fn computed_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.prev_hash.as_bytes());
        hasher.update(b"\n");
        serde_json::to_writer(&mut hasher, &HashedFields::of(self))
            .expect("writing JSON into a hasher cannot fail");
        hex(&hasher.finalize())
    }
}

/// The fields an event's hash covers, declared in sorted key order so that
/// serde_json's compact output is exactly their [`canonical_json`], written
/// straight into the hasher (no `Value` built per event: the chain check
/// hashes a million of them).
#[derive(Serialize)]
struct HashedFields<'a> {
    action: &'a str,
    actor_id: &'a str,
    actor_kind: &'a str,
    actor_name: &'a str,
    actor_role: Option<&'a str>,
    at: &'a str,
    environment: Option<&'a str>,
    error: Option<&'a str>,
    id: &'a str,
    ip: Option<&'a str>,
    outcome: &'a str,
    params: &'a str,
    request_id: Option<&'a str>,
    seq: i64,
    target: Option<&'a str>,
    user_agent: Option<&'a str>,
}

impl<'a> HashedFields<'a> {
    fn of(event: &'a AuditEvent) -> Self {
        Self {
            action: &event.action,
            actor_id: &event.actor_id,
            actor_kind: &event.actor_kind,
            actor_name: &event.actor_name,
            actor_role: event.actor_role.as_deref(),
            at: &event.at,
            environment: event.environment.as_deref(),
            error: event.error.as_deref(),
            id: &event.id,
            ip: event.ip.as_deref(),
            outcome: &event.outcome,
            params: &event.params,
            request_id: event.request_id.as_deref(),
            seq: event.seq,
            target: event.target.as_deref(),
            user_agent: event.user_agent.as_deref(),
        }
    }
}

/// JSON with object keys sorted at every level and no insignificant
/// whitespace, so the same value always hashes the same.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Keys whose values never reach the trail.
const SECRET_KEYS: [&str; 6] = [
    "password",
    "token",
    "secret",
    "api_key",
    "authorization",
    "cookie",
];

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEYS
        .iter()
        .any(|s| key == *s || key.ends_with(&format!("_{s}")))
}

/// Replaces the values of secret-looking keys, at any depth, with `"[redacted]"`.
pub fn redact(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    if is_secret_key(&k) {
                        (k, Value::String("[redacted]".into()))
                    } else {
                        (k, redact(v))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// What is wrong at the first bad position of a trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainFault {
    /// The row's content does not match its hash (edited).
    HashMismatch,
    /// The row does not point at the previous row's hash (reordered or a row removed before it).
    BrokenLink,
    /// A sequence number is missing (deleted) or out of place (reordered).
    Gap { found: i64 },
}

impl ChainFault {
    /// The word the REST API uses.
    pub fn as_str(&self) -> &'static str {
        match self {
            ChainFault::HashMismatch => "hash_mismatch",
            ChainFault::BrokenLink => "broken_link",
            ChainFault::Gap { .. } => "gap",
        }
    }
}

/// The result of checking a whole trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Intact { count: u64 },
    Broken { seq: i64, fault: ChainFault },
}

/// Checks events fed in `seq` order, one batch at a time, with constant memory.
#[derive(Debug)]
pub struct ChainVerifier {
    expected_seq: i64,
    prev_hash: String,
    count: u64,
    broken: Option<(i64, ChainFault)>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
            count: 0,
            broken: None,
        }
    }
}

impl ChainVerifier {
    /// Feeds the next event; returns false once the chain is known to be broken.
    pub fn feed(&mut self, event: &AuditEvent) -> bool {
        if self.broken.is_some() {
            return false;
        }
        let sealed = event.hash == event.computed_hash();
        self.feed_sealed(event, sealed)
    }

    /// [`ChainVerifier::feed`] for an event whose hash was already checked
    /// against its content (`sealed`), so that hashing can run elsewhere.
    pub fn feed_sealed(&mut self, event: &AuditEvent, sealed: bool) -> bool {
        if self.broken.is_some() {
            return false;
        }
        let fault = if event.seq != self.expected_seq {
            Some(ChainFault::Gap { found: event.seq })
        } else if !sealed {
            Some(ChainFault::HashMismatch)
        } else if event.prev_hash != self.prev_hash {
            Some(ChainFault::BrokenLink)
        } else {
            None
        };
        if let Some(fault) = fault {
            self.broken = Some((self.expected_seq, fault));
            return false;
        }
        self.expected_seq += 1;
        self.prev_hash = event.hash.clone();
        self.count += 1;
        true
    }

    /// The verdict once every event has been fed; `head_seq` is the last
    /// sequence number the store handed out (a deleted tail shows here).
    pub fn finish(self, head_seq: i64) -> Verdict {
        if let Some((seq, fault)) = self.broken {
            return Verdict::Broken { seq, fault };
        }
        if head_seq >= self.expected_seq {
            return Verdict::Broken {
                seq: self.expected_seq,
                fault: ChainFault::Gap { found: head_seq },
            };
        }
        Verdict::Intact { count: self.count }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEvent> {
        let actor = ActorRecord {
            kind: ActorKind::User,
            id: "1".into(),
            name: "ada".into(),
            role: Some("lead".into()),
        };
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let new = NewEvent::new(
                    actor.clone(),
                    "lock.set",
                    Outcome::Succeeded,
                    &RequestMeta::default(),
                )
                .params(serde_json::json!({"reason": format!("r{seq}")}));
                let event = AuditEvent::seal(
                    &new,
                    seq,
                    format!("id{seq}"),
                    format!("2026-01-01T00:00:{seq:02}Z"),
                    prev.clone(),
                );
                prev = event.hash.clone();
                event
            })
            .collect()
    }

    fn verify(events: &[AuditEvent], head: i64) -> Verdict {
        let mut v = ChainVerifier::default();
        for e in events {
            if !v.feed(e) {
                break;
            }
        }
        v.finish(head)
    }

    #[test]
    fn an_untouched_chain_verifies_with_its_count() {
        assert_eq!(verify(&chain(5), 5), Verdict::Intact { count: 5 });
        assert_eq!(verify(&[], 0), Verdict::Intact { count: 0 });
    }

    #[test]
    fn an_edited_row_is_named() {
        let mut events = chain(5);
        events[2].target = Some("edited".into());
        assert_eq!(
            verify(&events, 5),
            Verdict::Broken {
                seq: 3,
                fault: ChainFault::HashMismatch
            }
        );
    }

    #[test]
    fn a_deleted_row_is_named() {
        let mut events = chain(5);
        events.remove(3);
        assert_eq!(
            verify(&events, 5),
            Verdict::Broken {
                seq: 4,
                fault: ChainFault::Gap { found: 5 }
            }
        );
    }

    #[test]
    fn a_deleted_last_row_is_found_through_the_head() {
        let events = chain(5);
        assert_eq!(
            verify(&events[..4], 5),
            Verdict::Broken {
                seq: 5,
                fault: ChainFault::Gap { found: 5 }
            }
        );
    }

    #[test]
    fn two_swapped_rows_are_named_at_the_first() {
        let mut events = chain(6);
        // Swap the contents of rows 2 and 5 but keep the seq column in place.
        let (a, b) = (events[1].clone(), events[4].clone());
        events[1] = AuditEvent { seq: 2, ..b };
        events[4] = AuditEvent { seq: 5, ..a };
        assert_eq!(
            verify(&events, 6),
            Verdict::Broken {
                seq: 2,
                fault: ChainFault::HashMismatch
            }
        );
    }

    #[test]
    fn a_rehashed_edit_still_breaks_the_link_to_the_next_row() {
        let mut events = chain(4);
        events[1].target = Some("edited".into());
        events[1].hash = events[1].computed_hash();
        assert_eq!(
            verify(&events, 4),
            Verdict::Broken {
                seq: 3,
                fault: ChainFault::BrokenLink
            }
        );
    }

    /// The hash as it was first defined: the canonical JSON of a `Value`
    /// holding every field. Stored trails were sealed this way, so the
    /// direct serialisation must give the same bytes for any content.
    fn hash_through_value(e: &AuditEvent) -> String {
        let body = serde_json::json!({
            "seq": e.seq, "id": e.id, "at": e.at, "actor_kind": e.actor_kind,
            "actor_id": e.actor_id, "actor_name": e.actor_name,
            "actor_role": e.actor_role, "action": e.action,
            "environment": e.environment, "target": e.target,
            "params": e.params, "outcome": e.outcome, "error": e.error,
            "request_id": e.request_id, "ip": e.ip, "user_agent": e.user_agent,
        });
        let mut hasher = Sha256::new();
        hasher.update(e.prev_hash.as_bytes());
        hasher.update(b"\n");
        hasher.update(canonical_json(&body).as_bytes());
        hex(&hasher.finalize())
    }

    #[test]
    fn the_direct_hash_equals_the_canonical_json_hash_for_any_content() {
        use flightdeck_sandbox::scenario::SeededRng;
        const PIECES: [&str; 12] = [
            "ada",
            "\"",
            "\\",
            "\n",
            "\t",
            "\u{1}",
            "\u{7f}",
            "<script>",
            "é",
            "✓",
            "😀",
            "{\"k\":[1,null]}",
        ];
        let mut rng = SeededRng::new(7);
        let text = |rng: &mut SeededRng| -> String {
            (0..rng.below(4))
                .map(|_| PIECES[rng.below(PIECES.len() as u64) as usize])
                .collect()
        };
        let maybe =
            |rng: &mut SeededRng| -> Option<String> { (rng.below(3) > 0).then(|| text(rng)) };
        for mut event in chain(3) {
            for _ in 0..300 {
                event.seq = rng.next_u64() as i64;
                event.id = text(&mut rng);
                event.at = text(&mut rng);
                event.actor_kind = text(&mut rng);
                event.actor_id = text(&mut rng);
                event.actor_name = text(&mut rng);
                event.actor_role = maybe(&mut rng);
                event.action = text(&mut rng);
                event.environment = maybe(&mut rng);
                event.target = maybe(&mut rng);
                event.params = text(&mut rng);
                event.outcome = text(&mut rng);
                event.error = maybe(&mut rng);
                event.request_id = maybe(&mut rng);
                event.ip = maybe(&mut rng);
                event.user_agent = maybe(&mut rng);
                event.prev_hash = text(&mut rng);
                assert_eq!(
                    event.computed_hash(),
                    hash_through_value(&event),
                    "{event:?}"
                );
            }
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v = serde_json::json!({"b": 1, "a": {"d": [1, {"z": 0, "y": null}], "c": "x"}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":"x","d":[1,{"y":null,"z":0}]},"b":1}"#
        );
    }

    #[test]
    fn secret_looking_params_are_redacted_at_any_depth() {
        let v =
            redact(serde_json::json!({"name": "ada", "password": "p", "nested": {"api_key": "k"}}));
        assert_eq!(
            v,
            serde_json::json!({"name": "ada", "password": "[redacted]", "nested": {"api_key": "[redacted]"}})
        );
    }
}
