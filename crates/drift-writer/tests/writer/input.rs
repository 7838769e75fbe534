//! Input readers: CSV, JSONL, SQLite, and results files fed back.

use drift_writer::{InputSpec, Outcome, OutcomeKind, ResultsWriter, RowResult, SqlSource};
use serde_json::{json, Map, Value};
use std::path::PathBuf;

fn rows(spec: &InputSpec) -> Vec<RowResult> {
    spec.open().unwrap().rows.collect()
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn from_values_parse_to_the_right_reader() {
    assert_eq!(
        InputSpec::parse("a.csv").unwrap(),
        InputSpec::Csv("a.csv".into())
    );
    assert_eq!(
        InputSpec::parse("a.JSONL").unwrap(),
        InputSpec::Jsonl("a.JSONL".into())
    );
    assert_eq!(
        InputSpec::parse("sqlite:/tmp/x.db?table=leads").unwrap(),
        InputSpec::Sqlite {
            path: PathBuf::from("/tmp/x.db"),
            source: SqlSource::Table("leads".into())
        }
    );
    assert_eq!(
        InputSpec::parse("sqlite:x.db?query=SELECT%20email%20FROM%20t%20WHERE%20a%2Bb%3E1")
            .unwrap(),
        InputSpec::Sqlite {
            path: PathBuf::from("x.db"),
            source: SqlSource::Query("SELECT email FROM t WHERE a+b>1".into())
        }
    );
    let e = InputSpec::parse("sqlite:x.db").unwrap_err().to_string();
    assert!(e.contains("table="), "{e}");
    let pg =
        InputSpec::parse("postgres://me:s3cret@db:5432/crm?sslmode=disable&table=public.leads")
            .unwrap();
    let InputSpec::Postgres { url, source } = &pg else {
        panic!("{pg:?}")
    };
    assert_eq!(url.0, "postgres://me:s3cret@db:5432/crm?sslmode=disable");
    assert_eq!(*source, SqlSource::Table("public.leads".into()));
    let shown = format!("{pg:?}");
    assert!(
        !shown.contains("s3cret") && shown.contains("****"),
        "{shown}"
    );
    let e = InputSpec::parse("postgres://db/x").unwrap_err().to_string();
    assert!(e.contains("names no table"), "{e}");
}

#[test]
fn csv_rows_stream_with_numbers_and_a_bad_row_does_not_stop_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.csv");
    std::fs::write(
        &path,
        "\u{feff}email,name\na@example.com,\"Lovelace, Ada\"\nb@example.com,Bob,extra\nc@example.com,李\n",
    )
    .unwrap();
    let got = rows(&InputSpec::Csv(path));
    assert_eq!(got.len(), 3);
    let first = got[0].as_ref().unwrap();
    assert_eq!(first.number, 1);
    assert_eq!(
        first.fields,
        obj(json!({"email": "a@example.com", "name": "Lovelace, Ada"}))
    );
    let bad = got[1].as_ref().unwrap_err();
    assert_eq!(bad.row, Some(2));
    assert!(
        bad.message.contains("3 fields but the header has 2"),
        "{}",
        bad.message
    );
    assert_eq!(got[2].as_ref().unwrap().fields["name"], json!("李"));
}

#[test]
fn csv_headers_must_be_named_and_unique() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dup.csv");
    std::fs::write(&path, "email,email\na,b\n").unwrap();
    let e = InputSpec::Csv(path).open().unwrap_err();
    assert_eq!(e.row, None);
    assert!(e.message.contains("appears twice"), "{}", e.message);
}

#[test]
fn jsonl_keeps_types_and_rejects_bad_lines_by_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.jsonl");
    std::fs::write(
        &path,
        "{\"email\":\"a@example.com\",\"score\":7}\n\n[1]\n{oops\n",
    )
    .unwrap();
    let got = rows(&InputSpec::Jsonl(path));
    assert_eq!(got.len(), 3, "the blank line is not a row");
    assert_eq!(got[0].as_ref().unwrap().fields["score"], json!(7));
    assert_eq!(got[1].as_ref().unwrap_err().row, Some(3));
    assert!(got[2]
        .as_ref()
        .unwrap_err()
        .message
        .contains("not valid JSON"));
}

#[test]
fn sqlite_tables_and_queries_stream_typed_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE leads (email TEXT, score INTEGER, ratio REAL, note TEXT);
         INSERT INTO leads VALUES ('a@example.com', 7, 0.5, NULL), ('b@example.com', 9, 1.5, 'vip');",
    )
    .unwrap();
    let table = InputSpec::parse(&format!("sqlite:{}?table=leads", db.display())).unwrap();
    let got: Vec<_> = rows(&table).into_iter().map(Result::unwrap).collect();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].fields,
        obj(json!({"email": "a@example.com", "score": 7, "ratio": 0.5, "note": null}))
    );
    let query = InputSpec::parse(&format!(
        "sqlite:{}?query=SELECT email AS mail FROM leads WHERE score > 8",
        db.display()
    ))
    .unwrap();
    let got: Vec<_> = rows(&query).into_iter().map(Result::unwrap).collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].fields, obj(json!({"mail": "b@example.com"})));
    let missing = InputSpec::parse(&format!("sqlite:{}?table=nope", db.display())).unwrap();
    assert!(missing.open().unwrap_err().message.contains("nope"));
}

fn outcome(row: u64, kind: OutcomeKind, input: Value) -> Outcome {
    Outcome {
        row,
        key: Some(format!("k{row}")),
        kind,
        drift_id: None,
        reason: Some("why, with \"quotes\", and commas".into()),
        input: obj(input),
    }
}

#[test]
fn results_files_feed_back_with_original_rows_and_prior_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["r.csv", "r.jsonl"] {
        let path = dir.path().join(name);
        let mut w = ResultsWriter::create(&path).unwrap();
        w.write(&outcome(
            4,
            OutcomeKind::Rejected,
            json!({"email": "x, y", "n": "李"}),
        ))
        .unwrap();
        w.write(&outcome(
            2,
            OutcomeKind::Created,
            json!({"email": "b@example.com"}),
        ))
        .unwrap();
        w.finish().unwrap();
        let input = InputSpec::parse(&path.display().to_string())
            .unwrap()
            .open()
            .unwrap();
        assert!(input.is_results, "{name}");
        let got: Vec<_> = input.rows.map(Result::unwrap).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].number, 4);
        assert_eq!(got[0].prior, Some(OutcomeKind::Rejected));
        assert_eq!(got[0].fields, obj(json!({"email": "x, y", "n": "李"})));
        assert_eq!(got[1].prior, Some(OutcomeKind::Created));
    }
}

/// Writes each row's outcome as the writer would: good rows as read, unreadable rows
/// rejected with their reason and kept input.
fn results_of(path: &std::path::Path, got: &[RowResult]) {
    let mut w = ResultsWriter::create(path).unwrap();
    for (i, r) in got.iter().enumerate() {
        let o = match r {
            Ok(row) => Outcome {
                row: row.number,
                key: None,
                kind: OutcomeKind::Created,
                drift_id: None,
                reason: None,
                input: row.fields.clone(),
            },
            Err(e) => Outcome {
                row: e.row.unwrap_or(i as u64 + 1),
                key: None,
                kind: OutcomeKind::Rejected,
                drift_id: None,
                reason: Some(e.message.clone()),
                input: e.input.clone(),
            },
        };
        w.write(&o).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn unreadable_csv_rows_keep_their_raw_text_and_are_rejected_again_when_re_fed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.csv");
    let mut bytes = b"email,name,note,score\n".to_vec();
    bytes.extend_from_slice(b"ok@example.com,Ok,,1\n");
    bytes.extend_from_slice(b"carol@example.com,Carol,,7,extra\n");
    bytes.extend_from_slice(b"jose@example.com,Jos\xe9,,3\n");
    bytes.extend_from_slice(b"dave@example.com,\"Dave,,4\nerin@example.com,Erin,,5\n");
    std::fs::write(&path, bytes).unwrap();
    let got = rows(&InputSpec::Csv(path));
    assert_eq!(
        got.len(),
        4,
        "the unterminated quote takes in the last line"
    );
    assert!(got[0].is_ok());
    let errs: Vec<_> = got[1..].iter().map(|r| r.as_ref().unwrap_err()).collect();
    assert_eq!(errs[0].row, Some(2));
    assert!(
        errs[0].message.contains("5 fields but the header has 4"),
        "{}",
        errs[0].message
    );
    assert_eq!(
        errs[0].input,
        obj(json!({"_raw": "carol@example.com,Carol,,7,extra",
                   "_columns": ["email", "name", "note", "score"]}))
    );
    assert!(errs[1].message.contains("UTF-8"), "{}", errs[1].message);
    assert_eq!(
        errs[1].input["_raw"],
        json!("jose@example.com,Jos\u{FFFD},,3")
    );
    assert!(
        errs[2].message.contains("quote that is never closed"),
        "{}",
        errs[2].message
    );
    assert_eq!(
        errs[2].input["_raw"],
        json!("dave@example.com,\"Dave,,4\nerin@example.com,Erin,,5")
    );

    // Through a results file (CSV and JSONL) and back: the same rows, the same reasons.
    for name in ["r.csv", "r.jsonl"] {
        let results = dir.path().join(name);
        results_of(&results, &got);
        let refed = InputSpec::parse(&results.display().to_string())
            .unwrap()
            .open()
            .unwrap();
        assert!(refed.is_results);
        let again: Vec<RowResult> = refed.rows.collect();
        assert_eq!(again.len(), 4, "{name}");
        assert_eq!(
            again[0].as_ref().unwrap().fields,
            got[0].as_ref().unwrap().fields
        );
        for (before, after) in errs.iter().zip(&again[1..]) {
            let after = after.as_ref().unwrap_err();
            assert_eq!(after.row, before.row, "{name}");
            assert_eq!(after.message, before.message, "{name}");
            assert_eq!(after.input, before.input, "{name}: kept for the next retry");
            assert_eq!(after.prior, Some(OutcomeKind::Rejected));
        }
    }

    // A BOM and CRLF line endings do not leak into the kept text.
    let crlf = dir.path().join("crlf.csv");
    std::fs::write(
        &crlf,
        "\u{feff}email,name\r\nx@example.com,X,extra\r\ny@example.com,Y\r\n",
    )
    .unwrap();
    let got_crlf = rows(&InputSpec::Csv(crlf));
    assert_eq!(
        got_crlf[0].as_ref().unwrap_err().input["_raw"],
        json!("x@example.com,X,extra")
    );
    assert!(got_crlf[1].is_ok());

    // Fixed in the results file, the row reads as a row.
    let fixed = dir.path().join("fixed.csv");
    let text = std::fs::read_to_string(dir.path().join("r.csv"))
        .unwrap()
        .replace(",7,extra", ",7");
    std::fs::write(&fixed, text).unwrap();
    let again: Vec<RowResult> = InputSpec::Csv(fixed).open().unwrap().rows.collect();
    assert_eq!(
        again[1].as_ref().unwrap().fields,
        obj(json!({"email": "carol@example.com", "name": "Carol", "note": "", "score": "7"}))
    );
}

#[test]
fn unreadable_jsonl_lines_keep_their_raw_text_and_are_rejected_again_when_re_fed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.jsonl");
    std::fs::write(
        &path,
        b"{\"email\":\"a@example.com\"}\n{oops\n{\"email\":\"j\xff@example.com\"}\n".as_slice(),
    )
    .unwrap();
    let got = rows(&InputSpec::Jsonl(path));
    assert_eq!(got.len(), 3);
    let bad = got[1].as_ref().unwrap_err();
    assert_eq!(bad.input, obj(json!({"_raw": "{oops"})));
    let latin = got[2].as_ref().unwrap_err();
    assert!(latin.message.contains("UTF-8"), "{}", latin.message);
    let results = dir.path().join("r.csv");
    results_of(&results, &got);
    let again: Vec<RowResult> = InputSpec::Csv(results).open().unwrap().rows.collect();
    for (before, after) in got[1..].iter().zip(&again[1..]) {
        let (before, after) = (before.as_ref().unwrap_err(), after.as_ref().unwrap_err());
        assert_eq!(after.message, before.message);
        assert_eq!(after.input, before.input);
    }
}

#[test]
fn a_ragged_row_from_a_pipe_keeps_its_fields() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("in.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            std::fs::write(
                fifo,
                "email,name\nx@example.com,\"X, Jr\",extra\ny@example.com,Y\n",
            )
            .unwrap()
        })
    };
    let got = rows(&InputSpec::Csv(fifo));
    writer.join().unwrap();
    assert_eq!(got.len(), 2);
    let bad = got[0].as_ref().unwrap_err();
    assert!(bad.message.contains("3 fields"), "{}", bad.message);
    assert_eq!(bad.input["_raw"], json!("x@example.com,\"X, Jr\",extra"));
    assert!(got[1].is_ok());
}
