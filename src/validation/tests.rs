use super::update::{POD_UPDATE_MSG, PVC_UPDATE_MSG, STS_UPDATE_MSG};
use super::*;
use crate::defaults::apply_defaults;
use crate::manifest::parse_manifests;

fn obj(text: &str) -> Object {
    let mut o = parse_manifests(text).expect("parses").remove(0).object;
    apply_defaults(&mut o);
    o
}

fn errors(text: &str) -> Vec<String> {
    validate(&obj(text)).iter().map(|e| e.to_string()).collect()
}

fn has(errs: &[String], want: &str) -> bool {
    errs.iter().any(|e| e == want)
}

const POD_HEAD: &str =
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: default\nspec:\n";

fn pod(spec: &str) -> Vec<String> {
    errors(&format!("{POD_HEAD}{spec}"))
}

#[test]
fn metadata_rules() {
    let e = errors("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels:\n    'bad key!': x\n    ok: 'bad value!'\n");
    assert!(
        has(
            &e,
            "metadata.name: Required value: name or generateName is required"
        ),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|x| x.starts_with("metadata.labels: Invalid value: \"bad key!\"")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|x| x.starts_with("metadata.labels: Invalid value: \"bad value!\"")),
        "{e:?}"
    );
    let e = errors("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: cm-\n");
    assert!(e.is_empty(), "{e:?}");
    let e = errors("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n");
    assert!(
        e[0].starts_with(
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
        ),
        "{e:?}"
    );
    let e = errors("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a.b\n");
    assert!(
        e[0].starts_with("metadata.name: Invalid value: \"a.b\": a lowercase RFC 1123 label"),
        "{e:?}"
    );
    let e = errors(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: 1abc\nspec:\n  ports:\n  - port: 80\n",
    );
    assert!(
        e[0].starts_with("metadata.name: Invalid value: \"1abc\": a DNS-1035 label"),
        "{e:?}"
    );
    let e = errors("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: 'n'\n  namespace: x\n");
    assert!(
        has(
            &e,
            "metadata.namespace: Forbidden: not allowed on this type"
        ),
        "{e:?}"
    );
}

#[test]
fn pod_spec_rules() {
    assert!(pod("  containers:\n  - name: a\n    image: x\n").is_empty());
    let e = pod("  containers: []\n");
    assert!(has(&e, "spec.containers: Required value"), "{e:?}");
    let e = pod("  containers:\n  - name: a\n  - name: a\n    image: x\n");
    assert!(has(&e, "spec.containers[0].image: Required value"), "{e:?}");
    assert!(
        has(&e, "spec.containers[1].name: Duplicate value: \"a\""),
        "{e:?}"
    );
    let e = pod("  containers:\n  - name: A_b\n    image: x\n");
    assert!(
        e[0].starts_with("spec.containers[0].name: Invalid value: \"A_b\""),
        "{e:?}"
    );
    let e = pod("  restartPolicy: Sometimes\n  containers:\n  - name: a\n    image: x\n");
    assert!(has(&e, "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""), "{e:?}");
    let e = pod("  dnsPolicy: Weird\n  containers:\n  - name: a\n    image: x\n    ports:\n    - containerPort: 70000\n      protocol: ICMP\n");
    assert!(has(&e, "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"), "{e:?}");
    assert!(has(&e, "spec.containers[0].ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\""), "{e:?}");
    assert!(
        e.iter()
            .any(|x| x.starts_with("spec.dnsPolicy: Unsupported value: \"Weird\"")),
        "{e:?}"
    );
    let e = pod("  activeDeadlineSeconds: 0\n  containers:\n  - name: a\n    image: x\n");
    assert!(has(&e, "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"), "{e:?}");
}

#[test]
fn probe_rules() {
    let e = pod(
        "  containers:\n  - name: a\n    image: x\n    livenessProbe:\n      periodSeconds: 5\n",
    );
    assert!(
        has(
            &e,
            "spec.containers[0].livenessProbe: Required value: must specify a handler type"
        ),
        "{e:?}"
    );
    let e = pod("  containers:\n  - name: a\n    image: x\n    livenessProbe:\n      exec:\n        command: [ls]\n      tcpSocket:\n        port: 80\n      successThreshold: 2\n      periodSeconds: -1\n");
    assert!(
        has(
            &e,
            "spec.containers[0].livenessProbe: Forbidden: may not specify more than 1 handler type"
        ),
        "{e:?}"
    );
    assert!(
        has(
            &e,
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"
        ),
        "{e:?}"
    );
    assert!(has(&e, "spec.containers[0].livenessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0"), "{e:?}");
    // Readiness probes may have a success threshold above 1.
    let e = pod("  containers:\n  - name: a\n    image: x\n    readinessProbe:\n      httpGet:\n        port: http\n      successThreshold: 2\n");
    assert!(e.is_empty(), "{e:?}");
    let e = pod("  containers:\n  - name: a\n    image: x\n    readinessProbe:\n      httpGet:\n        port: 0\n");
    assert!(has(&e, "spec.containers[0].readinessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive"), "{e:?}");
}

#[test]
fn volume_and_resource_rules() {
    let e = pod("  volumes:\n  - name: v\n    emptyDir: {}\n  - name: v\n    hostPath:\n      path: /x\n  - name: w\n  containers:\n  - name: a\n    image: x\n    volumeMounts:\n    - name: v\n      mountPath: /a\n    - name: missing\n      mountPath: /b\n");
    assert!(
        has(&e, "spec.volumes[1].name: Duplicate value: \"v\""),
        "{e:?}"
    );
    assert!(
        has(
            &e,
            "spec.volumes[2]: Required value: must specify a volume type"
        ),
        "{e:?}"
    );
    assert!(
        has(
            &e,
            "spec.containers[0].volumeMounts[1].name: Not found: \"missing\""
        ),
        "{e:?}"
    );
    let e = pod("  containers:\n  - name: a\n    image: x\n    resources:\n      limits:\n        cpu: 500m\n      requests:\n        cpu: '1'\n        memory: lots\n");
    assert!(has(&e, "spec.containers[0].resources.requests[cpu]: Invalid value: \"1\": must be less than or equal to cpu limit of 500m"), "{e:?}");
    assert!(e.iter().any(|x| x.starts_with("spec.containers[0].resources.requests[memory]: Invalid value: \"lots\": quantities must match")), "{e:?}");
}

#[test]
fn scheduling_rules() {
    let e = pod("  containers:\n  - name: a\n    image: x\n  tolerations:\n  - key: k\n    operator: Exists\n    value: v\n  - operator: Equal\n    value: v\n  - key: k\n    effect: NoSchedule\n    tolerationSeconds: 5\n  - key: k\n    effect: Sometimes\n  - key: k\n    operator: Like\n");
    assert!(has(&e, "spec.tolerations[0].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'"), "{e:?}");
    assert!(e.iter().any(|x| x.starts_with("spec.tolerations[1].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty")), "{e:?}");
    assert!(has(&e, "spec.tolerations[2].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set"), "{e:?}");
    assert!(
        e.iter()
            .any(|x| x.starts_with("spec.tolerations[3].effect: Unsupported value: \"Sometimes\"")),
        "{e:?}"
    );
    assert!(has(&e, "spec.tolerations[4].operator: Unsupported value: \"Like\": supported values: \"Equal\", \"Exists\""), "{e:?}");
    let e = pod("  containers:\n  - name: a\n    image: x\n  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms:\n        - matchExpressions:\n          - key: a\n            operator: In\n          - key: b\n            operator: Exists\n            values: [x]\n          - key: c\n            operator: Gt\n            values: ['1', '2']\n          - key: d\n            operator: Near\n      preferredDuringSchedulingIgnoredDuringExecution:\n      - weight: 0\n        preference:\n          matchExpressions:\n          - key: e\n            operator: Lt\n            values: [x]\n    podAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector:\n          matchLabels:\n            a: b\n");
    let base = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions";
    assert!(has(&e, &format!("{base}[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'")), "{e:?}");
    assert!(has(&e, &format!("{base}[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")), "{e:?}");
    assert!(has(&e, &format!("{base}[2].values: Required value: must be specified single value when `operator` is 'Lt' or 'Gt'")), "{e:?}");
    assert!(
        has(
            &e,
            &format!("{base}[3].operator: Invalid value: \"Near\": not a valid selector operator")
        ),
        "{e:?}"
    );
    assert!(has(&e, "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be in the range 1-100"), "{e:?}");
    assert!(has(&e, "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference.matchExpressions[0].values[0]: Invalid value: \"x\": must be an integer"), "{e:?}");
    assert!(has(&e, "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value: can not be empty"), "{e:?}");
}

const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  selector:\n    matchLabels:\n      app: a\n  template:\n    metadata:\n      labels:\n        app: a\n    spec:\n      containers:\n      - name: c\n        image: x\n";

#[test]
fn workload_rules() {
    assert!(errors(DEPLOY).is_empty());
    let e = errors(&DEPLOY.replace(
        "  selector:\n    matchLabels:\n      app: a\n",
        "  replicas: -1\n",
    ));
    assert!(has(&e, "spec.selector: Required value"), "{e:?}");
    assert!(
        has(
            &e,
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        ),
        "{e:?}"
    );
    let e = errors(&DEPLOY.replace("      app: a\n  template", "      app: z\n  template"));
    assert!(has(&e, "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"a\"}: `selector` does not match template `labels`"), "{e:?}");
    let e = errors(&DEPLOY.replace(
        "  selector:\n    matchLabels:\n      app: a\n",
        "  selector: {}\n",
    ));
    assert!(
        has(
            &e,
            "spec.selector: Invalid value: \"\": empty selector is invalid for deployment"
        ),
        "{e:?}"
    );
    let e = errors(&DEPLOY.replace(
        "    spec:\n",
        "    spec:\n      restartPolicy: Never\n      activeDeadlineSeconds: 5\n",
    ));
    assert!(has(&e, "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""), "{e:?}");
    assert!(has(&e, "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in Deployment is not Supported"), "{e:?}");
    let e = errors(&DEPLOY.replace(
        "spec:\n  selector",
        "spec:\n  strategy:\n    type: Recreate\n    rollingUpdate:\n      maxSurge: 1\n  selector",
    ));
    assert!(has(&e, "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"), "{e:?}");
    let e = errors(&DEPLOY.replace("spec:\n  selector", "spec:\n  strategy:\n    rollingUpdate:\n      maxSurge: 0\n      maxUnavailable: 0%\n  selector"));
    assert!(has(&e, "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"), "{e:?}");
    let e = errors(&DEPLOY.replace("spec:\n  selector", "spec:\n  strategy:\n    rollingUpdate:\n      maxSurge: x\n      maxUnavailable: 150%\n  selector"));
    assert!(
        e.iter().any(|x| x.starts_with(
            "spec.strategy.rollingUpdate.maxSurge: Invalid value: \"x\": a valid percent string"
        )),
        "{e:?}"
    );
    assert!(has(&e, "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"150%\": must not be greater than 100%"), "{e:?}");
    let e = errors(&DEPLOY.replace(
        "spec:\n  selector",
        "spec:\n  strategy:\n    type: Blue\n  selector",
    ));
    assert!(has(&e, "spec.strategy.type: Unsupported value: \"Blue\": supported values: \"Recreate\", \"RollingUpdate\""), "{e:?}");
    // Set-based selectors are matched against the labels too.
    let rs = "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: r\nspec:\n  selector:\n    matchExpressions:\n    - key: env\n      operator: NotIn\n      values: [dev]\n  template:\n    metadata:\n      labels:\n        env: dev\n    spec:\n      containers:\n      - name: c\n        image: x\n";
    let e = errors(rs);
    assert!(
        e.iter()
            .any(|x| x.starts_with("spec.template.metadata.labels: Invalid value:")),
        "{e:?}"
    );
}

#[test]
fn statefulset_rules() {
    let sts = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: s\nspec:\n  podManagementPolicy: Random\n  selector:\n    matchLabels:\n      app: a\n  template:\n    metadata:\n      labels:\n        app: a\n    spec:\n      containers:\n      - name: c\n        image: x\n        volumeMounts:\n        - name: www\n          mountPath: /w\n  volumeClaimTemplates:\n  - metadata:\n      name: www\n    spec:\n      accessModes: [ReadWriteSometimes]\n";
    let e = errors(sts);
    assert!(has(&e, "spec.podManagementPolicy: Unsupported value: \"Random\": supported values: \"OrderedReady\", \"Parallel\""), "{e:?}");
    assert!(e.iter().any(|x| x.starts_with("spec.volumeClaimTemplates[0].spec.accessModes: Unsupported value: \"ReadWriteSometimes\"")), "{e:?}");
    assert!(
        has(
            &e,
            "spec.volumeClaimTemplates[0].spec.resources[storage]: Required value"
        ),
        "{e:?}"
    );
    // The claim template provides the mounted volume.
    assert!(!e.iter().any(|x| x.contains("volumeMounts")), "{e:?}");
}

#[test]
fn job_and_cronjob_rules() {
    let job = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  completions: -1\n  backoffLimit: -2\n  template:\n    spec:\n      restartPolicy: Always\n      containers:\n      - name: c\n        image: x\n";
    let e = errors(job);
    assert!(has(&e, "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""), "{e:?}");
    assert!(
        has(
            &e,
            "spec.completions: Invalid value: -1: must be greater than or equal to 0"
        ),
        "{e:?}"
    );
    assert!(
        has(
            &e,
            "spec.backoffLimit: Invalid value: -2: must be greater than or equal to 0"
        ),
        "{e:?}"
    );
    let manual = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  manualSelector: true\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: x\n";
    assert!(has(&errors(manual), "spec.selector: Required value"));
    let cj = |schedule: &str, extra: &str| {
        errors(&format!("apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: c\nspec:\n  schedule: '{schedule}'\n{extra}  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          containers:\n          - name: c\n            image: x\n"))
    };
    for ok in [
        "*/1 * * * *",
        "0 0 * * *",
        "@hourly",
        "@every 1h30m",
        "0 9-17/2 * JAN-MAR mon-fri",
        "5,10 * ? * *",
    ] {
        assert!(cj(ok, "").is_empty(), "{ok}: {:?}", cj(ok, ""));
    }
    for bad in [
        "* * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "*/0 * * * *",
        "@fortnightly",
        "a * * * *",
        "5-1 * * * *",
    ] {
        let e = cj(bad, "");
        assert!(
            e.iter()
                .any(|x| x.starts_with(&format!("spec.schedule: Invalid value: \"{bad}\""))),
            "{bad}: {e:?}"
        );
    }
    let e = cj(
        "* * * * *",
        "  concurrencyPolicy: Sometimes\n  timeZone: Local\n",
    );
    assert!(has(&e, "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\""), "{e:?}");
    assert!(
        has(
            &e,
            "spec.timeZone: Invalid value: \"Local\": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
        ),
        "{e:?}"
    );
    assert!(
        crate::tz::database_present(),
        "the tz database is missing (install tzdata or set ZONEINFO): timeZone validation needs it"
    );
    for ok in [
        "Asia/Shanghai",
        "America/New_York",
        "Etc/UTC",
        "UTC",
        "Europe/London",
        "Etc/GMT+5",
    ] {
        let e = cj("* * * * *", &format!("  timeZone: {ok}\n"));
        assert!(e.is_empty(), "{ok}: {e:?}");
    }
    for (tz, msg) in [
        ("Nope/Zone", "unknown time zone Nope/Zone"),
        ("America/Nowhere", "unknown time zone America/Nowhere"),
        ("../etc/passwd", "unknown time zone ../etc/passwd"),
        ("Europe/Berlin:x", "unknown time zone Europe/Berlin:x"),
        (
            "America/Argentina/ComodRivadavia1",
            "unknown time zone America/Argentina/ComodRivadavia1",
        ),
        ("+05:30", "unknown time zone +05:30"),
        ("", "timeZone must be nil or non-empty string"),
    ] {
        let e = cj("* * * * *", &format!("  timeZone: '{tz}'\n"));
        let want = format!("spec.timeZone: Invalid value: {tz:?}: {msg}");
        assert!(has(&e, &want), "{tz}: {e:?}");
        assert_eq!(e.len(), 1, "{tz}: {e:?}");
    }
    for sched in ["TZ=UTC * * * * *", "CRON_TZ=Asia/Shanghai 0 9 * * *"] {
        let e = cj(sched, "");
        assert_eq!(
            e,
            vec![format!("spec.schedule: Invalid value: {sched:?}: cannot use TZ or CRON_TZ in schedule, use timeZone field instead")],
            "{sched}"
        );
    }
    let e = cj("CRON_TZ=Nope/Zone 0 9 * * *", "");
    assert!(has(&e, "spec.schedule: Invalid value: \"CRON_TZ=Nope/Zone 0 9 * * *\": provided bad location Nope/Zone: unknown time zone Nope/Zone"), "{e:?}");
    assert!(has(&e, "spec.schedule: Invalid value: \"CRON_TZ=Nope/Zone 0 9 * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead"), "{e:?}");
}

#[test]
fn service_rules() {
    let svc = |spec: &str| {
        errors(&format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n{spec}"
        ))
    };
    assert!(svc("  ports:\n  - port: 80\n").is_empty());
    assert!(has(
        &svc("  selector:\n    a: b\n"),
        "spec.ports: Required value"
    ));
    assert!(svc("  clusterIP: None\n").is_empty());
    let e = svc("  type: Weird\n  ports:\n  - port: 0\n  - port: 81\n    name: a\n  - port: 82\n    name: a\n    nodePort: 30001\n");
    assert!(
        e.iter()
            .any(|x| x.starts_with("spec.type: Unsupported value: \"Weird\"")),
        "{e:?}"
    );
    assert!(
        has(
            &e,
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"
        ),
        "{e:?}"
    );
    assert!(has(&e, "spec.ports[0].name: Required value"), "{e:?}");
    assert!(
        has(&e, "spec.ports[2].name: Duplicate value: \"a\""),
        "{e:?}"
    );
    let e = svc("  type: NodePort\n  clusterIP: None\n  ports:\n  - port: 80\n    nodePort: 80\n");
    assert!(has(&e, "spec.clusterIP: Invalid value: \"None\": may not be set to 'None' for NodePort services"), "{e:?}");
    assert!(
        e.iter().any(|x| x.starts_with(
            "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range"
        )),
        "{e:?}"
    );
    let e = svc("  ports:\n  - port: 80\n    nodePort: 30080\n");
    assert!(
        has(
            &e,
            "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
        ),
        "{e:?}"
    );
    assert!(has(
        &svc("  type: ExternalName\n"),
        "spec.externalName: Required value"
    ));
    let e = svc("  type: ExternalName\n  externalName: example.com\n  selector: {app: web}\n  ipFamilies: [IPv4]\n  ipFamilyPolicy: SingleStack\n");
    assert_eq!(
        e,
        [
            "spec.ipFamilies: Forbidden: may not be set for ExternalName services",
            "spec.ipFamilyPolicy: Forbidden: may not be set for ExternalName services"
        ],
        "a selector is allowed"
    );
}

#[test]
fn hpa_node_pvc_rules() {
    let hpa = |spec: &str| {
        errors(&format!("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\nspec:\n{spec}"))
    };
    let e = hpa("  minReplicas: 0\n  maxReplicas: 0\n  scaleTargetRef:\n    name: x\n");
    assert!(has(&e, "spec.scaleTargetRef.kind: Required value"), "{e:?}");
    assert!(
        has(
            &e,
            "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"
        ),
        "{e:?}"
    );
    assert!(
        has(
            &e,
            "spec.maxReplicas: Invalid value: 0: must be greater than 0"
        ),
        "{e:?}"
    );
    let e = hpa("  minReplicas: 5\n  maxReplicas: 3\n  scaleTargetRef:\n    kind: Deployment\n    name: x\n  metrics:\n  - type: Resource\n    resource:\n      name: cpu\n      target:\n        type: Utilization\n        averageUtilization: 0\n");
    assert!(
        has(
            &e,
            "spec.maxReplicas: Invalid value: 3: must be greater than or equal to `minReplicas`"
        ),
        "{e:?}"
    );
    assert!(has(&e, "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0"), "{e:?}");
    let e = errors("apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\nspec:\n  maxReplicas: 3\n  targetCPUUtilizationPercentage: 0\n  scaleTargetRef:\n    kind: Deployment\n    name: x\n");
    assert!(
        has(
            &e,
            "spec.targetCPUUtilizationPercentage: Invalid value: 0: must be greater than 0"
        ),
        "{e:?}"
    );

    let e = errors("apiVersion: v1\nkind: Node\nmetadata:\n  name: 'n'\nspec:\n  taints:\n  - key: k\n    effect: Sometimes\n  - key: k2\n");
    assert!(
        e.iter()
            .any(|x| x.starts_with("spec.taints[0].effect: Unsupported value: \"Sometimes\"")),
        "{e:?}"
    );
    assert!(has(&e, "spec.taints[1].effect: Required value"), "{e:?}");

    let e = errors("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: c\nspec:\n  resources:\n    requests:\n      storage: 0\n");
    assert!(
        has(
            &e,
            "spec.accessModes: Required value: at least 1 access mode is required"
        ),
        "{e:?}"
    );
    assert!(
        has(
            &e,
            "spec.resources[storage]: Invalid value: \"0\": must be greater than zero"
        ),
        "{e:?}"
    );
}

#[test]
fn pod_updates_only_change_what_kubernetes_allows() {
    let base = obj(&format!("{POD_HEAD}  containers:\n  - name: a\n    image: x:1\n  tolerations:\n  - key: k\n    operator: Exists\n    effect: NoExecute\n    tolerationSeconds: 60\n"));
    let change = |edit: &dyn Fn(&mut v1::PodSpec)| {
        let mut new = base.clone();
        if let Object::Pod(p) = &mut new {
            edit(p.spec.as_mut().expect("spec"));
        }
        validate_update(&base, &new)
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    };
    assert!(change(&|s| s.containers[0].image = "x:2".into()).is_empty());
    assert!(change(&|s| s.active_deadline_seconds = Some(30)).is_empty());
    assert!(change(&|s| s.termination_grace_period_seconds = Some(5)).is_empty());
    assert!(change(&|s| s.node_name = "n1".into()).is_empty());
    assert!(change(&|s| {
        s.tolerations.push(v1::Toleration {
            key: "other".into(),
            operator: "Exists".into(),
            ..Default::default()
        })
    })
    .is_empty());
    assert!(change(&|s| s.tolerations[0].toleration_seconds = Some(30)).is_empty());
    let e = change(&|s| s.restart_policy = "Never".into());
    assert_eq!(
        e,
        vec![format!("spec.restartPolicy: Forbidden: {POD_UPDATE_MSG}")]
    );
    let e = change(&|s| {
        s.containers[0].ports.push(v1::ContainerPort {
            container_port: 80,
            ..Default::default()
        })
    });
    assert!(
        e[0].starts_with("spec.containers[0].ports: Forbidden: pod updates may not change fields"),
        "{e:?}"
    );
    let e = change(&|s| s.tolerations.clear());
    assert!(e[0].starts_with("spec.tolerations[0]: Forbidden"), "{e:?}");
    let mut renamed = base.clone();
    renamed.meta_mut().name = "q".into();
    let e = validate_update(&base, &renamed);
    assert_eq!(
        e[0].to_string(),
        "metadata.name: Invalid value: \"q\": field is immutable"
    );
}

#[test]
fn workload_updates() {
    let d = obj(DEPLOY);
    let mut d2 = obj(&DEPLOY.replace("replicas", "x"));
    if let Object::Deployment(x) = &mut d2 {
        x.spec.as_mut().expect("spec").replicas = Some(5);
    }
    assert!(validate_update(&d, &d2).is_empty());
    let d3 = obj(&DEPLOY.replace("app: a", "app: b"));
    let e = validate_update(&d, &d3);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].path, "spec.selector");
    assert!(e[0].message.ends_with("field is immutable"), "{e:?}");

    let sts_text = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: s\nspec:\n  serviceName: nginx\n  replicas: 3\n  selector:\n    matchLabels:\n      app: a\n  template:\n    metadata:\n      labels:\n        app: a\n    spec:\n      containers:\n      - name: c\n        image: x\n";
    let sts = obj(sts_text);
    let scaled = obj(&sts_text
        .replace("replicas: 3", "replicas: 5")
        .replace("image: x", "image: 'y'"));
    assert!(validate_update(&sts, &scaled).is_empty());
    let renamed = obj(&sts_text.replace("serviceName: nginx", "serviceName: other"));
    let e = validate_update(&sts, &renamed);
    assert_eq!(
        e[0].to_string(),
        format!("spec: Forbidden: {STS_UPDATE_MSG}")
    );

    let job_text = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  completions: 2\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: x\n";
    let job = obj(job_text);
    let e = validate_update(
        &job,
        &obj(&job_text
            .replace("completions: 2", "completions: 3")
            .replace("image: x", "image: 'y'")),
    );
    let paths: Vec<&str> = e.iter().map(|x| x.path.as_str()).collect();
    assert_eq!(paths, vec!["spec.template", "spec.completions"]);
    assert!(validate_update(
        &job,
        &obj(&job_text.replace("completions: 2", "completions: 2\n  parallelism: 2"))
    )
    .is_empty());

    let svc_text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  clusterIP: 10.0.0.1\n  ports:\n  - port: 80\n";
    let svc = obj(svc_text);
    let e = validate_update(&svc, &obj(&svc_text.replace("10.0.0.1", "10.0.0.2")));
    assert_eq!(
        e[0].to_string(),
        "spec.clusterIP: Invalid value: \"10.0.0.2\": field is immutable"
    );
    assert!(validate_update(&svc, &obj(&svc_text.replace("port: 80", "port: 81"))).is_empty());

    let pvc_text = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: c\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n";
    let pvc = obj(pvc_text);
    assert!(validate_update(&pvc, &obj(&pvc_text.replace("1Gi", "2Gi"))).is_empty());
    let e = validate_update(&pvc, &obj(&pvc_text.replace("1Gi", "512Mi")));
    assert_eq!(e[0].path, "spec.resources.requests.storage");
    let e = validate_update(
        &pvc,
        &obj(&pvc_text.replace("ReadWriteOnce", "ReadWriteMany")),
    );
    assert_eq!(
        e[0].to_string(),
        format!("spec: Forbidden: {PVC_UPDATE_MSG}")
    );

    let cm =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\nimmutable: true\ndata:\n  a: b\n";
    let e = validate_update(&obj(cm), &obj(&cm.replace("a: b", "a: c")));
    assert_eq!(e[0].path, "data");
}

#[test]
fn required_node_affinity_values_must_be_label_values() {
    let pod = |section: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    image: x\n  affinity:\n    nodeAffinity:\n{section}")
    };
    let required = "      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms:\n        - matchExpressions:\n          - key: zone\n            operator: In\n            values: [a, -bad-]\n";
    let e = errors(&pod(required));
    assert!(
        e.iter().any(|m| m.starts_with("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[1]: Invalid value: \"-bad-\"")),
        "{e:?}"
    );
    // Preferred terms keep accepting them, as upstream does.
    let preferred = "      preferredDuringSchedulingIgnoredDuringExecution:\n      - weight: 1\n        preference:\n          matchExpressions:\n          - key: zone\n            operator: In\n            values: [-bad-]\n";
    assert!(
        errors(&pod(preferred)).is_empty(),
        "{:?}",
        errors(&pod(preferred))
    );
}

/// ValidateLabelSelector / ValidateLabelSelectorRequirement (metav1validation): each bad
/// selector is rejected with the field path, wherever a selector is (here a Deployment's
/// spec.selector, a pod's affinity term and topology spread constraint).
#[test]
fn label_selector_rules() {
    const NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
    let long = "a".repeat(64);
    let cases: Vec<(String, String)> = vec![
        (
            "matchExpressions:\n    - key: app\n      operator: In\n      values: []".into(),
            "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'".into(),
        ),
        (
            "matchExpressions:\n    - key: app\n      operator: NotIn".into(),
            "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'".into(),
        ),
        (
            "matchExpressions:\n    - key: app\n      operator: Exists\n      values: [a]".into(),
            "spec.selector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'".into(),
        ),
        (
            "matchExpressions:\n    - key: app\n      operator: DoesNotExist\n      values: [a]".into(),
            "spec.selector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'".into(),
        ),
        (
            "matchExpressions:\n    - key: app\n      operator: Gt\n      values: ['1']".into(),
            "spec.selector.matchExpressions[0].operator: Invalid value: \"Gt\": not a valid selector operator".into(),
        ),
        (
            "matchExpressions:\n    - key: -app\n      operator: Exists".into(),
            format!("spec.selector.matchExpressions[0].key: Invalid value: \"-app\": {NAME_MSG}"),
        ),
        (
            format!("matchExpressions:\n    - key: {long}\n      operator: Exists"),
            format!("spec.selector.matchExpressions[0].key: Invalid value: \"{long}\": name part must be no more than 63 characters"),
        ),
        (
            "matchExpressions:\n    - key: app\n      operator: In\n      values: [a, -b]".into(),
            format!("spec.selector.matchExpressions[0].values[1]: Invalid value: \"-b\": {VALUE_MSG}"),
        ),
        (
            format!("matchExpressions:\n    - key: app\n      operator: NotIn\n      values: [{long}]"),
            format!("spec.selector.matchExpressions[0].values[0]: Invalid value: \"{long}\": must be no more than 63 characters"),
        ),
        (
            "matchLabels:\n      'x/y/z': a".into(),
            "spec.selector.matchLabels: Invalid value: \"x/y/z\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".into(),
        ),
        (
            "matchLabels:\n      app: a_".into(),
            format!("spec.selector.matchLabels: Invalid value: \"a_\": {VALUE_MSG}"),
        ),
    ];
    for (selector, want) in &cases {
        let text = DEPLOY.replace(
            "  selector:\n    matchLabels:\n      app: a\n",
            &format!("  selector:\n    {selector}\n"),
        );
        let e = errors(&text);
        assert!(has(&e, want), "{selector}: want {want}\n got {e:?}");
    }
    // The empty value and a prefixed key are valid.
    let ok = DEPLOY.replace(
        "  selector:\n    matchLabels:\n      app: a\n",
        "  selector:\n    matchLabels:\n      app: a\n    matchExpressions:\n    - key: example.com/tier\n      operator: NotIn\n      values: ['']\n",
    );
    assert_eq!(errors(&ok), Vec::<String>::new());

    // Every kind with a selector checks it at its own path.
    let bad = "    matchExpressions:\n    - {key: tier, operator: In}\n";
    let tmpl = "  template:\n    metadata:\n      labels: {app: a}\n    spec:\n      containers:\n      - name: c\n        image: x\n";
    let job_tmpl = tmpl.replace("    spec:\n", "    spec:\n      restartPolicy: Never\n");
    for (head, body, path) in [
        (
            "apps/v1\nkind: ReplicaSet",
            tmpl.to_string(),
            "spec.selector",
        ),
        (
            "apps/v1\nkind: DaemonSet",
            tmpl.to_string(),
            "spec.selector",
        ),
        (
            "apps/v1\nkind: StatefulSet",
            tmpl.to_string(),
            "spec.selector",
        ),
        ("batch/v1\nkind: Job", job_tmpl.clone(), "spec.selector"),
    ] {
        let text = format!("apiVersion: {head}\nmetadata:\n  name: w\nspec:\n  manualSelector: true\n  selector:\n    matchLabels: {{app: a}}\n{bad}{body}")
            .replace("  manualSelector: true\n", if head.ends_with("Job") { "  manualSelector: true\n" } else { "" });
        let want = format!("{path}.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'");
        let e = errors(&text);
        assert!(has(&e, &want), "{head}: {e:?}");
    }
    let indent = |t: &str, n: usize| -> String {
        t.lines()
            .map(|l| format!("{}{l}\n", " ".repeat(n)))
            .collect()
    };
    let cron = format!(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: cj\nspec:\n  schedule: '* * * * *'\n  jobTemplate:\n    spec:\n      manualSelector: true\n      selector:\n        matchLabels: {{app: a}}\n{}{}",
        indent(bad, 4),
        indent(&job_tmpl, 4)
    );
    // A CronJob's jobTemplate may carry no selector at all (ValidateJobTemplateSpec).
    let e = errors(&cron);
    let want = "spec.jobTemplate.spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"a\"},\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"In\"}]}: `selector` will be auto-generated";
    assert!(has(&e, want), "{e:?}");
    let want = "spec.jobTemplate.spec.manualSelector: Unsupported value: true: supported values: \"nil\", \"false\"";
    assert!(has(&e, want), "{e:?}");

    // The same rules in a pod's affinity term and topology spread constraint.
    let term = "        labelSelector:\n          matchExpressions:\n          - key: app\n            operator: In\n";
    let e = pod(&format!("  containers:\n  - name: a\n    image: x\n  affinity:\n    podAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - topologyKey: zone\n{term}  topologySpreadConstraints:\n  - maxSkew: 1\n    topologyKey: zone\n    whenUnsatisfiable: DoNotSchedule\n    labelSelector:\n      matchLabels:\n        app: -x\n"));
    let want = "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'";
    assert!(has(&e, want), "{e:?}");
    let want = format!(
        "spec.topologySpreadConstraints[0].labelSelector.matchLabels: Invalid value: \"-x\": {VALUE_MSG}"
    );
    assert!(has(&e, &want), "{e:?}");
}
