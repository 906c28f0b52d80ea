//! The real-time core: who may connect, the hub that fans frames out, and the session state
//! machine both transports (`crate::web::transport`) share. Nothing here knows HTTP: the
//! transports hand it frames and addresses, and it answers with frames.
//!
//! Delivery order is always persist → seq → ack → fan out; see `docs/protocol.md`.

// Refusals are error frames sent to the client as they are; they are built once per refused
// request, never on the delivery path, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod assign;
pub mod broker;
pub mod browser;
pub mod budgets;
pub mod copies;
pub mod facts;
pub mod hours;
pub mod hub;
mod linger;
pub mod nodes;
pub mod presence;
mod replay;
pub mod session;
pub mod settings;
pub mod snooze;
pub mod token;
pub mod transcript_mail;
pub mod transcripts;
pub mod translation;
pub mod uploads;

use hub::Hub;
use protocol::{
    AgentFrame, AgentId, ErrorCode, Limits, ServerFrame, SiteId, VisitorFrame, VisitorHello,
    VisitorId,
};
use session::{Identity, Inbound};
use std::net::IpAddr;
use std::sync::Arc;
use token::TokenKey;

/// Key under which the visitor-token secret is kept in the store.
const TOKEN_SECRET_KEY: &str = "visitor_token_key";

/// Everything sessions share. Cheap to clone behind an `Arc`.
pub struct Realtime {
    /// Where messages are persisted before anyone is told about them.
    pub store: Arc<dyn store::Store>,
    /// Live fan-out and counters.
    pub hub: Hub,
    /// Signs and checks visitor tokens.
    pub tokens: TokenKey,
    /// Limits announced in `welcome` and enforced by sessions and transports.
    pub limits: Limits,
    /// Most simultaneous connections from one client address (an IPv6 /64 counts as one).
    pub max_connections_per_ip: u32,
    /// Most simultaneous connections on this node, from everyone.
    pub max_connections: u32,
    /// What one address, and one site, may still make this hour.
    pub budgets: budgets::Budgets,
    /// Storage quotas for uploads.
    pub uploads: uploads::UploadLimits,
    /// Hands waiting conversations to agents.
    pub assigner: assign::Assigner,
    /// Whose each conversation is, remembered so a message needs no read to check it.
    pub facts: facts::Facts,
    /// The sites, bans and visitors every hello checks, kept so a hello needs no read for them.
    pub copies: copies::Copies,
    /// The mail settings in force (transcripts, leave-message notifications); swapped whole
    /// when an admin saves new ones, so a reader sees the old or the new, never a mix.
    mail: arc_swap::ArcSwap<crate::mail::MailSetup>,
    /// How many transcripts went out recently, per conversation, address and site (per node).
    pub transcripts: transcripts::TranscriptGuard,
    /// Collects leave-message notifications into one mail per agent per window.
    pub leave_digest: crate::leave_digest::LeaveDigest,
    /// Tells other systems about messages, resolved conversations and leave-messages.
    pub webhooks: crate::webhooks::Webhooks,
    /// Locates visitors for agents; `None` without a GeoIP database.
    pub geoip: Option<Arc<crate::geoip::Geo>>,
    /// Translates between agents and visitors; `None` without a provider. Replaced when an
    /// admin saves new settings; read through [`Realtime::translation`].
    translation: arc_swap::ArcSwapOption<crate::translate::TranslationSetup>,
    /// The client translation settings saved in the console call their provider through.
    pub outbound: crate::outbound::Outbound,
    /// Set once the server is shutting down: connections tell their clients to move.
    draining: tokio::sync::watch::Sender<bool>,
    /// WebSockets open now. The HTTP server lets go of a connection once it is upgraded, so a
    /// draining server waits on this for its sockets to tell their clients before it exits.
    sockets: tokio::sync::watch::Sender<usize>,
    /// Whether writes are failing now for a full disk or an unreachable database, so the log
    /// says so once per episode.
    pub outage: Outage,
    /// The node's background tasks: a shutdown stops the loops and waits for the rest.
    pub tasks: crate::tasks::Tasks,
}

/// What a client is told when the database cannot store its message for now (a full disk,
/// the database unreachable): no internals, and "retry".
pub const UNAVAILABLE_MESSAGE: &str = "the server cannot store messages right now; retry later";

/// How long a client is asked to wait before resending a message refused for an outage.
pub const UNAVAILABLE_RETRY_MS: u32 = 5_000;

/// How long a client is asked to wait before resending a message refused because too many were
/// waiting to be stored: about two batches of the writer, so the queue has drained by then.
pub const BUSY_RETRY_MS: u32 = 250;

/// Whether the database refuses writes for a passing reason, as the last write found it: its
/// disk is full, or it cannot be reached (stopped, restarting, the network down). Either
/// refuses every write until it ends, so logging each refused message would bury the one line
/// that matters; the log says it when the first write fails and again when one succeeds.
#[derive(Debug, Default)]
pub struct Outage {
    /// The disk is full.
    disk_full: std::sync::atomic::AtomicBool,
    /// The database cannot be reached.
    unreachable: std::sync::atomic::AtomicBool,
    /// Sends refused because too many were waiting to be stored (for `/metrics`): overload is
    /// not an outage, so it is counted, not logged.
    refused_busy: std::sync::atomic::AtomicU64,
}

impl Outage {
    /// A write failed with `error`: whether the client should retry it later, and after how
    /// long (ms) — a full disk or an unreachable database (logged if the episode starts with
    /// it), or a write queue too full to take it now (counted).
    pub fn failed(&self, error: &store::Error) -> Option<u32> {
        use std::sync::atomic::Ordering::Relaxed;
        if matches!(error, store::Error::Busy) {
            self.refused_busy.fetch_add(1, Relaxed);
            return Some(BUSY_RETRY_MS);
        }
        if error.is_disk_full() {
            if !self.disk_full.swap(true, Relaxed) {
                tracing::error!(%error, "database disk is full: sends refused until space returns");
            }
            return Some(UNAVAILABLE_RETRY_MS);
        }
        if error.is_unreachable() {
            if !self.unreachable.swap(true, Relaxed) {
                tracing::error!(%error, "database unreachable: sends refused until it answers");
            }
            return Some(UNAVAILABLE_RETRY_MS);
        }
        None
    }

    /// Sends refused so far because too many were waiting to be stored.
    pub fn refused_busy(&self) -> u64 {
        self.refused_busy.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A write succeeded: ends an episode, if one was going on.
    pub fn wrote(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        if self.disk_full.load(Relaxed) && self.disk_full.swap(false, Relaxed) {
            tracing::warn!("database writable again");
        }
        if self.unreachable.load(Relaxed) && self.unreachable.swap(false, Relaxed) {
            tracing::warn!("database reachable again");
        }
    }
}

/// Counts one open WebSocket until dropped ([`Realtime::socket_opened`]).
pub struct OpenSocket(tokio::sync::watch::Sender<usize>);

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.send_modify(|open| *open = open.saturating_sub(1));
    }
}

/// What the real-time core is set to: plain values, read from the configuration by
/// `crate::wiring`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Messages one visitor may send per minute over all their connections.
    pub messages_per_minute: u32,
    /// A connection silent this long is dead; the server pings at half this interval.
    pub idle_timeout_ms: u32,
    /// Most simultaneous connections from one client address.
    pub max_connections_per_ip: u32,
    /// Most simultaneous connections on this node.
    pub max_connections: u32,
    /// What one address, and one site, may make per hour.
    pub budgets: budgets::BudgetLimits,
    /// Storage quotas for uploads, and how long an unsent one is kept.
    pub uploads: uploads::UploadLimits,
    /// Caps on transcripts, and how leave-message notifications are collected.
    pub mail_limits: crate::mail::MailLimits,
    /// The delay before a failed webhook delivery's first retry.
    pub webhook_retry_ms: u64,
}

/// The services the core calls, opened from the configuration by `crate::wiring` (tests hand
/// in their own).
pub struct Services {
    /// Outgoing mail.
    pub mail: crate::mail::MailSetup,
    /// Visitors' locations; `None` without a GeoIP database.
    pub geoip: Option<Arc<crate::geoip::Geo>>,
    /// The translation provider; `None` without one.
    pub translation: Option<crate::translate::TranslationSetup>,
    /// The HTTP client for addresses admins type (webhooks, translation).
    pub outbound: crate::outbound::Outbound,
    /// What links this node to the others sharing its database; `None` when it is alone.
    pub broker: Option<Box<dyn broker::Broker>>,
}

impl Realtime {
    /// Loads (or creates, once for all nodes) the token secret, links the hub to the other
    /// nodes, and builds the shared context.
    pub async fn new(
        store: Arc<dyn store::Store>,
        settings: Settings,
        services: Services,
    ) -> Result<Realtime, store::Error> {
        browser::prepare();
        let secret = store
            .secret(TOKEN_SECRET_KEY, &|| crate::util::random_hex::<32>())
            .await?;
        let tasks = crate::tasks::Tasks::default();
        tasks.spawn_loop(uploads::sweep(store.clone(), settings.uploads.unsent_after));
        let hub = Hub::default();
        let copies = copies::Copies::new(hub.staleness());
        let webhooks = crate::webhooks::Webhooks::new(
            store.clone(),
            settings.webhook_retry_ms,
            &services.outbound,
            tasks.clone(),
            hub.staleness(),
        );
        if let Some(broker) = &services.broker {
            broker.start(&hub, &secret, &tasks);
        }
        let leave_digest = crate::leave_digest::LeaveDigest::start(
            store.clone(),
            settings.mail_limits.notify_digest,
        );
        Ok(Realtime {
            store,
            hub,
            tokens: TokenKey::new(&secret),
            limits: Limits {
                messages_per_minute: settings.messages_per_minute,
                idle_timeout_ms: settings.idle_timeout_ms,
                ping_interval_ms: settings.idle_timeout_ms / 2,
                ..Limits::default()
            },
            max_connections_per_ip: settings.max_connections_per_ip,
            max_connections: settings.max_connections,
            budgets: budgets::Budgets::new(settings.budgets),
            uploads: settings.uploads,
            assigner: assign::Assigner::default(),
            facts: facts::Facts::default(),
            copies,
            mail: arc_swap::ArcSwap::from_pointee(services.mail),
            transcripts: transcripts::TranscriptGuard::new(settings.mail_limits.transcripts),
            leave_digest,
            webhooks,
            geoip: services.geoip,
            translation: arc_swap::ArcSwapOption::new(services.translation.map(Arc::new)),
            outbound: services.outbound,
            draining: tokio::sync::watch::Sender::new(false),
            sockets: tokio::sync::watch::Sender::new(0),
            outage: Outage::default(),
            tasks,
        })
    }
}

impl Realtime {
    /// The mail settings in force.
    pub fn mail(&self) -> crate::mail::MailSetup {
        crate::mail::MailSetup::clone(&self.mail.load())
    }

    /// Puts new mail settings in force.
    pub fn set_mail(&self, setup: crate::mail::MailSetup) {
        self.mail.store(Arc::new(setup));
    }

    /// The translation provider and limits in force, if any.
    pub fn translation(&self) -> Option<crate::translate::TranslationSetup> {
        self.translation.load().as_deref().cloned()
    }

    /// Puts new translation settings in force (`None`: translation off).
    pub fn set_translation(&self, setup: Option<crate::translate::TranslationSetup>) {
        self.translation.store(setup.map(Arc::new));
    }
}

impl Realtime {
    /// Counts a connection (a WebSocket or a held poll) from `client` against the per-address
    /// and the node-wide caps; past either it is refused with a frame that says which.
    pub fn register(
        &self,
        client: app::session::ClientIp,
    ) -> Result<hub::Registration, ServerFrame> {
        self.hub
            .register(
                Some(client.group()),
                self.max_connections_per_ip,
                self.max_connections,
            )
            .map_err(|refused| match refused {
                hub::TooManyConnections::FromAddress => error_frame(
                    ErrorCode::TooManyConnections,
                    "too many connections from this address",
                ),
                hub::TooManyConnections::OnNode => error_frame(
                    ErrorCode::Unavailable,
                    "this server is at its connection limit; try again shortly",
                ),
            })
    }
}

/// A visitor first seen longer ago than this (30 minutes) is shown to agents as returning.
pub const RETURNING_AFTER_MS: i64 = 30 * 60 * 1000;

/// How long clients spread their reconnects over when the server drains.
pub const RECONNECT_WITHIN_MS: u32 = 2_000;

impl Realtime {
    /// Starts the drain: every live connection and held poll answers `reconnect` and ends.
    pub fn drain(&self) {
        self.draining.send_replace(true);
    }

    /// Withdraws this node from the other nodes' view as the server exits, and sends the
    /// leave-message notifications still waiting for their digest.
    pub async fn leave(&self) {
        self.hub.leave().await;
        self.leave_digest.finish().await;
    }

    /// Counts a WebSocket as open until the returned guard is dropped.
    pub fn socket_opened(&self) -> OpenSocket {
        self.sockets.send_modify(|open| *open += 1);
        OpenSocket(self.sockets.clone())
    }

    /// Completes once no WebSocket is open (after a drain: once each has told its client).
    pub async fn sockets_closed(&self) {
        let mut open = self.sockets.subscribe();
        let _ = open.wait_for(|open| *open == 0).await;
    }

    /// Completes once the server is draining.
    pub async fn drained(&self) {
        let mut draining = self.draining.subscribe();
        // An error means the sender is gone, which only happens when the server is gone too.
        let _ = draining.wait_for(|draining| *draining).await;
    }
}

/// An error frame without references.
pub fn error_frame(code: ErrorCode, message: &str) -> ServerFrame {
    ServerFrame::Error {
        code,
        message: message.to_string(),
        client_id: None,
        conversation_id: None,
        retry_after_ms: None,
    }
}

/// Whether a site's visitors are offered chat now (else the offline form): an agent of the site
/// is online, and the site's business hours, if it has any, include this moment.
pub(crate) fn chat_offered(rt: &Realtime, site: &store::Site) -> bool {
    rt.hub.site_available(site.id)
        && settings::WidgetSettings::of(site).open_at(crate::util::now_ms())
}

/// A refusal for going over a rate: the client may try again after `retry_after_ms`.
pub fn rate_limited(message: &str, retry_after_ms: u32) -> ServerFrame {
    ServerFrame::Error {
        code: ErrorCode::RateLimited,
        message: message.to_string(),
        client_id: None,
        conversation_id: None,
        retry_after_ms: Some(retry_after_ms),
    }
}

/// An internal failure: logged in full, answered with the bare code.
pub fn internal(error: &dyn std::fmt::Display) -> ServerFrame {
    tracing::error!(%error, "real-time request failed");
    error_frame(ErrorCode::Internal, "internal error")
}

impl Realtime {
    /// The answer to a request the store failed: `unavailable` with a wait when the disk is
    /// full or the database unreachable (logged once per episode), [`internal`] otherwise.
    pub fn store_failure(&self, error: &store::Error) -> ServerFrame {
        match self.outage.failed(error) {
            Some(wait) => ServerFrame::Error {
                code: ErrorCode::Unavailable,
                message: UNAVAILABLE_MESSAGE.to_string(),
                client_id: None,
                conversation_id: None,
                retry_after_ms: Some(wait),
            },
            None => internal(error),
        }
    }
}

/// Whether a page origin may embed a site's widget.
pub(crate) fn origin_allowed(site: &store::Site, origin: Option<&str>) -> bool {
    site.allowed_origins.iter().any(|allowed| {
        allowed == "*"
            || origin.is_some_and(|origin| {
                let origin = origin.trim_end_matches('/');
                let allowed = allowed.trim_end_matches('/');
                origin.eq_ignore_ascii_case(allowed)
                    || (!allowed.contains("://")
                        && origin
                            .split_once("://")
                            .is_some_and(|(_, host)| host.eq_ignore_ascii_case(allowed)))
            })
    })
}

/// The refusal of something past its budget: `rate_limited` with the wait.
pub(crate) fn over_budget(wait_ms: u32, message: &str) -> ServerFrame {
    ServerFrame::Error {
        code: ErrorCode::RateLimited,
        message: message.to_string(),
        client_id: None,
        conversation_id: None,
        retry_after_ms: Some(wait_ms),
    }
}

/// Checks a visitor's hello frame, which spends from its address's hello budget before
/// anything is read for it; then [`identify`].
pub async fn visitor_identity(
    rt: &Realtime,
    hello: &VisitorHello,
    origin: Option<&str>,
    ip: Option<IpAddr>,
) -> Result<Identity, ServerFrame> {
    rt.budgets
        .spend(budgets::Spend::Hello, ip, None)
        .map_err(|wait| over_budget(wait, "too many connections from this address; wait"))?;
    identify(rt, hello, origin, ip).await
}

/// Checks a visitor hello (a real one, or one made from a request's token): version, site,
/// origin, token (or a new visitor, within its address's budget), bans.
pub(crate) async fn identify(
    rt: &Realtime,
    hello: &VisitorHello,
    origin: Option<&str>,
    ip: Option<IpAddr>,
) -> Result<Identity, ServerFrame> {
    if hello.protocol_version != protocol::PROTOCOL_VERSION {
        return Err(error_frame(
            ErrorCode::VersionUnsupported,
            "unsupported protocol version",
        ));
    }
    let site = rt
        .copies
        .site_by_key(rt.store.as_ref(), &hello.site_key)
        .await
        .map_err(|e| rt.store_failure(&e))?
        .ok_or_else(|| error_frame(ErrorCode::OriginNotAllowed, "unknown site key"))?;
    if !origin_allowed(&site, origin) {
        return Err(error_frame(
            ErrorCode::OriginNotAllowed,
            "this page may not use the widget",
        ));
    }
    let now = crate::util::now_ms();
    // Banned addresses are refused before anything is written for them.
    let bans = rt
        .copies
        .active_bans(rt.store.as_ref(), site.id, now)
        .await
        .map_err(|e| rt.store_failure(&e))?;
    let address_banned = bans.iter().any(|ban| {
        ban.ip_cidr
            .as_deref()
            .zip(ip)
            .is_some_and(|(cidr, ip)| ip_matches(cidr, ip))
    });
    if address_banned {
        return Err(error_frame(ErrorCode::Banned, "banned"));
    }
    let (visitor_id, known) = match &hello.visitor_token {
        Some(token) => {
            let id = rt
                .tokens
                .verify(token, site.id, now / 1000)
                .ok_or_else(|| error_frame(ErrorCode::BadToken, "bad visitor token"))?;
            let known = rt
                .copies
                .visitor(rt.store.as_ref(), id)
                .await
                .map_err(|e| rt.store_failure(&e))?;
            match known {
                Some(visitor) if visitor.site_id == site.id => (id, visitor),
                _ => return Err(error_frame(ErrorCode::BadToken, "bad visitor token")),
            }
        }
        None => {
            rt.budgets
                .spend(budgets::Spend::Visitor, ip, Some(site.id))
                .map_err(|wait| over_budget(wait, "too many new visitors from this address"))?;
            let key = crate::util::random_hex::<16>();
            let visitor = rt
                .store
                .upsert_visitor(site.id, &key, now)
                .await
                .map_err(|e| rt.store_failure(&e))?;
            let made = copies::HelloVisitor {
                site_id: site.id,
                created_at: visitor.created_at,
                language: None,
            };
            rt.copies.visitor_written(visitor.id, made.clone());
            (visitor.id, made)
        }
    };
    let returning = known.created_at < now - RETURNING_AFTER_MS;
    // The browser's language answers the visitor when their words are too short to tell.
    let said = hello
        .language
        .as_deref()
        .map(str::trim)
        .filter(|tag| crate::translate::is_language_tag(tag));
    if let Some(tag) = said
        && known.language.as_deref() != Some(tag)
    {
        rt.store
            .set_visitor_language(visitor_id, tag)
            .await
            .map_err(|e| rt.store_failure(&e))?;
        rt.copies.visitor_written(
            visitor_id,
            copies::HelloVisitor {
                language: Some(tag.to_owned()),
                ..known
            },
        );
    }
    if bans.iter().any(|ban| ban.visitor_id == Some(visitor_id)) {
        return Err(error_frame(ErrorCode::Banned, "banned"));
    }
    Ok(Identity::Visitor {
        site,
        visitor_id,
        returning,
        address: ip,
    })
}

/// Whether `ip` is the address or inside the network `cidr` names.
fn ip_matches(cidr: &str, ip: IpAddr) -> bool {
    if let Ok(net) = cidr.parse::<ipnet::IpNet>() {
        return net.contains(&ip);
    }
    cidr.parse::<IpAddr>().is_ok_and(|single| single == ip)
}

/// The agent behind a session-cookie token (`app::session::session_agent`, the one lookup
/// every path uses), with their sites.
pub async fn agent_identity(rt: &Realtime, token: Option<&str>) -> Result<Identity, ServerFrame> {
    let unauthorized = || error_frame(ErrorCode::Unauthorized, "sign in first");
    let token = token.ok_or_else(unauthorized)?;
    let agent = app::session::session_agent(rt.store.as_ref(), token)
        .await
        .map_err(|e| rt.store_failure(&e))?
        .ok_or_else(unauthorized)?;
    let site_ids = rt
        .store
        .agent_sites(agent.id)
        .await
        .map_err(|e| rt.store_failure(&e))?;
    Ok(Identity::Agent {
        agent: Arc::new(agent),
        site_ids,
    })
}

/// Completes when `agent_id`'s sessions may have changed (or, for a visitor's connection with
/// no receiver, never): the connection must check its session again.
pub async fn sessions_changed(
    changes: &mut Option<tokio::sync::broadcast::Receiver<AgentId>>,
    agent_id: AgentId,
) {
    use tokio::sync::broadcast::error::RecvError;
    let Some(changes) = changes else {
        return std::future::pending().await;
    };
    loop {
        match changes.recv().await {
            Ok(id) if id == agent_id => return,
            Ok(_) => continue,
            Err(RecvError::Lagged(_)) => return,
            Err(RecvError::Closed) => return std::future::pending().await,
        }
    }
}

/// How often a live agent connection checks its session even when nothing said it changed
/// (a node cut off from the bus still notices within this).
pub const SESSION_RECHECK: std::time::Duration = std::time::Duration::from_secs(60);

/// A parsed client frame, whichever role sent it.
pub enum ClientFrame {
    /// A visitor's hello.
    VisitorHello(VisitorHello),
    /// An agent's hello: cursors and the event cursor.
    AgentHello(protocol::AgentHello),
    /// Anything else a session handles.
    Inbound(Inbound),
    /// A keep-alive to answer with `pong`.
    Ping(u32),
    /// The answer to our ping.
    Pong,
}

/// Which side of the protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The widget.
    Visitor,
    /// The console.
    Agent,
}

/// Parses one frame of a role; a frame the role may not send is a `bad_request`.
pub fn parse_frame(role: Role, text: &str) -> Result<ClientFrame, ServerFrame> {
    let bad =
        |e: serde_json::Error| error_frame(ErrorCode::BadRequest, &format!("malformed frame: {e}"));
    Ok(match role {
        Role::Visitor => match serde_json::from_str::<VisitorFrame>(text).map_err(bad)? {
            VisitorFrame::Hello(hello) => ClientFrame::VisitorHello(hello),
            VisitorFrame::Resume(resume) => ClientFrame::Inbound(Inbound::Resume(resume.cursors)),
            VisitorFrame::Send(send) => ClientFrame::Inbound(Inbound::Send(send)),
            VisitorFrame::Typing(typing) => ClientFrame::Inbound(Inbound::Typing(typing)),
            VisitorFrame::Preview(preview) => ClientFrame::Inbound(Inbound::Preview(preview)),
            VisitorFrame::Read(read) => ClientFrame::Inbound(Inbound::Read(read)),
            VisitorFrame::PageView(page) => ClientFrame::Inbound(Inbound::PageView(page)),
            VisitorFrame::Ping(ping) => ClientFrame::Ping(ping.nonce),
            VisitorFrame::Pong(_) => ClientFrame::Pong,
        },
        Role::Agent => match serde_json::from_str::<AgentFrame>(text).map_err(bad)? {
            AgentFrame::Hello(hello) => ClientFrame::AgentHello(hello),
            AgentFrame::Resume(resume) => ClientFrame::Inbound(Inbound::Resume(resume.cursors)),
            AgentFrame::Send(send) => ClientFrame::Inbound(Inbound::Send(send)),
            AgentFrame::Typing(typing) => ClientFrame::Inbound(Inbound::Typing(typing)),
            AgentFrame::Read(read) => ClientFrame::Inbound(Inbound::Read(read)),
            AgentFrame::SetStatus(status) => {
                ClientFrame::Inbound(Inbound::SetStatus(status.status))
            }
            AgentFrame::SetConversationStatus(change) => {
                ClientFrame::Inbound(Inbound::SetConversationStatus(change))
            }
            AgentFrame::Assign(assign) => ClientFrame::Inbound(Inbound::Assign(assign)),
            AgentFrame::Invite(invite) => ClientFrame::Inbound(Inbound::Invite(invite)),
            AgentFrame::Ping(ping) => ClientFrame::Ping(ping.nonce),
            AgentFrame::Pong(_) => ClientFrame::Pong,
        },
    })
}

/// What a visitor's hello and request tell agents about their browser, cut to sane sizes.
pub fn visitor_details(
    rt: &Realtime,
    identity: &Identity,
    hello: &VisitorHello,
    user_agent: Option<&str>,
    ip: Option<IpAddr>,
) -> Arc<protocol::VisitorDetails> {
    let cut = |text: Option<&str>, max: usize| text.map(|t| crate::util::text::label(t, max));
    let user_agent = cut(user_agent, 512);
    let described = user_agent
        .as_deref()
        .map(browser::describe)
        .unwrap_or_default();
    let place = rt
        .geoip
        .as_ref()
        .zip(ip)
        .map(|(geo, ip)| geo.locate(ip))
        .unwrap_or_default();
    Arc::new(protocol::VisitorDetails {
        language: cut(hello.language.as_deref(), 35),
        time_zone: cut(hello.time_zone.as_deref(), 64),
        screen: cut(hello.screen.as_deref(), 20),
        user_agent,
        browser: described.browser,
        os: described.os,
        device: described.device,
        country: place.country,
        city: place.city,
        returning: matches!(
            identity,
            Identity::Visitor {
                returning: true,
                ..
            }
        ),
    })
}

/// Whose presence a session's connection counts for.
pub fn presence_of(
    identity: &Identity,
    details: Option<Arc<protocol::VisitorDetails>>,
) -> hub::Who {
    match identity {
        Identity::Visitor {
            site, visitor_id, ..
        } => hub::Who::Visitor {
            site_id: site.id,
            visitor_id: *visitor_id,
            details,
        },
        Identity::Agent { agent, site_ids } => hub::Who::Agent {
            agent_id: agent.id,
            site_ids: site_ids.clone(),
        },
    }
}

/// What the console's server functions ask of the real-time side.
impl app::ports::Hub for Realtime {
    /// Signing out takes the agent offline at once, instead of when their last HTTP poll's
    /// presence runs out.
    fn signed_out(&self, agent_id: AgentId) {
        self.hub
            .set_agent_status(agent_id, protocol::AgentStatus::Offline);
    }

    fn sessions_changed(&self, agent_id: AgentId) {
        self.hub.agent_sessions_changed(agent_id);
    }

    fn copies_stale(&self) {
        self.hub.copies_stale();
    }

    fn banned(&self, visitor_id: VisitorId) {
        self.hub
            .to_visitor(visitor_id, error_frame(ErrorCode::Banned, "banned"));
    }

    fn to_agents(&self, site_id: SiteId, frame: ServerFrame) {
        self.hub.to_site(site_id, frame);
    }

    fn check_widget_settings(
        &self,
        settings: serde_json::Value,
    ) -> Result<serde_json::Value, app::error::ConsoleError> {
        settings::WidgetSettings::check(settings).map_err(|error| match error {
            settings::SettingsError::Hours(_) => app::error::ConsoleError::BadHours,
            _ => app::error::ConsoleError::Invalid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_write_queue_asks_for_a_short_retry_and_is_counted_not_an_outage() {
        let outage = Outage::default();
        assert_eq!(outage.failed(&store::Error::Busy), Some(BUSY_RETRY_MS));
        assert_eq!(outage.failed(&store::Error::Busy), Some(BUSY_RETRY_MS));
        assert_eq!(outage.refused_busy(), 2);
        assert_eq!(outage.failed(&store::Error::NotFound), None);
        let unavailable = store::Error::Database(sqlx::Error::PoolTimedOut);
        assert_eq!(outage.failed(&unavailable), Some(UNAVAILABLE_RETRY_MS));
    }

    #[test]
    fn cidr_and_single_addresses_match() {
        let ip: IpAddr = "203.0.113.7".parse().expect("ip");
        assert!(ip_matches("203.0.113.0/24", ip));
        assert!(ip_matches("203.0.113.7", ip));
        assert!(!ip_matches("203.0.114.0/24", ip));
        assert!(!ip_matches("not an ip", ip));
    }
}
