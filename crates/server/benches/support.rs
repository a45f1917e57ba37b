//! What the HTTP-level benchmarks share: the server they start, the references they measure,
//! and how they set up and count.
#![allow(
    dead_code,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde_json::Value;
use shiplog_store::conn::DbConn;

/// The master key every benchmark server is started with.
pub(crate) const MASTER: &str = "bench-master-key-0123456789";
/// The server's HTTP workers, and the echo reference's.
pub(crate) const WORKERS: usize = 2;

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

pub(crate) fn wait_until_up(base: &str, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = format!("{base}{path}");
    actix_web::rt::System::new().block_on(async move {
        let client = awc::Client::default();
        loop {
            if client.get(&url).send().await.is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "{url} did not answer");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

/// Single-row autocommit INSERTs from `clients` threads, each with its own connection.
pub(crate) fn insert_rate(url: &str, clients: usize, duration: Duration) -> f64 {
    let mut admin = PgConnection::establish(url).unwrap();
    admin
        .batch_execute(
            "DROP TABLE IF EXISTS bench_probe; \
             CREATE TABLE bench_probe (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)",
        )
        .unwrap();
    let deadline = Instant::now() + duration;
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let url = url.to_owned();
            std::thread::spawn(move || {
                let mut conn = PgConnection::establish(&url).unwrap();
                conn.batch_execute("SET synchronous_commit = on").unwrap();
                let mut count = 0u64;
                while Instant::now() < deadline {
                    conn.batch_execute("INSERT INTO bench_probe (body) VALUES ('x')")
                        .unwrap();
                    count += 1;
                }
                count
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let rate = total as f64 / start.elapsed().as_secs_f64();
    // Leave nothing behind that the rows measured next would pay for (the table's dirty pages,
    // a checkpoint half-way through shiplog's rows).
    admin
        .batch_execute("DROP TABLE bench_probe; CHECKPOINT")
        .unwrap();
    rate
}

/// A running `shiplog serve`.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
}

impl Server {
    pub(crate) fn start(database_url: &str) -> Self {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_shiplog"))
            .arg("serve")
            .env("SHIPLOG_DATABASE_URL", database_url)
            .env("SHIPLOG_BIND", format!("127.0.0.1:{port}"))
            .env("SHIPLOG_ADMIN_KEY", MASTER)
            .env("SHIPLOG_WORKERS", WORKERS.to_string())
            .env("SHIPLOG_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        wait_until_up(&server.base, "/healthz");
        server
    }

    /// The peak resident set of the process so far, in MiB (`VmHWM`).
    pub(crate) fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }
}

impl Server {
    /// CPU seconds (user + system) each kind of the server's threads has used so far, by
    /// thread name (`/proc/<pid>/task/*/stat`), busiest first. Where an import's time goes.
    pub(crate) fn cpu_by_thread(&self) -> Vec<(String, f64)> {
        let ticks = 100.0; // USER_HZ on Linux
        let mut by_name: std::collections::BTreeMap<String, f64> = Default::default();
        let tasks = format!("/proc/{}/task", self.child.id());
        for task in std::fs::read_dir(tasks).into_iter().flatten().flatten() {
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // `pid (name) state ...`: the name may hold spaces; the fields follow its `)`.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let name = stat[open + 1..close].to_owned();
            let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            // utime and stime: fields 14 and 15 of the line, 12 and 13 after the name.
            let cpu: f64 = [11, 12]
                .iter()
                .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<f64>().ok()))
                .sum();
            *by_name.entry(name).or_default() += cpu / ticks;
        }
        let mut threads: Vec<(String, f64)> = by_name.into_iter().collect();
        threads.sort_by(|a, b| b.1.total_cmp(&a.1));
        threads
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one set-up request; panics unless it answers 2xx.
pub(crate) fn setup(
    base: &str,
    put: bool,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> Value {
    let url = format!("{base}{path}");
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    actix_web::rt::System::new().block_on(async move {
        let client = awc::Client::default();
        let mut builder = if put {
            client.put(&url)
        } else {
            client.post(&url)
        };
        for (name, value) in headers {
            builder = builder.insert_header((name, value));
        }
        let mut response = builder.send_json(&body).await.unwrap();
        let answer: Value =
            serde_json::from_slice(&response.body().await.unwrap()).unwrap_or(Value::Null);
        assert!(
            response.status().is_success(),
            "{url}: {} {answer}",
            response.status()
        );
        answer
    })
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The one count `sql` answers (as `n`), on a connection of its own.
pub(crate) fn count(database_url: &str, sql: &str) -> i64 {
    let conn = shiplog_store::DatabaseUrl::parse(database_url)
        .unwrap()
        .connect()
        .unwrap();
    let query = diesel::sql_query(sql);
    let count = match conn {
        DbConn::Sqlite(mut c) => query.get_result::<Count>(&mut c),
        DbConn::Postgresql(mut c) => query.get_result::<Count>(&mut c),
    };
    count.unwrap().n
}

/// Deployments in the database.
pub(crate) fn stored(database_url: &str) -> u64 {
    u64::try_from(count(database_url, "SELECT count(*) AS n FROM deployments")).unwrap()
}

/// A fresh database of the backend named (`sqlite`, or `postgres` on the throwaway cluster with
/// fsync on); `None` where PostgreSQL cannot be started.
pub(crate) fn database(backend: &str) -> Option<shiplog_store::testdb::TestDb> {
    match backend {
        "sqlite" => Some(shiplog_store::testdb::TestDb::sqlite()),
        "postgres" => shiplog_store::testdb::TestDb::postgres_durable(),
        other => panic!("unknown backend {other:?}: use sqlite or postgres"),
    }
}

/// The `p` percentile (nearest rank) of sorted microsecond latencies, in milliseconds.
pub(crate) fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted_us.len() as f64).ceil() as usize).max(1) - 1;
    f64::from(sorted_us[rank.min(sorted_us.len() - 1)]) / 1000.0
}

/// Workspace `acme`, its admin key, project `web` and an ingest key limited to it: (admin
/// key, ingest key).
pub(crate) fn acme_web(base: &str) -> (String, String) {
    let master = format!("Bearer {MASTER}");
    let master = [("Authorization", master.as_str())];
    setup(
        base,
        false,
        "/api/v1/workspaces",
        &master,
        serde_json::json!({"code": "acme"}),
    );
    let key = |body: Value| {
        setup(
            base,
            false,
            "/api/v1/workspaces/acme/api-keys",
            &master,
            body,
        )["key"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let admin = key(serde_json::json!({"name": "bench-admin", "role": "admin"}));
    let bearer = format!("Bearer {admin}");
    setup(
        base,
        false,
        "/api/v1/projects",
        &[("Authorization", bearer.as_str())],
        serde_json::json!({"slug": "web"}),
    );
    let ingest = key(serde_json::json!({"name": "bench-ci", "role": "ingest", "project": "web"}));
    (admin, ingest)
}
