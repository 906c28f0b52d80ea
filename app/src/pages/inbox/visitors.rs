//! The visitors on the agent's sites right now: where they are, where they came from, how long
//! they have been there and what they browse with. Fed by presence and page views, live.

use crate::i18n::{Key, Lang, t};
use crate::live::{Live, OnlineVisitor};
use leptos::prelude::*;
use protocol::{SiteId, VisitorId};
use std::collections::BTreeMap;

/// The live list; newest arrivals first. Each row is kept while its visitor stays (keyed by
/// id), so a half-typed invitation survives the clock and other visitors' updates; only the
/// row's details are drawn again.
#[component]
pub fn VisitorList(
    live: Live,
    lang: Lang,
    sites: StoredValue<BTreeMap<SiteId, String>>,
) -> impl IntoView {
    let ids = Memo::new(move |_| {
        live.desk
            .with(|d| d.visitors.keys().rev().copied().collect::<Vec<VisitorId>>())
    });
    view! {
        <h2>{t(lang, Key::VisitorsOnline)}</h2>
        <ul class="visitors">
            {move || ids.with(Vec::is_empty).then(|| view! { <li class="empty">{t(lang, Key::NoVisitors)}</li> })}
            <For each=move || ids.get() key=|id| *id let:id>
                <VisitorRow live id lang sites />
            </For>
        </ul>
    }
}

/// One visitor's row: details that follow the desk, and the invitation form, kept.
#[component]
fn VisitorRow(
    live: Live,
    id: VisitorId,
    lang: Lang,
    sites: StoredValue<BTreeMap<SiteId, String>>,
) -> impl IntoView {
    let chatting = Memo::new(move |_| {
        live.desk.with(|d| {
            d.threads
                .values()
                .any(|t| t.visitor_id == id && t.status != protocol::ConversationStatus::Resolved)
        })
    });
    view! {
        <li class="visitor" data-visitor=id.0 data-chatting=move || chatting.get().then_some("true")>
            {move || {
                let now = live.now.get();
                live.desk
                    .with(|d| d.visitors.get(&id).cloned())
                    .map(|visitor| visitor_row(id, visitor, now, lang, sites, chatting.get_untracked()))
            }}
            {move || (!chatting.get()).then(|| view! { <InviteForm live visitor=id lang /> })}
        </li>
    }
}

/// What the row says of `visitor` at `now`.
fn visitor_row(
    id: VisitorId,
    visitor: OnlineVisitor,
    now: f64,
    lang: Lang,
    sites: StoredValue<BTreeMap<SiteId, String>>,
    chatting: bool,
) -> impl IntoView + use<> {
    let site = sites
        .with_value(|s| s.get(&visitor.site_id).cloned())
        .unwrap_or_default();
    let (url, title) = visitor
        .pages
        .last()
        .map(|(url, title, _)| (url.clone(), title.clone()))
        .unwrap_or_default();
    let since = visitor.pages.first().map(|(_, _, at)| *at);
    let on_site = since
        .filter(|_| now > 0.0)
        .map(|at| duration(now - at as f64));
    // What the server recognised ("Chrome 140 · Windows 10"), else the raw user agent.
    let browser = visitor.details.as_ref().and_then(|d| {
        let named: Vec<&str> = [&d.browser, &d.os, &d.device]
            .into_iter()
            .filter_map(|part| part.as_deref())
            .collect();
        if named.is_empty() {
            d.user_agent.clone()
        } else {
            Some(named.join(" · "))
        }
    });
    let place = visitor.details.as_ref().and_then(|d| {
        let parts: Vec<&str> = [&d.city, &d.country]
            .into_iter()
            .filter_map(|part| part.as_deref())
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    });
    let returning = visitor.details.as_ref().is_some_and(|d| d.returning);
    view! {
            <strong>"#" {id.0}</strong>
            <span class="site">{site}</span>
            <span class="visit">
                {t(lang, if returning { Key::Returning } else { Key::NewVisitor })}
            </span>
            {chatting.then(|| view! { <span class="chatting">{t(lang, Key::Chatting)}</span> })}
            // A visitor who has not reported a page yet (the widget says it on load) has none.
            {(!url.is_empty()).then(|| view! {
                <p class="page">
                    <span class="title">{title.unwrap_or_else(|| url.clone())}</span>
                    <small class="url">{url}</small>
                </p>
            })}
            <dl>
                <dt>{t(lang, Key::Pages)}</dt>
                <dd class="pages">{visitor.pages.len()}</dd>
                {visitor.referrer.map(|referrer| view! { <dt>{t(lang, Key::From)}</dt><dd class="referrer">{referrer}</dd> })}
                {on_site.map(|time| view! { <dt>{t(lang, Key::OnSite)}</dt><dd class="on-site">{time}</dd> })}
                {place.map(|place| view! { <dt>{t(lang, Key::Location)}</dt><dd class="place">{place}</dd> })}
                {browser.map(|ua| view! { <dd class="browser">{ua}</dd> })}
            </dl>
            {(!visitor.draft.is_empty()).then(|| view! {
                <p class="draft" role="status">
                    {t(lang, Key::IsWriting)} ": " <q>{crate::visible::visible(&visitor.draft).into_owned()}</q>
                </p>
            })}
    }
}

/// `ms` as `1h 02m`, `3m 05s` or `12s`.
fn duration(ms: f64) -> String {
    let seconds = (ms.max(0.0) / 1000.0) as u64;
    match (seconds / 3600, seconds / 60 % 60, seconds % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(duration(12_400.0), "12s");
        assert_eq!(duration(185_000.0), "3m 05s");
        assert_eq!(duration(3_720_000.0), "1h 02m");
        assert_eq!(duration(-5.0), "0s");
    }
}

/// "Invite to chat": the agent's first words, sent to the visitor's widget, which opens.
#[component]
fn InviteForm(live: Live, visitor: VisitorId, lang: Lang) -> impl IntoView {
    let words = RwSignal::new(String::new());
    view! {
        <form
            class="invite"
            on:submit=move |event| {
                event.prevent_default();
                let body = words.get_untracked();
                if !body.trim().is_empty() {
                    live.invite(visitor, body);
                    words.set(String::new());
                }
            }
        >
            <input
                type="text"
                maxlength="2000"
                aria-label=t(lang, Key::InviteText)
                placeholder=t(lang, Key::InviteText)
                prop:value=move || words.get()
                on:input=move |event| words.set(event_target_value(&event))
            />
            <button type="submit" class="secondary">{t(lang, Key::Invite)}</button>
        </form>
    }
}
