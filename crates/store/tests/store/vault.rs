//! The vault: encryption at rest, master keys, tampering, rotation.

use crate::helpers::*;
use secrecy::ExposeSecret;
use store::{KeyOrigin, KeySource, MasterKey, Store, StoreError};

fn secret_rows(store: &Store) -> Vec<(String, i64, Vec<u8>, Vec<u8>)> {
    let raw = raw(store);
    let mut stmt = raw
        .prepare("SELECT owner_id, key_version, nonce, ciphertext FROM secrets ORDER BY owner_id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn database_file_never_holds_the_key_in_plain_text() {
    let (_dir, store) = new_store();
    store.add_credential(&new_credential("a", CANARY)).unwrap();
    store
        .add_credential(&new_credential("b", &format!("Bearer {CANARY}")))
        .unwrap();
    store.rotate_master_key(Some(key(2))).unwrap();
    let bytes = db_bytes(&store);
    assert!(bytes.len() > 4096);
    assert!(!contains(&bytes, CANARY.as_bytes()));
    assert!(!contains(&bytes, &CANARY.as_bytes()[..20]));
    // ... while the mask (last 4 characters) is there, so the scan does read the rows.
    assert!(contains(&bytes, "••••a3b5".as_bytes()));
}

#[test]
fn same_key_twice_encrypts_to_different_bytes() {
    let (_dir, store) = new_store();
    store.add_credential(&new_credential("a", CANARY)).unwrap();
    store.add_credential(&new_credential("b", CANARY)).unwrap();
    let rows = secret_rows(&store);
    assert_eq!(rows.len(), 2);
    assert_ne!(rows[0].2, rows[1].2, "nonces differ");
    assert_ne!(rows[0].3, rows[1].3, "ciphertexts differ");
    assert_eq!(rows[0].2.len(), 24, "XChaCha20 nonce");
    assert_eq!(
        rows[0].3.len(),
        CANARY.len() + 16,
        "ciphertext + Poly1305 tag"
    );
}

#[test]
fn tampered_ciphertext_gives_a_decryption_error_naming_the_credential() {
    let (_dir, store) = new_store();
    store
        .add_credential(&new_credential("Billing Prod", CANARY))
        .unwrap();
    let raw = raw(&store);
    let (id, _, _, mut ct) = secret_rows(&store).remove(0);
    ct[3] ^= 0x01;
    raw.execute(
        "UPDATE secrets SET ciphertext = ?1 WHERE owner_id = ?2",
        rusqlite::params![ct, id],
    )
    .unwrap();
    let err = store.credential_api_key("billing prod").unwrap_err();
    assert!(
        matches!(err, StoreError::Decrypt { ref credential, .. } if credential == "Billing Prod")
    );
    let text = err.to_string();
    assert!(
        text.contains("\"Billing Prod\"") && text.contains("rotate"),
        "{text}"
    );
    // Rotation refuses as well, and changes nothing.
    assert!(matches!(
        store.rotate_master_key(None),
        Err(StoreError::Decrypt { .. })
    ));
    assert_eq!(secret_rows(&store)[0].1, 1);
}

#[test]
fn ciphertext_moved_to_another_credential_does_not_decrypt() {
    let (_dir, store) = new_store();
    store.add_credential(&new_credential("a", CANARY)).unwrap();
    let b = store
        .add_credential(&new_credential("b", "tok_other_12345678"))
        .unwrap();
    let rows = secret_rows(&store);
    let a_row = rows.iter().find(|r| r.0 != b.id).unwrap();
    raw(&store)
        .execute(
            "UPDATE secrets SET nonce = ?1, ciphertext = ?2 WHERE owner_id = ?3",
            rusqlite::params![a_row.2, a_row.3, b.id],
        )
        .unwrap();
    assert!(matches!(
        store.credential_api_key("b"),
        Err(StoreError::Decrypt { .. })
    ));
}

#[test]
fn wrong_master_key_is_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let good = store_with(&dir, &key(1));
    good.add_credential(&new_credential("a", CANARY)).unwrap();
    let before = secret_rows(&good);
    drop(good);

    let wrong = store_with(&dir, &key(9));
    let err = wrong.credential_api_key("a").unwrap_err();
    assert!(matches!(err, StoreError::WrongMasterKey { .. }), "{err:?}");
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    assert!(matches!(
        wrong.add_credential(&new_credential("b", CANARY)),
        Err(StoreError::WrongMasterKey { .. })
    ));
    assert!(matches!(
        wrong.rotate_master_key(None),
        Err(StoreError::WrongMasterKey { .. })
    ));
    assert!(matches!(
        wrong.rotate_credential_key("a", &CANARY.to_string().into()),
        Err(StoreError::WrongMasterKey { .. })
    ));
    // Metadata stays readable; nothing changed.
    assert_eq!(wrong.list_credentials().unwrap().len(), 1);
    assert_eq!(secret_rows(&wrong), before);
    drop(wrong);
    let good = store_with(&dir, &key(1));
    assert_eq!(
        good.credential_api_key("a").unwrap().expose_secret(),
        CANARY
    );
}

#[test]
fn rotate_key_then_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(&dir, &key(1));
    store.add_credential(&new_credential("a", CANARY)).unwrap();
    store
        .add_credential(&new_credential("b", "tok_bbbb_12345678"))
        .unwrap();
    let before = secret_rows(&store);
    let rotation = store.rotate_master_key(Some(key(2))).unwrap();
    assert_eq!(
        (rotation.from_version, rotation.to_version, rotation.secrets),
        (1, 2, 2)
    );
    let after = secret_rows(&store);
    assert!(
        after.iter().all(|r| r.1 == 2),
        "every row carries the new key version"
    );
    assert!(
        before.iter().zip(&after).all(|(b, a)| b.3 != a.3),
        "every row re-encrypted"
    );
    assert_eq!(
        store.credential_api_key("a").unwrap().expose_secret(),
        CANARY
    );
    drop(store);

    let old = store_with(&dir, &key(1));
    assert!(matches!(
        old.credential_api_key("a"),
        Err(StoreError::WrongMasterKey { .. })
    ));
    let new = store_with(&dir, &key(2));
    assert_eq!(
        new.credential_api_key("b").unwrap().expose_secret(),
        "tok_bbbb_12345678"
    );
    new.add_credential(&new_credential("c", CANARY)).unwrap();
    assert_eq!(new.credential_api_key("c").unwrap().expose_secret(), CANARY);
}

fn file_store(dir: &tempfile::TempDir) -> Store {
    assert!(
        std::env::var_os(store::vault::MASTER_KEY_ENV).is_none(),
        "these tests use the key file; unset DRIFTBRIDGE_MASTER_KEY"
    );
    Store::open_with(dir.path(), KeySource::EnvOrFile).unwrap()
}

#[test]
fn key_file_is_created_on_first_use_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let store = file_store(&dir);
    let path = dir.path().join(store::vault::KEY_FILE);
    assert!(!path.exists(), "opening alone does not create a key");
    store.add_credential(&new_credential("a", CANARY)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    MasterKey::from_base64(&text, "file").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    drop(store);
    let again = file_store(&dir);
    assert_eq!(
        again.credential_api_key("a").unwrap().expose_secret(),
        CANARY
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "the file is reused"
    );
}

#[test]
fn missing_key_file_with_existing_secrets_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = file_store(&dir);
    store.add_credential(&new_credential("a", CANARY)).unwrap();
    std::fs::remove_file(dir.path().join(store::vault::KEY_FILE)).unwrap();
    let err = store.credential_api_key("a").unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    assert!(
        !dir.path().join(store::vault::KEY_FILE).exists(),
        "no new key is made up"
    );
}

#[test]
fn rotate_with_key_file_replaces_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(store::vault::KEY_FILE);
    let store = file_store(&dir);
    store.add_credential(&new_credential("a", CANARY)).unwrap();
    let old_text = std::fs::read_to_string(&path).unwrap();
    let rotation = store.rotate_master_key(None).unwrap();
    assert_eq!(rotation.origin, KeyOrigin::File(path.clone()));
    let new_text = std::fs::read_to_string(&path).unwrap();
    assert_ne!(old_text, new_text);
    assert!(!dir.path().join("master.key.new").exists());
    assert_eq!(
        store.credential_api_key("a").unwrap().expose_secret(),
        CANARY
    );
    drop(store);
    assert_eq!(
        file_store(&dir)
            .credential_api_key("a")
            .unwrap()
            .expose_secret(),
        CANARY
    );
    let old = Store::open_with(
        dir.path(),
        KeySource::Key(MasterKey::from_base64(&old_text, "old").unwrap()),
    )
    .unwrap();
    assert!(matches!(
        old.credential_api_key("a"),
        Err(StoreError::WrongMasterKey { .. })
    ));
}

#[test]
fn interrupted_rotation_is_finished_on_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(store::vault::KEY_FILE);
    let pending = dir.path().join("master.key.new");
    let store = file_store(&dir);
    store.add_credential(&new_credential("a", CANARY)).unwrap();
    let old_text = std::fs::read_to_string(&path).unwrap();
    store.rotate_master_key(None).unwrap();
    drop(store);
    // As if the process died after the commit but before the rename.
    std::fs::rename(&path, &pending).unwrap();
    std::fs::write(&path, &old_text).unwrap();
    let store = file_store(&dir);
    assert_eq!(
        store.credential_api_key("a").unwrap().expose_secret(),
        CANARY
    );
    assert!(!pending.exists());
    assert_ne!(std::fs::read_to_string(&path).unwrap(), old_text);

    // As if it died before the commit: a stale pending key is discarded.
    std::fs::write(&pending, MasterKey::generate().to_base64().expose_secret()).unwrap();
    assert_eq!(
        store.credential_api_key("a").unwrap().expose_secret(),
        CANARY
    );
    assert!(!pending.exists());
}

#[test]
fn master_key_text_must_be_base64_of_32_bytes() {
    let err = MasterKey::from_base64("not base64!!", "DRIFTBRIDGE_MASTER_KEY").unwrap_err();
    assert!(err.to_string().contains("DRIFTBRIDGE_MASTER_KEY"), "{err}");
    let short = "AAAAAAAAAAAAAAAAAAAAAA==";
    assert!(MasterKey::from_base64(short, "x")
        .unwrap_err()
        .to_string()
        .contains("16 bytes"));
    let k = MasterKey::generate();
    let text = k.to_base64();
    let back = MasterKey::from_base64(&format!(" {}\n", text.expose_secret()), "x").unwrap();
    assert_eq!(back.to_base64().expose_secret(), text.expose_secret());
    assert_eq!(format!("{k:?}"), "MasterKey(••••)");
}
