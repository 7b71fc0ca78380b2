//! What a pod says about where it runs: tolerations, node selector terms, node and pod
//! (anti-)affinity, and label selectors.
use super::*;

pub(super) fn validate_toleration(e: &mut Errs, p: &Path<'_>, t: &v1::Toleration) {
    if !t.key.is_empty() {
        check(e, p.field("key"), &t.key, is_qualified_name(&t.key));
    }
    if t.key.is_empty() && t.operator != "Exists" {
        invalid_str(
            e,
            p.field("operator"),
            &t.operator,
            "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
        );
    }
    if t.toleration_seconds.is_some() && t.effect != "NoExecute" {
        invalid_str(
            e,
            p.field("effect"),
            &t.effect,
            "effect must be 'NoExecute' when `tolerationSeconds` is set",
        );
    }
    match t.operator.as_str() {
        "" | "Equal" => check(
            e,
            p.field("operator"),
            &t.value,
            is_valid_label_value(&t.value),
        ),
        "Exists" => {
            if !t.value.is_empty() {
                invalid_str(
                    e,
                    p.field("operator"),
                    &t.value,
                    "value must be empty when `operator` is 'Exists'",
                );
            }
        }
        other => unsupported(e, p.field("operator"), other, &["Equal", "Exists"]),
    }
    one_of(e, p.field("effect"), &t.effect, TAINT_EFFECTS, true);
}

pub(super) fn validate_node_selector_requirement(
    e: &mut Errs,
    p: &Path<'_>,
    r: &v1::NodeSelectorRequirement,
    field: bool,
) {
    match r.operator.as_str() {
        "In" | "NotIn" => {
            if r.values.is_empty() {
                required(
                    e,
                    p.field("values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                );
            }
        }
        "Exists" | "DoesNotExist" => {
            if !r.values.is_empty() {
                forbidden(
                    e,
                    p.field("values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                );
            }
        }
        "Gt" | "Lt" => {
            if r.values.len() != 1 {
                required(
                    e,
                    p.field("values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                );
            } else if r.values[0].parse::<i64>().is_err() {
                invalid_str(e, p.index("values", 0), &r.values[0], "must be an integer");
            }
        }
        other => invalid_str(
            e,
            p.field("operator"),
            other,
            "not a valid selector operator",
        ),
    }
    if field {
        if r.key != "metadata.name" {
            unsupported(e, p.field("key"), &r.key, &["metadata.name"]);
        }
    } else {
        check(e, p.field("key"), &r.key, is_qualified_name(&r.key));
    }
}

pub(super) fn validate_node_selector_term(e: &mut Errs, p: &Path<'_>, t: &v1::NodeSelectorTerm) {
    for (i, r) in t.match_expressions.iter().enumerate() {
        validate_node_selector_requirement(e, &p.index("matchExpressions", i), r, false);
    }
    for (i, r) in t.match_fields.iter().enumerate() {
        validate_node_selector_requirement(e, &p.index("matchFields", i), r, true);
    }
}

pub(super) fn validate_pod_affinity_term(e: &mut Errs, p: &Path<'_>, t: &v1::PodAffinityTerm) {
    if let Some(s) = &t.label_selector {
        validate_label_selector(e, &p.field("labelSelector"), s);
    }
    if let Some(s) = &t.namespace_selector {
        validate_label_selector(e, &p.field("namespaceSelector"), s);
    }
    for (i, ns) in t.namespaces.iter().enumerate() {
        check(e, p.index("namespaces", i), ns, is_dns1123_label(ns));
    }
    if t.topology_key.is_empty() {
        required(e, p.field("topologyKey"), "can not be empty");
    } else {
        check(
            e,
            p.field("topologyKey"),
            &t.topology_key,
            is_qualified_name(&t.topology_key),
        );
    }
}

pub(super) fn validate_affinity(e: &mut Errs, p: &Path<'_>, a: &v1::Affinity) {
    if let Some(na) = &a.node_affinity {
        let np = p.field("nodeAffinity");
        if let Some(req) = &na.required_during_scheduling_ignored_during_execution {
            let rp = np.field("requiredDuringSchedulingIgnoredDuringExecution");
            if req.node_selector_terms.is_empty() {
                required(
                    e,
                    rp.field("nodeSelectorTerms"),
                    "must have at least one node selector term",
                );
            }
            for (i, t) in req.node_selector_terms.iter().enumerate() {
                let tp = rp.index("nodeSelectorTerms", i);
                validate_node_selector_term(e, &tp, t);
                // Required terms of new pods: In/NotIn values must be label values
                // (upstream's AllowInvalidLabelValueInRequiredNodeAffinity is false on create).
                for (j, r) in t.match_expressions.iter().enumerate() {
                    if matches!(r.operator.as_str(), "In" | "NotIn") {
                        for (k, v) in r.values.iter().enumerate() {
                            check(
                                e,
                                tp.index("matchExpressions", j).index("values", k),
                                v,
                                is_valid_label_value(v),
                            );
                        }
                    }
                }
            }
        }
        for (i, pref) in na
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .enumerate()
        {
            let pp = np.index("preferredDuringSchedulingIgnoredDuringExecution", i);
            if !(1..=100).contains(&pref.weight) {
                invalid(
                    e,
                    pp.field("weight"),
                    pref.weight,
                    "must be in the range 1-100",
                );
            }
            match &pref.preference {
                Some(t) => validate_node_selector_term(e, &pp.field("preference"), t),
                None => required(e, pp.field("preference"), ""),
            }
        }
    }
    let pod_terms = [
        (
            "podAffinity",
            a.pod_affinity.as_ref().map(|x| {
                (
                    &x.required_during_scheduling_ignored_during_execution,
                    &x.preferred_during_scheduling_ignored_during_execution,
                )
            }),
        ),
        (
            "podAntiAffinity",
            a.pod_anti_affinity.as_ref().map(|x| {
                (
                    &x.required_during_scheduling_ignored_during_execution,
                    &x.preferred_during_scheduling_ignored_during_execution,
                )
            }),
        ),
    ];
    for (name, terms) in pod_terms {
        let Some((req, pref)) = terms else { continue };
        let ap = p.field(name);
        for (i, t) in req.iter().enumerate() {
            validate_pod_affinity_term(
                e,
                &ap.index("requiredDuringSchedulingIgnoredDuringExecution", i),
                t,
            );
        }
        for (i, w) in pref.iter().enumerate() {
            let wp = ap.index("preferredDuringSchedulingIgnoredDuringExecution", i);
            if !(1..=100).contains(&w.weight) {
                invalid(
                    e,
                    wp.field("weight"),
                    w.weight,
                    "must be in the range 1-100",
                );
            }
            match &w.pod_affinity_term {
                Some(t) => validate_pod_affinity_term(e, &wp.field("podAffinityTerm"), t),
                None => required(e, wp.field("podAffinityTerm"), ""),
            }
        }
    }
}

pub(super) fn validate_label_selector(e: &mut Errs, p: &Path<'_>, s: &v1::LabelSelector) {
    validate_labels(e, p.field("matchLabels"), &s.match_labels);
    for (i, r) in s.match_expressions.iter().enumerate() {
        let rp = p.index("matchExpressions", i);
        match r.operator.as_str() {
            "In" | "NotIn" => {
                if r.values.is_empty() {
                    required(
                        e,
                        rp.field("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    );
                }
            }
            "Exists" | "DoesNotExist" => {
                if !r.values.is_empty() {
                    forbidden(
                        e,
                        rp.field("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    );
                }
            }
            other => invalid_str(
                e,
                rp.field("operator"),
                other,
                "not a valid selector operator",
            ),
        }
        check(e, rp.field("key"), &r.key, is_qualified_name(&r.key));
        for (j, v) in r.values.iter().enumerate() {
            check(e, rp.index("values", j), v, is_valid_label_value(v));
        }
    }
}
