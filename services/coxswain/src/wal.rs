//! The embedded store's write-ahead log settings as `coxswain store|up` flags
//! ([`coxswain_store::backend::WalOptions`]; docs/store.md describes the log).
use std::time::Duration;

use clap::Args;
use coxswain_store::backend::WalOptions;

use crate::duration;

#[derive(Args, Clone, Debug)]
pub struct WalOpts {
    /// Size of one write-ahead log segment, preallocated when the log moves to it (a quantity:
    /// 64Mi, 1Gi, 1048576). Larger means fewer segment switches; each takes that much disk.
    #[arg(long, env = "COXSWAIN_WAL_SEGMENT_SIZE", default_value = "64Mi", value_parser = parse_size)]
    pub wal_segment_size: u64,
    /// Longest an acknowledged write waits in the log before the checkpointer applies it to the
    /// redb file (e.g. 100ms, 1s); segments are deleted once redb holds them.
    #[arg(long, env = "COXSWAIN_WAL_CHECKPOINT_INTERVAL", default_value = "100ms", value_parser = parse_interval)]
    pub wal_checkpoint_interval: Duration,
    /// Checkpoint earlier once this many changes wait in the log.
    #[arg(long, env = "COXSWAIN_WAL_CHECKPOINT_BATCH", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub wal_checkpoint_batch: u64,
}

/// The smallest segment: a segment switch per few records would make every write pay for
/// creating and syncing a file.
const MIN_SEGMENT: u64 = 64 << 10;

fn parse_size(s: &str) -> Result<u64, String> {
    let q = coxswain_api::quantity::Quantity::parse(s)?;
    let v = q.value();
    if v < MIN_SEGMENT as i64 {
        return Err(format!("must be at least {MIN_SEGMENT} bytes (64Ki)"));
    }
    Ok(v as u64)
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = duration::parse(s)?;
    if d.is_zero() {
        return Err("must be greater than 0".into());
    }
    Ok(d)
}

impl WalOpts {
    pub fn options(&self) -> WalOptions {
        WalOptions {
            segment_bytes: self.wal_segment_size,
            checkpoint_interval: self.wal_checkpoint_interval,
            checkpoint_changes: self.wal_checkpoint_batch as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        wal: WalOpts,
    }

    #[test]
    fn defaults_are_the_backends() {
        let o = Cli::parse_from(["x"]).wal.options();
        let d = WalOptions::default();
        assert_eq!(
            (o.segment_bytes, o.checkpoint_interval, o.checkpoint_changes),
            (d.segment_bytes, d.checkpoint_interval, d.checkpoint_changes)
        );
    }

    #[test]
    fn flags_parse_and_bad_values_are_refused() {
        let o = Cli::parse_from([
            "x",
            "--wal-segment-size",
            "2Mi",
            "--wal-checkpoint-interval",
            "1s",
            "--wal-checkpoint-batch",
            "7",
        ])
        .wal
        .options();
        assert_eq!(o.segment_bytes, 2 << 20);
        assert_eq!(o.checkpoint_interval, Duration::from_secs(1));
        assert_eq!(o.checkpoint_changes, 7);
        for bad in [
            &["--wal-segment-size", "1Ki"][..],
            &["--wal-segment-size", "lots"],
            &["--wal-checkpoint-interval", "0s"],
            &["--wal-checkpoint-batch", "0"],
        ] {
            let args = std::iter::once("x").chain(bad.iter().copied());
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?} accepted");
        }
    }
}
