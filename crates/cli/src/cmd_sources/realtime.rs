//! The real-time side of `driftbridge sources` (issue 22): `create|update --realtime
//! --verification-token-env VAR`, `update --no-realtime`, and the webhook URL and figures
//! that `show` and `list` print. The store-level work is `flows::realtime::{enable_in,
//! disable_in, status}`, the functions behind the REST API's `realtime` field; a `serve`
//! running on the same data directory takes a changed token at its next event.
//!
//! The verification token is read from an environment variable, never from a process
//! argument, and is never printed: outputs show the webhook URL and the figures only.

use crate::common::{exit, fail};
use flows::realtime;
use secrecy::SecretString;
use serde_json::{json, Value};
use store::{SourceRecord, Store};

/// `--realtime --verification-token-env VAR` of `sources create`.
#[derive(Debug, clap::Args)]
pub(super) struct CreateArgs {
    /// Make the source real time: `serve` takes Drift's webhook events for it (new
    /// messages, conversations, contacts, meetings) and writes them into its destination
    /// within about a second. Needs --verification-token-env; `sources show` then gives
    /// the webhook URL to paste into the Drift app's Events settings.
    #[arg(long, requires = "verification_token_env")]
    realtime: bool,
    /// Environment variable holding the Drift app's Verification Token (dev.drift.com →
    /// your app → App Credentials). Read from the environment so it stays out of the
    /// process list and the shell history; encrypted in the vault, never shown again.
    #[arg(long, value_name = "VAR", requires = "realtime")]
    verification_token_env: Option<String>,
}

/// `--realtime --verification-token-env VAR | --no-realtime` of `sources update`.
#[derive(Debug, clap::Args)]
pub(super) struct UpdateArgs {
    /// Make the source real time, or give it a new verification token (its webhook URL
    /// stays the same). Needs --verification-token-env.
    #[arg(
        long,
        requires = "verification_token_env",
        conflicts_with = "no_realtime"
    )]
    realtime: bool,
    /// Environment variable holding the Drift app's Verification Token (see `create`).
    #[arg(long, value_name = "VAR", requires = "realtime")]
    verification_token_env: Option<String>,
    /// Turn real time off: the webhook URL stops answering (404), the token and the events
    /// not yet written are dropped. Schedules and runs are unchanged.
    #[arg(long)]
    no_realtime: bool,
}

/// What a create or update does to real time.
pub(super) enum Change {
    /// Nothing.
    Keep,
    /// On, with this verification token.
    On(SecretString),
    /// Off.
    Off,
}

impl CreateArgs {
    /// The token to enable real time with, read and checked before anything is saved.
    pub(super) fn change(&self) -> anyhow::Result<Change> {
        match (&self.verification_token_env, self.realtime) {
            (Some(var), true) => Ok(Change::On(token_from_env(var)?)),
            _ => Ok(Change::Keep),
        }
    }
}

impl UpdateArgs {
    /// The change asked for, the token read and checked before anything is saved.
    pub(super) fn change(&self) -> anyhow::Result<Change> {
        if self.no_realtime {
            return Ok(Change::Off);
        }
        match (&self.verification_token_env, self.realtime) {
            (Some(var), true) => Ok(Change::On(token_from_env(var)?)),
            _ => Ok(Change::Keep),
        }
    }
}

/// The verification token in environment variable `var`. Errors (exit 2) name the variable
/// and the fix, never the value.
fn token_from_env(var: &str) -> anyhow::Result<SecretString> {
    let value = std::env::var(var).unwrap_or_default();
    if value.trim().is_empty() {
        return Err(fail(
            exit::USAGE,
            format!(
                "--verification-token-env: the environment variable {var} is not set or is empty; \
                 export the Verification Token of your Drift app (dev.drift.com → your app → App \
                 Credentials) in it first"
            ),
        ));
    }
    let value = value.trim().to_string();
    realtime::check_token(&value).map_err(|e| {
        let why = e
            .fields()
            .first()
            .map_or_else(|| e.message().to_string(), |f| f.message.clone());
        fail(
            exit::USAGE,
            format!("--verification-token-env: the value of {var} is refused: {why}"),
        )
    })?;
    Ok(SecretString::from(value))
}

/// Apply `change` to the saved source `record` (through `flows::realtime::enable_in` /
/// `disable_in`, the API's path); returns the source as saved.
pub(super) fn apply(
    store: &Store,
    record: SourceRecord,
    change: &Change,
) -> Result<SourceRecord, flows::FlowError> {
    match change {
        Change::Keep => Ok(record),
        Change::On(token) => realtime::enable_in(store, &record.id, token),
        Change::Off => realtime::disable_in(store, &record.id),
    }
}

/// The base of webhook URLs: `--public-url` / `DRIFTBRIDGE_PUBLIC_URL` (serve's public
/// URL) without a trailing slash, or `""` (the URL is then the path alone). Errors: exit 2
/// naming `--public-url`.
pub(super) fn base(public_url: Option<&str>) -> anyhow::Result<String> {
    match public_url.map(str::trim).filter(|u| !u.is_empty()) {
        None => Ok(String::new()),
        Some(url) => Ok(crate::cmd_serve::parse_public_url(url)?
            .as_str()
            .trim_end_matches('/')
            .to_string()),
    }
}

/// The note printed under a webhook URL that is a path only.
pub(super) const PATH_NOTE: &str = "prefix serve's public URL (its --public-url, e.g. https://driftbridge.example.com), or give `--public-url URL` or DRIFTBRIDGE_PUBLIC_URL to print it whole";

/// `webhook_url` and `realtime` of a source's `--json` view, as the API's: `null` both for
/// a source that is not real time.
pub(super) fn view_fields(store: &Store, record: &SourceRecord, base: &str) -> (Value, Value) {
    match realtime::status(store, record, base) {
        Some(s) => (
            json!(s.webhook_url),
            json!({"enabled": true, "events_last_hour": s.events_last_hour, "lag_ms_p95": s.lag_ms_p95}),
        ),
        None => (Value::Null, Value::Null),
    }
}

/// `on: 12 events in the last hour, lag p95 34 ms` or `off`.
pub(super) fn summary(status: Option<&realtime::Status>) -> String {
    let Some(s) = status else {
        return "off".into();
    };
    let events = match s.events_last_hour {
        1 => "1 event".to_string(),
        n => format!("{n} events"),
    };
    let lag = s.lag_ms_p95.map_or_else(
        || "no lag figure yet".into(),
        |ms| format!("lag p95 {ms} ms"),
    );
    format!("on: {events} in the last hour, {lag}")
}

/// The lines `show` prints: `real time` and, when on, `webhook URL` (with the note when it
/// is a path only).
pub(super) fn show_lines(
    store: &Store,
    record: &SourceRecord,
    base: &str,
) -> Vec<(String, String)> {
    let status = realtime::status(store, record, base);
    let mut lines = vec![("real time".to_string(), summary(status.as_ref()))];
    if let Some(s) = status {
        lines.push(("webhook URL".into(), s.webhook_url));
        if base.is_empty() {
            lines.push((String::new(), format!("({PATH_NOTE})")));
        }
    }
    lines
}
