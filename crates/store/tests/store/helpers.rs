//! Shared helpers: a store in a temp dir with a fixed master key.
#![allow(dead_code)]

use secrecy::SecretString;
use store::{KeySource, MasterKey, NewCredential, Store};
use tempfile::TempDir;

/// A canary token: must never appear in plain text anywhere.
pub const CANARY: &str = "tok_CANARY_5e1f9d3c7b2a4e6f8091a3b5";

pub fn key(byte: u8) -> MasterKey {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
    MasterKey::from_base64(&text, "test").unwrap()
}

pub fn store_with(dir: &TempDir, k: &MasterKey) -> Store {
    Store::open_with(dir.path(), KeySource::Key(k.clone())).unwrap()
}

pub fn new_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(&dir, &key(1));
    (dir, store)
}

pub fn new_credential(name: &str, api_key: &str) -> NewCredential {
    NewCredential {
        name: name.to_string(),
        description: None,
        base_url: None,
        api_key: SecretString::from(api_key.to_string()),
        rate_limit_per_min: 600,
    }
}

/// Every byte of the database file and its WAL, concatenated.
pub fn db_bytes(store: &Store) -> Vec<u8> {
    let mut bytes = std::fs::read(store.db_path()).unwrap();
    let wal = store.db_path().with_extension("db-wal");
    if let Ok(w) = std::fs::read(wal) {
        bytes.extend(w);
    }
    bytes
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Open the database file directly (to inspect or tamper with rows).
pub fn raw(store: &Store) -> rusqlite::Connection {
    rusqlite::Connection::open(store.db_path()).unwrap()
}
