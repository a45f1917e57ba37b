//! `shiplog admin …`, run as the real binary: the admin API from the command line.

use std::process::{Command, Output};

use serde_json::Value;
use shiplog_store::testdb::TestDb;

const MASTER: &str = "cli-master-key-0123456789";

fn shiplog(url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shiplog"));
    command
        .arg("admin")
        .args(args)
        .env("SHIPLOG_DATABASE_URL", url)
        .env_remove("SHIPLOG_ADMIN_KEY")
        .env_remove("SHIPLOG_KEY");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Sets the master key the way `shiplog serve` does on start.
fn serve_once(url: &str) {
    actix_web::rt::System::new().block_on(async {
        let (app, _store) = shiplog_server::open_app(url, true).await.unwrap();
        app.ensure_master_key(Some(MASTER)).await.unwrap();
    });
}

#[test]
fn an_operator_bootstraps_a_workspace_from_the_command_line() {
    let db = TestDb::sqlite();
    serve_once(db.url());
    let master = [("SHIPLOG_ADMIN_KEY", MASTER)];
    let workspace = json(&shiplog(
        db.url(),
        &["create-workspace", "acme", "--name", "Acme"],
        &master,
    ));
    assert_eq!(workspace["code"], "acme");
    let key = json(&shiplog(
        db.url(),
        &["create-key", "acme", "--role", "admin"],
        &master,
    ));
    let admin_key = key["key"].as_str().unwrap().to_owned();
    assert!(admin_key.starts_with("shiplog_"));
    let project = json(&shiplog(
        db.url(),
        &[
            "--key",
            &admin_key,
            "create-project",
            "my-project",
            "--name",
            "My Project",
        ],
        &[],
    ));
    assert_eq!(project["slug"], "my-project");
    let team = json(&shiplog(
        db.url(),
        &["create-team", "engineering"],
        &[("SHIPLOG_KEY", &admin_key)],
    ));
    assert_eq!(team["code"], "engineering");
    let scoped = json(&shiplog(
        db.url(),
        &["create-signing-key", "acme", "--project", "my-project"],
        &[("SHIPLOG_KEY", &admin_key)],
    ));
    assert_eq!(scoped["role"], "ingest", "no --role: an ingest key");
    assert!(scoped["key_id"].as_str().unwrap().starts_with("whk_"));
    assert!(scoped["secret"].as_str().unwrap().starts_with("whsec_"));

    // The keys' lifecycle: listed without secrets, revoked at once.
    let listed = json(&shiplog(db.url(), &["list-keys", "acme"], &master));
    let text = listed.to_string();
    assert!(!text.contains(&admin_key), "{text}");
    assert!(!text.contains(scoped["secret"].as_str().unwrap()), "{text}");
    assert_eq!(listed["api_keys"][0]["id"], key["id"]);
    assert_eq!(listed["signing_keys"][0]["key_id"], scoped["key_id"]);
    let revoked = json(&shiplog(
        db.url(),
        &["revoke-key", "acme", key["id"].as_str().unwrap()],
        &master,
    ));
    assert_eq!(revoked["revoked"], key["id"]);
    let out = shiplog(db.url(), &["list-projects"], &[("SHIPLOG_KEY", &admin_key)]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the revoked key no longer works"
    );
    let workspaces = json(&shiplog(db.url(), &["list-workspaces"], &master));
    assert_eq!(workspaces[0]["code"], "acme");
}

#[test]
fn refusals_exit_non_zero_and_say_why() {
    let db = TestDb::sqlite();
    serve_once(db.url());
    let out = shiplog(
        db.url(),
        &["create-workspace", "acme"],
        &[("SHIPLOG_ADMIN_KEY", "wrong-key")],
    );
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("invalid_api_key"), "{said}");
    assert!(
        said.contains("SHIPLOG_ADMIN_KEY") && !said.contains("Authorization"),
        "the command line's terms, not HTTP headers: {said}"
    );
    let out = shiplog(
        db.url(),
        &["create-workspace", "Bad Code"],
        &[("SHIPLOG_ADMIN_KEY", MASTER)],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("code: invalid workspace code"));
    let out = shiplog(db.url(), &["create-project", "web"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("missing_credentials"), "{said}");
    assert!(
        said.contains("SHIPLOG_KEY") && !said.contains("X-API-Key"),
        "{said}"
    );
    let out = shiplog(
        db.url(),
        &["create-key", "acme", "--role", "owner"],
        &[("SHIPLOG_ADMIN_KEY", MASTER)],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--role: unknown role"));
}
