//! The frame around every signed-in console page: the one live link of the tab, the desk it
//! keeps current, and the header (navigation, connection, the agent's status, notifications,
//! language, sign-out). Pages render inside it through the router's `<Outlet/>`, so moving
//! between Inbox, History, Reports or an admin page keeps the connection — and the agent
//! online — instead of opening a new one per page.
//!
//! Pages reach it with [`use_console`]: the language resource they render in (it changes when
//! the agent switches language, and each page draws itself again), the live handle and the
//! desk's reference data.

use crate::auth::{AgentInfo, ConsoleError, Logout};
use crate::i18n::{Key, Lang, LanguageSwitch, SetLanguage, console_lang, t};
use crate::live::{Connection, Desk, Live};
use crate::pages::inbox::{Colleague, InboxData, TeamChoice, inbox};
use leptos::prelude::*;
use leptos_meta::{Html, Title};
use leptos_router::components::Outlet;
use leptos_router::hooks::use_location;
use protocol::{AgentFrame, AgentId, AgentStatus, ConversationId, SetStatus, SiteId};
use std::collections::BTreeMap;

/// What every console page shares; one per tab, made when the shell first has its data.
#[derive(Clone, Copy)]
pub struct Console {
    /// The console's language: pages await it, so switching draws them again in the new one.
    pub lang: Resource<Lang>,
    /// The tab's live link and desk; it outlives page changes.
    pub live: Live,
    /// The signed-in agent.
    pub agent: StoredValue<AgentInfo>,
    /// The agent's sites by id, for labels.
    pub sites: StoredValue<BTreeMap<SiteId, String>>,
    /// The agents of those sites, for names and transfers.
    pub colleagues: StoredValue<Vec<Colleague>>,
    /// The teams of those sites, for transfers.
    pub teams: StoredValue<Vec<TeamChoice>>,
    /// Sites whose conversations are translated.
    pub translating_sites: StoredValue<Vec<SiteId>>,
    /// The conversation open in the inbox: kept while the agent looks at another page.
    pub selected: RwSignal<Option<ConversationId>>,
}

impl Console {
    /// The signed-in agent's id.
    pub fn me(&self) -> AgentId {
        AgentId(self.agent.with_value(|a| a.id))
    }
}

/// The shell's [`Console`]; every route under the shell has one.
pub fn use_console() -> Console {
    expect_context::<Console>()
}

/// The language a page renders in: the shell's when under it, else decided afresh (the
/// sign-in and not-found pages).
pub fn page_lang() -> Resource<Lang> {
    match use_context::<Console>() {
        Some(console) => console.lang,
        None => Resource::new(
            || (),
            |_| async { console_lang().await.unwrap_or_default() },
        ),
    }
}

/// The signed-in console: loads the desk once, opens the live link once, and shows the header
/// above whichever page is current.
#[component]
pub fn ConsoleShell() -> impl IntoView {
    let data = Resource::new(|| (), |_| inbox());
    let switch = ServerAction::<SetLanguage>::new();
    let lang = Resource::new(
        move || switch.version().get(),
        |_| async { console_lang().await.unwrap_or_default() },
    );
    let logout = ServerAction::<Logout>::new();
    view! {
        <Suspense fallback=|| view! { <p class="loading">"…"</p> }>
            // Reads only `data`, which never changes: the link below is opened once per tab.
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => untrack(|| open(data, lang, switch, logout)).into_any(),
                    Err(error) => {
                        view! { <Refused error lang /> }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// Starts the live link with the desk's data, provides the [`Console`], and draws the frame.
fn open(
    data: InboxData,
    lang: Resource<Lang>,
    switch: ServerAction<SetLanguage>,
    logout: ServerAction<Logout>,
) -> impl IntoView {
    let live = Live::start(data.threads, Some(data.events_after), data.mode);
    let console = Console {
        lang,
        live,
        agent: StoredValue::new(data.agent),
        sites: StoredValue::new(data.sites),
        colleagues: StoredValue::new(data.colleagues),
        teams: StoredValue::new(data.teams),
        translating_sites: StoredValue::new(data.translating_sites),
        selected: RwSignal::new(None),
    };
    provide_context(console);
    let title = move || match live.desk.with(Desk::unread) {
        0 => "Kefu".to_string(),
        n => format!("({n}) Kefu"),
    };
    let help = RwSignal::new(false);
    shortcuts(help);
    keep_offline_copy();
    view! {
        <Title text=title />
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let lang = lang.await;
                view! {
                    <Html {..} lang=lang.tag() />
                    <Header console lang switch logout />
                    {move || help.get().then(|| view! { <ShortcutHelp lang help /> })}
                }
            })}
        </Suspense>
        <Outlet />
    }
}

/// The shell's answer when the desk could not be loaded: sign-in when the session is gone.
#[component]
fn Refused(error: ConsoleError, lang: Resource<Lang>) -> impl IntoView {
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                crate::pages::refusal([error], lang.await)
            })}
        </Suspense>
    }
}

/// The console's header: one navigation for every page, with the current one marked.
#[component]
fn Header(
    console: Console,
    lang: Lang,
    switch: ServerAction<SetLanguage>,
    logout: ServerAction<Logout>,
) -> impl IntoView {
    let live = console.live;
    let (name, email, is_admin) = console
        .agent
        .with_value(|a| (a.display_name.clone(), a.email.clone(), a.is_admin));
    let path = use_location().pathname;
    let link = move |href: &'static str, key: Key| {
        // `/admin/sites` marks every admin page: they share one entry.
        let section = href.trim_end_matches("/sites");
        let current = move || {
            let path = path.get();
            (path == href || (section != href && path.starts_with(section))).then_some("page")
        };
        view! {
            <a href=href aria-current=current>
                {t(lang, key)}
                {(href == "/inbox").then(|| view! { <UnreadBadge live /> })}
            </a>
        }
    };
    view! {
        <header class="topbar">
            <a class="brand" href="/inbox">"Kefu"</a>
            <nav class="main-nav" aria-label=t(lang, Key::Navigation)>
                {link("/inbox", Key::Inbox)}
                {link("/history", Key::HistoryTitle)}
                {link("/leave-messages", Key::LeaveMessages)}
                {link("/reports", Key::Reports)}
                {link("/canned", Key::CannedTitle)}
                {is_admin.then(|| link("/admin/sites", Key::Settings))}
            </nav>
            <div class="topbar-end">
                <ConnectionIndicator live lang />
                <StatusPicker live me=console.me() lang />
                <button type="button" class="secondary" on:click=move |_| live.ask_notifications()>
                    {t(lang, Key::Notifications)}
                </button>
                <LanguageSwitch lang action=switch />
                <span class="who" title=email>{name}</span>
                <ActionForm action=logout>
                    <button type="submit" class="secondary">
                        {t(lang, Key::SignOut)}
                    </button>
                </ActionForm>
            </div>
        </header>
    }
}

/// How many messages wait unread, beside the Inbox link on every page.
#[component]
fn UnreadBadge(live: Live) -> impl IntoView {
    move || match live.desk.with(Desk::unread) {
        0 => None,
        n => Some(view! { <span class="unread" data-unread=n>{n}</span> }),
    }
}

/// The agent's own availability: online agents are given chats, away ones keep theirs.
#[component]
fn StatusPicker(live: Live, me: AgentId, lang: Lang) -> impl IntoView {
    let current = move || {
        live.desk
            .with(|d| d.agents.get(&me).copied())
            .unwrap_or(AgentStatus::Offline)
    };
    let options = [
        (AgentStatus::Online, Key::Online),
        (AgentStatus::Away, Key::Away),
        (AgentStatus::Offline, Key::Offline),
    ];
    view! {
        <select
            class="status"
            aria-label=t(lang, Key::MyStatus)
            data-status=move || current().as_str()
            on:change=move |event| {
                if let Some(status) = AgentStatus::parse(&event_target_value(&event)) {
                    live.send(AgentFrame::SetStatus(SetStatus { status }));
                }
            }
        >
            {options
                .into_iter()
                .map(|(status, key)| {
                    view! {
                        <option value=status.as_str() selected=move || current() == status>
                            {t(lang, key)}
                        </option>
                    }
                })
                .collect_view()}
        </select>
    }
}

/// Says how the console is connected; it recovers by itself, so it never asks for a refresh.
#[component]
fn ConnectionIndicator(live: Live, lang: Lang) -> impl IntoView {
    let state = move || live.connection.get();
    view! {
        <span class="connection" role="status" data-connection=move || state().as_str()>
            {move || match state() {
                Connection::WebSocket => t(lang, Key::Connected),
                Connection::Http => t(lang, Key::ConnectedHttp),
                Connection::Connecting => t(lang, Key::Reconnecting),
            }}
        </span>
    }
}

/// Installs the service worker (`public/sw.js`) that serves the console's pages from their
/// last copy while the network is down.
fn keep_offline_copy() {
    #[cfg(feature = "hydrate")]
    {
        let container = window().navigator().service_worker();
        // A browser without service workers (or a private window refusing one) just goes
        // without the offline copy.
        let _ = container.register("/sw.js");
    }
}

/// The keys the console answers anywhere (outside text fields): `?` lists them.
const SHORTCUTS: [(&str, Key); 6] = [
    ("j", Key::NextConversation),
    ("k", Key::PreviousConversation),
    ("r", Key::FocusReply),
    ("/", Key::SearchCanned),
    ("e", Key::ResolveShortcut),
    ("?", Key::ShowShortcuts),
];

/// Listens for the keyboard shortcuts while the shell is up.
fn shortcuts(help: RwSignal<bool>) {
    #[cfg(feature = "hydrate")]
    {
        let handle = window_event_listener(leptos::ev::keydown, move |event| {
            if event.ctrl_key() || event.meta_key() || event.alt_key() {
                return;
            }
            let key = event.key();
            if key == "Escape" {
                help.set(false);
                return;
            }
            if typing_somewhere() {
                return;
            }
            let handled = match key.as_str() {
                "?" => {
                    help.update(|shown| *shown = !*shown);
                    true
                }
                "j" => step_conversation(1),
                "k" => step_conversation(-1),
                "r" => focus_reply(None),
                "/" => focus_reply(Some("/")),
                "e" => click("[data-action=resolve]"),
                _ => false,
            };
            if handled {
                event.prevent_default();
            }
        });
        on_cleanup(move || handle.remove());
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = help;
}

/// Whether the agent is writing in a field (where keys are text, not shortcuts).
#[cfg(feature = "hydrate")]
fn typing_somewhere() -> bool {
    document().active_element().is_some_and(|element| {
        matches!(element.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
            || element.has_attribute("contenteditable")
    })
}

/// Opens the conversation `by` rows below (or above) the open one in the inbox list.
#[cfg(feature = "hydrate")]
fn step_conversation(by: i32) -> bool {
    use wasm_bindgen::JsCast;
    let Ok(rows) = document().query_selector_all("li.conversation") else {
        return false;
    };
    let rows: Vec<web_sys::HtmlElement> = (0..rows.length())
        .filter_map(|i| rows.get(i)?.dyn_into().ok())
        .collect();
    if rows.is_empty() {
        return false;
    }
    let current = rows
        .iter()
        .position(|row| row.get_attribute("aria-current").as_deref() == Some("true"));
    let next = match current {
        Some(at) => (at as i32 + by).clamp(0, rows.len() as i32 - 1) as usize,
        None => 0,
    };
    rows[next].click();
    rows[next].scroll_into_view_with_bool(false);
    true
}

/// Puts the cursor in the reply box, starting it with `text` (the canned-reply search).
#[cfg(feature = "hydrate")]
fn focus_reply(text: Option<&str>) -> bool {
    use wasm_bindgen::JsCast;
    let Some(reply) = document()
        .query_selector("textarea[name=reply]")
        .ok()
        .flatten()
        .and_then(|element| element.dyn_into::<web_sys::HtmlTextAreaElement>().ok())
    else {
        return false;
    };
    if let Some(text) = text {
        reply.set_value(text);
        // The composer follows its draft through input events.
        if let Ok(event) = web_sys::Event::new("input") {
            let _ = reply.dispatch_event(&event);
        }
    }
    reply.focus().is_ok()
}

/// Clicks the first element matching `selector`, if there is one.
#[cfg(feature = "hydrate")]
fn click(selector: &str) -> bool {
    use wasm_bindgen::JsCast;
    document()
        .query_selector(selector)
        .ok()
        .flatten()
        .and_then(|element| element.dyn_into::<web_sys::HtmlElement>().ok())
        .map(|element| element.click())
        .is_some()
}

/// The list of shortcuts, opened with `?` and closed with Escape or its button.
#[component]
fn ShortcutHelp(lang: Lang, help: RwSignal<bool>) -> impl IntoView {
    view! {
        <div class="shortcut-help" role="dialog" aria-modal="true" aria-label=t(lang, Key::ShowShortcuts)>
            <h2>{t(lang, Key::ShowShortcuts)}</h2>
            <dl>
                {SHORTCUTS
                    .into_iter()
                    .map(|(key, what)| view! { <dt><kbd>{key}</kbd></dt><dd>{t(lang, what)}</dd> })
                    .collect_view()}
                <dt><kbd>"Esc"</kbd></dt>
                <dd>{t(lang, Key::CloseShortcuts)}</dd>
            </dl>
            <button type="button" class="secondary" on:click=move |_| help.set(false)>
                {t(lang, Key::CloseShortcuts)}
            </button>
        </div>
    }
}
