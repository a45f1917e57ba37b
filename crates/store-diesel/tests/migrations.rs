//! Migrations: applied on open, and safe when several servers start at once.

use std::sync::{Arc, Barrier};

use shiplog_store::testdb::TestDb;
use shiplog_store::{DatabaseUrl, Store, StoreOptions, migrations};

#[test]
fn servers_starting_together_migrate_one_postgres_database_once() {
    let Some(db) = TestDb::postgres_unmigrated() else {
        return;
    };
    let url = DatabaseUrl::parse(db.url()).unwrap();
    let start = Arc::new(Barrier::new(8));
    let servers: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                migrations::migrate(&url)
            })
        })
        .collect();
    let applied: Vec<Vec<migrations::Applied>> = servers
        .into_iter()
        .map(|s| s.join().unwrap().unwrap())
        .collect();
    let total: usize = applied.iter().map(Vec::len).sum();
    let mut conn = url.connect().unwrap();
    assert_eq!(migrations::pending(&mut conn).unwrap(), 0);
    assert_eq!(
        total,
        applied.iter().map(Vec::len).max().unwrap(),
        "exactly one server applied the migrations: {applied:?}"
    );
}

#[test]
fn postgres_without_migrate_on_open_refuses_an_old_schema() {
    let Some(db) = TestDb::postgres_unmigrated() else {
        return;
    };
    let options = StoreOptions {
        migrate_postgres: false,
        ..StoreOptions::default()
    };
    let err = Store::open(db.url(), &options)
        .err()
        .expect("an unmigrated database is refused");
    assert!(err.to_string().contains("run `shiplog migrate`"), "{err}");
    migrations::migrate(&DatabaseUrl::parse(db.url()).unwrap()).unwrap();
    Store::open(db.url(), &options).unwrap();
}

#[test]
fn sqlite_migrates_on_open_and_reopens_without_work() {
    let db = TestDb::sqlite();
    let options = StoreOptions {
        migrate_postgres: false,
        ..StoreOptions::default()
    };
    drop(Store::open(db.url(), &options).unwrap());
    let mut conn = DatabaseUrl::parse(db.url()).unwrap().connect().unwrap();
    assert_eq!(migrations::pending(&mut conn).unwrap(), 0);
    assert!(migrations::run_pending(&mut conn).unwrap().is_empty());
}

/// A database a newer release migrated (a migration this release does not know) is refused
/// with a message naming it and this release, on both backends and whether or not this
/// server migrates; a new database says which migrations it applied and how long each took.
fn refuses_a_newer_releases_database(url: &str) {
    use diesel::connection::SimpleConnection;
    let store = Store::open(url, &StoreOptions::default()).unwrap();
    let applied: Vec<&str> = store
        .migrated()
        .iter()
        .map(|m| m.version.as_str())
        .collect();
    assert!(applied.iter().any(|v| v.ends_with("000018")), "{applied:?}");
    drop(store);
    let mut conn = DatabaseUrl::parse(url).unwrap().connect().unwrap();
    conn.batch_execute(
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('20990101000099')",
    )
    .unwrap();
    assert_eq!(migrations::unknown(&mut conn).unwrap(), ["20990101000099"]);
    for migrate_postgres in [true, false] {
        let options = StoreOptions {
            migrate_postgres,
            ..StoreOptions::default()
        };
        let error = Store::open(url, &options)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            error.contains("20990101000099") && error.contains("newer release"),
            "{error}"
        );
    }
}

#[test]
fn sqlite_refuses_a_newer_releases_database() {
    let db = TestDb::sqlite();
    refuses_a_newer_releases_database(db.url());
}

#[test]
fn postgres_refuses_a_newer_releases_database() {
    let Some(db) = TestDb::postgres_unmigrated() else {
        return;
    };
    refuses_a_newer_releases_database(db.url());
}
