//! Run pages: the history and one run with live progress (records per stream, requests, rate
//! budget used, 429s, retries), its outcome, the fix for an error, and its log (live while
//! it runs).

use super::{filters, render, with_redirect};
use crate::api::runs::{filtered_views, view, RunView, RunsQuery};
use crate::problem::ApiError;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use flows::push_job::PushRunSummary;
use sync_core::StreamSummary;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/runs", get(list))
        .route("/runs/{id}", get(show))
        .route("/ui/runs/{id}/figures", get(figures))
        .route("/ui/runs/{id}/log", get(log))
        .route("/ui/runs/{id}/log/download", get(log_download))
        .route("/ui/runs/{id}/cancel", post(cancel))
}

/// One row of a runs table.
pub(crate) struct RunRow {
    pub id: String,
    /// `sync`, `push` or `dry_run`.
    pub kind: String,
    /// `Sync`, `Push` or `Dry run`.
    pub kind_label: &'static str,
    /// `manual` or `schedule`.
    pub trigger: String,
    /// `Manual` or `Scheduled`.
    pub trigger_label: &'static str,
    /// The data source of a sync ("–" for pushes).
    pub source: String,
    /// Where records went: a push's saved destination (or `drift:<object>`), a sync's sink.
    pub destination: String,
    pub status: String,
    /// The status for people ("Succeeded", "Dry run: rows would be rejected", ...).
    pub status_label: String,
    pub started: super::Time,
    pub duration: String,
    pub written: String,
    pub written_n: u64,
}

/// The type of a run for people.
pub(crate) fn kind_label(kind: &str) -> &'static str {
    match kind {
        "push" => "Push",
        "dry_run" => "Dry run",
        _ => "Sync",
    }
}

/// What started a run, for people: `Scheduled` or `Manual`.
pub(crate) fn trigger_label(trigger: &str) -> &'static str {
    match trigger {
        "schedule" => "Scheduled",
        _ => "Manual",
    }
}

/// A status for people; a dry run's outcome says what a real run would do.
pub(crate) fn status_label(status: &str, kind: &str) -> String {
    let dry = kind == "dry_run";
    match status {
        "succeeded" if dry => "Dry run: every row would be sent".into(),
        "succeeded_with_rejections" if dry => "Dry run: some rows would be rejected".into(),
        "succeeded" => "Succeeded".into(),
        "succeeded_with_rejections" => "Succeeded with rejected records".into(),
        "running" => "Running".into(),
        "failed" => "Failed".into(),
        "rate_limited" => "Rate limited".into(),
        "cancelled" => "Cancelled".into(),
        "interrupted" => "Interrupted".into(),
        "skipped" => "Skipped (already running)".into(),
        other => other.replace('_', " "),
    }
}

fn streams_of(run: &RunView) -> Vec<StreamSummary> {
    match &run.live {
        Some(live) => live.streams.clone(),
        None => serde_json::from_value(run.summary["streams"].clone()).unwrap_or_default(),
    }
}

impl RunRow {
    pub(crate) fn new(run: RunView) -> Self {
        let is_push = run.run_type != "sync";
        let written: u64 = if is_push {
            PushRunSummary::from_run(&run.summary).written()
        } else {
            streams_of(&run).iter().map(|s| s.records_written).sum()
        };
        let (source, destination) = if is_push {
            let to = match &run.flow {
                Some(saved) => format!("{saved} ({})", run.destination),
                None => run.destination.clone(),
            };
            ("–".to_string(), to)
        } else {
            (
                run.flow
                    .clone()
                    .unwrap_or_else(|| "– (driftbridge sync)".into()),
                run.destination.clone(),
            )
        };
        RunRow {
            duration: match run.finished_at {
                Some(end) => format!("{:.1} s", (end - run.started_at) as f64 / 1000.0),
                None => "running".into(),
            },
            started: super::Time::at(run.started_at),
            kind_label: kind_label(&run.run_type),
            status_label: status_label(&run.status, &run.run_type),
            trigger_label: trigger_label(&run.trigger),
            trigger: run.trigger,
            kind: run.run_type,
            source,
            destination,
            status: run.status,
            id: run.id,
            written: if run.mode == "push-dry-run" {
                "– (dry run)".into()
            } else {
                written.to_string()
            },
            written_n: written,
        }
    }
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    nav: &'static str,
    runs: Vec<RunRow>,
    q: RunsQuery,
    /// Names of the data sources and saved destinations (the filter pickers).
    sources: Vec<String>,
    destinations: Vec<String>,
}

impl RunsPage {
    fn picked(value: &Option<String>, option: &str) -> bool {
        value.as_deref() == Some(option)
    }
}

/// The run statuses the filter offers.
const STATUSES: [&str; 8] = [
    "running",
    "succeeded",
    "succeeded_with_rejections",
    "failed",
    "rate_limited",
    "cancelled",
    "interrupted",
    "skipped",
];

async fn list(
    State(state): State<AppState>,
    Query(q): Query<RunsQuery>,
) -> Result<Response, ApiError> {
    q.check()?;
    let runs = filtered_views(&state, &q, 100)?;
    Ok(render(&RunsPage {
        nav: "runs",
        runs: runs.into_iter().map(RunRow::new).collect(),
        sources: state
            .store
            .list_sources()?
            .into_iter()
            .map(|s| s.name)
            .collect(),
        destinations: crate::api::saved_destinations::list_views(&state)?
            .into_iter()
            .map(|d| d.name)
            .collect(),
        q,
    }))
}

/// A bar chart (server-rendered SVG, no script) of the records written by each run in
/// `rows` (newest first, as tables list them), oldest on the left; failed runs in red.
pub(crate) fn records_chart(rows: &[RunRow]) -> String {
    const W: usize = 640;
    const H: usize = 160;
    const PAD: usize = 24;
    let runs: Vec<&RunRow> = rows.iter().filter(|r| r.kind == "sync").rev().collect();
    if runs.is_empty() {
        return "<p id=\"records-chart-empty\">No runs yet: the chart shows the records each run wrote.</p>".into();
    }
    let max = runs.iter().map(|r| r.written_n).max().unwrap_or(0).max(1);
    let slot = (W - 2 * PAD) / runs.len().max(1);
    let bar = slot.saturating_sub(4).clamp(2, 40);
    let mut svg = format!(
        "<figure class=\"chart\"><svg id=\"records-chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"records-chart-title\" preserveAspectRatio=\"xMinYMin meet\">\
<title id=\"records-chart-title\">Records written per run, oldest to newest; the tallest bar is {max} records</title>\
<line x1=\"{PAD}\" y1=\"{base}\" x2=\"{right}\" y2=\"{base}\" class=\"axis\"/>\
<text x=\"{PAD}\" y=\"12\" class=\"label\">{max}</text><text x=\"{PAD}\" y=\"{label}\" class=\"label\">0</text>",
        base = H - PAD,
        right = W - PAD,
        label = H - 8,
    );
    for (i, r) in runs.iter().enumerate() {
        let height = (r.written_n as f64 / max as f64 * (H - 2 * PAD) as f64).round() as usize;
        let height = height.max(1);
        let x = PAD + i * slot + (slot - bar) / 2;
        let y = H - PAD - height;
        let class = if r.status == "failed" || r.status == "rate_limited" {
            "bar bar-failed"
        } else {
            "bar"
        };
        svg.push_str(&format!(
            "<a href=\"/runs/{id}\"><rect x=\"{x}\" y=\"{y}\" width=\"{bar}\" height=\"{height}\" class=\"{class}\"><title>{text}: {n} records, {status}</title></rect></a>",
            id = r.id,
            text = r.started.text,
            n = r.written_n,
            status = r.status_label,
        ));
    }
    svg.push_str("</svg><figcaption>Records written per run (oldest left; red: failed). Each bar links to its run.</figcaption></figure>");
    svg
}

struct StreamRow {
    name: String,
    read: u64,
    written: u64,
    deleted: u64,
    rejected: u64,
    expected: String,
    requests: u64,
    rate_limited: u64,
    retries: u64,
    state: String,
}

/// What the figures section shows.
struct Figures {
    id: String,
    running: bool,
    status: String,
    status_label: String,
    kind_label: &'static str,
    /// `manual` or `schedule`, and for people `Manual` or `Scheduled`.
    trigger: String,
    trigger_label: &'static str,
    /// A push or dry run: no stream table (its counts are in `totals`).
    is_push: bool,
    /// Some stream knows how many records to expect (else the column is left out).
    show_expected: bool,
    /// Requests not tied to one stream.
    other: RequestRow,
    /// Requests of the whole run (= the streams + `other`).
    totals_row: RequestRow,
    flow: String,
    credential: String,
    mode: String,
    destination: String,
    streams: Vec<StreamRow>,
    /// Records quarantined or rejected in the whole run.
    rejected: u64,
    totals: String,
    error: String,
    fix: String,
    /// Download link of a push run's results file ("" for syncs).
    results: String,
}

fn state_name(s: &StreamSummary) -> String {
    let name = serde_json::to_value(s.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    match &s.reason {
        Some(r) => format!("{name}: {r}"),
        None => name,
    }
}

/// The fix a user should make for a run error (by its kind, sync-core's taxonomy).
fn fix_for(run: &RunView) -> String {
    let kind = run.summary["error"]["kind"].as_str().unwrap_or_default();
    match kind {
        "unauthorized" => format!("Drift rejected the key of credential \"{}\": use the Rotate key button on its tile (Authenticate screen), then run again.", run.credential),
        "forbidden" => "The token lacks a scope for a stream: rotate the key to a token with the scopes named above, or remove the stream.".into(),
        "rate_limited" => "Drift kept answering 429: lower the credential's rate budget or run later.".into(),
        "destination" => "The sink could not be written: check its path or connection and free space, then run again.".into(),
        "" if run.error.is_none() => String::new(),
        _ => "Run again: the next run resumes from the last checkpoint.".into(),
    }
}

/// Requests, 429s and retries of a run: the sum of the streams' figures plus the requests
/// not tied to one stream (token checks, lookups shared by streams), so rows add up to the
/// total the credential's client counted.
struct RequestRow {
    requests: u64,
    rate_limited: u64,
    retries: u64,
}

/// How fast the run used its rate budget, honestly worded: within the first minute the
/// budget allows a burst, so a per-minute average would read "686 of 600"; the page says
/// how many requests in how many seconds instead.
fn budget_use(requests: u64, elapsed_ms: u64, limit: u32) -> String {
    let seconds = elapsed_ms as f64 / 1000.0;
    if elapsed_ms < 60_000 {
        format!(
            "{requests} {} in the first {seconds:.0} s (budget {limit} per minute, with a burst allowed at the start)",
            plural(requests, "request", "requests")
        )
    } else {
        let rate = requests as f64 / (seconds / 60.0);
        format!("averaging {rate:.0} requests per minute over {seconds:.0} s (budget {limit} per minute)")
    }
}

fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

impl Figures {
    fn new(run: &RunView) -> Self {
        let is_push = run.run_type != "sync";
        let summaries = if is_push { Vec::new() } else { streams_of(run) };
        let streams: Vec<StreamRow> = summaries
            .iter()
            .map(|s| StreamRow {
                name: s.stream.clone(),
                read: s.records_read,
                written: s.records_written,
                deleted: s.records_deleted,
                rejected: s.records_rejected,
                expected: s
                    .expected
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "–".into()),
                requests: s.requests.requests,
                rate_limited: s.requests.rate_limited,
                retries: s.requests.retries,
                state: state_name(s),
            })
            .collect();
        let total = |k: &str| -> u64 {
            match &run.live {
                Some(l) => match k {
                    "requests" => l.totals.requests,
                    "rate_limited" => l.totals.rate_limited,
                    _ => l.totals.retries,
                },
                None => run.summary["totals"][k].as_u64().unwrap_or(0),
            }
        };
        let sum = |f: fn(&StreamRow) -> u64| streams.iter().map(f).sum::<u64>();
        let totals_row = RequestRow {
            requests: total("requests").max(sum(|s| s.requests)),
            rate_limited: total("rate_limited").max(sum(|s| s.rate_limited)),
            retries: total("retries").max(sum(|s| s.retries)),
        };
        let other = RequestRow {
            requests: totals_row.requests - sum(|s| s.requests),
            rate_limited: totals_row.rate_limited - sum(|s| s.rate_limited),
            retries: totals_row.retries - sum(|s| s.retries),
        };
        let totals = match &run.live {
            None if is_push => PushRunSummary::from_run(&run.summary).line(),
            Some(l) => format!(
                "{} · {} rate limited (429) · {} {}",
                budget_use(l.totals.requests, l.elapsed_ms, l.rate_limit_per_min),
                l.totals.rate_limited,
                l.totals.retries,
                plural(l.totals.retries, "retry", "retries"),
            ),
            None => {
                let t = &run.summary["totals"];
                let n = |k: &str| t[k].as_u64().unwrap_or(0);
                let waits = n("waits");
                let waited = if waits == 0 {
                    "no request waited for the rate budget".to_string()
                } else {
                    format!(
                        "requests waited for the rate budget {waits} {}",
                        plural(waits, "time", "times")
                    )
                };
                format!(
                    "{} {} · {} rate limited (429) · {} {} · {waited} · took {:.1} s",
                    n("requests"),
                    plural(n("requests"), "request", "requests"),
                    n("rate_limited"),
                    n("retries"),
                    plural(n("retries"), "retry", "retries"),
                    run.summary["duration_ms"].as_u64().unwrap_or(0) as f64 / 1000.0
                )
            }
        };
        Figures {
            id: run.id.clone(),
            running: run.status == "running",
            status: run.status.clone(),
            status_label: status_label(&run.status, &run.run_type),
            kind_label: kind_label(&run.run_type),
            trigger: run.trigger.clone(),
            trigger_label: trigger_label(&run.trigger),
            is_push,
            flow: run.flow.clone().unwrap_or_else(|| "–".into()),
            credential: run.credential.clone(),
            mode: run.mode.clone(),
            destination: run.destination.clone(),
            rejected: if is_push {
                0
            } else {
                streams.iter().map(|s| s.rejected).sum()
            },
            show_expected: summaries.iter().any(|s| s.expected.is_some()),
            streams,
            other,
            totals_row,
            totals,
            error: run.error.clone().unwrap_or_default(),
            fix: fix_for(run),
            results: if is_push && !run.status.eq("running") {
                format!("/ui/destinations/results/{}", run.id)
            } else {
                String::new()
            },
        }
    }
}

/// Most log lines the run page shows (the latest; the API and the CLI give them all).
const LOG_LINES_SHOWN: usize = 500;

/// One line of the log panel.
struct LogRow {
    time: super::Time,
    level: String,
    /// `info`, `warn` or `error` (the CSS class).
    level_class: String,
    message: String,
    /// `key=value …`.
    fields: String,
}

/// The log panel's filters (query of `/ui/runs/{id}/log` and of the download).
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub(crate) struct LogFilter {
    /// `error`, `warn` or `info` (that level and the ones above it); empty: all.
    #[serde(default)]
    level: String,
    /// Only lines of this stream (their `stream` field); empty: all.
    #[serde(default)]
    stream: String,
    /// Only lines whose message or fields contain this text (case-insensitive).
    #[serde(default)]
    q: String,
}

impl LogFilter {
    fn rank(level: &str) -> u8 {
        match level.to_ascii_lowercase().as_str() {
            "error" => 3,
            "warn" => 2,
            _ => 1,
        }
    }

    fn keeps(&self, line: &flows::logs::LogLine) -> bool {
        let level_ok = self.level.is_empty() || Self::rank(&line.level) >= Self::rank(&self.level);
        let stream_ok = self.stream.is_empty()
            || line.fields.get("stream").and_then(|v| v.as_str()) == Some(self.stream.as_str());
        let q = self.q.trim().to_lowercase();
        let text_ok = q.is_empty() || line.text().to_lowercase().contains(&q);
        level_ok && stream_ok && text_ok
    }

    fn is_set(&self) -> bool {
        !(self.level.is_empty() && self.stream.is_empty() && self.q.trim().is_empty())
    }

    /// The filter as a query string (for the polling URL and the download link).
    fn query(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("level", &self.level)
            .append_pair("stream", &self.stream)
            .append_pair("q", &self.q)
            .finish()
    }
}

/// What the log panel shows: the run's log, live while it runs.
struct LogPanel {
    id: String,
    running: bool,
    lines: Vec<LogRow>,
    /// Older lines left out.
    skipped: usize,
    /// Lines in the whole log (before filtering).
    total: usize,
    filter: LogFilter,
    /// The streams named in the log (the stream picker).
    streams: Vec<String>,
}

impl LogPanel {
    fn new(state: &AppState, run: &RunView, filter: LogFilter) -> Result<Self, ApiError> {
        let page = crate::api::runs::log_page(state, &run.id, 0)?;
        let total = page.lines.len();
        let mut streams: Vec<String> = page
            .lines
            .iter()
            .filter_map(|l| l.fields.get("stream").and_then(|v| v.as_str()))
            .map(str::to_string)
            .collect();
        streams.sort();
        streams.dedup();
        let kept: Vec<_> = page.lines.into_iter().filter(|l| filter.keeps(l)).collect();
        let skipped = kept.len().saturating_sub(LOG_LINES_SHOWN);
        let lines = kept
            .into_iter()
            .skip(skipped)
            .map(|l| LogRow {
                fields: l
                    .fields
                    .iter()
                    .filter(|(_, v)| v.as_str() != Some(""))
                    .map(|(k, v)| match v.as_str() {
                        Some(s) => format!("{k}={s}"),
                        None => format!("{k}={v}"),
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                level_class: l.level.to_ascii_lowercase(),
                time: chrono::DateTime::parse_from_rfc3339(&l.time)
                    .map(|t| super::Time::at(t.timestamp_millis()))
                    .unwrap_or(super::Time {
                        iso: String::new(),
                        text: l.time.clone(),
                    }),
                level: l.level,
                message: l.message,
            })
            .collect();
        Ok(LogPanel {
            id: run.id.clone(),
            running: page.status == "running",
            lines,
            skipped,
            total,
            filter,
            streams,
        })
    }

    fn level_is(&self, level: &str) -> bool {
        self.filter.level == level
    }
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    nav: &'static str,
    id: String,
    f: Figures,
    log: LogPanel,
}

#[derive(Template)]
#[template(path = "run_log.html")]
struct LogFragment {
    log: LogPanel,
}

#[derive(Template)]
#[template(path = "run_figures.html")]
struct FiguresFragment {
    f: Figures,
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let run = view(&state, &id)?;
    Ok(render(&RunPage {
        nav: "runs",
        id: run.id.clone(),
        f: Figures::new(&run),
        log: LogPanel::new(&state, &run, LogFilter::default())?,
    }))
}

/// The log panel alone (polled while the run runs; the filter form asks for it too).
async fn log(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(filter): Query<LogFilter>,
) -> Result<Response, ApiError> {
    let run = view(&state, &id)?;
    Ok(render(&LogFragment {
        log: LogPanel::new(&state, &run, filter)?,
    }))
}

/// The log as a text file (`<run id>.log`, one line per event, filtered as the panel is).
async fn log_download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(filter): Query<LogFilter>,
) -> Result<Response, ApiError> {
    use axum::response::IntoResponse;
    let page = crate::api::runs::log_page(&state, &id, 0)?;
    let mut text = String::new();
    for line in page.lines.iter().filter(|l| filter.keeps(l)) {
        text.push_str(&line.text());
        text.push('\n');
    }
    let disposition = format!("attachment; filename=\"{}.log\"", page.run_id);
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        text,
    )
        .into_response())
}

async fn figures(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let run = view(&state, &id)?;
    Ok(render(&FiguresFragment {
        f: Figures::new(&run),
    }))
}

async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if let Some(live) = state.flows.runner.live(&id) {
        live.cancel();
    }
    Ok(with_redirect(&format!("/runs/{id}")))
}
