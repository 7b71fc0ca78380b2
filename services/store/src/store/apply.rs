//! Apply (client-side, as `kubectl apply`): create, or a three-way merge with the last applied
//! configuration.
use super::*;

impl Store {
    /// Apply manifest text: every document is parsed, defaulted and validated before anything is
    /// written; then each is created, or updated as `kubectl apply` does (a three-way merge
    /// against the last applied configuration, kept in an annotation).
    pub async fn apply(
        &self,
        text: &str,
        default_namespace: &str,
        create_only: bool,
        dry_run: bool,
    ) -> Result<(Vec<Applied>, Vec<String>)> {
        let text_owned = text.to_owned();
        let parsed = off_reactor(move || manifest::parse_manifests(&text_owned))
            .await?
            .map_err(StoreError::InvalidManifest)?;
        let mut warnings = Vec::new();
        let mut docs = Vec::new();
        // Admission of every document first: nothing is written if any is invalid.
        for p in parsed {
            warnings.extend(p.warnings);
            let mut obj = p.object;
            if obj.kind().namespaced() && obj.meta().namespace.is_empty() {
                obj.meta_mut().namespace = if default_namespace.is_empty() {
                    "default".into()
                } else {
                    default_namespace.into()
                };
            }
            if obj.meta().name.is_empty() && (!create_only || obj.meta().generate_name.is_empty()) {
                return Err(Self::invalid(
                    &obj,
                    vec![coxswain_api::error::FieldError::new(
                        "metadata.name",
                        "Required value: name is required",
                    )],
                ));
            }
            let desired = obj.to_json_value();
            let mut admitted = obj.clone();
            self.admit_new(&mut admitted)?;
            docs.push((obj, desired));
        }
        let mut out = Vec::new();
        for (obj, desired) in docs {
            let kind = obj.kind();
            let existing = if obj.meta().name.is_empty() {
                None
            } else {
                self.cache().get(kind, obj.namespace(), obj.name())
            };
            match existing {
                Some(_) if create_only => {
                    return Err(StoreError::AlreadyExists {
                        resource: resource_name(kind),
                        name: obj.name().to_string(),
                    })
                }
                None => {
                    let mut o = obj;
                    if !create_only {
                        let last = coxswain_api::gojson::encode(&desired);
                        o.meta_mut().annotations.insert(LAST_APPLIED.into(), last);
                    }
                    self.check_namespace(&o)?;
                    let created = self.create(o, dry_run).await?;
                    out.push(Applied {
                        object: created,
                        action: "created",
                    });
                }
                Some(_) => {
                    let (object, changed) = self.apply_update(&obj, &desired, dry_run).await?;
                    out.push(Applied {
                        object,
                        action: if changed { "configured" } else { "unchanged" },
                    });
                }
            }
        }
        Ok((out, warnings))
    }

    pub(super) async fn apply_update(
        &self,
        obj: &Object,
        desired: &serde_json::Value,
        dry_run: bool,
    ) -> Result<(Object, bool)> {
        let kind = obj.kind();
        let last_applied = coxswain_api::gojson::encode(desired);
        loop {
            let cur = self.get_stored(kind, obj.namespace(), obj.name())?;
            let current = cur.decode();
            let last: Option<serde_json::Value> = current
                .meta()
                .annotations
                .get(LAST_APPLIED)
                .and_then(|s| serde_json::from_str(s).ok());
            let mut json = current.to_json_value();
            let mut desired = desired.clone();
            if let Some(d) = desired.as_object_mut() {
                d.remove("status");
            }
            three_way_merge(&mut json, last.as_ref(), &desired);
            if let Some(m) = json
                .pointer_mut("/metadata/annotations")
                .and_then(|a| a.as_object_mut())
            {
                m.insert(
                    LAST_APPLIED.into(),
                    serde_json::Value::String(last_applied.clone()),
                );
            } else if let Some(m) = json
                .pointer_mut("/metadata")
                .and_then(|a| a.as_object_mut())
            {
                m.insert(
                    "annotations".into(),
                    serde_json::json!({ LAST_APPLIED: last_applied }),
                );
            }
            let mut merged = kind
                .from_json_value(json)
                .map_err(|e| StoreError::Invalid {
                    kind,
                    name: obj.name().to_string(),
                    source: manifest::path_error(&e),
                })?;
            merged.meta_mut().resource_version = cur.revision.to_string();
            match self.write(merged, UpdateMode::Spec, dry_run).await {
                Ok(o) => {
                    let changed = o.meta().resource_version != cur.revision.to_string();
                    return Ok((o, changed));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}
