//! Core logs for the platform's log (Android logcat, Apple os_log): the app gives a sink, the
//! core's `tracing` events reach it formatted, one line each, with their level and target.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use super::SpacesError;

/// A log line's severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LogLevel {
    /// Something failed.
    Error,
    /// Something went wrong and was handled.
    Warn,
    /// Milestones: joined, parent chosen, link up.
    Info,
    /// Decisions and their reasons.
    Debug,
    /// Everything.
    Trace,
}

impl From<&Level> for LogLevel {
    fn from(level: &Level) -> Self {
        match *level {
            Level::ERROR => Self::Error,
            Level::WARN => Self::Warn,
            Level::INFO => Self::Info,
            Level::DEBUG => Self::Debug,
            Level::TRACE => Self::Trace,
        }
    }
}

/// Where the app sends core logs: `android.util.Log.println(priority, "spaces", …)`, an
/// `os.Logger`. Called on core threads; must not block.
#[uniffi::export(with_foreign)]
pub trait LogSink: Send + Sync {
    /// One line: `target` is the core module (`spaces_core::participant`), `message` the
    /// event's message and fields, with the names of the spans it happened in.
    fn log(&self, level: LogLevel, target: String, message: String);
}

/// Starts routing core logs to `sink`, filtered by `filter` (`tracing` directives, such as
/// `info` or `spaces_core=debug,webrtc=warn`). Once per process: a second call fails and
/// the first sink stays.
#[uniffi::export]
pub fn init_logging(filter: String, sink: Arc<dyn LogSink>) -> Result<(), SpacesError> {
    static STARTED: OnceLock<()> = OnceLock::new();
    let filter = EnvFilter::try_new(&filter).map_err(|e| SpacesError::InvalidSettings {
        reason: format!("log filter {filter:?}: {e}"),
    })?;
    if STARTED.set(()).is_err() {
        return Err(SpacesError::InvalidSettings {
            reason: "logging already started".into(),
        });
    }
    tracing_subscriber::registry()
        .with(SinkLayer { sink }.with_filter(filter))
        .try_init()
        .map_err(|e| SpacesError::InvalidSettings {
            reason: format!("another logger is installed: {e}"),
        })
}

struct SinkLayer {
    sink: Arc<dyn LogSink>,
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SinkLayer {
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = Line::default();
        event.record(&mut line);
        let mut message = line.message;
        message.push_str(&line.fields);
        if let Some(scope) = ctx.event_scope(event) {
            let spans: Vec<&str> = scope.from_root().map(|span| span.name()).collect();
            if !spans.is_empty() {
                let _ = write!(message, " [{}]", spans.join(":"));
            }
        }
        let metadata = event.metadata();
        self.sink.log(
            metadata.level().into(),
            metadata.target().to_owned(),
            message,
        );
    }
}

/// An event's message and its other fields as ` name=value`.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}
