//! The panel's clients for the services it drives: Render ([`render`]),
//! GitHub ([`github`]), the target databases ([`database`]) and the smoke
//! check, notification webhook and deploy hook ([`hooks`]). Each talks
//! to the real service, or to the sandbox's simulator.

pub mod database;
pub mod github;
pub mod hooks;
pub mod render;

/// Makes rustls' ring provider the process default, once. reqwest is built
/// with `rustls-no-provider` (one TLS stack for every client, on ring, as
/// octocrab uses), so no HTTP client can be built before this has run, even
/// one that only talks plain HTTP. A provider installed earlier by someone
/// else is kept.
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means a provider is already installed, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// One page of a list an upstream serves, newest first, and where the next
/// one starts: Render's cursor or the URL in GitHub's `Link` header (`None`:
/// this page was the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}
