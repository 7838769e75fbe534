//! The catalog (stream names, JSON Schemas, keys, cursors) is protocol output: a change to it
//! changes every destination's tables, so it is compared with a reviewed snapshot.
//! Set `DRIFTBRIDGE_UPDATE_SNAPSHOTS=1` to rewrite the snapshot after an intended change.

use std::path::PathBuf;

#[test]
fn catalog_matches_the_reviewed_snapshot() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/drift/catalog.snapshot.json");
    let actual = serde_json::to_string_pretty(&source_drift::catalog()).unwrap() + "\n";
    if std::env::var_os("DRIFTBRIDGE_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "the catalog changed; review the difference and rerun with DRIFTBRIDGE_UPDATE_SNAPSHOTS=1:\n{actual}"
    );
}
