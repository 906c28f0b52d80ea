//! The `kefu` binary's start-up errors: one clear line and a non-zero exit.

use std::process::Command;

fn kefu(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kefu"))
        .args(args)
        .env_remove("KEFU_DATABASE_URL")
        .env_remove("KEFU_CONFIG")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run kefu")
}

#[test]
fn sqlite_in_a_missing_directory_is_one_line_and_non_zero() {
    let out = kefu(&[
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--database-url",
        "sqlite:///no/such/dir/x.db",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("/no/such/dir"), "{stderr}");
}

#[test]
fn unknown_scheme_is_one_line_and_non_zero() {
    let out = kefu(&["serve", "--database-url", "oracle://u:hunter2@db/x"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("oracle"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "password leaked: {stderr}");
}

#[test]
fn config_check_names_the_wrong_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kefu.toml");
    std::fs::write(
        &path,
        "bind = \"127.0.0.1:3000\"\n[database]\nurll = \"sqlite://x.db\"\n",
    )
    .expect("write");
    let out = kefu(&[
        "config",
        "check",
        "--config",
        path.to_str().expect("utf-8 path"),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("urll"), "{stderr}");

    std::fs::write(
        &path,
        "bind = \"127.0.0.1:3000\"\n[database]\nurl = \"sqlite://x.db\"\n",
    )
    .expect("write");
    let out = kefu(&[
        "config",
        "check",
        "--config",
        path.to_str().expect("utf-8 path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn db_upgrade_migrates_and_a_newer_database_stops_the_server_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/kefu.db", dir.path().display());
    let out = kefu(&["db", "upgrade", "--database-url", &url]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("database schema is up to date (migration "),
        "{stdout}"
    );

    // A newer Kefu ran a migration this one does not have.
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("connect");
            sqlx::raw_sql(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES (99999, 'a newer kefu', 1, X'00', 0)",
            )
            .execute(&mut conn)
            .await
            .expect("insert");
        });
    for args in [
        &["db", "upgrade", "--database-url", &url][..],
        &["serve", "--bind", "127.0.0.1:0", "--database-url", &url][..],
    ] {
        let out = kefu(args);
        assert!(!out.status.success(), "{args:?} went ahead");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains("upgraded by a newer Kefu") && stderr.contains("99999"),
            "{stderr}"
        );
    }
}
