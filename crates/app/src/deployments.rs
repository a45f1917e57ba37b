//! Reading deployments and references.

use shiplog_domain::changes::{ChangeKind, Forge};
use shiplog_domain::ids::{ApplicationCode, EnvironmentCode, ProjectSlug};
use shiplog_domain::reference::ReferenceKey;
use shiplog_domain::repo::RepoIdentity;
use shiplog_domain::sighting::lead_time_start;
use shiplog_domain::status::DeploymentStatus;
use shiplog_domain::timestamp::Timestamp;

use crate::App;
use crate::auth::{Capability, Principal};
use crate::error::AppError;
use crate::hooks::Delivery;
use crate::ids::DeploymentId;
use crate::model::{
    ChangedCommit, ChangedFrom, Changes, Deployment, DeploymentCard, PipelineEventRecord,
    ProjectLookup, ReferenceView,
};
use crate::pagination::{Cursor, DEFAULT_LIMIT, MAX_LIMIT};
use crate::ports::{ChangesData, DeploymentPage, DeploymentQuery};

/// How many events of a deployment's commit [`App::deployment_detail`] shows at most.
pub const DETAIL_EVENTS: u32 = 200;
/// How many deliveries of a deployment [`App::deployment_detail`] shows at most.
pub const DETAIL_DELIVERIES: u32 = 50;

/// How many commits a deployment's [`Changes`] list at most.
pub const CHANGE_COMMITS: u32 = 100;

/// A deployment with what explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentDetail {
    /// The deployment, with what it changed.
    pub card: DeploymentCard,
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

    /// One deployment as one reads it alone: with its duration, its lead time, its commit's
    /// address and what it changed since the previous successful deployment of its
    /// application to its environment.
    pub async fn deployment_card(
        &self,
        caller: &Principal,
        id: &str,
    ) -> Result<DeploymentCard, AppError> {
        let deployment = self.get_deployment(caller, id).await?;
        let data = self
            .ports
            .deployments
            .changes(caller.workspace, deployment.id, CHANGE_COMMITS)
            .await?
            .ok_or_else(|| AppError::DeploymentNotFound(id.chars().take(80).collect()))?;
        let application = self
            .ports
            .applications
            .by_id(caller.workspace, deployment.application_id)
            .await?;
        let forge = application.as_ref().and_then(|a| {
            let repo = a.repo.as_ref()?;
            Some((Forge::of(repo, a.source_provider.as_deref())?, repo.clone()))
        });
        Ok(card(deployment, data, forge.as_ref()))
    }

    /// One deployment with what explains it: the pipeline events of its commit in its project
    /// (builds, tests and deploys everywhere, with its own events when they name no commit),
    /// oldest first, and the outgoing deliveries made for it, newest first.
    pub async fn deployment_detail(
        &self,
        caller: &Principal,
        id: &str,
    ) -> Result<DeploymentDetail, AppError> {
        let card = self.deployment_card(caller, id).await?;
        let deployment = &card.deployment;
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
            card,
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

/// The card of `deployment` from what the store read; `forge` is its application's forge and
/// repository, when known.
fn card(
    deployment: Deployment,
    data: ChangesData,
    forge: Option<&(Forge, RepoIdentity)>,
) -> DeploymentCard {
    let url = |sha: &shiplog_domain::ids::CommitSha| {
        forge.map(|(forge, repo)| forge.commit_url(repo, sha))
    };
    let limit = usize::try_from(CHANGE_COMMITS).unwrap_or(usize::MAX);
    let kind = data.span.kind;
    let own = data.commit.as_ref();
    let (commits, commits_truncated, change_requests, triggered_by) = if kind == ChangeKind::First {
        // Everything is new: its own commit stands for the change.
        (
            own.map(|c| ChangedCommit {
                sha: c.sha.clone(),
                first_seen_at: c.first_seen,
                url: url(&c.sha),
            })
            .into_iter()
            .collect(),
            false,
            deployment
                .references
                .iter()
                .map(|r| r.key.clone())
                .collect(),
            deployment.fields.deployed_by.iter().cloned().collect(),
        )
    } else {
        (
            data.commits
                .iter()
                .take(limit)
                .map(|(sha, at)| ChangedCommit {
                    sha: sha.clone(),
                    first_seen_at: Some(*at),
                    url: url(sha),
                })
                .collect(),
            data.commits.len() > limit,
            data.references,
            data.triggered_by,
        )
    };
    let before = data
        .previous
        .as_ref()
        .and_then(|p| p.commit.as_ref())
        .map(|c| &c.sha);
    let compare_url = match (forge, before, own) {
        (Some((forge, repo)), Some(before), Some(own)) => match kind {
            ChangeKind::Forward => Some(forge.compare_url(repo, before, &own.sha)),
            ChangeKind::Rollback => Some(forge.compare_url(repo, &own.sha, before)),
            ChangeKind::First | ChangeKind::Redeploy | ChangeKind::Unknown => None,
        },
        _ => None,
    };
    let lead_time_seconds = match (deployment.status, deployment.finished_at) {
        (DeploymentStatus::Success, Some(finished)) => lead_time_start(
            deployment.fields.commit_timestamp,
            data.commit_seen_at,
            finished,
        )
        .filter(|start| *start <= finished)
        .map(|start| finished.since(start).whole_seconds()),
        _ => None,
    };
    DeploymentCard {
        duration_seconds: deployment.duration_seconds(),
        lead_time_seconds,
        commit_url: deployment.fields.commit_sha.as_ref().and_then(url),
        changes: Changes {
            kind,
            since: data.previous.map(|p| ChangedFrom {
                id: p.id,
                commit_sha: p.commit.map(|c| c.sha),
                deployed_at: p.deployed_at,
            }),
            commits,
            commits_truncated,
            change_requests,
            triggered_by,
            compare_url,
        },
        deployment,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ProjectId;
    use crate::testing::{TestPorts, admin, ids, ingester, project, sample_deployment};

    fn seen(sha: &str, at: i64) -> shiplog_domain::changes::SeenCommit {
        shiplog_domain::changes::SeenCommit {
            sha: shiplog_domain::ids::CommitSha::parse(sha).unwrap(),
            first_seen: Some(Timestamp::from_unix_seconds(at).unwrap()),
        }
    }

    fn data(
        kind: ChangeKind,
        own: Option<&str>,
        before: Option<&str>,
        commits: usize,
    ) -> ChangesData {
        ChangesData {
            commit: own.map(|sha| seen(sha, 100)),
            commit_seen_at: None,
            previous: before.map(|sha| crate::ports::PreviousDeployment {
                id: DeploymentId::from_uuid(ids(9)),
                commit: Some(seen(sha, 50)),
                deployed_at: Timestamp::from_unix_seconds(60).unwrap(),
            }),
            span: shiplog_domain::changes::Span { kind, range: None },
            commits: (0..commits)
                .map(|i| {
                    let c = seen(&format!("{:0>8x}", i + 1), 51 + i64::try_from(i).unwrap());
                    (c.sha, c.first_seen.unwrap())
                })
                .collect(),
            references: vec![],
            triggered_by: vec![],
        }
    }

    #[test]
    fn a_card_links_the_forge_and_caps_its_commits() {
        let github = Some((Forge::GitHub, RepoIdentity::parse("acme/shop").unwrap()));
        let mut deployment = sample_deployment();
        deployment.fields.commit_sha = Some(shiplog_domain::ids::CommitSha::parse("bbbb").unwrap());
        // A rollback compares its own (older) commit with the one it replaces.
        let rollback = card(
            deployment.clone(),
            data(ChangeKind::Rollback, Some("bbbb"), Some("aaaa"), 2),
            github.as_ref(),
        );
        assert_eq!(
            rollback.changes.compare_url.as_deref(),
            Some("https://github.com/acme/shop/compare/bbbb...aaaa")
        );
        assert_eq!(
            rollback.commit_url.as_deref(),
            Some("https://github.com/acme/shop/commit/bbbb")
        );
        let forward = card(
            deployment.clone(),
            data(ChangeKind::Forward, Some("bbbb"), Some("aaaa"), 101),
            github.as_ref(),
        );
        assert_eq!(
            forward.changes.compare_url.as_deref(),
            Some("https://github.com/acme/shop/compare/aaaa...bbbb")
        );
        assert_eq!(forward.changes.commits.len(), 100);
        assert!(forward.changes.commits_truncated);
        let unknown_forge = card(
            deployment.clone(),
            data(ChangeKind::Forward, Some("bbbb"), Some("aaaa"), 100),
            None,
        );
        assert!(!unknown_forge.changes.commits_truncated);
        assert_eq!(unknown_forge.changes.compare_url, None);
        assert_eq!(unknown_forge.commit_url, None);
        assert_eq!(unknown_forge.changes.commits[0].url, None);
        // A first deployment stands for itself: its commit, references and person.
        deployment.fields.deployed_by = Some("ana".into());
        deployment.references = shiplog_domain::reference::parse_references("fix #PR-3");
        let first = card(
            deployment,
            data(ChangeKind::First, Some("bbbb"), None, 0),
            github.as_ref(),
        );
        assert_eq!(first.changes.since, None);
        assert_eq!(first.changes.commits.len(), 1);
        assert_eq!(first.changes.triggered_by, ["ana"]);
        assert_eq!(first.changes.change_requests.len(), 1);
        assert_eq!(first.changes.compare_url, None);
    }

    #[test]
    fn lead_time_counts_for_successes_and_never_runs_backwards() {
        let mut deployment = sample_deployment();
        let finished = deployment.finished_at.unwrap();
        let hour_before =
            Timestamp::from_unix_micros(finished.unix_micros() - 3_600_000_000).unwrap();
        let mut seen_before = data(ChangeKind::Unknown, None, None, 0);
        seen_before.commit_seen_at = Some(hour_before);
        let lead = |d: &Deployment, data: &ChangesData| {
            card(d.clone(), data.clone(), None).lead_time_seconds
        };
        assert_eq!(lead(&deployment, &seen_before), Some(3600));
        // A commit time sent after the finish (clock skew) gives no lead time on the card.
        deployment.fields.commit_timestamp =
            Some(Timestamp::from_unix_micros(finished.unix_micros() + 1).unwrap());
        assert_eq!(lead(&deployment, &seen_before), None);
        deployment.fields.commit_timestamp = None;
        deployment.status = DeploymentStatus::Failed;
        assert_eq!(lead(&deployment, &seen_before), None);
    }

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
