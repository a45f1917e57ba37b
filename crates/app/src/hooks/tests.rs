#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;

use serde_json::json;
use shiplog_domain::environment::EnvironmentKind;
use shiplog_domain::hook::HookEvent;
use shiplog_domain::ids::{ApplicationCode, CommitSha, EnvironmentCode, ProjectSlug};
use shiplog_domain::status::DeploymentStatus;

use super::template::{VARIABLES, Variables, render, validate};
use super::*;
use crate::error::ErrorCode;
use crate::ids::DeploymentId;
use crate::ids::{ProjectId, WorkspaceId};
use crate::model::Environment;
use crate::testing::{ids, now, sample_deployment};

fn hook(target_url: &str) -> Hook {
    Hook {
        id: HookId::from_uuid(ids(1)),
        workspace: WorkspaceId::from_uuid(ids(2)),
        project: ScopeRef {
            id: ProjectId::from_uuid(ids(3)),
            code: ProjectSlug::parse("my-project").unwrap(),
        },
        application: None,
        environment: None,
        name: "ci".into(),
        action_type: "deploy".into(),
        events: vec![HookEvent::ActionStarted],
        request: HookRequest {
            method: HookMethod::Post,
            target_url: target_url.into(),
            headers: Vec::new(),
            body: None,
        },
        secrets: BTreeMap::from([("access_token".to_owned(), SecretText::new("tok-123"))]),
        signing_secret: SecretText::new("whsec_c2VjcmV0"),
        enabled: true,
        disabled_reason: None,
        created_at: now(),
        updated_at: now(),
    }
}

fn sample(hook: &Hook) -> Variables {
    Variables::sample(hook, "https://shiplog.example.com", false)
}

#[test]
fn every_documented_variable_can_be_used() {
    for (variable, _) in VARIABLES {
        let hook = hook(&format!("https://example.com/?v={{{{ {variable} }}}}"));
        assert!(validate(&hook, &sample(&hook), false).is_ok(), "{variable}");
    }
}

/// The dotted paths of a context's leaves, its secrets left out.
fn leaves(value: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    match value.as_object() {
        Some(fields) => {
            for (key, item) in fields {
                if prefix.is_empty() && key == "secrets" {
                    continue;
                }
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaves(item, &path, out);
            }
        }
        None => out.push(prefix.to_owned()),
    }
}

#[test]
fn deliveries_and_save_time_samples_offer_exactly_the_documented_variables() {
    let hook = hook("https://example.com/");
    let documented: std::collections::BTreeSet<String> =
        VARIABLES.iter().map(|(v, _)| (*v).to_owned()).collect();
    let claimed = claim(hook.clone(), DeploymentStatus::Success);
    for variables in [
        Variables::for_delivery(&claimed, 1, "https://s.example"),
        sample(&hook),
    ] {
        let mut found = Vec::new();
        leaves(variables.as_json(), "", &mut found);
        let found: std::collections::BTreeSet<String> = found.into_iter().collect();
        assert_eq!(found, documented);
    }
}

#[test]
fn an_unknown_variable_is_refused_at_save_naming_where_it_is() {
    let mut hook = hook("https://example.com/");
    hook.request.body = Some(json!({"a": {"b": ["fine", "{{ deployment.commit }}"]}}));
    let error = validate(&hook, &sample(&hook), false).unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidField);
    let text = error.to_string();
    assert!(text.starts_with("settings.request_body:"), "{text}");
    assert!(text.contains("settings.request_body.a.b[1]"), "{text}");
    assert!(text.contains("deployment.commit"), "{text}");

    // Even in a branch that the sample values would not take.
    let hook2 = self::hook("https://example.com/{% if false %}{{ nope }}{% endif %}");
    assert!(validate(&hook2, &sample(&hook2), false).is_err());
    // And not by prefix: `deploy` is not `deployment`.
    let hook3 = self::hook("https://example.com/{{ deploy.id }}");
    assert!(validate(&hook3, &sample(&hook3), false).is_err());
}

#[test]
fn secrets_are_variables_only_when_the_hook_has_them() {
    let ok = hook("https://example.com/{{ secrets.access_token }}");
    assert!(validate(&ok, &sample(&ok), false).is_ok());
    let missing = hook("https://example.com/{{ secrets.other }}");
    let text = validate(&missing, &sample(&missing), false)
        .unwrap_err()
        .to_string();
    assert!(text.contains("secrets.other"), "{text}");
    let mut no_token = hook("https://example.com/{{ application.source_provider.access_token }}");
    no_token.secrets.clear();
    let text = validate(&no_token, &sample(&no_token), false)
        .unwrap_err()
        .to_string();
    assert!(text.contains("secret named access_token"), "{text}");
    assert!(
        text.contains("PUT /api/v1/applications/{id}/source-provider"),
        "both ways to fix it: {text}"
    );
    // The application's stored token is enough.
    let with_application_token = Variables::sample(&no_token, "https://shiplog.example.com", true);
    assert!(validate(&no_token, &with_application_token, true).is_ok());
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let mut hook = hook("https://example.com/");
    hook.request.headers.push(HookHeader {
        name: "Authorization".into(),
        value: SecretText::new("Bearer literal-token"),
    });
    let debug = format!("{hook:?}");
    for secret in ["tok-123", "literal-token", "whsec_c2VjcmV0"] {
        assert!(!debug.contains(secret), "{secret} leaked: {debug}");
    }
    let view = serde_json::to_string(&HookView::from(&hook)).unwrap();
    for secret in ["tok-123", "literal-token", "whsec_c2VjcmV0"] {
        assert!(!view.contains(secret), "{secret} shown: {view}");
    }
}

fn claim(hook: Hook, status: DeploymentStatus) -> ClaimedDelivery {
    let mut deployment = sample_deployment();
    deployment.id = DeploymentId::from_uuid(ids(9));
    deployment.fields.commit_sha = Some(CommitSha::parse("abcdef1234567").unwrap());
    ClaimedDelivery {
        id: DeliveryId::from_uuid(ids(10)),
        event: HookEvent::ActionCompleted,
        attempts_made: 0,
        subject: DeliverySubject {
            deployment,
            previous_status: Some(DeploymentStatus::Running),
            status,
            project: crate::testing::project(),
            application: Application {
                id: ApplicationId::from_uuid(ids(11)),
                workspace: hook.workspace,
                project: hook.project.id,
                code: ApplicationCode::parse("api").unwrap(),
                name: "API".into(),
                repo: Some(
                    shiplog_domain::repo::RepoIdentity::parse("github.com/acme/api").unwrap(),
                ),
                created_at: now(),
                source_provider: Some("github".into()),
            },
            source_token: Some(SecretText::new("app-token")),
            environment: Environment {
                id: EnvironmentId::from_uuid(ids(12)),
                workspace: hook.workspace,
                code: EnvironmentCode::parse("production").unwrap(),
                name: "Production".into(),
                kind: EnvironmentKind::Production,
                url: None,
                position: 0,
                team: None,
                created_at: now(),
            },
        },
        hook,
    }
}

#[test]
fn the_seeds_devopness_body_renders_with_the_delivery_values() {
    let mut hook = hook(
        "https://api.github.com/repos/acme/api/statuses/{{ action.triggered_from.hook_parsed_variables.commit_hash }}",
    );
    hook.request.headers = vec![HookHeader {
        name: "Authorization".into(),
        value: SecretText::new("Bearer {{ application.source_provider.access_token }}"),
    }];
    hook.request.body = Some(json!({
        "state": "{{ status.github }}",
        "target_url": "{{ action.url }}",
        "url": "{{ action.url }}",
        "description": "Application building success",
        "context": "ci/devopness(build)",
        "key": "ci/devopness(build)",
        "count": 3,
        "branch": "{{ deployment.branch }}",
    }));
    validate(&hook, &sample(&hook), false).unwrap();
    let claimed = claim(hook.clone(), DeploymentStatus::Failed);
    let variables = Variables::for_delivery(&claimed, 1, "https://shiplog.example.com");
    let rendered = render(&hook, &variables, "2026-01-01T00:00:00Z").unwrap();
    assert_eq!(
        rendered.url.reveal(),
        "https://api.github.com/repos/acme/api/statuses/abcdef1234567"
    );
    assert_eq!(
        rendered.headers[0].1.reveal(),
        "Bearer tok-123",
        "the hook's own secret wins over the application's token"
    );
    let mut without_secret = hook.clone();
    without_secret.secrets.clear();
    let claimed = claim(without_secret.clone(), DeploymentStatus::Failed);
    let variables = Variables::for_delivery(&claimed, 1, "https://shiplog.example.com");
    let rendered = render(&without_secret, &variables, "2026-01-01T00:00:00Z").unwrap();
    assert_eq!(
        rendered.headers[0].1.reveal(),
        "Bearer app-token",
        "else the application's stored token"
    );
    let claimed = claim(hook.clone(), DeploymentStatus::Failed);
    let variables = Variables::for_delivery(&claimed, 1, "https://shiplog.example.com");
    let rendered = render(&hook, &variables, "2026-01-01T00:00:00Z").unwrap();
    let body: serde_json::Value = serde_json::from_slice(&rendered.body).unwrap();
    let url = format!(
        "https://shiplog.example.com/deployments/{}",
        claimed.subject.deployment.id
    );
    assert_eq!(
        body,
        json!({
            "state": "failure", "target_url": url, "url": url,
            "description": "Application building success",
            "context": "ci/devopness(build)", "key": "ci/devopness(build)",
            "count": 3, "branch": "",
        })
    );
}

#[test]
fn without_a_body_template_the_standard_envelope_is_sent_without_secrets() {
    let hook = hook("https://example.com/");
    let claimed = claim(hook.clone(), DeploymentStatus::Success);
    let variables = Variables::for_delivery(&claimed, 1, "https://s.example");
    let rendered = render(&hook, &variables, "2026-01-01T00:00:00Z").unwrap();
    let body: serde_json::Value = serde_json::from_slice(&rendered.body).unwrap();
    assert_eq!(body["type"], "action.completed");
    assert_eq!(body["timestamp"], "2026-01-01T00:00:00Z");
    assert_eq!(body["data"]["deployment"]["status"], "success");
    assert_eq!(body["data"]["application"]["code"], "api");
    assert!(!String::from_utf8_lossy(&rendered.body).contains("tok-123"));
}

#[test]
fn a_rendered_header_with_a_line_break_is_refused() {
    let mut hook = hook("https://example.com/");
    hook.request.headers = vec![HookHeader {
        name: "X-Commit".into(),
        value: SecretText::new("{{ deployment.commit_message }}"),
    }];
    let mut claimed = claim(hook.clone(), DeploymentStatus::Success);
    claimed.subject.deployment.fields.commit_message = Some("line\r\nInjected: yes".into());
    let variables = Variables::for_delivery(&claimed, 1, "https://s.example");
    let error = render(&hook, &variables, "t").unwrap_err();
    assert!(error.contains("line break"), "{error}");
}

#[test]
fn presets_fill_a_valid_hook() {
    for (kind, url) in [
        (
            presets::PresetKind::Github,
            "https://api.github.com/repos/acme/api/statuses/0123456789abcdef0123456789abcdef01234567",
        ),
        (
            presets::PresetKind::Gitlab,
            "https://gitlab.com/api/v4/projects/acme%2Fapi/statuses/0123456789abcdef0123456789abcdef01234567",
        ),
        (
            presets::PresetKind::Bitbucket,
            "https://api.bitbucket.org/2.0/repositories/acme/api/commit/0123456789abcdef0123456789abcdef01234567/statuses/build",
        ),
    ] {
        let mut hook = hook("");
        hook.secrets.clear();
        let mut events = Vec::new();
        presets::apply(
            presets::PresetInput {
                kind,
                repository: Some("acme/api".into()),
                context: None,
                access_token: Some("tok".into()),
                api_url: None,
                webhook_url: None,
            },
            &mut hook.request,
            &mut hook.secrets,
            &mut events,
        )
        .unwrap();
        assert_eq!(events, presets::DEFAULT_EVENTS);
        let rendered = validate(&hook, &sample(&hook), false).unwrap();
        assert_eq!(rendered.url.reveal(), url, "{kind:?}");
        let body: serde_json::Value = serde_json::from_slice(&rendered.body).unwrap();
        let state = &body["state"];
        let expected = match kind {
            presets::PresetKind::Github | presets::PresetKind::Gitlab => "success",
            _ => "SUCCESSFUL",
        };
        assert_eq!(state, expected, "{kind:?}");
    }
    // Slack: the webhook URL is a secret, and the target is a template reading it.
    let mut slack = hook("");
    slack.secrets.clear();
    presets::apply(
        presets::PresetInput {
            kind: presets::PresetKind::Slack,
            repository: None,
            context: None,
            access_token: None,
            api_url: None,
            webhook_url: Some("https://hooks.slack.example/services/T0/B0/secret".into()),
        },
        &mut slack.request,
        &mut slack.secrets,
        &mut Vec::new(),
    )
    .unwrap();
    assert_eq!(slack.request.target_url, "{{ secrets.webhook_url }}");
    let rendered = validate(&slack, &sample(&slack), false).unwrap();
    assert_eq!(
        rendered.url.reveal(),
        "https://hooks.slack.example/services/T0/B0/secret"
    );
    let text: serde_json::Value = serde_json::from_slice(&rendered.body).unwrap();
    assert!(
        text["text"]
            .as_str()
            .unwrap()
            .contains("success in production"),
        "{text}"
    );
    let shown = serde_json::to_string(&HookView::from(&slack)).unwrap();
    assert!(!shown.contains("hooks.slack.example"), "{shown}");

    // Without a token, a commit-status preset says what is missing.
    let mut hook = hook("");
    hook.secrets.clear();
    let error = presets::apply(
        presets::PresetInput {
            kind: presets::PresetKind::Github,
            repository: None,
            context: None,
            access_token: None,
            api_url: None,
            webhook_url: None,
        },
        &mut hook.request,
        &mut hook.secrets,
        &mut Vec::new(),
    )
    .unwrap_err();
    assert_eq!(error.code(), ErrorCode::MissingField);
}

#[test]
fn docs_hooks_md_documents_every_variable_and_event() {
    let docs = include_str!("../../../../docs/hooks.md");
    for (variable, _) in VARIABLES {
        assert!(
            docs.contains(&format!("`{variable}`")),
            "docs/hooks.md lacks {variable}"
        );
    }
    for event in HookEvent::ALL {
        assert!(
            docs.contains(&format!("`{event}`")),
            "docs/hooks.md lacks {event}"
        );
    }
}

/// A hook whose body holds one templated string.
fn with_body(template: &str) -> Hook {
    let mut hook = hook("https://example.com/");
    hook.request.body = Some(json!({"text": template}));
    hook
}

fn refusal(hook: &Hook) -> String {
    match validate(hook, &sample(hook), false) {
        Ok(_) => panic!("accepted: {:?}", hook.request.body),
        Err(error) => {
            assert!(
                matches!(
                    error,
                    crate::error::AppError::InvalidField {
                        field: "settings.request_body",
                        ..
                    }
                ),
                "{error:?}"
            );
            error.to_string()
        }
    }
}

#[test]
fn templates_have_a_budget_when_saved() {
    use super::template::{MAX_FIELD_BYTES, MAX_FUEL};
    // A 10^6-iteration loop: stopped by the instruction budget.
    let thousand = "x".repeat(1000);
    let text = refusal(&with_body(&format!(
        r#"{{% for a in "{thousand}" %}}{{% for b in "{thousand}" %}}{{% endfor %}}{{% endfor %}}"#
    )));
    assert!(text.contains(&MAX_FUEL.to_string()), "{text}");
    assert!(text.contains("settings.request_body.text"), "{text}");
    // More output than a field holds: stopped by the field's size cap at the first write over it.
    let text = refusal(&with_body(&format!(
        r#"{{% for i in "{thousand}" %}}{{{{ "x" * 1000 }}}}{{% endfor %}}"#
    )));
    assert!(text.contains(&MAX_FIELD_BYTES.to_string()), "{text}");
    // A value that doubles with every statement: no statement but if and for.
    let text = refusal(&with_body(
        r#"{% set s = "xx" %}{% set s = s ~ s %}{{ s }}"#,
    ));
    assert!(text.contains("{% set %}"), "{text}");
    // A value that grows with every filter: replace checks the size it would make.
    let chain = r#"{{ "xxxxxxxx"|replace("x", "xxxxxxxx")|replace("x", "xxxxxxxx")|replace("x", "xxxxxxxx")|replace("x", "xxxxxxxx")|replace("x", "xxxxxxxx")|replace("x", "xxxxxxxx")|replace("x", "xxxxxxxx") }}"#;
    let text = refusal(&with_body(chain));
    assert!(text.contains("replace would produce"), "{text}");
    // Many fields that each fit still share one request budget.
    let mut many = hook("https://example.com/");
    let field = &format!(r#"{{% for i in "{}" %}}x{{% endfor %}}"#, "x".repeat(6000));
    many.request.body = Some(json!({"a": field, "b": field, "c": field, "d": field, "e": field}));
    let one = with_body(field);
    assert!(
        validate(&one, &sample(&one), false).is_ok(),
        "one such field fits"
    );
    let error = validate(&many, &sample(&many), false)
        .unwrap_err()
        .to_string();
    assert!(error.contains(&MAX_FUEL.to_string()), "{error}");
    assert!(
        !error.contains("request_body.a "),
        "the first field fit: {error}"
    );
    // Ordinary templates are untouched.
    let fine = with_body(
        r#"{% if deployment.branch %}{{ deployment.branch|upper }}{% else %}none{% endif %}"#,
    );
    assert!(validate(&fine, &sample(&fine), false).is_ok());
}

/// The two probes of issue #29: a repeated literal that minijinja would fold while compiling
/// (about 100 MB each, before any budget), hidden in a branch the sample never takes; and a
/// loop that repeats the hook's name a million times per iteration in one instruction.
#[test]
fn repeating_strings_is_bounded_before_the_template_compiles() {
    use super::cost::MAX_WORK_BYTES;
    use super::template::MAX_FIELD_BYTES;
    let hidden =
        with_body(r#"{% if deployment.status == 'nope' %}{{ 'x' * 100000000 }}{% endif %}"#);
    let text = refusal(&hidden);
    assert!(text.contains(&MAX_FIELD_BYTES.to_string()), "{text}");
    assert!(text.contains("settings.request_body.text"), "{text}");
    let mut named = with_body(&format!(
        r#"{{% for c in '{}' %}}{{% if (hook.name * 1000000) | length > 1 %}}{{% endif %}}{{% endfor %}}"#,
        "a".repeat(40)
    ));
    named.name = "n".repeat(100);
    let text = refusal(&named);
    assert!(text.contains(&MAX_FIELD_BYTES.to_string()), "{text}");
    // Joining long values inside a loop counts every iteration.
    let joined = with_body(&format!(
        "{{% for c in '{}' %}}{{{{ ({}) | length }}}}{{% endfor %}}",
        "a".repeat(40),
        vec!["deployment.commit_message"; 30].join(" ~ ")
    ));
    assert!(
        validate(&joined, &sample(&joined), false).is_ok(),
        "fits with the sample"
    );
    let mut claimed = claim(joined.clone(), DeploymentStatus::Success);
    claimed.subject.deployment.fields.commit_message = Some("m".repeat(60_000));
    let variables = Variables::for_delivery(&claimed, 1, "https://shiplog.example.com");
    let error = render(&joined, &variables, "2026-01-01T00:00:00Z").unwrap_err();
    assert!(error.contains(&MAX_WORK_BYTES.to_string()), "{error}");
}

#[test]
fn the_budget_holds_when_sent_and_fails_the_delivery() {
    use super::template::MAX_FIELD_BYTES;
    let body = "{{ deployment.commit_message }}".repeat(4);
    let hook = with_body(&body);
    // The sample's short message fits when saved.
    assert!(validate(&hook, &sample(&hook), false).is_ok());
    // A real deployment whose message is long does not when sent.
    let mut claimed = claim(hook.clone(), DeploymentStatus::Success);
    claimed.subject.deployment.fields.commit_message = Some("m".repeat(20_000));
    let variables = Variables::for_delivery(&claimed, 1, "https://shiplog.example.com");
    let error = render(&hook, &variables, "2026-01-01T00:00:00Z").unwrap_err();
    assert!(error.contains(&MAX_FIELD_BYTES.to_string()), "{error}");
    assert!(error.starts_with("settings.request_body.text"), "{error}");
}

/// Counts the jobs it runs, and runs them in place.
#[derive(Default)]
struct CountingOffload(std::sync::atomic::AtomicUsize);

impl crate::ports::Offload for CountingOffload {
    fn run(
        &self,
        job: Box<dyn FnOnce() + Send + 'static>,
    ) -> futures_util::future::BoxFuture<'static, ()> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        job();
        Box::pin(std::future::ready(()))
    }
}

#[tokio::test]
async fn saving_a_hook_renders_its_templates_through_the_offload_port() {
    let mut ports = crate::testing::TestPorts::new();
    ports.with_project();
    ports.with_clock_and_ids();
    ports.ids.expect_secret_bytes().returning(|| [1; 32]);
    ports
        .signer
        .expect_new_secret()
        .returning(|_| "whsec_dGVzdA==".to_owned());
    ports.sender.expect_check_target().returning(|_| Ok(()));
    ports.hooks.expect_create_hook().returning(|_, _| Ok(true));
    let offload = std::sync::Arc::new(CountingOffload::default());
    let app = ports.app().with_offload(offload.clone());
    app.create_hook(
        &crate::testing::admin(),
        crate::model::ProjectLookup::parse("my-project").unwrap(),
        HookInput {
            name: "ci".into(),
            events: vec!["deployment.succeeded".into()],
            target_url: Some("https://example.com/{{ deployment.commit_sha }}".into()),
            ..HookInput::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        offload.0.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the save-time rendering ran through the port, not on the caller's thread"
    );
}
