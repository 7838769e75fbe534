//! Loading the state file, checking and locking the directory, and recovering from a
//! crashed run.

use super::commit::{state_bytes, write_atomic};
use super::{Ctx, Format, Manifest, LOCK_FILE, REJECTED_DIR, STATE_FILE};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use sync_core::RunError;

impl<F: Format> Ctx<'_, F> {
    pub(super) fn check(&mut self) -> Result<(), RunError> {
        let kind = self.format.kind();
        let dir = self.root.display();
        if self.root.exists() && !self.root.is_dir() {
            return Err(self.err(
                &format!("{dir}"),
                format!("is not a directory; give `{kind}:DIR` a directory path"),
            ));
        }
        if self.root.is_dir() && !self.root.join(STATE_FILE).exists() {
            // Read only: refuse a foreign directory before leaving a lock file in it.
            self.refuse_foreign_files()?;
        }
        fs::create_dir_all(self.root).map_err(|e| {
            self.err(
                &format!("cannot create directory {dir}"),
                format!("{e}; create it or choose a writable location"),
            )
        })?;
        self.lock()?;
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

    /// Take the exclusive lock on the directory for this sink's lifetime (module
    /// docs), once; the directory exists. Errors: another run holds it, or the lock file
    /// cannot be created or locked.
    pub(super) fn lock(&mut self) -> Result<(), RunError> {
        if self.inner.lock.is_some() {
            return Ok(());
        }
        let dir = self.root.display();
        let path = self.root.join(LOCK_FILE);
        // No truncate, no exclusive create: every run opens the same file, the lock decides.
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| {
                self.err(
                    &format!("directory {dir} is not writable"),
                    format!("{e}; fix its permissions or choose another directory"),
                )
            })?;
        match file.try_lock() {
            Ok(()) => {
                self.inner.lock = Some(file);
                Ok(())
            }
            Err(TryLockError::WouldBlock) => Err(self.err(
                &format!("another run is writing to {dir}"),
                "wait for it to finish or choose another directory",
            )),
            Err(TryLockError::Error(e)) => Err(self.err(
                &format!("cannot lock {}", path.display()),
                format!("{e}; choose a directory on a local file system"),
            )),
        }
    }

    /// A directory without a state file that already holds our kind of files was not
    /// written by driftbridge: recovery would delete those files, so refuse it.
    pub(super) fn refuse_foreign_files(&self) -> Result<(), RunError> {
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

    pub(super) fn is_ours(&self, dir: &str, name: &str) -> bool {
        let ext = if dir == REJECTED_DIR {
            "jsonl"
        } else {
            self.format.ext()
        };
        !name.starts_with('.') && name.ends_with(&format!(".{ext}"))
    }

    /// (folder, file name) of every file one level down.
    pub(super) fn data_files(&self) -> Result<Vec<(String, String)>, RunError> {
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

    pub(super) fn read_manifest(&self) -> Result<Option<Manifest>, RunError> {
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
    pub(super) fn ready(&mut self) -> Result<&Manifest, RunError> {
        if self.inner.manifest.is_none() {
            fs::create_dir_all(self.root).map_err(|e| self.err("create directory", e))?;
            // Before recovery, which would truncate a running run's files.
            self.lock()?;
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
    pub(super) fn recover(&mut self) -> Result<(), RunError> {
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
}
