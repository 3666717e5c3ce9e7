//! A long audit trail written into a panel's store before it starts, for
//! the export tests: more events than one page of the export (1,000), with
//! the cells a CSV writer gets wrong (commas, quotes, line breaks, formula
//! starts, non-ASCII text).

use flightdeck::audit::{ActorKind, ActorRecord, NewEvent, Outcome, RequestMeta};
use flightdeck::store::Store;
use time::OffsetDateTime;

/// Events per export page (`control::audit::PAGE`), for the tests' sizes.
pub const EXPORT_PAGE: usize = 1000;

/// Writes `count` events into the SQLite store at `store_url` (creating
/// and migrating it), 100 ms apart, the first an hour ago. Returns an
/// `until` filter (a UTC minute, as the page's field sends it) that selects
/// all of them and nothing written from half an hour ago on: the accounts
/// added afterwards and the exports' own events fall outside it.
pub async fn seed(store_url: &str, count: usize) -> String {
    let store = Store::connect(store_url).await.unwrap();
    store.migrate().await.unwrap();
    let now = OffsetDateTime::now_utc();
    let start = now - time::Duration::hours(1);
    assert!(count <= 18_000, "the events must end before the cut-off");
    let actors = ["ada", "grace", "linus", "Zoë Ñandú"];
    let actions = [
        "token.use",
        "rollback.start",
        "request.refused",
        "deploy.trigger",
    ];
    let events: Vec<NewEvent> = (0..count)
        .map(|i| {
            let meta = RequestMeta {
                request_id: Some(format!("req-{i:06}")),
                ip: Some(format!("10.0.{}.{}", i / 256 % 256, i % 256)),
                user_agent: Some("Mozilla/5.0 (X11; Linux x86_64), \"quoted\"".to_owned()),
            };
            let actor = ActorRecord {
                kind: if i % 5 == 0 {
                    ActorKind::Token
                } else {
                    ActorKind::User
                },
                id: (i % actors.len() + 1).to_string(),
                name: actors[i % actors.len()].to_owned(),
                role: Some("lead".to_owned()),
            };
            let outcome = match i % 7 {
                0 => Outcome::Denied,
                1 => Outcome::Failed,
                _ => Outcome::Succeeded,
            };
            let mut event = NewEvent::new(actor, actions[i % actions.len()], outcome, &meta)
                .at(start + time::Duration::milliseconds(100 * i as i64))
                .target(format!("op_{i:06}"))
                .params(serde_json::json!({
                    "reason": format!("event {i}: checkout, \"cart\" → 500\nsince the deploy"),
                    "n": i,
                }));
            if i % 2 == 0 {
                event = event.environment(if i % 4 == 0 { "production" } else { "staging" });
            }
            if i % 7 == 1 {
                event = event.error(format!("=HYPERLINK(\"http://x\") failed, try {i}"));
            }
            event
        })
        .collect();
    for chunk in events.chunks(5000) {
        store.append_audit_batch(chunk).await.unwrap();
    }
    let cut = now - time::Duration::minutes(30);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        cut.year(),
        u8::from(cut.month()),
        cut.day(),
        cut.hour(),
        cut.minute()
    )
}
