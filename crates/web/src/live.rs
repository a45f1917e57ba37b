//! What the live deployments feeds wait on, and how many may be open.
//!
//! One change signal per workspace with an open feed. Two things raise it: this process's
//! ingest ([`ChangeNotifier`]), at once; and one shared poll ([`LiveChanges::run_shared_poll`])
//! that asks the store once a second which workspaces recorded pipeline events since the last
//! time (an index range over the new events only), which is how a feed hears what other
//! shiplog servers on the same PostgreSQL ingest. A feed reads the store only when its
//! workspace's signal changes (and every [`SAFETY_READ`], to re-check its session), never per
//! stream per second.
//!
//! A session may keep [`MAX_FEEDS_PER_SESSION`] feeds open and a workspace
//! [`MAX_FEEDS_PER_WORKSPACE`] on one server; one more is refused (429). A feed writes a
//! keep-alive every [`KEEPALIVE`], so a departed browser's feed ends at the next write, and
//! [`LiveChanges::close_all`] ends every feed when the server stops.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use shiplog_app::App;
use shiplog_app::ids::WorkspaceId;
use shiplog_app::ports::ChangeNotifier;
use tokio::sync::watch;

/// The most live feeds one dashboard session keeps open (tabs of the deployments list).
pub const MAX_FEEDS_PER_SESSION: usize = 8;
/// The most live feeds one workspace keeps open on one server.
pub const MAX_FEEDS_PER_WORKSPACE: usize = 100;
/// How often the shared poll asks the store what changed.
pub const SHARED_POLL: Duration = Duration::from_secs(1);
/// How often an idle feed writes a keep-alive comment (and so notices a departed browser).
pub const KEEPALIVE: Duration = Duration::from_secs(2);
/// How often a feed reads the store even when nothing was signalled: it re-checks its session
/// (a revoked key's feed ends) and catches a change the shared poll could not see (another
/// server's transaction that committed after a newer one).
pub const SAFETY_READ: Duration = Duration::from_secs(15);
/// The most new events the shared poll reads in one round; past that, every open workspace is
/// signalled.
const EVENTS_PER_POLL: u32 = 10_000;

/// Why a feed was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The session has [`MAX_FEEDS_PER_SESSION`] open.
    Session,
    /// The workspace has [`MAX_FEEDS_PER_WORKSPACE`] open on this server.
    Workspace,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Session => write!(
                f,
                "this session already has {MAX_FEEDS_PER_SESSION} live lists open: close some \
                 tabs of the deployments list, or reload it later"
            ),
            Self::Workspace => write!(
                f,
                "this workspace already has {MAX_FEEDS_PER_WORKSPACE} live lists open on this \
                 server: reload the page later"
            ),
        }
    }
}

#[derive(Debug)]
struct Watched {
    signal: watch::Sender<u64>,
    feeds: usize,
}

#[derive(Debug, Default)]
struct Open {
    workspaces: HashMap<WorkspaceId, Watched>,
    /// Open feeds per session (by the session secret's hash).
    sessions: HashMap<String, usize>,
}

/// The change signals and the count of open feeds.
#[derive(Debug)]
pub struct LiveChanges {
    open: Mutex<Open>,
    closing: watch::Sender<bool>,
}

impl Default for LiveChanges {
    fn default() -> Self {
        Self {
            open: Mutex::new(Open::default()),
            closing: watch::channel(false).0,
        }
    }
}

/// One open feed: what it waits on. Dropping it (the browser left, the feed ended) frees its
/// place.
#[derive(Debug)]
pub struct Subscription {
    /// Changes whenever the workspace's deployments may have changed.
    pub changes: watch::Receiver<u64>,
    /// Turns `true` when the server stops.
    pub closing: watch::Receiver<bool>,
    owner: Arc<LiveChanges>,
    workspace: WorkspaceId,
    session: String,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut open = self.owner.lock();
        if let Some(count) = open.sessions.get_mut(&self.session) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.sessions.remove(&self.session);
            }
        }
        if let Some(watched) = open.workspaces.get_mut(&self.workspace) {
            watched.feeds = watched.feeds.saturating_sub(1);
            if watched.feeds == 0 {
                open.workspaces.remove(&self.workspace);
            }
        }
    }
}

impl LiveChanges {
    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens a feed of `workspace` for the session whose secret hashes to `session`, within
    /// the limits.
    pub fn open(
        self: &Arc<Self>,
        workspace: WorkspaceId,
        session: &str,
    ) -> Result<Subscription, Refused> {
        let mut open = self.lock();
        if open.sessions.get(session).copied().unwrap_or(0) >= MAX_FEEDS_PER_SESSION {
            return Err(Refused::Session);
        }
        let watched = open.workspaces.entry(workspace).or_insert_with(|| Watched {
            signal: watch::channel(0).0,
            feeds: 0,
        });
        if watched.feeds >= MAX_FEEDS_PER_WORKSPACE {
            return Err(Refused::Workspace);
        }
        watched.feeds += 1;
        let changes = watched.signal.subscribe();
        *open.sessions.entry(session.to_owned()).or_insert(0) += 1;
        Ok(Subscription {
            changes,
            closing: self.closing.subscribe(),
            owner: Arc::clone(self),
            workspace,
            session: session.to_owned(),
        })
    }

    /// How many feeds are open on this server.
    pub fn open_feeds(&self) -> usize {
        self.lock().workspaces.values().map(|w| w.feeds).sum()
    }

    fn signal(&self, workspace: WorkspaceId) {
        if let Some(watched) = self.lock().workspaces.get(&workspace) {
            watched.signal.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    fn signal_all(&self) {
        for watched in self.lock().workspaces.values() {
            watched.signal.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Ends every open feed (the server is stopping) and the shared poll.
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    /// The shared poll: once a second, while any feed is open, asks the store which
    /// workspaces recorded events since the last round and signals their feeds. Ends with
    /// [`LiveChanges::close_all`].
    pub async fn run_shared_poll(self: Arc<Self>, app: App) {
        let mut closing = self.closing.subscribe();
        let mut position = None;
        loop {
            tokio::select! {
                () = tokio::time::sleep(SHARED_POLL) => {}
                _ = closing.changed() => return,
            }
            if self.open_feeds() == 0 {
                // Nobody watches: start again from the newest event when somebody does.
                position = None;
                continue;
            }
            match app.deployment_changes(position, EVENTS_PER_POLL).await {
                Ok(changes) => {
                    if position.is_some() {
                        if changes.complete {
                            for workspace in changes.workspaces {
                                self.signal(workspace);
                            }
                        } else {
                            self.signal_all();
                        }
                    }
                    position = Some(changes.position);
                }
                Err(error) => {
                    tracing::warn!(%error, "the live feeds' change source could not read");
                }
            }
        }
    }
}

impl ChangeNotifier for LiveChanges {
    fn deployments_changed(&self, workspace: WorkspaceId) {
        self.signal(workspace);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn workspace(n: u128) -> WorkspaceId {
        WorkspaceId::from_uuid(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn a_feed_hears_its_own_workspace_only() {
        let changes = Arc::new(LiveChanges::default());
        let mut mine = changes.open(workspace(1), "s1").unwrap();
        let theirs = changes.open(workspace(2), "s2").unwrap();
        changes.deployments_changed(workspace(1));
        assert!(mine.changes.has_changed().unwrap());
        assert!(!theirs.changes.has_changed().unwrap());
        mine.changes.mark_unchanged();
        // A workspace nobody watches costs nothing and is forgotten once its feeds close.
        drop(theirs);
        changes.deployments_changed(workspace(2));
        changes.deployments_changed(workspace(3));
        assert_eq!(changes.lock().workspaces.len(), 1);
        assert_eq!(changes.lock().sessions.len(), 1);
    }

    #[test]
    fn feeds_are_limited_per_session_and_per_workspace_and_freed_when_dropped() {
        let changes = Arc::new(LiveChanges::default());
        let mut held: Vec<Subscription> = (0..MAX_FEEDS_PER_SESSION)
            .map(|_| changes.open(workspace(1), "s1").unwrap())
            .collect();
        assert_eq!(
            changes.open(workspace(1), "s1").unwrap_err(),
            Refused::Session
        );
        // Another session of the workspace may, up to the workspace's limit.
        for n in 0..(MAX_FEEDS_PER_WORKSPACE - MAX_FEEDS_PER_SESSION) {
            held.push(
                changes
                    .open(workspace(1), &format!("other{}", n / 4))
                    .unwrap(),
            );
        }
        assert_eq!(
            changes.open(workspace(1), "fresh").unwrap_err(),
            Refused::Workspace
        );
        // Another workspace is not affected.
        let elsewhere = changes.open(workspace(2), "fresh").unwrap();
        assert_eq!(changes.open_feeds(), MAX_FEEDS_PER_WORKSPACE + 1);
        // A departed feed frees its place.
        held.truncate(0);
        assert!(changes.open(workspace(1), "s1").is_ok());
        drop(elsewhere);
        assert_eq!(changes.open_feeds(), 0);
    }

    #[test]
    fn closing_reaches_every_feed() {
        let changes = Arc::new(LiveChanges::default());
        let feed = changes.open(workspace(1), "s1").unwrap();
        assert!(!*feed.closing.borrow());
        changes.close_all();
        assert!(*feed.closing.borrow());
    }
}
