//! A rate budget shared by every process that uses one credential (DESIGN §4 "Rate limit").
//!
//! Drift's limit belongs to the org's token, not to one process, so the GCRA state of a
//! credential's budget lives where every user of the credential sees it: a row in a
//! [`SharedBudget`] backend (the metadata store's SQLite file on one machine, PostgreSQL
//! across machines; both in the `store` crate) keyed by the credential.
//!
//! **Leases.** A process does not touch the backend per request. It *leases* a small batch of
//! permits (at most about a second's worth, fewer while it uses fewer) in one short atomic
//! update of the row, then spends them locally. A lease is a run of GCRA slots: permit `i`
//! belongs to the virtual time `first + i * interval` and may be used from `tolerance`
//! before it (the burst) to [`LATE_USE`] after it; a permit not used by then is dropped
//! (time that passed cannot be spent later). The row's theoretical arrival time (TAT)
//! moves past the lease, so the next lease, from any process, starts where this one ends.
//! A process returns its unused future permits when it stops ([`GiveBack`]), which helps
//! only while nobody leased after it; otherwise they are lost. A process that dies holding a
//! lease loses at most that lease (its slots pass unused): budget is lost, never overspent.
//!
//! **Worst case.** Every request uses a distinct slot of the one shared schedule and leaves
//! at most `tolerance` before and [`LATE_USE`] after its slot, so any 60 s window holds at
//! most the budget plus the burst plus [`LATE_USE`] worth of slots (at 600/min: 600 + 3 + 5).
//!
//! **Server hints.** A 429, `Retry-After` or `X-RateLimit-Remaining: 0` seen by one process is
//! written to the row ([`SharedBudget::pause`]); every process reads it at its next lease and
//! at least every [`PAUSE_CHECK`], and waits until the time the server gave.
//!
//! All times here are microseconds since the Unix epoch (`*_us`), taken from the budget's
//! [`Clock::unix_now`](crate::clock::Clock::unix_now).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

/// How long after its slot a leased permit may still be used before it is dropped.
pub const LATE_USE: Duration = Duration::from_millis(500);

/// How often a process with a shared budget re-reads the shared pause between leases.
pub const PAUSE_CHECK: Duration = Duration::from_millis(250);

const MINUTE_US: i64 = 60_000_000;

/// The state of one credential's shared budget: one row of the backend's table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BudgetRow {
    /// GCRA theoretical arrival time: where the next lease starts.
    pub tat_us: i64,
    /// No request before this time (a server hint); 0 when none was given.
    pub paused_until_us: i64,
    /// Start of the current minute of the use counter.
    pub window_start_us: i64,
    /// Requests reported in the current minute.
    pub window_count: i64,
    /// Requests reported in the minute before it.
    pub prev_window_count: i64,
}

/// What a process asks of [`SharedBudget::lease`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseAsk {
    /// The credential's budget, requests per minute (at least 1).
    pub per_min: u32,
    /// GCRA burst: requests that may start back to back after an idle spell (at least 1).
    pub burst: u32,
    /// Permits wanted (at least 1).
    pub want: u32,
    /// Requests this process sent since its last report, for the use counter.
    pub sent: u32,
    /// Now.
    pub now_us: i64,
}

/// Permits granted by [`SharedBudget::lease`]: `permits` consecutive GCRA slots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lease {
    /// How many permits; 0 while the budget is paused (see `paused_until_us`).
    pub permits: u32,
    /// Virtual time of the first permit.
    pub first_us: i64,
    /// Time between two permits (60 s / budget).
    pub interval_us: i64,
    /// How early a permit may be used (the burst: `(burst - 1) * interval`).
    pub tolerance_us: i64,
    /// Where the lease ends: the row's TAT right after it was granted.
    pub end_us: i64,
    /// The shared pause, 0 when none.
    pub paused_until_us: i64,
}

impl Lease {
    /// Virtual time of permit `i`.
    pub fn slot_us(&self, i: u32) -> i64 {
        self.first_us
            .saturating_add(i64::from(i).saturating_mul(self.interval_us))
    }
}

/// Permits a process returns when it stops ([`SharedBudget::give_back`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GiveBack {
    /// Unused permits at the end of the lease whose slots are still in the future.
    pub unused: u32,
    /// [`Lease::end_us`] of the lease they come from.
    pub end_us: i64,
    /// [`Lease::interval_us`] of that lease.
    pub interval_us: i64,
    /// Requests sent since the last report, for the use counter.
    pub sent: u32,
    /// Now.
    pub now_us: i64,
}

/// A credential's budget use across every process, as the backend counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BudgetUse {
    /// Requests sent in the last minute (reported at each lease, so up to a second late;
    /// the minute before is weighted by how much of it still falls in the last 60 s).
    pub requests_last_minute: u64,
    /// No request before this time (epoch µs), when a server hint is in force.
    pub paused_until_us: Option<i64>,
}

impl BudgetRow {
    /// Grants a lease (see the module docs) and moves the TAT past it. While the row is
    /// paused it grants nothing and says until when.
    pub fn lease(&mut self, ask: &LeaseAsk) -> Lease {
        let now = ask.now_us;
        self.count(ask.sent, now);
        let interval = interval_us(ask.per_min);
        let tolerance = interval.saturating_mul(i64::from(ask.burst.max(1) - 1));
        if self.paused_until_us > now {
            return Lease {
                permits: 0,
                first_us: self.paused_until_us,
                interval_us: interval,
                tolerance_us: tolerance,
                end_us: self.tat_us,
                paused_until_us: self.paused_until_us,
            };
        }
        let want = ask.want.max(1);
        let first = self.tat_us.max(now);
        let end = first.saturating_add(interval.saturating_mul(i64::from(want)));
        self.tat_us = end;
        Lease {
            permits: want,
            first_us: first,
            interval_us: interval,
            tolerance_us: tolerance,
            end_us: end,
            paused_until_us: 0,
        }
    }

    /// Takes back unused permits when nobody leased after them (the TAT is still the
    /// lease's end); otherwise they are lost. Counts `sent` either way.
    pub fn give_back(&mut self, back: &GiveBack) {
        self.count(back.sent, back.now_us);
        if back.unused > 0 && self.tat_us == back.end_us {
            let returned = back.interval_us.saturating_mul(i64::from(back.unused));
            self.tat_us = self.tat_us.saturating_sub(returned).max(back.now_us);
        }
    }

    /// Pauses every user of the budget until `until_us` (a later pause wins) and moves the
    /// TAT there, so pacing resumes from that point.
    pub fn pause(&mut self, until_us: i64) {
        self.paused_until_us = self.paused_until_us.max(until_us);
        self.tat_us = self.tat_us.max(until_us);
    }

    /// The use at `now_us`.
    pub fn usage(&self, now_us: i64) -> BudgetUse {
        let age = now_us.saturating_sub(self.window_start_us);
        let (current, previous) = if age >= 2 * MINUTE_US {
            (0, 0)
        } else if age >= MINUTE_US {
            (0, self.window_count)
        } else {
            (self.window_count, self.prev_window_count)
        };
        let into = (age % MINUTE_US).max(0) as f64 / MINUTE_US as f64;
        let weighted = previous as f64 * (1.0 - into) + current as f64;
        BudgetUse {
            requests_last_minute: weighted.round().max(0.0) as u64,
            paused_until_us: (self.paused_until_us > now_us).then_some(self.paused_until_us),
        }
    }

    fn count(&mut self, sent: u32, now_us: i64) {
        let minute = now_us - now_us.rem_euclid(MINUTE_US);
        if minute != self.window_start_us {
            self.prev_window_count = if minute - self.window_start_us == MINUTE_US {
                self.window_count
            } else {
                0
            };
            self.window_start_us = minute;
            self.window_count = 0;
        }
        self.window_count = self.window_count.saturating_add(i64::from(sent));
    }
}

/// Microseconds between two requests at `per_min` (at least 1).
pub fn interval_us(per_min: u32) -> i64 {
    (MINUTE_US / i64::from(per_min.max(1))).max(1)
}

/// Where a client's budget is shared: a backend and the row key of its credential. Give it
/// to [`ClientBuilder::share_budget`](crate::ClientBuilder::share_budget); the store makes
/// one per credential (`Store::budget_share`).
#[derive(Clone, Debug)]
pub struct BudgetShare {
    /// The backend holding the rows.
    pub backend: Arc<dyn SharedBudget>,
    /// The credential's row (`/reports` is appended for the reports lane).
    pub key: String,
}

/// Why a backend call failed. The message names what failed, never a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedBudgetError(pub String);

impl fmt::Display for SharedBudgetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shared rate budget: {}", self.0)
    }
}

impl std::error::Error for SharedBudgetError {}

/// Result of a backend call.
pub type SharedResult<T> = Result<T, SharedBudgetError>;

/// Where the rows of shared budgets live. Each method is one short atomic operation on the
/// row of `key` (created on first use) that applies the matching [`BudgetRow`] method.
/// When a call fails the budget goes on with local pacing at the same rate (and a warning),
/// so an unreachable backend slows nothing but may let processes overlap.
pub trait SharedBudget: Send + Sync + fmt::Debug {
    /// [`BudgetRow::lease`] on the row of `key`.
    fn lease(&self, key: &str, ask: LeaseAsk) -> BoxFuture<'static, SharedResult<Lease>>;
    /// [`BudgetRow::give_back`] on the row of `key`.
    fn give_back(&self, key: &str, back: GiveBack) -> BoxFuture<'static, SharedResult<()>>;
    /// [`BudgetRow::pause`] on the row of `key`.
    fn pause(&self, key: &str, until_us: i64) -> BoxFuture<'static, SharedResult<()>>;
    /// [`BudgetRow::usage`] of the row of `key` (nothing used when there is no row).
    fn usage(&self, key: &str, now_us: i64) -> BoxFuture<'static, SharedResult<BudgetUse>>;
    /// Gives back from a `Drop` (no `.await` there). The default blocks on
    /// [`SharedBudget::give_back`] for up to 2 s when called inside a multi-threaded tokio
    /// runtime, spawns it on a current-thread runtime, and drops it outside any runtime.
    /// A blocking backend should do it in place.
    fn give_back_now(&self, key: &str, back: GiveBack) {
        let fut = self.give_back(key, back);
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let bounded = async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), fut).await;
        };
        match handle.runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| handle.block_on(bounded));
            }
            _ => {
                handle.spawn(bounded);
            }
        }
    }
}

/// A [`SharedBudget`] in this process's memory: budgets made on one `MemoryBudget` share a
/// row per key, e.g. several clients in one process, or tests standing in for processes.
#[derive(Debug, Default, Clone)]
pub struct MemoryBudget {
    rows: Arc<Mutex<HashMap<String, BudgetRow>>>,
}

impl MemoryBudget {
    /// An empty one.
    pub fn new() -> Arc<Self> {
        Arc::new(MemoryBudget::default())
    }

    /// A copy of the row of `key`, if any.
    pub fn row(&self, key: &str) -> Option<BudgetRow> {
        self.rows().get(key).copied()
    }

    fn rows(&self) -> std::sync::MutexGuard<'_, HashMap<String, BudgetRow>> {
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with<T>(&self, key: &str, f: impl FnOnce(&mut BudgetRow) -> T) -> T {
        f(self.rows().entry(key.to_string()).or_default())
    }
}

impl SharedBudget for MemoryBudget {
    fn lease(&self, key: &str, ask: LeaseAsk) -> BoxFuture<'static, SharedResult<Lease>> {
        let lease = self.with(key, |row| row.lease(&ask));
        futures::future::ready(Ok(lease)).boxed()
    }

    fn give_back(&self, key: &str, back: GiveBack) -> BoxFuture<'static, SharedResult<()>> {
        self.give_back_now(key, back);
        futures::future::ready(Ok(())).boxed()
    }

    fn pause(&self, key: &str, until_us: i64) -> BoxFuture<'static, SharedResult<()>> {
        self.with(key, |row| row.pause(until_us));
        futures::future::ready(Ok(())).boxed()
    }

    fn usage(&self, key: &str, now_us: i64) -> BoxFuture<'static, SharedResult<BudgetUse>> {
        let usage = self.row(key).unwrap_or_default().usage(now_us);
        futures::future::ready(Ok(usage)).boxed()
    }

    fn give_back_now(&self, key: &str, back: GiveBack) {
        self.with(key, |row| row.give_back(&back));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(want: u32, now_us: i64) -> LeaseAsk {
        LeaseAsk {
            per_min: 600,
            burst: 3,
            want,
            sent: 0,
            now_us,
        }
    }

    #[test]
    fn leases_follow_each_other() {
        let mut row = BudgetRow::default();
        let a = row.lease(&ask(10, 1_000_000));
        assert_eq!(
            (a.permits, a.first_us, a.interval_us),
            (10, 1_000_000, 100_000)
        );
        assert_eq!(a.tolerance_us, 200_000);
        let b = row.lease(&ask(10, 1_000_000));
        assert_eq!(
            b.first_us, a.end_us,
            "the next lease starts where the last ends"
        );
        // after an idle spell the lease starts now
        let c = row.lease(&ask(1, 10_000_000));
        assert_eq!(c.first_us, 10_000_000);
    }

    #[test]
    fn give_back_only_when_last() {
        let mut row = BudgetRow::default();
        let a = row.lease(&ask(10, 0));
        let back = GiveBack {
            unused: 4,
            end_us: a.end_us,
            interval_us: a.interval_us,
            sent: 6,
            now_us: 0,
        };
        row.give_back(&back);
        assert_eq!(row.tat_us, 600_000);
        let b = row.lease(&ask(10, 0));
        assert_eq!(b.first_us, 600_000);
        let stale = GiveBack {
            end_us: 600_000,
            ..back
        };
        row.give_back(&stale);
        assert_eq!(
            row.tat_us, b.end_us,
            "someone leased after: nothing returned"
        );
    }

    #[test]
    fn pause_grants_nothing_until_it_ends() {
        let mut row = BudgetRow::default();
        row.pause(5_000_000);
        let l = row.lease(&ask(10, 1_000_000));
        assert_eq!((l.permits, l.paused_until_us), (0, 5_000_000));
        let l = row.lease(&ask(10, 5_000_000));
        assert_eq!((l.permits, l.first_us), (10, 5_000_000));
    }

    #[test]
    fn usage_counts_the_last_minute() {
        let mut row = BudgetRow::default();
        let t0 = 120 * MINUTE_US;
        row.lease(&LeaseAsk {
            sent: 30,
            ..ask(1, t0 + 1)
        });
        assert_eq!(row.usage(t0 + 2).requests_last_minute, 30);
        // half a minute into the next minute: half of the previous one still counts
        row.lease(&LeaseAsk {
            sent: 10,
            ..ask(1, t0 + MINUTE_US + MINUTE_US / 2)
        });
        assert_eq!(
            row.usage(t0 + MINUTE_US + MINUTE_US / 2)
                .requests_last_minute,
            25
        );
        assert_eq!(row.usage(t0 + 3 * MINUTE_US).requests_last_minute, 0);
    }
}
