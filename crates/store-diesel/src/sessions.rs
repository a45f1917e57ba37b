//! Dashboard sessions (`sessions`): each row acts as its API key, read together with it, or
//! for a person (`people`) with the role their groups gave at the last look.

use diesel::prelude::*;
use shiplog_app::audit::Actor;
use shiplog_app::ids::{PersonId, WorkspaceId};
use shiplog_app::model::{
    PersonRecord, SessionGrant, SessionHolder, SessionOwner, SessionRecord, SessionSummary,
};
use shiplog_domain::key::{KeyHash, Role};

use crate::columns::{opt_time, time, uuid};
use crate::conn::{DbConn, Native};
use crate::error::{StoreError, corrupt};
use crate::schema::{api_keys, people, sessions};

/// Inserts the session, then deletes its key's (or person's) sessions beyond the newest
/// `keep` (the write job is one transaction).
pub(crate) fn create(
    conn: &mut DbConn,
    session: &SessionRecord,
    keep: u32,
) -> Result<(), StoreError> {
    let (key, person, role, refresh_at) = match &session.holder {
        SessionHolder::Key(key) => (Some(key.to_string()), None, None, None),
        SessionHolder::Person {
            id,
            role,
            refresh_at,
        } => (
            None,
            Some(id.to_string()),
            Some(role.as_str()),
            Some(refresh_at.unix_micros()),
        ),
    };
    diesel::insert_into(sessions::table)
        .values((
            sessions::hash.eq(session.hash.as_str()),
            sessions::workspace_id.eq(session.workspace.to_string()),
            sessions::api_key_id.eq(&key),
            sessions::person_id.eq(&person),
            sessions::role.eq(role),
            sessions::refresh_at.eq(refresh_at),
            sessions::address.eq(session.address.as_deref()),
            sessions::created_at.eq(session.created_at.unix_micros()),
            sessions::expires_at.eq(session.expires_at.unix_micros()),
        ))
        .execute_on(conn)?;
    let newest_first = (sessions::created_at.desc(), sessions::hash.desc());
    let beyond: Vec<String> = match (&key, &person) {
        (Some(key), _) => sessions::table
            .filter(sessions::api_key_id.eq(key))
            .order(newest_first)
            .offset(i64::from(keep))
            .select(sessions::hash)
            .load_on(conn)?,
        (None, Some(person)) => sessions::table
            .filter(sessions::person_id.eq(person))
            .order(newest_first)
            .offset(i64::from(keep))
            .select(sessions::hash)
            .load_on(conn)?,
        (None, None) => Vec::new(),
    };
    if !beyond.is_empty() {
        diesel::delete(sessions::table.filter(sessions::hash.eq_any(&beyond))).execute_on(conn)?;
    }
    Ok(())
}

/// A session with its key's or person's columns (`None` on the side it is not).
type GrantRow = (
    String,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

/// A session row's holder columns: its key's, or its person's with the session's role.
struct Holder {
    key: Option<String>,
    key_name: Option<String>,
    key_role: Option<String>,
    person: Option<String>,
    person_name: Option<String>,
    person_role: Option<String>,
}

/// The role and actor of the session `hash`: its key's role, or the role its person's groups
/// gave.
fn holder(hash: &str, columns: Holder) -> Result<(Role, Actor), StoreError> {
    let (role, actor) = match (columns.key, columns.person) {
        (Some(id), None) => (
            columns.key_role.unwrap_or_default(),
            Actor::ApiKey {
                id,
                name: columns.key_name.unwrap_or_default(),
            },
        ),
        (None, Some(id)) => (
            columns.person_role.unwrap_or_default(),
            Actor::Person {
                id,
                name: columns.person_name.unwrap_or_default(),
            },
        ),
        _ => return Err(corrupt("session holder", hash)),
    };
    let role = Role::parse(&role).map_err(|_| corrupt("session role", &role))?;
    Ok((role, actor))
}

/// The session and what its key grants (or its person's role), in one read (a revoked key's
/// sessions are gone: the foreign key cascades).
pub(crate) fn get(conn: &mut DbConn, hash: &KeyHash) -> Result<Option<SessionGrant>, StoreError> {
    let row: Option<GrantRow> = sessions::table
        .left_join(api_keys::table.on(sessions::api_key_id.eq(api_keys::id.nullable())))
        .left_join(people::table.on(sessions::person_id.eq(people::id.nullable())))
        .filter(sessions::hash.eq(hash.as_str()))
        .select((
            sessions::workspace_id,
            sessions::expires_at,
            sessions::role,
            sessions::refresh_at,
            api_keys::id.nullable(),
            api_keys::name.nullable(),
            api_keys::role.nullable(),
            api_keys::project_id.nullable(),
            api_keys::expires_at.nullable(),
            people::id.nullable(),
            people::name.nullable(),
        ))
        .first_on(conn)
        .optional()?;
    let Some((
        workspace,
        expires_at,
        person_role,
        refresh_at,
        key,
        key_name,
        key_role,
        project,
        key_expires_at,
        person,
        person_name,
    )) = row
    else {
        return Ok(None);
    };
    let (role, actor) = holder(
        hash.as_str(),
        Holder {
            key,
            key_name,
            key_role,
            person,
            person_name,
            person_role,
        },
    )?;
    Ok(Some(SessionGrant {
        workspace: WorkspaceId::from_uuid(uuid(&workspace)?),
        role,
        project: project
            .as_deref()
            .map(uuid)
            .transpose()?
            .map(shiplog_app::ids::ProjectId::from_uuid),
        key_expires_at: opt_time(key_expires_at)?,
        expires_at: time(expires_at)?,
        actor,
        refresh_at: opt_time(refresh_at)?,
    }))
}

/// Sets a person's session's role and next refresh; `false` when the session is not that
/// person's in that workspace.
pub(crate) fn refresh(
    conn: &mut DbConn,
    hash: &KeyHash,
    holder: &SessionHolder,
    workspace: WorkspaceId,
) -> Result<bool, StoreError> {
    let SessionHolder::Person {
        id,
        role,
        refresh_at,
    } = holder
    else {
        return Ok(false);
    };
    let updated = diesel::update(
        sessions::table
            .filter(sessions::hash.eq(hash.as_str()))
            .filter(sessions::person_id.eq(id.to_string()))
            .filter(sessions::workspace_id.eq(workspace.to_string())),
    )
    .set((
        sessions::role.eq(role.as_str()),
        sessions::refresh_at.eq(refresh_at.unix_micros()),
    ))
    .execute_on(conn)?;
    Ok(updated > 0)
}

/// Records a person's sign-in: the row of their issuer and subject, created or updated.
pub(crate) fn record_person(
    conn: &mut DbConn,
    person: &PersonRecord,
) -> Result<PersonRecord, StoreError> {
    type Row = (String, String, String, String, Option<String>, i64, i64);
    let row: Row = diesel::insert_into(people::table)
        .values((
            people::id.eq(person.id.to_string()),
            people::issuer.eq(&person.issuer),
            people::subject.eq(&person.subject),
            people::name.eq(&person.name),
            people::email.eq(&person.email),
            people::created_at.eq(person.created_at.unix_micros()),
            people::signed_in_at.eq(person.signed_in_at.unix_micros()),
        ))
        .on_conflict((people::issuer, people::subject))
        .do_update()
        .set((
            people::name.eq(&person.name),
            people::email.eq(&person.email),
            people::signed_in_at.eq(person.signed_in_at.unix_micros()),
        ))
        .returning((
            people::id,
            people::issuer,
            people::subject,
            people::name,
            people::email,
            people::created_at,
            people::signed_in_at,
        ))
        .get_result_on(conn)?;
    let (id, issuer, subject, name, email, created_at, signed_in_at) = row;
    Ok(PersonRecord {
        id: PersonId::from_uuid(uuid(&id)?),
        issuer,
        subject,
        name,
        email,
        created_at: time(created_at)?,
        signed_in_at: time(signed_in_at)?,
    })
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

/// A workspace's live sessions (of one key or person when `owner` says so), newest first.
pub(crate) fn list(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    owner: Option<&SessionOwner>,
    now: i64,
) -> Result<Vec<SessionSummary>, StoreError> {
    type Row = (
        String,
        i64,
        i64,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let query = sessions::table
        .left_join(api_keys::table.on(sessions::api_key_id.eq(api_keys::id.nullable())))
        .left_join(people::table.on(sessions::person_id.eq(people::id.nullable())))
        .filter(sessions::workspace_id.eq(workspace.to_string()))
        .filter(sessions::expires_at.gt(now))
        .order((sessions::created_at.desc(), sessions::hash.desc()))
        .select((
            sessions::hash,
            sessions::created_at,
            sessions::expires_at,
            sessions::address,
            sessions::role,
            api_keys::id.nullable(),
            api_keys::name.nullable(),
            api_keys::role.nullable(),
            people::id.nullable(),
            people::name.nullable(),
            people::email.nullable(),
        ));
    let rows: Vec<Row> = match owner {
        None => query.load_on(conn)?,
        Some(SessionOwner::Key(key)) => query
            .filter(sessions::api_key_id.eq(key.to_string()))
            .load_on(conn)?,
        Some(SessionOwner::Person(person)) => query
            .filter(sessions::person_id.eq(person.to_string()))
            .load_on(conn)?,
    };
    rows.into_iter()
        .map(
            |(
                hash,
                created,
                expires,
                address,
                person_role,
                key,
                key_name,
                key_role,
                person,
                name,
                email,
            )| {
                let is_person = person.is_some();
                let (role, actor) = holder(
                    &hash,
                    Holder {
                        key,
                        key_name,
                        key_role,
                        person,
                        person_name: name,
                        person_role,
                    },
                )?;
                let email = email.filter(|_| is_person);
                Ok(SessionSummary {
                    hash: KeyHash::from_hex(&hash).ok_or_else(|| corrupt("session hash", &hash))?,
                    actor,
                    email,
                    role,
                    address,
                    created_at: time(created)?,
                    expires_at: time(expires)?,
                })
            },
        )
        .collect()
}

/// Ends a session of `workspace`; `false` when it has no such session.
pub(crate) fn delete_in(
    conn: &mut DbConn,
    workspace: WorkspaceId,
    hash: &KeyHash,
) -> Result<bool, StoreError> {
    Ok(diesel::delete(
        sessions::table
            .filter(sessions::hash.eq(hash.as_str()))
            .filter(sessions::workspace_id.eq(workspace.to_string())),
    )
    .execute_on(conn)?
        > 0)
}
