//! Singer tap mode (`driftbridge singer --config F [--state F] [--catalog F | --properties F]
//! [--discover]`), per the Singer spec and its best practices.
//!
//! - `--discover` prints the catalog: `{"streams": [{tap_stream_id, stream, schema,
//!   key_properties, metadata}]}`, with the stream-level metadata (breadcrumb `[]`)
//!   `table-key-properties`, `valid-replication-keys`, `replication-method` (`INCREMENTAL`,
//!   or `FULL_TABLE` for the streams Drift serves whole, also as
//!   `forced-replication-method`), `inclusion` and `selected-by-default`, and one entry per
//!   property (`inclusion`: `automatic` for keys and cursors, else `available`).
//! - Sync mode writes SCHEMA for every selected stream, then RECORDs (with
//!   `time_extracted`) as the engine commits them, each batch followed by a STATE message
//!   `{"type": "STATE", "value": {"bookmarks": {stream: {...}}}}` covering them. A stream's
//!   bookmark holds `driftbridge_state` (the source's state keys of the stream, verbatim) and,
//!   where the stream has a cursor, `replication_key` and `replication_key_value` (the
//!   watermark, RFC 3339). Bookmarks of streams not selected in this run are kept.
//! - **Selection**: with a catalog, the streams whose breadcrumb-`[]` metadata says
//!   `"selected": true` (or, from older catalogs, whose schema says `"selected": true`);
//!   with no catalog, every stream (as many taps do in their default mode).
//! - Tombstones are RECORDs with the key and `_sdc_deleted_at` (RFC 3339), the Singer
//!   convention; quarantined records are logged on stderr (Singer has no log message).

use crate::config::{ConfigError, ProtocolConfig};
use crate::sink::{entries_of, watermark_of, Dialect, ProtocolSink};
use crate::wire::Wire;
use serde_json::{json, Map, Value};
use source_drift::DriftSource;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use sync_core::{
    run_sync, Cancel, ConfiguredStream, Quarantined, Record, RunOptions, RunStatus, Stream,
    StreamState, SyncMode, WriteMode,
};

/// A stream's schema for Singer: the catalog's, with `_sdc_deleted_at`.
fn singer_schema(stream: &Stream) -> Value {
    let mut schema = stream.json_schema.clone();
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert(
            "_sdc_deleted_at".into(),
            json!({"type": ["null", "string"], "format": "date-time"}),
        );
    }
    schema
}

fn method(stream: &Stream) -> &'static str {
    match stream.write_mode {
        WriteMode::Replace => "FULL_TABLE",
        WriteMode::Upsert => "INCREMENTAL",
    }
}

/// The catalog `--discover` prints (see the module docs); each stream is followed by its
/// child tables ([`crate::children`]), whose metadata has `parent-tap-stream-id`, the
/// parent's replication method and no replication key.
pub fn discover() -> Value {
    let streams: Vec<Value> = source_drift::catalog()
        .streams
        .iter()
        .flat_map(|s| {
            let mut top = json!({
                "inclusion": "available",
                "selected-by-default": true,
                "table-key-properties": s.primary_key,
                "valid-replication-keys": s.cursor_field.iter().collect::<Vec<_>>(),
                "replication-method": method(s),
            });
            if s.write_mode == WriteMode::Replace {
                top["forced-replication-method"] = json!("FULL_TABLE");
            }
            if let Some(c) = &s.cursor_field {
                top["replication-key"] = json!(c);
            }
            let mut metadata = vec![json!({"breadcrumb": [], "metadata": top})];
            for p in s.properties() {
                let automatic =
                    s.primary_key.contains(&p.name) || s.cursor_field.as_deref() == Some(&p.name);
                metadata.push(json!({"breadcrumb": ["properties", p.name],
                    "metadata": {"inclusion": if automatic { "automatic" } else { "available" }}}));
            }
            let parent = json!({
                "tap_stream_id": s.name,
                "stream": s.name,
                "schema": singer_schema(s),
                "key_properties": s.primary_key,
                "metadata": metadata,
            });
            let children = crate::children::of(&s.name).map(move |c| child_entry(s, c));
            std::iter::once(parent).chain(children).collect::<Vec<_>>()
        })
        .collect();
    json!({ "streams": streams })
}

/// The catalog entry of child stream `c` of `parent`.
fn child_entry(parent: &Stream, c: &crate::children::ChildDef) -> Value {
    let mut top = json!({
        "inclusion": "available",
        "selected-by-default": true,
        "table-key-properties": c.stream.primary_key,
        "valid-replication-keys": [],
        "replication-method": method(parent),
        "parent-tap-stream-id": parent.name,
    });
    if parent.write_mode == WriteMode::Replace {
        top["forced-replication-method"] = json!("FULL_TABLE");
    }
    let mut metadata = vec![json!({"breadcrumb": [], "metadata": top})];
    for p in c.stream.properties() {
        let automatic = c.stream.primary_key.contains(&p.name);
        metadata.push(json!({"breadcrumb": ["properties", p.name],
            "metadata": {"inclusion": if automatic { "automatic" } else { "available" }}}));
    }
    json!({
        "tap_stream_id": c.stream.name,
        "stream": c.stream.name,
        "schema": crate::children::schema(c),
        "key_properties": c.stream.primary_key,
        "metadata": metadata,
    })
}

/// The streams a Singer catalog selects, each with its mode (`FULL_TABLE` -> full refresh,
/// `INCREMENTAL` or unset -> incremental); `None` (no catalog): every stream, incremental.
///
/// Errors: [`ConfigError`] (field `catalog`) for a catalog without `streams`, an unknown
/// stream or an unsupported replication method.
pub fn selection(catalog: Option<&Value>) -> Result<Vec<ConfiguredStream>, ConfigError> {
    Ok(selection_to_emit(catalog)?.0)
}

/// [`selection`] with what to emit: child streams (`conversation_tags`) are read with their
/// parent; a parent not selected itself is read but not emitted. Without a catalog, every
/// stream and every child stream.
///
/// Errors: as [`selection`].
pub fn selection_to_emit(
    catalog: Option<&Value>,
) -> Result<(Vec<ConfiguredStream>, crate::children::Emit), ConfigError> {
    let bad = |m: String| ConfigError {
        field: "catalog".into(),
        message: m,
    };
    let Some(catalog) = catalog else {
        let all: Vec<(String, SyncMode)> = source_drift::catalog()
            .streams
            .iter()
            .map(|s| s.name.clone())
            .chain(crate::children::all().iter().map(|c| c.stream.name.clone()))
            .map(|n| (n, SyncMode::Incremental))
            .collect();
        return crate::children::plan(&all).map_err(bad);
    };
    let items = catalog
        .get("streams")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("a Singer catalog needs a `streams` list".into()))?;
    let mut chosen = Vec::new();
    for item in items {
        let name = item
            .get("tap_stream_id")
            .or_else(|| item.get("stream"))
            .and_then(Value::as_str)
            .ok_or_else(|| bad("each catalog entry needs `tap_stream_id`".into()))?;
        let top = item
            .get("metadata")
            .and_then(Value::as_array)
            .and_then(|m| {
                m.iter().find(|e| {
                    e.get("breadcrumb")
                        .and_then(Value::as_array)
                        .is_some_and(|b| b.is_empty())
                })
            })
            .and_then(|e| e.get("metadata"))
            .cloned()
            .unwrap_or_default();
        let selected = top
            .get("selected")
            .and_then(Value::as_bool)
            .or_else(|| item.pointer("/schema/selected").and_then(Value::as_bool))
            .unwrap_or(false);
        if !selected {
            continue;
        }
        let mode = match top
            .get("replication-method")
            .or_else(|| top.get("forced-replication-method"))
            .and_then(Value::as_str)
        {
            Some("FULL_TABLE") => SyncMode::FullRefresh,
            Some("INCREMENTAL") | None => SyncMode::Incremental,
            Some(other) => {
                return Err(bad(format!(
                    "stream `{name}`: replication-method `{other}` is not supported (INCREMENTAL or FULL_TABLE)"
                )))
            }
        };
        chosen.push((name.to_string(), mode));
    }
    crate::children::plan(&chosen).map_err(bad)
}

/// The source state in a Singer state file: `{"bookmarks": {stream: {"driftbridge_state":
/// {...}}}}`, also wrapped as a STATE message or `{"value": ...}`. Unknown shapes read as no
/// state.
pub fn state_from(value: &Value) -> BTreeMap<String, Value> {
    let value = value.get("value").unwrap_or(value);
    let mut state = BTreeMap::new();
    if let Some(bookmarks) = value.get("bookmarks").and_then(Value::as_object) {
        for bookmark in bookmarks.values() {
            if let Some(entries) = bookmark.get("driftbridge_state").and_then(Value::as_object) {
                for (k, v) in entries {
                    state.insert(k.clone(), v.clone());
                }
            }
        }
    }
    state
}

/// The STATE message value of `state`: one bookmark per stream that has state.
pub fn bookmarks(state: &BTreeMap<String, Value>) -> Value {
    let catalog = source_drift::catalog();
    let streams: BTreeSet<&str> = state
        .keys()
        .flat_map(|k| crate::sink::streams_of(k))
        .collect();
    let mut marks = Map::new();
    for s in streams {
        let mut mark = json!({"driftbridge_state": Value::Object(entries_of(state, s))});
        if let Some(cursor) = catalog.get(s).and_then(|d| d.cursor_field.clone()) {
            mark["replication_key"] = json!(cursor);
            if let Some(w) = watermark_of(state, s) {
                mark["replication_key_value"] = json!(sync_core::epoch_ms_to_rfc3339(w));
            }
        }
        marks.insert(s.to_string(), mark);
    }
    json!({ "bookmarks": marks })
}

struct Singer;

impl Dialect for Singer {
    fn record(&self, record: &Record) -> Value {
        let mut data = record.data.clone();
        let extracted = sync_core::epoch_ms_to_rfc3339(record.extracted_at);
        if record.tombstone {
            data.insert("_sdc_deleted_at".into(), json!(extracted));
        }
        json!({"type": "RECORD", "stream": record.stream, "record": data,
            "time_extracted": extracted})
    }

    fn running(&self, _stream: &str) -> Option<Value> {
        None
    }

    fn quarantined(&self, _q: &Quarantined) -> Option<Value> {
        None // logged on stderr by the sink
    }

    fn states(
        &self,
        _changed: &BTreeSet<String>,
        state: &BTreeMap<String, Value>,
        _counts: &BTreeMap<String, u64>,
    ) -> Vec<Value> {
        vec![json!({"type": "STATE", "value": bookmarks(state)})]
    }
}

/// What a sync did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncOutcome {
    /// Every selected stream succeeded (quarantined records do not fail it).
    pub succeeded: bool,
    /// The engine's run status.
    pub status: RunStatus,
    /// Why it failed, for stderr (never holds a secret).
    pub error: Option<String>,
}

/// Run the tap: SCHEMA for each selected stream, then RECORD and STATE messages into
/// `wire`, from `state`.
///
/// Errors: [`ConfigError`] for a catalog or config that cannot be used (nothing is written).
pub async fn sync(
    config: &ProtocolConfig,
    catalog: Option<&Value>,
    state: Option<&Value>,
    wire: &Wire,
    cancel: Cancel,
) -> Result<SyncOutcome, ConfigError> {
    sync_with(config, config.source_config(), catalog, state, wire, cancel).await
}

/// [`sync`] with the Drift source's options given (tests use small pages).
///
/// Errors: as [`sync`].
pub async fn sync_with(
    config: &ProtocolConfig,
    source_config: source_drift::DriftSourceConfig,
    catalog: Option<&Value>,
    state: Option<&Value>,
    wire: &Wire,
    cancel: Cancel,
) -> Result<SyncOutcome, ConfigError> {
    let (streams, emit) = selection_to_emit(catalog)?;
    let client = config.client()?;
    if streams.is_empty() {
        tracing::warn!("the catalog selects no stream: nothing to sync (set \"selected\": true in a stream's metadata with breadcrumb [])");
    }
    let defs: Vec<Stream> = streams.iter().map(|s| s.stream.clone()).collect();
    // SCHEMA of each stream emitted: the parents selected, then their selected children.
    let mut schemas: Vec<Value> = Vec::new();
    for s in &defs {
        if !emit.hidden.contains(&s.name) {
            schemas.push(
                json!({"type": "SCHEMA", "stream": s.name, "schema": singer_schema(s),
                "key_properties": s.primary_key,
                "bookmark_properties": s.cursor_field.iter().collect::<Vec<_>>()}),
            );
        }
        for c in emit.children.get(&s.name).into_iter().flatten() {
            schemas.push(json!({"type": "SCHEMA", "stream": c.stream.name,
                "schema": crate::children::schema(c), "key_properties": c.stream.primary_key,
                "bookmark_properties": []}));
        }
    }
    let initial = state.map(state_from).unwrap_or_default();
    // The input state is echoed first, so a run that reads nothing keeps it.
    let mut head = schemas;
    if !initial.is_empty() {
        head.push(json!({"type": "STATE", "value": bookmarks(&initial)}));
    }
    if let Err(e) = wire.send_all(&head) {
        return Ok(SyncOutcome {
            succeeded: false,
            status: RunStatus::Failed,
            error: Some(format!("cannot write to stdout: {e}")),
        });
    }
    if streams.is_empty() {
        return Ok(SyncOutcome {
            succeeded: true,
            status: RunStatus::Succeeded,
            error: None,
        });
    }
    let mut sink = ProtocolSink::new(
        Box::new(Singer),
        wire.clone(),
        &defs,
        emit,
        initial,
        config.start_date_ms,
    );
    let source = Arc::new(DriftSource::new(client, source_config));
    let run_id = format!("singer-{}", chrono::Utc::now().timestamp_millis());
    let report = run_sync(
        source,
        &mut sink,
        streams,
        RunOptions::new(run_id, "singer"),
        cancel,
        None,
    )
    .await;
    let mut problems: Vec<String> = report
        .streams
        .iter()
        .filter(|s| s.state != StreamState::Succeeded)
        .map(|s| {
            format!(
                "stream {} {}",
                s.stream,
                s.reason.as_deref().unwrap_or("did not finish")
            )
        })
        .collect();
    if let Some(e) = &report.error {
        problems.insert(0, e.to_string());
    }
    Ok(SyncOutcome {
        succeeded: problems.is_empty(),
        status: report.status,
        error: (!problems.is_empty()).then(|| problems.join("; ")),
    })
}
