//! NodeAffinity's unit tests.
use super::*;

#[test]
fn a_term_that_cannot_be_parsed_matches_nothing() {
    let node = v1::Node {
        metadata: Some(v1::ObjectMeta {
            name: "n1".into(),
            labels: [("zone".to_string(), "a".to_string())].into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let term = |key: &str, op: &str, values: &[&str]| v1::NodeSelectorTerm {
        match_expressions: vec![v1::NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }],
        ..Default::default()
    };
    assert!(term_matches(&term("zone", "In", &["a"]), &node));
    // An invalid label value in the term: it cannot be parsed, so it matches nothing, even
    // with NotIn (which would otherwise match).
    assert!(!term_matches(&term("zone", "In", &["a", "-bad-"]), &node));
    assert!(!term_matches(&term("zone", "NotIn", &["b!"]), &node));
    assert!(!term_matches(&term("bad key!", "Exists", &[]), &node));
    assert!(!term_matches(&term("bad key!", "DoesNotExist", &[]), &node));
    let sel = v1::NodeSelector {
        node_selector_terms: vec![term("zone", "NotIn", &["b!"]), term("zone", "In", &["a"])],
    };
    assert!(
        node_selector_matches(&sel, &node),
        "the other term still matches"
    );
}
use crate::framework::Code;
use crate::plugins::testutil::*;

#[test]
fn operators() {
    for (op, values, label, want) in [
        ("In", vec!["a", "b"], Some("a"), true),
        ("In", vec!["a", "b"], Some("c"), false),
        ("In", vec!["a"], None, false),
        ("In", vec![], Some("a"), false),
        ("NotIn", vec!["a"], Some("b"), true),
        ("NotIn", vec!["a"], Some("a"), false),
        ("NotIn", vec!["a"], None, true),
        ("Exists", vec![], Some(""), true),
        ("Exists", vec![], None, false),
        ("Exists", vec!["a"], Some("a"), false),
        ("DoesNotExist", vec![], None, true),
        ("DoesNotExist", vec![], Some("x"), false),
        ("Gt", vec!["5"], Some("6"), true),
        ("Gt", vec!["5"], Some("5"), false),
        ("Gt", vec!["5"], Some("abc"), false),
        ("Gt", vec!["5"], None, false),
        ("Gt", vec!["x"], Some("6"), false),
        ("Gt", vec!["1", "2"], Some("6"), false),
        ("Lt", vec!["5"], Some("4"), true),
        ("Lt", vec!["5"], Some("-10"), true),
        ("Lt", vec!["5"], Some("5"), false),
        ("Bogus", vec!["a"], Some("a"), false),
    ] {
        assert_eq!(
            requirement_matches(&req("k", op, &values), label),
            want,
            "{op} {values:?} {label:?}"
        );
    }
}

fn affinity_pod(terms: Vec<v1::NodeSelectorTerm>) -> v1::Pod {
    let mut p = pod("p", &[]);
    affinity(&mut p).node_affinity = Some(v1::NodeAffinity {
        required_during_scheduling_ignored_during_execution: Some(v1::NodeSelector {
            node_selector_terms: terms,
        }),
        ..Default::default()
    });
    p
}

fn term(exprs: Vec<v1::NodeSelectorRequirement>) -> v1::NodeSelectorTerm {
    v1::NodeSelectorTerm {
        match_expressions: exprs,
        ..Default::default()
    }
}

#[test]
fn required_terms() {
    let n = node("node1", &[("zone", "a"), ("disk", "ssd")]);
    let fields = |op: &str, v: &[&str]| v1::NodeSelectorTerm {
        match_fields: vec![req("metadata.name", op, v)],
        ..Default::default()
    };
    for (terms, want) in [
        (vec![], false),
        (vec![term(vec![])], false),
        (vec![term(vec![req("zone", "In", &["a"])])], true),
        // ANDed within a term.
        (
            vec![term(vec![
                req("zone", "In", &["a"]),
                req("disk", "In", &["hdd"]),
            ])],
            false,
        ),
        // ORed across terms.
        (
            vec![
                term(vec![req("zone", "In", &["b"])]),
                term(vec![req("disk", "Exists", &[])]),
            ],
            true,
        ),
        (
            vec![term(vec![]), term(vec![req("zone", "In", &["a"])])],
            true,
        ),
        (vec![fields("In", &["node1"])], true),
        (vec![fields("In", &["node2"])], false),
        (vec![fields("NotIn", &["node2"])], true),
        (vec![fields("Exists", &[])], false),
        (
            vec![v1::NodeSelectorTerm {
                match_expressions: vec![req("zone", "In", &["a"])],
                match_fields: vec![req("metadata.name", "In", &["node2"])],
            }],
            false,
        ),
    ] {
        let p = affinity_pod(terms.clone());
        let s = NodeAffinity::default().filter(&CycleState::new(), &p, &info(n.clone(), vec![]));
        assert_eq!(s.is_success(), want, "{terms:?}");
        if !want {
            assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
            assert_eq!(s.message(), ERR_REASON);
        }
    }
}

#[test]
fn added_affinity_args_apply_to_every_pod() {
    let plugin = NodeAffinity::from_args(&serde_json::json!({"addedAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 5, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}}]
    }}))
    .expect("args");
    let pod = affinity_pod(vec![term(vec![req("kind", "Exists", &[])])]);
    let ok = node("ok", &[("zone", "a"), ("kind", "x"), ("disk", "ssd")]);
    let other_zone = node("b", &[("zone", "b"), ("kind", "x")]);
    let no_kind = node("c", &[("zone", "a")]);
    for (n, want) in [(&ok, true), (&other_zone, false), (&no_kind, false)] {
        // With PreFilter's compiled state (labels interned first, as the cache does) and
        // without.
        let ni = info(n.clone(), vec![]);
        let mut st = CycleState::new();
        let _ = plugin.pre_filter(&mut st, &pod, &Snapshot::default());
        assert_eq!(plugin.filter(&st, &pod, &ni).is_success(), want);
        assert_eq!(
            plugin
                .filter(&CycleState::new(), &pod, &info(n.clone(), vec![]))
                .is_success(),
            want
        );
    }
    assert_eq!(
        plugin.score(&CycleState::new(), &pod, &info(ok.clone(), vec![])),
        5
    );
    // A pod with no affinity of its own is still held to the added terms.
    let plain = v1::Pod::default();
    assert!(!plugin
        .filter(
            &CycleState::new(),
            &plain,
            &info(other_zone.clone(), vec![])
        )
        .is_success());
    assert!(NodeAffinity::from_args(&serde_json::json!({"bogus": 1})).is_err());
    assert!(
        NodeAffinity::from_args(&serde_json::json!({"addedAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}))
        .is_err()
    );
}

#[test]
fn node_selector_and_affinity_are_anded() {
    let n = node("n", &[("zone", "a"), ("disk", "ssd")]);
    let mut p = affinity_pod(vec![term(vec![req("zone", "In", &["a"])])]);
    spec(&mut p).node_selector = labels(&[("disk", "ssd")]);
    assert!(pod_matches_node_selector_and_affinity(&p, &n));
    spec(&mut p).node_selector = labels(&[("disk", "hdd")]);
    assert!(!pod_matches_node_selector_and_affinity(&p, &n));
    let mut plain = pod("p", &[]);
    spec(&mut plain).node_selector = labels(&[("zone", "a")]);
    assert!(pod_matches_node_selector_and_affinity(&plain, &n));
    assert!(NodeAffinity::default()
        .pre_filter(
            &mut CycleState::new(),
            &pod("q", &[]),
            &snapshot(vec![], vec![])
        )
        .is_skip());
}

#[test]
fn preferred_score() {
    let mut p = pod("p", &[]);
    affinity(&mut p).node_affinity = Some(v1::NodeAffinity {
        preferred_during_scheduling_ignored_during_execution: vec![
            v1::PreferredSchedulingTerm {
                weight: 2,
                preference: Some(term(vec![req("zone", "In", &["a"])])),
            },
            v1::PreferredSchedulingTerm {
                weight: 5,
                preference: Some(term(vec![req("disk", "In", &["ssd"])])),
            },
            v1::PreferredSchedulingTerm {
                weight: 9,
                preference: Some(term(vec![])),
            },
        ],
        ..Default::default()
    });
    let nodes = [
        node("n1", &[("zone", "a")]),
        node("n2", &[("zone", "a"), ("disk", "ssd")]),
        node("n3", &[]),
    ];
    let st = CycleState::new();
    let mut scores: Vec<NodeScore> = nodes
        .iter()
        .map(|n| NodeScore {
            name: node_name(n).into(),
            score: NodeAffinity::default().score(&st, &p, &info(n.clone(), vec![])),
        })
        .collect();
    assert_eq!(
        scores.iter().map(|s| s.score).collect::<Vec<_>>(),
        [2, 7, 0]
    );
    NodeAffinity::default().normalize(&st, &p, &mut scores);
    assert_eq!(
        scores.iter().map(|s| s.score).collect::<Vec<_>>(),
        [28, 100, 0]
    );
}
