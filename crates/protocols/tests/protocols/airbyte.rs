//! `airbyte spec|discover|read`: snapshots, message order, resume after a cut.

use crate::util::{assert_no_secret, capture, small_pages, CutAfter, Sandbox};
use protocols::airbyte;
use protocols::Wire;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use sync_core::Cancel;

fn snapshot(name: &str, actual: &Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/protocols")
        .join(name);
    if std::env::var_os("DRIFTBRIDGE_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(actual).unwrap() + "\n").unwrap();
    }
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        actual, &expected,
        "{name} changed: if on purpose, run with DRIFTBRIDGE_UPDATE_SNAPSHOTS=1 and review the diff"
    );
}

#[test]
fn spec_matches_the_committed_snapshot() {
    let spec = airbyte::spec();
    snapshot("spec.json", &spec);
    let props = &spec["spec"]["connectionSpecification"]["properties"];
    assert_eq!(props["access_token"]["airbyte_secret"], true);
    assert_eq!(props["base_url"]["default"], "https://driftapi.com");
    assert_eq!(props["rate_limit_per_min"]["default"], 600);
    assert_eq!(props["start_date"]["format"], "date-time");
    assert_eq!(
        props["oauth"]["properties"]["client_secret"]["airbyte_secret"],
        true
    );
    assert!(props.get("credentials").is_none(), "the config stays flat");
    assert_eq!(spec["spec"]["protocol_version"], "0.2.0");
}

/// The discover entry without its schema: what a platform configures a stream from.
fn entry_keys(stream: &Value) -> Value {
    let mut e = stream.clone();
    e.as_object_mut().unwrap().remove("json_schema");
    e
}

#[test]
fn discover_lists_every_catalog_stream_with_keys_cursor_and_modes() {
    let catalog = airbyte::discover();
    assert_eq!(catalog["type"], "CATALOG");
    let streams = catalog["catalog"]["streams"].as_array().unwrap();
    let names: Vec<&str> = streams
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    // Each stream, then its child tables (every table `driftbridge catalog` lists with a
    // parent).
    let mut want: Vec<String> = Vec::new();
    for s in source_drift::catalog().streams {
        want.push(s.name.clone());
        want.extend(s.children.iter().map(|c| c.name.clone()));
    }
    assert_eq!(names, want);
    for child in [
        "conversation_tags",
        "conversation_participants",
        "message_buttons",
    ] {
        assert!(names.contains(&child), "{child} in {names:?}");
    }
    // The streams of the snapshot keep their entries.
    let by_name: BTreeMap<&str, Value> = streams
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), entry_keys(s)))
        .collect();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/protocols/discover.json");
    if std::env::var_os("DRIFTBRIDGE_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&by_name).unwrap() + "\n",
        )
        .unwrap();
    }
    let expected: BTreeMap<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (name, entry) in &expected {
        assert_eq!(by_name.get(name.as_str()), Some(entry), "stream {name}");
    }
    let conversations = &by_name["conversations"];
    assert_eq!(conversations["default_cursor_field"], json!(["updatedAt"]));
    assert_eq!(conversations["source_defined_primary_key"], json!([["id"]]));
    let tags = &by_name["conversation_tags"];
    assert_eq!(
        tags["source_defined_primary_key"],
        json!([["conversation_id"], ["_index"]])
    );
    assert_eq!(
        tags["supported_sync_modes"],
        conversations["supported_sync_modes"]
    );
    assert!(
        tags.get("default_cursor_field").is_none(),
        "no cursor: {tags}"
    );
    let tag_schema = &streams
        .iter()
        .find(|s| s["name"] == "conversation_tags")
        .unwrap()["json_schema"];
    for column in ["conversation_id", "_index", "tag", "color"] {
        assert!(
            tag_schema["properties"].get(column).is_some(),
            "{column}: {tag_schema}"
        );
    }
    let parents = source_drift::catalog().names();
    for s in streams
        .iter()
        .filter(|s| parents.iter().any(|p| s["name"] == p.as_str()))
    {
        assert_eq!(
            s["json_schema"]["properties"]["_deleted"]["type"],
            json!(["null", "boolean"])
        );
    }
}

fn configured(names: &[&str], mode: &str) -> Value {
    let catalog = airbyte::discover();
    let streams: Vec<Value> = catalog["catalog"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| names.contains(&s["name"].as_str().unwrap()))
        .map(|s| json!({"stream": s, "sync_mode": mode, "destination_sync_mode": "append_dedup"}))
        .collect();
    json!({ "streams": streams })
}

/// Records per stream by primary key text.
fn keys(messages: &[Value]) -> BTreeMap<String, BTreeSet<String>> {
    let catalog = source_drift::catalog();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in messages.iter().filter(|m| m["type"] == "RECORD") {
        let stream = m["record"]["stream"].as_str().unwrap();
        let pk = &catalog.get(stream).unwrap().primary_key;
        let data = m["record"]["data"].as_object().unwrap();
        out.entry(stream.into())
            .or_default()
            .insert(sync_core::key_text(data, pk).unwrap());
    }
    out
}

/// The length of array field `field` of each RECORD of `stream`, summed.
fn array_total(messages: &[Value], stream: &str, field: &str) -> usize {
    messages
        .iter()
        .filter(|m| m["type"] == "RECORD" && m["record"]["stream"] == stream)
        .map(|m| m["record"]["data"][field].as_array().map_or(0, Vec::len))
        .sum()
}

fn count(messages: &[Value], stream: &str) -> usize {
    messages
        .iter()
        .filter(|m| m["type"] == "RECORD" && m["record"]["stream"] == stream)
        .count()
}

/// The state a platform keeps: the last STATE message of each stream.
fn last_states(messages: &[Value]) -> Value {
    let mut last = BTreeMap::new();
    for m in messages.iter().filter(|m| m["type"] == "STATE") {
        let name = m["state"]["stream"]["stream_descriptor"]["name"]
            .as_str()
            .unwrap();
        last.insert(name.to_string(), m["state"].clone());
    }
    Value::Array(last.into_values().collect())
}

fn position(messages: &[Value], pred: impl Fn(&Value) -> bool) -> Vec<usize> {
    messages
        .iter()
        .enumerate()
        .filter(|(_, m)| pred(m))
        .map(|(i, _)| i)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_sends_statuses_records_then_the_state_covering_them() {
    let sb = Sandbox::start().await;
    let counts = sb.counts().await;
    let (out, wire) = capture();
    let all: Vec<String> = source_drift::catalog().names();
    let names: Vec<&str> = all.iter().map(String::as_str).collect();
    let outcome = airbyte::read_with(
        &sb.config(),
        small_pages(),
        &configured(&names, "incremental"),
        None,
        &wire,
        Cancel::new(),
    )
    .await;
    assert!(outcome.succeeded, "{:?}", out.messages());
    let msgs = out.messages();
    assert_no_secret(&serde_json::to_string(&msgs).unwrap());
    assert_eq!(
        count(&msgs, "conversations") as u64,
        counts["conversations"].as_u64().unwrap()
    );
    assert_eq!(
        count(&msgs, "messages") as u64,
        counts["messages"].as_u64().unwrap()
    );
    for stream in ["conversations", "messages", "contacts", "users"] {
        let status = |s: &'static str| {
            move |m: &Value| {
                m["type"] == "TRACE"
                    && m["trace"]["stream_status"]["stream_descriptor"]["name"] == stream
                    && m["trace"]["stream_status"]["status"] == s
            }
        };
        let started = position(&msgs, status("STARTED"));
        let running = position(&msgs, status("RUNNING"));
        let complete = position(&msgs, status("COMPLETE"));
        let records = position(&msgs, |m| {
            m["type"] == "RECORD" && m["record"]["stream"] == stream
        });
        let states = position(&msgs, |m| {
            m["type"] == "STATE" && m["state"]["stream"]["stream_descriptor"]["name"] == stream
        });
        assert_eq!(
            (started.len(), running.len(), complete.len()),
            (1, 1, 1),
            "{stream}"
        );
        assert!(
            started[0] < running[0] && running[0] < records[0],
            "{stream}"
        );
        let last_state = *states.last().expect("a STATE per stream");
        assert!(
            *records.last().unwrap() < last_state,
            "{stream}: records after its last STATE"
        );
        assert!(
            last_state < complete[0],
            "{stream}: COMPLETE before its last STATE"
        );
    }
    // Incremental again from the state kept: nothing changed, nothing sent.
    let (again, wire) = capture();
    let state = last_states(&msgs);
    let outcome = airbyte::read_with(
        &sb.config(),
        small_pages(),
        &configured(&names, "incremental"),
        Some(&state),
        &wire,
        Cancel::new(),
    )
    .await;
    assert!(outcome.succeeded);
    assert_eq!(count(&again.messages(), "conversations"), 0);
    assert_eq!(count(&again.messages(), "messages"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_cut_mid_stream_resumes_from_its_last_state_without_loss() {
    let sb = Sandbox::start().await;
    let counts = sb.counts().await;
    let catalog = configured(&["conversations", "messages", "contacts"], "incremental");
    let cut = CutAfter::new(700);
    let first = airbyte::read_with(
        &sb.config(),
        small_pages(),
        &catalog,
        None,
        &Wire::new(cut.clone()),
        Cancel::new(),
    )
    .await;
    assert!(!first.succeeded, "a read that cannot write fails");
    let before = cut.buffer.messages();
    assert_eq!(before.len(), 700);
    assert!(
        count(&before, "conversations") < 150,
        "the cut is mid-stream"
    );
    let state = last_states(&before);
    assert!(
        !state.as_array().unwrap().is_empty(),
        "a STATE before the cut"
    );
    let (after, wire) = capture();
    let second = airbyte::read_with(
        &sb.config(),
        small_pages(),
        &catalog,
        Some(&state),
        &wire,
        Cancel::new(),
    )
    .await;
    assert!(second.succeeded);
    let after = after.messages();
    assert!(
        count(&after, "conversations") < 150,
        "the second read resumed instead of starting over"
    );
    let mut all = keys(&before);
    for (stream, ks) in keys(&after) {
        all.entry(stream).or_default().extend(ks);
    }
    assert_eq!(
        all["conversations"].len() as u64,
        counts["conversations"].as_u64().unwrap()
    );
    assert_eq!(
        all["messages"].len() as u64,
        counts["messages"].as_u64().unwrap()
    );
    assert_eq!(
        all["contacts"].len() as u64,
        counts["contacts_in_conversations"].as_u64().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_key_is_a_config_error_and_the_token_never_shows() {
    let sb = Sandbox::start().await;
    let mut config = sb.config();
    config.access_token = "tok_wrong_0123456789abcdef".to_string().into();
    let (out, wire) = capture();
    let outcome = airbyte::read(
        &config,
        &configured(&["users"], "full_refresh"),
        None,
        &wire,
        Cancel::new(),
    )
    .await;
    assert!(!outcome.succeeded);
    let msgs = out.messages();
    let text = serde_json::to_string(&msgs).unwrap();
    assert!(!text.contains("tok_wrong_0123456789abcdef"), "{text}");
    let errors: Vec<&Value> = msgs
        .iter()
        .filter(|m| m["type"] == "TRACE" && m["trace"]["type"] == "ERROR")
        .collect();
    assert!(!errors.is_empty(), "{text}");
    assert_eq!(
        errors[0]["trace"]["error"]["failure_type"], "config_error",
        "{text}"
    );
    assert!(
        msgs.iter()
            .any(|m| m["trace"]["stream_status"]["status"] == "INCOMPLETE"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_streams_follow_their_parent_record_and_precede_its_state() {
    let sb = Sandbox::start().await;
    let (out, wire) = capture();
    let catalog = configured(&["conversations", "conversation_tags"], "incremental");
    let outcome = airbyte::read_with(
        &sb.config(),
        small_pages(),
        &catalog,
        None,
        &wire,
        Cancel::new(),
    )
    .await;
    assert!(outcome.succeeded, "{:?}", out.messages());
    let msgs = out.messages();
    let tags = count(&msgs, "conversation_tags");
    assert!(tags > 0, "the sandbox's conversations have tags");
    assert_eq!(
        tags,
        array_total(&msgs, "conversations", "conversationTags"),
        "one RECORD per element of the conversations' tag arrays"
    );
    assert_eq!(count(&msgs, "conversation_participants"), 0, "not selected");
    // Each tag row right after its conversation (the full set, indexes 0..n), before the
    // STATE that covers it.
    let mut parent: Option<&Value> = None;
    let mut next_index = 0;
    for m in msgs.iter().filter(|m| m["type"] == "RECORD") {
        let data = &m["record"]["data"];
        if m["record"]["stream"] == "conversations" {
            if let Some(p) = parent {
                let n = p["conversationTags"].as_array().map_or(0, Vec::len);
                assert_eq!(next_index, n, "every tag of conversation {}", p["id"]);
            }
            parent = Some(data);
            next_index = 0;
        } else {
            let p = parent.expect("a tag row after a conversation");
            assert_eq!(data["conversation_id"], p["id"], "{data}");
            assert_eq!(data["_index"], json!(next_index), "{data}");
            assert!(
                data["tag"].is_string(),
                "the column names of the child table: {data}"
            );
            next_index += 1;
        }
    }
    let records = position(&msgs, |m| {
        m["type"] == "RECORD" && m["record"]["stream"] == "conversation_tags"
    });
    let states = position(&msgs, |m| {
        m["type"] == "STATE"
            && m["state"]["stream"]["stream_descriptor"]["name"] == "conversation_tags"
    });
    assert!(
        records.last() < states.last(),
        "a STATE of conversation_tags covers its records"
    );

    // Selected alone, the child still reads its parent, and only the child is sent.
    let (alone, wire) = capture();
    let catalog = configured(&["conversation_tags"], "incremental");
    let outcome = airbyte::read_with(
        &sb.config(),
        small_pages(),
        &catalog,
        None,
        &wire,
        Cancel::new(),
    )
    .await;
    assert!(outcome.succeeded, "{:?}", alone.messages());
    let only = alone.messages();
    assert_eq!(count(&only, "conversation_tags"), tags);
    let named = |m: &Value, name: &str| {
        m["record"]["stream"] == name
            || m["state"]["stream"]["stream_descriptor"]["name"] == name
            || m["trace"]["stream_status"]["stream_descriptor"]["name"] == name
    };
    for other in ["conversations", "messages", "contacts"] {
        assert!(
            !only.iter().any(|m| named(m, other)),
            "nothing of {other} is sent"
        );
    }
    assert!(only.iter().any(|m| m["type"] == "TRACE"
        && m["trace"]["stream_status"]["stream_descriptor"]["name"] == "conversation_tags"
        && m["trace"]["stream_status"]["status"] == "COMPLETE"));
    // Its state resumes the parent: a second read sends nothing new.
    let (again, wire) = capture();
    let outcome = airbyte::read_with(
        &sb.config(),
        small_pages(),
        &catalog,
        Some(&last_states(&only)),
        &wire,
        Cancel::new(),
    )
    .await;
    assert!(outcome.succeeded);
    assert_eq!(count(&again.messages(), "conversation_tags"), 0);
}
