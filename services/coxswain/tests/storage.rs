//! Storage that binds, end to end on the real binary (issue 16 §4, scenario S54): the default
//! StorageClass `standard` provisions a directory per claim when the claim's first pod is
//! scheduled, claims and volumes show Bound in `coxctl get pvc|pv`, a replacement pod gets the
//! same claim, and reclaimPolicy Delete/Retain hold when a claim is deleted.
use std::time::Duration;

use coxswain_test_support::{scenarios_dir, wait_until, Coxswain};
use serde_json::Value;

const T: Duration = Duration::from_secs(60);

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

/// The name of the second of `up`'s two nodes, once both are registered.
fn second_node(c: &Coxswain) -> String {
    let nodes = wait_until("two nodes", T, || {
        let list = items(&c.json(&["get", "nodes"]));
        (list.len() == 2).then_some(list)
    })
    .expect("nodes");
    nodes[1]["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn statefulset_claims_bind_when_their_pods_are_scheduled_and_follow_replacements() {
    let c = Coxswain::start_fast_up(&[]).expect("start coxswain up");
    // The default class is made once the controllers' caches are synced.
    let sc = wait_until("the default StorageClass", T, || {
        let out = c.coxctl(&["get", "storageclass"]).stdout;
        out.contains("standard").then_some(out)
    })
    .expect("default class");
    assert!(
        sc.contains("standard (default)") && sc.contains("WaitForFirstConsumer"),
        "{sc}"
    );
    let manifest = scenarios_dir().join("53-statefulset-nginx-storage.yaml");
    c.coxctl(&["apply", "-f", manifest.to_str().expect("utf8")])
        .success();

    // Every claim is Bound to its own provisioned volume.
    let claims = wait_until("three Bound claims", T, || {
        let list = items(&c.json(&["get", "pvc"]));
        (list.len() == 3 && list.iter().all(|p| p["status"]["phase"] == "Bound")).then_some(list)
    })
    .expect("claims bind");
    for p in &claims {
        assert_eq!(p["spec"]["storageClassName"], "standard", "{p}");
        assert_eq!(p["status"]["capacity"]["storage"], "1Gi", "{p}");
        assert_eq!(p["status"]["accessModes"][0], "ReadWriteOnce", "{p}");
        let volume = p["spec"]["volumeName"].as_str().expect("volumeName");
        assert_eq!(
            volume,
            format!("pvc-{}", p["metadata"]["uid"].as_str().unwrap_or(""))
        );
    }
    let table = c.coxctl(&["get", "pvc"]).success().stdout;
    let header = table.lines().next().unwrap_or_default();
    for col in [
        "NAME",
        "STATUS",
        "VOLUME",
        "CAPACITY",
        "ACCESS MODES",
        "STORAGECLASS",
        "AGE",
    ] {
        assert!(header.contains(col), "{table}");
    }
    assert!(
        table.contains("www-stateful-nginx-0")
            && table.contains("RWO")
            && table.contains("standard"),
        "{table}"
    );

    // The volumes: Bound, claimed, pinned to the node of the claim's first pod, a directory.
    // (The scheduler binds a pod only after its claims are bound, in PreBind: wait for that.)
    wait_until("three pods bound to nodes", T, || {
        let pods = items(&c.json(&["get", "pods"]));
        (pods.len() == 3
            && pods.iter().all(|p| {
                p["spec"]["nodeName"]
                    .as_str()
                    .is_some_and(|n| !n.is_empty())
            }))
        .then_some(())
    })
    .expect("pods bound");
    let pvs = items(&c.json(&["get", "pv"]));
    assert_eq!(pvs.len(), 3);
    for pv in &pvs {
        assert_eq!(pv["status"]["phase"], "Bound", "{pv}");
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Delete");
        let claim = pv["spec"]["claimRef"]["name"].as_str().expect("claimRef");
        let pod = claim.trim_start_matches("www-");
        let node = c.json(&["get", "pod", pod])["spec"]["nodeName"].clone();
        assert_eq!(
            pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
                ["values"][0],
            node,
            "{pv}"
        );
        let dir = pv["spec"]["hostPath"]["path"].as_str().expect("path");
        assert!(std::path::Path::new(dir).is_dir(), "{dir}");
        assert!(dir.starts_with(c.data_dir.join("local-path").to_str().unwrap_or("")));
    }
    let pv_table = c.coxctl(&["get", "pv"]).success().stdout;
    assert!(
        pv_table.starts_with("NAME ")
            && pv_table.contains("RECLAIM POLICY")
            && pv_table.contains("default/www-stateful-nginx-1"),
        "{pv_table}"
    );

    // A replacement pod mounts the same claim.
    let claim1 = c.json(&["get", "pvc", "www-stateful-nginx-1"]);
    let old_pod = c.json(&["get", "pod", "stateful-nginx-1"]);
    c.coxctl(&["delete", "pod", "stateful-nginx-1"]).success();
    let new_pod = wait_until("a replacement stateful-nginx-1", T, || {
        let out = c.coxctl(&["get", "pod", "stateful-nginx-1", "-o", "json"]);
        let p: Value = serde_json::from_str(&out.stdout).ok()?;
        (p["metadata"]["uid"] != old_pod["metadata"]["uid"] && p["status"]["phase"] == "Running")
            .then_some(p)
    })
    .expect("replacement runs");
    let vols = new_pod["spec"]["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        vols.iter()
            .any(|v| v["persistentVolumeClaim"]["claimName"] == "www-stateful-nginx-1"),
        "{new_pod}"
    );
    let again = c.json(&["get", "pvc", "www-stateful-nginx-1"]);
    assert_eq!(again["metadata"]["uid"], claim1["metadata"]["uid"]);
    assert_eq!(again["spec"]["volumeName"], claim1["spec"]["volumeName"]);

    // Scale down: claims stay. Delete one: reclaimPolicy Delete removes its volume and directory.
    c.coxctl(&["scale", "statefulset", "stateful-nginx", "--replicas=1"])
        .success();
    wait_until("pod -2 gone", T, || {
        c.coxctl(&["get", "pod", "stateful-nginx-2"])
            .stderr
            .contains("NotFound")
            .then_some(())
    })
    .expect("scaled down");
    assert_eq!(items(&c.json(&["get", "pvc"])).len(), 3);
    let claim2 = c.json(&["get", "pvc", "www-stateful-nginx-2"]);
    let pv2 = claim2["spec"]["volumeName"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let pv2_obj = c.json(&["get", "pv", &pv2]);
    let dir2 = pv2_obj["spec"]["hostPath"]["path"]
        .as_str()
        .unwrap_or("")
        .to_string();
    c.coxctl(&["delete", "pvc", "www-stateful-nginx-2"])
        .success();
    wait_until("the Delete volume goes", T, || {
        c.coxctl(&["get", "pv", &pv2])
            .stderr
            .contains("NotFound")
            .then_some(())
    })
    .expect("volume deleted");
    assert!(!std::path::Path::new(&dir2).exists(), "{dir2} removed");
}

#[test]
fn volumes_made_by_hand_bind_and_retain_holds() {
    let c = Coxswain::start_fast_up(&[]).expect("start coxswain up");
    let dir = c.data_dir.join("manual-volume");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let manifest = format!(
        "apiVersion: v1
kind: PersistentVolume
metadata:
  name: manual-big
spec:
  capacity: {{storage: 5Gi}}
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  hostPath: {{path: {dir}}}
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: manual-small
spec:
  capacity: {{storage: 2Gi}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: manual
  hostPath: {{path: {dir}}}
",
        dir = dir.display()
    );
    c.apply(&manifest).success();
    // Both made by hand default to Retain.
    let pv = c.json(&["get", "pv", "manual-big"]);
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    // The claim comes once the controller has seen both volumes (Available): the volume and
    // claim watches are not ordered, in Kubernetes either, so a claim made in the same apply
    // may meet only the first volume and bind it.
    for name in ["manual-big", "manual-small"] {
        wait_until("the volume is Available", T, || {
            let v = c.json(&["get", "pv", name]);
            (v["status"]["phase"] == "Available").then_some(())
        })
        .expect("Available");
    }
    c.apply(
        "apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  storageClassName: manual
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
",
    )
    .success();
    // The smallest that fits is bound at once (no WaitForFirstConsumer class).
    let claim = wait_until("the claim binds", T, || {
        let p = c.json(&["get", "pvc", "data"]);
        (p["status"]["phase"] == "Bound").then_some(p)
    })
    .expect("binds");
    assert_eq!(claim["spec"]["volumeName"], "manual-small");
    assert_eq!(claim["status"]["capacity"]["storage"], "2Gi");
    wait_until("the volume is Bound", T, || {
        let v = c.json(&["get", "pv", "manual-small"]);
        (v["status"]["phase"] == "Bound").then_some(())
    })
    .expect("pv bound");
    // The other volume is synced on its own (its status may still be Pending a moment after
    // the claim bound): it ends Available, not Bound.
    wait_until("the other volume is Available", T, || {
        let v = c.json(&["get", "pv", "manual-big"]);
        (v["status"]["phase"] == "Available").then_some(())
    })
    .expect("manual-big Available");
    // Retain: the claim goes, the volume stays, Released.
    c.coxctl(&["delete", "pvc", "data"]).success();
    wait_until("the Retain volume is Released", T, || {
        let v = c.json(&["get", "pv", "manual-small"]);
        (v["status"]["phase"] == "Released").then_some(())
    })
    .expect("released");
    assert!(dir.is_dir());
    // Invalid volumes are refused naming the field.
    let bad = c
        .coxctl_in(
            &["apply", "-f", "-"],
            None,
            Some("apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: bad\nspec:\n  capacity: {storage: 1Gi}\n  accessModes: [ReadWriteSometimes]\n"),
        )
        .failure();
    assert!(
        bad.stderr.contains("must specify a volume type"),
        "{}",
        bad.stderr
    );
    assert!(bad.stderr.contains("spec.accessModes"), "{}", bad.stderr);
}

/// A claim made before any volume fits it stays Pending, and binds as soon as a fitting volume
/// is made (the controller looks at the unbound claims of a new volume's class again).
#[test]
fn a_claim_made_before_its_volume_binds_when_the_volume_comes() {
    let c = Coxswain::start_fast_up(&[]).expect("start coxswain up");
    let dir = c.data_dir.join("late-volume");
    std::fs::create_dir_all(&dir).expect("mkdir");
    c.apply(
        "apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: early
spec:
  storageClassName: late
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
",
    )
    .success();
    wait_until("the claim is Pending", T, || {
        let p = c.json(&["get", "pvc", "early"]);
        (p["status"]["phase"] == "Pending").then_some(())
    })
    .expect("pending");
    c.apply(&format!(
        "apiVersion: v1
kind: PersistentVolume
metadata:
  name: late-pv
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  storageClassName: late
  hostPath: {{path: {dir}}}
",
        dir = dir.display()
    ))
    .success();
    let claim = wait_until("the claim binds to the new volume", T, || {
        let p = c.json(&["get", "pvc", "early"]);
        (p["status"]["phase"] == "Bound").then_some(p)
    })
    .expect("binds");
    assert_eq!(claim["spec"]["volumeName"], "late-pv");
}

/// The PodScheduled=False message of a pending pod, once it says `want`.
fn unschedulable_message(c: &Coxswain, pod: &str, want: &str) -> String {
    wait_until(&format!("{pod} unschedulable: {want}"), T, || {
        let p = c.json(&["get", "pod", pod]);
        p["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "PodScheduled" && c["status"] == "False")
            .and_then(|c| c["message"].as_str())
            .filter(|m| m.contains(want))
            .map(String::from)
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn claim_pod(name: &str, claim: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  containers:
  - name: web
    image: nginx
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes:
  - name: data
    persistentVolumeClaim: {{claimName: {claim}}}
"
    )
}

#[test]
fn the_scheduler_binds_local_volumes_on_the_pods_node_and_claims_in_use_are_protected() {
    let c = Coxswain::start_fast_up(&[]).expect("start coxswain up");
    let second = second_node(&c);

    // A pod whose claim does not exist waits, with upstream's reason.
    c.apply(&claim_pod("web", "data")).success();
    let msg = unschedulable_message(&c, "web", "persistentvolumeclaim \"data\" not found");
    assert!(msg.starts_with("0/2 nodes are available"), "{msg}");

    // A class that cannot provision, and a local volume on the second node only: the claim
    // waits for its first consumer, and the scheduler binds the volume on the pod's node.
    let dir = c.data_dir.join("local-volume");
    std::fs::create_dir_all(&dir).expect("mkdir");
    c.apply(&format!(
        "apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: local-pv
spec:
  capacity: {{storage: 2Gi}}
  accessModes: [ReadWriteOnce]
  storageClassName: local
  hostPath: {{path: {dir}}}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - {{key: kubernetes.io/hostname, operator: In, values: [{second}]}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  storageClassName: local
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
",
        dir = dir.display()
    ))
    .success();
    let pv = c.json(&["get", "pv", "local-pv"]);
    assert_eq!(
        pv["metadata"]["finalizers"][0],
        "kubernetes.io/pv-protection"
    );
    let pod = wait_until("web scheduled", T, || {
        let p = c.json(&["get", "pod", "web"]);
        p["spec"]["nodeName"].as_str().filter(|n| !n.is_empty())?;
        Some(p)
    })
    .expect("scheduled");
    assert_eq!(pod["spec"]["nodeName"], second.as_str(), "{pod}");
    let claim = wait_until("data Bound", T, || {
        let p = c.json(&["get", "pvc", "data"]);
        (p["status"]["phase"] == "Bound").then_some(p)
    })
    .expect("bound");
    assert_eq!(claim["spec"]["volumeName"], "local-pv");
    assert_eq!(
        claim["metadata"]["finalizers"][0],
        "kubernetes.io/pvc-protection"
    );

    // No volume fits a second claim, and its class cannot provision: unschedulable.
    c.apply(&format!(
        "apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: big
spec:
  storageClassName: local
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 10Gi}}}}
---
{}",
        claim_pod("web2", "big")
    ))
    .success();
    let msg = unschedulable_message(
        &c,
        "web2",
        "2 node(s) didn't find available persistent volumes to bind",
    );
    assert!(msg.starts_with("0/2 nodes are available"), "{msg}");

    // A claim of an Immediate class that nothing binds leaves its pod unresolvable.
    c.apply(&format!(
        "apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: slow
provisioner: example.com/none
volumeBindingMode: Immediate
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: later
spec:
  storageClassName: slow
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
---
{}",
        claim_pod("web3", "later")
    ))
    .success();
    unschedulable_message(
        &c,
        "web3",
        "pod has unbound immediate PersistentVolumeClaims",
    );

    // pvc-protection and pv-protection: deleting the claim and the volume while the pod uses
    // them leaves both Terminating; the pod's end releases the claim, then the volume.
    c.coxctl(&["delete", "pv", "local-pv", "--wait=false"])
        .success();
    c.coxctl(&["delete", "pvc", "data", "--wait=false"])
        .success();
    let claim = c.json(&["get", "pvc", "data"]);
    assert!(
        claim["metadata"]["deletionTimestamp"].is_string(),
        "{claim}"
    );
    // The controller has seen the deletion once the claim's events went through; the pod
    // still names the claim, so it stays. Check it after the volume's deletion is seen too.
    let pv = c.json(&["get", "pv", "local-pv"]);
    assert!(pv["metadata"]["deletionTimestamp"].is_string(), "{pv}");
    assert_eq!(pv["status"]["phase"], "Bound", "{pv}");
    // A pod with a claim being deleted is not scheduled.
    c.apply(&claim_pod("web4", "data")).success();
    unschedulable_message(
        &c,
        "web4",
        "persistentvolumeclaim \"data\" is being deleted",
    );
    assert!(c.json(&["get", "pvc", "data"])["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "kubernetes.io/pvc-protection")));
    assert!(c.coxctl(&["get", "pv", "local-pv"]).ok);
    c.coxctl(&["delete", "pod", "web", "web4"]).success();
    for (kind, name) in [("pvc", "data"), ("pv", "local-pv")] {
        wait_until(&format!("{kind} {name} gone"), T, || {
            c.coxctl(&["get", kind, name])
                .stderr
                .contains("NotFound")
                .then_some(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn claim_selectors_choose_the_volume_and_are_never_provisioned() {
    let c = Coxswain::start_fast_up(&[]).expect("start coxswain up");
    wait_until("the default StorageClass", T, || {
        let out = c.coxctl(&["get", "storageclass"]).stdout;
        out.contains("standard").then_some(())
    })
    .expect("default class");
    // allowedTopologies is validated with field paths (upstream's validateAllowedTopologies).
    let bad = c
        .coxctl_in(
            &["apply", "-f", "-"],
            None,
            Some(
                "apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: zoned
provisioner: example.com/zoned
allowedTopologies:
- matchLabelExpressions:
  - {key: topology.kubernetes.io/zone, values: []}
",
            ),
        )
        .failure();
    assert!(
        bad.stderr
            .contains("allowedTopologies[0].matchLabelExpressions[0].values: Required value"),
        "{}",
        bad.stderr
    );
    let dir = c.data_dir.join("selected");
    std::fs::create_dir_all(&dir).expect("mkdir");
    c.apply(&format!(
        "apiVersion: v1
kind: PersistentVolume
metadata:
  name: pv-plain
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  storageClassName: standard
  hostPath: {{path: {dir}}}
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: pv-gold
  labels: {{tier: gold}}
spec:
  capacity: {{storage: 3Gi}}
  accessModes: [ReadWriteOnce]
  storageClassName: standard
  hostPath: {{path: {dir}}}
",
        dir = dir.display()
    ))
    .success();
    for name in ["pv-plain", "pv-gold"] {
        wait_until("the volume is Available", T, || {
            let v = c.json(&["get", "pv", name]);
            (v["status"]["phase"] == "Available").then_some(())
        })
        .expect("Available");
    }
    // The smaller plain volume fits too, but the selector asks for gold.
    c.apply(
        "apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: gold
spec:
  accessModes: [ReadWriteOnce]
  selector: {matchLabels: {tier: gold}}
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: bronze
spec:
  accessModes: [ReadWriteOnce]
  selector: {matchLabels: {tier: bronze}}
  resources: {requests: {storage: 1Gi}}
",
    )
    .success();
    c.apply(&claim_pod("uses-gold", "gold")).success();
    c.apply(&claim_pod("uses-bronze", "bronze")).success();
    let claim = wait_until("gold Bound", T, || {
        let p = c.json(&["get", "pvc", "gold"]);
        (p["status"]["phase"] == "Bound").then_some(p)
    })
    .expect("gold binds");
    assert_eq!(claim["spec"]["volumeName"], "pv-gold", "{claim}");
    // No volume matches bronze, and the provisioner does not make one for a selector.
    let d = wait_until("bronze's ProvisioningFailed", T, || {
        let out = c.coxctl(&["describe", "pvc", "bronze"]).stdout;
        out.contains("claim Selector is not supported")
            .then_some(out)
    })
    .expect("provisioning refused");
    assert!(d.contains("Status:        Pending"), "{d}");
    let pv = c.json(&["get", "pv", "pv-plain"]);
    assert_eq!(pv["status"]["phase"], "Available", "{pv}");
    assert!(pv["spec"]["claimRef"].is_null(), "{pv}");
}

/// A claim naming its volume (spec.volumeName) is bound by the PV controller, not matched by
/// the scheduler (upstream's GetPodVolumeClaims puts it with the immediate claims): its pod
/// waits with `pod has unbound immediate PersistentVolumeClaims` until then, and once bound
/// goes where the volume's node affinity says. A volume pre-bound on both sides (claimRef
/// without a uid) binds too, and a claim naming a volume not made yet binds when it comes.
#[test]
fn a_claim_naming_its_volume_is_bound_by_the_pv_controller_and_its_pod_follows_the_volume() {
    let c = Coxswain::start_fast_up(&[]).expect("start coxswain up");
    let second = second_node(&c);
    let dir = c.data_dir.join("named");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let pv = |name: &str, extra: &str| {
        format!(
            "apiVersion: v1
kind: PersistentVolume
metadata:
  name: {name}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  storageClassName: local
  hostPath: {{path: {dir}}}
{extra}",
            dir = dir.display()
        )
    };
    let claim = |name: &str, volume: &str| {
        format!(
            "apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {name}
spec:
  storageClassName: local
  volumeName: {volume}
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
"
        )
    };
    // A claim naming a volume that does not exist yet: Pending, and its pod waits for the
    // PV controller (before, the scheduler looked for the volume itself and said it found none).
    c.apply(&format!(
        "apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
---
{}---
{}",
        claim("ahead", "later-pv"),
        claim_pod("uses-ahead", "ahead")
    ))
    .success();
    unschedulable_message(
        &c,
        "uses-ahead",
        "pod has unbound immediate PersistentVolumeClaims",
    );
    wait_until("ahead Pending", T, || {
        let p = c.json(&["get", "pvc", "ahead"]);
        (p["status"]["phase"] == "Pending").then_some(())
    })
    .expect("Pending");
    // The volume comes, pinned to the second node: the claim binds, the pod follows it.
    let on_second = format!(
        "  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - {{key: kubernetes.io/hostname, operator: In, values: [{second}]}}
"
    );
    c.apply(&pv("later-pv", &on_second)).success();
    let bound = wait_until("ahead Bound", T, || {
        let p = c.json(&["get", "pvc", "ahead"]);
        (p["status"]["phase"] == "Bound").then_some(p)
    })
    .expect("binds");
    assert_eq!(bound["spec"]["volumeName"], "later-pv", "{bound}");
    let pod = wait_until("uses-ahead scheduled", T, || {
        let p = c.json(&["get", "pod", "uses-ahead"]);
        p["spec"]["nodeName"].as_str().filter(|n| !n.is_empty())?;
        Some(p)
    })
    .expect("scheduled");
    assert_eq!(pod["spec"]["nodeName"], second.as_str(), "{pod}");
    let v = c.json(&["get", "pv", "later-pv"]);
    assert_eq!(v["spec"]["claimRef"]["name"], "ahead", "{v}");
    assert_eq!(
        v["spec"]["claimRef"]["uid"], bound["metadata"]["uid"],
        "{v}"
    );

    // Pre-bound on both sides, the volume's claimRef without a uid: bound, not Lost.
    c.apply(&format!(
        "{}---
{}",
        pv("pair-pv", "  claimRef: {namespace: default, name: pair}\n"),
        claim("pair", "pair-pv")
    ))
    .success();
    let pair = wait_until("pair Bound", T, || {
        let p = c.json(&["get", "pvc", "pair"]);
        (p["status"]["phase"] == "Bound").then_some(p)
    })
    .expect("pair binds");
    let v = wait_until("pair-pv's claimRef has the claim's uid", T, || {
        let v = c.json(&["get", "pv", "pair-pv"]);
        (v["spec"]["claimRef"]["uid"] == pair["metadata"]["uid"]).then_some(v)
    })
    .expect("uid");
    assert_eq!(v["status"]["phase"], "Bound", "{v}");
}
