//! The `kefu` binary: start-up errors are one clear line and a non-zero exit; `serve --demo`
//! takes its address before it makes or prints the demo admin; `agent passwd` sets a new
//! password and signs the agent out.

use crate::common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

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

/// `kefu serve --demo` on the SQLite database `url` and `port`, until the console's address is
/// printed (or the process ends): whether it got that far, and what it printed.
fn serve_demo(url: &str, port: u16) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kefu"))
        .args(["serve", "--demo", "--bind", &format!("127.0.0.1:{port}")])
        .args(["--database-url", url, "--log-level", "warn"])
        .env_remove("KEFU_DATABASE_URL")
        .env_remove("KEFU_CONFIG")
        .env_remove("KEFU_DEMO_PASSWORD")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kefu");
    let stdout = child.stdout.take().expect("stdout");
    let (lines, said) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = String::new();
    let mut serving = false;
    while let Ok(line) = said.recv_timeout(Duration::from_secs(60)) {
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("Kefu console:") {
            serving = true;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    printed.push_str(&stderr);
    (serving, printed)
}

#[test]
fn serve_demo_takes_its_port_before_making_or_printing_the_demo_admin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("kefu.db");
    let url = format!("sqlite://{}", db.display());
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();

    let (running, printed) = serve_demo(&url, port);
    assert!(!running, "started on a busy port: {printed}");
    assert!(printed.contains("cannot listen on"), "{printed}");
    assert!(!printed.contains("Demo admin"), "{printed}");
    assert!(
        !db.exists(),
        "the database was made before the port was taken"
    );

    drop(busy);
    let (running, printed) = serve_demo(&url, port);
    assert!(running, "{printed}");
    let created = printed
        .lines()
        .find_map(|line| line.strip_prefix("Demo admin created: demo@kefu.local / "))
        .and_then(|rest| rest.strip_suffix("  (shown once)"));
    assert!(
        created.is_some_and(|password| password.len() >= 8),
        "{printed}"
    );

    // Started again, the admin exists: its password cannot be shown, how to set one is.
    let (running, printed) = serve_demo(&url, port);
    assert!(running, "{printed}");
    assert!(!printed.contains("Demo admin created"), "{printed}");
    assert!(
        printed.contains("kefu agent passwd demo@kefu.local"),
        "{printed}"
    );
}

#[tokio::test]
async fn agent_passwd_sets_a_new_password_and_signs_the_agent_out_everywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/kefu.db", dir.path().display());
    let server = common::spawn(&url).await;
    let email = server::web::demo::DEMO_EMAIL;
    let sign_in = |password: &str| {
        let request = reqwest::Client::new()
            .post(server.url("/api/login"))
            .header("origin", server.url(""))
            .header("accept", "application/json")
            .form(&[("email", email), ("password", password), ("mode", "auto")])
            .send();
        async move {
            let response = request.await.expect("login");
            let cookie = response
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|value| value.to_str().ok())
                .find(|value| value.starts_with("kefu_session="))
                .and_then(|value| value.split(';').next())
                .map(str::to_owned);
            (response.status().as_u16(), cookie)
        }
    };
    let me = |cookie: String| {
        let request = reqwest::Client::new()
            .post(server.url("/api/me"))
            .header("origin", server.url(""))
            .header("cookie", cookie)
            .header("accept", "application/json")
            .send();
        async move { request.await.expect("me").status().as_u16() }
    };
    let passwd = |password: Option<&str>, who: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kefu"));
        command
            .args(["agent", "passwd", who, "--database-url", &url])
            .env_remove("KEFU_CONFIG")
            .env_remove("KEFU_NEW_PASSWORD");
        if let Some(password) = password {
            command.env("KEFU_NEW_PASSWORD", password);
        }
        let out = command.output().expect("run kefu");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (status, old_session) = sign_in(common::DEMO_PASSWORD).await;
    assert_eq!(status, 200);
    let old_session = old_session.expect("session cookie");
    assert_eq!(me(old_session.clone()).await, 200);

    // Too short, or nobody with that e-mail: nothing changes.
    let (ok, _, stderr) = passwd(Some("short"), email);
    assert!(!ok && stderr.contains("at least 8 characters"), "{stderr}");
    let (ok, _, stderr) = passwd(Some("long enough"), "nobody@kefu.local");
    assert!(!ok && stderr.contains("nobody@kefu.local"), "{stderr}");
    assert_eq!(
        me(old_session.clone()).await,
        200,
        "signed out by a refusal"
    );

    let (ok, stdout, stderr) = passwd(Some("a new password"), email);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("signed out everywhere"), "{stdout}");
    assert!(
        !stdout.contains("a new password"),
        "the password was printed"
    );
    assert_eq!(me(old_session).await, 401, "the old session still works");
    assert_eq!(sign_in(common::DEMO_PASSWORD).await.0, 401);
    let (status, new_session) = sign_in("a new password").await;
    assert_eq!(status, 200);

    // Without KEFU_NEW_PASSWORD one is made up and printed once.
    let (ok, stdout, stderr) = passwd(None, &email.to_uppercase());
    assert!(ok, "{stderr}");
    let generated = stdout
        .split_once(": ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .expect("a password")
        .to_owned();
    assert_eq!(generated.len(), 16, "{stdout}");
    assert_eq!(me(new_session.expect("cookie")).await, 401);
    assert_eq!(sign_in(&generated).await.0, 200);
    server.stop().await;
}
