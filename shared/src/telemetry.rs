//! Logging set-up. Lambda gets JSON lines (CloudWatch Logs Insights reads them);
//! the local stack gets plain text. Levels come from `RUST_LOG`.

use tracing_subscriber::EnvFilter;

pub fn init_for_lambda() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .without_time() // CloudWatch stamps every line itself
        .try_init();
}

pub fn init_for_terminal() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .try_init();
}
