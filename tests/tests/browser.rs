//! The pages in real headless Chromium (Debian's chromium + chromium-driver),
//! driven over WebDriver: sign in, the overview, hydration, sign out, roles.

use fantoccini::{Client, ClientBuilder, Locator};
use flightdeck_tests::{Panel, Setup};
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
            serde_json::json!({ "args": args, "binary": "/usr/bin/chromium" }),
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

async fn sign_in(browser: &Client, panel: &Panel, name: &str, password: &str) {
    browser.goto(&panel.at("/login")).await.unwrap();
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
    browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("[data-env=production]"))
        .await
        .expect("the overview shows after sign-in");
}

/// A panel with one account `name` of `role`, and a browser signed in as it.
async fn signed_in_browser(name: &str, role: &str) -> (Setup, Panel, Driver, Client) {
    let setup = Setup::new(&format!("browser-{role}"), "");
    let password = setup.add_user(name, role).await;
    let panel = setup.serve().await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    sign_in(&browser, &panel, name, &password).await;
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

    browser
        .find(Locator::Css("#sign-out"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#login-form"))
        .await
        .expect("signing out leads back to the sign-in page");
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
