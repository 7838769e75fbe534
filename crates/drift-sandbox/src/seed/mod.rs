//! Deterministic generation of a realistic, deliberately awkward org from a seed.
//!
//! The same seed and sizes give the same ids, texts and order; timestamps are offsets
//! back from the start of the sandbox clock's UTC day, spread over about six months.
//! Awkward on purpose: HTML bodies, emoji / CJK / right-to-left text, null and absent
//! fields, contacts sharing an email, soft-deleted accounts, bot and human authors, all
//! four conversation statuses and `updatedAt` ties between conversations.

mod texts;

use crate::config::{SandboxConfig, ORG_ID};
use crate::org::{Author, Body, IdGen, Message, Obj, Org};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use texts::{
    custom_attributes, extra_fields, BODIES, BOT_BODIES, COLORS, COMPANIES, ODD_NAMES, TAGS,
};
/// Given and family names of generated people (the `rename_contacts` mutation uses them).
pub(crate) use texts::{FIRST, LAST};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
/// Inbox of every seeded conversation.
pub const INBOX_ID: i64 = 74_120;
/// Id of the org's bot user.
pub const BOT_USER_ID: i64 = 2_400_001;

struct Gen {
    rng: ChaCha8Rng,
    anchor: i64,
    shared: Shared,
}

/// Which optional fields a generated message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum ExtraKind {
    /// Bot reply buttons.
    Buttons,
    /// Visitor `context` with one of 250 addresses.
    Context(usize),
    /// An attachment, numbered by the message's position.
    Attachment(usize),
}

/// Field values shared by many generated messages (keeps 100k+ messages small).
#[derive(Default)]
struct Shared {
    extras: HashMap<ExtraKind, Arc<Obj>>,
    app_attributes: Arc<Obj>,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            extras: HashMap::new(),
            app_attributes: Arc::new(obj(json!({"developer_app_id": "app-0000demo"}))),
        }
    }

    fn extra(&mut self, kind: ExtraKind) -> Arc<Obj> {
        self.extras
            .entry(kind)
            .or_insert_with(|| Arc::new(obj(extra_fields(kind))))
            .clone()
    }
}

/// Build the seeded org. `now_ms` is the sandbox clock at start.
pub fn generate(cfg: &SandboxConfig, now_ms: i64) -> Org {
    let mut g = Gen {
        rng: ChaCha8Rng::seed_from_u64(cfg.seed),
        anchor: now_ms - now_ms.rem_euclid(DAY),
        shared: Shared::new(),
    };
    let mut org = Org {
        ids: IdGen {
            contact: 15_900_000_000,
            conversation: 3_790_000_000,
            message: 12_400_000_000,
            account: 5_120_000,
        },
        ..Org::default()
    };
    org.users = g.users(cfg.users.max(1));
    let user_ids: Vec<i64> = org.users.iter().map(|u| crate::org::int(u, "id")).collect();
    let humans: Vec<i64> = user_ids[1..].to_vec();
    org.teams = g.teams(&humans);
    org.playbooks = g.playbooks(&humans);
    org.landing_pages = g.landing_pages(&org.playbooks);
    org.attributes = custom_attributes();
    g.accounts(&mut org, cfg.accounts, &humans);
    g.contacts(&mut org, cfg.conversations);
    g.conversations(&mut org, cfg, &humans);
    org.meetings = g.meetings(&org, &humans, cfg.conversations / 10 + 2);
    org.reindex();
    org.reindex_accounts();
    org
}

impl Gen {
    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items.choose(&mut self.rng).copied().unwrap_or("")
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    /// A time `days_back` days (fractional, random within) before the anchor.
    fn past(&mut self, max_days: i64) -> i64 {
        self.anchor - self.rng.random_range(HOUR..max_days * DAY)
    }

    fn person_name(&mut self) -> String {
        if self.chance(0.12) {
            self.pick(ODD_NAMES).to_string()
        } else {
            format!("{} {}", self.pick(FIRST), self.pick(LAST))
        }
    }

    fn users(&mut self, n: usize) -> Vec<Obj> {
        let mut users = vec![obj(json!({
            "id": BOT_USER_ID, "orgId": ORG_ID, "name": "Example Bot",
            "availability": "AVAILABLE", "role": "member", "verified": false, "bot": true,
            "createdAt": self.anchor - 400 * DAY, "updatedAt": self.anchor - 400 * DAY
        }))];
        for i in 1..n {
            let id = 2_411_800 + (i as i64) * 7;
            let name = self.person_name();
            let created = self.past(900);
            let mut u = obj(json!({
                "id": id, "orgId": ORG_ID, "name": name,
                "email": format!("agent{i}@example.com"),
                "locale": if i % 3 == 0 { "ja-JP" } else { "en-US" },
                "availability": (["AVAILABLE", "OFFLINE", "ON_CALL"][i % 3]),
                "role": if i == 1 { "admin" } else if i.is_multiple_of(2) { "agent" } else { "member" },
                "timeZone": (["America/New_York", "Europe/Berlin", "Asia/Tokyo"][i % 3]),
                "verified": i % 5 != 0, "bot": false,
                "createdAt": created, "updatedAt": created + self.rng.random_range(0..300 * DAY),
            }));
            if i % 4 != 0 {
                u.insert("alias".into(), json!(format!("agent-{i}")));
                u.insert("phone".into(), json!(format!("555-010-{:04}", 1000 + i)));
            }
            if i % 3 == 1 {
                let url = format!("https://cdn.example.com/avatars/{id}.png");
                u.insert("avatarUrl".into(), json!(url));
            }
            users.push(u);
        }
        users
    }

    fn teams(&mut self, humans: &[i64]) -> Vec<Obj> {
        let names = ["Sales", "Support", "営業 (APAC)"];
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let members: Vec<i64> = humans.iter().copied().skip(i).step_by(2).collect();
                let mut t = obj(json!({
                    "id": 31_001 + i as i64, "orgId": ORG_ID,
                    "workspaceId": format!("0f4d6b8e-3c1a-4e2b-9a77-5d1c2e3f4a{i:02}"),
                    "name": name, "updatedAt": self.past(200), "members": members,
                    "status": if i == 2 { "ARCHIVED" } else { "ENABLED" }, "main": i == 0,
                    "autoOffline": i == 1,
                    "teamAvailabilityMode": (["CUSTOM_HOURS", "ALWAYS_ONLINE", "ALWAYS_OFFLINE"][i]),
                    "responseTimerEnabled": i != 1,
                }));
                if let Some(owner) = members.first() {
                    t.insert("owner".into(), json!(owner));
                }
                t
            })
            .collect()
    }

    fn playbooks(&mut self, humans: &[i64]) -> Vec<Obj> {
        let names = [
            "Pricing page greeter",
            "Book more meetings 📅",
            "Support deflection",
            "Reconnaître les visiteurs",
        ];
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let author = humans.get(i % humans.len().max(1)).copied().unwrap_or(BOT_USER_ID);
                let created = self.past(300);
                let mut p = obj(json!({
                    "id": 1_188_204 + i as i64 * 3, "name": name, "orgId": ORG_ID,
                    "meta": if i == 1 { json!({"channel": "web", "priority": 2}) } else { json!({}) },
                    "createdAt": created, "updatedAt": created + (i as i64) * DAY,
                    "createdAuthorId": author, "updatedAuthorId": author,
                    "interactionId": 402_211 + i as i64,
                    "reportType": (["BOOK_MORE_MEETINGS", "GENERATE_LEADS", "SUPPORT", "GENERATE_LEADS"][i]),
                }));
                let goals = if i == 2 {
                    json!([])
                } else {
                    json!([{"id": format!("3f2b1c9e-8d7a-4e6f-b5a4-0c1d2e3f4a{i:02}"), "message": "Thanks! A rep will follow up shortly."}])
                };
                p.insert("goals".into(), goals);
                p
            })
            .collect()
    }

    fn landing_pages(&mut self, playbooks: &[Obj]) -> Vec<Obj> {
        playbooks
            .iter()
            .take(2)
            .map(|p| {
                obj(json!({"playbookId": p.get("id"), "playbookName": p.get("name"),
                    "landingPageUrl": format!("https://example.drift.click/{}", crate::org::int(p, "id"))}))
            })
            .collect()
    }

    fn accounts(&mut self, org: &mut Org, n: usize, humans: &[i64]) {
        for i in 0..n {
            let counter = IdGen::take(&mut org.ids.account);
            let bare = format!("acme-{i}.example.com");
            let domain = if i % 3 == 0 {
                format!("www.{bare}")
            } else {
                bare.clone()
            };
            let created = self.past(365);
            let updated = if self.chance(0.3) {
                created
            } else {
                created + self.rng.random_range(0..120 * DAY)
            };
            let owner = humans.choose(&mut self.rng).copied().unwrap_or(BOT_USER_ID);
            let name = format!("{} #{i}", self.pick(COMPANIES));
            let mut props = Vec::new();
            if self.chance(0.6) {
                props.push(json!({"label": "Employee Count", "name": "employee_count", "value": self.rng.random_range(1..20_000), "type": "NUMBER"}));
            }
            if self.chance(0.4) {
                props.push(json!({"label": "Industry", "name": "industry", "value": self.pick(&["Manufacturing", "Software", "Santé", "金融"]), "type": "STRING"}));
            }
            if self.chance(0.1) {
                props.push(
                    json!({"label": "Website", "name": "website", "value": null, "type": "URL"}),
                );
            }
            org.accounts.push(obj(json!({
                "ownerId": owner, "name": name, "domain": domain,
                "accountId": format!("{counter}_{bare}"), "customProperties": props,
                "deleted": i % 12 == 5, "createDateTime": created, "updateDateTime": updated,
                "targeted": self.chance(0.3),
            })));
        }
    }

    fn contacts(&mut self, org: &mut Org, conversations: usize) {
        let n = conversations * 7 / 10 + conversations / 10 + 2;
        let mut emails: Vec<String> = Vec::with_capacity(n);
        for i in 0..n {
            let id = IdGen::take(&mut org.ids.contact);
            org.ids.contact += self.rng.random_range(0..40);
            let email = if i % 15 == 14 && !emails.is_empty() {
                emails[self.rng.random_range(0..emails.len())].clone()
            } else {
                format!("contact{i}@example.{}", ["com", "org", "net"][i % 3])
            };
            emails.push(email.clone());
            let c = self.contact(id, i, email);
            org.contacts.insert(id, c);
        }
    }

    fn contact(&mut self, id: i64, i: usize, email: String) -> Obj {
        let created = self.past(200);
        let version = self.rng.random_range(1..30);
        let mut a = obj(json!({
            "_END_USER_VERSION": version, "_end_user_version": version, "_calculated_version": version,
            "email": email,
        }));
        match i % 9 {
            0 => {
                a.insert("name".into(), Value::Null);
            }
            1 => {}
            _ => {
                let name = self.person_name();
                let first = name.split(' ').next().unwrap_or("").to_string();
                a.insert("name".into(), json!(name));
                a.insert("first_name".into(), json!(first));
            }
        }
        if i.is_multiple_of(2) {
            a.insert(
                "externalId".into(),
                json!(format!("cust-{:08x}", id as u64 ^ 0x5eed)),
            );
        } else {
            a.insert("externalId".into(), Value::Null);
        }
        if self.chance(0.5) {
            a.insert(
                "phone".into(),
                json!(format!("555-01{:02}-{:04}", i % 100, i % 10_000)),
            );
        }
        let tags = if self.chance(0.3) {
            json!([{"name": self.pick(TAGS), "color": self.pick(COLORS)}])
        } else {
            json!([])
        };
        a.insert("tags".into(), tags);
        a.insert("events".into(), json!({}));
        a.insert("socialProfiles".into(), json!({}));
        a.insert(
            "_classification".into(),
            json!(self.pick(&["Engaged", "New", "Qualified"])),
        );
        a.insert("start_date".into(), json!(created));
        a.insert(
            "last_active".into(),
            json!(created + self.rng.random_range(0..30 * DAY)),
        );
        if self.chance(0.4) {
            a.insert(
                "recent_entrance_page_url".into(),
                json!("https://www.example.com/pricing?utm_source=ads&q=a%20b"),
            );
            a.insert("last_context_location".into(), json!("{\"city\":\"Springfield\",\"country\":\"US\",\"latitude\":39.92,\"longitude\":-83.81}"));
        }
        if self.chance(0.3) {
            a.insert(
                "plan_tier".into(),
                json!(self.pick(&["gold", "silver", "free"])),
            );
            a.insert("seats".into(), json!(self.rng.random_range(1..500)));
        }
        obj(json!({"id": id, "createdAt": created, "attributes": Value::Object(a)}))
    }

    fn conversations(&mut self, org: &mut Org, cfg: &SandboxConfig, humans: &[i64]) {
        let contact_ids: Vec<i64> = org.contacts.keys().copied().collect();
        let in_convs = (cfg.conversations * 7 / 10).max(1).min(contact_ids.len());
        let latest_start = self.anchor - (cfg.messages_per_conversation as i64 + 1) * 2 * HOUR;
        let mut starts: Vec<i64> = (0..cfg.conversations)
            .map(|_| latest_start - self.rng.random_range(0..180 * DAY))
            .collect();
        starts.sort_unstable();
        let playbook_ids: Vec<i64> = org
            .playbooks
            .iter()
            .map(|p| crate::org::int(p, "id"))
            .collect();
        for (j, created) in starts.into_iter().enumerate() {
            let contact = if j < in_convs {
                contact_ids[j]
            } else {
                contact_ids[self.rng.random_range(0..in_convs)]
            };
            let id = IdGen::take(&mut org.ids.conversation);
            org.ids.conversation += self.rng.random_range(0..500);
            let status = match self.rng.random_range(0..10) {
                0 | 1 => "open",
                2 => "pending",
                3 => "bulk_sent",
                _ => "closed",
            };
            let msgs = self.messages(
                &mut org.ids,
                id,
                contact,
                created,
                status,
                cfg.messages_per_conversation,
                humans,
            );
            let last = msgs.last().map_or(created, |m| m.created_at);
            let updated = (last + self.rng.random_range(0..HOUR)).min(self.anchor - 1);
            if j % 17 == 16 {
                // [SIM] a deliberate updatedAt tie (the list orders ties by id desc): the
                // previous conversation changed status at the same millisecond.
                if let Some(prev) = org.conversations.last_mut() {
                    prev.insert("updatedAt".into(), json!(updated));
                }
            }
            let participants: Vec<i64> = if status == "bulk_sent" {
                vec![BOT_USER_ID]
            } else {
                humans
                    .iter()
                    .copied()
                    .skip(j % humans.len().max(1))
                    .take(1 + j % 2)
                    .collect()
            };
            let mut c = obj(
                json!({"id": id, "status": status, "participants": participants, "contactId": contact}),
            );
            if j % 23 != 7 {
                c.insert("inboxId".into(), json!(INBOX_ID));
            }
            c.insert("createdAt".into(), json!(created));
            c.insert("updatedAt".into(), json!(updated));
            if j % 4 == 0 {
                c.insert(
                    "relatedPlaybookId".into(),
                    json!(playbook_ids.get(j % playbook_ids.len().max(1))),
                );
            }
            let tags = if j % 3 == 0 {
                json!([{"color": self.pick(COLORS), "name": self.pick(TAGS)}])
            } else {
                json!([])
            };
            c.insert("conversationTags".into(), tags);
            org.conversations.push(c);
            org.messages.push(msgs);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn messages(
        &mut self,
        ids: &mut IdGen,
        conv: i64,
        contact: i64,
        created: i64,
        status: &str,
        k: usize,
        humans: &[i64],
    ) -> Vec<Message> {
        let mut t = created;
        let mut out = Vec::with_capacity(k);
        for i in 0..k {
            let id = IdGen::take(&mut ids.message);
            ids.message += self.rng.random_range(0..20);
            let author = if status == "bulk_sent" || (i == 0 && self.chance(0.7)) {
                Author {
                    user: true,
                    id: BOT_USER_ID,
                    bot: true,
                }
            } else if i % 2 == 1 {
                Author {
                    user: false,
                    id: contact,
                    bot: false,
                }
            } else {
                let agent = humans.choose(&mut self.rng).copied().unwrap_or(BOT_USER_ID);
                Author {
                    user: true,
                    id: agent,
                    bot: agent == BOT_USER_ID,
                }
            };
            out.push(self.message(id, conv, t, author, i));
            t += self.rng.random_range(1_000..2 * HOUR);
        }
        out
    }

    fn message(&mut self, id: i64, conv: i64, at: i64, author: Author, i: usize) -> Message {
        let (is_bot, is_contact) = (author.bot, !author.user);
        let body = match self.rng.random_range(0..40) {
            0 => Body::Absent,
            1 => Body::Null,
            _ if is_bot => Body::Text(Cow::Borrowed(self.pick(BOT_BODIES))),
            _ => Body::Text(Cow::Borrowed(self.pick(BODIES))),
        };
        let kind = if !is_bot && !is_contact && self.chance(0.15) {
            "private_note"
        } else {
            "chat"
        };
        let mut m = Message::new(id, conv, at, author, kind, body);
        let extra = if is_bot && self.chance(0.5) {
            Some(ExtraKind::Buttons)
        } else if is_contact && self.chance(0.6) {
            Some(ExtraKind::Context(i % 250))
        } else if !is_contact && !is_bot && self.chance(0.05) {
            Some(ExtraKind::Attachment(i))
        } else {
            None
        };
        m.extra = extra.map(|e| self.shared.extra(e));
        if self.chance(0.1) {
            m.attributes = Some(self.shared.app_attributes.clone());
        }
        m
    }

    fn meetings(&mut self, org: &Org, humans: &[i64], n: usize) -> Vec<Obj> {
        let contacts: Vec<i64> = org.contacts.keys().copied().collect();
        (0..n)
            .map(|i| {
                let start = self.anchor - self.rng.random_range(1..28 * 24) * HOUR;
                let agent = humans.choose(&mut self.rng).copied().unwrap_or(BOT_USER_ID);
                let conv = org.conversations.choose(&mut self.rng).map(|c| crate::org::int(c, "id"));
                let mut m = obj(json!({
                    "agentId": agent, "orgId": ORG_ID, "status": if i % 7 == 3 { "CANCELED" } else { "ACTIVE" },
                    "meetingSource": (["EMAIL_DROP", "CHAT", "CALENDAR_DROP"][i % 3]),
                    "schedulerId": contacts.get(i % contacts.len().max(1)),
                    "eventId": format!("evt-{:06x}", i * 7919 + 1), "slug": format!("mtg-{:06x}", i * 104_729 + 3),
                    "slotStart": start, "slotEnd": start + HOUR / 2, "updatedAt": start - DAY,
                    "scheduledAt": start - 2 * DAY, "meetingType": "New Meeting", "conversationId": conv,
                    "endUserTimeZone": (["America/Chicago", "Asia/Tokyo", "Europe/Paris"][i % 3]),
                }));
                if i.is_multiple_of(2) {
                    m.insert("meetingNotes".into(), json!(self.pick(&["Wants a pricing walkthrough", "デモ希望", "<b>VIP</b>"])));
                    m.insert("bookedBy".into(), json!(agent));
                }
                m
            })
            .collect()
    }
}

/// Unwrap a `json!` object literal into a map (an empty map for anything else).
pub fn obj(v: Value) -> Obj {
    match v {
        Value::Object(m) => m,
        _ => Obj::new(),
    }
}
