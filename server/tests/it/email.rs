//! Mail that leaves Kefu, received by a real SMTP server: Python's `aiosmtpd` (installed by
//! `make test`), started by the test, storing what it receives in a maildir the test reads.

use crate::common;
use protocol::{ConversationId, SiteId};

use base64::Engine;
use common::client::{Http, ack_of, message_of, send_frame, visitor_hello, welcome_of};
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

/// [`post`] that also returns the answer's `Retry-After` (seconds).
async fn post_with_headers(http: &Http, path: &str, body: Value) -> (u16, Option<u64>, Value) {
    let mut request = http
        .client
        .post(format!("{}{path}", http.base))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(token) = &http.token {
        request = request.header(protocol::transport::VISITOR_TOKEN_HEADER, token);
    }
    if let Some(origin) = &http.origin {
        request = request.header("origin", origin);
    }
    let response = request.send().await.expect("post");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let text = response.text().await.expect("body");
    (
        status,
        retry_after,
        serde_json::from_str(&text).unwrap_or_default(),
    )
}

/// A visitor of a new site "shop" who wrote `text`: their client, conversation and site.
async fn visitor_with_conversation(
    server: &common::TestServer,
    text: &str,
) -> (Http, ConversationId, SiteId) {
    let (site, _) = common::site(server.store.as_ref(), "shop", &["https://shop.example"]).await;
    let (visitor, conversation) = another_visitor(server, text).await;
    (visitor, conversation, site)
}

/// A new visitor of the existing site "shop" who wrote `text`: their client and conversation.
async fn another_visitor(server: &common::TestServer, text: &str) -> (Http, ConversationId) {
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
    (visitor, conversation)
}

/// `agent` writes `text` in `conversation`.
async fn agent_replies(agent: &Http, conversation: ConversationId, text: &str) {
    let (_, frames) = agent
        .send(json!([send_frame(Some(conversation), "a1", text)]))
        .await;
    assert_eq!(frames.iter().filter_map(ack_of).count(), 1, "{frames:?}");
}

/// An agent of `site`, signed in.
async fn agent_of(server: &common::TestServer, email: &str, site: SiteId) -> Http {
    let (_, cookie) = common::agent_cookie(server.store.as_ref(), email, &[site]).await;
    let mut agent = Http::new(&server.url(""), "agent");
    agent.cookie = Some(cookie);
    agent
}

fn mailer(smtp: &SmtpServer) -> server::mail::MailSettings {
    server::mail::MailSettings {
        smtp_url: Some(format!("smtp://127.0.0.1:{}", smtp.port)),
        from: Some("Shop support <support@shop.example>".into()),
        notify_leave_messages: false,
    }
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

    // The conversation tells its agents where the copy went.
    let recorded = server
        .store
        .messages_before(conversation, None, 1)
        .await
        .expect("read");
    assert_eq!(
        (recorded[0].author, recorded[0].body.as_str()),
        (protocol::Author::System, "transcript_sent:mei@example.com")
    );

    // The widget asks for a copy with its rating: within the hour of the last one it is
    // refused (and the rating not kept, so the visitor can rate without one).
    let (status, retry_after, body_json) = post_with_headers(
        &visitor,
        "/http/visitor/rating",
        json!({"conversation_id": conversation, "score": 5, "transcript_to": "mei@example.com"}),
    )
    .await;
    assert_eq!(
        (status, body_json[0]["code"].as_str()),
        (429, Some("rate_limited")),
        "{body_json}"
    );
    let retry_after = retry_after.expect("Retry-After");
    assert!((3500..=3600).contains(&retry_after), "{retry_after}");
    assert!(
        server
            .store
            .rating(conversation)
            .await
            .expect("read")
            .is_none()
    );
    let (status, body_json) = post(
        &visitor,
        "/http/visitor/rating",
        json!({"conversation_id": conversation, "score": 5}),
    )
    .await;
    assert_eq!(status, 204, "{body_json}");
    assert_eq!(smtp.received().len(), 1);
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
    assert_eq!(smtp.received().len(), 1);
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
    let (visitor, conversation, site) = visitor_with_conversation(&server, "hello").await;
    let agent = agent_of(&server, "mei@shop.example", site).await;
    agent_replies(&agent, conversation, "Hi!").await;
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

/// Waits up to ten seconds for the relay to hold `count` mails.
async fn mails_eventually(smtp: &SmtpServer, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
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
        .leave_message(store::LeaveMessageId(left["id"].as_i64().expect("id")))
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

/// `visitor` asks for `conversation`'s transcript to go to someone@example.com.
async fn ask(visitor: &Http, conversation: ConversationId) -> (u16, Option<u64>, Value) {
    post_with_headers(
        visitor,
        "/http/visitor/transcript",
        json!({"conversation_id": conversation, "email": "someone@example.com"}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transcript_needs_an_agent_reply_and_goes_out_once_an_hour() {
    let smtp = SmtpServer::start();
    let relay = mailer(&smtp);
    let server = common::spawn_sqlite_with(|config| {
        config.mail = relay;
        // The guard, not the visitor's message rate, must be what stops the copies.
        config.messages_per_minute = 100_000;
        config.mail_limits.transcripts.per_address_per_day = 2;
    })
    .await;
    let (visitor, conversation, site) = visitor_with_conversation(&server, "spam spam").await;
    // Only the visitor wrote: the server will not mail their words anywhere.
    let (status, _, body_json) = ask(&visitor, conversation).await;
    assert_eq!(
        (status, body_json[0]["code"].as_str()),
        (409, Some("conflict")),
        "{body_json}"
    );
    assert!(smtp.received().is_empty());

    // Once an agent has written, fifty requests at once deliver one mail.
    let agent = agent_of(&server, "mei@shop.example", site).await;
    agent_replies(&agent, conversation, "How can I help?").await;
    let answers =
        futures_util::future::join_all((0..50).map(|_| ask(&visitor, conversation))).await;
    let sent = answers.iter().filter(|(status, ..)| *status == 204).count();
    assert_eq!(sent, 1, "{answers:?}");
    for (status, retry_after, body_json) in answers.iter().filter(|(s, ..)| *s != 204) {
        assert_eq!(
            (*status, body_json[0]["code"].as_str()),
            (429, Some("rate_limited")),
            "{body_json}"
        );
        assert!(retry_after.is_some_and(|s| s > 3000), "{retry_after:?}");
    }
    assert_eq!(smtp.received().len(), 1);

    // The agent's console learns where it went, as the conversation's next message.
    let (_, frames) = agent.poll(&[(conversation, 2)], 0).await;
    let told: Vec<_> = frames.iter().filter_map(message_of).collect();
    assert_eq!(
        told,
        vec![(
            conversation,
            3,
            "transcript_sent:someone@example.com".to_string()
        )],
        "{frames:?}"
    );

    // The address's second copy today goes out (another conversation); its third does not.
    let (second, conversation2) = another_visitor(&server, "me again").await;
    agent_replies(&agent, conversation2, "Yes?").await;
    assert_eq!(ask(&second, conversation2).await.0, 204);
    let (third, conversation3) = another_visitor(&server, "and again").await;
    agent_replies(&agent, conversation3, "Yes?").await;
    let (status, retry_after, body_json) = ask(&third, conversation3).await;
    assert_eq!(
        (status, body_json[0]["message"].as_str()),
        (429, Some("too many transcripts from this address today")),
        "{body_json}"
    );
    assert!(retry_after.is_some_and(|s| s > 80_000), "{retry_after:?}");
    assert_eq!(smtp.received().len(), 2);
}

/// How many leave-messages a notification's subject counts.
fn leave_messages_told(mail: &str) -> usize {
    let subject = header(mail, "Subject").expect("subject");
    if subject == "New leave-message on shop" {
        return 1;
    }
    subject
        .strip_suffix(" new leave-messages on shop")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a notification: {subject}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_leave_messages_is_one_digest_per_agent() {
    let smtp = SmtpServer::start();
    let relay = mailer(&smtp);
    let server = common::spawn_sqlite_with(|config| {
        config.mail = relay;
        config.mail.notify_leave_messages = true;
        config.messages_per_minute = 100_000;
        // Longer than the test: what follows the first mail waits for the server's exit.
        config.mail_limits.notify_digest = Duration::from_secs(3600);
    })
    .await;
    let (site, _) = common::site(server.store.as_ref(), "shop", &["https://shop.example"]).await;
    let agents = ["mei@shop.example", "lei@shop.example"];
    for email in agents {
        common::agent_cookie(server.store.as_ref(), email, &[site]).await;
    }
    let mut visitor = Http::new(&server.url(""), "visitor");
    visitor.origin = Some("https://shop.example".into());
    let (_, frames) = visitor
        .send(json!([visitor_hello("shop", None, &[])]))
        .await;
    visitor.token = frames.iter().find_map(welcome_of).map(|(token, _)| token);
    for chunk in 0..20 {
        let posts = (0..25).map(|n| {
            let visitor = &visitor;
            async move {
                post(
                    visitor,
                    "/http/visitor/leave-message",
                    json!({"contact": format!("v{chunk}-{n}@example.com"), "body": "订单呢？"}),
                )
                .await
            }
        });
        for (status, left) in futures_util::future::join_all(posts).await {
            assert_eq!(status, 201, "{left}");
        }
    }

    // The first news goes out at once, one mail per agent…
    assert_eq!(
        mails_eventually(&smtp, agents.len()).await.len(),
        agents.len()
    );
    // …and the rest waits for the window to end, or, as here, for the server to stop.
    server.stop().await;
    let mails = smtp.received();
    for agent in agents {
        let theirs: Vec<&String> = mails
            .iter()
            .filter(|m| header(m, "To") == Some(agent))
            .collect();
        assert_eq!(theirs.len(), 2, "{agent}: {theirs:?}");
        let told: usize = theirs.iter().map(|m| leave_messages_told(m)).sum();
        assert_eq!(told, 500, "{agent}");
        let digest = theirs
            .iter()
            .map(|m| body(m))
            .find(|b| b.contains("… and "))
            .expect("a digest that lists the first ones and counts the rest");
        assert!(digest.contains("v"), "{digest}");
    }
    assert_eq!(mails.len(), 2 * agents.len());
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
    let opened = server::wiring::services(&reloaded).expect("and its relay opens");
    assert!(opened.mail.mailer.is_some() && reloaded.mail.notify_leave_messages);
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
