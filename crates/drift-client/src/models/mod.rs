//! Drift records (REFERENCE §7), tolerant by construction: every field `Option` unless Drift
//! always sends it (ids), unknown fields kept in `extra` so `serde_json::to_value(record)`
//! gives back what Drift sent, enum-like values kept as strings. Timestamps are `i64` epoch
//! milliseconds. A `null` Drift sends for a typed field reads as `None` and is written back
//! as absent (REFERENCE §1: absent and null mean "unset").

/// Declares a tolerant Drift model: required fields as given, every optional field
/// `Option<T>` with `#[serde(default, skip_serializing_if = "Option::is_none")]`, and the
/// flattened `extra` map. Field names follow `rename_all = "camelCase"` unless overridden.
macro_rules! drift_model {
    (
        $(#[$sm:meta])*
        pub struct $name:ident {
            $( required { $( $(#[$rm:meta])* $rf:ident : $rt:ty, )* } )?
            $( $(#[$fm:meta])* pub $f:ident : $t:ty, )*
        }
    ) => {
        $(#[$sm])*
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            $($( $(#[$rm])* pub $rf: $rt, )*)?
            $(
                $(#[$fm])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $f: Option<$t>,
            )*
            /// Fields this type does not name, exactly as Drift sent them.
            #[serde(flatten)]
            pub extra: serde_json::Map<String, serde_json::Value>,
        }
    };
}

mod account;
mod contact;
mod conversation;
mod token;
mod user;

pub use account::{Account, CustomProperty};
pub use contact::{Contact, CustomAttribute, TimelineEvent};
pub use conversation::{
    Attachment, Author, Button, Conversation, ConversationStats, ConversationTag, Message,
    ReportResponse, ReportRow,
};
pub use token::TokenInfo;
pub use user::{Meeting, Playbook, PlaybookGoal, Team, User};

/// `{"result": "OK", "ok": true}` acknowledgement of deletes (REFERENCE §7.1, §7.3).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OkResult {
    /// `"OK"` on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// `true` on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    /// Any other field, as sent.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}
