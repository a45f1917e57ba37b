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
    let applied: Vec<Vec<String>> = servers
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
