//! `proptest` strategies for every frame, for property tests here and in the server (behind the
//! `arbitrary` feature, which nothing shipped turns on).
//!
//! Each strategy makes any value the type can hold, not only values the server would accept:
//! arbitrary text (any Unicode), any integer, present and absent optional fields. What they
//! prove is that the wire format is lossless and that the parsers agree with it; whether a
//! value is *allowed* (lengths, ranges, permissions) is the server's business and is tested
//! there.

use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

use crate::error::ErrorCode;
use crate::frames::{
    AgentFrame, AgentHello, Assign, Attachment, ConversationHead, Cursor, Invite, Limits, Message,
    Page, Ping, Pong, Preview, Read, Resume, SendMessage, ServerFrame, SetConversationStatus,
    SetStatus, Translation, Typing, Unavailable, VisitorDetails, VisitorFrame, VisitorHello,
    Welcome,
};
use crate::ids::{
    AgentId, AgentStatus, Author, ClientId, ConversationId, ConversationStatus, SiteId, TeamId,
    VisitorId,
};

/// Lists are short: long ones add time, not cases.
const MAX_LIST: usize = 4;

fn text() -> impl Strategy<Value = String> {
    any::<String>()
}

fn conversation() -> impl Strategy<Value = ConversationId> {
    any::<i64>().prop_map(ConversationId)
}

fn visitor() -> impl Strategy<Value = VisitorId> {
    any::<i64>().prop_map(VisitorId)
}

fn agent() -> impl Strategy<Value = AgentId> {
    any::<i64>().prop_map(AgentId)
}

fn site() -> impl Strategy<Value = SiteId> {
    any::<i64>().prop_map(SiteId)
}

fn team() -> impl Strategy<Value = TeamId> {
    any::<i64>().prop_map(TeamId)
}

fn client_id() -> impl Strategy<Value = ClientId> {
    text().prop_map(ClientId)
}

/// Any [`Author`].
pub fn author() -> impl Strategy<Value = Author> {
    prop::sample::select(Author::ALL.to_vec())
}

/// Any [`AgentStatus`].
pub fn agent_status() -> impl Strategy<Value = AgentStatus> {
    prop::sample::select(vec![
        AgentStatus::Online,
        AgentStatus::Away,
        AgentStatus::Offline,
    ])
}

/// Any [`ConversationStatus`].
pub fn conversation_status() -> impl Strategy<Value = ConversationStatus> {
    prop::sample::select(ConversationStatus::ALL.to_vec())
}

/// Any [`ErrorCode`].
pub fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop::sample::select(ErrorCode::ALL.to_vec())
}

fn cursor() -> impl Strategy<Value = Cursor> {
    (conversation(), any::<i64>()).prop_map(|(conversation_id, after_seq)| Cursor {
        conversation_id,
        after_seq,
    })
}

fn cursors() -> impl Strategy<Value = Vec<Cursor>> {
    vec(cursor(), 0..MAX_LIST)
}

fn page() -> impl Strategy<Value = Page> {
    (text(), of(text()), of(text())).prop_map(|(url, title, referrer)| Page {
        url,
        title,
        referrer,
    })
}

fn send() -> impl Strategy<Value = SendMessage> {
    (of(conversation()), client_id(), text(), of(text())).prop_map(
        |(conversation_id, client_id, body, attachment)| SendMessage {
            conversation_id,
            client_id,
            body,
            attachment,
        },
    )
}

fn typing() -> impl Strategy<Value = Typing> {
    (conversation(), any::<bool>()).prop_map(|(conversation_id, typing)| Typing {
        conversation_id,
        typing,
    })
}

fn read() -> impl Strategy<Value = Read> {
    (conversation(), any::<i64>()).prop_map(|(conversation_id, up_to_seq)| Read {
        conversation_id,
        up_to_seq,
    })
}

fn visitor_hello() -> impl Strategy<Value = VisitorHello> {
    (
        any::<u32>(),
        text(),
        of(text()),
        of(page()),
        of(text()),
        of(text()),
        of(text()),
        cursors(),
    )
        .prop_map(
            |(
                protocol_version,
                site_key,
                visitor_token,
                page,
                language,
                time_zone,
                screen,
                cursors,
            )| {
                VisitorHello {
                    protocol_version,
                    site_key,
                    visitor_token,
                    page,
                    language,
                    time_zone,
                    screen,
                    cursors,
                }
            },
        )
}

/// Any frame a visitor's widget can send.
pub fn visitor_frame() -> impl Strategy<Value = VisitorFrame> {
    prop_oneof![
        visitor_hello().prop_map(VisitorFrame::Hello),
        cursors().prop_map(|cursors| VisitorFrame::Resume(Resume { cursors })),
        send().prop_map(VisitorFrame::Send),
        typing().prop_map(VisitorFrame::Typing),
        (of(conversation()), text()).prop_map(|(conversation_id, text)| {
            VisitorFrame::Preview(Preview {
                conversation_id,
                text,
            })
        }),
        read().prop_map(VisitorFrame::Read),
        page().prop_map(VisitorFrame::PageView),
        any::<u32>().prop_map(|nonce| VisitorFrame::Ping(Ping { nonce })),
        any::<u32>().prop_map(|nonce| VisitorFrame::Pong(Pong { nonce })),
    ]
}

/// Any frame an agent's console can send.
pub fn agent_frame() -> impl Strategy<Value = AgentFrame> {
    prop_oneof![
        (any::<u32>(), cursors(), of(any::<i64>())).prop_map(
            |(protocol_version, cursors, events_after)| AgentFrame::Hello(AgentHello {
                protocol_version,
                cursors,
                events_after,
            })
        ),
        cursors().prop_map(|cursors| AgentFrame::Resume(Resume { cursors })),
        send().prop_map(AgentFrame::Send),
        typing().prop_map(AgentFrame::Typing),
        read().prop_map(AgentFrame::Read),
        agent_status().prop_map(|status| AgentFrame::SetStatus(SetStatus { status })),
        (
            conversation(),
            client_id(),
            conversation_status(),
            of(any::<i64>())
        )
            .prop_map(|(conversation_id, client_id, status, until)| {
                AgentFrame::SetConversationStatus(SetConversationStatus {
                    conversation_id,
                    client_id,
                    status,
                    until,
                })
            }),
        (conversation(), of(agent()), of(team()), of(text())).prop_map(
            |(conversation_id, to, team, note)| AgentFrame::Assign(Assign {
                conversation_id,
                to,
                team,
                note,
            })
        ),
        (visitor(), client_id(), text()).prop_map(|(visitor_id, client_id, body)| {
            AgentFrame::Invite(Invite {
                visitor_id,
                client_id,
                body,
            })
        }),
        any::<u32>().prop_map(|nonce| AgentFrame::Ping(Ping { nonce })),
        any::<u32>().prop_map(|nonce| AgentFrame::Pong(Pong { nonce })),
    ]
}

fn limits() -> impl Strategy<Value = Limits> {
    any::<[u32; 7]>().prop_map(|[a, b, c, d, e, f, g]| Limits {
        max_frame_bytes: a,
        max_message_bytes: b,
        max_cursors: c,
        messages_per_minute: d,
        ephemeral_per_second: e,
        ping_interval_ms: f,
        idle_timeout_ms: g,
    })
}

fn welcome() -> impl Strategy<Value = Welcome> {
    (
        any::<u32>(),
        any::<i64>(),
        of(visitor()),
        of(text()),
        of(agent()),
        of(any::<i64>()),
        vec(
            (conversation(), any::<i64>()).prop_map(|(conversation_id, last_seq)| {
                ConversationHead {
                    conversation_id,
                    last_seq,
                }
            }),
            0..MAX_LIST,
        ),
        limits(),
    )
        .prop_map(
            |(
                protocol_version,
                server_time,
                visitor_id,
                visitor_token,
                agent_id,
                event_seq,
                conversations,
                limits,
            )| Welcome {
                protocol_version,
                server_time,
                visitor_id,
                visitor_token,
                agent_id,
                event_seq,
                conversations,
                limits,
            },
        )
}

fn attachment() -> impl Strategy<Value = Attachment> {
    (text(), text(), text(), any::<u64>()).prop_map(|(id, name, content_type, size)| Attachment {
        id,
        name,
        content_type,
        size,
    })
}

fn message() -> impl Strategy<Value = Message> {
    (
        conversation(),
        any::<i64>(),
        client_id(),
        author(),
        of(agent()),
        of(text()),
        text(),
        of(attachment()),
        any::<i64>(),
    )
        .prop_map(
            |(
                conversation_id,
                seq,
                client_id,
                author,
                agent_id,
                agent_name,
                body,
                attachment,
                created_at,
            )| Message {
                conversation_id,
                seq,
                client_id,
                author,
                agent_id,
                agent_name,
                body,
                attachment,
                created_at,
            },
        )
}

fn translation() -> impl Strategy<Value = Translation> {
    (
        conversation(),
        any::<i64>(),
        text(),
        text(),
        of(text()),
        of(prop::sample::select(vec![
            Unavailable::Provider,
            Unavailable::Budget,
        ])),
    )
        .prop_map(
            |(conversation_id, seq, source_language, language, text, unavailable)| Translation {
                conversation_id,
                seq,
                source_language,
                language,
                text,
                unavailable,
            },
        )
}

fn details() -> impl Strategy<Value = VisitorDetails> {
    (
        (of(text()), of(text()), of(text()), of(text())),
        (of(text()), of(text()), of(text()), of(text()), of(text())),
        any::<bool>(),
    )
        .prop_map(
            |(
                (language, time_zone, screen, user_agent),
                (browser, os, device, country, city),
                returning,
            )| VisitorDetails {
                language,
                time_zone,
                screen,
                user_agent,
                browser,
                os,
                device,
                country,
                city,
                returning,
            },
        )
}

/// Any frame the server can send (the live ones, the durable events and the errors).
pub fn server_frame() -> impl Strategy<Value = ServerFrame> {
    prop_oneof![
        welcome().prop_map(ServerFrame::Welcome),
        any::<bool>().prop_map(|online| ServerFrame::Availability { online }),
        (client_id(), conversation(), any::<i64>()).prop_map(
            |(client_id, conversation_id, seq)| ServerFrame::Ack {
                client_id,
                conversation_id,
                seq,
            }
        ),
        message().prop_map(ServerFrame::Message),
        translation().prop_map(ServerFrame::Translation),
        (
            conversation(),
            author(),
            of(agent()),
            of(text()),
            any::<bool>()
        )
            .prop_map(|(conversation_id, author, agent_id, agent_name, typing)| {
                ServerFrame::Typing {
                    conversation_id,
                    author,
                    agent_id,
                    agent_name,
                    typing,
                }
            }),
        (visitor(), of(conversation()), text()).prop_map(|(visitor_id, conversation_id, text)| {
            ServerFrame::Preview {
                visitor_id,
                conversation_id,
                text,
            }
        }),
        (conversation(), any::<i64>(), author(), of(agent())).prop_map(
            |(conversation_id, up_to_seq, author, agent_id)| ServerFrame::Read {
                conversation_id,
                up_to_seq,
                author,
                agent_id,
            }
        ),
        (site(), visitor(), any::<bool>(), of(details())).prop_map(
            |(site_id, visitor_id, online, details)| ServerFrame::VisitorPresence {
                site_id,
                visitor_id,
                online,
                details,
            }
        ),
        (agent(), agent_status())
            .prop_map(|(agent_id, status)| ServerFrame::AgentPresence { agent_id, status }),
        (
            site(),
            visitor(),
            text(),
            of(text()),
            of(text()),
            any::<i64>()
        )
            .prop_map(|(site_id, visitor_id, url, title, referrer, at)| {
                ServerFrame::PageView {
                    site_id,
                    visitor_id,
                    url,
                    title,
                    referrer,
                    at,
                }
            }),
        (
            any::<i64>(),
            conversation(),
            site(),
            visitor(),
            any::<i64>()
        )
            .prop_map(
                |(event_seq, conversation_id, site_id, visitor_id, created_at)| {
                    ServerFrame::ConversationCreated {
                        event_seq,
                        conversation_id,
                        site_id,
                        visitor_id,
                        created_at,
                    }
                }
            ),
        (
            any::<i64>(),
            conversation(),
            of(agent()),
            of(team()),
            of(agent()),
            of(text())
        )
            .prop_map(|(event_seq, conversation_id, assignee, team, by, note)| {
                ServerFrame::AssignmentChanged {
                    event_seq,
                    conversation_id,
                    assignee,
                    team,
                    by,
                    note,
                }
            }),
        (
            any::<i64>(),
            conversation(),
            agent(),
            text(),
            text(),
            any::<i64>()
        )
            .prop_map(
                |(event_seq, conversation_id, agent_id, agent_name, body, created_at)| {
                    ServerFrame::Note {
                        event_seq,
                        conversation_id,
                        agent_id,
                        agent_name,
                        body,
                        created_at,
                    }
                }
            ),
        (any::<i64>(), conversation(), vec(text(), 0..MAX_LIST)).prop_map(
            |(event_seq, conversation_id, tags)| ServerFrame::Tags {
                event_seq,
                conversation_id,
                tags,
            }
        ),
        (conversation(), any::<u32>()).prop_map(|(conversation_id, position)| {
            ServerFrame::Queue {
                conversation_id,
                position,
            }
        }),
        (conversation(), agent(), text()).prop_map(|(conversation_id, agent_id, agent_name)| {
            ServerFrame::Assigned {
                conversation_id,
                agent_id,
                agent_name,
            }
        }),
        (
            error_code(),
            text(),
            of(client_id()),
            of(conversation()),
            of(any::<u32>())
        )
            .prop_map(
                |(code, message, client_id, conversation_id, retry_after_ms)| {
                    ServerFrame::Error {
                        code,
                        message,
                        client_id,
                        conversation_id,
                        retry_after_ms,
                    }
                }
            ),
        any::<u32>().prop_map(|nonce| ServerFrame::Ping(Ping { nonce })),
        any::<u32>().prop_map(|nonce| ServerFrame::Pong(Pong { nonce })),
        any::<u32>().prop_map(|within_ms| ServerFrame::Reconnect { within_ms }),
        Just(ServerFrame::ReplayCut),
    ]
}

/// Cases each property runs: enough to reach every variant and odd text many times over, few
/// enough that all the properties together take seconds.
pub const CASES: u32 = 2_000;

/// Runs `property` on [`CASES`] values of `strategy`, panics with the smallest failing value
/// proptest finds, and prints how many cases passed (the count `make test` shows).
pub fn check<S: Strategy>(
    name: &str,
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let config = ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let passed = std::cell::Cell::new(0u32);
    let result = runner.run(&strategy, |value| {
        property(value)?;
        passed.set(passed.get() + 1);
        Ok(())
    });
    if let Err(failure) = result {
        panic!("property {name} failed: {failure}");
    }
    println!("property {name}: {} cases passed", passed.get());
}

/// The `"type"` values serde knows for a tagged frame enum `T`, read from its error for an
/// unknown one: the list a strategy must cover.
pub fn frame_types<T: serde::de::DeserializeOwned>() -> Vec<String> {
    let error = match serde_json::from_str::<T>(r#"{"type": "?"}"#) {
        Ok(_) => return Vec::new(),
        Err(error) => error.to_string(),
    };
    // "unknown variant `?`, expected one of `hello`, `resume`, … at line 1 column 13"
    error
        .split("expected one of")
        .nth(1)
        .unwrap_or_default()
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}
