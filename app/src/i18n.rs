//! The console's words in English and Simplified Chinese. The language is the signed-in agent's
//! (their profile, switchable from the console), else the one this browser chose before (a
//! cookie), else the browser's `Accept-Language`. It is decided on the server while rendering,
//! so the first HTML is already in the agent's language.

use crate::error::ConsoleError;
use serde::{Deserialize, Serialize};

/// The cookie remembering the language chosen in this browser (for the sign-in page).
pub const LANG_COOKIE: &str = "kefu_lang";

/// A language the console speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Lang {
    /// English (the default).
    #[default]
    En,
    /// Simplified Chinese.
    Zh,
}

impl Lang {
    /// `zh`, `zh-CN`, `zh-Hans`… are Chinese; everything else is English.
    pub fn from_tag(tag: &str) -> Lang {
        if tag.trim().to_ascii_lowercase().starts_with("zh") {
            Lang::Zh
        } else {
            Lang::En
        }
    }

    /// The BCP 47 tag stored in the agent's profile and the cookie.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    /// The other language: what the switch offers.
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Zh,
            Lang::Zh => Lang::En,
        }
    }
}

/// Something the console says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Subtitle,
    Email,
    Password,
    Show,
    Hide,
    ShowPassword,
    Connection,
    ModeAuto,
    ModeHttp,
    SignIn,
    SignOut,
    Loading,
    NoConversations,
    CannedTitle,
    AddReply,
    Site,
    Shortcut,
    Text,
    OnlyForMe,
    Add,
    Delete,
    Personal,
    PageNotFound,
    BackToConsole,
    Connected,
    Rated,
    Team,
    Returning,
    NewVisitor,
    Location,
    Tags,
    SaveTags,
    FilterByTag,
    InternalNote,
    Emoji,
    SendFile,
    FileRefused,
    AboutVisitor,
    EarlierChats,
    PagesVisited,
    Name,
    Chatting,
    Invite,
    InviteText,
    TransferNote,
    NoteFrom,
    Online,
    Away,
    Offline,
    MyStatus,
    TransferTo,
    Transfer,
    Notifications,
    ConnectedHttp,
    Reconnecting,
    StatusOpen,
    StatusPending,
    StatusResolved,
    /// A conversation's record of a transcript e-mailed from it, before the address.
    TranscriptSent,
    Mine,
    Unassigned,
    All,
    Resolve,
    Reopen,
    PickUp,
    Send,
    Reply,
    IsTyping,
    LoadEarlier,
    PickConversation,
    VisitorsOnline,
    NoVisitors,
    NotSent,
    Sending,
    AssignedTo,
    Nobody,
    You,
    Seen,
    Pages,
    From,
    OnSite,
    HistoryTitle,
    SearchHistory,
    Status,
    FromDay,
    ToDay,
    Search,
    Export,
    NoResults,
    Agent,
    LeaveMessages,
    Older,
    Transcript,
    VisitorLabel,
    LeaveNew,
    LeaveInProgress,
    LeaveHandled,
    SearchLeaveMessages,
    Take,
    MarkHandled,
    Subject,
    ReplyByEmail,
    AdminSites,
    NewSite,
    AllowedOrigins,
    WidgetSettings,
    Save,
    Create,
    EmbedSnippet,
    Copy,
    Copied,
    SiteKey,
    AdminAgents,
    AdminUpkeep,
    InviteAgent,
    Administrator,
    MaxChats,
    Disabled,
    PasswordOnce,
    TestMail,
    MailSent,
    Retention,
    OlderThanDays,
    ConversationsDeleted,
    Bans,
    Lift,
    Address,
    VisitorNumber,
    Reason,
    ForDays,
    Ban,
    Webhooks,
    SigningSecret,
    Reports,
    Conversations,
    Missed,
    FirstResponse,
    ResolutionTime,
    ConversationsPerDay,
    BusiestHours,
    AgentLoad,
    AdminTeams,
    NewTeam,
    Remove,
    ApiTokens,
    ApiIntro,
    TokenOnce,
    CreatedAt,
    LastUsed,
    Revoke,
    Colour,
    Corner,
    Right,
    Left,
    Greeting,
    PrechatForm,
    SneakPeek,
    MaxFileMib,
    FileTypes,
    TimeZone,
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
    AdminMail,
    PasswordKept,
    SettingsLocked,
    SmtpHost,
    SmtpPort,
    SmtpSecurity,
    SmtpUser,
    MailFrom,
    NotifyLeaveMessages,
    SavedTo,
    Saved,
    TranslateChats,
    AdminTranslation,
    TranslatedToday,
    Characters,
    TranslationOff,
    BudgetReached,
    Provider,
    ProviderUrl,
    ApiKey,
    AzureRegion,
    BaiduAppId,
    BaiduSecret,
    Model,
    DailyChars,
    AgentLanguage,
    TestProvider,
    ProviderAnswered,
    Translating,
    TranslatedFrom,
    TranslationUnavailable,
    TranslationBudgetSpent,
    TranslateDraft,
    VisitorReads,
    SameLanguage,
    UnknownLanguage,
    /// The switch's label: the *other* language's own name.
    LanguageName,
    /// The console header's links.
    Inbox,
    Settings,
    Navigation,
    /// A conversation's header and menu.
    BackToList,
    SetPending,
    Snooze,
    SnoozeHour,
    SnoozeTomorrow,
    SnoozeMonday,
    SnoozeUntil,
    SnoozedUntil,
    MoreActions,
    BanVisitor,
    VisitorBanned,
    OneDay,
    OneWeek,
    OneMonth,
    Forever,
    /// Day separators in a transcript.
    Today,
    Yesterday,
    Tomorrow,
    /// A message that is only a file, in the inbox's preview.
    Attachment,
    /// The keyboard shortcuts and their list.
    NextConversation,
    PreviousConversation,
    FocusReply,
    SearchCanned,
    ResolveShortcut,
    ShowShortcuts,
    CloseShortcuts,
    /// The second step of a destructive button.
    AreYouSure,
    Yes,
    Cancel,
    /// Empty inbox tabs, and a desk with no conversation at all.
    NoOpen,
    NoPending,
    NoResolved,
    FirstRunHint,
    /// Whether a conversation's visitor is still on the site.
    VisitorHere,
    VisitorLeft,
    /// The name of a thing (a site, team or key), not of a person ([`Key::Name`]).
    Title,
    /// A visitor's draft before their first message (sneak peek), on the visitor list.
    IsWriting,
}

/// `key` in `lang`.
pub fn t(lang: Lang, key: Key) -> &'static str {
    use Key::*;
    match (lang, key) {
        (Lang::En, Subtitle) => "Sign in to answer your visitors.",
        (Lang::Zh, Subtitle) => "登录后回复您的访客。",
        (Lang::En, Email) => "E-mail",
        (Lang::Zh, Email) => "邮箱",
        (Lang::En, Password) => "Password",
        (Lang::Zh, Password) => "密码",
        (Lang::En, Show) => "Show",
        (Lang::Zh, Show) => "显示",
        (Lang::En, Hide) => "Hide",
        (Lang::Zh, Hide) => "隐藏",
        (Lang::En, ShowPassword) => "Show password",
        (Lang::Zh, ShowPassword) => "显示密码",
        (Lang::En, Connection) => "Connection",
        (Lang::Zh, Connection) => "连接方式",
        (Lang::En, ModeAuto) => "Automatic (WebSocket, falls back to HTTP)",
        (Lang::Zh, ModeAuto) => "自动（WebSocket，不通时改用 HTTP）",
        (Lang::En, ModeHttp) => "HTTP only (for networks that block WebSockets)",
        (Lang::Zh, ModeHttp) => "仅 HTTP（适用于屏蔽 WebSocket 的网络）",
        (Lang::En, SignIn) => "Sign in",
        (Lang::Zh, SignIn) => "登录",
        (Lang::En, SignOut) => "Sign out",
        (Lang::Zh, SignOut) => "退出登录",
        (Lang::En, Loading) => "Loading…",
        (Lang::Zh, Loading) => "加载中…",
        (Lang::En, NoConversations) => "No conversations yet.",
        (Lang::Zh, NoConversations) => "暂无会话。",
        (Lang::En, HistoryTitle) => "History",
        (Lang::Zh, HistoryTitle) => "历史记录",
        (Lang::En, SearchHistory) => "Search messages and leave-messages",
        (Lang::Zh, SearchHistory) => "搜索消息和留言",
        (Lang::En, Status) => "Status",
        (Lang::Zh, Status) => "状态",
        (Lang::En, FromDay) => "From",
        (Lang::Zh, FromDay) => "从",
        (Lang::En, ToDay) => "To",
        (Lang::Zh, ToDay) => "到",
        (Lang::En, Search) => "Search",
        (Lang::Zh, Search) => "搜索",
        (Lang::En, Export) => "Export:",
        (Lang::Zh, Export) => "导出：",
        (Lang::En, NoResults) => "Nothing found.",
        (Lang::Zh, NoResults) => "没有找到结果。",
        (Lang::En, Agent) => "Agent",
        (Lang::Zh, Agent) => "客服",
        (Lang::En, LeaveMessages) => "Leave-messages",
        (Lang::Zh, LeaveMessages) => "留言",
        (Lang::En, Older) => "Older",
        (Lang::Zh, Older) => "更早",
        (Lang::En, Transcript) => "Transcript",
        (Lang::Zh, Transcript) => "聊天记录",
        (Lang::En, VisitorLabel) => "Visitor",
        (Lang::Zh, VisitorLabel) => "访客",
        (Lang::En, LeaveNew) => "New",
        (Lang::Zh, LeaveNew) => "新留言",
        (Lang::En, LeaveInProgress) => "In progress",
        (Lang::Zh, LeaveInProgress) => "处理中",
        (Lang::En, LeaveHandled) => "Handled",
        (Lang::Zh, LeaveHandled) => "已处理",
        (Lang::En, SearchLeaveMessages) => "Search leave-messages",
        (Lang::Zh, SearchLeaveMessages) => "搜索留言",
        (Lang::En, Take) => "Take",
        (Lang::Zh, Take) => "认领",
        (Lang::En, MarkHandled) => "Mark handled",
        (Lang::Zh, MarkHandled) => "标记为已处理",
        (Lang::En, Subject) => "Subject",
        (Lang::Zh, Subject) => "主题",
        (Lang::En, ReplyByEmail) => "Reply by e-mail",
        (Lang::Zh, ReplyByEmail) => "通过邮件回复",
        (Lang::En, AdminSites) => "Sites",
        (Lang::Zh, AdminSites) => "站点管理",
        (Lang::En, NewSite) => "New site",
        (Lang::Zh, NewSite) => "新建站点",
        (Lang::En, AllowedOrigins) => "Allowed origins (one per line)",
        (Lang::Zh, AllowedOrigins) => "允许的来源（每行一个）",
        (Lang::En, WidgetSettings) => "Widget settings",
        (Lang::Zh, WidgetSettings) => "挂件设置",
        (Lang::En, Save) => "Save",
        (Lang::Zh, Save) => "保存",
        (Lang::En, Create) => "Create",
        (Lang::Zh, Create) => "创建",
        (Lang::En, EmbedSnippet) => "Embed snippet",
        (Lang::Zh, EmbedSnippet) => "嵌入代码",
        (Lang::En, Copy) => "Copy",
        (Lang::Zh, Copy) => "复制",
        (Lang::En, Copied) => "Copied",
        (Lang::Zh, Copied) => "已复制",
        (Lang::En, SiteKey) => "Key",
        (Lang::Zh, SiteKey) => "密钥",
        (Lang::En, AdminAgents) => "Agents",
        (Lang::Zh, AdminAgents) => "客服人员",
        (Lang::En, AdminUpkeep) => "Upkeep",
        (Lang::Zh, AdminUpkeep) => "维护",
        (Lang::En, InviteAgent) => "Add an agent",
        (Lang::Zh, InviteAgent) => "添加客服",
        (Lang::En, Administrator) => "Administrator",
        (Lang::Zh, Administrator) => "管理员",
        (Lang::En, MaxChats) => "Chats at once",
        (Lang::Zh, MaxChats) => "同时接待数",
        (Lang::En, Disabled) => "Disabled",
        (Lang::Zh, Disabled) => "已停用",
        (Lang::En, PasswordOnce) => "Their password (shown once):",
        (Lang::Zh, PasswordOnce) => "其密码（仅显示一次）：",
        (Lang::En, TestMail) => "Send a test e-mail",
        (Lang::Zh, TestMail) => "发送测试邮件",
        (Lang::En, MailSent) => "Sent. Check the inbox.",
        (Lang::Zh, MailSent) => "已发送，请查收。",
        (Lang::En, Retention) => "Data retention",
        (Lang::Zh, Retention) => "数据保留",
        (Lang::En, OlderThanDays) => "Delete what is older than (days)",
        (Lang::Zh, OlderThanDays) => "删除早于以下天数的数据",
        (Lang::En, ConversationsDeleted) => "Conversations deleted:",
        (Lang::Zh, ConversationsDeleted) => "已删除的对话：",
        (Lang::En, Bans) => "Bans",
        (Lang::Zh, Bans) => "封禁列表",
        (Lang::En, Lift) => "Lift",
        (Lang::Zh, Lift) => "解除",
        (Lang::En, Address) => "Address or range",
        (Lang::Zh, Address) => "地址或网段",
        (Lang::En, VisitorNumber) => "Visitor number",
        (Lang::Zh, VisitorNumber) => "访客编号",
        (Lang::En, Reason) => "Reason",
        (Lang::Zh, Reason) => "原因",
        (Lang::En, ForDays) => "Days (0: for good)",
        (Lang::Zh, ForDays) => "天数（0 为永久）",
        (Lang::En, Ban) => "Ban",
        (Lang::Zh, Ban) => "封禁",
        (Lang::En, AdminTeams) => "Teams",
        (Lang::Zh, AdminTeams) => "团队",
        (Lang::En, NewTeam) => "New team",
        (Lang::Zh, NewTeam) => "新建团队",
        (Lang::En, Remove) => "Remove",
        (Lang::Zh, Remove) => "移除",
        (Lang::En, ApiTokens) => "API keys",
        (Lang::Zh, ApiTokens) => "API 密钥",
        (Lang::En, ApiIntro) => {
            "Integrations call the REST API with one of these keys, acting as you. The API is described at"
        }
        (Lang::Zh, ApiIntro) => "集成系统使用下列密钥调用 REST API，权限与您相同。接口说明见",
        (Lang::En, TokenOnce) => "The new key (shown once, copy it now):",
        (Lang::Zh, TokenOnce) => "新密钥（仅显示一次，请立即复制）：",
        (Lang::En, CreatedAt) => "Created",
        (Lang::Zh, CreatedAt) => "创建时间",
        (Lang::En, LastUsed) => "Last used",
        (Lang::Zh, LastUsed) => "最近使用",
        (Lang::En, Revoke) => "Revoke",
        (Lang::Zh, Revoke) => "吊销",
        (Lang::En, Colour) => "Colour",
        (Lang::Zh, Colour) => "颜色",
        (Lang::En, Corner) => "Corner",
        (Lang::Zh, Corner) => "位置",
        (Lang::En, Right) => "Bottom right",
        (Lang::Zh, Right) => "右下角",
        (Lang::En, Left) => "Bottom left",
        (Lang::Zh, Left) => "左下角",
        (Lang::En, Greeting) => "Greeting",
        (Lang::Zh, Greeting) => "欢迎语",
        (Lang::En, PrechatForm) => "Ask for name and e-mail before chatting",
        (Lang::Zh, PrechatForm) => "聊天前询问姓名和邮箱",
        (Lang::En, SneakPeek) => "Agents see what visitors type before they send it",
        (Lang::Zh, SneakPeek) => "客服可预览访客正在输入的内容",
        (Lang::En, MaxFileMib) => "Largest file (MiB)",
        (Lang::Zh, MaxFileMib) => "最大文件（MiB）",
        (Lang::En, FileTypes) => "Files accepted:",
        (Lang::Zh, FileTypes) => "允许的文件类型：",
        (Lang::En, TimeZone) => "Business hours: time zone (empty: whenever an agent is online)",
        (Lang::Zh, TimeZone) => "营业时间：时区（留空：有客服在线即可聊天）",
        (Lang::En, Mon) => "Monday",
        (Lang::Zh, Mon) => "星期一",
        (Lang::En, Tue) => "Tuesday",
        (Lang::Zh, Tue) => "星期二",
        (Lang::En, Wed) => "Wednesday",
        (Lang::Zh, Wed) => "星期三",
        (Lang::En, Thu) => "Thursday",
        (Lang::Zh, Thu) => "星期四",
        (Lang::En, Fri) => "Friday",
        (Lang::Zh, Fri) => "星期五",
        (Lang::En, Sat) => "Saturday",
        (Lang::Zh, Sat) => "星期六",
        (Lang::En, Sun) => "Sunday",
        (Lang::Zh, Sun) => "星期日",
        (Lang::En, AdminMail) => "Mail",
        (Lang::Zh, AdminMail) => "邮件",
        (Lang::En, PasswordKept) => "saved; leave empty to keep it",
        (Lang::Zh, PasswordKept) => "已保存，留空则保持不变",
        (Lang::En, SettingsLocked) => {
            "These settings come from command-line flags or KEFU_* variables and can only be changed there."
        }
        (Lang::Zh, SettingsLocked) => "这些设置来自命令行参数或 KEFU_* 环境变量，只能在那里修改。",
        (Lang::En, SmtpHost) => "SMTP server (empty: no e-mail)",
        (Lang::Zh, SmtpHost) => "SMTP 服务器（留空：不发邮件）",
        (Lang::En, SmtpPort) => "Port",
        (Lang::Zh, SmtpPort) => "端口",
        (Lang::En, SmtpSecurity) => "Security",
        (Lang::Zh, SmtpSecurity) => "加密方式",
        (Lang::En, SmtpUser) => "User name",
        (Lang::Zh, SmtpUser) => "用户名",
        (Lang::En, MailFrom) => "Sender",
        (Lang::Zh, MailFrom) => "发件人",
        (Lang::En, NotifyLeaveMessages) => "E-mail a site's agents when a leave-message arrives",
        (Lang::Zh, NotifyLeaveMessages) => "收到留言时邮件通知该站点的客服",
        (Lang::En, SavedTo) => "Saved to",
        (Lang::Zh, SavedTo) => "保存到",
        (Lang::En, Saved) => "Saved.",
        (Lang::Zh, Saved) => "已保存。",
        (Lang::En, TranslateChats) => "Translate between agents and visitors automatically",
        (Lang::Zh, TranslateChats) => "自动翻译客服与访客的消息",
        (Lang::En, Webhooks) => "Webhooks",
        (Lang::Zh, Webhooks) => "Webhook 回调",
        (Lang::En, SigningSecret) => "Signing secret (shown once):",
        (Lang::Zh, SigningSecret) => "签名密钥（仅显示一次）：",
        (Lang::En, Reports) => "Reports",
        (Lang::Zh, Reports) => "报表",
        (Lang::En, Conversations) => "Conversations",
        (Lang::Zh, Conversations) => "对话",
        (Lang::En, Missed) => "Missed (never answered)",
        (Lang::Zh, Missed) => "未接待（无人回复）",
        (Lang::En, FirstResponse) => "First response",
        (Lang::Zh, FirstResponse) => "首次响应",
        (Lang::En, ResolutionTime) => "Time to resolve",
        (Lang::Zh, ResolutionTime) => "解决用时",
        (Lang::En, ConversationsPerDay) => "Conversations per day",
        (Lang::Zh, ConversationsPerDay) => "每日对话数",
        (Lang::En, BusiestHours) => "Busiest hours (UTC)",
        (Lang::Zh, BusiestHours) => "最繁忙时段（UTC）",
        (Lang::En, AgentLoad) => "Conversations per agent",
        (Lang::Zh, AgentLoad) => "每位客服的对话数",
        (Lang::En, CannedTitle) => "Canned replies",
        (Lang::Zh, CannedTitle) => "快捷回复",
        (Lang::En, AddReply) => "Add a reply",
        (Lang::Zh, AddReply) => "添加快捷回复",
        (Lang::En, Site) => "Site",
        (Lang::Zh, Site) => "站点",
        (Lang::En, Shortcut) => "Shortcut",
        (Lang::Zh, Shortcut) => "快捷指令",
        (Lang::En, Text) => "Text",
        (Lang::Zh, Text) => "内容",
        (Lang::En, OnlyForMe) => "Only for me",
        (Lang::Zh, OnlyForMe) => "仅自己可用",
        (Lang::En, Add) => "Add",
        (Lang::Zh, Add) => "添加",
        (Lang::En, Delete) => "Delete",
        (Lang::Zh, Delete) => "删除",
        (Lang::En, Personal) => "personal",
        (Lang::Zh, Personal) => "个人",
        (Lang::En, PageNotFound) => "Page not found",
        (Lang::Zh, PageNotFound) => "页面不存在",
        (Lang::En, BackToConsole) => "Back to the console",
        (Lang::Zh, BackToConsole) => "返回控制台",
        (Lang::En, Notifications) => "Notify me",
        (Lang::Zh, Notifications) => "开启通知",
        (Lang::En, Online) => "Online",
        (Lang::Zh, Online) => "在线",
        (Lang::En, Away) => "Away",
        (Lang::Zh, Away) => "离开",
        (Lang::En, Offline) => "Offline",
        (Lang::Zh, Offline) => "离线",
        (Lang::En, MyStatus) => "My status",
        (Lang::Zh, MyStatus) => "我的状态",
        (Lang::En, TransferTo) => "Transfer to",
        (Lang::Zh, TransferTo) => "转接给",
        (Lang::En, Transfer) => "Transfer",
        (Lang::Zh, Transfer) => "转接",
        (Lang::En, TransferNote) => "Note for your colleague (optional)",
        (Lang::Zh, TransferNote) => "给同事的备注（可选）",
        (Lang::En, NoteFrom) => "Handover note from",
        (Lang::Zh, NoteFrom) => "转接备注，来自",
        (Lang::En, Chatting) => "chatting",
        (Lang::Zh, Chatting) => "咨询中",
        (Lang::En, Invite) => "Invite to chat",
        (Lang::Zh, Invite) => "邀请对话",
        (Lang::En, InviteText) => "Say hello…",
        (Lang::Zh, InviteText) => "打个招呼…",
        (Lang::En, AboutVisitor) => "About the visitor",
        (Lang::Zh, AboutVisitor) => "访客信息",
        (Lang::En, EarlierChats) => "Earlier conversations",
        (Lang::Zh, EarlierChats) => "历史会话",
        (Lang::En, PagesVisited) => "Pages this visit",
        (Lang::Zh, PagesVisited) => "本次浏览页面",
        (Lang::En, Name) => "Name",
        (Lang::Zh, Name) => "姓名",
        (Lang::En, Emoji) => "Emoji",
        (Lang::Zh, Emoji) => "表情",
        (Lang::En, SendFile) => "Send a file",
        (Lang::Zh, SendFile) => "发送文件",
        (Lang::En, FileRefused) => "That file type or size is not accepted for this site.",
        (Lang::Zh, FileRefused) => "该站点不接受此文件类型或大小。",
        (Lang::En, InternalNote) => "Internal note",
        (Lang::Zh, InternalNote) => "内部备注",
        (Lang::En, Tags) => "Tags, comma-separated",
        (Lang::Zh, Tags) => "标签，用逗号分隔",
        (Lang::En, SaveTags) => "Save tags",
        (Lang::Zh, SaveTags) => "保存标签",
        (Lang::En, FilterByTag) => "Filter by tag",
        (Lang::Zh, FilterByTag) => "按标签筛选",
        (Lang::En, Location) => "Location",
        (Lang::Zh, Location) => "位置",
        (Lang::En, Returning) => "returning",
        (Lang::Zh, Returning) => "回访",
        (Lang::En, NewVisitor) => "new",
        (Lang::Zh, NewVisitor) => "新访客",
        (Lang::En, Team) => "Team",
        (Lang::Zh, Team) => "团队",
        (Lang::En, Rated) => "Visitor's rating",
        (Lang::Zh, Rated) => "访客评价",
        (Lang::En, Connected) => "Connected",
        (Lang::Zh, Connected) => "已连接",
        (Lang::En, ConnectedHttp) => "Connected (HTTP)",
        (Lang::Zh, ConnectedHttp) => "已连接（HTTP）",
        (Lang::En, Reconnecting) => "Reconnecting…",
        (Lang::Zh, Reconnecting) => "正在重新连接…",
        (Lang::En, StatusOpen) => "Open",
        (Lang::Zh, StatusOpen) => "进行中",
        (Lang::En, StatusPending) => "Pending",
        (Lang::Zh, StatusPending) => "待处理",
        (Lang::En, StatusResolved) => "Resolved",
        (Lang::Zh, StatusResolved) => "已解决",
        (Lang::En, TranscriptSent) => "Transcript sent to",
        (Lang::Zh, TranscriptSent) => "聊天记录已发送至",
        (Lang::En, Mine) => "Mine",
        (Lang::Zh, Mine) => "我的",
        (Lang::En, Unassigned) => "Unassigned",
        (Lang::Zh, Unassigned) => "未分配",
        (Lang::En, All) => "All",
        (Lang::Zh, All) => "全部",
        (Lang::En, Resolve) => "Resolve",
        (Lang::Zh, Resolve) => "标记为已解决",
        (Lang::En, Reopen) => "Reopen",
        (Lang::Zh, Reopen) => "重新打开",
        (Lang::En, PickUp) => "Pick up",
        (Lang::Zh, PickUp) => "接入",
        (Lang::En, Send) => "Send",
        (Lang::Zh, Send) => "发送",
        (Lang::En, Reply) => "Reply",
        (Lang::Zh, Reply) => "回复",
        (Lang::En, IsTyping) => "is typing…",
        (Lang::Zh, IsTyping) => "正在输入…",
        (Lang::En, LoadEarlier) => "Load earlier messages",
        (Lang::Zh, LoadEarlier) => "加载更早的消息",
        (Lang::En, PickConversation) => "Pick a conversation on the left.",
        (Lang::Zh, PickConversation) => "请在左侧选择一个会话。",
        (Lang::En, VisitorsOnline) => "Visitors online",
        (Lang::Zh, VisitorsOnline) => "在线访客",
        (Lang::En, NoVisitors) => "No visitors on your sites right now.",
        (Lang::Zh, NoVisitors) => "您的站点暂时没有访客。",
        (Lang::En, NotSent) => "Not sent",
        (Lang::Zh, NotSent) => "未发送",
        (Lang::En, Sending) => "Sending…",
        (Lang::Zh, Sending) => "发送中…",
        (Lang::En, AssignedTo) => "Assigned to",
        (Lang::Zh, AssignedTo) => "负责人",
        (Lang::En, Nobody) => "nobody",
        (Lang::Zh, Nobody) => "无",
        (Lang::En, You) => "you",
        (Lang::Zh, You) => "您",
        (Lang::En, Seen) => "Seen",
        (Lang::Zh, Seen) => "已读",
        (Lang::En, Pages) => "Pages",
        (Lang::Zh, Pages) => "浏览页数",
        (Lang::En, From) => "From",
        (Lang::Zh, From) => "来源",
        (Lang::En, OnSite) => "On site",
        (Lang::Zh, OnSite) => "停留",
        (Lang::En, LanguageName) => "English",
        (Lang::En, AdminTranslation) => "Translation",
        (Lang::Zh, AdminTranslation) => "翻译",
        (Lang::En, TranslatedToday) => "Characters translated today (UTC)",
        (Lang::Zh, TranslatedToday) => "今日已翻译字符（UTC）",
        (Lang::En, Characters) => "Characters / daily budget",
        (Lang::Zh, Characters) => "字符 / 每日额度",
        (Lang::En, TranslationOff) => "Translation off",
        (Lang::Zh, TranslationOff) => "翻译已关闭",
        (Lang::En, BudgetReached) => "Daily budget reached: translation stopped until tomorrow",
        (Lang::Zh, BudgetReached) => "已达每日额度：翻译暂停至明天",
        (Lang::En, Provider) => "Provider",
        (Lang::Zh, Provider) => "翻译服务",
        (Lang::En, ProviderUrl) => "Address (empty: the provider's own)",
        (Lang::Zh, ProviderUrl) => "地址（留空：使用服务默认地址）",
        (Lang::En, ApiKey) => "API key",
        (Lang::Zh, ApiKey) => "API 密钥",
        (Lang::En, AzureRegion) => "Region (Azure)",
        (Lang::Zh, AzureRegion) => "区域（Azure）",
        (Lang::En, BaiduAppId) => "App ID (Baidu)",
        (Lang::Zh, BaiduAppId) => "APP ID（百度）",
        (Lang::En, BaiduSecret) => "Secret (Baidu)",
        (Lang::Zh, BaiduSecret) => "密钥（百度）",
        (Lang::En, Model) => "Model (OpenAI-compatible)",
        (Lang::Zh, Model) => "模型（OpenAI 兼容）",
        (Lang::En, DailyChars) => "Characters per site per day",
        (Lang::Zh, DailyChars) => "每个网站每日字符额度",
        (Lang::En, AgentLanguage) => "Agents' language while nobody is assigned",
        (Lang::Zh, AgentLanguage) => "无人接待时客服使用的语言",
        (Lang::En, TestProvider) => "Test provider",
        (Lang::Zh, TestProvider) => "测试翻译服务",
        (Lang::En, ProviderAnswered) => "The provider translated “Hello, how can I help you?” as",
        (Lang::Zh, ProviderAnswered) => "翻译服务将 “Hello, how can I help you?” 译为",
        (Lang::En, Translating) => "Translate this conversation",
        (Lang::Zh, Translating) => "翻译此会话",
        (Lang::En, TranslatedFrom) => "Translated from",
        (Lang::Zh, TranslatedFrom) => "译自",
        (Lang::En, TranslationUnavailable) => "Translation unavailable; trying again later",
        (Lang::Zh, TranslationUnavailable) => "翻译暂不可用，稍后重试",
        (Lang::En, TranslationBudgetSpent) => {
            "Not translated: today's translation budget for this site is spent"
        }
        (Lang::Zh, TranslationBudgetSpent) => "未翻译：此网站今日翻译额度已用完",
        (Lang::En, TranslateDraft) => "Translate",
        (Lang::Zh, TranslateDraft) => "翻译",
        (Lang::En, VisitorReads) => "The visitor will read:",
        (Lang::Zh, VisitorReads) => "访客将看到：",
        (Lang::En, SameLanguage) => "The visitor reads your language: nothing to translate.",
        (Lang::Zh, SameLanguage) => "访客使用您的语言，无需翻译。",
        (Lang::En, UnknownLanguage) => "The visitor's language is not known yet.",
        (Lang::Zh, UnknownLanguage) => "尚不知道访客的语言。",
        (Lang::Zh, LanguageName) => "中文",
        (Lang::En, Inbox) => "Inbox",
        (Lang::Zh, Inbox) => "会话",
        (Lang::En, Settings) => "Settings",
        (Lang::Zh, Settings) => "设置",
        (Lang::En, Navigation) => "Console",
        (Lang::Zh, Navigation) => "控制台",
        (Lang::En, BackToList) => "Back to the conversations",
        (Lang::Zh, BackToList) => "返回会话列表",
        (Lang::En, SetPending) => "Pending",
        (Lang::Zh, SetPending) => "待处理",
        (Lang::En, Snooze) => "Snooze",
        (Lang::Zh, Snooze) => "稍后处理",
        (Lang::En, SnoozeHour) => "For an hour",
        (Lang::Zh, SnoozeHour) => "一小时后",
        (Lang::En, SnoozeTomorrow) => "Tomorrow, 9:00",
        (Lang::Zh, SnoozeTomorrow) => "明天 9:00",
        (Lang::En, SnoozeMonday) => "Next Monday, 9:00",
        (Lang::Zh, SnoozeMonday) => "下周一 9:00",
        (Lang::En, SnoozeUntil) => "Until",
        (Lang::Zh, SnoozeUntil) => "直到",
        (Lang::En, SnoozedUntil) => "Snoozed until",
        (Lang::Zh, SnoozedUntil) => "稍后处理至",
        (Lang::En, MoreActions) => "More actions",
        (Lang::Zh, MoreActions) => "更多操作",
        (Lang::En, BanVisitor) => "Ban visitor",
        (Lang::Zh, BanVisitor) => "封禁访客",
        (Lang::En, VisitorBanned) => "The visitor is banned from this site.",
        (Lang::Zh, VisitorBanned) => "已在此网站封禁该访客。",
        (Lang::En, OneDay) => "1 day",
        (Lang::Zh, OneDay) => "1 天",
        (Lang::En, OneWeek) => "7 days",
        (Lang::Zh, OneWeek) => "7 天",
        (Lang::En, OneMonth) => "30 days",
        (Lang::Zh, OneMonth) => "30 天",
        (Lang::En, Forever) => "For ever",
        (Lang::Zh, Forever) => "永久",
        (Lang::En, Today) => "Today",
        (Lang::Zh, Today) => "今天",
        (Lang::En, Yesterday) => "Yesterday",
        (Lang::Zh, Yesterday) => "昨天",
        (Lang::En, Tomorrow) => "Tomorrow",
        (Lang::Zh, Tomorrow) => "明天",
        (Lang::En, Attachment) => "File",
        (Lang::Zh, Attachment) => "文件",
        (Lang::En, NextConversation) => "Next conversation",
        (Lang::Zh, NextConversation) => "下一个会话",
        (Lang::En, PreviousConversation) => "Previous conversation",
        (Lang::Zh, PreviousConversation) => "上一个会话",
        (Lang::En, FocusReply) => "Write a reply",
        (Lang::Zh, FocusReply) => "输入回复",
        (Lang::En, SearchCanned) => "Search canned replies",
        (Lang::Zh, SearchCanned) => "搜索快捷回复",
        (Lang::En, ResolveShortcut) => "Resolve the conversation",
        (Lang::Zh, ResolveShortcut) => "解决会话",
        (Lang::En, ShowShortcuts) => "Keyboard shortcuts",
        (Lang::Zh, ShowShortcuts) => "键盘快捷键",
        (Lang::En, CloseShortcuts) => "Close",
        (Lang::Zh, CloseShortcuts) => "关闭",
        (Lang::En, AreYouSure) => "This cannot be undone.",
        (Lang::Zh, AreYouSure) => "此操作无法撤销。",
        (Lang::En, Yes) => "Yes",
        (Lang::Zh, Yes) => "确定",
        (Lang::En, Cancel) => "Cancel",
        (Lang::Zh, Cancel) => "取消",
        (Lang::En, IsWriting) => "Writing",
        (Lang::Zh, IsWriting) => "正在输入",
        (Lang::En, Title) => "Name",
        (Lang::Zh, Title) => "名称",
        (Lang::En, VisitorHere) => "On the site now",
        (Lang::Zh, VisitorHere) => "正在浏览网站",
        (Lang::En, VisitorLeft) => "Visitor left",
        (Lang::Zh, VisitorLeft) => "访客已离开",
        (Lang::En, NoOpen) => "No open conversations here.",
        (Lang::Zh, NoOpen) => "这里没有进行中的会话。",
        (Lang::En, NoPending) => "No pending conversations here.",
        (Lang::Zh, NoPending) => "这里没有待处理的会话。",
        (Lang::En, NoResolved) => "No resolved conversations here.",
        (Lang::Zh, NoResolved) => "这里没有已解决的会话。",
        (Lang::En, FirstRunHint) => {
            "Chats appear here as soon as a visitor writes. Put your site's snippet on its pages, and keep your status Online."
        }
        (Lang::Zh, FirstRunHint) => {
            "访客一发消息，会话就会出现在这里。请把网站的嵌入代码放到网页上，并保持状态为“在线”。"
        }
    }
}

impl ConsoleError {
    /// The sentence for this error in `lang`.
    pub fn message(self, lang: Lang) -> &'static str {
        match (lang, self) {
            (Lang::En, ConsoleError::BadCredentials) => "Wrong e-mail or password.",
            (Lang::Zh, ConsoleError::BadCredentials) => "邮箱或密码错误。",
            (Lang::En, ConsoleError::Unauthorized) => "Please sign in again.",
            (Lang::Zh, ConsoleError::Unauthorized) => "请重新登录。",
            (Lang::En, ConsoleError::BadRequest) => {
                "The request was not understood. Please try again."
            }
            (Lang::Zh, ConsoleError::BadRequest) => "请求无法识别，请重试。",
            (Lang::En, ConsoleError::Invalid) => "Please check the fields.",
            (Lang::Zh, ConsoleError::Invalid) => "请检查填写的内容。",
            (Lang::En, ConsoleError::NotFound) => "That is not there, or not yours to change.",
            (Lang::Zh, ConsoleError::NotFound) => "内容不存在，或您无权修改。",
            (Lang::En, ConsoleError::Internal) => {
                "Something went wrong on the server. Please try again."
            }
            (Lang::Zh, ConsoleError::Internal) => "服务器出错了，请重试。",
            (Lang::En, ConsoleError::Forbidden) => "Only administrators can do this.",
            (Lang::Zh, ConsoleError::Forbidden) => "只有管理员可以执行此操作。",
            (Lang::En, ConsoleError::NoMail) => {
                "E-mail is not set up on this server (see [email] in kefu.toml)."
            }
            (Lang::Zh, ConsoleError::NoMail) => "此服务器未配置邮件（见 kefu.toml 中的 [email]）。",
            (Lang::En, ConsoleError::MailFailed) => {
                "The mail server did not accept the e-mail. Please try again later."
            }
            (Lang::Zh, ConsoleError::MailFailed) => "邮件服务器未接受该邮件，请稍后再试。",
            (Lang::En, ConsoleError::BadHours) => {
                "Business hours: use a time zone such as Asia/Shanghai and spans such as 09:00-12:00,13:30-18:00."
            }
            (Lang::Zh, ConsoleError::BadHours) => {
                "营业时间：时区请填写如 Asia/Shanghai，时段请填写如 09:00-12:00,13:30-18:00。"
            }
            (Lang::En, ConsoleError::NoTranslation) => {
                "Translation is not set up, or it is off for this site or conversation."
            }
            (Lang::Zh, ConsoleError::NoTranslation) => "未配置翻译，或此网站/会话已关闭翻译。",
            (Lang::En, ConsoleError::TranslationFailed) => {
                "The translation service did not answer. Check its settings; the server log says why."
            }
            (Lang::Zh, ConsoleError::TranslationFailed) => {
                "翻译服务没有响应。请检查翻译设置，服务器日志中有原因。"
            }
            (Lang::En, ConsoleError::TranslationBudget) => {
                "Today's translation budget for this site is spent; translation resumes tomorrow (UTC)."
            }
            (Lang::Zh, ConsoleError::TranslationBudget) => {
                "此网站今天的翻译额度已用完，明天（UTC）恢复翻译。"
            }
            (Lang::En, ConsoleError::AddressRefused) => {
                "Kefu may not call that address: it is on this machine or a private network. The server's configuration file can allow it ([outbound] allow)."
            }
            (Lang::Zh, ConsoleError::AddressRefused) => {
                "Kefu 不能访问该地址：它位于本机或内网。可在服务器配置文件中放行（[outbound] allow）。"
            }
            (Lang::En, ConsoleError::SecretRequired) => {
                "The address changed: enter the key (and secret) again. Saved ones are only used with the saved address."
            }
            (Lang::Zh, ConsoleError::SecretRequired) => {
                "地址已更改：请重新填写密钥。已保存的密钥只用于原来的地址。"
            }
            (Lang::En, ConsoleError::Throttled) => {
                "Too many sign-in attempts. Please wait a few minutes, then try again."
            }
            (Lang::Zh, ConsoleError::Throttled) => "登录尝试次数过多，请稍等几分钟后再试。",
        }
    }
}

/// The weekdays' names, Monday first (business hours, the reports' chart).
pub const WEEKDAYS: [Key; 7] = [
    Key::Mon,
    Key::Tue,
    Key::Wed,
    Key::Thu,
    Key::Fri,
    Key::Sat,
    Key::Sun,
];

/// Weekday `day` (0 is Monday) as short as a chart's row label: "Mon", "周一".
pub fn weekday_short(lang: Lang, day: usize) -> String {
    let name = t(lang, WEEKDAYS[day % 7]);
    match lang {
        Lang::En => name.chars().take(3).collect(),
        // 星期一 → 周一
        Lang::Zh => format!("周{}", name.chars().last().unwrap_or_default()),
    }
}

/// The browser's first choice in its `Accept-Language` header (the setup wizard asks too).
#[cfg(feature = "ssr")]
pub fn accepted_language(headers: &axum::http::HeaderMap) -> Lang {
    let accepted = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split([',', ';']).next())
        .unwrap_or_default();
    Lang::from_tag(accepted)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `text` has a Chinese character.
    fn has_han(text: &str) -> bool {
        text.chars().any(|c| {
            ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3400}'..='\u{4dbf}').contains(&c)
        })
    }

    #[test]
    fn every_chinese_text_is_chinese() {
        // The match is exhaustive, so every key has both arms; this checks the Chinese arm is
        // not an English copy. Each `(Lang::Zh, Key) =>` is followed by its text.
        let source = include_str!("i18n.rs");
        let source = &source[..source.find("#[cfg(test)]").unwrap_or(source.len())];
        let mut checked = 0;
        for arm in source.split("(Lang::Zh, ").skip(1) {
            let (key, rest) = arm.split_once(')').expect("an arm");
            let text = rest.split('"').nth(1).expect("a text after the arm");
            assert!(
                has_han(text),
                "the Chinese text of {key} is not Chinese: {text:?}"
            );
            checked += 1;
        }
        assert!(checked > 240, "only {checked} Chinese texts found");
    }

    #[test]
    fn pages_write_no_english_outside_the_table() {
        // Text in a view is a string literal right after a tag (`>"Words"`); any with words
        // in it must come from `t` instead. Names and formats that read
        // the same in both languages are allowed.
        const SAME_IN_BOTH: [&str; 9] = [
            "Kefu",
            "Esc",
            "URL",
            "CSAT",
            "CSV",
            "JSON",
            "/api/v1/openapi.json",
            "curl -H 'Authorization: Bearer kefu_…' ",
            "Re: ",
        ];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![root.clone()];
        let mut found = Vec::new();
        while let Some(path) = files.pop() {
            if path.is_dir() {
                for entry in std::fs::read_dir(&path).expect("src is readable") {
                    files.push(entry.expect("an entry").path());
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("i18n.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a source file");
            let text = &text[..text.find("#[cfg(test)]").unwrap_or(text.len())];
            for (number, line) in text.lines().enumerate() {
                let trimmed = line.trim();
                if trimmed.starts_with("//") {
                    continue;
                }
                for piece in trimmed.split(">\"").skip(1) {
                    let literal = piece.split('"').next().unwrap_or_default();
                    // Text starts with a letter; `>"` in a format string or after `/>` does not.
                    let words = literal.starts_with(|c: char| c.is_ascii_alphabetic())
                        && literal.chars().filter(char::is_ascii_alphabetic).count() >= 2;
                    if words && !SAME_IN_BOTH.contains(&literal) && !literal.contains("://") {
                        found.push(format!("{}:{}: {literal:?}", path.display(), number + 1));
                    }
                }
            }
        }
        assert!(
            found.is_empty(),
            "console text not in the language table:\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn weekdays_shorten_in_both_languages() {
        assert_eq!(weekday_short(Lang::En, 2), "Wed");
        assert_eq!(weekday_short(Lang::Zh, 6), "周日");
        assert_eq!(weekday_short(Lang::Zh, 0), "周一");
    }

    #[test]
    fn tags_pick_the_language() {
        assert_eq!(Lang::from_tag("zh-CN"), Lang::Zh);
        assert_eq!(Lang::from_tag(" ZH-Hans"), Lang::Zh);
        assert_eq!(Lang::from_tag("en-GB"), Lang::En);
        assert_eq!(Lang::from_tag(""), Lang::En);
        assert_eq!(Lang::from_tag(Lang::Zh.tag()), Lang::Zh);
        assert_ne!(t(Lang::En, Key::SignIn), t(Lang::Zh, Key::SignIn));
        assert_ne!(
            ConsoleError::Invalid.message(Lang::En),
            ConsoleError::Invalid.message(Lang::Zh)
        );
    }
}
