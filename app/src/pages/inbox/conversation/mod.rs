//! One conversation on the desk: its transcript (paged backwards on demand), what the visitor
//! is typing, the composer, and the actions an agent takes on it (pick up, resolve, reopen).
//!
//! Everything shown comes from the live desk; actions go out as frames, and their effects come
//! back as frames like everyone else's, so two agents' screens never disagree.
//!
//! Four parts, each its own module: the header and its actions (`header`, with the "more"
//! menu in `menu` and the hand-over in `transfer`), the transcript (`transcript`), the
//! visitor's side panel (`panel`) and the composer (`composer`).

mod composer;
mod header;
mod menu;
mod panel;
mod transcript;
mod transfer;

use crate::api::inbox::{Colleague, TeamChoice};
use crate::i18n::Lang;
use crate::live::Live;
use leptos::prelude::*;
use protocol::{AgentFrame, AgentId, ConversationId, ConversationStatus, SiteId};

use composer::Composer;
use header::ConversationHead;
use panel::VisitorPanel;
use transcript::Transcript;

/// What the conversation's header shows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    visitor: String,
    status: ConversationStatus,
    snoozed_until: Option<i64>,
    assignee: Option<AgentId>,
    site: SiteId,
    tags: Vec<String>,
    translating: bool,
}

/// The conversation `id` as `me` sees it.
#[component]
pub fn ConversationView(
    live: Live,
    id: ConversationId,
    me: AgentId,
    lang: Lang,
    colleagues: StoredValue<Vec<Colleague>>,
    teams: StoredValue<Vec<TeamChoice>>,
    translating_sites: StoredValue<Vec<SiteId>>,
    /// On a phone, whether the visitor's profile shows instead of the transcript.
    profile: RwSignal<bool>,
) -> impl IntoView {
    let name_of = Callback::new(move |agent: AgentId| {
        colleagues
            .with_value(|all| all.iter().find(|c| c.id == agent).map(|c| c.name.clone()))
            .unwrap_or_else(|| format!("#{}", agent.0))
    });
    let head = Memo::new(move |_| {
        live.desk.with(|d| {
            d.threads.get(&id).map(|t| Head {
                visitor: t.visitor_label(),
                status: t.status,
                snoozed_until: t.snoozed_until,
                assignee: t.assignee,
                site: t.site_id,
                tags: t.tags.clone(),
                translating: t.translating,
            })
        })
    });
    let site_translates = Signal::derive(move || {
        let site = live
            .desk
            .with_untracked(|d| d.threads.get(&id).map(|t| t.site_id));
        site.is_some_and(|site| translating_sites.with_value(|sites| sites.contains(&site)))
    });
    let emoji_open = RwSignal::new(false);

    // The agent is looking at it: report what they have seen whenever more arrives.
    Effect::new(move |_| {
        let cursor = live.desk.with(|d| d.threads.get(&id).map(|t| t.cursor));
        if cursor.is_some()
            && let Some(up_to_seq) = live
                .desk
                .try_maybe_update(|d| {
                    let seen = d.mark_read(id);
                    (seen.is_some(), seen)
                })
                .flatten()
        {
            live.send(AgentFrame::Read(protocol::Read {
                conversation_id: id,
                up_to_seq,
            }));
        }
    });

    view! {
        <ConversationHead live id me lang head colleagues teams site_translates profile emoji_open name_of />
        <Transcript live id lang name_of />
        <VisitorPanel live id lang />
        <Composer live id lang head site_translates emoji_open />
    }
}
