//! `/login`: a plain form that posts to the server, so it works without JavaScript.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// The sign-in form. The server answers the POST with a redirect: to the
/// page asked for, or back here with `?error=1`.
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let failed = move || query.read().get("error").is_some();
    let next = move || query.read().get("next").unwrap_or_else(|| "/".to_owned());
    view! {
        <Title text="Sign in · Flightdeck"/>
        <main class="login">
            <section class="panel">
                <h1>"Flightdeck"</h1>
                <p class="muted">"Sign in to see releases and roll back."</p>
                <Show when=failed>
                    <p class="flash error" id="login-error" role="alert">
                        "That name and password did not match an active account."
                    </p>
                </Show>
                <form method="post" action="/auth/login" id="login-form">
                    <input type="hidden" name="next" value=next/>
                    <label>"Name" <input type="text" name="name" id="name" autocomplete="username" required/></label>
                    <label>
                        "Password"
                        <input type="password" name="password" id="password" autocomplete="current-password" required/>
                    </label>
                    <button type="submit" id="sign-in">"Sign in"</button>
                </form>
            </section>
        </main>
    }
}
