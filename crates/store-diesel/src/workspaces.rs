//! Workspaces (tenants): their rows and the `WorkspaceStore` port.

use async_trait::async_trait;
use diesel::prelude::*;
use shiplog_app::ids::WorkspaceId;
use shiplog_app::model::Workspace;
use shiplog_app::ports::{WorkspaceStore, WorkspaceStoreError};
use shiplog_domain::ids::WorkspaceCode;

use crate::Store;
use crate::columns::{parse_or_corrupt, time, uuid};
use crate::conn::Native;
use crate::error::{StoreError, taken_or};
use crate::schema::workspaces;

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

#[async_trait]
impl WorkspaceStore for Store {
    async fn create(&self, workspace: Workspace) -> Result<(), WorkspaceStoreError> {
        let code = workspace.code.clone();
        let row = WorkspaceRow::from_record(&workspace);
        self.write(move |conn| {
            diesel::insert_into(workspaces::table)
                .values(&row)
                .execute_on(conn)?;
            Ok(())
        })
        .await
        .map_err(taken_or(|| WorkspaceStoreError::CodeTaken(code)))
    }

    async fn by_code(
        &self,
        code: &WorkspaceCode,
    ) -> Result<Option<Workspace>, WorkspaceStoreError> {
        let code = code.to_string();
        Ok(self
            .read(move |conn| {
                workspaces::table
                    .filter(workspaces::code.eq(&code))
                    .select(WorkspaceRow::as_select())
                    .first::<WorkspaceRow>(conn)
                    .optional()?
                    .map(WorkspaceRow::into_record)
                    .transpose()
            })
            .await?)
    }

    async fn list(&self) -> Result<Vec<Workspace>, WorkspaceStoreError> {
        Ok(self
            .read(move |conn| {
                workspaces::table
                    .order(workspaces::code.asc())
                    .select(WorkspaceRow::as_select())
                    .load::<WorkspaceRow>(conn)?
                    .into_iter()
                    .map(WorkspaceRow::into_record)
                    .collect()
            })
            .await?)
    }
}
