//! CLI tests: credentials with an OAuth app: expired access tokens are refreshed, kept
//! encrypted and shared between processes; a refused refresh is explained.

use crate::util::{all_bytes, Cli, Run, Sandbox, EXPIRED, TOKEN as CANARY};

fn oauth_add(cli: &Cli, url: &str, name: &str, env: &[(&str, &str)]) -> Run {
    oauth_add_with(cli, url, name, env, &[])
}

fn oauth_add_with(cli: &Cli, url: &str, name: &str, env: &[(&str, &str)], extra: &[&str]) -> Run {
    let mut args = vec![
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
    ];
    args.extend_from_slice(extra);
    cli.run_with(&args, env, None)
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
    assert_eq!(sandbox.route_count("oauth.token"), 1);

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
    assert_eq!(sandbox.route_count("oauth.token"), 1);

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
    let add = oauth_add_with(
        &cli,
        &sandbox.url(),
        "bad-secret",
        &[("T", EXPIRED), ("OS", wrong), ("OR", REFRESH)],
        &["--save-untested"],
    );
    assert_eq!(add.code, 3, "{}\n{}", add.stdout, add.stderr);
    // A wrong client secret is not cured by authorizing again: the message says what is
    // wrong and how to save the right one.
    for part in [
        "invalid_client",
        "the OAuth client id or client secret is wrong",
        "driftbridge credentials rotate bad-secret --api-key-env VAR --oauth-client-id ID --oauth-client-secret-env VAR --oauth-refresh-token-env VAR",
    ] {
        assert!(add.stderr.contains(part), "{part}: {}", add.stderr);
    }
    assert!(!add.stderr.contains("Rotate key"), "{}", add.stderr);
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
        "the credential was not saved",
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
    let before = sandbox.route_count("oauth.token");
    let third = cli.run(&["credentials", "test", "shared"]);
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert_eq!(sandbox.route_count("oauth.token"), before);
}
