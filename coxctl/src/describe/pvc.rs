//! `describe pvc` in kubectl's layout (describePersistentVolumeClaim): StorageClass, Status,
//! Volume, Labels, Annotations, Finalizers, Capacity and Access Modes (once bound),
//! VolumeMode, Used By.
use serde_json::Value;

use super::{annotations, pairs, W};
use crate::jv::{arr, s};
use crate::printers::storage::access_modes;

/// The storage class of a claim: spec.storageClassName, else the beta annotation.
fn class(o: &Value) -> String {
    let c = s(o, "spec.storageClassName");
    if !c.is_empty() {
        return c.into_owned();
    }
    o["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-class"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// `used_by`: the names of the pods that mount the claim.
pub fn describe_pvc(w: &mut W, o: &Value, used_by: &[String]) {
    w.line(0, format!("Name:\t{}", s(o, "metadata.name")));
    w.line(0, format!("Namespace:\t{}", s(o, "metadata.namespace")));
    w.line(0, format!("StorageClass:\t{}", class(o)));
    if s(o, "metadata.deletionTimestamp").is_empty() {
        w.line(0, format!("Status:\t{}", s(o, "status.phase")));
    } else {
        w.line(0, "Status:\tTerminating");
    }
    let volume = s(o, "spec.volumeName");
    w.line(0, format!("Volume:\t{volume}"));
    w.multiline(0, "Labels", &pairs(o, "metadata.labels"));
    w.multiline(0, "Annotations", &annotations(o, "metadata.annotations"));
    let finalizers: Vec<&str> = arr(o, "metadata.finalizers")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    w.line(0, format!("Finalizers:\t[{}]", finalizers.join(" ")));
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            o["status"]["capacity"]["storage"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            access_modes(arr(o, "status.accessModes")),
        )
    };
    w.line(0, format!("Capacity:\t{capacity}"));
    w.line(0, format!("Access Modes:\t{modes}"));
    let mode = s(o, "spec.volumeMode");
    if !mode.is_empty() {
        w.line(0, format!("VolumeMode:\t{mode}"));
    }
    w.multiline(0, "Used By", used_by);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bound_and_pending_claims_print_as_kubectl() {
        let o = json!({"metadata": {"name": "www-web-0", "namespace": "default",
                "finalizers": ["kubernetes.io/pvc-protection"], "labels": {"app": "nginx"}},
            "spec": {"storageClassName": "standard", "volumeName": "pvc-1",
                "volumeMode": "Filesystem", "accessModes": ["ReadWriteOnce"]},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteMany", "ReadWriteOnce"]}});
        let mut w = W::new();
        describe_pvc(&mut w, &o, &["web-0".to_string()]);
        assert_eq!(
            w.finish(),
            "Name:          www-web-0\n\
             Namespace:     default\n\
             StorageClass:  standard\n\
             Status:        Bound\n\
             Volume:        pvc-1\n\
             Labels:        app=nginx\n\
             Annotations:   <none>\n\
             Finalizers:    [kubernetes.io/pvc-protection]\n\
             Capacity:      1Gi\n\
             Access Modes:  RWO,RWX\n\
             VolumeMode:    Filesystem\n\
             Used By:       web-0\n"
        );
        let pending = json!({"metadata": {"name": "c", "namespace": "d"},
            "spec": {"resources": {"requests": {"storage": "1Gi"}}}, "status": {"phase": "Pending"}});
        let mut w = W::new();
        describe_pvc(&mut w, &pending, &[]);
        let out = w.finish();
        assert!(out.contains("Capacity:      \n"), "{out}");
        assert!(out.contains("Used By:       <none>\n"), "{out}");
        assert!(out.contains("Finalizers:    []\n"), "{out}");
    }
}
