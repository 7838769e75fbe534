//! `/api/v1/sources`, `/api/v1/runs`, schedules: create, validate (scopes too), run now,
//! watch the counts reach the sandbox's totals.

use crate::common::{assert_problem, sandbox, sandbox_counts, wait_run, TestServer};
use reqwest::Method;
use serde_json::json;

async fn with_credential() -> (drift_sandbox::SandboxHandle, TestServer) {
    let sandbox = sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("Sandbox", &sandbox.token(), &sandbox.base_url())
        .await;
    (sandbox, s)
}

fn sink(s: &TestServer, file: &str) -> String {
    format!(
        "sqlite:{}",
        s.store.data_dir().join("sinks").join(file).display()
    )
}

#[tokio::test]
async fn create_run_and_watch_the_counts_reach_the_sandbox_totals() {
    let (sandbox, s) = with_credential().await;
    let response = s
        .post("/api/v1/sources")
        .json(&json!({"name": "crm", "credential": "sandbox", "streams": ["conversations", "messages"],
            "mode": "full", "sink": sink(&s, "crm.db")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: serde_json::Value = response.json().await.unwrap();
    assert_eq!(created["credential"], "Sandbox");
    assert_eq!(created["mode"], "full");
    let id = created["id"].as_str().unwrap().to_string();

    let response = s
        .post(&format!("/api/v1/sources/{id}/run"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let started: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/runs/{}", started["id"].as_str().unwrap())
    );
    assert_eq!(started["flow"], "crm");
    let run = wait_run(&s, started["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let counts = sandbox_counts(&sandbox).await;
    for stream in ["conversations", "messages"] {
        let summary = run["summary"]["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["stream"] == stream)
            .unwrap();
        assert_eq!(
            summary["records_written"], counts[stream],
            "{stream}: {summary}"
        );
    }
    // The run page's "expected" of a finished full run is what was read (Drift's stats
    // leave bulk_sent conversations out of their counts).
    let conversations = &run["summary"]["streams"][0];
    assert_eq!(conversations["stream"], "conversations");
    assert_eq!(
        conversations["expected"], counts["conversations"],
        "{conversations}"
    );
    assert!(run["summary"]["totals"]["requests"].as_u64().unwrap() > 0);

    let runs: Vec<serde_json::Value> = s
        .get("/api/v1/runs?source=CRM")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    let response = s
        .post(&format!(
            "/api/v1/runs/{}/cancel",
            run["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_problem(response, 409, "not-running").await;
    let metrics = s
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("driftbridge_runs_total{status=\"succeeded\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("driftbridge_records_total{stream=\"messages\"}"));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn invalid_sources_answer_422_naming_each_field() {
    let (sandbox, s) = with_credential().await;
    let response = s
        .post("/api/v1/sources")
        .json(
            &json!({"name": "", "credential": "nope", "streams": ["tickets"], "mode": "sometimes",
            "sink": "ftp:x", "schedule": {"every_minutes": 0}}),
        )
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["name", "credential", "streams", "mode", "sink", "schedule"],
        "{body}"
    );
    let response = s
        .post("/api/v1/sources")
        .json(&json!({"name": "x", "credential": "Sandbox", "streams": []}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "streams");
    assert!(s.store.list_sources().unwrap().is_empty());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_credential_without_the_streams_scopes_is_refused_before_saving() {
    let sandbox = drift_sandbox::start(drift_sandbox::SandboxConfig {
        port: 0,
        conversations: 5,
        limited_tokens: vec![(
            "contacts-only-token-1234".into(),
            vec!["contact_read".into()],
        )],
        ..Default::default()
    })
    .await
    .unwrap();
    let s = TestServer::start().await;
    s.create_credential("Limited", "contacts-only-token-1234", &sandbox.base_url())
        .await;
    let response = s
        .post("/api/v1/sources")
        .json(&json!({"name": "convs", "credential": "Limited", "streams": ["conversations"]}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "streams");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("conversation_read"),
        "{body}"
    );
    assert!(s.store.list_sources().unwrap().is_empty());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn sources_can_be_listed_updated_and_deleted() {
    let (sandbox, s) = with_credential().await;
    let body = json!({"name": "crm", "credential": "Sandbox", "streams": ["users"], "sink": sink(&s, "a.db")});
    assert_eq!(
        s.post("/api/v1/sources")
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let response = s
        .post("/api/v1/sources")
        .json(&json!({"name": "CRM", "credential": "Sandbox", "streams": ["users"]}))
        .send()
        .await
        .unwrap();
    assert_problem(response, 409, "duplicate-name").await;

    let response = s
        .req(Method::PATCH, "/api/v1/sources/crm")
        .json(&json!({"mode": "full", "schedule": {"every_minutes": 30}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let updated: serde_json::Value = response.json().await.unwrap();
    assert_eq!(updated["mode"], "full");
    assert_eq!(updated["schedule"], json!({"every_minutes": 30}));
    assert_eq!(updated["streams"], json!(["users"]));
    let cleared: serde_json::Value = s
        .req(Method::PATCH, "/api/v1/sources/crm")
        .json(&json!({"schedule": null}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["schedule"], serde_json::Value::Null);

    let list: Vec<serde_json::Value> = s
        .get("/api/v1/sources")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    let response = s
        .req(Method::DELETE, "/api/v1/credentials/Sandbox")
        .send()
        .await
        .unwrap();
    let problem = assert_problem(response, 409, "in-use").await;
    assert_eq!(problem["used_by"], json!(["data source \"crm\""]));
    assert_eq!(
        s.req(Method::DELETE, "/api/v1/sources/crm")
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_problem(
        s.get("/api/v1/sources/crm").send().await.unwrap(),
        404,
        "not-found",
    )
    .await;
    assert_problem(
        s.post("/api/v1/sources/crm/run").send().await.unwrap(),
        404,
        "not-found",
    )
    .await;
    assert_problem(
        s.get("/api/v1/runs/run_nope").send().await.unwrap(),
        404,
        "not-found",
    )
    .await;
    sandbox.shutdown().await;
}

#[tokio::test]
async fn the_scheduler_starts_due_sources_once() {
    let (sandbox, s) = with_credential().await;
    let body = json!({"name": "hourly", "credential": "Sandbox", "streams": ["users"],
        "sink": sink(&s, "h.db"), "schedule": {"every_minutes": 60}});
    assert_eq!(
        s.post("/api/v1/sources")
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let body = json!({"name": "manual", "credential": "Sandbox", "streams": ["users"], "sink": sink(&s, "m.db")});
    assert_eq!(
        s.post("/api/v1/sources")
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );

    let now = chrono::Utc::now().timestamp_millis();
    let started = flows::schedule::run_due(&s.state.flows, now);
    assert_eq!(started.len(), 1, "only the scheduled source runs");
    let run = wait_run(&s, &started[0]).await;
    assert_eq!(run["flow"], "hourly");
    assert_eq!(run["status"], "succeeded");
    assert!(
        flows::schedule::run_due(&s.state.flows, now + 59 * 60_000).is_empty(),
        "not due yet"
    );
    let again = flows::schedule::run_due(&s.state.flows, now + 61 * 60_000);
    assert_eq!(again.len(), 1, "due after the interval");
    wait_run(&s, &again[0]).await;
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_paused_source_is_not_started_by_its_schedule_and_shows_no_next_run() {
    let (sandbox, s) = with_credential().await;
    let body = json!({"name": "hourly", "credential": "Sandbox", "streams": ["users"],
        "sink": sink(&s, "h.db"), "schedule": {"every_minutes": 60}, "paused": true});
    let created: serde_json::Value = s
        .post("/api/v1/sources")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["paused"], true, "{created}");
    assert_eq!(created["next_run_at"], serde_json::Value::Null);
    assert_eq!(created["failure_streak"], 0);
    let now = chrono::Utc::now().timestamp_millis();
    assert!(
        flows::schedule::run_due(&s.state.flows, now).is_empty(),
        "paused"
    );
    let resumed: serde_json::Value = s
        .req(reqwest::Method::PATCH, "/api/v1/sources/hourly")
        .json(&json!({"paused": false}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resumed["paused"], false);
    assert!(
        resumed["next_run_at"].as_i64().unwrap() <= now,
        "never ran: due now"
    );
    let started = flows::schedule::run_due(&s.state.flows, now);
    assert_eq!(started.len(), 1, "resumed");
    wait_run(&s, &started[0]).await;
    let shown = s.get_json("/api/v1/sources/hourly").await;
    assert!(
        shown["next_run_at"].as_i64().unwrap() > now + 59 * 60_000,
        "{shown}"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn streams_are_listed_with_their_scopes() {
    let s = TestServer::start().await;
    let streams: Vec<serde_json::Value> = s
        .get("/api/v1/streams")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(streams
        .iter()
        .any(|x| x["name"] == "conversations" && x["scope"] == "conversation_read"));
}

#[tokio::test]
async fn cron_schedules_are_validated_and_run_at_their_time() {
    let (sandbox, s) = with_credential().await;
    let create = |name: &str, schedule: serde_json::Value| {
        s.post("/api/v1/sources")
            .json(
                &json!({"name": name, "credential": "Sandbox", "streams": ["users"],
                "sink": sink(&s, &format!("{name}.db")), "schedule": schedule}),
            )
            .send()
    };
    let body = assert_problem(
        create("bad", json!({"cron": "every hour"})).await.unwrap(),
        422,
        "validation",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "schedule.cron", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("0 2 * * *") && message.contains("UTC"),
        "{message}"
    );
    let body = assert_problem(
        create("bad", json!({"cron": "0 24 * * *"})).await.unwrap(),
        422,
        "validation",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "schedule.cron", "{body}");
    let body = assert_problem(
        create("bad", json!({"cron": "0 * * * *", "every_minutes": 5}))
            .await
            .unwrap(),
        422,
        "validation",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "schedule", "{body}");
    assert!(body["detail"].as_str().unwrap().contains("not both"));
    assert_problem(create("bad", json!({})).await.unwrap(), 422, "validation").await;
    assert!(s.store.list_sources().unwrap().is_empty());

    let response = create("hourly", json!({"cron": "0 * * * *"}))
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let source: serde_json::Value = response.json().await.unwrap();
    assert_eq!(source["schedule"], json!({"cron": "0 * * * *"}));
    let created = source["created_at"].as_i64().unwrap();
    let top_of_next_hour = (created / 3_600_000 + 1) * 3_600_000;
    assert!(
        flows::schedule::run_due(&s.state.flows, top_of_next_hour - 1).is_empty(),
        "not due before the first cron time after its creation"
    );
    let started = flows::schedule::run_due(&s.state.flows, top_of_next_hour + 5 * 3_600_000);
    assert_eq!(
        started.len(),
        1,
        "one run after five missed hours, not five"
    );
    let run = crate::common::wait_run(&s, &started[0]).await;
    assert_eq!(run["flow"], "hourly");

    let patched: serde_json::Value = s
        .req(reqwest::Method::PATCH, "/api/v1/sources/hourly")
        .json(&json!({"schedule": {"cron": "30 2 * * MON-FRI"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["schedule"], json!({"cron": "30 2 * * MON-FRI"}));
    let response = s
        .req(reqwest::Method::PATCH, "/api/v1/sources/hourly")
        .json(&json!({"schedule": {"cron": "99 * * * *"}}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "schedule.cron");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn the_source_form_saves_a_cron_schedule_and_explains_a_bad_one() {
    let (sandbox, s) = with_credential().await;
    let cookie = crate::access::login(&s).await;
    let post = |schedule: &'static str, every: &'static str, cron: &'static str| {
        let sink = sink(&s, "form.db");
        s.http
            .post(s.url("/ui/sources"))
            .header("cookie", cookie.clone())
            .header("origin", s.base.clone())
            .header("hx-request", "true")
            .form(&[
                ("name", "nightly"),
                ("credential", "Sandbox"),
                ("streams", "users"),
                ("mode", "full"),
                ("sink", sink.as_str()),
                ("schedule", schedule),
                ("every_minutes", every),
                ("cron", cron),
            ])
            .send()
    };
    let response = post("cron", "", "0 2 * *").await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("hx-redirect").is_none());
    let html = response.text().await.unwrap();
    let slot = html
        .split("id=\"err-schedule\"")
        .nth(1)
        .expect("the schedule slot is set");
    assert!(
        slot.contains("4 fields") && slot.contains("0 2 * * *"),
        "{html}"
    );
    assert!(s.store.list_sources().unwrap().is_empty());

    let response = post("cron", "60", "0 2 * * *").await.unwrap();
    assert!(response.headers().get("hx-redirect").is_some(), "saved");
    assert_eq!(
        s.store.source("nightly").unwrap().config["schedule"],
        json!({"cron": "0 2 * * *"}),
        "the chosen kind wins over the other field"
    );
    let page = s
        .http
        .get(s.url("/sources"))
        .header("cookie", cookie.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("cron 0 2 * * * (UTC)"), "{page}");
    sandbox.shutdown().await;
}

/// A sandbox slow enough that a run of conversations and messages lasts a few seconds.
async fn slow_sandbox() -> drift_sandbox::SandboxHandle {
    drift_sandbox::start(drift_sandbox::SandboxConfig {
        port: 0,
        conversations: 60,
        messages_per_conversation: 2,
        latency_ms: 100,
        rate_limit_per_min: 0,
        ..Default::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_starts_of_one_source_give_one_run_and_a_409_naming_it() {
    let sandbox = slow_sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("Sandbox", &sandbox.token(), &sandbox.base_url())
        .await;
    let source: serde_json::Value = s
        .post("/api/v1/sources")
        .json(&json!({"name": "crm", "credential": "sandbox", "streams": ["conversations", "messages"],
            "mode": "full", "sink": sink(&s, "crm.db")}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = source["id"].as_str().unwrap().to_string();
    let first = s
        .post(&format!("/api/v1/sources/{id}/run"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 202);
    let run: serde_json::Value = first.json().await.unwrap();
    let run_id = run["id"].as_str().unwrap().to_string();

    let second = s
        .post(&format!("/api/v1/sources/{id}/run"))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(second, 409, "already-running").await;
    assert_eq!(problem["run_id"], run_id.as_str(), "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains(&run_id),
        "{problem}"
    );
    // The source's page disables Run now meanwhile.
    let cookie = crate::access::login(&s).await;
    let page = s
        .http
        .get(s.url(&format!("/sources/{id}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"run-now\" disabled"), "{page}");
    assert!(page.contains(&run_id));

    wait_run(&s, &run_id).await;
    let runs = s.store.list_runs(20).unwrap();
    assert_eq!(runs.len(), 1, "exactly one run: {runs:?}");
    // Once it ended, the source starts again and Run now is back.
    let page = s
        .http
        .get(s.url(&format!("/sources/{id}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("id=\"run-now\" disabled"), "{page}");
    let third = s
        .post(&format!("/api/v1/sources/{id}/run"))
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), 202);
    let third: serde_json::Value = third.json().await.unwrap();
    wait_run(&s, third["id"].as_str().unwrap()).await;
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_scheduled_start_while_the_source_runs_elsewhere_is_skipped_and_recorded() {
    let (sandbox, s) = with_credential().await;
    let body = json!({"name": "hourly", "credential": "Sandbox", "streams": ["users"],
        "sink": sink(&s, "h.db"), "schedule": {"every_minutes": 60}});
    let source: serde_json::Value = s
        .post("/api/v1/sources")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = source["id"].as_str().unwrap();
    // Another process (here: another store on the same data directory) runs the source.
    let other = store::Store::open(s.store.data_dir()).unwrap();
    let running = other
        .insert_run_exclusive(
            &store::NewRun {
                credential: "Sandbox".into(),
                destination: "sqlite:elsewhere.db".into(),
                mode: "incremental".into(),
                streams: vec!["users".into()],
                flow: Some("hourly".into()),
                trigger: store::Trigger::Manual,
            },
            &flows::single::source_key(id),
            "data source \"hourly\"",
        )
        .unwrap();

    // Due an hour later, while it still runs.
    let now = chrono::Utc::now().timestamp_millis() + 61 * 60_000;
    assert!(
        flows::schedule::run_due(&s.state.flows, now).is_empty(),
        "a running source is not started again"
    );
    let runs = s.store.list_runs(20).unwrap();
    let skipped: Vec<_> = runs.iter().filter(|r| r.status == "skipped").collect();
    assert_eq!(skipped.len(), 1, "{runs:?}");
    assert_eq!(skipped[0].flow.as_deref(), Some("hourly"));
    assert!(
        skipped[0].error.as_deref().unwrap().contains(&running),
        "{:?}",
        skipped[0]
    );
    // The API lists it, and the next tick does not skip again.
    let listed: serde_json::Value = s
        .get("/api/v1/runs")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed.to_string().contains("skipped"), "{listed}");
    assert!(flows::schedule::run_due(&s.state.flows, now + 15_000).is_empty());
    assert_eq!(
        s.store
            .list_runs(20)
            .unwrap()
            .iter()
            .filter(|r| r.status == "skipped")
            .count(),
        1
    );

    // Once it ended, the next due time starts a run.
    other
        .finish_run(&running, "succeeded", &json!({}), None)
        .unwrap();
    let started = flows::schedule::run_due(&s.state.flows, now + 61 * 60_000);
    assert_eq!(started.len(), 1);
    wait_run(&s, &started[0]).await;
    sandbox.shutdown().await;
}

/// A data source's schema contract and history mode (issue 19): stored, shown, changed by
/// PATCH, and a run in history mode keeps the versions columns; an unknown contract is a
/// 422 naming the field.
#[tokio::test]
async fn schema_contract_and_history_are_kept_and_used_by_runs() {
    let (_sandbox, s) = with_credential().await;
    let db = s.store.data_dir().join("sinks").join("history.db");
    let created: serde_json::Value = s
        .post("/api/v1/sources")
        .json(&json!({"name": "hist", "credential": "sandbox", "streams": ["contacts", "conversations"],
            "mode": "full", "sink": format!("sqlite:{}", db.display()),
            "schema_contract": "freeze", "history": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["schema_contract"], "freeze", "{created}");
    assert_eq!(created["history"], true);
    let id = created["id"].as_str().unwrap().to_string();
    let patched: serde_json::Value = s
        .req(Method::PATCH, &format!("/api/v1/sources/{id}"))
        .json(&json!({"schema_contract": "discard"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["schema_contract"], "discard", "{patched}");
    assert_eq!(patched["history"], true);

    let started = s.post_json(&format!("/api/v1/sources/{id}/run")).await;
    let run = wait_run(&s, started["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let c = rusqlite::Connection::open(&db).unwrap();
    let open: i64 = c
        .query_row(
            "SELECT count(*) FROM contacts WHERE _valid_to IS NULL AND _active = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(open > 0, "history mode: every contact has its open version");

    let response = s
        .post("/api/v1/sources")
        .json(
            &json!({"name": "bad", "credential": "sandbox", "streams": ["contacts"],
            "schema_contract": "loose"}),
        )
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert!(body.to_string().contains("schema_contract"), "{body}");
}

#[tokio::test]
async fn a_sink_is_tested_before_it_is_saved() {
    let s = TestServer::start().await;
    let ok_path = s.store.data_dir().join("sinks").join("tested.db");
    let body = s
        .post("/api/v1/sinks/test")
        .json(&serde_json::json!({"sink": format!("sqlite:{}", ok_path.display())}))
        .send()
        .await
        .unwrap();
    assert_eq!(body.status(), 200);
    let body: serde_json::Value = body.json().await.unwrap();
    assert_eq!(body["ok"], true, "{body}");

    // Inside the data directory: refused before anything is opened.
    let inside = s.store.data_dir().join("mine.db");
    let response = s
        .post("/api/v1/sinks/test")
        .json(&serde_json::json!({"sink": format!("sqlite:{}", inside.display())}))
        .send()
        .await
        .unwrap();
    let problem = crate::common::assert_problem(response, 422, "validation").await;
    assert_eq!(problem["errors"][0]["field"], "sink", "{problem}");

    // PostgreSQL on a port nothing listens on (or a build without PostgreSQL): 503 saying
    // why, never the password.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let response = s
        .post("/api/v1/sinks/test")
        .json(&serde_json::json!({"sink": format!("postgres://u:sink-pass-9876@127.0.0.1:{port}/test")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let text = response.text().await.unwrap();
    assert!(!text.contains("sink-pass-9876"), "{text}");
    assert!(text.contains("127.0.0.1"), "{text}");
}

#[tokio::test]
async fn sources_pause_resume_reset_a_stream_and_show_the_next_run() {
    let sandbox = crate::common::sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("sb", &sandbox.token(), &sandbox.base_url())
        .await;
    let db = s.store.data_dir().join("sinks").join("p.db");
    let response = s
        .post("/api/v1/sources")
        .json(&serde_json::json!({"name": "nightly", "credential": "sb",
            "streams": ["conversations", "users"], "sink": format!("sqlite:{}", db.display()),
            "schedule": {"every_minutes": 30}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let view: serde_json::Value = s.get_json("/api/v1/sources/nightly").await;
    assert_eq!(view["paused"], false);
    assert!(view["next_run_at"].as_i64().is_some(), "{view}");

    let paused: serde_json::Value = s
        .req(reqwest::Method::PATCH, "/api/v1/sources/nightly")
        .json(&serde_json::json!({"paused": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(paused["paused"], true);
    assert!(paused["next_run_at"].is_null(), "{paused}");
    // Paused: the scheduler starts nothing even when due.
    let far_future = chrono::Utc::now().timestamp_millis() + 86_400_000;
    assert!(flows::schedule::run_due(&s.state.flows, far_future).is_empty());

    let reset = s
        .post("/api/v1/sources/nightly/reset")
        .json(&serde_json::json!({"stream": "users"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    let reset: serde_json::Value = reset.json().await.unwrap();
    assert_eq!(reset["reset_streams"], serde_json::json!(["users"]));
    let wrong = s
        .post("/api/v1/sources/nightly/reset")
        .json(&serde_json::json!({"stream": "accounts"}))
        .send()
        .await
        .unwrap();
    let problem = crate::common::assert_problem(wrong, 422, "validation").await;
    assert!(
        problem.to_string().contains("conversations, users"),
        "names the streams it reads: {problem}"
    );
    let doc: serde_json::Value = s.get_json("/api/v1/openapi.json").await;
    for path in ["/api/v1/sources/{id}/reset", "/api/v1/sinks/test"] {
        assert!(doc["paths"][path]["post"].is_object(), "{path} documented");
    }
    sandbox.shutdown().await;
}
