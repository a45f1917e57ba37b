//! Every route, registered in one place.

use actix_web::body::BoxBody;
use actix_web::dev::HttpServiceFactory;
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpRequest, HttpResponse, Route, web};

use crate::access::{Access, Dialect};
use crate::errors::ApiError;
use crate::openapi::schemas::ErrorBody;
use crate::openapi::{Described, Refusals, Security};

pub mod clienwork;
pub mod envtracker;
pub mod health;
pub mod hivel;
pub mod hooks;
pub mod import;
pub mod incidents;
pub mod integrations;
pub mod lifecycle;
pub mod native;

/// What a handler answers.
pub type Reply = Result<HttpResponse, ApiError>;

/// Declares the route table once: [`ROUTES`] (what the authentication tests walk), [`register`]
/// and the OpenAPI document's operations ([`ApiDoc`]) are generated from the same list, so none
/// can miss a route. Each
/// route names its [`Access`] and the [`Dialect`] of its refusals; [`crate::access::check`]
/// enforces the access before the handler runs.
macro_rules! routes {
    ($($method:ident $path:literal [$access:ident, $dialect:ident] => $handler:path),* $(,)?) => {
        /// Every route served: HTTP method, actix path pattern, who may call it and the
        /// dialect its refusals speak, in registration order.
        pub const ROUTES: &[(&str, &str, Access, Dialect)] =
            &[$((stringify!($method), $path, Access::$access, Dialect::$dialect)),*];

        /// The OpenAPI document: one operation per route of this table, from its handler's
        /// `#[utoipa::path]`, so a route cannot be served undocumented; the title, tags,
        /// security schemes and each keyed route's 401 (from its access and dialect) are added
        /// by `crate::openapi`.
        #[derive(utoipa::OpenApi)]
        #[openapi(
            paths($($handler),*),
            modifiers(&Described, &Security, &Refusals)
        )]
        pub struct ApiDoc;

        /// Registers every route behind its access check and the panic guard, one resource per
        /// path (actix answers 405 for a second resource of the same path, so its methods must
        /// share one), and JSON answers for unknown paths and methods.
        #[allow(deprecated)]
        pub fn register(cfg: &mut web::ServiceConfig) {
            let mut resources: Vec<(&'static str, Vec<(&'static str, Route)>)> = Vec::new();
            $(
                let route = web::$method().to($handler).wrap(from_fn(
                    |request, next: Next<BoxBody>| {
                        crate::access::check(Access::$access, Dialect::$dialect, request, next)
                    },
                ));
                let method = stringify!($method);
                match resources.iter_mut().find(|(path, _)| *path == $path) {
                    Some((_, routes)) => routes.push((method, route)),
                    None => resources.push(($path, vec![(method, route)])),
                }
            )*
            for (path, routes) in resources {
                cfg.service(guarded(path, routes));
            }
            cfg.default_service(web::to(unknown_path));
        }
    };
}

routes! {
    get "/healthz" [Public, Native] => health::healthz,
    get "/readyz" [Public, Native] => health::readyz,
    get "/metrics" [Public, Native] => crate::metrics::serve,
    get "/api/v1/openapi.json" [Public, Native] => crate::openapi::serve,
    post "/api/webhooks/ci" [Key, Clienwork] => clienwork::ingest,
    post "/api/hooks/v2/deployment" [Key, Hivel] => hivel::ingest,
    put "/webhook/notify" [Signed, Envtracker] => envtracker::notify,
    put "/webhook/create-environment" [Signed, Envtracker] => envtracker::create_environment,
    put "/webhook/assign-apps" [Signed, Envtracker] => envtracker::assign_apps,
    put "/v1/company/{company}/project/{project}/applications/{application}/env/{environment}"
        [Signed, Envtracker] => envtracker::legacy_notify,
    post "/api/v1/import" [Key, Native] => import::import,
    post "/api/v1/workspaces" [Master, Native] => native::create_workspace,
    get "/api/v1/workspaces" [Master, Native] => native::list_workspaces,
    delete "/api/v1/workspaces/{code}" [Master, Native] => lifecycle::delete_workspace,
    post "/api/v1/workspaces/{code}/api-keys" [Admin, Native] => native::create_api_key,
    get "/api/v1/workspaces/{code}/api-keys" [Admin, Native] => native::list_api_keys,
    delete "/api/v1/workspaces/{code}/api-keys/{id}" [Admin, Native] => native::revoke_api_key,
    post "/api/v1/workspaces/{code}/signing-keys" [Admin, Native] => native::create_signing_key,
    get "/api/v1/workspaces/{code}/signing-keys" [Admin, Native] => native::list_signing_keys,
    delete "/api/v1/workspaces/{code}/signing-keys/{id}" [Admin, Native]
        => native::revoke_signing_key,
    post "/api/v1/projects" [Key, Native] => native::create_project,
    get "/api/v1/projects" [Key, Native] => native::list_projects,
    patch "/api/v1/projects/{slug}" [Key, Native] => native::update_project,
    delete "/api/v1/projects/{slug}" [Key, Native] => lifecycle::delete_project,
    post "/api/v1/teams" [Key, Native] => native::create_team,
    get "/api/v1/teams" [Key, Native] => native::list_teams,
    get "/api/v1/deployments" [Key, Native] => native::list_deployments,
    get "/api/v1/deployments/{id}" [Key, Native] => native::get_deployment,
    delete "/api/v1/deployments/{id}" [Key, Native] => lifecycle::delete_deployment,
    delete "/api/v1/applications/{id}" [Key, Native] => lifecycle::delete_application,
    delete "/api/v1/environments/{code}" [Key, Native] => lifecycle::delete_environment,
    get "/api/v1/audit" [Admin, Native] => lifecycle::audit_log,
    get "/api/v1/projects/{slug}/environments" [Key, Native] => native::environment_board,
    get "/api/v1/projects/{slug}/references/{key:.+}" [Key, Native] => native::get_reference,
    get "/api/v1/metrics/dora" [Key, Native] => native::dora,
    post "/pipelines/{pipeline_id}/hooks/outgoing" [Key, Native] => hooks::create_pipeline_hook,
    get "/pipelines/{pipeline_id}/hooks" [Key, Native] => hooks::list_pipeline_hooks,
    get "/api/v1/projects/{slug}/applications" [Key, Native] => hooks::list_applications,
    put "/api/v1/applications/{id}/source-provider" [Key, Native] => hooks::set_source_provider,
    post "/api/v1/projects/{slug}/hooks" [Key, Native] => hooks::create_hook,
    get "/api/v1/projects/{slug}/hooks" [Key, Native] => hooks::list_hooks,
    get "/api/v1/hooks/{id}" [Key, Native] => hooks::get_hook,
    put "/api/v1/hooks/{id}" [Key, Native] => hooks::replace_hook,
    delete "/api/v1/hooks/{id}" [Key, Native] => hooks::delete_hook,
    post "/api/v1/hooks/{id}/enable" [Key, Native] => hooks::enable_hook,
    post "/api/v1/hooks/{id}/disable" [Key, Native] => hooks::disable_hook,
    post "/api/v1/hooks/{id}/test" [Key, Native] => hooks::test_hook,
    get "/api/v1/hooks/{id}/deliveries" [Key, Native] => hooks::list_deliveries,
    post "/api/v1/deliveries/{id}/redeliver" [Key, Native] => hooks::redeliver,
    post "/api/v1/integrations" [Key, Native] => integrations::create_integration,
    get "/api/v1/integrations" [Key, Native] => integrations::list_integrations,
    get "/api/v1/integrations/{id}" [Key, Native] => integrations::get_integration,
    delete "/api/v1/integrations/{id}" [Key, Native] => integrations::delete_integration,
    post "/api/v1/integrations/{id}/rotate-secret" [Key, Native]
        => integrations::rotate_integration_secret,
    get "/api/v1/integrations/{id}/deliveries" [Key, Native] => integrations::list_received,
    post "/api/v1/integrations/{id}/webhook" [Public, Native] => integrations::receive,
    post "/api/v1/incidents" [Key, Native] => incidents::create_incident,
    get "/api/v1/incidents" [Key, Native] => incidents::list_incidents,
    get "/api/v1/incidents/{id}" [Key, Native] => incidents::get_incident,
    patch "/api/v1/incidents/{id}" [Key, Native] => incidents::update_incident,
}

/// One resource with its routes, wrapped in [`crate::logging::catch_panics`]; any other method
/// answers 405 with an `Allow` header and the native error body.
fn guarded(path: &str, routes: Vec<(&'static str, Route)>) -> impl HttpServiceFactory + 'static {
    let allow = routes
        .iter()
        .map(|(method, _)| method.to_uppercase())
        .collect::<Vec<_>>()
        .join(", ");
    routes.into_iter().fold(
        web::resource(path)
            .wrap(from_fn(crate::logging::catch_panics))
            .default_service(web::to(move || {
                let allow = allow.clone();
                async move { wrong_method(&allow) }
            })),
        |resource, (_, route)| resource.route(route),
    )
}

/// A path that no route serves.
async fn unknown_path(request: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(ErrorBody::new(
        "not_found",
        format!(
            "no route serves {}: see /api/v1/openapi.json for every route",
            request.path()
        ),
    ))
}

/// A method that the path does not serve.
fn wrong_method(allow: &str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header(("allow", allow))
        .json(ErrorBody::new(
            "method_not_allowed",
            format!("this path answers {allow} only"),
        ))
}

/// Turns a parse error of one field into a 400 naming it.
pub(crate) fn field<T, E: std::fmt::Display>(
    name: &str,
    parsed: Result<T, E>,
) -> Result<T, ApiError> {
    parsed.map_err(|e| ApiError::field(name, e))
}

/// An optional query parameter ([`crate::params::optional`], as the dashboard reads them): a
/// refusal is a 400 naming the parameter.
pub(crate) fn optional<T, E: std::fmt::Display>(
    name: &str,
    value: Option<String>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, ApiError> {
    crate::params::optional(name, value.as_deref(), parse)
        .map_err(|refused| ApiError::field(&refused.name, refused.reason))
}

/// Parses a JSON body; a 400 names the field otherwise.
pub(crate) fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    crate::json::parse(bytes).map_err(|message| ApiError::BadRequest {
        code: "invalid_body",
        message,
    })
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::from_fn;
    use actix_web::test::{TestRequest, call_service, init_service, read_body_json};

    use super::*;
    use crate::logging::{REQUEST_ID, request_span};

    async fn boom(path: web::Path<u32>) -> HttpResponse {
        let values: Vec<u32> = Vec::new();
        match values.get(usize::try_from(*path).unwrap_or(usize::MAX)) {
            Some(v) => HttpResponse::Ok().body(v.to_string()),
            None => panic!("nothing at index {}", *path),
        }
    }

    #[actix_web::test]
    async fn a_panicking_handler_becomes_a_logged_500_naming_the_request_id() {
        let service = init_service(
            actix_web::App::new()
                .wrap(from_fn(request_span))
                .service(guarded("/boom/{n}", vec![("get", web::get().to(boom))]))
                .service(guarded(
                    "/fine",
                    vec![(
                        "get",
                        web::get().to(|| async { HttpResponse::Ok().finish() }),
                    )],
                )),
        )
        .await;
        let response = call_service(&service, TestRequest::get().uri("/boom/3").to_request()).await;
        assert_eq!(response.status().as_u16(), 500);
        let id = response
            .headers()
            .get(REQUEST_ID)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let body: serde_json::Value = read_body_json(response).await;
        assert_eq!(body["error"]["code"], "internal_error");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(&id), "{message}");
        assert!(
            !message.contains("nothing at index"),
            "the panic stays in the logs: {message}"
        );
        // The worker survived and serves the next request.
        let response = call_service(&service, TestRequest::get().uri("/fine").to_request()).await;
        assert_eq!(response.status().as_u16(), 200);
    }
}
