//! `airbyte …`, `singer` and `sync` under Dagster Pipes, through the real binary.

use crate::util::{Cli, Sandbox, LIMITED, TOKEN};
use serde_json::{json, Value};

fn config(cli: &Cli, sb: &Sandbox, token: &str, extra: Value) -> String {
    let mut c = json!({"access_token": token, "base_url": sb.url(), "rate_limit_per_min": 100000});
    c.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    cli.write("config.json", &c.to_string())
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON on stdout ({e}): {l}"))
        })
        .collect()
}

#[test]
fn airbyte_read_writes_nothing_but_protocol_messages_on_stdout() {
    let sb = Sandbox::start();
    let cli = Cli::new();
    let cfg = config(&cli, &sb, TOKEN, json!({}));
    let disc = cli.run(&["airbyte", "discover", "--config", &cfg]);
    assert_eq!(disc.code, 0, "{}", disc.stderr);
    let catalog = &lines(&disc.stdout)[0]["catalog"];
    let streams: Vec<Value> = catalog["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "conversations" || s["name"] == "users")
        .map(|s| json!({"stream": s, "sync_mode": "incremental", "destination_sync_mode": "append_dedup"}))
        .collect();
    let cat = cli.write("catalog.json", &json!({ "streams": streams }).to_string());
    let read = cli.run(&["airbyte", "read", "--config", &cfg, "--catalog", &cat]);
    assert_eq!(read.code, 0, "{}", read.stderr);
    let msgs = lines(&read.stdout);
    let kinds = ["RECORD", "STATE", "LOG", "TRACE"];
    assert!(msgs
        .iter()
        .all(|m| kinds.contains(&m["type"].as_str().unwrap())));
    let convs = msgs
        .iter()
        .filter(|m| m["type"] == "RECORD" && m["record"]["stream"] == "conversations")
        .count();
    let counts = sb.admin("counts");
    assert_eq!(convs as u64, counts["conversations"].as_u64().unwrap());
    assert!(msgs
        .iter()
        .any(|m| m["type"] == "STATE"
            && m["state"]["stream"]["stream_descriptor"]["name"] == "users"));
    // The state back in: an incremental read sends no conversation again.
    let state: Vec<Value> = msgs
        .iter()
        .filter(|m| m["type"] == "STATE")
        .map(|m| m["state"].clone())
        .collect();
    let state = cli.write("state.json", &Value::Array(state).to_string());
    let again = cli.run(&[
        "airbyte",
        "read",
        "--config",
        &cfg,
        "--catalog",
        &cat,
        "--state",
        &state,
    ]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(lines(&again.stdout).iter().all(|m| m["type"] != "RECORD"));
}

#[test]
fn airbyte_check_reports_missing_scopes_as_the_cli_does() {
    let sb = Sandbox::start();
    let cli = Cli::new();
    let ok = cli.run(&[
        "airbyte",
        "check",
        "--config",
        &config(&cli, &sb, TOKEN, json!({})),
    ]);
    assert_eq!(ok.code, 0);
    assert_eq!(
        lines(&ok.stdout)[0]["connectionStatus"]["status"],
        "SUCCEEDED"
    );
    let cfg = config(
        &cli,
        &sb,
        LIMITED,
        json!({"streams": ["conversations", "accounts"]}),
    );
    let limited = cli.run(&["airbyte", "check", "--config", &cfg]);
    let status = &lines(&limited.stdout)[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("missing scopes")
            && status["message"].as_str().unwrap().contains("account_read"),
        "{status}"
    );
    let bad = cli.write("bad.json", r#"{"base_url": "http://127.0.0.1:1"}"#);
    let read = cli.run(&["airbyte", "read", "--config", &bad, "--catalog", &bad]);
    assert_ne!(read.code, 0);
    let trace = &lines(&read.stdout)[0]["trace"]["error"];
    assert_eq!(trace["failure_type"], "config_error");
    assert!(
        trace["message"].as_str().unwrap().contains("access_token"),
        "{trace}"
    );
}

#[test]
fn singer_without_a_catalog_syncs_every_stream() {
    let sb = Sandbox::start();
    let cli = Cli::new();
    let cfg = config(
        &cli,
        &sb,
        TOKEN,
        json!({"start_date": "2000-01-01T00:00:00Z"}),
    );
    let run = cli.run(&["singer", "--config", &cfg]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let msgs = lines(&run.stdout);
    let schemas = msgs.iter().filter(|m| m["type"] == "SCHEMA").count();
    assert_eq!(
        schemas,
        source_drift::catalog().streams.len() + protocols::children::all().len(),
        "every stream and every child table"
    );
    let tags: usize = msgs
        .iter()
        .filter(|m| m["type"] == "RECORD" && m["stream"] == "conversations")
        .map(|m| {
            m["record"]["conversationTags"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .sum();
    let tag_rows = msgs
        .iter()
        .filter(|m| m["type"] == "RECORD" && m["stream"] == "conversation_tags")
        .count();
    assert_eq!(tag_rows, tags);
    assert_eq!(msgs.last().unwrap()["type"], "STATE");
}

#[test]
fn sync_started_by_dagster_pipes_reports_one_materialization_per_stream() {
    let sb = Sandbox::start();
    let cli = Cli::with_sb(&sb);
    let file = cli.path("pipes-messages.jsonl");
    let context = protocols::pipes::encode_param(&json!({"data": {
        "asset_keys": ["conversations", "users"], "run_id": "dagster-run-1", "job_name": "j",
        "retry_number": 0, "extras": {}, "partition_key": null, "partition_key_range": null,
        "partition_time_window": null, "code_version_by_asset_key": null,
        "provenance_by_asset_key": null}}));
    let messages = protocols::pipes::encode_param(&json!({"path": file.display().to_string()}));
    let run = cli.run_with(
        &[
            "sync",
            "--credential",
            "sb",
            "--streams",
            "conversations,users",
            "--destination",
            "sqlite:out.db",
        ],
        &[
            ("DAGSTER_PIPES_CONTEXT", &context),
            ("DAGSTER_PIPES_MESSAGES", &messages),
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let msgs: Vec<Value> = lines(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(msgs.first().unwrap()["method"], "opened");
    assert_eq!(msgs.last().unwrap()["method"], "closed");
    assert_eq!(msgs.last().unwrap()["params"]["exception"], Value::Null);
    assert!(msgs.iter().any(|m| m["method"] == "log"));
    let counts = sb.admin("counts");
    let materialized = |key: &str| {
        msgs.iter()
            .find(|m| {
                m["method"] == "report_asset_materialization" && m["params"]["asset_key"] == key
            })
            .unwrap_or_else(|| panic!("no materialization of {key}"))["params"]["metadata"]
            .clone()
    };
    let conv = materialized("conversations");
    assert_eq!(
        conv["records_written"]["raw_value"],
        counts["conversations"]
    );
    assert_eq!(conv["records_rejected"]["raw_value"], 0);
    assert_eq!(conv["watermark"]["type"], "text");
    assert_eq!(
        materialized("users")["records_written"]["raw_value"],
        counts["users"]
    );
    assert!(msgs.iter().all(|m| m["__dagster_pipes_version"] == "0.1"));
}
