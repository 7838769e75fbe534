//! CSV input: a header row, then one row per record.
//!
//! Records are read as bytes with a flexible field count, and checked here rather than by
//! the csv crate: when the crate rejects a record (wrong field count, bad UTF-8) the record
//! is gone, and the results file could not keep the row. Checked in this order, the same
//! when a kept row is read again from a results file ([`reread`]):
//!
//! 1. an unterminated quote: a quoted value that is never closed runs to the end of the
//!    file. The csv crate does not report it (it ends the record at the end of the file and
//!    reports at most a field count), so the record's raw bytes are scanned for a quote
//!    still open at the end;
//! 2. a quote inside a quoted value that is not doubled (`"Dave "the" man"`): the csv crate
//!    reads on after the closing quote and garbles the value (`Dave the" man"`), so the raw
//!    bytes are scanned for text between a closing quote and the next delimiter;
//! 3. the field count against the header;
//! 4. UTF-8.
//!
//! Each record's raw text comes from [`Tee`], which keeps the bytes the csv reader has read
//! but not yet consumed (its read-ahead plus the current record), so pipes are checked the
//! same way as files.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use csv::ByteRecord;
use serde_json::{Map, Value};

use crate::input::{
    check_columns, open_file, results_row, too_long, Input, InputError, Row, RowResult,
    MAX_ROW_BYTES,
};
use crate::results::RESULTS_COLUMNS;
use crate::unreadable::{Unreadable, NOT_UTF8};

const UNTERMINATED: &str = "has a quote that is never closed, so its value runs to the end of \
     the file and takes in every line after it; close the quote (a quote inside a quoted \
     value is written twice: \"\")";

const QUOTE_NOT_DOUBLED: &str = "has a quote inside the quoted value that is not doubled, so \
     the value would be cut at that quote; write a quote inside a quoted value twice (\"\"), \
     e.g. \"Dave \"\"the\"\" man\"";

/// Opens a CSV file with a header row. Errors: an empty file (no header row to map the
/// columns from), an unreadable header, empty or duplicate column names.
pub(crate) fn open(path: &Path) -> Result<Input, InputError> {
    let file = open_file(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .buffer_capacity(64 * 1024)
        .from_reader(Tee::new(file));
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| InputError::whole(format!("{}: cannot read the header: {e}", path.display())))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if headers.is_empty() {
        return Err(InputError::whole(format!(
            "{}: the file is empty, so it has no header row to map the columns from; put the \
             column names on the first line (e.g. email,name) and the rows after it",
            path.display()
        )));
    }
    check_columns(&headers, &path.display().to_string())?;
    let is_results = headers.len() == RESULTS_COLUMNS.len()
        && headers.iter().zip(RESULTS_COLUMNS).all(|(a, b)| a == b);
    let mut rows = CsvRows {
        reader,
        path: path.to_path_buf(),
        columns: headers.clone(),
        is_results,
        number: 0,
        record: ByteRecord::new(),
    };
    Ok(Input {
        rows: Box::new(std::iter::from_fn(move || rows.next_row())),
        is_results,
        columns: Some(headers),
    })
}

/// The input as the csv reader reads it, keeping the bytes read from stream offset `base`
/// on, so that a record's raw text can be taken by the byte range the reader reports.
struct Tee {
    inner: File,
    kept: Vec<u8>,
    /// Stream offset of `kept[0]`.
    base: u64,
}

impl Tee {
    fn new(inner: File) -> Tee {
        Tee {
            inner,
            kept: Vec::new(),
            base: 0,
        }
    }

    /// The bytes `start .. end` of the stream (a record the reader just read), then forgets
    /// the bytes before `end` (dropped in bulk, so a record costs no shifting).
    fn take(&mut self, start: u64, end: u64) -> &[u8] {
        if end.saturating_sub(self.base) > 256 * 1024 && start > self.base {
            let drop = usize::try_from(start - self.base)
                .unwrap_or(0)
                .min(self.kept.len());
            self.kept.drain(..drop);
            self.base += drop as u64;
        }
        let from = usize::try_from(start.saturating_sub(self.base)).unwrap_or(usize::MAX);
        let to = usize::try_from(end.saturating_sub(self.base)).unwrap_or(usize::MAX);
        self.kept
            .get(from.min(self.kept.len())..to.min(self.kept.len()))
            .unwrap_or_default()
    }
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.kept.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

struct CsvRows {
    reader: csv::Reader<Tee>,
    path: PathBuf,
    columns: Vec<String>,
    is_results: bool,
    number: u64,
    record: ByteRecord,
}

impl CsvRows {
    fn next_row(&mut self) -> Option<RowResult> {
        let start = self.reader.position().byte();
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => {}
            Ok(false) => return None,
            // The csv reader reads nothing after an I/O error: stop the run rather than
            // end it as if the file were complete.
            Err(e) => {
                return Some(Err(InputError::whole(format!(
                    "cannot read {} after row {}: {e}",
                    self.path.display(),
                    self.number
                ))))
            }
        }
        self.number += 1;
        let number = self.number;
        let end = self.reader.position().byte();
        let span = usize::try_from(end.saturating_sub(start)).unwrap_or(usize::MAX);
        if !self.is_results && span > MAX_ROW_BYTES {
            return Some(Err(too_long(number, span)));
        }
        let raw = self.reader.get_mut().take(start, end);
        let checked = check(&self.record, &self.columns, Some(raw), false);
        Some(match checked {
            Ok(fields) if self.is_results => results_row(number, fields),
            Ok(fields) => Ok(Row {
                number,
                fields,
                prior: None,
            }),
            // A broken line of a results file is not an input row: nothing to keep.
            Err(message) if self.is_results => Err(InputError::at(number, message)),
            Err(message) => {
                let kept = Unreadable::Csv {
                    raw: trim_line_ends(&String::from_utf8_lossy(raw)).to_string(),
                    columns: self.columns.clone(),
                };
                Err(InputError::unreadable(number, message, &kept))
            }
        })
    }
}

/// A record's columns, or why it cannot be used (see the module docs for the order).
/// `raw`: the record's raw bytes (line ending included), checked for quoting mistakes. `kept`: the record
/// comes from text a results file kept, where U+FFFD stands for bytes that were not UTF-8.
fn check(
    record: &ByteRecord,
    columns: &[String],
    raw: Option<&[u8]>,
    kept: bool,
) -> Result<Map<String, Value>, String> {
    if raw.is_some_and(ends_in_open_quote) {
        return Err(UNTERMINATED.into());
    }
    if let Some(column) = raw.and_then(quote_not_doubled) {
        let name = columns
            .get(column)
            .map(|c| format!(" `{c}`"))
            .unwrap_or_default();
        return Err(format!("column {}{name} {QUOTE_NOT_DOUBLED}", column + 1));
    }
    if record.len() != columns.len() {
        return Err(format!(
            "has {} fields but the header has {}; quote values that contain commas",
            record.len(),
            columns.len()
        ));
    }
    let mut fields = Map::new();
    for (name, value) in columns.iter().zip(record.iter()) {
        let text = std::str::from_utf8(value)
            .ok()
            .filter(|t| !(kept && t.contains('\u{FFFD}')))
            .ok_or_else(|| NOT_UTF8.to_string())?;
        fields.insert(name.clone(), Value::String(text.to_string()));
    }
    Ok(fields)
}

/// Where a CSV record's quotes put it, scanning as csv-core does: a quote opens a quoted
/// value only at the start of a field; inside one, `""` is a quote and a single `"` closes it.
struct Quotes {
    /// The text ends inside a quoted value.
    open_at_end: bool,
    /// The 0-based column of the first quoted value whose closing quote is followed by more
    /// text before the delimiter (`"Dave "the" man"`: a quote inside it was not doubled). A
    /// quote inside an unquoted value (`5" disk`) is kept as text by CSV readers and is not
    /// reported.
    not_doubled: Option<usize>,
}

fn scan_quotes(bytes: &[u8]) -> Quotes {
    #[derive(PartialEq)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut state = State::FieldStart;
    let mut column = 0;
    let mut not_doubled = None;
    for &b in bytes {
        let ends_field = matches!(b, b',' | b'\n' | b'\r');
        state = match state {
            State::FieldStart if b == b'"' => State::Quoted,
            State::FieldStart | State::Unquoted if ends_field => State::FieldStart,
            State::FieldStart | State::Unquoted => State::Unquoted,
            State::Quoted if b == b'"' => State::QuoteInQuoted,
            State::Quoted => State::Quoted,
            State::QuoteInQuoted if b == b'"' => State::Quoted,
            State::QuoteInQuoted if ends_field => State::FieldStart,
            State::QuoteInQuoted => {
                not_doubled.get_or_insert(column);
                State::Unquoted
            }
        };
        if b == b',' && state == State::FieldStart {
            column += 1;
        }
    }
    Quotes {
        open_at_end: state == State::Quoted,
        not_doubled,
    }
}

/// Whether CSV text ends inside a quoted value (see [`Quotes`]).
fn ends_in_open_quote(bytes: &[u8]) -> bool {
    scan_quotes(bytes).open_at_end
}

/// The 0-based column of the first quoted value with an undoubled quote (see [`Quotes`]).
fn quote_not_doubled(bytes: &[u8]) -> Option<usize> {
    scan_quotes(bytes).not_doubled
}

fn trim_line_ends(text: &str) -> &str {
    text.trim_matches(['\r', '\n'])
}

/// Reads a CSV row kept by a results file (`_raw` under the header `columns`) as the first
/// push read it: its columns, or the same reason as the first time.
pub(crate) fn reread(raw: &str, columns: &[String]) -> Result<Map<String, Value>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(raw.as_bytes());
    let mut record = ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => {}
        // Emptied in the results file: a blank row (skipped as empty).
        Ok(false) => {
            return Ok(columns
                .iter()
                .map(|c| (c.clone(), Value::String(String::new())))
                .collect())
        }
        Err(e) => return Err(format!("cannot be read: {e}")),
    }
    let fields = check(&record, columns, Some(raw.as_bytes()), true)?;
    if let Ok(true) = reader.read_byte_record(&mut ByteRecord::new()) {
        return Err(
            "holds more than one row in the results file's `_raw`; keep one row \
                    there and push the others from a file of their own"
                .into(),
        );
    }
    Ok(fields)
}
