//! Users, meetings, teams, playbooks (REFERENCE §7.4–§7.6).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::client::Req;
use crate::models::{Meeting, Playbook, Team, User};
use crate::{Client, Error};

use super::conversations::MaybeData;
use super::Data;

const USER_READ: &str = "user_read";

/// Most ids `GET /users?userId=` takes per call (REFERENCE §7.4).
pub const USERS_PER_CALL: usize = 20;

impl Client {
    /// `GET /users/list`: every user (no pagination). Needs `user_read`.
    pub async fn users(&self) -> Result<Vec<User>, Error> {
        let req = Req::get("users.list", USER_READ, "users/list");
        Ok(self.json::<Data<Vec<User>>>(&req).await?.data)
    }

    /// `GET /users/{id}`.
    pub async fn user(&self, id: i64) -> Result<User, Error> {
        let req = Req::get("users.get", USER_READ, format!("users/{id}"));
        Ok(self.json::<Data<User>>(&req).await?.data)
    }

    /// `GET /users?userId=..` for many ids, 20 per call; Drift answers a map keyed by id
    /// (quirk 11), returned here as a list in id order.
    pub async fn users_by_ids(&self, ids: &[i64]) -> Result<Vec<User>, Error> {
        let mut users = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(USERS_PER_CALL) {
            let req = chunk
                .iter()
                .fold(Req::get("users.get_many", USER_READ, "users"), |r, id| {
                    r.query("userId", id)
                });
            let map: Data<BTreeMap<String, User>> = self.json(&req).await?;
            users.extend(map.data.into_values());
        }
        users.sort_by_key(|u| u.id);
        Ok(users)
    }

    /// `GET /teams/org`.
    pub async fn teams(&self) -> Result<Vec<Team>, Error> {
        let req = Req::get("teams.list", USER_READ, "teams/org");
        Ok(self.json::<Data<Vec<Team>>>(&req).await?.data)
    }

    /// `GET /playbooks/list`: a bare array (quirk 12; a `data` wrapper is accepted too).
    /// Needs `playbook_read` (paid plans).
    pub async fn playbooks(&self) -> Result<Vec<Playbook>, Error> {
        let req = Req::get("playbooks.list", "playbook_read", "playbooks/list");
        Ok(self
            .json::<MaybeData<Vec<Playbook>>>(&req)
            .await?
            .into_inner())
    }

    /// `GET /playbooks/clp`: conversational landing pages, bare array of
    /// `{playbookId, playbookName, landingPageUrl}` kept as JSON.
    pub async fn landing_pages(&self) -> Result<Vec<Value>, Error> {
        let req = Req::get("playbooks.clp", "playbook_read", "playbooks/clp");
        Ok(self.json::<MaybeData<Vec<Value>>>(&req).await?.into_inner())
    }

    /// `GET /users/meetings/org?min_start_time&max_start_time` (both epoch ms, required;
    /// Drift reaches back ≤ 30 days and returns ≤ 1000 per call — quirk 13). Needs
    /// `user_read`. Errors: `Invalid` naming `max_start_ms` when the window is reversed.
    pub async fn meetings(
        &self,
        min_start_ms: i64,
        max_start_ms: i64,
    ) -> Result<Vec<Meeting>, Error> {
        if max_start_ms < min_start_ms {
            return Err(Error::Invalid {
                field: Some("max_start_ms".into()),
                message: format!(
                    "meeting window ends ({max_start_ms}) before it starts ({min_start_ms}); both are epoch ms"
                ),
            });
        }
        let req = Req::get("meetings.list", USER_READ, "users/meetings/org")
            .query("min_start_time", min_start_ms)
            .query("max_start_time", max_start_ms);
        Ok(self.json::<Data<Vec<Meeting>>>(&req).await?.data)
    }
}
