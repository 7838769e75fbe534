//! Data destinations: list, get, update, delete (created with [`Store::add_destination`]),
//! e.g. a saved `push` run again with `driftbridge push --destination NAME` or from the REST
//! API. The per-use settings live in the `config` JSON column, whose shape the caller owns
//! (for `drift` destinations: see `driftbridge push --save`); the store keeps it as given.

use crate::error::{Result, StoreError};
use crate::{credentials, from_json, now_ms, to_json, validate, Store};
use rusqlite::{params, Connection, OptionalExtension, Row};

/// A saved data destination. Timestamps are epoch milliseconds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DestinationRecord {
    /// Id (`dst_...`).
    pub id: String,
    /// Name as given.
    pub name: String,
    /// `sqlite`, `postgres`, `drift`, ...
    pub kind: String,
    /// Name of the credential it uses, if any (and if it still exists).
    pub credential: Option<String>,
    /// Settings as saved (never secrets).
    pub config: serde_json::Value,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Last change, epoch ms.
    pub updated_at: i64,
}

/// Changes for [`Store::update_destination`]; `None` leaves a field as it is. The kind
/// never changes.
#[derive(Debug, Clone, Default)]
pub struct DestinationUpdate {
    /// New name.
    pub name: Option<String>,
    /// New credential (by name or id).
    pub credential: Option<String>,
    /// New settings (replace the whole JSON; never secrets).
    pub config: Option<serde_json::Value>,
}

const SELECT: &str = "SELECT d.id, d.name, d.kind, c.name, d.config, d.created_at, d.updated_at
    FROM destinations d LEFT JOIN credentials c ON c.id = d.credential_id";

type RawRow = (DestinationRecord, String);

fn from_row(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        DestinationRecord {
            id: r.get(0)?,
            name: r.get(1)?,
            kind: r.get(2)?,
            credential: r.get(3)?,
            config: serde_json::Value::Null,
            created_at: r.get(5)?,
            updated_at: r.get(6)?,
        },
        r.get(4)?,
    ))
}

fn finish((mut record, config): RawRow) -> Result<DestinationRecord> {
    record.config = from_json(&config, "destinations.config")?;
    Ok(record)
}

fn not_found(name: &str) -> StoreError {
    StoreError::NotFound {
        kind: "destination",
        name: name.to_string(),
        hint: "saved destinations are listed on the web UI's Data destinations page and by GET /api/v1/destinations (the CLI saves one with push --save NAME)",
    }
}

/// A destination by id or name (case-insensitive).
fn find(conn: &Connection, key: &str) -> Result<DestinationRecord> {
    let row = conn
        .query_row(
            &format!("{SELECT} WHERE d.id = ?1 OR d.name_key = ?2"),
            params![key, validate::name_key(key)],
            from_row,
        )
        .optional()?;
    row.map(finish).transpose()?.ok_or_else(|| not_found(key))
}

/// Flows that write to destination `id`, by name.
fn flows_using(conn: &Connection, id: &str) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare("SELECT name FROM flows WHERE destination_id = ?1 ORDER BY name_key")?;
    let names = stmt.query_map(params![id], |r| r.get::<_, String>(0))?;
    names
        .map(|n| Ok(format!("flow \"{}\"", n?)))
        .collect::<Result<Vec<_>>>()
}

impl Store {
    /// The destination called `key` (id, or name case-insensitively).
    /// Errors: [`StoreError::NotFound`].
    pub fn destination(&self, key: &str) -> Result<DestinationRecord> {
        find(&self.conn(), key)
    }

    /// All destinations, by name.
    pub fn list_destinations(&self) -> Result<Vec<DestinationRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY d.name_key"))?;
        let rows = stmt.query_map([], from_row)?;
        rows.map(|r| finish(r?)).collect()
    }

    /// Change a destination (by id or name). Errors: [`StoreError::NotFound`] (the
    /// destination or the credential), [`StoreError::Invalid`] (field `name`),
    /// [`StoreError::Duplicate`] when the new name is taken by another destination.
    pub fn update_destination(
        &self,
        key: &str,
        update: &DestinationUpdate,
    ) -> Result<DestinationRecord> {
        let conn = self.conn();
        let current = find(&conn, key)?;
        let name = match &update.name {
            Some(n) => {
                let n = validate::name(n)?;
                let taken: Option<(String, String)> = conn
                    .query_row(
                        "SELECT id, name FROM destinations WHERE name_key = ?1",
                        params![validate::name_key(&n)],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                if let Some((_, existing)) = taken.filter(|(id, _)| *id != current.id) {
                    return Err(StoreError::Duplicate {
                        kind: "destination",
                        name: n,
                        existing,
                    });
                }
                n
            }
            None => current.name.clone(),
        };
        let credential_id: Option<String> = match &update.credential {
            Some(c) => Some(credentials::find(&conn, c)?.id),
            None => conn.query_row(
                "SELECT credential_id FROM destinations WHERE id = ?1",
                params![current.id],
                |r| r.get(0),
            )?,
        };
        let config = update.config.as_ref().unwrap_or(&current.config);
        conn.execute(
            "UPDATE destinations SET name = ?2, name_key = ?3, credential_id = ?4, config = ?5,
               updated_at = ?6 WHERE id = ?1",
            params![
                current.id,
                name,
                validate::name_key(&name),
                credential_id,
                to_json(config),
                now_ms()
            ],
        )?;
        find(&conn, &current.id)
    }

    /// Delete a destination (by id or name); its run history stays. Refuses with
    /// [`StoreError::UsedBy`] while a flow writes to it. Errors: [`StoreError::NotFound`].
    pub fn delete_destination(&self, key: &str) -> Result<DestinationRecord> {
        let conn = self.conn();
        let current = find(&conn, key)?;
        let users = flows_using(&conn, &current.id)?;
        if !users.is_empty() {
            return Err(StoreError::UsedBy {
                kind: "destination",
                name: current.name,
                users,
            });
        }
        conn.execute(
            "DELETE FROM destinations WHERE id = ?1",
            params![current.id],
        )?;
        Ok(current)
    }
}
