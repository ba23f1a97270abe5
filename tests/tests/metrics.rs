//! The metrics the functions write in CloudWatch's embedded metric format, as one
//! flow makes them: alone in its test binary, since the metric sink is the
//! process's (as it is a Lambda instance's).

use coedit::handlers::sweeper;
use coedit_tests::ws::user;
use coedit_tests::{TestApp, TestStore};
use serde_json::{Value, json};
use std::time::Duration;

/// The sum of one metric over the documents captured, with the given `Code`.
fn total(docs: &[Value], name: &str, code: Option<&str>) -> u64 {
    docs.iter()
        .filter(|d| code.is_none_or(|c| d["Code"] == c))
        .filter_map(|d| d[name].as_u64())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_s_life_is_counted() {
    let captured = coedit::metrics::capture();
    let t = TestApp::new(TestStore::memory()).await;
    let id = t.create_session().await;
    let ann = t.connect(&id, &user(1)).await;
    let bob = t.connect(&id, &user(2)).await;
    let _cy = t.connect(&id, &user(3)).await;
    let edit = |change: &str, base: u64, value: i64| {
        json!({"action": "edit", "changeId": change, "baseVersion": base,
               "patch": [{"op": "replace", "path": "/page/rows/0/uuid", "value": value.to_string()}]})
    };
    assert_eq!(t.send(&ann, &edit("a", 1, 1)).await["version"], 2);
    // Bob replaced what he had not seen replaced: a conflict only with a test op.
    let conflict = json!({"action": "edit", "changeId": "b", "baseVersion": 1,
        "patch": [{"op": "test", "path": "/page/rows/0/uuid", "value": "nope"}]});
    assert_eq!(t.send(&bob, &conflict).await["code"], 4009);
    assert_eq!(t.send(&bob, &json!({"action": "nope"})).await["code"], 4000);
    t.clock.advance(Duration::from_secs(60 * 60));
    let report = sweeper::run(&t.app).await;
    assert!(report.dropped >= 1, "{report:?}");

    let docs = captured.lock().unwrap().clone();
    assert_eq!(total(&docs, "Changes", None), 1);
    // Sent to Bob and Cy.
    assert_eq!(total(&docs, "FanOut", None), 2);
    assert_eq!(total(&docs, "Refusals", Some("4009")), 1);
    assert_eq!(total(&docs, "Refusals", Some("4000")), 1);
    assert_eq!(total(&docs, "Conflicts", None), 1);
    assert_eq!(total(&docs, "SweepDropped", None), report.dropped as u64);
    for d in &docs {
        let directive = &d["_aws"]["CloudWatchMetrics"][0];
        for m in directive["Metrics"].as_array().unwrap() {
            assert!(d[m["Name"].as_str().unwrap()].is_u64(), "{d}");
        }
    }
}
