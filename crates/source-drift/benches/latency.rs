//! Does a sync use the whole rate budget when every request takes a while to answer?
//!
//! Runs a full sync of a sandbox org with `BENCH_LATENCY_MS` (default 200) of latency per
//! response and a `BENCH_BUDGET` (default 600) requests/minute budget over
//! `BENCH_CONVERSATIONS` (default 60) conversations of 3 messages, and prints the achieved
//! request rate. With requests issued one at a time the rate would be at most 300/min at
//! 200 ms; concurrent message and contact fetches, and the next page's work starting before
//! the last of a page's fetches return, should bring it close to the budget.
//! Run: `cargo bench -p source-drift --bench latency` (add `--profile dev` to skip the release
//! build; the figure is dominated by the network wait, not by CPU), e.g.
//! `BENCH_BUDGET=6000 BENCH_CONVERSATIONS=1600 BENCH_LATENCY_MS=150 cargo bench --profile dev -p source-drift --bench latency`.

use secrecy::SecretString;
use sinks::SqliteSink;
use source_drift::{catalog, DriftSource, DriftSourceConfig};
use std::sync::Arc;
use std::time::Instant;
use sync_core::{run_sync, Cancel, RunOptions, SyncMode};

/// A positive number from the environment variable `name`, or `default`.
fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: expected a positive number")),
        Err(_) => default,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let budget: u32 = env_or("BENCH_BUDGET", 600);
    let latency_ms: u64 = env_or("BENCH_LATENCY_MS", 200);
    let config = drift_sandbox::SandboxConfig {
        conversations: env_or("BENCH_CONVERSATIONS", 60),
        messages_per_conversation: 3,
        latency_ms,
        rate_limit_per_min: budget,
        ..Default::default()
    };
    let sandbox = drift_sandbox::start(config).await.expect("sandbox");
    let client =
        drift_client::Client::builder(&sandbox.base_url(), SecretString::from(sandbox.token()))
            .rate_limit_per_min(budget)
            .build()
            .expect("client");
    let source = Arc::new(DriftSource::new(
        client.clone(),
        DriftSourceConfig::default(),
    ));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut dest = SqliteSink::open(&dir.path().join("bench.db")).expect("sqlite");
    let streams = catalog()
        .select(&["all".into()], SyncMode::FullRefresh)
        .expect("streams");
    let started = Instant::now();
    let report = run_sync(
        source,
        &mut dest,
        streams,
        RunOptions::new("bench", "bench"),
        Cancel::new(),
        None,
    )
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let m = client.metrics();
    let per_min = m.requests as f64 / elapsed * 60.0;
    println!(
        "latency {latency_ms} ms, budget {budget}/min: {} requests in {elapsed:.1} s = {per_min:.0} requests/min \
         ({:.1}% of the budget), {} rate limited, run {}",
        m.requests,
        100.0 * per_min / f64::from(budget),
        m.rate_limited,
        report.status.as_str()
    );
    sandbox.shutdown().await;
}
