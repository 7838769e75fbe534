//! Protocol-neutral sync model and run engine: streams, records, state, source and destination
//! traits.
//!
//! A run moves records one way: a [`Source`] reads its streams and sends [`Message`]s (records,
//! checkpoints, stream statuses, request metrics) into a bounded channel through an
//! [`Emitter`]; the engine ([`run_sync`]) groups records into batches and hands each batch to a
//! [`Destination`] together with the state that covers it, so that records and state become
//! durable in one commit. Why this split:
//!
//! - **Checkpoint discipline**: a source emits a checkpoint only after every record it covers
//!   has been emitted; the engine never commits a checkpoint without the records before it.
//!   A run killed at any point therefore resumes from a state that matches the data in the
//!   sink, and upserts on the primary key absorb any record read twice.
//! - **Backpressure**: the channel is bounded, so a slow destination slows the source down
//!   instead of buffering the whole org in memory.
//! - **Cancellation**: a [`Cancel`] token (Ctrl-C) stops the run after the commit in progress;
//!   records received but not yet committed are committed with the state they carry, nothing
//!   half-written is left behind.
//! - **Full refresh**: streams whose [`WriteMode`] is `Replace` are buffered until the stream
//!   succeeds and then committed in one batch (with tombstones for the records that
//!   disappeared), so readers never see a half-read stream.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod cancel;
mod destination;
mod engine;
mod error;
mod message;
mod model;
mod progress;
mod source;
mod state;

pub use cancel::Cancel;
pub use destination::{Batch, CommitReport, Destination, Quarantined, Rejected};
pub use engine::{run_sync, RunOptions, MAX_REPORTED_QUARANTINE};
pub use error::{ErrorKind, RunError};
pub use message::{Emitter, EmitterClosed, Message, RequestMetrics, StreamStatus};
pub use model::{
    epoch_ms_to_rfc3339, key_text, Catalog, ConfiguredStream, Property, PropertyKind, Record,
    Stream, SyncMode, UnknownStream, WriteMode, EPOCH_MS_FORMAT,
};
pub use progress::{ProgressEvent, ProgressFn, RunReport, RunStatus, StreamState, StreamSummary};
pub use source::{ReadRequest, Source, SourceError};
pub use state::State;

pub mod testing;
