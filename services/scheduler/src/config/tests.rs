//! The configuration's unit tests.
use super::*;

fn names(p: &Profile) -> (Vec<&str>, Vec<(&str, i64)>) {
    (
        p.filters.iter().map(|p| p.name()).collect(),
        p.scores.iter().map(|(p, w)| (p.name(), *w)).collect(),
    )
}

#[test]
fn empty_config_is_the_default_profile() {
    let c = SchedulerConfig::from_yaml("{}").unwrap();
    assert_eq!(c.profiles.len(), 1);
    let d = Profile::default_profile();
    assert_eq!(c.profiles[0].scheduler_name, "default-scheduler");
    assert_eq!(names(&c.profiles[0]), names(&d));
    assert_eq!(
        c.profiles[0]
            .post_filters
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>(),
        ["DefaultPreemption"]
    );
}

#[test]
fn enable_disable_weights_and_star() {
    let c = SchedulerConfig::from_yaml(
        r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 50
profiles:
- schedulerName: default-scheduler
  plugins:
    score:
      disabled:
      - name: NodeResourcesBalancedAllocation
      enabled:
      - name: NodeAffinity
        weight: 7
- schedulerName: no-scoring
  percentageOfNodesToScore: 100
  plugins:
    score:
      disabled:
      - name: "*"
    filter:
      disabled:
      - name: "*"
      enabled:
      - name: NodeName
      - name: TaintToleration
"#,
    )
    .unwrap();
    let p = c.profile("default-scheduler").unwrap();
    let (f, s) = names(p);
    assert_eq!(f, crate::plugins::DEFAULT_FILTERS);
    assert_eq!(
        s,
        // Upstream's order: a plugin re-configured at `score` comes first.
        [
            ("NodeAffinity", 7),
            ("TaintToleration", 3),
            ("NodeResourcesFit", 1),
            ("PodTopologySpread", 2),
            ("InterPodAffinity", 2),
        ]
    );
    assert_eq!(p.percentage_of_nodes_to_score, Some(50));
    let q = c.profile("no-scoring").unwrap();
    let (f, s) = names(q);
    assert_eq!(f, ["NodeName", "TaintToleration"]);
    assert!(s.is_empty());
    assert_eq!(q.percentage_of_nodes_to_score, Some(100));
}

#[test]
fn multi_point_disable_all_then_enable() {
    let c = SchedulerConfig::from_yaml(
        r#"
profiles:
- schedulerName: minimal
  plugins:
    multiPoint:
      disabled: [{name: "*"}]
      enabled: [{name: NodeName}, {name: NodeResourcesFit, weight: 4}]
"#,
    )
    .unwrap();
    let (f, s) = names(&c.profiles[0]);
    assert_eq!(f, ["NodeName", "NodeResourcesFit"]);
    assert_eq!(s, [("NodeResourcesFit", 4)]);
    assert!(c.profiles[0].post_filters.is_empty());
}

#[test]
fn plugin_config_args() {
    let c = SchedulerConfig::from_yaml(
        r#"
profiles:
- pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources: [{name: cpu, weight: 2}, {name: memory, weight: 1}]
  - name: InterPodAffinity
    args: {hardPodAffinityWeight: 5}
"#,
    )
    .unwrap();
    assert_eq!(c.profiles[0].scheduler_name, "default-scheduler");
}

#[test]
fn extenders() {
    let c = SchedulerConfig::from_yaml(
        r#"
extenders:
- urlPrefix: http://127.0.0.1:7070
  filterVerb: filter
  prioritizeVerb: prioritize
  weight: 3
  httpTimeout: 500ms
  ignorable: true
profiles:
- schedulerName: a
- schedulerName: b
  extenders:
  - address: http://127.0.0.1:7071
    bindVerb: bind
"#,
    )
    .unwrap();
    let a = &c.profile("a").unwrap().extenders;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].timeout, Duration::from_millis(500));
    assert!(a[0].ignorable && a[0].filter && a[0].prioritize && !a[0].bind);
    assert_eq!(a[0].weight, 3);
    let b = &c.profile("b").unwrap().extenders;
    assert_eq!(b.len(), 2);
    assert!(b[1].bind && !b[1].filter && !b[1].prioritize);
}

#[test]
fn errors_name_the_field() {
    for (yaml, want) in [
            (
                "profiles:\n- plugins:\n    score:\n      enabled:\n      - name: Nope\n",
                "profiles[0].plugins.score.enabled[0].name: Invalid value: \"Nope\": plugin is not registered",
            ),
            (
                "profiles:\n- schedulerName: a\n- schedulerName: a\n",
                "profiles[1].schedulerName: Duplicate value: \"a\"",
            ),
            (
                "percentageOfNodesToScore: 120\n",
                "percentageOfNodesToScore: Invalid value: 120: not in valid range [0-100]",
            ),
            (
                "profiles:\n- pluginConfig:\n  - name: NodeResourcesFit\n    args:\n      scoringStrategy:\n        type: Bogus\n",
                "profiles[0].pluginConfig[0].args: scoringStrategy.type: Unsupported value: \"Bogus\"",
            ),
            (
                "profiles:\n- pluginConfig:\n  - name: InterPodAffinity\n    args: {hardPodAffinityWeight: 500}\n",
                "profiles[0].pluginConfig[0].args: hardPodAffinityWeight: Invalid value: 500",
            ),
            (
                "extenders:\n- weight: 1\n",
                "extenders[0].urlPrefix: Required value",
            ),
            (
                "extenders:\n- urlPrefix: http://x\n  httpTimeout: soon\n",
                "extenders[0].httpTimeout: Invalid value: \"soon\"",
            ),
            (
                "profiles:\n- schedulerName: a\n  plugnis: {}\n",
                "profiles[0]: unknown field `plugnis`",
            ),
            ("kind: Pod\n", "kind: Invalid value: \"Pod\""),
        ] {
            let e = SchedulerConfig::from_yaml(yaml).unwrap_err().to_string();
            assert!(e.starts_with(want), "{yaml}\n got: {e}\nwant: {want}");
        }
}

#[test]
fn durations() {
    assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
    assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
    assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(parse_duration("x"), None);
}
