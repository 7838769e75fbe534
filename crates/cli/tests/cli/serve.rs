//! CLI tests: `driftbridge serve` creates and prints the admin token once, serves the API with
//! it, and `--print-token` replaces it.

use crate::util::{Cli, Running, Sandbox};

/// Starts `serve --json --bind 127.0.0.1:0` on `cli`'s data dir; returns the child and its
/// start-up JSON line.
fn serve(cli: &Cli) -> (Running, serde_json::Value) {
    cli.start(&[
        "--json",
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ])
}

#[tokio::test]
async fn serve_prints_the_admin_token_once_and_requires_it() {
    let cli = Cli::new();
    let (first, started) = serve(&cli);
    let url = started["url"].as_str().unwrap().to_string();
    let token = started["admin_token"]
        .as_str()
        .expect("a new token on the first start")
        .to_string();
    let http = reqwest::Client::new();
    let denied = http
        .get(format!("{url}api/v1/credentials"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    let allowed = http
        .get(format!("{url}api/v1/credentials"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    drop(first);

    let (_second, again) = serve(&cli);
    assert_eq!(
        again["admin_token"],
        serde_json::Value::Null,
        "the token is printed only once"
    );
    let url = again["url"].as_str().unwrap().to_string();
    let out = cli.run(&["--json", "serve", "--print-token"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed = out.json;
    let new_token = printed["admin_token"].as_str().unwrap();
    assert_ne!(new_token, token);
    let old = http
        .get(format!("{url}api/v1/credentials"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401, "the old token stops working");
    let new = http
        .get(format!("{url}api/v1/credentials"))
        .bearer_auth(new_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        new.status(),
        200,
        "the running server accepts the new token"
    );
}

/// Issue 17 item 1: `serve --print-token` run while `serve` runs revokes the old token and
/// the web UI sessions in the running server at once, although both were just used (the
/// server keeps no cache that could outlive the rotation).
#[tokio::test]
async fn print_token_while_serving_revokes_the_old_token_and_sessions() {
    let cli = Cli::new();
    let (_running, started) = serve(&cli);
    let url = started["url"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let old = started["admin_token"].as_str().unwrap().to_string();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = http
        .post(format!("{url}/login"))
        .header("origin", &url)
        .form(&[("token", old.as_str()), ("next", "/runs")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let api = |auth: (&'static str, String)| {
        http.get(format!("{url}/api/v1/credentials"))
            .header(auth.0, auth.1)
            .send()
    };
    let bearer = ("authorization", format!("Bearer {old}"));
    let session = ("cookie", cookie.clone());
    assert_eq!(api(bearer.clone()).await.unwrap().status(), 200);
    assert_eq!(api(session.clone()).await.unwrap().status(), 200);

    let out = cli.run(&["--json", "serve", "--print-token"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let new = out.json;
    let new = new["admin_token"].as_str().unwrap().to_string();

    assert_eq!(
        api(bearer).await.unwrap().status(),
        401,
        "the old admin token is revoked in the running server"
    );
    assert_eq!(
        api(session).await.unwrap().status(),
        401,
        "the session opened with the old token is revoked too"
    );
    let page = http
        .get(format!("{url}/runs"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        303,
        "the UI sends the old session to the login page"
    );
    assert_eq!(
        api(("authorization", format!("Bearer {new}")))
            .await
            .unwrap()
            .status(),
        200
    );
}

/// Resident memory of process `pid`, in KiB (`VmRSS` of `/proc/PID/status`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Send `count` requests with invented methods (`FOO{i} /healthz`), one connection each,
/// on 4 threads; every one must get an answer.
fn odd_method_requests(addr: &str, from: usize, count: usize) {
    use std::io::{Read, Write};
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let addr = addr.to_string();
            std::thread::spawn(move || {
                for i in (from + t..from + count).step_by(4) {
                    let mut s = std::net::TcpStream::connect(&addr).unwrap();
                    write!(
                        s,
                        "FOO{i} /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
                    )
                    .unwrap();
                    let mut answer = Vec::new();
                    let _ = s.read_to_end(&mut answer);
                    assert!(answer.starts_with(b"HTTP/1.1 "), "request {i} answered");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// Issue 17 item 2: each invented HTTP method used to add a permanent `/metrics` series
/// (120k requests: +53 MB RSS). The `method` label now takes known methods or `other`: after
/// 10,000 more odd-method requests the server's memory and `/metrics` stay the same size.
#[tokio::test]
async fn invented_http_methods_do_not_grow_memory_or_metrics() {
    let cli = Cli::new();
    let (running, started) = serve(&cli);
    let pid = running.0.id();
    let url = started["url"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let token = started["admin_token"].as_str().unwrap().to_string();
    let addr = url.trim_start_matches("http://").to_string();
    let metrics = || async {
        reqwest::Client::new()
            .get(format!("{url}/metrics"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // Warm up (allocator pools, connection tasks), then measure 10,000 more.
    let a = addr.clone();
    tokio::task::spawn_blocking(move || odd_method_requests(&a, 0, 2_000))
        .await
        .unwrap();
    let metrics_before = metrics().await;
    let rss_before = rss_kib(pid);
    let a = addr.clone();
    tokio::task::spawn_blocking(move || odd_method_requests(&a, 2_000, 10_000))
        .await
        .unwrap();
    let rss_after = rss_kib(pid);
    let metrics_after = metrics().await;
    assert!(
        !metrics_after.contains("FOO"),
        "no series is named after an invented method"
    );
    assert!(
        metrics_after.contains("method=\"other\""),
        "invented methods are counted as `other`"
    );
    assert!(
        metrics_after.len() < metrics_before.len() + 1_000,
        "/metrics grew from {} to {} bytes",
        metrics_before.len(),
        metrics_after.len()
    );
    let grown = rss_after.saturating_sub(rss_before);
    assert!(
        grown < 2_048,
        "RSS grew by {grown} KiB over 10,000 odd-method requests ({rss_before} -> {rss_after} KiB)"
    );
}

/// A one-connection fake PostgreSQL server that asks for a clear-text password and returns
/// the password the client sent (or `None` when none came within 20 s).
fn fake_postgres() -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut len = [0u8; 4];
        s.read_exact(&mut len).unwrap();
        let mut startup = vec![0u8; u32::from_be_bytes(len) as usize - 4];
        s.read_exact(&mut startup).unwrap();
        // AuthenticationCleartextPassword.
        s.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).unwrap();
        let mut kind = [0u8; 1];
        s.read_exact(&mut kind).unwrap();
        assert_eq!(kind[0], b'p', "a password message");
        s.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize - 4];
        s.read_exact(&mut body).unwrap();
        let password = String::from_utf8_lossy(body.strip_suffix(&[0]).unwrap()).into_owned();
        let _ = tx.send(password);
    });
    (port, rx)
}

/// Issue 17 item 5, end to end through the binary: the password of a PostgreSQL sink is
/// shown nowhere, yet a run of the source gives the database exactly that password (it is
/// taken out of the vault to open the sink).
#[test]
fn a_sink_password_reaches_the_database_but_no_answer() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let (_running, started) = cli.start(&[
        "--json",
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--allow-private-base-urls",
    ]);
    let url = started["url"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let token = started["admin_token"].as_str().unwrap().to_string();
    let (port, password_seen) = fake_postgres();
    let password = "s1nk-Pa55word-e2e";
    let sink = format!("postgres://etl:{password}@127.0.0.1:{port}/warehouse?sslmode=disable");
    let (created, run) = sandbox.runtime.block_on(async {
        let http = reqwest::Client::new();
        let created: serde_json::Value = http
            .post(format!("{url}/api/v1/sources"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"name": "wh", "credential": "sb",
                "streams": ["users"], "sink": sink}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let run = http
            .post(format!("{url}/api/v1/sources/wh/run"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (created, run)
    });
    assert_eq!(
        created["sink"],
        format!("postgres://etl:••••@127.0.0.1:{port}/warehouse?sslmode=disable")
    );
    assert_eq!(
        password_seen
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the run connected to the database"),
        password,
        "the run opens the sink with the stored password"
    );
    assert!(!run.contains(password), "{run}");
}
