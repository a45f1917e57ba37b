//! Signing in through a real OpenID provider, in headless Chromium, on both backends.
//!
//! The provider is npm's `oidc-provider` (an OpenID-certified implementation), run under the
//! machine's Node.js by `tests/oidc/provider.mjs`; `cargo xtask ci` (and `cargo xtask tools`)
//! install it into `target/node-tools`. Without Node.js or the package the tests skip, except
//! under `CI=true`, where they fail.
//!
//! One walk per backend: a person signs in and sees their name and role; their admin action
//! is audited as them; removed from the admin group, their next sign-in leaves them a reader
//! in the same session; a callback with a wrong `state`, a replayed code, an expired ID token
//! and one signed by a key the provider never published are each refused with a page that
//! says so; after the provider rotates its signing key, signing in works again; someone in no
//! mapped group is refused with a page that names their groups.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use fantoccini::Locator;
use serde_json::{Value, json};
use shiplog_blackbox::{Backend, spawn_app_with};

use crate::browser::{PATIENCE, Walk, browser, driver};

const CLIENT_ID: &str = "shiplog";
const CLIENT_SECRET: &str = "a-client-secret-for-the-sign-in-tests";

/// The provider's process, stopped when dropped (closing its standard input ends it too).
struct Provider {
    child: Child,
    _stdin: ChildStdin,
    base: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    /// Starts the provider for a client whose callback is `redirect`; `None` (the test skips)
    /// without Node.js or `oidc-provider`, except under `CI=true`.
    fn start(redirect: &str) -> Option<Self> {
        let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/node-tools");
        let installed = tools
            .join("node_modules/oidc-provider/package.json")
            .is_file();
        let node = std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("node"))
                .find(|p| p.is_file())
        });
        let (true, Some(node)) = (installed, node) else {
            let reason =
                "Node.js or npm's oidc-provider is not installed (cargo xtask tools installs it)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true and the sign-in tests cannot run: {reason}");
            }
            shiplog_store::testdb::skip(reason);
            return None;
        };
        // Node resolves the script's imports from its own directory: it runs beside the
        // installed packages.
        let script = tools.join("shiplog-test-provider.mjs");
        std::fs::copy(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc/provider.mjs"),
            &script,
        )
        .unwrap();
        let port = free_port();
        let mut child = Command::new(node)
            .arg(&script)
            .args([&port.to_string(), CLIENT_ID, CLIENT_SECRET, redirect])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Its warnings and errors, for when a test fails.
            .stderr(std::fs::File::create(tools.join(format!("provider-{port}.log"))).unwrap())
            .spawn()
            .expect("node starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        // Ready when it says so (its first line), or failed when it says nothing in time.
        let (said, heard) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok).unwrap_or_default();
            let _ = said.send(first);
            // Whatever it prints later is read too: a closed pipe would end it.
            for _ in lines {}
        });
        let line = heard
            .recv_timeout(PATIENCE)
            .expect("the OpenID provider starts");
        let base = format!("http://127.0.0.1:{port}");
        assert_eq!(line.trim(), format!("listening {base}"));
        Some(Self {
            child,
            _stdin: stdin,
            base,
        })
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let client = awc::Client::default();
        let url = format!("{}{path}", self.base);
        let request = match method {
            "PUT" => client.put(url),
            "POST" => client.post(url),
            _ => client.get(url),
        };
        let mut response = match body {
            Some(body) => request.send_json(&body).await.unwrap(),
            None => request.send().await.unwrap(),
        };
        assert!(response.status().is_success(), "{method} {path}");
        response.json().await.unwrap_or(Value::Null)
    }

    async fn account(&self, id: &str, name: &str, groups: &[&str]) {
        self.call(
            "PUT",
            &format!("/test/accounts/{id}"),
            Some(json!({"name": name, "email": format!("{id}@example.test"), "groups": groups})),
        )
        .await;
    }
}

/// Signs in to the dashboard with an API key, as a browser elsewhere would; returns the
/// session cookie.
async fn key_session(base: &str, key: &str) -> String {
    let response = awc::Client::builder()
        .disable_redirects()
        .finish()
        .post(format!("{base}/sign-in"))
        .send_form(&[("key", key), ("next", "/")])
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let set = response
        .headers()
        .get_all("set-cookie")
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("shiplog_session="))
        .expect("a session cookie");
    set.split(';').next().unwrap().to_owned()
}

/// The status of the overview for a browser holding `cookie`: 200 signed in, 303 sent to
/// sign in.
async fn dashboard_status(base: &str, cookie: &str) -> u16 {
    awc::Client::builder()
        .disable_redirects()
        .finish()
        .get(format!("{base}/"))
        .insert_header(("cookie", cookie))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// What the servers of this test binary log at WARN and above, from the first call on (one
/// process-wide subscriber: the sign-in tests read their refusals' log lines from it).
fn server_log() -> &'static std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    static LOG: std::sync::OnceLock<std::sync::Arc<std::sync::Mutex<Vec<u8>>>> =
        std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
            .with_ansi(false)
            .with_writer(move || LogWriter(sink.clone()))
            .finish();
        // Another subscriber set first (none is today) would leave the log empty, and the
        // checks below would say so.
        let _ = tracing_subscriber::util::SubscriberInitExt::try_init(subscriber);
        log
    })
}

/// Appends to the captured log.
struct LogWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether the captured log has a refused sign-in's line saying `why` (in any case: the page
/// capitalizes the reason).
fn logged_refusal(why: &str) -> bool {
    let log = server_log().lock().unwrap();
    let why = why.to_lowercase();
    String::from_utf8_lossy(&log).lines().any(|line| {
        line.contains("WARN")
            && line.contains("a sign-in through the OpenID provider was refused")
            && line.to_lowercase().contains(&why)
    })
}

/// The sign-in settings of a test server: the test client at `issuer`, and `roles`.
fn sso_options(issuer: &str, redirect: &str, roles: &str) -> shiplog_server::SsoOptions {
    shiplog_server::SsoOptions {
        provider: shiplog_oidc::OidcSettings {
            issuer: issuer.to_owned(),
            client_id: CLIENT_ID.into(),
            client_secret: Some(CLIENT_SECRET.into()),
            redirect_url: redirect.to_owned(),
            scopes: vec!["profile".into(), "email".into(), "groups".into()],
            groups_claim: "groups".into(),
        },
        roles: shiplog_domain::sso::RoleRules::parse(roles).unwrap(),
        refresh_minutes: 10,
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Walk<'_> {
    /// At the provider's login page: signs in as `login` (any password).
    async fn provider_login(&self, login: &str) {
        if let Err(error) = self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css("input[name='login']"))
            .await
        {
            let url = self.client.current_url().await.map(|u| u.to_string());
            let text = match self.client.find(Locator::Css("body")).await {
                Ok(body) => body.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            panic!("no login form at the provider ({error}): at {url:?}, the page says {text:?}");
        }
        self.type_into("input[name='login']", login).await;
        self.type_into("input[name='password']", "any password")
            .await;
        self.click("button[type='submit']").await;
    }

    /// Reads the browser's log past the provider's pages: their errors (a web font they ask
    /// for, their favicon) are theirs, a refusal page's own 403 is meant, and shiplog's pages
    /// must have logged nothing else.
    async fn past_the_provider(&self, provider: &Provider) {
        let refused = |message: &str| {
            ["/keys", "/sign-in/callback"].iter().any(|page| {
                message.starts_with(&format!("{}{page}", self.app.base))
                    && message.ends_with("status of 403 (Forbidden)")
            })
        };
        let ours: Vec<Value> = self
            .severe()
            .await
            .into_iter()
            .filter(|entry| {
                let message = entry["message"].as_str().unwrap_or_default();
                !message.contains(&provider.base)
                    && !message.contains("fonts.googleapis.com")
                    && !refused(message)
            })
            .collect();
        assert!(ours.is_empty(), "shiplog's pages logged errors: {ours:?}");
    }

    /// The page of a refused sign-in: it says `wanted`, logged nothing of shiplog's own, and
    /// left no session; returns what it says.
    async fn refused(&self, provider: &Provider, wanted: &str, name: &str) -> String {
        let problem = self.shows("p.problem", wanted).await;
        assert!(
            logged_refusal(wanted),
            "{name}: no log line says {wanted:?}"
        );
        self.past_the_provider(provider).await;
        self.check(name).await;
        assert!(
            self.client
                .get_named_cookie("shiplog_session")
                .await
                .is_err(),
            "{name}: no session was opened"
        );
        problem
    }

    /// Forgets every cookie of 127.0.0.1 (shiplog's and the provider's: cookies ignore ports),
    /// so that the provider asks for a login again.
    async fn forget_cookies(&self) {
        self.client.delete_all_cookies().await.unwrap();
    }

    /// The sign-in attempt the browser keeps while at the provider (read from a page under
    /// `/sign-in`, the cookie's path).
    async fn attempt(&self) -> Value {
        self.open("/sign-in").await;
        let cookie = self
            .client
            .get_named_cookie("shiplog_sign_in")
            .await
            .expect("an attempt cookie");
        let bytes: Vec<u8> = (0..cookie.value().len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&cookie.value()[i..i + 2], 16).unwrap())
            .collect();
        serde_json::from_slice(&bytes).unwrap()
    }
}

async fn sign_in_through_a_provider(backend: Backend, name: &'static str) {
    let Some(driver) = driver().await else {
        return;
    };
    server_log();
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let Some(provider) = Provider::start(&format!("{public}/sign-in/callback")) else {
        return;
    };
    let issuer = provider.base.clone();
    let Some(app) = spawn_app_with(backend, |config| {
        config.bind = format!("127.0.0.1:{port}");
        config.hooks.public_url = Some(public.clone());
        config.sign_in.sso = Some(sso_options(
            &issuer,
            &format!("{public}/sign-in/callback"),
            "shiplog-admins=acme:admin, engineers=acme:read, beta-team=beta:read",
        ));
    })
    .await
    else {
        return;
    };
    provider
        .account("jane", "Jane Doe", &["engineers", "shiplog-admins"])
        .await;
    provider.account("mallory", "Mallory", &["marketing"]).await;
    let walk = Walk {
        app: &app,
        driver: &driver,
        client: browser(&driver).await,
        backend: name,
    };

    // Signing in: the sign-in page offers the company account, the provider asks who, and the
    // dashboard shows the person with the role their groups give.
    walk.open("/sign-in").await;
    walk.check("sso-sign-in").await;
    walk.click("#sso").await;
    walk.provider_login("jane").await;
    walk.shows("main h1", "Overview").await;
    assert_eq!(walk.text("header .who").await, "Jane Doe");
    walk.shows("header .role", "admin").await;
    walk.past_the_provider(&provider).await;
    walk.check("sso-signed-in").await;
    let session = walk
        .client
        .get_named_cookie("shiplog_session")
        .await
        .unwrap()
        .value()
        .to_owned();

    // Only their workspaces: another workspace exists, and Jane's groups do not open it;
    // asking for it is refused and leaves her where she was.
    let (status, _) = app
        .post(
            "/api/v1/workspaces",
            shiplog_blackbox::MASTER_KEY,
            json!({"code": "beta", "name": "Beta"}),
        )
        .await;
    assert_eq!(status, 201);
    walk.open("/sign-in/sso?workspace=beta").await;
    walk.shows("p.problem", "to workspace beta").await;
    walk.past_the_provider(&provider).await;
    walk.open("/").await;
    walk.shows("header .role", "admin").await;
    walk.shows("main", "My Project").await;

    // Sessions: an admin key's session opened elsewhere shows among everyone's, and Jane
    // ends it; her own is marked as this browser's.
    let other = key_session(&app.base, &app.admin_key).await;
    assert_eq!(dashboard_status(&app.base, &other).await, 200);
    walk.open("/sessions").await;
    walk.shows("main", "this browser").await;
    walk.check("sso-sessions").await;
    let key_row = walk
        .text("#everyone-heading + div tbody tr:first-child")
        .await;
    assert!(
        key_row.contains("key admin") && key_row.contains("127.0.0.1"),
        "the key's session, with where it signed in from: {key_row}"
    );
    walk.click("#everyone-heading + div form button").await;
    // Back on the list, which no longer has a session to end.
    let asked = std::time::Instant::now();
    while walk.count("#everyone-heading + div form button").await > 0 {
        assert!(asked.elapsed() < PATIENCE, "the session was never ended");
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        dashboard_status(&app.base, &other).await,
        303,
        "the ended session is signed out"
    );

    // What they change is audited as them.
    walk.open("/keys").await;
    let form = "form[action='/keys']";
    walk.type_into(&format!("{form} input[name='name']"), "from-jane")
        .await;
    walk.click(&format!("{form} button[type='submit']")).await;
    walk.shows("main h1", "API key created").await;
    let audit = app.get("/api/v1/audit?limit=2", &app.admin_key).await.1;
    for (entry, action) in [
        (&audit["items"][0], "api_key.created"),
        (&audit["items"][1], "session.ended"),
    ] {
        assert_eq!(entry["action"], action, "{audit}");
        assert_eq!(entry["actor"]["kind"], "person", "{audit}");
        assert_eq!(entry["actor"]["name"], "Jane Doe", "{audit}");
    }
    walk.open("/audit").await;
    walk.shows("table.audit", "session.ended").await;
    walk.check("sso-audit").await;
    walk.client.set_window_size(390, 844).await.unwrap();
    walk.open("/audit").await;
    walk.text("table.audit").await;
    walk.fits("sso-audit-phone").await;
    walk.check("sso-audit-phone").await;
    walk.client.set_window_size(1280, 900).await.unwrap();

    // Removed from the admin group: the next sign-in (the provider's session is alive, so
    // the person sees no form) leaves them a reader, in the same session.
    provider.account("jane", "Jane Doe", &["engineers"]).await;
    walk.open("/sign-in/sso?next=/keys").await;
    walk.shows("main p", "Only an admin").await;
    walk.open("/").await;
    walk.shows("header .role", "read").await;
    let refreshed = walk
        .client
        .get_named_cookie("shiplog_session")
        .await
        .unwrap();
    assert_eq!(
        refreshed.value(),
        session,
        "the session was refreshed in place"
    );
    walk.past_the_provider(&provider).await;
    walk.check("sso-no-longer-admin").await;

    // A callback with another state than the one this browser left with.
    walk.forget_cookies().await;
    walk.open("/sign-in/sso").await;
    let attempt = walk.attempt().await;
    assert!(attempt["attempt"]["state"].as_str().unwrap().len() >= 16);
    walk.open("/sign-in/callback?state=forged-state&code=whatever")
        .await;
    walk.refused(
        &provider,
        "did not start in this browser",
        "sso-wrong-state",
    )
    .await;

    // A replayed code: the state is this browser's, the code was redeemed already.
    let used = provider.call("GET", "/test/last-code", None).await;
    let used = used["code"].as_str().expect("a code was issued").to_owned();
    walk.forget_cookies().await;
    walk.open("/sign-in/sso").await;
    let state = walk.attempt().await["attempt"]["state"]
        .as_str()
        .unwrap()
        .to_owned();
    walk.open(&format!("/sign-in/callback?state={state}&code={used}"))
        .await;
    walk.refused(
        &provider,
        "The sign-in provider refused",
        "sso-replayed-code",
    )
    .await;

    // An expired ID token, then one signed by a key the provider never published.
    provider
        .call("POST", "/test/tamper", Some(json!({"id_token": "expired"})))
        .await;
    walk.open("/sign-in/sso").await;
    walk.provider_login("jane").await;
    walk.refused(&provider, "the ID token has expired", "sso-expired-token")
        .await;
    provider
        .call(
            "POST",
            "/test/tamper",
            Some(json!({"id_token": "foreign-key"})),
        )
        .await;
    walk.open("/sign-in/sso").await;
    walk.refused(&provider, "signature does not verify", "sso-foreign-key")
        .await;

    // The provider rotates its signing key: shiplog fetches the new key and signs the person
    // in.
    provider.call("POST", "/test/rotate", None).await;
    walk.forget_cookies().await;
    walk.open("/sign-in/sso").await;
    walk.provider_login("jane").await;
    walk.shows("main h1", "Overview").await;
    walk.shows("header .role", "read").await;

    // Added to beta's group, she opens beta (a workspace with no project yet) as a reader;
    // the sign-in replaces her acme session in this browser.
    provider
        .account("jane", "Jane Doe", &["engineers", "beta-team"])
        .await;
    walk.open("/sign-in/sso?workspace=beta").await;
    walk.shows("main h1", "Overview").await;
    walk.shows("header .role", "read").await;
    let beta = walk.text("main").await;
    assert!(!beta.contains("My Project"), "{beta}");
    walk.past_the_provider(&provider).await;

    // Someone in no mapped group.
    walk.forget_cookies().await;
    walk.open("/sign-in/sso").await;
    walk.provider_login("mallory").await;
    let problem = walk
        .refused(&provider, "none of your groups", "sso-no-group")
        .await;
    assert!(problem.contains("marketing"), "{problem}");
    walk.open("/").await;
    walk.shows("main h1", "Sign in to shiplog").await;
    walk.client.close().await.unwrap();
}

#[actix_web::test]
async fn people_sign_in_through_an_openid_provider_on_sqlite() {
    sign_in_through_a_provider(Backend::Sqlite, "sqlite").await;
}

#[actix_web::test]
async fn people_sign_in_through_an_openid_provider_on_postgres() {
    sign_in_through_a_provider(Backend::Postgres, "postgres").await;
}

/// With key sign-in turned off, the sign-in page has no key field and a key posted anyway is
/// refused with a page that says why; the API still takes the key.
async fn key_sign_in_can_be_turned_off(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |config| {
        config.sign_in.key_sign_in = false;
        // A provider is required then; it is not reached before someone uses it.
        config.sign_in.sso = Some(sso_options(
            "http://127.0.0.1:9",
            "http://127.0.0.1:8080/sign-in/callback",
            "*=acme:read",
        ));
    })
    .await
    else {
        return;
    };
    let client = awc::Client::builder().disable_redirects().finish();
    let mut page = client
        .get(format!("{}/sign-in", app.base))
        .send()
        .await
        .unwrap();
    let html = String::from_utf8(page.body().await.unwrap().to_vec()).unwrap();
    assert_eq!(page.status(), 200);
    assert!(!html.contains("name=\"key\""), "{html}");
    let mut refused = client
        .post(format!("{}/sign-in", app.base))
        .send_form(&[("key", app.admin_key.as_str()), ("next", "/")])
        .await
        .unwrap();
    let html = String::from_utf8(refused.body().await.unwrap().to_vec()).unwrap();
    assert_eq!(refused.status(), 403, "{html}");
    assert!(html.contains("turned off"), "{html}");
    assert!(
        refused.headers().get("set-cookie").is_none(),
        "no session was opened"
    );
    assert_eq!(app.get("/api/v1/projects", &app.admin_key).await.0, 200);
    // The provider cannot be reached: starting a sign-in says so (503), with nothing kept.
    let mut unreachable = client
        .get(format!("{}/sign-in/sso", app.base))
        .send()
        .await
        .unwrap();
    let html = String::from_utf8(unreachable.body().await.unwrap().to_vec()).unwrap();
    assert_eq!(unreachable.status(), 503, "{html}");
    assert!(html.contains("cannot be reached"), "{html}");
    assert!(unreachable.headers().get("set-cookie").is_none());
}

#[actix_web::test]
async fn key_sign_in_can_be_turned_off_on_sqlite() {
    key_sign_in_can_be_turned_off(Backend::Sqlite).await;
}

#[actix_web::test]
async fn key_sign_in_can_be_turned_off_on_postgres() {
    key_sign_in_can_be_turned_off(Backend::Postgres).await;
}
