//! Column mapping: --map entries, mapping files, standard fields, unmapped columns.

use drift_writer::{Key, Mapper, Mapping, Object};
use serde_json::{json, Map, Value};

fn row(pairs: Value) -> Map<String, Value> {
    pairs.as_object().unwrap().clone()
}

#[test]
fn map_entries_parse_with_types_and_bad_entries_name_the_fix() {
    let m = Mapping::parse_pairs("E-Mail=email, seen=last_seen:date ,tier=plan").unwrap();
    assert_eq!(m.columns().collect::<Vec<_>>(), ["E-Mail", "seen", "tier"]);
    assert_eq!(m.to_pairs(), "E-Mail=email,seen=last_seen:date,tier=plan");
    let e = Mapping::parse_pairs("email").unwrap_err().to_string();
    assert!(e.contains("column=attribute"), "{e}");
    let e = Mapping::parse_pairs("a=b:colour").unwrap_err().to_string();
    assert!(e.contains("unknown type `colour`"), "{e}");
}

#[test]
fn mapping_files_may_be_json_or_lines() {
    let dir = tempfile::tempdir().unwrap();
    let json_file = dir.path().join("m.json");
    std::fs::write(&json_file, r#"{"Mail": "email", "Score": "score:number"}"#).unwrap();
    let lines = dir.path().join("m.txt");
    std::fs::write(&lines, "# leads\nMail=email\n\nScore=score:number\n").unwrap();
    let a = Mapping::from_file(&json_file).unwrap();
    let b = Mapping::from_file(&lines).unwrap();
    assert_eq!(a.to_pairs(), b.to_pairs());
    assert_eq!(a.to_pairs(), "Mail=email,Score=score:number");
}

#[test]
fn standard_columns_map_loosely_and_unmapped_ones_need_include_unmapped() {
    let mapping = Mapping::parse_pairs("Score=score:number").unwrap();
    let input =
        json!({"Email": "a@example.com", "First Name": "Ada", "Score": "7", "notes": "vip"});
    let columns: Vec<String> = row(input.clone()).keys().cloned().collect();

    let mut strict = Mapper::new(Object::Contacts, Key::Email, &mapping, false);
    strict.check_columns(&columns).unwrap();
    let p = strict.apply(row(input.clone())).unwrap();
    assert_eq!(p.0.as_deref(), Some("a@example.com"));
    assert_eq!(
        p.1,
        row(json!({"email": "a@example.com", "first_name": "Ada", "score": 7}))
    );
    assert_eq!(strict.ignored_columns(), ["notes"]);

    let mut open = Mapper::new(Object::Contacts, Key::Email, &mapping, true);
    let p = open.apply(row(input)).unwrap();
    assert_eq!(p.1["notes"], json!("vip"));
    assert!(open.ignored_columns().is_empty());
}

#[test]
fn every_bad_value_of_a_row_is_named_together() {
    let mapping = Mapping::parse_pairs("seen=last_seen:date").unwrap();
    let mut m = Mapper::new(Object::Contacts, Key::Email, &mapping, false);
    let err = m
        .apply(row(json!({"email": "nope", "seen": "yesterday"})))
        .unwrap_err();
    assert!(
        err.contains("email: `nope` is not an email address"),
        "{err}"
    );
    assert!(err.contains("column seen (attribute last_seen)"), "{err}");
}

#[test]
fn a_mapped_column_missing_from_the_input_is_refused_up_front() {
    let mapping = Mapping::parse_pairs("Mail=email").unwrap();
    let m = Mapper::new(Object::Contacts, Key::Email, &mapping, false);
    let e = m.check_columns(&["email".into()]).unwrap_err().to_string();
    assert!(e.contains("Mail") && e.contains("columns: email"), "{e}");
}
