//! The admin token of `driftbridge serve`: only its SHA-256 (hex) is kept, in the
//! `admin_token` table, with a generation that every replacement increases.
//!
//! Every `serve` on this data directory reads the row on each request (no cache), so a
//! replacement (`serve --print-token`, from any process) revokes the old token at once, and
//! sessions opened under an older generation stop working with it. The hashing itself is the
//! caller's (the server's `auth` module); the store only checks the shape.

use crate::error::{Result, StoreError};
use crate::{now_ms, Store};
use rusqlite::{params, OptionalExtension};

/// The stored admin token: its hash and generation. Timestamps: epoch milliseconds.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken {
    /// Hex SHA-256 of the token (64 lower-case hex digits).
    pub hash: String,
    /// 1 for the first token, plus 1 for every replacement.
    pub generation: i64,
    /// When this token was made.
    pub created_at: i64,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminToken")
            .field("hash", &"[redacted]")
            .field("generation", &self.generation)
            .field("created_at", &self.created_at)
            .finish()
    }
}

fn check_hash(hash: &str) -> Result<()> {
    if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "admin_token",
            "the admin token hash must be a hex SHA-256 (64 hex digits)",
        ))
    }
}

impl Store {
    /// The current admin token (hash and generation), or `None` before `serve` first made
    /// one. Read from the database on every call.
    pub fn admin_token(&self) -> Result<Option<AdminToken>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT hash, generation, created_at FROM admin_token WHERE id = 1",
                [],
                |r| {
                    Ok(AdminToken {
                        hash: r.get(0)?,
                        generation: r.get(1)?,
                        created_at: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Store `hash` as the first admin token (generation 1) unless one exists already.
    /// Returns the stored token when this call created it, `None` when another token was
    /// there (it is kept). Errors: [`StoreError::Invalid`] (field `admin_token`) for a hash
    /// that is not 64 hex digits.
    pub fn create_admin_token(&self, hash: &str) -> Result<Option<AdminToken>> {
        check_hash(hash)?;
        let created_at = now_ms();
        let inserted = self.conn().execute(
            "INSERT OR IGNORE INTO admin_token (id, hash, generation, created_at)
             VALUES (1, ?1, 1, ?2)",
            params![hash.to_ascii_lowercase(), created_at],
        )?;
        Ok((inserted == 1).then(|| AdminToken {
            hash: hash.to_ascii_lowercase(),
            generation: 1,
            created_at,
        }))
    }

    /// Replace the admin token by `hash`, increasing the generation (the first call stores
    /// generation 1). The old token and every session of an older generation stop working
    /// in every process that uses this store. Errors as for [`Store::create_admin_token`].
    pub fn replace_admin_token(&self, hash: &str) -> Result<AdminToken> {
        check_hash(hash)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let generation: i64 = tx
            .query_row("SELECT generation FROM admin_token WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?
            .unwrap_or(0)
            + 1;
        let created_at = now_ms();
        tx.execute(
            "INSERT INTO admin_token (id, hash, generation, created_at) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET hash = excluded.hash,
               generation = excluded.generation, created_at = excluded.created_at",
            params![hash.to_ascii_lowercase(), generation, created_at],
        )?;
        tx.commit()?;
        Ok(AdminToken {
            hash: hash.to_ascii_lowercase(),
            generation,
            created_at,
        })
    }
}
