//! Where diesel runs: the writers, and a few reader threads.
//!
//! Diesel is blocking, so no diesel call ever runs on an async executor thread: async callers
//! send a job over a channel and await its result on a oneshot. A port method returns only after
//! its write is durably committed.
//!
//! **SQLite: one writer, group commit.** SQLite has one write lock per file, so one writer
//! thread takes the first queued job, then everything else already queued (up to `max_batch`,
//! waiting at most `max_wait` for more), and runs the batch in one transaction (`BEGIN
//! IMMEDIATE`), each job inside its own savepoint. A job's error rolls back only its savepoint
//! and goes to its caller alone. After `COMMIT` (one fsync for the whole batch) every caller gets
//! its result; if the commit fails, every caller of the batch gets an error and nothing of the
//! batch is visible.
//!
//! **PostgreSQL: a pool of writers.** PostgreSQL runs concurrent transactions and groups their
//! commits' WAL flushes itself, so `postgres_writers` threads, each with its own connection,
//! take jobs from one queue and run each in a transaction of its own. Concurrent jobs can meet
//! on the same rows: the ingest reads the deployment it changes `FOR UPDATE`, and a job that
//! lost a race on a unique key, a deadlock or a serialization failure is rerun whole (up to
//! [`MAX_ATTEMPTS`] times; it then sees the winner's row), which is why a write job is `FnMut`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use tokio::sync::{mpsc, oneshot};

use crate::conn::{DatabaseUrl, DbConn};
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

/// Sends a job's outcome once the batch's fate is known.
type Completion = Box<dyn FnOnce(Result<(), BatchFailure>) + Send>;

/// How many times a PostgreSQL write job runs when deadlocks or serialization failures keep
/// aborting it.
pub const MAX_ATTEMPTS: u32 = 5;

/// A write job: runs against the connection inside a savepoint of a batch, or in a transaction
/// of its own, or is aborted unrun.
trait WriteJob: Send {
    fn run(self: Box<Self>, conn: &mut DbConn) -> Completion;
    /// Runs in its own transaction, rerun while the failure is transient, and answers its
    /// caller; returns whether the connection is still usable.
    fn run_alone(self: Box<Self>, conn: &mut DbConn) -> bool;
    fn abort(self: Box<Self>, reason: BatchFailure);
}

struct Job<F, T> {
    op: F,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<F, T> WriteJob for Job<F, T>
where
    F: FnMut(&mut DbConn) -> Result<T, StoreError> + Send,
    T: Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut DbConn) -> Completion {
        let Job { op, reply } = *self;
        // Nested in the batch transaction, `transaction` is a savepoint.
        let result = conn.transaction(op);
        if result.is_err() {
            // Ids this thread learnt in the rolled-back savepoint may not exist.
            known::forget_all();
        }
        Box::new(move |commit: Result<(), BatchFailure>| {
            let outcome = match (result, commit) {
                (Ok(value), Ok(())) => Ok(value),
                (Ok(_), Err(failure)) => Err(StoreError::Batch(failure)),
                (Err(error), _) => Err(error),
            };
            // The caller may have gone away; nothing to do then.
            let _ = reply.send(outcome);
        })
    }

    fn run_alone(self: Box<Self>, conn: &mut DbConn) -> bool {
        let Job { mut op, reply } = *self;
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
}

type JobQueue = mpsc::Receiver<Box<dyn WriteJob>>;

impl Writer {
    pub(crate) fn start(url: DatabaseUrl, conn: DbConn, options: &ExecOptions) -> Self {
        let (sender, receiver) = mpsc::channel(options.queue.max(1));
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
            std::thread::Builder::new()
                .name("shiplog-writer".to_owned())
                .spawn(move || writer_loop(url, conn, receiver, max_batch, max_wait))
                .into_iter()
                .collect()
        };
        Self {
            sender: Some(sender),
            threads,
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
            .send(Box::new(Job { op, reply }))
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
    match conn {
        // BEGIN IMMEDIATE takes the write lock up front, so a second process waits on the busy
        // timeout instead of failing on a lock upgrade half-way through the batch.
        DbConn::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")
        }
        DbConn::Postgresql(_) => {
            <DbConn as Connection>::TransactionManager::begin_transaction(conn)
        }
    }
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

fn writer_loop(
    url: DatabaseUrl,
    conn: DbConn,
    mut receiver: mpsc::Receiver<Box<dyn WriteJob>>,
    max_batch: usize,
    max_wait: Duration,
) {
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
        }
        let Some(active) = conn.as_mut() else {
            for job in batch {
                job.abort(BatchFailure::Unreachable);
            }
            continue;
        };
        if let Err(error) = begin(active) {
            let lost = connection_lost(&error);
            let error = Arc::new(error);
            for job in batch {
                job.abort(BatchFailure::Begin(Arc::clone(&error)));
            }
            if lost {
                conn = None;
            }
            continue;
        }
        let mut completions = Vec::with_capacity(batch.len());
        let mut panicked = false;
        for job in batch {
            if panicked {
                job.abort(BatchFailure::Panicked);
                continue;
            }
            match catch_unwind(AssertUnwindSafe(|| job.run(active))) {
                Ok(completion) => completions.push(completion),
                Err(_) => panicked = true,
            }
        }
        let commit = if panicked {
            let _ = <DbConn as Connection>::TransactionManager::rollback_transaction(active);
            Err(BatchFailure::Panicked)
        } else {
            <DbConn as Connection>::TransactionManager::commit_transaction(active).map_err(
                |error| {
                    let _ =
                        <DbConn as Connection>::TransactionManager::rollback_transaction(active);
                    BatchFailure::Commit(Arc::new(error))
                },
            )
        };
        if commit.is_err() {
            known::forget_all();
        }
        let healthy = commit.is_ok()
            || !<DbConn as Connection>::TransactionManager::is_broken_transaction_manager(active);
        for completion in completions {
            completion(commit.clone());
        }
        if panicked || !healthy {
            conn = None;
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
