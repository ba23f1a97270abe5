//! Logging set-up. Lambda gets JSON lines (CloudWatch Logs Insights reads them);
//! the local stack gets plain text. Levels come from `RUST_LOG` (`info`, or
//! `coedit=debug,info`): `Targets` parses that without the regex engine that
//! `EnvFilter` would add to every binary.

use std::str::FromStr;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn level_filter() -> Targets {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| Targets::from_str(&v).ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO))
}

pub fn init_for_lambda() {
    if let Some(namespace) = std::env::var("COEDIT_METRICS_NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty())
    {
        crate::metrics::enable(namespace);
    }
    let format = tracing_subscriber::fmt::layer()
        .json()
        .with_target(false)
        .without_time(); // CloudWatch stamps every line itself
    let _ = tracing_subscriber::registry()
        .with(format)
        .with(level_filter())
        .try_init();
}

pub fn init_for_terminal() {
    let format = tracing_subscriber::fmt::layer().with_target(false);
    let _ = tracing_subscriber::registry()
        .with(format)
        .with(level_filter())
        .try_init();
}
