//! Environments of a workspace: their rows, creation, assignment, the environments board,
//! and the `EnvironmentStore` port.
//!
//! Environments: creation, assignments, and the board.

use std::collections::HashMap;

use async_trait::async_trait;
use diesel::prelude::*;
use shiplog_app::ids::{EnvironmentId, ProjectId, TeamId, WorkspaceId};
use shiplog_app::model::{BoardEntry, Deployment, Environment};
use shiplog_app::ports::{AssignmentPlan, EnvironmentStore, EnvironmentStoreError};
use shiplog_domain::environment::EnvironmentKind;
use shiplog_domain::ids::{ApplicationCode, EnvironmentCode};
use shiplog_domain::status::DeploymentStatus;
use shiplog_domain::timestamp::Timestamp;

use crate::Store;
use crate::columns::{opt_time, parse_or_corrupt, time, uuid};
use crate::conn::{DbConn, Native, sqlite_keeps_prepared};
use crate::deployments::DeploymentRow;
use crate::deployments::ingest::{check_environment_limit, next_position};
use crate::deployments::list::{JoinedRow, joined_deployments, to_deployments};
use crate::error::{StoreError, corrupt, taken_or};
use crate::schema::{application_environments, applications, deployments, environments, projects};

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
        .execute_on(conn)?;
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
            .first_on::<String>(conn)
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
                    .execute_on(conn)?;
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
                        .first_on::<String>(conn)
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
                .get_result_on::<i64>(conn)?;
            if exists == 0 {
                diesel::insert_into(application_environments::table)
                    .values((
                        application_environments::application_id.eq(&application),
                        application_environments::environment_id.eq(&environment),
                        application_environments::created_at.eq(now.unix_micros()),
                    ))
                    .execute_on(conn)?;
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
    let query = sqlite_keeps_prepared(
        diesel::sql_query(BOARD_SQL)
            .bind::<diesel::sql_types::Text, _>(DeploymentStatus::Success.as_str())
            .bind::<diesel::sql_types::Text, _>(DeploymentStatus::Pending.as_str())
            .bind::<diesel::sql_types::Text, _>(DeploymentStatus::Running.as_str())
            .bind::<diesel::sql_types::Text, _>(workspace.to_string())
            .bind::<diesel::sql_types::Text, _>(project.to_string()),
    );
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

#[async_trait]
impl EnvironmentStore for Store {
    async fn create(
        &self,
        environment: Environment,
        position: Option<i32>,
    ) -> Result<Environment, EnvironmentStoreError> {
        let code = environment.code.clone();
        self.write(move |conn| {
            crate::environments::create_environment(conn, &environment, position)
        })
        .await
        .map_err(taken_or(|| EnvironmentStoreError::CodeTaken(code)))
    }

    async fn get(
        &self,
        workspace: WorkspaceId,
        code: &EnvironmentCode,
    ) -> Result<Option<Environment>, EnvironmentStoreError> {
        let code = code.to_string();
        Ok(self
            .read(move |conn| {
                environments::table
                    .filter(environments::workspace_id.eq(workspace.to_string()))
                    .filter(environments::code.eq(&code))
                    .select(EnvironmentRow::as_select())
                    .first::<EnvironmentRow>(conn)
                    .optional()?
                    .map(EnvironmentRow::into_record)
                    .transpose()
            })
            .await?)
    }

    async fn list(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<Environment>, EnvironmentStoreError> {
        Ok(self
            .read(move |conn| {
                environments::table
                    .filter(environments::workspace_id.eq(workspace.to_string()))
                    .order((environments::position.asc(), environments::code.asc()))
                    .select(EnvironmentRow::as_select())
                    .load::<EnvironmentRow>(conn)?
                    .into_iter()
                    .map(EnvironmentRow::into_record)
                    .collect()
            })
            .await?)
    }

    async fn assign(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
        plans: Vec<AssignmentPlan>,
        at: Timestamp,
    ) -> Result<usize, EnvironmentStoreError> {
        Ok(self
            .write(move |conn| crate::environments::assign(conn, workspace, project, &plans, at))
            .await?)
    }

    async fn board(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
    ) -> Result<Vec<BoardEntry>, EnvironmentStoreError> {
        Ok(self
            .read(move |conn| crate::environments::board(conn, workspace, project))
            .await?)
    }
}
