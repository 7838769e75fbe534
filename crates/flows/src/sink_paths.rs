//! Sinks may not write into the data directory (issue 17): `sqlite:<data dir>/driftbridge.db`
//! would add tables to the metadata store, and `jsonl:`/`csv:`/`parquet:` files there could
//! overwrite the vault key, uploads or results. The same rule holds for `serve`'s data
//! sources and for `driftbridge sync --destination`, as `push --results` already refuses a
//! file of the data directory.
//!
//! A path is judged by where it really leads, whatever its spelling: made absolute (relative
//! paths from the current directory), `.` and `..` resolved, symlinks followed as far as the
//! path exists, and an existing file is also compared by device and inode with the files of
//! the data directory (a hard link). Two places stay allowed: the [`SINKS_DIR`] folder, where
//! the default sink of a new data source lives, and [`LEGACY_DEFAULT_SINK`] (SQLite only),
//! the default sink of earlier versions, so sources saved with it keep running.

use sinks::SinkSpec;
use std::path::{Component, Path, PathBuf};

/// Folder of the data directory where sinks may write (the default sink lives there).
pub const SINKS_DIR: &str = "sinks";
/// The default SQLite sink of earlier versions, in the data directory itself; still allowed.
pub const LEGACY_DEFAULT_SINK: &str = "driftbridge-data.db";

/// Why `spec` may not be used with the data directory `data_dir` (a message naming the sink,
/// the directory and the fix), or `None` when it may. PostgreSQL sinks are never refused.
pub fn refusal(spec: &SinkSpec, data_dir: &Path) -> Option<String> {
    let (path, sqlite) = match spec {
        SinkSpec::Sqlite(p) => (p, true),
        SinkSpec::Jsonl(p) | SinkSpec::Csv(p) | SinkSpec::Parquet(p) => (p, false),
        SinkSpec::Postgres(_) => return None,
    };
    let data = data_dir
        .canonicalize()
        .unwrap_or_else(|_| resolve(data_dir));
    let sinks = data.join(SINKS_DIR);
    let target = resolve(path);
    let inside = target.starts_with(&data) && !target.starts_with(&sinks);
    let allowed_legacy = sqlite && target == data.join(LEGACY_DEFAULT_SINK);
    let linked = is_file_of(&target, &data, &sinks);
    if (inside && !allowed_legacy) || linked {
        return Some(format!(
            "{} is {} the data directory {} (the metadata store, the vault key, uploads and results): a sink there could overwrite them; choose a path outside it, or under {}",
            spec.describe(),
            if linked && !inside { "a link to a file of" } else { "inside" },
            data.display(),
            sinks.display()
        ));
    }
    None
}

/// `path` made absolute, with symlinks resolved for the part that exists and `.`/`..`
/// applied to the rest.
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.clone();
    let mut rest: Vec<Component<'_>> = Vec::new();
    let components: Vec<Component<'_>> = absolute.components().collect();
    let mut split = components.len();
    while split > 0 {
        let prefix: PathBuf = components[..split].iter().collect();
        if let Ok(real) = prefix.canonicalize() {
            existing = real;
            rest = components[split..].to_vec();
            break;
        }
        split -= 1;
    }
    if split == 0 {
        rest = components;
        existing = PathBuf::new();
    }
    for part in rest {
        match part {
            Component::ParentDir => {
                existing.pop();
                // Once above an existing folder, what follows may be a symlink again.
                if let Ok(real) = existing.canonicalize() {
                    existing = real;
                }
            }
            Component::CurDir => {}
            other => {
                existing.push(other.as_os_str());
                if let Ok(real) = existing.canonicalize() {
                    existing = real;
                }
            }
        }
    }
    existing
}

/// Whether `target` is an existing file that is also a file of `data` outside `sinks` (the
/// same device and inode: a hard link).
fn is_file_of(target: &Path, data: &Path, sinks: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = std::fs::metadata(target) else {
            return false;
        };
        if !meta.is_file() {
            return false;
        }
        let id = (meta.dev(), meta.ino());
        let mut stack = vec![(data.to_path_buf(), 0)];
        while let Some((dir, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.starts_with(sinks) {
                    continue;
                }
                let Ok(m) = entry.metadata() else { continue };
                if m.is_dir() && depth < 3 {
                    stack.push((path, depth + 1));
                } else if m.is_file() && (m.dev(), m.ino()) == id {
                    return true;
                }
            }
        }
        false
    }
    #[cfg(not(unix))]
    {
        let _ = (target, data, sinks);
        false
    }
}
