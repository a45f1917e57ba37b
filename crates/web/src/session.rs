//! Signing in and out, and who a page is rendered for.
//!
//! The sign-in form takes a `read` or `admin` API key and opens a session
//! ([`shiplog_app::App::sign_in`]); the browser then holds only the session's secret, in the
//! [`COOKIE`] cookie: `HttpOnly` (no script reads it), `SameSite=Lax` (other sites' forms do
//! not carry it; a link from a commit status still opens the page signed in), `Path=/`, and
//! `Secure` when the public address is https. Every form that changes something carries the
//! session's CSRF token, checked before the change ([`Viewer::check_csrf`]).

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, LOCATION};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use maud::{Markup, html};
use serde::Deserialize;
use shiplog_app::auth::Principal;
use shiplog_app::error::{AppError, AuthFailure, ErrorKind};
use shiplog_app::sessions::SignedIn;
use shiplog_domain::key::{Role, SessionSecret};

use crate::WebState;
use crate::layout::{self, Shell};

/// The session cookie's name.
pub const COOKIE: &str = "shiplog_session";

/// Who a page is rendered for: the session's principal, and the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// What the session's key may see and do.
    pub principal: Principal,
    /// The token forms that change something send back.
    pub csrf: String,
    secret: SessionSecret,
}

impl Viewer {
    /// The session secret's hash, which names the session without revealing it.
    pub fn session_hash(&self) -> String {
        self.secret.hash().as_str().to_owned()
    }

    /// Whether the viewer may change things (an `admin` key).
    pub fn is_admin(&self) -> bool {
        self.principal.role == Role::Admin
    }

    /// Refuses a session whose key is not an admin key, with a clear 403 page.
    pub fn require_admin(&self) -> Result<(), PageError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(PageError::Refused {
                status: StatusCode::FORBIDDEN,
                message: "Only an admin may do this: sign in with an admin key, or as someone \
                          whose groups make them an admin here."
                    .into(),
            })
        }
    }

    /// Checks a form only admin sessions send: its CSRF token first, then the role.
    pub fn check_admin_form(&self, presented: &str) -> Result<(), PageError> {
        self.check_csrf(presented)?;
        self.require_admin()
    }

    /// Refuses a form whose token is not this session's.
    pub fn check_csrf(&self, presented: &str) -> Result<(), PageError> {
        if self.secret.csrf_matches(presented) {
            Ok(())
        } else {
            Err(PageError::Refused {
                status: StatusCode::FORBIDDEN,
                message: "This form is out of date or was not sent from this dashboard. \
                          Reload the page and try again."
                    .into(),
            })
        }
    }
}

impl FromRequest for Viewer {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = request.app_data::<web::Data<WebState>>().cloned();
        let presented = request.cookie(COOKIE).map(|c| c.value().to_owned());
        let wanted = return_to(request);
        // The TCP peer, for the audit log (as the API records it).
        let address = request.peer_addr().map(|peer| peer.ip().to_string());
        Box::pin(async move {
            let state = state.ok_or_else(|| PageError::Internal("no dashboard state".into()))?;
            let sign_in = PageError::SignIn {
                next: wanted.clone(),
            };
            let Some(presented) = presented else {
                return Err(sign_in);
            };
            match state.app.session_principal(Some(&presented)).await {
                Ok(mut principal) => {
                    principal.address = address;
                    let secret = SessionSecret::presented(&presented);
                    Ok(Viewer {
                        principal,
                        csrf: secret.csrf_token(),
                        secret,
                    })
                }
                Err(AppError::Unauthenticated(AuthFailure::SessionRefresh)) => {
                    Err(PageError::Refresh { next: wanted })
                }
                Err(error) if error.code().kind() == ErrorKind::Unauthenticated => Err(sign_in),
                Err(error) => Err(PageError::from(error)),
            }
        })
    }
}

/// Why a page is not shown.
#[derive(Debug)]
pub enum PageError {
    /// No session, or it ended: off to the sign-in form, then back to `next`.
    SignIn {
        /// The path and query to return to.
        next: String,
    },
    /// A person's session is due for a look at their groups: through the provider again,
    /// then back to `next`.
    Refresh {
        /// The path and query to return to.
        next: String,
    },
    /// A refusal the viewer can act on (not found, not allowed, a bad filter).
    Refused {
        /// The status.
        status: StatusCode,
        /// What to tell the viewer.
        message: String,
    },
    /// shiplog failed; the detail is logged, the viewer sees a generic page.
    Internal(String),
}

impl From<AppError> for PageError {
    fn from(error: AppError) -> Self {
        match error.code().kind() {
            ErrorKind::Unavailable => {
                shiplog_http::logging::internal(&error);
                Self::Internal(error.to_string())
            }
            kind => Self::Refused {
                status: shiplog_http::errors::status(kind),
                message: error.to_string(),
            },
        }
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SignIn { .. } | Self::Refresh { .. } => f.write_str("sign in first"),
            Self::Refused { message, .. } => f.write_str(message),
            Self::Internal(detail) => write!(f, "internal error: {detail}"),
        }
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn { .. } | Self::Refresh { .. } => StatusCode::SEE_OTHER,
            Self::Refused { status, .. } => *status,
            Self::Internal(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::SignIn { next } => redirect(&format!("/sign-in?next={}", encode(next))),
            Self::Refresh { next } => redirect(&crate::sso::refresh_path(next)),
            Self::Refused { status, message } => {
                let title = status.canonical_reason().unwrap_or("Refused");
                html_response(
                    *status,
                    layout::page(
                        &Shell::anonymous(title),
                        html! { h1 { (title) } p { (message) } p { a href="/" { "Back to the projects" } } },
                    ),
                )
            }
            Self::Internal(_) => html_response(
                StatusCode::SERVICE_UNAVAILABLE,
                layout::page(
                    &Shell::anonymous("Unavailable"),
                    html! {
                        h1 { "shiplog cannot answer right now" }
                        p { "The database did not answer. The operator finds the cause in the server's log. Try again in a moment." }
                    },
                ),
            ),
        }
    }
}

/// What a page handler answers.
pub type Page = Result<HttpResponse, PageError>;

/// A rendered page with `Cache-Control: no-store` (pages show a workspace's private data).
pub fn html_response(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header(("cache-control", "no-store"))
        .body(markup.into_string())
}

/// A `303 See Other` to a path of this server.
pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, to))
        .insert_header(("cache-control", "no-store"))
        .finish()
}

/// Percent-encodes a value for a query string.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Where to come back to after signing in: the page asked for; for a form (a POST, whose
/// address may answer nothing else), the page it was sent from when that is one of ours,
/// else the overview.
fn return_to(request: &HttpRequest) -> String {
    if request.method() == actix_web::http::Method::GET {
        return request
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    }
    let host = request.connection_info().host().to_ascii_lowercase();
    request
        .headers()
        .get(actix_web::http::header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|referer| {
            let rest = referer.split_once("://")?.1;
            let (authority, path) = rest.split_at(rest.find('/')?);
            (authority.to_ascii_lowercase() == host).then(|| local_path(path).to_owned())
        })
        .unwrap_or_else(|| "/".to_owned())
}

/// Where to return to (after signing in, after a form): a path of this server only (`/…` but
/// not `//…`, which a browser reads as another host), else the projects page.
pub(crate) fn local_path(path: &str) -> &str {
    let local = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.chars().any(char::is_control);
    if local { path } else { "/" }
}

/// The sign-in page's query.
#[derive(Debug, Deserialize)]
pub(crate) struct SignInQuery {
    next: Option<String>,
}

/// `GET /sign-in`.
pub(crate) async fn sign_in_form(
    state: web::Data<WebState>,
    query: web::Query<SignInQuery>,
) -> HttpResponse {
    html_response(
        StatusCode::OK,
        sign_in_page(&state, query.next.as_deref().map_or("/", local_path), None),
    )
}

fn sign_in_page(state: &WebState, next: &str, problem: Option<&str>) -> Markup {
    let sso = state.app.sso_enabled();
    let keys = state.app.key_sign_in_enabled();
    layout::page(
        &Shell::anonymous("Sign in"),
        html! {
            section.sign-in {
                h1 { "Sign in to shiplog" }
                @if let Some(problem) = problem {
                    p.problem role="alert" { (problem) }
                }
                @if sso {
                    p { "Sign in with your company account. What you may see and do comes from your groups there." }
                    p { a.button #sso href=(format!("/sign-in/sso?next={}", encode(next))) { "Sign in with your company account" } }
                }
                @if keys {
                    @if sso { h2 { "Or with an API key" } }
                    p { "Paste a " strong { "read" } " or " strong { "admin" } " API key of your workspace. \
                         The browser keeps a session for up to 12 hours; the key itself is not stored in it." }
                    form method="post" action="/sign-in" {
                        input type="hidden" name="next" value=(next);
                        label for="key" { "API key" }
                        input #key type="password" name="key" autocomplete="off" required autofocus[!sso] spellcheck="false";
                        button type="submit" { "Sign in" }
                    }
                }
            }
        },
    )
}

/// The session cookie of a session just opened: `HttpOnly`, `SameSite=Lax`, `Secure` behind
/// https, for as long as the session lasts.
pub(crate) fn session_cookie(state: &WebState, signed_in: &SignedIn) -> Cookie<'static> {
    let max_age = signed_in
        .expires_at
        .since(state.app.now())
        .whole_seconds()
        .max(0);
    Cookie::build(COOKIE, signed_in.secret.reveal().to_owned())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.secure_cookies())
        .max_age(time::Duration::seconds(max_age))
        .finish()
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub(crate) struct SignInForm {
    key: String,
    next: Option<String>,
}

/// The `host[:port]` of an origin or address (`https://shiplog.example:8443/x` →
/// `shiplog.example:8443`), lower-cased.
fn authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Whether a sign-in form was posted from this server's own page, so that no other site can
/// sign a browser into a workspace of its choosing (login CSRF). A browser says where a
/// request comes from: `Sec-Fetch-Site` must be `same-origin` (or `none`: typed by the person),
/// and `Origin`, when sent, must name this server (its public address, or the host the request
/// was sent to). A client that sends neither (curl, a script) is not a page another site runs.
pub(crate) fn from_own_page(request: &HttpRequest, public_url: Option<&str>) -> bool {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("invalid").to_ascii_lowercase())
    };
    if let Some(site) = header("sec-fetch-site")
        && !matches!(site.as_str(), "same-origin" | "none")
    {
        return false;
    }
    match header("origin") {
        None => true,
        Some(origin) => {
            let origin = authority(&origin);
            let host = request.connection_info().host().to_ascii_lowercase();
            origin == host || public_url.is_some_and(|url| authority(url) == origin)
        }
    }
}

/// `POST /sign-in`: opens a session and sets its cookie, or shows the form again with why not.
pub(crate) async fn sign_in(
    state: web::Data<WebState>,
    request: HttpRequest,
    form: web::Form<SignInForm>,
) -> HttpResponse {
    let next = form.next.as_deref().map_or("/", local_path).to_owned();
    if !from_own_page(&request, state.public_url.as_deref()) {
        tracing::warn!("a sign-in posted from another site's page was refused");
        return html_response(
            StatusCode::FORBIDDEN,
            sign_in_page(
                &state,
                &next,
                Some(
                    "This sign-in was sent from another site's page, so it was refused. \
                     Sign in here, on shiplog's own page.",
                ),
            ),
        );
    }
    let address = request.peer_addr().map(|peer| peer.ip().to_string());
    match state.app.sign_in(Some(form.key.trim()), address).await {
        Ok(signed_in) => {
            let cookie = session_cookie(&state, &signed_in);
            let mut response = redirect(&next);
            if let Err(error) = response.add_cookie(&cookie) {
                return PageError::Internal(error.to_string()).error_response();
            }
            response
        }
        Err(error) => {
            let (status, problem) = match error.code().kind() {
                _ if matches!(
                    error,
                    AppError::SignInRefused(shiplog_app::error::SignInRefusal::KeySignInOff)
                ) =>
                {
                    (
                        StatusCode::FORBIDDEN,
                        "Signing in with an API key is turned off here. Sign in with your company account.",
                    )
                }
                ErrorKind::Unauthenticated => (
                    StatusCode::UNAUTHORIZED,
                    "That key is not valid: it may be mistyped, revoked or expired.",
                ),
                ErrorKind::Forbidden => (
                    StatusCode::FORBIDDEN,
                    "That key may only send events. Sign in with a read or admin key.",
                ),
                _ => return PageError::from(error).error_response(),
            };
            html_response(status, sign_in_page(&state, &next, Some(problem)))
        }
    }
}

/// The sign-out form: only its CSRF token.
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    pub(crate) csrf: String,
}

/// `POST /sign-out`: ends the session and clears the cookie.
pub(crate) async fn sign_out(
    state: web::Data<WebState>,
    viewer: Viewer,
    form: web::Form<CsrfForm>,
) -> Page {
    viewer.check_csrf(&form.csrf)?;
    state.app.sign_out(viewer.secret.reveal()).await?;
    let mut response = redirect("/sign-in");
    let mut cookie = Cookie::build(COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.secure_cookies())
        .finish();
    cookie.make_removal();
    response
        .add_cookie(&cookie)
        .map_err(|e| PageError::Internal(e.to_string()))?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(local_path("/deployments?x=1"), "/deployments?x=1");
        assert_eq!(local_path("//evil.example"), "/");
        assert_eq!(local_path("/\\evil.example"), "/");
        assert_eq!(local_path("https://evil.example"), "/");
        assert_eq!(local_path("/a\nb"), "/");
    }

    #[test]
    fn a_form_returns_to_the_page_it_was_sent_from() {
        use actix_web::test::TestRequest;
        let get = TestRequest::get()
            .uri("/deployments?status=failed")
            .to_http_request();
        assert_eq!(return_to(&get), "/deployments?status=failed");
        let form = |referer: Option<&str>| {
            let mut request = TestRequest::post()
                .uri("/sessions/end")
                .insert_header(("host", "shiplog.example:8080"));
            if let Some(referer) = referer {
                request = request.insert_header(("referer", referer));
            }
            return_to(&request.to_http_request())
        };
        assert_eq!(
            form(Some("http://shiplog.example:8080/sessions")),
            "/sessions"
        );
        assert_eq!(form(Some("https://elsewhere.example/sessions")), "/");
        assert_eq!(form(Some("http://shiplog.example:8080//evil")), "/");
        assert_eq!(form(None), "/");
    }

    #[test]
    fn origins_are_compared_by_host_and_port() {
        assert_eq!(
            authority("https://Shiplog.example:8443/x?y"),
            "shiplog.example:8443"
        );
        assert_eq!(authority("http://127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(authority("null"), "null");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("/a b?c=d&e"), "%2Fa%20b%3Fc%3Dd%26e");
        assert_eq!(encode("PR-1_x.y~"), "PR-1_x.y~");
    }
}
