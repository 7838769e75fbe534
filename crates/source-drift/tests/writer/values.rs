//! Type checks applied before anything is sent.

use serde_json::json;
use source_drift::writer::values::{boolean, convert, date_ms, email, number, same};
use source_drift::writer::FieldType;

#[test]
fn emails_are_checked_for_syntax_and_kept_as_given() {
    for ok in [
        "a@example.com",
        " b.c+tag@sub.example.org ",
        "zoë@exämple.com",
        "x_y@a-b.co",
    ] {
        let v = email(&json!(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(v, json!(ok.trim()));
    }
    for bad in [
        "plain",
        "@example.com",
        "a@",
        "a@b",
        "a b@example.com",
        "a@@example.com",
        "a@example..com",
        ".a@example.com",
        "a@-example.com",
    ] {
        let e = email(&json!(bad)).unwrap_err();
        assert!(e.contains("not an email address"), "{bad}: {e}");
    }
}

#[test]
fn dates_become_epoch_milliseconds() {
    assert_eq!(
        date_ms(&json!("2024-05-01T12:00:00Z")).unwrap(),
        1_714_564_800_000
    );
    assert_eq!(
        date_ms(&json!("2024-05-01T14:00:00+02:00")).unwrap(),
        1_714_564_800_000
    );
    assert_eq!(date_ms(&json!("2024-05-01")).unwrap(), 1_714_521_600_000);
    assert_eq!(date_ms(&json!("1714564800000")).unwrap(), 1_714_564_800_000);
    assert_eq!(
        date_ms(&json!(1_714_564_800_000i64)).unwrap(),
        1_714_564_800_000
    );
    let e = date_ms(&json!("May 1st")).unwrap_err();
    assert!(e.contains("RFC 3339"), "{e}");
}

#[test]
fn numbers_and_booleans_are_parsed_or_refused() {
    assert_eq!(number(&json!("42")).unwrap(), json!(42));
    assert_eq!(number(&json!(" 2.5 ")).unwrap(), json!(2.5));
    assert!(number(&json!("4x")).unwrap_err().contains("not a number"));
    for (t, b) in [
        ("true", true),
        ("YES", true),
        ("1", true),
        ("off", false),
        ("n", false),
    ] {
        assert_eq!(boolean(&json!(t)).unwrap(), b, "{t}");
    }
    assert!(boolean(&json!("maybe"))
        .unwrap_err()
        .contains("not a boolean"));
    assert_eq!(
        convert(&json!("7"), FieldType::Integer).unwrap(),
        Some(json!(7))
    );
    assert!(convert(&json!("7.5"), FieldType::Integer).is_err());
}

#[test]
fn blank_values_are_absent_not_sent() {
    assert_eq!(convert(&json!("  "), FieldType::Email).unwrap(), None);
    assert_eq!(convert(&json!(null), FieldType::Date).unwrap(), None);
    assert_eq!(
        convert(&json!(" text "), FieldType::Any).unwrap(),
        Some(json!("text"))
    );
}

#[test]
fn equal_values_count_as_unchanged_across_number_spellings() {
    assert!(same(Some(&json!(5)), &json!(5.0)));
    assert!(same(Some(&json!("5")), &json!(5)));
    assert!(!same(Some(&json!("Ada")), &json!("Ada Lovelace")));
    assert!(!same(None, &json!("x")));
}
