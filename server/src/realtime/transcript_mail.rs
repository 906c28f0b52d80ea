//! The text of an e-mailed transcript, in the visitor's language (their browser's, as the
//! widget said it; English when it never did): one line per message, `[time UTC] who: text`,
//! files by name, status changes as notes, earlier copies sent left out. What the visitor and
//! the agents wrote stays as they wrote it; everything around it is translated here.
//!
//! It does not decide whether a transcript may go out ([`super::transcripts`] and the
//! endpoint do), nor send it.

use app::i18n::Lang;
use protocol::{AgentId, Author, ConversationStatus, StatusRecord};
use std::collections::BTreeMap;

/// Something a transcript says around the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Words {
    /// Who the visitor is in their own transcript.
    You,
    /// An agent whose name is unknown (their account was removed).
    Support,
    /// A status change back to open.
    Reopened,
    /// A status change to pending.
    Pending,
    /// A status change to resolved.
    Resolved,
    /// Before an attachment's name.
    File,
}

fn say(lang: Lang, words: Words) -> &'static str {
    use Words::*;
    match (lang, words) {
        (Lang::En, You) => "You",
        (Lang::Zh, You) => "您",
        (Lang::En, Support) => "Support",
        (Lang::Zh, Support) => "客服",
        (Lang::En, Reopened) => "conversation reopened",
        (Lang::Zh, Reopened) => "对话已重新打开",
        (Lang::En, Pending) => "conversation pending",
        (Lang::Zh, Pending) => "对话已设为待处理",
        (Lang::En, Resolved) => "conversation resolved",
        (Lang::Zh, Resolved) => "对话已解决",
        (Lang::En, File) => "file",
        (Lang::Zh, File) => "文件",
    }
}

/// The subject and first line: whom the conversation was with.
pub fn heading(lang: Lang, site: &str) -> String {
    match lang {
        Lang::En => format!("Your conversation with {site}"),
        Lang::Zh => format!("您与 {site} 的对话"),
    }
}

/// The transcript of `messages` (oldest first) with `site`, in `lang`; `agents` names the
/// agents who wrote or changed something.
pub fn text(
    lang: Lang,
    site: &str,
    messages: &[store::Message],
    agents: &BTreeMap<AgentId, String>,
) -> String {
    let mut text = format!("{}\n\n", heading(lang, site));
    for message in messages {
        if message.author == Author::System && protocol::transcript_sent_to(&message.body).is_some()
        {
            continue;
        }
        let name = match (message.author, message.agent_id) {
            (Author::Visitor, _) => say(lang, Words::You),
            (_, Some(id)) => agents
                .get(&id)
                .map_or(say(lang, Words::Support), String::as_str),
            (_, None) => say(lang, Words::Support),
        };
        let at = jiff::Timestamp::from_millisecond(message.created_at)
            .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let line = match (message.author, message.agent_id) {
            (Author::System, agent) => {
                // A snooze reads as "pending" (its time is the agents' business).
                let event = match StatusRecord::parse(&message.body).map(|r| r.status) {
                    Some(ConversationStatus::Open) => say(lang, Words::Reopened),
                    Some(ConversationStatus::Pending) => say(lang, Words::Pending),
                    Some(ConversationStatus::Resolved) => say(lang, Words::Resolved),
                    None => message.body.as_str(),
                };
                match agent {
                    Some(_) => format!("[{at} UTC] — {name}: {event}"),
                    None => format!("[{at} UTC] — {event}"),
                }
            }
            _ => match &message.attachment {
                Some(file) => format!(
                    "[{at} UTC] {name}: {} [{}: {}]",
                    message.body,
                    say(lang, Words::File),
                    file.name
                ),
                None => format!("[{at} UTC] {name}: {}", message.body),
            },
        };
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{ConversationId, MessageId};

    fn message(author: Author, agent_id: Option<AgentId>, body: &str) -> store::Message {
        store::Message {
            id: MessageId(0),
            conversation_id: ConversationId(1),
            seq: 1,
            client_id: protocol::ClientId("c".into()),
            author,
            agent_id,
            body: body.into(),
            attachment: None,
            created_at: 1_700_000_000_000,
        }
    }

    /// A conversation through every status, with a file and an agent who left.
    fn conversation() -> Vec<store::Message> {
        let mut file = message(Author::Visitor, None, "看这张图");
        file.attachment = Some(protocol::Attachment {
            id: "f".into(),
            name: "order.png".into(),
            content_type: "image/png".into(),
            size: 3,
        });
        vec![
            message(Author::Visitor, None, "我想退款"),
            message(Author::Agent, Some(AgentId(7)), "好的"),
            file,
            message(Author::System, Some(AgentId(7)), "pending"),
            message(Author::System, Some(AgentId(8)), "open"),
            message(Author::System, None, "resolved"),
            message(Author::System, None, "transcript_sent:mei@example.com"),
        ]
    }

    #[test]
    fn a_chinese_transcript_has_no_english_around_the_messages() {
        let agents = BTreeMap::from([(AgentId(7), "梅".to_string())]);
        let text = text(Lang::Zh, "商店", &conversation(), &agents);
        assert_eq!(
            text,
            "您与 商店 的对话\n\n\
             [2023-11-14 22:13 UTC] 您: 我想退款\n\
             [2023-11-14 22:13 UTC] 梅: 好的\n\
             [2023-11-14 22:13 UTC] 您: 看这张图 [文件: order.png]\n\
             [2023-11-14 22:13 UTC] — 梅: 对话已设为待处理\n\
             [2023-11-14 22:13 UTC] — 客服: 对话已重新打开\n\
             [2023-11-14 22:13 UTC] — 对话已解决\n"
        );
        // Apart from the time zone and the file's own name, no Latin letter is ours.
        let ours = text.replace("UTC", "").replace("order.png", "");
        assert!(
            !ours.chars().any(|c| c.is_ascii_alphabetic()),
            "English in a Chinese transcript: {text}"
        );
    }

    #[test]
    fn an_english_transcript_names_each_status_change() {
        let text = text(Lang::En, "shop", &conversation(), &BTreeMap::new());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Your conversation with shop");
        assert!(lines[4].ends_with("[file: order.png]"), "{text}");
        assert!(
            lines[5].ends_with("— Support: conversation pending"),
            "{text}"
        );
        assert!(
            lines[6].ends_with("— Support: conversation reopened"),
            "{text}"
        );
        assert!(lines[7].ends_with("UTC] — conversation resolved"), "{text}");
        assert_eq!(lines.len(), 8, "{text}");
    }
}
