//! The `shiplog import` command: its flags and its one-line summary.

use std::path::PathBuf;
use std::process::ExitCode;

use shiplog_domain::timestamp::Timestamp;
use shiplog_server::import::{self, Progress, Sender, Target, default_state, parse_pair};

/// Where the records go: shiplog's address, key and project (as `shiplog notify`).
#[derive(Debug, clap::Args)]
pub(crate) struct Destination {
    /// shiplog's address, e.g. https://shiplog.example.com.
    #[arg(long, env = "SHIPLOG_URL")]
    url: Option<String>,
    /// An `ingest` (or `admin`) API key of the workspace.
    #[arg(long, env = "SHIPLOG_KEY", hide_env_values = true)]
    key: Option<String>,
    /// The shiplog project (slug) of records that name none; default: the key's own project.
    /// (`--project` of `import gitlab` is GitLab's project.)
    #[arg(long, env = "SHIPLOG_PROJECT")]
    shiplog_project: Option<String>,
    /// Print the records that would be sent, one JSON object per line, and send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Where the import saves how far it got, to resume after an interruption and to read
    /// only what is new when run again. Default: `.shiplog-import-<source>.json` here.
    #[arg(long)]
    state: Option<PathBuf>,
}

impl Destination {
    /// Where an import of `source` saves its state: `--state`, else the default for `source`;
    /// none for a dry run, which neither reads nor writes one.
    fn state_file(&self, source: &str) -> Option<PathBuf> {
        (!self.dry_run).then(|| self.state.clone().unwrap_or_else(|| default_state(source)))
    }
}

/// Ends the progress output; the summary, or why the import stopped.
fn finished(sender: Sender, outcome: Result<(), String>) -> Result<import::Summary, String> {
    sender.progress.finish();
    outcome.map(|()| sender.summary)
}

/// Import past deployments into shiplog: from GitHub, GitLab, or an NDJSON file.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Import {
    /// A GitHub repository's deployments (and their statuses and commits); where it has none,
    /// the successful runs of the workflows named by --workflow. Token: GITHUB_TOKEN.
    Github {
        /// The repository, OWNER/NAME.
        #[arg(long)]
        repo: String,
        /// The REST API's address; GitHub Enterprise Server: https://HOST/api/v3.
        #[arg(long, default_value = "https://api.github.com")]
        api_url: String,
        /// Only deployments created at or after this time (RFC 3339, or a date).
        #[arg(long)]
        since: Option<String>,
        /// A GitHub environment's shiplog name: GITHUB=SHIPLOG (repeat for each).
        #[arg(long = "environment-map", value_parser = parse_pair)]
        environment_map: Vec<(String, String)>,
        /// A workflow (name or file) whose successful runs are deployments, for a repository
        /// without deployments: NAME, or NAME=ENVIRONMENT (default environment: production).
        #[arg(long = "workflow")]
        workflows: Vec<String>,
        /// The shiplog application; default: the repository's name.
        #[arg(long)]
        application: Option<String>,
        #[command(flatten)]
        destination: Destination,
    },
    /// A GitLab project's deployments. Token: GITLAB_TOKEN.
    Gitlab {
        /// The GitLab project: its id or path (group/project).
        #[arg(long)]
        project: String,
        /// The GitLab host (/api/v4 is added).
        #[arg(long, default_value = "https://gitlab.com")]
        api_url: String,
        /// Only deployments updated after this time (RFC 3339, or a date).
        #[arg(long)]
        since: Option<String>,
        /// A GitLab environment's shiplog name: GITLAB=SHIPLOG (repeat for each).
        #[arg(long = "environment-map", value_parser = parse_pair)]
        environment_map: Vec<(String, String)>,
        /// The shiplog application; default: the project path's last part.
        #[arg(long)]
        application: Option<String>,
        #[command(flatten)]
        destination: Destination,
    },
    /// An NDJSON file (- for standard input), one deployment per line, in the format of
    /// POST /api/v1/import.
    File {
        /// The file, or - for standard input.
        path: String,
        #[command(flatten)]
        destination: Destination,
    },
}

/// A time given as RFC 3339 or a date, as the providers write it (`2024-01-31T00:00:00Z`).
fn since(value: Option<&String>) -> Result<Option<String>, String> {
    let Some(value) = value else { return Ok(None) };
    let text = if value.len() == 10 {
        format!("{value}T00:00:00Z")
    } else {
        value.clone()
    };
    let at = Timestamp::parse(&text).map_err(|e| format!("--since {value:?}: {e}"))?;
    let utc = at.as_offset_date_time();
    Ok(Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )))
}

fn sender(destination: &Destination, what: &str, total: Option<u64>) -> Result<Sender, String> {
    let progress = Progress::new(what, total);
    if destination.dry_run {
        let target = Target {
            url: String::new(),
            key: String::new(),
            project: destination.shiplog_project.clone(),
        };
        return Ok(Sender::new(target, true, progress));
    }
    let url = destination
        .url
        .clone()
        .ok_or("--url (SHIPLOG_URL) is required: shiplog's address")?;
    let key = destination
        .key
        .clone()
        .ok_or("--key (SHIPLOG_KEY) is required: an ingest key of the workspace")?;
    Ok(Sender::new(
        Target {
            url,
            key,
            project: destination.shiplog_project.clone(),
        },
        false,
        progress,
    ))
}

async fn run(command: Import) -> Result<import::Summary, String> {
    let token = |name: &str| std::env::var(name).ok().filter(|t| !t.trim().is_empty());
    match command {
        Import::Github {
            repo,
            api_url,
            since: from,
            environment_map,
            workflows,
            application,
            destination,
        } => {
            let options = import::github::Options {
                since: since(from.as_ref())?,
                workflows: workflows
                    .iter()
                    .map(|w| match w.split_once('=') {
                        Some((name, env)) => (name.trim().to_owned(), env.trim().to_owned()),
                        None => (w.trim().to_owned(), "production".to_owned()),
                    })
                    .collect(),
                repo,
                api_url,
                environment_map,
                application,
            };
            let state = destination.state_file(&format!("github-{}", options.repo));
            let mut sender = sender(&destination, &format!("github {}", options.repo), None)?;
            let outcome = import::github::import(
                &options,
                token("GITHUB_TOKEN"),
                state.as_deref(),
                &mut sender,
            )
            .await;
            finished(sender, outcome)
        }
        Import::Gitlab {
            project,
            api_url,
            since: from,
            environment_map,
            application,
            destination,
        } => {
            let options = import::gitlab::Options {
                since: since(from.as_ref())?,
                project,
                api_url,
                environment_map,
                application,
            };
            let state = destination.state_file(&format!("gitlab-{}", options.project));
            let mut sender = sender(&destination, &format!("gitlab {}", options.project), None)?;
            let outcome = import::gitlab::import(
                &options,
                token("GITLAB_TOKEN"),
                state.as_deref(),
                &mut sender,
            )
            .await;
            finished(sender, outcome)
        }
        Import::File { path, destination } => {
            let total = import::file::count_lines(&path);
            let mut sender = sender(&destination, &path, total)?;
            let outcome = import::file::import(&path, &mut sender).await;
            finished(sender, outcome)
        }
    }
}

/// Runs the import; exit status 0 when every record was accepted or already known, 1 when
/// some were refused, 2 when the import stopped.
pub(crate) fn import(command: Import) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("shiplog import: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(command)) {
        Ok(summary) => {
            eprintln!("shiplog import: {}", summary.line());
            for (line, error) in &summary.refusals {
                eprintln!("  line {line}: {error}");
            }
            if summary.rejected > summary.refusals.len() as u64 {
                eprintln!(
                    "  … and {} more refused lines",
                    summary.rejected - summary.refusals.len() as u64
                );
            }
            if summary.rejected > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => {
            eprintln!(
                "shiplog import: stopped: {error}. What was answered is stored; run the same command again to go on."
            );
            ExitCode::from(2)
        }
    }
}
