//! Queries written once for every backend, as vaultwarden's `db_run!` writes its ~200 bodies
//! once: a body runs inside [`on_pool!`], which expands it for each backend's pool, and its SQL
//! goes through [`sql!`], which writes it in that backend's dialect ([`crate::dialect::render`]).
//!
//! The SQL is written in one canonical form — SQLite's and PostgreSQL's, with `?` placeholders —
//! and only these differences are rewritten, outside string literals:
//!
//! | written | PostgreSQL | MySQL/MariaDB | SQLite |
//! | --- | --- | --- | --- |
//! | `?` | `$1`, `$2` … | `?` | `?` |
//! | `"key"` (a quoted name) | `"key"` | `` `key` `` | `"key"` |
//! | `ON CONFLICT (k) DO UPDATE SET a = excluded.a` | as written | `ON DUPLICATE KEY UPDATE a = VALUES(a)` | as written |
//! | `ON CONFLICT (k) DO NOTHING` | as written | `ON DUPLICATE KEY UPDATE k = k` | as written |
//! | `… RETURNING …` at the end | as written | dropped (an insert's id is read by [`InsertId`], a row is read back) | as written |
//! | `a IS NOT DISTINCT FROM b` | as written | `a <=> b` | as written |
//! | `GREATEST(` / `LEAST(` | as written | as written | `MAX(` / `MIN(` |
//! | `FOR UPDATE` (`SKIP LOCKED`) | as written | as written | dropped (its write gate serialises writers) |
//! | `CAST(… AS BIGINT)` / `CAST(… AS TEXT)` | as written | `CAST(… AS SIGNED)` / `CAST(… AS CHAR)` | as written |
//!
//! How a transaction that writes what it read begins is [`begin_write`]. What this table cannot
//! say — full-text search, a message's sequence number taken with `UPDATE … RETURNING` — stays in
//! each backend's module. Queries
//! built at run time use sqlx's `QueryBuilder`, whose binds are numbered for each backend by
//! sqlx itself; their text is kept to plain SQL that needs no rewriting.

use sqlx::{MySqlPool, PgPool, SqlitePool};
use tokio::sync::MutexGuard;

use crate::dialect::Dialect;
use crate::group_commit::GroupCommit;
use crate::{Indexed, Result};

pub(crate) use backfill::backfill_search;

mod agents;
mod attachments;
mod backfill;
mod canned_replies;
mod conversations;
mod copying;
mod credentials;
mod database;
mod events;
mod history;
mod leave_messages;
mod sites;
mod teams;
mod transcript;
mod translations;
mod visitors;
mod webhooks;

/// A store's pool, whichever backend it is, for a body written once ([`on_pool!`]).
pub(crate) enum Pool<'a> {
    /// The embedded default.
    Sqlite(&'a SqlitePool),
    /// A PostgreSQL server.
    Postgres(&'a PgPool),
    /// A MySQL or MariaDB server.
    MySql(&'a MySqlPool),
}

/// A backend store as the bodies written once see it: its pool and its write gate.
pub(crate) trait Sql: Send + Sync + 'static {
    /// The pool every query runs on.
    fn pool(&self) -> Pool<'_>;

    /// Held around every write: SQLite's queue of writers (see `SqliteStore`), `None` on the
    /// servers, whose own locks order writers.
    fn writer(&self) -> impl Future<Output = Option<MutexGuard<'_, ()>>> + Send;

    /// Closes what the store holds beside its pool before the pool is closed: SQLite's
    /// group-commit writer; nothing on the servers.
    fn close_beside_pool(&self) -> impl Future<Output = ()> + Send;

    /// SQLite's group-commit writer, which takes appends and visitors' first contacts in
    /// batches; `None` on the servers (and on a SQLite file opened only to read).
    fn group_commit(&self) -> Option<&GroupCommit>;
}

/// Runs `$body` with `$pool` bound to the store's pool, expanded once per backend, with
/// `DIALECT` set to that backend's [`Dialect`] for the [`sql!`]s inside.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $crate::sql::Sql::pool($store) {
            $crate::sql::Pool::Sqlite($pool) => {
                #[allow(dead_code)]
                const DIALECT: $crate::dialect::Dialect = $crate::dialect::Dialect::Sqlite;
                $body
            }
            $crate::sql::Pool::Postgres($pool) => {
                #[allow(dead_code)]
                const DIALECT: $crate::dialect::Dialect = $crate::dialect::Dialect::Postgres;
                $body
            }
            $crate::sql::Pool::MySql($pool) => {
                #[allow(dead_code)]
                const DIALECT: $crate::dialect::Dialect = $crate::dialect::Dialect::MySql;
                $body
            }
        }
    };
}
pub(crate) use on_pool;

/// The canonical SQL `$text` in the dialect of the [`on_pool!`] around it, rendered once per
/// place and backend and kept for the life of the process.
macro_rules! sql {
    ($text:expr) => {{
        static RENDERED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        sqlx::AssertSqlSafe(
            RENDERED
                .get_or_init(|| $crate::dialect::render(DIALECT, $text))
                .as_str(),
        )
    }};
}
pub(crate) use sql;

/// Ends `tx` as `outcome` says: committed when it is `Ok`, rolled back here and now when it is
/// an error. Not left to the drop, which rolls back only when the connection is next used:
/// MySQL would keep the transaction's locks until then (and a `DROP DATABASE` waits for them).
pub(crate) async fn finish<DB: sqlx::Database, T>(
    tx: sqlx::Transaction<'_, DB>,
    outcome: Result<T>,
) -> Result<T> {
    match outcome {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(%rollback, "rolling back after an error failed");
            }
            Err(error)
        }
    }
}

/// The statement that begins a transaction which reads rows and then writes on what it read
/// (an assignment within capacity, a message's sequence number): SQLite takes its write lock up
/// front, so another process on the file cannot write between the read and the write; MySQL and
/// MariaDB read committed rows, so that once a row lock is held the reads see what its previous
/// holder committed (PostgreSQL's default already does).
pub(crate) fn begin_write(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "BEGIN IMMEDIATE",
        Dialect::Postgres => "BEGIN",
        // The isolation level applies to the next transaction, which starts in the same round
        // trip, so nothing else runs on the connection in between.
        Dialect::MySql => "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; START TRANSACTION",
    }
}

/// The statement that begins a consistent, read-only snapshot of the whole database for a copy
/// or a backup ([`crate::Copying::copy_snapshot`]), which writers keep running beside.
pub(crate) fn begin_snapshot(dialect: Dialect) -> &'static str {
    match dialect {
        // A deferred transaction: its snapshot is taken at its first read.
        Dialect::Sqlite => "BEGIN",
        Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        // The isolation level applies to the next transaction, which starts in the same round
        // trip.
        Dialect::MySql => {
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; \
             START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"
        }
    }
}

/// A backend's full-text index (see [`crate::search`]), written inside a body's transaction:
/// implemented by each backend's connection type in its own module (SQLite's FTS5 table,
/// PostgreSQL's `tsvector` column, MySQL's `FULLTEXT` column).
pub(crate) trait SearchIndex {
    /// Indexes `text` as the search text of row `id` of `table` (replacing what it had).
    fn index_text(
        &mut self,
        table: Indexed,
        id: i64,
        text: &str,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// Runs an `INSERT … RETURNING id` and returns the new row's id: from the `RETURNING` clause
/// where there is one, from `LAST_INSERT_ID()` on MySQL/MariaDB (which [`crate::dialect::render`] leaves without).
pub(crate) trait InsertId<'c, E> {
    /// Runs the insert on `executor`.
    fn insert_id(self, executor: E) -> impl Future<Output = Result<i64, sqlx::Error>> + Send;

    /// Runs an insert that may insert nothing (`INSERT … SELECT … WHERE`): the new row's id, or
    /// `None`. Its `RETURNING` clause must start with the id.
    fn inserted(self, executor: E)
    -> impl Future<Output = Result<Option<i64>, sqlx::Error>> + Send;
}

/// `InsertId` for a backend whose `INSERT … RETURNING id` answers with a row.
macro_rules! insert_id_returning {
    ($db:ty) => {
        impl<'q, 'c, E> InsertId<'c, E>
            for sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>
        where
            E: sqlx::Executor<'c, Database = $db> + 'c,
            'q: 'c,
        {
            async fn insert_id(self, executor: E) -> Result<i64, sqlx::Error> {
                use sqlx::Row;
                self.fetch_one(executor).await?.try_get(0)
            }

            async fn inserted(self, executor: E) -> Result<Option<i64>, sqlx::Error> {
                use sqlx::Row;
                self.fetch_optional(executor)
                    .await?
                    .map(|row| row.try_get(0))
                    .transpose()
            }
        }
    };
}
insert_id_returning!(sqlx::Sqlite);
insert_id_returning!(sqlx::Postgres);

impl<'q, 'c, E> InsertId<'c, E>
    for sqlx::query::Query<'q, sqlx::MySql, <sqlx::MySql as sqlx::Database>::Arguments>
where
    E: sqlx::Executor<'c, Database = sqlx::MySql> + 'c,
    'q: 'c,
{
    async fn insert_id(self, executor: E) -> Result<i64, sqlx::Error> {
        self.inserted(executor)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    async fn inserted(self, executor: E) -> Result<Option<i64>, sqlx::Error> {
        let done = self.execute(executor).await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        i64::try_from(done.last_insert_id())
            .map(Some)
            .map_err(|_| sqlx::Error::Protocol("insert id out of range".into()))
    }
}
