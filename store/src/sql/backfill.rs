//! The search back-fill, written once for every backend: rows stored before the search index
//! existed (or copied in by `migrate-to`) are indexed at start, newest first, a batch per
//! transaction, resumably (the position is kept in `settings`, under the table's backfill key).

use sqlx::AssertSqlSafe;

use super::{SearchIndex, Sql, finish, on_pool, sql};
use crate::dialect::render;
use crate::{BACKFILL_BATCH, BackfillRow, Indexed, Result};

/// Indexes every row at or below each table's backfill position, then removes the position.
pub(crate) async fn backfill_search<S: Sql>(store: &S) -> Result<()> {
    for table in Indexed::ALL {
        let key = table.backfill_key();
        loop {
            let _writer = store.writer().await;
            let indexed = on_pool!(store, |pool| {
                let mut tx = pool.begin().await?;
                let outcome = async {
                    // FOR UPDATE: two servers starting at once index each batch once.
                    let upto: Option<String> = sqlx::query_scalar(sql!(
                        r#"SELECT value FROM settings WHERE "key" = ? FOR UPDATE"#
                    ))
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(upto) = upto.and_then(|v| v.parse::<i64>().ok()) else {
                        return Ok(None);
                    };
                    let rows: Vec<BackfillRow> = sqlx::query_as(AssertSqlSafe(render(
                        DIALECT,
                        &format!(
                            "SELECT {} FROM {} WHERE id <= ? ORDER BY id DESC LIMIT ?",
                            table.text_columns(),
                            table.table()
                        ),
                    )))
                    .bind(upto)
                    .bind(BACKFILL_BATCH)
                    .fetch_all(&mut *tx)
                    .await?;
                    for (id, name, contact, body) in &rows {
                        tx.index_text(table, *id, &table.text((name, contact, body)))
                            .await?;
                    }
                    match rows.last() {
                        Some((lowest, ..)) => {
                            sqlx::query(sql!(r#"UPDATE settings SET value = ? WHERE "key" = ?"#))
                                .bind((lowest - 1).to_string())
                                .bind(key)
                                .execute(&mut *tx)
                                .await?
                        }
                        None => {
                            sqlx::query(sql!(r#"DELETE FROM settings WHERE "key" = ?"#))
                                .bind(key)
                                .execute(&mut *tx)
                                .await?
                        }
                    };
                    Ok(Some(rows.len()))
                }
                .await;
                finish(tx, outcome).await
            })?;
            let Some(indexed) = indexed else { break };
            tracing::info!(table = table.table(), indexed, "search back-fill");
        }
    }
    Ok(())
}
