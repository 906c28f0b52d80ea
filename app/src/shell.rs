//! The frame around every signed-in console page: the one live link of the tab, the desk it
//! keeps current, and the header (navigation, connection, the agent's status, notifications,
//! language, sign-out). Pages render inside it through the router's `<Outlet/>`, so moving
//! between Inbox, History, Reports or an admin page keeps the connection — and the agent
//! online — instead of opening a new one per page.
//!
//! Pages reach it with [`use_shell`]: the language they render in ([`Shell::lang`]) and, for
//! the inbox, the [`Console`] (the live handle and the desk's reference data).
//!
//! The `<Outlet/>` sits beside the shell's own `<Suspense>`, not inside it: a page made inside
//! a Suspense is made again whenever the server walks that Suspense to find what it waits for,
//! and the first copy's data loads then run without their context and disagree with the
//! browser's copy. Pages instead wait on the shell's one desk resource inside their own
//! Suspense, and the console is made from it once, under the shell.

use crate::api::inbox::{Colleague, InboxData, TeamChoice, inbox};
use crate::auth::{AgentInfo, Logout};
use crate::error::ConsoleError;
use crate::i18n::{Key, Lang, t};
use crate::language::{LanguageSwitch, SetLanguage};
use crate::live::{Connection, Desk, Live};
use leptos::prelude::*;
use leptos_meta::{Html, Title};
use leptos_router::components::Outlet;
use leptos_router::hooks::use_location;
use protocol::{AgentFrame, AgentId, AgentStatus, ConversationId, SetStatus, SiteId};
use std::collections::BTreeMap;
use std::future::{Future, IntoFuture};
use std::pin::Pin;

/// What the shell gives its pages at once, before the desk has loaded.
#[derive(Clone, Copy)]
pub struct Shell {
    /// The desk, loaded once per tab; every page's wait includes this one resource.
    data: Resource<Result<InboxData, ConsoleError>>,
    /// The language the agent switched to in this tab, if they did: it wins over the loaded one.
    switched: RwSignal<Option<Lang>>,
    /// The console, made from `data` the first time the header or a page asks.
    console: StoredValue<Option<Console>>,
    /// The shell's owner: the console's signals and live link belong to it, not to a page.
    owner: StoredValue<Owner>,
    /// The conversation open in the inbox: kept while the agent looks at another page.
    pub selected: RwSignal<Option<ConversationId>>,
}

impl Shell {
    /// The language to render in. Read it before a page suspends (the page then draws again
    /// when the agent switches), and await the answer inside.
    pub fn lang(&self) -> PageLang {
        PageLang {
            data: self.data,
            switched: self.switched.get(),
        }
    }

    /// The console, once the desk has loaded; the error when it could not be.
    pub async fn console(self) -> Result<Console, ConsoleError> {
        let data = self.data.await?;
        Ok(self.console_from(data))
    }

    fn console_from(self, data: InboxData) -> Console {
        if let Some(console) = self.console.get_value() {
            return console;
        }
        let console = self.owner.with_value(|owner| {
            owner.with(|| Console {
                live: Live::start(data.threads, Some(data.events_after), data.mode),
                agent: StoredValue::new(data.agent),
                sites: StoredValue::new(data.sites),
                colleagues: StoredValue::new(data.colleagues),
                teams: StoredValue::new(data.teams),
                translating_sites: StoredValue::new(data.translating_sites),
                selected: self.selected,
            })
        });
        self.console.set_value(Some(console));
        console
    }
}

/// A page's language: the one switched to, or else the agent's, once the desk has loaded.
#[derive(Clone, Copy)]
pub struct PageLang {
    data: Resource<Result<InboxData, ConsoleError>>,
    switched: Option<Lang>,
}

impl IntoFuture for PageLang {
    type Output = Lang;
    type IntoFuture = Pin<Box<dyn Future<Output = Lang> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            match self.switched {
                Some(lang) => lang,
                None => self.data.await.map(|d| d.lang).unwrap_or_default(),
            }
        })
    }
}

/// What the inbox works with; one per tab, made when the desk first loads.
#[derive(Clone, Copy)]
pub struct Console {
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
    /// The conversation open in the inbox (the shell's, see [`Shell::selected`]).
    pub selected: RwSignal<Option<ConversationId>>,
}

impl Console {
    /// The signed-in agent's id.
    pub fn me(&self) -> AgentId {
        self.agent.with_value(|a| a.id)
    }
}

/// The shell of the page being rendered; every route under [`ConsoleShell`] has one.
pub fn use_shell() -> Shell {
    expect_context::<Shell>()
}

/// The signed-in console: loads the desk once, opens the live link once, and shows the header
/// above whichever page is current.
#[component]
pub fn ConsoleShell() -> impl IntoView {
    let shell = Shell {
        data: Resource::new(|| (), |_| inbox()),
        switched: RwSignal::new(None),
        console: StoredValue::new(None),
        owner: StoredValue::new(Owner::current().unwrap_or_default()),
        selected: RwSignal::new(None),
    };
    provide_context(shell);
    let logout = ServerAction::<Logout>::new();
    view! {
        <Suspense fallback=|| view! { <p class="loading">"…"</p> }>
            // Reads only the desk, which never changes: the link is opened once per tab.
            {move || Suspend::new(async move {
                match shell.data.await {
                    Ok(data) => {
                        let lang = data.lang;
                        let console = shell.console_from(data);
                        untrack(|| frame(shell, console, lang, logout)).into_any()
                    }
                    Err(error) => view! { <Refused error /> }.into_any(),
                }
            })}
        </Suspense>
        <Outlet />
    }
}

/// The header, the tab's title, the shortcuts and the offline copy, for a loaded console.
fn frame(
    shell: Shell,
    console: Console,
    loaded: Lang,
    logout: ServerAction<Logout>,
) -> impl IntoView {
    let live = console.live;
    // Signing out ends the link first, so the old session's refusals go nowhere.
    Effect::new(move |_| {
        if logout.pending().get() {
            live.stop();
        }
    });
    let switch = ServerAction::<SetLanguage>::new();
    Effect::new(move |_| {
        if let Some(Ok(chosen)) = switch.value().get() {
            shell.switched.set(Some(chosen));
        }
    });
    let title = move || match live.desk.with(Desk::unread) {
        0 => "Kefu".to_string(),
        n => format!("({n}) Kefu"),
    };
    let help = RwSignal::new(false);
    shortcuts(help);
    keep_offline_copy();
    view! {
        <Title text=title />
        {move || {
            let lang = shell.switched.get().unwrap_or(loaded);
            // Erased: the header's type is otherwise too deep for the compiler.
            view! {
                <Html {..} lang=lang.tag() />
                <Header console lang switch logout />
                {move || help.get().then(|| view! { <ShortcutHelp lang help /> })}
            }
            .into_any()
        }}
    }
}

/// The shell's answer when the desk could not be loaded: sign-in when the session is gone. The
/// agent's language is part of what failed to load: other errors are said in the default one.
#[component]
fn Refused(error: ConsoleError) -> impl IntoView {
    crate::ui::refusal([error], Lang::default())
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
