//! A component's Prometheus `/metrics` as tests read it: one scrape over plain HTTP, a family's
//! samples and their sum.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The text of one scrape of `addr`'s /metrics (the body). Err: it could not be reached, or did
/// not answer 200.
pub fn scrape(addr: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    match text.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_string()),
        _ => Err(std::io::Error::other(format!(
            "GET {addr}/metrics: {}",
            text.lines().next().unwrap_or("no answer")
        ))),
    }
}

/// The samples of family `series` (its name: `name{…} v` and `name v` lines) whose line holds
/// every one of `labels` (`result="ok"`), as (line, value).
pub fn samples(body: &str, series: &str, labels: &[&str]) -> Vec<(String, f64)> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(series)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter(|l| labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| Some((l.to_string(), l.rsplit(' ').next()?.parse::<f64>().ok()?)))
        .collect()
}

/// The sum of [`samples`]' values; 0 when there is none.
pub fn sum(body: &str, series: &str, labels: &[&str]) -> f64 {
    samples(body, series, labels).iter().map(|(_, v)| v).sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_a_familys_samples_with_the_labels() {
        let body = "# HELP a_total x\na_total{r=\"ok\"} 2\na_total{r=\"error\"} 1\na_total_x 7\nb 3\na_total 4\n";
        assert_eq!(super::sum(body, "a_total", &[]), 7.0);
        assert_eq!(super::sum(body, "a_total", &["r=\"ok\""]), 2.0);
        assert_eq!(super::sum(body, "b", &[]), 3.0);
        assert_eq!(super::sum(body, "c", &[]), 0.0);
        assert_eq!(
            super::samples(body, "a_total", &["r=\"error\""]),
            [("a_total{r=\"error\"} 1".to_string(), 1.0)]
        );
    }
}
