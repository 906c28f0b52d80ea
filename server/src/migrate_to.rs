//! `kefu db migrate-to <url>`: moves a whole install — every table, accounts, conversations,
//! files, settings — from the configured database to another, as a site that started on
//! SQLite moves to MySQL/MariaDB or PostgreSQL. Table by table in key order with a progress
//! bar; each batch commits with how far it got, so running the command again after an
//! interruption continues where it stopped. At the end every table is compared (row count
//! and a checksum of every value, read from both sides) before the copy is declared done;
//! then point `database.url` at the new database.
//!
//! `kefu backup <file>` and `kefu restore <file>` use the same copy, with a SQLite file as the
//! portable backup: a SQLite install is snapshotted by SQLite itself while in use (`VACUUM
//! INTO`, consistent); MySQL/MariaDB and PostgreSQL are exported table by table into a new
//! SQLite file and checked like a move (rows written meanwhile make the check fail: back up
//! a quiet or stopped server, or use the database's own dump tool). Restoring copies a backup
//! file into the configured, empty database.

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use store::copy::{TABLES, Table, Tally, Value};
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
    #[error("{0} exists already; a backup never overwrites a file")]
    BackupExists(String),
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
    let started = target.copy_progress(&TABLES[0]).await?.is_some();
    let empty = target.all_sites().await?.is_empty() && target.all_agents().await?.is_empty();
    if !(started || empty) {
        return Err(MigrateError::TargetNotEmpty);
    }
    for table in TABLES {
        copy_table(source.as_ref(), target.as_ref(), table).await?;
    }
    let mut moved = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let here = tally(source.as_ref(), table).await?;
        let there = tally(target.as_ref(), table).await?;
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
    target.copy_finish().await?;
    drop(target);
    // Connecting again builds the search index of the copied rows.
    store::connect(target_url).await?;
    Ok(moved)
}

/// Whether `row` of `table` belongs to the install (not to one database's upkeep).
fn belongs(table: &Table, row: &[Value]) -> bool {
    table.name != "settings"
        || !matches!(row.first(), Some(Value::Text(key)) if store::copy::is_local_setting(key))
}

/// Copies the rows of `table` the target does not have yet.
async fn copy_table(
    source: &dyn Store,
    target: &dyn Store,
    table: &'static Table,
) -> Result<(), MigrateError> {
    let total = u64::try_from(source.copy_count(table).await?).unwrap_or_default();
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
            .copy_read(table, after.clone(), store::copy::batch(table))
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

/// Every row of `table` in `store` that belongs to the install, counted and checksummed.
async fn tally(store: &dyn Store, table: &'static Table) -> Result<Tally, MigrateError> {
    let mut tally = Tally::default();
    let mut after = None;
    loop {
        let rows = store
            .copy_read(table, after, store::copy::batch(table))
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

/// Writes a backup of `source` to the new SQLite file `file` (see the module header).
pub async fn backup(
    source: Arc<dyn Store>,
    source_url: &DatabaseUrl,
    file: &std::path::Path,
) -> Result<Vec<Moved>, MigrateError> {
    if file.exists() {
        return Err(MigrateError::BackupExists(file.display().to_string()));
    }
    let target = DatabaseUrl::parse(&format!("sqlite://{}", file.display()))?;
    if source.snapshot_to(file).await? {
        // Checked like a move: the snapshot against a fresh read of what it holds.
        let snapshot = store::connect(&target).await?;
        let mut moved = Vec::with_capacity(TABLES.len());
        for table in TABLES {
            let copied = tally(snapshot.as_ref(), table).await?;
            moved.push(Moved {
                table: table.name,
                rows: copied.rows,
                checksum: copied.checksum(),
            });
        }
        return Ok(moved);
    }
    run(source, source_url, &target).await
}
