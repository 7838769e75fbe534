//! Saved data destinations: list, get by id or name, update, delete (refused while a flow
//! writes to one).

use crate::helpers::*;
use serde_json::json;
use store::{DestinationUpdate, StoreError};

fn config(object: &str) -> serde_json::Value {
    json!({"object": object, "key": "email", "mapping": "full name=name", "include_unmapped": false})
}

#[test]
fn list_get_update_and_delete_a_destination() {
    let (_dir, store) = new_store();
    store
        .add_credential(&new_credential("Prod", CANARY))
        .unwrap();
    store
        .add_credential(&new_credential("Other", CANARY))
        .unwrap();
    let id = store
        .add_destination("Leads", "drift", Some("Prod"), &config("contacts"))
        .unwrap();
    store
        .add_destination("accounts in", "drift", Some("prod"), &config("accounts"))
        .unwrap();
    let names: Vec<String> = store
        .list_destinations()
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(
        names,
        ["accounts in", "Leads"],
        "sorted by name, case-insensitively"
    );

    let by_id = store.destination(&id).unwrap();
    assert_eq!(by_id, store.destination("LEADS").unwrap());
    assert_eq!(by_id.credential.as_deref(), Some("Prod"));
    assert_eq!(by_id.config["mapping"], "full name=name");

    let updated = store
        .update_destination(
            "leads",
            &DestinationUpdate {
                name: Some("Leads 2".into()),
                credential: Some("Other".into()),
                config: Some(config("timeline")),
            },
        )
        .unwrap();
    assert_eq!(updated.id, id);
    assert_eq!(updated.name, "Leads 2");
    assert_eq!(updated.credential.as_deref(), Some("Other"));
    assert_eq!(updated.config["object"], "timeline");
    assert!(updated.updated_at >= by_id.updated_at);

    let renamed_only = store
        .update_destination(
            &id,
            &DestinationUpdate {
                name: Some("leads 2".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        renamed_only.name, "leads 2",
        "a case change of its own name is allowed"
    );
    assert_eq!(
        renamed_only.credential.as_deref(),
        Some("Other"),
        "absent fields stay"
    );
    assert_eq!(renamed_only.config["object"], "timeline");

    let deleted = store.delete_destination(&id).unwrap();
    assert_eq!(deleted.name, "leads 2");
    assert!(matches!(
        store.destination(&id),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.list_destinations().unwrap().len(), 1);
}

#[test]
fn update_refuses_a_taken_name_and_an_unknown_credential() {
    let (_dir, store) = new_store();
    store
        .add_credential(&new_credential("Prod", CANARY))
        .unwrap();
    store
        .add_destination("A", "drift", Some("Prod"), &config("contacts"))
        .unwrap();
    store
        .add_destination("B", "drift", Some("Prod"), &config("contacts"))
        .unwrap();
    let err = store
        .update_destination(
            "b",
            &DestinationUpdate {
                name: Some("a".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Duplicate { ref existing, .. } if existing == "A"),
        "{err}"
    );
    let err = store
        .update_destination(
            "b",
            &DestinationUpdate {
                credential: Some("Nope".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                kind: "credential",
                ..
            }
        ),
        "{err}"
    );
    let err = store
        .update_destination(
            "b",
            &DestinationUpdate {
                name: Some("  ".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid { field: "name", .. }),
        "{err}"
    );
    assert_eq!(store.destination("B").unwrap().name, "B", "nothing changed");
}

#[test]
fn a_destination_used_by_a_flow_cannot_be_deleted() {
    let (_dir, store) = new_store();
    store
        .add_credential(&new_credential("Prod", CANARY))
        .unwrap();
    store
        .add_source("crm", "Prod", &["contacts".to_string()])
        .unwrap();
    store
        .add_destination("Leads", "drift", Some("Prod"), &config("contacts"))
        .unwrap();
    store.add_flow("nightly", "crm", "Leads").unwrap();
    let err = store.delete_destination("Leads").unwrap_err();
    assert!(err.is_user_error());
    match &err {
        StoreError::UsedBy { users, .. } => assert_eq!(users, &["flow \"nightly\""]),
        other => panic!("expected UsedBy, got {other:?}"),
    }
    assert!(err.to_string().contains("flow \"nightly\""), "{err}");
    assert!(store.destination("Leads").is_ok(), "still there");
}

#[test]
fn unknown_destination_is_not_found() {
    let (_dir, store) = new_store();
    for result in [
        store.destination("nope").map(|_| ()),
        store.delete_destination("nope").map(|_| ()),
        store
            .update_destination("nope", &DestinationUpdate::default())
            .map(|_| ()),
    ] {
        assert!(matches!(
            result,
            Err(StoreError::NotFound {
                kind: "destination",
                ..
            })
        ));
    }
}
