//! Ingesting one pipeline event: the single command every compatible API is translated into.
//!
//! Flow: an adapter builds an [`IngestCommand`] from its wire format → [`App::ingest`] checks the
//! caller, resolves the project, normalizes the status, parses references, derives the
//! deployment's idempotency key and the event's fingerprint, and hands an [`IngestPlan`] to
//! [`DeploymentStore::ingest`](crate::ports::DeploymentStore::ingest) → the store, inside one
//! transaction, loads the deployment by key and calls [`decide`] to learn what to write.
//!
//! Idempotency has two levels:
//! - the **event fingerprint** (SHA-256 of the normalized content, not of when it arrived):
//!   the same event sent twice is recorded once and answered the same way;
//! - the **deployment key**: every event with the same key updates one deployment. Hivel's
//!   `deployment_id` is such a key and is *exclusive* (one payload per key; another payload is a
//!   conflict). Without an explicit key, events of one run share a key derived from the project,
//!   application, environment and run URL (else the commit).

use shiplog_domain::environment::EnvironmentKind;
use shiplog_domain::event::{Phase, PipelineEvent};
use shiplog_domain::ids::{
    ApplicationCode, CommitSha, EnvironmentCode, Fingerprint, IdempotencyKey,
};
use shiplog_domain::lifecycle::Observation;
use shiplog_domain::reference;
use shiplog_domain::reference::{Reference, ReferenceKey, parse_references};
use shiplog_domain::repo::RepoIdentity;
use shiplog_domain::status::{DeploymentStatus, Provider, ProviderStatus};
use shiplog_domain::timestamp::Timestamp;

use crate::App;
use crate::auth::{Capability, Principal};
use crate::error::AppError;
use crate::ids::{ApplicationId, DeploymentId, EnvironmentId, EventId, ProjectId, WorkspaceId};
use crate::model::{DeploymentFields, Project, ProjectLookup};

mod decide;

pub use decide::{Decision, IdempotencyConflict, StatusTransition, StoredDeployment, decide};

/// The longest commit message kept.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;
/// The longest other text field.
pub const MAX_FIELD_LEN: usize = 2048;
/// The longest provider status word kept.
pub const MAX_STATUS_LEN: usize = 200;

/// Which application an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplicationRef {
    /// The project's default application, named like the project (Clienwork events).
    ProjectDefault,
    /// By code (Envtracker `repoCode`, Clienwork `application`).
    Code(ApplicationCode),
    /// By repository (Hivel `repo_url`, Clienwork `repo_url`).
    Repo(RepoIdentity),
}

/// Which environment an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentRef {
    /// The code or free name sent (`production`, `Production EU`).
    pub name: String,
    /// Create it on first use (Clienwork, Hivel) or require it to exist (Envtracker).
    pub create_if_missing: bool,
    /// Its kind when the sender says (GitLab's environment tier); else guessed from the name.
    pub kind: Option<shiplog_domain::environment::EnvironmentKind>,
}

/// How events of one deployment are recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Correlation {
    /// The client names the deployment. `exclusive`: one payload per key (Hivel), a different
    /// payload is a conflict.
    Explicit {
        /// The key.
        key: IdempotencyKey,
        /// Whether the key stands for exactly one payload.
        exclusive: bool,
    },
    /// Derived from project, application, environment and run URL, else commit.
    Run,
}

/// One event, in shiplog's terms. Adapters fill it from their wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestCommand {
    /// The project; `None` means "from the key's scope, else from the repository".
    pub project: Option<ProjectLookup>,
    /// The application.
    pub application: ApplicationRef,
    /// Create the application on first use.
    pub create_application: bool,
    /// The environment (required for deploy events).
    pub environment: Option<EnvironmentRef>,
    /// Which event.
    pub event: PipelineEvent,
    /// Who sent it.
    pub provider: Provider,
    /// The provider's status word; `None` takes the event's default.
    pub status: Option<String>,
    /// How its deployment is recognised.
    pub correlation: Correlation,
    /// Descriptive fields.
    pub fields: DeploymentFields,
    /// When the deployment started, if said.
    pub started_at: Option<Timestamp>,
    /// When it finished, if said.
    pub finished_at: Option<Timestamp>,
    /// Pull-request numbers sent explicitly (Hivel `pr_number`, `pr_numbers`).
    pub pull_requests: Vec<u64>,
    /// The event reports a finished run, so a non-terminal status word (`running`, `queued`)
    /// says nothing about its result and is recorded as `unknown` (Hivel's v2 events). The raw
    /// word is kept either way.
    pub terminal_only: bool,
    /// The sender marks the deployment as rework (a hotfix, a rollback): it stays marked
    /// whatever its later events say.
    pub rework: bool,
}

impl IngestCommand {
    /// A command with only the required parts; adapters fill the rest.
    pub fn new(event: PipelineEvent, provider: Provider, application: ApplicationRef) -> Self {
        Self {
            project: None,
            application,
            create_application: true,
            environment: None,
            event,
            provider,
            status: None,
            correlation: Correlation::Run,
            fields: DeploymentFields::default(),
            started_at: None,
            finished_at: None,
            pull_requests: Vec::new(),
            terminal_only: false,
            rework: false,
        }
    }
}

/// The application the store must find (by code) or create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationTarget {
    /// Its code.
    pub code: ApplicationCode,
    /// Its name, if created.
    pub name: String,
    /// Its repository, recorded when known.
    pub repo: Option<RepoIdentity>,
    /// Whether it may be created.
    pub create_if_missing: bool,
    /// Its id, if created.
    pub new_id: ApplicationId,
}

/// The environment the store must find (by code) or create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentTarget {
    /// Its code.
    pub code: EnvironmentCode,
    /// Its name, if created.
    pub name: String,
    /// Its kind, if created (guessed from the name).
    pub kind: EnvironmentKind,
    /// Whether it may be created.
    pub create_if_missing: bool,
    /// Its id, if created.
    pub new_id: EnvironmentId,
}

/// The event row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPlan {
    /// Its id, if recorded.
    pub id: EventId,
    /// Which event.
    pub event: PipelineEvent,
    /// The provider and its status word.
    pub status: ProviderStatus,
    /// Whether the event carried a status word.
    pub status_sent: bool,
    /// The commit.
    pub commit_sha: Option<CommitSha>,
    /// When it happened, by the provider's account (else when it arrived).
    pub occurred_at: Timestamp,
    /// When it arrived.
    pub received_at: Timestamp,
    /// Its content hash; an event with a stored fingerprint is a duplicate.
    pub fingerprint: Fingerprint,
}

/// The deployment side of a deploy event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentPlan {
    /// Its id, if created.
    pub new_id: DeploymentId,
    /// Its idempotency key (unique per workspace).
    pub key: IdempotencyKey,
    /// Whether the key stands for exactly one payload.
    pub exclusive: bool,
    /// The status this event observed.
    pub observation: Observation,
    /// Descriptive fields from this event.
    pub fields: DeploymentFields,
    /// References from this event.
    pub references: Vec<Reference>,
    /// Whether this event marks it as rework.
    pub marked_rework: bool,
    /// Its project's hotfix patterns, which its branch and ref are matched against.
    pub hotfix_patterns: Vec<String>,
}

/// Everything the store needs to apply one event atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestPlan {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The project.
    pub project: ProjectId,
    /// The application.
    pub application: ApplicationTarget,
    /// The environment, if the event names one.
    pub environment: Option<EnvironmentTarget>,
    /// The event.
    pub event: EventPlan,
    /// The deployment, for deploy events.
    pub deployment: Option<DeploymentPlan>,
    /// Whether a status change raises the project's hooks: yes for what happens now, no for
    /// imported history (a hook would report a years-old deployment as news).
    pub raise_hooks: bool,
}

/// What the store answers; also what a duplicate gets again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestReceipt {
    /// The recorded event (the first one, for a duplicate).
    pub event: EventId,
    /// The deployment it created or updated.
    pub deployment: Option<DeploymentId>,
    /// The deployment's status after the event.
    pub status: Option<DeploymentStatus>,
    /// Whether the event had been recorded before (nothing was written).
    pub duplicate: bool,
    /// Whether the deployment was created by this event.
    pub created: bool,
    /// The references this event linked.
    pub linked_references: Vec<ReferenceKey>,
    /// How many more distinct references the event named than it could link
    /// ([`reference::MAX_REFERENCES`] per deployment); the store leaves it 0 and the use case
    /// fills it in.
    pub references_not_linked: usize,
}

/// How far ahead of the server's clock a client's time may be (clock skew) before it is refused.
pub const MAX_FUTURE_SKEW_SECONDS: i64 = 86_400;

/// Refuses a time more than [`MAX_FUTURE_SKEW_SECONDS`] after `now`.
pub(crate) fn not_in_the_future(
    field: &'static str,
    at: Option<Timestamp>,
    now: Timestamp,
) -> Result<(), AppError> {
    let limit = now
        .unix_micros()
        .saturating_add(MAX_FUTURE_SKEW_SECONDS.saturating_mul(1_000_000));
    match at {
        Some(at) if at.unix_micros() > limit => Err(AppError::invalid(
            field,
            format!(
                "{} is more than a day ahead of the server's clock ({}): send the real time",
                at.to_rfc3339(),
                now.to_rfc3339()
            ),
        )),
        _ => Ok(()),
    }
}

/// A trimmed text field of at most `max` bytes; a one-line field (all but the commit message)
/// holds no control or bidirectional formatting character.
fn bounded(
    field: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, AppError> {
    let v = text(field, value, max)?;
    if let Some(v) = &v {
        AppError::check_line(field, v)?;
    }
    Ok(v)
}

fn text(
    field: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, AppError> {
    match value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        Some(v) if v.len() > max => Err(AppError::invalid(
            field,
            format!("is {} bytes long; send at most {max}", v.len()),
        )),
        Some(v) => AppError::check_text(field, &v).map(|()| Some(v)),
        None => Ok(None),
    }
}

fn validate_fields(fields: DeploymentFields) -> Result<DeploymentFields, AppError> {
    let git_ref = bounded("ref", fields.git_ref, MAX_FIELD_LEN)?;
    let branch = bounded("branch", fields.branch, MAX_FIELD_LEN)?.or_else(|| {
        git_ref
            .as_deref()
            .and_then(|r| r.strip_prefix("refs/heads/"))
            .map(str::to_owned)
    });
    Ok(DeploymentFields {
        external_id: bounded("external_id", fields.external_id, MAX_FIELD_LEN)?,
        commit_sha: fields.commit_sha,
        commit_message: text("commit_message", fields.commit_message, MAX_MESSAGE_LEN)?,
        commit_timestamp: fields.commit_timestamp,
        git_ref,
        branch,
        run_url: bounded("url", fields.run_url, MAX_FIELD_LEN)?,
        deployed_by: bounded("deployed_by", fields.deployed_by, MAX_FIELD_LEN)?,
        build_number: bounded("build_number", fields.build_number, MAX_FIELD_LEN)?,
        image: bounded("image", fields.image, MAX_FIELD_LEN)?,
        logs_url: bounded("logs_url", fields.logs_url, MAX_FIELD_LEN)?,
    })
}

/// A field for the fingerprint: `None` and `Some("")` must differ.
fn part(value: Option<&str>) -> String {
    value.map_or_else(|| "\u{0}".to_owned(), |v| format!("={v}"))
}

fn time_part(value: Option<Timestamp>) -> String {
    part(value.map(|t| t.to_rfc3339()).as_deref())
}

impl App {
    /// Records one pipeline event; the receipt is returned only once it is durably committed.
    pub async fn ingest(
        &self,
        caller: &Principal,
        command: IngestCommand,
    ) -> Result<IngestReceipt, AppError> {
        caller.require(Capability::Ingest, "send pipeline events")?;
        let (plan, references_not_linked) = self.plan_ingest(caller, command).await?;
        let mut receipt = self.ports.deployments.ingest(plan).await?;
        receipt.references_not_linked = references_not_linked;
        if receipt.deployment.is_some() && !receipt.duplicate {
            self.notifier.deployments_changed(caller.workspace);
        }
        Ok(receipt)
    }

    /// What the store must apply for one event, checked and resolved, and how many references
    /// it named beyond those it can link. The caller checked the capability.
    pub(crate) async fn plan_ingest(
        &self,
        caller: &Principal,
        command: IngestCommand,
    ) -> Result<(IngestPlan, usize), AppError> {
        let received_at = self.ports.clock.now();
        let fields = validate_fields(command.fields)?;
        not_in_the_future("started_at", command.started_at, received_at)?;
        not_in_the_future("finished_at", command.finished_at, received_at)?;
        not_in_the_future("commit_timestamp", fields.commit_timestamp, received_at)?;
        if let (Some(start), Some(finish)) = (command.started_at, command.finished_at)
            && start > finish
        {
            return Err(AppError::StartAfterFinish);
        }
        if command.event.is_deploy() && command.environment.is_none() {
            return Err(AppError::MissingField {
                field: "environment",
                hint: "deploy events name their environment, like \"production\"",
            });
        }
        let project = self
            .resolve_ingest_project(caller, command.project.as_ref(), &command.application)
            .await?;

        let application = self
            .application_target(
                caller,
                &project,
                &command.application,
                command.create_application,
            )
            .await?;
        let environment = match &command.environment {
            None => None,
            Some(env) => Some(self.environment_target(env)?),
        };

        let status_sent = command
            .status
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty());
        bounded("status", command.status.clone(), MAX_STATUS_LEN)?;
        let mut status = match command.status.as_deref().filter(|_| status_sent) {
            Some(raw) => ProviderStatus::new(command.provider, raw),
            None => ProviderStatus {
                provider: command.provider,
                raw: String::new(),
                status: command.event.default_status(),
            },
        };
        if command.terminal_only && !status.status.is_terminal() {
            status.status = DeploymentStatus::Unknown;
        }

        let named = parse_references(fields.commit_message.as_deref().unwrap_or_default());
        let mut references = Vec::new();
        let mut references_not_linked = 0usize;
        let pull_requests = command.pull_requests.iter().map(|number| Reference {
            key: ReferenceKey::pull_request(*number),
            closing: false,
        });
        for r in named.into_iter().chain(pull_requests) {
            if !reference::add(&mut references, r.key, r.closing) {
                references_not_linked += 1;
            }
        }

        let explicit_key = match &command.correlation {
            Correlation::Explicit { key, .. } => Some(key.as_str()),
            Correlation::Run => None,
        };
        let env_code = environment.as_ref().map(|e| e.code.as_str());
        let pr_list = command
            .pull_requests
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        // A mark is part of the event's content (appended only when set, so the fingerprints of
        // events recorded before marks existed are unchanged).
        let parts = [
            "v1",
            &project.id.to_string(),
            application.code.as_str(),
            &part(env_code),
            command.event.as_str(),
            command.provider.as_str(),
            &part(status_sent.then_some(status.raw.as_str())),
            &part(explicit_key),
            &part(fields.external_id.as_deref()),
            &part(fields.commit_sha.as_ref().map(CommitSha::as_str)),
            &part(fields.commit_message.as_deref()),
            &time_part(fields.commit_timestamp),
            &part(fields.git_ref.as_deref()),
            &part(fields.branch.as_deref()),
            &part(fields.run_url.as_deref()),
            &part(fields.deployed_by.as_deref()),
            &part(fields.build_number.as_deref()),
            &part(fields.image.as_deref()),
            &part(fields.logs_url.as_deref()),
            &time_part(command.started_at),
            &time_part(command.finished_at),
            &pr_list,
        ];
        let fingerprint = if command.rework {
            Fingerprint::of(&[&parts[..], &["rework"]].concat())
        } else {
            Fingerprint::of(&parts)
        };

        let occurred_at = match command.event.phase {
            Phase::Completed => command.finished_at.or(command.started_at),
            Phase::Started => command.started_at,
        }
        .unwrap_or(received_at);

        let event = EventPlan {
            id: EventId::from_uuid(self.ports.ids.uuid()),
            event: command.event,
            status: status.clone(),
            status_sent,
            commit_sha: fields.commit_sha.clone(),
            occurred_at,
            received_at,
            fingerprint: fingerprint.clone(),
        };

        let deployment = if command.event.is_deploy() {
            let (key, exclusive) = match command.correlation {
                Correlation::Explicit { key, exclusive } => (key, exclusive),
                Correlation::Run => {
                    let run = match (&fields.run_url, &fields.commit_sha) {
                        (Some(url), _) => format!("run={url}"),
                        (None, Some(sha)) => format!("commit={sha}"),
                        (None, None) => format!("event={fingerprint}"),
                    };
                    let key = IdempotencyKey::derived(&[
                        &project.id.to_string(),
                        application.code.as_str(),
                        env_code.unwrap_or_default(),
                        &run,
                    ]);
                    (key, false)
                }
            };
            let observation = Observation {
                status: status.status,
                provider_status: status.raw.clone(),
                at: occurred_at,
                started_at: command
                    .started_at
                    .or_else(|| (command.event.phase == Phase::Started).then_some(occurred_at)),
                finished_at: command.finished_at,
            };
            Some(DeploymentPlan {
                new_id: DeploymentId::from_uuid(self.ports.ids.uuid()),
                key,
                exclusive,
                observation,
                fields,
                references,
                marked_rework: command.rework,
                hotfix_patterns: project.hotfix_patterns(),
            })
        } else {
            None
        };

        let plan = IngestPlan {
            workspace: caller.workspace,
            project: project.id,
            application,
            environment,
            event,
            deployment,
            raise_hooks: true,
        };
        Ok((plan, references_not_linked))
    }

    /// The project named, else the key's project, else the one project that registered the
    /// repository.
    pub(crate) async fn resolve_ingest_project(
        &self,
        caller: &Principal,
        lookup: Option<&ProjectLookup>,
        application: &ApplicationRef,
    ) -> Result<Project, AppError> {
        if let Some(project) = self.named_or_scoped_project(caller, lookup).await? {
            return Ok(project);
        }
        let ApplicationRef::Repo(repo) = application else {
            return Err(AppError::ProjectRequired(
                "this request names no project: send project_slug (or project_id), or use a key limited to one project".to_owned(),
            ));
        };
        let registered = self
            .ports
            .applications
            .by_repo(caller.workspace, repo)
            .await?;
        let mut projects: Vec<ProjectId> = registered.iter().map(|a| a.project).collect();
        projects.sort_unstable();
        projects.dedup();
        match projects.as_slice() {
            [] => Err(AppError::ProjectRequired(format!(
                "no application is registered for repository {repo}: use an API key limited to one project (its applications are created on first use), or register the application first"
            ))),
            [only] => {
                self.visible_project(caller, &ProjectLookup::Id(*only))
                    .await
            }
            several => {
                let mut slugs = Vec::new();
                for id in several {
                    if let Some(p) = self
                        .ports
                        .projects
                        .get(caller.workspace, &ProjectLookup::Id(*id))
                        .await?
                    {
                        slugs.push(p.slug.to_string());
                    }
                }
                Err(AppError::ApplicationAmbiguous {
                    repo: repo.to_string(),
                    projects: slugs.join(", "),
                })
            }
        }
    }

    /// The project the request names, else the one the caller's key is limited to; `None` when
    /// neither says.
    pub(crate) async fn named_or_scoped_project(
        &self,
        caller: &Principal,
        lookup: Option<&ProjectLookup>,
    ) -> Result<Option<Project>, AppError> {
        let lookup = match (lookup, caller.project) {
            (Some(named), _) => named.clone(),
            (None, Some(only)) => ProjectLookup::Id(only),
            (None, None) => return Ok(None),
        };
        self.visible_project(caller, &lookup).await.map(Some)
    }

    /// A project of the caller's workspace that the caller may see; anything else is not found.
    pub(crate) async fn visible_project(
        &self,
        caller: &Principal,
        lookup: &ProjectLookup,
    ) -> Result<Project, AppError> {
        let not_found = || {
            AppError::ProjectNotFound(match lookup {
                ProjectLookup::Id(id) => id.to_string(),
                ProjectLookup::Slug(slug) => slug.to_string(),
            })
        };
        let project = self
            .ports
            .projects
            .get(caller.workspace, lookup)
            .await?
            .ok_or_else(not_found)?;
        if caller.sees(project.id) {
            Ok(project)
        } else {
            Err(not_found())
        }
    }

    async fn application_target(
        &self,
        caller: &Principal,
        project: &Project,
        application: &ApplicationRef,
        create: bool,
    ) -> Result<ApplicationTarget, AppError> {
        let new_id = ApplicationId::from_uuid(self.ports.ids.uuid());
        let target =
            |code: ApplicationCode, name: String, repo: Option<RepoIdentity>| ApplicationTarget {
                code,
                name,
                repo,
                create_if_missing: create,
                new_id,
            };
        Ok(match application {
            ApplicationRef::ProjectDefault => {
                let code = ApplicationCode::parse(project.slug.as_str())
                    .map_err(|e| AppError::invalid("application", e.to_string()))?;
                target(code, project.name.clone(), None)
            }
            ApplicationRef::Code(code) => target(code.clone(), code.to_string(), None),
            ApplicationRef::Repo(repo) => {
                let registered = self
                    .ports
                    .applications
                    .by_repo(caller.workspace, repo)
                    .await?;
                match registered.into_iter().find(|a| a.project == project.id) {
                    Some(app) => target(app.code, app.name, Some(repo.clone())),
                    None => {
                        let code = ApplicationCode::from_name(repo.name())
                            .map_err(|e| AppError::invalid("repo_url", e.to_string()))?;
                        target(code, repo.name().to_owned(), Some(repo.clone()))
                    }
                }
            }
        })
    }

    fn environment_target(&self, env: &EnvironmentRef) -> Result<EnvironmentTarget, AppError> {
        let name = env.name.trim();
        if name.is_empty() {
            return Err(AppError::MissingField {
                field: "environment",
                hint: "send the environment code, like \"production\"",
            });
        }
        AppError::check_line("environment", name)?;
        if name.len() > 200 {
            return Err(AppError::invalid(
                "environment",
                "send at most 200 characters",
            ));
        }
        let code = if env.create_if_missing {
            EnvironmentCode::from_name(name)
        } else {
            EnvironmentCode::parse(name)
        }
        .map_err(|e| AppError::invalid("environment", e.to_string()))?;
        Ok(EnvironmentTarget {
            kind: env.kind.unwrap_or_else(|| EnvironmentKind::guess(name)),
            name: name.to_owned(),
            code,
            create_if_missing: env.create_if_missing,
            new_id: EnvironmentId::from_uuid(self.ports.ids.uuid()),
        })
    }
}

#[cfg(test)]
mod tests;
