//! Request counters and latency histograms per route template, kept in plain atomics and
//! rendered in the Prometheus text format next to the `metrics` recorder's output.
//!
//! Why not the `metrics` crate for these two: its exporter stores every histogram sample
//! (value plus a timestamp read from the clock) until a scrape or upkeep drains it, and a
//! handle has to be found per (route, method, status). On the hot avatar path that was
//! about 600 instructions a request; here a request is a few relaxed atomic adds on
//! counters found by index.

use std::{
    collections::HashMap,
    fmt::Write as _,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        OnceLock, PoisonError, RwLock,
    },
    time::Duration,
};

use axum::http::Method;

/// Methods with their own label; any other is counted as `OTHER`, so clients cannot mint
/// label values (series in Prometheus).
const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "OTHER",
];

/// Histogram bucket upper bounds, seconds (the recorder's, so dashboards agree).
pub const BOUNDS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Status codes 100..=599 each get a counter.
const STATUS_MIN: u16 = 100;
const STATUSES: usize = 500;

fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::PATCH => 5,
        Method::OPTIONS => 6,
        Method::CONNECT => 7,
        Method::TRACE => 8,
        _ => 9,
    }
}

/// One method's figures on one route.
struct MethodStats {
    /// Requests by status (index: status - 100).
    statuses: Box<[AtomicU64]>,
    /// Requests by latency bucket (not cumulative); the last slot is `+Inf`.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

impl MethodStats {
    fn new() -> Self {
        Self {
            statuses: (0..STATUSES).map(|_| AtomicU64::new(0)).collect(),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

/// The figures of one route template. Made once per template and never freed (templates
/// are the router's, a fixed set).
pub struct RouteStats {
    route: String,
    /// Allocated on a method's first request (most routes see one or two methods).
    methods: [OnceLock<MethodStats>; METHODS.len()],
}

impl RouteStats {
    /// Counts one answered request.
    pub fn record(&self, method: &Method, status: u16, elapsed: Duration) {
        let m = self.methods[method_index(method)].get_or_init(MethodStats::new);
        let slot = usize::from(status.clamp(STATUS_MIN, 599) - STATUS_MIN);
        m.statuses[slot].fetch_add(1, Relaxed);
        let secs = elapsed.as_secs_f64();
        let bucket = BOUNDS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BOUNDS.len());
        m.buckets[bucket].fetch_add(1, Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        m.sum_nanos.fetch_add(nanos, Relaxed);
    }
}

static ROUTES: OnceLock<RwLock<HashMap<String, &'static RouteStats>>> = OnceLock::new();

fn routes() -> &'static RwLock<HashMap<String, &'static RouteStats>> {
    ROUTES.get_or_init(Default::default)
}

/// The figures of `route` (a template such as `/avatar/{hash}`, or `unmatched`).
pub fn route(route: &str) -> &'static RouteStats {
    if let Some(r) = routes()
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(route)
    {
        return r;
    }
    let mut map = routes().write().unwrap_or_else(PoisonError::into_inner);
    map.entry(route.to_owned()).or_insert_with(|| {
        Box::leak(Box::new(RouteStats {
            route: route.to_owned(),
            methods: std::array::from_fn(|_| OnceLock::new()),
        }))
    })
}

/// Label values as Prometheus quotes them.
fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('\n', r"\n")
}

/// `moocard_http_requests_total` and `moocard_http_request_duration_seconds`, in the
/// Prometheus text format, ordered by route so scrapes diff cleanly.
pub fn render() -> String {
    let mut stats: Vec<&'static RouteStats> = routes()
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .values()
        .copied()
        .collect();
    stats.sort_by(|a, b| a.route.cmp(&b.route));
    let mut out = String::new();
    out.push_str("# TYPE moocard_http_requests_total counter\n");
    for r in &stats {
        let route = escape(&r.route);
        for (method, m) in METHODS.iter().zip(&r.methods) {
            let Some(m) = m.get() else { continue };
            for (i, n) in m.statuses.iter().enumerate() {
                let n = n.load(Relaxed);
                if n > 0 {
                    let status = usize::from(STATUS_MIN) + i;
                    let _ = writeln!(
                        out,
                        "moocard_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
                    );
                }
            }
        }
    }
    out.push_str("# TYPE moocard_http_request_duration_seconds histogram\n");
    for r in &stats {
        let route = escape(&r.route);
        for (method, m) in METHODS.iter().zip(&r.methods) {
            let Some(m) = m.get() else { continue };
            let labels = format!("route=\"{route}\",method=\"{method}\"");
            let mut cumulative = 0;
            for (i, n) in m.buckets.iter().enumerate() {
                cumulative += n.load(Relaxed);
                let le = BOUNDS.get(i).map_or("+Inf".to_owned(), f64::to_string);
                let _ = writeln!(
                    out,
                    "moocard_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                );
            }
            let sum = m.sum_nanos.load(Relaxed) as f64 / 1e9;
            let _ = writeln!(
                out,
                "moocard_http_request_duration_seconds_sum{{{labels}}} {sum}\nmoocard_http_request_duration_seconds_count{{{labels}}} {cumulative}"
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_statuses_methods_and_buckets() {
        let r = route("/test/{x}");
        assert!(
            std::ptr::eq(r, route("/test/{x}")),
            "one entry per template"
        );
        r.record(&Method::GET, 200, Duration::from_micros(300));
        r.record(&Method::GET, 200, Duration::from_millis(3));
        r.record(&Method::GET, 304, Duration::from_secs(60));
        r.record(
            &Method::from_bytes(b"BREW").expect("token"),
            418,
            Duration::ZERO,
        );
        let text = render();
        let g = r#"route="/test/{x}",method="GET""#;
        // Cumulative buckets: 300 us <= 0.0005; 3 ms <= 0.005; 60 s only in +Inf.
        for want in [
            format!(r#"moocard_http_requests_total{{{g},status="200"}} 2"#),
            format!(r#"moocard_http_requests_total{{{g},status="304"}} 1"#),
            r#"moocard_http_requests_total{route="/test/{x}",method="OTHER",status="418"} 1"#
                .into(),
            format!(r#"moocard_http_request_duration_seconds_bucket{{{g},le="0.0005"}} 1"#),
            format!(r#"moocard_http_request_duration_seconds_bucket{{{g},le="0.005"}} 2"#),
            format!(r#"moocard_http_request_duration_seconds_bucket{{{g},le="30"}} 2"#),
            format!(r#"moocard_http_request_duration_seconds_bucket{{{g},le="+Inf"}} 3"#),
            format!(r#"moocard_http_request_duration_seconds_count{{{g}}} 3"#),
        ] {
            assert!(
                text.lines().any(|l| l == want),
                "{want} missing from:\n{text}"
            );
        }
    }
}
