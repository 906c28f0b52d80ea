//! `docs/protocol.md` matches the code: every frame example in it parses as the frame kinds it
//! claims and is in canonical form, every frame type of every enum has an example, and the error
//! and limit tables agree with `ErrorCode` and `Limits::default()`.
//!
//! How examples are found (the scheme is also described in the document, section 1):
//!
//! - A fenced block tagged exactly ` ```json frame ` holds one JSON object, one frame; a block
//!   tagged ` ```json frames ` holds a JSON array of frames (HTTP bodies). Any other ` ```json `
//!   block is an error, so an example cannot silently escape the test.
//! - The last non-blank line before the fence is `<!-- kinds -->`, where kinds are one or more of
//!   `visitor` (a [`VisitorFrame`]), `agent` (an [`AgentFrame`]), `server` (a [`ServerFrame`]).
//! - Each frame must parse as every kind named *and* serialise back to the same JSON value (so the
//!   document shows the canonical form: no `null`s, no empty lists, no misspelt fields). It must
//!   not be canonical for the other direction unless named (a client example that is also a valid
//!   server frame must say so, like `ping`); between `visitor` and `agent` only the named kinds are
//!   checked, since e.g. a first `send` parses as an agent frame but the server refuses it.
//!
//! The frame types each enum declares are read from the enum itself (serde reports its variant
//! names when asked for an unknown one), and one sample per variant below must cover them, so a
//! new variant fails this test until it has a sample here and an example in the document.

use std::collections::BTreeSet;
use std::fmt;

use protocol::transport::{
    HTTP_AGENT_EVENTS_PATH, HTTP_AGENT_SEND_PATH, HTTP_VISITOR_EVENTS_PATH, HTTP_VISITOR_SEND_PATH,
    VISITOR_TOKEN_HEADER, WS_AGENT_PATH, WS_VISITOR_PATH,
};
use protocol::{
    AgentFrame, AgentHello, AgentId, AgentStatus, Assign, Author, ClientId, ConversationHead,
    ConversationId, ConversationStatus, Cursor, ErrorCode, Invite, Limits, Message, Page, Ping,
    Pong, Preview, Read, Resume, SendMessage, ServerFrame, SetConversationStatus, SetStatus,
    SiteId, Typing, VisitorFrame, VisitorHello, VisitorId, Welcome,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

const KINDS: [&str; 3] = ["visitor", "agent", "server"];

/// One frame taken from the document.
struct Example {
    /// 1-based line of the fence, for messages.
    line: usize,
    /// The kinds the comment before the fence names.
    kinds: BTreeSet<&'static str>,
    /// The frame.
    frame: Value,
}

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    std::fs::read_to_string(path).expect("read docs/protocol.md")
}

/// Every frame example of the document, in order.
fn examples(doc: &str) -> Vec<Example> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_end();
        if !fence.starts_with("```json") {
            i += 1;
            continue;
        }
        let line = i + 1;
        let many = match fence {
            "```json frame" => false,
            "```json frames" => true,
            other => panic!("line {line}: unknown example tag {other:?}"),
        };
        let kinds = kinds_before(&lines[..i], line);
        let mut body = String::new();
        i += 1;
        while i < lines.len() && lines[i].trim_end() != "```" {
            body.push_str(lines[i]);
            body.push('\n');
            i += 1;
        }
        assert!(i < lines.len(), "line {line}: unterminated block");
        let value: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("line {line}: not JSON: {e}\n{body}"));
        let frames = if many {
            match value {
                Value::Array(frames) => frames,
                _ => panic!("line {line}: a `json frames` block must hold an array"),
            }
        } else {
            vec![value]
        };
        for frame in frames {
            assert!(frame.is_object(), "line {line}: a frame must be an object");
            found.push(Example {
                line,
                kinds: kinds.clone(),
                frame,
            });
        }
        i += 1;
    }
    found
}

/// The kinds named by the `<!-- … -->` line before a fence.
fn kinds_before(before: &[&str], line: usize) -> BTreeSet<&'static str> {
    let comment = before
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let inner = comment
        .strip_prefix("<!--")
        .and_then(|c| c.strip_suffix("-->"))
        .unwrap_or_else(|| panic!("line {line}: no <!-- kinds --> comment before the example"));
    let kinds: BTreeSet<&'static str> = inner
        .split_whitespace()
        .map(|word| {
            KINDS
                .into_iter()
                .find(|kind| *kind == word)
                .unwrap_or_else(|| panic!("line {line}: unknown kind {word:?}"))
        })
        .collect();
    assert!(!kinds.is_empty(), "line {line}: no kinds named");
    kinds
}

/// The frame's type if it parses as `T` and serialises back to the same value.
fn canonical<T: Serialize + DeserializeOwned>(frame: &Value) -> Result<String, String> {
    let parsed: T = serde_json::from_value(frame.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&parsed).expect("serialize");
    if &back != frame {
        return Err(format!("not canonical; the code writes it as {back}"));
    }
    Ok(back["type"].as_str().expect("type").to_owned())
}

fn canonical_as(kind: &str, frame: &Value) -> Result<String, String> {
    match kind {
        "visitor" => canonical::<VisitorFrame>(frame),
        "agent" => canonical::<AgentFrame>(frame),
        "server" => canonical::<ServerFrame>(frame),
        other => unreachable!("kind {other}"),
    }
}

/// Captures the `expected` list serde passes when it meets an unknown variant.
#[derive(Debug)]
struct Variants(Vec<&'static str>);

impl fmt::Display for Variants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "variants {:?}", self.0)
    }
}

impl std::error::Error for Variants {}

impl serde::de::Error for Variants {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Variants(Vec::new())
    }

    fn unknown_variant(_variant: &str, expected: &'static [&'static str]) -> Self {
        Variants(expected.to_vec())
    }
}

/// The `"type"` values an internally tagged frame enum declares, read from the enum itself.
fn declared_frame_types<'de, T: Deserialize<'de>>() -> BTreeSet<&'static str> {
    let entries = [("type", "\u{0}not a frame")];
    let deserializer = serde::de::value::MapDeserializer::<_, Variants>::new(entries.into_iter());
    let Err(Variants(names)) = T::deserialize(deserializer) else {
        panic!("an unknown type parsed");
    };
    assert!(!names.is_empty(), "serde did not report the variant names");
    names.into_iter().collect()
}

fn tags<T: Serialize>(samples: &[T]) -> BTreeSet<String> {
    samples
        .iter()
        .map(|s| {
            let value = serde_json::to_value(s).expect("serialize");
            value["type"].as_str().expect("type").to_owned()
        })
        .collect()
}

fn conv() -> ConversationId {
    ConversationId(12)
}

fn cid() -> ClientId {
    ClientId("3e4f6a2b-9c1d-4e8f-a7b6-5d4c3b2a1f0e".into())
}

fn page() -> Page {
    Page {
        url: "https://shop.example/".into(),
        title: Some("Shop".into()),
        referrer: None,
    }
}

fn cursors() -> Vec<Cursor> {
    vec![Cursor {
        conversation_id: conv(),
        after_seq: 5,
    }]
}

/// One sample of every [`VisitorFrame`] variant.
fn visitor_samples() -> Vec<VisitorFrame> {
    vec![
        VisitorFrame::Hello(VisitorHello {
            protocol_version: protocol::PROTOCOL_VERSION,
            site_key: "pk_3f9a2c".into(),
            visitor_token: Some("tok".into()),
            page: Some(page()),
            language: Some("zh-CN".into()),
            time_zone: Some("Asia/Shanghai".into()),
            screen: Some("390x844".into()),
            cursors: cursors(),
        }),
        VisitorFrame::Resume(Resume { cursors: cursors() }),
        VisitorFrame::Send(SendMessage {
            conversation_id: None,
            client_id: cid(),
            body: "Hi".into(),
            attachment: None,
        }),
        VisitorFrame::Typing(Typing {
            conversation_id: conv(),
            typing: true,
        }),
        VisitorFrame::Preview(Preview {
            conversation_id: Some(conv()),
            text: "Hel".into(),
        }),
        VisitorFrame::Read(Read {
            conversation_id: conv(),
            up_to_seq: 3,
        }),
        VisitorFrame::PageView(page()),
        VisitorFrame::Ping(Ping { nonce: 1 }),
        VisitorFrame::Pong(Pong { nonce: 1 }),
    ]
}

/// One sample of every [`AgentFrame`] variant.
fn agent_samples() -> Vec<AgentFrame> {
    vec![
        AgentFrame::Hello(AgentHello {
            protocol_version: protocol::PROTOCOL_VERSION,
            cursors: cursors(),
            events_after: Some(40),
        }),
        AgentFrame::Resume(Resume { cursors: cursors() }),
        AgentFrame::Send(SendMessage {
            conversation_id: Some(conv()),
            client_id: cid(),
            body: "Hello".into(),
            attachment: None,
        }),
        AgentFrame::Typing(Typing {
            conversation_id: conv(),
            typing: false,
        }),
        AgentFrame::Read(Read {
            conversation_id: conv(),
            up_to_seq: 3,
        }),
        AgentFrame::SetStatus(SetStatus {
            status: AgentStatus::Online,
        }),
        AgentFrame::SetConversationStatus(SetConversationStatus {
            conversation_id: conv(),
            client_id: cid(),
            status: ConversationStatus::Resolved,
            until: None,
        }),
        AgentFrame::Assign(Assign {
            conversation_id: conv(),
            to: Some(AgentId(3)),
            team: None,
            note: Some("VIP".into()),
        }),
        AgentFrame::Invite(Invite {
            visitor_id: VisitorId(7),
            client_id: cid(),
            body: "Hi! Can I help you find a size?".into(),
        }),
        AgentFrame::Ping(Ping { nonce: 2 }),
        AgentFrame::Pong(Pong { nonce: 2 }),
    ]
}

/// One sample of every [`ServerFrame`] variant.
fn server_samples() -> Vec<ServerFrame> {
    vec![
        ServerFrame::Welcome(Welcome {
            protocol_version: protocol::PROTOCOL_VERSION,
            server_time: 1_767_225_600_000,
            visitor_id: None,
            visitor_token: None,
            agent_id: Some(AgentId(3)),
            event_seq: Some(42),
            conversations: vec![ConversationHead {
                conversation_id: conv(),
                last_seq: 7,
            }],
            limits: Limits::default(),
        }),
        ServerFrame::Availability { online: false },
        ServerFrame::Queue {
            conversation_id: conv(),
            position: 2,
        },
        ServerFrame::Assigned {
            conversation_id: conv(),
            agent_id: AgentId(3),
            agent_name: "Mei".into(),
        },
        ServerFrame::Ack {
            client_id: cid(),
            conversation_id: conv(),
            seq: 1,
        },
        ServerFrame::Message(Message {
            conversation_id: conv(),
            seq: 1,
            client_id: cid(),
            author: Author::Agent,
            agent_id: Some(AgentId(3)),
            agent_name: Some("Mei".into()),
            body: "Hello".into(),
            attachment: None,
            created_at: 1_767_225_601_250,
        }),
        ServerFrame::Typing {
            conversation_id: conv(),
            author: Author::Visitor,
            agent_id: None,
            agent_name: None,
            typing: true,
        },
        ServerFrame::Preview {
            visitor_id: VisitorId(7),
            conversation_id: None,
            text: "Hel".into(),
        },
        ServerFrame::Read {
            conversation_id: conv(),
            up_to_seq: 1,
            author: Author::Agent,
            agent_id: Some(AgentId(3)),
        },
        ServerFrame::VisitorPresence {
            site_id: SiteId(1),
            visitor_id: VisitorId(7),
            online: true,
            details: None,
        },
        ServerFrame::AgentPresence {
            agent_id: AgentId(4),
            status: AgentStatus::Offline,
        },
        ServerFrame::PageView {
            site_id: SiteId(1),
            visitor_id: VisitorId(7),
            url: "https://shop.example/".into(),
            title: None,
            referrer: None,
            at: 1_767_225_630_000,
        },
        ServerFrame::ConversationCreated {
            event_seq: 41,
            conversation_id: conv(),
            site_id: SiteId(1),
            visitor_id: VisitorId(7),
            created_at: 1_767_225_601_250,
        },
        ServerFrame::AssignmentChanged {
            event_seq: 42,
            conversation_id: conv(),
            assignee: Some(AgentId(3)),
            team: None,
            by: Some(AgentId(5)),
            note: Some("VIP".into()),
        },
        ServerFrame::Note {
            event_seq: 43,
            conversation_id: conv(),
            agent_id: AgentId(3),
            agent_name: "Mei".into(),
            body: "Refund approved by finance.".into(),
            created_at: 1_767_225_602_000,
        },
        ServerFrame::Tags {
            event_seq: 44,
            conversation_id: conv(),
            tags: vec!["refund".into(), "vip".into()],
        },
        ServerFrame::Translation(protocol::Translation {
            conversation_id: conv(),
            seq: 3,
            source_language: "zh".into(),
            language: "en".into(),
            text: None,
            unavailable: Some(protocol::Unavailable::Budget),
        }),
        ServerFrame::Error {
            code: ErrorCode::Lagging,
            message: "behind".into(),
            client_id: None,
            conversation_id: None,
            retry_after_ms: None,
        },
        ServerFrame::Ping(Ping { nonce: 3 }),
        ServerFrame::Pong(Pong { nonce: 3 }),
        ServerFrame::Reconnect { within_ms: 5_000 },
        ServerFrame::ReplayCut,
    ]
}

fn as_str_set(set: &BTreeSet<String>) -> BTreeSet<&str> {
    set.iter().map(String::as_str).collect()
}

#[test]
fn samples_cover_every_declared_frame_type() {
    assert_eq!(
        as_str_set(&tags(&visitor_samples())),
        declared_frame_types::<VisitorFrame>()
    );
    assert_eq!(
        as_str_set(&tags(&agent_samples())),
        declared_frame_types::<AgentFrame>()
    );
    assert_eq!(
        as_str_set(&tags(&server_samples())),
        declared_frame_types::<ServerFrame>()
    );
}

#[test]
fn samples_round_trip_and_report_their_type() {
    fn check<T>(samples: Vec<T>, frame_type: fn(&T) -> &'static str)
    where
        T: Serialize + DeserializeOwned + PartialEq + fmt::Debug,
    {
        for sample in samples {
            let text = serde_json::to_string(&sample).expect("serialize");
            let back: T = serde_json::from_str(&text).expect("parse back");
            assert_eq!(back, sample);
            let value: Value = serde_json::from_str(&text).expect("json");
            assert_eq!(value["type"], frame_type(&sample), "{text}");
        }
    }
    check(visitor_samples(), VisitorFrame::frame_type);
    check(agent_samples(), AgentFrame::frame_type);
    check(server_samples(), ServerFrame::frame_type);
}

#[test]
fn every_doc_example_is_a_canonical_frame_of_the_kinds_it_names() {
    let doc = doc();
    let examples = examples(&doc);
    assert!(
        examples.len() >= 30,
        "only {} examples found",
        examples.len()
    );
    for example in &examples {
        let line = example.line;
        for kind in &example.kinds {
            if let Err(e) = canonical_as(kind, &example.frame) {
                panic!("line {line}: not a {kind} frame: {e}\n{}", example.frame);
            }
        }
        let names_client = example.kinds.contains("visitor") || example.kinds.contains("agent");
        let names_server = example.kinds.contains("server");
        if !names_server {
            assert!(
                canonical_as("server", &example.frame).is_err(),
                "line {line}: also a server frame; say <!-- … server -->"
            );
        }
        if !names_client {
            for kind in ["visitor", "agent"] {
                assert!(
                    canonical_as(kind, &example.frame).is_err(),
                    "line {line}: also a {kind} frame; say <!-- … {kind} -->"
                );
            }
        }
    }
}

#[test]
fn every_frame_type_has_a_doc_example() {
    let doc = doc();
    let examples = examples(&doc);
    for (kind, declared) in [
        ("visitor", declared_frame_types::<VisitorFrame>()),
        ("agent", declared_frame_types::<AgentFrame>()),
        ("server", declared_frame_types::<ServerFrame>()),
    ] {
        let documented: BTreeSet<String> = examples
            .iter()
            .filter(|e| e.kinds.contains(kind))
            .filter_map(|e| canonical_as(kind, &e.frame).ok())
            .collect();
        let missing: Vec<&str> = declared
            .iter()
            .copied()
            .filter(|t| !documented.contains(*t))
            .collect();
        assert!(
            missing.is_empty(),
            "{kind} frames without an example in docs/protocol.md: {missing:?}"
        );
    }
}

/// The cells of the table rows whose first cell is `` `name` ``, keyed by that name.
fn table_rows(doc: &str) -> Vec<(String, Vec<String>)> {
    doc.lines()
        .filter_map(|line| {
            let cells: Vec<String> = line
                .trim()
                .strip_prefix('|')?
                .strip_suffix('|')?
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect();
            let name = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
            Some((name.to_owned(), cells.clone()))
        })
        .collect()
}

#[test]
fn error_table_matches_error_codes() {
    let doc = doc();
    let rows = table_rows(&doc);
    let declared: BTreeSet<&str> = {
        let deserializer = serde::de::value::StrDeserializer::<Variants>::new("\u{0}");
        let Err(Variants(names)) = ErrorCode::deserialize(deserializer) else {
            panic!("an unknown code parsed");
        };
        names.into_iter().collect()
    };
    let all: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(all, declared, "ErrorCode::ALL misses a code");
    for code in ErrorCode::ALL {
        let (_, cells) = rows
            .iter()
            .find(|(name, _)| name == code.as_str())
            .unwrap_or_else(|| panic!("no row for `{}` in the error table", code.as_str()));
        assert_eq!(cells[1], code.http_status().to_string(), "{code:?} HTTP");
        assert_eq!(cells[2], code.ws_close_code().to_string(), "{code:?} close");
    }
}

#[test]
fn limits_table_shows_the_defaults() {
    let doc = doc();
    let rows = table_rows(&doc);
    let defaults = serde_json::to_value(Limits::default()).expect("serialize");
    let defaults = defaults.as_object().expect("object");
    for (name, value) in defaults {
        let (_, cells) = rows
            .iter()
            .find(|(row, _)| row == name)
            .unwrap_or_else(|| panic!("no row for `{name}` in the limits table"));
        assert_eq!(cells[1], value.to_string(), "default of {name}");
    }
}

#[test]
fn doc_names_the_transport_endpoints() {
    let doc = doc();
    for path in [
        WS_VISITOR_PATH,
        WS_AGENT_PATH,
        HTTP_VISITOR_SEND_PATH,
        HTTP_AGENT_SEND_PATH,
        HTTP_VISITOR_EVENTS_PATH,
        HTTP_AGENT_EVENTS_PATH,
    ] {
        assert!(
            doc.contains(&format!("`{path}`")) || doc.contains(path),
            "{path}"
        );
    }
    assert!(doc.to_lowercase().contains(VISITOR_TOKEN_HEADER));
}
