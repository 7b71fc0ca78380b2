//! Job defaults and the Job selector the store generates from the uid.

use crate::v1;

/// Labels a generated Job selector uses (Kubernetes' batch labels, legacy and current).
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";

/// Generate a Job's selector from its uid as Kubernetes' job registry does on create, unless
/// the user chose the selector (`manualSelector: true`): the pod template gets the labels
/// `controller-uid`, `batch.kubernetes.io/controller-uid`, `job-name` and
/// `batch.kubernetes.io/job-name` (where not already set), and the selector matches
/// `batch.kubernetes.io/controller-uid`.
pub fn job_selector_for_uid(job: &mut v1::Job, uid: &str) {
    let name = job
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let spec = job.spec.get_or_insert_with(Default::default);
    if spec.manual_selector == Some(true) {
        return;
    }
    let template = spec.template.get_or_insert_with(Default::default);
    let labels = &mut template
        .metadata
        .get_or_insert_with(Default::default)
        .labels;
    for key in [LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL] {
        labels
            .entry(key.to_string())
            .or_insert_with(|| name.clone());
    }
    for key in [LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL] {
        labels
            .entry(key.to_string())
            .or_insert_with(|| uid.to_string());
    }
    let selector = spec.selector.get_or_insert_with(Default::default);
    selector
        .match_labels
        .entry(CONTROLLER_UID_LABEL.to_string())
        .or_insert_with(|| uid.to_string());
}

pub(super) fn job_spec_defaults(spec: &mut v1::JobSpec) {
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
        spec.parallelism = Some(1);
    }
    spec.parallelism.get_or_insert(1);
    if spec.backoff_limit.is_none() {
        spec.backoff_limit = Some(if spec.backoff_limit_per_index.is_some() {
            i32::MAX
        } else {
            6
        });
    }
    spec.completion_mode
        .get_or_insert_with(|| "NonIndexed".to_string());
    spec.suspend.get_or_insert(false);
    spec.manual_selector.get_or_insert(false);
    spec.pod_replacement_policy
        .get_or_insert_with(|| "TerminatingOrFailed".to_string());
}
