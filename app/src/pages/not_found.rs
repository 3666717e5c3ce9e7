//! The page for every path no route matches.

use leptos::prelude::*;
use leptos_meta::Title;

/// A 404 page; on the server it also sets the status.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found · Flightdeck"/>
        <header class="topbar"><a class="brand" href="/">"Flightdeck"</a></header>
        <main>
            <section class="panel">
                <h1>"Nothing here"</h1>
                <p>"This page does not exist. " <a href="/">"Go to the overview"</a></p>
            </section>
        </main>
    }
}
