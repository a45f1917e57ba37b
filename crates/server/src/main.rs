//! # shiplog (the binary)
//!
//! The only crate that knows every adapter: it reads configuration (flags and `SHIPLOG_`
//! environment variables), opens the store, wires the use cases to the HTTP adapter, runs the
//! delivery worker, and offers the `serve`, `migrate` and admin subcommands.
//!
//! Status: the HTTP server and the store are not built yet, so every subcommand explains what it
//! will do and exits with status 2.
//!
//! ## What this crate must never do
//! It never holds business rules or SQL; it only wires. It never prints a secret except the
//! generated master key, once, on first start.

use std::process::ExitCode;

// Keep the adapters linked so the dependency graph the architecture check reads is the real one.
use shiplog_http as _;
use shiplog_signature as _;
use shiplog_store as _;

fn main() -> ExitCode {
    let command = std::env::args().nth(1).unwrap_or_default();
    let plan = match command.as_str() {
        "serve" => {
            "`shiplog serve` will start the HTTP server on 127.0.0.1:8080 with an embedded SQLite \
             database (shiplog.db in the working directory)."
        }
        "migrate" => "`shiplog migrate` will apply the database migrations.",
        _ => "usage: shiplog <serve|migrate>",
    };
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{plan}");
        eprintln!(
            "shiplog {}: the server is not built yet; see README.md for the current state.",
            env!("CARGO_PKG_VERSION")
        );
    }
    ExitCode::from(2)
}
