//! Property tests of everything a client's bytes reach first: manifest parsing (YAML and JSON,
//! arbitrary and mutated real manifests), the nesting check, label selectors, quantities and
//! the protobuf decoding of every kind. None may panic or loop; parsers that print must read
//! back what they printed.
//!
//! CI runs the default number of cases (bounded, seconds). A longer run:
//! `PROPTEST_CASES=20000 cargo test --release -p coxswain-api --test properties`.
use std::path::PathBuf;

use coxswain_api::manifest::{check_nesting, parse_manifests, MAX_NESTING_DEPTH};
use coxswain_api::quantity::Quantity;
use coxswain_api::selector::LabelSelector;
use coxswain_api::{defaults, validation, Kind, Object};
use proptest::prelude::*;

fn scenario_texts() -> Vec<String> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/scenarios"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the scenarios beside the repository")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("readable"))
        .collect()
}

/// A real manifest with a few bytes replaced, inserted or cut.
fn mutated_manifest() -> impl Strategy<Value = String> {
    let texts = scenario_texts();
    (
        0..texts.len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    )
        .prop_map(move |(i, edits)| {
            let mut b = texts[i].clone().into_bytes();
            for (at, byte, op) in edits {
                if b.is_empty() {
                    break;
                }
                let at = at.index(b.len());
                // Printable ASCII and YAML's structural characters, so the parser gets deep.
                const CHARS: &[u8] = b" \n-:[]{},#'\"&*!|>%@`?0aZ";
                let c = CHARS[usize::from(byte) % CHARS.len()];
                match op {
                    0 => b[at] = c,
                    1 => b.insert(at, c),
                    _ => b.truncate(at),
                }
            }
            String::from_utf8_lossy(&b).into_owned()
        })
}

/// Run the whole admission path a manifest takes: parse, default, validate.
fn admit(text: &str) {
    if let Ok(parsed) = parse_manifests(text) {
        for p in parsed {
            let mut o = p.object;
            defaults::apply_defaults(&mut o);
            let _ = validation::validate(&o);
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics_the_manifest_parser(s in ".{0,400}") {
        admit(&s);
    }

    #[test]
    fn mutated_real_manifests_never_panic_admission(s in mutated_manifest()) {
        admit(&s);
    }

    #[test]
    fn nesting_is_refused_exactly_past_the_limit(
        depth in 1usize..300,
        open in prop::sample::select(vec!['[', '{']),
    ) {
        let (o, c, inner) = if open == '[' { ("[", "]", "1") } else { ("{a: ", "}", "1") };
        let text = format!("x: {}{}{}", o.repeat(depth), inner, c.repeat(depth));
        let r = check_nesting(&text, MAX_NESTING_DEPTH);
        prop_assert_eq!(r.is_ok(), depth <= MAX_NESTING_DEPTH);
        // The parser applies the same check.
        if depth > MAX_NESTING_DEPTH {
            prop_assert!(parse_manifests(&text).is_err());
        }
    }

    #[test]
    fn selectors_never_panic_and_read_back_what_they_print(s in "[a-z0-9=!,() .a-z/_-]{0,80}|.{0,80}") {
        if let Ok(sel) = LabelSelector::parse(&s) {
            let printed = sel.to_string();
            let again = LabelSelector::parse(&printed);
            prop_assert!(again.is_ok(), "{printed:?} does not parse back");
            prop_assert_eq!(again.unwrap().to_string(), printed);
        }
    }

    #[test]
    fn quantities_never_panic_and_canonical_forms_read_back(
        s in "[+-]?[0-9]{0,30}(\\.[0-9]{0,12})?([numkMGTPE]|[KMGTPE]i|[eE][+-]?[0-9]{1,4})?|.{0,40}"
    ) {
        if let Ok(q) = Quantity::parse(&s) {
            let c = q.canonical();
            let back = Quantity::parse(&c);
            prop_assert!(back.is_ok(), "{s:?} → {c:?} does not parse back");
            prop_assert_eq!(back.unwrap(), q, "{} → {}", s, c);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_object_decoding(
        kind in prop::sample::select(Kind::ALL.to_vec()),
        bytes in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let any = prost_types::Any { type_url: kind.type_url(), value: bytes };
        if let Ok(o) = Object::from_any(&any) {
            let mut o: Object = o;
            defaults::apply_defaults(&mut o);
            let _ = validation::validate(&o);
        }
    }
}
