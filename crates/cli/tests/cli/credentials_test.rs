//! CLI tests: what `credentials add` and `credentials test` find out about a token: rejected,
//! unreachable, missing or extra scopes, expiring or expired.

use crate::util::{Cli, Sandbox, EXPIRED, EXPIRING, LIMITED, TOKEN as CANARY};

/// A port on 127.0.0.1 with nothing listening.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn a_rejected_token_saves_nothing_and_the_right_key_is_added_under_the_same_name() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let bad = "tok_not_a_sandbox_token_12345";
    let run = cli.credentials_add("bad", &sandbox.url(), bad, &[]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("✓ host reached") && run.stdout.contains("✗ token accepted"),
        "{}",
        run.stdout
    );
    for part in [
        "rejected",
        "the credential was not saved",
        "run `driftbridge credentials add` again",
        "--save-untested",
    ] {
        assert!(run.stderr.contains(part), "{part}: {}", run.stderr);
    }
    // The CLI names commands, never the web UI's buttons.
    assert!(
        !run.stderr.contains("Rotate key") && !run.stderr.contains("button"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(bad) && !run.stdout.contains(bad));
    assert_eq!(
        cli.run(&["credentials", "show", "bad"]).code,
        2,
        "not saved"
    );
    // The right key under the same name: no "name already taken".
    let good = cli.credentials_add("bad", &sandbox.url(), CANARY, &[]);
    assert_eq!(good.code, 0, "{}", good.stderr);
    assert_eq!(
        cli.json(&["credentials", "show", "bad"])["status"],
        "verified"
    );
    // Adding it again says how to rotate its key instead.
    let again = cli.credentials_add("BAD", &sandbox.url(), CANARY, &[]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains("driftbridge credentials rotate bad --api-key-env VAR"),
        "{}",
        again.stderr
    );
}

#[test]
fn save_untested_keeps_a_rejected_token_marked_failed_until_rotated() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let bad = "tok_not_a_sandbox_token_12345";
    let run = cli.credentials_add("bad", &sandbox.url(), bad, &["--save-untested"]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("rejected")
            && run
                .stderr
                .contains("driftbridge credentials rotate bad --api-key-env VAR"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("although its test failed"),
        "{}",
        run.stdout
    );
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
    let run = cli.credentials_add("down", &url, CANARY, &["--save-untested"]);
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
    let run = cli.credentials_add(
        "ro",
        &sandbox.url(),
        LIMITED,
        &["--for", "accounts", "--save-untested"],
    );
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
    let run = cli.credentials_add("full", &sandbox.url(), CANARY, &["--for", "conversations"]);
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
        cli.credentials_add("exp", &sandbox.url(), EXPIRING, &["--no-test"])
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
fn expired_token_is_rejected() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let run = cli.credentials_add("old", &sandbox.url(), EXPIRED, &["--save-untested"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("rejected"), "{}", run.stderr);
    assert_eq!(
        cli.json(&["credentials", "show", "old"])["status"],
        "failed"
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
