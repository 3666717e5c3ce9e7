//! Faults over real HTTP, on a small router shaped like a simulator's.

use super::*;
use axum::extract::Path;
use axum::routing::post;
use serde_json::Value;

struct Served {
    faults: Faults,
    base: String,
    http: reqwest::Client,
}

impl Served {
    async fn start() -> Served {
        let faults = Faults::new();
        let api = Router::new()
            .route("/items", get(|| async { Json(json!([{"id": "a"}])) }))
            .route("/items", post(|| async { (StatusCode::CREATED, "made") }))
            .route(
                "/items/{item_id}",
                get(|Path(id): Path<String>| async move { Json(json!({ "id": id })) }),
            );
        let router = faults.wrap(Router::new().nest("/v1", api));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        crate::support::install_tls_provider();
        Served {
            faults,
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: &str, path: &str) -> reqwest::Response {
        self.http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    async fn status(&self, method: &str, path: &str) -> u16 {
        self.call(method, path).await.status().as_u16()
    }
}

#[tokio::test]
async fn a_server_error_answers_with_its_status_and_a_json_message() {
    let s = Served::start().await;
    s.faults
        .set("GET /v1/items", Fault::always(FaultKind::ServerError(503)))
        .unwrap();
    let response = s.call("GET", "/v1/items").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("503"));
}

#[tokio::test]
async fn a_rate_limit_answers_like_github_403_with_its_headers() {
    let s = Served::start().await;
    s.faults
        .set("GET /v1/items", Fault::always(FaultKind::RateLimited))
        .unwrap();
    let response = s.call("GET", "/v1/items").await;
    assert_eq!(response.status(), 403);
    let headers = response.headers().clone();
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    let reset: u64 = headers["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        reset > unix_now(),
        "the reset is in the future, in epoch seconds"
    );
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("API rate limit exceeded")
    );
}

#[tokio::test]
async fn too_many_requests_is_429_with_retry_after() {
    let s = Served::start().await;
    s.faults
        .set(
            "*",
            Fault::always(FaultKind::TooManyRequests {
                retry_after_secs: 7,
            }),
        )
        .unwrap();
    let response = s.call("POST", "/v1/items").await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()[header::RETRY_AFTER], "7");
}

#[tokio::test]
async fn malformed_json_is_a_200_json_reply_that_does_not_parse() {
    let s = Served::start().await;
    s.faults
        .set(
            "GET /v1/items/{id}",
            Fault::always(FaultKind::MalformedJson),
        )
        .unwrap();
    let response = s.call("GET", "/v1/items/x").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let text = response.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
}

#[tokio::test]
async fn latency_delays_the_reply_and_then_answers_normally() {
    let s = Served::start().await;
    s.faults
        .set(
            "GET /v1/items/{item_id}",
            Fault::times(FaultKind::Latency(Duration::from_millis(400)), 1),
        )
        .unwrap();
    // A client that gives up sooner than the injected delay sees a timeout;
    // the same call without the fault then answers.
    let slow = s
        .http
        .get(format!("{}/v1/items/x", s.base))
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(slow.is_err_and(|e| e.is_timeout()));
    s.faults
        .set(
            "GET /v1/items/{item_id}",
            Fault::times(FaultKind::Latency(Duration::from_millis(50)), 1),
        )
        .unwrap();
    let response = s.call("GET", "/v1/items/x").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["id"], "x");
}

#[tokio::test]
async fn a_fault_for_one_route_leaves_other_routes_and_methods_alone() {
    let s = Served::start().await;
    s.faults
        .set(
            "GET /v1/items/{serviceId}",
            Fault::always(FaultKind::ServerError(500)),
        )
        .unwrap();
    assert_eq!(
        s.status("GET", "/v1/items/a").await,
        500,
        "parameter names need not match"
    );
    assert_eq!(s.status("GET", "/v1/items").await, 200);
    assert_eq!(s.status("POST", "/v1/items").await, 201);
    assert_eq!(
        s.status("GET", "/v1/nowhere").await,
        404,
        "an unrouted call matches no path rule"
    );
}

#[tokio::test]
async fn a_fault_with_times_applies_that_many_times_then_disappears() {
    let s = Served::start().await;
    s.faults
        .set(
            "GET /v1/items",
            Fault::times(FaultKind::ServerError(502), 2),
        )
        .unwrap();
    assert_eq!(s.status("GET", "/v1/items").await, 502);
    assert_eq!(s.faults.list()[0].1.times, Some(1));
    assert_eq!(s.status("GET", "/v1/items").await, 502);
    assert!(s.faults.list().is_empty());
    assert_eq!(s.status("GET", "/v1/items").await, 200);
}

#[tokio::test]
async fn faults_are_switched_at_run_time_from_rust() {
    let s = Served::start().await;
    assert_eq!(s.status("GET", "/v1/items").await, 200);
    s.faults
        .set("GET *", Fault::always(FaultKind::ServerError(500)))
        .unwrap();
    assert_eq!(s.status("GET", "/v1/items").await, 500);
    s.faults
        .set("GET *", Fault::always(FaultKind::ServerError(503)))
        .unwrap();
    assert_eq!(
        s.status("GET", "/v1/items").await,
        503,
        "setting a route again replaces its rule"
    );
    s.faults.clear_route("GET *");
    assert_eq!(s.status("GET", "/v1/items").await, 200);
    s.faults
        .set("* /v1/items", Fault::always(FaultKind::ServerError(500)))
        .unwrap();
    assert_eq!(s.status("POST", "/v1/items").await, 500);
    s.faults.clear();
    assert_eq!(s.status("POST", "/v1/items").await, 201);
}

#[tokio::test]
async fn the_admin_routes_set_list_and_clear_faults_and_are_never_faulted() {
    let s = Served::start().await;
    let put = s
        .http
        .put(format!("{}/_sandbox/faults", s.base))
        .json(&json!([
            {"route": "*", "fault": "server_error", "status": 500},
            {"route": "GET /v1/items", "fault": "too_many_requests", "retry_after_secs": 3, "times": 1},
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(
        s.status("GET", "/v1/items").await,
        500,
        "the first match wins"
    );

    let listed: Value = s
        .call("GET", "/_sandbox/faults")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed,
        json!([
            {"route": "*", "fault": "server_error", "status": 500},
            {"route": "GET /v1/items", "fault": "too_many_requests", "retry_after_secs": 3, "times": 1},
        ])
    );

    let put = s
        .http
        .put(format!("{}/_sandbox/faults", s.base))
        .json(&json!([{"route": "GET /v1/items", "fault": "latency", "ms": 10}]))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(s.status("GET", "/v1/items").await, 200);
    assert_eq!(
        s.faults.list(),
        vec![(
            "GET /v1/items".to_owned(),
            Fault::always(FaultKind::Latency(Duration::from_millis(10)))
        )]
    );

    assert_eq!(s.status("DELETE", "/_sandbox/faults").await, 204);
    assert!(s.faults.list().is_empty());
}

#[tokio::test]
async fn the_admin_route_refuses_rules_it_cannot_read_and_keeps_the_old_ones() {
    let s = Served::start().await;
    s.faults
        .set("POST *", Fault::always(FaultKind::MalformedJson))
        .unwrap();
    for bad in [
        json!([{"route": "get /v1/items", "fault": "rate_limited"}]),
        json!([{"route": "*", "fault": "explode"}]),
        json!([{"route": "*", "fault": "rate_limited", "times": 0}]),
        json!({"route": "*", "fault": "rate_limited"}),
    ] {
        let response = s
            .http
            .put(format!("{}/_sandbox/faults", s.base))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
    }
    assert_eq!(s.faults.list().len(), 1);
}

#[test]
fn routes_parse_only_in_the_documented_forms() {
    for good in [
        "*",
        "GET *",
        "* /v1/items",
        "PATCH /v1/services/{serviceId}",
    ] {
        assert!(Route::parse(good).is_ok(), "{good}");
    }
    for bad in ["", "GET", "get /x", "GET x", "GET /a b", "/v1/items"] {
        assert!(Route::parse(bad).is_err(), "{bad}");
    }
}
