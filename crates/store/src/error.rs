//! The store's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the metadata store.
///
/// Messages name the field or object concerned and, where there is one, the fix. No variant
/// ever carries a secret value (API key or master key).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A named object does not exist. `kind` is e.g. `"credential"`, `"run"`.
    #[error("{kind} \"{name}\" not found; {hint}")]
    NotFound {
        /// What was looked up (`"credential"`, `"run"`, `"data source"`, ...).
        kind: &'static str,
        /// The name or id given.
        name: String,
        /// How to find the valid names.
        hint: &'static str,
    },
    /// Bad input for one field (`name`, `description`, `base_url`, `api_key`, ...).
    #[error("{field}: {message}")]
    Invalid {
        /// The field at fault, spelled as the CLI flag / API field (`name`, `base_url`, ...).
        field: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A name is already taken (names are unique case-insensitively).
    #[error("{kind} name \"{name}\" is already taken (names are case-insensitive, it clashes with \"{existing}\"); choose another name")]
    Duplicate {
        /// What kind of object (`"credential"`, ...).
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The existing object's name, as it is spelled.
        existing: String,
    },
    /// A credential cannot be deleted because sources, destinations or flows use it.
    #[error("credential \"{name}\" is used by {}; delete or re-point them first, or pass --force", users.join(", "))]
    InUse {
        /// The credential's name.
        name: String,
        /// Who uses it, e.g. `data source "crm"`, `flow "nightly"`.
        users: Vec<String>,
    },
    /// An object other than a credential cannot be deleted because others use it (e.g. a
    /// destination that a flow writes to).
    #[error("{kind} \"{name}\" is used by {}; delete or re-point them first", users.join(", "))]
    UsedBy {
        /// What kind of object (`"destination"`).
        kind: &'static str,
        /// Its name.
        name: String,
        /// Who uses it, e.g. `flow "nightly"`.
        users: Vec<String>,
    },
    /// What was asked to run (a data source, a saved destination) is running already: one
    /// run at a time each (see [`crate::Store::insert_run_exclusive`]).
    #[error("already running: {run_id}; {what} runs one at a time: wait for that run to end")]
    AlreadyRunning {
        /// What is running, for people: `data source "crm"`, `destination "leads"`.
        what: String,
        /// The run in progress.
        run_id: String,
    },
    /// The master key does not open this vault: nothing was read or changed.
    #[error("the master key from {origin} does not open the vault in {data_dir}: it is not the key the secrets were encrypted with (nothing was changed); {fix}")]
    WrongMasterKey {
        /// Where the key came from (`DRIFTBRIDGE_MASTER_KEY`, or the key file path).
        origin: String,
        /// The data directory.
        data_dir: PathBuf,
        /// How to fix it.
        fix: String,
    },
    /// The master key could not be loaded or created (bad base64, wrong length, unreadable file).
    #[error("master key: {0}")]
    MasterKey(String),
    /// A secret's ciphertext does not decrypt under the current master key: it was altered
    /// or corrupted.
    #[error("cannot decrypt the {field} of credential \"{credential}\": the stored ciphertext was altered or is corrupt (authentication failed); set the key again with `driftbridge credentials rotate {credential}`")]
    Decrypt {
        /// The credential's name.
        credential: String,
        /// The secret field (`api_key`).
        field: String,
    },
    /// The database was written by a newer driftbridge.
    #[error("the metadata store {path} has schema version {found}, newer than this driftbridge knows ({known}); upgrade driftbridge")]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// Version in the file.
        found: i64,
        /// Highest version this build knows.
        known: i64,
    },
    /// A stored value could not be read back (e.g. malformed JSON in a column).
    #[error("corrupt metadata store: {0}")]
    Corrupt(String),
    /// File-system error on a path in the data directory.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`"create data directory"`, `"read key file"`, ...).
        action: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite error.
    #[error("metadata store (SQLite): {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl StoreError {
    /// True for errors caused by the caller's input (bad field, duplicate, not found, in use):
    /// the CLI maps these to exit code 2.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            StoreError::NotFound { .. }
                | StoreError::Invalid { .. }
                | StoreError::Duplicate { .. }
                | StoreError::InUse { .. }
                | StoreError::UsedBy { .. }
                | StoreError::AlreadyRunning { .. }
        )
    }

    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        StoreError::Invalid {
            field,
            message: message.into(),
        }
    }

    pub(crate) fn credential_not_found(name: &str) -> Self {
        StoreError::NotFound {
            kind: "credential",
            name: name.to_string(),
            hint: "run `driftbridge credentials list` to see the credential names",
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
