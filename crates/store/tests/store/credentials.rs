//! Credentials CRUD, masking, uniqueness, test results, deletion rules.

use crate::helpers::*;
use secrecy::{ExposeSecret, SecretString};
use store::{CredentialStatus, CredentialTest, CredentialUpdate, StoreError};

#[test]
fn add_then_read_back_key_and_metadata() {
    let (_dir, store) = new_store();
    let mut new = new_credential("Sandbox", CANARY);
    new.description = Some("  local sandbox  ".into());
    new.base_url = Some("http://127.0.0.1:8787/".into());
    let c = store.add_credential(&new).unwrap();
    assert!(c.id.starts_with("cred_"));
    assert_eq!(c.name, "Sandbox");
    assert_eq!(c.description.as_deref(), Some("local sandbox"));
    assert_eq!(c.base_url, "http://127.0.0.1:8787");
    assert_eq!(c.kind, "drift");
    assert_eq!(c.key_mask, "••••a3b5");
    assert_eq!(c.status, CredentialStatus::Unverified);
    assert_eq!(c.rate_limit_per_min, 600);
    assert_eq!(store.credential("sandbox").unwrap(), c);
    assert_eq!(
        store.credential_api_key("SANDBOX").unwrap().expose_secret(),
        CANARY
    );
}

#[test]
fn default_base_url_is_drift() {
    let (_dir, store) = new_store();
    let c = store.add_credential(&new_credential("a", CANARY)).unwrap();
    assert_eq!(c.base_url, "https://driftapi.com");
}

#[test]
fn names_are_unique_case_insensitively() {
    let (_dir, store) = new_store();
    store
        .add_credential(&new_credential("Prod", CANARY))
        .unwrap();
    let err = store
        .add_credential(&new_credential("pROD", CANARY))
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate { ref existing, .. } if existing == "Prod"));
    assert!(err.to_string().contains("already taken"), "{err}");
    let err = store
        .add_credential(&new_credential("ÉTÉ", CANARY))
        .and_then(|_| store.add_credential(&new_credential("été", CANARY)));
    assert!(matches!(err, Err(StoreError::Duplicate { .. })));
    assert_eq!(store.list_credentials().unwrap().len(), 2);
}

#[test]
fn invalid_fields_are_rejected_and_nothing_saved() {
    let (_dir, store) = new_store();
    let mut bad_url = new_credential("x", CANARY);
    bad_url.base_url = Some("http://example.com".into());
    let mut huge_url = new_credential("x", CANARY);
    huge_url.base_url = Some(format!("https://{}.com", "a".repeat(3000)));
    let mut escape = new_credential("x", CANARY);
    escape.description = Some("line1\nline2\u{1b}[2J".into());
    let cases = [
        (huge_url, "base_url"),
        (escape, "description"),
        (new_credential("  ", CANARY), "name"),
        (new_credential(&"n".repeat(101), CANARY), "name"),
        (new_credential("x", "   "), "api_key"),
        (new_credential("x", "abc def"), "api_key"),
        (bad_url, "base_url"),
    ];
    for (new, field) in cases {
        match store.add_credential(&new) {
            Err(StoreError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected invalid {field}, got {other:?}"),
        }
    }
    let mut multi_line = new_credential("lines", CANARY);
    multi_line.description = Some("first line\n\tsecond line".into());
    store.add_credential(&multi_line).unwrap();
    store.delete_credential("lines", false).unwrap();
    let mut long_desc = new_credential("x", CANARY);
    long_desc.description = Some("d".repeat(1001));
    assert!(matches!(
        store.add_credential(&long_desc),
        Err(StoreError::Invalid {
            field: "description",
            ..
        })
    ));
    assert!(store.list_credentials().unwrap().is_empty());
}

#[test]
fn not_found_names_the_credential() {
    let (_dir, store) = new_store();
    let err = store.credential("nope").unwrap_err();
    assert!(err.is_user_error());
    assert!(err.to_string().contains("\"nope\""), "{err}");
    assert!(store.credential_api_key("nope").is_err());
}

#[test]
fn list_is_sorted_by_name() {
    let (_dir, store) = new_store();
    for name in ["beta", "Alpha", "gamma"] {
        store.add_credential(&new_credential(name, CANARY)).unwrap();
    }
    let names: Vec<_> = store
        .list_credentials()
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["Alpha", "beta", "gamma"]);
}

#[test]
fn recording_a_test_stores_the_result() {
    let (_dir, store) = new_store();
    store.add_credential(&new_credential("a", CANARY)).unwrap();
    let scopes = vec!["conversation_read".to_string(), "user_read".to_string()];
    let test = CredentialTest::verified(Some(104455), scopes.clone(), None);
    store.record_credential_test("A", &test).unwrap();
    let c = store.credential("a").unwrap();
    assert_eq!(c.status, CredentialStatus::Verified);
    assert_eq!(c.org_id, Some(104455));
    assert_eq!(c.scopes, scopes);
    assert_eq!(c.tested_at, Some(test.tested_at));
    assert_eq!(c.last_error, None);

    store
        .mark_credential_failed("a", "401 Unauthorized")
        .unwrap();
    let c = store.credential("a").unwrap();
    assert_eq!(c.status, CredentialStatus::Failed);
    assert_eq!(c.last_error.as_deref(), Some("401 Unauthorized"));
    assert_eq!(
        c.org_id,
        Some(104455),
        "failure keeps the last known org id"
    );
}

#[test]
fn rotating_the_key_resets_the_status() {
    let (_dir, store) = new_store();
    store.add_credential(&new_credential("a", CANARY)).unwrap();
    store
        .record_credential_test("a", &CredentialTest::verified(Some(1), vec![], None))
        .unwrap();
    let c = store
        .rotate_credential_key(
            "a",
            &SecretString::from("Bearer tok_new_0000wxyz\n".to_string()),
        )
        .unwrap();
    assert_eq!(c.key_mask, "••••wxyz");
    assert_eq!(c.status, CredentialStatus::Unverified);
    assert_eq!(c.org_id, None);
    assert_eq!(
        store.credential_api_key("a").unwrap().expose_secret(),
        "tok_new_0000wxyz"
    );
}

#[test]
fn update_renames_and_resets_status_on_new_base_url() {
    let (_dir, store) = new_store();
    store.add_credential(&new_credential("a", CANARY)).unwrap();
    store.add_credential(&new_credential("b", CANARY)).unwrap();
    store
        .record_credential_test("a", &CredentialTest::verified(Some(1), vec![], None))
        .unwrap();
    let rename_clash = CredentialUpdate {
        name: Some("B".into()),
        ..Default::default()
    };
    assert!(matches!(
        store.update_credential("a", &rename_clash),
        Err(StoreError::Duplicate { .. })
    ));

    let same_name_other_case = CredentialUpdate {
        name: Some("A".into()),
        ..Default::default()
    };
    let c = store.update_credential("a", &same_name_other_case).unwrap();
    assert_eq!(c.name, "A");
    assert_eq!(
        c.status,
        CredentialStatus::Verified,
        "a rename keeps the test result"
    );

    let update = CredentialUpdate {
        name: Some("renamed".into()),
        description: Some(Some("new".into())),
        base_url: Some("https://eu.driftapi.com/".into()),
        rate_limit_per_min: Some(120),
    };
    let c = store.update_credential("A", &update).unwrap();
    assert_eq!(
        (
            c.name.as_str(),
            c.description.as_deref(),
            c.base_url.as_str(),
            c.rate_limit_per_min
        ),
        ("renamed", Some("new"), "https://eu.driftapi.com", 120)
    );
    assert_eq!(c.status, CredentialStatus::Unverified);
    assert!(store.credential("a").is_err());
    // The key is bound to the id, not the name: it still decrypts after a rename.
    assert_eq!(
        store.credential_api_key("renamed").unwrap().expose_secret(),
        CANARY
    );
}

#[test]
fn delete_refuses_while_used_unless_forced() {
    let (_dir, store) = new_store();
    store
        .add_credential(&new_credential("prod", CANARY))
        .unwrap();
    store
        .add_source("crm-source", "prod", &["conversations".into()])
        .unwrap();
    store
        .add_destination("drift-out", "drift", Some("prod"), &serde_json::json!({}))
        .unwrap();
    store
        .add_destination(
            "warehouse",
            "sqlite",
            None,
            &serde_json::json!({"path": "x.db"}),
        )
        .unwrap();
    store
        .add_flow("nightly", "crm-source", "warehouse")
        .unwrap();

    let err = store.delete_credential("prod", false).unwrap_err();
    let text = err.to_string();
    for name in [
        "data source \"crm-source\"",
        "destination \"drift-out\"",
        "flow \"nightly\"",
        "--force",
    ] {
        assert!(text.contains(name), "{text} should name {name}");
    }
    assert!(!text.contains("warehouse"), "{text}");
    assert!(
        store.credential("prod").is_ok(),
        "refused delete changes nothing"
    );

    store.delete_credential("PROD", true).unwrap();
    assert!(store.credential("prod").is_err());
    let raw = raw(&store);
    let secrets: i64 = raw
        .query_row("SELECT count(*) FROM secrets", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        secrets, 0,
        "the encrypted key is deleted with the credential"
    );
}

#[test]
fn delete_unused_credential() {
    let (_dir, store) = new_store();
    store.add_credential(&new_credential("a", CANARY)).unwrap();
    assert!(store.credential_users("a").unwrap().is_empty());
    store.delete_credential("a", false).unwrap();
    assert!(store.list_credentials().unwrap().is_empty());
}

#[test]
fn debug_and_serialised_credential_hold_only_the_mask() {
    let (_dir, store) = new_store();
    let c = store.add_credential(&new_credential("a", CANARY)).unwrap();
    let json = serde_json::to_string(&c).unwrap();
    let debug = format!("{c:?} {store:?}");
    for text in [json, debug] {
        assert!(!text.contains(CANARY), "{text}");
    }
    assert!(serde_json::to_value(&c).unwrap()["key_mask"] == "••••a3b5");
}

#[test]
fn state_round_trips() {
    let (_dir, store) = new_store();
    assert_eq!(store.stream_state("flow-a", "conversations").unwrap(), None);
    store
        .put_stream_state(
            "flow-a",
            "conversations",
            &serde_json::json!({"watermark": 5}),
        )
        .unwrap();
    store
        .put_stream_state(
            "flow-a",
            "conversations",
            &serde_json::json!({"watermark": 9}),
        )
        .unwrap();
    assert_eq!(
        store.stream_state("flow-a", "conversations").unwrap(),
        Some(serde_json::json!({"watermark": 9}))
    );
}

#[test]
fn concurrent_first_use_from_several_connections() {
    let dir = tempfile::tempdir().unwrap();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let path = dir.path().to_path_buf();
            std::thread::spawn(move || {
                let store = store::Store::open_with(&path, store::KeySource::Key(key(1))).unwrap();
                store
                    .add_credential(&new_credential(&format!("c{i}"), CANARY))
                    .unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let store = store_with(&dir, &key(1));
    assert_eq!(store.list_credentials().unwrap().len(), 4);
    for i in 0..4 {
        let name = format!("c{i}");
        assert_eq!(
            store.credential_api_key(&name).unwrap().expose_secret(),
            CANARY
        );
    }
}

fn oauth(client_id: &str, secret: &str, refresh: &str) -> store::OAuthSettings {
    store::OAuthSettings {
        client_id: client_id.into(),
        client_secret: SecretString::from(secret.to_string()),
        refresh_token: SecretString::from(refresh.to_string()),
    }
}

const SECRET: &str = "oauth_SECRET_CANARY_71c2e9a04d";
const REFRESH: &str = "oauth_REFRESH_CANARY_3b8f60d1e2";

#[test]
fn oauth_settings_are_kept_encrypted_and_refreshed_tokens_replace_key_and_refresh_token() {
    let (_dir, store) = new_store();
    let c = store
        .add_credential(&new_credential("acme", CANARY))
        .unwrap();
    assert_eq!(c.oauth_client_id, None);
    assert!(store.credential_oauth("acme").unwrap().is_none());

    let c = store
        .set_credential_oauth("acme", Some(&oauth(" app-1 ", SECRET, REFRESH)))
        .unwrap();
    assert_eq!(c.oauth_client_id.as_deref(), Some("app-1"));
    let o = store.credential_oauth("ACME").unwrap().unwrap();
    assert_eq!(
        (
            o.client_secret.expose_secret(),
            o.refresh_token.expose_secret()
        ),
        (SECRET, REFRESH)
    );
    let bytes = db_bytes(&store);
    for secret in [SECRET, REFRESH] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} stored in plain text"
        );
    }
    assert!(!format!("{o:?}").contains(SECRET) && !format!("{o:?}").contains(REFRESH));

    // A refresh: new access token (mask follows), new refresh token, expiry; a failed
    // credential is usable again.
    store.mark_credential_failed("acme", "expired").unwrap();
    let new_access = SecretString::from("tok_refreshed_access_9d41".to_string());
    let new_refresh = SecretString::from("ref_refreshed_77aa".to_string());
    store
        .save_refreshed_tokens(
            &c.id,
            &new_access,
            Some(&new_refresh),
            Some(1_800_000_000_000),
        )
        .unwrap();
    let after = store.credential("acme").unwrap();
    assert_eq!(after.key_mask, "••••9d41");
    assert_eq!(after.expires_at, Some(1_800_000_000_000));
    assert_eq!(after.status, CredentialStatus::Verified);
    assert_eq!(after.last_error, None);
    assert_eq!(
        store.credential_api_key("acme").unwrap().expose_secret(),
        "tok_refreshed_access_9d41"
    );
    let o = store.credential_oauth("acme").unwrap().unwrap();
    assert_eq!(o.refresh_token.expose_secret(), "ref_refreshed_77aa");
    assert_eq!(o.client_secret.expose_secret(), SECRET);

    // No refresh token in the answer: the old one stays.
    store
        .save_refreshed_tokens(&c.id, &new_access, None, None)
        .unwrap();
    let o = store.credential_oauth("acme").unwrap().unwrap();
    assert_eq!(o.refresh_token.expose_secret(), "ref_refreshed_77aa");

    // Removing the settings removes the secrets too.
    let c = store.set_credential_oauth("acme", None).unwrap();
    assert_eq!(c.oauth_client_id, None);
    assert!(store.credential_oauth("acme").unwrap().is_none());
}

#[test]
fn bad_oauth_values_name_the_field_and_change_nothing() {
    let (_dir, store) = new_store();
    store
        .add_credential(&new_credential("acme", CANARY))
        .unwrap();
    for (o, field) in [
        (oauth("", SECRET, REFRESH), "oauth_client_id"),
        (oauth("app", " ", REFRESH), "oauth_client_secret"),
        (oauth("app", SECRET, "two words"), "oauth_refresh_token"),
        (oauth("app", SECRET, "ctl\u{7}char"), "oauth_refresh_token"),
    ] {
        let err = store.set_credential_oauth("acme", Some(&o)).unwrap_err();
        match &err {
            StoreError::Invalid { field: f, message } => {
                assert_eq!(*f, field, "{message}");
                assert!(!message.contains(SECRET) && !message.contains(REFRESH));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(store.credential("acme").unwrap().oauth_client_id, None);
    let missing = store.save_refreshed_tokens(
        "cred_0000000000000000",
        &SecretString::from("tok".to_string()),
        None,
        None,
    );
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
}

#[test]
fn rotating_keeps_replaces_or_removes_the_oauth_app_as_asked() {
    use store::OAuthChange;
    let (_dir, store) = new_store();
    store
        .add_credential_with_oauth(
            &new_credential("acme", CANARY),
            Some(&oauth("app-1", SECRET, REFRESH)),
        )
        .unwrap();
    let key = |k: &str| SecretString::from(k.to_string());

    let kept = store
        .rotate_credential("acme", &key("tok_kept_000000000001"), &OAuthChange::Keep)
        .unwrap();
    assert_eq!(kept.oauth_client_id.as_deref(), Some("app-1"));
    assert_eq!(kept.key_mask, "••••0001");

    let replaced = store
        .rotate_credential(
            "acme",
            &key("tok_set_0000000000002"),
            &OAuthChange::Set(oauth("app-2", "secret-two", "refresh-two")),
        )
        .unwrap();
    assert_eq!(replaced.oauth_client_id.as_deref(), Some("app-2"));
    let o = store.credential_oauth("acme").unwrap().unwrap();
    assert_eq!(o.client_secret.expose_secret(), "secret-two");

    // A bad new app changes nothing, not even the key.
    let err = store
        .rotate_credential(
            "acme",
            &key("tok_bad_0000000000003"),
            &OAuthChange::Set(oauth("app-3", " ", REFRESH)),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Invalid {
                field: "oauth_client_secret",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.credential("acme").unwrap().key_mask, "••••0002");

    let removed = store
        .rotate_credential("acme", &key("tok_plain_00000000004"), &OAuthChange::Remove)
        .unwrap();
    assert_eq!(removed.oauth_client_id, None);
    assert!(store.credential_oauth("acme").unwrap().is_none());
    assert_eq!(
        store.credential_api_key("acme").unwrap().expose_secret(),
        "tok_plain_00000000004"
    );
}

#[test]
fn clearing_the_oauth_app_removes_its_secrets_and_keeps_the_key() {
    let (_dir, store) = new_store();
    store
        .add_credential_with_oauth(
            &new_credential("acme", CANARY),
            Some(&oauth("app-1", SECRET, REFRESH)),
        )
        .unwrap();
    let c = store.clear_credential_oauth("ACME").unwrap();
    assert_eq!(c.oauth_client_id, None);
    assert!(store.credential_oauth("acme").unwrap().is_none());
    assert_eq!(
        store.credential_api_key("acme").unwrap().expose_secret(),
        CANARY
    );
    // Again: nothing to remove is fine; an unknown name is not.
    store.clear_credential_oauth("acme").unwrap();
    assert!(matches!(
        store.clear_credential_oauth("nope"),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn a_refreshed_token_makes_an_unverified_credential_verified() {
    let (_dir, store) = new_store();
    let c = store
        .add_credential_with_oauth(
            &new_credential("acme", CANARY),
            Some(&oauth("app-1", SECRET, REFRESH)),
        )
        .unwrap();
    assert_eq!(c.status, CredentialStatus::Unverified);
    store
        .save_refreshed_tokens(
            &c.id,
            &SecretString::from("tok_refreshed_access_9d41".to_string()),
            None,
            None,
        )
        .unwrap();
    assert_eq!(
        store.credential("acme").unwrap().status,
        CredentialStatus::Verified
    );
}
