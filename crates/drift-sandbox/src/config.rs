//! Configuration of a sandbox instance: data size, tokens, rate limits, latency, faults.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The fixed, documented development token: full scope, never expires. Printed in the
/// start-up JSON line unless `--token` replaces it. It is a sandbox value, not a secret.
pub const DEFAULT_TOKEN: &str = "drift-sandbox-dev-token-0000000000000000";

/// Client id of the sandbox's OAuth app ([`SandboxConfig::oauth_apps`]).
pub const DEFAULT_OAUTH_CLIENT_ID: &str = "sandbox-oauth-app";
/// Client secret of the sandbox's OAuth app.
pub const DEFAULT_OAUTH_CLIENT_SECRET: &str = "sandbox-oauth-secret-000000000000";
/// The refresh token the sandbox's OAuth app starts with (each refresh replaces it).
pub const DEFAULT_REFRESH_TOKEN: &str = "sandbox-refresh-token-00000000000000";
/// Lifetime of the access tokens the sandbox issues: Drift's "typically 2 hours"
/// (REFERENCE §2.1), in ms.
pub const DEFAULT_ACCESS_TTL_MS: i64 = 2 * 3_600_000;

/// Org id every sandbox token belongs to (`authenticated_userid: "orgId:104455"`).
pub const ORG_ID: i64 = 104_455;

/// Every scope the sandbox knows (REFERENCE §3). The full-scope token has all of them.
pub const ALL_SCOPES: &[&str] = &[
    "contact_read",
    "contact_write",
    "all_contact_read",
    "conversation_read",
    "conversation_write",
    "user_read",
    "user_write",
    "account_read",
    "account_write",
    "playbook_read",
];

/// How a sandbox instance is built. `Default`: seed 7, 200 conversations with 5 messages
/// each, 50 accounts, 12 users, 600 requests/minute, no latency, [`DEFAULT_TOKEN`].
/// `Debug` masks every token.
#[derive(Clone)]
pub struct SandboxConfig {
    /// TCP port on 127.0.0.1; 0 picks a free port.
    pub port: u16,
    /// Seed of the generated org; the same seed gives the same ids and texts.
    pub seed: u64,
    /// Number of seeded conversations (contacts follow from them).
    pub conversations: usize,
    /// Messages per seeded conversation (oldest first; pages of 50).
    pub messages_per_conversation: usize,
    /// Number of seeded accounts (about 1 in 12 is soft-deleted).
    pub accounts: usize,
    /// Number of seeded users, including one bot user (at least 1).
    pub users: usize,
    /// Requests per minute per token for every route except `/reports/*`; 0 = off.
    pub rate_limit_per_min: u32,
    /// Requests per minute per token for `/reports/*` (Drift documents 60); 0 = off.
    pub reports_rate_limit_per_min: u32,
    /// Milliseconds added before every Drift API response (not the admin routes).
    pub latency_ms: u64,
    /// `--no-rate-limit-headers`: the limits above are still enforced (a request over the
    /// limit still gets 429 with `Retry-After`), but no `X-RateLimit-*` header is sent, so a
    /// client cannot see how much quota is left (the blind case). Default `true` (sent).
    pub rate_limit_headers: bool,
    /// The full-scope token (never expires).
    pub token: String,
    /// Extra tokens with only the listed scopes, e.g. `("tok-ro", vec!["conversation_read"])`.
    pub limited_tokens: Vec<(String, Vec<String>)>,
    /// Further tokens with scopes and an expiry (for expired-token cases).
    pub tokens: Vec<TokenSpec>,
    /// OAuth apps that `POST /oauth2/token` mints access tokens for (REFERENCE §2.2).
    /// Default: one app ([`DEFAULT_OAUTH_CLIENT_ID`], every scope).
    pub oauth_apps: Vec<OAuthAppSpec>,
    /// Fault plan active from the start (same shape as `POST /__sandbox/faults`).
    pub faults: Vec<FaultSpec>,
    /// Load the org from JSON files in this directory instead of generating it.
    pub fixtures: Option<PathBuf>,
    /// Peer-compatibility additions (off by default).
    pub compat: Option<Compat>,
    /// Fixed "now" of the sandbox clock at start, epoch ms; `None` = the wall clock.
    /// Seeded timestamps lie before the start of that UTC day.
    pub clock_start_ms: Option<i64>,
    /// `--messy`: READ routes render records the way a real org's data can arrive — about 1
    /// in 10 with fitting variations (digit-string ids and timestamps, nulls, unknown
    /// fields, left-out optional fields) and about 1 in 200 per stream unfit (an object or a
    /// non-numeric string where an id or timestamp belongs); see [`crate::messy`]. The org's
    /// data stays typed and writes stay faithful. Default `false`: every record as Drift
    /// documents it.
    pub messy: bool,
    /// Webhook events of mutations (issue 22): where to send them and the faults; default
    /// none sent. See [`crate::webhooks`].
    pub webhooks: crate::webhooks::WebhookSettings,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            port: 0,
            seed: 7,
            conversations: 200,
            messages_per_conversation: 5,
            accounts: 50,
            users: 12,
            rate_limit_per_min: 600,
            reports_rate_limit_per_min: 60,
            latency_ms: 0,
            rate_limit_headers: true,
            token: DEFAULT_TOKEN.to_string(),
            limited_tokens: Vec::new(),
            tokens: Vec::new(),
            oauth_apps: vec![OAuthAppSpec::default()],
            faults: Vec::new(),
            fixtures: None,
            compat: None,
            clock_start_ms: None,
            messy: false,
            webhooks: crate::webhooks::WebhookSettings::default(),
        }
    }
}

/// One entry of the token table: token -> scopes and expiry (REFERENCE §9 `[SIM]`).
/// `Debug` masks the token.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSpec {
    /// The bearer token value.
    pub token: String,
    /// Granted scopes (REFERENCE §3 names).
    pub scopes: Vec<String>,
    /// Expiry, epoch ms; `None` = never expires (`expires_in: 0`).
    pub expires_at: Option<i64>,
}

/// An OAuth app installed in the sandbox org: its client credentials, the refresh token it
/// starts with, the scopes its access tokens get and how long they live. `Debug` masks the
/// secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthAppSpec {
    /// `client_id` of the app.
    pub client_id: String,
    /// `client_secret` of the app.
    pub client_secret: String,
    /// A refresh token valid at start. `[SIM]` Each refresh returns a new refresh token and
    /// retires the one used, so a client must keep the newest.
    pub refresh_token: String,
    /// Scopes of the access tokens minted for it.
    pub scopes: Vec<String>,
    /// Lifetime of each minted access token, ms.
    pub access_ttl_ms: i64,
}

impl Default for OAuthAppSpec {
    fn default() -> Self {
        OAuthAppSpec {
            client_id: DEFAULT_OAUTH_CLIENT_ID.into(),
            client_secret: DEFAULT_OAUTH_CLIENT_SECRET.into(),
            refresh_token: DEFAULT_REFRESH_TOKEN.into(),
            scopes: ALL_SCOPES.iter().map(|s| s.to_string()).collect(),
            access_ttl_ms: DEFAULT_ACCESS_TTL_MS,
        }
    }
}

impl std::fmt::Debug for OAuthAppSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthAppSpec")
            .field("client_id", &self.client_id)
            .field("client_secret", &mask_token(&self.client_secret))
            .field("refresh_token", &mask_token(&self.refresh_token))
            .field("scopes", &self.scopes)
            .field("access_ttl_ms", &self.access_ttl_ms)
            .finish()
    }
}

/// `****` plus the last 4 characters of a token of 16 or more characters, else `****`.
pub fn mask_token(token: &str) -> String {
    let chars: Vec<char> = token.chars().collect();
    if chars.len() >= 16 {
        format!(
            "****{}",
            chars[chars.len() - 4..].iter().collect::<String>()
        )
    } else {
        "****".to_string()
    }
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let limited: Vec<(String, &Vec<String>)> = self
            .limited_tokens
            .iter()
            .map(|(t, s)| (mask_token(t), s))
            .collect();
        f.debug_struct("SandboxConfig")
            .field("port", &self.port)
            .field("seed", &self.seed)
            .field("conversations", &self.conversations)
            .field("messages_per_conversation", &self.messages_per_conversation)
            .field("accounts", &self.accounts)
            .field("users", &self.users)
            .field("rate_limit_per_min", &self.rate_limit_per_min)
            .field("rate_limit_headers", &self.rate_limit_headers)
            .field(
                "reports_rate_limit_per_min",
                &self.reports_rate_limit_per_min,
            )
            .field("latency_ms", &self.latency_ms)
            .field("token", &mask_token(&self.token))
            .field("limited_tokens", &limited)
            .field("tokens", &self.tokens)
            .field("oauth_apps", &self.oauth_apps)
            .field("faults", &self.faults)
            .field("fixtures", &self.fixtures)
            .field("compat", &self.compat)
            .field("clock_start_ms", &self.clock_start_ms)
            .field("messy", &self.messy)
            .finish()
    }
}

impl std::fmt::Debug for TokenSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSpec")
            .field("token", &mask_token(&self.token))
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Off-by-default additions that let a known-imperfect peer client run (benchmarks only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compat {
    /// `airbyte-source-drift` 0.3.x: serves `GET /conversations` and `GET /users` as the
    /// list routes and copies the next-page cursor onto the last record of each page.
    Airbyte03,
}

impl std::str::FromStr for Compat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "airbyte-0.3" => Ok(Compat::Airbyte03),
            other => Err(format!(
                "unknown compat mode `{other}`; the only mode is `airbyte-0.3`"
            )),
        }
    }
}

/// What a fault does to a matching request (DESIGN.md §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with `status` (default 503) and a Drift error body; 429 adds `Retry-After: 1`.
    Status,
    /// Drop the connection without a complete response.
    Reset,
    /// Send the normal body in small chunks spread over `delay_ms` (default 2000 ms).
    SlowBody,
    /// Send only the first half of the JSON body (status 200, consistent Content-Length).
    Truncate,
    /// The page's next cursor is the cursor of the page itself.
    RepeatCursor,
    /// The page's next cursor points back to the first page (a cycle).
    CursorCycle,
    /// Revoke the presented token: this and every later request with it gets 401.
    RevokeToken,
}

impl FaultKind {
    /// The name used in fault plans and the request log (`slow_body`, ...).
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Status => "status",
            FaultKind::Reset => "reset",
            FaultKind::SlowBody => "slow_body",
            FaultKind::Truncate => "truncate",
            FaultKind::RepeatCursor => "repeat_cursor",
            FaultKind::CursorCycle => "cursor_cycle",
            FaultKind::RevokeToken => "revoke_token",
        }
    }
}

/// One fault of a plan. A fault matches requests to `route` (`"*"` = all Drift routes); it
/// fires on a matching request whose number (1-based, per fault) is above `after_requests`,
/// at most `count` times (absent = unlimited), each time with `probability` (absent = 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Route name such as `conversations.list`, or `*`.
    pub route: String,
    /// What happens.
    pub kind: FaultKind,
    /// HTTP status for `kind: status` (default 503).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Matching requests let through before the fault starts firing.
    #[serde(default)]
    pub after_requests: u64,
    /// Maximum number of firings; absent = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Chance of firing on an eligible request, 0.0..=1.0; absent = 1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Total body delay for `slow_body`, ms (default 2000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

/// The JSON document of `--faults FILE` and `POST /__sandbox/faults`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// Faults, checked in order; the first that fires wins.
    pub faults: Vec<FaultSpec>,
}

impl FaultPlan {
    /// Parse and validate a plan from JSON text. Errors name the field and the fix.
    pub fn from_json(text: &str) -> Result<FaultPlan, String> {
        let plan: FaultPlan = serde_json::from_str(text).map_err(|e| {
            format!("invalid fault plan: {e}; expected {{\"faults\": [{{\"route\": \"conversations.list\", \"kind\": \"status\", \"status\": 503}}]}}")
        })?;
        for (i, f) in plan.faults.iter().enumerate() {
            f.validate().map_err(|m| format!("faults[{i}]: {m}"))?;
        }
        Ok(plan)
    }
}

impl FaultSpec {
    /// Check value ranges; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(p) = self.probability {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("probability must be between 0 and 1, got {p}"));
            }
        }
        if let Some(s) = self.status {
            if !(100..=599).contains(&s) {
                return Err(format!("status must be an HTTP status 100..599, got {s}"));
            }
        }
        if self.route != "*" && !crate::api::ROUTES.contains(&self.route.as_str()) {
            return Err(format!(
                "route `{}` is not a sandbox route: use `*` or one of {}",
                self.route,
                crate::api::ROUTES.join(", ")
            ));
        }
        Ok(())
    }
}

/// Why a sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The listening socket could not be bound.
    #[error(
        "cannot listen on 127.0.0.1:{port}: {source}; pick another --port or 0 for a free one"
    )]
    Bind {
        /// Requested port.
        port: u16,
        /// The OS error.
        source: std::io::Error,
    },
    /// A fixtures file is missing, unreadable or not the expected JSON.
    #[error("fixtures {path}: {message}")]
    Fixtures {
        /// File or directory at fault.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A configuration value is invalid.
    #[error("invalid sandbox setting `{field}`: {message}")]
    Config {
        /// The setting.
        field: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
}
