//! A deployment's references: the keys its commit message names, the requests of its project
//! they name, which it deploys, and the references merged pull requests give to commits.

use diesel::prelude::*;
use shiplog_app::ids::{ProjectId, WorkspaceId};
use shiplog_app::ingest::{DeploymentPlan, IngestPlan};
use shiplog_app::model::ReferenceStatus;
use shiplog_domain::ids::CommitSha;
use shiplog_domain::reference;
use shiplog_domain::reference::{Reference, ReferenceKey};
use shiplog_domain::status::DeploymentStatus;
use shiplog_domain::timestamp::Timestamp;

use crate::columns::status;
use crate::conn::{DbConn, Native, keeps_prepared, per_backend};
use crate::error::{StoreError, corrupt};
use crate::schema::{change_references, commit_references, deployment_references, deployments};

/// A deployment plan with the references merged change requests gave its commit added (after
/// the message's, up to the limit).
pub(super) fn with_commit_references(
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
pub(super) fn references_of(
    conn: &mut DbConn,
    deployment: &str,
) -> Result<Vec<Reference>, StoreError> {
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

/// Where references are written: the project and workspace, and the time that dates new rows.
pub(super) struct Linking {
    pub(super) project: String,
    pub(super) workspace: String,
    pub(super) now: i64,
}

/// Marks references deployed by a successful deployment (at `deployed_at`, in `environment`):
/// the app's `decide` says which (`deployed_references`). An open one becomes deployed; one
/// deployed later than this (a newer deployment arrived first, and this older one is history
/// arriving now) takes this earlier time and place: a request is deployed by its first success.
pub(super) fn mark_deployed(
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
            .filter(
                change_references::status
                    .eq(ReferenceStatus::Open.as_str())
                    .or(change_references::status
                        .eq(ReferenceStatus::Deployed.as_str())
                        .and(change_references::deployed_at.gt(deployed_at))),
            ),
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
pub(super) fn relink<'r>(
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
pub(super) fn write_references(
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
        per_backend!(conn, {
            sqlite(c) => insert.execute(c)?,
            postgres(c) => {
                keeps_prepared(insert.returning(deployment_references::ref_key))
                    .write::<_, String>(c)?
            },
        });
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
        per_backend!(conn, {
            sqlite(c) => insert.execute(c)?,
            postgres(c) => keeps_prepared(insert.returning(change_references::ref_key))
                .write::<_, String>(c)?,
        });
    }
    Ok(())
}
