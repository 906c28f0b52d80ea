//! Property tests of the wire format: every well-typed frame survives serialising and parsing
//! unchanged, every strategy reaches every frame type, and anything else — arbitrary bytes, a
//! frame cut short, a frame with one byte changed — is refused or read, never a panic.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::arbitrary::{agent_frame, check, frame_types, server_frame, visitor_frame};
use crate::{AgentFrame, ServerFrame, VisitorFrame};

/// Serialises `frame`, checks it parses back equal (from text and from bytes), and that every
/// strict prefix of the text is refused (a frame cut short is never half-read).
fn round_trips<T>(frame: &T) -> Result<String, TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let text = serde_json::to_string(frame).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: T = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, frame);
    let back: T =
        serde_json::from_slice(text.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, frame);
    Ok(text)
}

fn refuses_prefixes<T: DeserializeOwned>(text: &str, cut: prop::sample::Index) -> bool {
    let end = cut.index(text.len());
    serde_json::from_slice::<T>(&text.as_bytes()[..end]).is_err()
}

/// The frame types a strategy produced over a run, to compare with what serde knows.
fn covers<T, S>(strategy: S, kind: impl Fn(&T) -> &'static str, expected: Vec<String>)
where
    S: Strategy<Value = T>,
{
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut seen = BTreeSet::new();
    for _ in 0..crate::arbitrary::CASES {
        if let Ok(tree) = strategy.new_tree(&mut runner) {
            seen.insert(kind(&tree.current()).to_owned());
        }
    }
    let expected: BTreeSet<String> = expected.into_iter().collect();
    assert!(!expected.is_empty(), "serde named no frame types");
    assert_eq!(seen, expected, "a frame type has no strategy");
}

#[test]
fn every_frame_type_has_a_strategy() {
    covers(
        visitor_frame(),
        VisitorFrame::frame_type,
        frame_types::<VisitorFrame>(),
    );
    covers(
        agent_frame(),
        AgentFrame::frame_type,
        frame_types::<AgentFrame>(),
    );
    covers(
        server_frame(),
        ServerFrame::frame_type,
        frame_types::<ServerFrame>(),
    );
}

#[test]
fn visitor_frames_round_trip() {
    check(
        "visitor frames round-trip",
        (visitor_frame(), any::<prop::sample::Index>()),
        |(frame, cut)| {
            let text = round_trips(&frame)?;
            prop_assert!(refuses_prefixes::<VisitorFrame>(&text, cut), "{}", text);
            Ok(())
        },
    );
}

#[test]
fn agent_frames_round_trip() {
    check(
        "agent frames round-trip",
        (agent_frame(), any::<prop::sample::Index>()),
        |(frame, cut)| {
            let text = round_trips(&frame)?;
            prop_assert!(refuses_prefixes::<AgentFrame>(&text, cut), "{}", text);
            Ok(())
        },
    );
}

#[test]
fn server_frames_round_trip() {
    check(
        "server frames round-trip",
        (server_frame(), any::<prop::sample::Index>()),
        |(frame, cut)| {
            let text = round_trips(&frame)?;
            prop_assert!(refuses_prefixes::<ServerFrame>(&text, cut), "{}", text);
            Ok(())
        },
    );
}

#[test]
fn arbitrary_bytes_are_refused_or_read_never_a_panic() {
    check(
        "arbitrary bytes into the frame parsers",
        prop::collection::vec(any::<u8>(), 0..256),
        |bytes| {
            // Whatever the outcome, it is an outcome; reaching the end is the property.
            let _ = serde_json::from_slice::<VisitorFrame>(&bytes);
            let _ = serde_json::from_slice::<AgentFrame>(&bytes);
            let _ = serde_json::from_slice::<ServerFrame>(&bytes);
            Ok(())
        },
    );
}

#[test]
fn a_changed_byte_is_refused_or_read_as_some_frame() {
    check(
        "frames with one byte changed",
        (
            visitor_frame(),
            agent_frame(),
            any::<prop::sample::Index>(),
            any::<u8>(),
        ),
        |(visitor, agent, at, byte)| {
            for mut bytes in [
                serde_json::to_vec(&visitor).map_err(|e| TestCaseError::fail(e.to_string()))?,
                serde_json::to_vec(&agent).map_err(|e| TestCaseError::fail(e.to_string()))?,
            ] {
                let at = at.index(bytes.len());
                bytes[at] = byte;
                // A frame that still parses must serialise again: it is a real frame.
                if let Ok(frame) = serde_json::from_slice::<VisitorFrame>(&bytes) {
                    round_trips(&frame)?;
                }
                if let Ok(frame) = serde_json::from_slice::<AgentFrame>(&bytes) {
                    round_trips(&frame)?;
                }
            }
            Ok(())
        },
    );
}
