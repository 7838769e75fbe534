//! The tables a sink writes for a set of streams, described for tools (`driftbridge
//! catalog`: JSON, Markdown, dbt `sources.yml`): every table including the child tables,
//! with columns, types, primary key, cursor and descriptions. Derived from the same layout
//! the sinks write with ([`crate::layout::tables`]), so the description cannot drift from
//! the tables.

use crate::layout::{self, ColumnKind};
use serde::Serialize;
use serde_json::Value;
use sync_core::{PropertyKind, Stream};

/// Which sink's names to describe: the timestamp twins are `<field>_iso` in SQLite and the
/// file sinks, `<field>_ts` in PostgreSQL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite and the file sinks (`_iso` twins, RFC 3339 text).
    #[default]
    Sqlite,
    /// PostgreSQL (`_ts` twins, timestamptz).
    Postgres,
}

impl Dialect {
    fn twin_suffix(self) -> &'static str {
        match self {
            Self::Sqlite => "_iso",
            Self::Postgres => "_ts",
        }
    }
}

/// One table.
#[derive(Clone, Debug, Serialize)]
pub struct TableInfo {
    /// Table (or folder) name.
    pub name: String,
    /// The stream whose records fill it.
    pub stream: String,
    /// For a child table: the parent table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Primary-key columns (a child table's: parent key and index; in history mode the key
    /// of the open version).
    pub primary_key: Vec<String>,
    /// Cursor field of an incremental stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// What the table holds.
    pub description: String,
    /// Columns, in table order, system columns last.
    pub columns: Vec<ColumnInfo>,
    /// Flattened keys whose column name differs from the key (unsafe characters, or a
    /// collision resolved with a suffix): key -> column.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub renamed: Vec<Renamed>,
}

/// One column.
#[derive(Clone, Debug, Serialize)]
pub struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// `integer`, `number`, `boolean`, `string`, `json` or `timestamp`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Where the value comes from (`attributes.email`, `name` of each tag, ...) and what it
    /// means.
    pub description: String,
}

/// A flattened key stored under another column name.
#[derive(Clone, Debug, Serialize)]
pub struct Renamed {
    /// The key as Drift spells it.
    pub key: String,
    /// Its column.
    pub column: String,
}

/// The system columns (README "System columns"), with their descriptions.
pub const SYSTEM_COLUMN_DOCS: [(&str, &str, &str); 8] = [
    (
        "_extracted_at",
        "timestamp",
        "When driftbridge read the record",
    ),
    ("_run_id", "string", "The run that last wrote the row"),
    (
        "_deleted",
        "boolean",
        "True once the record was deleted in Drift (soft deletes)",
    ),
    (
        "_deleted_at",
        "timestamp",
        "When the deletion was seen; null while live",
    ),
    (
        "_valid_from",
        "timestamp",
        "History mode: when this version became current",
    ),
    (
        "_valid_to",
        "timestamp",
        "History mode: when this version stopped being current; null while current",
    ),
    (
        "_active",
        "boolean",
        "History mode: whether this version is the current one",
    ),
    (
        "_raw",
        "json",
        "The record (or array element) as Drift sent it",
    ),
];

fn kind_name(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Timestamp => "timestamp",
        ColumnKind::Value(PropertyKind::Integer) => "integer",
        ColumnKind::Value(PropertyKind::Number) => "number",
        ColumnKind::Value(PropertyKind::Boolean) => "boolean",
        ColumnKind::Value(PropertyKind::String) => "string",
        ColumnKind::Value(PropertyKind::Json) => "json",
    }
}

fn description_of(stream: &Stream, field: &str) -> Option<String> {
    stream.json_schema["properties"][field]["description"]
        .as_str()
        .map(str::to_owned)
}

/// The tables `streams` give in `dialect`, streams in order, each followed by its child
/// tables. `history`: the stream tables carry the history-mode columns.
pub fn describe(streams: &[Stream], dialect: Dialect, history: bool) -> Vec<TableInfo> {
    let mut out = Vec::new();
    for stream in streams {
        let flat: Vec<sync_core::FlatColumn> = stream.flat_columns();
        for (i, def) in layout::tables(stream, dialect.twin_suffix())
            .into_iter()
            .enumerate()
        {
            let t = &def.stream;
            let is_child = i > 0;
            let mut columns: Vec<ColumnInfo> = def
                .columns
                .iter()
                .map(|c| {
                    let from = match &c.parent {
                        Some(p) => format!("{p}.{}", c.field),
                        None => c.field.clone(),
                    };
                    let base = if c.kind == ColumnKind::Timestamp {
                        format!("`{from}` as a timestamp (UTC)")
                    } else if let Some(f) =
                        flat.iter().find(|f| c.parent.is_some() && f.key == c.field)
                    {
                        match &f.description {
                            Some(d) => format!("{d} (from `{from}`)"),
                            None => format!("From `{from}`"),
                        }
                    } else {
                        let d = description_of(t, &c.name).unwrap_or_default();
                        if is_child && c.field != c.name {
                            format!("{d} (element field `{}`)", c.field)
                        } else {
                            d
                        }
                    };
                    ColumnInfo {
                        name: c.name.clone(),
                        kind: kind_name(c.kind),
                        description: base,
                    }
                })
                .collect();
            for (name, kind, doc) in SYSTEM_COLUMN_DOCS {
                let history_column = layout::HISTORY_COLUMNS.contains(&name);
                if history_column && (is_child || !history) {
                    continue;
                }
                columns.push(ColumnInfo {
                    name: name.to_owned(),
                    kind,
                    description: doc.to_owned(),
                });
            }
            let description = if is_child {
                t.json_schema["description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            } else {
                t.json_schema["title"].as_str().map_or_else(
                    || format!("Drift stream {}", t.name),
                    |s| format!("{s}s (stream `{}`)", t.name),
                )
            };
            out.push(TableInfo {
                name: t.name.clone(),
                stream: stream.name.clone(),
                parent: is_child.then(|| stream.name.clone()),
                primary_key: t.primary_key.clone(),
                cursor: if is_child {
                    None
                } else {
                    t.cursor_field.clone()
                },
                description,
                columns,
                renamed: if is_child {
                    Vec::new()
                } else {
                    flat.iter()
                        .filter(|f| f.key != f.column)
                        .map(|f| Renamed {
                            key: f.key.clone(),
                            column: f.column.clone(),
                        })
                        .collect()
                },
            });
        }
    }
    out
}

/// The tables as JSON (`{"tables": [...]}`).
pub fn to_json(tables: &[TableInfo]) -> Value {
    serde_json::json!({ "tables": tables })
}
