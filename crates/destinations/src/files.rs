//! What the file destinations (JSONL, CSV, Parquet) share: directory layout, the commit
//! protocol that keeps files and state consistent, and crash recovery.
//!
//! Layout of a destination directory `DIR`:
//! - `DIR/<stream>/<run-id>.<ext>`: the records of one stream in one run, for formats that
//!   append (JSONL, CSV); past [`PART_BYTES`] the run goes on in `<run-id>-2.<ext>`, ...;
//! - `DIR/<stream>/<run-id>-<n>.<ext>`: one file per stream per checkpoint for formats that
//!   cannot append (Parquet), `n` from 000001;
//! - `DIR/_rejected/<run-id>.jsonl`: records refused (missing primary key) with the reason;
//! - `DIR/_driftbridge_state.json`: the source state per scope **and the manifest**, the list
//!   of committed files with their committed size in bytes.
//!
//! Commit protocol (DESIGN.md §4 "write-then-rename for files"): each file a batch touches is
//! written under a hidden temporary name (`.<name>.tmp`; for an appendable file a copy of the
//! committed file plus the new records), fsynced, and renamed over its final name; then the
//! state file with the new state and manifest is written the same way. The rename of the
//! state file is the commit point. Recovery, run before a destination is prepared or read:
//! temporary files are removed, a data file the manifest does not list (renamed, but the run
//! died before its state was written) is removed, and a file longer than its committed size
//! is truncated to it. The source resumes from the committed state, so each record is in
//! the files once: nothing of a crashed run is left visible beyond its last commit.
//!
//! Exactly once across a resume: the engine may commit records past the source's last
//! checkpoint (a batch fills up between two checkpoints). After a crash the source resumes
//! from that checkpoint and sends those records again; a database absorbs them by upsert, a
//! file would hold them twice. So the manifest keeps a replay window, the primary key and a
//! hash of every record committed since (and with) the last commit that carried state, and a
//! record identical to one in the window is not written again. The window is as large as
//! the records between two checkpoints (the Drift source checkpoints at least every 250 ms).
//!
//! Why a copy instead of appending in place: a reader (or a lake picking files up) never
//! sees a half-written line. The copy is bounded by [`PART_BYTES`] per checkpoint and is
//! done by the kernel (`std::fs::copy`). Memory is bounded by the batch: records are
//! streamed to the file, never held beyond the batch the engine hands over.
//!
//! One writer per directory at a time: two runs into the same directory are not supported.

use crate::layout::{self, dest_err, Column};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use sync_core::{Batch, CommitReport, Record, Rejected, RunError, State, Stream};

/// Name of the state file (state per scope and manifest of committed files).
pub const STATE_FILE: &str = "_driftbridge_state.json";
/// Folder of the rejected records.
pub const REJECTED_DIR: &str = "_rejected";
/// Size past which a run's appendable file rolls over to a new part (32 MiB).
pub const PART_BYTES: u64 = 32 * 1024 * 1024;

/// Define a public destination type `$name` over `FileSink<$format>`: `open(dir)`, `dir()`
/// and the `Destination` impl delegating to the sink.
macro_rules! file_destination {
    ($(#[$doc:meta])* $name:ident, $format:ident) => {
        $(#[$doc])*
        pub struct $name($crate::files::FileSink<$format>);

        impl $name {
            /// A destination writing into `dir` (created at `check`/`prepare` if missing).
            /// No I/O happens here; `check` tells whether the directory is usable.
            pub fn open(dir: &std::path::Path) -> Self {
                Self($crate::files::FileSink::new(dir, $format))
            }

            /// The directory.
            pub fn dir(&self) -> &std::path::Path {
                self.0.root()
            }
        }

        #[async_trait::async_trait]
        impl sync_core::Destination for $name {
            fn describe(&self) -> String {
                self.0.describe()
            }
            async fn check(&mut self) -> Result<(), sync_core::RunError> {
                self.0.check().await
            }
            async fn prepare(&mut self, streams: &[sync_core::Stream]) -> Result<(), sync_core::RunError> {
                self.0.prepare(streams).await
            }
            async fn load_state(&mut self, scope: &str) -> Result<sync_core::State, sync_core::RunError> {
                self.0.load_state(scope).await
            }
            async fn commit(
                &mut self,
                batch: sync_core::Batch,
            ) -> Result<sync_core::CommitReport, sync_core::RunError> {
                self.0.commit(batch).await
            }
        }
    };
}
pub(crate) use file_destination;

/// The state file's content.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    /// scope -> key -> state value.
    state: BTreeMap<String, BTreeMap<String, Value>>,
    /// `<stream>/<file>` -> committed size.
    files: BTreeMap<String, FileEntry>,
    /// The replay window: stream -> primary key -> hash of the record, for the records
    /// committed since (and with) the last commit that carried state.
    #[serde(default)]
    recent: Recent,
}

type Recent = BTreeMap<String, BTreeMap<String, u64>>;

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct FileEntry {
    bytes: u64,
    records: u64,
}

/// A stream as a file format sees it: its definition and columns.
#[derive(Debug)]
pub(crate) struct FileTable {
    /// The stream.
    pub stream: Stream,
    /// Its columns (timestamp twins named with the format's suffix).
    pub columns: Vec<Column>,
}

/// One file format: how records become bytes.
pub(crate) trait Format: Send + Sync + 'static {
    /// `jsonl`, `csv`, `parquet` (the `--destination` prefix).
    fn kind(&self) -> &'static str;
    /// File extension without the dot.
    fn ext(&self) -> &'static str;
    /// Whether a run appends to one file per stream (else: one file per checkpoint).
    fn appendable(&self) -> bool;
    /// Suffix of timestamp twin columns (`_iso` for text formats).
    fn twin_suffix(&self) -> &'static str;
    /// Write `records` at the end of `file`; `fresh` when the file is new (write a header).
    fn write(
        &self,
        file: &mut File,
        table: &FileTable,
        records: &[&Record],
        run_id: &str,
        fresh: bool,
    ) -> Result<(), String>;
}

/// A directory destination in format `F`; the public destinations wrap it.
pub(crate) struct FileSink<F: Format> {
    root: PathBuf,
    format: Arc<F>,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    tables: HashMap<String, Arc<FileTable>>,
    /// Loaded (and recovered) manifest; `None` until first needed.
    manifest: Option<Manifest>,
}

impl<F: Format> FileSink<F> {
    /// A sink writing into `root` (created by `check`/`prepare` if missing). No I/O here.
    pub fn new(root: &Path, format: F) -> Self {
        Self {
            root: root.to_owned(),
            format: Arc::new(format),
            inner: Arc::new(Mutex::new(Inner::default())),
        }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<kind>:<dir>`.
    pub fn describe(&self) -> String {
        format!("{}:{}", self.format.kind(), self.root.display())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Ctx<'_, F>) -> Result<T, RunError> + Send + 'static,
    ) -> Result<T, RunError> {
        let inner = self.inner.clone();
        let root = self.root.clone();
        let format = self.format.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = inner
                .lock()
                .map_err(|_| dest_err(format.kind(), "state", "poisoned by an earlier panic"))?;
            let mut ctx = Ctx {
                root: &root,
                format: &*format,
                inner: &mut guard,
            };
            f(&mut ctx)
        })
        .await
        .map_err(|e| dest_err("files", "worker", e))?
    }

    /// Directory exists or can be created, is writable, and holds no foreign files.
    pub async fn check(&self) -> Result<(), RunError> {
        self.blocking(|ctx| ctx.check()).await
    }

    /// Load the manifest, recover from a crashed run, create the stream folders.
    pub async fn prepare(&self, streams: &[Stream]) -> Result<(), RunError> {
        let streams = streams.to_vec();
        self.blocking(move |ctx| ctx.prepare(streams)).await
    }

    /// State committed for `scope`.
    pub async fn load_state(&self, scope: &str) -> Result<State, RunError> {
        let scope = scope.to_owned();
        self.blocking(move |ctx| {
            let manifest = ctx.ready()?;
            let mut state = State::new();
            for (k, v) in manifest.state.get(&scope).into_iter().flatten() {
                state.set(k.clone(), v.clone());
            }
            Ok(state)
        })
        .await
    }

    /// Write `batch` with the protocol in the module docs.
    pub async fn commit(&self, batch: Batch) -> Result<CommitReport, RunError> {
        self.blocking(move |ctx| {
            let result = ctx.commit(&batch);
            if result.is_err() {
                // Undo what this commit published: the next commit must not copy it.
                if let Err(e) = ctx.recover() {
                    tracing::warn!(error = %e, "recovery after a failed commit failed");
                }
            }
            result
        })
        .await
    }
}

struct Ctx<'a, F: Format> {
    root: &'a Path,
    format: &'a F,
    inner: &'a mut Inner,
}

impl<F: Format> Ctx<'_, F> {
    fn err(&self, context: &str, e: impl std::fmt::Display) -> RunError {
        dest_err(self.format.kind(), context, e)
    }

    fn check(&mut self) -> Result<(), RunError> {
        let kind = self.format.kind();
        let dir = self.root.display();
        if self.root.exists() && !self.root.is_dir() {
            return Err(self.err(
                &format!("{dir}"),
                format!("is not a directory; give `{kind}:DIR` a directory path"),
            ));
        }
        fs::create_dir_all(self.root).map_err(|e| {
            self.err(
                &format!("cannot create directory {dir}"),
                format!("{e}; create it or choose a writable location"),
            )
        })?;
        let probe = self.root.join(".driftbridge-check.tmp");
        let written = File::create(&probe)
            .and_then(|mut f| f.write_all(b"ok").and_then(|()| f.sync_all()))
            .and_then(|()| fs::remove_file(&probe));
        written.map_err(|e| {
            self.err(
                &format!("directory {dir} is not writable"),
                format!("{e}; fix its permissions or choose another directory"),
            )
        })?;
        if !self.root.join(STATE_FILE).exists() {
            self.refuse_foreign_files()?;
        } else {
            self.read_manifest()?;
        }
        Ok(())
    }

    /// A directory without a state file that already holds our kind of files was not
    /// written by driftbridge: recovery would delete those files, so refuse it.
    fn refuse_foreign_files(&self) -> Result<(), RunError> {
        for (dir, name) in self.data_files()? {
            if self.is_ours(&dir, &name) {
                return Err(self.err(
                    &format!("{}", self.root.display()),
                    format!(
                        "holds {dir}/{name} but no {STATE_FILE}: it was not written by driftbridge; choose an empty or new directory"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn is_ours(&self, dir: &str, name: &str) -> bool {
        let ext = if dir == REJECTED_DIR {
            "jsonl"
        } else {
            self.format.ext()
        };
        !name.starts_with('.') && name.ends_with(&format!(".{ext}"))
    }

    /// (folder, file name) of every file one level down.
    fn data_files(&self) -> Result<Vec<(String, String)>, RunError> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(self.err("list directory", e)),
        };
        for dir in entries.flatten() {
            let dir_name = dir.file_name().to_string_lossy().into_owned();
            if dir_name.starts_with('.') || !dir.path().is_dir() {
                continue;
            }
            let files = fs::read_dir(dir.path()).map_err(|e| self.err("list directory", e))?;
            for f in files.flatten() {
                if f.path().is_file() {
                    out.push((
                        dir_name.clone(),
                        f.file_name().to_string_lossy().into_owned(),
                    ));
                }
            }
        }
        Ok(out)
    }

    fn read_manifest(&self) -> Result<Option<Manifest>, RunError> {
        let path = self.root.join(STATE_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                self.err(
                    &format!("{} is damaged", path.display()),
                    format!("{e}; restore it from a backup or choose a new directory"),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(&format!("cannot read {}", path.display()), e)),
        }
    }

    /// The manifest, loaded and recovered on first use.
    fn ready(&mut self) -> Result<&Manifest, RunError> {
        if self.inner.manifest.is_none() {
            fs::create_dir_all(self.root).map_err(|e| self.err("create directory", e))?;
            let manifest = match self.read_manifest()? {
                Some(m) => m,
                None => {
                    self.refuse_foreign_files()?;
                    let fresh = Manifest {
                        version: 1,
                        ..Manifest::default()
                    };
                    write_atomic(self.root, STATE_FILE, &state_bytes(&fresh)?)
                        .map_err(|e| self.err("write state", e))?;
                    fresh
                }
            };
            self.inner.manifest = Some(manifest);
            self.recover()?;
        }
        self.inner
            .manifest
            .as_ref()
            .ok_or_else(|| self.err("state", "not loaded"))
    }

    /// Remove temporary and uncommitted files; truncate files to their committed size.
    fn recover(&mut self) -> Result<(), RunError> {
        let Some(manifest) = self.inner.manifest.as_ref() else {
            return Ok(());
        };
        for (dir, name) in self.data_files()? {
            let path = self.root.join(&dir).join(&name);
            if name.starts_with('.') && name.ends_with(".tmp") {
                fs::remove_file(&path).map_err(|e| self.err("remove temporary file", e))?;
                continue;
            }
            if !self.is_ours(&dir, &name) {
                continue;
            }
            let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            match manifest.files.get(&format!("{dir}/{name}")) {
                None => {
                    tracing::warn!(file = %path.display(), "removing a file of a run that stopped before committing it");
                    fs::remove_file(&path).map_err(|e| self.err("remove uncommitted file", e))?;
                }
                Some(entry) if len > entry.bytes => {
                    tracing::warn!(file = %path.display(), committed = entry.bytes, "truncating records written after the last commit");
                    let f = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(|e| self.err("open for recovery", e))?;
                    f.set_len(entry.bytes)
                        .and_then(|()| f.sync_all())
                        .map_err(|e| self.err("truncate uncommitted records", e))?;
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn prepare(&mut self, streams: Vec<Stream>) -> Result<(), RunError> {
        self.ready()?;
        for stream in streams {
            fs::create_dir_all(self.root.join(&stream.name))
                .map_err(|e| self.err(&format!("create folder for {}", stream.name), e))?;
            let columns = layout::columns(&stream, self.format.twin_suffix());
            self.inner
                .tables
                .insert(stream.name.clone(), Arc::new(FileTable { stream, columns }));
        }
        Ok(())
    }

    fn commit(&mut self, batch: &Batch) -> Result<CommitReport, RunError> {
        let mut manifest = self.ready()?.clone();
        let previous = std::mem::take(&mut manifest.recent);
        let mut window = Window::new(&previous, !batch.state.is_empty());
        let mut report = CommitReport::default();
        let mut groups: Vec<(Arc<FileTable>, Vec<&Record>)> = Vec::new();
        let mut rejected: Vec<(&Record, String)> = Vec::new();
        for record in &batch.records {
            let table = self.inner.tables.get(&record.stream).ok_or_else(|| {
                self.err(
                    "write",
                    format!("stream `{}` was not prepared", record.stream),
                )
            })?;
            if let Some(reason) = layout::missing_key(&table.stream.primary_key, &record.data) {
                rejected.push((record, reason));
                continue;
            }
            *report.written.entry(record.stream.clone()).or_default() += 1;
            if !window.admit(&table.stream, record) {
                continue; // committed before a crash: the source sent it again on resume
            }
            match groups
                .iter_mut()
                .find(|(t, _)| t.stream.name == record.stream)
            {
                Some((_, recs)) => recs.push(record),
                None => groups.push((table.clone(), vec![record])),
            }
        }
        let mut obsolete = Vec::new();
        for stream in &batch.replace {
            let prefix = format!("{stream}/");
            let old: Vec<String> = manifest
                .files
                .keys()
                .filter(|k| k.starts_with(&prefix))
                .cloned()
                .collect();
            for k in old {
                manifest.files.remove(&k);
                obsolete.push(k);
            }
        }
        for (table, records) in &groups {
            let fresh_only = batch.replace.contains(&table.stream.name);
            self.write_stream(&mut manifest, table, records, &batch.run_id, fresh_only)?;
        }
        manifest.recent = window.next;
        if !rejected.is_empty() {
            self.write_rejected(&mut manifest, &rejected, &batch.run_id)?;
            report.rejected = rejected
                .iter()
                .map(|(r, reason)| Rejected {
                    stream: r.stream.clone(),
                    reason: reason.clone(),
                })
                .collect();
        }
        let scope = manifest.state.entry(batch.scope.clone()).or_default();
        for (k, v) in &batch.state {
            scope.insert(k.clone(), v.clone());
        }
        write_atomic(self.root, STATE_FILE, &state_bytes(&manifest)?)
            .map_err(|e| self.err("write state", e))?;
        self.inner.manifest = Some(manifest);
        for rel in obsolete {
            if let Err(e) = fs::remove_file(self.root.join(&rel)) {
                tracing::warn!(file = %rel, error = %e, "could not remove a replaced file");
            }
        }
        Ok(report)
    }

    fn write_stream(
        &self,
        manifest: &mut Manifest,
        table: &FileTable,
        records: &[&Record],
        run_id: &str,
        fresh_only: bool,
    ) -> Result<(), RunError> {
        let stream = &table.stream.name;
        let ext = self.format.ext();
        let target = if self.format.appendable() {
            append_target(manifest, stream, run_id, ext, fresh_only)
        } else {
            next_part(manifest, stream, &format!("{run_id}-"), ext, 6)
        };
        let committed = manifest.files.get(&target.rel).copied();
        let format = self.format;
        let entry = publish(self.root, &target.rel, committed, |file, fresh| {
            format.write(file, table, records, run_id, fresh)
        })
        .map_err(|e| self.err(&format!("write {}", target.rel), e))?;
        let records_before = committed.map_or(0, |c| c.records);
        manifest.files.insert(
            target.rel,
            FileEntry {
                bytes: entry,
                records: records_before + records.len() as u64,
            },
        );
        Ok(())
    }

    fn write_rejected(
        &self,
        manifest: &mut Manifest,
        rejected: &[(&Record, String)],
        run_id: &str,
    ) -> Result<(), RunError> {
        fs::create_dir_all(self.root.join(REJECTED_DIR))
            .map_err(|e| self.err("create folder for rejected records", e))?;
        let target = append_target(manifest, REJECTED_DIR, run_id, "jsonl", false);
        let committed = manifest.files.get(&target.rel).copied();
        let bytes = publish(self.root, &target.rel, committed, |file, _| {
            let mut out = std::io::BufWriter::new(file);
            for (record, reason) in rejected {
                let line = json!({"stream": record.stream, "reason": reason,
                    "rejected_at": layout::now_rfc3339(), "_run_id": run_id, "_raw": record.data});
                serde_json::to_writer(&mut out, &line).map_err(|e| e.to_string())?;
                out.write_all(b"\n").map_err(|e| e.to_string())?;
            }
            out.flush().map_err(|e| e.to_string())
        })
        .map_err(|e| self.err("write rejected records", e))?;
        manifest.files.insert(
            target.rel,
            FileEntry {
                bytes,
                records: committed.map_or(0, |c| c.records) + rejected.len() as u64,
            },
        );
        Ok(())
    }
}

/// The replay window of a commit (see the module docs).
struct Window<'a> {
    previous: &'a Recent,
    next: Recent,
}

impl<'a> Window<'a> {
    /// A commit with state starts a new window; one without extends the previous.
    fn new(previous: &'a Recent, has_state: bool) -> Self {
        let next = if has_state {
            Recent::new()
        } else {
            previous.clone()
        };
        Self { previous, next }
    }

    /// Whether `record` is new (not identical to one in the previous window); records it.
    fn admit(&mut self, stream: &Stream, record: &Record) -> bool {
        let key = layout::key_of(&stream.primary_key, &record.data);
        let hash = layout::fnv1a(Value::Object(record.data.clone()).to_string().as_bytes());
        let seen = self.previous.get(&stream.name).and_then(|w| w.get(&key)) == Some(&hash);
        self.next
            .entry(stream.name.clone())
            .or_default()
            .insert(key, hash);
        !seen
    }
}

struct Target {
    rel: String,
}

/// The file a run appends to: its last part while under [`PART_BYTES`], else a new part.
fn append_target(
    manifest: &Manifest,
    dir: &str,
    run_id: &str,
    ext: &str,
    fresh_only: bool,
) -> Target {
    let name = |n: u32| {
        if n == 1 {
            format!("{dir}/{run_id}.{ext}")
        } else {
            format!("{dir}/{run_id}-{n}.{ext}")
        }
    };
    let mut n = 1;
    while manifest.files.contains_key(&name(n + 1)) {
        n += 1;
    }
    match manifest.files.get(&name(n)) {
        None => Target { rel: name(n) },
        Some(e) if e.bytes < PART_BYTES && !fresh_only => Target { rel: name(n) },
        Some(_) => Target { rel: name(n + 1) },
    }
}

/// The next `<dir>/<prefix><n>.<ext>` not in the manifest, `n` zero-padded to `width`.
fn next_part(manifest: &Manifest, dir: &str, prefix: &str, ext: &str, width: usize) -> Target {
    let mut n = 1;
    loop {
        let rel = format!("{dir}/{prefix}{n:0width$}.{ext}");
        if !manifest.files.contains_key(&rel) {
            return Target { rel };
        }
        n += 1;
    }
}

/// Write a new version of `root/rel` through a temporary file: copy of the committed bytes
/// (if any), then `write`, fsync, rename, fsync the folder. Returns the new size.
fn publish(
    root: &Path,
    rel: &str,
    committed: Option<FileEntry>,
    write: impl FnOnce(&mut File, bool) -> Result<(), String>,
) -> Result<u64, String> {
    let path = root.join(rel);
    let dir = path.parent().ok_or("file has no folder")?;
    let name = path
        .file_name()
        .ok_or("file has no name")?
        .to_string_lossy()
        .into_owned();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = match committed {
        Some(entry) => {
            fs::copy(&path, &tmp).map_err(|e| format!("copy committed file: {e}"))?;
            let f = OpenOptions::new()
                .append(true)
                .open(&tmp)
                .map_err(|e| e.to_string())?;
            f.set_len(entry.bytes).map_err(|e| e.to_string())?;
            f
        }
        None => File::create(&tmp).map_err(|e| e.to_string())?,
    };
    write(&mut file, committed.is_none())?;
    file.sync_all().map_err(|e| format!("fsync: {e}"))?;
    let bytes = file.metadata().map_err(|e| e.to_string())?.len();
    drop(file);
    fs::rename(&tmp, &path).map_err(|e| format!("rename: {e}"))?;
    sync_dir(dir).map_err(|e| format!("fsync folder: {e}"))?;
    Ok(bytes)
}

fn state_bytes(manifest: &Manifest) -> Result<Vec<u8>, RunError> {
    serde_json::to_vec_pretty(manifest).map_err(|e| dest_err("files", "encode state", e))
}

/// Write `root/name` through a temporary file, fsync, rename, fsync the folder.
fn write_atomic(root: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = root.join(format!(".{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, root.join(name))?;
    sync_dir(root)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}
