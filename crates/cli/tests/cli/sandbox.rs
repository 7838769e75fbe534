//! CLI tests: `driftbridge sandbox` prints its start-up line and serves the Drift API.

use crate::util::{self, bin, Running};
use std::process::{Command, Stdio};

/// Starts `driftbridge sandbox ARGS...`; returns the child and its start-up JSON line.
fn start(args: &[&str]) -> (Running, serde_json::Value) {
    let mut cmd = Command::new(bin());
    cmd.arg("sandbox").args(args).stderr(Stdio::null());
    util::start(cmd)
}

#[tokio::test]
async fn sandbox_prints_base_url_and_token_then_serves() {
    let (_child, line) = start(&[
        "--port",
        "0",
        "--conversations",
        "500",
        "--token-scopes",
        "ro-token-0123456789=user_read",
    ]);
    let base = line["base_url"].as_str().expect("base_url");
    let token = line["token"].as_str().expect("token");
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert_eq!(
        line.as_object().unwrap().len(),
        2,
        "exactly base_url and token: {line}"
    );
    let http = reqwest::Client::new();
    let counts: serde_json::Value = http
        .get(format!("{base}/__sandbox/counts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counts["conversations"], 500);
    let r = http
        .get(format!("{base}/conversations/list"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(format!("{base}/conversations/list"))
        .bearer_auth("ro-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "--token-scopes adds a limited token");
}

#[test]
fn bad_flags_exit_with_usage_code() {
    for args in [
        vec!["--port", "0", "--token-scopes", "no-equals-sign"],
        vec![
            "--port",
            "0",
            "--faults",
            "{\"faults\": [{\"route\": \"*\", \"kind\": \"nope\"}]}",
        ],
        vec!["--port", "0", "--compat", "airbyte-9"],
    ] {
        let out = Command::new(bin())
            .arg("sandbox")
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "no start-up line on failure");
    }
}

/// A fault plan file that is missing or bad: the error names the file, and the line or the
/// fault's field.
#[test]
fn bad_faults_files_are_named_with_the_line_or_field() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-plan.json");
    let syntax = dir.path().join("syntax.json");
    std::fs::write(
        &syntax,
        "{\n  \"faults\": [\n    {\"route\": \"users.list\",,}\n  ]\n}\n",
    )
    .unwrap();
    let field = dir.path().join("field.json");
    std::fs::write(
        &field,
        r#"{"faults": [{"route": "users.list", "kind": "status", "status": 503},
                      {"route": "users.list", "kind": "status", "status": 999}]}"#,
    )
    .unwrap();
    for (path, expected) in [
        (&missing, vec!["cannot read"]),
        (&syntax, vec!["line 3"]),
        (&field, vec!["faults[1]", "status", "999"]),
    ] {
        let out = Command::new(bin())
            .args(["sandbox", "--port", "0", "--faults"])
            .arg(path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(out.stdout.is_empty(), "no start-up line on failure");
        assert!(
            stderr.contains(&path.display().to_string()),
            "names the file: {stderr}"
        );
        for e in expected {
            assert!(stderr.contains(e), "{path:?}: {e:?} in {stderr}");
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[tokio::test]
async fn faults_file_and_custom_token_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("faults.json");
    std::fs::write(
        &plan,
        r#"{"faults": [{"route": "users.list", "kind": "status", "status": 503, "count": 1}]}"#,
    )
    .unwrap();
    let (_child, line) = start(&[
        "--port",
        "0",
        "--conversations",
        "5",
        "--faults",
        plan.to_str().unwrap(),
    ]);
    let base = line["base_url"].as_str().unwrap();
    let token = line["token"].as_str().unwrap();
    let http = reqwest::Client::new();
    let first = http
        .get(format!("{base}/users/list"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 503);
    let second = http
        .get(format!("{base}/users/list"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 200);
}

#[test]
fn token_from_the_environment_is_the_full_scope_token() {
    let mut cmd = Command::new(bin());
    cmd.args(["sandbox", "--port", "0", "--conversations", "1"])
        .env("DRIFT_SANDBOX_TOKEN", "env-token-0123456789abcdef")
        .stderr(Stdio::null());
    let (running, v) = util::start(cmd);
    assert_eq!(v["token"], "env-token-0123456789abcdef");
    drop(running);
}
