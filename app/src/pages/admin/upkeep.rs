//! `/admin/upkeep`: the ban list (a visitor or an address range, on one site, until an expiry
//! or for good), webhooks with their delivery logs, and data retention (delete conversations, leave-messages and files older than a
//! number of days).

use crate::error::ConsoleError;
use crate::i18n::{Key, Lang, t};
use leptos::prelude::*;
use protocol::{BanId, SiteId};
use serde::{Deserialize, Serialize};

/// A ban as the page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanRow {
    /// Its id, to lift it.
    pub id: BanId,
    /// The site's name.
    pub site: String,
    /// Who or what is banned: `visitor #12`, `203.0.113.0/24`, or both.
    pub target: String,
    /// Why.
    pub reason: String,
    /// Until when (UTC), or empty for good.
    pub until: String,
}

/// The bans still in force on every site.
#[server(endpoint = "admin/bans")]
pub async fn admin_bans() -> Result<Vec<BanRow>, ConsoleError> {
    use crate::clock::minute;
    use crate::context;
    context::require_admin().await?;
    let store = context::store()?;
    let mut rows = Vec::new();
    for site in store.all_sites().await? {
        for ban in store.active_bans(site.id, crate::clock::now()).await? {
            let target = [
                ban.visitor_id.map(|v| format!("visitor #{v}")),
                ban.ip_cidr.clone(),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" · ");
            rows.push(BanRow {
                id: ban.id,
                site: site.name.clone(),
                target,
                reason: ban.reason,
                until: ban.expires_at.map(minute).unwrap_or_default(),
            });
        }
    }
    Ok(rows)
}

/// Bans an address (`203.0.113.7`, `203.0.113.0/24`, `2001:db8::/32`) and/or a visitor (by
/// number) on a site, for `days` days (0: for good).
#[server(endpoint = "admin/bans/add")]
pub async fn add_ban(
    site: SiteId,
    #[server(default)] address: String,
    #[server(default)] visitor: String,
    reason: String,
    days: i64,
) -> Result<(), ConsoleError> {
    use crate::context;
    context::require_admin().await?;
    let address = address.trim();
    let address = (!address.is_empty()).then(|| address.to_owned());
    let visitor = match visitor.trim() {
        "" => None,
        text => Some(
            text.parse::<protocol::VisitorId>()
                .map_err(|_| ConsoleError::Invalid)?,
        ),
    };
    let reason = crate::api::bans::ban_reason(&reason, days)?;
    let address_ok = address.as_deref().is_none_or(|a| {
        a.parse::<std::net::IpAddr>().is_ok()
            || a.split_once('/').is_some_and(|(ip, bits)| {
                ip.parse::<std::net::IpAddr>().is_ok() && bits.parse::<u8>().is_ok_and(|b| b <= 128)
            })
    });
    if (address.is_none() && visitor.is_none()) || !address_ok {
        return Err(ConsoleError::Invalid);
    }
    let store = context::store()?;
    let now = crate::clock::now();
    let known_visitor = match visitor {
        Some(id) => store.visitor(id).await?.is_some_and(|v| v.site_id == site),
        None => true,
    };
    if !known_visitor {
        return Err(ConsoleError::NotFound);
    }
    match store
        .create_ban(store::NewBan {
            site_id: site,
            visitor_id: visitor,
            ip_cidr: address,
            reason,
            expires_at: (days > 0).then(|| now + days * crate::clock::DAY_MS),
            created_at: now,
        })
        .await
    {
        Ok(_) => {
            // Nodes keep a copy of each site's bans for hellos: this one applies now.
            context::hub()?.copies_stale();
            Ok(())
        }
        Err(store::Error::NotFound) => Err(ConsoleError::NotFound),
        Err(error) => Err(crate::error::internal(error)),
    }
}

/// Lifts a ban.
#[server(endpoint = "admin/bans/lift")]
pub async fn lift_ban(id: BanId) -> Result<(), ConsoleError> {
    use crate::context;
    context::require_admin().await?;
    context::store()?.delete_ban(id).await?;
    context::hub()?.copies_stale();
    Ok(())
}

/// Deletes conversations not updated for `days` days, and leave-messages and files older than
/// that; returns how many conversations went.
#[server(endpoint = "admin/retention")]
pub async fn delete_older_than(days: i64) -> Result<u64, ConsoleError> {
    use crate::context;
    let admin = context::require_admin().await?;
    if !(1..=36_500).contains(&days) {
        return Err(ConsoleError::Invalid);
    }
    let deleted = context::store()?
        .delete_history_before(crate::clock::now() - days * crate::clock::DAY_MS)
        .await?;
    tracing::info!(
        admin = %admin.id,
        days,
        deleted,
        "history deleted by retention"
    );
    Ok(deleted)
}

/// `/admin/upkeep`.
#[component]
pub fn AdminUpkeepPage() -> impl IntoView {
    let add = ServerAction::<AddBan>::new();
    let lift = ServerAction::<LiftBan>::new();
    let retention = ServerAction::<DeleteOlderThan>::new();
    let add_hook = ServerAction::<AddWebhook>::new();
    let delete_hook = ServerAction::<DeleteWebhook>::new();
    let hooks = Resource::new(
        move || (add_hook.version().get(), delete_hook.version().get()),
        |_| admin_webhooks(),
    );
    let shell = crate::shell::use_shell();
    let bans = Resource::new(
        move || (add.version().get(), lift.version().get()),
        |_| admin_bans(),
    );
    let sites = Resource::new(|| (), |_| crate::auth::every_site());
    view! {
        <crate::ui::Page class="admin">
            <Suspense fallback=|| view! { <p>"…"</p> }>
                {move || {
                    let lang = shell.lang();
                    Suspend::new(async move {
                        let lang = lang.await;
                        match (bans.await, sites.await, hooks.await) {
                            (Ok(bans), Ok(sites), Ok(hooks)) => view! {
                                <crate::ui::AdminNav lang />
                                <h1>{t(lang, Key::AdminUpkeep)}</h1>
                                <Bans bans sites add lift lang />
                                <Webhooks hooks add=add_hook delete=delete_hook lang />
                                <section class="retention">
                                    <h2>{t(lang, Key::Retention)}</h2>
                                    <ActionForm action=retention>
                                        <label>{t(lang, Key::OlderThanDays)} <input type="number" name="days" min="1" required /></label>
                                        <crate::ui::ConfirmButton label=t(lang, Key::Delete) lang />
                                    </ActionForm>
                                    {move || retention.value().get().map(|result| match result {
                                        Ok(count) => view! { <p role="status">{format!("{} {count}", t(lang, Key::ConversationsDeleted))}</p> }.into_any(),
                                        Err(error) => view! { <p role="alert">{error.message(lang)}</p> }.into_any(),
                                    })}
                                </section>
                            }
                            .into_any(),
                            (first, second, third) => crate::ui::refusal(
                                first.err().into_iter().chain(second.err()).chain(third.err()),
                                lang,
                            ),
                        }
                    })
                }}
            </Suspense>
        </crate::ui::Page>
    }
}

/// The bans in force, each with its lift button, and the form that adds one.
#[component]
fn Bans(
    bans: Vec<BanRow>,
    sites: Vec<crate::auth::SiteChoice>,
    add: ServerAction<AddBan>,
    lift: ServerAction<LiftBan>,
    lang: Lang,
) -> impl IntoView {
    view! {
        <section class="bans">
            <h2>{t(lang, Key::Bans)}</h2>
            <ul>
                {bans
                    .into_iter()
                    .map(|ban| view! {
                        <li data-ban=ban.id.0>
                            <b>{ban.target}</b> " · " {ban.site} " · " {ban.reason} " " <time>{ban.until}</time>
                            <ActionForm action=lift>
                                <input type="hidden" name="id" value=ban.id.0 />
                                <button type="submit" class="secondary">{t(lang, Key::Lift)}</button>
                            </ActionForm>
                        </li>
                    })
                    .collect_view()}
            </ul>
            <ActionForm action=add attr:class="add-ban">
                <label>
                    {t(lang, Key::Site)}
                    <select name="site">
                        {sites.into_iter().map(|s| view! { <option value=s.id.0>{s.name}</option> }).collect_view()}
                    </select>
                </label>
                <label>{t(lang, Key::Address)} <input type="text" name="address" placeholder="203.0.113.0/24" /></label>
                <label>{t(lang, Key::VisitorNumber)} <input type="text" name="visitor" inputmode="numeric" /></label>
                <label>{t(lang, Key::Reason)} <input type="text" name="reason" required maxlength="500" /></label>
                <label>{t(lang, Key::ForDays)} <input type="number" name="days" min="0" value="30" /></label>
                <button type="submit">{t(lang, Key::Ban)}</button>
            </ActionForm>
            {move || add.value().get().and_then(Result::err).map(|error| view! { <p role="alert">{error.message(lang)}</p> })}
        </section>
    }
}

/// A webhook with its recent deliveries, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRow {
    /// Its id.
    pub id: i64,
    /// Where deliveries go.
    pub url: String,
    /// The events it gets.
    pub events: Vec<String>,
    /// The newest deliveries: `(event, state, attempts, last status or error, when)`.
    pub deliveries: Vec<(String, String, i32, String, String)>,
}

/// Every webhook with its last twenty deliveries.
#[server(endpoint = "admin/webhooks")]
pub async fn admin_webhooks() -> Result<Vec<WebhookRow>, ConsoleError> {
    use crate::clock::minute;
    use crate::context;
    context::require_admin().await?;
    let store = context::store()?;
    let mut rows = Vec::new();
    for hook in store.webhooks().await? {
        let deliveries = store
            .webhook_deliveries(hook.id, 20)
            .await?
            .into_iter()
            .map(|d| {
                let outcome = match (d.last_status, d.last_error) {
                    (_, Some(error)) => error,
                    (Some(status), None) => format!("HTTP {status}"),
                    (None, None) => String::new(),
                };
                (
                    d.event,
                    d.state.as_str().to_owned(),
                    d.attempts,
                    outcome,
                    minute(d.created_at),
                )
            })
            .collect();
        rows.push(WebhookRow {
            id: hook.id,
            url: hook.url,
            events: hook.events.split_whitespace().map(str::to_owned).collect(),
            deliveries,
        });
    }
    Ok(rows)
}

/// The events a webhook can get, as the page offers them.
pub const WEBHOOK_EVENTS: [&str; 3] = [
    "message.created",
    "conversation.resolved",
    "leave_message.created",
];

/// Adds a webhook to an `http(s)://` URL for the ticked events; returns its signing secret,
/// shown once.
#[server(endpoint = "admin/webhooks/add")]
pub async fn add_webhook(
    url: String,
    #[server(default)] message_created: bool,
    #[server(default)] conversation_resolved: bool,
    #[server(default)] leave_message_created: bool,
) -> Result<String, ConsoleError> {
    use crate::context;
    context::require_admin().await?;
    let url = url.trim().to_owned();
    let valid = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= 2000
        && !url.contains(char::is_whitespace);
    let events: Vec<&str> = WEBHOOK_EVENTS
        .into_iter()
        .zip([
            message_created,
            conversation_resolved,
            leave_message_created,
        ])
        .filter_map(|(event, on)| on.then_some(event))
        .collect();
    if !valid || events.is_empty() {
        return Err(ConsoleError::Invalid);
    }
    let secret = crate::session::new_token();
    context::store()?
        .create_webhook(&url, &secret, &events, crate::clock::now())
        .await?;
    context::hub()?.copies_stale();
    Ok(secret)
}

/// Removes a webhook and its delivery log.
#[server(endpoint = "admin/webhooks/delete")]
pub async fn delete_webhook(id: i64) -> Result<(), ConsoleError> {
    use crate::context;
    context::require_admin().await?;
    context::store()?.delete_webhook(id).await?;
    context::hub()?.copies_stale();
    Ok(())
}

/// The webhooks, their delivery logs, and the form that adds one.
#[component]
fn Webhooks(
    hooks: Vec<WebhookRow>,
    add: ServerAction<AddWebhook>,
    delete: ServerAction<DeleteWebhook>,
    lang: Lang,
) -> impl IntoView {
    view! {
        <section class="webhooks">
            <h2>{t(lang, Key::Webhooks)}</h2>
            {hooks
                .into_iter()
                .map(|hook| view! {
                    <article class="webhook" data-webhook=hook.id>
                        <code>{hook.url}</code> " " <small>{hook.events.join(", ")}</small>
                        <ActionForm action=delete>
                            <input type="hidden" name="id" value=hook.id />
                            <crate::ui::ConfirmButton label=t(lang, Key::Delete) lang />
                        </ActionForm>
                        <table class="deliveries">
                            <tbody>
                                {hook
                                    .deliveries
                                    .into_iter()
                                    .map(|(event, state, attempts, outcome, when)| {
                                        let shown = state.clone();
                                        view! {
                                            <tr data-state=state>
                                                <td><time>{when}</time></td>
                                                <td>{event}</td>
                                                <td>{shown}</td>
                                                <td>{attempts}</td>
                                                <td>{outcome}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()}
                            </tbody>
                        </table>
                    </article>
                })
                .collect_view()}
            <ActionForm action=add attr:class="add-webhook">
                <label>"URL" <input type="url" name="url" required placeholder="https://crm.example/kefu" /></label>
                {WEBHOOK_EVENTS
                    .into_iter()
                    .map(|event| {
                        let name = event.replace('.', "_");
                        view! { <label><input type="checkbox" name=name value="true" checked=true /> " " {event}</label> }
                    })
                    .collect_view()}
                <button type="submit">{t(lang, Key::Add)}</button>
            </ActionForm>
            {move || add.value().get().map(|result| match result {
                Ok(secret) => view! {
                    <p class="password" role="status">{t(lang, Key::SigningSecret)} " " <code>{secret}</code></p>
                }
                .into_any(),
                Err(error) => view! { <p role="alert">{error.message(lang)}</p> }.into_any(),
            })}
        </section>
    }
}
