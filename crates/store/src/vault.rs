//! The vault: encryption of secret fields at rest.
//!
//! Design:
//! - One 32-byte master key, from `DRIFTBRIDGE_MASTER_KEY` (base64) or the key file
//!   `<data dir>/master.key` (base64, mode 0600, created on first use).
//! - Each secret field is sealed on its own with XChaCha20-Poly1305 and a fresh random 24-byte
//!   nonce, so the same value stored twice gives different bytes. The associated data binds
//!   the ciphertext to its owner id and field name: a ciphertext copied onto another
//!   credential does not decrypt.
//! - Each row records the key version it was sealed with. `vault_keys` holds, per version, a
//!   known plaintext sealed with that key; it is checked before any secret is read or written,
//!   so a wrong master key fails early with a clear error and changes nothing.
//! - Rotation re-seals every secret under a new key in one transaction. With a key file, the
//!   new key is first written to `master.key.new`, then the transaction commits, then the file
//!   is renamed over `master.key`; a crash in between is repaired on the next open (whichever
//!   file opens the vault wins).

use crate::error::{Result, StoreError};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rusqlite::{params, Connection, OptionalExtension};
use secrecy::{ExposeSecret, SecretString};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Name of the environment variable holding the master key (base64 of 32 bytes).
pub const MASTER_KEY_ENV: &str = "DRIFTBRIDGE_MASTER_KEY";
/// File name of the master key inside the data directory.
pub const KEY_FILE: &str = "master.key";
const PENDING_KEY_FILE: &str = "master.key.new";
const CHECK_PLAINTEXT: &[u8] = b"driftbridge vault check v1";

/// A 32-byte master key. `Debug` prints a mask; the bytes are zeroed on drop.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(••••)")
    }
}

impl MasterKey {
    /// A new random key from the operating system's CSPRNG.
    pub fn generate() -> MasterKey {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(&key);
        MasterKey(bytes)
    }

    /// Parse standard base64 (padding optional, surrounding whitespace ignored) of exactly
    /// 32 bytes. `origin` names where the text came from, for the error message.
    pub fn from_base64(text: &str, origin: &str) -> Result<MasterKey> {
        let decoded = Zeroizing::new(
            B64.decode(text.trim())
                .or_else(|_| {
                    base64::engine::general_purpose::STANDARD_NO_PAD.decode(text.trim())
                })
                .map_err(|_| {
                    StoreError::MasterKey(format!(
                        "{origin} is not valid base64; it must be the base64 of 32 random bytes (e.g. `openssl rand -base64 32`)"
                    ))
                })?,
        );
        if decoded.len() != 32 {
            return Err(StoreError::MasterKey(format!(
                "{origin} decodes to {} bytes; it must be exactly 32 bytes (e.g. `openssl rand -base64 32`)",
                decoded.len()
            )));
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(&decoded);
        Ok(MasterKey(bytes))
    }

    /// The key as standard base64 (for writing a key file or handing to the user).
    pub fn to_base64(&self) -> SecretString {
        SecretString::from(B64.encode(self.0.as_slice()))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.0.as_slice().into())
    }
}

/// Where the store gets its master key.
#[derive(Clone, Debug, Default)]
pub enum KeySource {
    /// `DRIFTBRIDGE_MASTER_KEY` if set, else the key file in the data dir (created on first use).
    #[default]
    EnvOrFile,
    /// This key (library callers and tests).
    Key(MasterKey),
}

/// Where a loaded key came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    /// The `DRIFTBRIDGE_MASTER_KEY` environment variable.
    Env,
    /// A key file (path).
    File(PathBuf),
    /// Given by the caller ([`KeySource::Key`]).
    Given,
}

impl std::fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyOrigin::Env => f.write_str(MASTER_KEY_ENV),
            KeyOrigin::File(p) => write!(f, "the key file {}", p.display()),
            KeyOrigin::Given => f.write_str("the key given to the store"),
        }
    }
}

/// A key checked against the vault: secrets can be sealed and opened with it.
pub(crate) struct Unlocked {
    pub key: MasterKey,
    pub version: i64,
    pub origin: KeyOrigin,
}

/// One sealed secret: nonce (24 bytes) and ciphertext with its 16-byte tag.
pub(crate) struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

pub(crate) fn seal(key: &MasterKey, aad: &[u8], plaintext: &[u8]) -> Result<Sealed> {
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ciphertext = key
        .cipher()
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| StoreError::MasterKey("encryption failed".into()))?;
    Ok(Sealed {
        nonce: nonce.to_vec(),
        ciphertext,
    })
}

/// Decrypt; `None` when authentication fails (wrong key, altered bytes or wrong AAD).
pub(crate) fn open(key: &MasterKey, aad: &[u8], sealed: &Sealed) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.nonce.len() != 24 {
        return None;
    }
    let nonce = XNonce::from_slice(&sealed.nonce);
    key.cipher()
        .decrypt(
            nonce,
            Payload {
                msg: &sealed.ciphertext,
                aad,
            },
        )
        .ok()
        .map(Zeroizing::new)
}

/// Associated data of a secret field: owner id and field name, separated by a unit separator.
pub(crate) fn secret_aad(owner_id: &str, field: &str) -> Vec<u8> {
    format!("{owner_id}\u{1f}{field}").into_bytes()
}

fn check_aad(version: i64) -> Vec<u8> {
    format!("vault_keys\u{1f}{version}").into_bytes()
}

fn current_check(conn: &Connection) -> Result<Option<(i64, Sealed)>> {
    Ok(conn
        .query_row(
            "SELECT version, check_nonce, check_ct FROM vault_keys ORDER BY version DESC LIMIT 1",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    Sealed {
                        nonce: r.get(1)?,
                        ciphertext: r.get(2)?,
                    },
                ))
            },
        )
        .optional()?)
}

fn key_opens(key: &MasterKey, version: i64, check: &Sealed) -> bool {
    open(key, &check_aad(version), check).is_some_and(|p| p.as_slice() == CHECK_PLAINTEXT)
}

pub(crate) fn insert_check(conn: &Connection, key: &MasterKey, version: i64) -> Result<()> {
    let check = seal(key, &check_aad(version), CHECK_PLAINTEXT)?;
    conn.execute(
        "INSERT INTO vault_keys (version, check_nonce, check_ct, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![version, check.nonce, check.ciphertext, crate::now_ms()],
    )?;
    Ok(())
}

/// Resolve the master key and check it against the vault. On first use (no vault row yet)
/// the key is registered as version 1 (and, for a key file, the file is created).
pub(crate) fn unlock(conn: &Connection, source: &KeySource, data_dir: &Path) -> Result<Unlocked> {
    let check = current_check(conn)?;
    let (key, origin) = load_key(source, data_dir, check.is_some())?;
    let Some((version, sealed)) = check else {
        insert_check(conn, &key, 1)?;
        return Ok(Unlocked {
            key,
            version: 1,
            origin,
        });
    };
    if key_opens(&key, version, &sealed) {
        discard_pending(&origin, data_dir);
        return Ok(Unlocked {
            key,
            version,
            origin,
        });
    }
    if let Some(key) = finish_pending_rotation(&origin, data_dir, version, &sealed)? {
        return Ok(Unlocked {
            key,
            version,
            origin,
        });
    }
    Err(wrong_key(&origin, data_dir))
}

/// Check the master key without creating or changing anything: the key (environment or key
/// file) must parse and, once the vault holds a check value, open it. Nothing to check when
/// no key exists yet and the vault is empty (the key file is made on first use). An
/// interrupted rotation (`master.key.new` present) is left to [`unlock`], which repairs it.
pub(crate) fn verify(conn: &Connection, source: &KeySource, data_dir: &Path) -> Result<()> {
    let check = current_check(conn)?;
    let no_key_yet = matches!(source, KeySource::EnvOrFile)
        && std::env::var_os(MASTER_KEY_ENV).is_none()
        && !data_dir.join(KEY_FILE).exists();
    if no_key_yet && check.is_none() {
        return Ok(());
    }
    let (key, origin) = load_key(source, data_dir, check.is_some())?;
    let Some((version, sealed)) = check else {
        return Ok(());
    };
    if key_opens(&key, version, &sealed) || data_dir.join(PENDING_KEY_FILE).exists() {
        return Ok(());
    }
    Err(wrong_key(&origin, data_dir))
}

fn wrong_key(origin: &KeyOrigin, data_dir: &Path) -> StoreError {
    let fix = match origin {
        KeyOrigin::Env => format!(
            "set {MASTER_KEY_ENV} to the key used when the secrets were stored, or unset it to use {}",
            data_dir.join(KEY_FILE).display()
        ),
        KeyOrigin::File(p) => format!(
            "restore the original {} or set {MASTER_KEY_ENV} to the original key",
            p.display()
        ),
        KeyOrigin::Given => "use the key the secrets were stored with".to_string(),
    };
    StoreError::WrongMasterKey {
        origin: origin.to_string(),
        data_dir: data_dir.to_path_buf(),
        fix,
    }
}

fn load_key(
    source: &KeySource,
    data_dir: &Path,
    vault_exists: bool,
) -> Result<(MasterKey, KeyOrigin)> {
    if let KeySource::Key(key) = source {
        return Ok((key.clone(), KeyOrigin::Given));
    }
    if let Some(text) = std::env::var_os(MASTER_KEY_ENV) {
        let text = Zeroizing::new(text.to_string_lossy().into_owned());
        let key = MasterKey::from_base64(&text, MASTER_KEY_ENV).map_err(|e| match e {
            StoreError::MasterKey(m) => StoreError::MasterKey(format!(
                "{m}; or unset {MASTER_KEY_ENV} to use the key file {}",
                data_dir.join(KEY_FILE).display()
            )),
            other => other,
        })?;
        return Ok((key, KeyOrigin::Env));
    }
    let path = data_dir.join(KEY_FILE);
    if path.exists() {
        return Ok((read_key_file(&path)?, KeyOrigin::File(path)));
    }
    if vault_exists {
        return Err(StoreError::MasterKey(format!(
            "the key file {} is missing but the vault already holds encrypted secrets; restore the file or set {MASTER_KEY_ENV} to the original key",
            path.display()
        )));
    }
    let key = MasterKey::generate();
    match write_key_file(&path, &key, true) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created a new vault master key file");
            Ok((key, KeyOrigin::File(path)))
        }
        // Another process created it first: use theirs.
        Err(StoreError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::AlreadyExists =>
        {
            Ok((read_key_file(&path)?, KeyOrigin::File(path)))
        }
        Err(e) => Err(e),
    }
}

fn read_key_file(path: &Path) -> Result<MasterKey> {
    warn_if_readable_by_others(path);
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|source| StoreError::Io {
            action: "read the master key file",
            path: path.to_path_buf(),
            source,
        })?,
    );
    MasterKey::from_base64(&text, &format!("the key file {}", path.display()))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "the master key file is readable by other users; run `chmod 600` on it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// Write a key file with mode 0600 (created with that mode; never world-readable in between).
/// `create_new`: fail if it exists (first use); otherwise replace it.
pub(crate) fn write_key_file(path: &Path, key: &MasterKey, create_new: bool) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let io = |source| StoreError::Io {
        action: "write the master key file",
        path: path.to_path_buf(),
        source,
    };
    let mut file = options.open(path).map_err(io)?;
    let text = key.to_base64();
    file.write_all(text.expose_secret().as_bytes())
        .map_err(io)?;
    file.write_all(b"\n").map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(())
}

pub(crate) fn pending_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(PENDING_KEY_FILE)
}

/// A rotation that crashed after its commit left the new key in `master.key.new`: if that key
/// opens the vault, it becomes `master.key`.
fn finish_pending_rotation(
    origin: &KeyOrigin,
    data_dir: &Path,
    version: i64,
    check: &Sealed,
) -> Result<Option<MasterKey>> {
    let KeyOrigin::File(path) = origin else {
        return Ok(None);
    };
    let pending = pending_key_path(data_dir);
    if !pending.exists() {
        return Ok(None);
    }
    let key = read_key_file(&pending)?;
    if !key_opens(&key, version, check) {
        return Ok(None);
    }
    std::fs::rename(&pending, path).map_err(|source| StoreError::Io {
        action: "finish the interrupted key rotation: rename",
        path: pending.clone(),
        source,
    })?;
    tracing::warn!("finished an interrupted master key rotation");
    Ok(Some(key))
}

/// A rotation that crashed before its commit left a stale `master.key.new`: remove it.
fn discard_pending(origin: &KeyOrigin, data_dir: &Path) {
    if matches!(origin, KeyOrigin::File(_)) {
        let pending = pending_key_path(data_dir);
        if pending.exists() {
            let _ = std::fs::remove_file(&pending);
        }
    }
}

/// Store `plaintext` as the secret `field` of `owner_id`, replacing any previous value.
pub(crate) fn put_secret(
    conn: &Connection,
    vault: &Unlocked,
    owner_id: &str,
    field: &str,
    plaintext: &SecretString,
) -> Result<()> {
    let sealed = seal(
        &vault.key,
        &secret_aad(owner_id, field),
        plaintext.expose_secret().as_bytes(),
    )?;
    conn.execute(
        "INSERT INTO secrets (owner_id, field, key_version, nonce, ciphertext, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (owner_id, field) DO UPDATE SET key_version = excluded.key_version,
           nonce = excluded.nonce, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
        params![owner_id, field, vault.version, sealed.nonce, sealed.ciphertext, crate::now_ms()],
    )?;
    Ok(())
}

/// Read the secret `field` of `owner_id`. `owner_name` is used in errors.
pub(crate) fn get_secret(
    conn: &Connection,
    vault: &Unlocked,
    owner_id: &str,
    owner_name: &str,
    field: &str,
) -> Result<SecretString> {
    let row = conn
        .query_row(
            "SELECT key_version, nonce, ciphertext FROM secrets WHERE owner_id = ?1 AND field = ?2",
            params![owner_id, field],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    Sealed {
                        nonce: r.get(1)?,
                        ciphertext: r.get(2)?,
                    },
                ))
            },
        )
        .optional()?;
    let decrypt_error = || StoreError::Decrypt {
        credential: owner_name.to_string(),
        field: field.to_string(),
    };
    let Some((version, sealed)) = row else {
        return Err(StoreError::Corrupt(format!(
            "the {field} of credential \"{owner_name}\" is missing; set it with `driftbridge credentials rotate {owner_name}`"
        )));
    };
    if version != vault.version {
        return Err(decrypt_error());
    }
    let plain =
        open(&vault.key, &secret_aad(owner_id, field), &sealed).ok_or_else(decrypt_error)?;
    let text = std::str::from_utf8(&plain).map_err(|_| decrypt_error())?;
    Ok(SecretString::from(text.to_string()))
}

/// Re-seal every secret under `new` as version `vault.version + 1`, inside the caller's
/// transaction. Returns the new version and the number of secrets re-encrypted. Any secret
/// that does not decrypt aborts the rotation (the caller rolls back).
pub(crate) fn reseal_all(
    conn: &Connection,
    vault: &Unlocked,
    new: &MasterKey,
) -> Result<(i64, usize)> {
    let new_version = vault.version + 1;
    insert_check(conn, new, new_version)?;
    let rows = {
        let mut stmt = conn.prepare(
            "SELECT s.owner_id, s.field, s.key_version, s.nonce, s.ciphertext,
                    COALESCE(c.name, s.owner_id)
             FROM secrets s LEFT JOIN credentials c ON c.id = s.owner_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                Sealed {
                    nonce: r.get(3)?,
                    ciphertext: r.get(4)?,
                },
                r.get::<_, String>(5)?,
            ))
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let next = Unlocked {
        key: new.clone(),
        version: new_version,
        origin: vault.origin.clone(),
    };
    for (owner_id, field, version, sealed, owner_name) in &rows {
        let aad = secret_aad(owner_id, field);
        let plain = (*version == vault.version)
            .then(|| open(&vault.key, &aad, sealed))
            .flatten()
            .ok_or_else(|| StoreError::Decrypt {
                credential: owner_name.clone(),
                field: field.clone(),
            })?;
        let text = std::str::from_utf8(&plain).map_err(|_| StoreError::Decrypt {
            credential: owner_name.clone(),
            field: field.clone(),
        })?;
        put_secret(
            conn,
            &next,
            owner_id,
            field,
            &SecretString::from(text.to_string()),
        )?;
    }
    Ok((new_version, rows.len()))
}
