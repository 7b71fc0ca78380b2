//! Delete: preconditions, graceful deletion of bound pods, finalizers and propagation.
use super::*;

impl Store {
    /// Delete an object. With finalizers (or a propagation policy that needs the garbage
    /// collector) the object gets a deletionTimestamp and stays until they are removed.
    /// Returns the object as it was deleted or marked.
    pub async fn delete(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Object> {
        Ok(self.delete_encoded(kind, namespace, name, opts).await?.0)
    }

    /// [`Store::delete`], and the object's stored encoding when it stays, marked (a graceful
    /// deletion, finalizers), so the response need not encode it again.
    pub async fn delete_encoded(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<(Object, Option<Bytes>)> {
        let namespace = ns_for(kind, namespace);
        if kind == Kind::Namespace && SYSTEM_NAMESPACES.contains(&name) && name != "kube-node-lease"
        {
            return Err(StoreError::Forbidden(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            )));
        }
        let _allocating = match kind {
            Kind::Service => Some(self.inner.service_lock.lock().await),
            _ => None,
        };
        loop {
            let cur = self
                .get_for_write(
                    kind,
                    namespace,
                    name,
                    opts.precondition_resource_version
                        .as_deref()
                        .unwrap_or_default(),
                    opts.precondition_uid.as_deref().unwrap_or_default(),
                )
                .await?;
            if let Some(uid) = &opts.precondition_uid {
                if !uid.is_empty() && *uid != *cur.uid {
                    return Err(StoreError::Conflict {
                        resource: resource_name(kind),
                        name: name.to_string(),
                        message: format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", cur.uid),
                    });
                }
            }
            if let Some(rv) = &opts.precondition_resource_version {
                if !rv.is_empty() && *rv != cur.revision.to_string() {
                    return Err(StoreError::Conflict {
                        resource: resource_name(kind),
                        name: name.to_string(),
                        message: format!(
                            "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                            cur.revision
                        ),
                    });
                }
            }
            let mut obj = cur.decode();
            obj.meta_mut().resource_version.clear();
            let finalizer = match opts.propagation {
                Propagation::Orphan => Some(FINALIZER_ORPHAN),
                Propagation::Foreground => Some(FINALIZER_FOREGROUND),
                Propagation::Background => None,
            };
            if let Some(f) = finalizer {
                // The last policy asked for wins, as in Kubernetes.
                let fins = &mut obj.meta_mut().finalizers;
                fins.retain(|x| x != FINALIZER_ORPHAN && x != FINALIZER_FOREGROUND);
                fins.push(f.to_string());
            }
            // Graceful deletion: a pod that may be running on a node stays, marked, until the
            // node's agent has stopped it and deletes it with grace 0.
            let grace = match &obj {
                Object::Pod(p) => self.pod_grace_period(p, opts.grace_period_seconds),
                _ => 0,
            };
            let shorter = obj
                .meta()
                .deletion_grace_period_seconds
                .is_some_and(|g| grace < g);
            if grace > 0 && (obj.meta().deletion_timestamp.is_empty() || shorter) {
                let now = coxswain_api::time::now_secs();
                obj.meta_mut().deletion_timestamp =
                    coxswain_api::time::format_rfc3339(now + i64::from(grace));
                obj.meta_mut().deletion_grace_period_seconds = Some(grace);
            } else if grace == 0
                && matches!(obj, Object::Pod(_))
                && obj
                    .meta()
                    .deletion_grace_period_seconds
                    .is_some_and(|g| g > 0)
            {
                obj.meta_mut().deletion_grace_period_seconds = Some(0);
            }
            if obj.meta().deletion_timestamp.is_empty() {
                obj.meta_mut().deletion_timestamp = now_rfc3339();
                obj.meta_mut().deletion_grace_period_seconds = Some(0);
                if let Object::Namespace(n) = &mut obj {
                    n.status.get_or_insert_with(Default::default).phase = "Terminating".into();
                    // A namespace always goes through the namespace deleter, which empties it
                    // and then removes this finalizer.
                    let spec = n.spec.get_or_insert_with(Default::default);
                    if !spec.finalizers.iter().any(|f| f == FINALIZER_NAMESPACE) {
                        spec.finalizers.push(FINALIZER_NAMESPACE.into());
                    }
                }
            }
            let key = backend_key(kind, namespace, name);
            let mut value = None;
            let txn = if ready_to_delete(&obj) {
                // A Service frees its ClusterIP and NodePorts in the same transaction.
                let mut txn = Txn::delete_if(key.clone(), cur.revision);
                // Marking changed only metadata: `obj`'s addresses are the stored Service's.
                if kind == Kind::Service {
                    Self::add_range_ops(&self.service_ranges(), &mut txn, Some(&obj), None);
                }
                txn
            } else {
                let v = Bytes::from(obj.encode_to_vec());
                if cur.holds(&v) {
                    // Already being deleted the same way (the same bytes): the stored bytes
                    // answer.
                    let mut o = obj;
                    o.meta_mut().resource_version = cur.revision.to_string();
                    return Ok((o, Some(cur.bytes.clone())));
                }
                // The cache takes the entry built from `obj` rather than decoding `v` again.
                self.cache_mut()
                    .expect_built(&key, Stored::prebuilt(&obj, v.clone()));
                value = Some(v.clone());
                Txn::put_if(key.clone(), cur.revision, v)
            };
            let result = self.commit(txn).await;
            if let Some(v) = &value {
                self.cache_mut().forget_built(&key, v);
            }
            match result? {
                TxnResult::Committed { revision } => {
                    obj.meta_mut().resource_version = revision.to_string();
                    let stored = value.map(|v| crate::cache::with_resource_version(&v, revision));
                    return Ok((obj, stored));
                }
                TxnResult::Conflict { .. } => continue,
            }
        }
    }

    /// The grace period a pod deletion gets: 0 (remove at once) for a pod no agent runs — not
    /// bound, bound to a node that does not exist (as Kubernetes' pod GC force-deletes such
    /// orphans), or already finished — else the requested period or the pod's
    /// terminationGracePeriodSeconds (default 30).
    pub(super) fn pod_grace_period(
        &self,
        pod: &coxswain_api::v1::Pod,
        requested: Option<i32>,
    ) -> i32 {
        let spec = pod.spec.as_ref();
        let node = spec.map(|s| s.node_name.as_str()).unwrap_or("");
        let phase = pod.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("");
        if node.is_empty()
            || matches!(phase, "Succeeded" | "Failed")
            || self.get_stored(Kind::Node, "", node).is_err()
        {
            return 0;
        }
        requested
            .or_else(|| spec.and_then(|s| s.termination_grace_period_seconds))
            .unwrap_or(30)
            .max(0)
    }
}

/// An object marked for deletion whose finalizers are all gone is removed.
pub(super) fn ready_to_delete(obj: &Object) -> bool {
    let m = obj.meta();
    if m.deletion_timestamp.is_empty()
        || !m.finalizers.is_empty()
        || m.deletion_grace_period_seconds.unwrap_or(0) > 0
    {
        return false;
    }
    match obj {
        Object::Namespace(n) => n.spec.as_ref().is_none_or(|s| s.finalizers.is_empty()),
        _ => true,
    }
}
