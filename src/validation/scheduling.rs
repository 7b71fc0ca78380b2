//! What a pod says about where it runs: tolerations, node selector terms, node and pod
//! (anti-)affinity, and label selectors.
use super::*;

pub(super) fn validate_toleration(e: &mut Errs, p: &str, t: &v1::Toleration) {
    if !t.key.is_empty() {
        check(e, &format!("{p}.key"), &t.key, is_qualified_name(&t.key));
    }
    if t.key.is_empty() && t.operator != "Exists" {
        invalid_str(
            e,
            format!("{p}.operator"),
            &t.operator,
            "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
        );
    }
    if t.toleration_seconds.is_some() && t.effect != "NoExecute" {
        invalid_str(
            e,
            format!("{p}.effect"),
            &t.effect,
            "effect must be 'NoExecute' when `tolerationSeconds` is set",
        );
    }
    match t.operator.as_str() {
        "" | "Equal" => check(
            e,
            &format!("{p}.operator"),
            &t.value,
            is_valid_label_value(&t.value),
        ),
        "Exists" => {
            if !t.value.is_empty() {
                invalid_str(
                    e,
                    format!("{p}.operator"),
                    &t.value,
                    "value must be empty when `operator` is 'Exists'",
                );
            }
        }
        other => unsupported(e, format!("{p}.operator"), other, &["Equal", "Exists"]),
    }
    one_of(e, &format!("{p}.effect"), &t.effect, TAINT_EFFECTS, true);
}

pub(super) fn validate_node_selector_requirement(
    e: &mut Errs,
    p: &str,
    r: &v1::NodeSelectorRequirement,
    field: bool,
) {
    match r.operator.as_str() {
        "In" | "NotIn" => {
            if r.values.is_empty() {
                required(
                    e,
                    format!("{p}.values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                );
            }
        }
        "Exists" | "DoesNotExist" => {
            if !r.values.is_empty() {
                forbidden(
                    e,
                    format!("{p}.values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                );
            }
        }
        "Gt" | "Lt" => {
            if r.values.len() != 1 {
                required(
                    e,
                    format!("{p}.values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                );
            } else if r.values[0].parse::<i64>().is_err() {
                invalid_str(
                    e,
                    format!("{p}.values[0]"),
                    &r.values[0],
                    "must be an integer",
                );
            }
        }
        other => invalid_str(
            e,
            format!("{p}.operator"),
            other,
            "not a valid selector operator",
        ),
    }
    if field {
        if r.key != "metadata.name" {
            unsupported(e, format!("{p}.key"), &r.key, &["metadata.name"]);
        }
    } else {
        check(e, &format!("{p}.key"), &r.key, is_qualified_name(&r.key));
    }
}

pub(super) fn validate_node_selector_term(e: &mut Errs, p: &str, t: &v1::NodeSelectorTerm) {
    for (i, r) in t.match_expressions.iter().enumerate() {
        validate_node_selector_requirement(e, &format!("{p}.matchExpressions[{i}]"), r, false);
    }
    for (i, r) in t.match_fields.iter().enumerate() {
        validate_node_selector_requirement(e, &format!("{p}.matchFields[{i}]"), r, true);
    }
}

pub(super) fn validate_pod_affinity_term(e: &mut Errs, p: &str, t: &v1::PodAffinityTerm) {
    if let Some(s) = &t.label_selector {
        validate_label_selector(e, &format!("{p}.labelSelector"), s);
    }
    if let Some(s) = &t.namespace_selector {
        validate_label_selector(e, &format!("{p}.namespaceSelector"), s);
    }
    for (i, ns) in t.namespaces.iter().enumerate() {
        check(e, &format!("{p}.namespaces[{i}]"), ns, is_dns1123_label(ns));
    }
    if t.topology_key.is_empty() {
        required(e, format!("{p}.topologyKey"), "can not be empty");
    } else {
        check(
            e,
            &format!("{p}.topologyKey"),
            &t.topology_key,
            is_qualified_name(&t.topology_key),
        );
    }
}

pub(super) fn validate_affinity(e: &mut Errs, p: &str, a: &v1::Affinity) {
    if let Some(na) = &a.node_affinity {
        let np = format!("{p}.nodeAffinity");
        if let Some(req) = &na.required_during_scheduling_ignored_during_execution {
            let rp = format!("{np}.requiredDuringSchedulingIgnoredDuringExecution");
            if req.node_selector_terms.is_empty() {
                required(
                    e,
                    format!("{rp}.nodeSelectorTerms"),
                    "must have at least one node selector term",
                );
            }
            for (i, t) in req.node_selector_terms.iter().enumerate() {
                let tp = format!("{rp}.nodeSelectorTerms[{i}]");
                validate_node_selector_term(e, &tp, t);
                // Required terms of new pods: In/NotIn values must be label values
                // (upstream's AllowInvalidLabelValueInRequiredNodeAffinity is false on create).
                for (j, r) in t.match_expressions.iter().enumerate() {
                    if matches!(r.operator.as_str(), "In" | "NotIn") {
                        for (k, v) in r.values.iter().enumerate() {
                            check(
                                e,
                                &format!("{tp}.matchExpressions[{j}].values[{k}]"),
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
            let pp = format!("{np}.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
            if !(1..=100).contains(&pref.weight) {
                invalid(
                    e,
                    format!("{pp}.weight"),
                    pref.weight,
                    "must be in the range 1-100",
                );
            }
            match &pref.preference {
                Some(t) => validate_node_selector_term(e, &format!("{pp}.preference"), t),
                None => required(e, format!("{pp}.preference"), ""),
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
        let ap = format!("{p}.{name}");
        for (i, t) in req.iter().enumerate() {
            validate_pod_affinity_term(
                e,
                &format!("{ap}.requiredDuringSchedulingIgnoredDuringExecution[{i}]"),
                t,
            );
        }
        for (i, w) in pref.iter().enumerate() {
            let wp = format!("{ap}.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
            if !(1..=100).contains(&w.weight) {
                invalid(
                    e,
                    format!("{wp}.weight"),
                    w.weight,
                    "must be in the range 1-100",
                );
            }
            match &w.pod_affinity_term {
                Some(t) => validate_pod_affinity_term(e, &format!("{wp}.podAffinityTerm"), t),
                None => required(e, format!("{wp}.podAffinityTerm"), ""),
            }
        }
    }
}

pub(super) fn validate_label_selector(e: &mut Errs, p: &str, s: &v1::LabelSelector) {
    validate_labels(e, &format!("{p}.matchLabels"), &s.match_labels);
    for (i, r) in s.match_expressions.iter().enumerate() {
        let rp = format!("{p}.matchExpressions[{i}]");
        match r.operator.as_str() {
            "In" | "NotIn" => {
                if r.values.is_empty() {
                    required(
                        e,
                        format!("{rp}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    );
                }
            }
            "Exists" | "DoesNotExist" => {
                if !r.values.is_empty() {
                    forbidden(
                        e,
                        format!("{rp}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    );
                }
            }
            other => invalid_str(
                e,
                format!("{rp}.operator"),
                other,
                "not a valid selector operator",
            ),
        }
        check(e, &format!("{rp}.key"), &r.key, is_qualified_name(&r.key));
        for (j, v) in r.values.iter().enumerate() {
            check(e, &format!("{rp}.values[{j}]"), v, is_valid_label_value(v));
        }
    }
}
