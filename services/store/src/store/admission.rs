//! Admission of writes: the namespace exists and is not terminating, defaults, validation,
//! the ServiceAccount admission, and what a create or an update sets or keeps on its own.
use super::*;

impl Store {
    /// Refuse a create into a namespace that is missing or terminating (upstream's
    /// NamespaceLifecycle admission, from this replica's cache). A create admitted just before
    /// the mark, here or through another replica, lands within the namespace deleter's grace
    /// (`StoreConfig::namespace_deletion_grace`), before it lists what to delete.
    pub(super) fn check_namespace(&self, obj: &Object) -> Result<()> {
        let kind = obj.kind();
        if !kind.namespaced() {
            return Ok(());
        }
        let ns = obj.namespace();
        let s = self.cache().get(Kind::Namespace, "", ns);
        match s {
            None => Err(StoreError::NotFound { resource: "namespaces".into(), name: ns.to_string() }),
            Some(s) if s.deleting => Err(StoreError::Forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                resource_name(kind),
                obj.name()
            ))),
            Some(_) => Ok(()),
        }
    }

    pub(super) fn invalid(obj: &Object, errs: Vec<coxswain_api::error::FieldError>) -> StoreError {
        StoreError::Invalid {
            kind: obj.kind(),
            name: obj.name().to_string(),
            source: coxswain_api::Error::Invalid(errs),
        }
    }

    /// Defaults and validation of a new object, without side effects.
    pub fn admit_new(&self, obj: &mut Object) -> Result<()> {
        let kind = obj.kind();
        if kind.namespaced() {
            if obj.meta().namespace.is_empty() {
                obj.meta_mut().namespace = "default".into();
            }
        } else {
            obj.meta_mut().namespace.clear();
        }
        obj.set_type_meta();
        defaults::apply_defaults(obj);
        if let Object::Pod(pod) = obj {
            add_default_tolerations(
                pod,
                self.inner.config.default_not_ready_toleration_seconds,
                self.inner.config.default_unreachable_toleration_seconds,
            );
        }
        let mut errs = validation::validate(obj);
        if obj.meta().name.is_empty()
            && obj.meta().generate_name.is_empty()
            && !errs.iter().any(|e| e.path == "metadata.name")
        {
            {
                errs.insert(
                    0,
                    coxswain_api::error::FieldError::new(
                        "metadata.name",
                        "Required value: name or generateName is required",
                    ),
                );
            }
        }
        if !errs.is_empty() {
            return Err(Self::invalid(obj, errs));
        }
        Ok(())
    }

    /// The ServiceAccount admission plugin on a new pod (mirror pods aside): no
    /// `serviceAccountName` means `default` (and the deprecated `serviceAccount` mirrors it),
    /// and a named ServiceAccount must exist, else Forbidden with upstream's message. A missing
    /// `default` is let through: the serviceaccounts controller creates it in every namespace,
    /// and a bare `coxswain store` (no controllers) still serves pods.
    pub(super) fn admit_service_account(&self, obj: &mut Object) -> Result<()> {
        let Object::Pod(pod) = obj else {
            return Ok(());
        };
        // Borrowed, not cloned: a pod's metadata (labels, annotations, the last applied
        // configuration) would otherwise be copied on every pod create.
        let Some(meta) = pod.metadata.as_ref() else {
            return Ok(());
        };
        if meta.annotations.contains_key("kubernetes.io/config.mirror") {
            return Ok(());
        }
        let spec = pod.spec.get_or_insert_with(Default::default);
        if spec.service_account_name.is_empty() {
            spec.service_account_name = "default".into();
        }
        spec.service_account = spec.service_account_name.clone();
        let sa = spec.service_account_name.clone();
        let account = self.get_stored(Kind::ServiceAccount, &meta.namespace, &sa);
        if sa != "default" && account.is_err() {
            return Err(StoreError::Forbidden(format!(
                "pods \"{}\" is forbidden: error looking up service account {}/{sa}: serviceaccount \"{sa}\" not found",
                meta.name, meta.namespace
            )));
        }
        // The token volume (crate::sa_admission), unless the pod or its ServiceAccount opts out.
        if !self.config().mount_service_account_tokens {
            return Ok(());
        }
        let sa_automount = match (spec.automount_service_account_token, account) {
            (Some(_), _) | (None, Err(_)) => None,
            (None, Ok(s)) => match s.decode() {
                Object::ServiceAccount(a) => a.automount_service_account_token,
                _ => None,
            },
        };
        if crate::sa_admission::should_automount(spec.automount_service_account_token, sa_automount)
        {
            crate::sa_admission::mount_service_account_token(spec);
        }
        Ok(())
    }
}

/// Status a new object starts with, and identity-derived defaults.
pub(super) fn prepare_for_create(obj: &mut Object) {
    let uid = obj.meta().uid.clone();
    match obj {
        Object::Pod(p) => {
            let spec = p.spec.get_or_insert_with(Default::default);
            // The Priority admission plugin: the built-in classes' values, 0 without a class
            // (no PriorityClass objects here), and the default preemption policy.
            if spec.priority.is_none() {
                spec.priority = match spec.priority_class_name.as_str() {
                    "system-node-critical" => Some(2_000_001_000),
                    "system-cluster-critical" => Some(2_000_000_000),
                    "" => Some(0),
                    _ => None,
                };
            }
            if spec.priority.is_some() && spec.preemption_policy.is_none() {
                spec.preemption_policy = Some("PreemptLowerPriority".into());
            }
            let qos = coxswain_api::qos::pod_qos(spec);
            let st = p.status.get_or_insert_with(Default::default);
            if st.phase.is_empty() {
                st.phase = "Pending".into();
            }
            // The pod strategy's PrepareForCreate.
            st.qos_class = qos.into();
        }
        Object::Namespace(n) => {
            n.status.get_or_insert_with(Default::default).phase = "Active".into();
            let spec = n.spec.get_or_insert_with(Default::default);
            if !spec.finalizers.iter().any(|f| f == FINALIZER_NAMESPACE) {
                spec.finalizers.push(FINALIZER_NAMESPACE.into());
            }
            let name = n
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default();
            n.metadata
                .get_or_insert_with(Default::default)
                .labels
                .insert("kubernetes.io/metadata.name".into(), name);
        }
        Object::Job(j) => {
            defaults::job_selector_for_uid(j, &uid);
            // The one default that depends on what was just set: a Job without labels takes
            // its template's, now with the generated ones. Other kinds were defaulted once, at
            // admission.
            defaults::apply_defaults(obj);
        }
        // The StorageObjectInUseProtection admission plugin: claims and volumes are protected
        // from removal while in use (the PV controller removes the finalizers).
        Object::PersistentVolumeClaim(_) | Object::PersistentVolume(_) => {
            let f = if matches!(obj, Object::PersistentVolume(_)) {
                "kubernetes.io/pv-protection"
            } else {
                "kubernetes.io/pvc-protection"
            };
            let fins = &mut obj.meta_mut().finalizers;
            if !fins.iter().any(|x| x == f) {
                fins.push(f.into());
            }
        }
        _ => {}
    }
}

/// A pod's priority and preemption policy are set by admission at create; an update that
/// leaves them out keeps them (the spec of a pod may not change them).
pub(super) fn keep_admitted_priority(new: &mut Object, old: &Object) {
    let (Object::Pod(n), Object::Pod(o)) = (new, old) else {
        return;
    };
    let (Some(ns), Some(os)) = (n.spec.as_mut(), o.spec.as_ref()) else {
        return;
    };
    if ns.priority.is_none() {
        ns.priority = os.priority;
    }
    if ns.preemption_policy.is_none() {
        ns.preemption_policy = os.preemption_policy.clone();
    }
    // So does the ServiceAccount admission's serviceAccountName.
    if ns.service_account_name.is_empty() && ns.service_account.is_empty() {
        ns.service_account_name = os.service_account_name.clone();
        ns.service_account = os.service_account.clone();
    }
}

/// Carry over what a client may not change through an update: identity, creation time, the
/// deletion mark, generation.
pub(super) fn keep_system_metadata(new: &mut Object, old: &Object) {
    let o = old.meta().clone();
    let m = new.meta_mut();
    m.uid = o.uid;
    m.creation_timestamp = o.creation_timestamp;
    m.generation = o.generation;
    m.generate_name = o.generate_name;
    if !o.deletion_timestamp.is_empty() {
        m.deletion_timestamp = o.deletion_timestamp;
        m.deletion_grace_period_seconds = o.deletion_grace_period_seconds;
    } else {
        m.deletion_timestamp.clear();
        m.deletion_grace_period_seconds = None;
    }
}

/// Kubernetes' DefaultTolerationSeconds admission: a pod that does not already tolerate the
/// not-ready / unreachable NoExecute taints gets tolerations for them with a time limit, so it
/// is evicted from a failed node after that long.
pub(super) fn add_default_tolerations(
    pod: &mut coxswain_api::v1::Pod,
    not_ready: i32,
    unreachable: i32,
) {
    const NOT_READY: &str = "node.kubernetes.io/not-ready";
    const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
    let spec = pod.spec.get_or_insert_with(Default::default);
    let tolerates = |key: &str| {
        spec.tolerations.iter().any(|t| {
            (t.key == key || t.key.is_empty()) && (t.effect == "NoExecute" || t.effect.is_empty())
        })
    };
    let (has_not_ready, has_unreachable) = (tolerates(NOT_READY), tolerates(UNREACHABLE));
    for (has, key, secs) in [
        (has_not_ready, NOT_READY, not_ready),
        (has_unreachable, UNREACHABLE, unreachable),
    ] {
        if !has {
            spec.tolerations.push(coxswain_api::v1::Toleration {
                key: key.into(),
                operator: "Exists".into(),
                effect: "NoExecute".into(),
                toleration_seconds: Some(secs),
                ..Default::default()
            });
        }
    }
}
