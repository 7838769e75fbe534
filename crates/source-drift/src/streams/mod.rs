//! The streams: catalog and dispatch. One file per reader.

mod accounts;
mod conversations;
pub(crate) mod full_refresh;
mod meetings;

use crate::fail::{conclude, StreamMeter};
use crate::names::*;
use crate::{schemas, Ctx};
use sync_core::{Catalog, RunError, Stream, StreamStatus, SyncMode, WriteMode};

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
        let small = [
            ACCOUNTS,
            USERS,
            TEAMS,
            PLAYBOOKS,
            MEETINGS,
            CONTACT_ATTRIBUTES,
        ]
        .into_iter()
        .find(|s| *s == name.as_str());
        if let Some(name) = small {
            read_one(ctx, name, *mode).await?;
        }
    }
    match family {
        Some(f) => conversations::run(ctx, &f).await,
        None => Ok(()),
    }
}

/// Read one small stream, counting its requests (pages, retries, 429s, waits) with a meter
/// of its own.
async fn read_one(ctx: &Ctx, name: &'static str, mode: SyncMode) -> Result<(), RunError> {
    ctx.out.status(name, StreamStatus::Started).await?;
    let (mut meter, client) = StreamMeter::attach(name, &ctx.client);
    let metered = Ctx {
        client,
        config: ctx.config.clone(),
        out: ctx.out.clone(),
        state: ctx.state.clone(),
    };
    let result = match name {
        ACCOUNTS => accounts::read(&metered, mode).await,
        MEETINGS => meetings::read(&metered, mode).await,
        _ => full_refresh::read(&metered, name, mode).await,
    };
    meter.report(&ctx.out).await?;
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
