//! Cursor pagination over deployments in time order. A listing is ordered by each deployment's
//! own time (when it finished, else started, else when shiplog heard of it), newest first, ties
//! broken by id; a cursor names the page's last deployment *and the time it was listed at*, and
//! the next page is what sorts after that position. A record that arrives later (live, or an
//! import of older history) lands by its own time: before the cursor if newer, on a later page
//! if older. Pages never repeat a row, even when the cursor's own deployment has since finished
//! and moved up the list.
//!
//! A cursor says nothing a client does not already know: the page shows that deployment's id and
//! its time. It counts nothing (no global position, so one workspace cannot measure another's
//! activity). It is a position, not a record: it keeps working after its deployment is deleted,
//! and in another workspace it only means "older than this time" there.

use std::fmt;

use shiplog_domain::timestamp::Timestamp;

use crate::ids::DeploymentId;

/// The default page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest page size.
pub const MAX_LIMIT: u32 = 200;

/// Where a page ends: `t`, the last item's time in microseconds since the epoch, `d` and its id
/// without dashes. A cursor made before listings were in time order (`d` and the id alone) is
/// still read: the store looks that deployment's time up, in the caller's workspace only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor {
    id: DeploymentId,
    at: Option<Timestamp>,
}

impl Cursor {
    /// The cursor after the deployment `last`, listed at `at`.
    pub const fn after(last: DeploymentId, at: Timestamp) -> Self {
        Self {
            id: last,
            at: Some(at),
        }
    }

    /// The page's last deployment.
    pub const fn last(self) -> DeploymentId {
        self.id
    }

    /// The time that deployment was listed at; `None` for an id-only cursor.
    pub const fn at(self) -> Option<Timestamp> {
        self.at
    }

    /// Reads a cursor a client sent back.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let (at, id) = match value.strip_prefix('t') {
            Some(rest) => {
                let (micros, id) = rest.split_once('d')?;
                if micros.is_empty() || !micros.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let at = Timestamp::from_unix_micros(micros.parse().ok()?).ok()?;
                (Some(at), id)
            }
            None => (None, value.strip_prefix('d')?),
        };
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        DeploymentId::parse(id).map(|id| Self { id, at })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = self.at {
            write!(f, "t{}", at.unix_micros())?;
        }
        write!(f, "d{}", self.id.as_uuid().simple())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = DeploymentId::parse("01900000-0000-7000-8000-000000000007").unwrap();
        let at = Timestamp::from_unix_micros(1_750_000_000_123_456).unwrap();
        let cursor = Cursor::after(id, at);
        assert_eq!(
            cursor.to_string(),
            "t1750000000123456d01900000000070008000000000000007"
        );
        assert_eq!(Cursor::parse(&cursor.to_string()), Some(cursor));
        let before_time_order = Cursor::parse("d01900000000070008000000000000007").unwrap();
        assert_eq!(
            (before_time_order.last(), before_time_order.at()),
            (id, None)
        );
        assert_eq!(
            before_time_order.to_string(),
            "d01900000000070008000000000000007"
        );
        for bad in [
            "",
            "d",
            "c1234",
            "d1234",
            "t",
            "td01900000000070008000000000000007",
            "t12xd01900000000070008000000000000007",
            "t99999999999999999999d01900000000070008000000000000007",
            "t1750000000123456",
            "t-5d01900000000070008000000000000007",
            "t1750000000123456d0190",
            "01900000000070008000000000000007",
            "dzz900000000070008000000000000007",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
    }
}
