//! Embedded metadata store: credentials vault (encrypted), sources, destinations, flows,
//! state, runs.
//!
//! One SQLite file, `<data dir>/driftbridge.db`, in WAL mode (readers do not block the writer,
//! so a running `sync` and a `runs list` can share it), with foreign keys on and versioned
//! migrations ([`SCHEMA_VERSION`]). All timestamps are epoch milliseconds (UTC).
//!
//! The admin token of `serve` is kept only as a hash, with a generation that revokes every
//! session of the previous token when it is replaced (see [`AdminToken`]).
//!
//! Secrets (a credential's API key) are never stored in plain text: see [`vault`] for the
//! encryption scheme. Reading non-secret metadata (`credentials list`, runs) does not need the
//! master key, so a missing or wrong key only affects operations that touch secrets, and
//! those fail before changing anything.
//!
//! [`Store`] is `Send + Sync` (one connection behind a mutex); open it once per process or per
//! command. Every method is a short synchronous call; async callers may call it directly.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod admin;
mod budget;
#[cfg(feature = "postgres")]
mod budget_pg;
mod catalog;
mod credentials;
mod destination;
mod error;
mod migrate;
mod notifications;
mod rejected;
mod runs;
mod sources;
pub mod validate;
pub mod vault;
mod webhooks;

pub use admin::AdminToken;
pub use budget::{BudgetUse, SqliteBudget, SHARED_BUDGET_ENV};
#[cfg(feature = "postgres")]
pub use budget_pg::PostgresBudget;
pub use catalog::CredentialUser;
pub use credentials::{
    Credential, CredentialStatus, CredentialTest, CredentialUpdate, NewCredential, OAuthChange,
    OAuthSettings,
};
pub use destination::{DestinationRecord, DestinationUpdate};
pub use error::{Result, StoreError};
pub use migrate::SCHEMA_VERSION;
pub use notifications::{NewNotificationChannel, NotificationChannel, WEBHOOK_URL_FIELD};
pub use rejected::RejectedRecord;
pub use runs::{NewRun, RunRecord, Trigger, INTERRUPTED, RUN_STATUSES, TRIGGERS};
pub use sources::{SourceRecord, SourceUpdate, SINK_SECRET_FIELD};
pub use vault::{KeyOrigin, KeySource, MasterKey};
pub use webhooks::{Enqueued, WebhookEvent, WebhookStats, WEBHOOK_TOKEN_FIELD};

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// File name of the metadata database inside the data directory.
pub const DB_FILE: &str = "driftbridge.db";

/// The metadata store of one data directory.
pub struct Store {
    conn: Mutex<Connection>,
    data_dir: PathBuf,
    keys: Mutex<KeySource>,
    /// Lock files of the runs this process started and has not finished (see `runs.rs`).
    run_locks: Mutex<std::collections::HashMap<String, std::fs::File>>,
    /// Where rate budgets are shared (see `budget.rs`).
    budget: Mutex<budget::BudgetState>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// What `vault rotate-key` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRotation {
    /// Key version before the rotation.
    pub from_version: i64,
    /// Key version after it.
    pub to_version: i64,
    /// Number of secret fields re-encrypted.
    pub secrets: usize,
    /// Where the old key came from; with [`KeyOrigin::Env`] the caller must tell the user to
    /// set `DRIFTBRIDGE_MASTER_KEY` to the new key. With [`KeyOrigin::File`] the file now holds
    /// the new key.
    pub origin: KeyOrigin,
}

impl Store {
    /// Open (creating the directory, mode 0700, and the database if needed) and migrate the
    /// store in `data_dir`. The master key comes from `DRIFTBRIDGE_MASTER_KEY` or the key file
    /// and is only loaded when a secret is read or written.
    ///
    /// Errors: [`StoreError::Io`] if the directory cannot be created, [`StoreError::Sqlite`],
    /// [`StoreError::SchemaTooNew`].
    pub fn open(data_dir: &Path) -> Result<Store> {
        Store::open_with(data_dir, KeySource::EnvOrFile)
    }

    /// Like [`Store::open`] with an explicit master-key source.
    pub fn open_with(data_dir: &Path, keys: KeySource) -> Result<Store> {
        create_data_dir(data_dir)?;
        let path = data_dir.join(DB_FILE);
        let mut conn = Connection::open(&path)?;
        restrict_to_owner(&path);
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        enable_wal(&conn)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        migrate::migrate(&mut conn, &path)?;
        Ok(Store {
            conn: Mutex::new(conn),
            data_dir: data_dir.to_path_buf(),
            keys: Mutex::new(keys),
            run_locks: Mutex::new(std::collections::HashMap::new()),
            budget: Mutex::new(budget::BudgetState::default()),
        })
    }

    /// Check the master key now instead of at the first secret read or write: it must parse
    /// and open the vault. Creates and changes nothing. Commands call it right after opening
    /// the store, so a bad `DRIFTBRIDGE_MASTER_KEY` fails every one of them, not only those
    /// that read a secret.
    ///
    /// Errors: [`StoreError::MasterKey`] (bad base64, wrong length, unreadable or missing key
    /// file), [`StoreError::WrongMasterKey`], [`StoreError::Sqlite`].
    pub fn check_master_key(&self) -> Result<()> {
        let conn = self.conn();
        vault::verify(&conn, &self.key_source(), &self.data_dir)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Path of the SQLite file (its WAL is the same path plus `-wal`).
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join(DB_FILE)
    }

    /// Re-encrypt every secret under a new master key, in one transaction.
    ///
    /// `new_key`: the key to switch to; `None` generates one, which is allowed only when the
    /// current key comes from the key file (or was given to the store). With a key file, the
    /// file is replaced by the new key once the transaction has committed. After the call this
    /// `Store` uses the new key.
    ///
    /// Errors: [`StoreError::WrongMasterKey`] (nothing changed), [`StoreError::Decrypt`] if a
    /// stored secret is corrupt (nothing changed), [`StoreError::Invalid`] (field `new_key`)
    /// when the key comes from the environment and no new key is given.
    pub fn rotate_master_key(&self, new_key: Option<MasterKey>) -> Result<KeyRotation> {
        let mut conn = self.conn();
        let source = self.key_source();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let old = vault::unlock(&tx, &source, &self.data_dir)?;
        let new_key = match (new_key, &old.origin) {
            (Some(k), _) => k,
            (None, KeyOrigin::Env) => {
                return Err(StoreError::invalid("new_key", format!(
                    "the master key comes from {}; give the new key with --new-key-env VAR (base64 of 32 bytes), then set {} to it",
                    vault::MASTER_KEY_ENV, vault::MASTER_KEY_ENV
                )))
            }
            (None, _) => MasterKey::generate(),
        };
        let pending = vault::pending_key_path(&self.data_dir);
        if let KeyOrigin::File(_) = old.origin {
            vault::write_key_file(&pending, &new_key, false)?;
        }
        let (to_version, secrets) = match vault::reseal_all(&tx, &old, &new_key) {
            Ok(done) => done,
            Err(e) => {
                let _ = std::fs::remove_file(&pending);
                return Err(e);
            }
        };
        tx.commit()?;
        if let KeyOrigin::File(path) = &old.origin {
            std::fs::rename(&pending, path).map_err(|source| StoreError::Io {
                action: "replace the master key file (the vault already uses the new key, kept in the .new file; rename it over master.key)",
                path: pending.clone(),
                source,
            })?;
        }
        *self.keys.lock().unwrap_or_else(|e| e.into_inner()) = KeySource::Key(new_key);
        Ok(KeyRotation {
            from_version: old.version,
            to_version,
            secrets,
            origin: old.origin,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Another connection to the same store (same data directory and master-key source),
    /// for work that outlives a borrow of this one, e.g. saving refreshed OAuth tokens from
    /// inside a Drift client. Errors as for [`Store::open_with`].
    pub fn reopen(&self) -> Result<Store> {
        let store = Store::open_with(&self.data_dir, self.key_source())?;
        store.budget_state().backend = self.budget_state().backend.clone();
        Ok(store)
    }

    fn key_source(&self) -> KeySource {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Switch to WAL mode (persistent in the file). Changing the journal mode does not wait on
/// SQLite's busy handler, so when another connection is switching it at the same moment
/// this retries for up to ~10 s.
fn enable_wal(conn: &Connection) -> Result<()> {
    let mut attempt = 0;
    loop {
        let mode: rusqlite::Result<String> =
            conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0));
        match mode {
            Ok(_) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && attempt < 200 =>
            {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Make the database file readable by its owner only (SQLite gives its `-wal` and `-shm`
/// files the same mode). It holds no plain-text secret, but its metadata is private too.
/// Best effort: a file owned by someone else keeps its mode, with a warning.
fn restrict_to_owner(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let open_to_others = std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o077 != 0)
            .unwrap_or(false);
        if open_to_others {
            if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
                tracing::warn!(path = %path.display(), error = %e, "cannot make the metadata store private (chmod 600)");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn create_data_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| StoreError::Io {
        action: "create the data directory",
        path: dir.to_path_buf(),
        source,
    })
}

/// Now, in epoch milliseconds.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A random id with a prefix, e.g. `cred_3f9a0c1d2e4b5a69`.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{:016x}", rand::random::<u64>())
}

/// Decode a JSON column, naming the column on failure.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("column {column} holds invalid JSON: {e}")))
}

/// Encode a value as a JSON column.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}
