//! Incidents over HTTP, on SQLite and PostgreSQL: the native API (`POST/GET/PATCH
//! /api/v1/incidents`), PagerDuty v3 and Opsgenie webhooks at an integration, and what each does
//! to the DORA metrics at once.

use serde_json::{Value, json};
use shiplog_blackbox::{TestApp, on_both_backends};

/// A successful production deployment of `api`, finished at `at`.
async fn deployed(app: &TestApp, run: &str, at: &str) -> String {
    app.clienwork(
        &app.admin_key,
        json!({"event": "deploy.completed", "project_slug": "my-project", "status": "success",
               "application": "api", "environment": "production", "finished_at": at,
               "url": format!("https://ci.example/runs/{run}")}),
    )
    .await
}

async fn dora(app: &TestApp) -> Value {
    let (status, body) = app
        .get(
            "/api/v1/metrics/dora?project=my-project&from=2025-03-01T00:00:00Z&to=2025-03-08T00:00:00Z&explain=true",
            &app.admin_key,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn incidents(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app
        .get(&format!("/api/v1/incidents{query}"), &app.admin_key)
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

async fn the_api_opens_updates_resolves_and_reopens_one_incident(app: &TestApp) {
    let deployment = deployed(app, "r1", "2025-03-02T10:00:00Z").await;
    let ingest = app.key("ingest", None).await;
    let body = json!({"project": "my-project", "application": "api", "environment": "production",
                      "title": "Checkout returns 500", "severity": "P1", "external_id": "INC-7",
                      "opened_at": "2025-03-02T11:00:00Z",
                      "url": "https://status.example/incidents/7"});
    let (status, created) = app.post("/api/v1/incidents", &ingest, body.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "open");
    assert_eq!(created["source"], "api");
    assert_eq!(created["environment"], "production");
    let id = created["id"].as_str().unwrap().to_owned();
    // The same request again (a retry) is the same incident.
    let (status, again) = app.post("/api/v1/incidents", &ingest, body).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], json!(id));
    assert_eq!(incidents(app, "").await.len(), 1);
    // Open: it fails the last success before it, and has no recovery yet.
    let metrics = dora(app).await;
    assert_eq!(
        metrics["change_failure_rate"]["failed_by_incident"], 1,
        "{metrics}"
    );
    assert_eq!(
        metrics["recovery_time"]["exclusions"]["unresolved_incidents"],
        1
    );
    let linked = &metrics["explanation"]["incidents"][0];
    assert_eq!(linked["title"], "Checkout returns 500");
    assert_eq!(linked["deployments"][0]["id"], json!(deployment));

    // Resolved through PATCH: 90 minutes of recovery, at once.
    let (status, resolved) = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            &ingest,
            json!({"resolved_at": "2025-03-02T12:30:00Z"}),
        )
        .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["recovery_seconds"], 5400.0);
    let metrics = dora(app).await;
    assert_eq!(metrics["recovery_time"]["from_incidents"], 1, "{metrics}");
    assert_eq!(metrics["recovery_time"]["median_seconds"], 5400.0);
    // Reopened, renamed, blamed on the deployment explicitly, severity cleared.
    let (status, reopened) = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            &ingest,
            json!({"status": "open", "title": "Checkout still failing", "severity": null,
                   "blamed": {"deployment": deployment}}),
        )
        .await;
    assert_eq!(status, 200, "{reopened}");
    assert_eq!(reopened["status"], "open");
    assert_eq!(reopened["resolved_at"], Value::Null);
    assert_eq!(reopened["severity"], Value::Null);
    assert_eq!(reopened["blamed"]["deployment"], json!(deployment));
    let metrics = dora(app).await;
    assert_eq!(
        metrics["explanation"]["incidents"][0]["deployments"][0]["link"],
        "named"
    );
    // The same external id from another project's key is that project's own incident: it
    // neither sees nor changes this one.
    app.project(&app.admin_key, "billing").await;
    let billing = app.key("ingest", Some("billing")).await;
    let (status, theirs) = app
        .post(
            "/api/v1/incidents",
            &billing,
            json!({"title": "Invoices late", "external_id": "INC-7",
                   "opened_at": "2025-03-02T11:00:00Z", "resolved_at": "2025-03-02T11:10:00Z"}),
        )
        .await;
    assert_eq!(status, 201, "{theirs}");
    assert_ne!(theirs["id"], json!(id));
    assert_eq!(theirs["project"], "billing");
    // Read back, one and filtered.
    let (status, one) = app
        .get(&format!("/api/v1/incidents/{id}"), &app.admin_key)
        .await;
    assert_eq!(status, 200);
    assert_eq!(one["title"], "Checkout still failing");
    assert_eq!(
        incidents(app, "?project=my-project&status=open")
            .await
            .len(),
        1
    );
    assert_eq!(
        incidents(app, "?project=my-project&status=resolved")
            .await
            .len(),
        0
    );
    assert_eq!(
        incidents(app, "?status=resolved").await.len(),
        1,
        "billing's"
    );
}

async fn bad_incidents_are_named_and_nothing_is_written(app: &TestApp) {
    let cases = [
        (
            json!({"project": "my-project", "external_id": "x"}),
            "title",
        ),
        (
            json!({"project": "my-project", "title": "t"}),
            "external_id",
        ),
        (
            json!({"project": "my-project", "title": "t", "external_id": "x", "environment": "mars"}),
            "environment",
        ),
        (
            json!({"project": "my-project", "title": "t", "external_id": "x", "application": "nope"}),
            "application",
        ),
        (
            json!({"project": "my-project", "title": "t", "external_id": "x",
                   "opened_at": "2025-03-02T11:00:00Z", "resolved_at": "2025-03-02T10:00:00Z"}),
            "resolved_at",
        ),
        (
            json!({"project": "my-project", "title": "t", "external_id": "x",
                   "blamed": {"deployment": "01900000-0000-7000-8000-000000000007"}}),
            "blamed.deployment",
        ),
        (
            json!({"project": "my-project", "title": "t", "external_id": "x",
                   "blamed": {"commit": "not-hex"}}),
            "blamed.commit",
        ),
        (
            json!({"project": "my-project", "title": "t", "external_id": "x", "colour": "red"}),
            "colour",
        ),
        (
            json!({"project": "my-project", "title": "t", "external_id": "x", "url": "ftp://x"}),
            "url",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = app.post("/api/v1/incidents", &app.admin_key, body).await;
        assert_eq!(status, 400, "{field}: {answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(field),
            "{field}: {answer}"
        );
    }
    assert!(incidents(app, "").await.is_empty());
    // Roles and workspaces: a read key cannot report; another workspace sees nothing.
    let reader = app.key("read", None).await;
    let (status, _) = app
        .post(
            "/api/v1/incidents",
            &reader,
            json!({"project": "my-project", "title": "t", "external_id": "x"}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, created) = app
        .post(
            "/api/v1/incidents",
            &app.admin_key,
            json!({"project": "my-project", "title": "t", "external_id": "x"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let stranger = app.other_workspace("elsewhere").await;
    let (status, _) = app.get(&format!("/api/v1/incidents/{id}"), &stranger).await;
    assert_eq!(status, 404);
    let (status, _) = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            &stranger,
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, answer) = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            &app.admin_key,
            json!({"status": "closed"}),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    // An incident integration needs a project.
    let (status, answer) = app
        .post(
            "/api/v1/integrations",
            &app.admin_key,
            json!({"provider": "opsgenie", "name": "Opsgenie"}),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("project"),
        "{answer}"
    );
}

async fn concurrent_reports_of_one_incident_make_one_record(app: &TestApp) {
    let body = |n: usize| {
        json!({"project": "my-project", "title": format!("report {n}"), "external_id": "PD-1",
               "opened_at": "2025-03-02T11:00:00Z"})
    };
    let sends = (0..8).map(|n| app.post("/api/v1/incidents", &app.admin_key, body(n)));
    let answers = futures_util::future::join_all(sends).await;
    let created = answers.iter().filter(|(status, _)| *status == 201).count();
    assert!(
        answers
            .iter()
            .all(|(status, _)| *status == 201 || *status == 200),
        "{answers:?}"
    );
    assert_eq!(created, 1, "{answers:?}");
    assert_eq!(incidents(app, "").await.len(), 1);
}

/// A PagerDuty v3 webhook body, as PagerDuty documents its incident events.
fn pagerduty_event(kind: &str, occurred: &str) -> String {
    json!({"event": {
        "id": format!("01DEV{kind}{occurred}"),
        "event_type": kind,
        "resource_type": "incident",
        "occurred_at": occurred,
        "agent": {"id": "PLH1HKV", "summary": "Tenex Engineer", "type": "user_reference"},
        "client": null,
        "data": {
            "id": "PGR0VU2",
            "type": "incident",
            "self": "https://api.pagerduty.com/incidents/PGR0VU2",
            "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
            "number": 2,
            "status": if kind == "incident.resolved" { "resolved" } else { "triggered" },
            "incident_key": "d3640fbd41094207a1c11e58e46b1662",
            "created_at": "2025-03-02T11:00:00Z",
            "title": "A little bump in the road",
            "service": {"id": "PF9KMXH", "summary": "API Service", "type": "service_reference"},
            "priority": {"id": "PSO75BM", "summary": "P1", "type": "priority_reference"},
            "urgency": "high"
        }
    }})
    .to_string()
}

async fn post_pagerduty(app: &TestApp, id: &str, body: &str, signature: &str) -> (u16, Value) {
    app.post_raw(
        &format!("/api/v1/integrations/{id}/webhook"),
        &[("X-PagerDuty-Signature", signature)],
        body.to_owned(),
    )
    .await
}

async fn a_pagerduty_incident_changes_the_metrics_at_once(app: &TestApp) {
    let deployment = deployed(app, "r1", "2025-03-02T10:00:00Z").await;
    let (id, secret) = app
        .integration(
            json!({"provider": "pagerduty", "name": "PagerDuty", "project": "my-project",
                            "settings": {"environment": "production",
                                         "services": {"PF9KMXH": "api"}}}),
        )
        .await;
    // PagerDuty chooses its own signing secret: the integration takes it in a rotation.
    let rotate = format!("/api/v1/integrations/{id}/rotate-secret");
    let (status, answer) = app
        .post(&rotate, &app.admin_key, json!({"secret": "short"}))
        .await;
    assert_eq!(status, 400, "{answer}");
    let chosen = "pd-chosen-7Xb2Qm9LwZ4rT8vK1nH6yE3sA5dF0gJ";
    let (status, answer) = app
        .post(&rotate, &app.admin_key, json!({"secret": chosen}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["secret"], chosen);
    let sign = |body: &str| shiplog_signature::pagerduty::sign(chosen.as_bytes(), body.as_bytes());
    let before = dora(app).await;
    assert_eq!(before["change_failure_rate"]["value"], 0.0, "{before}");

    let triggered = pagerduty_event("incident.triggered", "2025-03-02T11:00:00Z");
    // A bad signature is refused and logged; nothing recorded.
    let (status, answer) = post_pagerduty(app, &id, &triggered, "v1=00ff").await;
    assert_eq!(status, 401, "{answer}");
    assert!(incidents(app, "").await.is_empty());
    // Signed (with a second, stale signature beside it, as during a rotation): recorded.
    let rotating = format!("v1=deadbeef,{}", sign(&triggered));
    let (status, answer) = post_pagerduty(app, &id, &triggered, &rotating).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["verdict"], "accepted", "{answer}");
    // Delivered twice (signed with the secret before the rotation, still valid for a day), and
    // an acknowledgement: still one incident.
    let before_rotation =
        shiplog_signature::pagerduty::sign(secret.as_bytes(), triggered.as_bytes());
    let (status, _) = post_pagerduty(app, &id, &triggered, &before_rotation).await;
    assert_eq!(status, 200);
    let acknowledged = pagerduty_event("incident.acknowledged", "2025-03-02T11:05:00Z");
    let (status, _) = post_pagerduty(app, &id, &acknowledged, &sign(&acknowledged)).await;
    assert_eq!(status, 200);
    let listed = incidents(app, "").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["source"], "pagerduty");
    assert_eq!(listed[0]["application"], "api");
    assert_eq!(listed[0]["severity"], "P1");
    assert_eq!(listed[0]["external_id"], "PGR0VU2");
    // The change failure rate counts the deployment before it, at once.
    let open = dora(app).await;
    assert_eq!(open["change_failure_rate"]["value"], 1.0, "{open}");
    let named = &open["explanation"]["incidents"][0];
    assert_eq!(named["title"], "A little bump in the road");
    assert_eq!(named["deployments"][0]["id"], json!(deployment));

    // Resolved: the recovery time is the incident's 2 hours.
    let resolved = pagerduty_event("incident.resolved", "2025-03-02T13:00:00Z");
    let (status, answer) = post_pagerduty(app, &id, &resolved, &sign(&resolved)).await;
    assert_eq!(status, 200, "{answer}");
    let after = dora(app).await;
    assert_eq!(after["recovery_time"]["median_seconds"], 7200.0, "{after}");
    assert_eq!(after["recovery_time"]["from_incidents"], 1);
    // A late, older event does not reopen it.
    let (status, _) = post_pagerduty(app, &id, &acknowledged, &sign(&acknowledged)).await;
    assert_eq!(status, 200);
    assert_eq!(incidents(app, "?status=resolved").await.len(), 1);

    // Other events: ignored or acknowledged, with why; malformed: 400. All logged.
    let annotated = pagerduty_event("incident.annotated", "2025-03-02T13:10:00Z");
    let (status, answer) = post_pagerduty(app, &id, &annotated, &sign(&annotated)).await;
    assert_eq!(
        (status, answer["verdict"].as_str()),
        (200, Some("ignored")),
        "{answer}"
    );
    let broken = "{\"event\": {\"event_type\": \"incident.triggered\"}}";
    let (status, answer) = post_pagerduty(app, &id, broken, &sign(broken)).await;
    assert_eq!(status, 400, "{answer}");
    let (status, log) = app
        .get(
            &format!("/api/v1/integrations/{id}/deliveries"),
            &app.admin_key,
        )
        .await;
    assert_eq!(status, 200);
    let verdicts: Vec<(&str, &str)> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["verdict"].as_str().unwrap(),
                d["event"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("rejected", ""),
            ("ignored", ""),
            ("accepted", "incident.acknowledged"),
            ("accepted", "incident.resolved"),
            ("accepted", "incident.acknowledged"),
            ("accepted", "incident.triggered"),
            ("accepted", "incident.triggered"),
            ("rejected", ""),
        ]
    );
    // PagerDuty names each delivery only in its body (`event.id`): the log keeps it.
    let accepted: Vec<&serde_json::Value> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["verdict"] == "accepted")
        .collect();
    assert!(!accepted.is_empty());
    for delivery in accepted {
        let id = delivery["delivery"].as_str().unwrap_or_default();
        assert!(id.starts_with("01DEVincident."), "{delivery}");
    }
}

async fn opsgenie_alerts_open_and_close_incidents(app: &TestApp) {
    deployed(app, "r1", "2025-03-03T09:00:00Z").await;
    let (id, secret) = app
        .integration(
            json!({"provider": "opsgenie", "name": "Opsgenie", "project": "my-project",
                            "settings": {"application": "api", "environment": "production"}}),
        )
        .await;
    let alert = |action: &str| {
        json!({"action": action,
               "alert": {"alertId": "44f717bf-44bd-11c9-44c7-2d0cf1d07b23", "message": "Disk full",
                         "tags": [], "tinyId": "31", "entity": "", "alias": "disk-full",
                         "createdAt": 1_741_000_000_000_i64,
                         "updatedAt": 1_741_003_600_000_000_000_i64,
                         "priority": "P2", "source": "monitor"},
               "source": {"name": "", "type": "web"},
               "integrationName": "Webhook", "integrationType": "Webhook"})
        .to_string()
    };
    let path = format!("/api/v1/integrations/{id}/webhook");
    let (status, _) = app.post_raw(&path, &[], alert("Create")).await;
    assert_eq!(status, 401, "no token");
    let (status, answer) = app
        .post_raw(&path, &[("X-Shiplog-Token", &secret)], alert("Create"))
        .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = app
        .post_raw(&path, &[("X-Shiplog-Token", &secret)], alert("AddNote"))
        .await;
    assert_eq!((status, answer["verdict"].as_str()), (200, Some("ignored")));
    let (status, answer) = app
        .post_raw(&format!("{path}?token={secret}"), &[], alert("Close"))
        .await;
    assert_eq!(status, 200, "{answer}");
    let listed = incidents(app, "").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    // Opened at createdAt (ms), closed at updatedAt (ns): one hour.
    assert_eq!(listed[0]["opened_at"], "2025-03-03T11:06:40Z");
    assert_eq!(listed[0]["recovery_seconds"], 3600.0);
    assert_eq!(listed[0]["source"], "opsgenie");
}

/// Opsgenie's own delivery (`tests/fixtures/opsgenie/create.json`, recorded by Puppet's Relay
/// integration, Apache-2.0): the alert opens an incident at its `createdAt`, titled by its
/// message, with its priority as the severity.
async fn a_recorded_opsgenie_alert_keeps_its_priority(app: &TestApp) {
    let (id, secret) = app
        .integration(
            json!({"provider": "opsgenie", "name": "Opsgenie", "project": "my-project",
                            "settings": {"application": "api", "environment": "production"}}),
        )
        .await;
    let path = format!("/api/v1/integrations/{id}/webhook");
    let recorded = include_str!("fixtures/opsgenie/create.json").to_owned();
    let (status, answer) = app
        .post_raw(&path, &[("X-Shiplog-Token", &secret)], recorded)
        .await;
    assert_eq!(status, 200, "{answer}");
    let listed = incidents(app, "").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["severity"], "P3");
    assert_eq!(listed[0]["title"], "asdf");
    assert_eq!(listed[0]["status"], "open");
    assert_eq!(listed[0]["opened_at"], "2020-06-30T00:06:04.295Z");
    assert_eq!(
        listed[0]["external_id"],
        "7ec331d7-f5f3-4f78-a49c-2ad886df69fe-1593475564295"
    );
}

/// The webhook URL is public: a flood of forged deliveries is refused, and only a few a minute
/// are logged, so the real deliveries stay in the integration's last 100.
async fn a_flood_of_forged_deliveries_is_refused_and_logged_sparingly(app: &TestApp) {
    let (id, secret) = app
        .integration(json!({"provider": "pagerduty", "name": "PagerDuty", "project": "my-project"}))
        .await;
    let body = pagerduty_event("incident.triggered", "2025-03-02T11:00:00Z");
    let signed = shiplog_signature::pagerduty::sign(secret.as_bytes(), body.as_bytes());
    let (status, _) = post_pagerduty(app, &id, &body, &signed).await;
    assert_eq!(status, 200);
    for _ in 0..25 {
        let (status, _) = post_pagerduty(app, &id, &body, "v1=00ff").await;
        assert_eq!(status, 401);
    }
    let (status, log) = app
        .get(
            &format!("/api/v1/integrations/{id}/deliveries"),
            &app.admin_key,
        )
        .await;
    assert_eq!(status, 200);
    let log = log["items"].as_array().unwrap();
    let rejected = log.iter().filter(|d| d["verdict"] == "rejected").count();
    // 10 a minute (20 if the flood straddled a minute), never all 25.
    assert!((10..=20).contains(&rejected), "{rejected} logged");
    assert!(log.iter().any(|d| d["verdict"] == "accepted"), "{log:?}");
}

/// Times more than a day ahead and one-line fields with control characters are refused with
/// a 400 naming the field, on POST and PATCH; nothing is stored.
async fn far_future_times_and_control_characters_are_refused(app: &TestApp) {
    let ingest = app.key("ingest", None).await;
    let base = json!({"project": "my-project", "title": "Checkout returns 500",
                      "external_id": "INC-9", "opened_at": "2025-03-02T11:00:00Z"});
    let mut cases = Vec::new();
    for (field, value) in [
        ("opened_at", json!("9999-01-01T00:00:00Z")),
        ("resolved_at", json!("9999-01-01T00:00:00Z")),
        ("title", json!("Checkout \u{1b}[31mdown")),
        ("severity", json!("P1\u{202e}")),
        ("external_id", json!("INC\r\n9")),
    ] {
        let mut body = base.clone();
        body[field] = value;
        cases.push((field, body));
    }
    for (field, body) in cases {
        let (status, answer) = app.post("/api/v1/incidents", &ingest, body).await;
        assert_eq!(status, 400, "{field}: {answer}");
        assert!(answer.to_string().contains(field), "{field}: {answer}");
    }
    assert!(incidents(app, "").await.is_empty());
    let (status, created) = app.post("/api/v1/incidents", &ingest, base).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    for (field, body) in [
        (
            "resolved_at",
            json!({"resolved_at": "9999-01-01T00:00:00Z"}),
        ),
        ("title", json!({"title": "a\u{7}b"})),
    ] {
        let (status, answer) = app
            .patch(&format!("/api/v1/incidents/{id}"), &ingest, body)
            .await;
        assert_eq!(status, 400, "{field}: {answer}");
        assert!(answer.to_string().contains(field), "{field}: {answer}");
    }
    assert_eq!(incidents(app, "").await[0]["status"], "open");
}

/// An incident that names no environment is about every production environment: it counts in
/// production's figures and never in a staging environment's (recovery, failure rate, rework).
async fn an_incident_naming_no_environment_counts_in_production_only(app: &TestApp) {
    for (run, environment, at) in [
        ("p1", "production", "2025-03-02T10:00:00Z"),
        ("s1", "staging", "2025-03-02T10:00:00Z"),
        ("p2", "production", "2025-03-02T12:00:00Z"),
        ("s2", "staging", "2025-03-02T12:00:00Z"),
    ] {
        app.clienwork(
            &app.admin_key,
            json!({"event": "deploy.completed", "project_slug": "my-project", "status": "success",
                   "application": "api", "environment": environment, "finished_at": at,
                   "url": format!("https://ci.example/runs/{run}")}),
        )
        .await;
    }
    let (status, created) = app
        .post(
            "/api/v1/incidents",
            &app.admin_key,
            json!({"project": "my-project", "title": "Checkout down", "external_id": "INC-1",
                   "opened_at": "2025-03-02T11:00:00Z", "resolved_at": "2025-03-02T13:00:00Z"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let figures = |environment: &'static str| async move {
        let (status, body) = app
            .get(
                &format!(
                    "/api/v1/metrics/dora?project=my-project&environment={environment}\
                     &from=2025-03-01T00:00:00Z&to=2025-03-08T00:00:00Z"
                ),
                &app.admin_key,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    };
    let production = figures("production").await;
    assert_eq!(
        production["change_failure_rate"]["failed_by_incident"], 1,
        "{production}"
    );
    assert_eq!(
        production["recovery_time"]["from_incidents"], 1,
        "{production}"
    );
    assert_eq!(
        production["rework_rate"]["reasons"]["open_incident"], 1,
        "{production}"
    );
    let staging = figures("staging").await;
    assert_eq!(
        staging["change_failure_rate"]["failed_by_incident"], 0,
        "{staging}"
    );
    assert_eq!(staging["change_failure_rate"]["incidents"], 0, "{staging}");
    assert_eq!(staging["recovery_time"]["from_incidents"], 0, "{staging}");
    assert_eq!(
        staging["rework_rate"]["reasons"]["open_incident"], 0,
        "{staging}"
    );
}

/// An incident still open after a week is named by the DORA answer and page, oldest first,
/// whatever window is asked for; a resolved or recent one is not.
async fn incidents_open_for_more_than_a_week_are_flagged(app: &TestApp) {
    let now = time::OffsetDateTime::now_utc();
    let ago = |days: i64| {
        (now - time::Duration::days(days))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    deployed(app, "r1", &ago(1)).await;
    for (id, opened, resolved) in [
        ("INC-OLD", ago(400), None),
        ("INC-WEEK", ago(10), None),
        ("INC-NEW", ago(2), None),
        ("INC-DONE", ago(30), Some(ago(29))),
    ] {
        let mut body = json!({"project": "my-project", "title": format!("{id} title"),
                              "external_id": id, "opened_at": opened});
        if let Some(resolved) = resolved {
            body["resolved_at"] = json!(resolved);
        }
        let (status, answer) = app.post("/api/v1/incidents", &app.admin_key, body).await;
        assert_eq!(status, 201, "{answer}");
    }
    let (status, body) = app
        .get("/api/v1/metrics/dora?project=my-project", &app.admin_key)
        .await;
    assert_eq!(status, 200, "{body}");
    let flagged: Vec<&str> = body["incidents_open_too_long"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(flagged, ["INC-OLD title", "INC-WEEK title"], "{body}");
    assert!(
        body["incidents_open_too_long"][0]["open_days"]
            .as_f64()
            .unwrap()
            > 399.0
    );
    let (_, _, cookie) = app.sign_in(&app.admin_key).await;
    let (status, _, page) = app
        .page("/dora?project=my-project", cookie.as_deref())
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("2 incidents have been open for more than a week"),
        "{page}"
    );
    assert!(
        page.contains("INC-OLD title") && !page.contains("INC-NEW title"),
        "{page}"
    );
}

on_both_backends!(
    incidents_open_for_more_than_a_week_are_flagged,
    an_incident_naming_no_environment_counts_in_production_only,
    far_future_times_and_control_characters_are_refused,
    a_flood_of_forged_deliveries_is_refused_and_logged_sparingly,
    the_api_opens_updates_resolves_and_reopens_one_incident,
    bad_incidents_are_named_and_nothing_is_written,
    concurrent_reports_of_one_incident_make_one_record,
    a_pagerduty_incident_changes_the_metrics_at_once,
    opsgenie_alerts_open_and_close_incidents,
    a_recorded_opsgenie_alert_keeps_its_priority,
);
