//! Where the controller's metric values come from: [`MetricsClient`], served in production by
//! `coxswain.v1.Metrics` over gRPC ([`GrpcMetrics`]) and in tests by [`FakeMetrics`]. Errors
//! are the texts the decision wraps as upstream's metrics clients' errors.
use std::collections::BTreeMap;
use std::sync::Mutex;

use coxswain_api::v1::metrics_client::MetricsClient as MetricsGrpc;
use coxswain_api::v1::{
    CrossVersionObjectReference, ExternalMetricValue, GetExternalMetricRequest,
    GetObjectMetricRequest, GetPodsMetricRequest, ListPodMetricsRequest, MetricValue,
    ObjectReference, PodMetrics,
};
use tonic::transport::Channel;
use tonic::Code;

/// The metrics APIs the HPA reads (metrics.k8s.io, custom.metrics.k8s.io,
/// external.metrics.k8s.io).
#[tonic::async_trait]
pub trait MetricsClient: Send + Sync {
    /// PodMetrics of the pods of `namespace` matching `selector`.
    async fn pod_metrics(&self, namespace: &str, selector: &str)
        -> Result<Vec<PodMetrics>, String>;
    /// A Pods metric's values.
    async fn pods_metric(
        &self,
        namespace: &str,
        metric: &str,
        selector: &str,
        metric_selector: &str,
    ) -> Result<Vec<MetricValue>, String>;
    /// An Object metric's value.
    async fn object_metric(
        &self,
        namespace: &str,
        object: &CrossVersionObjectReference,
        metric: &str,
        metric_selector: &str,
    ) -> Result<MetricValue, String>;
    /// An External metric's series.
    async fn external_metric(
        &self,
        namespace: &str,
        metric: &str,
        metric_selector: &str,
    ) -> Result<Vec<ExternalMetricValue>, String>;
}

/// `coxswain.v1.Metrics` over gRPC.
#[derive(Clone)]
pub struct GrpcMetrics {
    inner: MetricsGrpc<Channel>,
}

impl GrpcMetrics {
    /// Connects on first use (and reconnects), like the store client.
    pub fn lazy(url: &str) -> anyhow::Result<GrpcMetrics> {
        Self::lazy_as(url, "")
    }

    /// [`GrpcMetrics::lazy`] with the credentials of one component of this process
    /// (`coxswain_client::config::install_as`; the process-wide ones when it has none).
    pub fn lazy_as(url: &str, component: &str) -> anyhow::Result<GrpcMetrics> {
        let ep = tonic::transport::Endpoint::from_shared(url.to_string())?
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(30));
        // Through the client library's connector: a wrong scheme fails naming the right one.
        let ch = coxswain_client::scheme::connect_lazy(&coxswain_client::config::secure_as(
            ep, url, component,
        )?);
        Ok(GrpcMetrics {
            inner: MetricsGrpc::new(ch).max_decoding_message_size(256 << 20),
        })
    }
}

fn unavailable(s: &tonic::Status) -> String {
    if let Some(m) = coxswain_client::scheme::find(s) {
        m
    } else if s.code() == Code::Unimplemented {
        "the server could not find the requested resource".into()
    } else {
        s.message().to_string()
    }
}

#[tonic::async_trait]
impl MetricsClient for GrpcMetrics {
    async fn pod_metrics(
        &self,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<PodMetrics>, String> {
        self.inner
            .clone()
            .list_pod_metrics(ListPodMetricsRequest {
                namespace: namespace.into(),
                label_selector: selector.into(),
            })
            .await
            .map(|r| r.into_inner().items)
            .map_err(|s| unavailable(&s))
    }

    async fn pods_metric(
        &self,
        namespace: &str,
        metric: &str,
        selector: &str,
        metric_selector: &str,
    ) -> Result<Vec<MetricValue>, String> {
        match self
            .inner
            .clone()
            .get_pods_metric(GetPodsMetricRequest {
                namespace: namespace.into(),
                metric_name: metric.into(),
                label_selector: selector.into(),
                metric_selector: metric_selector.into(),
            })
            .await
        {
            Ok(r) => Ok(r.into_inner().items),
            Err(s) if s.code() == Code::NotFound => Ok(vec![]),
            Err(s) => Err(unavailable(&s)),
        }
    }

    async fn object_metric(
        &self,
        namespace: &str,
        object: &CrossVersionObjectReference,
        metric: &str,
        metric_selector: &str,
    ) -> Result<MetricValue, String> {
        self.inner
            .clone()
            .get_object_metric(GetObjectMetricRequest {
                described_object: Some(ObjectReference {
                    kind: object.kind.clone(),
                    namespace: namespace.into(),
                    name: object.name.clone(),
                    api_version: object.api_version.clone(),
                    ..Default::default()
                }),
                metric_name: metric.into(),
                metric_selector: metric_selector.into(),
            })
            .await
            .map(|r| r.into_inner())
            .map_err(|s| unavailable(&s))
    }

    async fn external_metric(
        &self,
        namespace: &str,
        metric: &str,
        metric_selector: &str,
    ) -> Result<Vec<ExternalMetricValue>, String> {
        match self
            .inner
            .clone()
            .get_external_metric(GetExternalMetricRequest {
                namespace: namespace.into(),
                metric_name: metric.into(),
                metric_selector: metric_selector.into(),
            })
            .await
        {
            Ok(r) => Ok(r.into_inner().items),
            Err(s) if s.code() == Code::NotFound => Ok(vec![]),
            Err(s) => Err(unavailable(&s)),
        }
    }
}

/// Canned values for tests: pod metrics by namespace, and custom/external values by name.
#[derive(Default)]
pub struct FakeMetrics {
    pub pods: Mutex<BTreeMap<String, Result<Vec<PodMetrics>, String>>>,
    pub pods_metrics: Mutex<BTreeMap<String, Vec<MetricValue>>>,
    pub object_metrics: Mutex<BTreeMap<String, MetricValue>>,
    pub external_metrics: Mutex<BTreeMap<String, Vec<ExternalMetricValue>>>,
}

#[tonic::async_trait]
impl MetricsClient for FakeMetrics {
    async fn pod_metrics(&self, namespace: &str, _: &str) -> Result<Vec<PodMetrics>, String> {
        self.pods
            .lock()
            .expect("lock")
            .get(namespace)
            .cloned()
            .unwrap_or(Ok(vec![]))
    }
    async fn pods_metric(
        &self,
        _: &str,
        m: &str,
        _: &str,
        _: &str,
    ) -> Result<Vec<MetricValue>, String> {
        Ok(self
            .pods_metrics
            .lock()
            .expect("lock")
            .get(m)
            .cloned()
            .unwrap_or_default())
    }
    async fn object_metric(
        &self,
        _: &str,
        _: &CrossVersionObjectReference,
        m: &str,
        _: &str,
    ) -> Result<MetricValue, String> {
        self.object_metrics
            .lock()
            .expect("lock")
            .get(m)
            .cloned()
            .ok_or_else(|| format!("metric {m} not found"))
    }
    async fn external_metric(
        &self,
        _: &str,
        m: &str,
        _: &str,
    ) -> Result<Vec<ExternalMetricValue>, String> {
        Ok(self
            .external_metrics
            .lock()
            .expect("lock")
            .get(m)
            .cloned()
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// `http://` to a TLS server (which answers HTTP/2's preface with a TLS alert) fails naming
    /// `https://`, as every client of the store does.
    #[tokio::test]
    async fn a_wrong_scheme_is_named() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 64];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32])
                    .await;
            }
        });
        let m = GrpcMetrics::lazy(&format!("http://{addr}")).unwrap();
        let err = m.pod_metrics("default", "").await.unwrap_err();
        assert!(
            err.contains(&format!(
                "the server at {addr} speaks TLS: use https://{addr}"
            )),
            "{err}"
        );
    }
}
