//! `kefu init`: first-run set-up in the terminal. It asks for (or, with `--non-interactive`,
//! takes from flags) where Kefu listens, the database — checked by connecting to it, which
//! also creates the tables —, the first administrator, the first site (whose embed snippet it
//! prints), and optionally the SMTP relay and the translation provider. The accounts go into
//! the database; the settings are written to the configuration file through
//! [`crate::config_file::edit`] (checked, atomic, the previous file kept as `.bak`).
//!
//! Every answer is checked as the server would check it; a wrong one is asked again
//! interactively and is an error without a terminal, naming the flag to fix.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use store::{DatabaseUrl, Role, Store};

use crate::agents::{AddAgentError, AgentSpec, create_site};
use crate::answers::{check_email, check_origins, check_password, check_site_name};

/// Where Kefu keeps its SQLite database unless told otherwise.
const DEFAULT_DATABASE: &str = "sqlite://data/kefu.db";

/// `kefu init`'s flags: every answer the prompts ask for.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The configuration file to write (edited in place when it exists).
    #[arg(long, env = "KEFU_CONFIG", value_name = "FILE", default_value = crate::config::DEFAULT_CONFIG_FILE)]
    pub config: PathBuf,
    /// Asks nothing: every answer comes from the flags, and a missing or wrong one is an error.
    #[arg(long)]
    pub non_interactive: bool,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR:PORT")]
    pub bind: Option<String>,
    /// The database: `sqlite://data/kefu.db`, `mysql://user:pass@host/db` or
    /// `postgres://user:pass@host/db`.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// The first administrator's sign-in e-mail. The password comes from
    /// `KEFU_ADMIN_PASSWORD` (never a flag, which other users could see), else it is asked
    /// for, or made up and printed once.
    #[arg(long, value_name = "EMAIL")]
    pub admin_email: Option<String>,
    /// The administrator's name, as visitors and colleagues see it.
    #[arg(long, value_name = "NAME")]
    pub admin_name: Option<String>,
    /// The first site's name.
    #[arg(long, value_name = "NAME")]
    pub site_name: Option<String>,
    /// An address the site's pages are served from, e.g. `https://www.example.com` (repeat
    /// for several).
    #[arg(long = "site-origin", value_name = "ORIGIN")]
    pub site_origins: Vec<String>,
    /// The address visitors' browsers reach Kefu at, for the embed snippet (default: the
    /// listening address).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// SMTP relay for e-mail (`smtp://user:pass@host:587?tls=required`); none when absent.
    #[arg(long, value_name = "URL")]
    pub smtp_url: Option<String>,
    /// The sender of Kefu's e-mails.
    #[arg(long, value_name = "ADDRESS")]
    pub email_from: Option<String>,
    /// Translation provider (libretranslate, deepl, google, azure, baidu, openai); none when
    /// absent. Its key comes from `KEFU_TRANSLATION_API_KEY`.
    #[arg(long, value_name = "NAME")]
    pub translation_provider: Option<String>,
    /// Where the translation provider answers.
    #[arg(long, value_name = "URL")]
    pub translation_url: Option<String>,
}

/// Why set-up stopped.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A flag is missing or wrong without a terminal to ask on.
    #[error("{flag}: {message}")]
    Answer { flag: &'static str, message: String },
    /// Reading the terminal failed (or it closed before every question was answered).
    #[error("reading the answers: {0}")]
    Input(#[from] std::io::Error),
    #[error(transparent)]
    Server(#[from] crate::Error),
    /// The database has accounts already: a second set-up would add another administrator and
    /// site behind the operator's back.
    #[error(
        "this database is set up already ({0} accounts): add to it with `kefu agent add`, \
         `kefu site add` and `kefu apikey add`, or point --database-url at an empty one"
    )]
    AlreadySetUp(usize),
}

/// The settings a set-up writes (here, and in the browser's setup wizard).
pub(crate) struct Answers {
    /// Where to listen; `None` keeps what the file says (the wizard does not ask).
    pub bind: Option<SocketAddr>,
    pub database_url: DatabaseUrl,
    pub smtp_url: Option<String>,
    pub email_from: Option<String>,
    pub translation: crate::translate::TranslationSection,
    /// The console's address, when known for sure (`--public-url`; the wizard behind https):
    /// agent requests must then come from it, and cookies are `Secure` under https.
    pub public_url: Option<String>,
}

/// Runs the set-up, reading answers from `input` and talking on `output`.
pub async fn run(
    args: InitArgs,
    input: &mut dyn BufRead,
    output: &mut dyn Write,
) -> Result<(), InitError> {
    let mut ask = Asker {
        interactive: !args.non_interactive,
        input,
        output,
    };
    writeln!(ask.output, "Setting up Kefu in {}.", args.config.display())?;
    let bind: SocketAddr = ask.value(
        "Listen on",
        "--bind",
        args.bind.clone(),
        Some("127.0.0.1:3000"),
        |text| {
            text.parse()
                .map_err(|_| "an address such as 127.0.0.1:3000".into())
        },
    )?;
    let (database_url, store) = ask.database(args.database_url.clone()).await?;
    let accounts = store.all_agents().await.map_err(crate::Error::from)?.len();
    if accounts > 0 {
        return Err(InitError::AlreadySetUp(accounts));
    }
    let admin = ask.admin(&args, store.as_ref()).await?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{bind}"));
    ask.site(&args, store.as_ref(), admin, &public_url).await?;
    let smtp_url = ask.optional(
        "SMTP relay URL (empty: no e-mail)",
        "--smtp-url",
        args.smtp_url.clone(),
        |url| crate::mail::check_relay(url).map(|()| url.to_owned()),
    )?;
    let email_from = match &smtp_url {
        Some(url) => ask.optional(
            "Sender of e-mails",
            "--email-from",
            args.email_from.clone(),
            |from| {
                crate::mail::MailSettings {
                    smtp_url: Some(url.clone()),
                    from: Some(from.to_owned()),
                    notify_leave_messages: false,
                }
                .check()
                .map(|()| from.to_owned())
                .map_err(|(_, message)| message)
            },
        )?,
        None => None,
    };
    let translation = ask.translation(&args)?;
    let answers = Answers {
        bind: Some(bind),
        database_url,
        smtp_url,
        email_from,
        translation,
        public_url: args.public_url.clone(),
    };
    write_config(&args.config, &answers).map_err(crate::Error::from)?;
    writeln!(
        ask.output,
        "Saved {}. Start Kefu with: kefu serve --config {}",
        args.config.display(),
        args.config.display()
    )?;
    Ok(())
}

/// Writes the answers into the configuration file, keeping whatever else it holds.
pub(crate) fn write_config(
    path: &Path,
    answers: &Answers,
) -> Result<(), crate::config::ConfigError> {
    crate::config_file::edit(path, |document| {
        if let Some(bind) = answers.bind {
            document["bind"] = toml_edit::value(bind.to_string());
        }
        if let Some(public_url) = &answers.public_url {
            document["public_url"] = toml_edit::value(public_url.as_str());
        }
        crate::config_file::section(document, "database")["url"] =
            toml_edit::value(answers.database_url.expose_secret());
        for (key, value) in [
            ("smtp_url", &answers.smtp_url),
            ("from", &answers.email_from),
        ] {
            let value = value.as_deref().map(toml_edit::value);
            crate::config_file::set(document, "email", key, value);
        }
        if let Some(provider) = &answers.translation.provider {
            let translation = crate::config_file::section(document, "translation");
            translation["provider"] = toml_edit::value(provider.as_str());
            for (key, value) in [
                ("url", &answers.translation.url),
                ("api_key", &answers.translation.api_key),
            ] {
                if let Some(value) = value {
                    translation[key] = toml_edit::value(value.as_str());
                }
            }
        }
    })
}

/// Asks the questions (or takes the flags' answers without a terminal).
struct Asker<'a> {
    interactive: bool,
    input: &'a mut dyn BufRead,
    output: &'a mut dyn Write,
}

impl Asker<'_> {
    /// One answer: the flag's when given (checked), else asked for (with `default` offered)
    /// until `check` accepts it; without a terminal, the default or an error naming `flag`.
    fn value<T>(
        &mut self,
        question: &str,
        flag: &'static str,
        given: Option<String>,
        default: Option<&str>,
        check: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, InitError> {
        if let Some(given) = given {
            return check(given.trim()).map_err(|message| InitError::Answer { flag, message });
        }
        if !self.interactive {
            return match default {
                Some(default) => {
                    check(default).map_err(|message| InitError::Answer { flag, message })
                }
                None => Err(InitError::Answer {
                    flag,
                    message: "required with --non-interactive".into(),
                }),
            };
        }
        loop {
            match default {
                Some(default) => write!(self.output, "{question} [{default}]: ")?,
                None => write!(self.output, "{question}: ")?,
            }
            self.output.flush()?;
            let line = self.line()?;
            let answer = match (line.as_str(), default) {
                ("", Some(default)) => default,
                (answer, _) => answer,
            };
            match check(answer) {
                Ok(value) => return Ok(value),
                Err(message) => writeln!(self.output, "  {message}")?,
            }
        }
    }

    /// An answer that may be left empty (then `None`).
    fn optional(
        &mut self,
        question: &str,
        flag: &'static str,
        given: Option<String>,
        check: impl Fn(&str) -> Result<String, String>,
    ) -> Result<Option<String>, InitError> {
        self.value(question, flag, given, Some(""), |text| match text {
            "" => Ok(None),
            text => check(text).map(Some),
        })
    }

    /// The next line of input, trimmed; an error when the input has ended.
    fn line(&mut self) -> Result<String, InitError> {
        let mut line = String::new();
        if self.input.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the input ended before every question was answered",
            )
            .into());
        }
        Ok(line.trim().to_owned())
    }

    /// The database, connected to (the tables made); asked again while it cannot be reached.
    async fn database(
        &mut self,
        given: Option<String>,
    ) -> Result<(DatabaseUrl, std::sync::Arc<dyn Store>), InitError> {
        let mut given = given;
        loop {
            let url = self.value(
                "Database URL (sqlite://…, mysql://…, postgres://…)",
                "--database-url",
                given.take(),
                Some(DEFAULT_DATABASE),
                |text| DatabaseUrl::parse(text).map_err(|error| error.to_string()),
            )?;
            create_sqlite_dir(&url)?;
            match store::connect(&url).await {
                Ok(store) => {
                    writeln!(self.output, "  connected to {url}")?;
                    return Ok((url, store));
                }
                Err(error) if self.interactive => writeln!(self.output, "  {error}")?,
                Err(error) => {
                    return Err(InitError::Answer {
                        flag: "--database-url",
                        message: error.to_string(),
                    });
                }
            }
        }
    }

    /// The first administrator (kept as it is when the e-mail already has an account).
    async fn admin(
        &mut self,
        args: &InitArgs,
        store: &dyn Store,
    ) -> Result<store::AgentId, InitError> {
        let email: String = self.value(
            "Administrator's e-mail",
            "--admin-email",
            args.admin_email.clone(),
            None,
            check_email,
        )?;
        if let Some(existing) = store
            .agent_by_email(&email)
            .await
            .map_err(crate::Error::from)?
        {
            writeln!(
                self.output,
                "  {email} already has an account; kept as it is"
            )?;
            return Ok(existing.id);
        }
        let name: String = self.value(
            "Administrator's name",
            "--admin-name",
            args.admin_name.clone(),
            Some("Admin"),
            |text| match text.chars().count() {
                1..=64 => Ok(text.to_owned()),
                _ => Err("1 to 64 characters".into()),
            },
        )?;
        let password = match std::env::var("KEFU_ADMIN_PASSWORD") {
            Ok(password) => Some(password),
            Err(_) if self.interactive => self.value(
                "Password (empty: make one up)",
                "KEFU_ADMIN_PASSWORD",
                None,
                Some(""),
                |text| match text {
                    "" => Ok(None),
                    text => check_password(text)
                        .map(Some)
                        .map_err(|problem| problem.to_string()),
                },
            )?,
            Err(_) => None,
        };
        let spec = AgentSpec {
            email,
            display_name: name,
            role: Role::Admin,
            max_chats: 5,
            site_keys: Vec::new(),
            password,
        };
        let (agent, generated) =
            crate::agents::add(store, spec)
                .await
                .map_err(|error| match error {
                    AddAgentError::Server(error) => InitError::Server(error),
                    other => InitError::Answer {
                        flag: "--admin-email",
                        message: other.to_string(),
                    },
                })?;
        match generated {
            Some(password) => writeln!(
                self.output,
                "  administrator {} added; password: {password}  (shown once)",
                agent.email
            )?,
            None => writeln!(self.output, "  administrator {} added", agent.email)?,
        }
        Ok(agent.id)
    }

    /// The first site, answered by the administrator; prints its snippet.
    async fn site(
        &mut self,
        args: &InitArgs,
        store: &dyn Store,
        admin: store::AgentId,
        public_url: &str,
    ) -> Result<(), InitError> {
        let name: String = self.value(
            "Your website's name",
            "--site-name",
            args.site_name.clone(),
            Some("My website"),
            check_site_name,
        )?;
        let given = (!args.site_origins.is_empty()).then(|| args.site_origins.join(" "));
        let origins: Vec<String> = self.value(
            "Its addresses, e.g. https://www.example.com (several: separate with spaces)",
            "--site-origin",
            given,
            None,
            check_origins,
        )?;
        let site = create_site(store, name, origins, &[admin]).await?;
        writeln!(
            self.output,
            "  site {:?} added. Paste this into its pages:\n\n  {}\n",
            site.name,
            snippet(public_url, &site)
        )?;
        Ok(())
    }

    /// The translation provider, if any (its key from `KEFU_TRANSLATION_API_KEY`).
    fn translation(
        &mut self,
        args: &InitArgs,
    ) -> Result<crate::translate::TranslationSection, InitError> {
        let names = app::pages::admin::translation::PROVIDERS.join(", ");
        let provider = self.optional(
            &format!("Translation provider ({names}; empty: none)"),
            "--translation-provider",
            args.translation_provider.clone(),
            |name| {
                if app::pages::admin::translation::PROVIDERS.contains(&name) {
                    Ok(name.to_owned())
                } else {
                    Err(format!("one of {names}"))
                }
            },
        )?;
        if provider.is_none() {
            return Ok(crate::translate::TranslationSection::default());
        }
        let url = self.optional(
            "Its address (empty: the provider's own)",
            "--translation-url",
            args.translation_url.clone(),
            |url| Ok(url.to_owned()),
        )?;
        let section = crate::translate::TranslationSection {
            provider,
            url,
            api_key: std::env::var("KEFU_TRANSLATION_API_KEY").ok(),
            ..Default::default()
        };
        // Checked only (nothing is sent), against no exceptions: the file being written has
        // no `[outbound] allow` yet.
        crate::wiring::outbound(&crate::outbound::Policy::default())
            .map_err(|error| error.to_string())
            .and_then(|outbound| section.clone().setup(&outbound))
            .map_err(|message| InitError::Answer {
                flag: "--translation-provider",
                message,
            })?;
        Ok(section)
    }
}

/// The embed snippet for `site` served from `base` (`https://chat.example.com`).
pub fn snippet(base: &str, site: &store::Site) -> String {
    format!(
        "<script src=\"{}/widget/widget.js\" data-site=\"{}\" async></script>",
        base.trim_end_matches('/'),
        site.public_key
    )
}

/// Makes the directory of a SQLite database: `init` is where the location is chosen, so unlike
/// `serve` (which refuses, in case of a typo) it creates it.
pub(crate) fn create_sqlite_dir(url: &DatabaseUrl) -> Result<(), std::io::Error> {
    if let Some(dir) = url.sqlite_path().and_then(Path::parent)
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    Ok(())
}
