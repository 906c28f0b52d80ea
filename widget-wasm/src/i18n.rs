//! The widget's words in English and Simplified Chinese, picked from `data-lang` or the browser's
//! language. Every string a visitor reads comes from here.

/// A language the widget speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    /// `zh`, `zh-CN`, `zh-Hans`… are Chinese; everything else is English.
    pub fn pick(tag: &str) -> Lang {
        if tag.to_ascii_lowercase().starts_with("zh") {
            Lang::Zh
        } else {
            Lang::En
        }
    }
}

/// Something the widget says.
#[derive(Debug, Clone, Copy)]
pub enum Text {
    Title,
    Greeting,
    Placeholder,
    Send,
    Close,
    Emoji,
    Offline,
    Name,
    Contact,
    Message,
    LeaveMessage,
    Thanks,
    Typing,
    Queued,
    NotSent,
    TooLong,
    Unavailable,
    Reconnecting,
    Agent,
    Failed,
    /// A per-address budget is spent (HTTP 429): come back later.
    TooMany,
    /// A file chosen before the first message: files go into a conversation.
    FileNeedsChat,
    ContactRequired,
    Email,
    StartChat,
    Prechat,
    Attach,
    FileRefused,
    RateTitle,
    Comment,
    Rated,
    NewChat,
    Transcript,
    /// The rating's copy was refused: no agent has replied yet.
    CopyNoReply,
    /// The rating's copy was refused: one was sent recently, or too many today.
    CopyLater,
    /// The toggle under a translated message, while the translation is shown.
    ShowOriginal,
    /// The same toggle while the original is shown.
    ShowTranslation,
}

/// `text` in `lang`.
pub fn t(lang: Lang, text: Text) -> &'static str {
    use Text::*;
    match (lang, text) {
        (Lang::En, Title) => "Chat with us",
        (Lang::Zh, Title) => "在线客服",
        (Lang::En, Greeting) => "Hi! How can we help you today?",
        (Lang::Zh, Greeting) => "您好！有什么可以帮您？",
        (Lang::En, Placeholder) => "Type a message…",
        (Lang::Zh, Placeholder) => "输入消息…",
        (Lang::En, Send) => "Send",
        (Lang::Zh, Send) => "发送",
        (Lang::En, Close) => "Close",
        (Lang::Zh, Close) => "关闭",
        (Lang::En, Emoji) => "Emoji",
        (Lang::Zh, Emoji) => "表情",
        (Lang::En, Offline) => "We're away. Leave a message and we'll reply soon.",
        (Lang::Zh, Offline) => "客服暂时不在，请留言，我们会尽快回复您。",
        (Lang::En, Name) => "Name",
        (Lang::Zh, Name) => "姓名",
        (Lang::En, Contact) => "E-mail or phone",
        (Lang::Zh, Contact) => "邮箱或电话",
        (Lang::En, Message) => "Message",
        (Lang::Zh, Message) => "留言内容",
        (Lang::En, LeaveMessage) => "Leave a message",
        (Lang::Zh, LeaveMessage) => "提交留言",
        (Lang::En, Thanks) => "Thanks! We'll reply soon.",
        (Lang::Zh, Thanks) => "感谢留言，我们会尽快回复您。",
        (Lang::En, Typing) => "is typing…",
        (Lang::Zh, Typing) => "正在输入…",
        (Lang::En, Queued) => "in the queue…",
        (Lang::Zh, Queued) => "排队中…",
        (Lang::En, NotSent) => "Not sent",
        (Lang::Zh, NotSent) => "发送失败",
        (Lang::En, TooLong) => "Message too long",
        (Lang::Zh, TooLong) => "消息过长",
        (Lang::En, Unavailable) => "Chat is unavailable here.",
        (Lang::Zh, Unavailable) => "此页面无法使用在线客服。",
        (Lang::En, Reconnecting) => "Reconnecting…",
        (Lang::Zh, Reconnecting) => "正在重新连接…",
        (Lang::En, Agent) => "Support",
        (Lang::Zh, Agent) => "客服",
        (Lang::En, Failed) => "Something went wrong. Try again.",
        (Lang::Zh, Failed) => "出错了，请重试。",
        (Lang::En, TooMany) => "Too many tries from here. Please try again later.",
        (Lang::Zh, TooMany) => "操作过于频繁，请稍后再试。",
        (Lang::En, FileNeedsChat) => "Send a message first, then your file.",
        (Lang::Zh, FileNeedsChat) => "请先发送一条消息，再发送文件。",
        (Lang::En, ContactRequired) => "Please tell us how to reach you.",
        (Lang::Zh, ContactRequired) => "请留下您的联系方式。",
        (Lang::En, Email) => "E-mail",
        (Lang::Zh, Email) => "邮箱",
        (Lang::En, StartChat) => "Start chat",
        (Lang::Zh, StartChat) => "开始咨询",
        (Lang::En, Prechat) => "Tell us who you are so we can reply.",
        (Lang::Zh, Prechat) => "请留下您的称呼和邮箱，方便我们联系您。",
        (Lang::En, Attach) => "Send a file",
        (Lang::Zh, Attach) => "发送文件",
        (Lang::En, FileRefused) => "File type or size not accepted.",
        (Lang::En, RateTitle) => "How was this chat?",
        (Lang::Zh, RateTitle) => "您对本次服务满意吗？",
        (Lang::En, Comment) => "Comment",
        (Lang::Zh, Comment) => "补充说明",
        (Lang::En, Rated) => "Thanks for your feedback!",
        (Lang::Zh, Rated) => "感谢您的评价！",
        (Lang::En, Transcript) => "E-mail me a copy",
        (Lang::Zh, Transcript) => "邮箱（接收聊天记录）",
        (Lang::En, CopyNoReply) => "A copy can be sent once we have replied.",
        (Lang::Zh, CopyNoReply) => "客服回复后才能发送聊天记录。",
        (Lang::En, CopyLater) => "A copy was sent recently. Try later, or rate without one.",
        (Lang::Zh, CopyLater) => "聊天记录刚发送过，请稍后再试，或不填邮箱直接评价。",
        (Lang::En, NewChat) => "New conversation",
        (Lang::Zh, NewChat) => "新对话",
        (Lang::Zh, FileRefused) => "不支持该文件类型或大小。",
        (Lang::En, ShowOriginal) => "Show original",
        (Lang::Zh, ShowOriginal) => "显示原文",
        (Lang::En, ShowTranslation) => "Show translation",
        (Lang::Zh, ShowTranslation) => "显示译文",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_tags_pick_chinese() {
        assert_eq!(Lang::pick("zh-CN"), Lang::Zh);
        assert_eq!(Lang::pick("ZH-hans"), Lang::Zh);
        assert_eq!(Lang::pick("en-GB"), Lang::En);
        assert_eq!(Lang::pick(""), Lang::En);
        assert_ne!(t(Lang::En, Text::Send), t(Lang::Zh, Text::Send));
    }
}
