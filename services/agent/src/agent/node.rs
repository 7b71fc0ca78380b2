//! A node's own objects: registration (the Node, taken over when it exists), the Lease
//! heartbeat, and the node status written when it changes and at least every report period.
use super::*;

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn os_image() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| std::env::consts::OS.to_string())
}

impl<R: Runtime> NodeAgent<R> {
    fn node_object(&self) -> Node {
        let c = &self.config;
        let mut labels = c.labels.clone();
        labels.insert("kubernetes.io/hostname".into(), c.name.clone());
        labels.insert("kubernetes.io/os".into(), std::env::consts::OS.into());
        labels.insert("kubernetes.io/arch".into(), arch().into());
        labels.insert("beta.kubernetes.io/os".into(), std::env::consts::OS.into());
        labels.insert("beta.kubernetes.io/arch".into(), arch().into());
        let mut annotations = std::collections::HashMap::new();
        annotations.insert(ENDPOINT_ANNOTATION.to_string(), c.endpoint.clone());
        annotations.insert("node.alpha.kubernetes.io/ttl".to_string(), "0".to_string());
        Node {
            metadata: Some(ObjectMeta {
                name: c.name.clone(),
                labels: labels.into_iter().collect(),
                annotations: annotations.into_iter().collect(),
                ..Default::default()
            }),
            spec: Some(NodeSpec {
                pod_cidr: format!("{}/24", c.pod_range),
                pod_cidrs: vec![format!("{}/24", c.pod_range)],
                taints: c.taints.clone(),
                ..Default::default()
            }),
            status: Some(self.node_status(None)),
            ..Default::default()
        }
    }

    fn node_status(&self, previous: Option<&NodeStatus>) -> NodeStatus {
        let c = &self.config;
        let now = now_rfc3339();
        let cond = |ty: &str, status: &str, reason: &str, message: &str| {
            let transition = previous
                .and_then(|p| p.conditions.iter().find(|x| x.r#type == ty))
                .filter(|x| x.status == status)
                .map(|x| x.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            Condition {
                r#type: ty.into(),
                status: status.into(),
                reason: reason.into(),
                message: message.into(),
                last_heartbeat_time: now.clone(),
                last_transition_time: transition,
                ..Default::default()
            }
        };
        let port = c
            .endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .unwrap_or(0);
        NodeStatus {
            capacity: c.capacity.clone().into_iter().collect(),
            allocatable: c.capacity.clone().into_iter().collect(),
            phase: String::new(),
            conditions: vec![
                cond(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                cond(
                    "DiskPressure",
                    "False",
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure",
                ),
                cond(
                    "PIDPressure",
                    "False",
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                ),
                cond(
                    "Ready",
                    "True",
                    "KubeletReady",
                    "kubelet is posting ready status",
                ),
            ],
            addresses: vec![
                NodeAddress {
                    r#type: "InternalIP".into(),
                    address: c.internal_ip().to_string(),
                },
                NodeAddress {
                    r#type: "Hostname".into(),
                    address: c.name.clone(),
                },
            ],
            node_info: Some(NodeSystemInfo {
                machine_id: c.name.clone(),
                system_uuid: c.name.clone(),
                boot_id: String::new(),
                kernel_version: kernel_version(),
                os_image: os_image(),
                container_runtime_version: self.ctx.runtime.version(),
                kubelet_version: format!("v{}-coxswain", env!("CARGO_PKG_VERSION")),
                kube_proxy_version: String::new(),
                operating_system: std::env::consts::OS.into(),
                architecture: arch().into(),
            }),
            daemon_endpoints: Some(NodeDaemonEndpoints {
                kubelet_endpoint: Some(DaemonEndpoint { port }),
            }),
        }
    }

    /// Registers the Node (or takes over an existing one: labels merged, status replaced).
    pub async fn register(&self) -> anyhow::Result<()> {
        let node = self.node_object();
        let uid = match self.client.create(&node).await {
            Ok(n) => n.metadata.map(|m| m.uid).unwrap_or_default(),
            Err(e) if e.is_already_exists() => {
                let Some(mut existing) = self.client.get::<Node>("", &self.config.name).await?
                else {
                    anyhow::bail!("node {} vanished during registration", self.config.name);
                };
                let want = node.metadata.clone().unwrap_or_default();
                let m = existing.metadata.get_or_insert_with(Default::default);
                for (k, v) in want.labels {
                    m.labels.insert(k, v);
                }
                for (k, v) in want.annotations {
                    m.annotations.insert(k, v);
                }
                m.resource_version.clear();
                let uid = m.uid.clone();
                self.client.update(&existing).await?;
                uid
            }
            Err(e) => return Err(e.into()),
        };
        let mut n = node.clone();
        n.metadata
            .get_or_insert_with(Default::default)
            .resource_version
            .clear();
        self.client.update_status(&n).await?;
        // The first heartbeat right away; later ones on the lease interval.
        self.renew_lease(&uid).await?;
        if let Ok(mut u) = self.node_uid.lock() {
            *u = uid;
        }
        Ok(())
    }

    async fn renew_lease(&self, node_uid: &str) -> Result<(), coxswain_client::Error> {
        let lease = Lease {
            metadata: Some(ObjectMeta {
                name: self.config.name.clone(),
                namespace: "kube-node-lease".into(),
                owner_references: if node_uid.is_empty() {
                    vec![]
                } else {
                    vec![OwnerReference {
                        api_version: "v1".into(),
                        kind: "Node".into(),
                        name: self.config.name.clone(),
                        uid: node_uid.into(),
                        ..Default::default()
                    }]
                },
                ..Default::default()
            }),
            spec: Some(LeaseSpec {
                holder_identity: Some(self.config.name.clone()),
                lease_duration_seconds: Some(self.config.lease_duration_seconds),
                renew_time: coxswain_api::time::now_rfc3339(),
                ..Default::default()
            }),
            ..Default::default()
        };
        match self.client.update(&lease).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => self.client.create(&lease).await.map(|_| ()),
            Err(e) => Err(e),
        }
    }

    /// Heartbeats: the Lease every lease_renew_interval (an Update, no read: the Node is read
    /// only while its UID is unknown, for the Lease's owner reference); the node status when it
    /// changed (or the node lifecycle controller changed it) and at least every
    /// status_report_frequency, checked against the node the informer has.
    pub async fn heartbeat(self: Arc<Self>) {
        let mut node_uid = self.node_uid.lock().map(|u| u.clone()).unwrap_or_default();
        // Nodes started together spread their heartbeats over the interval (by name).
        let h = self
            .config
            .name
            .bytes()
            .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
        let phase = |every: Duration| every.mul_f64((h % 1000) as f64 / 1000.0);
        let now = tokio::time::Instant::now();
        let mut lease_tick = tokio::time::interval_at(
            now + phase(self.config.lease_renew_interval),
            self.config.lease_renew_interval,
        );
        let mut status_tick = tokio::time::interval_at(
            now + phase(self.config.status_update_frequency),
            self.config.status_update_frequency,
        );
        lease_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_report = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = lease_tick.tick() => {
                    if node_uid.is_empty() {
                        if let Ok(Some(n)) = self.client.get::<Node>("", &self.config.name).await {
                            node_uid = n.metadata.map(|m| m.uid).unwrap_or_default();
                        }
                    }
                    if let Err(e) = self.renew_lease(&node_uid).await {
                        tracing::warn!(node = %self.config.name, error = %e, "lease renewal failed");
                    }
                }
                _ = status_tick.tick() => {
                    // The node as the informer has it (the kubelet reads its node lister first);
                    // from the store when the informer has not synced or does not have it.
                    let cached = self
                        .node_cache
                        .get()
                        .filter(|c| c.is_synced())
                        .and_then(|c| c.get("", &self.config.name));
                    let fetched = match cached {
                        Some(n) => Ok(Some(Node::clone(&n))),
                        None => self.client.get::<Node>("", &self.config.name).await,
                    };
                    let current = match fetched {
                        Ok(Some(n)) => n,
                        Ok(None) => {
                            // Deleted: register again, as the kubelet does.
                            node_uid.clear();
                            if let Err(e) = self.register().await {
                                tracing::warn!(node = %self.config.name, error = %e, "re-registration failed");
                            }
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!(node = %self.config.name, error = %e, "node get failed");
                            continue;
                        }
                    };
                    let prev = current.status.clone().unwrap_or_default();
                    let ours = self.node_status(Some(&prev));
                    let differs = ours.conditions.iter().any(|c| {
                        !prev.conditions.iter().any(|p| p.r#type == c.r#type && p.status == c.status)
                    }) || prev.capacity != ours.capacity
                        || prev.addresses != ours.addresses;
                    if differs || last_report.elapsed() >= self.config.status_report_frequency {
                        let mut n = current;
                        n.status = Some(ours);
                        if let Some(m) = n.metadata.as_mut() {
                            m.resource_version.clear();
                        }
                        match self.client.update_status(&n).await {
                            Ok(_) => last_report = tokio::time::Instant::now(),
                            Err(e) => tracing::warn!(node = %self.config.name, error = %e, "node status update failed"),
                        }
                    }
                }
            }
        }
    }
}
