//! JSON bodies with errors that name the field.

use serde::de::DeserializeOwned;

/// Parses a JSON body; the error says where (`commit_sha: invalid type: …`) and what.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("the request body is empty: send a JSON object".to_owned());
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
    }
}
