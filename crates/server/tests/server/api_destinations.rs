//! `/api/v1/destinations`: upload a CSV, dry run, push into Drift, download the results.

use crate::common::{assert_problem, sandbox, sandbox_counts, TestServer};
use serde_json::json;

const CSV: &str = "email,full name,company\nada@example.test,Ada Lovelace,Engines\nalan@example.test,Alan Turing,Bletchley\nnot-an-email,Nobody,Nowhere\n";

async fn upload(s: &TestServer, csv: &str) -> reqwest::Response {
    s.post("/api/v1/destinations/uploads")
        .header("content-type", "text/csv")
        .body(csv.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn upload_dry_run_push_and_download_the_results() {
    let sandbox = sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("Sandbox", &sandbox.token(), &sandbox.base_url())
        .await;
    let response = upload(&s, CSV).await;
    assert_eq!(response.status(), 201);
    let uploaded: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        uploaded["columns"],
        json!(["email", "full name", "company"])
    );
    let before = sandbox_counts(&sandbox).await["contacts"].as_u64().unwrap();

    let request = |dry_run: bool| {
        json!({"credential": "Sandbox", "object": "contacts", "key": "email",
            "mapping": {"full name": "name", "company": "company"},
            "upload": uploaded["upload"], "dry_run": dry_run, "allow_new_attributes": true})
    };
    let dry: serde_json::Value = s
        .post("/api/v1/destinations/push")
        .json(&request(true))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["rows"], 3, "{dry}");
    assert_eq!(dry["preview"].as_array().unwrap().len(), 3);
    assert!(
        dry["preview"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["reason"].is_string()),
        "dry-run rows say what would be sent: {dry}"
    );
    assert_eq!(
        dry["counts"]["rejected"], 1,
        "the bad email is rejected: {dry}"
    );
    assert_eq!(
        sandbox_counts(&sandbox).await["contacts"].as_u64().unwrap(),
        before,
        "a dry run writes nothing"
    );

    let done: serde_json::Value = s
        .post("/api/v1/destinations/push")
        .json(&request(false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["counts"]["created"], 2, "{done}");
    assert_eq!(done["counts"]["rejected"], 1);
    assert_eq!(
        sandbox_counts(&sandbox).await["contacts"].as_u64().unwrap(),
        before + 2
    );
    let rejected = done["preview"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["outcome"] == "rejected")
        .unwrap();
    assert_eq!(rejected["row"], 3);

    let response = s
        .get(done["results_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let text = response.text().await.unwrap();
    assert_eq!(
        text.lines().count(),
        4,
        "a header and one line per input row: {text}"
    );
    assert!(text.contains("ada@example.test") && text.contains("created"));
    let run: serde_json::Value = s
        .get(&format!(
            "/api/v1/runs/{}",
            done["run_id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(run["status"], "succeeded_with_rejections");
    assert_eq!(run["mode"], "push");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn bad_push_requests_answer_422_naming_the_field() {
    let s = TestServer::start().await;
    s.create_credential("Prod", "tok_abcdefgh12345678", "https://driftapi.com")
        .await;
    let body = assert_problem(upload(&s, "").await, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "file");
    // A file that is not UTF-8: the error names the file, not where the server keeps it.
    let latin1 = s
        .post("/api/v1/destinations/uploads")
        .header("content-type", "text/csv")
        .body(b"e\xe9mail,name\nete@example.test,Rene\n".to_vec())
        .send()
        .await
        .unwrap();
    let body = assert_problem(latin1, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "file");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("the uploaded file"), "{message}");
    assert!(
        !message.contains("uploads/") && !message.contains("upl_"),
        "{message}"
    );
    // A route without that method: 405 as a problem body, with Allow.
    let put = s
        .req(reqwest::Method::PUT, "/api/v1/credentials")
        .send()
        .await
        .unwrap();
    let allow = put.headers()["allow"].to_str().unwrap().to_string();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let body = assert_problem(put, 405, "method-not-allowed").await;
    assert!(body["detail"].as_str().unwrap().contains("Allow"), "{body}");
    let uploaded: serde_json::Value = upload(&s, CSV).await.json().await.unwrap();
    let push = |body: serde_json::Value| s.post("/api/v1/destinations/push").json(&body).send();
    let response =
        push(json!({"credential": "Prod", "object": "tickets", "upload": uploaded["upload"]}))
            .await
            .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "object");
    let response = push(json!({"credential": "Prod", "object": "contacts", "key": "domain", "upload": uploaded["upload"]})).await.unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "key");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("email or externalId"));
    let response =
        push(json!({"credential": "Prod", "object": "contacts", "upload": "upl_0000000000000000"}))
            .await
            .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "upload");
    let response =
        push(json!({"credential": "Nope", "object": "contacts", "upload": uploaded["upload"]}))
            .await
            .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "credential");
    assert_problem(
        s.get("/api/v1/runs/run_nope/results").send().await.unwrap(),
        404,
        "not-found",
    )
    .await;
    assert_problem(
        s.get("/api/v1/runs/..%2Fx/results").send().await.unwrap(),
        404,
        "not-found",
    )
    .await;
}

#[tokio::test]
async fn a_push_stopped_by_a_401_marks_the_credential_failed() {
    let sandbox = sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("Sandbox", &sandbox.token(), &sandbox.base_url())
        .await;
    let uploaded: serde_json::Value = upload(&s, CSV).await.json().await.unwrap();
    // The key is revoked by the first write (after the scope check and the lookups).
    let fault = json!({"faults": [{"route": "contacts.create", "kind": "revoke_token",
        "status": null, "after_requests": 0, "count": 1, "probability": null, "delay_ms": null}]});
    let set = reqwest::Client::new()
        .post(format!("{}/__sandbox/faults", sandbox.base_url()))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert!(set.status().is_success(), "{}", set.status());
    let done: serde_json::Value = s
        .post("/api/v1/destinations/push")
        .json(
            &json!({"credential": "Sandbox", "object": "contacts", "key": "email",
            "upload": uploaded["upload"]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        done["stopped"].as_str().unwrap_or_default().contains("401"),
        "{done}"
    );
    let run: serde_json::Value = s
        .get(&format!(
            "/api/v1/runs/{}",
            done["run_id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(run["status"], "failed", "{run}");
    let credential: serde_json::Value = s
        .get("/api/v1/credentials/Sandbox")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(credential["status"], "failed", "{credential}");
    assert!(
        credential["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("401"),
        "{credential}"
    );
    sandbox.shutdown().await;
}

/// Issue 21: the REST API push refuses a mapping to an attribute Drift does not have (it
/// would create a new custom attribute) before any row is sent, dry runs too, with the
/// API's fix; an attribute Drift lists and the opt-in pass.
#[tokio::test]
async fn a_push_mapping_a_new_attribute_is_refused_unless_allowed() {
    let sandbox = sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("Sandbox", &sandbox.token(), &sandbox.base_url())
        .await;
    let uploaded: serde_json::Value = upload(&s, "email,tier\nnew-attr@example.test,gold\n")
        .await
        .json()
        .await
        .unwrap();
    let before = sandbox_counts(&sandbox).await["contacts"].as_u64().unwrap();
    let push = |target: &str, dry_run: bool, allow: bool| {
        let body = json!({"credential": "Sandbox", "object": "contacts",
            "mapping": {"tier": target}, "upload": uploaded["upload"], "dry_run": dry_run,
            "allow_new_attributes": allow});
        s.post("/api/v1/destinations/push").json(&body).send()
    };
    for dry_run in [true, false] {
        let problem = assert_problem(
            push("JobTier", dry_run, false).await.unwrap(),
            422,
            "validation",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "mapping", "{problem}");
        let message = problem["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("column \"tier\" -> \"JobTier\""),
            "{message}"
        );
        assert!(
            message.contains("\"allow_new_attributes\": true"),
            "{message}"
        );
        assert!(!message.contains("--allow"), "no CLI wording: {message}");
    }
    let runs: serde_json::Value = s.get_json("/api/v1/runs").await;
    assert_eq!(runs, json!([]), "a refused push records no run");
    assert_eq!(
        sandbox_counts(&sandbox).await["contacts"].as_u64().unwrap(),
        before,
        "nothing was sent"
    );
    let known = push("plan_tier", true, false).await.unwrap();
    assert_eq!(known.status(), 200, "an attribute Drift lists");
    let allowed: serde_json::Value = push("JobTier", false, true)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(allowed["counts"]["created"], 1, "{allowed}");
    let doc: serde_json::Value = s.get_json("/api/v1/openapi.json").await;
    let props = &doc["components"]["schemas"]["PushRequest"]["properties"];
    assert!(props["allow_new_attributes"].is_object(), "{props}");
    sandbox.shutdown().await;
}

/// Issue 21: a saved destination's Run in the web UI first does a dry run and shows its
/// counts with **Write to Drift**; only that button writes. A mapping to a new attribute is
/// refused with the web UI's fix (the checkbox).
#[tokio::test]
async fn the_saved_destination_run_button_confirms_before_writing() {
    let sandbox = sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("Sandbox", &sandbox.token(), &sandbox.base_url())
        .await;
    let mut ids = Vec::new();
    for (name, mapping) in [
        ("Leads", json!({"full name": "name"})),
        ("Tiers", json!({"full name": "JobTier"})),
    ] {
        let created: serde_json::Value = s
            .post("/api/v1/destinations")
            .json(&json!({"name": name, "credential": "Sandbox", "object": "contacts", "mapping": mapping}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    let uploaded: serde_json::Value = upload(&s, CSV).await.json().await.unwrap();
    let upload_id = uploaded["upload"].as_str().unwrap().to_string();
    let before = sandbox_counts(&sandbox).await["contacts"].as_u64().unwrap();
    let cookie = crate::access::login(&s).await;
    let run = |id: &str, form: Vec<(&'static str, String)>| {
        s.http
            .post(s.url(&format!("/ui/destinations/saved/{id}/run")))
            .header("cookie", &cookie)
            .header("origin", s.base.clone())
            .header("hx-request", "true")
            .form(&form)
            .send()
    };
    let form = |extra: &[(&'static str, &str)]| {
        let mut f = vec![("upload", upload_id.clone())];
        f.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        f
    };
    // Run: a dry run and the confirmation step, nothing written.
    let html = run(&ids[0], form(&[("dry_run", "0")]))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"confirm-push\""), "{html}");
    assert!(html.contains("Write to Drift"), "{html}");
    assert!(html.contains("2 would be created"), "{html}");
    assert!(
        html.contains(&format!(
            "hx-post=\"/ui/destinations/saved/{}/run\" hx-include=\"#saved-run-form\"",
            ids[0]
        )),
        "{html}"
    );
    assert_eq!(
        sandbox_counts(&sandbox).await["contacts"].as_u64().unwrap(),
        before,
        "Run wrote before Write to Drift"
    );
    let pushes: serde_json::Value = s.get_json("/api/v1/runs?type=push").await;
    assert_eq!(pushes, json!([]), "only a dry run so far");
    // Write to Drift.
    let html = run(&ids[0], form(&[("dry_run", "0"), ("confirmed", "1")]))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("2 created"), "{html}");
    assert_eq!(
        sandbox_counts(&sandbox).await["contacts"].as_u64().unwrap(),
        before + 2
    );
    // A saved mapping to an attribute Drift does not have: the web UI's fix. (The real run
    // used up the upload.)
    let again: serde_json::Value = upload(&s, CSV).await.json().await.unwrap();
    let form = vec![
        ("upload", again["upload"].as_str().unwrap().to_string()),
        ("dry_run", "0".to_string()),
    ];
    let html = run(&ids[1], form).await.unwrap().text().await.unwrap();
    assert!(html.contains("Allow new custom attributes"), "{html}");
    assert!(!html.contains("confirm-push"), "{html}");
    assert!(!html.contains("--allow"), "{html}");
    sandbox.shutdown().await;
}
