//! The push ledger in the metadata store: fingerprints of timeline events and conversations
//! already sent with a credential, so re-running the same input does not send them twice
//! (Drift cannot be asked whether they exist). Kept in the store's `stream_state` table under
//! the scope `push-ledger:<credential id>:<object>`, one row per fingerprint: `{"drift_id"}`
//! for a write made, `{"uncertain": error}` for an attempt that may or may not have landed
//! (a re-run does not send that row again unless `--resend-uncertain`).
//!
//! Every push keeps it, whichever edge started it ([`crate::pusher::PushRun`]): a timeline
//! CSV uploaded and pushed again from the web UI or the API is not sent twice either.

use drift_writer::{Ledger, Object};
use std::sync::Arc;
use store::Store;

/// A [`Ledger`] over the metadata store.
pub struct StoreLedger {
    store: Arc<Store>,
    scope: String,
}

impl StoreLedger {
    /// The ledger of `object` writes made with credential `credential_id`.
    pub fn new(store: Arc<Store>, credential_id: &str, object: Object) -> StoreLedger {
        StoreLedger {
            store,
            scope: format!("push-ledger:{credential_id}:{}", object.as_str()),
        }
    }
}

impl StoreLedger {
    /// The entry of `fingerprint`, if any.
    fn entry(&self, fingerprint: &str) -> Result<Option<serde_json::Value>, String> {
        self.store
            .stream_state(&self.scope, fingerprint)
            .map_err(|e| e.to_string())
    }

    /// Replaces the entry of `fingerprint` with `{field: value, "sent_at": now}`.
    fn record(&self, fingerprint: &str, field: &str, value: &str) -> Result<(), String> {
        let state = serde_json::json!({
            field: value,
            "sent_at": chrono::Utc::now().timestamp_millis(),
        });
        self.store
            .put_stream_state(&self.scope, fingerprint, &state)
            .map_err(|e| e.to_string())
    }
}

impl Ledger for StoreLedger {
    fn get(&self, fingerprint: &str) -> Result<Option<String>, String> {
        let state = self.entry(fingerprint)?;
        // An uncertain attempt is not a write: `uncertain` reports it.
        Ok(state.filter(|v| v.get("uncertain").is_none()).map(|v| {
            v.get("drift_id")
                .and_then(|d| d.as_str())
                .unwrap_or_default()
                .to_string()
        }))
    }

    fn uncertain(&self, fingerprint: &str) -> Result<Option<String>, String> {
        let state = self.entry(fingerprint)?;
        Ok(state.and_then(|v| {
            v.get("uncertain")
                .map(|u| u.as_str().unwrap_or_default().to_string())
        }))
    }

    fn put_uncertain(&self, fingerprint: &str, error: &str) -> Result<(), String> {
        self.record(fingerprint, "uncertain", error)
    }

    fn put(&self, fingerprint: &str, drift_id: &str) -> Result<(), String> {
        self.record(fingerprint, "drift_id", drift_id)
    }
}
