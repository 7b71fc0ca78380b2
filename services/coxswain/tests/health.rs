//! grpc.health.v1 on the real binary knows every service `coxswain up` serves (issue 16 §5),
//! and answers NotFound for a service it does not serve.
use coxswain_test_support::Coxswain;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

#[tokio::test]
async fn health_knows_every_served_service() {
    let c = Coxswain::start_fast_up(&[]).expect("start coxswain up");
    let channel = c.channel().await.expect("connect");
    let mut health = HealthClient::new(channel);
    for service in [
        "",
        "coxswain.v1.ObjectStore",
        "coxswain.v1.Scheduler",
        "coxswain.v1.Workloads",
        "coxswain.v1.NodeAgent",
        "coxswain.v1.Autoscaler",
        "coxswain.v1.Metrics",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("{service:?}: {e}"));
        assert_eq!(
            r.into_inner().status,
            ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    let e = health
        .check(HealthCheckRequest {
            service: "coxswain.v1.Nothing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
}
