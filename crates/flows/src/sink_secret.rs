//! The secret part of a sink URL: the password of a PostgreSQL sink
//! (`postgres://user:PASSWORD@host/db`, or a `password=` parameter), read the way the
//! PostgreSQL client reads the URL.
//!
//! A data source keeps its sink with every password replaced by [`MASK`]
//! (`postgres://user:••••@host/db`): that is what the API, the pages and the metadata store
//! hold. The passwords themselves are encrypted in the vault
//! ([`store::SINK_SECRET_FIELD`], a JSON array of the masked values in order) and put back
//! only to open the sink for a run. The API takes a password write-only: a sink sent back
//! with its mask unchanged keeps the stored password; changing anything else of the URL
//! needs the password again, so a stored password is never sent to another host.

use secrecy::{ExposeSecret, SecretString};

/// What a password is shown as.
pub const MASK: &str = "••••";

/// A sink split into what may be shown and stored, and its secret values.
#[derive(Clone, PartialEq, Eq)]
pub struct SinkParts {
    /// The sink with each secret replaced by [`MASK`].
    pub shown: String,
    /// The secret values, in the order of the masks (empty when the sink has none).
    pub secrets: Vec<String>,
}

impl std::fmt::Debug for SinkParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkParts")
            .field("shown", &self.shown)
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl SinkParts {
    /// True when every secret is the mask itself: the sink was sent back as shown.
    pub fn only_masks(&self) -> bool {
        !self.secrets.is_empty() && self.secrets.iter().all(|s| s == MASK)
    }

    /// True when some secret is the mask (a shown sink, edited or not).
    pub fn has_mask(&self) -> bool {
        self.secrets.iter().any(|s| s == MASK)
    }

    /// The secrets as the vault keeps them (a JSON array), or `None` when there are none.
    pub fn sealed(&self) -> Option<SecretString> {
        (!self.secrets.is_empty())
            .then(|| SecretString::from(serde_json::json!(self.secrets).to_string()))
    }
}

/// Split `sink` into its shown form and its secrets. Sinks other than PostgreSQL URLs have
/// none. As the PostgreSQL client does, the user info runs to the first `@` and the password
/// from its first `:`; parameters start at the first `?` after it.
pub fn split(sink: &str) -> SinkParts {
    let prefix = ["postgres://", "postgresql://"]
        .into_iter()
        .find(|p| sink.starts_with(p));
    let Some(prefix) = prefix else {
        return SinkParts {
            shown: sink.to_string(),
            secrets: Vec::new(),
        };
    };
    let mut rest = &sink[prefix.len()..];
    let mut shown = prefix.to_string();
    let mut secrets = Vec::new();
    if let Some(at) = rest.find('@') {
        match rest[..at].split_once(':') {
            Some((user, password)) if !password.is_empty() => {
                shown.push_str(user);
                shown.push(':');
                shown.push_str(MASK);
                secrets.push(password.to_string());
            }
            _ => shown.push_str(&rest[..at]),
        }
        shown.push('@');
        rest = &rest[at + 1..];
    }
    let Some(q) = rest.find('?') else {
        shown.push_str(rest);
        return SinkParts { shown, secrets };
    };
    shown.push_str(&rest[..=q]);
    let params: Vec<String> = rest[q + 1..]
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if is_password_key(key) && !value.is_empty() => {
                secrets.push(value.to_string());
                format!("{key}={MASK}")
            }
            _ => pair.to_string(),
        })
        .collect();
    shown.push_str(&params.join("&"));
    SinkParts { shown, secrets }
}

fn is_password_key(key: &str) -> bool {
    url::form_urlencoded::parse(format!("{key}=").as_bytes())
        .next()
        .is_some_and(|(k, _)| k.eq_ignore_ascii_case("password"))
}

/// Put the vault's secret (as [`SinkParts::sealed`] made it) back into the shown sink, to
/// open it. Errors (for people, without the secret) when the secret does not fit the masks.
pub fn join(shown: &str, sealed: Option<&SecretString>) -> Result<String, String> {
    let secrets: Vec<String> = match sealed {
        Some(s) => serde_json::from_str(s.expose_secret()).map_err(|_| {
            "the stored sink password cannot be read; give the sink again with its password"
                .to_string()
        })?,
        None => Vec::new(),
    };
    let pieces: Vec<&str> = shown.split(MASK).collect();
    if pieces.len() != secrets.len() + 1 {
        return Err(
            "the sink shows a password (••••) that is not stored; give the sink again with its password"
                .to_string(),
        );
    }
    let mut sink = String::with_capacity(shown.len() + 32);
    for (i, piece) in pieces.iter().enumerate() {
        sink.push_str(piece);
        if let Some(secret) = secrets.get(i) {
            sink.push_str(secret);
        }
    }
    Ok(sink)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_where_the_postgres_client_reads_them() {
        for (sink, shown, secrets) in [
            (
                "postgres://me:s3cr%40t@db:5432/x",
                "postgres://me:••••@db:5432/x",
                vec!["s3cr%40t"],
            ),
            (
                "postgresql://me@db/x?sslmode=require&password=pw&x=1",
                "postgresql://me@db/x?sslmode=require&password=••••&x=1",
                vec!["pw"],
            ),
            ("postgres://me@db/x", "postgres://me@db/x", vec![]),
            ("postgres://me:@db/x", "postgres://me:@db/x", vec![]),
            ("sqlite:/tmp/a:b@c.db", "sqlite:/tmp/a:b@c.db", vec![]),
        ] {
            let parts = split(sink);
            assert_eq!(parts.shown, shown, "{sink}");
            assert_eq!(parts.secrets, secrets, "{sink}");
            assert_eq!(join(&parts.shown, parts.sealed().as_ref()).unwrap(), sink);
        }
        assert!(!format!("{:?}", split("postgres://u:hunter2@h/d")).contains("hunter2"));
    }

    #[test]
    fn a_mask_without_a_stored_secret_is_an_error() {
        let err = join("postgres://me:••••@db/x", None).unwrap_err();
        assert!(err.contains("give the sink again"), "{err}");
        assert!(split("postgres://me:••••@db/x").only_masks());
    }
}
