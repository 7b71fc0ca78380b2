//! The build's version, as k8s.io/apimachinery's `version.Info`: what the store serves from
//! `ObjectStore/Version` and `coxctl version` prints for the client.
//!
//! `gitVersion` is `v` and the crate version; `gitCommit` and `buildDate` come from
//! `COXSWAIN_GIT_COMMIT` and `COXSWAIN_BUILD_DATE` at compile time when a release build sets
//! them (empty otherwise, so an ordinary build does not recompile on every commit);
//! `goVersion` names the Rust compiler and `platform` uses Go's names (`linux/amd64`).
use crate::v1::VersionInfo;

/// This build's version.
pub fn info() -> VersionInfo {
    let version = env!("CARGO_PKG_VERSION");
    let mut parts = version.split('.');
    let major = parts.next().unwrap_or_default().to_string();
    let minor = parts.next().unwrap_or_default().to_string();
    let commit = option_env!("COXSWAIN_GIT_COMMIT").unwrap_or_default();
    VersionInfo {
        major,
        minor,
        git_version: format!("v{version}"),
        git_commit: commit.to_string(),
        git_tree_state: if commit.is_empty() { "" } else { "clean" }.to_string(),
        build_date: option_env!("COXSWAIN_BUILD_DATE")
            .unwrap_or_default()
            .to_string(),
        go_version: env!("COXSWAIN_RUSTC_VERSION").to_string(),
        compiler: "rustc".to_string(),
        platform: platform(std::env::consts::OS, std::env::consts::ARCH),
    }
}

/// `GOOS/GOARCH` for Rust's OS and architecture names.
pub fn platform(os: &str, arch: &str) -> String {
    let arch = match arch {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    };
    let os = if os == "macos" { "darwin" } else { os };
    format!("{os}/{arch}")
}

/// The fields in the JSON shape `kubectl version -o json` prints (camelCase, every field).
pub fn to_json(v: &VersionInfo) -> serde_json::Value {
    serde_json::json!({
        "major": v.major,
        "minor": v.minor,
        "gitVersion": v.git_version,
        "gitCommit": v.git_commit,
        "gitTreeState": v.git_tree_state,
        "buildDate": v.build_date,
        "goVersion": v.go_version,
        "compiler": v.compiler,
        "platform": v.platform,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_names_this_build() {
        let v = info();
        assert_eq!(v.git_version, format!("v{}", env!("CARGO_PKG_VERSION")));
        assert_eq!(format!("{}.{}", v.major, v.minor), "0.1");
        assert!(v.go_version.starts_with("rustc "), "{}", v.go_version);
        assert_eq!(platform("linux", "x86_64"), "linux/amd64");
        assert_eq!(platform("macos", "aarch64"), "darwin/arm64");
        let j = to_json(&v);
        assert_eq!(j["gitVersion"], v.git_version.as_str());
        assert_eq!(j.as_object().map(|m| m.len()), Some(9));
    }
}
