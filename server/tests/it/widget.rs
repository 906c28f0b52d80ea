//! The widget's HTTP endpoints outside the frame protocol — site settings and leave-messages —
//! and how the widget's files are served (CORS, caching, precompression), over real sockets.

use crate::common;

use common::client::{Http, Ws, agent_hello};
use protocol::{ServerFrame, SiteId, VisitorId};
use serde_json::{Value, json};

const ORIGIN: &str = "https://shop.example";

async fn site_with(server: &common::TestServer, key: &str, settings: Value) -> SiteId {
    server
        .store
        .create_site(store::NewSite {
            public_key: key.to_string(),
            name: "Shop & Co <b>".to_string(),
            allowed_origins: vec![ORIGIN.to_string()],
            widget_settings: settings,
            created_at: server::now_ms(),
        })
        .await
        .expect("site")
        .id
}

async fn get_site(server: &common::TestServer, key: &str, origin: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(server.url(&format!("/http/visitor/site?key={key}")))
        .header("origin", origin)
        .send()
        .await
        .expect("site request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

#[tokio::test(flavor = "multi_thread")]
async fn site_settings_follow_the_site_and_agent_availability() {
    let server = common::spawn_sqlite().await;
    let site_id = site_with(
        &server,
        "shop",
        json!({"color": "#0a7", "position": "left", "greeting": "Hej!", "sneak_peek": false}),
    )
    .await;
    let (status, site) = get_site(&server, "shop", ORIGIN).await;
    assert_eq!(status, 200);
    assert_eq!(site["name"], "Shop & Co <b>");
    assert_eq!(site["color"], "#0a7");
    assert_eq!(site["position"], "left");
    assert_eq!(site["greeting"], "Hej!");
    assert_eq!(site["sneak_peek"], false);
    assert_eq!(site["prechat"], false);
    assert_eq!(site["online"], false, "no agent is connected");

    let (_, cookie) =
        common::agent_cookie(server.store.as_ref(), "ann@shop.example", &[site_id]).await;
    let mut agent = Ws::connect(&server.url(""), "/ws/agent", None, Some(&cookie)).await;
    agent.send_json(agent_hello(&[])).await;
    agent
        .until(|f| matches!(f, ServerFrame::Welcome(_)).then_some(()))
        .await;
    let (_, site) = get_site(&server, "shop", ORIGIN).await;
    assert_eq!(site["online"], true, "an agent is online now");
}

#[tokio::test(flavor = "multi_thread")]
async fn outside_business_hours_visitors_get_the_offline_form_though_an_agent_is_online() {
    let server = common::spawn_sqlite().await;
    let every_day = |span: &str| {
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .iter()
            .map(|day| (day.to_string(), Value::from(span)))
            .collect::<serde_json::Map<_, _>>()
    };
    // Closed all week, and open around the clock, in a zone far from UTC.
    let closed = site_with(
        &server,
        "closed",
        json!({"business_hours": {"time_zone": "Pacific/Kiritimati", "days": {}}}),
    )
    .await;
    let open = site_with(
        &server,
        "open",
        json!({"business_hours": {"time_zone": "Asia/Shanghai", "days": every_day("00:00-24:00")}}),
    )
    .await;
    let (_, cookie) =
        common::agent_cookie(server.store.as_ref(), "ann@shop.example", &[closed, open]).await;
    let mut agent = Ws::connect(&server.url(""), "/ws/agent", None, Some(&cookie)).await;
    agent.send_json(agent_hello(&[])).await;
    agent
        .until(|f| matches!(f, ServerFrame::Welcome(_)).then_some(()))
        .await;

    let (_, site) = get_site(&server, "closed", ORIGIN).await;
    assert_eq!(
        site["online"], false,
        "closed hours win over an online agent"
    );
    assert_eq!(site["business_hours"]["time_zone"], "Pacific/Kiritimati");
    let (_, site) = get_site(&server, "open", ORIGIN).await;
    assert_eq!(site["online"], true);

    // The real-time connection says the same, at hello and when agents change status.
    let availability = |frames: &[ServerFrame]| {
        frames.iter().find_map(|f| match f {
            ServerFrame::Availability { online } => Some(*online),
            _ => None,
        })
    };
    for (key, expected) in [("closed", false), ("open", true)] {
        let mut http = Http::new(&server.url(""), "visitor");
        http.origin = Some(ORIGIN.to_string());
        let (_, frames) = http
            .send(json!([common::client::visitor_hello(key, None, &[])]))
            .await;
        assert_eq!(availability(&frames), Some(expected), "{key} at hello");
    }
    let mut visitor = Ws::connect(&server.url(""), "/ws/visitor", Some(ORIGIN), None).await;
    visitor
        .send_json(common::client::visitor_hello("closed", None, &[]))
        .await;
    let live = |f: &ServerFrame| match f {
        ServerFrame::Availability { online } => Some(*online),
        _ => None,
    };
    assert!(!visitor.until(live).await, "at hello");
    agent
        .send_json(json!({"type": "set_status", "status": "away"}))
        .await;
    assert!(!visitor.until(live).await, "the agent went away");
    // The agent's return is announced, but as "no chat" for the closed site.
    agent
        .send_json(json!({"type": "set_status", "status": "online"}))
        .await;
    assert!(
        !visitor.until(live).await,
        "the agent is back, the site still closed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn site_settings_refuse_other_origins_and_repair_bad_values() {
    let server = common::spawn_sqlite().await;
    site_with(
        &server,
        "shop",
        json!({"color": "red;background:url(x)", "position": "middle"}),
    )
    .await;
    let (status, body) = get_site(&server, "shop", "https://evil.example").await;
    assert_eq!(status, 403);
    assert_eq!(body[0]["code"], "origin_not_allowed");
    let (status, body) = get_site(&server, "nope", ORIGIN).await;
    assert_eq!(status, 403);
    assert_eq!(body[0]["code"], "origin_not_allowed");
    // Unreadable settings fall back to the defaults rather than breaking the widget.
    let (status, site) = get_site(&server, "shop", ORIGIN).await;
    assert_eq!(status, 200);
    assert_eq!(site["color"], "#2563eb");
    assert_eq!(site["position"], "right");
}

/// A visitor who said hello over HTTP from the allowed origin, with their token.
async fn visitor(server: &common::TestServer, key: &str) -> (Http, VisitorId) {
    common::http_visitor(server, key, ORIGIN).await
}

/// POSTs `body` to a visitor endpoint from the allowed origin, with the visitor's token.
async fn post(http: &Http, path: &str, body: &str) -> (u16, Value) {
    let mut from_shop = Http::new(&http.base, "visitor");
    from_shop.origin = Some(ORIGIN.to_string());
    from_shop.token = http.token.clone();
    from_shop.post_text(path, body).await
}

async fn leave(http: &Http, body: &str) -> (u16, Value) {
    post(http, "/http/visitor/leave-message", body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leave_message_is_stored_for_the_visitor() {
    let server = common::spawn_sqlite().await;
    let site_id = site_with(&server, "shop", json!({})).await;
    let (http, visitor_id) = visitor(&server, "shop").await;
    let body = json!({
        "name": "  Mei  ",
        "contact": " mei@example.com ",
        "body": "<img src=x onerror=alert(1)> call me back"
    });
    let (status, answer) = leave(&http, &body.to_string()).await;
    assert_eq!(status, 201, "{answer}");
    let stored = server
        .store
        .leave_messages_page(&[site_id], None, None, 10)
        .await
        .expect("page");
    assert_eq!(stored.len(), 1);
    assert_eq!(answer["id"], stored[0].id.0);
    assert_eq!(stored[0].visitor_id, Some(visitor_id));
    assert_eq!(stored[0].name.as_deref(), Some("Mei"));
    assert_eq!(stored[0].contact, "mei@example.com");
    assert_eq!(
        stored[0].body, "<img src=x onerror=alert(1)> call me back",
        "stored exactly as typed; rendering escapes it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_leave_messages_get_clear_errors_and_store_nothing() {
    // Only valid forms count against the rate: the refusals below use none of the three.
    let server = common::spawn_sqlite_with(|config| config.messages_per_minute = 3).await;
    let site_id = site_with(&server, "shop", json!({})).await;
    let (mut http, _) = visitor(&server, "shop").await;
    let cases = [
        (
            json!({"contact": "  ", "body": "hi"}).to_string(),
            400,
            "bad_request",
        ),
        (
            json!({"contact": "a@b.c", "body": " \n "}).to_string(),
            400,
            "bad_request",
        ),
        (
            json!({"contact": "a@b.c", "body": "x".repeat(9000)}).to_string(),
            413,
            "too_large",
        ),
        (
            json!({"contact": "a".repeat(201), "body": "hi"}).to_string(),
            413,
            "too_large",
        ),
        (
            json!({"contact": "a@b.c", "body": "hi", "admin": true}).to_string(),
            400,
            "bad_request",
        ),
        ("not json".to_string(), 400, "bad_request"),
        ("x".repeat(70_000), 413, "too_large"),
    ];
    for (body, status, code) in &cases {
        let (got, answer) = leave(&http, body).await;
        assert_eq!(
            (got, answer[0]["code"].as_str()),
            (*status, Some(*code)),
            "{}",
            &body[..body.len().min(60)]
        );
    }
    // The form shares the visitor's message rate: a flood is cut off.
    let ok = json!({"contact": "a@b.c", "body": "hi"}).to_string();
    for _ in 0..3 {
        assert_eq!(leave(&http, &ok).await.0, 201);
    }
    let (status, answer) = leave(&http, &ok).await;
    assert_eq!(status, 429);
    assert_eq!(answer[0]["code"], "rate_limited");
    assert!(answer[0]["retry_after_ms"].as_u64().is_some());
    // Without a valid token nothing is stored.
    http.token = Some("v1.1.forged".to_string());
    assert_eq!(leave(&http, &ok).await.0, 401);
    http.token = None;
    assert_eq!(leave(&http, &ok).await.0, 401);
    let stored = server
        .store
        .leave_messages_page(&[site_id], None, None, 100)
        .await
        .expect("page");
    assert_eq!(stored.len(), 3, "only the three valid ones");
}

#[tokio::test(flavor = "multi_thread")]
async fn widget_files_are_cors_cached_and_precompressed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write =
        |name: &str, body: &[u8]| std::fs::write(dir.path().join(name), body).expect("write");
    write("widget.js", b"console.log('loader')");
    write("kefu_widget.0123456789ab.js", b"export default 1");
    write("kefu_widget.0123456789ab.js.br", b"brotli bytes");
    let widget_dir = dir.path().to_path_buf();
    let server = common::spawn_sqlite_with(move |config| config.widget_dir = widget_dir).await;
    // reqwest is built without decompression here, so the raw encoded body is what arrives.
    let client = reqwest::Client::new();
    let get = |path: &str| {
        client
            .get(server.url(path))
            .header("origin", ORIGIN)
            .header("accept-encoding", "br, gzip")
            .send()
    };
    let header = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };

    let loader = get("/widget/widget.js").await.expect("loader");
    assert_eq!(loader.status(), 200);
    assert_eq!(header(&loader, "cache-control"), "public, max-age=300");
    assert_eq!(header(&loader, "access-control-allow-origin"), "*");

    let glue = get("/widget/kefu_widget.0123456789ab.js")
        .await
        .expect("glue");
    assert_eq!(glue.status(), 200);
    assert_eq!(
        header(&glue, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&glue, "content-encoding"), "br");
    assert_eq!(header(&glue, "access-control-allow-origin"), "*");
    assert_eq!(glue.bytes().await.expect("body").as_ref(), b"brotli bytes");

    let missing = get("/widget/kefu_widget.ffffffffffff.js")
        .await
        .expect("missing");
    assert_eq!(missing.status(), 404);
    assert_ne!(
        header(&missing, "cache-control"),
        "public, max-age=31536000, immutable",
        "a 404 is never cached for a year"
    );
}

async fn post_profile(http: &Http, body: &Value) -> (u16, Value) {
    post(http, "/http/visitor/profile", &body.to_string()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_page_identifies_its_visitor() {
    let server = common::spawn_sqlite().await;
    site_with(&server, "shop", json!({})).await;
    let (http, visitor_id) = visitor(&server, "shop").await;
    let first = json!({"name": " Mei ", "email": "mei@example.com", "attributes": {"plan": "gold", "order": "A-17"}});
    assert_eq!(post_profile(&http, &first).await.0, 204);
    // Absent fields stay; null removes an attribute; values are trimmed.
    let second = json!({"attributes": {"order": null, "cart.total": " 99 "}});
    assert_eq!(post_profile(&http, &second).await.0, 204);
    let stored = server
        .store
        .visitor(visitor_id)
        .await
        .expect("read")
        .expect("visitor");
    assert_eq!(stored.name.as_deref(), Some("Mei"));
    assert_eq!(stored.email.as_deref(), Some("mei@example.com"));
    let attributes: Vec<(&str, &str)> = stored
        .attributes
        .0
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(attributes, [("cart.total", "99"), ("plan", "gold")]);

    let bad = [
        (json!({"email": "not-an-address"}), 400),
        (json!({"name": "n".repeat(101)}), 413),
        (json!({"attributes": {"bad key!": "x"}}), 400),
        (json!({"attributes": {"k": "v".repeat(201)}}), 413),
        (
            json!({"attributes": (0..21).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()}),
            413,
        ),
        (json!({"nickname": "x"}), 400),
    ];
    for (body, status) in &bad {
        assert_eq!(post_profile(&http, body).await.0, *status, "{body}");
    }
    let unchanged = server
        .store
        .visitor(visitor_id)
        .await
        .expect("read")
        .expect("visitor");
    assert_eq!(unchanged, stored, "refused profiles change nothing");

    let mut stranger = Http::new(&server.url(""), "visitor");
    stranger.token = Some("v1.1.forged".into());
    assert_eq!(post_profile(&stranger, &first).await.0, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_out_of_an_http_console_takes_the_agent_offline_at_once() {
    let server = common::spawn_sqlite().await;
    let store = server.store.as_ref();
    let (site, key) = common::site(store, "shop", &["https://a.example"]).await;
    let (ann_id, ann) = common::agent_cookie(store, "ann@a.example", &[site]).await;
    let online =
        || async { get_site(&server, &key, "https://a.example").await.1["online"].clone() };
    let mut agent = Http::new(&server.url(""), "agent");
    agent.cookie = Some(ann.clone());
    let (status, _) = agent.send(json!([agent_hello(&[])])).await;
    assert_eq!(status, 200);
    // An HTTP agent is present through their polls.
    assert_eq!(agent.poll(&[], 0).await.0, 200);
    assert_eq!(online().await, json!(true));

    // Without signing out, an HTTP agent stays present between polls (the idle timeout)…
    let signed_out = reqwest::Client::new()
        .post(server.url("/api/logout"))
        .header("origin", server.url(""))
        .header("cookie", &ann)
        .header("accept", "application/json")
        .send()
        .await
        .expect("logout");
    assert!(signed_out.status().is_success() || signed_out.status().is_redirection());
    // …but signing out ends that at once.
    assert_eq!(online().await, json!(false));

    // Signing in again brings them back, although the old presence still lingers.
    store
        .create_session(
            &app::session::token_hash("second"),
            ann_id,
            server::now_ms() + 60_000,
        )
        .await
        .expect("session");
    let cookie = format!("{}=second", app::session::SESSION_COOKIE);
    agent.cookie = Some(cookie);
    let (status, _) = agent.send(json!([agent_hello(&[])])).await;
    assert_eq!(status, 200);
    // An HTTP agent is present through their polls.
    assert_eq!(agent.poll(&[], 0).await.0, 200);
    assert_eq!(online().await, json!(true));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_see_where_a_visitor_is_when_a_geoip_database_is_configured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("city.mmdb");
    std::fs::write(
        &path,
        common::mmdb::city_database("127.0.0.0".parse().expect("ip"), 8, "China", "Shanghai"),
    )
    .expect("write database");
    let geo = server::geoip::Geo::open(&path).expect("open database");
    assert_eq!(
        geo.locate("127.0.0.1".parse().expect("ip")),
        server::geoip::Place {
            country: Some("China".into()),
            city: Some("Shanghai".into())
        }
    );
    assert_eq!(
        geo.locate("203.0.113.9".parse().expect("ip")),
        server::geoip::Place::default(),
        "outside the network: nowhere"
    );
    let server = common::spawn_sqlite_with(|config| config.geoip = Some(path.clone())).await;
    let store = server.store.as_ref();
    let (site, key) = common::site(store, "shop", &["https://a.example"]).await;
    let (_, cookie) = common::agent_cookie(store, "ann@a.example", &[site]).await;
    let mut agent = Ws::connect(&server.url(""), "/ws/agent", None, Some(&cookie)).await;
    agent.send_json(agent_hello(&[])).await;
    let mut visitor = Ws::connect(
        &server.url(""),
        "/ws/visitor",
        Some("https://a.example"),
        None,
    )
    .await;
    visitor
        .send_json(common::client::visitor_hello(&key, None, &[]))
        .await;
    let details = agent
        .until(|f| match f {
            ServerFrame::VisitorPresence {
                online: true,
                details: Some(details),
                ..
            } => Some(details.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        (details.country.as_deref(), details.city.as_deref()),
        (Some("China"), Some("Shanghai"))
    );
    // A file that is not a database stops the start with the key named.
    let bad = dir.path().join("not.mmdb");
    std::fs::write(&bad, b"not a database").expect("write");
    assert!(server::geoip::Geo::open(&bad).is_err());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_visitor_first_seen_long_ago_shows_as_returning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/kefu.db", dir.path().display());
    let server = common::spawn(&url).await;
    let store = server.store.as_ref();
    let (site, key) = common::site(store, "shop", &["https://a.example"]).await;
    let (_, cookie) = common::agent_cookie(store, "ann@a.example", &[site]).await;
    let mut agent = Ws::connect(&server.url(""), "/ws/agent", None, Some(&cookie)).await;
    agent.send_json(agent_hello(&[])).await;
    fn arrival(f: &ServerFrame) -> Option<(VisitorId, bool)> {
        match f {
            ServerFrame::VisitorPresence {
                online: true,
                details: Some(details),
                visitor_id,
                ..
            } => Some((*visitor_id, details.returning)),
            _ => None,
        }
    }
    let mut first = Ws::connect(
        &server.url(""),
        "/ws/visitor",
        Some("https://a.example"),
        None,
    )
    .await;
    first
        .send_json(common::client::visitor_hello(&key, None, &[]))
        .await;
    let (token, visitor) = first.until(common::client::welcome_of).await;
    assert_eq!(agent.until(arrival).await, (visitor, false), "new today");
    first.drop_connection();
    agent
        .until(|f| matches!(f, ServerFrame::VisitorPresence { online: false, .. }).then_some(()))
        .await;

    // The same browser, first seen an hour ago, comes back. An hour on, the node that saw it
    // holds no copy of it (a copy lasts a minute at most): a node started now stands for that.
    let pool = sqlx::SqlitePool::connect(&url).await.expect("sqlite");
    sqlx::query("UPDATE visitors SET created_at = created_at - 3600000 WHERE id = ?")
        .bind(visitor)
        .execute(&pool)
        .await
        .expect("age the visitor");
    drop(agent);
    server.stop().await;
    let server = common::spawn(&url).await;
    let mut agent = Ws::connect(&server.url(""), "/ws/agent", None, Some(&cookie)).await;
    agent.send_json(agent_hello(&[])).await;
    let mut back = Ws::connect(
        &server.url(""),
        "/ws/visitor",
        Some("https://a.example"),
        None,
    )
    .await;
    back.send_json(common::client::visitor_hello(&key, Some(&token), &[]))
        .await;
    assert_eq!(agent.until(arrival).await, (visitor, true), "returning");
    server.stop().await;
}
