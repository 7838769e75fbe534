//! The streams: catalog and dispatch. One file per reader.

mod accounts;
mod conversations;
pub(crate) mod full_refresh;
mod meetings;

use crate::fail::conclude;
use crate::names::*;
use crate::{schemas, Ctx};
use sync_core::{Catalog, RequestMetrics, RunError, Stream, StreamStatus, SyncMode, WriteMode};

fn stream(
    name: &str,
    json_schema: serde_json::Value,
    primary_key: &str,
    cursor: Option<&str>,
    write_mode: WriteMode,
) -> Stream {
    Stream {
        name: name.to_owned(),
        json_schema,
        primary_key: vec![primary_key.to_owned()],
        cursor_field: cursor.map(str::to_owned),
        write_mode,
        index_fields: Vec::new(),
    }
}

/// The Drift streams (DESIGN.md §2) with their schemas, primary keys and cursors.
pub fn catalog() -> Catalog {
    use WriteMode::{Replace, Upsert};
    let mut messages = stream(MESSAGES, schemas::messages(), "id", None, Upsert);
    messages.index_fields = vec!["conversationId".into()];
    let mut conversations = stream(
        CONVERSATIONS,
        schemas::conversations(),
        "id",
        Some("updatedAt"),
        Upsert,
    );
    conversations.index_fields = vec!["contactId".into(), "updatedAt".into()];
    Catalog {
        streams: vec![
            conversations,
            messages,
            stream(CONTACTS, schemas::contacts(), "id", None, Upsert),
            stream(
                ACCOUNTS,
                schemas::accounts(),
                "accountId",
                Some("updateDateTime"),
                Upsert,
            ),
            stream(USERS, schemas::users(), "id", None, Replace),
            stream(TEAMS, schemas::teams(), "id", None, Replace),
            stream(PLAYBOOKS, schemas::playbooks(), "id", None, Replace),
            stream(
                MEETINGS,
                schemas::meetings(),
                "slug",
                Some("updatedAt"),
                Upsert,
            ),
            stream(
                CONTACT_ATTRIBUTES,
                schemas::contact_attributes(),
                "name",
                None,
                Replace,
            ),
        ],
    }
}

/// Read every selected stream: first the small ones (one or a few requests each), then the
/// conversations pass. The run is bound by the rate budget either way; in this order the
/// small streams do not queue behind hundreds of message and contact requests. A fatal
/// error (401, rate limited beyond the cap) ends the run.
pub(crate) async fn read_all(ctx: &Ctx, selected: &[(String, SyncMode)]) -> Result<(), RunError> {
    let family = conversations::Family::from_selection(selected);
    for (name, mode) in selected {
        if ![CONVERSATIONS, MESSAGES, CONTACTS].contains(&name.as_str()) {
            read_one(ctx, name, *mode).await?;
        }
    }
    match family {
        Some(f) => conversations::run(ctx, &f).await,
        None => Ok(()),
    }
}

/// Read one small stream. These run one after the other with nothing else in flight, so the
/// client's counters over the read (requests with retries, 429s, waits) are exactly the
/// stream's own.
async fn read_one(ctx: &Ctx, name: &str, mode: SyncMode) -> Result<(), RunError> {
    ctx.out.status(name, StreamStatus::Started).await?;
    let before = ctx.client.metrics();
    let result = match name {
        ACCOUNTS => accounts::read(ctx, mode).await,
        MEETINGS => meetings::read(ctx, mode).await,
        _ => full_refresh::read(ctx, name, mode).await,
    };
    let after = ctx.client.metrics();
    let delta = RequestMetrics {
        requests: after.requests.saturating_sub(before.requests),
        rate_limited: after.rate_limited.saturating_sub(before.rate_limited),
        retries: after.retries.saturating_sub(before.retries),
        wait_ms: u64::try_from(after.wait_time.saturating_sub(before.wait_time).as_millis())
            .unwrap_or(u64::MAX),
    };
    ctx.out.metrics(name, delta).await?;
    conclude(&ctx.out, &[name], result).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stream_has_a_draft07_schema_with_its_keys_and_nullable_fields() {
        let cat = catalog();
        assert_eq!(
            cat.names(),
            [
                "conversations",
                "messages",
                "contacts",
                "accounts",
                "users",
                "teams",
                "playbooks",
                "meetings",
                "contact_attributes"
            ]
        );
        for s in &cat.streams {
            let schema = &s.json_schema;
            assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
            assert_eq!(schema["additionalProperties"], true, "{}", s.name);
            let props = schema["properties"].as_object().unwrap();
            for pk in &s.primary_key {
                assert!(
                    props.contains_key(pk),
                    "{}: primary key {pk} not in schema",
                    s.name
                );
            }
            if let Some(c) = &s.cursor_field {
                assert!(
                    props.contains_key(c),
                    "{}: cursor {c} not in schema",
                    s.name
                );
            }
            for (name, p) in props {
                let types = p["type"].as_array().unwrap();
                assert!(
                    types.contains(&"null".into()),
                    "{}.{name} is not nullable",
                    s.name
                );
            }
        }
        assert_eq!(
            cat.get("messages").unwrap().index_fields,
            ["conversationId"]
        );
        assert_eq!(cat.get("accounts").unwrap().primary_key, ["accountId"]);
    }
}
