//! The one config of every protocol mode (`driftbridge airbyte …`, `driftbridge singer`): a
//! flat JSON object, mapped to the same credential model the CLI uses (a Drift client with
//! base URL, key, optional OAuth refresh, rate budget and shared budget). Nothing is saved to
//! the metadata store: the platform running driftbridge keeps the config and the state.
//!
//! ```json
//! {"access_token": "…", "base_url": "https://driftapi.com", "start_date": "2024-01-01T00:00:00Z",
//!  "rate_limit_per_min": 600, "oauth": {"client_id": "…", "client_secret": "…", "refresh_token": "…"},
//!  "shared_budget_url": "postgres://…", "credential_name": "prod", "user_agent": "…",
//!  "streams": ["conversations", "users"], "contacts_recheck": 1000}
//! ```

use drift_client::shared::BudgetShare;
use drift_client::{Client, OAuthRefresh, SecretString};
use flows::drift_auth::DriftAuth;
use flows::AddressPolicy;
use serde_json::{Map, Value};
use source_drift::DriftSourceConfig;
use std::path::Path;
use std::sync::Arc;

/// Drift's API root, the default `base_url` (REFERENCE §1).
pub const DEFAULT_BASE_URL: &str = "https://driftapi.com";
/// Default request budget, requests per minute (DESIGN.md §4).
pub const DEFAULT_RATE_PER_MIN: u32 = 600;

/// A config that cannot be used: the field at fault and the fix. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config field `{field}`: {message}")]
pub struct ConfigError {
    /// The JSON key at fault (`oauth.client_secret` for nested keys, `config` for the file).
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ConfigError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// An OAuth app whose refresh token mints new access tokens (REFERENCE §2.2). `Debug`
/// shows no secret.
#[derive(Debug, Clone)]
pub struct OAuthApp {
    /// The app's client id (not a secret).
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: SecretString,
    /// The current refresh token.
    pub refresh_token: SecretString,
}

/// The protocol modes' config, checked. `Debug` shows no secret (they are
/// [`SecretString`]s).
#[derive(Debug, Clone)]
pub struct ProtocolConfig {
    /// `access_token`: the Drift token, sent as `Authorization: Bearer`. Required.
    pub access_token: SecretString,
    /// `base_url` (default `https://driftapi.com`), trailing slashes removed.
    pub base_url: String,
    /// `start_date` (RFC 3339) as epoch milliseconds: records last updated before it are not
    /// read on the first run (see [`ProtocolConfig::source_config`]).
    pub start_date_ms: Option<i64>,
    /// `rate_limit_per_min` (default 600).
    pub rate_limit_per_min: u32,
    /// `oauth`: `client_id`, `client_secret`, `refresh_token` (all three, or none).
    pub oauth: Option<OAuthApp>,
    /// `shared_budget_url`: a PostgreSQL URL whose table `driftbridge_rate_budget` holds the
    /// rate budget shared with every driftbridge process using the same credential name and
    /// base URL (README "One rate budget").
    pub shared_budget_url: Option<SecretString>,
    /// `credential_name` (default `driftbridge`): the name under which the budget is shared;
    /// give the name of the CLI's credential to share its budget.
    pub credential_name: String,
    /// `user_agent`: the `User-Agent` header (Singer best practice); default
    /// `driftbridge/<version>`.
    pub user_agent: Option<String>,
    /// `streams`: the streams `check` tests the token's scopes for (default: none named,
    /// the check then only lists what the token can read).
    pub streams: Vec<String>,
    /// `contacts_recheck`: known contacts an incremental run re-reads (the CLI's
    /// `--contacts-recheck`; default 1000, 0 turns it off).
    pub contacts_recheck: usize,
}

impl ProtocolConfig {
    /// Read and check the config file at `path`.
    ///
    /// Errors: [`ConfigError`] for an unreadable file (field `config`), invalid JSON, or a
    /// field of the wrong type or value.
    pub fn load(path: &Path) -> Result<ProtocolConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new("config", format!("cannot read {}: {e}", path.display()))
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            ConfigError::new("config", format!("{} is not JSON: {e}", path.display()))
        })?;
        ProtocolConfig::from_json(&value)
    }

    /// Check a config object (see the module docs for its keys). Unknown keys are ignored.
    pub fn from_json(value: &Value) -> Result<ProtocolConfig, ConfigError> {
        let Some(obj) = value.as_object() else {
            return Err(ConfigError::new("config", "must be a JSON object"));
        };
        let access_token = match string(obj, "access_token")? {
            Some(t) if !t.trim().is_empty() => SecretString::from(t),
            _ => {
                return Err(ConfigError::new(
                    "access_token",
                    "is required: the Drift access token (Drift app settings, OAuth tab)",
                ))
            }
        };
        let base_url = string(obj, "base_url")?
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_string())
            .trim()
            .trim_end_matches('/')
            .to_string();
        let start_date_ms = match string(obj, "start_date")? {
            Some(s) if !s.trim().is_empty() => Some(parse_start_date(s.trim())?),
            _ => None,
        };
        let rate_limit_per_min = match number(obj, "rate_limit_per_min")? {
            None => DEFAULT_RATE_PER_MIN,
            Some(0) => {
                return Err(ConfigError::new(
                    "rate_limit_per_min",
                    "must be at least 1 (requests per minute; Drift's default is 600)",
                ))
            }
            Some(n) => u32::try_from(n).unwrap_or(u32::MAX),
        };
        let contacts_recheck = number(obj, "contacts_recheck")?
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            .unwrap_or(DriftSourceConfig::default().contacts_recheck_per_run);
        let shared_budget_url = match string(obj, "shared_budget_url")? {
            Some(u) if !u.trim().is_empty() => {
                let u = u.trim();
                if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                    return Err(ConfigError::new(
                        "shared_budget_url",
                        "must be a PostgreSQL URL (postgres://user@host/db); leave it out to pace this process alone",
                    ));
                }
                Some(SecretString::from(u.to_string()))
            }
            _ => None,
        };
        let streams = match obj.get("streams") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        ConfigError::new("streams", "must be a list of stream names")
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(ConfigError::new(
                    "streams",
                    "must be a list of stream names",
                ))
            }
        };
        for s in &streams {
            if source_drift::stream_def(s).is_none() {
                let known: Vec<&str> = source_drift::STREAMS.iter().map(|d| d.name).collect();
                return Err(ConfigError::new(
                    "streams",
                    format!(
                        "unknown stream `{s}`: available streams are {}",
                        known.join(", ")
                    ),
                ));
            }
        }
        Ok(ProtocolConfig {
            access_token,
            base_url,
            start_date_ms,
            rate_limit_per_min,
            oauth: oauth(obj)?,
            shared_budget_url,
            credential_name: string(obj, "credential_name")?
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| "driftbridge".to_string()),
            user_agent: string(obj, "user_agent")?.filter(|u| !u.trim().is_empty()),
            streams,
            contacts_recheck,
        })
    }

    /// The Drift authentication: the key, and the OAuth refresh when `oauth` is set
    /// (refreshed tokens stay in this process; nothing is saved).
    pub fn auth(&self) -> DriftAuth {
        match &self.oauth {
            None => DriftAuth::key_only(self.access_token.clone()),
            Some(app) => DriftAuth::with_oauth(
                self.access_token.clone(),
                OAuthRefresh {
                    client_id: app.client_id.clone(),
                    client_secret: app.client_secret.clone(),
                    refresh_token: app.refresh_token.clone(),
                    on_refresh: Arc::new(|_| Ok(())),
                    reload: None,
                },
            ),
        }
    }

    /// The Drift client of a run: base URL, key (and OAuth), the rate budget, the user
    /// agent and, with `shared_budget_url`, the budget shared through PostgreSQL under
    /// `<credential_name>@<base_url>` (the key `driftbridge sync --shared-budget` uses for a
    /// credential of that name). Any address is allowed, as in the CLI.
    ///
    /// Errors: [`ConfigError`] naming `base_url`, `access_token` or `user_agent`.
    pub fn client(&self) -> Result<Client, ConfigError> {
        let mut builder = self
            .auth()
            .client(&self.base_url, AddressPolicy::AllowPrivate)
            .rate_limit_per_min(self.rate_limit_per_min);
        if let Some(ua) = &self.user_agent {
            builder = builder.user_agent(ua.clone());
        }
        if let Some(url) = &self.shared_budget_url {
            builder = builder.share_budget(BudgetShare {
                backend: Arc::new(store::PostgresBudget::new(url.clone())),
                key: format!("{}@{}", self.credential_name.to_lowercase(), self.base_url),
            });
        }
        builder.build().map_err(|e| {
            let field = match &e {
                drift_client::Error::Config { field: "token", .. } => "access_token",
                drift_client::Error::Config {
                    field: "user_agent",
                    ..
                } => "user_agent",
                _ => "base_url",
            };
            ConfigError::new(field, AddressPolicy::explain(&e))
        })
    }

    /// The Drift source's options: `contacts_recheck` and `start_date`.
    pub fn source_config(&self) -> DriftSourceConfig {
        DriftSourceConfig {
            contacts_recheck_per_run: self.contacts_recheck,
            start_date_ms: self.start_date_ms,
            ..Default::default()
        }
    }
}

fn oauth(obj: &Map<String, Value>) -> Result<Option<OAuthApp>, ConfigError> {
    let o = match obj.get("oauth") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(ConfigError::new(
                "oauth",
                "must be an object with client_id, client_secret and refresh_token",
            ))
        }
    };
    let field = |name: &str| -> Result<Option<String>, ConfigError> {
        match o.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(_) => Err(ConfigError::new(
                &format!("oauth.{name}"),
                "must be a string",
            )),
        }
    };
    let (id, secret, refresh) = (
        field("client_id")?,
        field("client_secret")?,
        field("refresh_token")?,
    );
    match (id, secret, refresh) {
        (None, None, None) => Ok(None),
        (Some(client_id), Some(secret), Some(refresh)) => Ok(Some(OAuthApp {
            client_id,
            client_secret: SecretString::from(secret),
            refresh_token: SecretString::from(refresh),
        })),
        (id, secret, _) => {
            let missing = if id.is_none() {
                "client_id"
            } else if secret.is_none() {
                "client_secret"
            } else {
                "refresh_token"
            };
            Err(ConfigError::new(
                &format!("oauth.{missing}"),
                "is required when oauth is set (client_id, client_secret and refresh_token of the Drift app)",
            ))
        }
    }
}

fn string(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, ConfigError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ConfigError::new(key, "must be a string")),
    }
}

fn number(obj: &Map<String, Value>, key: &str) -> Result<Option<u64>, ConfigError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| ConfigError::new(key, "must be a whole number, 0 or more")),
        // Meltano and some UIs pass numbers as strings.
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ConfigError::new(key, "must be a whole number, 0 or more")),
        Some(_) => Err(ConfigError::new(key, "must be a whole number, 0 or more")),
    }
}

/// `start_date` as epoch ms: RFC 3339 (`2024-01-01T00:00:00Z`), or a bare date
/// (`2024-01-01`, midnight UTC).
fn parse_start_date(s: &str) -> Result<i64, ConfigError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    Err(ConfigError::new(
        "start_date",
        format!("`{s}` is not an RFC 3339 time; write it like 2024-01-01T00:00:00Z"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use serde_json::json;

    #[test]
    fn defaults_and_errors_name_the_field() {
        let c = ProtocolConfig::from_json(&json!({"access_token": "tok_123"})).unwrap();
        assert_eq!(c.base_url, "https://driftapi.com");
        assert_eq!(c.rate_limit_per_min, 600);
        assert_eq!(c.access_token.expose_secret(), "tok_123");
        assert!(!format!("{c:?}").contains("tok_123"));
        let e = ProtocolConfig::from_json(&json!({})).unwrap_err();
        assert_eq!(e.field, "access_token");
        let e = ProtocolConfig::from_json(&json!({"access_token": "t", "start_date": "yesterday"}))
            .unwrap_err();
        assert_eq!(e.field, "start_date");
        let e = ProtocolConfig::from_json(
            &json!({"access_token": "t", "oauth": {"client_id": "a", "client_secret": "b"}}),
        )
        .unwrap_err();
        assert_eq!(e.field, "oauth.refresh_token");
        let c = ProtocolConfig::from_json(
            &json!({"access_token": "t", "start_date": "2024-01-02T00:00:00Z", "rate_limit_per_min": "120"}),
        )
        .unwrap();
        assert_eq!(c.start_date_ms, Some(1_704_153_600_000));
        assert_eq!(c.rate_limit_per_min, 120);
    }
}
