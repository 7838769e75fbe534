//! Timeline events (`POST /contacts/timeline`) and conversations (`POST /conversations/new`),
//! REFERENCE §7.1 and §7.2. Drift cannot be asked whether such a write exists, so:
//! - a re-run is made safe by the [`Ledger`](crate::Ledger): a row whose fingerprint is in
//!   it is `unchanged` and sends nothing;
//! - an ambiguous failure (5xx, timeout, broken connection) is never retried: the row is
//!   rejected with a reason saying the write may have landed.

use drift_client::{Error, TimelineEvent};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

use crate::engine::{ambiguous, fingerprint, reject, Ctx, Done, Fatal};
use crate::mapping::Prepared;
use crate::{Key, Object, OutcomeKind, Planned};

fn text(p: &Prepared, field: &str) -> Option<String> {
    p.fields.get(field).map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// Ledger lookup; `Some(done)` when the row was sent by an earlier push.
fn already_sent(ctx: &Ctx, fp: &str) -> Option<Done> {
    let ledger = ctx.ledger.as_ref()?;
    match ledger.get(fp) {
        Ok(Some(id)) => Some(Done::new(
            OutcomeKind::Unchanged,
            Some(id),
            Some("already sent by an earlier push (push ledger)".into()),
        )),
        Ok(None) => None,
        Err(e) => Some(Done::rejected(format!("cannot read the push ledger: {e}"))),
    }
}

/// An earlier push's attempt at this row ended uncertain: `Some(done)` rejecting the row
/// unsent, unless `--resend-uncertain`.
fn earlier_uncertain(ctx: &Ctx, fp: &str, what: &str) -> Option<Done> {
    if ctx.opts.resend_uncertain || ctx.opts.dry_run {
        return None;
    }
    let ledger = ctx.ledger.as_ref()?;
    match ledger.uncertain(fp) {
        Ok(Some(error)) => {
            ctx.uncertain.fetch_add(1, Ordering::SeqCst);
            Some(Done::rejected(format!(
                "not sent again: an earlier push's attempt failed after the request was sent \
                 ({error}), so it may have created this {what}; check in Drift, and if it is \
                 missing send the row again with --resend-uncertain"
            )))
        }
        Ok(None) => None,
        Err(e) => Some(Done::rejected(format!("cannot read the push ledger: {e}"))),
    }
}

/// An attempt whose write may or may not have landed: remembered in the ledger so that a
/// re-run does not send the row again, and rejected with the reason.
fn uncertain(ctx: &Ctx, fp: &str, e: &Error, what: &str) -> Done {
    ctx.uncertain.fetch_add(1, Ordering::SeqCst);
    let recorded = match ctx
        .ledger
        .as_ref()
        .map(|l| l.put_uncertain(fp, &e.to_string()))
    {
        Some(Ok(())) => "a re-run of this input does not send it again (it comes back \
                         rejected) unless given --resend-uncertain"
            .to_string(),
        Some(Err(le)) => {
            format!("the push ledger could not record this ({le}), so a re-run would send it again")
        }
        None => "a re-run would send it again".to_string(),
    };
    Done::rejected(format!(
        "{e}; the {what} may or may not have been recorded and Drift cannot be asked, so it \
         was not retried; check in Drift: {recorded}"
    ))
}

/// Records a sent write; a ledger failure is noted in the reason, not hidden.
fn remember(ctx: &Ctx, fp: &str, id: &str) -> Option<String> {
    let ledger = ctx.ledger.as_ref()?;
    ledger.put(fp, id).err().map(|e| {
        format!("sent, but the push ledger could not record it ({e}); a re-run would send it again")
    })
}

/// Appends one timeline event to the contact named by `contactId` or `externalId`.
pub(crate) async fn timeline(ctx: &Ctx, p: &Prepared) -> Result<Done, Fatal> {
    let key = p.key.clone().unwrap_or_default();
    let Some(event) = text(p, "event") else {
        return Ok(Done::rejected(
            "event is required: the text of the timeline event",
        ));
    };
    let created_at = p.fields.get("createdAt").and_then(Value::as_i64);
    let custom = Value::Object(p.custom.clone()).to_string();
    let created_text = created_at.map(|c| c.to_string()).unwrap_or_default();
    let fp = fingerprint(&[
        Object::Timeline.as_str(),
        ctx.opts.key.field(),
        &key,
        &event,
        &created_text,
        &custom,
    ]);
    if let Some(done) = already_sent(ctx, &fp).or_else(|| earlier_uncertain(ctx, &fp, "event")) {
        return Ok(done);
    }
    let mut ev = TimelineEvent {
        contact_id: None,
        external_id: None,
        event: Some(event),
        created_at,
        attributes: (!p.custom.is_empty()).then(|| p.custom.clone()),
        extra: Default::default(),
    };
    match ctx.opts.key {
        Key::ExternalId => ev.external_id = Some(key.clone()),
        _ => match p.fields.get("contactId").and_then(Value::as_i64) {
            Some(id) => ev.contact_id = Some(id),
            None => return Ok(Done::rejected("contactId must be a whole number")),
        },
    }
    if ctx.opts.dry_run {
        let body = serde_json::to_value(&ev).unwrap_or(Value::Null);
        let plan = Planned {
            method: "POST",
            path: "/contacts/timeline".into(),
            body,
        };
        return Ok(Done::planned(OutcomeKind::Created, None, &[plan]));
    }
    match ctx.client.post_timeline_event(&ev).await {
        Ok(sent) => {
            let id = sent.contact_id.map(|c| c.to_string()).unwrap_or(key);
            let note = remember(ctx, &fp, &id);
            Ok(Done::new(OutcomeKind::Created, id, note))
        }
        Err(Error::NotFound { message, .. }) => Ok(Done::rejected(format!(
            "no contact has {} {key} ({message})",
            ctx.opts.key.field()
        ))),
        Err(e) if ambiguous(&e) => Ok(uncertain(ctx, &fp, &e, "event")),
        Err(e) => reject(e),
    }
}

/// Starts a conversation with the contact of `email` (the earliest contact with that email,
/// or a new one, per Drift) with the row's message `body`.
pub(crate) async fn conversation(ctx: &Ctx, p: &Prepared) -> Result<Done, Fatal> {
    let email = p.key.clone().unwrap_or_default();
    let Some(body) = text(p, "body") else {
        return Ok(Done::rejected(
            "body is required: the message that starts the conversation (--map col=body)",
        ));
    };
    let attrs = Value::Object(p.custom.clone()).to_string();
    let fp = fingerprint(&[Object::Conversations.as_str(), &email, &body, &attrs]);
    if let Some(done) =
        already_sent(ctx, &fp).or_else(|| earlier_uncertain(ctx, &fp, "conversation"))
    {
        return Ok(done);
    }
    if ctx.opts.dry_run {
        let plan = Planned {
            method: "POST",
            path: "/conversations/new".into(),
            body: json!({"email": email, "message": {"body": body, "attributes": p.custom}}),
        };
        return Ok(Done::planned(OutcomeKind::Created, None, &[plan]));
    }
    match ctx
        .client
        .create_conversation(&email, &body, p.custom.clone())
        .await
    {
        Ok(c) => {
            let id = c.id.to_string();
            let note = remember(ctx, &fp, &id);
            Ok(Done::new(OutcomeKind::Created, id, note))
        }
        Err(e) if ambiguous(&e) => Ok(uncertain(ctx, &fp, &e, "conversation")),
        Err(e) => reject(e),
    }
}
