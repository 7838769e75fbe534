//! Watermark with an overlap window, shared by the incremental streams.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Highest cursor value (epoch ms, Drift's clock) of the last complete pass, and the cursor
/// values of the records inside the overlap window below it. A record is new when its cursor
/// is above the watermark, or inside the window with a value different from the one seen —
/// so the overlap re-reads without re-writing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Watermark {
    /// Highest cursor value seen in the last complete pass.
    #[serde(default)]
    pub watermark: Option<i64>,
    /// Record key -> cursor value, for values >= watermark - overlap.
    #[serde(default)]
    pub recent: BTreeMap<String, i64>,
}

impl Watermark {
    /// The lowest cursor value an incremental pass must read (None: read everything).
    pub fn floor(&self, overlap_ms: i64) -> Option<i64> {
        self.watermark.map(|w| w.saturating_sub(overlap_ms))
    }

    /// Whether a record with `key` and cursor `value` changed since the last pass.
    pub fn is_new(&self, key: &str, value: i64, overlap_ms: i64) -> bool {
        match self.watermark {
            None => true,
            Some(w) if value > w => true,
            Some(w) => {
                value >= w.saturating_sub(overlap_ms) && self.recent.get(key) != Some(&value)
            }
        }
    }

    /// The watermark after a successful pass that saw `seen` (key -> cursor value).
    pub fn advanced(&self, seen: &BTreeMap<String, i64>, overlap_ms: i64) -> Watermark {
        let max_seen = seen.values().copied().max();
        let watermark = match (self.watermark, max_seen) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let mut recent = self.recent.clone();
        recent.extend(seen.iter().map(|(k, v)| (k.clone(), *v)));
        if let Some(w) = watermark {
            let floor = w.saturating_sub(overlap_ms);
            recent.retain(|_, v| *v >= floor);
        }
        Watermark { watermark, recent }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_window_rereads_without_rewriting() {
        let seen: BTreeMap<String, i64> = [
            ("a".into(), 1_000),
            ("b".into(), 9_500),
            ("c".into(), 10_000),
        ]
        .into();
        let wm = Watermark::default().advanced(&seen, 1_000);
        assert_eq!(wm.watermark, Some(10_000));
        assert_eq!(
            wm.recent.keys().collect::<Vec<_>>(),
            ["b", "c"],
            "a is below the window"
        );
        assert_eq!(wm.floor(1_000), Some(9_000));
        assert!(!wm.is_new("b", 9_500, 1_000), "unchanged inside the window");
        assert!(wm.is_new("b", 9_600, 1_000), "moved inside the window");
        assert!(
            wm.is_new("d", 9_200, 1_000),
            "not seen before, inside the window"
        );
        assert!(wm.is_new("a", 10_001, 1_000), "above the watermark");
        assert!(!wm.is_new("a", 1_000, 1_000), "below the window");
        assert!(Watermark::default().is_new("x", 0, 1_000));
    }

    #[test]
    fn watermark_never_moves_back() {
        let wm = Watermark {
            watermark: Some(50),
            recent: BTreeMap::new(),
        };
        let next = wm.advanced(&[("x".into(), 10)].into(), 5);
        assert_eq!(next.watermark, Some(50));
        assert!(next.recent.is_empty());
    }
}

/// Cursor value per record key, for streams read whole on every run (accounts, meetings):
/// a record is written again only when its cursor value changed. Exact whatever the clocks
/// say, and it needs no overlap. `watermark` (the highest value) is kept for information.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct KeyedCursors {
    /// Highest cursor value seen.
    #[serde(default)]
    pub watermark: Option<i64>,
    /// Record key -> cursor value, as of the last successful run.
    #[serde(default)]
    pub seen: BTreeMap<String, i64>,
}

impl KeyedCursors {
    /// Whether the record `key` with cursor `value` is new or changed.
    pub fn changed(&self, key: &str, value: i64) -> bool {
        self.seen.get(key) != Some(&value)
    }

    /// The state after a successful run that saw exactly `seen`.
    pub fn from_seen(seen: BTreeMap<String, i64>) -> KeyedCursors {
        KeyedCursors {
            watermark: seen.values().copied().max(),
            seen,
        }
    }
}

#[cfg(test)]
mod keyed_tests {
    use super::*;

    #[test]
    fn only_new_or_changed_keys_are_changed() {
        let k = KeyedCursors::from_seen([("a".into(), 5), ("b".into(), 9)].into());
        assert_eq!(k.watermark, Some(9));
        assert!(!k.changed("a", 5));
        assert!(
            k.changed("a", 3),
            "a value that moved back still counts as a change"
        );
        assert!(k.changed("c", 1));
    }
}
