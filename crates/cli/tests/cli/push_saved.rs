//! CLI tests: a data destination saved from the REST API runs with `push --destination NAME`,
//! and one saved with `push --save NAME` is listed and run by the API (the same saved shape).

use crate::util::{attr, outcomes, Cli, Sandbox, TOKEN};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

/// `driftbridge serve`'s app, in process, over the CLI's data dir.
struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Api {
    fn start(sandbox: &Sandbox, cli: &Cli) -> Api {
        let store = cli.store();
        let token = server::auth::regenerate_admin_token(&store).unwrap();
        // Like `serve --allow-private-base-urls`: the sandbox is on loopback.
        let state = server::AppState::new(store).allowing_private_base_urls(true);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let base = sandbox.runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(server::serve(listener, state, async {
                let _ = stopped.await;
            }));
            base
        });
        Api {
            base,
            token: token.expose_secret().to_string(),
            http: reqwest::Client::new(),
            stop: Some(stop),
        }
    }

    /// Send a request and return (status, JSON body); the sandbox token never appears.
    fn call(
        &self,
        sandbox: &Sandbox,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        csv: Option<&str>,
    ) -> (u16, Value) {
        sandbox.runtime.block_on(async {
            let mut req = self
                .http
                .request(method, format!("{}{path}", self.base))
                .bearer_auth(&self.token);
            if let Some(body) = body {
                req = req.json(&body);
            }
            if let Some(csv) = csv {
                req = req.header("content-type", "text/csv").body(csv.to_string());
            }
            let response = req.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            assert!(!text.contains(TOKEN), "the key leaked: {text}");
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        })
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[test]
fn a_destination_saved_from_the_api_runs_with_push_destination() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let api = Api::start(&sandbox, &cli);
    let (status, saved) = api.call(
        &sandbox,
        reqwest::Method::POST,
        "/api/v1/destinations",
        Some(
            json!({"name": "api-leads", "credential": "sb", "object": "contacts",
            "mapping": {"mail": "email", "tier": "plan"}, "allow_new_attributes": true}),
        ),
        None,
    );
    assert_eq!(status, 201, "{saved}");
    assert_eq!(saved["key"], "email", "the object's default key is saved");
    let from = cli.write("c.csv", "mail,tier\napi@example.com,gold\n");
    let results = cli.path("r.csv").display().to_string();
    let run = cli.run(&[
        "push",
        "--destination",
        "api-leads",
        "--from",
        &from,
        "--results",
        &results,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(outcomes(&cli.results("r.csv")), vec![(1, "created")]);
    let c = &sandbox.by_email("api@example.com")[0];
    assert_eq!(
        attr(c, "plan"),
        Some(&json!("gold")),
        "the saved mapping was applied"
    );
}

#[test]
fn a_destination_saved_with_push_save_is_listed_and_run_by_the_api() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let from = cli.write("c.csv", "mail,tier\ncli@example.com,gold\n");
    let run = cli.push(
        "contacts",
        &from,
        "s1.csv",
        &[
            "--map",
            "mail=email,tier=plan",
            "--allow-new-attributes",
            "--save",
            "cli-leads",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let api = Api::start(&sandbox, &cli);
    let (status, list) = api.call(
        &sandbox,
        reqwest::Method::GET,
        "/api/v1/destinations",
        None,
        None,
    );
    assert_eq!(status, 200);
    let saved = &list.as_array().unwrap()[0];
    assert_eq!(saved["name"], "cli-leads");
    assert_eq!(saved["credential"], "sb");
    assert_eq!(saved["object"], "contacts");
    assert_eq!(saved["key"], "email");
    assert_eq!(saved["mapping"], json!({"mail": "email", "tier": "plan"}));
    let (status, upload) = api.call(
        &sandbox,
        reqwest::Method::POST,
        "/api/v1/destinations/uploads",
        None,
        Some("mail,tier\ncli@example.com,platinum\n"),
    );
    assert_eq!(status, 201, "{upload}");
    let (status, report) = api.call(
        &sandbox,
        reqwest::Method::POST,
        "/api/v1/destinations/cli-leads/runs",
        Some(json!({"upload": upload["upload"]})),
        None,
    );
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["counts"], json!({"updated": 1}), "{report}");
    let c = &sandbox.by_email("cli@example.com")[0];
    assert_eq!(attr(c, "plan"), Some(&json!("platinum")));
}

/// The `runs list` row of run `id`, split on whitespace.
fn runs_list_row(cli: &Cli, id: &str) -> Vec<String> {
    let list = cli.run(&["runs", "list"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let line = list
        .stdout
        .lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("run {id} not listed: {}", list.stdout));
    line.split_whitespace().map(str::to_string).collect()
}

#[test]
fn push_runs_from_the_cli_and_the_api_show_the_same_counts_everywhere() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let from = cli.write(
        "c.csv",
        "email,name\nrun1@example.com,One\nrun2@example.com,Two\nnot-an-email,Three\n",
    );
    let run = cli.push("contacts", &from, "r.csv", &["--json", "--save", "leads"]);
    assert_eq!(run.code, 5, "one rejected row: {}", run.stderr);
    let printed: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let cli_run = printed["run_id"].as_str().unwrap().to_string();

    // `runs show` and `runs list` read the counts of a CLI push (they showed none before).
    let show = cli.run(&["runs", "show", &cli_run]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert!(
        show.stdout
            .contains("3 rows: 2 created, 0 updated, 0 unchanged, 0 skipped, 1 rejected"),
        "{}",
        show.stdout
    );
    let row = runs_list_row(&cli, &cli_run);
    // ID, date, time, STATUS, CREDENTIAL, MODE, WRITTEN, REQUESTS, DESTINATION
    assert_eq!(
        (row[3].as_str(), row[6].as_str()),
        ("succeeded_with_rejections", "2"),
        "{row:?}"
    );
    assert_eq!(row[7], printed["requests"].to_string(), "{row:?}");

    // The API serves the same stored shape for it.
    let api = Api::start(&sandbox, &cli);
    let path = format!("/api/v1/runs/{cli_run}");
    let (status, record) = api.call(&sandbox, reqwest::Method::GET, &path, None, None);
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["summary"]["counts"]["created"], 2, "{record}");
    assert_eq!(record["summary"]["counts"]["rejected"], 1, "{record}");

    // A push run by the API reads the same in the CLI.
    let (status, upload) = api.call(
        &sandbox,
        reqwest::Method::POST,
        "/api/v1/destinations/uploads",
        None,
        Some("email,name\nrun1@example.com,Uno\n"),
    );
    assert_eq!(status, 201, "{upload}");
    let (status, report) = api.call(
        &sandbox,
        reqwest::Method::POST,
        "/api/v1/destinations/leads/runs",
        Some(json!({"upload": upload["upload"]})),
        None,
    );
    assert_eq!(status, 200, "{report}");
    let api_run = report["run_id"].as_str().unwrap();
    let show = cli.run(&["runs", "show", api_run]);
    assert!(
        show.stdout
            .contains("1 rows: 0 created, 1 updated, 0 unchanged, 0 skipped, 0 rejected"),
        "{}",
        show.stdout
    );
    assert_eq!(runs_list_row(&cli, api_run)[6], "1");
}

#[test]
fn a_saved_push_destination_runs_again_by_name() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let from = cli.write("c.csv", "mail,tier\nsaved@example.com,gold\n");
    let run = cli.push(
        "contacts",
        &from,
        "s1.csv",
        &[
            "--map",
            "mail=email,tier=plan",
            "--allow-new-attributes",
            "--save",
            "crm-leads",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let from2 = cli.write("c2.csv", "mail,tier\nsaved@example.com,platinum\n");
    let results = cli.path("s2.csv").display().to_string();
    let again = cli.run(&[
        "push",
        "--destination",
        "crm-leads",
        "--from",
        &from2,
        "--results",
        &results,
    ]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(outcomes(&cli.results("s2.csv")), vec![(1, "updated")]);
    let c = &sandbox.by_email("saved@example.com")[0];
    assert_eq!(attr(c, "plan"), Some(&json!("platinum")));
}
