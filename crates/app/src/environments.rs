//! Creating environments and assigning applications to them (the Envtracker automation).
//!
//! Environment creation and assignment count as CI automation, so `ingest` keys may do them
//! (pipelines create preview environments); `read` keys may not.

use std::collections::HashMap;

use shiplog_domain::environment::EnvironmentKind;
use shiplog_domain::ids::{ApplicationCode, EnvironmentCode, TeamCode};

use crate::App;
use crate::auth::{Capability, Principal};
use crate::error::AppError;
use crate::ids::{ApplicationId, EnvironmentId, ProjectId};
use crate::ingest::ApplicationTarget;
use crate::model::{BoardApplication, BoardEnvironment, Environment, ProjectLookup};
use crate::ports::AssignmentPlan;

/// The longest environment name.
pub const MAX_NAME_LEN: usize = 200;

/// A new environment of the workspace (Envtracker's model: owned by a team, named by no project).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateEnvironment {
    /// Display name.
    pub name: String,
    /// Code, unique in the workspace.
    pub code: EnvironmentCode,
    /// The owning team, which must exist.
    pub team: TeamCode,
    /// Where it can be visited (http or https).
    pub url: Option<String>,
    /// Display order; `None` places it after the workspace's last environment.
    pub position: Option<i32>,
    /// What it is for.
    pub kind: EnvironmentKind,
}

/// One application's environments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppAssignment {
    /// The application (created if missing).
    pub application: ApplicationCode,
    /// Environments it runs in (all must exist).
    pub environments: Vec<EnvironmentCode>,
}

/// Assignments within one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignApplications {
    /// The project.
    pub project: ProjectLookup,
    /// The assignments (at least one).
    pub apps: Vec<AppAssignment>,
}

fn validate_url(url: Option<String>) -> Result<Option<String>, AppError> {
    let Some(url) = url.map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let has_scheme = url.starts_with("https://") || url.starts_with("http://");
    let host_present = url
        .split("://")
        .nth(1)
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    if !has_scheme || !host_present || url.len() > 2048 || url.chars().any(char::is_whitespace) {
        return Err(AppError::invalid(
            "url",
            format!(
                "{url:?} is not a web address: send an http:// or https:// URL of at most 2048 characters"
            ),
        ));
    }
    Ok(Some(url))
}

impl App {
    /// Creates a workspace environment owned by an existing team. A key limited to one project
    /// may create one too (pipelines create preview environments); the environment is the
    /// workspace's all the same, and any project's applications can be assigned to it.
    pub async fn create_environment(
        &self,
        caller: &Principal,
        request: CreateEnvironment,
    ) -> Result<Environment, AppError> {
        caller.require(Capability::Ingest, "create environments")?;
        let name = request.name.trim().to_owned();
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(AppError::invalid(
                "name",
                format!("send a display name of 1 to {MAX_NAME_LEN} characters"),
            ));
        }
        AppError::check_line("name", &name)?;
        let url = validate_url(request.url)?;
        let team = self
            .ports
            .teams
            .get(caller.workspace, &request.team)
            .await?
            .ok_or_else(|| AppError::TeamNotFound(request.team.clone()))?;
        let environment = Environment {
            id: EnvironmentId::from_uuid(self.ports.ids.uuid()),
            workspace: caller.workspace,
            code: request.code,
            name,
            kind: request.kind,
            url,
            position: request.position.unwrap_or_default(),
            team: Some(team.id),
            created_at: self.ports.clock.now(),
        };
        Ok(self
            .ports
            .environments
            .create(environment, request.position)
            .await?)
    }

    /// Assigns applications to environments, all or nothing. Returns how many assignments are new.
    pub async fn assign_applications(
        &self,
        caller: &Principal,
        request: AssignApplications,
    ) -> Result<usize, AppError> {
        caller.require(Capability::Ingest, "assign applications")?;
        if request.apps.is_empty() {
            return Err(AppError::MissingField {
                field: "apps",
                hint: "send at least one {\"repoCode\": ..., \"envs\": [...]} entry",
            });
        }
        if let Some(entry) = request.apps.iter().find(|a| a.environments.is_empty()) {
            return Err(AppError::invalid(
                "apps[].envs",
                format!(
                    "application {} lists no environment: send at least one environment code",
                    entry.application
                ),
            ));
        }
        let project: ProjectId = self.visible_project(caller, &request.project).await?.id;
        let plans = request
            .apps
            .into_iter()
            .map(|entry| AssignmentPlan {
                application: ApplicationTarget {
                    name: entry.application.to_string(),
                    code: entry.application,
                    repo: None,
                    create_if_missing: true,
                    new_id: ApplicationId::from_uuid(self.ports.ids.uuid()),
                },
                environments: entry.environments,
            })
            .collect();
        let at = self.ports.clock.now();
        Ok(self
            .ports
            .environments
            .assign(caller.workspace, project, plans, at)
            .await?)
    }

    /// The environments board of a project: in position order, each workspace environment where
    /// the project has an application assigned or deployed, with each such application, its
    /// current version (last successful deployment) and whether a newer deployment is in
    /// progress. Environments the project does not use are left out.
    pub async fn environment_board(
        &self,
        caller: &Principal,
        project: ProjectLookup,
    ) -> Result<Vec<BoardEnvironment>, AppError> {
        caller.require(Capability::Read, "read environments")?;
        let project = self.visible_project(caller, &project).await?;
        let environments = self.ports.environments.list(caller.workspace).await?;
        let mut by_environment: HashMap<EnvironmentCode, Vec<BoardApplication>> = HashMap::new();
        for entry in self
            .ports
            .environments
            .board(caller.workspace, project.id)
            .await?
        {
            by_environment
                .entry(entry.environment.clone())
                .or_default()
                .push(BoardApplication::from_entry(entry));
        }
        let board = environments
            .into_iter()
            .filter_map(|environment| {
                let mut applications = by_environment.remove(&environment.code)?;
                applications.sort_by(|a, b| a.application.cmp(&b.application));
                Some(BoardEnvironment {
                    code: environment.code,
                    name: environment.name,
                    kind: environment.kind,
                    url: environment.url,
                    position: environment.position,
                    applications,
                })
            })
            .collect();
        Ok(board)
    }
}

#[cfg(test)]
mod tests {
    use shiplog_domain::key::Role;
    use shiplog_domain::timestamp::Timestamp;

    use super::*;
    use crate::ids::TeamId;
    use crate::model::Team;
    use crate::ports::EnvironmentStoreError;
    use crate::testing::{TestPorts, admin, ids, project, reader};

    fn request() -> CreateEnvironment {
        CreateEnvironment {
            name: "Feature Branch Preview".into(),
            code: EnvironmentCode::parse("feature-preview").unwrap(),
            team: TeamCode::parse("engineering").unwrap(),
            url: Some("https://feature.example.com".into()),
            position: Some(3),
            kind: EnvironmentKind::Development,
        }
    }

    fn with_team(ports: &mut TestPorts) {
        ports.teams.expect_get().returning(|ws, code| {
            Ok((code.as_str() == "engineering").then(|| Team {
                id: TeamId::from_uuid(ids(9)),
                workspace: ws,
                code: code.clone(),
                name: "Engineering".into(),
                created_at: Timestamp::UNIX_EPOCH,
            }))
        });
    }

    /// Ports that know my-project, the engineering team, a clock and ids.
    fn ready() -> TestPorts {
        let mut ports = TestPorts::new();
        ports.with_project();
        with_team(&mut ports);
        ports.with_clock_and_ids();
        ports
    }

    #[tokio::test]
    async fn the_seeds_create_environment_example() {
        let mut ports = ready();
        ports
            .environments
            .expect_create()
            .withf(|env, position| {
                env.code.as_str() == "feature-preview"
                    && env.name == "Feature Branch Preview"
                    && env.kind == EnvironmentKind::Development
                    && env.url.as_deref() == Some("https://feature.example.com")
                    && env.team == Some(TeamId::from_uuid(ids(9)))
                    && *position == Some(3)
            })
            .returning(|env, _| Ok(env));
        let env = ports
            .app()
            .create_environment(&admin(), request())
            .await
            .unwrap();
        assert_eq!(env.code.as_str(), "feature-preview");
    }

    #[tokio::test]
    async fn a_missing_team_is_named() {
        let mut req = request();
        req.team = TeamCode::parse("nobody").unwrap();
        let err = ready()
            .app()
            .create_environment(&admin(), req)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            AppError::TeamNotFound(TeamCode::parse("nobody").unwrap())
        );
    }

    #[tokio::test]
    async fn store_conflicts_become_app_errors() {
        for (store_error, expected) in [
            (
                EnvironmentStoreError::CodeTaken(
                    EnvironmentCode::parse("feature-preview").unwrap(),
                ),
                AppError::EnvironmentExists(EnvironmentCode::parse("feature-preview").unwrap()),
            ),
            (
                EnvironmentStoreError::LimitReached { limit: 2 },
                AppError::EnvironmentLimitReached { limit: 2 },
            ),
        ] {
            let mut ports = ready();
            ports
                .environments
                .expect_create()
                .returning(move |_, _| Err(store_error.clone()));
            let err = ports
                .app()
                .create_environment(&admin(), request())
                .await
                .unwrap_err();
            assert_eq!(err, expected);
        }
    }

    #[tokio::test]
    async fn bad_fields_are_refused_before_any_write() {
        let ports = TestPorts::new();
        let app = ports.app();
        let mut req = request();
        req.url = Some("feature.example.com".into());
        let err = app.create_environment(&admin(), req).await.unwrap_err();
        assert!(
            matches!(err, AppError::InvalidField { field: "url", .. }),
            "{err:?}"
        );
        let mut req = request();
        req.name = "  ".into();
        let err = app.create_environment(&admin(), req).await.unwrap_err();
        assert!(
            matches!(err, AppError::InvalidField { field: "name", .. }),
            "{err:?}"
        );
        let err = app
            .create_environment(&reader(), request())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                AppError::Forbidden {
                    role: Role::Read,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn the_seeds_assign_apps_example() {
        let mut ports = TestPorts::new();
        ports.with_project();
        ports.with_clock_and_ids();
        ports
            .environments
            .expect_assign()
            .withf(|_, project_id, plans, _| {
                *project_id == project().id
                    && plans.len() == 2
                    && plans[0].application.code.as_str() == "my-app"
                    && plans[0].application.create_if_missing
                    && plans[0]
                        .environments
                        .iter()
                        .map(EnvironmentCode::as_str)
                        .collect::<Vec<_>>()
                        == ["production", "staging"]
                    && plans[1].application.code.as_str() == "another-service"
            })
            .returning(|_, _, _, _| Ok(3));
        let code = |c: &str| EnvironmentCode::parse(c).unwrap();
        let request = AssignApplications {
            project: ProjectLookup::parse("my-project").unwrap(),
            apps: vec![
                AppAssignment {
                    application: ApplicationCode::parse("my-app").unwrap(),
                    environments: vec![code("production"), code("staging")],
                },
                AppAssignment {
                    application: ApplicationCode::parse("another-service").unwrap(),
                    environments: vec![code("staging")],
                },
            ],
        };
        assert_eq!(
            ports
                .app()
                .assign_applications(&admin(), request)
                .await
                .unwrap(),
            3
        );
    }

    #[tokio::test]
    async fn empty_assignments_are_refused() {
        let ports = TestPorts::new();
        let request = AssignApplications {
            project: ProjectLookup::parse("my-project").unwrap(),
            apps: vec![],
        };
        let err = ports
            .app()
            .assign_applications(&admin(), request)
            .await
            .unwrap_err();
        assert!(matches!(err, AppError::MissingField { field: "apps", .. }));
    }

    /// Per environment: (application, assigned, in progress, has a current version).
    type BoardSummary = Vec<(String, Vec<(String, bool, bool, bool)>)>;

    fn environment(code: &str, position: i32) -> Environment {
        Environment {
            id: EnvironmentId::from_uuid(ids(700 + u128::try_from(position).unwrap())),
            workspace: crate::testing::workspace(),
            code: EnvironmentCode::parse(code).unwrap(),
            name: code.to_uppercase(),
            kind: EnvironmentKind::parse(code).unwrap_or(EnvironmentKind::Other),
            url: None,
            position,
            team: None,
            created_at: Timestamp::UNIX_EPOCH,
        }
    }

    fn entry(
        environment: &str,
        application: &str,
        current_at: Option<&str>,
        running_at: Option<&str>,
    ) -> crate::model::BoardEntry {
        crate::model::BoardEntry {
            environment: EnvironmentCode::parse(environment).unwrap(),
            application: ApplicationCode::parse(application).unwrap(),
            assigned: application != "worker",
            current: current_at.map(|at| crate::model::Deployment {
                finished_at: Some(Timestamp::parse(at).unwrap()),
                ..crate::testing::sample_deployment()
            }),
            latest_in_progress_at: running_at.map(|at| Timestamp::parse(at).unwrap()),
        }
    }

    #[tokio::test]
    async fn the_board_lists_environments_by_position_with_their_applications() {
        let mut ports = TestPorts::new();
        ports.with_project();
        // The store lists the workspace's environments by position; the board keeps that order
        // and leaves out those where the project has no application (preview here).
        ports.environments.expect_list().returning(|_| {
            Ok(vec![
                environment("staging", 1),
                environment("preview", 2),
                environment("production", 3),
            ])
        });
        ports.environments.expect_board().returning(|_, _| {
            Ok(vec![
                // A run newer than the current version: in progress.
                entry(
                    "production",
                    "web",
                    Some("2025-09-01T10:00:00Z"),
                    Some("2025-09-02T10:00:00Z"),
                ),
                // An abandoned run older than the current version: not in progress.
                entry(
                    "production",
                    "api",
                    Some("2025-09-03T10:00:00Z"),
                    Some("2025-09-01T10:00:00Z"),
                ),
                // Deployed but never successfully, and not assigned.
                entry("staging", "worker", None, Some("2025-09-01T10:00:00Z")),
                entry("staging", "api", None, None),
            ])
        });
        let board = ports
            .app()
            .environment_board(&reader(), ProjectLookup::parse("my-project").unwrap())
            .await
            .unwrap();
        let summary: BoardSummary = board
            .iter()
            .map(|env| {
                (
                    env.code.to_string(),
                    env.applications
                        .iter()
                        .map(|a| {
                            (
                                a.application.to_string(),
                                a.assigned,
                                a.in_progress,
                                a.current.is_some(),
                            )
                        })
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "staging".to_owned(),
                    vec![
                        ("api".to_owned(), true, false, false),
                        ("worker".to_owned(), false, true, false),
                    ]
                ),
                (
                    "production".to_owned(),
                    vec![
                        ("api".to_owned(), true, false, true),
                        ("web".to_owned(), true, true, true),
                    ]
                ),
            ]
        );
    }

    #[tokio::test]
    async fn ingest_keys_cannot_read_the_board_and_unknown_projects_are_not_found() {
        let app = TestPorts::new().app();
        let err = app
            .environment_board(
                &crate::testing::ingester(),
                ProjectLookup::parse("my-project").unwrap(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), crate::error::ErrorCode::RoleForbidden);

        let mut ports = TestPorts::new();
        ports.with_project();
        let err = ports
            .app()
            .environment_board(&reader(), ProjectLookup::parse("other").unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.code(), crate::error::ErrorCode::ProjectNotFound);
    }
}
