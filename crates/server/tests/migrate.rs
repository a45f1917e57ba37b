//! `shiplog migrate`, run as the real binary against both backends.

use std::process::{Command, Output};

use shiplog_store::testdb::TestDb;
use shiplog_store::{DatabaseUrl, migrations};

fn shiplog(args: &[&str], database_url: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shiplog"));
    command.args(args).env_remove("SHIPLOG_DATABASE_URL");
    if let Some(url) = database_url {
        command.env("SHIPLOG_DATABASE_URL", url);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn migrates_then_has_nothing_to_do(url: &str) {
    let first = shiplog(&["migrate"], Some(url));
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stdout).contains("migration(s) applied"),
        "{}",
        text(&first.stdout)
    );
    let mut conn = DatabaseUrl::parse(url).unwrap().connect().unwrap();
    assert_eq!(migrations::pending(&mut conn).unwrap(), 0);
    let second = shiplog(&["migrate", "--database-url", url], None);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        text(&second.stdout).contains("nothing to apply"),
        "{}",
        text(&second.stdout)
    );
}

/// `migrate --plan` lists what is pending, with what each migration changes, and writes
/// nothing.
fn the_plan_lists_pending_migrations_and_writes_nothing(url: &str) {
    let applied = shiplog(&["migrate"], Some(url));
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    let mut conn = DatabaseUrl::parse(url).unwrap().connect().unwrap();
    for _ in 0..6 {
        migrations::revert_last(&mut conn).unwrap();
    }
    let plan = shiplog(&["migrate", "--plan"], Some(url));
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    let said = text(&plan.stdout);
    assert!(
        said.contains("6 pending migration(s); nothing was written"),
        "{said}"
    );
    assert!(said.contains("000017_dora_days: adds dora_days"), "{said}");
    assert!(said.contains("[deployments: 0 rows now]"), "{said}");
    assert!(
        said.contains("000018_lead_time_start: marks every packed DORA day"),
        "{said}"
    );
    assert!(
        said.contains("000019_audit_events: adds tables, columns, indexes or triggers"),
        "{said}"
    );
    assert!(
        said.contains("000020_time_order: builds the deployments' time-order indexes"),
        "{said}"
    );
    assert!(
        said.contains("000021_changes: builds the commit sightings' time index"),
        "{said}"
    );
    assert!(
        said.contains("000022_people: adds people and lets a session belong to one"),
        "{said}"
    );
    assert_eq!(
        migrations::pending(&mut conn).unwrap(),
        6,
        "nothing applied"
    );
    let up_to_date = shiplog(&["migrate"], Some(url));
    assert!(up_to_date.status.success(), "{}", text(&up_to_date.stderr));
    let none = shiplog(&["migrate", "--plan"], Some(url));
    assert!(
        text(&none.stdout).contains("nothing to apply"),
        "{}",
        text(&none.stdout)
    );
}

#[test]
fn plan_sqlite() {
    let db = TestDb::sqlite();
    the_plan_lists_pending_migrations_and_writes_nothing(db.url());
}

#[test]
fn plan_postgres() {
    let Some(db) = TestDb::postgres_unmigrated() else {
        return;
    };
    the_plan_lists_pending_migrations_and_writes_nothing(db.url());
}

#[test]
fn migrate_sqlite() {
    let db = TestDb::sqlite();
    migrates_then_has_nothing_to_do(db.url());
}

#[test]
fn migrate_postgres() {
    let Some(db) = TestDb::postgres_unmigrated() else {
        return;
    };
    migrates_then_has_nothing_to_do(db.url());
}

#[test]
fn a_bad_url_is_refused_with_the_fix_and_without_the_password() {
    let out = shiplog(
        &["migrate", "--database-url", "mysql://root:hunter2@db/x"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("use a file path or sqlite://path"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn an_unreachable_postgres_fails_without_printing_the_password() {
    let out = shiplog(
        &[
            "migrate",
            "--database-url",
            "postgres://shiplog:hunter2@127.0.0.1:1/shiplog",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot connect to postgres://shiplog:***@127.0.0.1:1/shiplog"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn serve_refuses_a_bad_database_url() {
    let out = shiplog(
        &[
            "serve",
            "--database-url",
            "mysql://x/y",
            "--bind",
            "127.0.0.1:0",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unsupported database URL"),
        "{}",
        text(&out.stderr)
    );
}
