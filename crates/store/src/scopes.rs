//! Which Drift OAuth scopes a use of a credential needs (REFERENCE §3, DESIGN.md §2-§3).
//!
//! Used by `credentials test --for ...` to report missing scopes (an error) and extra scopes
//! (a least-privilege warning).

use crate::error::{Result, StoreError};
use std::collections::BTreeSet;

/// Streams read from Drift and the scope each needs (DESIGN.md §2, REFERENCE §3):
/// messages are part of conversations; teams and meetings use `user_read` (no `meeting_read`
/// scope exists); custom contact attributes need the elevated `all_contact_read`.
pub const STREAM_SCOPES: &[(&str, &str)] = &[
    ("conversations", "conversation_read"),
    ("messages", "conversation_read"),
    ("contacts", "contact_read"),
    ("accounts", "account_read"),
    ("users", "user_read"),
    ("teams", "user_read"),
    ("playbooks", "playbook_read"),
    ("meetings", "user_read"),
    ("contact_attributes", "all_contact_read"),
];

/// Write targets (`push ...`, DESIGN.md §3) and the scopes each needs (REFERENCE §3): an
/// upsert first looks the record up, so it needs the read scope too.
pub const WRITE_TARGET_SCOPES: &[(&str, &[&str])] = &[
    ("push:contacts", &["contact_read", "contact_write"]),
    ("push:accounts", &["account_read", "account_write"]),
    ("push:timeline", &["contact_read", "contact_write"]),
    ("push:conversations", &["conversation_write"]),
];

/// The scopes needed for a list of uses: stream names (`conversations`), write targets
/// (`push:contacts`) or `all` (every stream). Unknown names are an error listing the valid ones.
pub fn required_scopes<S: AsRef<str>>(uses: &[S]) -> Result<BTreeSet<String>> {
    let mut needed = BTreeSet::new();
    for item in uses {
        let item = item.as_ref().trim().to_lowercase();
        if item.is_empty() {
            continue;
        }
        if item == "all" {
            needed.extend(STREAM_SCOPES.iter().map(|(_, s)| s.to_string()));
        } else if let Some((_, scope)) = STREAM_SCOPES.iter().find(|(n, _)| *n == item) {
            needed.insert(scope.to_string());
        } else if let Some((_, scopes)) = WRITE_TARGET_SCOPES.iter().find(|(n, _)| *n == item) {
            needed.extend(scopes.iter().map(|s| s.to_string()));
        } else {
            return Err(StoreError::invalid(
                "for",
                format!(
                    "unknown stream or write target \"{item}\"; use any of: all, {}, {}",
                    STREAM_SCOPES
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", "),
                    WRITE_TARGET_SCOPES
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
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
