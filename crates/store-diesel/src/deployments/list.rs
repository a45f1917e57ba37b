//! Deployments as the API shows them: one, a page, and their events.

use std::collections::HashMap;

use diesel::prelude::*;
use shiplog_app::ids::{ApplicationId, DeploymentId, ProjectId, WorkspaceId};
use shiplog_app::model::{Deployment, PipelineEventRecord};
use shiplog_app::pagination::Cursor;
use shiplog_app::ports::{DeploymentPage, DeploymentQuery};
use shiplog_domain::environment::EnvironmentKind;
use shiplog_domain::ids::{
    ApplicationCode, CommitSha, EnvironmentCode, IdempotencyKey, ProjectSlug,
};
use shiplog_domain::reference::{Reference, ReferenceKey};

use crate::columns::{opt_time, status, time, uuid};
use crate::conn::{DbConn, Native};
use crate::deployments::{DeploymentRow, EventRow};
use crate::error::{StoreError, corrupt};
use crate::schema::{
    applications, deployment_references, deployments, environments, pipeline_events, projects,
};

/// A deployment row with what the API shows beside it.
pub(crate) type JoinedRow = (DeploymentRow, i64, String, String, String, String);

/// The deployments of joined rows, in their order, with their references: one query for the
/// references of them all, however many there are.
pub(crate) fn to_deployments(
    conn: &mut DbConn,
    joined: Vec<JoinedRow>,
) -> Result<Vec<Deployment>, StoreError> {
    let ids: Vec<&str> = joined.iter().map(|(row, ..)| row.id.as_str()).collect();
    let mut references: HashMap<String, Vec<Reference>> = HashMap::with_capacity(ids.len());
    if !ids.is_empty() {
        let rows = deployment_references::table
            .filter(deployment_references::deployment_id.eq_any(&ids))
            .order((
                deployment_references::deployment_id.asc(),
                deployment_references::position.asc(),
            ))
            .select((
                deployment_references::deployment_id,
                deployment_references::ref_key,
                deployment_references::closing,
            ))
            .load::<(String, String, bool)>(conn)?;
        for (deployment, key, closing) in rows {
            let key = ReferenceKey::parse(&key).map_err(|_| corrupt("reference", &key))?;
            references
                .entry(deployment)
                .or_default()
                .push(Reference { key, closing });
        }
    }
    joined
        .into_iter()
        .map(|joined| {
            let references = references.remove(&joined.0.id).unwrap_or_default();
            to_deployment(joined, references)
        })
        .collect()
}

fn to_deployment(joined: JoinedRow, references: Vec<Reference>) -> Result<Deployment, StoreError> {
    let (row, _seq, slug, application, environment, kind) = joined;
    Ok(Deployment {
        id: row.deployment_id()?,
        project: ProjectSlug::parse(&slug).map_err(|_| corrupt("project slug", &slug))?,
        application: ApplicationCode::parse(&application)
            .map_err(|_| corrupt("application code", &application))?,
        application_id: ApplicationId::from_uuid(uuid(&row.application_id)?),
        environment: EnvironmentCode::parse(&environment)
            .map_err(|_| corrupt("environment code", &environment))?,
        environment_kind: EnvironmentKind::parse(&kind).map_err(|_| corrupt("kind", &kind))?,
        status: status(&row.status)?,
        provider: row.provider(),
        provider_status: row.provider_status.clone(),
        idempotency_key: IdempotencyKey::parse(&row.idempotency_key)
            .map_err(|_| corrupt("idempotency key", &row.idempotency_key))?,
        fields: row.fields()?,
        started_at: opt_time(row.started_at)?,
        finished_at: opt_time(row.finished_at)?,
        created_at: time(row.created_at)?,
        updated_at: time(row.updated_at)?,
        references,
        rework: row.rework()?,
    })
}

macro_rules! joined_deployments {
    () => {
        deployments::table
            .inner_join(projects::table)
            .inner_join(applications::table)
            .inner_join(environments::table)
            .select((
                DeploymentRow::as_select(),
                deployments::seq,
                projects::slug,
                applications::code,
                environments::code,
                environments::kind,
            ))
    };
}
pub(crate) use joined_deployments;

/// One deployment of a workspace.
pub(crate) fn get_deployment(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    id: DeploymentId,
) -> Result<Option<Deployment>, StoreError> {
    let joined = joined_deployments!()
        .filter(deployments::workspace_id.eq(workspace.to_string()))
        .filter(deployments::id.eq(id.to_string()))
        .first::<JoinedRow>(conn)
        .optional()?;
    Ok(to_deployments(conn, joined.into_iter().collect())?.pop())
}

/// A deployment with the id of its environment (the API shows the environment's code only).
#[derive(Clone)]
pub(crate) struct Placed {
    pub(crate) deployment: Deployment,
    pub(crate) environment_id: String,
}

/// Deployments by id (those of this list that exist), with their references.
pub(crate) fn deployments_by_id(
    conn: &mut DbConn,
    ids: &[&str],
) -> Result<HashMap<String, Placed>, StoreError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let joined = joined_deployments!()
        .filter(deployments::id.eq_any(ids))
        .load::<JoinedRow>(conn)?;
    let environments: Vec<String> = joined
        .iter()
        .map(|(row, ..)| row.environment_id.clone())
        .collect();
    Ok(to_deployments(conn, joined)?
        .into_iter()
        .zip(environments)
        .map(|(deployment, environment_id)| {
            (
                deployment.id.to_string(),
                Placed {
                    deployment,
                    environment_id,
                },
            )
        })
        .collect())
}

/// A page of deployments, newest first by their own time (`deployed_at`: finished, else
/// started, else created), ties broken by id; `deployments_by_workspace_time` and
/// `deployments_by_project_time` serve it.
pub(crate) fn list_deployments(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    query: &DeploymentQuery,
) -> Result<DeploymentPage, StoreError> {
    let mut select = joined_deployments!()
        .filter(deployments::workspace_id.eq(workspace.to_string()))
        .into_boxed();
    if let Some(project) = query.project {
        select = select.filter(deployments::project_id.eq(project.to_string()));
    }
    if let Some(environment) = &query.environment {
        select = select.filter(environments::code.eq(environment.to_string()));
    }
    if let Some(application) = &query.application {
        select = select.filter(applications::code.eq(application.to_string()));
    }
    if let Some(wanted) = query.status {
        select = select.filter(deployments::status.eq(wanted.as_str()));
    }
    if let Some(since) = query.since {
        select = select.filter(deployments::deployed_at.ge(since.unix_micros()));
    }
    if let Some(until) = query.until {
        select = select.filter(deployments::deployed_at.lt(until.unix_micros()));
    }
    if let Some(cursor) = query.cursor {
        let at = match cursor.at() {
            Some(at) => at.unix_micros(),
            // A cursor from before listings were in time order names only its deployment, in
            // this workspace only: elsewhere it means nothing.
            None => deployments::table
                .filter(deployments::workspace_id.eq(workspace.to_string()))
                .filter(deployments::id.eq(cursor.last().to_string()))
                .select(deployments::deployed_at)
                .first_on::<i64>(conn)
                .optional()?
                .ok_or(StoreError::UnknownCursor)?,
        };
        let last = cursor.last().to_string();
        select = select.filter(
            deployments::deployed_at.lt(at).or(deployments::deployed_at
                .eq(at)
                .and(deployments::id.lt(last))),
        );
    }
    let limit = i64::from(query.limit.max(1));
    let mut rows = select
        .order((deployments::deployed_at.desc(), deployments::id.desc()))
        .limit(limit + 1)
        .load::<JoinedRow>(conn)?;
    let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = match rows.last() {
        Some((row, ..)) if more => {
            Some(Cursor::after(row.deployment_id()?, time(row.deployed_at)?))
        }
        _ => None,
    };
    let items = to_deployments(conn, rows)?;
    Ok(DeploymentPage { items, next_cursor })
}

/// The events of one deployment, oldest first.
pub(crate) fn events_for_commit(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    project: ProjectId,
    commit: &CommitSha,
    limit: u32,
) -> Result<Vec<PipelineEventRecord>, StoreError> {
    pipeline_events::table
        .filter(pipeline_events::workspace_id.eq(workspace.to_string()))
        .filter(pipeline_events::commit_sha.eq(commit.as_str()))
        .filter(pipeline_events::project_id.eq(project.to_string()))
        .order((
            pipeline_events::occurred_at.asc(),
            pipeline_events::seq.asc(),
        ))
        .limit(i64::from(limit))
        .select(EventRow::as_select())
        .load::<EventRow>(conn)?
        .into_iter()
        .map(EventRow::into_record)
        .collect()
}

pub(crate) fn events_for_deployment(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    deployment: DeploymentId,
) -> Result<Vec<PipelineEventRecord>, StoreError> {
    pipeline_events::table
        .filter(pipeline_events::workspace_id.eq(workspace.to_string()))
        .filter(pipeline_events::deployment_id.eq(deployment.to_string()))
        .order(pipeline_events::seq.asc())
        .select(EventRow::as_select())
        .load::<EventRow>(conn)?
        .into_iter()
        .map(EventRow::into_record)
        .collect()
}
