//! The plugin's decisions on fixed claims, volumes and classes.
use super::lister::meta_of;
use super::*;
use crate::plugins::testutil::*;
use std::sync::Arc;

fn class(name: &str, provisioner: &str, mode: &str) -> Arc<v1::StorageClass> {
    Arc::new(v1::StorageClass {
        metadata: Some(v1::ObjectMeta {
            name: name.into(),
            ..Default::default()
        }),
        provisioner: provisioner.into(),
        volume_binding_mode: Some(mode.into()),
        ..Default::default()
    })
}

fn claim(name: &str, class: &str, size: &str) -> v1::PersistentVolumeClaim {
    v1::PersistentVolumeClaim {
        metadata: Some(v1::ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            uid: format!("uid-{name}"),
            ..Default::default()
        }),
        spec: Some(v1::PersistentVolumeClaimSpec {
            access_modes: vec!["ReadWriteOnce".into()],
            storage_class_name: Some(class.into()),
            resources: Some(v1::VolumeResourceRequirements {
                requests: [("storage".to_string(), size.to_string())].into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn bound(mut c: v1::PersistentVolumeClaim, pv: &str) -> v1::PersistentVolumeClaim {
    c.spec.as_mut().unwrap().volume_name = pv.into();
    c.metadata
        .as_mut()
        .unwrap()
        .annotations
        .insert(ANN_BIND_COMPLETED.into(), "yes".into());
    c
}

fn volume(name: &str, class: &str, size: &str, on: Option<&str>) -> v1::PersistentVolume {
    v1::PersistentVolume {
        metadata: Some(v1::ObjectMeta {
            name: name.into(),
            ..Default::default()
        }),
        spec: Some(v1::PersistentVolumeSpec {
            capacity: [("storage".to_string(), size.to_string())].into(),
            access_modes: vec!["ReadWriteOnce".into()],
            storage_class_name: class.into(),
            node_affinity: on.map(|n| v1::VolumeNodeAffinity {
                required: Some(v1::NodeSelector {
                    node_selector_terms: vec![v1::NodeSelectorTerm {
                        match_expressions: vec![req("kubernetes.io/hostname", "In", &[n])],
                        ..Default::default()
                    }],
                }),
            }),
            ..Default::default()
        }),
        status: Some(v1::PersistentVolumeStatus {
            phase: "Available".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pod_with(claims: &[&str]) -> v1::Pod {
    let mut p = pod("p", &[]);
    spec(&mut p).volumes = claims
        .iter()
        .map(|c| v1::Volume {
            name: c.to_string(),
            persistent_volume_claim: Some(v1::PersistentVolumeClaimVolumeSource {
                claim_name: c.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    p
}

fn host(name: &str) -> v1::Node {
    node(name, &[("kubernetes.io/hostname", name)])
}

fn lister(
    claims: Vec<v1::PersistentVolumeClaim>,
    volumes: Vec<v1::PersistentVolume>,
) -> StaticVolumes {
    StaticVolumes {
        claims: claims.into_iter().map(Arc::new).collect(),
        volumes: volumes.into_iter().map(Arc::new).collect(),
        classes: vec![
            class("standard", "coxswain.io/local-path", "WaitForFirstConsumer"),
            class("local", NO_PROVISIONER, "WaitForFirstConsumer"),
            class("fast", "example.com/fast", "Immediate"),
        ],
    }
}

/// PreFilter then Filter on one node, as the framework runs them.
fn run(l: StaticVolumes, pod: &v1::Pod, n: v1::Node) -> (Code, Vec<String>) {
    let mut snap = snapshot(vec![n.clone()], vec![]);
    snap.volumes = Some(Volumes(Arc::new(l)));
    let mut state = CycleState::new();
    let s = VolumeBinding.pre_filter(&mut state, pod, &snap);
    if !s.is_success() {
        return (s.code, s.reasons.iter().map(|r| r.to_string()).collect());
    }
    let s = VolumeBinding.filter(&state, pod, &info(n, vec![]));
    (s.code, s.reasons.iter().map(|r| r.to_string()).collect())
}

#[test]
fn prefilter_rejections_are_upstreams() {
    let p = pod_with(&["data"]);
    let (code, r) = run(lister(vec![], vec![]), &p, host("n1"));
    assert_eq!(code, Code::UnschedulableAndUnresolvable);
    assert_eq!(r, vec!["persistentvolumeclaim \"data\" not found"]);

    let mut c = claim("data", "standard", "1Gi");
    c.metadata.as_mut().unwrap().deletion_timestamp = "2026-01-01T00:00:00Z".into();
    let (code, r) = run(lister(vec![c], vec![]), &p, host("n1"));
    assert_eq!(code, Code::UnschedulableAndUnresolvable);
    assert_eq!(r, vec!["persistentvolumeclaim \"data\" is being deleted"]);

    let (code, r) = run(
        lister(vec![claim("data", "fast", "1Gi")], vec![]),
        &p,
        host("n1"),
    );
    assert_eq!(code, Code::UnschedulableAndUnresolvable);
    assert_eq!(r, vec![ERR_UNBOUND_IMMEDIATE]);

    // No class: immediate too (the PV controller binds it).
    let (code, r) = run(
        lister(vec![claim("data", "", "1Gi")], vec![]),
        &p,
        host("n1"),
    );
    assert_eq!(
        (code, r),
        (
            Code::UnschedulableAndUnresolvable,
            vec![ERR_UNBOUND_IMMEDIATE.to_string()]
        )
    );

    let (code, _) = run(lister(vec![], vec![]), &pod("plain", &[]), host("n1"));
    assert_eq!(code, Code::Skip);
}

#[test]
fn bound_claims_follow_their_volumes_node_affinity() {
    let p = pod_with(&["data"]);
    let l = || {
        lister(
            vec![bound(claim("data", "standard", "1Gi"), "pv1")],
            vec![volume("pv1", "standard", "1Gi", Some("n1"))],
        )
    };
    assert_eq!(run(l(), &p, host("n1")).0, Code::Success);
    assert_eq!(
        run(l(), &p, host("n2")),
        (
            Code::UnschedulableAndUnresolvable,
            vec![ERR_NODE_CONFLICT.to_string()]
        )
    );
    let l = lister(
        vec![bound(claim("data", "standard", "1Gi"), "gone")],
        vec![],
    );
    assert_eq!(run(l, &p, host("n1")).1, vec![ERR_PV_NOT_EXIST.to_string()]);
}

#[test]
fn delayed_claims_match_a_local_volume_or_provision() {
    let p = pod_with(&["data"]);
    // A no-provisioner class: only a matching PV on the node will do.
    let l = || {
        lister(
            vec![claim("data", "local", "1Gi")],
            vec![
                volume("small", "local", "500Mi", Some("n1")),
                volume("big", "local", "10Gi", Some("n1")),
                volume("fit", "local", "2Gi", Some("n1")),
                volume("other", "local", "2Gi", Some("n2")),
            ],
        )
    };
    assert_eq!(run(l(), &p, host("n1")).0, Code::Success);
    assert_eq!(run(l(), &p, host("n2")).0, Code::Success);
    assert_eq!(
        run(l(), &p, host("n3")),
        (
            Code::UnschedulableAndUnresolvable,
            vec![ERR_BIND_CONFLICT.to_string()]
        )
    );
    let l = l();
    let claims = pod_claims(&p, &l).unwrap().unwrap();
    let d = find_pod_volumes(&claims, &l, &host("n1")).unwrap();
    assert_eq!(d.bindings.len(), 1);
    assert_eq!(meta_of(&d.bindings[0].1.metadata).1, "fit");
    assert!(d.provisions.is_empty());

    // Too big for every PV of a no-provisioner class.
    let l = lister(
        vec![claim("data", "local", "100Gi")],
        vec![volume("fit", "local", "2Gi", Some("n1"))],
    );
    assert_eq!(
        run(l, &p, host("n1")).1,
        vec![ERR_BIND_CONFLICT.to_string()]
    );

    // A provisioning class provisions when nothing matches, on any node.
    let l = lister(vec![claim("data", "standard", "1Gi")], vec![]);
    let claims = pod_claims(&p, &l).unwrap().unwrap();
    let d = find_pod_volumes(&claims, &l, &host("n3")).unwrap();
    assert_eq!(d.provisions.len(), 1);
    assert_eq!(d.node, "n3");

    // A claim already given a node fits that node only.
    let mut c = claim("data", "standard", "1Gi");
    c.metadata
        .as_mut()
        .unwrap()
        .annotations
        .insert(ANN_SELECTED_NODE.into(), "n1".into());
    let l = || lister(vec![c.clone()], vec![]);
    assert_eq!(run(l(), &p, host("n1")).0, Code::Success);
    assert_eq!(
        run(l(), &p, host("n2")).1,
        vec![ERR_BIND_CONFLICT.to_string()]
    );
}

#[test]
fn two_claims_never_take_the_same_volume() {
    let p = pod_with(&["a", "b"]);
    let l = lister(
        vec![claim("a", "local", "1Gi"), claim("b", "local", "1Gi")],
        vec![volume("only", "local", "1Gi", Some("n1"))],
    );
    assert_eq!(
        run(l, &p, host("n1")).1,
        vec![ERR_BIND_CONFLICT.to_string()]
    );
    let l = lister(
        vec![claim("a", "local", "1Gi"), claim("b", "local", "1Gi")],
        vec![
            volume("one", "local", "1Gi", Some("n1")),
            volume("two", "local", "1Gi", None),
        ],
    );
    assert_eq!(run(l, &p, host("n1")).0, Code::Success);
}

#[test]
fn a_volume_smaller_than_the_request_never_matches() {
    let p = pod_with(&["data"]);
    // Pre-bound to the claim (claimRef) but too small: not taken, and a no-provisioner class
    // has nothing else.
    let mut small = volume("small", "local", "500Mi", Some("n1"));
    small.spec.as_mut().unwrap().claim_ref = Some(v1::ObjectReference {
        namespace: "default".into(),
        name: "data".into(),
        ..Default::default()
    });
    let l = lister(vec![claim("data", "local", "1Gi")], vec![small.clone()]);
    assert_eq!(
        run(l, &p, host("n1")).1,
        vec![ERR_BIND_CONFLICT.to_string()]
    );
    // Exactly the request fits.
    let l = lister(
        vec![claim("data", "local", "1Gi")],
        vec![volume("exact", "local", "1024Mi", Some("n1"))],
    );
    assert_eq!(run(l, &p, host("n1")).0, Code::Success);
}

fn zoned_class(terms: Vec<Vec<(&str, &[&str])>>) -> Arc<v1::StorageClass> {
    let mut c = (*class("zoned", "coxswain.io/local-path", "WaitForFirstConsumer")).clone();
    c.allowed_topologies = terms
        .into_iter()
        .map(|t| v1::TopologySelectorTerm {
            match_label_expressions: t
                .into_iter()
                .map(|(k, vs)| v1::TopologySelectorLabelRequirement {
                    key: k.into(),
                    values: vs.iter().map(|v| v.to_string()).collect(),
                })
                .collect(),
        })
        .collect();
    Arc::new(c)
}

#[test]
fn provisioning_respects_the_class_allowed_topologies() {
    let p = pod_with(&["data"]);
    let zone = |name: &str, z: &str| node(name, &[("kubernetes.io/hostname", name), ("zone", z)]);
    let with = |c: Arc<v1::StorageClass>| {
        let mut l = lister(vec![claim("data", "zoned", "1Gi")], vec![]);
        l.classes.push(c);
        l
    };
    let terms = || vec![vec![("zone", &["a", "b"][..])]];
    assert_eq!(
        run(with(zoned_class(terms())), &p, zone("n1", "a")).0,
        Code::Success
    );
    assert_eq!(
        run(with(zoned_class(terms())), &p, zone("n2", "c")),
        (
            Code::UnschedulableAndUnresolvable,
            vec![ERR_BIND_CONFLICT.to_string()]
        )
    );
    // A node without the label does not match; any term may match.
    assert_eq!(
        run(with(zoned_class(terms())), &p, host("n3")).1,
        vec![ERR_BIND_CONFLICT.to_string()]
    );
    let two = vec![
        vec![("zone", &["a"][..])],
        vec![("kubernetes.io/hostname", &["n3"][..])],
    ];
    assert_eq!(run(with(zoned_class(two)), &p, host("n3")).0, Code::Success);
    // Every expression of a term must match; an empty term selects nothing.
    let both = vec![vec![
        ("zone", &["a"][..]),
        ("kubernetes.io/hostname", &["n9"][..]),
    ]];
    assert_eq!(
        run(with(zoned_class(both)), &p, zone("n1", "a")).1,
        vec![ERR_BIND_CONFLICT.to_string()]
    );
    assert_eq!(
        run(with(zoned_class(vec![vec![]])), &p, zone("n1", "a")).1,
        vec![ERR_BIND_CONFLICT.to_string()]
    );
    // A matching static PV is still taken whatever the class's topology.
    let mut l = with(zoned_class(terms()));
    l.volumes
        .push(Arc::new(volume("pv", "zoned", "1Gi", Some("n4"))));
    assert_eq!(run(l, &p, zone("n4", "z")).0, Code::Success);
}

fn names(pv: Option<Arc<v1::PersistentVolume>>) -> Option<String> {
    pv.map(|p| meta_of(&p.metadata).1.to_string())
}

fn labelled(mut pv: v1::PersistentVolume, k: &str, v: &str) -> v1::PersistentVolume {
    pv.metadata
        .as_mut()
        .unwrap()
        .labels
        .insert(k.into(), v.into());
    pv
}

#[test]
fn the_claim_selector_picks_among_volumes_by_their_labels() {
    let n = host("n1");
    let none = std::collections::HashSet::new();
    let vols: Vec<Arc<v1::PersistentVolume>> = vec![
        Arc::new(volume("plain", "local", "1Gi", None)),
        Arc::new(labelled(
            volume("gold", "local", "5Gi", None),
            "tier",
            "gold",
        )),
        Arc::new(labelled(
            volume("silver", "local", "2Gi", None),
            "tier",
            "silver",
        )),
    ];
    // No selector: the smallest that fits.
    let c = claim("data", "local", "1Gi");
    assert_eq!(
        names(matching_volume(&c, &vols, &n, &none)).as_deref(),
        Some("plain")
    );
    // matchLabels: only the labelled volume, though larger.
    let mut c = claim("data", "local", "1Gi");
    c.spec.as_mut().unwrap().selector = Some(v1::LabelSelector {
        match_labels: [("tier".to_string(), "gold".to_string())].into(),
        ..Default::default()
    });
    assert_eq!(
        names(matching_volume(&c, &vols, &n, &none)).as_deref(),
        Some("gold")
    );
    // matchExpressions: In (gold, silver) takes the smaller of the two.
    c.spec.as_mut().unwrap().selector = Some(v1::LabelSelector {
        match_expressions: vec![v1::LabelSelectorRequirement {
            key: "tier".into(),
            operator: "In".into(),
            values: vec!["gold".into(), "silver".into()],
        }],
        ..Default::default()
    });
    assert_eq!(
        names(matching_volume(&c, &vols, &n, &none)).as_deref(),
        Some("silver")
    );
    // A selector no volume matches: nothing (the claim would be provisioned instead).
    c.spec.as_mut().unwrap().selector = Some(v1::LabelSelector {
        match_labels: [("tier".to_string(), "bronze".to_string())].into(),
        ..Default::default()
    });
    assert_eq!(names(matching_volume(&c, &vols, &n, &none)), None);
}

#[test]
fn the_volume_mode_must_be_the_claims() {
    let n = host("n1");
    let none = std::collections::HashSet::new();
    let mut block = volume("block", "local", "1Gi", None);
    block.spec.as_mut().unwrap().volume_mode = Some("Block".into());
    let mut fs = volume("fs", "local", "2Gi", None);
    fs.spec.as_mut().unwrap().volume_mode = Some("Filesystem".into());
    let unset = volume("unset", "local", "3Gi", None);
    let vols: Vec<Arc<v1::PersistentVolume>> = vec![Arc::new(block), Arc::new(fs), Arc::new(unset)];
    // A claim without volumeMode is Filesystem: never the Block volume, smallest as usual.
    let c = claim("data", "local", "1Gi");
    assert_eq!(
        names(matching_volume(&c, &vols, &n, &none)).as_deref(),
        Some("fs")
    );
    // A Block claim: only the Block volume.
    let mut c = claim("data", "local", "1Gi");
    c.spec.as_mut().unwrap().volume_mode = Some("Block".into());
    assert_eq!(
        names(matching_volume(&c, &vols, &n, &none)).as_deref(),
        Some("block")
    );
}

#[test]
fn a_volume_prebound_to_the_claim_wins_or_nothing_does() {
    let none = std::collections::HashSet::new();
    let to_us = |mut pv: v1::PersistentVolume| {
        pv.spec.as_mut().unwrap().claim_ref = Some(v1::ObjectReference {
            namespace: "default".into(),
            name: "data".into(),
            ..Default::default()
        });
        pv
    };
    // Pre-bound, of another class and larger: still the answer (upstream checks only size,
    // mode, deletion and the node for it).
    let vols: Vec<Arc<v1::PersistentVolume>> = vec![
        Arc::new(volume("free", "local", "1Gi", None)),
        Arc::new(to_us(volume("ours", "other", "9Gi", Some("n1")))),
    ];
    let c = claim("data", "local", "1Gi");
    assert_eq!(
        names(matching_volume(&c, &vols, &host("n1"), &none)).as_deref(),
        Some("ours")
    );
    // On a node its affinity refuses: no match at all, not the free volume.
    assert_eq!(names(matching_volume(&c, &vols, &host("n2"), &none)), None);
    // A volume bound to another claim is never taken.
    let mut theirs = volume("theirs", "local", "1Gi", None);
    theirs.spec.as_mut().unwrap().claim_ref = Some(v1::ObjectReference {
        namespace: "default".into(),
        name: "other".into(),
        ..Default::default()
    });
    let vols = vec![Arc::new(theirs)];
    assert_eq!(names(matching_volume(&c, &vols, &host("n1"), &none)), None);
}

/// upstream's GetPodVolumeClaims and checkBoundClaims: a claim naming its volume but not yet
/// bound (no bind-completed annotation) waits for the PV controller, whatever its class; once
/// bound, only its volume's node affinity counts (not its class, size or mode).
#[test]
fn a_claim_naming_its_volume_waits_for_the_pv_controller_then_only_node_affinity_counts() {
    let named = |class: &str, pv: &str| {
        let mut c = claim("data", class, "1Gi");
        c.spec.as_mut().unwrap().volume_name = pv.into();
        c
    };
    // Bound to a volume that shares nothing with the claim but its name.
    let mut odd = volume("pv1", "other", "100Mi", Some("n1"));
    odd.spec.as_mut().unwrap().volume_mode = Some("Block".into());
    let unresolvable = |r: &str| (Code::UnschedulableAndUnresolvable, vec![r.to_string()]);
    // (what, the claim, the volumes, the node, PreFilter then Filter's answer)
    type Case<'a> = (
        &'a str,
        v1::PersistentVolumeClaim,
        Vec<v1::PersistentVolume>,
        &'a str,
        (Code, Vec<String>),
    );
    let cases: Vec<Case> = vec![
        (
            "pre-bound, WaitForFirstConsumer class, volume fits",
            named("local", "pv1"),
            vec![volume("pv1", "local", "1Gi", Some("n1"))],
            "n1",
            unresolvable(ERR_UNBOUND_IMMEDIATE),
        ),
        (
            "pre-bound, provisioning class",
            named("standard", "pv1"),
            vec![volume("pv1", "standard", "1Gi", None)],
            "n1",
            unresolvable(ERR_UNBOUND_IMMEDIATE),
        ),
        (
            "pre-bound to a missing volume",
            named("local", "gone"),
            vec![],
            "n1",
            unresolvable(ERR_UNBOUND_IMMEDIATE),
        ),
        (
            "pre-bound, no class",
            named("", "pv1"),
            vec![volume("pv1", "", "1Gi", None)],
            "n1",
            unresolvable(ERR_UNBOUND_IMMEDIATE),
        ),
        (
            "pre-bound, missing class: an error",
            named("nope", "pv1"),
            vec![],
            "n1",
            (
                Code::Error,
                vec!["storageclass.storage.k8s.io \"nope\" not found".to_string()],
            ),
        ),
        (
            "bound: the volume's node",
            bound(claim("data", "local", "1Gi"), "pv1"),
            vec![odd.clone()],
            "n1",
            (Code::Success, vec![]),
        ),
        (
            "bound: another node",
            bound(claim("data", "local", "1Gi"), "pv1"),
            vec![odd.clone()],
            "n2",
            unresolvable(ERR_NODE_CONFLICT),
        ),
        (
            "bound: a volume without node affinity fits every node",
            bound(claim("data", "local", "1Gi"), "pv1"),
            vec![volume("pv1", "local", "1Gi", None)],
            "n2",
            (Code::Success, vec![]),
        ),
        (
            "bound to a missing volume",
            bound(claim("data", "local", "1Gi"), "gone"),
            vec![],
            "n1",
            unresolvable(ERR_PV_NOT_EXIST),
        ),
    ];
    let p = pod_with(&["data"]);
    for (what, c, vols, n, want) in cases {
        assert_eq!(run(lister(vec![c], vols), &p, host(n)), want, "{what}");
    }
    // Lost (the PV controller saw its volume go): the PreFilter says so.
    let mut c = bound(claim("data", "local", "1Gi"), "gone");
    c.status = Some(v1::PersistentVolumeClaimStatus {
        phase: "Lost".into(),
        ..Default::default()
    });
    assert_eq!(
        run(lister(vec![c], vec![]), &p, host("n1")),
        unresolvable(
            "persistentvolumeclaim \"data\" bound to non-existent persistentvolume \"gone\""
        )
    );
}
