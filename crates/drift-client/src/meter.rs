//! Request counters: one set per rate budget ([`crate::MetricsSnapshot`]) and any number
//! of [`Meter`]s, each counting what one handle of the client sent
//! ([`Client::with_meter`](crate::Client::with_meter)), e.g. the requests of one stream.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Atomic counters behind a budget's metrics and a [`Meter`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    rate_limited: AtomicU64,
    retries: AtomicU64,
    waits: AtomicU64,
    wait_nanos: AtomicU64,
    /// Wall-clock nanoseconds (since [`origin`]) up to which some wait is known to have lasted.
    wall_until: AtomicU64,
    /// Wall-clock time during which at least one request waited, nanoseconds.
    wall_nanos: AtomicU64,
}

/// The process's time origin for wall-clock wait accounting.
fn origin() -> std::time::Instant {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(std::time::Instant::now)
}

impl Counters {
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a wait of `d` that ends now. Concurrent waits overlap: besides their sum, the
    /// wall-clock time covered by at least one wait is kept (waits are recorded when they
    /// end, so each one adds only the part after the latest end seen before it; an
    /// estimate that never counts the same instant twice).
    pub(crate) fn wait(&self, d: Duration) {
        self.waits.fetch_add(1, Ordering::Relaxed);
        let n = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.wait_nanos.fetch_add(n, Ordering::Relaxed);
        let end = u64::try_from(origin().elapsed().as_nanos()).unwrap_or(u64::MAX);
        let start = end.saturating_sub(n);
        let mut seen = self.wall_until.load(Ordering::Relaxed);
        loop {
            if seen >= end {
                return;
            }
            match self.wall_until.compare_exchange_weak(
                seen,
                end,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.wall_nanos
                        .fetch_add(end - start.max(seen), Ordering::Relaxed);
                    return;
                }
                Err(now) => seen = now,
            }
        }
    }

    /// Wall-clock time during which at least one request waited (see [`Self::wait`]).
    pub(crate) fn wait_wall(&self) -> Duration {
        Duration::from_nanos(self.wall_nanos.load(Ordering::Relaxed))
    }

    /// `(requests, rate_limited, retries, waits, wait_time)`.
    pub(crate) fn read(&self) -> (u64, u64, u64, u64, Duration) {
        (
            self.requests.load(Ordering::Relaxed),
            self.rate_limited.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed),
            self.waits.load(Ordering::Relaxed),
            Duration::from_nanos(self.wait_nanos.load(Ordering::Relaxed)),
        )
    }
}

/// Counts the requests of the client handles it is attached to with
/// [`Client::with_meter`](crate::Client::with_meter): a sync gives each stream its own, so
/// a stream's row says how many requests it really sent (pages and retries included).
///
/// Cheap to clone (an `Arc` of atomics); clones count into the same numbers. `Debug`
/// shows the counts.
#[derive(Clone, Debug, Default)]
pub struct Meter {
    counters: Arc<Counters>,
}

/// What a [`Meter`] counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeterSnapshot {
    /// HTTP requests that left (every attempt, retries and OAuth token refreshes included).
    pub requests: u64,
    /// Responses with status 429.
    pub rate_limited: u64,
    /// Attempts repeated after a retryable failure.
    pub retries: u64,
    /// Times a request waited (for the rate budget, or between retries).
    pub waits: u64,
    /// Total time spent in those waits.
    pub wait_time: Duration,
}

impl Meter {
    /// A meter at zero.
    pub fn new() -> Meter {
        Meter::default()
    }

    /// Current counts.
    pub fn snapshot(&self) -> MeterSnapshot {
        let (requests, rate_limited, retries, waits, wait_time) = self.counters.read();
        MeterSnapshot {
            requests,
            rate_limited,
            retries,
            waits,
            wait_time,
        }
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }
}

/// The meters a client handle counts into (none for a plain client).
#[derive(Clone, Debug, Default)]
pub(crate) struct Meters(Option<Arc<[Meter]>>);

impl Meters {
    /// These meters and `meter`.
    pub(crate) fn with(&self, meter: Meter) -> Meters {
        let mut all: Vec<Meter> = self.0.as_deref().unwrap_or_default().to_vec();
        all.push(meter);
        Meters(Some(all.into()))
    }

    /// Applies `count` to every meter.
    pub(crate) fn each(&self, count: impl Fn(&Counters)) {
        for m in self.0.as_deref().unwrap_or_default() {
            count(m.counters());
        }
    }
}
