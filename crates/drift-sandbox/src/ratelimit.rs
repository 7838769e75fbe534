//! Per-token leaky buckets with `X-RateLimit-*` headers (REFERENCE §4 `[SIM]`).

use std::collections::HashMap;

/// Outcome of one request against a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// `X-RateLimit-Limit`: requests per minute.
    pub limit: u32,
    /// `X-RateLimit-Remaining`: requests that would be accepted right now.
    pub remaining: u32,
    /// `X-RateLimit-Reset`: seconds until the bucket is empty again.
    pub reset_s: u64,
    /// `Some(seconds)` when the request is refused (429 with `Retry-After`).
    pub retry_after_s: Option<u64>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    level: f64,
    last_ms: i64,
}

/// Buckets keyed by token; one family for ordinary routes, one for `/reports/*`.
/// `Debug` shows only how many buckets exist (the keys are tokens).
#[derive(Clone, Default)]
pub struct Limiter {
    main: HashMap<String, Bucket>,
    reports: HashMap<String, Bucket>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("buckets", &self.main.len())
            .field("report_buckets", &self.reports.len())
            .finish()
    }
}

impl Limiter {
    /// Charge one request for `token` at `now_ms`; `None` when `per_min` is 0 (limit off).
    /// The bucket holds `per_min` requests and drains `per_min` per minute, continuously.
    pub fn charge(
        &mut self,
        token: &str,
        reports: bool,
        per_min: u32,
        now_ms: i64,
    ) -> Option<Decision> {
        if per_min == 0 {
            return None;
        }
        let map = if reports {
            &mut self.reports
        } else {
            &mut self.main
        };
        let b = map.entry(token.to_string()).or_insert(Bucket {
            level: 0.0,
            last_ms: now_ms,
        });
        let rate = f64::from(per_min) / 60_000.0; // requests drained per ms
        let cap = f64::from(per_min);
        b.level = (b.level - (now_ms - b.last_ms).max(0) as f64 * rate).max(0.0);
        b.last_ms = now_ms;
        let retry_after_s = if b.level + 1.0 > cap + 1e-9 {
            Some(((b.level + 1.0 - cap) / rate / 1000.0).ceil().max(1.0) as u64)
        } else {
            b.level += 1.0;
            None
        };
        Some(Decision {
            limit: per_min,
            remaining: (cap - b.level).floor().max(0.0) as u32,
            reset_s: (b.level / rate / 1000.0).ceil() as u64,
            retry_after_s,
        })
    }
}
