//! The `kefu` command: parses the command line, sets up logging and calls the library.

use clap::{Parser, Subcommand};
use server::config::{Config, Overrides};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "kefu",
    version,
    about = "Self-hosted live chat and customer service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server.
    Serve {
        #[command(flatten)]
        overrides: Overrides,
        /// Creates a demo site and admin account on first start (for trying Kefu locally).
        #[arg(long)]
        demo: bool,
    },
    /// Manages agent accounts.
    Agent {
        #[command(subcommand)]
        action: AgentAction,
    },
    /// Manages teams (transfer targets).
    Team {
        #[command(subcommand)]
        action: TeamAction,
    },
    /// Manages sites (websites that embed the widget).
    Site {
        #[command(subcommand)]
        action: SiteAction,
    },
    /// Manages API keys (for `/api/v1`).
    Apikey {
        #[command(subcommand)]
        action: ApikeyAction,
    },
    /// Inspects the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Sets Kefu up: database, first administrator and site, e-mail and translation;
    /// writes the configuration file. Asks in the terminal, or takes flags only with
    /// `--non-interactive`.
    Init(server::init::InitArgs),
    /// Writes a backup of the whole install to a new, self-contained SQLite file: one
    /// consistent snapshot of the database, taken while Kefu keeps running, checked against
    /// it (row counts and checksums) before the file appears under its name.
    Backup {
        /// The backup file to create (or, with `--verify`, to check).
        file: std::path::PathBuf,
        /// Checks an existing backup file instead: whole, Kefu's schema, and every table
        /// matching the counts and checksums recorded when it was taken.
        #[arg(long)]
        verify: bool,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Restores a backup file into the configured database, which must be empty. A file
    /// that is not a complete Kefu backup is refused before the database is touched.
    Restore {
        /// The backup file (made by `kefu backup`).
        file: std::path::PathBuf,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Looks after the database.
    Db {
        #[command(subcommand)]
        action: DbAction,
    },
}

#[derive(Subcommand)]
enum DbAction {
    /// Brings the database's schema up to this version's (`serve` does it too, on start) and
    /// prints where it stands. Refuses a database a newer Kefu upgraded. Migrations only add:
    /// none removes data.
    Upgrade {
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Moves the whole install (every table, files included) from the configured database
    /// into another, empty one, e.g. from SQLite to MySQL/MariaDB or PostgreSQL, and checks
    /// every table arrived (row counts and checksums). Run it again after an interruption to
    /// continue. Stop Kefu first, then point `database.url` at the new database.
    MigrateTo {
        /// The database to move into: `mysql://user:pass@host/db` or `postgres://…`.
        url: String,
        #[command(flatten)]
        overrides: Overrides,
    },
}

#[derive(Subcommand)]
enum AgentAction {
    /// Adds an agent. The password comes from `KEFU_AGENT_PASSWORD`, or a random one is printed.
    Add {
        #[command(flatten)]
        overrides: Overrides,
        /// Sign-in e-mail.
        #[arg(long)]
        email: String,
        /// The name visitors and colleagues see.
        #[arg(long)]
        name: String,
        /// The public key of a site they answer (repeat for several).
        #[arg(long = "site", required = true)]
        sites: Vec<String>,
        /// Chats assigned to them at once.
        #[arg(long, default_value_t = 5)]
        max_chats: i32,
        /// Makes them an admin.
        #[arg(long)]
        admin: bool,
    },
    /// Sets a new password for an agent and signs them out everywhere. The password comes from
    /// `KEFU_NEW_PASSWORD` (8 characters or more), or a random one is printed once.
    Passwd {
        #[command(flatten)]
        overrides: Overrides,
        /// The agent's sign-in e-mail.
        email: String,
    },
}

#[derive(Subcommand)]
enum TeamAction {
    /// Adds a team of a site's agents; conversations can then be transferred to it.
    Add {
        #[command(flatten)]
        overrides: Overrides,
        /// The public key of the site.
        #[arg(long)]
        site: String,
        /// The team's name, as agents see it.
        #[arg(long)]
        name: String,
        /// The e-mail of an agent of the site in the team (repeat for several).
        #[arg(long = "member")]
        members: Vec<String>,
    },
}

#[derive(Subcommand)]
enum SiteAction {
    /// Adds a site with a new key and prints its embed snippet.
    Add {
        #[command(flatten)]
        overrides: Overrides,
        /// The site's name, as agents see it.
        #[arg(long)]
        name: String,
        /// A web address whose pages may embed the widget, e.g. https://www.example.com
        /// (repeat for several).
        #[arg(long = "origin", required = true)]
        origins: Vec<String>,
        /// The e-mail of an agent who answers it (repeat for several).
        #[arg(long = "agent")]
        agents: Vec<String>,
    },
    /// Lists the sites: key, name, allowed origins.
    List {
        #[command(flatten)]
        overrides: Overrides,
    },
}

#[derive(Subcommand)]
enum ApikeyAction {
    /// Makes an API key for an administrator and prints it (shown once).
    Add {
        #[command(flatten)]
        overrides: Overrides,
        /// The administrator's e-mail; the key acts as them.
        #[arg(long)]
        admin: String,
        /// What the key is for ("CRM sync").
        #[arg(long)]
        name: String,
    },
    /// Revokes an administrator's API key by its id (printed by `add`): it stops at once.
    Revoke {
        #[command(flatten)]
        overrides: Overrides,
        /// The administrator's e-mail.
        #[arg(long)]
        admin: String,
        /// The key's id.
        id: i64,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Loads every layer and reports the first wrong key and why.
    Check {
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Prints every key, its value (secrets masked) and where it came from: the file, a
    /// `KEFU_*` variable, a flag, or the built-in default.
    Show {
        #[command(flatten)]
        overrides: Overrides,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { overrides, demo } => run_serve(&overrides, demo),
        Command::Agent {
            action:
                AgentAction::Add {
                    overrides,
                    email,
                    name,
                    sites,
                    max_chats,
                    admin,
                },
        } => run_add_agent(
            &overrides,
            server::agents::AgentSpec {
                email,
                display_name: name,
                role: if admin {
                    store::Role::Admin
                } else {
                    store::Role::Agent
                },
                max_chats,
                site_keys: sites,
                password: std::env::var("KEFU_AGENT_PASSWORD").ok(),
            },
        ),
        Command::Agent {
            action: AgentAction::Passwd { overrides, email },
        } => with_store(&overrides, |store| async move {
            let password = std::env::var("KEFU_NEW_PASSWORD").ok();
            let (agent, generated) =
                server::agents::set_password(store.as_ref(), &email, password).await?;
            match generated {
                Some(password) => println!(
                    "New password for {}: {password}  (shown once); signed out everywhere",
                    agent.email
                ),
                None => println!(
                    "New password set for {}; signed out everywhere",
                    agent.email
                ),
            }
            Ok(())
        }),
        Command::Team {
            action:
                TeamAction::Add {
                    overrides,
                    site,
                    name,
                    members,
                },
        } => run_add_team(&overrides, &site, &name, &members),
        Command::Site {
            action:
                SiteAction::Add {
                    overrides,
                    name,
                    origins,
                    agents,
                },
        } => with_store(&overrides, |store| async move {
            let site = server::agents::add_site(store.as_ref(), &name, &origins, &agents).await?;
            Ok(site)
        })
        .and_then(|site| {
            let config = Config::load(&overrides)?;
            let base = config
                .edge
                .public_url
                .as_ref()
                .map_or_else(|| format!("http://{}", config.bind), |url| url.to_string());
            println!(
                "Site {:?} added with key {}. Paste this into its pages:\n\n  {}",
                site.name,
                site.public_key,
                server::init::snippet(&base, &site)
            );
            Ok(())
        }),
        Command::Site {
            action: SiteAction::List { overrides },
        } => with_store(&overrides, |store| async move {
            for site in store.all_sites().await? {
                println!(
                    "{}\t{}\t{}",
                    site.public_key,
                    site.name,
                    site.allowed_origins.join(" ")
                );
            }
            Ok(())
        }),
        Command::Apikey {
            action:
                ApikeyAction::Add {
                    overrides,
                    admin,
                    name,
                },
        } => with_store(&overrides, |store| async move {
            let (key, id) = server::agents::add_api_key(store.as_ref(), &admin, &name).await?;
            println!("API key {id} for {admin}: {key}  (shown once)");
            Ok(())
        }),
        Command::Apikey {
            action:
                ApikeyAction::Revoke {
                    overrides,
                    admin,
                    id,
                },
        } => with_store(&overrides, |store| async move {
            server::agents::revoke_api_key(store.as_ref(), &admin, id).await?;
            println!("API key {id} of {admin} revoked");
            Ok(())
        }),
        Command::Config { action } => match action {
            ConfigAction::Check { overrides } => Config::load(&overrides)
                .and_then(|config| server::wiring::services(&config))
                .map(|_| {
                    println!("configuration is valid");
                })
                .map_err(server::Error::from),
            ConfigAction::Show { overrides } => Config::show(&overrides)
                .map(|shown| print!("{shown}"))
                .map_err(server::Error::from),
        },
        Command::Init(args) => run_init(args),
        Command::Backup {
            file, verify: true, ..
        } => run_verify(&file),
        Command::Backup {
            file, overrides, ..
        } => run_backup(&overrides, &file),
        Command::Restore { file, overrides } => run_restore(&overrides, &file),
        Command::Db {
            action: DbAction::MigrateTo { url, overrides },
        } => run_migrate_to(&overrides, &url),
        Command::Db {
            action: DbAction::Upgrade { overrides },
        } => with_store(&overrides, |store| async move {
            println!(
                "database schema is up to date (migration {})",
                store.schema_version().await?
            );
            Ok(())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kefu: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_serve(overrides: &Overrides, demo: bool) -> server::Result<()> {
    // Before the configuration: the default connection caps are worked out from it.
    let (was, open_files) = server::http_server::raise_open_file_limit();
    let config = Config::load(overrides)?;
    server::telemetry::init(config.log_format, &config.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut config = server::config::Config { demo, ..config };
        // The address first: a busy port stops Kefu before it changes or says anything (a demo
        // password printed by a server that then cannot start would be lost).
        let mut listener = server::bind(config.bind)?;
        let addr = listener.local_addr()?;
        let mut store = store::connect(&config.database_url).await?;
        if !demo && server::setup::needed(store.as_ref()).await? {
            match server::setup::serve(listener, config, overrides, server::shutdown_signal())
                .await?
            {
                // Set up: Kefu starts with what the wizard wrote, on the same address (the
                // port the wizard had, when the system chose it).
                Some(written) => {
                    config = server::config::Config {
                        bind: addr,
                        demo,
                        ..written
                    };
                    store = store::connect(&config.database_url).await?;
                    listener = server::bind(addr)?;
                }
                None => return Ok(()),
            }
        }
        let state = server::wiring::build_state(&config, store).await?;
        tracing::info!(
            database = %config.database_url,
            bind = %config.bind,
            open_files,
            raised_from = was,
            realtime_connections = config.max_connections,
            "kefu starting (open-file limit)"
        );
        if demo {
            let password = std::env::var("KEFU_DEMO_PASSWORD").ok();
            let email = server::web::demo::DEMO_EMAIL;
            match server::web::demo::ensure(state.store.as_ref(), password).await? {
                Some(password) => server::announce(&format!(
                    "Demo admin created: {email} / {password}  (shown once)"
                )),
                None => server::announce(&format!(
                    "Demo admin: {email} (exists already; for a new password: kefu agent passwd {email})"
                )),
            }
        }
        server::announce(&format!("Kefu console: http://{addr}/login"));
        if demo {
            server::announce(&format!("Demo page with the widget: http://{addr}/demo"));
        }
        server::serve(listener, state, server::shutdown_signal()).await
    })
}

fn run_init(args: server::init::InitArgs) -> server::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stdin = std::io::stdin();
    runtime
        .block_on(server::init::run(
            args,
            &mut stdin.lock(),
            &mut std::io::stdout(),
        ))
        .map_err(|error| match error {
            server::init::InitError::Server(error) => error,
            other => server::Error::Init(other.to_string()),
        })
}

fn run_backup(overrides: &Overrides, file: &std::path::Path) -> server::Result<()> {
    with_store(overrides, |source| async move {
        let moved = server::backup::backup(source, file).await?;
        report(&moved);
        println!("backup written to {}", file.display());
        Ok(())
    })
}

fn run_verify(file: &std::path::Path) -> server::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let moved = server::backup::verify(file).await?;
        report(&moved);
        println!("backup {} is complete", file.display());
        Ok(())
    })
}

fn run_restore(overrides: &Overrides, file: &std::path::Path) -> server::Result<()> {
    let target = Config::load(overrides)?.database_url;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let moved = server::backup::restore(file, &target).await?;
        report(&moved);
        println!("restored into {target}");
        Ok(())
    })
}

/// Prints each table's rows and checksum.
fn report(moved: &[server::migrate_to::Moved]) {
    for table in moved {
        println!(
            "{:>22} {:>9} rows  checksum {}",
            table.table, table.rows, table.checksum
        );
    }
}

fn run_migrate_to(overrides: &Overrides, url: &str) -> server::Result<()> {
    let config = Config::load(overrides)?;
    let target = store::DatabaseUrl::parse(url)?;
    let source_url = config.database_url.clone();
    with_store(overrides, |source| async move {
        let moved = server::migrate_to::run(source, &source_url, &target)
            .await
            .map_err(|error| server::Error::Migrate(error.to_string()))?;
        for table in &moved {
            println!(
                "{:>22} {:>9} rows  checksum {}",
                table.table, table.rows, table.checksum
            );
        }
        println!(
            "every table arrived in {target}; stop Kefu, set database.url to it, and start Kefu again"
        );
        Ok(())
    })
}

/// Runs a one-shot command's `job` against the configured database.
fn with_store<F, Fut, T>(overrides: &Overrides, job: F) -> server::Result<T>
where
    F: FnOnce(std::sync::Arc<dyn store::Store>) -> Fut,
    Fut: std::future::Future<Output = server::Result<T>>,
{
    let config = Config::load(overrides)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move { job(store::connect(&config.database_url).await?).await })
}

fn run_add_agent(overrides: &Overrides, spec: server::agents::AgentSpec) -> server::Result<()> {
    with_store(overrides, |store| async move {
        let (agent, generated) = server::agents::add(store.as_ref(), spec).await?;
        match generated {
            Some(password) => println!(
                "Agent {} added; password: {password}  (shown once)",
                agent.email
            ),
            None => println!("Agent {} added", agent.email),
        }
        Ok(())
    })
}

fn run_add_team(
    overrides: &Overrides,
    site: &str,
    name: &str,
    members: &[String],
) -> server::Result<()> {
    with_store(overrides, |store| async move {
        let team = server::agents::add_team(store.as_ref(), site, name, members).await?;
        println!("Team {:?} added (id {})", team.name, team.id);
        Ok(())
    })
}
