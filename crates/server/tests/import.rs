//! `shiplog import github|gitlab|file`, run as the real binary against a running server (on
//! SQLite and on PostgreSQL) and a local mock of GitHub's or GitLab's REST API. The mocks serve
//! the records of the APIs' published examples (`tests/fixtures/github-api`, MIT, from GitHub's
//! REST API description; `tests/fixtures/gitlab-api`, CC BY-SA 4.0, from GitLab's API docs),
//! with ids, times, outcomes and commits changed per record, their pagination (`Link`,
//! `x-next-page`), and injected trouble: a 502, a secondary rate limit (403 + `retry-after`),
//! a used-up primary rate limit (`x-ratelimit-remaining: 0` + `x-ratelimit-reset`), and an
//! answer that stops the import, after which it resumes where it stopped.

use std::process::Output;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use shiplog_store::testdb::TestDb;

use crate::common;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::any};

const DEPLOYMENTS: &str = include_str!("../../../tests/fixtures/github-api/deployment-items.json");
const STATUSES: &str =
    include_str!("../../../tests/fixtures/github-api/deployment-status-items.json");
const COMMIT: &str = include_str!("../../../tests/fixtures/github-api/commit.json");
const WORKFLOWS: &str = include_str!("../../../tests/fixtures/github-api/workflow-paginated.json");
const RUNS: &str = include_str!("../../../tests/fixtures/github-api/workflow-run-paginated.json");
const GITLAB_DEPLOYMENTS: &str =
    include_str!("../../../tests/fixtures/gitlab-api/list_project_deployments.json");

/// How many deployments the mock repository has (three pages of 100).
const HISTORY: u64 = 230;

fn sha(n: u64) -> String {
    format!("{n:0>40x}")
}

/// `2024-MM-DD…` for deployment `n`: one a day from 2024-01-01, so the newest is `HISTORY`.
fn day(n: u64, hour: u32) -> String {
    let date = time::Date::from_calendar_date(2024, time::Month::January, 1).unwrap()
        + time::Duration::days(i64::try_from(n).unwrap());
    format!("{date}T{hour:02}:00:00Z")
}

/// A server with workspace `acme`, project `shop`; returns its address, an admin key and an
/// ingest key limited to `shop`.
async fn shiplog(db: &TestDb) -> (String, String, String) {
    let base = common::server_at(db.url()).await;
    let (admin, ingest) = common::tenant(&base, json!({"slug": "shop"}), Some("shop")).await;
    (base, admin, ingest)
}

async fn get(base: &str, key: &str, path: &str) -> Value {
    let mut response = awc::Client::default()
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let body = response.body().limit(16 * 1024 * 1024).await.unwrap();
    assert!(response.status().is_success(), "{path}: {body:?}");
    serde_json::from_slice(&body).unwrap()
}

/// Every deployment of `shop`, newest first.
async fn all_deployments(base: &str, key: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut path = "/api/v1/deployments?project=shop&limit=200".to_owned();
    loop {
        let page = get(base, key, &path).await;
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/v1/deployments?project=shop&limit=200&cursor={cursor}")
            }
            None => return items,
        }
    }
}

/// `shiplog import ARGS…` in `dir`, with only the given variables (and PATH).
async fn import(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_shiplog"));
    command
        .arg("import")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(dir);
    for (name, value) in env {
        command.env(name, value);
    }
    actix_web::rt::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// The mock GitHub: `HISTORY` deployments of `acme/shop` newest first, 100 a page. Deployment
/// `n` (1 to `HISTORY`) deploys commit `sha(n)` to production (every third to staging, named
/// `stage` at GitHub), its outcome a success, a failure every seventh, an `inactive` status
/// after the success every fifth (GitHub retiring it), and no status at all every eleventh.
struct GitHub {
    /// The mock's own address, for its `Link` headers.
    base: String,
    requests: Mutex<Vec<String>>,
    /// Trouble still to inject, consumed as it is served.
    bad_gateway: AtomicUsize,
    secondary_limit: AtomicUsize,
    primary_limit: AtomicUsize,
    unauthorized_page_3: AtomicUsize,
}

impl GitHub {
    fn new(base: String) -> Self {
        Self {
            base,
            requests: Mutex::new(Vec::new()),
            bad_gateway: AtomicUsize::new(1),
            secondary_limit: AtomicUsize::new(1),
            primary_limit: AtomicUsize::new(1),
            unauthorized_page_3: AtomicUsize::new(1),
        }
    }

    fn take(counter: &AtomicUsize) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn deployment(n: u64) -> Value {
        let mut deployment: Vec<Value> = serde_json::from_str(DEPLOYMENTS).unwrap();
        let mut d = deployment.remove(0);
        d["id"] = json!(n);
        d["sha"] = json!(sha(n));
        d["ref"] = json!("main");
        d["environment"] = json!(if n.is_multiple_of(3) {
            "stage"
        } else {
            "production"
        });
        d["created_at"] = json!(day(n, 10));
        d["updated_at"] = json!(day(n, 10));
        d["url"] = json!(format!(
            "https://api.github.com/repos/acme/shop/deployments/{n}"
        ));
        d
    }

    fn statuses(n: u64) -> Value {
        if n.is_multiple_of(11) {
            return json!([]);
        }
        let mut template: Vec<Value> = serde_json::from_str(STATUSES).unwrap();
        let mut outcome = template.remove(0);
        outcome["id"] = json!(n * 10);
        outcome["state"] = json!(if n.is_multiple_of(7) {
            "failure"
        } else {
            "success"
        });
        outcome["created_at"] = json!(day(n, 11));
        outcome["updated_at"] = json!(day(n, 11));
        outcome["target_url"] = json!(format!("https://ci.example/deploys/{n}"));
        if n.is_multiple_of(5) && !n.is_multiple_of(7) {
            let mut retired = outcome.clone();
            retired["id"] = json!(n * 10 + 1);
            retired["state"] = json!("inactive");
            retired["created_at"] = json!(day(n + 1, 11));
            // Newest first, as GitHub lists them.
            return json!([retired, outcome]);
        }
        json!([outcome])
    }

    fn commit(sha: &str) -> Value {
        let mut commit: Value = serde_json::from_str(COMMIT).unwrap();
        let n = u64::from_str_radix(sha, 16).unwrap_or(0);
        commit["sha"] = json!(sha);
        commit["commit"]["committer"]["date"] = json!(day(n, 8));
        commit["commit"]["message"] = json!(format!("Change {n}\n\nCloses #PR-{n}"));
        commit
    }
}

/// A request's header as text.
fn header<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

impl Respond for GitHub {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let path = request.url.path().to_owned();
        let query = request.url.query().unwrap_or_default().to_owned();
        self.requests
            .lock()
            .unwrap()
            .push(format!("{path}?{query}"));
        if header(request, "authorization") != Some("Bearer ghp_mock") {
            return ResponseTemplate::new(401)
                .set_body_json(json!({"message": "Requires authentication"}));
        }
        let page: u64 = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "page")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(1);
        let base = &self.base;
        match path.as_str() {
            "/repos/acme/shop/deployments" => {
                if page == 2 && Self::take(&self.bad_gateway) {
                    return ResponseTemplate::new(502);
                }
                if page == 3 && Self::take(&self.unauthorized_page_3) {
                    return ResponseTemplate::new(401)
                        .set_body_json(json!({"message": "Bad credentials"}));
                }
                let newest = HISTORY - (page - 1) * 100;
                let items: Vec<Value> = (newest.saturating_sub(99).max(1)..=newest)
                    .rev()
                    .map(Self::deployment)
                    .collect();
                let mut answer = ResponseTemplate::new(200).set_body_json(items);
                if newest > 100 {
                    answer = answer.insert_header(
                        "link",
                        format!(
                            "<{base}/repos/acme/shop/deployments?per_page=100&page={}>; rel=\"next\", <{base}/repos/acme/shop/deployments?per_page=100&page=3>; rel=\"last\"",
                            page + 1
                        ),
                    );
                }
                if page == 1 && Self::take(&self.primary_limit) {
                    let reset = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs()
                        + 1;
                    answer = answer
                        .insert_header("x-ratelimit-remaining", "0")
                        .insert_header("x-ratelimit-reset", reset.to_string());
                }
                answer
            }
            "/repos/acme/empty/deployments" => ResponseTemplate::new(200).set_body_json(json!([])),
            "/repos/acme/empty/actions/workflows" => {
                ResponseTemplate::new(200).set_body_raw(WORKFLOWS, "application/json")
            }
            "/repos/acme/empty/actions/workflows/161335/runs" => {
                let mut runs: Value = serde_json::from_str(RUNS).unwrap();
                let template = runs["workflow_runs"][0].clone();
                runs["workflow_runs"] = (1..=3)
                    .map(|n: u64| {
                        let mut run = template.clone();
                        run["id"] = json!(500 + n);
                        run["status"] = json!("completed");
                        run["conclusion"] = json!("success");
                        run["head_sha"] = json!(sha(900 + n));
                        run["head_commit"]["timestamp"] = json!(day(n, 8));
                        run["run_started_at"] = json!(day(n, 9));
                        run["updated_at"] = json!(day(n, 10));
                        run
                    })
                    .collect();
                runs["total_count"] = json!(3);
                ResponseTemplate::new(200).set_body_json(runs)
            }
            other => {
                let parts: Vec<&str> = other.split('/').collect();
                match parts.as_slice() {
                    ["", "repos", "acme", "shop", "deployments", id, "statuses"] => {
                        if Self::take(&self.secondary_limit) {
                            return ResponseTemplate::new(403)
                                .insert_header("retry-after", "1")
                                .set_body_json(
                                    json!({"message": "You have exceeded a secondary rate limit."}),
                                );
                        }
                        ResponseTemplate::new(200)
                            .set_body_json(Self::statuses(id.parse().unwrap()))
                    }
                    ["", "repos", "acme", "shop", "commits", sha] => {
                        ResponseTemplate::new(200).set_body_json(Self::commit(sha))
                    }
                    _ => ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})),
                }
            }
        }
    }
}

/// A mock server answering every request with the responder made for its address.
async fn mock<R: Respond + 'static>(responder: impl FnOnce(String) -> R) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(responder(server.uri()))
        .mount(&server)
        .await;
    server
}

fn expected_github() -> Vec<u64> {
    (1..=HISTORY).filter(|n| n % 11 != 0).collect()
}

async fn github_history_arrives_in_order_through_limits_and_a_stop(db: TestDb) {
    let (base, admin, ingest) = shiplog(&db).await;
    let github = mock(GitHub::new).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("SHIPLOG_URL", base.as_str()),
        ("SHIPLOG_KEY", ingest.as_str()),
        ("GITHUB_TOKEN", "ghp_mock"),
    ];
    let api = github.uri();
    let args = [
        "github",
        "--repo",
        "acme/shop",
        "--api-url",
        api.as_str(),
        "--environment-map",
        "stage=staging",
    ];
    // First run: the rate limits and the 502 are waited out; page 3 says 401 and stops it.
    let first = import(dir.path(), &args, &env).await;
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(first.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("rate limit used up: waiting"), "{stderr}");
    assert!(
        stderr.contains("rate limited (403 Forbidden); waiting 1 s"),
        "{stderr}"
    );
    assert!(stderr.contains("502 Bad Gateway; trying again"), "{stderr}");
    assert!(
        stderr.contains("401 Unauthorized") && stderr.contains("run the same command again"),
        "{stderr}"
    );
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(".shiplog-import-github-acme-shop.json")).unwrap(),
    )
    .unwrap();
    assert!(
        state["resume"].as_str().unwrap().ends_with("page=3"),
        "{state}"
    );
    let after_first = all_deployments(&base, &admin).await.len();
    assert_eq!(
        after_first,
        (HISTORY - 199..=HISTORY).filter(|n| n % 11 != 0).count(),
        "two pages, less those without a status"
    );

    // Second run: resumes at page 3, reads no page before it again, finishes.
    let second = import(dir.path(), &args, &env).await;
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("skipped (not finished)"), "{stderr}");
    let requests = github.received_requests().await.unwrap();
    let first_pages = requests
        .iter()
        .filter(|r| {
            r.url.path() == "/repos/acme/shop/deployments"
                && !r.url.query_pairs().any(|(key, _)| key == "page")
        })
        .count();
    assert_eq!(first_pages, 1, "page 1 read once: the second run resumed");
    let listed = all_deployments(&base, &admin).await;
    let expected = expected_github();
    assert_eq!(listed.len(), expected.len());
    // Newest first by their own time, every field from GitHub's records.
    let shas: Vec<String> = listed
        .iter()
        .map(|d| d["commit_sha"].as_str().unwrap().to_owned())
        .collect();
    let mut wanted: Vec<String> = expected.iter().rev().map(|n| sha(*n)).collect();
    wanted.dedup();
    assert_eq!(shas, wanted);
    let seventh = listed.iter().find(|d| d["commit_sha"] == sha(7)).unwrap();
    assert_eq!(seventh["status"], "failed");
    assert_eq!(seventh["provider_status"], "failure");
    let fifth = listed.iter().find(|d| d["commit_sha"] == sha(5)).unwrap();
    assert_eq!(
        fifth["status"], "success",
        "inactive is not an outcome: {fifth}"
    );
    assert_eq!(fifth["run_url"], "https://ci.example/deploys/5");
    let third = listed.iter().find(|d| d["commit_sha"] == sha(3)).unwrap();
    assert_eq!(
        third["environment"], "staging",
        "mapped from GitHub's `stage`"
    );
    assert_eq!(third["application"], "shop");
    assert_eq!(third["deployed_by"], "octocat");
    assert_eq!(third["finished_at"], day(3, 11));
    assert_eq!(
        third["references"],
        json!([{"key": "PR-3", "closing": true}])
    );

    // Lead time from the commits' dates: three hours each.
    let dora = get(
        &base,
        &admin,
        "/api/v1/metrics/dora?project=shop&environment=production&from=2024-01-01T00:00:00Z&to=2025-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(dora["lead_time"]["median_seconds"], 3.0 * 3600.0, "{dora}");

    // The board shows what runs now: the newest production success, not older history.
    let board = get(&base, &admin, "/api/v1/projects/shop/environments").await;
    let production = board["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["code"] == "production")
        .unwrap();
    assert_eq!(
        production["applications"][0]["current"]["commit_sha"],
        sha(HISTORY),
        "the newest production success runs there: {production}"
    );

    // Third run: reads back to the newest deployment read (created at or after it: another
    // could share its second), which is already there; nothing older.
    let third_run = import(dir.path(), &args, &env).await;
    let stderr = String::from_utf8_lossy(&third_run.stderr);
    assert_eq!(third_run.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("1 records sent: 0 accepted, 1 duplicates"),
        "{stderr}"
    );
    assert_eq!(all_deployments(&base, &admin).await.len(), expected.len());
}

async fn a_repository_without_deployments_is_read_from_its_workflow_runs(db: TestDb) {
    let (base, admin, ingest) = shiplog(&db).await;
    let github = mock(GitHub::new).await;
    let dir = tempfile::tempdir().unwrap();
    let api = github.uri();
    let dry = import(
        dir.path(),
        &[
            "github",
            "--repo",
            "acme/empty",
            "--api-url",
            &api,
            "--workflow",
            "blank.yaml=production",
            "--dry-run",
        ],
        &[("GITHUB_TOKEN", "ghp_mock")],
    )
    .await;
    assert_eq!(
        dry.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let printed: Vec<Value> = String::from_utf8_lossy(&dry.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(printed.len(), 3);
    assert_eq!(printed[0]["source"], "github-run");
    assert_eq!(printed[0]["repository"], "acme/empty");
    assert!(
        all_deployments(&base, &admin).await.is_empty(),
        "a dry run sends nothing"
    );
    let sent = import(
        dir.path(),
        &[
            "github",
            "--repo",
            "acme/empty",
            "--api-url",
            &api,
            "--workflow",
            "CI",
        ],
        &[
            ("GITHUB_TOKEN", "ghp_mock"),
            ("SHIPLOG_URL", &base),
            ("SHIPLOG_KEY", &ingest),
        ],
    )
    .await;
    assert_eq!(
        sent.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let listed = all_deployments(&base, &admin).await;
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0]["application"], "empty");
    assert_eq!(listed[0]["environment"], "production");
    assert_eq!(listed[0]["build_number"], "562");
}

/// The mock GitLab: project `acme/shop` (id 7) with `HISTORY` deployments in `updated_at`
/// order, 100 a page; deployment `n` has job `1000 + n` and its commit; failed every seventh,
/// still running every thirteenth; `updated_after` honoured.
struct GitLab {
    bad_gateway: AtomicUsize,
    too_many: AtomicUsize,
}

impl Respond for GitLab {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if header(request, "private-token") != Some("glpat-mock") {
            return ResponseTemplate::new(401)
                .set_body_json(json!({"message": "401 Unauthorized"}));
        }
        let path = request.url.path();
        if path == "/api/v4/projects/acme%2Fshop" || path == "/api/v4/projects/7" {
            return ResponseTemplate::new(200)
                .set_body_json(json!({"id": 7, "path_with_namespace": "acme/shop"}));
        }
        if path != "/api/v4/projects/acme%2Fshop/deployments"
            && path != "/api/v4/projects/7/deployments"
        {
            return ResponseTemplate::new(404).set_body_json(json!({"message": "404 Not Found"}));
        }
        let query: std::collections::HashMap<String, String> =
            request.url.query_pairs().into_owned().collect();
        assert_eq!(
            query.get("order_by").map(String::as_str),
            Some("updated_at")
        );
        assert_eq!(query.get("sort").map(String::as_str), Some("asc"));
        let page: u64 = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        if page == 2 && GitHub::take(&self.bad_gateway) {
            return ResponseTemplate::new(502);
        }
        if page == 3 && GitHub::take(&self.too_many) {
            return ResponseTemplate::new(429).insert_header("retry-after", "1");
        }
        let after = query.get("updated_after").cloned();
        let template: Vec<Value> = serde_json::from_str(GITLAB_DEPLOYMENTS).unwrap();
        let all: Vec<Value> = (1..=HISTORY)
            .map(|n| {
                let mut d = template[usize::try_from(n % 2).unwrap()].clone();
                d["id"] = json!(n);
                d["iid"] = json!(n);
                d["sha"] = json!(sha(n));
                d["status"] = json!(if n % 13 == 0 {
                    "running"
                } else if n % 7 == 0 {
                    "failed"
                } else {
                    "success"
                });
                d["created_at"] = json!(day(n, 10));
                d["updated_at"] = json!(day(n, 11));
                d["deployable"]["id"] = json!(1000 + n);
                d["deployable"]["started_at"] = json!(day(n, 10));
                d["deployable"]["finished_at"] = json!(day(n, 11));
                d["deployable"]["commit"]["id"] = json!(sha(n));
                d["deployable"]["commit"]["created_at"] = json!(day(n, 7));
                d["deployable"]["commit"]["message"] =
                    json!(format!("Change {n}\n\nSee merge request !{n}"));
                d
            })
            .filter(|d| {
                after
                    .as_deref()
                    .is_none_or(|a| d["updated_at"].as_str().unwrap() > a)
            })
            .collect();
        let start = usize::try_from((page - 1) * 100).unwrap().min(all.len());
        let end = (start + 100).min(all.len());
        let next = if end < all.len() {
            (page + 1).to_string()
        } else {
            String::new()
        };
        ResponseTemplate::new(200)
            .insert_header("x-next-page", next)
            .insert_header("x-total", all.len().to_string())
            .set_body_json(&all[start..end])
    }
}

async fn gitlab_history_arrives_through_its_pagination_and_reruns_read_what_is_new(db: TestDb) {
    let (base, admin, ingest) = shiplog(&db).await;
    let gitlab = mock(|_| GitLab {
        bad_gateway: AtomicUsize::new(1),
        too_many: AtomicUsize::new(1),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let host = gitlab.uri();
    let env = [
        ("SHIPLOG_URL", base.as_str()),
        ("SHIPLOG_KEY", ingest.as_str()),
        ("GITLAB_TOKEN", "glpat-mock"),
    ];
    let args = [
        "gitlab",
        "--project",
        "acme/shop",
        "--api-url",
        host.as_str(),
    ];
    let run = import(dir.path(), &args, &env).await;
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("502 Bad Gateway; trying again"), "{stderr}");
    assert!(
        stderr.contains("rate limited (429 Too Many Requests); waiting 1 s"),
        "{stderr}"
    );
    let running = (1..=HISTORY).filter(|n| n % 13 == 0).count();
    assert!(
        stderr.contains(&format!("{running} skipped (not finished)")),
        "{stderr}"
    );
    let listed = all_deployments(&base, &admin).await;
    assert_eq!(listed.len(), usize::try_from(HISTORY).unwrap() - running);
    let seventh = listed.iter().find(|d| d["commit_sha"] == sha(7)).unwrap();
    assert_eq!(seventh["status"], "failed");
    assert_eq!(seventh["provider"], "gitlab-ci");
    assert_eq!(seventh["application"], "shop");
    assert_eq!(seventh["deployed_by"], "root");
    assert_eq!(seventh["external_id"], "1007");
    assert_eq!(
        listed[0]["commit_sha"],
        sha(HISTORY),
        "newest first: {}",
        listed[0]
    );
    // Again: only what was updated after the newest read, which is nothing.
    let again = import(dir.path(), &args, &env).await;
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("0 records sent"), "{stderr}");
    let requests = gitlab.received_requests().await.unwrap();
    let last = requests
        .last()
        .unwrap()
        .url
        .query()
        .unwrap_or_default()
        .to_owned();
    assert!(
        last.contains("updated_after=2024-08-18T11%3A00%3A00Z"),
        "{last}"
    );
}

async fn a_file_is_sent_in_chunks_and_refusals_name_its_lines(db: TestDb) {
    let (base, admin, ingest) = shiplog(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let mut file = String::new();
    for n in 1..=1203u64 {
        if n == 700 {
            file.push_str("{\"application\": \"web\"}\n");
            continue;
        }
        file.push_str(
            &json!({
                "application": "web", "environment": "production", "status": "success",
                "finished_at": day(n % 300, 12), "external_id": format!("file-{n}"),
            })
            .to_string(),
        );
        file.push('\n');
    }
    std::fs::write(dir.path().join("history.ndjson"), file).unwrap();
    let env = [
        ("SHIPLOG_URL", base.as_str()),
        ("SHIPLOG_KEY", ingest.as_str()),
    ];
    let run = import(dir.path(), &["file", "history.ndjson"], &env).await;
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "a refused line: {stderr}");
    assert!(
        stderr.contains("1203 records sent: 1202 accepted, 0 duplicates, 1 rejected"),
        "{stderr}"
    );
    assert!(stderr.contains("line 700: "), "{stderr}");
    assert_eq!(all_deployments(&base, &admin).await.len(), 1202);
    let again = import(dir.path(), &["file", "history.ndjson"], &env).await;
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("0 accepted, 1202 duplicates"), "{stderr}");
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name(shiplog_store::testdb::TestDb::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                async fn $name() {
                    let Some(db) = shiplog_store::testdb::TestDb::postgres() else { return };
                    super::$name(db).await;
                }
            )*
        }
    };
}

on_both_backends!(
    github_history_arrives_in_order_through_limits_and_a_stop,
    a_repository_without_deployments_is_read_from_its_workflow_runs,
    gitlab_history_arrives_through_its_pagination_and_reruns_read_what_is_new,
    a_file_is_sent_in_chunks_and_refusals_name_its_lines,
);
