//! JSON bodies with errors that name the field.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use shiplog_domain::timestamp::Timestamp;

/// An optional time where a blank string counts as absent: CI systems fill a variable they do
/// not have with "" (`${{ github.event.head_commit.timestamp }}` on a manual run).
pub(crate) fn blank_is_none<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Timestamp>, D::Error> {
    match Option::<serde_json::Value>::deserialize(deserializer)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(value) => Timestamp::deserialize(value)
            .map(Some)
            .map_err(D::Error::custom),
    }
}

/// Parses a JSON body; the error says where (`commit_sha: invalid type: …`) and what.
///
/// Every body shiplog reads is an object: an array is refused here, since serde would otherwise
/// read a struct from an array of its fields in order (`[]` for one whose fields are all
/// optional).
///
/// Text holding U+0000 is refused here, naming the field, whatever the route: SQLite would store
/// it and PostgreSQL would refuse the statement, so the same request must get the same 400 on
/// both backends instead of an outage signal on one.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err("the request body is empty: send a JSON object".to_owned()),
        Some(b'[') => return Err("the body is a JSON array: send a JSON object ({…})".to_owned()),
        Some(_) => {}
    }
    if let Some(path) = nul_text(body) {
        return Err(format!(
            "{path}: holds the NUL character (\\u0000), which no text field may hold: remove it"
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            format!("the body is not valid JSON ({inner})")
        } else if path == "." || path.is_empty() {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        }
    })
}

/// Where a string or key of the body holds U+0000, if anywhere (`apps[0].envs[1]`, `.` for the
/// whole body). JSON can only carry it escaped, so bodies without `\u0000` are not walked.
fn nul_text(body: &[u8]) -> Option<String> {
    if !body.windows(6).any(|w| w == b"\\u0000") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    find_nul(&value, String::new())
}

fn find_nul(value: &serde_json::Value, path: String) -> Option<String> {
    let here = |path: String| {
        if path.is_empty() {
            ".".to_owned()
        } else {
            path
        }
    };
    match value {
        serde_json::Value::String(text) => text.contains('\0').then(|| here(path)),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| find_nul(item, format!("{path}[{i}]"))),
        serde_json::Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let inner = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                Some(here(path.clone()))
            } else {
                find_nul(item, inner)
            }
        }),
        _ => None,
    }
}

/// Present and `null` (`Some(None)`) told apart from absent (`None`), for changes where `null`
/// clears a field and an absent one leaves it.
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        event: String,
        count: Option<u32>,
    }

    #[test]
    fn errors_name_the_field() {
        let err = parse::<Body>(br#"{"event": "x", "count": "many"}"#).unwrap_err();
        assert!(err.starts_with("count: invalid type"), "{err}");
        let err = parse::<Body>(br#"{"count": 1}"#).unwrap_err();
        assert!(err.contains("missing field `event`"), "{err}");
        let err = parse::<Body>(b"{").unwrap_err();
        assert!(err.starts_with("the body is not valid JSON"), "{err}");
        let err = parse::<Body>(b"  ").unwrap_err();
        assert!(err.contains("empty"), "{err}");
        // serde alone would read this array as `{"event": "deploy.completed", "count": 1}`.
        let err = parse::<Body>(br#" ["deploy.completed", 1]"#).unwrap_err();
        assert!(err.contains("JSON array"), "{err}");
    }

    #[test]
    fn nul_characters_are_refused_naming_where() {
        for (body, path) in [
            (r#"{"event": "a\u0000b"}"#, "event"),
            (
                r#"{"event": "x", "apps": [{"envs": ["ok", "\u0000"]}]}"#,
                "apps[0].envs[1]",
            ),
            (r#"{"event": "x", "meta": {"k\u0000": 1}}"#, "meta"),
            (r#""\u0000""#, "."),
        ] {
            let err = parse::<serde_json::Value>(body.as_bytes()).unwrap_err();
            assert!(
                err.starts_with(&format!("{path}: holds the NUL")),
                "{body}: {err}"
            );
        }
        // An escaped backslash followed by u0000 is text, not NUL.
        let fine: Body = parse(br#"{"event": "\\u0000"}"#).unwrap();
        assert_eq!(fine.event, "\\u0000");
    }
}
