//! `kefu db migrate-to <url>`: moves a whole install — every table, accounts, conversations,
//! files, settings — from the configured database to another, as a site that started on
//! SQLite moves to MySQL/MariaDB or PostgreSQL. Table by table in key order with a progress
//! bar; each batch commits with how far it got, so running the command again after an
//! interruption continues where it stopped. At the end every table is compared (row count
//! and a checksum of every value, read from both sides) before the copy is declared done;
//! then point `database.url` at the new database.
//!
//! The source is read through one [`store::copy::Snapshot`], so the copy and the count and
//! checksum it is checked against see the source at one moment. `kefu backup` and `kefu
//! restore` ([`crate::backup`]) use the same copy into and out of a SQLite file.

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use store::copy::{Snapshot, TABLES, Table, Tally, Value};
use store::{DatabaseUrl, Store};

/// Why the move stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("the target is the database Kefu is configured with")]
    SameDatabase,
    #[error(
        "the target database already holds a Kefu install (sites or agents); move into an empty database"
    )]
    TargetNotEmpty,
    #[error("table {table}: {source_rows} rows here, {target_rows} there, checksums {same}")]
    Mismatch {
        table: &'static str,
        source_rows: u64,
        target_rows: u64,
        same: &'static str,
    },
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// One table as moved and checked.
#[derive(Debug)]
pub struct Moved {
    /// The table.
    pub table: &'static str,
    /// Its rows, the same on both sides.
    pub rows: u64,
    /// The checksum both sides gave.
    pub checksum: String,
}

/// Copies everything from `source` (at `source_url`) into the database at `target_url`, then
/// checks it. Progress bars are drawn when standard error is a terminal.
pub async fn run(
    source: Arc<dyn Store>,
    source_url: &DatabaseUrl,
    target_url: &DatabaseUrl,
) -> Result<Vec<Moved>, MigrateError> {
    if source_url.expose_secret() == target_url.expose_secret() {
        return Err(MigrateError::SameDatabase);
    }
    let target = store::connect(target_url).await?;
    let moved = copy_into(source.as_ref(), target.as_ref()).await?;
    target.copy_finish().await?;
    target.close().await;
    drop(target);
    // Connecting again builds the search index of the copied rows.
    store::connect(target_url).await?;
    Ok(moved)
}

/// Copies everything from `source` into `target`, which must hold no install (or the start
/// of this copy), and checks every table arrived: row count and checksum read from one
/// snapshot of `source`, so rows written to it meanwhile are neither copied nor counted.
/// The caller ends the copy ([`store::Copying::copy_finish`]).
pub async fn copy_into(source: &dyn Store, target: &dyn Store) -> Result<Vec<Moved>, MigrateError> {
    let started = target.copy_progress(&TABLES[0]).await?.is_some();
    let empty = target.all_sites().await?.is_empty() && target.all_agents().await?.is_empty();
    if !(started || empty) {
        return Err(MigrateError::TargetNotEmpty);
    }
    let mut snapshot = source.copy_snapshot().await?;
    for table in TABLES {
        copy_table(snapshot.as_mut(), target, table).await?;
    }
    let mut copied = target.copy_snapshot().await?;
    let mut moved = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let here = tally(snapshot.as_mut(), table).await?;
        let there = tally(copied.as_mut(), table).await?;
        let (checksum, other) = (here.checksum(), there.checksum());
        if here.rows != there.rows || checksum != other {
            return Err(MigrateError::Mismatch {
                table: table.name,
                source_rows: here.rows,
                target_rows: there.rows,
                same: if checksum == other { "equal" } else { "differ" },
            });
        }
        moved.push(Moved {
            table: table.name,
            rows: here.rows,
            checksum,
        });
    }
    copied.close().await?;
    snapshot.close().await?;
    Ok(moved)
}

/// Whether `row` of `table` belongs to the install (not to one database's upkeep).
fn belongs(table: &Table, row: &[Value]) -> bool {
    table.name != "settings"
        || !matches!(row.first(), Some(Value::Text(key)) if store::copy::is_local_setting(key))
}

/// Copies the rows of `table` the target does not have yet.
async fn copy_table(
    source: &mut dyn Snapshot,
    target: &dyn Store,
    table: &'static Table,
) -> Result<(), MigrateError> {
    let total = u64::try_from(source.count(table).await?).unwrap_or_default();
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>22} [{bar:40}] {pos}/{len} {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(table.name);
    let mut after = target.copy_progress(table).await?;
    if after.is_some() {
        // Resumed: what the target holds was copied before.
        bar.set_position(u64::try_from(target.copy_count(table).await?).unwrap_or_default());
    }
    loop {
        let rows = source
            .read(table, after.clone(), store::copy::batch(table))
            .await?;
        let Some(last) = rows.last().map(|row| table.key_of(row)) else {
            break;
        };
        let read = rows.len() as u64;
        let rows: Vec<Vec<Value>> = rows.into_iter().filter(|row| belongs(table, row)).collect();
        target.copy_write(table, rows, last.clone()).await?;
        bar.inc(read);
        after = Some(last);
    }
    bar.finish();
    Ok(())
}

/// Every row of `table` in `snapshot` that belongs to the install, counted and checksummed.
pub async fn tally(
    snapshot: &mut dyn Snapshot,
    table: &'static Table,
) -> Result<Tally, store::Error> {
    let mut tally = Tally::default();
    let mut after = None;
    loop {
        let rows = snapshot
            .read(table, after, store::copy::batch(table))
            .await?;
        let Some(last) = rows.last().map(|row| table.key_of(row)) else {
            break;
        };
        for row in rows.iter().filter(|row| belongs(table, row)) {
            tally.add(row);
        }
        after = Some(last);
    }
    Ok(tally)
}
