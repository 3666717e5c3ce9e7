//! Live updates: the server's `/events` stream turned into counters that the
//! pages key their resources on, so a change refetches what it touched.
//!
//! Only the hydrated browser opens the stream; on the server and without
//! JavaScript the counters never move and the pages offer a Refresh link.

use leptos::prelude::*;
use std::collections::BTreeMap;

/// The environment name of a change that concerns every environment (the
/// stream reconnected, or the server dropped changes for a slow reader).
pub const ALL: &str = "*";

/// How many changes arrived, per environment.
#[derive(Clone, Copy)]
pub struct LiveChanges(RwSignal<BTreeMap<String, u64>>);

impl LiveChanges {
    /// Puts the counters in context for every page below.
    pub fn provide() {
        provide_context(LiveChanges(RwSignal::new(BTreeMap::new())));
    }

    /// Changes seen for `environment` (tracked).
    pub fn of(self, environment: &str) -> u64 {
        self.0
            .with(|m| m.get(environment).copied().unwrap_or(0) + m.get(ALL).copied().unwrap_or(0))
    }

    /// Changes seen for any environment (tracked).
    pub fn total(self) -> u64 {
        self.0.with(|m| m.values().sum())
    }

    #[cfg_attr(not(feature = "hydrate"), expect(dead_code))]
    fn record(self, environment: &str) {
        self.0
            .update(|m| *m.entry(environment.to_owned()).or_default() += 1);
    }
}

/// The counters from context (inert ones outside the app, e.g. in tests).
pub fn use_live_changes() -> LiveChanges {
    use_context().unwrap_or_else(|| LiveChanges(RwSignal::new(BTreeMap::new())))
}

/// Opens `/events` once per page load and counts each `change` event for
/// its environment. Called from an effect, so only in the browser.
#[cfg(feature = "hydrate")]
pub fn connect(changes: LiveChanges) {
    use std::cell::Cell;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;

    thread_local! {
        static OPEN: Cell<bool> = const { Cell::new(false) };
    }
    if OPEN.with(|open| open.replace(true)) {
        return;
    }
    let Ok(source) = web_sys::EventSource::new("/events") else {
        OPEN.with(|open| open.set(false));
        return;
    };

    #[derive(serde::Deserialize)]
    struct Change {
        environment: String,
    }
    let on_change =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            let Some(text) = event.data().as_string() else {
                return;
            };
            if let Ok(change) = serde_json::from_str::<Change>(&text) {
                changes.record(&change.environment);
            }
        });
    let _ = source.add_event_listener_with_callback("change", on_change.as_ref().unchecked_ref());

    // The browser reconnects by itself after a dropped connection; what
    // changed meanwhile was missed, so every page refetches then.
    let opened = Cell::new(false);
    let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_: web_sys::Event| {
        if opened.replace(true) {
            changes.record(ALL);
        }
    });
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));

    // Both listeners live as long as the page, like the stream itself.
    on_change.forget();
    on_open.forget();
}
