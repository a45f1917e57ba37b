//! API keys, signing keys, the master key's hash and dashboard sessions: their rows and the
//! `KeyStore` port.

use async_trait::async_trait;
use diesel::prelude::*;
use shiplog_app::ids::{ApiKeyId, ProjectId, SigningKeyRecordId, WorkspaceId};
use shiplog_app::model::{
    ApiKeyRecord, PersonRecord, SessionGrant, SessionHolder, SessionOwner, SessionRecord,
    SessionSummary, SigningKeyRecord,
};
use shiplog_app::ports::{KeyRef, KeyStore, KeyStoreError};
use shiplog_domain::key::{KeyHash, Role, SigningKeyId, SigningSecret};
use shiplog_domain::timestamp::Timestamp;

use crate::Store;
use crate::columns::{opt_time, parse_or_corrupt, time, uuid};
use crate::conn::Native;
use crate::error::{StoreError, corrupt};
use crate::schema::{api_keys, instance_settings, signing_keys};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = api_keys)]
pub(crate) struct ApiKeyRow {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub role: String,
    pub project_id: Option<String>,
    pub key_hash: String,
    pub hint: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl ApiKeyRow {
    pub(crate) fn from_record(k: &ApiKeyRecord) -> Self {
        Self {
            id: k.id.to_string(),
            workspace_id: k.workspace.to_string(),
            name: k.name.clone(),
            role: k.role.as_str().to_owned(),
            project_id: k.project.map(|p| p.to_string()),
            key_hash: k.hash.as_str().to_owned(),
            hint: k.hint.clone(),
            created_at: k.created_at.unix_micros(),
            expires_at: k.expires_at.map(Timestamp::unix_micros),
            last_used_at: k.last_used_at.map(Timestamp::unix_micros),
        }
    }

    pub(crate) fn into_record(self) -> Result<ApiKeyRecord, StoreError> {
        Ok(ApiKeyRecord {
            id: ApiKeyId::from_uuid(uuid(&self.id)?),
            workspace: WorkspaceId::from_uuid(uuid(&self.workspace_id)?),
            name: self.name,
            role: parse_or_corrupt!(Role, &self.role, "role")?,
            project: self
                .project_id
                .as_deref()
                .map(uuid)
                .transpose()?
                .map(ProjectId::from_uuid),
            hash: KeyHash::from_hex(&self.key_hash)
                .ok_or_else(|| corrupt("key hash", &self.key_hash))?,
            hint: self.hint,
            created_at: time(self.created_at)?,
            expires_at: opt_time(self.expires_at)?,
            last_used_at: opt_time(self.last_used_at)?,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = signing_keys)]
pub(crate) struct SigningKeyRow {
    pub id: String,
    pub workspace_id: String,
    pub key_id: String,
    pub name: String,
    pub secret: String,
    pub role: String,
    pub project_id: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl SigningKeyRow {
    pub(crate) fn from_record(k: &SigningKeyRecord) -> Self {
        Self {
            id: k.id.to_string(),
            workspace_id: k.workspace.to_string(),
            key_id: k.key_id.to_string(),
            name: k.name.clone(),
            secret: k.secret.reveal().to_owned(),
            role: k.role.as_str().to_owned(),
            project_id: k.project.map(|p| p.to_string()),
            created_at: k.created_at.unix_micros(),
            expires_at: k.expires_at.map(Timestamp::unix_micros),
            last_used_at: k.last_used_at.map(Timestamp::unix_micros),
        }
    }

    pub(crate) fn into_record(self) -> Result<SigningKeyRecord, StoreError> {
        Ok(SigningKeyRecord {
            id: SigningKeyRecordId::from_uuid(uuid(&self.id)?),
            workspace: WorkspaceId::from_uuid(uuid(&self.workspace_id)?),
            key_id: parse_or_corrupt!(SigningKeyId, &self.key_id, "signing key id")?,
            name: self.name,
            secret: SigningSecret::from_stored(self.secret),
            role: parse_or_corrupt!(Role, &self.role, "role")?,
            project: self
                .project_id
                .as_deref()
                .map(uuid)
                .transpose()?
                .map(ProjectId::from_uuid),
            created_at: time(self.created_at)?,
            expires_at: opt_time(self.expires_at)?,
            last_used_at: opt_time(self.last_used_at)?,
        })
    }
}

/// The `instance_settings` row that holds the master key's hash.
const MASTER_KEY_HASH: &str = "master_key_hash";

/// Inserts or replaces one instance setting (the same statement on both backends).
fn put_setting(
    conn: &mut crate::conn::DbConn,
    name: &str,
    value: &str,
    now: i64,
) -> Result<(), StoreError> {
    diesel::insert_into(instance_settings::table)
        .values((
            instance_settings::name.eq(name),
            instance_settings::value.eq(value),
            instance_settings::updated_at.eq(now),
        ))
        .on_conflict(instance_settings::name)
        .do_update()
        .set((
            instance_settings::value.eq(value),
            instance_settings::updated_at.eq(now),
        ))
        .execute_on(conn)?;
    Ok(())
}

#[async_trait]
impl KeyStore for Store {
    async fn create_api_key(&self, key: ApiKeyRecord) -> Result<(), KeyStoreError> {
        let row = ApiKeyRow::from_record(&key);
        Ok(self
            .write(move |conn| {
                diesel::insert_into(api_keys::table)
                    .values(&row)
                    .execute_on(conn)?;
                Ok(())
            })
            .await?)
    }

    async fn api_key_by_hash(&self, hash: &KeyHash) -> Result<Option<ApiKeyRecord>, KeyStoreError> {
        let key = hash.as_str().to_owned();
        let hash = key.clone();
        Ok(self
            .read_through(
                |inner| &inner.api_keys,
                key,
                move |conn| {
                    api_keys::table
                        .filter(api_keys::key_hash.eq(&hash))
                        .select(ApiKeyRow::as_select())
                        .first::<ApiKeyRow>(conn)
                        .optional()?
                        .map(ApiKeyRow::into_record)
                        .transpose()
                },
            )
            .await?)
    }

    async fn create_signing_key(&self, key: SigningKeyRecord) -> Result<(), KeyStoreError> {
        let row = SigningKeyRow::from_record(&key);
        Ok(self
            .write(move |conn| {
                diesel::insert_into(signing_keys::table)
                    .values(&row)
                    .execute_on(conn)?;
                Ok(())
            })
            .await?)
    }

    async fn signing_key(
        &self,
        id: &SigningKeyId,
    ) -> Result<Option<SigningKeyRecord>, KeyStoreError> {
        let key = id.to_string();
        let id = key.clone();
        Ok(self
            .read_through(
                |inner| &inner.signing_keys,
                key,
                move |conn| {
                    signing_keys::table
                        .filter(signing_keys::key_id.eq(&id))
                        .select(SigningKeyRow::as_select())
                        .first::<SigningKeyRow>(conn)
                        .optional()?
                        .map(SigningKeyRow::into_record)
                        .transpose()
                },
            )
            .await?)
    }

    async fn api_keys(&self, workspace: WorkspaceId) -> Result<Vec<ApiKeyRecord>, KeyStoreError> {
        Ok(self
            .read(move |conn| {
                api_keys::table
                    .filter(api_keys::workspace_id.eq(workspace.to_string()))
                    .order((api_keys::created_at.asc(), api_keys::id.asc()))
                    .select(ApiKeyRow::as_select())
                    .load::<ApiKeyRow>(conn)?
                    .into_iter()
                    .map(ApiKeyRow::into_record)
                    .collect()
            })
            .await?)
    }

    async fn signing_keys(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<SigningKeyRecord>, KeyStoreError> {
        Ok(self
            .read(move |conn| {
                signing_keys::table
                    .filter(signing_keys::workspace_id.eq(workspace.to_string()))
                    .order((signing_keys::created_at.asc(), signing_keys::id.asc()))
                    .select(SigningKeyRow::as_select())
                    .load::<SigningKeyRow>(conn)?
                    .into_iter()
                    .map(SigningKeyRow::into_record)
                    .collect()
            })
            .await?)
    }

    async fn delete_key(&self, workspace: WorkspaceId, key: KeyRef) -> Result<bool, KeyStoreError> {
        let workspace = workspace.to_string();
        let deleted = self
            .write(move |conn| {
                let deleted = match key {
                    KeyRef::Api(id) => diesel::delete(
                        api_keys::table
                            .filter(api_keys::workspace_id.eq(&workspace))
                            .filter(api_keys::id.eq(id.to_string())),
                    )
                    .execute_on(conn)?,
                    KeyRef::Signing(id) => diesel::delete(
                        signing_keys::table
                            .filter(signing_keys::workspace_id.eq(&workspace))
                            .filter(signing_keys::id.eq(id.to_string())),
                    )
                    .execute_on(conn)?,
                };
                Ok(deleted > 0)
            })
            .await;
        self.forget_key(key);
        Ok(deleted?)
    }

    async fn touch_key(&self, key: KeyRef, at: Timestamp) -> Result<(), KeyStoreError> {
        let at = at.unix_micros();
        let touched = self
            .write(move |conn| {
                match key {
                    KeyRef::Api(id) => {
                        diesel::update(api_keys::table.filter(api_keys::id.eq(id.to_string())))
                            .set(api_keys::last_used_at.eq(at))
                            .execute_on(conn)?;
                    }
                    KeyRef::Signing(id) => {
                        diesel::update(
                            signing_keys::table.filter(signing_keys::id.eq(id.to_string())),
                        )
                        .set(signing_keys::last_used_at.eq(at))
                        .execute_on(conn)?;
                    }
                }
                Ok(())
            })
            .await;
        // The copy's last use is stale now: read the row again next time.
        self.forget_key(key);
        Ok(touched?)
    }

    async fn master_key_hash(&self) -> Result<Option<KeyHash>, KeyStoreError> {
        Ok(self
            .read(|conn| {
                let stored = instance_settings::table
                    .filter(instance_settings::name.eq(MASTER_KEY_HASH))
                    .select(instance_settings::value)
                    .first_on::<String>(conn)
                    .optional()?;
                stored
                    .map(|hex| {
                        KeyHash::from_hex(&hex).ok_or_else(|| corrupt("master key hash", &hex))
                    })
                    .transpose()
            })
            .await?)
    }

    async fn set_master_key_hash(&self, hash: KeyHash, at: Timestamp) -> Result<(), KeyStoreError> {
        let now = at.unix_micros();
        Ok(self
            .write(move |conn| put_setting(conn, MASTER_KEY_HASH, hash.as_str(), now))
            .await?)
    }

    async fn create_session(
        &self,
        session: SessionRecord,
        keep_per_key: u32,
    ) -> Result<(), KeyStoreError> {
        Ok(self
            .write(move |conn| crate::sessions::create(conn, &session, keep_per_key))
            .await?)
    }

    async fn session(&self, hash: &KeyHash) -> Result<Option<SessionGrant>, KeyStoreError> {
        let hash = hash.clone();
        Ok(self
            .read(move |conn| crate::sessions::get(conn, &hash))
            .await?)
    }

    async fn refresh_session(
        &self,
        hash: &KeyHash,
        holder: SessionHolder,
        workspace: WorkspaceId,
    ) -> Result<bool, KeyStoreError> {
        let hash = hash.clone();
        Ok(self
            .write(move |conn| crate::sessions::refresh(conn, &hash, &holder, workspace))
            .await?)
    }

    async fn sessions(
        &self,
        workspace: WorkspaceId,
        owner: Option<SessionOwner>,
        now: Timestamp,
    ) -> Result<Vec<SessionSummary>, KeyStoreError> {
        let now = now.unix_micros();
        Ok(self
            .read(move |conn| crate::sessions::list(conn, workspace, owner.as_ref(), now))
            .await?)
    }

    async fn end_session(
        &self,
        workspace: WorkspaceId,
        hash: &KeyHash,
    ) -> Result<bool, KeyStoreError> {
        let hash = hash.clone();
        Ok(self
            .write(move |conn| crate::sessions::delete_in(conn, workspace, &hash))
            .await?)
    }

    async fn record_person(&self, person: PersonRecord) -> Result<PersonRecord, KeyStoreError> {
        Ok(self
            .write(move |conn| crate::sessions::record_person(conn, &person))
            .await?)
    }

    async fn delete_session(&self, hash: &KeyHash) -> Result<bool, KeyStoreError> {
        let hash = hash.clone();
        Ok(self
            .write(move |conn| crate::sessions::delete(conn, &hash))
            .await?)
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64, KeyStoreError> {
        let now = now.unix_micros();
        Ok(self
            .write(move |conn| crate::sessions::delete_expired(conn, now))
            .await?)
    }
}
