//! One push run (records -> Drift, DESIGN.md §3), the same for `driftbridge push`, the REST
//! API, the web UI and a saved data destination: [`PushRun::prepare`] checks the job and
//! records the run, then [`PushRun::run`] pushes with the caller's cancel handle and outcome
//! callback and records how it ended. Glue over `drift_writer`.
//!
//! What every push gets, whichever edge started it:
//! - **the push ledger** ([`crate::ledger`]): timeline events and conversations already sent
//!   with the credential are not sent again (re-running an upload sends nothing twice);
//! - **the scope check**: before anything is written, the credential's scopes (Drift's
//!   token info) are compared with the object's write scopes. A missing scope refuses a real
//!   run (nothing is sent) and is a warning for a dry run; a rejected key refuses both; when
//!   token info cannot be read for another reason the push goes on and reports its own error;
//! - **cancellation** (Ctrl-C, `POST /api/v1/runs/{id}/cancel`): no further row is taken,
//!   requests in flight finish, rows already read get a "not sent" outcome;
//! - **its span, events and metrics** ([`crate::events`]) and its log ([`crate::logs`]).
//!
//! Each edge keeps its own surroundings: how options are given ([`PushSettings`] for the
//! API's strings; the CLI parses its flags), where rows come from ([`PushInput`]), where
//! the results go, and what it shows.

use crate::addresses::AddressPolicy;
use crate::check::{self, FailureKind};
use crate::drift_auth::DriftAuth;
use crate::error::{ErrorKind, FieldError, FlowError};
use crate::events::{self, RunFinished, RunKind, RunObserver, RunScope, RunStarted};
use crate::ledger::StoreLedger;
use crate::logs::RunLog;
use crate::push_job;
use crate::uploads::{self, DeleteOnDrop};
use drift_writer::{
    self as writer, Input, InputSpec, Key, Ledger, Mapping, Object, OnDuplicate, Outcome,
    PushError, PushOptions, ResultsWriter, Summary,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use store::{Credential, Store, StoreError};
use sync_core::Cancel;
use tracing::Instrument;

/// The settings of a push as the REST API and the web UI take them (strings), checked into
/// the writer's [`PushOptions`] by [`PushSettings::options`].
#[derive(Debug, Clone, Default)]
pub struct PushSettings {
    /// `contacts`, `accounts`, `timeline` or `conversations`.
    pub object: String,
    /// Match key; empty = the object's default.
    pub key: String,
    /// `(column, attribute)` pairs; an empty attribute leaves the column out.
    pub mapping: Vec<(String, String)>,
    /// Send columns that are neither mapped nor standard as custom attributes.
    pub include_unmapped: bool,
    /// Several contacts share the key: `update-all`, `first` or `reject`; `None` = reject.
    pub on_duplicate: Option<String>,
    /// Validate and look up only: nothing is written to Drift.
    pub dry_run: bool,
    /// Let the mapping name attributes Drift does not have (the push creates them);
    /// otherwise such a push is refused before any row is sent
    /// ([`crate::attributes::refuse_new_attributes`]).
    pub allow_new_attributes: bool,
}

impl PushSettings {
    /// Check the object, key, mapping and duplicate policy (every error, not only the
    /// first, as fields `object`, `key`, `mapping`, `on_duplicate`) and build the writer's
    /// options.
    pub fn options(&self) -> Result<PushOptions, FlowError> {
        let mut errors = Vec::new();
        let mut err = |field: &str, message: String| errors.push(FieldError::new(field, message));
        let object = Object::parse(&self.object);
        if object.is_none() {
            err(
                "object",
                format!(
                    "unknown object \"{}\": use contacts, accounts, timeline or conversations",
                    self.object
                ),
            );
        }
        let mut mapping = Mapping::default();
        for (column, attribute) in self.mapping.iter().filter(|(_, a)| !a.trim().is_empty()) {
            match Mapping::parse_pairs(&format!("{column}={}", attribute.trim())) {
                Ok(m) => mapping.extend(m),
                Err(e) => err("mapping", format!("column \"{column}\": {e}")),
            }
        }
        let Some(object) = object else {
            return Err(FlowError::invalid_fields(errors));
        };
        let mut opts = PushOptions::new(object);
        if !self.key.trim().is_empty() {
            match Key::parse(&self.key).filter(|k| object.keys().contains(k)) {
                Some(k) => opts.key = k,
                None => err(
                    "key",
                    format!(
                        "\"{}\" is not a key of {}: use {}",
                        self.key,
                        object.as_str(),
                        object
                            .keys()
                            .iter()
                            .map(|k| k.field())
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ),
                ),
            }
        }
        if let Some(policy) = self
            .on_duplicate
            .as_deref()
            .filter(|p| !p.trim().is_empty())
        {
            match OnDuplicate::parse(policy) {
                Some(p) => opts.on_duplicate = p,
                None => err(
                    "on_duplicate",
                    format!("unknown policy \"{policy}\": use update-all, first or reject"),
                ),
            }
        }
        opts.mapping = mapping;
        opts.include_unmapped = self.include_unmapped;
        opts.dry_run = self.dry_run;
        if errors.is_empty() {
            Ok(opts)
        } else {
            Err(FlowError::invalid_fields(errors))
        }
    }
}

/// Where a push reads its rows.
#[derive(Debug, Clone)]
pub enum PushInput {
    /// A file or table (`driftbridge push --from`).
    Spec(InputSpec),
    /// A CSV uploaded to the server ([`crate::uploads::save_upload`]), by id; deleted once a
    /// real (not dry) run of it is recorded. Errors name field `upload` (no such upload) or
    /// `file` (unreadable), never the server's path.
    Upload(String),
}

/// What to push.
#[derive(Debug, Clone)]
pub struct PushJob {
    /// Credential name, or id (`cred_…`).
    pub credential: String,
    /// The writer's options (object, key, mapping, dry run, ...).
    pub options: PushOptions,
    /// Where rows come from.
    pub input: PushInput,
    /// The results file; `None`: `results/<run id>.csv` in the data directory (what the
    /// API's results download serves).
    pub results: Option<PathBuf>,
    /// The saved data destination this job runs, if any (recorded as the run's flow).
    pub flow: Option<String>,
    /// Override of the credential's request budget (requests per minute) for this run.
    pub rate_limit_per_min: Option<u32>,
    /// Most requests in flight at once; `None`: the client's default for the budget.
    pub max_concurrency: Option<usize>,
    /// What started the push (recorded on the run); pushes are not scheduled, so the edges
    /// set [`store::Trigger::Manual`].
    pub trigger: store::Trigger,
    /// The mapping may name attributes Drift does not have (the push creates them as new
    /// custom attributes); without it such a push is refused before any row is sent.
    pub allow_new_attributes: bool,
    /// Which front end started the push: its errors name that edge's fixes
    /// (`--allow-new-attributes`, `"allow_new_attributes": true`, the checkbox).
    pub edge: check::Edge,
}

/// How a push ended: the writer's summary (its `stopped` says whether it stopped early),
/// where the results are, the warnings for people, and whether the outcome was recorded.
#[derive(Debug)]
pub struct PushOutcome {
    /// The run id.
    pub run_id: String,
    /// Rows, outcomes, requests, why it stopped.
    pub summary: Summary,
    /// The results file.
    pub results: PathBuf,
    /// Warnings for people (e.g. a dry run with a credential lacking the write scope).
    pub warnings: Vec<String>,
    /// Recording the run's end in the store (only the store can fail here).
    pub recorded: Result<(), StoreError>,
}

/// A checked push with its run recorded, ready to run.
pub struct PushRun {
    store: Arc<Store>,
    run_id: String,
    credential: Credential,
    rate_limit_per_min: u32,
    client: drift_client::Client,
    options: PushOptions,
    input: Input,
    input_path: Option<PathBuf>,
    ledger: Arc<dyn Ledger>,
    results: ResultsWriter,
    results_path: PathBuf,
    warnings: Vec<String>,
    scope: RunScope,
    flow: Option<String>,
    trigger: store::Trigger,
    addresses: AddressPolicy,
    // Dropped with the run, in this order: the log closes, then a real run's upload goes.
    _log: RunLog,
    _delete_upload: Option<DeleteOnDrop>,
}

impl PushRun {
    /// Check `job` (upload, credential, address, input, client, scopes, results file, in
    /// that order), record the run with status `running`, and open its results file and log.
    /// `addresses`: which hosts the client may contact (the CLI allows all).
    ///
    /// Errors ([`FlowError`]; nothing is recorded and nothing written to Drift): the store's
    /// for an unknown credential; invalid `upload`, `file` (the input cannot be read) or
    /// `credential` (a base URL `addresses` refuses, a client that cannot be built);
    /// invalid `mapping` when it names an attribute Drift does not have and the job does not
    /// allow new attributes ([`crate::attributes::refuse_new_attributes`], dry runs too);
    /// [`ErrorKind::Unauthorized`] when Drift rejects the key or, for a real run, the
    /// credential lacks a write scope of the object; internal when the results file cannot
    /// be created; [`ErrorKind::Conflict`] ([`FlowError::running_run`]) when the job's flow
    /// (its saved destination) is running already ([`crate::single`]).
    pub async fn prepare(
        store: &Arc<Store>,
        job: PushJob,
        addresses: AddressPolicy,
    ) -> Result<PushRun, FlowError> {
        // One run at a time per saved destination / flow name (crate::single).
        let key = job
            .flow
            .as_deref()
            .map(|flow| crate::single::push_key(store, flow));
        if let Some(key) = &key {
            crate::single::check_free(store, key)?;
        }
        let upload = match &job.input {
            PushInput::Upload(id) => Some(uploads::upload_path(store.data_dir(), id)?),
            PushInput::Spec(_) => None,
        };
        let credential = resolve_credential(store, &job.credential)?;
        if let Some(refused) = addresses.check_base_url(&credential.base_url) {
            return Err(FlowError::invalid(
                "credential",
                format!(
                    "credential \"{}\" cannot be used: {}",
                    credential.name, refused.message
                ),
            ));
        }
        let input = match (&job.input, &upload) {
            (_, Some(path)) => InputSpec::Csv(path.clone()).open().map_err(|e| {
                FlowError::invalid("file", uploads::without_path(&e.to_string(), path))
            })?,
            (PushInput::Spec(spec), None) => spec
                .open()
                .map_err(|e| FlowError::invalid("file", e.to_string()))?,
            (PushInput::Upload(_), None) => {
                return Err(FlowError::internal("an upload without its file"))
            }
        };
        let auth = DriftAuth::of(store, &credential)?;
        let secrets = auth.secrets();
        let rate = job
            .rate_limit_per_min
            .unwrap_or(credential.rate_limit_per_min);
        let observer = Arc::new(RunObserver::new());
        let mut builder = auth
            .client(&credential.base_url, addresses)
            .rate_limit_per_min(rate)
            .observer(observer.clone())
            .share_budget(store.budget_share(&credential));
        if let Some(n) = job.max_concurrency {
            builder = builder.max_concurrency(n.max(1));
        }
        let client = builder.build().map_err(|e| {
            FlowError::invalid(
                "credential",
                format!(
                    "credential {}: {}",
                    credential.name,
                    AddressPolicy::explain(&e)
                ),
            )
        })?;
        let warnings = scope_check(
            store,
            &credential,
            job.options.object,
            job.options.dry_run,
            addresses,
        )
        .await?;
        crate::attributes::refuse_new_attributes(
            &client,
            job.options.object,
            &job.options.mapping,
            job.allow_new_attributes,
            job.edge,
        )
        .await?;
        let mut results = match &job.results {
            Some(path) => Some((path.clone(), create_results(path)?)),
            None => None,
        };
        let new_run = push_job::new_run(
            &credential.name,
            &job.options,
            job.flow.clone(),
            job.trigger,
        );
        let run_id = match &key {
            Some(key) => store.insert_run_exclusive(&new_run, &key.key, &key.what)?,
            None => store.insert_run(&new_run)?,
        };
        let log = RunLog::open(store.data_dir(), &run_id, secrets);
        let destination = format!("drift:{}", job.options.object.as_str());
        let scope = RunScope::new(
            RunKind::Push,
            &run_id,
            &credential.name,
            &destination,
            job.flow.as_deref(),
        );
        observer.bind(scope.clone());
        let (results_path, results) = match results.take() {
            Some(r) => r,
            None => {
                let path = uploads::results_path(store.data_dir(), &run_id)?;
                match create_results(&path) {
                    Ok(writer) => (path, writer),
                    Err(e) => {
                        let message = e.to_string();
                        if let Err(err) = store.finish_run(
                            &run_id,
                            "failed",
                            &serde_json::json!({}),
                            Some(&message),
                        ) {
                            tracing::error!(run = %run_id, error = %err, "cannot record the end of the run");
                        }
                        return Err(e);
                    }
                }
            }
        };
        let ledger: Arc<dyn Ledger> = Arc::new(StoreLedger::new(
            store.clone(),
            &credential.id,
            job.options.object,
        ));
        // A real run is the upload's last use: it is deleted however the run ends (the input
        // is open, so the run still reads it whole).
        let delete_upload = upload
            .clone()
            .filter(|_| !job.options.dry_run)
            .map(DeleteOnDrop);
        Ok(PushRun {
            store: store.clone(),
            run_id,
            credential,
            rate_limit_per_min: rate,
            client,
            options: job.options,
            input,
            input_path: upload,
            ledger,
            results,
            results_path,
            warnings,
            scope,
            flow: job.flow.clone(),
            trigger: job.trigger,
            addresses,
            _log: log,
            _delete_upload: delete_upload,
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

    /// What is written.
    pub fn object(&self) -> Object {
        self.options.object
    }

    /// Whether nothing is written (lookups only).
    pub fn dry_run(&self) -> bool {
        self.options.dry_run
    }

    /// The request budget of this run, requests per minute.
    pub fn rate_limit_per_min(&self) -> u32 {
        self.rate_limit_per_min
    }

    /// The Drift client of this run (its counters are the run's requests).
    pub fn client(&self) -> &drift_client::Client {
        &self.client
    }

    /// The results file.
    pub fn results_path(&self) -> &Path {
        &self.results_path
    }

    /// Warnings for people found while preparing (a dry run lacking a write scope).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The run's span and event scope.
    pub fn scope(&self) -> &RunScope {
        &self.scope
    }

    /// Push until the input ends, the run stops (401/403, rate limited beyond the cap, the
    /// results file failing) or `cancel` is cancelled, calling `on_outcome` once per row in
    /// the order rows finish (each outcome is also written to the results file); then record
    /// the run's end (a 401 marks the credential failed).
    ///
    /// Errors ([`FlowError`]) only for problems found before the first row (a mapping that
    /// does not fit the input: field `file`; Drift refusing the credential, rate limiting
    /// or failing the calls a push makes first); the run is then recorded `failed` and the
    /// results file removed. A run that stops later returns its outcome.
    pub async fn run<F>(self, cancel: Cancel, on_outcome: F) -> Result<PushOutcome, FlowError>
    where
        F: FnMut(&Outcome) + Send,
    {
        let span = self.scope.span().clone();
        self.run_in_span(cancel, on_outcome).instrument(span).await
    }

    async fn run_in_span<F>(
        self,
        cancel: Cancel,
        mut on_outcome: F,
    ) -> Result<PushOutcome, FlowError>
    where
        F: FnMut(&Outcome) + Send,
    {
        let PushRun {
            store,
            run_id,
            credential,
            client,
            options,
            input,
            input_path,
            ledger,
            mut results,
            results_path,
            warnings,
            scope,
            flow,
            trigger,
            addresses,
            _log,
            _delete_upload,
            ..
        } = self;
        let object = options.object;
        let dry_run = options.dry_run;
        let mode = if options.dry_run {
            "push-dry-run"
        } else {
            "push"
        };
        scope.emit(RunStarted {
            what: &[object.as_str().to_string()],
            mode,
            trigger,
        });
        for warning in &warnings {
            tracing::warn!("{warning}");
        }
        let started = std::time::Instant::now();
        let outcome = writer::push_until(&client, options, input, Some(ledger), &cancel, |o| {
            events::emit_outcome(&scope, object, o);
            on_outcome(o);
            results.write(o)
        })
        .await;
        let finished = results.finish();
        let mut summary = match outcome {
            Ok(s) => s,
            Err(e) => {
                if let Err(err) = push_job::fail(&store, &run_id, &credential.name, &e) {
                    tracing::error!(error = %err, "cannot record the end of the run");
                }
                // Nothing was processed: do not leave a header-only results file behind.
                let _ = std::fs::remove_file(&results_path);
                let credential_failed = matches!(
                    &e,
                    PushError::Drift(drift_client::Error::Unauthorized { .. })
                );
                let error = setup_error(&credential.name, e, input_path.as_deref());
                scope.emit(RunFinished {
                    status: "failed",
                    duration: started.elapsed(),
                    usage: client.metrics(),
                    error: Some(error.message()),
                });
                if !dry_run {
                    let finished = crate::alerts::FinishedRun {
                        run_id: &run_id,
                        kind: "push",
                        flow: flow.as_deref(),
                        credential: &credential.name,
                        status: "failed",
                        error: Some(error.message()),
                        rejected: 0,
                        credential_failed,
                    };
                    crate::alerts::run_finished(&store, addresses, &finished).await;
                }
                return Err(error);
            }
        };
        if let Err(e) = &finished {
            // The run is recorded failed with the counts it reached, not left running.
            summary.results_failed(e);
        }
        let recorded = push_job::finish(&store, &run_id, &credential.name, &summary);
        if let Err(e) = &recorded {
            tracing::error!(error = %e, "cannot record the end of the run");
        }
        scope.emit(RunFinished {
            status: push_job::status(&summary),
            duration: summary.elapsed,
            usage: client.metrics(),
            error: summary.stopped.as_ref().map(|s| s.message.as_str()),
        });
        if !dry_run {
            let finished = crate::alerts::FinishedRun {
                run_id: &run_id,
                kind: "push",
                flow: flow.as_deref(),
                credential: &credential.name,
                status: push_job::status(&summary),
                error: summary.stopped.as_ref().map(|s| s.message.as_str()),
                rejected: summary.count(drift_writer::OutcomeKind::Rejected) as u64,
                credential_failed: summary
                    .stopped
                    .as_ref()
                    .is_some_and(|s| s.kind == drift_writer::StopKind::Unauthorized),
            };
            crate::alerts::run_finished(&store, addresses, &finished).await;
        }
        Ok(PushOutcome {
            run_id,
            summary,
            results: results_path,
            warnings,
            recorded,
        })
    }
}

/// Credential `key` by id (`cred_…`) or name.
pub fn resolve_credential(store: &Store, key: &str) -> Result<Credential, FlowError> {
    if key.starts_with("cred_") {
        if let Some(c) = store.list_credentials()?.into_iter().find(|c| c.id == key) {
            return Ok(c);
        }
    }
    Ok(store.credential(key)?)
}

fn create_results(path: &Path) -> Result<ResultsWriter, FlowError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| {
                FlowError::internal(format!("cannot create the folder {}: {e}", dir.display()))
            })?;
        }
    }
    ResultsWriter::create(path).map_err(|e| {
        FlowError::internal(format!(
            "cannot create the results file {}: {e}",
            path.display()
        ))
    })
}

/// A push that failed before its first row, as a [`FlowError`]: a mapping or input problem
/// is field `file`, a rejected credential unauthorized (a 401 has marked it failed), a
/// 429 beyond the cap rate limited, other Drift failures unavailable. An upload's server
/// path is never named.
fn setup_error(credential: &str, e: PushError, upload: Option<&Path>) -> FlowError {
    let clean = |text: String| match upload {
        Some(path) => uploads::without_path(&text, path),
        None => text,
    };
    match e {
        PushError::Mapping(m) => FlowError::invalid("file", clean(m.to_string())),
        PushError::Input(i) => FlowError::invalid("file", clean(i.to_string())),
        PushError::Drift(d) if d.is_auth() => {
            FlowError::unauthorized(format!("credential {credential}: {d}"))
        }
        PushError::Drift(d @ drift_client::Error::RateLimited { .. }) => {
            FlowError::new(ErrorKind::RateLimited, d.to_string())
        }
        PushError::Drift(d) => FlowError::new(ErrorKind::Unavailable, d.to_string()),
        other => FlowError::internal(clean(other.to_string())),
    }
}

/// Before anything is written: compare the credential's scopes (token info, REFERENCE §2.3)
/// with what writing `object` needs (REFERENCE §3, [`drift_writer::scopes::WRITE_TARGET_SCOPES`]).
///
/// A missing scope refuses a real run ([`ErrorKind::Unauthorized`], naming the scopes and
/// the fix; no write request is sent) and is a warning for a dry run, which may go on. A
/// rejected key refuses both. When token info cannot be read for another reason (host
/// unreachable, rate limited), the push goes on and reports its own error.
async fn scope_check(
    store: &Store,
    credential: &Credential,
    object: Object,
    dry_run: bool,
    addresses: AddressPolicy,
) -> Result<Vec<String>, FlowError> {
    let target = format!("push:{}", object.as_str());
    let (report, failure) =
        check::test_credential(store, credential, &[target], addresses, check::Edge::Api).await?;
    let Some(failure) = failure else {
        return Ok(Vec::new());
    };
    match failure.kind {
        FailureKind::MissingScopes => {
            let missing = report.missing_scopes.join(", ");
            let plural = if report.missing_scopes.len() == 1 {
                ""
            } else {
                "s"
            };
            let message = format!(
                "credential \"{name}\" lacks the scope{plural} {missing} needed to write {object}; create a Drift token with the scopes {needed} and rotate the key of credential \"{name}\" to it",
                name = credential.name,
                object = object.as_str(),
                needed = report.needed_scopes.join(", "),
            );
            if dry_run {
                Ok(vec![format!("{message}. A real run would be refused.")])
            } else {
                Err(FlowError::unauthorized(message))
            }
        }
        FailureKind::Rejected => Err(FlowError::unauthorized(format!(
            "{}; rotate the credential's key to a valid token",
            failure.message
        ))),
        FailureKind::Config => Err(FlowError::invalid("credential", failure.message)),
        _ => {
            tracing::warn!(credential = %credential.name, error = %failure.message,
                "scope check before a push could not read token info; pushing anyway");
            Ok(Vec::new())
        }
    }
}
