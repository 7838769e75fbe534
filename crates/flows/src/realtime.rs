//! Real-time data sources (issue 22): Drift's webhook events into the source's sink, with
//! the scheduled incremental syncs as the gap filler.
//!
//! The path of one event (REFERENCE §7.9 for Drift's side):
//!
//! 1. **Accept** ([`accept`]): `serve`'s `POST /webhooks/drift/{webhook_id}` hands the body
//!    here. The webhook id (128 random bits, [`new_webhook_id`]) names the source; the
//!    verification token (header `X-Verification-Token`, else the body's `token`) is compared
//!    in constant time with the one in the vault; the event is parsed tolerantly
//!    ([`parse_event`]) and inserted into the store's durable queue (`webhook_events`) under a
//!    deduplication key (message id, else event type + ids + timestamp). Only then does the
//!    endpoint answer 200, so Drift never waits for a sink.
//! 2. **Write** ([`Hub`]): one worker per source drains the queue at most every
//!    [`FLUSH_INTERVAL`], turns each event into records of the existing streams (a
//!    `new_message` carries its message; conversations and contacts are read again from
//!    Drift through the credential's client and rate budget) and commits them through the
//!    sink's ordinary commit (`Sink::commit`, the one a sync uses). Queue rows are marked
//!    done only after the commit, so a `serve` killed in between replays them when it starts
//!    ([`Hub::replay`]); upserts make the replay harmless.
//! 3. **Reconcile**: the source's schedule keeps running incremental syncs, which fill what
//!    the webhook path missed; the database sinks keep the newer of two versions of a record
//!    (Drift's `updatedAt`), so a sync never overwrites a webhook-fed record with an older
//!    one. File sinks append: the newest version wins when read.
//!
//! Rows written by this path carry `_run_id` = [`WEBHOOK_RUN_ID`]. Nothing here logs an
//! event's body or a token: only the event type, counts and ids.

use crate::drift_auth::DriftAuth;
use crate::sources::SourceOptions;
use crate::{AddressPolicy, Flows};
use futures::stream::{self, StreamExt as _};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::{Enqueued, WebhookEvent};
use sync_core::{Batch, Quarantined, Record, Sink, Stream};
use tokio::sync::Notify;

/// The largest event body accepted, bytes (256 KiB; a bigger one is a 413).
pub const MAX_EVENT_BYTES: usize = 256 * 1024;
/// A source's worker commits at most this often (events wait at most this long for a batch).
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(250);
/// After a wake, events that arrive within this long go into the same commit (the events of
/// one Drift action usually arrive together).
pub const COALESCE: Duration = Duration::from_millis(20);
/// Events taken from the queue per commit at most.
pub const BATCH_EVENTS: usize = 2000;
/// `_run_id` of the rows the webhook path writes.
pub const WEBHOOK_RUN_ID: &str = "webhook";
/// Webhook events by `outcome`: `accepted`, `duplicate`, `rejected` (wrong or missing
/// verification token), `invalid` (not a Drift event), `too_large`, `unknown_type` (written
/// nothing), `failed` (its records could not be read from Drift; the next sync fills them).
pub const WEBHOOK_EVENTS: &str = "driftbridge_webhook_events_total";
/// Lag from Drift's event time to the commit of the event's records, seconds (a histogram).
pub const WEBHOOK_LAG: &str = "driftbridge_webhook_lag_seconds";

/// The event types this path turns into records (REFERENCE §7.9); others are counted as
/// `unknown_type` and written nowhere.
pub const EVENT_TYPES: [&str; 11] = [
    "new_message",
    "new_command_message",
    "contact_identified",
    "contact_updated",
    "new_conversation",
    "conversation_inactive",
    "conversation_push",
    "conversation_status_updated",
    "button_clicked",
    "playbook_goal_met",
    "new_meeting",
];

fn count(outcome: &'static str) {
    metrics::counter!(WEBHOOK_EVENTS, "outcome" => outcome).increment(1);
}

/// A new webhook id: 32 hex digits (128 bits from the OS's random source).
pub fn new_webhook_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The webhook URL of a source: `{base}/webhooks/drift/{webhook_id}` (`base` without a
/// trailing slash, e.g. `serve --public-url`, else `http://` + the bind address).
pub fn webhook_url(base: &str, webhook_id: &str) -> String {
    format!("{}/webhooks/drift/{webhook_id}", base.trim_end_matches('/'))
}

/// Whether `given` is `expected`, in time independent of where they differ (both are
/// hashed first, so neither length nor content leaks through timing).
pub fn token_matches(expected: &SecretString, given: &str) -> bool {
    use subtle::ConstantTimeEq;
    let a = Sha256::digest(expected.expose_secret().as_bytes());
    let b = Sha256::digest(given.as_bytes());
    bool::from(a.ct_eq(&b))
}

/// A Drift webhook event, parsed tolerantly.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `type` (e.g. `new_message`).
    pub event_type: String,
    /// `data` (an empty object when absent).
    pub data: Map<String, Value>,
    /// The deduplication key: `message:{id}` for messages, else
    /// `{type}:{ids}:{timestamp}`, else `{type}:sha256:{hash of data}`.
    pub dedup_key: String,
    /// Drift's time of the event (`data.createdAt`, `data.timestamp`, `data.updatedAt`),
    /// epoch ms, when it has one.
    pub event_at: Option<i64>,
}

/// An integer sent as a number or as a string of digits.
fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn int_at(data: &Map<String, Value>, keys: &[&str]) -> Option<i64> {
    keys.iter().find_map(|k| int(data.get(*k)))
}

/// The message a `new_message` event carries: `data` itself when it has an `id` and a
/// `conversationId`, else `data.message` (Drift's exact shape is not documented).
fn message_of(data: &Map<String, Value>) -> Option<&Map<String, Value>> {
    let is_message = |m: &Map<String, Value>| {
        int(m.get("id")).is_some() && int(m.get("conversationId")).is_some()
    };
    if is_message(data) {
        return Some(data);
    }
    data.get("message")
        .and_then(Value::as_object)
        .filter(|m| is_message(m))
}

/// The conversation an event is about: `conversationId`, `conversation.id`, or for
/// conversation events `id`.
fn conversation_of(event_type: &str, data: &Map<String, Value>) -> Option<i64> {
    int_at(data, &["conversationId"])
        .or_else(|| int(data.get("conversation").and_then(|c| c.get("id"))))
        .or_else(|| {
            (event_type.contains("conversation") && event_type != "new_message")
                .then(|| int(data.get("id")))
                .flatten()
        })
}

/// The contact a contact event is about: `endUserId`, `contactId`, `id`, `contact.id`.
fn contact_of(data: &Map<String, Value>) -> Option<i64> {
    int_at(data, &["endUserId", "contactId", "id"])
        .or_else(|| int(data.get("contact").and_then(|c| c.get("id"))))
}

/// Parse an event body: a JSON object with a string `type`; `data` may be absent. Returns
/// the event and the body's `token` field. Errors name what is missing (never the body).
pub fn parse_event(body: &[u8]) -> Result<(Event, Option<String>), String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "the body is not JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let Value::Object(mut top) = value else {
        return Err("the body is not a JSON object".into());
    };
    let token = top.get("token").and_then(Value::as_str).map(str::to_owned);
    let event_type = match top.get("type") {
        Some(Value::String(t)) if !t.trim().is_empty() => t.trim().to_string(),
        _ => return Err("the event has no `type`".into()),
    };
    let data = match top.remove("data") {
        Some(Value::Object(d)) => d,
        _ => Map::new(),
    };
    let event_at = int_at(&data, &["createdAt", "timestamp", "updatedAt"])
        .or_else(|| message_of(&data).and_then(|m| int(m.get("createdAt"))));
    let stamp = event_at.map_or_else(String::new, |t| t.to_string());
    let dedup_key = if let Some(m) = message_of(&data) {
        format!("message:{}", int(m.get("id")).unwrap_or_default())
    } else if let Some(c) = contact_of(&data).filter(|_| event_type.starts_with("contact_")) {
        format!("{event_type}:{c}:{stamp}")
    } else if let Some(c) = conversation_of(&event_type, &data) {
        format!("{event_type}:{c}:{stamp}")
    } else {
        let text = serde_json::to_string(&data).unwrap_or_default();
        format!("{event_type}:sha256:{:x}", Sha256::digest(text.as_bytes()))
    };
    Ok((
        Event {
            event_type,
            data,
            dedup_key,
            event_at,
        },
        token,
    ))
}

/// Why an event was refused, with the status the endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No real-time source has this webhook id (404).
    UnknownWebhook,
    /// The verification token is missing or wrong (401).
    Unauthorized,
    /// The body is larger than [`MAX_EVENT_BYTES`] (413).
    TooLarge,
    /// Not a Drift event (400), naming what is missing.
    Invalid(String),
    /// The queue could not be written (503): Drift retries (REFERENCE §7.9, uncertain).
    Unavailable(String),
}

/// What [`accept`] did with an event it accepted (both are a 200).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Queued; the source's worker writes it within about [`FLUSH_INTERVAL`].
    Queued,
    /// Received already (same deduplication key in the last two hours): nothing to do.
    Duplicate,
}

/// A real-time source as the endpoint knows it (cached for a few seconds).
#[derive(Clone)]
struct Target {
    source_id: String,
    token: Option<SecretString>,
    loaded: Instant,
}

/// How long the endpoint trusts its cached view of a webhook id. A token that does not
/// match the cached one, and an id not in the cache, are looked up in the store at once, so
/// a token set by another process works at the next event; a source turned off by another
/// process stops answering within this long.
const TARGET_TTL: Duration = Duration::from_secs(5);

/// The real-time side of a `serve`: which source a webhook id names, and one worker per
/// source draining its queue. Cheap to share ([`Flows::realtime`]).
#[derive(Default)]
pub struct Hub {
    workers: Mutex<HashMap<String, Arc<Notify>>>,
    targets: Mutex<HashMap<String, Target>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// Forget what is cached about `source_id` (its token or webhook id changed, or it was
    /// deleted); its worker notices on its next wake.
    pub fn forget(&self, source_id: &str) {
        lock(&self.targets).retain(|_, t| t.source_id != source_id);
        if let Some(wake) = lock(&self.workers).get(source_id) {
            wake.notify_one();
        }
    }

    /// The source `webhook_id` names: from the cache when it holds a view younger than
    /// [`TARGET_TTL`] and `reload` is false, else from the store (a miss always reads the
    /// store). Returns the target and whether it was read from the store just now.
    fn target(
        &self,
        store: &store::Store,
        webhook_id: &str,
        reload: bool,
    ) -> Result<Option<(Target, bool)>, Refusal> {
        if !reload {
            if let Some(t) = lock(&self.targets).get(webhook_id) {
                if t.loaded.elapsed() < TARGET_TTL {
                    return Ok(Some((t.clone(), false)));
                }
            }
        }
        let sources = store
            .list_sources()
            .map_err(|e| Refusal::Unavailable(e.to_string()))?;
        let found = sources.into_iter().find(|s| {
            SourceOptions::of(s)
                .realtime
                .is_some_and(|r| r.webhook_id == webhook_id)
        });
        let Some(source) = found else {
            lock(&self.targets).remove(webhook_id);
            return Ok(None);
        };
        let token = store
            .webhook_token(&source.id)
            .map_err(|e| Refusal::Unavailable(e.to_string()))?;
        let target = Target {
            source_id: source.id,
            token,
            loaded: Instant::now(),
        };
        lock(&self.targets).insert(webhook_id.to_string(), target.clone());
        Ok(Some((target, true)))
    }

    /// Wake the worker of `source_id`, starting it when there is none (needs a tokio runtime).
    pub fn wake(&self, flows: &Flows, source_id: &str) {
        let mut workers = lock(&self.workers);
        if let Some(wake) = workers.get(source_id) {
            wake.notify_one();
            return;
        }
        let wake = Arc::new(Notify::new());
        workers.insert(source_id.to_string(), wake.clone());
        drop(workers);
        let flows = flows.clone();
        let id = source_id.to_string();
        tokio::spawn(async move {
            worker(&flows, &id, &wake).await;
            lock(&flows.realtime.workers).remove(&id);
        });
    }

    /// Start the workers of every source with events left in the queue (a `serve` that
    /// stopped after accepting them and before writing them); returns how many.
    pub fn replay(&self, flows: &Flows) -> usize {
        match flows.store.sources_with_pending_webhooks() {
            Ok(ids) => {
                for id in &ids {
                    self.wake(flows, id);
                }
                if !ids.is_empty() {
                    tracing::info!(
                        sources = ids.len(),
                        "replaying webhook events accepted before the last stop"
                    );
                }
                ids.len()
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the queue of webhook events");
                0
            }
        }
    }
}

/// Accept one webhook event for `webhook_id`: check the size and the verification token
/// (header `X-Verification-Token` if sent, else the body's `token`), parse it, queue it
/// durably and wake the source's worker. The body is never logged.
pub fn accept(
    flows: &Flows,
    webhook_id: &str,
    header_token: Option<&str>,
    body: &[u8],
) -> Result<Accepted, Refusal> {
    let result = accept_inner(flows, webhook_id, header_token, body);
    match &result {
        Ok(Accepted::Queued) => count("accepted"),
        Ok(Accepted::Duplicate) => count("duplicate"),
        Err(Refusal::Unauthorized) => count("rejected"),
        Err(Refusal::TooLarge) => count("too_large"),
        Err(Refusal::Invalid(_)) => count("invalid"),
        Err(Refusal::UnknownWebhook | Refusal::Unavailable(_)) => {}
    }
    result
}

fn accept_inner(
    flows: &Flows,
    webhook_id: &str,
    header_token: Option<&str>,
    body: &[u8],
) -> Result<Accepted, Refusal> {
    if body.len() > MAX_EVENT_BYTES {
        return Err(Refusal::TooLarge);
    }
    let parsed = parse_event(body);
    let given = match (header_token, &parsed) {
        (Some(h), _) => Some(h.to_string()),
        (None, Ok((_, body_token))) => body_token.clone(),
        (None, Err(_)) => None,
    };
    let matches = |target: &Target| matches!((&target.token, &given), (Some(expected), Some(g)) if token_matches(expected, g));
    let (mut target, fresh) = flows
        .realtime
        .target(&flows.store, webhook_id, false)?
        .ok_or(Refusal::UnknownWebhook)?;
    if !matches(&target) && !fresh {
        // The token may have changed in another process (CLI `sources update NAME
        // --realtime --verification-token-env VAR` beside a running `serve`): read it again
        // before refusing, so the new token works at once and the old one stops.
        target = flows
            .realtime
            .target(&flows.store, webhook_id, true)?
            .ok_or(Refusal::UnknownWebhook)?
            .0;
    }
    if !matches(&target) {
        tracing::warn!(
            source = %target.source_id,
            "webhook event refused: missing or wrong verification token"
        );
        return Err(Refusal::Unauthorized);
    }
    let (event, _) = parsed.map_err(Refusal::Invalid)?;
    let text =
        std::str::from_utf8(body).map_err(|_| Refusal::Invalid("the body is not UTF-8".into()))?;
    let event_at = event.event_at.unwrap_or_else(now_ms);
    let done = flows
        .store
        .enqueue_webhook(
            &target.source_id,
            &event.dedup_key,
            &event.event_type,
            text,
            event_at,
        )
        .map_err(|e| Refusal::Unavailable(e.to_string()))?;
    match done {
        Enqueued::Queued => {
            flows.realtime.wake(flows, &target.source_id);
            Ok(Accepted::Queued)
        }
        Enqueued::Duplicate => Ok(Accepted::Duplicate),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What the worker of one source holds open: the source's client and sink.
struct Open {
    /// The source's `updated_at` when opened: any change to it (sink, streams, credential,
    /// real time off) re-opens the worker.
    updated_at: i64,
    client: drift_client::Client,
    sink: Box<dyn Sink>,
    streams: BTreeSet<String>,
    scope: String,
}

/// Why the worker stops or waits.
enum OpenError {
    /// The source is gone or no longer real time: the worker ends.
    Gone,
    /// Something to fix (credential, sink): retried later.
    Retry(String),
}

async fn open(flows: &Flows, source_id: &str) -> Result<Open, OpenError> {
    let source = match flows.store.source(source_id) {
        Ok(s) => s,
        Err(store::StoreError::NotFound { .. }) => return Err(OpenError::Gone),
        Err(e) => return Err(OpenError::Retry(e.to_string())),
    };
    let options = SourceOptions::of(&source);
    if options.realtime.is_none() {
        // Turned off (maybe by another process, whose `disable_in` dropped the queue):
        // events this `serve` accepted meanwhile, with its cached token, go too.
        if let Err(e) = flows.store.drop_webhooks(source_id) {
            tracing::warn!(source = %source_id, error = %e, "cannot drop the webhook queue of a source no longer real time");
        }
        return Err(OpenError::Gone);
    }
    let retry = |e: String| OpenError::Retry(e);
    let credential = source
        .credential
        .clone()
        .ok_or_else(|| retry("the data source has no credential".into()))?;
    let credential = flows
        .store
        .credential(&credential)
        .map_err(|e| retry(e.to_string()))?;
    if let Some(refused) = flows.addresses.check_base_url(&credential.base_url) {
        return Err(retry(refused.message));
    }
    let auth = DriftAuth::of(&flows.store, &credential).map_err(|e| retry(e.to_string()))?;
    let client = auth
        .client(&credential.base_url, flows.addresses)
        .rate_limit_per_min(credential.rate_limit_per_min)
        .share_budget(flows.store.budget_share(&credential))
        .build()
        .map_err(|e| retry(AddressPolicy::explain(&e)))?;
    let secret = flows
        .store
        .source_sink_secret(&source.id)
        .map_err(|e| retry(e.to_string()))?;
    let sink = crate::sink_secret::join(&options.sink, secret.as_ref()).map_err(retry)?;
    let spec: sinks::SinkSpec = sink.parse().map_err(retry)?;
    if let Some(message) = crate::sink_paths::refusal(&spec, flows.store.data_dir()) {
        return Err(retry(message));
    }
    let mut sink =
        sinks::open_with(&spec, sinks::OpenOptions::default()).map_err(|e| retry(e.to_string()))?;
    sink.check().await.map_err(|e| retry(e.to_string()))?;
    let mode = options
        .mode
        .parse()
        .unwrap_or(sync_core::SyncMode::Incremental);
    let selected = source_drift::catalog()
        .select(&source.streams, mode)
        .map_err(|e| retry(e.to_string()))?;
    let streams: Vec<Stream> = selected.iter().map(|s| s.stream.clone()).collect();
    sink.prepare(&streams)
        .await
        .map_err(|e| retry(e.to_string()))?;
    Ok(Open {
        updated_at: source.updated_at,
        client,
        sink,
        streams: streams.into_iter().map(|s| s.name).collect(),
        scope: format!("drift:{}", credential.id),
    })
}

/// The worker of one source: drain the queue, at most every [`FLUSH_INTERVAL`], until the
/// source is gone or no longer real time. Failures (credential, sink) are logged and
/// retried every few seconds; the events wait in the queue.
async fn worker(flows: &Flows, source_id: &str, wake: &Notify) {
    let mut last_flush = Instant::now() - FLUSH_INTERVAL;
    'reopen: loop {
        let mut open = match open(flows, source_id).await {
            Ok(o) => o,
            Err(OpenError::Gone) => return,
            Err(OpenError::Retry(e)) => {
                tracing::warn!(source = %source_id, error = %e,
                    "real-time data source cannot write its webhook events; retrying in 5 s");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        loop {
            let wait = FLUSH_INTERVAL
                .saturating_sub(last_flush.elapsed())
                .max(COALESCE);
            tokio::time::sleep(wait).await;
            let events = match flows.store.pending_webhooks(source_id, BATCH_EVENTS) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(source = %source_id, error = %e, "cannot read the webhook queue");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if events.is_empty() {
                // Woken by an event or a change of the source (or every 30 s): re-open when
                // the source changed or is gone (then the worker ends).
                let _ = tokio::time::timeout(Duration::from_secs(30), wake.notified()).await;
                if changed(flows, source_id, &open) {
                    continue 'reopen;
                }
                continue;
            }
            last_flush = Instant::now();
            if let Err(e) = write_batch(flows, &mut open, &events).await {
                tracing::warn!(source = %source_id, error = %e,
                    "webhook events not written (kept in the queue); retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue 'reopen;
            }
        }
    }
}

fn changed(flows: &Flows, source_id: &str, open: &Open) -> bool {
    match flows.store.source(source_id) {
        Ok(s) => s.updated_at != open.updated_at,
        Err(_) => true,
    }
}

/// What one batch of events asks for.
#[derive(Default)]
struct Plan {
    /// Records the events carry (messages, meetings), with the queue id of their event.
    carried: Vec<(i64, Record)>,
    quarantined: Vec<Quarantined>,
    /// Conversations to read again -> the events waiting for them.
    conversations: HashMap<i64, Vec<i64>>,
    /// Conversations whose messages to read (a `new_message` without its message).
    messages_of: HashMap<i64, Vec<i64>>,
    /// Contacts to read again -> the events waiting for them.
    contacts: HashMap<i64, Vec<i64>>,
    /// Events that need nothing (unknown type, stream not selected).
    nothing: Vec<i64>,
}

fn record_of<T: serde::Serialize>(stream: &str, model: &T) -> Option<Record> {
    match serde_json::to_value(model) {
        Ok(Value::Object(map)) => Some(Record::new(stream, map)),
        _ => None,
    }
}

/// Turn events into the records they carry and the reads they need (pure; only the streams
/// in `streams`).
fn plan(events: &[WebhookEvent], streams: &BTreeSet<String>) -> Plan {
    let has = |s: &str| streams.contains(s);
    let mut plan = Plan::default();
    for ev in events {
        let Ok((event, _)) = parse_event(ev.body.as_bytes()) else {
            plan.nothing.push(ev.id);
            continue;
        };
        let data = &event.data;
        let mut wants = false;
        match event.event_type.as_str() {
            "new_message" | "new_command_message" => {
                let endpoint = format!("webhook.{}", event.event_type);
                if has("messages") {
                    if let Some(m) = message_of(data) {
                        match drift_client::decode_pushed_message(
                            &endpoint,
                            &Value::Object(m.clone()),
                        ) {
                            Ok(msg) => {
                                if let Some(r) = record_of("messages", &msg) {
                                    plan.carried.push((ev.id, r));
                                    wants = true;
                                }
                            }
                            Err(unfit) => {
                                plan.quarantined.push(Quarantined::new(
                                    "messages",
                                    unfit.key.clone(),
                                    unfit.reason.clone(),
                                    unfit.raw.clone(),
                                ));
                            }
                        }
                    } else if let Some(c) = conversation_of(&event.event_type, data) {
                        plan.messages_of.entry(c).or_default().push(ev.id);
                        wants = true;
                    }
                }
                if has("conversations") || has("contacts") {
                    if let Some(c) = conversation_of(&event.event_type, data) {
                        plan.conversations.entry(c).or_default().push(ev.id);
                        wants = true;
                    }
                }
            }
            "contact_identified" | "contact_updated" => {
                if has("contacts") {
                    if let Some(c) = contact_of(data) {
                        plan.contacts.entry(c).or_default().push(ev.id);
                        wants = true;
                    }
                }
            }
            "new_meeting" => {
                if has("meetings") && data.contains_key("slug") {
                    match drift_client::decode_pushed_meeting(
                        "webhook.new_meeting",
                        &Value::Object(data.clone()),
                    ) {
                        Ok(m) => {
                            if let Some(r) = record_of("meetings", &m) {
                                plan.carried.push((ev.id, r));
                                wants = true;
                            }
                        }
                        Err(unfit) => plan.quarantined.push(Quarantined::new(
                            "meetings",
                            unfit.key.clone(),
                            unfit.reason.clone(),
                            unfit.raw.clone(),
                        )),
                    }
                }
            }
            t if EVENT_TYPES.contains(&t) => {
                if has("conversations") || has("contacts") {
                    if let Some(c) = conversation_of(t, data) {
                        plan.conversations.entry(c).or_default().push(ev.id);
                        wants = true;
                    }
                }
            }
            other => {
                count("unknown_type");
                tracing::info!(event_type = %truncate(other), "webhook event of an unknown type ignored");
            }
        }
        if !wants {
            plan.nothing.push(ev.id);
        }
    }
    plan
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

/// Write one batch: the records the events carry first (one commit, the lowest lag), then
/// what must be read again from Drift (a second commit), then mark the events done with
/// the time their records were committed.
async fn write_batch(
    flows: &Flows,
    open: &mut Open,
    events: &[WebhookEvent],
) -> Result<(), String> {
    let plan = plan(events, &open.streams);
    let event_at: HashMap<i64, i64> = events.iter().map(|e| (e.id, e.event_at)).collect();
    let mut committed: HashMap<i64, i64> = HashMap::new();
    let batch = |records: Vec<Record>, quarantined: Vec<Quarantined>| Batch {
        scope: open.scope.clone(),
        run_id: WEBHOOK_RUN_ID.into(),
        records,
        quarantined,
        ..Batch::default()
    };
    if !plan.carried.is_empty() || !plan.quarantined.is_empty() {
        let ids: Vec<i64> = plan.carried.iter().map(|(id, _)| *id).collect();
        let records = plan.carried.into_iter().map(|(_, r)| r).collect();
        open.sink
            .commit(batch(records, plan.quarantined))
            .await
            .map_err(|e| e.to_string())?;
        let at = now_ms();
        for id in ids {
            committed.insert(id, at);
        }
    }
    // Reads from Drift, concurrently within the client's limit.
    let mut records = Vec::new();
    let mut quarantined = Vec::new();
    let mut waiting: Vec<i64> = Vec::new();
    let client = open.client.clone();
    let want_conversations = open.streams.contains("conversations");
    let want_contacts = open.streams.contains("contacts");
    let mut contacts = plan.contacts;
    let limit = client.max_concurrency().max(1);
    let conv_reads = stream::iter(plan.conversations.into_iter().map(|(id, evs)| {
        let client = client.clone();
        async move { (id, evs, client.conversation(id).await) }
    }));
    let mut conv_reads = conv_reads.buffer_unordered(limit);
    while let Some((id, evs, result)) = conv_reads.next().await {
        match result {
            Ok(conv) => {
                if want_contacts {
                    if let Some(contact) = conv.contact_id {
                        contacts.entry(contact).or_default();
                    }
                }
                if want_conversations {
                    if let Some(r) = record_of("conversations", &conv) {
                        records.push(r);
                    }
                }
                waiting.extend(evs);
            }
            Err(drift_client::Error::NotFound { .. }) => waiting.extend(evs),
            Err(e) => {
                count("failed");
                tracing::warn!(conversation = id, error = %e,
                    "conversation of a webhook event not read; the next incremental sync reads it");
                waiting.extend(evs);
            }
        }
    }
    for (conversation, evs) in plan.messages_of {
        match client.conversation_messages(conversation).await {
            Ok(list) => {
                records.extend(list.items.iter().filter_map(|m| record_of("messages", m)));
                quarantined.extend(list.unfit.iter().map(|u| {
                    Quarantined::new("messages", u.key.clone(), u.reason.clone(), u.raw.clone())
                }));
            }
            Err(e) => {
                count("failed");
                tracing::warn!(conversation, error = %e,
                    "messages of a webhook event not read; the next incremental sync reads them");
            }
        }
        waiting.extend(evs);
    }
    let contact_reads = stream::iter(contacts.into_iter().map(|(id, evs)| {
        let client = client.clone();
        async move { (id, evs, client.contact(id).await) }
    }));
    let mut contact_reads = contact_reads.buffer_unordered(limit);
    while let Some((id, evs, result)) = contact_reads.next().await {
        match result {
            Ok(contact) => {
                if let Some(r) = record_of("contacts", &contact) {
                    records.push(r);
                }
            }
            Err(drift_client::Error::NotFound { .. }) => {
                let mut key = Map::new();
                key.insert("id".into(), Value::from(id));
                records.push(Record::tombstone("contacts", key));
            }
            Err(e) => {
                count("failed");
                tracing::warn!(contact = id, error = %e,
                    "contact of a webhook event not read (without contact_read the sink keeps its last version); the next incremental sync reads it");
            }
        }
        waiting.extend(evs);
    }
    if !records.is_empty() || !quarantined.is_empty() {
        open.sink
            .commit(batch(records, quarantined))
            .await
            .map_err(|e| e.to_string())?;
    }
    let at = now_ms();
    for id in waiting.into_iter().chain(plan.nothing) {
        committed.entry(id).or_insert(at);
    }
    // Done, each at the time its records were committed; lag from Drift's event time.
    let mut by_time: HashMap<i64, Vec<i64>> = HashMap::new();
    for (id, t) in &committed {
        by_time.entry(*t).or_default().push(*id);
        if let Some(e) = event_at.get(id) {
            metrics::histogram!(WEBHOOK_LAG).record((t - e).max(0) as f64 / 1000.0);
        }
    }
    for (t, ids) in by_time {
        flows
            .store
            .finish_webhooks(&ids, t)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Check a verification token: 8 to 512 characters, no spaces or control characters. The
/// error (field `realtime.verification_token`) never repeats it.
pub fn check_token(token: &str) -> Result<(), crate::FlowError> {
    let n = token.chars().count();
    if !(8..=512).contains(&n) || token.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(crate::FlowError::invalid(
            "realtime.verification_token",
            "the verification token must be 8 to 512 characters without spaces; copy it from your Drift app's App Credentials page",
        ));
    }
    Ok(())
}

/// Make data source `source` (id or name) real time with the Drift app's verification
/// `token` (encrypted in the vault, write-only), or change its token: the webhook id is
/// kept when it has one, else a new one is made. The one path for the REST API (through
/// [`enable`]) and the CLI (`sources create|update --realtime --verification-token-env VAR`),
/// which has no [`Flows`]: a `serve` running on the same data directory picks the new token
/// up at the next event (its cache of webhook targets re-reads the store when a token does
/// not match). Errors: an invalid token (field `realtime.verification_token`), the store's
/// and the vault's.
pub fn enable_in(
    store: &store::Store,
    source: &str,
    token: &SecretString,
) -> Result<store::SourceRecord, crate::FlowError> {
    check_token(token.expose_secret())?;
    let record = store.source(source)?;
    let mut options = SourceOptions::of(&record);
    let record = if options.realtime.is_none() {
        options.realtime = Some(crate::sources::RealtimeOptions {
            webhook_id: new_webhook_id(),
        });
        save_options(store, &record.id, &options)?
    } else {
        record
    };
    store.set_webhook_token(&record.id, Some(token))?;
    Ok(record)
}

/// [`enable_in`] on `flows.store`, then forget this process's cached view of the source.
pub fn enable(
    flows: &Flows,
    source: &str,
    token: &SecretString,
) -> Result<store::SourceRecord, crate::FlowError> {
    let record = enable_in(&flows.store, source, token)?;
    flows.realtime.forget(&record.id);
    Ok(record)
}

/// Turn real time off for `source`: its webhook URL stops answering (404), its token and
/// its queue of events not yet written are dropped; schedules and runs are unchanged.
/// Callable without a [`Flows`] (CLI `sources update NAME --no-realtime`); a `serve` running
/// on the same data directory stops accepting the source's events within
/// [`TARGET_TTL`] (its cache of webhook targets), and its worker for the source ends at
/// its next wake.
pub fn disable_in(
    store: &store::Store,
    source: &str,
) -> Result<store::SourceRecord, crate::FlowError> {
    let record = store.source(source)?;
    let mut options = SourceOptions::of(&record);
    let record = if options.realtime.take().is_some() {
        save_options(store, &record.id, &options)?
    } else {
        record
    };
    store.set_webhook_token(&record.id, None)?;
    store.drop_webhooks(&record.id)?;
    Ok(record)
}

/// [`disable_in`] on `flows.store`, then forget this process's cached view of the source.
pub fn disable(flows: &Flows, source: &str) -> Result<store::SourceRecord, crate::FlowError> {
    let record = disable_in(&flows.store, source)?;
    flows.realtime.forget(&record.id);
    Ok(record)
}

fn save_options(
    store: &store::Store,
    id: &str,
    options: &SourceOptions,
) -> Result<store::SourceRecord, crate::FlowError> {
    let config = serde_json::to_value(options)
        .map_err(|e| crate::FlowError::new(crate::ErrorKind::Internal, e.to_string()))?;
    Ok(store.update_source(
        id,
        &store::SourceUpdate {
            config: Some(config),
            ..store::SourceUpdate::default()
        },
    )?)
}

/// What a real-time source shows (`GET /api/v1/sources/{id}`, the source's page, CLI
/// `sources show`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The webhook URL on `base` (see [`webhook_url`]).
    pub webhook_url: String,
    /// Events accepted in the last hour (duplicates not counted).
    pub events_last_hour: u64,
    /// 95th percentile lag, event time to commit, over the last hour; `None` before the
    /// first event written.
    pub lag_ms_p95: Option<i64>,
    /// Events accepted and not written yet.
    pub pending: u64,
}

/// The real-time status of `source` with its webhook URL on `base` (`serve --public-url`,
/// else `http://` + its bind address; `""` gives the path `/webhooks/drift/{id}` alone, as
/// the CLI does when it does not know serve's URL); `None` when it is not real time. The figures read
/// as zero when the store cannot be read.
pub fn status(store: &store::Store, source: &store::SourceRecord, base: &str) -> Option<Status> {
    let rt = SourceOptions::of(source).realtime?;
    let stats = store
        .webhook_stats(&source.id, now_ms())
        .unwrap_or_default();
    Some(Status {
        webhook_url: webhook_url(base, &rt.webhook_id),
        events_last_hour: stats.events_last_hour,
        lag_ms_p95: stats.lag_ms_p95,
        pending: stats.pending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Event {
        parse_event(v.to_string().as_bytes()).unwrap().0
    }

    #[test]
    fn dedup_keys_use_the_message_id_else_type_ids_and_time() {
        let m = parse(
            json!({"type": "new_message", "data": {"id": "42", "conversationId": 7, "createdAt": 5}}),
        );
        assert_eq!(m.dedup_key, "message:42", "digit strings are ids");
        assert_eq!(m.event_at, Some(5));
        let nested = parse(
            json!({"type": "new_message", "data": {"message": {"id": 42, "conversationId": 7}}}),
        );
        assert_eq!(nested.dedup_key, "message:42");
        let c =
            parse(json!({"type": "contact_updated", "data": {"endUserId": 9, "timestamp": 100}}));
        assert_eq!(c.dedup_key, "contact_updated:9:100");
        let again =
            parse(json!({"type": "contact_updated", "data": {"endUserId": 9, "timestamp": 101}}));
        assert_ne!(
            c.dedup_key, again.dedup_key,
            "a later change is another event"
        );
        let conv = parse(json!({"type": "conversation_inactive", "data": {"id": 3}}));
        assert_eq!(conv.dedup_key, "conversation_inactive:3:");
        let odd = parse(json!({"type": "phone_captured", "data": {"phone": "x"}}));
        assert!(odd.dedup_key.starts_with("phone_captured:sha256:"));
    }

    #[test]
    fn bodies_that_are_not_events_name_what_is_missing_never_the_body() {
        let e = parse_event(b"{\"secret-marker\": ").unwrap_err();
        assert!(
            e.contains("not JSON") && !e.contains("secret-marker"),
            "{e}"
        );
        assert!(parse_event(b"[1]").unwrap_err().contains("object"));
        assert!(parse_event(b"{\"data\": {}}")
            .unwrap_err()
            .contains("`type`"));
        let (e, token) = parse_event(b"{\"type\": \"x\", \"token\": \"t\"}").unwrap();
        assert_eq!((e.data.len(), token.as_deref()), (0, Some("t")));
    }

    #[test]
    fn tokens_compare_whole() {
        let t = SecretString::from("abcdefgh-123");
        assert!(token_matches(&t, "abcdefgh-123"));
        assert!(!token_matches(&t, "abcdefgh-12"));
        assert!(!token_matches(&t, "abcdefgh-1234"));
        assert!(!token_matches(&t, ""));
    }

    #[test]
    fn a_batch_plans_the_records_it_carries_and_the_reads_it_needs() {
        let ev = |id: i64, body: Value| WebhookEvent {
            id,
            source_id: "s".into(),
            event_type: String::new(),
            body: body.to_string(),
            event_at: 0,
            received_at: 0,
        };
        let streams: BTreeSet<String> = ["conversations", "messages"].map(String::from).into();
        let plan = plan(
            &[
                ev(
                    1,
                    json!({"type": "new_message", "data": {"id": 5, "conversationId": 7, "createdAt": 1}}),
                ),
                ev(
                    2,
                    json!({"type": "new_message", "data": {"id": 6, "conversationId": 7, "createdAt": 2}}),
                ),
                ev(
                    3,
                    json!({"type": "contact_updated", "data": {"endUserId": 9}}),
                ),
                ev(4, json!({"type": "mystery", "data": {}})),
                ev(
                    5,
                    json!({"type": "new_message", "data": {"id": {"$oid": 1}, "conversationId": 7}}),
                ),
            ],
            &streams,
        );
        assert_eq!(plan.carried.len(), 2);
        assert_eq!(plan.conversations[&7], [1, 2, 5], "one read for all three");
        assert!(plan.contacts.is_empty(), "contacts not selected");
        assert_eq!(plan.nothing, [3, 4]);
        // An id that is no id: the message is not recognised, its conversation is read.
        assert_eq!(plan.messages_of[&7], [5]);
    }
}
