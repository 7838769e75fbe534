//! Analyst-ready shapes of a stream (issue 19): a JSON object field flattened into one
//! column per key ([`Flatten`], contacts' `attributes`) and arrays of a record written as
//! child tables ([`ChildTable`], e.g. `conversation_tags`). Sources declare them on the
//! [`crate::Stream`]; sinks derive their tables and rows from them in one place
//! (`sinks::layout`), and tools (the `driftbridge catalog` command) describe them.

use crate::model::{property_kind, Property, EPOCH_MS_FORMAT};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashSet;

/// System columns every stream table has or may have; a flattened column never takes one
/// of these names (README "System columns").
pub const SYSTEM_COLUMNS: [&str; 8] = [
    "_extracted_at",
    "_run_id",
    "_deleted",
    "_deleted_at",
    "_valid_from",
    "_valid_to",
    "_active",
    "_raw",
];

/// Suffixes of the timestamp twins of epoch-millisecond columns (`_iso` in SQLite and the
/// file sinks, `_ts` in PostgreSQL): reserved after every column name so a twin never
/// collides with a flattened column.
pub const TWIN_SUFFIXES: [&str; 2] = ["_iso", "_ts"];

/// A JSON object field of a record whose keys become columns of the stream's table
/// (contacts' `attributes`: one column per contact attribute). The object itself stays in
/// its own column and in `_raw`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Flatten {
    /// The top-level object field (`attributes`).
    pub field: String,
    /// The keys that have a column: key as the source spells it -> its JSON Schema (type,
    /// `format: epoch-millis` for timestamps, `description`). Keys not listed are "new
    /// fields", handled by the sink's schema contract.
    pub properties: Map<String, Value>,
}

/// One column of a flattened object: which key it holds and its column name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlatColumn {
    /// The key in the flattened object (`first_name`, `_END_USER_VERSION`).
    pub key: String,
    /// The column name: the key when it is a safe identifier and free, else made safe and
    /// suffixed (`_end_user_version_2`); see [`flat_columns`].
    pub column: String,
    /// Type of the column (from the key's schema).
    pub property: Property,
    /// The key's `description`, when its schema has one.
    pub description: Option<String>,
}

/// An array field of a record written as a child table: one row per element, keyed by the
/// parent's primary key and the element's position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChildTable {
    /// Table name (`conversation_tags`).
    pub name: String,
    /// Path of the array in the parent record (`["conversationTags"]`, or
    /// `["attributes", "tags"]` for contact tags). A null, missing or non-array value gives
    /// no rows.
    pub path: Vec<String>,
    /// Name of the column holding the parent's primary key (`conversation_id`).
    pub parent_key: String,
    /// Name of the column holding the element's position in the array, from 0 (`_index`).
    pub index: String,
    /// The typed columns read from each element.
    pub columns: Vec<ChildColumn>,
    /// What the table holds (catalog and dbt descriptions).
    pub description: String,
    /// Reading it costs the source one more request per parent record (a conversation's
    /// tags and participants: `GET /conversations/{id}`, REFERENCE §7.2). Such a table is
    /// read when the run selects it by name or with `all`, not merely because its parent is
    /// selected (see [`crate::Catalog::select`]).
    #[serde(default)]
    pub on_request: bool,
}

/// A column of a child table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChildColumn {
    /// Column name (`tag`).
    pub name: String,
    /// The element's field it reads when the element is an object (`name`).
    pub field: String,
    /// Whether a scalar element (a tag sent as a plain string, a participant's user id) goes
    /// into this column.
    #[serde(default)]
    pub scalar: bool,
    /// JSON Schema of the value (type, `format: epoch-millis`, `description`).
    pub schema: Value,
}

impl ChildTable {
    /// The array of `data` at [`Self::path`], if there is one.
    pub fn array<'a>(&self, data: &'a Map<String, Value>) -> Option<&'a Vec<Value>> {
        let (first, rest) = self.path.split_first()?;
        let mut v = data.get(first)?;
        for p in rest {
            v = v.get(p)?;
        }
        v.as_array()
    }

    /// The rows of the elements of `data`'s array: each holds the parent key under
    /// [`Self::parent_key`], the position under [`Self::index`], and the element's fields
    /// (an object element's fields as they are; a scalar element under the `field` of the
    /// [`ChildColumn::scalar`] column). `parent` is the parent's primary-key value.
    pub fn rows(&self, parent: &Value, data: &Map<String, Value>) -> Vec<Map<String, Value>> {
        let Some(items) = self.array(data) else {
            return Vec::new();
        };
        let scalar_field = self.columns.iter().find(|c| c.scalar).map(|c| &c.field);
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let mut row = match item {
                    Value::Object(o) => o.clone(),
                    other => {
                        let mut m = Map::new();
                        if let Some(f) = scalar_field {
                            m.insert(f.clone(), other.clone());
                        }
                        m
                    }
                };
                row.insert(self.parent_key.clone(), parent.clone());
                row.insert(self.index.clone(), Value::from(i as u64));
                row
            })
            .collect()
    }
}

/// Whether `name` is a plain SQL identifier (ASCII letter or `_`, then ASCII letters,
/// digits or `_`), which needs no quoting in any database.
pub fn is_safe_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `name` made a safe identifier: every other character becomes `_`, a leading digit gets
/// a `_` before it, an empty name becomes `_`.
pub fn safe_identifier(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

/// The columns of the flattened keys `keys` (with their schemas), given the names already
/// `taken` (compared case-insensitively, as PostgreSQL's unquoted and SQLite's names
/// are). Keys are taken in sorted order; each gets its safe name ([`safe_identifier`]), or
/// that name with `_2`, `_3`, ... when it is taken. A name, and its twin names
/// ([`TWIN_SUFFIXES`]) for an epoch-millisecond key, are then taken. Deterministic: the
/// same keys and taken names always give the same columns.
pub fn assign_columns<'a>(
    keys: impl IntoIterator<Item = (&'a String, &'a Value)>,
    taken: &mut HashSet<String>,
) -> Vec<FlatColumn> {
    let mut keys: Vec<(&String, &Value)> = keys.into_iter().collect();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::with_capacity(keys.len());
    for (key, schema) in keys {
        let base = safe_identifier(key);
        let mut column = base.clone();
        let mut n = 2;
        while taken.contains(&column.to_lowercase()) {
            column = format!("{base}_{n}");
            n += 1;
        }
        let epoch_ms = schema.get("format").and_then(Value::as_str) == Some(EPOCH_MS_FORMAT);
        taken.insert(column.to_lowercase());
        if epoch_ms {
            for s in TWIN_SUFFIXES {
                taken.insert(format!("{column}{s}").to_lowercase());
            }
        }
        out.push(FlatColumn {
            key: key.clone(),
            column: column.clone(),
            property: Property {
                name: column,
                kind: property_kind(schema),
                epoch_ms,
            },
            description: schema
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }
    out
}

/// The names a flattened column may not take in a table whose top-level columns are
/// `columns`: those names, their twins, and the [`SYSTEM_COLUMNS`] (lower case).
pub fn reserved_names<'a>(columns: impl IntoIterator<Item = &'a str>) -> HashSet<String> {
    let mut taken: HashSet<String> = SYSTEM_COLUMNS.iter().map(|s| (*s).to_owned()).collect();
    for c in columns {
        taken.insert(c.to_lowercase());
        for s in TWIN_SUFFIXES {
            taken.insert(format!("{c}{s}").to_lowercase());
        }
    }
    taken
}

/// JSON Schema of a value observed in a record, for a key that has no schema yet (schema
/// evolution): strings, integers, numbers and booleans typed, anything else JSON.
pub fn schema_of_value(value: &Value) -> Value {
    let t = match value {
        Value::String(_) => "string",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        _ => return serde_json::json!({}),
    };
    serde_json::json!({ "type": ["null", t] })
}
