//! Parquet sink: the shared scenarios, Arrow schema, zstd, files per checkpoint;
//! files read back with the parquet crate.

use crate::harness::{self, data_files, obj, Crash, RejectedRow, Row, SinkUnderTest};
use arrow_array::{Array, BooleanArray, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_schema::{DataType, TimeUnit};
use async_trait::async_trait;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::{Map, Value};
use sinks::{OpenOptions, ParquetSink, SinkSpec};
use std::fs::File;
use std::path::{Path, PathBuf};
use sync_core::Sink;

struct Parquet(tempfile::TempDir);

impl Parquet {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }
    fn dir(&self) -> PathBuf {
        self.0.path().join("out")
    }
}

fn batches(path: &Path) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let col = batch.column_by_name(name).unwrap();
    let a = col.as_any().downcast_ref::<StringArray>().unwrap();
    (0..a.len())
        .map(|i| (!a.is_null(i)).then(|| a.value(i).to_owned()))
        .collect()
}

#[async_trait]
impl SinkUnderTest for Parquet {
    fn open(&self) -> Box<dyn Sink> {
        Box::new(ParquetSink::open(&self.dir()))
    }
    async fn rows(&self, stream: &str) -> Vec<Map<String, Value>> {
        data_files(&self.dir(), stream, "parquet")
            .iter()
            .flat_map(|f| batches(f))
            .flat_map(|b| strings(&b, "_raw"))
            .map(|raw| obj(serde_json::from_str(&raw.unwrap()).unwrap()))
            .collect()
    }
    fn open_hard(&self) -> Box<dyn Sink> {
        let spec = SinkSpec::Parquet(self.dir());
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
        for b in data_files(&self.dir(), stream, "parquet")
            .iter()
            .flat_map(|f| batches(f))
        {
            let deleted = b
                .column_by_name("_deleted")
                .unwrap()
                .as_any()
                .downcast_ref::<BooleanArray>()
                .unwrap();
            let at = timestamps(&b, "_deleted_at");
            let raw = strings(&b, "_raw");
            let run = strings(&b, "_run_id");
            for i in 0..b.num_rows() {
                assert!(!deleted.is_null(i), "_deleted is never null");
                out.push(Row {
                    data: obj(serde_json::from_str(raw[i].as_ref().unwrap()).unwrap()),
                    deleted: deleted.value(i),
                    deleted_at: at[i].map(harness::iso),
                    run_id: run[i].clone().unwrap(),
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

fn timestamps(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    let col = batch.column_by_name(name).unwrap();
    let a = col
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>()
        .unwrap();
    (0..a.len())
        .map(|i| (!a.is_null(i)).then(|| a.value(i)))
        .collect()
}

#[tokio::test]
async fn full_sync_writes_typed_columns_timestamps_and_zstd() {
    let sink = Parquet::new();
    harness::full_sync(&sink).await;
    let files = data_files(&sink.dir(), "conversations", "parquet");
    // 10 records, batches of 4 plus the final flush: three commits, joined into one file
    // per stream when the run ended, a row group per commit.
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].ends_with("conversations/run-1.parquet"),
        "{files:?}"
    );
    let joined = SerializedFileReader::new(File::open(&files[0]).unwrap()).unwrap();
    assert_eq!(joined.metadata().num_row_groups(), 3);
    assert_eq!(joined.metadata().file_metadata().num_rows(), 10);
    let state = std::fs::read_to_string(sink.dir().join("_driftbridge_state.json")).unwrap();
    assert!(
        state.contains("conversations/run-1.parquet") && !state.contains("run-1-00000"),
        "the state lists the joined file only: {state}"
    );
    let batch = &batches(&files[0])[0];
    let schema = batch.schema();
    let ty = |n: &str| schema.field_with_name(n).unwrap().data_type().clone();
    assert_eq!(ty("id"), DataType::Int64);
    assert_eq!(ty("updatedAt"), DataType::Int64);
    assert_eq!(
        ty("updatedAt_ts"),
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    assert_eq!(ty("score"), DataType::Float64);
    assert_eq!(ty("open"), DataType::Boolean);
    assert_eq!(ty("status"), DataType::Utf8);
    assert_eq!(ty("tags"), DataType::Utf8);
    assert_eq!(ty("_deleted"), DataType::Boolean);
    assert_eq!(
        ty("_deleted_at"),
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    let ts = batch
        .column_by_name("updatedAt_ts")
        .unwrap()
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>()
        .unwrap()
        .value(1);
    assert_eq!(ts, 1_700_000_001_000);
    let tags = strings(batch, "tags")[0].clone().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&tags).unwrap(),
        harness::conversation(0)["tags"]
    );
    let reader = SerializedFileReader::new(File::open(&files[0]).unwrap()).unwrap();
    let column = reader.metadata().row_group(0).column(0).compression();
    assert!(matches!(column, Compression::ZSTD(_)), "{column:?}");
}

#[tokio::test]
async fn killed_before_a_commit_and_resumed_lands_every_record_once() {
    harness::kill_and_resume(&Parquet::new(), Crash::Before(2)).await;
}

#[tokio::test]
async fn killed_after_a_commit_and_resumed_lands_every_record_once() {
    harness::kill_and_resume(&Parquet::new(), Crash::After(1)).await;
}

#[tokio::test]
async fn unicode_round_trips() {
    let sink = Parquet::new();
    harness::unicode_round_trip(&sink).await;
    let files = data_files(&sink.dir(), "conversations", "parquet");
    let statuses: Vec<String> = files
        .iter()
        .flat_map(|f| batches(f))
        .flat_map(|b| strings(&b, "status"))
        .map(Option::unwrap)
        .collect();
    assert_eq!(statuses, harness::UNICODE);
}

#[tokio::test]
async fn schema_change_gives_the_next_files_the_new_schema() {
    let sink = Parquet::new();
    harness::schema_change(&sink).await;
    let files = data_files(&sink.dir(), "conversations", "parquet");
    let v2 = files
        .iter()
        .find(|f| f.to_string_lossy().contains("run-v2-"))
        .unwrap();
    let batch = &batches(v2)[0];
    assert_eq!(strings(batch, "channel")[0].as_deref(), Some("email"));
    assert_eq!(strings(batch, "score")[0].as_deref(), Some("high"));
}

#[tokio::test]
async fn sandbox_sync_matches_the_sandbox() {
    harness::sandbox_sync(&Parquet::new()).await;
}

#[tokio::test]
async fn a_messy_org_quarantines_only_its_unfit_records() {
    crate::drift_org::messy_org(&Parquet::new()).await;
}

#[tokio::test]
async fn renames_and_deletes_in_drift_reach_the_sink() {
    crate::drift_org::changes_reach_the_sink(&Parquet::new(), false).await;
}

#[tokio::test]
async fn a_second_run_into_the_same_directory_is_refused() {
    let sink = Parquet::new();
    let mut first = sink.open();
    first.check().await.unwrap();
    let err = sink.open().check().await.unwrap_err();
    assert_eq!(
        err.message,
        format!(
            "parquet: another run is writing to {}: wait for it to finish or choose another directory",
            sink.dir().display()
        )
    );
    drop(first);
    sink.open().check().await.unwrap();
}

#[tokio::test]
async fn quarantined_records_are_committed_with_the_batch() {
    harness::quarantine_commits_with_the_batch(&Parquet::new()).await;
}

#[tokio::test]
async fn a_tombstone_is_a_row_with_its_key_and_the_delete_columns() {
    let sink = Parquet::new();
    harness::tombstone_marks_and_upsert_revives(&sink).await;
    let files = data_files(&sink.dir(), "conversations", "parquet");
    let b = &batches(&files[1])[0];
    assert!(
        files[1].ends_with("conversations/r2-000001.parquet"),
        "{files:?}"
    );
    assert_eq!(strings(b, "status")[0], None, "other columns null");
    assert_eq!(timestamps(b, "_deleted_at")[0], Some(harness::T2));
}

#[tokio::test]
async fn the_last_operation_on_a_key_in_a_batch_wins() {
    harness::last_operation_in_a_batch_wins(&Parquet::new()).await;
}

#[tokio::test]
async fn hard_deletes_still_write_the_tombstone() {
    harness::hard_deletes_remove_rows(&Parquet::new()).await;
}

#[tokio::test]
async fn a_replace_batch_writes_its_tombstones_in_the_new_file() {
    harness::replace_upserts_and_keeps_rows_not_in_the_batch(&Parquet::new()).await;
}

#[tokio::test]
async fn an_engine_run_quarantines_and_deletes() {
    harness::engine_run_quarantines_and_deletes(&Parquet::new()).await;
}
