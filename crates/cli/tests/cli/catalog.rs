//! CLI tests: `catalog` — every table a sync writes (child tables included) as JSON,
//! Markdown and a dbt `sources.yml` that parses as YAML with primary-key tests; with
//! `--credential`, the org's custom contact attributes; and a sync's contacts and
//! conversation tags as the catalog says.

use crate::util::{Cli, Sandbox, TOKEN};
use rusqlite::Connection;
use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

fn tables(json: &Value) -> Vec<&Value> {
    json["tables"].as_array().unwrap().iter().collect()
}

#[test]
fn dbt_sources_parse_as_yaml_with_every_table_and_primary_key_tests() {
    let cli = Cli::new();
    let catalog = cli.json(&["catalog"]);
    let names: Vec<&str> = tables(&catalog)
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for t in [
        "conversations",
        "conversation_tags",
        "conversation_participants",
        "contacts",
        "contact_tags",
        "messages",
        "message_buttons",
        "accounts",
        "account_custom_properties",
        "team_members",
    ] {
        assert!(names.contains(&t), "{t} in {names:?}");
    }

    let run = cli.run(&["catalog", "--format", "dbt"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let docs =
        YamlLoader::load_from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    let doc = &docs[0];
    assert_eq!(doc["version"].as_i64(), Some(2));
    let source = &doc["sources"][0];
    assert_eq!(source["name"].as_str(), Some("drift"));
    assert_eq!(source["schema"].as_str(), Some("drift"));
    let dbt_tables = source["tables"].as_vec().unwrap();
    assert_eq!(dbt_tables.len(), names.len(), "every table");
    for (table, info) in dbt_tables.iter().zip(tables(&catalog)) {
        let name = table["name"].as_str().unwrap();
        assert_eq!(name, info["name"].as_str().unwrap());
        let pk: Vec<&str> = info["primary_key"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        let columns = table["columns"].as_vec().unwrap();
        for key in &pk {
            let column = columns
                .iter()
                .find(|c| c["name"].as_str() == Some(key))
                .unwrap_or_else(|| panic!("{name}.{key} listed"));
            let tests: Vec<&str> = column["tests"]
                .as_vec()
                .unwrap()
                .iter()
                .filter_map(Yaml::as_str)
                .collect();
            assert!(tests.contains(&"not_null"), "{name}.{key}: {tests:?}");
            // A single-column key is unique; each column of a composite one is not.
            assert_eq!(
                tests.contains(&"unique"),
                pk.len() == 1,
                "{name}.{key}: {tests:?}"
            );
        }
        assert!(columns.iter().any(|c| c["name"].as_str() == Some("_raw")));
    }
    // PostgreSQL keeps a mixed-case name only quoted: dbt is told to quote it.
    let accounts = dbt_tables
        .iter()
        .find(|t| t["name"].as_str() == Some("accounts"))
        .unwrap();
    let key = accounts["columns"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str() == Some("accountId"))
        .unwrap();
    assert_eq!(key["quote"].as_bool(), Some(true));

    let md = cli.run(&[
        "catalog",
        "--streams",
        "conversations,conversation_tags",
        "--format",
        "markdown",
    ]);
    assert_eq!(md.code, 0, "{}", md.stderr);
    assert!(
        md.stdout.contains("## `conversation_tags`"),
        "{}",
        md.stdout
    );
    assert!(md.stdout.contains("| `tag` | string |"), "{}", md.stdout);
    // Tags cost a request per conversation: naming the parent alone leaves them out.
    let md = cli.run(&[
        "catalog",
        "--streams",
        "conversations",
        "--format",
        "markdown",
    ]);
    assert_eq!(md.code, 0, "{}", md.stderr);
    assert!(
        !md.stdout.contains("## `conversation_tags`"),
        "{}",
        md.stdout
    );
    let bad = cli.run(&["catalog", "--streams", "tickets"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("--streams"), "{}", bad.stderr);
}

#[test]
fn a_credential_adds_custom_attributes_and_a_sync_fills_them() {
    let sandbox = Sandbox::builder()
        .conversations(40)
        .rate_limit_per_min(0)
        .start();
    let cli = Cli::on(&sandbox);
    cli.add_credential_at("t", TOKEN, 600);
    let without = cli.json(&["catalog", "--streams", "contacts"]);
    let with = cli.json(&["catalog", "--streams", "contacts", "--credential", "t"]);
    let columns = |v: &Value| -> Vec<String> {
        v["tables"][0]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(columns(&without).contains(&"email".to_owned()));
    assert!(!columns(&without).contains(&"plan_tier".to_owned()));
    for c in [
        "plan_tier",
        "seats",
        "beta_opt_in",
        "renewal_date",
        "renewal_date_iso",
    ] {
        assert!(columns(&with).contains(&c.to_owned()), "{c}");
    }
    let renamed = &with["tables"][0]["renamed"];
    assert_eq!(renamed[0]["key"], "_end_user_version");
    assert_eq!(renamed[0]["column"], "_end_user_version_2");

    let run = cli.sync(&["--streams", "all"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let c = Connection::open(cli.db()).unwrap();
    let emails: i64 = c
        .query_row(
            "SELECT count(*) FROM contacts WHERE email LIKE '%@%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(emails > 0);
    let want: i64 = {
        let mut stmt = c.prepare("SELECT _raw FROM conversations").unwrap();
        let raws: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        raws.iter()
            .map(|r| {
                serde_json::from_str::<Value>(r).unwrap()["conversationTags"]
                    .as_array()
                    .map_or(0, |a| a.len() as i64)
            })
            .sum()
    };
    let got: i64 = c
        .query_row("SELECT count(*) FROM conversation_tags", [], |r| r.get(0))
        .unwrap();
    assert!(want > 0);
    assert_eq!(got, want);
}

/// Tags and participants cost one `GET /conversations/{id}` per conversation: a run reads
/// them when it selects them (by name or `all`); one that names only `conversations` reads
/// the list rows and leaves the two tables as they are.
#[test]
fn conversation_tags_are_read_when_selected_and_left_alone_otherwise() {
    let sandbox = Sandbox::builder()
        .conversations(30)
        .rate_limit_per_min(0)
        .start();
    let cli = Cli::on(&sandbox);
    cli.add_credential_at("t", TOKEN, 600);
    let requests = |sandbox: &Sandbox| sandbox.admin("stats")["requests_total"].as_u64().unwrap();
    let tag_rows = |cli: &Cli| -> i64 {
        Connection::open(cli.db())
            .unwrap()
            .query_row("SELECT count(*) FROM conversation_tags", [], |r| r.get(0))
            .unwrap_or(-1)
    };

    let before = requests(&sandbox);
    let run = cli.sync(&["--mode", "full", "--streams", "conversations"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plain = requests(&sandbox) - before;
    assert_eq!(
        tag_rows(&cli),
        -1,
        "no conversation_tags table without selecting it"
    );

    let before = requests(&sandbox);
    let run = cli.sync(&[
        "--mode",
        "full",
        "--streams",
        "conversations,conversation_tags",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let full = requests(&sandbox) - before;
    assert_eq!(
        full,
        plain + 30,
        "one GET /conversations/{{id}} per conversation"
    );
    let tags = tag_rows(&cli);
    assert!(tags > 0);

    // A later run without the child table leaves its rows alone.
    let run = cli.sync(&["--mode", "full", "--streams", "conversations"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(tag_rows(&cli), tags);
}
