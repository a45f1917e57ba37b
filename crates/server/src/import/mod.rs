//! `shiplog import`: history from GitHub's or GitLab's REST API, or from an NDJSON file, sent to
//! a shiplog server's `POST /api/v1/import` in chunks.
//!
//! The sources ([`github`], [`gitlab`], [`file`]) turn what they read into import records
//! (one JSON object per deployment, the endpoint's format) and hand them to a [`Sender`], which
//! posts them [`CHUNK`] at a time, retrying a chunk that could not be delivered (the import is
//! idempotent, so a chunk sent twice adds nothing), adds up the answers and reports progress.
//! Reading a provider's API goes through [`Api`], which honours its rate limits and retries its
//! failures. A source saves where it got to after each chunk is answered ([`State`]), so an
//! interrupted import resumes there and a finished one, run again, reads only what is new.
//!
//! This is the `shiplog import` command's own output (progress, `--dry-run`'s records), hence
//! its prints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

pub mod file;
pub mod github;
pub mod gitlab;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Records per request to the server.
pub const CHUNK: usize = 500;
/// How many times a request is tried before the import stops.
pub const ATTEMPTS: u32 = 6;

/// Where the records go.
#[derive(Debug, Clone)]
pub struct Target {
    /// shiplog's base address.
    pub url: String,
    /// An `ingest` or `admin` key.
    pub key: String,
    /// The project of records that name none; none: the key's own.
    pub project: Option<String>,
}

/// What the server answered, added up over the chunks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records sent.
    pub sent: u64,
    /// Records written.
    pub accepted: u64,
    /// Records already recorded.
    pub duplicates: u64,
    /// Records refused.
    pub rejected: u64,
    /// The first refusals: (record number in this import, error).
    pub refusals: Vec<(u64, String)>,
    /// What a source left out, and why (`"not finished"` → 3).
    pub skipped: Vec<(String, u64)>,
}

impl Summary {
    /// Counts a record a source left out.
    pub fn skip(&mut self, why: &str) {
        match self.skipped.iter_mut().find(|(w, _)| w == why) {
            Some((_, n)) => *n += 1,
            None => self.skipped.push((why.to_owned(), 1)),
        }
    }

    /// The one-line result.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{} records sent: {} accepted, {} duplicates, {} rejected",
            self.sent, self.accepted, self.duplicates, self.rejected
        );
        for (why, n) in &self.skipped {
            line.push_str(&format!("; {n} skipped ({why})"));
        }
        line
    }
}

/// Progress on a terminal (a bar) or in a log (a line every few seconds).
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_line: Instant,
    what: String,
}

impl Progress {
    /// Progress for an import of `what`, `total` records when known.
    pub fn new(what: &str, total: Option<u64>) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(total) => indicatif::ProgressBar::new(total),
                None => indicatif::ProgressBar::new_spinner(),
            };
            let template = if total.is_some() {
                "{spinner} {msg} [{bar:30}] {pos}/{len} records ({per_sec}, {eta} left)"
            } else {
                "{spinner} {msg} {pos} records ({per_sec})"
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(what.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            bar,
            last_line: Instant::now(),
            what: what.to_owned(),
        }
    }

    /// After a chunk was answered.
    pub fn update(&mut self, summary: &Summary) {
        match &self.bar {
            Some(bar) => bar.set_position(summary.sent),
            None if self.last_line.elapsed() >= Duration::from_secs(5) => {
                self.last_line = Instant::now();
                eprintln!("shiplog import {}: {}", self.what, summary.line());
            }
            None => {}
        }
    }

    /// Says something beside the bar (a rate-limit wait, a retry).
    pub fn say(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// Ends the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// How many refusals a summary keeps.
const KEPT_REFUSALS: usize = 20;

/// Sends records to the server in chunks, or prints them (`--dry-run`).
pub struct Sender {
    client: reqwest::Client,
    target: Target,
    dry_run: bool,
    chunk: String,
    in_chunk: u64,
    /// What was answered so far.
    pub summary: Summary,
    /// Progress output.
    pub progress: Progress,
}

impl Sender {
    /// A sender to `target` (nothing is sent when `dry_run`: each record is printed instead).
    pub fn new(target: Target, dry_run: bool, progress: Progress) -> Self {
        Self {
            client: client(),
            target,
            dry_run,
            chunk: String::new(),
            in_chunk: 0,
            summary: Summary::default(),
            progress,
        }
    }

    /// Adds one record; sends the chunk once it is full. `Ok(true)` when a chunk was answered
    /// (a source may then save where it got to).
    pub async fn push(&mut self, record: &Value) -> Result<bool, String> {
        self.push_line(&record.to_string()).await
    }

    /// Adds one record already written as a line of JSON.
    pub async fn push_line(&mut self, line: &str) -> Result<bool, String> {
        if self.dry_run {
            println!("{line}");
            self.summary.sent += 1;
            return Ok(false);
        }
        self.chunk.push_str(line);
        self.chunk.push('\n');
        self.in_chunk += 1;
        if self.in_chunk as usize >= CHUNK {
            self.flush().await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Sends what is waiting.
    pub async fn flush(&mut self) -> Result<(), String> {
        if self.in_chunk == 0 {
            return Ok(());
        }
        let body = std::mem::take(&mut self.chunk);
        let first = self.summary.sent;
        let answer = self.post(body).await?;
        self.summary.sent += self.in_chunk;
        self.in_chunk = 0;
        let count = |field: &str| answer.get(field).and_then(Value::as_u64).unwrap_or(0);
        self.summary.accepted += count("accepted");
        self.summary.duplicates += count("duplicates");
        self.summary.rejected += count("rejected_count");
        for refusal in answer
            .get("rejected")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if self.summary.refusals.len() < KEPT_REFUSALS {
                let line = refusal.get("line").and_then(Value::as_u64).unwrap_or(0);
                let error = refusal
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                self.summary.refusals.push((first + line, error.to_owned()));
            }
        }
        self.progress.update(&self.summary);
        Ok(())
    }

    async fn post(&self, body: String) -> Result<Value, String> {
        let mut url = format!("{}/api/v1/import", self.target.url.trim_end_matches('/'));
        if let Some(project) = &self.target.project {
            url.push_str("?project=");
            url.push_str(&percent(project));
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .client
                .post(&url)
                .bearer_auth(&self.target.key)
                .header("content-type", "application/x-ndjson")
                .body(body.clone())
                .send()
                .await;
            let why = match sent {
                Ok(response) if response.status().is_success() => {
                    let text = response.text().await.map_err(|e| e.to_string())?;
                    return serde_json::from_str(&text)
                        .map_err(|e| format!("shiplog answered something else than JSON ({e})"));
                }
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    if !(status.is_server_error() || status.as_u16() == 429) {
                        return Err(format!("shiplog answered {status}: {}", text.trim()));
                    }
                    format!("shiplog answered {status}")
                }
                Err(error) => format!("cannot reach {url}: {error}"),
            };
            if attempt >= ATTEMPTS {
                return Err(format!("{why} ({attempt} attempts)"));
            }
            let wait = backoff(attempt);
            self.progress
                .say(&format!("{why}; trying again in {} s", wait.as_secs()));
            tokio::time::sleep(wait).await;
        }
    }
}

/// The wait before attempt `attempt + 1`: 1, 2, 4, 8, 16 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(4))
}

/// The HTTP client of every request the import makes.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("shiplog-import/", env!("CARGO_PKG_VERSION")))
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap_or_default()
}

/// What [`percent`] leaves as it is: RFC 3986's unreserved characters.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A path segment or query value, percent-encoded.
pub fn percent(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, UNRESERVED).to_string()
}

/// A provider's REST API: authenticated GETs that wait out its rate limits and retry its
/// failures.
pub struct Api {
    client: reqwest::Client,
    /// The header that carries the token, and its value.
    auth: Option<(&'static str, String)>,
    /// Until when the primary rate limit is used up (a response said 0 remaining).
    resume_at: Option<SystemTime>,
}

/// Seconds since the epoch.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How long a rate-limited answer asks to wait: `retry-after` (seconds), else until
/// `x-ratelimit-reset` (epoch seconds) when `x-ratelimit-remaining` is 0.
fn rate_limit_wait(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if let Some(seconds) = header("retry-after") {
        return Some(Duration::from_secs(seconds));
    }
    if header("x-ratelimit-remaining") == Some(0) {
        let reset = header("x-ratelimit-reset").unwrap_or_else(|| unix_now() + 60);
        return Some(Duration::from_secs(reset.saturating_sub(unix_now()).max(1)));
    }
    None
}

impl Api {
    /// An API reached with `auth` (`("authorization", "Bearer …")`, `("private-token", …)`).
    pub fn new(auth: Option<(&'static str, String)>) -> Self {
        Self {
            client: client(),
            auth,
            resume_at: None,
        }
    }

    /// GETs `url`: the JSON answer and its headers. Waits out a used-up rate limit first;
    /// a rate-limited answer (403 or 429 with `retry-after`, or 0 remaining) waits and tries
    /// again, as do 5xx answers and failed connections (with backoff, [`ATTEMPTS`] times).
    pub async fn get(
        &mut self,
        url: &str,
        progress: &Progress,
    ) -> Result<(Value, HeaderMap), String> {
        let mut failures = 0;
        loop {
            if let Some(at) = self.resume_at.take()
                && let Ok(wait) = at.duration_since(SystemTime::now())
            {
                progress.say(&format!(
                    "rate limit used up: waiting {} s until it resets",
                    wait.as_secs().max(1)
                ));
                tokio::time::sleep(wait).await;
            }
            let mut request = self.client.get(url).header("accept", "application/json");
            if let Some((name, value)) = &self.auth {
                request = request.header(*name, value);
            }
            let why = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    let limited = rate_limit_wait(&headers);
                    if status.is_success() {
                        if let Some(wait) = limited {
                            self.resume_at = Some(SystemTime::now() + wait);
                        }
                        let body = response.text().await.map_err(|e| e.to_string())?;
                        let value = serde_json::from_str(&body).map_err(|e| {
                            format!("{url} answered something else than JSON ({e})")
                        })?;
                        return Ok((value, headers));
                    }
                    let text = response.text().await.unwrap_or_default();
                    if matches!(status.as_u16(), 403 | 429)
                        && let Some(wait) = limited
                    {
                        progress.say(&format!(
                            "{url}: rate limited ({status}); waiting {} s as asked",
                            wait.as_secs()
                        ));
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    if !status.is_server_error() {
                        return Err(format!("{url} answered {status}: {}", text.trim()));
                    }
                    format!("{url} answered {status}")
                }
                Err(error) => format!("cannot reach {url}: {error}"),
            };
            failures += 1;
            if failures >= ATTEMPTS {
                return Err(format!("{why} ({failures} attempts)"));
            }
            let wait = backoff(failures);
            progress.say(&format!("{why}; trying again in {} s", wait.as_secs()));
            tokio::time::sleep(wait).await;
        }
    }
}

/// The next page a GitHub-style `Link` header names (`<url>; rel="next"`).
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

/// Where a source got to, saved after each answered chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Where an unfinished import goes on (a page's address or number).
    pub resume: Option<String>,
    /// Once an import finished: the newest time it read, where the next one starts.
    pub since: Option<String>,
    /// The newest time read by the unfinished import.
    pub newest: Option<String>,
}

impl State {
    /// The state saved at `path`, or a fresh one.
    pub fn load(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{}: not an import state ({e}); remove it to start over",
                    path.display()
                )
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(error) => Err(format!("{}: {error}", path.display())),
        }
    }

    /// Saves it (written aside, then renamed, so a crash leaves the old one).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let aside = path.with_extension("tmp");
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(&aside, text)
            .and_then(|()| std::fs::rename(&aside, path))
            .map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// The default state file of an import of `source` (`github-acme-shop`), in the current
/// directory.
pub fn default_state(source: &str) -> PathBuf {
    let name: String = source
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    PathBuf::from(format!(".shiplog-import-{name}.json"))
}

/// The non-empty text at `path` in a provider's JSON.
pub(crate) fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The record without its absent fields.
pub(crate) fn without_nulls(mut record: Value) -> Value {
    if let Some(object) = record.as_object_mut() {
        object.retain(|_, v| !v.is_null());
    }
    record
}

/// `--environment-map FROM=TO` pairs.
pub fn map_environment(map: &[(String, String)], name: &str) -> String {
    map.iter()
        .find(|(from, _)| from.eq_ignore_ascii_case(name))
        .map_or_else(|| name.to_owned(), |(_, to)| to.clone())
}

/// Reads `FROM=TO`.
pub fn parse_pair(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
            Ok((from.trim().to_owned(), to.trim().to_owned()))
        }
        _ => Err(format!("{value:?}: write FROM=TO, like production=prod")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_waits_are_read_as_providers_send_them() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "link",
            "<https://api.github.com/repositories/1/deployments?page=2>; rel=\"next\", <https://api.github.com/repositories/1/deployments?page=5>; rel=\"last\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://api.github.com/repositories/1/deployments?page=2")
        );
        headers.insert("link", "<https://x/?page=1>; rel=\"prev\"".parse().unwrap());
        assert_eq!(next_link(&headers), None);
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(rate_limit_wait(&headers), Some(Duration::from_secs(7)));
        headers.remove("retry-after");
        assert_eq!(rate_limit_wait(&headers), None);
        headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
        headers.insert(
            "x-ratelimit-reset",
            (unix_now() + 30).to_string().parse().unwrap(),
        );
        let wait = rate_limit_wait(&headers).unwrap();
        assert!((29..=30).contains(&wait.as_secs()), "{wait:?}");
    }

    #[test]
    fn pairs_and_names() {
        assert_eq!(
            parse_pair("prod=production"),
            Ok(("prod".to_owned(), "production".to_owned()))
        );
        assert!(parse_pair("prod").is_err());
        assert!(parse_pair("=x").is_err());
        let map = vec![("Prod".to_owned(), "production".to_owned())];
        assert_eq!(map_environment(&map, "prod"), "production");
        assert_eq!(map_environment(&map, "staging"), "staging");
        assert_eq!(percent("group/sub project"), "group%2Fsub%20project");
        assert_eq!(
            default_state("github-acme/shop"),
            PathBuf::from(".shiplog-import-github-acme-shop.json")
        );
    }
}
