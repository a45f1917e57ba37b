//! The dashboard in a real browser: headless Chromium driven through chromedriver (WebDriver,
//! with fantoccini), against the real server on SQLite and PostgreSQL.
//!
//! One walk through the dashboard: sign in with a key, see the board show the version just
//! deployed, see a deployment arrive on the list without a reload, read the DORA figures of a
//! small known history, redeliver a hook delivery from its deployment's page as an admin, and
//! find no redeliver button as a reader. No page may log a JavaScript error or a Content-Security-Policy violation. Each page
//! is saved as a screenshot under `target/dashboard-screenshots/`.
//!
//! `cargo xtask ci` installs Debian's `chromium` and `chromium-driver` when they are missing.
//! Without them the tests skip (counted as skipped by `cargo xtask ci`), except under `CI=true`,
//! where they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use shiplog_blackbox::{Backend, TestApp, receiver, spawn_app};
use wiremock::ResponseTemplate;

/// How long a page may take to show what it should.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// chromedriver on a free port, stopped when dropped.
pub(crate) struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|path| path.is_file())
}

/// Starts chromedriver; `None` (the test skips) when Chromium or its driver is not installed,
/// except under `CI=true`, where that is a failure.
pub(crate) async fn driver() -> Option<Driver> {
    let (Some(chromedriver), Some(_)) = (program("chromedriver"), program("chromium")) else {
        let reason = "Chromium or chromedriver is not installed \
                      (Debian: apt-get install chromium chromium-driver; cargo xtask ci does it)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true and the browser tests cannot run: {reason}");
        }
        shiplog_store::testdb::skip(reason);
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    // Ready when its status endpoint answers.
    let client = awc::Client::default();
    let started = Instant::now();
    loop {
        if let Ok(response) = client.get(format!("{}/status", driver.url)).send().await
            && response.status().is_success()
        {
            return Some(driver);
        }
        assert!(
            started.elapsed() < PATIENCE,
            "chromedriver did not answer on {}",
            driver.url
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn browser(driver: &Driver) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": program("chromium").unwrap(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,900"],
        }),
    );
    capabilities.insert("goog:loggingPrefs".to_owned(), json!({"browser": "ALL"}));
    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// axe-core's script (`cargo xtask ci` installs it into `target/node-tools`), to inject into
/// each page; `None` (the check skips) when it is missing, except under `CI=true`.
fn axe() -> Option<&'static str> {
    static AXE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    AXE.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/node-tools/node_modules/axe-core/axe.min.js");
        let script = std::fs::read_to_string(&path).ok();
        if script.is_none() {
            let reason = "axe-core is not installed (cargo xtask tools installs it)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true and the accessibility checks cannot run: {reason}");
            }
            shiplog_store::testdb::skip(reason);
        }
        script
    })
    .as_deref()
}

/// Where screenshots go.
fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One walk: the browser and what it is pointed at.
pub(crate) struct Walk<'a> {
    pub(crate) app: &'a TestApp,
    pub(crate) driver: &'a Driver,
    pub(crate) client: Client,
    pub(crate) backend: &'static str,
}

impl Walk<'_> {
    pub(crate) async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.app.base))
            .await
            .unwrap();
    }

    pub(crate) async fn text(&self, css: &str) -> String {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
            .text()
            .await
            .unwrap()
    }

    /// Waits until the page has `css` with text containing `wanted` (after a click, the old
    /// page may still be showing), and returns that text.
    pub(crate) async fn shows(&self, css: &str, wanted: &str) -> String {
        let started = Instant::now();
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = element.text().await
                && text.contains(wanted)
            {
                return text;
            }
            if started.elapsed() >= PATIENCE {
                let main = match self.client.find(Locator::Css("main")).await {
                    Ok(main) => main.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                panic!(
                    "{css} never showed {wanted:?} (at {:?}, the page says {main:?})",
                    self.client.current_url().await.map(|u| u.to_string())
                );
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the text of `css` is no longer `was` (the script changes it after a
    /// promise settles), and returns the new text.
    pub(crate) async fn leaves(&self, css: &str, was: &str) -> String {
        let started = Instant::now();
        loop {
            let text = self.text(css).await;
            if text != was {
                return text;
            }
            assert!(started.elapsed() < PATIENCE, "{css} still says {was:?}");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    /// Clicks the element `css` names.
    pub(crate) async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} to click: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Types `text` into the field `css` names.
    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} to type into: {e}"))
            .send_keys(text)
            .await
            .unwrap();
    }

    /// Scrolls the element of id `id` to the top of the window.
    pub(crate) async fn scroll_to(&self, id: &str) {
        self.client
            .execute(
                "document.getElementById(arguments[0]).scrollIntoView();",
                vec![json!(id)],
            )
            .await
            .unwrap();
    }

    /// Saves a screenshot, and fails on anything the page logged as an error (a script error, a
    /// refused resource, a Content-Security-Policy violation).
    pub(crate) async fn check(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(
            screenshots().join(format!("{}-{name}.png", self.backend)),
            png,
        )
        .unwrap();
        let severe = self.severe().await;
        assert!(severe.is_empty(), "{name} logged errors: {severe:?}");
        self.accessible(name).await;
    }

    /// What the pages logged as errors since the last look (the browser's log is read once).
    pub(crate) async fn severe(&self) -> Vec<Value> {
        let session = self.client.session_id().await.unwrap().unwrap();
        let mut response = awc::Client::default()
            .post(format!("{}/session/{session}/se/log", self.driver.url))
            .send_json(&json!({"type": "browser"}))
            .await
            .unwrap();
        let log: Value = response.json().limit(1 << 20).await.unwrap();
        log["value"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .cloned()
            .collect()
    }

    /// Runs axe-core on the page and fails on any serious or critical violation.
    pub(crate) async fn accessible(&self, name: &str) {
        let Some(axe) = axe() else { return };
        self.client.execute(axe, vec![]).await.unwrap();
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']})
                   .then((r) => done(r.violations
                     .filter((v) => v.impact === 'serious' || v.impact === 'critical')
                     .map((v) => ({rule: v.id, impact: v.impact, help: v.help,
                                   where: v.nodes.slice(0, 3).map((n) => n.target.join(' '))}))))
                   .catch((e) => done([{rule: 'axe failed', help: String(e)}]));",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(found, json!([]), "{name}: accessibility violations");
    }

    /// Fails when the page is wider than the window (sideways page scroll); a wide table may
    /// scroll inside its own box.
    pub(crate) async fn fits(&self, name: &str) {
        let widths = self
            .client
            .execute(
                "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            widths[0].as_i64() <= widths[1].as_i64(),
            "{name} scrolls sideways at phone width: {widths}"
        );
    }

    pub(crate) async fn sign_in(&self, key: &str) {
        self.open("/sign-in").await;
        let field = self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css("#key"))
            .await
            .unwrap();
        field.send_keys(key).await.unwrap();
        self.check("sign-in").await;
        self.client
            .find(Locator::Css("form[action='/sign-in'] button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        self.shows("main h1", "Overview").await;
    }

    pub(crate) async fn sign_out(&self) {
        self.client
            .find(Locator::Css("form.sign-out button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        self.shows("main h1", "Sign in to shiplog").await;
    }
}

fn deploy(run: u32, sha: &str, status: &str, environment: &str) -> Value {
    json!({
        "event": "deploy.completed", "project_slug": "my-project", "status": status,
        "ref": "refs/heads/main", "commit_sha": sha,
        "commit_message": format!("feat: step {run} #PR-{run}"),
        "environment": environment, "url": format!("https://ci.example.com/runs/{run}"),
        "deployed_by": "ana", "repo_url": "https://github.com/acme/my-project",
    })
}

/// Waits until `check` holds for the API's answer at `path`.
async fn until(app: &TestApp, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (_, body) = app.get(path, &app.admin_key).await;
        if check(&body) {
            return body;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{path} never got there: {body}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn walk(backend: Backend, name: &'static str) {
    let Some(driver) = driver().await else { return };
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // A hook whose receiver accepts everything, so the deployments below have deliveries.
    let target = receiver(ResponseTemplate::new(200)).await;
    let (status, hook) = app
        .post(
            "/api/v1/projects/my-project/hooks",
            &app.admin_key,
            json!({"name": "Chat", "target_url": format!("{}/notify", target.uri()),
                   "trigger_when": {"events": ["deployment.succeeded", "deployment.failed"]}}),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let hook = hook["id"].as_str().unwrap().to_owned();

    // A known production history: three successes and one failure.
    let shas = [
        "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "3333333ccccccccccccccccccccccccccccccccc",
        "4444444ddddddddddddddddddddddddddddddddd",
    ];
    app.clienwork(&app.admin_key, deploy(1, shas[0], "success", "production"))
        .await;
    app.clienwork(&app.admin_key, deploy(2, shas[1], "failed", "production"))
        .await;
    app.clienwork(&app.admin_key, deploy(3, shas[2], "success", "production"))
        .await;
    let last = app
        .clienwork(&app.admin_key, deploy(4, shas[3], "success", "production"))
        .await;
    // An incident opened now, naming nothing: it fails the last success before it.
    let (status, incident) = app
        .post(
            "/api/v1/incidents",
            &app.admin_key,
            json!({"project": "my-project", "environment": "production", "external_id": "INC-1",
                   "title": "Checkout returns 500", "severity": "P1"}),
        )
        .await;
    assert_eq!(status, 201, "{incident}");
    // While it is open, a hotfix and a revert: rework, each for what it says of itself.
    let mut hotfix = deploy(
        6,
        "6666666fffffffffffffffffffffffffffffffff",
        "success",
        "production",
    );
    hotfix["ref"] = json!("refs/heads/hotfix/checkout");
    hotfix["commit_message"] = json!("fix: checkout answers 500");
    app.clienwork(&app.admin_key, hotfix).await;
    let mut revert = deploy(
        7,
        "7777777aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "success",
        "production",
    );
    revert["commit_message"] = json!("Revert \"feat: step 3\"\n\nThis reverts commit 3333333.");
    app.clienwork(&app.admin_key, revert).await;

    let walk = Walk {
        app: &app,
        driver: &driver,
        client: browser(&driver).await,
        backend: name,
    };
    walk.sign_in(&app.admin_key).await;
    walk.check("projects").await;

    // The board shows the version deployed last.
    walk.open("/projects/my-project").await;
    assert_eq!(walk.text("table.board a.version code").await, "7777777");
    walk.check("board").await;

    // DORA of the known history: 5 successes, 1 failure in production, the incident that
    // fails the last success before it, and the hotfix and the revert made during it.
    walk.open("/dora?project=my-project&days=30").await;
    assert_eq!(walk.text("#change-failure-rate .value").await, "33.3 %");
    let frequency = walk.text("#deployment-frequency").await;
    assert!(
        frequency.contains("5 successful deployments"),
        "{frequency}"
    );
    let failures = walk.text("#change-failure-rate").await;
    assert!(
        failures.contains(
            "2 of 6 finished deployments counted as failed: 1 failed, \
             1 succeeded but caused an incident (1 incident linked)"
        ),
        "{failures}"
    );
    // Rework: the hotfix, the revert, and deploy 3, the success that ended deploy 2's failure.
    assert_eq!(walk.text("#rework-rate .value").await, "50.0 %");
    let rework = walk.text("#rework-rate").await;
    assert!(
        rework.contains("3 of 6 finished deployments were rework"),
        "{rework}"
    );
    assert!(
        rework.contains("1 from a hotfix branch, 1 a revert, 1 during a failure"),
        "{rework}"
    );
    assert!(rework.to_lowercase().contains("no band"), "{rework}");
    // One recovery (deploy 3 ended deploy 2's failure; the incident is open): too few for a
    // band. No lead time was measured (no commit was seen before its deployment).
    // (Bands are shown in capitals: compare in lower case.)
    let recovery = walk.text("#recovery-time").await.to_lowercase();
    assert!(
        recovery.contains("1 recovery: 1 after a failed deployment")
            && recovery.contains("too few for a band (fewer than 5)"),
        "{recovery}"
    );
    assert!(
        walk.text("#lead-time")
            .await
            .to_lowercase()
            .contains("no band: nothing measured")
    );
    // The 30 days before had nothing: more deployments is better, a higher failure rate
    // cannot be compared with none.
    assert!(
        frequency.contains("Previous 30 days: 0.00 per day · better"),
        "{frequency}"
    );
    assert!(
        failures.contains("Previous 30 days: — · nothing to compare"),
        "{failures}"
    );
    // A chart per metric; this week's bar of successes says 5, and so does the table.
    assert_eq!(walk.count("section.trend svg").await, 5);
    let last_bar: Value = walk
        .client
        .execute(
            "return [...document.querySelectorAll('#trend-deployment-frequency text.value')]\
             .pop().textContent;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(last_bar, json!("5"));
    let weeks = walk.text("details.trend-table tbody tr:last-child").await;
    assert!(weeks.contains("5"), "{weeks}");
    // The same figures per application and per team (production has no team).
    let by_application = walk.text("#by-application tbody").await;
    assert!(
        by_application.contains("my-project") && by_application.contains("33.3 % (6)"),
        "{by_application}"
    );
    assert!(walk.text("#by-team tbody").await.contains("no team"));
    walk.check("dora").await;
    walk.scroll_to("trends-heading").await;
    walk.check("dora-trends").await;
    walk.scroll_to("by-application").await;
    walk.check("dora-breakdown").await;
    walk.scroll_to("main").await;
    // The figure links to the deployments behind it: the one failure, by its page.
    walk.click("#change-failure-rate a.behind").await;
    walk.shows("main h1", "Behind the DORA figures").await;
    assert_eq!(walk.count("#failures tbody tr").await, 2);
    assert_eq!(walk.count("#successes tbody tr").await, 5);
    assert_eq!(walk.count("#rework tbody tr").await, 3);
    let reworked = walk.text("#rework tbody").await;
    assert!(
        reworked.contains("its branch or ref is a hotfix")
            && reworked.contains("its commit reverts another"),
        "{reworked}"
    );
    assert_eq!(walk.count("#incidents tbody tr").await, 1);
    let incident = walk.text("#incidents tbody tr").await;
    assert!(incident.contains("Checkout returns 500"), "{incident}");
    assert!(
        incident.contains("the last success before it"),
        "{incident}"
    );
    walk.check("dora-deployments").await;

    // A deployment arrives on the open list without a reload.
    walk.open("/deployments").await;
    assert_eq!(walk.count("table.deployments tbody tr").await, 6);
    let marker: Value = walk
        .client
        .execute(
            "window.shiplogMarker = 42; return window.shiplogMarker;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(marker, json!(42));
    let live = app
        .clienwork(
            &app.admin_key,
            deploy(
                5,
                "5555555eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
                "success",
                "staging",
            ),
        )
        .await;
    let row = walk.text(&format!("tr[id='d-{live}']")).await;
    assert!(row.contains("staging") && row.contains("5555555"), "{row}");
    let same_page: Value = walk
        .client
        .execute("return window.shiplogMarker;", vec![])
        .await
        .unwrap();
    assert_eq!(same_page, json!(42), "the page was reloaded");
    walk.check("deployments").await;

    walk.open("/projects/my-project/references/PR-4").await;
    assert!(walk.text("main").await.contains("production"));
    walk.check("reference").await;

    // An admin redelivers a delivery: the receiver gets it once more.
    let deliveries = format!("/api/v1/hooks/{hook}/deliveries");
    until(&app, &deliveries, |body| {
        body["items"].as_array().is_some_and(|items| {
            items.len() == 7 && items.iter().all(|d| d["status"] == "delivered")
        })
    })
    .await;
    let before = target.received_requests().await.unwrap().len();
    walk.open(&format!("/deployments/{last}")).await;
    assert!(walk.text("dl.fields").await.contains(shas[3]));
    // What it changed since deploy 3 (deploy 2 failed): its own commit, with the forge's links.
    let changed = walk.text("section.changes").await;
    assert!(
        changed.contains("Brings 1 commit since the previous successful deployment")
            && changed.contains("PR-4")
            && changed.contains("Run by: ana"),
        "{changed}"
    );
    let compare: String = walk
        .client
        .find(Locator::Css(
            "section.changes p.change-kind a[rel~='noopener']",
        ))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        compare,
        format!(
            "https://github.com/acme/my-project/compare/{}...{}",
            shas[2], shas[3]
        )
    );
    assert!(walk.text("section.delivery").await.contains("HTTP 200"));
    walk.check("deployment").await;
    walk.click("section.delivery form button").await;
    // Back on the deployment's page, at the delivery.
    walk.shows("main h1", "my-project to production").await;
    let started = Instant::now();
    while walk
        .client
        .current_url()
        .await
        .unwrap()
        .fragment()
        .is_none()
    {
        assert!(
            started.elapsed() < PATIENCE,
            "no redirect after redelivering"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    while target.received_requests().await.unwrap().len() <= before {
        assert!(started.elapsed() < PATIENCE, "the redelivery never arrived");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        walk.client
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with(&last)
    );
    walk.open(&format!("/hooks/{hook}")).await;
    walk.check("hook").await;
    walk.open("/projects/my-project/hooks").await;
    walk.check("hooks").await;

    // The overview: a run under way, a failure not followed by a success, the open incident,
    // and production one commit (and its change request) behind staging, which runs deploy 5.
    let mut running = deploy(
        8,
        "8888888aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "running",
        "production",
    );
    running["event"] = json!("deploy.started");
    app.clienwork(&app.admin_key, running).await;
    app.clienwork(
        &app.admin_key,
        deploy(
            9,
            "9999999aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "failed",
            "staging",
        ),
    )
    .await;
    walk.open("/").await;
    let deploying = walk.text("#deploying-now").await;
    assert!(deploying.contains("8888888"), "{deploying}");
    let attention = walk.text("#attention").await;
    assert!(
        attention.contains("9999999")
            && attention.contains("Checkout returns 500")
            && !attention.contains("2222222"),
        "deploy 2's failure was followed by a success: {attention}"
    );
    let matrix = walk.text("#where-is-what").await;
    assert!(
        matrix.contains("1 commit, 1 change request behind staging"),
        "{matrix}"
    );
    assert_eq!(walk.count("#where-is-what .behind-by").await, 1);
    assert!(walk.text("#figures").await.contains("My Project"));
    walk.check("overview").await;
    walk.scroll_to("where-is-what").await;
    walk.check("overview-matrix").await;

    // Keys in the browser: an admin creates an ingest key, sees its secret once, copies it,
    // uses it, and revokes it; a signing key shows its id and secret once.
    walk.open("/keys").await;
    walk.check("keys").await;
    let form = "form[action='/keys']";
    walk.type_into(&format!("{form} input[name='name']"), "pipeline")
        .await;
    walk.click(&format!("{form} button[type='submit']")).await;
    walk.shows("main h1", "API key created").await;
    let secret = walk.text("code#secret").await;
    assert!(secret.starts_with("shiplog_"), "{secret}");
    walk.click("button[data-copy='secret']").await;
    let copied = walk.leaves("button[data-copy='secret']", "Copy").await;
    assert!(
        copied == "Copied" || copied == "Selected: copy it now",
        "{copied}"
    );
    walk.check("key-created").await;
    let event = deploy(
        10,
        "aaaa000aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "success",
        "staging",
    );
    assert_eq!(
        app.post("/api/webhooks/ci", &secret, event.clone()).await.0,
        200
    );
    walk.open("/keys").await;
    let row = walk.text("#api-keys tbody tr:last-child").await;
    assert!(row.contains("pipeline") && row.contains("ingest"), "{row}");
    walk.click("#api-keys tbody tr:last-child form button")
        .await;
    walk.shows("main h1", "Keys of").await;
    assert!(!walk.text("#api-keys").await.contains("pipeline"));
    assert_eq!(app.post("/api/webhooks/ci", &secret, event).await.0, 401);
    walk.type_into(
        "form[action='/signing-keys'] input[name='name']",
        "envtracker",
    )
    .await;
    walk.click("form[action='/signing-keys'] button[type='submit']")
        .await;
    walk.shows("main h1", "Signing key created").await;
    assert!(walk.text("code#key-id").await.starts_with("whk_"));
    walk.open("/keys").await;
    assert!(walk.text("#signing-keys").await.contains("envtracker"));

    // An integration made in the browser: its URL and secret shown once, with the warning
    // that this server has no public address; a delivery signed with that secret is taken;
    // rotating shows a new secret, which works too.
    walk.open("/integrations").await;
    walk.type_into(
        "form[action='/integrations'] input[name='name']",
        "acme/web",
    )
    .await;
    walk.click("form[action='/integrations'] button[type='submit']")
        .await;
    walk.shows("main h1", "Integration created").await;
    let url = walk.text("code#webhook-url").await;
    let secret = walk.text("code#secret").await;
    assert!(
        walk.text("#public-url-unset")
            .await
            .contains("SHIPLOG_PUBLIC_URL")
    );
    walk.check("integration-created").await;
    let integration = url
        .split("/api/v1/integrations/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    // GitHub's own ping payload (tests/fixtures/github, with its licence note there).
    let ping = include_str!("fixtures/github/ping.json");
    let (status, body) =
        crate::github::deliver(&app, &integration, "ping", "walk-1", ping, Some(&secret)).await;
    assert!(status < 300, "{status} {body}");
    walk.open(&format!("/integrations/{integration}")).await;
    walk.click("form.rotate button").await;
    walk.shows("main h1", "Secret rotated").await;
    let rotated = walk.text("code#secret").await;
    assert_ne!(rotated, secret);
    let (status, body) =
        crate::github::deliver(&app, &integration, "ping", "walk-2", ping, Some(&rotated)).await;
    assert!(status < 300, "{status} {body}");

    // A hook made from a preset in the browser (Slack, its webhook URL a local receiver), its
    // signing secret shown once, then a test delivery sent from its page.
    let slack = receiver(ResponseTemplate::new(200)).await;
    walk.open("/projects/my-project/hooks").await;
    let preset = "form[action='/projects/my-project/hooks']";
    for (field, value) in [
        ("name", "Team chat".to_owned()),
        ("token", format!("{}/slack", slack.uri())),
    ] {
        walk.type_into(&format!("{preset} input[name='{field}']"), &value)
            .await;
    }
    walk.click(&format!(
        "{preset} select[name='preset'] option[value='slack']"
    ))
    .await;
    walk.click(&format!("{preset} button[type='submit']")).await;
    walk.shows("main h1", "Hook created").await;
    assert!(walk.text("code#secret").await.starts_with("whsec_"));
    walk.check("hook-created").await;
    walk.click("main a[href^='/hooks/']").await;
    walk.shows("main h1", "Hook Team chat").await;
    walk.click("form[action$='/test'] button").await;
    walk.shows("section.delivery", "hook.test").await;
    let requests = slack.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "the test delivery reached the receiver");
    assert_eq!(requests[0].url.path(), "/slack");
    walk.check("hook-tested").await;

    // A hook disabled and enabled again from its page.
    let enabled = |on: bool| move |body: &Value| body["enabled"] == json!(on);
    walk.open(&format!("/hooks/{hook}")).await;
    walk.click(&format!("form[action='/hooks/{hook}/enabled'] button"))
        .await;
    walk.shows("dl.fields", "disabled").await;
    until(&app, &format!("/api/v1/hooks/{hook}"), enabled(false)).await;
    walk.click(&format!("form[action='/hooks/{hook}/enabled'] button"))
        .await;
    walk.shows("dl.fields", "Disable").await;
    until(&app, &format!("/api/v1/hooks/{hook}"), enabled(true)).await;

    // A reader sees the same hook without the button.
    walk.sign_out().await;
    let reader = app.key("read", None).await;
    walk.sign_in(&reader).await;
    walk.open(&format!("/hooks/{hook}")).await;
    walk.text("section.delivery").await;
    assert_eq!(walk.count("section.delivery form").await, 0);
    walk.check("hook-read").await;
    walk.open(&format!("/deployments/{last}")).await;
    walk.text("section.delivery").await;
    assert_eq!(walk.count("section.delivery form").await, 0);

    // An integration's page says why a delivery did nothing.
    let (status, integration) = app
        .post(
            "/api/v1/integrations",
            &app.admin_key,
            json!({"provider": "github", "name": "acme/shop", "project": "my-project"}),
        )
        .await;
    assert_eq!(status, 201, "{integration}");
    let integration = integration["id"].as_str().unwrap();
    let (status, _) = app
        .post_raw(
            &format!("/api/v1/integrations/{integration}/webhook"),
            &[("X-GitHub-Event", "ping")],
            "{}".to_owned(),
        )
        .await;
    assert_eq!(status, 401, "unsigned");
    walk.open(&format!("/integrations/{integration}")).await;
    assert!(walk.text("main table").await.contains("rejected"));
    // This server has no SHIPLOG_PUBLIC_URL: the page says the URL may not be reachable.
    assert!(
        walk.text("#public-url-unset")
            .await
            .contains("SHIPLOG_PUBLIC_URL is not set"),
    );
    walk.check("integration").await;

    // An incident left open for weeks is named on the DORA page, for someone to close.
    let opened = (time::OffsetDateTime::now_utc() - time::Duration::days(20))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (status, incident) = app
        .post(
            "/api/v1/incidents",
            &app.admin_key,
            json!({"project": "my-project", "environment": "production", "external_id": "INC-OLD",
                   "title": "Queue backlog never cleared", "opened_at": opened}),
        )
        .await;
    assert_eq!(status, 201, "{incident}");
    walk.open("/dora?project=my-project&days=30").await;
    let notice = walk.text("#incidents-open-too-long").await;
    assert!(
        notice.contains("1 incident has been open for more than a week")
            && notice.contains("Queue backlog never cleared, open since")
            && notice.contains("(20 days)"),
        "{notice}"
    );
    walk.check("dora-open-incident").await;

    // At phone width every page fits: no sideways page scroll (wide tables scroll in their box).
    walk.client.set_window_size(390, 844).await.unwrap();
    walk.open("/projects/my-project").await;
    walk.text("table.board").await;
    walk.fits("board").await;
    walk.check("board-phone").await;
    for (path, name) in [
        ("/".to_owned(), "projects"),
        ("/deployments".to_owned(), "deployments"),
        (format!("/deployments/{last}"), "deployment"),
        ("/dora?project=my-project&days=30".to_owned(), "dora"),
        (
            "/dora/deployments?project=my-project&days=30".to_owned(),
            "dora-deployments",
        ),
        (
            "/projects/my-project/references/PR-4".to_owned(),
            "reference",
        ),
        (format!("/hooks/{hook}"), "hook"),
        ("/integrations".to_owned(), "integrations"),
        ("/sessions".to_owned(), "sessions"),
    ] {
        walk.open(&path).await;
        walk.text("main h1").await;
        walk.fits(name).await;
        walk.check(&format!("{name}-phone")).await;
    }

    walk.client.close().await.unwrap();
}

#[actix_web::test]
async fn the_dashboard_in_chromium_on_sqlite() {
    walk(Backend::Sqlite, "sqlite").await;
}

#[actix_web::test]
async fn the_dashboard_in_chromium_on_postgres() {
    walk(Backend::Postgres, "postgres").await;
}
