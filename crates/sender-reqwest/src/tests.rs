#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::str::FromStr as _;
use std::time::Duration;

use shiplog_app::hooks::{HookMethod, OutgoingRequest, SecretText};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

fn sender(allow: bool) -> ReqwestSender {
    ReqwestSender::new(SenderOptions {
        allow_private_targets: allow,
        timeout: Duration::from_millis(500),
    })
    .unwrap()
}

fn request(url: &str) -> OutgoingRequest {
    OutgoingRequest {
        method: HookMethod::Post,
        url: SecretText::new(url),
        headers: vec![(
            "content-type".to_owned(),
            SecretText::new("application/json"),
        )],
        hook_headers: vec![("x-token".to_owned(), SecretText::new("t0ken"))],
        body: br#"{"a":1}"#.to_vec(),
    }
}

#[test]
fn private_loopback_link_local_and_metadata_addresses_are_forbidden() {
    for ip in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fd00:ec2::254",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        // IPv4-compatible and 6to4 addresses that embed a private IPv4.
        "::127.0.0.1",
        "::10.0.0.1",
        "2002:7f00:1::",
        "2002:a9fe:a9fe::1",
        "2002:c0a8:0101::",
        // IPv4-translated, Teredo and discard-only.
        "::ffff:0:7f00:1",
        "::ffff:0:0",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "2001::1",
        "100::1",
    ] {
        assert!(is_forbidden(ip.parse().unwrap()), "{ip} should be refused");
    }
    for ip in [
        "140.82.112.3",
        "1.1.1.1",
        "2606:4700::1111",
        "2002:8c52:7003::1",
    ] {
        assert!(!is_forbidden(ip.parse().unwrap()), "{ip} should be allowed");
    }
}

#[test]
fn urls_are_checked_before_any_connection() {
    let s = sender(false);
    for url in [
        "http://127.0.0.1:9/x",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:8080/",
        "http://metadata.google.internal/",
        "ftp://example.com/",
        "not a url",
        "http://[::127.0.0.1]/",
        "http://[2002:7f00:1::]/",
        // A template whose value was empty: `url` would read it as host `x`.
        "http:///x",
        "https://",
        "http://?q=1",
    ] {
        assert!(s.check_target(url).is_err(), "{url} should be refused");
    }
    assert!(
        s.check_target("https://api.github.com/repos/o/r/statuses/abc")
            .is_ok()
    );
    assert!(sender(true).check_target("http://127.0.0.1:9/x").is_ok());
    let why = s.check_target("http://10.0.0.1/").unwrap_err();
    assert!(why.contains("SHIPLOG_HOOKS_ALLOW_PRIVATE_TARGETS"), "{why}");
}

#[tokio::test]
async fn names_resolving_to_private_addresses_are_refused_by_the_resolver() {
    let refused = GuardedResolver { allow: false }
        .resolve(Name::from_str("localhost").unwrap())
        .await;
    let error = refused
        .err()
        .expect("localhost must be refused")
        .to_string();
    assert!(error.contains("loopback"), "{error}");
    let allowed = GuardedResolver { allow: true }
        .resolve(Name::from_str("localhost").unwrap())
        .await
        .unwrap();
    assert!(allowed.into_iter().all(|a| a.ip().is_loopback()));
}

#[tokio::test]
async fn a_refused_target_is_never_contacted() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let result = sender(false)
        .send(request(&format!("{}/hook", server.uri())))
        .await;
    assert_eq!(result.status, None);
    assert!(result.error.unwrap().starts_with("target refused"));
}

#[tokio::test]
async fn sends_method_headers_and_body_and_reports_the_answer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .and(header("x-token", "t0ken"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "120")
                .set_body_string("slow down"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let result = sender(true)
        .send(request(&format!("{}/hook", server.uri())))
        .await;
    assert_eq!(result.status, Some(429));
    assert_eq!(result.retry_after.as_deref(), Some("120"));
    assert_eq!(result.body.as_deref(), Some("slow down"));
    assert_eq!(result.error, None);
    let received = server.received_requests().await.unwrap();
    assert_eq!(received[0].body, br#"{"a":1}"#);
}

#[tokio::test]
async fn response_bodies_are_read_only_up_to_the_bound() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(MAX_BODY * 4)))
        .mount(&server)
        .await;
    let result = sender(true).send(request(&server.uri())).await;
    assert_eq!(result.status, Some(200));
    assert_eq!(result.body.unwrap().len(), MAX_BODY);
}

#[tokio::test]
async fn slow_receivers_time_out_without_leaking_the_url() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let url = format!("{}/secret-path-token", server.uri());
    let result = sender(true).send(request(&url)).await;
    assert_eq!(result.status, None);
    let error = result.error.unwrap();
    assert!(error.starts_with("timed out"), "{error}");
    assert!(!error.contains("secret-path-token"), "{error}");
}

#[tokio::test]
async fn redirects_to_refused_addresses_are_not_followed() {
    // The guard is the redirect policy's check: a public first hop redirected to a private
    // address stops there. Checked here on the policy's own function.
    let private: Url = "http://192.168.0.10/admin".parse().unwrap();
    assert!(check_url(&private, false).is_err());
    // And a redirect chain is bounded even when targets are allowed.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(307).insert_header("Location", "/again"))
        .mount(&server)
        .await;
    let result = sender(true).send(request(&server.uri())).await;
    assert_eq!(result.status, None);
    assert!(result.error.unwrap().contains("redirect"));
}

#[tokio::test]
async fn the_hooks_headers_go_to_the_targets_origin_only() {
    let target = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(path("/same"))
        .respond_with(ResponseTemplate::new(307).insert_header("Location", "/moved"))
        .mount(&target)
        .await;
    Mock::given(path("/moved"))
        .respond_with(
            ResponseTemplate::new(308)
                .insert_header("Location", format!("{}/away", elsewhere.uri()).as_str()),
        )
        .mount(&target)
        .await;
    Mock::given(path("/away"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&elsewhere)
        .await;
    let result = sender(true)
        .send(request(&format!("{}/same", target.uri())))
        .await;
    assert_eq!(result.status, Some(200), "{:?}", result.error);
    let first = target.received_requests().await.unwrap();
    assert_eq!(first.len(), 2);
    for hop in &first {
        assert_eq!(
            hop.headers.get("x-token").unwrap(),
            "t0ken",
            "same origin keeps it"
        );
        assert_eq!(hop.body, br#"{"a":1}"#, "307 and 308 keep the body");
    }
    let away = elsewhere.received_requests().await.unwrap();
    assert_eq!(away.len(), 1);
    assert!(
        away[0].headers.get("x-token").is_none(),
        "another origin never sees it"
    );
    assert_eq!(away[0].method.as_str(), "POST");
    assert_eq!(
        away[0].headers.get("content-type").unwrap(),
        "application/json"
    );
}

#[tokio::test]
async fn a_303_turns_the_request_into_a_get_without_body() {
    let target = MockServer::start().await;
    Mock::given(path("/post"))
        .respond_with(ResponseTemplate::new(303).insert_header("Location", "/result"))
        .mount(&target)
        .await;
    Mock::given(method("GET"))
        .and(path("/result"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&target)
        .await;
    let result = sender(true)
        .send(request(&format!("{}/post", target.uri())))
        .await;
    assert_eq!(result.status, Some(200), "{:?}", result.error);
    let hops = target.received_requests().await.unwrap();
    assert!(hops[1].body.is_empty());
}
