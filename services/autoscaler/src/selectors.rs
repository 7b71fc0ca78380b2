//! The HPAs' target selectors, indexed for upstream's AmbiguousSelector check
//! (`hpasControllingPodsUnderSelector`): which HPAs' selectors select any of a set of pods.
//! Upstream keeps a BiMultimap and matches every pod against every selector of the namespace;
//! here each selector is filed under one of its equality requirements (`k=v`, `k in (…)`), so a
//! pod is matched only against the selectors filed under its own labels (plus the few that
//! have no equality requirement). The cost of a check is the selected pods' distinct label sets
//! times their labels, not the namespace's HPAs times its pods.
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use coxswain_api::selector::{LabelSelector, Op};

type Bucket = (String, String, String);

/// HPA key ("ns/name") → (namespace, selector), and the reverse index.
#[derive(Debug, Default)]
pub struct SelectorIndex {
    by_key: HashMap<String, (String, LabelSelector)>,
    /// (namespace, label key, label value) → HPAs filed there.
    anchored: HashMap<Bucket, HashSet<String>>,
    /// namespace → HPAs whose selectors have no equality requirement.
    unanchored: HashMap<String, HashSet<String>>,
}

fn buckets(ns: &str, sel: &LabelSelector) -> Option<Vec<Bucket>> {
    let r = sel
        .requirements
        .iter()
        .filter(|r| matches!(r.op, Op::Eq | Op::In))
        .min_by_key(|r| r.values.len())?;
    Some(
        r.values
            .iter()
            .map(|v| (ns.to_string(), r.key.clone(), v.clone()))
            .collect(),
    )
}

impl SelectorIndex {
    /// File (or re-file) `key`'s selector.
    pub fn put(&mut self, key: &str, namespace: &str, sel: LabelSelector) {
        if self
            .by_key
            .get(key)
            .is_some_and(|(ns, s)| ns == namespace && *s == sel)
        {
            return;
        }
        self.remove(key);
        match buckets(namespace, &sel) {
            Some(bs) => bs.into_iter().for_each(|b| {
                self.anchored.entry(b).or_default().insert(key.to_string());
            }),
            None => {
                self.unanchored
                    .entry(namespace.to_string())
                    .or_default()
                    .insert(key.to_string());
            }
        }
        self.by_key
            .insert(key.to_string(), (namespace.to_string(), sel));
    }

    pub fn remove(&mut self, key: &str) {
        let Some((ns, sel)) = self.by_key.remove(key) else {
            return;
        };
        match buckets(&ns, &sel) {
            Some(bs) => bs.into_iter().for_each(|b| {
                if let Some(set) = self.anchored.get_mut(&b) {
                    set.remove(key);
                    if set.is_empty() {
                        self.anchored.remove(&b);
                    }
                }
            }),
            None => {
                if let Some(set) = self.unanchored.get_mut(&ns) {
                    set.remove(key);
                    if set.is_empty() {
                        self.unanchored.remove(&ns);
                    }
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The filed HPAs of `namespace` whose selectors select any of these label sets (sorted).
    pub fn selecting<'a>(
        &self,
        namespace: &str,
        pods: impl IntoIterator<Item = &'a BTreeMap<String, String>>,
    ) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut seen: HashSet<&BTreeMap<String, String>> = HashSet::new();
        let none = HashSet::new();
        let unanchored = self.unanchored.get(namespace).unwrap_or(&none);
        for labels in pods {
            if !seen.insert(labels) {
                continue;
            }
            let candidates = labels
                .iter()
                .filter_map(|(k, v)| {
                    self.anchored
                        .get(&(namespace.to_string(), k.clone(), v.clone()))
                })
                .flatten()
                .chain(unanchored);
            for key in candidates {
                if out.contains(key) {
                    continue;
                }
                if self.by_key.get(key).is_some_and(|(_, s)| s.matches(labels)) {
                    out.insert(key.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::labels;

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap()
    }

    #[test]
    fn finds_the_hpas_selecting_any_pod_as_a_full_match_would() {
        let mut ix = SelectorIndex::default();
        ix.put("a/h1", "a", sel("app=web"));
        ix.put("a/h2", "a", sel("app in (web,api),tier=fe"));
        ix.put("a/h3", "a", sel("tier"));
        ix.put("a/h4", "a", sel("app=db"));
        ix.put("b/h5", "b", sel("app=web"));
        let p1 = labels(&[("app", "web"), ("tier", "fe")]);
        let p2 = labels(&[("app", "web")]);
        let p3 = labels(&[("app", "api"), ("tier", "be")]);
        fn got(ix: &SelectorIndex, pods: &[&BTreeMap<String, String>]) -> Vec<String> {
            ix.selecting("a", pods.iter().copied())
                .into_iter()
                .collect()
        }
        assert_eq!(got(&ix, &[&p1]), ["a/h1", "a/h2", "a/h3"]);
        assert_eq!(got(&ix, &[&p2, &p2]), ["a/h1"]);
        assert_eq!(got(&ix, &[&p3]), ["a/h3"]);
        assert!(got(&ix, &[]).is_empty());
        // Re-filing moves the selector; removing forgets it.
        ix.put("a/h1", "a", sel("app=db"));
        assert_eq!(got(&ix, &[&p2]), Vec::<String>::new());
        ix.remove("a/h3");
        assert_eq!(got(&ix, &[&p1]), ["a/h2"]);
        assert_eq!(ix.len(), 4);
        assert_eq!(
            ix.selecting("b", [&p2]).into_iter().collect::<Vec<_>>(),
            ["b/h5"]
        );
    }
}
