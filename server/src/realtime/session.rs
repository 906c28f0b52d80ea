//! One client's real-time session, shared by the WebSocket and the HTTP transports.
//!
//! A session knows who the client is, which conversations it follows and up to which seq it has
//! them (its cursors), and turns client frames into server frames. Transports only move frames:
//! the WebSocket keeps one session for the connection's life, HTTP builds one per request from
//! the token or cookie and the poll's cursors. That is what makes ordering, acks and resume
//! behave the same on both.
//!
//! Delivery of a followed conversation is gap-free: a live message whose seq is not the next one
//! (or a lagging subscription) is filled in from the store, so the hub never has to be reliable.

use super::budgets::Spend;
use super::hub::{Bucket, Event, Sender};
use super::replay::ReplayBudget;
use super::{Realtime, error_frame as error};
use crate::util::text::{label, truncate};
use protocol::{
    AgentId, AgentStatus, Author, ClientId, ConversationHead, ConversationId, Cursor, ErrorCode,
    Page, Preview, Read, SendMessage, Seq, ServerFrame, SetConversationStatus, SiteId,
    StatusRecord, Typing, VisitorId, Welcome,
};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;
use store::{Agent, ConversationStatus, NewEvent, NewMessage, Site};
use tokio::sync::broadcast::{self, error::RecvError};

/// Messages fetched from the store per query while replaying or filling a gap.
const REPLAY_BATCH: u32 = 500;

/// The refusal of a `client_id` outside the documented form.
const BAD_CLIENT_ID: &str = "client_id must be 1 to 64 characters from A-Z a-z 0-9 - _";

/// `resume` frames one connection may send at once; one more each second after.
const RESUMES_AT_ONCE: f64 = 10.0;

/// Who is on the other end.
#[derive(Debug, Clone)]
pub enum Identity {
    /// A visitor of one site.
    Visitor {
        /// The site whose widget they use (settings such as sneak-peek apply).
        site: Arc<Site>,
        /// The visitor; they may read only their own conversations.
        visitor_id: VisitorId,
        /// First seen more than [`super::RETURNING_AFTER_MS`] ago: agents see "returning".
        returning: bool,
        /// The address they came from (already the client's, not a proxy's): what they make
        /// is counted against its budgets.
        address: Option<std::net::IpAddr>,
    },
    /// A signed-in agent.
    Agent {
        /// The agent (name shown on their messages).
        agent: Arc<Agent>,
        /// The sites they belong to; they may read those sites' conversations only.
        site_ids: Vec<SiteId>,
    },
}

/// A frame a client sent, whichever role.
pub enum Inbound {
    /// Follow conversations from the given cursors.
    Resume(Vec<Cursor>),
    /// Store a message.
    Send(SendMessage),
    /// Typing started or stopped.
    Typing(Typing),
    /// What a visitor is typing (visitors only).
    Preview(Preview),
    /// Read up to a seq.
    Read(Read),
    /// A visitor moved to another page.
    PageView(Page),
    /// An agent changed status.
    SetStatus(AgentStatus),
    /// An agent resolved, reopened or parked a conversation.
    SetConversationStatus(SetConversationStatus),
    /// An agent picked up, transferred or unassigned a conversation.
    Assign(protocol::Assign),
    /// An agent wrote first to a visitor on the site.
    Invite(protocol::Invite),
}

/// A session: identity, followed conversations, subscriptions and ephemeral rate bucket.
pub struct Session {
    /// Store, hub and limits shared by all sessions.
    rt: Arc<Realtime>,
    /// Who the client is; decides what they may read and write.
    identity: Identity,
    /// Followed conversations → the highest seq delivered without a gap.
    cursors: HashMap<ConversationId, Seq>,
    /// Agents: the newest event seq delivered (events are replayed after it on lag).
    event_cursor: i64,
    /// Live frames for this client: the visitor's topic, or each of the agent's site topics.
    receivers: Vec<broadcast::Receiver<Event>>,
    /// A live frame received but not yet fully handled (see [`Session::next_events`]).
    unsettled: Option<Event>,
    /// The visitor was banned while connected: every later frame of theirs is refused.
    banned: bool,
    /// A lag was noticed and the catch-up from the store has not finished yet.
    lagged: bool,
    /// Changes when live frames may have been missed (the bus between nodes was down): then
    /// the session catches up from the store as after a lag.
    resyncs: tokio::sync::watch::Receiver<u64>,
    /// Rate limit for typing, previews, reads and page views on this session.
    ephemeral: Bucket,
    /// Rate limit for `resume` on this session (each may replay a burst).
    resumes: Bucket,
    /// What the current burst may still replay; renewed for each client frame and each wait
    /// for live frames.
    budget: ReplayBudget,
    /// Followed conversations whose replay was cut short: continued by the next
    /// [`Session::next_events`] (a WebSocket's next burst) or the client's next poll.
    behind: BTreeSet<ConversationId>,
    /// Agents: the event replay was cut short, likewise.
    events_behind: bool,
}

impl Session {
    /// A session for an identified client, already subscribed to its live frames (subscribing
    /// before any replay means nothing stored in between is missed).
    pub fn new(rt: Arc<Realtime>, identity: Identity) -> Session {
        let receivers = match &identity {
            Identity::Visitor {
                site, visitor_id, ..
            } => vec![
                rt.hub.subscribe_visitor(*visitor_id),
                rt.hub.subscribe_site_visitors(site.id),
            ],
            Identity::Agent { site_ids, .. } => site_ids
                .iter()
                .map(|id| rt.hub.subscribe_site(*id))
                .collect(),
        };
        let ephemeral = Bucket::full(f64::from(rt.limits.ephemeral_per_second));
        let resyncs = rt.hub.resyncs();
        Session {
            rt,
            identity,
            cursors: HashMap::new(),
            event_cursor: 0,
            receivers,
            unsettled: None,
            banned: false,
            lagged: false,
            resyncs,
            ephemeral,
            resumes: Bucket::full(RESUMES_AT_ONCE),
            budget: ReplayBudget::full(),
            behind: BTreeSet::new(),
            events_behind: false,
        }
    }

    /// Who this session is for.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The `welcome` for this session: token, conversations and their heads, limits.
    pub async fn welcome(
        &mut self,
        events_after: Option<i64>,
    ) -> Result<Vec<ServerFrame>, store::Error> {
        let now = crate::util::now_ms();
        let mut frames = Vec::new();
        match &self.identity {
            Identity::Visitor {
                site, visitor_id, ..
            } => {
                let conversations = self.rt.store.visitor_conversations(*visitor_id).await?;
                frames.push(ServerFrame::Welcome(Welcome {
                    protocol_version: protocol::PROTOCOL_VERSION,
                    server_time: now,
                    visitor_id: Some(*visitor_id),
                    visitor_token: Some(self.rt.tokens.issue(site.id, *visitor_id, now / 1000)),
                    agent_id: None,
                    event_seq: None,
                    conversations: conversations
                        .iter()
                        .map(|c| ConversationHead {
                            conversation_id: c.id,
                            last_seq: c.last_seq,
                        })
                        .collect(),
                    limits: self.rt.limits,
                }));
                frames.push(ServerFrame::Availability {
                    online: super::chat_offered(&self.rt, site),
                });
                // A visitor coming back while their chat waits learns their place at once.
                frames.extend(conversations.iter().filter_map(|c| {
                    let position = self.rt.assigner.place(c.id)?;
                    Some(ServerFrame::Queue {
                        conversation_id: c.id,
                        position,
                    })
                }));
            }
            Identity::Agent { agent, site_ids } => {
                let heads = self.rt.store.site_conversation_heads(site_ids, 200).await?;
                let newest = self.rt.store.last_event_id(site_ids).await?;
                frames.push(ServerFrame::Welcome(Welcome {
                    protocol_version: protocol::PROTOCOL_VERSION,
                    server_time: now,
                    visitor_id: None,
                    visitor_token: None,
                    agent_id: Some(agent.id),
                    event_seq: Some(newest),
                    conversations: heads
                        .iter()
                        .map(|c| ConversationHead {
                            conversation_id: c.id,
                            last_seq: c.last_seq,
                        })
                        .collect(),
                    limits: self.rt.limits,
                }));
                frames.extend(self.rt.hub.agent_snapshot(site_ids));
                // An agent coming online takes waiting conversations.
                super::assign::fill_sites(&self.rt, site_ids).await;
                match events_after {
                    Some(after) => {
                        self.event_cursor = after;
                        frames.extend(self.replay_events().await?);
                    }
                    None => self.event_cursor = newest,
                }
            }
        }
        Ok(frames)
    }

    /// Whether this client may read a conversation.
    fn may_read(&self, conversation: &store::ConversationFacts) -> bool {
        match &self.identity {
            Identity::Visitor { visitor_id, .. } => conversation.visitor_id == *visitor_id,
            Identity::Agent { site_ids, .. } => site_ids.contains(&conversation.site_id),
        }
    }

    /// Follows conversations from the given cursors and replays what the client misses.
    pub async fn follow(&mut self, cursors: &[Cursor]) -> Result<Vec<ServerFrame>, store::Error> {
        let mut frames = Vec::new();
        if cursors.len() > self.rt.limits.max_cursors as usize {
            frames.push(error(ErrorCode::TooLarge, "too many cursors"));
            return Ok(frames);
        }
        for cursor in &lowest_cursors(cursors) {
            let id = cursor.conversation_id;
            if cursor.after_seq < 0 {
                frames.push(ServerFrame::Error {
                    code: ErrorCode::BadRequest,
                    message: "after_seq must not be negative".into(),
                    client_id: None,
                    conversation_id: Some(cursor.conversation_id),
                    retry_after_ms: None,
                });
                continue;
            }
            if self.whose(id).await?.is_none() {
                frames.push(ServerFrame::Error {
                    code: ErrorCode::NotFound,
                    message: "no such conversation".into(),
                    client_id: None,
                    conversation_id: Some(cursor.conversation_id),
                    retry_after_ms: None,
                });
                continue;
            }
            self.cursors.insert(id, cursor.after_seq);
            self.fill(id, &mut frames).await?;
        }
        Ok(frames)
    }

    /// Visitors polling over HTTP: also follows their open conversation (the newest not
    /// resolved) from its start when `named`, the poll's cursors, name nothing as new. A poll
    /// has no `welcome` to tell of a conversation begun between two polls (an agent's
    /// invitation, a chat started in another tab), and its live frame went to nobody; so the
    /// next poll reads it. Called after `follow`, on a session already subscribed.
    pub async fn follow_open(
        &mut self,
        named: &[Cursor],
    ) -> Result<Vec<ServerFrame>, store::Error> {
        let Identity::Visitor { visitor_id, .. } = &self.identity else {
            return Ok(Vec::new());
        };
        match self.rt.store.open_conversation(*visitor_id).await? {
            Some(open) if named.iter().all(|c| c.conversation_id < open.id) => {
                self.follow(&[Cursor {
                    conversation_id: open.id,
                    after_seq: 0,
                }])
                .await
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Appends to `frames` the stored messages of a followed conversation after its cursor, as
    /// many as the burst's budget allows; the conversation stays `behind` until all are sent.
    async fn fill(
        &mut self,
        conversation_id: ConversationId,
        frames: &mut Vec<ServerFrame>,
    ) -> Result<(), store::Error> {
        // The cursor moves only once everything is read: a call cancelled between two reads
        // (a transport's select) leaves it where it was, and the next call reads it all again.
        let mut after = self.cursors.get(&conversation_id).copied().unwrap_or(0);
        let mut read = Vec::new();
        let mut cut = self.budget.is_cut();
        while !cut {
            // No more than the burst can take, and one to tell whether there is more.
            let limit = REPLAY_BATCH.min(self.budget.room() + 1);
            let batch = self
                .rt
                .store
                .messages_after(conversation_id, after, limit)
                .await?;
            let full = batch.len() == limit as usize;
            // Translations made while the client was away follow their messages.
            let mut translated = if self.rt.translation().is_some() {
                store::made_translations(self.rt.store.as_ref(), &batch).await?
            } else {
                Vec::new()
            };
            for message in batch {
                let seq = message.seq;
                let mut item = vec![ServerFrame::Message(message.into_frame(None))];
                item.extend(
                    translated
                        .extract_if(.., |t| t.seq == seq)
                        .map(ServerFrame::Translation),
                );
                if let Err(marker) = self.budget.take(&item) {
                    read.extend(marker);
                    cut = true;
                    break;
                }
                after = seq;
                read.extend(item);
            }
            if !full {
                break;
            }
        }
        if cut {
            self.behind.insert(conversation_id);
        } else {
            self.behind.remove(&conversation_id);
        }
        self.cursors.insert(conversation_id, after);
        frames.extend(read);
        Ok(())
    }

    /// Agents: the events after the event cursor, in order, as many as the budget allows.
    async fn replay_events(&mut self) -> Result<Vec<ServerFrame>, store::Error> {
        let Identity::Agent { site_ids, .. } = &self.identity else {
            return Ok(Vec::new());
        };
        // As in `fill`: the cursor moves once everything is read, so a cancelled call loses
        // nothing.
        let mut frames = Vec::new();
        let mut cursor = self.event_cursor;
        let mut cut = self.budget.is_cut();
        while !cut {
            let limit = REPLAY_BATCH.min(self.budget.room() + 1);
            let batch = self.rt.store.events_after(site_ids, cursor, limit).await?;
            let full = batch.len() == limit as usize;
            for event in batch {
                match serde_json::from_str::<ServerFrame>(&event.payload) {
                    Ok(mut frame) => {
                        set_event_seq(&mut frame, event.id);
                        if let Err(marker) = self.budget.take(std::slice::from_ref(&frame)) {
                            frames.extend(marker);
                            cut = true;
                            break;
                        }
                        frames.push(frame);
                    }
                    Err(error) => {
                        tracing::error!(%error, event = %event.id, "unreadable stored event")
                    }
                }
                cursor = event.id;
            }
            if !full {
                break;
            }
        }
        self.events_behind = cut;
        self.event_cursor = cursor;
        Ok(frames)
    }

    /// The next burst of a replay that was cut short.
    async fn continue_replay(&mut self) -> Result<Vec<ServerFrame>, store::Error> {
        let mut frames = if self.events_behind {
            self.replay_events().await?
        } else {
            Vec::new()
        };
        let behind: Vec<ConversationId> = self.behind.iter().copied().collect();
        for id in behind {
            self.fill(id, &mut frames).await?;
        }
        Ok(frames)
    }

    /// Handles one client frame after the hello; returns the frames that answer it.
    pub async fn handle(&mut self, inbound: Inbound) -> Result<Vec<ServerFrame>, store::Error> {
        if self.banned {
            return Ok(vec![error(ErrorCode::Banned, "banned")]);
        }
        self.budget = ReplayBudget::full();
        match inbound {
            Inbound::Resume(cursors) => self.resume(&cursors).await,
            Inbound::Send(send) => {
                let (client_id, conversation_id) = (send.client_id.clone(), send.conversation_id);
                let answer = self.send(send).await;
                self.stored_or_retry(answer, client_id, conversation_id)
            }
            Inbound::SetConversationStatus(change) => self.set_conversation_status(change).await,
            Inbound::Assign(assign) => self.assign(assign).await,
            Inbound::Invite(invite) => {
                let client_id = invite.client_id.clone();
                let answer = self.invite(invite).await;
                self.stored_or_retry(answer, client_id, None)
            }
            other => Ok(self.ephemeral(other).await?.into_iter().collect()),
        }
    }

    /// The answer to a message the store was asked to keep: a full disk, an unreachable
    /// database or a full write queue refuses it by its `client_id` with `unavailable` and a
    /// wait, so the client resends it later (never an ack for what was not stored); a stored
    /// one ends the episode.
    fn stored_or_retry(
        &self,
        answer: Result<Vec<ServerFrame>, store::Error>,
        client_id: ClientId,
        conversation_id: Option<ConversationId>,
    ) -> Result<Vec<ServerFrame>, store::Error> {
        match answer {
            Ok(frames) => {
                if frames.iter().any(|f| matches!(f, ServerFrame::Ack { .. })) {
                    self.rt.outage.wrote();
                }
                Ok(frames)
            }
            Err(error) => match self.rt.outage.failed(&error) {
                Some(wait) => Ok(vec![ServerFrame::Error {
                    code: ErrorCode::Unavailable,
                    message: super::UNAVAILABLE_MESSAGE.to_string(),
                    client_id: Some(client_id),
                    conversation_id,
                    retry_after_ms: Some(wait),
                }]),
                None => Err(error),
            },
        }
    }

    /// A `resume`: each one may replay a burst, so they are counted per connection and per
    /// address.
    async fn resume(&mut self, cursors: &[Cursor]) -> Result<Vec<ServerFrame>, store::Error> {
        let per_second = RESUMES_AT_ONCE / 10.0;
        let mut wait = self
            .resumes
            .take(RESUMES_AT_ONCE, per_second, Instant::now())
            .err();
        if wait.is_none()
            && let Identity::Visitor { address, .. } = &self.identity
        {
            wait = self.rt.budgets.spend(Spend::Resume, *address, None).err();
        }
        if let Some(wait) = wait {
            return Ok(vec![super::over_budget(wait, "too many resumes; wait")]);
        }
        self.follow(cursors).await
    }

    async fn send(&mut self, send: SendMessage) -> Result<Vec<ServerFrame>, store::Error> {
        let refuse = |code: ErrorCode, message: &str, retry_after_ms: Option<u32>| {
            Ok(vec![ServerFrame::Error {
                code,
                message: message.to_string(),
                client_id: Some(send.client_id.clone()),
                conversation_id: send.conversation_id,
                retry_after_ms,
            }])
        };
        if let Err((code, message, wait)) =
            self.admit(&send.client_id, &send.body, send.attachment.is_some())
        {
            return refuse(code, message, wait);
        }
        let attachment = match &send.attachment {
            None => None,
            Some(id) => match self.rt.store.attachment(id).await? {
                Some(found) if self.uploaded(&found) => Some(found),
                _ => return refuse(ErrorCode::NotFound, "no such attachment", None),
            },
        };
        // Marked before the message is stored: the sweep of unsent uploads never takes a file
        // a stored message names.
        if let Some(file) = &attachment {
            self.rt
                .store
                .mark_attachment_sent(&file.public_id, crate::util::now_ms())
                .await?;
        }
        let new = |author, agent_id| NewMessage {
            client_id: send.client_id.clone(),
            author,
            agent_id,
            body: send.body.clone(),
            attachment: attachment.as_ref().map(store::Attachment::wire),
            created_at: crate::util::now_ms(),
        };
        let mut reopened = false;
        let (conversation, appended, agent_name) = match (&self.identity, send.conversation_id) {
            (
                Identity::Visitor {
                    site,
                    visitor_id,
                    address,
                    ..
                },
                conversation_id,
            ) => {
                match conversation_id {
                    None => {
                        // A message without a conversation may start one: within budget.
                        if let Err(wait) =
                            self.rt
                                .budgets
                                .spend(Spend::Conversation, *address, Some(site.id))
                        {
                            return refuse(
                                ErrorCode::RateLimited,
                                "too many new conversations",
                                Some(wait),
                            );
                        }
                        let result = self
                            .rt
                            .store
                            .append_message_in_open_conversation(
                                site.id,
                                *visitor_id,
                                new(Author::Visitor, None),
                            )
                            .await?;
                        if result.created_conversation {
                            self.announce_conversation(&result.conversation).await?;
                        }
                        // A conversation started on this connection is followed from 0.
                        self.cursors.entry(result.conversation.id).or_insert(0);
                        let facts = result.conversation.facts();
                        self.rt.facts.learn(facts);
                        (facts, result.appended, None)
                    }
                    Some(id) => {
                        let Some(conversation) = self.whose(id).await? else {
                            return refuse(ErrorCode::NotFound, "no such conversation", None);
                        };
                        let appended = self
                            .rt
                            .store
                            .append_message(id, new(Author::Visitor, None))
                            .await?;
                        // A visitor writing again reopens a resolved or snoozed conversation, so
                        // the new message shows in the agents' inbox instead of in a closed
                        // or parked thread.
                        if appended.created && appended.parked {
                            self.rt
                                .store
                                .set_conversation_status(
                                    id,
                                    ConversationStatus::Open,
                                    crate::util::now_ms(),
                                )
                                .await?;
                            // Published after the visitor's own message (below), in seq order.
                            reopened = true;
                        }
                        (conversation, appended, None)
                    }
                }
            }
            (Identity::Agent { .. }, None) => {
                return refuse(
                    ErrorCode::BadRequest,
                    "agents must name the conversation",
                    None,
                );
            }
            (Identity::Agent { agent, .. }, Some(id)) => {
                let Some(conversation) = self.whose(id).await? else {
                    return refuse(ErrorCode::NotFound, "no such conversation", None);
                };
                // A file uploaded for one site is never sent into another site's conversation.
                if attachment
                    .as_ref()
                    .is_some_and(|a| a.site_id != conversation.site_id)
                {
                    return refuse(ErrorCode::NotFound, "no such attachment", None);
                }
                let appended = self
                    .rt
                    .store
                    .append_message(id, new(Author::Agent, Some(agent.id)))
                    .await?;
                (conversation, appended, Some(agent.display_name.clone()))
            }
        };
        let ack = publish(&self.rt, &conversation, appended, agent_name);
        if reopened {
            let record = system_message(
                ClientId(crate::util::random_hex::<16>()),
                ConversationStatus::Open.into(),
                None,
            );
            let appended = self
                .rt
                .store
                .append_message(conversation.id, record)
                .await?;
            publish(&self.rt, &conversation, appended, None);
        }
        Ok(vec![ack])
    }

    /// The checks every new message passes before it is stored: size, not blank (unless it
    /// carries a file), a client id of 1–64 characters, and the sender's rate.
    fn admit(
        &self,
        client_id: &ClientId,
        body: &str,
        has_file: bool,
    ) -> Result<(), (ErrorCode, &'static str, Option<u32>)> {
        if body.len() > self.rt.limits.max_message_bytes as usize {
            return Err((ErrorCode::TooLarge, "message too long", None));
        }
        if body.trim().is_empty() && !has_file {
            return Err((ErrorCode::BadRequest, "empty message", None));
        }
        if !client_id.is_valid() {
            return Err((ErrorCode::BadRequest, BAD_CLIENT_ID, None));
        }
        let sender = match &self.identity {
            Identity::Visitor { visitor_id, .. } => Sender::Visitor(*visitor_id),
            Identity::Agent { agent, .. } => Sender::Agent(agent.id),
        };
        self.rt
            .hub
            .take_message_token(sender, self.rt.limits.messages_per_minute)
            .map_err(|wait| (ErrorCode::RateLimited, "too many messages", Some(wait)))
    }

    /// An agent writes first to a visitor on the site: into the visitor's open conversation, or
    /// a new one assigned to the agent. Answered with the ack, like a send.
    async fn invite(&mut self, invite: protocol::Invite) -> Result<Vec<ServerFrame>, store::Error> {
        let refuse = |code: ErrorCode, message: &str, retry_after_ms: Option<u32>| {
            Ok(vec![ServerFrame::Error {
                code,
                message: message.to_string(),
                client_id: Some(invite.client_id.clone()),
                conversation_id: None,
                retry_after_ms,
            }])
        };
        let Identity::Agent { agent, site_ids } = &self.identity else {
            return refuse(ErrorCode::Forbidden, "only agents invite", None);
        };
        let agent = agent.clone();
        let visitor = self
            .rt
            .store
            .visitor(invite.visitor_id)
            .await?
            .filter(|v| site_ids.contains(&v.site_id));
        let Some(visitor) = visitor else {
            return refuse(ErrorCode::NotFound, "no such visitor on your sites", None);
        };
        // Only for someone here to read it: an invitation to a visitor who has left (a stale
        // row in a console) would start a chat nobody sees, so it is refused and the agent told.
        if !self.rt.hub.visitor_online(visitor.id) {
            return refuse(ErrorCode::Conflict, "the visitor is not online", None);
        }
        if let Err((code, message, wait)) = self.admit(&invite.client_id, &invite.body, false) {
            return refuse(code, message, wait);
        }
        let result = self
            .rt
            .store
            .append_message_in_open_conversation(
                visitor.site_id,
                visitor.id,
                NewMessage {
                    client_id: invite.client_id.clone(),
                    author: Author::Agent,
                    agent_id: Some(agent.id),
                    body: invite.body.clone(),
                    attachment: None,
                    created_at: crate::util::now_ms(),
                },
            )
            .await?;
        let mut conversation = result.conversation;
        if result.created_conversation {
            // Taken by the inviting agent before the router could hand it to someone else.
            let taken = self
                .rt
                .store
                .reassign_conversation(conversation.id, None, Some(agent.id))
                .await?;
            self.announce_conversation(&conversation).await?;
            if taken {
                conversation.assignee_id = Some(agent.id);
                let handover = super::assign::Handover {
                    team: None,
                    by: agent.id,
                    note: None,
                };
                super::assign::announce(&self.rt, &conversation, Some(&agent), Some(handover))
                    .await?;
            }
        }
        Ok(vec![publish(
            &self.rt,
            &conversation.facts(),
            result.appended,
            Some(agent.display_name.clone()),
        )])
    }

    /// An agent picks a conversation up, transfers it to a colleague of its site, or gives it
    /// back to the queue. Answers nothing on success: `assignment_changed` tells every console.
    async fn assign(&mut self, assign: protocol::Assign) -> Result<Vec<ServerFrame>, store::Error> {
        let refuse = |code: ErrorCode, message: &str| {
            Ok(vec![ServerFrame::Error {
                code,
                message: message.to_string(),
                client_id: None,
                conversation_id: Some(assign.conversation_id),
                retry_after_ms: None,
            }])
        };
        let Identity::Agent { agent: me, .. } = &self.identity else {
            return refuse(ErrorCode::Forbidden, "only agents assign conversations");
        };
        let me = me.id;
        if assign
            .note
            .as_ref()
            .is_some_and(|n| n.len() > self.rt.limits.max_message_bytes as usize)
        {
            return refuse(ErrorCode::TooLarge, "note too long");
        }
        let Some(conversation) = self.readable(assign.conversation_id).await? else {
            return refuse(ErrorCode::NotFound, "no such conversation");
        };
        // A team must be one of the conversation's site; it only applies when unassigning.
        let team = match assign.team.filter(|_| assign.to.is_none()) {
            None => None,
            Some(team) => {
                let teams = self.rt.store.site_teams(&[conversation.site_id]).await?;
                if !teams.iter().any(|t| t.id == team) {
                    return refuse(ErrorCode::NotFound, "no such team on this site");
                }
                Some(team)
            }
        };
        let to = match assign.to {
            None => None,
            Some(id) => {
                let member = self
                    .rt
                    .store
                    .agent_sites(id)
                    .await?
                    .contains(&conversation.site_id);
                match self.rt.store.agent(id).await? {
                    Some(agent) if member && !agent.disabled => Some(agent),
                    _ => return refuse(ErrorCode::NotFound, "no such agent on this site"),
                }
            }
        };
        // Routed to the team (or back to the whole site) before it is unassigned, so the router
        // never hands it to someone outside the team; put back if the move does not happen.
        self.rt
            .store
            .set_conversation_team(conversation.id, team)
            .await?;
        let moved = self
            .rt
            .store
            .reassign_conversation(
                conversation.id,
                conversation.assignee_id,
                to.as_ref().map(|a| a.id),
            )
            .await?;
        if !moved {
            self.rt
                .store
                .set_conversation_team(conversation.id, conversation.team_id)
                .await?;
            return refuse(
                ErrorCode::Conflict,
                "the assignment changed meanwhile; try again",
            );
        }
        let handover = super::assign::Handover {
            team,
            by: me,
            note: assign.note.filter(|n| !n.trim().is_empty()),
        };
        super::assign::announce(&self.rt, &conversation, to.as_ref(), Some(handover)).await?;
        // A slot may have freed (the previous agent's), or the conversation is waiting again.
        super::assign::fill(&self.rt, conversation.site_id).await?;
        Ok(Vec::new())
    }

    /// An agent resolves, reopens or parks a conversation: the status is stored, then recorded
    /// as a `system` message (idempotent by its client id, like any send) that tells everyone.
    async fn set_conversation_status(
        &mut self,
        change: SetConversationStatus,
    ) -> Result<Vec<ServerFrame>, store::Error> {
        let refuse = |code: ErrorCode, message: &str, retry_after_ms: Option<u32>| {
            Ok(vec![ServerFrame::Error {
                code,
                message: message.to_string(),
                client_id: Some(change.client_id.clone()),
                conversation_id: Some(change.conversation_id),
                retry_after_ms,
            }])
        };
        let Identity::Agent { agent, .. } = &self.identity else {
            return refuse(ErrorCode::Forbidden, "only agents change a status", None);
        };
        let agent = agent.clone();
        if !change.client_id.is_valid() {
            return refuse(ErrorCode::BadRequest, BAD_CLIENT_ID, None);
        }
        let Some(conversation) = self.readable(change.conversation_id).await? else {
            return refuse(ErrorCode::NotFound, "no such conversation", None);
        };
        if let Err(wait) = self
            .rt
            .hub
            .take_message_token(Sender::Agent(agent.id), self.rt.limits.messages_per_minute)
        {
            return refuse(ErrorCode::RateLimited, "too many messages", Some(wait));
        }
        let now = crate::util::now_ms();
        if let Some(until) = change.until
            && (change.status != ConversationStatus::Pending
                || until <= now
                || until > now + MAX_SNOOZE_MS)
        {
            return refuse(
                ErrorCode::BadRequest,
                "until must be a time in the next 30 days, with pending",
                None,
            );
        }
        // Status first: a crash before the record leaves the status right, and the client's
        // resend (same client id) then stores the record.
        match change.until {
            Some(until) => {
                self.rt
                    .store
                    .snooze_conversation(conversation.id, until, now)
                    .await?
            }
            None => {
                self.rt
                    .store
                    .set_conversation_status(conversation.id, change.status, now)
                    .await?
            }
        };
        let status = StatusRecord {
            status: change.status,
            until: change.until,
        };
        let record = system_message(change.client_id, status, Some(agent.id));
        let appended = self
            .rt
            .store
            .append_message(conversation.id, record)
            .await?;
        let ack = publish(
            &self.rt,
            &conversation.facts(),
            appended,
            Some(agent.display_name.clone()),
        );
        // A resolved or parked conversation frees its agent's slot for the next in the queue.
        if change.status != ConversationStatus::Open {
            super::assign::fill(&self.rt, conversation.site_id).await?;
        }
        Ok(vec![ack])
    }

    /// Stores and publishes `conversation_created` for the agents of the site.
    async fn announce_conversation(
        &self,
        conversation: &store::Conversation,
    ) -> Result<(), store::Error> {
        let mut frame = ServerFrame::ConversationCreated {
            event_seq: 0,
            conversation_id: conversation.id,
            site_id: conversation.site_id,
            visitor_id: conversation.visitor_id,
            created_at: conversation.created_at,
        };
        // The stored payload's event_seq is a placeholder: the row id is the real one.
        let payload = serde_json::to_string(&frame).unwrap_or_default();
        let event = self
            .rt
            .store
            .append_event(NewEvent {
                site_id: conversation.site_id,
                kind: "conversation_created".into(),
                conversation_id: conversation.id,
                payload,
                created_at: conversation.created_at,
            })
            .await?;
        set_event_seq(&mut frame, event.id);
        self.rt.hub.to_site(conversation.site_id, frame);
        super::assign::fill(&self.rt, conversation.site_id).await
    }

    /// Typing, previews, reads, page views and status: checked, rate-limited, never stored.
    async fn ephemeral(&mut self, inbound: Inbound) -> Result<Option<ServerFrame>, store::Error> {
        let rate = f64::from(self.rt.limits.ephemeral_per_second);
        if let Err(wait) = self.ephemeral.take(rate, rate, Instant::now()) {
            // Dropped, and the client is told when it may send the next one.
            return Ok(Some(super::rate_limited(
                "too many typing, read or page frames",
                wait,
            )));
        }
        let max_text = 2048;
        match (&self.identity, inbound) {
            (_, Inbound::Typing(typing)) => {
                let Some(conversation) = self.whose(typing.conversation_id).await? else {
                    return Ok(Some(not_found(typing.conversation_id)));
                };
                let (author, agent_id, agent_name) = self.author();
                let frame = ServerFrame::Typing {
                    conversation_id: typing.conversation_id,
                    author,
                    agent_id,
                    agent_name,
                    typing: typing.typing,
                };
                match author {
                    Author::Visitor => self.rt.hub.to_site(conversation.site_id, frame),
                    _ => self.rt.hub.to_visitor(conversation.visitor_id, frame),
                }
            }
            (
                Identity::Visitor {
                    site, visitor_id, ..
                },
                Inbound::Preview(preview),
            ) => {
                // Only into the visitor's own conversation: another's would put words in front
                // of the agent as that conversation's draft.
                if let Some(id) = preview.conversation_id
                    && self.whose(id).await?.is_none()
                {
                    return Ok(Some(not_found(id)));
                }
                if super::settings::WidgetSettings::of(site).sneak_peek {
                    let text: String = truncate(&preview.text, max_text);
                    self.rt.hub.to_site(
                        site.id,
                        ServerFrame::Preview {
                            visitor_id: *visitor_id,
                            conversation_id: preview.conversation_id,
                            text,
                        },
                    );
                }
            }
            (_, Inbound::Read(read)) => {
                let Some(conversation) = self.whose(read.conversation_id).await? else {
                    return Ok(Some(not_found(read.conversation_id)));
                };
                let (author, agent_id, _) = self.author();
                self.rt.hub.to_site_and_visitor(
                    conversation.site_id,
                    conversation.visitor_id,
                    ServerFrame::Read {
                        conversation_id: read.conversation_id,
                        up_to_seq: read.up_to_seq,
                        author,
                        agent_id,
                    },
                );
            }
            (
                Identity::Visitor {
                    site, visitor_id, ..
                },
                Inbound::PageView(page),
            ) => {
                self.rt.hub.page_view(
                    site.id,
                    *visitor_id,
                    ServerFrame::PageView {
                        site_id: site.id,
                        visitor_id: *visitor_id,
                        url: truncate(&page.url, max_text),
                        title: page.title.map(|t| label(&t, 512)),
                        referrer: page.referrer.map(|r| truncate(&r, max_text)),
                        at: crate::util::now_ms(),
                    },
                );
            }
            (Identity::Agent { agent, site_ids }, Inbound::SetStatus(status)) => {
                self.rt.hub.set_agent_status(agent.id, status);
                if status == AgentStatus::Online {
                    super::assign::fill_sites(&self.rt, site_ids).await;
                }
            }
            _ => {
                return Ok(Some(error(
                    ErrorCode::BadRequest,
                    "not allowed for this role",
                )));
            }
        }
        Ok(None)
    }

    /// Conversation `id` as it is now, if this connection's user may read it.
    async fn readable(
        &self,
        id: ConversationId,
    ) -> Result<Option<store::Conversation>, store::Error> {
        let conversation = self.rt.store.conversation(id).await?;
        if let Some(conversation) = &conversation {
            self.rt.facts.learn(conversation.facts());
        }
        Ok(conversation.filter(|c| self.may_read(&c.facts())))
    }

    /// Whose conversation `id` is, if this connection's user may read it: what the node
    /// remembers, else read once. For what needs no more than that (a message, typing, a read
    /// mark), so those cost no read.
    async fn whose(
        &self,
        id: ConversationId,
    ) -> Result<Option<store::ConversationFacts>, store::Error> {
        let facts = match self.rt.facts.get(id) {
            Some(facts) => Some(facts),
            None => self.readable(id).await?.map(|c| c.facts()),
        };
        Ok(facts.filter(|f| self.may_read(f)))
    }

    /// Whether this connection's user uploaded the file, on one of their sites: only then may
    /// they send it.
    fn uploaded(&self, attachment: &store::Attachment) -> bool {
        match &self.identity {
            Identity::Visitor {
                site, visitor_id, ..
            } => attachment.visitor_id == Some(*visitor_id) && attachment.site_id == site.id,
            Identity::Agent { agent, site_ids } => {
                attachment.agent_id == Some(agent.id) && site_ids.contains(&attachment.site_id)
            }
        }
    }

    fn author(&self) -> (Author, Option<AgentId>, Option<String>) {
        match &self.identity {
            Identity::Visitor { .. } => (Author::Visitor, None, None),
            Identity::Agent { agent, .. } => (
                Author::Agent,
                Some(agent.id),
                Some(agent.display_name.clone()),
            ),
        }
    }

    /// Waits for live frames and returns them, gap-free for followed conversations.
    /// Cancel-safe: a cancelled call loses nothing (receivers keep unread frames).
    pub async fn next_events(&mut self) -> Result<Vec<ServerFrame>, store::Error> {
        if self.receivers.is_empty() {
            std::future::pending::<()>().await;
        }
        // A frame taken off a receiver is kept until it has been handled: the transports call
        // this inside a select that drops it when a client frame or a tick comes first, and a
        // frame dropped after `recv` and before its store reads finished would be lost.
        self.budget = ReplayBudget::full();
        if let Some(event) = self.unsettled.clone() {
            let frames = self.accept(event).await?;
            self.unsettled = None;
            return Ok(frames);
        }
        // A replay cut short goes on before anything new: its burst was written already.
        if self.events_behind || !self.behind.is_empty() {
            return self.continue_replay().await;
        }
        if self.lagged {
            let frames = self.catch_up().await?;
            self.lagged = false;
            return Ok(frames);
        }
        let received = {
            let futures = self.receivers.iter_mut().map(|rx| Box::pin(rx.recv()));
            tokio::select! {
                (received, ..) = futures_util::future::select_all(futures) => Some(received),
                // Cancel-safe, like `recv`: a resync noticed here is not lost if dropped.
                Ok(()) = self.resyncs.changed() => None,
            }
        };
        let Some(received) = received else {
            tracing::debug!("the bus was down; catching up from the store");
            self.lagged = true;
            let frames = self.catch_up().await?;
            self.lagged = false;
            return Ok(frames);
        };
        match received {
            Ok(event) => {
                self.unsettled = Some(event.clone());
                let frames = self.accept(event).await?;
                self.unsettled = None;
                Ok(frames)
            }
            Err(RecvError::Lagged(skipped)) => {
                tracing::debug!(skipped, "subscriber lagged; catching up from the store");
                self.rt.hub.record_lag();
                self.lagged = true;
                let frames = self.catch_up().await?;
                self.lagged = false;
                Ok(frames)
            }
            Err(RecvError::Closed) => {
                std::future::pending::<()>().await;
                Ok(Vec::new())
            }
        }
    }

    /// Everything followed conversations (and agent events) got while frames were skipped.
    async fn catch_up(&mut self) -> Result<Vec<ServerFrame>, store::Error> {
        let mut frames = self.replay_events().await?;
        let followed: Vec<ConversationId> = self.cursors.keys().copied().collect();
        for id in followed {
            self.fill(id, &mut frames).await?;
        }
        Ok(frames)
    }

    /// Decides what a live frame becomes for this client.
    async fn accept(&mut self, event: Event) -> Result<Vec<ServerFrame>, store::Error> {
        match &*event {
            ServerFrame::Error {
                code: ErrorCode::Banned,
                ..
            } => {
                self.banned = true;
                Ok(vec![(*event).clone()])
            }
            ServerFrame::Message(message) => {
                let id = message.conversation_id;
                match self.cursors.get(&id).copied() {
                    // Not followed: pass it on as a list update, no gap promise.
                    None => Ok(vec![(*event).clone()]),
                    Some(cursor) if message.seq <= cursor => Ok(Vec::new()),
                    Some(cursor) if message.seq == cursor + 1 => {
                        self.cursors.insert(id, message.seq);
                        Ok(vec![(*event).clone()])
                    }
                    Some(_) => {
                        // A gap: something committed earlier has not reached us yet; read it.
                        let mut frames = Vec::new();
                        self.fill(id, &mut frames).await?;
                        Ok(frames)
                    }
                }
            }
            frame if frame.is_event() => {
                if frame.event_seq().unwrap_or(0) <= self.event_cursor {
                    return Ok(Vec::new());
                }
                // Event seqs have gaps and concurrent events may be published out of order, so
                // the live frame only says "there is news": read it, in order, from the store.
                // Events are rare (new conversations, assignments), so the query is cheap.
                self.replay_events().await
            }
            // The hub knows agents, not hours: an agent coming online after closing time does
            // not offer chat.
            ServerFrame::Availability { online: true } => match &self.identity {
                Identity::Visitor { site, .. } => Ok(vec![ServerFrame::Availability {
                    online: super::chat_offered(&self.rt, site),
                }]),
                Identity::Agent { .. } => Ok(vec![(*event).clone()]),
            },
            _ => Ok(vec![(*event).clone()]),
        }
    }

    /// Releases interest in a conversation (HTTP polls rebuild sessions; WebSockets keep them).
    pub fn followed(&self) -> Vec<Cursor> {
        self.cursors
            .iter()
            .map(|(id, seq)| Cursor {
                conversation_id: *id,
                after_seq: *seq,
            })
            .collect()
    }
}

/// Puts the stored event's id into a durable event frame.
fn set_event_seq(frame: &mut ServerFrame, id: i64) {
    if let Some(event_seq) = frame.event_seq_mut() {
        *event_seq = id;
    }
}

fn not_found(conversation_id: ConversationId) -> ServerFrame {
    ServerFrame::Error {
        code: ErrorCode::NotFound,
        message: "no such conversation".into(),
        client_id: None,
        conversation_id: Some(conversation_id),
        retry_after_ms: None,
    }
}

/// Acks a stored message to its sender and sends it to everyone: the one way a stored message
/// reaches clients, webhooks and translation (sessions and the snooze waker).
///
/// A message stored before (a resend) is sent again too, but not to webhooks or translation:
/// when the link to the database broke after the commit and before its answer, the sender was
/// refused, nobody was told, and this resend is the first time it can be published. Sessions
/// following the conversation drop a seq they already have.
pub(super) fn publish(
    rt: &Arc<Realtime>,
    conversation: &store::ConversationFacts,
    appended: store::Appended,
    agent_name: Option<String>,
) -> ServerFrame {
    let message = appended.message;
    let ack = ServerFrame::Ack {
        client_id: message.client_id.clone(),
        conversation_id: message.conversation_id,
        seq: message.seq,
    };
    // Committed: now, and only now, tell everyone (and then translate).
    let stored = appended.created.then(|| message.clone());
    let frame = message.into_frame(agent_name);
    // A status change is recorded as a system message whose text is the new status.
    let event = match frame.author {
        Author::System if frame.body == ConversationStatus::Resolved.as_str() => {
            Some("conversation.resolved")
        }
        Author::System => None,
        _ => Some("message.created"),
    };
    if let Some(event) = event.filter(|_| appended.created) {
        rt.webhooks.emit(event, || {
            serde_json::json!({
                "event": event,
                "site_id": conversation.site_id,
                "visitor_id": conversation.visitor_id,
                "conversation_id": conversation.id,
                "message": &frame,
            })
        });
    }
    rt.hub.to_site_and_visitor(
        conversation.site_id,
        conversation.visitor_id,
        ServerFrame::Message(frame),
    );
    if let Some(stored) = stored {
        super::translation::after_message(rt.clone(), conversation.id, stored);
    }
    ack
}

/// How far ahead a conversation can be snoozed: a month, beyond which "snoozed" means "lost".
const MAX_SNOOZE_MS: i64 = 30 * 24 * 3_600_000;

/// The `system` message that records a conversation's new status.
pub(super) fn system_message(
    client_id: ClientId,
    record: StatusRecord,
    agent_id: Option<AgentId>,
) -> NewMessage {
    NewMessage {
        client_id,
        author: Author::System,
        agent_id,
        body: record.body(),
        attachment: None,
        created_at: crate::util::now_ms(),
    }
}

/// One cursor per conversation, the lowest where one is named twice, in the order first named:
/// a repeated cursor would otherwise replay the same gap again, a way to make one small request
/// cost a large answer.
fn lowest_cursors(cursors: &[Cursor]) -> Vec<Cursor> {
    let mut lowest: Vec<Cursor> = Vec::with_capacity(cursors.len());
    let mut index: HashMap<ConversationId, usize> = HashMap::with_capacity(cursors.len());
    for cursor in cursors {
        match index.get(&cursor.conversation_id) {
            Some(&at) => lowest[at].after_seq = lowest[at].after_seq.min(cursor.after_seq),
            None => {
                index.insert(cursor.conversation_id, lowest.len());
                lowest.push(*cursor);
            }
        }
    }
    lowest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_cursor_counts_once_at_its_lowest() {
        let cursor = |conversation, after_seq| Cursor {
            conversation_id: ConversationId(conversation),
            after_seq,
        };
        assert_eq!(
            lowest_cursors(&[cursor(5, 3), cursor(7, 0), cursor(5, 1), cursor(5, 9)]),
            vec![cursor(5, 1), cursor(7, 0)]
        );
    }
}
