//! Where diesel runs: the writers, and a few reader threads.
//!
//! Diesel is blocking, so no diesel call ever runs on an async executor thread: async callers
//! send a job over a channel and await its result on a oneshot. A port method returns only after
//! its write is durably committed.
//!
//! **SQLite: one writer, group commit.** SQLite has one write lock per file, so one writer
//! thread takes the first queued job, then everything else already queued (up to `max_batch`,
//! waiting at most `max_wait` for more), and runs the batch in one transaction (`BEGIN
//! IMMEDIATE`). The jobs first run one after the other with no savepoint. If one fails, the
//! writer rolls the whole transaction back and runs the batch again, each job inside its own
//! savepoint, so that a job's error rolls back only its savepoint and goes to its caller alone
//! (a savepoint costs: SQLite copies every page a job changes into the savepoint's journal
//! first). After `COMMIT` (one fsync for the whole batch) every caller gets its result; if the
//! commit fails, every caller of the batch gets an error and nothing of the batch is visible.
//! Copying the write-ahead log into the database file (a checkpoint) is left to a thread of its
//! own (`checkpoints`), so the writer never stops to do it.
//!
//! **PostgreSQL: a pool of writers.** PostgreSQL runs concurrent transactions and groups their
//! commits' WAL flushes itself, so `postgres_writers` threads, each with its own connection,
//! take jobs from one queue and run each in a transaction of its own. Concurrent jobs can meet
//! on the same rows: the ingest reads the deployment it changes `FOR UPDATE`, and a job that
//! lost a race on a unique key, a deadlock or a serialization failure is rerun whole (up to
//! [`MAX_ATTEMPTS`] times; it then sees the winner's row), which is why a write job is `FnMut`.
//!
//! Why threads owning connections rather than r2d2 or diesel-async: diesel is blocking, so a job
//! needs a thread anyway; a thread that owns its connection needs no checkout, reconnects by itself
//! after a failure, and the bounded queue in front of the pool is the back-pressure.
//!
//! **Checkpoints.** Checkpoints (copying the write-ahead log into the database file) run on
//! `shiplog-checkpointer`, a thread with its own connection that the writer wakes every 500
//! committed jobs (`exec::checkpoints`); the writer's connection has `wal_autocheckpoint = 0`, so
//! no group commit waits for most of a checkpoint any more (it checkpoints itself again if that
//! thread is gone). After each of that thread's checkpoints the writer, between two batches, copies
//! what it committed meanwhile (`Checkpointer::finish`): SQLite writes the log from its start again
//! only when a writer begins with all of it copied, which a checkpoint running beside a busy writer
//! never achieves, so without this step the log grew for as long as the load lasted (1.4 GB after
//! 12 s of `bench http`; 54 MB with it). That short checkpoint is the price of a bounded log: it
//! roughly doubles the SQLite ingest p99 (docs/benchmarks.md).
//!
//! **Reads after a restart.** A read that finds its connection gone (the database restarted since
//! it was opened) runs once more on a fresh connection: reads change nothing, and since
//! authentication and project lookups are served from copies, nothing else would have noticed the
//! dead connection before a client's listing did. A write is not rerun after a lost connection (its
//! commit may have happened); its caller gets the 503 and retries, which the idempotent ingest
//! makes safe.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use tokio::sync::{mpsc, oneshot};

use crate::conn::{DatabaseUrl, DbConn, per_backend};
use crate::error::StoreError;

/// Tuning of the writer and the readers.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// The most jobs one commit carries.
    pub max_batch: usize,
    /// How long the writer waits for more jobs once it has one (zero: take what is queued).
    pub max_wait: Duration,
    /// How many write jobs may wait; senders wait beyond that.
    pub queue: usize,
    /// How many reader threads (each with its own connection).
    pub readers: usize,
    /// PostgreSQL: how many writer threads, each with its own connection (SQLite always has
    /// one writer).
    pub postgres_writers: usize,
}

impl Default for ExecOptions {
    fn default() -> Self {
        Self {
            max_batch: 256,
            max_wait: Duration::ZERO,
            queue: 4096,
            readers: 4,
            postgres_writers: 16,
        }
    }
}

/// Why a batch (or a job of it) did not commit; shared by every caller of the batch, so the
/// driver's error is behind an `Arc`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BatchFailure {
    /// No connection could be opened.
    #[error("the database is unreachable")]
    Unreachable,
    /// `BEGIN` failed.
    #[error("cannot begin a transaction")]
    Begin(#[source] Arc<DieselError>),
    /// `COMMIT` failed: nothing of the batch is stored.
    #[error("the commit failed")]
    Commit(#[source] Arc<DieselError>),
    /// A request of the batch panicked; the batch was rolled back.
    #[error("a request of the same batch panicked; the batch was rolled back")]
    Panicked,
}

/// How many times a PostgreSQL write job runs when deadlocks or serialization failures keep
/// aborting it.
pub const MAX_ATTEMPTS: u32 = 5;

/// A write job: runs against the connection inside a batch's transaction (with no savepoint,
/// or inside a savepoint of its own) and answers once the batch's fate is known, or runs in a
/// transaction of its own, or is aborted unrun.
trait WriteJob: Send {
    /// Runs inside the batch's transaction, in a savepoint of its own or not, and keeps its
    /// result (replacing any kept before); returns whether it succeeded.
    fn run(&mut self, conn: &mut DbConn, savepoint: bool) -> bool;
    /// Answers its caller with its kept result, once the batch's commit is known.
    fn complete(self: Box<Self>, commit: Result<(), BatchFailure>);
    /// Runs in its own transaction, rerun while the failure is transient, and answers its
    /// caller; returns whether the connection is still usable.
    fn run_alone(self: Box<Self>, conn: &mut DbConn) -> bool;
    fn abort(self: Box<Self>, reason: BatchFailure);
}

struct Job<F, T> {
    op: F,
    reply: oneshot::Sender<Result<T, StoreError>>,
    /// Its result in the batch under way.
    result: Option<Result<T, StoreError>>,
}

impl<F, T> WriteJob for Job<F, T>
where
    F: FnMut(&mut DbConn) -> Result<T, StoreError> + Send,
    T: Send + 'static,
{
    fn run(&mut self, conn: &mut DbConn, savepoint: bool) -> bool {
        let result = if savepoint {
            // Nested in the batch transaction, `transaction` is a savepoint.
            conn.transaction(&mut self.op)
        } else {
            (self.op)(conn)
        };
        let ok = result.is_ok();
        if !ok {
            // Ids this thread learnt in what is rolled back may not exist.
            known::forget_all();
        }
        self.result = Some(result);
        ok
    }

    fn complete(self: Box<Self>, commit: Result<(), BatchFailure>) {
        let Job { reply, result, .. } = *self;
        let outcome = match (result, commit) {
            (Some(Ok(value)), Ok(())) => Ok(value),
            (Some(Ok(_)), Err(failure)) | (None, Err(failure)) => Err(StoreError::Batch(failure)),
            (Some(Err(error)), _) => Err(error),
            (None, Ok(())) => Err(StoreError::Unavailable(
                "the write job was not run".to_owned(),
            )),
        };
        // The caller may have gone away; nothing to do then.
        let _ = reply.send(outcome);
    }

    fn run_alone(self: Box<Self>, conn: &mut DbConn) -> bool {
        let Job { mut op, reply, .. } = *self;
        let mut attempt = 1;
        let result = loop {
            let result = conn.transaction(&mut op);
            if result.is_err() {
                // Ids this thread learnt in the rolled-back transaction may not exist.
                known::forget_all();
            }
            match &result {
                Err(error) if error.is_transient() && attempt < MAX_ATTEMPTS => attempt += 1,
                _ => break result,
            }
        };
        let healthy = !matches!(&result, Err(StoreError::Db(error)) if connection_lost(error))
            && !<DbConn as Connection>::TransactionManager::is_broken_transaction_manager(conn);
        // The caller may have gone away; nothing to do then.
        let _ = reply.send(result);
        healthy
    }

    fn abort(self: Box<Self>, reason: BatchFailure) {
        let _ = self.reply.send(Err(StoreError::Batch(reason)));
    }
}

/// The writers: one group-committing thread on SQLite, a pool on PostgreSQL.
pub(crate) struct Writer {
    sender: Option<mpsc::Sender<Box<dyn WriteJob>>>,
    threads: Vec<JoinHandle<()>>,
    /// SQLite: how many checkpoints the checkpointer has made.
    #[cfg_attr(not(test), allow(dead_code))]
    checkpoints: Option<Arc<checkpoints::Done>>,
}

type JobQueue = mpsc::Receiver<Box<dyn WriteJob>>;

impl Writer {
    pub(crate) fn start(url: DatabaseUrl, conn: DbConn, options: &ExecOptions) -> Self {
        let (sender, receiver) = mpsc::channel(options.queue.max(1));
        let mut done = None;
        let threads = if url.is_postgres() {
            let receiver = Arc::new(Mutex::new(receiver));
            let mut first = Some(conn);
            (0..options.postgres_writers.max(1))
                .filter_map(|n| {
                    let (url, receiver, conn) = (url.clone(), Arc::clone(&receiver), first.take());
                    std::thread::Builder::new()
                        .name(format!("shiplog-writer-{n}"))
                        .spawn(move || pool_writer_loop(&url, conn, &receiver))
                        .ok()
                })
                .collect()
        } else {
            let max_batch = options.max_batch.max(1);
            let max_wait = options.max_wait;
            let checkpointer = checkpoints::Checkpointer::start(&url);
            done = checkpointer.as_ref().map(checkpoints::Checkpointer::done);
            std::thread::Builder::new()
                .name("shiplog-writer".to_owned())
                .spawn(move || {
                    writer_loop(url, conn, receiver, (max_batch, max_wait), checkpointer)
                })
                .into_iter()
                .collect()
        };
        Self {
            sender: Some(sender),
            threads,
            checkpoints: done,
        }
    }

    /// Runs `op` in the next group commit (SQLite) or its own transaction (PostgreSQL);
    /// resolves once the commit is durable.
    pub(crate) async fn run<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnMut(&mut DbConn) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let sender = self
            .sender
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("the store is shut down".to_owned()))?;
        sender
            .send(Box::new(Job {
                op,
                reply,
                result: None,
            }))
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".to_owned()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the writer dropped the request".to_owned()))?
    }
}

impl Drop for Writer {
    /// Closes the queue and waits until every queued write is committed.
    fn drop(&mut self) {
        self.sender.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn begin(conn: &mut DbConn) -> Result<(), DieselError> {
    per_backend!(conn, {
        // BEGIN IMMEDIATE takes the write lock up front, so a second process waits on the busy
        // timeout instead of failing on a lock upgrade half-way through the batch.
        sqlite(inner) => AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE"),
        postgres(_) => <DbConn as Connection>::TransactionManager::begin_transaction(conn),
    })
}

/// Whether an error means the connection itself is gone.
pub(crate) fn connection_lost(error: &DieselError) -> bool {
    matches!(
        error,
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _
        ) | DieselError::BrokenTransactionManager
    )
}

/// Why a batch's jobs stopped before all of them ran.
enum Stopped {
    /// A job panicked.
    Panicked,
    /// The transaction could not be begun (or rolled back for the second run).
    Begin(DieselError),
}

/// Runs a batch's jobs in one transaction with no savepoints, and, if one of them fails, rolls
/// that transaction back and runs them all again in a new one, each in a savepoint of its own.
/// On `Ok` the transaction is open, holding what the jobs that succeeded wrote.
fn run_jobs(conn: &mut DbConn, batch: &mut [Box<dyn WriteJob>]) -> Result<(), Stopped> {
    begin(conn).map_err(Stopped::Begin)?;
    let mut failed = false;
    for job in batch.iter_mut() {
        if !catch_unwind(AssertUnwindSafe(|| job.run(conn, false)))
            .map_err(|_| Stopped::Panicked)?
        {
            failed = true;
            break;
        }
    }
    if !failed {
        return Ok(());
    }
    <DbConn as Connection>::TransactionManager::rollback_transaction(conn)
        .map_err(Stopped::Begin)?;
    begin(conn).map_err(Stopped::Begin)?;
    for job in batch.iter_mut() {
        // A job that fails is undone alone; the others go on.
        catch_unwind(AssertUnwindSafe(|| job.run(conn, true))).map_err(|_| Stopped::Panicked)?;
    }
    Ok(())
}

fn writer_loop(
    url: DatabaseUrl,
    mut conn: DbConn,
    mut receiver: mpsc::Receiver<Box<dyn WriteJob>>,
    (max_batch, max_wait): (usize, Duration),
    mut checkpointer: Option<checkpoints::Checkpointer>,
) {
    if checkpointer.is_some() {
        checkpoints::autocheckpoint(&mut conn, 0);
    }
    let mut conn = Some(conn);
    while let Some(first) = receiver.blocking_recv() {
        let mut batch = vec![first];
        let deadline = Instant::now() + max_wait;
        while batch.len() < max_batch {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(mpsc::error::TryRecvError::Empty) if Instant::now() < deadline => {
                    std::thread::yield_now();
                }
                Err(_) => break,
            }
        }
        if conn.is_none() {
            conn = url.connect().ok();
            if checkpointer.is_some()
                && let Some(fresh) = conn.as_mut()
            {
                checkpoints::autocheckpoint(fresh, 0);
            }
        }
        let Some(active) = conn.as_mut() else {
            for job in batch {
                job.abort(BatchFailure::Unreachable);
            }
            continue;
        };
        let jobs = batch.len();
        let commit = match run_jobs(active, &mut batch) {
            Err(Stopped::Begin(error)) => {
                let lost = connection_lost(&error)
                    || <DbConn as Connection>::TransactionManager::is_broken_transaction_manager(
                        active,
                    );
                let error = Arc::new(error);
                for job in batch {
                    job.abort(BatchFailure::Begin(Arc::clone(&error)));
                }
                if lost {
                    conn = None;
                }
                continue;
            }
            Err(Stopped::Panicked) => {
                let _ = <DbConn as Connection>::TransactionManager::rollback_transaction(active);
                Err(BatchFailure::Panicked)
            }
            Ok(()) => <DbConn as Connection>::TransactionManager::commit_transaction(active)
                .map_err(|error| {
                    let _ =
                        <DbConn as Connection>::TransactionManager::rollback_transaction(active);
                    BatchFailure::Commit(Arc::new(error))
                }),
        };
        let panicked = commit
            .as_ref()
            .is_err_and(|f| matches!(f, BatchFailure::Panicked));
        if commit.is_err() {
            known::forget_all();
        }
        let healthy = commit.is_ok()
            || !<DbConn as Connection>::TransactionManager::is_broken_transaction_manager(active);
        for job in batch {
            job.complete(commit.clone());
        }
        if let Some(keeper) = &mut checkpointer
            && let Some(active) = conn.as_mut()
        {
            keeper.finish(active);
        }
        if commit.is_ok()
            && let Some(keeper) = &mut checkpointer
            && !keeper.committed(jobs)
        {
            // The checkpointer is gone: this connection checkpoints again, as SQLite does by
            // default.
            if let Some(active) = conn.as_mut() {
                checkpoints::autocheckpoint(active, checkpoints::SQLITE_DEFAULT);
            }
            checkpointer = None;
        }
        if panicked || !healthy {
            conn = None;
        }
    }
}

/// SQLite's checkpoints, on a thread of their own.
///
/// By default the connection that commits copies the write-ahead log into the database file
/// whenever the log passes 1,000 pages, so every so often one group commit (and every caller in
/// it) waited for a checkpoint: about a tenth of the writer's time under `cargo xtask bench
/// http`. The writer's connection instead runs with `wal_autocheckpoint = 0`, and after every
/// [`EVERY`] committed jobs wakes the `shiplog-checkpointer` thread, which runs a `PASSIVE`
/// checkpoint on its own connection, beside the writer (a passive checkpoint never blocks a
/// writer or a reader). Wake-ups that arrive while it works are merged into one. If the thread
/// cannot start or stops, the writer's connection checkpoints itself again.
pub(crate) mod checkpoints {
    use std::sync::mpsc as std_mpsc;
    use std::sync::{Arc, Condvar, Mutex, PoisonError};

    use crate::conn::per_backend;
    use diesel::connection::SimpleConnection;

    use crate::conn::{DatabaseUrl, DbConn};

    /// Committed jobs between two wake-ups. Fewer, larger checkpoints copy a page that several
    /// commits changed once: with 500, `bench http`'s SQLite Clienwork row at 64 connections gave
    /// 7,614 and 7,193 ingests/s against 5,814 and 6,131 with the writer checkpointing itself
    /// (alternated, same session); with 100, about the same as the writer.
    pub(crate) const EVERY: usize = 500;

    /// How many checkpoints have been made, for whoever waits on one.
    #[derive(Default)]
    pub(crate) struct Done {
        count: Mutex<u64>,
        changed: Condvar,
    }

    impl Done {
        fn add(&self) {
            *self.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
            self.changed.notify_all();
        }

        fn count(&self) -> u64 {
            *self.count.lock().unwrap_or_else(PoisonError::into_inner)
        }

        /// Waits until at least `n` checkpoints were made, or `timeout` passed; returns the count.
        #[cfg_attr(not(test), allow(dead_code))]
        pub(crate) fn wait_for(&self, n: u64, timeout: std::time::Duration) -> u64 {
            let count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
            let (count, _) = self
                .changed
                .wait_timeout_while(count, timeout, |count| *count < n)
                .unwrap_or_else(PoisonError::into_inner);
            *count
        }
    }

    /// The writer's side: wakes the checkpointer.
    pub(crate) struct Checkpointer {
        wake: std_mpsc::SyncSender<()>,
        since: usize,
        done: Arc<Done>,
        /// The checkpoints the writer has finished ([`Checkpointer::finish`]).
        finished: u64,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Drop for Checkpointer {
        /// Lets the thread make its last checkpoint and waits for it.
        fn drop(&mut self) {
            let (closed, _) = std_mpsc::sync_channel(1);
            drop(std::mem::replace(&mut self.wake, closed));
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    impl Checkpointer {
        /// Starts the thread; `None` if it cannot (the writer then checkpoints itself).
        pub(crate) fn start(url: &DatabaseUrl) -> Option<Self> {
            let (wake, woken) = std_mpsc::sync_channel::<()>(1);
            let done = Arc::new(Done::default());
            let url = url.clone();
            let counter = Arc::clone(&done);
            let thread = std::thread::Builder::new()
                .name("shiplog-checkpointer".to_owned())
                .spawn(move || {
                    let mut conn = None;
                    // Until the writer is gone, then once more for what it committed last.
                    while woken.recv().is_ok() {
                        checkpoint(&url, &mut conn, &counter);
                    }
                    checkpoint(&url, &mut conn, &counter);
                })
                .ok()?;
            Some(Self {
                wake,
                since: 0,
                done,
                finished: 0,
                thread: Some(thread),
            })
        }

        /// After the thread made a checkpoint, checkpoints on the writer's own connection what
        /// was committed while it ran, so that the log can start over. SQLite writes from the
        /// start of the log again only when a writer begins with every frame of it copied into
        /// the database; the thread's checkpoints run beside the writer, which commits more
        /// frames meanwhile, so under sustained load the log never started over and grew without
        /// bound (1.4 GB in 12 s of `bench http`), every commit then writing to new blocks of the
        /// file. This checkpoint runs between two batches, when nothing else writes, and copies
        /// only the frames of the batches committed during the thread's checkpoint. (A reader
        /// still on an older snapshot can hold part of the log back; the next one catches up.)
        pub(crate) fn finish(&mut self, conn: &mut DbConn) {
            let made = self.done.count();
            if made > self.finished {
                self.finished = made;
                per_backend!(conn, {
                    sqlite(sqlite) => {
                        let _ = sqlite.batch_execute("PRAGMA wal_checkpoint(PASSIVE);");
                    },
                    postgres(_) => {},
                });
            }
        }

        pub(crate) fn done(&self) -> Arc<Done> {
            Arc::clone(&self.done)
        }

        /// Counts committed jobs and wakes the thread every [`EVERY`]; `false` if it is gone.
        pub(crate) fn committed(&mut self, jobs: usize) -> bool {
            self.since += jobs;
            if self.since < EVERY {
                return true;
            }
            self.since = 0;
            !matches!(
                self.wake.try_send(()),
                Err(std_mpsc::TrySendError::Disconnected(()))
            )
        }
    }

    /// SQLite's default `wal_autocheckpoint`, in pages.
    pub(crate) const SQLITE_DEFAULT: u32 = 1000;

    /// Has `conn` (the writer's) checkpoint by itself whenever the log passes `pages` pages, or
    /// never (0). On failure the setting stays as it was: both may then checkpoint, which is
    /// only slower, or the log waits for the checkpointer.
    pub(crate) fn autocheckpoint(conn: &mut DbConn, pages: u32) {
        per_backend!(conn, {
            sqlite(sqlite) => {
                let _ = sqlite.batch_execute(&format!("PRAGMA wal_autocheckpoint = {pages};"));
            },
            postgres(_) => {},
        });
    }

    fn checkpoint(url: &DatabaseUrl, conn: &mut Option<DbConn>, done: &Done) {
        if conn.is_none() {
            *conn = url.connect().ok();
        }
        let Some(connection) = conn.as_mut() else {
            return;
        };
        let sqlite = per_backend!(connection, {
            sqlite(sqlite) => sqlite,
            postgres(_) => return,
        });
        match sqlite.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
            Ok(()) => done.add(),
            // A fresh connection next time.
            Err(_) => *conn = None,
        }
    }
}

/// The ids of applications and environments a writer thread has read or created, so that an
/// ingest does not look them up again. Ids never change and these rows are never deleted, so a
/// copy stays true, with one exception: a row created by a transaction that then fails. The
/// writers therefore forget everything whenever a job or a commit fails ([`known::forget_all`]),
/// here, where they see it fail; the ingest only reads and adds.
pub(crate) mod known {
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// Beyond this many ids the copy starts over.
    const MAX_ENTRIES: usize = 10_000;

    /// (project id, code) → (id, whether its repository is known).
    type Applications = HashMap<(String, String), (String, bool)>;
    /// (workspace id, code) → id.
    type Environments = HashMap<(String, String), String>;

    thread_local! {
        static APPLICATIONS: RefCell<Applications> = RefCell::new(HashMap::new());
        static ENVIRONMENTS: RefCell<Environments> = RefCell::new(HashMap::new());
    }

    pub(crate) fn application(project: &str, code: &str) -> Option<(String, bool)> {
        APPLICATIONS.with_borrow(|known| known.get(&(project.to_owned(), code.to_owned())).cloned())
    }

    pub(crate) fn remember_application(project: &str, code: &str, id: &str, has_repo: bool) {
        APPLICATIONS.with_borrow_mut(|known| {
            if known.len() >= MAX_ENTRIES {
                known.clear();
            }
            known.insert(
                (project.to_owned(), code.to_owned()),
                (id.to_owned(), has_repo),
            );
        });
    }

    pub(crate) fn environment(workspace: &str, code: &str) -> Option<String> {
        ENVIRONMENTS
            .with_borrow(|known| known.get(&(workspace.to_owned(), code.to_owned())).cloned())
    }

    pub(crate) fn remember_environment(workspace: &str, code: &str, id: &str) {
        ENVIRONMENTS.with_borrow_mut(|known| {
            if known.len() >= MAX_ENTRIES {
                known.clear();
            }
            known.insert((workspace.to_owned(), code.to_owned()), id.to_owned());
        });
    }

    /// Forgets every id this thread knows: a row it created may have been rolled back.
    pub(crate) fn forget_all() {
        APPLICATIONS.with_borrow_mut(HashMap::clear);
        ENVIRONMENTS.with_borrow_mut(HashMap::clear);
    }
}

/// One writer of the PostgreSQL pool: one job at a time, each in its own transaction.
fn pool_writer_loop(url: &DatabaseUrl, mut conn: Option<DbConn>, queue: &Mutex<JobQueue>) {
    loop {
        let job = {
            let Ok(mut guard) = queue.lock() else { return };
            match guard.blocking_recv() {
                Some(job) => job,
                None => return,
            }
        };
        if conn.is_none() {
            conn = url.connect().ok();
        }
        let Some(active) = conn.as_mut() else {
            job.abort(BatchFailure::Unreachable);
            continue;
        };
        // A panic drops the job's reply: its caller gets an error, and the connection is
        // replaced since its transaction state is unknown.
        let healthy = catch_unwind(AssertUnwindSafe(|| job.run_alone(active))).unwrap_or(false);
        if !healthy {
            conn = None;
        }
    }
}

/// What one run of a read job came to.
enum ReadRun {
    /// Answered; the connection is fine.
    Done,
    /// Answered, and the connection is gone.
    Lost,
    /// The connection was found gone before anything was answered: run it again on a new one.
    Again,
}

/// A read job. Reads change nothing, so a read that finds its connection gone (the database
/// restarted since the connection was opened) runs once more on a fresh connection rather than
/// failing the request.
type ReadJob = Box<dyn FnMut(&mut DbConn) -> ReadRun + Send>;

/// Reader threads, each with its own connection, sharing one queue.
pub(crate) struct Readers {
    sender: Option<std_mpsc::Sender<ReadJob>>,
    threads: Vec<JoinHandle<()>>,
}

impl Readers {
    pub(crate) fn start(url: &DatabaseUrl, count: usize) -> Self {
        let (sender, receiver) = std_mpsc::channel::<ReadJob>();
        let receiver = Arc::new(Mutex::new(receiver));
        let threads = (0..count.max(1))
            .filter_map(|n| {
                let receiver = Arc::clone(&receiver);
                let url = url.clone();
                std::thread::Builder::new()
                    .name(format!("shiplog-reader-{n}"))
                    .spawn(move || {
                        let mut conn: Option<DbConn> = None;
                        loop {
                            let job = {
                                let Ok(guard) = receiver.lock() else { return };
                                match guard.recv() {
                                    Ok(job) => job,
                                    Err(_) => return,
                                }
                            };
                            let mut job = job;
                            for _ in 0..2 {
                                if conn.is_none() {
                                    conn = url.connect_reader().ok();
                                }
                                // Without a connection the job is dropped with its reply
                                // sender: the caller sees an error.
                                let Some(active) = conn.as_mut() else { break };
                                match catch_unwind(AssertUnwindSafe(|| job(active))) {
                                    Ok(ReadRun::Done) => break,
                                    Ok(ReadRun::Again) => conn = None,
                                    Ok(ReadRun::Lost) | Err(_) => {
                                        conn = None;
                                        break;
                                    }
                                }
                            }
                        }
                    })
                    .ok()
            })
            .collect();
        Self {
            sender: Some(sender),
            threads,
        }
    }

    /// Runs `op` on a reader connection.
    pub(crate) async fn run<T, F>(&self, mut op: F) -> Result<T, StoreError>
    where
        F: FnMut(&mut DbConn) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let mut reply = Some(reply);
        let mut first = true;
        let job: ReadJob = Box::new(move |conn| {
            let result = op(conn);
            let lost = matches!(&result, Err(StoreError::Db(error)) if connection_lost(error));
            if lost && std::mem::take(&mut first) {
                return ReadRun::Again;
            }
            if let Some(reply) = reply.take() {
                let _ = reply.send(result);
            }
            if lost { ReadRun::Lost } else { ReadRun::Done }
        });
        self.sender
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("the store is shut down".to_owned()))?
            .send(job)
            .map_err(|_| StoreError::Unavailable("the readers have stopped".to_owned()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the database is unreachable".to_owned()))?
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        self.sender.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;

    use super::*;
    use crate::conn::Native;

    /// The writer's commits are copied into the database file: the checkpointer thread is woken
    /// and checkpoints, and the rows reach the file.
    #[tokio::test]
    async fn checkpoints_are_made_beside_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints.db");
        let url = DatabaseUrl::Sqlite(path.clone());
        let mut conn = url.connect().unwrap();
        conn.batch_execute("CREATE TABLE t (x BLOB NOT NULL);")
            .unwrap();
        let writer = Writer::start(url, conn, &ExecOptions::default());
        let done = writer.checkpoints.clone().unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        for _ in 0..checkpoints::EVERY * 2 {
            writer
                .run(|conn| {
                    conn.batch_execute("INSERT INTO t VALUES (zeroblob(4000));")?;
                    Ok(())
                })
                .await
                .unwrap();
        }
        assert!(
            done.wait_for(1, Duration::from_secs(30)) >= 1,
            "the checkpointer was woken and checkpointed"
        );
        let after = std::fs::metadata(&path).unwrap().len();
        assert!(
            after >= before + 100 * 4000,
            "the rows reached the database file: {before} -> {after} bytes"
        );
        drop(writer);
    }

    /// The log starts over although a write was under way through the checkpointer's whole
    /// checkpoint: the writer copies what that write committed (`Checkpointer::finish`), so the
    /// next batch writes the log from its start instead of growing it.
    #[tokio::test]
    async fn the_log_starts_over_after_a_checkpoint_made_during_a_write() {
        #[derive(diesel::QueryableByName)]
        struct Pass {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            log: i32,
        }

        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite(dir.path().join("restart.db"));
        let mut conn = url.connect().unwrap();
        conn.batch_execute("CREATE TABLE t (x BLOB NOT NULL);")
            .unwrap();
        let writer = Writer::start(url.clone(), conn, &ExecOptions::default());
        let done = writer.checkpoints.clone().unwrap();
        let row = |conn: &mut DbConn| -> Result<(), StoreError> {
            conn.batch_execute("INSERT INTO t VALUES (zeroblob(4000));")?;
            Ok(())
        };
        // The last of these wakes the checkpointer.
        for _ in 0..checkpoints::EVERY {
            writer.run(row).await.unwrap();
        }
        // A write that lasts until the checkpointer has made its checkpoint.
        let waiting = Arc::clone(&done);
        writer
            .run(move |conn| {
                row(conn)?;
                assert!(waiting.wait_for(1, Duration::from_secs(30)) >= 1);
                Ok(())
            })
            .await
            .unwrap();
        writer.run(row).await.unwrap();
        let mut check = url.connect().unwrap();
        let pass: Pass = diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)")
            .get_result_on(&mut check)
            .unwrap();
        assert!(
            pass.log < 50,
            "the last write did not start the log over: {} frames in it",
            pass.log
        );
        drop(writer);
    }

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }

    fn count(conn: &mut DbConn, x: i64) -> Result<i64, StoreError> {
        Ok(
            diesel::sql_query(format!("SELECT count(*) AS n FROM t WHERE x = {x}"))
                .get_result_on::<Count>(conn)?
                .n,
        )
    }

    /// A writer over a fresh table `t` in `dir`, held busy by a first job until `release` is
    /// sent, so that the jobs queued meanwhile make one batch; `holder` is that first job.
    async fn held_writer(
        dir: &std::path::Path,
    ) -> (
        Arc<Writer>,
        DatabaseUrl,
        std_mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<(), StoreError>>,
    ) {
        let url = DatabaseUrl::Sqlite(dir.join("batch.db"));
        let mut conn = url.connect().unwrap();
        conn.batch_execute("CREATE TABLE t (x INTEGER NOT NULL);")
            .unwrap();
        let writer = Arc::new(Writer::start(url.clone(), conn, &ExecOptions::default()));
        let (started, has_started) = std_mpsc::channel::<()>();
        let (release, released) = std_mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(released));
        let holder = tokio::spawn({
            let writer = Arc::clone(&writer);
            async move {
                writer
                    .run(move |_| {
                        let _ = started.send(());
                        let _ = released.lock().unwrap().recv();
                        Ok(())
                    })
                    .await
            }
        });
        tokio::task::spawn_blocking(move || has_started.recv())
            .await
            .unwrap()
            .unwrap();
        (writer, url, release, holder)
    }

    /// A job that inserts `x` into `t`.
    fn insert(x: i64) -> impl FnMut(&mut DbConn) -> Result<(), StoreError> + Send + 'static {
        move |conn: &mut DbConn| {
            conn.batch_execute(&format!("INSERT INTO t VALUES ({x});"))?;
            Ok(())
        }
    }

    /// In one group commit, a job that wrote and then failed is undone alone: the jobs before
    /// and after it in the batch commit, its row does not.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_job_is_rolled_back_alone_in_its_batch() {
        use std::future::Future;
        use std::pin::pin;
        use std::task::Poll;

        let dir = tempfile::tempdir().unwrap();
        let (writer, url, release, holder) = held_writer(dir.path()).await;

        let mut first = pin!(writer.run(insert(1)));
        let mut failing = pin!(writer.run(move |conn: &mut DbConn| {
            insert(2)(conn)?;
            Err::<(), _>(StoreError::Unavailable("this job fails".to_owned()))
        }));
        // The last job reports whether the first one's row was visible to another connection
        // while it ran: not yet committed means one batch.
        let reader_url = url.clone();
        let mut last = pin!(writer.run(move |conn: &mut DbConn| {
            insert(3)(conn)?;
            let mut reader = reader_url
                .connect()
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            count(&mut reader, 1)
        }));
        // One poll each puts the job in the queue (it has room), in this order.
        std::future::poll_fn(|cx| {
            let _ = first.as_mut().poll(cx);
            let _ = failing.as_mut().poll(cx);
            let _ = last.as_mut().poll(cx);
            Poll::Ready(())
        })
        .await;
        release.send(()).unwrap();
        holder.await.unwrap().unwrap();

        first.await.unwrap();
        assert!(matches!(failing.await, Err(StoreError::Unavailable(_))));
        assert_eq!(
            last.await.unwrap(),
            0,
            "the first job was uncommitted while the last ran: one batch"
        );
        let mut check = url.connect().unwrap();
        assert_eq!(count(&mut check, 1).unwrap(), 1);
        assert_eq!(
            count(&mut check, 2).unwrap(),
            0,
            "the failed job's row is undone"
        );
        assert_eq!(count(&mut check, 3).unwrap(), 1);
    }

    /// A job that panics in a group commit takes its whole batch down, the jobs before it
    /// included: nothing of the batch is stored, every caller gets `BatchFailure::Panicked`,
    /// and the writer goes on with the next batch on a fresh connection.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_job_rolls_its_batch_back() {
        use std::future::Future;
        use std::pin::pin;
        use std::task::Poll;

        let dir = tempfile::tempdir().unwrap();
        let (writer, url, release, holder) = held_writer(dir.path()).await;
        let mut before = pin!(writer.run(insert(1)));
        let mut panicking = pin!(
            writer.run(move |conn: &mut DbConn| -> Result<(), StoreError> {
                insert(2)(conn)?;
                panic!("this job panics")
            })
        );
        let mut after = pin!(writer.run(insert(3)));
        std::future::poll_fn(|cx| {
            let _ = before.as_mut().poll(cx);
            let _ = panicking.as_mut().poll(cx);
            let _ = after.as_mut().poll(cx);
            Poll::Ready(())
        })
        .await;
        release.send(()).unwrap();
        holder.await.unwrap().unwrap();

        for result in [before.await, panicking.await, after.await] {
            assert!(
                matches!(result, Err(StoreError::Batch(BatchFailure::Panicked))),
                "{result:?}"
            );
        }
        writer.run(insert(4)).await.unwrap();
        let mut check = url.connect().unwrap();
        for (x, stored) in [(1, 0), (2, 0), (3, 0), (4, 1)] {
            assert_eq!(count(&mut check, x).unwrap(), stored, "rows of {x}");
        }
    }
}
