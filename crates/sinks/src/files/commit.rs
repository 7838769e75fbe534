//! The commit protocol: write, fsync and rename each file, then the state file.

use super::{
    Ctx, FileEntry, FileTable, Format, Manifest, Recent, COMPACT_BYTES, PART_BYTES, REJECTED_DIR,
    STATE_FILE, WINDOW_RECORDS,
};
use crate::layout;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use sync_core::{Batch, CommitReport, Record, Rejected, RunError, Stream};

/// One line of `_rejected/<run-id>.jsonl`: a record the source quarantined or this
/// sink refused.
struct RejectedLine {
    stream: String,
    /// The primary key as text, when known.
    primary_key: Option<String>,
    reason: String,
    /// The record as received (JSON; text that is not JSON as a JSON string).
    raw: Value,
    /// RFC 3339.
    rejected_at: String,
}

impl RejectedLine {
    /// The replay-window entry of this line: (stream and hash of the record, hash of the
    /// whole line without its time). The same record rejected again for the same reason
    /// after a crash is not written twice.
    fn window_entry(&self) -> (String, u64) {
        let raw = self.raw.to_string();
        let key = format!(
            "{}\u{1f}{:016x}",
            self.stream,
            layout::fnv1a(raw.as_bytes())
        );
        let line = json!([self.stream, self.primary_key, self.reason, raw]).to_string();
        (key, layout::fnv1a(line.as_bytes()))
    }
}

impl<F: Format> Ctx<'_, F> {
    pub(super) fn prepare(&mut self, streams: Vec<Stream>) -> Result<(), RunError> {
        self.ready()?;
        for def in streams
            .iter()
            .flat_map(|s| layout::tables(s, self.format.twin_suffix()))
        {
            let stream = def.stream;
            fs::create_dir_all(self.root.join(&stream.name))
                .map_err(|e| self.err(&format!("create folder for {}", stream.name), e))?;
            let columns = def.columns;
            self.inner
                .tables
                .insert(stream.name.clone(), Arc::new(FileTable { stream, columns }));
        }
        Ok(())
    }

    pub(super) fn commit(&mut self, batch: &Batch) -> Result<CommitReport, RunError> {
        self.inner.run_id = Some(batch.run_id.clone());
        let mut manifest = self.ready()?.clone();
        let mut window = Window::new(std::mem::take(&mut manifest.recent));
        let mut report = CommitReport::default();
        // Child tables: one row per array element of each live record, written to their
        // own folders; a replaced stream's child tables are replaced with it.
        let mut children = Vec::new();
        let mut replace = batch.replace.clone();
        for record in batch.records.iter().filter(|r| !r.tombstone) {
            if let Some(table) = self.inner.tables.get(&record.stream) {
                for child in &table.stream.children {
                    children.extend(layout::child_records(&table.stream, child, record));
                }
            }
        }
        for stream in &batch.replace {
            if let Some(table) = self.inner.tables.get(stream) {
                replace.extend(table.stream.children.iter().map(|c| c.name.clone()));
            }
        }
        let (groups, refused) = self.group(batch, &children, &replace, &mut window, &mut report)?;
        let mut obsolete = Vec::new();
        for stream in &replace {
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
            let fresh_only = replace.contains(&table.stream.name);
            self.write_stream(&mut manifest, table, records, &batch.run_id, fresh_only)?;
        }
        report.rejected = refused
            .iter()
            .map(|(r, reason)| Rejected {
                stream: r.stream.clone(),
                reason: reason.clone(),
            })
            .collect();
        let now = layout::now_rfc3339();
        let refused = refused.into_iter().map(|(r, reason)| RejectedLine {
            stream: r.stream.clone(),
            primary_key: None,
            reason,
            raw: Value::Object(r.data.clone()),
            rejected_at: now.clone(),
        });
        let quarantined = batch.quarantined.iter().map(|q| RejectedLine {
            stream: q.stream.clone(),
            primary_key: q.key.clone(),
            reason: q.reason.clone(),
            raw: layout::raw_value(&q.raw),
            rejected_at: layout::rfc3339_or_now(q.extracted_at),
        });
        let rejected: Vec<RejectedLine> = refused
            .chain(quarantined)
            .filter(|line| {
                let (key, hash) = line.window_entry();
                window.admit_entry(REJECTED_DIR, key, hash)
            })
            .collect();
        manifest.recent = window.into_recent();
        if !rejected.is_empty() {
            self.write_rejected(&mut manifest, &rejected, &batch.run_id)?;
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

    /// The run ended cleanly: join each stream's per-checkpoint files of this run into one
    /// file per stream (up to [`COMPACT_BYTES`] each; formats that do not append), empty the
    /// replay window, and store both with one state write.
    ///
    /// Crash safety is the commit protocol's: the joined file is written under a temporary
    /// name, fsynced and renamed, then the state file listing it instead of the parts is
    /// renamed into place (the commit point), then the parts are removed. A crash before the
    /// commit point leaves the joined file unlisted (recovery removes it; the parts stay
    /// listed), after it leaves the parts unlisted (recovery removes them). Either way each
    /// record is in exactly one listed file. A run that does not end cleanly (cancelled,
    /// failed, killed) keeps its per-checkpoint files.
    pub(super) fn finish_run(&mut self) -> Result<(), RunError> {
        let mut manifest = self.ready()?.clone();
        let joined = match self.inner.run_id.clone() {
            Some(run_id) if !self.format.appendable() => self.join_parts(&mut manifest, &run_id),
            _ => Vec::new(),
        };
        if manifest.recent.is_empty() && joined.is_empty() {
            return Ok(());
        }
        manifest.recent.clear();
        write_atomic(self.root, STATE_FILE, &state_bytes(&manifest)?)
            .map_err(|e| self.err("write state", e))?;
        self.inner.manifest = Some(manifest);
        for rel in joined {
            if let Err(e) = fs::remove_file(self.root.join(&rel)) {
                tracing::warn!(file = %rel, error = %e, "could not remove a joined file; recovery removes it");
            }
        }
        Ok(())
    }

    /// Join the parts of run `run_id` in `manifest` (see [`Self::finish_run`]); returns the
    /// parts now replaced. A stream whose parts cannot be joined keeps them (logged).
    fn join_parts(&self, manifest: &mut Manifest, run_id: &str) -> Vec<String> {
        let ext = self.format.ext();
        let prefix = format!("{run_id}-");
        let mut by_stream: std::collections::BTreeMap<String, Vec<(String, FileEntry)>> =
            Default::default();
        for (rel, entry) in &manifest.files {
            let Some((dir, name)) = rel.split_once('/') else {
                continue;
            };
            let is_part = dir != REJECTED_DIR
                && name
                    .strip_prefix(&prefix)
                    .and_then(|n| n.strip_suffix(&format!(".{ext}")))
                    .is_some_and(|n| n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit()));
            if is_part {
                by_stream
                    .entry(dir.to_string())
                    .or_default()
                    .push((rel.clone(), *entry));
            }
        }
        let mut replaced = Vec::new();
        for (stream, parts) in by_stream {
            if parts.len() < 2 {
                continue;
            }
            // Chunks of parts up to COMPACT_BYTES (a part larger than that is a chunk alone).
            let mut chunks: Vec<Vec<(String, FileEntry)>> = vec![Vec::new()];
            let mut size = 0;
            for part in parts {
                if size + part.1.bytes > COMPACT_BYTES && !chunks.last().is_some_and(Vec::is_empty)
                {
                    chunks.push(Vec::new());
                    size = 0;
                }
                size += part.1.bytes;
                if let Some(chunk) = chunks.last_mut() {
                    chunk.push(part);
                }
            }
            for (i, chunk) in chunks.into_iter().enumerate() {
                if chunk.len() < 2 {
                    continue;
                }
                let target = if i == 0 {
                    format!("{stream}/{run_id}.{ext}")
                } else {
                    format!("{stream}/{run_id}.{}.{ext}", i + 1)
                };
                let paths: Vec<std::path::PathBuf> =
                    chunk.iter().map(|(rel, _)| self.root.join(rel)).collect();
                let format = self.format;
                let written = publish(self.root, &target, None, |file, _| {
                    format
                        .compact(&paths, file)
                        .unwrap_or_else(|| Err("this format does not join files".into()))
                });
                match written {
                    Ok(bytes) => {
                        let records = chunk.iter().map(|(_, e)| e.records).sum();
                        for (rel, _) in &chunk {
                            manifest.files.remove(rel);
                            replaced.push(rel.clone());
                        }
                        manifest.files.insert(target, FileEntry { bytes, records });
                    }
                    Err(e) => {
                        tracing::warn!(stream = %stream, error = %e, "the run's files of this stream stay one per checkpoint");
                    }
                }
            }
        }
        replaced
    }

    /// The batch's records to write, by stream in first-seen order, and the refused ones;
    /// counts every accepted record in `report` (also those the replay window skips: they
    /// are in the files already): records in `written`, tombstones in `deleted`.
    #[allow(clippy::type_complexity)]
    fn group<'b>(
        &self,
        batch: &'b Batch,
        children: &'b [Record],
        replace: &[String],
        window: &mut Window,
        report: &mut CommitReport,
    ) -> Result<
        (
            Vec<(Arc<FileTable>, Vec<&'b Record>)>,
            Vec<(&'b Record, String)>,
        ),
        RunError,
    > {
        let mut groups: Vec<(Arc<FileTable>, Vec<&Record>)> = Vec::new();
        let mut rejected = Vec::new();
        let n = batch.records.len();
        for (i, record) in batch.records.iter().chain(children).enumerate() {
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
            let counts = if record.tombstone {
                &mut report.deleted
            } else {
                &mut report.written
            };
            if i < n {
                *counts.entry(record.stream.clone()).or_default() += 1;
            }
            // A replaced stream's file must hold all its records, seen before or not.
            let replacing = replace.contains(&record.stream);
            if !window.admit(&table.stream, record) && !replacing {
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
        Ok((groups, rejected))
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
        let committed = manifest.files.get(&target).copied();
        let format = self.format;
        let entry = publish(self.root, &target, committed, |file, fresh| {
            format.write(file, table, records, run_id, fresh)
        })
        .map_err(|e| self.err(&format!("write {}", target), e))?;
        let records_before = committed.map_or(0, |c| c.records);
        manifest.files.insert(
            target,
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
        rejected: &[RejectedLine],
        run_id: &str,
    ) -> Result<(), RunError> {
        fs::create_dir_all(self.root.join(REJECTED_DIR))
            .map_err(|e| self.err("create folder for rejected records", e))?;
        let target = append_target(manifest, REJECTED_DIR, run_id, "jsonl", false);
        let committed = manifest.files.get(&target).copied();
        let bytes = publish(self.root, &target, committed, |file, _| {
            let mut out = std::io::BufWriter::new(file);
            for r in rejected {
                let line = json!({"stream": r.stream, "primary_key": r.primary_key,
                    "reason": r.reason, "_raw": r.raw, "run_id": run_id,
                    "rejected_at": r.rejected_at});
                serde_json::to_writer(&mut out, &line).map_err(|e| e.to_string())?;
                out.write_all(b"\n").map_err(|e| e.to_string())?;
            }
            out.flush().map_err(|e| e.to_string())
        })
        .map_err(|e| self.err("write rejected records", e))?;
        manifest.files.insert(
            target,
            FileEntry {
                bytes,
                records: committed.map_or(0, |c| c.records) + rejected.len() as u64,
            },
        );
        Ok(())
    }
}

/// The replay window of a commit (see the module docs).
struct Window {
    recent: Recent,
    /// stream -> primary key -> hash, for lookups.
    index: HashMap<String, HashMap<String, u64>>,
}

impl Window {
    fn new(recent: Recent) -> Self {
        let index = recent
            .iter()
            .map(|(stream, entries)| (stream.clone(), entries.iter().cloned().collect()))
            .collect();
        Self { recent, index }
    }

    /// Whether `record` is new (not identical to one in the window); records it. A
    /// tombstone never matches the record it deletes (its hash is marked).
    fn admit(&mut self, stream: &Stream, record: &Record) -> bool {
        let key = layout::key_of(&stream.primary_key, &record.data);
        let mut text = Value::Object(record.data.clone()).to_string();
        if record.tombstone {
            text.insert_str(0, "tombstone:");
        }
        self.admit_entry(&stream.name, key, layout::fnv1a(text.as_bytes()))
    }

    /// Whether (`key`, `hash`) is new in `bucket` (a stream, or the rejected records);
    /// records it.
    fn admit_entry(&mut self, bucket: &str, key: String, hash: u64) -> bool {
        let index = self.index.entry(bucket.to_owned()).or_default();
        if index.get(&key) == Some(&hash) {
            return false;
        }
        index.insert(key.clone(), hash);
        self.recent
            .entry(bucket.to_owned())
            .or_default()
            .push((key, hash));
        true
    }

    /// The window to store: the last [`WINDOW_RECORDS`] records of each stream.
    fn into_recent(mut self) -> Recent {
        for entries in self.recent.values_mut() {
            let excess = entries.len().saturating_sub(WINDOW_RECORDS);
            entries.drain(..excess);
        }
        self.recent
    }
}

/// The file a run appends to: its last part while under [`PART_BYTES`], else a new part.
fn append_target(
    manifest: &Manifest,
    dir: &str,
    run_id: &str,
    ext: &str,
    fresh_only: bool,
) -> String {
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
        None => name(n),
        Some(e) if e.bytes < PART_BYTES && !fresh_only => name(n),
        Some(_) => name(n + 1),
    }
}

/// The next `<dir>/<prefix><n>.<ext>` not in the manifest, `n` zero-padded to `width`.
fn next_part(manifest: &Manifest, dir: &str, prefix: &str, ext: &str, width: usize) -> String {
    let mut n = 1;
    loop {
        let rel = format!("{dir}/{prefix}{n:0width$}.{ext}");
        if !manifest.files.contains_key(&rel) {
            return rel;
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

pub(super) fn state_bytes(manifest: &Manifest) -> Result<Vec<u8>, RunError> {
    serde_json::to_vec(manifest).map_err(|e| layout::dest_err("files", "encode state", e))
}

/// Write `root/name` through a temporary file, fsync, rename, fsync the folder.
pub(super) fn write_atomic(root: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
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
