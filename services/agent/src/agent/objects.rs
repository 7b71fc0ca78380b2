//! ConfigMaps, Secrets and ServiceAccount tokens from the store, for env and volumes.
use super::*;

/// ConfigMaps, Secrets and ServiceAccount tokens from the store.
pub(super) struct StoreObjects {
    pub(super) client: Client,
    pub(super) tokens: crate::projected::TokenCache,
}

impl pod::ObjectSource for StoreObjects {
    fn token(&self, req: coxswain_api::v1::TokenRequest) -> pod::TokenFuture<'_> {
        Box::pin(async move {
            let key = (
                req.namespace.clone(),
                req.name.clone(),
                req.bound_object_ref
                    .as_ref()
                    .map(|b| b.uid.clone())
                    .unwrap_or_default(),
                req.audiences.join(","),
                req.expiration_seconds,
            );
            self.tokens
                .get(key, || async {
                    let now = coxswain_api::time::now_secs();
                    let status = self
                        .client
                        .create_token(req)
                        .await
                        .map_err(|e| e.to_string())?;
                    let exp = coxswain_api::time::parse_rfc3339(&status.expiration_timestamp)
                        .unwrap_or(now);
                    Ok((
                        status.token,
                        std::time::Duration::from_secs((exp - now).max(0) as u64),
                    ))
                })
                .await
        })
    }

    fn data<'a>(
        &'a self,
        kind: &'static str,
        namespace: &'a str,
        name: &'a str,
    ) -> pod::DataFuture<'a> {
        Box::pin(async move {
            let err = |e: coxswain_client::Error| e.to_string();
            if kind == "ConfigMap" {
                let Some(cm) = self
                    .client
                    .get::<coxswain_api::v1::ConfigMap>(namespace, name)
                    .await
                    .map_err(err)?
                else {
                    return Ok(None);
                };
                let mut d: pod::Data = cm
                    .data
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
                d.extend(cm.binary_data);
                Ok(Some(d))
            } else {
                let Some(sec) = self
                    .client
                    .get::<coxswain_api::v1::Secret>(namespace, name)
                    .await
                    .map_err(err)?
                else {
                    return Ok(None);
                };
                let mut d: pod::Data = sec.data.into_iter().collect();
                d.extend(
                    sec.string_data
                        .into_iter()
                        .map(|(k, v)| (k, v.into_bytes())),
                );
                Ok(Some(d))
            }
        })
    }
}
