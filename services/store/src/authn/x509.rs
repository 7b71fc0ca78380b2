//! Client certificates (x509): the user a verified certificate names, and the subject of a
//! DER certificate or certificate request, read with `yasna`.
use super::{with_authenticated, UserInfo};

/// The user a client certificate the TLS layer verified names (upstream's
/// `CommonNameUserConversion`): its subject's CommonName, in its Organizations and
/// `system:authenticated`. None when it has no CommonName (or cannot be read): it then
/// authenticates no one, and the request's other credentials are tried.
pub fn cert_user(der: &[u8]) -> Option<UserInfo> {
    let (cn, orgs) = subject_of(der)?;
    (!cn.is_empty()).then(|| {
        with_authenticated(UserInfo {
            name: cn,
            uid: String::new(),
            groups: orgs,
        })
    })
}

const OID_CN: &[u64] = &[2, 5, 4, 3];
const OID_O: &[u64] = &[2, 5, 4, 10];

/// The subject's CommonName and Organizations of a DER certificate.
pub fn subject_of(der: &[u8]) -> Option<(String, Vec<String>)> {
    yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            let subject = r.next().read_sequence(|r| {
                // version [0] EXPLICIT, optional
                r.read_optional(|r| r.read_tagged(yasna::Tag::context(0), |r| r.read_der()))?;
                r.next().read_der()?; // serialNumber
                r.next().read_der()?; // signature
                r.next().read_der()?; // issuer
                r.next().read_der()?; // validity
                let subject = r.next().read_der()?;
                // The rest (key, extensions) is not needed.
                while r.read_optional(|r| r.read_der())?.is_some() {}
                Ok(subject)
            })?;
            r.next().read_der()?; // signatureAlgorithm
            r.next().read_der()?; // signatureValue
            Ok(subject)
        })
    })
    .ok()
    .and_then(|subject| parse_name(&subject))
}

/// The DER of the first PEM block of a text (lines trimmed: CRLF and indented PEM read too);
/// None without one.
pub fn pem_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let mut lines = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN"));
    lines.next()?;
    let body: String = lines.take_while(|l| !l.starts_with("-----END")).collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// The subject's CommonName and Organizations of a DER certificate request (PKCS#10), every
/// Organization kept (the signature is checked elsewhere).
pub fn csr_subject_of(der: &[u8]) -> Option<(String, Vec<String>)> {
    yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            let subject = r.next().read_sequence(|r| {
                r.next().read_der()?; // version
                let subject = r.next().read_der()?;
                // The key and the attributes are not needed.
                while r.read_optional(|r| r.read_der())?.is_some() {}
                Ok(subject)
            })?;
            r.next().read_der()?; // signatureAlgorithm
            r.next().read_der()?; // signature
            Ok(subject)
        })
    })
    .ok()
    .and_then(|subject| parse_name(&subject))
}

fn parse_name(der: &[u8]) -> Option<(String, Vec<String>)> {
    let mut cn = String::new();
    let mut orgs = Vec::new();
    yasna::parse_der(der, |r| {
        r.read_sequence_of(|r| {
            r.read_set_of(|r| {
                r.read_sequence(|r| {
                    let oid = r.next().read_oid()?;
                    let value = r.next().read_der()?;
                    let text = yasna::parse_der(&value, |r| {
                        r.read_utf8string().or_else(|_| Ok(String::new()))
                    })
                    .unwrap_or_default();
                    let text = if text.is_empty() {
                        yasna::parse_der(&value, |r| r.read_printable_string()).unwrap_or_default()
                    } else {
                        text
                    };
                    if oid.components().as_slice() == OID_CN {
                        cn = text;
                    } else if oid.components().as_slice() == OID_O {
                        orgs.push(text);
                    }
                    Ok(())
                })
            })
        })
    })
    .ok()?;
    Some((cn, orgs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::Authenticator;

    #[test]
    fn a_client_certificate_names_the_user_and_its_groups() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kubernetes-admin");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "system:masters");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (cn, orgs) = subject_of(cert.der()).unwrap();
        assert_eq!(cn, "kubernetes-admin");
        assert_eq!(orgs, ["system:masters"]);
        let a = Authenticator::new(false);
        let u = a.authenticate(None, Some(cert.der())).unwrap();
        assert_eq!(u.groups, ["system:masters", "system:authenticated"]);
        assert!(subject_of(b"not a certificate").is_none());
    }

    /// The first block's DER, whatever the line ends, indentation or text around it.
    #[test]
    fn pem_der_reads_the_first_block() {
        let want = Some(vec![1u8, 2, 3, 4, 5, 6]);
        for pem in [
            "-----BEGIN X-----\nAQIDBAUG\n-----END X-----\n",
            "-----BEGIN X-----\r\nAQID\r\nBAUG\r\n-----END X-----\r\n",
            "key:\n  -----BEGIN X-----\n  AQIDBAUG\n  -----END X-----\n-----BEGIN Y-----\nAA==\n",
        ] {
            assert_eq!(pem_der(pem), want, "{pem:?}");
        }
        assert_eq!(pem_der("no PEM here"), None);
    }
}
