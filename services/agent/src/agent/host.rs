//! Several nodes in one process (`coxswain up --nodes N`, `coxswain agent --sim-nodes 1000`)
//! over one pod informer.
use super::*;

/// What a node's status check reads of its Node: the name and UID, and of the status the
/// conditions, capacity and addresses (a status write replaces the status only, so the rest of
/// the object is not needed to send it back).
fn status_check_view(node: Node) -> Node {
    let meta = node.metadata.unwrap_or_default();
    let status = node.status.unwrap_or_default();
    Node {
        metadata: Some(ObjectMeta {
            name: meta.name,
            uid: meta.uid,
            resource_version: meta.resource_version,
            ..Default::default()
        }),
        status: Some(NodeStatus {
            conditions: status.conditions,
            capacity: status.capacity,
            addresses: status.addresses,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Several nodes in one process over one pod informer.
pub struct Host<R: Runtime> {
    pub nodes: HashMap<String, Arc<NodeAgent<R>>>,
    pub client: Client,
}

impl<R: Runtime> Host<R> {
    /// Registers every node, starts heartbeats and usage sampling, and runs their pods.
    /// `field_selector`: for one node, `spec.nodeName=NAME`; for many, None (all pods,
    /// dispatched by spec.nodeName).
    pub async fn start(
        client: Client,
        runtime: Arc<R>,
        configs: Vec<NodeConfig>,
        pod_config: pod::Config,
    ) -> anyhow::Result<Arc<Host<R>>> {
        let mut nodes = HashMap::new();
        for c in configs {
            let n = NodeAgent::new(c, client.clone(), runtime.clone(), pod_config.clone());
            nodes.insert(n.config.name.clone(), n);
        }
        // Register (bounded concurrency).
        let sem = Arc::new(tokio::sync::Semaphore::new(64));
        let mut set = tokio::task::JoinSet::new();
        for n in nodes.values() {
            let n = n.clone();
            let sem = sem.clone();
            set.spawn(async move {
                let _p = sem.acquire().await;
                let mut delay = Duration::from_millis(100);
                loop {
                    match n.register().await {
                        Ok(()) => break,
                        Err(e) => {
                            tracing::warn!(node = %n.config.name, error = %e, "registration failed; retrying");
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(5));
                        }
                    }
                }
            });
        }
        while set.join_next().await.is_some() {}
        // The nodes' own Node objects, watched (the kubelet's node lister): one node's by its
        // name (all a node's credentials may list), several nodes' all.
        let mut node_informer = Informer::<Node>::new(client.clone());
        if nodes.len() == 1 {
            if let Some(name) = nodes.keys().next() {
                node_informer = node_informer.field_selector(format!("metadata.name={name}"));
            }
        }
        // What the status check reads of a node (its conditions, capacity and addresses), and
        // its name and UID: the rest is written, never read, so not kept (a sim host caches
        // every node).
        let node_cache = node_informer.transform(status_check_view).start();
        for n in nodes.values() {
            let _ = n.node_cache.set(node_cache.clone());
            tokio::spawn(n.clone().heartbeat());
            tokio::spawn(n.clone().sample_usage());
        }
        let host = Arc::new(Host {
            nodes,
            client: client.clone(),
        });
        let (tx, mut rx) = mpsc::unbounded_channel::<(Arc<Pod>, bool)>();
        let mut informer = Informer::<Pod>::new(client.clone());
        if host.nodes.len() == 1 {
            if let Some(name) = host.nodes.keys().next() {
                informer = informer.field_selector(format!("spec.nodeName={name}"));
            }
        } else {
            informer = informer.field_selector("spec.nodeName!=");
        }
        // Each pod is trimmed by the node it is bound to (`NodeAgent::trim`).
        let nodes = host.clone();
        let cache = informer
            .transform(move |pod: Pod| {
                let node = pod
                    .spec
                    .as_ref()
                    .map(|s| s.node_name.as_str())
                    .unwrap_or("");
                match nodes.nodes.get(node) {
                    Some(n) => n.trim(pod),
                    None => pod,
                }
            })
            .on_event(move |ev: &Event<Pod>| {
                let _ = match ev {
                    Event::Added(p) => tx.send((p.clone(), false)),
                    Event::Modified { new, .. } => tx.send((new.clone(), false)),
                    Event::Deleted(p) => tx.send((p.clone(), true)),
                    Event::Synced => Ok(()),
                };
            })
            .start();
        let h = host.clone();
        tokio::spawn(async move {
            let _cache = cache;
            while let Some((pod, deleted)) = rx.recv().await {
                let node = pod
                    .spec
                    .as_ref()
                    .map(|s| s.node_name.as_str())
                    .unwrap_or("");
                if let Some(n) = h.nodes.get(node) {
                    n.handle(pod, deleted);
                }
            }
        });
        Ok(host)
    }
}
