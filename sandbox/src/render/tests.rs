//! The simulated Render over real HTTP, checked against Render's published
//! API description (`shared/contracts/render-subset.json`).

use super::*;
use crate::contract::{nullable_to_json_schema, read_contract, resolve};
use hmac::{Hmac, Mac};
use serde_json::Value;
use std::sync::OnceLock;

const KEY: &str = "rnd_test_key";

/// The spec with OpenAPI 3.0's `nullable` turned into JSON Schema's
/// `"type": [T, "null"]`, which a plain validator understands.
fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let mut spec = read_contract("render-subset.json");
        nullable_to_json_schema(&mut spec);
        // Render's `serviceDetails` is a `oneOf` of schemas that do not
        // exclude each other (none forbids extra properties, and a web
        // service's details satisfy the private-service and worker schemas
        // too), so no real reply could pass it as written. Read it as the
        // `anyOf` it means.
        let details = &mut spec["components"]["schemas"]["service"]["properties"]["serviceDetails"];
        if let Some(one_of) = details.as_object_mut().and_then(|d| d.remove("oneOf")) {
            details["anyOf"] = one_of;
        }
        // The same holds for an event's `details`: several of its schemas
        // ("Server Available", "Maintenance Ended", …) are any object. Read
        // it as `anyOf`; `assert_event_details` then checks the one schema
        // that an event's type names.
        let details = &mut spec["components"]["schemas"]["serviceEventWithCursor"]["properties"]
            ["event"]["properties"]["details"];
        if let Some(one_of) = details.as_object_mut().and_then(|d| d.remove("oneOf")) {
            details["anyOf"] = one_of;
        }
        // Refs into those alternatives follow them to their new place.
        let text = spec.to_string().replace(
            "/serviceEventWithCursor/properties/event/properties/details/oneOf/",
            "/serviceEventWithCursor/properties/event/properties/details/anyOf/",
        );
        serde_json::from_str(&text).unwrap()
    })
}

/// Fails unless an event's `details` match the contract's schema for its
/// type (the `details` alternative titled like the type, e.g. "Deploy
/// Started"), and name no property that schema does not declare.
fn assert_event_details(kind: &str, details: &Value) {
    let spec = spec();
    let title: Vec<String> = kind
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        })
        .collect();
    let title = title.join(" ");
    let alternatives = spec["components"]["schemas"]["serviceEventWithCursor"]["properties"]
        ["event"]["properties"]["details"]["anyOf"]
        .as_array()
        .unwrap();
    let schema = alternatives
        .iter()
        .find(|a| a["title"] == title)
        .unwrap_or_else(|| panic!("no details schema titled {title:?}"));
    let mut root = schema.clone();
    root["components"] = spec["components"].clone();
    let validator = jsonschema::draft7::new(&root).expect("the contract's schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(details)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{kind} details {details} break the contract: {errors:?}"
    );
    let declared = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for key in details.as_object().unwrap().keys() {
        assert!(
            declared.contains_key(key),
            "{kind} details name an undeclared {key:?}"
        );
    }
}

/// Fails unless `body` is what the spec says `method path` answers with `status`.
fn assert_contract(method: &str, path: &str, status: u16, body: &Value) {
    let spec = spec();
    let operation = spec["paths"][path][method.to_lowercase()].clone();
    assert!(
        operation.is_object(),
        "{method} {path} is not in the contract"
    );
    let response = resolve(spec, &operation["responses"][status.to_string()]);
    assert!(
        response.is_object(),
        "{method} {path} does not document status {status}"
    );
    let Some(schema) = response.pointer("/content/application~1json/schema") else {
        return; // A documented status without a body schema.
    };
    let mut root = schema.clone();
    root["components"] = spec["components"].clone();
    // Refs into other operations (`#/paths/...`) resolve from the root too.
    root["paths"] = spec["paths"].clone();
    let validator = jsonschema::draft7::new(&root).expect("the contract's schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status} breaks the contract: {errors:?}\n{body:#}"
    );
}

/// Fails unless `body` matches the named schema of the contract's components.
fn assert_schema(name: &str, body: &Value) {
    let spec = spec();
    let mut root = spec["components"]["schemas"][name].clone();
    assert!(root.is_object(), "no schema named {name}");
    root["components"] = spec["components"].clone();
    let validator = jsonschema::draft7::new(&root).expect("the contract's schema compiles");
    assert!(validator.is_valid(body), "{body} is not a Render `{name}`");
}

struct Running {
    sim: RenderSim,
    base: String,
    http: reqwest::Client,
}

impl Running {
    async fn start(timing: Timing) -> Running {
        let sim = RenderSim::new(KEY, timing);
        let t0 = now() - time::Duration::days(3);
        for (i, name) in ["data-simulator", "data-simulator-staging"]
            .iter()
            .enumerate()
        {
            sim.add_service(
                ServiceSeed {
                    id: format!("srv-{i}"),
                    name: (*name).to_owned(),
                    branch: "main".into(),
                    deploy_hook_key: format!("hook-{i}"),
                },
                t0,
            );
        }
        for (i, message) in ["first", "second", "third"].iter().enumerate() {
            sim.add_commit(Commit {
                id: format!("{:040x}", i + 1),
                message: (*message).to_owned(),
                created_at: t0 + time::Duration::hours(i as i64),
            });
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        sim.spawn(listener);
        crate::support::install_tls_provider();
        Running {
            sim,
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}/v1{path}", self.base))
            .bearer_auth(KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Calls and checks the reply against the contract for `template`.
    async fn checked(
        &self,
        method: &str,
        template: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, reply) = self.call(method, path, body).await;
        assert_contract(method, template, status, &reply);
        (status, reply)
    }

    /// A `new_commit` deploy of commit number `commit`, started `hours_ago`.
    fn seeded(&self, commit: u32, hours_ago: i64) -> String {
        self.sim
            .seed_deploy(
                "srv-0",
                &format!("{commit:040x}"),
                "new_commit",
                now() - time::Duration::hours(hours_ago),
            )
            .unwrap()
    }

    async fn deploy(&self, id: &str) -> Value {
        self.checked(
            "GET",
            "/services/{serviceId}/deploys/{deployId}",
            &format!("/services/srv-0/deploys/{id}"),
            None,
        )
        .await
        .1
    }
}

fn fast() -> Timing {
    Timing {
        build: Duration::from_millis(300),
        update: Duration::from_millis(300),
    }
}

async fn wait_for_status(running: &Running, id: &str, status: &str) -> Value {
    for _ in 0..100 {
        let deploy = running.deploy(id).await;
        if deploy["status"] == status {
            return deploy;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("deploy {id} never reached {status}");
}

#[tokio::test]
async fn a_triggered_deploy_moves_to_live_by_itself_and_deactivates_the_previous_one() {
    let r = Running::start(fast()).await;
    let (status, first) = r
        .checked(
            "POST",
            "/services/{serviceId}/deploys",
            "/services/srv-0/deploys",
            Some(json!({"commitId": format!("{:040x}", 1)})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(first["trigger"], "api");
    assert_eq!(first["status"], "build_in_progress");
    let first_id = first["id"].as_str().unwrap().to_owned();
    wait_for_status(&r, &first_id, "update_in_progress").await;
    let live = wait_for_status(&r, &first_id, "live").await;
    assert!(live["finishedAt"].is_string());

    let (_, second) = r
        .checked(
            "POST",
            "/services/{serviceId}/deploys",
            "/services/srv-0/deploys",
            Some(json!({})),
        )
        .await;
    assert_eq!(
        second["commit"]["message"], "third",
        "without commitId the branch head is built"
    );
    let second_id = second["id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.deploy(&first_id).await["status"],
        "live",
        "the old deploy serves until the new one is live"
    );
    wait_for_status(&r, &second_id, "live").await;
    assert_eq!(r.deploy(&first_id).await["status"], "deactivated");
    assert_eq!(r.sim.calls().deploys_triggered, 2);
}

#[tokio::test]
async fn a_rollback_creates_a_rollback_deploy_and_deactivates_the_live_one() {
    let r = Running::start(fast()).await;
    let good = r.seeded(1, 2);
    let bad = r.seeded(2, 1);
    assert_eq!(r.deploy(&good).await["status"], "deactivated");
    assert_eq!(r.deploy(&bad).await["status"], "live");

    let (status, rollback) = r
        .checked(
            "POST",
            "/services/{serviceId}/rollback",
            "/services/srv-0/rollback",
            Some(json!({"deployId": good})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(rollback["trigger"], "rollback");
    assert_eq!(rollback["commit"]["id"], format!("{:040x}", 1));
    assert_eq!(
        rollback["status"], "update_in_progress",
        "a rollback reuses the build"
    );
    let id = rollback["id"].as_str().unwrap().to_owned();
    wait_for_status(&r, &id, "live").await;
    assert_eq!(r.deploy(&bad).await["status"], "deactivated");
    assert_eq!(r.sim.calls().rollbacks, 1);
    let (_, service) = r
        .checked("GET", "/services/{serviceId}", "/services/srv-0", None)
        .await;
    assert_eq!(
        service["autoDeploy"], "yes",
        "an API rollback leaves autoDeploy on, as Render does"
    );
}

#[tokio::test]
async fn a_rollback_to_a_deploy_that_never_went_live_or_does_not_exist_is_refused() {
    let r = Running::start(fast()).await;
    r.sim.fail_builds_of(&format!("{:040x}", 2));
    let failed = r.seeded(2, 1);
    assert_eq!(r.deploy(&failed).await["status"], "build_failed");
    let (status, body) = r
        .checked(
            "POST",
            "/services/{serviceId}/rollback",
            "/services/srv-0/rollback",
            Some(json!({"deployId": failed})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("never went live")
    );
    let (status, _) = r
        .checked(
            "POST",
            "/services/{serviceId}/rollback",
            "/services/srv-0/rollback",
            Some(json!({"deployId": "dep-nope"})),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(r.sim.calls().rollbacks, 0);
}

#[tokio::test]
async fn a_wrong_or_missing_api_key_is_401() {
    let r = Running::start(fast()).await;
    for auth in [Some("Bearer wrong"), None] {
        let mut request = r.http.get(format!("{}/v1/services", r.base));
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_contract("GET", "/services", 401, &body);
    }
}

#[tokio::test]
async fn deploys_are_listed_newest_first_in_cursor_pages() {
    let r = Running::start(fast()).await;
    let mut ids = Vec::new();
    for hours in [5, 4, 3, 2, 1] {
        ids.push(r.seeded(1, hours));
    }
    ids.reverse();
    let (_, page1) = r
        .checked(
            "GET",
            "/services/{serviceId}/deploys",
            "/services/srv-0/deploys?limit=2",
            None,
        )
        .await;
    let page1 = page1.as_array().unwrap().clone();
    assert_eq!(page1.len(), 2);
    let cursor = page1[1]["cursor"].as_str().unwrap();
    let (_, page2) = r
        .checked(
            "GET",
            "/services/{serviceId}/deploys",
            &format!("/services/srv-0/deploys?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    let (_, page3) = r
        .checked(
            "GET",
            "/services/{serviceId}/deploys",
            &format!(
                "/services/srv-0/deploys?limit=2&cursor={}",
                page2[1]["cursor"].as_str().unwrap()
            ),
            None,
        )
        .await;
    let listed: Vec<String> = page1
        .iter()
        .chain(page2.as_array().unwrap())
        .chain(page3.as_array().unwrap())
        .map(|item| item["deploy"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, ids);
    // The subset documents no 400 here; Render's newer spec adds the
    // `invalid_limit` error code for it. The body is still Render's error shape.
    let (status, body) = r
        .call("GET", "/services/srv-0/deploys?limit=101", None)
        .await;
    assert_eq!(status, 400);
    assert_schema("error", &body);
}

#[tokio::test]
async fn services_are_listed_fetched_and_auto_deploy_can_be_turned_off() {
    let r = Running::start(fast()).await;
    let (_, services) = r.checked("GET", "/services", "/services", None).await;
    assert_eq!(services.as_array().unwrap().len(), 2);
    let (status, patched) = r
        .checked(
            "PATCH",
            "/services/{serviceId}",
            "/services/srv-1",
            Some(json!({"autoDeploy": "no"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(patched["autoDeploy"], "no");
    let (_, fetched) = r
        .checked("GET", "/services/{serviceId}", "/services/srv-1", None)
        .await;
    assert_eq!(fetched["autoDeploy"], "no");
    let (status, _) = r
        .call(
            "PATCH",
            "/services/srv-1",
            Some(json!({"autoDeploy": "maybe"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(r.sim.calls().auto_deploy_patches, 1);
    let (status, _) = r
        .checked("GET", "/services/{serviceId}", "/services/srv-9", None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_deploy_in_progress_can_be_canceled_once() {
    let r = Running::start(Timing {
        build: Duration::from_secs(30),
        update: Duration::from_secs(1),
    })
    .await;
    let (_, deploy) = r
        .checked(
            "POST",
            "/services/{serviceId}/deploys",
            "/services/srv-0/deploys",
            Some(json!({"clearCache": "clear"})),
        )
        .await;
    let path = format!(
        "/services/srv-0/deploys/{}/cancel",
        deploy["id"].as_str().unwrap()
    );
    let (status, canceled) = r
        .checked(
            "POST",
            "/services/{serviceId}/deploys/{deployId}/cancel",
            &path,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(canceled["status"], "canceled");
    let (status, _) = r.call("POST", &path, None).await;
    assert_eq!(status, 409);
    assert_eq!(r.sim.calls().cancels, 1);
}

#[tokio::test]
async fn the_deploy_hook_needs_its_key() {
    let r = Running::start(fast()).await;
    let wrong = r
        .http
        .post(format!("{}/deploy/srv-0?key=nope", r.base))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let right = r
        .http
        .post(format!("{}/deploy/srv-0?key=hook-0", r.base))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    let body: Value = right.json().await.unwrap();
    let id = body["deploy"]["id"].as_str().unwrap();
    assert_eq!(r.deploy(id).await["trigger"], "deploy_hook");
    assert_eq!(r.sim.calls().hook_deploys, 1);
}

#[test]
fn the_contract_check_rejects_a_reply_the_spec_would_reject() {
    let bad = json!({ "id": 42, "status": "exploded" });
    let result = std::panic::catch_unwind(|| {
        assert_contract("GET", "/services/{serviceId}/deploys/{deployId}", 200, &bad)
    });
    assert!(
        result.is_err(),
        "a wrong type and an unknown status must fail the check"
    );
}

impl Running {
    /// The events of `srv-0`, checked against the contract, oldest first.
    async fn events(&self, query: &str) -> Vec<Value> {
        let (status, list) = self
            .checked(
                "GET",
                "/services/{serviceId}/events",
                &format!("/services/srv-0/events{query}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{list}");
        let mut events: Vec<Value> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                assert_eq!(item["cursor"], item["event"]["id"]);
                item["event"].clone()
            })
            .collect();
        events.reverse();
        for event in &events {
            assert_event_details(event["type"].as_str().unwrap(), &event["details"]);
        }
        events
    }

    async fn trigger(&self, body: Value) -> String {
        let (status, deploy) = self
            .checked(
                "POST",
                "/services/{serviceId}/deploys",
                "/services/srv-0/deploys",
                Some(body),
            )
            .await;
        assert_eq!(status, 201);
        deploy["id"].as_str().unwrap().to_owned()
    }
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_deploy_records_its_events_in_order_as_it_progresses() {
    let r = Running::start(fast()).await;
    let id = r.trigger(json!({"commitId": format!("{:040x}", 2)})).await;
    let started = r.events("").await;
    assert_eq!(types(&started), ["deploy_started", "build_started"]);
    assert_eq!(started[0]["details"]["deployId"], id.as_str());
    let trigger = &started[0]["details"]["trigger"];
    assert_eq!(trigger["manual"], true, "an API deploy is manual");
    assert_eq!(trigger["rollback"], false);

    wait_for_status(&r, &id, "live").await;
    let events = r.events("").await;
    assert_eq!(
        types(&events),
        [
            "deploy_started",
            "build_started",
            "build_ended",
            "deploy_ended"
        ]
    );
    assert_eq!(events[2]["details"]["buildStatus"], "succeeded");
    assert_eq!(events[3]["details"]["deployId"], id.as_str());
    assert_eq!(events[3]["details"]["deployStatus"], "succeeded");
    let times: Vec<&str> = events
        .iter()
        .map(|e| e["timestamp"].as_str().unwrap())
        .collect();
    let deploy = r.deploy(&id).await;
    assert_eq!(times[0], deploy["createdAt"]);
    assert_eq!(times[3], deploy["finishedAt"]);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    for event in &events {
        let path = format!("/events/{}", event["id"].as_str().unwrap());
        let (status, fetched) = r.checked("GET", "/events/{eventId}", &path, None).await;
        assert_eq!(status, 200);
        assert_eq!(&fetched, event);
    }
}

#[tokio::test]
async fn events_page_by_cursor_and_filter_by_type_and_time() {
    let r = Running::start(fast()).await;
    let first = r.seeded(1, 3);
    let second = r.seeded(2, 2);
    let recent = format!("?startTime={}", rfc3339(now() - time::Duration::hours(4)));
    let all = r.events(&recent).await;
    assert_eq!(all.len(), 8, "two deploys of four events each");

    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let (_, page) = r
            .checked(
                "GET",
                "/services/{serviceId}/events",
                &format!("/services/srv-0/events{recent}&limit=3{cursor}"),
                None,
            )
            .await;
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        cursor = format!(
            "&cursor={}",
            page.last().unwrap()["cursor"].as_str().unwrap()
        );
        paged.extend(page.into_iter().map(|item| item["event"].clone()));
    }
    paged.reverse();
    assert_eq!(paged, all);

    let ended = r.events(&format!("{recent}&type=deploy_ended")).await;
    let deploy_ids: Vec<&str> = ended
        .iter()
        .map(|e| e["details"]["deployId"].as_str().unwrap())
        .collect();
    assert_eq!(deploy_ids, [first.as_str(), second.as_str()]);
    let both = r
        .events(&format!("{recent}&type=deploy_started,deploy_ended"))
        .await;
    assert_eq!(both.len(), 4);

    assert!(
        r.events("").await.is_empty(),
        "by default only the last hour is listed, as Render documents"
    );
    let until = format!(
        "?startTime={}&endTime={}",
        (now() - time::Duration::hours(4)).unix_timestamp(),
        (now() - time::Duration::minutes(150)).unix_timestamp()
    );
    let older = r.events(&until).await;
    assert!(
        older
            .iter()
            .all(|e| e["details"]["deployId"].as_str().unwrap_or(&first) == first),
        "times as Unix seconds bound the window too"
    );
    assert_eq!(older.len(), 4);

    for bad in ["?type=exploded", "?startTime=yesterday"] {
        let (status, body) = r
            .checked(
                "GET",
                "/services/{serviceId}/events",
                &format!("/services/srv-0/events{bad}"),
                None,
            )
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, _) = r
        .checked(
            "GET",
            "/services/{serviceId}/events",
            "/services/srv-9/events",
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = r
        .checked(
            "GET",
            "/events/{eventId}",
            "/events/evt-00000000000000000000",
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_failed_build_a_cancel_and_a_rollback_record_what_happened() {
    // The build is long enough for the cancel to land while it runs.
    let r = Running::start(Timing {
        build: Duration::from_millis(1000),
        update: Duration::from_millis(200),
    })
    .await;
    let good = r.seeded(1, 2);
    r.sim.fail_builds_of(&format!("{:040x}", 2));
    let failed = r.trigger(json!({"commitId": format!("{:040x}", 2)})).await;
    wait_for_status(&r, &failed, "build_failed").await;
    let events = r.events("?type=build_ended,deploy_ended").await;
    let last_two = &events[events.len() - 2..];
    assert_eq!(last_two[0]["details"]["buildStatus"], "failed");
    assert_eq!(last_two[1]["details"]["deployStatus"], "failed");
    assert_eq!(
        last_two[1]["details"]["reason"]["buildFailed"]["id"],
        failed.replacen("dep-", "bld-", 1)
    );

    let canceled = r.trigger(json!({"clearCache": "clear"})).await;
    let (status, _) = r
        .checked(
            "POST",
            "/services/{serviceId}/deploys/{deployId}/cancel",
            &format!("/services/srv-0/deploys/{canceled}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let events = r.events("").await;
    let tail: Vec<(&str, &Value)> = events[events.len() - 4..]
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), &e["details"]))
        .collect();
    assert_eq!(tail[0].0, "deploy_started");
    assert_eq!(tail[0].1["trigger"]["clearCache"], true);
    assert_eq!(
        (tail[2].0, &tail[2].1["buildStatus"]),
        ("build_ended", &json!("canceled"))
    );
    assert_eq!(
        (tail[3].0, &tail[3].1["deployStatus"]),
        ("deploy_ended", &json!("canceled"))
    );

    let (_, rollback) = r
        .checked(
            "POST",
            "/services/{serviceId}/rollback",
            "/services/srv-0/rollback",
            Some(json!({"deployId": good})),
        )
        .await;
    let rollback = rollback["id"].as_str().unwrap().to_owned();
    wait_for_status(&r, &rollback, "live").await;
    let events = r.events("").await;
    let tail = &events[events.len() - 2..];
    assert_eq!(
        types(tail),
        ["deploy_started", "deploy_ended"],
        "a rollback has no build"
    );
    assert_eq!(tail[0]["details"]["trigger"]["rollback"], true);
    assert_eq!(
        tail[0]["details"]["trigger"]["rollbackTargetDeployId"],
        good.as_str()
    );
}

/// One webhook as received: its headers and raw body.
type Delivery = (HeaderMap, Vec<u8>);

/// A local webhook receiver that keeps every delivery.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let receiver = Receiver::default();
        let kept = receiver.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let kept = kept.clone();
                async move {
                    kept.got.lock().unwrap().push((headers, body.to_vec()));
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until a `deploy_ended` has arrived (the ticker runs every 100 ms).
    async fn wait_for_deploy_ended(&self, deploy: &str, r: &Running) -> Vec<(HeaderMap, Value)> {
        for _ in 0..100 {
            let parsed: Vec<(HeaderMap, Value)> = self
                .deliveries()
                .into_iter()
                .map(|(h, b)| (h, serde_json::from_slice(&b).unwrap()))
                .collect();
            for (_, body) in &parsed {
                if body["type"] == "deploy_ended" {
                    let path = format!("/events/{}", body["data"]["id"].as_str().unwrap());
                    let (_, event) = r.call("GET", &path, None).await;
                    if event["details"]["deployId"] == deploy {
                        return parsed;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no deploy_ended for {deploy} arrived");
    }
}

/// Standard Webhooks verification, written here independently of the simulator.
fn signature_verifies(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let id = headers["webhook-id"].to_str().unwrap();
    let timestamp = headers["webhook-timestamp"].to_str().unwrap();
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).unwrap();
    mac.update(&signed);
    let expected = BASE64.encode(mac.finalize().into_bytes());
    headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

#[tokio::test]
async fn deploy_webhooks_arrive_in_order_signed_with_the_secret() {
    let r = Running::start(fast()).await;
    let (receiver, url) = Receiver::start().await;
    let secret = new_webhook_secret();
    r.sim.set_webhook(&url, &secret).unwrap();
    let id = r.trigger(json!({})).await;
    // No polling from here on: the ticker moves the deploy and delivers.
    let got = receiver.wait_for_deploy_ended(&id, &r).await;
    let raw = receiver.deliveries();

    let kinds: Vec<&str> = got
        .iter()
        .map(|(_, b)| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "deploy_started",
            "build_started",
            "build_ended",
            "deploy_ended"
        ]
    );
    let mut ids = std::collections::HashSet::new();
    let wrong = new_webhook_secret();
    let event_types = &spec()["components"]["schemas"]["webhookEventWithCursor"]["properties"]["webhookEvent"]
        ["properties"]["eventType"]["enum"];
    for ((headers, body), (_, raw_body)) in got.iter().zip(&raw) {
        assert!(signature_verifies(&secret, headers, raw_body), "{body}");
        assert!(!signature_verifies(&wrong, headers, raw_body));
        let mut tampered = raw_body.clone();
        tampered.push(b' ');
        assert!(!signature_verifies(&secret, headers, &tampered));
        assert!(ids.insert(headers["webhook-id"].to_str().unwrap().to_owned()));
        let sent: i64 = headers["webhook-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((now().unix_timestamp() - sent).abs() < 300);

        assert!(event_types.as_array().unwrap().contains(&body["type"]));
        assert_eq!(body["data"]["serviceId"], "srv-0");
        assert_eq!(body["data"]["serviceName"], "data-simulator");
        let path = format!("/events/{}", body["data"]["id"].as_str().unwrap());
        let (status, event) = r.checked("GET", "/events/{eventId}", &path, None).await;
        assert_eq!(status, 200, "the payload names a real event");
        assert_eq!(event["type"], body["type"]);
        assert_eq!(event["timestamp"], body["timestamp"]);
    }
    assert_eq!(got[3].1["data"]["status"], "succeeded");
    assert!(got[0].1["data"].get("status").is_none());
}

#[tokio::test]
async fn a_failing_receiver_does_not_stop_later_deliveries() {
    let r = Running::start(fast()).await;
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/hook", dead.local_addr().unwrap());
    drop(dead);
    let secret = new_webhook_secret();
    r.sim.set_webhook(&dead_url, &secret).unwrap();
    let lost = r.trigger(json!({})).await;
    wait_for_status(&r, &lost, "live").await;

    let (receiver, url) = Receiver::start().await;
    r.sim.set_webhook(&url, &secret).unwrap();
    let id = r.trigger(json!({})).await;
    let got = receiver.wait_for_deploy_ended(&id, &r).await;
    assert_eq!(
        got.len(),
        4,
        "only the second deploy's events reach the receiver"
    );
}

#[test]
fn a_webhook_secret_must_be_whsec_and_base64() {
    let sim = RenderSim::new(KEY, fast());
    for bad in ["", "whsec_", "secret", "whsec_not base64!"] {
        assert_eq!(
            sim.set_webhook("http://127.0.0.1:9/hook", bad),
            Err(InvalidWebhookSecret),
            "{bad}"
        );
    }
    assert!(new_webhook_secret().starts_with("whsec_"));
    assert!(
        sim.set_webhook("http://127.0.0.1:9/hook", &new_webhook_secret())
            .is_ok()
    );
}

#[tokio::test]
async fn faults_apply_to_the_simulated_render_route_by_route() {
    use crate::faults::{Fault, FaultKind};
    let r = Running::start(fast()).await;
    r.sim
        .faults()
        .set(
            "GET /v1/services/{serviceId}/deploys",
            Fault::times(FaultKind::ServerError(503), 1),
        )
        .unwrap();
    let (status, _) = r.call("GET", "/services/srv-0/deploys", None).await;
    assert_eq!(status, 503);
    let (status, _) = r.checked("GET", "/services", "/services", None).await;
    assert_eq!(status, 200, "other routes are untouched");
    let (status, _) = r
        .checked(
            "GET",
            "/services/{serviceId}/deploys",
            "/services/srv-0/deploys",
            None,
        )
        .await;
    assert_eq!(status, 200, "the fault was for one call");
}
