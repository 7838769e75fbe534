//! The `Source` trait.

use crate::cancel::Cancel;
use crate::error::{ErrorKind, RunError};
use crate::message::{Emitter, EmitterClosed};
use crate::model::{Catalog, ConfiguredStream};
use crate::state::State;
use async_trait::async_trait;

/// What the engine asks a source to read.
#[derive(Clone, Debug)]
pub struct ReadRequest {
    /// Streams to read, in catalog order, each with its mode.
    pub streams: Vec<ConfiguredStream>,
    /// State committed by earlier runs into this sink (empty on the first run).
    pub state: State,
    /// Cancelled when the user asks the run to stop; sources stop at the next await point.
    pub cancel: Cancel,
}

/// A fatal source error: the run stops (after committing what was already received).
/// Per-stream failures that let the run go on are reported with
/// [`crate::StreamStatus::Failed`] / [`crate::StreamStatus::Unavailable`] instead.
pub type SourceError = RunError;

impl From<EmitterClosed> for RunError {
    fn from(e: EmitterClosed) -> Self {
        RunError::new(ErrorKind::Cancelled, None, e.to_string())
    }
}

/// A data source: offers a catalog of streams and reads the requested ones.
#[async_trait]
pub trait Source: Send + Sync + 'static {
    /// The streams this source offers.
    fn catalog(&self) -> Catalog;

    /// Read the requested streams, sending records, checkpoints, statuses and metrics through
    /// `out`. A checkpoint must follow every record it covers. Returns an error only for
    /// failures that end the whole run (e.g. the credential was rejected).
    async fn read(&self, request: ReadRequest, out: Emitter) -> Result<(), SourceError>;
}
