//! One object as the watch cache holds it ([`Stored`]): its encoded bytes plus the few fields
//! selectors and the garbage collector need, and the keys objects are stored under.
use std::sync::Arc;

use bytes::Bytes;
use coxswain_api::selector::{supported_fields, FieldSelector, LabelSelector};
use coxswain_api::v1::ObjectMeta;
use coxswain_api::{Kind, Object};
use prost::Message;

/// The backend key of an object: "/registry/pods/default/web-1", "/registry/nodes/node1".
pub fn backend_key(kind: Kind, namespace: &str, name: &str) -> String {
    format!(
        "/registry/{}/{}",
        kind.plural(),
        map_key(kind, namespace, name)
    )
}

/// The key of an object within its kind: "namespace/name", or "name" when cluster-scoped.
pub fn map_key(kind: Kind, namespace: &str, name: &str) -> String {
    if kind.namespaced() {
        format!("{namespace}/{name}")
    } else {
        name.to_string()
    }
}

pub(super) fn parse_backend_key(key: &str) -> Option<(Kind, &str)> {
    let rest = key.strip_prefix("/registry/")?;
    let (plural, mkey) = rest.split_once('/')?;
    let kind = Kind::ALL.iter().copied().find(|k| k.plural() == plural)?;
    Some((kind, mkey))
}

/// Protobuf bytes that, appended to an encoded object, set its metadata.resourceVersion: a
/// message field that occurs twice is merged, and a scalar's last occurrence wins. Every kind
/// message has metadata at field 3.
fn resource_version_suffix(revision: i64) -> Vec<u8> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct MetaOnly {
        #[prost(message, optional, tag = "3")]
        metadata: Option<ObjectMeta>,
    }
    MetaOnly {
        metadata: Some(ObjectMeta {
            resource_version: revision.to_string(),
            ..Default::default()
        }),
    }
    .encode_to_vec()
}

/// Append the resourceVersion to encoded object bytes.
pub fn with_resource_version(raw: &[u8], revision: i64) -> Bytes {
    let suffix = resource_version_suffix(revision);
    let mut v = Vec::with_capacity(raw.len() + suffix.len());
    v.extend_from_slice(raw);
    v.extend_from_slice(&suffix);
    Bytes::from(v)
}

/// Strings packed into one allocation, separated by NUL, which no label, name, uid or field
/// value contains. Keeps the per-object overhead of the cache to a few allocations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packed(Box<str>);

impl Packed {
    pub(super) fn new<'a>(parts: impl IntoIterator<Item = &'a str>) -> Packed {
        let mut s = String::new();
        for (i, p) in parts.into_iter().enumerate() {
            if i > 0 {
                s.push('\0');
            }
            s.push_str(p);
        }
        Packed(s.into_boxed_str())
    }

    /// The parts; none for an empty pack (so packs must not hold a single empty part).
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let empty = self.0.is_empty();
        self.0.split('\0').filter(move |_| !empty)
    }

    pub(super) fn get(&self, i: usize) -> Option<&str> {
        self.0.split('\0').nth(i)
    }
}

/// One object as the cache holds it.
#[derive(Debug)]
pub struct Stored {
    pub kind: Kind,
    /// The key within its kind, "namespace/name" or "name" (see [`map_key`]).
    pub(super) key: Box<str>,
    /// The revision of the object's last write (its resourceVersion).
    pub revision: i64,
    /// The full protobuf encoding, resourceVersion included.
    pub bytes: Bytes,
    /// Labels as key, value, key, value, …
    pub(super) labels: Packed,
    /// Values of the kind's selectable fields beyond metadata.*, in `supported_fields` order.
    pub(super) fields: Packed,
    pub uid: Box<str>,
    /// uids of the owners in metadata.ownerReferences.
    pub(super) owners: Packed,
    /// metadata.deletionTimestamp is set.
    pub deleting: bool,
    /// The x-request-id of the write that made this revision, if it carried one.
    pub request_id: Option<Arc<str>>,
}

impl Stored {
    pub(super) fn build(
        kind: Kind,
        revision: i64,
        raw: &[u8],
    ) -> Result<Stored, prost::DecodeError> {
        let obj = kind.decode(raw)?;
        Ok(Stored::from_object(
            &obj,
            revision,
            with_resource_version(raw, revision),
        ))
    }

    /// The entry for `obj`, whose encoding `raw` is about to be written, built by the writer
    /// from the object it already has: the cache then need not decode what was just encoded
    /// ([`Cache::expect_built`]). Revision and resourceVersion are set when it is applied.
    pub fn prebuilt(obj: &Object, raw: Bytes) -> Stored {
        Stored::from_object(obj, 0, raw)
    }

    fn from_object(obj: &Object, revision: i64, bytes: Bytes) -> Stored {
        let meta = obj.meta();
        let kind = obj.kind();
        let values: Vec<String> = supported_fields(kind)
            .iter()
            .filter(|f| !f.starts_with("metadata."))
            .map(|f| coxswain_api::selector::field_value(obj, f).unwrap_or_default())
            .collect();
        Stored {
            kind,
            key: map_key(kind, &meta.namespace, &meta.name).into_boxed_str(),
            revision,
            bytes,
            labels: Packed::new(
                meta.labels
                    .iter()
                    .flat_map(|(k, v)| [k.as_str(), v.as_str()]),
            ),
            fields: Packed::new(values.iter().map(String::as_str)),
            uid: meta.uid.as_str().into(),
            owners: Packed::new(
                meta.owner_references
                    .iter()
                    .map(|r| r.uid.as_str())
                    .filter(|u| !u.is_empty()),
            ),
            deleting: !meta.deletion_timestamp.is_empty(),
            request_id: None,
        }
    }

    /// The key within its kind: "namespace/name", or "name" when cluster-scoped.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn namespace(&self) -> &str {
        if self.kind.namespaced() {
            self.key.split_once('/').map_or("", |(ns, _)| ns)
        } else {
            ""
        }
    }

    pub fn name(&self) -> &str {
        if self.kind.namespaced() {
            self.key.split_once('/').map_or(&self.key, |(_, n)| n)
        } else {
            &self.key
        }
    }

    /// uids of the owners in metadata.ownerReferences.
    pub fn owners(&self) -> impl Iterator<Item = &str> {
        self.owners.iter()
    }

    pub fn has_owners(&self) -> bool {
        self.owners.iter().next().is_some()
    }

    /// The object, decoded.
    pub fn decode(&self) -> Object {
        // The bytes were produced from a decodable object; a failure here is a bug, and the
        // empty object of the kind is the least harmful answer.
        self.kind
            .decode(&self.bytes)
            .unwrap_or_else(|_| self.kind.empty())
    }

    /// Every label as (key, value).
    pub fn label_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut it = self.labels.iter();
        std::iter::from_fn(move || Some((it.next()?, it.next()?)))
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        let mut it = self.labels.iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            if k == key {
                return Some(v);
            }
        }
        None
    }

    pub fn field(&self, field: &str) -> Option<String> {
        match field {
            "metadata.name" => return Some(self.name().to_string()),
            "metadata.namespace" => return Some(self.namespace().to_string()),
            _ => {}
        }
        supported_fields(self.kind)
            .iter()
            .filter(|f| !f.starts_with("metadata."))
            .position(|f| *f == field)
            .and_then(|i| self.fields.get(i))
            .map(str::to_string)
    }

    pub fn matches(&self, labels: &LabelSelector, fields: &FieldSelector) -> bool {
        (labels.is_everything() || labels.matches_with(&|k| self.label(k)))
            && (fields.is_empty() || fields.matches_with(&|f| self.field(f)))
    }

    /// The object as a google.protobuf.Any, without decoding it.
    /// True when `raw` is this object's stored encoding (its bytes without the resourceVersion
    /// [`with_resource_version`] appended): writing `raw` again would change nothing.
    pub fn holds(&self, raw: &[u8]) -> bool {
        let suffix = resource_version_suffix(self.revision);
        self.bytes.len() == raw.len() + suffix.len()
            && self.bytes.starts_with(raw)
            && self.bytes.ends_with(&suffix)
    }

    pub fn to_any(&self) -> prost_types::Any {
        prost_types::Any {
            type_url: self.kind.type_url(),
            value: self.bytes.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_api::v1;

    fn pod(name: &str) -> Bytes {
        let p = v1::Pod {
            metadata: Some(ObjectMeta {
                name: name.into(),
                namespace: "default".into(),
                labels: [("app".to_string(), "x".to_string())].into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        Bytes::from(p.encode_to_vec())
    }

    #[test]
    fn appended_resource_version_wins_and_keeps_the_rest() {
        let raw = pod("a");
        let twice = with_resource_version(&with_resource_version(&raw, 5), 9);
        let obj = Kind::Pod.decode(&twice).expect("decodes");
        assert_eq!(obj.meta().resource_version, "9");
        assert_eq!(obj.meta().name, "a");
        assert_eq!(obj.meta().labels.get("app").map(String::as_str), Some("x"));
    }
    #[test]
    fn holds_only_its_own_encoding() {
        let raw = pod("a");
        let s = Stored::build(Kind::Pod, 42, &raw).expect("builds");
        assert!(s.holds(&raw));
        // A changed object, one byte more or less, the bytes with a resourceVersion.
        assert!(!s.holds(&pod("b")));
        assert!(!s.holds(&raw[..raw.len() - 1]));
        assert!(!s.holds(&with_resource_version(&raw, 42)));
        let mut longer = raw.to_vec();
        longer.push(0);
        assert!(!s.holds(&longer));
        // The same object re-encoded after a decode (what a write compares) is held.
        let again = Kind::Pod.decode(&s.bytes).expect("decodes");
        let mut again = again;
        again.meta_mut().resource_version.clear();
        assert!(s.holds(&again.encode_to_vec()));
    }
}
