//! Alerts: notification channels (webhooks) told when a run fails, a data source recovers,
//! Drift rejects a credential, or a run rejects records (issue 21).
//!
//! Every run, however it was started (CLI, REST API, web UI, scheduler), ends in
//! [`run_finished`], called by [`crate::job::SyncRun::run`] and
//! [`crate::pusher::PushRun::run`] after the run is recorded, so every edge alerts the same.
//! Dry runs do not alert.
//!
//! A channel ([`store::NotificationChannel`]) is a webhook URL (a secret, encrypted in the
//! vault, shown as `url_mask`), a `format` and the `events` it wants:
//! - `json`: the [`Alert`] as a JSON object;
//! - `slack`: a Slack-compatible `{"text": "..."}` (Slack incoming webhooks, Mattermost,
//!   Teams workflows and most chat tools accept it).
//!
//! Delivery: POST with a [`TIMEOUT`] per attempt, [`ATTEMPTS`] attempts (a 5xx, 429 or a
//! network error is retried), no redirects followed; a failure is logged with the channel's
//! name (never its URL) and never fails the run. Under `serve` without
//! `--allow-private-base-urls`, URLs of internal addresses are refused when saved and not
//! connected to when sent (the same rule as Drift base URLs, [`AddressPolicy`]).

use crate::addresses::AddressPolicy;
use crate::error::{ErrorKind, FieldError, FlowError};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use std::time::Duration;
use store::{NewNotificationChannel, NotificationChannel, Store};

/// The events a channel can receive.
pub const EVENTS: &[&str] = &[
    "run_failed",
    "run_recovered",
    "credential_failed",
    "records_rejected",
];

/// Body formats: `json` (the [`Alert`]) or `slack` (`{"text": ...}`).
pub const FORMATS: &[&str] = &["json", "slack"];

/// Time allowed for one delivery attempt.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Delivery attempts per alert and channel.
pub const ATTEMPTS: u32 = 3;

/// What an alert says. The JSON body of a `json` channel.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    /// One of [`EVENTS`], or `test`.
    pub event: String,
    /// One line for people (the `text` of a `slack` channel).
    pub message: String,
    /// The run, if the alert is about one.
    pub run_id: Option<String>,
    /// `sync` or `push`.
    pub kind: Option<String>,
    /// The data source or saved destination the run belongs to.
    pub flow: Option<String>,
    /// Credential name.
    pub credential: Option<String>,
    /// The run's status (`failed`, `succeeded`, ...).
    pub status: Option<String>,
    /// The run's error.
    pub error: Option<String>,
    /// Failed runs in a row of the flow (with this one), for `run_failed`.
    pub failure_streak: Option<u32>,
    /// Records or rows rejected, for `records_rejected`.
    pub rejected: Option<u64>,
    /// When it happened, epoch ms.
    pub at: i64,
}

/// A channel as given by a user (API body, CLI flags).
#[derive(Debug, Clone)]
pub struct NewChannel {
    /// Unique name.
    pub name: String,
    /// Webhook URL (http or https).
    pub url: SecretString,
    /// `json` (default) or `slack`.
    pub format: Option<String>,
    /// Events; empty = all of [`EVENTS`].
    pub events: Vec<String>,
}

/// `https://hooks.example.com/••••`: scheme, host and port; the path (a Slack webhook's
/// secret) and any credentials masked.
pub fn mask_url(url: &url::Url) -> String {
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!(
        "{}://{}{port}/{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        crate::sink_secret::MASK
    )
}

/// Check and save a channel. Errors ([`FlowError`], every invalid field at once): `name`,
/// `url` (not http(s), or an internal address `addresses` refuses), `format`, `events`;
/// a taken name ([`ErrorKind::Conflict`]); the vault's.
pub fn add(
    store: &Store,
    addresses: AddressPolicy,
    new: &NewChannel,
) -> Result<NotificationChannel, FlowError> {
    let mut errors = Vec::new();
    if let Err(store::StoreError::Invalid { message, .. }) = store::validate::name(&new.name) {
        errors.push(FieldError::new(
            "name",
            message
                .replace("credential name", "channel name")
                .replace("--name NAME", "a name"),
        ));
    }
    let url = match url::Url::parse(new.url.expose_secret().trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            if let Some(refused) = addresses.check_base_url(u.as_str()) {
                errors.push(FieldError::new(
                    "url",
                    refused
                        .message
                        .replace(u.as_str().trim(), &mask_url(&u))
                        .replace("Use the Drift API (https://driftapi.com), or ", ""),
                ));
            }
            Some(u)
        }
        _ => {
            errors.push(FieldError::new(
                "url",
                "give the webhook's whole http:// or https:// URL, e.g. https://hooks.slack.com/services/...",
            ));
            None
        }
    };
    let format = new.format.clone().unwrap_or_else(|| "json".into());
    let format = format.trim().to_ascii_lowercase();
    if !FORMATS.contains(&format.as_str()) {
        errors.push(FieldError::new(
            "format",
            format!("unknown format \"{format}\"; use json (the alert as JSON) or slack ({{\"text\": ...}})"),
        ));
    }
    let mut events: Vec<String> = new
        .events
        .iter()
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty())
        .collect();
    if events.is_empty() {
        events = EVENTS.iter().map(|e| e.to_string()).collect();
    }
    events.dedup();
    if let Some(bad) = events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
        errors.push(FieldError::new(
            "events",
            format!("unknown event \"{bad}\"; use any of {}", EVENTS.join(", ")),
        ));
    }
    let Some(url) = url.filter(|_| errors.is_empty()) else {
        return Err(FlowError::invalid_fields(errors));
    };
    let channel = store.add_notification_channel(&NewNotificationChannel {
        name: new.name.trim().to_string(),
        format,
        events,
        url: SecretString::from(url.to_string()),
        url_mask: mask_url(&url),
    })?;
    tracing::info!(channel = %channel.name, "notification channel saved");
    Ok(channel)
}

/// What a finished run tells [`run_finished`].
#[derive(Debug, Clone)]
pub struct FinishedRun<'a> {
    /// Run id.
    pub run_id: &'a str,
    /// `sync` or `push`.
    pub kind: &'a str,
    /// Data source or saved destination name.
    pub flow: Option<&'a str>,
    /// Credential name.
    pub credential: &'a str,
    /// Status as recorded (`succeeded`, `failed`, ...).
    pub status: &'a str,
    /// Error as recorded.
    pub error: Option<&'a str>,
    /// Records (sync) or rows (push) rejected.
    pub rejected: u64,
    /// Drift rejected the credential (401) and it was marked failed.
    pub credential_failed: bool,
}

/// The alerts `run` calls for: `run_failed`, `run_recovered` (its flow's previous finished
/// run failed and this one succeeded), `records_rejected`, `credential_failed`.
pub fn alerts_for(store: &Store, run: &FinishedRun<'_>) -> Vec<Alert> {
    let at = chrono::Utc::now().timestamp_millis();
    let what = match run.flow {
        Some(flow) => format!("{} of \"{flow}\"", run.kind),
        None => format!("{} with credential \"{}\"", run.kind, run.credential),
    };
    let base = Alert {
        event: String::new(),
        message: String::new(),
        run_id: Some(run.run_id.to_string()),
        kind: Some(run.kind.to_string()),
        flow: run.flow.map(str::to_string),
        credential: Some(run.credential.to_string()),
        status: Some(run.status.to_string()),
        error: run.error.map(str::to_string),
        failure_streak: None,
        rejected: None,
        at,
    };
    let history = run
        .flow
        .map(|f| store.flow_runs(f, 50).unwrap_or_default())
        .unwrap_or_default();
    let mut alerts = Vec::new();
    let failed = matches!(run.status, "failed" | "rate_limited");
    if failed {
        let streak = if history.is_empty() {
            1
        } else {
            crate::sources::failure_streak(&history).0.max(1)
        };
        let times = if streak > 1 {
            format!(" ({streak} failed runs in a row)")
        } else {
            String::new()
        };
        alerts.push(Alert {
            event: "run_failed".into(),
            message: format!(
                "driftbridge: {what} failed{times}: {}. Run {}.",
                run.error.unwrap_or("no error recorded"),
                run.run_id
            ),
            failure_streak: Some(streak),
            ..base.clone()
        });
    } else if matches!(run.status, "succeeded" | "succeeded_with_rejections") {
        let before = history
            .iter()
            .filter(|r| r.id != run.run_id)
            .find(|r| !matches!(r.status.as_str(), "skipped" | "running" | "cancelled"));
        if let Some(previous) = before
            .filter(|r| matches!(r.status.as_str(), "failed" | "rate_limited" | "interrupted"))
        {
            alerts.push(Alert {
                event: "run_recovered".into(),
                message: format!(
                    "driftbridge: {what} recovered: run {} succeeded after run {} {}.",
                    run.run_id,
                    previous.id,
                    previous.status.replace('_', " ")
                ),
                ..base.clone()
            });
        }
    }
    if run.rejected > 0 {
        let n = run.rejected;
        alerts.push(Alert {
            event: "records_rejected".into(),
            message: format!(
                "driftbridge: {what} rejected {n} record{}; see `driftbridge runs rejected {}` or the run's page.",
                if n == 1 { "" } else { "s" },
                run.run_id
            ),
            rejected: Some(n),
            ..base.clone()
        });
    }
    if run.credential_failed {
        alerts.push(Alert {
            event: "credential_failed".into(),
            message: format!(
                "driftbridge: Drift rejected credential \"{}\" during run {}; it is marked failed until its key is rotated.",
                run.credential, run.run_id
            ),
            ..base
        });
    }
    alerts
}

/// Send the alerts `run` calls for to the channels that want them. Never fails: delivery
/// problems are logged (see the module docs).
pub async fn run_finished(store: &Store, addresses: AddressPolicy, run: &FinishedRun<'_>) {
    let channels = match store.list_notification_channels() {
        Ok(c) if c.is_empty() => return,
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the notification channels; no alert sent");
            return;
        }
    };
    for alert in alerts_for(store, run) {
        for channel in channels.iter().filter(|c| c.events.contains(&alert.event)) {
            if let Err(e) = deliver(store, addresses, channel, &alert).await {
                tracing::warn!(channel = %channel.name, event = %alert.event, error = %e, "alert not delivered");
            } else {
                tracing::info!(channel = %channel.name, event = %alert.event, "alert sent");
            }
        }
    }
}

/// Send a `test` alert to channel `key` (id or name) at once. Errors: not found; the
/// delivery's failure (status or network; never the URL) as [`ErrorKind::Unavailable`].
pub async fn test(
    store: &Store,
    addresses: AddressPolicy,
    key: &str,
) -> Result<NotificationChannel, FlowError> {
    let channel = store.notification_channel(key)?;
    let alert = Alert {
        event: "test".into(),
        message: format!(
            "driftbridge: test alert to channel \"{}\"; alerts for {} will look like this.",
            channel.name,
            channel.events.join(", ")
        ),
        run_id: None,
        kind: None,
        flow: None,
        credential: None,
        status: None,
        error: None,
        failure_streak: None,
        rejected: None,
        at: chrono::Utc::now().timestamp_millis(),
    };
    deliver(store, addresses, &channel, &alert)
        .await
        .map_err(|e| {
            FlowError::new(
                ErrorKind::Unavailable,
                format!(
                    "the test alert to channel \"{}\" was not delivered: {e}",
                    channel.name
                ),
            )
        })?;
    Ok(channel)
}

/// The body `alert` is sent with to `channel`.
pub fn body(channel: &NotificationChannel, alert: &Alert) -> serde_json::Value {
    if channel.format == "slack" {
        serde_json::json!({ "text": alert.message })
    } else {
        serde_json::to_value(alert).unwrap_or_default()
    }
}

/// POST `alert` to `channel`, [`ATTEMPTS`] times at most. Errors: a message without the URL.
async fn deliver(
    store: &Store,
    addresses: AddressPolicy,
    channel: &NotificationChannel,
    alert: &Alert,
) -> Result<(), String> {
    let url = store
        .notification_channel_url(&channel.id)
        .map_err(|e| e.to_string())?;
    let mut builder = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("driftbridge/", env!("CARGO_PKG_VERSION")));
    if addresses.denies_private() {
        if let Ok(parsed) = url::Url::parse(url.expose_secret()) {
            if let Some(reason) = drift_client::internal_host(&parsed) {
                return Err(format!("refused: {reason}; {}", crate::addresses::FIX));
            }
        }
        builder = builder.dns_resolver(drift_client::public_only_resolver());
    }
    let client = builder.build().map_err(|e| e.without_url().to_string())?;
    let body = body(channel, alert);
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        match client.post(url.expose_secret()).json(&body).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => {
                last = format!("the webhook answered {}", r.status());
                if !(r.status().is_server_error() || r.status().as_u16() == 429) {
                    return Err(last);
                }
            }
            Err(e) => last = e.without_url().to_string(),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        }
    }
    Err(format!("{last} (after {ATTEMPTS} attempts)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_keeps_only_scheme_host_and_port() {
        let u = url::Url::parse("https://user:pw@hooks.slack.com/services/T0/B0/secret").unwrap();
        assert_eq!(mask_url(&u), "https://hooks.slack.com/••••");
        let u = url::Url::parse("http://127.0.0.1:9000/hook?token=x").unwrap();
        assert_eq!(mask_url(&u), "http://127.0.0.1:9000/••••");
    }
}
