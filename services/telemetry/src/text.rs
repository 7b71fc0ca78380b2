//! Writing families in the Prometheus text format (version 0.0.4) for scrape-time collectors:
//! HELP and TYPE once per family, label values escaped.
use std::fmt::Write;

/// The TYPE of a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    Counter,
    Gauge,
    Histogram,
}

impl Type {
    pub fn as_str(self) -> &'static str {
        match self {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
            Type::Histogram => "histogram",
        }
    }
}

/// Write the HELP and TYPE lines of a family.
pub fn header(out: &mut String, name: &str, typ: Type, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {}", typ.as_str());
}

/// Write one sample line.
pub fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_value(out, v);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    if value.is_finite() {
        let _ = write!(out, "{value}");
    } else if value.is_nan() {
        out.push_str("NaN");
    } else if value > 0.0 {
        out.push_str("+Inf");
    } else {
        out.push_str("-Inf");
    }
    out.push('\n');
}

fn escape_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(h: &str) -> String {
    h.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_help_precedes_type() {
        let mut s = String::new();
        header(&mut s, "x_total", Type::Counter, "a\nb");
        sample(&mut s, "x_total", &[("a", "q\"\\\n"), ("b", "c")], 1.5);
        sample(&mut s, "x_total", &[], f64::INFINITY);
        assert_eq!(
            s,
            "# HELP x_total a\\nb\n# TYPE x_total counter\nx_total{a=\"q\\\"\\\\\\n\",b=\"c\"} 1.5\nx_total +Inf\n"
        );
    }
}
