//! Notification channels (alerts): where driftbridge tells people that a run failed, a
//! source recovered, a credential was rejected or records were rejected. Each channel is a
//! webhook URL, kept encrypted in the vault like an API key (owner = the channel's id, field
//! [`WEBHOOK_URL_FIELD`]: a Slack webhook's path is its secret) and shown only as
//! `url_mask`. What is sent, and when, is the application's (`flows::alerts`); the store
//! keeps the channel as given.

use crate::error::{Result, StoreError};
use crate::{from_json, new_id, now_ms, to_json, validate, vault, Store};
use rusqlite::{params, Connection, OptionalExtension, Row};
use secrecy::SecretString;
use serde::Serialize;

/// Vault field of a channel's webhook URL.
pub const WEBHOOK_URL_FIELD: &str = "webhook_url";

/// A stored notification channel. Timestamps are epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotificationChannel {
    /// Stable id (`ntf_` + 16 hex digits).
    pub id: String,
    /// Unique name (case-insensitive).
    pub name: String,
    /// Body format, as given (`json` or `slack`).
    pub format: String,
    /// Events it receives, as given (`run_failed`, ...).
    pub events: Vec<String>,
    /// The URL as shown: scheme and host, the rest masked (`https://hooks.slack.com/••••`).
    pub url_mask: String,
    /// Creation time.
    pub created_at: i64,
    /// Last change time.
    pub updated_at: i64,
}

/// A new channel for [`Store::add_notification_channel`].
#[derive(Debug, Clone)]
pub struct NewNotificationChannel {
    /// Unique name.
    pub name: String,
    /// Body format.
    pub format: String,
    /// Events it receives.
    pub events: Vec<String>,
    /// The webhook URL (secret: encrypted in the vault).
    pub url: SecretString,
    /// The URL as shown.
    pub url_mask: String,
}

const SELECT: &str =
    "SELECT id, name, format, events, url_mask, created_at, updated_at FROM notification_channels";

fn from_row(row: &Row<'_>) -> rusqlite::Result<(NotificationChannel, String)> {
    Ok((
        NotificationChannel {
            id: row.get(0)?,
            name: row.get(1)?,
            format: row.get(2)?,
            events: Vec::new(),
            url_mask: row.get(4)?,
            created_at: row.get(5)?,
            updated_at: row.get(6)?,
        },
        row.get(3)?,
    ))
}

fn finish((mut channel, events): (NotificationChannel, String)) -> Result<NotificationChannel> {
    channel.events = from_json(&events, "notification_channels.events")?;
    Ok(channel)
}

fn find(conn: &Connection, key: &str) -> Result<NotificationChannel> {
    conn.query_row(
        &format!("{SELECT} WHERE id = ?1 OR name_key = ?2"),
        params![key, validate::name_key(key)],
        from_row,
    )
    .optional()?
    .map(finish)
    .transpose()?
    .ok_or_else(|| StoreError::NotFound {
        kind: "notification channel",
        name: key.to_string(),
        hint: "list the notification channels to see their names",
    })
}

impl Store {
    /// Save a channel, its URL encrypted in the vault in the same transaction. Errors:
    /// [`StoreError::Invalid`] (field `name`), [`StoreError::Duplicate`], the vault's.
    pub fn add_notification_channel(
        &self,
        new: &NewNotificationChannel,
    ) -> Result<NotificationChannel> {
        let name = validate::name(&new.name)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Ok(existing) = find(&tx, &name) {
            return Err(StoreError::Duplicate {
                kind: "notification channel",
                name,
                existing: existing.name,
            });
        }
        let id = new_id("ntf");
        tx.execute(
            "INSERT INTO notification_channels (id, name, name_key, format, events, url_mask, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            params![id, name, validate::name_key(&name), new.format, to_json(&new.events), new.url_mask, now_ms()],
        )?;
        let vault = vault::unlock(&tx, &self.key_source(), &self.data_dir)?;
        vault::put_secret(&tx, &vault, &id, WEBHOOK_URL_FIELD, &new.url)?;
        let channel = find(&tx, &id)?;
        tx.commit()?;
        Ok(channel)
    }

    /// Every channel, by name.
    pub fn list_notification_channels(&self) -> Result<Vec<NotificationChannel>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY name_key"))?;
        let rows = stmt.query_map([], from_row)?;
        rows.map(|r| finish(r?)).collect()
    }

    /// One channel by id or name. Errors: [`StoreError::NotFound`].
    pub fn notification_channel(&self, key: &str) -> Result<NotificationChannel> {
        find(&self.conn(), key)
    }

    /// The webhook URL of channel `key`, decrypted. Errors: [`StoreError::NotFound`], the
    /// vault's.
    pub fn notification_channel_url(&self, key: &str) -> Result<SecretString> {
        let conn = self.conn();
        let channel = find(&conn, key)?;
        let vault = vault::unlock(&conn, &self.key_source(), &self.data_dir)?;
        vault::get_secret(&conn, &vault, &channel.id, &channel.name, WEBHOOK_URL_FIELD)
    }

    /// Delete channel `key` and its URL. Errors: [`StoreError::NotFound`].
    pub fn delete_notification_channel(&self, key: &str) -> Result<NotificationChannel> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let channel = find(&tx, key)?;
        tx.execute(
            "DELETE FROM secrets WHERE owner_id = ?1",
            params![channel.id],
        )?;
        tx.execute(
            "DELETE FROM notification_channels WHERE id = ?1",
            params![channel.id],
        )?;
        tx.commit()?;
        Ok(channel)
    }
}
