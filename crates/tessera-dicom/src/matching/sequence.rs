//! Sequence matching (PS3.4 section C.2.2.2.6).
//!
//! A sequence key has one item of item keys. A stored sequence matches when
//! at least one of its items matches every item key, and only those items
//! are returned. A key without item keys, or whose item keys are all
//! universal, is universal: every record matches and every item is returned.
//! The standard makes the empty item universal but does not cover an item
//! of universal keys only. Treating that item alike keeps records whose
//! sequence is empty, as universal matching of a plain attribute does.

use std::collections::BTreeMap;

use super::{MatchError, Matcher};
use crate::sequences::SequenceItem;

/// A parsed sequence key: the matchers of its item keys that are not universal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceMatcher {
    keys: Vec<(String, Matcher)>,
}

impl SequenceMatcher {
    /// Parses the item keys of a sequence key, by keyword, with the rules of
    /// each item attribute's VR.
    pub fn parse(item_keys: &BTreeMap<String, String>) -> Result<SequenceMatcher, MatchError> {
        let mut keys = Vec::new();
        for (keyword, value) in item_keys {
            let matcher = Matcher::parse(keyword, value)?;
            if !matcher.is_universal() {
                keys.push((keyword.clone(), matcher));
            }
        }
        Ok(SequenceMatcher { keys })
    }

    /// Tells whether every record matches, whatever its items.
    pub fn is_universal(&self) -> bool {
        self.keys.is_empty()
    }

    /// Tells whether one item matches every item key. An attribute that the
    /// item lacks counts as empty, which only universal keys match.
    pub fn matches_item(&self, item: &SequenceItem) -> bool {
        self.keys.iter().all(|(keyword, matcher)| {
            let value = item.get(keyword).map(String::as_str).unwrap_or("");
            matcher.matches(value)
        })
    }

    /// Returns the items to send back, or None when the record does not
    /// match: all items for a universal key, else the matching ones.
    pub fn matching_items<'a>(&self, items: &'a [SequenceItem]) -> Option<Vec<&'a SequenceItem>> {
        if self.is_universal() {
            return Some(items.iter().collect());
        }

        let matching: Vec<&SequenceItem> = items
            .iter()
            .filter(|item| self.matches_item(item))
            .collect();
        (!matching.is_empty()).then_some(matching)
    }
}
