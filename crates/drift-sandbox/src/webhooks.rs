//! Webhook events from the sandbox (issue 22): every mutation that creates a conversation or
//! a message, or updates a contact, POSTs the matching Drift event (REFERENCE §7.9 shape:
//! `{"type", "token", "orgId", "data"}` with the token also in `X-Verification-Token`) to the
//! configured URL, so a real-time data source is tested offline.
//!
//! Set at start (`driftbridge sandbox --webhook-url URL --webhook-token T`) or at run time
//! (`POST /__sandbox/webhooks {"url", "token"}`; `{"url": null}` stops sending). Faults:
//! `duplicates` (each event is sent a second time with this probability) and `reorder`
//! (the events of one mutation are sent in a shuffled order). Events go out from one task,
//! at most [`IN_FLIGHT`] at a time, in the background of the mutation that caused them.
//!
//! The URL must be http(s) on loopback or a public address: private, link-local and other
//! internal addresses are refused (the sandbox is a local tool; it must not be a way to
//! reach a private network).

use crate::config::ORG_ID;
use crate::org::{int, Message, Obj, Org};
use crate::state::{lock, App};
use futures::StreamExt;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Requests in flight at once.
pub const IN_FLIGHT: usize = 8;

/// Where events go and which faults apply.
#[derive(Clone, Default, PartialEq)]
pub struct WebhookSettings {
    /// Request URL; `None`: no events are sent.
    pub url: Option<String>,
    /// Verification token sent in the body and the `X-Verification-Token` header.
    pub token: String,
    /// Probability (0 to 1) that an event is delivered twice.
    pub duplicates: f64,
    /// Shuffle the events of each mutation.
    pub reorder: bool,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.url)
            .field("token", &"••••")
            .field("duplicates", &self.duplicates)
            .field("reorder", &self.reorder)
            .finish()
    }
}

/// The sender side held by the sandbox state.
pub struct Webhooks {
    settings: Mutex<WebhookSettings>,
    tx: mpsc::UnboundedSender<Vec<Value>>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Vec<Value>>>>,
    /// Deliveries answered 2xx.
    pub delivered: AtomicU64,
    /// Deliveries that failed (no answer, or not 2xx).
    pub failed: AtomicU64,
    /// Extra deliveries sent by the `duplicates` fault.
    pub duplicated: AtomicU64,
}

impl Webhooks {
    /// Sender with `settings` (not sending until [`spawn`] runs).
    pub fn new(settings: WebhookSettings) -> Webhooks {
        let (tx, rx) = mpsc::unbounded_channel();
        Webhooks {
            settings: Mutex::new(settings),
            tx,
            rx: Mutex::new(Some(rx)),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            duplicated: AtomicU64::new(0),
        }
    }

    /// The current settings.
    pub fn settings(&self) -> WebhookSettings {
        lock(&self.settings).clone()
    }

    /// Replace the URL and token (faults stay). Errors: the URL's refusal.
    pub fn set(&self, url: Option<String>, token: Option<String>) -> Result<(), String> {
        if let Some(u) = &url {
            check_url(u)?;
        }
        let mut s = lock(&self.settings);
        s.url = url;
        if let Some(t) = token {
            s.token = t;
        }
        Ok(())
    }

    /// Change the faults (`None` leaves one as it is).
    pub fn set_faults(&self, duplicates: Option<f64>, reorder: Option<bool>) {
        let mut s = lock(&self.settings);
        if let Some(p) = duplicates {
            s.duplicates = p;
        }
        if let Some(r) = reorder {
            s.reorder = r;
        }
    }

    /// True when events are being sent.
    pub fn enabled(&self) -> bool {
        lock(&self.settings).url.is_some()
    }

    /// Queue events (`(type, data)`) of one mutation.
    pub fn emit(&self, events: Vec<(&'static str, Value)>) {
        if events.is_empty() || !self.enabled() {
            return;
        }
        let bodies = events
            .into_iter()
            .map(|(t, data)| json!({"type": t, "orgId": ORG_ID, "data": data}))
            .collect();
        let _ = self.tx.send(bodies);
    }

    /// Counters for `GET /__sandbox/webhooks`.
    pub fn json(&self) -> Value {
        let s = self.settings();
        json!({"url": s.url, "duplicates": s.duplicates, "reorder": s.reorder,
            "delivered": self.delivered.load(Ordering::Relaxed),
            "failed": self.failed.load(Ordering::Relaxed),
            "duplicated": self.duplicated.load(Ordering::Relaxed)})
    }
}

/// Refuse a URL that is not http(s), or whose host is (or resolves to) an internal address
/// other than loopback.
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("url: not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("url: must be http:// or https://".into());
    }
    let host = parsed
        .host_str()
        .ok_or("url: has no host")?
        .trim_matches(|c| c == '[' || c == ']')
        .to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("url: cannot resolve {host} ({e})"))?
            .map(|a| a.ip())
            .collect(),
    };
    match addrs.iter().find(|ip| internal(ip)) {
        Some(ip) => Err(format!(
            "url: {ip} is a private or internal address; the sandbox sends webhooks only to loopback or public addresses"
        )),
        None => Ok(()),
    }
}

fn internal(ip: &IpAddr) -> bool {
    if ip.is_loopback() {
        return false;
    }
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return internal(&IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_unspecified() || (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Start the task that delivers the events (once; later calls do nothing).
pub fn spawn(app: Arc<App>) {
    let Some(mut rx) = lock(&app.webhooks.rx).take() else {
        return;
    };
    let client = match reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "sandbox cannot send webhooks");
            return;
        }
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(app.config.seed ^ 0x5eed_4ebb);
    tokio::spawn(async move {
        while let Some(mut events) = rx.recv().await {
            // Take what else is waiting too, so faults and concurrency span mutations.
            while let Ok(more) = rx.try_recv() {
                events.extend(more);
            }
            let settings = app.webhooks.settings();
            let Some(url) = settings.url.clone() else {
                continue;
            };
            let mut out = Vec::with_capacity(events.len());
            for mut e in events {
                e["token"] = json!(settings.token);
                if settings.duplicates > 0.0 && rng.random_bool(settings.duplicates.min(1.0)) {
                    out.push(e.clone());
                    app.webhooks.duplicated.fetch_add(1, Ordering::Relaxed);
                }
                out.push(e);
            }
            if settings.reorder {
                out.shuffle(&mut rng);
            }
            let sends = futures::stream::iter(out.into_iter().map(|e| {
                let client = client.clone();
                let url = url.clone();
                let token = settings.token.clone();
                async move {
                    client
                        .post(url)
                        .header("X-Verification-Token", token)
                        .json(&e)
                        .send()
                        .await
                        .map(|r| r.status().is_success())
                        .unwrap_or(false)
                }
            }))
            .buffer_unordered(IN_FLIGHT);
            futures::pin_mut!(sends);
            while let Some(ok) = sends.next().await {
                let counter = if ok {
                    &app.webhooks.delivered
                } else {
                    &app.webhooks.failed
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
}

/// `attributes.name` of every contact (the `previous` of a rename's diff).
pub fn contact_names(org: &Org) -> HashMap<i64, Value> {
    org.contacts
        .iter()
        .map(|(id, c)| {
            let name = c
                .get("attributes")
                .and_then(|a| a.get("name"))
                .cloned()
                .unwrap_or(Value::Null);
            (*id, name)
        })
        .collect()
}

/// The events of one mutation ([`crate::mutate::apply`]'s answer `changed`): for each new
/// conversation `new_conversation` and a `new_message` per message; `new_message` for each
/// new message; `contact_updated` (with the `diff` of `attributes.name`) for each renamed
/// contact. `names`: contact names before the mutation.
pub fn mutation_events(
    org: &Org,
    changed: &Value,
    names: &HashMap<i64, Value>,
    now: i64,
) -> Vec<(&'static str, Value)> {
    let ids = |k: &str| -> Vec<i64> {
        changed
            .get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default()
    };
    let mut events = Vec::new();
    for id in ids("new_conversations") {
        if let Some((i, c)) = org.conversation(id) {
            events.extend(conversation_events(c, &org.messages[i]));
        }
    }
    let wanted: std::collections::HashSet<i64> = ids("new_messages").into_iter().collect();
    if !wanted.is_empty() {
        for m in org
            .messages
            .iter()
            .flatten()
            .filter(|m| wanted.contains(&m.id))
        {
            events.push(("new_message", m.to_json()));
        }
    }
    for id in ids("rename_contacts") {
        if let Some(c) = org.contacts.get(&id) {
            events.push(contact_updated(id, c, names.get(&id).cloned(), now));
        }
    }
    events
}

/// `new_conversation` and one `new_message` per message of a conversation just created.
pub fn conversation_events(conversation: &Obj, messages: &[Message]) -> Vec<(&'static str, Value)> {
    let id = int(conversation, "id");
    let mut events = vec![(
        "new_conversation",
        json!({"conversationId": id, "id": id,
            "contactId": conversation.get("contactId").cloned().unwrap_or(Value::Null),
            "createdAt": conversation.get("createdAt").cloned().unwrap_or(Value::Null)}),
    )];
    events.extend(messages.iter().map(|m| ("new_message", m.to_json())));
    events
}

/// `contact_updated` for contact `id` whose `attributes.name` changed from `previous`.
pub fn contact_updated(
    id: i64,
    contact: &Obj,
    previous: Option<Value>,
    now: i64,
) -> (&'static str, Value) {
    let updated = contact
        .get("attributes")
        .and_then(|a| a.get("name"))
        .cloned()
        .unwrap_or(Value::Null);
    (
        "contact_updated",
        json!({"endUserId": id, "timestamp": now, "orgId": ORG_ID,
            "diff": [{"name": "attributes.name", "previous": previous.unwrap_or(Value::Null), "updated": updated}]}),
    )
}
