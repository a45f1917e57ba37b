//! Every route, registered in one place.

use actix_web::dev::HttpServiceFactory;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, Route, web};
use shiplog_app::auth::Principal;

use crate::errors::ApiError;
use crate::{HttpState, auth};

pub mod clienwork;
pub mod envtracker;
pub mod health;
pub mod hivel;
pub mod hooks;
pub mod native;

/// What a handler answers.
pub type Reply = Result<HttpResponse, ApiError>;

/// Declares the route table once: [`ROUTES`] (what the OpenAPI test compares against) and
/// [`register`] are generated from the same list, so neither can miss a route.
macro_rules! routes {
    ($($method:ident $path:literal => $handler:path),* $(,)?) => {
        /// Every route served: HTTP method and actix path pattern, in registration order.
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        /// Registers every route behind the panic guard, one resource per path (actix answers
        /// 405 for a second resource of the same path, so its methods must share one).
        #[allow(deprecated)]
        pub fn register(cfg: &mut web::ServiceConfig) {
            let mut resources: Vec<(&'static str, Vec<Route>)> = Vec::new();
            $(
                match resources.iter_mut().find(|(path, _)| *path == $path) {
                    Some((_, routes)) => routes.push(web::$method().to($handler)),
                    None => resources.push(($path, vec![web::$method().to($handler)])),
                }
            )*
            for (path, routes) in resources {
                cfg.service(guarded(path, routes));
            }
        }
    };
}

routes! {
    get "/healthz" => health::healthz,
    get "/readyz" => health::readyz,
    get "/metrics" => crate::metrics::serve,
    get "/api/v1/openapi.json" => crate::openapi::serve,
    post "/api/webhooks/ci" => clienwork::ingest,
    post "/api/hooks/v2/deployment" => hivel::ingest,
    put "/webhook/notify" => envtracker::notify,
    put "/webhook/create-environment" => envtracker::create_environment,
    put "/webhook/assign-apps" => envtracker::assign_apps,
    put "/v1/company/{company}/project/{project}/applications/{application}/env/{environment}"
        => envtracker::legacy_notify,
    post "/api/v1/workspaces" => native::create_workspace,
    post "/api/v1/workspaces/{code}/api-keys" => native::create_api_key,
    post "/api/v1/workspaces/{code}/signing-keys" => native::create_signing_key,
    post "/api/v1/projects" => native::create_project,
    post "/api/v1/teams" => native::create_team,
    get "/api/v1/deployments" => native::list_deployments,
    get "/api/v1/deployments/{id}" => native::get_deployment,
    get "/api/v1/projects/{slug}/environments" => native::environment_board,
    get "/api/v1/projects/{slug}/references/{key:.+}" => native::get_reference,
    get "/api/v1/metrics/dora" => native::dora,
    post "/pipelines/{pipeline_id}/hooks/outgoing" => hooks::create_pipeline_hook,
    get "/pipelines/{pipeline_id}/hooks" => hooks::list_pipeline_hooks,
    get "/api/v1/projects/{slug}/applications" => hooks::list_applications,
    post "/api/v1/projects/{slug}/hooks" => hooks::create_hook,
    get "/api/v1/projects/{slug}/hooks" => hooks::list_hooks,
    get "/api/v1/hooks/{id}" => hooks::get_hook,
    put "/api/v1/hooks/{id}" => hooks::replace_hook,
    delete "/api/v1/hooks/{id}" => hooks::delete_hook,
    post "/api/v1/hooks/{id}/enable" => hooks::enable_hook,
    post "/api/v1/hooks/{id}/disable" => hooks::disable_hook,
    post "/api/v1/hooks/{id}/test" => hooks::test_hook,
    get "/api/v1/hooks/{id}/deliveries" => hooks::list_deliveries,
    post "/api/v1/deliveries/{id}/redeliver" => hooks::redeliver,
}

/// One resource with its routes, wrapped in [`crate::logging::catch_panics`].
fn guarded(path: &str, routes: Vec<Route>) -> impl HttpServiceFactory + 'static {
    routes.into_iter().fold(
        web::resource(path).wrap(from_fn(crate::logging::catch_panics)),
        |resource, route| resource.route(route),
    )
}

/// The caller, from whichever header carries its API key.
pub(crate) async fn caller(
    state: &HttpState,
    request: &HttpRequest,
) -> Result<Principal, ApiError> {
    Ok(state
        .app
        .authenticate(auth::presented_key(request).as_deref())
        .await?)
}

/// Turns a parse error of one field into a 400 naming it.
pub(crate) fn field<T, E: std::fmt::Display>(
    name: &str,
    parsed: Result<T, E>,
) -> Result<T, ApiError> {
    parsed.map_err(|e| ApiError::field(name, e))
}

/// An optional query parameter: absent or blank is `None`, else `parse` must accept it and a
/// refusal is a 400 naming the parameter.
pub(crate) fn optional<T, E: std::fmt::Display>(
    name: &str,
    value: Option<String>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, ApiError> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| field(name, parse(&v)))
        .transpose()
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
                .service(guarded("/boom/{n}", vec![web::get().to(boom)]))
                .service(guarded(
                    "/fine",
                    vec![web::get().to(|| async { HttpResponse::Ok().finish() })],
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
