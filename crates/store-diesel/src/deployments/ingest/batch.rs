//! A batch of plans (an import's) written set-wise.
//!
//! Most plans of an imported history are independent of everything before them: a deployment
//! seen for the first time, of a commit nobody has seen, reported by one event of the batch. For
//! such a plan the store has nothing to read and `decide` nothing to merge, so its rows are known
//! before any is written. [`apply`] finds those plans with one read per table for the whole
//! batch ([`independent`]), and writes each run of them with one multi-row insert per table
//! ([`write_set`]); every other plan (a repeat of a key, fingerprint or commit within the batch
//! or of one already stored, a commit a merged change request named, a build or test event, a
//! plan that raises hooks) is applied alone by [`super::ingest`], in its place in the batch, so
//! the result is the one plan-by-plan application gives. `tests/contract.rs` compares the two on
//! both backends.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use diesel::IntoSql;
use diesel::prelude::*;
use diesel::sql_types::Text;
use shiplog_app::ingest::{IngestPlan, IngestReceipt, decide};
use shiplog_app::model::ReferenceStatus;
use shiplog_domain::reference::ReferenceKey;
use shiplog_domain::sighting::Sightings;
use shiplog_domain::timestamp::Timestamp;

use super::references::mark_deployed;
use super::sightings::fold_sighting;
use super::{ensure_application, ensure_environment, ingest, linked, settled_row};
use crate::conn::{DbConn, Native, per_backend};
use crate::deployments::DeploymentRow;
use crate::error::StoreError;
use crate::schema::{
    change_references, commit_references, commit_sightings, deployment_references, deployments,
    pipeline_events,
};

diesel::infix_operator!(SameAs, " IS NOT DISTINCT FROM ");

/// At most this many values bound by one multi-row insert (SQLite's limit is 32,766; PostgreSQL's
/// 65,535).
const MAX_BINDS: usize = 30_000;

/// How [`apply`] failed, for its caller to rerun what it can.
pub(super) struct Failure {
    /// The plan the store refused, when one was.
    pub(super) refused: AtomicUsize,
    /// Whether a multi-row insert refused a value of some plan of the set: rerun plan by plan to
    /// find which.
    pub(super) set_refused: AtomicBool,
}

impl Failure {
    pub(super) fn new() -> Self {
        Self {
            refused: AtomicUsize::new(usize::MAX),
            set_refused: AtomicBool::new(false),
        }
    }

    fn reset(&self) {
        self.refused.store(usize::MAX, Ordering::Relaxed);
        self.set_refused.store(false, Ordering::Relaxed);
    }
}

/// Applies `plans` (the batch's from index `base` on) in order inside the caller's transaction,
/// set-wise where it can (`set_wise`), and returns their receipts.
pub(super) fn apply(
    conn: &mut DbConn,
    plans: &[IngestPlan],
    base: usize,
    set_wise: bool,
    failure: &Failure,
) -> Result<Vec<IngestReceipt>, StoreError> {
    // A rerun job (a transient failure, or SQLite's rerun in savepoints) starts over.
    failure.reset();
    let independent = if set_wise {
        independent(conn, plans)?
    } else {
        vec![false; plans.len()]
    };
    let mut receipts = Vec::with_capacity(plans.len());
    let mut run: Vec<usize> = Vec::new();
    for (index, plan) in plans.iter().enumerate() {
        if independent.get(index).copied().unwrap_or(false) {
            run.push(index);
            continue;
        }
        flush(conn, plans, &mut run, base, failure, &mut receipts)?;
        match ingest(conn, plan) {
            Ok(receipt) => receipts.push(receipt),
            Err(error) => {
                if error.refuses_the_plan() {
                    failure.refused.store(base + index, Ordering::Relaxed);
                }
                return Err(error);
            }
        }
    }
    flush(conn, plans, &mut run, base, failure, &mut receipts)?;
    Ok(receipts)
}

/// Writes the run of independent plans gathered so far.
fn flush(
    conn: &mut DbConn,
    plans: &[IngestPlan],
    run: &mut Vec<usize>,
    base: usize,
    failure: &Failure,
    receipts: &mut Vec<IngestReceipt>,
) -> Result<(), StoreError> {
    if run.is_empty() {
        return Ok(());
    }
    let postgres = per_backend!(conn, { sqlite(_) => false, postgres(_) => true });
    let written = write_set(conn, plans, run, base, failure).map_err(|error| {
        if error.refuses_value() {
            failure.set_refused.store(true, Ordering::Relaxed);
        }
        // A concurrent writer created one of the keys after the batch's read: the writer pool
        // reruns the whole job, which then finds it (see `StoreError::is_transient`).
        if postgres && error.is_unique_violation() {
            StoreError::Raced(Box::new(error))
        } else {
            error
        }
    })?;
    receipts.extend(written);
    run.clear();
    Ok(())
}

/// Which of `plans` are independent: a deploy event that raises no hooks, of the batch's
/// workspace, whose fingerprint, idempotency key and commit appear once in the batch and never
/// in the store, and whose commit no merged change request named. One read per table for the
/// whole batch, each through the table's unique key (the workspace compared with `IS NOT
/// DISTINCT FROM`, as `LOOKUP_SQL` does and for the same reason). Diesel keeps them prepared, so
/// PostgreSQL may run them on a generic plan; made on an empty, never analyzed table, that plan is
/// a sequential scan (`EXPLAIN`), remade once autovacuum has analyzed the table. Planning them on
/// every run instead (unprepared, with their values, or as joins with `unnest`) made
/// `cargo xtask bench import` on PostgreSQL about 75% slower (133.1 s and 131.0 s against
/// 76.4 s), so they stay prepared.
fn independent(conn: &mut DbConn, plans: &[IngestPlan]) -> Result<Vec<bool>, StoreError> {
    let Some(workspace) = plans.first().map(|p| p.workspace) else {
        return Ok(Vec::new());
    };
    let mut fingerprints: HashMap<&str, usize> = HashMap::new();
    let mut keys: HashMap<&str, usize> = HashMap::new();
    let mut commits: HashMap<&str, usize> = HashMap::new();
    for plan in plans {
        *fingerprints
            .entry(plan.event.fingerprint.as_str())
            .or_default() += 1;
        if let Some(deployment) = &plan.deployment {
            *keys.entry(deployment.key.as_str()).or_default() += 1;
        }
        if let Some(sha) = &plan.event.commit_sha {
            *commits.entry(sha.as_str()).or_default() += 1;
        }
    }
    let once = |counts: &HashMap<&str, usize>, value: &str| counts.get(value) == Some(&1);
    let mut candidate: Vec<bool> = plans
        .iter()
        .map(|plan| {
            plan.workspace == workspace
                && !plan.raise_hooks
                && plan.environment.is_some()
                && plan
                    .deployment
                    .as_ref()
                    .is_some_and(|d| once(&keys, d.key.as_str()))
                && once(&fingerprints, plan.event.fingerprint.as_str())
                && plan
                    .event
                    .commit_sha
                    .as_ref()
                    .is_none_or(|sha| once(&commits, sha.as_str()))
        })
        .collect();
    let chosen = |candidate: &[bool]| -> Vec<&IngestPlan> {
        plans
            .iter()
            .zip(candidate)
            .filter_map(|(plan, chosen)| chosen.then_some(plan))
            .collect()
    };
    let candidates = chosen(&candidate);
    if candidates.is_empty() {
        return Ok(candidate);
    }
    let workspace = workspace.to_string();
    let fingerprints: Vec<&str> = candidates
        .iter()
        .map(|p| p.event.fingerprint.as_str())
        .collect();
    let keys: Vec<&str> = candidates
        .iter()
        .filter_map(|p| p.deployment.as_ref().map(|d| d.key.as_str()))
        .collect();
    let shas: Vec<&str> = candidates
        .iter()
        .filter_map(|p| p.event.commit_sha.as_ref().map(|s| s.as_str()))
        .collect();
    let mut projects: Vec<String> = candidates.iter().map(|p| p.project.to_string()).collect();
    projects.sort_unstable();
    projects.dedup();

    let recorded: HashSet<String> = pipeline_events::table
        .filter(pipeline_events::fingerprint.eq_any(&fingerprints))
        .filter(SameAs::new(
            pipeline_events::workspace_id,
            workspace.as_str().into_sql::<Text>(),
        ))
        .select(pipeline_events::fingerprint)
        .load_on::<String>(conn)?
        .into_iter()
        .collect();
    let stored: HashSet<String> = deployments::table
        .filter(deployments::idempotency_key.eq_any(&keys))
        .filter(SameAs::new(
            deployments::workspace_id,
            workspace.as_str().into_sql::<Text>(),
        ))
        .select(deployments::idempotency_key)
        .load_on::<String>(conn)?
        .into_iter()
        .collect();
    let (seen, named): (HashSet<String>, HashSet<(String, String)>) = if shas.is_empty() {
        Default::default()
    } else {
        (
            commit_sightings::table
                .filter(commit_sightings::workspace_id.eq(&workspace))
                .filter(commit_sightings::commit_sha.eq_any(&shas))
                .select(commit_sightings::commit_sha)
                .load_on::<String>(conn)?
                .into_iter()
                .collect(),
            commit_references::table
                .filter(commit_references::project_id.eq_any(&projects))
                .filter(commit_references::commit_sha.eq_any(&shas))
                .select((commit_references::project_id, commit_references::commit_sha))
                .distinct()
                .load_on::<(String, String)>(conn)?
                .into_iter()
                .collect(),
        )
    };
    for (plan, chosen) in plans.iter().zip(candidate.iter_mut()) {
        if !*chosen {
            continue;
        }
        let key = plan.deployment.as_ref().map_or("", |d| d.key.as_str());
        let commit_known = plan.event.commit_sha.as_ref().is_some_and(|sha| {
            seen.contains(sha.as_str())
                || named.contains(&(plan.project.to_string(), sha.as_str().to_owned()))
        });
        *chosen = !recorded.contains(plan.event.fingerprint.as_str())
            && !stored.contains(key)
            && !commit_known;
    }
    Ok(candidate)
}

/// One request row to mark deployed by a run's plans: its earliest deployment (the first in the
/// batch on a tie, as plan-by-plan application would leave it).
struct Mark {
    deployed_at: i64,
    environment: String,
}

/// Writes the independent plans `run` (indexes into `plans`) with one multi-row insert per
/// table: deployments, references, request rows, commit sightings, events; then marks the
/// requests they deploy. What plan-by-plan application writes, row for row: each is a new
/// deployment (`decide` with nothing stored), the first sighting of its commit, the first of its
/// events.
fn write_set(
    conn: &mut DbConn,
    plans: &[IngestPlan],
    run: &[usize],
    base: usize,
    failure: &Failure,
) -> Result<Vec<IngestReceipt>, StoreError> {
    let mut rows: Vec<DeploymentRow> = Vec::with_capacity(run.len());
    let mut links = Vec::new();
    let mut requests: Vec<(String, String, String, i64)> = Vec::new();
    let mut requested: HashSet<(String, String)> = HashSet::new();
    let mut marks: BTreeMap<(String, String), Mark> = BTreeMap::new();
    let mut sightings = Vec::new();
    // Each sighting's deployment row (an index into `rows`), commit and time.
    let mut sighted: Vec<(usize, String, Timestamp)> = Vec::new();
    let mut events = Vec::with_capacity(run.len());
    let mut receipts = Vec::with_capacity(run.len());
    for &index in run {
        let Some(plan) = plans.get(index) else {
            continue;
        };
        let refused = |error: StoreError| {
            if error.refuses_the_plan() {
                failure.refused.store(base + index, Ordering::Relaxed);
            }
            error
        };
        let (Some(deployment), Some(environment)) = (&plan.deployment, &plan.environment) else {
            return Err(StoreError::Corrupt(
                "a plan without a deployment in a set-wise write".to_owned(),
            ));
        };
        let now = plan.event.received_at;
        let application_id =
            ensure_application(conn, plan, &plan.application, now).map_err(refused)?;
        let environment_id = ensure_environment(conn, plan, environment, now).map_err(refused)?;
        let decision = decide(None, deployment, &plan.event)
            .map_err(|conflict| refused(StoreError::Conflict(conflict.0)))?;
        let id = decision.id.to_string();
        let sighting = plan
            .event
            .commit_sha
            .as_ref()
            .map(|_| Sightings::first(plan.event.occurred_at, Some(id.clone())));
        let row = settled_row(
            None,
            plan,
            deployment,
            &decision,
            &application_id,
            &environment_id,
            sighting.as_ref(),
        );
        let project = plan.project.to_string();
        let workspace = plan.workspace.to_string();
        for (position, reference) in decision.references.iter().enumerate() {
            links.push((
                deployment_references::deployment_id.eq(id.clone()),
                deployment_references::ref_key.eq(reference.key.as_str().to_owned()),
                deployment_references::project_id.eq(project.clone()),
                deployment_references::closing.eq(reference.closing),
                deployment_references::position.eq(i32::try_from(position).unwrap_or(i32::MAX)),
            ));
            // A request row is created by the first plan that names it.
            if requested.insert((project.clone(), reference.key.as_str().to_owned())) {
                requests.push((
                    project.clone(),
                    reference.key.as_str().to_owned(),
                    workspace.clone(),
                    now.unix_micros(),
                ));
            }
        }
        for key in &decision.deployed_references {
            let earlier = |mark: &Mark| row.deployed_at < mark.deployed_at;
            let entry = (project.clone(), key.as_str().to_owned());
            if marks.get(&entry).is_none_or(earlier) {
                marks.insert(
                    entry,
                    Mark {
                        deployed_at: row.deployed_at,
                        environment: environment_id.clone(),
                    },
                );
            }
        }
        if let (Some(sha), Some(sighting)) = (&plan.event.commit_sha, &sighting) {
            sightings.push((
                commit_sightings::workspace_id.eq(workspace.clone()),
                commit_sightings::commit_sha.eq(sha.as_str().to_owned()),
                commit_sightings::first_at.eq(sighting.first_at.unix_micros()),
                commit_sightings::first_deployment_id.eq(Some(id.clone())),
                commit_sightings::other_at.eq(None::<i64>),
            ));
            sighted.push((rows.len(), sha.as_str().to_owned(), plan.event.occurred_at));
        }
        let event = &plan.event;
        events.push((
            pipeline_events::id.eq(event.id.to_string()),
            pipeline_events::workspace_id.eq(workspace),
            pipeline_events::project_id.eq(project),
            pipeline_events::application_id.eq(application_id),
            pipeline_events::environment_id.eq(Some(environment_id)),
            pipeline_events::deployment_id.eq(Some(id)),
            pipeline_events::event.eq(event.event.as_str()),
            pipeline_events::provider.eq(event.status.provider.as_str()),
            pipeline_events::provider_status
                .eq(event.status_sent.then(|| event.status.raw.clone())),
            pipeline_events::status.eq(event.status.status.as_str()),
            pipeline_events::commit_sha.eq(event.commit_sha.as_ref().map(|s| s.to_string())),
            pipeline_events::occurred_at.eq(event.occurred_at.unix_micros()),
            pipeline_events::received_at.eq(now.unix_micros()),
            pipeline_events::fingerprint.eq(event.fingerprint.as_str()),
        ));
        receipts.push(IngestReceipt {
            event: event.id,
            deployment: Some(decision.id),
            status: Some(decision.lifecycle.status),
            duplicate: false,
            created: true,
            linked_references: linked(plan),
            references_not_linked: 0,
        });
        rows.push(row);
    }

    // The commits' rows before the deployments', the order every writer locks them in.
    let mut inserted: HashSet<String> = HashSet::with_capacity(sightings.len());
    for chunk in sightings.chunks(MAX_BINDS / 5) {
        inserted.extend(
            diesel::insert_into(commit_sightings::table)
                .values(chunk)
                .on_conflict_do_nothing()
                .returning(commit_sightings::commit_sha)
                .load_on::<String>(conn)?,
        );
    }
    // A commit first seen by a concurrent writer since the batch's read (a live event of the
    // same commit, PostgreSQL): folded in as the plan-by-plan path folds any event, which also
    // moves the starts of the commit's other deployments, and this deployment's start follows.
    for (row, sha, at) in sighted {
        if inserted.contains(&sha) {
            continue;
        }
        let Some(row) = rows.get_mut(row) else {
            continue;
        };
        let id = row.id.clone();
        let after = fold_sighting(conn, &row.workspace_id, &sha, at, Some(&id), None)?;
        if row.commit_sha.as_deref() == Some(sha.as_str()) {
            row.commit_seen_at = after.seen_before(&id).map(Timestamp::unix_micros);
        }
    }
    for chunk in rows.chunks(MAX_BINDS / 29) {
        diesel::insert_into(deployments::table)
            .values(chunk)
            .execute_on(conn)?;
    }
    for chunk in links.chunks(MAX_BINDS / 5) {
        diesel::insert_into(deployment_references::table)
            .values(chunk)
            .execute_on(conn)?;
    }
    // A request the project knew keeps its row (and its status). In key order, as the marks
    // below: two batches written at once (PostgreSQL) lock the rows of the requests they share
    // in one order, so neither waits for the other in a circle.
    requests.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let open = ReferenceStatus::Open.as_str();
    let request_rows: Vec<_> = requests
        .iter()
        .map(|(project, key, workspace, at)| {
            (
                change_references::project_id.eq(project),
                change_references::ref_key.eq(key),
                change_references::workspace_id.eq(workspace),
                change_references::status.eq(open),
                change_references::created_at.eq(*at),
            )
        })
        .collect();
    for chunk in request_rows.chunks(MAX_BINDS / 5) {
        diesel::insert_into(change_references::table)
            .values(chunk)
            .on_conflict_do_nothing()
            .execute_on(conn)?;
    }
    mark_all(conn, marks)?;
    for chunk in events.chunks(MAX_BINDS / 14) {
        diesel::insert_into(pipeline_events::table)
            .values(chunk)
            .execute_on(conn)?;
    }
    Ok(receipts)
}

/// Marks each request deployed by its earliest deployment of the run, when it is open or was
/// deployed later (`mark_deployed`'s rule), in key order. PostgreSQL: one statement for all of them; SQLite,
/// where a statement is a function call, one prepared `mark_deployed` each.
fn mark_all(conn: &mut DbConn, marks: BTreeMap<(String, String), Mark>) -> Result<(), StoreError> {
    use diesel::sql_types::{Array, BigInt};

    if marks.is_empty() {
        return Ok(());
    }
    per_backend!(conn, {
        sqlite(_) => {
            for ((project, key), mark) in marks {
                let key = ReferenceKey::parse(&key)
                    .map_err(|_| crate::error::corrupt("reference", &key))?;
                mark_deployed(
                    conn,
                    &project,
                    std::slice::from_ref(&key),
                    mark.deployed_at,
                    &mark.environment,
                )?;
            }
        },
        postgres(pg) => {
            let mut projects = Vec::with_capacity(marks.len());
            let mut keys = Vec::with_capacity(marks.len());
            let mut times = Vec::with_capacity(marks.len());
            let mut environments = Vec::with_capacity(marks.len());
            for ((project, key), mark) in marks {
                projects.push(project);
                keys.push(key);
                times.push(mark.deployed_at);
                environments.push(mark.environment);
            }
            // Once per run of plans: planned with its values, as diesel runs raw SQL.
            diesel::sql_query(MARK_ALL_SQL)
                .bind::<Text, _>(ReferenceStatus::Deployed.as_str())
                .bind::<Text, _>(ReferenceStatus::Open.as_str())
                .bind::<Array<Text>, _>(projects)
                .bind::<Array<Text>, _>(keys)
                .bind::<Array<BigInt>, _>(times)
                .bind::<Array<Text>, _>(environments)
                .execute(pg)?;
        },
    });
    Ok(())
}

/// [`mark_all`]'s PostgreSQL statement: `mark_deployed`'s update for many requests, each with its
/// own time and environment.
const MARK_ALL_SQL: &str = "\
UPDATE change_references AS c \
SET status = $1, deployed_at = m.at, deployed_environment_id = m.environment \
FROM unnest($3::text[], $4::text[], $5::bigint[], $6::text[]) AS m (project, key, at, environment) \
WHERE c.project_id = m.project AND c.ref_key = m.key \
  AND (c.status = $2 OR (c.status = $1 AND c.deployed_at > m.at))";
