//! The container's paths on the host: in-image paths rewritten to the container's directories in
//! its command (and back in what it prints), its working directory, and whether a program
//! resolves.
use std::borrow::Cow;
use std::path::{Path, PathBuf};

use coxswain_api::v1::Container;

/// Replaces in-image path prefixes by host directories in one pass. A prefix matches only as a
/// whole path: at the start of the text or after a space, quote, `=`, `:`, `<`, `>` or `(`, and
/// followed by `/`, the end, or a non-path character.
pub fn rewrite_paths(s: &str, map: &[(String, PathBuf)]) -> String {
    let b = s.as_bytes();
    let at_boundary = |i: usize| {
        (i == 0
            || matches!(
                b[i - 1],
                b' ' | b'"' | b'\'' | b'=' | b':' | b'<' | b'>' | b'(' | b'\t' | b';' | b'|' | b'&'
            ))
            && b[i] == b'/'
    };
    let pairs = map
        .iter()
        .map(|(k, v)| (Cow::Borrowed(k.as_str()), v.to_string_lossy()))
        .collect();
    replace_whole_paths(s, pairs, at_boundary)
}

/// The inverse of [`rewrite_paths`] for what a container prints: host directories back to the
/// in-container paths they stand for (the longest host path first), so a probe's message names
/// `/tmp/mayikt.txt`, not the agent's directory.
pub fn unrewrite_paths(s: &str, map: &[(String, PathBuf)]) -> String {
    let pairs = map
        .iter()
        .map(|(k, v)| (v.to_string_lossy(), Cow::Borrowed(k.as_str())))
        .collect();
    replace_whole_paths(s, pairs, |_| true)
}

/// Both directions of the path mapping in one pass over `s`, the longest `from` first: a `from`
/// that starts where `starts` allows and ends a whole path (at the end of the text, or before a
/// character no path name continues with: not alphanumeric, `-`, `_` or `.`) is replaced by its
/// `to`. A `to` of `/` before a `/` is dropped: the container's root, `ROOT/x` is `/x`.
fn replace_whole_paths(
    s: &str,
    mut pairs: Vec<(Cow<'_, str>, Cow<'_, str>)>,
    starts: impl Fn(usize) -> bool,
) -> String {
    pairs.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    'outer: while i < s.len() {
        if starts(i) {
            for (from, to) in &pairs {
                if from.is_empty() || !s[i..].starts_with(from.as_ref()) {
                    continue;
                }
                let end = i + from.len();
                let whole = end == s.len()
                    || !(b[end].is_ascii_alphanumeric() || matches!(b[end], b'-' | b'_' | b'.'));
                if whole {
                    if to != "/" || b.get(end) != Some(&b'/') {
                        out.push_str(to);
                    }
                    i = end;
                    continue 'outer;
                }
            }
        }
        let ch = s[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// The working directory a relative program path is taken from: workingDir, else "/".
pub(super) fn workdir_in_image(c: &Container) -> PathBuf {
    if c.working_dir.starts_with('/') {
        PathBuf::from(&c.working_dir)
    } else {
        PathBuf::from("/")
    }
}

/// Whether a command resolves to an executable (through PATH when it has no slash).
pub(super) fn resolvable(cmd: &str, cwd: &Path) -> bool {
    if cmd.contains('/') {
        let p = Path::new(cmd);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            cwd.join(p)
        };
        return p.is_file();
    }
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        .split(':')
        .any(|d| Path::new(d).join(cmd).is_file())
}

/// The container's working directory on the host, resolved inside the container as a runtime
/// does with its root filesystem: workingDir through the container's own paths (a volume, its
/// /tmp, an image directory), else under the container's own directory (its `/`); empty is
/// `/`. Created when missing, as runc creates the cwd.
pub(super) fn workdir(c: &Container, paths: &[(String, PathBuf)], dir: &Path) -> PathBuf {
    let wd = c.working_dir.trim_end_matches('/');
    if wd.is_empty() {
        return dir.to_path_buf();
    }
    let inside = if wd.starts_with('/') {
        wd.to_string()
    } else {
        format!("/{wd}")
    };
    let mapped = rewrite_paths(&inside, paths);
    let out = if mapped != inside {
        PathBuf::from(mapped)
    } else {
        dir.join(inside.trim_start_matches('/'))
    };
    let _ = std::fs::create_dir_all(&out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_dir_is_a_directory_of_the_container() {
        let root = std::env::temp_dir().join(format!("coxswain-workdir-{}", std::process::id()));
        let dir = root.join("ctr");
        let vol = root.join("vol");
        let paths = vec![
            ("/data".to_string(), vol.clone()),
            ("/tmp".to_string(), dir.join("tmp")),
        ];
        let c = |wd: &str| Container {
            working_dir: wd.into(),
            ..Default::default()
        };
        assert_eq!(workdir(&c(""), &paths, &dir), dir);
        assert_eq!(workdir(&c("/"), &paths, &dir), dir);
        // Not the host's /tmp or /usr: the container's.
        assert_eq!(workdir(&c("/tmp"), &paths, &dir), dir.join("tmp"));
        assert_eq!(
            workdir(&c("/usr/src/app/"), &paths, &dir),
            dir.join("usr/src/app")
        );
        assert!(
            dir.join("usr/src/app").is_dir(),
            "made as runc makes the cwd"
        );
        assert_eq!(workdir(&c("/data/sub"), &paths, &dir), vol.join("sub"));
        assert_eq!(workdir(&c("rel"), &paths, &dir), dir.join("rel"));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn rewrites_whole_paths_once() {
        let map = vec![
            ("/tmp".to_string(), PathBuf::from("/tmp/x/c/tmp")),
            (
                "/usr/share/nginx/html".to_string(),
                PathBuf::from("/tmp/x/c/html"),
            ),
        ];
        assert_eq!(
            rewrite_paths("echo mayikt > /usr/share/nginx/html/index.html", &map),
            "echo mayikt > /tmp/x/c/html/index.html"
        );
        assert_eq!(
            rewrite_paths("/tmp/mayikt.txt", &map),
            "/tmp/x/c/tmp/mayikt.txt"
        );
        assert_eq!(
            rewrite_paths("/var/tmp/a /tmpfoo", &map),
            "/var/tmp/a /tmpfoo"
        );
        assert_eq!(
            rewrite_paths("touch /tmp; x=/tmp/a", &map),
            "touch /tmp/x/c/tmp; x=/tmp/x/c/tmp/a"
        );
        // A hostPath volume of the host's root: its paths are the host's, not `//etc`.
        let host_root = vec![("/host".to_string(), PathBuf::from("/"))];
        assert_eq!(rewrite_paths("ls /host/etc /host", &host_root), "ls /etc /");
    }

    #[test]
    fn output_names_container_paths_not_host_ones() {
        let map = vec![
            (
                "/tmp".to_string(),
                PathBuf::from("/data/agent/u1/nginx/tmp"),
            ),
            (
                "/data".to_string(),
                PathBuf::from("/data/agent/u1/volumes/d"),
            ),
        ];
        assert_eq!(
            unrewrite_paths(
                "cat: can't open '/data/agent/u1/nginx/tmp/mayikt.txt': No such file or directory",
                &map
            ),
            "cat: can't open '/tmp/mayikt.txt': No such file or directory"
        );
        assert_eq!(
            unrewrite_paths(
                "/data/agent/u1/volumes/d/x and /data/agent/u1/nginx/tmpx",
                &map
            ),
            "/data/x and /data/agent/u1/nginx/tmpx"
        );
        // The container's own directory is its root.
        let mut rooted = map.clone();
        rooted.push(("/".into(), PathBuf::from("/data/agent/u1/nginx")));
        assert_eq!(
            unrewrite_paths(
                "/data/agent/u1/nginx\n/data/agent/u1/nginx/etc/x /data/agent/u1/nginx/tmp/y",
                &rooted
            ),
            "/\n/etc/x /tmp/y"
        );
        // A round trip through rewrite_paths gives the text back.
        let cmd = "test -f /tmp/a.txt && ls /data";
        assert_eq!(unrewrite_paths(&rewrite_paths(cmd, &map), &map), cmd);
    }
}
