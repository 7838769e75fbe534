//! A cloneable cancellation token (Ctrl-C, shutdown).

use std::sync::Arc;
use tokio::sync::watch;

/// Cancellation token shared by the caller, the engine and the source. Cloning shares the
/// same flag; once cancelled it stays cancelled.
#[derive(Clone, Debug)]
pub struct Cancel {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Cancel {
    fn default() -> Self {
        Self::new()
    }
}

impl Cancel {
    /// A token that is not cancelled yet.
    pub fn new() -> Self {
        let (tx, _rx) = watch::channel(false);
        Self { tx: Arc::new(tx) }
    }

    /// Cancel: every [`Cancel::cancelled`] future completes.
    pub fn cancel(&self) {
        self.tx.send_replace(true);
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        *self.tx.borrow()
    }

    /// A receiver that holds `true` once the token is cancelled (for code that cannot
    /// depend on this crate, e.g. `drift_client::Client::with_stop`).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }

    /// Completes once the token is cancelled (immediately if it already is).
    pub async fn cancelled(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives as long as `self`, so `wait_for` cannot fail while we hold it.
        let _ = rx.wait_for(|c| *c).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancelled_completes_for_every_clone() {
        let c = Cancel::new();
        let c2 = c.clone();
        assert!(!c2.is_cancelled());
        let waiter = tokio::spawn(async move { c2.cancelled().await });
        c.cancel();
        waiter.await.unwrap();
        assert!(c.is_cancelled());
        c.cancelled().await; // already cancelled: returns at once
    }
}
