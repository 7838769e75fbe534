//! `--fixtures DIR`: load a recorded org from JSON files instead of generating one.
//!
//! One file per object kind, each optional: `conversations.json`, `messages.json`,
//! `contacts.json`, `accounts.json`, `users.json`, `teams.json`, `playbooks.json`,
//! `landing_pages.json`, `meetings.json`, `contact_attributes.json`. Each holds a JSON array
//! of objects exactly as Drift sends them, or the Drift response that carries the array
//! (`{"data": [...]}`, `{"data": {"accounts": [...]}}`, `{"data": {"messages": [...]}}`,
//! `{"data": {"properties": [...]}}`), so recorded exports can be dropped in as they are.
//! Records are served as loaded (nulls and absent fields kept). Any other `.json` file is
//! an error, so a misspelt file name is not silently ignored.

use crate::config::SandboxError;
use crate::org::{Message, Obj, Org};
use serde_json::Value;
use std::path::Path;

/// The file names understood in a fixtures directory.
pub const FILES: &[&str] = &[
    "conversations.json",
    "messages.json",
    "contacts.json",
    "accounts.json",
    "users.json",
    "teams.json",
    "playbooks.json",
    "landing_pages.json",
    "meetings.json",
    "contact_attributes.json",
];

fn err(path: &Path, message: impl Into<String>) -> SandboxError {
    SandboxError::Fixtures {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Load an org from `dir`.
pub fn load(dir: &Path) -> Result<Org, SandboxError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| err(dir, format!("cannot read the directory: {e}")))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with(".json") && !FILES.contains(&name.as_str()) {
            return Err(err(
                &entry.path(),
                format!(
                    "unknown fixtures file; expected one of {}",
                    FILES.join(", ")
                ),
            ));
        }
    }
    let mut org = Org {
        conversations: records(dir, "conversations.json")?,
        accounts: records(dir, "accounts.json")?,
        users: records(dir, "users.json")?,
        teams: records(dir, "teams.json")?,
        playbooks: records(dir, "playbooks.json")?,
        landing_pages: records(dir, "landing_pages.json")?,
        meetings: records(dir, "meetings.json")?,
        attributes: records(dir, "contact_attributes.json")?,
        ..Org::default()
    };
    let path = dir.join("contacts.json");
    for c in records(dir, "contacts.json")? {
        let id = c
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| err(&path, "every contact needs an integer `id`"))?;
        org.contacts.insert(id, c);
    }
    let path = dir.join("conversations.json");
    if org
        .conversations
        .iter()
        .any(|c| c.get("id").and_then(Value::as_i64).is_none())
    {
        return Err(err(&path, "every conversation needs an integer `id`"));
    }
    let path = dir.join("accounts.json");
    if org
        .accounts
        .iter()
        .any(|a| a.get("accountId").and_then(Value::as_str).is_none())
    {
        return Err(err(&path, "every account needs a string `accountId`"));
    }
    org.reindex();
    org.reindex_accounts();
    org.messages = vec![Vec::new(); org.conversations.len()];
    let path = dir.join("messages.json");
    for (n, m) in records(dir, "messages.json")?.into_iter().enumerate() {
        let m = Message::from_json(m).map_err(|e| err(&path, format!("message #{n}: {e}")))?;
        let i = *org.conv_pos.get(&m.conversation_id).ok_or_else(|| {
            err(
                &path,
                format!(
                    "message {} refers to conversation {}, which conversations.json lacks",
                    m.id, m.conversation_id
                ),
            )
        })?;
        org.messages[i].push(m);
    }
    for ms in &mut org.messages {
        ms.sort_by_key(|m| m.id);
    }
    org.bump_ids();
    Ok(org)
}

/// The objects of one file (empty when the file is absent).
fn records(dir: &Path, name: &str) -> Result<Vec<Obj>, SandboxError> {
    let path = dir.join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(&path, format!("cannot read: {e}"))),
    };
    let v: Value =
        serde_json::from_str(&text).map_err(|e| err(&path, format!("not valid JSON: {e}")))?;
    let array = unwrap_envelope(v).ok_or_else(|| {
        err(
            &path,
            "expected a JSON array of objects or a Drift response carrying one",
        )
    })?;
    array
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(o) => Ok(o),
            _ => Err(err(&path, format!("item #{i} is not a JSON object"))),
        })
        .collect()
}

fn unwrap_envelope(v: Value) -> Option<Vec<Value>> {
    match v {
        Value::Array(a) => Some(a),
        Value::Object(mut o) => match o.remove("data")? {
            Value::Array(a) => Some(a),
            Value::Object(mut d) => {
                ["accounts", "messages", "properties"]
                    .iter()
                    .find_map(|k| match d.remove(*k) {
                        Some(Value::Array(a)) => Some(a),
                        _ => None,
                    })
            }
            _ => None,
        },
        _ => None,
    }
}
