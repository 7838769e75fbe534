//! The Drift attributes a push may write, per object: the object's standard fields
//! ([`drift_writer::mapping::standard_fields`]) and, for contacts, the org's custom contact
//! attributes as Drift lists them (`GET /contacts/attributes`, REFERENCE: Contacts, "List
//! custom attributes"). The web UI's column mapping picks from these; a mapping to any other
//! name would make Drift create a new custom attribute, which needs an explicit opt-in
//! ([`unknown_targets`]). Every push ([`crate::PushRun::prepare`], whichever edge started
//! it, dry runs included) is refused before any row is sent when its mapping names such an
//! attribute without the opt-in ([`refuse_new_attributes`]): `--allow-new-attributes`
//! (CLI), `"allow_new_attributes": true` (REST API), **Allow new custom attributes** (web
//! UI).

use crate::addresses::AddressPolicy;
use crate::check::Edge;
use crate::drift_auth::DriftAuth;
use crate::error::FlowError;
use drift_writer::{Mapping, Object};
use serde::Serialize;
use std::time::Duration;
use store::Store;

/// One attribute a column can be mapped to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttributeChoice {
    /// The attribute's key as Drift spells it (`email`, `first_name`, `lead_score`).
    pub name: String,
    /// For people: Drift's display name of a custom attribute, else the name.
    pub label: String,
    /// `standard` (a field driftbridge knows) or `custom` (listed by Drift for this org).
    pub kind: String,
}

/// What a column can be mapped to for `object` with `credential`, standard fields first.
/// Custom contact attributes come from Drift; when they cannot be read (the token lacks
/// `contact_read`, Drift is down) the list holds the standard fields and `note` says why.
///
/// Errors: an unknown credential; an unknown object (field `object`).
pub async fn attribute_choices(
    store: &Store,
    credential: &str,
    object: &str,
    addresses: AddressPolicy,
) -> Result<(Vec<AttributeChoice>, Option<String>), FlowError> {
    let object = parse_object(object)?;
    if object != Object::Contacts {
        return Ok((standard_choices(object), None));
    }
    let credential = crate::pusher::resolve_credential(store, credential)?;
    let client = DriftAuth::of(store, &credential)?
        .client(&credential.base_url, addresses)
        .rate_limit_per_min(credential.rate_limit_per_min)
        .share_budget(store.budget_share(&credential))
        .timeout(Duration::from_secs(20))
        .max_retries(1)
        .build()
        .map_err(|e| FlowError::invalid("credential", AddressPolicy::explain(&e)))?;
    Ok(choices_with(&client, object).await)
}

fn standard_choices(object: Object) -> Vec<AttributeChoice> {
    drift_writer::mapping::standard_fields(object)
        .iter()
        .map(|(name, _)| AttributeChoice {
            name: (*name).to_string(),
            label: (*name).to_string(),
            kind: "standard".into(),
        })
        .collect()
}

/// [`attribute_choices`] read with `client` (one request for contacts, none otherwise).
async fn choices_with(
    client: &drift_client::Client,
    object: Object,
) -> (Vec<AttributeChoice>, Option<String>) {
    let mut choices = standard_choices(object);
    if object != Object::Contacts {
        return (choices, None);
    }
    match client.contact_attributes().await {
        Ok(records) => {
            for a in records.items {
                if choices.iter().any(|c| c.name.eq_ignore_ascii_case(&a.name)) {
                    continue;
                }
                let shown = a.display_name.as_deref().map(str::trim).unwrap_or_default();
                let label = if shown.is_empty() {
                    a.name.clone()
                } else {
                    format!("{shown} ({})", a.name)
                };
                choices.push(AttributeChoice {
                    name: a.name,
                    label,
                    kind: "custom".into(),
                });
            }
            (choices, None)
        }
        Err(e) => (
            choices,
            Some(format!(
                "the org's custom contact attributes could not be read ({e}); only the standard fields are offered"
            )),
        ),
    }
}

/// How `edge` turns the opt-in on: a flag, a JSON field or a checkbox.
fn opt_in(edge: Edge) -> &'static str {
    match edge {
        Edge::Cli => "add `--allow-new-attributes`",
        Edge::Api => "send `\"allow_new_attributes\": true`",
        Edge::Web => "tick \"Allow new custom attributes\"",
    }
}

/// Refuse a push whose `mapping` for `object` names an attribute Drift does not have (a
/// run would create a new custom attribute) unless `allow` (the user opted in). The same
/// rule for the CLI, the REST API and the web UI, dry runs included; called by
/// [`crate::PushRun::prepare`] before the run is recorded, so no row is sent.
///
/// Standard fields (matched as the mapper matches them) never count. For contacts the
/// org's custom attributes are read with `client` (`GET /contacts/attributes`, one request,
/// only when the mapping names a non-standard attribute); when they cannot be read, each
/// non-standard attribute is refused too and the error says why. Other objects have no
/// custom attributes Drift lists, so any non-standard attribute is new.
///
/// Errors: invalid field `mapping` naming each column and attribute, and the fix on
/// `edge`: pick an existing attribute, leave the column out, or opt in.
pub async fn refuse_new_attributes(
    client: &drift_client::Client,
    object: Object,
    mapping: &Mapping,
    allow: bool,
    edge: Edge,
) -> Result<(), FlowError> {
    if allow {
        return Ok(());
    }
    let custom: Vec<(String, String)> = mapping
        .targets()
        .filter(|(_, attribute)| !Mapping::is_standard(object, attribute))
        .map(|(c, a)| (c.to_string(), a.to_string()))
        .collect();
    if custom.is_empty() {
        return Ok(());
    }
    let (choices, note) = choices_with(client, object).await;
    let unknown = unknown_targets(custom.iter().map(|(c, a)| (c, a)), &choices);
    if unknown.is_empty() {
        return Ok(());
    }
    let named: Vec<String> = unknown
        .iter()
        .map(|(c, a)| format!("column \"{c}\" -> \"{a}\""))
        .collect();
    let why = note.map(|n| format!(" ({n})")).unwrap_or_default();
    Err(FlowError::invalid(
        "mapping",
        format!(
            "Drift has no attribute for {}{why}: a run would create new custom attributes. \
             Pick an existing attribute, leave the column out, or {}",
            named.join(", "),
            opt_in(edge)
        ),
    ))
}

/// The targets of `mapping` (`column -> attribute[:type]`) that are not among `choices`:
/// each would create a new custom attribute in Drift. Empty targets (columns left out) are
/// not counted. Compared case-insensitively, the `:type` suffix ignored.
pub fn unknown_targets<'a>(
    mapping: impl IntoIterator<Item = (&'a String, &'a String)>,
    choices: &[AttributeChoice],
) -> Vec<(String, String)> {
    mapping
        .into_iter()
        .filter_map(|(column, target)| {
            let name = target.split(':').next().unwrap_or_default().trim();
            if name.is_empty() || choices.iter().any(|c| c.name.eq_ignore_ascii_case(name)) {
                None
            } else {
                Some((column.clone(), name.to_string()))
            }
        })
        .collect()
}

/// The attribute `column` matches (ignoring case, spaces, `_` and `-`, against a choice's
/// name or Drift display name), if any: the mapping's pre-selection. No match: `None` (the
/// column is left out until the user picks), never a made-up name.
pub fn suggested<'a>(column: &str, choices: &'a [AttributeChoice]) -> Option<&'a AttributeChoice> {
    let wanted = loose(column);
    choices.iter().find(|c| {
        loose(&c.name) == wanted || loose(c.label.split(" (").next().unwrap_or_default()) == wanted
    })
}

/// The keys a row can be matched on for `object`, the default first (as Drift spells them).
///
/// Errors: an unknown object (field `object`).
pub fn keys_of(object: &str) -> Result<Vec<&'static str>, FlowError> {
    use drift_writer::Key;
    Ok(parse_object(object)?
        .keys()
        .iter()
        .map(|k| match k {
            Key::Email => "email",
            Key::ExternalId => "externalId",
            Key::AccountId => "accountId",
            Key::Domain => "domain",
            Key::ContactId => "contactId",
        })
        .collect())
}

fn parse_object(object: &str) -> Result<Object, FlowError> {
    Object::parse(object).ok_or_else(|| {
        FlowError::invalid(
            "object",
            format!(
                "unknown object \"{}\"; use contacts, accounts, timeline or conversations",
                object.trim()
            ),
        )
    })
}

fn loose(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(name: &str, label: &str) -> AttributeChoice {
        AttributeChoice {
            name: name.into(),
            label: label.into(),
            kind: "custom".into(),
        }
    }

    #[test]
    fn columns_match_names_or_display_names_and_others_are_left_out() {
        let choices = vec![
            choice("first_name", "first_name"),
            choice("lead_score", "Lead Score (lead_score)"),
        ];
        assert_eq!(
            suggested("First Name", &choices).unwrap().name,
            "first_name"
        );
        assert_eq!(suggested("LeadScore", &choices).unwrap().name, "lead_score");
        assert!(suggested("JobTitle", &choices).is_none());
    }

    #[test]
    fn targets_not_offered_are_new_attributes() {
        let choices = vec![choice("email", "email")];
        let mapping: std::collections::BTreeMap<String, String> = [
            ("Email".to_string(), "EMAIL:email".to_string()),
            ("Title".to_string(), "JobTitle".to_string()),
            ("Skip".to_string(), String::new()),
        ]
        .into();
        assert_eq!(
            unknown_targets(&mapping, &choices),
            vec![("Title".to_string(), "JobTitle".to_string())]
        );
    }
}
