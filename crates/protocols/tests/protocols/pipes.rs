//! Dagster Pipes messages written by a session (the end-to-end run is a CLI test).

use protocols::pipes::{encode_param, PipesSession, StreamReport};
use serde_json::{json, Value};

fn report(stream: &str, written: u64) -> StreamReport {
    StreamReport {
        stream: stream.into(),
        status: "succeeded".into(),
        records_read: written,
        records_written: written,
        records_deleted: 1,
        records_rejected: 0,
        watermark_ms: Some(1_700_131_220_877),
    }
}

fn session(asset_keys: Value, file: &std::path::Path) -> PipesSession {
    let context = encode_param(&json!({"data": {"asset_keys": asset_keys, "run_id": "r1",
        "extras": {}, "job_name": null, "retry_number": 0}}));
    let messages = encode_param(&json!({"path": file.display().to_string()}));
    PipesSession::from_params(&context, &messages).unwrap()
}

fn lines(file: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn streams_named_as_assets_are_materialized_each_with_their_figures() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("messages");
    let s = session(json!(["conversations", "users"]), &file);
    s.opened();
    let reported = s.report(&[
        report("conversations", 150),
        report("users", 12),
        report("teams", 3),
    ]);
    s.closed(None);
    assert_eq!(reported, ["conversations", "users"]);
    let msgs = lines(&file);
    assert!(msgs.iter().all(|m| m["__dagster_pipes_version"] == "0.1"));
    let methods: Vec<&str> = msgs.iter().map(|m| m["method"].as_str().unwrap()).collect();
    assert_eq!(
        methods,
        [
            "opened",
            "report_asset_materialization",
            "report_asset_materialization",
            "closed"
        ]
    );
    let conv = &msgs[1]["params"];
    assert_eq!(conv["asset_key"], "conversations");
    assert_eq!(
        conv["metadata"]["records_written"],
        json!({"raw_value": 150, "type": "int"})
    );
    assert_eq!(conv["metadata"]["records_deleted"]["raw_value"], 1);
    assert_eq!(
        conv["metadata"]["watermark"]["raw_value"],
        "2023-11-16T10:40:20.877Z"
    );
    assert_eq!(msgs[3]["params"], json!({}));
}

#[test]
fn one_asset_gets_every_stream_and_the_totals() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("messages");
    let s = session(json!(["drift"]), &file);
    assert_eq!(
        s.report(&[report("conversations", 150), report("users", 12)]),
        ["drift"]
    );
    s.closed(Some("run r1 failed: boom"));
    let msgs = lines(&file);
    let m = &msgs[0]["params"]["metadata"];
    assert_eq!(m["conversations.records_written"]["raw_value"], 150);
    assert_eq!(m["records_written"]["raw_value"], 162);
    assert_eq!(
        msgs[1]["params"]["exception"]["message"],
        "run r1 failed: boom"
    );
}

#[test]
fn undecodable_parameters_name_the_variable() {
    let err = PipesSession::from_params("not base64!", "x").unwrap_err();
    assert!(err.to_string().contains("DAGSTER_PIPES_CONTEXT"), "{err}");
}
