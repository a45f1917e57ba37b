use std::sync::{Arc, Mutex};

use shiplog_domain::dora::ReworkReason;
use shiplog_domain::ids::ProjectSlug;
use shiplog_domain::key::Role;
use shiplog_domain::lifecycle::Lifecycle;

use super::*;
use crate::model::Application;
use crate::ports::DeploymentStoreError;
use crate::testing::{TestPorts, admin, ids, ingester, now, project, reader, workspace};

fn at(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// Ports that accept every plan, keep it, and answer with a receipt.
fn capturing() -> (TestPorts, Arc<Mutex<Vec<IngestPlan>>>) {
    let mut ports = TestPorts::new();
    ports.with_project();
    ports.with_clock_and_ids();
    let plans = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&plans);
    ports
        .deployments
        .expect_ingest()
        .returning(move |plan: IngestPlan| {
            seen.lock().unwrap().push(plan.clone());
            Ok(IngestReceipt {
                event: plan.event.id,
                deployment: plan.deployment.as_ref().map(|d| d.new_id),
                status: plan.deployment.as_ref().map(|d| d.observation.status),
                duplicate: false,
                created: true,
                linked_references: plan
                    .deployment
                    .as_ref()
                    .map(|d| d.references.iter().map(|r| r.key.clone()).collect())
                    .unwrap_or_default(),
                references_not_linked: 0,
            })
        });
    (ports, plans)
}

/// The seed's Clienwork request body, as the adapter will translate it.
fn clienwork(event: &str, status: Option<&str>) -> IngestCommand {
    let mut command = IngestCommand::new(
        PipelineEvent::parse(event).unwrap(),
        Provider::parse("github-actions"),
        ApplicationRef::ProjectDefault,
    );
    command.project = Some(ProjectLookup::Slug(
        ProjectSlug::parse("my-project").unwrap(),
    ));
    command.environment = Some(EnvironmentRef {
        name: "production".into(),
        create_if_missing: true,
        kind: None,
    });
    command.status = status.map(str::to_owned);
    command.fields = DeploymentFields {
        git_ref: Some("refs/heads/main".into()),
        commit_sha: Some(CommitSha::parse("abc123def456").unwrap()),
        commit_message: Some("feat: add login feature #PR-123".into()),
        run_url: Some("https://github.com/org/repo/actions/runs/123456".into()),
        ..DeploymentFields::default()
    };
    command
}

/// The seed's Hivel request body.
fn hivel() -> IngestCommand {
    let mut command = IngestCommand::new(
        PipelineEvent::DEPLOY_COMPLETED,
        Provider::Custom,
        ApplicationRef::Repo(
            RepoIdentity::parse("https://github.com/hivelai/webhook-logger").unwrap(),
        ),
    );
    command.environment = Some(EnvironmentRef {
        name: "production".into(),
        create_if_missing: true,
        kind: None,
    });
    command.status = Some("success".into());
    command.correlation = Correlation::Explicit {
        key: IdempotencyKey::parse("deploy-20250922-1200").unwrap(),
        exclusive: true,
    };
    command.fields = DeploymentFields {
        external_id: Some("deploy-20250922-1200".into()),
        commit_sha: Some(CommitSha::parse("abc123def456789012345678901234567890abcd").unwrap()),
        branch: Some("main".into()),
        build_number: Some("12345".into()),
        image: Some("company/api-service:v1.2.3".into()),
        logs_url: Some("https://logs.example.com/deploy/20250922-1200".into()),
        ..DeploymentFields::default()
    };
    command.started_at = Some(at("2025-09-22T12:00:00Z"));
    command.finished_at = Some(at("2025-09-22T12:15:30Z"));
    command.pull_requests = vec![71, 71, 35, 23];
    command
}

#[tokio::test]
async fn a_message_naming_many_references_links_the_first_hundred_and_counts_the_rest() {
    let (ports, plans) = capturing();
    let mut command = clienwork("deploy.completed", Some("success"));
    let message: Vec<String> = (1..=9_000).map(|n| format!("#{n}")).collect();
    command.fields.commit_message = Some(format!("fix {}", message.join(" ")));
    let receipt = ports.app().ingest(&ingester(), command).await.unwrap();
    let plans = plans.lock().unwrap();
    let references = &plans[0].deployment.as_ref().unwrap().references;
    assert_eq!(references.len(), shiplog_domain::reference::MAX_REFERENCES);
    assert_eq!(references[0].key.as_str(), "#1");
    assert_eq!(receipt.references_not_linked, 9_000 - 100);
}

#[tokio::test]
async fn times_far_in_the_future_are_refused() {
    for field in ["started_at", "finished_at", "commit_timestamp"] {
        let (ports, plans) = capturing();
        let mut command = clienwork("deploy.completed", Some("success"));
        let far = Some(at("9999-12-31T23:59:59Z"));
        match field {
            "started_at" => command.started_at = far,
            "finished_at" => command.finished_at = far,
            _ => command.fields.commit_timestamp = far,
        }
        let err = ports.app().ingest(&ingester(), command).await.unwrap_err();
        assert!(
            matches!(err, AppError::InvalidField { field: f, .. } if f == field),
            "{field}: {err:?}"
        );
        assert!(plans.lock().unwrap().is_empty(), "nothing written");
    }
    // Within a day of the clock (skew) is accepted.
    let (ports, _) = capturing();
    let mut command = clienwork("deploy.completed", Some("success"));
    command.finished_at =
        Some(Timestamp::from_unix_micros(now().unix_micros() + 3_600_000_000).unwrap());
    assert!(ports.app().ingest(&ingester(), command).await.is_ok());
}

#[tokio::test]
async fn the_clienwork_seed_example_becomes_one_plan() {
    let (ports, plans) = capturing();
    let receipt = ports
        .app()
        .ingest(&ingester(), clienwork("deploy.completed", Some("success")))
        .await
        .unwrap();
    let plans = plans.lock().unwrap();
    let [plan] = plans.as_slice() else {
        panic!("one plan expected")
    };
    assert_eq!(plan.workspace, workspace());
    assert_eq!(plan.project, project().id);
    assert_eq!(
        plan.application.code.as_str(),
        "my-project",
        "default application named like the project"
    );
    assert!(plan.application.create_if_missing);
    let env = plan.environment.as_ref().unwrap();
    assert_eq!(env.code.as_str(), "production");
    assert_eq!(env.kind, EnvironmentKind::Production);
    assert!(env.create_if_missing);
    assert_eq!(plan.event.status.status, DeploymentStatus::Success);
    assert_eq!(
        plan.event.occurred_at,
        now(),
        "no timestamps sent: the arrival time"
    );
    let deployment = plan.deployment.as_ref().unwrap();
    assert_eq!(
        deployment.fields.branch.as_deref(),
        Some("main"),
        "branch derived from refs/heads/main"
    );
    assert_eq!(
        deployment.references,
        vec![Reference {
            key: ReferenceKey::parse("PR-123").unwrap(),
            closing: false
        }]
    );
    assert!(!deployment.exclusive);
    assert!(deployment.key.as_str().starts_with("run:"));
    assert_eq!(
        receipt.linked_references,
        vec![ReferenceKey::parse("PR-123").unwrap()]
    );
}

#[tokio::test]
async fn started_and_completed_of_one_run_share_a_deployment_key() {
    let (ports, plans) = capturing();
    let app = ports.app();
    app.ingest(&ingester(), clienwork("deploy.started", None))
        .await
        .unwrap();
    app.ingest(&ingester(), clienwork("deploy.completed", Some("success")))
        .await
        .unwrap();
    let mut other_run = clienwork("deploy.completed", Some("success"));
    other_run.fields.run_url = Some("https://github.com/org/repo/actions/runs/999".into());
    app.ingest(&ingester(), other_run).await.unwrap();
    let mut no_url = clienwork("deploy.completed", Some("success"));
    no_url.fields.run_url = None;
    app.ingest(&ingester(), no_url.clone()).await.unwrap();
    no_url.event = PipelineEvent::DEPLOY_STARTED;
    no_url.status = None;
    app.ingest(&ingester(), no_url).await.unwrap();

    let plans = plans.lock().unwrap();
    let keys: Vec<&IdempotencyKey> = plans
        .iter()
        .map(|p| &p.deployment.as_ref().unwrap().key)
        .collect();
    assert_eq!(keys[0], keys[1], "same run URL");
    assert_ne!(keys[1], keys[2], "another run");
    assert_eq!(keys[3], keys[4], "no URL: the commit correlates");
    assert_ne!(keys[1], keys[3]);
    let started = &plans[0];
    assert_eq!(
        started.event.status.status,
        DeploymentStatus::Running,
        "deploy.started without status"
    );
    assert!(!started.event.status_sent);
    assert_eq!(
        started.deployment.as_ref().unwrap().observation.started_at,
        Some(now())
    );
    assert_ne!(plans[0].event.fingerprint, plans[1].event.fingerprint);
}

#[tokio::test]
async fn the_same_event_twice_has_the_same_fingerprint_whenever_it_arrives() {
    let mut first_ports = TestPorts::new();
    first_ports.with_project();
    first_ports.with_clock_and_ids();
    let mut second_ports = TestPorts::new();
    second_ports.with_project();
    second_ports
        .clock
        .expect_now()
        .returning(|| at("2030-01-01T00:00:00Z"));
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(5000));
    second_ports.ids.expect_uuid().returning(move || {
        ids(u128::from(
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        ))
    });
    let fingerprints = Arc::new(Mutex::new(Vec::new()));
    for ports in [&mut first_ports, &mut second_ports] {
        let seen = Arc::clone(&fingerprints);
        ports.deployments.expect_ingest().returning(move |plan| {
            seen.lock()
                .unwrap()
                .push((plan.event.fingerprint.clone(), plan.deployment.unwrap().key));
            Err(DeploymentStoreError::Backend(
                crate::ports::BackendFailure::unavailable("not needed"),
            ))
        });
    }
    let _ = first_ports
        .app()
        .ingest(&ingester(), clienwork("deploy.completed", Some("success")))
        .await;
    let _ = second_ports
        .app()
        .ingest(&ingester(), clienwork("deploy.completed", Some("success")))
        .await;
    let seen = fingerprints.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], seen[1]);
}

#[tokio::test]
async fn the_hivel_seed_example_is_exclusive_and_carries_pull_requests() {
    let (mut ports, plans) = capturing();
    ports.applications.expect_by_repo().returning(|_, repo| {
        Ok(vec![Application {
            source_provider: None,
            id: crate::ids::ApplicationId::from_uuid(ids(60)),
            workspace: workspace(),
            project: project().id,
            code: ApplicationCode::parse("webhook-logger").unwrap(),
            name: "webhook-logger".into(),
            repo: Some(repo.clone()),
            created_at: Timestamp::UNIX_EPOCH,
        }])
    });
    ports.app().ingest(&ingester(), hivel()).await.unwrap();
    let plans = plans.lock().unwrap();
    let plan = &plans[0];
    assert_eq!(
        plan.project,
        project().id,
        "project found through the registered repository"
    );
    assert_eq!(plan.application.code.as_str(), "webhook-logger");
    let deployment = plan.deployment.as_ref().unwrap();
    assert!(deployment.exclusive);
    assert_eq!(deployment.key.as_str(), "deploy-20250922-1200");
    assert_eq!(deployment.observation.at, at("2025-09-22T12:15:30Z"));
    assert_eq!(
        deployment.observation.started_at,
        Some(at("2025-09-22T12:00:00Z"))
    );
    let keys: Vec<&str> = deployment
        .references
        .iter()
        .map(|r| r.key.as_str())
        .collect();
    assert_eq!(keys, ["#71", "#35", "#23"]);
}

#[tokio::test]
async fn terminal_only_events_record_in_progress_words_as_unknown() {
    let (mut ports, plans) = capturing();
    ports
        .applications
        .expect_by_repo()
        .returning(|_, _| Ok(vec![]));
    let app = ports.app();
    let mut scoped = ingester();
    scoped.project = Some(project().id);
    for (word, terminal_only, expected) in [
        ("running", true, DeploymentStatus::Unknown),
        ("running", false, DeploymentStatus::Running),
        ("failed", true, DeploymentStatus::Failed),
    ] {
        let mut command = hivel();
        command.status = Some(word.into());
        command.terminal_only = terminal_only;
        app.ingest(&scoped, command).await.unwrap();
        let plan = plans.lock().unwrap().pop().unwrap();
        assert_eq!(plan.event.status.status, expected, "{word} {terminal_only}");
        assert_eq!(plan.event.status.raw, word, "the raw word is kept");
    }
}

#[tokio::test]
async fn a_start_after_the_end_is_refused_before_any_lookup() {
    let mut command = hivel();
    command.started_at = Some(at("2025-09-22T13:00:00Z"));
    let mut ports = TestPorts::new();
    ports.clock.expect_now().returning(now);
    let err = ports.app().ingest(&ingester(), command).await.unwrap_err();
    assert_eq!(err, AppError::StartAfterFinish);
    assert_eq!(err.to_string(), "Start time cannot be after end time");
}

#[tokio::test]
async fn deploy_events_need_an_environment_and_fields_are_bounded() {
    let mut ports = TestPorts::new();
    ports.clock.expect_now().returning(now);
    let app = ports.app();
    let mut command = clienwork("deploy.completed", Some("success"));
    command.environment = None;
    let err = app.ingest(&ingester(), command).await.unwrap_err();
    assert!(
        matches!(
            err,
            AppError::MissingField {
                field: "environment",
                ..
            }
        ),
        "{err:?}"
    );
    let mut command = clienwork("deploy.completed", Some("success"));
    command.fields.commit_message = Some("x".repeat(MAX_MESSAGE_LEN + 1));
    let err = app.ingest(&ingester(), command).await.unwrap_err();
    assert!(
        matches!(
            err,
            AppError::InvalidField {
                field: "commit_message",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn build_events_record_an_event_but_no_deployment() {
    let (ports, plans) = capturing();
    let mut command = clienwork("build.started", None);
    command.environment = None;
    let receipt = ports.app().ingest(&ingester(), command).await.unwrap();
    assert_eq!(receipt.deployment, None);
    let plans = plans.lock().unwrap();
    assert!(plans[0].deployment.is_none());
    assert!(plans[0].environment.is_none());
    assert_eq!(
        plans[0].event.commit_sha.as_ref().map(CommitSha::as_str),
        Some("abc123def456")
    );
}

#[tokio::test]
async fn read_keys_cannot_ingest_and_other_projects_are_not_found() {
    let app = TestPorts::new().app();
    let err = app
        .ingest(&reader(), clienwork("deploy.completed", None))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AppError::Forbidden {
            role: Role::Read,
            ..
        }
    ));

    let mut ports = TestPorts::new();
    ports.with_project();
    ports.clock.expect_now().returning(now);
    let mut scoped = ingester();
    scoped.project = Some(crate::ids::ProjectId::from_uuid(ids(99)));
    let err = ports
        .app()
        .ingest(&scoped, clienwork("deploy.completed", None))
        .await
        .unwrap_err();
    assert_eq!(err, AppError::ProjectNotFound("my-project".into()));
}

#[tokio::test]
async fn without_a_project_the_repository_must_point_to_exactly_one() {
    let mut none = TestPorts::new();
    none.clock.expect_now().returning(now);
    none.applications
        .expect_by_repo()
        .returning(|_, _| Ok(vec![]));
    let err = none.app().ingest(&ingester(), hivel()).await.unwrap_err();
    assert!(
        matches!(err, AppError::ProjectRequired(ref m) if m.contains("github.com/hivelai/webhook-logger")),
        "{err:?}"
    );

    let mut several = TestPorts::new();
    several.clock.expect_now().returning(now);
    several.with_project();
    several.applications.expect_by_repo().returning(|_, repo| {
        let app = |n: u128, project: u128| Application {
            source_provider: None,
            id: crate::ids::ApplicationId::from_uuid(ids(n)),
            workspace: workspace(),
            project: crate::ids::ProjectId::from_uuid(ids(project)),
            code: ApplicationCode::parse("webhook-logger").unwrap(),
            name: "webhook-logger".into(),
            repo: Some(repo.clone()),
            created_at: Timestamp::UNIX_EPOCH,
        };
        Ok(vec![app(60, 5), app(61, 6)])
    });
    let err = several
        .app()
        .ingest(&ingester(), hivel())
        .await
        .unwrap_err();
    assert!(
        matches!(err, AppError::ApplicationAmbiguous { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_scoped_key_supplies_the_project_and_new_repositories_become_applications() {
    let (mut ports, plans) = capturing();
    ports
        .applications
        .expect_by_repo()
        .returning(|_, _| Ok(vec![]));
    let mut scoped = admin();
    scoped.project = Some(project().id);
    ports.app().ingest(&scoped, hivel()).await.unwrap();
    let plans = plans.lock().unwrap();
    assert_eq!(plans[0].project, project().id);
    assert_eq!(plans[0].application.code.as_str(), "webhook-logger");
    assert_eq!(
        plans[0].application.repo.as_ref().map(RepoIdentity::as_str),
        Some("github.com/hivelai/webhook-logger")
    );
}

#[tokio::test]
async fn store_errors_surface_with_their_meaning() {
    let mut ports = TestPorts::new();
    ports.with_project();
    ports.with_clock_and_ids();
    ports.deployments.expect_ingest().returning(|_| {
        Err(DeploymentStoreError::EnvironmentNotFound(
            EnvironmentCode::parse("qa").unwrap(),
        ))
    });
    let mut command = clienwork("deploy.completed", Some("success"));
    command.environment = Some(EnvironmentRef {
        name: "qa".into(),
        create_if_missing: false,
        kind: None,
    });
    let err = ports.app().ingest(&ingester(), command).await.unwrap_err();
    assert_eq!(
        err,
        AppError::EnvironmentNotFound(EnvironmentCode::parse("qa").unwrap())
    );
    assert!(err.to_string().contains("create it first"));
}

// ---- decide: what the store writes ----

fn event(status: DeploymentStatus, raw: &str, fingerprint: &str) -> EventPlan {
    EventPlan {
        id: EventId::from_uuid(ids(1)),
        event: PipelineEvent::DEPLOY_COMPLETED,
        status: ProviderStatus {
            provider: Provider::GithubActions,
            raw: raw.into(),
            status,
        },
        status_sent: true,
        commit_sha: None,
        occurred_at: now(),
        received_at: now(),
        fingerprint: Fingerprint::of(&[fingerprint]),
    }
}

fn deployment_plan(
    status: DeploymentStatus,
    at_: &str,
    references: Vec<Reference>,
) -> DeploymentPlan {
    DeploymentPlan {
        new_id: DeploymentId::from_uuid(ids(77)),
        key: IdempotencyKey::parse("k-1").unwrap(),
        exclusive: false,
        observation: Observation {
            status,
            provider_status: status.as_str().into(),
            at: at(at_),
            started_at: None,
            finished_at: None,
        },
        fields: DeploymentFields::default(),
        references,
        marked_rework: false,
        hotfix_patterns: vec!["hotfix/*".into()],
    }
}

fn stored(status: DeploymentStatus, at_: &str) -> StoredDeployment {
    let plan = deployment_plan(status, at_, vec![]);
    StoredDeployment {
        id: DeploymentId::from_uuid(ids(55)),
        lifecycle: Lifecycle::new(&plan.observation),
        provider: Provider::Jenkins,
        fields: DeploymentFields {
            run_url: Some("https://ci/run/1".into()),
            commit_message: Some("old".into()),
            ..DeploymentFields::default()
        },
        references: vec![Reference {
            key: ReferenceKey::parse("PR-1").unwrap(),
            closing: true,
        }],
        payload_fingerprint: Fingerprint::of(&["first"]),
        rework: None,
    }
}

#[test]
fn a_new_deployment_is_created_with_its_first_status() {
    let plan = deployment_plan(DeploymentStatus::Running, "2025-01-01T00:00:00Z", vec![]);
    let decision = decide(
        None,
        &plan,
        &event(DeploymentStatus::Running, "running", "a"),
    )
    .unwrap();
    assert!(decision.create);
    assert_eq!(decision.id, plan.new_id);
    assert_eq!(
        decision.transition,
        Some(StatusTransition {
            from: None,
            to: DeploymentStatus::Running
        })
    );
    assert!(decision.deployed_references.is_empty());
}

#[test]
fn success_marks_closing_references_deployed_and_keeps_the_rest_linked() {
    let existing = stored(DeploymentStatus::Running, "2025-01-01T00:00:00Z");
    let plan = deployment_plan(
        DeploymentStatus::Success,
        "2025-01-01T00:05:00Z",
        vec![
            Reference {
                key: ReferenceKey::parse("PR-2").unwrap(),
                closing: false,
            },
            Reference {
                key: ReferenceKey::parse("PR-3").unwrap(),
                closing: true,
            },
        ],
    );
    let decision = decide(
        Some(&existing),
        &plan,
        &event(DeploymentStatus::Success, "success", "b"),
    )
    .unwrap();
    assert!(!decision.create);
    assert_eq!(decision.id, existing.id);
    assert_eq!(
        decision.transition,
        Some(StatusTransition {
            from: Some(DeploymentStatus::Running),
            to: DeploymentStatus::Success
        })
    );
    let keys: Vec<&str> = decision.references.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["PR-1", "PR-2", "PR-3"]);
    let deployed: Vec<&str> = decision
        .deployed_references
        .iter()
        .map(ReferenceKey::as_str)
        .collect();
    assert_eq!(deployed, ["PR-1", "PR-3"]);
    assert_eq!(
        decision.provider,
        Provider::GithubActions,
        "the reporter of the new status"
    );
}

#[test]
fn a_late_start_changes_nothing_but_fills_in_fields() {
    let existing = stored(DeploymentStatus::Success, "2025-01-01T00:05:00Z");
    let mut plan = deployment_plan(DeploymentStatus::Running, "2025-01-01T00:00:00Z", vec![]);
    plan.fields.image = Some("api:1".into());
    plan.fields.commit_message = Some("new".into());
    let decision = decide(
        Some(&existing),
        &plan,
        &event(DeploymentStatus::Running, "running", "c"),
    )
    .unwrap();
    assert_eq!(decision.lifecycle.status, DeploymentStatus::Success);
    assert_eq!(decision.transition, None);
    assert_eq!(
        decision.provider,
        Provider::Jenkins,
        "the status's reporter is kept"
    );
    assert_eq!(
        decision.lifecycle.started_at,
        Some(at("2025-01-01T00:00:00Z"))
    );
    assert_eq!(decision.fields.image.as_deref(), Some("api:1"));
    assert_eq!(
        decision.fields.run_url.as_deref(),
        Some("https://ci/run/1"),
        "never erased"
    );
    assert_eq!(
        decision.fields.commit_message.as_deref(),
        Some("new"),
        "newer detail wins"
    );
}

#[test]
fn an_exclusive_key_with_another_payload_is_a_conflict() {
    let existing = stored(DeploymentStatus::Success, "2025-01-01T00:05:00Z");
    let mut plan = deployment_plan(DeploymentStatus::Failed, "2025-01-01T00:06:00Z", vec![]);
    plan.exclusive = true;
    let err = decide(
        Some(&existing),
        &plan,
        &event(DeploymentStatus::Failed, "failed", "other"),
    )
    .unwrap_err();
    assert_eq!(err, IdempotencyConflict("k-1".into()));
    let same = decide(
        Some(&existing),
        &plan,
        &event(DeploymentStatus::Failed, "failed", "first"),
    );
    assert!(same.is_ok(), "the same payload is not a conflict");
}

/// Counts what it is told, per workspace.
#[derive(Default)]
struct Told(Mutex<Vec<WorkspaceId>>);

impl crate::ports::ChangeNotifier for Told {
    fn deployments_changed(&self, workspace: WorkspaceId) {
        self.0.lock().unwrap().push(workspace);
    }
}

#[tokio::test]
async fn a_recorded_deploy_is_announced_to_live_views_once_and_a_duplicate_not_at_all() {
    let mut ports = TestPorts::new();
    ports.with_project();
    ports.with_clock_and_ids();
    let calls = Arc::new(Mutex::new(0u32));
    let count = Arc::clone(&calls);
    ports
        .deployments
        .expect_ingest()
        .returning(move |plan: IngestPlan| {
            let mut n = count.lock().unwrap();
            *n += 1;
            Ok(IngestReceipt {
                event: plan.event.id,
                deployment: plan.deployment.as_ref().map(|d| d.new_id),
                status: plan.deployment.as_ref().map(|d| d.observation.status),
                // The second delivery of the same event is a duplicate.
                duplicate: *n > 1,
                created: *n == 1,
                linked_references: Vec::new(),
                references_not_linked: 0,
            })
        });
    let told = Arc::new(Told::default());
    let app = ports.app().with_notifier(told.clone());
    for _ in 0..2 {
        app.ingest(&ingester(), clienwork("deploy.completed", Some("success")))
            .await
            .unwrap();
    }
    assert_eq!(*told.0.lock().unwrap(), vec![ingester().workspace]);
    // A build event changes no deployment: nothing to announce.
    let told = Arc::new(Told::default());
    let (ports, _) = capturing();
    let app = ports.app().with_notifier(told.clone());
    app.ingest(&ingester(), clienwork("build.completed", Some("success")))
        .await
        .unwrap();
    assert!(told.0.lock().unwrap().is_empty());
}

// ---- rework: what a deployment says of itself ----

#[test]
fn a_mark_sticks_and_a_later_hotfix_branch_is_seen() {
    // A first event marked as rework: the decision says so.
    let mut plan = deployment_plan(DeploymentStatus::Running, "2025-01-01T00:00:00Z", vec![]);
    plan.marked_rework = true;
    let first = decide(
        None,
        &plan,
        &event(DeploymentStatus::Running, "running", "a"),
    )
    .unwrap();
    assert_eq!(first.rework, Some(ReworkReason::Marked));

    // A later unmarked event of the same deployment keeps the mark.
    let mut existing = stored(DeploymentStatus::Running, "2025-01-01T00:00:00Z");
    existing.rework = first.rework;
    let later = deployment_plan(DeploymentStatus::Success, "2025-01-01T00:05:00Z", vec![]);
    let second = decide(
        Some(&existing),
        &later,
        &event(DeploymentStatus::Success, "success", "b"),
    )
    .unwrap();
    assert_eq!(second.rework, Some(ReworkReason::Marked));

    // Unmarked, the branch sent by a later event is matched against the project's patterns
    // (`hotfix/*` in these plans), with the fields merged.
    existing.rework = None;
    let mut later = deployment_plan(DeploymentStatus::Success, "2025-01-01T00:05:00Z", vec![]);
    later.fields.branch = Some("hotfix/login".into());
    let third = decide(
        Some(&existing),
        &later,
        &event(DeploymentStatus::Success, "success", "c"),
    )
    .unwrap();
    assert_eq!(third.rework, Some(ReworkReason::HotfixRef));

    // A branch no pattern matches, and the stored message ("old"), say nothing.
    later.fields.branch = Some("hotfix-login".into());
    let fourth = decide(
        Some(&existing),
        &later,
        &event(DeploymentStatus::Success, "success", "d"),
    )
    .unwrap();
    assert_eq!(fourth.rework, None);

    // A revert message arriving with a later event.
    later.fields.commit_message = Some("Revert \"Add login\"\n\nThis reverts commit 1a2b.".into());
    let fifth = decide(
        Some(&existing),
        &later,
        &event(DeploymentStatus::Success, "success", "e"),
    )
    .unwrap();
    assert_eq!(fifth.rework, Some(ReworkReason::Revert));
}

#[tokio::test]
async fn a_mark_changes_the_fingerprint_and_the_project_patterns_reach_the_plan() {
    let (ports, plans) = capturing();
    let app = ports.app();
    let plain = clienwork("deploy.completed", Some("success"));
    let mut marked = plain.clone();
    marked.rework = true;
    app.ingest(&ingester(), plain).await.unwrap();
    app.ingest(&ingester(), marked).await.unwrap();
    let plans = plans.lock().unwrap();
    let [plain, marked] = plans.as_slice() else {
        panic!("two plans expected, got {}", plans.len());
    };
    assert_ne!(plain.event.fingerprint, marked.event.fingerprint);
    let plain = plain.deployment.as_ref().unwrap();
    let marked = marked.deployment.as_ref().unwrap();
    assert!(!plain.marked_rework);
    assert!(marked.marked_rework);
    // The test project sets none: the defaults.
    assert_eq!(plain.hotfix_patterns, ["hotfix/*", "hotfix-*", "revert-*"]);
}
