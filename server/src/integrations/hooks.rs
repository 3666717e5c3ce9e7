//! The plain HTTP calls an operation makes besides Render's and GitHub's
//! APIs: the smoke check, the notification webhook and Render's deploy
//! hook. Each sits behind a trait like the other upstreams, so the executor
//! holds no HTTP client of its own and a test can put in its own.
//! [`HttpHooks`] is the real one for all three.

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// Why a call got no 2xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("answered {0}")]
    Status(http::StatusCode),
    #[error("timed out")]
    TimedOut,
    #[error("could not be reached")]
    Unreachable,
}

/// `GET {BACKEND_URL}{smoke_path}`: does the service answer?
#[async_trait]
pub trait SmokeCheck: Send + Sync {
    /// One try: the 2xx status, or why not.
    async fn probe(&self, url: &str) -> Result<http::StatusCode, CallError>;
}

/// Where an operation's outcome is announced (Slack-compatible `text`).
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn notify(&self, url: &str, message: &serde_json::Value) -> Result<(), CallError>;
}

/// Render's deploy hook: a secret URL that deploys the branch's head when
/// posted to (Render does not say which deploy it started).
#[async_trait]
pub trait DeployHook: Send + Sync {
    async fn trigger(&self, url: &str) -> Result<(), CallError>;
}

/// The three an executor calls; by default all [`HttpHooks`].
#[derive(Clone)]
pub struct Hooks {
    pub smoke: Arc<dyn SmokeCheck>,
    pub notifier: Arc<dyn Notifier>,
    pub deploy_hook: Arc<dyn DeployHook>,
}

impl Default for Hooks {
    fn default() -> Self {
        let http = Arc::new(HttpHooks::default());
        Hooks {
            smoke: http.clone(),
            notifier: http.clone(),
            deploy_hook: http,
        }
    }
}

/// The three over one reqwest client: 10 s per call, no redirects (a
/// redirect from a secret URL is not followed with the secret's trust).
/// Each call is counted in `flightdeck_upstream_requests_total`.
#[derive(Clone)]
pub struct HttpHooks {
    client: reqwest::Client,
}

impl Default for HttpHooks {
    fn default() -> Self {
        super::install_tls_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client without custom TLS always builds");
        HttpHooks { client }
    }
}

fn answer(
    service: &'static str,
    call: Result<reqwest::Response, reqwest::Error>,
) -> Result<http::StatusCode, CallError> {
    match crate::metrics::count_http(service, call) {
        Ok(response) if response.status().is_success() => Ok(response.status()),
        Ok(response) => Err(CallError::Status(response.status())),
        Err(error) if error.is_timeout() => Err(CallError::TimedOut),
        Err(_) => Err(CallError::Unreachable),
    }
}

#[async_trait]
impl SmokeCheck for HttpHooks {
    async fn probe(&self, url: &str) -> Result<http::StatusCode, CallError> {
        answer("smoke", self.client.get(url).send().await)
    }
}

#[async_trait]
impl Notifier for HttpHooks {
    async fn notify(&self, url: &str, message: &serde_json::Value) -> Result<(), CallError> {
        answer("notify", self.client.post(url).json(message).send().await).map(drop)
    }
}

#[async_trait]
impl DeployHook for HttpHooks {
    async fn trigger(&self, url: &str) -> Result<(), CallError> {
        answer("render_hook", self.client.post(url).send().await).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};

    async fn serve(router: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn statuses_and_transport_errors_become_call_errors() {
        let base = serve(
            axum::Router::new()
                .route("/ok", get(|| async { "ok" }))
                .route("/down", get(|| async { http::StatusCode::BAD_GATEWAY }))
                .route(
                    "/moved",
                    get(|| async { axum::response::Redirect::temporary("/ok") }),
                )
                .route(
                    "/hook",
                    post(|body: String| async move {
                        if body.is_empty() {
                            http::StatusCode::NO_CONTENT
                        } else {
                            http::StatusCode::BAD_REQUEST
                        }
                    }),
                )
                .route(
                    "/notify",
                    post(|axum::Json(v): axum::Json<serde_json::Value>| async move {
                        if v["text"] == "hi" {
                            http::StatusCode::OK
                        } else {
                            http::StatusCode::UNPROCESSABLE_ENTITY
                        }
                    }),
                ),
        )
        .await;
        let hooks = HttpHooks::default();
        assert_eq!(
            hooks.probe(&format!("{base}/ok")).await,
            Ok(http::StatusCode::OK)
        );
        assert_eq!(
            hooks.probe(&format!("{base}/down")).await,
            Err(CallError::Status(http::StatusCode::BAD_GATEWAY))
        );
        // Not followed: the smoke check must reach the service itself.
        assert_eq!(
            hooks.probe(&format!("{base}/moved")).await,
            Err(CallError::Status(http::StatusCode::TEMPORARY_REDIRECT))
        );
        assert_eq!(hooks.trigger(&format!("{base}/hook")).await, Ok(()));
        let message = serde_json::json!({ "text": "hi" });
        assert_eq!(
            hooks.notify(&format!("{base}/notify"), &message).await,
            Ok(())
        );
        let wrong = serde_json::json!({ "text": "other" });
        assert_eq!(
            hooks.notify(&format!("{base}/notify"), &wrong).await,
            Err(CallError::Status(http::StatusCode::UNPROCESSABLE_ENTITY))
        );
        // A closed port.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        assert_eq!(
            hooks.probe(&format!("http://{closed}/")).await,
            Err(CallError::Unreachable)
        );
    }
}
