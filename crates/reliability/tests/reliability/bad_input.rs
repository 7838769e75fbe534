//! Bad input: hostile credential fields, push inputs, config files and arguments. Each gets
//! a clear error naming the field, file or row (checked below), never a panic (stderr is
//! scanned for "panicked" in every case by `Out::expect`).

use crate::common::{assert_no_panic, small, Env, Out, CRED};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// `credentials add --no-test` with the key in `KEY`.
async fn add(env: &Env, name: &str, extra: &[&str], key: &str) -> Out {
    let mut args = vec!["credentials", "add", "--no-test", "--name", name];
    args.extend(extra);
    args.extend(["--api-key-env", "KEY"]);
    env.run_env(&args, "KEY", key).await
}

fn expect_error(out: &Out, what: &str, code: i32, words: &[&str]) {
    out.expect(code, what);
    let err = out.stderr.to_lowercase();
    for w in words {
        assert!(
            err.contains(&w.to_lowercase()),
            "{what}: stderr should name {w:?}\nstderr: {}",
            out.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_credential_fields_are_refused_naming_the_field() {
    let env = Env::bare(small(2)).await;
    let url = env.sandbox.base_url();
    let base = ["--base-url", url.as_str()];
    let huge = "n".repeat(10_000);
    // (what, name, extra arguments, key, words the error must contain)
    type Case<'a> = (&'a str, String, Vec<&'a str>, String, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "empty name",
            String::new(),
            base.to_vec(),
            "k-1234567890abcdef".into(),
            vec!["name"],
        ),
        (
            "whitespace name",
            "   ".into(),
            base.to_vec(),
            "k-1234567890abcdef".into(),
            vec!["name"],
        ),
        (
            "huge name",
            huge.clone(),
            base.to_vec(),
            "k-1234567890abcdef".into(),
            vec!["name", "100"],
        ),
        (
            "control chars in name",
            "a\u{7}b\nc".into(),
            base.to_vec(),
            "k-1234567890abcdef".into(),
            vec!["name"],
        ),
        (
            "huge description",
            "ok".into(),
            vec!["--base-url", url.as_str(), "--description", &huge],
            "k-1234567890abcdef".into(),
            vec!["description", "1000"],
        ),
        (
            "empty key",
            "ok".into(),
            base.to_vec(),
            String::new(),
            vec!["api_key"],
        ),
        (
            "key with a newline inside",
            "ok".into(),
            base.to_vec(),
            "abc\ndef-1234567".into(),
            vec!["api_key"],
        ),
        (
            "key with control chars",
            "ok".into(),
            base.to_vec(),
            "abc\u{1b}[31mdef".into(),
            vec!["api_key"],
        ),
        (
            "huge key",
            "ok".into(),
            base.to_vec(),
            "k".repeat(100_000),
            vec!["api_key"],
        ),
        (
            "key shorter than 16 characters",
            "ok".into(),
            base.to_vec(),
            "k-123456789".into(),
            vec!["api_key", "16 characters", "whole token"],
        ),
        (
            "userinfo in base URL",
            "ok".into(),
            vec!["--base-url", "https://user:hunter2pw@driftapi.com"],
            "k-1234567890abcdef".into(),
            vec!["base"],
        ),
        (
            "javascript: base URL",
            "ok".into(),
            vec!["--base-url", "javascript:alert(1)"],
            "k-1234567890abcdef".into(),
            vec!["base"],
        ),
        (
            "file: base URL",
            "ok".into(),
            vec!["--base-url", "file:///etc/passwd"],
            "k-1234567890abcdef".into(),
            vec!["base"],
        ),
        (
            "http to a private address",
            "ok".into(),
            vec!["--base-url", "http://10.1.2.3/"],
            "k-1234567890abcdef".into(),
            vec!["base", "https"],
        ),
        (
            "unclosed IPv6 literal",
            "ok".into(),
            vec!["--base-url", "https://[::1"],
            "k-1234567890abcdef".into(),
            vec!["base"],
        ),
        (
            "port out of range",
            "ok".into(),
            vec!["--base-url", "https://driftapi.com:99999"],
            "k-1234567890abcdef".into(),
            vec!["base"],
        ),
        (
            "empty base URL",
            "ok".into(),
            vec!["--base-url", ""],
            "k-1234567890abcdef".into(),
            vec!["base"],
        ),
    ];
    for (what, name, extra, key, words) in &cases {
        let out = add(&env, name, extra, key).await;
        expect_error(&out, what, 2, words);
        assert!(
            !out.stderr.contains("hunter2pw"),
            "{what}: the password of a URL must not be echoed"
        );
    }
    // Nothing was saved by any of them.
    assert!(env.store().list_credentials().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusual_but_valid_base_urls_are_kept_normalised() {
    let env = Env::bare(small(2)).await;
    let port = env
        .sandbox
        .base_url()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let cases = [
        (
            "ipv6",
            format!("http://[::1]:{port}//"),
            format!("http://[::1]:{port}"),
        ),
        (
            "port and path",
            "https://drift.example.com:8443/api/v1/".to_string(),
            "https://drift.example.com:8443/api/v1".to_string(),
        ),
        (
            "localhost",
            format!("http://LOCALHOST:{port}"),
            format!("http://localhost:{port}"),
        ),
        (
            "query dropped with a warning",
            "https://driftapi.com/?token=x".to_string(),
            "https://driftapi.com".to_string(),
        ),
    ];
    for (i, (what, raw, expect)) in cases.iter().enumerate() {
        let name = format!("c{i}");
        add(&env, &name, &["--base-url", raw], "k-1234567890abcdef")
            .await
            .expect(0, what);
        let shown = env.store().credential(&name).unwrap().base_url;
        assert_eq!(shown.trim_end_matches('/'), expect, "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_utf8_arguments_and_environment_are_refused_without_a_panic() {
    let env = Env::bare(small(2)).await;
    let mut cmd = env.command(&["credentials", "add", "--no-test", "--api-key-env", "KEY"]);
    cmd.arg("--name").arg(OsStr::from_bytes(b"bad\xffname"));
    cmd.env("KEY", "k-1234567890abcdef");
    let out = crate::common::output(cmd).await;
    expect_error(&out, "non-UTF-8 name", 2, &["utf-8"]);

    let mut cmd = env.command(&["credentials", "add", "--no-test", "--name", "ok"]);
    cmd.args(["--api-key-env", "KEY"])
        .env("KEY", OsStr::from_bytes(b"key\xfe\xff-123456"));
    let out = crate::common::output(cmd).await;
    expect_error(&out, "non-UTF-8 key", 2, &["api_key", "utf-8"]);

    let mut cmd = env.command(&["credentials", "add", "--no-test", "--name", "ok"]);
    cmd.arg("--api-key-stdin")
        .stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\xc3\x28 not utf8").await.unwrap();
    drop(stdin);
    let o = child.wait_with_output().await.unwrap();
    let out = Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    };
    expect_error(&out, "non-UTF-8 stdin key", 2, &["api_key", "utf-8"]);
}

/// `push contacts --dry-run` of `input`; returns the run and the results file text.
async fn push(env: &Env, input: &str, results: &str) -> (Out, String) {
    let res = env.path(results).display().to_string();
    let out = env
        .run(&[
            "push",
            "contacts",
            "--credential",
            CRED,
            "--from",
            input,
            "--results",
            &res,
            "--dry-run",
        ])
        .await;
    let text = std::fs::read_to_string(&res).unwrap_or_default();
    (out, text)
}

/// (row number, outcome, reason) of each results row, in row order.
pub fn outcomes(results_csv: &str) -> Vec<(u64, String, String)> {
    let mut r = csv::Reader::from_reader(results_csv.as_bytes());
    let mut rows: Vec<(u64, String, String)> = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            (
                rec[0].parse().unwrap(),
                rec[2].to_string(),
                rec[4].to_string(),
            )
        })
        .collect();
    rows.sort_by_key(|r| r.0);
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_push_inputs_get_one_outcome_per_row_naming_the_row() {
    let env = Env::start(small(2)).await;
    // Wrong encoding: row 2 is Latin-1.
    let latin1 = env.write(
        "latin1.csv",
        b"email,name\nok1@example.com,Ok\nbad@example.com,Jos\xe9\nok2@example.com,Ok\n",
    );
    let (out, res) = push(&env, &latin1, "r1.csv").await;
    out.expect(5, "latin-1 row");
    let o = outcomes(&res);
    assert_eq!(o.len(), 3, "one outcome per row: {res}");
    assert_eq!(o[1].1, "rejected");
    assert!(
        o[1].2.contains("UTF-8"),
        "reason names the encoding: {}",
        o[1].2
    );
    assert_ne!(o[0].1, "rejected");
    assert_ne!(o[2].1, "rejected");

    // Ragged rows: too few and too many fields.
    let ragged = env.write(
        "ragged.csv",
        "email,name\nshort@example.com\nlong@example.com,L,extra\nfine@example.com,F\n",
    );
    let (out, res) = push(&env, &ragged, "r2.csv").await;
    out.expect(5, "ragged rows");
    let o = outcomes(&res);
    assert_eq!(o.len(), 3, "{res}");
    assert_eq!((o[0].0, o[0].1.as_str()), (1, "rejected"));
    assert_eq!((o[1].0, o[1].1.as_str()), (2, "rejected"));
    assert!(o[0].2.contains("fields"), "{}", o[0].2);
    assert_ne!(o[2].1, "rejected");

    // A UTF-8 BOM before the header is not part of the first column's name.
    let bom = env.write("bom.csv", "\u{feff}email,name\nbom@example.com,B\n");
    let (out, res) = push(&env, &bom, "r3.csv").await;
    out.expect(0, "BOM");
    assert_eq!(outcomes(&res).len(), 1);

    // Quotes: escaped quotes and commas inside quotes are values; an unclosed quote
    // swallows the rest of the file into one field, which is reported, not dropped.
    let quotes = env.write(
        "quotes.csv",
        "email,name\nq1@example.com,\"Smith, \"\"Q\"\"\"\nq2@example.com,\"unclosed\nq3@example.com,Z\n",
    );
    let (out, res) = push(&env, &quotes, "r4.csv").await;
    assert_no_panic(&out, "quotes");
    let o = outcomes(&res);
    assert_eq!(o[0].1, "created", "{res}");
    assert_eq!(
        o.len(),
        2,
        "the unclosed quote makes rows 2-3 one row: {res}"
    );

    // JSONL: not JSON, not an object, invalid UTF-8; good lines still go through.
    let jsonl = env.write(
        "in.jsonl",
        b"{\"email\":\"j1@example.com\"}\nnot json\n[1,2]\n{\"email\":\"j\xff@example.com\"}\n{\"email\":\"j2@example.com\"}\n",
    );
    let (out, res) = push(&env, &jsonl, "r5.csv").await;
    out.expect(5, "bad JSONL lines");
    let o = outcomes(&res);
    let kinds: Vec<&str> = o.iter().map(|x| x.1.as_str()).collect();
    assert_eq!(
        kinds,
        ["created", "rejected", "rejected", "rejected", "created"],
        "{res}"
    );
    assert!(o.iter().map(|x| x.0).eq(1..=5), "rows named 1..5: {res}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_line_is_one_rejected_row_not_a_crash() {
    let env = Env::start(small(2)).await;
    let big = "x".repeat(100 * 1024 * 1024);
    let csv = env.write(
        "big.csv",
        format!("email,name\nbig@example.com,{big}\nok@example.com,O\n"),
    );
    let (out, res) = push(&env, &csv, "big.results.csv").await;
    out.expect(5, "100 MB CSV line");
    let o = outcomes(&res);
    assert_eq!(o.len(), 2, "one outcome per row");
    assert_eq!(o[0].1, "rejected");
    assert!(
        o[0].2.contains("1 MiB"),
        "the reason names the limit: {}",
        o[0].2
    );
    assert_eq!(o[1].1, "created");
    assert!(
        res.len() < 1_000_000,
        "the 100 MB value is not echoed into the results"
    );
    let jsonl = env.write(
        "big.jsonl",
        format!("{{\"email\":\"{big}@example.com\"}}\n{{\"email\":\"ok2@example.com\"}}\n"),
    );
    let (out, res) = push(&env, &jsonl, "big.results2.csv").await;
    out.expect(5, "100 MB JSONL line");
    let o = outcomes(&res);
    assert_eq!(o.len(), 2);
    assert_eq!(o[0].1, "rejected");
    assert!(o[0].2.contains("1 MiB"), "{}", o[0].2);
    assert_eq!(o[1].1, "created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_files_and_arguments_name_what_to_fix() {
    let env = Env::start(small(2)).await;
    let csv = env.write("in.csv", "email\na@example.com\n");
    let mapping = env.write("map.json", "{\"email\": ");
    let out = env
        .run(&[
            "push",
            "contacts",
            "--credential",
            CRED,
            "--from",
            &csv,
            "--mapping",
            &mapping,
            "--dry-run",
        ])
        .await;
    expect_error(&out, "truncated mapping file", 2, &["map.json"]);

    let faults = env.write("faults.json", "{\"faults\": [{\"route\": 5}]}");
    let out = env
        .run(&["sandbox", "--port", "0", "--faults", &faults])
        .await;
    expect_error(&out, "bad fault plan", 2, &["--faults", "route"]);

    let missing = env.path("nope.csv").display().to_string();
    let out = env
        .run(&[
            "push",
            "contacts",
            "--credential",
            CRED,
            "--from",
            &missing,
            "--dry-run",
        ])
        .await;
    expect_error(&out, "missing input", 2, &["nope.csv"]);

    let out = env.sync("nosuch:/tmp/x", &[]).await;
    expect_error(&out, "unknown destination", 2, &["--destination"]);
    let out = env
        .sync("sqlite:x.db", &["--streams", "conversations,bogus"])
        .await;
    expect_error(&out, "unknown stream", 2, &["--streams", "bogus"]);
    let out = env.sync("sqlite:x.db", &["--mode", "sideways"]).await;
    expect_error(&out, "unknown mode", 2, &["mode"]);
    let out = env.run(&["sync", "--credential", "nobody"]).await;
    expect_error(&out, "unknown credential", 2, &["nobody"]);

    let out = env
        .run_env(
            &["sync", "--credential", CRED],
            "DRIFTBRIDGE_MASTER_KEY",
            "not base64!",
        )
        .await;
    assert_no_panic(&out, "bad master key");
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("DRIFTBRIDGE_MASTER_KEY"),
        "{}",
        out.stderr
    );

    // A data dir that is a file.
    let file = env.write("plainfile", "x");
    let out = crate::common::output(crate::common::command_in(
        std::path::Path::new(&file),
        env.dir.path(),
        &["credentials", "list"],
    ))
    .await;
    assert_no_panic(&out, "data dir is a file");
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("plainfile"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_vault_key_or_metadata_db_is_reported_not_a_panic() {
    let env = Env::start(small(2)).await;
    let data = env.data_dir();
    let files: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    for f in &files {
        if f.is_file() && !f.to_string_lossy().ends_with(".db") {
            std::fs::write(f, b"garbage").unwrap();
        }
    }
    let out = env.sync("sqlite:x.db", &["--streams", "users"]).await;
    assert_no_panic(&out, "corrupted key file");
    assert_ne!(out.code, 0, "{}", out.stderr);
    for f in &files {
        if f.is_file() && f.to_string_lossy().ends_with(".db") {
            std::fs::write(f, b"this is not a database, just text of some length......").unwrap();
        }
    }
    let out = env.run(&["credentials", "list"]).await;
    assert_no_panic(&out, "corrupted metadata db");
    assert_ne!(out.code, 0);
}
