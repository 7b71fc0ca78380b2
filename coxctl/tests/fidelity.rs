//! kubectl fidelity against the real `coxswain` binary (issue 16 §1, §2, §5): `version` with the
//! server's version, `completion`, `explain`, and gRPC errors that carry a `google.rpc.Status`
//! with ErrorInfo and BadRequest field violations.
use std::process::Command;

use coxswain_api::v1::{ApplyRequest, VersionRequest};
use coxswain_test_support::{bin, parse_json, Coxswain};
use tonic_types::StatusExt;

#[test]
fn version_prints_the_client_and_the_server() {
    let c = Coxswain::start().expect("start coxswain");
    let gv = format!("v{}", env!("CARGO_PKG_VERSION"));
    let out = c.coxctl(&["version"]).success();
    assert_eq!(
        out.stdout,
        format!("Client Version: {gv}\nServer Version: {gv}\n")
    );
    let v = parse_json(&c.coxctl(&["version", "-o", "json"]).success().stdout);
    for side in ["clientVersion", "serverVersion"] {
        assert_eq!(v[side]["gitVersion"], gv.as_str(), "{v}");
        assert_eq!(v[side]["major"], "0", "{v}");
        assert_eq!(v[side]["minor"], "1", "{v}");
        assert_eq!(v[side]["compiler"], "rustc", "{v}");
        assert!(
            v[side]["goVersion"]
                .as_str()
                .is_some_and(|g| g.starts_with("rustc ")),
            "{v}"
        );
        assert!(
            v[side]["platform"]
                .as_str()
                .is_some_and(|p| p.starts_with("linux/")),
            "{v}"
        );
    }
    let y = c.coxctl(&["version", "-o", "yaml"]).success().stdout;
    assert!(y.starts_with("clientVersion:\n  buildDate: \"\"\n"), "{y}");
    assert!(y.contains("\nserverVersion:\n"), "{y}");
    assert!(y.contains(&format!("\n  gitVersion: {gv}\n")), "{y}");
    // --client needs no server.
    let out = Command::new(bin("coxctl"))
        .args(["version", "--client", "-s", "127.0.0.1:1"])
        .output()
        .expect("coxctl");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("Client Version: {gv}\n")
    );
    // No server: the client's version, then the error.
    let out = Command::new(bin("coxctl"))
        .args(["version", "-s", "127.0.0.1:1"])
        .env_remove("COXCONFIG")
        .output()
        .expect("coxctl");
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("Client Version: {gv}\n")
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("Unable to connect to the server: "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = c.coxctl(&["version", "-o", "wide"]).failure();
    assert!(
        bad.stderr.starts_with("error: --output must be"),
        "{}",
        bad.stderr
    );

    // The RPC itself, as grpcurl or any program reads it.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let info = rt
        .block_on(async {
            let mut client = c.client().await.expect("client");
            client.version(VersionRequest {}).await
        })
        .expect("version")
        .into_inner();
    assert_eq!(info.git_version, gv);
}

#[test]
fn completion_scripts_load_and_complete_verbs() {
    let out = Command::new(bin("coxctl"))
        .args(["completion", "bash"])
        .output()
        .expect("coxctl");
    assert!(out.status.success());
    let dir = tempfile::tempdir().expect("tmp");
    let script = dir.path().join("coxctl.bash");
    std::fs::write(&script, &out.stdout).expect("write");
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("bash");
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    // Source it and ask for completions as bash's programmable completion does.
    let complete = |words: &str, cword: usize| -> Vec<String> {
        let prog = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE=\"{words}\"; \
             COMP_POINT=${{#COMP_LINE}}; _coxctl coxctl \"${{COMP_WORDS[$COMP_CWORD]}}\" \
             \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        let out = Command::new("bash")
            .args(["--norc", "-c", &prog])
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()
    };
    assert_eq!(complete("coxctl ge", 1), vec!["get"]);
    let verbs = complete("coxctl ex", 1);
    assert!(verbs.contains(&"expose".to_string()), "{verbs:?}");
    assert!(verbs.contains(&"explain".to_string()), "{verbs:?}");
    let flags = complete("coxctl get --show-l", 2);
    assert_eq!(flags, vec!["--show-labels"]);
    // zsh and fish are not installed here: the scripts are what each shell loads (zsh's
    // #compdef header, fish's `complete -c`), offering the verbs.
    for (sh, head, verb) in [
        (
            "zsh",
            "#compdef coxctl\n",
            "'get:Display one or many resources'",
        ),
        (
            "fish",
            "",
            "complete -c coxctl -n \"__fish_coxctl_needs_command\" -f -a \"get\"",
        ),
    ] {
        let out = Command::new(bin("coxctl"))
            .args(["completion", sh])
            .output()
            .expect("coxctl");
        assert!(out.status.success(), "{sh}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.starts_with(head), "{sh}: {script}");
        assert!(script.contains(verb), "{sh}: {script}");
    }
    let out = Command::new(bin("coxctl"))
        .args(["completion", "tcsh"])
        .output()
        .expect("coxctl");
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: Unsupported shell type \"tcsh\".\n"
    );
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  k: v\n";
const BAD_POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  containers:\n  - name: c\n    image: \"\"\n  restartPolicy: Sometimes\n";

#[test]
fn errors_carry_structured_details() {
    let c = Coxswain::start().expect("start coxswain");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut client = c.client().await.expect("client");
        let create = |m: &str| ApplyRequest {
            manifest: m.to_string(),
            create_only: true,
            ..Default::default()
        };
        client.apply(create(CM)).await.expect("first create");
        let st = client.apply(create(CM)).await.expect_err("second create");
        assert_eq!(st.code(), tonic::Code::AlreadyExists);
        let d = st.get_error_details();
        let info = d.error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "AlreadyExists");
        assert_eq!(info.domain, "coxswain.io");
        assert_eq!(info.metadata.get("name").map(String::as_str), Some("cfg"));
        assert_eq!(
            info.metadata.get("kind").map(String::as_str),
            Some("configmaps")
        );

        let st = client
            .apply(create(BAD_POD))
            .await
            .expect_err("invalid pod");
        assert_eq!(st.code(), tonic::Code::InvalidArgument);
        let d = st.get_error_details();
        assert_eq!(
            d.error_info().map(|i| i.reason.as_str()),
            Some("Invalid"),
            "{st:?}"
        );
        let fields: Vec<&str> = d
            .bad_request()
            .expect("BadRequest")
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert!(fields.contains(&"spec.containers[0].image"), "{fields:?}");
        assert!(fields.contains(&"spec.restartPolicy"), "{fields:?}");

        // Malformed requests, refused before the store is asked, carry details too.
        for (kind, message) in [
            ("", "kind: Required value"),
            ("gizmo", "the server doesn't have a resource type \"gizmo\""),
        ] {
            let st = client
                .get(coxswain_api::v1::GetRequest {
                    kind: kind.into(),
                    namespace: "default".into(),
                    name: "x".into(),
                })
                .await
                .expect_err("malformed get");
            assert_eq!(st.code(), tonic::Code::InvalidArgument);
            assert_eq!(st.message(), message);
            let d = st.get_error_details();
            assert_eq!(
                d.error_info().map(|i| i.reason.as_str()),
                Some("BadRequest"),
                "{st:?}"
            );
        }
    });
    // coxctl prints the reason the details name.
    let out = c
        .coxctl_in(&["create", "-f", "-"], None, Some(CM))
        .failure();
    assert_eq!(
        out.stderr,
        "Error from server (AlreadyExists): error when creating \"STDIN\": configmaps \"cfg\" already exists\n"
    );
    let out = c
        .coxctl(&["get", "pods", "--field-selector", "spec.bogus=x"])
        .failure();
    assert!(
        out.stderr.starts_with("Error from server (BadRequest): "),
        "{}",
        out.stderr
    );
}

/// Seed 000: `kubectl explain ds.spec`, as kubectl prints it (no server needed: the schema is
/// the client's).
#[test]
fn explain_prints_the_schema_with_upstream_docs() {
    let run = |args: &[&str]| {
        let out = Command::new(bin("coxctl"))
            .args(args)
            .env("COXSWAIN_SERVER", "127.0.0.1:1")
            .output()
            .expect("coxctl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&["explain", "ds.spec"]);
    assert!(ok, "{err}");
    let want = "GROUP:      apps\nKIND:       DaemonSet\nVERSION:    v1\n\nFIELD: spec <DaemonSetSpec>\n\n\n\
DESCRIPTION:\n    The desired behavior of this daemon set. More info:\n    \
https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status\n    \
DaemonSetSpec is the specification of a daemon set.\n    \nFIELDS:\n  minReadySeconds\t<integer>\n    \
The minimum number of seconds for which a newly created DaemonSet pod should\n    be ready without any of \
its container crashing, for it to be considered\n    available. Defaults to 0 (pod will be considered \
available as soon as it is\n    ready).\n\n  revisionHistoryLimit\t<integer>\n";
    assert!(out.starts_with(want), "{out}");
    assert!(
        out.contains("\n  selector\t<LabelSelector> -required-\n    A label query over pods"),
        "{out}"
    );
    assert!(out.ends_with("\n  updateStrategy\t<DaemonSetUpdateStrategy>\n    An update strategy to replace existing DaemonSet pods with new pods.\n\n"), "{out}");
    let (ok, out, _) = run(&["explain", "pods", "--recursive"]);
    assert!(ok);
    assert!(
        out.contains(
            "\n  spec\t<PodSpec>\n    activeDeadlineSeconds\t<integer>\n    affinity\t<Affinity>\n"
        ),
        "{out}"
    );
    assert!(!out.contains("The minimum number"), "{out}");
    let (ok, _, err) = run(&["explain", "pods.spec.bogus"]);
    assert!(!ok);
    assert_eq!(err, "error: field \"bogus\" does not exist\n");
    let (ok, _, err) = run(&["explain", "widgets"]);
    assert!(!ok);
    assert_eq!(
        err,
        "error: the server doesn't have a resource type \"widgets\"\n"
    );
}

/// ServiceAccounts as upstream: a `default` one in every namespace (the serviceaccounts
/// controller), pods defaulted to it, a pod naming a missing one Forbidden (the ServiceAccount
/// admission); and `describe svc` with the IP family and traffic policy lines kubectl prints.
#[test]
fn service_accounts_and_service_ip_families() {
    let c = Coxswain::start_fast_up(&[]).expect("start coxswain up");
    let wait_sa = |ns: &str| {
        coxswain_test_support::wait_until(
            &format!("the default ServiceAccount in {ns}"),
            std::time::Duration::from_secs(30),
            || {
                c.coxctl(&["get", "sa", "default", "-n", ns])
                    .ok
                    .then_some(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    };
    wait_sa("default");
    c.coxctl(&["create", "namespace", "team"]).success();
    wait_sa("team");
    // Deleted, it is made again.
    c.coxctl(&["delete", "sa", "default", "-n", "team"])
        .success();
    wait_sa("team");

    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: plain\nspec:\n  containers:\n  - name: c\n    image: nginx\n")
        .success();
    let p = parse_json(
        &c.coxctl(&["get", "pod", "plain", "-o", "json"])
            .success()
            .stdout,
    );
    assert_eq!(p["spec"]["serviceAccountName"], "default", "{p}");
    assert_eq!(p["spec"]["serviceAccount"], "default", "{p}");

    let robot = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: robotic\nspec:\n  serviceAccountName: robot\n  containers:\n  - name: c\n    image: nginx\n";
    let out = c
        .coxctl_in(&["create", "-f", "-"], None, Some(robot))
        .failure();
    assert_eq!(
        out.stderr,
        "Error from server (Forbidden): error when creating \"STDIN\": pods \"robotic\" is forbidden: error looking up service account default/robot: serviceaccount \"robot\" not found\n"
    );
    c.coxctl(&["create", "serviceaccount", "robot"]).success();
    c.coxctl_in(&["create", "-f", "-"], None, Some(robot))
        .success();

    c.apply("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n  - port: 80\n")
        .success();
    let svc = parse_json(
        &c.coxctl(&["get", "svc", "web", "-o", "json"])
            .success()
            .stdout,
    );
    assert_eq!(svc["spec"]["ipFamilyPolicy"], "SingleStack", "{svc}");
    assert_eq!(svc["spec"]["ipFamilies"][0], "IPv4", "{svc}");
    let ip = svc["spec"]["clusterIP"].as_str().unwrap_or("").to_string();
    let d = c.coxctl(&["describe", "svc", "web"]).success().stdout;
    let lines: Vec<&str> = d.lines().collect();
    let at = |label: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label} in\n{d}"))
    };
    assert!(at("Type:") < at("IP Family Policy:"), "{d}");
    assert!(at("IP Family Policy:") < at("IP Families:"), "{d}");
    assert!(at("IP Families:") < at("IP:"), "{d}");
    assert!(at("IP:") < at("IPs:"), "{d}");
    assert!(
        at("Session Affinity:") < at("Internal Traffic Policy:"),
        "{d}"
    );
    assert!(
        lines[at("IP Family Policy:")].ends_with(" SingleStack"),
        "{d}"
    );
    assert!(lines[at("IP Families:")].ends_with(" IPv4"), "{d}");
    assert!(lines[at("IPs:")].ends_with(&format!(" {ip}")), "{d}");
    assert!(
        lines[at("Internal Traffic Policy:")].ends_with(" Cluster"),
        "{d}"
    );
}
