//! What a container needs from the store before it starts: env from ConfigMaps and Secrets,
//! configMap/secret/projected volume files, and the projected volumes' periodic refresh.
use super::*;
/// While the pod runs, its projected volumes are written again every `volume_sync` (a
/// ServiceAccount token is renewed before it expires: [`crate::projected`]).
pub(super) fn refresh_projected<R: Runtime>(sh: &Arc<Shared<R>>) {
    let Some(src) = sh.ctx.objects.clone() else {
        return;
    };
    if !sh.ctx.runtime.materializes_volumes() {
        return;
    }
    let volumes: Vec<_> = spec_of(&sh.pod())
        .volumes
        .iter()
        .filter_map(|v| Some((v.name.clone(), v.projected.clone()?)))
        .collect();
    if volumes.is_empty() {
        return;
    }
    let weak = Arc::downgrade(sh);
    let period = sh.ctx.config.volume_sync.max(Duration::from_millis(10));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            let Some(sh) = weak.upgrade() else {
                return;
            };
            for (name, p) in &volumes {
                match crate::projected::files(src.as_ref(), &sh.pod(), p).await {
                    Ok(files) => {
                        if let Err(e) = sh.ctx.runtime.write_volume(&sh.info, name, &files) {
                            tracing::warn!(pod = %sh.info.name, volume = %name, error = %e, "writing a projected volume");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(pod = %sh.info.name, volume = %name, error = %e, "refreshing a projected volume")
                    }
                }
            }
        }
    });
}

/// The container with env values from ConfigMaps/Secrets filled in (envFrom expanded, env
/// entries winning), after writing the pod's configMap/secret volume files. Err: the waiting
/// reason and message (CreateContainerConfigError, or ContainerCreating for a missing volume
/// source). Ok(None): the container needs nothing filled in and is used as it is.
pub(super) async fn prepare<R: Runtime>(
    sh: &Arc<Shared<R>>,
    c: &Container,
) -> Result<Option<Box<Container>>, (&'static str, String)> {
    let Some(src) = sh.ctx.objects.clone() else {
        return Ok(None);
    };
    let ns = sh.info.namespace.clone();
    let lower = |k: &str| {
        if k == "ConfigMap" {
            "configmap"
        } else {
            "secret"
        }
    };
    let fetch = |kind: &'static str, name: String, optional: bool| {
        let src = src.clone();
        let ns = ns.clone();
        async move {
            match src.data(kind, &ns, &name).await {
                Ok(Some(d)) => Ok(Some(d)),
                Ok(None) if optional => Ok(None),
                Ok(None) => Err(format!("{} \"{name}\" not found", lower(kind))),
                Err(e) => Err(e),
            }
        }
    };
    // Volumes first: a missing source keeps the pod in ContainerCreating.
    for v in spec_of(&sh.pod()).volumes.clone() {
        if let Some(p) = &v.projected {
            if !sh.ctx.runtime.materializes_volumes() {
                continue;
            }
            // A source made just after the pod (a new namespace's kube-root-ca.crt) is waited
            // for, at most one volume sync period, as the kubelet's volume manager retries.
            let deadline = tokio::time::Instant::now() + sh.ctx.config.volume_sync;
            let files = loop {
                match crate::projected::files(src.as_ref(), &sh.pod(), p).await {
                    Ok(files) => break files,
                    Err(_) if tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => {
                        return Err((
                            "ContainerCreating",
                            format!("MountVolume.SetUp failed for volume \"{}\" : {e}", v.name),
                        ))
                    }
                }
            };
            sh.ctx
                .runtime
                .write_volume(&sh.info, &v.name, &files)
                .map_err(|e| ("ContainerCreating", e))?;
            continue;
        }
        let (kind, name, optional, items) = if let Some(cm) = &v.config_map {
            (
                "ConfigMap",
                cm.name.clone(),
                cm.optional.unwrap_or(false),
                cm.items.clone(),
            )
        } else if let Some(sec) = &v.secret {
            (
                "Secret",
                sec.secret_name.clone(),
                sec.optional.unwrap_or(false),
                sec.items.clone(),
            )
        } else {
            continue;
        };
        let data = fetch(kind, name.clone(), optional).await.map_err(|e| {
            (
                "ContainerCreating",
                format!("MountVolume.SetUp failed for volume \"{}\" : {e}", v.name),
            )
        })?;
        let data = data.unwrap_or_default();
        let files: Data = if items.is_empty() {
            data
        } else {
            items
                .iter()
                .filter_map(|i| data.get(&i.key).map(|d| (i.path.clone(), d.clone())))
                .collect()
        };
        sh.ctx
            .runtime
            .write_volume(&sh.info, &v.name, &files)
            .map_err(|e| ("ContainerCreating", e))?;
    }
    if c.env_from.is_empty()
        && !c.env.iter().any(|e| {
            e.value_from
                .as_ref()
                .is_some_and(|f| f.config_map_key_ref.is_some() || f.secret_key_ref.is_some())
        })
    {
        return Ok(None);
    }
    let cfg = |e: String| ("CreateContainerConfigError", e);
    let mut env: Vec<coxswain_api::v1::EnvVar> = vec![];
    for from in &c.env_from {
        let (kind, name, optional) = if let Some(cm) = &from.config_map_ref {
            ("ConfigMap", cm.name.clone(), cm.optional.unwrap_or(false))
        } else if let Some(sec) = &from.secret_ref {
            ("Secret", sec.name.clone(), sec.optional.unwrap_or(false))
        } else {
            continue;
        };
        if let Some(d) = fetch(kind, name, optional).await.map_err(cfg)? {
            for (k, v) in d {
                env.push(coxswain_api::v1::EnvVar {
                    name: format!("{}{k}", from.prefix),
                    value: String::from_utf8_lossy(&v).into_owned(),
                    value_from: None,
                });
            }
        }
    }
    for e in &c.env {
        let key_ref = e.value_from.as_ref().and_then(|f| {
            f.config_map_key_ref
                .as_ref()
                .map(|r| {
                    (
                        "ConfigMap",
                        r.name.clone(),
                        r.key.clone(),
                        r.optional.unwrap_or(false),
                    )
                })
                .or_else(|| {
                    f.secret_key_ref.as_ref().map(|r| {
                        (
                            "Secret",
                            r.name.clone(),
                            r.key.clone(),
                            r.optional.unwrap_or(false),
                        )
                    })
                })
        });
        let Some((kind, name, key, optional)) = key_ref else {
            env.retain(|x| x.name != e.name);
            env.push(e.clone());
            continue;
        };
        let data = fetch(kind, name.clone(), optional).await.map_err(cfg)?;
        let value = match data.as_ref().and_then(|d| d.get(&key)) {
            Some(v) => String::from_utf8_lossy(v).into_owned(),
            None if optional => continue,
            None => {
                return Err(cfg(format!(
                    "couldn't find key {key} in {kind} {}/{name}",
                    sh.info.namespace
                )))
            }
        };
        env.retain(|x| x.name != e.name);
        env.push(coxswain_api::v1::EnvVar {
            name: e.name.clone(),
            value,
            value_from: None,
        });
    }
    let mut c2 = c.clone();
    c2.env = env;
    c2.env_from.clear();
    Ok(Some(Box::new(c2)))
}
