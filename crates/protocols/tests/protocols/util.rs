//! The harness: an in-process sandbox, a config for it, output captured as messages, and a
//! writer that stops accepting lines as a killed process would.

use drift_sandbox::{SandboxConfig, SandboxHandle};
use protocols::{ProtocolConfig, SharedBuffer, Wire};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// The sandbox's full-scope token; it must never appear in any output.
pub const TOKEN: &str = "tok_CANARY_protocols_5e4d3c2b1a";

/// A sandbox (150 conversations, 5 messages each, no rate limit) on a free port.
pub struct Sandbox {
    pub handle: SandboxHandle,
}

impl Sandbox {
    pub async fn start() -> Sandbox {
        let config = SandboxConfig {
            port: 0,
            token: TOKEN.into(),
            conversations: 150,
            rate_limit_per_min: 0,
            ..SandboxConfig::default()
        };
        Sandbox {
            handle: drift_sandbox::start(config).await.unwrap(),
        }
    }

    /// The protocol config for it.
    pub fn config(&self) -> ProtocolConfig {
        ProtocolConfig::from_json(&json!({
            "access_token": TOKEN, "base_url": self.handle.base_url(),
            "rate_limit_per_min": 100000}))
        .unwrap()
    }

    /// `GET /__sandbox/counts`.
    pub async fn counts(&self) -> Value {
        reqwest::get(format!("{}/__sandbox/counts", self.handle.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// A writer that takes `lines` whole lines, then fails every write (a reader that stopped:
/// what a platform sees of a process killed at that point).
#[derive(Clone)]
pub struct CutAfter {
    pub buffer: SharedBuffer,
    left: Arc<Mutex<usize>>,
}

impl CutAfter {
    pub fn new(lines: usize) -> CutAfter {
        CutAfter {
            buffer: SharedBuffer::default(),
            left: Arc::new(Mutex::new(lines)),
        }
    }
}

impl Write for CutAfter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut left = self.left.lock().unwrap();
        if *left == 0 {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        if buf.contains(&b'\n') {
            *left -= 1;
        }
        self.buffer.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A capture and a wire writing into it.
pub fn capture() -> (SharedBuffer, Wire) {
    let buffer = SharedBuffer::default();
    (buffer.clone(), Wire::new(buffer))
}

/// Small pages checkpointed after each page, so a read has many STATE messages.
pub fn small_pages() -> source_drift::DriftSourceConfig {
    source_drift::DriftSourceConfig {
        page_size: 10,
        checkpoint_interval_ms: 0,
        ..Default::default()
    }
}

/// No secret of the sandbox in `text`.
pub fn assert_no_secret(text: &str) {
    assert!(!text.contains(TOKEN), "the token leaked: {text}");
}
