//! Short-lived copies of the rows nearly every request reads: API keys by hash, signing keys by
//! public id, projects by id and slug. Authenticating a request and finding its project then
//! cost no database round trip.
//!
//! Only found rows are kept (a key or project created elsewhere is seen at once), for at most
//! [`TTL`]. This process forgets a key when it revokes it or records its use, so a revoked key is
//! refused from the next request on by this server, and within [`TTL`] by other servers sharing
//! the database.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a copy is used before the row is read again.
pub const TTL: Duration = Duration::from_secs(5);

/// Beyond this many copies the map starts over (a bound on memory, not a tuning knob).
const MAX_ENTRIES: usize = 10_000;

/// Copies of values by key, each used for [`TTL`].
pub(crate) struct Recent<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> Recent<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The copy of `key`, if one was kept less than [`TTL`] ago.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|(_, at)| at.elapsed() < TTL)
            .map(|(value, _)| value.clone())
    }

    /// Keeps a copy of `value` under `key`.
    pub(crate) fn put(&self, key: K, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (value, Instant::now()));
    }

    /// Drops every copy for which `stale` says so.
    pub(crate) fn forget(&self, mut stale: impl FnMut(&V) -> bool) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, (value, _)| !stale(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_found_values_until_forgotten() {
        let recent = Recent::new();
        assert_eq!(recent.get(&"a"), None);
        recent.put("a", 1);
        recent.put("b", 2);
        assert_eq!(recent.get(&"a"), Some(1));
        recent.forget(|v| *v == 1);
        assert_eq!(recent.get(&"a"), None);
        assert_eq!(recent.get(&"b"), Some(2));
    }

    #[test]
    fn an_expired_copy_is_not_used() {
        let recent = Recent::new();
        recent
            .entries
            .lock()
            .unwrap()
            .insert("a", (1, Instant::now() - TTL));
        assert_eq!(recent.get(&"a"), None);
    }

    #[test]
    fn memory_is_bounded() {
        let recent = Recent::new();
        for n in 0..=MAX_ENTRIES {
            recent.put(n, n);
        }
        assert!(recent.entries.lock().unwrap().len() <= MAX_ENTRIES);
        assert_eq!(recent.get(&MAX_ENTRIES), Some(MAX_ENTRIES));
    }
}
