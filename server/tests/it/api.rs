//! The REST API over real HTTP: an administrator's key reads and writes conversations,
//! messages, visitors, leave-messages and sites; anything else is refused with a JSON error;
//! and every answer has the shape the served OpenAPI document says it has.

use crate::common;

use common::client;
use serde_json::{Value, json};

/// A client of `/api/v1` holding one key (or none).
struct Api {
    base: String,
    token: Option<String>,
    client: reqwest::Client,
}

impl Api {
    fn new(server: &common::TestServer, token: Option<&str>) -> Api {
        Api {
            base: server.url(""),
            token: token.map(str::to_owned),
            client: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("api call");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        (status, value)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }
}

/// Checks `value` against the response schema the document gives for `method` on the path
/// template `path` answering `status`: the document describes what the server really sends.
fn conforms(doc: &Value, path: &str, method: &str, status: u16, value: &Value) {
    let schema = &doc["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]
        ["schema"];
    assert!(!schema.is_null(), "no schema for {method} {path} {status}");
    if let Err(why) = check(doc, schema, value, "$") {
        panic!("{method} {path} {status}: {why}\n{value:#}");
    }
}

/// A small JSON Schema check of what utoipa emits: `$ref`, `allOf`, `oneOf`, `type` (one or a
/// list), `enum`, object `properties` and `required` (no unknown keys), array `items`.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        let target = &doc["components"]["schemas"][name];
        if target.is_null() {
            return Err(format!("{at}: unknown schema {reference}"));
        }
        return check(doc, target, value, at);
    }
    if let Some(parts) = schema["allOf"].as_array() {
        // A flattened struct: each part describes some of the keys, so check the keys each
        // part knows and that every key is known by some part.
        let mut known = std::collections::HashSet::new();
        for part in parts {
            let part = resolve(doc, part);
            known.extend(
                part["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k.clone()),
            );
            check_properties(doc, part, value, at, false)?;
        }
        for key in value.as_object().into_iter().flatten().map(|(k, _)| k) {
            if !known.contains(key) {
                return Err(format!("{at}: key {key} is in no part of the schema"));
            }
        }
        return Ok(());
    }
    if let Some(options) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        let errors: Vec<String> = options
            .iter()
            .filter_map(|option| check(doc, option, value, at).err())
            .collect();
        return if errors.len() < options.len() {
            Ok(())
        } else {
            Err(errors.join("; "))
        };
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let type_ok = types.is_empty()
        || types.contains(&kind)
        || (kind == "integer" && types.contains(&"number"));
    if !type_ok {
        return Err(format!("{at}: {kind} where the schema says {types:?}"));
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {allowed:?}"));
    }
    match value {
        Value::Object(_) if schema["properties"].is_object() => {
            check_properties(doc, schema, value, at, true)
        }
        Value::Array(items) if !schema["items"].is_null() => {
            for (n, item) in items.iter().enumerate() {
                check(doc, &schema["items"], item, &format!("{at}[{n}]"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            &doc["components"]["schemas"][reference.trim_start_matches("#/components/schemas/")]
        }
        None => schema,
    }
}

fn check_properties(
    doc: &Value,
    schema: &Value,
    value: &Value,
    at: &str,
    closed: bool,
) -> Result<(), String> {
    let object = value.as_object().ok_or(format!("{at}: not an object"))?;
    let properties = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for required in schema["required"].as_array().into_iter().flatten() {
        let key = required.as_str().unwrap_or_default();
        if !object.contains_key(key) {
            return Err(format!("{at}: required key {key} is missing"));
        }
    }
    for (key, field) in object {
        match properties.get(key) {
            Some(property) => check(doc, property, field, &format!("{at}.{key}"))?,
            None if closed => return Err(format!("{at}: key {key} is not in the schema")),
            None => {}
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admins_key_works_the_api_and_answers_match_the_document() {
    let server = common::spawn_sqlite().await;
    let store = server.store.as_ref();
    let (shop, key) = common::site(store, "shop", &["https://shop.example"]).await;
    let (mei, agent) = common::agent_cookie(store, "mei@shop.example", &[shop]).await;
    let (admin_id, admin) = common::admin_cookie(store, "boss@shop.example").await;

    // Only administrators make keys; the key is shown once and kept only as a hash.
    let make = [("name", "CRM sync")];
    let (status, body) =
        common::server_fn(&server, &agent, "/api/admin/api_tokens/create", &make).await;
    assert!(
        status != 200 && body.contains("forbidden"),
        "{status} {body}"
    );
    let (status, body) =
        common::server_fn(&server, &admin, "/api/admin/api_tokens/create", &make).await;
    assert_eq!(status, 200, "{body}");
    let token: String = serde_json::from_str(&body).expect("the key");
    assert!(token.starts_with("kefu_") && token.len() == 69, "{token}");
    let (status, body) = common::server_fn(&server, &admin, "/api/admin/api_tokens", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("CRM sync") && body.contains(&token[..13]),
        "{body}"
    );
    assert!(
        !body.contains(&token),
        "the key is never shown again: {body}"
    );

    // The document needs no key; everything else does.
    let (status, doc) = Api::new(&server, None).get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(
        doc["components"]["securitySchemes"]["token"]["scheme"],
        "bearer"
    );
    let mut paths: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "/api/v1/conversations",
            "/api/v1/conversations/{id}",
            "/api/v1/conversations/{id}/messages",
            "/api/v1/conversations/{id}/status",
            "/api/v1/leave-messages",
            "/api/v1/leave-messages/{id}",
            "/api/v1/leave-messages/{id}/notes",
            "/api/v1/messages",
            "/api/v1/sites",
            "/api/v1/sites/{id}",
            "/api/v1/visitors/{id}",
            "/api/v1/visitors/{id}/conversations",
        ]
    );
    document_states_the_limits(&doc);
    for (who, api) in [
        ("no key", Api::new(&server, None)),
        ("a wrong key", Api::new(&server, Some("kefu_0123"))),
    ] {
        // The console's session cookie is not a key (so no page can call the API for them).
        let mut request = reqwest::Client::new()
            .get(server.url("/api/v1/sites"))
            .header("cookie", &admin);
        if let Some(token) = &api.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("call");
        assert_eq!(response.status().as_u16(), 401, "{who}");
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .map(|v| v.as_bytes()),
            Some(&b"Bearer"[..])
        );
        let (status, error) = api.get("/api/v1/conversations").await;
        assert_eq!(
            (status, error["error"].as_str()),
            (401, Some("unauthorized")),
            "{who}"
        );
        conforms(&doc, "/api/v1/sites", "get", 401, &error);
    }
    let api = Api::new(&server, Some(&token));

    let (status, sites) = api.get("/api/v1/sites").await;
    assert_eq!(status, 200, "{sites}");
    conforms(&doc, "/api/v1/sites", "get", 200, &sites);
    assert!(
        sites
            .as_array()
            .expect("sites")
            .iter()
            .any(|s| s["public_key"] == key.as_str())
    );
    let (status, site) = api.get(&format!("/api/v1/sites/{shop}")).await;
    assert_eq!((status, site["name"].as_str()), (200, Some("shop")));
    conforms(&doc, "/api/v1/sites/{id}", "get", 200, &site);
    let (status, missing) = api.get("/api/v1/sites/999999").await;
    assert_eq!(
        (status, missing["error"].as_str()),
        (404, Some("not_found"))
    );
    conforms(&doc, "/api/v1/sites/{id}", "get", 404, &missing);

    // Two visitors write over HTTP: two conversations.
    let (visitor, visitor_id) = common::http_visitor(&server, &key, "https://shop.example").await;
    let (status, frames) = visitor
        .send(json!([client::send_frame(
            None,
            "v-1",
            "您好，我想申请退款，订单号12345"
        )]))
        .await;
    assert_eq!(status, 200);
    let (_, conversation, _) = frames.iter().find_map(client::ack_of).expect("ack");
    let (other, _) = common::http_visitor(&server, &key, "https://shop.example").await;
    other
        .send(json!([client::send_frame(
            None,
            "o-1",
            "Where is my parcel?"
        )]))
        .await;

    let (status, page) = api
        .get(&format!("/api/v1/conversations?site_id={shop}&limit=1"))
        .await;
    assert_eq!(status, 200, "{page}");
    conforms(&doc, "/api/v1/conversations", "get", 200, &page);
    let first = page["items"][0]["id"].as_i64().expect("id");
    let next = page["next"].as_str().expect("a second page");
    let (_, rest) = api
        .get(&format!(
            "/api/v1/conversations?site_id={shop}&limit=1&cursor={next}"
        ))
        .await;
    let second = rest["items"][0]["id"].as_i64().expect("id");
    assert!(rest["next"].is_null(), "{rest}");
    let mut both = [first, second];
    both.sort_unstable();
    assert!(
        both.contains(&conversation.0) && first != second,
        "{both:?}"
    );
    for bad in [
        "status=closed",
        "limit=0",
        "limit=x",
        "cursor=nope",
        "cursor=%2B1.2",
        "cursor=1.1234567890123456789",
        "rating=9",
        "site_id=9223372036854775808",
    ] {
        let (status, error) = api.get(&format!("/api/v1/conversations?{bad}")).await;
        assert_eq!(
            (status, error["error"].as_str()),
            (400, Some("invalid")),
            "{bad}: {error}"
        );
    }

    // Writing as the admin: stored once per client_id, delivered live to the visitor.
    let path = format!("/api/v1/conversations/{conversation}/messages");
    let (status, sent) = api
        .call(
            "POST",
            &path,
            Some(json!({"body": "您好，马上为您处理", "client_id": "crm-1"})),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    conforms(
        &doc,
        "/api/v1/conversations/{id}/messages",
        "post",
        201,
        &sent,
    );
    assert_eq!(
        (
            sent["seq"].as_i64(),
            sent["author"].as_str(),
            sent["agent_id"].as_i64()
        ),
        (Some(2), Some("agent"), Some(admin_id.0))
    );
    let (status, again) = api
        .call(
            "POST",
            &path,
            Some(json!({"body": "您好，马上为您处理", "client_id": "crm-1"})),
        )
        .await;
    assert_eq!(
        (status, &again["id"]),
        (200, &sent["id"]),
        "a resend stores nothing"
    );
    let (_, events) = visitor.poll(&[(conversation, 1)], 5).await;
    assert!(
        events
            .iter()
            .filter_map(client::message_of)
            .any(|(_, seq, body)| seq == 2 && body == "您好，马上为您处理"),
        "{events:?}"
    );
    for (body, why) in [
        (json!({"body": "   "}), "blank"),
        (json!({"body": "x".repeat(100_000)}), "too long"),
        (json!({"body": "hi", "html": true}), "unknown field"),
        (json!({"text": "hi"}), "no body"),
        // The document's client_id: 1 to 64 visible ASCII characters, which always fit the
        // protocol's 64 bytes (22 of these would not).
        (
            json!({"body": "hi", "client_id": "订单".repeat(11)}),
            "non-ASCII client_id",
        ),
        (
            json!({"body": "hi", "client_id": "a b"}),
            "client_id with a space",
        ),
        (json!({"body": "hi", "client_id": ""}), "empty client_id"),
    ] {
        let (status, error) = api.call("POST", &path, Some(body)).await;
        assert_eq!(
            (status, error["error"].as_str()),
            (400, Some("invalid")),
            "{why}: {error}"
        );
    }
    let (status, _) = api
        .call(
            "POST",
            "/api/v1/conversations/999999/messages",
            Some(json!({"body": "hi"})),
        )
        .await;
    assert_eq!(status, 404);

    let (status, transcript) = api.get(&path).await;
    assert_eq!(status, 200);
    conforms(
        &doc,
        "/api/v1/conversations/{id}/messages",
        "get",
        200,
        &transcript,
    );
    let bodies: Vec<&str> = transcript["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert_eq!(
        bodies,
        ["您好，我想申请退款，订单号12345", "您好，马上为您处理"]
    );

    let status_path = format!("/api/v1/conversations/{conversation}/status");
    let (status, changed) = api
        .call("PUT", &status_path, Some(json!({"status": "resolved"})))
        .await;
    assert_eq!(
        (status, changed["seq"].as_i64()),
        (200, Some(3)),
        "{changed}"
    );
    conforms(
        &doc,
        "/api/v1/conversations/{id}/status",
        "put",
        200,
        &changed,
    );
    let (status, error) = api
        .call("PUT", &status_path, Some(json!({"status": "gone"})))
        .await;
    assert_eq!((status, error["error"].as_str()), (400, Some("invalid")));
    store
        .set_conversation_tags(conversation, &["refund".to_owned()])
        .await
        .expect("tag");
    let (status, detail) = api
        .get(&format!("/api/v1/conversations/{conversation}"))
        .await;
    assert_eq!(status, 200);
    conforms(&doc, "/api/v1/conversations/{id}", "get", 200, &detail);
    assert_eq!(
        (
            detail["status"].as_str(),
            &detail["tags"],
            &detail["rating"]
        ),
        (Some("resolved"), &json!(["refund"]), &Value::Null)
    );

    let (status, found) = api.get("/api/v1/messages?q=%E9%80%80%E6%AC%BE").await;
    assert_eq!(status, 200, "{found}");
    conforms(&doc, "/api/v1/messages", "get", 200, &found);
    assert_eq!(
        found["items"].as_array().map(Vec::len),
        Some(1),
        "退款: {found}"
    );
    // Text with no word in it finds nothing: an answer, not an error (the document cannot
    // tell which text has words, so it cannot call such a request malformed).
    for nothing in ["%20", "%21%3F", ""] {
        let (status, none) = api.get(&format!("/api/v1/messages?q={nothing}")).await;
        assert_eq!((status, &none["items"]), (200, &json!([])), "{nothing}");
    }

    let (status, who) = api.get(&format!("/api/v1/visitors/{visitor_id}")).await;
    assert_eq!((status, who["site_id"].as_i64()), (200, Some(shop.0)));
    conforms(&doc, "/api/v1/visitors/{id}", "get", 200, &who);
    let (status, theirs) = api
        .get(&format!("/api/v1/visitors/{visitor_id}/conversations"))
        .await;
    assert_eq!(status, 200);
    conforms(
        &doc,
        "/api/v1/visitors/{id}/conversations",
        "get",
        200,
        &theirs,
    );
    assert_eq!(theirs[0]["id"].as_i64(), Some(conversation.0));

    // Leave-messages: listed, taken by an agent of the site, noted, searched.
    let left = store
        .create_leave_message(store::NewLeaveMessage {
            site_id: shop,
            visitor_id: Some(visitor_id),
            name: Some("Wang".into()),
            contact: "wang@example.cn".into(),
            body: "发票抬头写错了".into(),
            created_at: server::now_ms(),
        })
        .await
        .expect("leave");
    let (status, list) = api.get("/api/v1/leave-messages?status=new").await;
    assert_eq!(status, 200, "{list}");
    conforms(&doc, "/api/v1/leave-messages", "get", 200, &list);
    assert_eq!(list["items"][0]["id"].as_i64(), Some(left.id.0));
    let one = format!("/api/v1/leave-messages/{}", left.id);
    let (status, error) = api
        .call("PATCH", &one, Some(json!({"assignee_id": admin_id})))
        .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (409, Some("conflict")),
        "not on the site: well formed, but not an agent it can have"
    );
    conforms(&doc, "/api/v1/leave-messages/{id}", "patch", 409, &error);
    let (status, error) = api.call("PATCH", &one, Some(json!({"status": null}))).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid")),
        "a status is text or left out, never null"
    );
    let (status, taken) = api
        .call(
            "PATCH",
            &one,
            Some(json!({"status": "in_progress", "assignee_id": mei})),
        )
        .await;
    assert_eq!(status, 200, "{taken}");
    conforms(&doc, "/api/v1/leave-messages/{id}", "patch", 200, &taken);
    assert_eq!(
        (taken["status"].as_str(), taken["assignee_id"].as_i64()),
        (Some("in_progress"), Some(mei.0))
    );
    let (_, kept) = api
        .call("PATCH", &one, Some(json!({"status": "handled"})))
        .await;
    assert_eq!(
        (kept["status"].as_str(), kept["assignee_id"].as_i64()),
        (Some("handled"), Some(mei.0))
    );
    let (_, cleared) = api
        .call("PATCH", &one, Some(json!({"assignee_id": null})))
        .await;
    assert!(cleared["assignee_id"].is_null(), "{cleared}");
    let (status, note) = api
        .call(
            "POST",
            &format!("{one}/notes"),
            Some(json!({"body": "Called back"})),
        )
        .await;
    assert_eq!(
        (status, note["agent_id"].as_i64()),
        (201, Some(admin_id.0)),
        "{note}"
    );
    conforms(
        &doc,
        "/api/v1/leave-messages/{id}/notes",
        "post",
        201,
        &note,
    );
    // The note's length is counted as the document's maxLength counts: before trimming.
    for body in [" \u{3000}".to_owned(), format!("{}  ", "x".repeat(9_999))] {
        let (status, _) = api
            .call(
                "POST",
                &format!("{one}/notes"),
                Some(json!({ "body": body })),
            )
            .await;
        assert_eq!(status, 400, "{} characters", body.chars().count());
    }
    let (status, detail) = api.get(&one).await;
    assert_eq!(status, 200);
    conforms(&doc, "/api/v1/leave-messages/{id}", "get", 200, &detail);
    assert_eq!(detail["notes"][0]["body"], "Called back");
    let (_, searched) = api.get("/api/v1/leave-messages?q=%E5%8F%91%E7%A5%A8").await;
    assert_eq!(
        searched["items"][0]["id"].as_i64(),
        Some(left.id.0),
        "发票: {searched}"
    );
    // A search and a status together: both must hold.
    let (status, handled) = api
        .get("/api/v1/leave-messages?q=%E5%8F%91%E7%A5%A8&status=handled")
        .await;
    assert_eq!(
        (status, handled["items"][0]["id"].as_i64()),
        (200, Some(left.id.0)),
        "{handled}"
    );
    conforms(&doc, "/api/v1/leave-messages", "get", 200, &handled);
    let (status, new) = api
        .get("/api/v1/leave-messages?q=%E5%8F%91%E7%A5%A8&status=new")
        .await;
    assert_eq!((status, &new["items"]), (200, &json!([])), "{new}");
    // Searches page with the same cursor syntax as the list.
    let (status, _) = api
        .get("/api/v1/leave-messages?q=%E5%8F%91%E7%A5%A8&cursor=7")
        .await;
    assert_eq!(status, 400);
    let (status, _) = api
        .get(&format!(
            "/api/v1/leave-messages?q=%E5%8F%91%E7%A5%A8&cursor=0.{}",
            left.id.0 + 1
        ))
        .await;
    assert_eq!(status, 200);

    // A key stops working when its owner stops being an admin, and when it is revoked.
    store
        .update_agent(admin_id, store::Role::Agent, 5, false)
        .await
        .expect("demote");
    let (status, error) = api.get("/api/v1/sites").await;
    assert_eq!((status, error["error"].as_str()), (403, Some("forbidden")));
    conforms(&doc, "/api/v1/sites", "get", 403, &error);
    store
        .update_agent(admin_id, store::Role::Admin, 5, false)
        .await
        .expect("promote");
    let id = store.api_tokens(admin_id).await.expect("tokens")[0].id;
    let (status, body) = common::server_fn(
        &server,
        &admin,
        "/api/admin/api_tokens/revoke",
        &[("id", &id.to_string())],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(api.get("/api/v1/sites").await.0, 401);
    server.stop().await;
}

/// What the document must say for a schema-driven client (or fuzzer) to agree with the server:
/// every operation lists the 401 and 403 every call can get, and a 400 when it takes input;
/// page sizes are 1 to 200; every 64-bit integer has the `i64` range (or a narrower one); and
/// text fields the server refuses when blank say so with `minLength`.
fn document_states_the_limits(doc: &Value) {
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("operations") {
            let responses = &operation["responses"];
            for status in ["401", "403"] {
                assert!(
                    responses[status].is_object(),
                    "{method} {path} lists no {status}"
                );
            }
            let takes_input = operation["parameters"]
                .as_array()
                .is_some_and(|p| !p.is_empty())
                || operation["requestBody"].is_object();
            assert!(
                !takes_input || responses["400"].is_object(),
                "{method} {path} takes input but lists no 400"
            );
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let schema = &parameter["schema"];
                if parameter["name"] == "limit" {
                    assert_eq!(
                        (&schema["minimum"], &schema["maximum"]),
                        (&json!(1), &json!(200)),
                        "{method} {path} limit"
                    );
                }
                bounded(schema, &format!("{method} {path} {}", parameter["name"]));
            }
        }
    }
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        bounded(schema, name);
    }
    for (schema, field) in [("NewMessage", "body"), ("NewNote", "body")] {
        assert_eq!(
            doc["components"]["schemas"][schema]["properties"][field]["minLength"], 1,
            "{schema}.{field}"
        );
    }
}

/// Every `int64` in `schema` (and the schemas inside it) has both bounds, within `i64`.
fn bounded(schema: &Value, at: &str) {
    if schema["format"] == "int64" {
        let minimum = schema["minimum"].as_i64();
        let maximum = schema["maximum"].as_i64();
        assert!(minimum.is_some() && maximum.is_some(), "{at}: {schema}");
    }
    for inner in schema["properties"].as_object().into_iter().flatten() {
        bounded(inner.1, &format!("{at}.{}", inner.0));
    }
    for key in ["oneOf", "allOf", "anyOf"] {
        for inner in schema[key].as_array().into_iter().flatten() {
            bounded(inner, at);
        }
    }
    if schema["items"].is_object() {
        bounded(&schema["items"], &format!("{at}[]"));
    }
}

#[test]
fn the_schema_check_refuses_unknown_keys_missing_keys_and_wrong_types() {
    let doc = json!({"components": {"schemas": {"Site": {
        "type": "object",
        "required": ["id"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": ["string", "null"]},
            "status": {"type": "string", "enum": ["open"]},
        },
    }}}});
    let site = json!({"$ref": "#/components/schemas/Site"});
    assert!(
        check(
            &doc,
            &site,
            &json!({"id": 1, "name": null, "status": "open"}),
            "$"
        )
        .is_ok()
    );
    for wrong in [
        json!({"id": 1, "extra": true}),
        json!({"name": "x"}),
        json!({"id": "1"}),
        json!({"id": 1, "status": "closed"}),
    ] {
        assert!(check(&doc, &site, &wrong, "$").is_err(), "{wrong}");
    }
}
