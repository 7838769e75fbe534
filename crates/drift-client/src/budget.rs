//! The rate budget of one credential (DESIGN §4 "Rate limit").
//!
//! Two parts per lane: GCRA pacing (governor) at the configured rate — 600/min is paced at
//! one request per 100 ms with a small burst, never a burst of 600 — and a *gate*, a point in
//! time before which no request starts. The gate is pushed forward by `Retry-After` (seconds
//! or HTTP date) on 429/503 and by `remaining = 0` plus a reset in the `X-RateLimit-*` or
//! `RateLimit-*` headers (header names: REFERENCE §4, all speculative, so all are read and
//! none is required). `/reports/*` has its own lane at 60/min (REFERENCE §4, [DOC]).
//!
//! A budget made with [`RateBudget::shared`] keeps its GCRA state in a [`SharedBudget`]
//! backend instead of in memory, so every process using the credential draws from one
//! budget, and shares the gate with them (see [`crate::shared`]).
//!
//! **Reported quota.** When responses carry `X-RateLimit-Remaining` (or `RateLimit-Remaining`),
//! the main lane may send that many requests beyond the steady pace, less a safety margin
//! ([`spare_margin`]: 10% of the reported limit, at least 2) and less every request sent
//! since the request whose response reported it. Only the newest report counts, so a late
//! answer cannot raise it again. Without such headers the steady pace is all there is.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use reqwest::header::HeaderMap;

use crate::clock::{Clock, GovernorClock, TokioClock};
use crate::meter::{Counters, Meters};
use crate::shared::{GiveBack, Lease, LeaseAsk, SharedBudget, LATE_USE, PAUSE_CHECK};
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
    /// Total time spent in those waits, summed over requests (concurrent waits add up).
    pub wait_time: Duration,
    /// Wall-clock time during which at least one request waited: what the waits cost the
    /// run in elapsed time, at most (other requests may have run meanwhile).
    pub wait_wall: Duration,
}

/// Which lane a request draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    Main,
    Reports,
}

struct LaneState {
    pace: Pace,
    /// Nanoseconds since the clock origin before which no request may start.
    gate: AtomicU64,
}

/// How a lane paces its requests.
enum Pace {
    /// GCRA in this process's memory (governor).
    Local(Limiter),
    /// GCRA in a shared backend, spent through leases.
    Shared(SharedLane),
}

fn checked_rate(per_min: u32) -> Result<NonZeroU32, Error> {
    NonZeroU32::new(per_min).ok_or(Error::Config {
        field: "rate_limit_per_min",
        message: "must be at least 1 request per minute".into(),
    })
}

impl LaneState {
    fn new(per_min: u32, burst: u32, clock: &Arc<dyn Clock>) -> Result<Self, Error> {
        let per_min = checked_rate(per_min)?;
        let burst = NonZeroU32::new(burst.clamp(1, per_min.get())).unwrap_or(NonZeroU32::MIN);
        let period = Duration::from_secs(60) / per_min.get();
        let quota = Quota::with_period(period)
            .ok_or(Error::Config {
                field: "rate_limit_per_min",
                message: "rate too high to pace".into(),
            })?
            .allow_burst(burst);
        Ok(LaneState {
            pace: Pace::Local(RateLimiter::direct_with_clock(
                quota,
                GovernorClock(clock.clone()),
            )),
            gate: AtomicU64::new(0),
        })
    }

    fn shared(
        per_min: u32,
        burst: u32,
        backend: Arc<dyn SharedBudget>,
        key: String,
    ) -> Result<Self, Error> {
        let per_min = checked_rate(per_min)?.get();
        Ok(LaneState {
            pace: Pace::Shared(SharedLane::new(
                per_min,
                burst.clamp(1, per_min),
                backend,
                key,
            )),
            gate: AtomicU64::new(0),
        })
    }
}

/// The lease this process holds on a shared lane.
#[derive(Debug, Default)]
struct Held {
    lease: Lease,
    /// Index of the next unused permit of `lease`.
    next: u32,
    /// Permits of `lease` dropped because their time passed unused.
    dropped: u32,
    /// Size of the next lease (adapts to use, between 1 and a second's worth).
    size: u32,
    /// Local pacing while the backend cannot be reached: where the next local lease starts.
    fallback_tat_us: i64,
}

/// Outcome of taking a permit from a shared lane.
enum Taken {
    /// A permit; the request may start after this wait.
    Go(Duration),
    /// The budget is paused for this long (a server hint another process shared).
    Paused(Duration),
}

/// One lane's share of a [`SharedBudget`] row.
struct SharedLane {
    backend: Arc<dyn SharedBudget>,
    key: String,
    per_min: u32,
    burst: u32,
    /// Largest lease: about a second's worth of permits.
    max_lease: u32,
    held: tokio::sync::Mutex<Held>,
    /// Requests sent since the last report to the backend.
    sent: AtomicU32,
    /// Clock nanoseconds of the last read of the shared pause.
    pause_checked: AtomicU64,
    /// Clock nanoseconds of the last warning about the backend (so it is not repeated).
    warned: AtomicU64,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn until(from_us: i64, to_us: i64) -> Duration {
    Duration::from_micros(u64::try_from(to_us.saturating_sub(from_us)).unwrap_or(0))
}

impl SharedLane {
    fn new(per_min: u32, burst: u32, backend: Arc<dyn SharedBudget>, key: String) -> Self {
        let max_lease = per_min.div_ceil(60).max(1);
        SharedLane {
            backend,
            key,
            per_min,
            burst,
            max_lease,
            held: tokio::sync::Mutex::new(Held {
                size: max_lease,
                ..Held::default()
            }),
            sent: AtomicU32::new(0),
            pause_checked: AtomicU64::new(0),
            warned: AtomicU64::new(0),
        }
    }

    /// Takes the next permit of the held lease, leasing more when it is spent. Permits
    /// whose time passed more than [`LATE_USE`] ago are dropped.
    async fn take(&self, clock: &Arc<dyn Clock>) -> Taken {
        let mut held = self.held.lock().await;
        loop {
            let now = micros(clock.unix_now());
            let late = micros(LATE_USE);
            let stale = held.stale(now.saturating_sub(late));
            held.next += stale;
            held.dropped += stale;
            if held.next < held.lease.permits {
                let slot = held.lease.slot_us(held.next);
                held.next += 1;
                let at = slot.saturating_sub(held.lease.tolerance_us).max(now);
                return Taken::Go(until(now, at));
            }
            // Spent: lease again, smaller when permits went unused, larger when all were used.
            if held.lease.permits > 0 {
                held.size = if held.dropped > 0 {
                    (held.size / 2).max(1)
                } else {
                    held.size.saturating_mul(2).min(self.max_lease)
                };
            }
            let ask = LeaseAsk {
                per_min: self.per_min,
                burst: self.burst,
                want: held.size,
                sent: self.sent.swap(0, Ordering::Relaxed),
                now_us: now,
            };
            let lease = match self.backend.lease(&self.key, ask).await {
                Ok(lease) => lease,
                Err(e) => {
                    self.sent.fetch_add(ask.sent, Ordering::Relaxed);
                    self.warn(clock, &e);
                    held.fallback(&ask)
                }
            };
            self.pause_checked
                .store(nanos(clock.now()), Ordering::Relaxed);
            held.lease = lease;
            held.next = 0;
            held.dropped = 0;
            if lease.permits == 0 {
                return Taken::Paused(until(now, lease.paused_until_us));
            }
        }
    }

    /// The shared pause, read at most every [`PAUSE_CHECK`]: how long it still holds.
    async fn paused(&self, clock: &Arc<dyn Clock>) -> Option<Duration> {
        let now = nanos(clock.now());
        let last = self.pause_checked.load(Ordering::Relaxed);
        if now.saturating_sub(last) < nanos(PAUSE_CHECK) {
            return None;
        }
        self.pause_checked.store(now, Ordering::Relaxed);
        let now_us = micros(clock.unix_now());
        match self.backend.usage(&self.key, now_us).await {
            Ok(usage) => usage.paused_until_us.map(|t| until(now_us, t)),
            Err(e) => {
                self.warn(clock, &e);
                None
            }
        }
    }

    /// Shares a server hint: nobody on this budget sends before `until_us`.
    async fn pause(&self, clock: &Arc<dyn Clock>, until_us: i64) {
        if let Err(e) = self.backend.pause(&self.key, until_us).await {
            self.warn(clock, &e);
        }
    }

    fn warn(&self, clock: &Arc<dyn Clock>, e: &crate::shared::SharedBudgetError) {
        let now = nanos(clock.now()).max(1);
        let last = self.warned.load(Ordering::Relaxed);
        if last == 0 || now.saturating_sub(last) > nanos(Duration::from_secs(60)) {
            self.warned.store(now, Ordering::Relaxed);
            tracing::warn!(
                error = %e,
                "the shared rate budget cannot be reached; pacing this process alone meanwhile"
            );
        }
    }

    /// Returns the unused future permits of the held lease (from `Drop`).
    fn give_back(&self, now_us: i64) {
        let Ok(held) = self.held.try_lock() else {
            return;
        };
        let left = held.lease.permits.saturating_sub(held.next);
        let back = GiveBack {
            unused: left - held.stale(now_us.saturating_add(1)),
            end_us: held.lease.end_us,
            interval_us: held.lease.interval_us,
            sent: self.sent.swap(0, Ordering::Relaxed),
            now_us,
        };
        if back.unused > 0 || back.sent > 0 {
            self.backend.give_back_now(&self.key, back);
        }
    }
}

impl Held {
    /// How many of the next unused permits have slots before `cutoff_us`.
    fn stale(&self, cutoff_us: i64) -> u32 {
        let left = self.lease.permits.saturating_sub(self.next);
        let behind = cutoff_us.saturating_sub(self.lease.slot_us(self.next));
        if left == 0 || behind <= 0 {
            return 0;
        }
        // slots next, next+1, ... lie before the cutoff while i * interval < behind
        let n = (behind - 1) / self.lease.interval_us.max(1) + 1;
        u32::try_from(n).unwrap_or(u32::MAX).min(left)
    }

    /// A lease paced in this process alone (the backend failed).
    fn fallback(&mut self, ask: &LeaseAsk) -> Lease {
        let interval = crate::shared::interval_us(ask.per_min);
        let first = self.fallback_tat_us.max(ask.now_us);
        let end = first.saturating_add(interval.saturating_mul(i64::from(ask.want)));
        self.fallback_tat_us = end;
        Lease {
            permits: ask.want,
            first_us: first,
            interval_us: interval,
            tolerance_us: interval.saturating_mul(i64::from(ask.burst.max(1) - 1)),
            end_us: end,
            paused_until_us: 0,
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Safety margin kept from a reported remaining quota: 10% of the reported limit (the
/// budget when none is reported), at least 2 requests.
pub fn spare_margin(limit: u32) -> u32 {
    limit.div_ceil(10).max(2)
}

/// Requests the server reported it would still accept, as of one request.
#[derive(Debug, Default)]
struct Spare {
    /// Sequence number of the request whose response set `left` (newest wins).
    seq: u64,
    /// Requests that may still go beyond the steady pace.
    left: i64,
}

struct Inner {
    clock: Arc<dyn Clock>,
    per_min: u32,
    main: LaneState,
    reports: LaneState,
    counters: Counters,
    /// Requests sent so far, numbered from 1 (see [`Spare`]).
    sent_seq: AtomicU64,
    spare: Mutex<Spare>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let now_us = micros(self.clock.unix_now());
        for lane in [&self.main, &self.reports] {
            if let Pace::Shared(shared) = &lane.pace {
                shared.give_back(now_us);
            }
        }
    }
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
        Ok(Self::from_lanes(per_min, main, reports, clock))
    }

    /// A budget of `per_min` requests per minute (default burst, tokio's clock) whose state
    /// lives in `backend` under `key` (one key per credential), shared with every process
    /// that uses the same backend and key. `/reports/*` uses the key `"{key}/reports"`.
    /// Unused permits are given back when the last clone is dropped.
    /// Errors with `Error::Config` when `per_min` is 0.
    pub fn shared(
        per_min: u32,
        backend: Arc<dyn SharedBudget>,
        key: impl Into<String>,
    ) -> Result<Self, Error> {
        Self::shared_with_clock(
            per_min,
            DEFAULT_BURST,
            backend,
            key,
            Arc::new(TokioClock::default()),
        )
    }

    /// [`RateBudget::shared`] with a given burst and clock (tests).
    pub fn shared_with_clock(
        per_min: u32,
        burst: u32,
        backend: Arc<dyn SharedBudget>,
        key: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        let key = key.into();
        let main = LaneState::shared(per_min, burst, backend.clone(), key.clone())?;
        let reports = LaneState::shared(
            REPORTS_RATE_PER_MIN.min(per_min),
            1,
            backend,
            format!("{key}/reports"),
        )?;
        Ok(Self::from_lanes(per_min, main, reports, clock))
    }

    fn from_lanes(
        per_min: u32,
        main: LaneState,
        reports: LaneState,
        clock: Arc<dyn Clock>,
    ) -> Self {
        RateBudget {
            inner: Arc::new(Inner {
                clock,
                per_min,
                main,
                reports,
                counters: Counters::default(),
                sent_seq: AtomicU64::new(0),
                spare: Mutex::new(Spare::default()),
            }),
        }
    }

    /// Whether this budget is shared through a backend ([`RateBudget::shared`]).
    pub fn is_shared(&self) -> bool {
        matches!(self.inner.main.pace, Pace::Shared(_))
    }

    /// Waits for one request's turn on the main lane, as the client does before each
    /// request, and counts it as sent. For callers that send by other means, and tests.
    /// Errors with `Error::RateLimited` when a server's pause lasts more than `max_wait`.
    pub async fn until_ready(&self, max_wait: Duration) -> Result<(), Error> {
        self.acquire(Lane::Main, max_wait, &Meters::default())
            .await?;
        self.record_request();
        Ok(())
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
            wait_wall: self.inner.counters.wait_wall(),
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

    /// Waits until a request may start: the gate first (with a shared budget also the
    /// shared pause), then spare reported quota (main lane), then GCRA pacing. Fails with
    /// `RateLimited` instead of waiting when the gate is further away than `max_wait`. The
    /// wait is counted here and in `meters`.
    pub(crate) async fn acquire(
        &self,
        lane: Lane,
        max_wait: Duration,
        meters: &Meters,
    ) -> Result<(), Error> {
        let mut waited = Duration::ZERO;
        // Set once a shared lane granted a permit: a pause shared meanwhile still holds it.
        let mut permitted = false;
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
            if permitted {
                break;
            }
            let state = self.lane(lane);
            if let Pace::Shared(shared) = &state.pace {
                if let Some(pause) = shared.paused(&self.inner.clock).await {
                    self.push_gate(lane, pause);
                    continue;
                }
            }
            if lane == Lane::Main && self.take_spare() {
                break;
            }
            match &state.pace {
                Pace::Local(limiter) => match limiter.check() {
                    Ok(()) => break,
                    Err(not_until) => {
                        let d = not_until.wait_time_from(self.inner.clock.now());
                        self.inner.clock.sleep(d).await;
                        waited += d;
                    }
                },
                Pace::Shared(shared) => match shared.take(&self.inner.clock).await {
                    Taken::Go(d) => {
                        if !d.is_zero() {
                            self.inner.clock.sleep(d).await;
                            waited += d;
                        }
                        permitted = true;
                    }
                    Taken::Paused(d) => self.push_gate(lane, d),
                },
            }
        }
        self.record_waited(waited, meters);
        Ok(())
    }

    /// Spends one request of the reported spare quota, if any is left.
    fn take_spare(&self) -> bool {
        let mut spare = self.inner.spare.lock().unwrap_or_else(|e| e.into_inner());
        if spare.left > 0 {
            spare.left -= 1;
            true
        } else {
            false
        }
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

    /// Counts a request about to be sent; returns its sequence number (for [`Self::observe`]).
    pub(crate) fn record_request(&self) -> u64 {
        self.inner.counters.request();
        for lane in [&self.inner.main, &self.inner.reports] {
            if let Pace::Shared(shared) = &lane.pace {
                shared.sent.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        self.inner.sent_seq.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub(crate) fn record_retry(&self) {
        self.inner.counters.retry();
    }

    /// Reads a response's rate-limit headers, moves the gate, counts 429s, notes the
    /// reported spare quota (main lane; `seq` from [`Self::record_request`]), and returns
    /// the server's requested wait (`Retry-After`, or the reset when remaining is 0) if any.
    pub(crate) fn observe(
        &self,
        lane: Lane,
        status: u16,
        headers: &HeaderMap,
        seq: u64,
    ) -> Option<Duration> {
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
        if lane == Lane::Main {
            self.note_spare(status, headers, seq);
        }
        wait
    }

    fn note_spare(&self, status: u16, headers: &HeaderMap, seq: u64) {
        let reported = if status == 429 {
            Some(0)
        } else {
            reported_remaining(headers)
        };
        let Some(remaining) = reported else {
            return;
        };
        let limit = reported_limit(headers).unwrap_or(self.inner.per_min);
        let sent_since = self
            .inner
            .sent_seq
            .load(Ordering::SeqCst)
            .saturating_sub(seq);
        let left = i64::from(remaining)
            - i64::from(spare_margin(limit))
            - i64::try_from(sent_since).unwrap_or(i64::MAX);
        let mut spare = self.inner.spare.lock().unwrap_or_else(|e| e.into_inner());
        if seq >= spare.seq {
            spare.seq = seq;
            spare.left = left.max(0);
        }
    }

    /// Shares a server hint (a wait from [`Self::observe`]) with every process on a shared
    /// budget; nothing to do for a local one.
    pub(crate) async fn share_pause(&self, lane: Lane, wait: Duration) {
        if let Pace::Shared(shared) = &self.lane(lane).pace {
            let until_us = micros(self.inner.clock.unix_now().saturating_add(wait));
            shared.pause(&self.inner.clock, until_us).await;
        }
    }

    fn push_gate(&self, lane: Lane, d: Duration) {
        let until = self.inner.clock.now().saturating_add(d);
        let n = u64::try_from(until.as_nanos()).unwrap_or(u64::MAX);
        self.lane(lane).gate.fetch_max(n, Ordering::SeqCst);
    }
}

/// The smallest `*-Remaining*` value of a response (several windows may be reported).
fn reported_remaining(headers: &HeaderMap) -> Option<u32> {
    numbers_of(headers, &["x-ratelimit-remaining", "ratelimit-remaining"]).min()
}

/// The largest `*-Limit*` value of a response.
fn reported_limit(headers: &HeaderMap) -> Option<u32> {
    numbers_of(headers, &["x-ratelimit-limit", "ratelimit-limit"]).max()
}

/// The leading integer of each header whose name starts with one of `prefixes`
/// (`600`, `600, 600;w=60`).
fn numbers_of<'a>(
    headers: &'a HeaderMap,
    prefixes: &'a [&'a str],
) -> impl Iterator<Item = u32> + 'a {
    headers
        .iter()
        .filter(|(name, _)| prefixes.iter().any(|p| name.as_str().starts_with(p)))
        .filter_map(|(_, value)| {
            let text = value.to_str().ok()?.trim();
            let digits: &str = &text[..text
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(text.len())];
            digits.parse().ok()
        })
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
    fn stale_permits_are_counted_without_walking_them() {
        let held = Held {
            lease: Lease {
                permits: 10,
                first_us: 1_000,
                interval_us: 100,
                ..Lease::default()
            },
            next: 2,
            ..Held::default()
        };
        // slots of the unused permits: 1200, 1300, ..., 1900
        assert_eq!(held.stale(1_200), 0);
        assert_eq!(held.stale(1_201), 1);
        assert_eq!(held.stale(1_300), 1);
        assert_eq!(held.stale(1_301), 2);
        assert_eq!(held.stale(99_999), 8);
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
