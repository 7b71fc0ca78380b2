//! kubectl's `create` generators (kubernetes/kubectl pkg/cmd/create): `create deployment`
//! (create_deployment.go), `create configmap` (create_configmap.go) and `create secret generic`
//! (create_secret.go). Each builds the object kubectl builds, then creates it (or, with
//! `--dry-run=client`, only prints it) and prints it as kubectl does: "KIND/NAME created" or
//! `-o yaml|json|name`.
use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use clap::Args;
use coxswain_api::validation::config_key_errors;
use coxswain_api::{Kind, Object};
use serde_json::{json, Map, Value};

use crate::client::{other, CliError, Client, Result};
use crate::output;

#[derive(Debug, Args)]
pub struct DeploymentArgs {
    /// The deployment's name.
    pub name: String,
    /// Image names to run (repeat the flag or separate with commas).
    #[arg(long = "image", value_delimiter = ',')]
    pub images: Vec<String>,
    /// The port that this container exposes.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub port: i32,
    /// Number of replicas to create. Default is 1.
    #[arg(short = 'r', long, default_value_t = 1, allow_negative_numbers = true)]
    pub replicas: i32,
    #[command(flatten)]
    pub common: CommonArgs,
    /// The command of the container (after `--`).
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ConfigMapArgs {
    /// The config map's name.
    pub name: String,
    /// A key and literal value to insert (KEY=VALUE).
    #[arg(long = "from-literal")]
    pub literals: Vec<String>,
    /// A file (key = its basename), KEY=PATH, or a directory (each regular file in it).
    #[arg(long = "from-file", value_delimiter = ',')]
    pub files: Vec<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct SecretGenericArgs {
    /// The secret's name.
    pub name: String,
    /// A key and literal value to insert (KEY=VALUE).
    #[arg(long = "from-literal")]
    pub literals: Vec<String>,
    /// A file (key = its basename), KEY=PATH, or a directory (each regular file in it).
    #[arg(long = "from-file", value_delimiter = ',')]
    pub files: Vec<String>,
    /// The type of secret to create.
    #[arg(long = "type", default_value = "")]
    pub secret_type: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `create secret` generators (only `generic` so far).
#[derive(Debug, clap::Subcommand)]
pub enum SecretWhat {
    /// Create a secret from a local file, directory, or literal value.
    Generic(SecretGenericArgs),
}

/// The printing and dry-run flags every generator takes.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// "none", "client" or "server": only show what would be done.
    #[arg(long, num_args = 0..=1, default_missing_value = "client", default_value = "none")]
    pub dry_run: String,
    /// Output format: yaml, json or name.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

/// The 27 characters of apimachinery's rand.String (no vowels, no confusable digits).
const RAND_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    let mut x = h.finish();
    (0..5)
        .map(|_| {
            let c = RAND_ALPHABET[(x % RAND_ALPHABET.len() as u64) as usize] as char;
            x /= RAND_ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// The container name kubectl derives from an image (buildPodSpec): the last path segment
/// without tag or digest; with '_' or '.' in it, those become '-' and a random 5-character
/// suffix is added (sanitizeAndUniquify).
pub fn container_name(image: &str, suffix: impl FnOnce() -> String) -> String {
    let mut name = image.rsplit('/').next().unwrap_or(image);
    if let Some((n, _)) = name.split_once(':') {
        name = n;
    }
    if let Some((n, _)) = name.split_once('@') {
        name = n;
    }
    if name.contains(['_', '.']) {
        format!("{}-{}", name.replace(['_', '.'], "-"), suffix())
    } else {
        name.to_string()
    }
}

/// The namespace of a `create` generator, and whether `-n` gave it: kubectl writes it into the
/// object only then (`if o.EnforceNamespace`), and creates in it either way.
#[derive(Debug, Clone, Copy)]
pub struct Ns<'a> {
    pub name: &'a str,
    pub explicit: bool,
}

impl Ns<'_> {
    /// `metadata` with the namespace when it is enforced.
    fn meta(&self, mut m: Value) -> Value {
        if self.explicit {
            m["namespace"] = json!(self.name);
        }
        m
    }
}

/// The Deployment `kubectl create deployment` builds (createDeployment), in the JSON shape Go
/// serialises it to: `creationTimestamp: null`, empty `strategy`, `resources` and `status`.
pub fn deployment(a: &DeploymentArgs, ns: Ns) -> Result<Value> {
    if a.images.is_empty() {
        return Err(other("required flag(s) \"image\" not set"));
    }
    if a.images.len() > 1 && !a.command.is_empty() {
        return Err(other("cannot specify multiple --image options and command"));
    }
    let mut containers: Vec<Value> = a
        .images
        .iter()
        .map(|img| {
            let mut c = json!({"image": img, "name": container_name(img, random_suffix),
                "resources": {}});
            if !a.command.is_empty() {
                c["command"] = json!(a.command);
            }
            c
        })
        .collect();
    if a.port >= 0 {
        if let Some(c) = containers.first_mut() {
            c["ports"] = json!([{"containerPort": a.port}]);
        }
    }
    let labels = json!({"app": a.name});
    Ok(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": ns.meta(json!({"creationTimestamp": null, "labels": labels, "name": a.name})),
        "spec": {
            "replicas": a.replicas,
            "selector": {"matchLabels": labels},
            "strategy": {},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": labels},
                "spec": {"containers": containers},
            },
        },
        "status": {},
    }))
}

/// util.ParseLiteralSource: KEY=VALUE, split at the first '='.
fn parse_literal(source: &str) -> Result<(String, String)> {
    match source.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(other(format!(
            "invalid literal source {source}, expected key=value"
        ))),
    }
}

/// util.ParseFileSource: PATH (key = its basename) or KEY=PATH.
fn parse_file_source(source: &str) -> Result<(String, String)> {
    let n = source.matches('=').count();
    if n == 0 {
        let trimmed = source.trim_end_matches('/');
        let base = trimmed.rsplit('/').next().unwrap_or(trimmed);
        return Ok((base.to_string(), source.to_string()));
    }
    if n > 1 {
        return Err(other("key names or file paths cannot contain '='"));
    }
    let (k, p) = source.split_once('=').unwrap_or_default();
    if k.is_empty() {
        return Err(other(format!("key name for file path {p} missing")));
    }
    if p.is_empty() {
        return Err(other(format!("file path for key name {k} missing")));
    }
    Ok((k.to_string(), p.to_string()))
}

/// The (key, bytes) entries of the file sources, in kubectl's order (a directory's regular
/// files sorted by name, as Go's ReadDir returns them).
fn file_entries(sources: &[String]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for src in sources {
        let (key, path) = parse_file_source(src)?;
        let meta = std::fs::metadata(&path).map_err(|e| {
            let msg = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
                _ => e.to_string(),
            };
            other(format!("error reading {path}: {msg}"))
        })?;
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| other(format!("error reading {}: {e}", p.display())))
        };
        if meta.is_dir() {
            if src.contains('=') {
                return Err(other("cannot give a key name for a directory path"));
            }
            let mut items: Vec<_> = std::fs::read_dir(&path)
                .map_err(|e| other(format!("error listing files in {path}: {e}")))?
                .filter_map(|e| e.ok())
                .collect();
            items.sort_by_key(|e| e.file_name());
            for item in items {
                if item.file_type().is_ok_and(|t| t.is_file()) {
                    let name = item.file_name().to_string_lossy().into_owned();
                    out.push((name, read(&item.path())?));
                }
            }
        } else {
            out.push((key, read(Path::new(&path))?));
        }
    }
    Ok(out)
}

/// The ConfigMap `kubectl create configmap` builds: file sources first, then literals; a file
/// that is not UTF-8 goes to binaryData.
pub fn configmap(a: &ConfigMapArgs, ns: Ns) -> Result<Value> {
    let mut data: BTreeMap<String, String> = BTreeMap::new();
    let mut binary: BTreeMap<String, String> = BTreeMap::new();
    let mut add = |k: String, v: Vec<u8>| -> Result<()> {
        let errs = config_key_errors(&k);
        if !errs.is_empty() {
            return Err(other(format!(
                "{k:?} is not a valid key name for a ConfigMap: {}",
                errs.join(",")
            )));
        }
        for (map, which) in [(&data, "Data"), (&binary, "BinaryData")] {
            if map.contains_key(&k) {
                return Err(other(format!(
                    "cannot add key {k:?}, another key by that name already exists in {which} for ConfigMap {:?}",
                    a.name
                )));
            }
        }
        match String::from_utf8(v) {
            Ok(s) => data.insert(k, s),
            Err(e) => binary.insert(
                k,
                base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
            ),
        };
        Ok(())
    };
    for (k, v) in file_entries(&a.files)? {
        add(k, v)?;
    }
    for l in &a.literals {
        let (k, v) = parse_literal(l)?;
        add(k, v.into_bytes())?;
    }
    let mut o = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": ns.meta(json!({"creationTimestamp": null, "name": a.name}))});
    if !data.is_empty() {
        o["data"] = json!(data);
    }
    if !binary.is_empty() {
        o["binaryData"] = json!(binary);
    }
    Ok(o)
}

/// The Secret `kubectl create secret generic` builds: literals first, then file sources.
pub fn secret_generic(a: &SecretGenericArgs, ns: Ns) -> Result<Value> {
    let mut data: Map<String, Value> = Map::new();
    let mut add = |k: String, v: Vec<u8>| -> Result<()> {
        let errs = config_key_errors(&k);
        if !errs.is_empty() {
            return Err(other(format!(
                "{k:?} is not valid key name for a Secret {}",
                errs.join(";")
            )));
        }
        if data.contains_key(&k) {
            return Err(other(format!(
                "cannot add key {k}, another key by that name already exists"
            )));
        }
        data.insert(
            k,
            Value::String(base64::engine::general_purpose::STANDARD.encode(v)),
        );
        Ok(())
    };
    for l in &a.literals {
        let (k, v) = parse_literal(l)?;
        add(k, v.into_bytes())?;
    }
    for (k, v) in file_entries(&a.files)? {
        add(k, v)?;
    }
    let mut o = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": ns.meta(json!({"creationTimestamp": null, "name": a.name}))});
    if !data.is_empty() {
        o["data"] = Value::Object(data);
    }
    if !a.secret_type.is_empty() {
        o["type"] = json!(a.secret_type);
    }
    Ok(o)
}

/// The typed object for `obj`: Go's `creationTimestamp: null` (and any other null) is "unset".
pub fn typed(kind: Kind, obj: &Value) -> Result<Object> {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|_, x| !x.is_null());
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = obj.clone();
    strip(&mut v);
    kind.from_json_value(v)
        .map_err(|e| other(format!("{}: {e}", kind.as_str())))
}

/// Create `obj` (unless a client dry run) and print the result as kubectl's generators do.
/// `what` names the kind in the "failed to create ..." prefix kubectl puts on server errors.
async fn create_and_print(
    client: &mut Client,
    kind: Kind,
    mut obj: Value,
    ns: Ns<'_>,
    common: &CommonArgs,
    failed: &str,
) -> Result<()> {
    let (mode, suffix) = match common.dry_run.as_str() {
        "none" | "false" | "" => (0, ""),
        "client" | "true" => (1, " (dry run)"),
        "server" => (2, " (server dry run)"),
        x => {
            return Err(other(format!(
                "Invalid dry-run value ({x}). Must be \"none\", \"server\", or \"client\"."
            )))
        }
    };
    let format = common.output.as_deref().unwrap_or("");
    if !matches!(format, "" | "yaml" | "json" | "name") {
        return Err(other(format!(
            "unable to match a printer suitable for the output format \"{format}\", allowed formats are: json,name,yaml"
        )));
    }
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if mode != 1 {
        // Created in the namespace whether or not the object names it.
        let mut o = typed(kind, &obj)?;
        o.meta_mut().namespace = ns.name.to_string();
        let created = client
            .create_with(&o, mode == 2)
            .await
            .map_err(|e| match e {
                CliError::Server { message, .. } => other(format!("{failed}{message}")),
                e => e,
            })?;
        obj = created.to_json_value();
    }
    match format {
        "yaml" => print!("{}", output::to_yaml(&obj)),
        "json" => print!("{}", output::to_json(&obj)),
        "name" => println!("{}", output::name_line(kind, &name)),
        _ => println!("{} created{suffix}", output::name_line(kind, &name)),
    }
    Ok(())
}

pub async fn create_deployment(client: &mut Client, a: &DeploymentArgs, ns: Ns<'_>) -> Result<()> {
    let obj = deployment(a, ns)?;
    create_and_print(
        client,
        Kind::Deployment,
        obj,
        ns,
        &a.common,
        "failed to create deployment: ",
    )
    .await
}

pub async fn create_configmap(client: &mut Client, a: &ConfigMapArgs, ns: Ns<'_>) -> Result<()> {
    let obj = configmap(a, ns)?;
    create_and_print(
        client,
        Kind::ConfigMap,
        obj,
        ns,
        &a.common,
        "failed to create configmap: ",
    )
    .await
}

pub async fn create_secret(client: &mut Client, w: &SecretWhat, ns: Ns<'_>) -> Result<()> {
    let SecretWhat::Generic(a) = w;
    let obj = secret_generic(a, ns)?;
    create_and_print(
        client,
        Kind::Secret,
        obj,
        ns,
        &a.common,
        "failed to create secret ",
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(args: &[&str]) -> Result<Value> {
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            a: DeploymentArgs,
        }
        let p =
            <P as clap::Parser>::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
                .map_err(|e| other(e.to_string()))?;
        deployment(&p.a, DEFAULT_NS)
    }

    const DEFAULT_NS: Ns = Ns {
        name: "default",
        explicit: false,
    };
    const NS: Ns = Ns {
        name: "ns",
        explicit: true,
    };

    /// kubectl writes the namespace into a generated object only when `-n` gave it.
    #[test]
    fn the_namespace_is_in_the_object_only_when_given() {
        let d = dep(&["web", "--image=nginx"]).unwrap();
        assert!(d["metadata"].get("namespace").is_none(), "{d}");
        let cm = ConfigMapArgs {
            name: "cfg".into(),
            literals: vec![],
            files: vec![],
            common: CommonArgs {
                dry_run: "client".into(),
                output: None,
            },
        };
        assert!(configmap(&cm, DEFAULT_NS).unwrap()["metadata"]
            .get("namespace")
            .is_none());
        assert_eq!(configmap(&cm, NS).unwrap()["metadata"]["namespace"], "ns");
        let sec = SecretGenericArgs {
            name: "s".into(),
            literals: vec![],
            files: vec![],
            secret_type: String::new(),
            common: cm.common.clone(),
        };
        assert!(secret_generic(&sec, DEFAULT_NS).unwrap()["metadata"]
            .get("namespace")
            .is_none());
        assert_eq!(
            secret_generic(&sec, NS).unwrap()["metadata"]["namespace"],
            "ns"
        );
    }

    #[test]
    fn container_names_follow_kubectl() {
        let fixed = || "abcde".to_string();
        assert_eq!(container_name("nginx", fixed), "nginx");
        assert_eq!(container_name("nginx:1.25", fixed), "nginx");
        assert_eq!(container_name("registry:5000/team/app:v1", fixed), "app");
        assert_eq!(container_name("busybox@sha256:abc", fixed), "busybox");
        assert_eq!(
            container_name("k8s.gcr.io/pause_x.y:3", fixed),
            "pause-x-y-abcde"
        );
        let random = container_name("my.app", random_suffix);
        assert!(random.starts_with("my-app-") && random.len() == "my-app-".len() + 5);
        assert!(random[7..].bytes().all(|c| RAND_ALPHABET.contains(&c)));
    }

    #[test]
    fn deployment_is_built_as_kubectl_builds_it() {
        let d = dep(&["web", "--image=nginx:1.25", "--replicas=3", "--port=80"]).unwrap();
        assert_eq!(d["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(
            d["spec"]["selector"],
            json!({"matchLabels": {"app": "web"}})
        );
        assert_eq!(
            d["spec"]["template"]["metadata"]["labels"],
            json!({"app": "web"})
        );
        assert_eq!(d["spec"]["replicas"], 3);
        let c = &d["spec"]["template"]["spec"]["containers"];
        assert_eq!(
            c,
            &json!([{"image": "nginx:1.25", "name": "nginx", "resources": {},
                "ports": [{"containerPort": 80}]}])
        );
        // Two images, the port on the first only; a command with several images is refused.
        let d = dep(&["web", "--image=nginx,busybox"]).unwrap();
        let c = d["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(c.len(), 2);
        assert!(c[0].get("ports").is_none());
        let e = dep(&["web", "--image=a", "--image=b", "--", "date"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "error: cannot specify multiple --image options and command"
        );
        let d = dep(&["web", "--image=busybox", "--", "sleep", "3600"]).unwrap();
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["command"],
            json!(["sleep", "3600"])
        );
        assert_eq!(
            dep(&["web"]).unwrap_err().to_string(),
            "error: required flag(s) \"image\" not set"
        );
        // Negative replicas are the server's to refuse (kubectl has no client check here).
        assert_eq!(
            dep(&["web", "--image=x", "--replicas", "-1"]).unwrap()["spec"]["replicas"],
            -1
        );
        // The built object is a valid typed Deployment.
        typed(Kind::Deployment, &d).unwrap();
    }

    #[test]
    fn sources_parse_as_kubectl() {
        assert_eq!(
            parse_literal("a=b=c").unwrap(),
            ("a".to_string(), "b=c".to_string())
        );
        assert_eq!(
            parse_literal("=x").unwrap_err().to_string(),
            "error: invalid literal source =x, expected key=value"
        );
        assert!(parse_literal("novalue").is_err());
        assert_eq!(
            parse_file_source("dir/app.conf").unwrap(),
            ("app.conf".to_string(), "dir/app.conf".to_string())
        );
        assert_eq!(
            parse_file_source("k=dir/app.conf").unwrap(),
            ("k".to_string(), "dir/app.conf".to_string())
        );
        assert_eq!(
            parse_file_source("=p").unwrap_err().to_string(),
            "error: key name for file path p missing"
        );
        assert_eq!(
            parse_file_source("k=").unwrap_err().to_string(),
            "error: file path for key name k missing"
        );
        assert!(parse_file_source("a=b=c").is_err());
        assert!(config_key_errors("ok.key_1-x").is_empty());
        assert_eq!(
            config_key_errors(".."),
            vec!["must not be '..'".to_string()]
        );
        assert_eq!(config_key_errors("a b").len(), 1);
    }

    #[test]
    fn configmap_and_secret_from_files_and_literals() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.conf"), "two").unwrap();
        std::fs::write(dir.path().join("a.conf"), "one").unwrap();
        std::fs::write(dir.path().join("bin"), [0xff, 0xfe]).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let d = dir.path().display().to_string();
        let cm = ConfigMapArgs {
            name: "cfg".into(),
            literals: vec!["x=1".into()],
            files: vec![d.clone()],
            common: CommonArgs {
                dry_run: "client".into(),
                output: None,
            },
        };
        let o = configmap(&cm, NS).unwrap();
        assert_eq!(
            o["data"],
            json!({"a.conf": "one", "b.conf": "two", "x": "1"})
        );
        assert_eq!(o["binaryData"], json!({"bin": "//4="}));
        typed(Kind::ConfigMap, &o).unwrap();
        let dup = ConfigMapArgs {
            literals: vec!["a.conf=again".into()],
            ..cm
        };
        assert_eq!(
            configmap(&dup, NS).unwrap_err().to_string(),
            "error: cannot add key \"a.conf\", another key by that name already exists in Data for ConfigMap \"cfg\""
        );
        let sec = SecretGenericArgs {
            name: "s".into(),
            literals: vec!["user=admin".into()],
            files: vec![format!("pw={d}/a.conf")],
            secret_type: String::new(),
            common: CommonArgs {
                dry_run: "client".into(),
                output: None,
            },
        };
        let o = secret_generic(&sec, NS).unwrap();
        assert_eq!(o["data"], json!({"pw": "b25l", "user": "YWRtaW4="}));
        typed(Kind::Secret, &o).unwrap();
        let bad = SecretGenericArgs {
            literals: vec!["a b=1".into()],
            ..sec
        };
        assert!(secret_generic(&bad, NS)
            .unwrap_err()
            .to_string()
            .starts_with("error: \"a b\" is not valid key name for a Secret a valid config key"));
        let missing = ConfigMapArgs {
            name: "m".into(),
            literals: vec![],
            files: vec![format!("{d}/nope")],
            common: CommonArgs {
                dry_run: "none".into(),
                output: None,
            },
        };
        assert_eq!(
            configmap(&missing, NS).unwrap_err().to_string(),
            format!("error: error reading {d}/nope: no such file or directory")
        );
    }
}
