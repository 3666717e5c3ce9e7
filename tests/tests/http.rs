//! The panel over HTTP: sessions, roles, CSRF refusals, and what the trail says.

use flightdeck_tests::{Setup, http, session_cookie, session_for, set_cookie_line, sign_in};

#[tokio::test]
async fn the_session_cookie_is_http_only_same_site_strict_and_not_secure_over_http() {
    let setup = Setup::new("http-cookie", "public_url = \"http://localhost:3000\"");
    let password = setup.add_user("ada", "viewer").await;
    let panel = setup.serve().await;
    let response = sign_in(&panel, "ada", &password).await;
    let line = set_cookie_line(&response).expect("sign-in sets the session cookie");
    assert!(line.contains("HttpOnly"), "{line}");
    assert!(line.contains("SameSite=Strict"), "{line}");
    assert!(!line.contains("Secure"), "{line}");
}

#[tokio::test]
async fn the_session_cookie_is_secure_when_the_public_url_is_https() {
    let setup = Setup::new("http-secure", "public_url = \"https://deploys.example\"");
    let password = setup.add_user("ada", "viewer").await;
    let panel = setup.serve().await;
    // Behind the TLS proxy the browser's Origin is the public https URL.
    let response = http()
        .post(panel.at("/auth/login"))
        .header("Origin", "https://deploys.example")
        .form(&[("name", "ada"), ("password", password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let line = set_cookie_line(&response).unwrap();
    assert!(line.contains("Secure"), "{line}");
}

#[tokio::test]
async fn signing_in_gives_a_new_session_id() {
    let setup = Setup::new("http-cycle", "");
    let password = setup.add_user("ada", "viewer").await;
    let panel = setup.serve().await;
    // A failed sign-in stores nothing; a planted id then is refused and replaced.
    let planted = "flightdeck_session=AAAAAAAAAAAAAAAAAAAAAA";
    let response = http()
        .post(panel.at("/auth/login"))
        .header("Origin", &panel.url)
        .header("Cookie", planted)
        .form(&[("name", "ada"), ("password", password.as_str())])
        .send()
        .await
        .unwrap();
    let first = session_cookie(&response).unwrap();
    assert_ne!(first, planted);
    // Signing in again from an existing session cycles its id.
    let again = http()
        .post(panel.at("/auth/login"))
        .header("Origin", &panel.url)
        .header("Cookie", &first)
        .form(&[("name", "ada"), ("password", password.as_str())])
        .send()
        .await
        .unwrap();
    let second = session_cookie(&again).expect("the id is cycled at sign-in");
    assert_ne!(first, second);
    // The old id no longer signs anyone in.
    let old = panel.get("/", Some(first.as_str())).await;
    assert_eq!(old.status(), 303);
    let new = panel.get("/", Some(second.as_str())).await;
    assert_eq!(new.status(), 200);
}

#[tokio::test]
async fn a_disabled_users_old_cookie_is_refused_at_once() {
    let setup = Setup::new("http-disable", "");
    let password = setup.add_user("ada", "viewer").await;
    let panel = setup.serve().await;
    let cookie = session_for(&panel, "ada", &password).await;
    let me = panel.get("/api/v1/me", Some(cookie.as_str())).await;
    assert_eq!(me.status(), 200);
    let out = setup.cli(&["user", "disable", "ada"], None).await;
    assert!(out.status.success());
    let me = panel.get("/api/v1/me", Some(cookie.as_str())).await;
    assert_eq!(me.status(), 401);
    let body: serde_json::Value = me.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let page = panel.get("/", Some(cookie.as_str())).await;
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/login?next=/");
}

#[tokio::test]
async fn a_failed_sign_in_is_audited_as_denied_and_starts_no_session() {
    let setup = Setup::new("http-failed", "");
    setup.add_user("ada", "viewer").await;
    let panel = setup.serve().await;
    let response = sign_in(&panel, "ada", "not the password").await;
    assert_eq!(response.status(), 303);
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login?error=1")
    );
    assert!(
        session_cookie(&response).is_none() || {
            // A cookie may be set, but it must not sign anyone in.
            let cookie = session_cookie(&response).unwrap();
            panel
                .get("/api/v1/me", Some(cookie.as_str()))
                .await
                .status()
                == 401
        }
    );
    let last = setup.audit().await.pop().unwrap();
    assert_eq!(
        (last.action.as_str(), last.outcome.as_str()),
        ("auth.login_failed", "denied")
    );
    assert_eq!(last.actor_name, "ada");
    assert_eq!(last.error.as_deref(), Some("wrong password"));
}

#[tokio::test]
async fn sign_in_and_sign_out_are_audited() {
    let setup = Setup::new("http-inout", "");
    let password = setup.add_user("ada", "viewer").await;
    let panel = setup.serve().await;
    let cookie = session_for(&panel, "ada", &password).await;
    let out = http()
        .post(panel.at("/auth/logout"))
        .header("Origin", &panel.url)
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let after = panel.get("/api/v1/me", Some(cookie.as_str())).await;
    assert_eq!(after.status(), 401);
    let actions: Vec<_> = setup
        .audit()
        .await
        .into_iter()
        .map(|r| format!("{} {}", r.action, r.outcome))
        .collect();
    assert_eq!(
        actions[1..4],
        [
            "auth.login succeeded",
            "auth.logout succeeded",
            "request.refused denied"
        ]
    );
}

/// Calls a server function directly, as a script in the page could.
async fn call_server_fn(
    panel: &flightdeck_tests::Panel,
    cookie: &str,
    endpoint: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    http()
        .post(panel.at(&format!("/_fn/{endpoint}")))
        .header("Origin", &panel.url)
        .header("Cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_viewers_call_to_an_admin_server_function_is_403_and_audited() {
    let setup = Setup::new("http-viewer", "");
    let password = setup.add_user("val", "viewer").await;
    setup.add_user("ada", "viewer").await;
    let panel = setup.serve().await;
    let cookie = session_for(&panel, "val", &password).await;
    let response = call_server_fn(&panel, &cookie, "disable_account", &[("name", "ada")]).await;
    assert_eq!(response.status(), 403);
    let body = response.text().await.unwrap();
    assert!(body.contains("admin role"), "{body}");
    let read = call_server_fn(&panel, &cookie, "admin_view", &[]).await;
    assert_eq!(read.status(), 403);
    let trail = setup.audit().await;
    let denied: Vec<_> = trail
        .iter()
        .filter(|r| r.outcome == "denied")
        .map(|r| format!("{} {}", r.action, r.actor_name))
        .collect();
    assert_eq!(denied, ["user.disable val", "admin.view val"]);
    // Nothing changed: ada can still be used.
    let out = setup.cli(&["audit", "verify"], None).await;
    assert!(out.status.success());
    assert!(
        !trail
            .iter()
            .any(|r| r.action == "user.disable" && r.outcome == "succeeded")
    );
}

#[tokio::test]
async fn an_admin_disables_an_account_through_the_server_function() {
    let setup = Setup::new("http-admin", "");
    let admin_password = setup.add_user("root", "admin").await;
    let ada_password = setup.add_user("ada", "viewer").await;
    let panel = setup.serve().await;
    let ada = session_for(&panel, "ada", &ada_password).await;
    let root = session_for(&panel, "root", &admin_password).await;
    let response = call_server_fn(&panel, &root, "disable_account", &[("name", "ada")]).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let me = panel.get("/api/v1/me", Some(ada.as_str())).await;
    assert_eq!(me.status(), 401);
    let last = setup
        .audit()
        .await
        .into_iter()
        .rfind(|r| r.action == "user.disable")
        .unwrap();
    assert_eq!(
        (
            last.outcome.as_str(),
            last.actor_name.as_str(),
            last.target.as_deref()
        ),
        ("succeeded", "root", Some("ada"))
    );
}

#[tokio::test]
async fn a_cross_origin_post_to_any_state_changing_endpoint_is_403_and_changes_nothing() {
    let setup = Setup::new("http-csrf", "");
    let admin_password = setup.add_user("root", "admin").await;
    let ada_password = setup.add_user("ada", "viewer").await;
    let panel = setup.serve().await;
    let root = session_for(&panel, "root", &admin_password).await;
    let before = setup.audit().await.len();
    let endpoints: [(&str, Vec<(&str, &str)>); 8] = [
        ("/_fn/disable_account", vec![("name", "ada")]),
        ("/_fn/admin_view", vec![]),
        (
            "/_fn/create_token",
            vec![("user", "ada"), ("label", "evil")],
        ),
        ("/actions/audit/verify", vec![]),
        (
            "/actions/audit/review",
            vec![("item", "event:1"), ("note", "evil")],
        ),
        (
            "/api/v1/audit/reviews",
            vec![("item", "event:1"), ("note", "evil")],
        ),
        ("/auth/logout", vec![]),
        (
            "/auth/login",
            vec![("name", "ada"), ("password", ada_password.as_str())],
        ),
    ];
    for (path, form) in &endpoints {
        let response = http()
            .post(panel.at(path))
            .header("Origin", "https://evil.example")
            .header("Cookie", &root)
            .form(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
        // Without Origin, a foreign Referer is refused the same way.
        let response = http()
            .post(panel.at(path))
            .header("Referer", "https://evil.example/page")
            .header("Cookie", &root)
            .form(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path} with Referer");
    }
    // ada is still active, root is still signed in.
    let me = panel.get("/api/v1/me", Some(root.as_str())).await;
    assert_eq!(me.status(), 200);
    session_for(&panel, "ada", &ada_password).await;
    let trail = setup.audit().await;
    let refused: Vec<_> = trail[before..]
        .iter()
        .filter(|r| r.action == "request.refused")
        .map(|r| r.error.clone().unwrap_or_default())
        .collect();
    assert_eq!(refused.len(), 16);
    assert!(
        refused.iter().all(|e| e.contains("https://evil.example")),
        "{refused:?}"
    );
    for action in [
        "user.disable",
        "token.create",
        "audit.verify",
        "audit.review",
    ] {
        assert!(
            !trail
                .iter()
                .any(|r| r.action == action && r.actor_name == "root"),
            "{action}"
        );
    }
}

#[tokio::test]
async fn a_post_without_origin_or_referer_is_refused_unless_it_is_bearer_only() {
    let setup = Setup::new("http-noorigin", "");
    let password = setup.add_user("ada", "viewer").await;
    let panel = setup.serve().await;
    let cookie = session_for(&panel, "ada", &password).await;
    let response = http()
        .post(panel.at("/auth/logout"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn pages_need_a_sign_in_and_remember_where_you_were_going() {
    let setup = Setup::new("http-pages", "");
    let panel = setup.serve().await;
    let response = panel.get("/admin", None).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/login?next=/admin");
    let login = panel.get("/login", None).await;
    assert_eq!(login.status(), 200);
    let html = login.text().await.unwrap();
    assert!(
        html.contains("action=\"/auth/login\""),
        "the sign-in form is in the HTML"
    );
}

#[tokio::test]
async fn the_overview_renders_the_environments_without_javascript() {
    let setup = Setup::new("http-overview", "");
    let password = setup.add_user("ada", "viewer").await;
    let panel = setup.serve().await;
    let cookie = session_for(&panel, "ada", &password).await;
    let response = panel.get("/", Some(cookie.as_str())).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let html = response.text().await.unwrap();
    assert!(html.contains("data-env=\"production\""), "{html}");
    assert!(html.contains("data-env=\"staging\""));
    assert!(
        html.contains("FD_TEST_UNSET_BACKEND_URL"),
        "the missing secret's variable is named"
    );
    assert!(
        !html.contains("id=\"nav-admin\""),
        "a viewer sees no admin link"
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "same-origin");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        csp.contains("'nonce-") && !csp.contains("unsafe-inline"),
        "inline scripts only by nonce: {csp}"
    );
}

#[tokio::test]
async fn an_admin_sees_the_admin_page_and_a_viewer_gets_403() {
    let setup = Setup::new("http-adminpage", "");
    let admin_password = setup.add_user("root", "admin").await;
    let viewer_password = setup.add_user("val", "viewer").await;
    let panel = setup.serve().await;
    let root = session_for(&panel, "root", &admin_password).await;
    let page = panel.get("/admin", Some(root.as_str())).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("data-account=\"val\""));
    assert!(html.contains("id=\"nav-admin\""));
    let val = session_for(&panel, "val", &viewer_password).await;
    let page = panel.get("/admin", Some(val.as_str())).await;
    assert_eq!(page.status(), 403);
    assert!(page.text().await.unwrap().contains("admin role"));
}

#[tokio::test]
async fn an_unknown_path_is_a_404_page() {
    let setup = Setup::new("http-404", "");
    let password = setup.add_user("ada", "viewer").await;
    let panel = setup.serve().await;
    let cookie = session_for(&panel, "ada", &password).await;
    let page = panel.get("/no/such/page", Some(cookie.as_str())).await;
    assert_eq!(page.status(), 404);
    assert!(page.text().await.unwrap().contains("Nothing here"));
    let api = panel.get("/api/v1/nothing", Some(cookie.as_str())).await;
    assert_eq!(api.status(), 404);
    let body: serde_json::Value = api.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn health_and_readiness_answer_and_sigterm_stops_the_panel_cleanly() {
    let setup = Setup::new("http-ops", "");
    let panel = setup.serve().await;
    let health = panel.get("/healthz", None).await;
    assert_eq!(health.status(), 200);
    let ready: serde_json::Value = panel.get("/readyz", None).await.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["store"], "sqlite");
    let status = panel.stop().await;
    assert!(status.success(), "graceful shutdown exits 0: {status}");
}

#[tokio::test]
async fn an_anonymous_api_call_is_401_and_audited() {
    let setup = Setup::new("http-anon", "");
    let panel = setup.serve().await;
    let response = panel.get("/api/v1/environments", None).await;
    assert_eq!(response.status(), 401);
    let last = setup.audit().await.pop().unwrap();
    assert_eq!(
        (last.action.as_str(), last.outcome.as_str()),
        ("request.refused", "denied")
    );
    assert_eq!(last.target.as_deref(), Some("/api/v1/environments"));
}

#[tokio::test]
async fn a_lock_closes_the_gate_until_a_lead_unlocks_it_with_a_note() {
    let setup = Setup::new("http-lock", "");
    let viewer = setup.add_user("vic", "viewer").await;
    let deployer = setup.add_user("dee", "deployer").await;
    let lead = setup.add_user("lee", "lead").await;
    let panel = setup.serve().await;
    let viewer = session_for(&panel, "vic", &viewer).await;
    let deployer = session_for(&panel, "dee", &deployer).await;
    let lead = session_for(&panel, "lee", &lead).await;

    let call =
        |method: reqwest::Method, path: &str, cookie: &str, body: Option<serde_json::Value>| {
            let mut request = http()
                .request(method, panel.at(path))
                .header("Origin", &panel.url)
                .header("Cookie", cookie);
            if let Some(body) = body {
                request = request.json(&body);
            }
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let body: serde_json::Value =
                    response.json().await.unwrap_or(serde_json::Value::Null);
                (status, body)
            }
        };
    let lock = "/api/v1/environments/production/lock";
    let gate = "/api/v1/environments/production/gate?sha=abc123";
    use reqwest::Method;

    assert_eq!(
        call(Method::GET, gate, &viewer, None).await,
        (200, serde_json::json!({"allowed": true}))
    );
    let (status, body) = call(
        Method::PUT,
        lock,
        &viewer,
        Some(serde_json::json!({"reason": "x"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, _) = call(
        Method::PUT,
        lock,
        &deployer,
        Some(serde_json::json!({"reason": "  "})),
    )
    .await;
    assert_eq!(status, 422, "a lock needs a reason");
    let (status, body) = call(
        Method::PUT,
        lock,
        &deployer,
        Some(serde_json::json!({"reason": "rolled back: 500s on /upload"})),
    )
    .await;
    assert_eq!((status, body["locked_by"].as_str()), (200, Some("dee")));
    let (status, body) = call(
        Method::PUT,
        lock,
        &lead,
        Some(serde_json::json!({"reason": "again"})),
    )
    .await;
    assert_eq!(status, 409);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rolled back: 500s on /upload"),
        "{body}"
    );

    let (status, body) = call(Method::GET, gate, &viewer, None).await;
    assert_eq!((status, &body["allowed"]), (423, &serde_json::json!(false)));
    assert!(
        body["reason"].as_str().unwrap().contains("abc123"),
        "{body}"
    );

    let (status, _) = call(
        Method::DELETE,
        lock,
        &deployer,
        Some(serde_json::json!({"note": "fixed"})),
    )
    .await;
    assert_eq!(status, 403, "only a lead unlocks");
    let (status, _) = call(
        Method::DELETE,
        lock,
        &lead,
        Some(serde_json::json!({"note": ""})),
    )
    .await;
    assert_eq!(status, 422, "an unlock needs a note");
    let (status, _) = call(
        Method::DELETE,
        lock,
        &lead,
        Some(serde_json::json!({"note": "hotfix deployed, smoke green"})),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(call(Method::GET, gate, &viewer, None).await.0, 200);
    let (status, _) = call(
        Method::DELETE,
        lock,
        &lead,
        Some(serde_json::json!({"note": "again"})),
    )
    .await;
    assert_eq!(status, 409, "nothing to unlock");
    assert_eq!(
        call(
            Method::GET,
            "/api/v1/environments/nowhere/gate",
            &viewer,
            None
        )
        .await
        .0,
        404
    );

    let trail: Vec<String> = setup
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action.starts_with("environment."))
        .map(|r| format!("{} {} {}", r.action, r.outcome, r.actor_name))
        .collect();
    assert_eq!(
        trail,
        [
            "environment.lock denied vic",
            "environment.lock succeeded dee",
            "environment.lock denied lee",
            "environment.unlock denied dee",
            "environment.unlock succeeded lee",
        ]
    );
}

#[tokio::test]
async fn a_lead_exports_the_filtered_trail_as_csv_and_json_lines_and_verifies_it() {
    let setup = Setup::new("http-export", "");
    let lead = setup.add_user("lee", "lead").await;
    let deployer = setup.add_user("dee", "deployer").await;
    let panel = setup.serve().await;
    let lead = session_for(&panel, "lee", &lead).await;
    let deployer = session_for(&panel, "dee", &deployer).await;
    // A failed sign-in, for the filter to find.
    sign_in(&panel, "mallory", "guess").await;

    let refused = panel
        .get("/api/v1/audit/export?format=csv", Some(&deployer))
        .await;
    assert_eq!(refused.status(), 403);

    let csv = panel
        .get("/api/v1/audit/export?format=csv", Some(&lead))
        .await;
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("seq,id,at,actor_kind"));
    let rows = lines.count();
    let trail = setup.audit().await;
    // The export's own event is written before its rows are read, so it is in them.
    assert_eq!(rows, trail.len(), "{text}");

    let jsonl = panel
        .get(
            "/api/v1/audit/export?format=jsonl&action=auth.login_failed",
            Some(&lead),
        )
        .await
        .text()
        .await
        .unwrap();
    let events: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{jsonl}");
    assert_eq!(events[0]["outcome"], "denied");

    let bad = panel
        .get("/api/v1/audit/export?since=yesterday", Some(&lead))
        .await;
    assert_eq!(bad.status(), 422);
    let bad = panel
        .get("/api/v1/audit/export?format=xml", Some(&lead))
        .await;
    assert_eq!(bad.status(), 400);

    let verdict: serde_json::Value = panel
        .get("/api/v1/audit/verify", Some(&lead))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verdict["intact"], true, "{verdict}");
    let exports: Vec<String> = setup
        .audit()
        .await
        .into_iter()
        .filter(|row| row.action == "audit.export")
        .map(|row| format!("{} {}", row.actor_name, row.outcome))
        .collect();
    // Each export is audited, the deployer's refusal too; the two bad
    // requests were refused before they reached the trail.
    assert_eq!(exports, ["dee denied", "lee succeeded", "lee succeeded"]);
}

#[tokio::test]
async fn an_api_token_is_shown_once_stored_hashed_acts_with_its_users_role_and_stops_when_revoked()
{
    let setup = Setup::new("http-token", "");
    setup.add_user("ci", "viewer").await;
    let out = setup
        .cli(
            &["token", "create", "ci", "--label", "deploy workflow"],
            None,
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let line = |key: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no `{key}` in {printed}"))
            .to_owned()
    };
    let (token, id) = (line("token "), line("id "));
    assert!(token.starts_with("fdt_") && token.len() > 40, "{token}");

    let panel = setup.serve().await;
    let me = |token: String| me_with_token(&panel, token);
    let response = me(token.clone()).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        (body["name"].as_str(), body["role"].as_str()),
        (Some("ci"), Some("viewer"))
    );
    // The user's role, no more: a viewer's token cannot lock.
    let lock = http()
        .put(panel.at("/api/v1/environments/production/lock"))
        .header("Authorization", format!("Bearer {token}"))
        .json(&serde_json::json!({"reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(lock.status(), 403);
    assert_eq!(me("fdt_not-a-token".into()).await.unwrap().status(), 401);

    // Only a hash is stored: the token appears in no file of the store.
    for entry in std::fs::read_dir(&setup.dir.0).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "the token is in {}",
            path.display()
        );
    }

    let out = setup.cli(&["token", "revoke", &id], None).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        me(token.clone()).await.unwrap().status(),
        401,
        "revoked at once"
    );

    let uses = token_trail(&setup).await;
    assert_eq!(
        uses,
        [
            "token.create succeeded",
            "token.use succeeded",
            "token.use succeeded",
            "token.use denied",
            "token.revoke succeeded",
            "token.use denied",
        ]
    );
}

#[tokio::test]
async fn an_admin_creates_a_token_on_the_admin_page_sees_it_once_and_revokes_it() {
    let setup = Setup::new("http-tokens", "");
    let admin_password = setup.add_user("root", "admin").await;
    let viewer_password = setup.add_user("bot", "viewer").await;
    let panel = setup.serve().await;
    let admin = session_for(&panel, "root", &admin_password).await;
    let viewer = session_for(&panel, "bot", &viewer_password).await;

    // The admin page's "Create token" server function answers with the
    // token once; the page lists its id, never the secret.
    let created = call_server_fn(
        &panel,
        &admin,
        "create_token",
        &[("user", "bot"), ("label", "deploy gate")],
    )
    .await;
    assert_eq!(created.status(), 200);
    let created: serde_json::Value = created.json().await.unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with("fdt_"), "{created}");
    let page = panel
        .get("/admin", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("data-token=\"{id}\"")), "{page}");
    assert!(page.contains("deploy gate"));
    assert!(!page.contains(&token), "the secret is not shown again");
    let refused = call_server_fn(
        &panel,
        &viewer,
        "create_token",
        &[("user", "bot"), ("label", "mine")],
    )
    .await;
    assert_eq!(refused.status(), 403);

    // The token acts as its account; revoked from the page it stops.
    let me = me_with_token(&panel, token.clone()).await.unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<serde_json::Value>().await.unwrap()["name"], "bot");
    let revoked = call_server_fn(&panel, &admin, "revoke_token", &[("id", id.as_str())]).await;
    assert_eq!(revoked.status(), 200);
    let after = me_with_token(&panel, token).await.unwrap();
    assert_eq!(after.status(), 401);
    let page = panel
        .get("/admin", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("revoked"), "{page}");
    assert_eq!(
        token_trail(&setup).await,
        [
            "token.create succeeded",
            "token.create denied",
            "token.use succeeded",
            "token.revoke succeeded",
            "token.use denied"
        ]
    );
}

/// `GET /api/v1/me` as a script sends it: a bearer token, no cookie, no Origin.
fn me_with_token(
    panel: &flightdeck_tests::Panel,
    token: String,
) -> impl std::future::Future<Output = reqwest::Result<reqwest::Response>> {
    http()
        .get(panel.at("/api/v1/me"))
        .header("Authorization", format!("Bearer {token}"))
        .send()
}

/// The trail's `token.*` events as `action outcome`, oldest first.
async fn token_trail(setup: &Setup) -> Vec<String> {
    setup
        .audit()
        .await
        .into_iter()
        .filter(|row| row.action.starts_with("token."))
        .map(|row| format!("{} {}", row.action, row.outcome))
        .collect()
}

#[tokio::test]
async fn the_api_serves_its_checked_in_openapi_document_and_a_docs_page_without_sign_in() {
    let setup = Setup::new("http-openapi", "");
    let panel = setup.serve().await;
    let served = panel.get("/api/v1/openapi.json", None).await;
    assert_eq!(served.status(), 200);
    let served: serde_json::Value = served.json().await.unwrap();
    assert_eq!(&served, flightdeck_tests::contract::document());
    let page = panel.get("/api/docs", None).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for heading in [
        "<code>GET /api/v1/environments/{env}/releases</code>",
        "<code>POST /api/v1/environments/{env}/rollbacks</code>",
        "id=\"schema-ErrorReply\"",
        "Idempotency-Key",
    ] {
        assert!(html.contains(heading), "{heading}");
    }
}

#[tokio::test]
async fn a_reply_that_breaks_the_document_never_reaches_a_test() {
    // A stand-in server whose `/api/v1/me` lacks the required `role`.
    let app = axum::Router::new().route(
        "/api/v1/me",
        axum::routing::get(|| async { axum::Json(serde_json::json!({"name": "ada"})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let reply = http()
        .get(format!("http://{address}/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), flightdeck_tests::contract::VIOLATION_STATUS);
    assert!(
        reply
            .headers()
            .contains_key(flightdeck_tests::contract::VIOLATION_HEADER)
    );
    let text = reply.text().await.unwrap();
    assert!(
        text.contains("GET /api/v1/me") && text.contains("role"),
        "{text}"
    );
}

#[tokio::test]
async fn an_api_reply_carries_no_page_only_fields_and_a_body_must_be_json() {
    let setup = Setup::new("http-wire", "");
    let password = setup.add_user("dee", "deployer").await;
    let panel = setup.serve().await;
    let cookie = session_for(&panel, "dee", &password).await;
    let environments: serde_json::Value = panel
        .get("/api/v1/environments", Some(&cookie))
        .await
        .json()
        .await
        .unwrap();
    let text = environments.to_string();
    assert!(
        environments.as_array().is_some_and(|e| e.len() == 2),
        "{text}"
    );
    for field in ["\"viewer\"", "\"idempotency_key\"", "\"label\""] {
        assert!(!text.contains(field), "{field} in {text}");
    }
    let lock = http()
        .put(panel.at("/api/v1/environments/staging/lock"))
        .header("Origin", &panel.url)
        .header("Cookie", &cookie)
        .json(&serde_json::json!({"reason": "checking a migration"}))
        .send()
        .await
        .unwrap();
    assert_eq!(lock.status(), 200);
    let lock: serde_json::Value = lock.json().await.unwrap();
    assert_eq!(lock["locked_by"], "dee");
    // A form or text post never acts: the body must be JSON.
    let form = http()
        .post(panel.at("/api/v1/environments/production/deploys"))
        .header("Origin", &panel.url)
        .header("Cookie", &cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(r#"{"reason": "hotfix"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
    let body: serde_json::Value = form.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_media_type");
    // A body of the wrong shape is a 400 that says so.
    let wrong = http()
        .put(panel.at("/api/v1/environments/production/lock"))
        .header("Origin", &panel.url)
        .header("Cookie", &cookie)
        .json(&serde_json::json!({"reason": 42}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    let body: serde_json::Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
}

/// Every log line written while a request is handled carries its span (the
/// method, the matched route, the request's id and the actor), and the id
/// is the one the reply names (`x-request-id`) and the audit trail keeps.
/// Read from the panel's own JSON log, so no other test's logging mixes in.
#[tokio::test]
async fn a_request_span_names_the_route_the_request_id_and_the_actor() {
    let setup = Setup::new("http-span", "");
    let password = setup.add_user("lee", "lead").await;
    let log = setup.dir.0.join("panel.log");
    let env = [
        (
            "FLIGHTDECK_LOG".to_owned(),
            "info,tower_http=debug".to_owned(),
        ),
        ("FLIGHTDECK_LOG_FORMAT".to_owned(), "json".to_owned()),
    ];
    let panel = flightdeck_tests::Panel::start_logged(&setup.config, &env, Some(&log)).await;
    let cookie = session_for(&panel, "lee", &password).await;
    let reply = http()
        .put(panel.at("/api/v1/environments/production/lock"))
        .header("origin", panel.at(""))
        .header("cookie", &cookie)
        .json(&serde_json::json!({ "reason": "span test" }))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let id = reply.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 16, "{id}");
    panel.stop().await;

    let lock = setup
        .audit()
        .await
        .into_iter()
        .find(|e| e.action == "environment.lock")
        .expect("the lock is audited");
    assert_eq!(lock.request_id.as_deref(), Some(id.as_str()));

    let text = std::fs::read_to_string(&log).unwrap();
    let line: serde_json::Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["span"]["request_id"] == id.as_str() && l["span"]["actor"] == "lee")
        .unwrap_or_else(|| panic!("no log line carries request {id} and its actor:\n{text}"));
    assert_eq!(line["span"]["route"], "/api/v1/environments/{env}/lock");
    assert_eq!(line["span"]["method"], "PUT");
}
