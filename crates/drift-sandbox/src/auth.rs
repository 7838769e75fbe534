//! The token table: token -> org, scopes, expiry (REFERENCE §2.3, §9 `[SIM]`).

use crate::config::{OAuthAppSpec, SandboxConfig, ALL_SCOPES};
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

/// All tokens of the sandbox org, plus the ones revoked by a fault, and the live refresh
/// token of each OAuth app.
#[derive(Clone, Default)]
pub struct Tokens {
    table: HashMap<String, TokenEntry>,
    revoked: HashSet<String>,
    /// Live refresh token -> index of its app in `apps`.
    refresh: HashMap<String, usize>,
    apps: Vec<OAuthAppSpec>,
    /// Access and refresh tokens minted so far (makes each new token unique).
    minted: u64,
}

/// Why `POST /oauth2/token` refused a refresh (REFERENCE §2.2; the error codes are OAuth 2.0's,
/// RFC 6749 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantError {
    /// Unknown `client_id` or wrong `client_secret` (401 `invalid_client`).
    InvalidClient,
    /// Unknown, used or foreign refresh token (400 `invalid_grant`).
    InvalidGrant,
}

/// Tokens minted by a refresh.
#[derive(Clone)]
pub struct Grant {
    /// The new access token.
    pub access_token: String,
    /// The new refresh token (the one used is retired).
    pub refresh_token: String,
    /// Lifetime of the access token, ms.
    pub ttl_ms: i64,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("tokens", &self.table.len())
            .field("revoked", &self.revoked.len())
            .field("refresh_tokens", &self.refresh.len())
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
        let refresh = cfg
            .oauth_apps
            .iter()
            .enumerate()
            .map(|(i, app)| (app.refresh_token.clone(), i))
            .collect();
        Tokens {
            table,
            revoked: HashSet::new(),
            refresh,
            apps: cfg.oauth_apps.clone(),
            minted: 0,
        }
    }

    /// The `refresh_token` grant: check the app's client credentials and the refresh
    /// token, retire it, and mint a new access token (the app's scopes, expiring after its
    /// `access_ttl_ms`) and a new refresh token. `now` is the sandbox clock, epoch ms.
    pub fn refresh(
        &mut self,
        client_id: &str,
        client_secret: &str,
        refresh_token: &str,
        now: i64,
    ) -> Result<Grant, GrantError> {
        let app_index = self
            .apps
            .iter()
            .position(|a| a.client_id == client_id && a.client_secret == client_secret)
            .ok_or(GrantError::InvalidClient)?;
        match self.refresh.get(refresh_token) {
            Some(i) if *i == app_index => {}
            _ => return Err(GrantError::InvalidGrant),
        }
        self.refresh.remove(refresh_token);
        self.minted += 1;
        let app = &self.apps[app_index];
        let grant = Grant {
            access_token: format!("sbx-oauth-access-{:08}-{:016x}", self.minted, now),
            refresh_token: format!("sbx-oauth-refresh-{:08}-{:016x}", self.minted, now),
            ttl_ms: app.access_ttl_ms.max(1),
        };
        let id = format!("2f9e8d7c-6b5a-4c3d-8e1f-{:012x}", self.table.len() + 1);
        self.table.insert(
            grant.access_token.clone(),
            TokenEntry {
                scopes: app.scopes.clone(),
                expires_at: Some(now + grant.ttl_ms),
                created_at: now,
                id,
            },
        );
        self.refresh.insert(grant.refresh_token.clone(), app_index);
        Ok(grant)
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
