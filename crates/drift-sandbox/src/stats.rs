//! Request statistics and the request log behind `/__sandbox/stats` and `/__sandbox/log`.

use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};

/// How many log entries are kept.
pub const LOG_CAPACITY: usize = 1000;

/// Counters of Drift API requests (admin routes are not counted).
#[derive(Clone, Debug, Default)]
pub struct Stats {
    requests_total: u64,
    rate_limited_total: u64,
    by_status: BTreeMap<String, u64>,
    by_route: BTreeMap<String, u64>,
    last_minute: VecDeque<i64>,
    peak_per_minute: u64,
    log: VecDeque<LogEntry>,
}

/// One request as the log shows it; `authorization` is masked.
#[derive(Clone, Debug)]
pub struct LogEntry {
    /// Sandbox clock at arrival, epoch ms.
    pub at: i64,
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Query string, if any.
    pub query: Option<String>,
    /// Route name (`conversations.list`, ... `unknown`).
    pub route: String,
    /// Response status.
    pub status: u16,
    /// `Bearer ****abcd`, or `None` when no header was sent.
    pub authorization: Option<String>,
    /// Name of the fault that fired, if any.
    pub fault: Option<String>,
}

impl Stats {
    /// Count one finished request.
    pub fn record(&mut self, entry: LogEntry) {
        self.requests_total += 1;
        if entry.status == 429 {
            self.rate_limited_total += 1;
        }
        *self.by_status.entry(entry.status.to_string()).or_default() += 1;
        *self.by_route.entry(entry.route.clone()).or_default() += 1;
        self.last_minute.push_back(entry.at);
        while self
            .last_minute
            .front()
            .is_some_and(|&t| t <= entry.at - 60_000)
        {
            self.last_minute.pop_front();
        }
        self.peak_per_minute = self.peak_per_minute.max(self.last_minute.len() as u64);
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(entry);
    }

    /// The `/__sandbox/stats` document (DESIGN.md §7).
    pub fn to_json(&self) -> Value {
        json!({
            "requests_total": self.requests_total,
            "rate_limited_total": self.rate_limited_total,
            "by_status": self.by_status,
            "by_route": self.by_route,
            "peak_requests_per_minute": self.peak_per_minute,
        })
    }

    /// The `/__sandbox/log` document: `{"requests": [...]}`, oldest first.
    pub fn log_json(&self) -> Value {
        let entries: Vec<Value> = self
            .log
            .iter()
            .map(|e| {
                json!({"at": e.at, "method": e.method, "path": e.path, "query": e.query,
                    "route": e.route, "status": e.status, "authorization": e.authorization,
                    "fault": e.fault})
            })
            .collect();
        json!({ "requests": entries })
    }
}

/// Mask an `Authorization` header: scheme kept, the token masked by
/// [`crate::config::mask_token`], e.g. `Bearer ****0000`.
pub fn mask_authorization(header: &str) -> String {
    match header.split_once(' ') {
        Some((scheme, token)) => format!("{scheme} {}", crate::config::mask_token(token.trim())),
        None => crate::config::mask_token(header),
    }
}
