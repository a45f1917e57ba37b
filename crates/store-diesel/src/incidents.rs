//! Incidents (`incidents`): one row per source and external id, updates folded in with the app's
//! pure `merge`/`patched` inside the write transaction.

use async_trait::async_trait;
use diesel::prelude::*;
use shiplog_app::ids::{
    ApplicationId, DeploymentId, EnvironmentId, IncidentId, IntegrationId, ProjectId, WorkspaceId,
};
use shiplog_app::incidents::{
    Incident, IncidentBlame, IncidentPatch, IncidentQuery, IncidentStatus, IncidentUpdate, Named,
    merge, patched,
};
use shiplog_app::ports::{BackendFailure, IncidentStore};
use shiplog_domain::ids::{ApplicationCode, CommitSha, EnvironmentCode, ProjectSlug};
use shiplog_domain::incident::{IncidentSource, IncidentState};
use shiplog_domain::reference::ReferenceKey;
use shiplog_domain::timestamp::Timestamp;

use crate::Store;
use crate::columns::{opt_time, time, uuid};
use crate::conn::{DbConn, Native};
use crate::error::{StoreError, corrupt};
use crate::schema::{applications, environments, incidents, projects};

#[derive(Queryable, Selectable)]
#[diesel(table_name = incidents)]
struct IncidentRow {
    id: String,
    workspace_id: String,
    project_id: String,
    application_id: Option<String>,
    environment_id: Option<String>,
    title: String,
    severity: Option<String>,
    url: Option<String>,
    source: String,
    external_id: String,
    integration_id: Option<String>,
    opened_at: i64,
    resolved_at: Option<i64>,
    changed_at: i64,
    blamed_deployment_id: Option<String>,
    blamed_commit: Option<String>,
    blamed_reference: Option<String>,
    created_at: i64,
    updated_at: i64,
}

/// A row with its project's slug and its application's and environment's codes.
type Joined = (IncidentRow, String, Option<String>, Option<String>);

fn decode((row, slug, application, environment): Joined) -> Result<Incident, StoreError> {
    let named_app = match (row.application_id.as_deref(), application) {
        (Some(id), Some(code)) => Some(Named {
            id: ApplicationId::from_uuid(uuid(id)?),
            code: ApplicationCode::parse(&code).map_err(|_| corrupt("application code", &code))?,
        }),
        _ => None,
    };
    let named_env = match (row.environment_id.as_deref(), environment) {
        (Some(id), Some(code)) => Some(Named {
            id: EnvironmentId::from_uuid(uuid(id)?),
            code: EnvironmentCode::parse(&code).map_err(|_| corrupt("environment code", &code))?,
        }),
        _ => None,
    };
    Ok(Incident {
        id: IncidentId::from_uuid(uuid(&row.id)?),
        workspace: WorkspaceId::from_uuid(uuid(&row.workspace_id)?),
        project: Named {
            id: ProjectId::from_uuid(uuid(&row.project_id)?),
            code: ProjectSlug::parse(&slug).map_err(|_| corrupt("project slug", &slug))?,
        },
        application: named_app,
        environment: named_env,
        title: row.title,
        severity: row.severity,
        url: row.url,
        source: IncidentSource::parse(&row.source)
            .ok_or_else(|| corrupt("incident source", &row.source))?,
        external_id: row.external_id,
        integration: row
            .integration_id
            .as_deref()
            .map(uuid)
            .transpose()?
            .map(IntegrationId::from_uuid),
        state: IncidentState {
            opened_at: time(row.opened_at)?,
            resolved_at: opt_time(row.resolved_at)?,
            changed_at: time(row.changed_at)?,
        },
        blame: IncidentBlame {
            deployment: row
                .blamed_deployment_id
                .as_deref()
                .map(uuid)
                .transpose()?
                .map(DeploymentId::from_uuid),
            commit: row
                .blamed_commit
                .as_deref()
                .map(|c| CommitSha::parse(c).map_err(|_| corrupt("blamed commit", c)))
                .transpose()?,
            reference: row
                .blamed_reference
                .as_deref()
                .map(|r| ReferenceKey::parse(r).map_err(|_| corrupt("blamed reference", r)))
                .transpose()?,
        },
        created_at: time(row.created_at)?,
        updated_at: time(row.updated_at)?,
    })
}

/// `incidents` with its project's slug and its application's and environment's codes (a
/// macro only because the joined query's type cannot be named).
macro_rules! joined {
    () => {
        incidents::table
            .inner_join(projects::table.on(projects::id.eq(incidents::project_id)))
            .left_join(
                applications::table.on(applications::id.nullable().eq(incidents::application_id)),
            )
            .left_join(
                environments::table.on(environments::id.nullable().eq(incidents::environment_id)),
            )
            .select((
                IncidentRow::as_select(),
                projects::slug,
                applications::code.nullable(),
                environments::code.nullable(),
            ))
    };
}

fn find(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    id: Option<IncidentId>,
    key: Option<(ProjectId, IncidentSource, &str)>,
) -> Result<Option<Incident>, StoreError> {
    let mut query = joined!()
        .filter(incidents::workspace_id.eq(workspace.to_string()))
        .into_boxed();
    if let Some(id) = id {
        query = query.filter(incidents::id.eq(id.to_string()));
    }
    if let Some((project, source, external_id)) = key {
        query = query
            .filter(incidents::project_id.eq(project.to_string()))
            .filter(incidents::source.eq(source.as_str()))
            .filter(incidents::external_id.eq(external_id.to_owned()));
    }
    let row: Option<Joined> = query.first(conn).optional()?;
    row.map(decode).transpose()
}

pub(crate) fn get(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    id: IncidentId,
) -> Result<Option<Incident>, StoreError> {
    find(conn, workspace, Some(id), None)
}

pub(crate) fn list(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    query: &IncidentQuery,
) -> Result<Vec<Incident>, StoreError> {
    let workspace_id = workspace.to_string();
    let mut rows = joined!()
        .filter(incidents::workspace_id.eq(&workspace_id))
        .order((incidents::opened_at.desc(), incidents::id.desc()))
        .limit(i64::from(query.limit))
        .into_boxed();
    if let Some(project) = query.project {
        rows = rows.filter(incidents::project_id.eq(project.to_string()));
    }
    match query.status {
        Some(IncidentStatus::Open) => rows = rows.filter(incidents::resolved_at.is_null()),
        Some(IncidentStatus::Resolved) => rows = rows.filter(incidents::resolved_at.is_not_null()),
        None => {}
    }
    if let Some(after) = query.after {
        // Strictly after the cursor's incident in (opened_at desc, id desc) order.
        let position: Option<i64> = incidents::table
            .filter(incidents::workspace_id.eq(&workspace_id))
            .filter(incidents::id.eq(after.to_string()))
            .select(incidents::opened_at)
            .first_on(conn)
            .optional()?;
        let Some(opened) = position else {
            return Ok(Vec::new());
        };
        let id = after.to_string();
        rows = rows.filter(
            incidents::opened_at
                .lt(opened)
                .or(incidents::opened_at.eq(opened).and(incidents::id.lt(id))),
        );
    }
    let rows: Vec<Joined> = rows.load(conn)?;
    rows.into_iter().map(decode).collect()
}

fn write_row(conn: &mut DbConn, incident: &Incident, insert: bool) -> Result<usize, StoreError> {
    let values = (
        incidents::application_id.eq(incident.application.as_ref().map(|a| a.id.to_string())),
        incidents::environment_id.eq(incident.environment.as_ref().map(|e| e.id.to_string())),
        incidents::title.eq(&incident.title),
        incidents::severity.eq(incident.severity.as_deref()),
        incidents::url.eq(incident.url.as_deref()),
        incidents::opened_at.eq(incident.state.opened_at.unix_micros()),
        incidents::resolved_at.eq(incident.state.resolved_at.map(|t| t.unix_micros())),
        incidents::changed_at.eq(incident.state.changed_at.unix_micros()),
        incidents::blamed_deployment_id.eq(incident.blame.deployment.map(|d| d.to_string())),
        incidents::blamed_commit.eq(incident.blame.commit.as_ref().map(|c| c.to_string())),
        incidents::blamed_reference.eq(incident.blame.reference.as_ref().map(|r| r.to_string())),
        incidents::updated_at.eq(incident.updated_at.unix_micros()),
    );
    if insert {
        // A concurrent first update of the same incident: the unique key lets one in; the
        // other finds it below and folds itself in.
        Ok(diesel::insert_into(incidents::table)
            .values((
                incidents::id.eq(incident.id.to_string()),
                incidents::workspace_id.eq(incident.workspace.to_string()),
                incidents::project_id.eq(incident.project.id.to_string()),
                incidents::source.eq(incident.source.as_str()),
                incidents::external_id.eq(&incident.external_id),
                incidents::integration_id.eq(incident.integration.map(|i| i.to_string())),
                incidents::created_at.eq(incident.created_at.unix_micros()),
                values,
            ))
            .on_conflict((
                incidents::workspace_id,
                incidents::project_id,
                incidents::source,
                incidents::external_id,
            ))
            .do_nothing()
            .execute_on(conn)?)
    } else {
        Ok(
            diesel::update(incidents::table.filter(incidents::id.eq(incident.id.to_string())))
                .set(values)
                .execute_on(conn)?,
        )
    }
}

/// Locks an incident's row for the rest of the transaction (a no-op update: PostgreSQL takes the
/// row lock; SQLite's single writer already serializes), so two updates never fold into the
/// same old state.
fn lock(conn: &mut DbConn, id: IncidentId) -> Result<(), StoreError> {
    diesel::update(incidents::table.filter(incidents::id.eq(id.to_string())))
        .set(incidents::changed_at.eq(incidents::changed_at))
        .execute_on(conn)?;
    Ok(())
}

pub(crate) fn upsert(
    conn: &mut DbConn,
    update: &IncidentUpdate,
) -> Result<(Incident, bool), StoreError> {
    let fresh = &update.incident;
    let key = (fresh.project.id, fresh.source, fresh.external_id.as_str());
    if write_row(conn, &merge(None, update.clone()), true)? == 1 {
        let stored = find(conn, fresh.workspace, Some(fresh.id), None)?
            .ok_or_else(|| corrupt("incident", "vanished after insert"))?;
        return Ok((stored, true));
    }
    let existing = find(conn, fresh.workspace, None, Some(key))?
        .ok_or_else(|| corrupt("incident", "conflicting row not found"))?;
    lock(conn, existing.id)?;
    let current = find(conn, fresh.workspace, Some(existing.id), None)?
        .ok_or_else(|| corrupt("incident", "vanished while locked"))?;
    let merged = merge(Some(current), update.clone());
    write_row(conn, &merged, false)?;
    Ok((merged, false))
}

pub(crate) fn patch(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    id: IncidentId,
    change: &IncidentPatch,
    at: Timestamp,
) -> Result<Option<Incident>, StoreError> {
    lock(conn, id)?;
    let Some(current) = find(conn, workspace, Some(id), None)? else {
        return Ok(None);
    };
    let changed = patched(current, change.clone(), at);
    write_row(conn, &changed, false)?;
    Ok(Some(changed))
}

#[async_trait]
impl IncidentStore for Store {
    async fn upsert_incident(
        &self,
        update: shiplog_app::incidents::IncidentUpdate,
    ) -> Result<(shiplog_app::incidents::Incident, bool), BackendFailure> {
        Ok(self
            .write(move |conn| crate::incidents::upsert(conn, &update))
            .await?)
    }

    async fn patch_incident(
        &self,
        workspace: WorkspaceId,
        id: shiplog_app::ids::IncidentId,
        patch: shiplog_app::incidents::IncidentPatch,
        at: Timestamp,
    ) -> Result<Option<shiplog_app::incidents::Incident>, BackendFailure> {
        Ok(self
            .write(move |conn| crate::incidents::patch(conn, workspace, id, &patch, at))
            .await?)
    }

    async fn incident(
        &self,
        workspace: WorkspaceId,
        id: shiplog_app::ids::IncidentId,
    ) -> Result<Option<shiplog_app::incidents::Incident>, BackendFailure> {
        Ok(self
            .read(move |conn| crate::incidents::get(conn, workspace, id))
            .await?)
    }

    async fn incidents(
        &self,
        workspace: WorkspaceId,
        query: shiplog_app::incidents::IncidentQuery,
    ) -> Result<Vec<shiplog_app::incidents::Incident>, BackendFailure> {
        Ok(self
            .read(move |conn| crate::incidents::list(conn, workspace, &query))
            .await?)
    }
}
