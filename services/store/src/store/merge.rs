//! JSON merge patch (RFC 7386) and the three-way merge of `kubectl apply`.
/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    use serde_json::Value;
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Default::default());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// kubectl apply's three-way merge on JSON: fields in `desired` are set (objects merged
/// recursively, lists and scalars replaced); fields in the last applied configuration that
/// `desired` no longer has are removed; everything else (set by controllers) is kept.
pub fn three_way_merge(
    current: &mut serde_json::Value,
    last: Option<&serde_json::Value>,
    desired: &serde_json::Value,
) {
    use serde_json::Value;
    let (Value::Object(cur), Value::Object(want)) = (current, desired) else {
        return;
    };
    if let Some(Value::Object(last)) = last {
        for k in last.keys() {
            if !want.contains_key(k) {
                cur.remove(k);
            }
        }
    }
    for (k, v) in want {
        let last_k = last.and_then(|l| l.get(k));
        match (cur.get_mut(k), v) {
            (Some(c @ Value::Object(_)), Value::Object(_)) => three_way_merge(c, last_k, v),
            // Unchanged since the last apply: what is live stays (it may hold what admission
            // or controllers added, like default tolerations).
            (Some(_), _) if last_k == Some(v) => {}
            _ => {
                cur.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    pub(super) fn merge_patch_follows_rfc7386() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut t, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}}));
        let mut t = json!({"a": [1, 2]});
        merge_patch(&mut t, &json!({"a": [3]}));
        assert_eq!(t, json!({"a": [3]}));
    }

    #[test]
    pub(super) fn three_way_merge_keeps_controller_fields_and_drops_removed_ones() {
        let mut cur = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "annotations": {"deployment.kubernetes.io/revision": "3"}},
                             "spec": {"replicas": 5, "paused": true}});
        let last = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"paused": true}});
        let want = json!({"metadata": {"labels": {"a": "1"}}, "spec": {}});
        three_way_merge(&mut cur, Some(&last), &want);
        assert_eq!(
            cur,
            json!({"metadata": {"labels": {"a": "1"}, "annotations": {"deployment.kubernetes.io/revision": "3"}}, "spec": {"replicas": 5}})
        );
    }

    #[test]
    pub(super) fn three_way_merge_leaves_lists_the_user_did_not_change() {
        let mut cur =
            json!({"spec": {"tolerations": [{"key": "a"}, {"key": "not-ready"}], "x": [1]}});
        let last = json!({"spec": {"tolerations": [{"key": "a"}], "x": [1]}});
        let want = json!({"spec": {"tolerations": [{"key": "a"}], "x": [2]}});
        three_way_merge(&mut cur, Some(&last), &want);
        assert_eq!(
            cur,
            json!({"spec": {"tolerations": [{"key": "a"}, {"key": "not-ready"}], "x": [2]}})
        );
    }
}
