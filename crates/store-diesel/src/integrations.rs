//! Integrations (`integrations`) and what each received (`integration_deliveries`, trimmed to
//! the newest deliveries on every insert).

use async_trait::async_trait;
use diesel::prelude::*;
use shiplog_app::ids::{IntegrationId, ProjectId, ReceivedId, WorkspaceId};
use shiplog_app::integrations::{IntegrationRecord, ReceivedDelivery};
use shiplog_app::ports::{BackendFailure, IntegrationStore};
use shiplog_domain::integration::{IntegrationProvider, Verdict};
use shiplog_domain::key::SigningSecret;

use crate::Store;
use crate::columns::{opt_time, time, uuid};
use crate::conn::{DbConn, Native};
use crate::error::{StoreError, corrupt};
use crate::schema::{integration_deliveries, integrations};

#[derive(Queryable, Selectable)]
#[diesel(table_name = integrations)]
struct IntegrationRow {
    id: String,
    workspace_id: String,
    project_id: Option<String>,
    provider: String,
    name: String,
    settings: String,
    secret: String,
    previous_secret: Option<String>,
    previous_until: Option<i64>,
    created_at: i64,
    rotated_at: Option<i64>,
}

impl IntegrationRow {
    fn into_record(self) -> Result<IntegrationRecord, StoreError> {
        Ok(IntegrationRecord {
            id: IntegrationId::from_uuid(uuid(&self.id)?),
            workspace: WorkspaceId::from_uuid(uuid(&self.workspace_id)?),
            project: self
                .project_id
                .as_deref()
                .map(uuid)
                .transpose()?
                .map(ProjectId::from_uuid),
            provider: IntegrationProvider::parse(&self.provider)
                .map_err(|_| corrupt("integration provider", &self.provider))?,
            name: self.name,
            settings: serde_json::from_str(&self.settings)
                .map_err(|_| corrupt("integration settings", &self.settings))?,
            secret: SigningSecret::from_stored(self.secret),
            previous_secret: self.previous_secret.map(SigningSecret::from_stored),
            previous_until: opt_time(self.previous_until)?,
            created_at: time(self.created_at)?,
            rotated_at: opt_time(self.rotated_at)?,
        })
    }
}

pub(crate) fn create(conn: &mut DbConn, record: &IntegrationRecord) -> Result<(), StoreError> {
    diesel::insert_into(integrations::table)
        .values((
            integrations::id.eq(record.id.to_string()),
            integrations::workspace_id.eq(record.workspace.to_string()),
            integrations::project_id.eq(record.project.map(|p| p.to_string())),
            integrations::provider.eq(record.provider.as_str()),
            integrations::name.eq(&record.name),
            integrations::settings.eq(record.settings.to_string()),
            integrations::secret.eq(record.secret.reveal()),
            integrations::previous_secret.eq(record.previous_secret.as_ref().map(|s| s.reveal())),
            integrations::previous_until.eq(record.previous_until.map(|t| t.unix_micros())),
            integrations::created_at.eq(record.created_at.unix_micros()),
            integrations::rotated_at.eq(record.rotated_at.map(|t| t.unix_micros())),
        ))
        .execute_on(conn)?;
    Ok(())
}

pub(crate) fn get(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    id: IntegrationId,
) -> Result<Option<IntegrationRecord>, StoreError> {
    let row: Option<IntegrationRow> = integrations::table
        .filter(integrations::workspace_id.eq(workspace.to_string()))
        .filter(integrations::id.eq(id.to_string()))
        .select(IntegrationRow::as_select())
        .first(conn)
        .optional()?;
    row.map(IntegrationRow::into_record).transpose()
}

pub(crate) fn by_id(
    conn: &mut DbConn,
    id: IntegrationId,
) -> Result<Option<IntegrationRecord>, StoreError> {
    let row: Option<IntegrationRow> = integrations::table
        .filter(integrations::id.eq(id.to_string()))
        .select(IntegrationRow::as_select())
        .first(conn)
        .optional()?;
    row.map(IntegrationRow::into_record).transpose()
}

pub(crate) fn list(
    conn: &mut DbConn,
    workspace: WorkspaceId,
) -> Result<Vec<IntegrationRecord>, StoreError> {
    let rows: Vec<IntegrationRow> = integrations::table
        .filter(integrations::workspace_id.eq(workspace.to_string()))
        .order((integrations::created_at.asc(), integrations::id.asc()))
        .select(IntegrationRow::as_select())
        .load(conn)?;
    rows.into_iter().map(IntegrationRow::into_record).collect()
}

pub(crate) fn update(conn: &mut DbConn, record: &IntegrationRecord) -> Result<bool, StoreError> {
    let changed = diesel::update(
        integrations::table
            .filter(integrations::workspace_id.eq(record.workspace.to_string()))
            .filter(integrations::id.eq(record.id.to_string())),
    )
    .set((
        integrations::name.eq(&record.name),
        integrations::settings.eq(record.settings.to_string()),
        integrations::secret.eq(record.secret.reveal()),
        integrations::previous_secret.eq(record.previous_secret.as_ref().map(|s| s.reveal())),
        integrations::previous_until.eq(record.previous_until.map(|t| t.unix_micros())),
        integrations::rotated_at.eq(record.rotated_at.map(|t| t.unix_micros())),
    ))
    .execute_on(conn)?;
    Ok(changed > 0)
}

pub(crate) fn delete(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    id: IntegrationId,
) -> Result<bool, StoreError> {
    let deleted = diesel::delete(
        integrations::table
            .filter(integrations::workspace_id.eq(workspace.to_string()))
            .filter(integrations::id.eq(id.to_string())),
    )
    .execute_on(conn)?;
    Ok(deleted > 0)
}

/// Records a received delivery and drops all but the newest `keep` of its integration.
pub(crate) fn record_received(
    conn: &mut DbConn,
    received: &ReceivedDelivery,
    keep: u32,
) -> Result<(), StoreError> {
    let integration = received.integration.to_string();
    diesel::insert_into(integration_deliveries::table)
        .values((
            integration_deliveries::id.eq(received.id.to_string()),
            integration_deliveries::integration_id.eq(&integration),
            integration_deliveries::workspace_id.eq(received.workspace.to_string()),
            integration_deliveries::received_at.eq(received.received_at.unix_micros()),
            integration_deliveries::event.eq(received.event.as_deref()),
            integration_deliveries::delivery.eq(received.delivery.as_deref()),
            integration_deliveries::verdict.eq(received.verdict.as_str()),
            integration_deliveries::reason.eq(&received.reason),
        ))
        .execute_on(conn)?;
    // The oldest seq still kept; everything before it goes.
    let kept: Option<i64> = integration_deliveries::table
        .filter(integration_deliveries::integration_id.eq(&integration))
        .order(integration_deliveries::seq.desc())
        .offset(i64::from(keep.saturating_sub(1)))
        .select(integration_deliveries::seq)
        .first_on(conn)
        .optional()?;
    if let Some(oldest) = kept {
        diesel::delete(
            integration_deliveries::table
                .filter(integration_deliveries::integration_id.eq(&integration))
                .filter(integration_deliveries::seq.lt(oldest)),
        )
        .execute_on(conn)?;
    }
    Ok(())
}

pub(crate) fn received(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    id: IntegrationId,
    limit: u32,
) -> Result<Vec<ReceivedDelivery>, StoreError> {
    type Row = (
        String,
        String,
        String,
        i64,
        Option<String>,
        Option<String>,
        String,
        String,
    );
    let rows: Vec<Row> = integration_deliveries::table
        .filter(integration_deliveries::workspace_id.eq(workspace.to_string()))
        .filter(integration_deliveries::integration_id.eq(id.to_string()))
        .order(integration_deliveries::seq.desc())
        .limit(i64::from(limit))
        .select((
            integration_deliveries::id,
            integration_deliveries::integration_id,
            integration_deliveries::workspace_id,
            integration_deliveries::received_at,
            integration_deliveries::event,
            integration_deliveries::delivery,
            integration_deliveries::verdict,
            integration_deliveries::reason,
        ))
        .load_on(conn)?;
    rows.into_iter()
        .map(
            |(id, integration, workspace, received_at, event, delivery, verdict, reason)| {
                Ok(ReceivedDelivery {
                    id: ReceivedId::from_uuid(uuid(&id)?),
                    integration: IntegrationId::from_uuid(uuid(&integration)?),
                    workspace: WorkspaceId::from_uuid(uuid(&workspace)?),
                    received_at: time(received_at)?,
                    event,
                    delivery,
                    verdict: Verdict::parse(&verdict)
                        .ok_or_else(|| corrupt("delivery verdict", &verdict))?,
                    reason,
                })
            },
        )
        .collect()
}

#[async_trait]
impl IntegrationStore for Store {
    async fn create_integration(
        &self,
        integration: IntegrationRecord,
    ) -> Result<(), BackendFailure> {
        Ok(self
            .write(move |conn| crate::integrations::create(conn, &integration))
            .await?)
    }

    async fn integration(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<Option<IntegrationRecord>, BackendFailure> {
        Ok(self
            .read(move |conn| crate::integrations::get(conn, workspace, id))
            .await?)
    }

    async fn integration_by_id(
        &self,
        id: IntegrationId,
    ) -> Result<Option<IntegrationRecord>, BackendFailure> {
        Ok(self
            .read(move |conn| crate::integrations::by_id(conn, id))
            .await?)
    }

    async fn integrations(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<IntegrationRecord>, BackendFailure> {
        Ok(self
            .read(move |conn| crate::integrations::list(conn, workspace))
            .await?)
    }

    async fn update_integration(
        &self,
        integration: IntegrationRecord,
    ) -> Result<bool, BackendFailure> {
        Ok(self
            .write(move |conn| crate::integrations::update(conn, &integration))
            .await?)
    }

    async fn delete_integration(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<bool, BackendFailure> {
        Ok(self
            .write(move |conn| crate::integrations::delete(conn, workspace, id))
            .await?)
    }

    async fn record_received(
        &self,
        received: ReceivedDelivery,
        keep: u32,
    ) -> Result<(), BackendFailure> {
        Ok(self
            .write(move |conn| crate::integrations::record_received(conn, &received, keep))
            .await?)
    }

    async fn received(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        limit: u32,
    ) -> Result<Vec<ReceivedDelivery>, BackendFailure> {
        Ok(self
            .read(move |conn| crate::integrations::received(conn, workspace, id, limit))
            .await?)
    }
}
