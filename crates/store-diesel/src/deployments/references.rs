//! Change requests (references) and the deployments that carried them.

use diesel::prelude::*;
use shiplog_app::ids::{ProjectId, WorkspaceId};
use shiplog_app::model::{ReferenceStatus, ReferenceView};
use shiplog_domain::ids::EnvironmentCode;
use shiplog_domain::reference::ReferenceKey;

use crate::columns::opt_time;
use crate::conn::{DbConn, Native};
use crate::deployments::DeploymentRow;
use crate::deployments::list::{JoinedRow, joined_deployments, to_deployments};
use crate::error::{StoreError, corrupt};
use crate::schema::{
    applications, change_references, deployment_references, deployments, environments, projects,
};

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
        .load_on(conn)?;
    let carried = if ids.is_empty() {
        Vec::new()
    } else {
        joined_deployments!()
            .filter(deployments::id.eq_any(&ids))
            .order((deployments::deployed_at.desc(), deployments::id.desc()))
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
