//! A push saved as a data destination (kind `drift`): object, credential, key, mapping,
//! unmapped-column and duplicate policies. `--save NAME` stores them; `--destination NAME`
//! runs them again (flags given on the command line override the saved values).

use super::{mapping_of, parse_object, usage, Args, Settings};
use crate::cmd_credentials::store_error;
use drift_writer::{Mapping, PushOptions};
use serde_json::{json, Value};
use store::Store;

/// Destination kind of a saved push.
const KIND: &str = "drift";

/// Merges a saved destination (if `--destination`) with the flags.
pub(crate) fn resolve(store: &Store, args: &Args) -> anyhow::Result<Settings> {
    let mut mapping = Mapping::default();
    let (mut object, mut credential, mut key, mut on_duplicate, mut include_unmapped) =
        (None, None, None, None, false);
    let mut allow_new_attributes = false;
    if let Some(name) = &args.destination {
        let d = store.destination(name).map_err(store_error)?;
        if d.kind != KIND {
            return Err(usage(format!(
                "destination {} writes to {}, not to Drift; push runs only `drift` destinations",
                d.name, d.kind
            )));
        }
        let text = |k: &str| d.config.get(k).and_then(Value::as_str).map(str::to_string);
        object = text("object").map(|o| parse_object(&o)).transpose()?;
        credential = d.credential.clone();
        key = text("key");
        on_duplicate = text("on_duplicate");
        include_unmapped = d.config.get("include_unmapped") == Some(&Value::Bool(true));
        allow_new_attributes = d.config.get("allow_new_attributes") == Some(&Value::Bool(true));
        if let Some(pairs) = text("mapping") {
            mapping = Mapping::parse_pairs(&pairs).map_err(|e| usage(e.to_string()))?;
        }
    }
    if let Some(o) = &args.object {
        object = Some(parse_object(o)?);
    }
    mapping.extend(mapping_of(args)?);
    Ok(Settings {
        object: object.ok_or_else(|| {
            usage("name what to push: contacts, accounts, timeline or conversations")
        })?,
        credential: args.credential.clone().or(credential).ok_or_else(|| {
            usage("--credential NAME is required (see `driftbridge credentials list`)")
        })?,
        key: args.key.clone().or(key),
        mapping,
        include_unmapped: args.include_unmapped || include_unmapped,
        allow_new_attributes: args.allow_new_attributes || allow_new_attributes,
        on_duplicate: args.on_duplicate.clone().or(on_duplicate),
        destination: args.destination.clone(),
    })
}

/// Saves the run's settings as destination `name` (exit 2 if the name is taken).
pub(crate) fn save(
    store: &Store,
    name: &str,
    credential: &str,
    opts: &PushOptions,
    args: &Args,
) -> anyhow::Result<()> {
    let on_duplicate = serde_json::to_value(opts.on_duplicate).unwrap_or(Value::Null);
    let config = json!({
        "object": opts.object.as_str(),
        "key": opts.key.field(),
        "mapping": opts.mapping.to_pairs(),
        "include_unmapped": opts.include_unmapped,
        "allow_new_attributes": args.allow_new_attributes,
        "on_duplicate": on_duplicate,
        "from": args.from,
    });
    store
        .add_destination(name, KIND, Some(credential), &config)
        .map_err(store_error)?;
    Ok(())
}
