//! `ObjectStore/BindBatch`: many pods/binding subresources in one call, for the scheduler's
//! batched binding cycle (issue 17 §2).
//!
//! Each binding is exactly one `Bind`: authorized on its own (`create pods/binding` on that
//! pod, so a batch is N checks), validated and applied by [`crate::Store::bind`] with the same
//! preconditions (uid, not being deleted, not bound yet) and answered with its own status. One
//! failing binding fails nothing else. The bindings' writes are issued together, so the
//! backend's writer commits them in one write group (the embedded backend group-commits every
//! transaction waiting when it starts a group; etcd batches concurrent txns likewise).
//!
//! A binding may carry the Event its binder would create once it is bound (the scheduler's
//! `Scheduled` Event). It is decoded, authorized (`create events` in its namespace, the caller's
//! own right) and validated exactly as a `Create` of it, and it must be about the bound pod: all
//! decided before anything is written, and that admission is its result's `event`. A caller
//! without that right gets its bindings done and each Event refused (PERMISSION_DENIED): with
//! Kubernetes a scheduler that may bind but not write events binds and only its events fail,
//! since they are separate requests. An Event's problem is never the binding's outcome.
//!
//! The admitted Events of the bindings that succeeded are created after the bindings committed
//! and off the response path, as upstream's scheduler has its recorder write the Event after the
//! binding's response: the answer waits for the bindings' commit only, and one task per request
//! issues that request's Events together, so they commit in one further write group. A create
//! that fails then (the store shutting down, the name taken) is logged at WARN naming the pod; the
//! caller's recorder, as upstream's, creates the Event itself if a later repeat's patch finds it
//! missing. What waits there is bounded by what was bound: at most one Event per successful
//! binding (≤ [`MAX_BINDINGS`] per request), and a pod is bound once.
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use coxswain_api::v1::{
    BindBatchRequest, BindBatchResponse, BindEventResult, BindRequest, BindResult,
};
use coxswain_api::{Kind, Object};
use tonic::{Request, Response, Status};

use super::ObjectStoreService;
use crate::error::bad_request;

/// A binding's Event once decoded and admitted, or why not.
type Admitted = Result<Object, Status>;

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
        // Every decision about the caller before anything is written: each binding's right, and
        // each carried Event decoded and admitted as a Create of it would be.
        let checked: Vec<(Result<(), Status>, Option<Admitted>)> = req
            .get_ref()
            .bindings
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let bind =
                    self.authorize(&req, "create", Kind::Pod, &b.namespace, &b.name, "binding");
                let event = b
                    .event
                    .as_ref()
                    .map(|any| self.admit_event(&req, i, b, any));
                (bind, event)
            })
            .collect();
        let (allowed, events): (Vec<_>, Vec<_>) = checked.into_iter().unzip();
        let bindings = req.into_inner().bindings;
        let store = &self.store;
        let bound = join_all(bindings.iter().zip(allowed).map(|(b, allowed)| async move {
            allowed?;
            let obj = store
                .bind(&b.namespace, &b.name, &b.uid, &b.node_name)
                .await?;
            Ok::<_, Status>(obj.meta().resource_version.clone())
        }))
        .await;
        // Committed: answer now; the Events of the bound pods follow.
        let mut to_create = Vec::new();
        let results = bound
            .into_iter()
            .zip(events)
            .zip(&bindings)
            .map(|((r, event), b)| match r {
                Ok(resource_version) => BindResult {
                    code: tonic::Code::Ok as i32,
                    message: String::new(),
                    resource_version,
                    event: event.map(|admitted| match admitted {
                        Ok(ev) => {
                            to_create.push((format!("{}/{}", b.namespace, b.name), ev));
                            BindEventResult {
                                code: tonic::Code::Ok as i32,
                                message: String::new(),
                            }
                        }
                        Err(s) => BindEventResult {
                            code: s.code() as i32,
                            message: s.message().to_string(),
                        },
                    }),
                },
                Err(s) => BindResult {
                    code: s.code() as i32,
                    message: s.message().to_string(),
                    resource_version: String::new(),
                    event: None,
                },
            })
            .collect();
        if !to_create.is_empty() {
            tokio::spawn(create_events(self.store.clone(), to_create));
        }
        Ok(Response::new(BindBatchResponse { results }))
    }

    /// Binding `i`'s Event, as the `Create` handler takes an object: decoded, authorized
    /// (`create events` in its namespace) and checked as any write of the caller; and about the
    /// pod it rides with, in that pod's namespace.
    fn admit_event(
        &self,
        req: &Request<BindBatchRequest>,
        i: usize,
        b: &BindRequest,
        any: &prost_types::Any,
    ) -> Result<Object, Status> {
        let obj =
            Object::from_any(any).map_err(|e| bad_request(format!("bindings[{i}].event: {e}")))?;
        let Object::Event(ev) = &obj else {
            return Err(bad_request(format!(
                "bindings[{i}].event: Invalid value: {:?}: must be an Event",
                obj.kind().as_str()
            )));
        };
        let o = ev.involved_object.clone().unwrap_or_default();
        let uid_differs = !b.uid.is_empty() && !o.uid.is_empty() && o.uid != b.uid;
        if o.kind != "Pod" || o.namespace != b.namespace || o.name != b.name || uid_differs {
            return Err(bad_request(format!(
                "bindings[{i}].event.involvedObject: Invalid value: \"{}/{}/{}\": must be the \
                 bound pod {}/{}{}",
                o.kind,
                o.namespace,
                o.name,
                b.namespace,
                b.name,
                if uid_differs { " (another uid)" } else { "" }
            )));
        }
        if obj.namespace() != b.namespace {
            return Err(bad_request(format!(
                "bindings[{i}].event.metadata.namespace: Invalid value: {:?}: does not match \
                 involvedObject.namespace",
                obj.namespace()
            )));
        }
        self.authorize(req, "create", Kind::Event, &b.namespace, "", "")?;
        self.check_write(req, &obj)?;
        Ok(obj)
    }
}

/// Create the admitted Events of bound pods (`(pod, event)`), together so that they commit in
/// one write group, under the request's id (the writes are attributed to it as the request's
/// own). A failure is logged: the binding stands and the caller was answered already.
fn create_events(
    store: crate::Store,
    events: Vec<(String, Object)>,
) -> impl Future<Output = ()> + Send + 'static {
    let id = coxswain_client::trace::serving_id();
    let creates = async move {
        let store = &store;
        join_all(events.into_iter().map(|(pod, ev)| async move {
            if let Err(e) = store.create(ev, false).await {
                let s = Status::from(e);
                tracing::warn!(
                    pod = %pod,
                    code = ?s.code(),
                    reason = %s.message(),
                    "BindBatch: the Event admitted with the pod's binding was not created"
                );
            }
        }))
        .await;
    };
    let mut creates = Box::pin(creates);
    std::future::poll_fn(move |cx| {
        let _serving = id.as_ref().map(coxswain_client::trace::serving);
        creates.as_mut().poll(cx)
    })
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
            event: None,
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

    /// The Scheduled Event the scheduler sends with a binding.
    fn scheduled(name: &str, uid: &str, node: &str) -> prost_types::Any {
        Object::Event(coxswain_api::v1::Event {
            metadata: Some(coxswain_api::v1::ObjectMeta {
                name: format!("{name}.1"),
                namespace: "default".into(),
                ..Default::default()
            }),
            involved_object: Some(coxswain_api::v1::ObjectReference {
                kind: "Pod".into(),
                namespace: "default".into(),
                name: name.into(),
                uid: uid.into(),
                api_version: "v1".into(),
                ..Default::default()
            }),
            reason: "Scheduled".into(),
            message: format!("Successfully assigned default/{name} to {node}"),
            r#type: "Normal".into(),
            count: 1,
            ..Default::default()
        })
        .to_any()
    }

    fn with_event(mut b: BindRequest, event: prost_types::Any) -> BindRequest {
        b.event = Some(event);
        b
    }

    /// Until the store holds exactly the Events named `want` (they are created after the
    /// answer, by a task of their own), at most 5 s of the test's paused-or-not clock.
    async fn wait_events(s: &crate::Store, want: &[&str]) {
        let until = async {
            while event_names(s) != want {
                tokio::task::yield_now().await;
            }
        };
        if tokio::time::timeout(std::time::Duration::from_secs(5), until)
            .await
            .is_err()
        {
            panic!("events {:?}, want {want:?}", event_names(s));
        }
    }

    fn event_names(s: &crate::Store) -> Vec<String> {
        let l = s
            .list(Kind::Event, &Default::default())
            .expect("list events");
        let mut names: Vec<String> = l.items.iter().map(|o| o.name().to_string()).collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn a_bound_binding_creates_its_event_and_a_failed_one_writes_none() {
        let s = store().await;
        let a = pod(&s, "a").await;
        let b = pod(&s, "b").await;
        let c = pod(&s, "c").await;
        let d = pod(&s, "d").await;
        s.bind("default", "b", &b, "n0").await.expect("bind b");
        let svc = ObjectStoreService::new(s.clone());
        let mut not_an_event = scheduled("d", &d, "n1");
        not_an_event.type_url = Kind::ConfigMap.type_url();
        let req = BindBatchRequest {
            bindings: vec![
                with_event(binding("a", &a, "n1"), scheduled("a", &a, "n1")),
                // Conflicts: bound already, so its Event is not written.
                with_event(binding("b", &b, "n1"), scheduled("b", &b, "n1")),
                // Bound; its Event is about another pod: refused, the binding stands.
                with_event(binding("c", &c, "n1"), scheduled("a", &a, "n1")),
                with_event(binding("d", &d, "n1"), not_an_event),
            ],
        };
        let r = svc
            .bind_batch_inner(Request::new(req))
            .await
            .expect("batch")
            .into_inner()
            .results;
        let codes: Vec<tonic::Code> = r.iter().map(|r| tonic::Code::from(r.code)).collect();
        use tonic::Code::*;
        assert_eq!(codes, [Ok, Aborted, Ok, Ok], "{r:?}");
        let ev = |i: usize| {
            r[i].event
                .as_ref()
                .map(|e| (tonic::Code::from(e.code), e.message.clone()))
        };
        assert_eq!(ev(0), Some((Ok, String::new())));
        assert_eq!(ev(1), None, "a failed binding answers no Event outcome");
        let (code, msg) = ev(2).expect("c's event outcome");
        assert_eq!(code, InvalidArgument);
        assert!(
            msg.starts_with("bindings[2].event.involvedObject: Invalid value: \"Pod/default/a\""),
            "{msg}"
        );
        let (code, msg) = ev(3).expect("d's event outcome");
        assert_eq!(code, InvalidArgument);
        assert!(msg.starts_with("bindings[3].event"), "{msg}");
        assert_eq!(node_of(&s, "c"), "n1");
        assert_eq!(node_of(&s, "d"), "n1");
        // Answered before the Event is written (its task has not run yet on this runtime's one
        // thread); then exactly a's Event, as sent.
        assert!(event_names(&s).is_empty(), "{:?}", event_names(&s));
        wait_events(&s, &["a.1"]).await;
        let Object::Event(e) = s.get(Kind::Event, "default", "a.1").expect("a.1") else {
            unreachable!()
        };
        assert_eq!(e.reason, "Scheduled");
        assert_eq!(e.message, "Successfully assigned default/a to n1");
        assert_eq!(e.involved_object.unwrap_or_default().uid, a);
        // The same Event again (a's binding retried): the binding conflicts, nothing is written.
        let again = BindBatchRequest {
            bindings: vec![with_event(binding("a", &a, "n1"), scheduled("a", &a, "n1"))],
        };
        let r = svc
            .bind_batch_inner(Request::new(again))
            .await
            .expect("batch")
            .into_inner()
            .results;
        assert_eq!(tonic::Code::from(r[0].code), Aborted);
        assert_eq!(event_names(&s), ["a.1"]);
    }

    #[tokio::test]
    async fn an_admitted_event_whose_create_fails_later_leaves_the_binding_and_the_answer() {
        let s = store().await;
        let a = pod(&s, "a").await;
        let b = pod(&s, "b").await;
        // a's Event name is taken already: its create fails after the answer (logged).
        let Object::Event(mut taken) = Object::from_any(&scheduled("a", &a, "n0")).expect("ev")
        else {
            unreachable!()
        };
        taken.message = "taken".into();
        s.create(Object::Event(taken), false).await.expect("taken");
        let svc = ObjectStoreService::new(s.clone());
        let req = BindBatchRequest {
            bindings: vec![
                with_event(binding("a", &a, "n1"), scheduled("a", &a, "n1")),
                with_event(binding("b", &b, "n1"), scheduled("b", &b, "n1")),
            ],
        };
        let r = svc
            .bind_batch_inner(Request::new(req))
            .await
            .expect("batch")
            .into_inner()
            .results;
        for r in &r {
            assert_eq!(tonic::Code::from(r.code), tonic::Code::Ok, "{r:?}");
            let e = r.event.as_ref().expect("admission");
            assert_eq!(tonic::Code::from(e.code), tonic::Code::Ok, "{e:?}");
        }
        wait_events(&s, &["a.1", "b.1"]).await;
        let Object::Event(e) = s.get(Kind::Event, "default", "a.1").expect("a.1") else {
            unreachable!()
        };
        assert_eq!(e.message, "taken");
        assert_eq!(node_of(&s, "a"), "n1");
    }

    #[tokio::test]
    async fn an_event_is_authorized_as_its_create_and_refusing_it_keeps_the_binding() {
        let s = store().await;
        let a = pod(&s, "a").await;
        let b = pod(&s, "b").await;
        for doc in [
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: binder, namespace: default}\nrules: [{apiGroups: [\"\"], resources: [pods/binding], verbs: [create]}]\n",
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: jane, namespace: default}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: binder}\nsubjects: [{kind: User, name: jane}]\n",
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: recorder, namespace: default}\nrules: [{apiGroups: [\"\"], resources: [events], verbs: [create]}]\n",
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: joe, namespace: default}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: binder}\nsubjects: [{kind: User, name: joe}]\n",
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: joe-events, namespace: default}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: recorder}\nsubjects: [{kind: User, name: joe}]\n",
        ] {
            s.create(parse(doc), false).await.expect("rbac");
        }
        let svc = ObjectStoreService::new(s.clone());
        let call = |user: &str, name: &str, uid: &str| {
            let mut req = Request::new(BindBatchRequest {
                bindings: vec![with_event(
                    binding(name, uid, "n1"),
                    scheduled(name, uid, "n1"),
                )],
            });
            req.extensions_mut()
                .insert(crate::test_builders::user(user, &[]));
            req
        };
        // jane may bind but not create events: bound, the Event refused in the result.
        let r = svc
            .bind_batch_inner(call("jane", "a", &a))
            .await
            .expect("batch")
            .into_inner()
            .results;
        assert_eq!(tonic::Code::from(r[0].code), tonic::Code::Ok, "{r:?}");
        let e = r[0].event.as_ref().expect("event outcome");
        assert_eq!(
            tonic::Code::from(e.code),
            tonic::Code::PermissionDenied,
            "{e:?}"
        );
        assert!(e.message.contains("events"), "{e:?}");
        assert_eq!(node_of(&s, "a"), "n1");
        assert!(event_names(&s).is_empty());
        // joe may do both.
        let r = svc
            .bind_batch_inner(call("joe", "b", &b))
            .await
            .expect("batch")
            .into_inner()
            .results;
        assert_eq!(tonic::Code::from(r[0].code), tonic::Code::Ok, "{r:?}");
        assert_eq!(
            r[0].event.as_ref().map(|e| tonic::Code::from(e.code)),
            Some(tonic::Code::Ok),
            "{r:?}"
        );
        wait_events(&s, &["b.1"]).await;
    }
}
