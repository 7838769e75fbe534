//! `POST /app/token_info` (REFERENCE §2.3).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What Drift says about a token. Read from the bare `token_info` object; the inspected
/// `access_token` itself is dropped on decode and never stored here.
///
/// Serialised with these (snake_case) field names; decoded from Drift's shape
/// (`authenticated_userid: "orgId:N"`, `scope: "a b c"`, `expires_in`, `created_at`,
/// camelCase spellings accepted too).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "RawTokenInfo")]
pub struct TokenInfo {
    /// Org id parsed from `authenticated_userid` (`"orgId:104455"`), or `orgId`.
    pub org_id: Option<i64>,
    /// Scopes from the space-separated `scope`.
    pub scopes: Vec<String>,
    /// `expires_in`, documented as milliseconds (quirk 14); 0 means the token never expires.
    pub expires_in_ms: i64,
    /// `created_at`, epoch ms.
    pub created_at: Option<i64>,
    /// `authenticated_userid` as sent.
    pub authenticated_userid: Option<String>,
    /// `credential_id`: the app the token belongs to.
    pub credential_id: Option<String>,
    /// `token_type`, e.g. `bearer`.
    pub token_type: Option<String>,
    /// `id`: Drift's id of the token record.
    pub id: Option<String>,
    /// Any other field, as sent (never the token).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TokenInfo {
    /// True when the token does not expire (`expires_in: 0`, install tokens).
    pub fn never_expires(&self) -> bool {
        self.expires_in_ms == 0
    }

    /// Expiry as epoch ms (`created_at + expires_in`), `None` for non-expiring tokens.
    pub fn expires_at(&self) -> Option<i64> {
        if self.never_expires() {
            return None;
        }
        self.created_at
            .map(|c| c.saturating_add(self.expires_in_ms))
    }

    /// True when every scope in `needed` is granted.
    pub fn has_scopes(&self, needed: &[&str]) -> bool {
        needed.iter().all(|n| self.scopes.iter().any(|s| s == n))
    }
}

#[derive(Deserialize)]
struct RawTokenInfo {
    #[serde(flatten)]
    fields: Map<String, Value>,
}

fn take(fields: &mut Map<String, Value>, keys: &[&str]) -> Option<Value> {
    keys.iter()
        .filter_map(|k| fields.remove(*k))
        .find(|v| !v.is_null())
}

fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.trim().parse().ok())
}

impl From<RawTokenInfo> for TokenInfo {
    fn from(raw: RawTokenInfo) -> Self {
        let mut f = raw.fields;
        // The inspected token is never kept.
        f.remove("access_token");
        f.remove("accessToken");
        let string = |v: Option<Value>| v.and_then(|v| v.as_str().map(str::to_string));
        let authenticated_userid = string(take(&mut f, &["authenticated_userid"]));
        let org_from_userid = authenticated_userid.as_deref().and_then(|u| {
            let digits = u.rsplit(':').next()?;
            digits.trim().parse::<i64>().ok()
        });
        let org_id = take(&mut f, &["orgId", "org_id"])
            .as_ref()
            .and_then(as_i64)
            .or(org_from_userid);
        let scopes = match take(&mut f, &["scope", "scopes"]) {
            Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        TokenInfo {
            org_id,
            scopes,
            expires_in_ms: take(&mut f, &["expires_in", "expiresIn", "expires_in_ms"])
                .as_ref()
                .and_then(as_i64)
                .unwrap_or(0),
            created_at: take(&mut f, &["created_at", "createdAt"])
                .as_ref()
                .and_then(as_i64),
            authenticated_userid,
            credential_id: string(take(&mut f, &["credential_id", "credentialId"])),
            token_type: string(take(&mut f, &["token_type", "tokenType"])),
            id: string(take(&mut f, &["id"])),
            extra: f,
        }
    }
}
