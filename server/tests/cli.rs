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
