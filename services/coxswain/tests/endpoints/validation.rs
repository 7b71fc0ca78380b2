//! Bad Service and EndpointSlice input: rejected with the field named, nothing stored.
use coxswain_test_support::wait_until;

use crate::common::{apply, arr, at, cluster, ep_ips, get_json, slices, wait_ep, T};

#[test]
fn bad_service_and_slice_input_names_the_field_and_stores_nothing() {
    let c = cluster(&["--runtime", "sim", "--nodes", "1"]);
    let bad = |yaml: &str, want: &[&str], name: &str, kind: &str| {
        let e = c
            .coxctl_in(&["apply", "-f", "-"], None, Some(yaml))
            .failure();
        assert!(e.stderr.contains("(Invalid)"), "{}", e.stderr);
        for w in want {
            assert!(e.stderr.contains(w), "want {w:?} in {}", e.stderr);
        }
        assert!(get_json(&c, &[kind, name]).is_none(), "{name} was stored");
    };
    bad(
        "apiVersion: v1\nkind: Service\nmetadata: {name: p0}\nspec:\n  selector: {a: b}\n  ports: [{port: 0}]\n",
        &["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"],
        "p0",
        "svc",
    );
    bad(
        "apiVersion: v1\nkind: Service\nmetadata: {name: p1}\nspec:\n  selector: {a: b}\n  ports: [{port: 70000, targetPort: \"-web\"}]\n",
        &[
            "spec.ports[0].port: Invalid value: 70000",
            "spec.ports[0].targetPort",
        ],
        "p1",
        "svc",
    );
    bad(
        "apiVersion: v1\nkind: Service\nmetadata: {name: dup}\nspec:\n  selector: {a: b}\n  ports: [{name: web, port: 80}, {name: web, port: 81}]\n",
        &["spec.ports[1].name: Duplicate value: \"web\""],
        "dup",
        "svc",
    );
    bad(
        "apiVersion: v1\nkind: Service\nmetadata: {name: np}\nspec:\n  selector: {a: b}\n  ports: [{port: 80, nodePort: 30080}]\n",
        &["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
        "np",
        "svc",
    );
    bad(
        "apiVersion: v1\nkind: Service\nmetadata: {name: en}\nspec: {type: ExternalName, externalName: example.com, ipFamilyPolicy: SingleStack}\n",
        &["spec.ipFamilyPolicy: Forbidden: may not be set for ExternalName services"],
        "en",
        "svc",
    );
    bad(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s1}\nendpoints: [{addresses: []}]\n",
        &[
            "addressType: Required value",
            "endpoints[0].addresses: Required value: must contain at least 1 address",
        ],
        "s1",
        "endpointslices",
    );
    bad(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s2}\naddressType: IPv4\nendpoints: [{addresses: [\"not-an-ip\"]}]\n",
        &["endpoints[0].addresses[0]: Invalid value: \"not-an-ip\": must be a valid IPv4 address"],
        "s2",
        "endpointslices",
    );

    // clusterIP is immutable once set; the Service keeps its address.
    apply(
        &c,
        "apiVersion: v1\nkind: Service\nmetadata: {name: keep}\nspec:\n  selector: {a: b}\n  ports: [{port: 80}]\n",
    );
    let ip = at(
        &get_json(&c, &["svc", "keep"]).expect("svc"),
        "spec.clusterIP",
    )
    .as_str()
    .expect("clusterIP")
    .to_string();
    let other = if ip.ends_with(".7") {
        format!("{}.8", ip.rsplit_once('.').expect("dotted").0)
    } else {
        format!("{}.7", ip.rsplit_once('.').expect("dotted").0)
    };
    let e = c
        .coxctl_in(
            &["apply", "-f", "-"],
            None,
            Some(&format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: keep}}\nspec:\n  clusterIP: {other}\n  selector: {{a: b}}\n  ports: [{{port: 80}}]\n"
            )),
        )
        .failure();
    assert!(e.stderr.contains("spec.clusterIP"), "{}", e.stderr);
    assert!(e.stderr.contains("field is immutable"), "{}", e.stderr);
    assert_eq!(
        at(
            &get_json(&c, &["svc", "keep"]).expect("svc"),
            "spec.clusterIP"
        ),
        ip.as_str()
    );

    // An ExternalName Service with a selector is accepted (as upstream) but gets no Endpoints
    // or slices; a selectorless Service keeps the Endpoints its user writes, and the
    // EndpointSliceMirroring controller mirrors them into a slice of its own.
    apply(
        &c,
        "apiVersion: v1
kind: Service
metadata: {name: ext}
spec: {type: ExternalName, externalName: example.com, selector: {app: web}}
---
apiVersion: v1
kind: Service
metadata: {name: manual}
spec:
  ports: [{port: 80}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: manual}
subsets: [{addresses: [{ip: 127.9.9.9}], ports: [{port: 80}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers: [{name: c, image: nginx}]
---
apiVersion: v1
kind: Service
metadata: {name: sentinel}
spec:
  selector: {app: web}
  ports: [{port: 80}]
",
    );
    // Once the controller has handled the later Service, it has seen the earlier ones too.
    wait_ep(
        &c,
        "default",
        "sentinel",
        "the sentinel Service's pod",
        |(r, _, _)| r.len() == 1,
    );
    wait_until("the sentinel's slice", T, || {
        (!slices(&c, "default", "sentinel").is_empty()).then_some(())
    })
    .expect("slice");
    assert!(get_json(&c, &["endpoints", "ext"]).is_none());
    assert!(slices(&c, "default", "ext").is_empty());
    let ep = get_json(&c, &["endpoints", "manual"]).expect("manual endpoints");
    assert_eq!(ep_ips(&ep).0, ["127.9.9.9"]);
    let mirrored = wait_until("the mirrored slice", T, || {
        let sl = slices(&c, "default", "manual");
        (!sl.is_empty()).then_some(sl)
    })
    .expect("mirrored");
    assert_eq!(mirrored.len(), 1);
    assert_eq!(
        mirrored[0]["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslicemirroring-controller.k8s.io"
    );
    assert_eq!(
        arr(&mirrored[0], "endpoints")
            .iter()
            .map(|e| (
                e["addresses"][0].as_str(),
                e["conditions"]["ready"].as_bool()
            ))
            .collect::<Vec<_>>(),
        vec![(Some("127.9.9.9"), Some(true))]
    );
}
