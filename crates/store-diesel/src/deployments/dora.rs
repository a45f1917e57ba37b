//! The records of a DORA query.

use std::sync::Arc;

use diesel::IntoSql;
use diesel::prelude::*;
use shiplog_app::ids::WorkspaceId;
use shiplog_app::ports::{DoraData, DoraQuery};
use shiplog_domain::dora::{
    Blame, Carrier, DeploymentRecord as DoraRecord, IncidentRecord as DoraIncident, Outcome,
};
use shiplog_domain::environment::EnvironmentKind;
use shiplog_domain::ids::EnvironmentCode;
use shiplog_domain::sighting::lead_time_start;
use shiplog_domain::status::DeploymentStatus;

use crate::columns::{Shared, ShortText, opt_time, time};
use crate::conn::{DbConn, Native, per_backend, sqlite_keeps_prepared};
use crate::deployments::dora_days;
use crate::error::{StoreError, corrupt};
use crate::schema::{applications, deployment_references, deployments, environments, incidents};

/// Per application of one environment: its last failure and last success before the window and
/// its first success after it (time and id), each one seek of `deployments_by_place`.
#[derive(QueryableByName)]
struct DoraEdgeRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    application_id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    failed_before: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    succeeded_before: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    succeeded_after: Option<i64>,
    /// The id of that success, which an explanation names as what ended an incident.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    succeeded_after_id: Option<String>,
}

pub(crate) const DORA_EDGES_SQL: &str = "\
SELECT a.id AS application_id,
  (SELECT MAX(d.deployed_at) FROM deployments d WHERE d.application_id = a.id
     AND d.environment_id = $1 AND d.status = $2 AND d.deployed_at < $3) AS failed_before,
  (SELECT MAX(d.deployed_at) FROM deployments d WHERE d.application_id = a.id
     AND d.environment_id = $1 AND d.status = $4 AND d.deployed_at < $3) AS succeeded_before,
  (SELECT MIN(d.deployed_at) FROM deployments d WHERE d.application_id = a.id
     AND d.environment_id = $1 AND d.status = $4 AND d.deployed_at >= $5) AS succeeded_after,
  (SELECT d.id FROM deployments d WHERE d.application_id = a.id
     AND d.environment_id = $1 AND d.status = $4 AND d.deployed_at >= $5
     ORDER BY d.deployed_at, d.id LIMIT 1) AS succeeded_after_id
FROM applications a
WHERE a.workspace_id = $6 AND ($7 IS NULL OR a.project_id = $7) AND ($8 IS NULL OR a.id = $8)
  AND EXISTS (SELECT 1 FROM deployments d WHERE d.application_id = a.id AND d.environment_id = $1)";

/// The records of a DORA query (see `DeploymentStore::dora`).
pub(crate) fn dora(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    query: &DoraQuery,
) -> Result<DoraData, StoreError> {
    let workspace_id = workspace.to_string();
    let project = query.project.map(|p| p.to_string());
    let mut scope = environments::table
        .filter(environments::workspace_id.eq(&workspace_id))
        .into_boxed();
    scope = match &query.environment {
        Some(code) => scope.filter(environments::code.eq(code.to_string())),
        None => scope.filter(environments::kind.eq(EnvironmentKind::Production.as_str())),
    };
    let scope: Vec<(String, String, String)> = scope
        .select((environments::id, environments::code, environments::kind))
        .order((environments::position.asc(), environments::code.asc()))
        .load(conn)?;
    // An incident that names no environment is about every production environment: it counts
    // in a scope of production environments, never in another environment's figures.
    let production = EnvironmentKind::Production.as_str();
    let nameless_incidents_count = scope.iter().any(|(_, _, kind)| kind == production);
    let scope: Vec<(String, String)> = scope.into_iter().map(|(id, code, _)| (id, code)).collect();
    // One application asked for by code: its id in each project in scope (codes are unique per
    // project, so without a project the code may name several applications). `None`: all.
    let applications: Vec<Option<String>> = match &query.application {
        Some(wanted) => {
            let mut ids = applications::table
                .filter(applications::workspace_id.eq(&workspace_id))
                .filter(applications::code.eq(wanted.as_str()))
                .into_boxed();
            if let Some(project) = &project {
                ids = ids.filter(applications::project_id.eq(project));
            }
            ids.select(applications::id)
                .order(applications::id.asc())
                .load::<String>(conn)?
                .into_iter()
                .map(Some)
                .collect()
        }
        None => vec![None],
    };

    let from = query.window.from.unix_micros();
    let to = query.window.to.unix_micros();
    let mut data = DoraData::default();
    let mut shared = Shared::default();
    let scope_ids: Vec<String> = scope.iter().map(|(id, _)| id.clone()).collect();
    for (environment, code) in scope {
        let code = EnvironmentCode::parse(&code).map_err(|_| corrupt("environment code", &code))?;
        data.environments.push(code);
        for application in &applications {
            dora_place(
                conn,
                &mut data,
                &mut shared,
                DoraPlace {
                    workspace: &workspace_id,
                    project: project.as_deref(),
                    environment: &environment,
                    application: application.as_deref(),
                    from,
                    to,
                },
            )?;
        }
    }
    let link = i64::from(query.link_hours) * 3_600_000_000;
    // Incidents opened in the window, and those open when one of its deployments started
    // (rework rate).
    let earliest_start = data
        .records
        .iter()
        .filter_map(|r| r.started_at)
        .map(|t| t.unix_micros())
        .min()
        .map_or(from, |start| start.min(from));
    data.incidents = dora_incidents(
        conn,
        &workspace_id,
        project.as_deref(),
        &applications,
        (&scope_ids, nameless_incidents_count),
        (from, earliest_start),
    )?;
    // An incident that names no cause and opens after the window is linked to the last
    // success before it, which may itself be after the window: those successes are context.
    if data
        .incidents
        .iter()
        .any(|i| i.blame == Blame::Unnamed && i.opened_at >= query.window.to)
    {
        successes_after(
            conn,
            &mut data,
            &mut shared,
            project.as_deref(),
            &applications,
            &scope_ids,
            (to, to.saturating_add(link)),
        )?;
    }
    Ok(data)
}

/// The scope's incidents opened from `from.0` on or still open at `from.1` (those that name no
/// environment only when `with_nameless`: the scope holds production environments), each with
/// what it names as its cause (the deployments carrying a named commit or reference, in the scope's
/// environments).
fn dora_incidents(
    conn: &mut DbConn,
    workspace: &str,
    project: Option<&str>,
    applications: &[Option<String>],
    (environments_in_scope, with_nameless): (&[String], bool),
    (opened_from, open_at): (i64, i64),
) -> Result<Vec<DoraIncident>, StoreError> {
    let mut query = incidents::table
        .filter(incidents::workspace_id.eq(workspace))
        .filter(
            incidents::opened_at
                .ge(opened_from)
                .or(incidents::resolved_at.is_null())
                .or(incidents::resolved_at.gt(open_at)),
        )
        .select((
            incidents::id,
            incidents::title,
            incidents::project_id,
            incidents::application_id,
            incidents::environment_id,
            incidents::opened_at,
            incidents::resolved_at,
            incidents::blamed_deployment_id,
            incidents::blamed_commit,
            incidents::blamed_reference,
        ))
        .into_boxed();
    query = if with_nameless {
        query.filter(
            incidents::environment_id
                .is_null()
                .or(incidents::environment_id.eq_any(environments_in_scope)),
        )
    } else {
        query.filter(incidents::environment_id.eq_any(environments_in_scope))
    };
    if let Some(project) = project {
        query = query.filter(incidents::project_id.eq(project));
    }
    let wanted: Vec<&str> = applications.iter().flatten().map(String::as_str).collect();
    if !wanted.is_empty() {
        query = query.filter(
            incidents::application_id
                .is_null()
                .or(incidents::application_id.eq_any(wanted.clone())),
        );
    }
    type Row = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        i64,
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = query.load(conn)?;
    // A whole project's incident is about each of its applications (those asked for, if any).
    let mut project_apps: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut out = Vec::with_capacity(rows.len());
    for (
        id,
        title,
        project_id,
        application,
        environment,
        opened,
        resolved,
        deployment,
        commit,
        reference,
    ) in rows
    {
        let applications = match application {
            Some(application) => Some(vec![application]),
            None => {
                if !project_apps.contains_key(&project_id) {
                    let mut ids: Vec<String> = applications::table
                        .filter(applications::project_id.eq(&project_id))
                        .select(applications::id)
                        .load_on(conn)?;
                    if !wanted.is_empty() {
                        ids.retain(|a| wanted.contains(&a.as_str()));
                    }
                    project_apps.insert(project_id.clone(), ids);
                }
                project_apps.get(&project_id).cloned()
            }
        };
        let blame = match (deployment, commit, reference) {
            (Some(deployment), _, _) => Blame::Deployment(deployment),
            (None, Some(commit), _) => Blame::Carriers(carriers(
                conn,
                CarrierOf::Commit(&commit),
                &project_id,
                environments_in_scope,
                opened,
            )?),
            (None, None, Some(reference)) => Blame::Carriers(carriers(
                conn,
                CarrierOf::Reference(&reference),
                &project_id,
                environments_in_scope,
                opened,
            )?),
            (None, None, None) => Blame::Unnamed,
        };
        out.push(DoraIncident {
            id,
            title,
            applications,
            environment,
            opened_at: time(opened)?,
            resolved_at: opt_time(resolved)?,
            blame,
        });
    }
    Ok(out)
}

/// What a carrier carries.
enum CarrierOf<'a> {
    Commit(&'a str),
    Reference(&'a str),
}

/// The finished deployments of a project's environments in scope that carry a commit or a
/// reference, finished by `until`.
fn carriers(
    conn: &mut DbConn,
    of: CarrierOf<'_>,
    project: &str,
    environments_in_scope: &[String],
    until: i64,
) -> Result<Vec<Carrier>, StoreError> {
    let mut query = deployments::table
        .filter(deployments::project_id.eq(project))
        .filter(deployments::environment_id.eq_any(environments_in_scope))
        .filter(deployments::deployed_at.le(until))
        .filter(deployments::status.eq_any(FINISHED))
        .select((
            deployments::id,
            deployments::application_id,
            deployments::environment_id,
            deployments::deployed_at,
        ))
        .into_boxed();
    query = match of {
        CarrierOf::Commit(sha) => query.filter(deployments::commit_sha.eq(sha.to_owned())),
        CarrierOf::Reference(key) => query.filter(
            deployments::id.eq_any(
                deployment_references::table
                    .filter(deployment_references::project_id.eq(project.to_owned()))
                    .filter(deployment_references::ref_key.eq(key.to_owned()))
                    .select(deployment_references::deployment_id),
            ),
        ),
    };
    let rows: Vec<(String, String, String, i64)> = query.load(conn)?;
    rows.into_iter()
        .map(|(id, application, environment, at)| {
            Ok(Carrier {
                id,
                application,
                environment,
                finished_at: time(at)?,
            })
        })
        .collect()
}

/// The successful deployments of the scope in `[range.0, range.1)`, as records that only place
/// them in time (they are after the window: nothing counts them but incident links).
fn successes_after(
    conn: &mut DbConn,
    data: &mut DoraData,
    shared: &mut Shared,
    project: Option<&str>,
    applications: &[Option<String>],
    environments_in_scope: &[String],
    range: (i64, i64),
) -> Result<(), StoreError> {
    let mut query = deployments::table
        .filter(deployments::environment_id.eq_any(environments_in_scope))
        .filter(deployments::deployed_at.ge(range.0))
        .filter(deployments::deployed_at.lt(range.1))
        .filter(deployments::status.eq(DeploymentStatus::Success.as_str()))
        .select((
            deployments::id,
            deployments::application_id,
            deployments::environment_id,
            deployments::deployed_at,
        ))
        .into_boxed();
    if let Some(project) = project {
        query = query.filter(deployments::project_id.eq(project));
    }
    let wanted: Vec<&str> = applications.iter().flatten().map(String::as_str).collect();
    if !wanted.is_empty() {
        query = query.filter(deployments::application_id.eq_any(wanted));
    }
    let rows: Vec<(String, String, String, i64)> = query.load(conn)?;
    for (id, application, environment, at) in rows {
        data.records.push(DoraRecord {
            id,
            application: shared.get_str(&application)?,
            environment: shared.get_str(&environment)?,
            outcome: Outcome::Succeeded,
            finished_at: time(at)?,
            has_commit: false,
            commit_time: None,
            started_at: None,
            rework: None,
        });
    }
    Ok(())
}

/// One environment (and optionally one application) of a DORA query.
struct DoraPlace<'a> {
    workspace: &'a str,
    project: Option<&'a str>,
    environment: &'a str,
    application: Option<&'a str>,
    from: i64,
    to: i64,
}

/// Adds the window's records of one place and its edges to `data`.
fn dora_place(
    conn: &mut DbConn,
    data: &mut DoraData,
    shared: &mut Shared,
    place: DoraPlace<'_>,
) -> Result<(), StoreError> {
    use diesel::sql_types::{BigInt, Nullable, Text};

    let DoraPlace {
        workspace,
        project,
        environment,
        application,
        from,
        to,
    } = place;
    let environment_text = environment;
    let environment = shared.get_str(environment)?;
    let edges = sqlite_keeps_prepared(
        diesel::sql_query(DORA_EDGES_SQL)
            .bind::<Text, _>(environment_text)
            .bind::<Text, _>(DeploymentStatus::Failed.as_str())
            .bind::<BigInt, _>(from)
            .bind::<Text, _>(DeploymentStatus::Success.as_str())
            .bind::<BigInt, _>(to)
            .bind::<Text, _>(workspace)
            .bind::<Nullable<Text>, _>(project)
            .bind::<Nullable<Text>, _>(application),
    );
    let edges: Vec<DoraEdgeRow> = edges.load_on(conn)?;
    // Records go out in time order as far as it costs nothing (failures before the window, the
    // window's rows, successes after it): the domain sorts them, and sorted input sorts in one
    // pass.
    let mut after = Vec::new();
    for edge in edges {
        let application = shared.get_str(&edge.application_id)?;
        let edge_record =
            |tag: &str, outcome: Outcome, at: i64| -> Result<DoraRecord, StoreError> {
                Ok(DoraRecord {
                    id: format!("{tag}:{}:{environment}", edge.application_id),
                    application: application.clone(),
                    environment: environment.clone(),
                    outcome,
                    finished_at: time(at)?,
                    has_commit: false,
                    commit_time: None,
                    started_at: None,
                    rework: None,
                })
            };
        // Only an open incident at the window's start matters before it.
        if let Some(failed) = edge.failed_before
            && edge
                .succeeded_before
                .is_none_or(|succeeded| succeeded < failed)
        {
            data.records
                .push(edge_record("before", Outcome::Failed, failed)?);
        }
        if let Some(succeeded) = edge.succeeded_after {
            let mut record = edge_record("after", Outcome::Succeeded, succeeded)?;
            if let Some(id) = &edge.succeeded_after_id {
                // The real deployment, so an explanation can name what ended an incident.
                record.id.clone_from(id);
            }
            after.push(record);
        }
    }
    // The finished deployments of the window: its packed days (`dora_days`), and one range
    // scan of `deployments` for each stretch of the window between them (its partial first and
    // last days, days not packed yet or changed since).
    let first_full = from
        .saturating_add(dora_days::DAY - 1)
        .div_euclid(dora_days::DAY)
        .max(0);
    let last_full = to.div_euclid(dora_days::DAY);
    let packed = dora_days::packed_days(conn, environment_text, (first_full, last_full))?;
    let stretch = Stretch {
        environment: environment_text,
        project,
        application,
    };
    let mut cursor = from;
    for (day, bytes) in &packed {
        let start = day.saturating_mul(dora_days::DAY);
        if cursor < start {
            stretch.read(conn, data, shared, &environment, (cursor, start))?;
        }
        dora_days::unpack(
            bytes,
            project,
            application,
            &environment,
            shared,
            &mut data.records,
        )?;
        cursor = start.saturating_add(dora_days::DAY);
    }
    if cursor < to {
        stretch.read(conn, data, shared, &environment, (cursor, to))?;
    }
    data.records.append(&mut after);
    Ok(())
}

/// Where a DORA query reads deployments themselves (where no packed day serves).
struct Stretch<'a> {
    environment: &'a str,
    project: Option<&'a str>,
    application: Option<&'a str>,
}

impl Stretch<'_> {
    /// Adds the finished deployments of `[from, to)` to `data`: one range scan of the covering
    /// `deployments_by_environment_time`, decoded by position (a by-name decode looked every
    /// column up by name on every row). A deployment's commit time, when no commit timestamp
    /// was sent, is `commit_seen_at`, kept up to date at ingest (`commit_sightings`).
    fn read(
        &self,
        conn: &mut DbConn,
        data: &mut DoraData,
        shared: &mut Shared,
        environment: &Arc<str>,
        (from, to): (i64, i64),
    ) -> Result<(), StoreError> {
        use diesel::sql_types::{Nullable, Text};

        let Self {
            environment: environment_text,
            project,
            application,
        } = *self;
        // PostgreSQL streams the rows one by one (`PgRowByRowLoadingMode`, on its own connection
        // type, the optional filters bound), so they are decoded while the server still scans,
        // instead of libpq collecting the whole result first (29 % of the samples of a
        // 365-day query were idle): `bench dora` over 200,000 deployments, 365-day read 28.5 / 28.6 ->
        // 18.9 / 19.4 ms. SQLite keeps the boxed query with only the filters asked for, read whole
        // into a vector of records sized once: the unboxed query streamed into a growing vector
        // was 10 to 15 ms slower there over 1,000,000 deployments.
        per_backend!(conn, {
            sqlite(_) => {
                let rows = window_rows(conn, environment_text, project, application, (from, to))?;
                data.records.reserve(rows.len());
                for row in rows {
                    data.records.push(window_record(row, environment, shared)?);
                }
            },
            postgres(pg) => {
                let window = finished_in(environment_text, from, to)
                    .select(window_columns())
                    .filter(
                        application
                            .into_sql::<Nullable<Text>>()
                            .is_null()
                            .or(deployments::application_id.nullable().eq(application)),
                    )
                    .filter(
                        project
                            .into_sql::<Nullable<Text>>()
                            .is_null()
                            .or(deployments::project_id.nullable().eq(project)),
                    );
                for row in window.load_iter::<WindowRow, diesel::pg::PgRowByRowLoadingMode>(pg)? {
                    data.records.push(window_record(row?, environment, shared)?);
                }
            },
        });
        Ok(())
    }
}

/// The statuses of a finished deployment, the ones a DORA query counts.
pub(crate) const FINISHED: [&str; 2] = [
    DeploymentStatus::Success.as_str(),
    DeploymentStatus::Failed.as_str(),
];

/// The finished deployments of `environment` in `[from, to)`: a range of the covering
/// `deployments_by_environment_time`.
#[diesel::dsl::auto_type]
pub(crate) fn finished_in<'a>(environment: &'a str, from: i64, to: i64) -> _ {
    let finished: [&'static str; 2] = FINISHED;
    deployments::table
        .filter(deployments::environment_id.eq(environment))
        .filter(deployments::deployed_at.ge(from))
        .filter(deployments::deployed_at.lt(to))
        .filter(deployments::status.eq_any(finished))
}

/// The columns a DORA query reads of a finished deployment ([`WindowRow`]): a window's
/// stretches select them, and so does packing a day (`dora_days`).
pub(crate) type WindowColumns = (
    deployments::id,
    deployments::application_id,
    diesel::dsl::Eq<deployments::status, &'static str>,
    deployments::deployed_at,
    diesel::dsl::IsNotNull<deployments::commit_sha>,
    deployments::commit_timestamp,
    deployments::commit_seen_at,
    deployments::started_at,
    deployments::rework,
);

/// [`WindowColumns`].
pub(crate) fn window_columns() -> WindowColumns {
    (
        deployments::id,
        deployments::application_id,
        deployments::status.eq(DeploymentStatus::Success.as_str()),
        deployments::deployed_at,
        deployments::commit_sha.is_not_null(),
        deployments::commit_timestamp,
        deployments::commit_seen_at,
        deployments::started_at,
        deployments::rework,
    )
}

/// The finished deployments of `environment` in `[from, to)` (of `project` and `application`
/// when given), read whole: one range scan of the covering `deployments_by_environment_time`
/// with only the filters asked for. A window's stretches on SQLite and the packing of a day
/// (`dora_days`, per project) read through this one function: when packing decoded its rows
/// through a tuple of its own, the compiler stopped inlining the per-column decoding of the
/// window's rows, and SQLite's 365-day read in `bench dora` took about 15 ms more (115 against
/// 99 ms in a first round; 104 ms through this function).
pub(crate) fn window_rows(
    conn: &mut DbConn,
    environment: &str,
    project: Option<&str>,
    application: Option<&str>,
    (from, to): (i64, i64),
) -> Result<Vec<WindowRow>, StoreError> {
    let mut window = finished_in(environment, from, to)
        .select(window_columns())
        .into_boxed();
    if let Some(application) = application {
        window = window.filter(deployments::application_id.eq(application));
    }
    if let Some(project) = project {
        window = window.filter(deployments::project_id.eq(project));
    }
    Ok(window.load::<WindowRow>(conn)?)
}

/// A finished deployment of the window, as [`window_columns`] selects it. The application and
/// the rework signal decode without allocating: one shared copy of each application id serves
/// all its records.
pub(crate) type WindowRow = (
    String,
    ShortText,
    bool,
    i64,
    bool,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<ShortText>,
);

/// The record of one window row of `environment`.
pub(crate) fn window_record(
    (id, application, succeeded, deployed_at, has_commit, timestamp, seen, started, signal): WindowRow,
    environment: &Arc<str>,
    shared: &mut Shared,
) -> Result<DoraRecord, StoreError> {
    let finished_at = time(deployed_at)?;
    Ok(DoraRecord {
        outcome: if succeeded {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        },
        finished_at,
        has_commit,
        commit_time: lead_time_start(opt_time(timestamp)?, opt_time(seen)?, finished_at),
        id,
        application: shared.get(application),
        environment: Arc::clone(environment),
        started_at: opt_time(started)?,
        rework: crate::columns::rework(signal.as_ref().map(ShortText::as_str))?,
    })
}
