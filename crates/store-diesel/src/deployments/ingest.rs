//! The ingest write: one event, applied atomically inside the writer's transaction.
//!
//! The rules come from `shiplog_app::ingest::decide`; this module only loads, asks, and writes.
//!
//! In every raw statement both backends run, a `$n` first appears after `$1`..`$n-1`: SQLite numbers `$n` in
//! order of appearance (checked by a unit test in `queries/mod.rs`).
//!
//! **The PostgreSQL write path.** The one write that differs in shape per backend is a deployment
//! event's: SQLite runs the deployment's insert or update, its references, the project's request
//! rows, the requests it deploys and the event as five statements inside its single writer, while
//! PostgreSQL, where every statement is a round trip and an executor start, runs them as one
//! statement of data-modifying `WITH` clauses (`ingest::write_all_pg`, `PG_CREATE_SQL` and its
//! siblings: one text per new-or-known deployment, with or without references, so an event without
//! references opens neither references table). Its clauses share one snapshot, so a request row is
//! inserted already deployed instead of inserted and then marked; a request another transaction
//! created after that snapshot is neither inserted nor seen by it, and a follow-up update marks it
//! (`tests/contract.rs`, `a_request_created_by_a_concurrent_transaction_is_still_marked_deployed`).
//! `tests/statements.rs` checks that every statement of a PostgreSQL ingest but `BEGIN` and
//! `COMMIT` is kept prepared. On PostgreSQL a deployment and an event have no foreign key to their
//! workspace or project, nor a request row to its workspace (migration 000016): each checked key
//! share-locks the parent row until commit, every concurrent ingest of a workspace checked the same
//! two rows, and the application's key already reaches both (a deleted project or workspace still
//! cascades through it). Statements bind status words from `DeploymentStatus`; the only SQL
//! that spells them is migration 000017's triggers (`'success'`, `'failed'`: the finished
//! statuses, `queries::dora::FINISHED`), which a change to those words must follow.
//!
//! **Lock order.** An event with a commit folds itself into the commit's `commit_sightings` row by
//! an upsert, before it locks its deployment, and a writer that moves other deployments' lead-time
//! start holds that row while it updates theirs: every writer locks the commit's row before
//! deployment rows, so writers of one commit do not deadlock each other (`tests/dora.rs` sends each
//! history's events at once). An event that changes nothing in the commit's row (most deploys of a
//! known commit) does not write it: on PostgreSQL it reads the row `FOR SHARE` instead, so the
//! deploys of one commit to many services do not queue behind one exclusive lock, while a writer
//! that does move the starts still waits for them (and then rewrites their starts) or they wait for
//! it.

use diesel::prelude::*;
use shiplog_app::ids::{DeploymentId, EventId, ProjectId, WorkspaceId};
use shiplog_app::ingest::{
    ApplicationTarget, DeploymentPlan, EnvironmentTarget, IngestPlan, IngestReceipt,
    StoredDeployment, decide,
};
use shiplog_app::model::ReferenceStatus;
use shiplog_domain::ids::CommitSha;
use shiplog_domain::lifecycle::Lifecycle;
use shiplog_domain::reference::{self, Reference, ReferenceKey};
use shiplog_domain::sighting::{Affected, Sightings};
use shiplog_domain::status::DeploymentStatus;
use shiplog_domain::timestamp::Timestamp;

use crate::applications::ApplicationRow;
use crate::columns::{opt_time, status, time, uuid};
use crate::conn::{DbConn, Native, keeps_prepared, sqlite_keeps_prepared};
use crate::deployments::DeploymentRow;
use crate::environments::EnvironmentRow;
use crate::error::{StoreError, corrupt};
use crate::exec::known;
use crate::schema::{
    applications, change_references, commit_references, commit_sightings, deployment_references,
    deployments, environments, pipeline_events, workspaces,
};

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
    let postgres = matches!(conn, DbConn::Postgresql(_));
    ingest_once(conn, plan).map_err(|error| {
        // The writer pool reruns the whole transaction (see `StoreError::is_transient`).
        if postgres && error.is_unique_violation() {
            StoreError::Raced(Box::new(error))
        } else {
            error
        }
    })
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
/// starts with `workspace_id` (`deployments_by_workspace`, `pipeline_events_by_commit`) tie
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

/// Folds one event into its commit's sightings (`Sightings::with`, in SQL so that concurrent
/// writers of one commit take turns on its row) and returns the result. Kept prepared on both
/// backends: its one table has one index, its primary key.
pub(crate) const SIGHTING_SQL: &str = "\
INSERT INTO commit_sightings (workspace_id, commit_sha, first_at, first_deployment_id) \
VALUES ($1, $2, $3, $4) \
ON CONFLICT (workspace_id, commit_sha) DO UPDATE SET \
  first_at = CASE WHEN excluded.first_at < commit_sightings.first_at \
    THEN excluded.first_at ELSE commit_sightings.first_at END, \
  first_deployment_id = CASE WHEN excluded.first_at < commit_sightings.first_at \
    THEN excluded.first_deployment_id ELSE commit_sightings.first_deployment_id END, \
  other_at = CASE \
    WHEN commit_sightings.first_deployment_id IS NOT DISTINCT FROM excluded.first_deployment_id \
      THEN commit_sightings.other_at \
    WHEN excluded.first_at < commit_sightings.first_at THEN commit_sightings.first_at \
    WHEN commit_sightings.other_at IS NULL OR excluded.first_at < commit_sightings.other_at \
      THEN excluded.first_at \
    ELSE commit_sightings.other_at END \
RETURNING first_at, first_deployment_id, other_at";

/// Rewrites the lead-time start of every deployment of a commit whose first event moved. A
/// deployment of the commit is found through its own events, which `pipeline_events_by_commit`
/// holds: every deployment's commit came with one of its events. It returns the ids it
/// rewrote ([`Rewritten`]): a kept write is loaded ([`crate::conn::Kept::write`]).
pub(crate) const RESTART_SQL: &str = "\
UPDATE deployments SET commit_seen_at = CASE WHEN id = $1 THEN $2 ELSE $3 END \
WHERE commit_sha = $4 \
  AND id IN (SELECT p.deployment_id FROM pipeline_events p \
             WHERE p.workspace_id = $5 AND p.commit_sha = $4 AND p.deployment_id IS NOT NULL) \
  AND commit_seen_at IS DISTINCT FROM (CASE WHEN id = $1 THEN $2 ELSE $3 END) \
RETURNING id";

/// Rewrites the lead-time start of the one deployment that owns a commit's first event, when
/// the first event of anyone else moved (a deploy of the commit to another environment).
pub(crate) const RESTART_OWNER_SQL: &str = "\
UPDATE deployments SET commit_seen_at = $1 \
WHERE id = $2 AND commit_sha = $3 AND commit_seen_at IS DISTINCT FROM $1 \
RETURNING id";

/// A commit's sightings under a shared lock (PostgreSQL only), for an event that changes
/// nothing in them. Kept prepared, like [`SIGHTING_SQL`].
pub(crate) const SHARE_SQL: &str = "\
SELECT first_at, first_deployment_id, other_at FROM commit_sightings \
WHERE workspace_id = $1 AND commit_sha = $2 FOR SHARE";

/// A row of `commit_sightings`, as [`SIGHTING_SQL`] returns it.
#[derive(QueryableByName)]
struct SightingRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    first_at: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    first_deployment_id: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    other_at: Option<i64>,
}

impl SightingRow {
    fn into_sightings(self) -> Result<Sightings<String>, StoreError> {
        Ok(Sightings {
            first_at: time(self.first_at)?,
            first_by: self.first_deployment_id,
            other_at: opt_time(self.other_at)?,
        })
    }
}

/// A deployment whose lead-time start [`RESTART_SQL`] or [`RESTART_OWNER_SQL`] rewrote.
#[derive(QueryableByName)]
struct Rewritten {
    #[diesel(sql_type = diesel::sql_types::Text)]
    #[expect(dead_code, reason = "the rows are only counted")]
    id: String,
}

/// Reads the deployment an ingest is about to change, so that concurrent writers of one
/// deployment take turns and each reads what the one before it committed: no lost status.
/// SQLite: a plain read (the single writer already runs one transaction at a time).
/// PostgreSQL: `FOR UPDATE`, which waits for a concurrent writer of the row, then reads its
/// committed version. Two transactions creating one deployment at the same moment meet on the
/// unique key instead: the loser's insert fails and its job is rerun (`StoreError::Raced`).
fn load_for_update(conn: &mut DbConn, id: &str) -> Result<DeploymentRow, StoreError> {
    let row = deployments::table.filter(deployments::id.eq(id));
    Ok(match conn {
        DbConn::Sqlite(c) => row.select(DeploymentRow::as_select()).first(c)?,
        DbConn::Postgresql(c) => row
            .select(DeploymentRow::as_select())
            .for_update()
            .first(c)?,
    })
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

/// Folds the event into its commit's sightings, when it names a commit, and rewrites
/// the lead-time start of the commit's other deployments the fold moved. `deployment`
/// is the event's deployment, whose own start its caller writes.
fn sight_commit(
    conn: &mut DbConn,
    plan: &IngestPlan,
    deployment: Option<&String>,
    lookup: &Lookup,
) -> Result<Option<Sightings<String>>, StoreError> {
    let Some(sha) = &plan.event.commit_sha else {
        return Ok(None);
    };
    let workspace = plan.workspace.to_string();
    fold_sighting(
        conn,
        &workspace,
        sha.as_str(),
        plan.event.occurred_at,
        deployment,
        lookup.sightings()?,
    )
    .map(Some)
}

/// Folds commits' own times (a push's) into their sightings, as events of no deployment at
/// each commit's time, rewriting the lead-time start of the deployments each one moves.
pub(crate) fn sight_commits(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    commits: &[(CommitSha, Timestamp)],
) -> Result<(), StoreError> {
    let workspace = workspace.to_string();
    for (sha, at) in commits {
        let before = commit_sightings::table
            .filter(commit_sightings::workspace_id.eq(&workspace))
            .filter(commit_sightings::commit_sha.eq(sha.as_str()))
            .select((
                commit_sightings::first_at,
                commit_sightings::first_deployment_id,
                commit_sightings::other_at,
            ))
            .first_on::<(i64, Option<String>, Option<i64>)>(conn)
            .optional()?
            .map(|(first_at, first_deployment_id, other_at)| {
                SightingRow {
                    first_at,
                    first_deployment_id,
                    other_at,
                }
                .into_sightings()
            })
            .transpose()?;
        fold_sighting(conn, &workspace, sha.as_str(), *at, None, before)?;
    }
    Ok(())
}

/// Folds one event at `at` of `deployment` (`None`: of no deployment) into the sightings of
/// `sha`, which were `before`, and rewrites the starts the fold moved except `deployment`'s
/// own, which its caller writes.
fn fold_sighting(
    conn: &mut DbConn,
    workspace: &str,
    sha: &str,
    at: Timestamp,
    deployment: Option<&String>,
    before: Option<Sightings<String>>,
) -> Result<Sightings<String>, StoreError> {
    use diesel::sql_types::{BigInt, Nullable, Text};

    // Most events of a known commit change nothing (a later deploy of a commit already seen by
    // someone else): no write, and on PostgreSQL no exclusive lock, so the deploys of one
    // commit to many services do not queue behind each other.
    if let Some(before) = &before
        && before.with(at, deployment.cloned()) == *before
    {
        return match conn {
            // The single writer: what the lookup read is current.
            DbConn::Sqlite(_) => Ok(before.clone()),
            // A shared lock: events that change nothing do not wait for each other, while a
            // writer that moves the starts waits for this transaction (and then finds its
            // deployment to rewrite), or this one waits for it and reads what it wrote. Moves
            // only go earlier, so an event absorbed by what the lookup read is absorbed by what
            // is there now.
            DbConn::Postgresql(_) => keeps_prepared(
                diesel::sql_query(SHARE_SQL)
                    .bind::<Text, _>(workspace)
                    .bind::<Text, _>(sha),
            )
            .get_result_on::<SightingRow>(conn)?
            .into_sightings(),
        };
    }
    let after = keeps_prepared(
        diesel::sql_query(SIGHTING_SQL)
            .bind::<Text, _>(workspace)
            .bind::<Text, _>(sha)
            .bind::<BigInt, _>(at.unix_micros())
            .bind::<Nullable<Text>, _>(deployment),
    )
    .get_result_on::<SightingRow>(conn)?
    .into_sightings()?;
    match after.affected(before.as_ref(), at, deployment) {
        Affected::Nobody => {}
        // The caller writes its own deployment's start.
        Affected::Only(owner) if Some(&owner) == deployment => {}
        Affected::Only(owner) => {
            sqlite_keeps_prepared(
                diesel::sql_query(RESTART_OWNER_SQL)
                    .bind::<Nullable<BigInt>, _>(after.other_at.map(Timestamp::unix_micros))
                    .bind::<Text, _>(&owner)
                    .bind::<Text, _>(sha),
            )
            .write_on::<Rewritten>(conn)?;
        }
        Affected::Everyone => {
            sqlite_keeps_prepared(
                diesel::sql_query(RESTART_SQL)
                    .bind::<Nullable<Text>, _>(&after.first_by)
                    .bind::<Nullable<BigInt>, _>(after.other_at.map(Timestamp::unix_micros))
                    .bind::<BigInt, _>(after.first_at.unix_micros())
                    .bind::<Text, _>(sha)
                    .bind::<Text, _>(workspace),
            )
            .write_on::<Rewritten>(conn)?;
        }
    }
    Ok(after)
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

/// A deployment plan with the references merged change requests gave its commit added (after
/// the message's, up to the limit).
fn with_commit_references(
    conn: &mut DbConn,
    plan: &IngestPlan,
    deployment: &DeploymentPlan,
) -> Result<DeploymentPlan, StoreError> {
    let mut extended = deployment.clone();
    let Some(sha) = &plan.event.commit_sha else {
        return Ok(extended);
    };
    let keys: Vec<String> = commit_references::table
        .filter(commit_references::project_id.eq(plan.project.to_string()))
        .filter(commit_references::commit_sha.eq(sha.as_str()))
        .order(commit_references::ref_key.asc())
        .select(commit_references::ref_key)
        .load_on(conn)?;
    for key in keys {
        let key = ReferenceKey::parse(&key).map_err(|_| corrupt("reference", &key))?;
        reference::add(&mut extended.references, key, false);
    }
    Ok(extended)
}

/// Records that a change request carries commits of a project, and gives its reference to the
/// deployments of those commits recorded already (a success among them deploys an open
/// request, as at ingest). `at` dates new rows.
pub(crate) fn link_commit_references(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    project: ProjectId,
    commits: &[CommitSha],
    key: &ReferenceKey,
    at: Timestamp,
) -> Result<usize, StoreError> {
    let project = project.to_string();
    let workspace = workspace.to_string();
    let rows: Vec<_> = commits
        .iter()
        .map(|sha| {
            (
                commit_references::project_id.eq(&project),
                commit_references::commit_sha.eq(sha.as_str()),
                commit_references::ref_key.eq(key.as_str()),
                commit_references::created_at.eq(at.unix_micros()),
            )
        })
        .collect();
    diesel::insert_into(commit_references::table)
        .values(rows)
        .on_conflict_do_nothing()
        .execute_on(conn)?;
    let shas: Vec<&str> = commits.iter().map(CommitSha::as_str).collect();
    // The project's deployments of those commits, oldest first.
    let found: Vec<(String, String, i64, String)> = deployments::table
        .filter(deployments::workspace_id.eq(&workspace))
        .filter(deployments::project_id.eq(&project))
        .filter(deployments::commit_sha.eq_any(&shas))
        .order((deployments::deployed_at.asc(), deployments::id.asc()))
        .select((
            deployments::id,
            deployments::status,
            deployments::deployed_at,
            deployments::environment_id,
        ))
        .load_on(conn)?;
    let linking = Linking {
        project,
        workspace,
        now: at.unix_micros(),
    };
    let mut linked = 0;
    for (deployment, deployment_status, deployed_at, environment) in &found {
        let existing = references_of(conn, deployment)?;
        let mut references = existing.clone();
        if existing.iter().any(|r| &r.key == key)
            || !reference::add(&mut references, key.clone(), false)
        {
            continue;
        }
        write_references(conn, &linking, deployment, &existing, &references)?;
        linked += 1;
        if status(deployment_status)? == DeploymentStatus::Success {
            mark_deployed(
                conn,
                &linking.project,
                std::slice::from_ref(key),
                *deployed_at,
                environment,
            )?;
        }
    }
    Ok(linked)
}

/// The references of a deployment, in their order.
fn references_of(conn: &mut DbConn, deployment: &str) -> Result<Vec<Reference>, StoreError> {
    deployment_references::table
        .filter(deployment_references::deployment_id.eq(deployment))
        .order(deployment_references::position.asc())
        .select((
            deployment_references::ref_key,
            deployment_references::closing,
        ))
        .load_on::<(String, bool)>(conn)?
        .into_iter()
        .map(|(key, closing)| {
            Ok(Reference {
                key: ReferenceKey::parse(&key).map_err(|_| corrupt("reference", &key))?,
                closing,
            })
        })
        .collect()
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

    let mut row = match existing {
        Some(row) => row,
        None => DeploymentRow {
            id: id.clone(),
            workspace_id: workspace.clone(),
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
        },
    };
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
    if let Some(sightings) = &sightings
        && row.commit_sha.as_deref() == plan.event.commit_sha.as_ref().map(|s| s.as_str())
    {
        row.commit_seen_at = sightings.seen_before(&id).map(Timestamp::unix_micros);
    }
    // The references it had: none when it is new.
    let known = loaded.map(|d| d.references).unwrap_or_default();
    let linking = Linking {
        project: plan.project.to_string(),
        workspace: workspace.clone(),
        now: plan.event.received_at.unix_micros(),
    };
    // PostgreSQL inserts the new references inside its one write statement; SQLite in
    // `write_references`, which finds them itself.
    let new = match conn {
        DbConn::Postgresql(_) => relink(conn, &id, &known, &decision.references)?,
        DbConn::Sqlite(_) => Vec::new(),
    };
    let event_written = match conn {
        DbConn::Postgresql(pg) => {
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
        }
        DbConn::Sqlite(_) => {
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
        }
    };
    if let Some(transition) = decision.transition
        && lookup.project_has_hooks
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

/// The columns of a deployment row, in the order [`PG_UPDATE_SQL`] and its siblings binds them (`$1` to `$29`).
macro_rules! deployment_columns {
    () => {
        "id, workspace_id, project_id, application_id, environment_id, idempotency_key, \
         payload_fingerprint, status, provider, provider_status, status_at, started_at, \
         finished_at, deployed_at, external_id, commit_sha, commit_message, commit_timestamp, \
         git_ref, branch, run_url, deployed_by, build_number, image, logs_url, created_at, \
         updated_at, commit_seen_at, rework"
    };
}

/// The clauses of a deployment event's PostgreSQL write that follow the deployment's own
/// (`d`) when it has references: its new references (`$30` to `$32`: keys, closing flags,
/// positions), a request row for each of its references the project did not know (`$33`),
/// created deployed when it is among those the deployment deploys (`$34`, status words `$35`
/// open and `$36` deployed, dated `$37`), and the project's open rows of those marked deployed.
macro_rules! pg_references_clauses {
    () => {
        "l AS (INSERT INTO deployment_references \
                 (deployment_id, ref_key, project_id, closing, position) \
               SELECT $1, r.k, $3, r.c, r.p \
               FROM unnest($30::text[], $31::boolean[], $32::integer[]) AS r (k, c, p) \
               RETURNING 1), \
         c AS (INSERT INTO change_references (project_id, ref_key, workspace_id, status, \
                 deployed_at, deployed_environment_id, created_at) \
               SELECT $3, k, $2, CASE WHEN k = ANY ($34) THEN $36 ELSE $35 END, \
                 CASE WHEN k = ANY ($34) THEN $14 END, CASE WHEN k = ANY ($34) THEN $5 END, $37 \
               FROM unnest($33::text[]) AS k \
               ON CONFLICT (project_id, ref_key) DO NOTHING RETURNING ref_key), \
         m AS (UPDATE change_references SET status = $36, deployed_at = $14, \
                 deployed_environment_id = $5 \
               WHERE project_id = $3 AND ref_key = ANY ($34) AND status = $35 \
               RETURNING ref_key), \
         past AS (SELECT ref_key FROM change_references \
                  WHERE project_id = $3 AND ref_key = ANY ($34) AND status <> $35), "
    };
}

/// The event's own row (`$38` to `$45`, received at `$37`), the last clause of every
/// deployment event's PostgreSQL write.
macro_rules! pg_event_clause {
    () => {
        "e AS (INSERT INTO pipeline_events (id, workspace_id, project_id, application_id, \
                 environment_id, deployment_id, event, provider, provider_status, status, \
                 commit_sha, occurred_at, received_at, fingerprint) \
               VALUES ($38, $2, $3, $4, $5, $1, $39, $40, $41, $42, $43, $44, $37, $45) \
               RETURNING 1) "
    };
}

/// What a write with references returns: the deployed keys it settled (inserted, marked, or
/// already past open in its snapshot).
macro_rules! pg_settled {
    () => {
        "SELECT ARRAY(SELECT ref_key FROM c UNION ALL SELECT ref_key FROM m \
                      UNION ALL SELECT ref_key FROM past) AS settled"
    };
}

/// What a write without references returns: nothing to settle.
macro_rules! pg_nothing_settled {
    () => {
        "SELECT ARRAY[]::text[] AS settled"
    };
}

/// A new deployment's row (`$1` to `$29`).
macro_rules! pg_insert_deployment {
    () => {
        concat!(
            "WITH d AS (INSERT INTO deployments (",
            deployment_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29) RETURNING 1), "
        )
    };
}

/// A known deployment's row (`$1` to `$29`): every column is written, as `AsChangeset` writes
/// them on SQLite.
macro_rules! pg_update_deployment {
    () => {
        concat!(
            "WITH d AS (UPDATE deployments SET (",
            deployment_columns!(),
            ") = ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29) WHERE id = $1 \
             RETURNING 1), "
        )
    };
}

/// A known deployment's PostgreSQL write without references: one of four shapes (see
/// [`write_all_pg`]), by whether the deployment is new and whether it has references. A write
/// without references leaves `$30` to `$36` unused (their types are sent with the statement):
/// its plan then opens neither references table, which an event without references (most
/// Envtracker events) would otherwise pay for on every run.
const PG_UPDATE_SQL: &str = concat!(
    pg_update_deployment!(),
    pg_event_clause!(),
    pg_nothing_settled!()
);
/// See [`PG_UPDATE_SQL`].
const PG_UPDATE_WITH_REFERENCES_SQL: &str = concat!(
    pg_update_deployment!(),
    pg_references_clauses!(),
    pg_event_clause!(),
    pg_settled!()
);
/// See [`PG_UPDATE_SQL`].
const PG_CREATE_SQL: &str = concat!(
    pg_insert_deployment!(),
    pg_event_clause!(),
    pg_nothing_settled!()
);
/// See [`PG_UPDATE_SQL`].
const PG_CREATE_WITH_REFERENCES_SQL: &str = concat!(
    pg_insert_deployment!(),
    pg_references_clauses!(),
    pg_event_clause!(),
    pg_settled!()
);

/// The row of [`PG_UPDATE_SQL`] and its siblings.
#[derive(QueryableByName)]
struct Settled {
    #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Text>)]
    settled: Vec<String>,
}

/// What [`write_all_pg`] writes.
struct PgWrite<'a> {
    plan: &'a IngestPlan,
    row: &'a DeploymentRow,
    create: bool,
    /// The references it did not have, with their positions ([`relink`]).
    new: &'a [(i32, &'a Reference)],
    /// The references it has now.
    references: &'a [Reference],
    /// Those it deploys (`decide`'s `deployed_references`).
    deployed: &'a [ReferenceKey],
}

/// A deployment event's writes on PostgreSQL in one statement of data-modifying `WITH` clauses,
/// kept prepared: the deployment (inserted or updated), its new references, the project's
/// request rows, the requests it deploys, and the event. What SQLite runs as five statements
/// ([`write_references`], [`mark_deployed`], the two inserts), PostgreSQL runs as one round
/// trip and one executor start (a Clienwork ingest: nine statements before, five now; about a
/// fifth more ingests per second under `cargo xtask bench http`, see docs/benchmarks.md). All
/// clauses see the statement's one snapshot, so a request row is
/// created already deployed rather than created and then marked; the foreign keys are checked
/// at the statement's end, after every clause. Returns the deployed keys it settled (see
/// [`pg_settled`]).
fn write_all_pg(
    conn: &mut diesel::PgConnection,
    write: PgWrite<'_>,
) -> Result<Vec<String>, StoreError> {
    use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text};

    let PgWrite {
        plan,
        row,
        create,
        new,
        references,
        deployed,
    } = write;
    let keys: Vec<&str> = new.iter().map(|(_, r)| r.key.as_str()).collect();
    let closing: Vec<bool> = new.iter().map(|(_, r)| r.closing).collect();
    let positions: Vec<i32> = new.iter().map(|(position, _)| *position).collect();
    let all: Vec<&str> = references.iter().map(|r| r.key.as_str()).collect();
    let deployed: Vec<&str> = deployed.iter().map(ReferenceKey::as_str).collect();
    let event = &plan.event;
    let sql = match (create, references.is_empty()) {
        (false, true) => PG_UPDATE_SQL,
        (false, false) => PG_UPDATE_WITH_REFERENCES_SQL,
        (true, true) => PG_CREATE_SQL,
        (true, false) => PG_CREATE_WITH_REFERENCES_SQL,
    };
    let query = diesel::sql_query(sql)
        .bind::<Text, _>(&row.id)
        .bind::<Text, _>(&row.workspace_id)
        .bind::<Text, _>(&row.project_id)
        .bind::<Text, _>(&row.application_id)
        .bind::<Text, _>(&row.environment_id)
        .bind::<Text, _>(&row.idempotency_key)
        .bind::<Text, _>(&row.payload_fingerprint)
        .bind::<Text, _>(&row.status)
        .bind::<Text, _>(&row.provider)
        .bind::<Text, _>(&row.provider_status)
        .bind::<BigInt, _>(row.status_at)
        .bind::<Nullable<BigInt>, _>(row.started_at)
        .bind::<Nullable<BigInt>, _>(row.finished_at)
        .bind::<BigInt, _>(row.deployed_at)
        .bind::<Nullable<Text>, _>(&row.external_id)
        .bind::<Nullable<Text>, _>(&row.commit_sha)
        .bind::<Nullable<Text>, _>(&row.commit_message)
        .bind::<Nullable<BigInt>, _>(row.commit_timestamp)
        .bind::<Nullable<Text>, _>(&row.git_ref)
        .bind::<Nullable<Text>, _>(&row.branch)
        .bind::<Nullable<Text>, _>(&row.run_url)
        .bind::<Nullable<Text>, _>(&row.deployed_by)
        .bind::<Nullable<Text>, _>(&row.build_number)
        .bind::<Nullable<Text>, _>(&row.image)
        .bind::<Nullable<Text>, _>(&row.logs_url)
        .bind::<BigInt, _>(row.created_at)
        .bind::<BigInt, _>(row.updated_at)
        .bind::<Nullable<BigInt>, _>(row.commit_seen_at)
        .bind::<Nullable<Text>, _>(&row.rework)
        .bind::<Array<Text>, _>(keys)
        .bind::<Array<Bool>, _>(closing)
        .bind::<Array<Integer>, _>(positions)
        .bind::<Array<Text>, _>(all)
        .bind::<Array<Text>, _>(deployed)
        .bind::<Text, _>(ReferenceStatus::Open.as_str())
        .bind::<Text, _>(ReferenceStatus::Deployed.as_str())
        .bind::<BigInt, _>(event.received_at.unix_micros())
        .bind::<Text, _>(event.id.to_string())
        .bind::<Text, _>(event.event.as_str())
        .bind::<Text, _>(event.status.provider.as_str())
        .bind::<Nullable<Text>, _>(event.status_sent.then(|| event.status.raw.clone()))
        .bind::<Text, _>(event.status.status.as_str())
        .bind::<Nullable<Text>, _>(event.commit_sha.as_ref().map(|s| s.to_string()))
        .bind::<BigInt, _>(event.occurred_at.unix_micros())
        .bind::<Text, _>(event.fingerprint.as_str());
    let written: Settled = keeps_prepared(query).get_result(conn)?;
    Ok(written.settled)
}

/// Where references are written: the project and workspace, and the time that dates new rows.
struct Linking {
    project: String,
    workspace: String,
    now: i64,
}

/// Marks open references deployed by a successful deployment (at `deployed_at`, in
/// `environment`): the app's `decide` says which (`deployed_references`).
fn mark_deployed(
    conn: &mut DbConn,
    project: &str,
    keys: &[ReferenceKey],
    deployed_at: i64,
    environment: &str,
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = keys.iter().map(ReferenceKey::as_str).collect();
    let update = diesel::update(
        change_references::table
            .filter(change_references::project_id.eq(project))
            .filter(change_references::ref_key.eq_any(keys))
            .filter(change_references::status.eq(ReferenceStatus::Open.as_str())),
    )
    .set((
        change_references::status.eq(ReferenceStatus::Deployed.as_str()),
        change_references::deployed_at.eq(Some(deployed_at)),
        change_references::deployed_environment_id.eq(Some(environment)),
    ));
    // Kept prepared on both backends (diesel keeps neither this SQLite `IN` list nor this
    // PostgreSQL update): its text varies only with the number of keys, and the table's one
    // index, its primary key, is the plan whatever the statistics.
    keeps_prepared(update.returning(change_references::ref_key)).write_on::<String>(conn)?;
    Ok(())
}

/// Of a deployment's `references`, those it did not have (`existing`), with their positions;
/// a known reference whose closing flag changed is updated here (rare: a later event says it
/// closes, or no longer does).
fn relink<'r>(
    conn: &mut DbConn,
    deployment: &str,
    existing: &[Reference],
    references: &'r [Reference],
) -> Result<Vec<(i32, &'r Reference)>, StoreError> {
    let mut new = Vec::new();
    for (position, reference) in references.iter().enumerate() {
        match existing.iter().find(|r| r.key == reference.key) {
            Some(old) if old.closing == reference.closing => {}
            Some(_) => {
                diesel::update(
                    deployment_references::table
                        .filter(deployment_references::deployment_id.eq(deployment))
                        .filter(deployment_references::ref_key.eq(reference.key.as_str())),
                )
                .set(deployment_references::closing.eq(reference.closing))
                .execute_on(conn)?;
            }
            None => new.push((i32::try_from(position).unwrap_or(i32::MAX), reference)),
        }
    }
    Ok(new)
}

/// Writes a deployment's references (`existing` are those it had) and opens a request row for
/// each one the project did not know.
///
/// Its two multi-row inserts are kept prepared on PostgreSQL ([`crate::conn::Kept::write`]:
/// diesel would parse and plan a multi-row insert on every run, since its text varies with the
/// number of rows; kept, a connection holds one statement per number of references it has
/// seen, at most `MAX_REFERENCES`). SQLite runs them as diesel does, on its own path for
/// multi-row inserts.
fn write_references(
    conn: &mut DbConn,
    linking: &Linking,
    deployment: &str,
    existing: &[Reference],
    references: &[Reference],
) -> Result<(), StoreError> {
    let Linking {
        project,
        workspace,
        now,
    } = linking;
    let links: Vec<_> = relink(conn, deployment, existing, references)?
        .into_iter()
        .map(|(position, reference)| {
            (
                deployment_references::deployment_id.eq(deployment),
                deployment_references::ref_key.eq(reference.key.as_str()),
                deployment_references::project_id.eq(project),
                deployment_references::closing.eq(reference.closing),
                deployment_references::position.eq(position),
            )
        })
        .collect();
    if !links.is_empty() {
        let insert = diesel::insert_into(deployment_references::table).values(links);
        match conn {
            DbConn::Sqlite(c) => insert.execute(c)?,
            DbConn::Postgresql(c) => {
                keeps_prepared(insert.returning(deployment_references::ref_key))
                    .write::<_, String>(c)?
            }
        };
    }
    if !references.is_empty() {
        // A reference seen before keeps its row (and its status).
        let open = ReferenceStatus::Open.as_str();
        let rows: Vec<_> = references
            .iter()
            .map(|reference| {
                (
                    change_references::project_id.eq(project),
                    change_references::ref_key.eq(reference.key.as_str()),
                    change_references::workspace_id.eq(workspace),
                    change_references::status.eq(open),
                    change_references::created_at.eq(*now),
                )
            })
            .collect();
        let insert = diesel::insert_into(change_references::table)
            .values(rows)
            .on_conflict_do_nothing();
        match conn {
            DbConn::Sqlite(c) => insert.execute(c)?,
            DbConn::Postgresql(c) => keeps_prepared(insert.returning(change_references::ref_key))
                .write::<_, String>(c)?,
        };
    }
    Ok(())
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
                "deployments_by_workspace",
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
