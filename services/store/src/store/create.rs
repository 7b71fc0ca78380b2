//! Create: admission, identity (uid, generateName, creationTimestamp, generation), then one
//! transaction that commits only if the key is absent: one compare and a put, as upstream's
//! create. The namespace is checked by admission (it exists and is not terminating), as
//! upstream's NamespaceLifecycle; a namespace marked meanwhile, here or through another replica,
//! is safe through the namespace deleter's grace (`gc`), as upstream's namespace controller.
use super::*;

impl Store {
    /// Create an object. `dry_run`: admit it and return what would be stored.
    pub async fn create(&self, obj: Object, dry_run: bool) -> Result<Object> {
        Ok(self.create_encoded(obj, dry_run).await?.0)
    }

    /// [`Store::create`], and, once committed, the object's encoding as stored (resourceVersion
    /// included: what a get answers with), so the response need not encode it again.
    pub async fn create_encoded(
        &self,
        mut obj: Object,
        dry_run: bool,
    ) -> Result<(Object, Option<Bytes>)> {
        self.admit_new(&mut obj)?;
        self.check_namespace(&obj)?;
        self.admit_service_account(&mut obj)?;
        let kind = obj.kind();
        let generated = obj.meta().name.is_empty();
        {
            let m = obj.meta_mut();
            m.uid = uuid::Uuid::new_v4().to_string();
            m.creation_timestamp = now_rfc3339();
            m.resource_version.clear();
            m.deletion_timestamp.clear();
            m.deletion_grace_period_seconds = None;
            m.generation = if kind_has_spec(kind) { 1 } else { 0 };
        }
        prepare_for_create(&mut obj);
        let _allocating = match kind {
            Kind::Service => Some(self.inner.service_lock.lock().await),
            _ => None,
        };
        // A Service is allocated afresh from the bitmaps on every attempt.
        let template = (kind == Kind::Service).then(|| obj.clone());
        let (mut attempts, mut range_attempts) = (0, 0);
        loop {
            let ranges = match &template {
                Some(t) => {
                    obj = t.clone();
                    let r = self.service_ranges();
                    if let Err(e) = self.allocate_service(&mut obj, None, &r.taken) {
                        self.retry_allocation(&r, &mut range_attempts, e).await?;
                        continue;
                    }
                    Some(r)
                }
                None => None,
            };
            if generated {
                let base = obj.meta().generate_name.clone();
                obj.meta_mut().name = format!("{base}{}", random_suffix());
            }
            if dry_run {
                return Ok((obj, None));
            }
            let key = backend_key(kind, obj.namespace(), obj.name());
            let value = Bytes::from(obj.encode_to_vec());
            // The cache takes the entry built from `obj` rather than decoding `value` again.
            let built = Stored::prebuilt(&obj, value.clone());
            self.cache_mut().expect_built(&key, built);
            let mut txn = Txn::put_if(key.clone(), 0, value.clone());
            if let Some(r) = &ranges {
                Self::add_range_ops(r, &mut txn, None, Some(&obj));
            }
            let result = self.commit(txn).await;
            self.cache_mut().forget_built(&key, &value);
            let result = result?;
            if Self::range_conflict(&result, &mut range_attempts)? {
                continue;
            }
            match result {
                TxnResult::Committed { revision } => {
                    obj.meta_mut().resource_version = revision.to_string();
                    let stored = crate::cache::with_resource_version(&value, revision);
                    return Ok((obj, Some(stored)));
                }
                TxnResult::Conflict { .. } if generated && attempts < 8 => attempts += 1,
                TxnResult::Conflict { .. } => {
                    return Err(StoreError::AlreadyExists {
                        resource: resource_name(kind),
                        name: obj.name().to_string(),
                    })
                }
            }
        }
    }
}
