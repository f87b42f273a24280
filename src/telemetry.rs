//! Logs (tracing; text or JSON, never personal data) and Prometheus metrics.

use std::{
    collections::HashMap,
    sync::{OnceLock, PoisonError, RwLock},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request},
    http::Method,
    middleware::Next,
    response::Response,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::http::error::ErrorDetail;

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global metrics recorder once (tests build many apps in one process).
pub fn metrics_handle() -> &'static PrometheusHandle {
    PROMETHEUS.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets(&[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0,
            ])
            .unwrap_or_else(|_| PrometheusBuilder::new());
        match builder.install_recorder() {
            Ok(handle) => handle,
            // Another recorder is already installed (an embedding program): keep a private one.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        }
    })
}

/// The Prometheus text exposition.
pub fn render() -> String {
    metrics_handle().render()
}

/// Initializes tracing from `RUST_LOG` (default `info`), as text or JSON lines.
pub fn init_logging(json: bool) {
    use tracing_subscriber::{fmt, EnvFilter};
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Metric handles of one (route, method, status), resolved once: the registry lookup
/// (label hashing) and the label strings are per new combination, not per request.
#[derive(Clone)]
struct RouteMetrics {
    requests: metrics::Counter,
    duration: metrics::Histogram,
}

// foldhash, not SipHash: the keys are our own route templates, and this lookup is on every
// request (it was ~5% of a hot 304's user-space instructions under callgrind).
type RouteTable = HashMap<String, HashMap<(Method, u16), RouteMetrics, Fold>, Fold>;
type Fold = foldhash::fast::RandomState;

static ROUTE_METRICS: OnceLock<RwLock<RouteTable>> = OnceLock::new();

/// The method as a label: standard methods by name, any extension method as `OTHER`, so
/// that clients cannot mint new label values (series in Prometheus, entries here).
fn method_label(method: &Method) -> Method {
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    if STANDARD.contains(method) {
        method.clone()
    } else {
        Method::from_bytes(b"OTHER").unwrap_or_default()
    }
}

fn route_metrics(route: &str, method: &Method, status: u16) -> RouteMetrics {
    let table = ROUTE_METRICS.get_or_init(|| RwLock::new(HashMap::default()));
    let method = &method_label(method);
    let key = (method.clone(), status);
    if let Some(m) = table
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(route)
        .and_then(|r| r.get(&key))
    {
        return m.clone();
    }
    let m = RouteMetrics {
        requests: metrics::counter!("moocard_http_requests_total",
            "route" => route.to_owned(), "method" => method.as_str().to_owned(), "status" => status.to_string()),
        duration: metrics::histogram!("moocard_http_request_duration_seconds",
            "route" => route.to_owned(), "method" => method.as_str().to_owned()),
    };
    // Bounded: routes are templates (or "unmatched"), methods and statuses are few.
    table
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(route.to_owned())
        .or_default()
        .insert(key, m.clone());
    m
}

/// Records request count and latency per route template (never the raw path, which can
/// hold an email or a hash), and logs the hidden detail of 5xx answers once.
pub async fn track(req: Request, next: Next) -> Response {
    // MatchedPath is an Arc<str>: cloning it does not allocate.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let started = Instant::now();
    let res = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    observe(route, &method, started, &res);
    res
}

/// Records one answered request of `route` (a template) that started at `started`.
pub fn observe(route: &str, method: &Method, started: Instant, res: &Response) {
    let status = res.status().as_u16();
    let m = route_metrics(route, method, status);
    m.requests.increment(1);
    m.duration.record(started.elapsed().as_secs_f64());
    if let Some(ErrorDetail(detail)) = res.extensions().get::<ErrorDetail>() {
        tracing::error!(http.route = %route, http.method = %method, http.status = status, error = %detail, "request failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_methods_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), Method::PATCH);
        let custom = Method::from_bytes(b"FOOBAR").expect("token");
        assert_eq!(method_label(&custom).as_str(), "OTHER");
    }
}
