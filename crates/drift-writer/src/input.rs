//! Streaming readers of push input: CSV, JSONL, a SQLite table or query, and a results file
//! of an earlier push (to re-feed its rejected rows).
//!
//! Every reader yields one [`RowResult`] per input row and holds at most one row (plus the
//! reader's buffer) in memory, so a million-row file costs no more memory than a ten-row one.
//! A row that cannot be read (bad JSON, wrong number of CSV fields, an unterminated quote or
//! a quote not doubled inside a quoted value, invalid UTF-8) is an `Err` carrying its row number and its raw text
//! ([`InputError::input`]): the writer rejects that row, keeps the raw text in the results
//! file, and goes on. Re-feeding that results file reads the raw text again the same way, so
//! the row is rejected again with the same reason until it is fixed (see
//! [`crate::results`]).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};

use serde_json::{Map, Number, Value};

use crate::results::RESULTS_COLUMNS;
use crate::unreadable::{Unreadable, NOT_UTF8};
use crate::OutcomeKind;

/// Largest input row accepted, in bytes (1 MiB). A Drift record is a few kilobytes; a
/// longer row is rejected with its row number instead of being sent, echoed into the results
/// file and printed by `--dry-run` (a 100 MB cell made writing the results file take hours).
pub const MAX_ROW_BYTES: usize = 1024 * 1024;

/// A row over [`MAX_ROW_BYTES`]; its text is not kept (only its length).
pub(crate) fn too_long(number: u64, bytes: usize) -> InputError {
    InputError::unreadable(
        number,
        Unreadable::too_long_reason(bytes),
        &Unreadable::TooLong { bytes },
    )
}

/// Where push input comes from (the `--from` value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputSpec {
    /// A CSV file with a header row (`.csv`, or anything not named below).
    Csv(PathBuf),
    /// One JSON object per line (`.jsonl`, `.ndjson`).
    Jsonl(PathBuf),
    /// `sqlite:PATH?table=T` or `sqlite:PATH?query=SELECT...` (the query URL-encoded or not).
    Sqlite {
        /// Database file.
        path: PathBuf,
        /// What to read.
        source: SqlSource,
    },
    /// `postgres://user@host:5432/db?table=T` or `?query=SELECT...` (cargo feature
    /// `postgres`; other URL parameters go to tokio-postgres).
    Postgres {
        /// Connection URL without `table`/`query` (its `Debug` masks the password).
        url: ConnUrl,
        /// What to read.
        source: SqlSource,
    },
}

/// A database connection URL; `Debug` shows it with the password masked.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnUrl(pub String);

impl std::fmt::Debug for ConnUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match url::Url::parse(&self.0) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("****"));
                write!(f, "{u}")
            }
            _ => write!(f, "{}", self.0),
        }
    }
}

/// A table or a query of a database input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqlSource {
    /// Every row of a table.
    Table(String),
    /// The rows of a `SELECT`.
    Query(String),
}

/// One input row: its 1-based number and its columns. CSV values are strings (an empty
/// cell is `""`, treated as absent by the mapping); JSONL and SQLite values keep their
/// JSON / SQL types.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// 1-based row number (CSV: data rows after the header; JSONL: line number; SQL: result
    /// row; results file: the original row number).
    pub number: u64,
    /// Column name -> value, in input order.
    pub fields: Map<String, Value>,
    /// The outcome an earlier push gave this row, when the input is a results file.
    pub prior: Option<OutcomeKind>,
}

/// A row, or why it could not be read.
pub type RowResult = Result<Row, InputError>;

/// Input that cannot be read. `row` is set for a problem with one row (the run goes on and
/// rejects that row) and `None` for a problem with the whole input (nothing is read).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}{message}", row.map(|r| format!("row {r}: ")).unwrap_or_default())]
pub struct InputError {
    /// The row at fault, if the problem is limited to one row.
    pub row: Option<u64>,
    /// What is wrong and how to fix it.
    pub message: String,
    /// What the results file keeps as the row's `input`: for a row that could not be read,
    /// its raw text (`{"_raw": "LINE", ...}`, see [`crate::results`]) so that re-feeding the
    /// results file rejects it again instead of losing it; empty when there is no row.
    pub input: Map<String, Value>,
    /// The outcome an earlier push gave the row, when the input is a results file (so
    /// `--only` can leave the row out like any other).
    pub prior: Option<OutcomeKind>,
}

impl InputError {
    /// A problem with the whole input.
    pub(crate) fn whole(message: impl Into<String>) -> InputError {
        InputError {
            row: None,
            message: message.into(),
            input: Map::new(),
            prior: None,
        }
    }

    /// A problem with row `row`, with nothing of the row to keep.
    pub(crate) fn at(row: u64, message: impl Into<String>) -> InputError {
        InputError {
            row: Some(row),
            message: message.into(),
            input: Map::new(),
            prior: None,
        }
    }

    /// Row `row` could not be read; the results file keeps `raw`.
    pub(crate) fn unreadable(row: u64, message: impl Into<String>, raw: &Unreadable) -> InputError {
        InputError {
            input: raw.to_input(),
            ..InputError::at(row, message)
        }
    }

    fn with_prior(self, prior: OutcomeKind) -> InputError {
        InputError {
            prior: Some(prior),
            ..self
        }
    }
}

/// An opened input: its rows and whether it is a results file of an earlier push.
pub struct Input {
    /// The rows, streamed.
    pub rows: Box<dyn Iterator<Item = RowResult> + Send>,
    /// True when the input is a results file (`row,key,outcome,drift_id,reason,input`);
    /// its rows carry [`Row::prior`].
    pub is_results: bool,
    /// Column names when known up front (CSV header, SQL columns); `None` for JSONL.
    pub columns: Option<Vec<String>>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("is_results", &self.is_results)
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}

impl InputSpec {
    /// Parses a `--from` value: `sqlite:PATH?table=T`, `sqlite:PATH?query=...`, a `.jsonl` /
    /// `.ndjson` path, `postgres://...?table=T|query=...`, or any other path as CSV. Errors
    /// name the fix.
    pub fn parse(text: &str) -> Result<InputSpec, InputError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(InputError::whole(
                "--from is empty: give a CSV or JSONL file, or sqlite:PATH?table=T",
            ));
        }
        if let Some(rest) = text.strip_prefix("sqlite:") {
            return parse_sqlite(rest);
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return parse_postgres(text);
        }
        let path = PathBuf::from(text);
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        Ok(match ext.as_str() {
            "jsonl" | "ndjson" => InputSpec::Jsonl(path),
            _ => InputSpec::Csv(path),
        })
    }

    /// Opens the input for streaming. Errors (whole input): missing file, unreadable header,
    /// duplicate or empty column names, unknown table, bad query.
    pub fn open(&self) -> Result<Input, InputError> {
        match self {
            InputSpec::Csv(path) => crate::input_csv::open(path),
            InputSpec::Jsonl(path) => open_jsonl(path),
            InputSpec::Sqlite { path, source } => open_sqlite(path, source),
            #[cfg(feature = "postgres")]
            InputSpec::Postgres { url, source } => crate::input_pg::open(&url.0, source),
            #[cfg(not(feature = "postgres"))]
            InputSpec::Postgres { .. } => Err(InputError::whole(
                "this build has no PostgreSQL support (cargo feature `postgres` of source-drift)",
            )),
        }
    }
}

impl InputSpec {
    /// The local file the input is read from (CSV, JSONL or SQLite database); `None` for a
    /// PostgreSQL server. Used to refuse a results file that would overwrite the input.
    pub fn file(&self) -> Option<&Path> {
        match self {
            InputSpec::Csv(path) | InputSpec::Jsonl(path) | InputSpec::Sqlite { path, .. } => {
                Some(path)
            }
            InputSpec::Postgres { .. } => None,
        }
    }
}

fn parse_sqlite(rest: &str) -> Result<InputSpec, InputError> {
    let usage = "use sqlite:PATH?table=TABLE or sqlite:PATH?query=SELECT...";
    let (path, query) = rest
        .split_once('?')
        .ok_or_else(|| InputError::whole(format!("--from sqlite: names no table; {usage}")))?;
    let path = path.strip_prefix("//").unwrap_or(path);
    if path.is_empty() {
        return Err(InputError::whole(format!(
            "--from sqlite: names no file; {usage}"
        )));
    }
    let source = if let Some(t) = query.strip_prefix("table=") {
        SqlSource::Table(decode(t))
    } else if let Some(q) = query.strip_prefix("query=") {
        SqlSource::Query(decode(q))
    } else {
        return Err(InputError::whole(format!(
            "--from sqlite:{path}?{query}: unknown parameter; {usage}"
        )));
    };
    Ok(InputSpec::Sqlite {
        path: PathBuf::from(path),
        source,
    })
}

/// Percent-decodes a query value (a raw value without `%` escapes is kept as is).
fn parse_postgres(text: &str) -> Result<InputSpec, InputError> {
    let usage = "use postgres://user@host:5432/db?table=TABLE or ?query=SELECT...";
    let mut url = url::Url::parse(text).map_err(|e| {
        InputError::whole(format!("--from: not a valid PostgreSQL URL ({e}); {usage}"))
    })?;
    let mut source = None;
    let mut rest = Vec::new();
    for (k, v) in url.query_pairs() {
        let next = match k.as_ref() {
            "table" => SqlSource::Table(v.into_owned()),
            "query" => SqlSource::Query(v.into_owned()),
            _ => {
                rest.push((k.into_owned(), v.into_owned()));
                continue;
            }
        };
        if source.is_some() {
            return Err(InputError::whole(format!(
                "--from postgres names more than one table or query; keep one: {usage}"
            )));
        }
        source = Some(next);
    }
    let source = source
        .ok_or_else(|| InputError::whole(format!("--from postgres names no table; {usage}")))?;
    url.set_query(None);
    if !rest.is_empty() {
        url.query_pairs_mut().extend_pairs(rest);
    }
    Ok(InputSpec::Postgres {
        url: ConnUrl(url.to_string()),
        source,
    })
}

fn decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("v={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| text.to_string())
}

pub(crate) fn open_file(path: &Path) -> Result<File, InputError> {
    File::open(path)
        .map_err(|e| InputError::whole(format!("cannot open --from {}: {e}", path.display())))
}

pub(crate) fn check_columns(columns: &[String], source: &str) -> Result<(), InputError> {
    let mut seen = std::collections::HashSet::new();
    for (i, c) in columns.iter().enumerate() {
        if c.is_empty() {
            return Err(InputError::whole(format!(
                "{source}: column {} has no name; every column needs a header",
                i + 1
            )));
        }
        if !seen.insert(c.as_str()) {
            return Err(InputError::whole(format!(
                "{source}: column `{c}` appears twice; rename one"
            )));
        }
    }
    Ok(())
}

/// A row of a results file: `row`, `outcome` and the original `input` (JSON) restored.
/// A row the earlier push could not read (`input` holds its raw text) is read again from
/// that text, as the first push read it: still broken, it is an `Err` with the same reason.
pub(crate) fn results_row(line: u64, fields: Map<String, Value>) -> RowResult {
    let text = |k: &str| match fields.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let number = text("row")
        .parse::<u64>()
        .map_err(|_| InputError::at(line, "results file: `row` is not a row number"))?;
    let prior = OutcomeKind::parse(&text("outcome"))
        .ok_or_else(|| InputError::at(number, "results file: unknown `outcome`"))?;
    let input = match fields.get("input") {
        Some(Value::Object(o)) => o.clone(),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(o)) => o,
            _ => {
                return Err(
                    InputError::at(number, "results file: `input` is not a JSON object")
                        .with_prior(prior),
                )
            }
        },
        _ => {
            return Err(InputError::at(number, "results file: `input` is missing").with_prior(prior))
        }
    };
    if let Some(raw) = Unreadable::from_input(&input) {
        return match raw.reread() {
            Ok(fields) => Ok(Row {
                number,
                fields,
                prior: Some(prior),
            }),
            Err(message) => Err(InputError::unreadable(number, message, &raw).with_prior(prior)),
        };
    }
    if input.is_empty() && prior == OutcomeKind::Rejected {
        // Only an unreadable row is rejected with nothing kept (results files written
        // before unreadable rows kept their raw text); it must not turn into "empty row".
        return Err(InputError::at(
            number,
            "results file: `input` is empty because the earlier push could not read this row; \
             fix the row in the original file and push that file again",
        )
        .with_prior(prior));
    }
    Ok(Row {
        number,
        fields: input,
        prior: Some(prior),
    })
}

/// One JSONL line as a row's columns; errors say what is wrong with the line.
pub(crate) fn json_object(line: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err("is not a JSON object".into()),
        Err(e) => Err(format!("is not valid JSON: {e}")),
    }
}

fn open_jsonl(path: &Path) -> Result<Input, InputError> {
    let mut reader = BufReader::with_capacity(64 * 1024, open_file(path)?);
    skip_bom(&mut reader);
    let mut lines = reader.split(b'\n').enumerate().peekable();
    let is_results = match lines.peek() {
        Some((_, Ok(first))) => serde_json::from_slice::<Map<String, Value>>(first)
            .is_ok_and(|o| RESULTS_COLUMNS.iter().all(|c| o.contains_key(*c))),
        _ => false,
    };
    let display = path.display().to_string();
    let mut failed = false;
    let rows = lines.map_while(move |(i, line)| {
        if failed {
            return None;
        }
        let number = i as u64 + 1;
        let mut line = match line {
            Ok(l) => l,
            Err(e) => {
                // The rest of the file cannot be read: stop rather than drop rows silently.
                failed = true;
                return Some(Some(Err(InputError::whole(format!(
                    "cannot read {display} after line {}: {e}",
                    number - 1
                )))));
            }
        };
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            return Some(None);
        }
        Some(Some(jsonl_row(number, line, is_results)))
    });
    Ok(Input {
        rows: Box::new(rows.flatten()),
        is_results,
        columns: None,
    })
}

/// Skips a UTF-8 byte order mark at the start of the input (Windows editors write one; the
/// CSV reader skips it too). A read error is left for the first line to report.
fn skip_bom(reader: &mut impl BufRead) {
    if reader
        .fill_buf()
        .is_ok_and(|b| b.starts_with(b"\xEF\xBB\xBF"))
    {
        reader.consume(3);
    }
}

/// One non-blank JSONL line (without its line ending) as a row.
fn jsonl_row(number: u64, line: Vec<u8>, is_results: bool) -> RowResult {
    if !is_results && line.len() > MAX_ROW_BYTES {
        return Err(too_long(number, line.len()));
    }
    let text = match String::from_utf8(line) {
        Ok(t) => t,
        Err(e) => {
            let raw = Unreadable::Jsonl {
                raw: String::from_utf8_lossy(e.as_bytes()).into_owned(),
            };
            return Err(InputError::unreadable(number, NOT_UTF8, &raw));
        }
    };
    match json_object(&text) {
        Ok(fields) if is_results => results_row(number, fields),
        Ok(fields) => Ok(Row {
            number,
            fields,
            prior: None,
        }),
        Err(message) if is_results => Err(InputError::at(number, message)),
        Err(message) => Err(InputError::unreadable(
            number,
            message,
            &Unreadable::Jsonl { raw: text },
        )),
    }
}

fn open_sqlite(path: &Path, source: &SqlSource) -> Result<Input, InputError> {
    if !path.exists() {
        return Err(InputError::whole(format!(
            "--from sqlite:{}: no such database file",
            path.display()
        )));
    }
    let sql = match source {
        SqlSource::Table(t) => format!("SELECT * FROM \"{}\"", t.replace('"', "\"\"")),
        SqlSource::Query(q) => q.clone(),
    };
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| InputError::whole(format!("cannot open {}: {e}", path.display())))?;
    let columns: Vec<String> = {
        let stmt = conn
            .prepare(&sql)
            .map_err(|e| InputError::whole(format!("--from sqlite:{}: {e}", path.display())))?;
        stmt.column_names()
            .into_iter()
            .map(str::to_string)
            .collect()
    };
    check_columns(&columns, &path.display().to_string())?;
    let (tx, rx) = sync_channel::<RowResult>(256);
    let cols = columns.clone();
    std::thread::spawn(move || {
        if let Err(e) = stream_sql(&conn, &sql, &cols, &tx) {
            let _ = tx.send(Err(InputError::whole(format!(
                "reading the query failed: {e}"
            ))));
        }
    });
    Ok(Input {
        rows: Box::new(ChannelRows(rx)),
        is_results: false,
        columns: Some(columns),
    })
}

pub(crate) struct ChannelRows(pub(crate) Receiver<RowResult>);

impl Iterator for ChannelRows {
    type Item = RowResult;
    fn next(&mut self) -> Option<RowResult> {
        self.0.recv().ok()
    }
}

fn stream_sql(
    conn: &rusqlite::Connection,
    sql: &str,
    columns: &[String],
    tx: &std::sync::mpsc::SyncSender<RowResult>,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([])?;
    let mut number = 0u64;
    while let Some(r) = rows.next()? {
        number += 1;
        let mut fields = Map::new();
        for (i, name) in columns.iter().enumerate() {
            fields.insert(name.clone(), sql_value(r.get_ref(i)?));
        }
        let row = Row {
            number,
            fields,
            prior: None,
        };
        if tx.send(Ok(row)).is_err() {
            break; // the run stopped reading
        }
    }
    Ok(())
}

fn sql_value(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Number(i.into()),
        ValueRef::Real(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            Value::String(String::from_utf8_lossy(t).into_owned())
        }
    }
}
