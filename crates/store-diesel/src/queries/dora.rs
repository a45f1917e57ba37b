//! The records of a DORA query.

use diesel::prelude::*;
use shiplog_app::ids::WorkspaceId;
use shiplog_app::ports::{DoraData, DoraQuery};
use shiplog_domain::dora::{DeploymentRecord as DoraRecord, Outcome};
use shiplog_domain::environment::EnvironmentKind;
use shiplog_domain::ids::EnvironmentCode;
use shiplog_domain::status::DeploymentStatus;

use crate::conn::{DbConn, Native};
use crate::error::{StoreError, corrupt};
use crate::rows::{opt_time, time};
use crate::schema::{applications, deployments, environments};

/// Per application of one environment: its last failure and last success before the window and
/// its first success after it (time and id), each one seek of `deployments_by_place`.
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
    /// The id of that success, which an explanation names as what ended an incident.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    succeeded_after_id: Option<String>,
}

pub(crate) const DORA_EDGES_SQL: &str = "\
SELECT a.id AS application_id,
  (SELECT MAX(d.deployed_at) FROM deployments d WHERE d.application_id = a.id
     AND d.environment_id = $1 AND d.status = $2 AND d.deployed_at < $3) AS failed_before,
  (SELECT MAX(d.deployed_at) FROM deployments d WHERE d.application_id = a.id
     AND d.environment_id = $1 AND d.status = $4 AND d.deployed_at < $3) AS succeeded_before,
  (SELECT MIN(d.deployed_at) FROM deployments d WHERE d.application_id = a.id
     AND d.environment_id = $1 AND d.status = $4 AND d.deployed_at >= $5) AS succeeded_after,
  (SELECT d.id FROM deployments d WHERE d.application_id = a.id
     AND d.environment_id = $1 AND d.status = $4 AND d.deployed_at >= $5
     ORDER BY d.deployed_at, d.id LIMIT 1) AS succeeded_after_id
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
            let mut record = edge_record("after", Outcome::Succeeded, succeeded)?;
            if let Some(id) = &edge.succeeded_after_id {
                // The real deployment, so an explanation can name what ended an incident.
                record.id.clone_from(id);
            }
            data.records.push(record);
        }
    }
    Ok(())
}
