//! Counters for `/metrics`, in Prometheus' text format.
//!
//! Requests and upstream calls are counted in this process (one registry
//! per process: the HTTP clients that count upstream calls sit deep in the
//! integrations). Operations and sync lag are read from the store when
//! scraped, so every panel on a shared store reports the same.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{LazyLock, Mutex};

/// The process's counters.
#[derive(Default)]
pub struct Metrics {
    /// (route, method, status) → count.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// (service, outcome) → count.
    upstream: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Route → response bodies that panicked while being sent.
    body_panics: Mutex<BTreeMap<String, u64>>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);

/// The process's registry.
pub fn global() -> &'static Metrics {
    &METRICS
}

/// An upstream call's outcome as a label: the status class, or why there
/// was no status.
pub fn outcome_of_status(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        304 => "not_modified",
        300..=399 => "3xx",
        429 => "rate_limited",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Counts a plain HTTP call (deploy hook, smoke check, notification) and
/// hands its result back.
pub fn count_http(
    service: &'static str,
    result: Result<reqwest::Response, reqwest::Error>,
) -> Result<reqwest::Response, reqwest::Error> {
    let outcome = match &result {
        Ok(response) => outcome_of_status(response.status().as_u16()),
        Err(error) if error.is_timeout() => "timeout",
        Err(_) => "transport",
    };
    global().upstream(service, outcome);
    result
}

impl Metrics {
    /// Counts one answered request. `route` is the matched route pattern
    /// (`/env/{env}`), never the raw path, so the label set stays small.
    pub fn request(&self, route: &str, method: &str, status: u16) {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let key = (route.to_owned(), method.to_owned(), status);
        *requests.entry(key).or_default() += 1;
    }

    /// Counts one call to GitHub, Render or a target database.
    pub fn upstream(&self, service: &'static str, outcome: &'static str) {
        let mut upstream = self.upstream.lock().unwrap_or_else(|p| p.into_inner());
        *upstream.entry((service, outcome)).or_default() += 1;
    }

    /// Counts one response body that panicked while it was being sent
    /// (see `web::body_guard`); `route` as for [`Metrics::request`].
    pub fn body_panic(&self, route: &str) {
        let mut panics = self.body_panics.lock().unwrap_or_else(|p| p.into_inner());
        *panics.entry(route.to_owned()).or_default() += 1;
    }

    /// The process's counters as Prometheus text.
    pub fn render_counters(&self, out: &mut String) {
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP flightdeck_http_requests_total Requests answered, by route pattern, method and status.\n");
        out.push_str("# TYPE flightdeck_http_requests_total counter\n");
        for ((route, method, status), count) in requests.iter() {
            let _ = writeln!(
                out,
                "flightdeck_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {count}",
                escape(route),
                escape(method),
            );
        }
        drop(requests);
        let upstream = self.upstream.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP flightdeck_upstream_calls_total Calls to GitHub, Render and the target databases, by outcome.\n");
        out.push_str("# TYPE flightdeck_upstream_calls_total counter\n");
        for ((service, outcome), count) in upstream.iter() {
            let _ = writeln!(
                out,
                "flightdeck_upstream_calls_total{{service=\"{service}\",outcome=\"{outcome}\"}} {count}"
            );
        }
        drop(upstream);
        let panics = self.body_panics.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP flightdeck_body_panics_total Response bodies that panicked while being sent (cut short), by route pattern.\n");
        out.push_str("# TYPE flightdeck_body_panics_total counter\n");
        for (route, count) in panics.iter() {
            let _ = writeln!(
                out,
                "flightdeck_body_panics_total{{route=\"{}\"}} {count}",
                escape(route),
            );
        }
    }
}

/// Operations by kind and state, as a gauge block.
pub fn render_operations(out: &mut String, counts: &[(String, String, i64)]) {
    out.push_str("# HELP flightdeck_operations Operations in the store, by kind and state (outcome once finished).\n");
    out.push_str("# TYPE flightdeck_operations gauge\n");
    for (kind, state, count) in counts {
        let _ = writeln!(
            out,
            "flightdeck_operations{{kind=\"{}\",state=\"{}\"}} {count}",
            escape(kind),
            escape(state)
        );
    }
}

/// Seconds since each environment's source last synced, as a gauge block;
/// a source that never synced is left out and counted as never synced.
pub fn render_sync_lag(out: &mut String, lags: &[(String, String, Option<f64>)]) {
    out.push_str(
        "# HELP flightdeck_sync_lag_seconds Seconds since the source last synced successfully.\n",
    );
    out.push_str("# TYPE flightdeck_sync_lag_seconds gauge\n");
    for (environment, source, lag) in lags {
        if let Some(lag) = lag {
            let _ = writeln!(
                out,
                "flightdeck_sync_lag_seconds{{environment=\"{}\",source=\"{}\"}} {lag:.3}",
                escape(environment),
                escape(source)
            );
        }
    }
    out.push_str("# HELP flightdeck_sync_never_succeeded Sources that have not synced successfully yet (1).\n");
    out.push_str("# TYPE flightdeck_sync_never_succeeded gauge\n");
    for (environment, source, lag) in lags {
        if lag.is_none() {
            let _ = writeln!(
                out,
                "flightdeck_sync_never_succeeded{{environment=\"{}\",source=\"{}\"}} 1",
                escape(environment),
                escape(source)
            );
        }
    }
}

/// A label value as Prometheus' text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_as_prometheus_text_with_escaped_labels() {
        let metrics = Metrics::default();
        metrics.request("/env/{env}", "GET", 200);
        metrics.request("/env/{env}", "GET", 200);
        metrics.request("/api/v1/audit", "GET", 403);
        metrics.upstream("github", outcome_of_status(304));
        metrics.upstream("render", outcome_of_status(503));
        metrics.body_panic("/api/v1/audit/export");
        let mut out = String::new();
        metrics.render_counters(&mut out);
        assert!(out.contains(
            "flightdeck_http_requests_total{route=\"/env/{env}\",method=\"GET\",status=\"200\"} 2\n"
        ));
        assert!(out.contains(
            "flightdeck_http_requests_total{route=\"/api/v1/audit\",method=\"GET\",status=\"403\"} 1\n"
        ));
        assert!(out.contains(
            "flightdeck_upstream_calls_total{service=\"github\",outcome=\"not_modified\"} 1\n"
        ));
        assert!(
            out.contains("flightdeck_upstream_calls_total{service=\"render\",outcome=\"5xx\"} 1\n")
        );
        assert!(out.contains("flightdeck_body_panics_total{route=\"/api/v1/audit/export\"} 1\n"));
        let mut ops = String::new();
        render_operations(&mut ops, &[("rollback".into(), "succeeded".into(), 3)]);
        assert!(ops.contains("flightdeck_operations{kind=\"rollback\",state=\"succeeded\"} 3\n"));
        let mut lag = String::new();
        render_sync_lag(
            &mut lag,
            &[
                ("production".into(), "github_runs".into(), Some(4.5)),
                ("staging".into(), "database".into(), None),
            ],
        );
        assert!(lag.contains(
            "flightdeck_sync_lag_seconds{environment=\"production\",source=\"github_runs\"} 4.500\n"
        ));
        assert!(lag.contains(
            "flightdeck_sync_never_succeeded{environment=\"staging\",source=\"database\"} 1\n"
        ));
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
