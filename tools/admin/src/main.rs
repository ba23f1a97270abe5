//! `coedit-admin`: creates and revokes API keys in a deployment's table.
//! Credentials and region come from the usual AWS environment.

use clap::{Parser, Subcommand};
use coedit::api_key::{ApiKeyRecord, KeyHash, Plan, generate_api_key};
use coedit::clock::{Clock, SystemClock};
use coedit::session::TenantId;
use coedit::store::{ApiKeyStore, DynamoStore, RevokeOutcome};

#[derive(Debug, Parser)]
#[command(about = "Create and revoke coedit API keys")]
struct Args {
    /// The deployment's table (the stack output TableName).
    #[arg(long, env = "COEDIT_TABLE_NAME")]
    table: String,
    /// A DynamoDB endpoint other than AWS's (e.g. DynamoDB Local).
    #[arg(long)]
    dynamodb_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates a key for a tenant and prints it once; only its hash is stored.
    CreateKey {
        #[arg(long)]
        tenant: String,
        /// none, small or large.
        #[arg(long, value_parser = parse_plan)]
        plan: Plan,
        /// Overrides the plan's co-editor limit for this key.
        #[arg(long)]
        max_editors: Option<u32>,
    },
    /// Revokes a key, named by the fingerprint printed at creation.
    RevokeKey {
        #[arg(long)]
        fingerprint: String,
    },
}

fn parse_plan(text: &str) -> Result<Plan, String> {
    Plan::parse(text).ok_or_else(|| "expected none, small or large".to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let store = match &args.dynamodb_endpoint {
        Some(endpoint) => DynamoStore::new(DynamoStore::local_client(endpoint), &args.table),
        None => DynamoStore::from_aws_config(&args.table).await,
    };
    match args.command {
        Command::CreateKey {
            tenant,
            plan,
            max_editors,
        } => {
            let key = generate_api_key()?;
            let hash = KeyHash::of(&key);
            store
                .put_api_key(&ApiKeyRecord {
                    hash,
                    tenant: TenantId::parse(&tenant)?,
                    plan,
                    max_editors,
                    created_at: SystemClock.now(),
                })
                .await?;
            println!("api key:     {key}");
            println!("fingerprint: {}", hash.to_hex());
            eprintln!("Store the key now: it is not kept and cannot be shown again.");
        }
        Command::RevokeKey { fingerprint } => {
            let hash = KeyHash::from_hex(&fingerprint)
                .ok_or("a fingerprint is 64 hex digits, as printed by create-key")?;
            if store.revoke_api_key(&hash).await? == RevokeOutcome::Revoked {
                println!("revoked");
            } else {
                return Err("no key with that fingerprint".into());
            }
        }
    }
    Ok(())
}
