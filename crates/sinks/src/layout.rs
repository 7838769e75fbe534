//! Column layout shared by the sinks: which tables and columns a stream gives (its own
//! table with the flattened columns of [`Stream::flatten`], and one child table per
//! [`Stream::children`]), how a record becomes a parent row and child rows, how the
//! schema contract treats keys that have no column yet, how a JSON value fits a column,
//! and which existing tables the databases refuse to write into. Every sink derives its
//! tables from [`tables`]; the `driftbridge catalog` command describes them with
//! [`crate::catalog`].

use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use sync_core::{
    epoch_ms_to_rfc3339, ChildTable, ErrorKind, PropertyKind, Record, RunError, Stream, WriteMode,
};

/// Name of the column that keeps the whole record as the source sent it.
pub(crate) const RAW: &str = "_raw";
/// Name of the column with the run id.
pub(crate) const RUN_ID: &str = "_run_id";
/// Name of the column with the extraction time.
pub(crate) const EXTRACTED_AT: &str = "_extracted_at";
/// The metadata columns every table driftbridge creates has, in every version. A table of a
/// stream's name that lacks one of them was not created by driftbridge (see
/// [`refuse_foreign_table`]).
pub(crate) const META_COLUMNS: [&str; 3] = [EXTRACTED_AT, RUN_ID, RAW];
/// Name of the soft-delete flag: false for a live row, true once a tombstone marked it.
/// Added by `prepare` to tables of older versions (their rows become live).
pub(crate) const DELETED: &str = "_deleted";
/// Name of the column with when the row was deleted in Drift (the tombstone's extraction
/// time); null while the row is live.
pub(crate) const DELETED_AT: &str = "_deleted_at";

/// History mode's columns, in table order: when a version became current (its
/// extraction time), when it stopped being current (null while current), and whether it is
/// current (`_active`).
pub(crate) const HISTORY_COLUMNS: [&str; 3] = ["_valid_from", "_valid_to", "_active"];

/// Columns of the state table `_driftbridge_state` as driftbridge creates it (SQLite and
/// PostgreSQL).
pub(crate) const STATE_COLUMNS: [&str; 4] = ["scope", "key", "state", "updated_at"];
/// Columns the table of rejected records `_driftbridge_rejected` has in every version
/// driftbridge created it in (the check of a user's table of that name accepts any table with
/// them; `prepare` then adds [`REJECTED_PRIMARY_KEY`] to an older one).
pub(crate) const REJECTED_COLUMNS: [&str; 6] =
    ["id", "run_id", "stream", "reason", "_raw", "rejected_at"];
/// The column of `_driftbridge_rejected` with the rejected record's primary key as text
/// (nullable: unknown for a record without one). Added after the first versions.
pub(crate) const REJECTED_PRIMARY_KEY: &str = "primary_key";

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ColumnKind {
    /// The field's value, typed from the schema.
    Value(PropertyKind),
    /// The timestamp twin of an epoch-millisecond field (REFERENCE §1: Drift timestamps are
    /// epoch milliseconds).
    Timestamp,
}

/// One column of a stream's table or file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Column {
    /// Column name (the field name, or `<field><suffix>` for a timestamp twin).
    pub name: String,
    /// The record field it is read from (for a flattened column: the key in the
    /// [`Self::parent`] object).
    pub field: String,
    /// What it holds.
    pub kind: ColumnKind,
    /// For a flattened column: the object field holding [`Self::field`] (`attributes`).
    pub parent: Option<String>,
}

impl Column {
    /// The value of this column's field in `data` (`None` when absent).
    #[inline]
    pub fn value<'a>(&self, data: &'a Map<String, Value>) -> Option<&'a Value> {
        match &self.parent {
            None => data.get(&self.field),
            Some(p) => data.get(p)?.get(&self.field),
        }
    }

    /// Whether this column checks that a value fits its type before writing it (the
    /// flattened columns: a value of another type is left null there, with a warning, and
    /// stays in `_raw`).
    pub fn checked(&self) -> bool {
        self.parent.is_some()
    }
}

/// The columns of `stream`: one per top-level schema property in schema order, each
/// epoch-millisecond property followed by its twin named `<field><twin_suffix>`, then any
/// primary-key field the schema does not list (as JSON).
/// The column holding a record's version (Drift's `updatedAt` in epoch ms, or the stream's
/// integer cursor such as accounts' `updateDateTime`), if the stream has one: upserts keep
/// the newer of two versions by it, so an older read (a sync that overlaps the real-time
/// path, issue 22) never overwrites a newer row. A row or a record without a version is
/// always written.
pub(crate) fn version_column(stream: &Stream, columns: &[Column]) -> Option<String> {
    let integer = |name: &str| {
        columns.iter().any(|c| {
            c.name == name
                && c.parent.is_none()
                && matches!(c.kind, ColumnKind::Value(PropertyKind::Integer))
        })
    };
    stream
        .cursor_field
        .iter()
        .map(String::as_str)
        .chain(["updatedAt"])
        .find(|c| integer(c))
        .map(str::to_owned)
}

pub(crate) fn columns(stream: &Stream, twin_suffix: &str) -> Vec<Column> {
    let mut columns = Vec::new();
    for p in stream.properties() {
        columns.push(Column {
            name: p.name.clone(),
            field: p.name.clone(),
            kind: ColumnKind::Value(p.kind),
            parent: None,
        });
        if p.epoch_ms {
            columns.push(Column {
                name: format!("{}{twin_suffix}", p.name),
                field: p.name.clone(),
                kind: ColumnKind::Timestamp,
                parent: None,
            });
        }
    }
    for pk in &stream.primary_key {
        if !columns.iter().any(|c| &c.name == pk) {
            columns.push(Column {
                name: pk.clone(),
                field: pk.clone(),
                kind: ColumnKind::Value(PropertyKind::Json),
                parent: None,
            });
        }
    }
    if let Some(flatten) = &stream.flatten {
        for f in stream.flat_columns() {
            push_flat(
                &mut columns,
                &flatten.field,
                &f.key,
                &f.column,
                &f.property,
                twin_suffix,
            );
        }
    }
    columns
}

fn push_flat(
    columns: &mut Vec<Column>,
    object: &str,
    key: &str,
    name: &str,
    p: &sync_core::Property,
    twin_suffix: &str,
) {
    columns.push(Column {
        name: name.to_owned(),
        field: key.to_owned(),
        kind: ColumnKind::Value(p.kind),
        parent: Some(object.to_owned()),
    });
    if p.epoch_ms {
        columns.push(Column {
            name: format!("{name}{twin_suffix}"),
            field: key.to_owned(),
            kind: ColumnKind::Timestamp,
            parent: Some(object.to_owned()),
        });
    }
}

/// One table a stream writes: the stream's own table, or one of its child tables.
#[derive(Clone, Debug)]
pub(crate) struct TableDef {
    /// The table as a stream: name, primary key (a child's: parent key and index), index
    /// fields. For a child table, a stream of its own made by [`tables`].
    pub stream: Stream,
    /// Its columns, in order.
    pub columns: Vec<Column>,
    /// The keys of the flattened object that have a column ([`Stream::flatten`]); empty
    /// for a table without one.
    pub flat_keys: HashSet<String>,
}

/// The tables of `stream`: its own first, then one per child table, each with its columns
/// (timestamp twins named `<column><twin_suffix>`).
///
/// A child table's columns: the parent key (typed like the parent's primary key), the
/// index (integer, from 0), then the [`sync_core::ChildColumn`]s; its primary key is
/// (parent key, index) and the parent key is indexed.
pub(crate) fn tables(stream: &Stream, twin_suffix: &str) -> Vec<TableDef> {
    let own = TableDef {
        stream: stream.clone(),
        columns: columns(stream, twin_suffix),
        flat_keys: stream
            .flatten
            .as_ref()
            .map(|f| f.properties.keys().cloned().collect())
            .unwrap_or_default(),
    };
    let mut out = vec![own];
    for child in &stream.children {
        out.push(child_table(stream, child, twin_suffix));
    }
    out
}

fn child_table(parent: &Stream, child: &ChildTable, twin_suffix: &str) -> TableDef {
    let parent_kind = parent
        .primary_key
        .first()
        .and_then(|k| parent.properties().into_iter().find(|p| &p.name == k))
        .map_or(PropertyKind::Json, |p| p.kind);
    let parent_type = match parent_kind {
        PropertyKind::Integer => "integer",
        PropertyKind::Number => "number",
        PropertyKind::Boolean => "boolean",
        PropertyKind::String => "string",
        PropertyKind::Json => "string",
    };
    let mut props = Map::new();
    props.insert(
        child.parent_key.clone(),
        serde_json::json!({"type": parent_type, "description": format!("Primary key of the parent `{}` row", parent.name)}),
    );
    props.insert(
        child.index.clone(),
        serde_json::json!({"type": "integer", "description": "Position in the parent's array, from 0"}),
    );
    let mut columns = vec![
        Column {
            name: child.parent_key.clone(),
            field: child.parent_key.clone(),
            kind: ColumnKind::Value(parent_kind),
            parent: None,
        },
        Column {
            name: child.index.clone(),
            field: child.index.clone(),
            kind: ColumnKind::Value(PropertyKind::Integer),
            parent: None,
        },
    ];
    for c in &child.columns {
        props.insert(c.name.clone(), c.schema.clone());
        let helper = Stream {
            name: String::new(),
            json_schema: serde_json::json!({"properties": {"x": c.schema}}),
            primary_key: Vec::new(),
            cursor_field: None,
            write_mode: WriteMode::Upsert,
            index_fields: Vec::new(),
            flatten: None,
            children: Vec::new(),
        };
        let p = helper.properties().pop();
        let (kind, epoch) = p.map_or((PropertyKind::Json, false), |p| (p.kind, p.epoch_ms));
        columns.push(Column {
            name: c.name.clone(),
            field: c.field.clone(),
            kind: ColumnKind::Value(kind),
            parent: None,
        });
        if epoch {
            columns.push(Column {
                name: format!("{}{twin_suffix}", c.name),
                field: c.field.clone(),
                kind: ColumnKind::Timestamp,
                parent: None,
            });
        }
    }
    let stream = Stream {
        name: child.name.clone(),
        json_schema: serde_json::json!({"type": "object", "description": child.description, "properties": props}),
        primary_key: vec![child.parent_key.clone(), child.index.clone()],
        cursor_field: None,
        write_mode: WriteMode::Upsert,
        index_fields: vec![child.parent_key.clone()],
        flatten: None,
        children: Vec::new(),
    };
    TableDef {
        stream,
        columns,
        flat_keys: HashSet::new(),
    }
}

/// The child rows of `record` (a live record of `stream`) for its child table `child`:
/// records of stream `child.name` with the parent key, the index and the element's fields
/// (see [`ChildTable::rows`]), read when the parent was. A record without a single-field
/// primary key, or whose array is missing, null or not an array, has none.
pub(crate) fn child_records(stream: &Stream, child: &ChildTable, record: &Record) -> Vec<Record> {
    let [pk] = stream.primary_key.as_slice() else {
        return Vec::new();
    };
    let Some(parent) = record.data.get(pk).filter(|v| !v.is_null()) else {
        return Vec::new();
    };
    child
        .rows(parent, &record.data)
        .into_iter()
        .map(|data| Record {
            stream: child.name.clone(),
            data,
            extracted_at: record.extracted_at,
            tombstone: false,
        })
        .collect()
}

/// The child tables of `stream` as streams of their own (name, JSON Schema of the
/// columns, primary key = parent key + index, no cursor), in [`Stream::children`] order,
/// each with its [`ChildTable`]: the tables every sink writes and `driftbridge catalog`
/// lists with a `parent`, for the protocol modes (Airbyte, Singer) to offer as streams.
pub fn child_streams(stream: &Stream) -> Vec<(ChildTable, Stream)> {
    stream
        .children
        .iter()
        .map(|c| (c.clone(), child_table(stream, c, "").stream))
        .collect()
}

/// The rows of child table `child` of `record` (a live record of `stream`) as records of
/// stream `child.name` whose fields are the child table's column names (parent key,
/// index, then each [`sync_core::ChildColumn`] read from its element field): the rows the
/// sinks write, from the same derivation ([`child_records`]), for the protocol modes. A
/// value absent from the element is absent from the record. A tombstone has none.
pub fn child_rows(stream: &Stream, child: &ChildTable, record: &Record) -> Vec<Record> {
    if record.tombstone {
        return Vec::new();
    }
    let columns = child_table(stream, child, "").columns;
    child_records(stream, child, record)
        .into_iter()
        .map(|row| {
            let data = columns
                .iter()
                .filter(|c| matches!(c.kind, ColumnKind::Value(_)))
                .filter_map(|c| c.value(&row.data).map(|v| (c.name.clone(), v.clone())))
                .collect();
            Record { data, ..row }
        })
        .collect()
}

/// What a sink does with a key of a flattened object (contacts' attributes) that has no
/// column yet: the data source's schema contract (`--schema-contract`, `"schema_contract"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaContract {
    /// A new key adds a nullable column, in the transaction of the batch that brings it
    /// (the default).
    #[default]
    Evolve,
    /// A new key fails the run before its batch is written, naming the key, the column
    /// and the fix.
    Freeze,
    /// New keys get no column: they stay in the object's own column and in `_raw`.
    Discard,
}

impl SchemaContract {
    /// `evolve`, `freeze` or `discard`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Evolve => "evolve",
            Self::Freeze => "freeze",
            Self::Discard => "discard",
        }
    }
}

impl std::str::FromStr for SchemaContract {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "evolve" => Ok(Self::Evolve),
            "freeze" => Ok(Self::Freeze),
            "discard" => Ok(Self::Discard),
            other => Err(format!(
                "unknown schema contract `{other}`: use evolve, freeze or discard"
            )),
        }
    }
}

/// The keys of `table`'s flattened object that `records` carry (non-null) and that have no
/// column yet, each with the first value seen, in key order.
pub(crate) fn new_keys<'r>(
    table: &TableDef,
    records: impl IntoIterator<Item = &'r Record>,
) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let Some(object) = table.stream.flatten.as_ref().map(|f| &f.field) else {
        return out;
    };
    for r in records {
        if r.tombstone || r.stream != table.stream.name {
            continue;
        }
        let Some(Value::Object(o)) = r.data.get(object) else {
            continue;
        };
        for (k, v) in o {
            if !v.is_null() && !table.flat_keys.contains(k) && !out.contains_key(k) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// The schema-contract step of a database sink for one table with a flattened object:
/// the keys of `records` without a column ([`new_keys`]) go through [`apply_contract`] on a
/// copy of `table`. `None` when nothing changes; else the new definition and the columns it
/// adds (the sink then alters its table and rebuilds its statements). `existing`: the
/// table's columns in the database, lowercase. Errors: `freeze` and a new key.
pub(crate) fn contract_step<'r>(
    table: &TableDef,
    records: impl IntoIterator<Item = &'r Record>,
    contract: SchemaContract,
    twin_suffix: &str,
    existing: Option<&HashSet<String>>,
) -> Result<Option<(TableDef, Vec<Column>)>, RunError> {
    let new = new_keys(table, records);
    if new.is_empty() {
        return Ok(None);
    }
    let mut def = table.clone();
    let empty = HashSet::new();
    let added = apply_contract(
        &mut def,
        &new,
        contract,
        twin_suffix,
        existing.unwrap_or(&empty),
    )?;
    if added.is_empty() && def.flat_keys == table.flat_keys {
        return Ok(None);
    }
    Ok(Some((def, added)))
}
/// Apply `contract` to the `new` keys of `table` (from [`new_keys`]): with `evolve`, give
/// each a column (typed from its first value, named as [`sync_core::Stream::flat_columns`]
/// names them) and return the columns to add (the caller adds those not in `existing`,
/// the table's column names in the database, lower case); with `discard` nothing; with
/// `freeze` an error, unless every such column already exists in the database (added by a
/// former run: adopted).
///
/// Errors: kind `Invalid`, `<stream>: new field `attributes.KEY` (column `COL`) ...`, naming
/// the fix (`--schema-contract evolve` or `discard`).
pub(crate) fn apply_contract(
    table: &mut TableDef,
    new: &BTreeMap<String, Value>,
    contract: SchemaContract,
    twin_suffix: &str,
    existing: &HashSet<String>,
) -> Result<Vec<Column>, RunError> {
    if new.is_empty() || contract == SchemaContract::Discard {
        return Ok(Vec::new());
    }
    let Some(object) = table.stream.flatten.as_ref().map(|f| f.field.clone()) else {
        return Ok(Vec::new());
    };
    let mut taken = sync_core::shape::reserved_names(table.columns.iter().map(|c| c.name.as_str()));
    let schemas: Vec<(String, Value)> = new
        .iter()
        .map(|(k, v)| (k.clone(), sync_core::shape::schema_of_value(v)))
        .collect();
    let assigned =
        sync_core::shape::assign_columns(schemas.iter().map(|(k, v)| (k, v)), &mut taken);
    // A column a former run added (its name in the database) is adopted under any contract.
    if contract == SchemaContract::Freeze {
        let list: Vec<String> = assigned
            .iter()
            .filter(|f| !existing.contains(&f.column.to_lowercase()))
            .map(|f| format!("`{object}.{}` (column `{}`)", f.key, f.column))
            .collect();
        if !list.is_empty() {
            return Err(RunError::new(
            ErrorKind::Invalid,
            Some(table.stream.name.as_str()),
            format!(
                "{}: new field{} {} not in the table and the schema contract is `freeze`; nothing of this batch was written: run with `--schema-contract evolve` to add the column{} (or `discard` to keep new fields only in `_raw`)",
                table.stream.name,
                if list.len() > 1 { "s" } else { "" },
                list.join(", "),
                if list.len() > 1 { "s" } else { "" },
            ),
        ));
        }
    }
    let mut added = Vec::new();
    for f in assigned {
        push_flat(
            &mut added,
            &object,
            &f.key,
            &f.column,
            &f.property,
            twin_suffix,
        );
        table.flat_keys.insert(f.key.clone());
        if let Some(flatten) = &mut table.stream.flatten {
            if let Some((_, schema)) = schemas.iter().find(|(k, _)| *k == f.key) {
                flatten.properties.insert(f.key.clone(), schema.clone());
            }
        }
    }
    table.columns.extend(added.iter().cloned());
    Ok(added)
}

/// Why a record cannot be written: a primary-key field is missing or null.
pub(crate) fn missing_key(primary_key: &[String], data: &Map<String, Value>) -> Option<String> {
    primary_key
        .iter()
        .find(|k| data.get(*k).is_none_or(Value::is_null))
        .map(|k| format!("primary key field `{k}` is missing or null"))
}

/// The primary key of a record as one string (the key fields' JSON joined by U+001F), for
/// comparing records by key.
pub(crate) fn key_of(primary_key: &[String], data: &Map<String, Value>) -> String {
    primary_key
        .iter()
        .map(|k| data.get(k).map(Value::to_string).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

/// For each of `records`, whether it is the last one in `records` with its key (`key` gives
/// it, stream included; `None`: no key, counted as last). Inside a batch the last operation
/// on a key wins: a tombstone followed by an upsert of the same key is superseded (the row
/// ends live), so sinks apply a tombstone only when it is the last of its key.
pub(crate) fn last_of_key(
    records: &[&Record],
    key: impl Fn(&Record) -> Option<String>,
) -> Vec<bool> {
    let keys: Vec<Option<String>> = records.iter().map(|r| key(r)).collect();
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        if let Some(k) = k {
            last.insert(k.as_str(), i);
        }
    }
    keys.iter()
        .enumerate()
        .map(|(i, k)| k.as_deref().is_none_or(|k| last.get(k) == Some(&i)))
        .collect()
}

/// The JSON value of a quarantined record's raw text: the JSON it holds, or the text itself
/// as a JSON string when it is not JSON (nothing is dropped).
pub(crate) fn raw_value(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
}

/// The RFC 3339 text of epoch milliseconds `ms`, or now when it is out of range.
pub(crate) fn rfc3339_or_now(ms: i64) -> String {
    epoch_ms_to_rfc3339(ms).unwrap_or_else(now_rfc3339)
}

/// A stable 64-bit FNV-1a hash of `bytes` (stored in files, so it must not change between
/// builds, unlike `std`'s hasher).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Epoch milliseconds from a JSON number (integers, or floats truncated).
pub(crate) fn epoch_ms(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

/// The RFC 3339 text of an epoch-millisecond value, or `None` when it is not a number in range.
pub(crate) fn iso(v: &Value) -> Option<String> {
    epoch_ms(v).and_then(epoch_ms_to_rfc3339)
}

/// Whether `value` fits a column of `kind` as the databases store it: like [`fits`], and
/// an integer also fits a number column. Used for the flattened columns
/// ([`Column::checked`]).
pub(crate) fn fits_loosely(value: &Value, kind: ColumnKind) -> bool {
    match kind {
        ColumnKind::Timestamp => value.is_null() || epoch_ms(value).is_some(),
        ColumnKind::Value(k) => fits(value, k),
    }
}

/// `value` as text for a text cell: strings as they are, objects and arrays as JSON text,
/// numbers and booleans as JSON spells them, null as `None`.
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Whether `value` fits a column of `kind` without losing anything (null fits every kind).
/// A value that does not fit is left out of the typed column; it stays in `_raw`.
pub(crate) fn fits(value: &Value, kind: PropertyKind) -> bool {
    match (kind, value) {
        (_, Value::Null) | (PropertyKind::Json, _) => true,
        (PropertyKind::Integer, Value::Number(n)) => n.is_i64(),
        (PropertyKind::Number, Value::Number(_)) => true,
        (PropertyKind::Boolean, Value::Bool(_)) => true,
        (PropertyKind::String, Value::String(_)) => true,
        _ => false,
    }
}

/// Now, RFC 3339 UTC with milliseconds.
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// What already holds a stream's table name in a database sink.
pub(crate) enum Existing {
    /// A table with these columns.
    Table(Vec<String>),
    /// Something that is not a table (a view, a sequence, ...), named as the database names it.
    Other(String),
}

/// Refuse to write into `existing`, the object named `table` in `place` (e.g. `other.db`,
/// ``schema `s` of host:5432/db as user``), unless it is a table with every [`META_COLUMNS`] column:
/// anything else was not created by driftbridge, and altering it (adding columns, upserting)
/// would damage data the user owns. Nothing is changed before this check, so the message can
/// say the table was left as it was. `fix` names where else to write (`choose another
/// database file`).
///
/// Errors: kind `Invalid` (the CLI exits 2), `<kind>: table `T` in PLACE was not created by driftbridge
/// (...); it was left unchanged: FIX, or rename or drop that table`.
pub(crate) fn refuse_foreign_table(
    kind: &str,
    place: &str,
    table: &str,
    existing: &Existing,
    fix: &str,
) -> Result<(), RunError> {
    refuse_unless(kind, place, table, existing, &META_COLUMNS, "adds", fix)
}

/// Refuse to use `existing`, named like one of driftbridge's bookkeeping tables
/// (`_driftbridge_state` with [`STATE_COLUMNS`], `_driftbridge_rejected` with
/// [`REJECTED_COLUMNS`]: `columns`), unless it is a table with every one of those columns:
/// anything else is the user's, and reading or writing it would fail halfway through a run
/// (or damage it). Same errors as [`refuse_foreign_table`].
pub(crate) fn refuse_foreign_bookkeeping(
    kind: &str,
    place: &str,
    table: &str,
    existing: &Existing,
    columns: &[&str],
    fix: &str,
) -> Result<(), RunError> {
    refuse_unless(kind, place, table, existing, columns, "creates", fix)
}

fn refuse_unless(
    kind: &str,
    place: &str,
    table: &str,
    existing: &Existing,
    required: &[&str],
    verb: &str,
    fix: &str,
) -> Result<(), RunError> {
    let why = match existing {
        Existing::Table(columns) => {
            let missing: Vec<&str> = required
                .iter()
                .copied()
                .filter(|m| !columns.iter().any(|c| c == m))
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            let plural = if missing.len() > 1 { "s" } else { "" };
            format!(
                "it lacks the column{plural} {} that driftbridge {verb}",
                missing.join(", ")
            )
        }
        Existing::Other(what) => format!("it is a {what}"),
    };
    Err(RunError::new(
        ErrorKind::Invalid,
        None,
        format!(
            "{kind}: table `{table}` in {place} was not created by driftbridge ({why}); it was left unchanged: {fix}, or rename or drop that table"
        ),
    ))
}

/// Refuse to write in history mode (`history`) into an existing stream table made without
/// it, or the reverse: a table's rows are either one per key or one per version, never
/// both. Errors: kind `Invalid`, naming the table and the fix.
pub(crate) fn refuse_other_history(
    kind: &str,
    place: &str,
    table: &str,
    existing: &Existing,
    history: bool,
) -> Result<(), RunError> {
    let Existing::Table(columns) = existing else {
        return Ok(());
    };
    let has = columns.iter().any(|c| c == HISTORY_COLUMNS[0]);
    if has == history {
        return Ok(());
    }
    let (made, asked) = if has {
        ("in history mode", "without history mode")
    } else {
        ("without history mode", "in history mode (--history)")
    };
    Err(RunError::new(
        ErrorKind::Invalid,
        None,
        format!(
            "{kind}: table `{table}` in {place} was created {made} and this run writes {asked}; it was left unchanged: write to another database or schema, or drop that table"
        ),
    ))
}

/// An error of kind `Sink`, prefixed with the sink kind and a context.
pub(crate) fn dest_err(kind: &str, context: &str, e: impl std::fmt::Display) -> RunError {
    RunError::new(ErrorKind::Sink, None, format!("{kind}: {context}: {e}"))
}
