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
    /// Inspects the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Loads every layer and reports the first wrong key and why.
    Check {
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Prints the effective configuration, secrets masked.
    Show {
        #[command(flatten)]
        overrides: Overrides,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { overrides, demo } => run_serve(&overrides, demo),
        Command::Config { action } => match action {
            ConfigAction::Check { overrides } => Config::load(&overrides)
                .map(|_| {
                    println!("configuration is valid");
                })
                .map_err(server::Error::from),
            ConfigAction::Show { overrides } => Config::load(&overrides)
                .map(|config| {
                    println!("{config:#?}");
                })
                .map_err(server::Error::from),
        },
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
    let config = Config::load(overrides)?;
    server::telemetry::init(config.log_format, &config.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let state = server::build_state(&config).await?;
        tracing::info!(database = %config.database_url, bind = %config.bind, "kefu starting");
        if demo {
            let password = std::env::var("KEFU_DEMO_PASSWORD").ok();
            if let Some(password) = server::demo::ensure(state.store.as_ref(), password).await? {
                println!(
                    "Demo admin created: {} / {password}  (shown once)",
                    server::demo::DEMO_EMAIL
                );
            }
        }
        let listener = server::bind(config.bind)?;
        let addr = listener.local_addr()?;
        println!("Kefu console: http://{addr}/login");
        println!("Demo page with the widget: http://{addr}/demo");
        server::serve(listener, state, server::shutdown_signal()).await
    })
}
