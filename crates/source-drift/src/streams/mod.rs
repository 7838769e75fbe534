//! The streams: catalog and dispatch, both from the stream table ([`defs::STREAMS`]). One
//! file per reader; adding a stream is adding one file and one row (see [`defs`]).

mod accounts;
mod compact;
mod conversations;
pub(crate) mod defs;
pub(crate) mod full_refresh;
mod meetings;

use crate::fail::{conclude, StreamMeter};
use crate::Ctx;
use defs::{stream_def, Read, StreamDef, STREAMS};
use sync_core::{Catalog, RunError, StreamStatus, SyncMode};

/// The Drift streams (DESIGN.md §2) with their schemas, primary keys and cursors: one entry
/// per row of the stream table, in its order.
pub fn catalog() -> Catalog {
    Catalog {
        streams: STREAMS.iter().map(StreamDef::stream).collect(),
    }
}

/// Read every selected stream: first those with a reader of their own (one or a few
/// requests each), then the conversations pass. The run is bound by the rate budget either
/// way; in this order the small streams do not queue behind hundreds of message and contact
/// requests. A fatal error (401, rate limited beyond the cap) ends the run.
///
/// `details`: read each conversation in full (`GET /conversations/{id}`) for the arrays list
/// rows lack (participants, tags, playbook; REFERENCE §7.2).
pub(crate) async fn read_all(
    ctx: &Ctx,
    selected: &[(String, SyncMode)],
    details: bool,
) -> Result<(), RunError> {
    let family = conversations::Family::from_selection(selected, details);
    for (name, mode) in selected {
        if let Some(def) = stream_def(name) {
            read_one(ctx, def, *mode).await?;
        }
    }
    match family {
        Some(f) => conversations::run(ctx, &f).await,
        None => Ok(()),
    }
}

/// Read one small stream, counting its requests (pages, retries, 429s, waits) with a meter
/// of its own. A stream of the conversations pass is left to the pass.
async fn read_one(ctx: &Ctx, def: &'static StreamDef, mode: SyncMode) -> Result<(), RunError> {
    if matches!(def.read, Read::ConversationsPass) {
        return Ok(());
    }
    let name = def.name;
    ctx.out.status(name, StreamStatus::Started).await?;
    let (mut meter, client) = StreamMeter::attach(name, &ctx.client);
    let metered = Ctx {
        client,
        config: ctx.config.clone(),
        out: ctx.out.clone(),
        state: ctx.state.clone(),
    };
    let result = match def.read {
        Read::Own(read) => read(&metered, mode).await,
        Read::FullRefresh(fetch) => full_refresh::read(&metered, def, fetch, mode).await,
        Read::ConversationsPass => Ok(()),
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

    #[test]
    fn every_stream_needs_a_scope_and_tombstones_keep_the_key_type() {
        for def in STREAMS {
            assert!(!def.scopes.is_empty(), "{} needs no scope", def.name);
            assert!(std::ptr::eq(stream_def(def.name).unwrap(), def));
        }
        assert!(stream_def("convos").is_none());
        let integer: Vec<_> = STREAMS
            .iter()
            .filter(|d| matches!(d.read, Read::FullRefresh(_)))
            .map(|d| (d.name, d.integer_key()))
            .collect();
        assert_eq!(
            integer,
            [
                ("users", true),
                ("teams", true),
                ("playbooks", true),
                ("contact_attributes", false)
            ]
        );
    }
}
