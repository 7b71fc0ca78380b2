//! Informers (Namespaces, Services, EndpointSlices, and Pods in `verified` pod mode) that keep the
//! [`Index`](crate::Index) current: each event updates one object's entry, so an answer reflects
//! a change as soon as its watch event arrives.
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use coxswain_api::v1;
use coxswain_client::{Cache, Client, Event, Informer, Resource};

use crate::index::{eps_from, svc_from};
use crate::{Dns, PodMode};

/// The running informers.
pub struct Watch {
    namespaces: Cache<v1::Namespace>,
    services: Cache<v1::Service>,
    endpoints: Cache<v1::EndpointSlice>,
    pods: Option<Cache<v1::Pod>>,
}

fn now_serial() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

fn pod_ips(p: &v1::Pod) -> Vec<IpAddr> {
    let Some(st) = &p.status else {
        return Vec::new();
    };
    let mut ips: Vec<IpAddr> = st
        .pod_ips
        .iter()
        .filter_map(|i| i.ip.parse().ok())
        .collect();
    if let Ok(ip) = st.pod_ip.parse() {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    ips
}

/// Start the informers on the current runtime; `dns` answers from what they see. The DNS
/// state is marked synced once every informer has listed once.
pub fn start(client: Client, dns: Arc<Dns>) -> Watch {
    let d = dns.clone();
    let namespaces = Informer::<v1::Namespace>::new(client.clone())
        .on_event(move |e| {
            let (name, present) = match e {
                Event::Added(o) | Event::Modified { new: o, .. } => (&o.metadata().name, true),
                Event::Deleted(o) => (&o.metadata().name, false),
                Event::Synced => return,
            };
            let mut ix = d.write();
            ix.set_namespace(name, present);
            ix.serial = now_serial();
        })
        .start();
    let d = dns.clone();
    let services = Informer::<v1::Service>::new(client.clone())
        .on_event(move |e| {
            let (o, new) = match e {
                Event::Added(o) | Event::Modified { new: o, .. } => (o, Some(svc_from(o))),
                Event::Deleted(o) => (o, None),
                Event::Synced => return,
            };
            let m = o.metadata();
            let mut ix = d.write();
            ix.set_service(&m.namespace, &m.name, new);
            ix.serial = now_serial();
        })
        .start();
    let d = dns.clone();
    let endpoints = Informer::<v1::EndpointSlice>::new(client.clone())
        .on_event(move |e| {
            let (o, new) = match e {
                Event::Added(o) | Event::Modified { new: o, .. } => (o, eps_from(o)),
                Event::Deleted(o) => (o, None),
                Event::Synced => return,
            };
            let m = o.metadata();
            let mut ix = d.write();
            match new {
                Some((svc, eps)) => ix.set_slice(&m.namespace, &m.name, Some((&svc, eps))),
                None => ix.set_slice(&m.namespace, &m.name, None),
            }
            ix.serial = now_serial();
        })
        .start();
    let pods = (dns.zone().pods == PodMode::Verified).then(|| {
        let d = dns.clone();
        Informer::<v1::Pod>::new(client)
            .on_event(move |e| {
                let (old, new) = match e {
                    Event::Added(o) => (None, Some(o)),
                    Event::Modified { old, new } => (Some(old), Some(new)),
                    Event::Deleted(o) => (Some(o), None),
                    Event::Synced => return,
                };
                let mut ix = d.write();
                if let Some(o) = old {
                    for ip in pod_ips(o) {
                        ix.pod_ip(&o.metadata().namespace, ip, false);
                    }
                }
                if let Some(n) = new {
                    for ip in pod_ips(n) {
                        ix.pod_ip(&n.metadata().namespace, ip, true);
                    }
                }
                ix.serial = now_serial();
            })
            .start()
    });
    let w = Watch {
        namespaces,
        services,
        endpoints,
        pods,
    };
    let (n, s, e, p) = (
        w.namespaces.clone(),
        w.services.clone(),
        w.endpoints.clone(),
        w.pods.clone(),
    );
    tokio::spawn(async move {
        n.wait_synced().await;
        s.wait_synced().await;
        e.wait_synced().await;
        if let Some(p) = p {
            p.wait_synced().await;
        }
        dns.set_synced(true);
        tracing::info!("dns: informers synced");
    });
    w
}

impl Watch {
    /// Wait until every informer has listed once.
    pub async fn wait_synced(&self) {
        self.namespaces.wait_synced().await;
        self.services.wait_synced().await;
        self.endpoints.wait_synced().await;
        if let Some(p) = &self.pods {
            p.wait_synced().await;
        }
    }

    pub fn stop(&self) {
        self.namespaces.stop();
        self.services.stop();
        self.endpoints.stop();
        if let Some(p) = &self.pods {
            p.stop();
        }
    }
}
