//! The frame around every signed-in page: navigation, who is signed in, sign-out.

use crate::error::AppError;
use crate::live::LiveRefresh;
use crate::model::{Role, Viewer};
use leptos::prelude::*;

/// Navigation and the signed-in person above the page's content. `follow`
/// names the changes that refresh the page live (see [`crate::live::follows`]):
/// an environment, `*` for all, or nothing.
#[component]
pub fn Layout(
    viewer: Viewer,
    #[prop(optional, into)] follow: String,
    children: Children,
) -> impl IntoView {
    let audit_link = viewer
        .role
        .allows(Role::Lead)
        .then(|| view! { <a href="/audit" id="nav-audit">"Audit"</a> });
    let admin_link = viewer
        .role
        .allows(Role::Admin)
        .then(|| view! { <a href="/admin" id="nav-admin">"Admin"</a> });
    view! {
        <header class="topbar">
            <a class="brand" href="/">"Flightdeck"</a>
            <LiveRefresh scope=follow/>
            <nav>
                <a href="/">"Overview"</a>
                {audit_link}
                {admin_link}
            </nav>
            <div class="who">
                <span id="who">{viewer.name}</span>
                <span class="badge role">{viewer.role.as_str()}</span>
                <form method="post" action="/auth/logout">
                    <button type="submit" id="sign-out" class="link">"Sign out"</button>
                </form>
            </div>
        </header>
        <main>{children()}</main>
        <footer class="site-footer">
            <a href="/api/docs" id="api-docs">"REST API"</a>
        </footer>
    }
}

/// A page-sized explanation of an error.
#[component]
pub fn ErrorPanel(error: AppError) -> impl IntoView {
    // The server function already set the status when it failed; errors
    // found by the page itself (a malformed id) set it here.
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>()
        && let Ok(status) = http::StatusCode::from_u16(error.status())
    {
        response.set_status(status);
    }
    let heading = match error {
        AppError::NotFound(_) => "Nothing here",
        _ => "Not possible",
    };
    let hint = matches!(error, AppError::Unauthorized)
        .then(|| view! { <p><a href="/login">"Sign in"</a></p> });
    view! {
        <header class="topbar"><a class="brand" href="/">"Flightdeck"</a></header>
        <main>
            <section class="panel error" role="alert">
                <h1>{heading}</h1>
                <p id="error-message">{error.to_string()}</p>
                {hint}
            </section>
        </main>
    }
}
