//! Data sources, data destinations and flows: the objects that use a credential.
//!
//! Only what the credential lifecycle needs lives here for now (create, and "who uses this
//! credential?"); the sources/destinations/flows features extend it.

use crate::error::{Result, StoreError};
use crate::{credentials, new_id, now_ms, to_json, validate, Store};
use rusqlite::{params, Connection, OptionalExtension};

/// Something that uses a credential and blocks its deletion.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CredentialUser {
    /// `"data source"`, `"destination"` or `"flow"`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
}

impl std::fmt::Display for CredentialUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} \"{}\"", self.kind, self.name)
    }
}

/// Sources, destinations and flows that use credential `id` (a flow directly, or through its
/// source or destination), in that order, each sorted by name.
pub(crate) fn users_of(conn: &Connection, id: &str) -> Result<Vec<CredentialUser>> {
    let queries: [(&'static str, &str); 3] = [
        (
            "data source",
            "SELECT name FROM sources WHERE credential_id = ?1 ORDER BY name_key",
        ),
        (
            "destination",
            "SELECT name FROM destinations WHERE credential_id = ?1 ORDER BY name_key",
        ),
        (
            "flow",
            "SELECT f.name FROM flows f
               LEFT JOIN sources s ON s.id = f.source_id
               LEFT JOIN destinations d ON d.id = f.destination_id
             WHERE f.credential_id = ?1 OR s.credential_id = ?1 OR d.credential_id = ?1
             ORDER BY f.name_key",
        ),
    ];
    let mut users = Vec::new();
    for (kind, sql) in queries {
        let mut stmt = conn.prepare(sql)?;
        let names = stmt.query_map(params![id], |r| r.get::<_, String>(0))?;
        for name in names {
            users.push(CredentialUser { kind, name: name? });
        }
    }
    Ok(users)
}

fn id_by_name(conn: &Connection, table: &str, kind: &'static str, name: &str) -> Result<String> {
    conn.query_row(
        &format!("SELECT id FROM {table} WHERE name_key = ?1"),
        params![validate::name_key(name)],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound {
        kind,
        name: name.to_string(),
        hint: "check the name",
    })
}

fn ensure_free(conn: &Connection, table: &str, kind: &'static str, name: &str) -> Result<()> {
    let existing: Option<String> = conn
        .query_row(
            &format!("SELECT name FROM {table} WHERE name_key = ?1"),
            params![validate::name_key(name)],
            |r| r.get(0),
        )
        .optional()?;
    match existing {
        Some(existing) => Err(StoreError::Duplicate {
            kind,
            name: name.to_string(),
            existing,
        }),
        None => Ok(()),
    }
}

impl Store {
    /// Who uses a credential (blocks `delete` without `--force`).
    pub fn credential_users(&self, name: &str) -> Result<Vec<CredentialUser>> {
        let conn = self.conn();
        let credential = credentials::find(&conn, name)?;
        users_of(&conn, &credential.id)
    }

    /// Create a data source reading `streams` with credential `credential`. Returns its id.
    pub fn add_source(&self, name: &str, credential: &str, streams: &[String]) -> Result<String> {
        let name = validate::name(name)?;
        let conn = self.conn();
        ensure_free(&conn, "sources", "data source", &name)?;
        let credential = credentials::find(&conn, credential)?;
        let id = new_id("src");
        conn.execute(
            "INSERT INTO sources (id, name, name_key, credential_id, streams, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            params![id, name, validate::name_key(&name), credential.id, to_json(&streams), now_ms()],
        )?;
        Ok(id)
    }

    /// Create a data destination of `kind` (`sqlite`, `postgres`, `drift`, ...), optionally with
    /// a credential (destinations that write to Drift). `config` is stored as JSON and must
    /// not contain secrets. Returns its id.
    pub fn add_destination(
        &self,
        name: &str,
        kind: &str,
        credential: Option<&str>,
        config: &serde_json::Value,
    ) -> Result<String> {
        let name = validate::name(name)?;
        let conn = self.conn();
        ensure_free(&conn, "destinations", "destination", &name)?;
        let credential_id = credential
            .map(|c| credentials::find(&conn, c).map(|c| c.id))
            .transpose()?;
        let id = new_id("dst");
        conn.execute(
            "INSERT INTO destinations (id, name, name_key, kind, credential_id, config, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            params![id, name, validate::name_key(&name), kind, credential_id, to_json(config), now_ms()],
        )?;
        Ok(id)
    }

    /// Create a flow from data source `source` to destination `destination`. Returns its id.
    pub fn add_flow(&self, name: &str, source: &str, destination: &str) -> Result<String> {
        let name = validate::name(name)?;
        let conn = self.conn();
        ensure_free(&conn, "flows", "flow", &name)?;
        let source_id = id_by_name(&conn, "sources", "data source", source)?;
        let destination_id = id_by_name(&conn, "destinations", "destination", destination)?;
        let id = new_id("flow");
        conn.execute(
            "INSERT INTO flows (id, name, name_key, source_id, destination_id, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            params![id, name, validate::name_key(&name), source_id, destination_id, now_ms()],
        )?;
        Ok(id)
    }

    /// The saved state (cursor / watermark / checkpoint, caller-defined JSON) of `stream`
    /// within `scope` (e.g. a flow name), if any.
    pub fn stream_state(&self, scope: &str, stream: &str) -> Result<Option<serde_json::Value>> {
        let conn = self.conn();
        let text: Option<String> = conn
            .query_row(
                "SELECT state FROM stream_state WHERE scope = ?1 AND stream = ?2",
                params![scope, stream],
                |r| r.get(0),
            )
            .optional()?;
        text.map(|t| crate::from_json(&t, "stream_state.state"))
            .transpose()
    }

    /// Save (replace) the state of `stream` within `scope`.
    pub fn put_stream_state(
        &self,
        scope: &str,
        stream: &str,
        state: &serde_json::Value,
    ) -> Result<()> {
        self.conn().execute(
            "INSERT INTO stream_state (scope, stream, state, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (scope, stream) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            params![scope, stream, to_json(state), now_ms()],
        )?;
        Ok(())
    }
}
