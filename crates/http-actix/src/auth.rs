//! Credentials in requests.

use actix_web::HttpRequest;

/// The headers an API key may come in, in the order they are read.
pub const KEY_HEADERS: [&str; 3] = ["x-api-key", "x-clienwork-api-key", "x-api-token"];

/// The API key a request presents: `Authorization: Bearer <key>`, else the first of
/// [`KEY_HEADERS`] that is set.
pub fn presented_key(request: &HttpRequest) -> Option<String> {
    let headers = request.headers();
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        });
    bearer
        .or_else(|| {
            KEY_HEADERS.iter().find_map(|name| {
                headers
                    .get(*name)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.trim().to_owned())
            })
        })
        .filter(|key| !key.is_empty())
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn every_documented_header_carries_a_key() {
        for (name, value) in [
            ("Authorization", "Bearer shiplog_a"),
            ("authorization", "bearer   shiplog_a "),
            ("X-API-Key", "shiplog_a"),
            ("X-Clienwork-API-Key", "shiplog_a"),
            ("X-API-Token", " shiplog_a"),
        ] {
            let request = TestRequest::default()
                .insert_header((name, value))
                .to_http_request();
            assert_eq!(
                presented_key(&request).as_deref(),
                Some("shiplog_a"),
                "{name}"
            );
        }
        let none = TestRequest::default()
            .insert_header(("Authorization", "Basic abc"))
            .to_http_request();
        assert_eq!(presented_key(&none), None);
        let empty = TestRequest::default()
            .insert_header(("X-API-Key", "  "))
            .to_http_request();
        assert_eq!(presented_key(&empty), None);
    }
}
