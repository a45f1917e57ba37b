//! Throwaway databases for tests and benchmarks (feature `test-db`).
//!
//! - [`TestDb::sqlite`]: a fresh SQLite file in its own temporary directory.
//! - [`TestDb::postgres`]: a fresh database on a PostgreSQL server. The server is, in order:
//!   the one `SHIPLOG_TEST_DATABASE_URL` names (a URL whose user may `CREATE DATABASE`), or a
//!   throwaway cluster this process starts from the PostgreSQL binaries on the machine
//!   (`initdb`, `postgres`), in a temporary directory, listening on 127.0.0.1 only. When the
//!   process runs as root the cluster runs as the `postgres` user (initdb refuses root).
//!
//! Each test database is created from a migrated template and dropped when its [`TestDb`] is
//! dropped. The throwaway cluster is stopped and deleted by a watchdog once this process exits,
//! however it exits. Without PostgreSQL, [`TestDb::postgres`] returns `None` (the caller skips) —
//! except under `CI=true`, where it panics: CI must never pass by skipping.

// Test support: failing loudly (a panic in the calling test) and telling why a backend is
// skipped are its job.
#![allow(clippy::panic, clippy::print_stderr)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;

use crate::conn::DatabaseUrl;
use crate::migrations;

/// A database that exists for one test.
pub struct TestDb {
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin: String, name: String },
}

impl TestDb {
    /// A fresh SQLite database file.
    pub fn sqlite() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("shiplog-test-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let url = format!("sqlite://{}", dir.path().join("shiplog.db").display());
        Self {
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// A fresh, migrated PostgreSQL database (fsync off: for correctness tests).
    pub fn postgres() -> Option<Self> {
        Self::postgres_on(cluster(false))
    }

    /// A fresh, migrated PostgreSQL database on a cluster with fsync on (for benchmarks).
    pub fn postgres_durable() -> Option<Self> {
        Self::postgres_on(cluster(true))
    }

    /// A fresh PostgreSQL database with no schema at all (for migration tests).
    pub fn postgres_unmigrated() -> Option<Self> {
        Self::postgres_from(cluster(false), "template0")
    }

    fn postgres_on(cluster: &'static Result<Cluster, String>) -> Option<Self> {
        Self::postgres_from(cluster, TEMPLATE)
    }

    fn postgres_from(cluster: &'static Result<Cluster, String>, template: &str) -> Option<Self> {
        let cluster = match cluster {
            Ok(cluster) => cluster,
            Err(reason) => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("CI=true and PostgreSQL cannot be used: {reason}");
                }
                eprintln!("skipping PostgreSQL: {reason}");
                note_skipped();
                return None;
            }
        };
        let name = format!(
            "shiplog_test_{}_{}",
            std::process::id(),
            cluster.counter.fetch_add(1, Ordering::Relaxed)
        );
        {
            // CREATE DATABASE … TEMPLATE refuses to run while another copy is being made.
            let _one_at_a_time = cluster.create_lock.lock();
            let mut admin = PgConnection::establish(&cluster.admin_url)
                .unwrap_or_else(|e| panic!("cannot connect to the test server: {e}"));
            admin
                .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
                .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        }
        Some(Self {
            url: cluster.url_for(&name),
            cleanup: Cleanup::Postgres {
                admin: cluster.admin_url.clone(),
                name,
            },
        })
    }

    /// The database URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin, name } = &self.cleanup
            && let Ok(mut conn) = PgConnection::establish(admin)
        {
            let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

const TEMPLATE: &str = "shiplog_template";

/// The file `cargo xtask ci` names in `SHIPLOG_TEST_SKIPPED_LOG`, where each test that skipped
/// PostgreSQL leaves its name, so that the totals count it as skipped rather than passed.
pub const SKIPPED_LOG_VAR: &str = "SHIPLOG_TEST_SKIPPED_LOG";

/// Says why the running test skips, and leaves its name in the skipped log so that
/// `cargo xtask ci` counts it as skipped, not passed. For tests that need something this
/// machine lacks (PostgreSQL, an immutable-file attribute).
pub fn skip(reason: &str) {
    eprintln!("skipping: {reason}");
    note_skipped();
}

/// Leaves the running test's name in the skipped log, if there is one.
fn note_skipped() {
    use std::io::Write;
    let Some(path) = std::env::var_os(SKIPPED_LOG_VAR) else {
        return;
    };
    let name = std::thread::current()
        .name()
        .map_or_else(|| format!("process {}", std::process::id()), str::to_owned);
    let line = format!("{}::{name}\n", std::env::args().next().unwrap_or_default());
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(line.as_bytes());
    }
}

struct Cluster {
    /// A URL on the `postgres` database, for CREATE/DROP DATABASE.
    admin_url: String,
    counter: AtomicU64,
    create_lock: Mutex<()>,
}

impl Cluster {
    fn url_for(&self, database: &str) -> String {
        match self.admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{database}"),
            None => format!("{}/{database}", self.admin_url),
        }
    }

    /// Creates the migrated template database.
    fn prepare(admin_url: String) -> Result<Self, String> {
        let mut admin = connect_with_retry(&admin_url, Duration::from_secs(30))?;
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)"))
            .and_then(|()| admin.batch_execute(&format!("CREATE DATABASE {TEMPLATE}")))
            .map_err(|e| format!("cannot create the template database: {e}"))?;
        let cluster = Self {
            admin_url,
            counter: AtomicU64::new(0),
            create_lock: Mutex::new(()),
        };
        {
            let url = DatabaseUrl::parse(&cluster.url_for(TEMPLATE)).map_err(|e| e.to_string())?;
            let mut conn = url.connect().map_err(|e| e.to_string())?;
            migrations::run_pending(&mut conn)?;
        }
        Ok(cluster)
    }
}

static FAST: OnceLock<Result<Cluster, String>> = OnceLock::new();
static DURABLE: OnceLock<Result<Cluster, String>> = OnceLock::new();

fn cluster(durable: bool) -> &'static Result<Cluster, String> {
    let cell = if durable { &DURABLE } else { &FAST };
    cell.get_or_init(|| {
        if let Ok(url) = std::env::var("SHIPLOG_TEST_DATABASE_URL") {
            return Cluster::prepare(url);
        }
        start_cluster(durable).and_then(Cluster::prepare)
    })
}

fn connect_with_retry(url: &str, patience: Duration) -> Result<PgConnection, String> {
    let deadline = Instant::now() + patience;
    loop {
        match PgConnection::establish(url) {
            Ok(conn) => return Ok(conn),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "the test server did not answer within {patience:?}: {e}"
                ));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Finds a PostgreSQL server binary on PATH or in Debian's versioned directories.
fn find_binary(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path().join("bin").join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path.into_iter().chain(debian).find(|p| p.is_file())
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// A command run as the cluster's owner: `postgres` when we are root, else ourselves.
fn as_owner(program: &Path, root: bool) -> Command {
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn start_cluster(durable: bool) -> Result<String, String> {
    start_cluster_in(durable, None)
}

/// Starts a cluster; with `control`, the watchdog also stops the server while the file
/// `control/paused` exists and starts it again once it is gone (fault tests), and ends when
/// `control/done` appears.
fn start_cluster_in(durable: bool, control: Option<&Path>) -> Result<String, String> {
    let initdb =
        find_binary("initdb").ok_or("initdb is not installed (PostgreSQL server binaries)")?;
    let postgres = find_binary("postgres").ok_or("postgres is not installed")?;
    let root = running_as_root();
    let dir = tempfile::Builder::new()
        .prefix("shiplog-pg-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?
        .keep();
    let data = dir.join("data");
    if root {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .map_err(|e| format!("cannot run chown: {e}"))?;
        if !status.success() {
            return Err("cannot hand the cluster directory to the postgres user".to_owned());
        }
    }
    let output = as_owner(&initdb, root)
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let settings = if durable {
        "-c fsync=on -c synchronous_commit=on"
    } else {
        "-c fsync=off -c full_page_writes=off"
    };
    let server = format!(
        "'{postgres}' -D '{data}' -p {port} -k '{dir}' -c listen_addresses=127.0.0.1 \
         -c max_connections=200 {settings} >>'{dir}/server.log' 2>&1",
        postgres = postgres.display(),
        data = data.display(),
        dir = dir.display(),
    );
    // The watchdog: runs the server, and stops and deletes it once this process is gone.
    let script = match control {
        None => format!(
            "{server} &\n\
             server=$!\n\
             while [ -d /proc/{parent} ] && kill -0 $server 2>/dev/null; do sleep 1; done\n\
             kill -INT $server 2>/dev/null; wait $server\n\
             rm -rf '{dir}'\n",
            parent = std::process::id(),
            dir = dir.display(),
        ),
        Some(control) => format!(
            "while [ -d /proc/{parent} ] && [ ! -e '{control}/done' ]; do\n\
               if [ -e '{control}/paused' ]; then sleep 0.1; continue; fi\n\
               {server} &\n\
               server=$!\n\
               while [ -d /proc/{parent} ] && [ ! -e '{control}/done' ] && [ ! -e '{control}/paused' ] \
                 && kill -0 $server 2>/dev/null; do sleep 0.1; done\n\
               kill -INT $server 2>/dev/null; wait $server\n\
             done\n\
             rm -rf '{dir}'\n",
            parent = std::process::id(),
            control = control.display(),
            dir = dir.display(),
        ),
    };
    let mut watchdog = as_owner(Path::new("/bin/sh"), root)
        .arg("-s")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the test server: {e}"))?;
    watchdog
        .stdin
        .take()
        .ok_or("no stdin for the watchdog")?
        .write_all(script.as_bytes())
        .map_err(|e| format!("cannot start the test server: {e}"))?;
    // The watchdog outlives this handle on purpose; it ends with this process.
    std::mem::forget(watchdog);
    let admin = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    connect_with_retry(&admin, Duration::from_secs(30)).map_err(|e| {
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        format!("{e}; server log: {}", log.trim())
    })?;
    Ok(admin)
}

/// A PostgreSQL cluster of a test's own, which it can stop and start again (fault tests); its
/// data survives the stop. Stopped and deleted once dropped or once this process ends.
pub struct RestartableCluster {
    control: tempfile::TempDir,
    admin_url: String,
}

impl RestartableCluster {
    /// Starts one; `None` without PostgreSQL on this machine (a panic under `CI=true`).
    pub fn start() -> Option<Self> {
        let control = tempfile::Builder::new()
            .prefix("shiplog-pg-control-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        // The watchdog runs as the cluster's owner and must see the control files.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(control.path(), std::fs::Permissions::from_mode(0o755))
                .unwrap_or_else(|e| panic!("cannot open the control directory: {e}"));
        }
        match start_cluster_in(false, Some(control.path())) {
            Ok(admin_url) => Some(Self { control, admin_url }),
            Err(reason) => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("CI=true and PostgreSQL cannot be used: {reason}");
                }
                eprintln!("skipping PostgreSQL: {reason}");
                note_skipped();
                None
            }
        }
    }

    /// The URL of an empty database `shiplog` on it (created on first call).
    pub fn database_url(&self) -> String {
        let mut admin = connect_with_retry(&self.admin_url, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = admin.batch_execute("CREATE DATABASE shiplog");
        match self.admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/shiplog"),
            None => format!("{}/shiplog", self.admin_url),
        }
    }

    /// Stops the server (a fast shutdown: clients are disconnected) and waits until it refuses
    /// connections.
    pub fn stop(&self) {
        std::fs::write(self.control.path().join("paused"), b"")
            .unwrap_or_else(|e| panic!("cannot pause the cluster: {e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while PgConnection::establish(&self.admin_url).is_ok() {
            assert!(Instant::now() < deadline, "the cluster did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the server again and waits until it accepts connections.
    pub fn resume(&self) {
        std::fs::remove_file(self.control.path().join("paused"))
            .unwrap_or_else(|e| panic!("cannot resume the cluster: {e}"));
        connect_with_retry(&self.admin_url, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for RestartableCluster {
    fn drop(&mut self) {
        let _ = std::fs::write(self.control.path().join("done"), b"");
    }
}

/// The benchmarks' fsync reference: a 4 KiB `write` + `fdatasync` loop on one page of a file in
/// `dir`, for `duration`; writes per second.
pub fn fsync_rate(dir: &Path, duration: Duration) -> f64 {
    use std::io::{Seek, SeekFrom};

    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.join("fsync-probe"))
        .unwrap_or_else(|e| panic!("cannot create the fsync probe in {}: {e}", dir.display()));
    let page = [0x5a_u8; 4096];
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < duration {
        let written = file
            .seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(&page))
            .and_then(|()| file.sync_data());
        if let Err(e) = written {
            panic!("the fsync probe failed: {e}");
        }
        count += 1;
    }
    count as f64 / start.elapsed().as_secs_f64()
}
