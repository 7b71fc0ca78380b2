//! Helpers the tests of this binary share: a manifest file, an object as JSON.
use coxswain_test_support::Coxswain;

pub fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).expect("write manifest");
    p.display().to_string()
}

pub fn get_json(c: &Coxswain, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&c.coxctl(&a).success().stdout).expect("json")
}
