//! PersistentVolume and PersistentVolumeClaim specs.
use super::*;

pub(super) const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

/// ValidatePersistentVolumeSpec: capacity, access modes, reclaim policy, exactly one source.
pub(super) fn validate_pv_spec(e: &mut Errs, spec: &v1::PersistentVolumeSpec) {
    if spec.access_modes.is_empty() {
        required(e, "spec.accessModes", "");
    }
    for m in &spec.access_modes {
        if !ACCESS_MODES.contains(&m.as_str()) {
            unsupported(e, "spec.accessModes", m, ACCESS_MODES);
        }
    }
    match spec.capacity.get("storage") {
        None => required(e, "spec.capacity", ""),
        Some(v) => {
            validate_quantity(e, "spec.capacity[storage]", v);
        }
    }
    for k in spec.capacity.keys().filter(|k| k.as_str() != "storage") {
        unsupported(e, "spec.capacity", k, &["storage"]);
    }
    one_of(
        e,
        "spec.persistentVolumeReclaimPolicy",
        &spec.persistent_volume_reclaim_policy,
        &["Delete", "Recycle", "Retain"],
        true,
    );
    match (&spec.host_path, &spec.local) {
        (None, None) => required(e, "spec", "must specify a volume type"),
        (Some(_), Some(_)) => forbidden(e, "spec.local", "may not specify more than 1 volume type"),
        (Some(h), None) if h.path.is_empty() => required(e, "spec.hostPath.path", ""),
        (None, Some(l)) => {
            if l.path.is_empty() {
                required(e, "spec.local.path", "");
            }
            if spec
                .node_affinity
                .as_ref()
                .and_then(|n| n.required.as_ref())
                .is_none()
            {
                required(
                    e,
                    "spec.nodeAffinity",
                    "Local volume requires node affinity",
                );
            }
        }
        _ => {}
    }
}

pub(super) fn validate_pvc_spec(e: &mut Errs, p: &str, spec: &v1::PersistentVolumeClaimSpec) {
    if spec.access_modes.is_empty() {
        required(
            e,
            format!("{p}.accessModes"),
            "at least 1 access mode is required",
        );
    }
    for m in &spec.access_modes {
        if !ACCESS_MODES.contains(&m.as_str()) {
            unsupported(e, format!("{p}.accessModes"), m, ACCESS_MODES);
        }
    }
    if spec.access_modes.iter().any(|m| m == "ReadWriteOncePod") && spec.access_modes.len() > 1 {
        forbidden(
            e,
            format!("{p}.accessModes"),
            "may not use ReadWriteOncePod with other access modes",
        );
    }
    if let Some(s) = &spec.selector {
        validate_label_selector(e, &Path::Root(p).field("selector"), s);
    }
    let requests = spec.resources.as_ref().map(|r| &r.requests);
    match requests.and_then(|r| r.get("storage")) {
        None => required(e, format!("{p}.resources[storage]"), ""),
        Some(v) => {
            if let Some(q) = validate_quantity(e, &format!("{p}.resources[storage]"), v) {
                if q.sign() <= 0 {
                    invalid_str(
                        e,
                        format!("{p}.resources[storage]"),
                        v,
                        "must be greater than zero",
                    );
                }
            }
        }
    }
    if let Some(r) = &spec.resources {
        for (name, v) in r.limits.iter() {
            validate_quantity(e, &format!("{p}.resources.limits[{name}]"), v);
        }
        for (name, v) in r.requests.iter().filter(|(n, _)| n.as_str() != "storage") {
            validate_quantity(e, &format!("{p}.resources.requests[{name}]"), v);
        }
    }
    if let Some(m) = &spec.volume_mode {
        one_of(
            e,
            &format!("{p}.volumeMode"),
            m,
            &["Block", "Filesystem"],
            false,
        );
    }
}
