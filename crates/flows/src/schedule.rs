//! The scheduler of `serve` (or a worker): starts data sources whose schedule is due.
//!
//! A source's schedule is one of:
//! - `every_minutes = N`: due when its last run started at least N minutes ago, or it never
//!   ran;
//! - `cron = "M H DoM Mon DoW"` (standard 5 fields, UTC, parsed by the `croner` crate): due
//!   when the first cron time after the last run's start (after the source's creation when it
//!   never ran) is now or earlier.
//!
//! A source with a run still going (in any process on the data directory) is never started
//! again: a start due meanwhile is recorded as a `skipped` run, and the next due time counts
//! from that record (so a long run gives one skipped record per due time, not one per
//! tick, and no catch-up run right after it ends). Checked every [`TICK`]; missed
//! times (server stopped) give one run when the server is back, not one per missed time:
//! the next due time counts from the start of that one run.

use crate::sources::Schedule;
use crate::Flows;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use std::time::Duration;

/// How often schedules are checked.
pub const TICK: Duration = Duration::from_secs(15);

/// An example given with cron errors.
const CRON_EXAMPLE: &str =
    "use 5 fields, minute hour day-of-month month day-of-week, in UTC, e.g. \"0 2 * * *\" (02:00 every day) or \"*/15 * * * 1-5\" (every 15 minutes on weekdays)";

/// The 5 cron fields: name, lowest and highest value.
const CRON_FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
];

/// The first number of `value` (one cron field) outside its field's range, in plain words:
/// `hour 99 is out of range 0-23`. Names (`MON`, `JAN`), `*` and `?` are left to the parser.
fn out_of_range(value: &str, (field, low, high): (&str, u32, u32)) -> Option<String> {
    for part in value.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        if let Some(step) = step.and_then(|s| s.parse::<u32>().ok()) {
            if step == 0 || step > high {
                return Some(format!(
                    "the step /{step} of the {field} field is out of range 1-{high}"
                ));
            }
        }
        for n in range.split('-').filter_map(|t| t.parse::<u32>().ok()) {
            if n < low || n > high {
                return Some(format!("{field} {n} is out of range {low}-{high}"));
            }
        }
    }
    None
}

/// Parse a standard 5-field cron expression (UTC; names like `MON`, `JAN` and `@daily`
/// allowed; no seconds or years). Errors, in plain words with an example of a valid one:
/// `schedule "0 99 * * *": hour 99 is out of range 0-23; use 5 fields, ...`.
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let expr = expr.trim();
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if !expr.starts_with('@') && fields.len() != 5 {
        return Err(format!(
            "schedule \"{expr}\" has {} field{}; {CRON_EXAMPLE}",
            fields.len(),
            if fields.len() == 1 { "" } else { "s" }
        ));
    }
    if !expr.starts_with('@') {
        for (value, field) in fields.iter().zip(CRON_FIELDS) {
            if let Some(problem) = out_of_range(value, field) {
                return Err(format!("schedule \"{expr}\": {problem}; {CRON_EXAMPLE}"));
            }
        }
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|_| {
            // The parser's own text ("Component error: ...") means nothing to a user.
            let which = fields
                .iter()
                .zip(CRON_FIELDS)
                .find(|(value, _)| {
                    !value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || ",-/*?".contains(c))
                })
                .map(|(value, (field, _, _))| {
                    format!(" (the {field} field \"{value}\" cannot be read)")
                })
                .unwrap_or_default();
            format!("schedule \"{expr}\" is not a valid cron expression{which}; {CRON_EXAMPLE}")
        })
}

/// The first time a schedule is due after `after_ms` (epoch ms): `after_ms` plus the
/// interval, or the first cron time strictly after it. `None` when the schedule is invalid
/// or has no further time.
pub fn next_after(schedule: &Schedule, after_ms: i64) -> Option<i64> {
    match (schedule.every_minutes, &schedule.cron) {
        (Some(n), _) => Some(after_ms.saturating_add(i64::from(n) * 60_000)),
        (None, Some(expr)) => {
            let cron = parse_cron(expr).ok()?;
            let after = chrono::DateTime::from_timestamp_millis(after_ms)?;
            let next = cron.find_next_occurrence(&after, false).ok()?;
            Some(next.timestamp_millis())
        }
        (None, None) => None,
    }
}

/// Is a source with `schedule` due at `now_ms`? `last_start_ms`: start of its last run
/// (`None` if it never ran); `created_ms`: its creation time.
pub fn is_due(
    schedule: &Schedule,
    last_start_ms: Option<i64>,
    created_ms: i64,
    now_ms: i64,
) -> bool {
    let base = match (last_start_ms, &schedule.cron) {
        (Some(start), _) => start,
        // An interval schedule runs at once when it never ran.
        (None, None) => return schedule.every_minutes.is_some(),
        (None, Some(_)) => created_ms,
    };
    next_after(schedule, base).is_some_and(|at| at <= now_ms)
}

/// When the schedule next starts data source `source`, epoch ms: `None` when it has no
/// schedule or is paused. A time already past means the scheduler starts it at its next
/// tick (an interval schedule that never ran is due at once).
pub fn next_run_at(flows: &Flows, source: &store::SourceRecord) -> Option<i64> {
    let options = crate::sources::SourceOptions::of(source);
    let schedule = options.schedule.filter(|_| !options.paused)?;
    match (last_run(flows, &source.name), &schedule.cron) {
        (Some(run), _) => next_after(&schedule, run.started_at),
        (None, None) => schedule.every_minutes.map(|_| source.created_at),
        (None, Some(_)) => next_after(&schedule, source.created_at),
    }
}

/// The latest run of data source `name`, if it ran (among the last 500 runs).
fn last_run(flows: &Flows, name: &str) -> Option<store::RunRecord> {
    let wanted = store::validate::name_key(name);
    flows
        .store
        .list_runs(500)
        .ok()?
        .into_iter()
        .find(|r| r.flow.as_deref().map(store::validate::name_key).as_ref() == Some(&wanted))
}

/// Start the sources that are due now; returns the run ids started. A due source that is
/// still running (in this or another process) is not started: a `skipped` run naming the
/// run in progress is recorded instead, and the next due time counts from it.
pub fn run_due(flows: &Flows, now_ms: i64) -> Vec<String> {
    let Ok(sources) = flows.store.list_sources() else {
        return Vec::new();
    };
    let mut started = Vec::new();
    for source in sources {
        let options = crate::sources::SourceOptions::of(&source);
        let Some(schedule) = options.schedule.filter(|_| !options.paused) else {
            continue;
        };
        let due = match last_run(flows, &source.name) {
            Some(run) => is_due(&schedule, Some(run.started_at), source.created_at, now_ms),
            None => is_due(&schedule, None, source.created_at, now_ms),
        };
        if !due {
            continue;
        }
        let running = flows
            .store
            .running_in(&crate::single::source_key(&source.id))
            .ok()
            .flatten();
        let result = match running {
            Some(run_id) => Err(run_id),
            None => match crate::sources::start_source(flows, &source, store::Trigger::Schedule) {
                Ok(id) => Ok(id),
                Err(e) => match e.running_run() {
                    Some(run_id) => Err(run_id.to_string()),
                    None => {
                        tracing::warn!(source = %source.name, error = %e, "scheduled run could not start");
                        continue;
                    }
                },
            },
        };
        match result {
            Ok(id) => {
                tracing::info!(source = %source.name, run = %id, "scheduled run started");
                started.push(id);
            }
            Err(running) => record_skipped(flows, &source, &running, now_ms),
        }
    }
    started
}

/// Record that a scheduled start of `source`, due at `now_ms`, was skipped because run
/// `running` was going.
fn record_skipped(flows: &Flows, source: &store::SourceRecord, running: &str, now_ms: i64) {
    let options = crate::sources::SourceOptions::of(source);
    let run = store::NewRun {
        credential: source.credential.clone().unwrap_or_default(),
        destination: options.sink,
        mode: options.mode,
        streams: source.streams.clone(),
        flow: Some(source.name.clone()),
        trigger: store::Trigger::Schedule,
    };
    let reason = format!(
        "scheduled start skipped: data source \"{}\" was still running (run {running})",
        source.name
    );
    match flows.store.record_skipped_run(&run, &reason, now_ms) {
        Ok(id) => {
            tracing::info!(source = %source.name, run = %id, running = %running, "scheduled start skipped: still running")
        }
        Err(e) => {
            tracing::warn!(source = %source.name, error = %e, "cannot record a skipped scheduled start")
        }
    }
}

/// Check schedules every [`TICK`] until the task is aborted.
pub fn spawn(flows: Flows) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        loop {
            tick.tick().await;
            run_due(&flows, chrono::Utc::now().timestamp_millis());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-01-01T00:00:00Z (a Monday), epoch ms.
    const JAN_1: i64 = 1_704_067_200_000;
    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;

    #[test]
    fn cron_errors_name_the_field_and_range_in_plain_words() {
        let e = parse_cron("0 99 * * *").unwrap_err();
        assert!(
            e.starts_with("schedule \"0 99 * * *\": hour 99 is out of range 0-23; use 5 fields"),
            "{e}"
        );
        let e = parse_cron("61 * * * *").unwrap_err();
        assert!(e.contains("minute 61 is out of range 0-59"), "{e}");
        let e = parse_cron("0 0 0 * *").unwrap_err();
        assert!(e.contains("day-of-month 0 is out of range 1-31"), "{e}");
        let e = parse_cron("0 0 * 1-13 *").unwrap_err();
        assert!(e.contains("month 13 is out of range 1-12"), "{e}");
        let e = parse_cron("0 0 * *").unwrap_err();
        assert!(e.contains("has 4 fields"), "{e}");
        let e = parse_cron("0 0 * * FOO").unwrap_err();
        assert!(!e.contains("Component"), "no library text: {e}");
        assert!(e.contains("is not a valid cron expression"), "{e}");
        assert!(parse_cron("*/15 9-17 * * MON-FRI").is_ok());
    }

    #[test]
    fn cron_next_time_is_utc_and_strictly_after() {
        let daily = Schedule::cron("0 2 * * *");
        assert_eq!(next_after(&daily, JAN_1), Some(JAN_1 + 2 * HOUR));
        assert_eq!(
            next_after(&daily, JAN_1 + 2 * HOUR),
            Some(JAN_1 + 26 * HOUR),
            "a run that started at the cron time is not due again at once"
        );
        let weekdays = Schedule::cron("30 9 * * SAT");
        // 2024-01-06 is the first Saturday.
        assert_eq!(
            next_after(&weekdays, JAN_1),
            Some(JAN_1 + 5 * 24 * HOUR + 9 * HOUR + 30 * MIN)
        );
    }

    #[test]
    fn cron_due_counts_from_creation_then_from_the_last_start() {
        let hourly = Schedule::cron("0 * * * *");
        let created = JAN_1 + 10 * MIN;
        assert!(!is_due(&hourly, None, created, JAN_1 + 59 * MIN));
        assert!(is_due(&hourly, None, created, JAN_1 + HOUR));
        let started = JAN_1 + HOUR + 5_000;
        assert!(!is_due(
            &hourly,
            Some(started),
            created,
            JAN_1 + 2 * HOUR - 1
        ));
        assert!(is_due(&hourly, Some(started), created, JAN_1 + 2 * HOUR));
    }

    #[test]
    fn interval_due_as_before() {
        let every = Schedule::every(30);
        assert!(is_due(&every, None, JAN_1, JAN_1), "never ran: due at once");
        assert!(!is_due(&every, Some(JAN_1), JAN_1, JAN_1 + 29 * MIN));
        assert!(is_due(&every, Some(JAN_1), JAN_1, JAN_1 + 30 * MIN));
    }

    #[test]
    fn bad_cron_expressions_are_explained() {
        for bad in [
            "",
            "* * * *",
            "0 0 * * * *",
            "61 * * * *",
            "0 25 * * *",
            "every day",
        ] {
            let err = parse_cron(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert!(err.contains("0 2 * * *"), "{bad:?}: {err}");
        }
        assert!(parse_cron("*/15 9-17 * JAN-MAR MON-FRI").is_ok());
        assert!(parse_cron("@daily").is_ok());
    }
}
