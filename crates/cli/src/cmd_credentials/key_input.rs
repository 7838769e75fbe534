//! Reading an API key: a prompt without echo, `--api-key-stdin` or `--api-key-env VAR`; never
//! a command-line value (it would be visible in the process list and shell history).

use crate::common::{exit, fail};
use secrecy::{ExposeSecret, SecretString};
use std::io::{IsTerminal, Read};
use zeroize::Zeroize;

/// Where the API key comes from. Without a flag, the key is prompted for (no echo).
#[derive(Debug, clap::Args)]
pub struct KeyInput {
    /// Read the API key (the Drift access token) from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "api_key_stdin")]
    pub api_key_env: Option<String>,
    /// Read the API key from standard input (surrounding whitespace and newline trimmed).
    #[arg(long)]
    pub api_key_stdin: bool,
    /// Refused: a key given on the command line is visible to other users in the process list.
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "", allow_hyphen_values = true)]
    pub api_key: Option<String>,
}

impl KeyInput {
    /// Read the raw key (not yet validated). Errors (exit 2) say which source failed and how
    /// to fix it; they never contain the key.
    pub fn read(&self) -> anyhow::Result<SecretString> {
        if self.api_key.is_some() {
            return Err(fail(
                exit::USAGE,
                "api_key: --api-key is not accepted, because a key on the command line is visible to other users in the process list and shell history; use --api-key-env VAR, --api-key-stdin, or answer the prompt",
            ));
        }
        if let Some(var) = &self.api_key_env {
            return from_env(var);
        }
        if self.api_key_stdin {
            return from_stdin();
        }
        prompt()
    }
}

fn from_env(var: &str) -> anyhow::Result<SecretString> {
    match std::env::var(var) {
        Ok(value) => Ok(SecretString::from(value)),
        Err(std::env::VarError::NotPresent) => Err(fail(
            exit::USAGE,
            format!("api_key: the environment variable {var} (from --api-key-env) is not set; export it with the Drift access token, or use --api-key-stdin"),
        )),
        Err(std::env::VarError::NotUnicode(_)) => Err(fail(
            exit::USAGE,
            format!("api_key: the environment variable {var} is not valid UTF-8; a Drift token is printable ASCII"),
        )),
    }
}

fn from_stdin() -> anyhow::Result<SecretString> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            fail(
                exit::FAILURE,
                format!("api_key: cannot read standard input: {e}"),
            )
        })?;
    let text = String::from_utf8(std::mem::take(&mut bytes)).map_err(|e| {
        let mut raw = e.into_bytes();
        raw.zeroize();
        fail(
            exit::USAGE,
            "api_key: standard input is not valid UTF-8; a Drift token is printable ASCII",
        )
    })?;
    Ok(SecretString::from(text))
}

fn prompt() -> anyhow::Result<SecretString> {
    if !std::io::stdin().is_terminal() {
        return Err(fail(
            exit::USAGE,
            "api_key: the API key is missing and there is no terminal to prompt on; pass --api-key-stdin (and pipe the key) or --api-key-env VAR",
        ));
    }
    let text = rpassword::prompt_password("Drift API key (input hidden): ").map_err(|e| {
        fail(
            exit::USAGE,
            format!("api_key: cannot read the key from the terminal ({e}); use --api-key-stdin or --api-key-env VAR"),
        )
    })?;
    Ok(SecretString::from(text))
}

/// OAuth refresh settings for a token of an OAuth app (REFERENCE §2.2): with them an expired
/// access token is refreshed by itself, in every command and in `serve`. The secrets come
/// from environment variables only, never the command line.
#[derive(Debug, clap::Args)]
pub struct OAuthInput {
    /// Client id of the OAuth app the access token belongs to; the access token is then
    /// refreshed when it expires. Needs --oauth-client-secret-env and --oauth-refresh-token-env.
    #[arg(long, value_name = "ID", requires_all = ["oauth_client_secret_env", "oauth_refresh_token_env"])]
    pub oauth_client_id: Option<String>,
    /// Read the OAuth app's client secret from this environment variable.
    #[arg(long, value_name = "VAR", requires = "oauth_client_id")]
    pub oauth_client_secret_env: Option<String>,
    /// Read the refresh token from this environment variable.
    #[arg(long, value_name = "VAR", requires = "oauth_client_id")]
    pub oauth_refresh_token_env: Option<String>,
}

impl OAuthInput {
    /// The settings, validated; `None` without `--oauth-client-id`. Errors (exit 2) name the
    /// flag and the variable, never a value.
    pub fn read(&self) -> anyhow::Result<Option<store::OAuthSettings>> {
        let Some(client_id) = &self.oauth_client_id else {
            return Ok(None);
        };
        let secret = oauth_env(
            "oauth_client_secret",
            "--oauth-client-secret-env",
            self.oauth_client_secret_env.as_deref(),
            "client secret",
        )?;
        let refresh = oauth_env(
            "oauth_refresh_token",
            "--oauth-refresh-token-env",
            self.oauth_refresh_token_env.as_deref(),
            "refresh token",
        )?;
        let check = |field, what, v: &str| {
            store::validate::oauth_value(field, what, v)
                .map_err(|e| fail(exit::USAGE, e.to_string()))
        };
        Ok(Some(store::OAuthSettings {
            client_id: check("oauth_client_id", "client id", client_id)?,
            client_secret: SecretString::from(check(
                "oauth_client_secret",
                "client secret",
                secret.expose_secret(),
            )?),
            refresh_token: SecretString::from(check(
                "oauth_refresh_token",
                "refresh token",
                refresh.expose_secret(),
            )?),
        }))
    }
}

fn oauth_env(
    field: &str,
    flag: &str,
    var: Option<&str>,
    what: &str,
) -> anyhow::Result<SecretString> {
    let Some(var) = var else {
        return Err(fail(
            exit::USAGE,
            format!("{field}: {flag} VAR is needed with --oauth-client-id"),
        ));
    };
    match std::env::var(var) {
        Ok(value) => Ok(SecretString::from(value)),
        Err(std::env::VarError::NotPresent) => Err(fail(
            exit::USAGE,
            format!("{field}: the environment variable {var} (from {flag}) is not set; export it with the OAuth app's {what}"),
        )),
        Err(std::env::VarError::NotUnicode(_)) => Err(fail(
            exit::USAGE,
            format!("{field}: the environment variable {var} is not valid UTF-8"),
        )),
    }
}
