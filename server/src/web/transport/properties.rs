//! Property tests of what the transports decode before a session sees it: [`parse_frame`] (one
//! WebSocket text message, one frame of a batch) and [`super::http::batch`] (a `POST …/send`
//! body). Arbitrary text and bytes are refused with a documented code (`bad_request`, or
//! `too_large` over the size or frame-count limit), never a panic; every well-typed frame of a
//! role is read as exactly that frame; and a batch's verdict is the one `docs/protocol.md`
//! gives, whatever mix of frames and junk it holds.

use proptest::collection::vec;
use proptest::prelude::*;
use protocol::arbitrary::{agent_frame, check, visitor_frame};
use protocol::transport::MAX_BATCH_FRAMES;
use protocol::{AgentFrame, ErrorCode, Ping, Pong, Resume, ServerFrame, SetStatus, VisitorFrame};
use serde_json::Value;

use super::http::batch;
use crate::realtime::session::Inbound;
use crate::realtime::{ClientFrame, Role, parse_frame};

/// The body limit the batch properties use: small, so generated bodies cross it.
const LIMIT: usize = 4_096;

/// The code of a refusal, failing the case when it is not an error frame.
fn code_of(frame: &ServerFrame) -> Result<ErrorCode, TestCaseError> {
    match frame {
        ServerFrame::Error { code, .. } => Ok(*code),
        other => Err(TestCaseError::fail(format!(
            "a refusal that is not an error: {}",
            other.frame_type()
        ))),
    }
}

/// A parsed visitor frame as the frame it was read from (`pong` keeps no nonce: `nonce` is
/// the one sent). `None` for a frame of the agent's only.
fn as_visitor(frame: ClientFrame, nonce: u32) -> Option<VisitorFrame> {
    Some(match frame {
        ClientFrame::VisitorHello(hello) => VisitorFrame::Hello(hello),
        ClientFrame::Inbound(Inbound::Resume(cursors)) => VisitorFrame::Resume(Resume { cursors }),
        ClientFrame::Inbound(Inbound::Send(send)) => VisitorFrame::Send(send),
        ClientFrame::Inbound(Inbound::Typing(typing)) => VisitorFrame::Typing(typing),
        ClientFrame::Inbound(Inbound::Preview(preview)) => VisitorFrame::Preview(preview),
        ClientFrame::Inbound(Inbound::Read(read)) => VisitorFrame::Read(read),
        ClientFrame::Inbound(Inbound::PageView(page)) => VisitorFrame::PageView(page),
        ClientFrame::Ping(nonce) => VisitorFrame::Ping(Ping { nonce }),
        ClientFrame::Pong => VisitorFrame::Pong(Pong { nonce }),
        _ => return None,
    })
}

/// A parsed agent frame as the frame it was read from, like [`as_visitor`].
fn as_agent(frame: ClientFrame, nonce: u32) -> Option<AgentFrame> {
    Some(match frame {
        ClientFrame::AgentHello(hello) => AgentFrame::Hello(hello),
        ClientFrame::Inbound(Inbound::Resume(cursors)) => AgentFrame::Resume(Resume { cursors }),
        ClientFrame::Inbound(Inbound::Send(send)) => AgentFrame::Send(send),
        ClientFrame::Inbound(Inbound::Typing(typing)) => AgentFrame::Typing(typing),
        ClientFrame::Inbound(Inbound::Read(read)) => AgentFrame::Read(read),
        ClientFrame::Inbound(Inbound::SetStatus(status)) => {
            AgentFrame::SetStatus(SetStatus { status })
        }
        ClientFrame::Inbound(Inbound::SetConversationStatus(change)) => {
            AgentFrame::SetConversationStatus(change)
        }
        ClientFrame::Inbound(Inbound::Assign(assign)) => AgentFrame::Assign(assign),
        ClientFrame::Inbound(Inbound::Invite(invite)) => AgentFrame::Invite(invite),
        ClientFrame::Ping(nonce) => AgentFrame::Ping(Ping { nonce }),
        ClientFrame::Pong => AgentFrame::Pong(Pong { nonce }),
        _ => return None,
    })
}

fn nonce_of_visitor(frame: &VisitorFrame) -> u32 {
    match frame {
        VisitorFrame::Pong(pong) => pong.nonce,
        _ => 0,
    }
}

fn nonce_of_agent(frame: &AgentFrame) -> u32 {
    match frame {
        AgentFrame::Pong(pong) => pong.nonce,
        _ => 0,
    }
}

/// Any JSON value, nested a few levels: what a careless or hostile client may put in a batch.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        // Frame-shaped junk: a known type with whatever else.
        prop::sample::select(vec![
            "hello",
            "send",
            "typing",
            "ping",
            "set_status",
            "preview"
        ])
        .prop_map(|kind| serde_json::json!({"type": kind})),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// One element of a generated batch: a frame of either role, or junk.
fn element() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => visitor_frame().prop_map(|f| serde_json::to_value(f).unwrap_or_default()),
        3 => agent_frame().prop_map(|f| serde_json::to_value(f).unwrap_or_default()),
        1 => json(),
    ]
}

/// What `batch` must answer for `items` sent by `role`, as the protocol document says it:
/// `too_large` past the frame count, `bad_request` for any element that is not a frame of the
/// role or a hello after the first, else every frame.
fn verdict(role: Role, items: &[Value]) -> Result<usize, ErrorCode> {
    if items.len() > MAX_BATCH_FRAMES {
        return Err(ErrorCode::TooLarge);
    }
    let mut hellos = Vec::new();
    for item in items {
        let text = item.to_string();
        let hello = match role {
            Role::Visitor => match serde_json::from_str::<VisitorFrame>(&text) {
                Ok(frame) => matches!(frame, VisitorFrame::Hello(_)),
                Err(_) => return Err(ErrorCode::BadRequest),
            },
            Role::Agent => match serde_json::from_str::<AgentFrame>(&text) {
                Ok(frame) => matches!(frame, AgentFrame::Hello(_)),
                Err(_) => return Err(ErrorCode::BadRequest),
            },
        };
        hellos.push(hello);
    }
    if hellos.iter().skip(1).any(|hello| *hello) {
        return Err(ErrorCode::BadRequest);
    }
    Ok(items.len())
}

#[test]
fn arbitrary_text_is_a_bad_request_never_a_panic() {
    check("parse_frame on arbitrary text", any::<String>(), |text| {
        for role in [Role::Visitor, Role::Agent] {
            if let Err(refusal) = parse_frame(role, &text) {
                prop_assert_eq!(code_of(&refusal)?, ErrorCode::BadRequest);
            }
        }
        Ok(())
    });
}

#[test]
fn every_well_typed_frame_is_read_as_itself() {
    check(
        "parse_frame on well-typed frames",
        (visitor_frame(), agent_frame()),
        |(visitor, agent)| {
            let text =
                serde_json::to_string(&visitor).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let parsed = parse_frame(Role::Visitor, &text)
                .map_err(|_| TestCaseError::fail(format!("visitor frame refused: {text}")))?;
            let nonce = nonce_of_visitor(&visitor);
            prop_assert_eq!(as_visitor(parsed, nonce), Some(visitor));

            let text =
                serde_json::to_string(&agent).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let parsed = parse_frame(Role::Agent, &text)
                .map_err(|_| TestCaseError::fail(format!("agent frame refused: {text}")))?;
            let nonce = nonce_of_agent(&agent);
            prop_assert_eq!(as_agent(parsed, nonce), Some(agent));
            Ok(())
        },
    );
}

#[test]
fn arbitrary_bodies_are_refused_with_a_documented_code() {
    check(
        "batch on arbitrary bytes",
        vec(any::<u8>(), 0..LIMIT + 64),
        |body| {
            for role in [Role::Visitor, Role::Agent] {
                match batch(role, &body, LIMIT) {
                    Ok(frames) => prop_assert!(frames.len() <= MAX_BATCH_FRAMES),
                    Err(refusal) => {
                        let code = code_of(&refusal)?;
                        let expected = if body.len() > LIMIT {
                            ErrorCode::TooLarge
                        } else {
                            ErrorCode::BadRequest
                        };
                        prop_assert_eq!(code, expected);
                    }
                }
            }
            Ok(())
        },
    );
}

#[test]
fn a_batch_is_all_read_or_refused_as_documented() {
    check(
        "batch on arrays of frames and junk",
        (
            prop_oneof![
                4 => vec(element(), 0..8),
                // Past the frame count, made of small valid frames so the body stays short.
                1 => (MAX_BATCH_FRAMES - 2..MAX_BATCH_FRAMES + 3).prop_map(|n| {
                    vec![serde_json::json!({"type": "ping", "nonce": 1}); n]
                }),
            ],
            any::<bool>(),
        ),
        |(items, single)| {
            // One frame may also be sent bare, without the array around it (a bare array is
            // a batch of its own).
            let body = match (single, items.as_slice()) {
                (true, [one]) if !one.is_array() => one.to_string(),
                _ => Value::Array(items.clone()).to_string(),
            };
            for role in [Role::Visitor, Role::Agent] {
                let answer = batch(role, body.as_bytes(), usize::MAX)
                    .map(|frames| frames.len())
                    .map_err(|refusal| code_of(&refusal));
                let answer = match answer {
                    Ok(count) => Ok(count),
                    Err(code) => Err(code?),
                };
                prop_assert_eq!(answer, verdict(role, &items), "{}", body);
            }
            Ok(())
        },
    );
}
