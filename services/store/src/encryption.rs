//! Encryption at rest, as kube-apiserver's `--encryption-provider-config`: an
//! `EncryptionConfiguration` (apiserver.config.k8s.io/v1) names, per resource, an ordered list of
//! providers. The first provider encrypts every write; every provider is tried on read, by the
//! prefix the value carries, so keys can be rotated by adding the new key first and keeping the
//! old one after it until everything has been rewritten.
//!
//! Providers: `aescbc` (AES-CBC with PKCS#7 padding and a random IV), `aesgcm` (AES-GCM with a
//! random nonce, the storage key as additional authenticated data) and `identity` (plain). The
//! stored formats are upstream's: `k8s:enc:aescbc:v1:<key name>:` + IV + ciphertext, and
//! `k8s:enc:aesgcm:v1:<key name>:` + nonce + ciphertext and tag. The crypto is RustCrypto's
//! (`aes`, `cbc`, `aes-gcm`).
//!
//! [`EncryptedBackend`] wraps any [`Backend`]: values of the configured resources are encrypted
//! in transactions and decrypted in the snapshot and the change feed; keys and revisions are
//! untouched.
use std::path::Path;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine;
use bytes::Bytes;
use cbc::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use rand::RngCore;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::backend::{
    Backend, BackendError, BoxFuture, KeyValue, Op, RangePage, Snapshot, Started, Txn, TxnResult,
};

/// Every encrypted value starts with this (upstream refuses to read it through `identity`).
const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:";

#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Transform(String),
}

fn cfg(msg: impl Into<String>) -> EncryptionError {
    EncryptionError::Config(msg.into())
}

// === The configuration file ===

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    resources: Vec<ResourceFile>,
}

#[derive(Deserialize)]
struct ResourceFile {
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    providers: Vec<ProviderFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderFile {
    aescbc: Option<KeysFile>,
    aesgcm: Option<KeysFile>,
    identity: Option<serde_json::Value>,
    secretbox: Option<serde_json::Value>,
    kms: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct KeysFile {
    #[serde(default)]
    keys: Vec<KeyFile>,
}

#[derive(Deserialize)]
struct KeyFile {
    #[serde(default)]
    name: String,
    #[serde(default)]
    secret: String,
}

// === Transformers ===

#[derive(Clone)]
enum Cipher {
    Cbc128([u8; 16]),
    Cbc192([u8; 24]),
    Cbc256([u8; 32]),
    Gcm128(Box<aes_gcm::Aes128Gcm>),
    Gcm256(Box<aes_gcm::Aes256Gcm>),
    Gcm192(Box<aes_gcm::AesGcm<aes::Aes192, aes_gcm::aead::consts::U12>>),
}

/// One way to read and write a value: a prefix and a cipher (none: identity).
#[derive(Clone)]
struct Transformer {
    prefix: Vec<u8>,
    cipher: Option<Cipher>,
}

fn encrypt_cbc<C>(key: &[u8], iv: &[u8; 16], data: &[u8]) -> Vec<u8>
where
    cbc::Encryptor<C>: KeyIvInit + BlockEncryptMut,
    C: cbc::cipher::BlockEncryptMut + cbc::cipher::BlockCipher,
{
    match cbc::Encryptor::<C>::new_from_slices(key, iv) {
        Ok(e) => e.encrypt_padded_vec_mut::<Pkcs7>(data),
        // Key lengths are checked when the configuration is loaded.
        Err(_) => unreachable!("key length checked at load"),
    }
}

fn decrypt_cbc<C>(key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, EncryptionError>
where
    cbc::Decryptor<C>: KeyIvInit + BlockDecryptMut,
    C: cbc::cipher::BlockDecryptMut + cbc::cipher::BlockCipher,
{
    let d = cbc::Decryptor::<C>::new_from_slices(key, iv)
        .map_err(|_| EncryptionError::Transform("invalid key or IV length".into()))?;
    d.decrypt_padded_vec_mut::<Pkcs7>(data)
        .map_err(|_| EncryptionError::Transform("invalid PKCS7 data (empty or not padded)".into()))
}

impl Transformer {
    fn write_storage(&self, data: &[u8], ctx: &[u8]) -> Result<Vec<u8>, EncryptionError> {
        let mut out = self.prefix.clone();
        let mut rng = rand::rng();
        match &self.cipher {
            None => out.extend_from_slice(data),
            Some(c @ (Cipher::Cbc128(_) | Cipher::Cbc192(_) | Cipher::Cbc256(_))) => {
                let mut iv = [0u8; 16];
                rng.fill_bytes(&mut iv);
                out.extend_from_slice(&iv);
                let ct = match c {
                    Cipher::Cbc128(k) => encrypt_cbc::<aes::Aes128>(k, &iv, data),
                    Cipher::Cbc192(k) => encrypt_cbc::<aes::Aes192>(k, &iv, data),
                    Cipher::Cbc256(k) => encrypt_cbc::<aes::Aes256>(k, &iv, data),
                    _ => unreachable!(),
                };
                out.extend_from_slice(&ct);
            }
            Some(c) => {
                let mut nonce = [0u8; 12];
                rng.fill_bytes(&mut nonce);
                out.extend_from_slice(&nonce);
                let payload = Payload {
                    msg: data,
                    aad: ctx,
                };
                let n = aes_gcm::Nonce::from_slice(&nonce);
                let ct = match c {
                    Cipher::Gcm128(a) => a.encrypt(n, payload),
                    Cipher::Gcm192(a) => a.encrypt(n, payload),
                    Cipher::Gcm256(a) => a.encrypt(n, payload),
                    _ => unreachable!(),
                }
                .map_err(|_| EncryptionError::Transform("AES-GCM encryption failed".into()))?;
                out.extend_from_slice(&ct);
            }
        }
        Ok(out)
    }

    /// `data` without this transformer's prefix.
    fn read_storage(&self, data: &[u8], ctx: &[u8]) -> Result<Vec<u8>, EncryptionError> {
        match &self.cipher {
            None => {
                if data.starts_with(ENCRYPTED_PREFIX) {
                    return Err(EncryptionError::Transform(
                        "identity transformer tried to read encrypted data".into(),
                    ));
                }
                Ok(data.to_vec())
            }
            Some(c @ (Cipher::Cbc128(_) | Cipher::Cbc192(_) | Cipher::Cbc256(_))) => {
                if data.len() < 16 {
                    return Err(EncryptionError::Transform(
                        "the stored data was shorter than the required size".into(),
                    ));
                }
                let (iv, ct) = data.split_at(16);
                if ct.len() % 16 != 0 {
                    return Err(EncryptionError::Transform(
                        "the stored data is not a multiple of the block size".into(),
                    ));
                }
                match c {
                    Cipher::Cbc128(k) => decrypt_cbc::<aes::Aes128>(k, iv, ct),
                    Cipher::Cbc192(k) => decrypt_cbc::<aes::Aes192>(k, iv, ct),
                    Cipher::Cbc256(k) => decrypt_cbc::<aes::Aes256>(k, iv, ct),
                    _ => unreachable!(),
                }
            }
            Some(c) => {
                if data.len() < 12 {
                    return Err(EncryptionError::Transform(
                        "the stored data was shorter than the required size".into(),
                    ));
                }
                let (nonce, ct) = data.split_at(12);
                let payload = Payload { msg: ct, aad: ctx };
                let n = aes_gcm::Nonce::from_slice(nonce);
                match c {
                    Cipher::Gcm128(a) => a.decrypt(n, payload),
                    Cipher::Gcm192(a) => a.decrypt(n, payload),
                    Cipher::Gcm256(a) => a.decrypt(n, payload),
                    _ => unreachable!(),
                }
                .map_err(|_| {
                    EncryptionError::Transform("AES-GCM: message authentication failed".into())
                })
            }
        }
    }
}

/// The providers of one group of resources, in order.
#[derive(Clone)]
struct Rule {
    /// Resource plurals ("secrets"); "*" matches every resource.
    resources: Vec<String>,
    transformers: Vec<Transformer>,
}

/// A loaded `EncryptionConfiguration`.
#[derive(Clone)]
pub struct EncryptionConfig {
    rules: Vec<Rule>,
}

fn decode_key(provider: &str, i: usize, j: usize, k: &KeyFile) -> Result<Vec<u8>, EncryptionError> {
    let path = format!("resources[{i}].providers[{j}].{provider}.keys");
    if k.name.is_empty() {
        return Err(cfg(format!("{path}.name: Required value")));
    }
    if k.name.contains(':') {
        return Err(cfg(format!(
            "{path}.name: Invalid value: {:?}: should not contain ':'",
            k.name
        )));
    }
    if k.secret.is_empty() {
        return Err(cfg(format!("{path}.secret: Required value")));
    }
    let key = base64::engine::general_purpose::STANDARD
        .decode(k.secret.trim())
        .map_err(|e| {
            cfg(format!(
                "{path}.secret: Invalid value: REDACTED: secrets must be base64 encoded: {e}"
            ))
        })?;
    if ![16, 24, 32].contains(&key.len()) {
        return Err(cfg(format!(
            "{path}.secret: Invalid value: REDACTED: secret is not of the expected length, got {}, expected one of [16 24 32]",
            key.len()
        )));
    }
    Ok(key)
}

fn cipher_of(provider: &str, key: &[u8]) -> Cipher {
    fn arr<const N: usize>(k: &[u8]) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(k);
        a
    }
    match (provider, key.len()) {
        ("aescbc", 16) => Cipher::Cbc128(arr(key)),
        ("aescbc", 24) => Cipher::Cbc192(arr(key)),
        ("aescbc", _) => Cipher::Cbc256(arr(key)),
        ("aesgcm", 16) => Cipher::Gcm128(Box::new(aes_gcm::Aes128Gcm::new(key.into()))),
        ("aesgcm", 24) => Cipher::Gcm192(Box::new(aes_gcm::AesGcm::new(key.into()))),
        _ => Cipher::Gcm256(Box::new(aes_gcm::Aes256Gcm::new(key.into()))),
    }
}

impl EncryptionConfig {
    /// Read and validate an `EncryptionConfiguration` file.
    pub fn load(path: &Path) -> Result<EncryptionConfig, EncryptionError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| cfg(format!("reading {}: {e}", path.display())))?;
        Self::parse(&text)
    }

    /// Parse and validate an `EncryptionConfiguration` (YAML or JSON).
    pub fn parse(text: &str) -> Result<EncryptionConfig, EncryptionError> {
        let file: ConfigFile =
            coxswain_api::yaml::from_str(text).map_err(|e| cfg(format!("decoding: {e}")))?;
        if file.kind != "EncryptionConfiguration" {
            return Err(cfg(format!(
                "kind: Invalid value: {:?}: must be EncryptionConfiguration",
                file.kind
            )));
        }
        if !matches!(
            file.api_version.as_str(),
            "apiserver.config.k8s.io/v1" | "apiserver.config.k8s.io/v1beta1"
        ) {
            return Err(cfg(format!(
                "apiVersion: Invalid value: {:?}: must be apiserver.config.k8s.io/v1",
                file.api_version
            )));
        }
        if file.resources.is_empty() {
            return Err(cfg("resources: Required value: resources cannot be empty"));
        }
        let mut rules = Vec::new();
        for (i, r) in file.resources.iter().enumerate() {
            if r.resources.is_empty() {
                return Err(cfg(format!("resources[{i}].resources: Required value")));
            }
            if r.providers.is_empty() {
                return Err(cfg(format!("resources[{i}].providers: Required value")));
            }
            let resources = r
                .resources
                .iter()
                .map(|res| match res.as_str() {
                    "*.*" => "*".to_string(),
                    s => s.split_once('.').map_or(s, |(p, _)| p).to_string(),
                })
                .collect();
            let mut transformers = Vec::new();
            for (j, p) in r.providers.iter().enumerate() {
                let set = [
                    p.aescbc.is_some(),
                    p.aesgcm.is_some(),
                    p.identity.is_some(),
                    p.secretbox.is_some(),
                    p.kms.is_some(),
                ];
                if set.iter().filter(|s| **s).count() != 1 {
                    return Err(cfg(format!(
                        "resources[{i}].providers[{j}]: Invalid value: more than one provider specified in a single element, should split into different list elements"
                    )));
                }
                if p.secretbox.is_some() || p.kms.is_some() {
                    return Err(cfg(format!(
                        "resources[{i}].providers[{j}]: Unsupported value: only aescbc, aesgcm and identity are supported"
                    )));
                }
                if p.identity.is_some() {
                    transformers.push(Transformer {
                        prefix: Vec::new(),
                        cipher: None,
                    });
                    continue;
                }
                let (name, keys) = match (&p.aescbc, &p.aesgcm) {
                    (Some(k), _) => ("aescbc", k),
                    (_, Some(k)) => ("aesgcm", k),
                    _ => unreachable!(),
                };
                if keys.keys.is_empty() {
                    return Err(cfg(format!(
                        "resources[{i}].providers[{j}].{name}.keys: Required value"
                    )));
                }
                let mut seen = std::collections::HashSet::new();
                for k in &keys.keys {
                    let key = decode_key(name, i, j, k)?;
                    if !seen.insert(k.name.clone()) {
                        return Err(cfg(format!(
                            "resources[{i}].providers[{j}].{name}.keys.name: Duplicate value: {:?}",
                            k.name
                        )));
                    }
                    transformers.push(Transformer {
                        prefix: format!("k8s:enc:{name}:v1:{}:", k.name).into_bytes(),
                        cipher: Some(cipher_of(name, &key)),
                    });
                }
            }
            rules.push(Rule {
                resources,
                transformers,
            });
        }
        Ok(EncryptionConfig { rules })
    }

    /// The transformers of the resource a backend key ("/registry/<plural>/…") belongs to; the
    /// first rule naming it wins.
    fn rule_for(&self, key: &str) -> Option<&Rule> {
        let plural = key.strip_prefix("/registry/")?.split('/').next()?;
        self.rules
            .iter()
            .find(|r| r.resources.iter().any(|x| x == plural || x == "*"))
    }

    /// The value to store under `key`: encrypted by the first provider of its resource.
    pub fn encrypt(&self, key: &str, value: &[u8]) -> Result<Vec<u8>, EncryptionError> {
        match self.rule_for(key) {
            None => Ok(value.to_vec()),
            Some(r) => r.transformers[0].write_storage(value, key.as_bytes()),
        }
    }

    /// The plain value of what is stored under `key`: the provider whose prefix it carries
    /// decrypts it (identity, with no prefix, reads anything not encrypted).
    pub fn decrypt(&self, key: &str, stored: &[u8]) -> Result<Vec<u8>, EncryptionError> {
        let Some(rule) = self.rule_for(key) else {
            return Ok(stored.to_vec());
        };
        let mut errors = Vec::new();
        for t in &rule.transformers {
            if let Some(rest) = stored.strip_prefix(t.prefix.as_slice()) {
                match t.read_storage(rest, key.as_bytes()) {
                    Ok(v) => return Ok(v),
                    Err(e) => errors.push(e.to_string()),
                }
            }
        }
        if errors.is_empty() {
            Err(EncryptionError::Transform(format!(
                "{key}: no matching prefix found"
            )))
        } else {
            Err(EncryptionError::Transform(format!(
                "{key}: {}",
                errors.join("; ")
            )))
        }
    }
}

// === The backend wrapper ===

/// A backend whose values are encrypted at rest by an [`EncryptionConfig`].
pub struct EncryptedBackend {
    inner: Arc<dyn Backend>,
    config: Arc<EncryptionConfig>,
}

impl EncryptedBackend {
    pub fn new(inner: Arc<dyn Backend>, config: EncryptionConfig) -> EncryptedBackend {
        EncryptedBackend {
            inner,
            config: Arc::new(config),
        }
    }

    /// Every value of `kvs` as plain text, decrypted in place.
    fn decrypt_all(&self, kvs: &mut [KeyValue]) -> Result<(), BackendError> {
        for kv in kvs {
            kv.value = Bytes::from(
                self.config
                    .decrypt(&kv.key, &kv.value)
                    .map_err(transform_err)?,
            );
        }
        Ok(())
    }
}

fn transform_err(e: EncryptionError) -> BackendError {
    BackendError::Io(format!("encryption at rest: {e}"))
}

impl Backend for EncryptedBackend {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn start(&self) -> BoxFuture<'_, Result<Started, BackendError>> {
        Box::pin(async move {
            let (mut snapshot, mut feed) = self.inner.start().await?;
            self.decrypt_all(&mut snapshot.kvs)?;
            let (tx, rx) = mpsc::unbounded_channel();
            let config = self.config.clone();
            tokio::spawn(async move {
                while let Some(mut batch) = feed.recv().await {
                    for c in &mut batch {
                        if let Some(v) = &c.value {
                            match config.decrypt(&c.key, v) {
                                Ok(plain) => c.value = Some(Bytes::from(plain)),
                                Err(e) => {
                                    // Only this backend writes, always with the first
                                    // provider, so this is corruption: stop the feed.
                                    tracing::error!(error = %e, "decrypting the change feed");
                                    return;
                                }
                            }
                        }
                    }
                    if tx.send(batch).is_err() {
                        return;
                    }
                }
            });
            Ok((snapshot, rx))
        })
    }

    fn txn(&self, mut txn: Txn) -> BoxFuture<'_, Result<TxnResult, BackendError>> {
        Box::pin(async move {
            for op in &mut txn.ops {
                if let Op::Put { key, value } = op {
                    *value = Bytes::from(self.config.encrypt(key, value).map_err(transform_err)?);
                }
            }
            self.inner.txn(txn).await
        })
    }

    fn current_revision(&self) -> BoxFuture<'_, Result<Option<i64>, BackendError>> {
        self.inner.current_revision()
    }

    fn list_prefix(&self, prefix: &str) -> BoxFuture<'_, Result<Option<Snapshot>, BackendError>> {
        let prefix = prefix.to_string();
        Box::pin(async move {
            let Some(mut snapshot) = self.inner.list_prefix(&prefix).await? else {
                return Ok(None);
            };
            self.decrypt_all(&mut snapshot.kvs)?;
            Ok(Some(snapshot))
        })
    }

    fn range_at(
        &self,
        prefix: &str,
        start: &str,
        revision: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Option<RangePage>, BackendError>> {
        let (prefix, start) = (prefix.to_string(), start.to_string());
        Box::pin(async move {
            let Some(mut page) = self
                .inner
                .range_at(&prefix, &start, revision, limit)
                .await?
            else {
                return Ok(None);
            };
            self.decrypt_all(&mut page.kvs)?;
            Ok(Some(page))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY32: &str = "c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluaywgaXQgaXM="; // 32 bytes
    const KEY16: &str = "MDEyMzQ1Njc4OWFiY2RlZg=="; // 16 bytes

    fn config(providers: &str) -> EncryptionConfig {
        let text = format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n{providers}"
        );
        match EncryptionConfig::parse(&text) {
            Ok(c) => c,
            Err(e) => panic!("{e}\n{text}"),
        }
    }

    const SECRET: &str = "/registry/secrets/default/db";

    #[test]
    fn each_provider_round_trips_with_upstreams_prefix() {
        for (p, prefix) in [
            (
                format!("  - aescbc: {{keys: [{{name: k1, secret: {KEY32}}}]}}\n"),
                "k8s:enc:aescbc:v1:k1:",
            ),
            (
                format!("  - aescbc: {{keys: [{{name: k1, secret: {KEY16}}}]}}\n"),
                "k8s:enc:aescbc:v1:k1:",
            ),
            (
                format!("  - aesgcm: {{keys: [{{name: g, secret: {KEY32}}}]}}\n"),
                "k8s:enc:aesgcm:v1:g:",
            ),
            (
                format!("  - aesgcm: {{keys: [{{name: g, secret: {KEY16}}}]}}\n"),
                "k8s:enc:aesgcm:v1:g:",
            ),
            ("  - identity: {}\n".to_string(), ""),
        ] {
            let c = config(&p);
            for plain in [&b""[..], b"x", b"0123456789abcdef", &[7u8; 1000]] {
                let stored = c.encrypt(SECRET, plain).unwrap();
                assert!(stored.starts_with(prefix.as_bytes()), "{p}");
                if !prefix.is_empty() {
                    assert!(
                        !stored.windows(plain.len().max(1)).any(|w| w == plain)
                            || plain.is_empty()
                            || plain.len() == 1
                    );
                }
                assert_eq!(c.decrypt(SECRET, &stored).unwrap(), plain, "{p}");
            }
            // Other resources are untouched.
            assert_eq!(
                c.encrypt("/registry/configmaps/default/db", b"v").unwrap(),
                b"v"
            );
        }
    }

    #[test]
    fn the_first_provider_writes_and_every_provider_reads() {
        let old = config(&format!(
            "  - aescbc: {{keys: [{{name: old, secret: {KEY32}}}]}}\n"
        ));
        let stored_old = old.encrypt(SECRET, b"v1").unwrap();
        // Rotation: the new key first, the old one kept for reading; identity reads plain data.
        let rotated = config(&format!(
            "  - aesgcm: {{keys: [{{name: new, secret: {KEY16}}}]}}\n  - aescbc: {{keys: [{{name: old, secret: {KEY32}}}]}}\n  - identity: {{}}\n"
        ));
        assert_eq!(rotated.decrypt(SECRET, &stored_old).unwrap(), b"v1");
        assert_eq!(rotated.decrypt(SECRET, b"plain").unwrap(), b"plain");
        assert!(rotated
            .encrypt(SECRET, b"v2")
            .unwrap()
            .starts_with(b"k8s:enc:aesgcm:v1:new:"));
        // Without the old key the old data cannot be read; identity never reads encrypted data.
        let new_only = config(&format!(
            "  - aesgcm: {{keys: [{{name: new, secret: {KEY16}}}]}}\n  - identity: {{}}\n"
        ));
        let e = new_only
            .decrypt(SECRET, &stored_old)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("identity transformer tried to read encrypted data"),
            "{e}"
        );
        let no_identity = config(&format!(
            "  - aesgcm: {{keys: [{{name: new, secret: {KEY16}}}]}}\n"
        ));
        let e = no_identity
            .decrypt(SECRET, b"plain")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no matching prefix found"), "{e}");
    }

    #[test]
    fn tampering_and_a_wrong_context_are_detected_by_gcm() {
        let c = config(&format!(
            "  - aesgcm: {{keys: [{{name: g, secret: {KEY32}}}]}}\n"
        ));
        let mut stored = c.encrypt(SECRET, b"value").unwrap();
        // The value moved to another key does not authenticate.
        assert!(c
            .decrypt("/registry/secrets/default/other", &stored)
            .is_err());
        let last = stored.len() - 1;
        stored[last] ^= 1;
        assert!(c.decrypt(SECRET, &stored).is_err());
        // Truncated data is an error, not a panic.
        assert!(c.decrypt(SECRET, b"k8s:enc:aesgcm:v1:g:abc").is_err());
        let cbc = config(&format!(
            "  - aescbc: {{keys: [{{name: k, secret: {KEY32}}}]}}\n"
        ));
        assert!(cbc
            .decrypt(SECRET, b"k8s:enc:aescbc:v1:k:0123456789abcdef012")
            .is_err());
        assert!(cbc.decrypt(SECRET, b"k8s:enc:aescbc:v1:k:").is_err());
    }

    #[test]
    fn invalid_configurations_name_the_field() {
        let bad = [
            ("  - aescbc: {keys: [{name: k, secret: c2hvcnQ=}]}\n", "resources[0].providers[0].aescbc.keys.secret: Invalid value: REDACTED: secret is not of the expected length"),
            ("  - aescbc: {keys: [{name: k, secret: '!!'}]}\n", "secrets must be base64 encoded"),
            ("  - aescbc: {keys: []}\n", "resources[0].providers[0].aescbc.keys: Required value"),
            ("  - aescbc: {keys: [{secret: c2hvcnQ=}]}\n", "aescbc.keys.name: Required value"),
            ("  - {identity: {}, aescbc: {keys: []}}\n", "more than one provider"),
            ("  - secretbox: {keys: []}\n", "Unsupported value"),
        ];
        for (p, want) in bad {
            let text = format!(
                "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n{p}"
            );
            let e = EncryptionConfig::parse(&text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(want), "{p}: {e}");
        }
        let e = EncryptionConfig::parse("kind: Pod\napiVersion: v1\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("kind: Invalid value"), "{e}");
    }

    #[test]
    fn the_first_rule_naming_a_resource_wins_and_star_matches_all() {
        let c = EncryptionConfig::parse(&format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers: [{{identity: {{}}}}]\n- resources: ['*.*']\n  providers: [{{aesgcm: {{keys: [{{name: g, secret: {KEY32}}}]}}}}]\n"
        ))
        .unwrap();
        assert_eq!(c.encrypt(SECRET, b"v").unwrap(), b"v");
        assert!(c
            .encrypt("/registry/deployments/default/web", b"v")
            .unwrap()
            .starts_with(b"k8s:enc:aesgcm:v1:g:"));
    }
}
