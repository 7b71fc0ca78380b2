//! StatefulSets: the claim retention policy.
use std::collections::BTreeSet;

use coxswain_api::Resource;
use coxswain_client::{Client, ListParams};
use coxswain_test_support::wait_for;

use crate::common::{fake_kubelet, pods, up, Fate, T};

/// persistentVolumeClaimRetentionPolicy: whenScaled Delete removes a condemned pod's claim;
/// whenDeleted Delete removes the rest with the set. (The default, Retain, is in the sim test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_claim_retention_policy_delete() {
    use coxswain_api::v1::PersistentVolumeClaim;
    let cx = up();
    let c = Client::connect(&cx.url()).await.unwrap();
    let _k = fake_kubelet(c.clone(), "default", Fate::RunReady);
    let m = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  podManagementPolicy: Parallel\n  serviceName: web\n  persistentVolumeClaimRetentionPolicy:\n    whenDeleted: Delete\n    whenScaled: Delete\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: c\n        image: nginx\n  volumeClaimTemplates:\n  - metadata:\n      name: www\n    spec:\n      accessModes: [ReadWriteOnce]\n      resources:\n        requests:\n          storage: 1Gi\n";
    cx.coxctl_in(&["apply", "-f", "-"], None, Some(m)).success();
    let claims = || async {
        let (v, _) = c
            .list::<PersistentVolumeClaim>("default", &ListParams::default())
            .await
            .ok()?;
        Some(
            v.into_iter()
                .map(|p| p.metadata().name.clone())
                .collect::<BTreeSet<_>>(),
        )
    };
    wait_for("2 claims, 2 pods", T, || async {
        let cl = claims().await?;
        (cl.len() == 2 && pods(&c, "default").await.len() == 2).then_some(())
    })
    .await
    .unwrap();
    cx.coxctl(&["scale", "sts", "web", "--replicas=1"])
        .success();
    wait_for("www-web-1 deleted with web-1", T, || async {
        let cl = claims().await?;
        (cl == BTreeSet::from(["www-web-0".to_string()]) && pods(&c, "default").await.len() == 1)
            .then_some(())
    })
    .await
    .unwrap();
    cx.coxctl(&["delete", "sts", "web"]).success();
    wait_for("claims deleted with the set", T, || async {
        claims().await?.is_empty().then_some(())
    })
    .await
    .unwrap();
}
