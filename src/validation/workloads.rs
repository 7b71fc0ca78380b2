//! Workload controllers' specs: ReplicaSet, Deployment, DaemonSet and StatefulSet (selector and
//! template), Job and CronJob.
use super::*;

pub(super) fn selector_is_empty(s: &v1::LabelSelector) -> bool {
    s.match_labels.is_empty() && s.match_expressions.is_empty()
}

/// Selector required, non-empty and matching the template labels; template with restartPolicy
/// Always and no activeDeadlineSeconds. For ReplicaSet, Deployment, DaemonSet, StatefulSet.
pub(super) fn validate_workload_selector_and_template(
    e: &mut Errs,
    kind_lower: &str,
    selector: Option<&v1::LabelSelector>,
    template: Option<&v1::PodTemplateSpec>,
    extra_volumes: &[String],
) {
    match selector {
        None => required(e, "spec.selector", ""),
        Some(s) => {
            validate_label_selector(e, &Path::Root("spec.selector"), s);
            if selector_is_empty(s) {
                invalid_str(
                    e,
                    "spec.selector",
                    "",
                    &format!("empty selector is invalid for {kind_lower}"),
                );
            }
        }
    }
    let Some(t) = template else {
        required(e, "spec.template", "");
        return;
    };
    validate_template_metadata(e, t);
    if let Some(s) = selector.filter(|s| !selector_is_empty(s)) {
        selector_matches_template(e, s, t);
    }
    let owner = match kind_lower {
        "replicaset" => "ReplicaSet",
        "deployment" => "Deployment",
        "daemonset" => "DaemonSet",
        _ => "StatefulSet",
    };
    let ctx = PodCtx {
        restart_policies: &["Always"],
        extra_volumes: extra_volumes.to_vec(),
        forbid_active_deadline: Some(owner),
    };
    match &t.spec {
        Some(spec) => validate_pod_spec(e, "spec.template.spec", spec, &ctx),
        None => required(e, "spec.template.spec", ""),
    }
}

pub(super) fn validate_template_metadata(e: &mut Errs, t: &v1::PodTemplateSpec) {
    if let Some(m) = &t.metadata {
        validate_labels(e, "spec.template.metadata.labels", &m.labels);
        validate_annotations(e, "spec.template.metadata.annotations", &m.annotations);
    }
}

pub(super) fn template_labels(t: &v1::PodTemplateSpec) -> BTreeMap<String, String> {
    t.metadata
        .as_ref()
        .map(|m| m.labels.clone())
        .unwrap_or_default()
}

pub(super) fn selector_matches_template_at(
    e: &mut Errs,
    path: &str,
    s: &v1::LabelSelector,
    t: &v1::PodTemplateSpec,
) {
    let labels = template_labels(t);
    match LabelSelector::from_proto(Some(s)) {
        Ok(sel) => {
            if !sel.matches(&labels) {
                invalid(
                    e,
                    path,
                    go_map(&labels),
                    "`selector` does not match template `labels`",
                );
            }
        }
        Err(err) => invalid(
            e,
            path.replace("template.metadata.labels", "selector"),
            "",
            &err.to_string(),
        ),
    }
}

pub(super) fn selector_matches_template(
    e: &mut Errs,
    s: &v1::LabelSelector,
    t: &v1::PodTemplateSpec,
) {
    selector_matches_template_at(e, "spec.template.metadata.labels", s, t);
}

pub(super) fn validate_percent_or_int(e: &mut Errs, p: &str, v: &IntOrString) -> bool {
    if v.is_string {
        let ok = v
            .str_val
            .strip_suffix('%')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()));
        if !ok {
            invalid_str(e, p, &v.str_val, "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')");
            return false;
        }
        true
    } else {
        if v.int_val < 0 {
            invalid(e, p, v.int_val, "must be greater than or equal to 0");
            return false;
        }
        true
    }
}

pub(super) fn is_zero_int_or_percent(v: &IntOrString) -> bool {
    if v.is_string {
        v.str_val
            .strip_suffix('%')
            .and_then(|n| n.parse::<i64>().ok())
            == Some(0)
    } else {
        v.int_val == 0
    }
}

pub(super) fn validate_max_unavailable_surge(
    e: &mut Errs,
    p: &str,
    unavailable: Option<&IntOrString>,
    surge: Option<&IntOrString>,
) {
    let mut ok = true;
    if let Some(u) = unavailable {
        ok &= validate_percent_or_int(e, &format!("{p}.maxUnavailable"), u);
        if u.is_string {
            if let Some(n) = u
                .str_val
                .strip_suffix('%')
                .and_then(|n| n.parse::<i64>().ok())
            {
                if n > 100 {
                    invalid_str(
                        e,
                        format!("{p}.maxUnavailable"),
                        &u.str_val,
                        "must not be greater than 100%",
                    );
                }
            }
        }
    }
    if let Some(s) = surge {
        ok &= validate_percent_or_int(e, &format!("{p}.maxSurge"), s);
    }
    if ok {
        let u0 = unavailable.is_none_or(is_zero_int_or_percent);
        let s0 = surge.is_none_or(is_zero_int_or_percent);
        if u0 && s0 {
            invalid(
                e,
                format!("{p}.maxUnavailable"),
                0,
                "may not be 0 when `maxSurge` is 0",
            );
        }
    }
}

pub(super) fn validate_deployment_spec(e: &mut Errs, spec: &v1::DeploymentSpec) {
    non_negative(e, "spec.replicas", spec.replicas.unwrap_or(0).into());
    non_negative(e, "spec.minReadySeconds", spec.min_ready_seconds.into());
    if let Some(r) = spec.revision_history_limit {
        non_negative(e, "spec.revisionHistoryLimit", r.into());
    }
    if let Some(d) = spec.progress_deadline_seconds {
        non_negative(e, "spec.progressDeadlineSeconds", d.into());
        if d <= spec.min_ready_seconds {
            invalid(
                e,
                "spec.progressDeadlineSeconds",
                d,
                "must be greater than minReadySeconds",
            );
        }
    }
    validate_workload_selector_and_template(
        e,
        "deployment",
        spec.selector.as_ref(),
        spec.template.as_ref(),
        &[],
    );
    if let Some(s) = &spec.strategy {
        match s.r#type.as_str() {
            "Recreate" => {
                if s.rolling_update.is_some() {
                    forbidden(
                        e,
                        "spec.strategy.rollingUpdate",
                        "may not be specified when strategy `type` is 'Recreate'",
                    );
                }
            }
            "RollingUpdate" | "" => {
                if let Some(ru) = &s.rolling_update {
                    validate_max_unavailable_surge(
                        e,
                        "spec.strategy.rollingUpdate",
                        ru.max_unavailable.as_ref(),
                        ru.max_surge.as_ref(),
                    );
                }
            }
            other => unsupported(
                e,
                "spec.strategy.type",
                other,
                &["Recreate", "RollingUpdate"],
            ),
        }
    }
}

pub(super) fn validate_daemonset_spec(e: &mut Errs, spec: &v1::DaemonSetSpec) {
    non_negative(e, "spec.minReadySeconds", spec.min_ready_seconds.into());
    if let Some(r) = spec.revision_history_limit {
        non_negative(e, "spec.revisionHistoryLimit", r.into());
    }
    validate_workload_selector_and_template(
        e,
        "daemonset",
        spec.selector.as_ref(),
        spec.template.as_ref(),
        &[],
    );
    if let Some(s) = &spec.update_strategy {
        match s.r#type.as_str() {
            "OnDelete" => {}
            "RollingUpdate" | "" => {
                if let Some(ru) = &s.rolling_update {
                    validate_max_unavailable_surge(
                        e,
                        "spec.updateStrategy.rollingUpdate",
                        ru.max_unavailable.as_ref(),
                        ru.max_surge.as_ref(),
                    );
                }
            }
            other => unsupported(
                e,
                "spec.updateStrategy.type",
                other,
                &["OnDelete", "RollingUpdate"],
            ),
        }
    }
}

pub(super) fn validate_statefulset_spec(e: &mut Errs, spec: &v1::StatefulSetSpec) {
    non_negative(e, "spec.replicas", spec.replicas.unwrap_or(0).into());
    non_negative(e, "spec.minReadySeconds", spec.min_ready_seconds.into());
    if let Some(r) = spec.revision_history_limit {
        non_negative(e, "spec.revisionHistoryLimit", r.into());
    }
    one_of(
        e,
        "spec.podManagementPolicy",
        &spec.pod_management_policy,
        &["OrderedReady", "Parallel"],
        true,
    );
    if !spec.service_name.is_empty() {
        check(
            e,
            "spec.serviceName",
            &spec.service_name,
            is_dns1123_label(&spec.service_name),
        );
    }
    if let Some(s) = &spec.update_strategy {
        match s.r#type.as_str() {
            "OnDelete" => {
                if s.rolling_update.is_some() {
                    forbidden(
                        e,
                        "spec.updateStrategy.rollingUpdate",
                        "only allowed for updateStrategy 'RollingUpdate'",
                    );
                }
            }
            "RollingUpdate" | "" => {
                if let Some(ru) = &s.rolling_update {
                    if let Some(pt) = ru.partition {
                        non_negative(e, "spec.updateStrategy.rollingUpdate.partition", pt.into());
                    }
                    if let Some(mu) = &ru.max_unavailable {
                        let p = "spec.updateStrategy.rollingUpdate.maxUnavailable";
                        if validate_percent_or_int(e, p, mu) && is_zero_int_or_percent(mu) {
                            invalid(e, p, mu, "must be greater than 0");
                        }
                    }
                }
            }
            other => unsupported(
                e,
                "spec.updateStrategy.type",
                other,
                &["OnDelete", "RollingUpdate"],
            ),
        }
    }
    if let Some(rp) = &spec.persistent_volume_claim_retention_policy {
        let p = "spec.persistentVolumeClaimRetentionPolicy";
        one_of(
            e,
            &format!("{p}.whenDeleted"),
            &rp.when_deleted,
            &["Retain", "Delete"],
            true,
        );
        one_of(
            e,
            &format!("{p}.whenScaled"),
            &rp.when_scaled,
            &["Retain", "Delete"],
            true,
        );
    }
    if let Some(o) = &spec.ordinals {
        non_negative(e, "spec.ordinals.start", o.start.into());
    }
    let mut claim_names = Vec::new();
    for (i, pvc) in spec.volume_claim_templates.iter().enumerate() {
        let p = format!("spec.volumeClaimTemplates[{i}]");
        let name = pvc.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or("");
        if name.is_empty() {
            required(e, format!("{p}.metadata.name"), "");
        } else {
            check(
                e,
                &format!("{p}.metadata.name"),
                name,
                is_dns1123_subdomain(name),
            );
            claim_names.push(name.to_string());
        }
        match &pvc.spec {
            Some(s) => validate_pvc_spec(e, &format!("{p}.spec"), s),
            None => required(e, format!("{p}.spec"), ""),
        }
    }
    validate_workload_selector_and_template(
        e,
        "statefulset",
        spec.selector.as_ref(),
        spec.template.as_ref(),
        &claim_names,
    );
}

pub(super) fn validate_job_spec(e: &mut Errs, path: &str, spec: &v1::JobSpec, is_job: bool) {
    for (name, v) in [
        ("parallelism", spec.parallelism),
        ("completions", spec.completions),
        ("backoffLimit", spec.backoff_limit),
        ("ttlSecondsAfterFinished", spec.ttl_seconds_after_finished),
        ("backoffLimitPerIndex", spec.backoff_limit_per_index),
        ("maxFailedIndexes", spec.max_failed_indexes),
    ] {
        if let Some(v) = v {
            non_negative(e, format!("{path}.{name}"), v.into());
        }
    }
    if let Some(a) = spec.active_deadline_seconds {
        non_negative(e, format!("{path}.activeDeadlineSeconds"), a.into());
    }
    if let Some(mode) = &spec.completion_mode {
        one_of(
            e,
            &format!("{path}.completionMode"),
            mode,
            &["NonIndexed", "Indexed"],
            false,
        );
        if mode == "Indexed" && spec.completions.is_none() {
            required(
                e,
                format!("{path}.completions"),
                "when completion mode is Indexed",
            );
        }
    }
    if let Some(p) = &spec.pod_replacement_policy {
        one_of(
            e,
            &format!("{path}.podReplacementPolicy"),
            p,
            &["TerminatingOrFailed", "Failed"],
            false,
        );
    }
    let template = spec.template.as_ref();
    let Some(t) = template else {
        required(e, format!("{path}.template"), "");
        return;
    };
    if let Some(m) = &t.metadata {
        validate_labels(e, &format!("{path}.template.metadata.labels"), &m.labels);
    }
    if is_job {
        match &spec.selector {
            None => {
                if spec.manual_selector == Some(true) {
                    required(e, format!("{path}.selector"), "");
                }
            }
            Some(s) => {
                validate_label_selector(e, &Path::Root(path).field("selector"), s);
                if selector_is_empty(s) {
                    if spec.manual_selector == Some(true) {
                        invalid_str(
                            e,
                            format!("{path}.selector"),
                            "",
                            "empty selector is invalid for job",
                        );
                    }
                } else {
                    selector_matches_template_at(
                        e,
                        &format!("{path}.template.metadata.labels"),
                        s,
                        t,
                    );
                }
            }
        }
    }
    let ctx = PodCtx {
        restart_policies: &["OnFailure", "Never"],
        ..Default::default()
    };
    match &t.spec {
        Some(ps) => validate_pod_spec(e, &format!("{path}.template.spec"), ps, &ctx),
        None => required(e, format!("{path}.template.spec"), ""),
    }
}

pub(super) fn validate_cronjob_spec(e: &mut Errs, spec: &v1::CronJobSpec) {
    if spec.schedule.is_empty() {
        required(e, "spec.schedule", "");
    } else {
        // As Kubernetes' validateScheduleFormat: the cron parser's verdict (which accepts a
        // `TZ=`/`CRON_TZ=` prefix), then the ban on TZ in the schedule.
        if let Err(err) = validate_cron_with_tz(&spec.schedule) {
            invalid_str(e, "spec.schedule", &spec.schedule, &err);
        }
        if spec.schedule.contains("TZ") {
            invalid_str(
                e,
                "spec.schedule",
                &spec.schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            );
        }
    }
    if let Some(tz) = &spec.time_zone {
        validate_time_zone(e, "spec.timeZone", tz);
    }
    one_of(
        e,
        "spec.concurrencyPolicy",
        &spec.concurrency_policy,
        &["Allow", "Forbid", "Replace"],
        false,
    );
    for (name, v) in [
        ("startingDeadlineSeconds", spec.starting_deadline_seconds),
        (
            "successfulJobsHistoryLimit",
            spec.successful_jobs_history_limit,
        ),
        ("failedJobsHistoryLimit", spec.failed_jobs_history_limit),
    ] {
        if let Some(v) = v {
            non_negative(e, format!("spec.{name}"), v.into());
        }
    }
    match spec.job_template.as_ref().and_then(|jt| jt.spec.as_ref()) {
        Some(js) => {
            validate_job_spec(e, "spec.jobTemplate.spec", js, false);
            // ValidateJobTemplateSpec: the Job's selector is generated when it is created.
            if let Some(s) = &js.selector {
                let value = serde_json::to_string(s).unwrap_or_default();
                invalid(
                    e,
                    "spec.jobTemplate.spec.selector",
                    value,
                    "`selector` will be auto-generated",
                );
            }
            if js.manual_selector == Some(true) {
                e.push(FieldError::new(
                    "spec.jobTemplate.spec.manualSelector".to_string(),
                    "Unsupported value: true: supported values: \"nil\", \"false\"".to_string(),
                ));
            }
        }
        None => required(e, "spec.jobTemplate.spec", ""),
    }
}
