//! Load test of `driftbridge serve` (issue 10), run by `scripts/load`.
//!
//! Starts an in-process sandbox and the real binary's `serve` on a free loopback port with a
//! temp data dir, then runs `LOAD_CLIENTS` (default 50) API clients for `LOAD_SECONDS`
//! (default 60). Each client loops: create a credential, list credentials, test the
//! credential (the server calls the sandbox), and every 5th loop create a data source of its
//! credential and start a run (users and teams into SQLite), then read the run. Bounded: each
//! client is sequential, every request has a 30 s timeout, and the loop stops at the
//! deadline. Afterwards it checks that no write was lost (every credential and source the
//! API acknowledged is listed, every run accepted is recorded) and prints p50/p99/max
//! latency per operation and the error count. Exit 1 on any error or lost write.
//!
//! Loopback only: the sandbox and the server listen on 127.0.0.1.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

#[derive(Default)]
struct Stats {
    latencies: BTreeMap<&'static str, Vec<Duration>>,
    errors: BTreeMap<String, u64>,
    credentials: Vec<String>,
    sources: Vec<String>,
    runs: Vec<String>,
}

type Shared = Arc<Mutex<Stats>>;

struct Api {
    http: reqwest::Client,
    url: String,
    token: String,
    stats: Shared,
}

impl Api {
    async fn call(
        &self,
        op: &'static str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Option<Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let t0 = Instant::now();
        let result = req.send().await;
        let (ok, value) = match result {
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                if status.is_success() {
                    (None, serde_json::from_str(&text).ok())
                } else {
                    (Some(format!("{op}: HTTP {}", status.as_u16())), None)
                }
            }
            Err(e) => (
                Some(format!(
                    "{op}: {}",
                    if e.is_timeout() {
                        "timeout"
                    } else {
                        "transport"
                    }
                )),
                None,
            ),
        };
        let elapsed = t0.elapsed();
        let mut s = self.stats.lock().expect("stats lock");
        s.latencies.entry(op).or_default().push(elapsed);
        match ok {
            Some(err) => {
                *s.errors.entry(err).or_default() += 1;
                None
            }
            None => Some(value.unwrap_or(Value::Null)),
        }
    }
}

async fn client(
    api: Arc<Api>,
    n: usize,
    sandbox: String,
    token: String,
    data: std::path::PathBuf,
    deadline: Instant,
) {
    use reqwest::Method;
    let mut i = 0;
    while Instant::now() < deadline {
        i += 1;
        let name = format!("load-{n}-{i}");
        let body = json!({"name": name, "api_key": token, "base_url": sandbox, "rate_limit_per_min": 100000});
        let Some(created) = api
            .call(
                "create credential",
                Method::POST,
                "/api/v1/credentials",
                Some(body),
            )
            .await
        else {
            continue;
        };
        let id = created["id"].as_str().unwrap_or_default().to_string();
        api.stats
            .lock()
            .expect("stats lock")
            .credentials
            .push(id.clone());
        api.call("list credentials", Method::GET, "/api/v1/credentials", None)
            .await;
        api.call(
            "test credential",
            Method::POST,
            &format!("/api/v1/credentials/{id}/test"),
            Some(json!({})),
        )
        .await;
        if i % 5 == 1 {
            let src = format!("src-{n}-{i}");
            let sink = format!("sqlite:{}", data.join(format!("{src}.db")).display());
            let body = json!({"name": src, "credential": name, "streams": ["users", "teams"], "mode": "full", "sink": sink});
            if let Some(s) = api
                .call("create source", Method::POST, "/api/v1/sources", Some(body))
                .await
            {
                let sid = s["id"].as_str().unwrap_or_default().to_string();
                api.stats
                    .lock()
                    .expect("stats lock")
                    .sources
                    .push(sid.clone());
                if let Some(run) = api
                    .call(
                        "start run",
                        Method::POST,
                        &format!("/api/v1/sources/{sid}/run"),
                        None,
                    )
                    .await
                {
                    let rid = run["id"].as_str().unwrap_or_default().to_string();
                    api.stats.lock().expect("stats lock").runs.push(rid.clone());
                    api.call(
                        "show run",
                        Method::GET,
                        &format!("/api/v1/runs/{rid}"),
                        None,
                    )
                    .await;
                }
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn start_serve(data_dir: &std::path::Path) -> (tokio::process::Child, String, String) {
    let mut child = tokio::process::Command::new(reliability::driftbridge_bin())
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "--json",
            "-q",
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--allow-private-base-urls",
        ])
        .env_remove("DRIFTBRIDGE_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn driftbridge serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let line = tokio::io::BufReader::new(stdout)
        .lines()
        .next_line()
        .await
        .expect("read serve's first line")
        .expect("serve printed its address");
    let v: Value = serde_json::from_str(&line).expect("serve's JSON line");
    let url = v["url"]
        .as_str()
        .expect("url")
        .trim_end_matches('/')
        .to_string();
    let token = v["admin_token"].as_str().expect("admin token").to_string();
    (child, url, token)
}

async fn verify(api: &Api) -> Vec<String> {
    use reqwest::Method;
    let mut lost = Vec::new();
    let (creds, sources, runs) = {
        let s = api.stats.lock().expect("stats lock");
        (s.credentials.clone(), s.sources.clone(), s.runs.clone())
    };
    let listed = api
        .call("verify", Method::GET, "/api/v1/credentials", None)
        .await
        .unwrap_or(Value::Null);
    let ids: std::collections::HashSet<String> = listed
        .as_array()
        .or_else(|| listed["items"].as_array())
        .map(|a| {
            a.iter()
                .filter_map(|c| c["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for c in &creds {
        if !ids.contains(c) {
            lost.push(format!("credential {c}"));
        }
    }
    for s in &sources {
        if api
            .call("verify", Method::GET, &format!("/api/v1/sources/{s}"), None)
            .await
            .is_none()
        {
            lost.push(format!("source {s}"));
        }
    }
    for r in &runs {
        if api
            .call("verify", Method::GET, &format!("/api/v1/runs/{r}"), None)
            .await
            .is_none()
        {
            lost.push(format!("run {r}"));
        }
    }
    lost
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let clients = env_num("LOAD_CLIENTS", 50) as usize;
    let seconds = env_num("LOAD_SECONDS", 60);
    let dir = tempfile::tempdir().expect("temp dir");
    let sandbox = drift_sandbox::start(drift_sandbox::SandboxConfig {
        conversations: 5,
        rate_limit_per_min: 0,
        ..Default::default()
    })
    .await
    .expect("start the sandbox");
    let (mut serve, url, admin) = start_serve(&dir.path().join("data")).await;
    eprintln!(
        "load: {clients} clients for {seconds} s against {url} (sandbox {})",
        sandbox.base_url()
    );
    let api = Arc::new(Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(clients)
            .build()
            .expect("http client"),
        url,
        token: admin,
        stats: Arc::new(Mutex::new(Stats::default())),
    });
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|n| {
            tokio::spawn(client(
                api.clone(),
                n,
                sandbox.base_url(),
                sandbox.token(),
                dir.path().to_path_buf(),
                deadline,
            ))
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await; // runs started last finish
    let lost = verify(&api).await;
    let _ = serve.start_kill();
    let _ = serve.wait().await;
    let stats = api.stats.lock().expect("stats lock");
    let mut all: Vec<Duration> = Vec::new();
    println!(
        "{:<18} {:>7} {:>10} {:>10} {:>10}",
        "operation", "count", "p50", "p99", "max"
    );
    for (op, l) in &stats.latencies {
        if *op == "verify" {
            continue;
        }
        let mut l = l.clone();
        l.sort();
        all.extend(&l);
        println!(
            "{op:<18} {:>7} {:>10} {:>10} {:>10}",
            l.len(),
            ms(percentile(&l, 0.5)),
            ms(percentile(&l, 0.99)),
            ms(*l.last().unwrap_or(&Duration::ZERO))
        );
    }
    all.sort();
    let errors: u64 = stats.errors.values().sum();
    println!(
        "total: {} requests in {:.1} s ({:.0}/s), p50 {}, p99 {}, max {}; errors {errors}; writes acknowledged: {} credentials, {} sources, {} runs; lost {}",
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99)),
        ms(*all.last().unwrap_or(&Duration::ZERO)),
        stats.credentials.len(),
        stats.sources.len(),
        stats.runs.len(),
        lost.len()
    );
    for (e, n) in &stats.errors {
        println!("  error {e}: {n}");
    }
    for l in lost.iter().take(10) {
        println!("  lost {l}");
    }
    if errors > 0 || !lost.is_empty() {
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
