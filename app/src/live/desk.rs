//! What the console knows right now, kept up to date by the real-time connection: the agent's
//! conversations with their messages, the visitors on the sites, colleagues' status, and the
//! sends still waiting for an ack.
//!
//! Pure state, no I/O: the browser's link feeds it server frames ([`Desk::apply`]) and sends what
//! it asks for, so the delivery rules of `docs/protocol.md` section 3 (drop repeats, advance
//! cursors over contiguous seqs only, fill gaps by resuming) are unit-tested here natively.

use protocol::{
    AgentFrame, AgentHello, AgentId, AgentStatus, Author, ConversationId, ConversationStatus,
    Cursor, ErrorCode, EventSeq, Message, PROTOCOL_VERSION, SendMessage, Seq, ServerFrame, SiteId,
    StatusRecord, TeamId, Translation, UnixMillis, VisitorDetails, VisitorId,
};
use std::collections::BTreeMap;

use crate::api::inbox::ThreadSeed;

/// How long a typing indicator stays without a repeat (the protocol's 6 s).
pub const TYPING_TTL_MS: f64 = 6_000.0;

/// One conversation on the desk.
#[derive(Debug, Clone, PartialEq)]
pub struct Thread {
    /// Its site.
    pub site_id: SiteId,
    /// Its visitor.
    pub visitor_id: VisitorId,
    /// The name the visitor gave, if any.
    pub visitor_name: Option<String>,
    /// Open, pending or resolved; system messages keep it current.
    pub status: ConversationStatus,
    /// Until when it is snoozed; the same system messages keep it current.
    pub snoozed_until: Option<UnixMillis>,
    /// The agent responsible, if any.
    pub assignee: Option<AgentId>,
    /// Last activity, UTC milliseconds; the inbox sorts by it.
    pub updated_at: UnixMillis,
    /// The messages the desk holds, by seq: a contiguous run ending at `cursor`, plus any that
    /// arrived ahead of a gap.
    pub messages: BTreeMap<Seq, Message>,
    /// Every message up to here is known to the server side of the desk: held in `messages` or,
    /// below `oldest`, fetchable by paging. Resumes start after it.
    pub cursor: Seq,
    /// The lowest seq held; everything from it to `cursor` is in `messages`. 1 means the whole
    /// transcript is here.
    pub oldest: Seq,
    /// The highest seq this agent has seen on screen.
    pub read_up_to: Seq,
    /// The highest seq the visitor has seen.
    pub visitor_read: Seq,
    /// When the visitor's last `typing: true` arrived (client clock), while it holds.
    pub visitor_typing_since: Option<f64>,
    /// The visitor's unsent draft (sneak-peek), empty when none.
    pub draft: String,
    /// The last handover: who moved the conversation by hand and the note they left.
    pub handover: Option<(AgentId, String)>,
    /// Internal notes by event seq (agents only).
    pub notes: BTreeMap<EventSeq, Note>,
    /// Its tags, sorted.
    pub tags: Vec<String>,
    /// The team it waits for, after a transfer to one.
    pub team: Option<TeamId>,
    /// Whether its messages are translated (when its site translates); an agent switches it.
    pub translating: bool,
    /// Translations of its messages by seq, shown beside them; a later one for the same
    /// message (a retry that worked) replaces the earlier.
    pub translations: BTreeMap<Seq, Translation>,
}

/// An internal note on a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Who wrote it.
    pub agent_name: String,
    /// The note.
    pub body: String,
    /// When, UTC milliseconds (notes sit among the messages by time).
    pub created_at: UnixMillis,
}

impl Thread {
    fn from_seed(seed: ThreadSeed) -> Thread {
        let oldest = seed
            .recent
            .first()
            .map_or(seed.last_seq + 1, |m| m.seq)
            .max(1);
        Thread {
            site_id: seed.site_id,
            visitor_id: seed.visitor_id,
            visitor_name: seed.visitor_name,
            status: seed.status,
            snoozed_until: seed.snoozed_until,
            assignee: seed.assignee,
            updated_at: seed.updated_at,
            messages: seed.recent.into_iter().map(|m| (m.seq, m)).collect(),
            tags: seed.tags,
            cursor: seed.last_seq,
            oldest,
            read_up_to: 0,
            visitor_read: 0,
            visitor_typing_since: None,
            draft: String::new(),
            handover: None,
            notes: BTreeMap::new(),
            team: seed.team,
            translating: seed.translating,
            translations: seed.translations.into_iter().map(|t| (t.seq, t)).collect(),
        }
    }

    fn new(site_id: SiteId, visitor_id: VisitorId, created_at: UnixMillis) -> Thread {
        Thread::from_seed(ThreadSeed {
            conversation_id: ConversationId(0),
            site_id,
            visitor_id,
            visitor_name: None,
            status: ConversationStatus::Open,
            snoozed_until: None,
            assignee: None,
            last_seq: 0,
            updated_at: created_at,
            recent: Vec::new(),
            tags: Vec::new(),
            team: None,
            translating: true,
            translations: Vec::new(),
        })
    }

    /// Messages from the visitor the agent has not answered or seen: those after both the
    /// agent's last reply and what they have read.
    pub fn unread(&self) -> usize {
        let answered = self
            .messages
            .values()
            .rev()
            .find(|m| m.author == Author::Agent)
            .map_or(0, |m| m.seq);
        let seen = answered.max(self.read_up_to);
        self.messages
            .range(seen + 1..)
            .filter(|(_, m)| m.author == Author::Visitor)
            .count()
    }

    /// The newest written message (system records are status changes, not words).
    pub fn last_words(&self) -> Option<&Message> {
        self.messages
            .values()
            .rev()
            .find(|m| m.author != Author::System)
    }

    /// Whether the visitor is typing at `now` (client clock).
    pub fn visitor_typing(&self, now: f64) -> bool {
        self.visitor_typing_since
            .is_some_and(|since| now - since < TYPING_TTL_MS)
    }

    /// How the visitor is shown: their name, or a stable label.
    pub fn visitor_label(&self) -> String {
        self.visitor_name
            .clone()
            .unwrap_or_else(|| format!("#{}", self.visitor_id.0))
    }

    fn take(&mut self, message: Message) {
        self.updated_at = self.updated_at.max(message.created_at);
        if message.author == Author::System
            && let Some(record) = StatusRecord::parse(&message.body)
            && message.seq > self.cursor
        {
            self.status = record.status;
            self.snoozed_until = record.until;
        }
        if message.author == Author::Visitor {
            self.visitor_typing_since = None;
            self.draft.clear();
        }
        self.messages.entry(message.seq).or_insert(message);
        while self.messages.contains_key(&(self.cursor + 1)) {
            self.cursor += 1;
        }
        if self.messages.is_empty() {
            self.oldest = self.cursor + 1;
        }
    }

    /// Whether messages are missing between the cursor and one held ahead of it.
    fn has_gap(&self) -> bool {
        self.messages.range(self.cursor + 1..).next().is_some()
    }
}

/// A visitor on one of the agent's sites, as presence and page views describe them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineVisitor {
    /// Their site.
    pub site_id: SiteId,
    /// Their browser, from the presence frame.
    pub details: Option<VisitorDetails>,
    /// Pages opened this visit, oldest first: (url, title, at).
    pub pages: Vec<(String, Option<String>, UnixMillis)>,
    /// Where they came from, from the first page view that said.
    pub referrer: Option<String>,
    /// What they are writing before their first message (sneak peek), empty when nothing.
    pub draft: String,
}

/// A send waiting for its ack, resent with the same `client_id` after every reconnect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The frame, exactly as it is resent.
    pub send: SendMessage,
    /// Set when the server refused it for good: shown next to the text, not resent.
    pub refused: Option<ErrorCode>,
}

/// What the link must do after a frame was applied.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reaction {
    /// A conversation the desk does not hold sent a message: fetch it, then follow it.
    pub adopt: Option<ConversationId>,
    /// Conversations to follow (or replay again) from these cursors: a `resume` over a
    /// WebSocket; over HTTP the next poll carries them anyway.
    pub follow: Vec<Cursor>,
    /// Something new arrived from a visitor: chime and notify.
    pub notify: Option<ConversationId>,
    /// The server asked everyone to reconnect within this many milliseconds.
    pub reconnect_within: Option<u32>,
    /// The session is gone: back to the sign-in page.
    pub signed_out: bool,
    /// Answer a ping.
    pub pong: Option<u32>,
    /// Send this pending message again after this many milliseconds.
    pub resend: Option<(protocol::ClientId, u32)>,
}

/// How long a message refused "not now" waits to be resent when the server named no wait.
pub const RESEND_AFTER_MS: u32 = 2_000;

/// The console's live state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Desk {
    /// The signed-in agent, from the first welcome.
    pub me: Option<AgentId>,
    /// Conversations of the agent's sites the desk follows.
    pub threads: BTreeMap<ConversationId, Thread>,
    /// Visitors online now.
    pub visitors: BTreeMap<VisitorId, OnlineVisitor>,
    /// Colleagues' status (offline ones are absent).
    pub agents: BTreeMap<AgentId, AgentStatus>,
    /// The highest agent event processed; `None` until the first welcome says where to start.
    pub events_after: Option<EventSeq>,
    /// Sends waiting for an ack, oldest first.
    pub outbox: Vec<Pending>,
}

impl Desk {
    /// A desk holding the conversations the page was rendered with.
    pub fn seeded(seeds: Vec<ThreadSeed>, events_after: Option<EventSeq>) -> Desk {
        let mut desk = Desk {
            events_after,
            ..Desk::default()
        };
        for seed in seeds {
            desk.threads
                .insert(seed.conversation_id, Thread::from_seed(seed));
        }
        desk
    }

    /// The cursors of every followed conversation, for a hello, a poll or a resume.
    pub fn cursors(&self) -> Vec<Cursor> {
        self.threads
            .iter()
            .map(|(id, thread)| Cursor {
                conversation_id: *id,
                after_seq: thread.cursor,
            })
            .collect()
    }

    /// The hello that (re)starts a connection from where the desk is.
    pub fn hello(&self) -> AgentFrame {
        AgentFrame::Hello(AgentHello {
            protocol_version: PROTOCOL_VERSION,
            cursors: self.cursors(),
            events_after: self.events_after,
        })
    }

    /// The frame that sends the pending message `client_id` again, unless it was acked or
    /// refused for good meanwhile.
    pub fn resend(&self, client_id: &protocol::ClientId) -> Option<AgentFrame> {
        self.outbox
            .iter()
            .find(|p| &p.send.client_id == client_id && p.refused.is_none())
            .map(|p| AgentFrame::Send(p.send.clone()))
    }

    /// The sends to (re)transmit after a hello.
    pub fn resends(&self) -> Vec<AgentFrame> {
        self.outbox
            .iter()
            .filter(|p| p.refused.is_none())
            .map(|p| AgentFrame::Send(p.send.clone()))
            .collect()
    }

    /// Puts a message in the outbox and returns the frame to send now.
    pub fn compose(
        &mut self,
        conversation_id: ConversationId,
        client_id: protocol::ClientId,
        body: String,
        attachment: Option<String>,
    ) -> AgentFrame {
        let send = SendMessage {
            conversation_id: Some(conversation_id),
            client_id,
            body,
            attachment,
        };
        self.outbox.push(Pending {
            send: send.clone(),
            refused: None,
        });
        AgentFrame::Send(send)
    }

    /// Takes in a conversation fetched after the desk started; returns the cursor to follow it
    /// from, or `None` when the desk already holds it.
    pub fn adopt(&mut self, seed: ThreadSeed) -> Option<Cursor> {
        let id = seed.conversation_id;
        if self.threads.contains_key(&id) {
            return None;
        }
        let thread = Thread::from_seed(seed);
        let cursor = Cursor {
            conversation_id: id,
            after_seq: thread.cursor,
        };
        self.threads.insert(id, thread);
        Some(cursor)
    }

    /// Notes that the agent has seen `conversation_id` up to its newest message; returns the
    /// seq to report in a `read` frame when that moved forward.
    pub fn mark_read(&mut self, conversation_id: ConversationId) -> Option<Seq> {
        let thread = self.threads.get_mut(&conversation_id)?;
        (thread.cursor > thread.read_up_to).then(|| {
            thread.read_up_to = thread.cursor;
            thread.cursor
        })
    }

    /// Adds an older page of a transcript (from the `transcript` server function).
    pub fn add_history(&mut self, conversation_id: ConversationId, older: Vec<Message>) {
        let Some(thread) = self.threads.get_mut(&conversation_id) else {
            return;
        };
        for message in older {
            if message.seq < thread.oldest {
                thread.oldest = message.seq;
            }
            thread.messages.entry(message.seq).or_insert(message);
        }
    }

    /// Adds the translations of an older page of a transcript.
    pub fn add_translations(&mut self, conversation_id: ConversationId, older: Vec<Translation>) {
        if let Some(thread) = self.threads.get_mut(&conversation_id) {
            for translation in older {
                thread
                    .translations
                    .entry(translation.seq)
                    .or_insert(translation);
            }
        }
    }

    /// Adds internal notes (`note` frames, live or from the `notes` server function); a note
    /// already held is kept once.
    pub fn add_notes(&mut self, notes: Vec<ServerFrame>) {
        for frame in notes {
            if let ServerFrame::Note {
                event_seq,
                conversation_id,
                agent_name,
                body,
                created_at,
                ..
            } = frame
                && let Some(thread) = self.threads.get_mut(&conversation_id)
            {
                thread.notes.entry(event_seq).or_insert(Note {
                    agent_name,
                    body,
                    created_at,
                });
            }
        }
    }

    /// The unread messages over all conversations, for the tab title.
    pub fn unread(&self) -> usize {
        self.threads.values().map(Thread::unread).sum()
    }

    /// Applies one server frame; `now` is the client clock in milliseconds.
    pub fn apply(&mut self, frame: ServerFrame, now: f64) -> Reaction {
        let mut reaction = Reaction::default();
        match frame {
            ServerFrame::Welcome(welcome) => {
                if welcome.agent_id.is_some() {
                    self.me = welcome.agent_id;
                }
                if self.events_after.is_none() {
                    self.events_after = welcome.event_seq;
                }
                // Presence is re-sent in full after every welcome.
                self.visitors.clear();
                self.agents.clear();
                for head in welcome.conversations {
                    if let Some(thread) = self.threads.get_mut(&head.conversation_id)
                        && head.last_seq < thread.cursor
                    {
                        // The database was restored from an older backup.
                        thread.cursor = head.last_seq;
                        thread.messages.retain(|seq, _| *seq <= head.last_seq);
                    }
                }
            }
            ServerFrame::Ack {
                client_id,
                conversation_id: _,
                seq: _,
            } => self.outbox.retain(|p| p.send.client_id != client_id),
            ServerFrame::Message(message) => {
                let id = message.conversation_id;
                let from_visitor = message.author == Author::Visitor;
                let Some(thread) = self.threads.get_mut(&id) else {
                    reaction.adopt = Some(id);
                    return reaction;
                };
                let fresh =
                    message.seq > thread.cursor && !thread.messages.contains_key(&message.seq);
                // Their words are a message now, no longer a draft on the visitor list.
                if from_visitor && let Some(visitor) = self.visitors.get_mut(&thread.visitor_id) {
                    visitor.draft.clear();
                }
                thread.take(message);
                if thread.has_gap() {
                    reaction.follow.push(Cursor {
                        conversation_id: id,
                        after_seq: thread.cursor,
                    });
                }
                if fresh && from_visitor {
                    reaction.notify = Some(id);
                }
            }
            ServerFrame::ConversationCreated {
                event_seq,
                conversation_id,
                site_id,
                visitor_id,
                created_at,
            } if self.take_event(event_seq) && !self.threads.contains_key(&conversation_id) => {
                self.threads.insert(
                    conversation_id,
                    Thread::new(site_id, visitor_id, created_at),
                );
                reaction.follow.push(Cursor {
                    conversation_id,
                    after_seq: 0,
                });
                reaction.notify = Some(conversation_id);
            }
            ServerFrame::AssignmentChanged {
                event_seq,
                conversation_id,
                assignee,
                team,
                by,
                note,
            } => {
                if self.take_event(event_seq)
                    && let Some(thread) = self.threads.get_mut(&conversation_id)
                {
                    thread.assignee = assignee;
                    thread.team = team;
                    thread.handover = by.zip(note);
                }
            }
            ServerFrame::Note { event_seq, .. } if !self.take_event(event_seq) => {}
            note @ ServerFrame::Note { .. } => self.add_notes(vec![note]),
            ServerFrame::Tags {
                event_seq,
                conversation_id,
                tags,
            } => {
                if self.take_event(event_seq)
                    && let Some(thread) = self.threads.get_mut(&conversation_id)
                {
                    thread.tags = tags;
                }
            }
            ServerFrame::Typing {
                conversation_id,
                author: Author::Visitor,
                typing,
                ..
            } => {
                if let Some(thread) = self.threads.get_mut(&conversation_id) {
                    thread.visitor_typing_since = typing.then_some(now);
                }
            }
            ServerFrame::Preview {
                visitor_id,
                conversation_id: Some(id),
                text,
            } => {
                // A draft only from the conversation's own visitor.
                if let Some(thread) = self.threads.get_mut(&id)
                    && thread.visitor_id == visitor_id
                {
                    thread.draft = text;
                }
            }
            // Before the first message the draft belongs to the visitor on the site.
            ServerFrame::Preview {
                visitor_id,
                conversation_id: None,
                text,
            } => {
                if let Some(visitor) = self.visitors.get_mut(&visitor_id) {
                    visitor.draft = text;
                }
            }
            ServerFrame::Read {
                conversation_id,
                up_to_seq,
                author: Author::Visitor,
                ..
            } => {
                if let Some(thread) = self.threads.get_mut(&conversation_id) {
                    thread.visitor_read = thread.visitor_read.max(up_to_seq);
                }
            }
            ServerFrame::VisitorPresence {
                site_id,
                visitor_id,
                online,
                details,
            } => {
                if online {
                    let visitor = self.visitor(site_id, visitor_id);
                    if details.is_some() {
                        visitor.details = details;
                    }
                } else {
                    self.visitors.remove(&visitor_id);
                }
            }
            ServerFrame::PageView {
                site_id,
                visitor_id,
                url,
                title,
                referrer,
                at,
            } => {
                let visitor = self.visitor(site_id, visitor_id);
                if visitor.referrer.is_none() {
                    visitor.referrer = referrer;
                }
                // The snapshot repeats the latest page after a reconnect: keep it once.
                if visitor
                    .pages
                    .last()
                    .is_none_or(|(last, _, when)| (last, *when) != (&url, at))
                {
                    visitor.pages.push((url, title, at));
                }
            }
            ServerFrame::AgentPresence { agent_id, status } => {
                if status == AgentStatus::Offline {
                    self.agents.remove(&agent_id);
                } else {
                    self.agents.insert(agent_id, status);
                }
            }
            ServerFrame::Error {
                code,
                client_id,
                retry_after_ms,
                ..
            } => match (code, client_id) {
                (ErrorCode::Unauthorized, _) => reaction.signed_out = true,
                // Not now (too fast, or the server cannot store it, e.g. its disk is full):
                // kept, and sent again after the wait.
                (ErrorCode::RateLimited | ErrorCode::Unavailable, Some(client_id)) => {
                    reaction.resend = Some((client_id, retry_after_ms.unwrap_or(RESEND_AFTER_MS)));
                }
                (ErrorCode::RateLimited, None) => {}
                (code, Some(client_id)) => {
                    for pending in &mut self.outbox {
                        if pending.send.client_id == client_id {
                            pending.refused = Some(code);
                        }
                    }
                }
                _ => {}
            },
            ServerFrame::Translation(translation) => {
                if let Some(thread) = self.threads.get_mut(&translation.conversation_id) {
                    // A failure never hides a translation already shown (a replay of an old
                    // frame after a later success).
                    let keep = translation.unavailable.is_some()
                        && thread
                            .translations
                            .get(&translation.seq)
                            .is_some_and(|held| held.text.is_some());
                    if !keep {
                        thread.translations.insert(translation.seq, translation);
                    }
                }
            }
            ServerFrame::Ping(ping) => reaction.pong = Some(ping.nonce),
            ServerFrame::Reconnect { within_ms } => reaction.reconnect_within = Some(within_ms),
            _ => {}
        }
        reaction
    }

    fn visitor(&mut self, site_id: SiteId, visitor_id: VisitorId) -> &mut OnlineVisitor {
        self.visitors
            .entry(visitor_id)
            .or_insert_with(|| OnlineVisitor {
                site_id,
                details: None,
                pages: Vec::new(),
                referrer: None,
                draft: String::new(),
            })
    }

    /// Advances the event cursor; `false` for an event already processed.
    fn take_event(&mut self, event_seq: EventSeq) -> bool {
        if self.events_after.is_some_and(|after| event_seq <= after) {
            return false;
        }
        self.events_after = Some(event_seq);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(conversation: i64, seq: Seq, author: Author, body: &str) -> Message {
        Message {
            conversation_id: ConversationId(conversation),
            seq,
            client_id: protocol::ClientId(format!("c{conversation}-{seq}")),
            author,
            agent_id: None,
            agent_name: None,
            body: body.to_string(),
            attachment: None,
            created_at: 1_000 + seq,
        }
    }

    fn seed(conversation: i64, last_seq: Seq, recent: Vec<Message>) -> ThreadSeed {
        ThreadSeed {
            conversation_id: ConversationId(conversation),
            site_id: SiteId(1),
            visitor_id: VisitorId(7),
            visitor_name: None,
            status: ConversationStatus::Open,
            snoozed_until: None,
            assignee: None,
            last_seq,
            updated_at: 1_000,
            recent,
            tags: vec!["vip".into()],
            team: None,
            translating: true,
            translations: Vec::new(),
        }
    }

    #[test]
    fn translations_sit_beside_their_messages_and_a_failure_never_hides_one() {
        let recent = vec![message(5, 1, Author::Visitor, "我想退款")];
        let mut desk = Desk::seeded(vec![seed(5, 1, recent)], None);
        let id = ConversationId(5);
        let translation = |text: Option<&str>, unavailable| {
            ServerFrame::Translation(Translation {
                conversation_id: id,
                seq: 1,
                source_language: "zh".into(),
                language: "en".into(),
                text: text.map(str::to_owned),
                unavailable,
            })
        };
        desk.apply(
            translation(None, Some(protocol::Unavailable::Provider)),
            0.0,
        );
        let held = |desk: &Desk| desk.threads[&id].translations[&1].text.clone();
        assert_eq!(held(&desk), None, "the marker is shown");
        desk.apply(translation(Some("I want a refund"), None), 0.0);
        assert_eq!(held(&desk).as_deref(), Some("I want a refund"));
        desk.apply(
            translation(None, Some(protocol::Unavailable::Provider)),
            0.0,
        );
        assert_eq!(held(&desk).as_deref(), Some("I want a refund"));
        // A conversation the desk does not follow is left alone.
        desk.apply(
            ServerFrame::Translation(Translation {
                conversation_id: ConversationId(99),
                seq: 1,
                source_language: "zh".into(),
                language: "en".into(),
                text: Some("x".into()),
                unavailable: None,
            }),
            0.0,
        );
        assert!(!desk.threads.contains_key(&ConversationId(99)));
    }

    #[test]
    fn a_draft_shows_only_from_the_conversations_own_visitor() {
        let mut desk = Desk::seeded(vec![seed(5, 0, vec![])], None);
        let preview = |visitor, text: &str| ServerFrame::Preview {
            visitor_id: VisitorId(visitor),
            conversation_id: Some(ConversationId(5)),
            text: text.into(),
        };
        desk.apply(preview(8, "send the refund to IBAN XX00"), 0.0);
        assert_eq!(
            desk.threads[&ConversationId(5)].draft,
            "",
            "another visitor's"
        );
        desk.apply(preview(7, "where is my parcel"), 0.0);
        assert_eq!(desk.threads[&ConversationId(5)].draft, "where is my parcel");
    }

    #[test]
    fn a_draft_before_the_first_message_shows_on_the_visitor() {
        let mut desk = Desk::seeded(vec![], None);
        desk.visitor(SiteId(1), VisitorId(9));
        desk.apply(
            ServerFrame::Preview {
                visitor_id: VisitorId(9),
                conversation_id: None,
                text: "do you ship to".into(),
            },
            0.0,
        );
        assert_eq!(desk.visitors[&VisitorId(9)].draft, "do you ship to");
        // Not for a visitor who is not on the site.
        desk.apply(
            ServerFrame::Preview {
                visitor_id: VisitorId(10),
                conversation_id: None,
                text: "x".into(),
            },
            0.0,
        );
        assert!(!desk.visitors.contains_key(&VisitorId(10)));
    }

    #[test]
    fn repeats_are_dropped_and_the_cursor_only_crosses_contiguous_seqs() {
        let mut desk = Desk::seeded(vec![seed(5, 2, vec![])], Some(3));
        let id = ConversationId(5);
        let first = desk.apply(
            ServerFrame::Message(message(5, 3, Author::Visitor, "a")),
            0.0,
        );
        assert_eq!(first.notify, Some(id));
        assert!(first.follow.is_empty());
        assert_eq!(desk.threads[&id].cursor, 3);

        let again = desk.apply(
            ServerFrame::Message(message(5, 3, Author::Visitor, "a")),
            0.0,
        );
        assert_eq!(again.notify, None, "a replayed message is not news");
        assert_eq!(desk.threads[&id].messages.len(), 1);

        // 5 arrives before 4: kept aside, the cursor waits, and the gap is asked for.
        let ahead = desk.apply(
            ServerFrame::Message(message(5, 5, Author::Visitor, "c")),
            0.0,
        );
        assert_eq!(desk.threads[&id].cursor, 3);
        assert_eq!(
            ahead.follow,
            vec![Cursor {
                conversation_id: id,
                after_seq: 3
            }]
        );
        desk.apply(
            ServerFrame::Message(message(5, 4, Author::Visitor, "b")),
            0.0,
        );
        assert_eq!(desk.threads[&id].cursor, 5);
        assert_eq!(
            desk.cursors(),
            vec![Cursor {
                conversation_id: id,
                after_seq: 5
            }]
        );
    }

    #[test]
    fn a_new_conversation_is_followed_once_and_its_event_not_replayed() {
        let mut desk = Desk::seeded(vec![], None);
        let welcome = serde_json::from_str(
            r#"{"type":"welcome","protocol_version":1,"server_time":1,"agent_id":2,"event_seq":10,
                "limits":{"max_frame_bytes":1,"max_message_bytes":1,"max_cursors":1,
                "messages_per_minute":1,"ephemeral_per_second":1,"ping_interval_ms":1,
                "idle_timeout_ms":1}}"#,
        )
        .expect("welcome");
        desk.apply(welcome, 0.0);
        assert_eq!(desk.me, Some(AgentId(2)));
        assert_eq!(desk.events_after, Some(10));
        let created = ServerFrame::ConversationCreated {
            event_seq: 11,
            conversation_id: ConversationId(9),
            site_id: SiteId(1),
            visitor_id: VisitorId(4),
            created_at: 5,
        };
        let reaction = desk.apply(created.clone(), 0.0);
        assert_eq!(reaction.follow.len(), 1);
        assert_eq!(reaction.follow[0].after_seq, 0);
        assert_eq!(desk.events_after, Some(11));
        assert_eq!(desk.apply(created, 0.0), Reaction::default());
        let assigned = ServerFrame::AssignmentChanged {
            event_seq: 12,
            conversation_id: ConversationId(9),
            assignee: Some(AgentId(2)),
            team: None,
            by: Some(AgentId(3)),
            note: Some("refund asked".into()),
        };
        desk.apply(assigned, 0.0);
        let thread = &desk.threads[&ConversationId(9)];
        assert_eq!(thread.assignee, Some(AgentId(2)));
        assert_eq!(thread.handover, Some((AgentId(3), "refund asked".into())));
    }

    #[test]
    fn acks_empty_the_outbox_and_refusals_stop_resends() {
        let mut desk = Desk::seeded(vec![seed(5, 0, vec![])], None);
        let id = ConversationId(5);
        desk.compose(id, protocol::ClientId("one".into()), "hi".into(), None);
        desk.compose(id, protocol::ClientId("two".into()), "x".into(), None);
        assert_eq!(desk.resends().len(), 2);
        desk.apply(
            ServerFrame::Ack {
                client_id: protocol::ClientId("one".into()),
                conversation_id: id,
                seq: 1,
            },
            0.0,
        );
        desk.apply(
            ServerFrame::Error {
                code: ErrorCode::TooLarge,
                message: String::new(),
                client_id: Some(protocol::ClientId("two".into())),
                conversation_id: Some(id),
                retry_after_ms: None,
            },
            0.0,
        );
        assert_eq!(desk.outbox.len(), 1);
        assert_eq!(desk.outbox[0].refused, Some(ErrorCode::TooLarge));
        assert!(desk.resends().is_empty());
    }

    #[test]
    fn a_send_refused_for_now_stays_and_is_sent_again_after_the_wait() {
        let mut desk = Desk::seeded(vec![seed(5, 0, vec![])], None);
        let id = ConversationId(5);
        let one = protocol::ClientId("one".into());
        desk.compose(id, one.clone(), "hi".into(), None);
        let reaction = desk.apply(
            ServerFrame::Error {
                code: ErrorCode::Unavailable,
                message: String::new(),
                client_id: Some(one.clone()),
                conversation_id: Some(id),
                retry_after_ms: Some(5_000),
            },
            0.0,
        );
        assert_eq!(reaction.resend, Some((one.clone(), 5_000)));
        assert_eq!(desk.outbox[0].refused, None);
        assert_eq!(desk.resends().len(), 1);
        assert!(desk.resend(&one).is_some());
        desk.apply(
            ServerFrame::Ack {
                client_id: one.clone(),
                conversation_id: id,
                seq: 1,
            },
            0.0,
        );
        assert!(
            desk.resend(&one).is_none(),
            "acked meanwhile: not sent again"
        );
    }

    #[test]
    fn unread_counts_visitor_words_since_the_last_reply_or_read() {
        let recent = vec![
            message(5, 1, Author::Visitor, "hello"),
            message(5, 2, Author::Agent, "hi"),
            message(5, 3, Author::Visitor, "question"),
            message(5, 4, Author::System, "pending"),
            message(5, 5, Author::Visitor, "still there?"),
        ];
        let mut desk = Desk::seeded(vec![seed(5, 5, recent)], None);
        let id = ConversationId(5);
        assert_eq!(desk.threads[&id].unread(), 2);
        assert_eq!(
            desk.threads[&id].status,
            ConversationStatus::Open,
            "seeded status stays"
        );
        assert_eq!(desk.threads[&id].last_words().map(|m| m.seq), Some(5));
        assert_eq!(desk.unread(), 2);
        assert_eq!(desk.mark_read(id), Some(5));
        assert_eq!(desk.mark_read(id), None);
        assert_eq!(desk.unread(), 0);
        // A live status record changes the status.
        desk.apply(
            ServerFrame::Message(message(5, 6, Author::System, "resolved")),
            0.0,
        );
        assert_eq!(desk.threads[&id].status, ConversationStatus::Resolved);
    }

    #[test]
    fn notes_arrive_once_live_or_loaded() {
        let mut desk = Desk::seeded(vec![seed(5, 0, vec![])], Some(10));
        let note = |event_seq| ServerFrame::Note {
            event_seq,
            conversation_id: ConversationId(5),
            agent_id: AgentId(1),
            agent_name: "Ann".into(),
            body: format!("note {event_seq}"),
            created_at: 7,
        };
        desk.apply(note(11), 0.0);
        desk.apply(note(11), 0.0);
        desk.add_notes(vec![note(9), note(11)]);
        let notes = &desk.threads[&ConversationId(5)].notes;
        assert_eq!(notes.keys().copied().collect::<Vec<_>>(), [9, 11]);
        assert_eq!(notes[&11].body, "note 11");
        assert_eq!(desk.events_after, Some(11));
        assert_eq!(desk.threads[&ConversationId(5)].tags, ["vip"]);
        desk.apply(
            ServerFrame::Tags {
                event_seq: 12,
                conversation_id: ConversationId(5),
                tags: vec!["refund".into()],
            },
            0.0,
        );
        assert_eq!(desk.threads[&ConversationId(5)].tags, ["refund"]);
    }

    #[test]
    fn history_pages_extend_the_transcript_backwards() {
        let mut desk = Desk::seeded(
            vec![seed(5, 10, vec![message(5, 10, Author::Visitor, "j")])],
            None,
        );
        let id = ConversationId(5);
        assert_eq!(desk.threads[&id].oldest, 10);
        desk.add_history(
            id,
            vec![
                message(5, 9, Author::Agent, "i"),
                message(5, 8, Author::Visitor, "h"),
            ],
        );
        assert_eq!(desk.threads[&id].oldest, 8);
        assert_eq!(desk.threads[&id].messages.len(), 3);
        assert_eq!(desk.threads[&id].cursor, 10);
    }

    #[test]
    fn visitors_come_and_go_with_their_pages() {
        let mut desk = Desk::default();
        let visitor = VisitorId(3);
        desk.apply(
            ServerFrame::VisitorPresence {
                site_id: SiteId(1),
                visitor_id: visitor,
                online: true,
                details: None,
            },
            0.0,
        );
        let page = |url: &str, at| ServerFrame::PageView {
            site_id: SiteId(1),
            visitor_id: visitor,
            url: url.into(),
            title: None,
            referrer: Some("https://search.example/".into()),
            at,
        };
        desk.apply(page("https://shop.example/", 1), 0.0);
        desk.apply(page("https://shop.example/", 1), 0.0);
        desk.apply(page("https://shop.example/cart", 2), 0.0);
        assert_eq!(desk.visitors[&visitor].pages.len(), 2);
        assert_eq!(
            desk.visitors[&visitor].referrer.as_deref(),
            Some("https://search.example/")
        );
        desk.apply(
            ServerFrame::VisitorPresence {
                site_id: SiteId(1),
                visitor_id: visitor,
                online: false,
                details: None,
            },
            0.0,
        );
        assert!(desk.visitors.is_empty());
    }
}
