//! Reading deployments and references.

use shiplog_domain::ids::{ApplicationCode, EnvironmentCode, ProjectSlug};
use shiplog_domain::reference::ReferenceKey;
use shiplog_domain::status::DeploymentStatus;
use shiplog_domain::timestamp::Timestamp;

use crate::App;
use crate::auth::{Capability, Principal};
use crate::error::AppError;
use crate::hooks::Delivery;
use crate::ids::DeploymentId;
use crate::model::{Deployment, PipelineEventRecord, ProjectLookup, ReferenceView};
use crate::pagination::{Cursor, DEFAULT_LIMIT, MAX_LIMIT};
use crate::ports::{DeploymentPage, DeploymentQuery};

/// How many events of a deployment's commit [`App::deployment_detail`] shows at most.
pub const DETAIL_EVENTS: u32 = 200;
/// How many deliveries of a deployment [`App::deployment_detail`] shows at most.
pub const DETAIL_DELIVERIES: u32 = 50;

/// A deployment with what explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentDetail {
    /// The deployment.
    pub deployment: Deployment,
    /// The pipeline events of its commit (and its own), oldest first.
    pub events: Vec<PipelineEventRecord>,
    /// The outgoing deliveries made for it, newest first, with their attempts.
    pub deliveries: Vec<Delivery>,
}

/// Filters as a client sends them; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListDeployments {
    /// Only this project.
    pub project: Option<ProjectSlug>,
    /// Only this environment.
    pub environment: Option<EnvironmentCode>,
    /// Only this application.
    pub application: Option<ApplicationCode>,
    /// Only this status.
    pub status: Option<DeploymentStatus>,
    /// From this time on.
    pub since: Option<Timestamp>,
    /// Before this time.
    pub until: Option<Timestamp>,
    /// Page size; default [`DEFAULT_LIMIT`].
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl App {
    /// Which workspaces recorded pipeline events after `after`, a position from an earlier
    /// answer (`None`: only where the record stands). Server-internal: the dashboard's live
    /// feeds' one shared change source; it answers workspace ids, nothing of their content.
    pub async fn deployment_changes(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<crate::ports::EventChanges, AppError> {
        Ok(self.ports.deployments.changes_after(after, limit).await?)
    }

    /// A page of deployments, newest first.
    pub async fn list_deployments(
        &self,
        caller: &Principal,
        request: ListDeployments,
    ) -> Result<DeploymentPage, AppError> {
        caller.require(Capability::Read, "read deployments")?;
        let limit = request.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(AppError::invalid(
                "limit",
                format!("{limit} is out of range: send 1 to {MAX_LIMIT}"),
            ));
        }
        let cursor = match request
            .cursor
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            None => None,
            Some(text) => Some(Cursor::parse(text).ok_or_else(|| {
                AppError::invalid(
                    "cursor",
                    "send back the next_cursor of the previous page unchanged",
                )
            })?),
        };
        if let (Some(since), Some(until)) = (request.since, request.until)
            && since >= until
        {
            return Err(AppError::invalid("since", "must be before until"));
        }
        let project = match request.project {
            Some(slug) => Some(
                self.visible_project(caller, &ProjectLookup::Slug(slug))
                    .await?
                    .id,
            ),
            None => caller.project,
        };
        let query = DeploymentQuery {
            project,
            environment: request.environment,
            application: request.application,
            status: request.status,
            since: request.since,
            until: request.until,
            limit,
            cursor,
        };
        Ok(self.ports.deployments.list(caller.workspace, query).await?)
    }

    /// One deployment by id; ids of other workspaces or projects are not found.
    pub async fn get_deployment(
        &self,
        caller: &Principal,
        id: &str,
    ) -> Result<Deployment, AppError> {
        caller.require(Capability::Read, "read deployments")?;
        let not_found = || AppError::DeploymentNotFound(id.chars().take(80).collect());
        let id = DeploymentId::parse(id).ok_or_else(not_found)?;
        let deployment = self
            .ports
            .deployments
            .get(caller.workspace, id)
            .await?
            .ok_or_else(not_found)?;
        if caller.project.is_some() {
            // A project-scoped key only sees its own project's deployments.
            self.visible_project(caller, &ProjectLookup::Slug(deployment.project.clone()))
                .await
                .map_err(|_| not_found())?;
        }
        Ok(deployment)
    }

    /// One deployment with what explains it: the pipeline events of its commit in its project
    /// (builds, tests and deploys everywhere, with its own events when they name no commit),
    /// oldest first, and the outgoing deliveries made for it, newest first.
    pub async fn deployment_detail(
        &self,
        caller: &Principal,
        id: &str,
    ) -> Result<DeploymentDetail, AppError> {
        let deployment = self.get_deployment(caller, id).await?;
        let mut events = self
            .ports
            .events
            .for_deployment(caller.workspace, deployment.id)
            .await?;
        if let Some(commit) = deployment.fields.commit_sha.clone() {
            let project = self
                .visible_project(caller, &ProjectLookup::Slug(deployment.project.clone()))
                .await?;
            let of_commit = self
                .ports
                .events
                .for_commit(caller.workspace, project.id, commit, DETAIL_EVENTS)
                .await?;
            events.retain(|own| !of_commit.iter().any(|e| e.id == own.id));
            events.extend(of_commit);
            events.sort_by_key(|e| e.occurred_at);
        }
        let deliveries = self
            .ports
            .hooks
            .deployment_deliveries(caller.workspace, deployment.id, DETAIL_DELIVERIES)
            .await?;
        Ok(DeploymentDetail {
            deployment,
            events,
            deliveries,
        })
    }

    /// A change request of a project, with its status and deployments.
    pub async fn get_reference(
        &self,
        caller: &Principal,
        project: ProjectSlug,
        key: &str,
    ) -> Result<ReferenceView, AppError> {
        caller.require(Capability::Read, "read references")?;
        let key = ReferenceKey::parse(key).map_err(|e| AppError::invalid("key", e.to_string()))?;
        let project = self
            .visible_project(caller, &ProjectLookup::Slug(project))
            .await?;
        self.ports
            .references
            .get(caller.workspace, project.id, &key)
            .await?
            .ok_or_else(|| AppError::ReferenceNotFound(key.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ProjectId;
    use crate::testing::{TestPorts, admin, ids, ingester, project, sample_deployment};

    #[tokio::test]
    async fn filters_reach_the_store_validated() {
        let mut ports = TestPorts::new();
        ports.with_project();
        ports
            .deployments
            .expect_list()
            .withf(|_, q| {
                q.project == Some(project().id)
                    && q.status == Some(DeploymentStatus::Failed)
                    && q.limit == 10
                    && q.cursor
                        == Some(Cursor::after(
                            DeploymentId::from_uuid(ids(42)),
                            Timestamp::UNIX_EPOCH,
                        ))
                    && q.environment.as_ref().map(EnvironmentCode::as_str) == Some("production")
            })
            .returning(|_, _| {
                Ok(DeploymentPage {
                    items: vec![sample_deployment()],
                    next_cursor: None,
                })
            });
        let page = ports
            .app()
            .list_deployments(
                &admin(),
                ListDeployments {
                    project: Some(ProjectSlug::parse("my-project").unwrap()),
                    environment: Some(EnvironmentCode::parse("production").unwrap()),
                    status: Some(DeploymentStatus::Failed),
                    limit: Some(10),
                    cursor: Some(
                        Cursor::after(DeploymentId::from_uuid(ids(42)), Timestamp::UNIX_EPOCH)
                            .to_string(),
                    ),
                    ..ListDeployments::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
    }

    #[tokio::test]
    async fn bad_paging_is_refused_with_the_field_named() {
        let app = TestPorts::new().app();
        for (request, field) in [
            (
                ListDeployments {
                    limit: Some(0),
                    ..Default::default()
                },
                "limit",
            ),
            (
                ListDeployments {
                    limit: Some(201),
                    ..Default::default()
                },
                "limit",
            ),
            (
                ListDeployments {
                    cursor: Some("garbage".into()),
                    ..Default::default()
                },
                "cursor",
            ),
            (
                ListDeployments {
                    since: Some(Timestamp::from_unix_seconds(10).unwrap()),
                    until: Some(Timestamp::from_unix_seconds(5).unwrap()),
                    ..Default::default()
                },
                "since",
            ),
        ] {
            let err = app.list_deployments(&admin(), request).await.unwrap_err();
            assert!(
                matches!(err, AppError::InvalidField { field: f, .. } if f == field),
                "{err:?}"
            );
        }
    }

    #[tokio::test]
    async fn ingest_keys_cannot_read() {
        let app = TestPorts::new().app();
        let err = app
            .list_deployments(&ingester(), ListDeployments::default())
            .await
            .unwrap_err();
        assert!(matches!(err, AppError::Forbidden { .. }));
        let err = app.get_deployment(&ingester(), "x").await.unwrap_err();
        assert!(matches!(err, AppError::Forbidden { .. }));
    }

    #[tokio::test]
    async fn a_scoped_key_lists_only_its_project() {
        let mut ports = TestPorts::new();
        let only = ProjectId::from_uuid(ids(77));
        ports
            .deployments
            .expect_list()
            .withf(move |_, q| q.project == Some(only))
            .returning(|_, _| {
                Ok(DeploymentPage {
                    items: vec![],
                    next_cursor: None,
                })
            });
        let mut reader = admin();
        reader.project = Some(only);
        ports
            .app()
            .list_deployments(&reader, ListDeployments::default())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn unknown_and_malformed_ids_are_not_found() {
        let mut ports = TestPorts::new();
        ports.deployments.expect_get().returning(|_, _| Ok(None));
        let app = ports.app();
        for id in ["dep_abc123", "00000000-0000-0000-0000-000000000001"] {
            let err = app.get_deployment(&admin(), id).await.unwrap_err();
            assert!(matches!(err, AppError::DeploymentNotFound(_)), "{err:?}");
        }
    }

    #[tokio::test]
    async fn a_scoped_key_does_not_see_other_projects_deployments() {
        let mut ports = TestPorts::new();
        ports
            .deployments
            .expect_get()
            .returning(|_, _| Ok(Some(sample_deployment())));
        // The deployment belongs to my-project (ids(5)); the key is limited to another project.
        ports.with_project();
        let mut caller = admin();
        caller.project = Some(ProjectId::from_uuid(ids(99)));
        let id = sample_deployment().id.to_string();
        let app = ports.app();
        let err = app.get_deployment(&caller, &id).await.unwrap_err();
        assert!(matches!(err, AppError::DeploymentNotFound(_)), "{err:?}");
        caller.project = None;
        assert_eq!(
            app.get_deployment(&caller, &id).await.unwrap(),
            sample_deployment()
        );
    }

    #[tokio::test]
    async fn references_are_read_by_any_spelling_of_their_key() {
        let mut ports = TestPorts::new();
        ports.with_project();
        ports
            .references
            .expect_get()
            .withf(|_, _, key| key.as_str() == "PR-123")
            .returning(|_, _, _| Ok(None));
        let app = ports.app();
        let err = app
            .get_reference(
                &admin(),
                ProjectSlug::parse("my-project").unwrap(),
                "#PR-123",
            )
            .await
            .unwrap_err();
        assert_eq!(err, AppError::ReferenceNotFound("PR-123".into()));
        let err = app
            .get_reference(&admin(), ProjectSlug::parse("my-project").unwrap(), "what?")
            .await
            .unwrap_err();
        assert!(matches!(err, AppError::InvalidField { field: "key", .. }));
    }
}
