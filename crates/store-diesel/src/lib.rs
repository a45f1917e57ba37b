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

use diesel::connection::SimpleConnection;
use shiplog_app::ids::WorkspaceId;
use shiplog_app::model::{ApiKeyRecord, Project, SigningKeyRecord};
use shiplog_app::ports::KeyRef;
use shiplog_domain::timestamp::Timestamp;

mod applications;
pub mod backup;
pub mod cache;
mod columns;
pub mod conn;
mod deployments;
mod environments;
mod error;
pub mod exec;
mod hooks;
mod incidents;
mod integrations;
mod keys;
mod lifecycle;
pub mod migrations;
mod projects;
mod schema;
mod sessions;
mod teams;
#[cfg(feature = "test-db")]
pub mod testdb;
mod workspaces;

pub use conn::{DatabaseUrl, OpenError};
pub use deployments::dora_days::PACK_AFTER;
pub use error::StoreError;
pub use exec::ExecOptions;

use crate::exec::{Readers, Writer};

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
            .write(move |conn| deployments::dora_days::prepare(conn, now))
            .await?;
        if self.inner.url.is_postgres() {
            // In a transaction of its own, after the marks are visible to every later one.
            self.write(deployments::dora_days::fence).await?;
        }
        let mut packing = Packing::default();
        let mut taken = 0;
        while taken < max {
            let chunk = deployments::dora_days::DAYS_PER_JOB.min(max - taken);
            let (took, packed) = self
                .write(move |conn| deployments::dora_days::pack(conn, horizon, chunk))
                .await?;
            taken += took;
            packing.packed += packed;
            if took < chunk {
                break;
            }
        }
        packing.waiting = self
            .read(move |conn| deployments::dora_days::unpacked(conn, horizon))
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

    /// Drops this process's copies of projects and keys (after a deletion: a deleted project,
    /// or a deleted workspace's keys, must not be found here).
    fn forget_all_copies(&self) {
        self.inner.projects.forget(|_| true);
        self.inner.api_keys.forget(|_| true);
        self.inner.signing_keys.forget(|_| true);
    }

    /// What `load` finds, read through one of this process's copies (`cache`): a copy kept
    /// less than [`cache::TTL`] ago is answered without a database round trip; a row read is
    /// kept (only found rows are, so one created elsewhere is seen at once).
    async fn read_through<K, V, F>(
        &self,
        cache: fn(&Inner) -> &cache::Recent<K, V>,
        key: K,
        load: F,
    ) -> Result<Option<V>, StoreError>
    where
        K: Eq + std::hash::Hash,
        V: Clone + Send + 'static,
        F: FnMut(&mut conn::DbConn) -> Result<Option<V>, StoreError> + Send + 'static,
    {
        if let Some(found) = cache(&self.inner).get(&key) {
            return Ok(Some(found));
        }
        let found = self.read(load).await?;
        if let Some(value) = &found {
            cache(&self.inner).put(key, value.clone());
        }
        Ok(found)
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
