//! Incidents: reported through `POST /api/v1/incidents`, changed with `PATCH`, or received
//! from PagerDuty and Opsgenie integrations; read back, and counted by the DORA metrics.
//!
//! One incident is one record per project, source and source id, however many updates the
//! source sends (the same id in two projects is two incidents, one counted in each):
//! the store folds each update into the stored record with [`merge`] (or [`patched`]) inside
//! its transaction, so concurrent updates of one incident never make two.

use shiplog_domain::ids::{ApplicationCode, EnvironmentCode};
use shiplog_domain::incident::{IncidentSource, Observation, Transition, settle};

use crate::App;
use crate::auth::{Capability, Principal};
use crate::error::AppError;
use crate::ids::{ApplicationId, EnvironmentId, IncidentId, ProjectId, WorkspaceId};
use crate::ingest::not_in_the_future;
use crate::model::ProjectLookup;
use crate::pagination::{DEFAULT_LIMIT, MAX_LIMIT};

mod records;

pub use records::{
    Incident, IncidentBlame, IncidentChange, IncidentFilter, IncidentPage, IncidentPatch,
    IncidentQuery, IncidentStatus, IncidentUpdate, IncidentView, MAX_EXTERNAL_ID, MAX_SEVERITY,
    MAX_TITLE, MAX_URL, Named, NewIncident, ProviderIncident, merge, patched,
};

fn checked_text(field: &'static str, value: String, max: usize) -> Result<String, AppError> {
    let value = value.trim().to_owned();
    if value.chars().count() > max {
        return Err(AppError::invalid(
            field,
            format!("is longer than {max} characters: shorten it"),
        ));
    }
    AppError::check_line(field, &value)?;
    Ok(value)
}

fn checked_url(value: Option<String>) -> Result<Option<String>, AppError> {
    let Some(url) = value else { return Ok(None) };
    let url = checked_text("url", url, MAX_URL)?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(AppError::invalid(
            "url",
            "must be an http:// or https:// address",
        ));
    }
    Ok(Some(url))
}

/// A provider's text, made one line: control characters become spaces, bidirectional
/// formatting characters are dropped, and it is cut to `max` characters.
fn cut(value: &str, max: usize) -> String {
    shiplog_domain::text::one_line(value.trim())
        .chars()
        .take(max)
        .collect()
}

impl App {
    /// Records an incident reported through the API (`ingest` or `admin`). The same
    /// `external_id` again updates the same incident; without one, the incident's place, title
    /// and opening time identify it, so a retried request never opens a second one. Returns
    /// the incident and whether it is new.
    pub async fn report_incident(
        &self,
        caller: &Principal,
        request: NewIncident,
    ) -> Result<(IncidentView, bool), AppError> {
        caller.require(Capability::Ingest, "report incidents")?;
        let title = checked_text("title", request.title, MAX_TITLE)?;
        if title.is_empty() {
            return Err(AppError::invalid(
                "title",
                "is required: say what broke, e.g. \"Checkout returns 500\"",
            ));
        }
        let severity = request
            .severity
            .map(|s| checked_text("severity", s, MAX_SEVERITY))
            .transpose()?
            .filter(|s| !s.is_empty());
        let url = checked_url(request.url)?;
        let external_id = request
            .external_id
            .map(|id| checked_text("external_id", id, MAX_EXTERNAL_ID))
            .transpose()?
            .filter(|id| !id.is_empty());
        if external_id.is_none() && request.opened_at.is_none() {
            return Err(AppError::invalid(
                "external_id",
                "send external_id (your tool's id for the incident) or opened_at, so that a retried request updates the incident instead of opening a second one",
            ));
        }
        let now = self.ports.clock.now();
        not_in_the_future("opened_at", request.opened_at, now)?;
        not_in_the_future("resolved_at", request.resolved_at, now)?;
        let opened_at = request.opened_at.unwrap_or(now);
        if let Some(resolved) = request.resolved_at
            && resolved < opened_at
        {
            return Err(AppError::invalid(
                "resolved_at",
                "is before opened_at: an incident is resolved after it opens",
            ));
        }
        let project = self
            .named_or_scoped_project(caller, request.project.map(ProjectLookup::Slug).as_ref())
            .await?
            .ok_or_else(|| {
                AppError::invalid(
                    "project",
                    "is required: name the project (slug) the incident is about",
                )
            })?;
        let application = self
            .incident_application(caller.workspace, project.id, request.application.as_ref())
            .await?
            .map_err(|code| {
                AppError::invalid(
                    "application",
                    format!(
                        "{code} is not an application of project {}: send one of its application codes, or none for the whole project",
                        project.slug
                    ),
                )
            })?;
        let environment = self
            .incident_environment(caller.workspace, request.environment.as_ref())
            .await?
            .map_err(|code| {
                AppError::invalid(
                    "environment",
                    format!(
                        "{code} is not an environment of this workspace: send one of GET /api/v1/environments, or none for every production environment"
                    ),
                )
            })?;
        if let Some(deployment) = request.blame.deployment {
            let known = self
                .ports
                .deployments
                .get(caller.workspace, deployment)
                .await?
                .is_some_and(|d| d.project == project.slug);
            if !known {
                return Err(AppError::invalid(
                    "blamed.deployment",
                    format!(
                        "{deployment} is not a deployment of project {}: send its id as GET /api/v1/deployments shows it",
                        project.slug
                    ),
                ));
            }
        }
        let external_id = external_id.unwrap_or_else(|| {
            // The place, title and opening time identify an incident sent without an id.
            let application_id = application.as_ref().map(|a| a.id.to_string());
            let environment_id = environment.as_ref().map(|e| e.id.to_string());
            let fingerprint = shiplog_domain::ids::Fingerprint::of(&[
                &project.id.to_string(),
                application_id.as_deref().unwrap_or(""),
                environment_id.as_deref().unwrap_or(""),
                &title,
                &opened_at.unix_micros().to_string(),
            ]);
            format!("auto:{fingerprint}")
        });
        let observation = match request.resolved_at {
            Some(resolved) => Observation {
                occurred_at: resolved,
                opened_at,
                transition: Transition::Resolve,
            },
            None => Observation {
                occurred_at: opened_at,
                opened_at,
                transition: Transition::Open,
            },
        };
        let incident = Incident {
            id: IncidentId::from_uuid(self.ports.ids.uuid()),
            workspace: caller.workspace,
            project: Named {
                id: project.id,
                code: project.slug,
            },
            application,
            environment,
            title,
            severity,
            url,
            source: IncidentSource::Api,
            external_id,
            integration: None,
            state: settle(None, observation),
            blame: request.blame,
            created_at: now,
            updated_at: now,
        };
        let (stored, created) = self
            .ports
            .incidents
            .upsert_incident(IncidentUpdate {
                incident,
                observation,
            })
            .await?;
        Ok((stored.into(), created))
    }

    /// Records what a PagerDuty or Opsgenie delivery says, as its integration (whose project it
    /// belongs to). An application or environment the settings name that does not exist is
    /// left out (the incident then counts for the whole project or every production
    /// environment), and the returned note says so.
    pub(crate) async fn record_provider_incident(
        &self,
        integration: &crate::integrations::IntegrationRecord,
        report: ProviderIncident,
    ) -> Result<(Incident, bool, Vec<String>), AppError> {
        let project_id = integration.project.ok_or_else(|| {
            AppError::invalid(
                "project",
                "an incident integration needs a project: create it with one",
            )
        })?;
        let project = self
            .ports
            .projects
            .get(integration.workspace, &ProjectLookup::Id(project_id))
            .await?
            .ok_or_else(|| AppError::ProjectNotFound(project_id.to_string()))?;
        let mut notes = Vec::new();
        let application = match self
            .incident_application(
                integration.workspace,
                project.id,
                report.application.as_ref(),
            )
            .await?
        {
            Ok(found) => found,
            Err(code) => {
                notes.push(format!(
                    "application {code} is not in project {}: counted for the whole project",
                    project.slug
                ));
                None
            }
        };
        let environment = match self
            .incident_environment(integration.workspace, report.environment.as_ref())
            .await?
        {
            Ok(found) => found,
            Err(code) => {
                notes.push(format!(
                    "environment {code} does not exist: counted for every production environment"
                ));
                None
            }
        };
        let now = self.ports.clock.now();
        not_in_the_future("opened_at", Some(report.observation.opened_at), now)?;
        not_in_the_future("occurred_at", Some(report.observation.occurred_at), now)?;
        let incident = Incident {
            id: IncidentId::from_uuid(self.ports.ids.uuid()),
            workspace: integration.workspace,
            project: Named {
                id: project.id,
                code: project.slug,
            },
            application,
            environment,
            title: cut(&report.title, MAX_TITLE),
            severity: report
                .severity
                .map(|s| cut(&s, MAX_SEVERITY))
                .filter(|s| !s.is_empty()),
            url: report
                .url
                .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                .map(|u| cut(&u, MAX_URL)),
            source: match integration.provider {
                shiplog_domain::integration::IntegrationProvider::Opsgenie => {
                    IncidentSource::Opsgenie
                }
                _ => IncidentSource::Pagerduty,
            },
            external_id: cut(&report.external_id, MAX_EXTERNAL_ID),
            integration: Some(integration.id),
            state: settle(None, report.observation),
            blame: IncidentBlame::default(),
            created_at: now,
            updated_at: now,
        };
        let (stored, created) = self
            .ports
            .incidents
            .upsert_incident(IncidentUpdate {
                incident,
                observation: report.observation,
            })
            .await?;
        Ok((stored, created, notes))
    }

    /// Changes an incident (`ingest` or `admin`): resolve or reopen it, retitle it, name its
    /// cause.
    pub async fn update_incident(
        &self,
        caller: &Principal,
        id: &str,
        change: IncidentChange,
    ) -> Result<IncidentView, AppError> {
        caller.require(Capability::Ingest, "change incidents")?;
        let current = self.visible_incident(caller, id).await?;
        let now = self.ports.clock.now();
        not_in_the_future("resolved_at", change.resolved_at, now)?;
        let resolved = match (change.status, change.resolved_at) {
            (None, None) => None,
            (Some(IncidentStatus::Open), None) => Some(None),
            (Some(IncidentStatus::Open), Some(_)) => {
                return Err(AppError::invalid(
                    "resolved_at",
                    "cannot be sent with status open: send one or the other",
                ));
            }
            (Some(IncidentStatus::Resolved) | None, Some(at)) => Some(Some(at)),
            (Some(IncidentStatus::Resolved), None) => Some(Some(now)),
        };
        let mut patch = IncidentPatch {
            title: change.title,
            severity: change.severity,
            resolved,
            blame: change.blame,
        };
        if let Some(title) = patch.title.take() {
            let title = checked_text("title", title, MAX_TITLE)?;
            if title.is_empty() {
                return Err(AppError::invalid("title", "may not be empty"));
            }
            patch.title = Some(title);
        }
        if let Some(Some(severity)) = patch.severity {
            patch.severity = Some(
                Some(checked_text("severity", severity, MAX_SEVERITY)?).filter(|s| !s.is_empty()),
            );
        }
        if let Some(Some(resolved)) = patch.resolved
            && resolved < current.state.opened_at
        {
            return Err(AppError::invalid(
                "resolved_at",
                format!(
                    "is before the incident opened ({}): an incident is resolved after it opens",
                    current.state.opened_at
                ),
            ));
        }
        if let Some(deployment) = patch.blame.as_ref().and_then(|b| b.deployment) {
            let known = self
                .ports
                .deployments
                .get(caller.workspace, deployment)
                .await?
                .is_some_and(|d| d.project == current.project.code);
            if !known {
                return Err(AppError::invalid(
                    "blamed.deployment",
                    format!(
                        "{deployment} is not a deployment of project {}",
                        current.project.code
                    ),
                ));
            }
        }
        let stored = self
            .ports
            .incidents
            .patch_incident(caller.workspace, current.id, patch, now)
            .await?
            .ok_or_else(|| AppError::IncidentNotFound(id.chars().take(80).collect()))?;
        Ok(stored.into())
    }

    /// One incident.
    pub async fn incident(&self, caller: &Principal, id: &str) -> Result<IncidentView, AppError> {
        caller.require(Capability::Read, "read incidents")?;
        Ok(self.visible_incident(caller, id).await?.into())
    }

    /// A page of incidents, newest opening first.
    pub async fn incidents(
        &self,
        caller: &Principal,
        filter: IncidentFilter,
    ) -> Result<IncidentPage, AppError> {
        caller.require(Capability::Read, "read incidents")?;
        let limit = filter.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(AppError::invalid(
                "limit",
                format!("must be from 1 to {MAX_LIMIT}"),
            ));
        }
        let project = self
            .named_or_scoped_project(caller, filter.project.map(ProjectLookup::Slug).as_ref())
            .await?;
        let after = filter
            .cursor
            .map(|c| {
                IncidentId::parse(&c).ok_or_else(|| {
                    AppError::invalid("cursor", "is not a cursor: send a page's next_cursor")
                })
            })
            .transpose()?;
        let items = self
            .ports
            .incidents
            .incidents(
                caller.workspace,
                IncidentQuery {
                    project: project.map(|p| p.id),
                    status: filter.status,
                    limit: limit + 1,
                    after,
                },
            )
            .await?;
        let more = items.len() > limit as usize;
        let items: Vec<IncidentView> = items
            .into_iter()
            .take(limit as usize)
            .map(IncidentView::from)
            .collect();
        Ok(IncidentPage {
            next_cursor: more
                .then(|| items.last().map(|i| i.id.to_string()))
                .flatten(),
            items,
        })
    }

    async fn visible_incident(&self, caller: &Principal, id: &str) -> Result<Incident, AppError> {
        let not_found = || AppError::IncidentNotFound(id.chars().take(80).collect());
        let parsed = IncidentId::parse(id).ok_or_else(not_found)?;
        self.ports
            .incidents
            .incident(caller.workspace, parsed)
            .await?
            .filter(|i| caller.sees(i.project.id))
            .ok_or_else(not_found)
    }

    /// An application of the project by code: `Ok(None)` when none is asked for, `Err(code)`
    /// when the project has none with that code.
    async fn incident_application(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
        code: Option<&ApplicationCode>,
    ) -> Result<Result<Option<Named<ApplicationId, ApplicationCode>>, ApplicationCode>, AppError>
    {
        let Some(code) = code else {
            return Ok(Ok(None));
        };
        Ok(
            match self
                .ports
                .applications
                .get(workspace, project, code)
                .await?
            {
                Some(found) => Ok(Some(Named {
                    id: found.id,
                    code: found.code,
                })),
                None => Err(code.clone()),
            },
        )
    }

    /// An environment of the workspace by code, like [`App::incident_application`].
    async fn incident_environment(
        &self,
        workspace: WorkspaceId,
        code: Option<&EnvironmentCode>,
    ) -> Result<Result<Option<Named<EnvironmentId, EnvironmentCode>>, EnvironmentCode>, AppError>
    {
        let Some(code) = code else {
            return Ok(Ok(None));
        };
        Ok(match self.ports.environments.get(workspace, code).await? {
            Some(found) => Ok(Some(Named {
                id: found.id,
                code: found.code,
            })),
            None => Err(code.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use shiplog_domain::ids::ProjectSlug;
    use shiplog_domain::timestamp::Timestamp;

    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn incident(opened: &str) -> Incident {
        let observation = Observation {
            occurred_at: at(opened),
            opened_at: at(opened),
            transition: Transition::Open,
        };
        Incident {
            id: IncidentId::from_uuid(uuid::Uuid::from_u128(1)),
            workspace: WorkspaceId::from_uuid(uuid::Uuid::from_u128(2)),
            project: Named {
                id: ProjectId::from_uuid(uuid::Uuid::from_u128(3)),
                code: ProjectSlug::parse("shop").unwrap(),
            },
            application: None,
            environment: None,
            title: "Checkout down".into(),
            severity: Some("P1".into()),
            url: None,
            source: IncidentSource::Pagerduty,
            external_id: "PXYZ".into(),
            integration: None,
            state: settle(None, observation),
            blame: IncidentBlame::default(),
            created_at: at(opened),
            updated_at: at(opened),
        }
    }

    fn update(occurred: &str, opened: &str, transition: Transition, title: &str) -> IncidentUpdate {
        let mut fresh = incident(opened);
        fresh.id = IncidentId::from_uuid(uuid::Uuid::from_u128(99));
        fresh.title = title.into();
        fresh.updated_at = at(occurred);
        IncidentUpdate {
            incident: fresh,
            observation: Observation {
                occurred_at: at(occurred),
                opened_at: at(opened),
                transition,
            },
        }
    }

    #[test]
    fn updates_fold_into_the_first_record_and_the_latest_says_the_state() {
        let opened = "2025-03-01T10:00:00Z";
        let first = merge(
            None,
            update(opened, opened, Transition::Open, "Checkout down"),
        );
        assert_eq!(first.id, IncidentId::from_uuid(uuid::Uuid::from_u128(99)));
        let resolved = merge(
            Some(first.clone()),
            update(
                "2025-03-01T11:00:00Z",
                opened,
                Transition::Resolve,
                "Checkout down (fixed)",
            ),
        );
        assert_eq!(resolved.id, first.id, "the stored record keeps its id");
        assert_eq!(resolved.state.resolved_at, Some(at("2025-03-01T11:00:00Z")));
        assert_eq!(resolved.title, "Checkout down (fixed)");
        // A late, older update changes neither the state nor the title.
        let late = merge(
            Some(resolved.clone()),
            update("2025-03-01T10:30:00Z", opened, Transition::Open, "stale"),
        );
        assert_eq!(late.state, resolved.state);
        assert_eq!(late.title, resolved.title);
    }

    #[test]
    fn a_patch_resolves_reopens_and_never_resolves_before_the_opening() {
        let current = incident("2025-03-01T10:00:00Z");
        let now = at("2025-03-01T12:00:00Z");
        let resolved = patched(
            current.clone(),
            IncidentPatch {
                resolved: Some(Some(at("2025-03-01T09:00:00Z"))),
                ..IncidentPatch::default()
            },
            now,
        );
        assert_eq!(resolved.state.resolved_at, Some(at("2025-03-01T10:00:00Z")));
        let reopened = patched(
            resolved,
            IncidentPatch {
                resolved: Some(None),
                title: Some("still down".into()),
                ..IncidentPatch::default()
            },
            now,
        );
        assert!(reopened.state.is_open());
        assert_eq!(reopened.title, "still down");
        assert_eq!(reopened.updated_at, now);
    }
}
