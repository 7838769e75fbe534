//! Shared helpers: an in-process sandbox, a temp data dir with a credential, and the real
//! binary run as a child process.
#![allow(dead_code)]

use drift_sandbox::{SandboxConfig, SandboxHandle};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Name of the credential every [`Env`] has.
pub const CRED: &str = "t";

/// Variables the binary reads that the tests must not inherit from the caller.
const INHERITED: &[&str] = &[
    "DRIFTBRIDGE_DATA_DIR",
    "DRIFTBRIDGE_LOG",
    "DRIFTBRIDGE_MASTER_KEY",
    "RUST_LOG",
    "RUST_BACKTRACE",
];

/// What a finished child process left.
#[derive(Debug)]
pub struct Out {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Out {
    /// stdout parsed as one JSON document (`--json`), or Null.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or(Value::Null)
    }

    /// Panics unless the process exited with `code` and did not panic.
    pub fn expect(&self, code: i32, what: &str) -> &Self {
        assert_no_panic(self, what);
        assert_eq!(
            self.code, code,
            "{what}: exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// The process did not panic (a panic is never the answer to bad input).
pub fn assert_no_panic(out: &Out, what: &str) {
    assert!(
        !out.stderr.contains("panicked") && !out.stdout.contains("panicked"),
        "{what}: the binary panicked\nstderr: {}",
        out.stderr
    );
    assert_ne!(out.code, 101, "{what}: exit code 101 is Rust's panic code");
}

/// A sandbox, a temp dir (data dir, inputs, outputs) and credential [`CRED`] for it.
pub struct Env {
    pub sandbox: SandboxHandle,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

/// A small org without rate limiting, so the tests are quick.
pub fn small(conversations: usize) -> SandboxConfig {
    SandboxConfig {
        conversations,
        messages_per_conversation: 3,
        accounts: 12,
        users: 4,
        rate_limit_per_min: 0,
        ..Default::default()
    }
}

impl Env {
    /// Starts the sandbox and saves credential [`CRED`] with the sandbox token.
    pub async fn start(config: SandboxConfig) -> Env {
        let env = Env::bare(config).await;
        env.store()
            .add_credential(&store::NewCredential {
                name: CRED.into(),
                description: None,
                base_url: Some(env.sandbox.base_url()),
                api_key: SecretString::from(env.sandbox.token()),
                rate_limit_per_min: 60_000,
            })
            .unwrap();
        env
    }

    /// Starts the sandbox with an empty data dir (no credential).
    pub async fn bare(config: SandboxConfig) -> Env {
        Env {
            sandbox: drift_sandbox::start(config).await.unwrap(),
            dir: tempfile::tempdir().unwrap(),
            http: reqwest::Client::new(),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn store(&self) -> store::Store {
        store::Store::open(&self.data_dir()).unwrap()
    }

    /// Writes `bytes` to `name` in the temp dir; returns its path as text.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> String {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    }

    /// The binary with `--data-dir`, run in the temp dir, a clean environment and piped
    /// output; killed when dropped.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        command_in(&self.data_dir(), self.dir.path(), args)
    }

    /// Runs the binary to the end.
    pub async fn run(&self, args: &[&str]) -> Out {
        output(self.command(args)).await
    }

    /// Runs the binary with `VAR=value` set.
    pub async fn run_env(&self, args: &[&str], var: &str, value: &str) -> Out {
        let mut cmd = self.command(args);
        cmd.env(var, value);
        output(cmd).await
    }

    /// `sync --credential t --json` into `destination` with extra arguments.
    pub async fn sync(&self, destination: &str, extra: &[&str]) -> Out {
        let mut args = vec!["--json", "sync", "--credential", CRED, "--destination"];
        args.push(destination);
        args.extend(["--rate-limit-per-min", "60000"]);
        args.extend(extra);
        self.run(&args).await
    }

    /// `GET` (body None) or `POST` an admin route of the sandbox.
    pub async fn admin(&self, path: &str, body: Option<Value>) -> Value {
        admin(&self.http, &self.sandbox.base_url(), path, body).await
    }

    pub async fn faults(&self, faults: Value) {
        self.admin("faults", Some(json!({ "faults": faults })))
            .await;
    }

    pub async fn counts(&self) -> Value {
        self.admin("counts", None).await
    }

    pub async fn requests_total(&self) -> u64 {
        self.admin("stats", None).await["requests_total"]
            .as_u64()
            .unwrap()
    }
}

/// `GET` (body None) or `POST` an admin route of a sandbox at `base`.
pub async fn admin(http: &reqwest::Client, base: &str, path: &str, body: Option<Value>) -> Value {
    let url = format!("{base}/__sandbox/{path}");
    let req = match body {
        Some(b) => http.post(url).json(&b),
        None => http.get(url),
    };
    let resp = req.send().await.unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap()
}

/// The binary with `--data-dir data_dir`, run in `cwd` with a clean environment.
pub fn command_in(data_dir: &Path, cwd: &Path, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(reliability::driftbridge_bin());
    for var in INHERITED {
        cmd.env_remove(var);
    }
    cmd.arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Waits for the command's output.
pub async fn output(mut cmd: tokio::process::Command) -> Out {
    let out = cmd.output().await.unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every file under `dir`, recursively, with its bytes.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
    out
}

/// True when `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// A sqlite count.
pub fn sql_count(db: &Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}
