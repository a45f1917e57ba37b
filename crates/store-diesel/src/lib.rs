//! # shiplog-store
//!
//! The storage adapter: implements every store port of `shiplog-app` with diesel, for embedded
//! SQLite (the default; `libsqlite3-sys` is bundled, nothing to install) and PostgreSQL, chosen by
//! the database URL ([`DatabaseUrl`]). Queries are written once against a
//! `#[derive(MultiConnection)]` connection ([`conn::DbConn`]).
//!
//! - On SQLite, writes go through one writer thread that commits concurrent requests in groups,
//!   one savepoint per request; on PostgreSQL, through a pool of writer threads, one transaction
//!   per request ([`exec`]). A port method returns only after its commit is durable (SQLite WAL
//!   with `synchronous=FULL`, PostgreSQL `synchronous_commit=on`).
//! - Reads run on their own threads and connections and never wait behind the writer.
//! - SQLite migrates on open; PostgreSQL migrates on open unless disabled, or with
//!   [`migrations::migrate`] (`shiplog migrate`), under an advisory lock so two servers starting
//!   at once do not race.
//!
//! ## What this crate must never do
//! It never decides business rules (it calls `shiplog_app::ingest::decide` inside its transaction),
//! never reads the clock (times come with each call), never depends on actix-web or any HTTP crate,
//! never answers a write before it is durably committed, and never runs a blocking diesel call on
//! an async executor thread.
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use async_trait::async_trait;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use shiplog_app::hooks::{
    AttemptRecord, ClaimedDelivery, Delivery, DeliveryClaim, Hook, HookFilter, SecretText,
};
use shiplog_app::ids::{
    ApplicationId, DeliveryId, DeploymentId, HookId, IntegrationId, ProjectId, WorkspaceId,
};
use shiplog_app::ingest::{IngestPlan, IngestReceipt};
use shiplog_app::integrations::{IntegrationRecord, ReceivedDelivery};
use shiplog_app::model::{
    ApiKeyRecord, Application, BoardEntry, Deployment, Environment, PipelineEventRecord, Project,
    ProjectLookup, ReferenceView, SessionGrant, SessionRecord, SigningKeyRecord, Team, Workspace,
};
use shiplog_app::ports::{
    ApplicationStore, ApplicationStoreError, AssignmentPlan, BackendFailure, DeploymentPage,
    DeploymentQuery, DeploymentStore, DeploymentStoreError, DoraData, DoraQuery, EnvironmentStore,
    EnvironmentStoreError, HookStore, IncidentStore, IntegrationStore, KeyRef, KeyStore,
    KeyStoreError, PipelineEventStore, ProjectStore, ProjectStoreError, ReferenceStore, TeamStore,
    TeamStoreError, WorkspaceStore, WorkspaceStoreError,
};
use shiplog_domain::ids::{ApplicationCode, CommitSha, EnvironmentCode, TeamCode, WorkspaceCode};
use shiplog_domain::key::{KeyHash, SigningKeyId};
use shiplog_domain::reference::ReferenceKey;
use shiplog_domain::repo::RepoIdentity;
use shiplog_domain::timestamp::Timestamp;

pub mod cache;
mod changes;
pub mod conn;
mod dora_days;
mod error;
pub mod exec;
mod hooks;
mod incidents;
mod ingest;
mod integrations;
pub mod migrations;
mod queries;
mod rows;
mod schema;
mod sessions;
#[cfg(feature = "test-db")]
pub mod testdb;

pub use conn::{DatabaseUrl, OpenError};
pub use dora_days::PACK_AFTER;
pub use error::StoreError;
pub use exec::ExecOptions;

use crate::conn::Native;
use crate::exec::{Readers, Writer};
use crate::rows::{
    ApiKeyRow, ApplicationRow, EnvironmentRow, ProjectRow, SigningKeyRow, TeamRow, WorkspaceRow,
};
use crate::schema::{
    api_keys, applications, environments, instance_settings, projects, signing_keys, teams,
    workspaces,
};

/// The key of a project lookup in the project cache.
fn project_cache_key(lookup: &ProjectLookup) -> String {
    match lookup {
        ProjectLookup::Id(id) => format!("id {id}"),
        ProjectLookup::Slug(slug) => format!("slug {slug}"),
    }
}

/// The `instance_settings` row that holds the master key's hash.
const MASTER_KEY_HASH: &str = "master_key_hash";

/// What a call of [`Store::pack_dora_days`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Packing {
    /// Days it packed.
    pub packed: usize,
    /// Days over for long enough that are still not packed: beyond the call's `max`, changed
    /// while it packed them, or (PostgreSQL) waiting for transactions that were running.
    pub waiting: usize,
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Writer and reader tuning.
    pub exec: ExecOptions,
    /// Apply pending PostgreSQL migrations on open (SQLite always migrates on open).
    pub migrate_postgres: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            exec: ExecOptions::default(),
            migrate_postgres: true,
        }
    }
}

/// The store: every store port, over one database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    url: DatabaseUrl,
    /// The migrations applied when it opened.
    migrated: Vec<migrations::Applied>,
    api_keys: cache::Recent<String, ApiKeyRecord>,
    signing_keys: cache::Recent<String, SigningKeyRecord>,
    projects: cache::Recent<(WorkspaceId, String), Project>,
    // Readers first: dropped first, then the writer drains its queue.
    readers: Readers,
    writer: Writer,
}

impl Store {
    /// Opens (and, for SQLite, creates) the database, migrates it as configured and starts the
    /// writer and reader threads. Blocking: call it before serving, or off the async executor.
    pub fn open(url: &str, options: &StoreOptions) -> Result<Self, OpenError> {
        let url = DatabaseUrl::parse(url)?;
        let mut conn = url.connect()?;
        let migrate_fail = |reason: String| OpenError::Migrate {
            url: url.to_string(),
            reason,
        };
        let mut migrated = Vec::new();
        if !url.is_postgres() || options.migrate_postgres {
            migrated = migrations::run_pending(&mut conn).map_err(migrate_fail)?;
        } else if migrations::refuse_unknown(&mut conn)
            .and_then(|()| migrations::pending(&mut conn))
            .map_err(migrate_fail)?
            > 0
        {
            return Err(migrate_fail(
                "the database schema is behind this version of shiplog: run `shiplog migrate`"
                    .to_owned(),
            ));
        }
        let writer = Writer::start(url.clone(), conn, &options.exec);
        let readers = Readers::start(&url, options.exec.readers);
        Ok(Self {
            inner: Arc::new(Inner {
                migrated,
                url,
                api_keys: cache::Recent::new(),
                signing_keys: cache::Recent::new(),
                projects: cache::Recent::new(),
                readers,
                writer,
            }),
        })
    }

    /// The database, password hidden when displayed.
    pub fn url(&self) -> &DatabaseUrl {
        &self.inner.url
    }

    /// The migrations this store applied when it opened, with their durations.
    pub fn migrated(&self) -> &[migrations::Applied] {
        &self.inner.migrated
    }

    /// Checks that the database answers and takes a write (for readiness probes): a read on a
    /// reader, then one small committed write through the writer, so that a database that
    /// still reads but cannot write (an unwritable SQLite file, a read-only PostgreSQL) is not
    /// ready. Each probe costs one commit.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.inner
            .readers
            .run(|conn| Ok(conn.batch_execute("SELECT 1")?))
            .await?;
        self.write(|conn| {
            Ok(conn.batch_execute(
                "INSERT INTO instance_settings (name, value, updated_at) \
                 VALUES ('readiness_probe', 'ok', 0) \
                 ON CONFLICT (name) DO UPDATE SET value = 'ok'",
            )?)
        })
        .await
    }

    /// Packs up to `max` days of DORA records that were over [`PACK_AFTER`] before `now` and
    /// before the database's clock (see the `dora_days` module): a DORA query then reads one
    /// row per packed day instead of its deployments. Packing changes no report; it runs in
    /// write jobs of a few days each, so ingest never waits long behind it. On PostgreSQL a day
    /// is packed once every transaction that was running when this call marked it has ended:
    /// normally within the call, else by a later one ([`Packing::waiting`]). The server calls
    /// it in the background (`shiplog_server::run_dora_packer`).
    pub async fn pack_dora_days(&self, now: Timestamp, max: usize) -> Result<Packing, StoreError> {
        let now = now.unix_micros();
        let horizon = self
            .write(move |conn| dora_days::prepare(conn, now))
            .await?;
        if self.inner.url.is_postgres() {
            // In a transaction of its own, after the marks are visible to every later one.
            self.write(dora_days::fence).await?;
        }
        let mut packing = Packing::default();
        let mut taken = 0;
        while taken < max {
            let chunk = dora_days::DAYS_PER_JOB.min(max - taken);
            let (took, packed) = self
                .write(move |conn| dora_days::pack(conn, horizon, chunk))
                .await?;
            taken += took;
            packing.packed += packed;
            if took < chunk {
                break;
            }
        }
        packing.waiting = self
            .read(move |conn| dora_days::unpacked(conn, horizon))
            .await?;
        Ok(packing)
    }

    /// Drops this process's copy of a key (after it was revoked or used).
    fn forget_key(&self, key: KeyRef) {
        match key {
            KeyRef::Api(id) => self.inner.api_keys.forget(|k| k.id == id),
            KeyRef::Signing(id) => self.inner.signing_keys.forget(|k| k.id == id),
        }
    }

    async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnMut(&mut conn::DbConn) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.inner.writer.run(op).await
    }

    async fn read<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnMut(&mut conn::DbConn) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.inner.readers.run(op).await
    }
}

#[async_trait]
impl WorkspaceStore for Store {
    async fn create(&self, workspace: Workspace) -> Result<(), WorkspaceStoreError> {
        let code = workspace.code.clone();
        let row = WorkspaceRow::from_record(&workspace);
        self.write(move |conn| {
            diesel::insert_into(workspaces::table)
                .values(&row)
                .execute(conn)?;
            Ok(())
        })
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                WorkspaceStoreError::CodeTaken(code)
            } else {
                e.into()
            }
        })
    }

    async fn by_code(
        &self,
        code: &WorkspaceCode,
    ) -> Result<Option<Workspace>, WorkspaceStoreError> {
        let code = code.to_string();
        Ok(self
            .read(move |conn| {
                workspaces::table
                    .filter(workspaces::code.eq(&code))
                    .select(WorkspaceRow::as_select())
                    .first::<WorkspaceRow>(conn)
                    .optional()?
                    .map(WorkspaceRow::into_record)
                    .transpose()
            })
            .await?)
    }

    async fn list(&self) -> Result<Vec<Workspace>, WorkspaceStoreError> {
        Ok(self
            .read(move |conn| {
                workspaces::table
                    .order(workspaces::code.asc())
                    .select(WorkspaceRow::as_select())
                    .load::<WorkspaceRow>(conn)?
                    .into_iter()
                    .map(WorkspaceRow::into_record)
                    .collect()
            })
            .await?)
    }
}

#[async_trait]
impl KeyStore for Store {
    async fn create_api_key(&self, key: ApiKeyRecord) -> Result<(), KeyStoreError> {
        let row = ApiKeyRow::from_record(&key);
        Ok(self
            .write(move |conn| {
                diesel::insert_into(api_keys::table)
                    .values(&row)
                    .execute(conn)?;
                Ok(())
            })
            .await?)
    }

    async fn api_key_by_hash(&self, hash: &KeyHash) -> Result<Option<ApiKeyRecord>, KeyStoreError> {
        let hash = hash.as_str().to_owned();
        if let Some(found) = self.inner.api_keys.get(&hash) {
            return Ok(Some(found));
        }
        let key = hash.clone();
        let found = self
            .read(move |conn| {
                api_keys::table
                    .filter(api_keys::key_hash.eq(&key))
                    .select(ApiKeyRow::as_select())
                    .first::<ApiKeyRow>(conn)
                    .optional()?
                    .map(ApiKeyRow::into_record)
                    .transpose()
            })
            .await?;
        if let Some(record) = &found {
            self.inner.api_keys.put(hash, record.clone());
        }
        Ok(found)
    }

    async fn create_signing_key(&self, key: SigningKeyRecord) -> Result<(), KeyStoreError> {
        let row = SigningKeyRow::from_record(&key);
        Ok(self
            .write(move |conn| {
                diesel::insert_into(signing_keys::table)
                    .values(&row)
                    .execute(conn)?;
                Ok(())
            })
            .await?)
    }

    async fn signing_key(
        &self,
        id: &SigningKeyId,
    ) -> Result<Option<SigningKeyRecord>, KeyStoreError> {
        let id = id.to_string();
        if let Some(found) = self.inner.signing_keys.get(&id) {
            return Ok(Some(found));
        }
        let key = id.clone();
        let found = self
            .read(move |conn| {
                signing_keys::table
                    .filter(signing_keys::key_id.eq(&key))
                    .select(SigningKeyRow::as_select())
                    .first::<SigningKeyRow>(conn)
                    .optional()?
                    .map(SigningKeyRow::into_record)
                    .transpose()
            })
            .await?;
        if let Some(record) = &found {
            self.inner.signing_keys.put(id, record.clone());
        }
        Ok(found)
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
                    .execute(conn)?,
                    KeyRef::Signing(id) => diesel::delete(
                        signing_keys::table
                            .filter(signing_keys::workspace_id.eq(&workspace))
                            .filter(signing_keys::id.eq(id.to_string())),
                    )
                    .execute(conn)?,
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
                            .execute(conn)?;
                    }
                    KeyRef::Signing(id) => {
                        diesel::update(
                            signing_keys::table.filter(signing_keys::id.eq(id.to_string())),
                        )
                        .set(signing_keys::last_used_at.eq(at))
                        .execute(conn)?;
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
                    .first::<String>(conn)
                    .optional()?;
                stored
                    .map(|hex| {
                        KeyHash::from_hex(&hex)
                            .ok_or_else(|| error::corrupt("master key hash", &hex))
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
            .write(move |conn| sessions::create(conn, &session, keep_per_key))
            .await?)
    }

    async fn session(&self, hash: &KeyHash) -> Result<Option<SessionGrant>, KeyStoreError> {
        let hash = hash.clone();
        Ok(self.read(move |conn| sessions::get(conn, &hash)).await?)
    }

    async fn delete_session(&self, hash: &KeyHash) -> Result<bool, KeyStoreError> {
        let hash = hash.clone();
        Ok(self
            .write(move |conn| sessions::delete(conn, &hash))
            .await?)
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64, KeyStoreError> {
        let now = now.unix_micros();
        Ok(self
            .write(move |conn| sessions::delete_expired(conn, now))
            .await?)
    }
}

/// Inserts or replaces one instance setting (the same statement on both backends).
fn put_setting(
    conn: &mut conn::DbConn,
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
impl ProjectStore for Store {
    async fn create(&self, project: Project) -> Result<(), ProjectStoreError> {
        let slug = project.slug.clone();
        let row = ProjectRow::from_record(&project);
        self.write(move |conn| {
            diesel::insert_into(projects::table)
                .values(&row)
                .execute(conn)?;
            Ok(())
        })
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                ProjectStoreError::SlugTaken(slug)
            } else {
                e.into()
            }
        })
    }

    async fn get(
        &self,
        workspace: WorkspaceId,
        lookup: &ProjectLookup,
    ) -> Result<Option<Project>, ProjectStoreError> {
        let cached = (workspace, project_cache_key(lookup));
        if let Some(found) = self.inner.projects.get(&cached) {
            return Ok(Some(found));
        }
        let lookup = lookup.clone();
        let found = self
            .read(move |conn| {
                let query = projects::table
                    .filter(projects::workspace_id.eq(workspace.to_string()))
                    .select(ProjectRow::as_select())
                    .into_boxed();
                let query = match &lookup {
                    ProjectLookup::Id(id) => query.filter(projects::id.eq(id.to_string())),
                    ProjectLookup::Slug(slug) => query.filter(projects::slug.eq(slug.to_string())),
                };
                query
                    .first::<ProjectRow>(conn)
                    .optional()?
                    .map(ProjectRow::into_record)
                    .transpose()
            })
            .await?;
        if let Some(project) = &found {
            self.inner.projects.put(cached, project.clone());
        }
        Ok(found)
    }

    async fn list(&self, workspace: WorkspaceId) -> Result<Vec<Project>, ProjectStoreError> {
        Ok(self
            .read(move |conn| {
                projects::table
                    .filter(projects::workspace_id.eq(workspace.to_string()))
                    .order(projects::slug.asc())
                    .select(ProjectRow::as_select())
                    .load::<ProjectRow>(conn)?
                    .into_iter()
                    .map(ProjectRow::into_record)
                    .collect()
            })
            .await?)
    }

    async fn set_hotfix_patterns(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
        patterns: Option<Vec<String>>,
    ) -> Result<(), ProjectStoreError> {
        let column = rows::patterns_column(patterns.as_deref());
        self.write(move |conn| {
            diesel::update(
                projects::table
                    .filter(projects::workspace_id.eq(workspace.to_string()))
                    .filter(projects::id.eq(project.to_string())),
            )
            .set(projects::hotfix_patterns.eq(column.clone()))
            .execute(conn)?;
            Ok(())
        })
        .await?;
        // This server's ingests use the new patterns from the next request on.
        self.inner.projects.forget(|p| p.id == project);
        Ok(())
    }
}

#[async_trait]
impl TeamStore for Store {
    async fn create(&self, team: Team) -> Result<(), TeamStoreError> {
        let code = team.code.clone();
        let row = TeamRow::from_record(&team);
        self.write(move |conn| {
            diesel::insert_into(teams::table)
                .values(&row)
                .execute(conn)?;
            Ok(())
        })
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                TeamStoreError::CodeTaken(code)
            } else {
                e.into()
            }
        })
    }

    async fn get(
        &self,
        workspace: WorkspaceId,
        code: &TeamCode,
    ) -> Result<Option<Team>, TeamStoreError> {
        let code = code.to_string();
        Ok(self
            .read(move |conn| {
                teams::table
                    .filter(teams::workspace_id.eq(workspace.to_string()))
                    .filter(teams::code.eq(&code))
                    .select(TeamRow::as_select())
                    .first::<TeamRow>(conn)
                    .optional()?
                    .map(TeamRow::into_record)
                    .transpose()
            })
            .await?)
    }

    async fn list(&self, workspace: WorkspaceId) -> Result<Vec<Team>, TeamStoreError> {
        Ok(self
            .read(move |conn| {
                teams::table
                    .filter(teams::workspace_id.eq(workspace.to_string()))
                    .order(teams::code.asc())
                    .select(TeamRow::as_select())
                    .load::<TeamRow>(conn)?
                    .into_iter()
                    .map(TeamRow::into_record)
                    .collect()
            })
            .await?)
    }
}

#[async_trait]
impl ApplicationStore for Store {
    async fn set_source_provider(
        &self,
        workspace: WorkspaceId,
        id: ApplicationId,
        provider: String,
        token: SecretText,
    ) -> Result<bool, ApplicationStoreError> {
        Ok(self
            .write(move |conn| {
                let updated = diesel::update(
                    applications::table
                        .filter(applications::workspace_id.eq(workspace.to_string()))
                        .filter(applications::id.eq(id.to_string())),
                )
                .set((
                    applications::source_provider.eq(&provider),
                    applications::source_token.eq(token.reveal()),
                ))
                .execute(conn)?;
                Ok(updated > 0)
            })
            .await?)
    }

    async fn create(&self, application: Application) -> Result<(), ApplicationStoreError> {
        let code = application.code.clone();
        let row = ApplicationRow::from_record(&application);
        self.write(move |conn| {
            diesel::insert_into(applications::table)
                .values(&row)
                .execute(conn)?;
            Ok(())
        })
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                ApplicationStoreError::CodeTaken(code)
            } else {
                e.into()
            }
        })
    }

    async fn get(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
        code: &ApplicationCode,
    ) -> Result<Option<Application>, ApplicationStoreError> {
        let code = code.to_string();
        Ok(self
            .read(move |conn| {
                applications::table
                    .filter(applications::workspace_id.eq(workspace.to_string()))
                    .filter(applications::project_id.eq(project.to_string()))
                    .filter(applications::code.eq(&code))
                    .select(ApplicationRow::as_select())
                    .first::<ApplicationRow>(conn)
                    .optional()?
                    .map(ApplicationRow::into_record)
                    .transpose()
            })
            .await?)
    }

    async fn by_repo(
        &self,
        workspace: WorkspaceId,
        repo: &RepoIdentity,
    ) -> Result<Vec<Application>, ApplicationStoreError> {
        let repo = repo.to_string();
        Ok(self
            .read(move |conn| {
                applications::table
                    .filter(applications::workspace_id.eq(workspace.to_string()))
                    .filter(applications::repo.eq(&repo))
                    .order(applications::created_at.asc())
                    .select(ApplicationRow::as_select())
                    .load::<ApplicationRow>(conn)?
                    .into_iter()
                    .map(ApplicationRow::into_record)
                    .collect()
            })
            .await?)
    }

    async fn list(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
    ) -> Result<Vec<Application>, ApplicationStoreError> {
        Ok(self
            .read(move |conn| {
                applications::table
                    .filter(applications::workspace_id.eq(workspace.to_string()))
                    .filter(applications::project_id.eq(project.to_string()))
                    .order(applications::code.asc())
                    .select(ApplicationRow::as_select())
                    .load::<ApplicationRow>(conn)?
                    .into_iter()
                    .map(ApplicationRow::into_record)
                    .collect()
            })
            .await?)
    }
    async fn by_id(
        &self,
        workspace: WorkspaceId,
        id: ApplicationId,
    ) -> Result<Option<Application>, ApplicationStoreError> {
        Ok(self
            .read(move |conn| {
                applications::table
                    .filter(applications::workspace_id.eq(workspace.to_string()))
                    .filter(applications::id.eq(id.to_string()))
                    .select(ApplicationRow::as_select())
                    .first::<ApplicationRow>(conn)
                    .optional()?
                    .map(ApplicationRow::into_record)
                    .transpose()
            })
            .await?)
    }
}

#[async_trait]
impl EnvironmentStore for Store {
    async fn create(
        &self,
        environment: Environment,
        position: Option<i32>,
    ) -> Result<Environment, EnvironmentStoreError> {
        let code = environment.code.clone();
        self.write(move |conn| queries::create_environment(conn, &environment, position))
            .await
            .map_err(|e| {
                if e.is_unique_violation() {
                    EnvironmentStoreError::CodeTaken(code)
                } else {
                    e.into()
                }
            })
    }

    async fn get(
        &self,
        workspace: WorkspaceId,
        code: &EnvironmentCode,
    ) -> Result<Option<Environment>, EnvironmentStoreError> {
        let code = code.to_string();
        Ok(self
            .read(move |conn| {
                environments::table
                    .filter(environments::workspace_id.eq(workspace.to_string()))
                    .filter(environments::code.eq(&code))
                    .select(EnvironmentRow::as_select())
                    .first::<EnvironmentRow>(conn)
                    .optional()?
                    .map(EnvironmentRow::into_record)
                    .transpose()
            })
            .await?)
    }

    async fn list(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<Environment>, EnvironmentStoreError> {
        Ok(self
            .read(move |conn| {
                environments::table
                    .filter(environments::workspace_id.eq(workspace.to_string()))
                    .order((environments::position.asc(), environments::code.asc()))
                    .select(EnvironmentRow::as_select())
                    .load::<EnvironmentRow>(conn)?
                    .into_iter()
                    .map(EnvironmentRow::into_record)
                    .collect()
            })
            .await?)
    }

    async fn assign(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
        plans: Vec<AssignmentPlan>,
        at: Timestamp,
    ) -> Result<usize, EnvironmentStoreError> {
        Ok(self
            .write(move |conn| queries::assign(conn, workspace, project, &plans, at))
            .await?)
    }

    async fn board(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
    ) -> Result<Vec<BoardEntry>, EnvironmentStoreError> {
        Ok(self
            .read(move |conn| queries::board(conn, workspace, project))
            .await?)
    }
}

#[async_trait]
impl DeploymentStore for Store {
    async fn ingest(&self, plan: IngestPlan) -> Result<IngestReceipt, DeploymentStoreError> {
        Ok(self.write(move |conn| ingest::ingest(conn, &plan)).await?)
    }

    async fn changes_after(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<shiplog_app::ports::EventChanges, DeploymentStoreError> {
        Ok(self
            .read(move |conn| changes::after(conn, after, limit))
            .await?)
    }

    async fn get(
        &self,
        workspace: WorkspaceId,
        id: DeploymentId,
    ) -> Result<Option<Deployment>, DeploymentStoreError> {
        Ok(self
            .read(move |conn| queries::get_deployment(conn, workspace, id))
            .await?)
    }

    async fn list(
        &self,
        workspace: WorkspaceId,
        query: DeploymentQuery,
    ) -> Result<DeploymentPage, DeploymentStoreError> {
        Ok(self
            .read(move |conn| queries::list_deployments(conn, workspace, &query))
            .await?)
    }

    async fn dora(
        &self,
        workspace: WorkspaceId,
        query: DoraQuery,
    ) -> Result<DoraData, DeploymentStoreError> {
        Ok(self
            .read(move |conn| queries::dora(conn, workspace, &query))
            .await?)
    }

    async fn sight_commits(
        &self,
        workspace: WorkspaceId,
        commits: Vec<(CommitSha, Timestamp)>,
    ) -> Result<(), DeploymentStoreError> {
        Ok(self
            .write(move |conn| ingest::sight_commits(conn, workspace, &commits))
            .await?)
    }

    async fn link_commit_references(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
        commits: Vec<CommitSha>,
        key: ReferenceKey,
        at: Timestamp,
    ) -> Result<usize, DeploymentStoreError> {
        Ok(self
            .write(move |conn| {
                ingest::link_commit_references(conn, workspace, project, &commits, &key, at)
            })
            .await?)
    }
}

#[async_trait]
impl IncidentStore for Store {
    async fn upsert_incident(
        &self,
        update: shiplog_app::incidents::IncidentUpdate,
    ) -> Result<(shiplog_app::incidents::Incident, bool), BackendFailure> {
        Ok(self
            .write(move |conn| incidents::upsert(conn, &update))
            .await?)
    }

    async fn patch_incident(
        &self,
        workspace: WorkspaceId,
        id: shiplog_app::ids::IncidentId,
        patch: shiplog_app::incidents::IncidentPatch,
        at: Timestamp,
    ) -> Result<Option<shiplog_app::incidents::Incident>, BackendFailure> {
        Ok(self
            .write(move |conn| incidents::patch(conn, workspace, id, &patch, at))
            .await?)
    }

    async fn incident(
        &self,
        workspace: WorkspaceId,
        id: shiplog_app::ids::IncidentId,
    ) -> Result<Option<shiplog_app::incidents::Incident>, BackendFailure> {
        Ok(self
            .read(move |conn| incidents::get(conn, workspace, id))
            .await?)
    }

    async fn incidents(
        &self,
        workspace: WorkspaceId,
        query: shiplog_app::incidents::IncidentQuery,
    ) -> Result<Vec<shiplog_app::incidents::Incident>, BackendFailure> {
        Ok(self
            .read(move |conn| incidents::list(conn, workspace, &query))
            .await?)
    }
}

#[async_trait]
impl IntegrationStore for Store {
    async fn create_integration(
        &self,
        integration: IntegrationRecord,
    ) -> Result<(), BackendFailure> {
        Ok(self
            .write(move |conn| integrations::create(conn, &integration))
            .await?)
    }

    async fn integration(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<Option<IntegrationRecord>, BackendFailure> {
        Ok(self
            .read(move |conn| integrations::get(conn, workspace, id))
            .await?)
    }

    async fn integration_by_id(
        &self,
        id: IntegrationId,
    ) -> Result<Option<IntegrationRecord>, BackendFailure> {
        Ok(self.read(move |conn| integrations::by_id(conn, id)).await?)
    }

    async fn integrations(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<IntegrationRecord>, BackendFailure> {
        Ok(self
            .read(move |conn| integrations::list(conn, workspace))
            .await?)
    }

    async fn update_integration(
        &self,
        integration: IntegrationRecord,
    ) -> Result<bool, BackendFailure> {
        Ok(self
            .write(move |conn| integrations::update(conn, &integration))
            .await?)
    }

    async fn delete_integration(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<bool, BackendFailure> {
        Ok(self
            .write(move |conn| integrations::delete(conn, workspace, id))
            .await?)
    }

    async fn record_received(
        &self,
        received: ReceivedDelivery,
        keep: u32,
    ) -> Result<(), BackendFailure> {
        Ok(self
            .write(move |conn| integrations::record_received(conn, &received, keep))
            .await?)
    }

    async fn received(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        limit: u32,
    ) -> Result<Vec<ReceivedDelivery>, BackendFailure> {
        Ok(self
            .read(move |conn| integrations::received(conn, workspace, id, limit))
            .await?)
    }
}

#[async_trait]
impl PipelineEventStore for Store {
    async fn for_deployment(
        &self,
        workspace: WorkspaceId,
        deployment: DeploymentId,
    ) -> Result<Vec<PipelineEventRecord>, BackendFailure> {
        Ok(self
            .read(move |conn| queries::events_for_deployment(conn, workspace, deployment))
            .await?)
    }

    async fn for_commit(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
        commit: CommitSha,
        limit: u32,
    ) -> Result<Vec<PipelineEventRecord>, BackendFailure> {
        Ok(self
            .read(move |conn| queries::events_for_commit(conn, workspace, project, &commit, limit))
            .await?)
    }
}

#[async_trait]
impl ReferenceStore for Store {
    async fn get(
        &self,
        workspace: WorkspaceId,
        project: ProjectId,
        key: &ReferenceKey,
    ) -> Result<Option<ReferenceView>, BackendFailure> {
        let key = key.clone();
        Ok(self
            .read(move |conn| queries::get_reference(conn, workspace, project, &key))
            .await?)
    }
}

#[async_trait]
impl HookStore for Store {
    async fn create_hook(&self, hook: Hook, max_per_project: u32) -> Result<bool, BackendFailure> {
        Ok(self
            .write(move |conn| hooks::create_hook(conn, &hook, max_per_project))
            .await?)
    }

    async fn hook(
        &self,
        workspace: WorkspaceId,
        id: HookId,
    ) -> Result<Option<Hook>, BackendFailure> {
        Ok(self
            .read(move |conn| hooks::get_hook(conn, workspace, id))
            .await?)
    }

    async fn hooks(
        &self,
        workspace: WorkspaceId,
        filter: HookFilter,
    ) -> Result<Vec<Hook>, BackendFailure> {
        Ok(self
            .read(move |conn| hooks::list_hooks(conn, workspace, filter))
            .await?)
    }

    async fn update_hook(&self, hook: Hook) -> Result<bool, BackendFailure> {
        Ok(self
            .write(move |conn| hooks::update_hook(conn, &hook))
            .await?)
    }

    async fn delete_hook(
        &self,
        workspace: WorkspaceId,
        id: HookId,
    ) -> Result<bool, BackendFailure> {
        Ok(self
            .write(move |conn| hooks::delete_hook(conn, workspace, id))
            .await?)
    }

    async fn claim_deliveries(
        &self,
        claim: DeliveryClaim,
    ) -> Result<Vec<ClaimedDelivery>, BackendFailure> {
        let ids = self.write(move |conn| hooks::claim(conn, &claim)).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .read(move |conn| hooks::load_claimed(conn, &ids))
            .await?)
    }

    async fn record_attempt(&self, record: AttemptRecord) -> Result<(), BackendFailure> {
        Ok(self
            .write(move |conn| hooks::record_attempt(conn, &record))
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
                hooks::deliveries(conn, workspace, hooks::DeliveriesOf::Hook(hook), limit)
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
                let of = hooks::DeliveriesOf::Deployment(deployment);
                hooks::deliveries(conn, workspace, of, limit)
            })
            .await?)
    }

    async fn delivery(
        &self,
        workspace: WorkspaceId,
        id: DeliveryId,
    ) -> Result<Option<Delivery>, BackendFailure> {
        Ok(self
            .read(move |conn| hooks::delivery(conn, workspace, id))
            .await?)
    }

    async fn redeliver(
        &self,
        workspace: WorkspaceId,
        id: DeliveryId,
        at: Timestamp,
    ) -> Result<bool, BackendFailure> {
        Ok(self
            .write(move |conn| hooks::redeliver(conn, workspace, id, at))
            .await?)
    }

    async fn record_test_delivery(
        &self,
        workspace: WorkspaceId,
        delivery: Delivery,
    ) -> Result<(), BackendFailure> {
        Ok(self
            .write(move |conn| hooks::record_test_delivery(conn, workspace, &delivery))
            .await?)
    }
}
