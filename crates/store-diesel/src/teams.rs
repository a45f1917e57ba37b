//! Teams: their rows and the `TeamStore` port.

use async_trait::async_trait;
use diesel::prelude::*;
use shiplog_app::ids::{TeamId, WorkspaceId};
use shiplog_app::model::Team;
use shiplog_app::ports::{TeamStore, TeamStoreError};
use shiplog_domain::ids::TeamCode;

use crate::Store;
use crate::columns::{parse_or_corrupt, time, uuid};
use crate::conn::Native;
use crate::error::{StoreError, taken_or};
use crate::schema::teams;

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

#[async_trait]
impl TeamStore for Store {
    async fn create(&self, team: Team) -> Result<(), TeamStoreError> {
        let code = team.code.clone();
        let row = TeamRow::from_record(&team);
        self.write(move |conn| {
            diesel::insert_into(teams::table)
                .values(&row)
                .execute_on(conn)?;
            Ok(())
        })
        .await
        .map_err(taken_or(|| TeamStoreError::CodeTaken(code)))
    }

    async fn get(
        &self,
        workspace: WorkspaceId,
        code: &TeamCode,
    ) -> Result<Option<Team>, TeamStoreError> {
        let code = code.to_string();
        Ok(self
            .read(move |conn| {
                teams::table
                    .filter(teams::workspace_id.eq(workspace.to_string()))
                    .filter(teams::code.eq(&code))
                    .select(TeamRow::as_select())
                    .first::<TeamRow>(conn)
                    .optional()?
                    .map(TeamRow::into_record)
                    .transpose()
            })
            .await?)
    }

    async fn list(&self, workspace: WorkspaceId) -> Result<Vec<Team>, TeamStoreError> {
        Ok(self
            .read(move |conn| {
                teams::table
                    .filter(teams::workspace_id.eq(workspace.to_string()))
                    .order(teams::code.asc())
                    .select(TeamRow::as_select())
                    .load::<TeamRow>(conn)?
                    .into_iter()
                    .map(TeamRow::into_record)
                    .collect()
            })
            .await?)
    }
}
