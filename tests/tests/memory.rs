//! The local stack's memory while it refuses the copy-doubling attack: 30 `copy`
//! ops of the page into itself on a 160 KB template (unbounded, the template
//! doubles 30 times: the stack passed 11 GB in 30 s). Alone in its test binary:
//! the peak is the process's (Linux `VmHWM`, reset before the attack).

use coedit_tests::fixture;
use coedit_tests::stack::{Options, Stack};
use hyper::Method;
use serde_json::{Value, json};

/// The process's resident memory now and at its peak since the last reset, in bytes.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kb * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Starts the peak over from the resident memory now.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

/// A real template grown to 160 KB with more of its own rows.
fn template_of_160_kb() -> Value {
    let mut template = fixture("our-monthly-impact-email.json");
    let rows = template["page"]["rows"].as_array().unwrap().clone();
    let mut i = 0;
    while serde_json::to_string(&template).unwrap().len() < 160 * 1024 {
        let mut row = rows[i % rows.len()].clone();
        strip_uuids(&mut row);
        template["page"]["rows"].as_array_mut().unwrap().push(row);
        i += 1;
    }
    template
}

fn strip_uuids(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("uuid");
            m.values_mut().for_each(strip_uuids);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_uuids),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusing_the_copy_doubling_attack_stays_under_twice_the_template_limit() {
    let limit = coedit::patch::DEFAULT_MAX_TEMPLATE_BYTES as u64;
    let stack = Stack::start(Options::embedded()).await;
    let routes = &stack.routes;
    let (id, template) = routes.create(&template_of_160_kb()).await;
    let size = template.to_string().len();
    let (status, joined) = routes.join(&id, 1).await;
    assert_eq!(status, 200, "{joined}");
    let token = joined["token"].as_str().unwrap();
    let post = |body: Value| {
        let path = format!("/v1/coedit/session/{id}/changes");
        async move {
            routes
                .send(
                    Method::POST,
                    &path,
                    body.to_string().into_bytes(),
                    Some(token),
                )
                .await
        }
    };
    // A first change loads the session's template into the instance.
    let (status, ack) = post(json!({"changeId": "warm", "baseVersion": 1,
        "patch": [{"op": "add", "path": "/page/title", "value": "warm"}]}))
    .await;
    assert_eq!(status, 200, "{ack}");

    let get = || async {
        let (status, got) = routes
            .send(
                Method::GET,
                &format!("/v1/coedit/session/{id}"),
                vec![],
                Some(token),
            )
            .await;
        assert_eq!(status, 200, "{got}");
        got
    };
    let warm = get().await;
    let attack: Vec<Value> = (1..=30)
        .map(|i| json!({"op": "copy", "from": "/page", "path": format!("/page/a{i}")}))
        .collect();
    reset_peak();
    let (before, _) = memory();
    let (status, refused) =
        post(json!({"changeId": "attack", "baseVersion": 2, "patch": attack})).await;
    let (_, peak) = memory();
    assert_eq!(
        (status, refused["code"].as_u64()),
        (413, Some(4013)),
        "{refused}"
    );
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .starts_with("patch[2] (copy /page/a3): the change copies more than"),
        "{refused}"
    );
    let grew = peak.saturating_sub(before);
    println!(
        "template {size} bytes; refusing 30 copies of the page: peak resident memory {:.1} MB above the {:.1} MB before ({:.2} x the {:.1} MB template limit)",
        grew as f64 / 1e6,
        before as f64 / 1e6,
        grew as f64 / limit as f64,
        limit as f64 / 1e6
    );
    assert!(
        grew < 2 * limit,
        "the peak grew by {grew} bytes: more than twice the template limit"
    );

    // Nothing was stored: the session is where the warm-up left it.
    let after = get().await;
    assert_eq!(after["version"], 2);
    assert_eq!(after["template"], warm["template"]);
}
