//! Cursor pagination. A cursor is the position of the last item of a page in shiplog's
//! insertion order; new records always land before it, so pages never shift or repeat.

use std::fmt;

/// The default page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest page size.
pub const MAX_LIMIT: u32 = 200;

/// Where a page ends. Opaque to clients: `c` followed by a decimal position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cursor(i64);

impl Cursor {
    /// The cursor after the record stored at `position`.
    pub const fn after(position: i64) -> Self {
        Self(position)
    }

    /// The stored position.
    pub const fn position(self) -> i64 {
        self.0
    }

    /// Reads a cursor a client sent back.
    pub fn parse(value: &str) -> Option<Self> {
        let digits = value.trim().strip_prefix('c')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(Self)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = Cursor::after(1234);
        assert_eq!(cursor.to_string(), "c1234");
        assert_eq!(Cursor::parse("c1234"), Some(cursor));
        for bad in ["", "c", "1234", "c-1", "c12x", "c99999999999999999999"] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
    }
}
