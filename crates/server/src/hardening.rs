//! Browser-facing hardening of `serve` (issue 17): security headers on every answer, the
//! `Host` allow-list against DNS rebinding, and the rate limit of failed logins.
//!
//! - **Headers**: `Content-Security-Policy` ([`CONTENT_SECURITY_POLICY`]: scripts, styles and
//!   everything else only from this server's `/assets`, no inline script or style, no eval,
//!   no framing), `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff`,
//!   `Referrer-Policy: same-origin` (no referrer to other sites; `no-referrer` would make
//!   browsers send `Origin: null` on the UI's own form posts, which the Origin check
//!   refuses).
//! - **Host allow-list**: a page on another site whose name was re-pointed at this server
//!   (DNS rebinding) sends its own name as `Host`; such requests get 421 before anything
//!   else runs, so they can read neither the UI nor `/metrics`. Allowed: `localhost` and
//!   `*.localhost`, loopback addresses, the address `serve` is bound to (any address when it
//!   is bound to `0.0.0.0` or `::`: IP literals cannot be rebound), the host of
//!   `--public-url` and every `--allowed-host`. A request without `Host` (HTTP/1.0) passes.
//! - **Login rate limit**: after [`LOGIN_FAILURES`] failed logins within [`LOGIN_WINDOW`]
//!   from one client address (IPv6: its /64), every login from it is answered 429 with
//!   `Retry-After` until the oldest failure leaves the window.

use crate::problem::ApiError;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The `Content-Security-Policy` of every answer. htmx runs with `allowEval: false` and
/// without its inline indicator styles (see `templates/base.html`).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Middleware: the security headers on every answer.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Which `Host` values the server answers (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPolicy {
    /// The address `serve` listens on.
    pub bind: Option<IpAddr>,
    /// Further host names (lower case, no port): `--public-url`'s host, `--allowed-host`.
    pub names: Vec<String>,
}

impl HostPolicy {
    /// True when a request with `Host: host` (port optional) may be answered.
    pub fn allows(&self, host: &str) -> bool {
        let name = host_name(host);
        if name == "localhost" || name.ends_with(".localhost") {
            return true;
        }
        if let Ok(ip) = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            let ip = match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
                v4 => v4,
            };
            return ip.is_loopback() || self.bind.is_some_and(|b| b.is_unspecified() || b == ip);
        }
        self.names.contains(&name)
    }
}

/// The host name of a `Host` value: lower case, without port and trailing dot.
pub fn host_name(host: &str) -> String {
    let host = host.trim();
    let bare = if host.starts_with('[') {
        host.split_once(']')
            .map_or(host.to_string(), |(h, _)| format!("{h}]"))
    } else {
        match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h.to_string(),
            _ => host.to_string(),
        }
    };
    bare.trim_end_matches('.').to_ascii_lowercase()
}

/// Middleware: 421 for a request whose `Host` the policy does not allow.
pub async fn check_host(
    policy: std::sync::Arc<HostPolicy>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    match host {
        Some(host) if !policy.allows(&host) => ApiError::MisdirectedHost(format!(
            "this server does not answer for the host name \"{}\" (a page on another site may have re-pointed its name here); use the address it listens on or localhost, or start it with --allowed-host {} (or --public-url) to allow that name",
            host_name(&host),
            host_name(&host)
        ))
        .into_response(),
        _ => next.run(request).await,
    }
}

/// Failed logins allowed per client address within [`LOGIN_WINDOW`].
pub const LOGIN_FAILURES: usize = 10;
/// The window of [`LOGIN_FAILURES`].
pub const LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// Most client addresses tracked at once (the oldest is forgotten beyond this).
const LOGIN_TRACKED: usize = 10_000;

/// Failed logins per client address (see the module docs).
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

/// The key of a client address: IPv4 as it is, IPv6 by its /64 (one host's usual share).
fn client_key(addr: Option<SocketAddr>) -> IpAddr {
    match addr.map(|a| a.ip()) {
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        Some(v4) => v4,
        None => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    }
}

impl LoginLimiter {
    /// `Some(wait)` when logins from `client` are blocked now, for `wait` more.
    pub fn blocked(&self, client: Option<SocketAddr>) -> Option<Duration> {
        let key = client_key(client);
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let list = failures.get_mut(&key)?;
        while list
            .front()
            .is_some_and(|t| now.duration_since(*t) >= LOGIN_WINDOW)
        {
            list.pop_front();
        }
        if list.len() < LOGIN_FAILURES {
            return None;
        }
        let oldest = *list.front()?;
        Some(LOGIN_WINDOW.saturating_sub(now.duration_since(oldest)))
    }

    /// Count a failed login from `client`.
    pub fn failed(&self, client: Option<SocketAddr>) {
        let key = client_key(client);
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if failures.len() >= LOGIN_TRACKED && !failures.contains_key(&key) {
            failures.retain(|_, l| {
                l.back()
                    .is_some_and(|t| now.duration_since(*t) < LOGIN_WINDOW)
            });
            if failures.len() >= LOGIN_TRACKED {
                let oldest = failures
                    .iter()
                    .min_by_key(|(_, l)| l.back().copied())
                    .map(|(k, _)| *k);
                if let Some(oldest) = oldest {
                    failures.remove(&oldest);
                }
            }
        }
        let list = failures.entry(key).or_default();
        list.push_back(now);
        while list.len() > LOGIN_FAILURES {
            list.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_judged_by_name_whatever_the_port() {
        let policy = HostPolicy {
            bind: Some("127.0.0.1".parse().unwrap()),
            names: vec!["db.example.com".into()],
        };
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "localhost:8080",
            "LOCALHOST",
            "app.localhost",
            "[::1]:8080",
            "DB.example.com.:443",
        ] {
            assert!(policy.allows(ok), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:8080",
            "10.0.0.5:8080",
            "localhost.evil.example",
        ] {
            assert!(!policy.allows(refused), "{refused}");
        }
        let any = HostPolicy {
            bind: Some("0.0.0.0".parse().unwrap()),
            names: Vec::new(),
        };
        assert!(any.allows("10.0.0.5:8080"));
        assert!(!any.allows("rebound.example"));
    }
}
