//! The one harness of the CLI tests: an in-process sandbox on its own runtime ([`Sandbox`],
//! built with [`Sandbox::builder`]), a temp data dir to run the real binary in ([`Cli`]) and
//! what a run gave ([`Run`]). Every test module uses these; a test only says what differs.

use drift_client::{Client, Contact};
use drift_sandbox::{FaultSpec, SandboxConfig, SandboxHandle, TokenSpec, ALL_SCOPES};
use secrecy::SecretString;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The sandbox's main, full-scope token, and the canary: it must never appear in any output.
pub const TOKEN: &str = "tok_CANARY_9d8c7b6a5f4e3d2c1b0a";
/// Second full-scope token the tests use to look at the sandbox's data.
pub const OBSERVER: &str = "tok_OBSERVER_0a1b2c3d4e5f6a7b";
/// A token with only `conversation_read`.
pub const LIMITED: &str = "tok_LIMITED_1a2b3c4d5e6f7a8b9c0d";
/// A token (`conversation_read`) that expires in two hours.
pub const EXPIRING: &str = "tok_EXPIRING_0f1e2d3c4b5a69788796";
/// A token (`conversation_read`) that expired a minute ago.
pub const EXPIRED: &str = "tok_EXPIRED_5a4b3c2d1e0f9a8b7c6d";

/// Every token of the sandbox: none may appear in a run's output.
const SECRETS: [&str; 5] = [TOKEN, OBSERVER, LIMITED, EXPIRING, EXPIRED];

/// Path of the `driftbridge` binary built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_driftbridge"))
}

/// A sandbox configuration being built; [`SandboxBuilder::start`] runs it.
pub struct SandboxBuilder {
    config: SandboxConfig,
}

impl SandboxBuilder {
    /// Conversations in the org.
    pub fn conversations(mut self, n: usize) -> Self {
        self.config.conversations = n;
        self
    }

    /// Messages per conversation.
    pub fn messages_per_conversation(mut self, n: usize) -> Self {
        self.config.messages_per_conversation = n;
        self
    }

    /// Accounts in the org.
    pub fn accounts(mut self, n: usize) -> Self {
        self.config.accounts = n;
        self
    }

    /// The sandbox's own rate limit (0: none).
    pub fn rate_limit_per_min(mut self, n: u32) -> Self {
        self.config.rate_limit_per_min = n;
        self
    }

    /// Every answer comes after `ms` milliseconds.
    pub fn latency_ms(mut self, ms: u64) -> Self {
        self.config.latency_ms = ms;
        self
    }

    /// The fault plan it starts with.
    pub fn faults(mut self, faults: Vec<FaultSpec>) -> Self {
        self.config.faults = faults;
        self
    }

    /// Any other setting.
    pub fn with(mut self, change: impl FnOnce(&mut SandboxConfig)) -> Self {
        change(&mut self.config);
        self
    }

    /// Starts the sandbox on a free port, on a runtime of its own.
    pub fn start(self) -> Sandbox {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let handle = runtime.block_on(drift_sandbox::start(self.config)).unwrap();
        let observer = {
            let _guard = runtime.enter();
            Client::builder(&handle.base_url(), SecretString::from(OBSERVER))
                .rate_limit_per_min(100_000)
                .build()
                .unwrap()
        };
        Sandbox {
            handle: Some(handle),
            runtime,
            observer,
            http: reqwest::Client::new(),
        }
    }
}

/// An in-process sandbox with the harness's tokens, stopped on drop.
pub struct Sandbox {
    handle: Option<SandboxHandle>,
    /// The runtime it runs on; tests run their own async checks on it ([`Sandbox::block_on`]).
    pub runtime: tokio::runtime::Runtime,
    observer: Client,
    http: reqwest::Client,
}

impl Sandbox {
    /// A sandbox with the default org and the harness's tokens, on a free port.
    pub fn builder() -> SandboxBuilder {
        let now = chrono::Utc::now().timestamp_millis();
        let read = || vec!["conversation_read".to_string()];
        SandboxBuilder {
            config: SandboxConfig {
                port: 0,
                token: TOKEN.to_string(),
                limited_tokens: vec![(LIMITED.to_string(), read())],
                tokens: vec![
                    TokenSpec {
                        token: OBSERVER.to_string(),
                        scopes: ALL_SCOPES.iter().map(|s| s.to_string()).collect(),
                        expires_at: None,
                    },
                    TokenSpec {
                        token: EXPIRING.to_string(),
                        scopes: read(),
                        expires_at: Some(now + 2 * 3_600_000),
                    },
                    TokenSpec {
                        token: EXPIRED.to_string(),
                        scopes: read(),
                        expires_at: Some(now - 60_000),
                    },
                ],
                ..SandboxConfig::default()
            },
        }
    }

    /// A small org (5 conversations, 3 accounts) without a rate limit.
    pub fn start() -> Sandbox {
        Sandbox::small().start()
    }

    /// The builder of [`Sandbox::start`]'s small org.
    pub fn small() -> SandboxBuilder {
        Sandbox::builder()
            .conversations(5)
            .accounts(3)
            .rate_limit_per_min(0)
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        self.handle.as_ref().unwrap().base_url()
    }

    /// Runs `future` on the sandbox's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// `GET /__sandbox/PATH`.
    pub fn admin(&self, path: &str) -> Value {
        self.admin_call(path, None)
    }

    /// `POST /__sandbox/PATH` with a JSON body.
    pub fn admin_post(&self, path: &str, body: Value) -> Value {
        self.admin_call(path, Some(body))
    }

    fn admin_call(&self, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/__sandbox/{path}", self.url());
        self.block_on(async {
            let req = match body {
                Some(b) => self.http.post(url).json(&b),
                None => self.http.get(url),
            };
            let resp = req.send().await.unwrap();
            assert!(resp.status().is_success(), "{path}: {}", resp.status());
            resp.json().await.unwrap()
        })
    }

    /// Replaces the sandbox's fault plan.
    pub fn set_faults(&self, faults: Value) {
        self.admin_post("faults", json!({ "faults": faults }));
    }

    /// Contacts in the sandbox.
    pub fn contact_count(&self) -> u64 {
        self.admin("counts")["contacts"].as_u64().unwrap()
    }

    /// Requests per route so far.
    pub fn route_count(&self, route: &str) -> u64 {
        self.admin("stats")["by_route"][route].as_u64().unwrap_or(0)
    }

    /// A client with the full-scope observer token.
    pub fn observer(&self) -> &Client {
        &self.observer
    }

    /// The contacts with this email, as the observer sees them.
    pub fn by_email(&self, email: &str) -> Vec<Contact> {
        let found = self
            .block_on(self.observer.contacts_by_email(email))
            .unwrap();
        assert!(found.unfit.is_empty(), "{:?}", found.unfit);
        found.items
    }

    /// Creates a contact with these attributes; returns its id.
    pub fn create(&self, attrs: Value) -> i64 {
        let attrs: Map<String, Value> = serde_json::from_value(attrs).unwrap();
        self.block_on(self.observer.create_contact(&attrs))
            .unwrap()
            .id
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.runtime.block_on(h.shutdown());
        }
    }
}

/// A temp dir (data dir `data/`, inputs, outputs) to run the binary in.
pub struct Cli {
    dir: tempfile::TempDir,
    data_dir: PathBuf,
    sandbox: Option<String>,
}

/// What a finished run gave.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// stdout as JSON (`null` when it is not).
    pub json: Value,
}

impl Run {
    /// The summary of stream `name` (a sync's `--json` summary).
    pub fn stream(&self, name: &str) -> &Value {
        self.json["streams"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["stream"] == name))
            .unwrap_or_else(|| panic!("no stream {name} in {}", self.json))
    }

    /// Records stream `name` wrote.
    pub fn written(&self, name: &str) -> u64 {
        self.stream(name)["records_written"].as_u64().unwrap()
    }

    /// The run id of the summary.
    pub fn run_id(&self) -> String {
        self.json["run_id"].as_str().unwrap().to_owned()
    }
}

impl Cli {
    /// An empty data dir.
    pub fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        Cli {
            dir,
            data_dir,
            sandbox: None,
        }
    }

    /// A data dir with credential `sb` (the sandbox's [`TOKEN`], 60000/min).
    pub fn with_sb(sandbox: &Sandbox) -> Cli {
        let cli = Cli::on(sandbox);
        cli.add_credential("sb");
        cli
    }

    /// An empty data dir whose credentials go to `sandbox`.
    pub fn on(sandbox: &Sandbox) -> Cli {
        Cli {
            sandbox: Some(sandbox.url()),
            ..Cli::new()
        }
    }

    /// Adds credential `name` for the sandbox's [`TOKEN`] at 60000 requests a minute.
    pub fn add_credential(&self, name: &str) {
        self.add_credential_at(name, TOKEN, 60_000);
    }

    /// Adds credential `name` with `token` for the sandbox at `per_min` requests a minute.
    pub fn add_credential_at(&self, name: &str, token: &str, per_min: u32) {
        self.store()
            .add_credential(&store::NewCredential {
                name: name.into(),
                description: None,
                base_url: Some(self.sandbox.clone().expect("a Cli::on(sandbox)")),
                api_key: SecretString::from(token.to_owned()),
                rate_limit_per_min: per_min,
            })
            .unwrap();
    }

    /// The temp dir (the runs' working directory).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The data dir (`data/` in the temp dir).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The metadata store of the data dir.
    pub fn store(&self) -> store::Store {
        store::Store::open(&self.data_dir).unwrap()
    }

    /// A file in the temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file in the temp dir; returns its path.
    pub fn write(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    /// `driftbridge --data-dir DATA ARGS...` in the temp dir, without the environment's
    /// master key, data dir and log settings, stdin empty, stdout and stderr piped.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("DRIFTBRIDGE_MASTER_KEY")
            .env_remove("DRIFTBRIDGE_DATA_DIR")
            .env_remove("DRIFTBRIDGE_LOG")
            .env_remove("DRIFTBRIDGE_PUBLIC_URL")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // A push that reads its own results file (a regression of the `--results` = `--from`
        // guard) would write until the disk is full: cap every file it writes at 512 MiB.
        // SAFETY: setrlimit is async-signal-safe and reads a valid rlimit.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                let cap = libc::rlimit {
                    rlim_cur: 512 << 20,
                    rlim_max: 512 << 20,
                };
                libc::setrlimit(libc::RLIMIT_FSIZE, &cap);
                Ok(())
            });
        }
        cmd
    }

    /// Runs `args` to the end.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[], None)
    }

    /// Runs `args` with extra environment variables and optional stdin text.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = stdin {
            let mut input = child.stdin.take().unwrap();
            input.write_all(text.as_bytes()).unwrap();
        }
        finished(args, child.wait_with_output().unwrap())
    }

    /// Runs `--json ARGS...`, asserts exit 0 and returns stdout as JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let run = self.run(&all);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
    }

    /// `credentials add --name NAME --base-url URL --api-key-env T` with T = token.
    pub fn credentials_add(&self, name: &str, url: &str, token: &str, extra: &[&str]) -> Run {
        let mut args = vec!["credentials", "add", "--name", name, "--base-url", url];
        args.extend(["--api-key-env", "T"]);
        args.extend_from_slice(extra);
        self.run_with(&args, &[("T", token)], None)
    }

    /// Every byte of every file in the data dir (database, WAL, key file).
    pub fn all_file_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(self.data_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                bytes.extend(std::fs::read(path).unwrap());
            }
        }
        bytes
    }

    /// `--json sync --credential t --rate-limit-per-min 60000 --destination sqlite:DB ARGS...`
    pub fn sync_command(&self, db: &Path, args: &[&str]) -> Command {
        let dest = format!("sqlite:{}", db.display());
        let mut all = vec!["--json", "sync", "--credential", "t"];
        all.extend(["--rate-limit-per-min", "60000", "--destination", &dest]);
        all.extend_from_slice(args);
        self.command(&all)
    }

    /// A sync (see [`Cli::sync_command`]) into `out.db` in the temp dir.
    pub fn sync(&self, args: &[&str]) -> Run {
        self.sync_into(&self.db(), args)
    }

    /// A sync (see [`Cli::sync_command`]) into `db`.
    pub fn sync_into(&self, db: &Path, args: &[&str]) -> Run {
        let out = self.sync_command(db, args).output().unwrap();
        finished(args, out)
    }

    /// The SQLite database [`Cli::sync`] writes.
    pub fn db(&self) -> PathBuf {
        self.path("out.db")
    }

    /// `push OBJECT --credential sb --from FROM --results RESULTS ARGS...` with `RESULTS` in
    /// the temp dir.
    pub fn push(&self, object: &str, from: &str, results: &str, extra: &[&str]) -> Run {
        let results = self.path(results).display().to_string();
        let mut args = vec!["push", object, "--credential", "sb", "--from", from];
        args.extend(["--results", &results]);
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// `push contacts --credential sb --from FROM --results RESULTS` with `RESULTS` as given
    /// (not under the temp dir).
    pub fn push_to(&self, results: &str, from: &str) -> Run {
        self.run(&[
            "push",
            "contacts",
            "--credential",
            "sb",
            "--from",
            from,
            "--results",
            results,
        ])
    }

    /// The results file as `row -> (outcome, drift_id, reason)`; asserts one line per row.
    pub fn results(&self, name: &str) -> BTreeMap<u64, (String, String, String)> {
        let mut reader = csv::Reader::from_path(self.path(name)).unwrap();
        let headers = reader.headers().unwrap().clone();
        assert_eq!(
            headers.iter().collect::<Vec<_>>(),
            ["row", "key", "outcome", "drift_id", "reason", "input"]
        );
        let mut rows = BTreeMap::new();
        for rec in reader.records() {
            let rec = rec.unwrap();
            let row: u64 = rec[0].parse().unwrap();
            let line = (rec[2].to_string(), rec[3].to_string(), rec[4].to_string());
            assert!(
                rows.insert(row, line).is_none(),
                "row {row} has two outcomes"
            );
        }
        rows
    }

    /// Starts `ARGS...` (a server: `serve`, `sandbox`) and reads its JSON start-up line.
    pub fn start(&self, args: &[&str]) -> (Running, Value) {
        let mut cmd = self.command(args);
        cmd.stderr(Stdio::null());
        start(cmd)
    }
}

/// A finished run's output; asserts no token leaked and nothing panicked.
fn finished(args: &[&str], out: std::process::Output) -> Run {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        json: serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for token in SECRETS {
        assert!(
            !run.stdout.contains(token) && !run.stderr.contains(token),
            "a token leaked in the output of {args:?}:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

/// A running server child, killed on drop.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `cmd` (stdout piped) and reads its JSON start-up line.
pub fn start(mut cmd: Command) -> (Running, Value) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .expect("driftbridge starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("start-up line");
    let v = serde_json::from_str(&line).expect("start-up line is JSON");
    (running, v)
}

/// `(row, outcome)` of each line of a results file.
pub fn outcomes(results: &BTreeMap<u64, (String, String, String)>) -> Vec<(u64, &str)> {
    results
        .iter()
        .map(|(r, (o, _, _))| (*r, o.as_str()))
        .collect()
}

/// Attribute `key` of a contact.
pub fn attr<'a>(c: &'a Contact, key: &str) -> Option<&'a Value> {
    c.attributes.as_ref().and_then(|a| a.get(key))
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every file under `dir`, concatenated (the metadata DB, its WAL, destination files).
pub fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_bytes(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.extend(bytes);
        }
    }
    out
}

/// `count` contacts `PREFIX{i}@example.com`, one a row.
pub fn contacts_csv(prefix: &str, count: u64) -> String {
    let mut csv = String::from("email,name\n");
    for i in 1..=count {
        csv.push_str(&format!("{prefix}{i}@example.com,User {i}\n"));
    }
    csv
}
