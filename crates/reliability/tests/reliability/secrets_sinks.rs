//! Secrets in destinations: after a sync with the canary token into PostgreSQL (the real
//! server at 127.0.0.1:5432, database `test`, a schema of its own), JSONL, CSV and Parquet,
//! the canary is in no table's text and no output file's bytes (Parquet: also the decoded
//! text columns, since its pages may be compressed).

use crate::common::{files_under, Env};
use crate::secrets::{assert_clean, sandbox_config, scan, CANARY};
use std::path::Path;

fn pg_url() -> String {
    std::env::var("DRIFTBRIDGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Every file's bytes under `dir` are clean; returns how many files there were.
fn scan_dir(label: &str, dir: &Path) -> usize {
    let files = files_under(dir);
    for (path, bytes) in &files {
        assert_clean(&format!("{label}: {}", path.display()), bytes);
    }
    files.len()
}

/// The text of every string column of every Parquet file under `dir`, decoded.
fn parquet_text(dir: &Path) -> (usize, String) {
    use arrow_array::{Array, LargeStringArray, StringArray};
    let mut values = 0;
    let mut text = String::new();
    for (path, _) in files_under(dir) {
        if path.extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(&path).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        for batch in reader {
            for column in batch.unwrap().columns() {
                let any = column.as_any();
                if let Some(a) = any.downcast_ref::<StringArray>() {
                    values += a.len();
                    a.iter().flatten().for_each(|v| text.push_str(v));
                } else if let Some(a) = any.downcast_ref::<LargeStringArray>() {
                    values += a.len();
                    a.iter().flatten().for_each(|v| text.push_str(v));
                }
            }
        }
    }
    (values, text)
}

/// Every row of every table of `schema` as text (`row::text`); returns (rows, text).
async fn pg_dump(client: &tokio_postgres::Client, schema: &str) -> (usize, String) {
    let tables = client
        .query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .await
        .unwrap();
    let mut rows = 0;
    let mut text = String::new();
    for t in &tables {
        let table: String = t.get(0);
        let dump = client
            .query(
                &format!("SELECT r::text FROM \"{schema}\".\"{table}\" r"),
                &[],
            )
            .await
            .unwrap();
        rows += dump.len();
        for r in &dump {
            text.push_str(&r.get::<_, String>(0));
            text.push('\n');
        }
    }
    (rows, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_token_appears_in_no_destination() {
    let env = Env::bare(sandbox_config()).await;
    let url = env.sandbox.base_url();
    let added = env
        .run_env(
            &[
                "credentials",
                "add",
                "--name",
                "c1",
                "--base-url",
                &url,
                "--api-key-env",
                "KEY",
            ],
            "KEY",
            CANARY,
        )
        .await;
    scan("add", &added);
    added.expect(0, "add");
    let schema = format!("secrets_{}", std::process::id());
    let (client, conn) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
        .await
        .expect("the PostgreSQL server at 127.0.0.1:5432 (database test)");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .unwrap();
    let out_dir = env.path("sinks");
    let sinks = [
        (
            "jsonl",
            format!("jsonl:{}", out_dir.join("jsonl").display()),
        ),
        ("csv", format!("csv:{}", out_dir.join("csv").display())),
        (
            "parquet",
            format!("parquet:{}", out_dir.join("parquet").display()),
        ),
        ("postgres", format!("{}?schema={schema}", pg_url())),
    ];
    for (label, destination) in &sinks {
        let out = env
            .run(&[
                "-vv",
                "sync",
                "--credential",
                "c1",
                "--destination",
                destination,
                "--streams",
                "all",
                "--mode",
                "full",
            ])
            .await;
        scan(&format!("sync into {label}"), &out);
        out.expect(0, &format!("sync into {label}"));
    }
    for kind in ["jsonl", "csv", "parquet"] {
        let files = scan_dir(kind, &out_dir.join(kind));
        assert!(files >= 5, "{kind}: the sync wrote its files ({files})");
    }
    let (values, text) = parquet_text(&out_dir.join("parquet"));
    assert!(values > 50, "parquet text values decoded: {values}");
    assert_clean("parquet decoded text", text.as_bytes());
    let (rows, text) = pg_dump(&client, &schema).await;
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .unwrap();
    assert!(rows > 50, "postgres rows dumped: {rows}");
    assert_clean("postgres tables", text.as_bytes());
}
