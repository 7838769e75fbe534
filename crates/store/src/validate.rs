//! Validation and normalisation of credential fields (DESIGN.md §1, §4 "Base URL", "Secrets").
//!
//! Pure functions, shared by the store (which enforces them on every write) and the front ends
//! (which call them first to show warnings and notices).

use crate::error::{Result, StoreError};
use secrecy::{ExposeSecret, SecretString};
use std::net::IpAddr;

/// Longest credential name, in characters.
pub const NAME_MAX_CHARS: usize = 100;
/// Longest credential description, in characters.
pub const DESCRIPTION_MAX_CHARS: usize = 1000;
/// Default Drift API base URL (REFERENCE §1).
pub const DEFAULT_BASE_URL: &str = "https://driftapi.com";
/// Default rate budget of a credential, requests per minute (DESIGN.md §4).
pub const DEFAULT_RATE_LIMIT_PER_MIN: u32 = 600;

/// Check a credential name: trimmed, 1-100 characters, no control characters.
/// Returns the trimmed name. Uniqueness (case-insensitive) is checked by the store.
pub fn name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(StoreError::invalid(
            "name",
            "the credential name is empty; give one with --name NAME",
        ));
    }
    let chars = name.chars().count();
    if chars > NAME_MAX_CHARS {
        return Err(StoreError::invalid(
            "name",
            format!("the credential name is {chars} characters long; use at most {NAME_MAX_CHARS}"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(StoreError::invalid(
            "name",
            "the credential name contains a control character; use printable characters only",
        ));
    }
    Ok(name.to_string())
}

/// The case-insensitive key of a name (Unicode lower case), used for uniqueness and lookup.
pub fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Check an optional description: at most 1000 characters, no control characters other than
/// line breaks and tabs (they would garble a terminal); blank becomes `None`.
pub fn description(raw: Option<&str>) -> Result<Option<String>> {
    let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let chars = text.chars().count();
    if chars > DESCRIPTION_MAX_CHARS {
        return Err(StoreError::invalid(
            "description",
            format!(
                "the description is {chars} characters long; use at most {DESCRIPTION_MAX_CHARS}"
            ),
        ));
    }
    if let Some(pos) = text
        .chars()
        .position(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(StoreError::invalid(
            "description",
            format!(
                "the description contains a control character at position {}; use plain text (line breaks and tabs are fine)",
                pos + 1
            ),
        ));
    }
    Ok(Some(text.to_string()))
}

/// Longest base URL accepted, in characters (a host name is at most 253).
pub const BASE_URL_MAX_CHARS: usize = 500;

/// Check a rate budget (requests per minute): 1 to 100 000.
pub fn rate_limit_per_min(value: u32) -> Result<u32> {
    if value == 0 || value > 100_000 {
        return Err(StoreError::invalid(
            "rate_limit_per_min",
            format!("{value} requests per minute is out of range; use 1 to 100000 (Drift's default budget is 600)"),
        ));
    }
    Ok(value)
}

/// A normalised base URL and the warnings produced while normalising it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// The URL to store: scheme, host, optional port and path, no trailing slash,
    /// no query or fragment. E.g. `https://driftapi.com`.
    pub url: String,
    /// Human warnings (a path Drift does not use, a dropped query or fragment).
    pub warnings: Vec<String>,
}

/// Check and normalise a base URL (DESIGN.md §4): `https://`, or `http://` only to a loopback
/// host (`localhost`, `127.0.0.0/8`, `::1`); no user info; trailing slashes removed. A path is
/// kept with a warning (Drift serves its API at the root); a query or fragment is removed with
/// a warning.
pub fn base_url(raw: &str) -> Result<BaseUrl> {
    let text = raw.trim();
    let chars = text.chars().count();
    if chars > BASE_URL_MAX_CHARS {
        return Err(StoreError::invalid(
            "base_url",
            format!("the base URL is {chars} characters long; use at most {BASE_URL_MAX_CHARS} (e.g. {DEFAULT_BASE_URL})"),
        ));
    }
    let parsed = url::Url::parse(text).map_err(|e| {
        StoreError::invalid(
            "base_url",
            format!("\"{text}\" is not a URL ({e}); use e.g. {DEFAULT_BASE_URL}"),
        )
    })?;
    let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or_else(|| {
        StoreError::invalid(
            "base_url",
            format!("\"{text}\" has no host; use e.g. {DEFAULT_BASE_URL}"),
        )
    })?;
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback(host) => {}
        "http" => {
            return Err(StoreError::invalid(
                "base_url",
                format!("http:// is only allowed to a loopback host (localhost, 127.0.0.1, ::1), not to {host}: the API key would travel unencrypted; use https://{host}"),
            ))
        }
        other => {
            return Err(StoreError::invalid(
                "base_url",
                format!("scheme \"{other}\" is not supported; use https:// (e.g. {DEFAULT_BASE_URL})"),
            ))
        }
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(StoreError::invalid(
            "base_url",
            "the URL contains a user name or password; remove them (the API key is sent as a Bearer token)",
        ));
    }
    Ok(normalise(&parsed))
}

fn normalise(parsed: &url::Url) -> BaseUrl {
    let mut warnings = Vec::new();
    let path = parsed.path().trim_end_matches('/');
    if !path.is_empty() {
        warnings.push(format!(
            "base URL has the path \"{path}\", which Drift does not use (its API is served at the root, e.g. {DEFAULT_BASE_URL}); keeping it for a proxy or custom endpoint"
        ));
    }
    if parsed.query().is_some() {
        warnings.push(
            "base URL has a query string, which Drift does not use; it was removed".to_string(),
        );
    }
    if parsed.fragment().is_some() {
        warnings
            .push("base URL has a #fragment, which Drift does not use; it was removed".to_string());
    }
    let mut origin = format!(
        "{}://{}",
        parsed.scheme(),
        parsed.host_str().unwrap_or_default()
    );
    if let Some(port) = parsed.port() {
        origin.push_str(&format!(":{port}"));
    }
    BaseUrl {
        url: format!("{origin}{path}"),
        warnings,
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A normalised API key and an optional notice for the user.
#[derive(Debug)]
pub struct ApiKey {
    /// The key to store.
    pub key: SecretString,
    /// Set when something was changed that the user should know (e.g. a stripped `Bearer `).
    pub notice: Option<String>,
}

/// Longest API key accepted, in characters. Drift access tokens are a few dozen characters;
/// a longer value is a pasted file or the wrong clipboard, not a key.
pub const API_KEY_MAX_CHARS: usize = 4096;

/// Shortest API key accepted from a person, in characters. Drift access tokens are far
/// longer; a shorter value is a fragment of one (and would be too easy to find inside other
/// text when redacting it from messages).
pub const API_KEY_MIN_CHARS: usize = 16;

/// Check and normalise an API key a person gives (the Drift access token): surrounding
/// whitespace and line endings trimmed; a leading `Bearer ` stripped with a notice; empty,
/// shorter than [`API_KEY_MIN_CHARS`], inner whitespace, control or non-ASCII characters, or
/// more than [`API_KEY_MAX_CHARS`] rejected. Errors never contain the key.
pub fn api_key(raw: &SecretString) -> Result<ApiKey> {
    let key = api_key_format(raw)?;
    if key.key.expose_secret().chars().count() < API_KEY_MIN_CHARS {
        return Err(StoreError::invalid(
            "api_key",
            format!("the API key is too short: Drift access tokens are much longer than {API_KEY_MIN_CHARS} characters; paste the whole token"),
        ));
    }
    Ok(key)
}

/// [`api_key`] without the minimum length: for an access token Drift itself just minted
/// (an OAuth refresh), which is kept whatever its length.
pub fn api_key_format(raw: &SecretString) -> Result<ApiKey> {
    let mut text = raw.expose_secret().trim();
    let mut notice = None;
    // `get`, not `[..7]`: byte 7 may fall inside a multi-byte character of a bad paste.
    if let Some(rest) = text
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("bearer "))
        .and_then(|_| text.get(7..))
        .filter(|rest| !rest.is_empty())
    {
        text = rest.trim_start();
        notice = Some(
            "the API key started with \"Bearer \"; the prefix was removed (driftbridge adds it to each request)"
                .to_string(),
        );
    }
    if text.eq_ignore_ascii_case("bearer") {
        return Err(StoreError::invalid(
            "api_key",
            "the API key is only the word \"Bearer\"; paste the token that follows it",
        ));
    }
    if text.is_empty() {
        return Err(StoreError::invalid(
            "api_key",
            "the API key is empty; paste the Drift access token at the prompt, or use --api-key-stdin or --api-key-env VAR",
        ));
    }
    if text.chars().count() > API_KEY_MAX_CHARS {
        return Err(StoreError::invalid(
            "api_key",
            format!("the API key is {} characters long; a Drift token is much shorter (at most {API_KEY_MAX_CHARS}): copy only the token", text.chars().count()),
        ));
    }
    if let Some((pos, c)) = text.char_indices().find(|(_, c)| !c.is_ascii_graphic()) {
        let what = if c.is_whitespace() {
            "whitespace"
        } else if c.is_control() {
            "a control character"
        } else {
            "a non-ASCII character"
        };
        return Err(StoreError::invalid(
            "api_key",
            format!("the API key contains {what} at position {}; a Drift token is one word of printable ASCII: copy only the token", pos + 1),
        ));
    }
    Ok(ApiKey {
        key: SecretString::from(text.to_string()),
        notice,
    })
}

/// The mask shown in place of a key: `••••` followed by its last 4 characters
/// (only `••••` when the key is shorter than 8 characters, so a short key is never shown whole).
pub fn mask(key: &SecretString) -> String {
    let chars: Vec<char> = key.expose_secret().chars().collect();
    if chars.len() < 8 {
        return "••••".to_string();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("••••{tail}")
}

/// Check and trim an OAuth secret (`oauth_client_secret`, `oauth_refresh_token`) or the
/// client id (`oauth_client_id`): one word of printable ASCII, 1 to [`API_KEY_MAX_CHARS`]
/// characters. `what` names it for people ("client secret"). Errors never contain the value.
pub fn oauth_value(field: &'static str, what: &str, raw: &str) -> Result<String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(StoreError::invalid(
            field,
            format!("the OAuth {what} is empty; copy it from the app's OAuth & Permissions page in Drift's developer portal (dev.drift.com)"),
        ));
    }
    if text.chars().count() > API_KEY_MAX_CHARS {
        return Err(StoreError::invalid(
            field,
            format!("the OAuth {what} is longer than {API_KEY_MAX_CHARS} characters: copy only the value"),
        ));
    }
    if let Some(pos) = text.chars().position(|c| !c.is_ascii_graphic()) {
        return Err(StoreError::invalid(
            field,
            format!("the OAuth {what} contains whitespace, a control or a non-ASCII character at position {}: copy only the value", pos + 1),
        ));
    }
    Ok(text.to_string())
}
