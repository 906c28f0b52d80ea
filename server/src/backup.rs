//! `kefu backup FILE`, `kefu backup --verify FILE` and `kefu restore FILE`: a backup is one
//! self-contained SQLite file holding the whole install, whatever database Kefu runs on.
//!
//! Taking one reads the database through one consistent snapshot ([`store::copy::Snapshot`])
//! while Kefu keeps running, copies it into `FILE.partial` beside `FILE`, checks the copy
//! against the snapshot (row counts and checksums, as `migrate-to` does), stores those
//! counts and checksums in the file as its completeness marker, makes it one file in
//! rollback-journal mode (no `-wal`/`-shm` beside it), reads it back as `--verify` does,
//! syncs it to disk and only then renames it to `FILE`. Whatever fails on the way, no
//! `FILE` appears and the partial file is removed.
//!
//! Checking one (`--verify`, and `restore` before it touches the target database) opens it
//! read-only and as it is: a SQLite file, whole (`integrity_check`), at this Kefu's schema,
//! with a marker that its rows still match. This module does not schedule or rotate backups;
//! the deploy guide shows a systemd timer for that.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use store::copy::{BACKUP_MARKER, Snapshot, TABLES, Value};
use store::{DatabaseUrl, Store};

use crate::migrate_to::{self, MigrateError, Moved};

/// Why a backup, its check or a restore stopped.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} exists already; a backup never overwrites a file")]
    Exists(String),
    #[error("{0} names no file to write")]
    NoFileName(String),
    /// The file cannot be restored or trusted; `reason` says why, in one line.
    #[error("{file} is not a complete Kefu backup: {reason}")]
    NotABackup { file: String, reason: String },
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// What a finished backup says it holds, stored under [`BACKUP_MARKER`].
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    /// This layout's version.
    format: u32,
    /// The schema migration the file is at.
    schema: i64,
    /// When the backup was taken (Unix milliseconds).
    taken_at: i64,
    /// The database it was taken from (`sqlite`, `postgres`, `mysql`).
    source: String,
    /// Every table's rows and checksum, as checked against the source.
    tables: Vec<MarkerTable>,
}

/// One table in a [`Marker`].
#[derive(Debug, Serialize, Deserialize)]
struct MarkerTable {
    table: String,
    rows: u64,
    checksum: String,
}

/// Writes a backup of `source` to the new file `file` (see the module header); returns what
/// it holds.
pub async fn backup(source: Arc<dyn Store>, file: &Path) -> Result<Vec<Moved>, BackupError> {
    if tokio::fs::symlink_metadata(file).await.is_ok() {
        return Err(BackupError::Exists(file.display().to_string()));
    }
    let partial = partial_path(file)?;
    // Left by a backup that was killed: it never became a backup, so it goes.
    remove_with_sidecars(&partial).await;
    let written = async {
        let moved = write_partial(source.as_ref(), &partial).await?;
        persist(&partial, file).await?;
        Ok(moved)
    }
    .await;
    if written.is_err() {
        remove_with_sidecars(&partial).await;
    }
    written
}

/// Copies, checks, marks and seals the backup at `partial`.
async fn write_partial(source: &dyn Store, partial: &Path) -> Result<Vec<Moved>, BackupError> {
    let url = DatabaseUrl::parse(&format!("sqlite://{}", partial.display()))?;
    let target = store::connect(&url).await?;
    let copied = migrate_to::copy_into(source, target.as_ref()).await;
    let finished = match copied {
        Ok(_) => target.copy_finish().await,
        Err(_) => Ok(()),
    };
    target.close().await;
    drop(target);
    let moved = copied?;
    finished?;
    let marker = Marker {
        format: 1,
        schema: source.schema_version().await?,
        taken_at: crate::util::now_ms(),
        source: source.backend().to_string(),
        tables: moved
            .iter()
            .map(|table| MarkerTable {
                table: table.table.to_owned(),
                rows: table.rows,
                checksum: table.checksum.clone(),
            })
            .collect(),
    };
    let marker = serde_json::to_string(&marker)
        .map_err(|e| BackupError::Io(partial.display().to_string(), e.into()))?;
    store::seal_sqlite_file(partial, &[(BACKUP_MARKER, &marker)]).await?;
    // Read back as `--verify` and `restore` will read it.
    verify(partial).await
}

/// Syncs `partial` to disk, renames it to `file` and syncs the directory, so `file` appears
/// whole or not at all, also across a power cut.
async fn persist(partial: &Path, file: &Path) -> Result<(), BackupError> {
    let io = |path: &Path| {
        let shown = path.display().to_string();
        move |error| BackupError::Io(shown, error)
    };
    sync(partial).await.map_err(io(partial))?;
    if tokio::fs::symlink_metadata(file).await.is_ok() {
        return Err(BackupError::Exists(file.display().to_string()));
    }
    tokio::fs::rename(partial, file).await.map_err(io(file))?;
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    sync(dir).await.map_err(io(dir))
}

/// `fsync` of a file or a directory.
async fn sync(path: &Path) -> std::io::Result<()> {
    tokio::fs::File::open(path).await?.sync_all().await
}

/// `FILE.partial`, beside `FILE` so the rename stays on one filesystem.
fn partial_path(file: &Path) -> Result<PathBuf, BackupError> {
    let Some(name) = file.file_name() else {
        return Err(BackupError::NoFileName(file.display().to_string()));
    };
    let mut name = name.to_os_string();
    name.push(".partial");
    Ok(file.with_file_name(name))
}

/// Removes `path` and the files SQLite may keep beside it; missing ones are no error.
async fn remove_with_sidecars(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_os_string();
        name.push(suffix);
        // Nothing to do when it is not there; anything else leaves a file the next run
        // removes before it starts.
        let _ = tokio::fs::remove_file(PathBuf::from(name)).await;
    }
}

/// Checks the backup `file` without changing it (see the module header); returns what it
/// holds, table by table.
pub async fn verify(file: &Path) -> Result<Vec<Moved>, BackupError> {
    // Every failure here is the file's: it is the only thing read.
    let not_a_backup = |reason: String| BackupError::NotABackup {
        file: file.display().to_string(),
        reason,
    };
    match tokio::fs::metadata(file).await {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Err(not_a_backup("it is not a file".into())),
        Err(error) => return Err(not_a_backup(error.to_string())),
    }
    let backup = store::open_read_only(file)
        .await
        .map_err(|e| not_a_backup(e.to_string()))?;
    let mut snapshot = backup
        .copy_snapshot()
        .await
        .map_err(|e| not_a_backup(e.to_string()))?;
    let checked = check_marker(snapshot.as_mut()).await;
    let closed = snapshot.close().await;
    backup.close().await;
    let moved = checked.map_err(not_a_backup)?;
    closed.map_err(|e| not_a_backup(e.to_string()))?;
    Ok(moved)
}

/// Reads the marker in `snapshot` and compares every table with it: `Err` with the reason
/// when something differs or cannot be read.
async fn check_marker(snapshot: &mut dyn Snapshot) -> Result<Vec<Moved>, String> {
    let marker = marker(snapshot).await.map_err(|e| e.to_string())?;
    let Some(marker) = marker else {
        return Err(
            "it has no completeness marker (an unfinished backup, or a database rather than a backup)"
                .into(),
        );
    };
    let Ok(marker) = serde_json::from_str::<Marker>(&marker) else {
        return Err("its completeness marker is unreadable".into());
    };
    let mut moved = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let Some(expected) = marker.tables.iter().find(|t| t.table == table.name) else {
            return Err(format!("its marker does not list table {}", table.name));
        };
        let found = migrate_to::tally(snapshot, table)
            .await
            .map_err(|e| e.to_string())?;
        let checksum = found.checksum();
        if found.rows != expected.rows || checksum != expected.checksum {
            return Err(format!(
                "table {} holds {} rows, its marker says {}; checksums {}",
                table.name,
                found.rows,
                expected.rows,
                if checksum == expected.checksum {
                    "equal"
                } else {
                    "differ"
                }
            ));
        }
        moved.push(Moved {
            table: table.name,
            rows: found.rows,
            checksum,
        });
    }
    Ok(moved)
}

/// The value of the backup marker in `snapshot`'s settings.
async fn marker(snapshot: &mut dyn Snapshot) -> Result<Option<String>, store::Error> {
    let settings = TABLES
        .iter()
        .find(|t| t.name == "settings")
        .ok_or(store::Error::NotFound)?;
    let mut after = None;
    loop {
        let rows = snapshot
            .read(settings, after, store::copy::batch(settings))
            .await?;
        let Some(last) = rows.last().map(|row| settings.key_of(row)) else {
            return Ok(None);
        };
        for row in &rows {
            if let [Value::Text(key), Value::Text(value)] = row.as_slice()
                && key == BACKUP_MARKER
            {
                return Ok(Some(value.clone()));
            }
        }
        after = Some(last);
    }
}

/// Restores the backup `file` into the empty database at `target`, after checking it as
/// [`verify`] does — a file that is not a complete backup is refused before the target is
/// opened.
pub async fn restore(file: &Path, target: &DatabaseUrl) -> Result<Vec<Moved>, BackupError> {
    verify(file).await?;
    let source_url = DatabaseUrl::parse(&format!("sqlite://{}", file.display()))?;
    let source = store::open_read_only(file).await?;
    let moved = migrate_to::run(source.clone(), &source_url, target).await;
    source.close().await;
    Ok(moved?)
}
