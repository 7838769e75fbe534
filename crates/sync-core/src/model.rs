//! Streams, catalogs and records.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The JSON Schema `format` value that marks an integer property as a Unix epoch in
/// milliseconds (Drift's timestamp unit, REFERENCE §1). Sinks add an RFC 3339 twin
/// column `<field>_iso` for such properties. Draft-07 validators ignore unknown formats.
pub const EPOCH_MS_FORMAT: &str = "epoch-millis";

/// How a stream can be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Read everything the source has.
    FullRefresh,
    /// Read what changed since the stored watermark (minus an overlap).
    Incremental,
}

impl std::str::FromStr for SyncMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" | "full_refresh" | "full-refresh" => Ok(Self::FullRefresh),
            "incremental" => Ok(Self::Incremental),
            other => Err(format!(
                "unknown mode `{other}`: use `full` or `incremental`"
            )),
        }
    }
}

/// How a sink applies a stream's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Insert or update by primary key; rows not in the run stay.
    Upsert,
    /// The stream is read in full and committed in one batch when it succeeds (see
    /// [`crate::Batch::replace`]): databases upsert it, file sinks replace its files.
    Replace,
}

/// One stream a source offers: its name, JSON Schema (draft-07) and keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stream {
    /// Stream name, also the sink table name (e.g. `conversations`).
    pub name: String,
    /// JSON Schema (draft-07) of one record. Top-level `properties` become columns.
    pub json_schema: Value,
    /// Top-level field names forming the primary key (e.g. `["id"]`).
    pub primary_key: Vec<String>,
    /// Field used as the incremental cursor, if the stream has one (e.g. `updatedAt`).
    pub cursor_field: Option<String>,
    /// How sinks apply the records.
    pub write_mode: WriteMode,
    /// Top-level fields sinks should index (e.g. `conversationId` on messages).
    pub index_fields: Vec<String>,
    /// A JSON object field whose keys become columns (contacts' `attributes`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flatten: Option<crate::Flatten>,
    /// Array fields written as child tables (`conversation_tags`, ...), in table order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<crate::ChildTable>,
}

/// Column type derived from a JSON Schema property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyKind {
    /// `integer`.
    Integer,
    /// `number`.
    Number,
    /// `boolean`.
    Boolean,
    /// `string`.
    String,
    /// `object`, `array`, or no/mixed type: stored as JSON text.
    Json,
}

/// A top-level property of a stream's schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    /// Field name as the source spells it (e.g. `updatedAt`).
    pub name: String,
    /// Column type.
    pub kind: PropertyKind,
    /// Whether the value is epoch milliseconds ([`EPOCH_MS_FORMAT`]).
    pub epoch_ms: bool,
}

impl Stream {
    /// Top-level properties of the schema, in schema order. Types are read from `type`
    /// (a string or an array such as `["null", "integer"]`; `null` is ignored).
    pub fn properties(&self) -> Vec<Property> {
        let Some(props) = self
            .json_schema
            .get("properties")
            .and_then(Value::as_object)
        else {
            return Vec::new();
        };
        props
            .iter()
            .map(|(name, schema)| Property {
                name: name.clone(),
                kind: property_kind(schema),
                epoch_ms: schema.get("format").and_then(Value::as_str) == Some(EPOCH_MS_FORMAT),
            })
            .collect()
    }

    /// The columns of the flattened object ([`Self::flatten`]), in key order, named so that
    /// none collides with a top-level property, a timestamp twin, a system column or
    /// another flattened column (see [`crate::shape::assign_columns`]). Empty without
    /// [`Self::flatten`].
    pub fn flat_columns(&self) -> Vec<crate::FlatColumn> {
        let Some(flatten) = &self.flatten else {
            return Vec::new();
        };
        let props = self.properties();
        let mut taken = crate::shape::reserved_names(props.iter().map(|p| p.name.as_str()));
        for pk in &self.primary_key {
            taken.insert(pk.to_lowercase());
        }
        crate::shape::assign_columns(flatten.properties.iter(), &mut taken)
    }
}

pub(crate) fn property_kind(schema: &Value) -> PropertyKind {
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let non_null: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
    match non_null.as_slice() {
        ["integer"] => PropertyKind::Integer,
        ["number"] | ["integer", "number"] | ["number", "integer"] => PropertyKind::Number,
        ["boolean"] => PropertyKind::Boolean,
        ["string"] => PropertyKind::String,
        _ => PropertyKind::Json,
    }
}

/// Format epoch milliseconds as RFC 3339 UTC with millisecond precision
/// (`1700131220877` -> `2023-11-16T10:40:20.877Z`). `None` when out of range.
pub fn epoch_ms_to_rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Error of [`Catalog::select`]: a stream name the source does not offer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown stream `{name}`: available streams are {available}")]
pub struct UnknownStream {
    /// The name asked for.
    pub name: String,
    /// Comma-separated names the source offers.
    pub available: String,
}

/// The streams a source offers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// Streams in the source's preferred order.
    pub streams: Vec<Stream>,
}

impl Catalog {
    /// The stream called `name`.
    pub fn get(&self, name: &str) -> Option<&Stream> {
        self.streams.iter().find(|s| s.name == name)
    }

    /// Names of every stream, in catalog order.
    pub fn names(&self) -> Vec<String> {
        self.streams.iter().map(|s| s.name.clone()).collect()
    }

    /// Configure the named streams (catalog order, duplicates ignored) with `mode`; `all`
    /// selects every stream with every child table. A stream named alone comes with its
    /// child tables except those marked [`crate::ChildTable::on_request`], which cost the
    /// source an extra request per record and are selected by naming them (which selects
    /// their parent too) or with `all`. Each configured stream's `children` lists the child
    /// tables selected: a sink leaves the others alone. Errors name the unknown stream and
    /// list the valid ones (child tables included).
    pub fn select(
        &self,
        names: &[String],
        mode: SyncMode,
    ) -> Result<Vec<ConfiguredStream>, UnknownStream> {
        let all = names.iter().any(|n| n == "all");
        let child_named = |c: &crate::ChildTable| names.contains(&c.name);
        for n in names.iter().filter(|n| n.as_str() != "all") {
            let known = self.get(n).is_some()
                || self
                    .streams
                    .iter()
                    .any(|s| s.children.iter().any(|c| &c.name == n));
            if !known {
                let mut available = self.names();
                for s in &self.streams {
                    available.extend(s.children.iter().map(|c| c.name.clone()));
                }
                return Err(UnknownStream {
                    name: n.clone(),
                    available: available.join(", "),
                });
            }
        }
        Ok(self
            .streams
            .iter()
            .filter(|s| all || names.contains(&s.name) || s.children.iter().any(child_named))
            .map(|s| {
                let mut stream = s.clone();
                if !all {
                    let named = names.contains(&s.name);
                    stream
                        .children
                        .retain(|c| child_named(c) || (named && !c.on_request));
                }
                ConfiguredStream { stream, mode }
            })
            .collect())
    }
}

/// A stream chosen for a run, with the mode to read it in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfiguredStream {
    /// The stream.
    pub stream: Stream,
    /// Full refresh or incremental.
    pub mode: SyncMode,
}

/// One record of a stream: a JSON object as the source sent it, or a tombstone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Stream name.
    pub stream: String,
    /// The record's fields, unchanged from the source (unknown fields kept). For a tombstone:
    /// only the primary-key fields.
    pub data: Map<String, Value>,
    /// When it was read, epoch milliseconds (our clock).
    pub extracted_at: i64,
    /// A tombstone: the record with the primary key in `data` was deleted in the source
    /// (a contact that answers 404, an account with `deleted: true`, a user absent from a
    /// complete full-refresh pass). Databases mark the row `_deleted` (or delete it with hard
    /// deletes) without touching its other columns; file sinks write the tombstone as a
    /// record with `_deleted: true`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tombstone: bool,
}

impl Record {
    /// A record read now.
    pub fn new(stream: impl Into<String>, data: Map<String, Value>) -> Self {
        Self {
            stream: stream.into(),
            data,
            extracted_at: chrono::Utc::now().timestamp_millis(),
            tombstone: false,
        }
    }

    /// A tombstone of `stream` noticed now: `key` holds the primary-key fields of the
    /// deleted record (e.g. `{"id": 42}`).
    pub fn tombstone(stream: impl Into<String>, key: Map<String, Value>) -> Self {
        Self {
            tombstone: true,
            ..Self::new(stream, key)
        }
    }

    /// The primary key of this record as one text (values' JSON joined by `|`), or `None`
    /// when a key field is missing or null.
    pub fn key_text(&self, primary_key: &[String]) -> Option<String> {
        key_text(&self.data, primary_key)
    }
}

/// The primary key `primary_key` of `data` as one text: a string value as is, any other
/// value as its JSON, joined by `|` for compound keys. `None` when a field is missing or null.
pub fn key_text(data: &Map<String, Value>, primary_key: &[String]) -> Option<String> {
    let mut parts = Vec::with_capacity(primary_key.len());
    for field in primary_key {
        match data.get(field) {
            None | Some(Value::Null) => return None,
            Some(Value::String(s)) => parts.push(s.clone()),
            Some(other) => parts.push(other.to_string()),
        }
    }
    Some(parts.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stream(name: &str) -> Stream {
        Stream {
            name: name.into(),
            json_schema: json!({"type": "object", "properties": {
                "id": {"type": "integer"},
                "updatedAt": {"type": ["null", "integer"], "format": EPOCH_MS_FORMAT},
                "score": {"type": ["null", "number"]},
                "bot": {"type": ["null", "boolean"]},
                "name": {"type": ["null", "string"]},
                "tags": {"type": ["null", "array"]},
                "any": {}
            }}),
            primary_key: vec!["id".into()],
            cursor_field: None,
            write_mode: WriteMode::Upsert,
            index_fields: vec![],
            flatten: None,
            children: vec![],
        }
    }

    #[test]
    fn properties_map_json_schema_types_to_columns() {
        let props = stream("s").properties();
        let kinds: Vec<_> = props
            .iter()
            .map(|p| (p.name.as_str(), p.kind, p.epoch_ms))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("id", PropertyKind::Integer, false),
                ("updatedAt", PropertyKind::Integer, true),
                ("score", PropertyKind::Number, false),
                ("bot", PropertyKind::Boolean, false),
                ("name", PropertyKind::String, false),
                ("tags", PropertyKind::Json, false),
                ("any", PropertyKind::Json, false),
            ]
        );
    }

    #[test]
    fn child_tables_that_cost_a_request_are_selected_by_name_or_all() {
        let child = |name: &str, on_request: bool| crate::ChildTable {
            name: name.into(),
            path: vec![name.into()],
            parent_key: "p_id".into(),
            index: "_index".into(),
            columns: vec![],
            description: String::new(),
            on_request,
        };
        let mut p = stream("p");
        p.children = vec![child("p_free", false), child("p_costly", true)];
        let cat = Catalog {
            streams: vec![p, stream("q")],
        };
        let children = |names: &[&str]| -> Vec<(String, Vec<String>)> {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            cat.select(&names, SyncMode::FullRefresh)
                .unwrap()
                .into_iter()
                .map(|c| {
                    let kids = c.stream.children.iter().map(|k| k.name.clone()).collect();
                    (c.stream.name, kids)
                })
                .collect()
        };
        let s = |v: &str| v.to_string();
        assert_eq!(
            children(&["all"]),
            [(s("p"), vec![s("p_free"), s("p_costly")]), (s("q"), vec![])]
        );
        assert_eq!(children(&["p"]), [(s("p"), vec![s("p_free")])]);
        // Naming the costly child selects its parent with it (and nothing else).
        assert_eq!(children(&["p_costly"]), [(s("p"), vec![s("p_costly")])]);
        assert_eq!(
            children(&["q", "p", "p_costly"]),
            [(s("p"), vec![s("p_free"), s("p_costly")]), (s("q"), vec![])]
        );
        let err = cat
            .select(&["p_nope".into()], SyncMode::FullRefresh)
            .unwrap_err();
        assert!(err.available.contains("p_costly"), "{}", err.available);
    }

    #[test]
    fn select_names_unknown_streams_and_keeps_catalog_order() {
        let cat = Catalog {
            streams: vec![stream("a"), stream("b"), stream("c")],
        };
        let sel = cat
            .select(&["c".into(), "a".into()], SyncMode::Incremental)
            .unwrap();
        let names: Vec<_> = sel.iter().map(|s| s.stream.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(
            cat.select(&["all".into()], SyncMode::FullRefresh)
                .unwrap()
                .len(),
            3
        );
        let err = cat
            .select(&["nope".into()], SyncMode::FullRefresh)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown stream `nope`: available streams are a, b, c"
        );
    }

    #[test]
    fn epoch_ms_formats_as_rfc3339_utc() {
        assert_eq!(
            epoch_ms_to_rfc3339(1_700_131_220_877).as_deref(),
            Some("2023-11-16T10:40:20.877Z")
        );
        assert_eq!(epoch_ms_to_rfc3339(i64::MAX), None);
    }

    #[test]
    fn mode_parses_cli_spellings() {
        assert_eq!("full".parse::<SyncMode>(), Ok(SyncMode::FullRefresh));
        assert_eq!("incremental".parse::<SyncMode>(), Ok(SyncMode::Incremental));
        assert!("fast"
            .parse::<SyncMode>()
            .unwrap_err()
            .contains("`full` or `incremental`"));
    }
}
