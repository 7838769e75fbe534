//! Prometheus metrics at `/metrics` (text format 0.0.4), through the `metrics` facade. The
//! route needs the admin token (`Authorization: Bearer`) unless `serve --public-metrics`.
//!
//! One recorder per process, installed on first use: several servers in one process (tests)
//! share it, which is why tests compare before/after values. Names:
//!
//! - `driftbridge_http_requests_total{method, route, status}`: API and UI requests. Every
//!   label has a bounded set of values whatever a client sends: `method` is one of the
//!   methods of RFC 9110 plus `PATCH`, or `other` (a client may invent any method name);
//!   `route` is the route template (`/api/v1/credentials/{name}`), never the raw path, or
//!   `unmatched`; `status` is the status code.
//! - what runs and credential tests count, under the names of `flows::metrics` (runs
//!   started and finished with their duration, records per stream, push rows per outcome,
//!   Drift use per credential): counted by the run events, so a push or a sync started
//!   from the API counts exactly as one started by the CLI or the scheduler.

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Install the process-wide recorder (once). `None` when another recorder was installed
/// first (metrics are then not served).
fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "a metrics recorder is already installed; /metrics will be empty");
                    None
                }
            }
        })
        .as_ref()
}

/// Make sure the recorder exists (call at start-up so early events are counted).
pub fn init() {
    let _ = handle();
}

/// `GET /metrics`: the Prometheus text exposition. Needs the admin token (or a UI session)
/// unless `serve` runs with `--public-metrics`; 401 otherwise.
pub async fn render(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    if !state.options.public_metrics && crate::auth::authenticate(&state.auth, &headers).is_none() {
        return crate::problem::ApiError::Unauthorized.into_response();
    }
    let body = handle().map(PrometheusHandle::render).unwrap_or_default();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// The `method` label of `method`: its name when it is a standard method, else `other`, so
/// invented methods (`FOO123 / HTTP/1.1`) cannot add series without bound.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Middleware counting requests by method (see [`method_label`]), route template and
/// status.
pub async fn count_requests(request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("driftbridge_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}
