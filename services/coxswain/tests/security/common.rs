//! Helpers the tests of this binary share.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}
