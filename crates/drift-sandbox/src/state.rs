//! Shared state of a running sandbox: the org behind a lock, tokens, limits, faults, stats.

use crate::auth::Tokens;
use crate::config::{SandboxConfig, SandboxError};
use crate::faults::Faults;
use crate::org::Org;
use crate::ratelimit::Limiter;
use crate::stats::Stats;
use std::sync::{Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

/// The sandbox clock: a start time (wall clock or fixed) moving with real time.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start_ms: i64,
    started: Instant,
}

impl Clock {
    /// Start a clock at `start_ms` (epoch ms), or at the wall clock when `None`.
    pub fn new(start_ms: Option<i64>) -> Clock {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Clock {
            start_ms: start_ms.unwrap_or(wall),
            started: Instant::now(),
        }
    }

    /// Current sandbox time, epoch ms.
    pub fn now_ms(&self) -> i64 {
        self.start_ms + self.started.elapsed().as_millis() as i64
    }

    /// The time the clock started at, epoch ms.
    pub fn start_ms(&self) -> i64 {
        self.start_ms
    }
}

/// Everything a request handler can reach.
pub struct App {
    /// Configuration the sandbox started with.
    pub config: SandboxConfig,
    /// The sandbox clock.
    pub clock: Clock,
    /// `http://127.0.0.1:PORT`, set once the socket is bound.
    pub base_url: OnceLock<String>,
    /// The data.
    pub org: RwLock<Org>,
    /// Token table.
    pub tokens: Mutex<Tokens>,
    /// Rate-limit buckets.
    pub limiter: Mutex<Limiter>,
    /// Fault plan.
    pub faults: Mutex<Faults>,
    /// Counters and request log.
    pub stats: Mutex<Stats>,
    /// Webhook events of mutations ([`crate::webhooks`]).
    pub webhooks: crate::webhooks::Webhooks,
}

impl App {
    /// Build the state: seed or load the org, the token table and the fault plan.
    pub fn new(config: SandboxConfig) -> Result<App, SandboxError> {
        let clock = Clock::new(config.clock_start_ms);
        let initial = build_org(&config, &clock)?;
        Ok(App {
            tokens: Mutex::new(Tokens::from_config(&config, clock.start_ms())),
            faults: Mutex::new(Faults::new(&config.faults, config.seed)),
            org: RwLock::new(initial),
            limiter: Mutex::new(Limiter::default()),
            stats: Mutex::new(Stats::default()),
            base_url: OnceLock::new(),
            webhooks: crate::webhooks::Webhooks::new(config.webhooks.clone()),
            clock,
            config,
        })
    }

    /// The base URL (`http://127.0.0.1:PORT`).
    pub fn base_url(&self) -> &str {
        self.base_url
            .get()
            .map_or("http://127.0.0.1", String::as_str)
    }

    /// Read access to the org (a poisoned lock is recovered: data stays consistent
    /// because every writer completes its change before releasing).
    pub fn read(&self) -> RwLockReadGuard<'_, Org> {
        self.org.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Write access to the org.
    pub fn write(&self) -> RwLockWriteGuard<'_, Org> {
        self.org.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Back to the state at start: data, stats, buckets, revocations, the start fault plan.
    ///
    /// The org is built again rather than kept twice in memory: generation is
    /// deterministic, and fixtures are read again. Blocking (large orgs take a while):
    /// call it from `spawn_blocking`. Errors: the fixtures can no longer be read; then
    /// nothing is changed.
    pub fn reset(&self) -> Result<(), SandboxError> {
        let org = build_org(&self.config, &self.clock)?;
        *self.write() = org;
        *lock(&self.stats) = Stats::default();
        *lock(&self.limiter) = Limiter::default();
        *lock(&self.tokens) = Tokens::from_config(&self.config, self.clock.start_ms());
        *lock(&self.faults) = Faults::new(&self.config.faults, self.config.seed);
        Ok(())
    }
}

/// Seed the org, or load it from the fixtures directory; with `--messy`, choose its unfit
/// records ([`crate::messy::Messy::choose`]).
fn build_org(config: &SandboxConfig, clock: &Clock) -> Result<Org, SandboxError> {
    let mut org = match &config.fixtures {
        Some(dir) => crate::fixtures::load(dir)?,
        None => crate::seed::generate(config, clock.start_ms()),
    };
    if config.messy {
        org.messy = Some(crate::messy::Messy::choose(
            &org,
            config.seed,
            clock.start_ms(),
        ));
    }
    Ok(org)
}

/// Lock a mutex, recovering from poisoning (counters stay usable after a panic elsewhere).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
