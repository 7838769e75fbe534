//! Credentials: the reusable Drift connection profile (name, base URL, encrypted API key,
//! rate budget, last test result). DESIGN.md §1 steps 1-2.

use crate::error::{Result, StoreError};
use crate::{from_json, new_id, now_ms, to_json, validate, vault, Store};
use rusqlite::{params, Connection, OptionalExtension, Row};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The secret field holding a credential's API key.
pub(crate) const API_KEY_FIELD: &str = "api_key";
/// Secret field of an OAuth app's client secret.
const OAUTH_SECRET_FIELD: &str = "oauth_client_secret";
/// Secret field of the newest OAuth refresh token.
const REFRESH_TOKEN_FIELD: &str = "oauth_refresh_token";

/// What refreshes a credential's expiring access token: an OAuth app's client id and secret
/// and the newest refresh token (REFERENCE §2.2). `Debug` shows the client id only.
#[derive(Clone)]
pub struct OAuthSettings {
    /// The app's `client_id`.
    pub client_id: String,
    /// The app's `client_secret`.
    pub client_secret: SecretString,
    /// The refresh token (replaced by each refresh that returns a new one).
    pub refresh_token: SecretString,
}

impl std::fmt::Debug for OAuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthSettings")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("refresh_token", &"[redacted]")
            .finish()
    }
}

/// What a key rotation does to a credential's OAuth refresh settings
/// ([`Store::rotate_credential`]).
#[derive(Debug, Clone, Default)]
pub enum OAuthChange {
    /// Keep them as they are (none stay none).
    #[default]
    Keep,
    /// Replace them (or add them to an install token).
    Set(OAuthSettings),
    /// Remove them: the key is an install token from now on.
    Remove,
}

/// Result of the last test of a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialStatus {
    /// Never tested since the key or base URL was set.
    Unverified,
    /// Drift accepted the token at the last test.
    Verified,
    /// The last test (or a run) failed; see `last_error`.
    Failed,
}

impl CredentialStatus {
    /// `"unverified"`, `"verified"` or `"failed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialStatus::Unverified => "unverified",
            CredentialStatus::Verified => "verified",
            CredentialStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        match text {
            "unverified" => Ok(CredentialStatus::Unverified),
            "verified" => Ok(CredentialStatus::Verified),
            "failed" => Ok(CredentialStatus::Failed),
            other => Err(StoreError::Corrupt(format!(
                "unknown credential status \"{other}\""
            ))),
        }
    }
}

impl std::fmt::Display for CredentialStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored credential, without its secret (the key appears only as `key_mask`).
/// Timestamps are epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// Stable id (`cred_` + 16 hex digits); the vault binds the key to it.
    pub id: String,
    /// Unique name (case-insensitive), 1-100 characters.
    pub name: String,
    /// Optional description, up to 1000 characters.
    pub description: Option<String>,
    /// Kind of credential; always `"drift"` for now.
    pub kind: String,
    /// Normalised base URL, e.g. `https://driftapi.com`.
    pub base_url: String,
    /// The key as shown to users: `••••` + its last 4 characters.
    pub key_mask: String,
    /// Request budget per minute shared by every use of this credential (default 600).
    pub rate_limit_per_min: u32,
    /// Last test result.
    pub status: CredentialStatus,
    /// When it was last tested (or marked failed).
    pub tested_at: Option<i64>,
    /// Drift org id from `token_info` (REFERENCE §2.3, parsed from `authenticated_userid`).
    pub org_id: Option<i64>,
    /// Scopes granted to the token, from the last successful test.
    pub scopes: Vec<String>,
    /// When the token expires; `None` for a non-expiring token (`expires_in: 0`) or untested.
    pub expires_at: Option<i64>,
    /// Error text of the last failed test or run.
    pub last_error: Option<String>,
    /// Client id of the OAuth app that refreshes the access token when it expires
    /// ([`Store::set_credential_oauth`]); `None` for an install token (never expires).
    #[serde(default)]
    pub oauth_client_id: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Last change time.
    pub updated_at: i64,
}

/// Input of [`Store::add_credential`]. Fields are validated and normalised by the store
/// (see [`validate`]).
#[derive(Debug)]
pub struct NewCredential {
    /// Name, 1-100 characters, unique case-insensitively.
    pub name: String,
    /// Optional description, up to 1000 characters.
    pub description: Option<String>,
    /// Base URL (https, or http to loopback); `None` means `https://driftapi.com`.
    pub base_url: Option<String>,
    /// The Drift access token.
    pub api_key: SecretString,
    /// Request budget per minute (default 600).
    pub rate_limit_per_min: u32,
}

/// Changes for [`Store::update_credential`]; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct CredentialUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description; `Some(None)` or a blank text removes it.
    pub description: Option<Option<String>>,
    /// New base URL; resets the status to unverified.
    pub base_url: Option<String>,
    /// New rate budget per minute.
    pub rate_limit_per_min: Option<u32>,
}

/// Outcome of testing a credential against Drift (`POST /app/token_info`, REFERENCE §2.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialTest {
    /// When the test ran (epoch ms).
    pub tested_at: i64,
    /// `Verified` or `Failed`.
    pub status: CredentialStatus,
    /// Org id the token belongs to.
    pub org_id: Option<i64>,
    /// Scopes granted to the token.
    pub scopes: Vec<String>,
    /// Expiry (epoch ms), `None` if the token never expires.
    pub expires_at: Option<i64>,
    /// Why the test failed (never contains the key).
    pub error: Option<String>,
}

impl CredentialTest {
    /// A passed test, now.
    pub fn verified(org_id: Option<i64>, scopes: Vec<String>, expires_at: Option<i64>) -> Self {
        CredentialTest {
            tested_at: now_ms(),
            status: CredentialStatus::Verified,
            org_id,
            scopes,
            expires_at,
            error: None,
        }
    }

    /// A failed test, now.
    pub fn failed(error: impl Into<String>) -> Self {
        CredentialTest {
            tested_at: now_ms(),
            status: CredentialStatus::Failed,
            org_id: None,
            scopes: Vec::new(),
            expires_at: None,
            error: Some(error.into()),
        }
    }
}

const COLUMNS: &str = "id, name, description, kind, base_url, key_mask, rate_limit_per_min, status,
    tested_at, org_id, scopes, expires_at, last_error, created_at, updated_at, oauth_client_id";

fn from_row(row: &Row<'_>) -> rusqlite::Result<(Credential, String, String)> {
    let credential = Credential {
        id: row.get(0)?,
        name: row.get(1)?,
        description: row.get(2)?,
        kind: row.get(3)?,
        base_url: row.get(4)?,
        key_mask: row.get(5)?,
        rate_limit_per_min: row.get(6)?,
        status: CredentialStatus::Unverified,
        tested_at: row.get(8)?,
        org_id: row.get(9)?,
        scopes: Vec::new(),
        expires_at: row.get(11)?,
        last_error: row.get(12)?,
        created_at: row.get(13)?,
        updated_at: row.get(14)?,
        oauth_client_id: row.get(15)?,
    };
    Ok((credential, row.get(7)?, row.get(10)?))
}

fn finish((mut credential, status, scopes): (Credential, String, String)) -> Result<Credential> {
    credential.status = CredentialStatus::parse(&status)?;
    credential.scopes = from_json(&scopes, "credentials.scopes")?;
    Ok(credential)
}

pub(crate) fn find(conn: &Connection, name: &str) -> Result<Credential> {
    let row = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM credentials WHERE name_key = ?1"),
            params![validate::name_key(name)],
            from_row,
        )
        .optional()?;
    row.map(finish)
        .transpose()?
        .ok_or_else(|| StoreError::credential_not_found(name))
}

/// `oauth` with each value checked and trimmed.
fn check_oauth(o: &OAuthSettings) -> Result<OAuthSettings> {
    Ok(OAuthSettings {
        client_id: validate::oauth_value("oauth_client_id", "client id", &o.client_id)?,
        client_secret: SecretString::from(validate::oauth_value(
            "oauth_client_secret",
            "client secret",
            o.client_secret.expose_secret(),
        )?),
        refresh_token: SecretString::from(validate::oauth_value(
            "oauth_refresh_token",
            "refresh token",
            o.refresh_token.expose_secret(),
        )?),
    })
}

/// Delete the OAuth settings of credential `id` (secret rows and client id) within `conn`'s
/// transaction.
fn delete_oauth(conn: &Connection, id: &str) -> Result<()> {
    conn.execute(
        "DELETE FROM secrets WHERE owner_id = ?1 AND field IN (?2, ?3)",
        params![id, OAUTH_SECRET_FIELD, REFRESH_TOKEN_FIELD],
    )?;
    conn.execute(
        "UPDATE credentials SET oauth_client_id = NULL, updated_at = ?2 WHERE id = ?1",
        params![id, now_ms()],
    )?;
    Ok(())
}

/// Save checked OAuth settings of credential `id` (secrets encrypted) within `conn`'s
/// transaction.
fn put_oauth(
    conn: &Connection,
    vault: &vault::Unlocked,
    id: &str,
    oauth: &OAuthSettings,
) -> Result<()> {
    vault::put_secret(conn, vault, id, OAUTH_SECRET_FIELD, &oauth.client_secret)?;
    vault::put_secret(conn, vault, id, REFRESH_TOKEN_FIELD, &oauth.refresh_token)?;
    conn.execute(
        "UPDATE credentials SET oauth_client_id = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, oauth.client_id, now_ms()],
    )?;
    Ok(())
}

fn ensure_name_free(conn: &Connection, name: &str, except_id: Option<&str>) -> Result<()> {
    let existing: Option<(String, String)> = conn
        .query_row(
            "SELECT id, name FROM credentials WHERE name_key = ?1",
            params![validate::name_key(name)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match existing {
        Some((id, existing)) if Some(id.as_str()) != except_id => Err(StoreError::Duplicate {
            kind: "credential",
            name: name.to_string(),
            existing,
        }),
        _ => Ok(()),
    }
}

impl Store {
    /// Validate and save a new credential, its key encrypted. Status starts `unverified`.
    ///
    /// Errors: [`StoreError::Invalid`] (field `name`, `description`, `base_url`, `api_key`,
    /// `rate_limit_per_min`), [`StoreError::Duplicate`], [`StoreError::WrongMasterKey`].
    pub fn add_credential(&self, new: &NewCredential) -> Result<Credential> {
        self.add_credential_with_oauth(new, None)
    }

    /// [`Store::add_credential`] with OAuth refresh settings, saved in the same transaction
    /// (both or neither). Errors as for [`Store::add_credential`] and
    /// [`Store::set_credential_oauth`].
    pub fn add_credential_with_oauth(
        &self,
        new: &NewCredential,
        oauth: Option<&OAuthSettings>,
    ) -> Result<Credential> {
        let name = validate::name(&new.name)?;
        let description = validate::description(new.description.as_deref())?;
        let base_url = validate::base_url(
            new.base_url
                .as_deref()
                .unwrap_or(validate::DEFAULT_BASE_URL),
        )?;
        let key = validate::api_key(&new.api_key)?.key;
        let rate = validate::rate_limit_per_min(new.rate_limit_per_min)?;
        let oauth = oauth.map(check_oauth).transpose()?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        ensure_name_free(&tx, &name, None)?;
        let vault = vault::unlock(&tx, &self.key_source(), &self.data_dir)?;
        let id = new_id("cred");
        let now = now_ms();
        tx.execute(
            "INSERT INTO credentials (id, name, name_key, kind, description, base_url, key_mask,
               rate_limit_per_min, status, created_at, updated_at)
             VALUES (?1, ?2, ?3, 'drift', ?4, ?5, ?6, ?7, 'unverified', ?8, ?8)",
            params![
                id,
                name,
                validate::name_key(&name),
                description,
                base_url.url,
                validate::mask(&key),
                rate,
                now
            ],
        )?;
        vault::put_secret(&tx, &vault, &id, API_KEY_FIELD, &key)?;
        if let Some(oauth) = &oauth {
            put_oauth(&tx, &vault, &id, oauth)?;
        }
        let credential = find(&tx, &name)?;
        tx.commit()?;
        Ok(credential)
    }

    /// All credentials, ordered by name (case-insensitive).
    pub fn list_credentials(&self) -> Result<Vec<Credential>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM credentials ORDER BY name_key"
        ))?;
        let rows = stmt.query_map([], from_row)?;
        rows.map(|r| finish(r?)).collect()
    }

    /// One credential by name (case-insensitive). Errors: [`StoreError::NotFound`] naming it.
    pub fn credential(&self, name: &str) -> Result<Credential> {
        find(&self.conn(), name)
    }

    /// Decrypt a credential's API key.
    ///
    /// Errors: [`StoreError::NotFound`], [`StoreError::WrongMasterKey`],
    /// [`StoreError::Decrypt`] (altered ciphertext; names the credential).
    pub fn credential_api_key(&self, name: &str) -> Result<SecretString> {
        let conn = self.conn();
        let credential = find(&conn, name)?;
        let vault = vault::unlock(&conn, &self.key_source(), &self.data_dir)?;
        vault::get_secret(
            &conn,
            &vault,
            &credential.id,
            &credential.name,
            API_KEY_FIELD,
        )
    }

    /// Replace a credential's API key (re-encrypted with a fresh nonce). The status goes back to
    /// `unverified` and the previous test result is cleared; callers re-test. OAuth refresh
    /// settings are kept (see [`Store::rotate_credential`]).
    pub fn rotate_credential_key(&self, name: &str, api_key: &SecretString) -> Result<Credential> {
        self.rotate_credential(name, api_key, &OAuthChange::Keep)
    }

    /// Replace a credential's API key and keep, replace or remove its OAuth refresh settings,
    /// in one transaction (a failure changes nothing). The status goes back to `unverified`.
    ///
    /// Errors: [`StoreError::Invalid`] (field `api_key`, `oauth_client_id`,
    /// `oauth_client_secret` or `oauth_refresh_token`), [`StoreError::NotFound`],
    /// [`StoreError::WrongMasterKey`].
    pub fn rotate_credential(
        &self,
        name: &str,
        api_key: &SecretString,
        oauth: &OAuthChange,
    ) -> Result<Credential> {
        let key = validate::api_key(api_key)?.key;
        let oauth = match oauth {
            OAuthChange::Set(o) => OAuthChange::Set(check_oauth(o)?),
            other => other.clone(),
        };
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let credential = find(&tx, name)?;
        let vault = vault::unlock(&tx, &self.key_source(), &self.data_dir)?;
        vault::put_secret(&tx, &vault, &credential.id, API_KEY_FIELD, &key)?;
        match &oauth {
            OAuthChange::Keep => {}
            OAuthChange::Set(o) => put_oauth(&tx, &vault, &credential.id, o)?,
            OAuthChange::Remove => delete_oauth(&tx, &credential.id)?,
        }
        tx.execute(
            "UPDATE credentials SET key_mask = ?2, status = 'unverified', tested_at = NULL,
               org_id = NULL, scopes = '[]', expires_at = NULL, last_error = NULL, updated_at = ?3
             WHERE id = ?1",
            params![credential.id, validate::mask(&key), now_ms()],
        )?;
        let updated = find(&tx, &credential.name)?;
        tx.commit()?;
        Ok(updated)
    }

    /// Change name, description, base URL or rate budget. A new base URL resets the status to
    /// `unverified`. Errors as for [`Store::add_credential`], plus [`StoreError::NotFound`].
    pub fn update_credential(&self, name: &str, update: &CredentialUpdate) -> Result<Credential> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut current = find(&tx, name)?;
        if let Some(new_name) = &update.name {
            let new_name = validate::name(new_name)?;
            ensure_name_free(&tx, &new_name, Some(&current.id))?;
            current.name = new_name;
        }
        if let Some(description) = &update.description {
            current.description = validate::description(description.as_deref())?;
        }
        if let Some(rate) = update.rate_limit_per_min {
            current.rate_limit_per_min = validate::rate_limit_per_min(rate)?;
        }
        let mut reset = false;
        if let Some(url) = &update.base_url {
            let url = validate::base_url(url)?.url;
            reset = url != current.base_url;
            current.base_url = url;
        }
        tx.execute(
            "UPDATE credentials SET name = ?2, name_key = ?3, description = ?4, base_url = ?5,
               rate_limit_per_min = ?6, updated_at = ?7 WHERE id = ?1",
            params![
                current.id,
                current.name,
                validate::name_key(&current.name),
                current.description,
                current.base_url,
                current.rate_limit_per_min,
                now_ms()
            ],
        )?;
        if reset {
            tx.execute(
                "UPDATE credentials SET status = 'unverified', tested_at = NULL, org_id = NULL,
                   scopes = '[]', expires_at = NULL, last_error = NULL WHERE id = ?1",
                params![current.id],
            )?;
        }
        let updated = find(&tx, &current.name)?;
        tx.commit()?;
        Ok(updated)
    }

    /// Delete a credential and its secrets. Refuses with [`StoreError::InUse`] (naming the
    /// sources, destinations and flows) while anything uses it, unless `force`; with `force`
    /// those keep existing with no credential.
    pub fn delete_credential(&self, name: &str, force: bool) -> Result<Credential> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let credential = find(&tx, name)?;
        let users = crate::catalog::users_of(&tx, &credential.id)?;
        if !users.is_empty() && !force {
            return Err(StoreError::InUse {
                name: credential.name,
                users: users.iter().map(ToString::to_string).collect(),
            });
        }
        tx.execute(
            "DELETE FROM secrets WHERE owner_id = ?1",
            params![credential.id],
        )?;
        tx.execute(
            "DELETE FROM credentials WHERE id = ?1",
            params![credential.id],
        )?;
        tx.commit()?;
        Ok(credential)
    }

    /// Store the result of a test: status, time, org id, scopes, expiry and error text. A failed
    /// test keeps the org id and scopes of the last successful one.
    pub fn record_credential_test(&self, name: &str, result: &CredentialTest) -> Result<()> {
        let conn = self.conn();
        let credential = find(&conn, name)?;
        if result.status == CredentialStatus::Verified {
            conn.execute(
                "UPDATE credentials SET status = 'verified', tested_at = ?2, org_id = ?3,
                   scopes = ?4, expires_at = ?5, last_error = NULL, updated_at = ?6 WHERE id = ?1",
                params![
                    credential.id,
                    result.tested_at,
                    result.org_id,
                    to_json(&result.scopes),
                    result.expires_at,
                    now_ms()
                ],
            )?;
        } else {
            conn.execute(
                "UPDATE credentials SET status = ?2, tested_at = ?3, last_error = ?4, updated_at = ?5
                 WHERE id = ?1",
                params![
                    credential.id,
                    result.status.as_str(),
                    result.tested_at,
                    result.error,
                    now_ms()
                ],
            )?;
        }
        Ok(())
    }

    /// Let credential `name` refresh its access token with an OAuth app (`Some`), or stop
    /// it (`None`). The client secret and refresh token are encrypted like the key.
    ///
    /// Errors: [`StoreError::Invalid`] (field `oauth_client_id`, `oauth_client_secret` or
    /// `oauth_refresh_token`), [`StoreError::NotFound`], [`StoreError::WrongMasterKey`].
    pub fn set_credential_oauth(
        &self,
        name: &str,
        oauth: Option<&OAuthSettings>,
    ) -> Result<Credential> {
        let checked = oauth.map(check_oauth).transpose()?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let credential = find(&tx, name)?;
        match &checked {
            Some(oauth) => {
                let vault = vault::unlock(&tx, &self.key_source(), &self.data_dir)?;
                put_oauth(&tx, &vault, &credential.id, oauth)?;
            }
            None => delete_oauth(&tx, &credential.id)?,
        }
        let updated = find(&tx, &credential.name)?;
        tx.commit()?;
        Ok(updated)
    }

    /// Remove credential `name`'s OAuth refresh settings (client id, encrypted client secret
    /// and refresh token) in one transaction; its key stays, as an install token that is
    /// not refreshed. Removing settings that are not there is not an error.
    ///
    /// Errors: [`StoreError::NotFound`].
    pub fn clear_credential_oauth(&self, name: &str) -> Result<Credential> {
        self.set_credential_oauth(name, None)
    }

    /// The OAuth refresh settings of credential `name`, decrypted; `None` when it has none.
    ///
    /// Errors: [`StoreError::NotFound`], [`StoreError::WrongMasterKey`], [`StoreError::Decrypt`].
    pub fn credential_oauth(&self, name: &str) -> Result<Option<OAuthSettings>> {
        let conn = self.conn();
        let credential = find(&conn, name)?;
        let Some(client_id) = credential.oauth_client_id.clone() else {
            return Ok(None);
        };
        let vault = vault::unlock(&conn, &self.key_source(), &self.data_dir)?;
        let get = |field| vault::get_secret(&conn, &vault, &credential.id, &credential.name, field);
        Ok(Some(OAuthSettings {
            client_id,
            client_secret: get(OAUTH_SECRET_FIELD)?,
            refresh_token: get(REFRESH_TOKEN_FIELD)?,
        }))
    }

    /// Keep the tokens of an OAuth refresh for credential `id` (its id: a rename during a run
    /// does not lose them): the new access token becomes the key (mask updated), the new
    /// refresh token (when Drift sent one) replaces the old, and `expires_at` (epoch ms) is
    /// recorded. The credential becomes `verified` (also when it was `failed` or
    /// `unverified`), since Drift just accepted its app and minted the token.
    ///
    /// Errors: [`StoreError::NotFound`] (the credential was deleted), [`StoreError::Invalid`]
    /// (a token Drift sent is not printable ASCII), [`StoreError::WrongMasterKey`].
    pub fn save_refreshed_tokens(
        &self,
        id: &str,
        access_token: &SecretString,
        refresh_token: Option<&SecretString>,
        expires_at: Option<i64>,
    ) -> Result<()> {
        let key = validate::api_key_format(access_token)?.key;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let name: String = tx
            .query_row(
                "SELECT name FROM credentials WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::credential_not_found(id))?;
        let vault = vault::unlock(&tx, &self.key_source(), &self.data_dir)?;
        vault::put_secret(&tx, &vault, id, API_KEY_FIELD, &key)?;
        if let Some(refresh) = refresh_token {
            let refresh = SecretString::from(validate::oauth_value(
                "oauth_refresh_token",
                "refresh token",
                refresh.expose_secret(),
            )?);
            vault::put_secret(&tx, &vault, id, REFRESH_TOKEN_FIELD, &refresh)?;
        }
        tx.execute(
            "UPDATE credentials SET key_mask = ?2, expires_at = ?3, last_error = NULL,
               status = 'verified', updated_at = ?4
             WHERE id = ?1",
            params![id, validate::mask(&key), expires_at, now_ms()],
        )?;
        tracing::debug!(credential = %name, "stored refreshed OAuth tokens");
        tx.commit()?;
        Ok(())
    }

    /// Mark a credential failed (e.g. Drift answered 401 in the middle of a run), with the
    /// error text (which must not contain the key).
    pub fn mark_credential_failed(&self, name: &str, error: &str) -> Result<()> {
        self.record_credential_test(name, &CredentialTest::failed(error))
    }
}
