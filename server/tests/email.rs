//! Mail that leaves Kefu, received by a real SMTP server: Python's `aiosmtpd` (installed by
//! `make test`), started by the test, storing what it receives in a maildir the test reads.

mod common;

use base64::Engine;
use common::client::{Http, ack_of, send_frame, visitor_hello, welcome_of};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `aiosmtpd` that keeps every mail in a maildir; killed when dropped.
struct SmtpServer {
    port: u16,
    maildir: tempfile::TempDir,
    child: Child,
}

impl SmtpServer {
    fn start() -> SmtpServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let maildir = tempfile::tempdir().expect("maildir");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
            .stdout(Stdio::null())
            .spawn()
            .expect("start aiosmtpd (make test installs it: pip install aiosmtpd)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpServer {
            port,
            maildir,
            child,
        }
    }

    /// The mails received so far, as raw RFC 5322 text.
    fn received(&self) -> Vec<String> {
        let new: PathBuf = self.maildir.path().join("mail").join("new");
        let mut mails: Vec<String> = std::fs::read_dir(&new)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        mails.sort();
        mails
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A header's value in a raw mail.
fn header<'a>(mail: &'a str, name: &str) -> Option<&'a str> {
    mail.lines()
        .take_while(|line| !line.is_empty())
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
}

/// The body of a base64 mail, decoded.
fn body(mail: &str) -> String {
    let (_, encoded) = mail.split_once("\n\n").expect("headers end");
    let encoded: String = encoded.split_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64 body");
    String::from_utf8(bytes).expect("utf-8 body")
}

async fn post(http: &Http, path: &str, body: Value) -> (u16, Value) {
    http.post_text(path, &body.to_string()).await
}

/// A visitor of a new site "shop" who wrote `text`: their client, conversation and site.
async fn visitor_with_conversation(server: &common::TestServer, text: &str) -> (Http, i64, i64) {
    let (site, _) = common::site(server.store.as_ref(), "shop", &["https://shop.example"]).await;
    let mut visitor = Http::new(&server.url(""), "visitor");
    visitor.origin = Some("https://shop.example".into());
    let (_, frames) = visitor
        .send(json!([
            visitor_hello("shop", None, &[]),
            send_frame(None, "v1", text)
        ]))
        .await;
    visitor.token = frames.iter().find_map(welcome_of).map(|(token, _)| token);
    let (_, conversation, _) = frames.iter().find_map(ack_of).expect("ack");
    (visitor, conversation, site)
}

fn mailer(smtp: &SmtpServer) -> server::mail::MailSetup {
    server::mail::MailSetup::new(
        Some(format!("smtp://127.0.0.1:{}", smtp.port)),
        Some("Shop support <support@shop.example>".into()),
        false,
    )
    .expect("mailer")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_visitor_gets_the_transcript_by_e_mail() {
    let smtp = SmtpServer::start();
    let relay = mailer(&smtp);
    let server = common::spawn_sqlite_with(|config| config.mail = relay).await;
    let (visitor, conversation, site) =
        visitor_with_conversation(&server, "我想退款，订单 A-17").await;
    let (_, cookie) =
        common::agent_cookie(server.store.as_ref(), "mei@shop.example", &[site]).await;
    let mut agent = Http::new(&server.url(""), "agent");
    agent.cookie = Some(cookie);
    let (_, frames) = agent
        .send(json!([
            send_frame(Some(conversation), "a1", "The refund is on its way."),
            {"type": "set_conversation_status", "conversation_id": conversation,
             "client_id": "r1", "status": "resolved"}
        ]))
        .await;
    assert_eq!(frames.iter().filter_map(ack_of).count(), 2, "{frames:?}");

    let (status, body_json) = post(
        &visitor,
        "/http/visitor/transcript",
        json!({"conversation_id": conversation, "email": " mei@example.com "}),
    )
    .await;
    assert_eq!(status, 204, "{body_json}");
    let mails = smtp.received();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(header(mail, "To"), Some("mei@example.com"));
    assert_eq!(
        header(mail, "From"),
        Some("\"Shop support\" <support@shop.example>")
    );
    assert_eq!(header(mail, "Subject"), Some("Your conversation with shop"));
    let text = body(mail);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Your conversation with shop");
    assert!(
        lines[2].ends_with("UTC] You: 我想退款，订单 A-17"),
        "{text}"
    );
    assert!(
        lines[3].ends_with("UTC] mei: The refund is on its way."),
        "{text}"
    );
    assert!(
        lines[4].ends_with("UTC] — mei: conversation resolved"),
        "{text}"
    );
    assert_eq!(lines.len(), 5, "{text}");

    // The widget asks for the copy with its rating: the same mail, and the rating is kept.
    let (status, body_json) = post(
        &visitor,
        "/http/visitor/rating",
        json!({"conversation_id": conversation, "score": 5, "transcript_to": "mei@example.com"}),
    )
    .await;
    assert_eq!(status, 204, "{body_json}");
    assert_eq!(smtp.received().len(), 2);
    let rating = server.store.rating(conversation).await.expect("read");
    assert_eq!(rating.map(|r| r.score), Some(5));

    // Someone else's conversation, or a bad address: refused, and nothing is sent.
    let (other, _) = {
        let mut other = Http::new(&server.url(""), "visitor");
        other.origin = Some("https://shop.example".into());
        let (_, frames) = other.send(json!([visitor_hello("shop", None, &[])])).await;
        other.token = frames.iter().find_map(welcome_of).map(|(token, _)| token);
        (other, ())
    };
    let (status, body_json) = post(
        &other,
        "/http/visitor/transcript",
        json!({"conversation_id": conversation, "email": "thief@example.com"}),
    )
    .await;
    assert_eq!(
        (status, body_json[0]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, _) = post(
        &visitor,
        "/http/visitor/transcript",
        json!({"conversation_id": conversation, "email": "no-at-sign"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(smtp.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_relay_a_transcript_is_unavailable() {
    let server = common::spawn_sqlite().await;
    let (visitor, conversation, _) = visitor_with_conversation(&server, "hello").await;
    let (status, body_json) = post(
        &visitor,
        "/http/visitor/transcript",
        json!({"conversation_id": conversation, "email": "mei@example.com"}),
    )
    .await;
    assert_eq!(
        (status, body_json[0]["code"].as_str()),
        (503, Some("unavailable"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_that_is_down_is_reported_not_hidden() {
    let smtp = SmtpServer::start();
    let relay = mailer(&smtp);
    drop(smtp);
    let server = common::spawn_sqlite_with(|config| config.mail = relay).await;
    let (visitor, conversation, _) = visitor_with_conversation(&server, "hello").await;
    let (status, body_json) = post(
        &visitor,
        "/http/visitor/transcript",
        json!({"conversation_id": conversation, "email": "mei@example.com"}),
    )
    .await;
    assert_eq!(
        (status, body_json[0]["code"].as_str()),
        (503, Some("unavailable"))
    );
}

/// Waits up to five seconds for the relay to hold `count` mails.
async fn mails_eventually(smtp: &SmtpServer, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mails = smtp.received();
        if mails.len() >= count || Instant::now() > deadline {
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_hear_of_a_leave_message_and_answer_it_by_e_mail() {
    let smtp = SmtpServer::start();
    let relay = mailer(&smtp);
    let server = common::spawn_sqlite_with(|config| {
        config.mail = relay;
        config.mail.notify_leave_messages = true;
    })
    .await;
    let (site, _) = common::site(server.store.as_ref(), "shop", &["https://shop.example"]).await;
    let (_, cookie) =
        common::agent_cookie(server.store.as_ref(), "mei@shop.example", &[site]).await;
    let mut visitor = Http::new(&server.url(""), "visitor");
    visitor.origin = Some("https://shop.example".into());
    let (_, frames) = visitor
        .send(json!([visitor_hello("shop", None, &[])]))
        .await;
    visitor.token = frames.iter().find_map(welcome_of).map(|(token, _)| token);
    let (status, left) = post(
        &visitor,
        "/http/visitor/leave-message",
        json!({"name": "Wang", "contact": "wang@example.com", "body": "订单 A-17 还没发货？"}),
    )
    .await;
    assert_eq!(status, 201, "{left}");
    let id = left["id"].as_i64().expect("id").to_string();

    // The site's agent is told.
    let mails = mails_eventually(&smtp, 1).await;
    assert_eq!(mails.len(), 1, "one notification, to the one agent");
    assert_eq!(header(&mails[0], "To"), Some("mei@shop.example"));
    assert_eq!(
        header(&mails[0], "Subject"),
        Some("New leave-message on shop")
    );
    let told = body(&mails[0]).replace("\r\n", "\n");
    assert!(
        told.contains("Wang <wang@example.com> left a message on shop:\n\n订单 A-17 还没发货？"),
        "{told}"
    );

    // The agent answers from the console: the visitor gets the reply with their words quoted.
    let reply = [
        ("id", id.as_str()),
        ("subject", "Re: 订单 A-17"),
        ("body", "It ships today."),
    ];
    let (status, text) =
        common::server_fn(&server, &cookie, "/api/leave_messages/reply", &reply).await;
    assert_eq!(status, 200, "{text}");
    let mails = mails_eventually(&smtp, 2).await;
    let answer = mails
        .iter()
        .find(|m| header(m, "To") == Some("wang@example.com"))
        .expect("the reply");
    assert_eq!(
        body(answer).replace("\r\n", "\n"),
        "It ships today.\n\n> 订单 A-17 还没发货？\n"
    );
    // It is kept as a note, and the leave-message is handled, by this agent.
    let stored = server
        .store
        .leave_message(left["id"].as_i64().expect("id"))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(stored.status, store::LeaveMessageStatus::Handled);
    assert!(stored.assignee_id.is_some());
    let notes = server
        .store
        .leave_message_notes(stored.id)
        .await
        .expect("notes");
    assert_eq!(notes.len(), 1);
    assert!(notes[0].body.contains("It ships today."), "{:?}", notes[0]);

    // A header injected through the subject is refused, and nothing more is sent.
    let evil = [
        ("id", id.as_str()),
        ("subject", "Hi\r\nBcc: all@example.com"),
        ("body", "x"),
    ];
    let (status, text) =
        common::server_fn(&server, &cookie, "/api/leave_messages/reply", &evil).await;
    assert!(status != 200 && text.contains("invalid"), "{status} {text}");
    // Another site's agent cannot answer it.
    let (other_site, _) = common::site(server.store.as_ref(), "other", &[]).await;
    let (_, stranger) =
        common::agent_cookie(server.store.as_ref(), "x@other.example", &[other_site]).await;
    let (status, text) =
        common::server_fn(&server, &stranger, "/api/leave_messages/reply", &reply).await;
    assert!(
        status != 200 && text.contains("not_found"),
        "{status} {text}"
    );
    assert_eq!(smtp.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_smtp_a_reply_says_mail_is_not_set_up() {
    let server = common::spawn_sqlite().await;
    let (site, _) = common::site(server.store.as_ref(), "shop", &[]).await;
    let (_, cookie) =
        common::agent_cookie(server.store.as_ref(), "mei@shop.example", &[site]).await;
    let stored = server
        .store
        .create_leave_message(store::NewLeaveMessage {
            site_id: site,
            visitor_id: None,
            name: None,
            contact: "wang@example.com".into(),
            body: "hello".into(),
            created_at: server::now_ms(),
        })
        .await
        .expect("leave-message");
    let id = stored.id.to_string();
    let form = [("id", id.as_str()), ("subject", "Re"), ("body", "Hi")];
    let (status, text) =
        common::server_fn(&server, &cookie, "/api/leave_messages/reply", &form).await;
    assert!(status != 200 && text.contains("no_mail"), "{status} {text}");
    // Taking it and noting it work without mail.
    let take = [("id", id.as_str()), ("action", "take")];
    assert_eq!(
        common::server_fn(&server, &cookie, "/api/leave_messages/act", &take)
            .await
            .0,
        200
    );
    let note = [("id", id.as_str()), ("body", "Called back")];
    assert_eq!(
        common::server_fn(&server, &cookie, "/api/leave_messages/note", &note)
            .await
            .0,
        200
    );
    let now = server
        .store
        .leave_message(stored.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(now.status, store::LeaveMessageStatus::InProgress);
    let (status, page) = common::server_fn(
        &server,
        &cookie,
        "/api/leave_messages",
        &[("params[q]", "")],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let page: Value = serde_json::from_str(&page).expect("json");
    assert_eq!(page["items"][0]["status"], "in_progress");
    assert_eq!(page["items"][0]["assignee"], "mei");
    assert_eq!(page["items"][0]["notes"][0]["body"], "Called back");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_administrator_sends_a_test_e_mail() {
    let smtp = SmtpServer::start();
    let relay = mailer(&smtp);
    let server = common::spawn_sqlite_with(|config| config.mail = relay).await;
    let (_, boss) = common::admin_cookie(server.store.as_ref(), "boss@shop.example").await;
    let (status, answer) = common::server_fn(
        &server,
        &boss,
        "/api/admin/mail/test",
        &[("to", "it@shop.example")],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let mails = smtp.received();
    assert_eq!(mails.len(), 1);
    assert_eq!(header(&mails[0], "To"), Some("it@shop.example"));
    assert_eq!(header(&mails[0], "Subject"), Some("Kefu test e-mail"));
    assert!(body(&mails[0]).contains("sent by boss"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_sets_up_mail_in_the_console_and_it_works_at_once() {
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("kefu.toml");
    let original = "# the shop's Kefu\nwebhook_retry_ms = 500\n";
    std::fs::write(&file, original).expect("config");
    let server = common::spawn_sqlite_with(|config| config.file = file.clone()).await;
    let (_, boss) = common::admin_cookie(server.store.as_ref(), "boss@shop.example").await;
    let (_, mei) = common::agent_cookie(server.store.as_ref(), "mei@shop.example", &[]).await;
    let test_mail = |cookie: String| {
        let server = &server;
        async move {
            common::server_fn(
                server,
                &cookie,
                "/api/admin/mail/test",
                &[("to", "it@shop.example")],
            )
            .await
        }
    };
    let (status, body) = test_mail(boss.clone()).await;
    assert!(status != 200 && body.contains("no_mail"), "{body}");

    let port = smtp.port.to_string();
    let relay = [
        ("form[host]", "127.0.0.1"),
        ("form[port]", port.as_str()),
        ("form[security]", "none"),
        ("form[from]", "Shop support <support@shop.example>"),
        ("form[notify]", "true"),
    ];
    let save = |cookie: String, form: Vec<(&'static str, String)>| {
        let server = &server;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            common::server_fn(server, &cookie, "/api/admin/mail/save", &form).await
        }
    };
    let owned = |form: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        form.iter().map(|(k, v)| (*k, v.to_string())).collect()
    };
    let (status, body) = save(mei.clone(), owned(&relay)).await;
    assert!(status != 200 && body.contains("forbidden"), "{body}");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), original);

    // Saved: written to the file (comments kept, the old one backed up), in force at once.
    let (status, body) = save(boss.clone(), owned(&relay)).await;
    assert_eq!(status, 200, "{body}");
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(text.starts_with(original), "{text}");
    assert!(
        text.contains(&format!("smtp_url = \"smtp://127.0.0.1:{port}\""))
            && text.contains("notify_leave_messages = true"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("kefu.toml.bak")).expect("backup"),
        original
    );
    let reloaded = server::config::Config::load(&server::config::Overrides {
        config: Some(file.clone()),
        ..Default::default()
    })
    .expect("the saved file loads");
    assert!(reloaded.mail.mailer.is_some() && reloaded.mail.notify_leave_messages);
    let (status, body) = test_mail(boss.clone()).await;
    assert_eq!(status, 200, "{body}");
    let mails = smtp.received();
    assert_eq!(mails.len(), 1);
    assert_eq!(
        header(&mails[0], "From"),
        Some("\"Shop support\" <support@shop.example>")
    );

    // The page shows the relay as fields.
    let (status, body) = common::server_fn(&server, &boss, "/api/admin/mail", &[]).await;
    assert_eq!(status, 200, "{body}");
    let shown: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (
            &shown["form"]["host"],
            &shown["form"]["port"],
            &shown["form"]["security"]
        ),
        (&json!("127.0.0.1"), &json!(smtp.port), &json!("none"))
    );
    assert_eq!(shown["has_password"], false);

    // Settings that would not work are refused and change nothing.
    for (field, value) in [
        ("form[from]", "not an address"),
        ("form[host]", "mail.example/evil"),
        ("form[security]", "ssl2"),
    ] {
        let form: Vec<(&'static str, String)> = relay
            .iter()
            .map(|(k, v)| (*k, if *k == field { value } else { *v }.to_string()))
            .collect();
        let (status, body) = save(boss.clone(), form).await;
        assert!(status != 200 && body.contains("invalid"), "{field}: {body}");
    }
    assert!(
        std::fs::read_to_string(&file)
            .expect("read")
            .contains(&port)
    );

    // With a password: left empty, it is kept for the same relay; a changed host, port or
    // security needs it again, so the saved one never goes to another server.
    let with = |host: &str, port: &str, password: &str| {
        let mut form = owned(&relay);
        for (key, value) in [("form[host]", host), ("form[port]", port)] {
            form.retain(|(k, _)| *k != key);
            form.push((key, value.to_owned()));
        }
        form.push(("form[username]", "shop".to_owned()));
        form.push(("form[password]", password.to_owned()));
        form
    };
    let (status, body) = save(boss.clone(), with("127.0.0.1", &port, "relay-pass")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = save(boss.clone(), with("127.0.0.1", &port, "")).await;
    assert_eq!(status, 200, "{body}");
    let kept = std::fs::read_to_string(&file).expect("read");
    assert!(kept.contains("shop:relay-pass@127.0.0.1"), "{kept}");
    for form in [
        with("mail.attacker.example", &port, ""),
        with("127.0.0.1", "2525", ""),
    ] {
        let (status, body) = save(boss.clone(), form).await;
        assert!(status != 200 && body.contains("secret_required"), "{body}");
    }
    assert_eq!(std::fs::read_to_string(&file).expect("read"), kept);
    let (status, body) = save(boss.clone(), with("mail.example", &port, "new-pass")).await;
    assert_eq!(status, 200, "entered again: {body}");
    assert!(
        std::fs::read_to_string(&file)
            .expect("read")
            .contains("shop:new-pass@mail.example")
    );

    // An empty host turns mail off (and notifications with it).
    let off = vec![
        ("form[host]", String::new()),
        ("form[port]", "587".into()),
        ("form[security]", "starttls".into()),
    ];
    let (status, body) = save(boss.clone(), off).await;
    assert_eq!(status, 200, "{body}");
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(
        !text.contains("smtp_url") && text.contains("notify_leave_messages = false"),
        "{text}"
    );
    let (status, body) = test_mail(boss).await;
    assert!(status != 200 && body.contains("no_mail"), "{body}");
}
