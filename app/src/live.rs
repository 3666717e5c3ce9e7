//! Live updates. Pages render on the server only (islands mode); the
//! browser runs just the islands below. [`LiveRefresh`] follows the
//! server's `/events` stream and, when a change concerns the open page,
//! fetches the page again and brings its `<main>` up to date in place
//! (a morph that keeps open `<details>`, typed input and hydrated islands).
//!
//! Without JavaScript nothing here runs and the pages offer a Refresh link.

use leptos::prelude::*;

/// The environment name of a change that concerns every environment (the
/// stream reconnected, or the server dropped changes for a slow reader).
pub const ALL: &str = "*";

/// The window event sent after `<main>` was brought up to date, so that
/// islands which change the DOM around them (the filter) apply again.
pub const REFRESHED: &str = "flightdeck:refreshed";

/// Which changes a page follows: `scope` is an environment's name, [`ALL`]
/// for every environment, or empty for none.
pub fn follows(scope: &str, environment: &str) -> bool {
    !scope.is_empty() && (scope == ALL || environment == ALL || scope == environment)
}

/// Follows the server's changes for `scope` (see [`follows`]) and marks the
/// body `data-hydrated` once every island of the page is hydrated.
#[island]
pub fn LiveRefresh(scope: String) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    browser::start(scope.clone());
    view! { <span class="live-scope" data-follow=scope></span> }
}

/// Fetches the open page again and updates `<main>` in place; for islands
/// whose action changed what the page shows (e.g. a new token).
pub fn refresh_page() {
    #[cfg(feature = "hydrate")]
    browser::refresh();
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::{REFRESHED, follows};
    use std::cell::Cell;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{Document, Element, Node};

    thread_local! {
        static OPEN: Cell<bool> = const { Cell::new(false) };
        static BUSY: Cell<bool> = const { Cell::new(false) };
        static AGAIN: Cell<bool> = const { Cell::new(false) };
    }

    /// Opens `/events` once per page load.
    pub fn start(scope: String) {
        mark_hydrated_after_islands();
        if OPEN.with(|open| open.replace(true)) || scope.is_empty() {
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
        let on_change_scope = scope.clone();
        let on_change = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |event: web_sys::MessageEvent| {
                let Some(text) = event.data().as_string() else {
                    return;
                };
                if let Ok(change) = serde_json::from_str::<Change>(&text)
                    && follows(&on_change_scope, &change.environment)
                {
                    refresh();
                }
            },
        );
        let _ =
            source.add_event_listener_with_callback("change", on_change.as_ref().unchecked_ref());

        // The browser reconnects by itself after a dropped connection; what
        // changed meanwhile was missed, so the page refreshes then.
        let opened = Cell::new(false);
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_: web_sys::Event| {
            if opened.replace(true) {
                refresh();
            }
        });
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));

        // Both listeners live as long as the page, like the stream itself.
        on_change.forget();
        on_open.forget();
    }

    /// Islands hydrate one after another in microtasks started by the
    /// hydration script; a zero timeout runs after all of them.
    fn mark_hydrated_after_islands() {
        leptos::prelude::set_timeout(
            || {
                if let Some(body) = leptos::tachys::dom::document().body() {
                    let _ = body.set_attribute("data-hydrated", "true");
                }
            },
            std::time::Duration::ZERO,
        );
    }

    /// One refresh at a time; changes during one cause exactly one more.
    pub fn refresh() {
        if BUSY.with(|busy| busy.replace(true)) {
            AGAIN.with(|again| again.set(true));
            return;
        }
        wasm_bindgen_futures::spawn_local(async {
            loop {
                AGAIN.with(|again| again.set(false));
                // On failure the page keeps what it shows; the next change tries again.
                let _ = refresh_once().await;
                if !AGAIN.with(Cell::get) {
                    break;
                }
            }
            BUSY.with(|busy| busy.set(false));
        });
    }

    async fn refresh_once() -> Result<(), JsValue> {
        let window = web_sys::window().ok_or(JsValue::NULL)?;
        let document = window.document().ok_or(JsValue::NULL)?;
        let href = window.location().href()?;
        let response: web_sys::Response = JsFuture::from(window.fetch_with_str(&href))
            .await?
            .dyn_into()?;
        // Signed out meanwhile, or an error page: keep what is shown.
        if !response.ok() || response.redirected() {
            return Ok(());
        }
        let text = JsFuture::from(response.text()?)
            .await?
            .as_string()
            .unwrap_or_default();
        let fresh = web_sys::DomParser::new()?
            .parse_from_string(&text, web_sys::SupportedType::TextHtml)?;
        let (Some(old), Some(new)) = (
            document.query_selector("main")?,
            fresh.query_selector("main")?,
        ) else {
            return Ok(());
        };
        if let Some(title) = fresh
            .query_selector("title")?
            .and_then(|t| t.text_content())
        {
            document.set_title(&title);
        }
        let mut islands = Vec::new();
        morph_children(&document, &old, &new, &mut islands)?;
        for island in islands {
            hydrate_island(&window, &island);
        }
        window.dispatch_event(&web_sys::Event::new(REFRESHED)?)?;
        Ok(())
    }

    /// Makes `old`'s children equal to `new`'s, reusing nodes of the same kind.
    fn morph_children(
        document: &Document,
        old: &Node,
        new: &Node,
        islands: &mut Vec<Element>,
    ) -> Result<(), JsValue> {
        let wanted = new.child_nodes();
        let mut index = 0;
        while let Some(new_child) = wanted.item(index) {
            match old.child_nodes().item(index) {
                Some(old_child) if same_kind(&old_child, &new_child) => {
                    update(document, &old_child, &new_child, islands)?;
                }
                Some(old_child) => {
                    let fresh = adopt(document, &new_child, islands)?;
                    old.replace_child(&fresh, &old_child)?;
                }
                None => {
                    let fresh = adopt(document, &new_child, islands)?;
                    old.append_child(&fresh)?;
                }
            }
            index += 1;
        }
        while let Some(extra) = old.child_nodes().item(index) {
            old.remove_child(&extra)?;
        }
        Ok(())
    }

    /// Same node type and tag; for islands also the same component and props.
    fn same_kind(old: &Node, new: &Node) -> bool {
        if old.node_type() != new.node_type() || old.node_name() != new.node_name() {
            return false;
        }
        match (old.dyn_ref::<Element>(), new.dyn_ref::<Element>()) {
            (Some(old), Some(new)) if is_island(old) => {
                old.get_attribute("data-component") == new.get_attribute("data-component")
                    && old.get_attribute("data-props") == new.get_attribute("data-props")
            }
            _ => true,
        }
    }

    fn is_island(element: &Element) -> bool {
        element.tag_name().eq_ignore_ascii_case("leptos-island")
    }

    fn update(
        document: &Document,
        old: &Node,
        new: &Node,
        islands: &mut Vec<Element>,
    ) -> Result<(), JsValue> {
        match (old.dyn_ref::<Element>(), new.dyn_ref::<Element>()) {
            // The same island with the same props renders the same: keep it
            // as it is, hydrated, with its state.
            (Some(old), Some(_)) if is_island(old) => Ok(()),
            (Some(old_element), Some(new_element)) => {
                sync_attributes(old_element, new_element)?;
                morph_children(document, old, new, islands)
            }
            _ => {
                if old.node_value() != new.node_value() {
                    old.set_node_value(new.node_value().as_deref());
                }
                Ok(())
            }
        }
    }

    /// Copies `new`'s attributes onto `old`, except what the reader set:
    /// an open `<details>` stays open.
    fn sync_attributes(old: &Element, new: &Element) -> Result<(), JsValue> {
        let keep_open = old.tag_name().eq_ignore_ascii_case("details");
        for name in old.get_attribute_names().iter() {
            let Some(name) = name.as_string() else {
                continue;
            };
            if !new.has_attribute(&name) && !(keep_open && name == "open") {
                old.remove_attribute(&name)?;
            }
        }
        for name in new.get_attribute_names().iter() {
            let Some(name) = name.as_string() else {
                continue;
            };
            let value = new.get_attribute(&name).unwrap_or_default();
            if old.get_attribute(&name).as_deref() != Some(value.as_str()) {
                old.set_attribute(&name, &value)?;
            }
        }
        Ok(())
    }

    /// `new` imported into the page, with the islands inside it noted for hydration.
    fn adopt(document: &Document, new: &Node, islands: &mut Vec<Element>) -> Result<Node, JsValue> {
        let fresh = document.import_node_with_deep(new, true)?;
        if let Some(element) = fresh.dyn_ref::<Element>() {
            if is_island(element) {
                islands.push(element.clone());
            } else {
                let inner = element.query_selector_all("leptos-island")?;
                for index in 0..inner.length() {
                    if let Some(island) = inner.item(index).and_then(|n| n.dyn_into().ok()) {
                        islands.push(island);
                    }
                }
            }
        }
        Ok(fresh)
    }

    /// Hydrates an island that arrived with a refresh, through the function
    /// the hydration script leaves on the window.
    fn hydrate_island(window: &web_sys::Window, island: &Element) {
        let Ok(hydrate) = js_sys::Reflect::get(window, &JsValue::from_str("__hydrateIsland"))
        else {
            return;
        };
        let Some(hydrate) = hydrate.dyn_ref::<js_sys::Function>() else {
            return;
        };
        let component = island.get_attribute("data-component").unwrap_or_default();
        let _ = hydrate.call2(&JsValue::NULL, island, &JsValue::from_str(&component));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_follows_its_environment_every_change_for_all_and_nothing_when_empty() {
        assert!(follows("production", "production"));
        assert!(!follows("production", "staging"));
        assert!(
            follows("production", ALL),
            "a reconnect concerns every page"
        );
        assert!(follows(ALL, "staging"));
        assert!(!follows("", "production"));
        assert!(!follows("", ALL));
    }
}
