//! Kefu's persistence layer: one [`Store`] trait, one implementation per database.
//!
//! The server holds an `Arc<dyn Store>` from [`connect`], which picks SQLite (the embedded
//! default), PostgreSQL or MySQL/MariaDB from the URL scheme, connects, and applies the schema
//! migrations in `migrations/<backend>/` before returning. Each backend owns its own `sqlx` pool
//! and writes its own SQL (placeholders and upsert syntax differ; `sqlx::Any` is deliberately not
//! used). The same contract test suite (`tests/contract.rs`) runs against all three.
//!
//! This crate stores and pages data; it does not hash passwords or tokens, check permissions,
//! fan messages out or decide HTTP statuses — callers do.

#![warn(missing_docs)]

mod assign;
pub mod copy;
mod error;
mod model;
mod mysql;
mod postgres;
pub mod search;
mod sqlite;
mod url;

use std::sync::Arc;

use async_trait::async_trait;
pub use protocol::Seq;

pub use crate::error::{ConnectProblem, Error, Result};
pub use crate::model::{
    Agent, AgentId, ApiToken, Appended, AppendedNew, Attachment, AttachmentId, Ban, BanId,
    CannedReply, CannedReplyId, Conversation, ConversationCursor, ConversationId,
    ConversationStats, ConversationStatus, DeliveryAttempt, DeliveryState, Event, EventId,
    HistoryFilter, LeaveMessage, LeaveMessageCursor, LeaveMessageId, LeaveMessageNote,
    LeaveMessageStatus, Message, MessageId, MessageTranslation, NewAgent, NewApiToken,
    NewAttachment, NewBan, NewCannedReply, NewEvent, NewLeaveMessage, NewLeaveMessageNote,
    NewMessage, NewSite, Rating, Role, Session, Site, SiteId, Team, TeamId, TranslationKey,
    TranslationState, UnixMillis, UnknownVariant, Visitor, VisitorAttributes, VisitorId, Webhook,
    WebhookDelivery, now_millis,
};
pub use crate::sqlite::PageLimit;
pub use crate::url::{Backend, DatabaseUrl};

/// Everything the server persists, independent of the database behind it.
///
/// Object-safe and `Send + Sync`, so it is shared as `Arc<dyn Store>`. Methods that look a row up
/// return `Ok(None)` when it does not exist; methods that need a referenced row (a conversation, a
/// site …) fail with [`Error::NotFound`] when it is missing. Limits of `0` return no rows.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which database this store talks to (for logs and `/readyz`).
    fn backend(&self) -> Backend;

    /// Runs a trivial query, proving the database answers (used by `/readyz`).
    async fn ping(&self) -> Result<()>;

    /// Adds a site. A duplicate public key is `Conflict { field: "public_key" }`.
    async fn create_site(&self, site: NewSite) -> Result<Site>;

    /// The site whose widget uses `public_key`.
    async fn site_by_key(&self, public_key: &str) -> Result<Option<Site>>;

    /// The site with this id.
    async fn site(&self, id: SiteId) -> Result<Option<Site>>;

    /// Every site, in id order (for administrators).
    async fn all_sites(&self) -> Result<Vec<Site>>;

    /// The newest schema migration applied (`connect` applies this version's).
    async fn schema_version(&self) -> Result<i64>;

    /// For a copy to another database: opens a [`copy::Snapshot`], one connection reading the
    /// whole database as it is now, while others go on writing (PostgreSQL: a `REPEATABLE
    /// READ READ ONLY` transaction; MySQL/MariaDB: `WITH CONSISTENT SNAPSHOT`; SQLite: a read
    /// transaction, which WAL keeps apart from later writes).
    async fn copy_snapshot(&self) -> Result<Box<dyn copy::Snapshot>>;

    /// For a copy: how many rows `table` holds.
    async fn copy_count(&self, table: &'static copy::Table) -> Result<i64>;

    /// For a copy into this database: stores `rows` of `table` and, in the same transaction,
    /// `last` as the key the copy of that table got to.
    async fn copy_write(
        &self,
        table: &'static copy::Table,
        rows: Vec<Vec<copy::Value>>,
        last: Vec<copy::Value>,
    ) -> Result<()>;

    /// How far a copy into this database got for `table` (the key of the last row written),
    /// if it started.
    async fn copy_progress(&self, table: &'static copy::Table) -> Result<Option<Vec<copy::Value>>>;

    /// Ends a copy into this database: new rows get ids after the copied ones, the search
    /// index is rebuilt from the copied rows on the next connect, the progress is forgotten.
    async fn copy_finish(&self) -> Result<()>;

    /// Closes every connection, waiting for those in use to come back: a SQLite file is left
    /// whole, its write-ahead log checkpointed and removed. Nothing works on the store after.
    async fn close(&self);

    /// Replaces a site's name, allowed origins and widget settings; returns it as it is
    /// afterwards. Its key never changes (pages embed it). `NotFound` if there is no such site.
    async fn update_site(
        &self,
        id: SiteId,
        name: &str,
        allowed_origins: &[String],
        widget_settings: &serde_json::Value,
    ) -> Result<Site>;

    /// Adds an enabled agent. A duplicate email is `Conflict { field: "email" }`.
    async fn create_agent(&self, agent: NewAgent) -> Result<Agent>;

    /// The agent with exactly this email (the caller normalises case before storing and asking).
    async fn agent_by_email(&self, email: &str) -> Result<Option<Agent>>;

    /// The agent with this id (disabled agents included).
    async fn agent(&self, id: AgentId) -> Result<Option<Agent>>;

    /// Every agent, disabled ones included, in id order (for administrators).
    async fn all_agents(&self) -> Result<Vec<Agent>>;

    /// Sets an agent's role, concurrent-chat limit and whether they are disabled; returns the
    /// agent as they are afterwards. `NotFound` if there is no such agent.
    async fn update_agent(
        &self,
        id: AgentId,
        role: Role,
        max_chats: i32,
        disabled: bool,
    ) -> Result<Agent>;

    /// Takes an agent off a site; one who is not on it is not an error.
    async fn remove_agent_from_site(&self, site_id: SiteId, agent_id: AgentId) -> Result<()>;

    /// Sets the language the agent's console speaks (a BCP 47 tag such as `zh-CN`). `NotFound`
    /// if there is no such agent.
    async fn set_agent_language(&self, id: AgentId, language: &str) -> Result<()>;

    /// Makes the agent a member of the site; adding an existing member again is a no-op.
    async fn add_agent_to_site(&self, site_id: SiteId, agent_id: AgentId) -> Result<()>;

    /// The sites the agent is a member of, in ascending id order.
    async fn agent_sites(&self, agent_id: AgentId) -> Result<Vec<SiteId>>;

    /// The enabled agents who belong to any of `site_ids`, each once, in ascending id order:
    /// the colleagues a conversation can be transferred to.
    async fn site_agents(&self, site_ids: &[SiteId]) -> Result<Vec<Agent>>;

    /// Records a session for `agent_id`, identified by the hash of its cookie token, valid until
    /// `expires_at`. Its `created_at` is taken from the system clock.
    async fn create_session(
        &self,
        token_hash: &str,
        agent_id: AgentId,
        expires_at: UnixMillis,
    ) -> Result<()>;

    /// The agent signed in with this token hash, if the session exists, has not expired at `now`
    /// and the agent is not disabled.
    async fn session_agent(&self, token_hash: &str, now: UnixMillis) -> Result<Option<Agent>>;

    /// Ends a session (sign-out). Deleting a session that does not exist is not an error.
    async fn delete_session(&self, token_hash: &str) -> Result<()>;

    /// Replaces the agent's password hash and ends every session of theirs, in one transaction:
    /// a new password signs the agent out everywhere. `NotFound` if there is no such agent.
    async fn set_agent_password(&self, id: AgentId, password_hash: &str) -> Result<()>;

    /// The site's visitor with this key, created on first contact; `last_seen_at` becomes `now`
    /// (it never moves backwards).
    async fn upsert_visitor(
        &self,
        site_id: SiteId,
        visitor_key: &str,
        now: UnixMillis,
    ) -> Result<Visitor>;

    /// The visitor with this id.
    async fn visitor(&self, id: VisitorId) -> Result<Option<Visitor>>;

    /// Replaces the visitor's name, e-mail and attributes (the caller merges with what was
    /// there). `NotFound` when there is no such visitor.
    async fn set_visitor_profile(
        &self,
        id: VisitorId,
        name: Option<&str>,
        email: Option<&str>,
        attributes: &VisitorAttributes,
    ) -> Result<Visitor>;

    /// Records the visitor's browser language. `NotFound` when there is no such visitor.
    async fn set_visitor_language(&self, id: VisitorId, language: &str) -> Result<()>;

    /// Starts an open, unassigned, empty conversation. `NotFound` unless the visitor exists and
    /// belongs to `site_id`.
    async fn create_conversation(
        &self,
        site_id: SiteId,
        visitor_id: VisitorId,
        now: UnixMillis,
    ) -> Result<Conversation>;

    /// The conversation with this id.
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>>;

    /// The visitor's newest (highest id) conversation that is not resolved: the one a message
    /// without a conversation id belongs to.
    async fn open_conversation(&self, visitor_id: VisitorId) -> Result<Option<Conversation>>;

    /// The visitor's conversations, newest (highest id) first, at most 50: their history.
    async fn visitor_conversations(&self, visitor_id: VisitorId) -> Result<Vec<Conversation>>;

    /// Up to `limit` of the non-resolved conversations of `site_ids`, most recently updated first
    /// (ties: higher id first): what a console shows when it connects.
    async fn site_conversation_heads(
        &self,
        site_ids: &[SiteId],
        limit: u32,
    ) -> Result<Vec<Conversation>>;

    /// Sets the conversation's status, ends any snooze, and moves `updated_at` to `now` (never
    /// backwards); returns the conversation as it is afterwards. `NotFound` if it does not exist.
    async fn set_conversation_status(
        &self,
        id: ConversationId,
        status: ConversationStatus,
        now: UnixMillis,
    ) -> Result<Conversation>;

    /// Makes the conversation pending until `until`, like
    /// [`set_conversation_status`](Store::set_conversation_status) otherwise. `NotFound` if it
    /// does not exist.
    async fn snooze_conversation(
        &self,
        id: ConversationId,
        until: UnixMillis,
        now: UnixMillis,
    ) -> Result<Conversation>;

    /// Snoozed conversations whose time has come (`snoozed_until <= now`), the longest due first.
    async fn due_snoozes(&self, now: UnixMillis, limit: u32) -> Result<Vec<Conversation>>;

    /// Reopens a conversation whose snooze is due, and ends the snooze; `None` when it is not
    /// (any more) snoozed and due, so of several servers waking it only one records the wake.
    async fn wake_conversation(
        &self,
        id: ConversationId,
        now: UnixMillis,
    ) -> Result<Option<Conversation>>;

    /// Moves the conversation from assignee `from` to `to` (`None`: unassigned), only if it is
    /// assigned to `from` right now: a compare-and-set, so when two nodes pick the same
    /// conversation one wins and the other sees `false`. `NotFound` if it does not exist.
    async fn reassign_conversation(
        &self,
        id: ConversationId,
        from: Option<AgentId>,
        to: Option<AgentId>,
    ) -> Result<bool>;

    /// How many `open` conversations each of `agent_ids` is assigned, as `(agent, count)` in
    /// agent order; agents with none are left out.
    async fn agent_loads(&self, agent_ids: &[AgentId]) -> Result<Vec<(AgentId, i64)>>;

    /// Assigns the unassigned conversation to `agent` if the agent has fewer than `max_chats`
    /// `open` conversations (counted as [`Store::agent_loads`] counts them), and records
    /// `turn_ms` as the agent's round-robin turn (see [`Store::assignment_turns`]); `false`, with
    /// nothing changed, when the agent is full or the conversation is assigned already.
    ///
    /// One transaction holding the conversation's and the agent's rows, so the limit holds
    /// across every server node sharing the database: two nodes never both fill an agent's last
    /// slot, nor both assign one conversation. `NotFound` if the conversation or the agent
    /// does not exist.
    async fn assign_within_capacity(
        &self,
        conversation: ConversationId,
        agent: AgentId,
        max_chats: i64,
        turn_ms: i64,
    ) -> Result<bool>;

    /// The `turn_ms` of each of `agent_ids`' latest [`Store::assign_within_capacity`] (0: never),
    /// as `(agent, turn)` in agent order; unknown agents are left out. Round-robin gives the
    /// next conversation to the agent with the lowest turn: kept in the database, the order is
    /// the same on every server node and survives restarts.
    async fn assignment_turns(&self, agent_ids: &[AgentId]) -> Result<Vec<(AgentId, i64)>>;

    /// The site's `open`, unassigned conversations, oldest first (ties: lower id first), at
    /// most `limit`: the queue waiting for an agent.
    async fn unassigned_conversations(
        &self,
        site_id: SiteId,
        limit: u32,
    ) -> Result<Vec<Conversation>>;

    /// Up to `limit` of the site's conversations, most recently updated first (ties: higher id
    /// first), strictly after `after` — the cursor of the previous page's last row.
    async fn conversations_page(
        &self,
        site_id: SiteId,
        after: Option<ConversationCursor>,
        limit: u32,
    ) -> Result<Vec<Conversation>>;

    /// Stores a message under the conversation's next sequence number (gap-free, from 1) and
    /// bumps the conversation's `updated_at`, atomically and safely under concurrent writers.
    /// A resend (same `client_id` in the same conversation) stores nothing and returns the
    /// original message with `created: false`. `NotFound` if the conversation does not exist.
    async fn append_message(
        &self,
        conversation_id: ConversationId,
        message: NewMessage,
    ) -> Result<Appended>;

    /// Appends a visitor's message that names no conversation: to the visitor's open
    /// conversation (see [`Store::open_conversation`]), or to a new one started for it.
    ///
    /// A resend — the `client_id` is already stored in *any* of the visitor's conversations —
    /// stores nothing and returns the original (`created: false`, `created_conversation: false`),
    /// so resending a first message never opens a second conversation. Calls for the same visitor
    /// are serialised (two tabs, two server processes): at most one conversation is created.
    /// `NotFound` unless the visitor exists and belongs to `site_id`.
    async fn append_message_in_open_conversation(
        &self,
        site_id: SiteId,
        visitor_id: VisitorId,
        message: NewMessage,
    ) -> Result<AppendedNew>;

    /// Stores `messages` in order under the conversation's next seqs in one transaction and
    /// bumps `updated_at` to the newest: the bulk path for imports (and the benchmark's million
    /// messages), without [`Store::append_message`]'s resend detection — a client id already in
    /// the conversation fails the whole batch with `Conflict { field: "client_id" }`.
    /// At most 1,000 messages per call (the databases' limits on bound parameters). Returns how
    /// many were stored; `NotFound` if the conversation does not exist.
    async fn import_messages(
        &self,
        conversation_id: ConversationId,
        messages: &[NewMessage],
    ) -> Result<u64>;

    /// The conversation's messages with `seq > after_seq`, ascending, at most `limit`: exactly
    /// the gap a client with cursor `after_seq` has missed.
    async fn messages_after(
        &self,
        conversation_id: ConversationId,
        after_seq: Seq,
        limit: u32,
    ) -> Result<Vec<Message>>;

    /// The conversation's messages with `seq < before_seq` (all when `None`), newest first, at
    /// most `limit`: pages backwards through a transcript.
    async fn messages_before(
        &self,
        conversation_id: ConversationId,
        before_seq: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<Message>>;

    /// Stores a leave-message as `new` and unassigned. `NotFound` if the site (or the given
    /// visitor) does not exist.
    async fn create_leave_message(&self, message: NewLeaveMessage) -> Result<LeaveMessage>;

    /// Up to `limit` leave-messages of `site_ids` (only those in `status`, when given), newest
    /// first (ties: higher id first), strictly after `after` — the cursor of the previous
    /// page's last row.
    async fn leave_messages_page(
        &self,
        site_ids: &[SiteId],
        status: Option<LeaveMessageStatus>,
        after: Option<LeaveMessageCursor>,
        limit: u32,
    ) -> Result<Vec<LeaveMessage>>;

    /// The leave-message with this id.
    async fn leave_message(&self, id: LeaveMessageId) -> Result<Option<LeaveMessage>>;

    /// Sets a leave-message's status and the agent handling it (`None`: nobody); returns it as
    /// it is afterwards. `NotFound` if it (or the agent) does not exist.
    async fn update_leave_message(
        &self,
        id: LeaveMessageId,
        status: LeaveMessageStatus,
        assignee: Option<AgentId>,
    ) -> Result<LeaveMessage>;

    /// Adds a note to a leave-message. `NotFound` if it (or the agent) does not exist.
    async fn add_leave_message_note(&self, note: NewLeaveMessageNote) -> Result<LeaveMessageNote>;

    /// The notes on a leave-message, oldest first.
    async fn leave_message_notes(&self, id: LeaveMessageId) -> Result<Vec<LeaveMessageNote>>;

    /// Up to `limit` conversations `filter` selects, most recently updated first (ties: higher
    /// id first), strictly after `after`: the history list when nothing is searched.
    async fn history(
        &self,
        filter: &HistoryFilter,
        after: Option<ConversationCursor>,
        limit: u32,
    ) -> Result<Vec<Conversation>>;

    /// Up to `limit` messages of the conversations `filter` selects that contain every term of
    /// `query` (see [`search`]), newest (highest id) first, with ids below `before`.
    async fn search_messages(
        &self,
        filter: &HistoryFilter,
        query: &search::Query,
        before: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>>;

    /// Up to `limit` leave-messages of `site_ids` whose name, contact or text contain every term
    /// of `query`, newest (highest id) first, with ids below `before`.
    async fn search_leave_messages(
        &self,
        site_ids: &[SiteId],
        query: &search::Query,
        before: Option<LeaveMessageId>,
        limit: u32,
    ) -> Result<Vec<LeaveMessage>>;

    /// The facts reports need about each conversation of `site_ids` started in
    /// `since..until`, by id.
    async fn conversation_stats(
        &self,
        site_ids: &[SiteId],
        since: UnixMillis,
        until: UnixMillis,
    ) -> Result<Vec<ConversationStats>>;

    /// Stores an uploaded file. `NotFound` if the site (or the given visitor or agent) does not
    /// exist; a duplicate `public_id` is `Conflict { field: "public_id" }`.
    async fn create_attachment(&self, attachment: NewAttachment) -> Result<Attachment>;

    /// The attachment with this public id, without its bytes.
    async fn attachment(&self, public_id: &str) -> Result<Option<Attachment>>;

    /// The bytes of the attachment with this public id.
    async fn attachment_data(&self, public_id: &str) -> Result<Option<Vec<u8>>>;

    /// Records that a message carries the attachment (the first time only), so the sweep of
    /// unsent uploads keeps it. Called before the message is stored: a crash in between keeps
    /// a file, never loses one a message names.
    async fn mark_attachment_sent(&self, public_id: &str, at: i64) -> Result<()>;

    /// Deletes the uploads no message carries that were made before `created_before`; returns
    /// how many.
    async fn delete_unsent_attachments(&self, created_before: i64) -> Result<u64>;

    /// The bytes of files stored for a site, and of those one of its visitors uploaded.
    async fn attachment_usage(&self, site_id: SiteId, visitor_id: VisitorId) -> Result<(i64, i64)>;

    /// Stores the visitor's rating of a conversation, replacing an earlier one. `NotFound` if
    /// the conversation does not exist; the database refuses a score outside 1 to 5.
    async fn rate_conversation(&self, rating: Rating) -> Result<()>;

    /// The conversation's rating, if the visitor gave one.
    async fn rating(&self, conversation_id: ConversationId) -> Result<Option<Rating>>;

    /// Stores a canned reply. `NotFound` if the site (or the given agent) does not exist.
    async fn create_canned_reply(&self, reply: NewCannedReply) -> Result<CannedReply>;

    /// The canned replies an agent may use on `site_ids`: each site's shared ones and the
    /// agent's own, ordered by shortcut (ties: id).
    async fn canned_replies(
        &self,
        site_ids: &[SiteId],
        agent_id: AgentId,
    ) -> Result<Vec<CannedReply>>;

    /// The canned reply with this id.
    async fn canned_reply(&self, id: CannedReplyId) -> Result<Option<CannedReply>>;

    /// Deletes a canned reply; deleting one that does not exist is not an error.
    async fn delete_canned_reply(&self, id: CannedReplyId) -> Result<()>;

    /// The value stored under `key`; when there is none, stores `generate()` and returns it.
    /// Safe when several processes start at once: `generate` may run in more than one of them,
    /// but only one value is stored and every caller gets that one.
    async fn secret(
        &self,
        key: &str,
        generate: &(dyn Fn() -> String + Send + Sync),
    ) -> Result<String>;

    /// Stores a ban. `NotFound` if the site (or the given visitor) does not exist.
    async fn create_ban(&self, ban: NewBan) -> Result<Ban>;

    /// The site's bans that still apply at `now` (no expiry, or expiring after `now`), in id
    /// order. Matching them against a visitor or address is the caller's job.
    async fn active_bans(&self, site_id: SiteId, now: UnixMillis) -> Result<Vec<Ban>>;

    /// Lifts a ban; one that does not exist is not an error.
    async fn delete_ban(&self, id: BanId) -> Result<()>;

    /// Data retention: deletes every conversation last updated before `cutoff` (with its
    /// messages, notes, tags and rating), and the leave-messages and files older than it, a
    /// thousand rows per statement so other writers are not held up. Returns how many
    /// conversations went.
    async fn delete_history_before(&self, cutoff: UnixMillis) -> Result<u64>;

    /// Stores a message's translation (or where getting it stands), replacing what was
    /// stored for that message. `NotFound` if the message does not exist.
    async fn save_message_translation(&self, translation: &MessageTranslation) -> Result<()>;

    /// The translations stored for `message_ids`, in message id order.
    async fn message_translations(
        &self,
        message_ids: &[MessageId],
    ) -> Result<Vec<MessageTranslation>>;

    /// A translation made before for `key`.
    async fn cached_translation(&self, key: &TranslationKey) -> Result<Option<String>>;

    /// Keeps a translation for `key` (one already kept stays as it is).
    async fn cache_translation(
        &self,
        key: &TranslationKey,
        translation: &str,
        now: UnixMillis,
    ) -> Result<()>;

    /// Counts `chars` more characters sent to the provider for `site_id` on `day` (days since
    /// 1970-01-01, UTC), unless that would take the day's count over `budget`: returns whether
    /// they were counted (and so may be sent). Safe under concurrent callers: the budget is
    /// never overdrawn.
    async fn spend_translation_chars(
        &self,
        site_id: SiteId,
        day: i64,
        chars: i64,
        budget: i64,
    ) -> Result<bool>;

    /// Characters counted for `site_id` on `day` so far.
    async fn translation_chars(&self, site_id: SiteId, day: i64) -> Result<i64>;

    /// Stores a new API token. `NotFound` if the agent does not exist.
    async fn create_api_token(&self, token: NewApiToken) -> Result<ApiToken>;

    /// The agent's API tokens, newest first.
    async fn api_tokens(&self, agent_id: AgentId) -> Result<Vec<ApiToken>>;

    /// Revokes the agent's token `id`; `NotFound` if the agent has no such token.
    async fn delete_api_token(&self, agent_id: AgentId, id: i64) -> Result<()>;

    /// The enabled agent whose token hashes to `token_hash`, noting the use at `now` (at most
    /// once a minute per token, so API traffic does not turn into writes).
    async fn api_token_agent(&self, token_hash: &str, now: UnixMillis) -> Result<Option<Agent>>;

    /// Adds a webhook for `events` (each a word such as `message.created`).
    async fn create_webhook(
        &self,
        url: &str,
        secret: &str,
        events: &[&str],
        now: UnixMillis,
    ) -> Result<Webhook>;

    /// Every webhook, in id order.
    async fn webhooks(&self) -> Result<Vec<Webhook>>;

    /// Removes a webhook and its delivery log; one that does not exist is not an error.
    async fn delete_webhook(&self, id: i64) -> Result<()>;

    /// Records `event` with its JSON `payload` as a pending delivery to every webhook that
    /// wants it, due at once; returns how many deliveries that made.
    async fn enqueue_webhook_deliveries(
        &self,
        event: &str,
        payload: &str,
        now: UnixMillis,
    ) -> Result<u64>;

    /// Takes up to `limit` pending deliveries due at `now` (oldest first) for this sender:
    /// their `next_attempt_at` becomes `lease_until`, so no other sender (node) takes them
    /// meanwhile. If the sender dies, they fall due again when the lease runs out.
    async fn claim_webhook_deliveries(
        &self,
        now: UnixMillis,
        lease_until: UnixMillis,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>>;

    /// Records how an attempt ended (one more attempt counted).
    async fn record_webhook_attempt(&self, id: i64, attempt: &DeliveryAttempt) -> Result<()>;

    /// The webhook's newest `limit` deliveries, newest first: its delivery log.
    async fn webhook_deliveries(&self, webhook_id: i64, limit: u32)
    -> Result<Vec<WebhookDelivery>>;

    /// Appends an event to the durable log and returns it with its id. Ids grow and become
    /// visible in id order across processes, so [`Store::events_after`] from the last id a
    /// reader saw never skips one. `NotFound` if the site or conversation does not exist.
    async fn append_event(&self, event: NewEvent) -> Result<Event>;

    /// Up to `limit` events of `site_ids` with `id > after_id`, ascending by id.
    async fn events_after(
        &self,
        site_ids: &[SiteId],
        after_id: EventId,
        limit: u32,
    ) -> Result<Vec<Event>>;

    /// Creates a team of agents on a site. `NotFound` if the site does not exist.
    async fn create_team(&self, site_id: SiteId, name: &str) -> Result<Team>;

    /// Adds an agent to a team (again: no change).
    async fn add_team_member(&self, team_id: TeamId, agent_id: AgentId) -> Result<()>;

    /// Takes an agent out of a team (not a member: no change).
    async fn remove_team_member(&self, team_id: TeamId, agent_id: AgentId) -> Result<()>;

    /// Deletes a team; its conversations go back to every agent of the site. `NotFound` if
    /// there is no such team.
    async fn delete_team(&self, team_id: TeamId) -> Result<()>;

    /// The teams of `site_ids`, by id.
    async fn site_teams(&self, site_ids: &[SiteId]) -> Result<Vec<Team>>;

    /// The agents of a team, by id.
    async fn team_members(&self, team_id: TeamId) -> Result<Vec<AgentId>>;

    /// Routes the conversation to a team (`None`: any agent of its site). `NotFound` if the
    /// conversation does not exist.
    async fn set_conversation_team(&self, id: ConversationId, team: Option<TeamId>) -> Result<()>;

    /// Turns translation on or off for one conversation. `NotFound` if it does not exist.
    async fn set_conversation_translating(&self, id: ConversationId, on: bool) -> Result<()>;

    /// Replaces the conversation's tags with `tags` (already normalised by the caller; repeats
    /// are stored once). `NotFound` if the conversation does not exist.
    async fn set_conversation_tags(&self, id: ConversationId, tags: &[String]) -> Result<()>;

    /// The tags of the conversations `ids`, as `(conversation, tag)` ordered by conversation,
    /// then tag.
    async fn conversation_tags(
        &self,
        ids: &[ConversationId],
    ) -> Result<Vec<(ConversationId, String)>>;

    /// The events of kind `kind` about one conversation, oldest first: its notes, say.
    async fn conversation_events(
        &self,
        conversation_id: ConversationId,
        kind: &str,
    ) -> Result<Vec<Event>>;

    /// The highest event id of `site_ids`, or 0 when they have none: where a new console starts.
    async fn last_event_id(&self, site_ids: &[SiteId]) -> Result<EventId>;
}

/// How long a request waits for a connection to PostgreSQL or MySQL/MariaDB before it fails
/// with [`Error::is_unreachable`] (sqlx waits 30 s). While the database is unreachable the pool
/// keeps trying to connect for this long, and a client waiting for its ack is better told to
/// retry within seconds than left waiting; it is also how long `kefu serve` waits for the
/// database when it starts.
pub(crate) const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Connects to the database `url` names, applies pending migrations, and returns the store.
///
/// The backend comes from the scheme. For SQLite the file is created if missing, but its
/// directory must exist ([`Error::SqliteDirMissing`] otherwise): a mistyped path must not start a
/// new empty database somewhere unexpected. Errors print as one line without the password.
pub async fn connect(url: &DatabaseUrl) -> Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match url.backend() {
        Backend::Sqlite => Arc::new(sqlite::SqliteStore::connect(url).await?),
        Backend::Postgres => Arc::new(postgres::PostgresStore::connect(url).await?),
        Backend::MySql => Arc::new(mysql::MySqlStore::connect(url).await?),
    };
    tracing::info!(database = %url, backend = %store.backend(), "database ready");
    Ok(store)
}

/// Opens a SQLite database as [`connect`] does, with its size held to `limit` (see
/// [`PageLimit`]): for tests of a full disk. Any other URL is [`Error::UnknownScheme`].
pub async fn connect_sqlite_limited(url: &DatabaseUrl, limit: PageLimit) -> Result<Arc<dyn Store>> {
    if url.backend() != Backend::Sqlite {
        return Err(Error::UnknownScheme(url.scheme().to_owned()));
    }
    Ok(Arc::new(
        sqlite::SqliteStore::connect_limited(url, Some(limit)).await?,
    ))
}

/// Opens the SQLite file at `path` to read only, as it is (never created, migrated or switched
/// to WAL, nothing written beside it), after checking it is whole and a Kefu database at this
/// version's schema: [`Error::NotSqlite`], [`Error::Damaged`], [`Error::NotKefu`] or
/// [`Error::OtherSchema`] otherwise. For reading a backup file.
pub async fn open_read_only(path: &std::path::Path) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(sqlite::SqliteStore::open_read_only(path).await?))
}

/// Makes the SQLite file at `path`, which nothing else has open, one self-contained file:
/// stores `settings` (key, value) in it, checkpoints its write-ahead log into it and switches
/// it to rollback-journal mode, so no `-wal`/`-shm` file stays or comes back beside it. For
/// finishing a backup file.
pub async fn seal_sqlite_file(path: &std::path::Path, settings: &[(&str, &str)]) -> Result<()> {
    sqlite::SqliteStore::seal(path, settings).await
}

/// How long [`check`] waits for a database server.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Tries `url` once and quickly, as a "test connection" button does: one connection, no
/// retries, [`CHECK_TIMEOUT`] at most, then a table made and dropped again, so a user who may
/// connect but not create tables is found out before anything is set up. SQLite is simply
/// opened. The error's [`Error::connect_problem`] tells the usual mistakes apart.
pub async fn check(url: &DatabaseUrl) -> Result<()> {
    use sqlx::Connection;
    const PROBE: [&str; 2] = [
        "CREATE TABLE kefu_setup_probe (id INTEGER)",
        "DROP TABLE kefu_setup_probe",
    ];
    let connect_error = |source| Error::Connect {
        url: url.redacted().to_owned(),
        source,
    };
    let attempt = async {
        match url.backend() {
            Backend::Sqlite => {
                sqlite::SqliteStore::connect(url).await?;
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(url.expose_secret())
                    .await
                    .map_err(connect_error)?;
                for statement in PROBE {
                    sqlx::raw_sql(statement).execute(&mut conn).await?;
                }
            }
            Backend::MySql => {
                let mut conn = sqlx::MySqlConnection::connect(url.expose_secret())
                    .await
                    .map_err(connect_error)?;
                for statement in PROBE {
                    sqlx::raw_sql(statement).execute(&mut conn).await?;
                }
            }
        }
        Ok(())
    };
    tokio::time::timeout(CHECK_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err(connect_error(sqlx::Error::PoolTimedOut)))
}

/// The sentinel cursor that sorts after every real row, so the first page needs no separate query.
const START: (i64, i64) = (i64::MAX, i64::MAX);

/// How finely [`Store::api_token_agent`] records a token's last use: a busy integration costs
/// one write a minute, not one per request.
const TOKEN_USE_STEP_MS: i64 = 60_000;

/// At most this many conversations are returned by [`Store::visitor_conversations`].
const VISITOR_CONVERSATIONS: i64 = 50;

/// Appends ` IN (?, ?, …)` binding `ids`, for the backends without array parameters. An empty
/// list would be a syntax error: callers answer it without a query.
fn push_id_list<DB>(query: &mut sqlx::QueryBuilder<DB>, ids: &[i64])
where
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query.push(" IN (");
    let mut list = query.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    list.push_unseparated(")");
}

/// Appends the conditions of `filter` on the conversation aliased `c`, starting with ` WHERE`;
/// `created` is the column the date range applies to (`c.created_at`, or a message's). The
/// caller answers an empty site list without a query.
fn push_history_filter<DB>(
    query: &mut sqlx::QueryBuilder<DB>,
    filter: &HistoryFilter,
    created: &str,
) where
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query.push(" WHERE c.site_id");
    push_id_list(query, &filter.sites);
    if let Some(agent) = filter.agent {
        query.push(" AND c.assignee_id = ").push_bind(agent);
    }
    if let Some(visitor) = filter.visitor {
        query.push(" AND c.visitor_id = ").push_bind(visitor);
    }
    if let Some(since) = filter.since {
        query.push(format!(" AND {created} >= ")).push_bind(since);
    }
    if let Some(until) = filter.until {
        query.push(format!(" AND {created} < ")).push_bind(until);
    }
    if let Some(status) = filter.status {
        query
            .push(" AND c.status = ")
            .push_bind(status.as_str().to_owned());
    }
    if let Some(tag) = &filter.tag {
        query
            .push(" AND EXISTS (SELECT 1 FROM conversation_tags t WHERE t.conversation_id = c.id AND t.tag = ")
            .push_bind(tag.clone())
            .push(")");
    }
    if let Some(score) = filter.rating {
        query
            .push(" AND EXISTS (SELECT 1 FROM ratings r WHERE r.conversation_id = c.id AND r.score = ")
            .push_bind(i64::from(score))
            .push(")");
    }
}

/// The query behind [`Store::leave_messages_page`], the same on every backend.
fn leave_messages_query<DB>(
    site_ids: &[SiteId],
    status: Option<LeaveMessageStatus>,
    after: Option<LeaveMessageCursor>,
    limit: u32,
) -> sqlx::QueryBuilder<DB>
where
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let (created_at, id) = after.map_or(START, |c| (c.created_at, c.id));
    let mut query = sqlx::QueryBuilder::new(concat!(
        "SELECT ",
        model::leave_message_columns!(),
        " FROM leave_messages WHERE site_id"
    ));
    push_id_list(&mut query, site_ids);
    if let Some(status) = status {
        query
            .push(" AND status = ")
            .push_bind(status.as_str().to_owned());
    }
    query
        .push(" AND (created_at, id) < (")
        .push_bind(created_at)
        .push(", ")
        .push_bind(id)
        .push(") ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(limit_param(limit));
    query
}

/// The query behind [`Store::conversation_stats`], the same on every backend.
fn conversation_stats_query<DB>(
    site_ids: &[SiteId],
    since: UnixMillis,
    until: UnixMillis,
) -> sqlx::QueryBuilder<DB>
where
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut query = sqlx::QueryBuilder::new(
        "SELECT c.id, c.created_at, \
         (SELECT MIN(m.created_at) FROM messages m \
          WHERE m.conversation_id = c.id AND m.author = 'agent') AS first_reply_at, \
         CASE WHEN c.status = 'resolved' THEN c.updated_at END AS resolved_at, \
         c.assignee_id, \
         (SELECT r.score FROM ratings r WHERE r.conversation_id = c.id) AS rating \
         FROM conversations c WHERE c.site_id",
    );
    push_id_list(&mut query, site_ids);
    query
        .push(" AND c.created_at >= ")
        .push_bind(since)
        .push(" AND c.created_at < ")
        .push_bind(until)
        .push(" ORDER BY c.id");
    query
}

/// The query behind [`Store::history`], the same on every backend.
fn history_query<DB>(
    filter: &HistoryFilter,
    after: Option<ConversationCursor>,
    limit: u32,
) -> sqlx::QueryBuilder<DB>
where
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let (updated_at, id) = after.map_or(START, |c| (c.updated_at, c.id));
    let mut query = sqlx::QueryBuilder::new(concat!(
        "SELECT ",
        model::conversation_columns!(),
        " FROM conversations c"
    ));
    push_history_filter(&mut query, filter, "c.created_at");
    query
        .push(" AND (c.updated_at, c.id) < (")
        .push_bind(updated_at)
        .push(", ")
        .push_bind(id)
        .push(") ORDER BY c.updated_at DESC, c.id DESC LIMIT ")
        .push_bind(limit_param(limit));
    query
}

/// How many message ids a windowed search scans, newest first, before it asks the index.
///
/// PostgreSQL's GIN and InnoDB's FULLTEXT return *every* match of a query, which the database
/// then fetches and sorts to find the newest page: fast for rare words, hundreds of
/// milliseconds (seconds, on InnoDB) for a word in a tenth of a million messages. Scanning the
/// newest rows instead finds a common word's page at once and costs little. So a search on
/// those backends scans the newest 2,000 ids, then the 20,000 before them, and only then asks
/// the index for the rest — by which point the word is rare (under one message in a thousand),
/// and the index is fast. The result is the same as one query's, in the same order.
const SEARCH_WINDOWS: [i64; 2] = [2_000, 20_000];

/// The id ranges a windowed search visits in order, as `(below, floor)`: ids in
/// `floor..below`, scanned; the last range has no floor and is answered by the index.
fn search_ranges(upper: i64) -> [(i64, Option<i64>); 3] {
    let first = upper.saturating_sub(SEARCH_WINDOWS[0]);
    let second = first.saturating_sub(SEARCH_WINDOWS[1]);
    [(upper, Some(first)), (first, Some(second)), (second, None)]
}

/// The query behind [`Store::search_messages`]: the ids of the newest matching messages of the
/// conversations `filter` selects with ids in `floor..below`, joined back to their rows.
/// `source` joins the backend's index to messages `m` and conversations `c`, `id` is the column
/// to order and page by (the index's own, where ordering by it lets the index stop early), and
/// `push_match` appends the match.
fn message_search_query<DB>(
    filter: &HistoryFilter,
    (below, floor): (MessageId, Option<MessageId>),
    limit: u32,
    (source, id): (&str, &str),
    push_match: impl FnOnce(&mut sqlx::QueryBuilder<DB>),
) -> sqlx::QueryBuilder<DB>
where
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut query = sqlx::QueryBuilder::new(format!(
        "SELECT {} FROM messages JOIN (SELECT {id} AS hit FROM {source}",
        model::message_columns!()
    ));
    push_history_filter(&mut query, filter, "m.created_at");
    query.push(" AND ");
    push_match(&mut query);
    query.push(format!(" AND {id} < ")).push_bind(below);
    if let Some(floor) = floor {
        query.push(format!(" AND {id} >= ")).push_bind(floor);
    }
    query
        .push(format!(" ORDER BY {id} DESC LIMIT "))
        .push_bind(limit_param(limit))
        .push(") h ON h.hit = messages.id ORDER BY messages.id DESC");
    query
}

/// The query behind [`Store::search_leave_messages`], built like [`message_search_query`]
/// over leave-messages `l`.
fn leave_message_search_query<DB>(
    site_ids: &[SiteId],
    before: Option<LeaveMessageId>,
    limit: u32,
    (source, id): (&str, &str),
    push_match: impl FnOnce(&mut sqlx::QueryBuilder<DB>),
) -> sqlx::QueryBuilder<DB>
where
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut query = sqlx::QueryBuilder::new(format!(
        "SELECT {} FROM leave_messages JOIN (SELECT {id} AS hit FROM {source} WHERE l.site_id",
        model::leave_message_columns!()
    ));
    push_id_list(&mut query, site_ids);
    query.push(" AND ");
    push_match(&mut query);
    query
        .push(format!(" AND {id} < "))
        .push_bind(before.unwrap_or(i64::MAX))
        .push(format!(" ORDER BY {id} DESC LIMIT "))
        .push_bind(limit_param(limit))
        .push(") h ON h.hit = leave_messages.id ORDER BY leave_messages.id DESC");
    query
}

/// The text a leave-message is found by: who left it, how to reach them, and what they wrote.
fn leave_message_search_text(name: Option<&str>, contact: &str, body: &str) -> String {
    format!("{} {contact} {body}", name.unwrap_or_default())
}

/// The translations made of `messages` (all of one conversation), as the frames clients get
/// beside them. Pending and failed ones are left out: clients hear of those live only.
pub async fn made_translations(
    store: &dyn Store,
    messages: &[Message],
) -> Result<Vec<protocol::Translation>> {
    let ids: Vec<MessageId> = messages.iter().map(|m| m.id).collect();
    let made = store.message_translations(&ids).await?;
    Ok(made
        .into_iter()
        .filter(|t| t.state == TranslationState::Done)
        .filter_map(|t| {
            let message = messages.iter().find(|m| m.id == t.message_id)?;
            Some(protocol::Translation {
                conversation_id: protocol::ConversationId(message.conversation_id),
                seq: message.seq,
                source_language: t.source_language,
                language: t.target_language,
                text: t.text,
                unavailable: None,
            })
        })
        .collect())
}

/// The text a translated message is found by: what was written and its translation, so a
/// search in either language finds it.
fn translated_search_text(body: &str, translation: &str) -> String {
    format!("{body}\n{translation}")
}

/// A table whose rows search finds, and what its rows written before search existed need.
#[derive(Debug, Clone, Copy)]
enum Indexed {
    Messages,
    LeaveMessages,
}

impl Indexed {
    /// Both, in the order they are back-filled.
    const ALL: [Indexed; 2] = [Indexed::Messages, Indexed::LeaveMessages];

    /// The table's name: a fixed identifier, so formatting it into SQL (`AssertSqlSafe`) is safe.
    fn table(self) -> &'static str {
        match self {
            Indexed::Messages => "messages",
            Indexed::LeaveMessages => "leave_messages",
        }
    }

    /// The settings key holding the highest id not yet indexed (set by `0009_search`; gone
    /// when every row is).
    fn backfill_key(self) -> &'static str {
        match self {
            Indexed::Messages => "search_backfill_messages",
            Indexed::LeaveMessages => "search_backfill_leave_messages",
        }
    }

    /// The columns [`Indexed::text`] takes, the same four on every backend and table.
    fn text_columns(self) -> &'static str {
        match self {
            Indexed::Messages => "id, '', '', body",
            Indexed::LeaveMessages => "id, COALESCE(name, ''), contact, body",
        }
    }

    /// The text a row is found by, from the [`Indexed::text_columns`] of its row.
    fn text(self, (name, contact, body): (&str, &str, &str)) -> String {
        match self {
            Indexed::Messages => body.to_owned(),
            Indexed::LeaveMessages => leave_message_search_text(Some(name), contact, body),
        }
    }
}

/// Rows indexed per batch when indexing rows stored before search existed, newest first, so the
/// marker can move down after each batch and an interrupted start resumes where it stopped.
const BACKFILL_BATCH: i64 = 500;

/// One row to index: id, then the [`Indexed::text_columns`].
type BackfillRow = (i64, String, String, String);

/// `limit` as the 64-bit integer every backend binds for `LIMIT`.
fn limit_param(limit: u32) -> i64 {
    i64::from(limit)
}
