//! The layer in front of every Drift route: latency, rate limit, auth, scope, faults,
//! rate-limit headers, statistics and the request log.

use crate::config::{FaultKind, FaultSpec};
use crate::error::ApiError;
use crate::faults::CursorFault;
use crate::ratelimit::Decision;
use crate::state::{lock, App};
use crate::stats::{mask_authorization, LogEntry};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;

/// Name and required scope of a route.
#[derive(Clone, Copy, Debug)]
pub struct RouteInfo {
    /// `<resource>.<operation>`, as in stats, faults and the log.
    pub name: &'static str,
    /// Scope the token needs (`None`: any valid token).
    pub scope: Option<&'static str>,
    /// Uses the `/reports/*` bucket.
    pub reports: bool,
}

/// The bearer token of a request, if it sent one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Middleware body; see the module docs for the order of checks.
pub async fn guard(
    State((app, info)): State<(Arc<App>, RouteInfo)>,
    mut req: Request,
    next: Next,
) -> Response {
    let at = app.clock.now_ms();
    let mut entry = LogEntry {
        at,
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        query: req.uri().query().map(str::to_string),
        route: info.name.to_string(),
        status: 0,
        authorization: req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(mask_authorization),
        fault: None,
    };
    if app.config.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(app.config.latency_ms)).await;
    }
    let token = bearer(req.headers()).map(str::to_string);
    let decision = charge(&app, &info, token.as_deref());
    let mut resp = match admit(&app, &info, token.as_deref(), decision) {
        Err(e) => e.into_response(),
        Ok(()) => {
            let fault = lock(&app.faults).decide(info.name);
            entry.fault = fault.as_ref().map(|f| f.kind.name().to_string());
            match fault {
                None => next.run(req).await,
                Some(f) => {
                    if let Some(cf) = CursorFault::of(f.kind) {
                        req.extensions_mut().insert(cf);
                    }
                    apply_fault(&app, &f, token.as_deref(), req, next).await
                }
            }
        }
    };
    if let Some(d) = decision.filter(|_| app.config.rate_limit_headers) {
        set_rate_headers(resp.headers_mut(), d);
    }
    entry.status = resp.status().as_u16();
    lock(&app.stats).record(entry);
    resp
}

fn charge(app: &App, info: &RouteInfo, token: Option<&str>) -> Option<Decision> {
    // [SIM] per-token leaky bucket, separate bucket for /reports/* (REFERENCE §4).
    let per_min = if info.reports {
        app.config.reports_rate_limit_per_min
    } else {
        app.config.rate_limit_per_min
    };
    let now = app.clock.now_ms();
    // Unknown tokens share one bucket, so random tokens cannot grow the table.
    let known = lock(&app.tokens).check(token, now).is_ok();
    let key = if known { token.unwrap_or("") } else { "" };
    lock(&app.limiter).charge(key, info.reports, per_min, now)
}

fn admit(
    app: &App,
    info: &RouteInfo,
    token: Option<&str>,
    d: Option<Decision>,
) -> Result<(), ApiError> {
    if let Some(retry_after_s) = d.and_then(|d| d.retry_after_s) {
        return Err(ApiError::RateLimited { retry_after_s });
    }
    let tokens = lock(&app.tokens);
    let entry = tokens.check(token, app.clock.now_ms())?;
    match info.scope {
        Some(scope) => crate::auth::require_scope(entry, scope),
        None => Ok(()),
    }
}

fn set_rate_headers(h: &mut HeaderMap, d: Decision) {
    // [SIM] header names (REFERENCE §4): Drift's are not public.
    h.insert("x-ratelimit-limit", HeaderValue::from(d.limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(d.remaining));
    h.insert("x-ratelimit-reset", HeaderValue::from(d.reset_s));
}

async fn apply_fault(
    app: &App,
    f: &FaultSpec,
    token: Option<&str>,
    req: Request,
    next: Next,
) -> Response {
    match f.kind {
        FaultKind::Status => {
            let code = StatusCode::from_u16(f.status.unwrap_or(503))
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            ApiError::Status(code).into_response()
        }
        FaultKind::RevokeToken => {
            if let Some(t) = token {
                lock(&app.tokens).revoke(t);
            }
            ApiError::Unauthorized.into_response()
        }
        FaultKind::RepeatCursor | FaultKind::CursorCycle => next.run(req).await,
        FaultKind::Reset => {
            let _ = next.run(req).await;
            reset_response()
        }
        FaultKind::Truncate => {
            let (parts, bytes) = buffered(next.run(req).await).await;
            let cut = bytes.slice(..bytes.len() / 2);
            let mut resp = Response::from_parts(parts, Body::from(cut));
            resp.headers_mut().remove(header::CONTENT_LENGTH);
            resp
        }
        FaultKind::SlowBody => {
            let (parts, bytes) = buffered(next.run(req).await).await;
            let delay = Duration::from_millis(f.delay_ms.unwrap_or(2000) / 10);
            Response::from_parts(parts, slow_body(bytes, delay))
        }
    }
}

async fn buffered(resp: Response) -> (axum::http::response::Parts, Bytes) {
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    (parts, bytes)
}

/// A response whose body fails at once: the server drops the connection.
fn reset_response() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sandbox fault: connection reset",
        ))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    resp
}

/// The body in 10 chunks with `delay` before each.
fn slow_body(bytes: Bytes, delay: Duration) -> Body {
    let step = bytes.len().div_ceil(10).max(1);
    let chunks: Vec<Bytes> = (0..bytes.len())
        .step_by(step)
        .map(|i| bytes.slice(i..(i + step).min(bytes.len())))
        .collect();
    let stream = futures::stream::unfold(chunks.into_iter(), move |mut it| async move {
        let chunk = it.next()?;
        tokio::time::sleep(delay).await;
        Some((Ok::<Bytes, std::io::Error>(chunk), it))
    });
    Body::from_stream(stream)
}
