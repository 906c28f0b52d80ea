//! Saves settings chosen in the console into the configuration file. The file is edited, not
//! rewritten: comments and keys the change does not touch stay as they were. The result must
//! load as a configuration before it replaces the old file, which is kept as `<name>.bak`; the
//! new text is written to a file beside it and renamed over it, so a crash leaves either the
//! old file or the new one, never half of one. The file can hold passwords, so a new one is
//! readable by its owner only.

use std::io::Write;
use std::path::{Path, PathBuf};

use toml_edit::DocumentMut;

use crate::config::ConfigError;

/// Applies `change` to the configuration file at `path` (an empty one when it does not exist
/// yet) and saves the result as described above.
pub fn edit(path: &Path, change: impl FnOnce(&mut DocumentMut)) -> Result<(), ConfigError> {
    let old = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut document: DocumentMut =
        old.as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|error: toml_edit::TomlError| ConfigError::Parse {
                path: path.to_path_buf(),
                message: error.message().to_owned(),
            })?;
    // A file of comments only keeps them at the top, above what the change adds (toml_edit
    // holds them as the document's trailing text, which would put them last).
    let header = if document.is_empty() {
        let comments = document.trailing().as_str().unwrap_or_default().to_owned();
        document.set_trailing("");
        comments
    } else {
        String::new()
    };
    change(&mut document);
    let separator = if header.is_empty() || header.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    let text = format!("{header}{separator}{document}");
    crate::config::check_text(path, &text)?;
    let written = |source| ConfigError::Write {
        path: path.to_path_buf(),
        source,
    };
    let temporary = sibling(path, ".tmp");
    write_private(&temporary, &text).map_err(written)?;
    // The backup holds the same secrets as the file: private too, whatever the old file was.
    if let Some(old) = &old {
        write_private(&sibling(path, ".bak"), old).map_err(written)?;
    }
    std::fs::rename(&temporary, path).map_err(written)
}

/// The `[name]` section of `document`, made when missing (or turned from an inline table into
/// a section), so edits come out as the `[email]` blocks people write.
pub fn section<'a>(document: &'a mut DocumentMut, name: &str) -> &'a mut toml_edit::Table {
    let item = document.entry(name).or_insert(toml_edit::table());
    if !item.is_table() {
        let inline = item.as_inline_table().cloned().unwrap_or_default();
        *item = toml_edit::Item::Table(inline.into_table());
    }
    match item {
        toml_edit::Item::Table(table) => table,
        _ => unreachable!("the item was just made a table"),
    }
}

/// Sets `key` of section `name` to `value`, or removes it for `None` (a removal does not make
/// the section).
pub fn set(document: &mut DocumentMut, name: &str, key: &str, value: Option<toml_edit::Item>) {
    match value {
        Some(value) => section(document, name)[key] = value,
        None => {
            if let Some(table) = document.get_mut(name).and_then(|t| t.as_table_mut()) {
                table.remove(key);
            }
        }
    }
}

/// `path` with `suffix` added to its file name (`kefu.toml` → `kefu.toml.bak`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Writes `text` to `path` (replacing it), flushed to disk, readable by its owner only.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // `mode` applies only to a new file; one that existed keeps its bits unless told.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_keeps_comments_and_other_keys_and_a_backup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kefu.toml");
        let original = "# our production box\nbind = \"0.0.0.0:3000\" # behind nginx\n";
        std::fs::write(&path, original).expect("write");
        edit(&path, |doc| {
            let email = section(doc, "email");
            email["from"] = toml_edit::value("Shop <s@shop.example>");
            email["smtp_url"] = toml_edit::value("smtp://127.0.0.1:2525");
        })
        .expect("edit");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with(original), "{text}");
        assert!(
            text.contains("[email]") && text.contains("smtp://127.0.0.1:2525"),
            "{text}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("kefu.toml.bak")).expect("backup"),
            original
        );
        assert!(!dir.path().join("kefu.toml.tmp").exists());
        // The file was world-readable as written by hand; both it and its backup are private.
        #[cfg(unix)]
        for name in ["kefu.toml", "kefu.toml.bak"] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(name)).expect("metadata");
            assert_eq!(mode.permissions().mode() & 0o777, 0o600, "{name}");
        }
    }

    #[test]
    fn a_file_of_comments_only_keeps_them_at_the_top() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kefu.toml");
        std::fs::write(&path, "# our chat\n# (kept)").expect("write");
        edit(&path, |document| {
            document["bind"] = toml_edit::value("127.0.0.1:3001");
            section(document, "database")["url"] = toml_edit::value("sqlite://kefu.db");
        })
        .expect("saved");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "# our chat\n# (kept)\nbind = \"127.0.0.1:3001\"\n\n[database]\nurl = \"sqlite://kefu.db\"\n"
        );
    }

    #[test]
    fn an_edit_that_would_not_load_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kefu.toml");
        std::fs::write(&path, "bind = \"0.0.0.0:3000\"\n").expect("write");
        let error = edit(&path, |doc| {
            section(doc, "email")["smtp_url"] = toml_edit::value("smtp://127.0.0.1:2525");
        })
        .expect_err("a relay without a sender");
        assert!(error.to_string().contains("email"), "{error}");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "bind = \"0.0.0.0:3000\"\n"
        );
        assert!(!dir.path().join("kefu.toml.bak").exists());
    }

    #[test]
    fn a_missing_file_is_created_readable_by_its_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kefu.toml");
        edit(&path, |doc| doc["webhook_retry_ms"] = toml_edit::value(500)).expect("edit");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "webhook_retry_ms = 500\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
