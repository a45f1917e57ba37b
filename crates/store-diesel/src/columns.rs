//! Row types and their conversion to and from the app's records. Inserts bind `None` as `NULL`
//! (`treat_none_as_default_value = false`), so each insert has one SQL text and its prepared
//! statement is cached; with `DEFAULT` for `None`, diesel re-prepares it on every call. Stored strings are parsed back
//! through the domain's parsers, so a bad row is a `Corrupt` error, never a panic.

use shiplog_domain::dora::ReworkReason;
use shiplog_domain::status::DeploymentStatus;
use shiplog_domain::timestamp::Timestamp;
use uuid::Uuid;

use crate::error::{StoreError, corrupt};

pub(crate) fn uuid(value: &str) -> Result<Uuid, StoreError> {
    Uuid::try_parse(value).map_err(|_| corrupt("id", value))
}

pub(crate) fn time(micros: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_unix_micros(micros).map_err(|_| corrupt("timestamp", &micros.to_string()))
}

pub(crate) fn opt_time(micros: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    micros.map(time).transpose()
}

pub(crate) fn status(value: &str) -> Result<DeploymentStatus, StoreError> {
    DeploymentStatus::parse(value).map_err(|_| corrupt("status", value))
}

macro_rules! parse_or_corrupt {
    ($ty:ty, $value:expr, $what:literal) => {
        <$ty>::parse($value).map_err(|_| $crate::error::corrupt($what, $value))
    };
}
pub(crate) use parse_or_corrupt;

/// A stored rework signal.
pub(crate) fn rework(column: Option<&str>) -> Result<Option<ReworkReason>, StoreError> {
    column
        .map(|value| ReworkReason::parse(value).ok_or_else(|| corrupt("rework", value)))
        .transpose()
}

/// A short text column (an id) read without allocating: the DORA read decodes one per row
/// and keeps one shared copy per distinct value ([`Shared`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, diesel::deserialize::FromSqlRow)]
pub(crate) struct ShortText {
    len: u8,
    bytes: [u8; SHORT_TEXT],
}

/// The longest [`ShortText`]: ids are UUIDs (36 characters).
const SHORT_TEXT: usize = 40;

impl ShortText {
    pub(crate) fn new(text: &str) -> diesel::deserialize::Result<Self> {
        let mut bytes = [0; SHORT_TEXT];
        let len = u8::try_from(text.len())
            .ok()
            .filter(|&len| usize::from(len) <= SHORT_TEXT)
            .ok_or_else(|| format!("an id of {} bytes is longer than {SHORT_TEXT}", text.len()))?;
        bytes
            .get_mut(..text.len())
            .ok_or("unreachable: the length was checked")?
            .copy_from_slice(text.as_bytes());
        Ok(Self { len, bytes })
    }

    pub(crate) fn as_str(&self) -> &str {
        // Copied from a `&str` whole, so the bytes are UTF-8.
        self.bytes
            .get(..usize::from(self.len))
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .unwrap_or_default()
    }
}

impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::sqlite::Sqlite> for ShortText {
    fn from_sql(
        mut value: diesel::sqlite::SqliteValue<'_, '_, '_>,
    ) -> diesel::deserialize::Result<Self> {
        Self::new(value.read_text())
    }
}

impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for ShortText {
    fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        Self::new(std::str::from_utf8(value.as_bytes())?)
    }
}

impl diesel::deserialize::FromSql<diesel::sql_types::Text, crate::conn::MultiBackend>
    for ShortText
{
    fn from_sql(
        value: <crate::conn::MultiBackend as diesel::backend::Backend>::RawValue<'_>,
    ) -> diesel::deserialize::Result<Self> {
        value.from_sql::<Self, diesel::sql_types::Text>()
    }
}

/// One shared copy of each distinct [`ShortText`] of a read.
#[derive(Default)]
pub(crate) struct Shared(rustc_hash::FxHashMap<ShortText, std::sync::Arc<str>>);

impl Shared {
    /// The shared copy of `text`.
    pub(crate) fn get(&mut self, text: ShortText) -> std::sync::Arc<str> {
        self.0
            .entry(text)
            .or_insert_with(|| text.as_str().into())
            .clone()
    }

    /// The shared copy of `text`, from a `&str`.
    pub(crate) fn get_str(&mut self, text: &str) -> Result<std::sync::Arc<str>, StoreError> {
        let short = ShortText::new(text).map_err(|_| corrupt("id", text))?;
        Ok(self.get(short))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_keep_their_bytes_and_refuse_what_does_not_fit() {
        let id = "0b5e3f0e-9a43-4c1e-8d0a-6c1f2d3e4f50";
        let short = ShortText::new(id).unwrap();
        assert_eq!(short.as_str(), id);
        assert_eq!(ShortText::new("").unwrap().as_str(), "");
        assert_eq!(
            ShortText::new(&"é".repeat(20)).unwrap().as_str(),
            "é".repeat(20)
        );
        assert!(ShortText::new(&"x".repeat(SHORT_TEXT + 1)).is_err());
        let mut shared = Shared::default();
        let a = shared.get(short);
        let b = shared.get_str(id).unwrap();
        assert!(std::sync::Arc::ptr_eq(&a, &b), "one copy per distinct id");
        assert_eq!(&*a, id);
        assert!(shared.get_str(&"x".repeat(100)).is_err());
    }
}
