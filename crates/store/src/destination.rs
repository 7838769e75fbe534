//! Reading a data destination back by name (created with [`Store::add_destination`]), e.g. a
//! saved `push` run again with `driftbridge push --destination NAME`.

use crate::error::{Result, StoreError};
use crate::{from_json, validate, Store};
use rusqlite::{params, OptionalExtension};

/// A saved data destination.
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

impl Store {
    /// The destination called `name` (case-insensitive). Errors: [`StoreError::NotFound`].
    pub fn destination(&self, name: &str) -> Result<DestinationRecord> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT d.id, d.name, d.kind, c.name, d.config, d.created_at, d.updated_at
                   FROM destinations d LEFT JOIN credentials c ON c.id = d.credential_id
                  WHERE d.name_key = ?1",
                params![validate::name_key(name)],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, i64>(6)?,
                    ))
                },
            )
            .optional()?;
        let (id, name_, kind, credential, config, created_at, updated_at) =
            row.ok_or_else(|| StoreError::NotFound {
                kind: "destination",
                name: name.to_string(),
                hint: "check the name given to --save",
            })?;
        Ok(DestinationRecord {
            id,
            name: name_,
            kind,
            credential,
            config: from_json(&config, "destinations.config")?,
            created_at,
            updated_at,
        })
    }
}
