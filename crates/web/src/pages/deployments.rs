//! Deployments: the filtered list (`GET /deployments`), its live feed
//! (`GET /deployments/live`, Server-Sent Events) and one deployment (`GET /deployments/{id}`).
//!
//! The live feed reads the first page of the same filters from the store and sends each
//! deployment that is new or changed since the page was rendered, as the table row the page
//! would show. It reads when its workspace's change signal moves ([`crate::live`]: this
//! process's ingest at once, other servers' through one shared poll a second), at most once a
//! second, and every [`live::SAFETY_READ`] regardless; in between it only writes a keep-alive
//! every [`live::KEEPALIVE`]. Its first read happens before the answer starts, so a filter the
//! session may not use is refused with its status (404 for a project it cannot see).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use futures_util::StreamExt as _;
use maud::{Markup, html};
use serde::Deserialize;
use shiplog_app::App;
use shiplog_app::auth::Principal;
use shiplog_app::deployments::{DeploymentDetail, ListDeployments};
use shiplog_app::error::AppError;
use shiplog_app::model::{Changes, Deployment};
use shiplog_domain::changes::ChangeKind;
use shiplog_domain::status::DeploymentStatus;
use shiplog_domain::timestamp::Timestamp;

use crate::WebState;
use crate::layout::{self, Shell};
use crate::live::{self, Subscription};
use crate::pages::{filter, given, hooks, refused, scope};
use crate::session::{COOKIE, Page, PageError, Viewer, encode, html_response};

/// After a change was heard, how long the feed waits at least before reading, so that a burst
/// of ingests is read once.
const LIVE_COALESCE: Duration = Duration::from_millis(200);
/// The least time between two reads of one feed.
const LIVE_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// The list's filters, as the filter form sends them.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct Filters {
    project: Option<String>,
    environment: Option<String>,
    application: Option<String>,
    status: Option<String>,
    /// A UTC date (`YYYY-MM-DD`): from its start.
    since: Option<String>,
    /// A UTC date: up to its end.
    until: Option<String>,
    cursor: Option<String>,
    /// For the live feed: send what changed from this time on.
    changed_since: Option<String>,
}

/// The start of a UTC date, or of the day after it.
fn date(field: &str, value: &str, next_day: bool) -> Result<Timestamp, PageError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let day = time::Date::parse(value, &format)
        .map_err(|_| refused(field, format!("{value:?} is not a date: use YYYY-MM-DD")))?;
    let day = if next_day {
        day.next_day()
            .ok_or_else(|| refused(field, "is too late"))?
    } else {
        day
    };
    Timestamp::from_offset(day.midnight().assume_utc()).map_err(|e| refused(field, e))
}

impl Filters {
    fn request(&self) -> Result<ListDeployments, PageError> {
        let scope = scope(
            self.project.as_ref(),
            self.environment.as_ref(),
            self.application.as_ref(),
        )?;
        Ok(ListDeployments {
            project: scope.project,
            environment: scope.environment,
            application: scope.application,
            status: filter("status", self.status.as_ref(), DeploymentStatus::parse)?,
            since: given(self.since.as_ref())
                .map(|v| date("since", v, false))
                .transpose()?,
            until: given(self.until.as_ref())
                .map(|v| date("until", v, true))
                .transpose()?,
            limit: None,
            cursor: given(self.cursor.as_ref()).map(str::to_owned),
        })
    }

    /// The query string of these filters, without the cursor.
    fn query(&self) -> String {
        [
            ("project", &self.project),
            ("environment", &self.environment),
            ("application", &self.application),
            ("status", &self.status),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .into_iter()
        .filter_map(|(name, value)| given(value.as_ref()).map(|v| format!("{name}={}", encode(v))))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// `GET /deployments.csv`: every deployment the filters match, as CSV (streamed; the API's
/// `GET /api/v1/deployments` with `Accept: text/csv` answers the same).
pub(crate) async fn download(
    state: web::Data<WebState>,
    viewer: Viewer,
    filters: web::Query<Filters>,
) -> Page {
    let mut request = filters.request()?;
    request.cursor = None;
    Ok(shiplog_http::csv_export::deployments_download(
        state.app.clone(),
        viewer.principal.clone(),
        request,
    )
    .await?)
}

/// `GET /deployments`.
pub(crate) async fn list(
    state: web::Data<WebState>,
    viewer: Viewer,
    filters: web::Query<Filters>,
) -> Page {
    let rendered_at = state.app.now();
    let page = state
        .app
        .list_deployments(&viewer.principal, filters.request()?)
        .await?;
    let query = filters.query();
    let first_page = given(filters.cursor.as_ref()).is_none();
    let live = first_page.then(|| {
        let changed = format!("changed_since={}", encode(&rendered_at.to_rfc3339()));
        if query.is_empty() {
            format!("/deployments/live?{changed}")
        } else {
            format!("/deployments/live?{query}&{changed}")
        }
    });
    let body = html! {
        h1 { "Deployments" }
        (filter_form(&filters))
        @if page.items.is_empty() {
            p.empty { "No deployment matches these filters." }
        }
        (table(&page.items, live.as_deref()))
        @if live.is_some() {
            p.muted.live-note { "New deployments appear here as they arrive." }
        }
        p.download {
            a href=(if query.is_empty() { "/deployments.csv".to_owned() } else { format!("/deployments.csv?{query}") }) download {
                "Download every deployment these filters match as CSV"
            }
        }
        @if let Some(cursor) = &page.next_cursor {
            @let separator = if query.is_empty() { "" } else { "&" };
            p { a rel="next" href=(format!("/deployments?{query}{separator}cursor={cursor}")) { "Older deployments →" } }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout::page(&Shell::signed_in("Deployments", &viewer), body),
    ))
}

fn filter_form(filters: &Filters) -> Markup {
    let value = |v: &Option<String>| given(v.as_ref()).unwrap_or("").to_owned();
    let status = value(&filters.status);
    html! {
        form.filters method="get" action="/deployments" {
            label { "Project" input name="project" value=(value(&filters.project)) placeholder="any"; }
            label { "Environment" input name="environment" value=(value(&filters.environment)) placeholder="any"; }
            label { "Application" input name="application" value=(value(&filters.application)) placeholder="any"; }
            label { "Status"
                select name="status" {
                    option value="" selected[status.is_empty()] { "any" }
                    @for s in DeploymentStatus::ALL {
                        option value=(s.as_str()) selected[status == s.as_str()] { (s.as_str()) }
                    }
                }
            }
            label { "From (UTC day)" input type="date" name="since" value=(value(&filters.since)); }
            label { "To (UTC day)" input type="date" name="until" value=(value(&filters.until)); }
            button type="submit" { "Filter" }
            a href="/deployments" { "Clear" }
        }
    }
}

/// A table of deployments, newest first, as the list shows them (the overview's lists too);
/// `live` is the feed that adds rows to it.
pub(crate) fn table(rows: &[Deployment], live: Option<&str>) -> Markup {
    html! {
        div.scroll tabindex="0" {
            table.deployments data-live=[live] {
                thead {
                    tr {
                        th scope="col" { "When" }
                        th scope="col" { "Status" }
                        th scope="col" { "Project" }
                        th scope="col" { "Application" }
                        th scope="col" { "Environment" }
                        th scope="col" { "Version" }
                        th scope="col" { "By" }
                    }
                }
                tbody {
                    @for deployment in rows { (row(deployment)) }
                }
            }
        }
    }
}

/// One row of the list, as the page and the live feed show it: its time is the one the list is
/// ordered by (finished, else started), which the script also reads (`data-at`, microseconds)
/// to put a row that arrives live in its place.
fn row(deployment: &Deployment) -> Markup {
    let at = deployment.deployed_at();
    html! {
        tr id=(format!("d-{}", deployment.id)) data-at=(at.unix_micros()) {
            td { a href=(layout::deployment_href(deployment)) { (layout::time(at)) } }
            td { (layout::status(deployment.status)) }
            td { a href=(format!("/projects/{}", deployment.project)) { (deployment.project) } }
            td { (deployment.application) }
            td { (deployment.environment) }
            td { (layout::version(deployment)) }
            td { (deployment.fields.deployed_by.as_deref().unwrap_or("")) }
        }
    }
}

/// What the live feed remembers between reads.
struct Feed {
    app: App,
    session: String,
    request: ListDeployments,
    changed_since: Option<Timestamp>,
    sent: HashMap<String, Timestamp>,
    live: Subscription,
    last_read: Instant,
}

/// What woke a feed.
enum Wake {
    /// Its workspace changed, or a safety read is due: read the store.
    Read,
    /// Nothing to read: write a keep-alive.
    Idle,
    /// The server is stopping.
    Close,
}

impl Feed {
    /// Waits until a change of the workspace is heard (then a moment more, to read a burst
    /// once), a keep-alive or a safety read is due, or the server stops.
    async fn wait(&mut self) -> Wake {
        let safety = live::SAFETY_READ.saturating_sub(self.last_read.elapsed());
        let wake = tokio::select! {
            changed = self.live.changes.changed() => match changed {
                Ok(()) => Wake::Read,
                Err(_) => Wake::Close,
            },
            _ = self.live.closing.changed() => Wake::Close,
            () = tokio::time::sleep(live::KEEPALIVE.min(safety)) => {
                if self.last_read.elapsed() >= live::SAFETY_READ { Wake::Read } else { Wake::Idle }
            }
        };
        if matches!(wake, Wake::Read) {
            let pause = LIVE_MIN_INTERVAL
                .saturating_sub(self.last_read.elapsed())
                .max(LIVE_COALESCE);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = self.live.closing.changed() => return Wake::Close,
            }
            self.live.changes.mark_unchanged();
        }
        if *self.live.closing.borrow() {
            return Wake::Close;
        }
        wake
    }

    /// One read: the SSE text for what changed, an error for a refused filter, or `None` when
    /// the session ended.
    async fn read(&mut self) -> Option<Result<String, AppError>> {
        let principal: Principal = self.app.session_principal(Some(&self.session)).await.ok()?;
        self.last_read = Instant::now();
        let page = match self
            .app
            .list_deployments(&principal, self.request.clone())
            .await
        {
            Ok(page) => page,
            Err(error) => return Some(Err(error)),
        };
        let mut out = String::new();
        // Oldest first; the browser puts each row in its place by its time.
        for deployment in page.items.iter().rev() {
            let id = deployment.id.to_string();
            let changed = match self.sent.get(&id) {
                Some(at) => *at != deployment.updated_at,
                None => self
                    .changed_since
                    .is_some_and(|since| deployment.updated_at >= since),
            };
            if changed {
                out.push_str("event: deployment\n");
                for line in row(deployment).into_string().lines() {
                    out.push_str("data: ");
                    out.push_str(line);
                    out.push('\n');
                }
                out.push('\n');
            }
            self.sent.insert(id, deployment.updated_at);
        }
        // From now on, anything not seen before is new.
        self.changed_since = Some(Timestamp::UNIX_EPOCH);
        Some(Ok(out))
    }

    /// What to send next, or `None` to end the feed.
    async fn next(&mut self) -> Option<String> {
        loop {
            match self.wait().await {
                Wake::Close => return None,
                Wake::Idle => return Some(": keepalive\n\n".to_owned()),
                Wake::Read => match self.read().await? {
                    Ok(text) if text.is_empty() => {}
                    Ok(text) => return Some(text),
                    Err(error) => {
                        tracing::warn!(%error, "live deployments feed could not read");
                    }
                },
            }
        }
    }
}

/// `GET /deployments/live`: Server-Sent Events with the rows of new and changed deployments.
pub(crate) async fn live(
    request: actix_web::HttpRequest,
    state: web::Data<WebState>,
    viewer: Viewer,
    filters: web::Query<Filters>,
) -> Page {
    let mut list = filters.request()?;
    list.cursor = None;
    let changed_since = filter(
        "changed_since",
        filters.changed_since.as_ref(),
        Timestamp::parse,
    )?;
    let session = request
        .cookie(COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    let live = state
        .changes
        .open(viewer.principal.workspace, &viewer.session_hash())
        .map_err(|refused| PageError::Refused {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: refused.to_string(),
        })?;
    let mut feed = Feed {
        app: state.app.clone(),
        session,
        request: list,
        changed_since,
        sent: HashMap::new(),
        live,
        last_read: Instant::now(),
    };
    // The first read answers a refused filter (a project the session cannot see) with its
    // status, before the stream starts; each later read checks the session again, so a
    // revoked key's feed ends.
    let first = match feed.read().await {
        None => {
            return Err(PageError::SignIn {
                next: "/deployments".to_owned(),
            });
        }
        Some(Err(error)) => return Err(error.into()),
        Some(Ok(text)) => text,
    };
    let stream = futures_util::stream::once(std::future::ready(Ok::<_, actix_web::Error>(
        Bytes::from(first),
    )))
    .chain(futures_util::stream::unfold(feed, |mut feed| async move {
        let text = feed.next().await?;
        Some((Ok::<_, actix_web::Error>(Bytes::from(text)), feed))
    }));
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/event-stream"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .streaming(stream))
}

/// `GET /deployments/{id}`: every field, its references, its commit's events and its
/// deliveries.
pub(crate) async fn show(
    state: web::Data<WebState>,
    viewer: Viewer,
    id: web::Path<String>,
) -> Page {
    let DeploymentDetail {
        card,
        events,
        deliveries,
    } = state.app.deployment_detail(&viewer.principal, &id).await?;
    let deployment = &card.deployment;
    let fields = &deployment.fields;
    let title = format!("{} to {}", deployment.application, deployment.environment);
    let body = html! {
        h1 { (deployment.application) " to " (deployment.environment) " " (layout::status(deployment.status)) }
        // What an on-call engineer asks first: when, how long, which commit, from which run.
        dl.fields.summary {
            dt { "Finished" } dd { @match deployment.finished_at { Some(at) => (layout::time(at)), None => span.muted { "not yet" } } }
            dt { "Took" } dd { @match card.duration_seconds {
                Some(seconds) => (layout::duration(Some(seconds as f64))),
                None => span.muted { "not known: its start or finish was not reported" },
            } }
            dt { "Lead time" } dd { @match card.lead_time_seconds {
                Some(seconds) => { (layout::duration(Some(seconds as f64))) " from its commit to its finish" },
                None => span.muted { "none: it counts for a successful deployment whose commit time is known" },
            } }
            dt { "Commit" } dd { @match &fields.commit_sha {
                Some(sha) => @match &card.commit_url {
                    Some(url) => a href=(url) rel="noopener noreferrer" { code { (sha.as_str()) } },
                    None => code { (sha.as_str()) },
                },
                None => span.muted { "not reported" },
            } }
            @if let Some(v) = &fields.run_url { dt { "Run" } dd { (external_link(v)) } }
            @if let Some(v) = &fields.deployed_by { dt { "By" } dd { (v) } }
        }
        (what_changed(deployment, &card.changes))
        h2 { "Details" }
        dl.fields {
            dt { "Project" } dd { a href=(format!("/projects/{}", deployment.project)) { (deployment.project) } }
            dt { "Environment" } dd { (deployment.environment) " (" (deployment.environment_kind.as_str()) ")" }
            dt { "Status" } dd { (layout::status(deployment.status)) " — " (deployment.provider.as_str()) " said " code { (deployment.provider_status) } }
            @if let Some(message) = &fields.commit_message { dt { "Message" } dd { pre.message { (message) } } }
            @if let Some(at) = fields.commit_timestamp { dt { "Committed" } dd { (layout::time(at)) } }
            @if let Some(v) = &fields.git_ref { dt { "Ref" } dd { code { (v) } } }
            @if let Some(v) = &fields.branch { dt { "Branch" } dd { code { (v) } } }
            @if let Some(v) = &fields.image { dt { "Image" } dd { code { (v) } } }
            @if let Some(v) = &fields.build_number { dt { "Build" } dd { (v) } }
            @if let Some(v) = &fields.logs_url { dt { "Logs" } dd { (external_link(v)) } }
            @if let Some(v) = &fields.external_id { dt { "Provider's id" } dd { code { (v) } } }
            @if let Some(reason) = deployment.rework { dt { "Rework" } dd { (reason.describe()) } }
            dt { "Started" } dd { @match deployment.started_at { Some(at) => (layout::time(at)), None => span.muted { "not reported" } } }
            dt { "First heard of" } dd { (layout::time(deployment.created_at)) }
            dt { "Idempotency key" } dd { code { (deployment.idempotency_key.as_str()) } }
            dt { "Id" } dd { code { (deployment.id) } }
        }
        h2 { "Change requests its commit names" }
        @if deployment.references.is_empty() {
            p.muted { "Its commit message names none." }
        } @else {
            ul {
                @for reference in &deployment.references {
                    li {
                        a href=(format!("/projects/{}/references/{}", deployment.project, encode(reference.key.as_str()))) { (reference.key.as_str()) }
                        @if reference.closing { " — closes it when this deployment succeeds" }
                    }
                }
            }
        }
        h2 { "Events of its commit" }
        @if events.is_empty() {
            p.muted { "No event recorded." }
        } @else {
            ol.timeline {
                @for event in &events {
                    li {
                        (layout::time(event.occurred_at)) " "
                        strong { (event.event.to_string()) } " "
                        (layout::status(event.status))
                        " from " (event.provider.as_str())
                        @if let Some(word) = &event.provider_status { " (" code { (word) } ")" }
                        @if let Some(other) = event.deployment.filter(|d| *d != deployment.id) {
                            " — " a href=(format!("/deployments/{other}")) { "another deployment" }
                        }
                    }
                }
            }
        }
        h2 { "Outgoing deliveries" }
        @if deliveries.is_empty() {
            p.muted { "No hook was sent anything for this deployment." }
        }
        @for delivery in &deliveries {
            (hooks::delivery_section(delivery, &viewer, &layout::deployment_href(deployment)))
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout::page(&Shell::signed_in(&title, &viewer), body),
    ))
}

/// The "What it changed" section: the kind of change in words, its commits, change requests
/// and people, and the forge's compare page.
fn what_changed(deployment: &Deployment, changes: &Changes) -> Markup {
    let place = format!("{} to {}", deployment.application, deployment.environment);
    let since = changes.since.as_ref().map(|from| {
        html! {
            a href=(format!("/deployments/{}", from.id)) {
                "the previous successful deployment"
            }
            " (" (layout::time(from.deployed_at))
            @if let Some(sha) = &from.commit_sha { ", " code { (short(sha.as_str())) } }
            ")"
        }
    });
    let count = changes.commits.len();
    let commits = if changes.commits_truncated {
        format!("more than {count} commits")
    } else if count == 1 {
        "1 commit".to_owned()
    } else {
        format!("{count} commits")
    };
    html! {
        section.changes aria-labelledby="what-changed" {
            h2 #what-changed { "What it changed" }
            p.change-kind {
                @match changes.kind {
                    ChangeKind::First => { "No earlier successful deployment of " (place) " is known: its own commit is listed." }
                    ChangeKind::Forward => { "Brings " (commits) " since " (since.clone().unwrap_or_default()) "." }
                    ChangeKind::Rollback => { "Rolls back to an older commit: takes away " (commits) " that " (since.clone().unwrap_or_default()) " had deployed." }
                    ChangeKind::Redeploy => { "Deploys the same commit again as " (since.clone().unwrap_or_default()) ": the code did not change." }
                    ChangeKind::Unknown => { "Cannot be told: it or " (since.clone().unwrap_or_default()) " names no commit shiplog has seen." }
                }
                @if let Some(url) = &changes.compare_url {
                    " " a.compare href=(url) rel="noopener noreferrer" { "Compare the two commits at the forge" }
                }
            }
            @if !changes.commits.is_empty() {
                div.scroll tabindex="0" {
                    table.commits {
                        caption.visually-hidden { "Commits, oldest first" }
                        thead { tr { th scope="col" { "Commit" } th scope="col" { "First seen" } } }
                        tbody {
                            @for commit in &changes.commits {
                                tr {
                                    td { @match &commit.url {
                                        Some(url) => a href=(url) rel="noopener noreferrer" { code title=(commit.sha.as_str()) { (short(commit.sha.as_str())) } },
                                        None => code title=(commit.sha.as_str()) { (short(commit.sha.as_str())) },
                                    } }
                                    td { @match commit.first_seen_at { Some(at) => (layout::time(at)), None => span.muted { "never" } } }
                                }
                            }
                        }
                    }
                }
                @if changes.commits_truncated {
                    p.muted { "Only the oldest " (count) " are listed." }
                }
            }
            @if !changes.change_requests.is_empty() {
                p { "Change requests: "
                    @for (i, key) in changes.change_requests.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href=(format!("/projects/{}/references/{}", deployment.project, encode(key.as_str()))) { (key.as_str()) }
                    }
                }
            }
            @if !changes.triggered_by.is_empty() {
                p { "Run by: " (changes.triggered_by.join(", ")) }
            }
        }
    }
}

/// The first seven characters of a commit hash.
fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// A link to a provider's page; only http(s) addresses become links.
fn external_link(url: &str) -> Markup {
    html! {
        @if url.starts_with("https://") || url.starts_with("http://") {
            a href=(url) rel="noopener noreferrer" { (url) }
        } @else {
            code { (url) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_whole_utc_days() {
        let since = date("since", "2026-03-01", false).unwrap();
        let until = date("until", "2026-03-01", true).unwrap();
        assert_eq!(since.to_rfc3339(), "2026-03-01T00:00:00Z");
        assert_eq!(until.to_rfc3339(), "2026-03-02T00:00:00Z");
        assert!(date("since", "03/01/2026", false).is_err());
    }

    #[test]
    fn the_query_keeps_the_filters_but_not_the_cursor() {
        let filters = Filters {
            project: Some("shop".into()),
            status: Some("failed".into()),
            application: Some("  ".into()),
            cursor: Some("dabc".into()),
            ..Filters::default()
        };
        assert_eq!(filters.query(), "project=shop&status=failed");
        let request = filters.request().unwrap();
        assert_eq!(request.status, Some(DeploymentStatus::Failed));
        assert_eq!(request.application, None);
        assert!(
            Filters {
                status: Some("done".into()),
                ..Filters::default()
            }
            .request()
            .is_err()
        );
    }
}
