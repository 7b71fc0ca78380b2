//! YAML read and written as Kubernetes does (sigs.k8s.io/yaml over go-yaml v2): YAML becomes
//! JSON first, by YAML 1.1's scalar rules (`0644` is octal 420, `yes`/`no`/`on`/`off` are
//! booleans — so a string field given `yes` is rejected, as the API server rejects it), and
//! the JSON is then decoded strictly. Duplicate keys are an error naming the key's path and
//! both lines; anchors, aliases and merge keys (`<<`) work, with go-yaml's limit on excessive
//! aliasing; nesting is bounded.
//!
//! The event parser is saphyr-parser (pure Rust, no unsafe dependencies); everything after the
//! events — resolution, the JSON value, the checks — is here. [`to_string`] writes YAML as
//! `kubectl -o yaml` does.
mod emit;
pub mod resolve;

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::{Map, Number, Value as Json};

pub use emit::to_string;
use resolve::{resolve_plain, Resolved, Scalar};

/// The deepest nesting of collections a document may have.
pub const MAX_DEPTH: usize = crate::manifest::MAX_NESTING_DEPTH;

/// Alias expansion may copy at most this many bytes per stream (go-yaml shares the copies; we
/// make them, so bound them too).
const MAX_ALIAS_BYTES: u64 = 64 << 20;

/// Why a YAML stream could not become JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum YamlError {
    /// Not YAML: the parser's message at a line and column (1-based).
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// A key set twice in one mapping. `path` is the key's full field path.
    DuplicateKey {
        path: String,
        key: String,
        line: usize,
        first_line: usize,
    },
    /// YAML that has no JSON form (a null or collection key, NaN, `!!binary`, an unknown
    /// alias, excessive aliasing, too deep).
    Invalid { line: usize, message: String },
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            YamlError::Syntax {
                line,
                column,
                message,
            } => write!(f, "yaml: line {line} column {column}: {message}"),
            YamlError::DuplicateKey {
                path,
                key,
                line,
                first_line,
            } => write!(
                f,
                "yaml: line {line}: key {key:?} already set in map (first at line {first_line}){}",
                if path.is_empty() || path == key {
                    String::new()
                } else {
                    format!(" at {path}")
                }
            ),
            YamlError::Invalid { line, message } => write!(f, "yaml: line {line}: {message}"),
        }
    }
}

impl std::error::Error for YamlError {}

/// A failure in one document of a stream (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocError {
    pub document: usize,
    pub error: YamlError,
}

/// Every document of a YAML stream (or a JSON text) as JSON, in order; an empty document is
/// `null`. Collections nested deeper than `max_depth` are an error.
pub fn documents(text: &str, max_depth: usize) -> Result<Vec<Json>, DocError> {
    let mut docs = Vec::new();
    let mut builder: Option<Builder> = None;
    let mut document = 0;
    let mut aliasing = Aliasing::default();
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| DocError {
            document: document.max(1),
            error: YamlError::Syntax {
                line: e.marker().line(),
                column: e.marker().col() + 1,
                message: match e.info() {
                    // libyaml's (and so Kubernetes') wording.
                    "simple key expect ':'" => "could not find expected ':'".to_string(),
                    other => other.to_string(),
                },
            },
        })?;
        match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
            Event::DocumentStart(_) => {
                document += 1;
                builder = Some(Builder::new(max_depth));
            }
            Event::DocumentEnd => {
                if let Some(b) = builder.take() {
                    docs.push(b.root.unwrap_or(Json::Null));
                }
            }
            event => {
                let b = builder.get_or_insert_with(|| Builder::new(max_depth));
                b.event(event, span, &mut aliasing)
                    .map_err(|error| DocError { document, error })?;
            }
        }
    }
    Ok(docs)
}

/// One YAML (or JSON) document as JSON: `null` for an empty text, an error for several.
pub fn to_json(text: &str) -> Result<Json, YamlError> {
    let mut docs = documents(text, MAX_DEPTH).map_err(|e| e.error)?;
    match docs.len() {
        0 => Ok(Json::Null),
        1 => Ok(docs.remove(0)),
        n => Err(YamlError::Invalid {
            line: 1,
            message: format!("expected one document, found {n}"),
        }),
    }
}

/// One YAML document decoded into `T` through JSON, as sigs.k8s.io/yaml's Unmarshal; a decoding
/// error names the field path (`profiles[0].plugins: unknown field ...`).
pub fn from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let json = to_json(text).map_err(|e| e.to_string())?;
    serde_path_to_error::deserialize(json).map_err(|e| {
        let path = e.path().to_string();
        if path == "." || path.is_empty() {
            e.into_inner().to_string()
        } else {
            format!("{path}: {}", e.into_inner())
        }
    })
}

/// go-yaml's counters against alias bombs, over the whole stream.
#[derive(Default)]
struct Aliasing {
    decoded: u64,
    aliased: u64,
    bytes: u64,
}

impl Aliasing {
    /// go-yaml v2's allowedAliasRatio.
    fn allowed_ratio(decoded: u64) -> f64 {
        const LOW: u64 = 400_000;
        const HIGH: u64 = 4_000_000;
        if decoded <= LOW {
            0.99
        } else if decoded >= HIGH {
            0.10
        } else {
            0.99 - 0.89 * ((decoded - LOW) as f64 / (HIGH - LOW) as f64)
        }
    }

    fn check(&self) -> bool {
        let too_many = self.aliased > 100
            && self.decoded > 1000
            && self.aliased as f64 / self.decoded as f64 > Self::allowed_ratio(self.decoded);
        !too_many && self.bytes <= MAX_ALIAS_BYTES
    }
}

/// A value anchored with `&name`, with its size for the aliasing counters.
struct Anchored {
    value: Json,
    nodes: u64,
    bytes: u64,
}

enum Frame {
    Seq {
        items: Vec<Json>,
        anchor: usize,
    },
    Map {
        map: Map<String, Json>,
        /// Values from `<<` keys; explicit keys win over them.
        merged: Map<String, Json>,
        /// Each explicit key's line, for duplicates.
        seen: HashMap<String, usize>,
        key: Option<PendingKey>,
        anchor: usize,
    },
}

enum PendingKey {
    Name(String),
    Merge,
}

/// Builds one document's JSON from parser events with an explicit stack.
struct Builder {
    stack: Vec<Frame>,
    root: Option<Json>,
    anchors: HashMap<usize, Anchored>,
    max_depth: usize,
}

/// A finished node on its way into its parent.
struct Node {
    value: Json,
    /// The scalar as resolved (keys need its type: `1.5` and `true` keys are converted as
    /// go-yaml converts them).
    scalar: Option<Scalar>,
    merge: bool,
    line: usize,
}

impl Builder {
    fn new(max_depth: usize) -> Builder {
        Builder {
            stack: Vec::new(),
            root: None,
            anchors: HashMap::new(),
            max_depth,
        }
    }

    fn event(&mut self, event: Event, span: Span, al: &mut Aliasing) -> Result<(), YamlError> {
        let line = span.start.line();
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                al.decoded += 1;
                let (scalar, merge) = scalar(&text, style, tag.as_deref(), line)?;
                let value = scalar_json(&scalar, line)?;
                if anchor > 0 {
                    self.anchor(anchor, &value);
                }
                self.push(Node {
                    value,
                    scalar: Some(scalar),
                    merge,
                    line,
                })
            }
            Event::Alias(id) => {
                let Some(a) = self.anchors.get(&id) else {
                    return Err(YamlError::Invalid {
                        line,
                        message: "unknown anchor referenced (or an alias inside its own anchor)"
                            .into(),
                    });
                };
                al.decoded += a.nodes;
                al.aliased += a.nodes;
                al.bytes += a.bytes;
                if !al.check() {
                    return Err(YamlError::Invalid {
                        line,
                        message: "document contains excessive aliasing".into(),
                    });
                }
                let value = a.value.clone();
                let scalar = json_scalar(&value);
                self.push(Node {
                    value,
                    scalar,
                    merge: false,
                    line,
                })
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                al.decoded += 1;
                if self.stack.len() >= self.max_depth {
                    return Err(YamlError::Invalid {
                        line,
                        message: format!(
                            "the document nests deeper than {} levels",
                            self.max_depth
                        ),
                    });
                }
                self.key_is_not_a_collection(line)?;
                self.stack
                    .push(if matches!(event, Event::SequenceStart(..)) {
                        Frame::Seq {
                            items: Vec::new(),
                            anchor,
                        }
                    } else {
                        Frame::Map {
                            map: Map::new(),
                            merged: Map::new(),
                            seen: HashMap::new(),
                            key: None,
                            anchor,
                        }
                    });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { items, anchor }) => (Json::Array(items), anchor),
                    Some(Frame::Map {
                        mut map,
                        merged,
                        anchor,
                        ..
                    }) => {
                        for (k, v) in merged {
                            map.entry(k).or_insert(v);
                        }
                        (Json::Object(map), anchor)
                    }
                    None => return Ok(()),
                };
                if anchor > 0 {
                    self.anchor(anchor, &value);
                }
                self.push(Node {
                    value,
                    scalar: None,
                    merge: false,
                    line,
                })
            }
            _ => Ok(()),
        }
    }

    fn anchor(&mut self, id: usize, value: &Json) {
        let (nodes, bytes) = size(value);
        self.anchors.insert(
            id,
            Anchored {
                value: value.clone(),
                nodes,
                bytes,
            },
        );
    }

    /// A collection where a mapping expects a key: go-yaml cannot hash it.
    fn key_is_not_a_collection(&self, line: usize) -> Result<(), YamlError> {
        if let Some(Frame::Map { key: None, .. }) = self.stack.last() {
            return Err(YamlError::Invalid {
                line,
                message: "invalid map key: a mapping or sequence cannot be a key".into(),
            });
        }
        Ok(())
    }

    fn push(&mut self, node: Node) -> Result<(), YamlError> {
        let path = || self.path();
        let Some(top) = self.stack.last() else {
            self.root = Some(node.value);
            return Ok(());
        };
        let _ = top;
        let depth_path = match self.stack.last() {
            Some(Frame::Map { key: None, .. }) => Some(path()),
            _ => None,
        };
        match self.stack.last_mut() {
            Some(Frame::Seq { items, .. }) => items.push(node.value),
            Some(Frame::Map {
                map,
                merged,
                seen,
                key,
                ..
            }) => match key.take() {
                None if node.merge => *key = Some(PendingKey::Merge),
                None => {
                    let name = key_string(&node)?;
                    if let Some(&first_line) = seen.get(&name) {
                        let parent = depth_path.unwrap_or_default();
                        return Err(YamlError::DuplicateKey {
                            path: join(&parent, &name),
                            key: name,
                            line: node.line,
                            first_line,
                        });
                    }
                    seen.insert(name.clone(), node.line);
                    *key = Some(PendingKey::Name(name));
                }
                Some(PendingKey::Name(name)) => {
                    map.insert(name, node.value);
                }
                Some(PendingKey::Merge) => merge_into(merged, node.value, node.line)?,
            },
            None => {}
        }
        Ok(())
    }

    /// The field path of the innermost open collection (`spec.containers[0]`).
    fn path(&self) -> String {
        let mut out = String::new();
        let n = self.stack.len();
        for (i, frame) in self.stack.iter().enumerate() {
            if i + 1 == n {
                break;
            }
            match frame {
                Frame::Seq { items, .. } => out.push_str(&format!("[{}]", items.len())),
                Frame::Map { key, .. } => {
                    let name = match key {
                        Some(PendingKey::Name(k)) => k.as_str(),
                        Some(PendingKey::Merge) => "<<",
                        None => "",
                    };
                    out = join(&out, name);
                }
            }
        }
        out
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// `<<: *a` or `<<: [*a, *b]`: the mappings' keys, earlier ones first.
fn merge_into(merged: &mut Map<String, Json>, value: Json, line: usize) -> Result<(), YamlError> {
    let bad = || YamlError::Invalid {
        line,
        message: "map merge requires map or sequence of maps as the value".into(),
    };
    let maps = match value {
        Json::Object(m) => vec![m],
        Json::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Json::Object(m) => Ok(m),
                _ => Err(bad()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(bad()),
    };
    for m in maps {
        for (k, v) in m {
            merged.entry(k).or_insert(v);
        }
    }
    Ok(())
}

/// A key as sigs.k8s.io/yaml turns it into a JSON key.
fn key_string(node: &Node) -> Result<String, YamlError> {
    let unsupported = |what: &str| YamlError::Invalid {
        line: node.line,
        message: format!("unsupported map key of type {what}"),
    };
    match &node.scalar {
        Some(Scalar::Str(s)) => Ok(s.clone()),
        Some(Scalar::Int(i)) => Ok(i.to_string()),
        Some(Scalar::Bool(b)) => Ok(b.to_string()),
        Some(Scalar::Float(f)) => Ok(resolve::format_float_g(*f, true)),
        Some(Scalar::Uint(_)) => Err(unsupported("uint64")),
        Some(Scalar::Null) => Err(unsupported("null")),
        None => Err(unsupported("mapping or sequence")),
    }
}

/// A scalar event's value: quoted and block scalars are strings; plain ones resolve by YAML
/// 1.1's rules; `!!str`/`!!int`/... tags force or check the type. Also whether it is `<<`.
fn scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    line: usize,
) -> Result<(Scalar, bool), YamlError> {
    let core = tag.and_then(|t| {
        (t.handle == "tag:yaml.org,2002:" || t.handle == "!!").then_some(t.suffix.as_str())
    });
    match (tag, core) {
        (None, _) if style == ScalarStyle::Plain => {
            let (kind, value) = resolve_plain(text);
            Ok((value, kind == Resolved::Merge))
        }
        (None, _) => Ok((Scalar::Str(text.to_string()), false)),
        (Some(_), Some("str")) => Ok((Scalar::Str(text.to_string()), false)),
        (Some(_), Some("merge")) if text == "<<" => Ok((Scalar::Str(text.to_string()), true)),
        (Some(_), Some("binary")) => Err(YamlError::Invalid {
            line,
            message: "!!binary is not supported: write the base64 text without the tag".into(),
        }),
        (Some(_), Some(want @ ("int" | "float" | "bool" | "null" | "timestamp"))) => {
            let (kind, value) = resolve_plain(text);
            let ok = matches!(
                (want, kind),
                ("int", Resolved::Int)
                    | ("bool", Resolved::Bool)
                    | ("null", Resolved::Null)
                    | ("timestamp", Resolved::Timestamp)
                    | ("float", Resolved::Float | Resolved::Int)
            );
            if !ok {
                return Err(YamlError::Invalid {
                    line,
                    message: format!("cannot decode {text:?} as a !!{want}"),
                });
            }
            let value = match (want, value) {
                ("float", Scalar::Int(i)) => Scalar::Float(i as f64),
                ("float", Scalar::Uint(u)) => Scalar::Float(u as f64),
                (_, v) => v,
            };
            Ok((value, false))
        }
        // Any other tag (`!foo`, `!!map` on a scalar): go-yaml keeps the text.
        (Some(_), _) => Ok((Scalar::Str(text.to_string()), false)),
    }
}

/// A resolved scalar as encoding/json writes it (and Kubernetes then reads it): integral floats
/// are integers, NaN and infinities have no JSON form.
fn scalar_json(s: &Scalar, line: usize) -> Result<Json, YamlError> {
    Ok(match s {
        Scalar::Null => Json::Null,
        Scalar::Bool(b) => Json::Bool(*b),
        Scalar::Int(i) => Json::from(*i),
        Scalar::Uint(u) => Json::from(*u),
        Scalar::Str(s) => Json::String(s.clone()),
        Scalar::Float(f) => {
            if !f.is_finite() {
                return Err(YamlError::Invalid {
                    line,
                    message: format!(
                        "json: unsupported value: {}",
                        resolve::format_float_g(*f, false)
                    ),
                });
            }
            if f.fract() == 0.0 && f.abs() < 1e21 {
                if *f >= i64::MIN as f64 && *f < i64::MAX as f64 {
                    return Ok(Json::from(*f as i64));
                }
                if *f >= 0.0 && *f < u64::MAX as f64 {
                    return Ok(Json::from(*f as u64));
                }
            }
            Number::from_f64(*f).map_or(Json::Null, Json::Number)
        }
    })
}

/// The scalar behind an aliased JSON value, for its use as a key.
fn json_scalar(v: &Json) -> Option<Scalar> {
    Some(match v {
        Json::Null => Scalar::Null,
        Json::Bool(b) => Scalar::Bool(*b),
        Json::String(s) => Scalar::Str(s.clone()),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Scalar::Int(i),
            (_, Some(u), _) => Scalar::Uint(u),
            (_, _, Some(f)) => Scalar::Float(f),
            _ => return None,
        },
        _ => return None,
    })
}

/// Nodes and approximate bytes of a value, without recursion.
fn size(v: &Json) -> (u64, u64) {
    let (mut nodes, mut bytes) = (0u64, 0u64);
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        nodes += 1;
        bytes += 16;
        match v {
            Json::String(s) => bytes += s.len() as u64,
            Json::Array(a) => stack.extend(a.iter()),
            Json::Object(m) => {
                for (k, v) in m {
                    bytes += k.len() as u64;
                    stack.push(v);
                }
            }
            _ => {}
        }
    }
    (nodes, bytes)
}

#[cfg(test)]
mod tests;
