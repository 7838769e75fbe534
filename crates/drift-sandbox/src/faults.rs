//! Fault plans: which request gets which failure (DESIGN.md §7).

use crate::config::{FaultKind, FaultSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Debug)]
struct Active {
    spec: FaultSpec,
    seen: u64,
    fired: u64,
}

/// The active plan with its per-fault counters and a seeded random source.
#[derive(Clone, Debug)]
pub struct Faults {
    active: Vec<Active>,
    rng: ChaCha8Rng,
}

impl Faults {
    /// A plan; `seed` makes probabilistic faults repeatable.
    pub fn new(plan: &[FaultSpec], seed: u64) -> Faults {
        Faults {
            active: plan
                .iter()
                .map(|spec| Active {
                    spec: spec.clone(),
                    seen: 0,
                    fired: 0,
                })
                .collect(),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0xfa17),
        }
    }

    /// The faults of the plan, as configured.
    pub fn specs(&self) -> Vec<FaultSpec> {
        self.active.iter().map(|a| a.spec.clone()).collect()
    }

    /// Count a request to `route` and return the first fault that fires on it.
    pub fn decide(&mut self, route: &str) -> Option<FaultSpec> {
        let mut chosen = None;
        for a in &mut self.active {
            if a.spec.route != "*" && a.spec.route != route {
                continue;
            }
            a.seen += 1;
            let eligible =
                a.seen > a.spec.after_requests && a.spec.count.is_none_or(|c| a.fired < c);
            if chosen.is_some() || !eligible {
                continue;
            }
            let p = a.spec.probability.unwrap_or(1.0);
            if p >= 1.0 || self.rng.random_bool(p.max(0.0)) {
                a.fired += 1;
                chosen = Some(a.spec.clone());
            }
        }
        chosen
    }
}

/// A pagination fault handed to a list handler through the request extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorFault {
    /// Next cursor = this page's own cursor.
    Repeat,
    /// Next cursor = the first page's cursor.
    Cycle,
}

impl CursorFault {
    /// The cursor fault of a fault kind, if it is one.
    pub fn of(kind: FaultKind) -> Option<CursorFault> {
        match kind {
            FaultKind::RepeatCursor => Some(CursorFault::Repeat),
            FaultKind::CursorCycle => Some(CursorFault::Cycle),
            _ => None,
        }
    }

    /// The next cursor a page announces: `normal` without a fault; with one, the page's own
    /// cursor (`Repeat`) or the first page's (`Cycle`), even on the last page.
    pub fn next_cursor<T>(
        fault: Option<CursorFault>,
        this: T,
        first: T,
        normal: Option<T>,
    ) -> Option<T> {
        match fault {
            Some(CursorFault::Repeat) => Some(this),
            Some(CursorFault::Cycle) => Some(first),
            None => normal,
        }
    }
}
