//! Column mapping: input columns -> Drift attributes, with the type each must have.
//!
//! - `--map col=attribute[:type],...` or a mapping file (a JSON object `{"col":
//!   "attribute[:type]"}` or `col=attribute[:type]` lines, `#` comments).
//! - A column named like one of the object's standard Drift fields (`email`, `externalId`,
//!   `first_name`, `ownerId`, ...; compared ignoring case, `_`, `-` and spaces) maps to it
//!   without being listed.
//! - Any other column is *unmapped*: it is sent as a custom attribute under its own name only
//!   with `--include-unmapped`; otherwise it is left out and named in the run summary.
//! - Types: `string`, `email`, `domain` (a host name; a pasted `https://host/` is sent as
//!   `host`), `number`, `integer`, `boolean`, `date` (epoch ms or RFC 3339, sent as epoch ms). Standard fields have fixed types; custom contact attributes take the
//!   type Drift reports for them (`GET /contacts/attributes`, when the token may read it).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde_json::{Map, Value};

use crate::values::{convert, is_absent};
use crate::{Key, Object};

/// The type a value must have before it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// Any scalar, sent as text.
    String,
    /// An email address (syntax checked).
    Email,
    /// A domain name such as `example.com` (syntax checked; a pasted URL's `http(s)://` and
    /// trailing `/` are removed). An account's `domain` has this type.
    Domain,
    /// A number.
    Number,
    /// A whole number (ids).
    Integer,
    /// `true`/`false` (also yes/no, 1/0).
    Boolean,
    /// Epoch milliseconds or RFC 3339, sent as epoch milliseconds.
    Date,
    /// As read (JSONL/SQL types kept, CSV text trimmed).
    Any,
}

impl FieldType {
    /// Parses a type name of a mapping entry.
    pub fn parse(text: &str) -> Option<FieldType> {
        match text.trim().to_ascii_lowercase().as_str() {
            "string" | "text" => Some(FieldType::String),
            "email" => Some(FieldType::Email),
            "domain" | "hostname" => Some(FieldType::Domain),
            "number" | "numeric" | "float" => Some(FieldType::Number),
            "integer" | "int" => Some(FieldType::Integer),
            "boolean" | "bool" => Some(FieldType::Boolean),
            "date" | "datetime" | "timestamp" => Some(FieldType::Date),
            _ => None,
        }
    }

    /// From a Drift custom-attribute type (`STRING, NUMERIC, BOOLEAN, DATETIME, DATE`).
    pub fn from_drift(text: &str) -> FieldType {
        match text.to_ascii_uppercase().as_str() {
            "NUMERIC" | "NUMBER" => FieldType::Number,
            "BOOLEAN" => FieldType::Boolean,
            "DATETIME" | "DATE" => FieldType::Date,
            "EMAIL" => FieldType::Email,
            _ => FieldType::Any,
        }
    }
}

/// A mapping that cannot be used; the message names the entry and the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MappingError(pub String);

/// One mapping entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    column: String,
    attribute: String,
    ty: Option<FieldType>,
}

/// The user's mapping (`--map` and/or a mapping file).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    entries: Vec<Entry>,
}

impl Mapping {
    /// Parses `col=attribute[:type],col2=attribute2`. Errors name the bad entry.
    pub fn parse_pairs(text: &str) -> Result<Mapping, MappingError> {
        let mut m = Mapping::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            m.add(part)?;
        }
        Ok(m)
    }

    /// Reads a mapping file: a JSON object `{"col": "attribute[:type]"}`, or lines
    /// `col=attribute[:type]` (blank lines and `#` comments ignored).
    pub fn from_file(path: &Path) -> Result<Mapping, MappingError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            MappingError(format!("cannot read mapping file {}: {e}", path.display()))
        })?;
        let mut m = Mapping::default();
        if text.trim_start().starts_with('{') {
            let obj: Map<String, Value> = serde_json::from_str(&text).map_err(|e| {
                MappingError(format!(
                    "mapping file {} is not a JSON object of strings: {e}",
                    path.display()
                ))
            })?;
            for (col, attr) in obj {
                let attr = attr.as_str().ok_or_else(|| {
                    MappingError(format!(
                        "mapping file: `{col}` must map to a string attribute name"
                    ))
                })?;
                m.add(&format!("{col}={attr}"))?;
            }
        } else {
            for line in text.lines().map(str::trim) {
                if !line.is_empty() && !line.starts_with('#') {
                    m.add(line)?;
                }
            }
        }
        Ok(m)
    }

    /// Adds the entries of `other` (later entries win for the same column).
    pub fn extend(&mut self, other: Mapping) {
        for e in other.entries {
            self.entries.retain(|x| x.column != e.column);
            self.entries.push(e);
        }
    }

    /// The mapped columns, in order.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.column.as_str())
    }

    /// `(column, attribute)` of each entry, in order (the attribute without its `:type`).
    pub fn targets(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|e| (e.column.as_str(), e.attribute.as_str()))
    }

    /// Whether `attribute` is one of `object`'s standard fields as the mapper matches them
    /// (ignoring case, `_`, `-` and spaces): such a target never creates a custom attribute.
    pub fn is_standard(object: Object, attribute: &str) -> bool {
        let wanted = loose(attribute);
        standard_fields(object)
            .iter()
            .any(|(name, _)| loose(name) == wanted)
    }

    /// `col=attribute[:type]` entries, for saving a push destination.
    pub fn to_pairs(&self) -> String {
        self.entries
            .iter()
            .map(|e| match e.ty {
                Some(t) => format!("{}={}:{}", e.column, e.attribute, type_name(t)),
                None => format!("{}={}", e.column, e.attribute),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn add(&mut self, part: &str) -> Result<(), MappingError> {
        let (col, target) = part.split_once('=').ok_or_else(|| {
            MappingError(format!(
                "mapping entry `{part}` needs the form column=attribute[:type]"
            ))
        })?;
        let (attr, ty) = match target.rsplit_once(':') {
            Some((a, t)) => {
                let ty = FieldType::parse(t).ok_or_else(|| {
                    MappingError(format!(
                        "mapping entry `{part}`: unknown type `{t}` (string, email, domain, number, integer, boolean, date)"
                    ))
                })?;
                (a, Some(ty))
            }
            None => (target, None),
        };
        let (col, attr) = (col.trim(), attr.trim());
        if col.is_empty() || attr.is_empty() {
            return Err(MappingError(format!(
                "mapping entry `{part}` needs both a column and an attribute"
            )));
        }
        self.entries.retain(|x| x.column != col);
        self.entries.push(Entry {
            column: col.to_string(),
            attribute: attr.to_string(),
            ty,
        });
        Ok(())
    }
}

fn type_name(t: FieldType) -> &'static str {
    match t {
        FieldType::String => "string",
        FieldType::Email => "email",
        FieldType::Domain => "domain",
        FieldType::Number => "number",
        FieldType::Integer => "integer",
        FieldType::Boolean => "boolean",
        FieldType::Date => "date",
        FieldType::Any => "string",
    }
}

/// Standard fields of an object and their types (REFERENCE §7.1-§7.3).
pub fn standard_fields(object: Object) -> &'static [(&'static str, FieldType)] {
    use FieldType::*;
    match object {
        Object::Contacts => &[
            ("email", Email),
            ("externalId", String),
            ("name", String),
            ("first_name", String),
            ("last_name", String),
            ("phone", String),
            ("employment_title", String),
            ("employment_name", String),
            ("display_location", String),
            ("start_date", Date),
            ("last_active", Date),
            ("last_contacted", Date),
        ],
        Object::Accounts => &[
            ("accountId", String),
            ("domain", Domain),
            ("name", String),
            ("ownerId", Integer),
            ("targeted", Boolean),
        ],
        Object::Timeline => &[
            ("contactId", Integer),
            ("externalId", String),
            ("event", String),
            ("createdAt", Date),
        ],
        Object::Conversations => &[("email", Email), ("body", String)],
    }
}

/// Lower-case alphanumerics only: `First Name`, `first_name`, `firstName` all match.
fn loose(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A row after mapping and type checks.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Prepared {
    pub row: u64,
    /// The key value as text (`None` when the row has none).
    pub key: Option<String>,
    /// Standard Drift fields, typed.
    pub fields: Map<String, Value>,
    /// Custom attributes (explicitly mapped non-standard targets and, with
    /// `--include-unmapped`, unmapped columns under their own names).
    pub custom: Map<String, Value>,
    /// The input row as read.
    pub input: Map<String, Value>,
}

/// Applies a [`Mapping`] to rows of one object.
#[derive(Debug)]
pub struct Mapper {
    object: Object,
    key: Key,
    by_column: HashMap<String, (String, Option<FieldType>)>,
    standard: HashMap<String, (&'static str, FieldType)>,
    custom_types: HashMap<String, FieldType>,
    include_unmapped: bool,
    ignored: BTreeSet<String>,
}

impl Mapper {
    /// A mapper for `object` matched on `key`.
    pub fn new(object: Object, key: Key, mapping: &Mapping, include_unmapped: bool) -> Mapper {
        Mapper {
            object,
            key,
            by_column: mapping
                .entries
                .iter()
                .map(|e| (e.column.clone(), (e.attribute.clone(), e.ty)))
                .collect(),
            standard: standard_fields(object)
                .iter()
                .map(|(name, ty)| (loose(name), (*name, *ty)))
                .collect(),
            custom_types: HashMap::new(),
            include_unmapped,
            ignored: BTreeSet::new(),
        }
    }

    /// Types of custom attributes as Drift reports them (`name` -> type).
    pub fn with_custom_types(mut self, types: HashMap<String, FieldType>) -> Mapper {
        self.custom_types = types;
        self
    }

    /// Checks that every mapped column exists in an input whose columns are known.
    pub fn check_columns(&self, columns: &[String]) -> Result<(), MappingError> {
        let mut missing: Vec<&str> = self
            .by_column
            .keys()
            .filter(|c| !columns.iter().any(|x| x == *c))
            .map(String::as_str)
            .collect();
        missing.sort_unstable();
        match missing.first() {
            None => Ok(()),
            Some(_) => Err(MappingError(format!(
                "--map names column(s) {} that the input does not have (columns: {})",
                missing.join(", "),
                columns.join(", ")
            ))),
        }
    }

    /// Columns left out because they were neither mapped nor standard (and
    /// `--include-unmapped` was not given).
    pub fn ignored_columns(&self) -> Vec<String> {
        self.ignored.iter().cloned().collect()
    }

    /// Where a column goes: `(attribute, type, is_standard)`, or `None` to leave it out.
    fn target(&mut self, column: &str) -> Option<(String, FieldType, bool)> {
        if let Some((attr, ty)) = self.by_column.get(column) {
            let std = self.standard.get(&loose(attr)).copied();
            return Some(match std {
                Some((name, sty)) => (name.to_string(), ty.unwrap_or(sty), true),
                None => (attr.clone(), ty.unwrap_or(self.custom_type(attr)), false),
            });
        }
        if let Some((name, ty)) = self.standard.get(&loose(column)).copied() {
            return Some((name.to_string(), ty, true));
        }
        if self.include_unmapped {
            return Some((column.to_string(), self.custom_type(column), false));
        }
        if !self.ignored.contains(column) {
            self.ignored.insert(column.to_string());
        }
        None
    }

    fn custom_type(&self, attr: &str) -> FieldType {
        self.custom_types
            .get(attr)
            .copied()
            .unwrap_or(FieldType::Any)
    }

    /// Maps and type-checks one row's columns (standalone use, e.g. a preview): the key
    /// value and every attribute that would be sent, standard and custom together.
    /// Errors: every bad value of the row, `; `-joined.
    pub fn apply(
        &mut self,
        fields: Map<String, Value>,
    ) -> Result<(Option<String>, Map<String, Value>), String> {
        let row = crate::Row {
            number: 0,
            fields,
            prior: None,
        };
        let p = self.prepare(row).map_err(|(_, reason)| reason)?;
        let mut all = p.custom;
        all.extend(p.fields);
        Ok((p.key, all))
    }

    /// Maps and type-checks one row. Errors: every bad value of the row, `; `-joined, each
    /// naming the column, the attribute and the expected form.
    pub(crate) fn prepare(
        &mut self,
        row: crate::Row,
    ) -> Result<Prepared, (Option<String>, String)> {
        let mut fields = Map::new();
        let mut custom = Map::new();
        let mut errors = Vec::new();
        for (column, value) in &row.fields {
            let Some((attr, ty, standard)) = self.target(column) else {
                continue;
            };
            match convert(value, ty) {
                Ok(Some(v)) if standard => {
                    fields.insert(attr, v);
                }
                Ok(Some(v)) => {
                    custom.insert(attr, v);
                }
                Ok(None) => {}
                Err(reason) => errors.push(if column == &attr {
                    format!("{column}: {reason}")
                } else {
                    format!("column {column} (attribute {attr}): {reason}")
                }),
            }
        }
        let key = fields.get(self.key.field()).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        if !errors.is_empty() {
            return Err((key, errors.join("; ")));
        }
        let _ = self.object;
        Ok(Prepared {
            row: row.number,
            key,
            fields,
            custom,
            input: row.fields,
        })
    }
}

/// True when every value of the row is absent (an empty line of a spreadsheet export).
pub(crate) fn all_absent(fields: &Map<String, Value>) -> bool {
    fields.values().all(is_absent)
}
