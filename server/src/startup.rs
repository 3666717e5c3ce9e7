//! Start-up: opening the configured store and serving the panel, shared by
//! `flightdeck serve` and `flightdeck sandbox` (it knows neither command).

use crate::audit::{RequestMeta, Verdict};
use crate::config::Config;
use crate::control::ControlPlane;
use crate::identity::Actor;
use crate::store::{Store, StoreError};
use crate::web::{self, AppState};
use std::net::SocketAddr;

/// Why the panel could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the store: {0}")]
    OpenStore(#[source] StoreError),
    #[error("cannot migrate the store: {0}")]
    MigrateStore(#[source] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Connects to the configured store and brings its schema up to date.
pub async fn open_store(config: &Config) -> Result<Store, StartupError> {
    let store = Store::connect(&config.store.url)
        .await
        .map_err(StartupError::OpenStore)?;
    store.migrate().await.map_err(StartupError::MigrateStore)?;
    Ok(store)
}

/// How often a serving panel recomputes the audit chain by itself, so the
/// overview's chain state for leads is never older than this.
const CHAIN_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// Verifies the chain every `period`, as the system actor; each outcome is
/// an `audit.verify` event, which the overview shows (the newest one,
/// whichever panel wrote it, so a restart loses nothing).
async fn verify_every(control: ControlPlane, period: std::time::Duration) {
    let actor = Actor::system("flightdeck");
    let meta = RequestMeta::default();
    loop {
        tokio::time::sleep(period).await;
        match control.verify_audit_as(&actor, &meta).await {
            Ok(Verdict::Broken { seq, .. }) => {
                tracing::error!(seq, "the audit chain is broken");
            }
            Ok(Verdict::Intact { .. }) => {}
            Err(error) => tracing::warn!(%error, "could not verify the audit chain"),
        }
    }
}

/// Binds, prints where the panel answers, and serves until stopped.
pub async fn serve(control: ControlPlane) -> Result<(), StartupError> {
    let listen = control.config().server.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| StartupError::Listen {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr()?;
    let upstreams = crate::sync::Upstreams::from_config(control.config());
    let state = AppState::new(control, addr, upstreams);
    state.sync.spawn();
    if let Some(executor) = state.control.executor() {
        // Picks up operations a stopped panel left running.
        executor.spawn_resumer();
    }
    tokio::spawn(verify_every(state.control.clone(), CHAIN_CHECK_EVERY));
    // Listening for SIGTERM and Ctrl-C before the line that says it is up.
    let stop = web::shutdown_signal();
    println!("panel http://{addr}");
    tracing::info!(%addr, store = state.control.store().backend(), "serving");
    web::serve(listener, state, stop).await?;
    Ok(())
}
