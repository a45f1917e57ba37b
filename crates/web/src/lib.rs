//! # shiplog-web
//!
//! The web dashboard: server-rendered HTML pages over the same use cases as the API, served by
//! the `shiplog` binary itself.
//!
//! - [`session`]: sign-in with a `read` or `admin` API key, the session cookie, CSRF tokens, and
//!   the [`session::Viewer`] every page is rendered for.
//! - [`sso`]: sign-in through the company's OpenID provider.
//! - [`assets`]: the stylesheet and script, embedded in the binary and served under names that
//!   carry their content hash, cached for a year.
//! - [`layout`]: the page shell and the pieces every page shares (status badges, times).
//! - [`live`]: the signal ingest gives the live deployments feed.
//! - [`pages`]: one module per page: projects, the environments board, deployments (with the
//!   live feed), a deployment, DORA, a reference, hooks, integrations and what they received,
//!   keys, sessions and the audit log.
//!
//! Every answer carries [`SECURITY_HEADERS`]: a Content-Security-Policy that allows only this
//! server's own script and stylesheet (no inline script or style), no framing, no referrer to
//! other sites. Pages are readable without JavaScript; the script only turns times into the
//! viewer's time zone and keeps the deployments list live.
//!
//! ## What this crate must never do
//! It never talks to a database (only to `shiplog-app`), never holds business rules (a page shows
//! what a use case returns), never puts a key or session secret in a page or a URL, and never
//! changes anything on a GET.
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use actix_web::body::MessageBody;
use actix_web::dev::{HttpServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{Route, web};
use shiplog_app::App;
use std::sync::Arc;

pub mod assets;
pub mod layout;
pub mod live;
pub mod pages;
pub mod session;
pub mod sso;

/// What every page shares.
#[derive(Clone)]
pub struct WebState {
    /// The use cases.
    pub app: App,
    /// The address people reach this server at (`SHIPLOG_PUBLIC_URL`), for links and snippets;
    /// `None` uses the address the browser asked for.
    pub public_url: Option<String>,
    /// What live feeds wait on; give the same to the app ([`App::with_notifier`]).
    pub changes: Arc<live::LiveChanges>,
}

impl WebState {
    /// Whether the session cookie is sent over HTTPS only: when the public address is https.
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"))
    }
}

/// The headers on every dashboard answer.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
];

/// Registers the dashboard's routes. Register it after the API's routes: the API's paths stay
/// the API's.
pub fn configure(state: WebState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(state));
        for (path, routes) in routes() {
            cfg.service(resource(path, routes));
        }
    }
}

/// Every dashboard route, by path.
///
/// A plain list rather than the API's `routes!` table: what that table generates does not
/// apply to pages. They are not OpenAPI operations, and their access is a session checked by
/// the [`session::Viewer`] extractor (a missing one redirects to the sign-in form), not a key
/// checked before the handler. Query parameters are read as the API reads them
/// (`shiplog_http::params`), and each resource gets the API's panic guard.
fn routes() -> Vec<(&'static str, Vec<Route>)> {
    vec![
        ("/", vec![web::get().to(pages::projects::index)]),
        (
            "/sign-in",
            vec![
                web::get().to(session::sign_in_form),
                web::post().to(session::sign_in),
            ],
        ),
        ("/sign-out", vec![web::post().to(session::sign_out)]),
        ("/sign-in/sso", vec![web::get().to(sso::start)]),
        ("/sessions", vec![web::get().to(pages::sessions::list)]),
        ("/sessions/end", vec![web::post().to(pages::sessions::end)]),
        ("/audit", vec![web::get().to(pages::sessions::audit)]),
        ("/sign-in/callback", vec![web::get().to(sso::callback)]),
        (assets::PATH, vec![web::get().to(assets::serve)]),
        ("/projects/{slug}", vec![web::get().to(pages::board::show)]),
        (
            "/projects/{slug}/references",
            vec![web::get().to(pages::references::search)],
        ),
        (
            "/projects/{slug}/references/{key:.+}",
            vec![web::get().to(pages::references::show)],
        ),
        (
            "/projects/{slug}/hooks",
            vec![
                web::get().to(pages::hooks::list),
                web::post().to(pages::hooks::create),
            ],
        ),
        ("/hooks/{id}/test", vec![web::post().to(pages::hooks::test)]),
        ("/hooks/{id}", vec![web::get().to(pages::hooks::show)]),
        (
            "/deliveries/{id}/redeliver",
            vec![web::post().to(pages::hooks::redeliver)],
        ),
        (
            "/deployments",
            vec![web::get().to(pages::deployments::list)],
        ),
        (
            "/deployments.csv",
            vec![web::get().to(pages::deployments::download)],
        ),
        (
            "/deployments/live",
            vec![web::get().to(pages::deployments::live)],
        ),
        (
            "/deployments/{id}",
            vec![web::get().to(pages::deployments::show)],
        ),
        ("/dora", vec![web::get().to(pages::dora::show)]),
        ("/dora.csv", vec![web::get().to(pages::dora::download)]),
        (
            "/integrations",
            vec![
                web::get().to(pages::integrations::list),
                web::post().to(pages::integrations::create),
            ],
        ),
        (
            "/integrations/{id}/rotate",
            vec![web::post().to(pages::integrations::rotate)],
        ),
        (
            "/hooks/{id}/enabled",
            vec![web::post().to(pages::hooks::set_enabled)],
        ),
        (
            "/keys",
            vec![
                web::get().to(pages::keys::list),
                web::post().to(pages::keys::create_api_key),
            ],
        ),
        (
            "/signing-keys",
            vec![web::post().to(pages::keys::create_signing_key)],
        ),
        (
            "/keys/{id}/revoke",
            vec![web::post().to(pages::keys::revoke)],
        ),
        (
            "/integrations/{id}",
            vec![web::get().to(pages::integrations::show)],
        ),
        (
            "/dora/deployments",
            vec![web::get().to(pages::dora::deployments)],
        ),
        (
            "/dora/deployments.csv",
            vec![web::get().to(pages::dora::deployments_download)],
        ),
    ]
}

/// One resource with its routes, behind the security headers and the panic guard.
fn resource(path: &'static str, routes: Vec<Route>) -> impl HttpServiceFactory + 'static {
    routes.into_iter().fold(
        web::resource(path)
            .wrap(from_fn(shiplog_http::logging::catch_panics))
            .wrap(from_fn(security_headers)),
        |resource, route| resource.route(route),
    )
}

/// Middleware: adds [`SECURITY_HEADERS`] to every answer.
async fn security_headers(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(request).await?;
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    Ok(response)
}
