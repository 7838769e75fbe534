//! The run record of a push (records -> Drift), the same for `driftbridge push` and the
//! server's data destinations: how the run is recorded, which status it ends with, and a
//! 401 marking the credential failed. Each caller keeps its own input, results file,
//! progress and summary shape (the CLI's `--json` summary, the server's [`crate::pusher`]
//! report); the summary given is stored as it is.

use serde_json::Value;
use source_drift::writer::{OutcomeKind, PushError, PushOptions, StopKind, Summary};
use store::{NewRun, Store, StoreError};

/// The run record of a push of `opts.object` with `credential` (mode `push` or
/// `push-dry-run`, destination `drift:<object>`).
pub fn new_run(credential: &str, opts: &PushOptions, flow: Option<String>) -> NewRun {
    NewRun {
        credential: credential.to_owned(),
        destination: format!("drift:{}", opts.object.as_str()),
        mode: if opts.dry_run { "push-dry-run" } else { "push" }.into(),
        streams: vec![opts.object.as_str().into()],
        flow,
    }
}

/// Status of a finished push: `failed` when it stopped early, `partial` when rows were
/// rejected, else `succeeded`.
pub fn status(s: &Summary) -> &'static str {
    match (&s.stopped, s.count(OutcomeKind::Rejected)) {
        (Some(_), _) => "failed",
        (None, 0) => "succeeded",
        (None, _) => "partial",
    }
}

/// Finish push run `run_id` with `summary` (stored as given) and the stop reason as its
/// error; a run stopped by a 401 marks `credential` failed.
pub fn finish(
    store: &Store,
    run_id: &str,
    credential: &str,
    s: &Summary,
    summary: &Value,
) -> Result<(), StoreError> {
    let error = s.stopped.as_ref().map(|x| x.message.as_str());
    store.finish_run(run_id, status(s), summary, error)?;
    if let Some(stop) = &s.stopped {
        if stop.kind == StopKind::Unauthorized {
            store.mark_credential_failed(credential, &stop.message)?;
        }
    }
    Ok(())
}

/// Finish push run `run_id` that failed before its first row (status `failed`, the error
/// as its message); a 401 marks `credential` failed.
pub fn fail(
    store: &Store,
    run_id: &str,
    credential: &str,
    e: &PushError,
) -> Result<(), StoreError> {
    store.finish_run(
        run_id,
        "failed",
        &serde_json::json!({}),
        Some(&e.to_string()),
    )?;
    if let PushError::Drift(d @ drift_client::Error::Unauthorized { .. }) = e {
        store.mark_credential_failed(credential, &d.to_string())?;
    }
    Ok(())
}
