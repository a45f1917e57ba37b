//! # shiplog-sender
//!
//! The HTTP client of outgoing hook deliveries: implements the `HookSender` port of
//! `shiplog-app` with reqwest (rustls, HTTP/1.1 and HTTP/2, no system proxy).
//!
//! Private targets are refused in three places, unless the operator allows them
//! (`SHIPLOG_HOOKS_ALLOW_PRIVATE_TARGETS`): a URL whose host is an address or a local name is
//! refused before sending ([`check_url`]); a name is resolved by [`GuardedResolver`], which
//! refuses it when any address it resolves to is loopback, private, link-local (cloud metadata
//! lives there), unique-local, multicast, Teredo or otherwise not globally routable; and each
//! redirect hop (at most 5, followed by [`ReqwestSender`] itself) is checked like the first URL.
//! The hook's own headers go to the first URL's origin only. Every request has a 15 s time-out, and at most
//! 64 KiB of a response body is read.
//!
//! ## What this crate must never do
//! It never follows a redirect or connects to an address the guard refuses, never reads an
//! unbounded body, never uses proxy settings from the environment, and never logs or returns a
//! URL or header value (they may hold tokens): errors are stripped of their URL.
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use shiplog_app::hooks::{HookMethod, OutgoingRequest, SendResult};
use shiplog_app::ports::HookSender;

/// The time-out of one delivery attempt.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// The most of a response body read.
pub const MAX_BODY: usize = 64 * 1024;
/// The most redirects followed.
pub const MAX_REDIRECTS: usize = 5;

/// How the sender behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderOptions {
    /// Allow loopback, private and link-local targets (for tests and closed networks).
    pub allow_private_targets: bool,
    /// The time-out of one attempt.
    pub timeout: Duration,
}

impl Default for SenderOptions {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            timeout: TIMEOUT,
        }
    }
}

/// The reqwest-backed [`HookSender`].
#[derive(Clone)]
pub struct ReqwestSender {
    client: reqwest::Client,
    options: SenderOptions,
}

impl ReqwestSender {
    /// Builds the client.
    pub fn new(options: SenderOptions) -> Result<Self, String> {
        let allow = options.allow_private_targets;
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { allow }))
            // Redirects are followed by `send` itself, which decides per hop which headers go.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self { client, options })
    }
}

/// Whether an address is one hooks may not reach by default: anything not globally routable.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let [s0, s1, s2, s3, s4, s5, s6, s7] = v6.segments();
            // IPv4-compatible (::a.b.c.d, deprecated but still routed by some stacks) and 6to4
            // (2002:aabb:ccdd::/48) carry an IPv4 address that must pass the same check.
            let embedded = |hi: u16, lo: u16| {
                let [a, b] = hi.to_be_bytes();
                let [c, d] = lo.to_be_bytes();
                Ipv4Addr::new(a, b, c, d)
            };
            if [s0, s1, s2, s3, s4, s5] == [0; 6] && forbidden_v4(embedded(s6, s7)) {
                return true;
            }
            if s0 == 0x2002 && forbidden_v4(embedded(s1, s2)) {
                return true;
            }
            // IPv4-translated (::ffff:0:a.b.c.d, RFC 2765) is never a public address.
            if [s0, s1, s2, s3, s4, s5] == [0, 0, 0, 0, 0xffff, 0] {
                return true;
            }
            let first = v6.segments().first().copied().unwrap_or_default();
            v6.is_loopback()
                || (s0 == 0x2001 && s1 == 0) // Teredo (2001::/32): tunnels to an IPv4 address
                || [s0, s1, s2, s3] == [0x100, 0, 0, 0] // discard-only (100::/64)
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local (incl. fd00:ec2::254, AWS metadata)
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                || v6.segments().starts_with(&[0x64, 0xff9b]) // NAT64 of any v4
                || v6.segments().starts_with(&[0x2001, 0xdb8]) // documentation
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16: cloud metadata endpoints
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240 // reserved
}

/// Names that are local whatever they resolve to.
fn local_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host.ends_with(".local")
        || host.ends_with(".internal")
}

/// Parses a target URL as written or rendered, refusing one whose authority is empty: `url`
/// would read `http:///x` as the host `x` (a template whose value was empty) and look it up.
pub fn parse_target(raw: &str) -> Result<Url, String> {
    let raw = raw.trim();
    let authority = raw.split_once("://").map(|(_, rest)| rest);
    if authority.is_none_or(|rest| rest.is_empty() || rest.starts_with(['/', '?', '#'])) {
        return Err(format!(
            "{raw:?} has no host: send http(s)://host/path (did a template render empty?)"
        ));
    }
    Url::parse(raw).map_err(|e| format!("not a valid URL ({e}): use https://host/path"))
}

/// Checks a URL before any connection: `http` or `https`, a host, and (unless allowed) no
/// forbidden address or local name as host.
pub fn check_url(url: &Url, allow_private: bool) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "the URL scheme must be http or https, not {}",
            url.scheme()
        ));
    }
    let host = match url.host() {
        None => return Err("the URL has no host".to_owned()),
        Some(host) => host,
    };
    if allow_private {
        return Ok(());
    }
    let refused = match host {
        url::Host::Ipv4(ip) => is_forbidden(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => is_forbidden(IpAddr::V6(ip)),
        url::Host::Domain(name) => local_name(name),
    };
    if refused {
        Err(format!(
            "{host} is a loopback, private, link-local or metadata address; an operator can allow such targets with SHIPLOG_HOOKS_ALLOW_PRIVATE_TARGETS=true"
        ))
    } else {
        Ok(())
    }
}

/// Resolves names and refuses those that lead to a forbidden address.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// Allow every address.
    pub allow: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow && let Some(bad) = addrs.iter().find(|a| is_forbidden(a.ip())) {
                let message = format!(
                    "{host} resolves to {}, a loopback, private, link-local or metadata address",
                    bad.ip()
                );
                return Err(message.into());
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The innermost cause of an error, without the URL.
fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_redirect() {
        "redirect refused"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(&error);
    let mut last = None;
    while let Some(cause) = source {
        last = Some(cause.to_string());
        source = cause.source();
    }
    if let Some(cause) = last {
        text.push_str(": ");
        text.push_str(&cause);
    }
    text
}

/// The redirect statuses followed, and whether each keeps the method and body.
fn redirect_keeps_method(status: reqwest::StatusCode) -> Option<bool> {
    match status.as_u16() {
        301..=303 => Some(false),
        307 | 308 => Some(true),
        _ => None,
    }
}

impl ReqwestSender {
    /// Sends the request and follows at most [`MAX_REDIRECTS`] redirects, each hop checked like
    /// the first URL, all within one time-out. The hook's own headers (which may hold tokens) go
    /// only to the first URL's origin; a 301, 302 or 303 turns a request into a `GET` without
    /// body, as browsers do.
    async fn follow(
        &self,
        request: OutgoingRequest,
        first: Url,
        started: Instant,
    ) -> Result<reqwest::Response, String> {
        let origin = first.origin();
        let mut url = first;
        let mut method = match request.method {
            HookMethod::Post => reqwest::Method::POST,
            HookMethod::Put => reqwest::Method::PUT,
            HookMethod::Patch => reqwest::Method::PATCH,
        };
        let mut body = Some(request.body);
        for hop in 0..=MAX_REDIRECTS {
            let left = self.options.timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err("timed out".to_owned());
            }
            let mut builder = self
                .client
                .request(method.clone(), url.clone())
                .timeout(left);
            if let Some(body) = &body {
                builder = builder.body(body.clone());
            }
            for (name, value) in &request.headers {
                if body.is_some() || name != "content-type" {
                    builder = builder.header(name.as_str(), value.reveal());
                }
            }
            if url.origin() == origin {
                for (name, value) in &request.hook_headers {
                    builder = builder.header(name.as_str(), value.reveal());
                }
            }
            let response = builder
                .send()
                .await
                .map_err(|e| describe(e.without_url()))?;
            let Some(keeps_method) = redirect_keeps_method(response.status()) else {
                return Ok(response);
            };
            let Some(location) = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                return Ok(response);
            };
            if hop == MAX_REDIRECTS {
                return Err(format!(
                    "redirect refused: more than {MAX_REDIRECTS} redirects"
                ));
            }
            let next = url
                .join(location)
                .map_err(|_| "redirect refused: the Location header is not a URL".to_owned())?;
            check_url(&next, self.options.allow_private_targets)
                .map_err(|why| format!("redirect refused: {why}"))?;
            if !keeps_method && method != reqwest::Method::GET {
                method = reqwest::Method::GET;
                body = None;
            }
            url = next;
        }
        Err(format!(
            "redirect refused: more than {MAX_REDIRECTS} redirects"
        ))
    }
}

#[async_trait]
impl HookSender for ReqwestSender {
    async fn send(&self, request: OutgoingRequest) -> SendResult {
        let started = Instant::now();
        let elapsed =
            |started: Instant| u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let url = match parse_target(request.url.reveal()) {
            Ok(url) => url,
            Err(e) => {
                return SendResult {
                    error: Some(format!("the rendered target_url is refused: {e}")),
                    ..SendResult::default()
                };
            }
        };
        if let Err(why) = check_url(&url, self.options.allow_private_targets) {
            return SendResult {
                error: Some(format!("target refused: {why}")),
                ..SendResult::default()
            };
        }
        let response = match self.follow(request, url, started).await {
            Ok(response) => response,
            Err(error) => {
                return SendResult {
                    duration_ms: elapsed(started),
                    error: Some(error),
                    ..SendResult::default()
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        let mut error = None;
        let mut response = response;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_BODY.saturating_sub(body.len());
                    body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
                    if body.len() >= MAX_BODY {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(describe(e.without_url()));
                    break;
                }
            }
        }
        SendResult {
            status: Some(status),
            retry_after,
            body: Some(String::from_utf8_lossy(&body).into_owned()),
            duration_ms: elapsed(started),
            error,
        }
    }

    fn check_target(&self, url: &str) -> Result<(), String> {
        let url = parse_target(url)?;
        check_url(&url, self.options.allow_private_targets)
    }
}

#[cfg(test)]
mod tests;
