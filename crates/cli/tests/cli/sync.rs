//! CLI tests: `sync`, `runs`, `demo` — the real binary against an in-process sandbox.

use crate::util::{Cli, Sandbox, SandboxBuilder, TOKEN};
use rusqlite::Connection;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;
use store::{CredentialStatus, Store};

/// The state key of a run of all streams (see source-drift's conversations pass).
const PASS_KEY: &str = "conversations+messages+contacts";

/// An org of `conversations` conversations (3 messages each, no rate limit) and a data dir
/// with credential `t` for it (600/min; syncs run at 60000/min, see [`Cli::sync`]).
fn org(conversations: usize) -> (Sandbox, Cli) {
    org_with(config(conversations))
}

fn org_with(config: SandboxBuilder) -> (Sandbox, Cli) {
    let sandbox = config.start();
    let cli = Cli::on(&sandbox);
    cli.add_credential_at("t", TOKEN, 600);
    (sandbox, cli)
}

fn config(conversations: usize) -> SandboxBuilder {
    Sandbox::builder()
        .conversations(conversations)
        .messages_per_conversation(3)
        .rate_limit_per_min(0)
}

fn ids(cli: &Cli, sql: &str) -> BTreeSet<i64> {
    ids_in(&cli.db(), sql)
}

fn count(cli: &Cli, table: &str) -> i64 {
    let c = Connection::open(cli.db()).unwrap();
    c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// The committed state of the conversations pass, if any (None while the run has not
/// created the database yet).
fn pass_state(cli: &Cli) -> Option<Value> {
    let c = Connection::open(cli.db()).ok()?;
    let text: String = c
        .query_row(
            "SELECT state FROM _driftbridge_state WHERE key = ?1",
            [PASS_KEY],
            |r| r.get(0),
        )
        .ok()?;
    serde_json::from_str(&text).ok()
}

/// Every table holds exactly what the sandbox serves.
fn assert_complete(sandbox: &Sandbox, cli: &Cli) {
    let counts = sandbox.admin("counts");
    for (table, key) in [
        ("conversations", "conversations"),
        ("messages", "messages"),
        ("contacts", "contacts_in_conversations"),
        ("accounts", "accounts"),
        ("users", "users"),
        ("teams", "teams"),
        ("playbooks", "playbooks"),
        ("meetings", "meetings"),
    ] {
        assert_eq!(
            count(cli, table),
            counts[key].as_i64().unwrap(),
            "rows of {table}"
        );
    }
}

fn ids_in(db: &Path, sql: &str) -> BTreeSet<i64> {
    let c = Connection::open(db).unwrap();
    let mut stmt = c.prepare(sql).unwrap();
    stmt.query_map([], |r| r.get::<_, i64>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn id_list(v: &Value) -> BTreeSet<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

#[test]
fn full_sync_matches_the_sandbox_ids_and_values() {
    let (sandbox, cli) = org(150);
    let run = cli.sync(&["--mode", "full"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json["status"], "succeeded");
    assert_complete(&sandbox, &cli);
    for stream in [
        "conversations",
        "messages",
        "contacts",
        "accounts",
        "users",
        "teams",
        "playbooks",
        "meetings",
        "contact_attributes",
    ] {
        assert!(run.written(stream) > 0, "{stream} wrote nothing");
        assert_eq!(
            run.written(stream) as i64,
            count(&cli, stream),
            "{stream}: summary vs table"
        );
    }
    // Ids: the conversation ids Drift lists, and the messages of one conversation, value for value.
    use futures::StreamExt;
    let client = sandbox.observer();
    let pages: Vec<_> = sandbox.block_on(client.conversations(Default::default()).collect());
    let listed: BTreeSet<i64> = pages
        .into_iter()
        .flat_map(|p| p.unwrap().items)
        .map(|c| c.id)
        .collect();
    assert_eq!(ids(&cli, "SELECT id FROM conversations"), listed);
    let mut checked_unicode = false;
    for id in listed.iter().take(40) {
        for m in sandbox.block_on(client.conversation_messages(*id)).unwrap() {
            let expected = serde_json::to_value(&m).unwrap();
            let c = Connection::open(cli.db()).unwrap();
            let (body, raw, iso): (Option<String>, String, Option<String>) = c
                .query_row(
                    "SELECT body, _raw, createdAt_iso FROM messages WHERE id = ?1",
                    [m.id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .unwrap();
            assert_eq!(body.as_deref(), expected["body"].as_str());
            assert_eq!(serde_json::from_str::<Value>(&raw).unwrap(), expected);
            let ms = expected["createdAt"].as_i64().unwrap();
            let want = chrono::DateTime::from_timestamp_millis(ms).unwrap();
            assert_eq!(
                iso.unwrap(),
                want.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            );
            checked_unicode |= body.is_some_and(|b| !b.is_ascii());
        }
    }
    assert!(
        checked_unicode,
        "no non-ASCII message body among the first conversations"
    );
}

#[test]
fn incremental_picks_up_exactly_the_changes_and_a_quiet_run_writes_nothing() {
    let (sandbox, cli) = org(150);
    let first = cli.sync(&["--mode", "incremental"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let contacts_before = ids(&cli, "SELECT id FROM contacts");
    let changed = sandbox.admin_post("mutate", json!({"touch_conversations": 3, "new_conversations": 2, "new_messages": 4, "touch_accounts": 2}));
    let second = cli.sync(&[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let run = second.run_id();
    let created = id_list(&changed["new_conversations"]);
    let new_messages = id_list(&changed["new_messages"]);
    let q = |sql: &str| ids(&cli, &sql.replace("RUN", &run));
    // Conversations: the touched, the new, and those that got a message.
    let with_new_message = ids(
        &cli,
        &format!(
            "SELECT conversationId FROM messages WHERE id IN ({})",
            new_messages
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
    );
    let mut expected: BTreeSet<i64> = id_list(&changed["touch_conversations"]);
    expected.extend(&created);
    expected.extend(&with_new_message);
    assert_eq!(
        q("SELECT id FROM conversations WHERE _run_id = 'RUN'"),
        expected
    );
    // Messages: the new ones and those of the new conversations, nothing re-written.
    let mut expected_messages = new_messages.clone();
    for c in &created {
        expected_messages.extend(q(&format!(
            "SELECT id FROM messages WHERE conversationId = {c}"
        )));
    }
    assert_eq!(
        q("SELECT id FROM messages WHERE _run_id = 'RUN'"),
        expected_messages
    );
    assert_eq!(expected_messages.len(), 4 + 2 * 3);
    // Contacts: only contactIds not read before.
    let new_contacts: BTreeSet<i64> = q(&format!(
        "SELECT contactId FROM conversations WHERE id IN ({})",
        created
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    ))
    .difference(&contacts_before)
    .copied()
    .collect();
    assert_eq!(
        q("SELECT id FROM contacts WHERE _run_id = 'RUN'"),
        new_contacts
    );
    assert_eq!(second.written("accounts"), 2);
    for s in [
        "users",
        "teams",
        "playbooks",
        "contact_attributes",
        "meetings",
    ] {
        assert_eq!(second.written(s), 0, "{s} rewritten without a change");
    }
    assert_complete(&sandbox, &cli);

    // A quiet run writes nothing. Its contacts rotation re-reads every known contact (fewer
    // than the 1,000 it may per run), one request each, to find deletes and changes that
    // moved no conversation; everything else takes at most two requests per stream.
    let quiet = cli.sync(&[]);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    let known = ids(&cli, "SELECT id FROM contacts").len() as u64;
    for s in quiet.json["streams"].as_array().unwrap() {
        assert_eq!(s["records_written"], 0, "{s}");
        let requests = s["requests"].as_u64().unwrap();
        if s["stream"] == "contacts" {
            assert_eq!(requests, known, "{s}");
        } else {
            assert!(requests <= 2, "{s}");
        }
    }
    // Without the rotation a quiet run costs a handful of requests.
    let bare = cli.sync(&["--contacts-recheck", "0"]);
    assert_eq!(bare.code, 0, "{}", bare.stderr);
    assert!(
        bare.json["totals"]["requests"].as_u64().unwrap() <= 9,
        "{}",
        bare.json
    );
}

/// Run a sync and SIGKILL it once its committed checkpoint satisfies `kill_point`.
/// Returns false when the run finished before reaching that point.
fn kill_when(cli: &Cli, kill_point: impl Fn(&Value) -> bool) -> bool {
    let mut child = cli.sync_command(&cli.db(), &[]).spawn().unwrap();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "the run failed: {status}");
            return false;
        }
        let state = pass_state(cli);
        if state.as_ref().is_some_and(&kill_point) {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn done_in_page(s: &Value) -> usize {
    s["pass"]["done"].as_array().map_or(0, Vec::len)
}

#[test]
fn sigkill_at_several_points_then_rerun_has_every_record_once_with_fewer_requests() {
    // Two pages of 100 conversations; a page must span several checkpoint intervals
    // (250 ms) even with 64 requests in flight (the client's concurrency at 60000/min).
    let (sandbox, cli) = org_with(config(200).latency_ms(200));
    // Kill once the pass has committed progress, then twice more after further progress.
    let mut last = Value::Null;
    let mut killed = 0;
    for _ in 0..3 {
        let before = last.clone();
        let progressed = |s: &Value| s["pass"].is_object() && s["pass"] != before["pass"];
        if !kill_when(&cli, progressed) {
            break;
        }
        killed += 1;
        last = pass_state(&cli).unwrap();
    }
    assert!(
        killed >= 2,
        "the run finished before it could be killed twice"
    );
    assert!(
        last["pass"].is_object(),
        "the pass in progress is in the checkpoint"
    );
    let rerun = cli.sync(&[]);
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    assert_complete(&sandbox, &cli);
    // The killed runs are not left `running`: their process is gone.
    let runs = cli.store().list_runs(20).unwrap();
    let statuses: Vec<&str> = runs.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "interrupted").count(),
        killed,
        "{statuses:?}"
    );
    assert!(!statuses.contains(&"running"), "{statuses:?}");
    let interrupted = runs.iter().find(|r| r.status == "interrupted").unwrap();
    assert_eq!(interrupted.error.as_deref(), Some(store::INTERRUPTED));
    assert!(interrupted.finished_at.is_some());
    // In `runs list` a killed run's figures are unknown ("-", not 0) and the columns stay
    // aligned although `interrupted` is wider than the other statuses.
    let text = cli.run(&["runs", "list"]).stdout;
    let shown = cli.run(&["runs", "show", &interrupted.id]).stdout;
    assert!(
        shown.contains("status: interrupted")
            && shown.contains("figures: - (the run ended without a summary"),
        "{shown}"
    );
    let lines: Vec<&str> = text.lines().collect();
    let column = |l: &str, word: &str| l.find(word);
    let requests_end = lines[0].find("REQUESTS").unwrap() + "REQUESTS".len();
    for line in &lines[1..] {
        assert_eq!(
            column(line, "incremental").or(column(line, "full")),
            column(lines[0], "MODE"),
            "{text}"
        );
        let cells: Vec<&str> = line.split_whitespace().collect();
        // ID, date, time, STATUS, CREDENTIAL, MODE, WRITTEN, REQUESTS, DESTINATION
        if cells[3] == "interrupted" {
            assert_eq!((cells[6], cells[7]), ("-", "-"), "{text}");
        } else {
            assert!(cells[7].parse::<u64>().unwrap() > 0, "{text}");
        }
        assert!(
            line[..requests_end].ends_with(cells[7]),
            "REQUESTS is right-aligned under its header: {text}"
        );
    }
    for table in ["conversations", "messages", "contacts"] {
        let distinct: i64 = Connection::open(cli.db())
            .unwrap()
            .query_row(
                &format!("SELECT count(DISTINCT id) FROM {table}"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(distinct, count(&cli, table), "{table} has duplicates");
    }
    assert!(
        pass_state(&cli).unwrap()["pass"].is_null(),
        "the pass finished"
    );
    let fresh = cli.sync_into(&cli.dir().join("fresh.db"), &[]);
    assert_eq!(fresh.code, 0, "{}", fresh.stderr);
    let re = rerun.json["totals"]["requests"].as_u64().unwrap();
    let full = fresh.json["totals"]["requests"].as_u64().unwrap();
    assert!(re < full, "re-run made {re} requests, a full run {full}");
}

#[test]
fn token_revoked_mid_run_exits_3_marks_the_credential_failed_and_keeps_the_checkpoint() {
    let (sandbox, cli) = org(150);
    sandbox.set_faults(
        json!([{"route": "contacts.get", "kind": "revoke_token", "after_requests": 40}]),
    );
    let run = cli.sync(&[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("credential t is marked failed"),
        "{}",
        run.stderr
    );
    assert_eq!(run.json["error"]["kind"], "unauthorized");
    let cred = cli.store().credential("t").unwrap();
    assert_eq!(cred.status, CredentialStatus::Failed);
    assert!(cred.last_error.unwrap().contains("401"));
    assert!(count(&cli, "conversations") > 0 && count(&cli, "contacts") > 0);
    let state = pass_state(&cli).expect("checkpoint kept");
    let done: BTreeSet<i64> = id_list(&state["pass"]["done"]);
    assert!(!done.is_empty(), "{state}");
    assert!(
        done.is_subset(&ids(&cli, "SELECT id FROM conversations")),
        "checkpoint ahead of the data"
    );
    assert!(
        state["watermark"].is_null(),
        "the watermark moved on a failed pass: {state}"
    );
    let runs = cli.store().list_runs(5).unwrap();
    assert_eq!(runs[0].status, "failed");
}

#[test]
fn storm_of_429_completes_with_the_waits_counted() {
    let (sandbox, cli) = org(60);
    sandbox.set_faults(json!([{"route": "conversations.messages", "kind": "status", "status": 429, "after_requests": 5, "count": 12}]));
    let run = cli.sync(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let totals = &run.json["totals"];
    assert_eq!(totals["rate_limited"], 12, "{totals}");
    assert!(totals["retries"].as_u64().unwrap() >= 12, "{totals}");
    assert!(totals["wait_ms"].as_u64().unwrap() > 0, "{totals}");
    assert_complete(&sandbox, &cli);
}

#[test]
fn repeated_cursor_fails_the_run_naming_the_stream_and_keeps_the_watermark() {
    // On a later page, and on the first one (fetched without a cursor, so only its records
    // show that the next cursor led back to it).
    for (kind, after) in [
        ("repeat_cursor", 1),
        ("repeat_cursor", 0),
        ("cursor_cycle", 0),
    ] {
        repeated_cursor_case(kind, after);
    }
}

fn repeated_cursor_case(kind: &str, after: u64) {
    let (sandbox, cli) = org(250);
    sandbox.set_faults(
        json!([{"route": "conversations.list", "kind": kind, "after_requests": after, "count": 1}]),
    );
    let run = cli.sync(&[]);
    assert_eq!(run.code, 1, "{kind} after {after}: {}", run.stderr);
    assert!(run.stderr.contains("conversations"), "{}", run.stderr);
    assert_eq!(run.stream("conversations")["state"], "failed");
    assert!(
        run.stream("conversations")["reason"]
            .as_str()
            .unwrap()
            .contains("pagination"),
        "{}",
        run.json
    );
    assert_eq!(
        run.stream("users")["state"],
        "succeeded",
        "other streams go on"
    );
    let state = pass_state(&cli).unwrap_or(Value::Null);
    assert!(state["watermark"].is_null(), "state advanced: {state}");
    sandbox.set_faults(json!([]));
    let again = cli.sync(&[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_complete(&sandbox, &cli);
}

#[test]
fn bad_arguments_exit_2_with_the_fix() {
    let (_sandbox, cli) = org(5);
    let run = cli.sync(&["--streams", "conversations,tickets"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("unknown stream `tickets`: available streams are conversations, messages"),
        "{}",
        run.stderr
    );
    let out = cli.run(&["sync", "--credential", "nope", "--destination", "mysql://x"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("use sqlite:PATH"));
}

#[test]
fn runs_list_and_show_report_the_sync() {
    let (_sandbox, cli) = org(10);
    let run = cli.sync(&["--streams", "conversations,users"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id = run.run_id();
    let list = cli.run(&["--json", "runs", "list"]);
    let runs = list.json;
    assert_eq!(runs[0]["id"], id.as_str());
    assert_eq!(runs[0]["status"], "succeeded");
    assert_eq!(runs[0]["streams"], json!(["conversations", "users"]));
    assert_eq!(runs[0]["summary"]["streams"][0]["records_written"], 10);
    let text = cli.run(&["runs", "show", &id]).stdout;
    assert!(
        text.contains(&format!("run {id}")) && text.contains("status: succeeded"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("conversations") && l.contains(" 10 ")),
        "{text}"
    );
    let missing = cli.run(&["runs", "show", "run_nope"]);
    assert_eq!(missing.code, 2);
}

/// `driftbridge ARGS...` on `cli`'s data dir: exit code and stdout.
fn runs(cli: &Cli, args: &[&str]) -> (i32, String) {
    let run = cli.run(args);
    (run.code, run.stdout)
}

/// `runs logs ID` shows a run's events while it runs (`--follow` tails them until it
/// ends) and after it; `--json` gives the stored lines; the key is in none of them.
#[test]
fn runs_logs_shows_a_runs_events_while_it_runs_and_after() {
    let (_sandbox, cli) = org_with(config(150).latency_ms(100));
    let mut sync = cli
        .sync_command(&cli.db(), &["--streams", "conversations,messages,users"])
        .spawn()
        .unwrap();
    let id = loop {
        if let Some(run) = cli.store().list_runs(1).unwrap().into_iter().next() {
            break run.id;
        }
        if let Some(status) = sync.try_wait().unwrap() {
            panic!("the sync ended ({status}) before its run was recorded");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(cli.store().get_run(&id).unwrap().status, "running");
    let (code, during) = runs(&cli, &["runs", "logs", &id]);
    assert_eq!(code, 0, "{during}");
    assert!(
        during.contains("INFO  sync started: streams conversations,messages,users"),
        "{during}"
    );
    let follow = cli
        .command(&["runs", "logs", &id, "--follow"])
        .spawn()
        .unwrap();
    let pid = follow.id();
    let follow = std::thread::spawn(move || follow.wait_with_output().unwrap());
    let started = std::time::Instant::now();
    while !follow.is_finished() {
        if started.elapsed() > Duration::from_secs(120) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("--follow ends when the run ends");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let followed = follow.join().unwrap();
    let code = followed.status.code().unwrap_or(-1);
    let followed = String::from_utf8_lossy(&followed.stdout).into_owned();
    assert_eq!(code, 0, "{followed}");
    let out = sync.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        followed
            .lines()
            .last()
            .unwrap_or_default()
            .contains("sync succeeded"),
        "--follow prints up to the run's end: {followed}"
    );
    for stream in ["conversations", "messages", "users"] {
        assert!(
            followed.contains(&format!("stream {stream} succeeded")),
            "{followed}"
        );
    }
    let (_, after) = runs(&cli, &["runs", "logs", &id]);
    assert_eq!(after, followed, "the same lines after the run");
    let (_, json) = runs(&cli, &["--json", "runs", "logs", &id]);
    let lines: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), after.lines().count());
    for line in &lines {
        for key in ["time", "level", "target", "message", "fields"] {
            assert!(!line[key].is_null(), "{key} in {line}");
        }
    }
    let token = TOKEN.to_string();
    assert!(!json.contains(&token) && !after.contains(&token));
    let (code, _) = runs(&cli, &["runs", "logs", "run_nope"]);
    assert_eq!(code, 2, "an unknown run id is a usage error");
}

#[test]
fn demo_syncs_every_stream_into_the_demo_database() {
    let cli = Cli::new();
    let out = cli.run(&["--json", "demo"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for s in out.json["streams"].as_array().unwrap() {
        assert!(s["records_written"].as_u64().unwrap() > 0, "{s}");
    }
    assert!(cli.path("driftbridge-demo.db").exists());
    let store = Store::open(cli.data_dir()).unwrap();
    assert!(
        store.list_credentials().unwrap().is_empty(),
        "no dead demo credential is left behind"
    );
    let runs = store.list_runs(5).unwrap();
    assert_eq!(runs[0].credential, "demo", "its run keeps the name");
}

#[test]
fn ctrl_c_or_sigterm_stops_after_the_current_commit_and_the_next_run_resumes() {
    // SIGINT (Ctrl-C) and SIGTERM (`kill`, systemd, docker) stop a run the same way.
    for signal in ["-INT", "-TERM"] {
        stop_with(signal);
    }
}

fn stop_with(signal: &str) {
    let cfg = config(250);
    // Slow enough that a page takes several checkpoint intervals (250 ms) even with the
    // client's concurrency at a 60000/min budget (64 in flight).
    let (sandbox, cli) = org_with(cfg.latency_ms(200));
    let mut child = cli.sync_command(&cli.db(), &[]).spawn().unwrap();
    let pid = child.id().to_string();
    // Interrupt once some progress of the pass is committed.
    let in_progress = |s: &Value| done_in_page(s) >= 1 || s["pass"]["page"].is_string();
    loop {
        if pass_state(&cli).is_some_and(|s| in_progress(&s)) {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before any progress was committed");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let sent = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{signal}: {stderr}");
    assert!(
        stderr.contains("cancelled; the next run resumes from its checkpoint"),
        "{stderr}"
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["status"], "cancelled");
    assert_eq!(cli.store().list_runs(1).unwrap()[0].status, "cancelled");
    let state = pass_state(&cli).unwrap();
    let done = id_list(&state["pass"]["done"]);
    assert!(
        done.is_subset(&ids(&cli, "SELECT id FROM conversations")),
        "checkpoint ahead of the data"
    );
    let again = cli.sync(&[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_complete(&sandbox, &cli);
}

#[test]
fn a_token_without_any_needed_scope_exits_3() {
    let (_sandbox, cli) = org_with(config(5).with(|c| {
        c.limited_tokens = vec![("tok-none-0123456789".into(), vec!["gdpr_read".into()])]
    }));
    cli.store()
        .rotate_credential_key("t", &"tok-none-0123456789".to_owned().into())
        .unwrap();
    let run = cli.sync(&["--streams", "accounts,playbooks"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("refused every selected stream (403)"),
        "{}",
        run.stderr
    );
    assert!(run.stream("accounts")["reason"]
        .as_str()
        .unwrap()
        .contains("account_read"));
}

#[test]
fn rate_limited_beyond_the_retries_exits_4() {
    let (sandbox, cli) = org(5);
    sandbox.set_faults(json!([{"route": "users.list", "kind": "status", "status": 429}]));
    let run = cli.sync(&["--streams", "users"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let users = run.stream("users");
    assert_eq!(
        users["rate_limited"], run.json["totals"]["rate_limited"],
        "{users}"
    );
    assert!(
        users["retries"].as_u64().unwrap() > 0 && users["wait_ms"].as_u64().unwrap() > 0,
        "{users}"
    );
    assert_eq!(run.json["error"]["kind"], "rate_limited");
    assert!(
        run.json["totals"]["rate_limited"].as_u64().unwrap() > 1,
        "{}",
        run.json
    );
}

#[test]
fn contacts_named_by_email_are_read_besides_those_in_conversations() {
    let (sandbox, cli) = org(20);
    let counts = sandbox.admin("counts");
    let last = counts["contacts"].as_i64().unwrap() - 1;
    let mut email = None;
    for domain in ["example.com", "example.org", "example.net"] {
        let candidate = format!("contact{last}@{domain}");
        let found = sandbox.block_on(sandbox.observer().contacts_by_email(&candidate));
        if !found.unwrap().is_empty() {
            email = Some(candidate);
        }
    }
    let email = email.expect("the sandbox's last contact has a contactN@ address");
    let run = cli.sync(&[
        "--streams",
        "conversations,contacts",
        "--contact-emails",
        &email,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let in_conversations = counts["contacts_in_conversations"].as_i64().unwrap();
    assert_eq!(count(&cli, "contacts"), in_conversations + 1);
    let c = Connection::open(cli.db()).unwrap();
    let found: i64 = c
        .query_row(
            "SELECT count(*) FROM contacts WHERE json_extract(attributes, '$.email') = ?1",
            [&email],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(found, 1);
}

#[test]
fn a_table_the_user_owns_is_refused_and_left_unchanged() {
    let (_sandbox, cli) = org(2);
    let db = cli.dir().join("other.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE teams(x int); INSERT INTO teams VALUES (1);")
        .unwrap();
    let run = cli.sync_into(&db, &["--streams", "teams"]);
    assert_eq!(run.code, 2, "a configuration to change: {}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "table `teams` in {} was not created by driftbridge",
            db.display()
        )) && run
            .stderr
            .contains("choose another database file, or rename or drop that table"),
        "{}",
        run.stderr
    );
    let c = Connection::open(&db).unwrap();
    let columns: Vec<String> = c
        .prepare("SELECT name FROM pragma_table_info('teams')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(columns, ["x"]);
    let x: i64 = c
        .query_row("SELECT x FROM teams", [], |r| r.get(0))
        .unwrap();
    assert_eq!(x, 1);
}

#[test]
fn a_sqlite_database_in_missing_directories_is_created() {
    let (_sandbox, cli) = org(2);
    let db = cli.dir().join("nonexistent/dir/y.db");
    let run = cli.sync_into(&db, &["--streams", "teams"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.written("teams") > 0, "{}", run.json);
    assert!(db.exists());
}

#[test]
fn a_messy_org_exits_5_and_runs_rejected_lists_every_quarantined_record() {
    let (sandbox, cli) = org_with(config(200).with(|c| c.messy = true));
    let run = cli.sync(&["--streams", "all"]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert_eq!(run.json["status"], "succeeded_with_rejections");
    let counts = sandbox.admin("counts");
    let unfit: u64 = counts["unfit"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(unfit > 0, "{counts}");
    let run_id = run.run_id();
    let out = cli.run(&["--json", "runs", "rejected", &run_id]);
    assert!(out.code == 0, "{}", out.stderr);
    let listed: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(listed.len() as u64, unfit);
    assert!(listed
        .iter()
        .all(|r| r["stream"].is_string() && r["reason"].as_str().unwrap().len() >= 10));
    let text = cli.run(&["runs", "rejected", &run_id]).stdout;
    assert!(
        text.contains(&format!("quarantined {unfit} record")),
        "{text}"
    );
    // The fitting records are all there; a re-run is not stuck on the unfit ones.
    let conversations = counts["conversations"].as_u64().unwrap()
        - counts["unfit"]["conversations"].as_u64().unwrap();
    assert_eq!(count(&cli, "conversations") as u64, conversations);
    let again = cli.sync(&["--streams", "all"]);
    assert!(matches!(again.code, 0 | 5), "{}", again.stderr);
}

/// Issue 17 item 7: `sync --destination` into the data directory (here the metadata store
/// itself, through `..`) is refused with exit 2 before anything is written; the store gets
/// no `users` table and no run is recorded.
#[test]
fn a_destination_inside_the_data_directory_is_refused() {
    let (_sandbox, cli) = org(2);
    let sneaky = cli
        .data_dir()
        .join("runs")
        .join("..")
        .join("driftbridge.db");
    let run = cli.sync_into(&sneaky, &["--streams", "users"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("inside the data directory"),
        "{}",
        run.stderr
    );
    let tables: i64 = Connection::open(cli.data_dir().join("driftbridge.db"))
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'users'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0, "the metadata store got no users table");
    assert!(
        cli.store().list_runs(10).unwrap().is_empty(),
        "no run recorded"
    );
}

/// `--sink` names the same thing as `--destination` (the sink the records land in); the
/// summary and the run history keep their field `destination`.
#[test]
fn sink_is_an_alias_of_destination_and_the_summary_keeps_its_field() {
    let (_sandbox, cli) = org(2);
    let db = cli.dir().join("via-alias.db");
    let sink = format!("sqlite:{}", db.display());
    let out = cli.run(&[
        "--json",
        "sync",
        "--credential",
        "t",
        "--streams",
        "users",
        "--sink",
        &sink,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let summary = out.json;
    assert_eq!(summary["destination"], sink.as_str(), "{summary}");
    assert!(summary.get("sink").is_none(), "{summary}");
    let users: i64 = Connection::open(&db)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 12, "the sandbox's users landed in the sink");
    let runs = cli.store().list_runs(10).unwrap();
    assert_eq!(runs[0].destination, sink);
}

/// `sync` at `rate` requests/minute with extra global flags, into `db`.
fn budget_sync(cli: &Cli, globals: &[&str], db: &Path, rate: &str) -> std::process::Command {
    let dest = format!("sqlite:{}", db.display());
    let mut args = globals.to_vec();
    args.extend(["--json", "sync", "--credential", "t", "--streams"]);
    args.extend([
        "conversations,messages,contacts",
        "--rate-limit-per-min",
        rate,
    ]);
    args.extend(["--destination", &dest]);
    cli.command(&args)
}

#[test]
fn two_syncs_in_two_processes_share_the_credentials_budget() {
    // The sandbox sends no rate-limit headers: only the shared budget keeps the two apart.
    let (sandbox, cli) = org_with(
        config(40)
            .rate_limit_per_min(1200)
            .with(|c| c.rate_limit_headers = false),
    );
    let started = std::time::Instant::now();
    let a = budget_sync(&cli, &[], &cli.path("a.db"), "1200").spawn();
    let b = budget_sync(&cli, &[], &cli.path("b.db"), "1200").spawn();
    let (a, b) = (a.unwrap().wait_with_output(), b.unwrap().wait_with_output());
    let took = started.elapsed();
    for out in [a.unwrap(), b.unwrap()] {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stats = sandbox.admin("stats");
    let requests = stats["requests_total"].as_u64().unwrap();
    assert_eq!(stats["rate_limited_total"], 0, "{stats}");
    // 1200/min = 20/s for both together (a burst of 3): each process alone at 1200/min
    // would have finished in about half the time
    let at_the_budget = Duration::from_millis((requests.saturating_sub(4)) * 50);
    assert!(
        took >= at_the_budget.mul_f64(0.9),
        "{requests} requests in {took:?}: faster than one budget of 1200/min allows"
    );
    // the store shows the use of both
    let store = cli.store();
    let cred = store.credential("t").unwrap();
    let used = sandbox.block_on(store.budget_use(&cred)).unwrap();
    assert!(
        used.requests_last_minute >= requests / 2,
        "{used:?} of {requests}"
    );
    // ... and so does `credentials show`, in text and JSON
    let show = |json: bool| {
        let args: &[&str] = if json {
            &["--json", "credentials", "show", "t"]
        } else {
            &["credentials", "show", "t"]
        };
        let run = cli.run(args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout
    };
    let shown: Value = serde_json::from_str(&show(true)).unwrap();
    let shown_use = shown["budget"]["requests_last_minute"].as_u64().unwrap();
    assert!(shown_use >= requests / 2, "{shown} of {requests}");
    assert!(
        show(false).contains("requests in the last minute (all processes)"),
        "text output names the budget use"
    );
}

#[test]
fn shared_budget_takes_only_a_postgres_url_and_never_echoes_it() {
    let (_sandbox, cli) = org(5);
    let out = budget_sync(
        &cli,
        &["--shared-budget", "redis://user:hunter2@127.0.0.1:6379"],
        &cli.db(),
        "600",
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--shared-budget"), "{stderr}");
    assert!(stderr.contains("PostgreSQL"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn shared_budget_in_postgres_keeps_the_credentials_row_there() {
    let url = std::env::var("DRIFTBRIDGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let (sandbox, cli) = org_with(config(10).rate_limit_per_min(600));
    let out = budget_sync(&cli, &[], &cli.db(), "600")
        .env("DRIFTBRIDGE_SHARED_BUDGET", &url)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sandbox.block_on(async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let key = format!("t@{}", sandbox.url().trim_end_matches('/'));
        let row = client
            .query_one(
                "SELECT tat_us, window_count FROM driftbridge_rate_budget WHERE key = $1",
                &[&key],
            )
            .await
            .unwrap();
        assert!(row.get::<_, i64>(0) > 0, "the lease moved the row's TAT");
        // nothing was kept in the data directory's own table
        let local: i64 = Connection::open(cli.data_dir().join("driftbridge.db"))
            .unwrap()
            .query_row("SELECT count(*) FROM rate_budget", [], |r| r.get(0))
            .unwrap();
        assert_eq!(local, 0);
        client
            .execute(
                "DELETE FROM driftbridge_rate_budget WHERE key LIKE $1",
                &[&format!("{key}%")],
            )
            .await
            .unwrap();
    });
}

/// The run of flow `flow` in progress, once the store shows it (bounded wait).
fn running_run_of(cli: &Cli, flow: &str) -> String {
    for _ in 0..400 {
        if let Some(run) = cli
            .store()
            .list_runs(20)
            .unwrap()
            .into_iter()
            .find(|r| r.flow.as_deref() == Some(flow) && r.status == "running")
        {
            return run.id;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("no run of flow {flow} started");
}

#[test]
fn a_second_sync_of_a_running_flow_exits_2_naming_it_and_wait_starts_after_it() {
    let (_sandbox, cli) = org_with(config(60).latency_ms(150));
    let first = cli
        .sync_command(
            &cli.db(),
            &["--flow", "nightly", "--streams", "conversations,messages"],
        )
        .spawn()
        .unwrap();
    let running = running_run_of(&cli, "nightly");

    let second = cli.sync_into(&cli.path("other.db"), &["--flow", "NIGHTLY"]);
    assert_eq!(second.code, 2, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains(&format!("already running: {running}")),
        "{}",
        second.stderr
    );
    // Nothing was recorded for the refused start.
    let runs = cli.store().list_runs(20).unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");

    // --wait: starts once the first run ends, and runs.
    let waited = cli.sync_into(
        &cli.path("other.db"),
        &["--flow", "nightly", "--wait", "--streams", "users"],
    );
    assert_eq!(waited.code, 0, "{}", waited.stderr);
    let first = first.wait_with_output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let ran = cli.store().get_run(&running).unwrap();
    assert!(
        ran.finished_at.unwrap() <= cli.store().get_run(&waited.run_id()).unwrap().started_at,
        "the waiting run started after the first ended"
    );
    // Another flow name is not held up.
    let other = cli.sync_into(
        &cli.path("third.db"),
        &["--flow", "weekly", "--streams", "users"],
    );
    assert_eq!(other.code, 0, "{}", other.stderr);
}

#[test]
fn a_flow_whose_running_process_was_killed_starts_again() {
    let (_sandbox, cli) = org_with(config(60).latency_ms(150));
    let mut first = cli
        .sync_command(
            &cli.db(),
            &["--flow", "nightly", "--streams", "conversations,messages"],
        )
        .spawn()
        .unwrap();
    let running = running_run_of(&cli, "nightly");
    first.kill().unwrap(); // SIGKILL: the run lock stays in the store
    first.wait().unwrap();

    let again = cli.sync_into(
        &cli.path("other.db"),
        &["--flow", "nightly", "--streams", "users"],
    );
    assert_eq!(
        again.code, 0,
        "a dead holder does not block: {}",
        again.stderr
    );
    assert_eq!(cli.store().get_run(&running).unwrap().status, "interrupted");
}

#[test]
fn runs_list_shows_the_type_and_filters_by_type_and_status() {
    let (_sandbox, cli) = org(3);
    let run = cli.sync(&["--mode", "full"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id = run.run_id();
    let list = cli.run(&["runs", "list", "--type", "sync", "--status", "succeeded"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(
        list.stdout.lines().next().unwrap().contains("TYPE"),
        "{}",
        list.stdout
    );
    let row = list
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{id} not listed: {}", list.stdout));
    assert!(row.split_whitespace().any(|c| c == "sync"), "{row}");
    for args in [
        ["runs", "list", "--type", "push"],
        ["runs", "list", "--status", "failed"],
    ] {
        let none = cli.run(&args);
        assert_eq!(none.code, 0);
        assert!(!none.stdout.contains(&id), "{args:?}: {}", none.stdout);
    }
    let json = cli.json(&["runs", "list", "--type", "sync"]);
    assert_eq!(json.as_array().unwrap().len(), 1, "{json}");
    let bad = cli.run(&["runs", "list", "--type", "bogus"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("dry_run"), "{}", bad.stderr);
}

/// Issue 21: `runs list` has a TRIGGER column and `--trigger`; a CLI sync is `manual`, a run
/// the scheduler of `serve` recorded (here: written to the store as it does) is `schedule`.
#[test]
fn runs_list_and_show_say_what_started_each_run() {
    let (_sandbox, cli) = org(3);
    let run = cli.sync(&["--mode", "full"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let manual = run.run_id();
    let scheduled = {
        let store = cli.store();
        let id = store
            .insert_run(&store::NewRun {
                credential: "sb".into(),
                destination: "sqlite:nightly.db".into(),
                mode: "incremental".into(),
                streams: vec!["users".into()],
                flow: Some("nightly".into()),
                trigger: store::Trigger::Schedule,
            })
            .unwrap();
        store
            .finish_run(&id, "succeeded", &serde_json::json!({}), None)
            .unwrap();
        id
    };
    let list = cli.run(&["runs", "list"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(
        list.stdout.lines().next().unwrap().contains("TRIGGER"),
        "{}",
        list.stdout
    );
    let row = |id: &str| {
        list.stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} not listed: {}", list.stdout))
            .to_string()
    };
    assert!(row(&manual).split_whitespace().any(|c| c == "manual"));
    assert!(row(&scheduled).split_whitespace().any(|c| c == "schedule"));

    let only = cli.run(&["runs", "list", "--trigger", "schedule"]);
    assert_eq!(only.code, 0, "{}", only.stderr);
    assert!(only.stdout.contains(&scheduled), "{}", only.stdout);
    assert!(!only.stdout.contains(&manual), "{}", only.stdout);
    let json = cli.json(&["runs", "list", "--trigger", "manual"]);
    assert_eq!(json.as_array().unwrap().len(), 1, "{json}");
    assert_eq!(json[0]["trigger"], "manual");
    let bad = cli.run(&["runs", "list", "--trigger", "cron"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("schedule"), "{}", bad.stderr);

    let show = cli.run(&["runs", "show", &manual]);
    assert!(
        show.stdout.contains("  trigger: manual\n"),
        "{}",
        show.stdout
    );
    let show = cli.json(&["runs", "show", &scheduled]);
    assert_eq!(show["trigger"], "schedule");
}
