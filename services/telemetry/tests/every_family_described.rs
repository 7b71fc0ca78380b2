//! Every family any workspace crate records through the `metrics` macros has HELP text in
//! `FAMILIES` (promtool fails an endpoint on a family without HELP), and the README lists
//! every exported family.
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() && name != "target" && !name.starts_with('.') {
            sources(&p, out);
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Names recorded by `metrics::counter!(` / `gauge!(` / `histogram!(` calls, the name being
/// the first string literal after the macro's parenthesis.
fn recorded() -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    for d in ["services", "client", "loadgen", "src", "coxctl"] {
        sources(&root().join(d), &mut files);
    }
    let mut out = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for mac in ["counter!(", "gauge!(", "histogram!("] {
            for (i, _) in text.match_indices(mac) {
                if !text[..i].ends_with("metrics::") {
                    continue;
                }
                let rest = text[i + mac.len()..].trim_start();
                if let Some(r) = rest.strip_prefix('"') {
                    if let Some(end) = r.find('"') {
                        out.push((r[..end].to_string(), f.clone()));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn every_recorded_family_has_help_text() {
    let names: Vec<_> = recorded();
    assert!(names.len() > 20, "found only {names:?}");
    for (n, f) in names {
        assert!(
            coxswain_telemetry::FAMILIES.iter().any(|fam| fam.name == n),
            "{n} (recorded in {}) has no entry in coxswain_telemetry::FAMILIES",
            f.display()
        );
    }
}

#[test]
fn the_readme_lists_every_family() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme
        .split("\n## Metrics\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has a Metrics section");
    for fam in coxswain_telemetry::FAMILIES {
        assert!(
            section.contains(&format!("`{}", fam.name)),
            "README's Metrics section does not list {}",
            fam.name
        );
    }
}
