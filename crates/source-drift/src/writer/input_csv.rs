//! CSV input: a header row, then one row per record.
//!
//! Records are read as bytes with a flexible field count, and checked here rather than by
//! the csv crate: when the crate rejects a record (wrong field count, bad UTF-8) the record
//! is gone, and the results file could not keep the row. Checked in this order, the same
//! when a kept row is read again from a results file ([`reread`]):
//!
//! 1. an unterminated quote: a quoted value that is never closed runs to the end of the
//!    file. The csv crate does not report it (it ends the record at the end of the file and
//!    reports at most a field count), so the last record's raw bytes are scanned for a
//!    quote still open at the end;
//! 2. the field count against the header;
//! 3. UTF-8.
//!
//! A rejected row's raw text is read back from the file by its byte range (rejections are
//! rare, so good rows cost nothing extra). Input that is not a regular file (a pipe) cannot
//! be read twice: a rejected row is then written back from its fields (same values, quoting
//! redone), and an unterminated quote is reported by its field count only.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use csv::ByteRecord;
use serde_json::{Map, Value};

use super::input::{
    check_columns, open_file, results_row, too_long, Input, InputError, Row, RowResult,
    MAX_ROW_BYTES,
};
use super::results::RESULTS_COLUMNS;
use super::unreadable::{Unreadable, NOT_UTF8};

const UNTERMINATED: &str = "has a quote that is never closed, so its value runs to the end of \
     the file and takes in every line after it; close the quote (a quote inside a quoted \
     value is written twice: \"\")";

/// Opens a CSV file with a header row.
pub(crate) fn open(path: &Path) -> Result<Input, InputError> {
    let file = open_file(path)?;
    let len = file
        .metadata()
        .ok()
        .filter(std::fs::Metadata::is_file)
        .map(|m| m.len());
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .buffer_capacity(64 * 1024)
        .from_reader(file);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| InputError::whole(format!("{}: cannot read the header: {e}", path.display())))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    check_columns(&headers, &path.display().to_string())?;
    let is_results = headers.len() == RESULTS_COLUMNS.len()
        && headers.iter().zip(RESULTS_COLUMNS).all(|(a, b)| a == b);
    let mut rows = CsvRows {
        reader,
        path: path.to_path_buf(),
        len,
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

struct CsvRows {
    reader: csv::Reader<File>,
    path: PathBuf,
    /// File length when opened: a record ending there may hold an unterminated quote.
    /// `None` when the input is not a regular file (a pipe): rows are not read twice.
    len: Option<u64>,
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
        let at_end = self.len.is_some_and(|len| end >= len);
        let raw = at_end.then(|| self.raw(start, span)).flatten();
        let checked = check(&self.record, &self.columns, raw.as_deref(), false);
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
                let raw = raw
                    .or_else(|| self.raw(start, span))
                    .unwrap_or_else(|| rebuilt(&self.record));
                let kept = Unreadable::Csv {
                    raw: trim_line_ends(&String::from_utf8_lossy(&raw)).to_string(),
                    columns: self.columns.clone(),
                };
                Err(InputError::unreadable(number, message, &kept))
            }
        })
    }

    /// The file's bytes `start .. start + len` (a record's raw text), read with a second
    /// handle so the reader's position is untouched. `None` when the input is not a regular
    /// file (a pipe cannot be read twice) or cannot be read again.
    fn raw(&self, start: u64, len: usize) -> Option<Vec<u8>> {
        self.len?;
        let read = || -> std::io::Result<Vec<u8>> {
            let mut file = File::open(&self.path)?;
            file.seek(SeekFrom::Start(start))?;
            let mut bytes = Vec::with_capacity(len);
            file.take(len as u64).read_to_end(&mut bytes)?;
            Ok(bytes)
        };
        read()
            .map_err(|e| tracing::debug!(error = %e, "cannot read a rejected row's text again"))
            .ok()
    }
}

/// A record written back as one CSV line (quoted where needed): the row's text when the
/// file cannot be read again. The fields are the same; only the original quoting is lost.
fn rebuilt(record: &ByteRecord) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if w.write_byte_record(record).is_err() {
        return record.as_slice().to_vec();
    }
    w.into_inner().unwrap_or_default()
}

/// A record's columns, or why it cannot be used (see the module docs for the order).
/// `raw`: the record's raw bytes when it may hold an unterminated quote. `kept`: the record
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

/// Whether CSV text ends inside a quoted value, scanning as csv-core does: a quote opens a
/// quoted value only at the start of a field; inside one, `""` is a quote and a single `"`
/// closes it.
fn ends_in_open_quote(bytes: &[u8]) -> bool {
    #[derive(PartialEq)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut state = State::FieldStart;
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
            State::QuoteInQuoted => State::Unquoted,
        };
    }
    state == State::Quoted
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
