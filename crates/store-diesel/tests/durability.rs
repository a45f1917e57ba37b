//! A write that returned survives the process being killed (SIGKILL) right after.
//!
//! The test runs this same test binary again as a child that writes deployments in a loop and
//! prints each one's id once its write has returned. The parent kills the child mid-stream, then
//! reopens the database and expects every printed deployment.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use crate::support::{app, deploy, open, tenant, tenant_ids};
use shiplog_domain::event::PipelineEvent;

const CHILD_DB: &str = "SHIPLOG_DURABILITY_CHILD_DB";
const REPORTED: usize = 25;

#[test]
fn a_returned_write_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shiplog.db").display());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "durability::child_writes_until_killed",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut committed = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("committed ") {
            committed.push(id.to_owned());
            if committed.len() == REPORTED {
                break;
            }
        }
    }
    // SIGKILL while the child keeps writing: no chance to flush or shut down cleanly.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        committed.len(),
        REPORTED,
        "the child stopped reporting early"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = open(&url);
        let app = app(&store);
        let admin = tenant_ids(1).admin;
        for id in &committed {
            let deployment = app.get_deployment(&admin, id).await;
            assert!(
                deployment.is_ok(),
                "deployment {id} was reported committed but is gone: {deployment:?}"
            );
        }
    });
}

#[test]
#[ignore = "the child half of a_returned_write_survives_sigkill; it writes until killed"]
fn child_writes_until_killed() {
    let Ok(url) = std::env::var(CHILD_DB) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = open(&url);
        let t = tenant(&store, "acme", 1).await;
        let app = app(&store);
        let mut stdout = std::io::stdout();
        for run in 0.. {
            let receipt = app
                .ingest(
                    &t.admin,
                    deploy(
                        PipelineEvent::DEPLOY_COMPLETED,
                        Some("success"),
                        &format!("run-{run}"),
                    ),
                )
                .await
                .unwrap();
            writeln!(stdout, "committed {}", receipt.deployment.unwrap()).unwrap();
            stdout.flush().unwrap();
        }
    });
}
