//! Which hosts the server may send requests (and so a token) to (issue 10 "Host pinning /
//! SSRF"; DESIGN.md §6 `serve`).
//!
//! A multi-user server must not be turned into a proxy to the network it runs in: by default
//! every Drift client it builds refuses loopback, private, link-local, unique-local, CGNAT
//! and unspecified addresses (`drift_client::ClientBuilder::deny_private_addresses`, checked
//! on the resolved addresses at connect time), and credential create/update refuse a base URL
//! that is a literal internal address or `localhost` with a 422 on `base_url`.
//! `driftbridge serve --allow-private-base-urls` lifts this (a local sandbox, an internal
//! proxy). The CLI, a single user's tool, allows every address.

use crate::error::FieldError;
use secrecy::SecretString;

/// Whether the server may contact internal network addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AddressPolicy {
    /// Only public addresses: the default of `serve`.
    #[default]
    PublicOnly,
    /// Any address, loopback and private included: `serve --allow-private-base-urls`, and
    /// the CLI.
    AllowPrivate,
}

/// How to lift the rule, named by every message about it.
pub const FIX: &str = "start the server with `driftbridge serve --allow-private-base-urls` \
                       to allow loopback and private base URLs (e.g. a local sandbox)";

impl AddressPolicy {
    /// `AllowPrivate` when `allow` is true.
    pub fn allowing_private(allow: bool) -> Self {
        if allow {
            AddressPolicy::AllowPrivate
        } else {
            AddressPolicy::PublicOnly
        }
    }

    /// True when internal addresses are refused.
    pub fn denies_private(self) -> bool {
        self == AddressPolicy::PublicOnly
    }

    /// The `base_url` field error for a base URL this policy refuses without resolving it (a
    /// literal internal IP, `localhost`); `None` when it may be used or is not a URL at all
    /// (the ordinary validation reports that). Host names are checked again on their
    /// resolved addresses whenever the server connects.
    pub fn check_base_url(self, raw: &str) -> Option<FieldError> {
        if !self.denies_private() {
            return None;
        }
        let url = url::Url::parse(raw.trim()).ok()?;
        let reason = drift_client::internal_host(&url)?;
        Some(FieldError {
            field: "base_url".into(),
            message: format!(
                "{} points to an internal address ({reason}); this server only sends \
                 requests to public addresses, so it cannot be used to reach its own \
                 network. Use the Drift API (https://driftapi.com), or {FIX}",
                raw.trim()
            ),
        })
    }

    /// A Drift client builder for `base_url` that applies this policy.
    pub fn client(self, base_url: &str, key: SecretString) -> drift_client::ClientBuilder {
        drift_client::Client::builder(base_url, key).deny_private_addresses(self.denies_private())
    }

    /// `error` for people; a refused internal address also names [`FIX`].
    pub fn explain(error: &drift_client::Error) -> String {
        match error {
            drift_client::Error::PrivateAddress { .. } => format!("{error}; {FIX}"),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_internal_hosts_are_refused_only_when_denied() {
        for url in [
            "http://169.254.169.254",
            "https://10.0.0.1",
            "http://[::1]:8787",
            "http://127.0.0.1:8787",
            "http://localhost:8787",
            "https://[fd00::1]/",
            "https://100.64.1.2",
            "https://0.0.0.0",
        ] {
            let e = AddressPolicy::PublicOnly
                .check_base_url(url)
                .unwrap_or_else(|| panic!("{url} refused"));
            assert_eq!(e.field, "base_url");
            assert!(e.message.contains("--allow-private-base-urls"), "{e:?}");
            assert_eq!(AddressPolicy::AllowPrivate.check_base_url(url), None);
        }
        for url in ["https://driftapi.com", "https://8.8.8.8", "not a url"] {
            assert_eq!(AddressPolicy::PublicOnly.check_base_url(url), None, "{url}");
        }
    }
}
