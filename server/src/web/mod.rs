//! The HTTP surface: pages (Leptos), server functions, REST, sign-in, and
//! operations endpoints, wired over one [`ControlPlane`].

mod auth;
mod backend;
mod body_guard;
mod context;
pub mod events;
mod extract;
mod forms;
mod guard;
mod ops;
mod page_cache;
pub mod rest;
mod session_cache;
mod webhooks;

#[cfg(test)]
mod pages_tests;

pub use context::Caller;
pub use events::{Change, changes};

use crate::control::ControlPlane;
use app::{App, shell};
use axum::Router;
use axum::extract::FromRef;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use http::HeaderValue;
use http::header;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use std::net::SocketAddr;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "flightdeck_session";

/// What every handler can reach. Each middleware layer and handler clones
/// it per request, so it is one shared allocation ([`Shared`]) rather than
/// a dozen reference counts to bump and drop.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The fields behind [`AppState`].
pub struct Shared {
    pub control: ControlPlane,
    pub leptos: LeptosOptions,
    /// Where the sync announces what changed; `/events` streams it to browsers.
    pub changes: tokio::sync::broadcast::Sender<Change>,
    /// Turns true when the server starts shutting down: `/events` streams
    /// end then, or an open browser tab would keep the server from stopping.
    pub closing: tokio::sync::watch::Sender<bool>,
    /// The sync, which webhooks poke.
    pub sync: crate::sync::Syncer,
    /// The overview's rendered pages, kept for a moment.
    pub pages: page_cache::PageCache,
}

impl AppState {
    /// The state of a panel listening on `addr`, whose sync reads through
    /// `upstreams` and announces its changes on [`Shared::changes`]. The
    /// sync's loops are not started here (see [`crate::sync::Syncer::spawn`]).
    pub fn new(
        control: ControlPlane,
        addr: std::net::SocketAddr,
        upstreams: crate::sync::Upstreams,
    ) -> AppState {
        let changes = changes();
        let sender = changes.clone();
        let freshness = control.freshness().clone();
        let on_change: crate::sync::OnChange = Arc::new(move |environment: &str, what: &str| {
            // The pages' caches first: a browser that refetches on this
            // change must get the new data, not the cached overview.
            freshness.invalidate();
            // No subscriber is fine: nobody has a page open.
            let _ = sender.send(Change::new(environment, what));
        });
        let control = control.with_upstreams(upstreams.clone(), on_change.clone());
        let sync = crate::sync::Syncer::new(
            control.store().clone(),
            control.shared_config(),
            upstreams,
            on_change,
        );
        AppState(Arc::new(Shared {
            leptos: leptos_options(addr),
            control,
            changes,
            closing: tokio::sync::watch::Sender::new(false),
            sync,
            pages: page_cache::PageCache::default(),
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

/// Leptos' options for the site built by cargo-leptos: the `pkg/` bundle
/// lives under `site_root` (`FLIGHTDECK_SITE_ROOT`, else `site/` beside the
/// binary's target directory, else `target/site`).
pub fn leptos_options(listen: SocketAddr) -> LeptosOptions {
    let site_root = std::env::var("FLIGHTDECK_SITE_ROOT")
        .ok()
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            let candidate = exe.parent()?.parent()?.join("site");
            candidate.is_dir().then(|| candidate.display().to_string())
        })
        .unwrap_or_else(|| "target/site".to_owned());
    LeptosOptions::builder()
        .output_name("flightdeck")
        .site_root(site_root)
        .site_pkg_dir("pkg")
        .site_addr(listen)
        .build()
}

/// The whole router.
pub fn router(state: AppState) -> Router {
    let config = state.control.config();
    let sessions = SessionManagerLayer::new(session_cache::CachedSessions::new(
        state.control.store().session_store(),
        state.control.freshness().clone(),
    ))
    .with_name(SESSION_COOKIE)
    .with_http_only(true)
    .with_same_site(SameSite::Strict)
    .with_secure(config.https())
    .with_path("/")
    .with_expiry(Expiry::OnInactivity(time::Duration::minutes(i64::from(
        config.server.session_idle_minutes,
    ))));

    let backend: app::api::backend::SharedBackend =
        Arc::new(backend::WebBackend::new(state.control.clone()));
    let pages = Router::<AppState>::new()
        .leptos_routes_with_context(
            &state,
            generate_route_list(App),
            move || provide_context(backend.clone()),
            {
                let options = state.leptos.clone();
                move || shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell));

    Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/webhooks/github", post(webhooks::github))
        .route("/webhooks/render", post(webhooks::render))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/events", get(events::events))
        .nest("/api/v1", rest::router())
        .route("/api/docs", get(rest::docs_page))
        .nest("/actions", forms::router())
        .merge(pages)
        .layer(from_fn_with_state(state.clone(), page_cache::overview))
        .layer(from_fn_with_state(
            state.clone(),
            context::changes_refresh_the_stamp,
        ))
        .layer(from_fn_with_state(state.clone(), guard::pages_need_sign_in))
        .layer(from_fn_with_state(
            state.clone(),
            guard::same_origin_for_changes,
        ))
        .layer(from_fn_with_state(state.clone(), context::identify))
        .layer(sessions)
        .layer(CompressionLayer::new())
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(axum::middleware::from_fn(ops::count_requests))
        // Outside the compression, so a panic anywhere in a body's stack
        // (the handler's stream or the encoder around it) is caught, logged
        // with the route and counted, and the response ends as failed.
        .layer(axum::middleware::from_fn(body_guard::guard_bodies))
        // One span per request: method and matched route here, the request
        // id from `trace_ids` (outside it), the actor from `context::identify`; every log line
        // written while handling it carries them (`FLIGHTDECK_LOG=debug`
        // adds a line per response with its status and latency).
        .layer(TraceLayer::new_for_http().make_span_with(context::request_span))
        .layer(axum::middleware::from_fn(context::trace_ids))
        // A bug that panics in a handler answers 500 rather than dropping
        // the connection (the panic itself is logged by the panic hook);
        // once the handler has answered, `body_guard` takes over.
        .layer(CatchPanicLayer::custom(|_| {
            (
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "Flightdeck hit an internal error; it is in the server's log.\n",
            )
                .into_response()
        }))
        .with_state(state)
}

/// The policy for responses that are not pages (pages send a stricter one
/// with the nonce of their hydration scripts, see `app::shell`): no inline
/// script, nothing may frame the panel.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'self'; form-action 'self'; object-src 'none'";

/// Serves until `stop` resolves (see [`shutdown_signal`]), then ends the
/// `/events` streams and finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let store = state.control.store().session_store();
    tokio::spawn(store.delete_expired_every(std::time::Duration::from_secs(3600)));
    let closing = state.clone();
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        stop.await;
        closing.closing.send_replace(true);
    })
    .await
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT). The handlers are installed when
/// this is called, not when it is first awaited: call it before telling
/// anyone the process is ready, or a signal sent right after that would
/// still kill the process the default way (no cleanup, no exit code 0).
/// Must be called inside the runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        let wait = |signal: std::io::Result<tokio::signal::unix::Signal>| async move {
            match signal {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for a stop signal");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            () = wait(interrupt) => {},
            () = wait(terminate) => {},
        }
        tracing::info!("shutting down: finishing requests in flight");
    }
}
