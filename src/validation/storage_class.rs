//! StorageClass `allowedTopologies` (kubernetes pkg/apis/storage/validation: validateAllowedTopologies,
//! with core validation's ValidateTopologySelectorTerm and validateTopologySelectorLabelRequirement).
//! Checked whatever the volumeBindingMode, as upstream does.
use std::collections::{BTreeMap, BTreeSet};

use super::*;

type ExprMap<'a> = BTreeMap<&'a str, BTreeSet<&'a str>>;

/// One term: each requirement needs values (no duplicates) and a qualified-name key, and a key
/// appears once. Returns the term as key → value set.
fn validate_term<'a>(
    e: &mut Errs,
    p: &Path<'_>,
    term: &'a v1::TopologySelectorTerm,
) -> ExprMap<'a> {
    let mut map = ExprMap::new();
    for (i, req) in term.match_label_expressions.iter().enumerate() {
        let rp = p.index("matchLabelExpressions", i);
        let mut values = BTreeSet::new();
        if req.values.is_empty() {
            required(e, rp.field("values"), "");
        }
        for (j, v) in req.values.iter().enumerate() {
            if !values.insert(v.as_str()) {
                duplicate(e, rp.index("values", j), v);
            }
        }
        check(e, rp.field("key"), &req.key, is_qualified_name(&req.key));
        if map.contains_key(req.key.as_str()) {
            duplicate(e, rp.field("key"), &req.key);
        }
        map.insert(req.key.as_str(), values);
    }
    map
}

/// `allowedTopologies`: every term valid, and no term equal to an earlier one. Upstream starts
/// its list of seen terms with one nil map per term (it is made with a length, then appended
/// to), and a nil map equals an empty one: so a term without expressions is reported as a
/// Duplicate once per term in the list, and once more per earlier empty term.
pub(super) fn validate_allowed_topologies(e: &mut Errs, topologies: &[v1::TopologySelectorTerm]) {
    let mut seen: Vec<Option<ExprMap<'_>>> = vec![None; topologies.len()];
    for (i, term) in topologies.iter().enumerate() {
        let at = format!("allowedTopologies[{i}]");
        let map = validate_term(e, &Path::Root(&at), term);
        for t in &seen {
            let same = match t {
                None => map.is_empty(),
                Some(t) => *t == map,
            };
            if same {
                duplicate(e, format!("{at}.matchLabelExpressions"), "");
            }
        }
        seen.push(Some(map));
    }
}

#[cfg(test)]
mod tests {
    use crate::kinds::Object;
    use crate::v1;

    fn class(terms: Vec<Vec<(&str, Vec<&str>)>>) -> Object {
        Object::StorageClass(v1::StorageClass {
            metadata: Some(v1::ObjectMeta {
                name: "zoned".into(),
                ..Default::default()
            }),
            provisioner: "example.com/p".into(),
            volume_binding_mode: Some("WaitForFirstConsumer".into()),
            allowed_topologies: terms
                .into_iter()
                .map(|t| v1::TopologySelectorTerm {
                    match_label_expressions: t
                        .into_iter()
                        .map(|(k, vs)| v1::TopologySelectorLabelRequirement {
                            key: k.into(),
                            values: vs.into_iter().map(String::from).collect(),
                        })
                        .collect(),
                })
                .collect(),
            ..Default::default()
        })
    }

    fn errs(terms: Vec<Vec<(&str, Vec<&str>)>>) -> Vec<String> {
        super::super::validate(&class(terms))
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn allowed_topologies_follow_upstream() {
        let zone = "topology.kubernetes.io/zone";
        assert!(errs(vec![]).is_empty());
        assert!(errs(vec![vec![(zone, vec!["a", "b"])], vec![(zone, vec!["c"])]]).is_empty());
        // Values are required, and a value appears once.
        assert_eq!(
            errs(vec![vec![(zone, vec![])]]),
            vec!["allowedTopologies[0].matchLabelExpressions[0].values: Required value"]
        );
        assert_eq!(
            errs(vec![vec![(zone, vec!["a", "a"])]]),
            vec![
                r#"allowedTopologies[0].matchLabelExpressions[0].values[1]: Duplicate value: "a""#
            ]
        );
        // The key is a label name; a key appears once in a term.
        let bad = errs(vec![vec![("-bad", vec!["a"])]]);
        assert_eq!(bad.len(), 1);
        assert!(
            bad[0].starts_with(
                r#"allowedTopologies[0].matchLabelExpressions[0].key: Invalid value: "-bad": "#
            ),
            "{bad:?}"
        );
        assert_eq!(
            errs(vec![vec![(zone, vec!["a"]), (zone, vec!["b"])]]),
            vec![
                r#"allowedTopologies[0].matchLabelExpressions[1].key: Duplicate value: "topology.kubernetes.io/zone""#
            ]
        );
        // The same term twice (in any order of values).
        assert_eq!(
            errs(vec![
                vec![(zone, vec!["a", "b"])],
                vec![(zone, vec!["b", "a"])]
            ]),
            vec![r#"allowedTopologies[1].matchLabelExpressions: Duplicate value: """#]
        );
        // A term without expressions equals upstream's nil entries: one Duplicate per term.
        assert_eq!(
            errs(vec![vec![]]),
            vec![r#"allowedTopologies[0].matchLabelExpressions: Duplicate value: """#]
        );
        assert_eq!(errs(vec![vec![(zone, vec!["a"])], vec![]]).len(), 2);
        // Immediate binding is checked the same way.
        let mut o = class(vec![vec![(zone, vec![])]]);
        if let Object::StorageClass(c) = &mut o {
            c.volume_binding_mode = Some("Immediate".into());
        }
        assert_eq!(super::super::validate(&o).len(), 1);
    }
}
