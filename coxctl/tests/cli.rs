//! coxctl against the real `coxswain` binary: the shared scenario manifests apply and read
//! back, broken manifests are rejected naming the field and store nothing, and kubectl's verbs
//! behave as the scenarios expect.
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use coxswain_test_support::{bin, parse_json, scenarios_dir, wait_until, Coxswain};

/// (kind, namespace, name) of every document in a manifest file.
fn objects_of(path: &std::path::Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(path).expect("read manifest");
    let mut out = Vec::new();
    // Document by document: a broken one ends the walk.
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.starts_with("---") {
            docs.push(String::new());
        } else if let Some(d) = docs.last_mut() {
            d.push_str(line);
            d.push('\n');
        }
    }
    for doc in docs {
        let v = match coxswain_api::yaml::to_json(&doc) {
            Ok(v) => v,
            Err(_) => break,
        };
        let Some(kind) = v.get("kind").and_then(|k| k.as_str()) else {
            continue;
        };
        let meta = v.get("metadata");
        let name = meta
            .and_then(|m| m.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or_default();
        let ns = meta
            .and_then(|m| m.get("namespace"))
            .and_then(|n| n.as_str())
            .unwrap_or("default");
        out.push((kind.to_string(), ns.to_string(), name.to_string()));
    }
    out
}

fn manifests() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(scenarios_dir())
        .expect("scenarios dir (../shared/scenarios)")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_scenario_manifest_applies_and_reads_back() {
    let c = Coxswain::start().expect("start coxswain");
    let files = manifests();
    assert!(files.len() >= 50, "the shared scenarios are there");
    c.coxctl_in(
        &["apply", "-f", "00-namespace-mayikt-sit.yaml"],
        Some(&scenarios_dir()),
        None,
    )
    .success();
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let out = c
            .coxctl_in(&["apply", "-f", name], Some(&scenarios_dir()), None)
            .success();
        let objects = objects_of(f);
        for (kind, ns, obj) in &objects {
            assert!(
                out.stdout.contains(&format!("/{obj} ")),
                "{name}: apply reports {kind} {obj}: {}",
                out.stdout
            );
            let got = c
                .coxctl(&["get", kind, obj, "-n", ns, "-o", "json"])
                .success();
            let v = parse_json(&got.stdout);
            assert_eq!(v["kind"], kind.as_str(), "{name}");
            assert_eq!(v["metadata"]["name"], obj.as_str(), "{name}");
            assert!(
                v["metadata"]["uid"].as_str().is_some_and(|u| !u.is_empty()),
                "{name}: uid set"
            );
        }
        if name.contains("cronjob") && (name.contains("v2alpha1") || name.starts_with("48-")) {
            assert!(
                out.stderr.contains("Warning:") && out.stderr.contains("deprecated"),
                "{name}: {}",
                out.stderr
            );
        }
        // Applying again changes nothing.
        let again = c
            .coxctl_in(&["apply", "-f", name], Some(&scenarios_dir()), None)
            .success();
        assert!(
            again.stdout.lines().all(|l| l.ends_with(" unchanged")),
            "{name}: {}",
            again.stdout
        );
        // The scenarios reuse names across files (myjob, mayikt-pod, …) and, like the seeds,
        // delete before the next example; the namespace itself stays.
        if name != "00-namespace-mayikt-sit.yaml" {
            c.coxctl_in(&["delete", "-f", name], Some(&scenarios_dir()), None)
                .success();
            for (kind, ns, obj) in &objects {
                wait_until("deleted", Duration::from_secs(10), || {
                    (!c.coxctl(&["get", kind, obj, "-n", ns]).ok).then_some(())
                })
                .unwrap_or_else(|e| panic!("{name}: {kind} {obj}: {e}"));
            }
        }
    }
}

#[test]
fn invalid_manifests_are_rejected_naming_the_field_and_nothing_is_stored() {
    let c = Coxswain::start().expect("start coxswain");
    c.coxctl_in(
        &["apply", "-f", "00-namespace-mayikt-sit.yaml"],
        Some(&scenarios_dir()),
        None,
    )
    .success();
    let cases = [
        (
            "01-job-01-duplicate-ttl.yaml",
            vec!["ttlSecondsAfterFinished"],
        ),
        (
            "02-pod-liveness-initialdelaysecands.yaml",
            vec!["spec.containers[0].livenessProbe.initialDelaySecands"],
        ),
        ("03-daemonset-ssd-monitor-typos.yaml", vec!["line"]),
        (
            "04-daemonset-restartpolicy-never.yaml",
            vec!["spec.template.spec.restartPolicy"],
        ),
        ("05-daemonset-replicas.yaml", vec!["spec.replicas"]),
        ("06-daemonset-selector-mismatch.yaml", vec!["selector"]),
        (
            "07-job-restartpolicy-always.yaml",
            vec!["spec.template.spec.restartPolicy", "OnFailure", "Never"],
        ),
    ];
    let before = c
        .coxctl(&["get", "all", "-A", "-o", "json"])
        .success()
        .stdout;
    for (file, wants) in cases {
        let path = scenarios_dir().join("invalid").join(file);
        let out = c
            .coxctl(&["apply", "-f", path.to_str().expect("utf8")])
            .failure();
        for w in wants {
            assert!(
                out.stderr.contains(w),
                "{file}: error names {w:?}: {}",
                out.stderr
            );
        }
        for (kind, ns, name) in objects_of(&path) {
            if name.is_empty() {
                continue;
            }
            let got = c.coxctl(&["get", &kind, &name, "-n", &ns]).failure();
            assert!(
                got.stderr.contains("NotFound"),
                "{file}: {name} not stored: {}",
                got.stderr
            );
        }
    }
    let after = c
        .coxctl(&["get", "all", "-A", "-o", "json"])
        .success()
        .stdout;
    assert_eq!(
        parse_json(&before)["items"],
        parse_json(&after)["items"],
        "nothing was stored"
    );
    // A valid file right afterwards works normally.
    c.coxctl_in(
        &["apply", "-f", "56-daemonset-ssd-monitor.yaml"],
        Some(&scenarios_dir()),
        None,
    )
    .success();
}

#[test]
fn deleting_a_system_namespace_is_forbidden() {
    let c = Coxswain::start().expect("start coxswain");
    let out = c.coxctl(&["delete", "ns", "kube-system"]).failure();
    assert_eq!(
        out.stderr.trim(),
        "Error from server (Forbidden): namespaces \"kube-system\" is forbidden: this namespace may not be deleted",
    );
    c.coxctl(&["get", "ns", "kube-system"]).success();
}

#[test]
fn create_twice_fails_with_already_exists_and_changes_nothing() {
    let c = Coxswain::start().expect("start coxswain");
    let dir = scenarios_dir();
    c.coxctl_in(
        &["create", "-f", "00-namespace-mayikt-sit.yaml"],
        Some(&dir),
        None,
    )
    .success();
    let first = c
        .coxctl_in(
            &["create", "-f", "38-replicaset-mayikt-rp.yaml"],
            Some(&dir),
            None,
        )
        .success();
    assert!(
        first.stdout.contains("replicaset.apps/mayikt-rp created"),
        "{}",
        first.stdout
    );
    let rv = parse_json(
        &c.coxctl(&["get", "rs", "mayikt-rp", "-n", "mayikt-sit", "-o", "json"])
            .success()
            .stdout,
    )["metadata"]["resourceVersion"]
        .clone();
    let again = c
        .coxctl_in(
            &["create", "-f", "38-replicaset-mayikt-rp.yaml"],
            Some(&dir),
            None,
        )
        .failure();
    assert!(
        again.stderr.contains("AlreadyExists") && again.stderr.contains("already exists"),
        "{}",
        again.stderr
    );
    let rv2 = parse_json(
        &c.coxctl(&["get", "rs", "mayikt-rp", "-n", "mayikt-sit", "-o", "json"])
            .success()
            .stdout,
    )["metadata"]["resourceVersion"]
        .clone();
    assert_eq!(rv, rv2);
}

#[test]
fn get_selectors_output_formats_label_and_describe() {
    let c = Coxswain::start().expect("start coxswain");
    let pods = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  labels: {app: web, env: prod}\nspec:\n  nodeName: node1\n  containers:\n  - name: c\n    image: nginx\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: b\n  labels: {app: web, env: dev}\nspec:\n  containers:\n  - name: c\n    image: nginx\n";
    c.coxctl_in(&["apply", "-f", "-"], None, Some(pods))
        .success();
    let table = c.coxctl(&["get", "pods"]).success().stdout;
    let header = table.lines().next().unwrap_or_default();
    for col in ["NAME", "READY", "STATUS", "RESTARTS", "AGE"] {
        assert!(header.contains(col), "{table}");
    }
    assert!(table.contains("Pending"), "{table}");
    let wide = c.coxctl(&["get", "po", "-o", "wide"]).success().stdout;
    assert!(
        wide.lines().next().unwrap_or_default().contains("NODE") && wide.contains("node1"),
        "{wide}"
    );
    let labels = c.coxctl(&["get", "po", "--show-labels"]).success().stdout;
    assert!(
        labels.contains("LABELS") && labels.contains("app=web,env=prod"),
        "{labels}"
    );
    let sel = c
        .coxctl(&["get", "po", "-l", "env in (prod)", "-o", "name"])
        .success()
        .stdout;
    assert_eq!(sel.trim(), "pod/a");
    let sel = c
        .coxctl(&["get", "po", "-l", "app=web,env!=prod", "-o", "name"])
        .success()
        .stdout;
    assert_eq!(sel.trim(), "pod/b");
    let fs = c
        .coxctl(&[
            "get",
            "po",
            "--field-selector",
            "spec.nodeName=node1",
            "-o",
            "name",
        ])
        .success()
        .stdout;
    assert_eq!(fs.trim(), "pod/a");
    let list = parse_json(&c.coxctl(&["get", "po", "-o", "json"]).success().stdout);
    assert_eq!(list["kind"], "List");
    assert_eq!(list["apiVersion"], "v1");
    assert_eq!(list["items"].as_array().map(|a| a.len()), Some(2));
    let yaml = c.coxctl(&["get", "po", "a", "-o", "yaml"]).success().stdout;
    assert!(
        yaml.contains("kind: Pod") && yaml.contains("name: a"),
        "{yaml}"
    );
    let all = c.coxctl(&["get", "all", "-A"]).success().stdout;
    assert!(all.contains("pod/a") && all.contains("NAMESPACE"), "{all}");

    c.coxctl(&["label", "po", "a", "tier=front"]).success();
    let clash = c.coxctl(&["label", "po", "a", "tier=back"]).failure();
    assert!(clash.stderr.contains("--overwrite"), "{}", clash.stderr);
    c.coxctl(&["label", "po", "a", "tier=back", "--overwrite"])
        .success();
    c.coxctl(&["annotate", "po", "a", "note=hi"]).success();
    let v = parse_json(&c.coxctl(&["get", "po", "a", "-o", "json"]).success().stdout);
    assert_eq!(v["metadata"]["labels"]["tier"], "back");
    assert_eq!(v["metadata"]["annotations"]["note"], "hi");
    c.coxctl(&["label", "po", "a", "tier-"]).success();
    let v = parse_json(&c.coxctl(&["get", "po", "a", "-o", "json"]).success().stdout);
    assert!(v["metadata"]["labels"].get("tier").is_none());

    // Events are objects; describe shows those of the object.
    let uid = v["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ev = format!(
        "apiVersion: v1\nkind: Event\nmetadata:\n  name: a.1\ninvolvedObject:\n  kind: Pod\n  name: a\n  namespace: default\n  uid: {uid}\nreason: Scheduled\nmessage: Successfully assigned default/a to node1\ntype: Normal\nsource:\n  component: default-scheduler\n"
    );
    c.coxctl_in(&["apply", "-f", "-"], None, Some(&ev))
        .success();
    let d = c.coxctl(&["describe", "pod", "a"]).success().stdout;
    assert!(d.contains("Name:") && d.contains("node1"), "{d}");
    assert!(
        d.contains("Events:") && d.contains("Successfully assigned default/a to node1"),
        "{d}"
    );

    let missing = c.coxctl(&["get", "po", "nope"]).failure();
    assert!(
        missing.stderr.contains("NotFound") && missing.stderr.contains("\"nope\" not found"),
        "{}",
        missing.stderr
    );
}

#[test]
fn delete_cascade_orphan_keeps_dependents_and_background_removes_them() {
    let c = Coxswain::start().expect("start coxswain");
    let dir = scenarios_dir();
    c.coxctl_in(
        &["apply", "-f", "00-namespace-mayikt-sit.yaml"],
        Some(&dir),
        None,
    )
    .success();
    c.coxctl_in(
        &["apply", "-f", "38-replicaset-mayikt-rp.yaml"],
        Some(&dir),
        None,
    )
    .success();
    let rs = parse_json(
        &c.coxctl(&["get", "rs", "mayikt-rp", "-n", "mayikt-sit", "-o", "json"])
            .success()
            .stdout,
    );
    let uid = rs["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let pod = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: mayikt-sit\n  labels: {{app: mayikt-rp}}\n  ownerReferences:\n  - apiVersion: apps/v1\n    kind: ReplicaSet\n    name: mayikt-rp\n    uid: {uid}\n    controller: true\nspec:\n  containers:\n  - name: c\n    image: nginx\n"
        )
    };
    c.coxctl_in(&["apply", "-f", "-"], None, Some(&pod("mayikt-rp-aaaaa")))
        .success();
    let d = c
        .coxctl(&["describe", "pod", "mayikt-rp-aaaaa", "-n", "mayikt-sit"])
        .success()
        .stdout;
    assert!(d.contains("ReplicaSet/mayikt-rp"), "Controlled By: {d}");
    c.coxctl(&[
        "delete",
        "rs",
        "mayikt-rp",
        "-n",
        "mayikt-sit",
        "--cascade=orphan",
    ])
    .success();
    wait_until("rs gone", Duration::from_secs(10), || {
        (!c.coxctl(&["get", "rs", "mayikt-rp", "-n", "mayikt-sit"]).ok).then_some(())
    })
    .expect("rs deleted");
    let p = parse_json(
        &c.coxctl(&[
            "get",
            "pod",
            "mayikt-rp-aaaaa",
            "-n",
            "mayikt-sit",
            "-o",
            "json",
        ])
        .success()
        .stdout,
    );
    assert!(
        p["metadata"].get("ownerReferences").is_none(),
        "orphaned pod has no owner: {p}"
    );

    // Background (the default): dependents are collected.
    c.coxctl_in(
        &["apply", "-f", "38-replicaset-mayikt-rp.yaml"],
        Some(&dir),
        None,
    )
    .success();
    let rs = parse_json(
        &c.coxctl(&["get", "rs", "mayikt-rp", "-n", "mayikt-sit", "-o", "json"])
            .success()
            .stdout,
    );
    let uid2 = rs["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let p2 = pod("mayikt-rp-bbbbb").replace(&uid, &uid2);
    c.coxctl_in(&["apply", "-f", "-"], None, Some(&p2))
        .success();
    let out = c
        .coxctl(&["delete", "rs", "mayikt-rp", "-n", "mayikt-sit"])
        .success();
    assert!(
        out.stdout.contains("replicaset.apps \"mayikt-rp\" deleted"),
        "{}",
        out.stdout
    );
    wait_until("dependent pod collected", Duration::from_secs(10), || {
        (!c.coxctl(&["get", "pod", "mayikt-rp-bbbbb", "-n", "mayikt-sit"])
            .ok)
            .then_some(())
    })
    .expect("pod collected");
    assert!(
        c.coxctl(&["get", "pod", "mayikt-rp-aaaaa", "-n", "mayikt-sit"])
            .ok,
        "the orphan stays"
    );

    // [reset ns]: deleting the namespace deletes everything in it.
    c.coxctl(&["delete", "ns", "mayikt-sit"]).success();
    wait_until("namespace gone", Duration::from_secs(10), || {
        (!c.coxctl(&["get", "ns", "mayikt-sit"]).ok).then_some(())
    })
    .expect("namespace deleted");
    c.coxctl(&["create", "ns", "mayikt-sit"]).success();
    let all = c.coxctl(&["get", "all", "-n", "mayikt-sit"]);
    assert!(all.stdout.trim().is_empty(), "nothing left: {}", all.stdout);
}

#[test]
fn get_watch_streams_changes() {
    let c = Coxswain::start().expect("start coxswain");
    let mut child = Command::new(bin("coxctl"))
        .args(["get", "configmaps", "-w", "--server", &c.url()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("coxctl get -w");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // Apply until the watch shows it (the first applies may land before the watch is open;
    // the later ones arrive as events).
    let mut seen = false;
    for i in 0..50 {
        let m = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched-{i}\ndata:\n  k: v\n"
        );
        c.coxctl_in(&["apply", "-f", "-"], None, Some(&m)).success();
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if line.contains("watched-") {
                seen = true;
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen, "coxctl get -w printed a row for an applied ConfigMap");
}

#[test]
fn delete_f_names_objects_from_the_file_even_when_the_store_holds_more() {
    // S38: a pod made with `create -f` carries the default tolerations admission added; the
    // file does not. `delete -f` must still find and delete it.
    let c = Coxswain::start().expect("start coxswain");
    let dir = scenarios_dir();
    c.coxctl_in(
        &["apply", "-f", "00-namespace-mayikt-sit.yaml"],
        Some(&dir),
        None,
    )
    .success();
    c.coxctl_in(
        &["create", "-f", "37-pod-taint-toleration.yaml"],
        Some(&dir),
        None,
    )
    .success();
    let out = c
        .coxctl_in(
            &["delete", "-f", "37-pod-taint-toleration.yaml"],
            Some(&dir),
            None,
        )
        .success();
    assert!(out.stdout.contains("deleted"), "{}", out.stdout);
    let left = c
        .coxctl(&["get", "pods", "-n", "mayikt-sit", "-o", "name"])
        .success();
    assert_eq!(left.stdout.trim(), "", "{}", left.stdout);
}

/// kubectl (Go) is killed by SIGPIPE, silently, when its stdout is a closed pipe
/// (`kubectl get pods | head -1`: status 141 in the shell); coxctl ends with that status and
/// says nothing, where it panicked (101), printed "Broken pipe" or kept a watch writing into
/// nothing. Each command here writes through a different path: a `print!`
/// (explain), a checked write (completion), the table and YAML printers and a watch (get).
#[test]
fn a_closed_stdout_ends_coxctl_as_sigpipe_without_a_word() {
    let c = Coxswain::start().expect("start coxswain");
    c.apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: piped\ndata:\n  k: v\n");
    let cases: [&[&str]; 5] = [
        &["explain", "pods", "--recursive"],
        &["completion", "bash"],
        &["get", "configmaps"],
        &["get", "configmaps", "-o", "yaml"],
        &["get", "configmaps", "-w"],
    ];
    for args in cases {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let mut child = Command::new(bin("coxctl"))
            .args(args)
            .env("COXSWAIN_SERVER", c.url())
            .env("COXCONFIG", &coxswain_test_support::pki().kubeconfig)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn coxctl");
        let status = wait_until("coxctl to end", Duration::from_secs(30), || {
            child.try_wait().ok().flatten()
        });
        let Ok(status) = status else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("coxctl {args:?} still running 30 s after its stdout closed");
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
            .expect("read stderr");
        assert_eq!(
            status.code(),
            Some(128 + 13), // a shell's status for death by SIGPIPE (13 on Linux)
            "coxctl {args:?} ended with {status} (stderr: {err:?})"
        );
        assert_eq!(err, "", "coxctl {args:?} said nothing");
    }
}
