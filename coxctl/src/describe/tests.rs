//! describe's unit tests.
use super::pod::{probe, toleration};
use super::*;
use serde_json::json;

const NOW: i64 = 1_704_164_645 + 60;

#[test]
fn annotations_print_like_kubectl() {
    let long = "x".repeat(150);
    let o = json!({"metadata": {"annotations": {
        "deployment.kubernetes.io/revision": "2",
        "kubectl.kubernetes.io/last-applied-configuration": "{}\n",
        "a/multi": "one\ntwo\n",
        "z/long": long,
    }}});
    let mut w = W::new();
    w.multiline(0, "Annotations", &annotations(&o, "metadata.annotations"));
    let cut = format!("{}...", "x".repeat(138));
    assert_eq!(
        w.finish(),
        format!(
            "Annotations:  a/multi:\n                one\n                two\n              \
             deployment.kubernetes.io/revision: 2\n              z/long:\n                {cut}\n"
        )
    );
    let only_last_applied = json!({"metadata": {"annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": "{}"}}});
    let mut w = W::new();
    w.multiline(
        0,
        "Annotations",
        &annotations(&only_last_applied, "metadata.annotations"),
    );
    assert_eq!(w.finish(), "Annotations:  <none>\n");
}

#[test]
fn probes_print_like_kubectl() {
    let p = json!({"httpGet": {"path": "/mayikt", "port": 80}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3});
    assert_eq!(
        probe(&p),
        "http-get http://:80/mayikt delay=0s timeout=1s period=10s #success=1 #failure=3"
    );
    let p = json!({"exec": {"command": ["/bin/cat", "/tmp/mayikt.txt"]}, "initialDelaySeconds": 10, "failureThreshold": 2});
    assert_eq!(
        probe(&p),
        "exec [/bin/cat /tmp/mayikt.txt] delay=10s timeout=1s period=10s #success=1 #failure=2"
    );
    let p = json!({"tcpSocket": {"port": 8080}});
    assert_eq!(
        probe(&p),
        "tcp-socket :8080 delay=0s timeout=1s period=10s #success=1 #failure=3"
    );
}

#[test]
fn tolerations_print_like_kubectl() {
    assert_eq!(
        toleration(
            &json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
        ),
        "node.kubernetes.io/not-ready:NoExecute op=Exists for 300s"
    );
    assert_eq!(
        toleration(
            &json!({"key": "tag", "operator": "Equal", "value": "mayikt", "effect": "NoSchedule"})
        ),
        "tag=mayikt:NoSchedule"
    );
    assert_eq!(toleration(&json!({"operator": "Exists"})), "op=Exists");
}

#[test]
fn pod_describe_has_the_key_lines() {
    let pod = json!({"metadata": {"name": "nginx-abc-x", "namespace": "default", "uid": "u1",
            "creationTimestamp": "2024-01-02T03:04:05Z", "labels": {"app": "nginx", "pod-template-hash": "abc"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "nginx-abc", "uid": "r", "controller": true}]},
        "spec": {"nodeName": "node1", "containers": [{"name": "nginx", "image": "nginx:1.7.9",
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "livenessProbe": {"httpGet": {"path": "/mayikt", "port": 80}}}]},
        "status": {"phase": "Running", "hostIP": "192.168.1.2", "podIP": "10.0.0.5",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "nginx", "ready": true, "restartCount": 0,
                "state": {"running": {"startedAt": "2024-01-02T03:04:09Z"}}}]}});
    let ev = json!({"type": "Normal", "reason": "Scheduled", "message": "Successfully assigned default/nginx-abc-x to node1",
        "source": {"component": "default-scheduler"}, "firstTimestamp": "2024-01-02T03:04:05Z",
        "lastTimestamp": "2024-01-02T03:04:05Z", "count": 1, "involvedObject": {"kind": "Pod", "name": "nginx-abc-x"}});
    let rel = Related {
        events: vec![ev],
        ..Default::default()
    };
    let out = describe_object(Kind::Pod, &pod, &rel, NOW);
    assert!(out.starts_with("Name:"), "{out}");
    assert!(
        out.contains("Controlled By:  ReplicaSet/nginx-abc\n"),
        "{out}"
    );
    assert!(
        out.contains("Node:             node1/192.168.1.2\n") || out.contains("node1/192.168.1.2"),
        "{out}"
    );
    assert!(
        out.contains("Labels:")
            && out.contains("app=nginx")
            && out.contains("pod-template-hash=abc"),
        "{out}"
    );
    assert!(
        out.contains(
            "http-get http://:80/mayikt delay=0s timeout=1s period=10s #success=1 #failure=3"
        ),
        "{out}"
    );
    assert!(out.contains("State:          Running"), "{out}");
    assert!(out.contains("Restart Count:  0"), "{out}");
    assert!(
        out.contains("Events:\n  Type    Reason     Age   From               Message\n"),
        "{out}"
    );
    assert!(out.contains("  Normal  Scheduled  60s   default-scheduler  Successfully assigned default/nginx-abc-x to node1\n"), "{out}");
    assert!(!out.contains('\t'));
}

#[test]
fn deployment_describe_replicas_strategy_and_replicasets() {
    let tpl = json!({"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx:1.7.9"}]}});
    let d = json!({"metadata": {"name": "nginx-deployment", "namespace": "default", "uid": "d1", "creationTimestamp": "2024-01-02T03:04:05Z"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "nginx"}}, "template": tpl,
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}},
        "status": {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2, "readyReplicas": 2}});
    let mut rs_tpl = tpl.clone();
    rs_tpl["metadata"]["labels"]["pod-template-hash"] = json!("5c689d88bb");
    let rs = json!({"metadata": {"name": "nginx-deployment-5c689d88bb"}, "spec": {"replicas": 2, "template": rs_tpl}, "status": {"replicas": 2}});
    let rel = Related {
        replicasets: vec![rs],
        ..Default::default()
    };
    let out = describe_object(Kind::Deployment, &d, &rel, NOW);
    assert!(
        out.contains("2 desired | 2 updated | 2 total | 2 available | 0 unavailable"),
        "{out}"
    );
    assert!(
        out.contains("StrategyType:") && out.contains("RollingUpdate\n"),
        "{out}"
    );
    assert!(out.contains("25% max unavailable, 25% max surge"), "{out}");
    assert!(
        out.contains("NewReplicaSet:     nginx-deployment-5c689d88bb (2/2 replicas created)\n"),
        "{out}"
    );
    assert!(out.contains("OldReplicaSets:    <none>\n"), "{out}");
    assert!(
        out.contains("Pod Template:\n  Labels:  app=nginx\n  Containers:\n   nginx:\n"),
        "{out}"
    );
    assert!(out.ends_with("Events:            <none>\n"), "{out}");
}

#[test]
fn replicaset_and_node_describe() {
    let rs = json!({"metadata": {"name": "r", "namespace": "default",
            "ownerReferences": [{"kind": "Deployment", "name": "nginx-deployment", "controller": true}]},
        "spec": {"replicas": 2}, "status": {"replicas": 2}});
    let pods = vec![
        json!({"status": {"phase": "Running"}}),
        json!({"status": {"phase": "Pending"}}),
    ];
    let out = describe_object(
        Kind::ReplicaSet,
        &rs,
        &Related {
            pods,
            ..Default::default()
        },
        NOW,
    );
    assert!(
        out.contains("Controlled By:  Deployment/nginx-deployment"),
        "{out}"
    );
    assert!(
        out.contains("Replicas:       2 current / 2 desired"),
        "{out}"
    );
    assert!(
        out.contains("Pods Status:    1 Running / 1 Waiting / 0 Succeeded / 0 Failed"),
        "{out}"
    );
    let node = json!({"metadata": {"name": "k8s-master", "labels": {"node-role.kubernetes.io/master": ""}},
        "spec": {"taints": [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}]},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                   "capacity": {"cpu": "2"}}});
    let out = describe_object(Kind::Node, &node, &Related::default(), NOW);
    assert!(out.contains("Roles:              master"), "{out}");
    assert!(
        out.contains("Taints:             node-role.kubernetes.io/master:NoSchedule"),
        "{out}"
    );
    assert!(out.contains("Unschedulable:      false"), "{out}");
    let node2 = json!({"metadata": {"name": "n"}});
    let out = describe_object(Kind::Node, &node2, &Related::default(), NOW);
    assert!(out.contains("Taints:") && out.contains("<none>"), "{out}");
}

#[test]
fn configmaps_describe_like_kubectl_and_other_kinds_print_yaml() {
    let cm = json!({"metadata": {"name": "c", "namespace": "default"}, "data": {"k": "v"}});
    let out = describe_object(Kind::ConfigMap, &cm, &Related::default(), NOW);
    assert!(out.contains("\nData\n====\nk:\n----\nv\n\n"), "{out}");
    let sa = json!({"metadata": {"name": "s", "namespace": "default"},
        "imagePullSecrets": [{"name": "reg"}]});
    let out = describe_object(Kind::ServiceAccount, &sa, &Related::default(), NOW);
    assert!(out.contains("ImagePullSecrets:\n  - name: reg\n"), "{out}");
}

/// The text with each line's runs of blanks made one space (alignment aside).
fn flat(s: &str) -> String {
    s.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") + "\n")
        .collect()
}

/// describeJob @eb83633: Duration only for a finished Job, "(N Ready)" only when
/// status.ready is set, Completed Indexes for Indexed Jobs, no Conditions section.
#[test]
fn job_fields_follow_upstream() {
    let running = json!({"metadata": {"name": "j", "namespace": "d"},
        "spec": {"parallelism": 2, "completions": 10, "completionMode": "Indexed",
            "backoffLimit": 6, "suspend": false, "template": {"spec": {"containers": []}}},
        "status": {"startTime": "2024-01-02T03:04:05Z", "active": 2, "succeeded": 1,
            "completedIndexes": format!("0,{}", (2..40).map(|i| i.to_string()).collect::<Vec<_>>().join(",")),
            "conditions": [{"type": "Suspended", "status": "False"}]}});
    let out = flat(&describe_object(
        Kind::Job,
        &running,
        &Related::default(),
        NOW,
    ));
    assert!(out.contains("Start Time:"), "{out}");
    assert!(!out.contains("Duration:"), "{out}");
    assert!(!out.contains("Conditions"), "{out}");
    assert!(
        out.contains("Pods Statuses: 2 Active / 1 Succeeded / 0 Failed\n"),
        "{out}"
    );
    // Cut after the first comma at or past byte 50.
    let idx = s(&running, "status.completedIndexes").into_owned();
    let cut = &idx[..50 + idx[50..].find(',').unwrap() + 1];
    assert!(
        out.contains(&format!("Completed Indexes: {cut}...\n")),
        "{out}"
    );
    let mut done = running.clone();
    done["status"]["completionTime"] = json!("2024-01-02T03:06:05Z");
    done["status"]["ready"] = json!(0);
    done["status"]["completedIndexes"] = json!("");
    let out = flat(&describe_object(Kind::Job, &done, &Related::default(), NOW));
    assert!(out.contains("Duration: 2m\n"), "{out}");
    assert!(out.contains("(0 Ready)"), "{out}");
    assert!(out.contains("Completed Indexes: <none>\n"), "{out}");
}

/// describeCronJob @eb83633: the job template's activeDeadlineSeconds is shown; the time zone
/// is not.
#[test]
fn cronjob_fields_follow_upstream() {
    let cj = json!({"metadata": {"name": "c", "namespace": "d"},
        "spec": {"schedule": "* * * * *", "timeZone": "Etc/UTC", "concurrencyPolicy": "Forbid",
            "jobTemplate": {"spec": {"activeDeadlineSeconds": 30,
                "template": {"spec": {"containers": []}}}}},
        "status": {"active": [{"name": "c-1"}, {"name": "c-2"}]}});
    let out = flat(&describe_object(
        Kind::CronJob,
        &cj,
        &Related::default(),
        NOW,
    ));
    assert!(out.contains("Active Deadline Seconds: 30s\n"), "{out}");
    assert!(!out.contains("Time Zone"), "{out}");
    assert!(out.contains("Concurrency Policy: Forbid\n"), "{out}");
    assert!(out.contains("Active Jobs: c-1, c-2\n"), "{out}");
}

/// describeHorizontalPodAutoscalerV2 @eb83633: CreationTimestamp after the annotations; a
/// utilization without its average value prints Go's "<nil>".
#[test]
fn hpa_fields_follow_upstream() {
    let h = json!({"metadata": {"name": "h", "namespace": "d", "labels": {"a": "b"},
            "creationTimestamp": "2024-01-02T03:04:05Z"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}}]},
        "status": {"currentMetrics": [{"type": "Resource", "resource": {"name": "cpu",
            "current": {"averageUtilization": 20}}}]}});
    let out = flat(&describe_object(
        Kind::HorizontalPodAutoscaler,
        &h,
        &Related::default(),
        NOW,
    ));
    let lines: Vec<&str> = out.lines().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(
        &lines[..6],
        &[
            "Name",
            "Namespace",
            "Labels",
            "Annotations",
            "CreationTimestamp",
            "Reference"
        ]
    );
    assert!(out.contains("20% (<nil>) / 50%"), "{out}");
    assert!(out.contains("Min replicas:"), "{out}");
}
