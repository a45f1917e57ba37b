//! Projects: their rows, hotfix patterns and the `ProjectStore` port.

use async_trait::async_trait;
use diesel::prelude::*;
use shiplog_app::ids::{ProjectId, WorkspaceId};
use shiplog_app::model::{Project, ProjectLookup};
use shiplog_app::ports::{ProjectStore, ProjectStoreError};
use shiplog_domain::ids::ProjectSlug;

use crate::Store;
use crate::columns::{parse_or_corrupt, time, uuid};
use crate::conn::Native;
use crate::error::{StoreError, taken_or};
use crate::schema::projects;

#[derive(Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = projects)]
pub(crate) struct ProjectRow {
    pub id: String,
    pub workspace_id: String,
    pub slug: String,
    pub name: String,
    pub created_at: i64,
    /// Its own hotfix patterns, one per line; `None`: the defaults.
    pub hotfix_patterns: Option<String>,
}

/// Hotfix patterns as one column: one per line (a pattern is printable text, never a line
/// break).
pub(crate) fn patterns_column(patterns: Option<&[String]>) -> Option<String> {
    patterns.map(|p| p.join("\n"))
}

impl ProjectRow {
    pub(crate) fn from_record(p: &Project) -> Self {
        Self {
            id: p.id.to_string(),
            workspace_id: p.workspace.to_string(),
            slug: p.slug.to_string(),
            name: p.name.clone(),
            created_at: p.created_at.unix_micros(),
            hotfix_patterns: patterns_column(p.hotfix_patterns.as_deref()),
        }
    }

    pub(crate) fn into_record(self) -> Result<Project, StoreError> {
        Ok(Project {
            id: ProjectId::from_uuid(uuid(&self.id)?),
            workspace: WorkspaceId::from_uuid(uuid(&self.workspace_id)?),
            slug: parse_or_corrupt!(ProjectSlug, &self.slug, "project slug")?,
            name: self.name,
            created_at: time(self.created_at)?,
            hotfix_patterns: self.hotfix_patterns.map(|column| {
                column
                    .split('\n')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
        })
    }
}

/// The key of a project lookup in the project cache.
fn project_cache_key(lookup: &ProjectLookup) -> String {
    match lookup {
        ProjectLookup::Id(id) => format!("id {id}"),
        ProjectLookup::Slug(slug) => format!("slug {slug}"),
    }
}

#[async_trait]
impl ProjectStore for Store {
    async fn create(&self, project: Project) -> Result<(), ProjectStoreError> {
        let slug = project.slug.clone();
        let row = ProjectRow::from_record(&project);
        self.write(move |conn| {
            diesel::insert_into(projects::table)
                .values(&row)
                .execute_on(conn)?;
            Ok(())
        })
        .await
        .map_err(taken_or(|| ProjectStoreError::SlugTaken(slug)))
    }

    async fn get(
        &self,
        workspace: WorkspaceId,
        lookup: &ProjectLookup,
    ) -> Result<Option<Project>, ProjectStoreError> {
        let lookup = lookup.clone();
        Ok(self
            .read_through(
                |inner| &inner.projects,
                (workspace, project_cache_key(&lookup)),
                move |conn| {
                    let query = projects::table
                        .filter(projects::workspace_id.eq(workspace.to_string()))
                        .select(ProjectRow::as_select())
                        .into_boxed();
                    let query = match &lookup {
                        ProjectLookup::Id(id) => query.filter(projects::id.eq(id.to_string())),
                        ProjectLookup::Slug(slug) => {
                            query.filter(projects::slug.eq(slug.to_string()))
                        }
                    };
                    query
                        .first::<ProjectRow>(conn)
                        .optional()?
                        .map(ProjectRow::into_record)
                        .transpose()
                },
            )
            .await?)
    }

    async fn list(&self, workspace: WorkspaceId) -> Result<Vec<Project>, ProjectStoreError> {
        Ok(self
            .read(move |conn| {
                projects::table
                    .filter(projects::workspace_id.eq(workspace.to_string()))
                    .order(projects::slug.asc())
                    .select(ProjectRow::as_select())
                    .load::<ProjectRow>(conn)?
                    .into_iter()
                    .map(ProjectRow::into_record)
                    .collect()
            })
            .await?)
    }

    async fn set_hotfix_patterns(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
        patterns: Option<Vec<String>>,
    ) -> Result<(), ProjectStoreError> {
        let column = patterns_column(patterns.as_deref());
        self.write(move |conn| {
            diesel::update(
                projects::table
                    .filter(projects::workspace_id.eq(workspace.to_string()))
                    .filter(projects::id.eq(project.to_string())),
            )
            .set(projects::hotfix_patterns.eq(column.clone()))
            .execute_on(conn)?;
            Ok(())
        })
        .await?;
        // This server's ingests use the new patterns from the next request on.
        self.inner.projects.forget(|p| p.id == project);
        Ok(())
    }
}
