//! Accounts (REFERENCE §7.3).

use serde_json::Value;

drift_model! {
    /// An account (`GET /accounts/{accountId}`, rows of `GET /accounts`).
    pub struct Account {
        /// String id such as `"5120044_example.com"`.
        pub account_id: String,
        /// Owner (a Drift user id); required on create and update.
        pub owner_id: i64,
        /// Name.
        pub name: String,
        /// Domain (unique per org).
        pub domain: String,
        /// Custom properties.
        pub custom_properties: Vec<CustomProperty>,
        /// Soft-deleted.
        pub deleted: bool,
        /// Creation time, epoch ms.
        pub create_date_time: i64,
        /// Last update, epoch ms.
        pub update_date_time: i64,
        /// Targeted account (ABM).
        pub targeted: bool,
    }
}

drift_model! {
    /// An account custom property.
    pub struct CustomProperty {
        /// Label.
        pub label: String,
        /// Key.
        pub name: String,
        /// Value (any JSON).
        pub value: Value,
        /// `STRING`, `NUMBER`, `ENUM`, ... as sent.
        #[serde(rename = "type")]
        pub property_type: String,
    }
}
