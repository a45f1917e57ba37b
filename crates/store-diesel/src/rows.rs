//! Row types and their conversion to and from the app's records. Inserts bind `None` as `NULL`
//! (`treat_none_as_default_value = false`), so each insert has one SQL text and its prepared
//! statement is cached; with `DEFAULT` for `None`, diesel re-prepares it on every call. Stored strings are parsed back
//! through the domain's parsers, so a bad row is a `Corrupt` error, never a panic.

use diesel::prelude::*;
use shiplog_app::ids::{
    ApiKeyId, ApplicationId, DeploymentId, EnvironmentId, EventId, ProjectId, SigningKeyRecordId,
    TeamId, WorkspaceId,
};
use shiplog_app::model::{
    ApiKeyRecord, Application, DeploymentFields, Environment, PipelineEventRecord, Project,
    SigningKeyRecord, Team, Workspace,
};
use shiplog_domain::dora::ReworkReason;
use shiplog_domain::environment::EnvironmentKind;
use shiplog_domain::event::PipelineEvent;
use shiplog_domain::ids::{
    ApplicationCode, CommitSha, EnvironmentCode, Fingerprint, ProjectSlug, TeamCode, WorkspaceCode,
};
use shiplog_domain::key::{KeyHash, Role, SigningKeyId, SigningSecret};
use shiplog_domain::repo::RepoIdentity;
use shiplog_domain::status::{DeploymentStatus, Provider};
use shiplog_domain::timestamp::Timestamp;
use uuid::Uuid;

use crate::error::{StoreError, corrupt};
use crate::schema::{
    api_keys, applications, deployments, environments, pipeline_events, projects, signing_keys,
    teams, workspaces,
};

pub(crate) fn uuid(value: &str) -> Result<Uuid, StoreError> {
    Uuid::try_parse(value).map_err(|_| corrupt("id", value))
}

pub(crate) fn time(micros: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_unix_micros(micros).map_err(|_| corrupt("timestamp", &micros.to_string()))
}

pub(crate) fn opt_time(micros: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    micros.map(time).transpose()
}

pub(crate) fn status(value: &str) -> Result<DeploymentStatus, StoreError> {
    DeploymentStatus::parse(value).map_err(|_| corrupt("status", value))
}

macro_rules! parse_or_corrupt {
    ($ty:ty, $value:expr, $what:literal) => {
        <$ty>::parse($value).map_err(|_| corrupt($what, $value))
    };
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = workspaces)]
pub(crate) struct WorkspaceRow {
    pub id: String,
    pub code: String,
    pub name: String,
    pub environment_limit: Option<i32>,
    pub created_at: i64,
}

impl WorkspaceRow {
    pub(crate) fn from_record(w: &Workspace) -> Self {
        Self {
            id: w.id.to_string(),
            code: w.code.to_string(),
            name: w.name.clone(),
            environment_limit: w
                .environment_limit
                .map(|l| i32::try_from(l).unwrap_or(i32::MAX)),
            created_at: w.created_at.unix_micros(),
        }
    }

    pub(crate) fn into_record(self) -> Result<Workspace, StoreError> {
        Ok(Workspace {
            id: WorkspaceId::from_uuid(uuid(&self.id)?),
            code: parse_or_corrupt!(WorkspaceCode, &self.code, "workspace code")?,
            name: self.name,
            environment_limit: self.environment_limit.and_then(|l| u32::try_from(l).ok()),
            created_at: time(self.created_at)?,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = projects)]
pub(crate) struct ProjectRow {
    pub id: String,
    pub workspace_id: String,
    pub slug: String,
    pub name: String,
    pub created_at: i64,
    /// Its own hotfix patterns, one per line; `None`: the defaults.
    pub hotfix_patterns: Option<String>,
}

/// Hotfix patterns as one column: one per line (a pattern is printable text, never a line
/// break).
pub(crate) fn patterns_column(patterns: Option<&[String]>) -> Option<String> {
    patterns.map(|p| p.join("\n"))
}

impl ProjectRow {
    pub(crate) fn from_record(p: &Project) -> Self {
        Self {
            id: p.id.to_string(),
            workspace_id: p.workspace.to_string(),
            slug: p.slug.to_string(),
            name: p.name.clone(),
            created_at: p.created_at.unix_micros(),
            hotfix_patterns: patterns_column(p.hotfix_patterns.as_deref()),
        }
    }

    pub(crate) fn into_record(self) -> Result<Project, StoreError> {
        Ok(Project {
            id: ProjectId::from_uuid(uuid(&self.id)?),
            workspace: WorkspaceId::from_uuid(uuid(&self.workspace_id)?),
            slug: parse_or_corrupt!(ProjectSlug, &self.slug, "project slug")?,
            name: self.name,
            created_at: time(self.created_at)?,
            hotfix_patterns: self.hotfix_patterns.map(|column| {
                column
                    .split('\n')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = teams)]
pub(crate) struct TeamRow {
    pub id: String,
    pub workspace_id: String,
    pub code: String,
    pub name: String,
    pub created_at: i64,
}

impl TeamRow {
    pub(crate) fn from_record(t: &Team) -> Self {
        Self {
            id: t.id.to_string(),
            workspace_id: t.workspace.to_string(),
            code: t.code.to_string(),
            name: t.name.clone(),
            created_at: t.created_at.unix_micros(),
        }
    }

    pub(crate) fn into_record(self) -> Result<Team, StoreError> {
        Ok(Team {
            id: TeamId::from_uuid(uuid(&self.id)?),
            workspace: WorkspaceId::from_uuid(uuid(&self.workspace_id)?),
            code: parse_or_corrupt!(TeamCode, &self.code, "team code")?,
            name: self.name,
            created_at: time(self.created_at)?,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = api_keys)]
pub(crate) struct ApiKeyRow {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub role: String,
    pub project_id: Option<String>,
    pub key_hash: String,
    pub hint: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl ApiKeyRow {
    pub(crate) fn from_record(k: &ApiKeyRecord) -> Self {
        Self {
            id: k.id.to_string(),
            workspace_id: k.workspace.to_string(),
            name: k.name.clone(),
            role: k.role.as_str().to_owned(),
            project_id: k.project.map(|p| p.to_string()),
            key_hash: k.hash.as_str().to_owned(),
            hint: k.hint.clone(),
            created_at: k.created_at.unix_micros(),
            expires_at: k.expires_at.map(Timestamp::unix_micros),
            last_used_at: k.last_used_at.map(Timestamp::unix_micros),
        }
    }

    pub(crate) fn into_record(self) -> Result<ApiKeyRecord, StoreError> {
        Ok(ApiKeyRecord {
            id: ApiKeyId::from_uuid(uuid(&self.id)?),
            workspace: WorkspaceId::from_uuid(uuid(&self.workspace_id)?),
            name: self.name,
            role: parse_or_corrupt!(Role, &self.role, "role")?,
            project: self
                .project_id
                .as_deref()
                .map(uuid)
                .transpose()?
                .map(ProjectId::from_uuid),
            hash: KeyHash::from_hex(&self.key_hash)
                .ok_or_else(|| corrupt("key hash", &self.key_hash))?,
            hint: self.hint,
            created_at: time(self.created_at)?,
            expires_at: opt_time(self.expires_at)?,
            last_used_at: opt_time(self.last_used_at)?,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = signing_keys)]
pub(crate) struct SigningKeyRow {
    pub id: String,
    pub workspace_id: String,
    pub key_id: String,
    pub name: String,
    pub secret: String,
    pub role: String,
    pub project_id: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl SigningKeyRow {
    pub(crate) fn from_record(k: &SigningKeyRecord) -> Self {
        Self {
            id: k.id.to_string(),
            workspace_id: k.workspace.to_string(),
            key_id: k.key_id.to_string(),
            name: k.name.clone(),
            secret: k.secret.reveal().to_owned(),
            role: k.role.as_str().to_owned(),
            project_id: k.project.map(|p| p.to_string()),
            created_at: k.created_at.unix_micros(),
            expires_at: k.expires_at.map(Timestamp::unix_micros),
            last_used_at: k.last_used_at.map(Timestamp::unix_micros),
        }
    }

    pub(crate) fn into_record(self) -> Result<SigningKeyRecord, StoreError> {
        Ok(SigningKeyRecord {
            id: SigningKeyRecordId::from_uuid(uuid(&self.id)?),
            workspace: WorkspaceId::from_uuid(uuid(&self.workspace_id)?),
            key_id: parse_or_corrupt!(SigningKeyId, &self.key_id, "signing key id")?,
            name: self.name,
            secret: SigningSecret::from_stored(self.secret),
            role: parse_or_corrupt!(Role, &self.role, "role")?,
            project: self
                .project_id
                .as_deref()
                .map(uuid)
                .transpose()?
                .map(ProjectId::from_uuid),
            created_at: time(self.created_at)?,
            expires_at: opt_time(self.expires_at)?,
            last_used_at: opt_time(self.last_used_at)?,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = applications)]
pub(crate) struct ApplicationRow {
    pub id: String,
    pub workspace_id: String,
    pub project_id: String,
    pub code: String,
    pub name: String,
    pub repo: Option<String>,
    pub created_at: i64,
    /// The provider of its source-provider credential; the token is never loaded with the row.
    pub source_provider: Option<String>,
}

impl ApplicationRow {
    pub(crate) fn from_record(a: &Application) -> Self {
        Self {
            id: a.id.to_string(),
            workspace_id: a.workspace.to_string(),
            project_id: a.project.to_string(),
            code: a.code.to_string(),
            name: a.name.clone(),
            repo: a.repo.as_ref().map(|r| r.to_string()),
            created_at: a.created_at.unix_micros(),
            source_provider: a.source_provider.clone(),
        }
    }

    pub(crate) fn into_record(self) -> Result<Application, StoreError> {
        Ok(Application {
            id: ApplicationId::from_uuid(uuid(&self.id)?),
            workspace: WorkspaceId::from_uuid(uuid(&self.workspace_id)?),
            project: ProjectId::from_uuid(uuid(&self.project_id)?),
            code: parse_or_corrupt!(ApplicationCode, &self.code, "application code")?,
            name: self.name,
            repo: self
                .repo
                .as_deref()
                .map(|r| RepoIdentity::parse(r).map_err(|_| corrupt("repository", r)))
                .transpose()?,
            created_at: time(self.created_at)?,
            source_provider: self.source_provider,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = environments)]
pub(crate) struct EnvironmentRow {
    pub id: String,
    pub workspace_id: String,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub url: Option<String>,
    pub position: i32,
    pub team_id: Option<String>,
    pub created_at: i64,
}

impl EnvironmentRow {
    pub(crate) fn from_record(e: &Environment) -> Self {
        Self {
            id: e.id.to_string(),
            workspace_id: e.workspace.to_string(),
            code: e.code.to_string(),
            name: e.name.clone(),
            kind: e.kind.as_str().to_owned(),
            url: e.url.clone(),
            position: e.position,
            team_id: e.team.map(|t| t.to_string()),
            created_at: e.created_at.unix_micros(),
        }
    }

    pub(crate) fn into_record(self) -> Result<Environment, StoreError> {
        Ok(Environment {
            id: EnvironmentId::from_uuid(uuid(&self.id)?),
            workspace: WorkspaceId::from_uuid(uuid(&self.workspace_id)?),
            code: parse_or_corrupt!(EnvironmentCode, &self.code, "environment code")?,
            name: self.name,
            kind: parse_or_corrupt!(EnvironmentKind, &self.kind, "environment kind")?,
            url: self.url,
            position: self.position,
            team: self
                .team_id
                .as_deref()
                .map(uuid)
                .transpose()?
                .map(TeamId::from_uuid),
            created_at: time(self.created_at)?,
        })
    }
}

/// A deployment row (the columns every query reads).
#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = deployments)]
#[diesel(treat_none_as_null = true, treat_none_as_default_value = false)]
pub(crate) struct DeploymentRow {
    pub id: String,
    pub workspace_id: String,
    pub project_id: String,
    pub application_id: String,
    pub environment_id: String,
    pub idempotency_key: String,
    pub payload_fingerprint: String,
    pub status: String,
    pub provider: String,
    pub provider_status: String,
    pub status_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub deployed_at: i64,
    pub external_id: Option<String>,
    pub commit_sha: Option<String>,
    pub commit_message: Option<String>,
    pub commit_timestamp: Option<i64>,
    pub git_ref: Option<String>,
    pub branch: Option<String>,
    pub run_url: Option<String>,
    pub deployed_by: Option<String>,
    pub build_number: Option<String>,
    pub image: Option<String>,
    pub logs_url: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The first pipeline event of its commit other than its own (`commit_sightings`).
    pub commit_seen_at: Option<i64>,
    /// What it says of itself as rework (`ReworkReason::as_str`).
    pub rework: Option<String>,
}

impl DeploymentRow {
    pub(crate) fn fields(&self) -> Result<DeploymentFields, StoreError> {
        Ok(DeploymentFields {
            external_id: self.external_id.clone(),
            commit_sha: self
                .commit_sha
                .as_deref()
                .map(|s| CommitSha::parse(s).map_err(|_| corrupt("commit sha", s)))
                .transpose()?,
            commit_message: self.commit_message.clone(),
            commit_timestamp: opt_time(self.commit_timestamp)?,
            git_ref: self.git_ref.clone(),
            branch: self.branch.clone(),
            run_url: self.run_url.clone(),
            deployed_by: self.deployed_by.clone(),
            build_number: self.build_number.clone(),
            image: self.image.clone(),
            logs_url: self.logs_url.clone(),
        })
    }

    pub(crate) fn set_fields(&mut self, fields: &DeploymentFields) {
        self.external_id = fields.external_id.clone();
        self.commit_sha = fields.commit_sha.as_ref().map(|s| s.to_string());
        self.commit_message = fields.commit_message.clone();
        self.commit_timestamp = fields.commit_timestamp.map(Timestamp::unix_micros);
        self.git_ref = fields.git_ref.clone();
        self.branch = fields.branch.clone();
        self.run_url = fields.run_url.clone();
        self.deployed_by = fields.deployed_by.clone();
        self.build_number = fields.build_number.clone();
        self.image = fields.image.clone();
        self.logs_url = fields.logs_url.clone();
    }

    pub(crate) fn provider(&self) -> Provider {
        Provider::parse(&self.provider)
    }

    pub(crate) fn deployment_id(&self) -> Result<DeploymentId, StoreError> {
        Ok(DeploymentId::from_uuid(uuid(&self.id)?))
    }

    pub(crate) fn fingerprint(&self) -> Result<Fingerprint, StoreError> {
        Fingerprint::from_hex(&self.payload_fingerprint)
            .ok_or_else(|| corrupt("fingerprint", &self.payload_fingerprint))
    }

    pub(crate) fn rework(&self) -> Result<Option<ReworkReason>, StoreError> {
        rework(self.rework.as_deref())
    }
}

/// A stored rework signal.
pub(crate) fn rework(column: Option<&str>) -> Result<Option<ReworkReason>, StoreError> {
    column
        .map(|value| ReworkReason::parse(value).ok_or_else(|| corrupt("rework", value)))
        .transpose()
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = pipeline_events)]
pub(crate) struct EventRow {
    pub id: String,
    pub workspace_id: String,
    pub project_id: String,
    pub application_id: String,
    pub environment_id: Option<String>,
    pub deployment_id: Option<String>,
    pub event: String,
    pub provider: String,
    pub provider_status: Option<String>,
    pub status: String,
    pub commit_sha: Option<String>,
    pub occurred_at: i64,
    pub received_at: i64,
    pub fingerprint: String,
}

impl EventRow {
    pub(crate) fn into_record(self) -> Result<PipelineEventRecord, StoreError> {
        Ok(PipelineEventRecord {
            id: EventId::from_uuid(uuid(&self.id)?),
            project: ProjectId::from_uuid(uuid(&self.project_id)?),
            application: ApplicationId::from_uuid(uuid(&self.application_id)?),
            deployment: self
                .deployment_id
                .as_deref()
                .map(uuid)
                .transpose()?
                .map(DeploymentId::from_uuid),
            event: PipelineEvent::parse(&self.event).map_err(|_| corrupt("event", &self.event))?,
            provider: Provider::parse(&self.provider),
            provider_status: self.provider_status,
            status: status(&self.status)?,
            commit_sha: self
                .commit_sha
                .as_deref()
                .map(|s| CommitSha::parse(s).map_err(|_| corrupt("commit sha", s)))
                .transpose()?,
            occurred_at: time(self.occurred_at)?,
            received_at: time(self.received_at)?,
            fingerprint: Fingerprint::from_hex(&self.fingerprint)
                .ok_or_else(|| corrupt("fingerprint", &self.fingerprint))?,
        })
    }
}

/// A short text column (an id) read without allocating: the DORA read decodes one per row
/// and keeps one shared copy per distinct value ([`Shared`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, diesel::deserialize::FromSqlRow)]
pub(crate) struct ShortText {
    len: u8,
    bytes: [u8; SHORT_TEXT],
}

/// The longest [`ShortText`]: ids are UUIDs (36 characters).
const SHORT_TEXT: usize = 40;

impl ShortText {
    pub(crate) fn new(text: &str) -> diesel::deserialize::Result<Self> {
        let mut bytes = [0; SHORT_TEXT];
        let len = u8::try_from(text.len())
            .ok()
            .filter(|&len| usize::from(len) <= SHORT_TEXT)
            .ok_or_else(|| format!("an id of {} bytes is longer than {SHORT_TEXT}", text.len()))?;
        bytes
            .get_mut(..text.len())
            .ok_or("unreachable: the length was checked")?
            .copy_from_slice(text.as_bytes());
        Ok(Self { len, bytes })
    }

    pub(crate) fn as_str(&self) -> &str {
        // Copied from a `&str` whole, so the bytes are UTF-8.
        self.bytes
            .get(..usize::from(self.len))
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .unwrap_or_default()
    }
}

impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::sqlite::Sqlite> for ShortText {
    fn from_sql(
        mut value: diesel::sqlite::SqliteValue<'_, '_, '_>,
    ) -> diesel::deserialize::Result<Self> {
        Self::new(value.read_text())
    }
}

impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for ShortText {
    fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        Self::new(std::str::from_utf8(value.as_bytes())?)
    }
}

impl diesel::deserialize::FromSql<diesel::sql_types::Text, crate::conn::MultiBackend>
    for ShortText
{
    fn from_sql(
        value: <crate::conn::MultiBackend as diesel::backend::Backend>::RawValue<'_>,
    ) -> diesel::deserialize::Result<Self> {
        value.from_sql::<Self, diesel::sql_types::Text>()
    }
}

/// One shared copy of each distinct [`ShortText`] of a read.
#[derive(Default)]
pub(crate) struct Shared(rustc_hash::FxHashMap<ShortText, std::sync::Arc<str>>);

impl Shared {
    /// The shared copy of `text`.
    pub(crate) fn get(&mut self, text: ShortText) -> std::sync::Arc<str> {
        self.0
            .entry(text)
            .or_insert_with(|| text.as_str().into())
            .clone()
    }

    /// The shared copy of `text`, from a `&str`.
    pub(crate) fn get_str(&mut self, text: &str) -> Result<std::sync::Arc<str>, StoreError> {
        let short = ShortText::new(text).map_err(|_| corrupt("id", text))?;
        Ok(self.get(short))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_keep_their_bytes_and_refuse_what_does_not_fit() {
        let id = "0b5e3f0e-9a43-4c1e-8d0a-6c1f2d3e4f50";
        let short = ShortText::new(id).unwrap();
        assert_eq!(short.as_str(), id);
        assert_eq!(ShortText::new("").unwrap().as_str(), "");
        assert_eq!(
            ShortText::new(&"é".repeat(20)).unwrap().as_str(),
            "é".repeat(20)
        );
        assert!(ShortText::new(&"x".repeat(SHORT_TEXT + 1)).is_err());
        let mut shared = Shared::default();
        let a = shared.get(short);
        let b = shared.get_str(id).unwrap();
        assert!(std::sync::Arc::ptr_eq(&a, &b), "one copy per distinct id");
        assert_eq!(&*a, id);
        assert!(shared.get_str(&"x".repeat(100)).is_err());
    }
}
