//! The `shiplog notify` command: flags, the wrapped command, signals, and the one-line result.

use std::process::ExitCode;
use std::time::Duration;

use shiplog_app::ports::Clock;
use shiplog_server::SystemClock;
use shiplog_server::notify::{self, Fields, Report, Target};

/// `shiplog notify`: report a deploy (or a build or test) to shiplog from any CI.
///
/// Detects the CI from its environment (GitHub Actions, GitLab CI, Jenkins, CircleCI, Azure
/// Pipelines, Bitbucket Pipelines, Buildkite) and fills the commit, its message and time (from
/// git when the CI does not say), ref, branch, repository, run URL, build number and actor;
/// every field can be set by its flag or SHIPLOG_ variable instead.
///
/// With a command after `--`, wraps it: reports `deploy.started`, runs it with its output
/// passed through, reports `deploy.completed` with success or failure from its exit status and
/// the measured times, and exits with the command's own status. SIGINT and SIGTERM are passed to
/// the command and reported as cancelled. Without a command, sends one event (`--event`,
/// default `deploy.completed`, with `--status`, default `success`).
///
/// A report that cannot be delivered (after retries within `--timeout`) is said on stderr and
/// never changes the exit status, unless `--strict`.
#[derive(Debug, clap::Args)]
pub(crate) struct Notify {
    /// shiplog's address, e.g. https://shiplog.example.com.
    #[arg(long, env = "SHIPLOG_URL")]
    url: Option<String>,
    /// An `ingest` API key of the workspace.
    #[arg(long, env = "SHIPLOG_KEY", hide_env_values = true)]
    key: Option<String>,
    /// The project's slug.
    #[arg(long, env = "SHIPLOG_PROJECT")]
    project: Option<String>,
    /// The environment deployed to (required for deploy events unless the CI names it).
    #[arg(long, env = "SHIPLOG_ENVIRONMENT")]
    environment: Option<String>,
    /// The application. Default: the one registered for the repository the CI names (created
    /// on first use, named after the repository), else the project's own.
    #[arg(long, env = "SHIPLOG_APPLICATION")]
    application: Option<String>,
    /// Without a command: the event (deploy.started, deploy.completed, build.started, …).
    #[arg(long, env = "SHIPLOG_EVENT")]
    event: Option<String>,
    /// Without a command: the status (success, failed, cancelled, running, or the CI's word).
    #[arg(long, env = "SHIPLOG_STATUS")]
    status: Option<String>,
    /// The commit deployed.
    #[arg(long, env = "SHIPLOG_COMMIT_SHA")]
    commit_sha: Option<String>,
    /// Its message.
    #[arg(long, env = "SHIPLOG_COMMIT_MESSAGE")]
    commit_message: Option<String>,
    /// Its own time (RFC 3339), where lead time starts.
    #[arg(long, env = "SHIPLOG_COMMIT_TIMESTAMP")]
    commit_timestamp: Option<String>,
    /// The Git ref.
    #[arg(long = "ref", env = "SHIPLOG_REF")]
    git_ref: Option<String>,
    /// The branch.
    #[arg(long, env = "SHIPLOG_BRANCH")]
    branch: Option<String>,
    /// The repository's address.
    #[arg(long, env = "SHIPLOG_REPO_URL")]
    repo_url: Option<String>,
    /// The run's page (events of one run are one deployment).
    #[arg(long, env = "SHIPLOG_RUN_URL")]
    run_url: Option<String>,
    /// The build number.
    #[arg(long, env = "SHIPLOG_BUILD_NUMBER")]
    build_number: Option<String>,
    /// Who deployed.
    #[arg(long, env = "SHIPLOG_DEPLOYED_BY")]
    deployed_by: Option<String>,
    /// Mark the deployment as rework (a hotfix, a rollback, a fix of a fix) for DORA's
    /// deployment rework rate.
    #[arg(long, env = "SHIPLOG_REWORK")]
    rework: bool,
    /// The longest one report may take, retries included, in seconds.
    #[arg(long, env = "SHIPLOG_TIMEOUT", default_value_t = 30)]
    timeout: u64,
    /// Fail (exit 1, or the command's failing status) when a report cannot be delivered.
    #[arg(long, env = "SHIPLOG_STRICT")]
    strict: bool,
    /// Print the detected CI and the JSON that would be sent; send nothing, run nothing.
    #[arg(long)]
    dry_run: bool,
    /// The command to wrap, after `--`.
    #[arg(last = true)]
    command: Vec<String>,
}

impl Notify {
    /// The fields set by flags or variables; an empty value (a CI template that expanded to
    /// nothing) sets nothing.
    fn fields(&self) -> Fields {
        let set = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        Fields {
            commit_sha: set(&self.commit_sha),
            commit_message: set(&self.commit_message),
            commit_timestamp: set(&self.commit_timestamp),
            git_ref: set(&self.git_ref),
            branch: set(&self.branch),
            repo_url: set(&self.repo_url),
            run_url: set(&self.run_url),
            build_number: set(&self.build_number),
            actor: set(&self.deployed_by),
            environment: set(&self.environment),
        }
    }
}

/// One line of `git log -1` for the commit, when git is there and knows it.
fn git(format: &str, commit: &str) -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["log", "-1", &format!("--format={format}"), commit])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim_end_matches('\n');
    (output.status.success() && !text.is_empty()).then(|| text.to_owned())
}

fn now() -> String {
    SystemClock.now().to_rfc3339()
}

/// A number in [0, 1) from the operating system, for retry jitter.
fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX)
}

struct Sender {
    client: reqwest::Client,
    target: Option<Target>,
    dry_run: bool,
}

impl Sender {
    /// Sends one event; says what happened on stderr; `false` if it was not delivered.
    async fn report(&self, body: &serde_json::Value) -> bool {
        let event = body["event"].as_str().unwrap_or("event");
        if self.dry_run {
            println!("{body}");
            return true;
        }
        let Some(target) = &self.target else {
            eprintln!(
                "shiplog notify: {event} not sent: set --url and --key (SHIPLOG_URL, SHIPLOG_KEY)"
            );
            return false;
        };
        match notify::send(&self.client, target, body, &mut jitter).await {
            Ok(answer) => {
                let id = answer["deployment_id"].as_str().unwrap_or("-");
                eprintln!("shiplog notify: {event} recorded (deployment {id})");
                true
            }
            Err(why) => {
                eprintln!("shiplog notify: {event} not recorded: {why}");
                false
            }
        }
    }
}

pub(crate) fn notify(args: Notify) -> ExitCode {
    let (ci, detected) = notify::detect(&|name| std::env::var(name).ok());
    let mut fields = detected.overridden_by(args.fields());
    let commit = fields
        .commit_sha
        .clone()
        .unwrap_or_else(|| "HEAD".to_owned());
    if fields.commit_sha.is_none() {
        fields.commit_sha = git("%H", &commit);
    }
    if fields.commit_message.is_none() {
        fields.commit_message = git("%B", &commit);
    }
    if fields.commit_timestamp.is_none() {
        fields.commit_timestamp = git("%cI", &commit);
    }
    let Some(project) = args.project.clone() else {
        eprintln!("shiplog notify: --project (SHIPLOG_PROJECT) is required: the project's slug");
        return ExitCode::from(2);
    };
    let wrapping = !args.command.is_empty();
    let event = if wrapping {
        "deploy.completed".to_owned()
    } else {
        args.event
            .clone()
            .unwrap_or_else(|| "deploy.completed".into())
    };
    if event.starts_with("deploy.") && fields.environment.is_none() {
        eprintln!(
            "shiplog notify: --environment (SHIPLOG_ENVIRONMENT) is required for deploy events: \
             the environment deployed to"
        );
        return ExitCode::from(2);
    }
    eprintln!("shiplog notify: CI: {}", ci.name);
    let target = match (&args.url, &args.key) {
        (Some(url), Some(key)) => Some(Target {
            url: url.clone(),
            key: key.clone(),
            provider: ci.provider,
            deadline: Duration::from_secs(args.timeout.max(1)),
        }),
        _ => None,
    };
    let sender = Sender {
        client: reqwest::Client::new(),
        target,
        dry_run: args.dry_run,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("shiplog notify: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let report =
            |event: &'static str, status: &str, started: Option<&str>, finished: Option<&str>| {
                notify::event_body(
                    &Report {
                        event,
                        status,
                        project: &project,
                        application: args.application.as_deref(),
                        started_at: started,
                        finished_at: finished,
                        rework: args.rework,
                    },
                    &fields,
                )
            };
        if !wrapping {
            let status = args
                .status
                .clone()
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| "success".into());
            let body = notify::event_body(
                &Report {
                    event: &event,
                    status: &status,
                    project: &project,
                    application: args.application.as_deref(),
                    started_at: None,
                    finished_at: event.ends_with(".completed").then(now).as_deref(),
                    rework: args.rework,
                },
                &fields,
            );
            let delivered = sender.report(&body).await;
            return if delivered || !args.strict {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        let started = now();
        let mut delivered = sender
            .report(&report("deploy.started", "running", Some(&started), None))
            .await;
        if args.dry_run {
            let finished = now();
            sender
                .report(&report(
                    "deploy.completed",
                    "success",
                    Some(&started),
                    Some(&finished),
                ))
                .await;
            eprintln!("shiplog notify: dry run: {:?} not run", args.command);
            return ExitCode::SUCCESS;
        }
        let (code, status) = run(&args.command).await;
        let finished = now();
        delivered &= sender
            .report(&report(
                "deploy.completed",
                status,
                Some(&started),
                Some(&finished),
            ))
            .await;
        if !delivered && args.strict && code == 0 {
            return ExitCode::FAILURE;
        }
        ExitCode::from(u8::try_from(code).unwrap_or(1))
    })
}

/// Runs the command with the terminal passed through; SIGINT and SIGTERM go on to it. Returns
/// its exit status (128 + the signal that ended it) and the status to report.
async fn run(command: &[String]) -> (i32, &'static str) {
    use std::os::unix::process::ExitStatusExt;
    use tokio::signal::unix::{SignalKind, signal};

    let Some((program, arguments)) = command.split_first() else {
        return (0, "success");
    };
    // Listen before the command starts, so no signal meant for it can end shiplog instead.
    let signals = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    // Its own process group, so a signal passed on reaches everything the command started.
    let mut child = match tokio::process::Command::new(program)
        .args(arguments)
        .process_group(0)
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            eprintln!("shiplog notify: cannot run {program:?}: {error}");
            return (127, "failed");
        }
    };
    let (Ok(mut interrupt), Ok(mut terminate)) = signals else {
        eprintln!("shiplog notify: cannot listen for signals; they will not be passed on");
        let status = child.wait().await;
        return finished(status.ok());
    };
    let mut signalled = false;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.ok(),
            _ = interrupt.recv() => { signalled = true; forward(&child, "INT"); }
            _ = terminate.recv() => { signalled = true; forward(&child, "TERM"); }
        }
    };
    let (code, status_word) = finished(status);
    let ended_by_signal = status.is_some_and(|s| s.signal().is_some());
    if signalled || ended_by_signal {
        (code, "cancelled")
    } else {
        (code, status_word)
    }
}

fn finished(status: Option<std::process::ExitStatus>) -> (i32, &'static str) {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(0), _) => (0, "success"),
            (Some(code), _) => (code, "failed"),
            (None, Some(signal)) => (128 + signal, "cancelled"),
            (None, None) => (1, "failed"),
        },
        None => (1, "failed"),
    }
}

/// Passes a signal on to the command's process group (with kill(1): no unsafe code for
/// kill(2)).
fn forward(child: &tokio::process::Child, signal: &str) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg("--")
            .arg(format!("-{pid}"))
            .status();
    }
}
