//! Prints the DynamoDB requests and capacity units that create and get use for each
//! fixture template and a synthetic 1.5 MB one, as DynamoDB Local reports them.
//!
//! `COEDIT_TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:8000 cargo run --release -p coedit-shared --example capacity`

#[path = "../tests/common/mod.rs"]
mod common;

use coedit::handlers::{create_session, get_session};
use coedit::session::Template;
use coedit::store::snapshot::Snapshot;
use common::*;
use serde_json::json;

#[tokio::main]
async fn main() {
    let store = TestStore::dynamo().await;
    let TestStore::Dynamo(dynamo) = &store else {
        unreachable!()
    };
    let meter = dynamo.meter().clone();
    let t = TestApp::new(store.clone()).await;
    let mut templates = fixture_templates();
    templates.push(("synthetic-1.5MB".into(), large_template(1_500_000)));

    println!(
        "| template | raw bytes | compressed | parts | create: requests, WCU | get: requests, RCU |"
    );
    println!("|---|---:|---:|---:|---|---|");
    for (name, template) in templates {
        let prepared = Template::prepare(template.clone(), "/template").unwrap();
        let snapshot = Snapshot::encode(&prepared).unwrap();
        let body = serde_json::to_vec(&json!({"template": template, "userid": "u"})).unwrap();

        let before = meter.totals();
        let res = call(
            &t.app,
            create_session::handle,
            Event::create_session(Some(&t.api_key), body),
        )
        .await;
        assert_eq!(res.status, 201, "{}", res.body);
        let created = meter.totals() - before;
        let id = res.json()["sessionId"].as_str().unwrap().to_owned();

        let before = meter.totals();
        let res = call(
            &t.app,
            get_session::handle,
            Event::get_session(Some(&t.api_key), &id),
        )
        .await;
        assert_eq!(res.status, 200);
        let read = meter.totals() - before;

        println!(
            "| {name} | {} | {} | {} | {}, {:.1} | {}, {:.1} |",
            prepared.len(),
            snapshot.compressed_len(),
            snapshot.parts.len(),
            created.write_requests + created.read_requests,
            created.write_units,
            read.read_requests + read.write_requests,
            read.read_units,
        );
    }
}
