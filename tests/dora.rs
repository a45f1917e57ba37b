//! DORA metrics through the HTTP API: a hand-checked history sent through the Clienwork API,
//! read back from `GET /api/v1/metrics/dora`, on SQLite and PostgreSQL.

use serde_json::{Value, json};
use shiplog_blackbox::{TestApp, on_both_backends};

/// One `deploy.completed` of its own run (`url`), optionally with a commit and its timestamp.
async fn deployed(
    app: &TestApp,
    run: &str,
    place: (&str, &str),
    status: &str,
    finished: &str,
    commit: Option<(&str, Option<&str>)>,
) {
    let mut body = json!({
        "event": "deploy.completed", "project_slug": "my-project", "status": status,
        "application": place.0, "environment": place.1, "finished_at": finished,
        "url": format!("https://ci.example/runs/{run}"),
    });
    if let Some((sha, timestamp)) = commit {
        body["commit_sha"] = json!(sha);
        if let Some(timestamp) = timestamp {
            body["commit_timestamp"] = json!(timestamp);
        }
    }
    let (status, answer) = app.post("/api/webhooks/ci", &app.admin_key, body).await;
    assert_eq!(status, 200, "{run}: {answer}");
}

const API: (&str, &str) = ("api", "production");
const WEB: (&str, &str) = ("web", "production-us");

/// The history of the domain's fixture, sent the way pipelines would send it.
async fn send_history(app: &TestApp) {
    deployed(app, "d0", WEB, "failed", "2025-02-28T23:00:00Z", None).await;
    deployed(
        app,
        "d1",
        API,
        "success",
        "2025-03-01T10:00:00Z",
        Some(("c1c1c1c1", Some("2025-03-01T09:30:00Z"))),
    )
    .await;
    deployed(
        app,
        "d2",
        API,
        "failed",
        "2025-03-02T12:00:00Z",
        Some(("c2c2c2c2", Some("2025-03-02T11:00:00Z"))),
    )
    .await;
    deployed(
        app,
        "d3",
        API,
        "failed",
        "2025-03-02T13:00:00Z",
        Some(("c2c2c2c2", Some("2025-03-02T11:00:00Z"))),
    )
    .await;
    // d4: started, then completed, then the completion delivered again: one deployment.
    let (status, _) = app
        .post(
            "/api/webhooks/ci",
            &app.admin_key,
            json!({
            "event": "deploy.started", "project_slug": "my-project", "application": "api",
            "environment": "production", "started_at": "2025-03-02T13:30:00Z",
            "commit_sha": "c3c3c3c3", "url": "https://ci.example/runs/d4"}),
        )
        .await;
    assert_eq!(status, 200);
    for _ in 0..2 {
        deployed(
            app,
            "d4",
            API,
            "success",
            "2025-03-02T14:00:00Z",
            Some(("c3c3c3c3", Some("2025-03-02T12:00:00Z"))),
        )
        .await;
    }
    deployed(app, "d5", API, "success", "2025-03-09T10:00:00Z", None).await;
    // Its commit timestamp is a minute after it finished: clock skew.
    deployed(
        app,
        "d6",
        WEB,
        "success",
        "2025-03-03T08:00:00Z",
        Some(("c6c6c6c6", Some("2025-03-03T08:01:00Z"))),
    )
    .await;
    deployed(app, "d7", WEB, "failed", "2025-03-10T09:00:00Z", None).await;
    // No commit timestamp: the commit's first pipeline event (a build a day earlier) counts.
    let (status, _) = app
        .post(
            "/api/webhooks/ci",
            &app.admin_key,
            json!({
            "event": "build.started", "project_slug": "my-project", "application": "web",
            "started_at": "2025-03-10T09:30:00Z", "commit_sha": "c8c8c8c8"}),
        )
        .await;
    assert_eq!(status, 200);
    deployed(
        app,
        "d8",
        WEB,
        "success",
        "2025-03-11T09:30:00Z",
        Some(("c8c8c8c8", None)),
    )
    .await;
    deployed(app, "d9", WEB, "failed", "2025-03-14T23:00:00Z", None).await;
    deployed(app, "d10", API, "failed", "2025-03-14T22:00:00Z", None).await;
    deployed(app, "d11", API, "success", "2025-03-15T01:00:00Z", None).await;
    // Neither counts: not production, and cancelled.
    deployed(
        app,
        "s1",
        ("api", "staging"),
        "success",
        "2025-03-05T10:00:00Z",
        None,
    )
    .await;
    deployed(app, "x1", API, "cancelled", "2025-03-06T10:00:00Z", None).await;
}

async fn metrics(app: &TestApp, query: &str) -> Value {
    let (status, body) = app
        .get(&format!("/api/v1/metrics/dora?{query}"), &app.admin_key)
        .await;
    assert_eq!(status, 200, "{query}: {body}");
    body
}

async fn the_hand_checked_history_gives_the_documented_numbers(app: &TestApp) {
    send_history(app).await;
    let body = metrics(
        app,
        "project=my-project&from=2025-03-01T00:00:00Z&to=2025-03-15T00:00:00Z&interval=week",
    )
    .await;
    // Every production environment, in position order (production-us was created first, by d0).
    assert_eq!(
        body["scope"]["environments"],
        json!(["production-us", "production"])
    );
    // In [03-01, 03-15), production only: successes d1 d4 d5 d6 d8 = 5 (d4 once, staging and
    // the cancelled run not at all); failures d2 d3 d7 d9 d10 = 5.
    // Frequency 5 / 14 days; deploy days: week 1 {03-01, 03-02, 03-03} = 3, week 2
    // {03-09, 03-11} = 2, median 2.5; 0.357/day >= 1/7: high.
    let f = &body["deployment_frequency"];
    assert_eq!(f["samples"], 5);
    assert!(
        (f["per_day"].as_f64().unwrap() - 5.0 / 14.0).abs() < 1e-9,
        "{f}"
    );
    assert_eq!(f["median_deploy_days_per_week"], 2.5);
    assert_eq!(f["band"], "high");
    // Lead time: d1 10:00 - 09:30 = 1800 s; d4 14:00 - 12:00 = 7200 s; d8 03-11 09:30 - build
    // 03-10 09:30 = 86400 s; d5 has no commit, d6's commit is after it. Median 7200 s (high),
    // p90 = rank ceil(0.9 x 3) = 3rd = 86400 s.
    let l = &body["lead_time"];
    assert_eq!(l["samples"], 3);
    assert_eq!(l["median_seconds"], 7200.0);
    assert_eq!(l["p90_seconds"], 86400.0);
    assert_eq!(l["excluded"], 2);
    assert_eq!(l["exclusions"]["no_commit"], 1);
    assert_eq!(l["exclusions"]["commit_after_deployment"], 1);
    // Median 7200 s is in the high band, but 3 lead times are too few for one.
    assert_eq!(l["band"], Value::Null);
    // Change failure rate 5 / 10: low.
    let c = &body["change_failure_rate"];
    assert_eq!(
        (c["failed"].clone(), c["succeeded"].clone()),
        (json!(5), json!(5))
    );
    assert_eq!(c["value"], 0.5);
    assert_eq!(c["band"], "low");
    // Recovery: api d2 -> d4 2 h (d3 same incident); api d10 -> d11 3 h (after the window's
    // end); web d7 -> d8 24.5 h; web d9 unrecovered (excluded); web d0 started before the window.
    // Median of [7200, 10800, 88200] = 10800 s: high.
    let r = &body["recovery_time"];
    assert_eq!(r["samples"], 3);
    assert_eq!(r["excluded"], 1);
    assert_eq!(r["median_seconds"], 10800.0);
    // High by its median, but 3 recoveries are too few for a band.
    assert_eq!(r["band"], Value::Null);
    // Rework: d3 finished (no start sent: its finish stands for it) at 13:00 and d4 started at
    // 13:30 (its deploy.started), both while d2's failure was open (12:00 until d4's success at
    // 14:00). d6 (no start) is the success that ends d0's failure and d8 (no start) the one
    // that ends d7's: the success that ends a failure is rework. 4 of 10, no band.
    let w = &body["rework_rate"];
    assert_eq!(
        (w["rework"].clone(), w["samples"].clone()),
        (json!(4), json!(10)),
        "{w}"
    );
    assert_eq!(w["reasons"]["open_failure"], 4, "{w}");
    assert_eq!(w["value"], 0.4, "{w}");
    assert_eq!(w["band"], Value::Null, "{w}");
    // The weekly series: week 1 holds d1 d4 d6, week 2 d5 d8.
    let series = body["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    assert_eq!(series[0]["deployment_frequency"]["samples"], 3);
    assert_eq!(series[1]["deployment_frequency"]["samples"], 2);
    assert!(
        body["definitions"]["lead_time"]
            .as_str()
            .unwrap()
            .contains("first pipeline event")
    );
    assert!(
        body["definitions"]["rework_rate"]
            .as_str()
            .unwrap()
            .contains("no band")
    );

    // One environment named: only web's production-us counts.
    let web = metrics(
        app,
        "project=my-project&environment=production-us&from=2025-03-01T00:00:00Z&to=2025-03-15T00:00:00Z",
    )
    .await;
    assert_eq!(web["scope"]["environments"], json!(["production-us"]));
    assert_eq!(web["deployment_frequency"]["samples"], 2, "d6, d8");
    assert_eq!(web["change_failure_rate"]["failed"], 2, "d7, d9");
    // One application named.
    let api = metrics(
        app,
        "application=api&from=2025-03-01T00:00:00Z&to=2025-03-15T00:00:00Z",
    )
    .await;
    assert_eq!(api["deployment_frequency"]["samples"], 3, "d1, d4, d5");
    assert_eq!(api["recovery_time"]["samples"], 2, "d2 -> d4, d10 -> d11");
}

/// The run (`d0`…`d11`) of each deployment id, from the deployments API.
async fn runs(app: &TestApp) -> std::collections::HashMap<String, String> {
    let (status, body) = app
        .get(
            "/api/v1/deployments?project=my-project&limit=100",
            &app.admin_key,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let run = d["run_url"].as_str().unwrap().rsplit('/').next().unwrap();
            (d["id"].as_str().unwrap().to_owned(), run.to_owned())
        })
        .collect()
}

async fn the_explanation_names_each_deployment_behind_the_numbers(app: &TestApp) {
    send_history(app).await;
    let body = metrics(
        app,
        "project=my-project&from=2025-03-01T00:00:00Z&to=2025-03-15T00:00:00Z&explain=true",
    )
    .await;
    let runs = runs(app).await;
    let run = |id: &Value| runs[id.as_str().unwrap()].clone();
    let explanation = &body["explanation"];
    // Newest first, the ten production deployments of the window (see the test above).
    let deployments = explanation["deployments"].as_array().unwrap();
    let order: Vec<String> = deployments.iter().map(|d| run(&d["id"])).collect();
    assert_eq!(
        order,
        ["d9", "d10", "d8", "d7", "d5", "d6", "d4", "d3", "d2", "d1"]
    );
    let of = |name: &str| {
        deployments
            .iter()
            .find(|d| run(&d["id"]) == name)
            .unwrap()
            .clone()
    };
    assert_eq!(of("d5")["lead_time_excluded"], "no_commit");
    assert_eq!(of("d6")["lead_time_excluded"], "commit_after_deployment");
    assert_eq!(of("d8")["lead_time_seconds"], 86400.0);
    assert_eq!(of("d7")["outcome"], "failed");
    // The failures, newest first; d11 ended d10's after the window's end.
    let failures: Vec<(String, Option<String>, Value)> = explanation["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                run(&i["first_failure"]),
                i["recovered_by"].as_str().map(|id| runs[id].clone()),
                i["recovery_seconds"].clone(),
            )
        })
        .collect();
    assert_eq!(
        failures,
        [
            ("d9".to_owned(), None, Value::Null),
            ("d10".to_owned(), Some("d11".to_owned()), json!(10800.0)),
            ("d7".to_owned(), Some("d8".to_owned()), json!(88200.0)),
            ("d2".to_owned(), Some("d4".to_owned()), json!(7200.0)),
        ]
    );
    // Without explain=true, no explanation.
    let plain = metrics(app, "project=my-project").await;
    assert!(plain.get("explanation").is_none(), "{plain}");
}

async fn a_deployment_counts_the_moment_it_is_acknowledged(app: &TestApp) {
    let before = metrics(app, "").await;
    assert_eq!(before["deployment_frequency"]["samples"], 0);
    assert_eq!(before["lead_time"]["median_seconds"], Value::Null);
    assert_eq!(before["change_failure_rate"]["value"], Value::Null);
    // Finished now (no time sent): inside the default window, the last 30 days.
    let (status, _) = app
        .post(
            "/api/webhooks/ci",
            &app.admin_key,
            json!({
            "event": "deploy.completed", "project_slug": "my-project", "status": "success",
            "environment": "production", "url": "https://ci.example/runs/now"}),
        )
        .await;
    assert_eq!(status, 200);
    let after = metrics(app, "").await;
    assert_eq!(after["deployment_frequency"]["samples"], 1);
    assert_eq!(after["change_failure_rate"]["value"], 0.0);
}

/// The guides' old events: a deploy that names its commit but no commit timestamp, and nothing
/// else seen of that commit. Its own events say when the deploy ran, not when the commit was
/// made, so it gets no lead time (before, it got one of seconds, banded elite).
async fn a_deploys_own_events_are_no_commit_time(app: &TestApp) {
    let run = |run: &str, event: &str, environment: &str, sha: &str, at: &str| {
        json!({
            "event": event, "project_slug": "my-project", "status": "success",
            "environment": environment, "commit_sha": sha, "started_at": at, "finished_at": at,
            "url": format!("https://ci.example/runs/{run}"),
        })
    };
    for body in [
        // c1: started and completed, nothing else known of the commit.
        run(
            "r1",
            "deploy.started",
            "production",
            "c1c1c1c1",
            "2025-03-02T10:00:00Z",
        ),
        run(
            "r1",
            "deploy.completed",
            "production",
            "c1c1c1c1",
            "2025-03-02T10:05:00Z",
        ),
        // c2: deployed to staging first; that other deployment's event dates the commit.
        run(
            "r2",
            "deploy.completed",
            "staging",
            "c2c2c2c2",
            "2025-03-03T10:00:00Z",
        ),
        run(
            "r3",
            "deploy.completed",
            "production",
            "c2c2c2c2",
            "2025-03-03T12:00:00Z",
        ),
    ] {
        let (status, answer) = app.post("/api/webhooks/ci", &app.admin_key, body).await;
        assert_eq!(status, 200, "{answer}");
    }
    let body = metrics(app, "from=2025-03-01T00:00:00Z&to=2025-03-08T00:00:00Z").await;
    let l = &body["lead_time"];
    // r1: excluded, no_commit_time. r3: 12:00 - staging's 10:00 = 7200 s.
    assert_eq!(l["samples"], 1, "{l}");
    assert_eq!(l["median_seconds"], 7200.0, "{l}");
    assert_eq!(l["excluded"], 1, "{l}");
    assert_eq!(l["exclusions"]["no_commit_time"], 1, "{l}");
}

async fn bad_parameters_and_roles_are_refused(app: &TestApp) {
    for (query, field) in [
        ("from=yesterday", "from"),
        ("interval=month", "interval"),
        ("explain=maybe", "explain"),
        ("from=2025-03-02T00:00:00Z&to=2025-03-01T00:00:00Z", "from"),
        ("environment=Not%20A%20Code", "environment"),
    ] {
        let (status, body) = app
            .get(&format!("/api/v1/metrics/dora?{query}"), &app.admin_key)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{query}: {body}"
        );
    }
    let ingest = app.key("ingest", None).await;
    let (status, _) = app.get("/api/v1/metrics/dora", &ingest).await;
    assert_eq!(status, 403);
    let (status, _) = app
        .get("/api/v1/metrics/dora?project=nowhere", &app.admin_key)
        .await;
    assert_eq!(status, 404);
}

/// The incidents of the domain's fixture (`shiplog_domain::dora` tests), reported through
/// `POST /api/v1/incidents` over the same history, in an order unlike their opening order.
async fn incidents_change_the_failure_rate_and_recovery_as_worked_out_by_hand(app: &TestApp) {
    send_history(app).await;
    let before = metrics(
        app,
        "project=my-project&from=2025-03-01T00:00:00Z&to=2025-03-15T00:00:00Z",
    )
    .await;
    assert_eq!(before["change_failure_rate"]["failed"], 5, "{before}");
    let id_of: std::collections::HashMap<String, String> = runs(app)
        .await
        .into_iter()
        .map(|(id, run)| (run, id))
        .collect();
    let incidents = [
        // i7: names d7, which failed anyway. 1 h.
        json!({"external_id": "i7", "title": "web errors", "application": "web",
               "environment": "production-us", "opened_at": "2025-03-10T10:00:00Z",
               "resolved_at": "2025-03-10T11:00:00Z", "blamed": {"deployment": id_of["d7"]}}),
        // i1: names nothing; d1 (api, 2 h before) was the last success there. 1.5 h.
        json!({"external_id": "i1", "title": "api slow", "application": "api",
               "environment": "production", "opened_at": "2025-03-01T12:00:00Z",
               "resolved_at": "2025-03-01T13:30:00Z"}),
        // i2: names d8, still open.
        json!({"external_id": "i2", "title": "web login broken", "application": "web",
               "environment": "production-us", "opened_at": "2025-03-12T00:00:00Z",
               "blamed": {"deployment": id_of["d8"]}}),
        // i3: the whole project; names d4's commit. 2 h.
        json!({"external_id": "i3", "title": "checkout down", "opened_at": "2025-03-03T00:00:00Z",
               "resolved_at": "2025-03-03T02:00:00Z", "blamed": {"commit": "c3c3c3c3"}}),
        // i4: after the window, nothing within a day before it.
        json!({"external_id": "i4", "title": "later", "application": "web",
               "opened_at": "2025-03-20T00:00:00Z"}),
        // i5: the whole project, names nothing: d5 (api, 03-09 10:00). 30 min.
        json!({"external_id": "i5", "title": "errors everywhere",
               "opened_at": "2025-03-09T12:00:00Z", "resolved_at": "2025-03-09T12:30:00Z"}),
        // i6: api's last success is 58 h before: nothing within 24 h. 4 h.
        json!({"external_id": "i6", "title": "api timeouts", "application": "api",
               "environment": "production", "opened_at": "2025-03-05T00:00:00Z",
               "resolved_at": "2025-03-05T04:00:00Z"}),
    ];
    for incident in &incidents {
        let mut body = incident.clone();
        body["project"] = json!("my-project");
        let (status, answer) = app.post("/api/v1/incidents", &app.admin_key, body).await;
        assert_eq!(status, 201, "{answer}");
    }
    // Sent again (a retry): nothing changes, nothing is added.
    let mut again = incidents[1].clone();
    again["project"] = json!("my-project");
    let (status, answer) = app.post("/api/v1/incidents", &app.admin_key, again).await;
    assert_eq!(status, 200, "{answer}");

    let body = metrics(
        app,
        "project=my-project&from=2025-03-01T00:00:00Z&to=2025-03-15T00:00:00Z&explain=true",
    )
    .await;
    // As worked out in the domain's test: failed d2 d3 d7 d9 d10; with an incident d1 (i1),
    // d8 (i2), d4 (i3), d5 (i5); only d6 clean: 9 / 10. Linked incidents: i1 i2 i3 i5 i7.
    let c = &body["change_failure_rate"];
    assert_eq!(c["failed"], 9, "{c}");
    assert_eq!(c["failed_deployments"], 5, "{c}");
    assert_eq!(c["failed_by_incident"], 4, "{c}");
    assert_eq!(c["succeeded"], 1, "{c}");
    assert_eq!(c["incidents"], 5, "{c}");
    assert_eq!(c["value"], 0.9, "{c}");
    // Recovery: [1800, 3600, 5400, 7200, 7200, 10800, 14400, 88200] -> 7200 s; d9's failure and
    // i2 still open.
    let r = &body["recovery_time"];
    assert_eq!(r["samples"], 8, "{r}");
    assert_eq!(r["from_deployments"], 3, "{r}");
    assert_eq!(r["from_incidents"], 5, "{r}");
    assert_eq!(r["excluded"], 2, "{r}");
    assert_eq!(r["exclusions"]["unresolved_incidents"], 1, "{r}");
    assert_eq!(r["median_seconds"], 7200.0, "{r}");
    // Rework: d3, d4, d6 and d8 as without incidents, and d9 (web, 03-14 23:00) while i2 (web,
    // open since 03-12) was open: 5 of 10.
    let w = &body["rework_rate"];
    assert_eq!(
        (w["rework"].clone(), w["samples"].clone()),
        (json!(5), json!(10)),
        "{w}"
    );
    assert_eq!(w["reasons"]["open_failure"], 4, "{w}");
    assert_eq!(w["reasons"]["open_incident"], 1, "{w}");
    // Frequency and lead time are about how deployments ended: unchanged.
    assert_eq!(body["deployment_frequency"], before["deployment_frequency"]);
    assert_eq!(body["lead_time"], before["lead_time"]);
    // The explanation names each incident and what it is linked to.
    let listed = body["explanation"]["incidents"].as_array().unwrap();
    let titles: Vec<&str> = listed
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "web login broken",
            "web errors",
            "errors everywhere",
            "api timeouts",
            "checkout down",
            "api slow"
        ]
    );
    let linked = |title: &str| -> Vec<(String, String)> {
        let incident = listed.iter().find(|i| i["title"] == title).unwrap();
        let runs_by_id: std::collections::HashMap<&String, &String> =
            id_of.iter().map(|(run, id)| (id, run)).collect();
        incident["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    runs_by_id[&l["id"].as_str().unwrap().to_owned()].clone(),
                    l["link"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(
        linked("api slow"),
        [("d1".to_owned(), "last_success".to_owned())]
    );
    assert_eq!(
        linked("checkout down"),
        [("d4".to_owned(), "named".to_owned())]
    );
    assert_eq!(linked("api timeouts"), []);
    // A longer link window reaches d4 from i6 (one more incident, no more failures).
    let wider = metrics(
        app,
        "project=my-project&from=2025-03-01T00:00:00Z&to=2025-03-15T00:00:00Z&incident_link_hours=72",
    )
    .await;
    assert_eq!(wider["change_failure_rate"]["failed"], 9);
    assert_eq!(wider["change_failure_rate"]["incidents"], 6);
    assert_eq!(wider["scope"]["incident_link_hours"], 72);
}

/// One production (or `environment`) deployment of `api` in its own run `run`, with the extra
/// fields of `extra` (`started_at`, `branch`, `ref`, `commit_message`, `rework`, …).
async fn api_deployed(app: &TestApp, run: &str, status: &str, finished: &str, extra: Value) {
    let mut body = json!({
        "event": "deploy.completed", "project_slug": "my-project", "status": status,
        "application": "api", "environment": "production", "finished_at": finished,
        "url": format!("https://ci.example/runs/{run}"),
    });
    for (name, value) in extra.as_object().unwrap() {
        body[name] = value.clone();
    }
    let (status, answer) = app.post("/api/webhooks/ci", &app.admin_key, body).await;
    assert_eq!(status, 200, "{run}: {answer}");
}

/// Deployment rework rate over a history worked out by hand, one deployment per reason (and
/// some that are not rework), from 2025-04-01 to 2025-04-08:
///
/// | run | finished (started)       | what                               | rework          |
/// |-----|--------------------------|------------------------------------|-----------------|
/// | r0  | 04-01 08:30 (08:00)      | during i0 (opened 03-31, before)   | open_incident   |
/// | r1  | 04-01 10:10 (10:00)      | main, after i0 resolved at 09:00   | no              |
/// | r2  | 04-01 12:00              | sent with `rework: true`           | marked          |
/// | r3  | 04-02 10:00              | ref refs/heads/hotfix/cart         | hotfix_ref      |
/// | r4  | 04-02 12:00              | message `Revert "Add cart"`        | revert          |
/// | r5  | 04-03 10:00 failed       | begins its own failure             | no              |
/// | r6  | 04-03 11:00 (10:30) fail | r5's failure open                  | open_failure    |
/// | r7  | 04-03 12:00 (11:30)      | r5's failure open (ends it)        | open_failure    |
/// | r8  | 04-04 10:20 (10:00)      | during i1 (09:00 to 13:00)         | open_incident   |
/// | r9  | 04-04 11:30 (11:00)      | hotfix-login during i1             | hotfix_ref      |
/// | r10 | 04-05 10:00              | release-fix/x, after the patterns  | hotfix_ref      |
/// |     |                          | became ["release-fix/*"]           |                 |
/// | r11 | 04-05 12:00              | hotfix/y, no longer a pattern      | no              |
/// | s1  | 04-02 09:00, staging     | hotfix/cart, not production        | not counted     |
///
/// 12 production deployments, 9 rework: 0.75. Reasons: marked 1, hotfix_ref 3 (r3 r9 r10),
/// revert 1, open_incident 2 (r0 r8), open_failure 2 (r6 r7). r9 started during i1 too: its
/// first reason, what it says of itself, is the one counted.
async fn rework_rate_counts_each_reason_worked_out_by_hand(app: &TestApp) {
    let start = |at: &str| json!({ "started_at": at, "branch": "main" });
    api_deployed(
        app,
        "r0",
        "success",
        "2025-04-01T08:30:00Z",
        start("2025-04-01T08:00:00Z"),
    )
    .await;
    api_deployed(
        app,
        "r1",
        "success",
        "2025-04-01T10:10:00Z",
        start("2025-04-01T10:00:00Z"),
    )
    .await;
    api_deployed(
        app,
        "r2",
        "success",
        "2025-04-01T12:00:00Z",
        json!({"rework": true}),
    )
    .await;
    api_deployed(
        app,
        "r3",
        "success",
        "2025-04-02T10:00:00Z",
        json!({"ref": "refs/heads/hotfix/cart"}),
    )
    .await;
    api_deployed(
        app,
        "r4",
        "success",
        "2025-04-02T12:00:00Z",
        json!({"commit_message": "Revert \"Add cart\"\n\nThis reverts commit c0ffee."}),
    )
    .await;
    api_deployed(app, "r5", "failed", "2025-04-03T10:00:00Z", json!({})).await;
    api_deployed(
        app,
        "r6",
        "failed",
        "2025-04-03T11:00:00Z",
        start("2025-04-03T10:30:00Z"),
    )
    .await;
    api_deployed(
        app,
        "r7",
        "success",
        "2025-04-03T12:00:00Z",
        start("2025-04-03T11:30:00Z"),
    )
    .await;
    api_deployed(
        app,
        "r8",
        "success",
        "2025-04-04T10:20:00Z",
        start("2025-04-04T10:00:00Z"),
    )
    .await;
    api_deployed(
        app,
        "r9",
        "success",
        "2025-04-04T11:30:00Z",
        json!({"started_at": "2025-04-04T11:00:00Z", "branch": "hotfix-login"}),
    )
    .await;
    let mut staging = json!({"branch": "hotfix/cart"});
    staging["environment"] = json!("staging");
    api_deployed(app, "s1", "success", "2025-04-02T09:00:00Z", staging).await;
    // The project's own patterns, from now on.
    let (status, project) = app
        .patch(
            "/api/v1/projects/my-project",
            &app.admin_key,
            json!({"hotfix_patterns": ["release-fix/*"]}),
        )
        .await;
    assert_eq!(status, 200, "{project}");
    assert_eq!(project["hotfix_patterns"], json!(["release-fix/*"]));
    api_deployed(
        app,
        "r10",
        "success",
        "2025-04-05T10:00:00Z",
        json!({"branch": "release-fix/x"}),
    )
    .await;
    api_deployed(
        app,
        "r11",
        "success",
        "2025-04-05T12:00:00Z",
        json!({"branch": "hotfix/y"}),
    )
    .await;

    // The incidents, reported once the application exists.
    for (external_id, opened, resolved) in [
        ("i0", "2025-03-31T23:00:00Z", "2025-04-01T09:00:00Z"),
        ("i1", "2025-04-04T09:00:00Z", "2025-04-04T13:00:00Z"),
    ] {
        let (status, answer) = app
            .post(
                "/api/v1/incidents",
                &app.admin_key,
                json!({"project": "my-project", "external_id": external_id,
                       "title": external_id, "application": "api",
                       "environment": "production", "opened_at": opened,
                       "resolved_at": resolved}),
            )
            .await;
        assert_eq!(status, 201, "{answer}");
    }
    let body = metrics(
        app,
        "project=my-project&from=2025-04-01T00:00:00Z&to=2025-04-08T00:00:00Z&explain=true&interval=day",
    )
    .await;
    let r = &body["rework_rate"];
    assert_eq!(r["rework"], 9, "{r}");
    assert_eq!(r["samples"], 12, "{r}");
    assert_eq!(r["value"], 0.75, "{r}");
    assert_eq!(
        r["reasons"],
        json!({"marked": 1, "hotfix_ref": 3, "revert": 1, "open_incident": 2, "open_failure": 2}),
        "{r}"
    );
    assert_eq!(r["band"], Value::Null, "no DORA report gives rework bands");
    // Each deployment of the explanation says why it is rework.
    let run_of = runs(app).await;
    let reasons: std::collections::BTreeMap<String, Value> = body["explanation"]["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                run_of[d["id"].as_str().unwrap()].clone(),
                d["rework"].clone(),
            )
        })
        .collect();
    let expected: std::collections::BTreeMap<String, Value> = [
        ("r0", json!("open_incident")),
        ("r1", Value::Null),
        ("r2", json!("marked")),
        ("r3", json!("hotfix_ref")),
        ("r4", json!("revert")),
        ("r5", Value::Null),
        ("r6", json!("open_failure")),
        ("r7", json!("open_failure")),
        ("r8", json!("open_incident")),
        ("r9", json!("hotfix_ref")),
        ("r10", json!("hotfix_ref")),
        ("r11", Value::Null),
    ]
    .into_iter()
    .map(|(run, reason)| (run.to_owned(), reason))
    .collect();
    assert_eq!(reasons, expected);
    // The series: on 04-03, r6 and r7 of r5 r6 r7; on 04-06, nothing to count.
    let series = body["series"].as_array().unwrap();
    assert_eq!(series.len(), 7);
    assert_eq!(series[2]["rework_rate"]["rework"], 2, "{}", series[2]);
    assert_eq!(series[2]["rework_rate"]["samples"], 3, "{}", series[2]);
    assert_eq!(
        series[5]["rework_rate"]["value"],
        Value::Null,
        "{}",
        series[5]
    );
    // A deployment says what it says of itself; the staging one too, though not counted.
    let deployments = app.deployments().await;
    let signal = |run: &str| -> Value {
        deployments
            .iter()
            .find(|d| d["run_url"].as_str().unwrap().ends_with(&format!("/{run}")))
            .unwrap()["rework"]
            .clone()
    };
    assert_eq!(signal("r2"), json!("marked"));
    assert_eq!(signal("s1"), json!("hotfix_ref"));
    assert_eq!(
        signal("r8"),
        Value::Null,
        "an open incident is the report's finding"
    );
}

/// A mark is never undone by a later event of the deployment, and a retried marked event is
/// recorded once.
async fn a_rework_mark_sticks_and_a_retry_is_one_event(app: &TestApp) {
    let event = |event: &str, rework: Option<bool>| {
        let mut body = json!({
            "event": event, "project_slug": "my-project", "application": "api",
            "environment": "production", "status": "success",
            "url": "https://ci.example/runs/m1", "finished_at": "2025-04-02T10:00:00Z",
        });
        if let Some(rework) = rework {
            body["rework"] = json!(rework);
        }
        body
    };
    let first = app
        .clienwork(&app.admin_key, event("deploy.started", Some(true)))
        .await;
    let (status, again) = app
        .post(
            "/api/webhooks/ci",
            &app.admin_key,
            event("deploy.started", Some(true)),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["deployment_id"], json!(first));
    let second = app
        .clienwork(&app.admin_key, event("deploy.completed", Some(false)))
        .await;
    assert_eq!(first, second);
    let (status, deployment) = app
        .get(&format!("/api/v1/deployments/{first}"), &app.admin_key)
        .await;
    assert_eq!(status, 200, "{deployment}");
    assert_eq!(deployment["rework"], "marked", "{deployment}");
    assert_eq!(deployment["status"], "success", "{deployment}");
    // Not a boolean: refused, naming the field.
    let (status, refused) = app
        .post("/api/webhooks/ci", &app.admin_key, {
            let mut body = event("deploy.completed", None);
            body["rework"] = json!("yes");
            body
        })
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("rework"),
        "{refused}"
    );
}

/// Hotfix patterns: admin only, checked, `null` restores the defaults.
async fn hotfix_patterns_are_checked_and_reset(app: &TestApp) {
    let (status, listed) = app.get("/api/v1/projects", &app.admin_key).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["items"][0]["hotfix_patterns"],
        json!(["hotfix/*", "hotfix-*", "revert-*"])
    );
    let path = "/api/v1/projects/my-project";
    for (body, fix) in [
        (json!({"hotfix_patterns": [""]}), "1 to 100"),
        (json!({"hotfix_patterns": ["x".repeat(101)]}), "1 to 100"),
        (json!({"hotfix_patterns": vec!["p"; 21]}), "at most 20"),
        (json!({"hotfix_patterns": ["a\u{7}b"]}), "hotfix_patterns"),
        (json!({"hotfix_patterns": "hotfix/*"}), "hotfix_patterns"),
        (json!({"hotfix": ["x"]}), "hotfix"),
        (json!([]), "JSON object"),
    ] {
        let (status, answer) = app.patch(path, &app.admin_key, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let text = answer.to_string();
        assert!(text.contains(fix), "{body}: {answer}");
    }
    let ingest = app.key("ingest", None).await;
    let (status, _) = app
        .patch(path, &ingest, json!({"hotfix_patterns": ["x/*"]}))
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .patch("/api/v1/projects/nowhere", &app.admin_key, json!({}))
        .await;
    assert_eq!(status, 404);
    let (status, set) = app
        .patch(
            path,
            &app.admin_key,
            json!({"hotfix_patterns": [" fix/* ", "fix/*"]}),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["hotfix_patterns"], json!(["fix/*"]), "trimmed, once");
    let (status, unchanged) = app.patch(path, &app.admin_key, json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(unchanged["hotfix_patterns"], json!(["fix/*"]));
    let (status, none) = app
        .patch(path, &app.admin_key, json!({"hotfix_patterns": []}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        none["hotfix_patterns"],
        json!([]),
        "no hotfix patterns at all"
    );
    let (status, reset) = app
        .patch(path, &app.admin_key, json!({"hotfix_patterns": null}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        reset["hotfix_patterns"],
        json!(["hotfix/*", "hotfix-*", "revert-*"])
    );
}

/// A week that does not start at midnight touches eight UTC days: deploying on each of them is
/// at most seven deploy days in that week.
async fn deploy_days_per_week_never_exceed_seven(app: &TestApp) {
    for n in 0..8 {
        let hour = if n == 0 { 13 } else { 11 };
        let at = format!("2025-05-{:02}T{hour}:00:00Z", 1 + n);
        api_deployed(app, &format!("w{n}"), "success", &at, json!({})).await;
    }
    let body = metrics(
        app,
        "project=my-project&from=2025-05-01T12:00:00Z&to=2025-05-08T12:00:00Z",
    )
    .await;
    let f = &body["deployment_frequency"];
    assert_eq!(f["samples"], 8, "{f}");
    assert_eq!(f["median_deploy_days_per_week"], 7.0, "{f}");
}

/// A commit deployed to staging and only later to production: the production deployment is
/// no sighting of the commit before staging's finish, so staging's deployment has no commit
/// time (not a commit "after the deployment", which the docs keep for clock skew).
async fn a_later_deployment_of_the_same_commit_does_not_date_it(app: &TestApp) {
    for (run, environment, at) in [
        ("l1", "staging", "2025-03-04T10:00:00Z"),
        ("l2", "production", "2025-03-05T10:00:00Z"),
    ] {
        let body = json!({
            "event": "deploy.completed", "project_slug": "my-project", "status": "success",
            "environment": environment, "commit_sha": "c3c3c3c3", "finished_at": at,
            "url": format!("https://ci.example/runs/{run}"),
        });
        let (status, answer) = app.post("/api/webhooks/ci", &app.admin_key, body).await;
        assert_eq!(status, 200, "{answer}");
    }
    let staging = metrics(
        app,
        "environment=staging&from=2025-03-01T00:00:00Z&to=2025-03-08T00:00:00Z",
    )
    .await;
    let l = &staging["lead_time"];
    assert_eq!(l["exclusions"]["commit_after_deployment"], 0, "{l}");
    assert_eq!(l["exclusions"]["no_commit_time"], 1, "{l}");
    // Production's deployment is dated by staging's, a day earlier.
    let production = metrics(app, "from=2025-03-01T00:00:00Z&to=2025-03-08T00:00:00Z").await;
    assert_eq!(
        production["lead_time"]["median_seconds"], 86400.0,
        "{production}"
    );
}

/// `Accept: text/csv` answers the same figures as the JSON: one row per bucket of the series, or
/// the window's one row without `interval`, each column equal to its JSON field.
async fn the_dora_figures_export_as_csv(app: &TestApp) {
    send_history(app).await;
    let window = "project=my-project&from=2025-03-01T00:00:00Z&to=2025-03-15T00:00:00Z";
    for (query, json_rows) in [
        (format!("{window}&interval=week"), None),
        (window.to_owned(), Some(())),
    ] {
        let body = metrics(app, &query).await;
        let reports: Vec<Value> = match json_rows {
            None => body["series"].as_array().unwrap().clone(),
            Some(()) => vec![body.clone()],
        };
        let (status, media, rows) =
            crate::export::csv(app, &format!("/api/v1/metrics/dora?{query}")).await;
        assert_eq!(status, 200);
        assert!(media.starts_with("text/csv"), "{media}");
        assert_eq!(rows.len(), reports.len() + 1, "{query}: {rows:?}");
        let header = &rows[0];
        let cell = |row: &[String], name: &str| {
            row[header.iter().position(|h| h == name).unwrap()].clone()
        };
        let text = |value: &Value| match value {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for (row, report) in rows[1..].iter().zip(&reports) {
            for (column, field) in [
                ("from", &report["window"]["from"]),
                ("to", &report["window"]["to"]),
                (
                    "deployment_frequency_band",
                    &report["deployment_frequency"]["band"],
                ),
                ("lead_time_samples", &report["lead_time"]["samples"]),
                ("lead_time_band", &report["lead_time"]["band"]),
                ("failed", &report["change_failure_rate"]["failed"]),
                ("succeeded", &report["change_failure_rate"]["succeeded"]),
                ("recovery_samples", &report["recovery_time"]["samples"]),
                ("rework", &report["rework_rate"]["rework"]),
            ] {
                assert_eq!(cell(row, column), text(field), "{query}: {column}");
            }
            for (column, field) in [
                (
                    "deployments_per_day",
                    &report["deployment_frequency"]["per_day"],
                ),
                (
                    "lead_time_median_seconds",
                    &report["lead_time"]["median_seconds"],
                ),
                (
                    "change_failure_rate",
                    &report["change_failure_rate"]["value"],
                ),
                (
                    "recovery_median_seconds",
                    &report["recovery_time"]["median_seconds"],
                ),
            ] {
                let csv_value = cell(row, column);
                match field.as_f64() {
                    Some(expected) => {
                        let got: f64 = csv_value.parse().unwrap();
                        assert!(
                            (got - expected).abs() < 1e-9,
                            "{query}: {column} {got} {expected}"
                        );
                    }
                    None => assert_eq!(csv_value, "", "{query}: {column}"),
                }
            }
        }
    }
}

/// The five figures of a DORA answer (or a breakdown row), without its scope.
fn figures(body: &Value) -> Value {
    json!({
        "deployment_frequency": body["deployment_frequency"],
        "lead_time": body["lead_time"],
        "change_failure_rate": body["change_failure_rate"],
        "recovery_time": body["recovery_time"],
        "rework_rate": body["rework_rate"],
    })
}

async fn the_breakdown_agrees_with_asking_for_each_application_and_team(app: &TestApp) {
    // production-us belongs to the team ops (created through Envtracker's signed endpoint
    // before the history deploys to it).
    let (status, team) = app
        .post(
            "/api/v1/teams",
            &app.admin_key,
            json!({"code": "ops", "name": "Ops"}),
        )
        .await;
    assert_eq!(status, 201, "{team}");
    let (status, key) = app
        .post(
            "/api/v1/workspaces/acme/signing-keys",
            shiplog_blackbox::MASTER_KEY,
            json!({"name": "envtracker", "role": "admin"}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let body = json!({"name": "production-us", "code": "production-us", "teamCode": "ops",
                      "type": "PRODUCTION"})
    .to_string();
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let signature = shiplog_signature::envtracker::sign(
        key["secret"].as_str().unwrap().as_bytes(),
        &at,
        body.as_bytes(),
    );
    let (status, _, answer) = app
        .put_raw(
            "/webhook/create-environment",
            &[
                ("X-Webhook-Key", key["key_id"].as_str().unwrap()),
                ("X-Webhook-Timestamp", &at),
                ("X-Webhook-Signature", &signature),
                ("Content-Type", "application/json"),
            ],
            body,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    send_history(app).await;
    // An incident of api in production and one of the whole project: each application and
    // team counts the incidents about it.
    for incident in [
        json!({"external_id": "i1", "title": "api slow", "application": "api",
               "environment": "production", "opened_at": "2025-03-01T12:00:00Z",
               "resolved_at": "2025-03-01T13:30:00Z"}),
        json!({"external_id": "i5", "title": "errors everywhere",
               "opened_at": "2025-03-09T12:00:00Z", "resolved_at": "2025-03-09T12:30:00Z"}),
    ] {
        let mut body = incident;
        body["project"] = json!("my-project");
        let (status, answer) = app.post("/api/v1/incidents", &app.admin_key, body).await;
        assert_eq!(status, 201, "{answer}");
    }
    let window = "project=my-project&from=2025-03-01T00:00:00Z&to=2025-03-15T00:00:00Z";
    let whole = metrics(app, &format!("{window}&breakdown=true")).await;
    let breakdown = &whole["breakdown"];
    let applications: Vec<&str> = breakdown["by_application"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["code"].as_str().unwrap())
        .collect();
    assert_eq!(applications, ["api", "web"], "{breakdown}");
    for row in breakdown["by_application"].as_array().unwrap() {
        let code = row["code"].as_str().unwrap();
        let alone = metrics(app, &format!("{window}&application={code}")).await;
        assert_eq!(figures(row), figures(&alone), "{code}");
    }
    // Teams: ops owns production-us; production has no team, so it comes last as null.
    let teams = breakdown["by_team"].as_array().unwrap();
    assert_eq!(teams.len(), 2, "{breakdown}");
    assert_eq!(teams[0]["code"], "ops");
    assert_eq!(teams[1]["code"], Value::Null);
    for (row, environment) in [(&teams[0], "production-us"), (&teams[1], "production")] {
        let alone = metrics(app, &format!("{window}&environment={environment}")).await;
        assert_eq!(figures(row), figures(&alone), "{environment}");
    }
    // Both applications deployed in the window, so the rows are not the whole: the figures
    // differ from the project's.
    assert_ne!(
        figures(&breakdown["by_application"][0]),
        figures(&whole),
        "{whole}"
    );
    // Without a project, applications are not broken down (their codes are per project).
    let workspace = metrics(
        app,
        "from=2025-03-01T00:00:00Z&to=2025-03-15T00:00:00Z&breakdown=true",
    )
    .await;
    assert_eq!(workspace["breakdown"]["by_application"], json!([]));
    assert_eq!(
        workspace["breakdown"]["by_team"].as_array().unwrap().len(),
        2
    );
    // Not asked for: not answered.
    assert_eq!(metrics(app, window).await.get("breakdown"), None);
    // web deploys to production-us only, so in web's figures the team ops holds every
    // deployment; an incident of web in production (no team's) still keeps ops's row from
    // being the whole.
    let (status, answer) = app
        .post(
            "/api/v1/incidents",
            &app.admin_key,
            json!({"project": "my-project", "external_id": "i6", "title": "web down in production",
                   "application": "web", "environment": "production",
                   "opened_at": "2025-03-05T00:00:00Z", "resolved_at": "2025-03-05T05:00:00Z"}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let web = metrics(app, &format!("{window}&application=web&breakdown=true")).await;
    let teams = web["breakdown"]["by_team"].as_array().unwrap();
    assert_eq!(teams.len(), 1, "{web}");
    assert_eq!(teams[0]["code"], "ops");
    let alone = metrics(
        app,
        &format!("{window}&application=web&environment=production-us"),
    )
    .await;
    assert_eq!(figures(&teams[0]), figures(&alone), "{web}");
    assert_ne!(figures(&teams[0]), figures(&web), "{web}");
    // web's one application row holds all of web's figures.
    assert_eq!(
        figures(&web["breakdown"]["by_application"][0]),
        figures(&web),
        "{web}"
    );
}

on_both_backends!(
    the_breakdown_agrees_with_asking_for_each_application_and_team,
    the_dora_figures_export_as_csv,
    a_later_deployment_of_the_same_commit_does_not_date_it,
    deploy_days_per_week_never_exceed_seven,
    rework_rate_counts_each_reason_worked_out_by_hand,
    a_rework_mark_sticks_and_a_retry_is_one_event,
    hotfix_patterns_are_checked_and_reset,
    incidents_change_the_failure_rate_and_recovery_as_worked_out_by_hand,
    the_hand_checked_history_gives_the_documented_numbers,
    the_explanation_names_each_deployment_behind_the_numbers,
    a_deployment_counts_the_moment_it_is_acknowledged,
    a_deploys_own_events_are_no_commit_time,
    bad_parameters_and_roles_are_refused,
);
