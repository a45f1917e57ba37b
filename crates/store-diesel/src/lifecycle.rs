//! Deletions, retention and the audit log (`audit_events`).
//!
//! A deletion is one write job: it clears the blame of incidents that name a deployment going
//! (that column has no foreign key), deletes the record, and the foreign keys cascade to what
//! belongs to it (events, references, outbox rows, deliveries and their attempts, assignments,
//! hooks, packed DORA days); the `dora_days` triggers mark the days of every deployment removed
//! to be packed again. The audit entry is written in the same transaction.
//!
//! Retention removes the oldest rows first, at most a batch of each kind per write job, so the
//! writer is never held longer than one small batch and ingests interleave with it.

use async_trait::async_trait;
use diesel::prelude::*;
use shiplog_app::audit::{Actor, AuditAction, AuditEntry, AuditRecord, AuditTarget};
use shiplog_app::ids::WorkspaceId;
use shiplog_app::ports::{BackendFailure, Deletion, LifecycleStore, Pruned};
use shiplog_domain::timestamp::Timestamp;

use crate::Store;
use crate::columns::{time, uuid};
use crate::conn::{DbConn, Native};
use crate::error::{StoreError, corrupt};
use crate::schema::{
    applications, audit_events, deployments, environments, hook_deliveries, incidents,
    integration_deliveries, outbox_events, pipeline_events, projects, sessions, workspaces,
};

/// Deletes the row of `$table` with id `$id` in workspace `$ws`; whether there was one.
macro_rules! delete_of_workspace {
    ($conn:expr, $table:ident, $ws:expr, $id:expr) => {
        diesel::delete(
            $table::table
                .filter($table::workspace_id.eq($ws))
                .filter($table::id.eq($id)),
        )
        .execute_on($conn)?
            > 0
    };
}

/// Clears the blame of incidents (of `workspace`, when given: only its incidents can blame its
/// deployments) that name one of `deployments`; that column has no foreign key.
fn clear_blame(
    conn: &mut DbConn,
    workspace: Option<&str>,
    deployments: &[String],
) -> Result<(), StoreError> {
    let cleared = || incidents::blamed_deployment_id.eq(None::<String>);
    for chunk in deployments.chunks(500) {
        let blaming = incidents::table.filter(incidents::blamed_deployment_id.eq_any(chunk));
        match workspace {
            Some(workspace) => {
                diesel::update(blaming.filter(incidents::workspace_id.eq(workspace)))
                    .set(cleared())
                    .execute_on(conn)?
            }
            None => diesel::update(blaming).set(cleared()).execute_on(conn)?,
        };
    }
    Ok(())
}

/// Deletes what `deletion` names of `workspace`; `false` when it has no such record.
pub(crate) fn delete(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    deletion: Deletion,
    audit: &AuditEntry,
) -> Result<bool, StoreError> {
    let ws = workspace.to_string();
    let found = match deletion {
        Deletion::Deployment(id) => {
            let id = id.to_string();
            let ours: Option<String> = deployments::table
                .filter(deployments::workspace_id.eq(&ws))
                .filter(deployments::id.eq(&id))
                .select(deployments::id)
                .first_on(conn)
                .optional()?;
            if ours.is_none() {
                return Ok(false);
            }
            clear_blame(conn, Some(&ws), std::slice::from_ref(&id))?;
            delete_of_workspace!(conn, deployments, &ws, &id)
        }
        Deletion::Application(id) => {
            let id = id.to_string();
            let going = going_of(conn, &ws, Scope::Application(&id))?;
            clear_blame(conn, Some(&ws), &going)?;
            delete_of_workspace!(conn, applications, &ws, &id)
        }
        Deletion::Environment(id) => {
            let id = id.to_string();
            let going = going_of(conn, &ws, Scope::Environment(&id))?;
            clear_blame(conn, Some(&ws), &going)?;
            delete_of_workspace!(conn, environments, &ws, &id)
        }
        Deletion::Project(id) => {
            let id = id.to_string();
            // A project's incidents go with it; another project's may blame one of its
            // deployments only within the workspace, and are cleared.
            let going = going_of(conn, &ws, Scope::Project(&id))?;
            clear_blame(conn, Some(&ws), &going)?;
            delete_of_workspace!(conn, projects, &ws, &id)
        }
        Deletion::Workspace => {
            // Deployments, events and change requests lost their workspace keys on PostgreSQL
            // (migration 000016); they go through their projects' and applications' keys.
            diesel::delete(workspaces::table.filter(workspaces::id.eq(&ws))).execute_on(conn)? > 0
        }
    };
    if found {
        record(conn, audit)?;
    }
    Ok(found)
}

/// Which deployments a deletion takes with it.
enum Scope<'a> {
    Application(&'a str),
    Environment(&'a str),
    Project(&'a str),
}

/// Of the deployments the workspace's incidents blame, those of `scope`: the ones going.
fn going_of(conn: &mut DbConn, ws: &str, scope: Scope<'_>) -> Result<Vec<String>, StoreError> {
    let blamed: Vec<String> = incidents::table
        .filter(incidents::workspace_id.eq(ws))
        .filter(incidents::blamed_deployment_id.is_not_null())
        .select(incidents::blamed_deployment_id.assume_not_null())
        .load_on(conn)?;
    let mut going = Vec::new();
    for chunk in blamed.chunks(500) {
        let of = deployments::table
            .filter(deployments::id.eq_any(chunk))
            .select(deployments::id);
        going.extend(match scope {
            Scope::Application(id) => of
                .filter(deployments::application_id.eq(id))
                .load_on(conn)?,
            Scope::Environment(id) => of
                .filter(deployments::environment_id.eq(id))
                .load_on(conn)?,
            Scope::Project(id) => of.filter(deployments::project_id.eq(id)).load_on(conn)?,
        });
    }
    Ok(going)
}

/// Writes one audit entry.
pub(crate) fn record(conn: &mut DbConn, entry: &AuditEntry) -> Result<(), StoreError> {
    // The workspace's code, kept with the entry so it reads the same after a deletion.
    let code = match (&entry.workspace_code, entry.workspace) {
        (Some(code), _) => Some(code.clone()),
        (None, Some(workspace)) => workspaces::table
            .filter(workspaces::id.eq(workspace.to_string()))
            .select(workspaces::code)
            .first_on(conn)
            .optional()?,
        (None, None) => None,
    };
    diesel::insert_into(audit_events::table)
        .values((
            audit_events::id.eq(entry.id.to_string()),
            audit_events::workspace_id.eq(entry.workspace.map(|w| w.to_string())),
            audit_events::workspace_code.eq(code),
            audit_events::at.eq(entry.at.unix_micros()),
            audit_events::actor_kind.eq(entry.actor.kind()),
            audit_events::actor_id.eq(entry.actor.id()),
            audit_events::actor_name.eq(entry.actor.name()),
            audit_events::action.eq(entry.action.as_str()),
            audit_events::target_kind.eq(entry.target.kind),
            audit_events::target_id.eq(&entry.target.id),
            audit_events::target_name.eq(entry.target.name.as_deref()),
            audit_events::address.eq(entry.address.as_deref()),
        ))
        .execute_on(conn)?;
    Ok(())
}

type AuditRow = (
    i64,
    String,
    Option<String>,
    Option<String>,
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

fn audit_record(row: AuditRow) -> Result<AuditRecord, StoreError> {
    let (seq, id, workspace, workspace_code, at, kind, actor_id, actor_name, action, target_kind) = (
        row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9,
    );
    let (target_id, target_name, address) = (row.10, row.11, row.12);
    let missing = |what: &str| corrupt(what, "missing");
    let actor = match kind.as_str() {
        "master" => Actor::Master,
        "api_key" => Actor::ApiKey {
            id: actor_id.ok_or_else(|| missing("audit actor id"))?,
            name: actor_name.unwrap_or_default(),
        },
        "person" => Actor::Person {
            id: actor_id.ok_or_else(|| missing("audit actor id"))?,
            name: actor_name.unwrap_or_default(),
        },
        "signing_key" => Actor::SigningKey {
            id: actor_id.ok_or_else(|| missing("audit actor id"))?,
        },
        "integration" => Actor::Integration {
            id: actor_id.ok_or_else(|| missing("audit actor id"))?,
        },
        "system" => {
            let name = actor_name.unwrap_or_default();
            Actor::system(&name).ok_or_else(|| corrupt("audit system actor", &name))?
        }
        other => return Err(corrupt("audit actor kind", other)),
    };
    Ok(AuditRecord {
        seq,
        entry: AuditEntry {
            id: uuid(&id)?,
            workspace: workspace
                .as_deref()
                .map(uuid)
                .transpose()?
                .map(WorkspaceId::from_uuid),
            workspace_code,
            at: time(at)?,
            actor,
            action: AuditAction::parse(&action).ok_or_else(|| corrupt("audit action", &action))?,
            target: AuditTarget {
                kind: AuditTarget::kind_of(&target_kind)
                    .ok_or_else(|| corrupt("audit target kind", &target_kind))?,
                id: target_id,
                name: target_name,
            },
            address,
        },
    })
}

/// Entries newest first.
pub(crate) fn list(
    conn: &mut DbConn,
    workspace: Option<WorkspaceId>,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut query = audit_events::table
        .select((
            audit_events::seq,
            audit_events::id,
            audit_events::workspace_id,
            audit_events::workspace_code,
            audit_events::at,
            audit_events::actor_kind,
            audit_events::actor_id,
            audit_events::actor_name,
            audit_events::action,
            audit_events::target_kind,
            audit_events::target_id,
            audit_events::target_name,
            audit_events::address,
        ))
        .order(audit_events::seq.desc())
        .limit(i64::from(limit))
        .into_boxed();
    if let Some(workspace) = workspace {
        query = query.filter(audit_events::workspace_id.eq(workspace.to_string()));
    }
    if let Some(before) = before {
        query = query.filter(audit_events::seq.lt(before));
    }
    let rows: Vec<AuditRow> = query.load(conn)?;
    rows.into_iter().map(audit_record).collect()
}

/// One batch of one kind of row older than `before`: how many went.
pub(crate) fn prune_batch(
    conn: &mut DbConn,
    kind: PruneKind,
    before: Timestamp,
    batch: u32,
) -> Result<u64, StoreError> {
    let before = before.unix_micros();
    let limit = i64::from(batch);
    // The oldest `limit` rows of a table that `$filter`s keep, by `$order`, then those rows
    // by their key.
    macro_rules! delete_oldest {
        ($table:ident, $key:ident: $ty:ty, by $order:ident, $($filter:expr),+) => {{
            let keys: Vec<$ty> = $table::table
                $(.filter($filter))+
                .order($table::$order)
                .select($table::$key)
                .limit(limit)
                .load_on(conn)?;
            diesel::delete($table::table.filter($table::$key.eq_any(keys))).execute_on(conn)?
        }};
    }
    let removed = match kind {
        PruneKind::Events => delete_oldest!(
            pipeline_events, seq: i64, by received_at,
            pipeline_events::received_at.lt(before)
        ),
        // Finished deliveries only: one still being retried stays until it ends.
        PruneKind::Deliveries => delete_oldest!(
            hook_deliveries, seq: i64, by created_at,
            hook_deliveries::created_at.lt(before),
            hook_deliveries::status.ne("pending")
        ),
        // Status changes whose deliveries are all gone (retention removed them, or their hooks
        // were deleted); one with a delivery left is read when that is sent.
        PruneKind::Outbox => delete_oldest!(
            outbox_events, seq: i64, by seq,
            outbox_events::created_at.lt(before),
            diesel::dsl::not(diesel::dsl::exists(
                hook_deliveries::table
                    .filter(hook_deliveries::outbox_event_id.eq(outbox_events::id.nullable()))
            ))
        ),
        PruneKind::Received => delete_oldest!(
            integration_deliveries, seq: i64, by received_at,
            integration_deliveries::received_at.lt(before)
        ),
        PruneKind::Sessions => delete_oldest!(
            sessions, hash: String, by expires_at,
            sessions::expires_at.lt(before)
        ),
        PruneKind::Audit => delete_oldest!(
            audit_events, seq: i64, by seq,
            audit_events::at.lt(before)
        ),
        PruneKind::Deployments => {
            // Finished deployments by their finish; the cascade takes their events,
            // references and deliveries, and the triggers repack their days.
            let ids: Vec<String> = deployments::table
                .filter(deployments::finished_at.lt(before))
                .order(deployments::finished_at)
                .select(deployments::id)
                .limit(limit)
                .load_on(conn)?;
            clear_blame(conn, None, &ids)?;
            diesel::delete(deployments::table.filter(deployments::id.eq_any(ids)))
                .execute_on(conn)?
        }
    };
    Ok(u64::try_from(removed).unwrap_or(0))
}

/// The kinds of row retention removes, each in its own batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PruneKind {
    Events,
    Deliveries,
    Outbox,
    Received,
    Sessions,
    Audit,
    Deployments,
}

#[async_trait]
impl LifecycleStore for Store {
    async fn delete(
        &self,
        workspace: WorkspaceId,
        deletion: Deletion,
        audit: AuditEntry,
    ) -> Result<bool, BackendFailure> {
        let deleted = self
            .write(move |conn| delete(conn, workspace, deletion, &audit))
            .await?;
        if deleted {
            // A deleted project must not be found in this server's copies.
            self.forget_all_copies();
        }
        Ok(deleted)
    }

    async fn record_audit(&self, entry: AuditEntry) -> Result<(), BackendFailure> {
        Ok(self.write(move |conn| record(conn, &entry)).await?)
    }

    async fn audit(
        &self,
        workspace: Option<WorkspaceId>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, BackendFailure> {
        Ok(self
            .read(move |conn| list(conn, workspace, before, limit))
            .await?)
    }

    async fn prune(
        &self,
        before: Timestamp,
        deployments_before: Option<Timestamp>,
        batch: u32,
    ) -> Result<Pruned, BackendFailure> {
        let mut pruned = Pruned::default();
        let mut kinds = vec![
            (PruneKind::Events, before),
            (PruneKind::Deliveries, before),
            (PruneKind::Outbox, before),
            (PruneKind::Received, before),
            (PruneKind::Sessions, before),
            (PruneKind::Audit, before),
        ];
        if let Some(deployments_before) = deployments_before {
            kinds.push((PruneKind::Deployments, deployments_before));
        }
        for (kind, before) in kinds {
            let removed = self
                .write(move |conn| prune_batch(conn, kind, before, batch))
                .await?;
            match kind {
                PruneKind::Events => pruned.events = removed,
                PruneKind::Deliveries => pruned.deliveries = removed,
                PruneKind::Outbox => pruned.status_changes = removed,
                PruneKind::Received => pruned.received = removed,
                PruneKind::Sessions => pruned.sessions = removed,
                PruneKind::Audit => pruned.audit = removed,
                PruneKind::Deployments => pruned.deployments = removed,
            }
        }
        Ok(pruned)
    }
}
