//! The run engine: source task -> bounded channel -> batches -> sink commits.

use crate::cancel::Cancel;
use crate::error::{ErrorKind, RunError};
use crate::message::{Emitter, Message, StreamStatus};
use crate::model::{ConfiguredStream, Record, WriteMode};
use crate::progress::{
    ProgressEvent, ProgressFn, RunReport, RunStatus, StreamState, StreamSummary,
};
use crate::sink::{Batch, Quarantined, Sink};
use crate::source::{ReadRequest, Source};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How many quarantined records a [`RunReport`] lists at most (the sink keeps all).
pub const MAX_REPORTED_QUARANTINE: usize = 1000;

/// Records per commit when neither the run nor the sink asks for another size.
pub const DEFAULT_BATCH_SIZE: usize = 500;

/// Tuning of a run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Run id written on every row.
    pub run_id: String,
    /// State scope in the sink (which source instance, e.g. `drift:<credential>`).
    pub scope: String,
    /// Commit when this many upsert records are pending; `None` (the default): the
    /// sink's [`Sink::batch_size`], else [`DEFAULT_BATCH_SIZE`].
    pub batch_size: Option<usize>,
    /// Capacity of the source -> engine channel, in messages (default 1024).
    pub channel_capacity: usize,
    /// Commit pending checkpoints at least this often (default 500 ms).
    pub flush_interval: Duration,
}

impl RunOptions {
    /// Defaults for a run id and state scope.
    pub fn new(run_id: impl Into<String>, scope: impl Into<String>) -> Self {
        Self {
            run_id: run_id.into(),
            scope: scope.into(),
            batch_size: None,
            channel_capacity: 1024,
            flush_interval: Duration::from_millis(500),
        }
    }
}

/// Run `streams` of `source` into `sink`.
///
/// Prepares the sink, loads the state for `options.scope`, spawns the source on its own
/// task and commits what it sends: upsert records in batches with the checkpoints received so
/// far, replace streams in one commit when they succeed. On `cancel` it commits what it has
/// received (records with the state covering them) and stops the source. Never panics; every
/// failure is in the report's `error` (a sink failure ends the run at once).
pub async fn run_sync(
    source: Arc<dyn Source>,
    sink: &mut dyn Sink,
    streams: Vec<ConfiguredStream>,
    options: RunOptions,
    cancel: Cancel,
    progress: Option<ProgressFn>,
) -> RunReport {
    let started = Instant::now();
    let mut engine = Engine::new(sink, &streams, options, progress);
    let outcome = engine.run(source, streams, cancel).await;
    let outcome = engine.finish_sink(outcome).await;
    engine.finish(outcome, started)
}

enum Outcome {
    Completed(Result<(), RunError>),
    Cancelled,
    Fatal(RunError),
}

struct Engine<'a> {
    dest: &'a mut dyn Sink,
    opts: RunOptions,
    /// Records per commit: the run's, else the sink's, else [`DEFAULT_BATCH_SIZE`].
    batch_size: usize,
    progress: Option<ProgressFn>,
    modes: HashMap<String, WriteMode>,
    /// Primary-key fields per stream.
    keys: HashMap<String, Vec<String>>,
    /// Hashes of the primary keys written in this run, per stream: a row is counted in
    /// `records_written` once, later copies in `records_reread`.
    written_keys: HashMap<String, HashSet<u64>>,
    /// Quarantined records not committed yet.
    pending_quarantine: Vec<Quarantined>,
    /// Quarantined records committed, for the report (at most [`MAX_REPORTED_QUARANTINE`]).
    reported_quarantine: Vec<Quarantined>,
    summaries: Vec<StreamSummary>,
    started: HashMap<String, Instant>,
    pending: Vec<Record>,
    pending_state: BTreeMap<String, Value>,
    replace_records: HashMap<String, Vec<Record>>,
    replace_state: HashMap<String, Vec<(String, Value)>>,
    committed_state: BTreeMap<String, Value>,
    last_flush: Instant,
}

impl<'a> Engine<'a> {
    fn new(
        dest: &'a mut dyn Sink,
        streams: &[ConfiguredStream],
        opts: RunOptions,
        progress: Option<ProgressFn>,
    ) -> Self {
        let batch_size = opts
            .batch_size
            .or_else(|| dest.batch_size())
            .unwrap_or(DEFAULT_BATCH_SIZE)
            .max(1);
        Self {
            dest,
            opts,
            batch_size,
            progress,
            modes: streams
                .iter()
                .map(|s| (s.stream.name.clone(), s.stream.write_mode))
                .collect(),
            keys: streams
                .iter()
                .map(|s| (s.stream.name.clone(), s.stream.primary_key.clone()))
                .collect(),
            written_keys: HashMap::new(),
            pending_quarantine: Vec::new(),
            reported_quarantine: Vec::new(),
            summaries: streams
                .iter()
                .map(|s| StreamSummary::new(&s.stream.name))
                .collect(),
            started: HashMap::new(),
            pending: Vec::new(),
            pending_state: BTreeMap::new(),
            replace_records: HashMap::new(),
            replace_state: HashMap::new(),
            committed_state: BTreeMap::new(),
            last_flush: Instant::now(),
        }
    }

    async fn run(
        &mut self,
        source: Arc<dyn Source>,
        streams: Vec<ConfiguredStream>,
        cancel: Cancel,
    ) -> Outcome {
        let defs: Vec<_> = streams.iter().map(|s| s.stream.clone()).collect();
        if let Err(e) = self.dest.check().await {
            return Outcome::Fatal(e);
        }
        if let Err(e) = self.dest.prepare(&defs).await {
            return Outcome::Fatal(e);
        }
        let state = match self.dest.load_state(&self.opts.scope).await {
            Ok(s) => s,
            Err(e) => return Outcome::Fatal(e),
        };
        self.committed_state = state.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let (tx, mut rx) = mpsc::channel(self.opts.channel_capacity.max(1));
        let request = ReadRequest {
            streams,
            state,
            cancel: cancel.clone(),
        };
        // The source's task stays in the run's span, so what it logs names the run.
        let mut task: JoinHandle<Result<(), RunError>> =
            tokio::spawn(tracing::Instrument::in_current_span(async move {
                source.read(request, Emitter::new(tx)).await
            }));
        let outcome = self.pump(&mut rx, &mut task, &cancel).await;
        if !task.is_finished() {
            task.abort();
        }
        outcome
    }

    async fn pump(
        &mut self,
        rx: &mut mpsc::Receiver<Message>,
        task: &mut JoinHandle<Result<(), RunError>>,
        cancel: &Cancel,
    ) -> Outcome {
        let mut tick = tokio::time::interval(self.opts.flush_interval);
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => {
                    return match self.flush().await {
                        Ok(()) => Outcome::Cancelled,
                        Err(e) => Outcome::Fatal(e),
                    };
                }
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    if let Err(e) = self.handle(msg).await {
                        return Outcome::Fatal(e);
                    }
                }
                joined = &mut *task => {
                    // The source ended: take what it queued before ending, then stop.
                    while let Ok(msg) = rx.try_recv() {
                        if let Err(e) = self.handle(msg).await {
                            return Outcome::Fatal(e);
                        }
                    }
                    return self.complete(join_result(joined)).await;
                }
                _ = tick.tick() => {
                    if self.last_flush.elapsed() >= self.opts.flush_interval {
                        if let Err(e) = self.flush().await {
                            return Outcome::Fatal(e);
                        }
                    }
                }
            }
        }
        let joined = task.await;
        self.complete(join_result(joined)).await
    }

    async fn complete(&mut self, result: Result<(), RunError>) -> Outcome {
        match self.flush().await {
            Ok(()) => Outcome::Completed(result),
            Err(e) => Outcome::Fatal(e),
        }
    }

    async fn handle(&mut self, msg: Message) -> Result<(), RunError> {
        match msg {
            Message::Record(record) => self.on_record(record).await?,
            Message::Quarantine(q) => {
                let stream = q.stream.clone();
                self.pending_quarantine.push(q);
                self.update(&stream, |s| s.records_read += 1);
                if self.pending.len() + self.pending_quarantine.len() >= self.batch_size {
                    self.flush().await?;
                }
            }
            Message::Checkpoint { key, stream, state } => {
                if self.modes.get(&stream) == Some(&WriteMode::Replace) {
                    self.replace_state
                        .entry(stream)
                        .or_default()
                        .push((key, state));
                } else {
                    self.pending_state.insert(key, state);
                }
            }
            Message::Status { stream, status } => self.on_status(&stream, status).await?,
            Message::Expected { stream, records } => {
                self.update(&stream, |s| s.expected = Some(records));
            }
            Message::Metrics { stream, metrics } => {
                self.update(&stream, |s| s.requests.add(&metrics));
            }
        }
        Ok(())
    }

    async fn on_record(&mut self, record: Record) -> Result<(), RunError> {
        let stream = record.stream.clone();
        match self.modes.get(&stream) {
            None => {
                return Err(RunError::new(
                    ErrorKind::Failed,
                    Some(&stream),
                    "the source sent a record of a stream that was not selected",
                ))
            }
            Some(WriteMode::Replace) => self
                .replace_records
                .entry(stream.clone())
                .or_default()
                .push(record),
            Some(WriteMode::Upsert) => self.pending.push(record),
        }
        self.update(&stream, |s| s.records_read += 1);
        if self.pending.len() >= self.batch_size {
            self.flush().await?;
        }
        Ok(())
    }

    async fn on_status(&mut self, stream: &str, status: StreamStatus) -> Result<(), RunError> {
        match status {
            StreamStatus::Started => {
                self.started.insert(stream.to_owned(), Instant::now());
                self.update(stream, |s| s.state = StreamState::Running);
            }
            StreamStatus::Succeeded => {
                if self.modes.get(stream) == Some(&WriteMode::Replace) {
                    self.commit_replace(stream).await?;
                } else {
                    self.flush().await?;
                }
                self.end_stream(stream, StreamState::Succeeded, None);
            }
            StreamStatus::Unavailable { reason } => {
                self.drop_replace(stream);
                self.end_stream(stream, StreamState::Unavailable, Some(reason));
            }
            StreamStatus::Failed { error } => {
                self.drop_replace(stream);
                self.end_stream(stream, StreamState::Failed, Some(error));
            }
        }
        Ok(())
    }

    fn drop_replace(&mut self, stream: &str) {
        self.replace_records.remove(stream);
        self.replace_state.remove(stream);
    }

    fn end_stream(&mut self, stream: &str, state: StreamState, reason: Option<String>) {
        let elapsed = self.started.get(stream).map(|t| t.elapsed());
        self.update(stream, |s| {
            s.state = state;
            s.reason = reason;
            if let Some(e) = elapsed {
                s.duration_ms = millis(e);
            }
        });
    }

    /// Commit pending upsert records with every checkpoint received so far.
    async fn flush(&mut self) -> Result<(), RunError> {
        self.last_flush = Instant::now();
        let state: Vec<(String, Value)> = std::mem::take(&mut self.pending_state)
            .into_iter()
            .filter(|(k, v)| self.committed_state.get(k) != Some(v))
            .collect();
        if self.pending.is_empty() && state.is_empty() && self.pending_quarantine.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut self.pending);
        self.commit(records, Vec::new(), state).await
    }

    async fn commit_replace(&mut self, stream: &str) -> Result<(), RunError> {
        self.flush().await?;
        let records = self.replace_records.remove(stream).unwrap_or_default();
        let state = self.replace_state.remove(stream).unwrap_or_default();
        if records.is_empty() && state.is_empty() {
            return Ok(()); // nothing changed: the source skipped an unchanged full refresh
        }
        self.commit(records, vec![stream.to_owned()], state).await
    }

    async fn commit(
        &mut self,
        records: Vec<Record>,
        replace: Vec<String>,
        state: Vec<(String, Value)>,
    ) -> Result<(), RunError> {
        let written: Vec<(String, u64)> = records
            .iter()
            .filter(|r| !r.tombstone)
            .filter_map(|r| {
                let pk = self.keys.get(&r.stream)?;
                Some((r.stream.clone(), key_hash(&r.key_text(pk)?)))
            })
            .collect();
        let quarantined = std::mem::take(&mut self.pending_quarantine);
        let quarantined_streams: Vec<String> =
            quarantined.iter().map(|q| q.stream.clone()).collect();
        let room = MAX_REPORTED_QUARANTINE.saturating_sub(self.reported_quarantine.len());
        let to_report: Vec<Quarantined> = quarantined.iter().take(room).cloned().collect();
        for q in &quarantined {
            // Reported (with the run's other events) by the caller from the run's report.
            tracing::debug!(stream = %q.stream, key = ?q.key, reason = %q.reason, "record quarantined");
        }
        let batch = Batch {
            scope: self.opts.scope.clone(),
            run_id: self.opts.run_id.clone(),
            records,
            replace,
            state: state.clone(),
            quarantined,
        };
        let report = self.dest.commit(batch).await?;
        self.committed_state.extend(state);
        for (stream, hash) in written {
            let new = self
                .written_keys
                .entry(stream.clone())
                .or_default()
                .insert(hash);
            self.update(&stream, |s| {
                if new {
                    s.records_written += 1;
                } else {
                    s.records_reread += 1;
                }
            });
        }
        for (stream, n) in report.deleted {
            self.update(&stream, |s| s.records_deleted += n);
        }
        for rejected in report.rejected {
            tracing::warn!(stream = %rejected.stream, reason = %rejected.reason, "record rejected");
            self.update(&rejected.stream, |s| s.records_rejected += 1);
        }
        for stream in quarantined_streams {
            self.update(&stream, |s| s.records_rejected += 1);
        }
        self.reported_quarantine.extend(to_report);
        Ok(())
    }

    fn update(&mut self, stream: &str, f: impl FnOnce(&mut StreamSummary)) {
        let started = self.started.get(stream).copied();
        let Some(summary) = self.summaries.iter_mut().find(|s| s.stream == stream) else {
            return;
        };
        f(summary);
        if summary.state == StreamState::Running {
            if let Some(t) = started {
                summary.duration_ms = millis(t.elapsed());
            }
        }
        if let Some(p) = &self.progress {
            p(&ProgressEvent {
                summary: summary.clone(),
            });
        }
    }

    /// Tell the sink the run ended cleanly (see [`Sink::finish`]).
    async fn finish_sink(&mut self, outcome: Outcome) -> Outcome {
        let clean = matches!(outcome, Outcome::Completed(Ok(())))
            && self
                .summaries
                .iter()
                .all(|s| matches!(s.state, StreamState::Succeeded | StreamState::Unavailable));
        if !clean {
            return outcome;
        }
        match self.dest.finish().await {
            Ok(()) => outcome,
            Err(e) => Outcome::Fatal(e),
        }
    }

    fn finish(mut self, outcome: Outcome, started: Instant) -> RunReport {
        let (status, error) = match outcome {
            Outcome::Cancelled => (RunStatus::Cancelled, None),
            Outcome::Fatal(e) | Outcome::Completed(Err(e)) => (RunStatus::Failed, Some(e)),
            Outcome::Completed(Ok(())) => (RunStatus::Succeeded, None),
        };
        let open = match status {
            RunStatus::Cancelled => StreamState::Cancelled,
            RunStatus::Failed => StreamState::Failed,
            _ => StreamState::Succeeded,
        };
        let names: Vec<String> = self.summaries.iter().map(|s| s.stream.clone()).collect();
        for name in names {
            let state = self
                .summaries
                .iter()
                .find(|s| s.stream == name)
                .map(|s| s.state);
            if matches!(state, Some(StreamState::Running | StreamState::Pending)) {
                let reason = error.as_ref().map(|e| e.message.clone());
                self.end_stream(&name, open, reason);
            }
        }
        let error = error.or_else(|| self.first_failed_stream());
        let status = match (status, &error) {
            (RunStatus::Succeeded | RunStatus::Failed, Some(e))
                if e.kind == ErrorKind::RateLimited =>
            {
                RunStatus::RateLimited
            }
            (RunStatus::Succeeded, Some(_)) => RunStatus::Failed,
            (RunStatus::Succeeded, None)
                if self.summaries.iter().any(|s| s.records_rejected > 0) =>
            {
                RunStatus::SucceededWithRejections
            }
            (s, _) => s,
        };
        RunReport {
            run_id: self.opts.run_id.clone(),
            status,
            streams: self.summaries,
            error,
            duration_ms: millis(started.elapsed()),
            quarantined: self.reported_quarantine,
        }
    }

    fn first_failed_stream(&self) -> Option<RunError> {
        self.summaries
            .iter()
            .find(|s| s.state == StreamState::Failed)
            .map(|s| {
                RunError::new(
                    ErrorKind::Failed,
                    Some(&s.stream),
                    s.reason.clone().unwrap_or_else(|| "failed".into()),
                )
            })
    }
}

fn join_result(
    joined: Result<Result<(), RunError>, tokio::task::JoinError>,
) -> Result<(), RunError> {
    joined.unwrap_or_else(|e| {
        Err(RunError::new(
            ErrorKind::Failed,
            None,
            format!("source task ended abnormally: {e}"),
        ))
    })
}

/// A 64-bit hash of a primary key's text (stable within the process).
fn key_hash(key: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
