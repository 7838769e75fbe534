//! Real-time data sources (issue 22): the sandbox's webhook events through
//! `POST /webhooks/drift/{id}` into the source's SQLite sink, the verification token, the
//! duplicate and reorder faults, the replay of events accepted before a stop, and the
//! incremental sync as the gap filler.

use crate::common::{wait_run, TestServer};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

const TOKEN: &str = "wh-verification-token-0123456789";

/// A server, a sandbox and a real-time source reading `streams` into a SQLite file.
struct Rt {
    s: TestServer,
    sandbox: drift_sandbox::SandboxHandle,
    source: Value,
    db: PathBuf,
    _sinks: tempfile::TempDir,
}

impl Rt {
    async fn start(streams: &[&str]) -> Rt {
        let s = TestServer::start().await;
        let sandbox = drift_sandbox::start(drift_sandbox::SandboxConfig {
            port: 0,
            conversations: 20,
            messages_per_conversation: 2,
            accounts: 5,
            users: 3,
            rate_limit_per_min: 0,
            ..Default::default()
        })
        .await
        .unwrap();
        s.create_credential("sb", &sandbox.token(), &sandbox.base_url())
            .await;
        let sinks = tempfile::tempdir().unwrap();
        let db = sinks.path().join("rt.db");
        let response = s
            .post("/api/v1/sources")
            .json(
                &json!({"name": "rt", "credential": "sb", "streams": streams,
                "sink": format!("sqlite:{}", db.display()),
                "realtime": {"verification_token": TOKEN}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let text = response.text().await.unwrap();
        assert!(
            !text.contains(TOKEN),
            "the verification token is write-only: {text}"
        );
        let source: Value = serde_json::from_str(&text).unwrap();
        Rt {
            s,
            sandbox,
            source,
            db,
            _sinks: sinks,
        }
    }

    fn hook(&self) -> String {
        self.source["webhook_url"].as_str().unwrap().to_string()
    }

    fn id(&self) -> String {
        self.source["id"].as_str().unwrap().to_string()
    }

    /// Point the sandbox's webhook events at this source, with faults.
    async fn send_webhooks(&self, duplicates: f64, reorder: bool) {
        let r = reqwest::Client::new()
            .post(format!("{}/__sandbox/webhooks", self.sandbox.base_url()))
            .json(&json!({"url": self.hook(), "token": TOKEN,
                "duplicates": duplicates, "reorder": reorder}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    async fn mutate(&self, body: Value) -> Value {
        reqwest::Client::new()
            .post(format!("{}/__sandbox/mutate", self.sandbox.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Rows of `sql` (one integer or text column), or empty when the table is not there yet.
    fn query(&self, sql: &str) -> Vec<String> {
        let Ok(conn) = rusqlite::Connection::open(&self.db) else {
            return Vec::new();
        };
        let Ok(mut stmt) = conn.prepare(sql) else {
            return Vec::new();
        };
        stmt.query_map([], |r| {
            let v: rusqlite::types::Value = r.get(0)?;
            Ok(match v {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    /// Wait (up to 20 s) until `sql` returns `want`; returns what it returned last.
    async fn wait_for(&self, sql: &str, want: impl Fn(&[String]) -> bool) -> Vec<String> {
        let mut rows = Vec::new();
        for _ in 0..200 {
            rows = self.query(sql);
            if want(&rows) {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        rows
    }

    async fn view(&self) -> Value {
        self.s
            .get_json(&format!("/api/v1/sources/{}", self.id()))
            .await
    }
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_source_view_has_an_absolute_unguessable_webhook_url_and_no_token() {
    let rt = Rt::start(&["conversations", "messages"]).await;
    let hook = rt.hook();
    assert!(
        hook.starts_with(&format!("{}/webhooks/drift/", rt.s.base)),
        "{hook}"
    );
    let last = hook.rsplit('/').next().unwrap();
    assert_eq!(last.len(), 32, "128 random bits: {hook}");
    assert!(
        !hook.contains(&rt.id()),
        "the URL does not reveal the source id"
    );
    assert_eq!(rt.source["realtime"]["enabled"], true);
    assert_eq!(rt.source["realtime"]["events_last_hour"], 0);
    // The list shows the same, and never the token.
    let list =
        rt.s.get("/api/v1/sources")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    assert!(list.contains(&hook) && !list.contains(TOKEN));
    // Turning real time off: the URL stops answering.
    let off: Value =
        rt.s.req(
            reqwest::Method::PATCH,
            &format!("/api/v1/sources/{}", rt.id()),
        )
        .json(&json!({"realtime": null}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(off["webhook_url"], Value::Null);
    assert_eq!(off["realtime"], Value::Null);
    let event = json!({"type": "new_message", "token": TOKEN, "orgId": 1, "data": {}});
    let r = rt.s.http.post(&hook).json(&event).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn sandbox_events_of_each_type_land_in_the_sink() {
    let rt = Rt::start(&["conversations", "messages", "contacts", "meetings"]).await;
    rt.send_webhooks(0.0, false).await;

    // new_conversation + new_message: the conversation, its messages and its contact.
    let changed = rt.mutate(json!({"new_conversations": 1})).await;
    let conv = ids(&changed["new_conversations"])[0].clone();
    let rows = rt
        .wait_for(
            &format!("SELECT count(*) FROM messages WHERE conversationId = {conv}"),
            |r| r == ["2"],
        )
        .await;
    assert_eq!(rows, ["2"], "the 2 messages of the new conversation");
    let rows = rt
        .wait_for(
            &format!("SELECT contactId FROM conversations WHERE id = {conv}"),
            |r| r.len() == 1,
        )
        .await;
    assert_eq!(rows.len(), 1, "the new conversation, read again from Drift");
    let contact = rows[0].clone();
    let rows = rt
        .wait_for(
            &format!("SELECT count(*) FROM contacts WHERE id = {contact}"),
            |r| r == ["1"],
        )
        .await;
    assert_eq!(rows, ["1"], "the conversation's contact");

    // new_message on existing conversations.
    let changed = rt.mutate(json!({"new_messages": 3})).await;
    let new = ids(&changed["new_messages"]);
    let list = new.join(",");
    let rows = rt
        .wait_for(
            &format!("SELECT count(*) FROM messages WHERE id IN ({list})"),
            |r| r == ["3"],
        )
        .await;
    assert_eq!(rows, ["3"]);

    // contact_updated: the contact read again, with its new name.
    let changed = rt.mutate(json!({"rename_contacts": 1})).await;
    let renamed = ids(&changed["rename_contacts"])[0].clone();
    let want = format!("({})", 3); // the name carries the mutation number (3rd mutation)
    let rows = rt
        .wait_for(
            &format!(
                "SELECT json_extract(attributes, '$.name') FROM contacts WHERE id = {renamed}"
            ),
            |r| r.len() == 1 && r[0].contains(&want),
        )
        .await;
    assert!(
        rows.len() == 1 && rows[0].contains(&want),
        "renamed contact: {rows:?}"
    );

    // new_meeting carries the meeting.
    let meeting = json!({"type": "new_meeting", "orgId": 1, "token": TOKEN,
        "data": {"slug": "mtg-rt-1", "agentId": 2, "updatedAt": 1_700_000_000_000_i64,
            "slotStart": 1_700_000_100_000_i64, "conversationId": conv.parse::<i64>().unwrap()}});
    let r =
        rt.s.http
            .post(rt.hook())
            .json(&meeting)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    let rows = rt
        .wait_for(
            "SELECT count(*) FROM meetings WHERE slug = 'mtg-rt-1'",
            |r| r == ["1"],
        )
        .await;
    assert_eq!(rows, ["1"]);

    // The view counts them, with a lag.
    let view = rt.view().await;
    assert!(
        view["realtime"]["events_last_hour"].as_u64().unwrap() >= 8,
        "{view}"
    );
    assert!(view["realtime"]["lag_ms_p95"].as_i64().is_some(), "{view}");
    // The page shows the URL and the figures.
    let cookie = crate::access::login(&rt.s).await;
    let page =
        rt.s.http
            .get(rt.s.url(&format!("/sources/{}", rt.id())))
            .header("cookie", cookie.split(';').next().unwrap())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    assert!(page.contains(&rt.hook()) && page.contains("events-last-hour"));
}

#[tokio::test]
async fn a_wrong_or_missing_token_is_401_counted_and_nothing_is_written() {
    let rt = Rt::start(&["conversations", "messages"]).await;
    let secret_body = "body-marker-4c1f";
    let event = json!({"type": "new_message", "token": "wrong-token-000", "orgId": 1,
        "data": {"id": 99_000_001_i64, "conversationId": 1, "createdAt": 1, "body": secret_body}});
    let wrong =
        rt.s.http
            .post(rt.hook())
            .header("X-Verification-Token", "wrong-token-000")
            .json(&event)
            .send()
            .await
            .unwrap();
    assert_eq!(wrong.status(), 401);
    let mut no_header = event.clone();
    no_header.as_object_mut().unwrap().remove("token");
    let missing =
        rt.s.http
            .post(rt.hook())
            .json(&no_header)
            .send()
            .await
            .unwrap();
    assert_eq!(missing.status(), 401);
    // The right token in the body alone is accepted (Drift sends both).
    let mut right = event.clone();
    right["token"] = json!(TOKEN);
    right["data"]["id"] = json!(99_000_002_i64);
    let ok = rt.s.http.post(rt.hook()).json(&right).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let rows = rt
        .wait_for("SELECT id FROM messages ORDER BY id", |r| !r.is_empty())
        .await;
    assert_eq!(rows, ["99000002"], "only the event with the right token");
    let stats = rt.s.store.webhook_stats(&rt.id(), chrono_now()).unwrap();
    assert_eq!(stats.events_last_hour, 1);
    let metrics =
        rt.s.get("/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    let rejected = metrics
        .lines()
        .find(|l| l.starts_with("driftbridge_webhook_events_total{outcome=\"rejected\"}"))
        .unwrap_or_else(|| panic!("no rejected counter in {metrics}"));
    let rejected: f64 = rejected.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(rejected >= 2.0, "both refusals counted: {rejected}");
    assert!(!metrics.contains(secret_body));
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn duplicates_and_reordering_write_each_record_once() {
    let rt = Rt::start(&["conversations", "messages"]).await;
    rt.send_webhooks(1.0, true).await;
    let changed = rt.mutate(json!({"new_messages": 10})).await;
    let new = ids(&changed["new_messages"]);
    let list = new.join(",");
    let rows = rt
        .wait_for(
            &format!("SELECT count(*) FROM messages WHERE id IN ({list})"),
            |r| r == ["10"],
        )
        .await;
    assert_eq!(rows, ["10"]);
    // Every delivery arrived twice; each was queued once.
    let sb: Value = reqwest::get(format!("{}/__sandbox/webhooks", rt.sandbox.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sb["duplicated"], 10, "{sb}");
    for _ in 0..100 {
        let d: Value = reqwest::get(format!("{}/__sandbox/webhooks", rt.sandbox.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if d["delivered"] == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let view = rt.view().await;
    assert_eq!(view["realtime"]["events_last_hour"], 10, "{view}");
    assert_eq!(
        rt.query("SELECT count(*) - count(DISTINCT id) FROM messages"),
        ["0"]
    );
}

#[tokio::test]
async fn events_accepted_before_a_stop_are_written_when_serve_starts_again() {
    let rt = Rt::start(&["conversations", "messages"]).await;
    // Accepted (queued) but never written: what a serve killed between its 200 and the
    // sink commit leaves behind.
    let body = json!({"type": "new_message", "token": TOKEN, "orgId": 1,
        "data": {"id": 77_000_001_i64, "conversationId": 1, "createdAt": 1_700_000_000_000_i64,
            "type": "chat", "author": {"type": "user", "id": 1}}});
    let queued =
        rt.s.store
            .enqueue_webhook(
                &rt.id(),
                "message:77000001",
                "new_message",
                &body.to_string(),
                1_700_000_000_000,
            )
            .unwrap();
    assert_eq!(queued, store::Enqueued::Queued);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        rt.query("SELECT id FROM messages").is_empty(),
        "no worker ran yet"
    );
    // What serve does when it starts.
    assert_eq!(rt.s.state.flows.realtime.replay(&rt.s.state.flows), 1);
    let rows = rt
        .wait_for("SELECT id FROM messages", |r| !r.is_empty())
        .await;
    assert_eq!(rows, ["77000001"]);
    let stats = rt.s.store.webhook_stats(&rt.id(), chrono_now()).unwrap();
    assert_eq!(stats.pending, 0, "done once written");
}

#[tokio::test]
async fn an_event_missed_by_the_webhook_path_is_filled_by_the_next_incremental_sync() {
    let rt = Rt::start(&["conversations", "messages"]).await;
    let run =
        rt.s.post_json(&format!("/api/v1/sources/{}/run", rt.id()))
            .await;
    let first = wait_run(&rt.s, run["id"].as_str().unwrap()).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    // The sandbox sends no webhooks: these messages are never delivered.
    let changed = rt.mutate(json!({"new_messages": 2})).await;
    let list = ids(&changed["new_messages"]).join(",");
    let sql = format!("SELECT count(*) FROM messages WHERE id IN ({list})");
    assert_eq!(rt.query(&sql), ["0"]);
    let run =
        rt.s.post_json(&format!("/api/v1/sources/{}/run", rt.id()))
            .await;
    let second = wait_run(&rt.s, run["id"].as_str().unwrap()).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(rt.query(&sql), ["2"]);
}

#[tokio::test]
async fn a_token_changed_by_another_process_works_at_once_on_a_running_serve() {
    let rt = Rt::start(&["conversations", "messages"]).await;
    let event = |id: i64, token: &str| {
        json!({"type": "new_message", "token": token, "orgId": 1,
            "data": {"id": id, "conversationId": 1, "createdAt": 1, "body": "hi"}})
    };
    let post = |body: Value| {
        let http = rt.s.http.clone();
        let hook = rt.hook();
        async move { http.post(hook).json(&body).send().await.unwrap().status() }
    };
    // The first event fills serve's cache with the token.
    assert_eq!(post(event(99_100_001, TOKEN)).await, 200);
    // What `driftbridge sources update rt --realtime --verification-token-env VAR` does: the
    // store changes, this serve's Hub is not told.
    const NEW: &str = "wh-new-verification-token-9876543210";
    flows::realtime::enable_in(&rt.s.store, &rt.id(), &secrecy::SecretString::from(NEW)).unwrap();
    assert_eq!(
        post(event(99_100_002, NEW)).await,
        200,
        "the new token works at the next event"
    );
    assert_eq!(
        post(event(99_100_003, TOKEN)).await,
        401,
        "the old token stops working"
    );
    assert_eq!(post(event(99_100_004, NEW)).await, 200);
    let rows = rt
        .wait_for("SELECT id FROM messages ORDER BY id", |r| r.len() >= 3)
        .await;
    assert_eq!(rows, ["99100001", "99100002", "99100004"]);
}
