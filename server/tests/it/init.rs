//! `kefu init` then `kefu serve`, as an administrator sets Kefu up from the terminal: with flags
//! only (`--non-interactive`) on SQLite, PostgreSQL and MariaDB, and answering prompts. Each
//! run ends with the server started from the written file, the administrator signed in, and
//! the new site's widget settings served.

use crate::common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

fn kefu() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kefu"));
    command
        .env_remove("KEFU_DATABASE_URL")
        .env_remove("KEFU_CONFIG")
        .env_remove("KEFU_ADMIN_PASSWORD")
        .env_remove("KEFU_TRANSLATION_API_KEY")
        // The workspace root, where a checkout's Leptos.toml is (as under `make run`).
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    command
}

/// The site key in the snippet `init` printed.
fn site_key(printed: &str) -> String {
    printed
        .split("data-site=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a snippet with the site key")
        .to_owned()
}

/// The `public_url` the configuration file names, if any.
fn console_origin(config: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(config).expect("config");
    let table: toml::Table = text.parse().expect("toml");
    table.get("public_url")?.as_str().map(str::to_owned)
}

/// Starts `kefu serve --config <file>` and checks what `init` set up: the administrator signs
/// in with `password` and the site's widget settings are served to its origin.
async fn serve_and_check(config: &std::path::Path, port: u16, password: &str, key: &str) {
    let mut server: Child = kefu()
        .args(["serve", "--config", config.to_str().expect("utf-8 path")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kefu");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !ready {
        let _ = server.kill();
        let out = server.wait_with_output().expect("output");
        panic!(
            "kefu serve did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let login = client
        .post(format!("{base}/api/login"))
        // Where `kefu init --public-url` wrote the console's address, sign-ins come from it.
        .header(
            "origin",
            console_origin(config).unwrap_or_else(|| base.clone()),
        )
        .header("accept", "application/json")
        .form(&[
            ("email", "boss@shop.example"),
            ("password", password),
            ("mode", "auto"),
        ])
        .send()
        .await
        .expect("login");
    let signed_in = login.status().is_success() || login.status().is_redirection();
    let site = client
        .get(format!("{base}/http/visitor/site?key={key}"))
        .header("origin", "https://shop.example")
        .send()
        .await
        .expect("site settings");
    let site_status = site.status();
    let _ = server.kill();
    let _ = server.wait();
    assert!(signed_in, "the administrator signs in: {}", login.status());
    assert_eq!(site_status, 200, "the new site's widget settings");
}

/// `kefu init --non-interactive` with the answers as flags; returns the site key.
fn init_with_flags(config: &std::path::Path, database_url: &str, port: u16) -> String {
    let out = kefu()
        .args([
            "init",
            "--non-interactive",
            "--config",
            config.to_str().expect("utf-8 path"),
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            database_url,
            "--admin-email",
            "boss@shop.example",
            "--admin-name",
            "Boss",
            "--site-name",
            "Shop",
            "--site-origin",
            "https://shop.example",
            "--public-url",
            "https://chat.shop.example",
        ])
        .env("KEFU_ADMIN_PASSWORD", "correct horse battery")
        .output()
        .expect("run kefu init");
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("<script src=\"https://chat.shop.example/widget/widget.js\" data-site=\""),
        "{printed}"
    );
    site_key(&printed)
}

#[tokio::test(flavor = "multi_thread")]
async fn init_without_a_terminal_then_serve_works_on_each_backend() {
    let postgres = common::TestDatabase::create(&common::pg_url()).await;
    let mariadb = common::TestDatabase::create(&common::mysql_url()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = format!("sqlite://{}/new/kefu.db", dir.path().display());
    for (name, url) in [
        ("sqlite", sqlite.as_str()),
        ("postgres", postgres.url.as_str()),
        ("mariadb", mariadb.url.as_str()),
    ] {
        let config = dir.path().join(format!("{name}.toml"));
        let port = free_port();
        let key = init_with_flags(&config, url, port);
        let written = std::fs::read_to_string(&config).expect("config written");
        assert!(
            written.contains(&format!("bind = \"127.0.0.1:{port}\"")),
            "{written}"
        );
        serve_and_check(&config, port, "correct horse battery", &key).await;
    }
    postgres.drop_now().await;
    mariadb.drop_now().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn init_asks_again_until_an_answer_is_right_and_keeps_the_files_comments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("kefu.toml");
    std::fs::write(&config, "# our chat\n").expect("config");
    let port = free_port();
    let answers = [
        "not an address".to_owned(),                          // listen on: wrong
        format!("127.0.0.1:{port}"),                          // listen on
        "oracle://db/x".to_owned(),                           // database: unknown scheme
        format!("sqlite://{}/kefu.db", dir.path().display()), // database
        "boss".to_owned(),                                    // e-mail: wrong
        "boss@shop.example".to_owned(),                       // e-mail
        String::new(),                                        // name: the default
        "short".to_owned(),                                   // password: too short
        "correct horse battery".to_owned(),                   // password
        "Shop".to_owned(),                                    // site name
        "shop.example".to_owned(),                            // origin: no scheme
        "https://shop.example https://www.shop.example".to_owned(), // origins
        String::new(),                                        // no e-mail relay
        "babelfish".to_owned(),                               // translation: unknown
        String::new(),                                        // no translation
    ];
    let mut child = kefu()
        .args(["init", "--config", config.to_str().expect("utf-8 path")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kefu init");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{}\n", answers.join("\n")).as_bytes())
        .expect("answers");
    let out = child.wait_with_output().expect("init output");
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for said in [
        "an address such as 127.0.0.1:3000",
        "oracle",
        "an e-mail address such as you@example.com",
        "at least 8 characters",
        "web addresses such as https://www.example.com",
        "one of libretranslate",
    ] {
        assert!(printed.contains(said), "told {said:?}: {printed}");
    }
    let written = std::fs::read_to_string(&config).expect("config");
    assert!(written.starts_with("# our chat\n"), "{written}");
    assert!(
        std::fs::read_to_string(dir.path().join("kefu.toml.bak"))
            .expect("backup")
            .starts_with("# our chat")
    );
    serve_and_check(&config, port, "correct horse battery", &site_key(&printed)).await;

    // Without a terminal, a missing answer names its flag and writes nothing (on an empty
    // database: one with accounts is refused before any question).
    let before = std::fs::read_to_string(&config).expect("config");
    let database = format!("sqlite://{}/empty.db", dir.path().display());
    let out = kefu()
        .args([
            "init",
            "--non-interactive",
            "--config",
            config.to_str().expect("utf-8 path"),
            "--database-url",
            &database,
        ])
        .output()
        .expect("run kefu init");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--admin-email"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&config).expect("config"), before);
}

/// Runs `kefu ARGS --config CONFIG`; its exit status, standard output and error.
fn run(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = kefu()
        .args(args)
        .args(["--config", config.to_str().expect("utf-8 path")])
        .output()
        .expect("run kefu");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_script_sets_up_sites_and_api_keys_and_init_refuses_a_second_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = dir.path().join("kefu.db");
    let url = format!("sqlite://{}", database.display());
    let config = dir.path().join("kefu.toml");
    let first_key = init_with_flags(&config, &url, free_port());

    // A second `init` on the same database adds nobody: one clear line, non-zero.
    let out = kefu()
        .args(["init", "--non-interactive", "--config"])
        .arg(&config)
        .args(["--bind", "127.0.0.1:3999", "--database-url", &url])
        .args([
            "--admin-email",
            "other@shop.example",
            "--admin-name",
            "Other",
        ])
        .args([
            "--site-name",
            "Again",
            "--site-origin",
            "https://again.example",
        ])
        .output()
        .expect("run kefu init");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("set up already (1 accounts)"), "{stderr}");

    let (ok, printed, stderr) = run(
        &config,
        &[
            "site",
            "add",
            "--name",
            "Blog",
            "--origin",
            "https://blog.example",
            "--agent",
            "boss@shop.example",
        ],
    );
    assert!(ok, "{stderr}");
    let blog_key = site_key(&printed);
    let (ok, _, stderr) = run(
        &config,
        &["site", "add", "--name", "Bad", "--origin", "ftp://x"],
    );
    assert!(!ok && stderr.contains("--origin"), "{stderr}");
    let (ok, listed, _) = run(&config, &["site", "list"]);
    assert!(ok);
    let keys: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.split('\t').next())
        .collect();
    assert_eq!(keys, [first_key.as_str(), blog_key.as_str()], "{listed}");
    assert!(listed.contains("Blog\thttps://blog.example"), "{listed}");

    let (ok, printed, stderr) = run(
        &config,
        &[
            "apikey",
            "add",
            "--admin",
            "boss@shop.example",
            "--name",
            "CRM sync",
        ],
    );
    assert!(ok, "{stderr}");
    let key = printed
        .split_whitespace()
        .find(|word| word.starts_with("kefu_"))
        .expect("the key")
        .to_owned();
    let id = printed
        .split_whitespace()
        .nth(2)
        .and_then(|id| id.parse::<i64>().ok())
        .expect("the key's id");

    // The key is what the API accepts (checked in the database the API reads).
    let store = store::connect(&store::DatabaseUrl::parse(&url).expect("url"))
        .await
        .expect("store");
    let hash = app::session::token_hash(&key);
    let acting = store
        .api_token_agent(&hash, server::now_ms())
        .await
        .expect("lookup");
    assert_eq!(
        acting.map(|agent| agent.email).as_deref(),
        Some("boss@shop.example")
    );
    let (ok, _, stderr) = run(
        &config,
        &[
            "apikey",
            "revoke",
            "--admin",
            "boss@shop.example",
            &id.to_string(),
        ],
    );
    assert!(ok, "{stderr}");
    assert!(
        store
            .api_token_agent(&hash, server::now_ms())
            .await
            .expect("lookup")
            .is_none(),
        "a revoked key stops at once"
    );
    let (ok, _, stderr) = run(
        &config,
        &[
            "apikey",
            "revoke",
            "--admin",
            "boss@shop.example",
            &id.to_string(),
        ],
    );
    assert!(!ok && stderr.contains("no API key"), "{stderr}");
}
