//! `coxctl explain TYPE[.FIELD...] [--recursive]`: the schema of a kind or field, in kubectl's
//! layout (its OpenAPI v3 plaintext template): GROUP/KIND/VERSION, FIELD with its type,
//! DESCRIPTION wrapped at 80 columns, and FIELDS sorted by name with `<type>`, `-required-` and
//! each description (names and types only with `--recursive`).
//!
//! Field names and types come from the schema itself (the proto descriptor set the API crate
//! embeds, by proto3 JSON names); descriptions and required markers are upstream's OpenAPI
//! documentation for the same types (`explain_docs.json`, made by `coxctl/explain/gen_docs.py`).
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use coxswain_api::Kind;
use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorSet};
use serde::Deserialize;

use crate::client::{other, Result};

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// TYPE or TYPE.FIELD.FIELD (pods, ds.spec, deployment.spec.template.spec.containers).
    pub path: String,
    /// Print the names and types of all fields recursively, without descriptions.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    pub recursive: bool,
    /// Accepted for compatibility: the only version of each kind is explained.
    #[arg(long)]
    pub api_version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct TypeDoc {
    doc: String,
    fields: BTreeMap<String, FieldDoc>,
}

#[derive(Debug, Default, Deserialize)]
struct FieldDoc {
    doc: String,
    required: bool,
}

/// The schema: messages by name, and upstream's docs by message name.
struct Schema {
    messages: HashMap<String, DescriptorProto>,
    docs: HashMap<String, TypeDoc>,
}

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let set = FileDescriptorSet::decode(coxswain_api::FILE_DESCRIPTOR_SET).unwrap_or_default();
        let mut messages = HashMap::new();
        for f in set.file {
            if f.package() != "coxswain.v1" {
                continue;
            }
            for m in f.message_type {
                collect(&mut messages, m);
            }
        }
        let docs = serde_json::from_str(include_str!("../explain_docs.json")).unwrap_or_default();
        Schema { messages, docs }
    })
}

fn collect(out: &mut HashMap<String, DescriptorProto>, m: DescriptorProto) {
    for n in &m.nested_type {
        if !n.options.as_ref().is_some_and(|o| o.map_entry()) {
            collect(out, n.clone());
        }
    }
    out.insert(m.name().to_string(), m);
}

/// The short name of a message type (".coxswain.v1.PodSpec" → "PodSpec").
fn short(type_name: &str) -> &str {
    type_name.rsplit('.').next().unwrap_or(type_name)
}

/// A field's value type: a message name for messages, else None.
fn message_of(f: &FieldDescriptorProto) -> Option<&str> {
    (f.r#type() == Type::Message).then(|| short(f.type_name()))
}

/// The map entry message of a map field, if it is one.
fn map_entry<'a>(
    s: &'a Schema,
    owner: &'a DescriptorProto,
    f: &FieldDescriptorProto,
) -> Option<&'a DescriptorProto> {
    if f.label() != Label::Repeated || f.r#type() != Type::Message {
        return None;
    }
    let name = short(f.type_name());
    owner
        .nested_type
        .iter()
        .chain(s.messages.get(name))
        .find(|n| n.name() == name && n.options.as_ref().is_some_and(|o| o.map_entry()))
}

fn scalar(t: Type) -> &'static str {
    match t {
        Type::Bool => "boolean",
        Type::Double | Type::Float => "number",
        Type::String | Type::Bytes | Type::Enum => "string",
        Type::Message | Type::Group => "Object",
        _ => "integer",
    }
}

/// kubectl's typeGuess: `string`, `integer`, `PodSpec`, `[]Container`, `map[string]string`.
fn type_of(s: &Schema, owner: &DescriptorProto, f: &FieldDescriptorProto) -> String {
    if let Some(entry) = map_entry(s, owner, f) {
        let v = entry.field.iter().find(|x| x.number() == 2);
        let inner = v.map_or("string".to_string(), one);
        return format!("map[string]{inner}");
    }
    let t = one(f);
    if f.label() == Label::Repeated {
        format!("[]{t}")
    } else {
        t
    }
}

fn one(f: &FieldDescriptorProto) -> String {
    match message_of(f) {
        Some(m) => m.to_string(),
        None => scalar(f.r#type()).to_string(),
    }
}

fn fields(m: &DescriptorProto) -> Vec<&FieldDescriptorProto> {
    let mut v: Vec<&FieldDescriptorProto> = m.field.iter().collect();
    v.sort_by(|a, b| a.json_name().cmp(b.json_name()));
    v
}

/// The message a field leads into (through lists and map values), if any.
fn next_message<'a>(
    s: &'a Schema,
    owner: &DescriptorProto,
    f: &FieldDescriptorProto,
) -> Option<&'a DescriptorProto> {
    let name = match map_entry(s, owner, f) {
        Some(entry) => entry
            .field
            .iter()
            .find(|x| x.number() == 2)
            .and_then(message_of)?,
        None => message_of(f)?,
    };
    s.messages.get(name)
}

fn field_doc<'a>(s: &'a Schema, owner: &str, field: &str) -> Option<&'a FieldDoc> {
    s.docs.get(owner).and_then(|t| t.fields.get(field))
}

/// go-wordwrap's WrapString: break at whitespace so lines fit in `lim` columns, keep existing
/// line breaks, never split a word (a longer word gets a line of its own).
pub fn wrap(s: &str, lim: usize) -> String {
    let mut buf = String::with_capacity(s.len());
    let (mut current, mut word, mut space) = (0usize, String::new(), String::new());
    let (mut word_len, mut space_len) = (0usize, 0usize);
    for c in s.chars() {
        if c == '\n' {
            buf.push_str(&space);
            buf.push_str(&word);
            buf.push('\n');
            (space, word) = (String::new(), String::new());
            (space_len, word_len, current) = (0, 0, 0);
        } else if c.is_whitespace() && c != '\u{a0}' {
            if space.is_empty() || !word.is_empty() {
                current += space_len + word_len;
                buf.push_str(&space);
                buf.push_str(&word);
                (space, word) = (String::new(), String::new());
                (space_len, word_len) = (0, 0);
            }
            space.push(c);
            space_len += 1;
        } else {
            word.push(c);
            word_len += 1;
            if current + space_len + word_len > lim && word_len < lim {
                buf.push('\n');
                current = 0;
                space.clear();
                space_len = 0;
            }
        }
    }
    if word.is_empty() {
        if current + space_len <= lim {
            buf.push_str(&space);
        }
    } else {
        buf.push_str(&space);
        buf.push_str(&word);
    }
    buf
}

/// The template's `indent`: `n` spaces before the text and after every line break.
fn indent(s: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    format!("{pad}{}", s.replace('\n', &format!("\n{pad}")))
}

/// One entry of FIELDS: `name\t<type>[ -required-]`, then (unless short) its description.
fn field_detail(
    out: &mut String,
    s: &Schema,
    m: &DescriptorProto,
    f: &FieldDescriptorProto,
    level: usize,
    short: bool,
) {
    let ind = level * 2;
    let doc = field_doc(s, m.name(), f.json_name());
    out.push_str(&indent(f.json_name(), ind));
    out.push_str(&format!("\t<{}>", type_of(s, m, f)));
    if doc.is_some_and(|d| d.required) {
        out.push_str(" -required-");
    }
    out.push('\n');
    if !short {
        let text = doc.map(|d| d.doc.as_str()).filter(|d| !d.is_empty());
        out.push_str(&indent(
            &wrap(text.unwrap_or("<no description>"), 78 - ind),
            ind + 2,
        ));
        out.push_str("\n\n");
    }
}

fn field_list(
    out: &mut String,
    s: &Schema,
    m: &DescriptorProto,
    level: usize,
    recursive: bool,
    seen: &mut HashSet<String>,
) {
    if !seen.insert(m.name().to_string()) {
        return;
    }
    for f in fields(m) {
        field_detail(out, s, m, f, level, recursive);
        if recursive {
            if let Some(next) = next_message(s, m, f) {
                field_list(out, s, next, level + 1, recursive, seen);
            }
        }
    }
    seen.remove(m.name());
}

/// The explanation of `path` ("ds.spec"), as kubectl prints it.
pub fn explain(path: &str, recursive: bool) -> Result<String> {
    let mut parts = path.split('.');
    let resource = parts.next().unwrap_or_default();
    let kind = Kind::parse(resource).ok_or_else(|| {
        other(format!(
            "the server doesn't have a resource type \"{resource}\""
        ))
    })?;
    let s = schema();
    let mut msg = s
        .messages
        .get(kind.as_str())
        .ok_or_else(|| other(format!("GVK {} not found in the schema", kind.as_str())))?;
    let (group, version) = match kind.api_version().split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", kind.api_version()),
    };
    let mut out = String::new();
    if !group.is_empty() {
        out.push_str(&format!("GROUP:      {group}\n"));
    }
    out.push_str(&format!(
        "KIND:       {}\nVERSION:    {version}\n\n",
        kind.as_str()
    ));
    // DESCRIPTION: the field's own doc, then its type's.
    let mut description = String::new();
    let field_path: Vec<&str> = parts.collect();
    for (i, name) in field_path.iter().enumerate() {
        let f = msg
            .field
            .iter()
            .find(|f| f.json_name() == *name)
            .ok_or_else(|| other(format!("field \"{name}\" does not exist")))?;
        let last = i + 1 == field_path.len();
        if last {
            out.push_str(&format!("FIELD: {name} <{}>\n\n\n", type_of(s, msg, f)));
            if let Some(d) = field_doc(s, msg.name(), name).filter(|d| !d.doc.is_empty()) {
                description.push_str(&d.doc);
                description.push('\n');
            }
        }
        match next_message(s, msg, f) {
            Some(next) => msg = next,
            None if last => {
                out.push_str("DESCRIPTION:\n");
                out.push_str(&indent(&wrap(description.trim_end_matches('\n'), 76), 4));
                out.push_str("\n    \n");
                return Ok(out);
            }
            None => {
                return Err(other(format!(
                    "field \"{}\" does not exist",
                    field_path[i + 1]
                )))
            }
        }
    }
    if let Some(t) = s.docs.get(msg.name()).filter(|t| !t.doc.is_empty()) {
        description.push_str(&t.doc);
        description.push('\n');
    }
    out.push_str("DESCRIPTION:\n");
    let text = if description.is_empty() {
        "<empty>\n".to_string()
    } else {
        description
    };
    out.push_str(&indent(&wrap(&text, 76), 4));
    out.push('\n');
    let mut list = String::new();
    field_list(&mut list, s, msg, 1, recursive, &mut HashSet::new());
    if !list.is_empty() {
        out.push_str("FIELDS:\n");
        out.push_str(&list);
    }
    Ok(out)
}

pub fn run(a: &ExplainArgs) -> Result<()> {
    print!("{}", explain(&a.path, a.recursive)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_like_go_wordwrap() {
        assert_eq!(wrap("aaa bbb ccc", 7), "aaa bbb\nccc");
        assert_eq!(wrap("a verylongword b", 5), "a\nverylongword\nb");
        assert_eq!(wrap("one\ntwo three", 8), "one\ntwo\nthree");
    }

    #[test]
    fn explains_a_kind_and_a_field() {
        let out = explain("ds.spec", false).expect("ds.spec");
        let want_head = "GROUP:      apps\nKIND:       DaemonSet\nVERSION:    v1\n\n\
                         FIELD: spec <DaemonSetSpec>\n\n\nDESCRIPTION:\n";
        assert!(out.starts_with(want_head), "{out}");
        assert!(
            out.contains(
                "\nFIELDS:\n  minReadySeconds\t<integer>\n    The minimum number of seconds"
            ),
            "{out}"
        );
        assert!(
            out.contains("\n  selector\t<LabelSelector> -required-\n"),
            "{out}"
        );
        assert!(
            out.contains("\n  template\t<PodTemplateSpec> -required-\n"),
            "{out}"
        );
        assert!(
            out.contains("    DaemonSetSpec is the specification of a daemon set.\n    \nFIELDS:"),
            "{out}"
        );
        let pod = explain("pods", false).expect("pods");
        assert!(
            pod.starts_with(
                "KIND:       Pod\nVERSION:    v1\n\nDESCRIPTION:\n    Pod is a collection"
            ),
            "{pod}"
        );
        assert!(pod.contains("\n  spec\t<PodSpec>\n"), "{pod}");
        let c = explain("po.spec.containers", false).expect("containers");
        assert!(c.contains("FIELD: containers <[]Container>\n"), "{c}");
        assert!(c.contains("\n  image\t<string>\n"), "{c}");
        assert!(c.contains("\n  name\t<string> -required-\n"), "{c}");
        let l = explain("pod.metadata.labels", false).expect("labels");
        assert!(l.contains("FIELD: labels <map[string]string>\n"), "{l}");
        let r = explain("deploy.spec", true).expect("recursive");
        assert!(
            r.contains("\n  template\t<PodTemplateSpec> -required-\n    metadata\t<ObjectMeta>\n"),
            "{r}"
        );
        assert!(
            r.contains("\n      containers\t<[]Container> -required-\n        args\t<[]string>\n"),
            "{r}"
        );
        assert_eq!(
            explain("pod.spec.nope", false)
                .expect_err("nope")
                .to_string(),
            "error: field \"nope\" does not exist"
        );
        assert!(explain("widgets", false).is_err());
    }
}
