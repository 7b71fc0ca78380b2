//! Every scenario manifest parses, defaults (idempotently) and validates cleanly; every
//! manifest in `invalid/` is rejected with an error naming the field SCENARIOS.md S55 expects.
use std::path::PathBuf;

use coxswain_api::defaults::apply_defaults;
use coxswain_api::error::FieldError;
use coxswain_api::manifest::parse_manifests;
use coxswain_api::validation::validate;
use coxswain_api::{Error, Kind, Object};

fn scenarios() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/scenarios"))
}

fn yaml_files(dir: &PathBuf) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("scenario directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn read(path: &PathBuf) -> String {
    std::fs::read_to_string(path).expect("readable")
}

#[test]
fn every_scenario_manifest_parses_defaults_and_validates() {
    let files = yaml_files(&scenarios());
    assert!(
        files.len() >= 50,
        "found only {} scenario files",
        files.len()
    );
    let mut objects = 0;
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let parsed = parse_manifests(&read(&path)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!parsed.is_empty(), "{name}: no objects");
        for p in parsed {
            let mut obj = p.object;
            apply_defaults(&mut obj);
            let once = obj.clone();
            apply_defaults(&mut obj);
            assert_eq!(obj, once, "{name}: defaults are not idempotent");
            let errs = validate(&obj);
            assert!(
                errs.is_empty(),
                "{name}: {} is invalid: {errs:?}",
                obj.describe_ref()
            );
            // Only the old CronJob versions warn.
            let deprecated = obj.kind() == Kind::CronJob && obj.api_version() != "batch/v1";
            assert_eq!(
                !p.warnings.is_empty(),
                deprecated,
                "{name}: warnings {:?}",
                p.warnings
            );
            objects += 1;
        }
    }
    assert!(objects >= 60, "only {objects} objects");
}

#[test]
fn old_cronjob_versions_warn_like_kubernetes() {
    let p = parse_manifests(&read(&scenarios().join("48-cronjob-mayikt.yaml"))).expect("parses");
    assert_eq!(
        p[0].warnings,
        vec!["batch/v1beta1 CronJob is deprecated in v1.21+, unavailable in v1.25+; use batch/v1 CronJob"]
    );
    let p = parse_manifests(&read(&scenarios().join("12-cronjob-hello-v2alpha1.yaml")))
        .expect("parses");
    assert_eq!(p[0].warnings.len(), 1);
    assert!(
        p[0].warnings[0].starts_with("batch/v2alpha1 CronJob is deprecated in v1."),
        "{:?}",
        p[0].warnings
    );
    assert!(p[0].warnings[0].ends_with("; use batch/v1 CronJob"));
    assert_eq!(p[0].object.api_version(), "batch/v2alpha1");
}

#[test]
fn scenario_defaults_match_kubernetes() {
    // 53: claim template quantities canonical, claim template defaults, mounts of claim names ok.
    let p = parse_manifests(&read(
        &scenarios().join("53-statefulset-nginx-storage.yaml"),
    ))
    .expect("parses");
    let mut o = p[0].object.clone();
    apply_defaults(&mut o);
    let Object::StatefulSet(sts) = o else {
        panic!("not a StatefulSet")
    };
    let spec = sts.spec.expect("spec");
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(spec.pod_management_policy, "OrderedReady");
    let pvc = &spec.volume_claim_templates[0];
    assert_eq!(
        pvc.spec.as_ref().and_then(|s| s.volume_mode.as_deref()),
        Some("Filesystem")
    );

    // 10: work queue Job keeps completions unset.
    let p =
        parse_manifests(&read(&scenarios().join("10-job-myjob-parallelism.yaml"))).expect("parses");
    let mut o = p[0].object.clone();
    apply_defaults(&mut o);
    let Object::Job(job) = o else {
        panic!("not a Job")
    };
    let spec = job.spec.expect("spec");
    assert_eq!(
        (spec.completions, spec.parallelism, spec.backoff_limit),
        (None, Some(2), Some(6))
    );

    // 44: requests canonical.
    let p = parse_manifests(&read(
        &scenarios().join("44-deployment-nginx-hpa-target.yaml"),
    ))
    .expect("parses");
    let mut o = p[0].object.clone();
    apply_defaults(&mut o);
    let Object::Deployment(d) = o else {
        panic!("not a Deployment")
    };
    let c = &d
        .spec
        .expect("spec")
        .template
        .expect("t")
        .spec
        .expect("s")
        .containers[0];
    assert_eq!(
        c.resources
            .as_ref()
            .expect("r")
            .requests
            .get("cpu")
            .map(String::as_str),
        Some("200m")
    );
    assert_eq!(c.image_pull_policy, "IfNotPresent");
}

/// Parse, default and validate like the API server: the first error set found.
fn reject(file: &str) -> Error {
    let text = read(&scenarios().join("invalid").join(file));
    match parse_manifests(&text) {
        Err(e) => e,
        Ok(parsed) => {
            let mut errs: Vec<FieldError> = Vec::new();
            for p in parsed {
                let mut o = p.object;
                apply_defaults(&mut o);
                errs.extend(validate(&o));
            }
            assert!(!errs.is_empty(), "{file} was accepted");
            Error::Invalid(errs)
        }
    }
}

fn field_errors(file: &str) -> Vec<FieldError> {
    match reject(file) {
        Error::Invalid(errs) => errs,
        other => panic!("{file}: expected field errors, got {other:?}"),
    }
}

#[test]
fn invalid_01_duplicate_key_names_the_key_and_line() {
    let errs = field_errors("01-job-01-duplicate-ttl.yaml");
    assert_eq!(errs[0].path, "spec.ttlSecondsAfterFinished");
    assert!(
        errs[0].message.contains("\"ttlSecondsAfterFinished\""),
        "{}",
        errs[0].message
    );
    assert!(errs[0].message.contains("line 39"), "{}", errs[0].message);
    assert!(
        errs[0].message.contains("first at line 37"),
        "{}",
        errs[0].message
    );
}

#[test]
fn invalid_02_unknown_probe_field_has_its_full_path() {
    let errs = field_errors("02-pod-liveness-initialdelaysecands.yaml");
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].path,
        "spec.containers[0].livenessProbe.initialDelaySecands"
    );
    assert!(
        errs[0]
            .message
            .starts_with("unknown field \"initialDelaySecands\""),
        "{}",
        errs[0].message
    );
    assert!(
        errs[0]
            .message
            .contains("did you mean \"initialDelaySeconds\""),
        "{}",
        errs[0].message
    );
}

#[test]
fn invalid_03_syntax_error_points_at_netadata() {
    let Error::Parse(msg) = reject("03-daemonset-ssd-monitor-typos.yaml") else {
        panic!("expected a parse error")
    };
    // "netadata" is line 22; the scanner notices the missing ':' on the next line, where
    // go-yaml (so kubectl) reports it too: "yaml: line 23: could not find expected ':'".
    assert!(msg.contains("yaml: line 23 column "), "{msg}");
    assert!(msg.contains("could not find expected ':'"), "{msg}");
}

#[test]
fn invalid_04_daemonset_restart_policy() {
    let errs = field_errors("04-daemonset-restartpolicy-never.yaml");
    assert_eq!(
        errs.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        vec!["spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""]
    );
}

#[test]
fn invalid_05_daemonset_has_no_replicas() {
    let errs = field_errors("05-daemonset-replicas.yaml");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].path, "spec.replicas");
    assert!(
        errs[0].message.starts_with("unknown field \"replicas\""),
        "{}",
        errs[0].message
    );
}

#[test]
fn invalid_06_selector_must_match_template_labels() {
    let errs = field_errors("06-daemonset-selector-mismatch.yaml");
    assert_eq!(
        errs.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        vec!["spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"ds-b\"}: `selector` does not match template `labels`"]
    );
}

#[test]
fn invalid_07_job_restart_policy() {
    let errs = field_errors("07-job-restartpolicy-always.yaml");
    assert_eq!(
        errs.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        vec!["spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""]
    );
}

#[test]
fn every_invalid_file_is_rejected() {
    let files = yaml_files(&scenarios().join("invalid"));
    assert_eq!(files.len(), 7);
    for f in files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let e = reject(&name);
        assert!(!e.to_string().is_empty(), "{name}");
    }
}

#[test]
fn unknown_fields_inside_lists_and_maps_have_full_paths() {
    let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  selector:\n    matchLabels:\n      a: b\n  template:\n    metadata:\n      labels:\n        a: b\n    spec:\n      containers:\n      - name: c\n        image: x\n      - name: d\n        image: y\n        env:\n        - name: A\n          valueFrom:\n            configMapKeyRef:\n              name: cm\n              kee: k\n";
    let Err(Error::Invalid(errs)) = parse_manifests(text) else {
        panic!("accepted")
    };
    assert_eq!(
        errs[0].path,
        "spec.template.spec.containers[1].env[0].valueFrom.configMapKeyRef.kee"
    );
    assert!(
        errs[0].message.contains("did you mean \"key\""),
        "{}",
        errs[0].message
    );
}
