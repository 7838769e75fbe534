//! How fast does `push contacts` write a 10,000-row CSV, and how many requests per row?
//!
//! Starts an in-process sandbox (rate limit off), writes a CSV of new leads, pushes it with a
//! 100,000/min budget, then pushes the same file again (every row must come back
//! `unchanged`: lookups only). Prints rows/s and requests per row for both runs.
//! Run: `cargo bench -p drift-writer --bench push` (`ROWS=N` to change the size; add
//! `--profile dev` to skip the release build).

use drift_writer::{push, InputSpec, Object, OutcomeKind, PushOptions, Summary};
use secrecy::SecretString;
use std::io::Write;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(bench());
}

async fn run(client: &drift_client::Client, path: &std::path::Path) -> Summary {
    let input = InputSpec::Csv(path.to_path_buf())
        .open()
        .expect("open the CSV");
    let mut opts = PushOptions::new(Object::Contacts);
    opts.mapping =
        drift_writer::Mapping::parse_pairs("company=company,score=score:number").expect("mapping");
    push(client, opts, input, None, |_| Ok(()))
        .await
        .expect("push")
}

fn report(label: &str, s: &Summary) {
    let counts: Vec<String> = OutcomeKind::ALL
        .iter()
        .map(|k| format!("{} {}", k.as_str(), s.count(*k)))
        .collect();
    println!(
        "{label}: {} rows in {:.2} s = {:.0} rows/s, {} requests = {:.2} per row ({})",
        s.rows,
        s.elapsed.as_secs_f64(),
        s.rows_per_sec(),
        s.requests,
        s.requests_per_row(),
        counts.join(", ")
    );
}

async fn bench() {
    let rows: usize = std::env::var("ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10_000);
    let sandbox = drift_sandbox::start(drift_sandbox::SandboxConfig {
        rate_limit_per_min: 0,
        ..Default::default()
    })
    .await
    .expect("sandbox");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("leads.csv");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("csv"));
    writeln!(file, "email,first_name,last_name,company,score").expect("write");
    for i in 0..rows {
        writeln!(
            file,
            "lead{i}@example.com,First{i},Last{i},Company {},{}",
            i % 100,
            i % 97
        )
        .expect("write");
    }
    drop(file);
    let client =
        drift_client::Client::builder(&sandbox.base_url(), SecretString::from(sandbox.token()))
            .rate_limit_per_min(100_000)
            .build()
            .expect("client");
    let first = run(&client, &path).await;
    report("first run ", &first);
    let second = run(&client, &path).await;
    report("second run", &second);
    assert_eq!(first.count(OutcomeKind::Created) as usize, rows);
    assert_eq!(second.count(OutcomeKind::Unchanged) as usize, rows);
    sandbox.shutdown().await;
}
