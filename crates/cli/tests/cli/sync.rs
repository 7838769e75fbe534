//! CLI tests: `sync`, `runs`, `demo` — the real binary against an in-process sandbox.

use crate::common::bin;
use drift_sandbox::{SandboxConfig, SandboxHandle};
use rusqlite::Connection;
use secrecy::SecretString;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use store::{CredentialStatus, NewCredential, Store};

/// The state key of a run of all streams (see source-drift's conversations pass).
const PASS_KEY: &str = "conversations+messages+contacts";

struct Env {
    sandbox: SandboxHandle,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

struct Run {
    code: i32,
    summary: Value,
    stderr: String,
}

impl Run {
    fn stream(&self, name: &str) -> &Value {
        self.summary["streams"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["stream"] == name))
            .unwrap_or_else(|| panic!("no stream {name} in {}", self.summary))
    }

    fn written(&self, name: &str) -> u64 {
        self.stream(name)["records_written"].as_u64().unwrap()
    }

    fn run_id(&self) -> String {
        self.summary["run_id"].as_str().unwrap().to_owned()
    }
}

fn config(conversations: usize) -> SandboxConfig {
    SandboxConfig {
        conversations,
        messages_per_conversation: 3,
        rate_limit_per_min: 0,
        ..Default::default()
    }
}

impl Env {
    async fn start(config: SandboxConfig) -> Env {
        let sandbox = drift_sandbox::start(config).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let env = Env {
            sandbox,
            dir,
            http: reqwest::Client::new(),
        };
        env.store()
            .add_credential(&NewCredential {
                name: "t".into(),
                description: None,
                base_url: Some(env.sandbox.base_url()),
                api_key: SecretString::from(env.sandbox.token()),
                rate_limit_per_min: 600,
            })
            .unwrap();
        env
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn store(&self) -> Store {
        Store::open(&self.data_dir()).unwrap()
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("out.db")
    }

    fn command(&self, db: &Path, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(bin());
        cmd.arg("--data-dir")
            .arg(self.data_dir())
            .arg("--json")
            .arg("sync");
        cmd.args([
            "--credential",
            "t",
            "--rate-limit-per-min",
            "60000",
            "--destination",
        ]);
        cmd.arg(format!("sqlite:{}", db.display()));
        cmd.args(args).current_dir(self.dir.path());
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    async fn sync(&self, args: &[&str]) -> Run {
        self.sync_into(&self.db(), args).await
    }

    async fn sync_into(&self, db: &Path, args: &[&str]) -> Run {
        let out = self.command(db, args).output().await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        Run {
            code: out.status.code().unwrap_or(-1),
            summary: serde_json::from_str(&stdout).unwrap_or(Value::Null),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn admin(&self, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/__sandbox/{path}", self.sandbox.base_url());
        let req = match body {
            Some(b) => self.http.post(url).json(&b),
            None => self.http.get(url),
        };
        let resp = req.send().await.unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap()
    }

    async fn faults(&self, faults: Value) {
        self.admin("faults", Some(json!({ "faults": faults })))
            .await;
    }

    fn ids(&self, sql: &str) -> BTreeSet<i64> {
        ids_in(&self.db(), sql)
    }

    fn count(&self, table: &str) -> i64 {
        let c = Connection::open(self.db()).unwrap();
        c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    /// The committed state of the conversations pass, if any (None while the run has not
    /// created the database yet).
    fn try_pass_state(&self) -> Option<Value> {
        let c = Connection::open(self.db()).ok()?;
        let text: String = c
            .query_row(
                "SELECT state FROM _driftbridge_state WHERE key = ?1",
                [PASS_KEY],
                |r| r.get(0),
            )
            .ok()?;
        serde_json::from_str(&text).ok()
    }

    fn pass_state(&self) -> Option<Value> {
        self.try_pass_state()
    }

    /// Every table holds exactly what the sandbox serves.
    async fn assert_complete(&self) {
        let counts = self.admin("counts", None).await;
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
                self.count(table),
                counts[key].as_i64().unwrap(),
                "rows of {table}"
            );
        }
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

async fn api_client(env: &Env) -> drift_client::Client {
    drift_client::Client::builder(
        &env.sandbox.base_url(),
        SecretString::from(env.sandbox.token()),
    )
    .rate_limit_per_min(60_000)
    .build()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sync_matches_the_sandbox_ids_and_values() {
    let env = Env::start(config(150)).await;
    let run = env.sync(&["--mode", "full"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.summary["status"], "succeeded");
    env.assert_complete().await;
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
            env.count(stream),
            "{stream}: summary vs table"
        );
    }
    // Ids: the conversation ids Drift lists, and the messages of one conversation, value for value.
    use futures::StreamExt;
    let client = api_client(&env).await;
    let pages: Vec<_> = client.conversations(Default::default()).collect().await;
    let listed: BTreeSet<i64> = pages
        .into_iter()
        .flat_map(|p| p.unwrap().items)
        .map(|c| c.id)
        .collect();
    assert_eq!(env.ids("SELECT id FROM conversations"), listed);
    let mut checked_unicode = false;
    for id in listed.iter().take(40) {
        for m in client.conversation_messages(*id).await.unwrap() {
            let expected = serde_json::to_value(&m).unwrap();
            let c = Connection::open(env.db()).unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_picks_up_exactly_the_changes_and_a_quiet_run_writes_nothing() {
    let env = Env::start(config(150)).await;
    let first = env.sync(&["--mode", "incremental"]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let contacts_before = env.ids("SELECT id FROM contacts");
    let changed = env
        .admin("mutate", Some(json!({"touch_conversations": 3, "new_conversations": 2, "new_messages": 4, "touch_accounts": 2})))
        .await;
    let second = env.sync(&[]).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    let run = second.run_id();
    let created = id_list(&changed["new_conversations"]);
    let new_messages = id_list(&changed["new_messages"]);
    let q = |sql: &str| env.ids(&sql.replace("RUN", &run));
    // Conversations: the touched, the new, and those that got a message.
    let with_new_message = env.ids(&format!(
        "SELECT conversationId FROM messages WHERE id IN ({})",
        new_messages
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    ));
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
    env.assert_complete().await;

    // A quiet run writes nothing. Its contacts rotation re-reads every known contact (fewer
    // than the 1,000 it may per run), one request each, to find deletes and changes that
    // moved no conversation; everything else takes at most two requests per stream.
    let quiet = env.sync(&[]).await;
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    let known = env.ids("SELECT id FROM contacts").len() as u64;
    for s in quiet.summary["streams"].as_array().unwrap() {
        assert_eq!(s["records_written"], 0, "{s}");
        let requests = s["requests"].as_u64().unwrap();
        if s["stream"] == "contacts" {
            assert_eq!(requests, known, "{s}");
        } else {
            assert!(requests <= 2, "{s}");
        }
    }
    // Without the rotation a quiet run costs a handful of requests.
    let bare = env.sync(&["--contacts-recheck", "0"]).await;
    assert_eq!(bare.code, 0, "{}", bare.stderr);
    assert!(
        bare.summary["totals"]["requests"].as_u64().unwrap() <= 9,
        "{}",
        bare.summary
    );
}

/// Run a sync and SIGKILL it once its committed checkpoint satisfies `kill_point`.
/// Returns false when the run finished before reaching that point.
async fn kill_when(env: &Env, kill_point: impl Fn(&Value) -> bool) -> bool {
    let mut child = env.command(&env.db(), &[]).spawn().unwrap();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "the run failed: {status}");
            return false;
        }
        let state = env.try_pass_state();
        if state.as_ref().is_some_and(&kill_point) {
            child.start_kill().unwrap(); // SIGKILL
            child.wait().await.unwrap();
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn done_in_page(s: &Value) -> usize {
    s["pass"]["done"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_several_points_then_rerun_has_every_record_once_with_fewer_requests() {
    // Two pages of 100 conversations; a page must span several checkpoint intervals
    // (250 ms) even with 64 requests in flight (the client's concurrency at 60000/min).
    let mut cfg = config(200);
    cfg.latency_ms = 200;
    let env = Env::start(cfg).await;
    // Kill once the pass has committed progress, then twice more after further progress.
    let mut last = Value::Null;
    let mut killed = 0;
    for _ in 0..3 {
        let before = last.clone();
        let progressed = |s: &Value| s["pass"].is_object() && s["pass"] != before["pass"];
        if !kill_when(&env, progressed).await {
            break;
        }
        killed += 1;
        last = env.pass_state().unwrap();
    }
    assert!(
        killed >= 2,
        "the run finished before it could be killed twice"
    );
    assert!(
        last["pass"].is_object(),
        "the pass in progress is in the checkpoint"
    );
    let rerun = env.sync(&[]).await;
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    env.assert_complete().await;
    // The killed runs are not left `running`: their process is gone.
    let runs = env.store().list_runs(20).unwrap();
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
    let list = tokio::process::Command::new(bin())
        .arg("--data-dir")
        .arg(env.data_dir())
        .args(["runs", "list"])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    let show = tokio::process::Command::new(bin())
        .arg("--data-dir")
        .arg(env.data_dir())
        .args(["runs", "show", &interrupted.id])
        .output()
        .await
        .unwrap();
    let shown = String::from_utf8_lossy(&show.stdout);
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
        let distinct: i64 = Connection::open(env.db())
            .unwrap()
            .query_row(
                &format!("SELECT count(DISTINCT id) FROM {table}"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(distinct, env.count(table), "{table} has duplicates");
    }
    assert!(
        env.pass_state().unwrap()["pass"].is_null(),
        "the pass finished"
    );
    let fresh = env.sync_into(&env.dir.path().join("fresh.db"), &[]).await;
    assert_eq!(fresh.code, 0, "{}", fresh.stderr);
    let re = rerun.summary["totals"]["requests"].as_u64().unwrap();
    let full = fresh.summary["totals"]["requests"].as_u64().unwrap();
    assert!(re < full, "re-run made {re} requests, a full run {full}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_revoked_mid_run_exits_3_marks_the_credential_failed_and_keeps_the_checkpoint() {
    let env = Env::start(config(150)).await;
    env.faults(json!([{"route": "contacts.get", "kind": "revoke_token", "after_requests": 40}]))
        .await;
    let run = env.sync(&[]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("credential t is marked failed"),
        "{}",
        run.stderr
    );
    assert_eq!(run.summary["error"]["kind"], "unauthorized");
    let cred = env.store().credential("t").unwrap();
    assert_eq!(cred.status, CredentialStatus::Failed);
    assert!(cred.last_error.unwrap().contains("401"));
    assert!(env.count("conversations") > 0 && env.count("contacts") > 0);
    let state = env.pass_state().expect("checkpoint kept");
    let done: BTreeSet<i64> = id_list(&state["pass"]["done"]);
    assert!(!done.is_empty(), "{state}");
    assert!(
        done.is_subset(&env.ids("SELECT id FROM conversations")),
        "checkpoint ahead of the data"
    );
    assert!(
        state["watermark"].is_null(),
        "the watermark moved on a failed pass: {state}"
    );
    let runs = env.store().list_runs(5).unwrap();
    assert_eq!(runs[0].status, "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_of_429_completes_with_the_waits_counted() {
    let env = Env::start(config(60)).await;
    env.faults(json!([{"route": "conversations.messages", "kind": "status", "status": 429, "after_requests": 5, "count": 12}])).await;
    let run = env.sync(&[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let totals = &run.summary["totals"];
    assert_eq!(totals["rate_limited"], 12, "{totals}");
    assert!(totals["retries"].as_u64().unwrap() >= 12, "{totals}");
    assert!(totals["wait_ms"].as_u64().unwrap() > 0, "{totals}");
    env.assert_complete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_cursor_fails_the_run_naming_the_stream_and_keeps_the_watermark() {
    // On a later page, and on the first one (fetched without a cursor, so only its records
    // show that the next cursor led back to it).
    for (kind, after) in [
        ("repeat_cursor", 1),
        ("repeat_cursor", 0),
        ("cursor_cycle", 0),
    ] {
        repeated_cursor_case(kind, after).await;
    }
}

async fn repeated_cursor_case(kind: &str, after: u64) {
    let env = Env::start(config(250)).await;
    env.faults(
        json!([{"route": "conversations.list", "kind": kind, "after_requests": after, "count": 1}]),
    )
    .await;
    let run = env.sync(&[]).await;
    assert_eq!(run.code, 1, "{kind} after {after}: {}", run.stderr);
    assert!(run.stderr.contains("conversations"), "{}", run.stderr);
    assert_eq!(run.stream("conversations")["state"], "failed");
    assert!(
        run.stream("conversations")["reason"]
            .as_str()
            .unwrap()
            .contains("pagination"),
        "{}",
        run.summary
    );
    assert_eq!(
        run.stream("users")["state"],
        "succeeded",
        "other streams go on"
    );
    let state = env.pass_state().unwrap_or(Value::Null);
    assert!(state["watermark"].is_null(), "state advanced: {state}");
    env.faults(json!([])).await;
    let again = env.sync(&[]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    env.assert_complete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_exit_2_with_the_fix() {
    let env = Env::start(config(5)).await;
    let run = env.sync(&["--streams", "conversations,tickets"]).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("unknown stream `tickets`: available streams are conversations, messages"),
        "{}",
        run.stderr
    );
    let out = tokio::process::Command::new(bin())
        .arg("--data-dir")
        .arg(env.data_dir())
        .args(["sync", "--credential", "nope", "--destination", "mysql://x"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("use sqlite:PATH"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_list_and_show_report_the_sync() {
    let env = Env::start(config(10)).await;
    let run = env.sync(&["--streams", "conversations,users"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id = run.run_id();
    let list = tokio::process::Command::new(bin())
        .arg("--data-dir")
        .arg(env.data_dir())
        .args(["--json", "runs", "list"])
        .output()
        .await
        .unwrap();
    let runs: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(runs[0]["id"], id.as_str());
    assert_eq!(runs[0]["status"], "succeeded");
    assert_eq!(runs[0]["streams"], json!(["conversations", "users"]));
    assert_eq!(runs[0]["summary"]["streams"][0]["records_written"], 10);
    let show = tokio::process::Command::new(bin())
        .arg("--data-dir")
        .arg(env.data_dir())
        .args(["runs", "show", &id])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        text.contains(&format!("run {id}")) && text.contains("status: succeeded"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("conversations") && l.contains(" 10 ")),
        "{text}"
    );
    let missing = tokio::process::Command::new(bin())
        .arg("--data-dir")
        .arg(env.data_dir())
        .args(["runs", "show", "run_nope"])
        .output()
        .await
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

/// `driftbridge runs ARGS...` on `env`'s data dir: exit code and stdout.
async fn runs(env: &Env, args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new(bin())
        .arg("--data-dir")
        .arg(env.data_dir())
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `runs logs ID` shows a run's events while it runs (`--follow` tails them until it
/// ends) and after it; `--json` gives the stored lines; the key is in none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_logs_shows_a_runs_events_while_it_runs_and_after() {
    let mut cfg = config(150);
    cfg.latency_ms = 100;
    let env = Env::start(cfg).await;
    let mut sync = env
        .command(&env.db(), &["--streams", "conversations,messages,users"])
        .spawn()
        .unwrap();
    let id = loop {
        if let Some(run) = env.store().list_runs(1).unwrap().into_iter().next() {
            break run.id;
        }
        if let Some(status) = sync.try_wait().unwrap() {
            panic!("the sync ended ({status}) before its run was recorded");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(env.store().get_run(&id).unwrap().status, "running");
    let (code, during) = runs(&env, &["runs", "logs", &id]).await;
    assert_eq!(code, 0, "{during}");
    assert!(
        during.contains("INFO  sync started: streams conversations,messages,users"),
        "{during}"
    );
    let (code, followed) = tokio::time::timeout(
        Duration::from_secs(120),
        runs(&env, &["runs", "logs", &id, "--follow"]),
    )
    .await
    .expect("--follow ends when the run ends");
    assert_eq!(code, 0, "{followed}");
    let out = sync.wait_with_output().await.unwrap();
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
    let (_, after) = runs(&env, &["runs", "logs", &id]).await;
    assert_eq!(after, followed, "the same lines after the run");
    let (_, json) = runs(&env, &["--json", "runs", "logs", &id]).await;
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
    let token = env.sandbox.token();
    assert!(!json.contains(&token) && !after.contains(&token));
    let (code, _) = runs(&env, &["runs", "logs", "run_nope"]).await;
    assert_eq!(code, 2, "an unknown run id is a usage error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_syncs_every_stream_into_the_demo_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(bin())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--json", "demo"])
        .current_dir(dir.path())
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    for s in summary["streams"].as_array().unwrap() {
        assert!(s["records_written"].as_u64().unwrap() > 0, "{s}");
    }
    assert!(dir.path().join("driftbridge-demo.db").exists());
    let cred = Store::open(&dir.path().join("data"))
        .unwrap()
        .credential("demo")
        .unwrap();
    assert_eq!(cred.name, "demo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_or_sigterm_stops_after_the_current_commit_and_the_next_run_resumes() {
    // SIGINT (Ctrl-C) and SIGTERM (`kill`, systemd, docker) stop a run the same way.
    for signal in ["-INT", "-TERM"] {
        stop_with(signal).await;
    }
}

async fn stop_with(signal: &str) {
    let mut cfg = config(250);
    // Slow enough that a page takes several checkpoint intervals (250 ms) even with the
    // client's concurrency at a 60000/min budget (64 in flight).
    cfg.latency_ms = 200;
    let env = Env::start(cfg).await;
    let mut child = env.command(&env.db(), &[]).spawn().unwrap();
    let pid = child.id().unwrap().to_string();
    // Interrupt once some progress of the pass is committed.
    let in_progress = |s: &Value| done_in_page(s) >= 1 || s["pass"]["page"].is_string();
    loop {
        if env.try_pass_state().is_some_and(|s| in_progress(&s)) {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before any progress was committed");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let sent = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{signal}: {stderr}");
    assert!(
        stderr.contains("cancelled; the next run resumes from its checkpoint"),
        "{stderr}"
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["status"], "cancelled");
    assert_eq!(env.store().list_runs(1).unwrap()[0].status, "cancelled");
    let state = env.pass_state().unwrap();
    let done = id_list(&state["pass"]["done"]);
    assert!(
        done.is_subset(&env.ids("SELECT id FROM conversations")),
        "checkpoint ahead of the data"
    );
    let again = env.sync(&[]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    env.assert_complete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_any_needed_scope_exits_3() {
    let mut cfg = config(5);
    cfg.limited_tokens = vec![("tok-none-0123456789".into(), vec!["gdpr_read".into()])];
    let env = Env::start(cfg).await;
    env.store()
        .rotate_credential_key("t", &SecretString::from("tok-none-0123456789".to_owned()))
        .unwrap();
    let run = env.sync(&["--streams", "accounts,playbooks"]).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_beyond_the_retries_exits_4() {
    let env = Env::start(config(5)).await;
    env.faults(json!([{"route": "users.list", "kind": "status", "status": 429}]))
        .await;
    let run = env.sync(&["--streams", "users"]).await;
    assert_eq!(run.code, 4, "{}", run.stderr);
    let users = run.stream("users");
    assert_eq!(
        users["rate_limited"], run.summary["totals"]["rate_limited"],
        "{users}"
    );
    assert!(
        users["retries"].as_u64().unwrap() > 0 && users["wait_ms"].as_u64().unwrap() > 0,
        "{users}"
    );
    assert_eq!(run.summary["error"]["kind"], "rate_limited");
    assert!(
        run.summary["totals"]["rate_limited"].as_u64().unwrap() > 1,
        "{}",
        run.summary
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_named_by_email_are_read_besides_those_in_conversations() {
    let env = Env::start(config(20)).await;
    let counts = env.admin("counts", None).await;
    let last = counts["contacts"].as_i64().unwrap() - 1;
    let client = api_client(&env).await;
    let mut email = None;
    for domain in ["example.com", "example.org", "example.net"] {
        let candidate = format!("contact{last}@{domain}");
        if !client
            .contacts_by_email(&candidate)
            .await
            .unwrap()
            .is_empty()
        {
            email = Some(candidate);
        }
    }
    let email = email.expect("the sandbox's last contact has a contactN@ address");
    let run = env
        .sync(&[
            "--streams",
            "conversations,contacts",
            "--contact-emails",
            &email,
        ])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let in_conversations = counts["contacts_in_conversations"].as_i64().unwrap();
    assert_eq!(env.count("contacts"), in_conversations + 1);
    let c = Connection::open(env.db()).unwrap();
    let found: i64 = c
        .query_row(
            "SELECT count(*) FROM contacts WHERE json_extract(attributes, '$.email') = ?1",
            [&email],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(found, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_the_user_owns_is_refused_and_left_unchanged() {
    let env = Env::start(config(2)).await;
    let db = env.dir.path().join("other.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE teams(x int); INSERT INTO teams VALUES (1);")
        .unwrap();
    let run = env.sync_into(&db, &["--streams", "teams"]).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_database_in_missing_directories_is_created() {
    let env = Env::start(config(2)).await;
    let db = env.dir.path().join("nonexistent/dir/y.db");
    let run = env.sync_into(&db, &["--streams", "teams"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.written("teams") > 0, "{}", run.summary);
    assert!(db.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_messy_org_exits_5_and_runs_rejected_lists_every_quarantined_record() {
    let env = Env::start(SandboxConfig {
        messy: true,
        ..config(200)
    })
    .await;
    let run = env.sync(&["--streams", "all"]).await;
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert_eq!(run.summary["status"], "succeeded_with_rejections");
    let counts = env.admin("counts", None).await;
    let unfit: u64 = counts["unfit"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(unfit > 0, "{counts}");
    let run_id = run.run_id();
    let out = tokio::process::Command::new(bin())
        .arg("--data-dir")
        .arg(env.data_dir())
        .args(["--json", "runs", "rejected", &run_id])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.len() as u64, unfit);
    assert!(listed
        .iter()
        .all(|r| r["stream"].is_string() && r["reason"].as_str().unwrap().len() >= 10));
    let text = tokio::process::Command::new(bin())
        .arg("--data-dir")
        .arg(env.data_dir())
        .args(["runs", "rejected", &run_id])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("quarantined {unfit} record")),
        "{text}"
    );
    // The fitting records are all there; a re-run is not stuck on the unfit ones.
    let conversations = counts["conversations"].as_u64().unwrap()
        - counts["unfit"]["conversations"].as_u64().unwrap();
    assert_eq!(env.count("conversations") as u64, conversations);
    let again = env.sync(&["--streams", "all"]).await;
    assert!(matches!(again.code, 0 | 5), "{}", again.stderr);
}

/// Issue 17 item 7: `sync --destination` into the data directory (here the metadata store
/// itself, through `..`) is refused with exit 2 before anything is written; the store gets
/// no `users` table and no run is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_inside_the_data_directory_is_refused() {
    let env = Env::start(config(2)).await;
    let sneaky = env
        .data_dir()
        .join("runs")
        .join("..")
        .join("driftbridge.db");
    let run = env.sync_into(&sneaky, &["--streams", "users"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("inside the data directory"),
        "{}",
        run.stderr
    );
    let tables: i64 = Connection::open(env.data_dir().join("driftbridge.db"))
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'users'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0, "the metadata store got no users table");
    assert!(
        env.store().list_runs(10).unwrap().is_empty(),
        "no run recorded"
    );
}

/// `--sink` names the same thing as `--destination` (the sink the records land in); the
/// summary and the run history keep their field `destination`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_is_an_alias_of_destination_and_the_summary_keeps_its_field() {
    let env = Env::start(config(2)).await;
    let db = env.dir.path().join("via-alias.db");
    let sink = format!("sqlite:{}", db.display());
    let out = tokio::process::Command::new(bin())
        .arg("--data-dir")
        .arg(env.data_dir())
        .args(["--json", "sync", "--credential", "t", "--streams", "users"])
        .args(["--sink", &sink])
        .current_dir(env.dir.path())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["destination"], sink.as_str(), "{summary}");
    assert!(summary.get("sink").is_none(), "{summary}");
    let users: i64 = Connection::open(&db)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 12, "the sandbox's users landed in the sink");
    let runs = env.store().list_runs(10).unwrap();
    assert_eq!(runs[0].destination, sink);
}

/// `sync` at `rate` requests/minute with extra global flags, into `db`.
fn budget_sync(env: &Env, globals: &[&str], db: &Path, rate: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(bin());
    cmd.arg("--data-dir").arg(env.data_dir()).args(globals);
    cmd.args(["--json", "sync", "--credential", "t", "--streams"])
        .args([
            "conversations,messages,contacts",
            "--rate-limit-per-min",
            rate,
        ])
        .arg("--destination")
        .arg(format!("sqlite:{}", db.display()))
        .current_dir(env.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_syncs_in_two_processes_share_the_credentials_budget() {
    // The sandbox sends no rate-limit headers: only the shared budget keeps the two apart.
    let env = Env::start(SandboxConfig {
        rate_limit_per_min: 1200,
        rate_limit_headers: false,
        ..config(40)
    })
    .await;
    let started = std::time::Instant::now();
    let (a, b) = tokio::join!(
        budget_sync(&env, &[], &env.dir.path().join("a.db"), "1200").output(),
        budget_sync(&env, &[], &env.dir.path().join("b.db"), "1200").output(),
    );
    let took = started.elapsed();
    for out in [a.unwrap(), b.unwrap()] {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stats = env.admin("stats", None).await;
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
    let store = env.store();
    let cred = store.credential("t").unwrap();
    let used = store.budget_use(&cred).await.unwrap();
    assert!(
        used.requests_last_minute >= requests / 2,
        "{used:?} of {requests}"
    );
    // ... and so does `credentials show`, in text and JSON
    let show = |json: bool| {
        let mut cmd = std::process::Command::new(bin());
        cmd.arg("--data-dir").arg(env.data_dir());
        if json {
            cmd.arg("--json");
        }
        let out = cmd.args(["credentials", "show", "t"]).output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown: Value = serde_json::from_str(&show(true)).unwrap();
    let shown_use = shown["budget"]["requests_last_minute"].as_u64().unwrap();
    assert!(shown_use >= requests / 2, "{shown} of {requests}");
    assert!(
        show(false).contains("requests in the last minute (all processes)"),
        "text output names the budget use"
    );
}

#[tokio::test]
async fn shared_budget_takes_only_a_postgres_url_and_never_echoes_it() {
    let env = Env::start(config(5)).await;
    let out = budget_sync(
        &env,
        &["--shared-budget", "redis://user:hunter2@127.0.0.1:6379"],
        &env.db(),
        "600",
    )
    .output()
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--shared-budget"), "{stderr}");
    assert!(stderr.contains("PostgreSQL"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_budget_in_postgres_keeps_the_credentials_row_there() {
    let url = std::env::var("DRIFTBRIDGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let env = Env::start(SandboxConfig {
        rate_limit_per_min: 600,
        ..config(10)
    })
    .await;
    let out = budget_sync(&env, &[], &env.db(), "600")
        .env("DRIFTBRIDGE_SHARED_BUDGET", &url)
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let key = format!("t@{}", env.sandbox.base_url().trim_end_matches('/'));
    let row = client
        .query_one(
            "SELECT tat_us, window_count FROM driftbridge_rate_budget WHERE key = $1",
            &[&key],
        )
        .await
        .unwrap();
    assert!(row.get::<_, i64>(0) > 0, "the lease moved the row's TAT");
    // nothing was kept in the data directory's own table
    let local: i64 = Connection::open(env.data_dir().join("driftbridge.db"))
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
}

/// The run of flow `flow` in progress, once the store shows it (bounded wait).
async fn running_run_of(env: &Env, flow: &str) -> String {
    for _ in 0..400 {
        if let Some(run) = env
            .store()
            .list_runs(20)
            .unwrap()
            .into_iter()
            .find(|r| r.flow.as_deref() == Some(flow) && r.status == "running")
        {
            return run.id;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no run of flow {flow} started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sync_of_a_running_flow_exits_2_naming_it_and_wait_starts_after_it() {
    let mut cfg = config(60);
    cfg.latency_ms = 150;
    let env = Env::start(cfg).await;
    let first = env
        .command(
            &env.db(),
            &["--flow", "nightly", "--streams", "conversations,messages"],
        )
        .spawn()
        .unwrap();
    let running = running_run_of(&env, "nightly").await;

    let second = env
        .sync_into(&env.dir.path().join("other.db"), &["--flow", "NIGHTLY"])
        .await;
    assert_eq!(second.code, 2, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains(&format!("already running: {running}")),
        "{}",
        second.stderr
    );
    // Nothing was recorded for the refused start.
    let runs = env.store().list_runs(20).unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");

    // --wait: starts once the first run ends, and runs.
    let waited = env
        .sync_into(
            &env.dir.path().join("other.db"),
            &["--flow", "nightly", "--wait", "--streams", "users"],
        )
        .await;
    assert_eq!(waited.code, 0, "{}", waited.stderr);
    let first = first.wait_with_output().await.unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let ran = env.store().get_run(&running).unwrap();
    assert!(
        ran.finished_at.unwrap() <= env.store().get_run(&waited.run_id()).unwrap().started_at,
        "the waiting run started after the first ended"
    );
    // Another flow name is not held up.
    let other = env
        .sync_into(
            &env.dir.path().join("third.db"),
            &["--flow", "weekly", "--streams", "users"],
        )
        .await;
    assert_eq!(other.code, 0, "{}", other.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_whose_running_process_was_killed_starts_again() {
    let mut cfg = config(60);
    cfg.latency_ms = 150;
    let env = Env::start(cfg).await;
    let mut first = env
        .command(
            &env.db(),
            &["--flow", "nightly", "--streams", "conversations,messages"],
        )
        .spawn()
        .unwrap();
    let running = running_run_of(&env, "nightly").await;
    first.start_kill().unwrap(); // SIGKILL: the run lock stays in the store
    first.wait().await.unwrap();

    let again = env
        .sync_into(
            &env.dir.path().join("other.db"),
            &["--flow", "nightly", "--streams", "users"],
        )
        .await;
    assert_eq!(
        again.code, 0,
        "a dead holder does not block: {}",
        again.stderr
    );
    assert_eq!(env.store().get_run(&running).unwrap().status, "interrupted");
}
