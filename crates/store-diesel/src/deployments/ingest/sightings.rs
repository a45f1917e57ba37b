//! When each commit was first seen (`commit_sightings`), folded event by event, and the
//! lead-time starts of the deployments a new sighting moves.
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
use shiplog_app::ids::WorkspaceId;
use shiplog_app::ingest::IngestPlan;
use shiplog_domain::ids::CommitSha;
use shiplog_domain::sighting::{Affected, Sightings};
use shiplog_domain::timestamp::Timestamp;

use super::Lookup;
use crate::columns::{opt_time, time};
use crate::conn::{DbConn, Native, keeps_prepared, per_backend, sqlite_keeps_prepared};
use crate::error::StoreError;
use crate::schema::commit_sightings;

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
pub(super) struct SightingRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub(super) first_at: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub(super) first_deployment_id: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub(super) other_at: Option<i64>,
}

impl SightingRow {
    pub(super) fn into_sightings(self) -> Result<Sightings<String>, StoreError> {
        Ok(Sightings {
            first_at: time(self.first_at)?,
            first_by: self.first_deployment_id,
            other_at: opt_time(self.other_at)?,
        })
    }
}

/// A deployment whose lead-time start [`RESTART_SQL`] or [`RESTART_OWNER_SQL`] rewrote.
#[derive(QueryableByName)]
pub(super) struct Rewritten {
    #[diesel(sql_type = diesel::sql_types::Text)]
    #[expect(dead_code, reason = "the rows are only counted")]
    id: String,
}

/// Folds the event into its commit's sightings, when it names a commit, and rewrites
/// the lead-time start of the commit's other deployments the fold moved. `deployment`
/// is the event's deployment, whose own start its caller writes.
pub(super) fn sight_commit(
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
pub(super) fn fold_sighting(
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
        return per_backend!(conn, {
            // The single writer: what the lookup read is current.
            sqlite(_) => Ok(before.clone()),
            // A shared lock: events that change nothing do not wait for each other, while a
            // writer that moves the starts waits for this transaction (and then finds its
            // deployment to rewrite), or this one waits for it and reads what it wrote. Moves
            // only go earlier, so an event absorbed by what the lookup read is absorbed by what
            // is there now.
            postgres(_) => keeps_prepared(
                diesel::sql_query(SHARE_SQL)
                    .bind::<Text, _>(workspace)
                    .bind::<Text, _>(sha),
            )
            .get_result_on::<SightingRow>(conn)?
            .into_sightings(),
        });
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
