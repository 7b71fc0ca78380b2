//! ServiceAccount tokens, as kube-apiserver's bound tokens (`pkg/serviceaccount`): a JWT (ES256,
//! the cluster's `pki/sa.key`) whose claims name the ServiceAccount and the object it is bound
//! to:
//!
//! ```json
//! {"aud":["https://kubernetes.default.svc.cluster.local"],"exp":…,"iat":…,"nbf":…,
//!  "iss":"https://kubernetes.default.svc.cluster.local","jti":"…",
//!  "sub":"system:serviceaccount:NS:NAME",
//!  "kubernetes.io":{"namespace":"NS","serviceaccount":{"name":"NAME","uid":"…"},
//!                   "pod":{"name":"…","uid":"…"},"node":{"name":"…","uid":"…"}}}
//! ```
//!
//! Issued by TokenRequest ([`crate::tokens`]). A token authenticates as
//! `system:serviceaccount:NS:NAME` in the groups `system:serviceaccounts` and
//! `system:serviceaccounts:NS` while its signature, issuer, audience and time window hold, its
//! ServiceAccount exists with the same uid, and so does its pod (a pod whose graceful deletion
//! ran out invalidates it), as upstream's `validator.Validate`.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use coxswain_api::Kind;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use crate::authn::{pem_der, UserInfo};

/// kubeadm's `--service-account-issuer` (and so the API audience).
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// TokenRequest's default `expirationSeconds`.
pub const DEFAULT_EXPIRATION: i64 = 3600;
/// The shortest token TokenRequest issues (upstream: "may not specify a duration less than 10
/// minutes").
pub const MIN_EXPIRATION: i64 = 600;
/// Verified signatures kept (tokens are re-sent on every request; the claims' objects are
/// still looked up every time).
const VERIFIED_CACHE: usize = 4096;

/// A reference in the `kubernetes.io` claim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ref {
    pub name: String,
    pub uid: String,
}

/// The private `kubernetes.io` claim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Private {
    pub namespace: String,
    pub serviceaccount: Ref,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Ref>,
}

/// A token's claims.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub iss: String,
    #[serde(default)]
    pub jti: String,
    pub sub: String,
    #[serde(rename = "kubernetes.io")]
    pub k8s: Private,
}

impl Claims {
    /// The user a valid token authenticates as.
    pub fn user(&self) -> UserInfo {
        let ns = &self.k8s.namespace;
        UserInfo {
            name: format!(
                "system:serviceaccount:{ns}:{}",
                self.k8s.serviceaccount.name
            ),
            uid: self.k8s.serviceaccount.uid.clone(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated".into(),
            ],
        }
    }
}

/// Signs tokens with one key; verifies them with it and the keys of
/// `--service-account-key-file` (upstream's flag, repeatable: the previous signing keys while
/// they are rotated out).
pub struct Signer {
    key: EcdsaKeyPair,
    kid: String,
    /// More public keys (uncompressed P-256 points) whose tokens verify.
    verification_keys: Vec<Vec<u8>>,
    rng: SystemRandom,
    pub issuer: String,
    /// The audiences the API server accepts (`--api-audiences`; default: the issuer).
    pub api_audiences: Vec<String>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl Signer {
    /// From a PKCS#8 ECDSA P-256 private key in PEM (`pki/sa.key`).
    pub fn from_pem(pem: &str, issuer: &str) -> Result<Signer, String> {
        let der = pem_der(pem).ok_or("the service account key is not PEM")?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
            .map_err(|e| format!("the service account key is not a P-256 PKCS#8 key: {e}"))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, key.public_key().as_ref());
        Ok(Signer {
            kid: B64.encode(digest.as_ref()),
            verification_keys: Vec::new(),
            key,
            rng,
            issuer: issuer.to_string(),
            api_audiences: vec![issuer.to_string()],
        })
    }

    /// Also accept tokens signed by the key in `pem`: a PKCS#8 P-256 private key (a previous
    /// `sa.key`) or its P-256 public key (`PUBLIC KEY`, SubjectPublicKeyInfo), as upstream's
    /// `--service-account-key-file` takes either.
    pub fn add_verification_key_pem(&mut self, pem: &str) -> Result<(), String> {
        let der = pem_der(pem).ok_or("not PEM")?;
        let public = if pem.contains("PUBLIC KEY") {
            // SubjectPublicKeyInfo of an id-ecPublicKey on prime256v1: a fixed 26-byte header,
            // then the 65-byte uncompressed point.
            const HEADER: [u8; 26] = [
                0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
                0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
            ];
            match der.strip_prefix(&HEADER[..]) {
                Some(point) if point.len() == 65 && point[0] == 4 => point.to_vec(),
                _ => return Err("not a P-256 public key (only ES256 keys are supported)".into()),
            }
        } else {
            let key = EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &der,
                &self.rng,
            )
            .map_err(|e| format!("not a P-256 PKCS#8 key: {e}"))?;
            key.public_key().as_ref().to_vec()
        };
        if public != self.key.public_key().as_ref() && !self.verification_keys.contains(&public) {
            self.verification_keys.push(public);
        }
        Ok(())
    }

    /// A signed token with these claims.
    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        let header = serde_json::json!({"alg": "ES256", "kid": self.kid});
        let mut out = B64.encode(header.to_string());
        out.push('.');
        out.push_str(&B64.encode(serde_json::to_vec(claims).map_err(|e| e.to_string())?));
        let sig = self
            .key
            .sign(&self.rng, out.as_bytes())
            .map_err(|e| format!("signing: {e}"))?;
        out.push('.');
        out.push_str(&B64.encode(sig.as_ref()));
        Ok(out)
    }

    /// The claims of a token this key signed for this issuer and one of the API audiences,
    /// valid at `now` (Unix seconds). Err: why not.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, String> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWT".into());
        };
        let sig = B64.decode(s).map_err(|_| "malformed signature")?;
        let signed = &token[..h.len() + 1 + c.len()];
        let keys = std::iter::once(self.key.public_key().as_ref())
            .chain(self.verification_keys.iter().map(Vec::as_slice));
        let mut valid = false;
        for key in keys {
            let k = signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, key);
            if k.verify(signed.as_bytes(), &sig).is_ok() {
                valid = true;
                break;
            }
        }
        if !valid {
            return Err("invalid signature".into());
        }
        let header: serde_json::Value =
            serde_json::from_slice(&B64.decode(h).map_err(|_| "malformed header")?)
                .map_err(|_| "malformed header")?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("ES256") {
            return Err("unexpected signing algorithm".into());
        }
        let claims: Claims =
            serde_json::from_slice(&B64.decode(c).map_err(|_| "malformed claims")?)
                .map_err(|e| format!("malformed claims: {e}"))?;
        if claims.iss != self.issuer {
            return Err("token issuer is not this cluster's".into());
        }
        if !claims.aud.iter().any(|a| self.api_audiences.contains(a)) {
            return Err("token audiences is invalid for the current authenticator".into());
        }
        // Upstream allows a minute of clock skew on both ends.
        if now > claims.exp + 60 {
            return Err("service account token has expired".into());
        }
        if now + 60 < claims.nbf {
            return Err("service account token is not valid yet".into());
        }
        if claims.k8s.namespace.is_empty() || claims.k8s.serviceaccount.name.is_empty() {
            return Err("service account token claims are incomplete".into());
        }
        Ok(claims)
    }
}

/// A new P-256 key in PKCS#8 PEM, for `pki/sa.key`.
pub fn generate_key_pem() -> Result<String, String> {
    let rng = SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|e| e.to_string())?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(doc.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    Ok(pem)
}

/// Whether a bearer token is shaped as a JWT (three base64url parts).
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.bytes().filter(|b| *b == b'.').count() == 2
}

/// What a token's claims must still name: the current objects.
pub trait Objects: Send + Sync {
    /// The uid of the ServiceAccount, None: no such ServiceAccount.
    fn service_account_uid(&self, namespace: &str, name: &str) -> Option<String>;
    /// The pod's uid and its deletionTimestamp (Unix seconds) if set.
    fn pod(&self, namespace: &str, name: &str) -> Option<(String, Option<i64>)>;
    /// The Secret's uid.
    fn secret_uid(&self, namespace: &str, name: &str) -> Option<String>;
}

impl Objects for crate::Store {
    fn service_account_uid(&self, namespace: &str, name: &str) -> Option<String> {
        let s = self
            .get_stored(Kind::ServiceAccount, namespace, name)
            .ok()?;
        Some(s.uid.to_string())
    }
    fn pod(&self, namespace: &str, name: &str) -> Option<(String, Option<i64>)> {
        let s = self.get_stored(Kind::Pod, namespace, name).ok()?;
        let deleted = match s.deleting {
            true => coxswain_api::time::parse_rfc3339(&s.decode().meta().deletion_timestamp),
            false => None,
        };
        Some((s.uid.to_string(), deleted))
    }
    fn secret_uid(&self, namespace: &str, name: &str) -> Option<String> {
        let s = self.get_stored(Kind::Secret, namespace, name).ok()?;
        Some(s.uid.to_string())
    }
}

/// The ServiceAccount token authenticator (upstream's `JWTTokenAuthenticator` with the
/// legacy-free validator): signature and window, then the objects the claims name.
pub struct TokenAuthenticator {
    signer: Arc<Signer>,
    objects: Arc<dyn Objects>,
    verified: Mutex<HashMap<String, Claims>>,
}

impl std::fmt::Debug for TokenAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuthenticator")
            .field("signer", &self.signer)
            .finish()
    }
}

impl TokenAuthenticator {
    pub fn new(signer: Arc<Signer>, objects: Arc<dyn Objects>) -> TokenAuthenticator {
        TokenAuthenticator {
            signer,
            objects,
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// The user of a ServiceAccount token at `now`, or why it is refused.
    pub fn authenticate(&self, token: &str, now: i64) -> Result<UserInfo, String> {
        let cached = self
            .verified
            .lock()
            .ok()
            .and_then(|m| m.get(token).cloned());
        let claims = match cached {
            Some(c) if now <= c.exp + 60 => c,
            _ => {
                let c = self.signer.verify(token, now)?;
                if let Ok(mut m) = self.verified.lock() {
                    if m.len() >= VERIFIED_CACHE {
                        m.retain(|_, c| now <= c.exp + 60);
                        if m.len() >= VERIFIED_CACHE {
                            m.clear();
                        }
                    }
                    m.insert(token.to_string(), c.clone());
                }
                c
            }
        };
        validate_objects(&claims, self.objects.as_ref(), now)?;
        Ok(claims.user())
    }
}

/// Upstream's `validator.Validate`: the ServiceAccount, and the pod or Secret the token is
/// bound to, still exist as the same incarnations.
pub fn validate_objects(claims: &Claims, objects: &dyn Objects, now: i64) -> Result<(), String> {
    let ns = &claims.k8s.namespace;
    let sa = &claims.k8s.serviceaccount;
    match objects.service_account_uid(ns, &sa.name) {
        None => return Err(format!("service account {ns}/{} has been deleted", sa.name)),
        Some(uid) if uid != sa.uid => {
            return Err(format!(
                "service account UID ({uid}) does not match claim ({})",
                sa.uid
            ))
        }
        _ => {}
    }
    if let Some(p) = &claims.k8s.pod {
        match objects.pod(ns, &p.name) {
            None => return Err(format!("pod {ns}/{} has been deleted", p.name)),
            Some((uid, _)) if uid != p.uid => {
                return Err(format!("pod UID ({uid}) does not match claim ({})", p.uid))
            }
            Some((_, Some(deleted))) if deleted < now => {
                return Err("token has been invalidated".into())
            }
            _ => {}
        }
    }
    if let Some(s) = &claims.k8s.secret {
        match objects.secret_uid(ns, &s.name) {
            None => return Err(format!("secret {ns}/{} has been deleted", s.name)),
            Some(uid) if uid != s.uid => {
                return Err(format!(
                    "secret UID ({uid}) does not match claim ({})",
                    s.uid
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        sa: Mutex<Option<String>>,
        pod: Mutex<Option<(String, Option<i64>)>>,
    }

    impl Objects for Fake {
        fn service_account_uid(&self, _: &str, _: &str) -> Option<String> {
            self.sa.lock().unwrap().clone()
        }
        fn pod(&self, _: &str, _: &str) -> Option<(String, Option<i64>)> {
            self.pod.lock().unwrap().clone()
        }
        fn secret_uid(&self, _: &str, _: &str) -> Option<String> {
            None
        }
    }

    fn claims(now: i64) -> Claims {
        Claims {
            aud: vec![DEFAULT_ISSUER.into()],
            exp: now + 600,
            iat: now,
            nbf: now,
            iss: DEFAULT_ISSUER.into(),
            jti: "j".into(),
            sub: "system:serviceaccount:dev:bot".into(),
            k8s: Private {
                namespace: "dev".into(),
                serviceaccount: Ref {
                    name: "bot".into(),
                    uid: "sa-1".into(),
                },
                pod: Some(Ref {
                    name: "p".into(),
                    uid: "pod-1".into(),
                }),
                ..Default::default()
            },
        }
    }

    fn signer() -> Signer {
        Signer::from_pem(&generate_key_pem().unwrap(), DEFAULT_ISSUER).unwrap()
    }

    #[test]
    fn a_signed_token_verifies_and_a_changed_one_does_not() {
        let s = signer();
        let now = 1_700_000_000;
        let t = s.sign(&claims(now)).unwrap();
        assert!(looks_like_jwt(&t));
        assert_eq!(s.verify(&t, now).unwrap(), claims(now));
        // Another key, a changed claim, a wrong audience or issuer, an expired token.
        assert!(signer().verify(&t, now).is_err());
        let (head, rest) = t.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let mut forged = claims(now);
        forged.k8s.serviceaccount.name = "admin".into();
        let forged = format!(
            "{head}.{}.{sig}",
            B64.encode(serde_json::to_vec(&forged).unwrap())
        );
        assert_eq!(s.verify(&forged, now).unwrap_err(), "invalid signature");
        let mut c = claims(now);
        c.aud = vec!["vault".into()];
        assert!(s.verify(&s.sign(&c).unwrap(), now).is_err());
        let mut c = claims(now);
        c.iss = "https://elsewhere".into();
        assert!(s.verify(&s.sign(&c).unwrap(), now).is_err());
        assert!(s.verify(&t, now + 661).unwrap_err().contains("expired"));
        assert!(s.verify(&t, now + 660).is_ok());
        assert!(s.verify("a.b", now).is_err());
        assert!(s.verify("eyJ.eyJ.!!", now).is_err());
    }

    #[test]
    fn tokens_of_a_previous_key_verify_while_it_is_listed() {
        let old_pem = generate_key_pem().unwrap();
        let old = Signer::from_pem(&old_pem, DEFAULT_ISSUER).unwrap();
        let now = 1_700_000_000;
        let t = old.sign(&claims(now)).unwrap();
        let mut new = signer();
        assert_eq!(new.verify(&t, now).unwrap_err(), "invalid signature");
        // The old private key, as a second --service-account-key-file: accepted.
        new.add_verification_key_pem(&old_pem).unwrap();
        assert_eq!(new.verify(&t, now).unwrap(), claims(now));
        // New tokens are signed with the new key only.
        let fresh = new.sign(&claims(now)).unwrap();
        assert!(old.verify(&fresh, now).is_err());
        // The old public key alone (SubjectPublicKeyInfo PEM) does as well.
        let spki = [
            &[
                0x30u8, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
                0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
            ][..],
            old.key.public_key().as_ref(),
        ]
        .concat();
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&spki)
        );
        let mut by_public = signer();
        by_public.add_verification_key_pem(&pem).unwrap();
        assert!(by_public.verify(&t, now).is_ok());
        assert!(by_public.add_verification_key_pem("junk").is_err());
        let bad = pem.replace("MFkw", "MFow");
        assert!(by_public.add_verification_key_pem(&bad).is_err());
    }

    #[test]
    fn a_token_stops_authenticating_with_its_pod_or_service_account() {
        let s = Arc::new(signer());
        let now = 1_700_000_000;
        let t = s.sign(&claims(now)).unwrap();
        let objects = Arc::new(Fake {
            sa: Mutex::new(Some("sa-1".into())),
            pod: Mutex::new(Some(("pod-1".into(), None))),
        });
        let a = TokenAuthenticator::new(s, objects.clone());
        let u = a.authenticate(&t, now).unwrap();
        assert_eq!(u.name, "system:serviceaccount:dev:bot");
        assert_eq!(u.uid, "sa-1");
        assert_eq!(
            u.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:dev",
                "system:authenticated"
            ]
        );
        // A pod being deleted gracefully: valid until its deletion time.
        *objects.pod.lock().unwrap() = Some(("pod-1".into(), Some(now + 30)));
        assert!(a.authenticate(&t, now).is_ok());
        *objects.pod.lock().unwrap() = Some(("pod-1".into(), Some(now - 1)));
        assert!(a.authenticate(&t, now).is_err());
        // Another pod of the same name.
        *objects.pod.lock().unwrap() = Some(("pod-2".into(), None));
        assert!(a
            .authenticate(&t, now)
            .unwrap_err()
            .contains("does not match"));
        *objects.pod.lock().unwrap() = None;
        assert!(a.authenticate(&t, now).unwrap_err().contains("deleted"));
        *objects.pod.lock().unwrap() = Some(("pod-1".into(), None));
        *objects.sa.lock().unwrap() = None;
        assert!(a.authenticate(&t, now).unwrap_err().contains("deleted"));
        *objects.sa.lock().unwrap() = Some("sa-1".into());
        assert!(a.authenticate(&t, now).is_ok());
        // Expired, even though its signature was verified (and kept) before.
        assert!(a.authenticate(&t, now + 661).is_err());
    }
}
