//! The results file: one line per input row (`row, key, outcome, drift_id, reason, input`),
//! CSV or JSONL by the file's extension. `input` is the row as read (a JSON object), so the
//! file can be fed back with `--from results.csv --only rejected`.
//!
//! A row that could not be read (a CSV row with the wrong number of fields, an unterminated
//! quote, a quote not doubled inside a quoted value or bytes that are not UTF-8; a JSONL line that is not a JSON object) has no
//! columns; its `input` is its raw text instead: `{"_raw": "LINE", "_columns": [...]}` for
//! CSV (with the header's columns), `{"_raw": "LINE"}` for JSONL, lossily decoded (bytes
//! that are not UTF-8 show as U+FFFD), or `{"_raw_omitted_bytes": N}` for a row over 1 MiB.
//! Fed back, `_raw` is read again as the first push read it: the row is rejected again with
//! the same reason until it is fixed (in the original file, or in `_raw` itself).
//!
//! CSV results are opened in spreadsheets, so a cell that a spreadsheet would run as a
//! formula (one starting with `=`, `+`, `-`, `@`, a tab or a carriage return, e.g. an
//! `externalId` of `=HYPERLINK(...)`) is written with a leading `'` ([`csv_cell`]), as
//! OWASP advises against CSV injection. Only the `key`, `drift_id` and `reason` cells can
//! start that way; `input` is JSON text (it starts with `{`) and is read back unchanged on a
//! re-feed. JSONL results hold the values exactly as read.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::Outcome;

/// Columns of a results file, in order.
pub const RESULTS_COLUMNS: [&str; 6] = ["row", "key", "outcome", "drift_id", "reason", "input"];

/// A CSV cell that a spreadsheet will not run as a formula: `text` with a leading `'` when
/// it starts with `=`, `+`, `-`, `@`, a tab or a carriage return, else `text` as it is.
/// Applying it twice changes nothing more (`'` starts no formula).
pub fn csv_cell(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// Format of a results file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultsFormat {
    /// Comma-separated, header row first.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl ResultsFormat {
    /// `.jsonl` / `.ndjson` / `.json` -> JSONL, anything else CSV.
    pub fn for_path(path: &Path) -> ResultsFormat {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("jsonl" | "ndjson" | "json") => ResultsFormat::Jsonl,
            _ => ResultsFormat::Csv,
        }
    }
}

enum Sink {
    Csv(Box<csv::Writer<BufWriter<File>>>),
    Jsonl(BufWriter<File>),
}

/// Writes outcomes as they arrive, each flushed to the file at once: a run that stops
/// early, or a process killed outright, leaves every row whose outcome was reported in the
/// file, and a file that cannot be written (disk full) fails the row that hit it, so the
/// run stops sending at once. One write call per row is nothing next to the Drift request
/// behind each row.
pub struct ResultsWriter {
    sink: Sink,
    path: PathBuf,
}

impl std::fmt::Debug for ResultsWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultsWriter")
            .field("path", &self.path)
            .finish()
    }
}

impl ResultsWriter {
    /// Creates (truncates) `path`; the format follows its extension.
    pub fn create(path: &Path) -> std::io::Result<ResultsWriter> {
        let file = BufWriter::new(File::create(path)?);
        let sink = match ResultsFormat::for_path(path) {
            ResultsFormat::Csv => {
                let mut w = csv::Writer::from_writer(file);
                w.write_record(RESULTS_COLUMNS)
                    .map_err(std::io::Error::other)?;
                w.flush()?;
                Sink::Csv(Box::new(w))
            }
            ResultsFormat::Jsonl => Sink::Jsonl(file),
        };
        Ok(ResultsWriter {
            sink,
            path: path.to_path_buf(),
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one outcome and flushes it to the file.
    pub fn write(&mut self, o: &Outcome) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Csv(w) => {
                let input = Value::Object(o.input.clone()).to_string();
                w.write_record([
                    o.row.to_string().as_str(),
                    &*csv_cell(o.key.as_deref().unwrap_or("")),
                    o.kind.as_str(),
                    &*csv_cell(o.drift_id.as_deref().unwrap_or("")),
                    &*csv_cell(o.reason.as_deref().unwrap_or("")),
                    &*csv_cell(&input),
                ])
                .map_err(std::io::Error::other)?;
            }
            Sink::Jsonl(w) => {
                let line = json!({
                    "row": o.row, "key": o.key, "outcome": o.kind.as_str(),
                    "drift_id": o.drift_id, "reason": o.reason, "input": o.input,
                });
                serde_json::to_writer(&mut *w, &line)?;
                w.write_all(b"\n")?;
            }
        }
        self.flush()
    }

    /// Flushes buffered lines to the file.
    pub fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Csv(w) => w.flush(),
            Sink::Jsonl(w) => w.flush(),
        }
    }

    /// Flushes and closes the file.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.flush()
    }
}

/// Whether writing a results file at `results` would overwrite the file at `input`: the same
/// file by device and inode when both exist (so a hard link or a symlink to it counts), else
/// the same path once made absolute with symlinks resolved (a results file not created yet
/// is compared by its directory's real path and its name).
pub fn same_file(results: &Path, input: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (std::fs::metadata(results), std::fs::metadata(input)) {
            return a.dev() == b.dev() && a.ino() == b.ino();
        }
    }
    resolved(results) == resolved(input)
}

/// `path` absolute with its symlinks resolved, as far as it exists.
fn resolved(path: &Path) -> PathBuf {
    if let Ok(real) = path.canonicalize() {
        return real;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (
        absolute.parent().and_then(|d| d.canonicalize().ok()),
        absolute.file_name(),
    ) {
        (Some(dir), Some(name)) => dir.join(name),
        _ => absolute,
    }
}
