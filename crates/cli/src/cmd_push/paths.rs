//! The results file must not overwrite what the run reads: `--from` (a CSV, JSONL or SQLite
//! file, by any path to it: the same name, a symlink or a hard link), the `--mapping` file,
//! or a file of the data directory (the metadata store). Creating the results file truncates
//! it, so writing the results onto the input would lose the input and, as the reader then
//! reads the lines the writer appends, never end.

use super::{usage, Args};
use drift_writer::{same_file, InputSpec};
use std::path::Path;

/// Refuses (exit 2, naming `--results` and the fix) a results path that is one of the run's
/// inputs. Checked before anything is opened for writing. An unparsable `--from` is left for
/// the input reader to report.
pub(crate) fn check_results(results: &Path, args: &Args, data_dir: &Path) -> anyhow::Result<()> {
    let refuse = |what: String| {
        usage(format!(
            "--results {} is {what}: creating the results file would empty it; choose another \
             path for --results",
            results.display()
        ))
    };
    let mut fifo = false;
    if let Ok(meta) = std::fs::metadata(results) {
        use std::os::unix::fs::FileTypeExt;
        fifo = meta.file_type().is_fifo();
        let kind = meta.file_type();
        let what = if kind.is_dir() {
            Some("a directory")
        } else if kind.is_socket() {
            Some("a socket")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(usage(format!(
                "--results {} is {what}: name a regular file (e.g. results.csv)",
                results.display()
            )));
        }
    }
    if let Some(input) = InputSpec::parse(&args.from)
        .ok()
        .as_ref()
        .and_then(InputSpec::file)
    {
        if same_file(results, input) {
            return Err(refuse(format!(
                "the input file (--from {})",
                input.display()
            )));
        }
    }
    if let Some(mapping) = &args.mapping {
        if same_file(results, mapping) {
            return Err(refuse(format!(
                "the mapping file (--mapping {})",
                mapping.display()
            )));
        }
    }
    if results.exists() && inside(results, data_dir) {
        return Err(refuse(format!(
            "a file of the data directory {}",
            data_dir.display()
        )));
    }
    if let Some(ext) = results.extension().and_then(|e| e.to_str()) {
        if !["csv", "jsonl", "ndjson", "json", "txt"].contains(&ext.to_ascii_lowercase().as_str()) {
            return Err(usage(format!(
                "--results {}: `.{ext}` is not a results format; name a .csv or .jsonl file",
                results.display()
            )));
        }
    }
    if fifo {
        // Opening a FIFO for writing waits for a reader (`--results >(gzip > r.gz)` has one
        // at once): say so, rather than seem to hang.
        eprintln!(
            "note: --results {} is a named pipe: waiting for a process to read it (Ctrl-C stops)",
            results.display()
        );
    }
    Ok(())
}

/// Whether existing `path` lies inside directory `dir` (both with symlinks resolved).
fn inside(path: &Path, dir: &Path) -> bool {
    match (path.canonicalize(), dir.canonicalize()) {
        (Ok(p), Ok(d)) => p.starts_with(d),
        _ => false,
    }
}
