//! The HPA benchmark's driver (BENCHMARKS.md, "HorizontalPodAutoscaler"; run by
//! `services/autoscaler/bench/hpa.sh`, which starts the cluster and the HPA controller as its
//! own process and passes its pid and log here).
//!
//! 1. `HPAS` Deployments of `REPLICAS` sim pods each (100m cpu request, the
//!    `sim.coxswain.io/cpu` annotation at 50m: exactly the 50% target), all Running.
//! 2. One autoscaling/v2 HPA per Deployment (cpu Utilization 50%, min 1, max 2×REPLICAS).
//! 3. Coverage: once every HPA has been evaluated, `PERIODS` sync periods of the controller's
//!    debug log ("reconciled" lines) and its CPU (utime+stime from /proc): the longest gap
//!    between two evaluations of one HPA, evaluations per period, CPU per period, the cost of
//!    one evaluation.
//! 3. Reaction: `ROUNDS` rounds of `ROUND` Deployments whose pods' annotation is patched to
//!    150m; from each Deployment's last patch to its spec.replicas written by the HPA (seen on
//!    a watch).
//!
//! Settings are environment variables: SERVER, HPA_PID, HPA_LOG, SYNC_SECS, HPAS, REPLICAS,
//! PERIODS, ROUNDS, ROUND, TIMEOUT_SECS.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use coxswain_api::v1::{Deployment, HorizontalPodAutoscaler, Pod};
use coxswain_autoscaler::calc::parse_time_ms;
use coxswain_client::{Client, Event, Informer, ListParams};
use serde_json::json;
use tokio::sync::Semaphore;

const NS: &str = "default";

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// utime + stime of a process, in seconds.
fn cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("stat")?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// (time ms, hpa, took µs) of every "reconciled" line of the controller's log.
fn evaluations(log: &str) -> anyhow::Result<Vec<(i64, String, u64)>> {
    let text = std::fs::read_to_string(log)?;
    let mut out = Vec::new();
    for raw in text.lines() {
        // Strip ANSI colours.
        let mut line = String::with_capacity(raw.len());
        let mut esc = false;
        for c in raw.chars() {
            match (esc, c) {
                (false, '\u{1b}') => esc = true,
                (true, 'm') => esc = false,
                (true, _) => {}
                (false, c) => line.push(c),
            }
        }
        if !line.contains(" reconciled ") && !line.ends_with(" reconciled") {
            continue;
        }
        let Some(ts) = line.split_whitespace().next().and_then(parse_time_ms) else {
            continue;
        };
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .map(|v| v.trim_matches('"').to_string())
        };
        let (Some(hpa), Some(took)) = (field("hpa="), field("took_us=")) else {
            continue;
        };
        out.push((ts, hpa, took.parse().unwrap_or(0)));
    }
    Ok(out)
}

async fn bounded<F, Fut>(n: usize, limit: usize, f: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let sem = Arc::new(Semaphore::new(limit));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await?;
        let fut = f(i);
        tasks.push(tokio::spawn(async move {
            let r = fut.await;
            drop(permit);
            r
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server: String = env("SERVER", "http://127.0.0.1:50051".to_string());
    let hpa_pid: u32 = env("HPA_PID", 0);
    let hpa_log: String = env("HPA_LOG", String::new());
    let sync = Duration::from_secs_f64(env("SYNC_SECS", 15.0));
    let hpas: usize = env("HPAS", 1000);
    let replicas: i32 = env("REPLICAS", 10);
    let periods: u32 = env("PERIODS", 4);
    let rounds: usize = env("ROUNDS", 3);
    let round: usize = env("ROUND", 50);
    let timeout = Duration::from_secs(env("TIMEOUT_SECS", 120));
    if hpa_pid == 0 || hpa_log.is_empty() {
        bail!("HPA_PID and HPA_LOG are required");
    }
    let client = Client::connect(&server).await?;

    // 1. The Deployments, all pods Running.
    let t = Instant::now();
    let c = client.clone();
    bounded(hpas, 32, move |i| {
        let c = c.clone();
        async move {
            let d: Deployment = serde_json::from_value(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": format!("d{i}"), "namespace": NS},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": format!("d{i}")}},
                    "template": {"metadata": {"labels": {"app": format!("d{i}")},
                        "annotations": {"sim.coxswain.io/cpu": "50m"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx",
                        "resources": {"requests": {"cpu": "100m"}}}]}}}
            }))?;
            c.create(&d).await?;
            Ok(())
        }
    })
    .await?;
    let want = hpas * replicas as usize;
    let pods = Informer::<Pod>::new(client.clone()).start();
    pods.wait_synced().await;
    loop {
        let running = pods
            .list()
            .iter()
            .filter(|p| p.status.as_ref().is_some_and(|s| s.phase == "Running"))
            .count();
        if running >= want {
            break;
        }
        if t.elapsed() > Duration::from_secs(600) {
            bail!("only {running} of {want} pods Running after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    pods.stop();
    println!(
        "{hpas} Deployments, {want} pods Running in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // 2. The HPAs.
    let t = Instant::now();
    let c = client.clone();
    bounded(hpas, 32, move |i| {
        let c = c.clone();
        async move {
            let h: HorizontalPodAutoscaler = serde_json::from_value(json!({
                "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": format!("h{i}"), "namespace": NS},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": format!("d{i}")},
                    "minReplicas": 1, "maxReplicas": replicas * 2,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 50}}}]}
            }))?;
            c.create(&h).await?;
            Ok(())
        }
    })
    .await?;
    let created = now_ms();
    println!("{hpas} HPAs created in {:.1} s", t.elapsed().as_secs_f64());

    // 3. Coverage: wait for every HPA's first evaluation, then measure whole periods.
    loop {
        let seen: std::collections::HashSet<String> = evaluations(&hpa_log)?
            .into_iter()
            .map(|(_, h, _)| h)
            .collect();
        if seen.len() >= hpas {
            break;
        }
        if now_ms() - created > 4 * sync.as_millis() as i64 + 60_000 {
            bail!("only {} of {hpas} HPAs evaluated", seen.len());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first_all = now_ms();
    println!(
        "every HPA evaluated once {:.1} s after the creates ended (sync period {:.0} s)",
        (first_all - created) as f64 / 1000.0,
        sync.as_secs_f64()
    );
    let (t0, c0) = (now_ms(), cpu_secs(hpa_pid)?);
    tokio::time::sleep(sync * periods).await;
    let (t1, c1) = (now_ms(), cpu_secs(hpa_pid)?);
    let evs = evaluations(&hpa_log)?;
    let mut per_hpa: HashMap<&str, Vec<i64>> = HashMap::new();
    let mut took: Vec<f64> = Vec::new();
    for (ts, h, us) in &evs {
        per_hpa.entry(h.as_str()).or_default().push(*ts);
        if *ts >= t0 && *ts <= t1 {
            took.push(*us as f64 / 1000.0);
        }
    }
    let mut max_gap = 0i64;
    let mut gaps: Vec<f64> = Vec::new();
    for ts in per_hpa.values_mut() {
        ts.sort();
        // The gaps that overlap the window (the evaluation before t0 to the first in it, …,
        // the last to t1 when none follows).
        let mut prev: Option<i64> = ts.iter().rev().find(|t| **t < t0).copied();
        for &x in ts.iter().filter(|t| **t >= t0 && **t <= t1) {
            if let Some(p) = prev {
                max_gap = max_gap.max(x - p);
                gaps.push((x - p) as f64 / 1000.0);
            }
            prev = Some(x);
        }
        if let Some(p) = prev {
            max_gap = max_gap.max(t1 - p);
        }
    }
    took.sort_by(f64::total_cmp);
    gaps.sort_by(f64::total_cmp);
    let in_window = took.len();
    println!(
        "coverage over {periods} periods: {in_window} evaluations ({:.0} per period for {hpas} HPAs); \
         longest gap between two evaluations of one HPA {:.2} s (period {:.0} s); gap median {:.2} s",
        in_window as f64 / periods as f64,
        max_gap as f64 / 1000.0,
        sync.as_secs_f64(),
        pct(&gaps, 0.5)
    );
    println!(
        "controller CPU: {:.2} s over {periods} periods = {:.3} s per sync period ({:.1} % of one core); \
         one evaluation: median {:.2} ms, p99 {:.2} ms wall",
        c1 - c0,
        (c1 - c0) / periods as f64,
        100.0 * (c1 - c0) / ((t1 - t0) as f64 / 1000.0),
        pct(&took, 0.5),
        pct(&took, 0.99)
    );

    // 4. Reaction: usage up on ROUND Deployments at a time → spec.replicas written.
    let scaled: Arc<Mutex<HashMap<String, i64>>> = Arc::default();
    let s = scaled.clone();
    let deployments = Informer::<Deployment>::new(client.clone())
        .on_event(move |ev| {
            if let Event::Modified { old, new } = ev {
                let r = |d: &Deployment| d.spec.as_ref().and_then(|s| s.replicas);
                if r(old) != r(new) {
                    let name = new
                        .metadata
                        .as_ref()
                        .map(|m| m.name.clone())
                        .unwrap_or_default();
                    s.lock().expect("scaled").entry(name).or_insert_with(now_ms);
                }
            }
        })
        .start();
    deployments.wait_synced().await;
    let mut reactions: Vec<f64> = Vec::new();
    for r in 0..rounds {
        let names: Vec<String> = (r * round..(r + 1) * round)
            .filter(|i| *i < hpas)
            .map(|i| format!("d{i}"))
            .collect();
        let patched: Arc<Mutex<HashMap<String, i64>>> = Arc::default();
        let (c, p, n) = (client.clone(), patched.clone(), names.clone());
        bounded(n.len(), 16, move |i| {
            let (c, p, name) = (c.clone(), p.clone(), n[i].clone());
            async move {
                let (list, _) = c
                    .list::<Pod>(NS, &ListParams::labels(format!("app={name}")))
                    .await?;
                let patch = json!({"metadata": {"annotations": {"sim.coxswain.io/cpu": "150m"}}});
                for pod in list {
                    let pn = pod.metadata.map(|m| m.name).unwrap_or_default();
                    c.patch::<Pod>(NS, &pn, &patch).await?;
                }
                p.lock().expect("patched").insert(name, now_ms());
                Ok(())
            }
        })
        .await?;
        let start = Instant::now();
        loop {
            let done = {
                let s = scaled.lock().expect("scaled");
                names.iter().filter(|n| s.contains_key(*n)).count()
            };
            if done == names.len() || start.elapsed() > timeout {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let s = scaled.lock().expect("scaled");
        let p = patched.lock().expect("patched");
        let mut round_ms: Vec<f64> = names
            .iter()
            .filter_map(|n| Some((s.get(n)? - p.get(n)?) as f64 / 1000.0))
            .collect();
        round_ms.sort_by(f64::total_cmp);
        println!(
            "reaction round {}: {} of {} scaled; median {:.2} s, max {:.2} s",
            r + 1,
            round_ms.len(),
            names.len(),
            pct(&round_ms, 0.5),
            round_ms.last().copied().unwrap_or(f64::NAN)
        );
        reactions.extend(round_ms);
    }
    deployments.stop();
    reactions.sort_by(f64::total_cmp);
    println!(
        "reaction (usage patched → spec.replicas written), {} Deployments: min {:.2} s, median {:.2} s, p90 {:.2} s, max {:.2} s",
        reactions.len(),
        reactions.first().copied().unwrap_or(f64::NAN),
        pct(&reactions, 0.5),
        pct(&reactions, 0.9),
        reactions.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}
