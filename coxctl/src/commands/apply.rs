//! `coxctl apply -f`, `create -f`, `create namespace`, and reading manifest sources.
use std::io::Read;
use std::path::Path;

use coxswain_api::{Kind, Object};

use crate::cli::{ApplyArgs, CreateArgs, CreateWhat};
use crate::client::{other, CliError, Client, Result};
use crate::printers::resource_name;

/// One manifest source: a file, or stdin.
#[derive(Debug)]
pub struct Source {
    pub name: String,
    pub text: String,
}

fn is_manifest_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Read `-f` arguments: "-" is stdin, a directory gives its .yaml/.yml/.json files (sorted).
pub fn read_sources(files: &[String]) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for f in files {
        if f == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| other(format!("reading stdin: {e}")))?;
            out.push(Source {
                name: "STDIN".into(),
                text,
            });
            continue;
        }
        let path = Path::new(f);
        if !path.exists() {
            return Err(other(format!("the path \"{f}\" does not exist")));
        }
        if path.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .map_err(|e| other(format!("reading {f}: {e}")))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_manifest_file(p))
                .collect();
            entries.sort();
            for p in entries {
                let text = std::fs::read_to_string(&p)
                    .map_err(|e| other(format!("reading {}: {e}", p.display())))?;
                out.push(Source {
                    name: p.display().to_string(),
                    text,
                });
            }
        } else {
            let text =
                std::fs::read_to_string(path).map_err(|e| other(format!("reading {f}: {e}")))?;
            out.push(Source {
                name: f.clone(),
                text,
            });
        }
    }
    Ok(out)
}

/// The documents of a YAML stream, each padded with the blank lines before it so that line
/// numbers in errors stay those of the file. Documents with nothing but comments are dropped;
/// JSON (or a single document) comes back whole.
pub fn split_documents(text: &str) -> Vec<String> {
    let is_marker = |l: &str| l == "---" || l.starts_with("--- ") || l.starts_with("---\t");
    if text.trim_start().starts_with('{') || !text.lines().any(is_marker) {
        return vec![text.to_string()];
    }
    let mut docs = Vec::new();
    let mut cur = String::new();
    let mut has_content = false;
    for (i, line) in text.lines().enumerate() {
        if is_marker(line.trim_end_matches('\r')) {
            if has_content {
                docs.push(std::mem::take(&mut cur));
            }
            // The marker line itself becomes a blank line of the next document.
            cur = "\n".repeat(i + 1);
            has_content = false;
            continue;
        }
        let t = line.trim();
        if !t.is_empty() && !t.starts_with('#') {
            has_content = true;
        }
        cur.push_str(line);
        cur.push('\n');
    }
    if has_content {
        docs.push(cur);
    }
    docs
}

/// The kind a result of Apply names ("Deployment").
pub fn result_kind(kind: &str) -> Option<Kind> {
    Kind::from_manifest_kind(kind).or_else(|| Kind::parse(kind))
}

fn dry_run_flag(s: &str) -> Result<(bool, &'static str)> {
    match s {
        "none" | "false" | "" => Ok((false, "")),
        "client" | "true" => Ok((true, " (dry run)")),
        "server" => Ok((true, " (server dry run)")),
        x => Err(other(format!(
            "Invalid dry-run value ({x}). Must be \"none\", \"server\", or \"client\"."
        ))),
    }
}

async fn apply_sources(
    client: &mut Client,
    files: &[String],
    namespace: &str,
    create_only: bool,
    dry_run: &str,
    record: bool,
) -> Result<()> {
    let (dry, suffix) = dry_run_flag(dry_run)?;
    let sources = read_sources(files)?;
    let mut failed = false;
    let mut any = false;
    for src in sources {
        if src.text.trim().is_empty() {
            continue;
        }
        // kubectl takes each document on its own: an error is reported and the rest go on.
        // YAML syntax errors are found here, client-side, as kubectl's decoder finds them.
        let docs = split_documents(&src.text);
        let multi = docs.len() > 1;
        for (n, doc) in docs.into_iter().enumerate() {
            if let Err(coxswain_api::error::Error::Parse(msg)) =
                coxswain_api::manifest::parse_manifests(&doc)
            {
                any = true;
                failed = true;
                let label = if multi && !msg.starts_with("document ") {
                    format!("document {}: ", n + 1)
                } else {
                    String::new()
                };
                eprintln!("error: error parsing {}: {label}{msg}", src.name);
                // The stream cannot be read past a syntax error.
                break;
            }
            match client.apply(doc, namespace, create_only, dry).await {
                Ok(resp) => {
                    for w in &resp.warnings {
                        eprintln!("Warning: {w}");
                    }
                    for r in &resp.results {
                        any = true;
                        let res = result_kind(&r.kind)
                            .map(resource_name)
                            .unwrap_or_else(|| r.kind.to_ascii_lowercase());
                        println!("{res}/{} {}{suffix}", r.name, r.action);
                    }
                    if record && !dry {
                        record_change_cause(client, &resp.results).await?;
                    }
                }
                Err(e @ CliError::Connect(_)) => return Err(e),
                Err(CliError::Server { reason, message }) => {
                    any = true;
                    let verb = if create_only { "creating" } else { "applying" };
                    let e = CliError::Server {
                        reason,
                        message: format!("error when {verb} \"{}\": {message}", src.name),
                    };
                    eprintln!("{e}");
                    failed = true;
                }
                Err(e) => {
                    any = true;
                    eprintln!("{e}");
                    failed = true;
                }
            }
        }
    }
    if !any {
        return Err(other(if create_only {
            "no objects passed to create"
        } else {
            "no objects passed to apply"
        }));
    }
    if failed {
        return Err(CliError::Reported);
    }
    Ok(())
}

pub async fn apply(client: &mut Client, args: &ApplyArgs, namespace: &str) -> Result<()> {
    apply_sources(
        client,
        &args.files,
        namespace,
        false,
        &args.dry_run,
        args.record,
    )
    .await
}

/// `--record`: the command line becomes the kubernetes.io/change-cause annotation of the
/// workloads just applied (the rollout history's CHANGE-CAUSE).
async fn record_change_cause(
    client: &mut Client,
    results: &[coxswain_api::v1::ApplyResult],
) -> Result<()> {
    let cause = std::iter::once("coxctl".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    for r in results {
        let Some(kind) = result_kind(&r.kind) else {
            continue;
        };
        if !matches!(kind, Kind::Deployment | Kind::DaemonSet | Kind::StatefulSet) {
            continue;
        }
        let patch =
            serde_json::json!({"metadata": {"annotations": {"kubernetes.io/change-cause": cause}}});
        client.patch(kind, &r.namespace, &r.name, &patch).await?;
    }
    Ok(())
}

/// `create`; `explicit`: the namespace came from `-n` (kubectl's EnforceNamespace).
pub async fn create(
    client: &mut Client,
    args: &CreateArgs,
    namespace: &str,
    explicit: bool,
) -> Result<()> {
    let ns = crate::commands::create::Ns {
        name: namespace,
        explicit,
    };
    match &args.what {
        Some(CreateWhat::Namespace { name }) => {
            let mut obj: Object = Kind::Namespace.empty();
            obj.meta_mut().name = name.clone();
            let (dry, suffix) = dry_run_flag(&args.dry_run)?;
            if !dry {
                client.create(&obj).await?;
            }
            println!("namespace/{name} created{suffix}");
            Ok(())
        }
        Some(CreateWhat::Serviceaccount { name }) => {
            let mut obj: Object = Kind::ServiceAccount.empty();
            obj.meta_mut().name = name.clone();
            obj.meta_mut().namespace = namespace.to_string();
            let (dry, suffix) = dry_run_flag(&args.dry_run)?;
            if !dry {
                client.create(&obj).await?;
            }
            println!("serviceaccount/{name} created{suffix}");
            Ok(())
        }
        Some(CreateWhat::Job { name, from }) => {
            crate::commands::workloads::create_job_from(client, name, from, namespace).await
        }
        Some(CreateWhat::Deployment(a)) => {
            crate::commands::create::create_deployment(client, a, ns).await
        }
        Some(CreateWhat::Configmap(a)) => {
            crate::commands::create::create_configmap(client, a, ns).await
        }
        Some(CreateWhat::Secret(w)) => crate::commands::create::create_secret(client, w, ns).await,
        None => {
            if args.files.is_empty() {
                return Err(other("must specify one of -f and -k"));
            }
            apply_sources(
                client,
                &args.files,
                namespace,
                true,
                &args.dry_run,
                args.record,
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_give_manifest_files_sorted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yaml"), "b").unwrap();
        std::fs::write(dir.path().join("a.yml"), "a").unwrap();
        std::fs::write(dir.path().join("c.json"), "c").unwrap();
        std::fs::write(dir.path().join("README.md"), "no").unwrap();
        let s = read_sources(&[dir.path().display().to_string()]).unwrap();
        assert_eq!(
            s.iter().map(|x| x.text.as_str()).collect::<Vec<_>>(),
            vec!["a", "b", "c"]
        );
        let e = read_sources(&["/no/such/file.yaml".into()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "error: the path \"/no/such/file.yaml\" does not exist"
        );
    }

    #[test]
    fn documents_split_keeping_line_numbers() {
        let text = "a: 1\n---\n# only a comment\n---\nb: 2\nc: |\n  x\n--- # next\nd: 3\n";
        let docs = split_documents(text);
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0], "a: 1\n");
        assert_eq!(docs[1], "\n\n\n\nb: 2\nc: |\n  x\n");
        assert_eq!(docs[2].lines().count(), 9);
        assert_eq!(split_documents("{\"a\": 1}").len(), 1);
        assert_eq!(split_documents("a: 1\n").len(), 1);
    }

    #[test]
    fn result_kinds_resolve() {
        assert_eq!(result_kind("Deployment"), Some(Kind::Deployment));
        assert_eq!(
            result_kind("HorizontalPodAutoscaler"),
            Some(Kind::HorizontalPodAutoscaler)
        );
    }
}
