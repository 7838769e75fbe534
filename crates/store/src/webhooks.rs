//! Real-time data sources (issue 22): the verification token of a source's Drift app and the
//! durable queue of the webhook events `serve` accepted (table `webhook_events`, migration
//! V8).
//!
//! Accept-then-process: the endpoint inserts the event in one short transaction and answers
//! 200; a worker reads the pending events ([`Store::pending_webhooks`]), commits their
//! records to the sink, and only then marks them done ([`Store::finish_webhooks`]). A
//! process killed in between leaves them pending, and the next worker replays them (the
//! sinks' upserts make the replay harmless). The verification token is encrypted in the vault
//! like an API key (owner = the source's id, field [`WEBHOOK_TOKEN_FIELD`]), write-only, and
//! deleted with the source.

use crate::error::{Result, StoreError};
use crate::{now_ms, vault, Store};
use rusqlite::{params, OptionalExtension};
use secrecy::SecretString;

/// Vault field of a real-time data source's verification token.
pub const WEBHOOK_TOKEN_FIELD: &str = "webhook_token";

/// How long done events are kept (deduplication window, figures), milliseconds: 2 hours.
pub const KEEP_DONE_MS: i64 = 2 * 3600 * 1000;

/// One queued webhook event. Times are epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// Queue position (increasing in order of receipt).
    pub id: i64,
    /// The data source it was sent to.
    pub source_id: String,
    /// Drift's event type (`new_message`, `contact_updated`, ...).
    pub event_type: String,
    /// The event's JSON as received (may hold personal data: never log it).
    pub body: String,
    /// Drift's time of the event (its `createdAt`/`timestamp`), else the receipt time.
    pub event_at: i64,
    /// When `serve` accepted it.
    pub received_at: i64,
}

/// What [`Store::enqueue_webhook`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored; a worker will write its records.
    Queued,
    /// An event with the same key was received in the last two hours: not stored again.
    Duplicate,
}

/// Figures of a real-time data source over the last hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookStats {
    /// Events accepted (duplicates not counted).
    pub events_last_hour: u64,
    /// 95th percentile of the lag from Drift's event time to the commit of its records,
    /// milliseconds; `None` when no event was written in the last hour.
    pub lag_ms_p95: Option<i64>,
    /// Events accepted and not yet written.
    pub pending: u64,
}

impl Store {
    /// Store (`Some`) or remove (`None`) the verification token of data source `source_id`.
    /// Errors: the vault's ([`StoreError::WrongMasterKey`], [`StoreError::MasterKey`]).
    pub fn set_webhook_token(&self, source_id: &str, token: Option<&SecretString>) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        match token {
            Some(token) => {
                let vault = vault::unlock(&tx, &self.key_source(), &self.data_dir)?;
                vault::put_secret(&tx, &vault, source_id, WEBHOOK_TOKEN_FIELD, token)?;
            }
            None => {
                tx.execute(
                    "DELETE FROM secrets WHERE owner_id = ?1 AND field = ?2",
                    params![source_id, WEBHOOK_TOKEN_FIELD],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The verification token of data source `source_id`, decrypted; `None` when it has none.
    /// Errors: the vault's; a token that does not decrypt is [`StoreError::Corrupt`].
    pub fn webhook_token(&self, source_id: &str) -> Result<Option<SecretString>> {
        let conn = self.conn();
        let stored: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM secrets WHERE owner_id = ?1 AND field = ?2)",
            params![source_id, WEBHOOK_TOKEN_FIELD],
            |r| r.get(0),
        )?;
        if !stored {
            return Ok(None);
        }
        let vault = vault::unlock(&conn, &self.key_source(), &self.data_dir)?;
        vault::get_secret(&conn, &vault, source_id, source_id, WEBHOOK_TOKEN_FIELD)
            .map(Some)
            .map_err(|e| match e {
                StoreError::Decrypt { .. } => StoreError::Corrupt(format!(
                    "the verification token of data source {source_id} does not decrypt (altered or corrupt); give it again with PATCH /api/v1/sources/{source_id}"
                )),
                other => other,
            })
    }

    /// Queue an event for `source_id` in one short transaction, unless one with the same
    /// `dedup_key` is already there. `event_at`: Drift's time of the event (epoch ms).
    pub fn enqueue_webhook(
        &self,
        source_id: &str,
        dedup_key: &str,
        event_type: &str,
        body: &str,
        event_at: i64,
    ) -> Result<Enqueued> {
        let conn = self.conn();
        let inserted = conn.execute(
            "INSERT INTO webhook_events (source_id, dedup_key, event_type, body, event_at, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (source_id, dedup_key) DO NOTHING",
            params![source_id, dedup_key, event_type, body, event_at, now_ms()],
        )?;
        Ok(if inserted == 1 {
            Enqueued::Queued
        } else {
            Enqueued::Duplicate
        })
    }

    /// The oldest `limit` pending events of `source_id`, in order of receipt.
    pub fn pending_webhooks(&self, source_id: &str, limit: usize) -> Result<Vec<WebhookEvent>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, source_id, event_type, body, event_at, received_at FROM webhook_events
             WHERE source_id = ?1 AND done_at IS NULL ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![source_id, limit as i64], |r| {
            Ok(WebhookEvent {
                id: r.get(0)?,
                source_id: r.get(1)?,
                event_type: r.get(2)?,
                body: r.get(3)?,
                event_at: r.get(4)?,
                received_at: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The data sources that have pending events (to replay them when `serve` starts).
    pub fn sources_with_pending_webhooks(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT DISTINCT source_id FROM webhook_events WHERE done_at IS NULL ORDER BY source_id",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Mark events done at `done_at` (their records are committed), recording each one's lag
    /// and dropping its body, and remove done events older than two hours. One transaction.
    pub fn finish_webhooks(&self, ids: &[i64], done_at: i64) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE webhook_events SET done_at = ?2, lag_ms = max(0, ?2 - event_at), body = ''
                 WHERE id = ?1",
            )?;
            for id in ids {
                stmt.execute(params![id, done_at])?;
            }
        }
        tx.execute(
            "DELETE FROM webhook_events WHERE done_at IS NOT NULL AND done_at < ?1",
            params![done_at - KEEP_DONE_MS],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Drop the queue of a data source (it was deleted or is no longer real time).
    pub fn drop_webhooks(&self, source_id: &str) -> Result<()> {
        self.conn().execute(
            "DELETE FROM webhook_events WHERE source_id = ?1",
            params![source_id],
        )?;
        Ok(())
    }

    /// Events received by `source_id` in the hour before `now` (epoch ms) and the 95th
    /// percentile of their lag.
    pub fn webhook_stats(&self, source_id: &str, now: i64) -> Result<WebhookStats> {
        let conn = self.conn();
        let since = now - 3600 * 1000;
        let (events, pending): (i64, i64) = conn.query_row(
            "SELECT count(*), count(*) - count(done_at) FROM webhook_events
             WHERE source_id = ?1 AND received_at >= ?2",
            params![source_id, since],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let done: i64 = conn.query_row(
            "SELECT count(*) FROM webhook_events WHERE source_id = ?1 AND received_at >= ?2 AND lag_ms IS NOT NULL",
            params![source_id, since],
            |r| r.get(0),
        )?;
        let lag_ms_p95 = if done == 0 {
            None
        } else {
            // Nearest rank: the ceil(0.95 n)-th smallest lag.
            let rank = ((done * 95 + 99) / 100).max(1) - 1;
            conn.query_row(
                "SELECT lag_ms FROM webhook_events WHERE source_id = ?1 AND received_at >= ?2
                 AND lag_ms IS NOT NULL ORDER BY lag_ms LIMIT 1 OFFSET ?3",
                params![source_id, since, rank],
                |r| r.get(0),
            )
            .optional()?
        };
        Ok(WebhookStats {
            events_last_hour: events.max(0) as u64,
            lag_ms_p95,
            pending: pending.max(0) as u64,
        })
    }
}
