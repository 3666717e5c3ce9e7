//! `/admin`: accounts. Admins only; the server refuses everyone else.

use crate::api::{DisableAccount, get_admin_view};
use crate::layout::{ErrorPanel, Layout};
use crate::model::Account;
use leptos::prelude::*;
use leptos_meta::Title;

/// The admin page.
#[component]
pub fn AdminPage() -> impl IntoView {
    let disable = ServerAction::<DisableAccount>::new();
    // Keyed on the action's version so a disable refreshes the list.
    let view_data = Resource::new(move || disable.version().get(), |_| get_admin_view());
    view! {
        <Title text="Admin · Flightdeck"/>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match view_data.await {
                    Ok(data) => view! {
                        <Layout viewer=data.viewer>
                            <h1>"Accounts"</h1>
                            <p class="muted">
                                "Add accounts with " <code>"flightdeck user add NAME --role ROLE"</code> "."
                            </p>
                            <AccountTable accounts=data.accounts disable/>
                        </Layout>
                    }
                    .into_any(),
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn AccountTable(accounts: Vec<Account>, disable: ServerAction<DisableAccount>) -> impl IntoView {
    let rows = accounts
        .into_iter()
        .map(|account| {
            let name = account.name.clone();
            let action = (!account.disabled).then(move || {
                view! {
                    <ActionForm action=disable>
                        <input type="hidden" name="name" value=name/>
                        <button type="submit" class="danger">"Disable"</button>
                    </ActionForm>
                }
            });
            let state = if account.disabled {
                "disabled"
            } else {
                "active"
            };
            view! {
                <tr data-account=account.name.clone()>
                    <td>{account.name.clone()}</td>
                    <td><span class="badge role">{account.role.as_str()}</span></td>
                    <td><span class=format!("status {state}")>{state}</span></td>
                    <td><time>{account.created_at}</time></td>
                    <td>{action}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="grid">
            <thead><tr><th>"Name"</th><th>"Role"</th><th>"State"</th><th>"Created"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}
