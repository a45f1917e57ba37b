//! The dashboard over plain HTTP, on SQLite and PostgreSQL: sign-in and its cookie, the headers
//! every page carries, what a session may see and do, CSRF, assets and page weight. What only a
//! browser can check (live updates, scripts, screenshots) is in `browser.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use serde_json::json;
use shiplog_blackbox::{TestApp, csrf_of, on_both_backends};

const SHA: &str = "3f786850e387550fdab836ed7e6dc881de23001b";

fn deploy(status: &str, run: u32) -> serde_json::Value {
    json!({
        "event": "deploy.completed", "project_slug": "my-project", "status": status,
        "ref": "refs/heads/main", "commit_sha": SHA, "commit_message": "feat: checkout #PR-7",
        "environment": "production", "url": format!("https://ci.example.com/runs/{run}"),
        "deployed_by": "ana",
    })
}

fn header<'a>(headers: &'a awc::http::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn signing_in_opens_a_session_in_a_safe_cookie(app: &TestApp) {
    let (status, headers, cookie) = app.sign_in(&app.admin_key).await;
    assert_eq!(status, 303);
    assert_eq!(header(&headers, "location"), "/deployments");
    let set_cookie = header(&headers, "set-cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(set_cookie.contains(flag), "{flag} missing: {set_cookie}");
    }
    // The server's public address is http here, so the cookie may travel over http.
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    // The cookie holds a session secret, never the key.
    let cookie = cookie.unwrap();
    assert!(!cookie.contains(&app.admin_key));
    let (status, _, body) = app.page("/", Some(&cookie)).await;
    assert_eq!(status, 200);
    assert!(body.contains("My Project"), "{body}");
}

async fn wrong_and_ingest_keys_cannot_sign_in(app: &TestApp) {
    let (status, headers, body) = app
        .form("/sign-in", None, "key=shiplog_not_a_key&next=%2F")
        .await;
    assert_eq!(status, 401);
    assert!(headers.get("set-cookie").is_none());
    assert!(body.contains("not valid"), "{body}");
    let ingest = app.key("ingest", None).await;
    let (status, headers, cookie) = app.sign_in(&ingest).await;
    assert_eq!(status, 403);
    assert!(cookie.is_none(), "{headers:?}");
}

async fn every_page_needs_a_session_and_carries_the_security_headers(app: &TestApp) {
    let id = app.clienwork(&app.admin_key, deploy("success", 1)).await;
    let (status, integration) = app
        .post(
            "/api/v1/integrations",
            &app.admin_key,
            json!({"provider": "github", "name": "shop"}),
        )
        .await;
    assert_eq!(status, 201, "{integration}");
    let integration = integration["id"].as_str().unwrap().to_owned();
    let (_, _, cookie) = app.sign_in(&app.admin_key).await;
    let cookie = cookie.unwrap();
    let pages = [
        "/integrations".to_owned(),
        format!("/integrations/{integration}"),
        "/".to_owned(),
        "/projects/my-project".to_owned(),
        "/deployments".to_owned(),
        "/deployments?project=my-project&status=success&since=2020-01-01".to_owned(),
        format!("/deployments/{id}"),
        "/dora?project=my-project&days=90".to_owned(),
        "/dora/deployments?project=my-project&days=7".to_owned(),
        "/projects/my-project/references/PR-7".to_owned(),
        "/projects/my-project/hooks".to_owned(),
        "/keys".to_owned(),
        "/deployments.csv".to_owned(),
    ];
    for path in &pages {
        let (status, headers, _) = app.page(path, None).await;
        assert_eq!(status, 303, "{path} without a session");
        assert!(
            header(&headers, "location").starts_with("/sign-in?next=%2F"),
            "{path}: {headers:?}"
        );
        let (status, headers, body) = app.page(path, Some(&cookie)).await;
        assert_eq!(status, 200, "{path}: {body}");
        let csp = header(&headers, "content-security-policy");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(header(&headers, "x-frame-options"), "DENY", "{path}");
        assert_eq!(header(&headers, "cache-control"), "no-store", "{path}");
        assert!(!body.contains("<script>"), "{path}: inline script");
        assert!(!body.contains(" style="), "{path}: inline style");
        assert!(!body.contains(&app.admin_key), "{path} shows the key");
    }
    // What the first load weighs: the largest page with its stylesheet and script, uncompressed.
    let (_, _, board) = app.page("/projects/my-project", Some(&cookie)).await;
    let mut weight = board.len();
    for asset in assets(&board) {
        let (status, headers, body) = app.page(&asset, None).await;
        assert_eq!(status, 200, "{asset}");
        assert_eq!(
            header(&headers, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        weight += body.len();
    }
    assert!(weight < 150 * 1024, "first load weighs {weight} bytes");
    let (status, _, _) = app.page("/assets/shiplog-0000000000000000.css", None).await;
    assert_eq!(status, 404);
}

/// The hashed asset paths a page links to.
fn assets(page: &str) -> Vec<String> {
    page.split('"')
        .filter(|part| part.starts_with("/assets/"))
        .map(str::to_owned)
        .collect()
}

async fn pages_show_what_was_sent(app: &TestApp) {
    let build = json!({
        "event": "build.completed", "project_slug": "my-project", "status": "success",
        "commit_sha": SHA, "url": "https://ci.example.com/runs/0",
    });
    app.clienwork(&app.admin_key, build).await;
    let id = app.clienwork(&app.admin_key, deploy("success", 1)).await;
    app.clienwork(&app.admin_key, deploy("failed", 2)).await;
    let (_, _, cookie) = app.sign_in(&app.admin_key).await;
    let cookie = cookie.unwrap();
    let (_, _, board) = app.page("/projects/my-project", Some(&cookie)).await;
    assert!(
        board.contains(">3f78685<"),
        "short commit on the board: {board}"
    );
    assert!(board.contains("production"), "{board}");
    let (_, _, list) = app.page("/deployments?status=failed", Some(&cookie)).await;
    assert_eq!(list.matches("<tr id=\"d-").count(), 1, "{list}");
    assert!(list.contains("✕</span> failed"), "{list}");
    let (_, _, detail) = app.page(&format!("/deployments/{id}"), Some(&cookie)).await;
    assert!(detail.contains(SHA), "{detail}");
    assert!(detail.contains("https://ci.example.com/runs/1"), "{detail}");
    assert!(detail.contains("PR-7"), "{detail}");
    // The commit's build is on the deployment's timeline, before the deploy.
    let build = detail.find("build.completed").expect("the commit's build");
    assert!(build < detail.find("deploy.completed").unwrap(), "{detail}");
    assert!(!detail.contains("<dt>Rework</dt>"), "{detail}");
    // A marked deployment says so.
    let mut marked = deploy("success", 3);
    marked["rework"] = json!(true);
    let marked = app.clienwork(&app.admin_key, marked).await;
    let (_, _, detail) = app
        .page(&format!("/deployments/{marked}"), Some(&cookie))
        .await;
    assert!(
        detail.contains("<dt>Rework</dt><dd>its sender marked it as rework</dd>"),
        "{detail}"
    );
    let (_, _, reference) = app
        .page("/projects/my-project/references/PR-7", Some(&cookie))
        .await;
    assert!(
        reference.contains(&format!("/deployments/{id}")),
        "{reference}"
    );
    let (status, headers, _) = app
        .page("/projects/my-project/references?key=PR-7", Some(&cookie))
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        header(&headers, "location"),
        "/projects/my-project/references/PR-7"
    );
    let (status, _, body) = app.page("/deployments?status=done", Some(&cookie)).await;
    assert_eq!(status, 400);
    assert!(body.contains("status"), "{body}");
    let (status, _, _) = app.page("/deployments/not-an-id", Some(&cookie)).await;
    assert_eq!(status, 404);
}

async fn a_new_project_shows_how_to_report_to_it(app: &TestApp) {
    let (_, _, cookie) = app.sign_in(&app.admin_key).await;
    let (_, _, board) = app
        .page("/projects/my-project", Some(&cookie.unwrap()))
        .await;
    assert!(
        board.contains("GitHub Actions") && board.contains("GitLab CI"),
        "{board}"
    );
    assert!(
        board.contains("project_slug: &quot;my-project&quot;"),
        "{board}"
    );
    assert!(
        board.contains(&app.base),
        "the snippet names this server: {board}"
    );
}

async fn a_session_sees_what_its_key_sees(app: &TestApp) {
    app.clienwork(&app.admin_key, deploy("success", 1)).await;
    // Another workspace's deployment is not found.
    let other = app.other_workspace("globex").await;
    let (status, _) = app
        .post(
            "/api/v1/projects",
            &other,
            json!({"slug": "my-project", "name": "Theirs"}),
        )
        .await;
    assert_eq!(status, 201);
    let theirs = app.clienwork(&other, deploy("success", 9)).await;
    let (_, _, cookie) = app.sign_in(&app.admin_key).await;
    let cookie = cookie.unwrap();
    let (status, _, _) = app
        .page(&format!("/deployments/{theirs}"), Some(&cookie))
        .await;
    assert_eq!(status, 404);
    let (_, _, list) = app.page("/deployments", Some(&cookie)).await;
    assert!(!list.contains(&theirs), "{list}");
    // A key limited to another project sees none of this one.
    app.project(&app.admin_key, "billing").await;
    let scoped = app.key("read", Some("billing")).await;
    let (_, _, cookie) = app.sign_in(&scoped).await;
    let cookie = cookie.unwrap();
    let (_, _, projects) = app.page("/", Some(&cookie)).await;
    assert!(
        projects.contains("Billing") && !projects.contains("My Project"),
        "{projects}"
    );
    let (status, _, _) = app.page("/projects/my-project", Some(&cookie)).await;
    assert!(status == 403 || status == 404, "{status}");
    let (_, _, list) = app.page("/deployments", Some(&cookie)).await;
    assert_eq!(list.matches("<tr id=\"d-").count(), 0, "{list}");
}

async fn sign_out_needs_the_csrf_token_and_ends_the_session(app: &TestApp) {
    let (_, _, cookie) = app.sign_in(&app.admin_key).await;
    let cookie = cookie.unwrap();
    let (status, _, _) = app.form("/sign-out", Some(&cookie), "csrf=forged").await;
    assert_eq!(status, 403);
    let (status, _, page) = app.page("/", Some(&cookie)).await;
    assert_eq!(status, 200, "a refused sign-out leaves the session open");
    let csrf = csrf_of(&page);
    let (status, headers, _) = app
        .form("/sign-out", Some(&cookie), &format!("csrf={csrf}"))
        .await;
    assert_eq!(status, 303);
    assert!(header(&headers, "set-cookie").contains("shiplog_session=;"));
    let (status, _, _) = app.page("/", Some(&cookie)).await;
    assert_eq!(status, 303, "the session ended");
}

async fn a_revoked_key_ends_its_sessions(app: &TestApp) {
    let (status, key) = app
        .post(
            "/api/v1/workspaces/acme/api-keys",
            &app.admin_key,
            json!({"role": "read"}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, _, cookie) = app.sign_in(key["key"].as_str().unwrap()).await;
    let cookie = cookie.unwrap();
    assert_eq!(app.page("/", Some(&cookie)).await.0, 200);
    let (status, _, _) = app
        .send(
            "DELETE",
            &format!(
                "/api/v1/workspaces/acme/api-keys/{}",
                key["id"].as_str().unwrap()
            ),
            &[("Authorization", &format!("Bearer {}", app.admin_key))],
            "",
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(app.page("/", Some(&cookie)).await.0, 303);
}

/// A page elsewhere cannot post the sign-in form (login CSRF): a cross-site `Sec-Fetch-Site`
/// or another `Origin` is refused with no cookie; this server's own origin is accepted.
async fn sign_in_refuses_forms_posted_from_other_sites(app: &TestApp) {
    let body = format!("key={}&next=%2F", app.admin_key);
    let host = app.base.trim_start_matches("http://").to_owned();
    let cases: [(&[(&str, &str)], u16); 5] = [
        (&[("Origin", "https://evil.example")], 403),
        (&[("Sec-Fetch-Site", "cross-site")], 403),
        (&[("Origin", "null")], 403),
        (
            &[("Origin", &app.base), ("Sec-Fetch-Site", "same-origin")],
            303,
        ),
        (&[("Sec-Fetch-Site", "none")], 303),
    ];
    for (headers, expected) in cases {
        let mut request = app
            .client
            .post(format!("{}/sign-in", app.base))
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .insert_header(("Host", host.as_str()));
        for header in headers {
            request = request.insert_header(*header);
        }
        let response = request.send_body(body.clone()).await.unwrap();
        assert_eq!(response.status().as_u16(), expected, "{headers:?}");
        assert_eq!(
            response.headers().contains_key("set-cookie"),
            expected == 303,
            "{headers:?}"
        );
    }
}

/// Signing in again and again keeps at most 20 sessions per key: the oldest end.
async fn a_key_keeps_a_bounded_number_of_sessions(app: &TestApp) {
    let (_, _, first) = app.sign_in(&app.admin_key).await;
    let first = first.unwrap();
    let (status, _, _) = app.page("/deployments", Some(&first)).await;
    assert_eq!(status, 200);
    for _ in 0..20 {
        let (status, _, cookie) = app.sign_in(&app.admin_key).await;
        assert_eq!(status, 303);
        assert!(cookie.is_some());
    }
    let (status, _, _) = app.page("/deployments", Some(&first)).await;
    assert_eq!(status, 303, "the oldest session ended");
}

/// Opens the live deployments feed; returns its status and, when open, the response (the
/// feed stays open while it is held).
async fn open_feed(
    app: &TestApp,
    cookie: &str,
    query: &str,
) -> (u16, Option<awc::ClientResponse<impl futures_util::Stream>>) {
    let response = app
        .client
        .get(format!("{}/deployments/live{query}", app.base))
        .insert_header(("Cookie", cookie))
        .timeout(std::time::Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, (status == 200).then_some(response))
}

/// A session keeps at most 8 live feeds (429 beyond, saying why); a departed browser's feed
/// frees its place within seconds; a feed of a project the session cannot see is 404.
async fn live_feeds_are_limited_and_scoped(app: &TestApp) {
    app.project(&app.admin_key, "billing").await;
    let scoped = app.key("read", Some("billing")).await;
    let (_, _, cookie) = app.sign_in(&scoped).await;
    let (status, _) = open_feed(app, &cookie.unwrap(), "?project=my-project").await;
    assert_eq!(status, 404);

    let (_, _, cookie) = app.sign_in(&app.admin_key).await;
    let cookie = cookie.unwrap();
    let mut held = Vec::new();
    for _ in 0..8 {
        let (status, feed) = open_feed(app, &cookie, "").await;
        assert_eq!(status, 200);
        held.push(feed.unwrap());
    }
    let response = app
        .client
        .get(format!("{}/deployments/live", app.base))
        .insert_header(("Cookie", cookie.as_str()))
        .send()
        .await;
    let mut response = response.unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let page = String::from_utf8(response.body().await.unwrap().to_vec()).unwrap();
    assert!(page.contains("8 live lists"), "{page}");
    // Another session of the same key is not held back by this one.
    let (_, _, other) = app.sign_in(&app.admin_key).await;
    let (status, _) = open_feed(app, &other.unwrap(), "").await;
    assert_eq!(status, 200);
    // The browser leaves: its place is free again once the server notices (a condition,
    // with a deadline).
    drop(held.pop());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, feed) = open_feed(app, &cookie, "").await;
        if status == 200 {
            held.push(feed.unwrap());
            break;
        }
        assert_eq!(status, 429);
        assert!(
            std::time::Instant::now() < deadline,
            "the departed feed was never closed"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// How many API keys workspace `acme` has, as the API lists them.
async fn api_keys(app: &TestApp) -> usize {
    let (status, body) = app
        .get("/api/v1/workspaces/acme/api-keys", &app.admin_key)
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().len()
}

async fn keys_need_an_admin_session_and_the_csrf_token(app: &TestApp) {
    let (_, _, cookie) = app.sign_in(&app.admin_key).await;
    let cookie = cookie.unwrap();
    let (status, _, page) = app.page("/keys", Some(&cookie)).await;
    assert_eq!(status, 200);
    assert!(
        !page.contains(&app.admin_key),
        "a listing never shows a secret"
    );
    // The key this session signed in with has no revoke button: it would end the session.
    assert!(page.contains("this session's key"), "{page}");
    let csrf = csrf_of(&page);
    let before = api_keys(app).await;
    // A forged token: refused before anything is written.
    let (status, _, _) = app
        .form(
            "/keys",
            Some(&cookie),
            "csrf=forged&name=x&role=read&project=",
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(api_keys(app).await, before);
    // Bad input names the field and writes nothing.
    let (status, _, refused) = app
        .form(
            "/keys",
            Some(&cookie),
            &format!("csrf={csrf}&name=x&role=root&project="),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused.contains("role"), "{refused}");
    assert_eq!(api_keys(app).await, before);
    // The real token: created, its secret shown once on a page no cache keeps.
    let (status, headers, created) = app
        .form(
            "/keys",
            Some(&cookie),
            &format!("csrf={csrf}&name=ci&role=ingest&project=my-project&expires="),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(header(&headers, "cache-control"), "no-store");
    assert!(created.contains("shiplog_"), "{created}");
    assert_eq!(api_keys(app).await, before + 1);
    let (_, _, listed) = app.page("/keys", Some(&cookie)).await;
    let secret = created
        .split("id=\"secret\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap();
    assert!(!listed.contains(secret), "the secret is not shown again");
    assert!(listed.contains("my-project"), "{listed}");
    // Revoking needs the token too.
    let (_, body) = app
        .get("/api/v1/workspaces/acme/api-keys", &app.admin_key)
        .await;
    let id = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "ci")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoke = format!("/keys/{id}/revoke");
    let (status, _, _) = app
        .form(&revoke, Some(&cookie), "csrf=forged&kind=api")
        .await;
    assert_eq!(status, 403);
    assert_eq!(api_keys(app).await, before + 1);
    let (status, headers, _) = app
        .form(&revoke, Some(&cookie), &format!("csrf={csrf}&kind=api"))
        .await;
    assert_eq!(status, 303);
    assert_eq!(header(&headers, "location"), "/keys");
    assert_eq!(api_keys(app).await, before);
    // A reader's session sees no key page and cannot create one, even with its own token.
    let reader = app.key("read", None).await;
    let (_, _, reader_cookie) = app.sign_in(&reader).await;
    let reader_cookie = reader_cookie.unwrap();
    let (status, _, page) = app.page("/keys", Some(&reader_cookie)).await;
    assert_eq!(status, 403, "{page}");
    let (_, _, home) = app.page("/", Some(&reader_cookie)).await;
    assert!(
        !home.contains("href=\"/keys\""),
        "no Keys link for a reader"
    );
    let before = api_keys(app).await;
    let (status, _, _) = app
        .form(
            "/keys",
            Some(&reader_cookie),
            &format!("csrf={}&name=x&role=admin&project=", csrf_of(&home)),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(api_keys(app).await, before);
}

async fn the_overview_says_how_far_each_environment_lags(app: &TestApp) {
    // Commits 1, 2, 3 deployed in that order; production runs 1, staging 2, dev 3 (the newest).
    for (run, environment, sha, minute) in [
        (
            1,
            "production",
            "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            0,
        ),
        (2, "staging", "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 10),
        (3, "dev", "3333333ccccccccccccccccccccccccccccccccc", 20),
    ] {
        app.clienwork(
            &app.admin_key,
            json!({"event": "deploy.completed", "project_slug": "my-project", "status": "success",
                   "environment": environment, "commit_sha": sha,
                   "commit_message": format!("feat: step {run} #PR-{run}"),
                   "url": format!("https://ci.example.com/runs/{run}"),
                   "finished_at": format!("2026-03-01T10:{minute:02}:00Z")}),
        )
        .await;
    }
    // A commit built between production's and staging's, deployed nowhere: production lacks
    // it, staging does not.
    app.clienwork(
        &app.admin_key,
        json!({"event": "build.completed", "project_slug": "my-project", "status": "success",
               "commit_sha": "1555555aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
               "finished_at": "2026-03-01T10:05:00Z"}),
    )
    .await;
    let (_, _, cookie) = app.sign_in(&app.admin_key).await;
    let (status, _, page) = app.page("/", Some(&cookie.unwrap())).await;
    assert_eq!(status, 200);
    let cells: Vec<&str> = page
        .split("class=\"behind-by\">")
        .skip(1)
        .map(|rest| rest.split('<').next().unwrap())
        .collect();
    // Columns in position order: production, staging, dev (created in that order).
    assert_eq!(
        cells,
        [
            "3 commits, 2 change requests behind dev",
            "1 commit, 1 change request behind dev"
        ],
        "{page}"
    );
}

/// How many integrations workspace `acme` has, as the API lists them.
async fn integration_count(app: &TestApp) -> usize {
    let (_, body) = app.get("/api/v1/integrations", &app.admin_key).await;
    body["items"].as_array().unwrap().len()
}

async fn integration_and_hook_forms_need_an_admin_session_and_the_csrf_token(app: &TestApp) {
    let (status, hook) = app
        .post(
            "/api/v1/projects/my-project/hooks",
            &app.admin_key,
            json!({"name": "Chat", "target_url": "https://chat.example.com/notify",
                   "trigger_when": {"events": ["deployment.succeeded"]}}),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let hook = hook["id"].as_str().unwrap().to_owned();
    let (_, _, cookie) = app.sign_in(&app.admin_key).await;
    let cookie = cookie.unwrap();
    let (_, _, page) = app.page("/integrations", Some(&cookie)).await;
    let csrf = csrf_of(&page);
    // Forged tokens: refused, nothing written.
    let (status, _, _) = app
        .form(
            "/integrations",
            Some(&cookie),
            "csrf=forged&provider=github&name=x&project=",
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(integration_count(app).await, 0);
    let enabled = format!("/hooks/{hook}/enabled");
    let (status, _, _) = app
        .form(&enabled, Some(&cookie), "csrf=forged&enabled=false")
        .await;
    assert_eq!(status, 403);
    let (_, body) = app
        .get(&format!("/api/v1/hooks/{hook}"), &app.admin_key)
        .await;
    assert_eq!(body["enabled"], true);
    // A bad provider names the field.
    let (status, _, refused) = app
        .form(
            "/integrations",
            Some(&cookie),
            &format!("csrf={csrf}&provider=svn&name=x&project="),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused.contains("provider"), "{refused}");
    // The real token: created, URL and secret shown once on a page no cache keeps.
    let (status, headers, created) = app
        .form(
            "/integrations",
            Some(&cookie),
            &format!("csrf={csrf}&provider=gitlab&name=web&project=my-project"),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(header(&headers, "cache-control"), "no-store");
    assert!(created.contains("id=\"webhook-url\""), "{created}");
    assert_eq!(integration_count(app).await, 1);
    let (status, _, _) = app
        .form(
            &enabled,
            Some(&cookie),
            &format!("csrf={csrf}&enabled=false"),
        )
        .await;
    assert_eq!(status, 303);
    let (_, body) = app
        .get(&format!("/api/v1/hooks/{hook}"), &app.admin_key)
        .await;
    assert_eq!(body["enabled"], false);
    // A reader: no form on the pages, and its own token does not make it an admin.
    let reader = app.key("read", None).await;
    let (_, _, reader_cookie) = app.sign_in(&reader).await;
    let reader_cookie = reader_cookie.unwrap();
    let (_, _, page) = app.page("/integrations", Some(&reader_cookie)).await;
    assert!(!page.contains("action=\"/integrations\""), "{page}");
    let (_, _, hook_page) = app
        .page(&format!("/hooks/{hook}"), Some(&reader_cookie))
        .await;
    assert!(!hook_page.contains(&enabled), "{hook_page}");
    let reader_csrf = csrf_of(&page);
    let (status, _, _) = app
        .form(
            "/integrations",
            Some(&reader_cookie),
            &format!("csrf={reader_csrf}&provider=github&name=x&project="),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = app
        .form(
            &enabled,
            Some(&reader_cookie),
            &format!("csrf={reader_csrf}&enabled=true"),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(integration_count(app).await, 1);
    // Hooks from a preset and test sends: forged token or reader, refused.
    let hooks = "/projects/my-project/hooks";
    let preset =
        "name=x&preset=slack&repository=&token=https%3A%2F%2Fchat.example.com%2Fx&environment=";
    let (status, _, _) = app
        .form(hooks, Some(&cookie), &format!("csrf=forged&{preset}"))
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = app
        .form(
            hooks,
            Some(&reader_cookie),
            &format!("csrf={reader_csrf}&{preset}"),
        )
        .await;
    assert_eq!(status, 403);
    let (_, listed) = app
        .get("/api/v1/projects/my-project/hooks", &app.admin_key)
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    let (status, _, refused) = app
        .form(
            hooks,
            Some(&cookie),
            &format!("csrf={csrf}&name=x&preset=teams&token=t&repository=&environment="),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused.contains("preset"), "{refused}");
    let test = format!("/hooks/{hook}/test");
    let (status, _, _) = app.form(&test, Some(&cookie), "csrf=forged").await;
    assert_eq!(status, 403);
    let (status, _, _) = app
        .form(&test, Some(&reader_cookie), &format!("csrf={reader_csrf}"))
        .await;
    assert_eq!(status, 403);
    let (_, deliveries) = app
        .get(&format!("/api/v1/hooks/{hook}/deliveries"), &app.admin_key)
        .await;
    assert_eq!(deliveries["items"], json!([]), "no test was sent");
}

on_both_backends!(
    integration_and_hook_forms_need_an_admin_session_and_the_csrf_token,
    the_overview_says_how_far_each_environment_lags,
    keys_need_an_admin_session_and_the_csrf_token,
    signing_in_opens_a_session_in_a_safe_cookie,
    wrong_and_ingest_keys_cannot_sign_in,
    every_page_needs_a_session_and_carries_the_security_headers,
    pages_show_what_was_sent,
    a_new_project_shows_how_to_report_to_it,
    a_session_sees_what_its_key_sees,
    sign_out_needs_the_csrf_token_and_ends_the_session,
    a_revoked_key_ends_its_sessions,
    sign_in_refuses_forms_posted_from_other_sites,
    a_key_keeps_a_bounded_number_of_sessions,
    live_feeds_are_limited_and_scoped,
);
