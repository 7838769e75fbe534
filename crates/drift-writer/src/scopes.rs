//! Which Drift OAuth scopes a use of a credential needs (REFERENCE §3, DESIGN.md §2-§3), and
//! how a token's scopes compare with them.
//!
//! Used by `credentials test --for ...` (and the server's checks before a sync or a push) to
//! report missing scopes (an error) and extra scopes (a least-privilege warning). A use is a
//! stream name (its scopes come from the stream table, [`source_drift::STREAMS`]), a write
//! target (`push:contacts`, [`WRITE_TARGET_SCOPES`], next to the writer that needs them) or
//! `all`. This module sits here because this crate sees both tables: the metadata store sits
//! below both and must not know about streams.

use std::collections::BTreeSet;

/// Write targets (`push ...`, DESIGN.md §3) and the scopes each needs (REFERENCE §3): an
/// upsert first looks the record up, so it needs the read scope too.
pub const WRITE_TARGET_SCOPES: &[(&str, &[&str])] = &[
    ("push:contacts", &["contact_read", "contact_write"]),
    ("push:accounts", &["account_read", "account_write"]),
    ("push:timeline", &["contact_read", "contact_write"]),
    ("push:conversations", &["conversation_write"]),
];

/// A use that is neither a stream nor a write target. The message lists the valid ones; the
/// CLI reports it on `--for`, the API on the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnknownUse(pub String);

/// The scopes needed for a list of uses: stream names (`conversations`) and child tables
/// selected by name (`conversation_tags`: its parent's scopes), write targets
/// (`push:contacts`) or `all` (every stream); case-insensitive, blanks ignored. Errors: an
/// unknown name ([`UnknownUse`], listing the valid ones).
pub fn required_scopes<S: AsRef<str>>(uses: &[S]) -> Result<BTreeSet<String>, UnknownUse> {
    let streams = source_drift::STREAMS;
    let mut needed = BTreeSet::new();
    for item in uses {
        let item = item.as_ref().trim().to_lowercase();
        if item.is_empty() {
            continue;
        }
        if item == "all" {
            needed.extend(streams.iter().flat_map(|d| d.scopes).map(|s| s.to_string()));
        } else if let Some(def) = source_drift::stream_def(&item) {
            needed.extend(def.scopes.iter().map(|s| s.to_string()));
        } else if let Some(parent) = source_drift::on_request_parent(&item) {
            // a child table selected by name (`conversation_tags`): its parent's scopes
            needed.extend(parent.scopes.iter().map(|s| s.to_string()));
        } else if let Some((_, scopes)) = WRITE_TARGET_SCOPES.iter().find(|(n, _)| *n == item) {
            needed.extend(scopes.iter().map(|s| s.to_string()));
        } else {
            return Err(UnknownUse(format!(
                "unknown stream or write target \"{item}\"; use any of: all, {}, {}",
                source_drift::selectable_streams()
                    .into_iter()
                    .map(|(n, _)| n)
                    .collect::<Vec<_>>()
                    .join(", "),
                WRITE_TARGET_SCOPES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(needed)
}

/// Missing and extra scopes of a token for what the caller needs.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ScopeCheck {
    /// Needed but not granted (an error for the caller).
    pub missing: Vec<String>,
    /// Granted but not needed (a least-privilege warning).
    pub extra: Vec<String>,
}

/// Compare granted scopes with the needed ones. Both outputs are sorted.
pub fn check_scopes(granted: &[String], needed: &BTreeSet<String>) -> ScopeCheck {
    let granted: BTreeSet<&str> = granted.iter().map(String::as_str).collect();
    ScopeCheck {
        missing: needed
            .iter()
            .filter(|s| !granted.contains(s.as_str()))
            .cloned()
            .collect(),
        extra: granted
            .iter()
            .filter(|s| !needed.contains(**s))
            .map(|s| s.to_string())
            .collect(),
    }
}
