//! `/api/v1/destinations` saved data destinations: CRUD, validation, running one on an upload,
//! and the scope check before a push writes anything.

use crate::common::{assert_problem, sandbox_counts, TestServer};
use serde_json::{json, Value};

const CSV: &str = "email,full name\nada@example.test,Ada Lovelace\nalan@example.test,Alan Turing\n";

/// A server with credential `Sandbox` for `sandbox`; every answer is checked for the key.
async fn send(s: &TestServer, key: &str, request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert!(!text.contains(key), "the API key is in an answer: {text}");
    let _ = s;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn leads(credential: &str) -> Value {
    json!({"name": "Leads", "description": "CRM export", "credential": credential,
        "object": "contacts", "key": "email", "mapping": {"full name": "name"}})
}

#[tokio::test]
async fn create_list_get_update_replace_and_delete() {
    let s = TestServer::start().await;
    let key = "tok_SAVEDDEST_1a2b3c4d5e6f7a8b";
    let cred = s
        .create_credential("Prod", key, "https://driftapi.com")
        .await;
    let response = s
        .post("/api/v1/destinations")
        .json(&leads("Prod"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let created: Value = response.json().await.unwrap();
    assert!(created["id"].as_str().unwrap().starts_with("dst_"));
    assert_eq!(
        location,
        format!("/api/v1/destinations/{}", created["id"].as_str().unwrap())
    );
    assert_eq!(created["name"], "Leads");
    assert_eq!(created["description"], "CRM export");
    assert_eq!(created["credential"], "Prod");
    assert_eq!(created["object"], "contacts");
    assert_eq!(created["key"], "email");
    assert_eq!(created["mapping"], json!({"full name": "name"}));
    assert_eq!(created["on_duplicate"], "reject");
    assert_eq!(created["include_unmapped"], false);

    let saved = s.store.destination("Leads").unwrap();
    assert_eq!(saved.kind, "drift");
    assert_eq!(
        saved.config["mapping"], "full name=name",
        "the CLI's --map syntax"
    );
    assert_eq!(saved.config["key"], "email");

    let (status, list) = send(&s, key, s.get("/api/v1/destinations")).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, by_id) = send(&s, key, s.get(&location)).await;
    assert_eq!(status, 200);
    assert_eq!(by_id, created);
    let (status, by_name) = send(&s, key, s.get("/api/v1/destinations/leads")).await;
    assert_eq!(status, 200, "names are case-insensitive");
    assert_eq!(by_name["id"], created["id"]);

    let dup = s
        .post("/api/v1/destinations")
        .json(&json!({"name": "LEADS", "credential": "Prod", "object": "accounts"}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(dup, 409, "duplicate-name").await;
    assert!(body["detail"].as_str().unwrap().contains("Leads"), "{body}");

    let (status, patched) = send(
        &s,
        key,
        s.req(reqwest::Method::PATCH, "/api/v1/destinations/Leads")
            .json(&json!({
            "credential": cred["id"], "mapping": {"full name": "name", "tier": "plan:string"},
            "on_duplicate": "first", "description": ""})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        patched["mapping"],
        json!({"full name": "name", "tier": "plan:string"})
    );
    assert_eq!(patched["on_duplicate"], "first");
    assert_eq!(
        patched["description"],
        Value::Null,
        "an empty description removes it"
    );
    assert_eq!(patched["object"], "contacts", "absent fields stay");
    assert_eq!(patched["key"], "email");

    let (status, moved) = send(
        &s,
        key,
        s.req(reqwest::Method::PATCH, "/api/v1/destinations/Leads")
            .json(&json!({"object": "accounts"})),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(
        moved["key"], "domain",
        "a new object without a key takes its default key"
    );

    let (status, replaced) = send(
        &s,
        key,
        s.req(reqwest::Method::PUT, "/api/v1/destinations/Leads")
            .json(&json!({"name": "Leads v2", "credential": "Prod", "object": "timeline"})),
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["name"], "Leads v2");
    assert_eq!(replaced["key"], "contactId");
    assert_eq!(replaced["mapping"], json!({}));
    assert_eq!(replaced["id"], created["id"]);

    let response = s
        .req(reqwest::Method::DELETE, "/api/v1/destinations/Leads%20v2")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_problem(s.get(&location).send().await.unwrap(), 404, "not-found").await;
    assert_problem(
        s.req(reqwest::Method::DELETE, &location)
            .send()
            .await
            .unwrap(),
        404,
        "not-found",
    )
    .await;
}

#[tokio::test]
async fn invalid_destinations_answer_422_naming_each_field() {
    let s = TestServer::start().await;
    s.create_credential("Prod", "tok_abcdefgh12345678", "https://driftapi.com")
        .await;
    let response = s
        .post("/api/v1/destinations")
        .json(&json!({"name": " ", "credential": "Nope", "object": "tickets", "on_duplicate": "sometimes"}))
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
    assert_eq!(fields, ["name", "credential", "object"], "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("destination name"),
        "{body}"
    );

    let response = s
        .post("/api/v1/destinations")
        .json(
            &json!({"name": "x", "credential": "Prod", "object": "contacts", "key": "domain",
            "on_duplicate": "sometimes", "mapping": {"a": "name:colour"}}),
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
    assert_eq!(fields, ["mapping", "key", "on_duplicate"], "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("email or externalId"),
        "{body}"
    );

    let response = s
        .post("/api/v1/destinations")
        .json(&json!({"name": "x", "object": "contacts"}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "credential", "{body}");
    let response = s
        .post("/api/v1/destinations")
        .json(&json!({"name": "x", "credential": "Prod", "object": "contacts", "api_key": "x"}))
        .send()
        .await
        .unwrap();
    assert_problem(response, 422, "validation").await;
    assert!(
        s.store.list_destinations().unwrap().is_empty(),
        "nothing was saved"
    );

    s.post("/api/v1/destinations")
        .json(&json!({"name": "ok", "credential": "Prod", "object": "contacts"}))
        .send()
        .await
        .unwrap();
    let response = s
        .req(reqwest::Method::PATCH, "/api/v1/destinations/ok")
        .json(&json!({"key": "accountId"}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "key");
    assert_eq!(
        s.store.destination("ok").unwrap().config["key"],
        "email",
        "unchanged"
    );
    assert_problem(
        s.req(reqwest::Method::PATCH, "/api/v1/destinations/nope")
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
        404,
        "not-found",
    )
    .await;
    assert_problem(
        s.post("/api/v1/destinations/nope/runs")
            .json(&json!({"upload": "upl_1"}))
            .send()
            .await
            .unwrap(),
        404,
        "not-found",
    )
    .await;
}

#[tokio::test]
async fn a_destination_used_by_a_flow_is_not_deleted() {
    let s = TestServer::start().await;
    s.create_credential("Prod", "tok_abcdefgh12345678", "https://driftapi.com")
        .await;
    s.post("/api/v1/destinations")
        .json(&leads("Prod"))
        .send()
        .await
        .unwrap();
    s.store
        .add_source("crm", "Prod", &["contacts".to_string()])
        .unwrap();
    s.store.add_flow("nightly", "crm", "Leads").unwrap();
    let response = s
        .req(reqwest::Method::DELETE, "/api/v1/destinations/Leads")
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 409, "in-use").await;
    assert_eq!(body["used_by"], json!(["flow \"nightly\""]));
    assert!(s.store.destination("Leads").is_ok());
}

async fn upload(s: &TestServer, csv: &str) -> String {
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
    uploaded["upload"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_saved_destination_runs_on_an_upload() {
    let sandbox = crate::common::sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("Sandbox", &sandbox.token(), &sandbox.base_url())
        .await;
    s.post("/api/v1/destinations")
        .json(&leads("Sandbox"))
        .send()
        .await
        .unwrap();
    let before = sandbox_counts(&sandbox).await["contacts"].as_u64().unwrap();
    let upload = upload(&s, CSV).await;
    let (status, dry) = send(
        &s,
        &sandbox.token(),
        s.post("/api/v1/destinations/Leads/runs")
            .json(&json!({"upload": upload, "dry_run": true})),
    )
    .await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["rows"], 2);
    assert_eq!(
        dry["warnings"],
        json!([]),
        "the sandbox token has every scope"
    );
    assert_eq!(
        sandbox_counts(&sandbox).await["contacts"].as_u64().unwrap(),
        before
    );

    let (status, done) = send(
        &s,
        &sandbox.token(),
        s.post("/api/v1/destinations/leads/runs")
            .json(&json!({"upload": upload})),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["counts"], json!({"created": 2}), "{done}");
    assert_eq!(
        sandbox_counts(&sandbox).await["contacts"].as_u64().unwrap(),
        before + 2
    );
    let run: Value = s
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
    assert_eq!(run["flow"], "Leads", "the run names the destination");
    assert_eq!(run["status"], "succeeded");
    let results = s
        .get(done["results_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(results.status(), 200);

    let body = assert_problem(
        s.post("/api/v1/destinations/Leads/runs")
            .json(&json!({"upload": "upl_0000000000000000"}))
            .send()
            .await
            .unwrap(),
        422,
        "validation",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "upload");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_push_without_the_write_scope_is_refused_before_any_write() {
    let read_only = "tok_READONLY_0f1e2d3c4b5a6978";
    let sandbox = drift_sandbox::start(drift_sandbox::SandboxConfig {
        port: 0,
        conversations: 2,
        accounts: 1,
        users: 1,
        limited_tokens: vec![(
            read_only.to_string(),
            vec!["contact_read".to_string(), "conversation_read".to_string()],
        )],
        ..Default::default()
    })
    .await
    .unwrap();
    let s = TestServer::start().await;
    s.create_credential("ReadOnly", read_only, &sandbox.base_url())
        .await;
    let upload = upload(&s, CSV).await;
    let before = sandbox_counts(&sandbox).await["contacts"].as_u64().unwrap();
    let runs_before = s.store.list_runs(100).unwrap().len();
    let request = |dry_run: bool| {
        json!({"credential": "ReadOnly", "object": "contacts", "upload": upload, "dry_run": dry_run,
            "mapping": {"full name": "name"}})
    };
    let response = s
        .post("/api/v1/destinations/push")
        .json(&request(false))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "credential", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("contact_write"),
        "names the missing scope: {message}"
    );
    assert!(
        message.contains("lacks the scope contact_write "),
        "only the missing one: {message}"
    );
    assert!(
        message.contains("rotate the key"),
        "names the fix: {message}"
    );
    assert_eq!(
        sandbox_counts(&sandbox).await["contacts"].as_u64().unwrap(),
        before
    );
    assert_eq!(
        s.store.list_runs(100).unwrap().len(),
        runs_before,
        "no run was started"
    );
    let log: Value = reqwest::get(format!("{}/__sandbox/stats", sandbox.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let routes: Vec<&String> = log["by_route"].as_object().unwrap().keys().collect();
    assert!(
        routes.iter().all(|r| !r.starts_with("contacts")),
        "no contact request at all, only token info: {routes:?}"
    );

    s.post("/api/v1/destinations")
        .json(&leads("ReadOnly"))
        .send()
        .await
        .unwrap();
    let response = s
        .post("/api/v1/destinations/Leads/runs")
        .json(&json!({"upload": upload}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert!(
        body["detail"].as_str().unwrap().contains("contact_write"),
        "{body}"
    );

    let (status, dry) = send(
        &s,
        read_only,
        s.post("/api/v1/destinations/push").json(&request(true)),
    )
    .await;
    assert_eq!(status, 200, "a dry run may proceed: {dry}");
    let warning = dry["warnings"][0].as_str().unwrap_or_default();
    assert!(
        warning.contains("contact_write") && warning.contains("refused"),
        "{dry}"
    );
    assert_eq!(dry["rows"], 2);
    assert_eq!(
        sandbox_counts(&sandbox).await["contacts"].as_u64().unwrap(),
        before
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn openapi_document_lists_the_saved_destination_routes() {
    let s = TestServer::start().await;
    let doc: Value = s
        .get("/api/v1/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = &doc["paths"]["/api/v1/destinations"];
    assert!(
        list.get("get").is_some() && list.get("post").is_some(),
        "{list}"
    );
    let one = &doc["paths"]["/api/v1/destinations/{name}"];
    for method in ["get", "patch", "put", "delete"] {
        assert!(
            one.get(method).is_some(),
            "openapi lacks {method} /destinations/{{name}}"
        );
    }
    assert!(doc["paths"]["/api/v1/destinations/{name}/runs"]
        .get("post")
        .is_some());
    assert!(doc["components"]["schemas"]
        .get("DestinationView")
        .is_some());
    let schedule = &doc["components"]["schemas"]["Schedule"]["properties"];
    assert!(schedule.get("cron").is_some(), "{schedule}");
}
