//! Rows of the storage kinds as kubectl prints them: PersistentVolume, StorageClass.
use serde_json::Value;

use crate::age;
use crate::jv::{arr, s};

pub const PV: &[&str] = &[
    "NAME",
    "CAPACITY",
    "ACCESS MODES",
    "RECLAIM POLICY",
    "STATUS",
    "CLAIM",
    "STORAGECLASS",
    "VOLUMEATTRIBUTESCLASS",
    "REASON",
    "AGE",
];
pub const PV_WIDE: &[&str] = &["VOLUMEMODE"];

/// kubectl's GetAccessModesAsString: RWO, ROX, RWX, RWOP in that order, whatever the order
/// (and repeats) of the object's list. The one copy for get and describe.
pub fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(long, _)| has(long))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

pub fn pv(o: &Value, now: i64, wide: bool) -> Vec<String> {
    let claim = if crate::jv::at(o, "spec.claimRef").is_object() {
        format!(
            "{}/{}",
            s(o, "spec.claimRef.namespace"),
            s(o, "spec.claimRef.name")
        )
    } else {
        String::new()
    };
    let mut phase = s(o, "status.phase").into_owned();
    if !s(o, "metadata.deletionTimestamp").is_empty() {
        phase = "Terminating".into();
    }
    let mut row = vec![
        s(o, "metadata.name").into_owned(),
        s(o, "spec.capacity.storage").into_owned(),
        access_modes(arr(o, "spec.accessModes")),
        s(o, "spec.persistentVolumeReclaimPolicy").into_owned(),
        phase,
        claim,
        s(o, "spec.storageClassName").into_owned(),
        "<unset>".into(),
        s(o, "status.reason").into_owned(),
        age::since(&s(o, "metadata.creationTimestamp"), now),
    ];
    if wide {
        let vm = s(o, "spec.volumeMode");
        row.push(if vm.is_empty() {
            "<unset>".into()
        } else {
            vm.into_owned()
        });
    }
    row
}

pub const STORAGE_CLASS: &[&str] = &[
    "NAME",
    "PROVISIONER",
    "RECLAIMPOLICY",
    "VOLUMEBINDINGMODE",
    "ALLOWVOLUMEEXPANSION",
    "AGE",
];

pub fn storage_class(o: &Value, now: i64, _wide: bool) -> Vec<String> {
    let annotations = crate::jv::at(o, "metadata.annotations");
    let is_default = [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|k| annotations.get(k).and_then(Value::as_str) == Some("true"));
    let mut name = s(o, "metadata.name").into_owned();
    if is_default {
        name.push_str(" (default)");
    }
    let or = |path: &str, d: &str| {
        let v = s(o, path);
        if v.is_empty() {
            d.to_string()
        } else {
            v.into_owned()
        }
    };
    vec![
        name,
        s(o, "provisioner").into_owned(),
        or("reclaimPolicy", "Delete"),
        or("volumeBindingMode", "Immediate"),
        crate::jv::at(o, "allowVolumeExpansion")
            .as_bool()
            .unwrap_or(false)
            .to_string(),
        age::since(&s(o, "metadata.creationTimestamp"), now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pv_and_storage_class_rows_are_kubectls() {
        let pv_obj = json!({"metadata": {"name": "pvc-1", "creationTimestamp": ""},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadOnlyMany", "ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "standard",
                     "claimRef": {"namespace": "default", "name": "www-web-0"}},
            "status": {"phase": "Bound"}});
        let row = pv(&pv_obj, 0, false);
        assert_eq!(
            &row[..9],
            &[
                "pvc-1",
                "1Gi",
                "RWO,ROX",
                "Delete",
                "Bound",
                "default/www-web-0",
                "standard",
                "<unset>",
                ""
            ]
        );
        let sc = json!({"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "coxswain.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
        let row = storage_class(&sc, 0, false);
        assert_eq!(
            &row[..5],
            &[
                "standard (default)",
                "coxswain.io/local-path",
                "Delete",
                "WaitForFirstConsumer",
                "false"
            ]
        );
    }

    #[test]
    fn access_modes_are_in_kubectls_fixed_order_once_each() {
        let modes = serde_json::json!(["ReadWriteMany", "ReadWriteOnce", "ReadWriteMany", "Bogus"]);
        assert_eq!(access_modes(modes.as_array().unwrap()), "RWO,RWX");
        assert_eq!(access_modes(&[]), "");
    }
}
