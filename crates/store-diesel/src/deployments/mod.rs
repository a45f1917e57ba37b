//! Deployments and their pipeline events: the ingest write, listings, references, the DORA
//! read and its packed days, and the `DeploymentStore`, `PipelineEventStore` and
//! `ReferenceStore` ports.

pub(crate) mod changes;
pub(crate) mod dora;
pub(crate) mod dora_days;
pub(crate) mod ingest;
pub(crate) mod list;
pub(crate) mod references;
pub(crate) mod what_changed;

pub(crate) use list::{Placed, deployments_by_id};

use async_trait::async_trait;
use diesel::prelude::*;
use shiplog_app::ids::{ApplicationId, DeploymentId, EventId, ProjectId, WorkspaceId};
use shiplog_app::ingest::{IngestPlan, IngestReceipt};
use shiplog_app::model::{Deployment, DeploymentFields, PipelineEventRecord, ReferenceView};
use shiplog_app::ports::{
    BackendFailure, ChangesData, CommitLag, DeploymentPage, DeploymentQuery, DeploymentStore,
    DeploymentStoreError, DoraData, DoraQuery, LagQuery, PipelineEventStore, ReferenceStore,
};
use shiplog_domain::dora::ReworkReason;
use shiplog_domain::event::PipelineEvent;
use shiplog_domain::ids::{CommitSha, Fingerprint};
use shiplog_domain::reference::ReferenceKey;
use shiplog_domain::status::Provider;
use shiplog_domain::timestamp::Timestamp;

use crate::Store;
use crate::columns::{opt_time, rework, status, time, uuid};
use crate::error::{StoreError, corrupt};
use crate::schema::{deployments, pipeline_events};

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

#[async_trait]
impl DeploymentStore for Store {
    async fn ingest(&self, plan: IngestPlan) -> Result<IngestReceipt, DeploymentStoreError> {
        Ok(self
            .write(move |conn| crate::deployments::ingest::ingest(conn, &plan))
            .await?)
    }

    async fn ingest_many(
        &self,
        plans: Vec<IngestPlan>,
    ) -> Result<Vec<Result<IngestReceipt, DeploymentStoreError>>, DeploymentStoreError> {
        Ok(crate::deployments::ingest::ingest_many(self, plans).await?)
    }

    /// SQLite: 1, its single writer applies every write. PostgreSQL: 2, so that a history
    /// import keeps two of the writer pool's transactions (and two server processes) busy, one
    /// per core of the reference machine (docs/benchmarks.md, `bench import`).
    fn concurrent_writes(&self) -> usize {
        if self.url().is_postgres() { 2 } else { 1 }
    }

    async fn changes_after(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<shiplog_app::ports::EventChanges, DeploymentStoreError> {
        Ok(self
            .read(move |conn| crate::deployments::changes::after(conn, after, limit))
            .await?)
    }

    async fn get(
        &self,
        workspace: WorkspaceId,
        id: DeploymentId,
    ) -> Result<Option<Deployment>, DeploymentStoreError> {
        Ok(self
            .read(move |conn| crate::deployments::list::get_deployment(conn, workspace, id))
            .await?)
    }

    async fn list(
        &self,
        workspace: WorkspaceId,
        query: DeploymentQuery,
    ) -> Result<DeploymentPage, DeploymentStoreError> {
        Ok(self
            .read(move |conn| crate::deployments::list::list_deployments(conn, workspace, &query))
            .await?)
    }

    async fn dora(
        &self,
        workspace: WorkspaceId,
        query: DoraQuery,
    ) -> Result<DoraData, DeploymentStoreError> {
        Ok(self
            .read(move |conn| crate::deployments::dora::dora(conn, workspace, &query))
            .await?)
    }

    async fn changes(
        &self,
        workspace: WorkspaceId,
        deployment: DeploymentId,
        limit: u32,
    ) -> Result<Option<ChangesData>, DeploymentStoreError> {
        Ok(self
            .read(move |conn| {
                crate::deployments::what_changed::changes(conn, workspace, deployment, limit)
            })
            .await?)
    }

    async fn first_seen(
        &self,
        workspace: WorkspaceId,
        commits: Vec<CommitSha>,
    ) -> Result<Vec<(CommitSha, Timestamp)>, DeploymentStoreError> {
        Ok(self
            .read(move |conn| {
                crate::deployments::what_changed::first_seen(conn, workspace, &commits)
            })
            .await?)
    }

    async fn lags(
        &self,
        workspace: WorkspaceId,
        queries: Vec<LagQuery>,
    ) -> Result<Vec<Option<Vec<CommitLag>>>, DeploymentStoreError> {
        Ok(self
            .read(move |conn| crate::deployments::what_changed::lags(conn, workspace, &queries))
            .await?)
    }

    async fn sight_commits(
        &self,
        workspace: WorkspaceId,
        commits: Vec<(CommitSha, Timestamp)>,
    ) -> Result<(), DeploymentStoreError> {
        Ok(self
            .write(move |conn| crate::deployments::ingest::sight_commits(conn, workspace, &commits))
            .await?)
    }

    async fn link_commit_references(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
        commits: Vec<CommitSha>,
        key: ReferenceKey,
        at: Timestamp,
    ) -> Result<usize, DeploymentStoreError> {
        Ok(self
            .write(move |conn| {
                crate::deployments::ingest::link_commit_references(
                    conn, workspace, project, &commits, &key, at,
                )
            })
            .await?)
    }
}

#[async_trait]
impl PipelineEventStore for Store {
    async fn for_deployment(
        &self,
        workspace: WorkspaceId,
        deployment: DeploymentId,
    ) -> Result<Vec<PipelineEventRecord>, BackendFailure> {
        Ok(self
            .read(move |conn| {
                crate::deployments::list::events_for_deployment(conn, workspace, deployment)
            })
            .await?)
    }

    async fn for_commit(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
        commit: CommitSha,
        limit: u32,
    ) -> Result<Vec<PipelineEventRecord>, BackendFailure> {
        Ok(self
            .read(move |conn| {
                crate::deployments::list::events_for_commit(
                    conn, workspace, project, &commit, limit,
                )
            })
            .await?)
    }
}

#[async_trait]
impl ReferenceStore for Store {
    async fn get(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
        key: &ReferenceKey,
    ) -> Result<Option<ReferenceView>, BackendFailure> {
        let key = key.clone();
        Ok(self
            .read(move |conn| {
                crate::deployments::references::get_reference(conn, workspace, project, &key)
            })
            .await?)
    }
}
