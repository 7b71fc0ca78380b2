//! Label selectors checked as upstream at the API: a bad selector in an object (Deployment,
//! pod template affinity or topology spread) is refused naming the field and nothing is stored;
//! a bad `-l` fails with the rule it breaks, a good one keeps working.
use coxswain_test_support::objects::nginx_deployment;
use coxswain_test_support::Coxswain;

fn refused(c: &Coxswain, yaml: &str, want: &str) {
    let e = c
        .coxctl_in(&["apply", "-f", "-"], None, Some(yaml))
        .failure();
    assert!(e.stderr.contains("(Invalid)"), "{}", e.stderr);
    assert!(e.stderr.contains(want), "want {want:?} in {}", e.stderr);
}

#[test]
fn bad_label_selectors_are_refused_naming_the_field() {
    let c = Coxswain::start_fast_up(&["--runtime", "sim", "--nodes", "1"]).expect("start up");

    // Create: In without values; nothing stored.
    let no_values = nginx_deployment("bad", 1).replace(
        "    matchLabels: {app: bad}\n",
        "    matchLabels: {app: bad}\n    matchExpressions:\n    - {key: tier, operator: In}\n",
    );
    refused(
        &c,
        &no_values,
        "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
    );
    let got = c.coxctl(&["get", "deployment", "bad"]).failure();
    assert!(got.stderr.contains("NotFound"), "{}", got.stderr);

    // Create: a bad key and an Exists with values.
    let bad_key = nginx_deployment("bad", 1).replace(
        "    matchLabels: {app: bad}\n",
        "    matchLabels: {app: bad}\n    matchExpressions:\n    - {key: -tier, operator: Exists, values: [a]}\n",
    );
    let e = c
        .coxctl_in(&["apply", "-f", "-"], None, Some(&bad_key))
        .failure();
    for want in [
        "spec.selector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        "spec.selector.matchExpressions[0].key: Invalid value: \"-tier\": name part must consist of alphanumeric characters",
    ] {
        assert!(e.stderr.contains(want), "want {want:?} in {}", e.stderr);
    }
    c.coxctl(&["get", "deployment", "bad"]).failure();

    // Update: a good Deployment, then its template gains a bad topology spread selector; the
    // stored object keeps its template.
    c.apply(&nginx_deployment("web", 1)).success();
    let spread = nginx_deployment("web", 1).replace(
        "      containers:\n",
        "      topologySpreadConstraints:\n      - maxSkew: 1\n        topologyKey: zone\n        whenUnsatisfiable: DoNotSchedule\n        labelSelector:\n          matchLabels: {app: web_}\n      containers:\n",
    );
    refused(
        &c,
        &spread,
        "spec.template.spec.topologySpreadConstraints[0].labelSelector.matchLabels: Invalid value: \"web_\": a valid label must be an empty string",
    );
    let d = c.json(&["get", "deployment", "web"]);
    assert!(
        d["spec"]["template"]["spec"]["topologySpreadConstraints"].is_null(),
        "{d}"
    );

    // kubectl-style -l: a good selector lists, a bad one names the rule.
    c.coxctl(&["get", "deployments", "-l", "app in (web),tier!=x"])
        .success();
    let e = c
        .coxctl(&["get", "deployments", "-l", "app=-web"])
        .failure();
    assert!(
        e.stderr
            .contains("values[0][app]: Invalid value: \"-web\": a valid label must be"),
        "{}",
        e.stderr
    );
}
