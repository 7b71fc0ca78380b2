//! Container log files in the CRI format the kubelet reads (`pkg/kubelet/kuberuntime/logs`):
//! one record per line, `TIMESTAMP STREAM TAG CONTENT`, with the timestamp in RFC 3339 with nine
//! fraction digits, STREAM `stdout` or `stderr` and TAG `F` (a full line; the newline is not
//! stored) or `P` (part of a longer line). The writer stamps each line when it arrives; the
//! reader turns records back into the container's output, optionally after a time (`--since`)
//! and with each line's timestamp in front (`--timestamps`), as kubelet does.
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use coxswain_api::time::{civil_from_days, parse_rfc3339};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Longest record content; a longer line is split into `P` records, as containerd does.
pub const MAX_RECORD: usize = 16 * 1024;

/// Nanoseconds since the epoch as kubelet's output timestamp (RFC3339NanoFixed, UTC).
pub fn format_nanos(nanos: i128) -> String {
    let secs = nanos.div_euclid(1_000_000_000) as i64;
    let frac = nanos.rem_euclid(1_000_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// An RFC 3339 timestamp (any fraction, `Z` or an offset) as nanoseconds since the epoch.
pub fn parse_nanos(s: &str) -> Option<i128> {
    let secs = parse_rfc3339(s)?;
    let frac = match s.get(19..).and_then(|r| r.strip_prefix('.')) {
        Some(r) => {
            let digits: String = r.chars().take_while(char::is_ascii_digit).collect();
            let mut d = digits.chars().take(9).collect::<String>();
            while d.len() < 9 {
                d.push('0');
            }
            d.parse::<i128>().ok()?
        }
        None => 0,
    };
    Some(secs as i128 * 1_000_000_000 + frac)
}

/// Now, in nanoseconds since the epoch.
pub fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// One record: `content` without its newline.
pub fn encode(nanos: i128, stream: &str, partial: bool, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 48);
    out.extend_from_slice(format_nanos(nanos).as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(content);
    out.push(b'\n');
    out
}

/// A decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub nanos: i128,
    pub partial: bool,
    pub content: &'a [u8],
}

/// Decodes one record line (without its newline). A line that is not a record is taken as
/// plain output of unknown time (0).
pub fn decode(line: &[u8]) -> Record<'_> {
    let plain = Record {
        nanos: 0,
        partial: false,
        content: line,
    };
    let mut parts = line.splitn(4, |b| *b == b' ');
    let (Some(ts), Some(stream), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
        return plain;
    };
    let content = parts.next().unwrap_or_default();
    let Some(nanos) = std::str::from_utf8(ts).ok().and_then(parse_nanos) else {
        return plain;
    };
    if !matches!(stream, b"stdout" | b"stderr") || !matches!(tag, b"F" | b"P") {
        return plain;
    }
    Record {
        nanos,
        partial: tag == b"P",
        content,
    }
}

/// How records are shown.
#[derive(Clone, Copy, Debug, Default)]
pub struct View {
    /// Each line's timestamp first.
    pub timestamps: bool,
    /// Only records at or after this time (nanoseconds since the epoch).
    pub since: Option<i128>,
}

/// Renders complete record lines (each ending in `\n`) as the container's output. `at_line_start`
/// carries over between calls: whether the next record begins a line (after `F`).
pub fn render(data: &[u8], view: View, at_line_start: &mut bool, out: &mut Vec<u8>) {
    for line in data.split_inclusive(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let r = decode(line);
        if view.since.is_some_and(|s| r.nanos < s) {
            continue;
        }
        if view.timestamps && *at_line_start {
            out.extend_from_slice(format_nanos(r.nanos).as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(r.content);
        if !r.partial {
            out.push(b'\n');
        }
        *at_line_start = !r.partial;
    }
}

/// The byte offset where the last `n` lines (full records, with the parts before them) start.
pub fn tail_offset(data: &[u8], n: usize) -> usize {
    if n == 0 {
        return data.len();
    }
    let mut seen = 0;
    let mut end = data.len();
    // Walk back over record lines; a `P` record belongs to the line its next `F` ends.
    while end > 0 {
        let start = data[..end.saturating_sub(1)]
            .iter()
            .rposition(|b| *b == b'\n')
            .map(|i| i + 1)
            .unwrap_or(0);
        let rec = decode(
            data[start..end]
                .strip_suffix(b"\n")
                .unwrap_or(&data[start..end]),
        );
        // The last record of the file ends a line even when partial (output without a final
        // newline).
        if !rec.partial || end == data.len() {
            if seen == n {
                return end;
            }
            seen += 1;
        }
        end = start;
    }
    0
}

/// Copies a container's stdout or stderr into its log file as records, until the stream ends.
pub async fn pump<R: AsyncRead + Unpin>(
    mut from: R,
    stream: &'static str,
    file: std::sync::Arc<std::sync::Mutex<std::fs::File>>,
) {
    let mut buf = vec![0u8; 8 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let write = |partial: bool, content: &[u8]| {
        let now = now_nanos();
        let mut rec = Vec::with_capacity(content.len() + 64);
        let mut parts = content.chunks(MAX_RECORD).peekable();
        if parts.peek().is_none() {
            rec = encode(now, stream, partial, b"");
        }
        while let Some(part) = parts.next() {
            rec.extend(encode(now, stream, partial || parts.peek().is_some(), part));
        }
        if let Ok(mut f) = file.lock() {
            let _ = f.write_all(&rec);
        }
    };
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(i) = pending[start..].iter().position(|b| *b == b'\n') {
            write(false, &pending[start..start + i]);
            start += i + 1;
        }
        pending.drain(..start);
        while pending.len() >= MAX_RECORD {
            write(true, &pending[..MAX_RECORD]);
            pending.drain(..MAX_RECORD);
        }
    }
    // Output that does not end in a newline stays a partial line, as containerd writes it.
    if !pending.is_empty() {
        write(true, &pending);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_with_nine_digits() {
        let t = 1_700_000_000_123_456_789i128;
        assert_eq!(format_nanos(t), "2023-11-14T22:13:20.123456789Z");
        assert_eq!(parse_nanos(&format_nanos(t)), Some(t));
        assert_eq!(
            format_nanos(1_000_000_000),
            "1970-01-01T00:00:01.000000000Z"
        );
        assert_eq!(
            parse_nanos("2023-11-14T23:13:20.5+01:00"),
            Some(1_700_000_000_500_000_000)
        );
        assert_eq!(
            parse_nanos("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(parse_nanos("yesterday"), None);
    }

    fn file(recs: &[(i128, bool, &str)]) -> Vec<u8> {
        recs.iter()
            .flat_map(|(t, p, c)| encode(*t, "stdout", *p, c.as_bytes()))
            .collect()
    }

    #[test]
    fn records_render_as_output_with_optional_timestamps_and_since() {
        let sec = 1_000_000_000i128;
        let data = file(&[
            (sec, false, "one"),
            (2 * sec, true, "tw"),
            (2 * sec, false, "o"),
            (3 * sec, false, "three"),
        ]);
        let mut out = vec![];
        render(&data, View::default(), &mut true, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "one\ntwo\nthree\n");
        let mut out = vec![];
        let view = View {
            timestamps: true,
            since: Some(2 * sec),
        };
        render(&data, view, &mut true, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1970-01-01T00:00:02.000000000Z two\n1970-01-01T00:00:03.000000000Z three\n"
        );
        // Not a record: shown as it is.
        let mut out = vec![];
        render(b"plain text\n", View::default(), &mut true, &mut out);
        assert_eq!(out, b"plain text\n");
    }

    #[test]
    fn tail_counts_whole_lines() {
        let data = file(&[
            (1, false, "a"),
            (2, true, "b"),
            (2, false, "c"),
            (3, false, "d"),
        ]);
        let mut out = vec![];
        render(
            &data[tail_offset(&data, 2)..],
            View::default(),
            &mut true,
            &mut out,
        );
        assert_eq!(out, b"bc\nd\n");
        assert_eq!(tail_offset(&data, 0), data.len());
        assert_eq!(tail_offset(&data, 9), 0);
    }

    #[tokio::test]
    async fn pump_splits_long_lines_and_keeps_a_last_partial_line() {
        let path = std::env::temp_dir().join(format!(
            "coxswain-crilog-{}-{}.log",
            std::process::id(),
            now_nanos()
        ));
        let f = std::sync::Arc::new(std::sync::Mutex::new(std::fs::File::create(&path).unwrap()));
        let long = "x".repeat(MAX_RECORD + 5);
        let input = format!("hello\n{long}\nend");
        pump(input.as_bytes(), "stderr", f).await;
        let data = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let recs: Vec<Record> = data
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(decode)
            .collect();
        assert_eq!(recs.len(), 4);
        assert!(recs[1].partial && !recs[2].partial && recs[3].partial);
        assert!(data.starts_with(b"20") && data.windows(10).any(|w| w == b" stderr F "));
        let mut out = vec![];
        render(&data, View::default(), &mut true, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("hello\n{long}\nend")
        );
        let mut out = vec![];
        render(
            &data[tail_offset(&data, 1)..],
            View::default(),
            &mut true,
            &mut out,
        );
        assert_eq!(out, b"end");
    }
}
