//! The setup wizard over HTTP against the real binary: with no account in the database every
//! URL leads to `/setup`, nothing works without the token from the log, "test connection"
//! names a wrong password on the real MariaDB, and finishing writes the configuration and
//! hands over to Kefu on the same address (PostgreSQL here; Playwright drives MariaDB).

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn the_wizard_wants_the_token_names_the_problem_and_hands_over_to_kefu() {
    let postgres = common::TestDatabase::create(&common::pg_url()).await;
    // A LibreTranslate stand-in for the translation test button, on this machine: the file
    // allows it (`[outbound] allow`), as an operator would for a local LibreTranslate.
    let stand_in = axum::Router::new().route(
        "/translate",
        axum::routing::post(|| async {
            axum::Json(serde_json::json!({"translatedText": "您好，有什么可以帮您？"}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let provider_addr = listener.local_addr().expect("addr");
    let provider = format!("http://{provider_addr}");
    tokio::spawn(async move { axum::serve(listener, stand_in).await });
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("kefu.toml");
    std::fs::write(
        &config,
        format!(
            "# fresh\n[database]\nurl = \"sqlite://{}/kefu.db\"\n[outbound]\nallow = [\"{provider_addr}\"]\n",
            dir.path().display()
        ),
    )
    .expect("config");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_kefu"))
        .args(["serve", "--config", config.to_str().expect("utf-8")])
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .env_remove("KEFU_DATABASE_URL")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kefu");
    // The log is read to its end, as a terminal would: the first line has the token.
    let (lines, printed) = std::sync::mpsc::channel();
    let stdout = server.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let line = printed
        .recv_timeout(Duration::from_secs(20))
        .expect("the first line");
    let token = line
        .split("token=")
        .nth(1)
        .map(|t| t.trim().to_owned())
        .unwrap_or_else(|| panic!("no token in {line:?}"));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    // Every URL leads to the wizard; not ready for traffic yet.
    let inbox = client
        .get(format!("{base}/inbox"))
        .send()
        .await
        .expect("inbox");
    assert_eq!(inbox.status(), 303);
    assert_eq!(inbox.headers()["location"], "/setup");
    let ready = client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 503);

    // Without the token: the token form only, and the endpoints refuse.
    let page = client
        .get(format!("{base}/setup"))
        .send()
        .await
        .expect("page");
    let html = page.text().await.expect("html");
    assert!(
        html.contains("Setup token") && !html.contains("admin_email"),
        "{html}"
    );
    let database = [
        ("kind", "mysql"),
        ("host", "127.0.0.1"),
        ("port", "3306"),
        ("user", "root"),
        ("password", "wrong"),
        ("database", "test"),
    ];
    let refused = client
        .post(format!("{base}/setup/test-database"))
        .form(&database)
        .send()
        .await
        .expect("test");
    assert_eq!(refused.status(), 403);

    // With it (the link printed in the log sets the cookie).
    let given = client
        .get(format!("{base}/setup?token={token}"))
        .send()
        .await
        .expect("token");
    let cookie = given.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("name=value")
        .to_owned();
    let post = |path: &str, form: Vec<(&str, String)>| {
        let request = client
            .post(format!("{base}{path}"))
            .header("cookie", cookie.clone())
            .form(&form);
        async move { request.send().await.expect("post") }
    };
    let owned = |fields: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        fields.iter().map(|(k, v)| (*k, v.to_string())).collect()
    };
    let tested = post("/setup/test-database", owned(&database)).await;
    assert_eq!(tested.status(), 422);
    let said = tested.text().await.expect("text");
    assert!(said.contains("wrong password"), "{said}");

    // A Chinese browser is answered in Chinese, problems included; the switch at the top of
    // every page chooses for good (in the console's language cookie).
    let in_chinese = |path: &str| {
        client
            .get(format!("{base}{path}"))
            .header("cookie", cookie.clone())
            .header("accept-language", "zh-CN,zh;q=0.9,en;q=0.8")
    };
    let html = in_chinese("/setup")
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        html.contains(r#"<html lang="zh-CN">"#) && html.contains("测试连接"),
        "{html}"
    );
    assert!(html.contains(r#"<a href="/setup?lang=en""#), "{html}");
    let tested = client
        .post(format!("{base}/setup/test-database"))
        .header("cookie", cookie.clone())
        .header("accept-language", "zh-CN")
        .form(&database)
        .send()
        .await
        .expect("test");
    assert_eq!(tested.status(), 422);
    let said = tested.text().await.expect("text");
    assert!(
        said.contains(r#"数据库服务器拒绝了用户 "root"：密码错误"#),
        "{said}"
    );
    let switched = in_chinese("/setup?lang=en").send().await.expect("switch");
    assert_eq!(switched.status(), 303);
    let chosen = switched.headers()["set-cookie"].to_str().expect("cookie");
    assert!(chosen.starts_with("kefu_lang=en;"), "{chosen}");
    let html = client
        .get(format!("{base}/setup"))
        .header("cookie", format!("{cookie}; kefu_lang=en"))
        .header("accept-language", "zh-CN")
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        html.contains(r#"<html lang="en">"#) && html.contains("Test connection"),
        "{html}"
    );

    // The optional parts have test buttons too: a translation provider (a LibreTranslate
    // stand-in here) and the mail relay.
    let translated = post(
        "/setup/test-translation",
        owned(&[
            ("translation_provider", "libretranslate"),
            ("translation_url", &provider),
        ]),
    )
    .await;
    assert_eq!(translated.status(), 200);
    assert!(
        translated
            .text()
            .await
            .expect("text")
            .contains("您好，有什么可以帮您？")
    );
    let unknown = post(
        "/setup/test-translation",
        owned(&[("translation_provider", "babelfish")]),
    )
    .await;
    assert_eq!(unknown.status(), 422);
    let mail = post(
        "/setup/test-mail",
        owned(&[
            ("smtp_url", "smtp://127.0.0.1:9"),
            ("email_from", "Shop <s@shop.example>"),
            ("admin_email", "owner@shop.example"),
        ]),
    )
    .await;
    assert_eq!(mail.status(), 422);
    let said = mail.text().await.expect("text");
    assert!(said.contains("did not take it"), "{said}");

    // Finishing: a hostile site name is shown escaped; a short password is refused.
    let (pg_base, pg_name) = postgres.url.rsplit_once('/').expect("database");
    let pg_host = pg_base.split('@').nth(1).expect("host");
    let (pg_host, pg_port) = pg_host.split_once(':').expect("port");
    let mut form = owned(&[
        ("kind", "postgres"),
        ("host", pg_host),
        ("port", pg_port),
        ("user", "postgres"),
        ("database", pg_name),
        ("admin_email", "owner@shop.example"),
        ("admin_name", "Owner"),
        ("admin_password", "short"),
        ("site_name", "<b>Shop</b>"),
        ("site_origins", "https://shop.example"),
    ]);
    let again = post("/setup", form.clone()).await;
    assert_eq!(again.status(), 422);
    let html = again.text().await.expect("html");
    assert!(html.contains("at least 8 characters"), "{html}");
    assert!(html.contains("&lt;b&gt;Shop&lt;/b&gt;") && !html.contains("<b>Shop</b>"));
    for (key, value) in form.iter_mut() {
        if *key == "admin_password" {
            *value = "owner-password".into();
        }
    }
    // Finish clicked twice: one sets Kefu up, the other is told it is done already.
    let (first, second) = tokio::join!(post("/setup", form.clone()), post("/setup", form));
    let (done, twice) = if first.status() == 200 {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(twice.status(), 409);
    assert!(twice.text().await.expect("html").contains("set up already"));
    let html = done.text().await.expect("html");
    assert!(html.contains("Kefu is set up"), "{html}");
    assert!(html.contains(&format!("http://127.0.0.1:{port}/widget/widget.js")));

    // Kefu takes over on the same address, on the chosen database.
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
    let written = std::fs::read_to_string(&config).expect("config");
    let login = client
        .post(format!("{base}/api/login"))
        .header("origin", base.as_str())
        .header("accept", "application/json")
        .form(&[
            ("email", "owner@shop.example"),
            ("password", "owner-password"),
            ("mode", "auto"),
        ])
        .send()
        .await
        .expect("login");
    let _ = server.kill();
    let _ = server.wait();
    assert!(ready, "Kefu started after the wizard");
    assert!(written.starts_with("# fresh\n"), "{written}");
    assert!(
        written.contains(&format!("url = \"{}\"", postgres.url)),
        "{written}"
    );
    assert!(login.status().is_success(), "{}", login.status());
    postgres.drop_now().await;
}
