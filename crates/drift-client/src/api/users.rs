//! Users, meetings, teams, playbooks (REFERENCE §7.4–§7.6).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::client::Req;
use crate::decode::{kind_of, Body, BodyError};
use crate::models::{Meeting, Playbook, Team, User};
use crate::records::{RawRecord, Records};
use crate::{Client, Error};

use super::conversations::MaybeData;
use super::{data_list, data_record, Data};

const USER_READ: &str = "user_read";

/// Most ids `GET /users?userId=` takes per call (REFERENCE §7.4).
pub const USERS_PER_CALL: usize = 20;

/// What `GET /users?userId=..` must answer.
const EXPECT_USER_MAP: &str = "a JSON object with a \"data\" map of users by id";
/// What the playbook lists must answer.
const EXPECT_BARE_LIST: &str = "a JSON list (or an object with a \"data\" list)";

/// `GET /users?userId=..`: `{"data": {"<id>": {user}, ...}}` (quirk 11), in key order.
pub(crate) fn user_map(body: &Body<'_>) -> Result<Records<User>, BodyError> {
    body.decode(
        EXPECT_USER_MAP,
        |d: Data<BTreeMap<String, User>>| Records::fitting(d.data.into_values().collect()),
        |d: Data<BTreeMap<String, RawRecord>>| {
            let mut out = Records::default();
            for (id, raw) in d.data {
                match body.record::<User>(&raw, None) {
                    Ok(u) => out.items.push(u),
                    // The map key names the user when the record's own id is unreadable.
                    Err(mut u) => {
                        u.key = u.key.or(Some(id));
                        out.unfit.push(u);
                    }
                }
            }
            Ok(out)
        },
    )
}

/// A bare JSON list, or one wrapped in `data` (quirk 12), decoded per record.
pub(crate) fn bare_list<T: crate::records::Model>(
    body: &Body<'_>,
) -> Result<Records<T>, BodyError> {
    body.decode(
        EXPECT_BARE_LIST,
        |m: MaybeData<Vec<T>>| Records::fitting(m.into_inner()),
        |raw: RawRecord| {
            let list: Vec<RawRecord> = match kind_of(&raw) {
                "a list" => serde_json::from_str(raw.get()).map_err(|e| e.to_string())?,
                "an object" => {
                    let d: Data<Vec<RawRecord>> =
                        serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
                    d.data
                }
                other => return Err(format!("the body is {other}")),
            };
            Ok(body.records(list))
        },
    )
}

/// `GET /playbooks/clp`: any JSON values, in a bare list or in `data`.
pub(crate) fn value_list(body: &Body<'_>) -> Result<Vec<Value>, BodyError> {
    body.parse::<MaybeData<Vec<Value>>>(EXPECT_BARE_LIST)
        .map(MaybeData::into_inner)
}

impl Client {
    /// `GET /users/list`: every user (no pagination). Needs `user_read`. Users that do not
    /// fit the model are in `unfit`.
    pub async fn users(&self) -> Result<Records<User>, Error> {
        let req = Req::get("users.list", USER_READ, "users/list");
        self.read(&req, data_list).await
    }

    /// `GET /users/{id}`. Errors: `NotFound`; `Unfit` when the user does not fit the model.
    pub async fn user(&self, id: i64) -> Result<User, Error> {
        let req = Req::get("users.get", USER_READ, format!("users/{id}"));
        self.read(&req, |b| data_record(b, Some(id.to_string())))
            .await
    }

    /// `GET /users?userId=..` for many ids, 20 per call; Drift answers a map keyed by id
    /// (quirk 11), returned here as a list in id order (users that do not fit: `unfit`).
    pub async fn users_by_ids(&self, ids: &[i64]) -> Result<Records<User>, Error> {
        let mut users = Records::default();
        for chunk in ids.chunks(USERS_PER_CALL) {
            let req = chunk
                .iter()
                .fold(Req::get("users.get_many", USER_READ, "users"), |r, id| {
                    r.query("userId", id)
                });
            users.extend(self.read(&req, user_map).await?);
        }
        users.items.sort_by_key(|u| u.id);
        Ok(users)
    }

    /// `GET /teams/org` (teams that do not fit the model: `unfit`).
    pub async fn teams(&self) -> Result<Records<Team>, Error> {
        let req = Req::get("teams.list", USER_READ, "teams/org");
        self.read(&req, data_list).await
    }

    /// `GET /playbooks/list`: a bare array (quirk 12; a `data` wrapper is accepted too).
    /// Needs `playbook_read` (paid plans). Playbooks that do not fit the model: `unfit`.
    pub async fn playbooks(&self) -> Result<Records<Playbook>, Error> {
        let req = Req::get("playbooks.list", "playbook_read", "playbooks/list");
        self.read(&req, bare_list).await
    }

    /// `GET /playbooks/clp`: conversational landing pages, bare array of
    /// `{playbookId, playbookName, landingPageUrl}` kept as JSON.
    pub async fn landing_pages(&self) -> Result<Vec<Value>, Error> {
        let req = Req::get("playbooks.clp", "playbook_read", "playbooks/clp");
        self.read(&req, value_list).await
    }

    /// `GET /users/meetings/org?min_start_time&max_start_time` (both epoch ms, required;
    /// Drift reaches back ≤ 30 days and returns ≤ 1000 per call — quirk 13; the cap counts
    /// `items` and `unfit` together). Needs `user_read`. Errors: `Invalid` naming
    /// `max_start_ms` when the window is reversed.
    pub async fn meetings(
        &self,
        min_start_ms: i64,
        max_start_ms: i64,
    ) -> Result<Records<Meeting>, Error> {
        if max_start_ms < min_start_ms {
            return Err(Error::Invalid {
                field: Some("max_start_ms".into()),
                message: format!(
                    "meeting window ends ({max_start_ms}) before it starts ({min_start_ms}); both are epoch ms"
                ),
                status: None,
            });
        }
        let req = Req::get("meetings.list", USER_READ, "users/meetings/org")
            .query("min_start_time", min_start_ms)
            .query("max_start_time", max_start_ms);
        self.read(&req, data_list).await
    }
}
