//! Logging of every `coxswain` process: `RUST_LOG` filters (default `info`), to stderr, as text
//! or, with `--log-format json`, one JSON object per line for machines:
//! `{"ts":"2026-12-06T07:29:18.629234Z","level":"INFO","target":"coxswain","message":"...",
//! "fields":{...},"spans":[{"name":"...",...}]}`.
use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// `--log-format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Install the global subscriber.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.with_ansi(false).event_format(Json).init(),
    }
}

/// Collects an event's fields into a JSON map.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    map: serde_json::Map<String, serde_json::Value>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, serde_json::Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, serde_json::Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
}

impl Fields {
    fn put(&mut self, field: &Field, v: serde_json::Value) {
        if field.name() == "message" {
            self.message = Some(match v {
                serde_json::Value::String(s) => s,
                v => v.to_string(),
            });
        } else {
            self.map.insert(field.name().to_string(), v);
        }
    }
}

/// The JSON line format.
struct Json;

impl<S, N> FormatEvent<S, N> for Json
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let mut line = serde_json::Map::new();
        line.insert("ts".into(), now_rfc3339().into());
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        line.insert("message".into(), fields.message.unwrap_or_default().into());
        if !fields.map.is_empty() {
            line.insert("fields".into(), fields.map.into());
        }
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<serde_json::Value> = scope
                .from_root()
                .map(|span| {
                    let mut s = serde_json::Map::new();
                    s.insert("name".into(), span.name().into());
                    if let Some(f) = span.extensions().get::<FormattedFields<N>>() {
                        if !f.is_empty() {
                            s.insert("fields".into(), f.as_str().into());
                        }
                    }
                    s.into()
                })
                .collect();
            line.insert("spans".into(), spans.into());
        }
        writeln!(writer, "{}", serde_json::Value::Object(line))
    }
}

/// UTC now as RFC 3339 with microseconds.
fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = coxswain_api::time::format_rfc3339(d.as_secs() as i64);
    // "...:SSZ" → "...:SS.uuuuuuZ"
    format!("{}.{:06}Z", secs.trim_end_matches('Z'), d.subsec_micros())
}
