//! The ingest write: one event, applied atomically inside the writer's transaction.
//!
//! The rules come from `shiplog_app::ingest::decide`; this module only loads, asks, and writes.
//!
//! In every raw statement both backends run, a `$n` first appears after `$1`..`$n-1`: SQLite numbers `$n` in
//! order of appearance (checked by `conn::tests`).
//!
//! By concern: this module looks the event up and decides (`decide`) and writes the deployment;
//! `sightings` dates commits, `references` links requests, `postgres` is the one-statement
//! PostgreSQL write.

mod batch;
mod postgres;
mod references;
pub(crate) mod sightings;

use diesel::prelude::*;
use shiplog_app::ids::{DeploymentId, EventId};
use shiplog_app::ingest::{
    ApplicationTarget, Decision, DeploymentPlan, EnvironmentTarget, IngestPlan, IngestReceipt,
    StoredDeployment, decide,
};
use shiplog_domain::lifecycle::Lifecycle;
use shiplog_domain::reference::ReferenceKey;
use shiplog_domain::sighting::Sightings;
use shiplog_domain::status::DeploymentStatus;
use shiplog_domain::timestamp::Timestamp;

use self::postgres::{PgWrite, write_all_pg};
use self::references::{
    Linking, mark_deployed, references_of, relink, with_commit_references, write_references,
};
use self::sightings::{SightingRow, sight_commit};
use crate::applications::ApplicationRow;
use crate::columns::{opt_time, status, time, uuid};
use crate::conn::{DbConn, Native, keeps_prepared, per_backend};
use crate::deployments::DeploymentRow;
use crate::environments::EnvironmentRow;
use crate::error::StoreError;
use crate::exec::known;
use crate::schema::{applications, deployments, environments, pipeline_events, workspaces};

pub(crate) use references::link_commit_references;
pub(crate) use sightings::sight_commits;

/// Applies one plan. On PostgreSQL, where several writers (this server's pool, other servers)
/// run at once, concurrent writers of one deployment take turns on its row
/// ([`load_for_update`]), and a transaction that lost a race on a unique key (a deployment, an
/// application, an environment or an identical event created at the same moment) is rerun
/// whole, and then finds the winner's row. On SQLite the single writer is the only writer.
///
/// Every statement of the write is written once and runs on the backend's own connection type
/// (`conn::Native`): the multi-backend wrapper rebuilds each statement's SQL on every execution
/// (a one-off probe timed wide inserts at 20 µs through it against 9 µs direct; see
/// docs/benchmarks.md).
pub(crate) fn ingest(conn: &mut DbConn, plan: &IngestPlan) -> Result<IngestReceipt, StoreError> {
    let postgres = per_backend!(conn, { sqlite(_) => false, postgres(_) => true });
    ingest_once(conn, plan).map_err(|error| {
        // The writer pool reruns the whole transaction (see `StoreError::is_transient`).
        if postgres && error.is_unique_violation() {
            StoreError::Raced(Box::new(error))
        } else {
            error
        }
    })
}

/// Applies plans in order in one write job (one transaction on PostgreSQL; on SQLite one job of
/// the writer's group commit), so a history import pays one commit per batch instead of one per
/// deployment, and writes the plans that depend on nothing before them set-wise
/// ([`batch::apply`]). A plan that fails rolls its whole job back (a failed statement leaves no
/// usable transaction on PostgreSQL, and a half-applied plan on SQLite); the plans before it are
/// then applied again as one job, the failed one alone (its error is its own answer), and the
/// rest carry on as the next job. A value refused by a multi-row insert names no plan: that job
/// is rerun plan by plan, which finds it. Refusals are rare (the use case validated every plan),
/// so nearly every batch commits once. Any other error (the database unavailable, a commit that
/// failed) ends the call; a transient one is rerun by the writer pool first, as for one plan.
pub(crate) async fn ingest_many(
    store: &crate::Store,
    plans: Vec<IngestPlan>,
) -> Result<Vec<Result<IngestReceipt, shiplog_app::ports::DeploymentStoreError>>, StoreError> {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    let plans = Arc::new(plans);
    let mut answers = Vec::with_capacity(plans.len());
    let mut start = 0;
    let mut set_wise = true;
    while start < plans.len() {
        let failure = Arc::new(batch::Failure::new());
        let job = {
            let (plans, failure) = (plans.clone(), failure.clone());
            move |conn: &mut DbConn| {
                let rest = plans.get(start..).unwrap_or_default();
                batch::apply(conn, rest, start, set_wise, &failure)
            }
        };
        match store.write(job).await {
            Ok(receipts) => {
                answers.extend(receipts.into_iter().map(Ok));
                start = plans.len();
                set_wise = true;
            }
            Err(error) => {
                if failure.set_refused.load(Ordering::Relaxed) {
                    set_wise = false;
                    continue;
                }
                let failed = failure.refused.load(Ordering::Relaxed);
                if failed == usize::MAX {
                    return Err(error);
                }
                if failed > start {
                    let before = plans.clone();
                    let (end, set_wise) = (failed, set_wise);
                    let receipts = store
                        .write(move |conn| {
                            let plans = before.get(start..end).unwrap_or_default();
                            batch::apply(conn, plans, start, set_wise, &batch::Failure::new())
                        })
                        .await?;
                    answers.extend(receipts.into_iter().map(Ok));
                }
                answers.push(Err(error.into()));
                start = failed + 1;
            }
        }
    }
    Ok(answers)
}

/// What an ingest reads before deciding, in one statement: the event already recorded with this
/// fingerprint (a retry) and its deployment's status, the id of the deployment that holds
/// this idempotency key, what is known of the event's commit (`commit_sightings`), and whether
/// a merged change request named it (`commit_references`), and whether the project has an
/// enabled hook (without one, a status change fans out to nobody and the ingest skips the
/// hooks query; a hook created by another server's transaction after this read misses this
/// event, as it would had it been created a moment later). Both dialects read `$n`.
///
/// Kept prepared on both backends ([`keeps_prepared`]); on PostgreSQL it runs on a generic plan,
/// made once per connection. Such a plan is made from whatever statistics exist at that moment,
/// so every table here is reached through the one index its conditions can use: an event by
/// `(fingerprint, workspace_id)`, a deployment by `(idempotency_key, workspace_id)` (migration
/// 000015 put the key first) or `id`, a commit by its primary keys. The workspace is compared
/// with `IS NOT DISTINCT FROM`, which no PostgreSQL index serves: a plain `=` let an index that
/// starts with `workspace_id` (`deployments_by_workspace_time`, `pipeline_events_by_commit`) tie
/// with the unique key while the tables were empty and unanalyzed, and the generic plan then
/// scanned every deployment of the workspace. Planning the statement with its values on every
/// ingest (raw SQL, unprepared, the way it ran before) took 0.11 to 0.25 ms of PostgreSQL's time
/// per run, five to ten times its execution (0.02 ms); the generic plan, 0.005 ms. SQLite still
/// uses the unique keys `(workspace_id, …)`: its `IS NOT DISTINCT FROM` is an index equality.
pub(crate) const LOOKUP_SQL: &str = "\
SELECT e.id AS duplicate_event, e.deployment_id AS duplicate_deployment, \
       de.status AS duplicate_status, d.id AS existing, \
       s.first_at AS seen_first_at, s.first_deployment_id AS seen_first_by, \
       s.other_at AS seen_other_at, cr.one IS NOT NULL AS commit_has_references, \
       h.one IS NOT NULL AS project_has_hooks \
FROM (SELECT 1 AS one) AS probe \
LEFT JOIN pipeline_events AS e \
  ON e.workspace_id IS NOT DISTINCT FROM $1 AND e.fingerprint = $2 \
LEFT JOIN deployments AS de ON de.id = e.deployment_id \
LEFT JOIN deployments AS d \
  ON d.workspace_id IS NOT DISTINCT FROM $1 AND d.idempotency_key = $3 \
LEFT JOIN commit_sightings AS s ON s.workspace_id = $1 AND s.commit_sha = $4 \
LEFT JOIN (SELECT 1 AS one FROM commit_references \
           WHERE commit_sha = $4 AND project_id = $5 LIMIT 1) AS cr ON 1 = 1 \
LEFT JOIN (SELECT 1 AS one FROM hooks \
           WHERE project_id = $5 AND enabled LIMIT 1) AS h ON 1 = 1";

/// The row of [`LOOKUP_SQL`].
#[derive(QueryableByName)]
struct Lookup {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    duplicate_event: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    duplicate_deployment: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    duplicate_status: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    existing: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    seen_first_at: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    seen_first_by: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    seen_other_at: Option<i64>,
    /// Whether a merged change request named the event's commit (`commit_references`).
    #[diesel(sql_type = diesel::sql_types::Bool)]
    commit_has_references: bool,
    /// Whether the project has an enabled hook.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    project_has_hooks: bool,
}

impl Lookup {
    /// What was known of the event's commit before this ingest.
    fn sightings(&self) -> Result<Option<Sightings<String>>, StoreError> {
        self.seen_first_at
            .map(|first_at| SightingRow {
                first_at,
                first_deployment_id: self.seen_first_by.clone(),
                other_at: self.seen_other_at,
            })
            .map(SightingRow::into_sightings)
            .transpose()
    }
}

/// Reads the deployment an ingest is about to change, so that concurrent writers of one
/// deployment take turns and each reads what the one before it committed: no lost status.
/// SQLite: a plain read (the single writer already runs one transaction at a time).
/// PostgreSQL: `FOR UPDATE`, which waits for a concurrent writer of the row, then reads its
/// committed version. Two transactions creating one deployment at the same moment meet on the
/// unique key instead: the loser's insert fails and its job is rerun (`StoreError::Raced`).
fn load_for_update(conn: &mut DbConn, id: &str) -> Result<DeploymentRow, StoreError> {
    let row = deployments::table.filter(deployments::id.eq(id));
    Ok(per_backend!(conn, {
        sqlite(c) => row.select(DeploymentRow::as_select()).first(c)?,
        postgres(c) => row
            .select(DeploymentRow::as_select())
            .for_update()
            .first(c)?,
    }))
}

/// The references an event's deployment names, as the receipt lists them.
fn linked(plan: &IngestPlan) -> Vec<ReferenceKey> {
    plan.deployment
        .as_ref()
        .map(|d| d.references.iter().map(|r| r.key.clone()).collect())
        .unwrap_or_default()
}

fn ingest_once(conn: &mut DbConn, plan: &IngestPlan) -> Result<IngestReceipt, StoreError> {
    let workspace = plan.workspace.to_string();
    let key = plan.deployment.as_ref().map_or("", |d| d.key.as_str());
    let lookup: Lookup = keeps_prepared(
        diesel::sql_query(LOOKUP_SQL)
            .bind::<diesel::sql_types::Text, _>(&workspace)
            .bind::<diesel::sql_types::Text, _>(plan.event.fingerprint.as_str())
            .bind::<diesel::sql_types::Text, _>(key)
            .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>(
                plan.event.commit_sha.as_ref().map(|s| s.as_str()),
            )
            .bind::<diesel::sql_types::Text, _>(plan.project.to_string()),
    )
    .get_result_on(conn)?;
    if let Some(event_id) = lookup.duplicate_event {
        return Ok(IngestReceipt {
            event: EventId::from_uuid(uuid(&event_id)?),
            deployment: lookup
                .duplicate_deployment
                .as_deref()
                .map(uuid)
                .transpose()?
                .map(DeploymentId::from_uuid),
            status: lookup.duplicate_status.as_deref().map(status).transpose()?,
            duplicate: true,
            created: false,
            linked_references: linked(plan),
            references_not_linked: 0,
        });
    }

    let now = plan.event.received_at;
    let application_id = ensure_application(conn, plan, &plan.application, now)?;
    let environment_id = match &plan.environment {
        Some(target) => Some(ensure_environment(conn, plan, target, now)?),
        None => None,
    };

    let mut receipt = IngestReceipt {
        event: plan.event.id,
        deployment: None,
        status: None,
        duplicate: false,
        created: false,
        linked_references: linked(plan),
        references_not_linked: 0,
    };
    if let Some(deployment) = &plan.deployment {
        // A merged change request named this commit: its reference joins the message's.
        let with_requests;
        let deployment = if lookup.commit_has_references {
            with_requests = with_commit_references(conn, plan, deployment)?;
            &with_requests
        } else {
            deployment
        };
        let environment_id = environment_id.clone().ok_or_else(|| {
            StoreError::Corrupt("a deploy event without an environment".to_owned())
        })?;
        let written = write_deployment(
            conn,
            plan,
            deployment,
            &lookup,
            &application_id,
            &environment_id,
        )?;
        receipt.deployment = Some(written.id);
        receipt.status = Some(written.status);
        receipt.created = written.created;
        if written.event_written {
            return Ok(receipt);
        }
    } else {
        // A build or test event: its commit may start other deployments' lead time.
        sight_commit(conn, plan, None, &lookup)?;
    }

    diesel::insert_into(pipeline_events::table)
        .values((
            pipeline_events::id.eq(plan.event.id.to_string()),
            pipeline_events::workspace_id.eq(&workspace),
            pipeline_events::project_id.eq(plan.project.to_string()),
            pipeline_events::application_id.eq(&application_id),
            pipeline_events::environment_id.eq(environment_id),
            pipeline_events::deployment_id.eq(receipt.deployment.map(|d| d.to_string())),
            pipeline_events::event.eq(plan.event.event.as_str()),
            pipeline_events::provider.eq(plan.event.status.provider.as_str()),
            pipeline_events::provider_status.eq(plan
                .event
                .status_sent
                .then(|| plan.event.status.raw.clone())),
            pipeline_events::status.eq(plan.event.status.status.as_str()),
            pipeline_events::commit_sha.eq(plan.event.commit_sha.as_ref().map(|s| s.to_string())),
            pipeline_events::occurred_at.eq(plan.event.occurred_at.unix_micros()),
            pipeline_events::received_at.eq(now.unix_micros()),
            pipeline_events::fingerprint.eq(plan.event.fingerprint.as_str()),
        ))
        .execute_on(conn)?;
    Ok(receipt)
}

/// Finds the application by code, filling in its repository if it had none, or creates it.
fn ensure_application(
    conn: &mut DbConn,
    plan: &IngestPlan,
    target: &ApplicationTarget,
    now: Timestamp,
) -> Result<String, StoreError> {
    let project = plan.project.to_string();
    let code = target.code.as_str();
    let existing = match known::application(&project, code) {
        Some(copy) => Some(copy),
        None => applications::table
            .filter(applications::project_id.eq(&project))
            .filter(applications::code.eq(code))
            .select((applications::id, applications::repo))
            .first_on::<(String, Option<String>)>(conn)
            .optional()?
            .map(|(id, repo)| (id, repo.is_some())),
    };
    match existing {
        Some((id, has_repo)) => {
            if let (false, Some(new_repo)) = (has_repo, &target.repo) {
                diesel::update(
                    applications::table
                        .filter(applications::id.eq(&id))
                        .filter(applications::repo.is_null()),
                )
                .set(applications::repo.eq(new_repo.as_str()))
                .execute_on(conn)?;
            }
            known::remember_application(&project, code, &id, has_repo || target.repo.is_some());
            Ok(id)
        }
        None if target.create_if_missing => {
            let row = ApplicationRow {
                id: target.new_id.to_string(),
                workspace_id: plan.workspace.to_string(),
                project_id: project,
                code: target.code.to_string(),
                name: target.name.clone(),
                repo: target.repo.as_ref().map(|r| r.to_string()),
                created_at: now.unix_micros(),
                source_provider: None,
            };
            diesel::insert_into(applications::table)
                .values(&row)
                .execute_on(conn)?;
            known::remember_application(&row.project_id, code, &row.id, row.repo.is_some());
            Ok(row.id)
        }
        None => Err(StoreError::ApplicationNotFound(target.code.clone())),
    }
}

/// Fails with `EnvironmentLimit` when the workspace already holds its limit of environments.
pub(crate) fn check_environment_limit(
    conn: &mut DbConn,
    workspace: &str,
) -> Result<(), StoreError> {
    let limit = workspaces::table
        .filter(workspaces::id.eq(workspace))
        .select(workspaces::environment_limit)
        .first_on::<Option<i32>>(conn)
        .optional()?
        .flatten();
    if let Some(limit) = limit {
        let count: i64 = environments::table
            .filter(environments::workspace_id.eq(workspace))
            .count()
            .get_result_on(conn)?;
        if count >= i64::from(limit) {
            return Err(StoreError::EnvironmentLimit(
                u32::try_from(limit).unwrap_or(0),
            ));
        }
    }
    Ok(())
}

/// The position after the workspace's last environment.
pub(crate) fn next_position(conn: &mut DbConn, workspace: &str) -> Result<i32, StoreError> {
    let max: Option<i32> = environments::table
        .filter(environments::workspace_id.eq(workspace))
        .select(diesel::dsl::max(environments::position))
        .first_on(conn)?;
    Ok(max.map_or(0, |m| m.saturating_add(1)))
}

fn ensure_environment(
    conn: &mut DbConn,
    plan: &IngestPlan,
    target: &EnvironmentTarget,
    now: Timestamp,
) -> Result<String, StoreError> {
    let workspace = plan.workspace.to_string();
    let code = target.code.as_str();
    if let Some(id) = known::environment(&workspace, code) {
        return Ok(id);
    }
    let existing = environments::table
        .filter(environments::workspace_id.eq(&workspace))
        .filter(environments::code.eq(code))
        .select(environments::id)
        .first_on::<String>(conn)
        .optional()?;
    match existing {
        Some(id) => {
            known::remember_environment(&workspace, code, &id);
            Ok(id)
        }
        None if target.create_if_missing => {
            check_environment_limit(conn, &workspace)?;
            let row = EnvironmentRow {
                id: target.new_id.to_string(),
                position: next_position(conn, &workspace)?,
                workspace_id: workspace,
                code: target.code.to_string(),
                name: target.name.clone(),
                kind: target.kind.as_str().to_owned(),
                url: None,
                team_id: None,
                created_at: now.unix_micros(),
            };
            diesel::insert_into(environments::table)
                .values(&row)
                .execute_on(conn)?;
            known::remember_environment(&row.workspace_id, code, &row.id);
            Ok(row.id)
        }
        None => Err(StoreError::EnvironmentNotFound(target.code.clone())),
    }
}

fn stored(conn: &mut DbConn, row: &DeploymentRow) -> Result<StoredDeployment, StoreError> {
    Ok(StoredDeployment {
        id: row.deployment_id()?,
        lifecycle: Lifecycle {
            status: status(&row.status)?,
            provider_status: row.provider_status.clone(),
            status_at: time(row.status_at)?,
            started_at: opt_time(row.started_at)?,
            finished_at: opt_time(row.finished_at)?,
        },
        provider: row.provider(),
        fields: row.fields()?,
        references: references_of(conn, &row.id)?,
        payload_fingerprint: row.fingerprint()?,
        rework: row.rework()?,
    })
}

/// What [`write_deployment`] wrote.
struct Written {
    id: DeploymentId,
    status: DeploymentStatus,
    created: bool,
    /// Whether the event's own row was written too (PostgreSQL, [`write_all_pg`]).
    event_written: bool,
}

fn write_deployment(
    conn: &mut DbConn,
    plan: &IngestPlan,
    deployment: &DeploymentPlan,
    lookup: &Lookup,
    application_id: &str,
    environment_id: &str,
) -> Result<Written, StoreError> {
    let workspace = plan.workspace.to_string();
    // The commit's row first, then the deployment's: every writer takes row locks in
    // that order (a writer that moves other deployments' start holds the commit's
    // row while it updates theirs), so two writers never wait for each other.
    let own_id = lookup
        .existing
        .clone()
        .unwrap_or_else(|| deployment.new_id.to_string());
    let sightings = sight_commit(conn, plan, Some(&own_id), lookup)?;
    let existing = lookup
        .existing
        .as_deref()
        .map(|id| load_for_update(conn, id))
        .transpose()?;
    let loaded = existing.as_ref().map(|row| stored(conn, row)).transpose()?;
    let decision = decide(loaded.as_ref(), deployment, &plan.event)
        .map_err(|conflict| StoreError::Conflict(conflict.0))?;
    let now = plan.event.received_at.unix_micros();
    let lifecycle = &decision.lifecycle;
    let id = decision.id.to_string();
    if id != own_id {
        return Err(StoreError::Corrupt(format!(
            "deployment {id} was decided, {own_id} expected"
        )));
    }

    let row = settled_row(
        existing,
        plan,
        deployment,
        &decision,
        application_id,
        environment_id,
        sightings.as_ref(),
    );
    // The references it had: none when it is new.
    let known = loaded.map(|d| d.references).unwrap_or_default();
    let linking = Linking {
        project: plan.project.to_string(),
        workspace: workspace.clone(),
        now: plan.event.received_at.unix_micros(),
    };
    // PostgreSQL inserts the new references inside its one write statement; SQLite in
    // `write_references`, which finds them itself.
    let new = per_backend!(conn, {
        sqlite(_) => Vec::new(),
        postgres(_) => relink(conn, &id, &known, &decision.references)?,
    });
    let event_written = per_backend!(conn, {
        sqlite(_) => {
            if decision.create {
                diesel::insert_into(deployments::table)
                    .values(&row)
                    .execute_on(conn)?;
            } else {
                diesel::update(deployments::table.filter(deployments::id.eq(&id)))
                    .set(&row)
                    .execute_on(conn)?;
            }
            write_references(conn, &linking, &id, &known, &decision.references)?;
            mark_deployed(
                conn,
                &linking.project,
                &decision.deployed_references,
                row.deployed_at,
                &row.environment_id,
            )?;
            false
        },
        postgres(pg) => {
            let settled = write_all_pg(
                pg,
                PgWrite {
                    plan,
                    row: &row,
                    create: decision.create,
                    new: &new,
                    references: &decision.references,
                    deployed: &decision.deployed_references,
                },
            )?;
            // A reference another transaction created after this statement's snapshot was
            // neither inserted nor seen by it: marked here, by a statement that sees it.
            let unsettled: Vec<ReferenceKey> = decision
                .deployed_references
                .iter()
                .filter(|key| !settled.iter().any(|s| s == key.as_str()))
                .cloned()
                .collect();
            mark_deployed(
                conn,
                &linking.project,
                &unsettled,
                row.deployed_at,
                &row.environment_id,
            )?;
            true
        },
    });
    if let Some(transition) = decision.transition
        && lookup.project_has_hooks
        && plan.raise_hooks
    {
        crate::hooks::fan_out(
            conn,
            &workspace,
            &plan.event.id.to_string(),
            &id,
            &row.project_id,
            &row.application_id,
            &row.environment_id,
            transition.from,
            transition.to,
            now,
        )?;
    }
    Ok(Written {
        id: decision.id,
        status: lifecycle.status,
        created: decision.create,
        event_written,
    })
}

/// The deployment's row after `decision`: `existing` changed, or a new row. `sightings` are its
/// commit's after this event (`None`: the event named no commit), which date its lead-time
/// start when the event names the deployment's commit.
fn settled_row(
    existing: Option<DeploymentRow>,
    plan: &IngestPlan,
    deployment: &DeploymentPlan,
    decision: &Decision,
    application_id: &str,
    environment_id: &str,
    sightings: Option<&Sightings<String>>,
) -> DeploymentRow {
    let now = plan.event.received_at.unix_micros();
    let mut row = existing.unwrap_or_else(|| DeploymentRow {
        id: decision.id.to_string(),
        workspace_id: plan.workspace.to_string(),
        project_id: plan.project.to_string(),
        application_id: application_id.to_owned(),
        environment_id: environment_id.to_owned(),
        idempotency_key: deployment.key.to_string(),
        payload_fingerprint: plan.event.fingerprint.to_string(),
        status: String::new(),
        provider: String::new(),
        provider_status: String::new(),
        status_at: 0,
        started_at: None,
        finished_at: None,
        deployed_at: now,
        external_id: None,
        commit_sha: None,
        commit_message: None,
        commit_timestamp: None,
        git_ref: None,
        branch: None,
        run_url: None,
        deployed_by: None,
        build_number: None,
        image: None,
        logs_url: None,
        created_at: now,
        updated_at: now,
        commit_seen_at: None,
        rework: None,
    });
    let lifecycle = &decision.lifecycle;
    row.status = lifecycle.status.as_str().to_owned();
    row.provider = decision.provider.as_str().to_owned();
    row.provider_status = lifecycle.provider_status.clone();
    row.status_at = lifecycle.status_at.unix_micros();
    row.started_at = lifecycle.started_at.map(Timestamp::unix_micros);
    row.finished_at = lifecycle.finished_at.map(Timestamp::unix_micros);
    row.deployed_at = row.finished_at.or(row.started_at).unwrap_or(row.created_at);
    row.set_fields(&decision.fields);
    row.rework = decision.rework.map(|r| r.as_str().to_owned());
    row.updated_at = now;
    // The event names the deployment's commit (an event without one leaves the
    // commit, and its start, as they were).
    if let Some(sightings) = sightings
        && row.commit_sha.as_deref() == plan.event.commit_sha.as_ref().map(|s| s.as_str())
    {
        row.commit_seen_at = sightings.seen_before(&row.id).map(Timestamp::unix_micros);
    }
    row
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use diesel::prelude::*;

    use super::LOOKUP_SQL;
    use crate::conn::{DatabaseUrl, DbConn};
    use crate::testdb::TestDb;

    /// One line of a plan: PostgreSQL's `EXPLAIN` or SQLite's `EXPLAIN QUERY PLAN`.
    #[derive(QueryableByName)]
    struct PlanLine {
        #[diesel(sql_type = diesel::sql_types::Text)]
        #[diesel(column_name = "QUERY PLAN")]
        line: String,
    }

    #[derive(QueryableByName)]
    struct SqlitePlanLine {
        #[diesel(sql_type = diesel::sql_types::Text)]
        detail: String,
    }

    /// The generic plan PostgreSQL makes for the lookup on a database whose tables are empty
    /// and were never analyzed (a fresh one), the moment a bad plan would be made.
    fn generic_plan(url: &str) -> String {
        let DbConn::Postgresql(mut conn) = DatabaseUrl::parse(url).unwrap().connect().unwrap()
        else {
            panic!("a PostgreSQL connection");
        };
        let statistics: Vec<(String, f32)> = diesel::sql_query(
            "SELECT relname AS name, reltuples AS tuples FROM pg_class \
             WHERE relname IN ('deployments', 'pipeline_events')",
        )
        .load::<Stat>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|s| (s.name, s.tuples))
        .collect();
        assert!(
            statistics.iter().all(|(_, tuples)| *tuples <= 0.0),
            "a fresh database: {statistics:?}"
        );
        diesel::sql_query("SET plan_cache_mode = force_generic_plan")
            .execute(&mut conn)
            .unwrap();
        diesel::sql_query(format!(
            "PREPARE lookup (text, text, text, text, text) AS {LOOKUP_SQL}"
        ))
        .execute(&mut conn)
        .unwrap();
        diesel::sql_query("EXPLAIN EXECUTE lookup ('w', 'f', 'k', 'c', 'p')")
            .load::<PlanLine>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|l| l.line)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[derive(QueryableByName)]
    struct Stat {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Float)]
        tuples: f32,
    }

    #[test]
    fn the_lookup_reaches_each_row_through_its_unique_key() {
        if let Some(db) = TestDb::postgres() {
            let plan = generic_plan(db.url());
            for index in [
                "pipeline_events_fingerprint_workspace_id_key",
                "deployments_idempotency_key_workspace_id_key",
                "deployments_id_key",
                "commit_sightings_pkey",
                "commit_references_pkey",
                "hooks_by_project",
            ] {
                assert!(plan.contains(index), "{index} not used:\n{plan}");
            }
            for scan in [
                "deployments_by_workspace_time",
                "pipeline_events_by_commit",
                "Seq Scan",
            ] {
                assert!(!plan.contains(scan), "{scan} in the plan:\n{plan}");
            }
        }
        let db = TestDb::sqlite();
        let mut conn = DatabaseUrl::parse(db.url()).unwrap().connect().unwrap();
        crate::migrations::run_pending(&mut conn).unwrap();
        let DbConn::Sqlite(conn) = &mut conn else {
            panic!("an SQLite connection");
        };
        let plan: Vec<String> = diesel::sql_query(format!("EXPLAIN QUERY PLAN {LOOKUP_SQL}"))
            .bind::<diesel::sql_types::Text, _>("w")
            .bind::<diesel::sql_types::Text, _>("f")
            .bind::<diesel::sql_types::Text, _>("k")
            .bind::<diesel::sql_types::Text, _>("c")
            .bind::<diesel::sql_types::Text, _>("p")
            .load::<SqlitePlanLine>(conn)
            .unwrap()
            .into_iter()
            .map(|l| l.detail)
            .collect();
        for (table, columns) in [
            ("e", "(workspace_id=? AND fingerprint=?)"),
            ("d", "(workspace_id=? AND idempotency_key=?)"),
            ("s", "(workspace_id=? AND commit_sha=?)"),
        ] {
            assert!(
                plan.iter()
                    .any(|l| l.starts_with(&format!("SEARCH {table} USING")) && l.contains(columns)),
                "{table} not found by {columns}: {plan:?}"
            );
        }
    }
}
