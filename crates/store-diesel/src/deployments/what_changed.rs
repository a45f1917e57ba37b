//! What a deployment changed (`DeploymentStore::changes`): the previous successful deployment
//! of its application to its environment, the two commits' first sightings, and the commits
//! first seen in between that an event of the application names, with their change requests
//! and who ran their deployments. One read transaction, so the parts agree.
//!
//! The commits are found from their sightings (`commit_sightings_by_time`, one row per commit,
//! migration 000021), then checked against the application's events through
//! `pipeline_events_by_commit`; a range holds the commits first seen workspace-wide between two
//! deployments, usually a few.

use std::collections::{BTreeMap, BTreeSet};

use diesel::prelude::*;
use shiplog_app::ids::{DeploymentId, WorkspaceId};
use shiplog_app::ports::{ChangesData, CommitLag, LagQuery, PreviousDeployment};
use shiplog_domain::changes::{ChangeKind, SeenCommit, Span};
use shiplog_domain::ids::CommitSha;
use shiplog_domain::reference::ReferenceKey;
use shiplog_domain::status::DeploymentStatus;
use shiplog_domain::timestamp::Timestamp;

use crate::columns::{opt_time, parse_or_corrupt, time, uuid};
use crate::conn::{DbConn, Native};
use crate::error::StoreError;
use crate::schema::{
    applications, commit_references, commit_sightings, deployment_references, deployments,
    pipeline_events,
};

/// How many ids one `IN` list binds at most (SQLite allows 32,766 parameters per statement).
const CHUNK: usize = 500;

pub(crate) fn changes(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    deployment: DeploymentId,
    limit: u32,
) -> Result<Option<ChangesData>, StoreError> {
    conn.transaction(|conn| read(conn, workspace, deployment, limit))
}

type Own = (String, String, String, i64, Option<String>, Option<i64>);

fn read(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    deployment: DeploymentId,
    limit: u32,
) -> Result<Option<ChangesData>, StoreError> {
    let workspace_id = workspace.to_string();
    let id = deployment.to_string();
    let own: Option<Own> = deployments::table
        .filter(deployments::id.eq(&id))
        .filter(deployments::workspace_id.eq(&workspace_id))
        .select((
            deployments::project_id,
            deployments::application_id,
            deployments::environment_id,
            deployments::deployed_at,
            deployments::commit_sha,
            deployments::commit_seen_at,
        ))
        .first_on(conn)
        .optional()?;
    let Some((project_id, application_id, environment_id, at, commit, commit_seen_at)) = own else {
        return Ok(None);
    };
    let previous: Option<(String, Option<String>, i64)> = deployments::table
        .filter(deployments::application_id.eq(&application_id))
        .filter(deployments::environment_id.eq(&environment_id))
        .filter(deployments::status.eq(DeploymentStatus::Success.as_str()))
        .filter(
            deployments::deployed_at
                .lt(at)
                .or(deployments::deployed_at.eq(at).and(deployments::id.lt(&id))),
        )
        .order((deployments::deployed_at.desc(), deployments::id.desc()))
        .select((
            deployments::id,
            deployments::commit_sha,
            deployments::deployed_at,
        ))
        .first_on(conn)
        .optional()?;
    let named: Vec<String> = commit
        .iter()
        .chain(previous.as_ref().and_then(|p| p.1.as_ref()))
        .cloned()
        .collect();
    let sightings: BTreeMap<String, i64> = commit_sightings::table
        .filter(commit_sightings::workspace_id.eq(&workspace_id))
        .filter(commit_sightings::commit_sha.eq_any(&named))
        .select((commit_sightings::commit_sha, commit_sightings::first_at))
        .load_on(conn)?
        .into_iter()
        .collect();
    let seen = |sha: &String| -> Result<SeenCommit, StoreError> {
        Ok(SeenCommit {
            sha: parse_or_corrupt!(CommitSha, sha, "commit_sha")?,
            first_seen: opt_time(sightings.get(sha).copied())?,
        })
    };
    let commit = commit.as_ref().map(seen).transpose()?;
    let previous = previous
        .map(|(id, sha, deployed_at)| -> Result<_, StoreError> {
            Ok(PreviousDeployment {
                id: DeploymentId::from_uuid(uuid(&id)?),
                commit: sha.as_ref().map(seen).transpose()?,
                deployed_at: time(deployed_at)?,
            })
        })
        .transpose()?;
    let span = Span::between(
        previous.as_ref().map(|p| p.commit.as_ref()),
        commit.as_ref(),
    );
    let mut data = ChangesData {
        commit,
        commit_seen_at: opt_time(commit_seen_at)?,
        previous,
        span,
        commits: Vec::new(),
        references: Vec::new(),
        triggered_by: Vec::new(),
    };
    let Some((from, to)) = span.range else {
        return Ok(Some(data));
    };
    // The older of the two commits is where the change starts, the newer where it ends.
    let (older, newer) = match (
        &data.commit,
        data.previous.as_ref().and_then(|p| p.commit.as_ref()),
    ) {
        (Some(own), Some(before)) if span.kind == ChangeKind::Rollback => (own, before),
        (Some(own), Some(before)) => (before, own),
        _ => return Ok(Some(data)),
    };
    let upper = to.unix_micros().max(at);
    let mut read = span_commits(
        conn,
        (&workspace_id, &application_id),
        (older, newer),
        (from, to),
        upper,
    )?;
    if span.kind == ChangeKind::Forward
        && let Some(own) = &data.commit
    {
        read.deployed.insert(id, own.sha.to_string());
    }
    data.commits = read
        .ordered
        .iter()
        .take(
            usize::try_from(limit)
                .unwrap_or(usize::MAX)
                .saturating_add(1),
        )
        .map(|(at, sha)| -> Result<_, StoreError> {
            Ok((parse_or_corrupt!(CommitSha, sha, "commit_sha")?, time(*at)?))
        })
        .collect::<Result<_, _>>()?;
    let (references, people) = references_and_people(conn, &workspace_id, &project_id, &read)?;
    data.references = references;
    data.triggered_by = people;
    Ok(Some(data))
}

/// The commits a span holds: first seen in `(older, newer]` by sighting (`range`), named by
/// an event of the application by `upper`, oldest sighting first, and the deployments those
/// events belong to. The newer commit ends the span even when no event of the application
/// names it.
struct SpanCommits {
    ordered: Vec<(i64, String)>,
    /// Each deployment named by the span's events, with its commit.
    deployed: BTreeMap<String, String>,
}

fn span_commits(
    conn: &mut DbConn,
    (workspace_id, application_id): (&str, &str),
    (older, newer): (&SeenCommit, &SeenCommit),
    (from, to): (Timestamp, Timestamp),
    upper: i64,
) -> Result<SpanCommits, StoreError> {
    let rows: Vec<(String, i64, Option<String>)> = commit_sightings::table
        .inner_join(
            pipeline_events::table.on(pipeline_events::workspace_id
                .eq(commit_sightings::workspace_id)
                .and(pipeline_events::commit_sha.eq(commit_sightings::commit_sha.nullable()))),
        )
        .filter(commit_sightings::workspace_id.eq(workspace_id))
        .filter(commit_sightings::first_at.ge(from.unix_micros()))
        .filter(commit_sightings::first_at.le(to.unix_micros()))
        .filter(pipeline_events::application_id.eq(application_id))
        .filter(pipeline_events::occurred_at.le(upper))
        .select((
            commit_sightings::commit_sha,
            commit_sightings::first_at,
            pipeline_events::deployment_id,
        ))
        .load_on(conn)?;
    let mut commits: BTreeMap<String, i64> = BTreeMap::new();
    let mut deployed: BTreeMap<String, String> = BTreeMap::new();
    for (sha, first_at, deployment) in rows {
        if parse_or_corrupt!(CommitSha, &sha, "commit_sha")?.matches(&older.sha) {
            continue;
        }
        if let Some(deployment) = deployment {
            deployed.insert(deployment, sha.clone());
        }
        commits.insert(sha, first_at);
    }
    if let Some(at) = newer.first_seen {
        commits.insert(newer.sha.to_string(), at.unix_micros());
    }
    let mut ordered: Vec<(i64, String)> = commits.into_iter().map(|(s, at)| (at, s)).collect();
    ordered.sort();
    Ok(SpanCommits { ordered, deployed })
}

/// The change requests of a span's commits (named by their deployments, or merged requests
/// that carry them), in key order, and who ran those deployments, sorted.
fn references_and_people(
    conn: &mut DbConn,
    workspace_id: &str,
    project_id: &str,
    span: &SpanCommits,
) -> Result<(Vec<ReferenceKey>, Vec<String>), StoreError> {
    let deployed: Vec<&String> = span.deployed.keys().collect();
    let shas: Vec<&String> = span.ordered.iter().map(|(_, s)| s).collect();
    let mut references: BTreeSet<String> = BTreeSet::new();
    let mut people: BTreeSet<String> = BTreeSet::new();
    for ids in deployed.chunks(CHUNK) {
        references.extend(
            deployment_references::table
                .filter(deployment_references::deployment_id.eq_any(ids))
                .select(deployment_references::ref_key)
                .load_on::<String>(conn)?,
        );
        people.extend(
            deployments::table
                .filter(deployments::id.eq_any(ids))
                .filter(deployments::workspace_id.eq(workspace_id))
                .select(deployments::deployed_by)
                .load_on::<Option<String>>(conn)?
                .into_iter()
                .flatten(),
        );
    }
    for shas in shas.chunks(CHUNK) {
        references.extend(
            commit_references::table
                .filter(commit_references::project_id.eq(project_id))
                .filter(commit_references::commit_sha.eq_any(shas))
                .select(commit_references::ref_key)
                .load_on::<String>(conn)?,
        );
    }
    let references = references
        .iter()
        .map(|key| parse_or_corrupt!(ReferenceKey, key, "ref_key"))
        .collect::<Result<_, _>>()?;
    Ok((references, people.into_iter().collect()))
}

/// When each of `commits` was first seen (`DeploymentStore::first_seen`).
pub(crate) fn first_seen(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    commits: &[CommitSha],
) -> Result<Vec<(CommitSha, Timestamp)>, StoreError> {
    let workspace_id = workspace.to_string();
    let mut seen = Vec::new();
    for chunk in commits.chunks(CHUNK) {
        let shas: Vec<&str> = chunk.iter().map(CommitSha::as_str).collect();
        let rows: Vec<(String, i64)> = commit_sightings::table
            .filter(commit_sightings::workspace_id.eq(&workspace_id))
            .filter(commit_sightings::commit_sha.eq_any(&shas))
            .select((commit_sightings::commit_sha, commit_sightings::first_at))
            .load_on(conn)?;
        for (sha, at) in rows {
            seen.push((parse_or_corrupt!(CommitSha, &sha, "commit_sha")?, time(at)?));
        }
    }
    Ok(seen)
}

/// How far each query's `behind` commits are from its `ahead` (`DeploymentStore::lags`), in
/// one transaction: one read of the applications' projects and one of the commits' sightings
/// for all queries, then per application one read of the commits between its oldest version
/// and `ahead` (the spans share their end), split per version, and one of their change
/// requests.
pub(crate) fn lags(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    queries: &[LagQuery],
) -> Result<Vec<Option<Vec<CommitLag>>>, StoreError> {
    conn.transaction(|conn| {
        let workspace_id = workspace.to_string();
        let ids: Vec<String> = queries.iter().map(|q| q.application.to_string()).collect();
        let mut projects: BTreeMap<String, String> = BTreeMap::new();
        for chunk in ids.chunks(CHUNK) {
            projects.extend(
                applications::table
                    .filter(applications::id.eq_any(chunk))
                    .filter(applications::workspace_id.eq(&workspace_id))
                    .select((applications::id, applications::project_id))
                    .load_on::<(String, String)>(conn)?,
            );
        }
        let named: Vec<CommitSha> = queries
            .iter()
            .flat_map(|q| q.behind.iter().chain([&q.ahead]).cloned())
            .collect();
        let sightings: BTreeMap<CommitSha, Timestamp> =
            first_seen(conn, workspace, &named)?.into_iter().collect();
        queries
            .iter()
            .zip(&ids)
            .map(|(query, application_id)| {
                let Some(project_id) = projects.get(application_id) else {
                    return Ok(None);
                };
                one_lag(
                    conn,
                    (&workspace_id, project_id, application_id),
                    &sightings,
                    query,
                )
                .map(Some)
            })
            .collect()
    })
}

/// One query of [`lags`].
fn one_lag(
    conn: &mut DbConn,
    (workspace_id, project_id, application_id): (&str, &str, &str),
    sightings: &BTreeMap<CommitSha, Timestamp>,
    LagQuery { behind, ahead, .. }: &LagQuery,
) -> Result<Vec<CommitLag>, StoreError> {
    let seen = |sha: &CommitSha| SeenCommit {
        sha: sha.clone(),
        first_seen: sightings.get(sha).copied(),
    };
    let is = seen(ahead);
    let spans: Vec<(SeenCommit, Span)> = behind
        .iter()
        .map(|sha| {
            let was = seen(sha);
            let span = Span::between(Some(Some(&was)), Some(&is));
            (was, span)
        })
        .collect();
    let forward = |span: &Span| span.kind == ChangeKind::Forward;
    let oldest = spans
        .iter()
        .filter(|(_, span)| forward(span))
        .filter_map(|(was, span)| Some((span.range?.0, was)))
        .min_by_key(|(from, _)| *from);
    let mut lags: Vec<CommitLag> = spans
        .iter()
        .map(|(_, span)| CommitLag {
            span: *span,
            commits: 0,
            change_requests: Vec::new(),
        })
        .collect();
    let (Some((from, oldest)), Some(to)) = (oldest, is.first_seen) else {
        return Ok(lags);
    };
    let read = span_commits(
        conn,
        (workspace_id, application_id),
        (oldest, &is),
        (from, to),
        i64::MAX,
    )?;
    // Each commit's change requests: by the deployments that carried it, and by the
    // merged requests that name it.
    let mut requests: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let deployed: Vec<&String> = read.deployed.keys().collect();
    for ids in deployed.chunks(CHUNK) {
        let rows: Vec<(String, String)> = deployment_references::table
            .filter(deployment_references::deployment_id.eq_any(ids))
            .select((
                deployment_references::deployment_id,
                deployment_references::ref_key,
            ))
            .load_on(conn)?;
        for (deployment, key) in rows {
            if let Some(sha) = read.deployed.get(&deployment) {
                requests.entry(sha.clone()).or_default().insert(key);
            }
        }
    }
    let shas: Vec<&String> = read.ordered.iter().map(|(_, sha)| sha).collect();
    for chunk in shas.chunks(CHUNK) {
        let rows: Vec<(String, String)> = commit_references::table
            .filter(commit_references::project_id.eq(project_id))
            .filter(commit_references::commit_sha.eq_any(chunk))
            .select((commit_references::commit_sha, commit_references::ref_key))
            .load_on(conn)?;
        for (sha, key) in rows {
            requests.entry(sha).or_default().insert(key);
        }
    }
    for ((was, span), lag) in spans.iter().zip(lags.iter_mut()) {
        let (true, Some(since)) = (forward(span), was.first_seen) else {
            continue;
        };
        let mut keys: BTreeSet<&String> = BTreeSet::new();
        let mut commits = 0u32;
        for (at, sha) in &read.ordered {
            let commit = parse_or_corrupt!(CommitSha, sha, "commit_sha")?;
            if *at < since.unix_micros() || commit.matches(&was.sha) {
                continue;
            }
            commits = commits.saturating_add(1);
            keys.extend(requests.get(sha).into_iter().flatten());
        }
        lag.commits = commits;
        lag.change_requests = keys
            .into_iter()
            .map(|key| parse_or_corrupt!(ReferenceKey, key, "ref_key"))
            .collect::<Result<_, _>>()?;
    }
    Ok(lags)
}
