//! `shiplog notify`, run as the real binary in a shell with a CI's variables set, against a
//! running server: a wrapped command's deploy is reported started then completed with its real
//! status and times, the command's exit status is kept (also when the server is unreachable),
//! and any commit message arrives intact.

use crate::common;

use std::process::{Command, Output};

use serde_json::{Value, json};
use shiplog_server::{Config, HookOptions, start};
use shiplog_store::testdb::TestDb;

/// A server on SQLite with workspace `acme`, project `shop` and an ingest key; returns its
/// address, an admin key and the ingest key.
async fn server(db: &TestDb) -> (String, String, String) {
    let running = start(Config {
        database_url: db.url().to_owned(),
        bind: "127.0.0.1:0".to_owned(),
        admin_key: Some(common::MASTER.to_owned()),
        migrate_on_start: true,
        workers: 1,
        hooks: HookOptions::default(),
        metrics_token: None,
        tls: None,
        retention: None,
        sign_in: shiplog_server::SignInOptions::default(),
    })
    .await
    .unwrap();
    let base = format!("http://{}", running.address);
    actix_web::rt::spawn(running.server);
    let (admin, ingest) =
        common::tenant(&base, json!({"slug": "shop", "name": "Shop"}), None).await;
    (base, admin, ingest)
}

/// `shiplog notify …` with only the given variables (and PATH) in its environment, outside any
/// Git repository (so git says nothing about the commit).
fn notify_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shiplog"));
    command
        .arg("notify")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(std::env::temp_dir());
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// [`notify_command`], run to its end.
async fn notify(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = notify_command(args, env);
    actix_web::rt::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

async fn deployments(base: &str, key: &str) -> Vec<Value> {
    let mut response = awc::Client::default()
        .get(format!("{base}/api/v1/deployments?project=shop"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

fn github(base: &str, key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("GITHUB_ACTIONS", "true".into()),
        (
            "GITHUB_SHA",
            "3f786850e387550fdab836ed7e6dc881de23001b".into(),
        ),
        ("GITHUB_REF", "refs/heads/main".into()),
        ("GITHUB_REF_NAME", "main".into()),
        ("GITHUB_REF_TYPE", "branch".into()),
        ("GITHUB_SERVER_URL", "https://github.com".into()),
        ("GITHUB_REPOSITORY", "acme/shop".into()),
        ("GITHUB_RUN_ID", "777".into()),
        ("GITHUB_RUN_NUMBER", "12".into()),
        ("GITHUB_ACTOR", "ana".into()),
        ("SHIPLOG_URL", base.into()),
        ("SHIPLOG_KEY", key.into()),
        ("SHIPLOG_PROJECT", "shop".into()),
    ]
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[actix_web::test]
async fn a_wrapped_failing_deploy_is_reported_failed_with_its_times_and_keeps_its_status() {
    let db = TestDb::sqlite();
    let (base, admin, ingest) = server(&db).await;
    let env = github(&base, &ingest);
    let output = notify(
        &[
            "--environment",
            "production",
            "--",
            "sh",
            "-c",
            "sleep 0.2; exit 3",
        ],
        &pairs(&env),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("CI: GitHub Actions"), "{stderr}");
    assert!(stderr.contains("deploy.started recorded"), "{stderr}");
    assert!(stderr.contains("deploy.completed recorded"), "{stderr}");
    let items = deployments(&base, &admin).await;
    assert_eq!(
        items.len(),
        1,
        "started and completed are one deployment: {items:?}"
    );
    let deployment = &items[0];
    assert_eq!(deployment["status"], "failed");
    assert_eq!(deployment["environment"], "production");
    assert_eq!(
        deployment["run_url"],
        "https://github.com/acme/shop/actions/runs/777"
    );
    assert_eq!(deployment["deployed_by"], "ana");
    assert_eq!(deployment["branch"], "main");
    assert_eq!(
        deployment["build_number"], "12",
        "GITHUB_RUN_NUMBER is kept"
    );
    let started = deployment["started_at"].as_str().unwrap();
    let finished = deployment["finished_at"].as_str().unwrap();
    let started = shiplog_domain::timestamp::Timestamp::parse(started).unwrap();
    let finished = shiplog_domain::timestamp::Timestamp::parse(finished).unwrap();
    assert!(
        finished.since(started) >= time::Duration::milliseconds(200),
        "the measured run lasts as long as the command"
    );

    // Run again and succeed: the same run is the same deployment, now a success.
    let output = notify(&["--environment", "production", "--", "true"], &pairs(&env)).await;
    assert_eq!(output.status.code(), Some(0));
    let items = deployments(&base, &admin).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "success");
}

#[actix_web::test]
async fn a_signal_is_passed_to_the_command_and_reported_as_cancelled() {
    let db = TestDb::sqlite();
    let (base, admin, ingest) = server(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("running");
    let env = github(&base, &ingest);
    // sh and its own child: the signal must reach both.
    let script = format!("touch {}; sleep 30; true", mark.display());
    let child = notify_command(
        &["--environment", "production", "--", "sh", "-c", &script],
        &pairs(&env),
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // The command runs once its mark exists (shiplog listens for signals before starting it).
    let started = std::time::Instant::now();
    while !mark.exists() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the command never ran"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = actix_web::rt::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    // The command died of the forwarded SIGTERM: 128 + 15.
    assert_eq!(output.status.code(), Some(143));
    let items = deployments(&base, &admin).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "cancelled");
}

#[actix_web::test]
async fn an_unreachable_server_leaves_the_exit_status_alone_unless_strict() {
    // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    let mut env = github("http://127.0.0.1:9", "shiplog_unused");
    env.push(("SHIPLOG_TIMEOUT", "2".into()));
    let output = notify(
        &["--environment", "production", "--", "sh", "-c", "exit 0"],
        &pairs(&env),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("deploy.started not recorded"), "{stderr}");
    let output = notify(
        &[
            "--strict",
            "--environment",
            "production",
            "--",
            "sh",
            "-c",
            "exit 0",
        ],
        &pairs(&env),
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    // A failing command keeps its own status, strict or not.
    let output = notify(
        &[
            "--strict",
            "--environment",
            "production",
            "--",
            "sh",
            "-c",
            "exit 4",
        ],
        &pairs(&env),
    )
    .await;
    assert_eq!(output.status.code(), Some(4));
}

#[actix_web::test]
async fn any_commit_message_arrives_intact_from_gitlab_ci() {
    let db = TestDb::sqlite();
    let (base, admin, ingest) = server(&db).await;
    let message = "fix: \"quoted\" and 'single', back\\slash\nsecond line — ünïcödé 🚀";
    let env = [
        ("GITLAB_CI", "true"),
        ("CI_COMMIT_SHA", "abcdef1234567"),
        ("CI_COMMIT_MESSAGE", message),
        ("CI_COMMIT_TIMESTAMP", "2026-11-28T10:00:00+00:00"),
        ("CI_COMMIT_REF_NAME", "main"),
        ("CI_COMMIT_BRANCH", "main"),
        (
            "CI_PIPELINE_URL",
            "https://gitlab.example/acme/shop/-/pipelines/9",
        ),
        ("CI_ENVIRONMENT_NAME", "staging"),
        ("GITLAB_USER_LOGIN", "bo"),
        ("SHIPLOG_URL", &base),
        ("SHIPLOG_KEY", &ingest),
        ("SHIPLOG_PROJECT", "shop"),
    ];
    // A dry run shows the JSON and sends nothing.
    let output = notify(&["--dry-run"], &env).await;
    assert!(output.status.success());
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["commit_message"], message);
    assert_eq!(printed["environment"], "staging");
    assert!(deployments(&base, &admin).await.is_empty());
    // Sent: the server keeps it as it was written.
    let output = notify(&[], &env).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let items = deployments(&base, &admin).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["commit_message"], message);
    assert_eq!(items[0]["status"], "success");
    assert_eq!(items[0]["environment"], "staging");
}

#[test]
fn a_deploy_without_an_environment_or_project_is_refused_with_the_fix() {
    let output = notify_command(&["--project", "shop"], &[])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--environment"));
    let output = notify_command(&["--environment", "production"], &[])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--project"));
}

#[test]
fn completions_cover_every_command_and_flag_in_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let output = Command::new(env!("CARGO_BIN_EXE_shiplog"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8(output.stdout).unwrap();
        for word in [
            "notify",
            "serve",
            "migrate",
            "admin",
            "environment",
            "dry-run",
        ] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    let output = Command::new(env!("CARGO_BIN_EXE_shiplog"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

/// A proxy to `target` that loses the answer to the first request: it passes the request on,
/// waits until the server has answered (so the event is recorded), and closes the client's
/// connection without the answer. Every later connection is passed through both ways.
fn losing_the_first_answer(target: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    fn read_message(stream: &mut TcpStream) -> Vec<u8> {
        let mut message = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            if let Some(end) = message.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&message[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if message.len() >= end + 4 + length {
                    return message;
                }
            }
            let n = stream.read(&mut buffer).unwrap();
            if n == 0 {
                return message;
            }
            message.extend_from_slice(&buffer[..n]);
        }
    }

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for (index, client) in listener.incoming().enumerate() {
            let Ok(mut client) = client else { return };
            let mut upstream = TcpStream::connect(target).unwrap();
            if index == 0 {
                let request = read_message(&mut client);
                upstream.write_all(&request).unwrap();
                let _answer = read_message(&mut upstream);
                drop(client);
                continue;
            }
            let (mut client_read, mut upstream_write) =
                (client.try_clone().unwrap(), upstream.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_read, &mut upstream_write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut upstream, &mut client);
            });
        }
    });
    address
}

#[actix_web::test]
async fn a_report_retried_after_a_lost_answer_is_recorded_once() {
    let db = TestDb::sqlite();
    let (base, admin, ingest) = server(&db).await;
    let target = base
        .trim_start_matches("http://")
        .parse::<std::net::SocketAddr>()
        .unwrap();
    let proxy = format!("http://{}", losing_the_first_answer(target));
    let env = github(&proxy, &ingest);
    let output = notify(
        &["--environment", "production", "--event", "deploy.completed"],
        &pairs(&env),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("deploy.completed recorded"),
        "the retry got an answer: {stderr}"
    );
    let items = deployments(&base, &admin).await;
    assert_eq!(items.len(), 1);
    // The deployment's page lists its events: the event sent twice is there once.
    let client = awc::Client::builder().disable_redirects().finish();
    let cookie = common::sign_in(&client, &base, &admin).await;
    let id = items[0]["id"].as_str().unwrap();
    let mut page = client
        .get(format!("{base}/deployments/{id}"))
        .insert_header(("cookie", cookie))
        .send()
        .await
        .unwrap();
    let html = String::from_utf8(page.body().await.unwrap().to_vec()).unwrap();
    assert_eq!(
        html.matches("<strong>deploy.completed</strong>").count(),
        1,
        "{html}"
    );
}
