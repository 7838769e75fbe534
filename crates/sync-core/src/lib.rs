//! Protocol-neutral sync model and run engine: streams, records, state, source and sink
//! traits.
//!
//! A run moves records one way: a [`Source`] reads its streams and sends [`Message`]s (records,
//! checkpoints, stream statuses, request metrics) into a bounded channel through an
//! [`Emitter`]; the engine ([`run_sync`]) groups records into batches and hands each batch to a
//! [`Sink`] together with the state that covers it, so that records and state become
//! durable in one commit. Why this split:
//!
//! - **Checkpoint discipline**: a source emits a checkpoint only after every record it covers
//!   has been emitted; the engine never commits a checkpoint without the records before it.
//!   A run killed at any point therefore resumes from a state that matches the data in the
//!   sink, and upserts on the primary key absorb any record read twice.
//! - **Backpressure**: the channel is bounded, so a slow sink slows the source down
//!   instead of buffering the whole org in memory.
//! - **Cancellation**: a [`Cancel`] token (Ctrl-C) stops the run after the commit in progress;
//!   records received but not yet committed are committed with the state they carry, nothing
//!   half-written is left behind.
//! - **Full refresh**: streams whose [`WriteMode`] is `Replace` are buffered until the stream
//!   succeeds and then committed in one batch (with tombstones for the records that
//!   disappeared), so readers never see a half-read stream.
//!
//! # Vocabulary
//!
//! The words the code, the CLI, the API and the docs use, with the type that stands for each:
//!
//! - **data source**: a configured read from Drift (credential, streams, mode, schedule) into a
//!   sink; its reader implements [`Source`]. A source reads; it never writes into Drift.
//! - **sink**: where a data source's records land (SQLite, PostgreSQL, JSONL, CSV, Parquet):
//!   the [`Sink`] trait, implemented in the `sinks` crate. The CLI flag that names it is
//!   `sync --destination` (a fixed contract); in the code it is always a sink.
//! - **data destination**: the reverse direction, records from a file or table written *into*
//!   Drift (`push`, the `drift-writer` crate). Not a sink.
//! - **stream**: one kind of record a source reads (conversations, messages, ...), with a JSON
//!   Schema, a primary key and maybe a cursor: [`Stream`]; the set of them is a [`Catalog`].
//! - **record**: one object of a stream as read, keyed by its primary key: [`Record`].
//! - **cursor**: the field whose value orders a stream's changes (e.g. `updatedAt`); an
//!   incremental read resumes above the highest value seen ([`Stream::cursor_field`]).
//! - **checkpoint**: the source's [`State`] at a point where every record before it has been
//!   sent ([`Message::Checkpoint`]); a sink commits it in the same transaction as those
//!   records, so a run resumes from exactly what the sink holds.
//! - **full refresh**: read a stream in full ([`SyncMode::FullRefresh`]); streams in
//!   [`WriteMode::Replace`] are committed as one batch when the stream succeeds.
//! - **incremental**: read only what changed since the last checkpoint
//!   ([`SyncMode::Incremental`]).
//! - **upsert**: insert or update by primary key ([`WriteMode::Upsert`]); it makes a record
//!   read twice harmless.
//! - **run**: one execution of a data source (or of a push) with an id written on every row
//!   (`_run_id`) and a record in the run history; [`run_sync`] performs a sync run and
//!   returns its [`RunReport`].
//! - **quarantine**: a record kept aside, with the reason, because it could not be fitted to
//!   its stream's types or the sink refused it ([`Quarantined`], [`Rejected`]): never dropped,
//!   and the cursor moves past it so a re-run is not stuck.
//! - **tombstone**: a record saying "the record with this key was deleted in Drift"
//!   ([`Record::tombstone`]); sinks mark (or delete) the row.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod cancel;
mod engine;
mod error;
mod message;
mod model;
mod progress;
pub mod shape;
mod sink;
mod source;
mod state;

pub use cancel::Cancel;
pub use engine::{run_sync, RunOptions, DEFAULT_BATCH_SIZE, MAX_REPORTED_QUARANTINE};
pub use error::{ErrorKind, RunError};
pub use message::{Emitter, EmitterClosed, Message, RequestMetrics, StreamStatus};
pub use model::{
    epoch_ms_to_rfc3339, key_text, Catalog, ConfiguredStream, Property, PropertyKind, Record,
    Stream, SyncMode, UnknownStream, WriteMode, EPOCH_MS_FORMAT,
};
pub use progress::{ProgressEvent, ProgressFn, RunReport, RunStatus, StreamState, StreamSummary};
pub use shape::{ChildColumn, ChildTable, FlatColumn, Flatten, SYSTEM_COLUMNS};
pub use sink::{Batch, CommitReport, Quarantined, Rejected, Sink};
pub use source::{ReadRequest, Source, SourceError};
pub use state::State;

pub mod testing;
