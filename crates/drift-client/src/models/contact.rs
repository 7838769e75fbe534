//! Contacts, custom attributes and timeline events (REFERENCE §7.1).

use serde_json::{Map, Value};

drift_model! {
    /// A contact (`GET /contacts/{id}`). Everything but `id` and `createdAt` lives in the
    /// free `attributes` map (`email`, `externalId`, `tags`, `socialProfiles`, custom ones).
    pub struct Contact {
        required {
        /// Contact id (int64).
        id: i64,
        }
        /// First captured, epoch ms.
        pub created_at: i64,
        /// Drift-managed and custom attributes, as sent (values may be null).
        pub attributes: Map<String, Value>,
    }
}

impl Contact {
    fn attr_str(&self, key: &str) -> Option<&str> {
        self.attributes.as_ref()?.get(key)?.as_str()
    }

    /// `attributes.email`.
    pub fn email(&self) -> Option<&str> {
        self.attr_str("email")
    }

    /// `attributes.externalId` (or the `external_id` echo of create, quirk 2).
    pub fn external_id(&self) -> Option<&str> {
        self.attr_str("externalId")
            .or_else(|| self.attr_str("external_id"))
    }
}

drift_model! {
    /// A custom contact attribute (`GET /contacts/attributes`, needs `all_contact_read`).
    pub struct CustomAttribute {
        required {
        /// Attribute key.
        name: String,
        }
        /// Label in the UI.
        pub display_name: String,
        /// `STRING`, `NUMERIC`, `BOOLEAN`, `DATETIME`, `DATE`, ... as sent.
        #[serde(rename = "type")]
        pub attribute_type: String,
    }
}

drift_model! {
    /// A timeline event (`POST /contacts/timeline`).
    pub struct TimelineEvent {
        /// Contact id (or give `external_id`).
        pub contact_id: i64,
        /// Contact external id (or give `contact_id`).
        pub external_id: String,
        /// Event text (lower-cased in the Drift UI, quirk 15).
        pub event: String,
        /// Event time, epoch ms (Drift defaults to now).
        pub created_at: i64,
        /// Deprecated attributes (values stringified by Drift).
        pub attributes: Map<String, Value>,
    }
}
