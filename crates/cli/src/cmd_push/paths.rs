//! The results file must not overwrite what the run reads: `--from` (a CSV, JSONL or SQLite
//! file, by any path to it: the same name, a symlink or a hard link), the `--mapping` file,
//! or a file of the data directory (the metadata store). Creating the results file truncates
//! it, so writing the results onto the input would lose the input and, as the reader then
//! reads the lines the writer appends, never end.

use super::{usage, Args};
use source_drift::writer::{same_file, InputSpec};
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
    Ok(())
}

/// Whether existing `path` lies inside directory `dir` (both with symlinks resolved).
fn inside(path: &Path, dir: &Path) -> bool {
    match (path.canonicalize(), dir.canonicalize()) {
        (Ok(p), Ok(d)) => p.starts_with(d),
        _ => false,
    }
}
