//! Error taxonomy and the parsing of Drift's error bodies (REFERENCE §5).
//!
//! No variant ever holds the token: messages taken from response bodies pass through
//! [`Redactor`] before they are stored, so a server that echoes the token cannot leak it
//! into a log line or `Debug` output.

use std::time::Duration;

use serde_json::Value;

/// Everything a call to Drift can fail with.
///
/// `endpoint` fields carry the route name (`conversations.list`, `contacts.get`, ...), the
/// same names the sandbox uses in its stats and request log. Messages come from Drift's
/// error body (any documented shape, REFERENCE §5.1) with the token redacted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection failed or broke (DNS, refused, reset, body cut short, refused redirect).
    #[error("{endpoint}: connection to Drift failed: {message}")]
    Transport {
        /// Route name of the request.
        endpoint: String,
        /// What went wrong, from the HTTP library.
        message: String,
    },
    /// The request did not finish within the configured timeout (`ClientBuilder::timeout`).
    #[error("{endpoint}: request to Drift timed out")]
    Timeout {
        /// Route name of the request.
        endpoint: String,
    },
    /// HTTP 429 that could not be waited out: retries exhausted, or the server asked for a wait
    /// longer than `ClientBuilder::max_retry_wait`. `retry_after` is the wait Drift asked for.
    #[error("rate limited by Drift{}", fmt_retry_after(.retry_after))]
    RateLimited {
        /// Wait requested by `Retry-After` (or the rate-limit reset headers), when known.
        retry_after: Option<Duration>,
    },
    /// HTTP 401: the token is missing, invalid, expired or revoked. Not retried.
    #[error("{endpoint}: Drift rejected the token (401): {message}")]
    Unauthorized {
        /// Route name of the request.
        endpoint: String,
        /// Drift's message, e.g. "The access token is invalid or has expired".
        message: String,
    },
    /// HTTP 403: the token lacks a scope or the plan lacks the feature. Not retried.
    #[error("{endpoint}: forbidden (403){}: {message}", fmt_scope(.missing_scope))]
    Forbidden {
        /// Route name of the request.
        endpoint: String,
        /// The scope the endpoint needs (named in the body, else REFERENCE §3/§7).
        missing_scope: Option<String>,
        /// Drift's message.
        message: String,
    },
    /// HTTP 404: unknown id.
    #[error("{endpoint}: not found (404): {message}")]
    NotFound {
        /// Route name of the request.
        endpoint: String,
        /// Drift's message.
        message: String,
    },
    /// HTTP 409: duplicate (contact email, account domain).
    #[error("{endpoint}: conflict (409): {message}")]
    Conflict {
        /// Route name of the request.
        endpoint: String,
        /// Drift's message.
        message: String,
    },
    /// HTTP 400/405/422 and other 4xx: Drift refused the request (`status` is set), or the
    /// client refused to send it (a bad argument; `status` is `None`). `field` is Drift's
    /// `param`, or the argument at fault.
    #[error("invalid request{}: {message}", fmt_field(.field))]
    Invalid {
        /// The offending parameter when Drift names it (`errors[].param`).
        field: Option<String>,
        /// Drift's message, prefixed with the route and status.
        message: String,
        /// HTTP status of Drift's answer; `None` when no request was sent.
        status: Option<u16>,
    },
    /// HTTP 5xx (after retries).
    #[error("{endpoint}: Drift server error {status}: {message}")]
    Server {
        /// HTTP status code.
        status: u16,
        /// Route name of the request.
        endpoint: String,
        /// Drift's message.
        message: String,
        /// `Retry-After` sent with the error, when any.
        retry_after: Option<Duration>,
    },
    /// A 2xx body whose envelope cannot be read: not JSON (empty, HTML, cut short; reads are
    /// retried twice first), or JSON of the wrong shape (not retried). E.g.
    /// `users.list: expected a JSON object with a "data" list; got HTTP 200, content type
    /// text/html, 1532 bytes (starts: "<html>…"); not JSON: expected value at line 1 column 1`.
    /// Records that do not fit their model are not this error (see [`Error::Unfit`]).
    #[error("{endpoint}: {snippet}")]
    Decode {
        /// Route name of the request.
        endpoint: String,
        /// What was expected and what came: HTTP status, content type, length and start of
        /// the body, the parse error (tokens redacted).
        snippet: String,
    },
    /// The one record a call asked for (`contact(id)`, `account(id)`, a create's answer,
    /// ...) does not fit its model even leniently. `key` is the id asked for. List calls
    /// never fail with it: they return such records in `unfit` beside the others.
    #[error("{0}")]
    Unfit(Box<crate::Unfit>),
    /// Pagination broke: repeated cursor, cursor cycle, `more: true` without a cursor, a next
    /// link to another host, or the page cap reached. `page` is the 1-based page number.
    #[error("{endpoint}: pagination failed at page {page}: {reason}")]
    Pagination {
        /// Route name of the paginated endpoint.
        endpoint: String,
        /// 1-based number of the page whose cursor was bad.
        page: u32,
        /// What was wrong.
        reason: String,
    },
    /// The base URL's host is, or resolves only to, a loopback, private, link-local or other
    /// internal address, and the client was built with
    /// [`ClientBuilder::deny_private_addresses`](crate::ClientBuilder::deny_private_addresses).
    /// No connection was opened, so no request and no token left. Not retried.
    #[error(
        "refused to connect to {host}: {reason}; this client only connects to public addresses"
    )]
    PrivateAddress {
        /// The host of the base URL (name or IP).
        host: String,
        /// Why it is internal, e.g. `10.0.0.1 is a private address`.
        reason: String,
    },
    /// The request was not sent because the caller stopped the client's work
    /// ([`Client::with_stop`](crate::Client::with_stop)) while it waited for the rate budget,
    /// a concurrency slot or a retry. Nothing left for this request.
    #[error("{endpoint}: not sent: stopped while waiting to send")]
    Stopped {
        /// Route name of the request.
        endpoint: String,
    },
    /// Bad client configuration: base URL, token characters, cursor, builder values.
    #[error("invalid {field}: {message}")]
    Config {
        /// The setting at fault (`base_url`, `token`, `cursor`, ...).
        field: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
}

fn fmt_retry_after(d: &Option<Duration>) -> String {
    match d {
        Some(d) => format!(" (Retry-After {} s)", whole_seconds(*d)),
        None => String::new(),
    }
}

/// `d` in whole seconds, rounded up (`3599.6 s` prints as `3600`), for messages.
pub(crate) fn whole_seconds(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

fn fmt_scope(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(", scope {s} needed"))
        .unwrap_or_default()
}

fn fmt_field(f: &Option<String>) -> String {
    f.as_ref()
        .map(|f| format!(" (field {f})"))
        .unwrap_or_default()
}

impl Error {
    /// HTTP status of the error response behind this error: 401, 403, 404, 409, 429, 5xx,
    /// and 400/405/422 or any other 4xx (`Invalid`). `None` when no error response came:
    /// transport failures, timeouts, refusals before sending, and 2xx bodies that could not
    /// be read (`Decode` names the status in its message; `Unfit`).
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Invalid { status, .. } => *status,
            Error::RateLimited { .. } => Some(429),
            Error::Unauthorized { .. } => Some(401),
            Error::Forbidden { .. } => Some(403),
            Error::NotFound { .. } => Some(404),
            Error::Conflict { .. } => Some(409),
            Error::Server { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for 401/403: the credential itself is the problem (DESIGN §4, exit code 3).
    pub fn is_auth(&self) -> bool {
        matches!(self, Error::Unauthorized { .. } | Error::Forbidden { .. })
    }

    /// Wait the server asked for, if any (`Retry-After` on 429/503).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after } | Error::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Short stable name of the variant (`rate_limited`, `unauthorized`, ...) for logs and
    /// run summaries.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Transport { .. } => "transport",
            Error::Timeout { .. } => "timeout",
            Error::RateLimited { .. } => "rate_limited",
            Error::Unauthorized { .. } => "unauthorized",
            Error::Forbidden { .. } => "forbidden",
            Error::NotFound { .. } => "not_found",
            Error::Conflict { .. } => "conflict",
            Error::Invalid { .. } => "invalid",
            Error::Server { .. } => "server",
            Error::Decode { .. } => "decode",
            Error::Unfit(_) => "unfit",
            Error::Pagination { .. } => "pagination",
            Error::Config { .. } => "config",
            Error::PrivateAddress { .. } => "private_address",
            Error::Stopped { .. } => "stopped",
        }
    }
}

/// Replaces every occurrence of the client's tokens (the first one and every one a refresh
/// brought, refresh tokens and client secret included) in text taken from a response.
/// Clones share the list.
#[derive(Clone)]
pub(crate) struct Redactor {
    tokens: std::sync::Arc<std::sync::RwLock<Vec<secrecy::SecretString>>>,
}

impl Redactor {
    pub(crate) fn new(token: secrecy::SecretString) -> Self {
        Redactor {
            tokens: std::sync::Arc::new(std::sync::RwLock::new(vec![token])),
        }
    }

    /// The access token in use (the newest).
    pub(crate) fn token(&self) -> secrecy::SecretString {
        let tokens = self.tokens.read().unwrap_or_else(|e| e.into_inner());
        tokens
            .last()
            .cloned()
            .unwrap_or_else(|| secrecy::SecretString::from(String::new()))
    }

    /// Redact `secret` too from now on; the newest added access token is [`Redactor::token`]
    /// only when added through [`crate::Client`]'s token switch.
    pub(crate) fn add(&self, secret: secrecy::SecretString) {
        self.tokens
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(0, secret);
    }

    /// Make `token` the one in use (and redacted).
    pub(crate) fn use_token(&self, token: secrecy::SecretString) {
        self.tokens
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(token);
    }

    /// `text` with the tokens replaced by `[redacted]`: each whole-token occurrence (not
    /// preceded or followed by a token character, see [`is_token_char`]), and any occurrence
    /// at all of a token of [`WHOLE_WORD_BELOW`] characters or more (text that long cannot
    /// match by chance, so it is the token echoed with something glued to it, such as
    /// `access_token=`). A short token inside a longer word (`ken` in `app/token_info`) is
    /// left alone: replacing it would garble the message and tell which letters the token has.
    pub(crate) fn clean(&self, text: &str) -> String {
        use secrecy::ExposeSecret;
        let tokens = self.tokens.read().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_string();
        for token in tokens.iter() {
            let token = token.expose_secret();
            if !token.is_empty() && out.contains(token) {
                out = redact_token(&out, token);
            }
        }
        out
    }
}

/// Tokens at least this long are redacted wherever they appear; shorter ones only as a whole
/// token. People can no longer save keys shorter than this (`store::validate::api_key`), but a
/// key saved before that rule, or a token Drift mints, may be.
const WHOLE_WORD_BELOW: usize = 16;

/// A character that may be part of a token (letters, digits and `_-.~+/=`, as in base64 and
/// URL-safe tokens): a match next to one is inside a longer word. `=` only ends a base64
/// word (padding), so a match right after `=` (`token=...`) still stands on its own.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '~' | '+' | '/' | '=')
}

fn redact_token(text: &str, token: &str) -> String {
    let anywhere = token.chars().count() >= WHOLE_WORD_BELOW;
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(pos) = text[from..].find(token) {
        let start = from + pos;
        let end = start + token.len();
        let whole = !text[..start]
            .chars()
            .next_back()
            .is_some_and(|c| c != '=' && is_token_char(c))
            && !text[end..].chars().next().is_some_and(is_token_char);
        if anywhere || whole {
            out.push_str(&text[copied..start]);
            out.push_str("[redacted]");
            copied = end;
            from = end;
        } else {
            // Step past the first character of the match (a token is never empty).
            from = start + text[start..].chars().next().map_or(1, char::len_utf8);
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Message and parameter extracted from an error body.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ErrorBody {
    pub message: String,
    pub param: Option<String>,
}

/// Parses every documented error-body shape (REFERENCE §5.1): `{"error": {type, message}}`,
/// `{"error": "text"}`, `{"errors": [{type, message, param}]}`, Kong's
/// `{"error_description": ...}` / `{"message": ...}`, and falls back to the raw text.
pub(crate) fn parse_error_body(body: &[u8]) -> ErrorBody {
    let text = String::from_utf8_lossy(body);
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return ErrorBody {
            message: snippet(&text, 300),
            param: None,
        };
    };
    from_value(&value).unwrap_or_else(|| ErrorBody {
        message: snippet(&text, 300),
        param: None,
    })
}

fn from_value(value: &Value) -> Option<ErrorBody> {
    let obj = value.as_object()?;
    match obj.get("error") {
        Some(Value::Object(e)) => return Some(from_error_object(e)),
        Some(Value::String(s)) => {
            let message = match obj.get("error_description").and_then(Value::as_str) {
                Some(d) => format!("{s}: {d}"),
                None => s.clone(),
            };
            return Some(ErrorBody {
                message,
                param: None,
            });
        }
        _ => {}
    }
    if let Some(Value::Array(errors)) = obj.get("errors") {
        let parts: Vec<ErrorBody> = errors
            .iter()
            .filter_map(|e| match e {
                Value::Object(o) => Some(from_error_object(o)),
                Value::String(s) => Some(ErrorBody {
                    message: s.clone(),
                    param: None,
                }),
                _ => None,
            })
            .collect();
        if !parts.is_empty() {
            let param = parts.iter().find_map(|p| p.param.clone());
            let message = parts
                .into_iter()
                .map(|p| p.message)
                .collect::<Vec<_>>()
                .join("; ");
            return Some(ErrorBody { message, param });
        }
    }
    for key in ["error_description", "message"] {
        if let Some(s) = obj.get(key).and_then(Value::as_str) {
            return Some(ErrorBody {
                message: s.to_string(),
                param: None,
            });
        }
    }
    None
}

fn from_error_object(e: &serde_json::Map<String, Value>) -> ErrorBody {
    let kind = e.get("type").and_then(Value::as_str);
    let message = e.get("message").and_then(Value::as_str);
    let message = match (kind, message) {
        (Some(k), Some(m)) => format!("{m} ({k})"),
        (None, Some(m)) => m.to_string(),
        (Some(k), None) => k.to_string(),
        (None, None) => Value::Object(e.clone()).to_string(),
    };
    let param = e
        .get("param")
        .or_else(|| e.get("field"))
        .and_then(Value::as_str)
        .map(str::to_string);
    ErrorBody { message, param }
}

/// First `max` characters of `text` (on a char boundary), with an ellipsis when cut.
pub(crate) fn snippet(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// Finds a Drift scope name (`contact_read`, `all_contact_read`, ...) in a message.
pub(crate) fn scope_in(message: &str) -> Option<String> {
    message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|w| (w.ends_with("_read") || w.ends_with("_write")) && w.len() > 6 && w.is_ascii())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_shape() {
        let obj = parse_error_body(br#"{"error":{"type":"not_found","message":"gone"}}"#);
        assert_eq!(obj.message, "gone (not_found)");
        let s = parse_error_body(br#"{"error":"Contact not found"}"#);
        assert_eq!(s.message, "Contact not found");
        let arr = parse_error_body(
            br#"{"errors":[{"type":"validation_error","message":"bad limit","param":"limit"}]}"#,
        );
        assert_eq!(arr.param.as_deref(), Some("limit"));
        assert!(arr.message.contains("bad limit"));
        let kong = parse_error_body(br#"{"error_description":"expired"}"#);
        assert_eq!(kong.message, "expired");
        let text = parse_error_body(b"upstream connect error");
        assert_eq!(text.message, "upstream connect error");
    }

    #[test]
    fn finds_scope_names() {
        assert_eq!(
            scope_in("missing scope: all_contact_read").as_deref(),
            Some("all_contact_read")
        );
        assert_eq!(scope_in("nothing here"), None);
    }
}
