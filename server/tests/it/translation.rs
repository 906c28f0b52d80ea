//! Translation in the chat, over real connections: a visitor writes Chinese and the agent gets
//! the message and then its English translation; the agent's English reply reaches the visitor
//! with a Chinese one. The provider is a local LibreTranslate stand-in. A repeated text comes
//! from the cache (the stand-in is not asked again); a console connecting later replays the
//! translations with the messages; with the provider down, messages still flow and the
//! translation says it is unavailable; at the site's daily budget it says so.

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use common::client::{Ws, ack_of, agent_hello, send_frame, visitor_hello};
use protocol::{ConversationId, MessageId, ServerFrame, SiteId, Translation, Unavailable};
use serde_json::{Value, json};
use server::translate::{LibreTranslate, Retry, TranslationSetup, Translator};

/// A LibreTranslate stand-in that knows a few sentences, counts what it is asked, and can be
/// switched off (then it answers 503).
struct StandIn {
    url: String,
    asked: Arc<Mutex<Vec<Value>>>,
    down: Arc<AtomicBool>,
}

async fn stand_in() -> StandIn {
    let dictionary: HashMap<&str, (&str, &str)> = HashMap::from([
        ("你好，我想退款", ("Hello, I want a refund", "zh")),
        ("还有一个问题", ("One more question", "zh")),
        ("We will refund you today", ("我们今天给您退款", "en")),
        (
            "Hello, how can I help you?",
            ("您好，有什么可以帮您？", "en"),
        ),
    ]);
    let asked: Arc<Mutex<Vec<Value>>> = Arc::default();
    let down = Arc::new(AtomicBool::new(false));
    let (log, off) = (asked.clone(), down.clone());
    let app = axum::Router::new().route(
        "/translate",
        axum::routing::post(move |Json(body): Json<Value>| {
            let (log, off, dictionary) = (log.clone(), off.clone(), dictionary.clone());
            async move {
                log.lock().expect("log").push(body.clone());
                if off.load(Ordering::SeqCst) {
                    return (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(json!({})));
                }
                let q = body["q"].as_str().unwrap_or_default();
                let (text, language) = dictionary.get(q).copied().unwrap_or((q, "en"));
                let mut answer = json!({"translatedText": text});
                if body["source"] == "auto" {
                    answer["detectedLanguage"] = json!({"language": language, "confidence": 90});
                }
                (axum::http::StatusCode::OK, Json(answer))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    StandIn { url, asked, down }
}

fn setup(url: &str, daily_chars: i64) -> TranslationSetup {
    let provider = LibreTranslate {
        url: url.to_owned(),
        api_key: None,
        // The stand-in is on this machine: allowed explicitly, as `[outbound] allow` would.
        client: common::outbound(&["127.0.0.0/8"], &[]).with_timeout(Duration::from_millis(500)),
    };
    TranslationSetup {
        translator: Arc::new(Translator::new(
            Box::new(provider),
            Retry {
                attempts: 2,
                first_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(50),
            },
        )),
        daily_chars,
        agent_language: "en".into(),
        section: Default::default(),
    }
}

/// A site that translates, with its agent (English) and a visitor, each on a WebSocket.
async fn chat(server: &common::TestServer) -> (Ws, Ws, SiteId, String) {
    let store = server.store.as_ref();
    let site = store
        .create_site(store::NewSite {
            public_key: "shop".into(),
            name: "Shop".into(),
            allowed_origins: vec!["https://shop.example".into()],
            widget_settings: json!({"translate": true}),
            created_at: server::now_ms(),
        })
        .await
        .expect("site");
    let (_, cookie) = common::agent_cookie(store, "ann@shop.example", &[site.id]).await;
    let mut agent = Ws::connect(&server.url(""), "/ws/agent", None, Some(&cookie)).await;
    agent.send_json(agent_hello(&[])).await;
    agent
        .until(|f| matches!(f, ServerFrame::Welcome(_)).then_some(()))
        .await;
    let mut visitor = Ws::connect(
        &server.url(""),
        "/ws/visitor",
        Some("https://shop.example"),
        None,
    )
    .await;
    visitor.send_json(visitor_hello("shop", None, &[])).await;
    visitor
        .until(|f| matches!(f, ServerFrame::Welcome(_)).then_some(()))
        .await;
    (agent, visitor, site.id, cookie)
}

/// What `ws` (a visitor or an agent) says; returns the conversation and the message's seq.
async fn say(
    ws: &mut Ws,
    conversation: Option<ConversationId>,
    id: &str,
    body: &str,
) -> (ConversationId, i64) {
    ws.send_json(send_frame(conversation, id, body)).await;
    let (_, conversation, seq) = ws
        .until(|f| ack_of(f).filter(|(client_id, _, _)| client_id == id))
        .await;
    (conversation, seq)
}

async fn translation(ws: &mut Ws, seq: i64) -> Translation {
    ws.until(|frame| match frame {
        ServerFrame::Translation(t) if t.seq == seq => Some(t.clone()),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_and_visitor_read_each_other_in_their_own_languages() {
    let provider = stand_in().await;
    let translation_setup = setup(&provider.url, 10_000);
    let server = common::spawn_sqlite_wired(
        |_| {},
        |services| services.translation = Some(translation_setup),
    )
    .await;
    let (mut agent, mut visitor, _, cookie) = chat(&server).await;

    // The visitor writes Chinese: the agent gets the message, then its English translation.
    let (conversation, first) = say(&mut visitor, None, "v1", "你好，我想退款").await;
    agent
        .until(|f| matches!(f, ServerFrame::Message(m) if m.body == "你好，我想退款").then_some(()))
        .await;
    let english = translation(&mut agent, first).await;
    assert_eq!(
        (
            english.text.as_deref(),
            english.language.as_str(),
            english.source_language.as_str()
        ),
        (Some("Hello, I want a refund"), "en", "zh")
    );
    assert_eq!(english.conversation_id, conversation);
    let asked = provider.asked.lock().expect("log")[0].clone();
    assert_eq!(
        (&asked["source"], &asked["target"]),
        (&json!("zh"), &json!("en"))
    );

    // The same words again come from the cache: the provider is not asked again.
    let (_, second) = say(&mut visitor, Some(conversation), "v2", "你好，我想退款").await;
    let again = translation(&mut agent, second).await;
    assert_eq!(again.text.as_deref(), Some("Hello, I want a refund"));
    assert_eq!(provider.asked.lock().expect("log").len(), 1);

    // The agent answers in English: the visitor gets it in Chinese too.
    let (_, reply) = say(
        &mut agent,
        Some(conversation),
        "a1",
        "We will refund you today",
    )
    .await;
    let chinese = translation(&mut visitor, reply).await;
    assert_eq!(
        (chinese.text.as_deref(), chinese.language.as_str()),
        (Some("我们今天给您退款"), "zh")
    );
    // Each translation is kept with its message.
    let ids: Vec<MessageId> = server
        .store
        .messages_after(conversation, 0, 10)
        .await
        .expect("messages")
        .iter()
        .map(|m| m.id)
        .collect();
    let kept = server
        .store
        .message_translations(&ids)
        .await
        .expect("translations");
    assert_eq!(
        kept.iter()
            .map(|t| (t.target_language.as_str(), t.text.as_deref()))
            .collect::<Vec<_>>(),
        [
            ("en", Some("Hello, I want a refund")),
            ("en", Some("Hello, I want a refund")),
            ("zh", Some("我们今天给您退款")),
        ]
    );

    // A console that connects later gets the translations with the messages it replays.
    let mut late = Ws::connect(&server.url(""), "/ws/agent", None, Some(&cookie)).await;
    late.send_json(agent_hello(&[(conversation, 0)])).await;
    let replayed = translation(&mut late, reply).await;
    assert_eq!(replayed.text.as_deref(), Some("我们今天给您退款"));

    // The provider goes down: the message still arrives, and its translation is unavailable.
    provider.down.store(true, Ordering::SeqCst);
    let asked_before = provider.asked.lock().expect("log").len();
    let (_, third) = say(&mut visitor, Some(conversation), "v3", "还有一个问题").await;
    agent
        .until(|f| matches!(f, ServerFrame::Message(m) if m.body == "还有一个问题").then_some(()))
        .await;
    let down = translation(&mut agent, third).await;
    assert_eq!(
        (down.text, down.unavailable),
        (None, Some(Unavailable::Provider))
    );
    assert_eq!(
        provider.asked.lock().expect("log").len(),
        asked_before + 2,
        "tried twice"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn translation_stops_at_the_sites_daily_budget_and_says_so() {
    let provider = stand_in().await;
    // "你好，我想退款" is 7 characters, "还有一个问题" 6: the second is over a budget of 10.
    let translation_setup = setup(&provider.url, 10);
    let server = common::spawn_sqlite_wired(
        |_| {},
        |services| services.translation = Some(translation_setup),
    )
    .await;
    let (mut agent, mut visitor, site, _) = chat(&server).await;
    let (conversation, first) = say(&mut visitor, None, "v1", "你好，我想退款").await;
    let translated = translation(&mut agent, first).await;
    assert_eq!(translated.text.as_deref(), Some("Hello, I want a refund"));
    let (_, second) = say(&mut visitor, Some(conversation), "v2", "还有一个问题").await;
    let refused = translation(&mut agent, second).await;
    assert_eq!(
        (refused.text, refused.unavailable),
        (None, Some(Unavailable::Budget))
    );
    assert_eq!(provider.asked.lock().expect("log").len(), 1, "not sent");
    // The rest of the day's budget counts as spent: a text short enough to fit in the 3
    // characters left is not translated either, and the admin page shows the limit reached.
    let day = server::now_ms() / 86_400_000;
    assert_eq!(
        server
            .store
            .translation_chars(site, day)
            .await
            .expect("count"),
        10
    );
    let (_, third) = say(&mut visitor, Some(conversation), "v3", "谢谢").await;
    let refused = translation(&mut agent, third).await;
    assert_eq!(refused.unavailable, Some(Unavailable::Budget));
    assert_eq!(provider.asked.lock().expect("log").len(), 1, "not sent");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_visitor_too_brief_to_tell_is_taken_at_their_browsers_language() {
    let provider = stand_in().await;
    let translation_setup = setup(&provider.url, 10_000);
    let server = common::spawn_sqlite_wired(
        |_| {},
        |services| services.translation = Some(translation_setup),
    )
    .await;
    let (mut agent, _, _, _) = chat(&server).await;
    let mut visitor = Ws::connect(
        &server.url(""),
        "/ws/visitor",
        Some("https://shop.example"),
        None,
    )
    .await;
    let mut hello = visitor_hello("shop", None, &[]);
    hello["language"] = "zh-CN".into();
    visitor.send_json(hello).await;
    let visitor_id = visitor
        .until(|f| match f {
            ServerFrame::Welcome(welcome) => welcome.visitor_id,
            _ => None,
        })
        .await;
    let kept = server
        .store
        .visitor(visitor_id)
        .await
        .expect("read")
        .expect("visitor");
    assert_eq!(kept.language.as_deref(), Some("zh-CN"));

    // An order number says nothing of its language: the browser's is used.
    let (_, seq) = say(&mut visitor, None, "v1", "A-12345").await;
    translation(&mut agent, seq).await;
    let asked = provider.asked.lock().expect("log")[0].clone();
    assert_eq!(
        (&asked["source"], &asked["target"]),
        (&json!("zh"), &json!("en"))
    );
    server.stop().await;
}

/// Calls a console server function with owned form fields.
async fn call(
    server: &common::TestServer,
    cookie: &str,
    path: &str,
    form: &[(&str, String)],
) -> (u16, String) {
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    common::server_fn(server, cookie, path, &form).await
}

#[tokio::test(flavor = "multi_thread")]
async fn translation_set_by_a_variable_is_shown_locked_and_never_saved_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("kefu.toml");
    let original = "# the shop's Kefu\n";
    std::fs::write(&file, original).expect("config");
    let server = common::spawn_sqlite_with(|config| {
        config.file = file.clone();
        config.translation_locked = true;
    })
    .await;
    let (_, boss) = common::admin_cookie(server.store.as_ref(), "boss@shop.example").await;
    let (status, body) = call(&server, &boss, "/api/admin/translation", &[]).await;
    assert_eq!(status, 200, "{body}");
    let shown: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(shown["locked"], true, "{body}");
    let form = vec![
        ("form[provider]", "libretranslate".to_owned()),
        ("form[url]", "http://127.0.0.1:5000".to_owned()),
        ("form[daily_chars]", "1000".to_owned()),
    ];
    let (status, body) = call(&server, &boss, "/api/admin/translation/save", &form).await;
    assert!(status != 200 && body.contains("forbidden"), "{body}");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), original);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_sets_up_the_provider_in_the_console_and_agents_translate_drafts() {
    let provider = stand_in().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("kefu.toml");
    // The stand-in is on this machine: the file allows it, and so does the running server.
    let original =
        "# the shop's Kefu\nwebhook_retry_ms = 500\n[outbound]\nallow = [\"127.0.0.0/8\"]\n";
    std::fs::write(&file, original).expect("config");
    let server = common::spawn_sqlite_with(|config| {
        config.file = file.clone();
        config.outbound = common::allow(&["127.0.0.0/8"]);
    })
    .await;
    let (_, boss) = common::admin_cookie(server.store.as_ref(), "boss@shop.example").await;
    let (mut agent, mut visitor, _, ann) = chat(&server).await;

    // No provider yet: the page says so, and a draft cannot be translated.
    let (status, body) = call(&server, &boss, "/api/admin/translation", &[]).await;
    assert_eq!(status, 200, "{body}");
    let shown: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(shown["form"]["provider"], "");
    let (conversation, _) = say(&mut visitor, None, "v1", "你好，我想退款").await;
    let draft = |text: &str| {
        let form = vec![("id", conversation.to_string()), ("text", text.to_owned())];
        let (server, ann) = (&server, ann.clone());
        async move { call(server, &ann, "/api/conversation/translate", &form).await }
    };
    let (status, body) = draft("We will refund you today").await;
    assert!(status != 200 && body.contains("no_translation"), "{body}");

    let form = |provider: &str, url: &str| {
        vec![
            ("form[provider]", provider.to_owned()),
            ("form[url]", url.to_owned()),
            ("form[daily_chars]", "1000".to_owned()),
            ("form[agent_language]", "en".to_owned()),
        ]
    };
    let good = form("libretranslate", &provider.url);
    // The test button tries the provider the form describes, saving nothing.
    let (status, body) = call(&server, &boss, "/api/admin/translation/test", &good).await;
    assert_eq!((status, body.as_str()), (200, "\"您好，有什么可以帮您？\""));
    assert_eq!(std::fs::read_to_string(&file).expect("read"), original);
    let (status, body) = call(
        &server,
        &boss,
        "/api/admin/translation/test",
        &form("libretranslate", "http://127.0.0.1:9"),
    )
    .await;
    assert!(
        status != 200 && body.contains("translation_failed"),
        "{body}"
    );

    // Agents may not; settings that make no provider are refused and change nothing.
    let (status, body) = call(&server, &ann, "/api/admin/translation/save", &good).await;
    assert!(status != 200 && body.contains("forbidden"), "{body}");
    for bad in [
        form("libretranslate", "ftp://127.0.0.1"),
        form("deepl", ""),
        form("babelfish", &provider.url),
    ] {
        let (status, body) = call(&server, &boss, "/api/admin/translation/save", &bad).await;
        assert!(status != 200 && body.contains("invalid"), "{bad:?}: {body}");
    }
    assert_eq!(std::fs::read_to_string(&file).expect("read"), original);

    // Saved: in the file (which loads), and in force at once.
    let (status, body) = call(&server, &boss, "/api/admin/translation/save", &good).await;
    assert_eq!(status, 200, "{body}");
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(
        text.starts_with(original) && text.contains("provider = \"libretranslate\""),
        "{text}"
    );
    let reloaded = server::config::Config::load(&server::config::Overrides {
        config: Some(file.clone()),
        ..Default::default()
    })
    .expect("the saved file loads");
    let opened = server::wiring::services(&reloaded).expect("and its provider opens");
    assert_eq!(opened.translation.map(|t| t.daily_chars), Some(1000));

    // The agent's draft, in the visitor's language; sending it then costs no provider call.
    let (status, body) = draft("We will refund you today").await;
    assert_eq!(status, 200, "{body}");
    let translated: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        translated,
        json!({"Text": {"text": "我们今天给您退款", "language": "zh"}})
    );
    let asked = provider.asked.lock().expect("log").len();
    let (_, reply) = say(
        &mut agent,
        Some(conversation),
        "a1",
        "We will refund you today",
    )
    .await;
    let chinese = translation(&mut visitor, reply).await;
    assert_eq!(chinese.text.as_deref(), Some("我们今天给您退款"));
    assert_eq!(provider.asked.lock().expect("log").len(), asked);

    // The page counts the site's characters today.
    let (_, body) = call(&server, &boss, "/api/admin/translation", &[]).await;
    let shown: Value = serde_json::from_str(&body).expect("json");
    let used = "We will refund you today".chars().count();
    let shop = shown["usage"]
        .as_array()
        .and_then(|sites| sites.iter().find(|s| s["site"] == "Shop"))
        .expect("the shop's row");
    assert_eq!((&shop["used"], &shop["on"]), (&json!(used), &json!(true)));
    assert_eq!(shown["form"]["daily_chars"], 1000);

    // Switched off for this conversation: no translation for drafts or messages.
    let off = [("id", conversation.to_string()), ("on", "false".to_owned())];
    let (status, body) = call(&server, &ann, "/api/conversation/translating", &off).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = draft("We will refund you today").await;
    assert!(status != 200 && body.contains("no_translation"), "{body}");
    let asked = provider.asked.lock().expect("log").len();
    let (_, unasked) = say(&mut visitor, Some(conversation), "v2", "还有一个问题").await;
    // The agent hears of the message; a translation of it would follow within this wait.
    agent
        .until(|f| matches!(f, ServerFrame::Message(m) if m.seq == unasked).then_some(()))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(provider.asked.lock().expect("log").len(), asked);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_saved_key_goes_only_to_the_saved_address_and_internal_addresses_are_refused() {
    let (first, second) = (stand_in().await, stand_in().await);
    let port = |url: &str| url.rsplit(':').next().expect("port").to_owned();
    let allowed = [
        format!("127.0.0.1:{}", port(&first.url)),
        format!("127.0.0.1:{}", port(&second.url)),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("kefu.toml");
    std::fs::write(&file, "# the shop's Kefu\n").expect("config");
    let server = common::spawn_sqlite_wired(
        |config| config.file = file.clone(),
        |services| {
            services.outbound = common::outbound(
                &[allowed[0].as_str(), allowed[1].as_str()],
                &[("public.example", "127.0.0.1")],
            );
        },
    )
    .await;
    let (_, boss) = common::admin_cookie(server.store.as_ref(), "boss@shop.example").await;
    let form = |provider: &str, url: &str, key: &str| {
        vec![
            ("form[provider]", provider.to_owned()),
            ("form[url]", url.to_owned()),
            ("form[api_key]", key.to_owned()),
            ("form[daily_chars]", "1000".to_owned()),
            ("form[agent_language]", "en".to_owned()),
        ]
    };
    let test = |form: Vec<(&'static str, String)>| {
        let (server, boss) = (&server, boss.clone());
        async move { call(server, &boss, "/api/admin/translation/test", &form).await }
    };
    let last_key = |provider: &StandIn| {
        provider.asked.lock().expect("log").last().expect("asked")["api_key"].clone()
    };
    let (status, body) = call(
        &server,
        &boss,
        "/api/admin/translation/save",
        &form("libretranslate", &first.url, "libre-key"),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Left empty, the saved key is used at the saved address …
    let (status, body) = test(form("libretranslate", &first.url, "")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(last_key(&first), json!("libre-key"));
    // … and not sent to another one: there a provider that needs a key wants it again.
    let (status, body) = test(form("libretranslate", &second.url, "")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(last_key(&second), Value::Null, "the saved key stayed home");
    for path in ["/api/admin/translation/test", "/api/admin/translation/save"] {
        let (status, body) = call(&server, &boss, path, &form("deepl", &second.url, "")).await;
        assert!(
            status != 200 && body.contains("secret_required"),
            "{path}: {body}"
        );
    }
    let (status, body) = test(form("deepl", &second.url, "deepl-key")).await;
    assert!(
        status != 200 && body.contains("translation_failed"),
        "a key entered again is used: {body}"
    );

    // This machine (but the allowed ports), private networks, cloud metadata and a name that
    // resolves to this machine are refused, at the test button and at saving.
    let before = std::fs::read_to_string(&file).expect("read");
    let asked = first.asked.lock().expect("log").len() + second.asked.lock().expect("log").len();
    for url in [
        "http://127.0.0.1:9".to_owned(),
        "http://10.0.0.1:5000".to_owned(),
        "http://169.254.169.254".to_owned(),
        format!("http://public.example:{}", port(&first.url)),
    ] {
        let (status, body) = test(form("libretranslate", &url, "")).await;
        assert!(
            status != 200 && body.contains("address_refused"),
            "{url}: {body}"
        );
    }
    for url in [
        "http://127.0.0.1:9",
        "http://[::1]:5000",
        "http://169.254.169.254",
    ] {
        let (status, body) = call(
            &server,
            &boss,
            "/api/admin/translation/save",
            &form("libretranslate", url, "k"),
        )
        .await;
        assert!(
            status != 200 && body.contains("address_refused"),
            "{url}: {body}"
        );
    }
    assert_eq!(std::fs::read_to_string(&file).expect("read"), before);
    assert_eq!(
        first.asked.lock().expect("log").len() + second.asked.lock().expect("log").len(),
        asked,
        "no request reached a stand-in"
    );
}
