//! The cost of the statistics per request: what a worker does for every response (record into
//! its thread's HDR histogram, status and byte tallies, and the live counters/interval
//! histogram the progress line reads). `cargo run --release -p loadgen --example stats_cost`
use std::time::{Duration, Instant};

use loadgen::stats::{Live, Recorder};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let mut rec = Recorder::default();
    let live = Live::default();
    // Latencies spread over 50 µs .. ~55 ms, as a busy run sees them.
    let lat = |i: u64| Duration::from_micros(50 + (i.wrapping_mul(2654435761) % 55_000));
    let t0 = Instant::now();
    for i in 0..n {
        let l = lat(i);
        // What a worker does per response (engine.rs): the tally, and the latency and counts
        // into the thread's live record.
        rec.tally(200, 615);
        live.response(l, 615);
    }
    let per = t0.elapsed().as_nanos() as f64 / n as f64;
    std::hint::black_box(&rec);
    let t1 = Instant::now();
    for i in 0..n {
        rec.response(200, lat(i), 615);
    }
    let rec_only = t1.elapsed().as_nanos() as f64 / n as f64;
    println!(
        "{n} responses: {per:.1} ns per response (tally + live: what a worker records), {rec_only:.1} ns for a recorder with its own histogram"
    );
}
