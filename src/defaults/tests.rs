use super::*;
use crate::manifest::parse_manifests;

fn defaulted(text: &str) -> Object {
    let mut o = parse_manifests(text).expect("parses").remove(0).object;
    apply_defaults(&mut o);
    let mut again = o.clone();
    apply_defaults(&mut again);
    assert_eq!(again, o, "defaults are idempotent");
    o
}

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    image: nginx\n    ports:\n    - containerPort: 80\n    resources:\n      limits:\n        cpu: '0.5'\n        memory: 1024Mi\n      requests:\n        memory: 512Mi\n    livenessProbe:\n      httpGet:\n        port: 80\n  - name: b\n    image: nginx:1.17.9\n  - name: c\n    image: registry:5000/x/nginx\n";

#[test]
fn pod_defaults() {
    let Object::Pod(pod) = defaulted(POD) else {
        panic!()
    };
    let spec = pod.spec.expect("spec");
    assert_eq!(spec.restart_policy, "Always");
    assert_eq!(spec.termination_grace_period_seconds, Some(30));
    assert_eq!(spec.dns_policy, "ClusterFirst");
    assert_eq!(spec.scheduler_name, "default-scheduler");
    assert_eq!(spec.security_context, Some(Default::default()));
    assert_eq!(spec.enable_service_links, Some(true));
    let a = &spec.containers[0];
    assert_eq!(a.image_pull_policy, "Always");
    assert_eq!(spec.containers[1].image_pull_policy, "IfNotPresent");
    assert_eq!(spec.containers[2].image_pull_policy, "Always");
    assert_eq!(a.termination_message_path, "/dev/termination-log");
    assert_eq!(a.termination_message_policy, "File");
    assert_eq!(a.ports[0].protocol, "TCP");
    let r = a.resources.as_ref().expect("resources");
    assert_eq!(r.limits.get("cpu").map(String::as_str), Some("500m"));
    assert_eq!(r.limits.get("memory").map(String::as_str), Some("1Gi"));
    // Requests default to limits only where missing, then are canonical.
    assert_eq!(r.requests.get("cpu").map(String::as_str), Some("500m"));
    assert_eq!(r.requests.get("memory").map(String::as_str), Some("512Mi"));
    let p = a.liveness_probe.as_ref().expect("probe");
    assert_eq!(
        (
            p.timeout_seconds,
            p.period_seconds,
            p.success_threshold,
            p.failure_threshold
        ),
        (Some(1), Some(10), Some(1), Some(3))
    );
    assert_eq!(p.initial_delay_seconds, None);
    let h = p.http_get.as_ref().expect("httpGet");
    assert_eq!((h.path.as_str(), h.scheme.as_str()), ("/", "HTTP"));
}

#[test]
fn image_pull_policy_follows_the_tag() {
    for (image, want) in [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.17.9", "IfNotPresent"),
        ("localhost:5000/nginx", "Always"),
        ("localhost:5000/nginx:v1", "IfNotPresent"),
        ("nginx@sha256:abc", "IfNotPresent"),
    ] {
        assert_eq!(default_image_pull_policy(image), want, "{image}");
    }
}

#[test]
fn workload_defaults() {
    let Object::Deployment(d) = defaulted(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  selector:\n    matchLabels:\n      a: b\n  template:\n    metadata:\n      labels:\n        a: b\n    spec:\n      containers:\n      - name: c\n        image: x\n",
    ) else {
        panic!()
    };
    let spec = d.spec.expect("spec");
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    let s = spec.strategy.expect("strategy");
    assert_eq!(s.r#type, "RollingUpdate");
    let ru = s.rolling_update.expect("rollingUpdate");
    assert_eq!(ru.max_surge, Some(IntOrString::string("25%")));
    assert_eq!(ru.max_unavailable, Some(IntOrString::string("25%")));
    let ps = spec.template.expect("t").spec.expect("s");
    assert_eq!(ps.restart_policy, "Always");

    let Object::DaemonSet(ds) =
        defaulted("apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: d\n")
    else {
        panic!()
    };
    let spec = ds.spec.expect("spec");
    let s = spec.update_strategy.expect("strategy");
    assert_eq!(s.r#type, "RollingUpdate");
    let ru = s.rolling_update.expect("ru");
    assert_eq!(
        (ru.max_unavailable, ru.max_surge),
        (Some(IntOrString::int(1)), Some(IntOrString::int(0)))
    );
    assert_eq!(spec.revision_history_limit, Some(10));

    let Object::StatefulSet(sts) = defaulted(
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: s\nspec:\n  volumeClaimTemplates:\n  - metadata:\n      name: www\n    spec:\n      accessModes: [ReadWriteOnce]\n      resources:\n        requests:\n          storage: 1024Mi\n",
    ) else {
        panic!()
    };
    let spec = sts.spec.expect("spec");
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.pod_management_policy, "OrderedReady");
    let us = spec.update_strategy.expect("us");
    assert_eq!(us.r#type, "RollingUpdate");
    assert_eq!(us.rolling_update.expect("ru").partition, Some(0));
    let rp = spec.persistent_volume_claim_retention_policy.expect("rp");
    assert_eq!(
        (rp.when_deleted.as_str(), rp.when_scaled.as_str()),
        ("Retain", "Retain")
    );
    let pvc = &spec.volume_claim_templates[0];
    let ps = pvc.spec.as_ref().expect("spec");
    assert_eq!(ps.volume_mode.as_deref(), Some("Filesystem"));
    assert_eq!(
        ps.resources
            .as_ref()
            .expect("r")
            .requests
            .get("storage")
            .map(String::as_str),
        Some("1Gi")
    );
    assert_eq!(pvc.status.as_ref().expect("status").phase, "Pending");

    let Object::ReplicaSet(rs) =
        defaulted("apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: r\n")
    else {
        panic!()
    };
    assert_eq!(rs.spec.expect("spec").replicas, Some(1));
}

#[test]
fn legacy_versions_default_the_selector() {
    let Object::Deployment(d) = defaulted(
        "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  template:\n    metadata:\n      labels:\n        a: b\n",
    ) else {
        panic!()
    };
    let spec = d.spec.expect("spec");
    assert_eq!(
        spec.selector
            .expect("sel")
            .match_labels
            .get("a")
            .map(String::as_str),
        Some("b")
    );
    assert_eq!(
        d.metadata.expect("m").labels.get("a").map(String::as_str),
        Some("b")
    );
    let ru = spec.strategy.expect("s").rolling_update.expect("ru");
    assert_eq!(ru.max_surge, Some(IntOrString::int(1)));
}

#[test]
fn job_defaults() {
    let job = |extra: &str| {
        let Object::Job(j) = defaulted(&format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n{extra}  template:\n    metadata:\n      labels:\n        app: j\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: busybox\n"
        )) else {
            panic!()
        };
        j
    };
    let j = job("");
    let spec = j.spec.as_ref().expect("spec");
    assert_eq!(
        (spec.completions, spec.parallelism, spec.backoff_limit),
        (Some(1), Some(1), Some(6))
    );
    assert_eq!(spec.completion_mode.as_deref(), Some("NonIndexed"));
    assert_eq!(spec.suspend, Some(false));
    assert_eq!(spec.manual_selector, Some(false));
    assert_eq!(
        j.metadata
            .as_ref()
            .expect("m")
            .labels
            .get("app")
            .map(String::as_str),
        Some("j")
    );
    // Work queue: parallelism set, completions stays unset.
    let spec = job("  parallelism: 2\n").spec.expect("spec");
    assert_eq!((spec.completions, spec.parallelism), (None, Some(2)));
    let spec = job("  completions: 6\n").spec.expect("spec");
    assert_eq!((spec.completions, spec.parallelism), (Some(6), Some(1)));
    let spec = job("  backoffLimitPerIndex: 1\n").spec.expect("spec");
    assert_eq!(spec.backoff_limit, Some(i32::MAX));
}

#[test]
fn job_selector_generation() {
    let Object::Job(mut j) = defaulted(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: pi\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: perl\n",
    ) else {
        panic!()
    };
    job_selector_for_uid(&mut j, "u-1");
    let spec = j.spec.as_ref().expect("spec");
    let labels = &spec
        .template
        .as_ref()
        .expect("t")
        .metadata
        .as_ref()
        .expect("m")
        .labels;
    assert_eq!(
        labels.get("controller-uid").map(String::as_str),
        Some("u-1")
    );
    assert_eq!(
        labels.get(CONTROLLER_UID_LABEL).map(String::as_str),
        Some("u-1")
    );
    assert_eq!(labels.get("job-name").map(String::as_str), Some("pi"));
    assert_eq!(labels.get(JOB_NAME_LABEL).map(String::as_str), Some("pi"));
    let sel = &spec.selector.as_ref().expect("selector").match_labels;
    assert_eq!(sel.len(), 1);
    assert_eq!(
        sel.get(CONTROLLER_UID_LABEL).map(String::as_str),
        Some("u-1")
    );
    // The generated selector matches the template and passes validation.
    assert!(crate::validation::validate(&Object::Job(j.clone())).is_empty());

    // A manual selector is left alone.
    let mut m = j.clone();
    let spec = m.spec.as_mut().expect("spec");
    spec.manual_selector = Some(true);
    spec.selector = None;
    job_selector_for_uid(&mut m, "u-2");
    assert!(m.spec.expect("spec").selector.is_none());
}

#[test]
fn cronjob_service_and_other_defaults() {
    let Object::CronJob(cj) = defaulted(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: c\nspec:\n  schedule: '* * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          containers:\n          - name: c\n            image: busybox\n",
    ) else {
        panic!()
    };
    let spec = cj.spec.expect("spec");
    assert_eq!(spec.concurrency_policy, "Allow");
    assert_eq!(spec.suspend, Some(false));
    assert_eq!(
        (
            spec.successful_jobs_history_limit,
            spec.failed_jobs_history_limit
        ),
        (Some(3), Some(1))
    );
    let ps = spec
        .job_template
        .expect("jt")
        .spec
        .expect("js")
        .template
        .expect("t")
        .spec
        .expect("s");
    assert_eq!(ps.containers[0].image_pull_policy, "Always");

    let Object::Service(svc) = defaulted(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n  - port: 80\n  - port: 443\n    targetPort: https\n",
    ) else {
        panic!()
    };
    let spec = svc.spec.expect("spec");
    assert_eq!(spec.r#type, "ClusterIP");
    assert_eq!(spec.session_affinity, "None");
    assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));
    assert_eq!(spec.ip_families, vec!["IPv4"]);
    assert_eq!(spec.internal_traffic_policy.as_deref(), Some("Cluster"));
    assert_eq!(spec.ports[0].protocol, "TCP");
    assert_eq!(spec.ports[0].target_port, Some(IntOrString::int(80)));
    assert_eq!(
        spec.ports[1].target_port,
        Some(IntOrString::string("https"))
    );

    let Object::Namespace(ns) =
        defaulted("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: 'n'\n")
    else {
        panic!()
    };
    assert!(ns.spec.is_none_or(|s| s.finalizers.is_empty()));
    assert_eq!(ns.status.expect("status").phase, "Active");

    let Object::Secret(s) = defaulted("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n")
    else {
        panic!()
    };
    assert_eq!(s.r#type, "Opaque");

    let Object::Secret(s) = defaulted(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  a: b2xk\n  b: Yg==\nstringData:\n  a: new\n  c: see\n",
    ) else {
        panic!()
    };
    assert!(s.string_data.is_empty(), "stringData is never stored");
    let data: Vec<(&str, &[u8])> = s.data.iter().map(|(k, v)| (k.as_str(), &v[..])).collect();
    assert_eq!(data, [("a", &b"new"[..]), ("b", b"b"), ("c", b"see")]);

    let Object::HorizontalPodAutoscaler(h) = defaulted(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\nspec:\n  maxReplicas: 3\n  behavior:\n    scaleDown:\n      stabilizationWindowSeconds: 60\n",
    ) else {
        panic!()
    };
    let spec = h.spec.expect("spec");
    assert_eq!(spec.min_replicas, Some(1));
    let m = &spec.metrics[0];
    assert_eq!(m.r#type, "Resource");
    assert_eq!(
        m.resource
            .as_ref()
            .and_then(|r| r.target.as_ref())
            .and_then(|t| t.average_utilization),
        Some(80)
    );
    let b = spec.behavior.expect("behavior");
    let down = b.scale_down.expect("down");
    assert_eq!(down.stabilization_window_seconds, Some(60));
    assert_eq!(down.policies.len(), 1);
    assert_eq!(b.scale_up.expect("up").policies.len(), 2);

    let Object::HorizontalPodAutoscaler(h) = defaulted(
        "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\nspec:\n  maxReplicas: 3\n",
    ) else {
        panic!()
    };
    let spec = h.spec.expect("spec");
    assert!(spec.metrics.is_empty());
    assert_eq!(spec.target_cpu_utilization_percentage, None);

    let Object::HorizontalPodAutoscaler(h) = defaulted(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\nspec:\n  maxReplicas: 3\n  behavior:\n    scaleUp:\n      selectPolicy: Min\n",
    ) else {
        panic!()
    };
    let b = h.spec.and_then(|s| s.behavior).expect("behavior");
    assert_eq!(
        b.scale_down.expect("down").stabilization_window_seconds,
        None
    );
    assert_eq!(
        b.scale_up.expect("up").stabilization_window_seconds,
        Some(0)
    );
}
