//! Deleting what a workspace holds, retention, and the audit log's use cases.
//!
//! Deletions are for admins: a deployment, an application, an environment or a project of
//! their workspace (a key limited to one project: only within it, and no environment, which
//! the whole workspace shares), or a whole workspace with the master key. Each removes what
//! belongs to the record and nothing of another workspace, with its audit entry in the same
//! transaction; DORA figures over the days it touched are packed again.
//!
//! Retention (`SHIPLOG_RETENTION_DAYS`) removes, in small batches, pipeline events, finished hook
//! deliveries, integrations' logs, expired sessions and audit entries older than the cut-off;
//! deployments only under a separate setting.

use shiplog_domain::ids::{EnvironmentCode, ProjectSlug, WorkspaceCode};
use shiplog_domain::timestamp::Timestamp;

use crate::App;
use crate::admin::{Master, WorkspaceAdmin};
use crate::audit::{Actor, AuditAction, AuditEntry, AuditRecord, AuditTarget, Origin};
use crate::auth::{Capability, Principal};
use crate::error::AppError;
use crate::ids::{ApplicationId, WorkspaceId};
use crate::model::ProjectLookup;
use crate::ports::{Deletion, Pruned};

/// The most audit entries one page holds.
pub const MAX_AUDIT_PAGE: u32 = 200;

/// A page of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    /// Entries, newest first.
    pub entries: Vec<AuditRecord>,
    /// The `before` of the next page, when there may be one.
    pub next: Option<i64>,
}

/// How far retention reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Events, deliveries, logs, sessions and audit entries older than this many days go.
    pub days: u32,
    /// Deployments finished longer ago than this many days go too (`None`: they stay).
    pub deployment_days: Option<u32>,
    /// Rows of each kind removed per round.
    pub batch: u32,
}

const DAY_MICROS: i64 = 86_400_000_000;

impl App {
    /// Writes an audit entry for a change that has committed. A failure is logged with the
    /// entry rather than failing a change that already happened.
    pub(crate) async fn audit(
        &self,
        origin: Origin,
        workspace: Option<WorkspaceId>,
        action: AuditAction,
        target: AuditTarget,
    ) {
        let entry = self.audit_entry(origin, workspace, action, target);
        if let Err(error) = self.ports.lifecycle.record_audit(entry.clone()).await {
            tracing::error!(
                %error,
                action = entry.action.as_str(),
                actor = entry.actor.kind(),
                actor_id = entry.actor.id(),
                target = entry.target.id,
                workspace = entry.workspace.map(|w| w.to_string()),
                "the audit entry of a change could not be written"
            );
        }
    }

    fn audit_entry(
        &self,
        origin: Origin,
        workspace: Option<WorkspaceId>,
        action: AuditAction,
        target: AuditTarget,
    ) -> AuditEntry {
        AuditEntry {
            id: self.ports.ids.uuid(),
            workspace,
            workspace_code: None,
            at: self.ports.clock.now(),
            actor: origin.actor,
            action,
            target,
            address: origin.address,
        }
    }

    async fn delete_in(
        &self,
        origin: Origin,
        workspace: WorkspaceId,
        deletion: Deletion,
        action: AuditAction,
        target: AuditTarget,
    ) -> Result<bool, AppError> {
        let entry = self.audit_entry(origin, Some(workspace), action, target);
        Ok(self
            .ports
            .lifecycle
            .delete(workspace, deletion, entry)
            .await?)
    }

    /// Deletes one deployment with its events, references and deliveries (admins).
    pub async fn delete_deployment(&self, caller: &Principal, id: &str) -> Result<(), AppError> {
        caller.require(Capability::Administer, "delete deployments")?;
        // Found and visible to this key, else "not found" (a key limited to one project
        // learns nothing of the others').
        let deployment = self.get_deployment(caller, id).await?;
        let target = AuditTarget {
            kind: "deployment",
            id: deployment.id.to_string(),
            name: Some(format!(
                "{}/{} in {}",
                deployment.project, deployment.application, deployment.environment
            )),
        };
        let deleted = self
            .delete_in(
                caller.origin(),
                caller.workspace,
                Deletion::Deployment(deployment.id),
                AuditAction::DeploymentDeleted,
                target,
            )
            .await?;
        deleted
            .then_some(())
            .ok_or_else(|| AppError::DeploymentNotFound(id.chars().take(80).collect()))
    }

    /// Deletes an application with its deployments, assignments and hooks (admins).
    pub async fn delete_application(&self, caller: &Principal, id: &str) -> Result<(), AppError> {
        caller.require(Capability::Administer, "delete applications")?;
        let not_found = || AppError::ApplicationIdNotFound(id.chars().take(80).collect());
        let application_id = ApplicationId::parse(id).ok_or_else(not_found)?;
        let application = self
            .ports
            .applications
            .by_id(caller.workspace, application_id)
            .await?
            .filter(|a| caller.sees(a.project))
            .ok_or_else(not_found)?;
        let target = AuditTarget {
            kind: "application",
            id: application.id.to_string(),
            name: Some(application.code.to_string()),
        };
        let deleted = self
            .delete_in(
                caller.origin(),
                caller.workspace,
                Deletion::Application(application.id),
                AuditAction::ApplicationDeleted,
                target,
            )
            .await?;
        deleted.then_some(()).ok_or_else(not_found)
    }

    /// Deletes a workspace environment with its deployments, assignments, hooks and packed
    /// DORA days (admins of the whole workspace).
    pub async fn delete_environment(&self, caller: &Principal, code: &str) -> Result<(), AppError> {
        // Every project of the workspace shares it: not for a key limited to one project.
        Self::require_workspace_admin(caller, "delete environments")?;
        let code =
            EnvironmentCode::parse(code).map_err(|e| AppError::invalid("code", e.to_string()))?;
        let environment = self
            .ports
            .environments
            .get(caller.workspace, &code)
            .await?
            .ok_or_else(|| AppError::EnvironmentNotFound(code.clone()))?;
        let target = AuditTarget {
            kind: "environment",
            id: environment.id.to_string(),
            name: Some(environment.code.to_string()),
        };
        let deleted = self
            .delete_in(
                caller.origin(),
                caller.workspace,
                Deletion::Environment(environment.id),
                AuditAction::EnvironmentDeleted,
                target,
            )
            .await?;
        deleted
            .then_some(())
            .ok_or(AppError::EnvironmentNotFound(code))
    }

    /// Deletes a project with everything of it: applications, deployments, change requests,
    /// hooks, integrations, incidents, and the keys limited to it (admins).
    pub async fn delete_project(&self, caller: &Principal, slug: &str) -> Result<(), AppError> {
        caller.require(Capability::Administer, "delete projects")?;
        let slug =
            ProjectSlug::parse(slug).map_err(|e| AppError::invalid("slug", e.to_string()))?;
        let project = self
            .visible_project(caller, &ProjectLookup::Slug(slug.clone()))
            .await?;
        let target = AuditTarget {
            kind: "project",
            id: project.id.to_string(),
            name: Some(project.slug.to_string()),
        };
        let deleted = self
            .delete_in(
                caller.origin(),
                caller.workspace,
                Deletion::Project(project.id),
                AuditAction::ProjectDeleted,
                target,
            )
            .await?;
        deleted
            .then_some(())
            .ok_or_else(|| AppError::ProjectNotFound(slug.to_string()))
    }

    /// Deletes a workspace with everything of it (master key only). Its audit entries stay
    /// until retention removes them.
    pub async fn delete_workspace(
        &self,
        master: &Master,
        code: &WorkspaceCode,
    ) -> Result<(), AppError> {
        let not_found = || AppError::NotFoundWorkspace(code.to_string());
        let workspace = self
            .ports
            .workspaces
            .by_code(code)
            .await?
            .ok_or_else(not_found)?;
        let mut entry = self.audit_entry(
            master.origin(),
            Some(workspace.id),
            AuditAction::WorkspaceDeleted,
            AuditTarget {
                kind: "workspace",
                id: workspace.id.to_string(),
                name: Some(workspace.code.to_string()),
            },
        );
        entry.workspace_code = Some(workspace.code.to_string());
        let deleted = self
            .ports
            .lifecycle
            .delete(workspace.id, Deletion::Workspace, entry)
            .await?;
        deleted.then_some(()).ok_or_else(not_found)
    }

    /// A page of the audit log, newest first: the caller's workspace for an admin key; every
    /// workspace's (or `workspace`'s) for the master key.
    pub async fn audit_log(
        &self,
        admin: WorkspaceAdmin<'_>,
        workspace: Option<&WorkspaceCode>,
        before: Option<&str>,
        limit: Option<u32>,
    ) -> Result<AuditPage, AppError> {
        let scope = match (admin, workspace) {
            (_, Some(code)) => Some(self.administered(admin, code, "read the audit log").await?),
            (WorkspaceAdmin::Key(caller), None) => {
                Self::require_workspace_admin(caller, "read the audit log")?;
                Some(caller.workspace)
            }
            (WorkspaceAdmin::Master(_), None) => None,
        };
        let before = before
            .map(|b| {
                b.parse::<i64>().ok().filter(|b| *b > 0).ok_or_else(|| {
                    AppError::invalid("before", "send the `next` of the previous page")
                })
            })
            .transpose()?;
        let limit = limit.unwrap_or(50);
        if limit == 0 || limit > MAX_AUDIT_PAGE {
            return Err(AppError::invalid(
                "limit",
                format!("send 1 to {MAX_AUDIT_PAGE}"),
            ));
        }
        let entries = self.ports.lifecycle.audit(scope, before, limit).await?;
        let next = (entries.len() == limit as usize)
            .then(|| entries.last().map(|e| e.seq))
            .flatten();
        Ok(AuditPage { entries, next })
    }

    /// One retention round: at most `retention.batch` rows of each kind older than the
    /// cut-offs, each kind in its own write job.
    pub async fn prune(&self, retention: Retention) -> Result<Pruned, AppError> {
        let now = self.ports.clock.now();
        Ok(self
            .ports
            .lifecycle
            .prune(
                days_before(now, retention.days),
                retention.deployment_days.map(|days| days_before(now, days)),
                retention.batch,
            )
            .await?)
    }

    /// One retention pass: rounds ([`App::prune`]) while a round removes a full batch of
    /// anything, each round's write jobs queued behind what already waits for the writer, then
    /// the pass recorded ([`App::record_retention`]). What it removed.
    pub async fn retention_pass(&self, retention: Retention) -> Result<Pruned, AppError> {
        let mut pass = Pruned::default();
        loop {
            let round = self.prune(retention).await?;
            pass = pass.plus(round);
            if !round.any_full(retention.batch) {
                break;
            }
        }
        self.record_retention(retention, pass).await;
        Ok(pass)
    }

    /// Records a retention pass that removed anything in the audit log, as the system, with
    /// how many rows of each kind went.
    pub async fn record_retention(&self, retention: Retention, pruned: Pruned) {
        if pruned.total() == 0 {
            return;
        }
        let now = self.ports.clock.now();
        self.audit(
            Origin {
                actor: Actor::System { name: "retention" },
                address: None,
            },
            None,
            AuditAction::RetentionPruned,
            AuditTarget {
                kind: "retention",
                id: days_before(now, retention.days).to_string(),
                name: Some(format!(
                    "{} events, {} deliveries, {} status changes, {} received, {} sessions, \
                     {} audit entries, {} deployments",
                    pruned.events,
                    pruned.deliveries,
                    pruned.status_changes,
                    pruned.received,
                    pruned.sessions,
                    pruned.audit,
                    pruned.deployments
                )),
            },
        )
        .await;
    }
}

/// `days` days before `now`.
fn days_before(now: Timestamp, days: u32) -> Timestamp {
    Timestamp::from_unix_micros(
        now.unix_micros()
            .saturating_sub(i64::from(days).saturating_mul(DAY_MICROS)),
    )
    .unwrap_or(Timestamp::UNIX_EPOCH)
}
