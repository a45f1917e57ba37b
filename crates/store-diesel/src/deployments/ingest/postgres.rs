//! The PostgreSQL write path. The one write that differs in shape per backend is a deployment
//! event's: SQLite runs the deployment's insert or update, its references, the project's request
//! rows, the requests it deploys and the event as five statements inside its single writer, while
//! PostgreSQL, where every statement is a round trip and an executor start, runs them as one
//! statement of data-modifying `WITH` clauses (`write_all_pg`, `PG_CREATE_SQL` and its
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
//! statuses, `deployments::dora::FINISHED`), which a change to those words must follow.

use diesel::prelude::*;
use shiplog_app::ingest::IngestPlan;
use shiplog_app::model::ReferenceStatus;
use shiplog_domain::reference::{Reference, ReferenceKey};

use crate::conn::keeps_prepared;
use crate::deployments::DeploymentRow;
use crate::error::StoreError;

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
/// open and `$36` deployed, dated `$37`), and the project's rows of those marked deployed: the
/// open ones, and those deployed later than this deployment (its first success deploys a
/// request, whichever arrives first).
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
               WHERE project_id = $3 AND ref_key = ANY ($34) \
                 AND (status = $35 OR (status = $36 AND deployed_at > $14)) \
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
pub(super) const PG_UPDATE_SQL: &str = concat!(
    pg_update_deployment!(),
    pg_event_clause!(),
    pg_nothing_settled!()
);

/// See [`PG_UPDATE_SQL`].
pub(super) const PG_UPDATE_WITH_REFERENCES_SQL: &str = concat!(
    pg_update_deployment!(),
    pg_references_clauses!(),
    pg_event_clause!(),
    pg_settled!()
);

/// See [`PG_UPDATE_SQL`].
pub(super) const PG_CREATE_SQL: &str = concat!(
    pg_insert_deployment!(),
    pg_event_clause!(),
    pg_nothing_settled!()
);

/// See [`PG_UPDATE_SQL`].
pub(super) const PG_CREATE_WITH_REFERENCES_SQL: &str = concat!(
    pg_insert_deployment!(),
    pg_references_clauses!(),
    pg_event_clause!(),
    pg_settled!()
);

/// The row of [`PG_UPDATE_SQL`] and its siblings.
#[derive(QueryableByName)]
pub(super) struct Settled {
    #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Text>)]
    settled: Vec<String>,
}

/// What [`write_all_pg`] writes.
pub(super) struct PgWrite<'a> {
    pub(super) plan: &'a IngestPlan,
    pub(super) row: &'a DeploymentRow,
    pub(super) create: bool,
    /// The references it did not have, with their positions ([`relink`]).
    pub(super) new: &'a [(i32, &'a Reference)],
    /// The references it has now.
    pub(super) references: &'a [Reference],
    /// Those it deploys (`decide`'s `deployed_references`).
    pub(super) deployed: &'a [ReferenceKey],
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
pub(super) fn write_all_pg(
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The `$n` a statement names.
    fn placeholders(sql: &str) -> BTreeSet<u32> {
        sql.split('$')
            .skip(1)
            .filter_map(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .collect()
    }

    /// The items of the first parenthesized list after `marker`.
    fn list_after(sql: &str, marker: &str) -> Vec<String> {
        let start = sql.find(marker).unwrap();
        let open = start + sql[start..].find('(').unwrap() + 1;
        let close = open + sql[open..].find(')').unwrap();
        sql[open..close]
            .split(',')
            .map(|item| item.trim().to_owned())
            .collect()
    }

    /// `write_all_pg` binds `$1` to `$45` whatever the shape (the contract suite runs all four
    /// on PostgreSQL, which refuses a statement whose binds and placeholders differ in number);
    /// the texts name exactly those, and a write without references leaves `$30` to `$36` out.
    #[test]
    fn each_shape_names_the_parameters_write_all_pg_binds() {
        let every: BTreeSet<u32> = (1..=45).collect();
        let without_references: BTreeSet<u32> = (1..=29).chain(37..=45).collect();
        assert_eq!(placeholders(PG_CREATE_WITH_REFERENCES_SQL), every);
        assert_eq!(placeholders(PG_UPDATE_WITH_REFERENCES_SQL), every);
        assert_eq!(placeholders(PG_CREATE_SQL), without_references);
        assert_eq!(placeholders(PG_UPDATE_SQL), without_references);
    }

    /// Each column list pairs one to one, in order, with its values.
    #[test]
    fn columns_and_values_pair_one_to_one() {
        let columns = list_after(PG_CREATE_SQL, "INSERT INTO deployments");
        let values = list_after(PG_CREATE_SQL, ") VALUES");
        assert_eq!(columns.len(), 29, "{columns:?}");
        let expected: Vec<String> = (1..=29).map(|n| format!("${n}")).collect();
        assert_eq!(values, expected);
        assert_eq!(list_after(PG_UPDATE_SQL, "UPDATE deployments SET"), columns);
        assert_eq!(list_after(PG_UPDATE_SQL, ") = "), expected);
        let event_columns = list_after(PG_CREATE_SQL, "INSERT INTO pipeline_events");
        let event_values = list_after(PG_CREATE_SQL, "VALUES ($38");
        assert_eq!(event_columns.len(), 14, "{event_columns:?}");
        assert_eq!(event_values.len(), event_columns.len(), "{event_values:?}");
    }
}
