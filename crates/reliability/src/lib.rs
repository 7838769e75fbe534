//! driftbridge's reliability and security suite (issue 10). The tests live in
//! `tests/tests.rs`; this library only finds the binary they run.
//!
//! The suite runs the real `driftbridge` binary as a child process, because what it checks
//! (a SIGKILL mid-run, exit codes, what reaches stdout and stderr, the files left behind) is
//! only observable from outside the process. [`driftbridge_bin`] finds it:
//!
//! 1. `DRIFTBRIDGE_BIN`, when set, names the binary to test (e.g. a release build);
//! 2. otherwise `<target>/debug/driftbridge` next to the test binary, when it is newer than
//!    every file of the workspace's crates and its `Cargo.lock` (as after
//!    `cargo test --workspace`, which builds it for the CLI's tests);
//! 3. otherwise the suite builds it once per test process with `cargo build -p driftbridge`
//!    into the same target directory (e.g. after `cargo test -p reliability` alone).
//!
//! The crash matrix kills each run at 20 points per destination, as issue 10 asks, in CI
//! too; `RELIABILITY_KILLS=n` changes that and `RELIABILITY_SEED=n` the seed (see
//! `crash_matrix`).
#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::OnceLock;

/// Path of the `driftbridge` binary under test (see the crate docs for how it is found).
///
/// # Panics
/// When the binary cannot be built or found: the suite cannot run without it, and a test
/// failure saying so is the right outcome.
#[allow(clippy::panic)]
pub fn driftbridge_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var_os("DRIFTBRIDGE_BIN") {
        Some(path) => PathBuf::from(path),
        None => build_bin().unwrap_or_else(|e| panic!("cannot build driftbridge: {e}")),
    })
    .clone()
}

/// `<target>/debug`: the test executable lives in `<target>/debug/deps/`.
fn profile_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .ok_or_else(|| format!("unexpected test executable path {}", exe.display()))
}

/// This crate's directory: `CARGO_MANIFEST_DIR` as `cargo test` sets it for the test run,
/// else as it was at compile time. The run-time value comes first because a target dir
/// copied from another checkout keeps this library compiled with that checkout's path, and
/// the binary would then be built from the other checkout's sources.
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Newest modification time of the files that make up the binary.
fn newest_source() -> Option<std::time::SystemTime> {
    fn walk(dir: &std::path::Path, newest: &mut Option<std::time::SystemTime>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path
                .file_name()
                .is_some_and(|n| n == "target" || n == "tests")
            {
                continue;
            }
            if path.is_dir() {
                walk(&path, newest);
            } else if let Ok(m) = entry.metadata().and_then(|m| m.modified()) {
                *newest = Some(newest.map_or(m, |n| n.max(m)));
            }
        }
    }
    let crates = manifest_dir().parent()?.to_path_buf();
    let mut newest = None;
    walk(&crates, &mut newest);
    let lock = crates.parent()?.join("Cargo.lock");
    if let Ok(m) = std::fs::metadata(lock).and_then(|m| m.modified()) {
        newest = Some(newest.map_or(m, |n: std::time::SystemTime| n.max(m)));
    }
    newest
}

fn build_bin() -> Result<PathBuf, String> {
    let profile = profile_dir()?;
    let bin = profile.join(format!("driftbridge{}", std::env::consts::EXE_SUFFIX));
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    if let (Some(built), Some(newest)) = (built, newest_source()) {
        if built > newest {
            return Ok(bin);
        }
    }
    let target = profile
        .parent()
        .ok_or("the profile directory has no parent")?
        .to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.args([
        "build",
        "--quiet",
        "-p",
        "driftbridge",
        "--bin",
        "driftbridge",
    ]);
    if profile.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build
        .arg("--target-dir")
        .arg(&target)
        .current_dir(manifest_dir())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build -p driftbridge failed: {status}"));
    }
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!("{} is missing after the build", bin.display()))
    }
}
