//! Users, meetings, teams, playbooks (REFERENCE §7.4–§7.6).

use crate::common::Sbx;
use serde_json::Value;

#[tokio::test]
async fn users_list_get_and_get_many_as_map() {
    let s = Sbx::default().await;
    let r = s.get("/users/list").await;
    let users = r.body["data"].as_array().unwrap().clone();
    assert_eq!(
        users.len() as u64,
        s.counts().await["users"].as_u64().unwrap()
    );
    assert!(users.iter().any(|u| u["bot"] == true) && users.iter().any(|u| u["bot"] == false));
    let id = users[1]["id"].as_i64().unwrap();
    assert_eq!(s.get(&format!("/users/{id}")).await.body["data"], users[1]);
    assert_eq!(s.get("/users/999").await.status, 404);
    let r = s
        .get(&format!(
            "/users?userId={}&userId={id}&userId=5",
            users[0]["id"]
        ))
        .await;
    let map = r.body["data"].as_object().unwrap();
    assert_eq!(map.len(), 2);
    assert_eq!(map[&id.to_string()], users[1]);
    assert_eq!(s.get("/users").await.status, 400);
    let many: String = (1..=21).map(|i| format!("userId={i}&")).collect();
    assert_eq!(s.get(&format!("/users?{many}")).await.status, 400);
}

#[tokio::test]
async fn meetings_in_window_need_both_bounds() {
    let s = Sbx::default().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let month = 30 * 86_400_000;
    let r = s
        .get(&format!(
            "/users/meetings/org?min_start_time={}&max_start_time={now}",
            now - month
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let meetings = r.body["data"].as_array().unwrap();
    assert_eq!(
        meetings.len() as u64,
        s.counts().await["meetings"].as_u64().unwrap()
    );
    assert!(meetings
        .iter()
        .all(|m| m["slotStart"].as_i64().unwrap() >= now - month));
    let r = s
        .get(&format!(
            "/users/meetings/org?min_start_time={}&max_start_time={}",
            now - month,
            now - month + 1
        ))
        .await;
    assert_eq!(r.body["data"], Value::Array(vec![]));
    let r = s.get("/users/meetings/org?min_start_time=1").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["param"], "max_start_time");
}

#[tokio::test]
async fn teams_wrapped_playbooks_bare() {
    let s = Sbx::default().await;
    let teams = s.get("/teams/org").await;
    assert_eq!(teams.body["data"].as_array().unwrap().len(), 3);
    let member = teams.body["data"][0]["members"][0].as_i64().unwrap();
    let mine = s.get(&format!("/teams/users/{member}")).await;
    assert!(mine.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == teams.body["data"][0]["id"]));
    let p = s.get("/playbooks/list").await;
    assert!(p.body.is_array(), "playbooks are a bare array: {}", p.text);
    assert_eq!(p.body.as_array().unwrap().len(), 4);
    assert!(s.get("/playbooks/clp").await.body.is_array());
}
