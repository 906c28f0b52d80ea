//! The canned replies an agent may use: the canned-replies page lists them, the composer
//! completes `/shortcut` from them.

use crate::error::ConsoleError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// One canned reply as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CannedItem {
    /// To delete it.
    pub id: protocol::CannedReplyId,
    /// The site's id: a conversation offers only its own site's replies.
    pub site_id: protocol::SiteId,
    /// The site's name: agents of several sites see whose reply it is.
    pub site: String,
    /// What follows the `/`.
    pub shortcut: String,
    /// The text inserted.
    pub body: String,
    /// The agent's own (not shared with the site's other agents).
    pub personal: bool,
}

/// The canned replies the signed-in agent may use: their sites' shared ones and their own.
#[server(endpoint = "canned_replies")]
pub async fn canned_replies() -> Result<Vec<CannedItem>, ConsoleError> {
    use crate::context;
    let agent = context::require_agent().await?;
    let store = context::store()?;
    let site_ids = store.agent_sites(agent.id).await?;
    let replies = store.canned_replies(&site_ids, agent.id).await?;
    let mut names = std::collections::HashMap::new();
    let mut items = Vec::with_capacity(replies.len());
    for reply in replies {
        if let std::collections::hash_map::Entry::Vacant(entry) = names.entry(reply.site_id) {
            let site = store.site(reply.site_id).await?;
            entry.insert(site.map(|s| s.name).unwrap_or_default());
        }
        items.push(CannedItem {
            id: reply.id,
            site_id: reply.site_id,
            site: names.get(&reply.site_id).cloned().unwrap_or_default(),
            shortcut: reply.shortcut,
            body: reply.body,
            personal: reply.agent_id.is_some(),
        });
    }
    Ok(items)
}
