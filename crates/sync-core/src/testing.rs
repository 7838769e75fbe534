//! Test doubles usable by any crate: a source that plays a script of messages.

use crate::message::{Emitter, Message};
use crate::model::Catalog;
use crate::source::{ReadRequest, Source, SourceError};
use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One step of a [`ScriptedSource`].
#[derive(Clone, Debug)]
pub enum Step {
    /// Send this message.
    Send(Message),
    /// Sleep (lets the engine's flush timer or a cancellation happen).
    Sleep(Duration),
    /// End `read` with this error.
    Fail(SourceError),
}

/// A source that plays its steps in order, for tests of the engine and sinks.
/// Records the state it was given, so tests can check what a resumed run starts from.
pub struct ScriptedSource {
    catalog: Catalog,
    steps: Vec<Step>,
    seen_state: Arc<Mutex<Option<crate::State>>>,
}

impl ScriptedSource {
    /// A source offering `catalog` that plays `steps` on every read.
    pub fn new(catalog: Catalog, steps: Vec<Step>) -> Self {
        Self {
            catalog,
            steps,
            seen_state: Arc::new(Mutex::new(None)),
        }
    }

    /// The state passed to the last `read`, if any.
    pub fn seen_state(&self) -> Option<crate::State> {
        self.seen_state.lock().ok().and_then(|s| s.clone())
    }
}

#[async_trait]
impl Source for ScriptedSource {
    fn catalog(&self) -> Catalog {
        self.catalog.clone()
    }

    async fn read(&self, request: ReadRequest, out: Emitter) -> Result<(), SourceError> {
        if let Ok(mut seen) = self.seen_state.lock() {
            *seen = Some(request.state.clone());
        }
        for step in &self.steps {
            match step {
                Step::Send(msg) => out.send(msg.clone()).await?,
                Step::Sleep(d) => tokio::time::sleep(*d).await,
                Step::Fail(e) => return Err(e.clone()),
            }
        }
        Ok(())
    }
}
