//! CLI tests: `credentials` and `vault` (issue 4). Real binary, temp data dir, an in-process
//! sandbox on a free port. A canary token is checked against every output and file.

use crate::common::bin;
use drift_sandbox::{SandboxConfig, SandboxHandle, TokenSpec};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Full-scope canary token: must never appear in any output or file.
const CANARY: &str = "tok_CANARY_9d8c7b6a5f4e3d2c1b0a";
/// Canary with only `conversation_read`.
const LIMITED: &str = "tok_LIMITED_1a2b3c4d5e6f7a8b9c0d";
/// Canary that expires in two hours.
const EXPIRING: &str = "tok_EXPIRING_0f1e2d3c4b5a69788796";
/// Canary that expired a minute ago.
const EXPIRED: &str = "tok_EXPIRED_5a4b3c2d1e0f9a8b7c6d";

/// A sandbox (with the canary tokens) running on its own runtime for one test.
struct Sandbox {
    handle: Option<SandboxHandle>,
    runtime: tokio::runtime::Runtime,
}

impl Sandbox {
    fn start() -> Sandbox {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        let config = SandboxConfig {
            port: 0,
            conversations: 5,
            token: CANARY.to_string(),
            limited_tokens: vec![(LIMITED.to_string(), vec!["conversation_read".to_string()])],
            tokens: vec![
                TokenSpec {
                    token: EXPIRING.to_string(),
                    scopes: vec!["conversation_read".to_string()],
                    expires_at: Some(now + 2 * 3_600_000),
                },
                TokenSpec {
                    token: EXPIRED.to_string(),
                    scopes: vec!["conversation_read".to_string()],
                    expires_at: Some(now - 60_000),
                },
            ],
            ..SandboxConfig::default()
        };
        let handle = runtime.block_on(drift_sandbox::start(config)).unwrap();
        Sandbox {
            handle: Some(handle),
            runtime,
        }
    }

    fn url(&self) -> String {
        self.handle.as_ref().unwrap().base_url()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.runtime.block_on(h.shutdown());
        }
    }
}

/// A temp data dir and a way to run the binary against it.
struct Cli {
    dir: tempfile::TempDir,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Cli {
    fn new() -> Cli {
        Cli {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .env_remove("DRIFTBRIDGE_MASTER_KEY")
            .env_remove("DRIFTBRIDGE_DATA_DIR")
            .env_remove("DRIFTBRIDGE_LOG")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Run with extra environment variables and optional stdin text.
    fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        let out: Output = child.wait_with_output().unwrap();
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        for token in [CANARY, LIMITED, EXPIRING, EXPIRED] {
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

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[], None)
    }

    /// `credentials add --name NAME --base-url URL --api-key-env T` with T = token.
    fn add(&self, name: &str, url: &str, token: &str, extra: &[&str]) -> Run {
        let mut args = vec![
            "credentials",
            "add",
            "--name",
            name,
            "--base-url",
            url,
            "--api-key-env",
            "T",
        ];
        args.extend_from_slice(extra);
        self.run_with(&args, &[("T", token)], None)
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let run = self.run(&all);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
    }

    /// Every byte of every file in the data dir (database, WAL, key file).
    fn all_file_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(self.data_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                bytes.extend(std::fs::read(path).unwrap());
            }
        }
        bytes
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// A port on 127.0.0.1 with nothing listening.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn add_with_env_key_then_list_shows_a_verified_credential_with_a_masked_key() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let add = cli.add("sandbox", &sandbox.url(), CANARY, &[]);
    assert_eq!(add.code, 0, "{}", add.stderr);
    assert!(add.stdout.contains("✓ host reached"), "{}", add.stdout);
    assert!(add.stdout.contains("✓ token accepted"), "{}", add.stdout);
    assert!(add.stdout.contains("org id: 104455"), "{}", add.stdout);
    assert!(add.stdout.contains("conversation_read"), "{}", add.stdout);
    assert!(add.stdout.contains("expires: never"), "{}", add.stdout);

    let list = cli.run(&["credentials", "list"]);
    assert_eq!(list.code, 0);
    let row = list
        .stdout
        .lines()
        .find(|l| l.starts_with("sandbox"))
        .unwrap();
    assert!(row.contains("verified"), "{row}");
    assert!(row.contains("••••1b0a"), "{row}");
    assert!(row.contains(&sandbox.url()), "{row}");
}

#[test]
fn json_output_of_list_show_and_test() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let add = cli.add(
        "Sandbox",
        &sandbox.url(),
        CANARY,
        &["--description", "local"],
    );
    assert_eq!(add.code, 0, "{}", add.stderr);

    let list = cli.json(&["credentials", "list"]);
    let first = &list.as_array().unwrap()[0];
    assert_eq!(first["name"], "Sandbox");
    assert_eq!(first["description"], "local");
    assert_eq!(first["key_mask"], "••••1b0a");
    assert_eq!(first["status"], "verified");
    assert_eq!(first["org_id"], 104455);
    assert_eq!(first["rate_limit_per_min"], 600);

    let mut show = cli.json(&["credentials", "show", "SANDBOX"]);
    // `show` adds the shared budget's live use to what `list` shows.
    let budget = show.as_object_mut().unwrap().remove("budget").unwrap();
    assert!(budget["requests_last_minute"].is_u64(), "{budget}");
    assert_eq!(budget["paused_until"], serde_json::Value::Null, "{budget}");
    assert_eq!(show, *first);
    assert!(
        show["tested_at"].as_i64().unwrap() > 1_700_000_000_000,
        "epoch ms"
    );

    let test = cli.json(&["credentials", "test", "sandbox"]);
    assert_eq!(test["host_reached"], true);
    assert_eq!(test["token_accepted"], true);
    assert_eq!(test["status"], "verified");
    assert_eq!(test["expires_in_ms"], 0);
    assert_eq!(test["expires_at"], serde_json::Value::Null);
    assert!(test["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "account_read"));
}

#[test]
fn canary_is_absent_from_files_and_verbose_logs() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    assert_eq!(cli.add("a", &sandbox.url(), CANARY, &["-vv"]).code, 0);
    assert_eq!(
        cli.add("b", &sandbox.url(), &format!("Bearer {CANARY}\n"), &[])
            .code,
        0
    );
    let test = cli.run(&["-vv", "credentials", "test", "a"]);
    assert_eq!(test.code, 0, "{}", test.stderr);
    assert!(
        test.stderr.contains("DEBUG"),
        "-vv logs at debug level: {}",
        test.stderr
    );
    let rotate = cli.run_with(
        &["-vv", "credentials", "rotate", "b", "--api-key-stdin"],
        &[],
        Some(CANARY),
    );
    assert_eq!(rotate.code, 0, "{}", rotate.stderr);
    assert_eq!(cli.run(&["-vv", "vault", "rotate-key"]).code, 0);
    let bytes = cli.all_file_bytes();
    assert!(
        contains(&bytes, "••••1b0a"),
        "the scan reads the stored rows"
    );
    assert!(!contains(&bytes, CANARY));
    assert!(!contains(&bytes, &CANARY[..16]));
}

#[test]
fn key_from_stdin_is_trimmed_and_bearer_prefix_stripped_with_a_notice() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let args = [
        "credentials",
        "add",
        "--name",
        "s",
        "--base-url",
        &sandbox.url(),
        "--api-key-stdin",
    ];
    let run = cli.run_with(&args, &[], Some(&format!("  Bearer {CANARY}\r\n")));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("note:") && run.stderr.contains("Bearer"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("✓ token accepted"));
}

#[test]
fn a_key_is_never_taken_from_argv() {
    let cli = Cli::new();
    let run = cli.run(&["credentials", "add", "--name", "x", "--api-key", CANARY]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("--api-key-env") && run.stderr.contains("process list"),
        "{}",
        run.stderr
    );
    let run = cli.run(&[
        "credentials",
        "add",
        "--name",
        "x",
        &format!("--api-key={CANARY}"),
    ]);
    assert_eq!(run.code, 2);
    assert!(cli
        .json(&["credentials", "list"])
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn missing_or_malformed_keys_are_rejected() {
    let cli = Cli::new();
    let no_key = cli.run(&["credentials", "add", "--name", "x", "--no-test"]);
    assert_eq!(no_key.code, 2);
    assert!(
        no_key.stderr.contains("api_key") && no_key.stderr.contains("missing"),
        "{}",
        no_key.stderr
    );

    let unset = cli.run(&[
        "credentials",
        "add",
        "--name",
        "x",
        "--api-key-env",
        "NOPE_UNSET_VAR",
    ]);
    assert_eq!(unset.code, 2);
    assert!(unset.stderr.contains("NOPE_UNSET_VAR"), "{}", unset.stderr);

    for (bad, what) in [
        ("tok_CANARY 9d8c7b6a5f4e3d2c1b0a", "whitespace"),
        ("tok_CANARY\u{1b}9d8c7b6a5f4e3d2c1b0a", "control"),
        ("   ", "empty"),
    ] {
        let run = cli.run_with(
            &["credentials", "add", "--name", "x", "--api-key-env", "T"],
            &[("T", bad)],
            None,
        );
        assert_eq!(run.code, 2, "{bad:?}");
        assert!(
            run.stderr.contains("api_key") && run.stderr.contains(what),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("9d8c7b6a"), "{}", run.stderr);
    }
    assert!(cli
        .json(&["credentials", "list"])
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn a_key_shorter_than_16_characters_is_refused_on_add_and_rotate() {
    const SHORT: &str = "tok_a1b2c3d4e5"; // 14 characters
    let fix = "api_key: the API key is too short: Drift access tokens are much longer than 16 characters; paste the whole token";
    let cli = Cli::new();
    for args in [
        &[
            "credentials",
            "add",
            "--name",
            "x",
            "--api-key-env",
            "T",
            "--no-test",
        ][..],
        &[
            "credentials",
            "add",
            "--name",
            "x",
            "--api-key-stdin",
            "--no-test",
        ][..],
    ] {
        let run = cli.run_with(args, &[("T", SHORT)], Some(SHORT));
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(fix), "{}", run.stderr);
        assert!(!run.stderr.contains(SHORT) && !run.stdout.contains(SHORT));
    }
    assert!(cli
        .json(&["credentials", "list"])
        .as_array()
        .unwrap()
        .is_empty());

    // A rotation to a short key is refused and the saved key stays.
    let add = cli.run_with(
        &[
            "credentials",
            "add",
            "--name",
            "x",
            "--api-key-env",
            "T",
            "--no-test",
        ],
        &[("T", CANARY)],
        None,
    );
    assert_eq!(add.code, 0, "{}", add.stderr);
    let rotate = cli.run_with(
        &[
            "credentials",
            "rotate",
            "x",
            "--api-key-env",
            "T",
            "--no-test",
        ],
        &[("T", SHORT)],
        None,
    );
    assert_eq!(rotate.code, 2, "{}", rotate.stderr);
    assert!(rotate.stderr.contains(fix), "{}", rotate.stderr);
    assert_eq!(
        cli.json(&["credentials", "show", "x"])["key_mask"],
        "••••1b0a"
    );
}

#[test]
fn name_description_and_duplicate_errors_name_the_field() {
    let cli = Cli::new();
    let add = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "credentials",
            "add",
            "--name",
            name,
            "--api-key-env",
            "T",
            "--no-test",
        ];
        args.extend_from_slice(extra);
        cli.run_with(&args, &[("T", CANARY)], None)
    };
    assert_eq!(add("Prod", &[]).code, 0);
    let long_name = "n".repeat(101);
    let long_desc = "d".repeat(1001);
    for (run, needle) in [
        (add("", &[]), "name"),
        (add(&long_name, &[]), "at most 100"),
        (add("PROD", &[]), "already taken"),
        (add("ok", &["--description", &long_desc]), "description"),
        (
            add("ok", &["--rate-limit-per-min", "0"]),
            "rate_limit_per_min",
        ),
    ] {
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
    let list = cli.json(&["credentials", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        list[0]["status"], "unverified",
        "--no-test leaves it unverified"
    );
    let ok = add("slow", &["--rate-limit-per-min", "60"]);
    assert_eq!(ok.code, 0);
    assert_eq!(
        cli.json(&["credentials", "show", "slow"])["rate_limit_per_min"],
        60
    );
}

#[test]
fn base_url_rules() {
    let cli = Cli::new();
    let add = |name: &str, url: &str| {
        let args = [
            "credentials",
            "add",
            "--name",
            name,
            "--base-url",
            url,
            "--api-key-env",
            "T",
            "--no-test",
        ];
        cli.run_with(&args, &[("T", CANARY)], None)
    };
    let plain = add("a", "http://example.com");
    assert_eq!(plain.code, 2);
    assert!(
        plain.stderr.contains("base_url") && plain.stderr.contains("loopback"),
        "{}",
        plain.stderr
    );
    let junk = add("a", "not a url");
    assert_eq!(junk.code, 2);
    assert!(
        junk.stderr.contains("base_url") && junk.stderr.contains("not a URL"),
        "{}",
        junk.stderr
    );

    let path = add("p", "https://proxy.example.com/drift/?x=1");
    assert_eq!(path.code, 0, "{}", path.stderr);
    assert!(
        path.stderr.contains("warning:") && path.stderr.contains("/drift"),
        "{}",
        path.stderr
    );
    assert_eq!(
        cli.json(&["credentials", "show", "p"])["base_url"],
        "https://proxy.example.com/drift"
    );
    assert_eq!(add("d", "https://driftapi.com///").code, 0);
    assert_eq!(
        cli.json(&["credentials", "show", "d"])["base_url"],
        "https://driftapi.com"
    );
    assert_eq!(add("l", "http://localhost:9").code, 0);
}

#[test]
fn rejected_token_exits_3_and_marks_the_credential_failed() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let bad = "tok_not_a_sandbox_token_12345";
    let run = cli.add("bad", &sandbox.url(), bad, &[]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("✓ host reached") && run.stdout.contains("✗ token accepted"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("rejected") && run.stderr.contains("rotate bad"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(bad) && !run.stdout.contains(bad));
    let show = cli.json(&["credentials", "show", "bad"]);
    assert_eq!(show["status"], "failed");
    assert!(show["last_error"].as_str().unwrap().contains("rejected"));

    // Rotating to a good key re-tests and verifies it.
    let rotate = cli.run_with(
        &["credentials", "rotate", "bad", "--api-key-env", "T"],
        &[("T", CANARY)],
        None,
    );
    assert_eq!(rotate.code, 0, "{}", rotate.stderr);
    let show = cli.json(&["credentials", "show", "bad"]);
    assert_eq!(
        (show["status"].as_str(), show["key_mask"].as_str()),
        (Some("verified"), Some("••••1b0a"))
    );
}

#[test]
fn unreachable_host_exits_1_naming_the_host() {
    let cli = Cli::new();
    let url = format!("http://127.0.0.1:{}", closed_port());
    let run = cli.add("down", &url, CANARY, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let host = url.trim_start_matches("http://");
    assert!(
        run.stderr
            .contains(&format!("could not reach the host {host}")),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("✗ host reached"), "{}", run.stdout);
    let test = cli.run(&["--json", "credentials", "test", "down"]);
    assert_eq!(test.code, 1);
    let report: serde_json::Value = serde_json::from_str(&test.stdout).unwrap();
    assert_eq!(report["host_reached"], false);
    assert_eq!(report["host"], host);
}

#[test]
fn scope_limited_token_reports_missing_scopes_for_accounts() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let run = cli.add("ro", &sandbox.url(), LIMITED, &["--for", "accounts"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("missing scopes") && run.stderr.contains("account_read"),
        "{}",
        run.stderr
    );
    let test = cli.run(&[
        "--json",
        "credentials",
        "test",
        "ro",
        "--for",
        "conversations,accounts,users",
    ]);
    assert_eq!(test.code, 3);
    let report: serde_json::Value = serde_json::from_str(&test.stdout).unwrap();
    assert_eq!(
        report["missing_scopes"],
        serde_json::json!(["account_read", "user_read"])
    );
    assert_eq!(report["token_accepted"], true);
    // The token itself works: it stays verified, with its scopes.
    assert_eq!(
        cli.json(&["credentials", "show", "ro"])["scopes"],
        serde_json::json!(["conversation_read"])
    );
    assert_eq!(
        cli.run(&[
            "credentials",
            "test",
            "ro",
            "--for",
            "conversations,messages"
        ])
        .code,
        0
    );
    let unknown = cli.run(&["credentials", "test", "ro", "--for", "convos"]);
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("convos"), "{}", unknown.stderr);
}

#[test]
fn extra_scopes_give_a_least_privilege_warning() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let run = cli.add("full", &sandbox.url(), CANARY, &["--for", "conversations"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("least privilege") && run.stderr.contains("account_write"),
        "{}",
        run.stderr
    );
}

#[test]
fn expiring_token_reports_its_expiry() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    assert_eq!(
        cli.add("exp", &sandbox.url(), EXPIRING, &["--no-test"])
            .code,
        0
    );
    let report = cli.json(&["credentials", "test", "exp"]);
    let left = report["expires_in_ms"].as_i64().unwrap();
    assert!(
        left > 0 && left <= 2 * 3_600_000,
        "expires_in is milliseconds: {left}"
    );
    // Drift just accepted the token, so its expiry lies ahead (within the two hours).
    let now = chrono::Utc::now().timestamp_millis();
    let at = report["expires_at"].as_i64().unwrap();
    assert!(
        at > now - 60_000 && at <= now + 2 * 3_600_000 + 60_000,
        "expires_at {at}, now {now}"
    );
    assert_eq!(
        cli.json(&["credentials", "show", "exp"])["expires_at"],
        report["expires_at"]
    );
    let human = cli.run(&["credentials", "test", "exp"]);
    assert!(
        human.stdout.contains("expires: 20") && human.stdout.contains("(in 1h 5"),
        "{}",
        human.stdout
    );
}

#[test]
fn update_changes_fields_and_validates_them() {
    let cli = Cli::new();
    let add = cli.run_with(
        &[
            "credentials",
            "add",
            "--name",
            "a",
            "--api-key-env",
            "T",
            "--no-test",
        ],
        &[("T", CANARY)],
        None,
    );
    assert_eq!(add.code, 0);
    let none = cli.run(&["credentials", "update", "a"]);
    assert_eq!(none.code, 2);
    assert!(none.stderr.contains("nothing to update"));
    let bad = cli.run(&[
        "credentials",
        "update",
        "a",
        "--base-url",
        "http://10.1.2.3",
    ]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("base_url"));
    let ok = cli.run(&[
        "credentials",
        "update",
        "a",
        "--name",
        "renamed",
        "--description",
        "d",
        "--base-url",
        "https://eu.example.com",
        "--rate-limit-per-min",
        "100",
    ]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let show = cli.json(&["credentials", "show", "RENAMED"]);
    assert_eq!(show["description"], "d");
    assert_eq!(show["base_url"], "https://eu.example.com");
    assert_eq!(show["rate_limit_per_min"], 100);
    let missing = cli.run(&["credentials", "show", "a"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("\"a\" not found"),
        "{}",
        missing.stderr
    );
}

#[test]
fn delete_refuses_while_used_unless_forced() {
    let cli = Cli::new();
    let add = cli.run_with(
        &[
            "credentials",
            "add",
            "--name",
            "prod",
            "--api-key-env",
            "T",
            "--no-test",
        ],
        &[("T", CANARY)],
        None,
    );
    assert_eq!(add.code, 0);
    {
        let store = store::Store::open(cli.data_dir()).unwrap();
        store
            .add_source("crm", "prod", &["conversations".to_string()])
            .unwrap();
        store
            .add_destination("local", "sqlite", None, &serde_json::json!({}))
            .unwrap();
        store.add_flow("nightly", "crm", "local").unwrap();
    }
    let refused = cli.run(&["credentials", "delete", "prod"]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("data source \"crm\"")
            && refused.stderr.contains("flow \"nightly\"")
            && refused.stderr.contains("--force"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        cli.json(&["credentials", "list"]).as_array().unwrap().len(),
        1
    );
    let forced = cli.run(&["credentials", "delete", "prod", "--force"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(forced.stderr.contains("crm"), "{}", forced.stderr);
    assert!(cli
        .json(&["credentials", "list"])
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn vault_rotate_key_then_read_back() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    assert_eq!(cli.add("s", &sandbox.url(), CANARY, &[]).code, 0);
    let key_file = cli.data_dir().join("master.key");
    let before = std::fs::read_to_string(&key_file).unwrap();
    let rotate = cli.json(&["vault", "rotate-key"]);
    assert_eq!(
        (
            rotate["from_version"].as_i64(),
            rotate["to_version"].as_i64(),
            rotate["secrets"].as_i64()
        ),
        (Some(1), Some(2), Some(1))
    );
    assert_ne!(std::fs::read_to_string(&key_file).unwrap(), before);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert_eq!(
        cli.run(&["credentials", "test", "s"]).code,
        0,
        "the key reads back after rotation"
    );

    // With the old key the vault does not open, and nothing changes.
    let old = before.trim();
    let wrong = cli.run_with(
        &["credentials", "test", "s"],
        &[("DRIFTBRIDGE_MASTER_KEY", old)],
        None,
    );
    assert_eq!(wrong.code, 1);
    assert!(
        wrong.stderr.contains("DRIFTBRIDGE_MASTER_KEY") && wrong.stderr.contains("does not open"),
        "{}",
        wrong.stderr
    );
}

#[test]
fn master_key_from_environment_and_wrong_key_changes_nothing() {
    let cli = Cli::new();
    let key_a = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="; // 32 x 'A'
    let key_b = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="; // 32 x 'B'
    let add = |name: &str, key: &str| {
        let args = [
            "credentials",
            "add",
            "--name",
            name,
            "--api-key-env",
            "T",
            "--no-test",
        ];
        cli.run_with(
            &args,
            &[("T", CANARY), ("DRIFTBRIDGE_MASTER_KEY", key)],
            None,
        )
    };
    assert_eq!(add("one", key_a).code, 0);
    assert!(
        !cli.data_dir().join("master.key").exists(),
        "no key file when the key comes from the environment"
    );
    let before = vault_rows(cli.data_dir());
    let wrong = add("two", key_b);
    assert_eq!(wrong.code, 1);
    assert!(
        wrong.stderr.contains("nothing was changed"),
        "{}",
        wrong.stderr
    );
    // The vault's key is needed by every command, listing included.
    let listed = cli.run_with(
        &["--json", "credentials", "list"],
        &[("DRIFTBRIDGE_MASTER_KEY", key_a)],
        None,
    );
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let keyless = cli.run(&["credentials", "list"]);
    assert_eq!(keyless.code, 1);
    assert!(
        keyless.stderr.contains("is missing") && keyless.stderr.contains("DRIFTBRIDGE_MASTER_KEY"),
        "{}",
        keyless.stderr
    );
    assert_eq!(vault_rows(cli.data_dir()), before);

    let bad = add("two", "not-base64!");
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("DRIFTBRIDGE_MASTER_KEY") && bad.stderr.contains("base64"),
        "{}",
        bad.stderr
    );

    // Rotating an environment key needs the new key from another variable.
    let env = [("DRIFTBRIDGE_MASTER_KEY", key_a), ("NEW_KEY", key_b)];
    let refused = cli.run_with(&["vault", "rotate-key"], &env[..1], None);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("--new-key-env"),
        "{}",
        refused.stderr
    );
    let rotated = cli.run_with(
        &["vault", "rotate-key", "--new-key-env", "NEW_KEY"],
        &env,
        None,
    );
    assert_eq!(rotated.code, 0, "{}", rotated.stderr);
    assert!(
        rotated.stderr.contains("set DRIFTBRIDGE_MASTER_KEY"),
        "{}",
        rotated.stderr
    );
    assert_eq!(add("two", key_b).code, 0);
    assert_eq!(add("three", key_a).code, 1);
}

/// A malformed or wrong `DRIFTBRIDGE_MASTER_KEY` fails every command that opens the store,
/// also those that read no secret (`credentials list`, `runs list`), naming the variable and
/// the fix; nothing is created or changed.
#[test]
fn every_store_command_refuses_a_bad_master_key() {
    let cli = Cli::new();
    let key_a = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="; // 32 x 'A'
    let key_b = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="; // 32 x 'B'
    let commands: [&[&str]; 6] = [
        &["credentials", "list"],
        &["--json", "credentials", "list"],
        &["credentials", "show", "one"],
        &["runs", "list"],
        &["sync", "--credential", "one"],
        &[
            "push",
            "contacts",
            "--credential",
            "one",
            "--from",
            "none.csv",
        ],
    ];
    // Before anything is stored: a malformed key is refused, and no key file appears.
    for bad in ["not base64!", "QUFB", ""] {
        for args in commands {
            let out = cli.run_with(args, &[("DRIFTBRIDGE_MASTER_KEY", bad)], None);
            assert_eq!(out.code, 1, "{args:?} with {bad:?}: {}", out.stderr);
            assert!(
                out.stderr.contains("DRIFTBRIDGE_MASTER_KEY")
                    && out.stderr.contains("openssl rand -base64 32")
                    && out.stderr.contains("unset DRIFTBRIDGE_MASTER_KEY"),
                "{args:?}: {}",
                out.stderr
            );
        }
    }
    assert!(!cli.data_dir().join("master.key").exists());
    let added = cli.run_with(
        &[
            "credentials",
            "add",
            "--name",
            "one",
            "--api-key-env",
            "T",
            "--no-test",
        ],
        &[("T", CANARY), ("DRIFTBRIDGE_MASTER_KEY", key_a)],
        None,
    );
    assert_eq!(added.code, 0, "{}", added.stderr);
    let before = vault_rows(cli.data_dir());
    // A well-formed key that is not the vault's.
    for args in commands {
        let out = cli.run_with(args, &[("DRIFTBRIDGE_MASTER_KEY", key_b)], None);
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("DRIFTBRIDGE_MASTER_KEY") && out.stderr.contains("does not open"),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert_eq!(vault_rows(cli.data_dir()), before);
    let listed = cli.run_with(
        &["--json", "credentials", "list"],
        &[("DRIFTBRIDGE_MASTER_KEY", key_a)],
        None,
    );
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    // Without a key the store still opens (the key file is made on first use).
    let fresh = Cli::new();
    assert_eq!(fresh.run_with(&["runs", "list"], &[], None).code, 0);
}

/// Every row of the vault tables, to show that a refused command changed nothing.
fn vault_rows(data_dir: &Path) -> Vec<(String, Vec<u8>)> {
    let db = rusqlite::Connection::open(data_dir.join("driftbridge.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT owner_id, ciphertext FROM secrets UNION ALL SELECT version, check_ct FROM vault_keys")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get::<_, rusqlite::types::Value>(0)?, r.get(1)?))
    })
    .unwrap()
    .map(|r| {
        let (k, v) = r.unwrap();
        (format!("{k:?}"), v)
    })
    .collect()
}

#[test]
fn tampered_ciphertext_gives_a_decryption_error_naming_the_credential() {
    let cli = Cli::new();
    let add = cli.run_with(
        &[
            "credentials",
            "add",
            "--name",
            "Billing",
            "--api-key-env",
            "T",
            "--no-test",
        ],
        &[("T", CANARY)],
        None,
    );
    assert_eq!(add.code, 0);
    {
        let db = rusqlite::Connection::open(cli.data_dir().join("driftbridge.db")).unwrap();
        let mut ct: Vec<u8> = db
            .query_row("SELECT ciphertext FROM secrets", [], |r| r.get(0))
            .unwrap();
        ct[0] ^= 0x80;
        db.execute("UPDATE secrets SET ciphertext = ?1", [ct])
            .unwrap();
    }
    let run = cli.run(&["credentials", "test", "billing"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("cannot decrypt") && run.stderr.contains("\"Billing\""),
        "{}",
        run.stderr
    );
}

/// Run `args` on a pseudo-terminal (util-linux `script`), answer the key prompt with `key`
/// once it is shown, and return everything the terminal displayed and the exit code.
fn run_on_terminal(cli: &Cli, args: &[&str], key: &str) -> (i32, String) {
    use std::io::Read;
    use std::sync::{Arc, Mutex};
    let mut line = format!(
        "{} --data-dir {}",
        bin().display(),
        cli.data_dir().display()
    );
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    let mut child = Command::new("script")
        .args(["-qefc", &line, "/dev/null"])
        .env_remove("DRIFTBRIDGE_MASTER_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs the CLI on a terminal");
    let shown = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = Arc::clone(&shown);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !String::from_utf8_lossy(&shown.lock().unwrap()).contains("input hidden") {
        assert!(std::time::Instant::now() < deadline, "no prompt shown");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{key}\n").as_bytes()).unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    let text = String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
    (status.code().unwrap_or(-1), text)
}

#[test]
fn key_is_prompted_for_without_echo() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let url = sandbox.url();
    let args = [
        "credentials",
        "add",
        "--name",
        "typed",
        "--base-url",
        url.as_str(),
    ];
    let (code, screen) = run_on_terminal(&cli, &args, &format!("  {CANARY}  "));
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("Drift API key (input hidden):"), "{screen}");
    assert!(screen.contains("✓ token accepted"), "{screen}");
    assert!(!screen.contains(CANARY), "the key was echoed: {screen}");
    assert_eq!(
        cli.json(&["credentials", "show", "typed"])["key_mask"],
        "••••1b0a"
    );
}

#[test]
fn for_needs_a_test() {
    let cli = Cli::new();
    let args = [
        "credentials",
        "add",
        "--name",
        "x",
        "--api-key-env",
        "T",
        "--no-test",
        "--for",
        "accounts",
    ];
    let run = cli.run_with(&args, &[("T", CANARY)], None);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("--no-test") && run.stderr.contains("--for"),
        "{}",
        run.stderr
    );
    assert!(cli
        .json(&["credentials", "list"])
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn expired_token_is_rejected() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let run = cli.add("old", &sandbox.url(), EXPIRED, &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("rejected"), "{}", run.stderr);
    assert_eq!(
        cli.json(&["credentials", "show", "old"])["status"],
        "failed"
    );
}

/// Every file under `dir`, concatenated (the metadata DB, its WAL, destination files).
fn all_bytes(dir: &Path) -> Vec<u8> {
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

fn oauth_add(cli: &Cli, url: &str, name: &str, env: &[(&str, &str)]) -> Run {
    cli.run_with(
        &[
            "--json",
            "credentials",
            "add",
            "--name",
            name,
            "--base-url",
            url,
            "--api-key-env",
            "T",
            "--oauth-client-id",
            drift_sandbox::DEFAULT_OAUTH_CLIENT_ID,
            "--oauth-client-secret-env",
            "OS",
            "--oauth-refresh-token-env",
            "OR",
        ],
        env,
        None,
    )
}

fn sandbox_route_count(sandbox: &Sandbox, route: &str) -> u64 {
    let url = format!("{}/__sandbox/stats", sandbox.url());
    let stats: serde_json::Value = sandbox
        .runtime
        .block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() });
    stats["by_route"][route].as_u64().unwrap_or(0)
}

#[test]
fn an_expired_oauth_token_is_refreshed_kept_encrypted_and_used_by_the_next_sync() {
    use drift_sandbox::{DEFAULT_OAUTH_CLIENT_SECRET as SECRET, DEFAULT_REFRESH_TOKEN as REFRESH};
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let env = [("T", EXPIRED), ("OS", SECRET), ("OR", REFRESH)];
    let add = oauth_add(&cli, &sandbox.url(), "oauth-app", &env);
    assert_eq!(add.code, 0, "{}\n{}", add.stdout, add.stderr);
    let out: serde_json::Value = serde_json::from_str(&add.stdout).unwrap();
    let credential = &out["credential"];
    assert_eq!(credential["status"], "verified", "{out}");
    assert_eq!(
        credential["oauth_client_id"],
        drift_sandbox::DEFAULT_OAUTH_CLIENT_ID
    );
    assert_ne!(
        credential["key_mask"],
        format!("••••{}", &EXPIRED[EXPIRED.len() - 4..]),
        "the key is now the refreshed access token"
    );
    let now = chrono::Utc::now().timestamp_millis();
    let expires_at = credential["expires_at"].as_i64().unwrap();
    assert!(
        expires_at > now + 3_600_000,
        "about 2 hours ahead: {expires_at}"
    );
    assert_eq!(sandbox_route_count(&sandbox, "oauth.token"), 1);

    let show = cli.run(&["credentials", "show", "oauth-app"]);
    assert!(
        show.stdout
            .contains("OAuth app sandbox-oauth-app (an expired access token is refreshed)"),
        "{}",
        show.stdout
    );

    // The next command uses the stored new token: no second refresh.
    let out_dir = cli.data_dir().join("sinks").join("out");
    let dest = format!("jsonl:{}", out_dir.display());
    let sync = cli.run(&[
        "sync",
        "--credential",
        "oauth-app",
        "--streams",
        "conversations",
        "--destination",
        &dest,
    ]);
    assert_eq!(sync.code, 0, "{}\n{}", sync.stdout, sync.stderr);
    // jsonl:DIR writes DIR/<stream>/<run id>.jsonl.
    let written = all_bytes(&out_dir.join("conversations"));
    assert_eq!(String::from_utf8_lossy(&written).lines().count(), 5);
    assert_eq!(sandbox_route_count(&sandbox, "oauth.token"), 1);

    // Neither the app secret nor any token (old or minted) is readable anywhere on disk or
    // in the output.
    let bytes = all_bytes(cli.data_dir());
    for secret in [
        SECRET,
        REFRESH,
        EXPIRED,
        "sbx-oauth-access-",
        "sbx-oauth-refresh-",
    ] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} found in the data dir"
        );
        for text in [
            &add.stdout,
            &add.stderr,
            &show.stdout,
            &sync.stdout,
            &sync.stderr,
        ] {
            assert!(!text.contains(secret), "{secret} printed: {text}");
        }
    }
}

#[test]
fn a_refused_refresh_or_a_missing_oauth_variable_is_explained() {
    use drift_sandbox::{DEFAULT_OAUTH_CLIENT_SECRET as SECRET, DEFAULT_REFRESH_TOKEN as REFRESH};
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let wrong = "not-the-client-secret-0000";
    let add = oauth_add(
        &cli,
        &sandbox.url(),
        "bad-secret",
        &[("T", EXPIRED), ("OS", wrong), ("OR", REFRESH)],
    );
    assert_eq!(add.code, 3, "{}\n{}", add.stdout, add.stderr);
    // A wrong client secret is not cured by authorizing again: the message says what is
    // wrong and how to save the right one.
    for part in [
        "invalid_client",
        "the OAuth client id or client secret is wrong",
        "driftbridge credentials rotate bad-secret --api-key-env VAR --oauth-client-id ID --oauth-client-secret-env VAR --oauth-refresh-token-env VAR",
        "Rotate key",
    ] {
        assert!(add.stderr.contains(part), "{part}: {}", add.stderr);
    }
    assert!(
        !add.stderr.contains("authorize the app again"),
        "{}",
        add.stderr
    );
    assert!(!add.stderr.contains(wrong) && !add.stdout.contains(wrong));
    // A sync with it says the same, and how to fix the app settings.
    let dest = format!(
        "jsonl:{}",
        cli.data_dir().join("sinks").join("out").display()
    );
    let sync = cli.run(&[
        "sync",
        "--credential",
        "bad-secret",
        "--streams",
        "conversations",
        "--destination",
        &dest,
    ]);
    assert_eq!(sync.code, 3, "{}\n{}", sync.stdout, sync.stderr);
    for part in [
        "the OAuth client id or client secret is wrong",
        "driftbridge credentials rotate bad-secret --api-key-env VAR --oauth-client-id ID",
    ] {
        assert!(sync.stderr.contains(part), "{part}: {}", sync.stderr);
    }
    assert!(!sync.stderr.contains(wrong));

    // A refresh token that no longer works is: authorize the app again.
    let revoked = oauth_add(
        &cli,
        &sandbox.url(),
        "bad-refresh",
        &[
            ("T", EXPIRED),
            ("OS", SECRET),
            ("OR", "revoked-refresh-token-000"),
        ],
    );
    assert_eq!(revoked.code, 3, "{}\n{}", revoked.stdout, revoked.stderr);
    for part in [
        "invalid_grant",
        "authorize the app again",
        "credentials rotate bad-refresh",
    ] {
        assert!(revoked.stderr.contains(part), "{part}: {}", revoked.stderr);
    }
    assert!(
        !revoked.stderr.contains("client secret is wrong"),
        "{}",
        revoked.stderr
    );

    let missing = oauth_add(
        &cli,
        &sandbox.url(),
        "no-env",
        &[("T", EXPIRED), ("OR", REFRESH)],
    );
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains(
            "oauth_client_secret: the environment variable OS (from --oauth-client-secret-env) is not set"
        ),
        "{}",
        missing.stderr
    );
    let list = cli.run(&["credentials", "list"]);
    assert!(
        !list.stdout.contains("no-env"),
        "nothing saved: {}",
        list.stdout
    );

    let alone = cli.run_with(
        &[
            "credentials",
            "add",
            "--name",
            "x",
            "--api-key-env",
            "T",
            "--oauth-client-id",
            "app",
        ],
        &[("T", EXPIRED), ("OS", SECRET)],
        None,
    );
    assert_eq!(alone.code, 2, "{}", alone.stderr);
    assert!(
        alone.stderr.contains("--oauth-client-secret-env"),
        "{}",
        alone.stderr
    );
}

#[test]
fn rotate_keeps_the_oauth_app_unless_no_oauth_removes_it_and_says_which() {
    use drift_sandbox::{DEFAULT_OAUTH_CLIENT_SECRET as SECRET, DEFAULT_REFRESH_TOKEN as REFRESH};
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let env = [("T", EXPIRED), ("OS", SECRET), ("OR", REFRESH)];
    let add = oauth_add(&cli, &sandbox.url(), "oa", &env);
    assert_eq!(add.code, 0, "{}\n{}", add.stdout, add.stderr);
    let app = drift_sandbox::DEFAULT_OAUTH_CLIENT_ID;

    let kept = cli.run_with(
        &["credentials", "rotate", "oa", "--api-key-env", "T"],
        &[("T", CANARY)],
        None,
    );
    assert_eq!(kept.code, 0, "{}\n{}", kept.stdout, kept.stderr);
    assert!(
        kept.stdout
            .contains(&format!("kept its OAuth app {app} (--no-oauth removes it)")),
        "{}",
        kept.stdout
    );
    let show = cli.run(&["credentials", "show", "oa"]);
    assert!(
        show.stdout
            .contains(&format!("refresh:     OAuth app {app}")),
        "{}",
        show.stdout
    );

    let removed = cli.run_with(
        &[
            "credentials",
            "rotate",
            "oa",
            "--api-key-env",
            "T",
            "--no-oauth",
        ],
        &[("T", CANARY)],
        None,
    );
    assert_eq!(removed.code, 0, "{}\n{}", removed.stdout, removed.stderr);
    assert!(
        removed
            .stdout
            .contains(&format!("removed its OAuth app {app}")),
        "{}",
        removed.stdout
    );
    let show = cli.json(&["credentials", "show", "oa"]);
    assert_eq!(show["oauth_client_id"], serde_json::Value::Null, "{show}");
    let show = cli.run(&["credentials", "show", "oa"]);
    assert!(
        show.stdout.contains("refresh:     none (install token)"),
        "{}",
        show.stdout
    );

    // --no-oauth with new OAuth settings is a contradiction.
    let both = cli.run_with(
        &[
            "credentials",
            "rotate",
            "oa",
            "--api-key-env",
            "T",
            "--no-oauth",
            "--oauth-client-id",
            app,
            "--oauth-client-secret-env",
            "OS",
            "--oauth-refresh-token-env",
            "OR",
        ],
        &env,
        None,
    );
    assert_eq!(both.code, 2, "{}", both.stderr);
}

#[test]
fn quiet_add_and_rotate_print_nothing_on_success() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let url = sandbox.url();
    let add = cli.run_with(
        &[
            "-q",
            "credentials",
            "add",
            "--name",
            "q",
            "--base-url",
            &url,
            "--api-key-env",
            "T",
        ],
        &[("T", CANARY)],
        None,
    );
    assert_eq!(add.code, 0, "{}", add.stderr);
    assert_eq!((add.stdout.as_str(), add.stderr.as_str()), ("", ""));
    let rotate = cli.run_with(
        &["-q", "credentials", "rotate", "q", "--api-key-env", "T"],
        &[("T", CANARY)],
        None,
    );
    assert_eq!(rotate.code, 0, "{}", rotate.stderr);
    assert_eq!((rotate.stdout.as_str(), rotate.stderr.as_str()), ("", ""));
    // Without -q the same commands say what they did.
    let loud = cli.run_with(
        &["credentials", "rotate", "q", "--api-key-env", "T"],
        &[("T", CANARY)],
        None,
    );
    assert!(
        loud.stdout.contains("Replaced the API key of \"q\""),
        "{}",
        loud.stdout
    );
}

#[test]
fn descriptions_cannot_carry_terminal_escapes_and_list_keeps_one_line_per_credential() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let url = sandbox.url();
    let escape = cli.add(
        "esc",
        &url,
        CANARY,
        &["--no-test", "--description", "a\u{1b}[2Jb"],
    );
    assert_eq!(escape.code, 2, "{}", escape.stderr);
    assert!(
        escape.stderr.contains("description") && escape.stderr.contains("control character"),
        "{}",
        escape.stderr
    );
    let lines = cli.add(
        "multi",
        &url,
        CANARY,
        &["--no-test", "--description", "first line\nsecond line"],
    );
    assert_eq!(lines.code, 0, "{}", lines.stderr);
    let list = cli.run(&["credentials", "list"]);
    assert_eq!(
        list.stdout.lines().count(),
        2,
        "header + one row: {}",
        list.stdout
    );
    assert!(
        list.stdout.contains("first line second line"),
        "{}",
        list.stdout
    );
}

#[test]
fn with_json_a_bad_flag_value_is_a_json_error_on_stdout_too() {
    let cli = Cli::new();
    for args in [
        &["--json", "sync", "--credential", "x", "--mode", "sideways"][..],
        &[
            "sync",
            "--credential",
            "x",
            "--rate-limit-per-min",
            "abc",
            "--json",
        ][..],
        &["--json", "credentials", "nosuchcommand"][..],
    ] {
        let out = cli.run(args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        let v: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {:?}", out.stdout));
        assert_eq!(v["error"]["exit_code"], 2, "{v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            ["sideways", "abc", "nosuchcommand"]
                .iter()
                .any(|w| message.contains(w)),
            "the message names the bad value: {v}"
        );
        assert!(
            out.stderr.starts_with("error: "),
            "clap's text stays on stderr: {}",
            out.stderr
        );
    }
    let missing = cli.run(&["--json", "sync"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    let v: serde_json::Value = serde_json::from_str(&missing.stdout).unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("not provided: --credential <CREDENTIAL>"),
        "names the missing argument: {v}"
    );
    let plain = cli.run(&["sync", "--credential", "x", "--mode", "sideways"]);
    assert_eq!(plain.code, 2);
    assert!(plain.stdout.is_empty(), "{}", plain.stdout);
    let help = cli.run(&["--json", "sync", "--help"]);
    assert_eq!(help.code, 0, "{}", help.stderr);
    assert!(help.stdout.contains("Usage"), "{}", help.stdout);
}

#[test]
fn with_json_a_failure_is_a_json_error_on_stdout_and_quiet_drops_the_checklist() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let missing = cli.run(&["--json", "credentials", "show", "nosuch"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    let v: serde_json::Value = serde_json::from_str(&missing.stdout)
        .unwrap_or_else(|e| panic!("{e}: {:?}", missing.stdout));
    assert_eq!(v["error"]["exit_code"], 2);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("nosuch"),
        "{v}"
    );
    let quiet = cli.add("q", &sandbox.url(), CANARY, &["-q"]);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert!(!quiet.stdout.contains('✓'), "{}", quiet.stdout);
    assert!(
        !quiet.stdout.contains("Testing credential"),
        "{}",
        quiet.stdout
    );
}

#[test]
fn two_processes_refreshing_the_same_oauth_credential_both_go_on() {
    use drift_sandbox::{DEFAULT_OAUTH_CLIENT_SECRET as SECRET, DEFAULT_REFRESH_TOKEN as REFRESH};
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let env = [("T", EXPIRED), ("OS", SECRET), ("OR", REFRESH)];
    let mut args = vec!["--no-test"];
    args.extend([
        "--oauth-client-id",
        drift_sandbox::DEFAULT_OAUTH_CLIENT_ID,
        "--oauth-client-secret-env",
        "OS",
        "--oauth-refresh-token-env",
        "OR",
    ]);
    let mut add = vec!["credentials", "add", "--name", "shared", "--base-url"];
    let url = sandbox.url();
    add.push(&url);
    add.extend(["--api-key-env", "T"]);
    add.extend(args);
    let saved = cli.run_with(&add, &env, None);
    assert_eq!(saved.code, 0, "{}", saved.stderr);
    // Both start with the expired token and the same refresh token; the sandbox retires
    // it on first use, so the slower one must pick up what the faster one stored.
    // Three rounds: the race is not won the same way each time.
    for round in 0..3 {
        if round > 0 {
            // Back to an expired access token; the stored refresh token stays.
            let rotate = [
                "credentials",
                "rotate",
                "shared",
                "--api-key-env",
                "T",
                "--no-test",
            ];
            let rotated = cli.run_with(&rotate, &env, None);
            assert_eq!(rotated.code, 0, "{}", rotated.stderr);
        }
        let children: Vec<_> = (0..2)
            .map(|_| {
                cli.command(&["credentials", "test", "shared"])
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "round {round}: {stderr}");
        }
    }
    let show = cli.json(&["credentials", "show", "shared"]);
    assert_eq!(show["status"], "verified", "{show}");
    // A third process uses the stored token: no further exchange.
    let before = sandbox_route_count(&sandbox, "oauth.token");
    let third = cli.run(&["credentials", "test", "shared"]);
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert_eq!(sandbox_route_count(&sandbox, "oauth.token"), before);
}
