//! The overview: what a viewer wants to know first, across the projects they may see.
//!
//! What is deploying now, what is broken (failures no success has followed yet, open
//! incidents), where each application stands in each environment and how far an environment
//! lags behind the one running its newest version, and each project's DORA figures beside the
//! previous period.
//! Built from the same reads as the pages it summarises (listings, boards, DORA), so each
//! number is the one the detailed page shows.

use std::collections::HashMap;

use shiplog_domain::changes::ChangeKind;
use shiplog_domain::dora::Report;
use shiplog_domain::environment::EnvironmentKind;
use shiplog_domain::ids::{ApplicationCode, CommitSha, EnvironmentCode, ProjectSlug};
use shiplog_domain::reference::ReferenceKey;
use shiplog_domain::status::DeploymentStatus;
use shiplog_domain::timestamp::Timestamp;

use crate::App;
use crate::auth::Principal;
use crate::deployments::ListDeployments;
use crate::error::AppError;
use crate::ids::ApplicationId;
use crate::incidents::{IncidentFilter, IncidentStatus, IncidentView};
use crate::metrics::DoraRequest;
use crate::model::{Deployment, Project, ProjectLookup};
use crate::ports::LagQuery;

/// How many deployments, failures and incidents each list of the overview shows at most.
pub const OVERVIEW_ROWS: u32 = 20;
/// How many projects get their DORA figures on the overview (by name); the DORA page has all.
pub const OVERVIEW_PROJECTS: usize = 12;
/// How many failures are read to find the unrecovered ones.
const FAILURES_READ: u32 = 200;
/// How recent a running or pending deployment is to count as deploying now, in days: an
/// older one is most likely a run whose end was never reported.
pub const DEPLOYING_DAYS: i64 = 1;
/// How many of the newest deployments of the last [`DEPLOYING_DAYS`] are read to find those
/// running or pending.
pub const DEPLOYING_READ: u32 = 200;
/// The DORA window of the overview, in days (and the period it is compared with).
pub const OVERVIEW_DAYS: i64 = 30;

/// The overview's filters: only rows whose project or application contain these words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OverviewFilter {
    /// Only this project.
    pub project: Option<ProjectSlug>,
    /// Only applications whose code contains this.
    pub application: Option<String>,
}

/// What [`App::overview`] answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Overview {
    /// Deployments running or pending among the [`DEPLOYING_READ`] newest of the last
    /// [`DEPLOYING_DAYS`] (by their start, else when heard of), newest first.
    pub deploying: Vec<Deployment>,
    /// The latest failure of each application and environment that no success has followed,
    /// newest first.
    pub failing: Vec<Deployment>,
    /// Open incidents, newest opening first.
    pub open_incidents: Vec<IncidentView>,
    /// The environments, in position order: the matrix's columns.
    pub environments: Vec<(EnvironmentCode, EnvironmentKind)>,
    /// One row per application: where it stands in each environment.
    pub places: Vec<PlaceRow>,
    /// Each project's figures over the last [`OVERVIEW_DAYS`] days and the days before.
    pub projects: Vec<ProjectFigures>,
    /// Projects left out of `projects` ([`OVERVIEW_PROJECTS`]).
    pub projects_left_out: usize,
}

/// An application's row of the matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceRow {
    /// Its project.
    pub project: ProjectSlug,
    /// The application.
    pub application: ApplicationCode,
    /// One cell per environment of [`Overview::environments`], in order.
    pub cells: Vec<Option<Place>>,
}

/// An application in one environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    /// Its current version: the last successful deployment.
    pub current: Option<Deployment>,
    /// Whether a newer deployment is running or pending.
    pub in_progress: bool,
    /// How far its commit is behind the newest version of this application in another
    /// environment (the one whose commit was first seen last), when it is.
    pub behind: Option<Behind>,
}

/// How far an environment lags behind another.
#[derive(Debug, Clone, PartialEq)]
pub struct Behind {
    /// The environment it lags behind.
    pub environment: EnvironmentCode,
    /// The commits it lacks (first seen after its commit, up to the other's).
    pub commits: u32,
    /// The change requests of those commits.
    pub change_requests: Vec<ReferenceKey>,
}

/// A project's DORA figures beside the period before.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectFigures {
    /// The project.
    pub project: Project,
    /// The last [`OVERVIEW_DAYS`] days.
    pub now: Report,
    /// The [`OVERVIEW_DAYS`] days before.
    pub before: Report,
}

/// The commit of each version in a row, by column.
fn commits_of(row: &PlaceRow) -> Vec<(usize, CommitSha)> {
    row.cells
        .iter()
        .enumerate()
        .filter_map(|(i, place)| {
            let sha = place
                .as_ref()?
                .current
                .as_ref()?
                .fields
                .commit_sha
                .clone()?;
            Some((i, sha))
        })
        .collect()
}

impl App {
    /// Marks each place that lacks commits of its application's newest version (the one whose
    /// commit was first seen last): one read of sightings, one read of the lags.
    async fn lags(
        &self,
        caller: &Principal,
        columns: &[(i32, EnvironmentCode, EnvironmentKind)],
        rows: &[(ProjectSlug, ApplicationCode, ApplicationId)],
        places: &mut [PlaceRow],
    ) -> Result<(), AppError> {
        let all: Vec<CommitSha> = places
            .iter()
            .flat_map(|row| commits_of(row).into_iter().map(|(_, sha)| sha))
            .collect();
        let seen = self
            .ports
            .deployments
            .first_seen(caller.workspace, all)
            .await?;
        let sighting = |sha: &CommitSha| seen.iter().find(|(s, _)| s == sha).map(|(_, at)| *at);
        // Per row: the leading column, and the columns compared with it.
        let mut asked: Vec<(usize, usize, Vec<usize>)> = Vec::new();
        let mut queries = Vec::new();
        for (r, (row, (_, _, application))) in places.iter().zip(rows).enumerate() {
            let commits = commits_of(row);
            let newest = commits
                .iter()
                .filter_map(|(i, sha)| Some((sighting(sha)?, *i, sha)))
                .max_by_key(|(at, i, _)| (*at, std::cmp::Reverse(*i)));
            let Some((_, lead, ahead)) = newest else {
                continue;
            };
            let others: Vec<&(usize, CommitSha)> = commits
                .iter()
                .filter(|(i, commit)| *i != lead && !commit.matches(ahead))
                .collect();
            if others.is_empty() {
                continue;
            }
            asked.push((r, lead, others.iter().map(|(i, _)| *i).collect()));
            queries.push(LagQuery {
                application: *application,
                behind: others.iter().map(|(_, sha)| sha.clone()).collect(),
                ahead: ahead.clone(),
            });
        }
        let answers = self
            .ports
            .deployments
            .lags(caller.workspace, queries)
            .await?;
        for ((r, lead, compared), lags) in asked.into_iter().zip(answers) {
            let Some((_, ahead_env, _)) = columns.get(lead) else {
                continue;
            };
            for (i, lag) in compared.into_iter().zip(lags.into_iter().flatten()) {
                if lag.span.kind == ChangeKind::Forward
                    && let Some(Some(place)) =
                        places.get_mut(r).and_then(|row| row.cells.get_mut(i))
                {
                    place.behind = Some(Behind {
                        environment: ahead_env.clone(),
                        commits: lag.commits,
                        change_requests: lag.change_requests,
                    });
                }
            }
        }
        Ok(())
    }

    /// The overview of what `caller` may see, narrowed by `filter`.
    pub async fn overview(
        &self,
        caller: &Principal,
        filter: OverviewFilter,
    ) -> Result<Overview, AppError> {
        let mut projects = self.list_projects(caller).await?;
        if let Some(slug) = &filter.project {
            let wanted = self
                .visible_project(caller, &ProjectLookup::Slug(slug.clone()))
                .await?;
            projects.retain(|p| p.id == wanted.id);
        }
        projects.sort_by(|a, b| a.name.cmp(&b.name).then(a.slug.cmp(&b.slug)));
        let wanted_application = |code: &ApplicationCode| {
            filter
                .application
                .as_deref()
                .is_none_or(|part| code.as_str().contains(&part.to_ascii_lowercase()))
        };
        let now = self.ports.clock.now();
        let days = |n: i64| {
            now.checked_add(time::Duration::days(-n))
                .unwrap_or(Timestamp::UNIX_EPOCH)
        };
        // The newest deployments of the last day, not a status filter: the time index bounds
        // this read, where a rare status (nothing pending) would walk the whole history.
        let mut deploying = self
            .list_deployments(
                caller,
                ListDeployments {
                    project: filter.project.clone(),
                    since: Some(days(DEPLOYING_DAYS)),
                    limit: Some(DEPLOYING_READ),
                    ..ListDeployments::default()
                },
            )
            .await?
            .items;
        deploying.retain(|d| {
            matches!(
                d.status,
                DeploymentStatus::Running | DeploymentStatus::Pending
            ) && wanted_application(&d.application)
        });
        deploying.sort_by_key(|d| std::cmp::Reverse(d.deployed_at()));
        deploying.truncate(OVERVIEW_ROWS as usize);

        // The matrix, from each project's board.
        let mut columns: Vec<(i32, EnvironmentCode, EnvironmentKind)> = Vec::new();
        let mut rows: Vec<(ProjectSlug, ApplicationCode, ApplicationId)> = Vec::new();
        let mut cells: HashMap<(ProjectSlug, ApplicationCode, EnvironmentCode), Place> =
            HashMap::new();
        for project in &projects {
            let board = self
                .environment_board(caller, ProjectLookup::Id(project.id))
                .await?;
            for environment in board {
                if !columns.iter().any(|(_, code, _)| *code == environment.code) {
                    columns.push((
                        environment.position,
                        environment.code.clone(),
                        environment.kind,
                    ));
                }
                for application in environment.applications {
                    if !wanted_application(&application.application) {
                        continue;
                    }
                    let key = (project.slug.clone(), application.application.clone());
                    if !rows.iter().any(|(p, a, _)| (p, a) == (&key.0, &key.1))
                        && let Some(current) = &application.current
                    {
                        rows.push((key.0.clone(), key.1.clone(), current.application_id));
                    }
                    cells.insert(
                        (key.0, key.1, environment.code.clone()),
                        Place {
                            current: application.current,
                            in_progress: application.in_progress,
                            behind: None,
                        },
                    );
                }
            }
        }
        columns.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let mut places: Vec<PlaceRow> = rows
            .iter()
            .map(|(project, application, _)| PlaceRow {
                project: project.clone(),
                application: application.clone(),
                cells: columns
                    .iter()
                    .map(|(_, code, _)| {
                        cells.remove(&(project.clone(), application.clone(), code.clone()))
                    })
                    .collect(),
            })
            .collect();
        self.lags(caller, &columns, &rows, &mut places).await?;

        // Failures no success has followed: newer than the place's current version.
        let mut failing: Vec<Deployment> = Vec::new();
        let failures = self
            .list_deployments(
                caller,
                ListDeployments {
                    project: filter.project.clone(),
                    status: Some(DeploymentStatus::Failed),
                    limit: Some(FAILURES_READ),
                    ..ListDeployments::default()
                },
            )
            .await?
            .items;
        for failure in failures {
            if !wanted_application(&failure.application)
                || failing.iter().any(|f| {
                    (&f.project, &f.application, &f.environment)
                        == (&failure.project, &failure.application, &failure.environment)
                })
            {
                continue;
            }
            let recovered = places
                .iter()
                .find(|r| r.project == failure.project && r.application == failure.application)
                .and_then(|r| {
                    let i = columns.iter().position(|c| c.1 == failure.environment)?;
                    r.cells.get(i)?.as_ref()?.current.as_ref()
                })
                .is_some_and(|current| current.deployed_at() > failure.deployed_at());
            if !recovered {
                failing.push(failure);
            }
        }
        failing.truncate(OVERVIEW_ROWS as usize);

        let open_incidents = self
            .incidents(
                caller,
                IncidentFilter {
                    project: filter.project.clone(),
                    status: Some(IncidentStatus::Open),
                    limit: Some(OVERVIEW_ROWS),
                    cursor: None,
                },
            )
            .await?
            .items;

        let projects_left_out = projects.len().saturating_sub(OVERVIEW_PROJECTS);
        let mut figures = Vec::new();
        for project in projects.into_iter().take(OVERVIEW_PROJECTS) {
            let window = |from: Timestamp, to: Timestamp| DoraRequest {
                project: Some(project.slug.clone()),
                from: Some(from),
                to: Some(to),
                ..DoraRequest::default()
            };
            // The two windows are read side by side (two reader connections).
            let (now_figures, before) = futures_util::future::try_join(
                self.dora(caller, window(days(OVERVIEW_DAYS), now)),
                self.dora(caller, window(days(2 * OVERVIEW_DAYS), days(OVERVIEW_DAYS))),
            )
            .await?;
            figures.push(ProjectFigures {
                project,
                now: now_figures.report,
                before: before.report,
            });
        }
        Ok(Overview {
            deploying,
            failing,
            open_incidents,
            environments: columns
                .into_iter()
                .map(|(_, code, kind)| (code, kind))
                .collect(),
            places,
            projects: figures,
            projects_left_out,
        })
    }
}
