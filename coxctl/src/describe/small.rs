//! `describe` for ConfigMaps, Secrets, PersistentVolumes and Endpoints in kubectl's layouts
//! (pkg/describe/describe.go of kubernetes/kubectl 365ecee: ConfigMapDescriber,
//! describeSecret, describePersistentVolume, describeEndpoints). Go ranges over the data maps in
//! random order; keys are sorted here so the output is stable.
use base64::Engine;
use serde_json::Value;

use super::{annotations, pairs, W};
use crate::age;
use crate::jv::{arr, at, b, s};
use crate::printers::storage::access_modes;

fn head(w: &mut W, o: &Value, namespaced: bool) {
    w.line(0, format!("Name:\t{}", s(o, "metadata.name")));
    if namespaced {
        w.line(0, format!("Namespace:\t{}", s(o, "metadata.namespace")));
    }
    w.multiline(0, "Labels", &pairs(o, "metadata.labels"));
    w.multiline(0, "Annotations", &annotations(o, "metadata.annotations"));
}

fn sorted_entries(o: &Value, key: &str) -> Vec<(String, Value)> {
    let mut v: Vec<(String, Value)> = o[key]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn decoded(v: &Value) -> Vec<u8> {
    let text = v.as_str().unwrap_or("");
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|_| text.as_bytes().to_vec())
}

pub fn describe_configmap(w: &mut W, o: &Value) {
    head(w, o, true);
    w.line(0, "");
    w.line(0, "Data");
    w.line(0, "====");
    for (k, v) in sorted_entries(o, "data") {
        w.line(0, format!("{k}:"));
        w.line(0, "----");
        w.line(0, v.as_str().unwrap_or(""));
        w.line(0, "");
    }
    w.line(0, "");
    w.line(0, "BinaryData");
    w.line(0, "====");
    for (k, v) in sorted_entries(o, "binaryData") {
        w.line(0, format!("{k}: {} bytes", decoded(&v).len()));
    }
    w.line(0, "");
}

/// kubectl prints no Events for a Secret.
pub fn describe_secret(w: &mut W, o: &Value) {
    head(w, o, true);
    let ty = s(o, "type");
    w.line(0, "");
    w.line(0, format!("Type:\t{ty}"));
    w.line(0, "");
    w.line(0, "Data");
    w.line(0, "====");
    for (k, v) in sorted_entries(o, "data") {
        let bytes = decoded(&v);
        if k == "token" && ty == "kubernetes.io/service-account-token" {
            w.line(0, format!("{k}:\t{}", String::from_utf8_lossy(&bytes)));
        } else {
            w.line(0, format!("{k}:\t{} bytes", bytes.len()));
        }
    }
}

/// Go's `%v` of a []string: `[a b]`.
fn go_list(v: &[Value]) -> String {
    let items: Vec<&str> = v.iter().filter_map(Value::as_str).collect();
    format!("[{}]", items.join(" "))
}

fn volume_node_affinity(w: &mut W, o: &Value) {
    let required = at(o, "spec.nodeAffinity.required");
    if required.is_null() {
        w.line(0, "Node Affinity:\t<none>");
        return;
    }
    w.line(0, "Node Affinity:\t");
    let terms = arr(required, "nodeSelectorTerms");
    if terms.is_empty() {
        w.line(1, "Required Terms:\t<none>");
        return;
    }
    w.line(1, "Required Terms:\t");
    for (i, t) in terms.iter().enumerate() {
        let exprs = arr(t, "matchExpressions");
        if exprs.is_empty() {
            w.line(2, format!("Term {i}:\t<none>"));
            continue;
        }
        for (j, e) in exprs.iter().enumerate() {
            let mut text = format!("{} {}", s(e, "key"), s(e, "operator").to_lowercase());
            let values: Vec<&str> = arr(e, "values").iter().filter_map(Value::as_str).collect();
            if !values.is_empty() {
                text.push_str(&format!(" [{}]", values.join(", ")));
            }
            if j == 0 {
                w.line(2, format!("Term {i}:\t{text}"));
            } else {
                w.line(2, format!("\t{text}"));
            }
        }
    }
}

pub fn describe_pv(w: &mut W, o: &Value, now: i64) {
    head(w, o, false);
    w.line(
        0,
        format!("Finalizers:\t{}", go_list(arr(o, "metadata.finalizers"))),
    );
    // storageutil.GetPersistentVolumeClass: the beta annotation first, then the field.
    let class = o["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-class"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| s(o, "spec.storageClassName").into_owned());
    w.line(0, format!("StorageClass:\t{class}"));
    let deleted = s(o, "metadata.deletionTimestamp");
    if deleted.is_empty() {
        w.line(0, format!("Status:\t{}", s(o, "status.phase")));
    } else {
        w.line(
            0,
            format!("Status:\tTerminating (lasts {})", age::since(&deleted, now)),
        );
    }
    let claim = if at(o, "spec.claimRef").is_null() {
        String::new()
    } else {
        format!(
            "{}/{}",
            s(o, "spec.claimRef.namespace"),
            s(o, "spec.claimRef.name")
        )
    };
    w.line(0, format!("Claim:\t{claim}"));
    w.line(
        0,
        format!(
            "Reclaim Policy:\t{}",
            s(o, "spec.persistentVolumeReclaimPolicy")
        ),
    );
    w.line(
        0,
        format!(
            "Access Modes:\t{}",
            access_modes(arr(o, "spec.accessModes"))
        ),
    );
    let mode = s(o, "spec.volumeMode");
    if !mode.is_empty() {
        w.line(0, format!("VolumeMode:\t{mode}"));
    }
    w.line(0, format!("Capacity:\t{}", s(o, "spec.capacity.storage")));
    volume_node_affinity(w, o);
    w.line(0, format!("Message:\t{}", s(o, "status.message")));
    w.line(0, "Source:");
    if !at(o, "spec.hostPath").is_null() {
        w.line(2, "Type:\tHostPath (bare host directory volume)");
        w.line(2, format!("Path:\t{}", s(o, "spec.hostPath.path")));
        let ty = if at(o, "spec.hostPath.type").is_null() {
            "<none>".into()
        } else {
            s(o, "spec.hostPath.type")
        };
        w.line(2, format!("HostPathType:\t{ty}"));
    } else if !at(o, "spec.local").is_null() {
        w.line(
            2,
            "Type:\tLocalVolume (a persistent volume backed by local storage on a node)",
        );
        w.line(2, format!("Path:\t{}", s(o, "spec.local.path")));
    } else if !at(o, "spec.nfs").is_null() {
        w.line(
            2,
            "Type:\tNFS (an NFS mount that lasts the lifetime of a pod)",
        );
        w.line(2, format!("Server:\t{}", s(o, "spec.nfs.server")));
        w.line(2, format!("Path:\t{}", s(o, "spec.nfs.path")));
        w.line(2, format!("ReadOnly:\t{}", b(o, "spec.nfs.readOnly")));
    } else {
        w.line(1, "<unknown>");
    }
}

pub fn describe_endpoints(w: &mut W, o: &Value) {
    head(w, o, true);
    w.line(0, "Subsets:");
    for subset in arr(o, "subsets") {
        let ips = |key: &str| {
            let v: Vec<String> = arr(subset, key)
                .iter()
                .map(|a| s(a, "ip").into_owned())
                .collect();
            if v.is_empty() {
                "<none>".to_string()
            } else {
                v.join(",")
            }
        };
        w.line(1, format!("Addresses:\t{}", ips("addresses")));
        w.line(
            1,
            format!("NotReadyAddresses:\t{}", ips("notReadyAddresses")),
        );
        let ports = arr(subset, "ports");
        if !ports.is_empty() {
            w.line(1, "Ports:");
            w.line(2, "Name\tPort\tProtocol");
            w.line(2, "----\t----\t--------");
            for p in ports {
                let name = s(p, "name");
                let name = if name.is_empty() {
                    "<unset>".into()
                } else {
                    name
                };
                let proto = s(p, "protocol");
                let proto = if proto.is_empty() {
                    "TCP".into()
                } else {
                    proto
                };
                w.line(2, format!("{name}\t{}\t{proto}", s(p, "port")));
            }
        }
        w.line(0, "");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configmap_and_secret_layouts() {
        let cm = json!({"metadata": {"name": "c", "namespace": "d"},
            "data": {"b": "two", "a": "one"}});
        let mut w = W::new();
        describe_configmap(&mut w, &cm);
        assert_eq!(
            w.finish(),
            "Name:         c\nNamespace:    d\nLabels:       <none>\nAnnotations:  <none>\n\nData\n====\na:\n----\none\n\nb:\n----\ntwo\n\n\nBinaryData\n====\n\n"
        );
        let sec = json!({"metadata": {"name": "s", "namespace": "d"}, "type": "Opaque",
            "data": {"password": "c2VjcmV0", "user": "YWRtaW4="}});
        let mut w = W::new();
        describe_secret(&mut w, &sec);
        assert_eq!(
            w.finish(),
            "Name:         s\nNamespace:    d\nLabels:       <none>\nAnnotations:  <none>\n\nType:  Opaque\n\nData\n====\npassword:  6 bytes\nuser:      5 bytes\n"
        );
    }

    #[test]
    fn pv_and_endpoints_layouts() {
        let pv = json!({"metadata": {"name": "pv1", "finalizers": ["kubernetes.io/pv-protection"]},
            "spec": {"storageClassName": "manual", "persistentVolumeReclaimPolicy": "Retain",
                "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "5Gi"},
                "volumeMode": "Filesystem", "hostPath": {"path": "/tmp/x", "type": ""},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1", "n2"]}]}]}}},
            "status": {"phase": "Available"}});
        let mut w = W::new();
        describe_pv(&mut w, &pv, 0);
        let out = w.finish();
        assert_eq!(
            out,
            "Name:              pv1\nLabels:            <none>\nAnnotations:       <none>\n\
             Finalizers:        [kubernetes.io/pv-protection]\nStorageClass:      manual\n\
             Status:            Available\nClaim:             \nReclaim Policy:    Retain\n\
             Access Modes:      RWO\nVolumeMode:        Filesystem\nCapacity:          5Gi\n\
             Node Affinity:     \n  Required Terms:  \n    Term 0:        kubernetes.io/hostname in [n1, n2]\n\
             Message:           \nSource:\n    Type:          HostPath (bare host directory volume)\n\
             \x20   Path:          /tmp/x\n    HostPathType:  \n"
        );
        let ep = json!({"metadata": {"name": "e", "namespace": "d"},
            "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                "ports": [{"port": 80, "protocol": "TCP"}]}]});
        let mut w = W::new();
        describe_endpoints(&mut w, &ep);
        assert_eq!(
            w.finish(),
            "Name:         e\nNamespace:    d\nLabels:       <none>\nAnnotations:  <none>\nSubsets:\n  Addresses:          10.0.0.1,10.0.0.2\n  NotReadyAddresses:  <none>\n  Ports:\n    Name     Port  Protocol\n    ----     ----  --------\n    <unset>  80    TCP\n\n"
        );
    }
}
