//! Progress of a sync on stderr, for `sync`, `sources run` and `demo`.
//!
//! - On a terminal: one line per stream (a bar with `read/total`, percent and ETA when the
//!   total is known, else a spinner with the count), each with its elapsed time, under a
//!   line with the run's elapsed time and requests. Lines printed meanwhile (Ctrl-C) go
//!   above the bars, and the bars are cleared at the end, so nothing stale stays behind.
//! - Not on a terminal (CI logs, a pipe): no bars; a line when each stream ends and a
//!   one-line heartbeat every [`HEARTBEAT`] (`[1m20s] conversations 1200/5000, users
//!   done · 340 requests`), so a long run shows signs of life before its summary.
//! - `-q` or `--json`: nothing.

use crate::common::Ctx;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use sync_core::{ProgressEvent, ProgressFn, StreamState, StreamSummary};

/// How often the heartbeat line is printed when stderr is not a terminal.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// `1 request`, `2 requests`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `4.2 s`, `1 min 20 s`, `2 h 5 min`.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..=59 => format!("{:.1} s", d.as_secs_f64()),
        60..=3599 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
    }
}

/// What the progress display knows of each stream, in the order they first reported.
#[derive(Default)]
struct Figures {
    order: Vec<String>,
    streams: HashMap<String, StreamSummary>,
}

impl Figures {
    fn requests(&self) -> u64 {
        self.streams.values().map(|s| s.requests.requests).sum()
    }
}

/// The heartbeat line: elapsed, each stream's figure, requests.
fn heartbeat_line(figures: &Figures, elapsed: Duration) -> String {
    let streams: Vec<String> = figures
        .order
        .iter()
        .filter_map(|name| figures.streams.get(name))
        .map(|s| match s.state {
            StreamState::Pending => format!("{} waiting", s.stream),
            StreamState::Running => match s.expected {
                Some(total) => format!(
                    "{} {}/{}",
                    s.stream,
                    s.records_read,
                    total.max(s.records_read)
                ),
                None => format!("{} {} read", s.stream, s.records_read),
            },
            StreamState::Succeeded => format!("{} done", s.stream),
            _ => format!("{} stopped", s.stream),
        })
        .collect();
    format!(
        "[{}] {} · {}",
        duration(elapsed),
        if streams.is_empty() {
            "starting".to_string()
        } else {
            streams.join(", ")
        },
        count(figures.requests(), "request", "requests")
    )
}

/// The line for a stream that ended (not on a terminal).
fn ended_line(s: &StreamSummary) -> String {
    let state = match s.state {
        StreamState::Succeeded => "done".to_string(),
        StreamState::Unavailable => "unavailable".to_string(),
        StreamState::Cancelled => "cancelled".to_string(),
        _ => "failed".to_string(),
    };
    format!(
        "{} {state}: {} read, {} written in {}",
        s.stream,
        s.records_read,
        s.records_written,
        duration(Duration::from_millis(s.duration_ms))
    )
}

/// The progress display of one run (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct Progress {
    multi: MultiProgress,
    bars: Arc<Mutex<HashMap<String, ProgressBar>>>,
    top: ProgressBar,
    figures: Arc<Mutex<Figures>>,
    started: Instant,
    /// Bars drawn (stderr is a terminal, not quiet).
    tty: bool,
    /// Lines printed (stderr is not a terminal, not quiet).
    lines: bool,
    heartbeat: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Progress {
    /// The display for `ctx`, drawing on stderr; `rate_per_min` is the run's budget.
    pub fn new(ctx: &Ctx, rate_per_min: u32) -> Progress {
        let quiet = ctx.quiet || ctx.json;
        let tty = !quiet && std::io::stderr().is_terminal();
        Progress::with(quiet, tty, rate_per_min)
    }

    fn with(quiet: bool, tty: bool, rate_per_min: u32) -> Progress {
        let target = if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let top = multi.add(ProgressBar::no_length());
        top.set_style(
            ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        top.set_message(format!(
            "starting · rate budget {rate_per_min} requests/minute"
        ));
        let progress = Progress {
            multi,
            bars: Arc::new(Mutex::new(HashMap::new())),
            top,
            figures: Arc::new(Mutex::new(Figures::default())),
            started: Instant::now(),
            tty,
            lines: !quiet && !tty,
            heartbeat: Arc::new(Mutex::new(None)),
        };
        if progress.lines {
            let beat = progress.clone();
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval(HEARTBEAT);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let line = {
                        let figures = beat.figures.lock().unwrap_or_else(|e| e.into_inner());
                        heartbeat_line(&figures, beat.started.elapsed())
                    };
                    eprintln!("{line}");
                }
            });
            *progress.heartbeat.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        }
        progress
    }

    /// Print `line` on stderr above the bars (none stays half-drawn), unless quiet.
    pub fn println(&self, line: &str) {
        if self.tty {
            self.multi.suspend(|| eprintln!("{line}"));
        } else if self.lines {
            eprintln!("{line}");
        }
    }

    /// The callback the run reports to.
    pub fn callback(&self) -> ProgressFn {
        let me = self.clone();
        Arc::new(move |event: &ProgressEvent| me.update(&event.summary))
    }

    fn update(&self, s: &StreamSummary) {
        let ended = !matches!(s.state, StreamState::Pending | StreamState::Running);
        let (first_end, requests) = {
            let mut figures = self.figures.lock().unwrap_or_else(|e| e.into_inner());
            if !figures.streams.contains_key(&s.stream) {
                figures.order.push(s.stream.clone());
            }
            let was_ended = figures.streams.get(&s.stream).is_some_and(|old| {
                !matches!(old.state, StreamState::Pending | StreamState::Running)
            });
            figures.streams.insert(s.stream.clone(), s.clone());
            (ended && !was_ended, figures.requests())
        };
        if self.lines && first_end {
            eprintln!("{}", ended_line(s));
        }
        if !self.tty {
            return;
        }
        self.top.set_message(format!(
            "elapsed {} · {} so far",
            duration(self.started.elapsed()),
            count(requests, "request", "requests")
        ));
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        let bar = bars
            .entry(s.stream.clone())
            .or_insert_with(|| new_bar(&self.multi, &s.stream));
        if let Some(total) = s.expected {
            // An estimate can be passed (records read again, new ones meanwhile): the bar
            // grows with the count instead of overshooting.
            let len = total.max(s.records_read);
            if bar.length() != Some(len) {
                if bar.length().is_none() {
                    bar.set_style(counted_style());
                }
                bar.set_length(len);
            }
        }
        bar.set_position(s.records_read);
        let state = match s.state {
            StreamState::Pending => "waiting".to_string(),
            StreamState::Running => "running".to_string(),
            StreamState::Succeeded => "done".to_string(),
            StreamState::Unavailable => "unavailable".to_string(),
            StreamState::Failed => "failed".to_string(),
            StreamState::Cancelled => "cancelled".to_string(),
        };
        bar.set_message(format!(
            "{} written · {} · {state}",
            s.records_written,
            count(s.requests.requests, "request", "requests")
        ));
        if ended {
            bar.finish();
        }
    }

    /// Stop the heartbeat and remove the bars (the summary follows).
    pub fn clear(&self) {
        if let Some(task) = self
            .heartbeat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
        self.top.finish_and_clear();
        if let Ok(bars) = self.bars.lock() {
            for bar in bars.values() {
                bar.finish_and_clear();
            }
        }
        let _ = self.multi.clear();
    }
}

fn new_bar(multi: &MultiProgress, stream: &str) -> ProgressBar {
    let bar = multi.add(ProgressBar::no_length());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>20.cyan} {spinner} {pos} read · {elapsed} · {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(stream.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn counted_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix:>20.cyan} [{bar:25}] {pos}/{len} {percent:>3}% · {elapsed} · eta {eta} · {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(name: &str, state: StreamState, read: u64, expected: Option<u64>) -> StreamSummary {
        let mut s = StreamSummary::new(name);
        s.state = state;
        s.records_read = read;
        s.records_written = read;
        s.expected = expected;
        s.requests.requests = 1;
        s
    }

    #[test]
    fn the_heartbeat_names_each_stream_with_totals_where_known() {
        let mut f = Figures::default();
        for s in [
            stream("conversations", StreamState::Running, 1200, Some(5000)),
            stream("users", StreamState::Succeeded, 12, None),
            stream("contacts", StreamState::Running, 7, None),
            stream("teams", StreamState::Running, 111, Some(108)),
        ] {
            f.order.push(s.stream.clone());
            f.streams.insert(s.stream.clone(), s);
        }
        assert_eq!(
            heartbeat_line(&f, Duration::from_secs(80)),
            "[1 min 20 s] conversations 1200/5000, users done, contacts 7 read, teams 111/111 · 4 requests"
        );
        assert_eq!(
            heartbeat_line(&Figures::default(), Duration::from_millis(500)),
            "[0.5 s] starting · 0 requests"
        );
    }

    #[test]
    fn plain_words() {
        assert_eq!(count(1, "request", "requests"), "1 request");
        assert_eq!(count(0, "request", "requests"), "0 requests");
        assert_eq!(duration(Duration::from_secs(7300)), "2 h 1 min");
        assert_eq!(
            ended_line(&stream("users", StreamState::Succeeded, 12, None)),
            "users done: 12 read, 12 written in 0.0 s"
        );
    }
}
