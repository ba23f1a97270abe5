//! `cargo run --release -p coedit-local -- [--port N] [--dynamodb-endpoint URL]`

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use clap::Parser;
use coedit::clock::SystemClock;
use coedit::config::{Config, SigningSecret};
use coedit::{App, auth, telemetry};
use coedit_local::gateway::Gateway;
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
    #[arg(long)]
    dynamodb_endpoint: Option<String>,
    /// Table to use (created from infra/template.yaml when missing).
    #[arg(long, default_value = "coedit-local")]
    table: String,
    /// Co-editor limit of the dev API key's plan (0: a plan without co-editing).
    #[arg(long, default_value_t = 20)]
    max_editors: u32,
    /// The dev API key; a new random one when unset.
    #[arg(long, env = "COEDIT_DEV_API_KEY", hide_env_values = true)]
    dev_api_key: Option<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    telemetry::init_for_terminal();
    let args = Args::parse();
    let store = coedit_local::open_store(args.dynamodb_endpoint.as_deref(), &args.table).await?;
    let mut config = Config::from_env()?;
    if config.join_token_secret.is_none() {
        // Tokens of this run only; set COEDIT_JOIN_TOKEN_SECRET to keep them valid
        // across restarts.
        config.join_token_secret =
            Some(SigningSecret::new(auth::generate_api_key()?.into_bytes())?);
    }
    let ws_listener =
        TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, args.ws_port))).await?;
    let ws_url = format!("ws://{}/{STAGE}", ws_listener.local_addr()?);
    if config.websocket_url.is_none() {
        config.websocket_url = Some(ws_url.clone());
    }
    let hub = Arc::new(coedit::notify::LocalConnections::new());
    let app = Arc::new(App::new(config, store, hub.clone(), Arc::new(SystemClock)));
    let functions = Arc::new(coedit_local::functions::InProcess(app.clone()));
    let gateway = Arc::new(Gateway::new(functions, hub, STAGE));
    let api_key = match args.dev_api_key {
        Some(key) => key,
        None => auth::generate_api_key()?,
    };
    coedit_local::register_dev_key(&app, &api_key, args.max_editors).await?;
    let demo = Arc::new(coedit_local::demo::Demo::new(api_key.clone()));

    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, args.port))).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let storage = match &args.dynamodb_endpoint {
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
        "  dev API key  {api_key}  (tenant 'dev', {} co-editors)",
        args.max_editors
    );
    println!(
        "  try          curl -s -H 'Authorization: Bearer {api_key}' -d '{{\"userid\":\"me\",\"template\":{{\"page\":{{\"rows\":[]}}}}}}' {base}/v1/coedit/session"
    );

    tokio::select! {
        served = coedit_local::rest::serve(listener, app.clone(), Some(demo)) => served?,
        served = coedit_local::gateway::serve(ws_listener, gateway) => served?,
        () = coedit_local::sweep_every_minute(app) => {}
        _ = tokio::signal::ctrl_c() => println!("stopped"),
    }
    Ok(())
}
