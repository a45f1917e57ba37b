//! Hook templates: Jinja syntax (minijinja) in strict mode, over one documented set of
//! variables ([`VARIABLES`]).
//!
//! A template is checked when its hook is saved: it must compile, every variable it names must
//! be documented (or be one of the hook's own `secrets`), and it must render against sample
//! values. At send time an undefined variable is an error, never an empty string; a `null`
//! field (a deployment without a branch, say) renders as an empty string.
//!
//! Rendering has a budget, so that one workspace's hook cannot stall or bloat the server for the
//! others: before anything is compiled, a bound on the bytes of every value the templates could
//! build ([`super::cost`]: no `*` beyond [`MAX_FIELD_BYTES`], at most
//! [`super::cost::MAX_WORK_BYTES`] per request, loops counted); [`MAX_FUEL`] instructions per request, [`MAX_FIELD_BYTES`] per rendered field and
//! [`MAX_REQUEST_BYTES`] per request, only the statements `if` and `for`, and only filters
//! whose output is bounded by their input (`replace` checks the size it would produce before
//! producing it). The same limits hold when a hook is saved (a 400 naming the field and the
//! limit) and when it is sent (the delivery fails with that reason, not retried).

use std::io::Write;

use minijinja::{Environment, Error as TemplateError, ErrorKind, UndefinedBehavior};
use serde_json::{Map, Value, json};
use shiplog_domain::hook::{HookEvent, provider_state};
use shiplog_domain::status::DeploymentStatus;
use shiplog_domain::timestamp::Timestamp;

use super::{ClaimedDelivery, Hook, SecretText};
use crate::error::AppError;

/// Every variable a template may use, with what it holds. `secrets.<name>` (one per secret
/// the hook was given) comes on top.
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "event",
        "the event this delivery answers, e.g. `deployment.succeeded`",
    ),
    ("delivery.id", "the delivery id, also sent as `webhook-id`"),
    ("delivery.attempt", "this attempt's number, from 1"),
    ("hook.id", "the hook's id"),
    ("hook.name", "the hook's name"),
    ("deployment.id", "the deployment's id"),
    (
        "deployment.status",
        "`pending|running|success|failed|cancelled|unknown`, as set by this change",
    ),
    (
        "deployment.previous_status",
        "the status before this change (empty for a new deployment)",
    ),
    (
        "deployment.provider",
        "the CI provider that reported the status",
    ),
    (
        "deployment.provider_status",
        "the provider's own status word",
    ),
    ("deployment.external_id", "the provider's id of the run"),
    ("deployment.commit_sha", "the deployed commit"),
    ("deployment.commit_message", "its message"),
    ("deployment.commit_timestamp", "its time (RFC 3339)"),
    ("deployment.ref", "the Git ref"),
    ("deployment.branch", "the branch"),
    ("deployment.run_url", "the CI run's page"),
    ("deployment.deployed_by", "who deployed"),
    ("deployment.build_number", "the build number"),
    ("deployment.image", "the deployed image"),
    ("deployment.logs_url", "the logs' address"),
    ("deployment.started_at", "when it started (RFC 3339)"),
    ("deployment.finished_at", "when it finished (RFC 3339)"),
    (
        "deployment.rework",
        "why it is rework by what it says of itself (marked, hotfix_ref, revert), else empty",
    ),
    ("deployment.url", "the deployment's page on the dashboard"),
    ("deployment.api_url", "the deployment in shiplog's API"),
    (
        "application.id",
        "the application's id (the Devopness pipeline id)",
    ),
    ("application.code", "the application's code"),
    ("application.name", "its name"),
    ("application.repo", "its repository, `host/owner/name`"),
    (
        "application.repository",
        "its repository path, `owner/name`",
    ),
    (
        "application.source_provider.access_token",
        "the hook's secret named `access_token`",
    ),
    ("environment.id", "the environment's id"),
    ("environment.code", "its code"),
    ("environment.name", "its name"),
    (
        "environment.kind",
        "`production|staging|testing|development|other`",
    ),
    ("environment.url", "its address"),
    ("project.id", "the project's id"),
    ("project.slug", "its slug"),
    ("project.name", "its name"),
    ("action.id", "Devopness name: the deployment's id"),
    (
        "action.type",
        "Devopness name: the hook's action type (`deploy`)",
    ),
    (
        "action.status",
        "Devopness name: `pending|in_progress|completed|failed|cancelled|unknown`",
    ),
    (
        "action.url",
        "Devopness name: the deployment's page on the dashboard",
    ),
    (
        "action.triggered_from.hook_parsed_variables.commit_hash",
        "Devopness name: the deployed commit",
    ),
    (
        "status.github",
        "GitHub commit status state: `pending|success|failure|error`",
    ),
    (
        "status.gitlab",
        "GitLab commit status state: `pending|running|success|failed|canceled`",
    ),
    (
        "status.bitbucket",
        "Bitbucket build state: `INPROGRESS|SUCCESSFUL|FAILED|STOPPED`",
    ),
];

/// The secret that `application.source_provider.access_token` reads.
const ACCESS_TOKEN: &str = "access_token";

/// The values templates render with.
#[derive(Clone)]
pub struct Variables(Value);

impl std::fmt::Debug for Variables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Variables(..)")
    }
}

fn time(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

fn secrets(hook: &Hook) -> Value {
    Value::Object(
        hook.secrets
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.reveal().to_owned())))
            .collect::<Map<_, _>>(),
    )
}

fn status_words(status: DeploymentStatus) -> Value {
    json!({
        "github": provider_state::github(status),
        "gitlab": provider_state::gitlab(status),
        "bitbucket": provider_state::bitbucket(status),
    })
}

/// A deployment's links in deliveries: its dashboard page (what a person opens from a commit
/// status) and its API resource.
fn links(public_url: &str, id: &str) -> (String, String) {
    (
        format!("{public_url}/deployments/{id}"),
        format!("{public_url}/api/v1/deployments/{id}"),
    )
}

impl Variables {
    /// The variables of one delivery attempt.
    pub fn for_delivery(claim: &ClaimedDelivery, attempt: u32, public_url: &str) -> Self {
        let s = &claim.subject;
        let d = &s.deployment;
        let (url, api_url) = links(public_url, &d.id.to_string());
        let sha = d.fields.commit_sha.as_ref().map(|c| c.as_str().to_owned());
        let hook = &claim.hook;
        Self(json!({
            "event": claim.event.as_str(),
            "delivery": {"id": claim.id.to_string(), "attempt": attempt},
            "hook": {"id": hook.id.to_string(), "name": hook.name},
            "deployment": {
                "id": d.id.to_string(),
                "status": s.status.as_str(),
                "previous_status": s.previous_status.map(DeploymentStatus::as_str),
                "provider": d.provider.as_str(),
                "provider_status": d.provider_status,
                "external_id": d.fields.external_id,
                "commit_sha": sha,
                "commit_message": d.fields.commit_message,
                "commit_timestamp": time(d.fields.commit_timestamp),
                "ref": d.fields.git_ref,
                "branch": d.fields.branch,
                "run_url": d.fields.run_url,
                "deployed_by": d.fields.deployed_by,
                "build_number": d.fields.build_number,
                "image": d.fields.image,
                "logs_url": d.fields.logs_url,
                "started_at": time(d.started_at),
                "finished_at": time(d.finished_at),
                "rework": d.rework.map(shiplog_domain::dora::ReworkReason::as_str),
                "url": url,
                "api_url": api_url,
            },
            "application": {
                "id": s.application.id.to_string(),
                "code": s.application.code.as_str(),
                "name": s.application.name,
                "repo": s.application.repo.as_ref().map(|r| r.as_str()),
                "repository": s.application.repo.as_ref().map(|r| r.path()),
                "source_provider": {"access_token": hook
                    .secrets
                    .get(ACCESS_TOKEN)
                    .or(s.source_token.as_ref())
                    .map(SecretText::reveal)},
            },
            "environment": {
                "id": s.environment.id.to_string(),
                "code": s.environment.code.as_str(),
                "name": s.environment.name,
                "kind": s.environment.kind.as_str(),
                "url": s.environment.url,
            },
            "project": {
                "id": s.project.id.to_string(),
                "slug": s.project.slug.as_str(),
                "name": s.project.name,
            },
            "action": {
                "id": d.id.to_string(),
                "type": hook.action_type,
                "status": provider_state::action(s.status),
                "url": url,
                "triggered_from": {"hook_parsed_variables": {"commit_hash": sha}},
            },
            "status": status_words(s.status),
            "secrets": secrets(hook),
        }))
    }

    /// Sample values for checking a hook's templates (and for test sends): the hook's own
    /// project, application and environment codes, made-up deployment fields, its real secrets.
    /// `application_token` says whether the hook's application has a stored source-provider
    /// token (a stand-in renders in its place; the real one is never used for samples).
    pub fn sample(hook: &Hook, public_url: &str, application_token: bool) -> Self {
        let access_token = hook
            .secrets
            .get(ACCESS_TOKEN)
            .map(|s| s.reveal().to_owned())
            .or_else(|| application_token.then(|| "sample-source-provider-token".to_owned()));
        let application = hook
            .application
            .as_ref()
            .map_or("my-app".to_owned(), |a| a.code.to_string());
        let environment = hook
            .environment
            .as_ref()
            .map_or("production".to_owned(), |e| e.code.to_string());
        let id = "00000000-0000-0000-0000-000000000000";
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let (url, api_url) = links(public_url, id);
        let at = "2026-01-01T00:00:00Z";
        Self(json!({
            "event": HookEvent::DeploymentSucceeded.as_str(),
            "delivery": {"id": id, "attempt": 1},
            "hook": {"id": hook.id.to_string(), "name": hook.name},
            "deployment": {
                "id": id, "status": "success", "previous_status": "running",
                "provider": "generic", "provider_status": "success", "external_id": "1",
                "commit_sha": sha, "commit_message": "Sample change (fixes #1)",
                "commit_timestamp": at, "ref": "refs/heads/main", "branch": "main",
                "run_url": "https://ci.example.com/runs/1", "deployed_by": "shiplog",
                "build_number": "1", "image": "registry.example.com/app:1",
                "logs_url": "https://ci.example.com/runs/1/logs",
                "started_at": at, "finished_at": at, "rework": null, "url": url,
                "api_url": api_url,
            },
            "application": {
                "id": hook.application.as_ref().map_or(id.to_owned(), |a| a.id.to_string()),
                "code": application, "name": application,
                "repo": "github.com/example/app", "repository": "example/app",
                "source_provider": {"access_token": access_token},
            },
            "environment": {
                "id": id, "code": environment, "name": environment, "kind": "production",
                "url": "https://example.com",
            },
            "project": {"id": hook.project.id.to_string(), "slug": hook.project.code.as_str(), "name": hook.project.code.as_str()},
            "action": {
                "id": id, "type": hook.action_type, "status": "completed", "url": url,
                "triggered_from": {"hook_parsed_variables": {"commit_hash": sha}},
            },
            "status": status_words(DeploymentStatus::Success),
            "secrets": secrets(hook),
        }))
    }

    /// The values as JSON, for tests.
    #[cfg(test)]
    pub(crate) fn as_json(&self) -> &Value {
        &self.0
    }

    /// Marks sample variables as a test send with this delivery id.
    pub fn set_test(&mut self, delivery: &str) {
        if let Some(map) = self.0.as_object_mut() {
            map.insert("event".to_owned(), Value::String("hook.test".to_owned()));
            map.insert("delivery".to_owned(), json!({"id": delivery, "attempt": 1}));
        }
    }

    /// The standard envelope sent when a hook has no body template.
    fn envelope(&self, timestamp: &str) -> Value {
        let pick = |key: &str| self.0.get(key).cloned().unwrap_or(Value::Null);
        json!({
            "type": pick("event"),
            "timestamp": timestamp,
            "data": {
                "deployment": pick("deployment"),
                "application": {
                    "id": self.0.pointer("/application/id"),
                    "code": self.0.pointer("/application/code"),
                    "name": self.0.pointer("/application/name"),
                    "repo": self.0.pointer("/application/repo"),
                },
                "environment": pick("environment"),
                "project": pick("project"),
            },
        })
    }
}

/// A hook's request, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The target URL.
    pub url: SecretText,
    /// Header names and values.
    pub headers: Vec<(String, SecretText)>,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// The instructions one request's templates may run, all fields together.
pub const MAX_FUEL: u64 = 50_000;
/// The longest rendered field (URL, header value or body string).
pub const MAX_FIELD_BYTES: usize = 64 * 1024;
/// The most one request's rendered fields may add up to.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// The statements a template may use; `set`, `macro`, `with` and the like could build values
/// that grow with every statement.
const ALLOWED_STATEMENTS: &[&str] = &["if", "elif", "else", "endif", "for", "endfor"];

/// A `replace` that refuses to produce more than [`MAX_FIELD_BYTES`] (chained, minijinja's own
/// would grow a value exponentially before anything is written).
fn bounded_replace(value: String, from: String, to: String) -> Result<String, TemplateError> {
    let grows = to.len().saturating_sub(from.len());
    let count = if from.is_empty() {
        value.chars().count().saturating_add(1)
    } else {
        value.matches(from.as_str()).count()
    };
    if value.len().saturating_add(grows.saturating_mul(count)) > MAX_FIELD_BYTES {
        return Err(TemplateError::new(
            ErrorKind::InvalidOperation,
            format!("replace would produce more than {MAX_FIELD_BYTES} bytes"),
        ));
    }
    Ok(value.replace(from.as_str(), &to))
}

/// Refuses statements other than [`ALLOWED_STATEMENTS`].
fn check_statements(source: &str) -> Result<(), String> {
    for block in source.split("{%").skip(1) {
        let keyword: String = block
            .trim_start_matches(['-', '+'])
            .trim_start()
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        if !ALLOWED_STATEMENTS.contains(&keyword.as_str()) {
            return Err(format!(
                "uses the statement {{% {keyword} %}}, which hook templates may not: use if and for only"
            ));
        }
    }
    Ok(())
}

/// A writer that refuses to hold more than `limit` bytes.
struct Bounded {
    out: Vec<u8>,
    limit: usize,
    exceeded: bool,
}

impl Write for Bounded {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.out.len().saturating_add(bytes.len()) > self.limit {
            self.exceeded = true;
            return Err(std::io::Error::other("output limit"));
        }
        self.out.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What one request's rendering has left to spend.
struct Budget {
    fuel: u64,
    bytes: usize,
    /// Bytes of values the request's templates could build so far ([`super::cost`]).
    work: usize,
}

impl Budget {
    fn new() -> Self {
        Self {
            fuel: MAX_FUEL,
            bytes: MAX_REQUEST_BYTES,
            work: 0,
        }
    }

    /// Renders one field's template within what is left.
    fn render(&mut self, source: &str, variables: &Value, field: &str) -> Result<String, String> {
        check_statements(source).map_err(|why| format!("{field} {why}"))?;
        let work = super::cost::check(source, variables, self.work)
            .map_err(|why| format!("{field} {why}"))?;
        self.work = self.work.saturating_add(work);
        let mut env = environment();
        env.set_fuel(Some(self.fuel.max(1)));
        let template = env
            .template_from_str(source)
            .map_err(|e| format!("{field}: {e}"))?;
        let limit = MAX_FIELD_BYTES.min(self.bytes);
        let mut out = Bounded {
            out: Vec::new(),
            limit,
            exceeded: false,
        };
        let result = template.render_captured_to(variables, &mut out);
        if out.exceeded {
            return Err(if limit < MAX_FIELD_BYTES {
                format!(
                    "{field}: the request's rendered fields exceed {MAX_REQUEST_BYTES} bytes together"
                )
            } else {
                format!("{field}: renders more than {MAX_FIELD_BYTES} bytes")
            });
        }
        let captured = result.map_err(|e| {
            if e.kind() == ErrorKind::OutOfFuel {
                format!(
                    "{field}: the request's templates run more than {MAX_FUEL} instructions \
                     together (a loop too long?)"
                )
            } else {
                format!("{field}: {e}")
            }
        })?;
        if let Some((consumed, _)) = captured.state().fuel_levels() {
            self.fuel = self.fuel.saturating_sub(consumed);
        }
        self.bytes = self.bytes.saturating_sub(out.out.len());
        String::from_utf8(out.out).map_err(|_| format!("{field}: renders invalid UTF-8"))
    }
}

fn environment() -> Environment<'static> {
    // Only what a hook needs, and nothing whose output can outgrow its input.
    let mut env = Environment::empty();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_filter("lower", minijinja::filters::lower);
    env.add_filter("upper", minijinja::filters::upper);
    env.add_filter("capitalize", minijinja::filters::capitalize);
    env.add_filter("title", minijinja::filters::title);
    env.add_filter("trim", minijinja::filters::trim);
    env.add_filter("length", minijinja::filters::length);
    env.add_filter("first", minijinja::filters::first);
    env.add_filter("last", minijinja::filters::last);
    env.add_filter("default", minijinja::filters::default);
    env.add_filter("d", minijinja::filters::default);
    env.add_filter("int", minijinja::filters::int);
    env.add_filter("string", minijinja::filters::string);
    env.add_filter("replace", bounded_replace);
    env.add_test("defined", minijinja::tests::is_defined);
    env.add_test("undefined", minijinja::tests::is_undefined);
    env.add_test("none", minijinja::tests::is_none);
    env.add_test("string", minijinja::tests::is_string);
    env.add_test("number", minijinja::tests::is_number);
    // A field without a value renders as nothing (minijinja would write "none").
    env.set_formatter(|out, state, value| {
        if value.is_none() {
            Ok(())
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    env
}

/// Renders a hook's request. `timestamp` goes into the standard envelope.
pub fn render(hook: &Hook, variables: &Variables, timestamp: &str) -> Result<Rendered, String> {
    let mut budget = Budget::new();
    let mut one = |source: &str, field: &str| budget.render(source, &variables.0, field);
    let url = one(&hook.request.target_url, "target_url")?;
    let mut headers = Vec::with_capacity(hook.request.headers.len());
    for header in &hook.request.headers {
        let value = one(
            header.value.reveal(),
            &format!("settings.request_headers.{}", header.name),
        )?;
        if value.contains(['\r', '\n']) {
            return Err(format!(
                "settings.request_headers.{}: the rendered value contains a line break",
                header.name
            ));
        }
        headers.push((header.name.clone(), SecretText::new(value)));
    }
    let body = match &hook.request.body {
        Some(template) => render_value(template, &mut |s, path| {
            one(s, &format!("settings.request_body{path}"))
        })?,
        None => variables.envelope(timestamp),
    };
    let body = serde_json::to_vec(&body).map_err(|e| format!("settings.request_body: {e}"))?;
    Ok(Rendered {
        url: SecretText::new(url.trim().to_owned()),
        headers,
        body,
    })
}

/// Renders every string inside a JSON value (keys stay as written).
fn render_value(
    value: &Value,
    render: &mut dyn FnMut(&str, &str) -> Result<String, String>,
) -> Result<Value, String> {
    fn walk(
        value: &Value,
        path: &mut String,
        render: &mut dyn FnMut(&str, &str) -> Result<String, String>,
    ) -> Result<Value, String> {
        Ok(match value {
            Value::String(s) => Value::String(render(s, path)?),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    out.push(walk(item, path, render)?);
                    path.truncate(len);
                }
                Value::Array(out)
            }
            Value::Object(fields) => {
                let mut out = Map::new();
                for (key, item) in fields {
                    let len = path.len();
                    path.push('.');
                    path.push_str(key);
                    out.insert(key.clone(), walk(item, path, render)?);
                    path.truncate(len);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }
    walk(value, &mut String::new(), render)
}

/// Every template of a hook with the field it sits in.
fn templates(hook: &Hook) -> Vec<(String, String)> {
    let mut all = vec![("target_url".to_owned(), hook.request.target_url.clone())];
    for header in &hook.request.headers {
        all.push((
            format!("settings.request_headers.{}", header.name),
            header.value.reveal().to_owned(),
        ));
    }
    if let Some(body) = &hook.request.body {
        let _ = render_value(body, &mut |s, path| {
            all.push((format!("settings.request_body{path}"), s.to_owned()));
            Ok(String::new())
        });
    }
    all
}

/// Whether `path` (as a template names it, dotted) is a documented variable, an object holding
/// some, or one of the hook's secrets.
fn known(path: &str, hook: &Hook) -> bool {
    if let Some(name) = path.strip_prefix("secrets.") {
        let name = name.split('.').next().unwrap_or_default();
        return hook.secrets.contains_key(name);
    }
    VARIABLES.iter().any(|(variable, _)| {
        *variable == path
            || variable
                .strip_prefix(path)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// Checks every template of a hook: it compiles, names only documented variables (and the
/// hook's own secrets), and renders against `sample`. Returns the sample rendering.
pub fn validate(
    hook: &Hook,
    sample: &Variables,
    application_token: bool,
) -> Result<Rendered, AppError> {
    let env = environment();
    for (field, source) in templates(hook) {
        let top = field_of(&field);
        check_statements(&source)
            .map_err(|why| AppError::invalid(top, format!("{field} {why}")))?;
        // Before compiling: minijinja folds constants (`'x' * 100000000`) while it compiles.
        super::cost::check(&source, &sample.0, 0)
            .map_err(|why| AppError::invalid(top, format!("{field} {why}")))?;
        let template = env
            .template_from_str(&source)
            .map_err(|e| AppError::invalid(top, format!("{field} is not a valid template: {e}")))?;
        let mut used: Vec<String> = template.undeclared_variables(true).into_iter().collect();
        used.sort();
        for path in used {
            if path == "application.source_provider.access_token"
                && !hook.secrets.contains_key(ACCESS_TOKEN)
                && !application_token
            {
                return Err(AppError::invalid(
                    top,
                    format!(
                        "{field} uses application.source_provider.access_token, which has no \
                         value: store the application's token (PUT \
                         /api/v1/applications/{{id}}/source-provider {{\"provider\": \"github\", \
                         \"access_token\": \"…\"}}) and scope the hook to that application, or \
                         give the hook a secret named access_token (\"secrets\": \
                         {{\"access_token\": \"…\"}})"
                    ),
                ));
            }
            if !known(&path, hook) {
                let hint = if path.starts_with("secrets.") {
                    "add it to the hook's \"secrets\", or fix the name"
                } else {
                    "see docs/hooks.md for the variables, e.g. deployment.commit_sha or action.url"
                };
                return Err(AppError::invalid(
                    top,
                    format!("{field} uses unknown variable {path}: {hint}"),
                ));
            }
        }
    }
    render(hook, sample, "2026-01-01T00:00:00Z").map_err(|e| {
        let top = field_of(&e);
        AppError::invalid(top, e)
    })
}

/// The API field a template path belongs to.
fn field_of(path: &str) -> &'static str {
    if path.starts_with("settings.request_headers") {
        "settings.request_headers"
    } else if path.starts_with("settings.request_body") {
        "settings.request_body"
    } else {
        "target_url"
    }
}
