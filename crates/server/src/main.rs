//! # shiplog (the binary)
//!
//! The only crate that knows every adapter: it reads configuration (flags, each also a
//! `SHIPLOG_` environment variable), opens the store, wires the use cases to the HTTP adapter,
//! and offers the `serve`, `migrate` and `admin` subcommands.
//!
//! `shiplog serve` runs the HTTP server and the outgoing-hook delivery worker; `shiplog migrate`
//! applies the database migrations and exits.
//!
//! ## What this crate must never do
//! It never holds business rules or SQL; it only wires. It never prints a secret except the
//! generated master key, once, on first start, and never prints a database password.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shiplog_store::{DatabaseUrl, migrations};

use shiplog_server::{Config, HookOptions, start};

mod admin;
mod import_command;
mod notify_command;

/// shiplog: a self-hosted deployment tracking server.
///
/// CI/CD pipelines send their build, test and deploy events to shiplog, through its native API
/// or the Clienwork, Hivel and Envtracker compatible APIs. shiplog keeps what runs in which
/// environment, links deployments to the change requests named in commit messages, computes the
/// DORA metrics, and notifies other systems through signed, retried outgoing webhooks.
///
/// Start with `shiplog serve` (embedded SQLite in ./shiplog.db; it prints a generated master key
/// once), then create a workspace and its keys with the API or `shiplog admin`. Every flag is
/// also a SHIPLOG_ environment variable.
#[derive(Debug, Parser)]
#[command(name = "shiplog", version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("SHIPLOG_COMMIT"), ")"))]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The database every command that opens one names.
#[derive(Debug, clap::Args)]
struct Database {
    /// Database: a file path or sqlite://path for embedded SQLite, postgres://… for PostgreSQL.
    #[arg(
        long = "database-url",
        value_name = "DATABASE_URL",
        env = "SHIPLOG_DATABASE_URL",
        default_value = "shiplog.db",
        hide_env_values = true
    )]
    url: String,
}

/// HTTPS served directly, for `serve` and `health`.
#[derive(Debug, clap::Args)]
struct Tls {
    /// Serve HTTPS with this PEM certificate chain (leaf first); SIGHUP reads it again.
    #[arg(long, env = "SHIPLOG_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of that certificate; SIGHUP reads it again.
    #[arg(long, env = "SHIPLOG_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

/// How people sign in to the dashboard (docs/sso.md).
#[derive(Debug, clap::Args)]
struct SignIn {
    /// The OpenID provider's issuer URL: people sign in through it (with the settings below).
    #[arg(long, env = "SHIPLOG_OIDC_ISSUER", requires_all = ["oidc_client_id", "oidc_roles"])]
    oidc_issuer: Option<String>,
    /// The client id shiplog is registered under at the provider.
    #[arg(long, env = "SHIPLOG_OIDC_CLIENT_ID")]
    oidc_client_id: Option<String>,
    /// The client's secret (prefer the file).
    #[arg(
        long,
        env = "SHIPLOG_OIDC_CLIENT_SECRET",
        hide_env_values = true,
        conflicts_with = "oidc_client_secret_file"
    )]
    oidc_client_secret: Option<String>,
    /// A file holding the client's secret.
    #[arg(long, env = "SHIPLOG_OIDC_CLIENT_SECRET_FILE")]
    oidc_client_secret_file: Option<std::path::PathBuf>,
    /// Groups to workspaces and roles: `group=workspace:role`, comma-separated; group `*`
    /// matches everyone (e.g. `platform=acme:admin,engineers=acme:read`).
    #[arg(long, env = "SHIPLOG_OIDC_ROLES")]
    oidc_roles: Option<String>,
    /// The ID token claim that lists a person's groups.
    #[arg(long, env = "SHIPLOG_OIDC_GROUPS_CLAIM", default_value = "groups")]
    oidc_groups_claim: String,
    /// Scopes asked for besides `openid`, space-separated.
    #[arg(
        long,
        env = "SHIPLOG_OIDC_SCOPES",
        default_value = "profile email groups"
    )]
    oidc_scopes: String,
    /// Minutes a person's role is used before their groups are read again (1 to 15).
    #[arg(long, env = "SHIPLOG_OIDC_REFRESH_MINUTES", default_value_t = 10, value_parser = clap::value_parser!(i64).range(1..=15))]
    oidc_refresh_minutes: i64,
    /// Do not take API keys on the sign-in form (people sign in through the provider only).
    #[arg(long, env = "SHIPLOG_NO_KEY_SIGN_IN", requires = "oidc_issuer")]
    no_key_sign_in: bool,
}

impl SignIn {
    /// The server's sign-in options; the provider's callback is under `public_url`.
    fn options(self, public_url: Option<&str>) -> Result<shiplog_server::SignInOptions, String> {
        let key_sign_in = !self.no_key_sign_in;
        let Some(issuer) = self.oidc_issuer else {
            return Ok(shiplog_server::SignInOptions {
                sso: None,
                key_sign_in,
            });
        };
        let public_url = public_url.ok_or(
            "SHIPLOG_OIDC_ISSUER needs SHIPLOG_PUBLIC_URL: the provider sends people back to \
             <SHIPLOG_PUBLIC_URL>/sign-in/callback",
        )?;
        let client_secret = match (self.oidc_client_secret, self.oidc_client_secret_file) {
            (Some(secret), _) => Some(secret),
            (None, Some(path)) => Some(
                std::fs::read_to_string(&path)
                    .map_err(|e| {
                        format!("SHIPLOG_OIDC_CLIENT_SECRET_FILE {}: {e}", path.display())
                    })?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        let roles = shiplog_domain::sso::RoleRules::parse(self.oidc_roles.as_deref().unwrap_or(""))
            .map_err(|e| format!("SHIPLOG_OIDC_ROLES: {e}"))?;
        let mut scopes: Vec<String> = vec![];
        for scope in self.oidc_scopes.split_whitespace() {
            if scope != "openid" && !scopes.iter().any(|s| s == scope) {
                scopes.push(scope.to_owned());
            }
        }
        Ok(shiplog_server::SignInOptions {
            sso: Some(shiplog_server::SsoOptions {
                provider: shiplog_oidc::OidcSettings {
                    issuer,
                    client_id: self.oidc_client_id.unwrap_or_default(),
                    client_secret,
                    redirect_url: format!("{}/sign-in/callback", public_url.trim_end_matches('/')),
                    scopes,
                    groups_claim: self.oidc_groups_claim,
                },
                roles,
                refresh_minutes: self.oidc_refresh_minutes,
            }),
            key_sign_in,
        })
    }
}

impl Tls {
    fn files(self) -> Option<shiplog_server::tls::TlsFiles> {
        match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(shiplog_server::tls::TlsFiles { cert, key }),
            _ => None,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server until interrupted (SIGINT/SIGTERM finish in-flight requests first).
    Serve {
        #[command(flatten)]
        database: Database,
        /// Address to listen on.
        #[arg(long, env = "SHIPLOG_BIND", default_value = "127.0.0.1:8080")]
        bind: String,
        /// The master key (at least 16 characters). Unset: the stored one is kept, or one is
        /// generated on first start and printed once.
        #[arg(long, env = "SHIPLOG_ADMIN_KEY", hide_env_values = true)]
        admin_key: Option<String>,
        /// Do not apply pending PostgreSQL migrations on start (then run `shiplog migrate`).
        #[arg(long, env = "SHIPLOG_NO_MIGRATE_ON_START")]
        no_migrate_on_start: bool,
        /// HTTP worker threads.
        #[arg(long, env = "SHIPLOG_WORKERS", default_value_t = 2)]
        workers: usize,
        /// Let hooks target loopback, private and link-local addresses (closed networks only).
        #[arg(long, env = "SHIPLOG_HOOKS_ALLOW_PRIVATE_TARGETS")]
        hooks_allow_private_targets: bool,
        /// Do not send hook deliveries from this process (another server sends them).
        #[arg(long, env = "SHIPLOG_NO_HOOK_WORKER")]
        no_hook_worker: bool,
        /// The address people and clients reach this server at: links in hook deliveries
        /// point to its dashboard pages (default: http:// and the bind address), the
        /// dashboard's snippets name it (default: the address the browser used), and https
        /// makes the session cookie Secure.
        #[arg(long, env = "SHIPLOG_PUBLIC_URL")]
        public_url: Option<String>,
        /// A bearer token `/metrics` requires (`Authorization: Bearer …`); unset: open.
        #[arg(long, env = "SHIPLOG_METRICS_TOKEN", hide_env_values = true)]
        metrics_token: Option<String>,
        #[command(flatten)]
        tls: Tls,
        #[command(flatten)]
        sign_in: SignIn,
        /// Remove pipeline events, finished hook deliveries, integrations' logs, expired
        /// sessions and audit entries older than this many days, in the background; unset:
        /// keep everything. Deployments stay unless --deployment-retention-days says otherwise.
        #[arg(long, env = "SHIPLOG_RETENTION_DAYS", value_parser = clap::value_parser!(u32).range(1..=36_500))]
        retention_days: Option<u32>,
        /// Remove deployments finished longer ago than this many days too (with their events,
        /// references and deliveries; DORA figures then lose them). Needs --retention-days.
        #[arg(long, env = "SHIPLOG_DEPLOYMENT_RETENTION_DAYS", requires = "retention_days", value_parser = clap::value_parser!(u32).range(1..=36_500))]
        deployment_retention_days: Option<u32>,
        /// Log level: error, warn, info, debug or trace.
        #[arg(long, env = "SHIPLOG_LOG", default_value = "info")]
        log: String,
        /// Log format: `text` for people, `json` for log collectors.
        #[arg(long, env = "SHIPLOG_LOG_FORMAT", default_value = "text")]
        log_format: String,
    },
    /// Ask the server listening on the bind address whether it is ready (`/readyz`): exit 0
    /// if so, 1 if not. The container image's health check.
    Health {
        /// The address the server listens on (as `serve --bind`; 0.0.0.0 asks 127.0.0.1).
        #[arg(long, env = "SHIPLOG_BIND", default_value = "127.0.0.1:8080")]
        bind: String,
        #[command(flatten)]
        tls: Tls,
    },
    /// Administration from the command line: workspaces, keys, projects, teams.
    Admin {
        #[command(flatten)]
        access: admin::Access,
        #[command(subcommand)]
        action: admin::Admin,
    },
    /// Report a deploy (or a build or test) to shiplog from any CI; `--` wraps a command.
    Notify(Box<notify_command::Notify>),
    /// Import past deployments from GitHub, GitLab or an NDJSON file.
    Import {
        #[command(subcommand)]
        source: import_command::Import,
    },
    /// Print a completion script for a shell: `shiplog completions bash > /etc/bash_completion.d/shiplog`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Apply pending database migrations and exit (SQLite also migrates on start).
    Migrate {
        /// List the pending migrations and what each will change, and write nothing.
        #[arg(long)]
        plan: bool,
        #[command(flatten)]
        database: Database,
    },
    /// Copy an SQLite database into a new file while the server keeps running, and check the
    /// copy (PostgreSQL: use pg_dump, which this explains).
    Backup {
        #[command(flatten)]
        database: Database,
        /// The backup file to write; it must not exist.
        #[arg(long)]
        to: std::path::PathBuf,
    },
    /// Put a checked backup in place of an SQLite database. Stop the server first.
    Restore {
        #[command(flatten)]
        database: Database,
        /// The backup file (made by `shiplog backup`).
        #[arg(long)]
        from: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Migrate {
            database,
            plan: true,
        } => migrate_plan(&database.url),
        Command::Migrate {
            database,
            plan: false,
        } => migrate(&database.url),
        Command::Backup { database, to } => backup(&database.url, &to),
        Command::Restore { database, from } => restore(&database.url, &from),
        Command::Admin { access, action } => admin::admin(access, action),
        Command::Health { bind, tls } => health(&bind, tls.files().is_some()),
        Command::Notify(args) => notify_command::notify(*args),
        Command::Import { source } => import_command::import(source),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "shiplog", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Serve {
            database,
            bind,
            admin_key,
            no_migrate_on_start,
            workers,
            log,
            log_format,
            hooks_allow_private_targets,
            no_hook_worker,
            public_url,
            metrics_token,
            tls,
            sign_in,
            retention_days,
            deployment_retention_days,
        } => {
            if let Err(message) = init_logging(&log, &log_format) {
                eprintln!("shiplog serve: {message}");
                return ExitCode::from(2);
            }
            let public_url_for_sign_in = public_url.clone();
            serve(Config {
                database_url: database.url,
                bind,
                admin_key,
                migrate_on_start: !no_migrate_on_start,
                workers,
                hooks: HookOptions {
                    allow_private_targets: hooks_allow_private_targets,
                    public_url,
                    worker: !no_hook_worker,
                    ..HookOptions::default()
                },
                metrics_token: metrics_token.filter(|t| !t.trim().is_empty()),
                tls: tls.files(),
                retention: retention_days.map(|days| shiplog_app::lifecycle::Retention {
                    days,
                    deployment_days: deployment_retention_days,
                    batch: shiplog_server::RETENTION_BATCH,
                }),
                sign_in: match sign_in.options(public_url_for_sign_in.as_deref()) {
                    Ok(options) => options,
                    Err(message) => {
                        eprintln!("shiplog serve: {message}");
                        return ExitCode::from(2);
                    }
                },
            })
        }
    }
}

/// Logs to standard error, as text or JSON lines, at `level` and above.
fn init_logging(level: &str, format: &str) -> Result<(), String> {
    let level: tracing::Level = level.parse().map_err(|_| {
        format!("unknown log level {level:?}: use error, warn, info, debug or trace")
    })?;
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        "text" => builder.try_init(),
        "json" => builder.json().try_init(),
        other => return Err(format!("unknown log format {other:?}: use text or json")),
    }
    .map_err(|e| format!("cannot start logging: {e}"))
}

fn serve(config: Config) -> ExitCode {
    let shown = DatabaseUrl::parse(&config.database_url)
        .map(|url| url.to_string())
        .unwrap_or_else(|e| e.to_string());
    let result = actix_web::rt::System::new().block_on(async move {
        let running = start(config).await?;
        if let Some(key) = &running.generated_master_key {
            println!(
                "No master key was configured, so shiplog generated one. It is shown only now; \
                 shiplog keeps only its hash:\n\n    {}\n\nSet SHIPLOG_ADMIN_KEY to choose your own.",
                key.reveal()
            );
        }
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            commit = env!("SHIPLOG_COMMIT"),
            address = %running.address,
            database = %shown,
            "shiplog listening"
        );
        running
            .server
            .await
            .map_err(|e| shiplog_server::StartError(e.to_string()))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shiplog serve: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `shiplog health`: GET /readyz of the server at `bind`, on loopback when it listens on every
/// address. Over HTTPS the certificate is not checked: it names the public host, and this asks
/// the server on the same machine.
fn health(bind: &str, https: bool) -> ExitCode {
    let address = match bind.parse::<std::net::SocketAddr>() {
        Ok(address) if address.ip().is_unspecified() => {
            let loopback: std::net::IpAddr = if address.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            };
            std::net::SocketAddr::new(loopback, address.port()).to_string()
        }
        _ => bind.to_owned(),
    };
    let url = format!(
        "{}://{address}/readyz",
        if https { "https" } else { "http" }
    );
    let asked = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|runtime| {
            runtime.block_on(async {
                let client = reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(4))
                    .danger_accept_invalid_certs(https)
                    .build()
                    .map_err(|e| e.to_string())?;
                let response = client.get(&url).send().await.map_err(|e| e.to_string())?;
                Ok(response.status())
            })
        });
    match asked {
        Ok(status) if status.is_success() => {
            println!("{url}: ready");
            ExitCode::SUCCESS
        }
        Ok(status) => {
            eprintln!("shiplog health: {url} answered {status}: not ready");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("shiplog health: cannot ask {url}: {error}");
            ExitCode::FAILURE
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
            for migration in &applied {
                println!("{url}: applied {migration}");
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

fn migrate_plan(database_url: &str) -> ExitCode {
    let planned = DatabaseUrl::parse(database_url)
        .map_err(|e| e.to_string())
        .and_then(|url| {
            let mut conn = url.connect().map_err(|e| e.to_string())?;
            migrations::refuse_unknown(&mut conn)?;
            migrations::plan(&mut conn).map(|planned| (url, planned))
        });
    match planned {
        Ok((url, planned)) if planned.is_empty() => {
            println!("{url}: schema up to date, nothing to apply");
            ExitCode::SUCCESS
        }
        Ok((url, planned)) => {
            println!(
                "{url}: {} pending migration(s); nothing was written (run `shiplog migrate`):",
                planned.len()
            );
            for migration in planned {
                let rows = migration
                    .rewrites
                    .map(|(table, n)| format!(" [{table}: {n} rows now]"))
                    .unwrap_or_default();
                println!("  {}: {}{rows}", migration.name, migration.what);
                for detail in migration.details {
                    println!("    {detail}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("shiplog migrate --plan: {message}");
            ExitCode::FAILURE
        }
    }
}

fn backup(database_url: &str, to: &std::path::Path) -> ExitCode {
    let started = std::time::Instant::now();
    let outcome = DatabaseUrl::parse(database_url)
        .map_err(|e| e.to_string())
        .and_then(|url| shiplog_store::backup::backup(&url, to));
    match outcome {
        Ok(bytes) => {
            println!(
                "backed up into {} ({bytes} bytes, integrity check ok) in {:.1} s",
                to.display(),
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("shiplog backup: {message}");
            ExitCode::FAILURE
        }
    }
}

fn restore(database_url: &str, from: &std::path::Path) -> ExitCode {
    let outcome = DatabaseUrl::parse(database_url)
        .map_err(|e| e.to_string())
        .and_then(|url| shiplog_store::backup::restore(from, &url).map(|()| url));
    match outcome {
        Ok(url) => {
            println!("restored {} into {url}", from.display());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("shiplog restore: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use clap::CommandFactory;

    use super::Cli;

    /// clap's own checks of every subcommand (unique argument ids, valid defaults), which it
    /// otherwise runs only when that subcommand is parsed.
    #[test]
    fn the_command_line_passes_clap_checks() {
        Cli::command().debug_assert();
    }

    fn variables(command: &clap::Command, into: &mut BTreeSet<String>) {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                into.insert(env.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            variables(sub, into);
        }
    }

    /// `--help` never prints the value of a variable that can hold a secret (the database
    /// URL's password, a key).
    #[test]
    fn help_hides_the_values_of_secret_variables() {
        fn check(command: &clap::Command, checked: &mut usize) {
            for arg in command.get_arguments() {
                let Some(env) = arg.get_env().and_then(|e| e.to_str()) else {
                    continue;
                };
                if matches!(
                    env,
                    "SHIPLOG_DATABASE_URL" | "SHIPLOG_ADMIN_KEY" | "SHIPLOG_KEY"
                ) {
                    assert!(
                        arg.is_hide_env_values_set(),
                        "{env} in {}",
                        command.get_name()
                    );
                    *checked += 1;
                }
            }
            for sub in command.get_subcommands() {
                check(sub, checked);
            }
        }
        let mut checked = 0;
        check(&Cli::command(), &mut checked);
        assert!(checked >= 5, "{checked}");
    }

    /// docs/operations.md's configuration table lists exactly the variables the command line
    /// reads.
    #[test]
    fn the_operations_guide_lists_every_variable() {
        let mut cli = BTreeSet::new();
        variables(&Cli::command(), &mut cli);
        let guide = include_str!("../../../docs/operations.md");
        let table = guide
            .split("## Configuration")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("docs/operations.md has a ## Configuration section");
        let documented: BTreeSet<String> = table
            .lines()
            .filter_map(|line| line.strip_prefix("| `SHIPLOG_"))
            .filter_map(|rest| rest.split('`').next())
            .map(|name| format!("SHIPLOG_{name}"))
            .collect();
        assert!(cli.len() > 5, "{cli:?}");
        assert_eq!(documented, cli);
    }

    /// The release archive's example environment file (`packaging/shiplog.env`) names only
    /// variables the command line reads, commented out or not, and sets the ones a service
    /// needs.
    #[test]
    fn the_packaged_environment_file_names_only_real_variables() {
        let mut cli = BTreeSet::new();
        variables(&Cli::command(), &mut cli);
        let file = include_str!("../../../packaging/shiplog.env");
        let named: Vec<&str> = file
            .lines()
            .map(|line| line.trim_start_matches('#'))
            .filter_map(|line| line.split_once('='))
            .map(|(name, _)| name)
            .filter(|name| name.starts_with("SHIPLOG_"))
            .collect();
        assert!(named.len() >= 6, "{named:?}");
        for name in &named {
            assert!(
                cli.contains(*name),
                "shiplog.env names {name}, which shiplog does not read"
            );
        }
        for set in ["SHIPLOG_BIND=", "SHIPLOG_DATABASE_URL="] {
            assert!(file.lines().any(|l| l.starts_with(set)), "{set}");
        }
    }

    /// The GitHub Action passes only variables `shiplog notify` reads, runs `notify`, and every
    /// input it declares is documented in the GitHub Actions guide.
    #[test]
    fn the_github_action_speaks_the_command_line() {
        let mut cli = BTreeSet::new();
        variables(&Cli::command(), &mut cli);
        let action = include_str!("../../../action.yml");
        let guide = include_str!("../../../docs/ci/github-actions.md");
        let passed: Vec<&str> = action
            .lines()
            .filter_map(|line| line.trim().split_once(':'))
            .map(|(name, _)| name)
            .filter(|name| name.starts_with("SHIPLOG_") && *name != "SHIPLOG_BINARY")
            .collect();
        assert!(passed.len() >= 6, "{passed:?}");
        for name in passed {
            assert!(
                cli.contains(name),
                "action.yml passes {name}, which shiplog does not read"
            );
        }
        assert!(action.contains("notify"));
        let inputs = action
            .split("inputs:\n")
            .nth(1)
            .and_then(|rest| rest.split("\nruns:").next())
            .expect("action.yml declares inputs");
        let names: Vec<&str> = inputs
            .lines()
            .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
            .filter_map(|line| line.trim().strip_suffix(':'))
            .collect();
        assert_eq!(
            names,
            [
                "url",
                "key",
                "project",
                "environment",
                "event",
                "status",
                "binary"
            ]
        );
        for name in names {
            assert!(
                guide.contains(&format!("`{name}`")),
                "the guide does not document {name}"
            );
        }
    }

    #[test]
    fn the_version_names_the_commit() {
        let version = Cli::command().render_version().to_string();
        assert!(
            version.starts_with(concat!("shiplog ", env!("CARGO_PKG_VERSION"), " (commit ")),
            "{version}"
        );
        let commit = env!("SHIPLOG_COMMIT");
        assert!(commit == "unknown" || commit.len() == 12, "{commit}");
        assert!(version.contains(commit), "{version}");
    }

    #[test]
    fn help_says_what_shiplog_is() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("deployment tracking server"), "{help}");
        assert!(help.contains("shiplog serve"), "{help}");
    }
}
