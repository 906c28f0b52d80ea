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

mod capabilities;
mod checkpoint;
pub mod copy;
mod dialect;
mod error;
mod group_commit;
mod model;
mod mysql;
mod postgres;
pub mod search;
mod sql;
mod sqlite;
mod url;

use std::sync::Arc;

pub use protocol::Seq;

pub use crate::capabilities::{
    Agents, Assignment, Attachments, CannedReplies, Conversations, Copying, Credentials, Database,
    Events, History, LeaveMessages, Messages, Search, Sites, Store, Teams, Transcript,
    Translations, Visitors, Webhooks,
};
pub use crate::error::{ConnectProblem, Error, Result};
pub use crate::model::{
    Agent, AgentId, ApiToken, Appended, AppendedNew, Attachment, AttachmentId, Ban, BanId,
    CannedReply, CannedReplyId, Conversation, ConversationCursor, ConversationFacts,
    ConversationId, ConversationStats, ConversationStatus, DeliveryAttempt, DeliveryState, Event,
    EventSeq, HistoryFilter, LeaveMessage, LeaveMessageCursor, LeaveMessageId, LeaveMessageNote,
    LeaveMessageStatus, Message, MessageId, MessageTranslation, NewAgent, NewApiToken,
    NewAttachment, NewBan, NewCannedReply, NewEvent, NewLeaveMessage, NewLeaveMessageNote,
    NewMessage, NewSite, Rating, Role, Session, Site, SiteId, Team, TeamId, TranslationKey,
    TranslationState, UnixMillis, UnknownVariant, Visitor, VisitorAttributes, VisitorId, Webhook,
    WebhookDelivery, now_millis,
};
pub use crate::sqlite::PageLimit;
pub use crate::url::{Backend, DatabaseUrl, Durability};

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

/// How finely [`Credentials::api_token_agent`] records a token's last use: a busy integration costs
/// one write a minute, not one per request.
const TOKEN_USE_STEP_MS: i64 = 60_000;

/// At most this many conversations are returned by [`Conversations::visitor_conversations`].
const VISITOR_CONVERSATIONS: i64 = 50;

/// Appends ` IN (?, ?, …)` binding `ids`, for the backends without array parameters. An empty
/// list would be a syntax error: callers answer it without a query.
fn push_id_list<DB, Id>(query: &mut sqlx::QueryBuilder<DB>, ids: &[Id])
where
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Id: Copy + Into<i64>,
{
    query.push(" IN (");
    let mut list = query.separated(", ");
    for id in ids {
        list.push_bind((*id).into());
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

/// The query behind [`LeaveMessages::leave_messages_page`], the same on every backend.
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
    let (created_at, id) = after.map_or(START, |c| (c.created_at, c.id.0));
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

/// The query behind [`Search::search_messages`]: the ids of the newest matching messages of the
/// conversations `filter` selects with ids in `floor..below`, joined back to their rows.
/// `source` joins the backend's index to messages `m` and conversations `c`, `id` is the column
/// to order and page by (the index's own, where ordering by it lets the index stop early), and
/// `push_match` appends the match.
fn message_search_query<DB>(
    filter: &HistoryFilter,
    (below, floor): (i64, Option<i64>),
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

/// The query behind [`Search::search_leave_messages`], built like [`message_search_query`]
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
        .push_bind(before.map_or(i64::MAX, i64::from))
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
                conversation_id: message.conversation_id,
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
