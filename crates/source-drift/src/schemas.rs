//! JSON Schemas (draft-07) of the Drift streams: every field nullable, unknown fields allowed,
//! epoch-millisecond fields marked with [`sync_core::EPOCH_MS_FORMAT`].
//! Field lists follow REFERENCE §7 (models of contacts, conversations, messages, accounts,
//! users, teams, playbooks, meetings, custom attributes).

use serde_json::{json, Map, Value};
use sync_core::EPOCH_MS_FORMAT;

/// Type of one top-level field.
#[derive(Clone, Copy)]
enum T {
    Int,
    Ms,
    Str,
    Bool,
    Obj,
    Arr,
}

fn field(t: T) -> Value {
    match t {
        T::Int => json!({"type": ["null", "integer"]}),
        T::Ms => json!({"type": ["null", "integer"], "format": EPOCH_MS_FORMAT,
            "description": "Unix epoch milliseconds"}),
        T::Str => json!({"type": ["null", "string"]}),
        T::Bool => json!({"type": ["null", "boolean"]}),
        T::Obj => json!({"type": ["null", "object"], "additionalProperties": true}),
        T::Arr => json!({"type": ["null", "array"]}),
    }
}

fn schema(title: &str, fields: &[(&str, T)]) -> Value {
    let props: Map<String, Value> = fields
        .iter()
        .map(|(name, t)| ((*name).to_owned(), field(*t)))
        .collect();
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": title,
        "type": "object",
        "additionalProperties": true,
        "properties": props,
    })
}

/// `conversations` (REFERENCE §7.2, conversation model).
pub fn conversations() -> Value {
    use T::*;
    schema(
        "Drift conversation",
        &[
            ("id", Int),
            ("status", Str),
            ("contactId", Int),
            ("inboxId", Int),
            ("createdAt", Ms),
            ("updatedAt", Ms),
            ("participants", Arr),
            ("relatedPlaybookId", Int),
            ("conversationTags", Arr),
            ("orgId", Int),
        ],
    )
}

/// `messages` (REFERENCE §7.2, message model).
pub fn messages() -> Value {
    use T::*;
    schema(
        "Drift message",
        &[
            ("id", Int),
            ("conversationId", Int),
            ("orgId", Int),
            ("type", Str),
            ("body", Str),
            ("author", Obj),
            ("createdAt", Ms),
            ("buttons", Arr),
            ("context", Obj),
            ("attributes", Obj),
            ("editedMessageId", Int),
            ("editType", Str),
            ("attachments", Arr),
        ],
    )
}

/// `contacts` (REFERENCE §7.1: `id`, `createdAt`, free `attributes` map).
pub fn contacts() -> Value {
    use T::*;
    schema(
        "Drift contact",
        &[("id", Int), ("createdAt", Ms), ("attributes", Obj)],
    )
}

/// `accounts` (REFERENCE §7.3).
pub fn accounts() -> Value {
    use T::*;
    schema(
        "Drift account",
        &[
            ("accountId", Str),
            ("ownerId", Int),
            ("name", Str),
            ("domain", Str),
            ("customProperties", Arr),
            ("deleted", Bool),
            ("targeted", Bool),
            ("createDateTime", Ms),
            ("updateDateTime", Ms),
        ],
    )
}

/// `users` (REFERENCE §7.4).
pub fn users() -> Value {
    use T::*;
    schema(
        "Drift user",
        &[
            ("id", Int),
            ("orgId", Int),
            ("name", Str),
            ("alias", Str),
            ("email", Str),
            ("phone", Str),
            ("locale", Str),
            ("availability", Str),
            ("role", Str),
            ("timeZone", Str),
            ("avatarUrl", Str),
            ("verified", Bool),
            ("bot", Bool),
            ("createdAt", Ms),
            ("updatedAt", Ms),
        ],
    )
}

/// `teams` (REFERENCE §7.5).
pub fn teams() -> Value {
    use T::*;
    schema(
        "Drift team",
        &[
            ("id", Int),
            ("orgId", Int),
            ("workspaceId", Str),
            ("name", Str),
            ("updatedAt", Ms),
            ("members", Arr),
            ("owner", Int),
            ("status", Str),
            ("main", Bool),
            ("autoOffline", Bool),
            ("teamAvailabilityMode", Str),
            ("responseTimerEnabled", Bool),
        ],
    )
}

/// `playbooks` (REFERENCE §7.6).
pub fn playbooks() -> Value {
    use T::*;
    schema(
        "Drift playbook",
        &[
            ("id", Int),
            ("name", Str),
            ("orgId", Int),
            ("meta", Obj),
            ("createdAt", Ms),
            ("updatedAt", Ms),
            ("createdAuthorId", Int),
            ("updatedAuthorId", Int),
            ("interactionId", Int),
            ("reportType", Str),
            ("goals", Arr),
        ],
    )
}

/// `meetings` (REFERENCE §7.4, meeting model).
pub fn meetings() -> Value {
    use T::*;
    schema(
        "Drift booked meeting",
        &[
            ("slug", Str),
            ("eventId", Str),
            ("agentId", Int),
            ("orgId", Int),
            ("status", Str),
            ("meetingSource", Str),
            ("schedulerId", Int),
            ("slotStart", Ms),
            ("slotEnd", Ms),
            ("updatedAt", Ms),
            ("scheduledAt", Ms),
            ("meetingType", Str),
            ("conversationId", Int),
            ("endUserTimeZone", Str),
            ("meetingNotes", Str),
            ("bookedBy", Int),
        ],
    )
}

/// `contact_attributes` (REFERENCE §7.1, custom attribute listing).
pub fn contact_attributes() -> Value {
    use T::*;
    schema(
        "Drift contact custom attribute",
        &[("name", Str), ("displayName", Str), ("type", Str)],
    )
}
