//! Does a sync use the whole rate budget when every request takes 200 ms?
//!
//! Runs a full sync of a sandbox org with 200 ms of latency per response and a 600/min budget,
//! and prints the achieved request rate. With requests issued one at a time the rate would be
//! at most 300/min; concurrent message and contact fetches should bring it close to 600/min.
//! Run: `cargo bench -p source-drift --bench latency` (add `--profile dev` to skip the release
//! build; the figure is dominated by the network wait, not by CPU).

use destinations::SqliteDestination;
use secrecy::SecretString;
use source_drift::{catalog, DriftSource, DriftSourceConfig};
use std::sync::Arc;
use std::time::Instant;
use sync_core::{run_sync, Cancel, RunOptions, SyncMode};

const BUDGET_PER_MIN: u32 = 600;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let config = drift_sandbox::SandboxConfig {
        conversations: 60,
        messages_per_conversation: 3,
        latency_ms: 200,
        rate_limit_per_min: BUDGET_PER_MIN,
        ..Default::default()
    };
    let sandbox = drift_sandbox::start(config).await.expect("sandbox");
    let client =
        drift_client::Client::builder(&sandbox.base_url(), SecretString::from(sandbox.token()))
            .rate_limit_per_min(BUDGET_PER_MIN)
            .build()
            .expect("client");
    let source = Arc::new(DriftSource::new(
        client.clone(),
        DriftSourceConfig::default(),
    ));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut dest = SqliteDestination::open(&dir.path().join("bench.db")).expect("sqlite");
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
        "latency 200 ms, budget {BUDGET_PER_MIN}/min: {} requests in {elapsed:.1} s = {per_min:.0} requests/min \
         ({:.0}% of the budget), {} rate limited, run {}",
        m.requests,
        100.0 * per_min / f64::from(BUDGET_PER_MIN),
        m.rate_limited,
        report.status.as_str()
    );
    sandbox.shutdown().await;
}
