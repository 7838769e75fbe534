//! Users, meetings, teams, playbooks (REFERENCE §7.4–§7.6).

use serde_json::Value;

drift_model! {
    /// A user (agent), `GET /users/list` / `GET /users/{id}`.
    pub struct User {
        required {
        /// User id.
        id: i64,
        }
        /// Org id.
        pub org_id: i64,
        /// Name.
        pub name: String,
        /// Alias.
        pub alias: String,
        /// Email.
        pub email: String,
        /// Phone.
        pub phone: String,
        /// Locale.
        pub locale: String,
        /// `AVAILABLE`, `OFFLINE`, `ON_CALL`, ... as sent.
        pub availability: String,
        /// `member`, `admin`, `agent`, ... as sent.
        pub role: String,
        /// Time zone.
        pub time_zone: String,
        /// Avatar URL.
        pub avatar_url: String,
        /// Verified.
        pub verified: bool,
        /// Bot user.
        pub bot: bool,
        /// Creation time, epoch ms.
        pub created_at: i64,
        /// Last update, epoch ms.
        pub updated_at: i64,
    }
}

drift_model! {
    /// A booked meeting, `GET /users/meetings/org`.
    pub struct Meeting {
        /// Agent (user) id.
        pub agent_id: i64,
        /// Org id.
        pub org_id: i64,
        /// e.g. `ACTIVE`.
        pub status: String,
        /// e.g. `EMAIL_DROP`.
        pub meeting_source: String,
        /// Contact id of the scheduler.
        pub scheduler_id: i64,
        /// Event id.
        pub event_id: String,
        /// Slug.
        pub slug: String,
        /// Slot start, epoch ms.
        pub slot_start: i64,
        /// Slot end, epoch ms.
        pub slot_end: i64,
        /// Last update, epoch ms.
        pub updated_at: i64,
        /// Booking time, epoch ms.
        pub scheduled_at: i64,
        /// e.g. `New Meeting`.
        pub meeting_type: String,
        /// Conversation the meeting was booked in.
        pub conversation_id: i64,
        /// Contact's time zone.
        pub end_user_time_zone: String,
        /// Notes.
        pub meeting_notes: String,
        /// User who booked it.
        pub booked_by: i64,
    }
}

drift_model! {
    /// A team, `GET /teams/org`.
    pub struct Team {
        required {
        /// Team id.
        id: i64,
        }
        /// Org id.
        pub org_id: i64,
        /// Workspace UUID.
        pub workspace_id: String,
        /// Name.
        pub name: String,
        /// Last update, epoch ms.
        pub updated_at: i64,
        /// Member user ids.
        pub members: Vec<i64>,
        /// Owner user id.
        pub owner: i64,
        /// `ENABLED`, `ARCHIVED`, ... as sent.
        pub status: String,
        /// Main team.
        pub main: bool,
        /// Auto offline.
        pub auto_offline: bool,
        /// `ALWAYS_ONLINE`, `ALWAYS_OFFLINE`, `CUSTOM_HOURS`, ... as sent.
        pub team_availability_mode: String,
        /// Response timer enabled.
        pub response_timer_enabled: bool,
    }
}

drift_model! {
    /// A bot playbook, `GET /playbooks/list` (bare array).
    pub struct Playbook {
        required {
        /// Playbook id.
        id: i64,
        }
        /// Name.
        pub name: String,
        /// Org id.
        pub org_id: i64,
        /// Free metadata.
        pub meta: Value,
        /// Creation time, epoch ms.
        pub created_at: i64,
        /// Last update, epoch ms.
        pub updated_at: i64,
        /// Creating user.
        pub created_author_id: i64,
        /// Last updating user.
        pub updated_author_id: i64,
        /// Interaction id.
        pub interaction_id: i64,
        /// e.g. `BOOK_MORE_MEETINGS`.
        pub report_type: String,
        /// Goals.
        pub goals: Vec<PlaybookGoal>,
    }
}

drift_model! {
    /// A playbook goal.
    pub struct PlaybookGoal {
        /// Goal UUID.
        pub id: String,
        /// Message.
        pub message: String,
    }
}
