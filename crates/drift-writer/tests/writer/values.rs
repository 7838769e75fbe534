//! Type checks applied before anything is sent.

use drift_writer::values::{boolean, convert, date_ms, domain, email, number, same};
use drift_writer::FieldType;
use serde_json::json;

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
fn domains_are_host_names_and_pasted_urls_are_reduced_to_their_host() {
    for (given, sent) in [
        ("acme.example", "acme.example"),
        (" www.Acme-Corp.co.uk ", "www.Acme-Corp.co.uk"),
        ("bücher.example", "bücher.example"),
        ("https://www.acme.example/", "www.acme.example"),
        ("HTTP://acme.example", "acme.example"),
        ("acme.example/", "acme.example"),
    ] {
        let v = domain(&json!(given)).unwrap_or_else(|e| panic!("{given}: {e}"));
        assert_eq!(v, json!(sent), "{given}");
    }
    let long_label = format!("{}.example", "a".repeat(64));
    let long_name = format!("{}example", "abcdefghi.".repeat(25));
    for bad in [
        "not a domain",
        "<script>",
        "localhost",
        "acme..example",
        ".acme.example",
        "acme.example.",
        "-acme.example",
        "acme_corp.example",
        "acme.example/about",
        "ftp://acme.example",
        "mailto:x@acme.example",
        long_label.as_str(),
        long_name.as_str(),
    ] {
        let e = domain(&json!(bad)).unwrap_err();
        assert!(e.contains("not a domain name"), "{bad}: {e}");
        assert!(e.contains("example.com"), "the fix: {e}");
    }
    let e = domain(&json!("https://acme.example/pricing?x=1")).unwrap_err();
    assert!(e.contains("host name (acme.example)"), "{e}");
    assert_eq!(
        convert(&json!("https://acme.example/"), FieldType::Domain).unwrap(),
        Some(json!("acme.example"))
    );
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
