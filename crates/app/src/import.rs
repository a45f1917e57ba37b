//! Importing history: past deployments, one record each, from a file or another system.
//!
//! A record becomes the same [`IngestCommand`] a live event does, so it is normalized,
//! validated, linked to the change requests its message names and deduplicated exactly as one:
//! the same record twice is one deployment (its fingerprint), and a record of a deployment also
//! sent live is that deployment (its key, [`record_key`]). Records are planned one by one and
//! written in batches ([`DeploymentStore::ingest_many`](crate::ports::DeploymentStore::ingest_many)):
//! a record refused, by the checks here or by the store, is reported by its line and nothing of
//! it is written; the other records of its batch are. Imported history raises no hooks.

use shiplog_domain::event::PipelineEvent;
use shiplog_domain::ids::{ApplicationCode, CommitSha, IdempotencyKey};
use shiplog_domain::status::{Provider, ProviderStatus};
use shiplog_domain::timestamp::Timestamp;

use crate::App;
use crate::auth::{Capability, Principal};
use crate::error::{AppError, ErrorKind};
use crate::ingest::{ApplicationRef, Correlation, EnvironmentRef, IngestCommand, IngestPlan};
use crate::model::{DeploymentFields, ProjectLookup};

/// How many refused lines an outcome lists; beyond that it only counts them.
pub const MAX_LISTED_REJECTIONS: usize = 1000;

/// One deployment of the history, as a sender describes it. Every field but `application`,
/// `environment` and `status` may be left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportRecord {
    /// The project's slug; none: the one the key is limited to.
    pub project: Option<String>,
    /// The application's code or name.
    pub application: Option<String>,
    /// The environment's code or name (created on first use).
    pub environment: Option<String>,
    /// The outcome, in any provider's words (`success`, `failure`, `error`, `canceled`...).
    pub status: Option<String>,
    /// Whose words `status` is in (`github`, `gitlab`, `jenkins`...); none: shiplog's own.
    pub provider: Option<String>,
    /// When it started.
    pub started_at: Option<Timestamp>,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// The deployed commit.
    pub commit_sha: Option<String>,
    /// When that commit was made (where lead time starts at the latest).
    pub commit_timestamp: Option<Timestamp>,
    /// The Git ref.
    pub git_ref: Option<String>,
    /// The branch.
    pub branch: Option<String>,
    /// The commit message; the change requests it names are linked.
    pub commit_message: Option<String>,
    /// The run's or the deployment's address.
    pub url: Option<String>,
    /// Who deployed.
    pub deployed_by: Option<String>,
    /// The version or build number.
    pub version: Option<String>,
    /// The deployment's id where it comes from: the idempotency key ([`record_key`]).
    pub external_id: Option<String>,
    /// Which live channel also reports this deployment, so its key is theirs ([`Source`]).
    pub source: Option<String>,
    /// For a `source`: the repository (`owner/name`) or GitLab project path it belongs to.
    pub repository: Option<String>,
    /// For `source` `github-run`: the run's attempt (default 1).
    pub run_attempt: Option<u32>,
    /// A hotfix or rollback, by the sender's account.
    pub rework: bool,
}

/// The live channels whose keys an imported record can share, so that a deployment both
/// imported and sent live is one deployment whichever arrives first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A GitHub deployment (`external_id`: its id), as GitHub's `deployment_status` webhook
    /// keys it.
    GithubDeployment,
    /// A GitHub Actions workflow run (`external_id`: its id, `run_attempt`), as the
    /// `workflow_run` webhook keys it.
    GithubRun,
    /// A GitLab deployment without a job (`external_id`: its id), as GitLab's Deployment Hook
    /// keys it.
    GitlabDeployment,
    /// A GitLab deployment's job (`external_id`: the job's id), as GitLab's Deployment and Job
    /// Hooks key it.
    GitlabJob,
}

impl Source {
    /// Every source, by the name a record gives.
    pub const ALL: [(&'static str, Self); 4] = [
        ("github-deployment", Self::GithubDeployment),
        ("github-run", Self::GithubRun),
        ("gitlab-deployment", Self::GitlabDeployment),
        ("gitlab-job", Self::GitlabJob),
    ];

    /// The source a record names.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(name, _)| *name == value.trim())
            .map(|(_, source)| *source)
    }
}

/// The parts of a source's deployment key: the providers' webhooks (`shiplog-http`) derive
/// their keys through this too, so an imported record and a webhook of one deployment meet.
pub fn source_key_parts<'a>(
    source: Source,
    repository: &'a str,
    id: &'a str,
    attempt: &'a str,
) -> Vec<&'a str> {
    match source {
        Source::GithubDeployment => vec!["github-deployment", repository, id],
        Source::GithubRun => vec!["github-run", repository, id, attempt],
        Source::GitlabDeployment => vec!["gitlab-deployment", repository, id],
        Source::GitlabJob => vec!["gitlab-job", repository, id],
    }
}

/// How a record's deployment is recognised: with a `source`, by that provider's webhook key;
/// with an `external_id` alone, by that id as a key (as Hivel's `deployment_id`); with
/// neither, by its run as a live Clienwork event is (project, application, environment, and
/// `url`, else the commit).
pub fn record_key(record: &ImportRecord) -> Result<Correlation, AppError> {
    let id = record
        .external_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty());
    let source = match record.source.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(name) => Some(Source::parse(name).ok_or_else(|| {
            let names: Vec<&str> = Source::ALL.iter().map(|(name, _)| *name).collect();
            AppError::invalid(
                "source",
                format!(
                    "{name:?} is not a source: send one of {}, or none",
                    names.join(", ")
                ),
            )
        })?),
    };
    let key = match (source, id) {
        (None, None) => return Ok(Correlation::Run),
        (None, Some(id)) => IdempotencyKey::parse(id)
            .map_err(|e| AppError::invalid("external_id", e.to_string()))?,
        (Some(_), None) => {
            return Err(AppError::MissingField {
                field: "external_id",
                hint: "a record with a source names its id there",
            });
        }
        (Some(source), Some(id)) => {
            let repository = record
                .repository
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .ok_or(AppError::MissingField {
                    field: "repository",
                    hint: "a record with a source names its repository (owner/name) or GitLab project path",
                })?;
            let attempt = record.run_attempt.unwrap_or(1).to_string();
            IdempotencyKey::derived(&source_key_parts(source, repository, id, &attempt))
        }
    };
    Ok(Correlation::Explicit {
        key,
        exclusive: false,
    })
}

fn required<'a>(
    field: &'static str,
    value: Option<&'a str>,
    hint: &'static str,
) -> Result<&'a str, AppError> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(AppError::MissingField { field, hint })
}

/// The command a record stands for: a finished deploy when its status is an outcome or it
/// has a finish time, else a started one.
pub fn command_of(record: ImportRecord) -> Result<IngestCommand, AppError> {
    let correlation = record_key(&record)?;
    let application = required(
        "application",
        record.application.as_deref(),
        "name the application, like \"web\"",
    )?;
    let application = ApplicationCode::from_name(application)
        .map_err(|e| AppError::invalid("application", e.to_string()))?;
    let environment = required(
        "environment",
        record.environment.as_deref(),
        "name the environment, like \"production\"",
    )?;
    let status = required(
        "status",
        record.status.as_deref(),
        "send the outcome in your provider's words, like \"success\" or \"failure\"",
    )?
    .to_owned();
    let provider = record
        .provider
        .as_deref()
        .map_or(Provider::Custom, Provider::parse);
    let (started_at, finished_at) = (record.started_at, record.finished_at);
    let finished =
        finished_at.is_some() || ProviderStatus::new(provider, &status).status.is_terminal();
    let project = match record.project.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(slug) => Some(
            ProjectLookup::parse(slug).map_err(|e| AppError::invalid("project", e.to_string()))?,
        ),
    };
    let commit_sha = match record.commit_sha.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(sha) => Some(
            CommitSha::parse(sha).map_err(|e| AppError::invalid("commit_sha", e.to_string()))?,
        ),
    };
    let mut command = IngestCommand::new(
        if finished {
            PipelineEvent::DEPLOY_COMPLETED
        } else {
            PipelineEvent::DEPLOY_STARTED
        },
        provider,
        ApplicationRef::Code(application),
    );
    command.project = project;
    command.environment = Some(EnvironmentRef {
        name: environment.to_owned(),
        create_if_missing: true,
        kind: None,
    });
    command.status = Some(status);
    command.correlation = correlation;
    command.started_at = started_at;
    command.finished_at = finished_at;
    command.rework = record.rework;
    command.fields = DeploymentFields {
        external_id: record.external_id,
        commit_sha,
        commit_message: record.commit_message,
        commit_timestamp: record.commit_timestamp,
        git_ref: record.git_ref,
        branch: record.branch,
        run_url: record.url,
        deployed_by: record.deployed_by,
        build_number: record.version,
        ..DeploymentFields::default()
    };
    Ok(command)
}

/// A refused line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedLine {
    /// Its number, from 1.
    pub line: u64,
    /// The stable code of the refusal.
    pub code: &'static str,
    /// What is wrong and what to send.
    pub error: String,
}

/// What an import did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOutcome {
    /// Records written: a new deployment, or news of a known one.
    pub accepted: u64,
    /// Records recorded before (the same content): nothing written.
    pub duplicates: u64,
    /// How many lines were refused.
    pub rejected_count: u64,
    /// The first [`MAX_LISTED_REJECTIONS`] refused lines.
    pub rejected: Vec<RejectedLine>,
}

impl ImportOutcome {
    /// Counts a refused line.
    pub fn reject(&mut self, line: u64, error: &AppError) {
        self.rejected_count += 1;
        if self.rejected.len() < MAX_LISTED_REJECTIONS {
            self.rejected.push(RejectedLine {
                line,
                code: error.code().as_str(),
                error: error.to_string(),
            });
        }
    }
}

/// Whether an error is about one record (reported by its line), not about the caller or the
/// store (which end the import).
fn refuses_the_record(error: &AppError) -> bool {
    matches!(
        error.code().kind(),
        ErrorKind::InvalidInput
            | ErrorKind::NotFound
            | ErrorKind::Conflict
            | ErrorKind::LimitReached
    )
}

/// One line of an import as the adapter read it: its number and its record, or why it could
/// not be read.
pub type ImportLine = (u64, Result<ImportRecord, AppError>);

/// A batch of records checked and resolved, ready to be written ([`App::write_import`]).
#[derive(Debug)]
pub struct PlannedImport {
    plans: Vec<IngestPlan>,
    lines: Vec<u64>,
}

impl PlannedImport {
    /// The plans, in line order: what [`App::write_import`] hands the store.
    pub fn plans(&self) -> &[IngestPlan] {
        &self.plans
    }
}

impl ImportOutcome {
    /// Adds what another batch did.
    pub fn merge(&mut self, other: Self) {
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        self.rejected_count += other.rejected_count;
        let room = MAX_LISTED_REJECTIONS.saturating_sub(self.rejected.len());
        self.rejected.extend(other.rejected.into_iter().take(room));
    }
}

impl App {
    /// Refuses a caller who may not import (a read key), before any record is read.
    pub fn may_import(&self, caller: &Principal) -> Result<(), AppError> {
        caller.require(Capability::Ingest, "import deployments")
    }

    /// Checks and resolves one batch of records (an adapter reads a stream in batches, in
    /// bounded memory); a record refused here is counted in `outcome`. The error is the
    /// caller's (not allowed to send events) or the store's (unavailable). The batch is then
    /// written by [`App::write_import`], which an adapter may run while it plans the next.
    pub async fn plan_import(
        &self,
        caller: &Principal,
        lines: Vec<ImportLine>,
        outcome: &mut ImportOutcome,
    ) -> Result<PlannedImport, AppError> {
        self.may_import(caller)?;
        let mut planned = PlannedImport {
            plans: Vec::with_capacity(lines.len()),
            lines: Vec::with_capacity(lines.len()),
        };
        for (line, record) in lines {
            let plan = match record.and_then(command_of) {
                Ok(command) => self.plan_ingest(caller, command).await,
                Err(error) => Err(error),
            };
            match plan {
                Ok((mut plan, _)) => {
                    plan.raise_hooks = false;
                    planned.plans.push(plan);
                    planned.lines.push(line);
                }
                Err(error) if refuses_the_record(&error) => outcome.reject(line, &error),
                Err(error) => return Err(error),
            }
        }
        Ok(planned)
    }

    /// How many planned batches an adapter may have written at once.
    pub fn import_writes(&self) -> usize {
        self.ports.deployments.concurrent_writes().max(1)
    }

    /// Says an import ended (after its last batch was written), so past days are packed soon.
    pub fn import_ended(&self, caller: &Principal) {
        self.notifier.history_imported(caller.workspace);
    }

    /// Writes a planned batch in as few transactions as the store can; what it did, a record
    /// the store refused counted by its line.
    pub async fn write_import(
        &self,
        caller: &Principal,
        planned: PlannedImport,
    ) -> Result<ImportOutcome, AppError> {
        let mut outcome = ImportOutcome::default();
        if planned.plans.is_empty() {
            return Ok(outcome);
        }
        let written = self.ports.deployments.ingest_many(planned.plans).await?;
        for (line, result) in planned.lines.into_iter().zip(written) {
            match result {
                Ok(receipt) if receipt.duplicate => outcome.duplicates += 1,
                Ok(_) => outcome.accepted += 1,
                Err(error) => outcome.reject(line, &AppError::from(error)),
            }
        }
        if outcome.accepted > 0 {
            self.notifier.deployments_changed(caller.workspace);
        }
        Ok(outcome)
    }
}
