//! Child tables as streams of their own (issue 20 over issue 19's `Stream::children`):
//! `conversation_tags`, `conversation_participants`, `message_buttons`, ... — every table
//! that `driftbridge catalog` lists with a `parent`. Airbyte and Singer discover them with
//! the JSON Schema of the child table's columns and the primary key (parent key, `_index`);
//! no cursor of their own: they are read with their parent, in the parent's sync mode.
//!
//! In a read, a selected child's rows are RECORDs emitted right after the parent record
//! they come from, derived by [`sinks::child_rows`] (the derivation every sink uses), so
//! the STATE that follows covers them. Every parent record brings the full set of its
//! children (all its tags, by `_index`): a destination can replace a parent's children by
//! the parent key. A child selected without its parent still needs the parent read: the
//! parent is read and only the children are emitted (the parent's records, statuses and
//! states are then not sent).

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use sync_core::{ChildTable, ConfiguredStream, Stream, SyncMode};

/// One child stream: its parent stream's name, its [`ChildTable`] and its stream (name,
/// JSON Schema of the columns, primary key).
#[derive(Clone, Debug)]
pub struct ChildDef {
    /// The parent stream (`conversations`).
    pub parent: String,
    /// How its rows come from a parent record.
    pub table: ChildTable,
    /// The child table as a stream (`conversation_tags`, key `conversation_id`, `_index`).
    pub stream: Stream,
}

/// Every child stream of the Drift catalog, in catalog order.
pub fn all() -> &'static [ChildDef] {
    static ALL: OnceLock<Vec<ChildDef>> = OnceLock::new();
    ALL.get_or_init(|| {
        source_drift::catalog()
            .streams
            .iter()
            .flat_map(|parent| {
                sinks::child_streams(parent)
                    .into_iter()
                    .map(|(table, stream)| ChildDef {
                        parent: parent.name.clone(),
                        table,
                        stream,
                    })
            })
            .collect()
    })
}

/// The child stream named `name`, if it is one.
pub fn get(name: &str) -> Option<&'static ChildDef> {
    all().iter().find(|c| c.stream.name == name)
}

/// The child streams of parent stream `parent`, in catalog order.
pub fn of(parent: &str) -> impl Iterator<Item = &'static ChildDef> + '_ {
    all().iter().filter(move |c| c.parent == parent)
}

/// What a read emits beyond the streams the engine reads: the selected children of each
/// parent, and the parents read only for their children (not emitted).
#[derive(Clone, Debug, Default)]
pub struct Emit {
    /// Parent stream -> its selected child streams.
    pub children: BTreeMap<String, Vec<&'static ChildDef>>,
    /// Parents read only because a child of theirs is selected.
    pub hidden: BTreeSet<String>,
}

impl Emit {
    /// The streams whose messages (statuses, states, errors) stand for engine stream
    /// `stream`: itself unless hidden, then its selected children.
    pub fn names(&self, stream: &str) -> Vec<String> {
        let mut out = Vec::new();
        if !self.hidden.contains(stream) {
            out.push(stream.to_string());
        }
        out.extend(
            self.children
                .get(stream)
                .into_iter()
                .flatten()
                .map(|c| c.stream.name.clone()),
        );
        out
    }
}

/// The streams to read for a selection of `chosen` stream names (parents and children,
/// each with its sync mode), in catalog order, and what to emit. A child whose parent is
/// not chosen adds its parent (hidden, in the child's mode). Errors name an unknown
/// stream and list the available ones.
pub fn plan(chosen: &[(String, SyncMode)]) -> Result<(Vec<ConfiguredStream>, Emit), String> {
    let all_parents = source_drift::catalog();
    let mut parents: BTreeMap<String, SyncMode> = BTreeMap::new();
    let mut emit = Emit::default();
    let mut wanted_children = Vec::new();
    for (name, mode) in chosen {
        if all_parents.get(name).is_some() {
            parents.insert(name.clone(), *mode);
        } else if let Some(child) = get(name) {
            wanted_children.push((child, *mode));
        } else {
            let mut names = all_parents.names();
            names.extend(all().iter().map(|c| c.stream.name.clone()));
            return Err(format!(
                "unknown stream `{name}`: available streams are {}",
                names.join(", ")
            ));
        }
    }
    for (child, mode) in wanted_children {
        if !parents.contains_key(&child.parent) {
            parents.insert(child.parent.clone(), mode);
            emit.hidden.insert(child.parent.clone());
        }
        let list = emit.children.entry(child.parent.clone()).or_default();
        if !list.iter().any(|c| c.stream.name == child.stream.name) {
            list.push(child);
        }
    }
    let streams = all_parents
        .streams
        .iter()
        .filter_map(|s| {
            parents.get(&s.name).map(|mode| ConfiguredStream {
                stream: s.clone(),
                mode: *mode,
            })
        })
        .collect();
    Ok((streams, emit))
}

/// The JSON Schema of a child stream with its `description`.
pub fn schema(child: &ChildDef) -> Value {
    child.stream.json_schema.clone()
}
