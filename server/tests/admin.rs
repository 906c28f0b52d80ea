//! Administration over real HTTP: only administrators may list, add or change sites, whether
//! through the page or by calling the server functions directly, and what they type is checked.

mod common;

#[tokio::test(flavor = "multi_thread")]
async fn only_administrators_manage_sites() {
    let server = common::spawn_sqlite().await;
    let store = server.store.as_ref();
    let (shop, _) = common::site(store, "shop", &["https://shop.example"]).await;
    let (_, agent) = common::agent_cookie(store, "mei@shop.example", &[shop]).await;
    let (admin_id, admin) = common::admin_cookie(store, "boss@shop.example").await;
    // The test server has the demo site too.
    let before = store.all_sites().await.expect("sites").len();
    let new_site = [
        ("name", "Outlet"),
        ("origins", "https://outlet.example/\nhttp://localhost:8080"),
        ("settings", r##"{"color": "#0a7", "prechat": true}"##),
    ];

    // An agent is refused everything, and nothing changes.
    for (path, form) in [
        ("/api/admin/sites", &[][..]),
        ("/api/admin/sites/create", &new_site[..]),
    ] {
        let (status, body) = common::server_fn(&server, &agent, path, form).await;
        assert!(
            status != 200 && body.contains("forbidden"),
            "{path}: {status} {body}"
        );
    }
    let update = [
        ("id", &*shop.to_string()),
        ("name", "Mine now"),
        ("origins", "https://evil.example"),
        ("settings", "{}"),
    ];
    let (status, body) =
        common::server_fn(&server, &agent, "/api/admin/sites/update", &update).await;
    assert!(
        status != 200 && body.contains("forbidden"),
        "{status} {body}"
    );
    assert_eq!(store.all_sites().await.expect("sites").len(), before);
    assert_eq!(
        store.site(shop).await.expect("read").expect("site").name,
        "shop"
    );

    // The administrator adds a site: a fresh key, the origins as typed, and they answer it.
    let (status, body) =
        common::server_fn(&server, &admin, "/api/admin/sites/create", &new_site).await;
    assert_eq!(status, 200, "{body}");
    let sites = store.all_sites().await.expect("sites");
    let outlet = sites.iter().find(|s| s.name == "Outlet").expect("created");
    assert_eq!(outlet.public_key.len(), 16);
    assert_eq!(
        outlet.allowed_origins,
        ["https://outlet.example", "http://localhost:8080"]
    );
    assert_eq!(outlet.widget_settings["color"], "#0a7");
    assert_eq!(outlet.widget_settings["prechat"], true);
    assert_eq!(
        store.agent_sites(admin_id).await.expect("sites"),
        [outlet.id]
    );
    let (status, body) = common::server_fn(&server, &admin, "/api/admin/sites", &[]).await;
    assert_eq!(status, 200, "{body}");
    let listed: serde_json::Value = serde_json::from_str(&body).expect("json");
    let snippet = listed
        .as_array()
        .and_then(|sites| {
            sites
                .iter()
                .find(|s| s["key"] == outlet.public_key.as_str())
        })
        .and_then(|site| site["snippet"].as_str())
        .expect("the new site's snippet");
    assert_eq!(
        snippet,
        format!(
            "<script src=\"{}/widget/widget.js\" data-site=\"{}\" async></script>",
            server.url(""),
            outlet.public_key
        )
    );

    // Bad input gets a clear refusal and changes nothing.
    for (field, value) in [
        ("name", ""),
        ("origins", "javascript:alert(1)"),
        ("origins", "https://shop.example/path with space"),
        ("settings", r#"{"color": "red; background: url(x)"}"#),
        ("settings", "not json"),
    ] {
        let form: Vec<(&str, &str)> = new_site
            .iter()
            .map(|(k, v)| if *k == field { (*k, value) } else { (*k, *v) })
            .collect();
        let (status, body) =
            common::server_fn(&server, &admin, "/api/admin/sites/create", &form).await;
        assert!(
            status != 200 && body.contains("invalid"),
            "{field}={value}: {status} {body}"
        );
    }
    assert_eq!(store.all_sites().await.expect("sites").len(), before + 1);

    let (status, body) =
        common::server_fn(&server, &admin, "/api/admin/sites/update", &update).await;
    assert_eq!(status, 200, "{body}");
    let changed = store.site(shop).await.expect("read").expect("site");
    assert_eq!(changed.name, "Mine now");
    assert_eq!(
        changed.public_key, "shop",
        "the key pages embed never changes"
    );
}

/// Whether the widget of site `key` is offered chat right now.
async fn offered(server: &common::TestServer, key: &str, origin: &str) -> bool {
    let response = reqwest::Client::new()
        .get(server.url(&format!("/http/visitor/site?key={key}")))
        .header("origin", origin)
        .send()
        .await
        .expect("site");
    let body: serde_json::Value = response.json().await.expect("json");
    body["online"] == true
}

#[tokio::test(flavor = "multi_thread")]
async fn a_site_added_while_its_agent_is_online_is_answered_from_their_next_connection() {
    use common::client::{Ws, agent_hello};
    use protocol::ServerFrame;
    let server = common::spawn_sqlite().await;
    let (_, admin) = common::admin_cookie(server.store.as_ref(), "boss@shop.example").await;
    let connect = || async {
        let mut ws = Ws::connect(&server.url(""), "/ws/agent", None, Some(&admin)).await;
        ws.send_json(agent_hello(&[])).await;
        ws.until(|f| matches!(f, ServerFrame::Welcome(_)).then_some(()))
            .await;
        ws
    };
    // Online before the site exists (the console tab that creates it is such a connection).
    let _before = connect().await;
    let form = [("name", "Outlet"), ("origins", "https://outlet.example")];
    let (status, body) = common::server_fn(&server, &admin, "/api/admin/sites/create", &form).await;
    assert_eq!(status, 200, "{body}");
    let sites = server.store.all_sites().await.expect("sites");
    let key = sites
        .iter()
        .find(|s| s.name == "Outlet")
        .map(|s| s.public_key.clone())
        .expect("created");
    assert!(!offered(&server, &key, "https://outlet.example").await);
    let _after = connect().await;
    assert!(offered(&server, &key, "https://outlet.example").await);
}
