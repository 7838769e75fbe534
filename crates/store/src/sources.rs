//! Data sources (read from Drift into a sink): list, get, create with options, update,
//! delete. The per-use options (mode, sink, schedule) live in the `config` JSON column, whose
//! shape the caller (the server) owns; the store keeps it as given.

use crate::error::{Result, StoreError};
use crate::{credentials, from_json, new_id, now_ms, to_json, validate, Store};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

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
        let name = validate::name(name)?;
        let conn = self.conn();
        ensure_free(&conn, &name, None)?;
        let credential = credentials::find(&conn, credential)?;
        let id = new_id("src");
        conn.execute(
            "INSERT INTO sources (id, name, name_key, credential_id, streams, config, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            params![id, name, validate::name_key(&name), credential.id, to_json(&streams), to_json(config), now_ms()],
        )?;
        find(&conn, &id)
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

    /// Change a data source. Errors as for [`Store::create_source`].
    pub fn update_source(&self, key: &str, update: &SourceUpdate) -> Result<SourceRecord> {
        let conn = self.conn();
        let current = find(&conn, key)?;
        let name = match &update.name {
            Some(n) => {
                let n = validate::name(n)?;
                ensure_free(&conn, &n, Some(&current.id))?;
                n
            }
            None => current.name.clone(),
        };
        let credential_id: Option<String> = match &update.credential {
            Some(c) => Some(credentials::find(&conn, c)?.id),
            None => conn.query_row(
                "SELECT credential_id FROM sources WHERE id = ?1",
                params![current.id],
                |r| r.get(0),
            )?,
        };
        let streams = update.streams.as_ref().unwrap_or(&current.streams);
        let config = update.config.as_ref().unwrap_or(&current.config);
        conn.execute(
            "UPDATE sources SET name = ?2, name_key = ?3, credential_id = ?4, streams = ?5, config = ?6,
               updated_at = ?7 WHERE id = ?1",
            params![current.id, name, validate::name_key(&name), credential_id, to_json(streams), to_json(config), now_ms()],
        )?;
        find(&conn, &current.id)
    }

    /// Delete a data source (its run history stays). Errors: [`StoreError::NotFound`].
    pub fn delete_source(&self, key: &str) -> Result<SourceRecord> {
        let conn = self.conn();
        let current = find(&conn, key)?;
        conn.execute("DELETE FROM sources WHERE id = ?1", params![current.id])?;
        Ok(current)
    }
}
