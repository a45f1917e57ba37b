//! Signing in through the company's OpenID provider (`docs/sso.md`).
//!
//! `GET /sign-in/sso` starts: the use case gives the provider's address and the attempt
//! (`state`, `nonce`, PKCE verifier), which the browser keeps in the [`ATTEMPT_COOKIE`]
//! (HttpOnly, `SameSite=Lax` so that the provider's redirect back carries it, path
//! `/sign-in`, ten minutes) while it is at the provider. `GET /sign-in/callback` ends: the
//! cookie is cleared whatever happens, the use case checks the `state`, has the code redeemed
//! and the ID token verified, and opens the session. Every refusal is a page that says what to
//! do and a log line that says why (never a code, token or secret).

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;
use serde::{Deserialize, Serialize};
use shiplog_app::error::{AppError, ErrorKind};
use shiplog_app::ports::SignInAttempt;
use shiplog_app::sso::{Callback, SsoTarget};
use shiplog_domain::ids::WorkspaceCode;

use crate::WebState;
use crate::layout::{self, Shell};
use crate::session::{COOKIE, encode, html_response, local_path, redirect, session_cookie};

/// The cookie that holds a sign-in attempt while the browser is at the provider.
pub const ATTEMPT_COOKIE: &str = "shiplog_sign_in";

/// How long a browser may stay at the provider before its attempt is forgotten.
const ATTEMPT_MINUTES: i64 = 10;

/// What the attempt cookie holds.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    attempt: SignInAttempt,
    next: String,
    workspace: Option<String>,
}

/// `GET /sign-in/sso`'s query.
#[derive(Debug, Deserialize)]
pub(crate) struct StartQuery {
    next: Option<String>,
    workspace: Option<String>,
}

/// `GET /sign-in/sso`: off to the provider.
pub(crate) async fn start(
    state: web::Data<WebState>,
    query: web::Query<StartQuery>,
) -> HttpResponse {
    let next = query.next.as_deref().map_or("/", local_path).to_owned();
    let workspace = match query.workspace.as_deref().filter(|w| !w.is_empty()) {
        Some(code) => match WorkspaceCode::parse(code) {
            Ok(code) => Some(code.to_string()),
            Err(error) => return refused(StatusCode::BAD_REQUEST, &format!("workspace: {error}")),
        },
        None => None,
    };
    let started = match state.app.begin_sso().await {
        Ok(started) => started,
        Err(error) => return refusal(&error),
    };
    let pending = Pending {
        attempt: started.attempt,
        next,
        workspace,
    };
    let value = match serde_json::to_vec(&pending) {
        Ok(json) => hex(&json),
        Err(error) => return refused(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    };
    let cookie = Cookie::build(ATTEMPT_COOKIE, value)
        .path("/sign-in")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.secure_cookies())
        .max_age(time::Duration::minutes(ATTEMPT_MINUTES))
        .finish();
    let mut response = HttpResponse::SeeOther()
        .insert_header(("location", started.url))
        .insert_header(("cache-control", "no-store"))
        .finish();
    match response.add_cookie(&cookie) {
        Ok(()) => response,
        Err(error) => refused(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}

/// `GET /sign-in/callback`: back from the provider.
pub(crate) async fn callback(
    state: web::Data<WebState>,
    request: HttpRequest,
    query: web::Query<Callback>,
) -> HttpResponse {
    let pending: Option<Pending> = request
        .cookie(ATTEMPT_COOKIE)
        .and_then(|c| unhex(c.value()))
        .and_then(|json| serde_json::from_slice(&json).ok());
    let target = SsoTarget {
        workspace: pending
            .as_ref()
            .and_then(|p| p.workspace.as_deref())
            .and_then(|w| WorkspaceCode::parse(w).ok()),
        current_session: request.cookie(COOKIE).map(|c| c.value().to_owned()),
        address: request.peer_addr().map(|peer| peer.ip().to_string()),
    };
    let result = state
        .app
        .finish_sso(
            pending.as_ref().map(|p| &p.attempt),
            query.into_inner(),
            target,
        )
        .await;
    let mut response = match result {
        Ok(signed_in) => {
            if let shiplog_app::audit::Actor::Person { id, .. } = &signed_in.principal.actor {
                tracing::info!(person = %id, role = signed_in.principal.role.as_str(), "signed in through the OpenID provider");
            }
            let next = pending.as_ref().map_or("/", |p| local_path(&p.next));
            let mut response = redirect(next);
            let cookie = session_cookie(&state, &signed_in);
            if let Err(error) = response.add_cookie(&cookie) {
                return refused(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string());
            }
            response
        }
        Err(error) => {
            tracing::warn!(reason = %error, code = error.code().as_str(), "a sign-in through the OpenID provider was refused");
            refusal(&error)
        }
    };
    // The attempt is used once, whatever happened.
    let mut spent = Cookie::build(ATTEMPT_COOKIE, "")
        .path("/sign-in")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.secure_cookies())
        .finish();
    spent.make_removal();
    match response.add_cookie(&spent) {
        Ok(()) => response,
        Err(error) => refused(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}

/// The page of a refused sign-in.
fn refusal(error: &AppError) -> HttpResponse {
    let status = match error.code().kind() {
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Unauthenticated => StatusCode::FORBIDDEN,
        kind => shiplog_http::errors::status(kind),
    };
    refused(status, &error.to_string())
}

fn refused(status: StatusCode, message: &str) -> HttpResponse {
    let mut chars = message.chars();
    let message: String = chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    html_response(
        status,
        layout::page(
            &Shell::anonymous("Not signed in"),
            html! {
                section.sign-in {
                    h1 { "Not signed in" }
                    p.problem role="alert" { (message) }
                    p { a href="/sign-in" { "Back to the sign-in page" } }
                }
            },
        ),
    )
}

/// Where a session due for a refresh goes: through the provider again, back to `next`.
pub fn refresh_path(next: &str) -> String {
    format!("/sign-in/sso?next={}", encode(next))
}

/// Bytes as lower-case hex (the cookie's value: no character a cookie cannot hold).
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 8192 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_what_is_not_hex() {
        assert_eq!(unhex(&hex(b"{\"a\":1}")), Some(b"{\"a\":1}".to_vec()));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
