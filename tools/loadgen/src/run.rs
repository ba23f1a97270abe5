//! The scenarios, against a local stack started as a child process.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coedit::patch;
use coedit_tests::stack::{Routes, Socket, next_message, open, socket_url};
use coedit_tests::versions::VersionBook;
use futures_util::SinkExt;
use hyper::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

type Error = Box<dyn std::error::Error>;

pub struct Stack {
    child: tokio::process::Child,
    pub routes: Routes,
    /// Pushes held back a random 0 to this many ms (0: in order).
    pub reorder_ms: u64,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Stack {
    /// Stops the stack as Ctrl-C would, so it stops its DynamoDB Local too.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = tokio::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status()
                .await;
            let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        }
    }

    pub async fn start(
        binary: Option<&str>,
        dynamodb_local: bool,
        reorder_ms: u64,
    ) -> Result<Stack, Error> {
        let binary = binary.map(str::to_owned).unwrap_or_else(|| {
            ["target/release/coedit-local", "target/debug/coedit-local"]
                .into_iter()
                .find(|p| std::path::Path::new(p).is_file())
                .unwrap_or("target/release/coedit-local")
                .to_owned()
        });
        let mut command = tokio::process::Command::new(&binary);
        command.args(["--port", "0", "--ws-port", "0"]);
        if dynamodb_local {
            command.arg("--dynamodb-local");
        }
        command.args(["--reorder-pushes-ms", &reorder_ms.to_string()]);
        // The storms send each client's next message as soon as the last is
        // answered, far past a person's 20 a second: they measure how fast changes
        // are decided and delivered, so the stack they start lifts the
        // per-connection budget (which tests/tests/websocket.rs covers).
        let mut child = command
            .env("COEDIT_CONNECTION_MESSAGES_PER_SECOND", "1000000")
            .env("COEDIT_CONNECTION_MESSAGE_BURST", "1000000")
            .env("RUST_LOG", "warn")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                format!("starting {binary}: {e} (build it: cargo build --release -p coedit-local)")
            })?;
        let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let (mut base, mut key) = (None, None);
        while let Some(line) =
            tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await??
        {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["demo", url, ..] => base = Some(url.trim_end_matches('/').to_owned()),
                ["dev", "API", "key", k, ..] => key = Some((*k).to_owned()),
                _ => {}
            }
            if base.is_some() && key.is_some() {
                break;
            }
        }
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let base = base.ok_or("the stack printed no URL")?;
        let key = key.ok_or("the stack printed no key")?;
        Ok(Stack {
            child,
            routes: Routes::new(&base, &key),
            reorder_ms,
        })
    }

    /// Calls a route with a credential (the API key or a join token).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), Error> {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        Ok(self.routes.send(method, path, body, Some(bearer)).await)
    }

    async fn metrics(&self) -> Result<Value, Error> {
        Ok(self.call(Method::GET, "/local/metrics", "", None).await?.1)
    }

    /// Joins and opens the WebSocket; the socket and the join token.
    async fn open(&self, session: &str, n: usize) -> Result<(Socket, String), Error> {
        Ok(self.open_timed(session, n).await?.0)
    }

    /// `open`, with how long the REST join and the WebSocket `$connect` took (ms).
    async fn open_timed(
        &self,
        session: &str,
        n: usize,
    ) -> Result<((Socket, String), f64, f64), Error> {
        let t0 = Instant::now();
        let (status, joined) = self.routes.join(session, n).await;
        if status != 200 {
            return Err(format!("join answered {status}: {joined}").into());
        }
        let join_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let t1 = Instant::now();
        let token = joined["token"].as_str().unwrap_or_default().to_owned();
        let socket = open(&socket_url(&joined))
            .await
            .map_err(|status| format!("$connect answered {status}"))?;
        let connect_ms = t1.elapsed().as_secs_f64() * 1000.0;
        Ok(((socket, token), join_ms, connect_ms))
    }
}

/// Applies a change's ops to a client's copy, as the page does.
fn apply(copy: &mut Value, diff: &Value) {
    if let Ok(ops) = patch::parse(diff) {
        // The size is the server's concern; a client applies what it is sent.
        let _ = patch::apply(copy, 0, &ops);
    }
}

fn module_paths(template: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (r, row) in template["page"]["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        for (c, col) in row["columns"].as_array().into_iter().flatten().enumerate() {
            for m in 0..col["modules"].as_array().map_or(0, Vec::len) {
                out.push(format!("/page/rows/{r}/columns/{c}/modules/{m}"));
            }
        }
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn latencies(mut ms: Vec<f64>) -> Value {
    ms.sort_by(f64::total_cmp);
    json!({"count": ms.len(), "p50": percentile(&ms, 0.5), "p95": percentile(&ms, 0.95), "p99": percentile(&ms, 0.99),
           "max": ms.last().copied().unwrap_or(0.0)})
}

/// What the server used between two metric readings.
fn used(before: &Value, after: &Value) -> Value {
    let d = |path: &str| {
        let a = after.pointer(path).and_then(Value::as_f64).unwrap_or(0.0);
        let b = before.pointer(path).and_then(Value::as_f64).unwrap_or(0.0);
        a - b
    };
    let mut invocations = serde_json::Map::new();
    for (name, v) in after["invocations"].as_object().into_iter().flatten() {
        let count = v["count"].as_f64().unwrap_or(0.0)
            - before["invocations"][name]["count"].as_f64().unwrap_or(0.0);
        let ms = v["totalMs"].as_f64().unwrap_or(0.0)
            - before["invocations"][name]["totalMs"]
                .as_f64()
                .unwrap_or(0.0);
        invocations.insert(name.clone(), json!({"count": count, "totalMs": ms}));
    }
    json!({
        "cpuMs": d("/process/cpuMs"), "peakRssKb": after["process"]["peakRssKb"],
        "messagesIn": d("/websocket/messagesIn"), "unitsIn": d("/websocket/unitsIn"),
        "messagesOut": d("/websocket/messagesOut"), "unitsOut": d("/websocket/unitsOut"),
        "readRequests": d("/dynamodb/readRequests"), "writeRequests": d("/dynamodb/writeRequests"),
        "readUnits": d("/dynamodb/readUnits"), "writeUnits": d("/dynamodb/writeUnits"),
        "invocations": invocations,
    })
}

pub async fn edit_storm(stack: &Stack, clients: usize, seconds: u64) -> Result<Value, Error> {
    let template = coedit_tests::large_template(300 * 1024);
    let (session, _) = stack.routes.create(&template).await;
    let mut sockets = Vec::new();
    let mut token = String::new();
    for n in 0..clients {
        let (socket, t) = stack.open(&session, n).await?;
        sockets.push(socket);
        token = t;
    }
    let (_, got) = stack
        .call(
            Method::GET,
            &format!("/v1/coedit/session/{session}"),
            &token,
            None,
        )
        .await?;
    let initial = got["template"].clone();
    let modules = module_paths(&initial);
    if modules.len() < clients {
        return Err(format!(
            "the template has {} modules for {clients} clients",
            modules.len()
        )
        .into());
    }
    // Let the join announcements settle.
    for s in &mut sockets {
        while next_message(s, Duration::from_millis(200)).await.is_some() {}
    }

    let submitted: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen: Arc<Mutex<HashMap<String, Vec<Instant>>>> = Arc::default();
    let before = stack.metrics().await?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let tasks = sockets.into_iter().enumerate().map(|(n, mut socket)| {
        let path = format!("{}/loadgenText", modules[n]);
        let submitted = submitted.clone();
        let seen = seen.clone();
        let mut copy = initial.clone();
        async move {
            // Versions kept as the browser client keeps them; the copy is what the
            // page shows: our changes at once, the others' in version order.
            let mut book = VersionBook::new(1);
            let mut acks = Vec::new();
            let mut refused: Vec<Value> = Vec::new();
            let mut k = 0;
            let heard = |m: &Value, book: &mut VersionBook, copy: &mut Value| {
                let entries: Vec<&Value> = match m["type"].as_str() {
                    Some("change") => vec![&m["historyEntry"]],
                    Some("changes") => m["entries"].as_array().map(|e| e.iter().collect()).unwrap_or_default(),
                    _ => Vec::new(),
                };
                for e in entries {
                    if m["type"] == "change" {
                        seen.lock().unwrap().entry(e["changeId"].as_str().unwrap_or_default().to_owned()).or_default().push(Instant::now());
                    }
                    for released in book.received(e) {
                        apply(copy, &released["diff"]);
                    }
                }
            };
            while Instant::now() < deadline {
                let change_id = format!("c{n}-{k}");
                let patch = json!([{"op": "add", "path": path, "value": format!("<p>Edit {k} by client {n}: {}</p>", "lorem ipsum ".repeat(15))}]);
                let message = json!({"action": "edit", "changeId": change_id, "baseVersion": book.version(), "patch": patch, "label": "Text", "type": "text"});
                book.sent(&change_id);
                apply(&mut copy, &patch);
                let t0 = Instant::now();
                submitted.lock().unwrap().insert(change_id.clone(), t0);
                if socket.send(Message::text(message.to_string())).await.is_err() {
                    break;
                }
                loop {
                    let Some(m) = next_message(&mut socket, Duration::from_secs(30)).await else { return Err(format!("client {n}: no answer")) };
                    match m["type"].as_str() {
                        Some("ack") if m["changeId"] == change_id.as_str() => {
                            acks.push(t0.elapsed().as_secs_f64() * 1000.0);
                            for released in book.acked(m["version"].as_u64().unwrap_or(0)) {
                                apply(&mut copy, &released["diff"]);
                            }
                            break;
                        }
                        Some("error") | Some("resync") => {
                            refused.push(m);
                            break;
                        }
                        _ => heard(&m, &mut book, &mut copy),
                    }
                }
                // As the browser client does: a gap is asked for at once.
                if book.has_gap() {
                    let sync = json!({"action": "sync", "sinceVersion": book.version()});
                    let _ = socket.send(Message::text(sync.to_string())).await;
                }
                k += 1;
            }
            // The last changes of the others, and the answers to the last syncs.
            while let Some(m) = next_message(&mut socket, Duration::from_millis(1500)).await {
                heard(&m, &mut book, &mut copy);
                if book.has_gap() {
                    let sync = json!({"action": "sync", "sinceVersion": book.version()});
                    let _ = socket.send(Message::text(sync.to_string())).await;
                }
            }
            let _ = socket.close(None).await;
            Ok::<_, String>((acks, copy, book.version(), refused))
        }
    });
    let results = futures_util::future::join_all(tasks).await;
    let elapsed = started.elapsed().as_secs_f64();
    let after = stack.metrics().await?;

    let (_, now) = stack
        .call(
            Method::GET,
            &format!("/v1/coedit/session/{session}/history?limit=1"),
            &stack.routes.key,
            None,
        )
        .await?;
    let head = now["entries"][0]["version"].as_u64().unwrap_or(1);
    let (_, server) = stack
        .call(
            Method::GET,
            &format!("/v1/coedit/session/{session}/versions/{head}"),
            &stack.routes.key,
            None,
        )
        .await?;
    let server = server["template"].clone();

    let mut ack_ms = Vec::new();
    let mut acked = 0usize;
    let mut refusals: Vec<Value> = Vec::new();
    let mut converged = true;
    for r in &results {
        let (acks, copy, version, refused) = r.as_ref().map_err(|e| e.clone())?;
        acked += acks.len();
        refusals.extend(refused.iter().cloned());
        ack_ms.extend(acks.iter().copied());
        converged &= *version == head && *copy == server;
    }
    let submitted = submitted.lock().unwrap();
    let remote_ms: Vec<f64> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, times)| times.len() == clients - 1)
        .filter_map(|(id, times)| {
            Some(
                times
                    .iter()
                    .max()?
                    .duration_since(*submitted.get(id)?)
                    .as_secs_f64()
                    * 1000.0,
            )
        })
        .collect();
    let server_used = used(&before, &after);
    Ok(json!({
        "scenario": "edit-storm",
        "templateBytes": initial.to_string().len(),
        "seconds": elapsed,
        "acked": acked,
        "refused": refusals.len(),
        "refusals": refusals.iter().take(5).cloned().collect::<Vec<_>>(),
        "editsPerSecond": acked as f64 / elapsed,
        "versions": head,
        "ackMs": latencies(ack_ms),
        "remoteMs": latencies(remote_ms),
        "serverCpuMsPerEdit": server_used["cpuMs"].as_f64().unwrap_or(0.0) / acked.max(1) as f64,
        "server": server_used,
        "converged": converged && head as usize == acked + 1,
        "pushesReorderedUpToMs": stack.reorder_ms,
    }))
}

pub async fn join_storm(stack: &Stack, clients: usize) -> Result<Value, Error> {
    let template = coedit_tests::large_template(300 * 1024);
    let (session, _) = stack.routes.create(&template).await;
    let before = stack.metrics().await?;
    let started = Instant::now();
    let joins = (0..clients).map(|n| {
        let session = session.clone();
        async move {
            let t0 = Instant::now();
            let ((mut socket, token), join_ms, connect_ms) = stack
                .open_timed(&session, n)
                .await
                .map_err(|e| e.to_string())?;
            let t2 = Instant::now();
            let (status, got) = stack
                .call(
                    Method::GET,
                    &format!("/v1/coedit/session/{session}"),
                    &token,
                    None,
                )
                .await
                .map_err(|e| e.to_string())?;
            let get_ms = t2.elapsed().as_secs_f64() * 1000.0;
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            let ok = status == 200 && got["template"]["page"].is_object();
            let _ = next_message(&mut socket, Duration::from_millis(10)).await;
            Ok::<_, String>((
                ms,
                ok,
                socket,
                got["template"].clone(),
                [join_ms, connect_ms, get_ms],
            ))
        }
    });
    let results = futures_util::future::join_all(joins).await;
    let elapsed = started.elapsed().as_secs_f64();
    let after = stack.metrics().await?;
    let mut ms = Vec::new();
    let mut steps: [Vec<f64>; 3] = Default::default();
    let mut loaded = 0;
    let mut same = true;
    let mut first: Option<Value> = None;
    for r in results {
        let (t, ok, mut socket, template, parts) = r?;
        ms.push(t);
        for (list, v) in steps.iter_mut().zip(parts) {
            list.push(v);
        }
        loaded += usize::from(ok);
        same &= first.get_or_insert_with(|| template.clone()) == &template;
        let _ = socket.close(None).await;
    }
    let server_used = used(&before, &after);
    Ok(json!({
        "scenario": "join-storm",
        "templateBytes": template.to_string().len(),
        "seconds": elapsed,
        "joined": loaded,
        "joinAndLoadMs": latencies(ms),
        "steps": {"joinMs": latencies(steps[0].clone()), "connectMs": latencies(steps[1].clone()), "getMs": latencies(steps[2].clone())},
        "serverCpuMsPerJoin": server_used["cpuMs"].as_f64().unwrap_or(0.0) / clients.max(1) as f64,
        "server": server_used,
        "converged": same && loaded == clients,
    }))
}

/// A one-screen table of a report.
pub fn summary(r: &Value) -> String {
    let f = |p: &str| r.pointer(p).and_then(Value::as_f64).unwrap_or(0.0);
    let mut out = format!(
        "{} · {} clients · {} store · template {} KB\n",
        r["scenario"].as_str().unwrap_or_default(),
        r["clients"],
        r["store"].as_str().unwrap_or_default(),
        f("/templateBytes") as u64 / 1024
    );
    if r["scenario"] == "edit-storm" {
        out += &format!(
            "  edits/s {:.0} ({} acked, {} refused, converged: {})\n  ack ms p50 {:.1} p95 {:.1} p99 {:.1} · remote ms p50 {:.1} p99 {:.1}\n  server CPU {:.2} ms/edit · peak RSS {} MB\n",
            f("/editsPerSecond"),
            r["acked"],
            r["refused"],
            r["converged"],
            f("/ackMs/p50"),
            f("/ackMs/p95"),
            f("/ackMs/p99"),
            f("/remoteMs/p50"),
            f("/remoteMs/p99"),
            f("/serverCpuMsPerEdit"),
            f("/server/peakRssKb") as u64 / 1024,
        );
    } else {
        out += &format!(
            "  joined {} in {:.2} s · join+load ms p50 {:.0} p95 {:.0} p99 {:.0} (p50 of join {:.0}, $connect {:.0}, GET {:.0}) · server CPU {:.1} ms/join · peak RSS {} MB\n",
            r["joined"],
            f("/seconds"),
            f("/joinAndLoadMs/p50"),
            f("/joinAndLoadMs/p95"),
            f("/joinAndLoadMs/p99"),
            f("/steps/joinMs/p50"),
            f("/steps/connectMs/p50"),
            f("/steps/getMs/p50"),
            f("/serverCpuMsPerJoin"),
            f("/server/peakRssKb") as u64 / 1024,
        );
    }
    out += &format!(
        "  DynamoDB {:.0} RRU {:.0} WRU · WebSocket {} in / {} out (32 KB units) · cost {}\n",
        f("/server/readUnits"),
        f("/server/writeUnits"),
        f("/server/unitsIn"),
        f("/server/unitsOut"),
        r["cost"]["summary"].as_str().unwrap_or_default()
    );
    out
}
