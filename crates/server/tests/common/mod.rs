//! What the server's suites share.

/// Signs in to the dashboard of the server at `base` with `key`; returns the session's
/// `Cookie` header value.
pub(crate) async fn sign_in(client: &awc::Client, base: &str, key: &str) -> String {
    let response = client
        .post(format!("{base}/sign-in"))
        .send_form(&[("key", key), ("next", "/")])
        .await
        .unwrap();
    response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned()
}
