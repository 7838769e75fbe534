//! Where protocol messages go: one JSON object per line, shared by the sink (records, state)
//! and the run's progress callback (stream statuses), so lines never interleave.

use serde_json::Value;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// A line-oriented JSON writer (stdout in the CLI, a buffer in tests). Cheap to clone; each
/// call writes whole lines and flushes, so a reader (Airbyte, a Singer target) sees every
/// message as soon as it is complete.
#[derive(Clone)]
pub struct Wire {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wire")
    }
}

impl Wire {
    /// Lines into `out`.
    pub fn new(out: impl Write + Send + 'static) -> Wire {
        Wire {
            out: Arc::new(Mutex::new(Box::new(out))),
        }
    }

    /// Lines on this process's stdout (buffered; flushed after each call).
    pub fn stdout() -> Wire {
        Wire::new(std::io::BufWriter::new(std::io::stdout()))
    }

    /// Write one message as one line.
    ///
    /// Errors: the writer's (e.g. a closed pipe: the platform stopped reading).
    pub fn send(&self, message: &Value) -> std::io::Result<()> {
        self.send_all(std::slice::from_ref(message))
    }

    /// Write `messages`, one line each, in order, then flush.
    ///
    /// Errors: the writer's.
    pub fn send_all(&self, messages: &[Value]) -> std::io::Result<()> {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        for m in messages {
            serde_json::to_writer(&mut *out, m)?;
            out.write_all(b"\n")?;
        }
        out.flush()
    }
}

/// A `Write` into a shared buffer, for tests and for capturing output in process.
#[derive(Clone, Debug, Default)]
pub struct SharedBuffer(pub Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    /// The lines written so far, parsed (lines that are not JSON are skipped).
    pub fn messages(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
