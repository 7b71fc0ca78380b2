//! Sets of nodes by their index in the snapshot ([`NodeSet`]), and the snapshot's index of
//! node labels ([`LabelIndex`]): which nodes carry a label key, or a (key, value) pair, by
//! interned ids ([`crate::affinity::label_id`]).
//!
//! A filter whose verdict depends only on node labels (NodeAffinity) turns its compiled terms
//! into a [`NodeSet`] once per cycle from the index, and the framework's filter loop then skips
//! the nodes outside the set with a bit test instead of running the filters on each
//! ([`crate::framework::Filter::candidates`]).
use crate::affinity::FastMap;

/// A set of node indices in `0..len`, as a bitset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSet {
    words: Vec<u64>,
    len: usize,
}

impl NodeSet {
    /// No node of `len`.
    pub fn empty(len: usize) -> NodeSet {
        NodeSet {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// Every node of `len`.
    pub fn full(len: usize) -> NodeSet {
        let mut s = NodeSet {
            words: vec![u64::MAX; len.div_ceil(64)],
            len,
        };
        s.trim();
        s
    }

    /// The nodes listed (indices `>= len` are ignored).
    pub fn from_indices(len: usize, idx: &[u32]) -> NodeSet {
        let mut s = NodeSet::empty(len);
        s.insert_all(idx);
        s
    }

    fn trim(&mut self) {
        let r = self.len % 64;
        if r != 0 {
            if let Some(w) = self.words.last_mut() {
                *w &= (1u64 << r) - 1;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many nodes are in the set.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn insert(&mut self, i: usize) {
        if i < self.len {
            self.words[i / 64] |= 1 << (i % 64);
        }
    }

    pub fn insert_all(&mut self, idx: &[u32]) {
        for &i in idx {
            self.insert(i as usize);
        }
    }

    #[inline]
    pub fn contains(&self, i: usize) -> bool {
        i < self.len && self.words[i / 64] & (1 << (i % 64)) != 0
    }

    /// Keep only the nodes also in `o` (same `len`).
    pub fn intersect(&mut self, o: &NodeSet) {
        for (a, b) in self.words.iter_mut().zip(&o.words) {
            *a &= b;
        }
    }

    /// Add the nodes of `o` (same `len`).
    pub fn union(&mut self, o: &NodeSet) {
        for (a, b) in self.words.iter_mut().zip(&o.words) {
            *a |= b;
        }
    }

    /// Every node of `0..len` not in the set.
    pub fn complement(&mut self) {
        for w in &mut self.words {
            *w = !*w;
        }
        self.trim();
    }

    /// The first member `>= from`, if any.
    #[inline]
    pub fn next_from(&self, from: usize) -> Option<usize> {
        if from >= self.len {
            return None;
        }
        let mut wi = from / 64;
        let mut w = self.words[wi] & (u64::MAX << (from % 64));
        loop {
            if w != 0 {
                return Some(wi * 64 + w.trailing_zeros() as usize);
            }
            wi += 1;
            if wi >= self.words.len() {
                return None;
            }
            w = self.words[wi];
        }
    }

    /// The smallest offset `j >= i` (`i < len`) such that node `(start + j) % len` is a
    /// member, walking the nodes in the rotating order the filter loop uses; `len` when no
    /// member is left in that walk.
    #[inline]
    pub fn next_in_rotation(&self, start: usize, i: usize) -> usize {
        let n = self.len;
        let idx = (start + i) % n;
        if idx >= start {
            // Still before the wrap: members in idx..n, then 0..start.
            if let Some(m) = self.next_from(idx) {
                return m - start;
            }
            match self.next_from(0) {
                Some(m) if m < start => n - start + m,
                _ => n,
            }
        } else {
            match self.next_from(idx) {
                Some(m) if m < start => n - start + m,
                _ => n,
            }
        }
    }
}

/// Which nodes (indices into the snapshot's nodes) carry each label key and each (key, value)
/// pair, by interned ids. Kept by [`crate::snapshot::Snapshot`] as nodes come, change and go.
#[derive(Debug, Clone, Default)]
pub struct LabelIndex {
    keys: FastMap<u32, Vec<u32>>,
    pairs: FastMap<u64, Vec<u32>>,
}

fn pair(key: u32, value: u32) -> u64 {
    (u64::from(key) << 32) | u64::from(value)
}

fn remove_from(v: &mut Vec<u32>, i: u32) {
    if let Some(p) = v.iter().position(|x| *x == i) {
        v.swap_remove(p);
    }
}

fn replace_in(v: &mut [u32], from: u32, to: u32) {
    if let Some(x) = v.iter_mut().find(|x| **x == from) {
        *x = to;
    }
}

impl LabelIndex {
    /// Node `i` carries these labels (as [`crate::affinity::label_ids`]).
    pub fn add(&mut self, i: usize, labels: &[(u32, u32)]) {
        for &(k, v) in labels {
            self.keys.entry(k).or_default().push(i as u32);
            self.pairs.entry(pair(k, v)).or_default().push(i as u32);
        }
    }

    /// Node `i` no longer carries these labels.
    pub fn remove(&mut self, i: usize, labels: &[(u32, u32)]) {
        for &(k, v) in labels {
            if let Some(l) = self.keys.get_mut(&k) {
                remove_from(l, i as u32);
                if l.is_empty() {
                    self.keys.remove(&k);
                }
            }
            let p = pair(k, v);
            if let Some(l) = self.pairs.get_mut(&p) {
                remove_from(l, i as u32);
                if l.is_empty() {
                    self.pairs.remove(&p);
                }
            }
        }
    }

    /// The node with these labels moved from index `from` to `to`.
    pub fn moved(&mut self, from: usize, to: usize, labels: &[(u32, u32)]) {
        for &(k, v) in labels {
            if let Some(l) = self.keys.get_mut(&k) {
                replace_in(l, from as u32, to as u32);
            }
            if let Some(l) = self.pairs.get_mut(&pair(k, v)) {
                replace_in(l, from as u32, to as u32);
            }
        }
    }

    /// The nodes carrying label key `key` (any value), in no particular order.
    pub fn with_key(&self, key: u32) -> &[u32] {
        self.keys.get(&key).map_or(&[], Vec::as_slice)
    }

    /// The nodes carrying label `key=value`, in no particular order.
    pub fn with_pair(&self, key: u32, value: u32) -> &[u32] {
        self.pairs.get(&pair(key, value)).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        let mut a = NodeSet::from_indices(70, &[0, 3, 64, 69, 80]);
        assert_eq!(a.count(), 4);
        assert!(a.contains(69) && !a.contains(80) && !a.contains(1));
        let b = NodeSet::from_indices(70, &[3, 5, 69]);
        let mut u = a.clone();
        u.union(&b);
        assert_eq!(u.count(), 5);
        a.intersect(&b);
        assert_eq!(a, NodeSet::from_indices(70, &[3, 69]));
        a.complement();
        assert_eq!(a.count(), 68);
        assert!(!a.contains(3) && a.contains(4) && !a.contains(70));
        assert_eq!(NodeSet::full(70).count(), 70);
        assert_eq!(NodeSet::full(64).count(), 64);
    }

    #[test]
    fn rotation_walk_matches_a_linear_scan() {
        for n in [1usize, 5, 63, 64, 65, 130] {
            for seed in 0..20u64 {
                let idx: Vec<u32> = (0..n as u32)
                    .filter(|i| (u64::from(*i) * 2654435761 + seed * 97) % 5 < 2)
                    .collect();
                let s = NodeSet::from_indices(n, &idx);
                for start in 0..n {
                    for i in 0..n {
                        let want = (i..n).find(|j| s.contains((start + j) % n)).unwrap_or(n);
                        assert_eq!(
                            s.next_in_rotation(start, i),
                            want,
                            "n={n} start={start} i={i}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn index_follows_adds_moves_and_removals() {
        let mut x = LabelIndex::default();
        x.add(0, &[(1, 10), (2, 20)]);
        x.add(1, &[(1, 11)]);
        x.add(2, &[(1, 10)]);
        let sorted = |s: &[u32]| {
            let mut v = s.to_vec();
            v.sort();
            v
        };
        assert_eq!(sorted(x.with_key(1)), vec![0, 1, 2]);
        assert_eq!(sorted(x.with_pair(1, 10)), vec![0, 2]);
        // Node 0 removed; node 2 (the last) takes its index.
        x.remove(0, &[(1, 10), (2, 20)]);
        x.moved(2, 0, &[(1, 10)]);
        assert_eq!(sorted(x.with_key(1)), vec![0, 1]);
        assert_eq!(sorted(x.with_pair(1, 10)), vec![0]);
        assert!(x.with_key(2).is_empty());
        assert!(x.with_pair(9, 9).is_empty());
    }
}
