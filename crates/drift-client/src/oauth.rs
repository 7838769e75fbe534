//! OAuth access-token refresh (REFERENCE §2.1, §2.2).
//!
//! Tokens of an OAuth app expire ("typically 2 hours"); the app's client id and secret plus a
//! refresh token mint a new one at `POST /oauth2/token` (`grant_type=refresh_token`). A
//! client built with [`ClientBuilder::oauth_refresh`](crate::ClientBuilder::oauth_refresh)
//! does this by itself: when Drift answers 401, it refreshes once (one exchange however many
//! requests are in flight), hands the new tokens to the caller's [`OnRefresh`] (to store
//! them: a refresh token may be replaced by each exchange), and sends the request again with
//! the new token. Refreshing on 401 follows Workato's connector (REFERENCE §2.2, `[3P]`); a
//! 403 is a missing scope and is not refreshed.
//!
//! Request: form-encoded `grant_type`, `client_id`, `client_secret`, `refresh_token` (the
//! documented style). Response: `access_token`, `refresh_token`, `expires_in` (seconds, as in
//! examples/oauth_token_response.json), `orgId`; the camelCase spellings are accepted too
//! (REFERENCE §2.2 "accept both spellings").

use std::sync::Arc;

use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::client::Client;
use crate::error::parse_error_body;
use crate::Error;

/// Route name of the token exchange in errors and the sandbox's stats.
pub const TOKEN_ROUTE: &str = "oauth.token";

/// Called with the tokens of each refresh, before they are used; the caller stores them.
/// An `Err` is logged and the run goes on with the new token in memory.
pub type OnRefresh = Arc<dyn Fn(&TokenGrant) -> Result<(), String> + Send + Sync>;

/// Reads the newest stored tokens, `(access token, refresh token)`: another process using
/// the same credential may have refreshed them (and so retired the refresh token this
/// client holds). `None` when they cannot be read.
pub type Reload = Arc<dyn Fn() -> Option<(SecretString, Option<SecretString>)> + Send + Sync>;

/// An OAuth app's client credentials and the refresh token to mint access tokens with.
/// `Debug` shows the client id only.
#[derive(Clone)]
pub struct OAuthRefresh {
    /// The app's `client_id` (developer settings; not a secret).
    pub client_id: String,
    /// The app's `client_secret`.
    pub client_secret: SecretString,
    /// The current refresh token.
    pub refresh_token: SecretString,
    /// Receives the tokens of every refresh (to store them encrypted).
    pub on_refresh: OnRefresh,
    /// Reads the stored tokens before an exchange and after a refused one, so that a token
    /// another process refreshed is used instead of a second exchange (whose refresh token
    /// that process has already retired). `None`: this client is the only user.
    pub reload: Option<Reload>,
}

impl std::fmt::Debug for OAuthRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthRefresh")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("refresh_token", &"[redacted]")
            .finish()
    }
}

/// What `POST /oauth2/token` returned. `Debug` hides the tokens.
#[derive(Clone)]
pub struct TokenGrant {
    /// The new access token.
    pub access_token: SecretString,
    /// The refresh token to use next time; `None` when Drift did not send one (keep the
    /// current one).
    pub refresh_token: Option<SecretString>,
    /// Lifetime of the access token in seconds, when sent.
    pub expires_in_s: Option<u64>,
    /// The org the token belongs to (`orgId`), when sent.
    pub org_id: Option<i64>,
}

impl std::fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenGrant")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_in_s", &self.expires_in_s)
            .field("org_id", &self.org_id)
            .finish()
    }
}

/// The refresh state a client keeps: the app, the newest refresh token, and Drift's refusal
/// of the last exchange (so the requests waiting on it do not each ask again).
pub(crate) struct OAuthState {
    pub client_id: String,
    pub client_secret: SecretString,
    slot: tokio::sync::Mutex<Slot>,
    pub on_refresh: OnRefresh,
    reload: Option<Reload>,
}

struct Slot {
    refresh_token: SecretString,
    /// Token generation whose refresh Drift refused, and the error message.
    refused: Option<(u64, String)>,
}

impl OAuthState {
    pub(crate) fn new(o: OAuthRefresh) -> OAuthState {
        OAuthState {
            client_id: o.client_id,
            client_secret: o.client_secret,
            slot: tokio::sync::Mutex::new(Slot {
                refresh_token: o.refresh_token,
                refused: None,
            }),
            on_refresh: o.on_refresh,
            reload: o.reload,
        }
    }
}

fn text_field(v: &Value, snake: &str, camel: &str) -> Option<String> {
    v.get(snake)
        .or_else(|| v.get(camel))
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().to_string())
}

fn int_field(v: &Value, snake: &str, camel: &str) -> Option<i64> {
    let f = v.get(snake).or_else(|| v.get(camel))?;
    f.as_i64().or_else(|| f.as_str()?.trim().parse().ok())
}

/// Reads a token response (either spelling). Errors name what is missing.
pub(crate) fn parse_grant(body: &[u8]) -> Result<TokenGrant, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let access =
        text_field(&v, "access_token", "accessToken").ok_or("the answer has no access_token")?;
    Ok(TokenGrant {
        access_token: SecretString::from(access),
        refresh_token: text_field(&v, "refresh_token", "refreshToken").map(SecretString::from),
        expires_in_s: int_field(&v, "expires_in", "expiresIn").and_then(|n| u64::try_from(n).ok()),
        org_id: int_field(&v, "orgId", "org_id"),
    })
}

/// Why Drift refused a token exchange, from the OAuth error code (RFC 6749 §5.2) of a
/// [`Error::Unauthorized`] on [`TOKEN_ROUTE`]: the fixes differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `invalid_client`: the client id or the client secret is wrong. Authorizing again does
    /// not help; the right client id and secret must be saved.
    Client,
    /// `invalid_grant` (and anything else): the refresh token was revoked, already used or
    /// has expired; the app must be authorized again for new access and refresh tokens.
    Grant,
}

/// Marker that [`refusal_message`] puts in the message of an `invalid_client` refusal and
/// [`refusal_of`] looks for.
const CLIENT_REFUSED: &str = "the OAuth client id or client secret is wrong";

/// The `error` code of an OAuth error body (`{"error": "invalid_client", ...}`).
fn oauth_error_code(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("error")?.as_str().map(str::to_string)
}

/// The message of a refused exchange: what Drift said and what is wrong, by error code.
fn refusal_message(status: u16, detail: &str, code: Option<&str>) -> String {
    let cause = if code == Some("invalid_client") {
        format!("{CLIENT_REFUSED} (authorizing the app again does not help)")
    } else {
        "the refresh token was revoked, already used or has expired; authorize the app again \
         and save its new access and refresh tokens in the credential"
            .to_string()
    };
    format!("the access token expired and refreshing it failed (HTTP {status}: {detail}): {cause}")
}

/// What kind of refused token exchange `error` is; `None` when it is not one (another
/// endpoint, another error, or a refresh without OAuth settings).
pub fn refusal_of(error: &Error) -> Option<Refusal> {
    match error {
        Error::Unauthorized { endpoint, message } if endpoint == TOKEN_ROUTE => {
            if message.contains(CLIENT_REFUSED) {
                Some(Refusal::Client)
            } else if message.starts_with("the access token expired") {
                Some(Refusal::Grant)
            } else {
                None
            }
        }
        _ => None,
    }
}

impl Client {
    /// After a 401 on a request sent with token generation `seen`: mint a new access token
    /// unless another task already did (generation moved on), store it through
    /// [`OnRefresh`] and use it from now on.
    ///
    /// Errors: no refresh configured (the 401 stands); Drift refused the refresh
    /// (`Unauthorized` on `oauth.token`, naming the fix; given at once, without another
    /// exchange, to every request that saw the same token); transport failures.
    pub(crate) async fn refresh_access_token(&self, seen: u64) -> Result<(), Error> {
        let inner = &self.inner;
        let Some(oauth) = &inner.oauth else {
            return Err(Error::Unauthorized {
                endpoint: TOKEN_ROUTE.into(),
                message: "no OAuth refresh token is configured".into(),
            });
        };
        let mut slot = oauth.slot.lock().await;
        if self.auth_generation() != seen {
            return Ok(());
        }
        if let Some((generation, message)) = &slot.refused {
            if *generation == seen {
                return Err(Error::Unauthorized {
                    endpoint: TOKEN_ROUTE.into(),
                    message: message.clone(),
                });
            }
        }
        if self.adopt_stored(oauth, &mut slot)? {
            return Ok(());
        }
        let url = inner.base.join("oauth2/token").map_err(|e| Error::Config {
            field: "base_url",
            message: format!("cannot build the token URL: {e}"),
        })?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("client_id", &oauth.client_id)
            .append_pair("client_secret", oauth.client_secret.expose_secret())
            .append_pair("refresh_token", slot.refresh_token.expose_secret())
            .finish();
        inner
            .budget
            .acquire(
                crate::budget::Lane::Main,
                inner.retry.max_total_wait,
                &self.meters,
            )
            .await?;
        inner.budget.record_request();
        self.meters.each(|m| m.request());
        let resp = inner
            .http
            .post(url)
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .body(body)
            .send()
            .await
            .map_err(|e| Error::Transport {
                endpoint: TOKEN_ROUTE.into(),
                message: inner.redactor.clean(&e.to_string()),
            })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| Error::Transport {
            endpoint: TOKEN_ROUTE.into(),
            message: inner.redactor.clean(&e.to_string()),
        })?;
        if !(200..300).contains(&status) {
            let parsed = parse_error_body(&bytes);
            let detail = inner.redactor.clean(&parsed.message);
            let message = refusal_message(status, &detail, oauth_error_code(&bytes).as_deref());
            if status >= 500 {
                return Err(Error::Server {
                    status,
                    endpoint: TOKEN_ROUTE.into(),
                    message,
                    retry_after: None,
                });
            }
            // Another process may have used the same refresh token a moment ago: its new
            // tokens are (or are about to be) stored.
            if oauth.reload.is_some() {
                for _ in 0..3 {
                    if self.adopt_stored(oauth, &mut slot)? {
                        return Ok(());
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                }
            }
            slot.refused = Some((seen, message.clone()));
            return Err(Error::Unauthorized {
                endpoint: TOKEN_ROUTE.into(),
                message,
            });
        }
        let grant = parse_grant(&bytes).map_err(|m| Error::Decode {
            endpoint: TOKEN_ROUTE.into(),
            snippet: inner.redactor.clean(&m),
        })?;
        if let Some(r) = &grant.refresh_token {
            inner.redactor.add(r.clone());
        }
        if let Err(e) = (oauth.on_refresh)(&grant) {
            tracing::error!(
                error = %inner.redactor.clean(e.as_str()),
                "the refreshed OAuth tokens could not be saved; this run goes on with them"
            );
        }
        self.set_token(&grant.access_token)?;
        if let Some(r) = grant.refresh_token {
            slot.refresh_token = r;
        }
        tracing::info!("refreshed the OAuth access token");
        Ok(())
    }
}

impl Client {
    /// Switch to the stored tokens when they differ from the ones in use (another process
    /// refreshed them). Returns whether it switched.
    fn adopt_stored(&self, oauth: &OAuthState, slot: &mut Slot) -> Result<bool, Error> {
        let Some((access, refresh)) = oauth.reload.as_ref().and_then(|reload| reload()) else {
            return Ok(false);
        };
        if access.expose_secret() == self.inner.redactor.token().expose_secret() {
            return Ok(false);
        }
        if let Some(r) = refresh {
            self.inner.redactor.add(r.clone());
            slot.refresh_token = r;
        }
        self.set_token(&access)?;
        tracing::info!("using the OAuth access token another process refreshed");
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_of_a_token_answer_are_read() {
        let snake = parse_grant(
            br#"{"access_token":"a1","refresh_token":"r1","expires_in":7200,"orgId":104455}"#,
        )
        .unwrap();
        assert_eq!(snake.access_token.expose_secret(), "a1");
        assert_eq!(snake.refresh_token.unwrap().expose_secret(), "r1");
        assert_eq!(
            (snake.expires_in_s, snake.org_id),
            (Some(7200), Some(104455))
        );
        let camel = parse_grant(br#"{"accessToken":"a2","expiresIn":"60"}"#).unwrap();
        assert_eq!(camel.access_token.expose_secret(), "a2");
        assert!(camel.refresh_token.is_none());
        assert_eq!(camel.expires_in_s, Some(60));
    }

    #[test]
    fn an_answer_without_an_access_token_is_an_error() {
        assert!(parse_grant(br#"{"refresh_token":"r"}"#)
            .unwrap_err()
            .contains("access_token"));
        assert!(parse_grant(b"<html>").unwrap_err().contains("not JSON"));
    }
}
