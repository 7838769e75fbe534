//! Accounts upsert by `accountId` or `domain` (REFERENCE §7.3). Drift cannot look an account
//! up by domain, so a push with `--key domain` reads the account list once into an index
//! (live accounts only) and refreshes it after a duplicate-domain conflict or an ambiguous
//! create failure. Create requires `ownerId`; update sends the full account with
//! `accountId` in the body (quirk 10).
//!
//! An account Drift sends that does not fit the client's model (an unfit record) cannot be
//! updated safely: a row whose account is one is rejected with the reason, nothing sent.
//!
//! A dry run applies what earlier rows of the run would have written
//! ([`DryRun`](crate::dry_run::DryRun)), as the real run's index and lookups would show it: a
//! row whose domain an earlier row would create is planned as an update of that account.

use std::collections::HashMap;

use drift_client::{Account, Client, Error, Unfit};
use futures::TryStreamExt;
use serde_json::{json, Map, Value};
use tokio::sync::Mutex;

use crate::dry_run::DryObject;
use crate::engine::{
    ambiguous, create_backoff, lookup_failed, reject, Ctx, Done, Fatal, CREATE_ATTEMPTS,
};
use crate::mapping::Prepared;
use crate::values::same;
use crate::{Key, OutcomeKind, Planned};

/// Page size of `GET /accounts` (REFERENCE §6: max 65).
const PAGE_SIZE: u32 = 65;

/// Live accounts by domain (lower case, without `www.`), and the accounts that did not fit
/// the client's model by the domain read from their raw JSON.
pub(crate) struct Index {
    map: Mutex<HashMap<String, Account>>,
    unfit: Mutex<HashMap<String, Unfit>>,
}

type Accounts = (HashMap<String, Account>, HashMap<String, Unfit>);

/// A domain as Drift compares them: trimmed, lower case, without `www.`.
pub(crate) fn bare(domain: &str) -> String {
    let d = domain.trim().to_ascii_lowercase();
    d.strip_prefix("www.").map(str::to_string).unwrap_or(d)
}

async fn fetch(client: &Client) -> Result<Accounts, Error> {
    let mut map = HashMap::new();
    let mut unfit = HashMap::new();
    let mut pages = std::pin::pin!(client.accounts(PAGE_SIZE));
    while let Some(page) = pages.try_next().await? {
        for a in page.items {
            if a.deleted == Some(true) {
                continue;
            }
            if let Some(d) = a.domain.as_deref() {
                map.insert(bare(d), a);
            }
        }
        for u in page.unfit {
            let raw: Value = serde_json::from_str(&u.raw).unwrap_or(Value::Null);
            if raw.get("deleted") == Some(&Value::Bool(true)) {
                continue;
            }
            if let Some(d) = raw.get("domain").and_then(Value::as_str) {
                unfit.insert(bare(d), u);
            }
        }
    }
    Ok((map, unfit))
}

impl Index {
    /// Reads every account (`GET /accounts`, all pages).
    pub(crate) async fn load(client: &Client) -> Result<Index, Error> {
        let (map, unfit) = fetch(client).await?;
        Ok(Index {
            map: Mutex::new(map),
            unfit: Mutex::new(unfit),
        })
    }

    /// The account with this domain that did not fit the client's model, as an error that
    /// rejects the row.
    async fn unfit(&self, domain: &str) -> Option<Error> {
        let unfit = self.unfit.lock().await;
        let u = unfit.get(&bare(domain))?;
        Some(Error::Unfit(Box::new(u.clone())))
    }

    async fn get(&self, domain: &str) -> Option<Account> {
        self.map.lock().await.get(&bare(domain)).cloned()
    }

    async fn put(&self, a: &Account) {
        if let Some(d) = a.domain.as_deref() {
            self.map.lock().await.insert(bare(d), a.clone());
        }
    }

    async fn refresh(&self, client: &Client) -> Result<(), Error> {
        let (map, unfit) = fetch(client).await?;
        *self.map.lock().await = map;
        *self.unfit.lock().await = unfit;
        Ok(())
    }
}

/// Upserts one prepared row (its key is set).
pub(crate) async fn upsert(ctx: &Ctx, p: &Prepared) -> Result<Done, Fatal> {
    let key = p.key.as_deref().unwrap_or_default();
    if ctx.opts.key == Key::AccountId {
        if let Some((a, planned)) = dry_planned(ctx, &id_key(key)) {
            return update(ctx, p, a, planned.created_by, None).await;
        }
        return match ctx.client.account(key).await {
            Ok(a) => update(ctx, p, a, None, None).await,
            Err(Error::NotFound { .. }) => Ok(Done::rejected(format!(
                "no account has accountId {key}; Drift assigns account ids, so push new \
                 accounts with --key domain"
            ))),
            Err(e) => reject(e),
        };
    }
    let Some(index) = ctx.accounts.as_ref() else {
        return Ok(Done::rejected("internal: the account index was not loaded"));
    };
    if let Some((a, planned)) = dry_planned(ctx, &domain_key(key)) {
        return update(ctx, p, a, planned.created_by, None).await;
    }
    if let Some(e) = index.unfit(key).await {
        return reject(e);
    }
    match index.get(key).await {
        Some(a) => update(ctx, p, a, None, None).await,
        None => create(ctx, p, index).await,
    }
}

/// Dry-run plan key of the account with this domain.
fn domain_key(domain: &str) -> String {
    format!("account-domain:{}", bare(domain))
}

/// Dry-run plan key of the account with this `accountId`.
fn id_key(account_id: &str) -> String {
    format!("account-id:{account_id}")
}

/// Dry run: the account under `plan_key` as earlier rows would leave it, if they touched it.
fn dry_planned(ctx: &Ctx, plan_key: &str) -> Option<(Account, DryObject)> {
    if !ctx.opts.dry_run {
        return None;
    }
    let planned = ctx.dry.get(plan_key)?;
    let account = serde_json::from_value(Value::Object(planned.value.clone())).ok()?;
    Some((account, planned))
}

/// The custom properties of the row as Drift's `customProperties` entries.
fn custom_properties(custom: &Map<String, Value>) -> Vec<Value> {
    custom
        .iter()
        .map(|(name, value)| json!({ "name": name, "value": value }))
        .collect()
}

async fn create(ctx: &Ctx, p: &Prepared, index: &Index) -> Result<Done, Fatal> {
    let key = p.key.as_deref().unwrap_or_default();
    if !p.fields.contains_key("ownerId") {
        return Ok(Done::rejected(format!(
            "no account has domain {key}, and creating one needs ownerId (a Drift user id); \
             add an ownerId column"
        )));
    }
    let mut body = p.fields.clone();
    body.remove("accountId");
    if !p.custom.is_empty() {
        body.insert(
            "customProperties".into(),
            Value::Array(custom_properties(&p.custom)),
        );
    }
    if ctx.opts.dry_run {
        let plan = Planned {
            method: "POST",
            path: "/accounts/create".into(),
            body: Value::Object(body.clone()),
        };
        let new = DryObject {
            created_by: Some(p.row),
            value: body,
        };
        ctx.dry.put(domain_key(key), new);
        return Ok(Done::planned(OutcomeKind::Created, None, &[plan]));
    }
    let account: Account = match serde_json::from_value(Value::Object(body)) {
        Ok(a) => a,
        Err(e) => return Ok(Done::rejected(format!("cannot build the account: {e}"))),
    };
    let mut last = String::new();
    for attempt in 0..CREATE_ATTEMPTS {
        match ctx.client.create_account(&account).await {
            Ok(a) => {
                index.put(&a).await;
                let reason = (attempt > 0)
                    .then(|| format!("created on attempt {} after: {last}", attempt + 1));
                return Ok(Done::new(OutcomeKind::Created, a.account_id, reason));
            }
            Err(e) if matches!(e, Error::Conflict { .. }) || ambiguous(&e) => {
                let conflict = matches!(e, Error::Conflict { .. });
                last = e.to_string();
                if let Err(e) = index.refresh(&ctx.client).await {
                    return lookup_failed(e, &last);
                }
                if let Some(e) = index.unfit(key).await {
                    return reject(e);
                }
                match (index.get(key).await, conflict) {
                    (Some(a), true) => return update(ctx, p, a, None, None).await,
                    (Some(a), false) => {
                        let note = format!("the create answered `{last}` but had landed");
                        return update(ctx, p, a, None, Some(note)).await;
                    }
                    (None, true) => {
                        return Ok(Done::rejected(format!(
                            "Drift refused the create as a duplicate ({last}) but no live account has domain {key}"
                        )))
                    }
                    (None, false) => create_backoff(attempt).await,
                }
            }
            Err(e) => return reject(e),
        }
    }
    Ok(Done::rejected(format!(
        "create failed {CREATE_ATTEMPTS} times, last: {last}; the account list showed none landed"
    )))
}

/// Applies the row to `existing`; returns the full account body and whether anything changed.
fn merged(existing: &Account, p: &Prepared) -> (Map<String, Value>, bool) {
    let mut body = match serde_json::to_value(existing) {
        Ok(Value::Object(o)) => o,
        _ => Map::new(),
    };
    let mut changed = false;
    for (k, v) in &p.fields {
        let same_domain = k == "domain"
            && matches!((body.get(k), v), (Some(Value::String(a)), Value::String(b)) if bare(a) == bare(b));
        if k != "accountId" && !same_domain && !same(body.get(k), v) {
            body.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    if !p.custom.is_empty() {
        let mut props = match body.remove("customProperties") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        for (name, value) in &p.custom {
            match props
                .iter_mut()
                .find(|x| x.get("name").and_then(Value::as_str) == Some(name))
            {
                Some(prop) if same(prop.get("value"), value) => {}
                Some(prop) => {
                    prop["value"] = value.clone();
                    changed = true;
                }
                None => {
                    props.push(json!({ "name": name, "value": value }));
                    changed = true;
                }
            }
        }
        body.insert("customProperties".into(), Value::Array(props));
    }
    (body, changed)
}

/// Applies the row to `existing`. `created_by`: in a dry run, the row that would create
/// the account; `landed`: the row's own create had landed (outcome `created`, with this note).
async fn update(
    ctx: &Ctx,
    p: &Prepared,
    existing: Account,
    created_by: Option<u64>,
    landed: Option<String>,
) -> Result<Done, Fatal> {
    let id = existing.account_id.clone();
    let (body, changed) = merged(&existing, p);
    let kind = match (&landed, changed) {
        (Some(_), _) => OutcomeKind::Created,
        (None, false) => OutcomeKind::Unchanged,
        (None, true) => OutcomeKind::Updated,
    };
    if !changed {
        let reason = created_by.map(|row| {
            format!(
                "dry run: the account row {row} creates would already hold these values; \
                 nothing to send"
            )
        });
        return Ok(Done::new(kind, id, landed.or(reason)));
    }
    if ctx.opts.dry_run {
        let plan = Planned {
            method: "PATCH",
            path: "/accounts/update".into(),
            body: Value::Object(body.clone()),
        };
        let mut done = Done::planned(kind, id, std::slice::from_ref(&plan));
        if let Some(row) = created_by {
            done.reason = Some(format!(
                "dry run: would update the account row {row} creates: would send {plan}"
            ));
        }
        remember(ctx, body, created_by);
        return Ok(done);
    }
    let account: Account = match serde_json::from_value(Value::Object(body)) {
        Ok(a) => a,
        Err(e) => return Ok(Done::rejected(format!("cannot build the account: {e}"))),
    };
    match ctx.client.update_account(&account).await {
        Ok(a) => {
            if let Some(index) = ctx.accounts.as_ref() {
                index.put(&a).await;
            }
            Ok(Done::new(kind, a.account_id.or(id), landed))
        }
        Err(e) => reject(e),
    }
}

/// Dry run: records the account as a planned update leaves it, under its domain and id, as
/// the real run's index and lookups would show it to later rows.
fn remember(ctx: &Ctx, body: Map<String, Value>, created_by: Option<u64>) {
    let keys = [
        body.get("domain").and_then(Value::as_str).map(domain_key),
        body.get("accountId").and_then(Value::as_str).map(id_key),
    ];
    for key in keys.into_iter().flatten() {
        let planned = DryObject {
            created_by,
            value: body.clone(),
        };
        ctx.dry.put(key, planned);
    }
}
