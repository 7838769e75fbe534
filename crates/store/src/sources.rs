//! Data sources (read from Drift into a sink): list, get, create with options, update,
//! delete. The per-use options (mode, sink, schedule) live in the `config` JSON column, whose
//! shape the caller (the server) owns; the store keeps it as given.
//!
//! The secret part of a sink (a database password) never goes into `config`: the caller
//! passes it separately and it is encrypted in the vault like an API key (owner = the
//! source's id, field [`SINK_SECRET_FIELD`]), re-encrypted by a master-key rotation and
//! deleted with the source.

use crate::error::{Result, StoreError};
use crate::{credentials, from_json, new_id, now_ms, to_json, validate, vault, Store};
use rusqlite::{params, Connection, OptionalExtension, Row};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Vault field of a data source's sink secret (see the module docs).
pub const SINK_SECRET_FIELD: &str = "sink_secret";

/// A stored data source. Timestamps are epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// Stable id (`src_` + 16 hex digits).
    pub id: String,
    /// Unique name (case-insensitive).
    pub name: String,
    /// Name of the credential it reads with; `None` after the credential was force-deleted.
    pub credential: Option<String>,
    /// Streams it reads.
    pub streams: Vec<String>,
    /// Caller-defined options (mode, sink, schedule, ...).
    pub config: serde_json::Value,
    /// Creation time.
    pub created_at: i64,
    /// Last change time.
    pub updated_at: i64,
}

/// Changes for [`Store::update_source`]; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct SourceUpdate {
    /// New sink secret: `Some(Some(secret))` replaces it, `Some(None)` removes it.
    pub sink_secret: Option<Option<SecretString>>,
    /// New name.
    pub name: Option<String>,
    /// New credential (by name).
    pub credential: Option<String>,
    /// New stream list.
    pub streams: Option<Vec<String>>,
    /// New options (replace the whole JSON).
    pub config: Option<serde_json::Value>,
}

const SELECT: &str = "SELECT s.id, s.name, c.name, s.streams, s.config, s.created_at, s.updated_at
    FROM sources s LEFT JOIN credentials c ON c.id = s.credential_id";

fn from_row(row: &Row<'_>) -> rusqlite::Result<(SourceRecord, String, String)> {
    Ok((
        SourceRecord {
            id: row.get(0)?,
            name: row.get(1)?,
            credential: row.get(2)?,
            streams: Vec::new(),
            config: serde_json::Value::Null,
            created_at: row.get(5)?,
            updated_at: row.get(6)?,
        },
        row.get(3)?,
        row.get(4)?,
    ))
}

fn finish((mut source, streams, config): (SourceRecord, String, String)) -> Result<SourceRecord> {
    source.streams = from_json(&streams, "sources.streams")?;
    source.config = from_json(&config, "sources.config")?;
    Ok(source)
}

fn not_found(name: &str) -> StoreError {
    StoreError::NotFound {
        kind: "data source",
        name: name.to_string(),
        hint: "list the data sources to see their names",
    }
}

/// A source by id or name (case-insensitive).
fn find(conn: &Connection, key: &str) -> Result<SourceRecord> {
    let row = conn
        .query_row(
            &format!("{SELECT} WHERE s.id = ?1 OR s.name_key = ?2"),
            params![key, validate::name_key(key)],
            from_row,
        )
        .optional()?;
    row.map(finish).transpose()?.ok_or_else(|| not_found(key))
}

fn ensure_free(conn: &Connection, name: &str, except_id: Option<&str>) -> Result<()> {
    let existing: Option<(String, String)> = conn
        .query_row(
            "SELECT id, name FROM sources WHERE name_key = ?1",
            params![validate::name_key(name)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match existing {
        Some((id, existing)) if Some(id.as_str()) != except_id => Err(StoreError::Duplicate {
            kind: "data source",
            name: name.to_string(),
            existing,
        }),
        _ => Ok(()),
    }
}

impl Store {
    /// Create a data source reading `streams` with `credential`, with caller-defined options.
    /// Errors: [`StoreError::Invalid`] (field `name`), [`StoreError::Duplicate`],
    /// [`StoreError::NotFound`] for the credential.
    pub fn create_source(
        &self,
        name: &str,
        credential: &str,
        streams: &[String],
        config: &serde_json::Value,
    ) -> Result<SourceRecord> {
        self.create_source_with_secret(name, credential, streams, config, None)
    }

    /// Like [`Store::create_source`], with the sink's secret encrypted in the vault in the
    /// same transaction (nothing is created when the vault cannot be opened). Extra errors:
    /// [`StoreError::WrongMasterKey`], [`StoreError::MasterKey`] when a secret is given.
    pub fn create_source_with_secret(
        &self,
        name: &str,
        credential: &str,
        streams: &[String],
        config: &serde_json::Value,
        sink_secret: Option<&SecretString>,
    ) -> Result<SourceRecord> {
        let name = validate::name(name)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        ensure_free(&tx, &name, None)?;
        let credential = credentials::find(&tx, credential)?;
        let id = new_id("src");
        tx.execute(
            "INSERT INTO sources (id, name, name_key, credential_id, streams, config, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            params![id, name, validate::name_key(&name), credential.id, to_json(&streams), to_json(config), now_ms()],
        )?;
        if let Some(secret) = sink_secret {
            let vault = vault::unlock(&tx, &self.key_source(), &self.data_dir)?;
            vault::put_secret(&tx, &vault, &id, SINK_SECRET_FIELD, secret)?;
        }
        let source = find(&tx, &id)?;
        tx.commit()?;
        Ok(source)
    }

    /// The sink secret of data source `key` (id or name), decrypted; `None` when it has none.
    /// Errors: [`StoreError::NotFound`], the vault's errors; a secret that does not decrypt
    /// is [`StoreError::Corrupt`] naming the source and the fix.
    pub fn source_sink_secret(&self, key: &str) -> Result<Option<SecretString>> {
        let conn = self.conn();
        let source = find(&conn, key)?;
        let stored: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM secrets WHERE owner_id = ?1 AND field = ?2)",
            params![source.id, SINK_SECRET_FIELD],
            |r| r.get(0),
        )?;
        if !stored {
            return Ok(None);
        }
        let vault = vault::unlock(&conn, &self.key_source(), &self.data_dir)?;
        vault::get_secret(&conn, &vault, &source.id, &source.name, SINK_SECRET_FIELD)
            .map(Some)
            .map_err(|e| match e {
                StoreError::Decrypt { .. } => StoreError::Corrupt(format!(
                    "the sink password of data source \"{}\" does not decrypt (altered or corrupt); give the sink again with its password",
                    source.name
                )),
                other => other,
            })
    }

    /// All data sources, by name.
    pub fn list_sources(&self) -> Result<Vec<SourceRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY s.name_key"))?;
        let rows = stmt.query_map([], from_row)?;
        rows.map(|r| finish(r?)).collect()
    }

    /// One data source by id or name. Errors: [`StoreError::NotFound`].
    pub fn source(&self, key: &str) -> Result<SourceRecord> {
        find(&self.conn(), key)
    }

    /// Change a data source (and its sink secret, see [`SourceUpdate::sink_secret`]) in one
    /// transaction. Errors as for [`Store::create_source_with_secret`].
    pub fn update_source(&self, key: &str, update: &SourceUpdate) -> Result<SourceRecord> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current = find(&tx, key)?;
        let name = match &update.name {
            Some(n) => {
                let n = validate::name(n)?;
                ensure_free(&tx, &n, Some(&current.id))?;
                n
            }
            None => current.name.clone(),
        };
        let credential_id: Option<String> = match &update.credential {
            Some(c) => Some(credentials::find(&tx, c)?.id),
            None => tx.query_row(
                "SELECT credential_id FROM sources WHERE id = ?1",
                params![current.id],
                |r| r.get(0),
            )?,
        };
        let streams = update.streams.as_ref().unwrap_or(&current.streams);
        let config = update.config.as_ref().unwrap_or(&current.config);
        tx.execute(
            "UPDATE sources SET name = ?2, name_key = ?3, credential_id = ?4, streams = ?5, config = ?6,
               updated_at = ?7 WHERE id = ?1",
            params![current.id, name, validate::name_key(&name), credential_id, to_json(streams), to_json(config), now_ms()],
        )?;
        match &update.sink_secret {
            Some(Some(secret)) => {
                let vault = vault::unlock(&tx, &self.key_source(), &self.data_dir)?;
                vault::put_secret(&tx, &vault, &current.id, SINK_SECRET_FIELD, secret)?;
            }
            Some(None) => {
                tx.execute(
                    "DELETE FROM secrets WHERE owner_id = ?1 AND field = ?2",
                    params![current.id, SINK_SECRET_FIELD],
                )?;
            }
            None => {}
        }
        let source = find(&tx, &current.id)?;
        tx.commit()?;
        Ok(source)
    }

    /// Delete a data source, its sink secret, its verification token and its queue of webhook
    /// events (its run history stays). Errors:
    /// [`StoreError::NotFound`].
    pub fn delete_source(&self, key: &str) -> Result<SourceRecord> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current = find(&tx, key)?;
        tx.execute(
            "DELETE FROM secrets WHERE owner_id = ?1",
            params![current.id],
        )?;
        tx.execute(
            "DELETE FROM webhook_events WHERE source_id = ?1",
            params![current.id],
        )?;
        tx.execute("DELETE FROM sources WHERE id = ?1", params![current.id])?;
        tx.commit()?;
        Ok(current)
    }
}
