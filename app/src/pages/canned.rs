//! Canned replies: text an agent inserts by typing `/shortcut` in a conversation. Each belongs
//! to one of the agent's sites, shared by its agents or the agent's own. Listed, added and
//! deleted through server functions that check the site membership on every call.

use crate::api::canned::{CannedItem, canned_replies};
use crate::auth::{SiteChoice, my_sites};
use crate::error::ConsoleError;
use crate::i18n::{Key, Lang, t};
use leptos::prelude::*;
use protocol::{CannedReplyId, SiteId};

/// Longest shortcut, in characters (`a-z 0-9 _ -`).
pub const MAX_SHORTCUT: usize = 32;
/// Longest reply, in characters.
pub const MAX_BODY: usize = 4000;

/// Whether `shortcut` is 1–32 of `a-z 0-9 _ -` (what an agent types after `/`).
pub fn valid_shortcut(shortcut: &str) -> bool {
    (1..=MAX_SHORTCUT).contains(&shortcut.len())
        && shortcut
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'))
}

/// Adds a canned reply on one of the agent's sites; `personal` keeps it to the agent.
#[server(endpoint = "canned_replies/add")]
pub async fn add_canned_reply(
    site_id: SiteId,
    shortcut: String,
    body: String,
    #[server(default)] personal: bool,
) -> Result<(), ConsoleError> {
    use crate::context;
    let agent = context::require_agent().await?;
    let store = context::store()?;
    let shortcut = shortcut.trim().trim_start_matches('/').to_lowercase();
    let body = body.trim().to_string();
    if !valid_shortcut(&shortcut) || body.is_empty() || body.chars().count() > MAX_BODY {
        return Err(ConsoleError::Invalid);
    }
    let sites = store.agent_sites(agent.id).await?;
    if !sites.contains(&site_id) {
        return Err(ConsoleError::NotFound);
    }
    store
        .create_canned_reply(store::NewCannedReply {
            site_id,
            agent_id: personal.then_some(agent.id),
            shortcut,
            body,
            created_at: crate::clock::now(),
        })
        .await?;
    Ok(())
}

/// Deletes a canned reply: the agent's own, or a shared one of one of their sites.
#[server(endpoint = "canned_replies/delete")]
pub async fn delete_canned_reply(id: CannedReplyId) -> Result<(), ConsoleError> {
    use crate::context;
    let agent = context::require_agent().await?;
    let store = context::store()?;
    let sites = store.agent_sites(agent.id).await?;
    let reply = store
        .canned_reply(id)
        .await?
        .filter(|r| sites.contains(&r.site_id) && r.agent_id.is_none_or(|a| a == agent.id))
        .ok_or(ConsoleError::NotFound)?;
    store
        .delete_canned_reply(reply.id)
        .await
        .map_err(ConsoleError::from)
}

/// `/canned`: the list, with a form to add one and a button to delete each.
#[component]
pub fn CannedPage() -> impl IntoView {
    let add = ServerAction::<AddCannedReply>::new();
    let delete = ServerAction::<DeleteCannedReply>::new();
    let sites = Resource::new(|| (), |_| my_sites());
    let shell = crate::shell::use_shell();
    let replies = Resource::new(
        move || (add.version().get(), delete.version().get()),
        |_| canned_replies(),
    );
    view! {
        <crate::ui::Page>
            <Suspense fallback=|| view! { <p>"…"</p> }>
                {move || {
                    let lang = shell.lang();
                    Suspend::new(async move {
                        let lang = lang.await;
                        let failed = move || {
                            add.value()
                                .get()
                                .and_then(|result| result.err())
                                .map(|error| view! { <p role="alert">{error.message(lang)}</p> })
                        };
                        match (sites.await, replies.await) {
                            (Ok(sites), Ok(items)) => {
                                view! {
                                    <CannedList items delete lang />
                                    <AddForm sites add lang />
                                    {failed}
                                }
                                    .into_any()
                            }
                            (first, second) => {
                                crate::ui::refusal(first.err().into_iter().chain(second.err()), lang)
                            }
                        }
                    })
                }}
            </Suspense>
        </crate::ui::Page>
    }
}

/// The replies, each with its delete button.
#[component]
fn CannedList(
    items: Vec<CannedItem>,
    delete: ServerAction<DeleteCannedReply>,
    lang: Lang,
) -> impl IntoView {
    view! {
        <h1>{t(lang, Key::CannedTitle)}</h1>
        <ul class="canned">
            {items
                .into_iter()
                .map(|item| {
                    let label = format!("/{}", item.shortcut);
                    view! {
                        <li data-shortcut=item.shortcut>
                            <code>{label}</code>
                            <span class="site">{item.site}</span>
                            {item.personal.then(|| view! { <span class="personal">{t(lang, Key::Personal)}</span> })}
                            <p>{item.body}</p>
                            <ActionForm action=delete>
                                <input type="hidden" name="id" value=item.id.0 />
                                <crate::ui::ConfirmButton label=t(lang, Key::Delete) lang />
                            </ActionForm>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
}

/// The form that adds a reply to one of the agent's sites.
#[component]
fn AddForm(sites: Vec<SiteChoice>, add: ServerAction<AddCannedReply>, lang: Lang) -> impl IntoView {
    view! {
        <ActionForm action=add attr:class="add-canned">
            <h2>{t(lang, Key::AddReply)}</h2>
            <label>
                {t(lang, Key::Site)}
                <select name="site_id">
                    {sites
                        .into_iter()
                        .map(|site| view! { <option value=site.id.0>{site.name}</option> })
                        .collect_view()}
                </select>
            </label>
            <label>
                {t(lang, Key::Shortcut)} <input name="shortcut" required maxlength=MAX_SHORTCUT placeholder="refund" />
            </label>
            <label>{t(lang, Key::Text)} <textarea name="body" required maxlength=MAX_BODY></textarea></label>
            <label>
                <input type="checkbox" name="personal" value="true" />
                " " {t(lang, Key::OnlyForMe)}
            </label>
            <button type="submit">{t(lang, Key::Add)}</button>
        </ActionForm>
    }
}
