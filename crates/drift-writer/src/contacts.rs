//! Contacts upsert by `email` or `externalId` (REFERENCE §7.1): look up, PATCH the changed
//! attributes of a match, POST when there is none; a duplicate conflict on POST becomes
//! lookup + PATCH; an ambiguous POST failure is looked up before any new attempt.
//!
//! A dry run looks up as well, then applies what earlier rows of the run would have written
//! ([`DryRun`](crate::dry_run::DryRun)): a row whose key an earlier row would create is planned
//! as an update of that contact, as the real run's lookup would find it.

use drift_client::{Contact, Error};
use serde_json::{json, Map, Value};

use crate::dry_run::DryObject;
use crate::engine::{
    ambiguous, create_backoff, lookup_failed, reason_or_fatal, reject, Ctx, Done, Fatal,
    CREATE_ATTEMPTS,
};
use crate::mapping::Prepared;
use crate::values::same;
use crate::{Key, OnDuplicate, OutcomeKind, Planned};

/// Upserts one prepared row (its key is set).
pub(crate) async fn upsert(ctx: &Ctx, p: &Prepared) -> Result<Done, Fatal> {
    let key = p.key.as_deref().unwrap_or_default();
    let mut attrs = p.custom.clone();
    attrs.extend(p.fields.clone());
    let mut found = match lookup(ctx, key).await {
        Ok(found) => found,
        Err(e) => return reject(e),
    };
    if ctx.opts.dry_run {
        if found.is_empty() {
            if let Some(new) = ctx.dry.get(&created_key(key)) {
                return Ok(update_planned(ctx, key, new, &attrs));
            }
        }
        for c in &mut found {
            if let Some(held) = ctx.dry.get(&contact_key(c.id)) {
                c.attributes = Some(held.value);
            }
        }
    }
    if found.is_empty() {
        create(ctx, p.row, key, &attrs).await
    } else {
        update_matches(ctx, key, &attrs, found, None).await
    }
}

/// Dry-run plan key of the contact a row creates with key value `key`.
fn created_key(key: &str) -> String {
    format!("contact-key:{key}")
}

/// Dry-run plan key of an existing contact.
fn contact_key(id: i64) -> String {
    format!("contact-id:{id}")
}

/// Dry run: an earlier row would create the contact with this key. The real run's lookup
/// finds that contact and updates it, so the plan is an update of the attributes it would
/// hold (its id is not known before the create).
fn update_planned(ctx: &Ctx, key: &str, mut new: DryObject, attrs: &Map<String, Value>) -> Done {
    let row = new.created_by.unwrap_or_default();
    let changes: Map<String, Value> = attrs
        .iter()
        .filter(|(k, v)| !same(new.value.get(k.as_str()), v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if changes.is_empty() {
        let reason = format!(
            "dry run: the contact row {row} creates would already hold these values; \
             nothing to send"
        );
        return Done::new(OutcomeKind::Unchanged, None, Some(reason));
    }
    let plan = Planned {
        method: "PATCH",
        path: format!("/contacts/{{id of the contact row {row} creates}}"),
        body: json!({ "attributes": changes }),
    };
    new.value.extend(changes);
    ctx.dry.put(created_key(key), new);
    let reason = format!("dry run: would update the contact row {row} creates: would send {plan}");
    Done::new(OutcomeKind::Updated, None, Some(reason))
}

/// The contacts with this key. A contact Drift sent that does not fit the client's model
/// is an [`Error::Unfit`]: the row is rejected with its reason and nothing is sent.
async fn lookup(ctx: &Ctx, key: &str) -> Result<Vec<Contact>, Error> {
    let found = match ctx.opts.key {
        Key::ExternalId => ctx.client.contacts_by_external_id(key).await,
        _ => ctx.client.contacts_by_email(key).await,
    }?;
    match found.unfit.into_iter().next() {
        Some(unfit) => Err(Error::Unfit(Box::new(unfit))),
        None => Ok(found.items),
    }
}

async fn create(ctx: &Ctx, row: u64, key: &str, attrs: &Map<String, Value>) -> Result<Done, Fatal> {
    if !attrs.contains_key("email") {
        return Ok(Done::rejected(format!(
            "no contact has {} {key}, and creating one needs an email; add an email column",
            ctx.opts.key.field()
        )));
    }
    if ctx.opts.dry_run {
        let plan = Planned {
            method: "POST",
            path: "/contacts".into(),
            body: json!({ "attributes": attrs }),
        };
        let new = DryObject {
            created_by: Some(row),
            value: attrs.clone(),
        };
        ctx.dry.put(created_key(key), new);
        return Ok(Done::planned(OutcomeKind::Created, None, &[plan]));
    }
    let mut last = String::new();
    for attempt in 0..CREATE_ATTEMPTS {
        match ctx.client.create_contact(attrs).await {
            Ok(c) => {
                let reason = (attempt > 0)
                    .then(|| format!("created on attempt {} after: {last}", attempt + 1));
                return Ok(Done::new(OutcomeKind::Created, c.id.to_string(), reason));
            }
            Err(Error::Conflict { message, .. }) => {
                let found = match lookup(ctx, key).await {
                    Ok(f) => f,
                    Err(e) => return reject(e),
                };
                if found.is_empty() {
                    return Ok(Done::rejected(format!(
                        "Drift refused the create as a duplicate ({message}) but no contact has {} {key}",
                        ctx.opts.key.field()
                    )));
                }
                return update_matches(ctx, key, attrs, found, None).await;
            }
            Err(e) if ambiguous(&e) => {
                last = e.to_string();
                let found = match lookup(ctx, key).await {
                    Ok(f) => f,
                    Err(e) => return lookup_failed(e, &last),
                };
                if !found.is_empty() {
                    let note = format!("the create answered `{last}` but had landed");
                    return update_matches(ctx, key, attrs, found, Some(note)).await;
                }
                create_backoff(attempt).await;
            }
            Err(e) => return reject(e),
        }
    }
    Ok(Done::rejected(format!(
        "create failed {CREATE_ATTEMPTS} times, last: {last}; lookups showed none landed"
    )))
}

/// Attributes of `new` whose value differs from what the contact holds.
fn diff(contact: &Contact, new: &Map<String, Value>) -> Map<String, Value> {
    let held = contact.attributes.as_ref();
    new.iter()
        .filter(|(k, v)| !same(held.and_then(|h| h.get(k.as_str())), v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Updates the contacts matched by the key. `landed`: the row's own create had landed
/// (outcome `created`, with this note).
async fn update_matches(
    ctx: &Ctx,
    key: &str,
    attrs: &Map<String, Value>,
    mut found: Vec<Contact>,
    landed: Option<String>,
) -> Result<Done, Fatal> {
    found.sort_by_key(|c| (c.created_at.unwrap_or(i64::MAX), c.id));
    let targets: Vec<Contact> = match (found.len(), ctx.opts.on_duplicate) {
        (1, _) | (_, OnDuplicate::UpdateAll) => found,
        (_, OnDuplicate::First) => found.into_iter().take(1).collect(),
        (n, OnDuplicate::Reject) => {
            let ids: Vec<String> = found.iter().map(|c| c.id.to_string()).collect();
            return Ok(Done::rejected(format!(
                "{n} contacts have {} {key} (ids {}); choose one with --on-duplicate first or \
                 update them all with --on-duplicate update-all",
                ctx.opts.key.field(),
                ids.join(", ")
            )));
        }
    };
    let mut ids = Vec::new();
    let mut plans = Vec::new();
    let mut changed = 0usize;
    for c in &targets {
        ids.push(c.id.to_string());
        let changes = diff(c, attrs);
        if changes.is_empty() {
            continue;
        }
        changed += 1;
        if ctx.opts.dry_run {
            let mut held = c.attributes.clone().unwrap_or_default();
            held.extend(changes.clone());
            let planned = DryObject {
                created_by: None,
                value: held,
            };
            ctx.dry.put(contact_key(c.id), planned);
            plans.push(Planned {
                method: "PATCH",
                path: format!("/contacts/{}", c.id),
                body: json!({ "attributes": changes }),
            });
            continue;
        }
        if let Err(e) = ctx.client.update_contact(c.id, &changes).await {
            // Stopped after this row wrote something (its own create landed, or some of the
            // matches were updated): say what, not "not sent".
            let reason = match e {
                Error::Stopped { .. } if ids.len() > 1 || landed.is_some() => e.to_string(),
                e => reason_or_fatal(e)?,
            };
            let reason = match &landed {
                Some(note) => format!("{note}; then updating it failed: {reason}"),
                None => reason,
            };
            let done = if ids.len() > 1 {
                format!(
                    "updated {} before contact {} failed: {reason}",
                    ids[..ids.len() - 1].join(", "),
                    c.id
                )
            } else {
                reason
            };
            return Ok(Done::rejected(done));
        }
    }
    let id = Some(ids.join(";"));
    let kind = match (&landed, changed) {
        (Some(_), _) => OutcomeKind::Created,
        (None, 0) => OutcomeKind::Unchanged,
        (None, _) => OutcomeKind::Updated,
    };
    if ctx.opts.dry_run && !plans.is_empty() {
        return Ok(Done::planned(kind, id, &plans));
    }
    Ok(Done::new(kind, id, landed))
}
