//! Applications: their rows and the `ApplicationStore` port.

use async_trait::async_trait;
use diesel::prelude::*;
use shiplog_app::hooks::SecretText;
use shiplog_app::ids::{ApplicationId, ProjectId, WorkspaceId};
use shiplog_app::model::Application;
use shiplog_app::ports::{ApplicationStore, ApplicationStoreError};
use shiplog_domain::ids::ApplicationCode;
use shiplog_domain::repo::RepoIdentity;

use crate::Store;
use crate::columns::{parse_or_corrupt, time, uuid};
use crate::conn::Native;
use crate::error::{StoreError, corrupt, taken_or};
use crate::schema::applications;

#[derive(Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = applications)]
pub(crate) struct ApplicationRow {
    pub id: String,
    pub workspace_id: String,
    pub project_id: String,
    pub code: String,
    pub name: String,
    pub repo: Option<String>,
    pub created_at: i64,
    /// The provider of its source-provider credential; the token is never loaded with the row.
    pub source_provider: Option<String>,
}

impl ApplicationRow {
    pub(crate) fn from_record(a: &Application) -> Self {
        Self {
            id: a.id.to_string(),
            workspace_id: a.workspace.to_string(),
            project_id: a.project.to_string(),
            code: a.code.to_string(),
            name: a.name.clone(),
            repo: a.repo.as_ref().map(|r| r.to_string()),
            created_at: a.created_at.unix_micros(),
            source_provider: a.source_provider.clone(),
        }
    }

    pub(crate) fn into_record(self) -> Result<Application, StoreError> {
        Ok(Application {
            id: ApplicationId::from_uuid(uuid(&self.id)?),
            workspace: WorkspaceId::from_uuid(uuid(&self.workspace_id)?),
            project: ProjectId::from_uuid(uuid(&self.project_id)?),
            code: parse_or_corrupt!(ApplicationCode, &self.code, "application code")?,
            name: self.name,
            repo: self
                .repo
                .as_deref()
                .map(|r| RepoIdentity::parse(r).map_err(|_| corrupt("repository", r)))
                .transpose()?,
            created_at: time(self.created_at)?,
            source_provider: self.source_provider,
        })
    }
}

#[async_trait]
impl ApplicationStore for Store {
    async fn set_source_provider(
        &self,
        workspace: WorkspaceId,
        id: ApplicationId,
        provider: String,
        token: SecretText,
    ) -> Result<bool, ApplicationStoreError> {
        Ok(self
            .write(move |conn| {
                let updated = diesel::update(
                    applications::table
                        .filter(applications::workspace_id.eq(workspace.to_string()))
                        .filter(applications::id.eq(id.to_string())),
                )
                .set((
                    applications::source_provider.eq(&provider),
                    applications::source_token.eq(token.reveal()),
                ))
                .execute_on(conn)?;
                Ok(updated > 0)
            })
            .await?)
    }

    async fn create(&self, application: Application) -> Result<(), ApplicationStoreError> {
        let code = application.code.clone();
        let row = ApplicationRow::from_record(&application);
        self.write(move |conn| {
            diesel::insert_into(applications::table)
                .values(&row)
                .execute_on(conn)?;
            Ok(())
        })
        .await
        .map_err(taken_or(|| ApplicationStoreError::CodeTaken(code)))
    }

    async fn get(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
        code: &ApplicationCode,
    ) -> Result<Option<Application>, ApplicationStoreError> {
        let code = code.to_string();
        Ok(self
            .read(move |conn| {
                applications::table
                    .filter(applications::workspace_id.eq(workspace.to_string()))
                    .filter(applications::project_id.eq(project.to_string()))
                    .filter(applications::code.eq(&code))
                    .select(ApplicationRow::as_select())
                    .first::<ApplicationRow>(conn)
                    .optional()?
                    .map(ApplicationRow::into_record)
                    .transpose()
            })
            .await?)
    }

    async fn by_repo(
        &self,
        workspace: WorkspaceId,
        repo: &RepoIdentity,
    ) -> Result<Vec<Application>, ApplicationStoreError> {
        let repo = repo.to_string();
        Ok(self
            .read(move |conn| {
                applications::table
                    .filter(applications::workspace_id.eq(workspace.to_string()))
                    .filter(applications::repo.eq(&repo))
                    .order(applications::created_at.asc())
                    .select(ApplicationRow::as_select())
                    .load::<ApplicationRow>(conn)?
                    .into_iter()
                    .map(ApplicationRow::into_record)
                    .collect()
            })
            .await?)
    }

    async fn list(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
    ) -> Result<Vec<Application>, ApplicationStoreError> {
        Ok(self
            .read(move |conn| {
                applications::table
                    .filter(applications::workspace_id.eq(workspace.to_string()))
                    .filter(applications::project_id.eq(project.to_string()))
                    .order(applications::code.asc())
                    .select(ApplicationRow::as_select())
                    .load::<ApplicationRow>(conn)?
                    .into_iter()
                    .map(ApplicationRow::into_record)
                    .collect()
            })
            .await?)
    }
    async fn by_id(
        &self,
        workspace: WorkspaceId,
        id: ApplicationId,
    ) -> Result<Option<Application>, ApplicationStoreError> {
        Ok(self
            .read(move |conn| {
                applications::table
                    .filter(applications::workspace_id.eq(workspace.to_string()))
                    .filter(applications::id.eq(id.to_string()))
                    .select(ApplicationRow::as_select())
                    .first::<ApplicationRow>(conn)
                    .optional()?
                    .map(ApplicationRow::into_record)
                    .transpose()
            })
            .await?)
    }
}
