//! The rate budget of one credential (DESIGN §4 "Rate limit").
//!
//! Two parts per lane: GCRA pacing (governor) at the configured rate — 600/min is paced at
//! one request per 100 ms with a small burst, never a burst of 600 — and a *gate*, a point in
//! time before which no request starts. The gate is pushed forward by `Retry-After` (seconds
//! or HTTP date) on 429/503 and by `remaining = 0` plus a reset in the `X-RateLimit-*` or
//! `RateLimit-*` headers (header names: REFERENCE §4, all speculative, so all are read and
//! none is required). `/reports/*` has its own lane at 60/min (REFERENCE §4, [DOC]).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use reqwest::header::HeaderMap;

use crate::clock::{Clock, GovernorClock, TokioClock};
use crate::meter::{Counters, Meters};
use crate::Error;

/// Default budget in requests per minute (DESIGN §4; not a confirmed Drift figure, REFERENCE §4).
pub const DEFAULT_RATE_PER_MIN: u32 = 600;
/// Budget of `/reports/*` in requests per minute (REFERENCE §4, Drift docs: Conversation Reporting).
pub const REPORTS_RATE_PER_MIN: u32 = 60;
/// Default GCRA burst: how many requests may start back to back after an idle spell.
pub const DEFAULT_BURST: u32 = 3;

type Limiter = RateLimiter<NotKeyed, InMemoryState, GovernorClock, NoOpMiddleware<Duration>>;

/// Counters of one budget, as returned by `Client::metrics` and `RateBudget::snapshot`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// HTTP requests sent (every attempt, retries included).
    pub requests: u64,
    /// Responses with status 429.
    pub rate_limited: u64,
    /// Attempts repeated after a retryable failure.
    pub retries: u64,
    /// Times a request waited (for pacing, the gate or a retry backoff).
    pub waits: u64,
    /// Total time spent in those waits.
    pub wait_time: Duration,
}

/// Which lane a request draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    Main,
    Reports,
}

struct LaneState {
    limiter: Limiter,
    /// Nanoseconds since the clock origin before which no request may start.
    gate: AtomicU64,
}

impl LaneState {
    fn new(per_min: u32, burst: u32, clock: &Arc<dyn Clock>) -> Result<Self, Error> {
        let per_min = NonZeroU32::new(per_min).ok_or(Error::Config {
            field: "rate_limit_per_min",
            message: "must be at least 1 request per minute".into(),
        })?;
        let burst = NonZeroU32::new(burst.clamp(1, per_min.get())).unwrap_or(NonZeroU32::MIN);
        let period = Duration::from_secs(60) / per_min.get();
        let quota = Quota::with_period(period)
            .ok_or(Error::Config {
                field: "rate_limit_per_min",
                message: "rate too high to pace".into(),
            })?
            .allow_burst(burst);
        Ok(LaneState {
            limiter: RateLimiter::direct_with_clock(quota, GovernorClock(clock.clone())),
            gate: AtomicU64::new(0),
        })
    }
}

struct Inner {
    clock: Arc<dyn Clock>,
    per_min: u32,
    main: LaneState,
    reports: LaneState,
    counters: Counters,
}

/// Rate budget of one credential, shared by every task and every `Client` that uses it
/// (clone it; clones share state). See the module docs for the pacing rules.
#[derive(Clone)]
pub struct RateBudget {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RateBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateBudget")
            .field("per_min", &self.inner.per_min)
            .field("metrics", &self.snapshot())
            .finish()
    }
}

impl RateBudget {
    /// A budget of `per_min` requests per minute on tokio's clock with the default burst.
    /// Errors with `Error::Config` when `per_min` is 0.
    pub fn new(per_min: u32) -> Result<Self, Error> {
        Self::with_clock(per_min, DEFAULT_BURST, Arc::new(TokioClock::default()))
    }

    /// A budget on a given clock (tests use `ManualClock`) with a given burst (>= 1).
    pub fn with_clock(per_min: u32, burst: u32, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        let main = LaneState::new(per_min, burst, &clock)?;
        let reports = LaneState::new(REPORTS_RATE_PER_MIN.min(per_min), 1, &clock)?;
        Ok(RateBudget {
            inner: Arc::new(Inner {
                clock,
                per_min,
                main,
                reports,
                counters: Counters::default(),
            }),
        })
    }

    /// Configured requests per minute.
    pub fn per_minute(&self) -> u32 {
        self.inner.per_min
    }

    /// Current counters.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let (requests, rate_limited, retries, waits, wait_time) = self.inner.counters.read();
        MetricsSnapshot {
            requests,
            rate_limited,
            retries,
            waits,
            wait_time,
        }
    }

    /// How long until the gate of the main lane opens (zero when open).
    pub fn gate_remaining(&self) -> Duration {
        self.gate_wait(Lane::Main)
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    fn lane(&self, lane: Lane) -> &LaneState {
        match lane {
            Lane::Main => &self.inner.main,
            Lane::Reports => &self.inner.reports,
        }
    }

    fn gate_wait(&self, lane: Lane) -> Duration {
        let gate = Duration::from_nanos(self.lane(lane).gate.load(Ordering::SeqCst));
        gate.saturating_sub(self.inner.clock.now())
    }

    /// Waits until a request may start: the gate first, then GCRA pacing. Fails with
    /// `RateLimited` instead of waiting when the gate is further away than `max_wait`. The
    /// wait is counted here and in `meters`.
    pub(crate) async fn acquire(
        &self,
        lane: Lane,
        max_wait: Duration,
        meters: &Meters,
    ) -> Result<(), Error> {
        let mut waited = Duration::ZERO;
        loop {
            let gate = self.gate_wait(lane);
            if !gate.is_zero() {
                if waited + gate > max_wait {
                    self.record_waited(waited, meters);
                    return Err(Error::RateLimited {
                        retry_after: Some(gate),
                    });
                }
                self.inner.clock.sleep(gate).await;
                waited += gate;
                continue;
            }
            match self.lane(lane).limiter.check() {
                Ok(()) => break,
                Err(not_until) => {
                    let d = not_until.wait_time_from(self.inner.clock.now());
                    self.inner.clock.sleep(d).await;
                    waited += d;
                }
            }
        }
        self.record_waited(waited, meters);
        Ok(())
    }

    fn record_waited(&self, waited: Duration, meters: &Meters) {
        if !waited.is_zero() {
            self.record_wait(waited);
            meters.each(|m| m.wait(waited));
        }
    }

    /// Counts one wait of `d` (pacing, gate or retry backoff).
    pub(crate) fn record_wait(&self, d: Duration) {
        self.inner.counters.wait(d);
    }

    pub(crate) fn record_request(&self) {
        self.inner.counters.request();
    }

    pub(crate) fn record_retry(&self) {
        self.inner.counters.retry();
    }

    /// Reads a response's rate-limit headers, moves the gate, counts 429s, and returns the
    /// server's requested wait (`Retry-After`, or the reset when remaining is 0) if any.
    pub(crate) fn observe(&self, lane: Lane, status: u16, headers: &HeaderMap) -> Option<Duration> {
        if status == 429 {
            self.inner.counters.rate_limited();
        }
        let retry_after = if status == 429 || status == 503 {
            header_str(headers, "retry-after").and_then(parse_retry_after)
        } else {
            None
        };
        let wait = retry_after.or_else(|| exhausted_reset(headers));
        if let Some(d) = wait {
            self.push_gate(lane, d);
        }
        wait
    }

    fn push_gate(&self, lane: Lane, d: Duration) {
        let until = self.inner.clock.now().saturating_add(d);
        let n = u64::try_from(until.as_nanos()).unwrap_or(u64::MAX);
        self.lane(lane).gate.fetch_max(n, Ordering::SeqCst);
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// `Retry-After`: delay in seconds (integer or decimal) or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| secs_saturating(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Seconds (finite, non-negative) as a Duration; a value past `Duration::MAX` (a server
/// sending `Retry-After: 1e300`) saturates instead of panicking like `from_secs_f64`. The
/// caller's wait cap then turns it into `Error::RateLimited`.
fn secs_saturating(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

/// When any `*-Remaining*` header says 0, the wait until the matching reset.
fn exhausted_reset(headers: &HeaderMap) -> Option<Duration> {
    let exhausted = headers.iter().any(|(name, value)| {
        let name = name.as_str();
        (name.starts_with("x-ratelimit-remaining") || name.starts_with("ratelimit-remaining"))
            && value.to_str().ok().map(str::trim) == Some("0")
    });
    if !exhausted {
        return None;
    }
    headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            name.starts_with("x-ratelimit-reset") || name.starts_with("ratelimit-reset")
        })
        .find_map(|(_, value)| value.to_str().ok().and_then(parse_reset))
}

/// A reset value: delta seconds, epoch seconds (> 1e9) or epoch milliseconds (> 1e12).
pub(crate) fn parse_reset(value: &str) -> Option<Duration> {
    let value = value.trim();
    let Ok(n) = value.parse::<f64>() else {
        return parse_retry_after(value);
    };
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let until = if n > 1e12 {
        Duration::from_millis(n as u64).saturating_sub(now)
    } else if n > 1e9 {
        secs_saturating(n).saturating_sub(now)
    } else {
        secs_saturating(n)
    };
    Some(until)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let d = parse_retry_after(&date).unwrap();
        assert!(d > Duration::from_secs(25) && d <= Duration::from_secs(30));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn remaining_zero_uses_reset() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("7"));
        assert_eq!(exhausted_reset(&h), Some(Duration::from_secs(7)));
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("3"));
        assert_eq!(exhausted_reset(&h), None);
    }
}
