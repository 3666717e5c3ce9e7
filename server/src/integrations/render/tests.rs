//! The Render client against the simulated Render, over real sockets.

use super::*;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use flightdeck_sandbox::faults::{Fault, FaultKind};
use flightdeck_sandbox::render::{Commit, RenderSim, ServiceSeed, Timing};

const KEY: &str = "rnd_client_test_key_0123456789";

struct Sim {
    sim: RenderSim,
    base: String,
}

fn sha(n: u32) -> String {
    format!("{n:040x}")
}

impl Sim {
    async fn start() -> Sim {
        let sim = RenderSim::new(
            KEY,
            Timing {
                build: Duration::from_millis(300),
                update: Duration::from_millis(300),
            },
        );
        let t0 = OffsetDateTime::now_utc() - time::Duration::days(1);
        for i in 0..2 {
            sim.add_service(
                ServiceSeed {
                    id: format!("srv-{i}"),
                    name: format!("app-{i}"),
                    branch: "main".into(),
                    deploy_hook_key: format!("hook-{i}"),
                },
                t0,
            );
        }
        for n in 1..=3 {
            sim.add_commit(Commit {
                id: sha(n),
                message: format!("commit {n}"),
                created_at: t0,
            });
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        sim.spawn(listener);
        Sim { sim, base }
    }

    fn client(&self) -> RenderClient {
        RenderClient::new(&self.base, KEY.to_owned()).unwrap()
    }

    /// A finished deploy of commit `n`, started `minutes_ago`.
    fn seeded(&self, n: u32, minutes_ago: i64) -> String {
        self.sim
            .seed_deploy(
                "srv-0",
                &sha(n),
                "new_commit",
                OffsetDateTime::now_utc() - time::Duration::minutes(minutes_ago),
            )
            .unwrap()
    }
}

#[tokio::test]
async fn every_call_works_against_the_simulated_render() {
    let s = Sim::start().await;
    let client = s.client();
    let good = s.seeded(1, 30);

    let services = client.list_services().await.unwrap();
    let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["app-0", "app-1"]);
    let service = client.get_service("srv-0").await.unwrap();
    assert!(service.auto_deploy);
    assert_eq!(service.branch.as_deref(), Some("main"));

    let off = client.set_auto_deploy("srv-0", false).await.unwrap();
    assert!(!off.auto_deploy);
    assert!(!client.get_service("srv-0").await.unwrap().auto_deploy);
    assert_eq!(s.sim.calls().auto_deploy_patches, 1);

    let Triggered::Started(deploy) = client
        .trigger_deploy("srv-0", Some(&sha(2)), true)
        .await
        .unwrap()
    else {
        panic!("the simulator starts deploys at once");
    };
    assert_eq!(deploy.status, DeployStatus::BuildInProgress);
    assert_eq!(deploy.trigger, Some(DeployTrigger::Api));
    let commit = deploy.commit.clone().unwrap();
    assert_eq!(
        (commit.id.as_str(), commit.message.as_str()),
        (sha(2).as_str(), "commit 2")
    );
    assert!(commit.created_at.is_some());
    assert_eq!(
        client.get_deploy("srv-0", &deploy.id).await.unwrap().id,
        deploy.id
    );

    let canceled = client.cancel_deploy("srv-0", &deploy.id).await.unwrap();
    assert_eq!(canceled.status, DeployStatus::Canceled);
    assert!(canceled.status.failed() && canceled.finished_at.is_some());
    let again = client.cancel_deploy("srv-0", &deploy.id).await.unwrap_err();
    assert!(
        matches!(again, RenderError::Conflict(ref msg) if msg.contains("not in progress")),
        "{again}"
    );
    assert_eq!(s.sim.calls().cancels, 1);

    let rollback = client.rollback("srv-0", &good).await.unwrap();
    assert_eq!(rollback.trigger, Some(DeployTrigger::Rollback));
    assert!(rollback.status.in_progress());
    assert_eq!(s.sim.calls().rollbacks, 1);
    assert!(
        !client.get_service("srv-0").await.unwrap().auto_deploy,
        "a rollback leaves auto-deploy as it was"
    );

    let events = client.list_events("srv-0", 50).await.unwrap();
    assert!(events.iter().all(|e| e.service_id == "srv-0"));
    let canceled_end = events
        .iter()
        .find(|e| e.kind == "deploy_ended" && e.deploy_id() == Some(deploy.id.as_str()))
        .expect("the cancel is in the event log");
    assert_eq!(canceled_end.outcome(), Some("canceled"));
    assert!(
        events.windows(2).all(|w| w[0].timestamp >= w[1].timestamp),
        "newest first"
    );

    assert_eq!(
        client.get_deploy("srv-0", "dep-nope").await.unwrap_err(),
        RenderError::NotFound
    );
    assert!(matches!(
        client.rollback("srv-0", &deploy.id).await.unwrap_err(),
        RenderError::Refused { status: 400, ref msg } if msg.contains("never went live")
    ));
}

#[tokio::test]
async fn lists_follow_cursors_across_pages_and_stop_where_asked() {
    let s = Sim::start().await;
    let mut ids: Vec<String> = (0..7).map(|i| s.seeded(1, 70 - i * 10)).collect();
    ids.reverse(); // newest first, as Render lists them
    let mut client = s.client();
    client.page = 2;

    let listed = |deploys: Vec<Deploy>| deploys.into_iter().map(|d| d.id).collect::<Vec<_>>();
    assert_eq!(
        listed(client.list_deploys("srv-0", 5).await.unwrap()),
        ids[..5]
    );
    assert_eq!(
        listed(client.list_deploys("srv-0", 100).await.unwrap()),
        ids,
        "four pages, the last one short"
    );
    assert_eq!(
        listed(
            client
                .list_deploys_since("srv-0", Some(&ids[3]), 100)
                .await
                .unwrap()
        ),
        ids[..3],
        "only what is newer than the known deploy"
    );
    assert_eq!(
        listed(
            client
                .list_deploys_since("srv-0", Some(&ids[0]), 100)
                .await
                .unwrap()
        ),
        Vec::<String>::new()
    );
    client.page = 1;
    assert_eq!(client.list_services().await.unwrap().len(), 2);
    let events = client.list_events("srv-0", 100).await.unwrap();
    assert!(events.len() > 7, "one event per page, followed to the end");
}

#[tokio::test]
async fn a_wrong_key_is_unauthorized() {
    let s = Sim::start().await;
    let client = RenderClient::new(&s.base, "rnd_wrong".to_owned()).unwrap();
    assert_eq!(
        client.list_services().await.unwrap_err(),
        RenderError::Unauthorized
    );
}

/// Each injected fault, and the error the client makes of it.
#[tokio::test]
async fn injected_faults_become_the_matching_errors() {
    let s = Sim::start().await;
    let client = s.client().with_timeout(Duration::from_millis(300));
    let faults = s.sim.faults();
    let route = "GET /v1/services/{serviceId}";
    let cases = [
        (
            FaultKind::ServerError(503),
            RenderError::Upstream { status: 503 },
        ),
        (
            FaultKind::TooManyRequests {
                retry_after_secs: 7,
            },
            RenderError::RateLimited {
                retry_after: Some(Duration::from_secs(7)),
            },
        ),
        (
            FaultKind::Latency(Duration::from_secs(3)),
            RenderError::Timeout,
        ),
    ];
    for (kind, expected) in cases {
        faults.set(route, Fault::times(kind, 1)).unwrap();
        assert_eq!(client.get_service("srv-0").await.unwrap_err(), expected);
        assert!(
            client.get_service("srv-0").await.is_ok(),
            "the fault was for one call"
        );
    }

    faults
        .set(route, Fault::times(FaultKind::RateLimited, 1))
        .unwrap();
    match client.get_service("srv-0").await.unwrap_err() {
        RenderError::RateLimited {
            retry_after: Some(wait),
        } => assert!(wait <= Duration::from_secs(60) && wait >= Duration::from_secs(58)),
        other => panic!("a 403 with no requests left is a rate limit, not {other:?}"),
    }

    faults
        .set(route, Fault::times(FaultKind::MalformedJson, 1))
        .unwrap();
    let malformed = client.get_service("srv-0").await.unwrap_err();
    assert!(
        matches!(malformed, RenderError::Malformed { .. }),
        "{malformed:?}"
    );

    faults
        .set("GET *", Fault::times(FaultKind::ServerError(500), 1))
        .unwrap();
    assert_eq!(
        client.list_deploys("srv-0", 5).await.unwrap_err(),
        RenderError::Upstream { status: 500 }
    );
    assert!(
        client.list_services().await.is_ok(),
        "other calls are unaffected once the fault is used up"
    );
}

/// A fake Render that answers every call with `body` and `status`, and
/// echoes the Authorization header in its error message.
async fn fake(status: StatusCode, body: &'static str) -> String {
    let app = Router::new().fallback(move |headers: HeaderMap| async move {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = body.replace("{auth}", &auth);
        (status, [("content-type", "application/json")], body)
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test]
async fn a_reply_of_the_wrong_shape_names_the_field() {
    let base = fake(StatusCode::OK, r#"{"id": 5, "status": "live"}"#).await;
    let client = RenderClient::new(&base, KEY.to_owned()).unwrap();
    match client.get_deploy("srv-0", "dep-1").await.unwrap_err() {
        RenderError::Malformed { what } => assert!(what.starts_with("id:"), "{what}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_status_is_kept_not_refused() {
    let base = fake(
        StatusCode::OK,
        r#"{"id": "dep-1", "status": "teleporting", "trigger": "quantum",
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"}"#,
    )
    .await;
    let client = RenderClient::new(&base, KEY.to_owned()).unwrap();
    let deploy = client.get_deploy("srv-0", "dep-1").await.unwrap();
    assert_eq!(deploy.status, DeployStatus::Unknown("teleporting".into()));
    assert_eq!(
        deploy.trigger,
        Some(DeployTrigger::Unknown("quantum".into()))
    );
    assert!(!deploy.status.in_progress() && !deploy.status.failed());
}

#[tokio::test]
async fn the_api_key_never_appears_in_an_error_or_a_debug_output() {
    let mut shown = Vec::new();
    for status in [
        StatusCode::BAD_REQUEST,
        StatusCode::CONFLICT,
        StatusCode::UNPROCESSABLE_ENTITY,
    ] {
        let base = fake(status, r#"{"message": "bad header {auth}"}"#).await;
        let client = RenderClient::new(&base, KEY.to_owned()).unwrap();
        let error = client.get_service("srv-0").await.unwrap_err();
        assert!(
            matches!(
                error,
                RenderError::Refused { .. } | RenderError::Conflict(_)
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("[redacted]"), "{error}");
        shown.push(error);
        shown.push(RenderError::Transport(format!("{client:?}")));
    }
    // serde quotes the bad value in its message: here, the echoed header.
    let base = fake(
        StatusCode::OK,
        r#"{"id": "srv-0", "name": "x", "autoDeploy": "{auth}",
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"}"#,
    )
    .await;
    let client = RenderClient::new(&base, KEY.to_owned()).unwrap();
    let malformed = client.get_service("srv-0").await.unwrap_err();
    assert!(malformed.to_string().contains("[redacted]"), "{malformed}");
    shown.push(malformed);

    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_base = format!("http://{}/v1", dead.local_addr().unwrap());
    drop(dead);
    let client = RenderClient::new(&dead_base, KEY.to_owned()).unwrap();
    let unreachable = client.list_services().await.unwrap_err();
    assert!(
        matches!(unreachable, RenderError::Transport(_)),
        "{unreachable:?}"
    );
    shown.push(unreachable);

    let s = Sim::start().await;
    let client = s.client().with_timeout(Duration::from_millis(200));
    for kind in [
        FaultKind::ServerError(502),
        FaultKind::RateLimited,
        FaultKind::TooManyRequests {
            retry_after_secs: 1,
        },
        FaultKind::MalformedJson,
        FaultKind::Latency(Duration::from_secs(2)),
    ] {
        s.sim.faults().set("*", Fault::times(kind, 1)).unwrap();
        shown.push(client.list_services().await.unwrap_err());
    }
    shown.push(
        RenderClient::new(&s.base, "rnd_wrong".into())
            .unwrap()
            .list_services()
            .await
            .unwrap_err(),
    );

    for error in &shown {
        for text in [error.to_string(), format!("{error:?}")] {
            assert!(!text.contains(KEY), "the key leaked: {text}");
            assert!(!text.is_empty());
        }
    }
    assert!(!format!("{client:?}").contains(KEY));
}

#[test]
fn a_base_url_must_be_http() {
    for bad in [
        "",
        "api.render.com/v1",
        "mailto:ops@example.com",
        "file:///etc",
    ] {
        assert!(RenderClient::new(bad, KEY.to_owned()).is_err(), "{bad}");
    }
    let client = RenderClient::new("https://api.render.com/v1/", KEY.to_owned()).unwrap();
    assert_eq!(
        client.url(&["services", "srv-1", "deploys"]).as_str(),
        "https://api.render.com/v1/services/srv-1/deploys"
    );
    assert_eq!(
        client.url(&["services", "../x?y#z"]).as_str(),
        "https://api.render.com/v1/services/..%2Fx%3Fy%23z",
        "ids are path segments, never paths"
    );
}
