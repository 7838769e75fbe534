//! CLI tests: `credentials add` (issue 4): where the key comes from (environment, stdin, a
//! terminal prompt, never argv), what a key, name, description and base URL must be.

use crate::util::{bin, Cli, Sandbox, TOKEN as CANARY};
use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn add_with_env_key_then_list_shows_a_verified_credential_with_a_masked_key() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let add = cli.credentials_add("sandbox", &sandbox.url(), CANARY, &[]);
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
        (
            add("PROD", &[]),
            "to give it a new key, run `driftbridge credentials rotate Prod --api-key-env VAR`",
        ),
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
