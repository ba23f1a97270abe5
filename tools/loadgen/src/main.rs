//! `loadgen`: N clients over real WebSockets against the local stack (started here,
//! as a child process, on the embedded store or DynamoDB Local).
//!
//!   cargo run --release -p coedit-loadgen -- edit-storm --clients 5 [--dynamodb-local] [--json out.json]
//!   cargo run --release -p coedit-loadgen -- join-storm --clients 20
//!
//! edit-storm: each client edits its own module of a ~300 KB template as fast as
//! acks allow (one change outstanding). join-storm: all clients join at once and
//! load the template. Both report latencies, throughput, the server's CPU per
//! operation and peak memory (read from the stack's /local/metrics), DynamoDB
//! units, WebSocket messages, function invocations, a convergence check, and the
//! cost at list prices (`cost.rs`).

mod cost;
mod run;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "coedit's load generator")]
struct Args {
    #[command(subcommand)]
    scenario: Scenario,
    /// Concurrent clients.
    #[arg(long, global = true, default_value_t = 5)]
    clients: usize,
    /// How long the edit storm runs.
    #[arg(long, global = true, default_value_t = 10)]
    seconds: u64,
    /// Run the stack on DynamoDB Local (started by the stack) instead of the embedded store.
    #[arg(long, global = true)]
    dynamodb_local: bool,
    /// The local stack binary (default: target/release/coedit-local, else target/debug/).
    #[arg(long, global = true)]
    stack: Option<String>,
    /// Hold each push back a random 0 to this many ms, so clients see changes out
    /// of order as they do on AWS (several function instances post at once).
    #[arg(long, global = true, default_value_t = 0)]
    reorder_pushes_ms: u64,
    /// Also write the results as JSON to this file.
    #[arg(long, global = true)]
    json: Option<String>,
}

#[derive(Debug, Clone, Copy, Subcommand)]
enum Scenario {
    /// Each client edits its own module as fast as acks allow.
    EditStorm,
    /// All clients join at once and load the template.
    JoinStorm,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let stack = run::Stack::start(
        args.stack.as_deref(),
        args.dynamodb_local,
        args.reorder_pushes_ms,
    )
    .await?;
    let store = if args.dynamodb_local {
        "dynamodb-local"
    } else {
        "embedded"
    };
    let result = match args.scenario {
        Scenario::EditStorm => run::edit_storm(&stack, args.clients, args.seconds).await?,
        Scenario::JoinStorm => run::join_storm(&stack, args.clients).await?,
    };
    let mut report = result;
    report["store"] = store.into();
    report["clients"] = args.clients.into();
    report["cost"] = cost::report(&report);
    println!("{}", run::summary(&report));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    let converged = report["converged"].as_bool().unwrap_or(true);
    let refused = report["refused"].as_u64().unwrap_or(0);
    stack.stop().await;
    if !converged {
        return Err("the clients' copies differ from the server's template".into());
    }
    if refused > 0 {
        return Err(format!("{refused} changes were refused: {}", report["refusals"]).into());
    }
    Ok(())
}
