//! The kinds registry: every object kind coxswain stores, its names (as kubectl accepts them),
//! its API versions, and [`Object`], the one enum that holds any object.
//!
//! Adding a kind: a message in `proto/`, one line in the `kinds!` table below.
use std::sync::LazyLock;

use prost::Message;

use crate::v1;
use crate::v1::ObjectMeta;

/// Prefix of the type URL of a packed object (`google.protobuf.Any`).
pub const TYPE_URL_PREFIX: &str = "type.googleapis.com/coxswain.v1.";

static EMPTY_META: LazyLock<ObjectMeta> = LazyLock::new(ObjectMeta::default);

/// How an API version of a kind is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// Current version.
    Current,
    /// Served with a deprecation warning naming the version to move to.
    Deprecated,
}

/// A typed object of one kind: a generated kind message.
pub trait Resource: Message + Default + Clone + serde::Serialize + Sized {
    const KIND: Kind;
    fn metadata(&self) -> &ObjectMeta;
    fn metadata_mut(&mut self) -> &mut ObjectMeta;
    fn into_object(self) -> Object;
    fn from_object(obj: Object) -> Option<Self>;
    /// Encoded spec (or, for kinds without one, every field but metadata and status): what a
    /// generation bump compares.
    fn spec_bytes(&self) -> Vec<u8>;
    /// Keep `from`'s status (Update must not change status).
    fn copy_status_from(&mut self, from: &Self);
    /// True when the kind has a status.
    fn has_status() -> bool;
}

macro_rules! kinds {
    ($( $kind:ident {
        group_version: $gv:literal,
        also: [$($also:literal),*],
        plural: $plural:literal,
        short: [$($short:literal),*],
        namespaced: $ns:literal,
        layout: $layout:ident
    } ),* $(,)?) => {
        /// An object kind.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Kind { $($kind),* }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$(Kind::$kind),*];

            /// The kind as Kubernetes names it: "Pod", "Deployment".
            pub fn as_str(self) -> &'static str {
                match self { $(Kind::$kind => stringify!($kind)),* }
            }
            /// The preferred apiVersion: "v1", "apps/v1".
            pub fn api_version(self) -> &'static str {
                match self { $(Kind::$kind => $gv),* }
            }
            /// The lower-case plural resource name: "pods".
            pub fn plural(self) -> &'static str {
                match self { $(Kind::$kind => $plural),* }
            }
            /// kubectl's short names: ["po"].
            pub fn short_names(self) -> &'static [&'static str] {
                match self { $(Kind::$kind => &[$($short),*]),* }
            }
            pub fn namespaced(self) -> bool {
                match self { $(Kind::$kind => $ns),* }
            }
            pub fn has_status(self) -> bool {
                match self { $(Kind::$kind => <v1::$kind as Resource>::has_status()),* }
            }
            /// Other apiVersions accepted in manifests, each with a deprecation warning.
            pub fn other_api_versions(self) -> &'static [&'static str] {
                match self { $(Kind::$kind => &[$($also),*]),* }
            }
            /// The type URL of a packed object of this kind (`google.protobuf.Any`).
            pub fn type_url_str(self) -> &'static str {
                match self {
                    $(Kind::$kind => concat!("type.googleapis.com/coxswain.v1.", stringify!($kind))),*
                }
            }
            /// [`Kind::type_url_str`] owned (a copy, no formatting: it is on every packed
            /// object's path).
            pub fn type_url(self) -> String {
                self.type_url_str().to_owned()
            }
            /// Decode an object of this kind from its protobuf encoding.
            pub fn decode(self, bytes: &[u8]) -> Result<Object, prost::DecodeError> {
                Ok(match self { $(Kind::$kind => Object::$kind(v1::$kind::decode(bytes)?)),* })
            }
            /// Deserialize an object of this kind from its JSON form (Kubernetes JSON), strictly:
            /// unknown and duplicate fields are errors carrying their path.
            pub fn from_json_value(self, value: serde_json::Value)
                -> Result<Object, serde_path_to_error::Error<serde_json::Error>> {
                Ok(match self {
                    $(Kind::$kind => Object::$kind(serde_path_to_error::deserialize(value)?)),*
                })
            }
            /// An empty object of this kind (apiVersion and kind set).
            pub fn empty(self) -> Object {
                let mut o = match self { $(Kind::$kind => Object::$kind(Default::default())),* };
                o.set_type_meta();
                o
            }
        }

        /// Any stored object.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Object { $($kind(v1::$kind)),* }

        impl Object {
            pub fn kind(&self) -> Kind {
                match self { $(Object::$kind(_) => Kind::$kind),* }
            }
            pub fn meta(&self) -> &ObjectMeta {
                match self { $(Object::$kind(o) => o.metadata.as_ref().unwrap_or(&EMPTY_META)),* }
            }
            pub fn meta_mut(&mut self) -> &mut ObjectMeta {
                match self { $(Object::$kind(o) => o.metadata.get_or_insert_with(Default::default)),* }
            }
            pub fn encode_to_vec(&self) -> Vec<u8> {
                match self { $(Object::$kind(o) => o.encode_to_vec()),* }
            }
            pub fn spec_bytes(&self) -> Vec<u8> {
                match self { $(Object::$kind(o) => o.spec_bytes()),* }
            }
            /// Keep `from`'s status (no-op for kinds without status or of another kind).
            pub fn copy_status_from(&mut self, from: &Object) {
                match (self, from) {
                    $((Object::$kind(a), Object::$kind(b)) => a.copy_status_from(b),)*
                    #[allow(unreachable_patterns)]
                    _ => {}
                }
            }
            /// The JSON form (Kubernetes JSON), with apiVersion and kind.
            pub fn to_json_value(&self) -> serde_json::Value {
                let mut o = self.clone();
                o.set_type_meta_if_empty();
                let r = match &o { $(Object::$kind(x) => serde_json::to_value(x)),* };
                // Serializing generated types into a Value cannot fail: no map has non-string keys.
                r.unwrap_or(serde_json::Value::Null)
            }
            /// Set apiVersion and kind to this kind's preferred values.
            pub fn set_type_meta(&mut self) {
                match self { $(Object::$kind(o) => {
                    o.api_version = $gv.to_string();
                    o.kind = stringify!($kind).to_string();
                }),* }
            }
            fn set_type_meta_if_empty(&mut self) {
                match self { $(Object::$kind(o) => {
                    if o.api_version.is_empty() { o.api_version = $gv.to_string(); }
                    if o.kind.is_empty() { o.kind = stringify!($kind).to_string(); }
                }),* }
            }
            /// The apiVersion the object carries (as given in its manifest).
            pub fn api_version(&self) -> &str {
                match self { $(Object::$kind(o) => &o.api_version),* }
            }
        }

        $(
            impl_resource!($kind, $layout);
            impl From<v1::$kind> for Object {
                fn from(o: v1::$kind) -> Object { Object::$kind(o) }
            }
        )*
    };
}

macro_rules! impl_resource {
    ($kind:ident, $layout:ident) => {
        impl Resource for v1::$kind {
            const KIND: Kind = Kind::$kind;
            fn metadata(&self) -> &ObjectMeta {
                self.metadata.as_ref().unwrap_or(&EMPTY_META)
            }
            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                self.metadata.get_or_insert_with(Default::default)
            }
            fn into_object(self) -> Object {
                Object::$kind(self)
            }
            fn from_object(obj: Object) -> Option<Self> {
                match obj {
                    Object::$kind(o) => Some(o),
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
            impl_resource!(@$layout);
        }
    };
    // spec and status: Update keeps status, generation follows spec.
    (@spec_status) => {
        fn spec_bytes(&self) -> Vec<u8> {
            self.spec.as_ref().map(|s| s.encode_to_vec()).unwrap_or_default()
        }
        fn copy_status_from(&mut self, from: &Self) {
            self.status = from.status.clone();
        }
        fn has_status() -> bool {
            true
        }
    };
    // spec only (Lease).
    (@spec_only) => {
        fn spec_bytes(&self) -> Vec<u8> {
            self.spec.as_ref().map(|s| s.encode_to_vec()).unwrap_or_default()
        }
        fn copy_status_from(&mut self, _from: &Self) {}
        fn has_status() -> bool {
            false
        }
    };
    // data kinds (ConfigMap, Secret, Event, …): everything but metadata is the "spec".
    (@data) => {
        fn spec_bytes(&self) -> Vec<u8> {
            let mut c = self.clone();
            c.metadata = None;
            c.api_version.clear();
            c.kind.clear();
            c.encode_to_vec()
        }
        fn copy_status_from(&mut self, _from: &Self) {}
        fn has_status() -> bool {
            false
        }
    };
}

kinds! {
    Namespace { group_version: "v1", also: [], plural: "namespaces", short: ["ns"], namespaced: false, layout: spec_status },
    Node { group_version: "v1", also: [], plural: "nodes", short: ["no"], namespaced: false, layout: spec_status },
    Pod { group_version: "v1", also: [], plural: "pods", short: ["po"], namespaced: true, layout: spec_status },
    Service { group_version: "v1", also: [], plural: "services", short: ["svc"], namespaced: true, layout: spec_status },
    Endpoints { group_version: "v1", also: [], plural: "endpoints", short: ["ep"], namespaced: true, layout: data },
    EndpointSlice { group_version: "discovery.k8s.io/v1", also: ["discovery.k8s.io/v1beta1"], plural: "endpointslices", short: [], namespaced: true, layout: data },
    PersistentVolumeClaim { group_version: "v1", also: [], plural: "persistentvolumeclaims", short: ["pvc"], namespaced: true, layout: spec_status },
    PersistentVolume { group_version: "v1", also: [], plural: "persistentvolumes", short: ["pv"], namespaced: false, layout: spec_status },
    StorageClass { group_version: "storage.k8s.io/v1", also: ["storage.k8s.io/v1beta1"], plural: "storageclasses", short: ["sc"], namespaced: false, layout: data },
    ServiceAccount { group_version: "v1", also: [], plural: "serviceaccounts", short: ["sa"], namespaced: true, layout: data },
    ConfigMap { group_version: "v1", also: [], plural: "configmaps", short: ["cm"], namespaced: true, layout: data },
    Secret { group_version: "v1", also: [], plural: "secrets", short: [], namespaced: true, layout: data },
    Event { group_version: "v1", also: ["events.k8s.io/v1"], plural: "events", short: ["ev"], namespaced: true, layout: data },
    ReplicaSet { group_version: "apps/v1", also: ["apps/v1beta2", "extensions/v1beta1"], plural: "replicasets", short: ["rs"], namespaced: true, layout: spec_status },
    Deployment { group_version: "apps/v1", also: ["apps/v1beta1", "apps/v1beta2", "extensions/v1beta1"], plural: "deployments", short: ["deploy"], namespaced: true, layout: spec_status },
    DaemonSet { group_version: "apps/v1", also: ["apps/v1beta2", "extensions/v1beta1"], plural: "daemonsets", short: ["ds"], namespaced: true, layout: spec_status },
    StatefulSet { group_version: "apps/v1", also: ["apps/v1beta1", "apps/v1beta2"], plural: "statefulsets", short: ["sts"], namespaced: true, layout: spec_status },
    ControllerRevision { group_version: "apps/v1", also: [], plural: "controllerrevisions", short: [], namespaced: true, layout: data },
    Job { group_version: "batch/v1", also: [], plural: "jobs", short: [], namespaced: true, layout: spec_status },
    CronJob { group_version: "batch/v1", also: ["batch/v1beta1", "batch/v2alpha1"], plural: "cronjobs", short: ["cj"], namespaced: true, layout: spec_status },
    HorizontalPodAutoscaler { group_version: "autoscaling/v2", also: ["autoscaling/v1", "autoscaling/v2beta2", "autoscaling/v2beta1"], plural: "horizontalpodautoscalers", short: ["hpa"], namespaced: true, layout: spec_status },
    Lease { group_version: "coordination.k8s.io/v1", also: [], plural: "leases", short: [], namespaced: true, layout: spec_only },
    Role { group_version: "rbac.authorization.k8s.io/v1", also: ["rbac.authorization.k8s.io/v1beta1"], plural: "roles", short: [], namespaced: true, layout: data },
    ClusterRole { group_version: "rbac.authorization.k8s.io/v1", also: ["rbac.authorization.k8s.io/v1beta1"], plural: "clusterroles", short: [], namespaced: false, layout: data },
    RoleBinding { group_version: "rbac.authorization.k8s.io/v1", also: ["rbac.authorization.k8s.io/v1beta1"], plural: "rolebindings", short: [], namespaced: true, layout: data },
    ClusterRoleBinding { group_version: "rbac.authorization.k8s.io/v1", also: ["rbac.authorization.k8s.io/v1beta1"], plural: "clusterrolebindings", short: [], namespaced: false, layout: data },
}

impl Kind {
    /// Resolve a kind the way kubectl does: kind, plural, singular or short name, any case,
    /// optionally qualified by group ("deployments.apps").
    pub fn parse(name: &str) -> Option<Kind> {
        let lower = name.to_ascii_lowercase();
        let base = lower.split('.').next().unwrap_or("");
        Kind::ALL.iter().copied().find(|k| {
            k.as_str().eq_ignore_ascii_case(base)
                || k.plural() == base
                || k.short_names().contains(&base)
        })
    }

    /// The API group ("" for core, "apps", "batch", …).
    pub fn group(self) -> &'static str {
        match self.api_version().rsplit_once('/') {
            Some((g, _)) => g,
            None => "",
        }
    }

    /// How `api_version` is served for this kind, or None when it is not.
    pub fn serves(self, api_version: &str) -> Option<Served> {
        if api_version == self.api_version() {
            Some(Served::Current)
        } else if self.other_api_versions().contains(&api_version) {
            // autoscaling/v1 is a current version in Kubernetes, not a deprecated one.
            if self == Kind::HorizontalPodAutoscaler && api_version == "autoscaling/v1" {
                Some(Served::Current)
            } else {
                Some(Served::Deprecated)
            }
        } else {
            None
        }
    }

    /// Find the kind named in a manifest's `kind` field (exact, as Kubernetes requires).
    pub fn from_manifest_kind(kind: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.as_str() == kind)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Object {
    /// Pack into a `google.protobuf.Any`.
    pub fn to_any(&self) -> prost_types::Any {
        prost_types::Any {
            type_url: self.kind().type_url(),
            value: self.encode_to_vec(),
        }
    }

    /// Unpack from a `google.protobuf.Any` holding one of the kind messages.
    pub fn from_any(any: &prost_types::Any) -> Result<Object, crate::Error> {
        let kind = kind_of_type_url(&any.type_url)?;
        kind.decode(&any.value)
            .map_err(|e| crate::Error::Decode(e.to_string()))
    }

    pub fn name(&self) -> &str {
        &self.meta().name
    }

    pub fn namespace(&self) -> &str {
        &self.meta().namespace
    }

    /// "kind/namespace/name" or "kind/name" for cluster-scoped kinds, for messages.
    pub fn describe_ref(&self) -> String {
        if self.kind().namespaced() {
            format!("{} {}/{}", self.kind(), self.namespace(), self.name())
        } else {
            format!("{} {}", self.kind(), self.name())
        }
    }

    /// The typed object, when it is of kind `R`.
    pub fn into_typed<R: Resource>(self) -> Option<R> {
        R::from_object(self)
    }
}

/// The kind a type URL names.
pub fn kind_of_type_url(type_url: &str) -> Result<Kind, crate::Error> {
    let name = type_url.rsplit('/').next().unwrap_or("");
    let name = name.strip_prefix("coxswain.v1.").unwrap_or(name);
    Kind::from_manifest_kind(name)
        .ok_or_else(|| crate::Error::UnknownKind(format!("type URL {type_url:?} names no kind")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_names_resolve() {
        assert_eq!(Kind::parse("po"), Some(Kind::Pod));
        assert_eq!(Kind::parse("pods"), Some(Kind::Pod));
        assert_eq!(Kind::parse("Pod"), Some(Kind::Pod));
        assert_eq!(Kind::parse("deploy"), Some(Kind::Deployment));
        assert_eq!(Kind::parse("deployments.apps"), Some(Kind::Deployment));
        assert_eq!(Kind::parse("hpa"), Some(Kind::HorizontalPodAutoscaler));
        assert_eq!(Kind::parse("ep"), Some(Kind::Endpoints));
        assert_eq!(Kind::parse("endpoints"), Some(Kind::Endpoints));
        assert_eq!(Kind::parse("endpointslices"), Some(Kind::EndpointSlice));
        assert_eq!(
            Kind::parse("endpointslices.discovery.k8s.io"),
            Some(Kind::EndpointSlice)
        );
        assert_eq!(Kind::EndpointSlice.group(), "discovery.k8s.io");
        assert_eq!(Kind::parse("cj"), Some(Kind::CronJob));
        assert_eq!(Kind::parse("nope"), None);
    }

    #[test]
    fn every_type_url_is_the_prefix_and_the_kind_and_names_its_kind() {
        for &kind in Kind::ALL {
            assert_eq!(
                kind.type_url_str(),
                format!("{TYPE_URL_PREFIX}{}", kind.as_str())
            );
            assert_eq!(kind.type_url(), kind.type_url_str());
            assert_eq!(kind_of_type_url(kind.type_url_str()).unwrap(), kind);
        }
    }

    #[test]
    fn any_round_trip_keeps_the_object() {
        let mut o = Kind::Pod.empty();
        o.meta_mut().name = "p".into();
        o.meta_mut().labels.insert("app".into(), "x".into());
        let back = Object::from_any(&o.to_any()).expect("decodes");
        assert_eq!(back, o);
    }

    #[test]
    fn old_api_versions_are_deprecated_not_rejected() {
        assert_eq!(
            Kind::CronJob.serves("batch/v1beta1"),
            Some(Served::Deprecated)
        );
        assert_eq!(
            Kind::CronJob.serves("batch/v2alpha1"),
            Some(Served::Deprecated)
        );
        assert_eq!(Kind::CronJob.serves("batch/v1"), Some(Served::Current));
        assert_eq!(Kind::CronJob.serves("apps/v1"), None);
        assert_eq!(
            Kind::HorizontalPodAutoscaler.serves("autoscaling/v1"),
            Some(Served::Current)
        );
    }
}
