//! Who may call each route, checked from the headers before the handler runs.
//!
//! Every route of the table in [`crate::routes`] declares its [`Access`] and the [`Dialect`] its
//! refusals speak. [`check`] wraps the route: it authenticates from the headers alone and answers
//! 401 (or the use case's 403/404) before the handler is called, so an unauthenticated client
//! never has its body read and learns nothing from validation. The handler then takes the
//! credentials with one of the extractors below ([`Caller`], [`Admin`], [`MasterKey`],
//! [`Signed`]), which only read what [`check`] left in the request.

use std::future::{Ready, ready};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse};
use shiplog_app::admin::{AdminCredentials, Master};
use shiplog_app::auth::{Principal, SignedHeaders};
use shiplog_app::error::AppError;

use crate::errors::ApiError;
use crate::{HttpState, auth};

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing: health, metrics, the OpenAPI document.
    Public,
    /// The instance's master key.
    Master,
    /// The master key, or an API key (the use case then asks for the `admin` role).
    Admin,
    /// Any API key; the use case asks the role for what it needs.
    Key,
    /// Envtracker's signed headers with a known key id; the signature over the body is checked
    /// by the handler ([`Signed::verify`]).
    Signed,
}

/// The shape a route's refusals take: each compatible API keeps its vendor's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `{"error": {"code", "message"}}`.
    Native,
    /// Clienwork's `{"error", "code"}`.
    Clienwork,
    /// Hivel's `{"message", "error", "code"}`.
    Hivel,
    /// Envtracker's `{"error", "code"}` with its own statuses.
    Envtracker,
}

impl Dialect {
    /// A use case's refusal in this dialect.
    pub(crate) fn refuse(self, error: &AppError) -> HttpResponse {
        match self {
            Self::Native => actix_web::ResponseError::error_response(&ApiError::App(error.clone())),
            Self::Clienwork => crate::routes::clienwork::refuse(error),
            Self::Hivel => crate::routes::hivel::refuse(error),
            Self::Envtracker => crate::routes::envtracker::refuse(error),
        }
    }
}

/// What [`check`] found, left in the request's extensions for the handler.
enum Credentials {
    Master(Master),
    Admin(AdminCredentials),
    Key(Principal),
    Signed(SignedHeaders),
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn authenticate(
    state: &HttpState,
    request: &HttpRequest,
    access: Access,
) -> Result<Option<Credentials>, AppError> {
    let app = &state.app;
    let key = || auth::presented_key(request);
    // The TCP peer, for the audit log: behind a proxy, the proxy's address (forwarded headers
    // are the client's word and are not taken).
    let address = request.peer_addr().map(|peer| peer.ip().to_string());
    let with_address = |mut principal: Principal| {
        principal.address = address.clone();
        principal
    };
    Ok(Some(match access {
        Access::Public => return Ok(None),
        Access::Master => Credentials::Master(
            app.authenticate_master(key().as_deref())
                .await?
                .from_address(address.clone()),
        ),
        Access::Admin => {
            Credentials::Admin(match app.authenticate_admin(key().as_deref()).await? {
                AdminCredentials::Master(master) => {
                    AdminCredentials::Master(master.from_address(address.clone()))
                }
                AdminCredentials::Key(principal) => AdminCredentials::Key(with_address(principal)),
            })
        }
        Access::Key => Credentials::Key(with_address(app.authenticate(key().as_deref()).await?)),
        Access::Signed => Credentials::Signed(
            app.signing_key_for(
                header(request, "x-webhook-key"),
                header(request, "x-webhook-timestamp"),
                header(request, "x-webhook-signature"),
            )
            .await?,
        ),
    }))
}

/// The middleware of one route: authenticates as `access` asks, else answers in `dialect`.
pub(crate) async fn check(
    access: Access,
    dialect: Dialect,
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = request.app_data::<Data<HttpState>>().cloned() else {
        return Err(actix_web::error::ErrorInternalServerError(
            "the HTTP state is not configured",
        ));
    };
    match authenticate(&state, request.request(), access).await {
        Ok(credentials) => {
            if let Some(credentials) = credentials {
                request.extensions_mut().insert(credentials);
            }
            Ok(next.call(request).await?.map_into_boxed_body())
        }
        Err(error) => Ok(request.into_response(dialect.refuse(&error))),
    }
}

/// Takes the credentials [`check`] left; a route whose declared access does not give them is a
/// bug of the route table, answered as a 500.
fn take<T>(
    request: &HttpRequest,
    pick: impl FnOnce(Credentials) -> Option<T>,
) -> Ready<Result<T, actix_web::Error>> {
    let taken = request
        .extensions_mut()
        .remove::<Credentials>()
        .and_then(pick);
    ready(taken.ok_or_else(|| {
        actix_web::error::ErrorInternalServerError(
            "the route table declares no access that gives these credentials",
        )
    }))
}

/// The caller of an [`Access::Key`] route.
pub struct Caller(pub Principal);

impl FromRequest for Caller {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        take(request, |c| match c {
            Credentials::Key(principal) => Some(Self(principal)),
            _ => None,
        })
    }
}

/// The caller of an [`Access::Admin`] route: the master key or an API key.
pub struct Admin(pub AdminCredentials);

impl FromRequest for Admin {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        take(request, |c| match c {
            Credentials::Admin(admin) => Some(Self(admin)),
            _ => None,
        })
    }
}

/// The caller of an [`Access::Master`] route.
pub struct MasterKey(pub Master);

impl FromRequest for MasterKey {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        take(request, |c| match c {
            Credentials::Master(master) => Some(Self(master)),
            _ => None,
        })
    }
}

/// The headers of an [`Access::Signed`] route, whose key is known; [`Signed::verify`] checks
/// the signature over the body.
pub struct Signed(SignedHeaders);

impl Signed {
    /// The caller, once the signature over `body` and the timestamp are checked.
    pub(crate) async fn verify(
        self,
        state: &HttpState,
        body: &[u8],
    ) -> Result<Principal, AppError> {
        state.app.verify_signature(self.0, body).await
    }
}

impl FromRequest for Signed {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        take(request, |c| match c {
            Credentials::Signed(headers) => Some(Self(headers)),
            _ => None,
        })
    }
}
