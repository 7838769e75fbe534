//! What the file sinks (JSONL, CSV, Parquet) share: directory layout, the commit
//! protocol that keeps files and state consistent, and crash recovery.
//!
//! Layout of a sink directory `DIR`:
//! - `DIR/<stream>/<run-id>.<ext>`: the records of one stream in one run, for formats that
//!   append (JSONL, CSV); past [`PART_BYTES`] the run goes on in `<run-id>-2.<ext>`, ...;
//! - `DIR/<stream>/<run-id>-<n>.<ext>`: one file per stream per checkpoint for formats that
//!   cannot append (Parquet), `n` from 000001; when the run ends cleanly they are joined
//!   into `DIR/<stream>/<run-id>.<ext>` (one row group or more per checkpoint; past
//!   [`COMPACT_BYTES`] the run goes on in `<run-id>.2.<ext>`, ...), by the same
//!   write-then-rename protocol (see `finish_run` in `commit.rs`);
//! - `DIR/_rejected/<run-id>.jsonl`: one JSON object per line with `stream`, `primary_key`
//!   (text, or null when unknown), `reason`, `_raw` (the record as received: JSON, or a
//!   JSON string holding text that is not JSON), `run_id` and `rejected_at` (RFC 3339), for
//!   the records the source quarantined ([`sync_core::Batch::quarantined`], written in the
//!   batch's commit, `rejected_at` when they were read) and those refused here (missing
//!   primary key, `primary_key` null);
//! - `DIR/_driftbridge_state.json`: the source state per scope **and the manifest**, the list
//!   of committed files with their committed size in bytes.
//! - `DIR/.driftbridge.lock`: empty; locked by the run writing into `DIR` (see below).
//!
//! Commit protocol (DESIGN.md §4 "write-then-rename for files"): each file a batch touches is
//! written under a hidden temporary name (`.<name>.tmp`; for an appendable file a copy of the
//! committed file plus the new records), fsynced, and renamed over its final name; then the
//! state file with the new state and manifest is written the same way. The rename of the
//! state file is the commit point. Recovery, run before a sink is prepared or read:
//! temporary files are removed, a data file the manifest does not list (renamed, but the run
//! died before its state was written) is removed, and a file longer than its committed size
//! is truncated to it. The source resumes from the committed state, so each record is in
//! the files once: nothing of a crashed run is left visible beyond its last commit.
//!
//! Exactly once across a resume: after a crash the source resumes from its last committed
//! state and may send records again that were committed before the crash (the engine
//! commits records past the last checkpoint when a batch fills up, and the Drift source
//! re-reads the conversations of the page in progress that were not complete at its last
//! checkpoint). A database absorbs them by upsert; a file would hold them twice. So the
//! state file keeps a replay window, the primary key and a hash of the last
//! [`WINDOW_RECORDS`] records of each stream, and a record identical to one in the window is
//! not written again, except for a stream being replaced, whose new file holds all its
//! records. When a run ends cleanly ([`sync_core::Sink::finish`]) the window is
//! emptied, so the next run's files hold everything that run reads (an incremental run's
//! overlap included: files are logs, readers deduplicate on the primary key).
//!
//! Deletes: files are logs and cannot take a line back, so a tombstone (a record deleted in
//! Drift) is written as a record of its stream with only its primary-key fields,
//! `_deleted = true` and `_deleted_at` (when the deletion was seen), whatever
//! [`crate::OpenOptions::hard_deletes`] says; live records carry `_deleted = false` and a null
//! `_deleted_at`. Readers take the last record per primary key. A replaced stream's new file
//! holds all the batch's records of that stream, tombstones included.
//! [`sync_core::CommitReport::deleted`] counts the tombstones (as `written` counts the
//! records, replayed ones included). Rejected records go through the replay window too, so
//! one sent again after a crash is not kept twice.
//!
//! Why a copy instead of appending in place: a reader (or a lake picking files up) never
//! sees a half-written line. The copy is bounded by [`PART_BYTES`] per checkpoint and is
//! done by the kernel (`std::fs::copy`). Memory is bounded by the batch: records are
//! streamed to the file, never held beyond the batch the engine hands over.
//!
//! One writer per directory at a time: a sink takes an exclusive lock on
//! `DIR/.driftbridge.lock` ([`LOCK_FILE`], `std::fs::File::try_lock`, an advisory lock the
//! operating system drops when the process ends, even killed) at `check`, before it reads
//! or writes anything, and holds it until it is dropped, so for the whole run. A second run
//! into the same directory fails there ("another run is writing to DIR"), before recovery
//! could truncate the first run's files as if they were a crashed run's. The lock file
//! itself stays (empty); removing it could let two runs lock two different files.

use crate::layout::{dest_err, Column};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use sync_core::{Batch, CommitReport, Record, RunError, State, Stream};

/// Name of the state file (state per scope and manifest of committed files).
pub const STATE_FILE: &str = "_driftbridge_state.json";
/// Lock file held by the run writing into the directory (see the module docs).
pub const LOCK_FILE: &str = ".driftbridge.lock";
/// Folder of the rejected records.
pub const REJECTED_DIR: &str = "_rejected";
/// Size past which a run's appendable file rolls over to a new part (8 MiB): each checkpoint
/// copies at most this much (see the module docs).
pub const PART_BYTES: u64 = 8 * 1024 * 1024;

/// Define a public sink type `$name` over `FileSink<$format>`: `open(dir)`, `dir()`
/// and the `Sink` impl delegating to the sink.
macro_rules! file_sink {
    ($(#[$doc:meta])* $name:ident, $format:ident) => {
        $(#[$doc])*
        pub struct $name($crate::files::FileSink<$format>);

        impl $name {
            /// A sink writing into `dir` (created at `check`/`prepare` if missing).
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
        impl sync_core::Sink for $name {
            fn describe(&self) -> String {
                self.0.describe()
            }
            fn batch_size(&self) -> Option<usize> {
                Some($crate::files::BATCH_SIZE)
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
            async fn finish(&mut self) -> Result<(), sync_core::RunError> {
                self.0.finish().await
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
pub(crate) use file_sink;

/// The state file's content.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    /// scope -> key -> state value.
    state: BTreeMap<String, BTreeMap<String, Value>>,
    /// `<stream>/<file>` -> committed size.
    files: BTreeMap<String, FileEntry>,
    /// The replay window: stream -> (primary key, hash of the record) of the last
    /// [`WINDOW_RECORDS`] records committed since the last run that finished cleanly, oldest
    /// first; under [`REJECTED_DIR`], (stream and hash of the raw record, hash of the line)
    /// of the rejected records.
    #[serde(default)]
    recent: Recent,
}

type Recent = BTreeMap<String, Vec<(String, u64)>>;

/// Size up to which a cleanly ended run's per-checkpoint files of a stream are joined into
/// one file (512 MiB); beyond it the run gets one file per this much (formats that do not
/// append, see [`Format::compact`]).
pub const COMPACT_BYTES: u64 = 512 * 1024 * 1024;

/// Records per commit the file sinks ask the engine for (see `sync_core::Sink::batch_size`):
/// a commit writes, fsyncs and renames each file it touches (an appendable one as a copy of
/// up to [`PART_BYTES`]) and the state file, whatever its size. Reading 50,000
/// conversations into JSONL took 51.4 s with 500 records per commit and 16.0 s with 5,000
/// (2026-12-06, bench part 3 sizes against the sandbox).
pub const BATCH_SIZE: usize = 5_000;

/// Records per stream kept in the replay window (see the module docs).
pub const WINDOW_RECORDS: usize = 10_000;

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
    /// File extension without the dot (default: the kind).
    fn ext(&self) -> &'static str {
        self.kind()
    }
    /// Whether a run appends to one file per stream (else: one file per checkpoint).
    /// Default: yes (text formats).
    fn appendable(&self) -> bool {
        true
    }
    /// Suffix of timestamp twin columns (default `_iso`, RFC 3339 text).
    fn twin_suffix(&self) -> &'static str {
        "_iso"
    }
    /// Copy the records of `parts` (files of this format, in order) into `out`, one row
    /// group or more per part, for the compaction of a run's per-checkpoint files when it
    /// ends cleanly (formats that do not append). `None`: the format does not compact (the
    /// default); `Some(Err)`: these parts cannot be joined (e.g. their schemas differ), they
    /// stay as they are.
    fn compact(&self, _parts: &[PathBuf], _out: &mut File) -> Option<Result<(), String>> {
        None
    }
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

/// A directory sink in format `F`; the public sinks wrap it.
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
    /// The locked [`LOCK_FILE`], held until the sink is dropped; `None` until
    /// `check` (or the first use) takes it.
    lock: Option<File>,
    /// The run id of the batches committed by this sink (for the compaction at `finish`).
    run_id: Option<String>,
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

    /// Directory exists or can be created, no other run writes into it (then locked for
    /// this one), is writable, and holds no foreign files.
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

    /// The run ended cleanly: join its per-checkpoint files (formats that do not append),
    /// empty the replay window.
    pub async fn finish(&self) -> Result<(), RunError> {
        self.blocking(|ctx| ctx.finish_run()).await
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
}

mod commit;
mod recover;
