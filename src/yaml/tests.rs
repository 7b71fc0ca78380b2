//! Table tests of YAML read as sigs.k8s.io/yaml reads it and written as kubectl writes it.
use serde_json::json;

use super::*;

fn one(text: &str) -> Json {
    to_json(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

#[test]
fn octal_hex_and_integers_read_as_yaml_1_1() {
    let cases = [
        ("defaultMode: 0644", json!({"defaultMode": 420})),
        ("defaultMode: 0400", json!({"defaultMode": 256})),
        ("defaultMode: 0o644", json!({"defaultMode": 420})),
        ("defaultMode: 420", json!({"defaultMode": 420})),
        ("defaultMode: '0644'", json!({"defaultMode": "0644"})),
        ("v: 0x1F", json!({"v": 31})),
        ("v: 0b101", json!({"v": 5})),
        ("v: 1_000", json!({"v": 1000})),
        ("v: +12", json!({"v": 12})),
        ("v: -3", json!({"v": -3})),
        ("v: 08", json!({"v": 8})),
        ("v: 1e3", json!({"v": 1000})),
        ("v: 1.0", json!({"v": 1})),
        ("v: 1.5", json!({"v": 1.5})),
        ("v: 18446744073709551615", json!({"v": u64::MAX})),
        ("v: 1.25.3", json!({"v": "1.25.3"})),
        ("image: nginx:1.25", json!({"image": "nginx:1.25"})),
        (
            "t: 2024-01-02T03:04:05Z",
            json!({"t": "2024-01-02T03:04:05Z"}),
        ),
        ("t: 12:30:00", json!({"t": "12:30:00"})),
    ];
    for (text, want) in cases {
        assert_eq!(one(text), want, "{text:?}");
    }
}

#[test]
fn booleans_and_nulls_read_as_go_yaml_v2() {
    let cases = [
        ("a: yes", json!({"a": true})),
        ("a: Yes", json!({"a": true})),
        ("a: YES", json!({"a": true})),
        ("a: y", json!({"a": true})),
        ("a: on", json!({"a": true})),
        ("a: True", json!({"a": true})),
        ("a: no", json!({"a": false})),
        ("a: N", json!({"a": false})),
        ("a: off", json!({"a": false})),
        ("a: FALSE", json!({"a": false})),
        ("a: yEs", json!({"a": "yEs"})),
        ("a: 'yes'", json!({"a": "yes"})),
        ("a: \"no\"", json!({"a": "no"})),
        ("a: !!str yes", json!({"a": "yes"})),
        ("a: ~", json!({"a": null})),
        ("a: null", json!({"a": null})),
        ("a:", json!({"a": null})),
        // Keys resolve too, and become JSON keys as sigs.k8s.io/yaml writes them.
        ("yes: 1", json!({"true": 1})),
        ("y: 1", json!({"true": 1})),
        ("n: 1", json!({"false": 1})),
        ("1: a", json!({"1": "a"})),
        ("1.5: a", json!({"1.5": "a"})),
        ("0644: a", json!({"420": "a"})),
    ];
    for (text, want) in cases {
        assert_eq!(one(text), want, "{text:?}");
    }
}

#[test]
fn tags_force_or_check_types() {
    assert_eq!(one("a: !!str 0644"), json!({"a": "0644"}));
    assert_eq!(one("a: !!int \"12\""), json!({"a": 12}));
    assert_eq!(one("a: !!float 3"), json!({"a": 3}));
    assert_eq!(one("a: !custom text"), json!({"a": "text"}));
    for bad in ["a: !!int abc", "a: !!bool 1", "a: !!binary aGVsbG8="] {
        assert!(
            matches!(to_json(bad), Err(YamlError::Invalid { .. })),
            "{bad}"
        );
    }
}

#[test]
fn anchors_aliases_and_merge_keys() {
    let text = "\
base: &base
  image: nginx
  ports: [80]
a: *base
b:
  <<: *base
  image: httpd
c:
  <<: [{x: 1}, {x: 2, w: 2}]
  w: 3
list:
- &item {name: one}
- *item
s: &s text
t: *s
";
    assert_eq!(
        one(text),
        json!({
            "base": {"image": "nginx", "ports": [80]},
            "a": {"image": "nginx", "ports": [80]},
            "b": {"image": "httpd", "ports": [80]},
            "c": {"x": 1, "w": 3},
            "list": [{"name": "one"}, {"name": "one"}],
            "s": "text",
            "t": "text",
        })
    );
    let e = to_json("a: *nowhere").unwrap_err();
    assert!(
        matches!(e, YamlError::Syntax { .. } | YamlError::Invalid { .. }),
        "{e}"
    );
    let e = to_json("a:\n  <<: 3\n").unwrap_err();
    assert!(e.to_string().contains("map merge"), "{e}");
}

#[test]
fn alias_bombs_are_refused() {
    // The billion laughs: each level doubles ten times.
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let e = to_json(&text).unwrap_err();
    assert!(e.to_string().contains("excessive aliasing"), "{e}");
}

#[test]
fn duplicate_keys_name_the_path_and_both_lines() {
    let cases = [
        ("a: 1\na: 2\n", "a", 2, 1),
        ("spec:\n  x: 1\n  # c\n  x: 2\n", "spec.x", 4, 2),
        (
            "spec:\n  containers:\n  - name: a\n    image: x\n    name: b\n",
            "spec.containers[0].name",
            5,
            3,
        ),
        ("m: {k: 1, k: 2}\n", "m.k", 1, 1),
        // Two spellings of one key are one key.
        ("yes: 1\ntrue: 2\n", "true", 2, 1),
        ("'a': 1\n\"a\": 2\n", "a", 2, 1),
    ];
    for (text, path, line, first) in cases {
        match to_json(text) {
            Err(YamlError::DuplicateKey {
                path: p,
                line: l,
                first_line: f,
                ..
            }) => assert_eq!((p.as_str(), l, f), (path, line, first), "{text:?}"),
            other => panic!("{text:?}: {other:?}"),
        }
    }
    // The same key in different mappings, and a merged key overridden, are not duplicates.
    assert!(to_json("a: {k: 1}\nb: {k: 2}\n").is_ok());
    assert!(to_json("x: &x {k: 1}\ny:\n  <<: *x\n  k: 2\n").is_ok());
}

#[test]
fn syntax_errors_carry_line_and_column() {
    match to_json("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [x\n") {
        Err(YamlError::Syntax { line, .. }) => assert!(line >= 4, "{line}"),
        other => panic!("{other:?}"),
    }
    let e = documents("a: 1\n---\nb: [\n", MAX_DEPTH).unwrap_err();
    assert_eq!(e.document, 2);
}

#[test]
fn nesting_is_bounded_for_block_and_flow_collections() {
    let mut deep = String::new();
    for i in 0..120 {
        deep.push_str(&format!("{}k{i}:\n", "  ".repeat(i)));
    }
    deep.push_str(&format!("{}v: 1\n", "  ".repeat(120)));
    let e = to_json(&deep).unwrap_err();
    assert!(e.to_string().contains("deeper than 100"), "{e}");
    let flat = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert!(to_json(&flat).is_ok());
}

#[test]
fn multi_document_streams() {
    let docs = documents("---\n# c\n---\na: 1\n---\n---\nb: 2\n...\n", MAX_DEPTH).unwrap();
    let non_null: Vec<&Json> = docs.iter().filter(|d| !d.is_null()).collect();
    assert_eq!(non_null, vec![&json!({"a": 1}), &json!({"b": 2})]);
    assert_eq!(documents("", MAX_DEPTH).unwrap().len(), 0);
    assert_eq!(
        documents("{\"a\": [1, 2.5, true, null]}", MAX_DEPTH).unwrap(),
        vec![json!({"a": [1, 2.5, true, null]})]
    );
}

#[test]
fn from_str_names_the_field_path() {
    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        num: u32,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
    }
    let e = from_str::<Outer>("items:\n- num: 1\n- m: 2\n").unwrap_err();
    assert!(e.starts_with("items[1].m: unknown field `m`"), "{e}");
    let o: Outer = from_str("items: [{num: 0644}]").unwrap();
    assert_eq!(o.items[0].num, 420);
}

#[test]
fn writes_as_kubectl_quotes() {
    let v = json!({
        "metadata": {
            "creationTimestamp": "2024-01-02T03:04:05Z",
            "labels": {"app": "web", "tier": "1", "enabled": "true", "on": "yes"},
            "annotations": {"a": "", "b": "*", "c": "a: b", "d": " x", "e": "it's", "f": "12:30",
                            "g": "0644", "h": "1.5", "i": "null", "j": "x # y", "k": "tab\there"},
        },
        "spec": {
            "replicas": 0,
            "ratio": 1.5,
            "ports": [{"port": 80}, {"port": 443, "name": "https"}],
            "args": ["-c", "echo hi"],
            "empty": {},
            "none": [],
            "nothing": null,
            "script": "line one\nline two\n",
            "nested": [[1, 2], []],
        },
    });
    let want = r#"metadata:
  annotations:
    a: ""
    b: '*'
    c: 'a: b'
    d: ' x'
    e: it's
    f: "12:30"
    g: "0644"
    h: "1.5"
    i: "null"
    j: 'x # y'
    k: "tab\there"
  creationTimestamp: "2024-01-02T03:04:05Z"
  labels:
    app: web
    enabled: "true"
    "on": "yes"
    tier: "1"
spec:
  args:
  - -c
  - echo hi
  empty: {}
  nested:
  - - 1
    - 2
  - []
  none: []
  nothing: null
  ports:
  - port: 80
  - name: https
    port: 443
  ratio: 1.5
  replicas: 0
  script: |
    line one
    line two
"#;
    assert_eq!(to_string(&v), want);
}

#[test]
fn written_yaml_reads_back_to_the_same_json() {
    let v = json!({
        "a": "x\n\n  indented\n",
        "b": "no trailing newline\nsecond",
        "c": "two trailing\n\n",
        "d": "a very long sentence that goes on and on past the eightieth column of the line so it folds somewhere",
        "e": "quotes ' and \" and \\ backslash",
        "f": "\u{1F600} emoji",
        "k8s": ["0", "1.0", "yes", "~", "-", "- x", "#", "@x", "`x"],
        "20": 1, "3": 2, "x10": 3, "x9": 4,
    });
    let text = to_string(&v);
    assert_eq!(to_json(&text).unwrap(), v, "{text}");
    // Natural key order: digits as numbers.
    let order: Vec<&str> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(' ') && !l.starts_with('-'))
        .map(|l| l.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(
        order,
        vec!["\"3\"", "\"20\"", "a", "b", "c", "d", "e", "f", "k8s", "x9", "x10"]
    );
}

/// go-yaml v2's stringv (kubernetes-sigs/yaml@742f5e6 goyaml.v2/encode.go): a string that
/// would resolve to another tag when plain (bool, null, int, float, timestamp, merge) or is a
/// base-60 float is double-quoted; one the emitter cannot write plain is single-quoted.
#[test]
fn strings_that_read_back_as_another_type_are_double_quoted() {
    let cases = [
        ("y", "\"y\""),
        ("N", "\"N\""),
        ("Off", "\"Off\""),
        ("~", "\"~\""),
        ("0x1F", "\"0x1F\""),
        ("0b101", "\"0b101\""),
        ("1_000", "\"1_000\""),
        ("1e3", "\"1e3\""),
        (".inf", "\".inf\""),
        ("-.Inf", "\"-.Inf\""),
        (".NaN", "\".NaN\""),
        ("2024-01-02", "\"2024-01-02\""),
        ("1:20", "\"1:20\""),
        ("-1:20:30.5", "\"-1:20:30.5\""),
        ("<<", "\"<<\""),
        // Strings all the same when plain.
        ("yEs", "yEs"),
        ("1.25.3", "1.25.3"),
        ("1:60", "1:60"),
        ("nginx:1.25", "nginx:1.25"),
        ("200m", "200m"),
        ("25%", "25%"),
        // Not writable plain: single quotes.
        ("-", "'-'"),
        ("- x", "'- x'"),
        ("{\"a\":1}", "'{\"a\":1}'"),
        ("x ", "'x '"),
        ("@x", "'@x'"),
    ];
    for (s, want) in cases {
        assert_eq!(to_string(&json!({"k": s})), format!("k: {want}\n"), "{s:?}");
    }
}
