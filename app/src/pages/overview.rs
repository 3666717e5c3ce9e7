//! `/`: every configured environment at a glance.

use crate::api::get_overview;
use crate::layout::{ErrorPanel, Layout};
use crate::model::EnvironmentSummary;
use leptos::prelude::*;
use leptos_meta::Title;

/// The overview page.
#[component]
pub fn OverviewPage() -> impl IntoView {
    let overview = Resource::new(|| (), |_| get_overview());
    view! {
        <Title text="Overview · Flightdeck"/>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match overview.await {
                    Ok(o) => view! {
                        <Layout viewer=o.viewer>
                            <EnvironmentList environments=o.environments.into_iter().map(|e| e.summary).collect()/>
                        </Layout>
                    }
                    .into_any(),
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The environments, with a filter box that narrows them as you type
/// (once the page is hydrated; without JavaScript all are shown).
#[component]
fn EnvironmentList(environments: Vec<EnvironmentSummary>) -> impl IntoView {
    let (filter, set_filter) = signal(String::new());
    let count = environments.len();
    let cards = environments
        .into_iter()
        .map(|env| {
            let name = env.name.clone();
            let hidden = move || !name.contains(filter.read().trim());
            view! { <EnvironmentCard env hidden/> }
        })
        .collect_view();
    view! {
        <div class="page-head">
            <h1>"Environments"</h1>
            <input
                type="search"
                id="env-filter"
                placeholder="Filter environments"
                aria-label="Filter environments"
                on:input=move |ev| set_filter.set(event_target_value(&ev))
            />
        </div>
        {(count == 0).then(|| view! {
            <p class="muted">"No environment is configured. Add an [[environment]] to flightdeck.toml."</p>
        })}
        <ul class="environments">{cards}</ul>
    }
}

#[component]
fn EnvironmentCard(
    env: EnvironmentSummary,
    hidden: impl Fn() -> bool + Send + Sync + 'static,
) -> impl IntoView {
    let missing = (!env.missing_secrets.is_empty()).then(|| {
        let names = env.missing_secrets.join(", ");
        view! {
            <p class="flash warn">"Set " <code>{names}</code> " to enable everything for this environment."</p>
        }
    });
    view! {
        <li class="env card" class:hidden=hidden data-env=env.name.clone()>
            <h2>{env.name.clone()}</h2>
            <dl>
                <dt>"Branch"</dt><dd><code>{env.branch}</code></dd>
                <dt>"Deploy workflow"</dt><dd><code>{env.deploy_workflow}</code></dd>
                <dt>"Render service"</dt><dd><code>{env.render_service_id}</code></dd>
            </dl>
            {missing}
        </li>
    }
}
