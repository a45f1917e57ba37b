//! Reads, and the writes other than ingest.

use std::collections::HashMap;

use diesel::prelude::*;
use shiplog_app::ids::{ApplicationId, DeploymentId, ProjectId, WorkspaceId};
use shiplog_app::model::{
    BoardEntry, Deployment, Environment, PipelineEventRecord, ReferenceStatus, ReferenceView,
};
use shiplog_app::pagination::Cursor;
use shiplog_app::ports::{AssignmentPlan, DeploymentPage, DeploymentQuery, DoraData, DoraQuery};
use shiplog_domain::dora::{DeploymentRecord as DoraRecord, Outcome};
use shiplog_domain::environment::EnvironmentKind;
use shiplog_domain::ids::{ApplicationCode, EnvironmentCode, IdempotencyKey, ProjectSlug};
use shiplog_domain::reference::{Reference, ReferenceKey};
use shiplog_domain::status::DeploymentStatus;
use shiplog_domain::timestamp::Timestamp;

use crate::conn::{DbConn, Native};
use crate::error::{StoreError, corrupt};
use crate::ingest::{check_environment_limit, next_position};
use crate::rows::{DeploymentRow, EnvironmentRow, EventRow, opt_time, status, time, uuid};
use crate::schema::{
    application_environments, applications, change_references, deployment_references, deployments,
    environments, pipeline_events, projects,
};

/// A deployment row with what the API shows beside it.
type JoinedRow = (DeploymentRow, i64, String, String, String, String);

/// The deployments of joined rows, in their order, with their references: one query for the
/// references of them all, however many there are.
fn to_deployments(
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

/// A page of deployments, newest first.
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
        // The cursor's deployment, in this workspace only: elsewhere it means nothing.
        let position = deployments::table
            .filter(deployments::workspace_id.eq(workspace.to_string()))
            .filter(deployments::id.eq(cursor.last().to_string()))
            .select(deployments::seq)
            .first::<i64>(conn)
            .optional()?
            .ok_or(StoreError::UnknownCursor)?;
        select = select.filter(deployments::seq.lt(position));
    }
    let limit = i64::from(query.limit.max(1));
    let mut rows = select
        .order(deployments::seq.desc())
        .limit(limit + 1)
        .load::<JoinedRow>(conn)?;
    let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = match rows.last() {
        Some((row, ..)) if more => Some(Cursor::after(row.deployment_id()?)),
        _ => None,
    };
    let items = to_deployments(conn, rows)?;
    Ok(DeploymentPage { items, next_cursor })
}

/// A reference of a project with the deployments that carried it, newest first.
pub(crate) fn get_reference(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    project: ProjectId,
    key: &ReferenceKey,
) -> Result<Option<ReferenceView>, StoreError> {
    let project_id = project.to_string();
    let row = change_references::table
        .filter(change_references::workspace_id.eq(workspace.to_string()))
        .filter(change_references::project_id.eq(&project_id))
        .filter(change_references::ref_key.eq(key.as_str()))
        .select((
            change_references::status,
            change_references::deployed_at,
            change_references::deployed_environment_id,
        ))
        .first::<(String, Option<i64>, Option<String>)>(conn)
        .optional()?;
    let Some((state, deployed_at, deployed_environment)) = row else {
        return Ok(None);
    };
    let ids: Vec<String> = deployment_references::table
        .filter(deployment_references::project_id.eq(&project_id))
        .filter(deployment_references::ref_key.eq(key.as_str()))
        .select(deployment_references::deployment_id)
        .load(conn)?;
    let carried = if ids.is_empty() {
        Vec::new()
    } else {
        joined_deployments!()
            .filter(deployments::id.eq_any(&ids))
            .order(deployments::seq.desc())
            .load::<JoinedRow>(conn)?
    };
    let deployments = to_deployments(conn, carried)?;
    let deployed_to = match deployed_environment {
        Some(id) => {
            let code: String = environments::table
                .filter(environments::id.eq(id))
                .select(environments::code)
                .first(conn)?;
            Some(EnvironmentCode::parse(&code).map_err(|_| corrupt("environment code", &code))?)
        }
        None => None,
    };
    Ok(Some(ReferenceView {
        key: key.clone(),
        status: ReferenceStatus::parse(&state)
            .ok_or_else(|| corrupt("reference status", &state))?,
        deployed_at: opt_time(deployed_at)?,
        deployed_to,
        deployments,
    }))
}

/// The events of one deployment, oldest first.
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

/// Creates an environment, checking the workspace's limit in the same transaction.
pub(crate) fn create_environment(
    conn: &mut DbConn,
    environment: &Environment,
    position: Option<i32>,
) -> Result<Environment, StoreError> {
    let mut row = EnvironmentRow::from_record(environment);
    check_environment_limit(conn, &row.workspace_id)?;
    row.position = match position {
        Some(position) => position,
        None => next_position(conn, &row.workspace_id)?,
    };
    diesel::insert_into(environments::table)
        .values(&row)
        .execute(conn)?;
    row.into_record()
}

/// Assigns applications to environments; all or nothing; returns the new assignments.
pub(crate) fn assign(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    project: ProjectId,
    plans: &[AssignmentPlan],
    now: Timestamp,
) -> Result<usize, StoreError> {
    let project_id = project.to_string();
    let mut environment_ids: HashMap<EnvironmentCode, String> = HashMap::new();
    let mut added = 0;
    for plan in plans {
        let application = match applications::table
            .filter(applications::project_id.eq(&project_id))
            .filter(applications::code.eq(plan.application.code.as_str()))
            .select(applications::id)
            .first::<String>(conn)
            .optional()?
        {
            Some(id) => id,
            None => {
                let id = plan.application.new_id.to_string();
                diesel::insert_into(applications::table)
                    .values((
                        applications::id.eq(&id),
                        applications::workspace_id.eq(workspace.to_string()),
                        applications::project_id.eq(&project_id),
                        applications::code.eq(plan.application.code.as_str()),
                        applications::name.eq(&plan.application.name),
                        applications::created_at.eq(now.unix_micros()),
                    ))
                    .execute(conn)?;
                id
            }
        };
        for code in &plan.environments {
            let environment = match environment_ids.get(code) {
                Some(id) => id.clone(),
                None => {
                    let id = environments::table
                        .filter(environments::workspace_id.eq(workspace.to_string()))
                        .filter(environments::code.eq(code.as_str()))
                        .select(environments::id)
                        .first::<String>(conn)
                        .optional()?
                        .ok_or_else(|| StoreError::EnvironmentNotFound(code.clone()))?;
                    environment_ids.insert(code.clone(), id.clone());
                    id
                }
            };
            let exists = application_environments::table
                .filter(application_environments::application_id.eq(&application))
                .filter(application_environments::environment_id.eq(&environment))
                .count()
                .get_result::<i64>(conn)?;
            if exists == 0 {
                diesel::insert_into(application_environments::table)
                    .values((
                        application_environments::application_id.eq(&application),
                        application_environments::environment_id.eq(&environment),
                        application_environments::created_at.eq(now.unix_micros()),
                    ))
                    .execute(conn)?;
                added += 1;
            }
        }
    }
    Ok(added)
}

/// One application on one environment of the board, as the board query returns it.
#[derive(QueryableByName)]
struct BoardRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    environment: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    application: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    assigned: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    deployed: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    current_id: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    in_progress_at: Option<i64>,
}

/// Every (environment, application) pair of a project with what the board shows. Each
/// correlated subquery is one seek on `deployments_by_place`; `$n` placeholders are understood by
/// both backends (SQLite reads them as named parameters, numbered in order of appearance).
pub(crate) const BOARD_SQL: &str = "\
SELECT e.code AS environment, a.code AS application,
  EXISTS (SELECT 1 FROM application_environments ae
          WHERE ae.application_id = a.id AND ae.environment_id = e.id) AS assigned,
  EXISTS (SELECT 1 FROM deployments d
          WHERE d.application_id = a.id AND d.environment_id = e.id) AS deployed,
  (SELECT d.id FROM deployments d
   WHERE d.application_id = a.id AND d.environment_id = e.id AND d.status = $1
   ORDER BY d.deployed_at DESC, d.seq DESC LIMIT 1) AS current_id,
  (SELECT MAX(d.deployed_at) FROM deployments d
   WHERE d.application_id = a.id AND d.environment_id = e.id
     AND d.status IN ($2, $3)) AS in_progress_at
FROM environments e
JOIN applications a ON a.workspace_id = e.workspace_id
WHERE e.workspace_id = $4 AND a.project_id = $5
ORDER BY e.position, e.code, a.code";

/// The environments board of a project: its applications assigned or deployed to each of the
/// workspace's environments.
pub(crate) fn board(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    project: ProjectId,
) -> Result<Vec<BoardEntry>, StoreError> {
    let query = diesel::sql_query(BOARD_SQL)
        .bind::<diesel::sql_types::Text, _>(DeploymentStatus::Success.as_str())
        .bind::<diesel::sql_types::Text, _>(DeploymentStatus::Pending.as_str())
        .bind::<diesel::sql_types::Text, _>(DeploymentStatus::Running.as_str())
        .bind::<diesel::sql_types::Text, _>(workspace.to_string())
        .bind::<diesel::sql_types::Text, _>(project.to_string());
    let rows: Vec<BoardRow> = query.load_on(conn)?;
    let rows: Vec<BoardRow> = rows
        .into_iter()
        .filter(|r| r.assigned || r.deployed)
        .collect();
    // Every cell's current deployment in one query.
    let current_ids: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.current_id.as_deref())
        .collect();
    let joined = if current_ids.is_empty() {
        Vec::new()
    } else {
        joined_deployments!()
            .filter(deployments::id.eq_any(&current_ids))
            .load::<JoinedRow>(conn)?
    };
    let mut current_by_id: HashMap<String, Deployment> = to_deployments(conn, joined)?
        .into_iter()
        .map(|d| (d.id.to_string(), d))
        .collect();
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let current = match &row.current_id {
            // Two cells never share a deployment: each has its own application or environment.
            Some(id) => Some(
                current_by_id
                    .remove(id)
                    .ok_or_else(|| corrupt("board deployment", id))?,
            ),
            None => None,
        };
        entries.push(BoardEntry {
            environment: EnvironmentCode::parse(&row.environment)
                .map_err(|_| corrupt("environment code", &row.environment))?,
            application: ApplicationCode::parse(&row.application)
                .map_err(|_| corrupt("application code", &row.application))?,
            assigned: row.assigned,
            current,
            latest_in_progress_at: opt_time(row.in_progress_at)?,
        });
    }
    Ok(entries)
}

/// Per application of one environment: its last failure and last success before the window and
/// its first success after it, each one seek of `deployments_by_place`.
#[derive(QueryableByName)]
struct DoraEdgeRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    application_id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    failed_before: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    succeeded_before: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    succeeded_after: Option<i64>,
}

pub(crate) const DORA_EDGES_SQL: &str = "\
SELECT a.id AS application_id,
  (SELECT MAX(d.deployed_at) FROM deployments d WHERE d.application_id = a.id
     AND d.environment_id = $1 AND d.status = $2 AND d.deployed_at < $3) AS failed_before,
  (SELECT MAX(d.deployed_at) FROM deployments d WHERE d.application_id = a.id
     AND d.environment_id = $1 AND d.status = $4 AND d.deployed_at < $3) AS succeeded_before,
  (SELECT MIN(d.deployed_at) FROM deployments d WHERE d.application_id = a.id
     AND d.environment_id = $1 AND d.status = $4 AND d.deployed_at >= $5) AS succeeded_after
FROM applications a
WHERE a.workspace_id = $6 AND ($7 IS NULL OR a.project_id = $7) AND ($8 IS NULL OR a.id = $8)
  AND EXISTS (SELECT 1 FROM deployments d WHERE d.application_id = a.id AND d.environment_id = $1)";

/// The records of a DORA query (see `DeploymentStore::dora`).
pub(crate) fn dora(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    query: &DoraQuery,
) -> Result<DoraData, StoreError> {
    let workspace_id = workspace.to_string();
    let project = query.project.map(|p| p.to_string());
    let mut scope = environments::table
        .filter(environments::workspace_id.eq(&workspace_id))
        .into_boxed();
    scope = match &query.environment {
        Some(code) => scope.filter(environments::code.eq(code.to_string())),
        None => scope.filter(environments::kind.eq(EnvironmentKind::Production.as_str())),
    };
    let scope: Vec<(String, String)> = scope
        .select((environments::id, environments::code))
        .order((environments::position.asc(), environments::code.asc()))
        .load(conn)?;
    // One application asked for by code: its id in each project in scope (codes are unique per
    // project, so without a project the code may name several applications). `None`: all.
    let applications: Vec<Option<String>> = match &query.application {
        Some(wanted) => {
            let mut ids = applications::table
                .filter(applications::workspace_id.eq(&workspace_id))
                .filter(applications::code.eq(wanted.as_str()))
                .into_boxed();
            if let Some(project) = &project {
                ids = ids.filter(applications::project_id.eq(project));
            }
            ids.select(applications::id)
                .order(applications::id.asc())
                .load::<String>(conn)?
                .into_iter()
                .map(Some)
                .collect()
        }
        None => vec![None],
    };

    let from = query.window.from.unix_micros();
    let to = query.window.to.unix_micros();
    let mut data = DoraData::default();
    for (environment, code) in scope {
        let code = EnvironmentCode::parse(&code).map_err(|_| corrupt("environment code", &code))?;
        data.environments.push(code);
        for application in &applications {
            dora_place(
                conn,
                &mut data,
                DoraPlace {
                    workspace: &workspace_id,
                    project: project.as_deref(),
                    environment: &environment,
                    application: application.as_deref(),
                    from,
                    to,
                },
            )?;
        }
    }
    Ok(data)
}

/// One environment (and optionally one application) of a DORA query.
struct DoraPlace<'a> {
    workspace: &'a str,
    project: Option<&'a str>,
    environment: &'a str,
    application: Option<&'a str>,
    from: i64,
    to: i64,
}

/// Adds the window's records of one place and its edges to `data`.
fn dora_place(
    conn: &mut DbConn,
    data: &mut DoraData,
    place: DoraPlace<'_>,
) -> Result<(), StoreError> {
    use diesel::sql_types::{BigInt, Nullable, Text};

    let DoraPlace {
        workspace,
        project,
        environment,
        application,
        from,
        to,
    } = place;
    let environment = environment.to_owned();
    // The finished deployments of the window: one range scan of the covering
    // `deployments_by_environment_time`, decoded by position (a by-name decode looked every
    // column up by name on every row). A deployment's commit time, when no commit timestamp was
    // sent, is `commit_seen_at`, kept up to date at ingest (`commit_sightings`).
    let success = DeploymentStatus::Success.as_str();
    let mut window = deployments::table
        .filter(deployments::environment_id.eq(&environment))
        .filter(deployments::deployed_at.ge(from))
        .filter(deployments::deployed_at.lt(to))
        .filter(deployments::status.eq_any([success, DeploymentStatus::Failed.as_str()]))
        .select((
            deployments::id,
            deployments::application_id,
            deployments::status.eq(success),
            deployments::deployed_at,
            deployments::commit_sha.is_not_null(),
            deployments::commit_timestamp,
            deployments::commit_seen_at,
        ))
        .into_boxed();
    if let Some(application) = application {
        window = window.filter(deployments::application_id.eq(application));
    }
    if let Some(project) = project {
        window = window.filter(deployments::project_id.eq(project));
    }
    type Row = (String, String, bool, i64, bool, Option<i64>, Option<i64>);
    let rows: Vec<Row> = window.load(conn)?;
    data.records.reserve(rows.len());
    for (id, application, succeeded, deployed_at, has_commit, timestamp, seen) in rows {
        // The commit timestamp when the pipeline sent one, else the first event seen.
        let commit_time = timestamp.or(seen);
        data.records.push(DoraRecord {
            outcome: if succeeded {
                Outcome::Succeeded
            } else {
                Outcome::Failed
            },
            finished_at: time(deployed_at)?,
            has_commit,
            commit_time: opt_time(commit_time)?,
            id,
            application,
            environment: environment.clone(),
        });
    }
    let edges = diesel::sql_query(DORA_EDGES_SQL)
        .bind::<Text, _>(&environment)
        .bind::<Text, _>(DeploymentStatus::Failed.as_str())
        .bind::<BigInt, _>(from)
        .bind::<Text, _>(DeploymentStatus::Success.as_str())
        .bind::<BigInt, _>(to)
        .bind::<Text, _>(workspace)
        .bind::<Nullable<Text>, _>(project)
        .bind::<Nullable<Text>, _>(application);
    let edges: Vec<DoraEdgeRow> = edges.load_on(conn)?;
    for edge in edges {
        let edge_record =
            |tag: &str, outcome: Outcome, at: i64| -> Result<DoraRecord, StoreError> {
                Ok(DoraRecord {
                    id: format!("{tag}:{}:{environment}", edge.application_id),
                    application: edge.application_id.clone(),
                    environment: environment.clone(),
                    outcome,
                    finished_at: time(at)?,
                    has_commit: false,
                    commit_time: None,
                })
            };
        // Only an open incident at the window's start matters before it.
        if let Some(failed) = edge.failed_before
            && edge
                .succeeded_before
                .is_none_or(|succeeded| succeeded < failed)
        {
            data.records
                .push(edge_record("before", Outcome::Failed, failed)?);
        }
        if let Some(succeeded) = edge.succeeded_after {
            data.records
                .push(edge_record("after", Outcome::Succeeded, succeeded)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// SQLite reads `$n` as a named parameter and numbers named parameters in order of first
    /// appearance, while diesel binds by position: a raw statement whose `$3` appears before
    /// its `$2` would bind the wrong values on SQLite only.
    #[test]
    fn raw_statements_name_their_parameters_in_order() {
        for (name, sql) in [
            ("BOARD_SQL", super::BOARD_SQL),
            ("DORA_EDGES_SQL", super::DORA_EDGES_SQL),
            ("LOOKUP_SQL", crate::ingest::LOOKUP_SQL),
            ("SIGHTING_SQL", crate::ingest::SIGHTING_SQL),
            ("RESTART_SQL", crate::ingest::RESTART_SQL),
            ("RESTART_OWNER_SQL", crate::ingest::RESTART_OWNER_SQL),
            ("claim_sql", crate::hooks::claim_sql!("")),
        ] {
            let mut highest = 0u32;
            let mut rest = sql;
            while let Some(at) = rest.find('$') {
                rest = rest.get(at + 1..).unwrap_or_default();
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let n: u32 = digits.parse().unwrap();
                assert!(
                    n <= highest + 1,
                    "{name}: ${n} appears before ${}",
                    highest + 1
                );
                highest = highest.max(n);
            }
            assert!(highest > 0, "{name} has parameters");
        }
    }
}
