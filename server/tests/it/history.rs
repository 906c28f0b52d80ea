//! History over real HTTP: the `history` server function searches and filters on the agent's
//! own sites only, and the export streams the same selection as CSV or JSON.

use crate::common;

use protocol::{Author, ClientId, ConversationId, SiteId};
use serde_json::Value;

/// A conversation on `site` in which a visitor said each of `bodies`; returns its id.
async fn chat(
    store: &dyn store::Store,
    site: SiteId,
    visitor: &str,
    bodies: &[&str],
) -> ConversationId {
    let visitor = store
        .upsert_visitor(site, visitor, server::now_ms())
        .await
        .expect("visitor");
    let conversation = store
        .create_conversation(site, visitor.id, server::now_ms())
        .await
        .expect("conversation");
    for (n, body) in bodies.iter().enumerate() {
        store
            .append_message(
                conversation.id,
                store::NewMessage {
                    client_id: ClientId(format!("c{n}")),
                    author: Author::Visitor,
                    agent_id: None,
                    body: (*body).to_owned(),
                    attachment: None,
                    created_at: server::now_ms(),
                },
            )
            .await
            .expect("append");
    }
    conversation.id
}

/// Calls the `history` server function with form fields `params[…]`.
async fn history(
    server: &common::TestServer,
    cookie: &str,
    fields: &[(&str, &str)],
) -> (u16, Value) {
    let names: Vec<String> = fields.iter().map(|(k, _)| format!("params[{k}]")).collect();
    let form: Vec<(&str, &str)> = names
        .iter()
        .zip(fields)
        .map(|(name, (_, value))| (name.as_str(), *value))
        .collect();
    let (status, text) = common::server_fn(server, cookie, "/api/history", &form).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn export(
    server: &common::TestServer,
    cookie: Option<&str>,
    query: &str,
) -> (u16, String, String) {
    let mut request =
        reqwest::Client::new().get(server.url(&format!("/console/history/export?{query}")));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("export");
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, kind, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_search_and_export_their_own_sites_history() {
    let server = common::spawn_sqlite().await;
    let store = server.store.as_ref();
    let (a, _) = common::site(store, "shop-a", &["https://a.example"]).await;
    let (b, _) = common::site(store, "shop-b", &["https://b.example"]).await;
    let (ann_id, ann) = common::agent_cookie(store, "ann@a.example", &[a]).await;
    let refund = chat(
        store,
        a,
        "v1",
        &["你好", "我想申请退款，订单号 A-17", "谢谢"],
    )
    .await;
    chat(
        store,
        a,
        "v2",
        &["=HYPERLINK(\"http://evil.example\",\"退款\")"],
    )
    .await;
    chat(store, b, "v3", &["另一个网站的退款"]).await;
    store
        .create_leave_message(store::NewLeaveMessage {
            site_id: a,
            visitor_id: None,
            name: Some("张三".into()),
            contact: "zhang@example.com".into(),
            body: "退款还没到账".into(),
            created_at: server::now_ms(),
        })
        .await
        .expect("leave-message");

    let (status, page) = history(&server, &ann, &[("q", "退款")]).await;
    assert_eq!(status, 200, "{page}");
    let hits = page["rows"]["Hits"]["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(hits.len(), 2, "only site A's two messages: {page}");
    let ours = hits
        .iter()
        .find(|h| h["conversation_id"] == refund.0)
        .expect("the refund request is found");
    let marked: Vec<&str> = ours["pieces"]
        .as_array()
        .expect("pieces")
        .iter()
        .filter(|p| p[1] == true)
        .filter_map(|p| p[0].as_str())
        .collect();
    assert_eq!(marked, ["退款"]);
    let leave = page["rows"]["Hits"]["leave"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(leave.len(), 1, "{page}");
    assert_eq!(leave[0]["from"], "张三 <zhang@example.com>");

    // Without search text: the conversations, newest first.
    let (status, page) = history(&server, &ann, &[("q", "")]).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        page["rows"]["Conversations"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(page["agents"], serde_json::json!([[ann_id, "ann"]]));
    // By agent: none is assigned yet, then the one given to ann.
    let ann_text = ann_id.to_string();
    let by_ann = [("q", ""), ("agent", ann_text.as_str())];
    let (_, page) = history(&server, &ann, &by_ann).await;
    assert_eq!(
        page["rows"]["Conversations"].as_array().map(Vec::len),
        Some(0)
    );
    assert!(
        store
            .reassign_conversation(refund, None, Some(ann_id))
            .await
            .expect("assign")
    );
    let (_, page) = history(&server, &ann, &by_ann).await;
    let rows = page["rows"]["Conversations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(rows.len(), 1, "{page}");
    assert_eq!(rows[0]["id"], refund.0);
    // By visitor: the row's link narrows to its visitor.
    let visitor = rows[0]["visitor_id"].to_string();
    let (_, page) = history(&server, &ann, &[("q", ""), ("visitor", visitor.as_str())]).await;
    assert_eq!(
        page["rows"]["Conversations"].as_array().map(Vec::len),
        Some(1)
    );
    // Another agent's site is not searchable by naming it.
    let (status, body) = history(&server, &ann, &[("q", "退款"), ("site", &b.to_string())]).await;
    assert!(
        status != 200 && body.to_string().contains("not_found"),
        "{body}"
    );
    let (status, body) = history(&server, &ann, &[("q", ""), ("from", "yesterday")]).await;
    assert!(
        status != 200 && body.to_string().contains("invalid"),
        "{body}"
    );

    let (status, kind, csv) = export(&server, Some(&ann), "format=csv&q=%E9%80%80%E6%AC%BE").await;
    assert_eq!(status, 200, "{csv}");
    assert!(kind.starts_with("text/csv"), "{kind}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "conversation_id,message_id,seq,sent_at,author,agent_id,text"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(csv.contains("我想申请退款"), "{csv}");
    // A formula from a visitor is written as text, not run by the spreadsheet.
    assert!(
        csv.contains("\"'=HYPERLINK(\"\"http://evil.example\"\""),
        "{csv}"
    );
    assert!(!csv.contains("另一个网站"), "{csv}");

    let (status, kind, json) = export(&server, Some(&ann), "format=json").await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(kind, "application/json");
    let rows: Vec<Value> = serde_json::from_str(&json).expect("a JSON array");
    assert_eq!(
        rows.len(),
        4,
        "both conversations' whole transcripts: {json}"
    );

    assert_eq!(export(&server, None, "format=csv").await.0, 401);
    assert_eq!(export(&server, Some(&ann), "format=xml").await.0, 400);
    assert_eq!(
        export(&server, Some(&ann), &format!("format=csv&site={b}"))
            .await
            .0,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_count_the_agents_own_sites_conversations() {
    let server = common::spawn_sqlite().await;
    let store = server.store.as_ref();
    let (a, _) = common::site(store, "shop-a", &[]).await;
    let (b, _) = common::site(store, "shop-b", &[]).await;
    let (ann_id, ann) = common::agent_cookie(store, "ann@a.example", &[a]).await;
    let answered = chat(store, a, "v1", &["你好"]).await;
    store
        .append_message(
            answered,
            store::NewMessage {
                client_id: ClientId("reply".into()),
                author: Author::Agent,
                agent_id: Some(ann_id),
                body: "您好！".into(),
                attachment: None,
                created_at: server::now_ms() + 45_000,
            },
        )
        .await
        .expect("reply");
    assert!(
        store
            .reassign_conversation(answered, None, Some(ann_id))
            .await
            .expect("assign")
    );
    chat(store, a, "v2", &["anyone?"]).await;
    chat(store, b, "v3", &["another site"]).await;

    let (status, body) = common::server_fn(&server, &ann, "/api/reports", &[]).await;
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(report["total"], 2, "{report}");
    assert_eq!(report["missed"], 1);
    assert_eq!(report["first_response"]["count"], 1);
    assert!(
        report["first_response"]["p50"]
            .as_f64()
            .is_some_and(|s| s >= 44.0)
    );
    assert_eq!(report["load"], serde_json::json!([["ann", 1]]));
    assert_eq!(
        report["per_day"].as_array().map(Vec::len),
        Some(30),
        "the last 30 days"
    );
    let b_text = b.to_string();
    let (status, body) =
        common::server_fn(&server, &ann, "/api/reports", &[("site", b_text.as_str())]).await;
    assert!(status != 200 && body.contains("not_found"), "{body}");
    let (status, body) = common::server_fn(
        &server,
        &ann,
        "/api/reports",
        &[("from", "2026-01-01"), ("to", "2028-01-01")],
    )
    .await;
    assert!(
        status != 200 && body.contains("invalid"),
        "more than a year: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chinese_console_shows_a_transcripts_status_changes_in_chinese() {
    let server = common::spawn_sqlite().await;
    let store = server.store.as_ref();
    let site = store
        .site_by_key("demo")
        .await
        .expect("site")
        .expect("demo");
    let (agent, cookie) = common::agent_cookie(store, "mei@shop.example", &[site.id]).await;
    store
        .set_agent_language(agent, "zh-CN")
        .await
        .expect("language");
    let conversation = chat(store, site.id, "v-zh", &["你好"]).await;
    for (n, body) in [
        "resolved",
        "open",
        "pending",
        "transcript_sent:v@example.com",
    ]
    .into_iter()
    .enumerate()
    {
        store
            .append_message(
                conversation,
                store::NewMessage {
                    client_id: ClientId(format!("s{n}")),
                    author: Author::System,
                    agent_id: Some(agent),
                    body: body.to_owned(),
                    attachment: None,
                    created_at: server::now_ms(),
                },
            )
            .await
            .expect("append");
    }
    let html = reqwest::Client::new()
        .get(server.url(&format!("/history?c={conversation}")))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("history")
        .text()
        .await
        .expect("html");
    for said in [
        "已解决",
        "进行中",
        "待处理",
        "聊天记录已发送至 v@example.com",
    ] {
        assert!(html.contains(&format!("<p>{said}</p>")), "{said}: {html}");
    }
    for english in ["resolved", "open", "pending", "transcript_sent"] {
        assert!(
            !html.contains(&format!("<p>{english}")),
            "{english} in a Chinese transcript: {html}"
        );
    }
}
