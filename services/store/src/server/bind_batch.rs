//! `ObjectStore/BindBatch`: many pods/binding subresources in one call, for the scheduler's
//! batched binding cycle (issue 17 §2).
//!
//! Each binding is exactly one `Bind`: authorized on its own (`create pods/binding` on that
//! pod, so a batch is N checks), validated and applied by [`crate::Store::bind`] with the same
//! preconditions (uid, not being deleted, not bound yet) and answered with its own status. One
//! failing binding fails nothing else. The bindings' writes are issued together, so the
//! backend's writer commits them in one write group (the embedded backend group-commits every
//! transaction waiting when it starts a group; etcd batches concurrent txns likewise).
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use coxswain_api::v1::{BindBatchRequest, BindBatchResponse, BindResult};
use coxswain_api::Kind;
use tonic::{Request, Response, Status};

use super::ObjectStoreService;
use crate::error::bad_request;

/// The most bindings one BindBatch takes (INVALID_ARGUMENT beyond).
pub const MAX_BINDINGS: usize = 1000;

impl ObjectStoreService {
    pub(super) async fn bind_batch_inner(
        &self,
        req: Request<BindBatchRequest>,
    ) -> Result<Response<BindBatchResponse>, Status> {
        let n = req.get_ref().bindings.len();
        if n > MAX_BINDINGS {
            return Err(bad_request(format!(
                "bindings: Too many: {n}: must have at most {MAX_BINDINGS} items"
            )));
        }
        let allowed: Vec<Result<(), Status>> = req
            .get_ref()
            .bindings
            .iter()
            .map(|b| self.authorize(&req, "create", Kind::Pod, &b.namespace, &b.name, "binding"))
            .collect();
        let bindings = req.into_inner().bindings;
        let store = &self.store;
        let results = join_all(bindings.iter().zip(allowed).map(|(b, allowed)| async move {
            allowed?;
            let obj = store
                .bind(&b.namespace, &b.name, &b.uid, &b.node_name)
                .await?;
            Ok::<_, Status>(obj.meta().resource_version.clone())
        }))
        .await;
        let results = results
            .into_iter()
            .map(|r| match r {
                Ok(resource_version) => BindResult {
                    code: tonic::Code::Ok as i32,
                    message: String::new(),
                    resource_version,
                },
                Err(s) => BindResult {
                    code: s.code() as i32,
                    message: s.message().to_string(),
                    resource_version: String::new(),
                },
            })
            .collect();
        Ok(Response::new(BindBatchResponse { results }))
    }
}

/// Run the futures concurrently in this task (the request's task-locals, such as its
/// x-request-id, stay visible to each) and return their outputs in order.
async fn join_all<F: Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut futs: Vec<Pin<Box<F>>> = futs.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *o = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_api::v1::BindRequest;
    use coxswain_api::Object;

    /// A store with the default namespace's `default` ServiceAccount (pods name it).
    async fn store() -> crate::Store {
        let backend = std::sync::Arc::new(crate::backend::EmbeddedBackend::memory());
        let s = crate::Store::open(backend, Default::default())
            .await
            .expect("store");
        s.create(
            parse("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: default}\n"),
            false,
        )
        .await
        .expect("sa");
        s
    }

    fn parse(text: &str) -> Object {
        coxswain_api::manifest::parse_manifests(text)
            .expect("manifest")
            .remove(0)
            .object
    }

    async fn pod(s: &crate::Store, name: &str) -> String {
        let p = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default}}\n\
             spec: {{containers: [{{name: c, image: busybox}}]}}\n"
        );
        let obj = s.create(parse(&p), false).await.expect("pod");
        obj.meta().uid.clone()
    }

    fn binding(name: &str, uid: &str, node: &str) -> BindRequest {
        BindRequest {
            namespace: "default".into(),
            name: name.into(),
            uid: uid.into(),
            node_name: node.into(),
        }
    }

    fn node_of(s: &crate::Store, name: &str) -> String {
        match s.get(Kind::Pod, "default", name).expect("get") {
            Object::Pod(p) => p.spec.unwrap_or_default().node_name,
            _ => unreachable!(),
        }
    }

    #[tokio::test]
    async fn one_failing_binding_fails_nothing_else() {
        let s = store().await;
        let a = pod(&s, "a").await;
        let b = pod(&s, "b").await;
        let c = pod(&s, "c").await;
        // b is bound by someone else first: its binding in the batch conflicts.
        s.bind("default", "b", &b, "n0").await.expect("bind b");
        let svc = ObjectStoreService::new(s.clone());
        let req = BindBatchRequest {
            bindings: vec![
                binding("a", &a, "n1"),
                binding("b", &b, "n1"),
                binding("c", &c, "n2"),
                binding("c", &c, "n3"),
                binding("gone", "", "n1"),
                binding("a", "", ""),
            ],
        };
        let r = svc
            .bind_batch_inner(Request::new(req))
            .await
            .expect("batch")
            .into_inner()
            .results;
        let codes: Vec<tonic::Code> = r.iter().map(|r| tonic::Code::from(r.code)).collect();
        assert_eq!(
            codes,
            [
                tonic::Code::Ok,
                tonic::Code::Aborted,
                tonic::Code::Ok,
                tonic::Code::Aborted,
                tonic::Code::NotFound,
                tonic::Code::InvalidArgument,
            ],
            "{r:?}"
        );
        assert!(
            r[1].message.contains("already assigned to node \"n0\""),
            "{r:?}"
        );
        assert!(
            r[3].message.contains("already assigned to node \"n2\""),
            "{r:?}"
        );
        assert!(!r[0].resource_version.is_empty() && r[1].resource_version.is_empty());
        assert_eq!(node_of(&s, "a"), "n1");
        assert_eq!(node_of(&s, "b"), "n0");
        assert_eq!(node_of(&s, "c"), "n2");
    }

    #[tokio::test]
    async fn each_binding_is_authorized_on_its_own_and_the_size_is_bounded() {
        let s = store().await;
        let a = pod(&s, "a").await;
        let b = pod(&s, "b").await;
        s.create(
            parse("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r, namespace: default}\nrules: [{apiGroups: [\"\"], resources: [pods/binding], verbs: [create], resourceNames: [a]}]\n"),
            false,
        )
        .await
        .expect("role");
        s.create(
            parse("apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: rb, namespace: default}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}\nsubjects: [{kind: User, name: jane}]\n"),
            false,
        )
        .await
        .expect("binding");
        let svc = ObjectStoreService::new(s.clone());
        let mut req = Request::new(BindBatchRequest {
            bindings: vec![binding("a", &a, "n1"), binding("b", &b, "n1")],
        });
        req.extensions_mut()
            .insert(crate::test_builders::user("jane", &[]));
        let r = svc
            .bind_batch_inner(req)
            .await
            .expect("batch")
            .into_inner()
            .results;
        assert_eq!(tonic::Code::from(r[0].code), tonic::Code::Ok, "{r:?}");
        assert_eq!(
            tonic::Code::from(r[1].code),
            tonic::Code::PermissionDenied,
            "{r:?}"
        );
        assert_eq!(node_of(&s, "a"), "n1");
        assert_eq!(node_of(&s, "b"), "");
        let too_many = BindBatchRequest {
            bindings: (0..=MAX_BINDINGS)
                .map(|i| binding(&format!("p{i}"), "", "n"))
                .collect(),
        };
        let e = svc
            .bind_batch_inner(Request::new(too_many))
            .await
            .expect_err("too many");
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().starts_with("bindings: Too many: 1001"), "{e}");
    }
}
