//! What the store can do, one capability trait per kind of data (as atuin's database trait is
//! one screen), and [`Store`], which is all of them: the server holds an `Arc<dyn Store>` and
//! calls any capability's methods on it.
//!
//! Every trait is object-safe and `Send + Sync`. Methods that look a row up return `Ok(None)`
//! when it does not exist; methods that need a referenced row (a conversation, a site …) fail
//! with [`Error::NotFound`] when it is missing. Limits of `0` return no rows.

use async_trait::async_trait;

use crate::{
    Agent, AgentId, ApiToken, Appended, AppendedNew, Attachment, Backend, Ban, BanId, CannedReply,
    CannedReplyId, Conversation, ConversationCursor, ConversationId, ConversationStats,
    ConversationStatus, DeliveryAttempt, Event, EventSeq, HistoryFilter, LeaveMessage,
    LeaveMessageCursor, LeaveMessageId, LeaveMessageNote, LeaveMessageStatus, Message, MessageId,
    MessageTranslation, NewAgent, NewApiToken, NewAttachment, NewBan, NewCannedReply, NewEvent,
    NewLeaveMessage, NewLeaveMessageNote, NewMessage, NewSite, Rating, Result, Role, Seq, Site,
    SiteId, Team, TeamId, TranslationKey, UnixMillis, Visitor, VisitorAttributes, VisitorId,
    Webhook, WebhookDelivery, copy, search,
};

/// Everything the server persists, independent of the database behind it.
///
/// Object-safe and `Send + Sync`, so it is shared as `Arc<dyn Store>`. Methods that look a row up
/// return `Ok(None)` when it does not exist; methods that need a referenced row (a conversation, a
/// site …) fail with [`Error::NotFound`] when it is missing. Limits of `0` return no rows.
pub trait Store:
    Database
    + Copying
    + Sites
    + Agents
    + Credentials
    + Teams
    + Visitors
    + Conversations
    + Assignment
    + Messages
    + Transcript
    + LeaveMessages
    + History
    + Search
    + Attachments
    + CannedReplies
    + Translations
    + Webhooks
    + Events
{
}

impl<T> Store for T where
    T: Database
        + Copying
        + Sites
        + Agents
        + Credentials
        + Teams
        + Visitors
        + Conversations
        + Assignment
        + Messages
        + Transcript
        + LeaveMessages
        + History
        + Search
        + Attachments
        + CannedReplies
        + Translations
        + Webhooks
        + Events
{
}

/// The database itself: which one, whether it answers, its schema, settings kept in it, closing it.
#[async_trait]
pub trait Database: Send + Sync + 'static {
    /// Which database this store talks to (for logs and `/readyz`).
    fn backend(&self) -> Backend;

    /// Runs a trivial query, proving the database answers and its writer runs (used by
    /// `/readyz`).
    async fn ping(&self) -> Result<()>;

    /// The newest schema migration applied (`connect` applies this version's).
    async fn schema_version(&self) -> Result<i64>;

    /// The value stored under `key`; when there is none, stores `generate()` and returns it.
    /// Safe when several processes start at once: `generate` may run in more than one of them,
    /// but only one value is stored and every caller gets that one.
    async fn secret(
        &self,
        key: &str,
        generate: &(dyn Fn() -> String + Send + Sync),
    ) -> Result<String>;

    /// Closes every connection, waiting for those in use to come back: a SQLite file is left
    /// whole, its write-ahead log checkpointed and removed. Nothing works on the store after.
    async fn close(&self);
}

/// Copying a whole database to another one (`kefu migrate-to`, `kefu backup`); see [`crate::copy`].
#[async_trait]
pub trait Copying: Send + Sync + 'static {
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
}

/// The websites that embed the widget.
#[async_trait]
pub trait Sites: Send + Sync + 'static {
    /// Adds a site. A duplicate public key is `Conflict { field: "public_key" }`.
    async fn create_site(&self, site: NewSite) -> Result<Site>;

    /// The site whose widget uses `public_key`.
    async fn site_by_key(&self, public_key: &str) -> Result<Option<Site>>;

    /// The site with this id.
    async fn site(&self, id: SiteId) -> Result<Option<Site>>;

    /// Every site, in id order (for administrators).
    async fn all_sites(&self) -> Result<Vec<Site>>;

    /// Replaces a site's name, allowed origins and widget settings; returns it as it is
    /// afterwards. Its key never changes (pages embed it). `NotFound` if there is no such site.
    async fn update_site(
        &self,
        id: SiteId,
        name: &str,
        allowed_origins: &[String],
        widget_settings: &serde_json::Value,
    ) -> Result<Site>;
}

/// The people who answer: their accounts and which sites they work on.
#[async_trait]
pub trait Agents: Send + Sync + 'static {
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

    /// Replaces the agent's password hash and ends every session of theirs, in one transaction:
    /// a new password signs the agent out everywhere. `NotFound` if there is no such agent.
    async fn set_agent_password(&self, id: AgentId, password_hash: &str) -> Result<()>;
}

/// Proof of who an agent is: console sessions and API tokens.
#[async_trait]
pub trait Credentials: Send + Sync + 'static {
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

    /// Stores a new API token. `NotFound` if the agent does not exist.
    async fn create_api_token(&self, token: NewApiToken) -> Result<ApiToken>;

    /// The agent's API tokens, newest first.
    async fn api_tokens(&self, agent_id: AgentId) -> Result<Vec<ApiToken>>;

    /// Revokes the agent's token `id`; `NotFound` if the agent has no such token.
    async fn delete_api_token(&self, agent_id: AgentId, id: i64) -> Result<()>;

    /// The enabled agent whose token hashes to `token_hash`, noting the use at `now` (at most
    /// once a minute per token, so API traffic does not turn into writes).
    async fn api_token_agent(&self, token_hash: &str, now: UnixMillis) -> Result<Option<Agent>>;
}

/// Groups of agents on a site that conversations can be given to.
#[async_trait]
pub trait Teams: Send + Sync + 'static {
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
}

/// The people on the sites, and the bans that keep some of them out.
#[async_trait]
pub trait Visitors: Send + Sync + 'static {
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

    /// Stores a ban. `NotFound` if the site (or the given visitor) does not exist.
    async fn create_ban(&self, ban: NewBan) -> Result<Ban>;

    /// The site's bans that still apply at `now` (no expiry, or expiring after `now`), in id
    /// order. Matching them against a visitor or address is the caller's job.
    async fn active_bans(&self, site_id: SiteId, now: UnixMillis) -> Result<Vec<Ban>>;

    /// Lifts a ban; one that does not exist is not an error.
    async fn delete_ban(&self, id: BanId) -> Result<()>;
}

/// Conversations and their state: status, snoozes, team, translation, tags, rating.
#[async_trait]
pub trait Conversations: Send + Sync + 'static {
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
    /// [`set_conversation_status`](Conversations::set_conversation_status) otherwise. `NotFound` if it
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

    /// Up to `limit` of the site's conversations, most recently updated first (ties: higher id
    /// first), strictly after `after` — the cursor of the previous page's last row.
    async fn conversations_page(
        &self,
        site_id: SiteId,
        after: Option<ConversationCursor>,
        limit: u32,
    ) -> Result<Vec<Conversation>>;

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

    /// Stores the visitor's rating of a conversation, replacing an earlier one. `NotFound` if
    /// the conversation does not exist; the database refuses a score outside 1 to 5.
    async fn rate_conversation(&self, rating: Rating) -> Result<()>;

    /// The conversation's rating, if the visitor gave one.
    async fn rating(&self, conversation_id: ConversationId) -> Result<Option<Rating>>;
}

/// Who answers which conversation: assignees, loads and the round-robin queue.
#[async_trait]
pub trait Assignment: Send + Sync + 'static {
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
    /// `open` conversations (counted as [`Assignment::agent_loads`] counts them), and records
    /// `turn_ms` as the agent's round-robin turn (see [`Assignment::assignment_turns`]); `false`, with
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

    /// The `turn_ms` of each of `agent_ids`' latest [`Assignment::assign_within_capacity`] (0: never),
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
}

/// The messages of a conversation: stored once, in order, with gap-free sequence numbers.
#[async_trait]
pub trait Messages: Send + Sync + 'static {
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
    /// conversation (see [`Conversations::open_conversation`]), or to a new one started for it.
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
    /// messages), without [`Messages::append_message`]'s resend detection — a client id already in
    /// the conversation fails the whole batch with `Conflict { field: "client_id" }`.
    /// At most 1,000 messages per call (the databases' limits on bound parameters). Returns how
    /// many were stored; `NotFound` if the conversation does not exist.
    async fn import_messages(
        &self,
        conversation_id: ConversationId,
        messages: &[NewMessage],
    ) -> Result<u64>;
}

/// Reading a conversation's messages back, in sequence order: the gap a reconnecting client
/// missed, and a transcript paged backwards.
#[async_trait]
pub trait Transcript: Send + Sync + 'static {
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
}

/// Messages left while no agent was online, and the notes agents add to them.
#[async_trait]
pub trait LeaveMessages: Send + Sync + 'static {
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
}

/// Looking back: the history list, report figures and data retention.
#[async_trait]
pub trait History: Send + Sync + 'static {
    /// Up to `limit` conversations `filter` selects, most recently updated first (ties: higher
    /// id first), strictly after `after`: the history list when nothing is searched.
    async fn history(
        &self,
        filter: &HistoryFilter,
        after: Option<ConversationCursor>,
        limit: u32,
    ) -> Result<Vec<Conversation>>;

    /// The facts reports need about each conversation of `site_ids` started in
    /// `since..until`, by id.
    async fn conversation_stats(
        &self,
        site_ids: &[SiteId],
        since: UnixMillis,
        until: UnixMillis,
    ) -> Result<Vec<ConversationStats>>;

    /// Data retention: deletes every conversation last updated before `cutoff` (with its
    /// messages, notes, tags and rating), and the leave-messages and files older than it, a
    /// thousand rows per statement so other writers are not held up. Returns how many
    /// conversations went.
    async fn delete_history_before(&self, cutoff: UnixMillis) -> Result<u64>;
}

/// Full-text search of messages and leave-messages (see [`search`]): the one capability each
/// backend writes its own way (SQLite's FTS5, PostgreSQL's `tsvector`, MySQL's `FULLTEXT`).
#[async_trait]
pub trait Search: Send + Sync + 'static {
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
}

/// Files sent in conversations.
#[async_trait]
pub trait Attachments: Send + Sync + 'static {
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
}

/// Prepared answers agents insert with a shortcut.
#[async_trait]
pub trait CannedReplies: Send + Sync + 'static {
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
}

/// Machine translations of messages, the cache of translated texts and each site's daily budget.
#[async_trait]
pub trait Translations: Send + Sync + 'static {
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
}

/// Webhooks and the queue of their deliveries.
#[async_trait]
pub trait Webhooks: Send + Sync + 'static {
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
}

/// The event log that the REST API and the console's live updates resume from.
#[async_trait]
pub trait Events: Send + Sync + 'static {
    /// Appends an event to the durable log and returns it with its id. Ids grow and become
    /// visible in id order across processes, so [`Events::events_after`] from the last id a
    /// reader saw never skips one. `NotFound` if the site or conversation does not exist.
    async fn append_event(&self, event: NewEvent) -> Result<Event>;

    /// Up to `limit` events of `site_ids` with `id > after_id`, ascending by id.
    async fn events_after(
        &self,
        site_ids: &[SiteId],
        after_id: EventSeq,
        limit: u32,
    ) -> Result<Vec<Event>>;

    /// The events of kind `kind` about one conversation, oldest first: its notes, say.
    async fn conversation_events(
        &self,
        conversation_id: ConversationId,
        kind: &str,
    ) -> Result<Vec<Event>>;

    /// The highest event id of `site_ids`, or 0 when they have none: where a new console starts.
    async fn last_event_id(&self, site_ids: &[SiteId]) -> Result<EventSeq>;
}
