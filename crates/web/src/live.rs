//! Change signals for the live deployments feed: ingest tells [`LiveChanges`] (the app's
//! [`ChangeNotifier`] port) that a workspace's deployments changed, and each open feed of that
//! workspace reads the store at once instead of at its next poll.
//!
//! Only this process's ingests are heard; a feed still polls once a second, which is how it
//! sees what other servers on the same PostgreSQL ingest.

use std::collections::HashMap;
use std::sync::Mutex;

use shiplog_app::ids::WorkspaceId;
use shiplog_app::ports::ChangeNotifier;
use tokio::sync::watch;

/// One signal per workspace with an open feed.
#[derive(Debug, Default)]
pub struct LiveChanges {
    workspaces: Mutex<HashMap<WorkspaceId, watch::Sender<u64>>>,
}

impl LiveChanges {
    /// A receiver that changes whenever the workspace's deployments do.
    pub fn subscribe(&self, workspace: WorkspaceId) -> watch::Receiver<u64> {
        let mut workspaces = self
            .workspaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        workspaces
            .entry(workspace)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }
}

impl ChangeNotifier for LiveChanges {
    fn deployments_changed(&self, workspace: WorkspaceId) {
        let mut workspaces = self
            .workspaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(sender) = workspaces.get(&workspace) {
            if sender.receiver_count() == 0 {
                // Every feed of it has closed.
                workspaces.remove(&workspace);
            } else {
                sender.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace(n: u128) -> WorkspaceId {
        WorkspaceId::from_uuid(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn a_feed_hears_its_own_workspace_only() {
        let changes = LiveChanges::default();
        let mut mine = changes.subscribe(workspace(1));
        let mut theirs = changes.subscribe(workspace(2));
        changes.deployments_changed(workspace(1));
        assert!(mine.has_changed().unwrap());
        assert!(!theirs.has_changed().unwrap());
        mine.mark_unchanged();
        theirs.mark_unchanged();
        // A workspace nobody watches costs nothing and is forgotten once its feeds close.
        drop(theirs);
        changes.deployments_changed(workspace(2));
        changes.deployments_changed(workspace(3));
        assert_eq!(changes.workspaces.lock().unwrap().len(), 1);
    }
}
