//! CLI tests: `driftbridge alerts ...` and the alerts every run sends, received by a tiny
//! local webhook receiver: a failed run, the next success (recovered), rejected rows.

use crate::util::{Cli, Sandbox};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// A webhook receiver on 127.0.0.1 that answers 200 and keeps each JSON body, by path.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse().unwrap();
                        }
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                kept.lock().unwrap().push((path, value));
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Receiver { url, bodies }
    }

    /// The bodies received at `path`, oldest first.
    fn at(&self, path: &str) -> Vec<Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

fn add(cli: &Cli, name: &str, url: &str, extra: &[&str]) -> crate::util::Run {
    let mut args = vec!["alerts", "add", "--name", name, "--url-env", "HOOK"];
    args.extend_from_slice(extra);
    cli.run_with(&args, &[("HOOK", url)], None)
}

#[test]
fn a_failed_run_alerts_the_next_success_says_recovered_and_slack_gets_text() {
    let receiver = Receiver::start();
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let hook = format!("{}/hooks/secret-path-123", receiver.url);
    let added = add(&cli, "ops", &hook, &[]);
    assert_eq!(added.code, 0, "{}", added.stderr);
    let slack = add(
        &cli,
        "chat",
        &format!("{}/slack", receiver.url),
        &["--format", "slack", "--events", "run_failed"],
    );
    assert_eq!(slack.code, 0, "{}", slack.stderr);
    let listed = cli.run(&["alerts", "list"]);
    assert!(
        listed.stdout.contains("ops") && listed.stdout.contains("/••••"),
        "{}",
        listed.stdout
    );
    assert!(
        !cli.run(&["--json", "alerts", "list"])
            .stdout
            .contains("secret-path-123"),
        "the URL is masked"
    );

    let db = format!("sqlite:{}", cli.path("crm.db").display());
    let made = cli.run(&[
        "sources",
        "create",
        "--name",
        "crm",
        "--credential",
        "sb",
        "--streams",
        "conversations",
        "--destination",
        &db,
    ]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    sandbox.set_faults(json!([{"route": "conversations.list", "kind": "status", "status": 400}]));
    assert_ne!(cli.run(&["sources", "run", "crm"]).code, 0);
    assert_ne!(cli.run(&["sources", "run", "crm"]).code, 0);

    let got = receiver.at("/hooks/secret-path-123");
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0]["event"], "run_failed");
    assert_eq!(got[0]["flow"], "crm");
    assert_eq!(got[0]["failure_streak"], 1);
    assert_eq!(got[1]["failure_streak"], 2, "{}", got[1]);
    assert!(got[1]["message"]
        .as_str()
        .unwrap()
        .contains("2 failed runs in a row"));
    let chat = receiver.at("/slack");
    assert_eq!(chat.len(), 2);
    assert!(
        chat[0]["text"]
            .as_str()
            .unwrap()
            .contains("sync of \"crm\" failed"),
        "{}",
        chat[0]
    );

    sandbox.set_faults(json!([]));
    assert_eq!(cli.run(&["sources", "run", "crm"]).code, 0);
    let got = receiver.at("/hooks/secret-path-123");
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[2]["event"], "run_recovered");
    assert_eq!(
        receiver.at("/slack").len(),
        2,
        "the slack channel wants run_failed only"
    );
    assert_eq!(cli.run(&["sources", "run", "crm"]).code, 0);
    assert_eq!(
        receiver.at("/hooks/secret-path-123").len(),
        3,
        "a second success is no news"
    );
}

#[test]
fn rejected_rows_alert_and_a_test_alert_is_delivered() {
    let receiver = Receiver::start();
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    assert_eq!(
        add(
            &cli,
            "ops",
            &format!("{}/h", receiver.url),
            &["--events", "records_rejected"]
        )
        .code,
        0
    );
    let tested = cli.run(&["alerts", "test", "ops"]);
    assert_eq!(tested.code, 0, "{}", tested.stderr);
    assert_eq!(receiver.at("/h")[0]["event"], "test");

    let from = cli.write("c.csv", "email,name\nok@example.com,Ok\nnot-an-email,Bad\n");
    let run = cli.push("contacts", &from, "r.csv", &[]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    let got = receiver.at("/h");
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1]["event"], "records_rejected");
    assert_eq!(got[1]["rejected"], 1);
    assert_eq!(got[1]["kind"], "push");
}

#[test]
fn bad_channels_are_refused_naming_the_flag_and_an_unreachable_test_fails() {
    let cli = Cli::new();
    let bad = add(
        &cli,
        "x",
        "ftp://example.com/h",
        &["--events", "run_exploded"],
    );
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("--url-env:")
            && bad
                .stderr
                .contains("--events: unknown event \"run_exploded\""),
        "{}",
        bad.stderr
    );
    assert_eq!(cli.json(&["alerts", "list"]), json!([]));
    // A port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert_eq!(
        add(&cli, "gone", &format!("http://{closed}/h"), &[]).code,
        0
    );
    let tested = cli.run(&["alerts", "test", "gone"]);
    assert_eq!(tested.code, 1, "{}", tested.stderr);
    assert!(
        tested.stderr.contains("not delivered") && !tested.stderr.contains(&closed.to_string()),
        "{}",
        tested.stderr
    );
}
