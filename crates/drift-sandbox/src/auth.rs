//! The token table: token -> org, scopes, expiry (REFERENCE §2.3, §9 `[SIM]`).

use crate::config::{SandboxConfig, ALL_SCOPES};
use crate::error::ApiError;
use std::collections::{HashMap, HashSet};

/// What the sandbox knows about one token.
#[derive(Clone, Debug)]
pub struct TokenEntry {
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Expiry, epoch ms; `None` = never.
    pub expires_at: Option<i64>,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Drift's id for the token record (`token_info.id`).
    pub id: String,
}

/// All tokens of the sandbox org, plus the ones revoked by a fault.
#[derive(Clone, Default)]
pub struct Tokens {
    table: HashMap<String, TokenEntry>,
    revoked: HashSet<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("tokens", &self.table.len())
            .field("revoked", &self.revoked.len())
            .finish()
    }
}

impl Tokens {
    /// Build the table from the configuration; `now` is the sandbox clock, epoch ms.
    pub fn from_config(cfg: &SandboxConfig, now: i64) -> Tokens {
        let created_at = now - now.rem_euclid(86_400_000) - 30 * 86_400_000;
        let mut table = HashMap::new();
        let mut add = |token: &str, scopes: Vec<String>, expires_at: Option<i64>| {
            let id = format!("2f9e8d7c-6b5a-4c3d-8e1f-{:012x}", table.len() + 1);
            let entry = TokenEntry {
                scopes,
                expires_at,
                // [SIM] an expiring (OAuth-style) token was issued when the sandbox started, so
                // that created_at + expires_in is its expiry (Kong token semantics, REFERENCE §2.3).
                created_at: expires_at.map_or(created_at, |at| at.min(now)),
                id,
            };
            table.insert(token.to_string(), entry);
        };
        let all: Vec<String> = ALL_SCOPES.iter().map(|s| s.to_string()).collect();
        add(&cfg.token, all, None);
        for (token, scopes) in &cfg.limited_tokens {
            add(token, scopes.clone(), None);
        }
        for spec in &cfg.tokens {
            add(&spec.token, spec.scopes.clone(), spec.expires_at);
        }
        Tokens {
            table,
            revoked: HashSet::new(),
        }
    }

    /// The entry of a usable token: known, not expired, not revoked; else 401.
    pub fn check(&self, token: Option<&str>, now: i64) -> Result<&TokenEntry, ApiError> {
        let token = token.ok_or(ApiError::Unauthorized)?;
        if self.revoked.contains(token) {
            return Err(ApiError::Unauthorized);
        }
        let entry = self.table.get(token).ok_or(ApiError::Unauthorized)?;
        match entry.expires_at {
            Some(at) if at <= now => Err(ApiError::Unauthorized),
            _ => Ok(entry),
        }
    }

    /// Revoke a token (fault `revoke_token`, REFERENCE §2.4 behaviour after uninstall).
    pub fn revoke(&mut self, token: &str) {
        self.revoked.insert(token.to_string());
    }
}

/// Check that `entry` has `scope`; else 403 naming it (REFERENCE §3, `[SIM]` status).
pub fn require_scope(entry: &TokenEntry, scope: &'static str) -> Result<(), ApiError> {
    if entry.scopes.iter().any(|s| s == scope) {
        Ok(())
    } else {
        Err(ApiError::Forbidden { scope })
    }
}
