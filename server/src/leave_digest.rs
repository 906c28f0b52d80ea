//! Agents hear of new leave-messages by e-mail (`email.notify_leave_messages`) without a mail
//! per message: the first after a quiet spell goes out at once, and what arrives within the
//! next `email.notify_digest_ms` (five minutes by default) is sent as one digest per agent
//! when that window ends. A burst of 500 leave-messages is two mails per agent, not 500.
//!
//! One task per node does the sending, off the visitor's request; it ends with the server,
//! sending what is still pending first ([`LeaveDigest::finish`]). What it holds is bounded:
//! a count per site and at most [`LISTED`] messages of each. It does not decide whether agents
//! are notified at all; the leave-message endpoint asks only when the setting is on.

use crate::mail::Mailer;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// A digest lists at most this many messages of each site; the rest are counted.
pub const LISTED: usize = 50;
/// Longest excerpt of a message in a digest, in characters.
const EXCERPT_CHARS: usize = 300;
/// The longest the server waits at shutdown for the last digests to go out.
const FINISH_WITHIN: Duration = Duration::from_secs(10);

/// The sender of leave-message notifications. Owned by the real-time context.
pub struct LeaveDigest {
    /// What the task and the requests share.
    shared: Arc<Shared>,
    /// Set at shutdown: the task sends what is pending and ends.
    closing: watch::Sender<bool>,
    /// The task, awaited by [`LeaveDigest::finish`].
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

struct Shared {
    /// Where each site's agents are read at sending time (so a new agent hears too).
    store: Arc<dyn store::Store>,
    /// How long after one mail the next may go out.
    window: Duration,
    /// What waits to be sent. Never held across an await.
    pending: Mutex<Pending>,
    /// Woken by each new leave-message.
    wake: Notify,
}

#[derive(Default)]
struct Pending {
    /// The relay in force at the newest notice (an admin may change it meanwhile).
    mailer: Option<Mailer>,
    /// New leave-messages by site.
    sites: BTreeMap<store::SiteId, SiteNews>,
}

/// One site's leave-messages since the last mail.
#[derive(Default)]
struct SiteNews {
    /// The site's name, for the subject and the lines.
    name: String,
    /// How many arrived (may exceed what is listed).
    count: usize,
    /// The first [`LISTED`] of them.
    listed: Vec<Notice>,
}

/// One leave-message as a mail shows it.
struct Notice {
    /// `Name <contact>`, or the contact.
    from: String,
    /// The message, cut to [`EXCERPT_CHARS`].
    text: String,
}

impl LeaveDigest {
    /// Starts this node's sender; mails go out at most once per `window` per agent.
    pub fn start(store: Arc<dyn store::Store>, window: Duration) -> LeaveDigest {
        let shared = Arc::new(Shared {
            store,
            window,
            pending: Mutex::default(),
            wake: Notify::new(),
        });
        let (closing, closed) = watch::channel(false);
        let task = tokio::spawn(run(shared.clone(), closed));
        LeaveDigest {
            shared,
            closing,
            task: Mutex::new(Some(task)),
        }
    }

    /// Queues `message` of the site `site_name` for its agents, to be sent with `mailer`.
    pub fn notify(&self, mailer: Mailer, site_name: &str, message: &store::LeaveMessage) {
        let from = match &message.name {
            Some(name) => format!("{name} <{}>", message.contact),
            None => message.contact.clone(),
        };
        let text: String = message.body.chars().take(EXCERPT_CHARS).collect();
        {
            let mut pending = self.shared.lock();
            pending.mailer = Some(mailer);
            let news = pending.sites.entry(message.site_id).or_default();
            news.name = site_name.to_string();
            news.count += 1;
            if news.listed.len() < LISTED {
                news.listed.push(Notice { from, text });
            }
        }
        self.shared.wake.notify_one();
    }

    /// Sends what is pending and ends the task (at shutdown, once no request can add more).
    pub async fn finish(&self) {
        self.closing.send_replace(true);
        let task = crate::util::lock(&self.task).take();
        if let Some(task) = task
            && tokio::time::timeout(FINISH_WITHIN, task).await.is_err()
        {
            tracing::warn!("leave-message notifications still sending at exit; not waiting");
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        crate::util::lock(&self.pending)
    }
}

/// The task: waits for news, sends at once after a quiet window, else when the window ends.
async fn run(shared: Arc<Shared>, mut closed: watch::Receiver<bool>) {
    let mut last_sent: Option<Instant> = None;
    loop {
        tokio::select! {
            () = shared.wake.notified() => {}
            _ = closed.wait_for(|closed| *closed) => break,
        }
        if let Some(last) = last_sent {
            tokio::select! {
                () = tokio::time::sleep_until(last + shared.window) => {}
                _ = closed.wait_for(|closed| *closed) => break,
            }
        }
        if send(&shared).await {
            last_sent = Some(Instant::now());
        }
    }
    send(&shared).await;
}

/// Mails every agent of the sites with news one mail about all of them; `false` when there was
/// nothing to send.
async fn send(shared: &Shared) -> bool {
    let (mailer, sites) = {
        let mut pending = shared.lock();
        (pending.mailer.clone(), std::mem::take(&mut pending.sites))
    };
    let Some(mailer) = mailer.filter(|_| !sites.is_empty()) else {
        return false;
    };
    // Each agent's sites with news, so an agent of several sites gets one mail.
    let mut agents: BTreeMap<store::AgentId, (store::Agent, Vec<&SiteNews>)> = BTreeMap::new();
    for (site_id, news) in &sites {
        match shared.store.site_agents(&[*site_id]).await {
            Ok(found) => {
                for agent in found {
                    agents
                        .entry(agent.id)
                        .or_insert_with(|| (agent, Vec::new()))
                        .1
                        .push(news);
                }
            }
            Err(error) => {
                tracing::warn!(%error, site = %site_id, "leave-message notification: reading the agents failed");
            }
        }
    }
    for (agent, news) in agents.values() {
        let (subject, body) = compose(&news[..], Lang::of(&agent.language));
        if let Err(error) = mailer.send(&agent.email, &subject, body).await {
            tracing::warn!(%error, agent = %agent.id, "leave-message notification not sent");
        }
    }
    true
}

/// The language of a notification: the agent's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    En,
    Zh,
}

impl Lang {
    /// `zh`, `zh-CN`… are Chinese; everything else English.
    fn of(tag: &str) -> Lang {
        if tag.to_ascii_lowercase().starts_with("zh") {
            Lang::Zh
        } else {
            Lang::En
        }
    }
}

/// The subject and body of one agent's mail about `news` (at least one leave-message).
fn compose(news: &[&SiteNews], lang: Lang) -> (String, String) {
    use std::fmt::Write;
    let total: usize = news.iter().map(|n| n.count).sum();
    if let ([site], 1) = (news, total)
        && let Some(notice) = site.listed.first()
    {
        let (name, from, text) = (&site.name, &notice.from, &notice.text);
        return match lang {
            Lang::En => (
                format!("New leave-message on {name}"),
                format!(
                    "{from} left a message on {name}:\n\n{text}\n\nAnswer it under Leave-messages in the Kefu console.\n"
                ),
            ),
            Lang::Zh => (
                format!("{name} 有一条新留言"),
                format!("{from} 在 {name} 留言：\n\n{text}\n\n请在 Kefu 控制台的“留言”中回复。\n"),
            ),
        };
    }
    let subject = match (lang, news) {
        (Lang::En, [site]) => format!("{total} new leave-messages on {}", site.name),
        (Lang::En, _) => format!("{total} new leave-messages"),
        (Lang::Zh, [site]) => format!("{} 有 {total} 条新留言", site.name),
        (Lang::Zh, _) => format!("{total} 条新留言"),
    };
    let mut body = String::new();
    for site in news {
        let _ = match lang {
            Lang::En => writeln!(body, "{} new on {}:\n", site.count, site.name),
            Lang::Zh => writeln!(body, "{} 的 {} 条新留言：\n", site.name, site.count),
        };
        for notice in &site.listed {
            let first_line = notice.text.lines().next().unwrap_or_default();
            let _ = writeln!(body, "- {}: {first_line}", notice.from);
        }
        let more = site.count - site.listed.len();
        if more > 0 {
            let _ = match lang {
                Lang::En => writeln!(body, "- … and {more} more"),
                Lang::Zh => writeln!(body, "- ……另有 {more} 条"),
            };
        }
        body.push('\n');
    }
    body.push_str(match lang {
        Lang::En => "Answer them under Leave-messages in the Kefu console.\n",
        Lang::Zh => "请在 Kefu 控制台的“留言”中回复。\n",
    });
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn news(name: &str, count: usize) -> SiteNews {
        SiteNews {
            name: name.into(),
            count,
            listed: (0..count.min(LISTED))
                .map(|n| Notice {
                    from: format!("v{n}@example.com"),
                    text: format!("message {n}\nsecond line"),
                })
                .collect(),
        }
    }

    #[test]
    fn one_message_is_told_whole() {
        let shop = news("shop", 1);
        let (subject, body) = compose(&[&shop], Lang::En);
        assert_eq!(subject, "New leave-message on shop");
        assert!(body.contains("v0@example.com left a message on shop:\n\nmessage 0\nsecond line"));
        let (subject, _) = compose(&[&shop], Lang::Zh);
        assert_eq!(subject, "shop 有一条新留言");
    }

    #[test]
    fn many_are_listed_then_counted() {
        let (shop, blog) = (news("shop", 120), news("blog", 2));
        let (subject, body) = compose(&[&shop], Lang::En);
        assert_eq!(subject, "120 new leave-messages on shop");
        assert_eq!(body.matches("- v").count(), LISTED, "{body}");
        assert!(body.contains("- … and 70 more"), "{body}");
        let (subject, body) = compose(&[&shop, &blog], Lang::Zh);
        assert_eq!(subject, "122 条新留言");
        assert!(body.contains("blog 的 2 条新留言"), "{body}");
    }
}
