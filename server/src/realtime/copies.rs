//! Copies of the rows every visitor hello reads — the site by its key, the site's active bans,
//! what a hello needs of the returning visitor — kept by the node, so a reconnect storm or an
//! idle poll costs no database read for them.
//!
//! A copy is good while [`Hub::staleness`](super::hub::Hub::staleness) has not changed (a site
//! or a ban written in the console, on any node; a bus outage, which may have hidden such news)
//! and for at most [`MAX_AGE`], for writes that do not go through a node (the command line).
//! A site key that names no site is never remembered: a site made a moment ago is found. A
//! visitor's language is the one row field a hello writes; the copy takes what this node
//! writes, and another node's write shows here within [`MAX_AGE`] at the latest.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protocol::{SiteId, VisitorId};
use store::{Ban, Site, Store, UnixMillis};
use tokio::sync::watch;

use crate::util::Pruned;

/// The longest a copy is used without reading the row again.
const MAX_AGE: Duration = Duration::from_secs(60);

/// Below this many copies of a kind the map is never pruned of expired ones (a visitor's copy
/// is about 100 bytes).
const PRUNE_FROM: usize = 1_024;

/// A copy, and when it was taken.
struct Copy<T> {
    /// The staleness it was read under.
    staleness: u64,
    /// When it was read.
    read: Instant,
    value: T,
}

/// What a hello needs of a returning visitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloVisitor {
    /// The site the visitor belongs to.
    pub site_id: SiteId,
    /// When the visitor was first seen.
    pub created_at: UnixMillis,
    /// The language their browser last said.
    pub language: Option<String>,
}

/// A site's bans as copied, looked at from one moment: those expired by then are skipped.
pub struct ActiveBans {
    /// The site's bans active when the copy was read.
    bans: Arc<Vec<Ban>>,
    /// The moment they are looked at from.
    now: UnixMillis,
}

impl ActiveBans {
    /// The bans still in force.
    pub fn iter(&self) -> impl Iterator<Item = &Ban> {
        self.bans
            .iter()
            .filter(|ban| ban.expires_at.is_none_or(|at| at > self.now))
    }
}

/// The node's copies of sites, bans and visitors.
pub struct Copies {
    /// Changes when every copy may be stale.
    staleness: watch::Receiver<u64>,
    /// Sites, by public key.
    sites: Mutex<Pruned<String, Copy<Arc<Site>>>>,
    /// Each site's bans, as active when read (expired ones are dropped when used).
    bans: Mutex<Pruned<SiteId, Copy<Arc<Vec<Ban>>>>>,
    /// Returning visitors.
    visitors: Mutex<Pruned<VisitorId, Copy<HelloVisitor>>>,
}

impl Copies {
    /// Copies good while `staleness` does not change.
    pub fn new(staleness: watch::Receiver<u64>) -> Copies {
        Copies {
            staleness,
            sites: Mutex::new(Pruned::new(PRUNE_FROM)),
            bans: Mutex::new(Pruned::new(PRUNE_FROM)),
            visitors: Mutex::new(Pruned::new(PRUNE_FROM)),
        }
    }

    /// The site with public key `key`.
    pub async fn site_by_key(
        &self,
        store: &dyn Store,
        key: &str,
    ) -> Result<Option<Arc<Site>>, store::Error> {
        if let Some(site) = self.good(&self.sites, key) {
            return Ok(Some(site));
        }
        // Read before the store: a write after this makes the new copy stale at once.
        let staleness = *self.staleness.borrow();
        let Some(site) = store.site_by_key(key).await? else {
            return Ok(None);
        };
        let site = Arc::new(site);
        keep(&self.sites, key.to_owned(), staleness, site.clone());
        Ok(Some(site))
    }

    /// The bans of site `site_id` active at `now` (the copy itself, not a copy of it: a hello
    /// on a site with many bans clones none of them).
    pub async fn active_bans(
        &self,
        store: &dyn Store,
        site_id: SiteId,
        now: UnixMillis,
    ) -> Result<ActiveBans, store::Error> {
        let bans = match self.good(&self.bans, &site_id) {
            Some(bans) => bans,
            None => {
                let staleness = *self.staleness.borrow();
                let bans = Arc::new(store.active_bans(site_id, now).await?);
                keep(&self.bans, site_id, staleness, bans.clone());
                bans
            }
        };
        Ok(ActiveBans { bans, now })
    }

    /// What a hello needs of visitor `id`, if there is one.
    pub async fn visitor(
        &self,
        store: &dyn Store,
        id: VisitorId,
    ) -> Result<Option<HelloVisitor>, store::Error> {
        if let Some(visitor) = self.good(&self.visitors, &id) {
            return Ok(Some(visitor));
        }
        let staleness = *self.staleness.borrow();
        let Some(visitor) = store.visitor(id).await? else {
            return Ok(None);
        };
        let visitor = HelloVisitor {
            site_id: visitor.site_id,
            created_at: visitor.created_at,
            language: visitor.language,
        };
        keep(&self.visitors, id, staleness, visitor.clone());
        Ok(Some(visitor))
    }

    /// This node wrote visitor `id`'s language (or made the visitor): the copy takes it.
    pub fn visitor_written(&self, id: VisitorId, visitor: HelloVisitor) {
        keep(&self.visitors, id, *self.staleness.borrow(), visitor);
    }

    /// The copy under `key`, while it is good.
    fn good<K, Q, T>(&self, copies: &Mutex<Pruned<K, Copy<T>>>, key: &Q) -> Option<T>
    where
        K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
        Q: std::hash::Hash + Eq + ?Sized,
        T: Clone,
    {
        let staleness = *self.staleness.borrow();
        crate::util::lock(copies)
            .get(key)
            .filter(|copy| copy.good(staleness, Instant::now()))
            .map(|copy| copy.value.clone())
    }
}

impl<T> Copy<T> {
    /// Whether the copy may still be used.
    fn good(&self, staleness: u64, now: Instant) -> bool {
        self.staleness == staleness && now.saturating_duration_since(self.read) < MAX_AGE
    }
}

/// Keeps `value` under `key`, read under `staleness`; copies no longer good are dropped as
/// the map grows, so a visitor who left is forgotten within a minute or so of traffic.
fn keep<K: std::hash::Hash + Eq, T>(
    copies: &Mutex<Pruned<K, Copy<T>>>,
    key: K,
    staleness: u64,
    value: T,
) {
    let now = Instant::now();
    let mut copies = crate::util::lock(copies);
    copies.prune(|copy| copy.good(staleness, now));
    copies.insert(
        key,
        Copy {
            staleness,
            read: now,
            value,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn copies_hold_until_made_stale_and_expired_bans_drop_out() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("k.db").display());
        let url = store::DatabaseUrl::parse(&url).expect("url");
        let store = store::connect(&url).await.expect("store");
        let (stale, staleness) = watch::channel(0);
        let copies = Copies::new(staleness);
        assert!(
            copies
                .site_by_key(store.as_ref(), "shop")
                .await
                .expect("read")
                .is_none()
        );
        let site = store
            .create_site(store::NewSite {
                public_key: "shop".into(),
                name: "shop".into(),
                allowed_origins: vec![],
                widget_settings: serde_json::json!({}),
                created_at: 1,
            })
            .await
            .expect("site");
        // Not found before, found now: a missing key is not remembered.
        let found = copies
            .site_by_key(store.as_ref(), "shop")
            .await
            .expect("read");
        assert_eq!(found.as_deref().map(|s| s.id), Some(site.id));
        let bans = copies
            .active_bans(store.as_ref(), site.id, 10)
            .await
            .expect("bans");
        assert_eq!(bans.iter().count(), 0);
        let ban = |expires_at| store::NewBan {
            site_id: site.id,
            visitor_id: None,
            ip_cidr: Some("203.0.113.0/24".into()),
            reason: "abuse".into(),
            expires_at,
            created_at: 10,
        };
        store.create_ban(ban(Some(1_000))).await.expect("ban");
        store.create_ban(ban(None)).await.expect("ban");
        // Written behind the copy's back: the copy still answers.
        let held = copies.active_bans(store.as_ref(), site.id, 20).await;
        assert_eq!(held.expect("bans").iter().count(), 0);
        stale.send_modify(|n| *n += 1);
        let read = copies.active_bans(store.as_ref(), site.id, 20).await;
        assert_eq!(read.expect("bans").iter().count(), 2);
        // The one that expires drops out of the copy when its time comes.
        let later = copies.active_bans(store.as_ref(), site.id, 2_000).await;
        assert_eq!(later.expect("bans").iter().count(), 1);

        // A visitor: read once, then the copy, which takes this node's own writes.
        let visitor = store
            .upsert_visitor(site.id, "v", 5)
            .await
            .expect("visitor");
        let seen = copies
            .visitor(store.as_ref(), visitor.id)
            .await
            .expect("read");
        assert_eq!(
            seen.as_ref().map(|v| (v.site_id, v.created_at)),
            Some((site.id, 5))
        );
        store
            .set_visitor_language(visitor.id, "zh-CN")
            .await
            .expect("language");
        let held = copies
            .visitor(store.as_ref(), visitor.id)
            .await
            .expect("read");
        assert_eq!(held.and_then(|v| v.language), None, "the copy, not the row");
        copies.visitor_written(
            visitor.id,
            HelloVisitor {
                site_id: site.id,
                created_at: 5,
                language: Some("zh-CN".into()),
            },
        );
        let written = copies
            .visitor(store.as_ref(), visitor.id)
            .await
            .expect("read");
        assert_eq!(written.and_then(|v| v.language).as_deref(), Some("zh-CN"));
        store.close().await;
    }
}
