//! The seeded org is realistic and deliberately awkward (issue 3 "Data").

use crate::common::{config, Sbx};
use drift_sandbox::SandboxConfig;
use serde_json::Value;

/// Every message of the org, via the API.
async fn all_messages(s: &Sbx) -> Vec<Value> {
    let mut out = Vec::new();
    for c in s.all_conversations("limit=100").await {
        let r = s.get(&format!("/conversations/{}/messages", c["id"])).await;
        out.extend(
            r.body["data"]["messages"]
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
    }
    out
}

#[tokio::test]
async fn messages_have_html_unicode_null_and_absent_bodies() {
    let s = Sbx::start(SandboxConfig {
        conversations: 150,
        ..config()
    })
    .await;
    let msgs = all_messages(&s).await;
    let bodies: Vec<&str> = msgs.iter().filter_map(|m| m["body"].as_str()).collect();
    let any = |f: &dyn Fn(&str) -> bool| bodies.iter().any(|b| f(b));
    assert!(any(&|b| b.starts_with("<p>")), "HTML");
    assert!(
        any(&|b| b.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))),
        "CJK"
    );
    assert!(
        any(&|b| b.chars().any(|c| ('\u{0590}'..='\u{06ff}').contains(&c))),
        "right-to-left"
    );
    assert!(any(&|b| b.chars().any(|c| c as u32 >= 0x1F300)), "emoji");
    assert!(msgs.iter().any(|m| m.get("body").is_none()), "absent body");
    assert!(
        msgs.iter().any(|m| m.get("body") == Some(&Value::Null)),
        "null body"
    );
    assert!(msgs.iter().any(|m| m["type"] == "private_note"));
    assert!(msgs.iter().any(|m| m.get("buttons").is_some()));
}

#[tokio::test]
async fn conversations_and_contacts_have_gaps_and_spread_timestamps() {
    let s = Sbx::start(SandboxConfig {
        conversations: 150,
        ..config()
    })
    .await;
    let convs = s.all_conversations("limit=100").await;
    assert!(
        convs.iter().any(|c| c.get("inboxId").is_none()),
        "some rows lack inboxId"
    );
    let times: Vec<i64> = convs
        .iter()
        .map(|c| c["createdAt"].as_i64().unwrap())
        .collect();
    let spread_days = (times.iter().max().unwrap() - times.iter().min().unwrap()) / 86_400_000;
    assert!(
        spread_days > 90,
        "created over months, got {spread_days} days"
    );
    assert!(
        convs
            .windows(2)
            .any(|w| w[0]["updatedAt"] == w[1]["updatedAt"]),
        "updatedAt ties exist"
    );
    let mut null_name = false;
    let mut no_name = false;
    let mut null_external = false;
    for c in convs.iter().take(60) {
        let a = s.get(&format!("/contacts/{}", c["contactId"])).await.body["data"]["attributes"]
            .clone();
        null_name |= a.get("name") == Some(&Value::Null);
        no_name |= a.get("name").is_none();
        null_external |= a.get("externalId") == Some(&Value::Null);
    }
    assert!(null_name && no_name && null_external);
}
