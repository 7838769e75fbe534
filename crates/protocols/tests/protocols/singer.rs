//! `singer`: discovery metadata, selection, SCHEMA/RECORD/STATE, state round trip, resume.

use crate::util::{assert_no_secret, capture, small_pages, CutAfter, Sandbox};
use protocols::{singer, Wire};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use sync_core::Cancel;

fn top_metadata(stream: &Value) -> &Value {
    &stream["metadata"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["breadcrumb"] == json!([]))
        .unwrap()["metadata"]
}

/// The discovered catalog with only `names` selected.
fn selecting(names: &[&str]) -> Value {
    let mut catalog = singer::discover();
    for s in catalog["streams"].as_array_mut().unwrap() {
        let selected = names.contains(&s["tap_stream_id"].as_str().unwrap());
        for m in s["metadata"].as_array_mut().unwrap() {
            if m["breadcrumb"] == json!([]) {
                m["metadata"]["selected"] = json!(selected);
            }
        }
    }
    catalog
}

#[test]
fn discover_has_the_singer_metadata_of_every_stream() {
    let catalog = singer::discover();
    let streams = catalog["streams"].as_array().unwrap();
    assert_eq!(
        streams.len(),
        source_drift::catalog().streams.len() + protocols::children::all().len()
    );
    let tags = streams
        .iter()
        .find(|s| s["tap_stream_id"] == "conversation_tags")
        .unwrap();
    assert_eq!(tags["key_properties"], json!(["conversation_id", "_index"]));
    assert_eq!(top_metadata(tags)["parent-tap-stream-id"], "conversations");
    assert_eq!(top_metadata(tags)["valid-replication-keys"], json!([]));
    let conv = streams
        .iter()
        .find(|s| s["tap_stream_id"] == "conversations")
        .unwrap();
    assert_eq!(conv["key_properties"], json!(["id"]));
    let top = top_metadata(conv);
    assert_eq!(top["table-key-properties"], json!(["id"]));
    assert_eq!(top["valid-replication-keys"], json!(["updatedAt"]));
    assert_eq!(top["replication-method"], "INCREMENTAL");
    let id = conv["metadata"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["breadcrumb"] == json!(["properties", "id"]))
        .unwrap();
    assert_eq!(id["metadata"]["inclusion"], "automatic");
    let users = streams
        .iter()
        .find(|s| s["tap_stream_id"] == "users")
        .unwrap();
    assert_eq!(
        top_metadata(users)["forced-replication-method"],
        "FULL_TABLE"
    );
    assert_eq!(
        conv["schema"]["properties"]["_sdc_deleted_at"]["format"],
        "date-time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selected_streams_only_then_state_round_trips() {
    let sb = Sandbox::start().await;
    let counts = sb.counts().await;
    let catalog = selecting(&["conversations"]);
    let (out, wire) = capture();
    let outcome = singer::sync(&sb.config(), Some(&catalog), None, &wire, Cancel::new())
        .await
        .unwrap();
    assert!(outcome.succeeded, "{:?}", outcome.error);
    let msgs = out.messages();
    assert_no_secret(&serde_json::to_string(&msgs).unwrap());
    assert_eq!(msgs[0]["type"], "SCHEMA");
    assert_eq!(msgs[0]["stream"], "conversations");
    let records: Vec<&Value> = msgs.iter().filter(|m| m["type"] == "RECORD").collect();
    assert_eq!(
        records.len() as u64,
        counts["conversations"].as_u64().unwrap()
    );
    assert!(records.iter().all(|r| r["stream"] == "conversations"));
    assert!(records[0]["time_extracted"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let last = msgs.last().unwrap();
    assert_eq!(
        last["type"], "STATE",
        "the run ends with the state covering it"
    );
    let mark = &last["value"]["bookmarks"]["conversations"];
    assert_eq!(mark["replication_key"], "updatedAt");
    assert!(mark["replication_key_value"].is_string());
    // The state back in: nothing new, and the same bookmarks come out again.
    let state = last["value"].clone();
    let (again, wire) = capture();
    singer::sync(
        &sb.config(),
        Some(&catalog),
        Some(&state),
        &wire,
        Cancel::new(),
    )
    .await
    .unwrap();
    let again = again.messages();
    assert_eq!(again.iter().filter(|m| m["type"] == "RECORD").count(), 0);
    assert_eq!(again.last().unwrap()["value"], state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_cut_mid_stream_resumes_from_its_last_state_without_loss() {
    let sb = Sandbox::start().await;
    let counts = sb.counts().await;
    let catalog = selecting(&["conversations", "messages"]);
    let cut = CutAfter::new(600);
    let config = sb.config();
    let first = singer::sync_with(
        &config,
        small_pages(),
        Some(&catalog),
        None,
        &Wire::new(cut.clone()),
        Cancel::new(),
    )
    .await
    .unwrap();
    assert!(!first.succeeded);
    let before = cut.buffer.messages();
    let state = before
        .iter()
        .rfind(|m| m["type"] == "STATE")
        .expect("a STATE before the cut")["value"]
        .clone();
    let (after, wire) = capture();
    let second = singer::sync_with(
        &config,
        small_pages(),
        Some(&catalog),
        Some(&state),
        &wire,
        Cancel::new(),
    )
    .await
    .unwrap();
    assert!(second.succeeded, "{:?}", second.error);
    let ids = |stream: &str| -> BTreeSet<i64> {
        before
            .iter()
            .chain(after.messages().iter())
            .filter(|m| m["type"] == "RECORD" && m["stream"] == stream)
            .map(|m| m["record"]["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(
        ids("conversations").len() as u64,
        counts["conversations"].as_u64().unwrap()
    );
    assert_eq!(
        ids("messages").len() as u64,
        counts["messages"].as_u64().unwrap()
    );
    let resumed = after
        .messages()
        .iter()
        .filter(|m| m["type"] == "RECORD" && m["stream"] == "conversations")
        .count();
    assert!(
        resumed < 150,
        "the second sync resumed instead of starting over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_date_bounds_the_first_sync() {
    let sb = Sandbox::start().await;
    let mut config = sb.config();
    let start = chrono::Utc::now().timestamp_millis() + 86_400_000;
    config.start_date_ms = Some(start);
    let (out, wire) = capture();
    let catalog = selecting(&["conversations", "accounts"]);
    singer::sync(&config, Some(&catalog), None, &wire, Cancel::new())
        .await
        .unwrap();
    let msgs = out.messages();
    let records: Vec<&Value> = msgs.iter().filter(|m| m["type"] == "RECORD").collect();
    assert!(
        records.iter().all(|r| r["stream"] == "accounts"),
        "no conversation is newer than a start_date tomorrow"
    );
    // Accounts are read whole: only those updated after start_date, and deletions, are sent.
    for r in records {
        let rec = &r["record"];
        assert!(
            rec["_sdc_deleted_at"].is_string() || rec["updateDateTime"].as_i64().unwrap() >= start,
            "{rec}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_stream_alone_sends_its_schema_and_rows_not_its_parent() {
    let sb = Sandbox::start().await;
    let (out, wire) = capture();
    let catalog = selecting(&["conversations", "conversation_participants"]);
    let done = singer::sync_with(
        &sb.config(),
        small_pages(),
        Some(&catalog),
        None,
        &wire,
        Cancel::new(),
    )
    .await
    .unwrap();
    assert!(done.succeeded, "{done:?}");
    let msgs = out.messages();
    let records = |stream: &str| -> Vec<&Value> {
        msgs.iter()
            .filter(|m| m["type"] == "RECORD" && m["stream"] == stream)
            .map(|m| &m["record"])
            .collect()
    };
    let participants: usize = records("conversations")
        .iter()
        .map(|c| c["participants"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(participants > 0);
    assert_eq!(records("conversation_participants").len(), participants);

    let (alone, wire) = capture();
    let catalog = selecting(&["conversation_participants"]);
    let done = singer::sync_with(
        &sb.config(),
        small_pages(),
        Some(&catalog),
        None,
        &wire,
        Cancel::new(),
    )
    .await
    .unwrap();
    assert!(done.succeeded, "{done:?}");
    let only = alone.messages();
    let schemas: Vec<&Value> = only
        .iter()
        .filter(|m| m["type"] == "SCHEMA")
        .map(|m| &m["stream"])
        .collect();
    assert_eq!(schemas, [&json!("conversation_participants")]);
    let rows = only.iter().filter(|m| m["type"] == "RECORD").count();
    assert_eq!(rows, participants, "every RECORD is a participant row");
    assert!(only
        .iter()
        .filter(|m| m["type"] == "RECORD")
        .all(|m| m["stream"] == "conversation_participants"));
}
