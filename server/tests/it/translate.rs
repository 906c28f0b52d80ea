//! Each translation provider against a local HTTP server that speaks that provider's documented
//! API: the test checks what Kefu sent (path, query, auth header or signature, body) and
//! scripts the answers — success, 429 then success (retried), no answer in time (a timeout,
//! retried, then given up), and an answer that is not the documented shape (not retried).
//! The stand-ins listen on 127.0.0.1, which the outbound client reaches only because these
//! tests allow it, as `[outbound] allow` would; without that, every way to this machine or a
//! private network is refused, and answers are read up to a size cap.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};
use server::translate::{
    Azure, Baidu, DeepL, Google, LibreTranslate, OpenAiChat, Provider, Retry, TranslateError,
    Translator,
};

/// One request the provider's stand-in received.
#[derive(Debug, Clone)]
struct Request {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Request {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The query's (or a form body's) value for `key`.
    fn param(text: &str, key: &str) -> Option<String> {
        url::form_urlencoded::parse(text.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    fn query(&self, key: &str) -> Option<String> {
        Request::param(self.uri.query().unwrap_or_default(), key)
    }

    fn form(&self, key: &str) -> Option<String> {
        Request::param(&String::from_utf8_lossy(&self.body), key)
    }
}

/// How the stand-in answers one request.
#[derive(Clone)]
struct Reply {
    status: u16,
    body: String,
    delay: Duration,
}

impl Reply {
    fn ok(body: Value) -> Reply {
        Reply {
            status: 200,
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    fn status(status: u16) -> Reply {
        Reply {
            status,
            body: json!({"error": "slow down"}).to_string(),
            delay: Duration::ZERO,
        }
    }

    fn slow() -> Reply {
        Reply {
            status: 200,
            body: "{}".into(),
            delay: Duration::from_secs(3),
        }
    }

    fn text(body: &str) -> Reply {
        Reply {
            status: 200,
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
}

/// A stand-in answering `replies` in turn (the last one again when they run out); returns its
/// base URL and what it received.
async fn stand_in(replies: Vec<Reply>) -> (String, Arc<Mutex<Vec<Request>>>) {
    let received: Arc<Mutex<Vec<Request>>> = Arc::default();
    let replies = Arc::new(Mutex::new(replies));
    let log = received.clone();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (log, replies) = (log.clone(), replies.clone());
            async move {
                log.lock().expect("log").push(Request {
                    method,
                    uri,
                    headers,
                    body,
                });
                let reply = {
                    let mut replies = replies.lock().expect("replies");
                    if replies.len() > 1 {
                        replies.remove(0)
                    } else {
                        replies[0].clone()
                    }
                };
                tokio::time::sleep(reply.delay).await;
                (
                    StatusCode::from_u16(reply.status).expect("status"),
                    [("content-type", "application/json")],
                    reply.body,
                )
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), received)
}

/// Quick retries, and a client that gives up after half a second.
fn translator(provider: Box<dyn Provider>) -> Translator {
    Translator::new(
        provider,
        Retry {
            attempts: 3,
            first_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
        },
    )
}

/// The outbound client with the stand-ins' loopback network allowed, giving up after half a
/// second.
fn client() -> server::outbound::Outbound {
    common::outbound(&["127.0.0.0/8"], &[]).with_timeout(Duration::from_millis(500))
}

/// Runs the four scripted cases against the provider `make` builds for a stand-in's URL:
/// `ok` is the provider's success answer for "你好，我想退款" (zh → en "Hello, I want a
/// refund"); `check` asserts what the provider sent. Returns the first request, for more checks.
async fn scenarios(
    make: impl Fn(String) -> Box<dyn Provider>,
    ok: Value,
    check: impl Fn(&Request),
) {
    // Success: the documented request, the translation read from the documented answer.
    let (url, received) = stand_in(vec![Reply::ok(ok.clone())]).await;
    let translated = translator(make(url))
        .translate("你好，我想退款", Some("zh-CN"), "en")
        .await
        .expect("translated");
    assert_eq!(translated.text, "Hello, I want a refund");
    let requests = received.lock().expect("log").clone();
    assert_eq!(requests.len(), 1);
    check(&requests[0]);

    // 429, then success: retried.
    let (url, received) = stand_in(vec![Reply::status(429), Reply::ok(ok.clone())]).await;
    let translated = translator(make(url))
        .translate("你好，我想退款", Some("zh-CN"), "en")
        .await
        .expect("translated after a retry");
    assert_eq!(translated.text, "Hello, I want a refund");
    assert_eq!(received.lock().expect("log").len(), 2);

    // 503 three times: given up, with the status.
    let (url, received) = stand_in(vec![Reply::status(503)]).await;
    let error = translator(make(url))
        .translate("你好", None, "en")
        .await
        .expect_err("the provider is down");
    assert!(
        matches!(error, TranslateError::Status { status: 503, .. }),
        "{error:?}"
    );
    assert_eq!(received.lock().expect("log").len(), 3);

    // No answer in time: a timeout, tried three times.
    let (url, received) = stand_in(vec![Reply::slow()]).await;
    let started = std::time::Instant::now();
    let error = translator(make(url))
        .translate("你好", None, "en")
        .await
        .expect_err("too slow");
    assert_eq!(error, TranslateError::Timeout);
    assert_eq!(received.lock().expect("log").len(), 3);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "gave up in time"
    );

    // Not the documented shape: malformed, not retried.
    for bad in [
        Reply::text("<html>oops</html>"),
        Reply::ok(json!({"unexpected": true})),
    ] {
        let (url, received) = stand_in(vec![bad]).await;
        let error = translator(make(url))
            .translate("你好", None, "en")
            .await
            .expect_err("malformed");
        assert!(matches!(error, TranslateError::Malformed(_)), "{error:?}");
        assert_eq!(received.lock().expect("log").len(), 1);
    }
}

#[tokio::test]
async fn libretranslate() {
    scenarios(
        |url| {
            Box::new(LibreTranslate {
                url,
                api_key: Some("libre-key".into()),
                client: client(),
            })
        },
        json!({"translatedText": "Hello, I want a refund"}),
        |request| {
            assert_eq!((request.method.as_str(), request.uri.path()), ("POST", "/translate"));
            assert_eq!(
                request.json(),
                json!({"q": "你好，我想退款", "source": "zh", "target": "en", "format": "text", "api_key": "libre-key"})
            );
        },
    )
    .await;
    // Detection: `source` is `auto`, and the detected language is read back.
    let (url, received) = stand_in(vec![Reply::ok(json!({
        "translatedText": "你好",
        "detectedLanguage": {"confidence": 90.0, "language": "en"}
    }))])
    .await;
    let provider = LibreTranslate {
        url,
        api_key: None,
        client: client(),
    };
    let translated = translator(Box::new(provider))
        .translate("Hello", None, "zh-TW")
        .await
        .expect("translated");
    assert_eq!(translated.detected.as_deref(), Some("en"));
    let sent = received.lock().expect("log")[0].json();
    assert_eq!(
        (&sent["source"], &sent["target"]),
        (&json!("auto"), &json!("zt"))
    );
    assert!(sent.get("api_key").is_none());
}

#[tokio::test]
async fn deepl() {
    scenarios(
        |url| {
            Box::new(DeepL {
                url,
                api_key: "deepl-key:fx".into(),
                client: client(),
            })
        },
        json!({"translations": [{"detected_source_language": "ZH", "text": "Hello, I want a refund"}]}),
        |request| {
            assert_eq!(request.uri.path(), "/v2/translate");
            assert_eq!(request.header("authorization"), "DeepL-Auth-Key deepl-key:fx");
            assert_eq!(
                request.json(),
                json!({"text": ["你好，我想退款"], "target_lang": "EN-US", "source_lang": "ZH"})
            );
        },
    )
    .await;
    assert_eq!(DeepL::default_url("k:fx"), "https://api-free.deepl.com");
    assert_eq!(DeepL::default_url("k"), "https://api.deepl.com");
    // 456: the account's quota is used up — reported as rate limiting.
    let (url, _) = stand_in(vec![Reply::status(456)]).await;
    let provider = DeepL {
        url,
        api_key: "k".into(),
        client: client(),
    };
    let error = translator(Box::new(provider))
        .translate("hi", None, "zh-Hans")
        .await
        .expect_err("quota");
    assert_eq!(error, TranslateError::RateLimited);
}

#[tokio::test]
async fn google() {
    scenarios(
        |url| {
            Box::new(Google {
                url,
                api_key: "google-key".into(),
                client: client(),
            })
        },
        json!({"data": {"translations": [{"translatedText": "Hello, I want a refund", "detectedSourceLanguage": "zh-CN"}]}}),
        |request| {
            assert_eq!(request.uri.path(), "/language/translate/v2");
            assert_eq!(request.query("key").as_deref(), Some("google-key"));
            assert_eq!(
                request.json(),
                json!({"q": ["你好，我想退款"], "target": "en", "source": "zh-CN", "format": "text"})
            );
        },
    )
    .await;
}

#[tokio::test]
async fn azure() {
    scenarios(
        |url| {
            Box::new(Azure {
                url,
                api_key: "azure-key".into(),
                region: Some("eastasia".into()),
                client: client(),
            })
        },
        json!([{"detectedLanguage": {"language": "zh-Hans", "score": 1.0}, "translations": [{"text": "Hello, I want a refund", "to": "en"}]}]),
        |request| {
            assert_eq!(request.uri.path(), "/translate");
            assert_eq!(request.query("api-version").as_deref(), Some("3.0"));
            assert_eq!(request.query("to").as_deref(), Some("en"));
            assert_eq!(request.query("from").as_deref(), Some("zh-Hans"));
            assert_eq!(request.header("ocp-apim-subscription-key"), "azure-key");
            assert_eq!(request.header("ocp-apim-subscription-region"), "eastasia");
            assert_eq!(request.json(), json!([{"Text": "你好，我想退款"}]));
        },
    )
    .await;
}

#[tokio::test]
async fn baidu() {
    scenarios(
        |url| {
            Box::new(Baidu {
                url,
                app_id: "20240001".into(),
                secret: "baidu-secret".into(),
                client: client(),
            })
        },
        json!({"from": "zh", "to": "en", "trans_result": [{"src": "你好，我想退款", "dst": "Hello, I want a refund"}]}),
        |request| {
            assert_eq!(request.uri.path(), "/api/trans/vip/translate");
            let field = |key| request.form(key).unwrap_or_default();
            assert_eq!(
                (field("q"), field("from"), field("to"), field("appid")),
                ("你好，我想退款".into(), "zh".into(), "en".into(), "20240001".into())
            );
            let salt = field("salt");
            assert!(!salt.is_empty());
            assert_eq!(
                field("sign"),
                server::translate::baidu_sign("20240001", "你好，我想退款", &salt, "baidu-secret")
            );
            assert!(!String::from_utf8_lossy(&request.body).contains("baidu-secret"));
        },
    )
    .await;
    // Baidu reports errors with HTTP 200: 54003 (too frequent) is retried, a bad key is not.
    let (url, received) = stand_in(vec![
        Reply::ok(json!({"error_code": "54003", "error_msg": "Invalid Access Limit"})),
        Reply::ok(json!({"from": "en", "to": "jp", "trans_result": [{"src": "a", "dst": "こんにちは"}, {"src": "b", "dst": "返金"}]})),
    ])
    .await;
    let baidu = |url: String| Baidu {
        url,
        app_id: "1".into(),
        secret: "s".into(),
        client: client(),
    };
    let translated = translator(Box::new(baidu(url)))
        .translate("hello\nrefund", None, "ja")
        .await
        .expect("after a retry");
    assert_eq!(translated.text, "こんにちは\n返金");
    assert_eq!(translated.detected.as_deref(), Some("en"));
    assert_eq!(received.lock().expect("log").len(), 2);
    assert_eq!(
        received.lock().expect("log")[1].form("to").as_deref(),
        Some("jp")
    );
    let (url, received) = stand_in(vec![Reply::ok(
        json!({"error_code": "52003", "error_msg": "UNAUTHORIZED USER"}),
    )])
    .await;
    let error = translator(Box::new(baidu(url)))
        .translate("hello", None, "zh")
        .await
        .expect_err("bad key");
    assert!(matches!(error, TranslateError::Refused(_)), "{error:?}");
    assert_eq!(received.lock().expect("log").len(), 1);
}

#[tokio::test]
async fn openai_compatible_chat_completions() {
    scenarios(
        |url| {
            Box::new(OpenAiChat {
                url: format!("{url}/v1"),
                api_key: Some("sk-local".into()),
                model: "qwen2.5:7b".into(),
                client: client(),
            })
        },
        json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello, I want a refund\n"}}]}),
        |request| {
            assert_eq!(request.uri.path(), "/v1/chat/completions");
            assert_eq!(request.header("authorization"), "Bearer sk-local");
            let body = request.json();
            assert_eq!(body["model"], "qwen2.5:7b");
            assert_eq!(body["temperature"], 0);
            assert_eq!(body["messages"][0]["role"], "system");
            let instruction = body["messages"][0]["content"].as_str().unwrap_or_default();
            assert!(instruction.contains("zh-CN") && instruction.contains(" en"), "{instruction}");
            assert_eq!(body["messages"][1], json!({"role": "user", "content": "你好，我想退款"}));
        },
    )
    .await;
}

#[tokio::test]
async fn a_text_too_long_for_one_request_is_sent_in_pieces_in_order() {
    let (url, received) = stand_in(vec![
        Reply::ok(json!({"translatedText": "First half. "})),
        Reply::ok(json!({"translatedText": "Second half."})),
    ])
    .await;
    let provider = LibreTranslate {
        url,
        api_key: None,
        client: client(),
    };
    let long = format!("{}。{}", "前".repeat(4_000), "后".repeat(3_000));
    let translated = translator(Box::new(provider))
        .translate(&long, Some("zh"), "en")
        .await
        .expect("translated");
    assert_eq!(translated.text, "First half. Second half.");
    let requests = received.lock().expect("log").clone();
    assert_eq!(requests.len(), 2);
    let first = requests[0].json()["q"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let second = requests[1].json()["q"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        first,
        format!("{}。", "前".repeat(4_000)),
        "cut at the sentence end"
    );
    assert_eq!(format!("{first}{second}"), long);
}

/// A LibreTranslate at `url`, called through `client`, translating once.
async fn libre_at(url: &str, client: server::outbound::Outbound) -> Result<String, TranslateError> {
    let provider = LibreTranslate {
        url: url.to_owned(),
        api_key: Some("libre-key".into()),
        client: client.with_timeout(Duration::from_secs(5)),
    };
    translator(Box::new(provider))
        .translate("你好", Some("zh"), "en")
        .await
        .map(|translation| translation.text)
}

#[tokio::test]
async fn addresses_on_this_machine_or_a_private_network_are_refused_unless_allowed() {
    let ok = Reply::ok(json!({"translatedText": "Hello"}));
    let (url, received) = stand_in(vec![ok.clone()]).await;
    let port = url.rsplit(':').next().expect("port").to_owned();
    // Names resolve through the test's table: `public.example` and `localhost` lead here.
    let names = [("public.example", "127.0.0.1"), ("localhost", "127.0.0.1")];
    let strict = common::outbound(&[], &names);
    let refused = TranslateError::Address(server::outbound::Error::Refused);
    for target in [
        url.clone(),
        format!("http://localhost:{port}"),
        format!("http://public.example:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
        "http://10.0.0.1:5000".to_owned(),
        "http://169.254.169.254".to_owned(),
    ] {
        assert_eq!(
            libre_at(&target, strict.clone()).await,
            Err(refused.clone()),
            "{target}"
        );
    }
    assert!(received.lock().expect("log").is_empty(), "nothing was sent");

    // Allowed by the configuration: this address and port, or this name and port — and only
    // that port, and only what the entry names.
    let allowed = [format!("127.0.0.1:{port}"), format!("localhost:{port}")];
    let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
    let local = common::outbound(&allowed, &names);
    for target in [url.clone(), format!("http://localhost:{port}")] {
        assert_eq!(
            libre_at(&target, local.clone()).await,
            Ok("Hello".into()),
            "{target}"
        );
    }
    assert_eq!(received.lock().expect("log").len(), 2);
    for target in [
        format!("http://public.example:{port}"),
        "http://localhost:6379".to_owned(),
        "http://127.0.0.1:6379".to_owned(),
    ] {
        assert_eq!(
            libre_at(&target, local.clone()).await,
            Err(refused.clone()),
            "{target}"
        );
    }
    assert_eq!(received.lock().expect("log").len(), 2);
}

#[tokio::test]
async fn a_redirect_is_an_answer_not_a_way_in() {
    // The target a redirect points at: on this machine, not allowed.
    let (inside, reached) = stand_in(vec![Reply::ok(json!({"translatedText": "secret"}))]).await;
    let location = format!("{inside}/translate");
    let app = axum::Router::new().fallback(move || {
        let location = location.clone();
        async move { (StatusCode::FOUND, [("location", location)], "") }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    // A public-looking name the configuration allows (here it resolves to the redirector).
    let entry = format!("public.example:{port}");
    let client = common::outbound(&[&entry], &[("public.example", "127.0.0.1")]);
    let error = libre_at(&format!("http://public.example:{port}"), client)
        .await
        .expect_err("a redirect is not followed");
    assert!(
        matches!(error, TranslateError::Status { status: 302, .. }),
        "{error:?}"
    );
    assert!(
        reached.lock().expect("log").is_empty(),
        "the redirect was not followed"
    );
}

#[tokio::test]
async fn an_answer_past_the_size_cap_is_not_read() {
    let huge = "x".repeat(server::outbound::MAX_BODY + 1);
    let (url, _) = stand_in(vec![Reply::text(&huge)]).await;
    let error = libre_at(&url, client()).await.expect_err("too large");
    assert!(
        matches!(&error, TranslateError::Malformed(m) if m.contains("larger than")),
        "{error:?}"
    );
    // Without a length announced: read in chunks, stopped past the cap.
    let app = axum::Router::new().fallback(|| async {
        let chunk = axum::body::Bytes::from(vec![b'x'; 64 * 1024]);
        let chunks = (0..32).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
        axum::body::Body::from_stream(futures_util::stream::iter(chunks))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let streamed = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let error = libre_at(&streamed, client()).await.expect_err("too large");
    assert!(
        matches!(&error, TranslateError::Malformed(m) if m.contains("larger than")),
        "{error:?}"
    );
}
