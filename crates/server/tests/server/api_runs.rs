//! Runs started from the API go through the same application layer as the CLI's: a push
//! keeps the push ledger and counts its metrics, and every run has a log
//! (`GET /api/v1/runs/{id}/logs`) holding its events and its warnings.

use crate::common::{wait_run, TestServer};
use serde_json::{json, Value};

/// Sandbox admin route `path` (`stats`, ...).
async fn admin(sandbox: &drift_sandbox::SandboxHandle, path: &str) -> Value {
    reqwest::get(format!("{}/__sandbox/{path}", sandbox.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Timeline events Drift received so far.
async fn timeline_posts(sandbox: &drift_sandbox::SandboxHandle) -> u64 {
    admin(sandbox, "stats").await["by_route"]["contacts.timeline"]
        .as_u64()
        .unwrap_or(0)
}

/// A contact id of the sandbox's org (of its newest conversation).
async fn a_contact_id(sandbox: &drift_sandbox::SandboxHandle) -> i64 {
    let page: Value = reqwest::Client::new()
        .get(format!("{}/conversations/list?limit=5", sandbox.base_url()))
        .bearer_auth(sandbox.token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["data"][0]["contactId"].as_i64().unwrap()
}

/// Upload `csv` and push it as timeline events; returns the push report.
async fn push_timeline(s: &TestServer, csv: &str) -> Value {
    let uploaded: Value = s
        .post("/api/v1/destinations/uploads")
        .header("content-type", "text/csv")
        .body(csv.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = s
        .post("/api/v1/destinations/push")
        .json(&json!({"credential": "Sandbox", "object": "timeline", "upload": uploaded["upload"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn metrics(s: &TestServer) -> String {
    s.get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the series `series` (name and labels as rendered) in `text`; 0 if absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_timeline_csv_pushed_twice_from_the_api_sends_each_event_once() {
    let sandbox = crate::common::sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("Sandbox", &sandbox.token(), &sandbox.base_url())
        .await;
    let contact = a_contact_id(&sandbox).await;
    let csv = format!(
        "contactId,event\n{contact},Signed up for the webinar\n{contact},Downloaded the report\n{contact},Asked for a demo\n"
    );
    let before = timeline_posts(&sandbox).await;
    let rows_before = metrics(&s).await;

    let first = push_timeline(&s, &csv).await;
    assert_eq!(first["counts"]["created"], 3, "{first}");
    assert_eq!(timeline_posts(&sandbox).await - before, 3);

    // The same rows uploaded again (a new upload, as a user re-running it would make).
    let second = push_timeline(&s, &csv).await;
    assert_eq!(
        timeline_posts(&sandbox).await - before,
        3,
        "the second push sent events again: {second}"
    );
    assert_eq!(second["counts"].get("created"), None, "{second}");
    assert_eq!(second["counts"]["unchanged"], 3, "{second}");
    for row in second["preview"].as_array().unwrap() {
        assert!(
            row["reason"].as_str().unwrap().contains("already sent"),
            "{row}"
        );
    }

    // Counted under the names every push counts with (flows::metrics), as a CLI push is.
    let after = metrics(&s).await;
    for name in flows::metrics::PUSH_RUN_METRICS {
        assert!(
            after.contains(name),
            "{name} missing from /metrics:\n{after}"
        );
    }
    let series = |outcome: &str| {
        format!("driftbridge_push_rows_total{{object=\"timeline\",outcome=\"{outcome}\"}}")
    };
    for (outcome, n) in [("created", 3.0), ("unchanged", 3.0)] {
        assert!(
            value(&after, &series(outcome)) - value(&rows_before, &series(outcome)) >= n,
            "{outcome}:\n{after}"
        );
    }
    let started = "driftbridge_runs_started_total{kind=\"push\"}";
    assert!(value(&after, started) - value(&rows_before, started) >= 2.0);
    assert!(after.contains("driftbridge_drift_requests_total{credential=\"Sandbox\"}"));

    // Each push has a log naming its object and how it ended.
    let logs: Value = s
        .get(&format!(
            "/api/v1/runs/{}/logs",
            second["run_id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = logs["lines"].to_string();
    assert!(text.contains("push started: timeline"), "{logs}");
    assert!(text.contains("push succeeded"), "{logs}");
    assert!(
        !text.contains(&sandbox.token()),
        "the run log holds the key"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_server_syncs_retry_warning_is_in_its_run_log() {
    let sandbox = crate::common::sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("Sandbox", &sandbox.token(), &sandbox.base_url())
        .await;
    let sink = format!(
        "sqlite:{}",
        s.store.data_dir().join("sinks").join("users.db").display()
    );
    let created = s
        .post("/api/v1/sources")
        .json(
            &json!({"name": "people", "credential": "Sandbox", "streams": ["users"],
            "mode": "full", "sink": sink}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let faults =
        json!({"faults": [{"route": "users.list", "kind": "status", "status": 503, "count": 1}]});
    reqwest::Client::new()
        .post(format!("{}/__sandbox/faults", sandbox.base_url()))
        .json(&faults)
        .send()
        .await
        .unwrap();
    let run: Value = s.post_json("/api/v1/sources/people/run").await;
    let id = run["id"].as_str().unwrap().to_string();
    let run = wait_run(&s, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");

    let logs: Value = s.get_json(&format!("/api/v1/runs/{id}/logs")).await;
    let lines = logs["lines"].as_array().unwrap();
    let retry = lines
        .iter()
        .find(|l| l["level"] == "WARN" && l["message"].as_str().unwrap().contains("retrying"))
        .unwrap_or_else(|| panic!("no retry warning in the run's log: {logs}"));
    assert_eq!(retry["fields"]["route"], "users.list", "{retry}");
    assert!(lines.iter().any(|l| l["message"]
        .as_str()
        .unwrap()
        .starts_with("stream users succeeded")));
    assert_eq!(logs["status"], "succeeded");
    // The file of the run id holds it, and tailing after the last line gives nothing new.
    let file = s.store.data_dir().join("runs").join(format!("{id}.log"));
    assert!(std::fs::read_to_string(file).unwrap().contains("retrying"));
    let next = logs["next"].as_u64().unwrap();
    assert_eq!(next as usize, lines.len());
    let tail: Value = s
        .get_json(&format!("/api/v1/runs/{id}/logs?after={next}"))
        .await;
    assert_eq!(tail["lines"], json!([]));
    assert_eq!(tail["next"], next);
    let unknown = s.get("/api/v1/runs/run_nope/logs").send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    let doc: Value = s.get_json("/api/v1/openapi.json").await;
    let params = doc["paths"]["/api/v1/runs/{id}/logs"]["get"]["parameters"].to_string();
    assert!(
        params.contains("\"after\""),
        "the logs route in OpenAPI: {params}"
    );
    // The run page shows the log.
    let cookie = crate::access::login(&s).await;
    let page = s
        .http
        .get(s.url(&format!("/runs/{id}")))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"run-log\""), "{page}");
    assert!(page.contains("retrying a request to users.list"), "{page}");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn runs_are_typed_and_filtered_by_type_status_and_source() {
    let sandbox = crate::common::sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("sb", &sandbox.token(), &sandbox.base_url())
        .await;
    let db = s.store.data_dir().join("sinks").join("f.db");
    let created = s
        .post("/api/v1/sources")
        .json(&serde_json::json!({"name": "typed", "credential": "sb",
            "streams": ["users"], "sink": format!("sqlite:{}", db.display())}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let started: serde_json::Value = s.post_json("/api/v1/sources/typed/run").await;
    let id = started["id"].as_str().unwrap().to_string();
    assert_eq!(started["type"], "sync", "{started}");
    crate::common::wait_run(&s, &id).await;
    let listed: serde_json::Value = s
        .get_json("/api/v1/runs?type=sync&status=succeeded&source=TYPED")
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], id.as_str());
    for query in ["type=push", "type=dry_run", "status=failed", "source=other"] {
        let none: serde_json::Value = s.get_json(&format!("/api/v1/runs?{query}")).await;
        assert_eq!(none, serde_json::json!([]), "{query}");
    }
    let bad = s.get("/api/v1/runs?type=bogus").send().await.unwrap();
    let problem = crate::common::assert_problem(bad, 422, "validation").await;
    assert_eq!(problem["errors"][0]["field"], "type", "{problem}");
    let doc: serde_json::Value = s.get_json("/api/v1/openapi.json").await;
    let params: Vec<String> = doc["paths"]["/api/v1/runs"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    for name in ["type", "status", "source", "destination"] {
        assert!(params.contains(&name.to_string()), "{name}: {params:?}");
    }
    sandbox.shutdown().await;
}

/// Issue 21: each run says what started it. A run the scheduler starts is `schedule` (API
/// view, `?trigger=` filter, runs table and run page); a run now is `manual`.
#[tokio::test]
async fn a_scheduled_run_is_labelled_schedule_and_a_run_now_manual() {
    let sandbox = crate::common::sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("sb", &sandbox.token(), &sandbox.base_url())
        .await;
    let db = s.store.data_dir().join("sinks").join("t.db");
    let created = s
        .post("/api/v1/sources")
        .json(&serde_json::json!({"name": "hourly", "credential": "sb",
            "streams": ["users"], "sink": format!("sqlite:{}", db.display()),
            "schedule": {"every_minutes": 60}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let now = chrono::Utc::now().timestamp_millis();
    let started = flows::schedule::run_due(&s.state.flows, now);
    assert_eq!(started.len(), 1);
    let scheduled = crate::common::wait_run(&s, &started[0]).await;
    assert_eq!(scheduled["trigger"], "schedule", "{scheduled}");
    let manual: Value = s.post_json("/api/v1/sources/hourly/run").await;
    assert_eq!(manual["trigger"], "manual", "{manual}");
    let manual_id = manual["id"].as_str().unwrap().to_string();
    crate::common::wait_run(&s, &manual_id).await;

    let only = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    let by_schedule: Value = s.get_json("/api/v1/runs?trigger=schedule").await;
    assert_eq!(only(&by_schedule), [started[0].clone()]);
    let by_hand: Value = s
        .get_json("/api/v1/runs?trigger=manual&source=hourly")
        .await;
    assert_eq!(only(&by_hand), std::slice::from_ref(&manual_id));
    let bad = s.get("/api/v1/runs?trigger=cron").send().await.unwrap();
    let problem = crate::common::assert_problem(bad, 422, "validation").await;
    assert_eq!(problem["errors"][0]["field"], "trigger", "{problem}");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("manual, schedule"),
        "{problem}"
    );
    let doc: Value = s.get_json("/api/v1/openapi.json").await;
    let params = doc["paths"]["/api/v1/runs"]["get"]["parameters"].to_string();
    assert!(params.contains("\"trigger\""), "{params}");
    assert!(
        doc["components"]["schemas"]["RunView"]["properties"]["trigger"].is_object(),
        "RunView.trigger in OpenAPI"
    );

    // The web UI: a label next to the type in the runs table and on the run page.
    let cookie = crate::access::login(&s).await;
    let page = |path: String| {
        let cookie = cookie.clone();
        let request = s.http.get(s.url(&path)).header("cookie", cookie);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let table = page("/runs?trigger=schedule".into()).await;
    assert!(table.contains(&started[0]), "{table}");
    assert!(!table.contains(&manual_id), "filtered out: {table}");
    assert!(
        table.contains("data-trigger=\"schedule\">Scheduled<"),
        "{table}"
    );
    let run_page = page(format!("/runs/{}", started[0])).await;
    assert!(
        run_page.contains(
            "id=\"run-trigger\" class=\"badge badge-trigger badge-trigger-schedule\">Scheduled<"
        ),
        "{run_page}"
    );
    let run_page = page(format!("/runs/{manual_id}")).await;
    assert!(
        run_page.contains("badge-trigger-manual\">Manual<"),
        "{run_page}"
    );
    sandbox.shutdown().await;
}
