//! `/admin`: accounts. Admins only; the server refuses everyone else.

use crate::api::{CreateToken, DisableAccount, RevokeToken, get_admin_view};
use crate::layout::{ErrorPanel, Layout};
use crate::model::{Account, TokenView};
use leptos::prelude::*;
use leptos_meta::Title;

/// The admin page.
#[component]
pub fn AdminPage() -> impl IntoView {
    // Disabling and revoking are plain forms: the server function answers
    // a form post by sending the browser back to this page.
    let disable = ServerAction::<DisableAccount>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let view_data = Resource::new(|| (), |_| get_admin_view());
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
                            <AccountTable accounts=data.accounts.clone() disable/>
                            <h2>"API tokens"</h2>
                            <p class="muted">
                                "A token acts as its account, with the account's role; every use is in the audit trail. "
                                "Also: " <code>"flightdeck token create NAME --label LABEL"</code> "."
                            </p>
                            <NewTokenForm accounts=data.accounts/>
                            <TokenTable tokens=data.tokens revoke/>
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

/// Creates a token; the reply shows it once (this island needs JavaScript
/// for that; without it use `flightdeck token create`). The token list
/// below is refreshed after each creation.
#[island]
fn NewTokenForm(accounts: Vec<Account>) -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    Effect::new(move |_| {
        if create.version().get() > 0 {
            crate::live::refresh_page();
        }
    });
    let options = accounts
        .into_iter()
        .filter(|a| !a.disabled)
        .map(|a| view! { <option value=a.name.clone()>{a.name.clone()} " (" {a.role.as_str()} ")"</option> })
        .collect_view();
    let shown = move || {
        create.value().get().map(|reply| match reply {
            Ok(new) => view! {
                <div class="flash" id="new-token" role="status">
                    <p>"Token " <code>{new.id.clone()}</code> " for " {new.user.clone()}
                        ". Copy it now: it is not stored and will not be shown again."</p>
                    <pre class="token-secret"><code id="token-secret">{new.token.clone()}</code></pre>
                </div>
            }
            .into_any(),
            Err(error) => view! { <p class="flash error" role="alert">{error.to_string()}</p> }.into_any(),
        })
    };
    view! {
        <ActionForm action=create attr:class="inline" attr:id="create-token">
            <label>"Account " <select name="user">{options}</select></label>
            <label>"Label " <input type="text" name="label" placeholder="deploy gate"/></label>
            <button type="submit" class="primary">"Create token"</button>
        </ActionForm>
        {shown}
    }
}

#[component]
fn TokenTable(tokens: Vec<TokenView>, revoke: ServerAction<RevokeToken>) -> impl IntoView {
    let rows = tokens
        .into_iter()
        .map(|token| {
            let id = token.id.clone();
            let action = token.revoked_at.is_none().then(move || {
                view! {
                    <ActionForm action=revoke>
                        <input type="hidden" name="id" value=id/>
                        <button type="submit" class="danger">"Revoke"</button>
                    </ActionForm>
                }
            });
            let state = match &token.revoked_at {
                Some(_) => "revoked",
                None => "active",
            };
            view! {
                <tr data-token=token.id.clone()>
                    <td><code>{token.id.clone()}</code></td>
                    <td>{token.user.clone()}</td>
                    <td>{token.label.clone()}</td>
                    <td><span class=format!("status {state}")>{state}</span></td>
                    <td><time>{token.created_at.clone()}</time> " by " {token.created_by.clone()}</td>
                    <td>{action}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="grid" id="tokens">
            <thead><tr><th>"Id"</th><th>"Account"</th><th>"Label"</th><th>"State"</th><th>"Created"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}
