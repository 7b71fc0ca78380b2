//! `version`, `api-resources`, `api-versions`.
use coxswain_api::Kind;

use crate::table;

pub fn version() -> String {
    format!("Client Version: v{}\n", env!("CARGO_PKG_VERSION"))
}

pub fn api_resources() -> String {
    let mut rows = vec![vec![
        "NAME".to_string(),
        "SHORTNAMES".into(),
        "APIVERSION".into(),
        "NAMESPACED".into(),
        "KIND".into(),
    ]];
    let mut kinds: Vec<Kind> = Kind::ALL.to_vec();
    kinds.sort_by_key(|k| (k.group().to_string(), k.plural()));
    for k in kinds {
        rows.push(vec![
            k.plural().to_string(),
            k.short_names().join(","),
            k.api_version().to_string(),
            k.namespaced().to_string(),
            k.as_str().to_string(),
        ]);
    }
    table::render(&rows)
}

pub fn api_versions() -> String {
    let mut v: Vec<&str> = Vec::new();
    for k in Kind::ALL {
        v.push(k.api_version());
        v.extend(k.other_api_versions().iter().copied());
    }
    v.sort();
    v.dedup();
    v.iter().map(|x| format!("{x}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_resources_lists_every_kind() {
        let out = api_resources();
        assert!(out.starts_with("NAME"));
        assert!(out.contains("deployments"));
        assert!(out.lines().any(|l| l.starts_with("pods ")
            && l.contains(" po ")
            && l.contains("true")
            && l.ends_with("Pod")));
        assert_eq!(out.lines().count(), Kind::ALL.len() + 1);
        assert!(api_versions().lines().any(|l| l == "apps/v1"));
        assert!(api_versions().lines().any(|l| l == "v1"));
    }
}
