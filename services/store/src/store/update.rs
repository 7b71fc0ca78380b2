//! Update, status update, patch and bind: a compare-and-swap against the object's last revision.
use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UpdateMode {
    Spec,
    Status,
}

impl Store {
    /// Replace an object's spec and metadata (status is kept).
    pub async fn update(&self, obj: Object) -> Result<Object> {
        self.write(obj, UpdateMode::Spec, false).await
    }

    /// Replace an object's status (spec and metadata are kept).
    pub async fn update_status(&self, obj: Object) -> Result<Object> {
        self.write(obj, UpdateMode::Status, false).await
    }

    /// [`Store::update`] (`status`: [`Store::update_status`]), and the object's encoding as
    /// stored (resourceVersion included: what a get answers with), so the response need not
    /// encode it again.
    pub async fn update_encoded(&self, obj: Object, status: bool) -> Result<(Object, Bytes)> {
        let mode = if status {
            UpdateMode::Status
        } else {
            UpdateMode::Spec
        };
        let (obj, bytes) = self.write_encoded(obj, mode, false).await?;
        let bytes = bytes.unwrap_or_else(|| Bytes::from(obj.encode_to_vec()));
        Ok((obj, bytes))
    }

    /// Update by re-reading and applying `f` until the write does not conflict (a
    /// "guaranteed update"). `f` returns None to leave the object as it is.
    pub async fn update_with<F>(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        status: bool,
        mut f: F,
    ) -> Result<Object>
    where
        F: FnMut(&mut Object) -> Result<Option<()>>,
    {
        loop {
            let cur = self.get_for_write(kind, namespace, name, "", "").await?;
            let mut obj = cur.decode();
            if f(&mut obj)?.is_none() {
                return Ok(obj);
            }
            let mode = if status {
                UpdateMode::Status
            } else {
                UpdateMode::Spec
            };
            match self.write(obj, mode, false).await {
                Err(StoreError::Conflict { .. }) => continue,
                r => return r,
            }
        }
    }

    pub(super) async fn write(
        &self,
        new: Object,
        mode: UpdateMode,
        dry_run: bool,
    ) -> Result<Object> {
        Ok(self.write_encoded(new, mode, dry_run).await?.0)
    }

    /// [`Store::write`], and the object's stored encoding when there is one (None for a dry
    /// run and for a write that removed the object).
    async fn write_encoded(
        &self,
        new: Object,
        mode: UpdateMode,
        dry_run: bool,
    ) -> Result<(Object, Option<Bytes>)> {
        let kind = new.kind();
        let namespace = ns_for(kind, new.namespace()).to_string();
        let name = new.name().to_string();
        if name.is_empty() {
            return Err(Self::invalid(
                &new,
                vec![coxswain_api::error::FieldError::new(
                    "metadata.name",
                    "Required value",
                )],
            ));
        }
        let user_rv = new.meta().resource_version.clone();
        let _allocating = match (kind, mode) {
            (Kind::Service, UpdateMode::Spec) => Some(self.inner.service_lock.lock().await),
            _ => None,
        };
        let mut range_attempts = 0;
        loop {
            let ranges =
                (kind == Kind::Service && mode == UpdateMode::Spec).then(|| self.service_ranges());
            let user_uid = &new.meta().uid;
            let cur = self
                .get_for_write(kind, &namespace, &name, &user_rv, user_uid)
                .await?;
            if !user_uid.is_empty() && **user_uid != *cur.uid {
                return Err(StoreError::Conflict {
                    resource: resource_name(kind),
                    name,
                    message: format!(
                        "Precondition failed: UID in precondition: {}, UID in object meta: {}",
                        truncate_for_message(user_uid),
                        cur.uid
                    ),
                });
            }
            if !user_rv.is_empty() && user_rv != cur.revision.to_string() {
                return Err(StoreError::Conflict {
                    resource: resource_name(kind),
                    name,
                    message: format!(
                        "the object has been modified; please apply your changes to the latest version and try again (resourceVersion {user_rv} given, {} stored)",
                        cur.revision
                    ),
                });
            }
            let mut old = cur.decode();
            old.meta_mut().resource_version.clear();
            // `old` stays only where the write needs it after (a Service's address ranges): a
            // status write takes the decoded object itself, not a copy of it.
            let (mut next, old) = match mode {
                UpdateMode::Spec => {
                    let mut m = new.clone();
                    m.meta_mut().namespace = namespace.clone();
                    m.set_type_meta();
                    m.copy_status_from(&old);
                    keep_system_metadata(&mut m, &old);
                    keep_admitted_priority(&mut m, &old);
                    defaults::apply_defaults(&mut m);
                    let mut errs = validation::validate(&m);
                    errs.extend(validation::validate_update(&old, &m));
                    if !errs.is_empty() {
                        return Err(Self::invalid(&m, errs));
                    }
                    if let Some(r) = &ranges {
                        if let Err(e) = self.allocate_service(&mut m, Some(&old), &r.taken) {
                            self.retry_allocation(r, &mut range_attempts, e).await?;
                            continue;
                        }
                    }
                    if m.spec_bytes() != old.spec_bytes() && kind_has_spec(kind) {
                        m.meta_mut().generation = old.meta().generation + 1;
                    }
                    (m, Some(old))
                }
                UpdateMode::Status => {
                    if !kind.has_status() {
                        return Err(StoreError::BadRequest(format!("{kind} has no status")));
                    }
                    // A pod's QoS class is the API server's (set at create): a status write that
                    // leaves it out does not clear it.
                    let kept = match &old {
                        Object::Pod(o) => o.status.as_ref().map(|s| s.qos_class.clone()),
                        _ => None,
                    };
                    let mut m = old;
                    m.copy_status_from(&new);
                    if let (Object::Pod(p), Some(q)) = (&mut m, kept) {
                        if let Some(st) = p.status.as_mut() {
                            if st.qos_class.is_empty() {
                                st.qos_class = q;
                            }
                        }
                    }
                    (m, None)
                }
            };
            next.meta_mut().resource_version.clear();
            let encoded = Bytes::from(next.encode_to_vec());
            if cur.holds(&encoded) {
                // Nothing to write (the same bytes, as kube-apiserver's GuaranteedUpdate
                // compares): the stored object and its stored bytes answer.
                let mut same = next;
                same.meta_mut().resource_version = cur.revision.to_string();
                return Ok((same, Some(cur.bytes.clone())));
            }
            if dry_run {
                return Ok((next, None));
            }
            let key = backend_key(kind, &namespace, &name);
            let finished = ready_to_delete(&next);
            let value = (!finished).then_some(encoded);
            let mut txn = match &value {
                None => Txn::delete_if(key.clone(), cur.revision),
                Some(v) => {
                    // As a create: the cache takes the entry built from `next` rather than
                    // decoding `v` again (a status write's second decode of the pod).
                    let built = Stored::prebuilt(&next, v.clone());
                    self.cache_mut().expect_built(&key, built);
                    Txn::put_if(key.clone(), cur.revision, v.clone())
                }
            };
            if let Some(r) = &ranges {
                Self::add_range_ops(r, &mut txn, old.as_ref(), (!finished).then_some(&next));
            }
            let result = self.commit(txn).await;
            if let Some(v) = &value {
                self.cache_mut().forget_built(&key, v);
            }
            let result = result?;
            if Self::range_conflict(&result, &mut range_attempts)? {
                continue;
            }
            match result {
                TxnResult::Committed { revision } => {
                    next.meta_mut().resource_version = revision.to_string();
                    let stored = value
                        .map(|v| crate::cache::with_resource_version(&v, revision));
                    return Ok((next, stored));
                }
                TxnResult::Conflict { .. } if user_rv.is_empty() => continue,
                TxnResult::Conflict { mod_revision, .. } => {
                    return Err(StoreError::Conflict {
                        resource: resource_name(kind),
                        name,
                        message: format!(
                            "the object has been modified; please apply your changes to the latest version and try again (resourceVersion {user_rv} given, {mod_revision} stored)"
                        ),
                    })
                }
            }
        }
    }

    /// Apply a JSON merge patch (RFC 7386) to an object, or to its status.
    ///
    /// As kube-apiserver's patch handler: the patched object must keep the name and namespace of
    /// the request (a BadRequest otherwise), a `metadata.resourceVersion` in the patch is a
    /// precondition (a Conflict when stale, never retried), and a `metadata.uid` naming another
    /// incarnation is a Conflict. Without a resourceVersion a write that lost a race is re-applied
    /// to the newer object, at most [`PATCH_RETRIES`] times, and only while the object really
    /// changed in between — a conflict that would repeat is returned, never spun on.
    pub async fn patch(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        patch: &str,
        status: bool,
    ) -> Result<Object> {
        let text = patch.to_owned();
        let patch: serde_json::Value = off_reactor(move || {
            manifest::check_nesting(&text, manifest::MAX_NESTING_DEPTH)
                .map_err(|e| StoreError::BadRequest(format!("patch: {e}")))?;
            serde_json::from_str(&text)
                .map_err(|e| StoreError::BadRequest(format!("patch is not valid JSON: {e}")))
        })
        .await??;
        let patch = Arc::new(patch);
        if !patch.is_object() {
            return Err(StoreError::BadRequest(
                "a merge patch must be a JSON object".into(),
            ));
        }
        // A resourceVersion in the patch is a precondition (null: none, as upstream).
        let precondition_rv = match patch.pointer("/metadata/resourceVersion") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(rv)) if !rv.is_empty() => Some(rv.clone()),
            Some(serde_json::Value::String(_)) => None,
            Some(v) => {
                return Err(StoreError::BadRequest(format!(
                    "metadata.resourceVersion: Invalid value: {v}: must be a string"
                )))
            }
        };
        let want_namespace = ns_for(kind, namespace);
        let mut attempts = 0;
        loop {
            let seen = precondition_rv.as_deref().unwrap_or_default();
            let cur = self.get_for_write(kind, namespace, name, seen, "").await?;
            let (stored, merge, owned_name) = (cur.clone(), patch.clone(), name.to_string());
            let mut patched = off_reactor(move || {
                let mut json = stored.decode().to_json_value();
                merge_patch(&mut json, &merge);
                kind.from_json_value(json).map_err(|e| StoreError::Invalid {
                    kind,
                    name: owned_name,
                    source: manifest::path_error(&e),
                })
            })
            .await??;
            if patched.name() != name {
                return Err(StoreError::BadRequest(format!(
                    "metadata.name: the name of the object ({}) does not match the name on the URL ({name})",
                    truncate_for_message(patched.name())
                )));
            }
            if ns_for(kind, patched.namespace()) != want_namespace {
                return Err(StoreError::BadRequest(format!(
                    "metadata.namespace: the namespace of the object ({}) does not match the namespace on the URL ({want_namespace})",
                    truncate_for_message(patched.namespace())
                )));
            }
            patched.meta_mut().resource_version = precondition_rv
                .clone()
                .unwrap_or_else(|| cur.revision.to_string());
            let mode = if status {
                UpdateMode::Status
            } else {
                UpdateMode::Spec
            };
            match self.write(patched, mode, false).await {
                Err(e @ StoreError::Conflict { .. }) if precondition_rv.is_none() => {
                    attempts += 1;
                    let changed = self
                        .get_stored(kind, namespace, name)
                        .is_ok_and(|now| now.revision != cur.revision);
                    if !changed || attempts >= PATCH_RETRIES {
                        return Err(e);
                    }
                }
                r => return r,
            }
        }
    }

    /// The pods/binding subresource: assign an unbound pod to `node` and mark it scheduled.
    pub async fn bind(&self, namespace: &str, name: &str, uid: &str, node: &str) -> Result<Object> {
        if node.is_empty() {
            return Err(StoreError::BadRequest(
                "target.name: Required value: the node to bind to".into(),
            ));
        }
        loop {
            let cur = self
                .get_for_write(Kind::Pod, namespace, name, "", uid)
                .await?;
            let Object::Pod(mut pod) = cur.decode() else {
                return Err(StoreError::BadRequest(format!("{name} is not a pod")));
            };
            let conflict = |message: String| StoreError::Conflict {
                resource: resource_name(Kind::Pod),
                name: name.to_string(),
                message,
            };
            let meta = pod.metadata.get_or_insert_with(Default::default);
            if !uid.is_empty() && meta.uid != uid {
                return Err(conflict(format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta.uid
                )));
            }
            if !meta.deletion_timestamp.is_empty() {
                return Err(conflict(format!(
                    "pod {name} is being deleted, cannot be assigned to a host"
                )));
            }
            meta.resource_version.clear();
            let spec = pod.spec.get_or_insert_with(Default::default);
            if !spec.node_name.is_empty() {
                return Err(conflict(format!(
                    "pod {name} is already assigned to node \"{}\"",
                    spec.node_name
                )));
            }
            spec.node_name = node.to_string();
            let status = pod.status.get_or_insert_with(Default::default);
            let now = now_rfc3339();
            status.conditions.retain(|c| c.r#type != "PodScheduled");
            status.conditions.push(coxswain_api::v1::Condition {
                r#type: "PodScheduled".into(),
                status: "True".into(),
                last_transition_time: now,
                ..Default::default()
            });
            let mut obj = Object::Pod(pod);
            let key = backend_key(Kind::Pod, namespace, name);
            let value = Bytes::from(obj.encode_to_vec());
            // As a create: the cache takes the entry built from `obj` rather than decoding
            // `value` again (a bound pod's decode was ~20 K instructions of each binding).
            let built = crate::cache::Stored::prebuilt(&obj, value.clone());
            self.cache_mut().expect_built(&key, built);
            let result = self
                .commit(Txn::put_if(key.clone(), cur.revision, value.clone()))
                .await;
            self.cache_mut().forget_built(&key, &value);
            match result? {
                TxnResult::Committed { revision } => {
                    obj.meta_mut().resource_version = revision.to_string();
                    return Ok(obj);
                }
                TxnResult::Conflict { .. } => continue,
            }
        }
    }
}
