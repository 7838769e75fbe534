//! CSV sink: the shared scenarios, header, RFC 4180 quoting, nested values.

use crate::harness::{self, data_files, obj, Crash, RejectedRow, Row, SinkUnderTest};
use async_trait::async_trait;
use serde_json::{Map, Value};
use sinks::{CsvSink, OpenOptions, SinkSpec};
use std::path::{Path, PathBuf};
use sync_core::Sink;

struct Csv(tempfile::TempDir);

impl Csv {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }
    fn dir(&self) -> PathBuf {
        self.0.path().join("out")
    }
}

/// (header, rows) of a CSV file, parsed by the csv crate.
fn read(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|row| row.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

fn cell<'a>(header: &[String], row: &'a [String], name: &str) -> &'a str {
    let i = header.iter().position(|h| h == name).unwrap();
    &row[i]
}

#[async_trait]
impl SinkUnderTest for Csv {
    fn open(&self) -> Box<dyn Sink> {
        Box::new(CsvSink::open(&self.dir()))
    }
    async fn rows(&self, stream: &str) -> Vec<Map<String, Value>> {
        let mut out = Vec::new();
        for f in data_files(&self.dir(), stream, "csv") {
            let (header, rows) = read(&f);
            for row in rows {
                out.push(obj(
                    serde_json::from_str(cell(&header, &row, "_raw")).unwrap()
                ));
            }
        }
        out
    }
    fn open_hard(&self) -> Box<dyn Sink> {
        let spec = SinkSpec::Csv(self.dir());
        sinks::open_with(
            &spec,
            OpenOptions {
                hard_deletes: true,
                ..Default::default()
            },
        )
        .unwrap()
    }
    async fn marked(&self, stream: &str) -> Vec<Row> {
        let mut out = Vec::new();
        for f in data_files(&self.dir(), stream, "csv") {
            let (header, rows) = read(&f);
            for row in rows {
                let deleted_at = cell(&header, &row, "_deleted_at");
                out.push(Row {
                    data: obj(serde_json::from_str(cell(&header, &row, "_raw")).unwrap()),
                    deleted: match cell(&header, &row, "_deleted") {
                        "true" => true,
                        "false" => false,
                        other => panic!("_deleted is {other:?}"),
                    },
                    deleted_at: (!deleted_at.is_empty()).then(|| deleted_at.to_owned()),
                    run_id: cell(&header, &row, "_run_id").to_owned(),
                });
            }
        }
        out
    }
    async fn rejected(&self) -> Vec<RejectedRow> {
        harness::file_rejected(&self.dir())
    }
    async fn break_state_writes(&self) {
        harness::break_state_file(&self.dir());
    }
    fn is_log(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn full_sync_writes_a_header_from_the_schema_and_typed_cells() {
    let sink = Csv::new();
    harness::full_sync(&sink).await;
    let path = sink.dir().join("conversations/run-1.csv");
    let (header, rows) = read(&path);
    assert_eq!(
        header,
        [
            "id",
            "contactId",
            "status",
            "updatedAt",
            "updatedAt_iso",
            "score",
            "open",
            "tags",
            "attributes",
            "_extracted_at",
            "_run_id",
            "_raw",
            "_deleted",
            "_deleted_at"
        ]
    );
    let row = &rows[1];
    assert_eq!(cell(&header, row, "id"), "1001");
    assert_eq!(
        cell(&header, row, "updatedAt_iso"),
        "2023-11-14T22:13:21.000Z"
    );
    assert_eq!(cell(&header, row, "score"), "0.25");
    assert_eq!(cell(&header, row, "open"), "false");
    assert_eq!(
        serde_json::from_str::<Value>(cell(&header, row, "tags")).unwrap(),
        harness::conversation(1)["tags"],
        "nested values as JSON text"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("id,contactId,status,updatedAt,"), "{text}");
    assert!(text.contains("\r\n"), "RFC 4180 line ends");
    assert!(!text.starts_with('\u{feff}'), "no byte-order mark");
}

#[tokio::test]
async fn killed_before_a_commit_and_resumed_lands_every_record_once() {
    harness::kill_and_resume(&Csv::new(), Crash::Before(2)).await;
}

#[tokio::test]
async fn killed_after_a_commit_and_resumed_lands_every_record_once() {
    harness::kill_and_resume(&Csv::new(), Crash::After(3)).await;
}

#[tokio::test]
async fn unicode_and_separators_round_trip_through_rfc4180_quoting() {
    let sink = Csv::new();
    harness::unicode_round_trip(&sink).await;
    let (header, rows) = read(&sink.dir().join("conversations/run-unicode.csv"));
    let statuses: Vec<&str> = rows.iter().map(|r| cell(&header, r, "status")).collect();
    assert_eq!(statuses, harness::UNICODE);
    let text = std::fs::read_to_string(sink.dir().join("conversations/run-unicode.csv")).unwrap();
    assert!(
        text.contains(r#""quote "" comma , semicolon ; tab 	""#),
        "{text}"
    );
}

#[tokio::test]
async fn schema_change_shows_in_the_next_runs_header() {
    let sink = Csv::new();
    harness::schema_change(&sink).await;
    let (v1, _) = read(&sink.dir().join("conversations/run-v1.csv"));
    let (v2, rows) = read(&sink.dir().join("conversations/run-v2.csv"));
    assert!(!v1.contains(&"channel".to_owned()));
    assert!(v2.contains(&"channel".to_owned()));
    assert_eq!(cell(&v2, &rows[0], "channel"), "email");
    assert_eq!(cell(&v2, &rows[0], "score"), "high");
}

#[tokio::test]
async fn sandbox_sync_matches_the_sandbox() {
    harness::sandbox_sync(&Csv::new()).await;
}

#[tokio::test]
async fn a_messy_org_quarantines_only_its_unfit_records() {
    crate::drift_org::messy_org(&Csv::new()).await;
}

#[tokio::test]
async fn renames_and_deletes_in_drift_reach_the_sink() {
    crate::drift_org::changes_reach_the_sink(&Csv::new(), false).await;
}

#[tokio::test]
async fn a_second_run_into_the_same_directory_is_refused() {
    let sink = Csv::new();
    let mut first = sink.open();
    first.check().await.unwrap();
    let err = sink.open().check().await.unwrap_err();
    assert_eq!(
        err.message,
        format!(
            "csv: another run is writing to {}: wait for it to finish or choose another directory",
            sink.dir().display()
        )
    );
    drop(first);
    sink.open().check().await.unwrap();
}

#[tokio::test]
async fn quarantined_records_are_committed_with_the_batch() {
    harness::quarantine_commits_with_the_batch(&Csv::new()).await;
}

#[tokio::test]
async fn a_tombstone_is_a_row_with_its_key_and_the_delete_columns() {
    let sink = Csv::new();
    harness::tombstone_marks_and_upsert_revives(&sink).await;
    let (header, rows) = read(&sink.dir().join("conversations/r2.csv"));
    let tombstone = &rows[0];
    assert_eq!(cell(&header, tombstone, "id"), "2");
    for empty in ["status", "updatedAt", "updatedAt_iso", "tags"] {
        assert_eq!(cell(&header, tombstone, empty), "", "{empty}");
    }
    assert_eq!(cell(&header, tombstone, "_deleted"), "true");
    assert_eq!(
        cell(&header, tombstone, "_deleted_at"),
        harness::iso(harness::T2)
    );
}

#[tokio::test]
async fn the_last_operation_on_a_key_in_a_batch_wins() {
    harness::last_operation_in_a_batch_wins(&Csv::new()).await;
}

#[tokio::test]
async fn hard_deletes_still_write_the_tombstone() {
    harness::hard_deletes_remove_rows(&Csv::new()).await;
}

#[tokio::test]
async fn a_replace_batch_writes_its_tombstones_in_the_new_file() {
    harness::replace_upserts_and_keeps_rows_not_in_the_batch(&Csv::new()).await;
}

#[tokio::test]
async fn an_engine_run_quarantines_and_deletes() {
    harness::engine_run_quarantines_and_deletes(&Csv::new()).await;
}
