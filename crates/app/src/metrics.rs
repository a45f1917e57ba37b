//! DORA metrics, computed on query from committed data with [`shiplog_domain::dora`].

use serde::Serialize;
pub use shiplog_domain::dora::DEFAULT_LINK_HOURS;
use std::collections::{BTreeMap, HashMap};

use shiplog_domain::dora::{
    DeploymentRecord, Explanation, History, IncidentRecord, Interval, LONG_OPEN_INCIDENT_DAYS,
    LongOpenIncident, Report, Window, open_too_long,
};
use shiplog_domain::ids::{ApplicationCode, EnvironmentCode, ProjectSlug};
use shiplog_domain::timestamp::Timestamp;

use crate::App;
use crate::auth::{Capability, Principal};
use crate::error::AppError;
use crate::model::ProjectLookup;
use crate::ports::{DoraData, DoraQuery};

/// The window when none is asked for.
pub const DEFAULT_WINDOW_DAYS: u32 = 30;
/// The longest window served (about five years), which also bounds a daily series.
pub const MAX_WINDOW_DAYS: u32 = 1830;
/// The longest link window: 30 days.
pub const MAX_LINK_HOURS: u32 = 720;

/// A DORA request as a client sends it; every field optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoraRequest {
    /// Only this project.
    pub project: Option<ProjectSlug>,
    /// Only this environment instead of every production environment.
    pub environment: Option<EnvironmentCode>,
    /// Only this application.
    pub application: Option<ApplicationCode>,
    /// The window's start; default `to` minus 30 days.
    pub from: Option<Timestamp>,
    /// The window's end (excluded); default now.
    pub to: Option<Timestamp>,
    /// Also a series of reports per day or week.
    pub interval: Option<Interval>,
    /// Also the deployments and incidents behind the window's figures.
    pub explain: bool,
    /// How long before an incident that names no cause its deployment is looked for, in hours
    /// (1 to [`MAX_LINK_HOURS`]); [`DEFAULT_LINK_HOURS`] unless asked.
    pub link_hours: u32,
    /// Also the window's figures per application (with a project) and per team.
    pub breakdown: bool,
}

impl Default for DoraRequest {
    fn default() -> Self {
        Self {
            project: None,
            environment: None,
            application: None,
            from: None,
            to: None,
            interval: None,
            explain: false,
            link_hours: DEFAULT_LINK_HOURS,
            breakdown: false,
        }
    }
}

/// What was measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DoraScope {
    /// The project, if one was asked for (or the key is limited to one).
    pub project: Option<ProjectSlug>,
    /// The application, if one was asked for.
    pub application: Option<ApplicationCode>,
    /// The environments counted: the one asked for, else every `production` environment.
    pub environments: Vec<EnvironmentCode>,
    /// How long before an incident that names no cause its deployment was looked for (hours).
    pub incident_link_hours: u32,
}

/// How each number is obtained, returned with every answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = DoraDefinitions))]
pub struct Definitions {
    /// Deployment frequency.
    pub deployment_frequency: &'static str,
    /// Lead time for changes.
    pub lead_time: &'static str,
    /// Change failure rate.
    pub change_failure_rate: &'static str,
    /// Failed deployment recovery time.
    pub recovery_time: &'static str,
    /// Deployment rework rate.
    pub rework_rate: &'static str,
}

/// The definitions, as documented in `docs/dora.md`.
pub const DEFINITIONS: Definitions = Definitions {
    deployment_frequency: "successful deployments finished in the window per day; median over \
        the window's whole weeks of their days (24-hour periods from the window's start, at most \
        7) with a successful deployment; band by per day: elite >= 1, high >= 1/7, medium >= 1/30, else low",
    lead_time: "per successful deployment in the window: finish minus the deployed commit's \
        earliest known time (its commit timestamp, else the first pipeline event seen for it \
        other than the deployment's own, by its finish); excluded: no commit, no commit time, \
        commit timestamp after the finish; median and p90 \
        (nearest rank); band by median: elite < 1 h, high < 1 day, medium < 1 week, else low; \
        no band below 5 measured deployments",
    change_failure_rate: "failed / (successful + failed) deployments finished in the window; \
        a deployment counts as failed if it failed or an incident is linked to it: the \
        deployment the incident names (or, at each place, the last one finished by its opening \
        that carries the commit or reference it names), else the last successful deployment of \
        its application and environment within incident_link_hours before it opened; band: \
        elite <= 5 %, high <= 10 %, medium <= 15 %, else low; no band below 5 finished \
        deployments",
    recovery_time: "per application and environment, consecutive failed deployments are one \
        failure, from the first to the next success there; and each incident, from its opening \
        to its resolution; a failure counts in the window its first failed deployment is in, \
        an incident in the window it opened in; unrecovered ones are excluded; median over \
        both; band: elite < 1 h, high < 1 day, medium < 1 week, else low; no band below 5 \
        recoveries",
    rework_rate: "rework / (successful + failed) deployments finished in the window; a \
        deployment is rework, for the first of these reasons: its sender marked it (marked), \
        its branch or ref matches its project's hotfix patterns (hotfix_ref), its commit \
        message starts with Revert \" (revert), an incident of its application and environment \
        was open when it started (open_incident), a failure there other than its own was open \
        when it started (open_failure); its finish stands for an unknown start; no band: no \
        DORA report publishes bands for it",
};

/// The answer to a DORA request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Dora))]
pub struct DoraView {
    /// What was measured.
    pub scope: DoraScope,
    /// The metrics over the whole window.
    #[serde(flatten)]
    pub report: Report,
    /// Per day or week, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<Vec<Report>>,
    /// The deployments and incidents behind the window's figures, newest first, when asked for
    /// (`explain=true`): each with how it was counted or why it was excluded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
    /// The window's figures per application and per team, when asked for (`breakdown=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<DoraBreakdown>,
    /// Incidents of the scope still open after 7 days (`LONG_OPEN_INCIDENT_DAYS`), oldest
    /// first: each counts as open for every later deployment's rework and keeps its recovery
    /// unmeasured, so close it (`PATCH /api/v1/incidents/{id}`) if it is over.
    pub incidents_open_too_long: Vec<LongOpenIncident>,
    /// How each number is obtained.
    pub definitions: Definitions,
}

/// The window's figures of each application and team of the scope.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DoraBreakdown {
    /// Per application with a deployment counted, by code: the same figures as asking for
    /// that application alone. Empty without a project (codes are unique per project only).
    pub by_application: Vec<DoraShare>,
    /// Per team, by code, from the deployments to the counted environments each team owns;
    /// `team` is `null` for environments of no team.
    pub by_team: Vec<DoraShare>,
}

/// The figures of one application or team.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DoraShare {
    /// The application's or team's code; `null`: environments of no team.
    pub code: Option<String>,
    /// Its figures over the window.
    #[serde(flatten)]
    pub report: Report,
}

/// One application's or team's figures, before the scope's own are computed.
type Part = (Option<String>, Option<Report>);

/// The report of `records`, with the incidents `about` them (an incident of no application
/// or environment is about all); `None` when those are all of `data`'s, whose report is the
/// scope's own (so a breakdown into one team costs nothing more).
fn share(
    records: Vec<DeploymentRecord>,
    data: &DoraData,
    window: Window,
    link_hours: u32,
    about: impl Fn(&IncidentRecord) -> bool,
) -> Option<Report> {
    let incidents: Vec<IncidentRecord> = data
        .incidents
        .iter()
        .filter(|i| about(i))
        .cloned()
        .collect();
    if records.len() == data.records.len() && incidents.len() == data.incidents.len() {
        return None;
    }
    Some(
        History::new(records)
            .with_incidents(incidents, link_hours)
            .report(window),
    )
}

/// The breakdown's parts, each with its own figures or the scope's `whole`.
fn completed(parts: Vec<Part>, whole: &Report) -> Vec<DoraShare> {
    parts
        .into_iter()
        .map(|(code, report)| DoraShare {
            code,
            report: report.unwrap_or_else(|| whole.clone()),
        })
        .collect()
}

/// `records` grouped by `key` (one pass, so a breakdown costs one walk of the records rather
/// than one per application or team).
fn grouped<'a, K: Eq + std::hash::Hash>(
    records: &'a [DeploymentRecord],
    key: impl Fn(&'a DeploymentRecord) -> Option<K>,
) -> HashMap<K, Vec<DeploymentRecord>> {
    let mut groups: HashMap<K, Vec<DeploymentRecord>> = HashMap::new();
    for record in records {
        if let Some(k) = key(record) {
            groups.entry(k).or_default().push(record.clone());
        }
    }
    groups
}

impl App {
    /// The per-application and per-team figures of `data` (see [`share`] for `None`).
    async fn breakdown(
        &self,
        caller: &Principal,
        project: Option<&crate::model::Project>,
        data: &DoraData,
        window: Window,
        link_hours: u32,
    ) -> Result<(Vec<Part>, Vec<Part>), AppError> {
        let mut by_application = Vec::new();
        if let Some(project) = project {
            let mut applications = self
                .ports
                .applications
                .list(caller.workspace, project.id)
                .await?;
            applications.sort_by(|a, b| a.code.cmp(&b.code));
            let mut records = grouped(&data.records, |r| Some(&*r.application));
            for application in applications {
                let id = application.id.to_string();
                let Some(records) = records.remove(id.as_str()) else {
                    continue;
                };
                by_application.push((
                    Some(application.code.to_string()),
                    share(records, data, window, link_hours, |i| {
                        i.applications
                            .as_ref()
                            .is_none_or(|apps| apps.contains(&id))
                    }),
                ));
            }
        }
        let codes: BTreeMap<_, _> = self
            .ports
            .teams
            .list(caller.workspace)
            .await?
            .into_iter()
            .map(|t| (t.id, t.code.to_string()))
            .collect();
        // Each counted environment's team; the teams in order of first appearance.
        let mut teams: Vec<(Option<String>, Vec<String>)> = Vec::new();
        let mut team_of: HashMap<String, usize> = HashMap::new();
        for environment in self.ports.environments.list(caller.workspace).await? {
            let id = environment.id.to_string();
            if !data.records.iter().any(|r| *r.environment == *id) {
                continue;
            }
            let team = environment.team.and_then(|t| codes.get(&t).cloned());
            let index = match teams.iter().position(|(code, _)| *code == team) {
                Some(index) => index,
                None => {
                    teams.push((team, Vec::new()));
                    teams.len() - 1
                }
            };
            if let Some((_, ids)) = teams.get_mut(index) {
                ids.push(id.clone());
            }
            team_of.insert(id, index);
        }
        let mut records = grouped(&data.records, |r| team_of.get(&*r.environment).copied());
        let mut by_team: Vec<Part> = teams
            .into_iter()
            .enumerate()
            .map(|(index, (code, ids))| {
                let records = records.remove(&index).unwrap_or_default();
                let report = share(records, data, window, link_hours, |i| {
                    i.environment.as_ref().is_none_or(|e| ids.contains(e))
                });
                (code, report)
            })
            .collect();
        // Teams by code, environments of no team last.
        by_team.sort_by(|a, b| (a.0.is_none(), &a.0).cmp(&(b.0.is_none(), &b.0)));
        Ok((by_application, by_team))
    }

    /// The DORA metrics of a scope and window, computed now from committed data.
    pub async fn dora(
        &self,
        caller: &Principal,
        request: DoraRequest,
    ) -> Result<DoraView, AppError> {
        caller.require(Capability::Read, "read metrics")?;
        if request.link_hours == 0 || request.link_hours > MAX_LINK_HOURS {
            return Err(AppError::invalid(
                "incident_link_hours",
                format!("must be from 1 to {MAX_LINK_HOURS} hours"),
            ));
        }
        let to = match request.to {
            Some(to) => to,
            None => self.ports.clock.now(),
        };
        let window = match request.from {
            Some(from) => Window::new(from, to)
                .ok_or_else(|| AppError::invalid("from", "must be before to"))?,
            None => Window::days_before(to, DEFAULT_WINDOW_DAYS)
                .ok_or_else(|| AppError::invalid("to", "is too early: send a time after year 0"))?,
        };
        if window.days() > f64::from(MAX_WINDOW_DAYS) {
            return Err(AppError::invalid(
                "from",
                format!("the window may span at most {MAX_WINDOW_DAYS} days: narrow from/to"),
            ));
        }
        let project = match &request.project {
            Some(slug) => Some(
                self.visible_project(caller, &ProjectLookup::Slug(slug.clone()))
                    .await?,
            ),
            None => match caller.project {
                Some(id) => Some(self.visible_project(caller, &ProjectLookup::Id(id)).await?),
                None => None,
            },
        };
        let data = self
            .ports
            .deployments
            .dora(
                caller.workspace,
                DoraQuery {
                    project: project.as_ref().map(|p| p.id),
                    environment: request.environment.clone(),
                    application: request.application.clone(),
                    window,
                    link_hours: request.link_hours,
                },
            )
            .await?;
        let incidents_open_too_long = open_too_long(
            &data.incidents,
            self.ports.clock.now(),
            LONG_OPEN_INCIDENT_DAYS,
        );
        let breakdown = if request.breakdown {
            Some(
                self.breakdown(caller, project.as_ref(), &data, window, request.link_hours)
                    .await?,
            )
        } else {
            None
        };
        let history = History::new(data.records).with_incidents(data.incidents, request.link_hours);
        let report = history.report(window);
        let breakdown = breakdown.map(|(by_application, by_team)| DoraBreakdown {
            by_application: completed(by_application, &report),
            by_team: completed(by_team, &report),
        });
        Ok(DoraView {
            scope: DoraScope {
                project: project.map(|p| p.slug),
                application: request.application,
                environments: data.environments,
                incident_link_hours: request.link_hours,
            },
            report,
            series: request.interval.map(|i| history.series(window, i)),
            explanation: request.explain.then(|| history.explain(window)),
            breakdown,
            incidents_open_too_long,
            definitions: DEFINITIONS,
        })
    }
}

#[cfg(test)]
mod tests {
    use shiplog_domain::dora::{DeploymentRecord, Outcome};

    use super::*;
    use crate::ports::DoraData;
    use crate::testing::{TestPorts, ingester, now, reader};

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    #[tokio::test]
    async fn the_default_window_is_the_last_thirty_days_and_the_store_gets_the_scope() {
        let mut ports = TestPorts::new();
        ports.with_project();
        ports.with_clock_and_ids();
        ports.deployments.expect_dora().returning(|_, query| {
            assert_eq!(query.window.to, now());
            assert_eq!(query.window.days(), 30.0);
            assert!(query.project.is_some());
            Ok(DoraData {
                environments: vec![EnvironmentCode::parse("production").unwrap()],
                records: vec![DeploymentRecord {
                    id: "d".into(),
                    application: "a".into(),
                    environment: "e".into(),
                    outcome: Outcome::Succeeded,
                    finished_at: at("2025-09-20T00:00:00Z"),
                    has_commit: false,
                    commit_time: None,
                    started_at: None,
                    rework: None,
                }],
                incidents: Vec::new(),
            })
        });
        let view = ports
            .app()
            .dora(
                &reader(),
                DoraRequest {
                    project: Some(ProjectSlug::parse("my-project").unwrap()),
                    interval: Some(Interval::Week),
                    ..DoraRequest::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(view.report.deployment_frequency.samples, 1);
        assert_eq!(
            view.series.as_ref().map(Vec::len),
            Some(5),
            "30 days: 4 weeks + 2 days"
        );
        assert_eq!(view.scope.environments.len(), 1);
    }

    #[tokio::test]
    async fn bad_windows_and_roles_are_refused_before_any_read() {
        let mut ports = TestPorts::new();
        ports.with_clock_and_ids();
        let app = ports.app();
        let err = app
            .dora(
                &reader(),
                DoraRequest {
                    from: Some(at("2025-09-02T00:00:00Z")),
                    to: Some(at("2025-09-01T00:00:00Z")),
                    ..DoraRequest::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err, AppError::invalid("from", "must be before to"));
        let err = app
            .dora(
                &reader(),
                DoraRequest {
                    from: Some(at("2015-01-01T00:00:00Z")),
                    to: Some(at("2025-09-01T00:00:00Z")),
                    ..DoraRequest::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), crate::error::ErrorCode::InvalidField);
        let err = app
            .dora(&ingester(), DoraRequest::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), crate::error::ErrorCode::RoleForbidden);
    }
}
