//! Prometheus metrics, served at `GET /metrics` in the OpenMetrics text format: requests and
//! their latency by method, route pattern and status, and ingested events by API, event and
//! resulting status. Route patterns (`/api/v1/deployments/{id}`), never raw paths, keep the number
//! of series bounded.

use actix_web::HttpResponse;
use actix_web::web::Data;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use shiplog_domain::event::PipelineEvent;
use shiplog_domain::status::DeploymentStatus;

use crate::HttpState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    api: String,
    event: String,
    status: String,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// The metrics of one server.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram, fn() -> Histogram>,
    events: Family<EventLabels, Counter>,
    dora_days_packed: Counter,
    dora_days_waiting: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "shiplog_http_requests",
            "HTTP requests answered",
            requests.clone(),
        );
        registry.register(
            "shiplog_http_request_duration_seconds",
            "Time to answer an HTTP request",
            latency.clone(),
        );
        registry.register(
            "shiplog_events_ingested",
            "Pipeline events recorded (duplicates included), by API, event and resulting status",
            events.clone(),
        );
        let dora_days_packed = Counter::default();
        let dora_days_waiting = Gauge::default();
        registry.register(
            "shiplog_dora_days_packed",
            "DORA days this server packed (their deployments stored as one row a query reads)",
            dora_days_packed.clone(),
        );
        registry.register(
            "shiplog_dora_days_waiting",
            "DORA days over for an hour and not packed yet, after this server's last packing \
             round (0: packing is done; reports are exact either way)",
            dora_days_waiting.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            events,
            dora_days_packed,
            dora_days_waiting,
        }
    }
}

/// The methods counted by name; any other counts as `OTHER`, so that clients cannot add series.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// A label value from a closed set: the method itself if known, else `OTHER`.
fn method_label(method: &str) -> &'static str {
    METHODS
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or("OTHER")
}

impl Metrics {
    /// Counts one answered request. Every label comes from a closed set: `route` must be a
    /// route pattern (or `unmatched`), the method is one of [`METHODS`] or `OTHER`, and the
    /// status a number below 600.
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        let status = if (100..600).contains(&status) {
            status
        } else {
            0
        };
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status: status.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// Records one round of the DORA packer: the days it packed, and those still waiting.
    pub fn dora_packing(&self, packed: usize, waiting: usize) {
        self.dora_days_packed
            .inc_by(u64::try_from(packed).unwrap_or(u64::MAX));
        self.dora_days_waiting
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
    }

    /// Counts one recorded pipeline event.
    pub fn event(&self, api: &str, event: PipelineEvent, status: Option<DeploymentStatus>) {
        self.events
            .get_or_create(&EventLabels {
                api: api.to_owned(),
                event: event.as_str().to_owned(),
                status: status.map_or("none", DeploymentStatus::as_str).to_owned(),
            })
            .inc();
    }

    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition: requests and latencies by route pattern, events by API, event and status", content_type = "application/openmetrics-text", body = String),
        (status = 401, description = "`SHIPLOG_METRICS_TOKEN` is set and the request does not carry it as `Authorization: Bearer …`")))]
pub async fn serve(state: Data<HttpState>, request: actix_web::HttpRequest) -> HttpResponse {
    if let Some(token) = &state.metrics_token {
        let presented = crate::auth::presented_key(&request).unwrap_or_default();
        if !token.matches(&presented) {
            return HttpResponse::Unauthorized()
                .insert_header(("www-authenticate", "Bearer"))
                .body(
                    "send the metrics token (SHIPLOG_METRICS_TOKEN) as Authorization: Bearer …\n",
                );
        }
    }
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_events_are_counted_by_their_labels() {
        let metrics = Metrics::default();
        metrics.request("POST", "/api/webhooks/ci", 200, 0.002);
        metrics.request("POST", "/api/webhooks/ci", 200, 0.004);
        metrics.event(
            "clienwork",
            PipelineEvent::DEPLOY_COMPLETED,
            Some(DeploymentStatus::Success),
        );
        let text = metrics.render();
        assert!(
            text.contains(r#"shiplog_http_requests_total{method="POST",route="/api/webhooks/ci",status="200"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"shiplog_events_ingested_total{api="clienwork",event="deploy.completed",status="success"} 1"#),
            "{text}"
        );
        assert!(text.contains("shiplog_http_request_duration_seconds_count{method=\"POST\",route=\"/api/webhooks/ci\"} 2"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
