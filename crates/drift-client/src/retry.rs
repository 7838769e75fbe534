//! Retry policy (DESIGN §4 "Errors"), built on backon.
//!
//! - Reads and idempotent writes (PATCH, DELETE) retry 429, 5xx, timeouts and connection
//!   errors; creating POSTs retry only 429 and connection failures before the request was
//!   sent, because otherwise Drift may have acted and a repeat would create a duplicate.
//! - 401/403 and other 4xx are never retried (a 401 is sent again once after an OAuth
//!   token refresh, see [`run`]).
//! - A 2xx body that is not JSON at all (empty, HTML, cut short) is sent again at most
//!   [`BODY_RETRIES`] times after short waits (200 ms, then 400 ms), for reads and idempotent
//!   writes only; then it is the `Decode` error. A JSON body of the wrong shape is not
//!   retried (the same request would get the same answer).
//! - Otherwise the wait is the server's `Retry-After` when it sends one (used as is, never
//!   multiplied), else a capped exponential backoff with jitter.
//! - The total wait of one call is capped (`max_retry_wait`): when the next wait would pass
//!   the cap the error is returned at once (`RateLimited` for a 429) instead of sleeping.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use crate::client::{Client, Kind, Raw, Req};
use crate::decode::BodyError;
use crate::Error;

/// Most times a request is sent again because its 2xx body was not JSON.
pub(crate) const BODY_RETRIES: u32 = 2;

/// Wait before the first such retry; doubled for the next.
const BODY_RETRY_WAIT: Duration = Duration::from_millis(200);

/// Retry settings of a client.
#[derive(Clone, Debug)]
pub(crate) struct RetryPolicy {
    pub max_retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
    pub max_total_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            min_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            max_total_wait: Duration::from_secs(120),
        }
    }
}

/// The error of one attempt plus what the retry decision needs.
#[derive(Debug)]
pub(crate) struct AttemptError {
    pub error: Error,
    /// HTTP status when a response arrived.
    status: Option<u16>,
    /// The connection failed before the request could reach Drift.
    unsent: bool,
    /// Never retry (budget gate beyond the cap, bad path).
    fatal: bool,
    /// A 2xx body that is not JSON at all (empty, HTML, cut short).
    not_json: bool,
}

impl AttemptError {
    pub(crate) fn fatal(error: Error) -> Self {
        AttemptError {
            error,
            status: None,
            unsent: false,
            fatal: true,
            not_json: false,
        }
    }

    pub(crate) fn status(error: Error, status: u16) -> Self {
        AttemptError {
            error,
            status: Some(status),
            unsent: false,
            fatal: false,
            not_json: false,
        }
    }

    /// A 2xx body that could not be read; retried (briefly) only when it is not JSON.
    pub(crate) fn body(e: BodyError) -> Self {
        AttemptError {
            error: e.error,
            status: None,
            unsent: false,
            fatal: !e.not_json,
            not_json: e.not_json,
        }
    }

    pub(crate) fn transport(error: Error, unsent: bool) -> Self {
        AttemptError {
            error,
            status: None,
            unsent,
            fatal: false,
            not_json: false,
        }
    }

    /// Whether this failure may be retried for a request of `kind`.
    fn retryable(&self, kind: Kind) -> bool {
        if self.fatal {
            return false;
        }
        match (kind, self.status) {
            (_, Some(429)) => true,
            (Kind::Create, _) => self.unsent,
            (_, Some(s)) => (500..=599).contains(&s),
            (_, None) => {
                self.not_json
                    || matches!(self.error, Error::Timeout { .. } | Error::Transport { .. })
            }
        }
    }
}

/// Runs `req` with pacing and the retry policy; `parse` turns each 2xx response into the
/// result (its failures take part in the retry decision too).
///
/// A 401 on a client that refreshes OAuth tokens ([`crate::oauth`]) mints a new access token
/// (once for all requests that saw the old one) and runs the request again, once; a 401
/// answered to a creating POST means Drift did not act, so sending it again is safe.
pub(crate) async fn run<T>(
    client: &Client,
    req: &Req,
    parse: impl Fn(Raw) -> Result<T, AttemptError>,
) -> Result<T, Error> {
    let generation = client.auth_generation();
    match attempts(client, req, &parse).await {
        Err(Error::Unauthorized { .. }) if client.refreshes_tokens() => {
            client.refresh_access_token(generation).await?;
            attempts(client, req, &parse).await
        }
        other => other,
    }
}

/// Like [`run`] for a request whose body names the access token (`token_info`): after a
/// refresh the request is built again by `build`, so it names the new token.
pub(crate) async fn run_rebuilt<T>(
    client: &Client,
    build: impl Fn() -> Result<Req, Error>,
    parse: impl Fn(&Req, Raw) -> Result<T, AttemptError>,
) -> Result<T, Error> {
    let generation = client.auth_generation();
    let req = build()?;
    match attempts(client, &req, &|raw| parse(&req, raw)).await {
        Err(Error::Unauthorized { .. }) if client.refreshes_tokens() => {
            client.refresh_access_token(generation).await?;
            let req = build()?;
            attempts(client, &req, &|raw| parse(&req, raw)).await
        }
        other => other,
    }
}

/// The attempts of one call under the retry policy.
async fn attempts<T>(
    client: &Client,
    req: &Req,
    parse: &impl Fn(Raw) -> Result<T, AttemptError>,
) -> Result<T, Error> {
    let policy = &client.inner.retry;
    let budget = client.inner.budget.clone();
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(policy.max_retries);
    let cap = policy.max_total_wait;
    let mut total = Duration::ZERO;
    let mut body_retries = 0u32;
    let sleeper = {
        let budget = budget.clone();
        let client = client.clone();
        move |d: Duration| {
            budget.record_wait(d);
            client.meters.each(|m| m.wait(d));
            let sleep = budget.clock().sleep(d);
            let client = client.clone();
            // A stop ends the pause; the next attempt then fails with `Stopped` unsent.
            async move {
                tokio::select! {
                    _ = client.stop_signal() => {}
                    _ = sleep => {}
                }
            }
        }
    };
    (|| async { parse(client.attempt(req).await?) })
        .retry(backoff)
        .sleep(sleeper)
        .when(|e: &AttemptError| e.retryable(req.kind))
        .adjust(move |e: &AttemptError, next: Option<Duration>| {
            let next = next?;
            let wait = if e.not_json {
                if body_retries >= BODY_RETRIES {
                    return None;
                }
                body_retries += 1;
                BODY_RETRY_WAIT * 2u32.pow(body_retries - 1)
            } else {
                e.error.retry_after().unwrap_or(next)
            };
            if total.saturating_add(wait) > cap {
                return None;
            }
            total += wait;
            Some(wait)
        })
        .notify(|e: &AttemptError, wait: Duration| {
            budget.record_retry();
            client.meters.each(|m| m.retry());
            if let Some(observer) = &client.inner.observer {
                observer.retrying(req.route, &e.error, wait);
            }
            tracing::debug!(
                route = req.route,
                error = %e.error,
                wait_ms = wait.as_millis() as u64,
                "retrying Drift request"
            );
        })
        .await
        .map_err(|e| e.error)
}
