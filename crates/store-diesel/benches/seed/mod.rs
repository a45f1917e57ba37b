//! The history `cargo xtask bench dora` and `cargo xtask bench dashboard` measure: 50
//! applications, 4 environments (one of kind `production`), and `n` deployments over two years
//! (2024-01-01 to 2026-01-01) with their pipeline events, written by SQL both backends run.
//!
//! Ids are UUIDs and commits hexadecimal, as ingest writes them, so every read path (lists,
//! the board, a deployment's page) can decode the rows, not only the DORA query. Also the
//! helpers both benchmarks share: their settings and percentiles.
#![allow(dead_code)]

use std::time::Duration;

use shiplog_store::testdb::TestDb;

/// A fresh database of `backend` (`sqlite` or `postgres`, from `SHIPLOG_BENCH_BACKENDS`);
/// `None` when PostgreSQL cannot be used here, after printing a table row that says so
/// (`columns` empty cells fill the row).
pub(crate) fn database(backend: &str, columns: usize) -> Option<TestDb> {
    match backend {
        "sqlite" => Some(TestDb::sqlite()),
        "postgres" => {
            let db = TestDb::postgres();
            if db.is_none() {
                println!(
                    "| postgres | (no PostgreSQL on this machine: skipped) |{}",
                    " |".repeat(columns)
                );
            }
            db
        }
        other => panic!("unknown backend {other:?}: use sqlite or postgres"),
    }
}

/// A number from the environment, else `default`.
pub(crate) fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The nearest-rank percentile of sorted durations.
pub(crate) fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// The history's size and the timed runs: `SHIPLOG_BENCH_DEPLOYMENTS` (default 1,000,000, or
/// 20,000 when run as a smoke test without `--bench`) and `SHIPLOG_BENCH_RUNS` (15, or 2).
pub(crate) fn sizes() -> (u64, usize) {
    // `cargo bench` passes `--bench`; under `cargo test --all-targets` this is a smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let n = env_number(
        "SHIPLOG_BENCH_DEPLOYMENTS",
        if full { 1_000_000 } else { 20_000 },
    );
    let runs =
        usize::try_from(env_number("SHIPLOG_BENCH_RUNS", if full { 15 } else { 2 })).unwrap_or(2);
    (n, runs)
}

/// 2024-01-01T00:00:00Z in microseconds.
pub(crate) const START: i64 = 1_704_067_200_000_000;
/// Two years (730 days) in microseconds.
pub(crate) const SPAN: i64 = 730 * 86_400_000_000;
pub(crate) const DAY: i64 = 86_400_000_000;

/// The seeding statements; `{n}` rows, ids of the tenant's workspace and project spliced in.
pub(crate) fn seed_sql(workspace: &str, project: &str, n: u64) -> String {
    let step = SPAN / i64::try_from(n).unwrap();
    let last = n - 1;
    // One row source for both backends: a recursive CTE counting 0..n.
    let rows = format!(
        "WITH RECURSIVE g(i) AS (SELECT CAST(0 AS BIGINT) UNION ALL SELECT i + 1 FROM g WHERE i < {last})"
    );
    let mut sql = String::new();
    for a in 0..50 {
        sql.push_str(&format!(
            "INSERT INTO applications (id, workspace_id, project_id, code, name, created_at) \
             VALUES ('00000000-0000-4000-a000-0000000000{a:02}', '{workspace}', '{project}', 'app-{a}', 'App {a}', {START});\n"
        ));
    }
    for (e, (code, kind)) in [
        ("production", "production"),
        ("staging", "staging"),
        ("testing", "testing"),
        ("development", "development"),
    ]
    .iter()
    .enumerate()
    {
        sql.push_str(&format!(
            "INSERT INTO environments (id, workspace_id, code, name, kind, position, created_at) \
             VALUES ('00000000-0000-4000-b000-0000000000{e:02}', '{workspace}', '{code}', '{code}', '{kind}', {e}, {START});\n"
        ));
    }
    // UUID-shaped ids and hexadecimal commits from i, in SQL both backends share: a 12-digit
    // number, 100000000000 + i, fills the last group (decimal digits are hex digits).
    let tail = "CAST(100000000000 + i AS TEXT)";
    let dep = format!("'00000000-0000-4000-8000-' || {tail}");
    let event = format!("'00000000-0000-4000-9000-' || {tail}");
    let build = format!("'00000000-0000-4000-c000-' || {tail}");
    let commit = format!("'c0ffee' || {tail}");
    let app = "'00000000-0000-4000-a000-0000000000' || CASE WHEN i % 50 < 10 THEN '0' ELSE '' END || CAST(i % 50 AS TEXT)";
    let env = "'00000000-0000-4000-b000-00000000000' || CAST((i / 50) % 4 AS TEXT)";
    // status by a spread of i: 0-79 success, 80-91 failed, 92-96 cancelled, 97-99 running;
    // one in twenty from a hotfix branch (its rework signal comes from migration 000014's
    // backfill, which the benchmark runs again).
    sql.push_str(&format!(
        "{rows}
INSERT INTO deployments (id, workspace_id, project_id, application_id, environment_id,
  idempotency_key, payload_fingerprint, status, provider, provider_status, status_at, started_at,
  finished_at, deployed_at, commit_sha, commit_timestamp, created_at, updated_at, branch)
SELECT {dep}, '{workspace}', '{project}', {app}, {env},
  'key-' || i, 'fp-' || i,
  CASE WHEN (i * 37) % 100 < 80 THEN 'success' WHEN (i * 37) % 100 < 92 THEN 'failed'
       WHEN (i * 37) % 100 < 97 THEN 'cancelled' ELSE 'running' END,
  'github-actions', 'done', {START} + i * {step}, {START} + i * {step} - 600000000,
  {START} + i * {step}, {START} + i * {step},
  CASE WHEN i % 10 = 9 THEN NULL ELSE {commit} END,
  CASE WHEN i % 10 <> 9 AND i % 2 = 0 THEN {START} + i * {step} - (i % 97) * 3600000000 ELSE NULL END,
  {START} + i * {step}, {START} + i * {step},
  CASE WHEN i % 20 = 3 THEN 'hotfix/' || CAST(i AS TEXT) ELSE 'main' END
FROM g;
{rows}
INSERT INTO pipeline_events (id, workspace_id, project_id, application_id, environment_id,
  deployment_id, event, provider, status, commit_sha, occurred_at, received_at, fingerprint)
SELECT {event}, '{workspace}', '{project}', {app}, {env},
  {dep}, 'deploy.completed', 'github-actions', 'success',
  CASE WHEN i % 10 = 9 THEN NULL ELSE {commit} END,
  {START} + i * {step}, {START} + i * {step}, 'eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee' || {tail}
FROM g;
{rows}
INSERT INTO pipeline_events (id, workspace_id, project_id, application_id, event, provider,
  status, commit_sha, occurred_at, received_at, fingerprint)
SELECT {build}, '{workspace}', '{project}', {app}, 'build.started',
  'github-actions', 'running', {commit},
  {START} + i * {step} - (i % 53) * 1800000000, {START} + i * {step}, 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb' || {tail}
FROM g WHERE i % 10 <> 9 AND i % 2 = 1;
INSERT INTO commit_sightings (workspace_id, commit_sha, first_at)
SELECT workspace_id, commit_sha, MIN(occurred_at) FROM pipeline_events
WHERE commit_sha IS NOT NULL GROUP BY workspace_id, commit_sha;
ANALYZE;
"
    ));
    sql
}
