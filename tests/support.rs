//! `spawn_app()`: the real server on 127.0.0.1 and a random port, over a fresh database, with a
//! known master key and a workspace `acme` with project `my-project` and an admin key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use awc::Client;
use serde_json::{Value, json};
use shiplog_server::{Config, HookOptions, start};
use shiplog_store::testdb::TestDb;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const MASTER_KEY: &str = "test-master-key-0123456789";

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub base: String,
    pub client: Client,
    /// An admin key of workspace `acme`.
    pub admin_key: String,
    _db: TestDb,
}

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Starts a server; `None` when the backend is not available here (never under `CI=true`).
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// [`spawn_app`], with the server's configuration changed by `configure` first (its sign-in
/// options, a fixed address).
pub async fn spawn_app_with(
    backend: Backend,
    configure: impl FnOnce(&mut Config),
) -> Option<TestApp> {
    let db = match backend {
        Backend::Sqlite => TestDb::sqlite(),
        Backend::Postgres => TestDb::postgres()?,
    };
    let mut config = Config {
        database_url: db.url().to_owned(),
        bind: "127.0.0.1:0".to_owned(),
        admin_key: Some(MASTER_KEY.to_owned()),
        migrate_on_start: true,
        workers: 1,
        hooks: HookOptions {
            // The tests' receivers listen on 127.0.0.1.
            allow_private_targets: true,
            poll_interval: std::time::Duration::from_millis(50),
            ..HookOptions::default()
        },
        metrics_token: None,
        tls: None,
        retention: None,
        sign_in: shiplog_server::SignInOptions::default(),
    };
    configure(&mut config);
    let running = start(config).await.unwrap();
    let base = format!("http://{}", running.address);
    actix_web::rt::spawn(running.server);
    // Redirects are answers the tests check, not followed.
    let client = Client::builder().disable_redirects().finish();
    let mut app = TestApp {
        base,
        client,
        admin_key: String::new(),
        _db: db,
    };
    let (status, _) = app
        .post(
            "/api/v1/workspaces",
            MASTER_KEY,
            json!({"code": "acme", "name": "Acme"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, key) = app
        .post(
            "/api/v1/workspaces/acme/api-keys",
            MASTER_KEY,
            json!({"name": "admin", "role": "admin"}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    app.admin_key = key["key"].as_str().unwrap().to_owned();
    let (status, _) = app
        .post(
            "/api/v1/projects",
            &app.admin_key.clone(),
            json!({"slug": "my-project", "name": "My Project"}),
        )
        .await;
    assert_eq!(status, 201);
    Some(app)
}

impl TestApp {
    /// POSTs JSON with `Authorization: Bearer <key>`; returns the status and the JSON answer.
    pub async fn post(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        self.post_raw(
            path,
            &[("Authorization", &format!("Bearer {key}"))],
            body.to_string(),
        )
        .await
    }

    /// Creates a project with `key` (its name is the slug capitalized).
    pub async fn project(&self, key: &str, slug: &str) {
        let name = slug[..1].to_uppercase() + &slug[1..];
        let (status, body) = self
            .post("/api/v1/projects", key, json!({"slug": slug, "name": name}))
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// PATCHes JSON with `Authorization: Bearer <key>`; returns the status and the JSON answer.
    pub async fn patch(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        let (status, _, answer) = self
            .send(
                "PATCH",
                path,
                &[("Authorization", &format!("Bearer {key}"))],
                &body.to_string(),
            )
            .await;
        (status, answer)
    }

    /// POSTs a raw body with the given headers.
    pub async fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> (u16, Value) {
        let (status, _, answer) = self.send("POST", path, headers, &body).await;
        (status, answer)
    }

    /// PUTs a raw body with the given headers; returns the status, the headers and the JSON.
    pub async fn put_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> (u16, awc::http::header::HeaderMap, Value) {
        self.send("PUT", path, headers, &body).await
    }

    /// GETs without credentials; returns the status and the response headers.
    pub async fn get_headers(&self, path: &str) -> (u16, awc::http::header::HeaderMap) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.headers().clone())
    }

    /// GETs with `Authorization: Bearer <key>`.
    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        let mut response = self
            .client
            .get(format!("{}{path}", self.base))
            .insert_header(("Authorization", format!("Bearer {key}")))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let bytes = response.body().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A new key of workspace `acme` with `role`, optionally limited to a project.
    pub async fn key(&self, role: &str, project: Option<&str>) -> String {
        let (status, key) = self
            .post(
                "/api/v1/workspaces/acme/api-keys",
                &self.admin_key,
                json!({"role": role, "project": project}),
            )
            .await;
        assert_eq!(status, 201, "{key}");
        key["key"].as_str().unwrap().to_owned()
    }
}

impl TestApp {
    /// Creates another workspace `code` with the master key; returns an admin key of it.
    pub async fn other_workspace(&self, code: &str) -> String {
        let (status, body) = self
            .post("/api/v1/workspaces", MASTER_KEY, json!({"code": code}))
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, key) = self
            .post(
                &format!("/api/v1/workspaces/{code}/api-keys"),
                MASTER_KEY,
                json!({"name": "admin", "role": "admin"}),
            )
            .await;
        assert_eq!(status, 201, "{key}");
        key["key"].as_str().unwrap().to_owned()
    }

    /// Sends any method with the given headers and raw body; returns the status, the headers
    /// and the JSON answer (`Null` when the body is not JSON).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, awc::http::header::HeaderMap, Value) {
        let method = awc::http::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .insert_header(("Content-Type", "application/json"));
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let mut response = request.send_body(body.to_owned()).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.body().limit(8 * 1024 * 1024).await.unwrap();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

/// Runs each named async test on both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    let app = shiplog_blackbox::spawn_app(shiplog_blackbox::Backend::Sqlite).await.unwrap();
                    super::$name(&app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                async fn $name() {
                    let Some(app) = shiplog_blackbox::spawn_app(shiplog_blackbox::Backend::Postgres).await else { return };
                    super::$name(&app).await;
                }
            )*
        }
    };
}

/// An HTTP receiver on 127.0.0.1 that answers every POST with `answer`.
pub async fn receiver(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

/// A receiver that answers the first `times` POSTs with `first`, then every one with `then`.
pub async fn receiver_answering_first(
    times: u64,
    first: ResponseTemplate,
    then: ResponseTemplate,
) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(first)
        .up_to_n_times(times)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(then)
        .mount(&server)
        .await;
    server
}

/// The dashboard, through plain HTTP (the browser tests drive Chromium instead).
impl TestApp {
    /// Signs in with `key`; returns the status, the headers and the `Cookie` header value of
    /// the session, if one was opened.
    pub async fn sign_in(&self, key: &str) -> (u16, awc::http::header::HeaderMap, Option<String>) {
        let (status, headers, _) = self
            .form("/sign-in", None, &format!("key={key}&next=%2Fdeployments"))
            .await;
        let cookie = headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .filter(|pair| pair.starts_with("shiplog_session=") && pair.len() > 20)
            .map(str::to_owned);
        (status, headers, cookie)
    }

    /// GETs a page with a session cookie; returns the status, the headers and the body.
    pub async fn page(
        &self,
        path: &str,
        cookie: Option<&str>,
    ) -> (u16, awc::http::header::HeaderMap, String) {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            request = request.insert_header(("Cookie", cookie));
        }
        let mut response = request.send().await.unwrap();
        let body = response.body().limit(8 * 1024 * 1024).await.unwrap();
        (
            response.status().as_u16(),
            response.headers().clone(),
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    /// POSTs a form (`application/x-www-form-urlencoded`) with a session cookie.
    pub async fn form(
        &self,
        path: &str,
        cookie: Option<&str>,
        body: &str,
    ) -> (u16, awc::http::header::HeaderMap, String) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"));
        if let Some(cookie) = cookie {
            request = request.insert_header(("Cookie", cookie));
        }
        let mut response = request.send_body(body.to_owned()).await.unwrap();
        let bytes = response.body().limit(8 * 1024 * 1024).await.unwrap();
        (
            response.status().as_u16(),
            response.headers().clone(),
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    /// Sends one Clienwork event with `key`; returns the deployment id it answered with.
    pub async fn clienwork(&self, key: &str, body: Value) -> String {
        let (status, answer) = self.post("/api/webhooks/ci", key, body).await;
        assert_eq!(status, 200, "{answer}");
        answer["deployment_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// The value of a page's hidden `csrf` field.
pub fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("the page has a csrf field") + marker.len();
    page[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Integrations and what they record.
impl TestApp {
    /// Creates an integration (`{provider, name, project?, settings?}`) with the admin key;
    /// returns its id and its secret.
    pub async fn integration(&self, body: Value) -> (String, String) {
        let (status, created) = self
            .post("/api/v1/integrations", &self.admin_key, body)
            .await;
        assert_eq!(status, 201, "{created}");
        (
            created["id"].as_str().unwrap().to_owned(),
            created["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// The ids of every deployment `filters` (a query string, possibly empty) lists, newest
    /// first, read `limit` at a time through `next_cursor` as clients page.
    pub async fn listed_ids(&self, filters: &str, limit: u32) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor = String::new();
        loop {
            let path = format!("/api/v1/deployments?{filters}&limit={limit}{cursor}");
            let (status, page) = self.get(&path, &self.admin_key).await;
            assert_eq!(status, 200, "{page}");
            ids.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d["id"].as_str().unwrap().to_owned()),
            );
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => return ids,
            }
        }
    }

    /// The deployments of `my-project`, newest first.
    pub async fn deployments(&self) -> Vec<Value> {
        let (status, body) = self
            .get("/api/v1/deployments?project=my-project", &self.admin_key)
            .await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().unwrap().clone()
    }
}
