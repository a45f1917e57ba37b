//! Cursor pagination. A cursor names the last item of a page; the next page is what was stored
//! before it. New records always land after it, so pages never shift or repeat.
//!
//! A cursor says nothing a client does not already know: it is the id of the page's last
//! deployment, which the page itself shows. It counts nothing (no global position, so one
//! workspace cannot measure another's activity), and it only works in the workspace whose
//! listing made it.

use std::fmt;

use crate::ids::DeploymentId;

/// The default page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest page size.
pub const MAX_LIMIT: u32 = 200;

/// Where a page ends: `d` followed by the last item's id without dashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor(DeploymentId);

impl Cursor {
    /// The cursor after the deployment `last`.
    pub const fn after(last: DeploymentId) -> Self {
        Self(last)
    }

    /// The page's last deployment.
    pub const fn last(self) -> DeploymentId {
        self.0
    }

    /// Reads a cursor a client sent back.
    pub fn parse(value: &str) -> Option<Self> {
        let hex = value.trim().strip_prefix('d')?;
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        DeploymentId::parse(hex).map(Self)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "d{}", self.0.as_uuid().simple())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = DeploymentId::parse("01900000-0000-7000-8000-000000000007").unwrap();
        let cursor = Cursor::after(id);
        assert_eq!(cursor.to_string(), "d01900000000070008000000000000007");
        assert_eq!(Cursor::parse(&cursor.to_string()), Some(cursor));
        for bad in [
            "",
            "d",
            "c1234",
            "d1234",
            "01900000000070008000000000000007",
            "dzz900000000070008000000000000007",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
    }
}
