//! Table printers: one function per kind turning an object's Kubernetes JSON into the cells of
//! kubectl's columns. Pure functions of (object, now).
use coxswain_api::Kind;
use serde_json::Value;

use crate::jv;

pub mod core;
pub mod pod;
pub mod storage;
pub mod workloads;

/// kubectl's resource name of a kind: "pod", "deployment.apps", "cronjob.batch".
pub fn resource_name(kind: Kind) -> String {
    let k = kind.as_str().to_ascii_lowercase();
    match kind.group() {
        "" => k,
        g => format!("{k}.{g}"),
    }
}

/// kubectl's plural resource name qualified by group: "pods", "deployments.apps" (used in
/// NotFound messages).
pub fn plural_name(kind: Kind) -> String {
    match kind.group() {
        "" => kind.plural().to_string(),
        g => format!("{}.{g}", kind.plural()),
    }
}

type RowFn = fn(&Value, i64, bool) -> Vec<String>;

fn generic(o: &Value, now: i64, _wide: bool) -> Vec<String> {
    vec![
        jv::s(o, "metadata.name").into_owned(),
        crate::age::since(&jv::s(o, "metadata.creationTimestamp"), now),
    ]
}

/// (columns, extra wide columns, row function) of a kind.
fn spec(kind: Kind) -> (&'static [&'static str], &'static [&'static str], RowFn) {
    use self::core as c;
    use workloads as w;
    match kind {
        Kind::Pod => (pod::COLUMNS, pod::WIDE, pod::row),
        Kind::Deployment => (w::DEPLOYMENT, w::DEPLOYMENT_WIDE, w::deployment),
        Kind::ReplicaSet => (w::REPLICASET, w::REPLICASET_WIDE, w::replicaset),
        Kind::DaemonSet => (w::DAEMONSET, w::DAEMONSET_WIDE, w::daemonset),
        Kind::StatefulSet => (w::STATEFULSET, w::STATEFULSET_WIDE, w::statefulset),
        Kind::Job => (w::JOB, w::JOB_WIDE, w::job),
        Kind::CronJob => (w::CRONJOB, w::CRONJOB_WIDE, w::cronjob),
        Kind::HorizontalPodAutoscaler => (w::HPA, &[], w::hpa),
        Kind::ControllerRevision => (w::CONTROLLER_REVISION, &[], w::controller_revision),
        Kind::Service => (c::SERVICE, c::SERVICE_WIDE, c::service),
        Kind::Endpoints => (c::ENDPOINTS, &[], c::endpoints),
        Kind::EndpointSlice => (c::ENDPOINT_SLICE, &[], c::endpoint_slice),
        Kind::Node => (c::NODE, c::NODE_WIDE, c::node),
        Kind::Namespace => (c::NAMESPACE, &[], c::namespace),
        Kind::PersistentVolumeClaim => (c::PVC, c::PVC_WIDE, c::pvc),
        Kind::PersistentVolume => (storage::PV, storage::PV_WIDE, storage::pv),
        Kind::StorageClass => (storage::STORAGE_CLASS, &[], storage::storage_class),
        Kind::Event => (c::EVENT, &[], c::event),
        Kind::ConfigMap => (c::CONFIGMAP, &[], c::configmap),
        Kind::Secret => (c::SECRET, &[], c::secret),
        Kind::ServiceAccount => (c::SERVICE_ACCOUNT, &[], c::service_account),
        Kind::Lease => (c::LEASE, &[], c::lease),
        #[allow(unreachable_patterns)]
        _ => (&["NAME", "AGE"], &[], generic),
    }
}

/// How to print a table.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableOptions {
    pub wide: bool,
    pub all_namespaces: bool,
    pub show_labels: bool,
    /// Prefix names with "kind.group/" (several kinds requested).
    pub with_kind: bool,
}

/// The header row of a kind's table.
pub fn header(kind: Kind, opts: &TableOptions) -> Vec<String> {
    let (cols, wide_cols, _) = spec(kind);
    let mut h: Vec<String> = Vec::new();
    if opts.all_namespaces && kind.namespaced() {
        h.push("NAMESPACE".into());
    }
    if kind == Kind::Event && opts.wide {
        h.extend(core::EVENT_WIDE_ALL.iter().map(|s| s.to_string()));
    } else {
        h.extend(cols.iter().map(|s| s.to_string()));
        if opts.wide {
            h.extend(wide_cols.iter().map(|s| s.to_string()));
        }
    }
    if opts.show_labels {
        h.push("LABELS".into());
    }
    h
}

/// One object's row (matching [`header`]).
pub fn row(kind: Kind, obj: &Value, now: i64, opts: &TableOptions) -> Vec<String> {
    let (_, _, f) = spec(kind);
    let mut cells = f(obj, now, opts.wide);
    if opts.with_kind && kind != Kind::Event {
        if let Some(first) = cells.first_mut() {
            *first = format!("{}/{first}", resource_name(kind));
        }
    }
    let mut r = Vec::with_capacity(cells.len() + 2);
    if opts.all_namespaces && kind.namespaced() {
        r.push(jv::s(obj, "metadata.namespace").into_owned());
    }
    r.extend(cells);
    if opts.show_labels {
        r.push(jv::format_labels(&jv::map(obj, "metadata.labels")));
    }
    r
}

/// Sort objects as kubectl lists them: by namespace then name; events by time.
pub fn sort_objects(kind: Kind, objs: &mut [Value]) {
    if kind == Kind::Event {
        objs.sort_by_key(core::event_order);
    } else {
        objs.sort_by(|a, b| {
            (jv::s(a, "metadata.namespace"), jv::s(a, "metadata.name"))
                .cmp(&(jv::s(b, "metadata.namespace"), jv::s(b, "metadata.name")))
        });
    }
}

/// All rows of a table (header first unless `no_headers`).
pub fn table(
    kind: Kind,
    objs: &[Value],
    now: i64,
    opts: &TableOptions,
    no_headers: bool,
) -> Vec<Vec<String>> {
    let mut rows = Vec::with_capacity(objs.len() + 1);
    if !no_headers {
        rows.push(header(kind, opts));
    }
    rows.extend(objs.iter().map(|o| row(kind, o, now, opts)));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resource_names() {
        assert_eq!(resource_name(Kind::Deployment), "deployment.apps");
        assert_eq!(resource_name(Kind::CronJob), "cronjob.batch");
        assert_eq!(
            resource_name(Kind::HorizontalPodAutoscaler),
            "horizontalpodautoscaler.autoscaling"
        );
        assert_eq!(resource_name(Kind::Pod), "pod");
        assert_eq!(plural_name(Kind::Deployment), "deployments.apps");
        assert_eq!(plural_name(Kind::Pod), "pods");
    }

    #[test]
    fn table_adds_namespace_labels_and_kind() {
        let p = json!({"metadata": {"name": "p", "namespace": "ns1", "labels": {"app": "x"},
            "creationTimestamp": "2024-01-02T03:04:05Z"}, "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Pending"}});
        let opts = TableOptions {
            all_namespaces: true,
            show_labels: true,
            with_kind: true,
            wide: false,
        };
        let t = table(Kind::Pod, &[p], 1_704_164_650, &opts, false);
        assert_eq!(
            t[0],
            vec![
                "NAMESPACE",
                "NAME",
                "READY",
                "STATUS",
                "RESTARTS",
                "AGE",
                "LABELS"
            ]
        );
        assert_eq!(
            t[1],
            vec!["ns1", "pod/p", "0/1", "Pending", "0", "5s", "app=x"]
        );
    }

    #[test]
    fn typed_objects_print_through_their_json() {
        use coxswain_api::v1;
        let pod = v1::Pod {
            metadata: Some(v1::ObjectMeta {
                name: "p".into(),
                creation_timestamp: "2024-01-02T03:04:05Z".into(),
                ..Default::default()
            }),
            spec: Some(v1::PodSpec {
                containers: vec![v1::Container {
                    name: "c".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(v1::PodStatus {
                phase: "Running".into(),
                container_statuses: vec![v1::ContainerStatus {
                    name: "c".into(),
                    ready: true,
                    restart_count: 2,
                    state: Some(v1::ContainerState {
                        running: Some(Default::default()),
                        ..Default::default()
                    }),
                    last_state: Some(v1::ContainerState {
                        terminated: Some(v1::ContainerStateTerminated {
                            exit_code: 1,
                            finished_at: "2024-01-02T03:05:05Z".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = coxswain_api::Object::from(pod).to_json_value();
        let r = row(Kind::Pod, &v, 1_704_164_645 + 120, &TableOptions::default());
        assert_eq!(r, vec!["p", "1/1", "Running", "2 (60s ago)", "2m"]);
    }

    #[test]
    fn every_kind_row_matches_its_header() {
        for &k in Kind::ALL {
            for wide in [false, true] {
                let opts = TableOptions {
                    wide,
                    ..Default::default()
                };
                let h = header(k, &opts);
                let r = row(k, &json!({"metadata": {"name": "x"}}), 0, &opts);
                assert_eq!(h.len(), r.len(), "{k} wide={wide}");
            }
        }
    }
}
