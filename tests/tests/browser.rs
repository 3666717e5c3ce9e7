//! The pages in real headless Chromium (Debian's chromium + chromium-driver),
//! driven over WebDriver: sign in, the overview, hydration, sign out, roles.

#[path = "support/audit_trail.rs"]
mod audit_trail;

use fantoccini::{Client, ClientBuilder, Locator};
use flightdeck_tests::{Panel, Sandbox, Setup, TempDir, http};
use std::process::Stdio;
use std::time::Duration;

/// chromedriver in its own PID namespace and process group, killed with
/// everything it started, even when a test fails half-way.
struct Driver {
    child: std::process::Child,
    url: String,
}

impl Driver {
    async fn start() -> Driver {
        use std::os::unix::process::CommandExt;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::env::temp_dir().join(format!("fd-chromedriver-{port}.log"));
        let child = std::process::Command::new("unshare")
            .args(["--fork", "--pid", "--mount-proc", "--kill-child", "chromedriver"])
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("unshare (util-linux) and chromedriver (`cargo xtask test` installs it) must be installed");
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Driver { child, url };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Dropping the driver kills and reaps the process group.
        drop(Driver { child, url });
        panic!("chromedriver did not start");
    }

    async fn browser(&self) -> Client {
        self.browser_with_prefs(serde_json::json!({})).await
    }

    /// A browser that saves downloads into `dir` without asking.
    async fn browser_downloading_into(&self, dir: &std::path::Path) -> Client {
        self.browser_with_prefs(serde_json::json!({
            "download.default_directory": dir,
            "download.prompt_for_download": false,
            "download.directory_upgrade": true,
        }))
        .await
    }

    /// A browser with Chromium preferences `prefs`.
    async fn browser_with_prefs(&self, prefs: serde_json::Value) -> Client {
        let profile = flightdeck_tests::TempDir::new("chromium-profile");
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--no-first-run".to_owned(),
            format!("--user-data-dir={}", profile.0.display()),
        ];
        // The profile folder must outlive the browser; leave it to the OS temp cleaner.
        std::mem::forget(profile);
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "args": args, "binary": "/usr/bin/chromium", "prefs": prefs }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session starts")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // `--` matters: without it `kill` reads `-PGID` as an option.
        let _ = std::process::Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

async fn sign_in(browser: &Client, panel: &str, name: &str, password: &str) {
    browser.goto(&format!("{panel}/login")).await.unwrap();
    browser
        .find(Locator::Css("#name"))
        .await
        .unwrap()
        .send_keys(name)
        .await
        .unwrap();
    browser
        .find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    browser
        .find(Locator::Css("#sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(
        browser,
        "[data-env=production]",
        20,
        "the overview shows after sign-in",
    )
    .await;
}

/// A panel with one account `name` of `role`, and a browser signed in as it.
async fn signed_in_browser(name: &str, role: &str) -> (Setup, Panel, Driver, Client) {
    let setup = Setup::new(&format!("browser-{role}"), "");
    let password = setup.add_user(name, role).await;
    let panel = setup.serve().await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    sign_in(&browser, &panel.url, name, &password).await;
    (setup, panel, driver, browser)
}

async fn wait_for_hydration(browser: &Client) {
    let hydrated = browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("body[data-hydrated=true]"))
        .await;
    if hydrated.is_err() {
        let state = browser
            .execute(
                "return location.href + ' resources: ' + performance.getEntriesByType('resource')
                    .map(e => e.name + ' ' + e.responseStatus).join(', ')",
                vec![],
            )
            .await;
        panic!("the page did not hydrate: {state:?}");
    }
}

async fn is_shown(browser: &Client, css: &str) -> bool {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_person_signs_in_sees_the_overview_uses_it_interactively_and_signs_out() {
    let (setup, panel, _driver, browser) = signed_in_browser("root", "admin").await;
    assert_eq!(browser.current_url().await.unwrap().path(), "/");
    let who = browser
        .find(Locator::Css("#who"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(who, "root");
    assert!(
        is_shown(&browser, "#nav-admin").await,
        "an admin sees the admin link"
    );

    // Hydration: the filter box narrows the list only once the wasm runs.
    wait_for_hydration(&browser).await;
    let filter = browser.find(Locator::Css("#env-filter")).await.unwrap();
    filter.send_keys("prod").await.unwrap();
    let mut narrowed = false;
    for _ in 0..50 {
        if !is_shown(&browser, "[data-env=staging]").await {
            narrowed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        narrowed,
        "typing in the filter hides the environments that do not match"
    );
    assert!(is_shown(&browser, "[data-env=production]").await);

    // The admin page's token form is an island: the reply shows the token
    // once and the list below gains it, without a reload.
    browser.goto(&panel.at("/admin")).await.unwrap();
    wait_for_hydration(&browser).await;
    browser
        .execute("window.__same_page = true; return null;", vec![])
        .await
        .unwrap();
    assert_eq!(rows(&browser, "#tokens tbody tr").await, 0);
    fill_in(&browser, "#create-token input[name=label]", "deploy gate").await;
    click(&browser, "#create-token button[type=submit]").await;
    let secret = wait_for(&browser, "#token-secret", 10, "the reply shows the token")
        .await
        .text()
        .await
        .unwrap();
    assert!(secret.len() > 20, "{secret}");
    let mut listed = 0;
    for _ in 0..50 {
        listed = rows(&browser, "#tokens tbody tr").await;
        if listed == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed, 1, "the new token is listed");
    let table = text_of(&browser, "#tokens").await;
    assert!(
        table.contains("deploy gate") && !table.contains(&secret),
        "{table}"
    );
    let same_page = browser
        .execute("return window.__same_page === true && document.querySelector('#token-secret') !== null;", vec![])
        .await
        .unwrap();
    assert_eq!(
        same_page,
        serde_json::json!(true),
        "without a reload, the token still shown"
    );
    // Revoking is a plain form: the server sends the browser back here.
    click(&browser, "#tokens tbody tr button.danger").await;
    wait_for(
        &browser,
        "#tokens tbody tr .status.revoked",
        10,
        "the token shows as revoked",
    )
    .await;
    assert_eq!(browser.current_url().await.unwrap().path(), "/admin");

    browser
        .find(Locator::Css("#sign-out"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(
        &browser,
        "#login-form",
        10,
        "signing out leads back to the sign-in page",
    )
    .await;
    browser.goto(&panel.at("/")).await.unwrap();
    assert_eq!(
        browser.current_url().await.unwrap().path(),
        "/login",
        "the session is gone"
    );

    browser.close().await.unwrap();
    let trail: Vec<_> = setup.audit().await.into_iter().map(|r| r.action).collect();
    assert!(
        trail.contains(&"auth.login".to_owned()) && trail.contains(&"auth.logout".to_owned()),
        "{trail:?}"
    );
}

#[tokio::test]
async fn a_viewer_sees_no_admin_link_and_gets_403_from_an_admin_server_function() {
    let (setup, panel, _driver, browser) = signed_in_browser("val", "viewer").await;
    wait_for_hydration(&browser).await;
    let admin_links = browser.find_all(Locator::Css("#nav-admin")).await.unwrap();
    assert!(admin_links.is_empty(), "a viewer sees no admin link");

    // Call the admin-only server function straight from the page, as a
    // curious viewer with the developer tools open would.
    let status = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/_fn/admin_view', { method: 'POST',
                 headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: '' })
               .then(r => done(r.status), e => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, serde_json::json!(403));

    browser.goto(&panel.at("/admin")).await.unwrap();
    let message = browser
        .find(Locator::Css("#error-message"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(message.contains("admin role"), "{message}");
    browser.close().await.unwrap();

    let denied: Vec<_> = setup
        .audit()
        .await
        .into_iter()
        .filter(|r| r.outcome == "denied")
        .map(|r| r.action)
        .collect();
    assert_eq!(denied, ["admin.view", "admin.view"]);
}

/// The rows of the table on the current page.
async fn rows(browser: &Client, css: &str) -> usize {
    browser.find_all(Locator::Css(css)).await.unwrap().len()
}

#[tokio::test]
async fn the_release_view_shows_the_sandbox_history_as_text_and_follows_a_new_deploy_live() {
    let dir = TempDir::new("browser-sandbox");
    let sandbox = Sandbox::start(&dir, &["--seed", "3"]).await;
    let cookie = sandbox.session().await;
    sandbox
        .wait_for_live_releases(&cookie, Duration::from_secs(120))
        .await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    let (name, password) = sandbox.printed["sign-in"].split_once(" / ").unwrap();
    sign_in(&browser, sandbox.panel(), name, password).await;
    wait_for_hydration(&browser).await;

    // Both environments, each with its live release.
    for env in ["production", "staging"] {
        let card = browser
            .find(Locator::Css(&format!("[data-env={env}]")))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(card.to_lowercase().contains("live"), "{env}: {card}");
    }

    // The timeline: the commit message with markup is shown as text and runs nothing.
    browser
        .goto(&format!("{}/env/production", sandbox.panel()))
        .await
        .unwrap();
    wait_for_hydration(&browser).await;
    let page = browser
        .find(Locator::Css("table.releases"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<script>alert(1)</script>"), "shown as text");
    assert!(
        browser.get_alert_text().await.is_err(),
        "no script ran: no alert is open"
    );
    assert!(page.contains("build failed"), "the failed build is marked");

    // A deploy triggered on the simulator appears without a reload.
    browser
        .goto(&format!("{}/env/production/deploys", sandbox.panel()))
        .await
        .unwrap();
    wait_for_hydration(&browser).await;
    browser
        .execute("window.__same_page = true; return null;", vec![])
        .await
        .unwrap();
    let before = rows(&browser, "tr[data-deploy]").await;
    let render = &sandbox.printed["render"];
    let triggered = http()
        .post(format!(
            "{render}/v1/services/srv-sandbox-production/deploys"
        ))
        .bearer_auth(&sandbox.printed["render-api-key"])
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(triggered.status(), 201);
    let mut after = before;
    for _ in 0..150 {
        after = rows(&browser, "tr[data-deploy]").await;
        if after > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(after, before + 1, "the new deploy shows up");
    let same_page = browser
        .execute("return window.__same_page === true;", vec![])
        .await
        .unwrap();
    assert_eq!(same_page, serde_json::json!(true), "without a reload");
}

/// The text of the first element matching `css`, once it exists.
async fn text_of(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn production_rolls_back_to_the_last_good_release_in_one_click_and_the_trail_tells_it() {
    let dir = TempDir::new("browser-rollback");
    let sandbox = Sandbox::start(&dir, &["--seed", "3"]).await;
    let cookie = sandbox.session().await;
    sandbox
        .wait_for_live_releases(&cookie, Duration::from_secs(120))
        .await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    let (name, password) = sandbox.printed["sign-in"].split_once(" / ").unwrap();
    sign_in(&browser, sandbox.panel(), name, password).await;
    wait_for_hydration(&browser).await;

    // One click (the offer opens), a reason, a confirmation.
    let offer = "[data-env=production] details.rollback-offer";
    let label = text_of(&browser, &format!("{offer} summary")).await;
    assert!(label.starts_with("Roll back to deploy"), "{label}");
    browser
        .find(Locator::Css(&format!("{offer} summary")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .find(Locator::Css(&format!("{offer} input[name=reason]")))
        .await
        .unwrap()
        .send_keys("Checkout returns 500 since the last deploy")
        .await
        .unwrap();
    browser
        .find(Locator::Css(&format!("{offer} button.confirm-rollback")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // The operation page follows every step to the end without a reload.
    let mut url = String::new();
    for _ in 0..100 {
        url = browser.current_url().await.unwrap().to_string();
        if url.contains("/operations/") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let id = url.rsplit('/').next().unwrap().to_owned();
    assert!(url.contains("/operations/"), "landed on {url}");
    wait_for_hydration(&browser).await;
    let mut state = String::new();
    for _ in 0..300 {
        if let Ok(element) = browser.find(Locator::Css(".operation-state")).await {
            state = element
                .attr("data-state")
                .await
                .unwrap()
                .unwrap_or_default();
            if state != "running" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(state, "succeeded", "{}", text_of(&browser, "body").await);
    let steps = browser.find_all(Locator::Css("li.step")).await.unwrap();
    let mut seen = Vec::new();
    for step in steps {
        seen.push((
            step.attr("data-step").await.unwrap().unwrap(),
            step.attr("data-state").await.unwrap().unwrap(),
        ));
    }
    let expected: Vec<(String, String)> = [
        ("freeze", "done"),
        ("render_rollback", "done"),
        ("wait_live", "done"),
        ("smoke", "done"),
        ("notify", "skipped"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(seen, expected);

    // Render got exactly one rollback and one autoDeploy "no".
    let calls: serde_json::Value = http()
        .get(format!("{}/_sandbox/calls", sandbox.printed["render"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(calls["rollbacks"], 1, "{calls}");
    assert_eq!(calls["auto_deploy_patches"], 1, "{calls}");

    // The deploy workflow's gate now says no.
    let gate = http()
        .get(format!(
            "{}/api/v1/environments/production/gate?sha=abc1234",
            sandbox.panel()
        ))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(gate.status(), 423);

    // The trail holds the start, each step's intent and outcome, the finish.
    let store = format!("sqlite://{}", dir.0.join("flightdeck.db").display());
    let trail: Vec<String> = flightdeck_tests::audit_rows(&store)
        .await
        .into_iter()
        .filter(|row| row.target.as_deref() == Some(id.as_str()))
        .map(|row| format!("{} {}", row.action, row.outcome))
        .collect();
    assert_eq!(
        trail.first().map(String::as_str),
        Some("rollback.start started")
    );
    assert_eq!(
        trail.last().map(String::as_str),
        Some("rollback.finish succeeded")
    );
    assert_eq!(
        trail
            .iter()
            .filter(|t| *t == "rollback.step started")
            .count(),
        5,
        "{trail:?}"
    );
    assert_eq!(
        trail
            .iter()
            .filter(|t| *t == "rollback.step succeeded")
            .count(),
        5,
        "{trail:?}"
    );
}

/// Signs `name` in over HTTP (an account made with the sandbox's config).
async fn add_and_sign_in(sandbox: &Sandbox, name: &str, role: &str) -> (String, String) {
    let password = format!("{name}-password-long-enough");
    let config = std::path::PathBuf::from(&sandbox.printed["config"]);
    let out = flightdeck_tests::cli_with_config(
        &config,
        &["user", "add", name, "--role", role],
        Some(&password),
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let login = http()
        .post(format!("{}/auth/login", sandbox.panel()))
        .header("Origin", sandbox.panel())
        .form(&[("name", name), ("password", password.as_str())])
        .send()
        .await
        .unwrap();
    (flightdeck_tests::session_cookie(&login).unwrap(), password)
}

async fn fill_in(browser: &Client, css: &str, text: &str) {
    let field = browser.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Waits up to `seconds` for an element matching `css`; `what` says what
/// its absence means.
async fn wait_for(
    browser: &Client,
    css: &str,
    seconds: u64,
    what: &str,
) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(Duration::from_secs(seconds))
        .for_element(Locator::Css(css))
        .await
        .expect(what)
}

async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_lead_filters_the_trail_to_a_break_glass_rollback_opens_it_and_marks_it_reviewed() {
    let dir = TempDir::new("browser-audit");
    let sandbox = Sandbox::start(&dir, &["--seed", "4"]).await;
    let admin = sandbox.session().await;
    sandbox
        .wait_for_live_releases(&admin, Duration::from_secs(120))
        .await;
    // A deployer rolls production back alone: break-glass.
    let (dana, dana_password) = add_and_sign_in(&sandbox, "dana", "deployer").await;
    let (_, lee_password) = add_and_sign_in(&sandbox, "lee", "lead").await;
    let started: serde_json::Value = http()
        .post(format!(
            "{}/api/v1/environments/production/rollbacks",
            sandbox.panel()
        ))
        .header("Origin", sandbox.panel())
        .header("Cookie", &dana)
        .header("Idempotency-Key", "browser-audit-1")
        .json(&serde_json::json!({ "reason": "Checkout is down after the deploy" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = started["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{started}"))
        .to_owned();
    let state = flightdeck_tests::settled_state(sandbox.panel(), &dana, &id).await;
    assert_eq!(state, "succeeded");

    // The lead sees it in the queue, filters the trail down to it with
    // the page's own form, and opens it.
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    sign_in(&browser, sandbox.panel(), "lee", &lee_password).await;
    // Hydrated, the link navigates in the page and the trail comes from
    // the `audit` server function.
    wait_for_hydration(&browser).await;
    click(&browser, "#nav-audit").await;
    wait_for(
        &browser,
        &format!("#review-queue tr[data-item='op:{id}']"),
        20,
        "the break-glass rollback is in the queue",
    )
    .await;
    fill_in(&browser, "#filters input[name=actor]", "dana").await;
    fill_in(&browser, "#filters input[name=action]", "rollback.start").await;
    click(&browser, "#apply-filters").await;
    let mut url = browser.current_url().await.unwrap();
    for _ in 0..100 {
        if url.query().is_some_and(|q| q.contains("actor=dana")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        url = browser.current_url().await.unwrap();
    }
    assert!(
        url.query().unwrap().contains("action=rollback.start"),
        "{url}"
    );
    assert_eq!(rows(&browser, "table.audit tbody tr").await, 1);
    click(&browser, "table.audit tbody tr td a").await;
    wait_for(
        &browser,
        "#operation li.step",
        20,
        "the detail shows the operation's steps",
    )
    .await;
    assert_eq!(rows(&browser, "#operation li.step").await, 5);
    assert!(
        text_of(&browser, "#operation")
            .await
            .contains("Checkout is down after the deploy")
    );

    fill_in(
        &browser,
        "#review textarea[name=note]",
        "Outage confirmed on Render; right call",
    )
    .await;
    click(&browser, "#mark-reviewed").await;
    wait_for(&browser, "#review .reviewed-by", 20, "the review is shown").await;
    assert_eq!(text_of(&browser, "#review .reviewed-by").await, "lee");
    assert!(
        text_of(&browser, ".review-note")
            .await
            .contains("right call")
    );

    // The mark is an audit event; the queue no longer holds the rollback.
    let store = format!("sqlite://{}", dir.0.join("flightdeck.db").display());
    let review = flightdeck_tests::audit_rows(&store)
        .await
        .into_iter()
        .find(|row| row.action == "audit.review")
        .expect("an audit.review event");
    assert_eq!(review.outcome, "succeeded");
    assert_eq!(review.target.as_deref(), Some(format!("op:{id}").as_str()));
    browser
        .goto(&format!("{}/audit", sandbox.panel()))
        .await
        .unwrap();
    assert!(
        browser
            .find(Locator::Css(&format!(
                "#review-queue tr[data-item='op:{id}']"
            )))
            .await
            .is_err()
    );

    // A deployer has no way in: no link, and the page refuses.
    click(&browser, "#sign-out").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    sign_in(&browser, sandbox.panel(), "dana", &dana_password).await;
    assert!(browser.find(Locator::Css("#nav-audit")).await.is_err());
    browser
        .goto(&format!("{}/audit", sandbox.panel()))
        .await
        .unwrap();
    assert!(text_of(&browser, "#error-message").await.contains("lead"));
    assert!(browser.find(Locator::Css("#review-queue")).await.is_err());
}

#[tokio::test]
async fn a_lead_downloads_the_csv_export_from_the_audit_page_whole() {
    // Two and a half export pages, downloaded by a browser that asks for gzip.
    let events = audit_trail::EXPORT_PAGE * 5 / 2;
    let setup = Setup::new("browser-export", "");
    let until = audit_trail::seed(&setup.store_url, events).await;
    let password = setup.add_user("lena", "lead").await;
    let panel = setup.serve().await;
    let driver = Driver::start().await;
    let downloads = TempDir::new("browser-downloads");
    let browser = driver.browser_downloading_into(&downloads.0).await;
    sign_in(&browser, &panel.url, "lena", &password).await;

    browser
        .goto(&panel.at(&format!("/audit?until={until}")))
        .await
        .unwrap();
    let link = wait_for(
        &browser,
        "#export-csv",
        20,
        "the page offers the CSV export",
    )
    .await;
    let href = link.attr("href").await.unwrap().unwrap();
    assert!(
        href.contains("until="),
        "the export keeps the filter: {href}"
    );
    link.click().await.unwrap();

    // Chromium writes `….crdownload` and renames it once the body ended
    // cleanly; a body cut short stays partial or is dropped.
    let file = downloads.0.join("flightdeck-audit.csv");
    let mut waited = 0;
    while !file.is_file() {
        assert!(
            waited < 600,
            "no finished download after 60 s: {:?}",
            std::fs::read_dir(&downloads.0)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    let downloaded = std::fs::read(&file).unwrap();
    let cli = setup
        .cli(
            &["audit", "export", "--format", "csv", "--until", &until],
            None,
        )
        .await;
    assert!(cli.status.success());
    assert!(cli.stdout.len() > 500_000, "several pages");
    assert!(
        downloaded == cli.stdout,
        "{} bytes downloaded, {} from the CLI",
        downloaded.len(),
        cli.stdout.len()
    );
    // Every event: one row per target, in order.
    let text = String::from_utf8(downloaded).unwrap();
    for i in [0, audit_trail::EXPORT_PAGE, events - 1] {
        assert!(text.contains(&format!(",op_{i:06},")), "row {i}");
    }
    let rows = text.matches(",op_").count();
    assert_eq!(rows, events, "one row per event");
}

#[tokio::test]
async fn older_links_page_through_every_deploy_and_run_of_a_long_history() {
    let dir = TempDir::new("browser-older");
    let sandbox = Sandbox::start(&dir, &["--seed", "5", "--older-commits", "110"]).await;
    let cookie = sandbox.session().await;
    // The sync backfills the history over a few passes.
    let count = async |path: &str| {
        let url = format!(
            "{}/api/v1/environments/production/{path}?limit=500",
            sandbox.panel()
        );
        flightdeck_tests::get_json(&url, &cookie).await["items"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let (deploys, runs) = loop {
        let (deploys, runs) = (count("deploys").await, count("runs").await);
        if deploys > 110 && runs > 110 {
            // Settled: the next pass found nothing more.
            tokio::time::sleep(Duration::from_secs(6)).await;
            if (count("deploys").await, count("runs").await) == (deploys, runs) {
                break (deploys, runs);
            }
            continue;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{deploys} deploys, {runs} runs"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    let (name, password) = sandbox.printed["sign-in"].split_once(" / ").unwrap();
    sign_in(&browser, sandbox.panel(), name, password).await;
    for (path, row, total) in [
        ("/env/production/deploys", "tr[data-deploy]", deploys),
        ("/env/production", "tr[data-deploy]", deploys),
        ("/env/production/runs", "tr[data-run]", runs),
    ] {
        browser
            .goto(&format!("{}{path}", sandbox.panel()))
            .await
            .unwrap();
        wait_for_hydration(&browser).await;
        let mut seen = rows(&browser, row).await;
        let mut pages = 1;
        while let Ok(older) = browser.find(Locator::Css("a#older")).await {
            let href = older.attr("href").await.unwrap().unwrap();
            assert!(href.starts_with(&format!("{path}?cursor=")), "{href}");
            let before = browser.current_url().await.unwrap();
            older.click().await.unwrap();
            // The next page is a new document at the link's URL.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while browser.current_url().await.unwrap() == before {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{path}: no navigation"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let now = browser.current_url().await.unwrap();
            assert!(
                now.query().is_some_and(|q| q.starts_with("cursor=")),
                "{now}"
            );
            wait_for_hydration(&browser).await;
            seen += rows(&browser, row).await;
            pages += 1;
            assert!(pages < 20, "{path}: the pages end");
        }
        assert_eq!(seen, total, "{path}: every item once, over {pages} pages");
        assert!(pages >= 3, "{path}: {pages} pages");
    }
}
