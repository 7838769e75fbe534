//! One sync run, the same for `driftbridge sync` and for `serve`'s background runs:
//! credential -> Drift client -> streams -> sink -> run record -> engine -> summary ->
//! run record finished (a 401 marks the credential failed).
//!
//! Two steps so each caller can keep its own surroundings: [`SyncRun::prepare`] checks the
//! job and records the run (status `running`; errors name the field at fault), then
//! [`SyncRun::run`] syncs with the caller's [`Cancel`] and progress callback (the CLI draws
//! its bars and cancels on Ctrl-C; the server keeps live figures and cancels on request)
//! and stores the [`Summary`]. The summary is the JSON that `driftbridge sync --json` prints
//! and that `driftbridge runs show` reads back, whichever of the two started the run.
//!
//! The run runs inside its `run` span ([`crate::events::RunScope`]) and writes its log
//! ([`crate::logs`]); it reports through the run events: started, each stream finished,
//! each quarantined record, every 429 and retry of its Drift client, finished.

use crate::addresses::AddressPolicy;
use crate::drift_auth::DriftAuth;
use crate::error::FlowError;
use crate::events::{
    RecordQuarantined, RunFinished, RunKind, RunObserver, RunScope, RunStarted, StreamFinished,
};
use crate::logs::RunLog;
use serde::{Deserialize, Serialize};
use sinks::SinkSpec;
use source_drift::{DriftSource, DriftSourceConfig};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use store::{Credential, NewRun, Store, StoreError, Trigger};
use sync_core::{
    run_sync, Cancel, ConfiguredStream, ErrorKind, ProgressEvent, ProgressFn, RunError, RunOptions,
    RunStatus, Sink, StreamState, StreamSummary, SyncMode,
};
use tracing::Instrument;

/// What to run.
#[derive(Debug, Clone)]
pub struct SyncJob {
    /// Credential name.
    pub credential: String,
    /// Stream names, or `all`.
    pub streams: Vec<String>,
    /// Where records go.
    pub sink: SinkSpec,
    /// Full refresh or incremental.
    pub mode: SyncMode,
    /// Data source (flow) name recorded on the run, if any.
    pub flow: Option<String>,
    /// Override of the credential's request budget (requests per minute) for this run.
    pub rate_limit_per_min: Option<u32>,
    /// Options of the Drift source (overlap, concurrency, extra contacts).
    pub source: DriftSourceConfig,
    /// Delete the rows of records deleted in Drift instead of marking them `_deleted`
    /// (databases; file sinks always write a tombstone record).
    pub hard_deletes: bool,
    /// What a contact attribute without a column does: evolve, freeze or discard.
    pub schema_contract: sinks::SchemaContract,
    /// History mode (SQLite, PostgreSQL): keep every version of a record.
    pub history: bool,
    /// Streams read in full this run whatever `mode` says (a data source's stream reset,
    /// [`crate::sources::reset_stream`]); empty for none.
    pub reset_streams: Vec<String>,
    /// What started the run (recorded on it): [`Trigger::Manual`] for the CLI and run now,
    /// [`Trigger::Schedule`] for the scheduler.
    pub trigger: Trigger,
}

/// Requests, 429s, retries and waits of a whole run (the credential's client counters).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Totals {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Responses with status 429.
    pub rate_limited: u64,
    /// Retried attempts.
    pub retries: u64,
    /// Times a request waited for the budget, a `Retry-After` or a backoff.
    pub waits: u64,
    /// Total waiting time, milliseconds, summed over requests (concurrent waits add up).
    pub wait_ms: u64,
    /// Wall-clock time during which at least one request waited, milliseconds (what the
    /// waits cost the run at most); 0 in summaries of older versions.
    #[serde(default)]
    pub wait_wall_ms: u64,
}

impl Totals {
    /// The counters of `client` now.
    pub fn of(client: &drift_client::Client) -> Self {
        let m = client.metrics();
        Totals {
            requests: m.requests,
            rate_limited: m.rate_limited,
            retries: m.retries,
            waits: m.waits,
            wait_ms: u64::try_from(m.wait_time.as_millis()).unwrap_or(u64::MAX),
            wait_wall_ms: u64::try_from(m.wait_wall.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// The summary of a finished run, stored on its run record (`driftbridge sync --json`
/// prints the same).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// Run id.
    pub run_id: String,
    /// `succeeded`, `succeeded_with_rejections`, `failed`, `rate_limited` or `cancelled`.
    pub status: RunStatus,
    /// Credential name.
    pub credential: String,
    /// The sink (no secrets); JSON field `destination`.
    #[serde(rename = "destination")]
    pub sink: String,
    /// `full` or `incremental`.
    pub mode: String,
    /// Per stream: records read/written, requests attributed to it, duration.
    pub streams: Vec<StreamSummary>,
    /// Requests, 429s, retries and waits of the whole run.
    pub totals: Totals,
    /// Why the run failed.
    pub error: Option<RunError>,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
}

/// `full` or `incremental`, as recorded on runs.
pub fn mode_name(mode: SyncMode) -> &'static str {
    match mode {
        SyncMode::FullRefresh => "full",
        SyncMode::Incremental => "incremental",
    }
}

/// A checked job with its run recorded, ready to run.
pub struct SyncRun {
    run_id: String,
    credential: Credential,
    rate_limit_per_min: u32,
    client: drift_client::Client,
    streams: Vec<ConfiguredStream>,
    sink: Box<dyn Sink>,
    sink_name: String,
    mode: SyncMode,
    source: DriftSourceConfig,
    scope: RunScope,
    flow: Option<String>,
    trigger: Trigger,
    addresses: AddressPolicy,
    _log: RunLog,
}

impl SyncRun {
    /// Check `job` (credential, streams, client, sink, in that order) and record
    /// the run with status `running`. `addresses`: which hosts the client may contact (the
    /// CLI allows all; `serve` by `--allow-private-base-urls`).
    ///
    /// Errors ([`FlowError`]): the store's for an unknown credential or a store failure;
    /// an invalid field `streams` or `credential` (also a base URL that `addresses`
    /// refuses: nothing is sent) or `destination` (a path inside the data directory:
    /// nothing is opened); [`crate::ErrorKind::Unavailable`] when the sink cannot be
    /// opened; [`crate::ErrorKind::Conflict`] ([`FlowError::running_run`]) when the job's
    /// flow (its data source) is running already ([`crate::single`]).
    pub fn prepare(
        store: &Store,
        job: &SyncJob,
        addresses: AddressPolicy,
    ) -> Result<SyncRun, FlowError> {
        // One run at a time per data source / flow name (crate::single): fail before the
        // sink is opened; the store checks again when it records the run.
        let key = job
            .flow
            .as_deref()
            .map(|flow| crate::single::sync_key(store, flow));
        if let Some(key) = &key {
            crate::single::check_free(store, key)?;
        }
        let credential = store.credential(&job.credential)?;
        if let Some(refused) = addresses.check_base_url(&credential.base_url) {
            return Err(FlowError::invalid(
                "credential",
                format!(
                    "credential \"{}\" cannot be used: {}",
                    credential.name, refused.message
                ),
            ));
        }
        let mut streams = source_drift::catalog()
            .select(&job.streams, job.mode)
            .map_err(|e| FlowError::invalid("streams", e.to_string()))?;
        for s in streams
            .iter_mut()
            .filter(|s| job.reset_streams.contains(&s.stream.name))
        {
            s.mode = SyncMode::FullRefresh;
        }
        if streams.is_empty() {
            return Err(FlowError::invalid(
                "streams",
                "no stream selected; choose at least one",
            ));
        }
        let auth = DriftAuth::of(store, &credential)?;
        let mut secrets = auth.secrets();
        let rate = job
            .rate_limit_per_min
            .unwrap_or(credential.rate_limit_per_min);
        let observer = Arc::new(RunObserver::new());
        let client = auth
            .client(&credential.base_url, addresses)
            .rate_limit_per_min(rate)
            .observer(observer.clone())
            .share_budget(store.budget_share(&credential))
            .build()
            .map_err(|e| {
                FlowError::invalid(
                    "credential",
                    format!(
                        "credential {}: {}",
                        credential.name,
                        AddressPolicy::explain(&e)
                    ),
                )
            })?;
        if let Some(message) = crate::sink_paths::refusal(&job.sink, store.data_dir()) {
            return Err(FlowError::invalid("destination", message));
        }
        let options = sinks::OpenOptions {
            hard_deletes: job.hard_deletes,
            schema_contract: job.schema_contract,
            history: job.history,
        };
        let sink = sinks::open_with(&job.sink, options).map_err(|e| {
            FlowError::new(
                crate::ErrorKind::Unavailable,
                format!("the destination cannot be opened: {e}"),
            )
        })?;
        let sink_name = match &job.sink {
            SinkSpec::Postgres(url) => {
                let parts = crate::sink_secret::split(url);
                secrets.extend(parts.secrets.iter().map(|s| s.clone().into()));
                parts.shown
            }
            other => other.describe(),
        };
        let new_run = NewRun {
            credential: credential.name.clone(),
            destination: sink_name.clone(),
            mode: mode_name(job.mode).into(),
            streams: streams.iter().map(|s| s.stream.name.clone()).collect(),
            flow: job.flow.clone(),
            trigger: job.trigger,
        };
        let run_id = match &key {
            Some(key) => store.insert_run_exclusive(&new_run, &key.key, &key.what)?,
            None => store.insert_run(&new_run)?,
        };
        let log = RunLog::open(store.data_dir(), &run_id, secrets);
        let scope = RunScope::new(
            RunKind::Sync,
            &run_id,
            &credential.name,
            &sink_name,
            job.flow.as_deref(),
        );
        observer.bind(scope.clone());
        Ok(SyncRun {
            run_id,
            credential,
            rate_limit_per_min: rate,
            client,
            streams,
            sink,
            sink_name,
            mode: job.mode,
            source: job.source.clone(),
            scope,
            flow: job.flow.clone(),
            trigger: job.trigger,
            addresses,
            _log: log,
        })
    }

    /// The run id (already in the run history).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The credential's name.
    pub fn credential(&self) -> &str {
        &self.credential.name
    }

    /// The request budget of this run, requests per minute.
    pub fn rate_limit_per_min(&self) -> u32 {
        self.rate_limit_per_min
    }

    /// The Drift client of this run (its counters are the run's [`Totals`]).
    pub fn client(&self) -> &drift_client::Client {
        &self.client
    }

    /// The selected stream names, in run order.
    pub fn stream_names(&self) -> Vec<String> {
        self.streams.iter().map(|s| s.stream.name.clone()).collect()
    }

    /// The run's span and event scope.
    pub fn scope(&self) -> &RunScope {
        &self.scope
    }

    /// Sync until done or `cancel`led, calling `progress` on every change of a stream's
    /// figures; then store the summary on the run record and, when Drift answered 401,
    /// mark the credential failed.
    ///
    /// Returns the summary and whether storing the outcome worked (a run that fails is
    /// still a summary; only the store can fail here).
    pub async fn run(
        self,
        store: &Store,
        cancel: Cancel,
        progress: Option<ProgressFn>,
    ) -> (Summary, Result<(), StoreError>) {
        let span = self.scope.span().clone();
        self.run_in_span(store, cancel, progress)
            .instrument(span)
            .await
    }

    async fn run_in_span(
        mut self,
        store: &Store,
        cancel: Cancel,
        progress: Option<ProgressFn>,
    ) -> (Summary, Result<(), StoreError>) {
        let scope = self.scope.clone();
        scope.emit(RunStarted {
            what: &self.stream_names(),
            mode: mode_name(self.mode),
            trigger: self.trigger,
        });
        self.streams =
            with_contact_attributes(&self.client, std::mem::take(&mut self.streams)).await;
        let source = Arc::new(DriftSource::new(self.client.clone(), self.source.clone()));
        let options = RunOptions::new(self.run_id.clone(), format!("drift:{}", self.credential.id));
        let finished = Arc::new(Mutex::new(HashSet::new()));
        let progress = Some(stream_events(scope.clone(), finished.clone(), progress));
        let report = run_sync(
            source,
            self.sink.as_mut(),
            self.streams,
            options,
            cancel,
            progress,
        )
        .await;
        // Streams whose end no progress event showed (e.g. not started when cancelled).
        for s in &report.streams {
            if finished
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(s.stream.clone())
            {
                scope.emit(StreamFinished { summary: s });
            }
        }
        for q in &report.quarantined {
            scope.emit(RecordQuarantined {
                stream: &q.stream,
                key: q.key.as_deref(),
                reason: &q.reason,
            });
        }
        let rejected: Vec<store::RejectedRecord> = report
            .quarantined
            .iter()
            .map(|q| store::RejectedRecord {
                stream: q.stream.clone(),
                primary_key: q.key.clone(),
                reason: q.reason.clone(),
                raw: q.raw.clone(),
                rejected_at: q.extracted_at,
            })
            .collect();
        let summary = Summary {
            run_id: self.run_id,
            status: report.status,
            credential: self.credential.name,
            sink: self.sink_name,
            mode: mode_name(self.mode).into(),
            streams: report.streams,
            totals: Totals::of(&self.client),
            error: report.error,
            duration_ms: report.duration_ms,
        };
        let recorded = store
            .add_rejected(&summary.run_id, &rejected)
            .and_then(|()| record_outcome(store, &summary));
        if let Err(e) = &recorded {
            tracing::error!(error = %e, "cannot record the end of the run");
        }
        let error = summary.error.as_ref().map(|e| e.to_string());
        scope.emit(RunFinished {
            status: summary.status.as_str(),
            duration: std::time::Duration::from_millis(summary.duration_ms),
            usage: self.client.metrics(),
            error: error.as_deref(),
        });
        let finished = crate::alerts::FinishedRun {
            run_id: &summary.run_id,
            kind: "sync",
            flow: self.flow.as_deref(),
            credential: &summary.credential,
            status: summary.status.as_str(),
            error: error.as_deref(),
            rejected: summary.streams.iter().map(|s| s.records_rejected).sum(),
            credential_failed: summary
                .error
                .as_ref()
                .is_some_and(|e| e.kind == ErrorKind::Unauthorized),
        };
        crate::alerts::run_finished(store, self.addresses, &finished).await;
        (summary, recorded)
    }
}

/// The streams `names` (or `all`) as the tables a sync would write describe them
/// (`driftbridge catalog`): without a credential, contacts get the standard attribute
/// columns; with `credential`, also that org's custom attributes (one request, drawn from
/// the credential's budget; see [`with_contact_attributes`]).
///
/// Errors: an unknown stream (field `streams`), the store's for an unknown credential, an
/// invalid field `credential` when no client can be built for it.
pub async fn catalog_streams(
    store: &Store,
    credential: Option<&str>,
    names: &[String],
    addresses: AddressPolicy,
) -> Result<Vec<sync_core::Stream>, FlowError> {
    let streams = source_drift::catalog()
        .select(names, SyncMode::FullRefresh)
        .map_err(|e| FlowError::invalid("streams", e.to_string()))?;
    let Some(name) = credential else {
        return Ok(streams.into_iter().map(|s| s.stream).collect());
    };
    let credential = store.credential(name)?;
    let auth = DriftAuth::of(store, &credential)?;
    let client = auth
        .client(&credential.base_url, addresses)
        .rate_limit_per_min(credential.rate_limit_per_min)
        .share_budget(store.budget_share(&credential))
        .build()
        .map_err(|e| {
            FlowError::invalid(
                "credential",
                format!(
                    "credential {}: {}",
                    credential.name,
                    AddressPolicy::explain(&e)
                ),
            )
        })?;
    Ok(with_contact_attributes(&client, streams)
        .await
        .into_iter()
        .map(|s| s.stream)
        .collect())
}

/// `streams` with the org's custom contact attributes added to the contacts stream's
/// flattened columns (one request, `GET /contacts/attributes`, when contacts are selected;
/// shared with `driftbridge catalog --credential`). When Drift refuses it (the credential
/// lacks `all_contact_read`) or it fails, the standard attributes stay the columns and a
/// warning says so: custom attributes then arrive as new fields under the schema contract.
pub async fn with_contact_attributes(
    client: &drift_client::Client,
    streams: Vec<ConfiguredStream>,
) -> Vec<ConfiguredStream> {
    if !streams.iter().any(|s| s.stream.flatten.is_some()) {
        return streams;
    }
    let custom = match client.contact_attributes().await {
        Ok(records) => records
            .items
            .into_iter()
            .map(|a| {
                let kind = a.attribute_type.unwrap_or_default();
                (a.name, kind, a.display_name.unwrap_or_default())
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "custom contact attributes could not be read: contacts get the standard attribute columns; others follow the schema contract");
            Vec::new()
        }
    };
    streams
        .into_iter()
        .map(|mut s| {
            s.stream = source_drift::shapes::with_contact_attributes(s.stream, &custom);
            s
        })
        .collect()
}

/// A progress callback that emits [`StreamFinished`] once per stream when it ends, then
/// passes every event on to `next` (the caller's bars or live figures).
fn stream_events(
    scope: RunScope,
    finished: Arc<Mutex<HashSet<String>>>,
    next: Option<ProgressFn>,
) -> ProgressFn {
    Arc::new(move |event: &ProgressEvent| {
        let s = &event.summary;
        let ended = !matches!(s.state, StreamState::Pending | StreamState::Running);
        if ended
            && finished
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(s.stream.clone())
        {
            scope.emit(StreamFinished { summary: s });
        }
        if let Some(next) = &next {
            next(event);
        }
    })
}

/// Store the summary on the run record; mark the credential failed on a 401.
fn record_outcome(store: &Store, summary: &Summary) -> Result<(), StoreError> {
    let error = summary.error.as_ref().map(|e| e.to_string());
    let value = serde_json::to_value(summary).unwrap_or_default();
    store.finish_run(
        &summary.run_id,
        summary.status.as_str(),
        &value,
        error.as_deref(),
    )?;
    if let Some(e) = &summary.error {
        if e.kind == ErrorKind::Unauthorized {
            store.mark_credential_failed(&summary.credential, &e.message)?;
        }
    }
    Ok(())
}
