//! Cold-start init of the nine functions, measured as Lambda counts it: from the
//! process's start to its first call for work (`GET /2018-06-01/runtime/invocation/next`)
//! on a Runtime API this harness serves, with the environment a deployed function
//! gets (table, region, credentials, secrets, endpoints). Prints each binary's
//! size and its median and slowest init over the runs.
//!
//! ```text
//! cargo build --release --bins
//! cargo run --release -p coedit-tests --example coldstart -- target/release 20
//! # the arm64 builds Lambda runs, under user-mode emulation (slower than Graviton):
//! cargo lambda build --release --arm64
//! COLDSTART_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
//!   cargo run --release -p coedit-tests --example coldstart -- target/lambda 20
//! ```

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

const FUNCTIONS: [&str; 9] = [
    "create-session",
    "get-session",
    "join-session",
    "post-change",
    "connect",
    "disconnect",
    "ping",
    "edit",
    "sweeper",
];

/// One cold start: the time until the binary asks the Runtime API for work.
async fn init_time(binary: &PathBuf) -> Duration {
    let api = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = api.local_addr().unwrap().to_string();
    let runner = std::env::var("COLDSTART_RUNNER").unwrap_or_default();
    let mut command = runner.split_whitespace();
    let mut child = match command.next() {
        Some(program) => {
            let mut c = tokio::process::Command::new(program);
            c.args(command).arg(binary);
            c
        }
        None => tokio::process::Command::new(binary),
    };
    let started = Instant::now();
    let mut child = child
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", &address)
        .env("AWS_LAMBDA_FUNCTION_NAME", "coldstart")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "coldstart")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "coldstart")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "example")
        .env("AWS_SESSION_TOKEN", "example")
        .env("COEDIT_TABLE_NAME", "coedit-sessions")
        .env("COEDIT_JOIN_TOKEN_SECRET", "s".repeat(64))
        .env("COEDIT_JOIN_TOKEN_SECRET_PREVIOUS", "p".repeat(64))
        .env(
            "COEDIT_CONNECTIONS_ENDPOINT",
            "https://abc.execute-api.eu-west-1.amazonaws.com/v1",
        )
        .env("COEDIT_EVENT_BUS_NAME", "coedit-events")
        .env("COEDIT_METRICS_NAMESPACE", "coedit/coldstart")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (mut stream, _) = tokio::time::timeout(Duration::from_secs(10), api.accept())
        .await
        .expect("the function never called the Runtime API")
        .unwrap();
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the connection closed before a request");
        request.extend_from_slice(&buf[..n]);
    }
    let elapsed = started.elapsed();
    let line = String::from_utf8_lossy(&request);
    assert!(
        line.starts_with("GET /2018-06-01/runtime/invocation/next"),
        "{line}"
    );
    child.kill().await.unwrap();
    elapsed
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "target/release".into()));
    let runs: usize = args.next().map_or(20, |n| n.parse().unwrap());
    println!("| function | binary | init median | init slowest |");
    println!("|---|---|---|---|");
    for name in FUNCTIONS {
        // target/release/<name>, or cargo lambda's target/lambda/<name>/bootstrap.
        let binary = match dir.join(name).join("bootstrap") {
            bootstrap if bootstrap.exists() => bootstrap,
            _ => dir.join(name),
        };
        let size = std::fs::metadata(&binary)
            .unwrap_or_else(|e| panic!("{}: {e}", binary.display()))
            .len();
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            times.push(init_time(&binary).await);
        }
        times.sort();
        println!(
            "| {name} | {:.2} MB | {:.1} ms | {:.1} ms |",
            size as f64 / 1e6,
            times[runs / 2].as_secs_f64() * 1000.0,
            times[runs - 1].as_secs_f64() * 1000.0
        );
    }
}
