//! Time source for pacing and retry waits, injectable so tests can check waits without
//! sleeping (the default follows tokio's clock, so `tokio::time::pause` works too).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

/// A monotonic clock and a way to wait on it.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Time elapsed since the clock's origin.
    fn now(&self) -> Duration;
    /// Waits for `d` on this clock.
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()>;
    /// Wall-clock time since the Unix epoch, on the same time line as [`Clock::now`]: a
    /// budget shared with other processes ([`crate::shared`]) stamps its leases with it.
    /// Default: the system clock.
    fn unix_now(&self) -> Duration {
        std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
    }
}

/// The default clock: `tokio::time` (honours `tokio::time::pause`).
#[derive(Debug)]
pub struct TokioClock {
    origin: tokio::time::Instant,
    /// The system clock at `origin`, since the Unix epoch.
    unix_origin: Duration,
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock {
            origin: tokio::time::Instant::now(),
            unix_origin: std::time::SystemTime::now()
                .duration_since(std::time::SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// The system clock at creation plus tokio's elapsed time, so a paused tokio clock
    /// pauses this one too.
    fn unix_now(&self) -> Duration {
        self.unix_origin + self.origin.elapsed()
    }

    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        tokio::time::sleep(d).boxed()
    }
}

/// A clock that only moves when slept on: `sleep(d)` advances it by `d` and returns at once.
/// For tests that check how long the client waited (`Retry-After`, pacing) without waiting.
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> Arc<Self> {
        Arc::new(ManualClock::default())
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let n = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(n, Ordering::SeqCst);
    }
}

/// Where a [`ManualClock`] is on the Unix time line at zero: 2023-11-14T22:13:20Z.
pub const MANUAL_CLOCK_UNIX_ORIGIN: Duration = Duration::from_secs(1_700_000_000);

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }

    /// [`MANUAL_CLOCK_UNIX_ORIGIN`] plus [`Clock::now`]: budgets on one manual clock agree.
    fn unix_now(&self) -> Duration {
        MANUAL_CLOCK_UNIX_ORIGIN + self.now()
    }

    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        self.advance(d);
        futures::future::ready(()).boxed()
    }
}

/// Adapter so governor's GCRA runs on our clock.
#[derive(Debug, Clone)]
pub(crate) struct GovernorClock(pub Arc<dyn Clock>);

impl governor::clock::Clock for GovernorClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.0.now()
    }
}
