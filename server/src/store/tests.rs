//! The same store tests on both backends. PostgreSQL is expected at
//! 127.0.0.1:5432 (override with FLIGHTDECK_TEST_PG); each test creates its
//! own database and drops it. A missing server fails the test: nothing is skipped.

use super::*;
use crate::audit::{ChainFault, Outcome, RequestMeta};
use crate::identity::{Actor, anonymous};
use flightdeck_sandbox::scratch::ScratchDb;

/// A throw-away store of the given backend on a fresh
/// [`ScratchDb`](flightdeck_sandbox::scratch::ScratchDb), migrated; the
/// caller removes it with [`TestStore::drop_all`].
pub(crate) struct TestStore {
    pub store: Store,
    scratch: ScratchDb,
}

impl TestStore {
    pub async fn new(backend: &str) -> TestStore {
        let scratch = ScratchDb::new(backend).await;
        let store = Store::connect(&scratch.url).await.unwrap();
        store.migrate().await.unwrap();
        TestStore { store, scratch }
    }

    /// The store's URL, for a second pool on it.
    pub fn url(&self) -> String {
        self.scratch.url.clone()
    }

    pub async fn drop_all(self) {
        self.close_pool().await;
        self.scratch.drop_all().await;
    }

    /// Drops the PostgreSQL database (after closing this pool); for owners
    /// that cannot give the store up by value.
    pub async fn drop_database(&self) {
        self.close_pool().await;
        self.scratch.drop_database().await;
    }

    async fn close_pool(&self) {
        if let Pool::Postgres(pool) = &self.store.pool {
            pool.close().await;
        }
    }

    /// Runs raw SQL, for tests that play the attacker.
    pub async fn exec(&self, sql: &str) -> Result<(), sqlx::Error> {
        match &self.store.pool {
            Pool::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
            Pool::Postgres(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
        }
    }

    pub async fn drop_audit_triggers(&self) {
        let sql = match self.store.backend() {
            "sqlite" => "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;",
            _ => "DROP TRIGGER audit_events_no_update ON audit_events;",
        };
        self.exec(sql).await.unwrap();
    }
}

/// Runs `test` once on each backend.
macro_rules! on_both_backends {
    ($($name:ident => $body:expr;)*) => {
        mod sqlite_backend { use super::*; $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { run("sqlite", $body).await } )* }
        mod postgres_backend { use super::*; $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { run("postgres", $body).await } )* }
    };
}

async fn run(backend: &str, test: impl AsyncFnOnce(&TestStore)) {
    let store = TestStore::new(backend).await;
    test(&store).await;
    store.drop_all().await;
}

fn admin() -> Actor {
    Actor::system("test")
}

fn event(action: &str) -> NewEvent {
    NewEvent::new(
        admin().record(),
        action,
        Outcome::Succeeded,
        &RequestMeta::default(),
    )
}

async fn fill(store: &Store, n: usize) {
    for i in 0..n {
        store
            .append_audit(&event("test.event").target(format!("t{i}")))
            .await
            .unwrap();
    }
}

async fn verdict(t: &TestStore) -> Verdict {
    t.store.verify_audit().await.unwrap()
}

on_both_backends! {
    accounts_are_created_found_listed_and_names_are_unique => async |t: &TestStore| {
        let user = t.store.insert_user("ada", Role::Lead, "hash", &event("user.add")).await.unwrap();
        assert_eq!(user.role, Role::Lead);
        assert!(!user.disabled);
        assert_eq!(t.store.user_by_name("ada").await.unwrap(), Some(user.clone()));
        assert_eq!(t.store.user_by_id(user.id).await.unwrap(), Some(user));
        assert!(t.store.user_by_name("bob").await.unwrap().is_none());
        let again = t.store.insert_user("ada", Role::Viewer, "hash", &event("user.add")).await;
        assert!(matches!(again, Err(StoreError::Duplicate)));
        // The failed insert rolled its audit row back: one event, not two.
        assert_eq!(t.store.audit_head_seq().await.unwrap(), 1);
        assert_eq!(t.store.list_users().await.unwrap().len(), 1);
    };

    disabling_an_account_is_stored_and_audited_together => async |t: &TestStore| {
        t.store.insert_user("ada", Role::Viewer, "hash", &event("user.add")).await.unwrap();
        t.store.disable_user("ada", &event("user.disable")).await.unwrap();
        assert!(t.store.user_by_name("ada").await.unwrap().unwrap().disabled);
        let missing = t.store.disable_user("nobody", &event("user.disable")).await;
        assert!(matches!(missing, Err(StoreError::NotFound)));
        let trail = t.store.audit_page(0, 10).await.unwrap();
        let actions: Vec<_> = trail.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["user.add", "user.disable"]);
    };

    the_store_answers_a_ping => async |t: &TestStore| {
        t.store.ping().await.unwrap();
    };

    a_clean_trail_verifies_with_its_count => async |t: &TestStore| {
        assert_eq!(verdict(t).await, Verdict::Intact { count: 0 });
        fill(&t.store, 12).await;
        assert_eq!(verdict(t).await, Verdict::Intact { count: 12 });
    };

    concurrent_appends_get_gapless_numbers_and_a_valid_chain => async |t: &TestStore| {
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let store = t.store.clone();
                tokio::spawn(async move {
                    store.append_audit(&event("test.concurrent").target(format!("t{i}"))).await.unwrap().seq
                })
            })
            .collect();
        let mut seqs = Vec::new();
        for task in tasks {
            seqs.push(task.await.unwrap());
        }
        seqs.sort();
        assert_eq!(seqs, (1..=200).collect::<Vec<i64>>());
        assert_eq!(verdict(t).await, Verdict::Intact { count: 200 });
    };

    the_database_refuses_update_and_delete_on_the_trail => async |t: &TestStore| {
        fill(&t.store, 3).await;
        let update = t.exec("UPDATE audit_events SET target = 'x' WHERE seq = 2").await;
        assert!(update.unwrap_err().to_string().contains("append-only"));
        let delete = t.exec("DELETE FROM audit_events WHERE seq = 2").await;
        assert!(delete.unwrap_err().to_string().contains("append-only"));
        assert_eq!(verdict(t).await, Verdict::Intact { count: 3 });
    };

    an_edited_row_is_named_by_verify => async |t: &TestStore| {
        fill(&t.store, 6).await;
        t.drop_audit_triggers().await;
        t.exec("UPDATE audit_events SET target = 'forged' WHERE seq = 4").await.unwrap();
        assert_eq!(verdict(t).await, Verdict::Broken { seq: 4, fault: ChainFault::HashMismatch });
    };

    a_deleted_row_is_named_by_verify => async |t: &TestStore| {
        fill(&t.store, 6).await;
        t.drop_audit_triggers().await;
        t.exec("DELETE FROM audit_events WHERE seq = 3").await.unwrap();
        assert_eq!(verdict(t).await, Verdict::Broken { seq: 3, fault: ChainFault::Gap { found: 4 } });
    };

    a_slice_of_the_trail_reads_back_every_field_exactly => async |t: &TestStore| {
        // SQLite packs a slice into JSON: text with quotes, escapes, control
        // characters and non-ASCII, NULLs and nested JSON params come back
        // as stored, in seq order, the same as the row-by-row read.
        let meta = RequestMeta {
            request_id: Some("req \"1\"".into()),
            ip: None,
            user_agent: Some("Mozilla/5.0 (\u{7}\t\\) ✓ 😀".into()),
        };
        for (i, text) in ["plain", "quote \" backslash \\ tab \t nl \n", "\u{1}\u{1f}\u{7f}", "añade ✓ 😀 <script>", ""].iter().enumerate() {
            let mut event = NewEvent::new(admin().record(), "test.json", Outcome::Denied, &meta)
                .target(*text)
                .params(serde_json::json!({"text": text, "n": i, "nested": [null, true, 1.5]}));
            if i % 2 == 0 {
                event = event.error(format!("error: {text}")).environment("production");
            }
            t.store.append_audit(&event).await.unwrap();
        }
        let rows = t.store.audit_page(0, 100).await.unwrap();
        assert_eq!(rows.len(), 5);
        assert_eq!(t.store.audit_between(0, 5).await.unwrap(), rows);
        assert_eq!(t.store.audit_between(1, 3).await.unwrap(), rows[1..3]);
        assert!(t.store.audit_between(5, 9).await.unwrap().is_empty());
        assert_eq!(verdict(t).await, Verdict::Intact { count: 5 });
    };

    a_row_deleted_at_the_end_of_a_verify_slice_is_named_as_a_gap => async |t: &TestStore| {
        // Verify reads the trail in slices of 5,000 seqs, several at once:
        // the row that ends the second slice is gone, and a row far later
        // is edited; the first fault in chain order is named.
        let batch: Vec<NewEvent> = (0..12_000).map(|i| event("test.batch").target(format!("b{i}"))).collect();
        t.store.append_audit_batch(&batch).await.unwrap();
        assert_eq!(verdict(t).await, Verdict::Intact { count: 12_000 });
        t.drop_audit_triggers().await;
        t.exec("UPDATE audit_events SET target = 'forged' WHERE seq = 11000").await.unwrap();
        assert_eq!(verdict(t).await, Verdict::Broken { seq: 11_000, fault: ChainFault::HashMismatch });
        t.exec("DELETE FROM audit_events WHERE seq = 10000").await.unwrap();
        assert_eq!(verdict(t).await, Verdict::Broken { seq: 10_000, fault: ChainFault::Gap { found: 10_001 } });
    };

    two_swapped_rows_are_named_by_verify => async |t: &TestStore| {
        fill(&t.store, 6).await;
        t.drop_audit_triggers().await;
        // Exchange the positions of rows 2 and 5.
        t.exec("UPDATE audit_events SET seq = -2 WHERE seq = 2").await.unwrap();
        t.exec("UPDATE audit_events SET seq = 2 WHERE seq = 5").await.unwrap();
        t.exec("UPDATE audit_events SET seq = 5 WHERE seq = -2").await.unwrap();
        assert_eq!(verdict(t).await, Verdict::Broken { seq: 2, fault: ChainFault::HashMismatch });
    };

    a_batch_mixed_with_single_appends_keeps_the_chain_gapless_and_intact => async |t: &TestStore| {
        t.store.append_audit(&event("test.single")).await.unwrap();
        let batch: Vec<NewEvent> = (0..2_500).map(|i| event("test.batch").target(format!("b{i}"))).collect();
        // 2,500 events: three INSERTs (1,000 rows each at most) in one transaction.
        assert_eq!(t.store.append_audit_batch(&batch).await.unwrap(), 2_501);
        let single = t.store.append_audit(&event("test.single")).await.unwrap();
        assert_eq!(single.seq, 2_502);
        assert_eq!(t.store.append_audit_batch(&batch[..7]).await.unwrap(), 2_509);
        assert_eq!(t.store.append_audit_batch(&[]).await.unwrap(), 2_509, "nothing appended, the head's seq");
        assert_eq!(t.store.append_audit(&event("test.single")).await.unwrap().seq, 2_510);

        let mut seqs = Vec::new();
        let mut after = 0;
        loop {
            let page = t.store.audit_page(after, 1_000).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.seq;
            seqs.extend(page.iter().map(|e| e.seq));
        }
        assert_eq!(seqs, (1..=2_510).collect::<Vec<i64>>());
        let page = t.store.audit_page(1, 3).await.unwrap();
        assert_eq!(page.iter().map(|e| e.target.as_deref()).collect::<Vec<_>>(), [Some("b0"), Some("b1"), Some("b2")]);
        assert_eq!(t.store.audit_head_seq().await.unwrap(), 2_510);
        assert_eq!(verdict(t).await, Verdict::Intact { count: 2_510 });
    };

    a_batch_may_carry_past_times_in_order_but_never_backwards_or_ahead_of_now => async |t: &TestStore| {
        use time::{Duration, OffsetDateTime};
        let start = OffsetDateTime::now_utc() - Duration::days(730);
        let history: Vec<NewEvent> = (0..1_500).map(|i| event("test.history").at(start + Duration::hours(i))).collect();
        assert_eq!(t.store.append_audit_batch(&history).await.unwrap(), 1_500);
        let first = t.store.audit_page(0, 1).await.unwrap().remove(0);
        assert_eq!(first.at, sync::store_time(start));
        // A time before the last event's, or one ahead of now, is refused
        // and the whole batch rolls back with it.
        let backwards = [event("test.history").at(start + Duration::hours(2_000)), event("test.history").at(start)];
        let refused = t.store.append_audit_batch(&backwards).await;
        assert!(matches!(refused, Err(StoreError::AuditTimeOutOfOrder(_))), "{refused:?}");
        let ahead = event("test.history").at(OffsetDateTime::now_utc() + Duration::hours(1));
        assert!(matches!(t.store.append_audit(&ahead).await, Err(StoreError::AuditTimeOutOfOrder(_))));
        assert_eq!(t.store.audit_head_seq().await.unwrap(), 1_500);
        // Events stamped now follow on.
        assert_eq!(t.store.append_audit(&event("test.now")).await.unwrap().seq, 1_501);
        let mut times = Vec::new();
        let mut after = 0;
        loop {
            let page = t.store.audit_page(after, 1_000).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.seq;
            times.extend(page.into_iter().map(|e| e.at));
        }
        assert!(times.is_sorted(), "times never decrease along the chain");
        assert_eq!(verdict(t).await, Verdict::Intact { count: 1_501 });
    };

    a_refusal_by_an_anonymous_caller_is_recorded => async |t: &TestStore| {
        let refused = NewEvent::new(anonymous(Some("mallory")), "auth.login_failed", Outcome::Denied, &RequestMeta::default());
        let stored = t.store.append_audit(&refused).await.unwrap();
        assert_eq!(stored.actor_kind, "anonymous");
        assert_eq!(stored.outcome, "denied");
        assert_eq!(stored.actor_name, "mallory");
    };
}

/// The sync's tables: records round-trip whole, newest first, and the
/// bookkeeping (sync state, deliveries) behaves the same on both backends.
mod sync_tables {
    use super::*;
    use crate::releases::{CommitRecord, DeployRecord, MigrationsAt, RunRecord};
    use time::macros::datetime;

    fn deploy(id: &str, env: &str, minute: i64) -> DeployRecord {
        DeployRecord {
            id: id.into(),
            environment: env.into(),
            service_id: "srv-1".into(),
            commit_sha: format!("sha-{id}"),
            commit_message: "Añade <b>señales</b>".into(),
            status: "live".into(),
            trigger: "api".into(),
            created_at: datetime!(2026-11-20 09:00 UTC) + time::Duration::minutes(minute),
            updated_at: datetime!(2026-11-20 09:00 UTC) + time::Duration::minutes(minute),
            finished_at: None,
        }
    }

    fn pipeline_run(id: u64, branch: &str, sha: &str) -> RunRecord {
        RunRecord {
            id,
            workflow_file: "deploy.yml".into(),
            name: "CI".into(),
            head_sha: sha.into(),
            head_branch: branch.into(),
            event: "push".into(),
            status: "completed".into(),
            conclusion: Some("success".into()),
            run_attempt: 1,
            created_at: datetime!(2026-11-20 09:00 UTC) + time::Duration::seconds(id as i64),
            updated_at: datetime!(2026-11-20 09:00 UTC),
            html_url: format!("https://github.com/o/r/actions/runs/{id}"),
            jobs: vec![],
        }
    }

    on_both_backends! {
        deploys_runs_and_commits_round_trip_newest_first => async |t: &TestStore| {
            let s = &t.store;
            s.upsert_deploys(&[deploy("d1", "production", 0), deploy("d2", "production", 5), deploy("d3", "staging", 9)]).await.unwrap();
            let mut changed = deploy("d1", "production", 0);
            changed.status = "deactivated".into();
            s.upsert_deploys(&[changed.clone()]).await.unwrap();
            let got = s.deploys("production", 10).await.unwrap();
            assert_eq!(got.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["d2", "d1"]);
            assert_eq!(got[1], changed);
            assert_eq!(s.deploy("d3").await.unwrap().unwrap().environment, "staging");
            assert_eq!(s.deploys("production", 1).await.unwrap().len(), 1);

            s.upsert_runs(&[pipeline_run(1, "main", "a"), pipeline_run(2, "main", "b"), pipeline_run(3, "staging", "a")]).await.unwrap();
            let main: Vec<u64> = s.runs_on_branch("main", 10).await.unwrap().iter().map(|r| r.id).collect();
            assert_eq!(main, [2, 1]);
            let for_a: Vec<u64> = s.runs_for_shas(&["a".into()]).await.unwrap().iter().map(|r| r.id).collect();
            assert_eq!(for_a, [3, 1]);
            assert_eq!(s.run(2).await.unwrap(), Some(pipeline_run(2, "main", "b")));
            assert!(s.runs_for_shas(&[]).await.unwrap().is_empty());

            let commit = CommitRecord {
                sha: "a".into(),
                message: "<script>alert(1)</script>".into(),
                author: "Zoë".into(),
                author_login: Some("zoe".into()),
                committed_at: datetime!(2026-11-19 12:00 UTC),
                html_url: "https://github.com/o/r/commit/a".into(),
                migrations: Some(MigrationsAt { revisions: vec![], problems: vec!["x.py:3: bad".into()] }),
            };
            s.upsert_commits(std::slice::from_ref(&commit)).await.unwrap();
            // Written again without migrations: the ones read before stay.
            s.upsert_commits(&[CommitRecord { migrations: None, ..commit.clone() }]).await.unwrap();
            assert_eq!(s.commits_by_sha(&["a".into(), "zzz".into()]).await.unwrap(), vec![commit]);
        };

        sync_state_database_state_and_deliveries => async |t: &TestStore| {
            let s = &t.store;
            assert!(s.database_state("production").await.unwrap().is_none());
            s.set_database_state("production", &["abc".into(), "def".into()]).await.unwrap();
            s.set_database_state("production", &["abc".into()]).await.unwrap();
            assert_eq!(s.database_state("production").await.unwrap().unwrap().versions, ["abc"]);

            s.record_sync("production", "github_runs", Ok(Some("\"etag-1\""))).await.unwrap();
            s.record_sync("production", "github_runs", Err("GitHub answered 502")).await.unwrap();
            s.record_sync("production", "github_runs", Err("GitHub answered 503")).await.unwrap();
            let state = &s.sync_states().await.unwrap()[0];
            assert_eq!((state.failures, state.last_error.as_deref()), (2, Some("GitHub answered 503")));
            assert_eq!(state.etag.as_deref(), Some("\"etag-1\""), "a failure keeps the ETag");
            assert!(state.last_ok_at.is_some());
            s.record_sync("production", "github_runs", Ok(None)).await.unwrap();
            let state = &s.sync_states().await.unwrap()[0];
            assert_eq!((state.failures, state.last_error.as_deref()), (0, None));
            assert_eq!(state.etag.as_deref(), Some("\"etag-1\""), "no new ETag keeps the old one");

            assert!(s.record_delivery("github", "d-1").await.unwrap());
            assert!(!s.record_delivery("github", "d-1").await.unwrap());
            assert!(s.record_delivery("render", "d-1").await.unwrap(), "per source");
        };
    }
}

/// Locks: one per environment, enforced by the database, each change audited
/// in the same transaction.
mod environment_locks {
    use super::*;

    on_both_backends! {
        one_lock_per_environment_and_each_change_is_audited => async |t: &TestStore| {
            let s = &t.store;
            let before = s.audit_head_seq().await.unwrap();
            let lock = s.lock_environment("production", "rolled back", "dee", &event("environment.lock")).await.unwrap();
            assert_eq!((lock.reason.as_str(), lock.locked_by.as_str()), ("rolled back", "dee"));
            // Twenty lockers at once: the database lets none of them in.
            let again = event("environment.lock");
            let attempts = (0..20).map(|_| s.lock_environment("production", "again", "lee", &again));
            for result in futures_util::future::join_all(attempts).await {
                assert!(matches!(result, Err(StoreError::Duplicate)), "{result:?}");
            }
            assert!(s.lock_environment("staging", "other env", "dee", &event("environment.lock")).await.is_ok());
            assert_eq!(s.environment_lock("production").await.unwrap(), Some(lock));
            s.unlock_environment("production", &event("environment.unlock")).await.unwrap();
            assert!(matches!(s.unlock_environment("production", &event("environment.unlock")).await, Err(StoreError::NotFound)));
            assert!(s.environment_lock("production").await.unwrap().is_none());
            // The lock, staging's lock and the unlock: the refused and the
            // no-op calls rolled their audit rows back with them.
            assert_eq!(s.audit_head_seq().await.unwrap(), before + 3);
            assert!(matches!(s.verify_audit().await.unwrap(), Verdict::Intact { .. }));
        };
    }
}

mod audit_filter {
    use super::*;
    use crate::store::audit_filter::Filter;

    on_both_backends! {
        the_filter_combines_and_pages_by_sequence_number => async |t: &TestStore| {
            for i in 0..30 {
                let action = if i % 3 == 0 { "rollback.start" } else { "overview.view" };
                let mut e = event(action).target(format!("t{i}"));
                if i % 2 == 0 {
                    e = e.environment("production");
                }
                t.store.append_audit(&e).await.unwrap();
            }
            let filter = Filter {
                action: Some("rollback.start".into()),
                environment: Some("production".into()),
                ..Filter::default()
            };
            let all = t.store.audit_filtered(&filter, 0, 100).await.unwrap();
            // i in 0..30 with i % 6 == 0: 0, 6, 12, 18, 24.
            assert_eq!(all.len(), 5);
            assert!(all.iter().all(|e| e.action == "rollback.start" && e.environment.as_deref() == Some("production")));
            let first = t.store.audit_filtered(&filter, 0, 2).await.unwrap();
            let next = t.store.audit_filtered(&filter, first[1].seq, 2).await.unwrap();
            assert_eq!(
                first.iter().chain(&next).map(|e| e.seq).collect::<Vec<_>>(),
                all[..4].iter().map(|e| e.seq).collect::<Vec<_>>()
            );
            let at = all[2].at.clone();
            let since = Filter { since: Some(at.clone()), ..filter.clone() };
            assert_eq!(t.store.audit_filtered(&since, 0, 100).await.unwrap().len(), 3);
            let until = Filter { until: Some(at), ..filter.clone() };
            assert_eq!(t.store.audit_filtered(&until, 0, 100).await.unwrap().len(), 2);
            // Newest first, a page at a time, for the review screen.
            let newest = t.store.audit_newest(&filter, None, 2).await.unwrap();
            let older = t.store.audit_newest(&filter, Some(newest[1].seq), 2).await.unwrap();
            let mut expected: Vec<i64> = all.iter().rev().map(|e| e.seq).collect();
            expected.truncate(4);
            assert_eq!(newest.iter().chain(&older).map(|e| e.seq).collect::<Vec<_>>(), expected);
            let one = Filter { target: Some("t12".into()), ..Filter::default() };
            let hits = t.store.audit_newest(&one, None, 10).await.unwrap();
            assert_eq!(hits.iter().map(|e| e.target.as_deref()).collect::<Vec<_>>(), [Some("t12")]);
        };
    }
}
