//! Volumes: a shared emptyDir, and env and volumes from ConfigMaps and Secrets.
use coxswain_test_support::wait_until;

use crate::common::*;

#[test]
fn containers_of_a_pod_share_an_empty_dir_and_nginx_serves_a_mounted_docroot() {
    let c = cluster(212, &[]);
    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: shared}
spec:
  nodeName: node1
  volumes: [{name: html, emptyDir: {}}]
  containers:
  - name: nginx
    image: nginx
    volumeMounts: [{name: html, mountPath: /usr/share/nginx/html}]
  - name: writer
    image: busybox
    command: ["/bin/sh", "-c", "echo from-the-sidecar > /pages/index.html; echo written; sleep 3600"]
    volumeMounts: [{name: html, mountPath: /pages}]
"#,
    );
    wait_status(&c, "default", "shared", "Running");
    let ip = s(&pod(&c, "default", "shared").unwrap(), "status.podIP")
        .as_str()
        .unwrap()
        .to_string();
    wait_until("the sidecar's page served", T, || {
        http_get(&ip, 80, "/")
            .filter(|(code, body)| *code == 200 && body.trim() == "from-the-sidecar")
            .map(|_| ())
    })
    .unwrap();
    let log = c
        .coxctl(&["logs", "shared", "-c", "writer"])
        .success()
        .stdout;
    assert_eq!(log, "written\n");
    let err = c.coxctl(&["logs", "shared"]).failure().stderr;
    assert!(
        err.contains(
            "a container name must be specified for pod shared, choose one of: [nginx writer]"
        ),
        "{err}"
    );
}

#[test]
fn env_and_volumes_from_config_maps_and_secrets() {
    let c = cluster(213, &[]);
    apply(
        &c,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: cfg}
spec:
  nodeName: node2
  restartPolicy: Never
  volumes:
  - name: conf
    configMap: {name: app-config}
  containers:
  - name: c
    image: busybox
    command: ["/bin/sh", "-c", "echo $GREETING $PASSWORD $APP_mode; cat /etc/app/mode"]
    env:
    - name: GREETING
      valueFrom: {configMapKeyRef: {name: app-config, key: greeting}}
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: app-secret, key: password}}
    envFrom:
    - prefix: APP_
      configMapRef: {name: app-config}
    volumeMounts: [{name: conf, mountPath: /etc/app}]
"#,
    );
    // Nothing exists yet: the volume cannot be set up.
    wait_until("FailedMount", T, || {
        events_of(&c, "default", "cfg")
            .contains(
                "MountVolume.SetUp failed for volume \"conf\" : configmap \"app-config\" not found",
            )
            .then_some(())
    })
    .unwrap();
    apply(
        &c,
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data: {greeting: hello, mode: fast}
"#,
    );
    // The secret is still missing: CreateContainerConfigError.
    wait_status(&c, "default", "cfg", "CreateContainerConfigError");
    apply(
        &c,
        r#"
apiVersion: v1
kind: Secret
metadata: {name: app-secret}
stringData: {password: s3cret}
"#,
    );
    wait_status(&c, "default", "cfg", "Completed");
    let log = c.coxctl(&["logs", "cfg"]).success().stdout;
    assert_eq!(log, "hello s3cret fast\nfast");
}
