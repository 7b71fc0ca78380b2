//! The waits between a container's runs (part of [`super`]): the crash back-off
//! (CrashLoopBackOff) and the image-pull back-off (ErrImagePull, then ImagePullBackOff), each
//! with the status and Events the kubelet shows meanwhile.
use super::*;

/// Waits out a crash back-off (CrashLoopBackOff). Returns false on termination.
pub(super) async fn crash_backoff<R: Runtime>(
    sh: &Arc<Shared<R>>,
    c: &Container,
    init: bool,
    delay: Duration,
    _attempt: u32,
    term: &mut Termination,
) -> bool {
    if delay > Duration::ZERO {
        let msg = format!(
            "back-off {} restarting failed container={} pod={}",
            human(delay),
            c.name,
            key_of(&sh.pod())
        );
        sh.update_container(init, &c.name, |s| {
            if let Some(st) = s.state.take() {
                if st.terminated.is_some() {
                    s.last_state = Some(st);
                }
            }
            s.state = waiting("CrashLoopBackOff", &msg);
            s.ready = false;
        });
        sh.event(
            Some((c, init)),
            true,
            "BackOff",
            format!(
                "Back-off restarting failed container {} in pod {}",
                c.name,
                key_of(&sh.pod())
            ),
        );
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = terminated(term) => false,
    }
}

/// Waits out an image pull back-off (ImagePullBackOff). Returns false on termination.
pub(super) async fn pull_backoff<R: Runtime>(
    sh: &Arc<Shared<R>>,
    c: &Container,
    init: bool,
    backoff: &mut Backoff,
    term: &mut Termination,
) -> bool {
    let delay = backoff.next_from_base();
    // Errors other than pull errors keep their reason while waiting for the retry.
    let never = sh
        .status
        .lock()
        .ok()
        .map(|st| st.unpack())
        .and_then(|st| {
            Shared::<R>::find_container(&st, init, &c.name)
                .and_then(|s| s.state.clone())
                .and_then(|s| s.waiting)
        })
        .is_some_and(|w| {
            matches!(
                w.reason.as_str(),
                "ErrImageNeverPull" | "CreateContainerConfigError" | "ContainerCreating"
            )
        });
    if never {
        return tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = terminated(term) => false,
        };
    }
    // ErrImagePull stays visible until the next sync (about a second), then ImagePullBackOff.
    let first = delay.min(Duration::from_secs(1)) / 2;
    tokio::select! {
        _ = tokio::time::sleep(first) => {}
        _ = terminated(term) => return false,
    }
    let delay = delay - first;
    let msg = format!("Back-off pulling image \"{}\"", c.image);
    sh.update_container(init, &c.name, |s| {
        s.state = waiting("ImagePullBackOff", &msg);
    });
    sh.event(Some((c, init)), false, "BackOff", msg);
    sh.event(
        Some((c, init)),
        true,
        "Failed",
        "Error: ImagePullBackOff".into(),
    );
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = terminated(term) => false,
    }
}

/// A back-off or grace period as the kubelet prints it: "1m5s", "10s", "500ms".
pub(super) fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (m, r) = (s / 60, s % 60);
    if m > 0 {
        format!("{m}m{r}s")
    } else if s > 0 {
        format!("{s}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}
