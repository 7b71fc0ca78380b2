//! Golden outputs (issue 16 §6): coxctl's tables, `describe` and `-o yaml|json` for fixed objects,
//! compared byte for byte with checked-in files under `tests/golden/`. The files follow
//! kubectl's printers (columns, order, `<none>`/`<unknown>` markers, describe layouts); the store
//! runs alone, so no controller changes the objects between runs. Ages, timestamps, uids,
//! resourceVersions are normalised; the Service asks for a fixed cluster IP. `UPDATE_GOLDEN=1` rewrites the files.
//!
//! Each file starts with `#>` lines naming the upstream source its layout was checked against
//! (kept on update, not compared); the rest is coxctl's output byte for byte.
use std::path::PathBuf;

use coxswain_test_support::Coxswain;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// A word that is an age as kubectl prints it (0s, 5m, 2m3s, 3h4m, 4d).
fn is_age(w: &str) -> bool {
    let mut units = 0;
    let mut digits = 0;
    for c in w.chars() {
        if c.is_ascii_digit() {
            digits += 1;
        } else if "smhdy".contains(c) && digits > 0 {
            units += 1;
            digits = 0;
        } else {
            return false;
        }
    }
    units > 0 && digits == 0 && units <= 2
}

/// A UUID inside a word (the Job's controller-uid labels and selector).
fn uid_in(w: &str) -> Option<&str> {
    let b = w.as_bytes();
    (0..b.len().saturating_sub(35)).find_map(|i| {
        let c = &w[i..i + 36];
        let ok = c.char_indices().all(|(j, ch)| {
            if matches!(j, 8 | 13 | 18 | 23) {
                ch == '-'
            } else {
                ch.is_ascii_hexdigit()
            }
        });
        ok.then_some(c)
    })
}

/// Replace what changes from run to run, keeping the layout (column widths may shift, so
/// runs of spaces after a replaced word are kept as they are).
fn normalise(text: &str) -> String {
    let mut out = String::new();
    'lines: for line in text.lines() {
        let trimmed = line.trim_start();
        for key in [
            "creationTimestamp:",
            "uid:",
            "resourceVersion:",
            "Start Time:",
            "CreationTimestamp:",
        ] {
            if trimmed.starts_with(key) {
                let indent = &line[..line.len() - trimmed.len()];
                out.push_str(&format!("{indent}{key} <normalised>\n"));
                continue 'lines;
            }
        }
        // The same keys in -o json: `"key": "value",`.
        for key in ["creationTimestamp", "uid", "resourceVersion"] {
            if trimmed.starts_with(&format!("\"{key}\": ")) {
                let indent = &line[..line.len() - trimmed.len()];
                let comma = if line.ends_with(',') { "," } else { "" };
                out.push_str(&format!("{indent}\"{key}\": <normalised>{comma}\n"));
                continue 'lines;
            }
        }
        let mut l = String::new();
        for (i, w) in line.split(' ').enumerate() {
            if i > 0 {
                l.push(' ');
            }
            if is_age(w) {
                l.push_str("<age>");
            } else if let Some(u) = uid_in(w) {
                l.push_str(&w.replace(u, "<uid>"));
            } else {
                l.push_str(w);
            }
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

#[test]
fn outputs_match_the_golden_files() {
    let c = Coxswain::start().expect("start coxswain");
    let objects = std::fs::read_to_string(golden_dir().join("objects.yaml")).expect("objects");
    c.apply(&objects);
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("get-pods", vec!["get", "pods", "-n", "mayikt-sit"]),
        (
            "get-pods-wide",
            vec!["get", "pods", "-n", "mayikt-sit", "-o", "wide"],
        ),
        ("get-deploy", vec!["get", "deploy", "-n", "mayikt-sit"]),
        ("get-rs", vec!["get", "rs", "-n", "mayikt-sit"]),
        ("get-svc", vec!["get", "svc", "-n", "mayikt-sit"]),
        ("get-ep", vec!["get", "ep", "-n", "mayikt-sit"]),
        ("get-nodes", vec!["get", "nodes"]),
        ("get-hpa", vec!["get", "hpa", "-n", "mayikt-sit"]),
        ("get-job", vec!["get", "job", "-n", "mayikt-sit"]),
        ("get-cronjob", vec!["get", "cronjob", "-n", "mayikt-sit"]),
        ("get-sts", vec!["get", "sts", "-n", "mayikt-sit"]),
        ("get-pvc", vec!["get", "pvc", "-n", "mayikt-sit"]),
        ("get-pv", vec!["get", "pv"]),
        ("get-ds", vec!["get", "ds", "-n", "mayikt-sit"]),
        ("get-cm", vec!["get", "cm", "-n", "mayikt-sit"]),
        ("get-secret", vec!["get", "secret", "-n", "mayikt-sit"]),
        // Several kinds: a table per kind with its own header, names as kind.group/name,
        // a blank line between kinds (kubectl's HumanReadablePrinter with WithKind).
        (
            "get-deploy-svc",
            vec!["get", "deploy,svc", "-n", "mayikt-sit"],
        ),
        ("get-all", vec!["get", "all", "-n", "mayikt-sit"]),
        (
            "get-rs-pod-named",
            vec!["get", "rs/mayikt-rs", "pod/mayikt-pod", "-n", "mayikt-sit"],
        ),
        (
            "describe-pod",
            vec!["describe", "pod", "mayikt-pod", "-n", "mayikt-sit"],
        ),
        (
            "describe-deploy",
            vec!["describe", "deploy", "mayikt-deploy", "-n", "mayikt-sit"],
        ),
        (
            "describe-svc",
            vec!["describe", "svc", "mayikt-svc", "-n", "mayikt-sit"],
        ),
        ("describe-node", vec!["describe", "node", "node9"]),
        (
            "describe-rs",
            vec!["describe", "rs", "mayikt-rs", "-n", "mayikt-sit"],
        ),
        (
            "describe-sts",
            vec!["describe", "sts", "mayikt-sts", "-n", "mayikt-sit"],
        ),
        (
            "describe-ds",
            vec!["describe", "ds", "mayikt-ds", "-n", "mayikt-sit"],
        ),
        (
            "describe-job",
            vec!["describe", "job", "mayikt-job", "-n", "mayikt-sit"],
        ),
        (
            "describe-cronjob",
            vec!["describe", "cronjob", "mayikt-cron", "-n", "mayikt-sit"],
        ),
        (
            "describe-hpa",
            vec!["describe", "hpa", "mayikt-hpa", "-n", "mayikt-sit"],
        ),
        (
            "describe-pvc",
            vec!["describe", "pvc", "mayikt-pvc", "-n", "mayikt-sit"],
        ),
        ("describe-pv", vec!["describe", "pv", "mayikt-pv"]),
        (
            "describe-cm",
            vec!["describe", "cm", "mayikt-cm", "-n", "mayikt-sit"],
        ),
        (
            "describe-secret",
            vec!["describe", "secret", "mayikt-secret", "-n", "mayikt-sit"],
        ),
        (
            "describe-ep",
            vec!["describe", "ep", "mayikt-ep", "-n", "mayikt-sit"],
        ),
        (
            "yaml-pod",
            vec!["get", "pod", "mayikt-pod", "-n", "mayikt-sit", "-o", "yaml"],
        ),
        (
            "json-pod",
            vec!["get", "pod", "mayikt-pod", "-n", "mayikt-sit", "-o", "json"],
        ),
    ];
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut diffs = Vec::new();
    for (name, args) in cases {
        let out = c.coxctl(&args).success();
        let got = normalise(&out.stdout);
        let path = golden_dir().join(format!("{name}.txt"));
        let file = std::fs::read_to_string(&path).unwrap_or_default();
        let (header, want) = split_header(&file);
        if update {
            std::fs::write(&path, format!("{header}{got}")).expect("write golden");
            continue;
        }
        if got != want {
            diffs.push(format!("--- {name} (want)\n{want}--- {name} (got)\n{got}"));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// The leading `#>` lines (where the layout was checked upstream) and the rest.
fn split_header(file: &str) -> (String, String) {
    let mut header = String::new();
    let mut rest = file;
    while rest.starts_with("#>") {
        let end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        header.push_str(&rest[..end]);
        rest = &rest[end..];
    }
    (header, rest.to_string())
}

#[test]
fn every_golden_names_its_upstream_source() {
    for e in std::fs::read_dir(golden_dir()).expect("golden dir") {
        let path = e.expect("entry").path();
        if path.extension().is_some_and(|x| x == "txt") {
            let text = std::fs::read_to_string(&path).expect("read");
            let (header, _) = split_header(&text);
            assert!(
                header.contains("kubernetes/"),
                "{} has no '#>' header naming the upstream source",
                path.display()
            );
        }
    }
}

#[test]
fn normalise_hides_only_what_changes() {
    assert_eq!(
        normalise("NAME  AGE\nweb   12s\nx     2m3s\n"),
        "NAME  AGE\nweb   <age>\nx     <age>\n"
    );
    assert_eq!(normalise("  uid: 1234-abcd\n"), "  uid: <normalised>\n");
    assert_eq!(
        normalise("    \"resourceVersion\": \"97\",\n    \"uid\": \"x\"\n"),
        "    \"resourceVersion\": <normalised>,\n    \"uid\": <normalised>\n"
    );
    assert_eq!(
        normalise("x=b6b1dc67-6614-4bf8-9bbe-1480b8cfa2bc y\n"),
        "x=<uid> y\n"
    );
    // A CPU quantity in millis reads as minutes: normalised too (both sides alike).
    assert_eq!(normalise("cpu 200m 64Mi\n"), "cpu <age> 64Mi\n");
}
