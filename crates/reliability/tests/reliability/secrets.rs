//! Secrets: canary tokens go through every command (and the server, when it is on main);
//! a scan of stdout, stderr at -vv and -vvv, every file left in the data dir (metadata DB
//! bytes, WAL, key files), destination files and tables, and results files finds none of
//! them. Core dumps are off while a key is in memory. The PostgreSQL, JSONL, CSV and Parquet
//! destinations are scanned in `secrets_sinks.rs`.

use crate::common::{contains, files_under, Env, Out};
use drift_sandbox::{SandboxConfig, TokenSpec, ALL_SCOPES};
use std::path::Path;
use std::time::Duration;

/// The valid token (the sandbox accepts it): a distinctive canary.
pub(crate) const CANARY: &str = "cnry-VALID-7f3e9a1c5b2d4e6f8a0b1c2d3e4f5a6b";
/// A second valid token (used by `rotate`).
const CANARY2: &str = "cnry-ROTATED-0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d";
/// A token the sandbox rejects (401 paths).
const BAD: &str = "cnry-REJECTED-1122334455667788aabbccddeeff0011";

/// Each canary and a long inner fragment of it (a partial leak is a leak).
fn needles() -> Vec<String> {
    [CANARY, CANARY2, BAD]
        .iter()
        .flat_map(|c| [c.to_string(), c[5..c.len() - 6].to_string()])
        .collect()
}

pub(crate) fn assert_clean(what: &str, bytes: &[u8]) {
    for n in needles() {
        assert!(
            !contains(bytes, n.as_bytes()),
            "{what} contains the canary fragment {n:?}"
        );
    }
}

pub(crate) fn scan(label: &str, out: &Out) {
    assert_clean(&format!("{label}: stdout"), out.stdout.as_bytes());
    assert_clean(&format!("{label}: stderr"), out.stderr.as_bytes());
}

pub(crate) fn scan_files(dir: &Path) -> usize {
    let files = files_under(dir);
    for (path, bytes) in &files {
        // The inputs the test wrote itself hold no canary either.
        assert_clean(&path.display().to_string(), bytes);
    }
    files.len()
}

pub(crate) fn sandbox_config() -> SandboxConfig {
    SandboxConfig {
        conversations: 12,
        messages_per_conversation: 2,
        accounts: 5,
        users: 3,
        rate_limit_per_min: 0,
        token: CANARY.to_string(),
        tokens: vec![TokenSpec {
            token: CANARY2.to_string(),
            scopes: ALL_SCOPES.iter().map(|s| s.to_string()).collect(),
            expires_at: None,
        }],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_tokens_appear_in_no_output_log_file_or_database() {
    let env = Env::bare(sandbox_config()).await;
    let url = env.sandbox.base_url();
    let mut runs: Vec<(String, Out)> = Vec::new();
    let mut step = |label: &str, out: Out| {
        scan(label, &out);
        runs.push((label.to_string(), out));
    };
    let add = |name: &'static str, key: &'static str, json: bool| {
        let url = url.clone();
        let env = &env;
        async move {
            let mut args = vec!["-vv", "credentials", "add", "--name", name, "--base-url"];
            args.push(&url);
            args.extend(["--api-key-env", "KEY", "--description", "canary test"]);
            if key != CANARY {
                // Kept although its test fails, so the steps below use a rejected credential.
                args.push("--save-untested");
            }
            if json {
                args.insert(0, "--json");
            }
            env.run_env(&args, "KEY", key).await
        }
    };
    step("add valid", add("c1", CANARY, false).await);
    step("add valid json", add("c2", CANARY, true).await);
    step("add rejected", add("bad", BAD, false).await);
    for args in [
        vec!["-vv", "credentials", "list"],
        vec!["--json", "credentials", "list"],
        vec!["-vv", "credentials", "show", "c1"],
        vec!["--json", "-vv", "credentials", "show", "c1"],
        vec!["-vv", "credentials", "test", "c1"],
        vec!["--json", "-vv", "credentials", "test", "bad"],
    ] {
        let out = env.run(&args).await;
        step(&args.join(" "), out);
    }
    let db = format!("sqlite:{}", env.path("out.db").display());
    for (label, args) in [
        (
            "sync -vv",
            vec!["-vv", "sync", "--credential", "c1", "--destination", &db],
        ),
        (
            "sync -vvv json",
            vec![
                "-vvv",
                "--json",
                "sync",
                "--credential",
                "c1",
                "--destination",
                &db,
                "--mode",
                "full",
            ],
        ),
        (
            "sync rejected",
            vec!["-vv", "sync", "--credential", "bad", "--destination", &db],
        ),
    ] {
        let out = env.run(&args).await;
        step(label, out);
    }
    let input = env.write(
        "in.csv",
        "email,name\ncanary1@example.com,One\ncanary2@example.com,Two\n",
    );
    let results_csv = env.path("results.csv").display().to_string();
    let results_jsonl = env.path("results.jsonl").display().to_string();
    for (label, args) in [
        (
            "push -vv",
            vec![
                "-vv",
                "push",
                "contacts",
                "--credential",
                "c1",
                "--from",
                &input,
                "--results",
                &results_csv,
            ],
        ),
        (
            "push -vvv json",
            vec![
                "-vvv",
                "--json",
                "push",
                "contacts",
                "--credential",
                "c1",
                "--from",
                &input,
                "--results",
                &results_jsonl,
            ],
        ),
        (
            "push rejected",
            vec![
                "-vv",
                "push",
                "contacts",
                "--credential",
                "bad",
                "--from",
                &input,
                "--results",
                &results_csv,
            ],
        ),
        (
            "push dry run",
            vec![
                "-vv",
                "push",
                "contacts",
                "--credential",
                "c1",
                "--from",
                &input,
                "--dry-run",
                "--results",
                &results_csv,
            ],
        ),
    ] {
        let out = env.run(&args).await;
        step(label, out);
    }
    let runs_json = env.run(&["--json", "runs", "list"]).await;
    let ids: Vec<String> = runs_json.json().as_array().map_or(Vec::new(), |a| {
        a.iter()
            .filter_map(|r| r["id"].as_str().map(String::from))
            .collect()
    });
    step("runs list json", runs_json);
    step("runs list -vv", env.run(&["-vv", "runs", "list"]).await);
    assert!(
        ids.len() >= 5,
        "every sync and push recorded a run: {ids:?}"
    );
    for id in &ids {
        step("runs show", env.run(&["-vv", "runs", "show", id]).await);
        step(
            "runs show json",
            env.run(&["--json", "runs", "show", id]).await,
        );
    }
    step(
        "rotate",
        env.run_env(
            &["-vv", "credentials", "rotate", "c1", "--api-key-env", "KEY"],
            "KEY",
            CANARY2,
        )
        .await,
    );
    step(
        "vault rotate",
        env.run(&["-vv", "vault", "rotate-key"]).await,
    );
    step(
        "delete",
        env.run(&["-vv", "credentials", "delete", "bad"]).await,
    );
    step(
        "sync after rotation",
        env.run(&[
            "-vv",
            "sync",
            "--credential",
            "c1",
            "--destination",
            &db,
            "--streams",
            "users",
        ])
        .await,
    );

    // The commands did what they say (a scan of failed commands proves little).
    let codes: Vec<(&str, i32)> = runs.iter().map(|(l, o)| (l.as_str(), o.code)).collect();
    for ok in [
        "add valid",
        "add valid json",
        "sync -vv",
        "push -vv",
        "rotate",
        "vault rotate",
        "sync after rotation",
    ] {
        let code = codes.iter().find(|(l, _)| *l == ok).unwrap().1;
        assert_eq!(code, 0, "{ok} should succeed: {codes:?}");
    }
    for rejected in ["sync rejected", "push rejected"] {
        let code = codes.iter().find(|(l, _)| *l == rejected).unwrap().1;
        assert_eq!(code, 3, "{rejected} should exit 3: {codes:?}");
    }
    let verbose: usize = runs.iter().map(|(_, o)| o.stderr.len()).sum();
    assert!(
        verbose > 10_000,
        "-vv/-vvv produced logs to scan ({verbose} bytes)"
    );
    assert!(
        runs.iter()
            .any(|(_, o)| o.stderr.contains("DEBUG") || o.stderr.contains("TRACE")),
        "debug logging was on"
    );

    // Every file left behind: metadata DB (+ WAL/SHM), key file, out.db, results files.
    let n = scan_files(env.dir.path());
    assert!(n >= 5, "files scanned: {n}");
    let tables = crate::common::sql_count(
        &env.path("out.db"),
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
    );
    assert!(tables >= 8, "the sync wrote its tables ({tables})");
    // The sandbox's request log masks Authorization too.
    let log = env.admin("log", None).await;
    assert_clean("sandbox request log", log.to_string().as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_core_dump_while_a_key_is_in_memory() {
    let mut config = sandbox_config();
    config.latency_ms = 300;
    let env = Env::bare(config).await;
    let url = env.sandbox.base_url();
    env.run_env(
        &[
            "credentials",
            "add",
            "--name",
            "c1",
            "--base-url",
            &url,
            "--api-key-env",
            "KEY",
            "--no-test",
        ],
        "KEY",
        CANARY,
    )
    .await
    .expect(0, "add");
    let db = format!("sqlite:{}", env.path("out.db").display());
    let child = env
        .command(&["sync", "--credential", "c1", "--destination", &db])
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(fields[4], "0", "soft core limit while syncing: {core}");
    assert_eq!(fields[5], "0", "hard core limit while syncing: {core}");
    drop(child);
}

/// Logs in to the web UI with the admin token; returns the session cookie (`name=value`).
async fn login(url: &str, admin: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http
        .post(format!("{url}/login"))
        .header("origin", url)
        .form(&[("token", admin), ("next", "/credentials")])
        .send()
        .await
        .unwrap();
    let cookie = resp
        .headers()
        .get("set-cookie")
        .unwrap_or_else(|| panic!("login set no cookie: {}", resp.status()))
        .to_str()
        .unwrap();
    cookie.split(';').next().unwrap().to_string()
}

/// `serve` on a free loopback port: (child, base URL, admin token).
async fn serve(env: &Env) -> (tokio::process::Child, String, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = env
        .command(&[
            "--json",
            "-vv",
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--allow-private-base-urls",
        ])
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("serve printed its address")
        .unwrap()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let url = v["url"].as_str().unwrap().trim_end_matches('/').to_string();
    let token = v["admin_token"].as_str().unwrap().to_string();
    (child, url, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_never_returns_logs_or_renders_a_key() {
    let env = Env::bare(sandbox_config()).await;
    let (mut child, url, admin) = serve(&env).await;
    let http = reqwest::Client::new();
    let sandbox = env.sandbox.base_url();
    let mut bodies: Vec<(String, u16, String)> = Vec::new();
    let call = |method: reqwest::Method, path: String, body: Option<serde_json::Value>| {
        let req = http
            .request(method.clone(), format!("{url}{path}"))
            .bearer_auth(&admin);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (
                format!("{method} {path}"),
                status,
                resp.text().await.unwrap(),
            )
        }
    };
    use reqwest::Method;
    let created = call(
        Method::POST,
        "/api/v1/credentials".into(),
        Some(serde_json::json!({
            "name": "s1", "api_key": CANARY, "base_url": sandbox, "description": "canary"
        })),
    )
    .await;
    assert!(created.1 < 300, "{created:?}");
    let id = serde_json::from_str::<serde_json::Value>(&created.2).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    bodies.push(created);
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/credentials".to_string(),
            Some(serde_json::json!({"name": "s1", "api_key": CANARY, "base_url": sandbox})),
        ),
        (
            Method::POST,
            "/api/v1/credentials".to_string(),
            Some(serde_json::json!({"name": "", "api_key": CANARY})),
        ),
        (
            Method::POST,
            "/api/v1/credentials".to_string(),
            Some(serde_json::json!({"name": "s2", "api_key": format!("{CANARY} with space")})),
        ),
        (
            Method::POST,
            "/api/v1/credentials".to_string(),
            Some(
                serde_json::json!({"name": "bad", "api_key": BAD, "base_url": sandbox, "save_untested": true}),
            ),
        ),
        (Method::GET, "/api/v1/credentials".to_string(), None),
        (Method::GET, format!("/api/v1/credentials/{id}"), None),
        (
            Method::POST,
            format!("/api/v1/credentials/{id}/test"),
            Some(serde_json::json!({})),
        ),
        (
            Method::POST,
            "/api/v1/credentials/bad/test".to_string(),
            Some(serde_json::json!({})),
        ),
        (
            Method::POST,
            format!("/api/v1/credentials/{id}/rotate"),
            Some(serde_json::json!({"api_key": CANARY2})),
        ),
        (
            Method::POST,
            "/api/v1/sources".to_string(),
            Some(serde_json::json!({
                "name": "src", "credential": "s1", "streams": ["users", "teams"], "mode": "full",
                "sink": format!("sqlite:{}", env.path("server-out.db").display())
            })),
        ),
        (Method::POST, "/api/v1/sources/src/run".to_string(), None),
        (Method::GET, "/api/v1/runs".to_string(), None),
        (Method::GET, "/api/v1/sources".to_string(), None),
        (Method::GET, "/api/v1/openapi.json".to_string(), None),
        (Method::GET, "/metrics".to_string(), None),
    ] {
        bodies.push(call(method, path, body).await);
    }
    // The web UI, logged in with a session cookie like a browser.
    let cookie = login(&url, &admin).await;
    let ui = |method: Method, path: String, form: Option<Vec<(&'static str, String)>>| {
        let req = http
            .request(method.clone(), format!("{url}{path}"))
            .header("cookie", cookie.clone())
            .header("origin", url.clone());
        let req = match form {
            Some(f) => req.form(&f),
            None => req,
        };
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (
                format!("{method} {path}"),
                status,
                resp.text().await.unwrap(),
            )
        }
    };
    for path in [
        "/credentials".to_string(),
        format!("/ui/credentials/{id}/edit"),
        "/ui/credentials/new".into(),
        "/runs".into(),
        "/sources".into(),
    ] {
        bodies.push(ui(Method::GET, path, None).await);
    }
    // Form posts of the overlay (save, inline check, probe) with the key, valid or not.
    for path in [
        "/ui/credentials",
        "/ui/credentials/check",
        "/ui/credentials/probe",
    ] {
        for form in [
            vec![
                ("name", String::new()),
                ("api_key", CANARY.to_string()),
                ("base_url", sandbox.clone()),
            ],
            vec![
                ("name", "ui1".to_string()),
                ("api_key", CANARY.to_string()),
                ("base_url", "notaurl".to_string()),
            ],
            vec![
                ("name", "ui2".to_string()),
                ("api_key", BAD.to_string()),
                ("base_url", sandbox.clone()),
            ],
            vec![
                ("name", "ui3".to_string()),
                ("api_key", format!("{CANARY} x")),
                ("base_url", sandbox.clone()),
            ],
        ] {
            bodies.push(ui(Method::POST, path.to_string(), Some(form)).await);
        }
    }
    // Let the run finish, then read its record.
    tokio::time::sleep(Duration::from_secs(3)).await;
    bodies.push(call(Method::GET, "/api/v1/runs".into(), None).await);
    for (what, status, body) in &bodies {
        assert_ne!(*status, 500, "{what}: {body}");
        assert_clean(what, body.as_bytes());
    }
    let ok = bodies.iter().filter(|(_, s, _)| *s < 300).count();
    assert!(
        ok >= 15,
        "most calls succeeded: {:?}",
        bodies.iter().map(|b| (&b.0, b.1)).collect::<Vec<_>>()
    );
    let page = bodies
        .iter()
        .find(|(w, _, _)| w == "GET /credentials")
        .unwrap();
    assert!(
        page.2.contains("••••") || page.2.contains("&#8226;"),
        "the credentials page shows the mask: {} {}",
        page.1,
        &page.2[..page.2.len().min(3000)]
    );
    child.start_kill().unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert_clean("serve stdout", &out.stdout);
    assert_clean("serve stderr (-vv)", &out.stderr);
    assert!(out.stderr.len() > 1000, "serve logged at -vv");
    scan_files(env.dir.path());
}
