//! Hooks, deliveries and attempts: the store half of outgoing hooks.
//!
//! Delivery rows are created by the ingest transaction ([`fan_out`]); the worker leases them
//! with [`claim`] (one `UPDATE … RETURNING`, with `FOR UPDATE SKIP LOCKED` on PostgreSQL so two
//! servers never lease the same row; on SQLite the single writer serializes claims) and
//! reports with [`record_attempt`].

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use diesel::prelude::*;
use shiplog_app::hooks::{
    Attempt, AttemptRecord, ClaimedDelivery, Delivery, DeliveryClaim, DeliveryOutcome,
    DeliveryStatus, DeliverySubject, Hook, HookFilter, HookHeader, HookMethod, HookRequest,
    ScopeRef, SecretText,
};
use shiplog_app::ids::{
    ApplicationId, DeliveryId, DeploymentId, EnvironmentId, HookId, ProjectId, WorkspaceId,
};
use shiplog_app::ports::{BackendFailure, HookStore};
use shiplog_domain::hook::{HookEvent, delivery_id};
use shiplog_domain::ids::{ApplicationCode, EnvironmentCode, ProjectSlug};
use shiplog_domain::status::DeploymentStatus;
use shiplog_domain::timestamp::Timestamp;

use crate::Store;
use crate::applications::ApplicationRow;
use crate::columns::{opt_time, status, time, uuid};
use crate::conn::{DbConn, Native, per_backend, sqlite_keeps_prepared};
use crate::environments::EnvironmentRow;
use crate::error::{StoreError, corrupt};
use crate::projects::ProjectRow;
use crate::schema::{
    applications, environments, hook_attempts, hook_deliveries, hooks, outbox_events, projects,
};

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = hooks)]
pub(crate) struct HookRow {
    pub id: String,
    pub workspace_id: String,
    pub project_id: String,
    pub application_id: Option<String>,
    pub environment_id: Option<String>,
    pub name: String,
    pub action_type: String,
    pub events: String,
    pub method: String,
    pub target_url: String,
    pub headers: String,
    pub body: Option<String>,
    pub secrets: String,
    pub signing_secret: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn json_text<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("hook encoding: {e}")))
}

impl HookRow {
    fn from_record(hook: &Hook) -> Result<Self, StoreError> {
        let headers: Vec<(&str, &str)> = hook
            .request
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.reveal()))
            .collect();
        let secrets: BTreeMap<&str, &str> = hook
            .secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.reveal()))
            .collect();
        Ok(Self {
            id: hook.id.to_string(),
            workspace_id: hook.workspace.to_string(),
            project_id: hook.project.id.to_string(),
            application_id: hook.application.as_ref().map(|a| a.id.to_string()),
            environment_id: hook.environment.as_ref().map(|e| e.id.to_string()),
            name: hook.name.clone(),
            action_type: hook.action_type.clone(),
            events: hook
                .events
                .iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            method: hook.request.method.as_str().to_owned(),
            target_url: hook.request.target_url.clone(),
            headers: json_text(&headers)?,
            body: hook.request.body.as_ref().map(json_text).transpose()?,
            secrets: json_text(&secrets)?,
            signing_secret: hook.signing_secret.reveal().to_owned(),
            enabled: hook.enabled,
            disabled_reason: hook.disabled_reason.clone(),
            created_at: hook.created_at.unix_micros(),
            updated_at: hook.updated_at.unix_micros(),
        })
    }

    /// The hook of this row, with its scope's codes from `codes`.
    fn into_hook(self, codes: &ScopeCodes) -> Result<Hook, StoreError> {
        let project_slug = codes
            .projects
            .get(&self.project_id)
            .ok_or_else(|| corrupt("hook project", &self.project_id))?;
        let application = match &self.application_id {
            Some(id) => {
                let code = codes
                    .applications
                    .get(id)
                    .ok_or_else(|| corrupt("hook application", id))?;
                Some(ScopeRef {
                    id: ApplicationId::from_uuid(uuid(id)?),
                    code: ApplicationCode::parse(code)
                        .map_err(|_| corrupt("application code", code))?,
                })
            }
            None => None,
        };
        let environment = match &self.environment_id {
            Some(id) => {
                let code = codes
                    .environments
                    .get(id)
                    .ok_or_else(|| corrupt("hook environment", id))?;
                Some(ScopeRef {
                    id: EnvironmentId::from_uuid(uuid(id)?),
                    code: EnvironmentCode::parse(code)
                        .map_err(|_| corrupt("environment code", code))?,
                })
            }
            None => None,
        };
        let headers: Vec<(String, String)> =
            serde_json::from_str(&self.headers).map_err(|_| corrupt("hook headers", &self.id))?;
        let secrets: BTreeMap<String, String> =
            serde_json::from_str(&self.secrets).map_err(|_| corrupt("hook secrets", &self.id))?;
        let method = HookMethod::from_name(&self.method)
            .ok_or_else(|| corrupt("hook method", &self.method))?;
        Ok(Hook {
            id: HookId::from_uuid(uuid(&self.id)?),
            workspace: WorkspaceId::from_uuid(uuid(&self.workspace_id)?),
            project: ScopeRef {
                id: ProjectId::from_uuid(uuid(&self.project_id)?),
                code: ProjectSlug::parse(project_slug)
                    .map_err(|_| corrupt("project slug", project_slug))?,
            },
            application,
            environment,
            name: self.name,
            action_type: self.action_type,
            events: self
                .events
                .split(' ')
                .map(|e| e.parse().map_err(|_| corrupt("hook event", e)))
                .collect::<Result<_, _>>()?,
            request: HookRequest {
                method,
                target_url: self.target_url,
                headers: headers
                    .into_iter()
                    .map(|(name, value)| HookHeader {
                        name,
                        value: SecretText::new(value),
                    })
                    .collect(),
                body: self
                    .body
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()
                    .map_err(|_| corrupt("hook body", &self.id))?,
            },
            secrets: secrets
                .into_iter()
                .map(|(k, v)| (k, SecretText::new(v)))
                .collect(),
            signing_secret: SecretText::new(self.signing_secret),
            enabled: self.enabled,
            disabled_reason: self.disabled_reason,
            created_at: time(self.created_at)?,
            updated_at: time(self.updated_at)?,
        })
    }
}

/// The codes of the projects, applications and environments some hooks are scoped to, by id.
#[derive(Default)]
struct ScopeCodes {
    projects: HashMap<String, String>,
    applications: HashMap<String, String>,
    environments: HashMap<String, String>,
}

/// The hooks of rows, in their order: one query per scope table, however many hooks.
fn into_hooks(conn: &mut DbConn, rows: Vec<HookRow>) -> Result<Vec<Hook>, StoreError> {
    let mut codes = ScopeCodes::default();
    if !rows.is_empty() {
        let projects: Vec<&str> = rows.iter().map(|r| r.project_id.as_str()).collect();
        codes.projects = projects::table
            .filter(projects::id.eq_any(&projects))
            .select((projects::id, projects::slug))
            .load_on::<(String, String)>(conn)?
            .into_iter()
            .collect();
        let applications: Vec<&str> = rows
            .iter()
            .filter_map(|r| r.application_id.as_deref())
            .collect();
        if !applications.is_empty() {
            codes.applications = applications::table
                .filter(applications::id.eq_any(&applications))
                .select((applications::id, applications::code))
                .load_on::<(String, String)>(conn)?
                .into_iter()
                .collect();
        }
        let environments: Vec<&str> = rows
            .iter()
            .filter_map(|r| r.environment_id.as_deref())
            .collect();
        if !environments.is_empty() {
            codes.environments = environments::table
                .filter(environments::id.eq_any(&environments))
                .select((environments::id, environments::code))
                .load_on::<(String, String)>(conn)?
                .into_iter()
                .collect();
        }
    }
    rows.into_iter().map(|row| row.into_hook(&codes)).collect()
}

/// Inserts a hook unless its project has `max` already. The project's row is updated to
/// itself first: on PostgreSQL that locks it, so two creations in one project count one after
/// the other (SQLite's writer runs one job at a time anyway).
pub(crate) fn create_hook(conn: &mut DbConn, hook: &Hook, max: u32) -> Result<bool, StoreError> {
    let project = hook.project.id.to_string();
    diesel::update(projects::table.filter(projects::id.eq(&project)))
        .set(projects::slug.eq(projects::slug))
        .execute_on(conn)?;
    let count: i64 = hooks::table
        .filter(hooks::project_id.eq(&project))
        .count()
        .get_result_on(conn)?;
    if count >= i64::from(max) {
        return Ok(false);
    }
    diesel::insert_into(hooks::table)
        .values(HookRow::from_record(hook)?)
        .execute_on(conn)?;
    Ok(true)
}

pub(crate) fn update_hook(conn: &mut DbConn, hook: &Hook) -> Result<bool, StoreError> {
    let row = HookRow::from_record(hook)?;
    let changed = diesel::update(
        hooks::table
            .filter(hooks::workspace_id.eq(&row.workspace_id))
            .filter(hooks::id.eq(&row.id)),
    )
    .set(&row)
    .execute_on(conn)?;
    Ok(changed > 0)
}

pub(crate) fn delete_hook(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    id: HookId,
) -> Result<bool, StoreError> {
    // Its deliveries and their attempts go with it (ON DELETE CASCADE; SQLite connections run
    // with foreign_keys on).
    let id = id.to_string();
    let deleted = diesel::delete(
        hooks::table
            .filter(hooks::workspace_id.eq(workspace.to_string()))
            .filter(hooks::id.eq(&id)),
    )
    .execute_on(conn)?;
    Ok(deleted > 0)
}

pub(crate) fn get_hook(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    id: HookId,
) -> Result<Option<Hook>, StoreError> {
    hooks::table
        .filter(hooks::workspace_id.eq(workspace.to_string()))
        .filter(hooks::id.eq(id.to_string()))
        .select(HookRow::as_select())
        .first::<HookRow>(conn)
        .optional()?
        .map(|row| into_hooks(conn, vec![row]).map(|mut hooks| hooks.pop()))
        .transpose()
        .map(Option::flatten)
}

pub(crate) fn list_hooks(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    filter: HookFilter,
) -> Result<Vec<Hook>, StoreError> {
    let mut query = hooks::table
        .filter(hooks::workspace_id.eq(workspace.to_string()))
        .select(HookRow::as_select())
        .order((hooks::created_at.asc(), hooks::id.asc()))
        .into_boxed();
    if let Some(project) = filter.project {
        query = query.filter(hooks::project_id.eq(project.to_string()));
    }
    if let Some(application) = filter.application {
        query = query.filter(hooks::application_id.eq(application.to_string()));
    }
    if let Some(environment) = filter.environment {
        query = query.filter(hooks::environment_id.eq(environment.to_string()));
    }
    let rows: Vec<HookRow> = query.load(conn)?;
    into_hooks(conn, rows)
}

/// The claim: one statement that leases due rows. `$1` owner, `$2` lease end, `$3` the pending
/// status, `$4` now, `$5` limit. A row is due when pending, its time has come, no live lease holds it, its hook is
/// enabled, and no earlier delivery of the same deployment to the same target URL template is
/// still pending (one receiver sees one deployment's states in order, even when Devopness-style
/// setups use one hook per event).
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE hook_deliveries SET lease_owner = $1, lease_until = $2 WHERE id IN (
    SELECT d.id FROM hook_deliveries d WHERE d.id IN (
        SELECT due.id FROM (
            SELECT c.id, c.workspace_id, c.next_attempt_at, c.seq,
                   ROW_NUMBER() OVER (
                       PARTITION BY c.workspace_id ORDER BY c.next_attempt_at, c.seq) AS place
            FROM hook_deliveries c JOIN hooks h ON h.id = c.hook_id
            WHERE c.status = $3 AND c.next_attempt_at <= $4
              AND (c.lease_until IS NULL OR c.lease_until <= $4)
              AND h.enabled
              AND NOT EXISTS (
                SELECT 1 FROM hook_deliveries e JOIN hooks eh ON eh.id = e.hook_id
                WHERE e.deployment_id = c.deployment_id AND e.seq < c.seq
                  AND e.status = $3 AND eh.target_url = h.target_url)
        ) due
        LEFT JOIN (
            SELECT l.workspace_id, COUNT(*) AS n FROM hook_deliveries l
            WHERE l.status = $3 AND l.lease_until > $4
            GROUP BY l.workspace_id
        ) leased ON leased.workspace_id = due.workspace_id
        WHERE due.place + COALESCE(leased.n, 0) <= $5
        ORDER BY due.place, due.next_attempt_at, due.seq
        LIMIT $6)
      AND d.status = $3 AND (d.lease_until IS NULL OR d.lease_until <= $4) ",
            $lock,
            ") RETURNING id"
        )
    };
}

#[async_trait]
impl HookStore for Store {
    async fn create_hook(&self, hook: Hook, max_per_project: u32) -> Result<bool, BackendFailure> {
        Ok(self
            .write(move |conn| crate::hooks::create_hook(conn, &hook, max_per_project))
            .await?)
    }

    async fn hook(
        &self,
        workspace: WorkspaceId,
        id: HookId,
    ) -> Result<Option<Hook>, BackendFailure> {
        Ok(self
            .read(move |conn| crate::hooks::get_hook(conn, workspace, id))
            .await?)
    }

    async fn hooks(
        &self,
        workspace: WorkspaceId,
        filter: HookFilter,
    ) -> Result<Vec<Hook>, BackendFailure> {
        Ok(self
            .read(move |conn| crate::hooks::list_hooks(conn, workspace, filter))
            .await?)
    }

    async fn update_hook(&self, hook: Hook) -> Result<bool, BackendFailure> {
        Ok(self
            .write(move |conn| crate::hooks::update_hook(conn, &hook))
            .await?)
    }

    async fn delete_hook(
        &self,
        workspace: WorkspaceId,
        id: HookId,
    ) -> Result<bool, BackendFailure> {
        Ok(self
            .write(move |conn| crate::hooks::delete_hook(conn, workspace, id))
            .await?)
    }

    async fn claim_deliveries(
        &self,
        claim: DeliveryClaim,
    ) -> Result<Vec<ClaimedDelivery>, BackendFailure> {
        let ids = self
            .write(move |conn| crate::hooks::claim(conn, &claim))
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .read(move |conn| crate::hooks::load_claimed(conn, &ids))
            .await?)
    }

    async fn record_attempt(&self, record: AttemptRecord) -> Result<(), BackendFailure> {
        Ok(self
            .write(move |conn| crate::hooks::record_attempt(conn, &record))
            .await?)
    }

    async fn deliveries(
        &self,
        workspace: WorkspaceId,
        hook: HookId,
        limit: u32,
    ) -> Result<Vec<Delivery>, BackendFailure> {
        Ok(self
            .read(move |conn| {
                crate::hooks::deliveries(
                    conn,
                    workspace,
                    crate::hooks::DeliveriesOf::Hook(hook),
                    limit,
                )
            })
            .await?)
    }

    async fn deployment_deliveries(
        &self,
        workspace: WorkspaceId,
        deployment: DeploymentId,
        limit: u32,
    ) -> Result<Vec<Delivery>, BackendFailure> {
        Ok(self
            .read(move |conn| {
                let of = crate::hooks::DeliveriesOf::Deployment(deployment);
                crate::hooks::deliveries(conn, workspace, of, limit)
            })
            .await?)
    }

    async fn delivery(
        &self,
        workspace: WorkspaceId,
        id: DeliveryId,
    ) -> Result<Option<Delivery>, BackendFailure> {
        Ok(self
            .read(move |conn| crate::hooks::delivery(conn, workspace, id))
            .await?)
    }

    async fn redeliver(
        &self,
        workspace: WorkspaceId,
        id: DeliveryId,
        at: Timestamp,
    ) -> Result<bool, BackendFailure> {
        Ok(self
            .write(move |conn| crate::hooks::redeliver(conn, workspace, id, at))
            .await?)
    }

    async fn record_test_delivery(
        &self,
        workspace: WorkspaceId,
        delivery: Delivery,
    ) -> Result<(), BackendFailure> {
        Ok(self
            .write(move |conn| crate::hooks::record_test_delivery(conn, workspace, &delivery))
            .await?)
    }
}

#[cfg(test)]
pub(crate) use claim_sql;

#[derive(QueryableByName)]
struct ClaimedId {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
}

/// Leases due deliveries (in the writer's transaction); returns their ids.
pub(crate) fn claim(conn: &mut DbConn, claim: &DeliveryClaim) -> Result<Vec<String>, StoreError> {
    let limit = i64::from(claim.limit);
    // Fair shares: each workspace's due deliveries are ranked, the first of every workspace
    // come before the second of any, and a workspace never holds more than `per_workspace`
    // live leases (counting every server's). The statement differs per backend: PostgreSQL
    // skips rows another server has locked (and re-checks the lease of one it waited for).
    let sql = per_backend!(conn, {
        sqlite(_) => claim_sql!(""),
        postgres(_) => claim_sql!("FOR UPDATE OF d SKIP LOCKED"),
    });
    let rows = sqlite_keeps_prepared(
        diesel::sql_query(sql)
            .bind::<diesel::sql_types::Text, _>(&claim.owner)
            .bind::<diesel::sql_types::BigInt, _>(claim.lease_until.unix_micros())
            .bind::<diesel::sql_types::Text, _>(DeliveryStatus::Pending.as_str())
            .bind::<diesel::sql_types::BigInt, _>(claim.now.unix_micros())
            .bind::<diesel::sql_types::BigInt, _>(i64::from(claim.per_workspace))
            .bind::<diesel::sql_types::BigInt, _>(limit),
    )
    .load_on::<ClaimedId>(conn)?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Loads everything needed to send the claimed deliveries, in the order of `ids`: one query per
/// table, however many deliveries were claimed.
pub(crate) fn load_claimed(
    conn: &mut DbConn,
    ids: &[String],
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    type DeliveryRow = (String, String, String, i32, Option<String>);
    let deliveries: HashMap<String, DeliveryRow> = hook_deliveries::table
        .filter(hook_deliveries::id.eq_any(ids))
        .select((
            hook_deliveries::id,
            hook_deliveries::hook_id,
            hook_deliveries::event,
            hook_deliveries::attempts,
            hook_deliveries::outbox_event_id,
        ))
        .load_on::<DeliveryRow>(conn)?
        .into_iter()
        .map(|row| (row.0.clone(), row))
        .collect();
    let hook_ids: Vec<&str> = deliveries.values().map(|d| d.1.as_str()).collect();
    let hook_rows: Vec<HookRow> = hooks::table
        .filter(hooks::id.eq_any(&hook_ids))
        .select(HookRow::as_select())
        .load(conn)?;
    let hooks: HashMap<String, Hook> = into_hooks(conn, hook_rows)?
        .into_iter()
        .map(|hook| (hook.id.to_string(), hook))
        .collect();
    let outbox_ids: Vec<&str> = deliveries.values().filter_map(|d| d.4.as_deref()).collect();
    type OutboxRow = (String, String, Option<String>, String);
    let outbox: HashMap<String, OutboxRow> = outbox_events::table
        .filter(outbox_events::id.eq_any(&outbox_ids))
        .select((
            outbox_events::id,
            outbox_events::deployment_id,
            outbox_events::status_from,
            outbox_events::status_to,
        ))
        .load_on::<OutboxRow>(conn)?
        .into_iter()
        .map(|row| (row.0.clone(), row))
        .collect();
    let deployment_ids: Vec<&str> = outbox.values().map(|o| o.1.as_str()).collect();
    let deployments = crate::deployments::deployments_by_id(conn, &deployment_ids)?;
    let project_ids: Vec<String> = hooks.values().map(|h| h.project.id.to_string()).collect();
    let projects = projects::table
        .filter(projects::id.eq_any(&project_ids))
        .select(ProjectRow::as_select())
        .load::<ProjectRow>(conn)?
        .into_iter()
        .map(|row| Ok((row.id.clone(), row.into_record()?)))
        .collect::<Result<HashMap<_, _>, StoreError>>()?;
    let application_ids: Vec<String> = deployments
        .values()
        .map(|p| p.deployment.application_id.to_string())
        .collect();
    let applications = applications::table
        .filter(applications::id.eq_any(&application_ids))
        .select((ApplicationRow::as_select(), applications::source_token))
        .load::<(ApplicationRow, Option<String>)>(conn)?
        .into_iter()
        .map(|(row, token)| Ok((row.id.clone(), (row.into_record()?, token))))
        .collect::<Result<HashMap<_, _>, StoreError>>()?;
    let environment_ids: Vec<&str> = deployments
        .values()
        .map(|p| p.environment_id.as_str())
        .collect();
    let environments = environments::table
        .filter(environments::id.eq_any(&environment_ids))
        .select(EnvironmentRow::as_select())
        .load::<EnvironmentRow>(conn)?
        .into_iter()
        .map(|row| Ok((row.id.clone(), row.into_record()?)))
        .collect::<Result<HashMap<_, _>, StoreError>>()?;

    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        let (_, hook_id, event, attempts, outbox_id) = deliveries
            .get(id)
            .ok_or_else(|| corrupt("claimed delivery", id))?;
        let hook = hooks
            .get(hook_id)
            .cloned()
            .ok_or_else(|| corrupt("delivery's hook", hook_id))?;
        let outbox_id = outbox_id
            .as_deref()
            .ok_or_else(|| corrupt("delivery without outbox event", id))?;
        let (_, deployment_id, from, to) = outbox
            .get(outbox_id)
            .ok_or_else(|| corrupt("delivery's outbox event", outbox_id))?;
        // Deliveries of one status change share a deployment (one per hook).
        let crate::deployments::Placed {
            deployment,
            environment_id,
        } = deployments
            .get(deployment_id)
            .cloned()
            .ok_or_else(|| corrupt("delivery's deployment", deployment_id))?;
        let application_id = deployment.application_id.to_string();
        let project_id = hook.project.id.to_string();
        let project = projects
            .get(&project_id)
            .cloned()
            .ok_or_else(|| corrupt("hook project", &project_id))?;
        let (application, source_token) = applications
            .get(&application_id)
            .cloned()
            .ok_or_else(|| corrupt("deployment's application", &application_id))?;
        let environment = environments
            .get(&environment_id)
            .cloned()
            .ok_or_else(|| corrupt("deployment's environment", &environment_id))?;
        claimed.push(ClaimedDelivery {
            id: DeliveryId::from_uuid(uuid(id)?),
            hook,
            event: event
                .parse()
                .map_err(|_| corrupt("delivery event", event))?,
            attempts_made: u32::try_from(*attempts).unwrap_or_default(),
            subject: DeliverySubject {
                source_token: source_token.map(SecretText::new),
                deployment,
                previous_status: from.as_deref().map(status).transpose()?,
                status: status(to)?,
                project,
                application,
                environment,
            },
        });
    }
    Ok(claimed)
}

fn insert_attempt(conn: &mut DbConn, delivery: &str, attempt: &Attempt) -> Result<(), StoreError> {
    diesel::insert_into(hook_attempts::table)
        .values((
            hook_attempts::delivery_id.eq(delivery),
            hook_attempts::number.eq(i32::try_from(attempt.number).unwrap_or(i32::MAX)),
            hook_attempts::at.eq(attempt.at.unix_micros()),
            hook_attempts::duration_ms.eq(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX)),
            hook_attempts::status_code.eq(attempt.status_code.map(i32::from)),
            hook_attempts::error.eq(attempt.error.as_deref()),
            hook_attempts::response_body.eq(attempt.response_body.as_deref()),
        ))
        .execute_on(conn)?;
    Ok(())
}

/// Records an attempt; the delivery's state changes only if the reporter still holds the lease
/// (a worker whose lease expired and was taken over reports what it did, and changes nothing).
pub(crate) fn record_attempt(conn: &mut DbConn, record: &AttemptRecord) -> Result<(), StoreError> {
    let id = record.delivery.to_string();
    insert_attempt(conn, &id, &record.attempt)?;
    let (state, next) = match record.outcome {
        DeliveryOutcome::Delivered => (DeliveryStatus::Delivered, None),
        DeliveryOutcome::RetryAt(at) => (DeliveryStatus::Pending, Some(at.unix_micros())),
        DeliveryOutcome::Failed => (DeliveryStatus::Failed, None),
    };
    diesel::update(
        hook_deliveries::table
            .filter(hook_deliveries::id.eq(&id))
            .filter(hook_deliveries::lease_owner.eq(&record.owner)),
    )
    .set((
        hook_deliveries::status.eq(state.as_str()),
        hook_deliveries::attempts.eq(i32::try_from(record.attempt.number).unwrap_or(i32::MAX)),
        hook_deliveries::next_attempt_at.eq(next),
        hook_deliveries::lease_owner.eq(None::<String>),
        hook_deliveries::lease_until.eq(None::<i64>),
        hook_deliveries::updated_at.eq(record.at.unix_micros()),
    ))
    .execute_on(conn)?;
    if let Some(reason) = &record.disable_hook {
        diesel::update(hooks::table.filter(hooks::id.eq(record.hook.to_string())))
            .set((
                hooks::enabled.eq(false),
                hooks::disabled_reason.eq(Some(reason)),
                hooks::updated_at.eq(record.at.unix_micros()),
            ))
            .execute_on(conn)?;
    }
    Ok(())
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = hook_deliveries)]
struct DeliveryRow {
    id: String,
    hook_id: String,
    deployment_id: Option<String>,
    event: String,
    status: String,
    next_attempt_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = hook_attempts)]
struct AttemptRow {
    number: i32,
    at: i64,
    duration_ms: i64,
    status_code: Option<i32>,
    error: Option<String>,
    response_body: Option<String>,
}

/// Deliveries with their attempts: one query for the attempts of all of them.
fn to_deliveries(conn: &mut DbConn, rows: Vec<DeliveryRow>) -> Result<Vec<Delivery>, StoreError> {
    let ids: Vec<&str> = rows.iter().map(|row| row.id.as_str()).collect();
    let mut attempts: HashMap<String, Vec<AttemptRow>> = HashMap::new();
    if !ids.is_empty() {
        let loaded: Vec<(String, AttemptRow)> = hook_attempts::table
            .filter(hook_attempts::delivery_id.eq_any(&ids))
            .order(hook_attempts::seq.asc())
            .select((hook_attempts::delivery_id, AttemptRow::as_select()))
            .load(conn)?;
        for (delivery, attempt) in loaded {
            attempts.entry(delivery).or_default().push(attempt);
        }
    }
    rows.into_iter()
        .map(|row| {
            let own = attempts.remove(&row.id).unwrap_or_default();
            to_delivery(row, own)
        })
        .collect()
}

fn to_delivery(row: DeliveryRow, attempts: Vec<AttemptRow>) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: DeliveryId::from_uuid(uuid(&row.id)?),
        hook: HookId::from_uuid(uuid(&row.hook_id)?),
        event: row.event,
        deployment: row
            .deployment_id
            .as_deref()
            .map(|d| uuid(d).map(DeploymentId::from_uuid))
            .transpose()?,
        status: DeliveryStatus::parse(&row.status)
            .ok_or_else(|| corrupt("delivery status", &row.status))?,
        next_attempt_at: opt_time(row.next_attempt_at)?,
        attempts: attempts
            .into_iter()
            .map(|a| {
                Ok(Attempt {
                    number: u32::try_from(a.number).unwrap_or_default(),
                    at: time(a.at)?,
                    duration_ms: u64::try_from(a.duration_ms).unwrap_or_default(),
                    status_code: a.status_code.and_then(|c| u16::try_from(c).ok()),
                    error: a.error,
                    response_body: a.response_body,
                })
            })
            .collect::<Result<_, StoreError>>()?,
        created_at: time(row.created_at)?,
        updated_at: time(row.updated_at)?,
    })
}

/// Whose deliveries to list.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DeliveriesOf {
    /// One hook's.
    Hook(HookId),
    /// Every hook's, for one deployment.
    Deployment(DeploymentId),
}

/// The newest `limit` deliveries of a hook or a deployment.
pub(crate) fn deliveries(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    of: DeliveriesOf,
    limit: u32,
) -> Result<Vec<Delivery>, StoreError> {
    let query = hook_deliveries::table
        .filter(hook_deliveries::workspace_id.eq(workspace.to_string()))
        .into_boxed();
    let query = match of {
        DeliveriesOf::Hook(hook) => query.filter(hook_deliveries::hook_id.eq(hook.to_string())),
        DeliveriesOf::Deployment(deployment) => {
            query.filter(hook_deliveries::deployment_id.eq(deployment.to_string()))
        }
    };
    let rows: Vec<DeliveryRow> = query
        .order(hook_deliveries::seq.desc())
        .limit(i64::from(limit))
        .select(DeliveryRow::as_select())
        .load(conn)?;
    to_deliveries(conn, rows)
}

pub(crate) fn delivery(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    id: DeliveryId,
) -> Result<Option<Delivery>, StoreError> {
    let rows: Vec<DeliveryRow> = hook_deliveries::table
        .filter(hook_deliveries::workspace_id.eq(workspace.to_string()))
        .filter(hook_deliveries::id.eq(id.to_string()))
        .select(DeliveryRow::as_select())
        .load(conn)?;
    Ok(to_deliveries(conn, rows)?.into_iter().next())
}

pub(crate) fn redeliver(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    id: DeliveryId,
    at: shiplog_domain::timestamp::Timestamp,
) -> Result<bool, StoreError> {
    let changed = diesel::update(
        hook_deliveries::table
            .filter(hook_deliveries::workspace_id.eq(workspace.to_string()))
            .filter(hook_deliveries::id.eq(id.to_string()))
            .filter(hook_deliveries::outbox_event_id.is_not_null()),
    )
    .set((
        hook_deliveries::status.eq(DeliveryStatus::Pending.as_str()),
        hook_deliveries::attempts.eq(0),
        hook_deliveries::next_attempt_at.eq(Some(at.unix_micros())),
        hook_deliveries::lease_owner.eq(None::<String>),
        hook_deliveries::lease_until.eq(None::<i64>),
        hook_deliveries::updated_at.eq(at.unix_micros()),
    ))
    .execute_on(conn)?;
    Ok(changed > 0)
}

pub(crate) fn record_test_delivery(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    delivery: &Delivery,
) -> Result<(), StoreError> {
    let id = delivery.id.to_string();
    diesel::insert_into(hook_deliveries::table)
        .values((
            hook_deliveries::id.eq(&id),
            hook_deliveries::workspace_id.eq(workspace.to_string()),
            hook_deliveries::hook_id.eq(delivery.hook.to_string()),
            hook_deliveries::outbox_event_id.eq(None::<String>),
            hook_deliveries::deployment_id.eq(None::<String>),
            hook_deliveries::event.eq(&delivery.event),
            hook_deliveries::status.eq(delivery.status.as_str()),
            hook_deliveries::attempts
                .eq(i32::try_from(delivery.attempts.len()).unwrap_or(i32::MAX)),
            hook_deliveries::next_attempt_at.eq(None::<i64>),
            hook_deliveries::lease_owner.eq(None::<String>),
            hook_deliveries::lease_until.eq(None::<i64>),
            hook_deliveries::created_at.eq(delivery.created_at.unix_micros()),
            hook_deliveries::updated_at.eq(delivery.updated_at.unix_micros()),
        ))
        .execute_on(conn)?;
    for attempt in &delivery.attempts {
        insert_attempt(conn, &id, attempt)?;
    }
    Ok(())
}

/// The hooks to notify of one status change, and the delivery rows to insert: called by the
/// ingest transaction.
/// Inserts one pending delivery, due at `now`, per enabled hook in scope that
/// subscribes to an event of this change, and the outbox row of the change they
/// report; nothing when no hook subscribes. The delivery id derives from the outbox
/// event and the hook, so a retried transaction cannot make two.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fan_out(
    conn: &mut DbConn,
    workspace: &str,
    outbox_event: &str,
    deployment: &str,
    project: &str,
    application: &str,
    environment: &str,
    from: Option<DeploymentStatus>,
    to: DeploymentStatus,
    now: i64,
) -> Result<(), StoreError> {
    let events = HookEvent::for_transition(from, to);
    if events.is_empty() {
        return Ok(());
    }
    let candidates: Vec<(String, String)> = hooks::table
        .filter(hooks::project_id.eq(project))
        .filter(hooks::enabled.eq(true))
        .filter(
            hooks::application_id
                .is_null()
                .or(hooks::application_id.eq(application)),
        )
        .filter(
            hooks::environment_id
                .is_null()
                .or(hooks::environment_id.eq(environment)),
        )
        .order(hooks::created_at.asc())
        .select((hooks::id, hooks::events))
        .load_on(conn)?;
    let deliveries: Vec<_> = candidates
        .iter()
        .filter_map(|(hook, subscribed)| {
            let event = events
                .iter()
                .find(|e| subscribed.split(' ').any(|s| s == e.as_str()))?;
            Some((
                hook_deliveries::id.eq(delivery_id(outbox_event, hook)),
                hook_deliveries::workspace_id.eq(workspace),
                hook_deliveries::hook_id.eq(hook),
                hook_deliveries::outbox_event_id.eq(Some(outbox_event)),
                hook_deliveries::deployment_id.eq(Some(deployment)),
                hook_deliveries::event.eq(event.as_str()),
                hook_deliveries::status.eq(DeliveryStatus::Pending.as_str()),
                hook_deliveries::attempts.eq(0),
                hook_deliveries::next_attempt_at.eq(Some(now)),
                hook_deliveries::lease_owner.eq(None::<String>),
                hook_deliveries::lease_until.eq(None::<i64>),
                hook_deliveries::created_at.eq(now),
                hook_deliveries::updated_at.eq(now),
            ))
        })
        .collect();
    if deliveries.is_empty() {
        return Ok(());
    }
    // The status change the deliveries report (their worker reads it when sending).
    diesel::insert_into(outbox_events::table)
        .values((
            outbox_events::id.eq(outbox_event),
            outbox_events::workspace_id.eq(workspace),
            outbox_events::deployment_id.eq(deployment),
            outbox_events::status_from.eq(from.map(DeploymentStatus::as_str)),
            outbox_events::status_to.eq(to.as_str()),
            outbox_events::created_at.eq(now),
            // Its deliveries are made right here, in this transaction.
            outbox_events::processed_at.eq(Some(now)),
        ))
        .execute_on(conn)?;
    diesel::insert_into(hook_deliveries::table)
        .values(deliveries)
        .execute_on(conn)?;
    Ok(())
}
