//! What a source sends to the engine, and the handle it sends it with.

use crate::model::Record;
use crate::sink::Quarantined;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

/// How a stream ended (or that it started).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StreamStatus {
    /// The source began reading the stream.
    Started,
    /// Every record of the stream was emitted (and its final checkpoint, if any).
    Succeeded,
    /// The stream cannot be read with this credential or plan (HTTP 403); the run goes on.
    Unavailable {
        /// Why, e.g. `missing scope account_read`.
        reason: String,
    },
    /// Reading failed; the stream's state was not advanced past what was committed.
    Failed {
        /// Why; never contains a secret.
        error: String,
    },
}

/// Request counters a source attributes to a stream (deltas: the engine adds them up).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestMetrics {
    /// HTTP requests made.
    pub requests: u64,
    /// Responses with status 429.
    pub rate_limited: u64,
    /// Retried requests.
    pub retries: u64,
    /// Time spent waiting for the rate budget or a `Retry-After`, milliseconds.
    pub wait_ms: u64,
}

impl RequestMetrics {
    /// Add `other` to `self`.
    pub fn add(&mut self, other: &RequestMetrics) {
        self.requests += other.requests;
        self.rate_limited += other.rate_limited;
        self.retries += other.retries;
        self.wait_ms += other.wait_ms;
    }
}

/// One message from a source to the engine.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// A record to write (or a tombstone, see [`Record::tombstone`]).
    Record(Record),
    /// A record that does not fit its stream's types: kept in quarantine with the reason.
    /// Counts as read and rejected; the stream goes on.
    Quarantine(Quarantined),
    /// State under `key` that covers every record emitted before this message.
    Checkpoint {
        /// State key (usually the stream name).
        key: String,
        /// The stream this state belongs to (for replace streams: committed with its table).
        stream: String,
        /// Opaque state value.
        state: Value,
    },
    /// A stream started or ended.
    Status {
        /// Stream name.
        stream: String,
        /// New status.
        status: StreamStatus,
    },
    /// How many records the stream is expected to deliver (for progress and ETA).
    Expected {
        /// Stream name.
        stream: String,
        /// Expected record count.
        records: u64,
    },
    /// Request counters to add to a stream's summary.
    Metrics {
        /// Stream name.
        stream: String,
        /// Deltas.
        metrics: RequestMetrics,
    },
}

/// The engine stopped listening (the run was cancelled or failed): stop reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the run stopped accepting records")]
pub struct EmitterClosed;

/// Cheap-to-clone handle a source uses to send messages into the run's bounded channel.
/// Each call waits while the channel is full (backpressure).
#[derive(Clone, Debug)]
pub struct Emitter {
    tx: mpsc::Sender<Message>,
}

impl Emitter {
    /// Wrap a channel sender (the engine does this; tests may too).
    pub fn new(tx: mpsc::Sender<Message>) -> Self {
        Self { tx }
    }

    /// Send any message.
    pub async fn send(&self, msg: Message) -> Result<(), EmitterClosed> {
        self.tx.send(msg).await.map_err(|_| EmitterClosed)
    }

    /// Send a record of `stream` read now.
    pub async fn record(
        &self,
        stream: &str,
        data: Map<String, Value>,
    ) -> Result<(), EmitterClosed> {
        self.send(Message::Record(Record::new(stream, data))).await
    }

    /// Send a tombstone of `stream`: the record with primary key `key` (e.g. `{"id": 42}`)
    /// was deleted in the source.
    pub async fn tombstone(
        &self,
        stream: &str,
        key: Map<String, Value>,
    ) -> Result<(), EmitterClosed> {
        self.send(Message::Record(Record::tombstone(stream, key)))
            .await
    }

    /// Send a record of `stream` to quarantine: `key` when its primary key could be read,
    /// `reason` naming what does not fit, `raw` the record as received (JSON text).
    pub async fn quarantine(
        &self,
        stream: &str,
        key: Option<String>,
        reason: impl Into<String>,
        raw: impl Into<String>,
    ) -> Result<(), EmitterClosed> {
        self.send(Message::Quarantine(Quarantined::new(
            stream, key, reason, raw,
        )))
        .await
    }

    /// Send a checkpoint: `state` under `key`, belonging to `stream`.
    pub async fn checkpoint(
        &self,
        key: &str,
        stream: &str,
        state: Value,
    ) -> Result<(), EmitterClosed> {
        self.send(Message::Checkpoint {
            key: key.to_owned(),
            stream: stream.to_owned(),
            state,
        })
        .await
    }

    /// Send a status change of `stream`.
    pub async fn status(&self, stream: &str, status: StreamStatus) -> Result<(), EmitterClosed> {
        self.send(Message::Status {
            stream: stream.to_owned(),
            status,
        })
        .await
    }

    /// Send request counters of `stream` (skipped when all zero).
    pub async fn metrics(
        &self,
        stream: &str,
        metrics: RequestMetrics,
    ) -> Result<(), EmitterClosed> {
        if metrics == RequestMetrics::default() {
            return Ok(());
        }
        self.send(Message::Metrics {
            stream: stream.to_owned(),
            metrics,
        })
        .await
    }
}
