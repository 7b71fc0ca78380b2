//! Projected volumes (upstream's validateProjectedVolumeSource): one source per projection, a
//! name for a ConfigMap or Secret, a path for each file, no path twice across the sources, and a
//! ServiceAccount token between 10 minutes and 2^32 seconds.
use super::*;

pub(super) fn validate(e: &mut Errs, path: &Path, pr: &v1::ProjectedVolumeSource) {
    let mut paths: BTreeSet<&str> = BTreeSet::new();
    for (i, s) in pr.sources.iter().enumerate() {
        let p = path.index("sources", i);
        let n = [
            s.secret.is_some(),
            s.config_map.is_some(),
            s.downward_api.is_some(),
            s.service_account_token.is_some(),
        ]
        .into_iter()
        .filter(|x| *x)
        .count();
        if n > 1 {
            forbidden(e, p, "may not specify more than 1 volume type per source");
        }
        let (name, items) = match (&s.secret, &s.config_map) {
            (Some(sec), _) => (Some(("secret", &sec.name)), &sec.items[..]),
            (_, Some(cm)) => (Some(("configMap", &cm.name)), &cm.items[..]),
            _ => (None, &[][..]),
        };
        if let Some((field, name)) = name {
            let f = p.field(field);
            if name.is_empty() {
                required(e, f.field("name"), "");
            }
            for (j, it) in items.iter().enumerate() {
                let ip = f.index("items", j);
                if it.key.is_empty() {
                    required(e, ip.field("key"), "");
                }
                if it.path.is_empty() {
                    required(e, ip.field("path"), "");
                }
                if !paths.insert(it.path.as_str()) && !it.path.is_empty() {
                    invalid_str(e, ip.field("path"), &it.path, "conflicting duplicate paths");
                }
            }
        }
        if let Some(d) = &s.downward_api {
            let f = p.field("downwardAPI");
            for (j, it) in d.items.iter().enumerate() {
                let ip = f.index("items", j);
                if it.path.is_empty() {
                    required(e, ip.field("path"), "");
                } else if !paths.insert(it.path.as_str()) {
                    invalid_str(e, ip.field("path"), &it.path, "conflicting duplicate paths");
                }
                if it.field_ref.is_none() {
                    required(e, ip.field("fieldRef"), "");
                }
            }
        }
        if let Some(t) = &s.service_account_token {
            let f = p.field("serviceAccountToken");
            let exp = t.expiration_seconds.map_or(3600, i64::from);
            if exp < 600 {
                invalid(
                    e,
                    f.field("expirationSeconds"),
                    exp,
                    "may not specify a duration less than 10 minutes",
                );
            } else if exp > 1 << 32 {
                invalid(
                    e,
                    f.field("expirationSeconds"),
                    exp,
                    "may not specify a duration larger than 2^32 seconds",
                );
            }
            if t.path.is_empty() {
                required(e, f.field("path"), "");
            } else if !paths.insert(t.path.as_str()) {
                invalid_str(e, f.field("path"), &t.path, "conflicting duplicate paths");
            }
        }
    }
}
