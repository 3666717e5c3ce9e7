//! Flightdeck's pages, the types they share with the server, and the
//! server functions they call.

pub mod api;
pub mod error;
mod layout;
pub mod live;
pub mod model;
mod pages;
pub mod timefmt;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    SsrMode,
    components::{Route, Router, Routes},
    path,
};

/// The HTML document around every page.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <HydrationScripts options islands=true/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// Sends a Content-Security-Policy that allows only this request's
/// hydration scripts (by their nonce) and the wasm they compile.
#[cfg(feature = "ssr")]
fn set_content_security_policy() {
    let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    let policy = format!(
        "default-src 'self'; script-src 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; \
         form-action 'self'; object-src 'none'"
    );
    if let Ok(value) = http::HeaderValue::from_str(&policy) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The router. Every page renders fully on the server (`SsrMode::Async`) so
/// that it works without JavaScript; only the islands (live refresh, the
/// environment filter, the token form) run in the browser.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="flightdeck" href="/pkg/flightdeck.css"/>
        <Title text="Flightdeck"/>
        <Router>
            <Routes fallback=|| view! { <pages::NotFound/> }>
                <Route path=path!("/") view=pages::OverviewPage ssr=SsrMode::Async/>
                <Route path=path!("/login") view=pages::LoginPage ssr=SsrMode::Async/>
                <Route path=path!("/admin") view=pages::AdminPage ssr=SsrMode::Async/>
                <Route path=path!("/env/:env") view=pages::TimelinePage ssr=SsrMode::Async/>
                <Route path=path!("/env/:env/runs") view=pages::RunsPage ssr=SsrMode::Async/>
                <Route path=path!("/env/:env/deploys") view=pages::DeploysPage ssr=SsrMode::Async/>
                <Route path=path!("/env/:env/migrations") view=pages::MigrationsPage ssr=SsrMode::Async/>
                <Route path=path!("/env/:env/rollback") view=pages::RollbackPage ssr=SsrMode::Async/>
                <Route path=path!("/runs/:id") view=pages::RunPage ssr=SsrMode::Async/>
                <Route path=path!("/operations/:id") view=pages::OperationPage ssr=SsrMode::Async/>
                <Route path=path!("/audit") view=pages::AuditPage ssr=SsrMode::Async/>
                <Route path=path!("/audit/:seq") view=pages::AuditEventPage ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}
