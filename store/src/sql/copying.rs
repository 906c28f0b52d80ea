//! [`Copying`], written once for every backend: the reads and writes behind `kefu migrate-to`
//! and `kefu backup` (see [`crate::copy`]).

use async_trait::async_trait;
use sqlx::AssertSqlSafe;

use super::{Sql, begin_snapshot, on_pool};
use crate::copy::{self, PROGRESS_PREFIX, Snapshot, TABLES, Table, TxSnapshot, Value};
use crate::dialect::{Dialect, render};
use crate::{Backend, Copying, Database, Indexed, Result};

#[async_trait]
impl<S: Sql> Copying for S {
    async fn copy_snapshot(&self) -> Result<Box<dyn Snapshot>> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin_with(begin_snapshot(DIALECT)).await?;
            if DIALECT == Dialect::Sqlite {
                // A deferred transaction takes its snapshot at its first read: read once now.
                sqlx::query("SELECT COUNT(*) FROM sqlite_schema")
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(Box::new(TxSnapshot::new(tx, DIALECT)) as Box<dyn Snapshot>)
        })
    }

    async fn copy_count(&self, table: &'static Table) -> Result<i64> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar(copy::count_query(DIALECT, table))
                .fetch_one(pool)
                .await
        })?)
    }

    async fn copy_write(
        &self,
        table: &'static Table,
        rows: Vec<Vec<Value>>,
        last: Vec<Value>,
    ) -> Result<()> {
        let _writer = self.writer().await;
        on_pool!(self, |pool| copy::write(pool, DIALECT, table, rows, last)
            .await)
    }

    async fn copy_progress(&self, table: &'static Table) -> Result<Option<Vec<Value>>> {
        on_pool!(self, |pool| copy::progress(pool, DIALECT, table).await)
    }

    async fn copy_finish(&self) -> Result<()> {
        let _writer = self.writer().await;
        let mut statements = Vec::new();
        if self.backend() == Backend::Postgres {
            // Rows were copied with their ids: move each sequence past them. (SQLite and
            // InnoDB take the next id from the table's largest.)
            for table in TABLES.iter().filter(|t| t.key == ["id"]) {
                statements.push(format!(
                    "SELECT setval(pg_get_serial_sequence('{0}', 'id'), \
                     COALESCE(MAX(id), 0) + 1, false) FROM {0}",
                    table.name
                ));
            }
        }
        // The copied rows are indexed for search already: the backfill starts after them.
        for indexed in Indexed::ALL {
            statements.push(format!(
                r#"INSERT INTO settings ("key", value) SELECT '{}', CAST(MAX(id) AS TEXT) FROM {} HAVING MAX(id) IS NOT NULL"#,
                indexed.backfill_key(),
                indexed.table()
            ));
        }
        statements.push(format!(
            r#"DELETE FROM settings WHERE substr("key", 1, {}) = '{PROGRESS_PREFIX}'"#,
            PROGRESS_PREFIX.len()
        ));
        for statement in statements {
            on_pool!(self, |pool| {
                sqlx::query(AssertSqlSafe(render(DIALECT, &statement)))
                    .execute(pool)
                    .await
                    .map(drop)
            })?;
        }
        Ok(())
    }
}
