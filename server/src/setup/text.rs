//! The setup wizard's words in English and Simplified Chinese: every sentence its pages and
//! test buttons show, problems included, in one table ([`say`]) whose exhaustive match makes a
//! missing translation a compile error. `{0}`, `{1}`… stand for what [`fill`] puts in.
//!
//! Details quoted from elsewhere (a mail server's or a translation provider's own answer, a
//! configuration key's complaint) are put into a translated sentence as they come.

pub(super) use app::i18n::Lang;

/// Declares [`Text`] and, for the tests, the list of all its keys.
macro_rules! texts {
    ($($(#[$doc:meta])* $key:ident,)*) => {
        /// Something the wizard says.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(super) enum Text {
            $($(#[$doc])* $key,)*
        }

        #[cfg(test)]
        impl Text {
            /// Every key, for the tests.
            pub(super) const ALL: &[Text] = &[$(Text::$key,)*];
        }
    };
}

texts! {
    Title,
    TokenIntro,
    SetupToken,
    Continue,
    WrongToken,
    DatabaseLegend,
    Sqlite,
    Mysql,
    Host,
    Port,
    PortHint,
    User,
    Password,
    DatabaseName,
    TestConnection,
    AdminLegend,
    Email,
    AdminName,
    /// The administrator's name when none is given (visitors see it).
    DefaultAdminName,
    /// `{0}`: the fewest characters.
    AdminPassword,
    SiteLegend,
    SiteName,
    SiteOrigins,
    MailLegend,
    SmtpUrl,
    Sender,
    SenderHint,
    SendTestMail,
    TranslationLegend,
    Provider,
    NoProvider,
    ProviderAddress,
    ApiKey,
    TestProvider,
    Finish,
    /// Shown while a test button waits for its answer.
    Trying,
    SetUpAlready,
    Starting,
    OpenConsole,
    Done,
    Saved,
    /// `{0}`: the site's name; `{1}`: `</body>`.
    PasteSnippet,
    EmbedSnippet,
    ChooseDatabase,
    FillDatabase,
    BadPort,
    /// `{0}`: the host as typed.
    BadHost,
    BadUser,
    /// `{0}`: why.
    BadDatabaseUrl,
    /// `{0}`: why.
    NoFolder,
    /// `{0}`: the host.
    Unreachable,
    /// `{0}`: the user.
    BadCredentials,
    /// `{0}`: the database, quoted; `{1}`: as in SQL.
    NoDatabase,
    /// `{0}`: the user; `{1}`: the database.
    NoPrivilege,
    /// `{0}`: the database's own words.
    DatabaseFailed,
    /// `{0}`: the database's address (without its password).
    Connected,
    BadAdminEmail,
    /// `{0}`: the fewest characters.
    ShortAdminPassword,
    /// `{0}`: the most bytes.
    LongAdminPassword,
    BadSiteName,
    BadOrigins,
    SenderMissing,
    RelayMissing,
    /// `{0}`: why.
    BadSmtpUrl,
    /// `{0}`: why.
    BadSender,
    AdminEmailFirst,
    TestMailSubject,
    TestMailBody,
    /// `{0}`: the address.
    TestMailSent,
    /// `{0}`: the mail server's words.
    MailRefused,
    /// `{0}`: what the translation settings lack.
    BadTranslation,
    ChooseProvider,
    /// `{0}`: the sample's translation.
    ProviderAnswered,
    /// `{0}`: why.
    ProviderSilent,
    /// `{0}`: why.
    SetupFailed,
}

/// What the wizard says for `text` in `lang`.
pub(super) fn say(lang: Lang, text: Text) -> &'static str {
    use Text::*;
    match (lang, text) {
        (Lang::En, Title) => "Set up Kefu",
        (Lang::Zh, Title) => "设置 Kefu",
        (Lang::En, TokenIntro) => {
            "Kefu printed a one-time setup token in its log when it started. Enter it to continue."
        }
        (Lang::Zh, TokenIntro) => "Kefu 启动时在日志中打印了一个一次性的设置令牌。请输入它以继续。",
        (Lang::En, SetupToken) => "Setup token",
        (Lang::Zh, SetupToken) => "设置令牌",
        (Lang::En, Continue) => "Continue",
        (Lang::Zh, Continue) => "继续",
        (Lang::En, WrongToken) => "That is not the setup token in the server log.",
        (Lang::Zh, WrongToken) => "这不是服务器日志中的设置令牌。",
        (Lang::En, DatabaseLegend) => "1. Database",
        (Lang::Zh, DatabaseLegend) => "1. 数据库",
        (Lang::En, Sqlite) => "SQLite, built in (nothing to install)",
        (Lang::Zh, Sqlite) => "SQLite，内置（无需安装）",
        (Lang::En, Mysql) => "MySQL or MariaDB",
        (Lang::Zh, Mysql) => "MySQL 或 MariaDB",
        (Lang::En, Host) => "Host",
        (Lang::Zh, Host) => "主机",
        (Lang::En, Port) => "Port",
        (Lang::Zh, Port) => "端口",
        (Lang::En, PortHint) => "3306 or 5432",
        (Lang::Zh, PortHint) => "3306 或 5432",
        (Lang::En, User) => "User",
        (Lang::Zh, User) => "用户名",
        (Lang::En, Password) => "Password",
        (Lang::Zh, Password) => "密码",
        (Lang::En, DatabaseName) => "Database name",
        (Lang::Zh, DatabaseName) => "数据库名",
        (Lang::En, TestConnection) => "Test connection",
        (Lang::Zh, TestConnection) => "测试连接",
        (Lang::En, AdminLegend) => "2. Administrator",
        (Lang::Zh, AdminLegend) => "2. 管理员",
        (Lang::En, Email) => "E-mail",
        (Lang::Zh, Email) => "电子邮箱",
        (Lang::En, AdminName) => "Name",
        (Lang::Zh, AdminName) => "姓名",
        (Lang::En, DefaultAdminName) => "Admin",
        (Lang::Zh, DefaultAdminName) => "管理员",
        (Lang::En, AdminPassword) => "Password ({0} characters or more)",
        (Lang::Zh, AdminPassword) => "密码（至少 {0} 个字符）",
        (Lang::En, SiteLegend) => "3. Your website",
        (Lang::Zh, SiteLegend) => "3. 您的网站",
        (Lang::En, SiteName) => "Name",
        (Lang::Zh, SiteName) => "名称",
        (Lang::En, SiteOrigins) => "Addresses (separate several with spaces)",
        (Lang::Zh, SiteOrigins) => "网址（多个网址用空格分隔）",
        (Lang::En, MailLegend) => "4. E-mail (optional)",
        (Lang::Zh, MailLegend) => "4. 电子邮件（可选）",
        (Lang::En, SmtpUrl) => "SMTP relay URL",
        (Lang::Zh, SmtpUrl) => "SMTP 中继地址",
        (Lang::En, Sender) => "Sender",
        (Lang::Zh, Sender) => "发件人",
        (Lang::En, SenderHint) => "Support <support@example.com>",
        (Lang::Zh, SenderHint) => "客服 <support@example.com>",
        (Lang::En, SendTestMail) => "Send a test e-mail",
        (Lang::Zh, SendTestMail) => "发送测试邮件",
        (Lang::En, TranslationLegend) => "5. Translation (optional)",
        (Lang::Zh, TranslationLegend) => "5. 翻译（可选）",
        (Lang::En, Provider) => "Provider",
        (Lang::Zh, Provider) => "服务商",
        (Lang::En, NoProvider) => "None",
        (Lang::Zh, NoProvider) => "不使用",
        (Lang::En, ProviderAddress) => "Provider address",
        (Lang::Zh, ProviderAddress) => "服务商地址",
        (Lang::En, ApiKey) => "API key",
        (Lang::Zh, ApiKey) => "API 密钥",
        (Lang::En, TestProvider) => "Test provider",
        (Lang::Zh, TestProvider) => "测试服务商",
        (Lang::En, Finish) => "Finish set-up",
        (Lang::Zh, Finish) => "完成设置",
        (Lang::En, Trying) => "Trying…",
        (Lang::Zh, Trying) => "正在尝试…",
        (Lang::En, SetUpAlready) => "Kefu is set up already",
        (Lang::Zh, SetUpAlready) => "Kefu 已经设置好了",
        (Lang::En, Starting) => "It is starting.",
        (Lang::Zh, Starting) => "它正在启动。",
        (Lang::En, OpenConsole) => "Open the console and sign in",
        (Lang::Zh, OpenConsole) => "打开控制台并登录",
        (Lang::En, Done) => "Kefu is set up",
        (Lang::Zh, Done) => "Kefu 设置完成",
        (Lang::En, Saved) => "The settings are saved and Kefu is starting.",
        (Lang::Zh, Saved) => "设置已保存，Kefu 正在启动。",
        (Lang::En, PasteSnippet) => "Paste this line into the pages of {0}, before {1}:",
        (Lang::Zh, PasteSnippet) => "请把下面这行代码粘贴到 {0} 的网页中，放在 {1} 之前：",
        (Lang::En, EmbedSnippet) => "Embed snippet",
        (Lang::Zh, EmbedSnippet) => "嵌入代码",
        (Lang::En, ChooseDatabase) => "Choose SQLite, MySQL/MariaDB or PostgreSQL.",
        (Lang::Zh, ChooseDatabase) => "请选择 SQLite、MySQL/MariaDB 或 PostgreSQL。",
        (Lang::En, FillDatabase) => "Fill in the database server's host, user and database name.",
        (Lang::Zh, FillDatabase) => "请填写数据库服务器的主机、用户名和数据库名。",
        (Lang::En, BadPort) => "The port is a number such as 3306.",
        (Lang::Zh, BadPort) => "端口应是数字，例如 3306。",
        (Lang::En, BadHost) => "{0} is not a host name or address.",
        (Lang::Zh, BadHost) => "{0} 不是有效的主机名或地址。",
        (Lang::En, BadUser) => "The user name cannot be used in an address.",
        (Lang::Zh, BadUser) => "这个用户名无法用在数据库地址中。",
        (Lang::En, BadDatabaseUrl) => "The database's address is not valid: {0}",
        (Lang::Zh, BadDatabaseUrl) => "数据库地址无效：{0}",
        (Lang::En, NoFolder) => "Cannot make the database's folder: {0}",
        (Lang::Zh, NoFolder) => "无法创建数据库所在的文件夹：{0}",
        (Lang::En, Unreachable) => {
            "Cannot reach a database server at {0}: is it running, and are the host and port right?"
        }
        (Lang::Zh, Unreachable) => {
            "无法连接到 {0} 上的数据库服务器：它在运行吗？主机和端口填对了吗？"
        }
        (Lang::En, BadCredentials) => {
            "The database server refused user {0}: wrong password (or no such user)."
        }
        (Lang::Zh, BadCredentials) => "数据库服务器拒绝了用户 {0}：密码错误（或没有这个用户）。",
        (Lang::En, NoDatabase) => {
            "There is no database {0} on that server: create it first (CREATE DATABASE {1};)."
        }
        (Lang::Zh, NoDatabase) => "该服务器上没有数据库 {0}：请先创建它（CREATE DATABASE {1};）。",
        (Lang::En, NoPrivilege) => {
            "User {0} may connect but not create tables in {1}: grant it all privileges on that database."
        }
        (Lang::Zh, NoPrivilege) => {
            "用户 {0} 能连接，但不能在 {1} 中建表：请授予它该数据库的全部权限。"
        }
        (Lang::En, DatabaseFailed) => "The database did not work: {0}",
        (Lang::Zh, DatabaseFailed) => "数据库出错：{0}",
        (Lang::En, Connected) => "Connected to {0}.",
        (Lang::Zh, Connected) => "已连接到 {0}。",
        (Lang::En, BadAdminEmail) => {
            "Administrator's e-mail: an e-mail address such as you@example.com."
        }
        (Lang::Zh, BadAdminEmail) => "管理员的电子邮箱：请填写邮箱地址，例如 you@example.com。",
        (Lang::En, ShortAdminPassword) => "Administrator's password: at least {0} characters.",
        (Lang::Zh, ShortAdminPassword) => "管理员的密码：至少 {0} 个字符。",
        (Lang::En, LongAdminPassword) => "Administrator's password: at most {0} bytes.",
        (Lang::Zh, LongAdminPassword) => "管理员的密码：最多 {0} 字节。",
        (Lang::En, BadSiteName) => "Your website's name: 1 to 100 characters.",
        (Lang::Zh, BadSiteName) => "网站名称：1 到 100 个字符。",
        (Lang::En, BadOrigins) => {
            "Your website's addresses: web addresses such as https://www.example.com."
        }
        (Lang::Zh, BadOrigins) => "网站网址：请填写网址，例如 https://www.example.com。",
        (Lang::En, SenderMissing) => "E-mail: fill in the sender too, or leave the relay empty.",
        (Lang::Zh, SenderMissing) => "电子邮件：请同时填写发件人，或者不填中继地址。",
        (Lang::En, RelayMissing) => "Fill in the SMTP relay URL first.",
        (Lang::Zh, RelayMissing) => "请先填写 SMTP 中继地址。",
        (Lang::En, BadSmtpUrl) => "The SMTP relay URL is not valid: {0}",
        (Lang::Zh, BadSmtpUrl) => "SMTP 中继地址无效：{0}",
        (Lang::En, BadSender) => "The sender is not a valid address: {0}",
        (Lang::Zh, BadSender) => "发件人不是有效的邮箱地址：{0}",
        (Lang::En, AdminEmailFirst) => {
            "Fill in the administrator's e-mail first: the test goes there."
        }
        (Lang::Zh, AdminEmailFirst) => "请先填写管理员的电子邮箱：测试邮件会发到那里。",
        (Lang::En, TestMailSubject) => "Kefu test e-mail",
        (Lang::Zh, TestMailSubject) => "Kefu 测试邮件",
        (Lang::En, TestMailBody) => {
            "This is a test e-mail from the Kefu setup wizard. If you can read it, mail works."
        }
        (Lang::Zh, TestMailBody) => {
            "这是 Kefu 设置向导发送的测试邮件。如果您能读到它，说明邮件可以正常发送。"
        }
        (Lang::En, TestMailSent) => "A test e-mail was sent to {0}.",
        (Lang::Zh, TestMailSent) => "测试邮件已发送到 {0}。",
        (Lang::En, MailRefused) => "The mail server did not take it: {0}",
        (Lang::Zh, MailRefused) => "邮件服务器没有接收：{0}",
        (Lang::En, BadTranslation) => "Translation: {0}",
        (Lang::Zh, BadTranslation) => "翻译设置有误：{0}",
        (Lang::En, ChooseProvider) => "Choose a provider first.",
        (Lang::Zh, ChooseProvider) => "请先选择服务商。",
        (Lang::En, ProviderAnswered) => "The provider answered: {0}",
        (Lang::Zh, ProviderAnswered) => "服务商的回答：{0}",
        (Lang::En, ProviderSilent) => "The provider did not answer: {0}",
        (Lang::Zh, ProviderSilent) => "服务商没有回答：{0}",
        (Lang::En, SetupFailed) => "Setting up failed: {0}",
        (Lang::Zh, SetupFailed) => "设置失败：{0}",
    }
}

/// What the wizard says for `text`, with `args` in place of `{0}`, `{1}`…
pub(super) fn fill(lang: Lang, text: Text, args: &[&str]) -> String {
    fill_in(say(lang, text), args)
}

/// `template` with `args` in place of `{0}`, `{1}`… (in one pass: an argument is never read
/// as a template).
pub(super) fn fill_in(template: &str, args: &[&str]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let arg = after.split_once('}').and_then(|(index, tail)| {
            let arg = args.get(index.parse::<usize>().ok()?)?;
            Some((arg, tail))
        });
        match arg {
            Some((arg, tail)) => {
                out.push_str(arg);
                rest = tail;
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_once_and_every_chinese_text_is_chinese() {
        assert_eq!(
            fill_in("{1} at {0}; {x} {9}", &["a {1}", "b"]),
            "b at a {1}; {x} {9}"
        );
        for &text in Text::ALL {
            assert_ne!(say(Lang::En, text), say(Lang::Zh, text), "{text:?}");
            // Chinese text, not an English copy or a stub.
            let chinese = say(Lang::Zh, text)
                .chars()
                .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
            assert!(chinese, "{text:?} has no Chinese: {}", say(Lang::Zh, text));
            let holes = |lang| say(lang, text).matches('{').count();
            assert_eq!(holes(Lang::En), holes(Lang::Zh), "{text:?}");
        }
    }
}
