//! Scopes a use of a credential needs (`drift_writer::scopes`): streams from the stream table,
//! write targets from the writer's table.

use drift_writer::scopes::{check_scopes, required_scopes};

#[test]
fn streams_map_to_scopes() {
    let needed =
        required_scopes(&["conversations", "messages", "Meetings", "push:contacts"]).unwrap();
    let needed: Vec<_> = needed.into_iter().collect();
    assert_eq!(
        needed,
        [
            "contact_read",
            "contact_write",
            "conversation_read",
            "user_read"
        ]
    );
    let err = required_scopes(&["convos"]).unwrap_err().to_string();
    assert!(
        err.contains("convos") && err.contains("conversations"),
        "{err}"
    );
    assert!(required_scopes(&["all"])
        .unwrap()
        .contains("all_contact_read"));
}

#[test]
fn scope_check_reports_missing_and_extra() {
    let granted = vec!["conversation_read".to_string(), "user_write".to_string()];
    let check = check_scopes(
        &granted,
        &required_scopes(&["accounts", "conversations"]).unwrap(),
    );
    assert_eq!(check.missing, ["account_read"]);
    assert_eq!(check.extra, ["user_write"]);
}
