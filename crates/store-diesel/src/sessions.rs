//! Dashboard sessions (`sessions`): each row acts as its API key, read together with it.

use diesel::prelude::*;
use shiplog_app::model::{SessionGrant, SessionRecord};
use shiplog_domain::key::{KeyHash, Role};

use crate::columns::{opt_time, time, uuid};
use crate::conn::{DbConn, Native};
use crate::error::{StoreError, corrupt};
use crate::schema::{api_keys, sessions};

/// Inserts the session, then deletes its key's sessions beyond the newest `keep` (the write
/// job is one transaction).
pub(crate) fn create(
    conn: &mut DbConn,
    session: &SessionRecord,
    keep: u32,
) -> Result<(), StoreError> {
    let key = session.api_key.to_string();
    diesel::insert_into(sessions::table)
        .values((
            sessions::hash.eq(session.hash.as_str()),
            sessions::workspace_id.eq(session.workspace.to_string()),
            sessions::api_key_id.eq(session.api_key.to_string()),
            sessions::created_at.eq(session.created_at.unix_micros()),
            sessions::expires_at.eq(session.expires_at.unix_micros()),
        ))
        .execute_on(conn)?;
    let beyond: Vec<String> = sessions::table
        .filter(sessions::api_key_id.eq(&key))
        .order((sessions::created_at.desc(), sessions::hash.desc()))
        .offset(i64::from(keep))
        .select(sessions::hash)
        .load_on(conn)?;
    if !beyond.is_empty() {
        diesel::delete(sessions::table.filter(sessions::hash.eq_any(&beyond))).execute_on(conn)?;
    }
    Ok(())
}

/// The session and what its key grants, in one read (a revoked key's sessions are gone: the
/// foreign key cascades).
pub(crate) fn get(conn: &mut DbConn, hash: &KeyHash) -> Result<Option<SessionGrant>, StoreError> {
    type Row = (
        String,
        String,
        Option<String>,
        Option<i64>,
        i64,
        String,
        String,
    );
    let row: Option<Row> = sessions::table
        .inner_join(api_keys::table.on(api_keys::id.eq(sessions::api_key_id)))
        .filter(sessions::hash.eq(hash.as_str()))
        .select((
            sessions::workspace_id,
            api_keys::role,
            api_keys::project_id,
            api_keys::expires_at,
            sessions::expires_at,
            api_keys::id,
            api_keys::name,
        ))
        .first_on(conn)
        .optional()?;
    row.map(
        |(workspace, role, project, key_expires_at, expires_at, key, key_name)| {
            Ok(SessionGrant {
                workspace: shiplog_app::ids::WorkspaceId::from_uuid(uuid(&workspace)?),
                role: Role::parse(&role).map_err(|_| corrupt("key role", &role))?,
                project: project
                    .as_deref()
                    .map(uuid)
                    .transpose()?
                    .map(shiplog_app::ids::ProjectId::from_uuid),
                key_expires_at: opt_time(key_expires_at)?,
                expires_at: time(expires_at)?,
                api_key: shiplog_app::ids::ApiKeyId::from_uuid(uuid(&key)?),
                key_name,
            })
        },
    )
    .transpose()
}

pub(crate) fn delete(conn: &mut DbConn, hash: &KeyHash) -> Result<bool, StoreError> {
    Ok(
        diesel::delete(sessions::table.filter(sessions::hash.eq(hash.as_str())))
            .execute_on(conn)?
            > 0,
    )
}

pub(crate) fn delete_expired(conn: &mut DbConn, now: i64) -> Result<u64, StoreError> {
    let deleted =
        diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute_on(conn)?;
    Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
}
