//! # shiplog (the binary)
//!
//! The only crate that knows every adapter: it reads configuration (flags, each also a
//! `SHIPLOG_` environment variable), opens the store, wires the use cases to the HTTP adapter,
//! runs the delivery worker, and offers the `serve`, `migrate` and admin subcommands.
//!
//! Today: `shiplog migrate` applies the database migrations; `shiplog serve` says what it will
//! do and exits with status 2 until the HTTP server exists.
//!
//! ## What this crate must never do
//! It never holds business rules or SQL; it only wires. It never prints a secret except the
//! generated master key, once, on first start, and never prints a database password.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shiplog_store::{DatabaseUrl, migrations};

// Linked now so the dependency graph the architecture check reads is the real one.
use shiplog_http as _;
use shiplog_signature as _;

/// shiplog: a self-hosted deployment tracking server.
#[derive(Debug, Parser)]
#[command(name = "shiplog", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (not built yet: says what it will do).
    Serve {
        /// Database: a file path or sqlite://path for embedded SQLite, postgres://… for PostgreSQL.
        #[arg(long, env = "SHIPLOG_DATABASE_URL", default_value = "shiplog.db")]
        database_url: String,
        /// Address to listen on.
        #[arg(long, env = "SHIPLOG_BIND", default_value = "127.0.0.1:8080")]
        bind: String,
    },
    /// Apply pending database migrations and exit (SQLite also migrates on start).
    Migrate {
        /// Database: a file path or sqlite://path for embedded SQLite, postgres://… for PostgreSQL.
        #[arg(long, env = "SHIPLOG_DATABASE_URL", default_value = "shiplog.db")]
        database_url: String,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Migrate { database_url } => migrate(&database_url),
        Command::Serve { database_url, bind } => {
            let shown = DatabaseUrl::parse(&database_url)
                .map(|url| url.to_string())
                .unwrap_or_else(|e| e.to_string());
            eprintln!(
                "shiplog {}: the HTTP server is not built yet. `shiplog serve` will listen on {bind} \
                 with the database {shown}; see README.md for the current state.",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::from(2)
        }
    }
}

fn migrate(database_url: &str) -> ExitCode {
    let url = match DatabaseUrl::parse(database_url) {
        Ok(url) => url,
        Err(error) => {
            eprintln!("shiplog migrate: {error}");
            return ExitCode::from(2);
        }
    };
    match migrations::migrate(&url) {
        Ok(applied) if applied.is_empty() => {
            println!("{url}: schema up to date, nothing to apply");
            ExitCode::SUCCESS
        }
        Ok(applied) => {
            for version in &applied {
                println!("{url}: applied {version}");
            }
            println!("{url}: {} migration(s) applied", applied.len());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("shiplog migrate: {error}");
            ExitCode::FAILURE
        }
    }
}
