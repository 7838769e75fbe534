//! Conversations, messages, stats and reports (REFERENCE §7.2).

use serde_json::{Map, Value};

drift_model! {
    /// A conversation (`GET /conversations/{id}`, rows of `GET /conversations/list`).
    /// List rows carry only `status, contactId, createdAt, id, inboxId, updatedAt`.
    pub struct Conversation {
        required {
        /// Conversation id (int64).
        id: i64,
        }
        /// The contact the conversation is with.
        pub contact_id: i64,
        /// Last change, epoch ms (moves on status change or new message).
        pub updated_at: i64,
        /// Creation time, epoch ms.
        pub created_at: i64,
        /// `open`, `closed`, `pending`, `bulk_sent`, or any newer value as sent.
        pub status: String,
        /// Inbox id.
        pub inbox_id: i64,
        /// User ids taking part (absent in list rows).
        pub participants: Vec<i64>,
        /// Playbook that started the conversation.
        pub related_playbook_id: i64,
        /// Tags on the conversation.
        pub conversation_tags: Vec<ConversationTag>,
        /// Org id (rarely present).
        pub org_id: i64,
    }
}

drift_model! {
    /// A conversation tag.
    pub struct ConversationTag {
        /// Hex colour without `#`.
        pub color: String,
        /// Tag name.
        pub name: String,
    }
}

drift_model! {
    /// A message (`GET /conversations/{id}/messages`, REFERENCE §7.2).
    pub struct Message {
        required {
        /// Message id (int64).
        id: i64,
        }
        /// Org id.
        pub org_id: i64,
        /// Conversation the message belongs to.
        pub conversation_id: i64,
        /// HTML body; may be absent.
        pub body: String,
        /// Who wrote it.
        pub author: Author,
        /// `chat`, `private_note`, `private_prompt`, `suggestion`, `edit`, ... as sent.
        #[serde(rename = "type")]
        pub message_type: String,
        /// Creation time, epoch ms.
        pub created_at: i64,
        /// Buttons offered with the message.
        pub buttons: Vec<Button>,
        /// Browser context (`ip`, `userAgent`, ...).
        pub context: Map<String, Value>,
        /// Free attributes (`preMessages`, `developer_app_id`, ...).
        pub attributes: Map<String, Value>,
        /// For `edit` messages: the message edited.
        pub edited_message_id: i64,
        /// For `edit` messages: `delete`, `replace`, `replace_body`, `replace_buttons`.
        pub edit_type: String,
        /// Attached files.
        pub attachments: Vec<Attachment>,
    }
}

drift_model! {
    /// Author of a message.
    pub struct Author {
        /// `contact` or `user`.
        #[serde(rename = "type")]
        pub author_type: String,
        /// Contact id or user id.
        pub id: i64,
        /// True when a bot wrote it.
        pub bot: bool,
    }
}

drift_model! {
    /// A message button.
    pub struct Button {
        /// Text shown.
        pub label: String,
        /// Value sent back.
        pub value: String,
        /// `reply`, `compose`, `action`.
        #[serde(rename = "type")]
        pub button_type: String,
        /// `primary`, `danger`.
        pub style: String,
        /// `{type, message}` reaction.
        pub reaction: Value,
    }
}

drift_model! {
    /// A message attachment.
    pub struct Attachment {
        /// Attachment id.
        pub id: i64,
        /// File name.
        pub file_name: String,
        /// MIME type.
        pub mime_type: String,
        /// Download URL (`/attachments/{id}/data`).
        pub url: String,
    }
}

drift_model! {
    /// `GET /conversations/stats`: bare `{"conversationCount": {"OPEN": n, ...}}`.
    pub struct ConversationStats {
        /// Count per status name, as sent.
        pub conversation_count: Map<String, Value>,
    }
}

impl ConversationStats {
    /// Count for a status (`"OPEN"`, `"CLOSED"`, `"PENDING"`, ...), if reported.
    pub fn count(&self, status: &str) -> Option<i64> {
        self.conversation_count.as_ref()?.get(status)?.as_i64()
    }
}

drift_model! {
    /// `POST /reports/conversations` response: bare `{count, data}`.
    pub struct ReportResponse {
        /// Number of rows.
        pub count: i64,
        /// Rows.
        pub data: Vec<ReportRow>,
    }
}

drift_model! {
    /// One report row: metrics in request order; a missing metric is `"NaN"`.
    pub struct ReportRow {
        /// Conversation id.
        pub conversation_id: i64,
        /// Metric values (numbers, or the string `"NaN"`).
        pub metrics: Vec<Value>,
    }
}
