//! What the store keeps on disk: the data directory's permissions and Secrets encrypted at
//! rest, with key rotation as upstream.
use std::path::Path;

use coxswain_test_support::Coxswain;

use crate::common::*;

const MANIFEST: &str = "apiVersion: v1
kind: Secret
metadata: {name: db, namespace: default}
data: {password: czNjcjN0LWF0LXJlc3QtNDcxMQ==}  # s3cr3t-at-rest-4711
---
apiVersion: v1
kind: ConfigMap
metadata: {name: plain, namespace: default}
data: {note: visible-at-rest-4711}
";

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn the_data_directory_is_0700_and_the_store_file_0600() {
    let c = Coxswain::start().expect("start coxswain");
    assert_eq!(mode(&c.data_dir), 0o700);
    assert_eq!(mode(&c.data_dir.join("coxswain.redb")), 0o600);
}

#[test]
fn secrets_are_encrypted_at_rest_and_keys_rotate_as_upstream() {
    let keys = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, providers: &str| {
        let p = keys.path().join(name);
        std::fs::write(
            &p,
            format!(
                "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n{providers}"
            ),
        )
        .expect("write config");
        p.to_string_lossy().into_owned()
    };
    let gcm = "      - aesgcm:\n          keys:\n            - {name: key1, secret: c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluaywgaXQgaXM=}\n";
    let cbc = "      - aescbc:\n          keys:\n            - {name: key2, secret: MDEyMzQ1Njc4OWFiY2RlZg==}\n";
    let first = write("first.yaml", &format!("{gcm}      - identity: {{}}\n"));
    let mut c = Coxswain::start_with(&["store", "--encryption-provider-config", &first], &[])
        .expect("start coxswain");
    c.apply(MANIFEST);
    let on_disk = store_files(&c.data_dir);
    assert!(
        contains(&on_disk, "visible-at-rest-4711"),
        "control: ConfigMaps are not encrypted"
    );
    assert!(
        !contains(&on_disk, "s3cr3t-at-rest-4711"),
        "the Secret is on disk in plain text"
    );
    assert!(
        !contains(&on_disk, "czNjcjN0LWF0LXJlc3QtNDcxMQ"),
        "the Secret is on disk in plain text"
    );
    assert!(contains(&on_disk, "k8s:enc:aesgcm:v1:key1:"));
    let got = c.coxctl(&["get", "secret", "db", "-o", "json"]).success();
    // base64("s3cr3t-at-rest-4711")
    assert!(
        got.stdout.contains("czNjcjN0LWF0LXJlc3QtNDcxMQ=="),
        "{}",
        got.stdout
    );

    // Rotation: a new aescbc key first, the old aesgcm key kept for reading.
    c.kill9();
    let rotated = write("rotated.yaml", &format!("{cbc}{gcm}"));
    c = restart_with(c, &rotated);
    let got = c.coxctl(&["get", "secret", "db", "-o", "json"]).success();
    assert!(
        got.stdout.contains("czNjcjN0LWF0LXJlc3QtNDcxMQ=="),
        "{}",
        got.stdout
    );
    c.apply(&MANIFEST.replace("name: db", "name: db2"));
    let on_disk = store_files(&c.data_dir);
    assert!(
        contains(&on_disk, "k8s:enc:aescbc:v1:key2:"),
        "new writes use the first provider"
    );

    // Without the key that wrote them, the data cannot be read: the server refuses to start.
    c.kill9();
    let only_cbc = write("cbc.yaml", cbc);
    c.set_args(&["store", "--encryption-provider-config", &only_cbc]);
    let e = c
        .restart()
        .expect_err("started without the key of the stored data");
    assert!(e.to_string().contains("no matching prefix found"), "{e}");
}

/// What the store keeps on disk: its redb file and its write-ahead log's segments (a write is in
/// the log when it is acknowledged, and in redb after the next checkpoint).
fn store_files(data_dir: &Path) -> Vec<u8> {
    let mut all = std::fs::read(data_dir.join("coxswain.redb")).expect("read the store file");
    for segment in std::fs::read_dir(data_dir.join("wal")).expect("the log directory") {
        // A segment redb holds may be deleted meanwhile: its contents are in redb then.
        if let Ok(bytes) = std::fs::read(segment.expect("a log entry").path()) {
            all.extend_from_slice(&bytes);
        }
    }
    all
}

/// A coxswain on `old`'s data directory with another encryption config.
fn restart_with(mut old: Coxswain, config: &str) -> Coxswain {
    old.set_args(&["store", "--encryption-provider-config", config]);
    old.restart().expect("restart");
    old
}
