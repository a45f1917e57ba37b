//! `GET /api/v1/deployments` with `Accept: text/csv`, on both backends: every deployment the
//! filters match, in the JSON listing's order, read back by the `csv` crate's reader (quoting,
//! commas, quotes and line breaks in cells survive; a cell a spreadsheet would run as a formula
//! does not), across more than one internal page, capped by `limit`; a bad filter is still a
//! JSON 400. (The DORA series' export is tested beside its JSON, in `tests/dora.rs`.)

use serde_json::{Value, json};
use shiplog_blackbox::{TestApp, on_both_backends};

/// March 2024 from its first midnight, `minutes` and `seconds` later, in RFC 3339.
fn at(minutes: u32, seconds: u32) -> String {
    format!(
        "2024-03-{:02}T{:02}:{:02}:{seconds:02}Z",
        1 + minutes / 1440,
        minutes % 1440 / 60,
        minutes % 60
    )
}

/// Imports `count` deployments of `my-project`, production and staging in turn; record `i`'s
/// commit message is `message(i)`.
async fn history(app: &TestApp, count: u32, message: impl Fn(u32) -> String) {
    let body: String = (0..count)
        .map(|i| {
            let record = json!({
                "project": "my-project", "application": "api",
                "environment": if i % 2 == 0 { "production" } else { "staging" },
                "status": "success",
                "started_at": at(i * 10, 0),
                "finished_at": at(i * 10 + 1, 30),
                "commit_sha": format!("{:0>40x}", i + 1),
                "commit_message": message(i),
                "external_id": format!("deploy-{i}"),
            });
            format!("{record}\n")
        })
        .collect();
    let (status, answer) = app
        .post_raw(
            "/api/v1/import",
            &[
                ("Authorization", &format!("Bearer {}", app.admin_key)),
                ("Content-Type", "application/x-ndjson"),
            ],
            body,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], count, "{answer}");
}

/// The CSV answer to `path`: status, content type, rows (the header first).
pub(crate) async fn csv(app: &TestApp, path: &str) -> (u16, String, Vec<Vec<String>>) {
    let mut response = app
        .client
        .get(format!("{}{path}", app.base))
        .insert_header(("Authorization", format!("Bearer {}", app.admin_key)))
        .insert_header(("Accept", "text/csv"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.body().limit(64 * 1024 * 1024).await.unwrap();
    let rows = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body.as_ref())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (status, media, rows)
}

async fn deployments_export_as_csv_with_their_filters(app: &TestApp) {
    let messages = |i: u32| match i {
        0 => "=HYPERLINK(\"https://evil.example\")".to_owned(),
        1 => "fix: a, b and \"c\"\n\nsecond paragraph, closes #PR-1".to_owned(),
        _ => format!("Release {i}"),
    };
    history(app, 450, messages).await;

    let (status, media, rows) = csv(app, "/api/v1/deployments?project=my-project").await;
    assert_eq!(status, 200);
    assert!(media.starts_with("text/csv"), "{media}");
    let header = &rows[0];
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    for name in [
        "id",
        "environment",
        "status",
        "started_at",
        "finished_at",
        "duration_seconds",
        "commit_sha",
        "commit_message",
        "references",
    ] {
        column(name);
    }
    // Every deployment, in the JSON listing's order, across the export's pages of 200.
    let ids: Vec<&str> = rows[1..].iter().map(|r| r[column("id")].as_str()).collect();
    assert_eq!(ids, app.listed_ids("project=my-project", 200).await);
    assert_eq!(ids.len(), 450);
    let by_run = |external: &str| {
        rows[1..]
            .iter()
            .find(|r| r[column("external_id")] == external)
            .unwrap()
            .clone()
    };
    let first = by_run("deploy-0");
    assert_eq!(
        first[column("commit_message")],
        "'=HYPERLINK(\"https://evil.example\")",
        "a formula is written as text"
    );
    assert_eq!(first[column("duration_seconds")], "90");
    assert_eq!(first[column("started_at")], "2024-03-01T00:00:00Z");
    assert_eq!(first[column("status")], "success");
    let second = by_run("deploy-1");
    assert_eq!(second[column("commit_message")], messages(1));
    assert_eq!(second[column("references")], "PR-1");
    assert_eq!(second[column("environment")], "staging");

    // The filters and `limit` apply; a bad filter is refused as JSON.
    let (_, _, production) = csv(
        app,
        "/api/v1/deployments?project=my-project&environment=production",
    )
    .await;
    assert_eq!(production.len() - 1, 225);
    assert!(
        production[1..]
            .iter()
            .all(|r| r[column("environment")] == "production")
    );
    let (_, _, capped) = csv(app, "/api/v1/deployments?project=my-project&limit=3").await;
    assert_eq!(capped.len() - 1, 3);
    assert_eq!(
        capped[1..]
            .iter()
            .map(|r| r[column("id")].as_str())
            .collect::<Vec<_>>(),
        ids[..3]
    );
    let mut refused = app
        .client
        .get(format!("{}/api/v1/deployments?status=sideways", app.base))
        .insert_header(("Authorization", format!("Bearer {}", app.admin_key)))
        .insert_header(("Accept", "text/csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    let error: Value = serde_json::from_slice(&refused.body().await.unwrap()).unwrap();
    assert!(error.to_string().contains("status"), "{error}");
}

/// Reads CSV text into rows (the header first).
fn rows(text: &str) -> Vec<Vec<String>> {
    ::csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// The dashboard's window of `days` whole UTC days up to the end of today, as API parameters.
fn dashboard_window(days: i64) -> String {
    let end = time::OffsetDateTime::now_utc()
        .date()
        .next_day()
        .unwrap()
        .midnight()
        .assume_utc();
    let format = time::format_description::well_known::Rfc3339;
    let start = end - time::Duration::days(days);
    format!(
        "from={}&to={}",
        start.format(&format).unwrap(),
        end.format(&format).unwrap()
    )
}

async fn the_dashboard_downloads_what_the_api_exports(app: &TestApp) {
    history(app, 30, |i| format!("Release {i}")).await;
    // Recent deployments (now), a failure among them, and an incident, so that the DORA
    // page's window and each table behind it have rows.
    for (run, status) in [
        (1, "success"),
        (2, "failed"),
        (3, "success"),
        (4, "success"),
    ] {
        app.clienwork(
            &app.admin_key,
            json!({"event": "deploy.completed", "project_slug": "my-project", "status": status,
                   "environment": "production", "url": format!("https://ci.example/runs/{run}"),
                   "commit_message": "=cmd|' /C calc'!A0"}),
        )
        .await;
    }
    let (status, incident) = app
        .post(
            "/api/v1/incidents",
            &app.admin_key,
            json!({"project": "my-project", "environment": "production", "external_id": "INC-9",
                   "title": "=1+1 checkout down"}),
        )
        .await;
    assert_eq!(status, 201, "{incident}");
    let (_, _, cookie) = app.sign_in(&app.admin_key).await;
    let cookie = cookie.unwrap();

    // The list links to the download of its filters; the download is the API's export.
    let (status, _, page) = app
        .page("/deployments?environment=production", Some(&cookie))
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("href=\"/deployments.csv?environment=production\""),
        "{page}"
    );
    let (status, headers, text) = app
        .page("/deployments.csv?environment=production", Some(&cookie))
        .await;
    assert_eq!(status, 200);
    let media = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(media.starts_with("text/csv"), "{media}");
    let (_, _, api) = csv(app, "/api/v1/deployments?environment=production").await;
    assert_eq!(rows(&text), api);
    assert_eq!(api.len() - 1, 15 + 4);

    // The DORA page's weekly figures, and each table behind them, are the API's.
    let window = dashboard_window(30);
    let (_, _, page) = app
        .page("/dora?project=my-project&days=30", Some(&cookie))
        .await;
    assert!(
        page.contains("href=\"/dora.csv?days=30&amp;project=my-project\""),
        "{page}"
    );
    let (status, _, weekly) = app
        .page("/dora.csv?days=30&project=my-project", Some(&cookie))
        .await;
    assert_eq!(status, 200, "{weekly}");
    let (_, _, api) = csv(
        app,
        &format!("/api/v1/metrics/dora?project=my-project&{window}&interval=week"),
    )
    .await;
    assert_eq!(rows(&weekly), api);
    assert_eq!(api.len() - 1, 5, "4 weeks and 2 days");

    let explained = format!("/api/v1/metrics/dora?project=my-project&{window}&explain=true");
    let (_, _, deployments) = csv(app, &explained).await;
    let column = |name: &str| deployments[0].iter().position(|h| h == name).unwrap();
    let subset = |keep: &dyn Fn(&Vec<String>) -> bool| -> Vec<Vec<String>> {
        std::iter::once(deployments[0].clone())
            .chain(deployments[1..].iter().filter(|r| keep(r)).cloned())
            .collect()
    };
    let (_, _, failures) = csv(app, &format!("{explained}&table=failures")).await;
    let (_, _, incidents) = csv(app, &format!("{explained}&table=incidents")).await;
    for (table, wanted) in [
        (
            "successes",
            subset(&|r| r[column("outcome")] == "succeeded"),
        ),
        (
            "failures",
            subset(&|r| r[column("counts_as_failure")] == "true"),
        ),
        ("rework", subset(&|r| !r[column("rework")].is_empty())),
        ("recoveries", failures.clone()),
        ("incidents", incidents.clone()),
    ] {
        let path = format!("/dora/deployments.csv?days=30&project=my-project&table={table}");
        let (_, _, page) = app
            .page(
                "/dora/deployments?days=30&project=my-project",
                Some(&cookie),
            )
            .await;
        assert!(
            page.contains(&path.replace('&', "&amp;")),
            "{table}: {page}"
        );
        let (status, _, text) = app.page(&path, Some(&cookie)).await;
        assert_eq!(status, 200, "{table}: {text}");
        assert_eq!(rows(&text), wanted, "{table}");
        assert!(wanted.len() > 1, "{table} has rows");
    }
    // Text a spreadsheet would run is written as text.
    assert_eq!(incidents[1][1], "'=1+1 checkout down");
    let (status, _, refused) = app
        .page(
            "/dora/deployments.csv?days=30&table=everything",
            Some(&cookie),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused.contains("table"), "{refused}");
    let (status, body) = app
        .get("/api/v1/metrics/dora?table=failures", &app.admin_key)
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("table: "),
        "{body}"
    );

    // Without a session, a download is the sign-in's redirect, not data.
    let (status, _, _) = app.page("/deployments.csv", None).await;
    assert_eq!(status, 303);
}

on_both_backends!(
    deployments_export_as_csv_with_their_filters,
    the_dashboard_downloads_what_the_api_exports
);
