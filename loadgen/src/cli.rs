//! `loadgen [run] TARGET [flags]`: flags → [`Config`], the run with its progress line, the
//! report and the exit code. A thin layer over the engine and the reporter.
//!
//! Exit codes: 0 done; 1 the run failed (no request got a response, or the target could not be
//! resolved); 2 bad input (flags, URL, unknown Service); 99 a threshold failed (k6's code).
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use http::Method;

use crate::engine::{Config, Engine, Run};
use crate::report::{Report, RunInfo, Sample};
use crate::schedule::Schedule;
use crate::stats::new_histogram;
use crate::target::{self, Spec, Via};
use crate::threshold::Threshold;

pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_THRESHOLDS: i32 = 99;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
    Csv,
}

/// An HTTP load generator: closed loop (as hey), constant arrival rate with coordinated-omission
/// correction (as wrk2) and ramping arrival rates (as k6).
#[derive(Parser, Debug)]
#[command(name = "loadgen", version)]
#[command(after_help = "Examples:
  loadgen http://127.0.0.1:8080/ -c 64 -z 10s
  loadgen http://127.0.0.1:8080/ --rate 500 -z 30s --threshold 'p99<200ms' --threshold 'errors<1%'
  loadgen svc/nginx -n mayikt-sit --via node-port --stages 30s:50,2m:500,1m:0 -o json

On a small machine shared with the server under test, run a closed loop as SCHED_BATCH:
  chrt -b 0 loadgen http://127.0.0.1:8080/ -c 64 -z 10s
Woken by each response, a client under the normal policy preempts the server in the middle of
its work. On 2 cores against coxswain's built-in web server (keep-alive, 64 connections) the
server then spent 6.2-7.8 us of CPU per request instead of about 5.5, and loadgen made
0.71-0.96x wrk's requests per second; with both tools as SCHED_BATCH, 1.13x (BENCHMARKS.md,
loadgen).")]
pub struct RunArgs {
    /// http://HOST[:PORT]/PATH, or svc/NAME (a Service, resolved through the store).
    // The text is clap's help too, so it stays plain rather than escaped for rustdoc.
    #[allow(rustdoc::broken_intra_doc_links)]
    pub target: String,
    /// A number: how many requests (as hey's -n). Anything else: the Service's namespace
    /// (as kubectl's -n). --requests and --namespace say it unambiguously.
    #[arg(short = 'n', value_name = "N|NAMESPACE")]
    pub n: Option<String>,
    #[arg(long, value_name = "N")]
    pub requests: Option<u64>,
    #[arg(long)]
    pub namespace: Option<String>,
    /// Concurrent connections (closed loop) / the most requests in flight (open loop).
    #[arg(short = 'c', long, default_value_t = 50)]
    pub concurrency: usize,
    /// Run for this long (e.g. 30s, 2m). Without -n, -z or stages: 200 requests.
    #[arg(short = 'z', long = "duration")]
    pub duration: Option<String>,
    /// Open loop: requests per second, latency measured from each request's due time.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open loop with ramps: DURATION:RATE,... (k6's ramping arrival rate).
    #[arg(long)]
    pub stages: Option<String>,
    /// The rate the first stage ramps from.
    #[arg(long, default_value_t = 0.0)]
    pub start_rate: f64,
    #[arg(short = 'm', long, default_value = "GET")]
    pub method: String,
    /// A request header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// The request body.
    #[arg(short = 'd', long)]
    pub body: Option<String>,
    /// The request body, from a file.
    #[arg(short = 'D', long)]
    pub body_file: Option<PathBuf>,
    /// The Content-Type header.
    #[arg(short = 'T', long)]
    pub content_type: Option<String>,
    /// Per-request timeout (a bare number is seconds).
    #[arg(short = 't', long, default_value = "20s")]
    pub timeout: String,
    #[arg(long, default_value = "10s")]
    pub connect_timeout: String,
    /// A new connection for every request (Connection: close).
    #[arg(long)]
    pub disable_keepalive: bool,
    /// HTTP/2 over plain TCP (prior knowledge, h2c).
    #[arg(long)]
    pub http2: bool,
    /// The HTTP/1.1 client: loadgen's own keep-alive loop, or hyper's (HTTP/2 is always hyper).
    #[arg(long, value_enum, default_value = "fast")]
    pub engine: Engine,
    /// HTTP/2: connections the requests are multiplexed over (default: one per thread).
    #[arg(long)]
    pub connections: Option<usize>,
    /// Worker threads (default: the number of cores).
    #[arg(long)]
    pub threads: Option<usize>,
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Output,
    /// Pass/fail criterion, e.g. 'p99<200ms', 'errors<1%', 'rps>=1000' (repeatable).
    #[arg(long = "threshold")]
    pub thresholds: Vec<String>,
    /// How often the progress line and the timeline are updated.
    #[arg(long, default_value = "1s")]
    pub interval: String,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub service: ServiceOpts,
}

/// How a `svc/NAME` target is found and reached (`run` and `hpa` alike).
#[derive(clap::Args, Clone, Debug)]
pub struct ServiceOpts {
    /// The object store, for svc/NAME targets.
    #[arg(
        long,
        env = "COXSWAIN_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    /// How a Service is reached.
    #[arg(long, value_enum, default_value = "cluster-ip")]
    pub via: Via,
    /// The Service port (name or number; default its first TCP port).
    #[arg(long)]
    pub port: Option<String>,
    /// The request path for a Service target.
    #[arg(long, default_value = "/")]
    pub path: String,
}

/// Flags checked and turned into what the run needs (except the target, resolved later).
pub struct Plan {
    pub spec: Spec,
    pub cfg_without_target: Box<dyn FnOnce(target::Target) -> Config>,
    pub thresholds: Vec<Threshold>,
    pub interval: Duration,
    pub info: RunInfo,
}

const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

fn dur(name: &str, s: &str) -> Result<Duration, String> {
    let d = crate::duration(s).map_err(|e| format!("--{name}: {e}"))?;
    if d > MAX_DURATION {
        return Err(format!("--{name}: {s} is longer than a week"));
    }
    Ok(d)
}

pub fn plan(a: RunArgs) -> Result<Plan, String> {
    let mut requests = a.requests;
    let mut namespace = a.namespace.clone();
    if let Some(n) = &a.n {
        match n.parse::<u64>() {
            Ok(v) if requests.is_none() => requests = Some(v),
            Ok(_) => return Err("-n N and --requests both given".into()),
            Err(_) if namespace.is_none() => namespace = Some(n.clone()),
            Err(_) => return Err("-n NAMESPACE and --namespace both given".into()),
        }
    }
    if requests == Some(0) {
        return Err("-n: the request count must be at least 1".into());
    }
    let spec = Spec::parse(&a.target, namespace.as_deref().unwrap_or("default"));
    if let Spec::Url(u) = &spec {
        target::parse_url(u)?;
    }
    if a.concurrency == 0 || a.concurrency > 100_000 {
        return Err(format!("-c {}: want 1..=100000", a.concurrency));
    }
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 || threads > 1024 {
        return Err(format!("--threads {threads}: want 1..=1024"));
    }
    let duration = a
        .duration
        .as_deref()
        .map(|d| dur("duration", d))
        .transpose()?;
    if duration == Some(Duration::ZERO) {
        return Err("-z: the duration must be above 0".into());
    }
    let timeout = dur("timeout", &a.timeout)?;
    let connect_timeout = dur("connect-timeout", &a.connect_timeout)?;
    if timeout.is_zero() || connect_timeout.is_zero() {
        return Err("timeouts must be above 0".into());
    }
    let interval = dur("interval", &a.interval)?;
    if interval < Duration::from_millis(10) {
        return Err("--interval: at least 10ms".into());
    }
    let schedule = match (a.rate, &a.stages) {
        (Some(_), Some(_)) => return Err("--rate and --stages are exclusive".into()),
        (Some(r), None) => {
            if r.is_nan() || r <= 0.0 {
                return Err(format!("--rate {r}: must be above 0"));
            }
            let len = match (duration, requests) {
                (Some(d), _) => d,
                (None, Some(n)) => Duration::from_secs_f64(n as f64 / r),
                (None, None) => return Err("--rate needs -z DURATION or -n N".into()),
            };
            Some(Schedule::constant(r, len).map_err(|e| format!("--rate: {e}"))?)
        }
        (None, Some(st)) => {
            if duration.is_some() {
                return Err("--stages set the duration; drop -z".into());
            }
            Some(Schedule::parse_stages(a.start_rate, st).map_err(|e| format!("--stages: {e}"))?)
        }
        (None, None) => None,
    };
    if schedule
        .as_ref()
        .is_some_and(|s| s.duration() > MAX_DURATION)
    {
        return Err("the schedule is longer than a week".into());
    }
    if schedule.is_none() && requests.is_none() && duration.is_none() {
        requests = Some(200);
    }
    let method = Method::from_bytes(a.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("-m {:?}: not an HTTP method", a.method))?;
    let mut headers = HeaderMap::new();
    for h in &a.headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| format!("-H {h:?}: want \"Name: value\""))?;
        let k = HeaderName::from_bytes(k.trim().as_bytes())
            .map_err(|_| format!("-H {h:?}: bad header name"))?;
        let v =
            HeaderValue::from_str(v.trim()).map_err(|_| format!("-H {h:?}: bad header value"))?;
        headers.append(k, v);
    }
    if let Some(ct) = &a.content_type {
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(ct).map_err(|_| format!("-T {ct:?}: bad header value"))?,
        );
    }
    let body = match (&a.body, &a.body_file) {
        (Some(_), Some(_)) => return Err("-d and -D are exclusive".into()),
        (Some(b), None) => Bytes::from(b.clone().into_bytes()),
        (None, Some(f)) => {
            Bytes::from(std::fs::read(f).map_err(|e| format!("-D {}: {e}", f.display()))?)
        }
        (None, None) => Bytes::new(),
    };
    if a.connections == Some(0) {
        return Err("--connections: at least 1".into());
    }
    let thresholds = a
        .thresholds
        .iter()
        .map(|t| Threshold::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    let concurrency = match requests {
        Some(n) if schedule.is_none() => a.concurrency.min(n as usize),
        _ => a.concurrency,
    };
    let mode = match (&schedule, a.rate) {
        (Some(s), Some(r)) => format!("constant rate {r}/s for {:?}", s.duration()),
        (Some(s), None) => format!(
            "stages {} ({:?})",
            a.stages.clone().unwrap_or_default(),
            s.duration()
        ),
        (None, _) => match (requests, duration) {
            (Some(n), Some(d)) => format!("closed loop, {n} requests within {d:?}"),
            (Some(n), None) => format!("closed loop, {n} requests"),
            (None, Some(d)) => format!("closed loop for {d:?}"),
            (None, None) => "closed loop".into(),
        },
    };
    let protocol = match (a.http2, a.disable_keepalive) {
        (true, false) => "HTTP/2".to_string(),
        (true, true) => "HTTP/2, no reuse".to_string(),
        (false, false) => "HTTP/1.1 keep-alive".to_string(),
        (false, true) => "HTTP/1.1 no keep-alive".to_string(),
    };
    let protocol = match (a.http2, a.engine) {
        (false, Engine::Hyper) => format!("{protocol} (hyper)"),
        _ => protocol,
    };
    let info = RunInfo {
        target: a.target.clone(),
        method: method.to_string(),
        protocol,
        threads: threads.min(concurrency),
        concurrency,
        mode,
    };
    let (http2, keepalive, connections, engine) =
        (a.http2, !a.disable_keepalive, a.connections, a.engine);
    Ok(Plan {
        spec,
        cfg_without_target: Box::new(move |target| Config {
            target,
            method,
            headers,
            body,
            http2,
            keepalive,
            engine,
            concurrency,
            connections: connections.unwrap_or(threads),
            threads,
            requests,
            duration,
            schedule,
            timeout,
            connect_timeout,
        }),
        thresholds,
        interval,
        info,
    })
}

/// Strips a leading `run` (`loadgen run URL` = `loadgen URL`).
pub fn normalize(mut argv: Vec<String>) -> Vec<String> {
    if argv.get(1).map(String::as_str) == Some("run") {
        argv.remove(1);
    }
    argv
}

/// The whole command; returns the exit code.
pub fn main(argv: Vec<String>) -> i32 {
    let args = match RunArgs::try_parse_from(normalize(argv)) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { 0 };
        }
    };
    let output = args.output;
    let quiet = args.quiet;
    let (server, via, port, path) = (
        args.service.server.clone(),
        args.service.via,
        args.service.port.clone(),
        args.service.path.clone(),
    );
    let plan = match plan(args) {
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
    rt.block_on(async move {
        let target = match &plan.spec {
            Spec::Url(u) => target::resolve_url(u).await,
            Spec::Service { name, namespace } => {
                let opts = target::ServiceOpts { port, path };
                target::resolve_service(&server, name, namespace, via, &opts).await
            }
        };
        let target = match target {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}\nnothing was sent");
                return EXIT_USAGE;
            }
        };
        let mut info = plan.info.clone();
        info.target = target.display.clone();
        let cfg = (plan.cfg_without_target)(target);
        execute(cfg, info, &plan.thresholds, plan.interval, output, quiet).await
    })
}

/// Runs, shows progress, prints the report; returns the exit code.
pub async fn execute(
    cfg: Config,
    info: RunInfo,
    thresholds: &[Threshold],
    interval: Duration,
    output: Output,
    quiet: bool,
) -> i32 {
    let mut run = match Run::start(cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    let tty = std::io::stderr().is_terminal();
    let mut timeline: Vec<Sample> = vec![];
    let mut tick = tokio::time::interval_at(run.started() + interval, interval);
    let mut hist = new_histogram();
    let mut last = run.counts();
    let mut last_t = 0.0;
    let mut interrupted = false;
    loop {
        tokio::select! {
            _ = run.finished() => break,
            _ = tokio::signal::ctrl_c(), if !interrupted => {
                interrupted = true;
                run.stop();
                if !quiet { eprintln!("\ninterrupted: waiting for requests in flight"); }
            }
            _ = tick.tick() => {
                let now = run.elapsed().as_secs_f64();
                let c = run.counts();
                hist.reset();
                run.take_interval(&mut hist);
                let q = |q: f64| if hist.is_empty() { 0.0 } else { hist.value_at_quantile(q) as f64 / 1000.0 };
                let dt = (now - last_t).max(1e-9);
                let sample = Sample {
                    elapsed: now,
                    requests: c.requests() - last.requests(),
                    errors: c.errors - last.errors,
                    rps: (c.requests() - last.requests()) as f64 / dt,
                    asked_rps: run.asked_rate(),
                    p50_ms: q(0.5),
                    p90_ms: q(0.9),
                    p99_ms: q(0.99),
                    max_ms: if hist.is_empty() { 0.0 } else { hist.max() as f64 / 1000.0 },
                };
                if !quiet {
                    progress(&sample, c.requests(), c.errors, run.planned(), tty);
                }
                timeline.push(sample);
                last = c;
                last_t = now;
            }
        }
    }
    if !quiet && tty {
        eprintln!();
    }
    let summary = run.join();
    let verdicts: Vec<_> = thresholds.iter().map(|t| t.check(&summary)).collect();
    let report = Report {
        info: &info,
        summary: &summary,
        timeline: &timeline,
        verdicts: &verdicts,
    };
    let out = match output {
        Output::Text => report.text(),
        Output::Json => format!("{:#}\n", report.json()),
        Output::Csv => report.csv(),
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    if summary.requests() > 0 && summary.responses() == 0 {
        let kinds: Vec<String> = summary
            .errors
            .iter()
            .map(|(k, n, m)| format!("{} ({n}): {m}", k.name()))
            .collect();
        eprintln!(
            "error: all {} requests failed: {}",
            summary.requests(),
            kinds.join("; ")
        );
        return EXIT_FAILED;
    }
    if verdicts.iter().any(|v| !v.ok) {
        let failed: Vec<&str> = verdicts
            .iter()
            .filter(|v| !v.ok)
            .map(|v| v.threshold.as_str())
            .collect();
        eprintln!("error: thresholds failed: {}", failed.join(", "));
        return EXIT_THRESHOLDS;
    }
    0
}

fn progress(s: &Sample, total: u64, errors: u64, planned: Option<Duration>, tty: bool) {
    let of = planned
        .map(|p| format!("/{:.0}s", p.as_secs_f64()))
        .unwrap_or_default();
    let asked = s
        .asked_rps
        .map(|a| format!(" (asked {a:.0}/s)"))
        .unwrap_or_default();
    let line = format!(
        "[{:6.1}s{of}] requests {total}  {:.0} req/s{asked}  errors {errors}  p99 {:.2}ms",
        s.elapsed, s.rps, s.p99_ms
    );
    let mut e = std::io::stderr().lock();
    if tty {
        let _ = write!(e, "\r\x1b[2K{line}");
    } else {
        let _ = writeln!(e, "{line}");
    }
    let _ = e.flush();
}
