//! `loadgen hpa TARGET --hpa NAME -n NS --stages ... [--out DIR]`: drives the load and samples,
//! every `--sample` (1 s), the achieved rate and latency, the HPA's current/desired replicas and
//! current/target utilization, the target Deployment's ready replicas and the HPA's decisions
//! (`coxswain.v1.Autoscaler/History`). After the load it keeps sampling until the HPA is back at
//! minReplicas (bounded by `--settle-timeout`). Writes `DIR/timeline.csv`, `DIR/timeline.svg` and
//! `DIR/timeline.png` and prints a summary: time to the first scale-up after the load started, peak replicas, time
//! to settle back at minReplicas after the load stopped.
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use coxswain_api::v1::autoscaler_client::AutoscalerClient;
use coxswain_api::v1::HistoryRequest;
use coxswain_client::{v1, Client};

use crate::cli::{self, Plan, RunArgs, EXIT_FAILED, EXIT_USAGE};
use crate::engine::Run;
use crate::stats::new_histogram;
use crate::target::{self, Spec};

/// Reproduce an HPA scale-out and scale-in: load by stages, the HPA sampled every second.
#[derive(Parser, Debug)]
#[command(name = "loadgen hpa")]
pub struct HpaArgs {
    /// svc/NAME or a URL.
    pub target: String,
    /// The HorizontalPodAutoscaler to watch.
    #[arg(long)]
    pub hpa: String,
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// The load: DURATION:RATE,... (k6's ramping arrival rate).
    #[arg(long, default_value = "10s:50,60s:50,1s:0")]
    pub stages: String,
    #[arg(short = 'c', long, default_value_t = 100)]
    pub concurrency: usize,
    #[arg(short = 't', long, default_value = "5s")]
    pub timeout: String,
    #[arg(long)]
    pub threads: Option<usize>,
    /// Where timeline.csv, timeline.svg and timeline.png go.
    #[arg(long, default_value = "loadgen-hpa")]
    pub out: PathBuf,
    #[arg(long, default_value = "1s")]
    pub sample: String,
    /// After the load: how long to wait for the HPA to settle back at minReplicas.
    #[arg(long, default_value = "10m")]
    pub settle_timeout: String,
    #[command(flatten)]
    pub service: crate::cli::ServiceOpts,
}

/// One sample of the timeline.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    pub t: f64,
    /// True while the load runs.
    pub load: bool,
    pub asked_rps: f64,
    pub rps: f64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub current_replicas: i32,
    pub desired_replicas: i32,
    /// Current average utilization (%) of the first Resource metric, when reported.
    pub utilization: Option<i32>,
    pub target_utilization: Option<i32>,
    pub ready_replicas: i32,
    /// Scale decisions seen in this interval ("3→5").
    pub events: Vec<String>,
}

/// The summary of an experiment.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub first_scale_up: Option<f64>,
    pub peak_replicas: i32,
    pub settled_after_load: Option<f64>,
}

/// Pure: time to the first scale-up after t=0, the peak, and the time after the load ended at
/// which the HPA was back at `min` (current and ready) and stayed there.
pub fn summarize(samples: &[Sample], min: i32) -> Outcome {
    // The replicas before the load: the HPA's current count, or before its first sync (when
    // it reports 0) the Deployment's ready replicas.
    let start = samples
        .first()
        .map(|s| match (s.current_replicas, s.ready_replicas) {
            (0, 0) => min,
            (0, r) => r,
            (c, _) => c,
        })
        .unwrap_or(min);
    let first_scale_up = samples
        .iter()
        .find(|s| s.desired_replicas > start || s.current_replicas > start)
        .map(|s| s.t);
    let peak_replicas = samples
        .iter()
        .map(|s| s.current_replicas)
        .max()
        .unwrap_or(0);
    let load_end = samples
        .iter()
        .filter(|s| s.load)
        .map(|s| s.t)
        .fold(0.0, f64::max);
    let at_min = |s: &Sample| s.current_replicas == min && s.ready_replicas == min;
    let settled_after_load = match samples.iter().rposition(|s| !at_min(s)) {
        None => Some(0.0),
        Some(i) if i + 1 < samples.len() && samples[i + 1].t >= load_end => {
            Some((samples[i + 1].t - load_end).max(0.0))
        }
        _ => None,
    };
    Outcome {
        first_scale_up,
        peak_replicas,
        settled_after_load,
    }
}

pub const CSV_HEADER: &str = "t_s,load,asked_rps,rps,errors,p50_ms,p99_ms,current_replicas,desired_replicas,utilization_pct,target_utilization_pct,ready_replicas,events";

pub fn csv(samples: &[Sample]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    let opt = |v: Option<i32>| v.map(|v| v.to_string()).unwrap_or_default();
    for s in samples {
        out.push_str(&format!(
            "{:.1},{},{:.1},{:.1},{},{:.2},{:.2},{},{},{},{},{},{}\n",
            s.t,
            u8::from(s.load),
            s.asked_rps,
            s.rps,
            s.errors,
            s.p50_ms,
            s.p99_ms,
            s.current_replicas,
            s.desired_replicas,
            opt(s.utilization),
            opt(s.target_utilization),
            s.ready_replicas,
            s.events.join(" ")
        ));
    }
    out
}

fn resource_utilization(h: &v1::HorizontalPodAutoscaler) -> (Option<i32>, Option<i32>) {
    let target = h.spec.as_ref().and_then(|s| {
        // autoscaling/v1 keeps its one CPU target in its own field.
        s.target_cpu_utilization_percentage.or_else(|| {
            s.metrics.iter().find_map(|m| {
                m.resource
                    .as_ref()
                    .and_then(|r| r.target.as_ref())
                    .and_then(|t| t.average_utilization)
            })
        })
    });
    let current = h.status.as_ref().and_then(|s| {
        s.current_metrics.iter().find_map(|m| {
            m.resource
                .as_ref()
                .and_then(|r| r.current.as_ref())
                .and_then(|c| c.average_utilization)
        })
    });
    (current, target)
}

/// Runs the experiment; returns the exit code.
pub fn main(argv: Vec<String>) -> i32 {
    let a = match HpaArgs::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { 0 };
        }
    };
    let parse = |name: &str, s: &str| crate::duration(s).map_err(|e| format!("--{name}: {e}"));
    let (sample, settle) = match (
        parse("sample", &a.sample),
        parse("settle-timeout", &a.settle_timeout),
    ) {
        (Ok(s), Ok(t)) if s >= Duration::from_millis(100) => (s, t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
        _ => {
            eprintln!("error: --sample: at least 100ms");
            return EXIT_USAGE;
        }
    };
    // The load itself is an ordinary run's plan.
    let mut run_argv = vec![
        "loadgen".to_string(),
        a.target.clone(),
        "--namespace".into(),
        a.namespace.clone(),
        "--stages".into(),
        a.stages.clone(),
        "-c".into(),
        a.concurrency.to_string(),
        "-t".into(),
        a.timeout.clone(),
        "--path".into(),
        a.service.path.clone(),
    ];
    if let Some(t) = a.threads {
        run_argv.extend(["--threads".into(), t.to_string()]);
    }
    let plan: Plan = match RunArgs::try_parse_from(run_argv)
        .map_err(|e| e.to_string())
        .and_then(cli::plan)
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    rt.block_on(experiment(a, plan, sample, settle))
}

async fn experiment(a: HpaArgs, plan: Plan, every: Duration, settle: Duration) -> i32 {
    let client = match Client::connect(&a.service.server).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "error: connecting to the store at {}: {e}",
                a.service.server
            );
            return EXIT_USAGE;
        }
    };
    let hpa: v1::HorizontalPodAutoscaler = match client.get(&a.namespace, &a.hpa).await {
        Ok(Some(h)) => h,
        Ok(None) => {
            eprintln!(
                "error: horizontalpodautoscalers \"{}\" not found in namespace \"{}\"\nnothing was sent",
                a.hpa, a.namespace
            );
            return EXIT_USAGE;
        }
        Err(e) => {
            eprintln!("error: getting the HPA: {e}");
            return EXIT_FAILED;
        }
    };
    let spec = hpa.spec.clone().unwrap_or_default();
    let min = spec.min_replicas.unwrap_or(1);
    let deployment = spec.scale_target_ref.map(|r| r.name).unwrap_or_default();
    let target = match &plan.spec {
        Spec::Url(u) => target::resolve_url(u).await,
        Spec::Service { name, namespace } => {
            let opts = target::ServiceOpts {
                port: a.service.port.clone(),
                path: a.service.path.clone(),
            };
            target::resolve_service(&a.service.server, name, namespace, a.service.via, &opts).await
        }
    };
    let target = match target {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}\nnothing was sent");
            return EXIT_USAGE;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&a.out) {
        eprintln!("error: --out {}: {e}", a.out.display());
        return EXIT_USAGE;
    }
    let mut autoscaler = AutoscalerClient::new(
        match tonic::transport::Endpoint::from_shared(a.service.server.clone())
            .map_err(|e| e.to_string())
            .and_then(|e| {
                coxswain_client::config::secure(e, &a.service.server).map_err(|e| e.to_string())
            }) {
            Ok(e) => e.connect_lazy(),
            Err(e) => {
                eprintln!("error: --server: {e}");
                return EXIT_USAGE;
            }
        },
    );
    eprintln!(
        "loadgen hpa: {} → hpa {}/{} (min {min}, max {}), deployment {deployment}, stages {}",
        target.display, a.namespace, a.hpa, spec.max_replicas, a.stages
    );
    let cfg = (plan.cfg_without_target)(target);
    let mut run = match Run::start(cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    let mut seen: BTreeSet<(String, i32, i32)> = BTreeSet::new();
    // Decisions from before the run are not this experiment's.
    if let Ok(h) = autoscaler
        .history(HistoryRequest {
            namespace: a.namespace.clone(),
            name: a.hpa.clone(),
            limit: 1000,
        })
        .await
    {
        for d in h.into_inner().decisions {
            seen.insert((d.time, d.current_replicas, d.desired_replicas));
        }
    }
    let mut samples: Vec<Sample> = vec![];
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut hist = new_histogram();
    let mut last = run.counts();
    let mut last_t = 0.0;
    let mut load = true;
    let mut load_end_t = None;
    let settle_deadline = |t: f64| t + settle.as_secs_f64();
    loop {
        tokio::select! {
            _ = run.finished(), if load => {
                load = false;
                load_end_t = Some(run.elapsed().as_secs_f64());
                continue;
            }
            _ = tick.tick() => {}
        }
        let t = run.elapsed().as_secs_f64();
        let c = run.counts();
        hist.reset();
        run.take_interval(&mut hist);
        let q = |q: f64| {
            if hist.is_empty() {
                0.0
            } else {
                hist.value_at_quantile(q) as f64 / 1000.0
            }
        };
        let mut s = Sample {
            t,
            load,
            asked_rps: if load {
                run.asked_rate().unwrap_or(0.0)
            } else {
                0.0
            },
            rps: (c.requests() - last.requests()) as f64 / (t - last_t).max(1e-9),
            errors: c.errors - last.errors,
            p50_ms: q(0.5),
            p99_ms: q(0.99),
            ..Default::default()
        };
        last = c;
        last_t = t;
        if let Ok(Some(h)) = client
            .get::<v1::HorizontalPodAutoscaler>(&a.namespace, &a.hpa)
            .await
        {
            let st = h.status.clone().unwrap_or_default();
            s.current_replicas = st.current_replicas;
            s.desired_replicas = st.desired_replicas;
            (s.utilization, s.target_utilization) = resource_utilization(&h);
        }
        if let Ok(Some(d)) = client
            .get::<v1::Deployment>(&a.namespace, &deployment)
            .await
        {
            s.ready_replicas = d.status.map(|st| st.ready_replicas).unwrap_or(0);
        }
        if let Ok(h) = autoscaler
            .history(HistoryRequest {
                namespace: a.namespace.clone(),
                name: a.hpa.clone(),
                limit: 100,
            })
            .await
        {
            for d in h.into_inner().decisions {
                let key = (d.time.clone(), d.current_replicas, d.desired_replicas);
                if d.rescale && !seen.contains(&key) {
                    s.events
                        .push(format!("{}→{}", d.current_replicas, d.desired_replicas));
                }
                seen.insert(key);
            }
        }
        eprintln!(
            "[{t:6.1}s] {} {:.0} req/s (asked {:.0})  p99 {:.1}ms  cpu {}/{}%  replicas {}→{} ready {} {}",
            if s.load { "load " } else { "after" },
            s.rps,
            s.asked_rps,
            s.p99_ms,
            s.utilization.map(|u| u.to_string()).unwrap_or("-".into()),
            s.target_utilization.map(|u| u.to_string()).unwrap_or("-".into()),
            s.current_replicas,
            s.desired_replicas,
            s.ready_replicas,
            s.events.join(" ")
        );
        let done_settling = !load
            && s.current_replicas == min
            && s.ready_replicas == min
            && samples.iter().any(|p| p.current_replicas > min);
        samples.push(s);
        if let Some(end) = load_end_t {
            if done_settling || t > settle_deadline(end) {
                break;
            }
        }
    }
    let summary = run.join();
    let outcome = summarize(&samples, min);
    let csv_path = a.out.join("timeline.csv");
    let svg_path = a.out.join("timeline.svg");
    let png_path = a.out.join("timeline.png");
    if let Err(e) = std::fs::write(&csv_path, csv(&samples)) {
        eprintln!("error: writing {}: {e}", csv_path.display());
        return EXIT_FAILED;
    }
    let title = format!(
        "loadgen hpa {}/{} — stages {}",
        a.namespace, a.hpa, a.stages
    );
    let plots: [(&PathBuf, crate::plot::Plot); 2] =
        [(&svg_path, crate::plot::svg), (&png_path, crate::plot::png)];
    for (path, draw) in plots {
        if let Err(e) = draw(path, &title, &samples, min, spec.max_replicas) {
            eprintln!("error: writing {}: {e}", path.display());
            return EXIT_FAILED;
        }
    }
    let fmt = |v: Option<f64>| {
        v.map(|v| format!("{v:.1}s"))
            .unwrap_or_else(|| "never".into())
    };
    println!(
        "requests {} ({} errors, {:.1} req/s)\nfirst scale-up after {}\npeak replicas {} (max {})\nback at minReplicas {min} {} after the load stopped\ntimeline: {} {} {}",
        summary.requests(),
        summary.error_count(),
        summary.rps(),
        fmt(outcome.first_scale_up),
        outcome.peak_replicas,
        spec.max_replicas,
        fmt(outcome.settled_after_load),
        csv_path.display(),
        svg_path.display(),
        png_path.display()
    );
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: f64, load: bool, cur: i32, des: i32, ready: i32) -> Sample {
        Sample {
            t,
            load,
            current_replicas: cur,
            desired_replicas: des,
            ready_replicas: ready,
            ..Default::default()
        }
    }

    #[test]
    fn summarizes_scale_out_and_in() {
        let tl = vec![
            s(1.0, true, 1, 1, 1),
            s(2.0, true, 1, 3, 1),
            s(3.0, true, 3, 3, 2),
            s(4.0, true, 4, 4, 4),
            s(5.0, false, 4, 4, 4),
            s(6.0, false, 2, 1, 2),
            s(7.0, false, 1, 1, 1),
            s(8.0, false, 1, 1, 1),
        ];
        let o = summarize(&tl, 1);
        assert_eq!(o.first_scale_up, Some(2.0));
        assert_eq!(o.peak_replicas, 4);
        assert_eq!(o.settled_after_load, Some(3.0));
        let never = summarize(&tl[..6], 1);
        assert_eq!(never.settled_after_load, None);
        // Before the HPA's first sync it reports 0 current and desired replicas: reporting
        // them is not a scale-up.
        let mut unsynced = vec![s(0.0, true, 0, 0, 1), s(0.5, true, 1, 0, 1)];
        unsynced.extend(tl.iter().cloned());
        assert_eq!(summarize(&unsynced, 1).first_scale_up, Some(2.0));
        let c = csv(&tl);
        assert!(c.starts_with(CSV_HEADER));
        assert_eq!(c.lines().count(), 9);
    }
}
