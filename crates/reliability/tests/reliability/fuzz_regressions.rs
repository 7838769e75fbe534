//! Inputs found by the fuzz targets in `fuzz/` (and the seeds they start from), replayed
//! through the same entry points on every test run. Also the stable fallback of
//! `scripts/fuzz` when no nightly toolchain is available.

use drift_client::fuzzing::{
    decode_envelope, drive_pages, next_link, rate_limit_reset, rate_limit_wait, retry_after,
    Envelope, Step, FUZZ_TOKEN,
};
use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    crate::common::files_under(&dir)
}

#[test]
fn every_decode_seed_decodes_without_panic_or_token() {
    let seeds = corpus("decode");
    assert!(
        seeds.len() >= 40,
        "seeded from the Drift examples: {}",
        seeds.len()
    );
    let mut decoded = 0;
    for (path, bytes) in &seeds {
        let (pick, body) = bytes.split_first().unwrap();
        let envelope = Envelope::ALL[usize::from(*pick) % Envelope::ALL.len()];
        match decode_envelope(envelope, body) {
            Ok(d) => {
                decoded += 1;
                let unfit = format!("{:?}", d.unfit);
                assert!(!unfit.contains(FUZZ_TOKEN), "{}", path.display());
            }
            Err(e) => assert!(!e.to_string().contains(FUZZ_TOKEN), "{}", path.display()),
        }
    }
    // The examples are valid Drift payloads: each decodes as its own envelope.
    assert!(
        decoded * 2 > seeds.len(),
        "{decoded} of {} decoded",
        seeds.len()
    );
}

#[test]
fn huge_or_odd_retry_after_values_do_not_panic() {
    // Found by rate_headers: Duration::from_secs_f64 panics on values past u64 seconds.
    for v in [
        "1e300",
        "1.8e19",
        "inf",
        "NaN",
        "-1",
        "18446744073709551616",
        "1e20",
    ] {
        let _ = retry_after(v);
        let _ = rate_limit_reset(v);
        for status in [429, 503, 200] {
            let _ = rate_limit_wait(
                status,
                &[
                    ("retry-after", v.as_bytes()),
                    ("x-ratelimit-remaining", b"0"),
                    ("x-ratelimit-reset", v.as_bytes()),
                ],
            );
        }
    }
    assert_eq!(retry_after("2"), Some(std::time::Duration::from_secs(2)));
    assert!(retry_after("1e300").is_some_and(|d| d.as_secs() > 1_000_000));
}

#[test]
fn decode_errors_redact_a_token_echoed_in_the_body() {
    // The envelope is wrong: the error names the start of the body, token redacted.
    let body = format!("{{\"data\": \"{FUZZ_TOKEN}\"}}");
    let e = decode_envelope(Envelope::ConversationsList, body.as_bytes()).unwrap_err();
    assert!(!e.to_string().contains(FUZZ_TOKEN), "{e}");
    assert!(e.to_string().contains("[redacted]"), "{e}");
    // One record is wrong: it is set aside as unfit, its reason and raw text redacted.
    let body = format!("{{\"data\": [{{\"id\": \"{FUZZ_TOKEN}\"}}]}}");
    let decoded = decode_envelope(Envelope::ConversationsList, body.as_bytes()).unwrap();
    assert_eq!(decoded.records, 0);
    let unfit = &decoded.unfit[0];
    let shown = format!("{unfit:?}");
    assert!(!shown.contains(FUZZ_TOKEN), "{shown}");
    assert!(unfit.reason.contains("[redacted]"), "{shown}");
    assert!(unfit.raw.contains("[redacted]"), "{shown}");
}

#[test]
fn pagination_scripts_stop_and_refuse_other_hosts() {
    let pages = drive_pages(vec![Step::Legacy("a".into()), Step::Legacy("a".into())]);
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(
        pages[2].as_ref().unwrap_err().contains("repeated cursor"),
        "{pages:?}"
    );
    let endless: Vec<Step> = (0..100).map(|i| Step::Legacy(format!("c{i}"))).collect();
    let pages = drive_pages(endless);
    assert!(
        pages
            .last()
            .unwrap()
            .as_ref()
            .unwrap_err()
            .contains("page cap"),
        "{pages:?}"
    );
    assert!(pages.len() <= 66);
    for link in [
        "https://evil.example/x",
        "//evil.example/x",
        "http://driftapi.com/x",
        "https://driftapi.com:444/x",
    ] {
        assert!(next_link(link).is_err(), "{link} accepted");
    }
    assert!(
        next_link("https://driftapi.com/conversations/list?page_token=b")
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_asking_to_wait_1e300_seconds_ends_the_run_with_exit_4_not_a_panic() {
    use axum::http::{StatusCode, Uri};
    use axum::response::IntoResponse;
    let drift = crate::ssrf::Fake::start(
        "127.0.0.1",
        std::sync::Arc::new(|_: &Uri| {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1e300")],
                "{\"error\": {\"message\": \"slow down\"}}",
            )
                .into_response()
        }),
    )
    .await;
    let env = crate::ssrf::env_for(&drift).await;
    let db = format!("sqlite:{}", env.path("out.db").display());
    let out = env
        .run(&[
            "sync",
            "--credential",
            "t",
            "--streams",
            "users",
            "--destination",
            &db,
        ])
        .await;
    out.expect(4, "Retry-After: 1e300");
    assert!(
        out.stderr.contains("429") || out.stderr.to_lowercase().contains("rate"),
        "{}",
        out.stderr
    );
}
