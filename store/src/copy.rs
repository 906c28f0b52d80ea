//! Copying a whole install from one database to another (`kefu db migrate-to`): every table
//! Kefu keeps, row by row in key order, in batches that each commit together with how far the
//! copy got, so an interrupted copy continues where it stopped. Rows are read and written as
//! plain [`Value`]s, which every backend stores the same way, and checked at the end by count
//! and a checksum computed from the same values on both sides.
//!
//! What is not copied is what the target makes itself: its migration history and the lock
//! row migrations insert, and the search index (rebuilt from the copied rows on the target's
//! next start, as after an upgrade).
//!
//! The source is read through a [`Snapshot`]: one connection held in one read-only
//! transaction, so a copy (and the count and checksum it is checked against) sees the
//! database as it was at one moment, even while Kefu keeps writing to it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dialect::{Dialect, render};

/// How a column's values are read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any integer.
    Int,
    /// A boolean (an integer on SQLite).
    Bool,
    /// Text.
    Text,
    /// Bytes.
    Blob,
}

/// One column's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// Text.
    Text(String),
    /// Bytes (a file).
    Blob(Vec<u8>),
}

/// A table as the copy sees it: its name, the columns of its key (rows are copied in this
/// order) and every column with its kind.
#[derive(Debug)]
pub struct Table {
    /// The table's name.
    pub name: &'static str,
    /// Its primary key's columns: rows are copied in this order, and resumed after one.
    pub key: &'static [&'static str],
    /// Every column, in the order rows are read and written.
    pub columns: &'static [(&'static str, Kind)],
}

impl Table {
    /// The positions of the key's columns among [`Table::columns`].
    pub fn key_positions(&self) -> Vec<usize> {
        self.key
            .iter()
            .filter_map(|key| self.columns.iter().position(|(name, _)| name == key))
            .collect()
    }

    /// The key of `row`.
    pub fn key_of(&self, row: &[Value]) -> Vec<Value> {
        self.key_positions()
            .into_iter()
            .filter_map(|i| row.get(i).cloned())
            .collect()
    }
}

use Kind::{Blob, Bool, Int, Text};

/// Every table Kefu keeps, parents before the rows that refer to them.
pub const TABLES: &[Table] = &[
    Table {
        name: "sites",
        key: &["id"],
        columns: &[
            ("id", Int),
            ("public_key", Text),
            ("name", Text),
            ("allowed_origins", Text),
            ("widget_settings", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "agents",
        key: &["id"],
        columns: &[
            ("id", Int),
            ("email", Text),
            ("password_hash", Text),
            ("display_name", Text),
            ("role", Text),
            ("language", Text),
            ("max_chats", Int),
            ("disabled", Bool),
            ("created_at", Int),
            ("last_assigned_at", Int),
        ],
    },
    Table {
        name: "teams",
        key: &["id"],
        columns: &[("id", Int), ("site_id", Int), ("name", Text)],
    },
    Table {
        name: "team_members",
        key: &["team_id", "agent_id"],
        columns: &[("team_id", Int), ("agent_id", Int)],
    },
    Table {
        name: "site_agents",
        key: &["site_id", "agent_id"],
        columns: &[("site_id", Int), ("agent_id", Int)],
    },
    Table {
        name: "visitors",
        key: &["id"],
        columns: &[
            ("id", Int),
            ("site_id", Int),
            ("visitor_key", Text),
            ("name", Text),
            ("email", Text),
            ("created_at", Int),
            ("last_seen_at", Int),
            ("attributes", Text),
            ("language", Text),
        ],
    },
    Table {
        name: "conversations",
        key: &["id"],
        columns: &[
            ("id", Int),
            ("site_id", Int),
            ("visitor_id", Int),
            ("status", Text),
            ("assignee_id", Int),
            ("last_seq", Int),
            ("created_at", Int),
            ("updated_at", Int),
            ("team_id", Int),
            ("translating", Bool),
            ("snoozed_until", Int),
        ],
    },
    Table {
        name: "messages",
        key: &["id"],
        columns: &[
            ("id", Int),
            ("conversation_id", Int),
            ("seq", Int),
            ("client_id", Text),
            ("author", Text),
            ("agent_id", Int),
            ("body", Text),
            ("created_at", Int),
            ("attachment", Text),
        ],
    },
    Table {
        name: "attachments",
        key: &["id"],
        columns: &[
            ("id", Int),
            ("public_id", Text),
            ("site_id", Int),
            ("visitor_id", Int),
            ("agent_id", Int),
            ("name", Text),
            ("content_type", Text),
            ("size", Int),
            ("data", Blob),
            ("created_at", Int),
            ("sent_at", Int),
        ],
    },
    Table {
        name: "message_translations",
        key: &["message_id"],
        columns: &[
            ("message_id", Int),
            ("source_language", Text),
            ("target_language", Text),
            ("text", Text),
            ("state", Text),
            ("attempts", Int),
            ("updated_at", Int),
        ],
    },
    Table {
        name: "leave_messages",
        key: &["id"],
        columns: &[
            ("id", Int),
            ("site_id", Int),
            ("visitor_id", Int),
            ("name", Text),
            ("contact", Text),
            ("body", Text),
            ("status", Text),
            ("assignee_id", Int),
            ("created_at", Int),
        ],
    },
    Table {
        name: "leave_message_notes",
        key: &["id"],
        columns: &[
            ("id", Int),
            ("leave_message_id", Int),
            ("agent_id", Int),
            ("body", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "sessions",
        key: &["token_hash"],
        columns: &[
            ("token_hash", Text),
            ("agent_id", Int),
            ("created_at", Int),
            ("expires_at", Int),
        ],
    },
    Table {
        name: "settings",
        key: &["key"],
        columns: &[("key", Text), ("value", Text)],
    },
    Table {
        name: "bans",
        key: &["id"],
        columns: &[
            ("id", Int),
            ("site_id", Int),
            ("visitor_id", Int),
            ("ip_cidr", Text),
            ("reason", Text),
            ("expires_at", Int),
            ("created_at", Int),
        ],
    },
    Table {
        name: "events",
        key: &["id"],
        columns: &[
            ("id", Int),
            ("site_id", Int),
            ("kind", Text),
            ("conversation_id", Int),
            ("payload", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "ratings",
        key: &["conversation_id"],
        columns: &[
            ("conversation_id", Int),
            ("score", Int),
            ("comment", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "canned_replies",
        key: &["id"],
        columns: &[
            ("id", Int),
            ("site_id", Int),
            ("agent_id", Int),
            ("shortcut", Text),
            ("body", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "conversation_tags",
        key: &["conversation_id", "tag"],
        columns: &[("conversation_id", Int), ("tag", Text)],
    },
    Table {
        name: "webhooks",
        key: &["id"],
        columns: &[
            ("id", Int),
            ("url", Text),
            ("secret", Text),
            ("events", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "webhook_deliveries",
        key: &["id"],
        columns: &[
            ("id", Int),
            ("webhook_id", Int),
            ("event", Text),
            ("payload", Text),
            ("state", Text),
            ("attempts", Int),
            ("next_attempt_at", Int),
            ("last_status", Int),
            ("last_error", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "api_tokens",
        key: &["id"],
        columns: &[
            ("id", Int),
            ("agent_id", Int),
            ("name", Text),
            ("token_hash", Text),
            ("prefix", Text),
            ("created_at", Int),
            ("last_used_at", Int),
        ],
    },
    Table {
        name: "translation_cache",
        key: &[
            "text_hash",
            "source_language",
            "target_language",
            "provider",
        ],
        columns: &[
            ("text_hash", Text),
            ("source_language", Text),
            ("target_language", Text),
            ("provider", Text),
            ("translation", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "translation_usage",
        key: &["site_id", "day"],
        columns: &[("site_id", Int), ("day", Int), ("chars", Int)],
    },
];

/// Tables a migration makes and fills itself, so they are not copied (nor are SQLite's
/// full-text tables, whose names contain `_fts`).
pub const NOT_COPIED: &[&str] = &["_sqlx_migrations", "event_lock"];

/// Columns each backend fills for search in its own way; the target rebuilds them.
pub const NOT_COPIED_COLUMNS: &[(&str, &str)] = &[
    ("messages", "search"),
    ("messages", "search_text"),
    ("leave_messages", "search"),
    ("leave_messages", "search_text"),
];

/// Rows of `table` read at once: few when they may hold files.
pub fn batch(table: &Table) -> i64 {
    if table.columns.iter().any(|(_, kind)| *kind == Blob) {
        16
    } else {
        500
    }
}

/// The settings key under which the target keeps how far the copy of `table` got.
pub fn progress_key(table: &str) -> String {
    format!("{PROGRESS_PREFIX}{table}")
}

/// What the keys of the copy's progress start with (never copied themselves).
pub const PROGRESS_PREFIX: &str = "migrate_to.";

/// The settings key under which a backup file keeps what it holds (each table's rows and
/// checksum), written only once the file was checked against its source. It describes that
/// one file, so it is never copied out of it.
pub const BACKUP_MARKER: &str = "backup.complete";

/// Whether a settings row belongs to the copy or to one database's own upkeep (progress,
/// search back-filling, a backup's marker) rather than to the install.
pub fn is_local_setting(key: &str) -> bool {
    key.starts_with(PROGRESS_PREFIX) || key.starts_with("search_backfill_") || key == BACKUP_MARKER
}

/// A consistent read of a whole database for a copy: every read sees the database as it was
/// when the snapshot was opened ([`crate::Copying::copy_snapshot`]), whatever is written
/// meanwhile. It holds one connection in a read-only transaction until [`Snapshot::close`]
/// (or until dropped, when the transaction is rolled back).
#[async_trait::async_trait]
pub trait Snapshot: Send {
    /// Up to `limit` rows of `table` whose key is after `after`, in key order.
    async fn read(
        &mut self,
        table: &'static Table,
        after: Option<Vec<Value>>,
        limit: i64,
    ) -> crate::Result<Vec<Vec<Value>>>;

    /// How many rows `table` holds.
    async fn count(&mut self, table: &'static Table) -> crate::Result<i64>;

    /// Ends the read transaction and gives the connection back.
    async fn close(self: Box<Self>) -> crate::Result<()>;
}

/// A [`Snapshot`] on any backend: a transaction the backend began as a consistent read.
pub(crate) struct TxSnapshot<DB: sqlx::Database> {
    /// The read transaction; its connection is not shared with anything else.
    tx: sqlx::Transaction<'static, DB>,
    /// The backend's SQL.
    dialect: Dialect,
}

impl<DB: sqlx::Database> TxSnapshot<DB> {
    /// Reads through `tx`, which the caller began as a consistent, read-only transaction.
    pub(crate) fn new(tx: sqlx::Transaction<'static, DB>, dialect: Dialect) -> Self {
        TxSnapshot { tx, dialect }
    }
}

#[async_trait::async_trait]
impl<DB> Snapshot for TxSnapshot<DB>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
    for<'t> Option<i64>: sqlx::Encode<'t, DB> + sqlx::Decode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<i32>: sqlx::Decode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<bool>: sqlx::Encode<'t, DB> + sqlx::Decode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<String>: sqlx::Encode<'t, DB> + sqlx::Decode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<Vec<u8>>: sqlx::Encode<'t, DB> + sqlx::Decode<'t, DB> + sqlx::Type<DB>,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Decode<'t, DB> + sqlx::Type<DB>,
{
    async fn read(
        &mut self,
        table: &'static Table,
        after: Option<Vec<Value>>,
        limit: i64,
    ) -> crate::Result<Vec<Vec<Value>>> {
        read::<DB>(&mut *self.tx, self.dialect, table, after, limit).await
    }

    async fn count(&mut self, table: &'static Table) -> crate::Result<i64> {
        Ok(sqlx::query_scalar(count_query(self.dialect, table))
            .fetch_one(&mut *self.tx)
            .await?)
    }

    async fn close(self: Box<Self>) -> crate::Result<()> {
        // Nothing was written: ending it either way lets the database forget the snapshot.
        self.tx.rollback().await?;
        Ok(())
    }
}

/// A count and checksum of rows. The checksum adds up a SHA-256 of each row, so it does not
/// depend on the order rows come in (databases sort text keys by their own collations).
#[derive(Default)]
pub struct Tally {
    /// Rows added.
    pub rows: u64,
    /// The sum of the rows' hashes, as two 128-bit halves (wrapping).
    sum: [u128; 2],
}

impl Tally {
    /// Adds `row`.
    pub fn add(&mut self, row: &[Value]) {
        let mut hash = Sha256::new();
        for value in row {
            match value {
                Value::Null => hash.update([0]),
                Value::Int(n) => {
                    hash.update([1]);
                    hash.update(n.to_le_bytes());
                }
                Value::Bool(b) => hash.update([2, u8::from(*b)]),
                Value::Text(text) => {
                    hash.update([3]);
                    hash.update((text.len() as u64).to_le_bytes());
                    hash.update(text.as_bytes());
                }
                Value::Blob(bytes) => {
                    hash.update([4]);
                    hash.update((bytes.len() as u64).to_le_bytes());
                    hash.update(bytes);
                }
            }
        }
        let digest = hash.finalize();
        for (half, bytes) in self.sum.iter_mut().zip(digest.chunks_exact(16)) {
            let mut part = [0u8; 16];
            part.copy_from_slice(bytes);
            *half = half.wrapping_add(u128::from_le_bytes(part));
        }
        self.rows += 1;
    }

    /// The checksum so far, in hex.
    pub fn checksum(&self) -> String {
        format!("{:032x}{:032x}", self.sum[0], self.sum[1])
    }
}

/// Reads the values of `table`'s columns from `row`. PostgreSQL's 32-bit integers are read
/// as such; every other integer as 64 bits.
pub(crate) fn read_row<R>(table: &Table, row: &R) -> crate::Result<Vec<Value>>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i32>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<bool>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let mut values = Vec::with_capacity(table.columns.len());
    for (i, (_, kind)) in table.columns.iter().enumerate() {
        let value = match kind {
            Int => match row.try_get::<Option<i64>, _>(i) {
                Ok(value) => value.map(Value::Int),
                Err(_) => row
                    .try_get::<Option<i32>, _>(i)?
                    .map(|n| Value::Int(n.into())),
            },
            Bool => row.try_get::<Option<bool>, _>(i)?.map(Value::Bool),
            Text => row.try_get::<Option<String>, _>(i)?.map(Value::Text),
            Blob => row.try_get::<Option<Vec<u8>>, _>(i)?.map(Value::Blob),
        };
        values.push(value.unwrap_or(Value::Null));
    }
    Ok(values)
}

/// Binds `value` (of a column of `kind`) as the next value of `list`.
pub(crate) fn push_value<DB>(
    list: &mut sqlx::query_builder::Separated<'_, DB, &'static str>,
    kind: Kind,
    value: Value,
) where
    DB: sqlx::Database,
    for<'t> Option<i64>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<bool>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<String>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<Vec<u8>>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    match (kind, value) {
        (_, Value::Int(n)) if kind == Bool => list.push_bind(Some(n != 0)),
        (_, Value::Int(n)) => list.push_bind(Some(n)),
        (_, Value::Bool(b)) if kind == Int => list.push_bind(Some(i64::from(b))),
        (_, Value::Bool(b)) => list.push_bind(Some(b)),
        (_, Value::Text(text)) => list.push_bind(Some(text)),
        (_, Value::Blob(bytes)) => list.push_bind(Some(bytes)),
        (Int, Value::Null) => list.push_bind(None::<i64>),
        (Bool, Value::Null) => list.push_bind(None::<bool>),
        (Text, Value::Null) => list.push_bind(None::<String>),
        (Blob, Value::Null) => list.push_bind(None::<Vec<u8>>),
    };
}

/// `SELECT <columns> FROM <table> [WHERE (<key>) > (<after>)] ORDER BY <key> LIMIT <limit>`,
/// with identifiers quoted for `dialect`.
pub(crate) fn select<DB>(
    table: &Table,
    dialect: Dialect,
    after: Option<Vec<Value>>,
    limit: i64,
) -> sqlx::QueryBuilder<DB>
where
    DB: sqlx::Database,
    for<'t> Option<i64>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<bool>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<String>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<Vec<u8>>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|(c, _)| dialect.quote(c))
        .collect();
    let key: Vec<String> = table.key.iter().map(|c| dialect.quote(c)).collect();
    let key = key.join(", ");
    let mut query = sqlx::QueryBuilder::<DB>::new(format!(
        "SELECT {} FROM {}",
        columns.join(", "),
        dialect.quote(table.name)
    ));
    if let Some(after) = after {
        query.push(format!(" WHERE ({key}) > ("));
        let mut list = query.separated(", ");
        for (value, position) in after.into_iter().zip(table.key_positions()) {
            push_value(&mut list, table.columns[position].1, value);
        }
        query.push(")");
    }
    query.push(format!(" ORDER BY {key} LIMIT "));
    query.push_bind(limit);
    query
}

/// [`Snapshot::read`] on any backend.
pub(crate) async fn read<DB>(
    conn: &mut DB::Connection,
    dialect: Dialect,
    table: &'static Table,
    after: Option<Vec<Value>>,
    limit: i64,
) -> crate::Result<Vec<Vec<Value>>>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
    for<'t> Option<i64>: sqlx::Encode<'t, DB> + sqlx::Decode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<i32>: sqlx::Decode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<bool>: sqlx::Encode<'t, DB> + sqlx::Decode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<String>: sqlx::Encode<'t, DB> + sqlx::Decode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<Vec<u8>>: sqlx::Encode<'t, DB> + sqlx::Decode<'t, DB> + sqlx::Type<DB>,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let mut query = select::<DB>(table, dialect, after, limit);
    let rows = query.build().fetch_all(conn).await?;
    rows.iter().map(|row| read_row(table, row)).collect()
}

/// The query behind [`Snapshot::count`] and [`crate::Copying::copy_count`]: how many rows
/// `table` holds.
pub(crate) fn count_query(dialect: Dialect, table: &Table) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {}",
        dialect.quote(table.name)
    ))
}

/// [`crate::Copying::copy_write`] on any backend.
pub(crate) async fn write<DB>(
    pool: &sqlx::Pool<DB>,
    dialect: Dialect,
    table: &'static Table,
    rows: Vec<Vec<Value>>,
    last: Vec<Value>,
) -> crate::Result<()>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'t> Option<i64>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<bool>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<String>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<Vec<u8>>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let quote = |name| dialect.quote(name);
    let mut tx = pool.begin().await?;
    if !rows.is_empty() {
        let columns: Vec<String> = table.columns.iter().map(|(c, _)| quote(c)).collect();
        let mut insert = sqlx::QueryBuilder::<DB>::new(format!(
            "INSERT INTO {} ({}) ",
            quote(table.name),
            columns.join(", ")
        ));
        insert.push_values(rows, |mut list, row| {
            for ((_, kind), value) in table.columns.iter().zip(row) {
                push_value(&mut list, *kind, value);
            }
        });
        insert.build().execute(&mut *tx).await?;
    }
    sqlx::query(sqlx::AssertSqlSafe(render(
        dialect,
        r#"INSERT INTO settings ("key", value) VALUES (?, ?) ON CONFLICT ("key") DO UPDATE SET value = excluded.value"#,
    )))
    .bind(progress_key(table.name))
    .bind(serde_json::to_string(&last).map_err(|e| sqlx::Error::Encode(Box::new(e)))?)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// [`crate::Copying::copy_progress`] on any backend.
pub(crate) async fn progress<DB>(
    pool: &sqlx::Pool<DB>,
    dialect: Dialect,
    table: &'static Table,
) -> crate::Result<Option<Vec<Value>>>
where
    DB: sqlx::Database,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Decode<'t, DB> + sqlx::Type<DB>,
{
    let text: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(render(
        dialect,
        r#"SELECT value FROM settings WHERE "key" = ?"#,
    )))
    .bind(progress_key(table.name))
    .fetch_optional(pool)
    .await?;
    Ok(text
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_column_is_a_column_and_the_checksum_sees_every_value() {
        for table in TABLES {
            assert_eq!(
                table.key_positions().len(),
                table.key.len(),
                "{}",
                table.name
            );
        }
        let mut one = Tally::default();
        one.add(&[Value::Int(1), Value::Text("a".into())]);
        let mut two = Tally::default();
        two.add(&[Value::Int(1), Value::Text("b".into())]);
        assert_ne!(one.checksum(), two.checksum());
        let mut split = Tally::default();
        split.add(&[Value::Text("ab".into()), Value::Text(String::new())]);
        let mut joined = Tally::default();
        joined.add(&[Value::Text("a".into()), Value::Text("b".into())]);
        assert_ne!(split.checksum(), joined.checksum(), "values are delimited");
        // The same rows in another order give the same checksum; a row twice does not.
        let (a, b) = ([Value::Int(1)], [Value::Int(2)]);
        let mut forwards = Tally::default();
        forwards.add(&a);
        forwards.add(&b);
        let mut backwards = Tally::default();
        backwards.add(&b);
        backwards.add(&a);
        assert_eq!(forwards.checksum(), backwards.checksum());
        let mut twice = Tally::default();
        twice.add(&a);
        twice.add(&a);
        assert_ne!(twice.checksum(), Tally::default().checksum());
    }
}
