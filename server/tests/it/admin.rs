//! Administration over real HTTP: only administrators may list, add or change sites, whether
//! through the page or by calling the server functions directly, and what they type is checked.

use crate::common;
use protocol::{AgentId, SiteId};

use serde_json::json;

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
        ("look[color]", "#00aa77"),
        ("look[position]", "left"),
        ("look[greeting]", " 您好！ "),
        ("look[prechat]", "true"),
        ("look[max_file_mib]", "2"),
        ("look[types][1]", "image/jpeg"),
        ("look[types][4]", "application/pdf"),
        ("look[time_zone]", "Asia/Shanghai"),
        ("look[hours][0]", "09:00-12:00, 13:30-18:00"),
        ("look[hours][1]", ""),
        ("look[hours][6]", ""),
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
        ("look[color]", "#000000"),
        ("look[position]", "right"),
        ("look[max_file_mib]", "5"),
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
    // The form's fields become the widget's settings, spelled out.
    let settings = &outlet.widget_settings;
    assert_eq!(
        (
            &settings["color"],
            &settings["position"],
            &settings["greeting"]
        ),
        (&json!("#00aa77"), &json!("left"), &json!("您好！"))
    );
    assert_eq!(
        (&settings["prechat"], &settings["sneak_peek"]),
        (&json!(true), &json!(false))
    );
    assert_eq!(
        settings["attachments"],
        json!({"max_bytes": 2 * 1024 * 1024, "types": ["image/jpeg", "application/pdf"]})
    );
    assert_eq!(
        settings["business_hours"],
        json!({"time_zone": "Asia/Shanghai", "days": {"mon": "09:00-12:00,13:30-18:00"}})
    );
    assert_eq!(
        store.agent_sites(admin_id).await.expect("sites"),
        [outlet.id]
    );
    let (status, body) = common::server_fn(&server, &admin, "/api/admin/sites", &[]).await;
    assert_eq!(status, 200, "{body}");
    let listed: serde_json::Value = serde_json::from_str(&body).expect("json");
    let look = listed
        .as_array()
        .and_then(|sites| {
            sites
                .iter()
                .find(|s| s["key"] == outlet.public_key.as_str())
        })
        .map(|site| site["look"].clone())
        .expect("the new site's look");
    assert_eq!(
        (
            &look["color"],
            &look["max_file_mib"],
            &look["hours"][0],
            &look["hours"][1]
        ),
        (
            &json!("#00aa77"),
            &json!(2),
            &json!("09:00-12:00,13:30-18:00"),
            &json!("")
        )
    );
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
    let refused = |form: &[(&'static str, &'static str)], field: &str, value: &str, code: &str| {
        let form: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    if *k == field { value } else { *v }.to_string(),
                )
            })
            .collect();
        let (server, admin, field, value, code) = (
            &server,
            admin.clone(),
            field.to_owned(),
            value.to_owned(),
            code.to_owned(),
        );
        async move {
            let form: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let (status, body) =
                common::server_fn(server, &admin, "/api/admin/sites/create", &form).await;
            assert!(
                status != 200 && body.contains(&code),
                "{field}={value}: {status} {body}"
            );
        }
    };
    for (field, value) in [
        ("name", ""),
        ("origins", "javascript:alert(1)"),
        ("origins", "https://shop.example/path with space"),
        ("look[color]", "red; background: url(x)"),
        ("look[position]", "top"),
        ("look[max_file_mib]", "50"),
        ("look[types][1]", "image/svg+xml"),
        ("look[greeting]", &"长".repeat(501)),
    ] {
        refused(&new_site, field, value, "invalid").await;
    }
    refused(&new_site, "look[max_file_mib]", "lots", "bad_request").await;
    // Hours that cannot be read get their own explanation.
    for (field, value) in [
        ("look[time_zone]", "Mars/Olympus"),
        ("look[time_zone]", ""),
        ("look[hours][1]", "9-5"),
        ("look[hours][6]", "18:00-09:00"),
    ] {
        refused(&new_site, field, value, "bad_hours").await;
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

/// Whether `email` can sign in with `password` (a session cookie comes back).
async fn signs_in(server: &common::TestServer, email: &str, password: &str) -> bool {
    let response = reqwest::Client::new()
        .post(server.url("/api/login"))
        .header("origin", server.url(""))
        .form(&[("email", email), ("password", password), ("mode", "auto")])
        .send()
        .await
        .expect("login");
    response.headers().get_all("set-cookie").iter().any(|c| {
        c.to_str()
            .is_ok_and(|c| c.starts_with(app::session::SESSION_COOKIE))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn administrators_manage_agents_bans_and_retention_and_agents_may_not() {
    let server = common::spawn_sqlite().await;
    let store = server.store.as_ref();
    let (shop, _) = common::site(store, "shop", &["https://shop.example"]).await;
    let (mei_id, mei) = common::agent_cookie(store, "mei@shop.example", &[shop]).await;
    let (boss_id, boss) = common::admin_cookie(store, "boss@shop.example").await;
    let shop_text = shop.to_string();
    let mei_text = mei_id.to_string();
    let invite = [
        ("email", " Wang@Shop.example "),
        ("name", "Wang"),
        ("site", &*shop_text),
    ];
    let ban = [
        ("site", &*shop_text),
        ("address", "203.0.113.0/24"),
        ("reason", "spam"),
        ("days", "7"),
    ];

    // An agent is refused every admin server function.
    for (path, form) in [
        ("/api/admin/agents", &[][..]),
        ("/api/admin/site_choices", &[][..]),
        ("/api/admin/agents/invite", &invite[..]),
        (
            "/api/admin/agents/update",
            &[("id", &*mei_text), ("max_chats", "9"), ("admin", "true")][..],
        ),
        (
            "/api/admin/agents/site",
            &[
                ("id", &*mei_text),
                ("site", &*shop_text),
                ("member", "false"),
            ][..],
        ),
        ("/api/admin/bans", &[][..]),
        ("/api/admin/bans/add", &ban[..]),
        ("/api/admin/mail/test", &[("to", "x@example.com")][..]),
        ("/api/admin/mail", &[][..]),
        (
            "/api/admin/mail/save",
            &[
                ("form[host]", "evil.example"),
                ("form[port]", "25"),
                ("form[security]", "none"),
            ][..],
        ),
        ("/api/admin/translation", &[][..]),
        (
            "/api/admin/translation/save",
            &[
                ("form[provider]", "libretranslate"),
                ("form[url]", "https://evil.example"),
                ("form[daily_chars]", "1"),
            ][..],
        ),
        (
            "/api/admin/translation/test",
            &[
                ("form[provider]", "libretranslate"),
                ("form[url]", "https://evil.example"),
                ("form[daily_chars]", "1"),
            ][..],
        ),
        ("/api/admin/retention", &[("days", "1")][..]),
        ("/api/admin/webhooks", &[][..]),
        (
            "/api/admin/webhooks/add",
            &[("url", "https://evil.example"), ("message_created", "true")][..],
        ),
        ("/api/admin/teams", &[][..]),
        (
            "/api/admin/teams/create",
            &[("site", &*shop_text), ("name", "Mine")][..],
        ),
        ("/api/admin/api_tokens", &[][..]),
        ("/api/admin/api_tokens/create", &[("name", "mine")][..]),
    ] {
        let (status, body) = common::server_fn(&server, &mei, path, form).await;
        assert!(
            status != 200 && body.contains("forbidden"),
            "{path}: {status} {body}"
        );
    }
    // The admin's site pickers list every site (the demo site too), by id and name.
    let (status, body) = common::server_fn(&server, &boss, "/api/admin/site_choices", &[]).await;
    assert_eq!(status, 200, "{body}");
    let choices: Vec<serde_json::Value> = serde_json::from_str(&body).expect("site choices");
    let every: Vec<SiteId> = store
        .all_sites()
        .await
        .expect("sites")
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(choices.len(), every.len(), "{body}");
    assert!(
        choices.contains(&serde_json::json!({"id": shop, "name": "shop"})),
        "{body}"
    );
    let unchanged = store.agent(mei_id).await.expect("read").expect("agent");
    assert_eq!(
        (unchanged.role, unchanged.max_chats),
        (store::Role::Agent, 5)
    );

    // Invite: the password comes back once, and works.
    let (status, body) =
        common::server_fn(&server, &boss, "/api/admin/agents/invite", &invite).await;
    assert_eq!(status, 200, "{body}");
    let password: String = serde_json::from_str(&body).expect("the password");
    assert_eq!(password.len(), 20);
    assert!(signs_in(&server, "wang@shop.example", &password).await);
    let wang = store
        .agent_by_email("wang@shop.example")
        .await
        .expect("read")
        .expect("invited");
    assert_eq!(store.agent_sites(wang.id).await.expect("sites"), [shop]);
    let (status, body) =
        common::server_fn(&server, &boss, "/api/admin/agents/invite", &invite).await;
    assert!(
        status != 200 && body.contains("invalid"),
        "the same e-mail twice: {body}"
    );

    // Disable and limit: a disabled agent cannot sign in.
    let wang_text = wang.id.to_string();
    let update = [
        ("id", &*wang_text),
        ("max_chats", "3"),
        ("disabled", "true"),
    ];
    let (status, body) =
        common::server_fn(&server, &boss, "/api/admin/agents/update", &update).await;
    assert_eq!(status, 200, "{body}");
    let wang = store.agent(wang.id).await.expect("read").expect("agent");
    assert_eq!((wang.max_chats, wang.disabled), (3, true));
    assert!(!signs_in(&server, "wang@shop.example", &password).await);
    // An administrator cannot lock themselves out.
    let boss_text = boss_id.to_string();
    let demote = [("id", &*boss_text), ("max_chats", "5")];
    let (status, body) =
        common::server_fn(&server, &boss, "/api/admin/agents/update", &demote).await;
    assert!(status != 200 && body.contains("invalid"), "{body}");
    // Sites: off and on again.
    let off = [
        ("id", &*mei_text),
        ("site", &*shop_text),
        ("member", "false"),
    ];
    assert_eq!(
        common::server_fn(&server, &boss, "/api/admin/agents/site", &off)
            .await
            .0,
        200
    );
    assert!(store.agent_sites(mei_id).await.expect("sites").is_empty());

    // Bans: a range with an expiry, listed, then lifted; nonsense is refused.
    assert_eq!(
        common::server_fn(&server, &boss, "/api/admin/bans/add", &ban)
            .await
            .0,
        200
    );
    let bans = store
        .active_bans(shop, server::now_ms())
        .await
        .expect("bans");
    assert_eq!(bans.len(), 1);
    assert_eq!(bans[0].ip_cidr.as_deref(), Some("203.0.113.0/24"));
    assert!(
        bans[0]
            .expires_at
            .is_some_and(|at| at > server::now_ms() + 6 * 86_400_000)
    );
    let (_, listed) = common::server_fn(&server, &boss, "/api/admin/bans", &[]).await;
    assert!(listed.contains("203.0.113.0/24"), "{listed}");
    let bad = [
        ("site", &*shop_text),
        ("address", "not-an-ip"),
        ("reason", "x"),
        ("days", "1"),
    ];
    let (status, body) = common::server_fn(&server, &boss, "/api/admin/bans/add", &bad).await;
    assert!(status != 200 && body.contains("invalid"), "{body}");
    let lift = [("id", &*bans[0].id.to_string())].map(|(k, v)| (k, v.to_owned()));
    let lift: Vec<(&str, &str)> = lift.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        common::server_fn(&server, &boss, "/api/admin/bans/lift", &lift)
            .await
            .0,
        200
    );
    assert!(
        store
            .active_bans(shop, server::now_ms())
            .await
            .expect("bans")
            .is_empty()
    );

    // Retention: a conversation untouched for 100 days goes, today's stays.
    let visitor = store
        .upsert_visitor(shop, "v", server::now_ms())
        .await
        .expect("visitor");
    let old = store
        .create_conversation(shop, visitor.id, server::now_ms() - 100 * 86_400_000)
        .await
        .expect("old");
    let new = store
        .create_conversation(shop, visitor.id, server::now_ms())
        .await
        .expect("new");
    let (status, body) =
        common::server_fn(&server, &boss, "/api/admin/retention", &[("days", "30")]).await;
    assert_eq!((status, body.as_str()), (200, "1"));
    assert_eq!(store.conversation(old.id).await.expect("read"), None);
    assert!(store.conversation(new.id).await.expect("read").is_some());
    // Webhooks: the signing secret comes back once; the log is listed; nonsense is refused.
    let hook = [
        ("url", "https://crm.example/kefu"),
        ("leave_message_created", "true"),
    ];
    let (status, body) = common::server_fn(&server, &boss, "/api/admin/webhooks/add", &hook).await;
    assert_eq!(status, 200, "{body}");
    let secret: String = serde_json::from_str(&body).expect("secret");
    let hooks = store.webhooks().await.expect("hooks");
    assert_eq!(hooks.len(), 1);
    assert_eq!(
        (
            hooks[0].secret.as_str(),
            hooks[0].wants("leave_message.created")
        ),
        (secret.as_str(), true)
    );
    assert!(!hooks[0].wants("message.created"));
    for bad in [
        &[("url", "ftp://x.example"), ("message_created", "true")][..],
        &[("url", "https://x.example")][..],
    ] {
        let (status, body) =
            common::server_fn(&server, &boss, "/api/admin/webhooks/add", bad).await;
        assert!(status != 200 && body.contains("invalid"), "{bad:?}: {body}");
    }
    let (_, listed) = common::server_fn(&server, &boss, "/api/admin/webhooks", &[]).await;
    assert!(listed.contains("https://crm.example/kefu"), "{listed}");
    let hook_id = hooks[0].id.to_string();
    let (status, _) = common::server_fn(
        &server,
        &boss,
        "/api/admin/webhooks/delete",
        &[("id", hook_id.as_str())],
    )
    .await;
    assert_eq!(status, 200);
    assert!(store.webhooks().await.expect("hooks").is_empty());

    // The pages render on the server: for the admin with the data, for an agent with a refusal.
    for (path, seen) in [
        ("/admin/agents", "wang@shop.example"),
        ("/admin/upkeep", "Bans"),
        ("/admin/teams", "New team"),
        ("/admin/mail", "SMTP server"),
        ("/admin/translation", "Characters per site per day"),
        ("/admin/api", "/api/v1/openapi.json"),
        ("/admin/sites", "shop"),
    ] {
        let page = |cookie: &str| {
            reqwest::Client::new()
                .get(server.url(path))
                .header("cookie", cookie.to_owned())
                .send()
        };
        let html = page(&boss).await.expect("page").text().await.expect("html");
        assert!(html.contains(seen), "{path}: {html}");
        let html = page(&mei).await.expect("page").text().await.expect("html");
        assert!(
            html.contains("Only administrators can do this."),
            "{path}: {html}"
        );
        assert!(
            !html.contains(seen) || seen == "shop",
            "{path} shows nothing to an agent"
        );
    }
    // Without SMTP the test mail says so.
    let (status, body) = common::server_fn(
        &server,
        &boss,
        "/api/admin/mail/test",
        &[("to", "x@example.com")],
    )
    .await;
    assert!(status != 200 && body.contains("no_mail"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn administrators_group_a_sites_agents_into_teams() {
    let server = common::spawn_sqlite().await;
    let store = server.store.as_ref();
    let (shop, _) = common::site(store, "shop", &["https://shop.example"]).await;
    let (outlet, _) = common::site(store, "outlet", &["https://outlet.example"]).await;
    let (mei, mei_cookie) = common::agent_cookie(store, "mei@shop.example", &[shop]).await;
    let (li, _) = common::agent_cookie(store, "li@outlet.example", &[outlet]).await;
    let (_, boss) = common::admin_cookie(store, "boss@shop.example").await;
    let call = |cookie: String, path: &'static str, form: Vec<(&'static str, String)>| {
        let server = &server;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            common::server_fn(server, &cookie, path, &form).await
        }
    };

    let (status, body) = call(
        boss.clone(),
        "/api/admin/teams/create",
        vec![("site", shop.to_string()), ("name", " Billing ".into())],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let team = store.site_teams(&[shop]).await.expect("teams")[0].clone();
    assert_eq!(team.name, "Billing");
    let (status, _) = call(
        boss.clone(),
        "/api/admin/teams/create",
        vec![("site", shop.to_string()), ("name", "  ".into())],
    )
    .await;
    assert_ne!(status, 200, "a blank name is refused");

    // Only an agent of the team's site may join it.
    let join = |agent: AgentId| vec![("team", team.id.to_string()), ("agent", agent.to_string())];
    let (status, body) = call(boss.clone(), "/api/admin/teams/add", join(li)).await;
    assert!(
        status != 200 && body.contains("not_found"),
        "{status} {body}"
    );
    let (status, body) = call(boss.clone(), "/api/admin/teams/add", join(mei)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(store.team_members(team.id).await.expect("members"), [mei]);
    let (_, listed) = call(boss.clone(), "/api/admin/teams", vec![]).await;
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("json");
    assert_eq!(listed[0]["members"][0][1], "mei");
    assert_eq!(listed[0]["site"], "shop");

    // An agent can change nothing.
    for path in ["/api/admin/teams/remove", "/api/admin/teams/add"] {
        let (status, body) = call(mei_cookie.clone(), path, join(mei)).await;
        assert!(
            status != 200 && body.contains("forbidden"),
            "{path}: {body}"
        );
    }
    let (status, body) = call(
        mei_cookie.clone(),
        "/api/admin/teams/delete",
        vec![("team", team.id.to_string())],
    )
    .await;
    assert!(status != 200 && body.contains("forbidden"), "{body}");

    let (status, _) = call(boss.clone(), "/api/admin/teams/remove", join(mei)).await;
    assert_eq!(status, 200);
    assert!(
        store
            .team_members(team.id)
            .await
            .expect("members")
            .is_empty()
    );
    let (status, _) = call(
        boss.clone(),
        "/api/admin/teams/delete",
        vec![("team", team.id.to_string())],
    )
    .await;
    assert_eq!(status, 200);
    assert!(store.site_teams(&[shop]).await.expect("teams").is_empty());
    server.stop().await;
}
