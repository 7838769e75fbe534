//! The analyst-ready shapes of the Drift streams (issue 19): contacts' `attributes`
//! flattened into one column per attribute, and the arrays written as child tables. The
//! stream table ([`crate::STREAMS`]) names them; sinks and the catalog derive tables from
//! the [`sync_core::Stream`] they end up in.
//!
//! Contact attributes (REFERENCE §7.1): the standard keys Drift sends are always columns;
//! the org's custom attributes come from `GET /contacts/attributes` (needs
//! `all_contact_read`) at the start of a run ([`with_contact_attributes`]), typed from
//! their `type`: `STRING` -> text, `NUMERIC` -> number, `BOOLEAN` -> boolean, `DATE` and
//! `DATETIME` -> epoch milliseconds with a timestamp twin, any other type -> JSON text.

use serde_json::{json, Map, Value};
use sync_core::{ChildColumn, ChildTable, Flatten, Stream, EPOCH_MS_FORMAT};

/// The object field of a contact whose keys become columns.
pub const CONTACT_ATTRIBUTES_FIELD: &str = "attributes";

fn string(description: &str) -> Value {
    json!({"type": ["null", "string"], "description": description})
}

fn integer(description: &str) -> Value {
    json!({"type": ["null", "integer"], "description": description})
}

fn millis(description: &str) -> Value {
    json!({"type": ["null", "integer"], "format": EPOCH_MS_FORMAT,
        "description": format!("{description} (Unix epoch milliseconds)")})
}

fn json_value(description: &str) -> Value {
    json!({"description": description})
}

/// The standard contact attributes (REFERENCE §7.1 "Common attribute keys"), key ->
/// JSON Schema. They are columns of `contacts` whether or not a record has them.
pub fn standard_contact_attributes() -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    put("email", string("Email address"));
    put("name", string("Full name"));
    put("first_name", string("First name"));
    put("phone", string("Phone number"));
    put(
        "externalId",
        string("Your system's id for the contact (null when unset)"),
    );
    put(
        "tags",
        json_value("Contact tags as Drift sent them (also in contact_tags)"),
    );
    put("events", json_value("Drift event summary (JSON)"));
    put("socialProfiles", json_value("Social profiles (JSON)"));
    put("start_date", millis("First seen"));
    put("last_active", millis("Last active"));
    put("last_contacted", millis("Last contacted"));
    put("_END_USER_VERSION", integer("Drift's record version"));
    put(
        "_end_user_version",
        integer("Drift's record version (lower-case twin)"),
    );
    put("_calculated_version", integer("Drift's calculated version"));
    put(
        "_classification",
        string("Drift's classification, e.g. Engaged"),
    );
    put("ip", string("Comma-separated IP addresses"));
    put("original_ip", string("Comma-separated first IP addresses"));
    for page in [
        "original_entrance_page",
        "recent_entrance_page",
        "original_conversation_started_page",
        "recent_conversation_started_page",
    ] {
        put(&format!("{page}_url"), string("Page URL"));
        put(&format!("{page}_title"), string("Page title"));
    }
    put("original_referer_url", string("First referrer URL"));
    put("recent_referer_url", string("Latest referrer URL"));
    put("recent_source", string("Latest traffic source"));
    put("recent_medium", string("Latest traffic medium"));
    put(
        "last_context_location",
        string("Location as a JSON string (city, region, country, ...)"),
    );
    put("employment_name", string("Employer"));
    put("employment_title", string("Job title"));
    put("display_location", string("Location as shown in Drift"));
    m
}

/// The JSON Schema of a custom contact attribute of Drift type `kind` (REFERENCE §7.1:
/// `STRING`, `NUMERIC`, `BOOLEAN`, `DATETIME`, `DATE`; others, e.g. the account property
/// types `EMAIL`, `URL`, `PHONE`, `ENUM`, are text; unknown ones JSON). `label` becomes the
/// description.
pub fn custom_attribute_schema(kind: &str, label: &str) -> Value {
    let description = if label.is_empty() {
        format!("Custom attribute ({kind})")
    } else {
        format!("{label} (custom attribute, {kind})")
    };
    match kind.to_ascii_uppercase().as_str() {
        "STRING" | "EMAIL" | "URL" | "PHONE" | "ENUM" | "TEAMMEMBER" => string(&description),
        "NUMERIC" | "NUMBER" => json!({"type": ["null", "number"], "description": description}),
        "BOOLEAN" => json!({"type": ["null", "boolean"], "description": description}),
        "DATE" | "DATETIME" => millis(&description),
        _ => json_value(&description),
    }
}

/// `stream` (contacts) with the custom attributes `custom` (name, Drift type, label) added
/// to its flattened columns; a custom attribute named like a standard one keeps the
/// standard schema. Other streams are returned unchanged.
pub fn with_contact_attributes(mut stream: Stream, custom: &[(String, String, String)]) -> Stream {
    if let Some(flatten) = &mut stream.flatten {
        for (name, kind, label) in custom {
            if !flatten.properties.contains_key(name) {
                flatten
                    .properties
                    .insert(name.clone(), custom_attribute_schema(kind, label));
            }
        }
    }
    stream
}

/// The flattened object of stream `name`, if it has one (contacts' attributes, standard
/// ones only).
pub(crate) fn flatten_of(name: &str) -> Option<Flatten> {
    (name == crate::names::CONTACTS).then(|| Flatten {
        field: CONTACT_ATTRIBUTES_FIELD.to_owned(),
        properties: standard_contact_attributes(),
    })
}

fn col(name: &str, field: &str, scalar: bool, schema: Value) -> ChildColumn {
    ChildColumn {
        name: name.to_owned(),
        field: field.to_owned(),
        scalar,
        schema,
    }
}

fn child(
    name: &str,
    path: &[&str],
    parent_key: &str,
    description: &str,
    columns: Vec<ChildColumn>,
) -> ChildTable {
    ChildTable {
        name: name.to_owned(),
        path: path.iter().map(|p| (*p).to_owned()).collect(),
        parent_key: parent_key.to_owned(),
        index: "_index".to_owned(),
        columns,
        description: description.to_owned(),
        on_request: false,
    }
}

/// Tag columns: `tag` (the tag's `name`, or the tag itself when Drift sends a plain
/// string) and `color` (hex without `#`; REFERENCE §7.2).
fn tag_columns() -> Vec<ChildColumn> {
    vec![
        col("tag", "name", true, string("Tag name")),
        col("color", "color", false, string("Tag colour, hex without #")),
    ]
}

/// The child tables of stream `name` (REFERENCE §7: the array fields of each model).
pub(crate) fn children_of(name: &str) -> Vec<ChildTable> {
    use crate::names::*;
    match name {
        // Drift's list rows lack both arrays: one `GET /conversations/{id}` per
        // conversation reads them, so they are read only when selected (`on_request`).
        CONVERSATIONS => vec![
            ChildTable {
                on_request: true,
                ..child(
                    "conversation_participants",
                    &["participants"],
                    "conversation_id",
                    "Users (agents) taking part in a conversation, one row per participant",
                    vec![col("user_id", "id", true, integer("Drift user id"))],
                )
            },
            ChildTable {
                on_request: true,
                ..child(
                    "conversation_tags",
                    &["conversationTags"],
                    "conversation_id",
                    "Tags of a conversation, one row per tag",
                    tag_columns(),
                )
            },
        ],
        MESSAGES => vec![
            child(
                "message_buttons",
                &["buttons"],
                "message_id",
                "Buttons of a bot message, one row per button",
                vec![
                    col("label", "label", true, string("Button label")),
                    col("value", "value", false, string("Value sent when clicked")),
                    col("type", "type", false, string("reply, compose or action")),
                    col("style", "style", false, string("primary or danger")),
                ],
            ),
            child(
                "message_attachments",
                &["attachments"],
                "message_id",
                "Files attached to a message, one row per attachment",
                vec![
                    col("id", "id", true, integer("Attachment id")),
                    col("fileName", "fileName", false, string("File name")),
                    col("mimeType", "mimeType", false, string("MIME type")),
                    col("url", "url", false, string("Download URL")),
                ],
            ),
        ],
        CONTACTS => vec![child(
            "contact_tags",
            &["attributes", "tags"],
            "contact_id",
            "Tags of a contact, one row per tag",
            tag_columns(),
        )],
        ACCOUNTS => vec![child(
            "account_custom_properties",
            &["customProperties"],
            "account_id",
            "Custom properties of an account, one row per property",
            vec![
                col("name", "name", true, string("Property key")),
                col("label", "label", false, string("Property label")),
                col(
                    "value",
                    "value",
                    false,
                    json_value("Property value (JSON: text, number, ...)"),
                ),
                col(
                    "type",
                    "type",
                    false,
                    string("Drift property type, e.g. NUMBER"),
                ),
            ],
        )],
        TEAMS => vec![child(
            "team_members",
            &["members"],
            "team_id",
            "Members of a team, one row per user",
            vec![col("user_id", "id", true, integer("Drift user id"))],
        )],
        PLAYBOOKS => vec![child(
            "playbook_goals",
            &["goals"],
            "playbook_id",
            "Goals of a playbook, one row per goal",
            vec![
                col("id", "id", true, string("Goal id (UUID)")),
                col("message", "message", false, string("Goal message")),
            ],
        )],
        _ => Vec::new(),
    }
}
