//! The edit pipeline (docs/PROTOCOL.md, `edit`, `lock`, `unlock`, `sync`): versions that
//! never skip or repeat under concurrency across instances, merging of concurrent
//! changes, locks, resends and every validation error; on the embedded store and
//! on DynamoDB Local.

use coedit_tests::both_stores;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use coedit::clock::Clock as _;
use coedit::patch;
use coedit::session::{HistoryEntry, SessionId, Version};
use coedit_tests::ws::{Client, send_to, user};
use coedit_tests::{Event, TestApp, TestStore, call, fixture};
use serde_json::{Value, json};

both_stores!(
    twenty_writers_on_disjoint_modules_get_contiguous_versions_and_converge,
    structural_changes_race_edits_and_are_rebased_or_refused_never_misapplied,
    twenty_users_race_for_one_lock_two_hundred_rounds,
    a_resent_change_is_applied_once,
    invalid_changes_are_refused_saying_what_and_where_and_store_nothing,
    sync_returns_missed_entries_or_resync,
    locks_go_with_their_holder,
    history_pages_newest_first_without_diffs,
    every_version_reads_back_before_and_after_compaction,
    a_change_too_large_for_a_message_goes_over_rest,
    a_connection_not_present_changes_nothing_and_is_closed,
    a_gone_connection_is_dropped_when_a_change_finds_it,
    own_changes_acknowledged_before_lower_versions_never_conflict,
    one_lock_rule_for_locks_and_edits,
    a_far_behind_change_reads_a_bounded_log,
);

fn sid(id: &str) -> SessionId {
    SessionId::parse(id).unwrap()
}

/// `/page/rows/r/columns/c/modules/m` of every module, in document order.
fn module_paths(template: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (r, row) in template["page"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        for (c, col) in row["columns"].as_array().into_iter().flatten().enumerate() {
            for (m, module) in col["modules"].as_array().into_iter().flatten().enumerate() {
                let uuid = module["uuid"].as_str().unwrap().to_owned();
                out.push((format!("/page/rows/{r}/columns/{c}/modules/{m}"), uuid));
            }
        }
    }
    out
}

async fn template_of(t: &TestApp, id: &str) -> (Value, u64) {
    let got = t.get(&t.api_key, id).await.json();
    (got["template"].clone(), got["version"].as_u64().unwrap())
}

async fn log_of(t: &TestApp, id: &str) -> Vec<HistoryEntry> {
    t.app
        .store
        .history(&sid(id), Version(0), usize::MAX, usize::MAX)
        .await
        .unwrap()
}

/// Applies history entries (their diffs as applied) to a template.
fn replay(mut doc: Value, entries: &[&HistoryEntry]) -> Value {
    for e in entries {
        if e.diff.is_empty() {
            continue;
        }
        let ops = patch::parse(&Value::Array(e.diff.clone())).unwrap();
        patch::apply(&mut doc, 0, &ops)
            .unwrap_or_else(|f| panic!("entry {} does not apply: {f:?}", e.version));
    }
    doc
}

fn edit(change_id: &str, base: u64, patch: Value) -> Value {
    json!({"action": "edit", "changeId": change_id, "baseVersion": base, "patch": patch,
           "label": "Text changed", "type": "text"})
}

/// The change entries pushed to a client, and whatever else it received.
fn split_received(client: &mut Client) -> (Vec<HistoryEntry>, Vec<Value>) {
    let mut changes = Vec::new();
    let mut other = Vec::new();
    for m in client.received() {
        if m["type"] == "change" {
            changes.push(serde_json::from_value(m["historyEntry"].clone()).unwrap());
        } else {
            other.push(m);
        }
    }
    (changes, other)
}

async fn twenty_writers_on_disjoint_modules_get_contiguous_versions_and_converge(store: TestStore) {
    let t = TestApp::new(store.clone()).await;
    let id = t
        .create_session_from(&fixture("playground-template.json"))
        .await;
    let (initial, v1) = template_of(&t, &id).await;
    assert_eq!(v1, 1);
    let modules = module_paths(&initial);
    // Four warm instances of the edit function, writers spread over them.
    let instances: Vec<Arc<coedit::App>> = (0..4).map(|_| t.another_instance()).collect();
    let mut clients = Vec::new();
    for n in 0..20 {
        clients.push(t.connect(&id, &user(n)).await);
    }
    for c in &mut clients {
        c.received();
    }

    let writers = clients.iter().enumerate().map(|(n, c)| {
        let app = instances[n % instances.len()].clone();
        let connection = c.id.clone();
        let (path, _) = modules[n].clone();
        async move {
            let mut acked: Vec<(u64, Value)> = Vec::new();
            let mut base = 1;
            for k in 0..100 {
                let patch =
                    json!([{"op": "add", "path": format!("{path}/coeditCounter"), "value": k}]);
                let body = edit(&format!("w{n}-{k}"), base, patch.clone()).to_string();
                let answer = send_to(&app, &connection, &body).await;
                assert_eq!(answer["type"], "ack", "writer {n} change {k}: {answer}");
                assert_eq!(answer["changeId"], format!("w{n}-{k}"));
                let version = answer["version"].as_u64().unwrap();
                acked.push((version, patch));
                base = version;
            }
            acked
        }
    });
    let acked: Vec<Vec<(u64, Value)>> = futures_util::future::join_all(writers).await;

    // Versions 2..=2001, each once.
    let mut versions: Vec<u64> = acked.iter().flatten().map(|(v, _)| *v).collect();
    versions.sort();
    assert_eq!(versions, (2..=2001).collect::<Vec<_>>());
    let log = log_of(&t, &id).await;
    assert_eq!(
        log.iter().map(|e| e.version.0).collect::<Vec<_>>(),
        (1..=2001).collect::<Vec<_>>()
    );

    // The server's template is every acked change applied in version order...
    let (server, head) = template_of(&t, &id).await;
    assert_eq!(head, 2001);
    let mut by_version: BTreeMap<u64, Value> = BTreeMap::new();
    for (v, p) in acked.iter().flatten() {
        by_version.insert(*v, p.clone());
    }
    let mut expected = initial.clone();
    for p in by_version.values() {
        patch::apply(&mut expected, 0, &patch::parse(p).unwrap()).unwrap();
    }
    assert_eq!(server, expected);
    for (n, (path, _)) in modules.iter().take(20).enumerate() {
        let module = server.pointer(path).unwrap();
        assert_eq!(module["coeditCounter"], 99, "writer {n}");
    }

    // ...and so is each client's copy, built from what it received and its own acks.
    for (n, c) in clients.iter_mut().enumerate() {
        let (changes, other) = split_received(c);
        assert!(other.is_empty(), "client {n} got {other:?}");
        let mut mine: BTreeMap<u64, Value> = changes
            .iter()
            .map(|e| (e.version.0, Value::Array(e.diff.clone())))
            .collect();
        assert_eq!(
            mine.len(),
            1900,
            "client {n} receives every other change once"
        );
        for (v, p) in &acked[n] {
            assert!(mine.insert(*v, p.clone()).is_none());
        }
        let mut copy = initial.clone();
        for p in mine.values() {
            patch::apply(&mut copy, 0, &patch::parse(p).unwrap()).unwrap();
        }
        assert_eq!(copy, server, "client {n}");
    }
}

async fn structural_changes_race_edits_and_are_rebased_or_refused_never_misapplied(
    store: TestStore,
) {
    let t = TestApp::new(store.clone()).await;
    let id = t
        .create_session_from(&fixture("playground-template.json"))
        .await;
    let (initial, _) = template_of(&t, &id).await;
    let instances: Vec<Arc<coedit::App>> = (0..3).map(|_| t.another_instance()).collect();
    let mut clients = Vec::new();
    for n in 0..9 {
        clients.push(t.connect(&id, &user(n)).await);
    }

    // Each client works from its own copy, refreshed with GET after a conflict,
    // like a browser that resyncs. Editors mark a module with its own uuid; row
    // movers insert and remove whole rows.
    let tasks = clients.iter().enumerate().map(|(n, c)| {
        let app = instances[n % instances.len()].clone();
        let connection = c.id.clone();
        let t = &t;
        let id = id.clone();
        async move {
            let (mut copy, mut base) = template_of(t, &id).await;
            let mut outcomes: HashMap<String, usize> = HashMap::new();
            for k in 0..30 {
                let rows = copy["page"]["rows"].as_array().unwrap().len();
                let pick = (n * 7 + k * 13) % rows.max(1);
                let patch = if n % 3 == 0 {
                    if k % 2 == 0 || rows < 4 {
                        json!([{"op": "add", "path": format!("/page/rows/{pick}"),
                                "value": {"uuid": format!("row-{n}-{k}"), "columns": [{"modules": [
                                    {"uuid": format!("mod-{n}-{k}"), "type": "t"}]}]}}])
                    } else {
                        json!([{"op": "remove", "path": format!("/page/rows/{pick}")}])
                    }
                } else {
                    let modules = module_paths(&copy);
                    let (path, uuid) = &modules[(n * 5 + k * 3) % modules.len()];
                    json!([{"op": "add", "path": format!("{path}/mark"), "value": format!("{uuid}|{n}-{k}")}])
                };
                let body = edit(&format!("s{n}-{k}"), base, patch.clone()).to_string();
                let answer = send_to(&app, &connection, &body).await;
                match answer["type"].as_str() {
                    Some("ack") => {
                        *outcomes.entry("ack".into()).or_default() += 1;
                    }
                    Some("error") => {
                        assert_eq!(answer["code"], 4009, "only conflicts may refuse: {answer}");
                        assert_eq!(answer["changeId"], format!("s{n}-{k}"));
                        *outcomes.entry("conflict".into()).or_default() += 1;
                    }
                    _ => panic!("{answer}"),
                }
                (copy, base) = template_of(t, &id).await;
            }
            outcomes
        }
    });
    let outcomes = futures_util::future::join_all(tasks).await;
    let acks: usize = outcomes
        .iter()
        .map(|o| o.get("ack").copied().unwrap_or(0))
        .sum();
    assert!(acks > 100, "most changes merge: {outcomes:?}");

    // Replaying the log: every mark lands on the module it names, every row
    // insert where the log says, and the result is the server's template.
    let log = log_of(&t, &id).await;
    let mut doc = initial.clone();
    for e in &log[1..] {
        for op in &e.diff {
            let path = op["path"].as_str().unwrap();
            if let Some(module_path) = path.strip_suffix("/mark") {
                let intended = op["value"].as_str().unwrap().split('|').next().unwrap();
                let module = doc
                    .pointer(module_path)
                    .unwrap_or_else(|| panic!("v{} {path}: no module", e.version));
                assert_eq!(
                    module["uuid"], intended,
                    "v{}: a mark landed on another module",
                    e.version
                );
            }
        }
        doc = replay(doc, &[e]);
    }
    let (server, head) = template_of(&t, &id).await;
    assert_eq!(head, log.len() as u64);
    assert_eq!(doc, server);
}

async fn twenty_users_race_for_one_lock_two_hundred_rounds(store: TestStore) {
    let t = TestApp::new(store.clone()).await;
    let id = t
        .create_session_from(&fixture("playground-template.json"))
        .await;
    let (initial, _) = template_of(&t, &id).await;
    let (path, element) = module_paths(&initial)[3].clone();
    let instances: Vec<Arc<coedit::App>> = (0..4).map(|_| t.another_instance()).collect();
    let mut clients = Vec::new();
    for n in 0..20 {
        clients.push(t.connect(&id, &user(n)).await);
    }
    let lock = json!({"action": "lock", "target": element});
    for round in 0..200 {
        // A different one starts first each round.
        let order = (0..20).map(|k| (k + round * 7) % 20);
        let racers = order.clone().map(|n| {
            let c = &clients[n];
            let app = instances[n % instances.len()].clone();
            let body = lock.to_string();
            let connection = c.id.clone();
            async move { send_to(&app, &connection, &body).await }
        });
        let mut answers = vec![Value::Null; 20];
        for (n, a) in order.zip(futures_util::future::join_all(racers).await) {
            answers[n] = a;
        }
        let winners: Vec<usize> = (0..20).filter(|n| answers[*n]["granted"] == true).collect();
        assert_eq!(winners.len(), 1, "round {round}: {answers:?}");
        let winner = winners[0];
        for (n, a) in answers.iter().enumerate() {
            assert_eq!(a["type"], "lock");
            assert_eq!(a["target"], element);
            if n != winner {
                assert_eq!(
                    a["heldBy"]["userId"],
                    format!("user-{winner}"),
                    "round {round}"
                );
            }
        }
        if round % 20 == 0 {
            // Nobody else may change the element or anything in it.
            let other = (winner + 1) % 20;
            let change = edit(
                &format!("l{round}"),
                1,
                json!([{"op": "add", "path": format!("{path}/x{round}"), "value": 1}]),
            );
            let refused = send_to(&instances[0], &clients[other].id, &change.to_string()).await;
            assert_eq!(refused["code"], 4023, "{refused}");
            assert!(refused["detail"].as_str().unwrap().contains(&element));
            let mine = send_to(&instances[1], &clients[winner].id, &change.to_string()).await;
            assert_eq!(mine["type"], "ack", "{mine}");
        }
        let unlock = json!({"action": "unlock", "target": element}).to_string();
        send_to(&instances[2], &clients[winner].id, &unlock).await;
    }
    // Everyone but the holder heard every LOCKED and UNLOCKED.
    let (mut locked, mut unlocked) = (0, 0);
    for c in &mut clients {
        let (_, other) = split_received(c);
        for m in other.iter().filter(|m| m["type"] == "sessionChange") {
            match m["change"]["type"].as_str() {
                Some("LOCKED") => locked += 1,
                Some("UNLOCKED") => unlocked += 1,
                _ => continue,
            }
            assert_eq!(m["change"]["target"], element);
        }
    }
    assert_eq!((locked, unlocked), (200 * 19, 200 * 19));
}

async fn a_resent_change_is_applied_once(store: TestStore) {
    let t = TestApp::new(store.clone()).await;
    let id = t.create_session().await;
    let (initial, _) = template_of(&t, &id).await;
    let (path, _) = module_paths(&initial)[0].clone();
    let mut ann = t.connect(&id, &user(1)).await;
    let mut bob = t.connect(&id, &user(2)).await;
    ann.received();
    let change = edit(
        "c-1",
        1,
        json!([{"op": "add", "path": format!("{path}/n"), "value": 1}]),
    );
    let first = t.send(&ann, &change).await;
    assert_eq!(
        first,
        json!({"type": "ack", "changeId": "c-1", "version": 2})
    );
    // The ack was lost; more changes happen; she reconnects and sends it again, to
    // the same instance and to a cold one.
    t.send(
        &bob,
        &edit(
            "c-2",
            2,
            json!([{"op": "add", "path": "/page/other", "value": 2}]),
        ),
    )
    .await;
    t.disconnect(&ann).await;
    let ann = t.connect(&id, &user(1)).await;
    assert_eq!(t.send(&ann, &change).await, first);
    let cold = t.another_instance();
    assert_eq!(send_to(&cold, &ann.id, &change.to_string()).await, first);
    let log = log_of(&t, &id).await;
    assert_eq!(log.len(), 3);
    assert_eq!(log.iter().filter(|e| e.change_id == "c-1").count(), 1);
    // Bob got it once.
    let (changes, _) = split_received(&mut bob);
    assert_eq!(changes.iter().filter(|e| e.change_id == "c-1").count(), 1);
}

async fn invalid_changes_are_refused_saying_what_and_where_and_store_nothing(store: TestStore) {
    let t = TestApp::new(store.clone()).await;
    let id = t.create_session().await;
    let ann = t.connect(&id, &user(1)).await;
    let writes = t.store.writes();
    let ok_patch = json!([{"op": "add", "path": "/page/x", "value": 1}]);
    let huge = "x".repeat(130 * 1024);
    let deep = (0..200).fold(json!(1), |v, _| json!([v]));
    let cases: Vec<(String, u16, &str)> = vec![
        ("{\"action\":\"edit\",".into(), 4000, "EOF"),
        (r#"{"action":"edit","changeId":"c","baseVersion":"one","patch":[]}"#.into(), 4000, "baseVersion"),
        (r#"{"action":"edit","baseVersion":1,"patch":[]}"#.into(), 4000, "changeId"),
        (edit("c", 0, ok_patch.clone()).to_string(), 4000, "baseVersion"),
        (edit("c", 9, ok_patch.clone()).to_string(), 4000, "newer than the session's version 1"),
        (edit("", 1, ok_patch.clone()).to_string(), 4000, "changeId"),
        (edit("c", 1, json!({"op": "add"})).to_string(), 4001, "must be an array"),
        (edit("c", 1, json!([])).to_string(), 4001, "no operations"),
        (edit("c", 1, json!([{"op": "add", "path": "page/x", "value": 1}])).to_string(), 4001, "patch[0]"),
        (edit("c", 1, json!([{"op": "jump", "path": "/page/x"}])).to_string(), 4001, "patch[0]: unknown variant `jump`"),
        (edit("c", 1, json!([{"op": "add", "path": "/page/x", "value": 1}, {"op": "remove", "path": "/page/rows/99"}])).to_string(), 4001, "patch[1] (remove /page/rows/99)"),
        (edit("c", 1, json!([{"op": "replace", "path": "/page/nothing/here", "value": 1}])).to_string(), 4001, "does not exist"),
        (edit("c", 1, json!([{"op": "add", "path": "/page/rows/0/uuid/x", "value": 1}])).to_string(), 4001, "neither an object nor an array"),
        (edit("c", 1, json!([{"op": "remove", "path": "/page"}])).to_string(), 4001, "page must stay an object"),
        (edit("c", 1, json!([{"op": "replace", "path": "", "value": {"page": {}}}])).to_string(), 4001, "root"),
        (edit("c", 1, json!([{"op": "test", "path": "/page/rows/0/uuid", "value": "nope"}])).to_string(), 4009, "tested"),
        (edit("c", 1, json!([{"op": "add", "path": "/page/x", "value": huge}])).to_string(), 4013, "bytes"),
        (edit("c", 1, json!([{"op": "add", "path": "/page/x", "value": deep}])).to_string(), 4000, "recursion"),
        (r#"{"action":"lock","target":""}"#.into(), 4000, "target"),
        (r#"{"action":"sync","sinceVersion":-1}"#.into(), 4000, "sinceVersion"),
        (r#"{"action":"dance"}"#.into(), 4000, "unknown variant `dance`"),
    ];
    for (body, code, says) in &cases {
        let answer = send_to(&t.app, &ann.id, body).await;
        assert_eq!(answer["type"], "error", "{body:.80}: {answer}");
        assert_eq!(answer["code"], *code, "{body:.80}: {answer}");
        let detail = answer["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{body:.80}: {detail}");
        // Every message that is read names its change; one too large or nested too
        // deeply is not read.
        if body.contains(r#""changeId":"c""#) && *code != 4013 && !detail.contains("recursion") {
            assert_eq!(answer["changeId"], "c", "{body:.80}");
        }
    }
    assert_eq!(t.store.writes(), writes, "nothing was stored");
    let (_, version) = template_of(&t, &id).await;
    assert_eq!(version, 1, "no version used up");
    // The next good change still gets version 2.
    let ok = t.send(&ann, &edit("good", 1, ok_patch)).await;
    assert_eq!(ok["version"], 2, "{ok}");
}

async fn sync_returns_missed_entries_or_resync(store: TestStore) {
    let t = TestApp::new(store.clone()).await;
    let id = t.create_session().await;
    let ann = t.connect(&id, &user(1)).await;
    for k in 0..5 {
        t.send(
            &ann,
            &edit(
                &format!("c{k}"),
                1 + k,
                json!([{"op": "add", "path": "/page/k", "value": k}]),
            ),
        )
        .await;
    }
    let answer = t
        .send(&ann, &json!({"action": "sync", "sinceVersion": 3}))
        .await;
    assert_eq!(answer["type"], "changes");
    let versions: Vec<u64> = answer["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [4, 5, 6]);
    assert_eq!(
        answer["entries"][0]["diff"],
        json!([{"op": "add", "path": "/page/k", "value": 2}])
    );
    let none = t
        .send(&ann, &json!({"action": "sync", "sinceVersion": 6}))
        .await;
    assert_eq!(none, json!({"type": "changes", "entries": []}));
    // Too much to send in one message: fetch the template instead.
    let big = "y".repeat(60 * 1024);
    for k in 0..3 {
        let a = t
            .send(
                &ann,
                &edit(
                    &format!("b{k}"),
                    6 + k,
                    json!([{"op": "add", "path": "/page/big", "value": big}]),
                ),
            )
            .await;
        assert_eq!(a["type"], "ack", "{a}");
    }
    let resync = t
        .send(&ann, &json!({"action": "sync", "sinceVersion": 1}))
        .await;
    assert_eq!(resync, json!({"type": "resync", "version": 9}));
}

/// An instance that does not remember a change's base reads the changes it
/// missed from the store: no more than `MAX_REBASE_READ_BYTES` of them, and not
/// at all for a base too far behind (refused first).
async fn a_far_behind_change_reads_a_bounded_log(store: TestStore) {
    use coedit::session::change::{MAX_BEHIND, MAX_REBASE_READ_BYTES};
    let t = TestApp::new(store.clone()).await;
    let id = t.create_session().await;
    let ann = t.connect(&id, &user(1)).await;
    let bob = t.connect(&id, &user(2)).await;
    // 210 changes of 12 KB (2.5 MB): compacted at 201, so a cold instance
    // remembers only the ten after it.
    let text = "t".repeat(12 * 1024);
    for v in 1..=210u64 {
        let a = t
            .send(&ann, &edit(&format!("a{v}"), v, json!([{"op": "replace", "path": "/page/rows/0/uuid", "value": format!("{v}{text}")}])))
            .await;
        assert_eq!(a["version"], v + 1, "{a}");
    }
    let cold = t.another_instance();
    let bob_adds = |change: &str, base: u64| {
        edit(
            change,
            base,
            json!([{"op": "add", "path": "/page/bob", "value": change}]),
        )
        .to_string()
    };
    let refused = send_to(&cold, &bob.id, &bob_adds("b1", 1)).await;
    assert_eq!(refused["code"], 4009, "{refused}");
    let says = format!("more than {MAX_REBASE_READ_BYTES} bytes to rebase over");
    assert!(
        refused["detail"].as_str().unwrap().contains(&says),
        "{refused}"
    );
    // 110 changes behind (1.3 MB) are read and rebased over.
    let ack = send_to(&cold, &bob.id, &bob_adds("b2", 101)).await;
    assert_eq!(
        (&ack["type"], &ack["version"]),
        (&json!("ack"), &json!(212)),
        "{ack}"
    );
    let (_, version) = template_of(&t, &id).await;
    assert_eq!(version, 212);

    // Past MAX_BEHIND the base is refused before the log is read (a session that
    // starts at 5000 has nothing below it to read).
    let body = json!({"template": fixture("hackathon-playground-template.json"), "userid": "h", "version": 5000});
    let created = call(
        &t.app,
        coedit::handlers::create_session::handle,
        Event::create_session(Some(&t.api_key), body.to_string()),
    )
    .await
    .json();
    let later = created["sessionId"].as_str().unwrap();
    let cy = t.connect(later, &user(3)).await;
    let base = 5000 - MAX_BEHIND - 1;
    let refused = t
        .send(
            &cy,
            &edit(
                "far",
                base,
                json!([{"op": "add", "path": "/page/x", "value": 1}]),
            ),
        )
        .await;
    assert_eq!(refused["code"], 4009, "{refused}");
    let says = format!("baseVersion {base} is {} versions behind", MAX_BEHIND + 1);
    assert!(
        refused["detail"].as_str().unwrap().contains(&says),
        "{refused}"
    );
}

async fn locks_go_with_their_holder(store: TestStore) {
    let t = TestApp::new(store.clone()).await;
    let id = t.create_session().await;
    let (initial, _) = template_of(&t, &id).await;
    let (path, element) = module_paths(&initial)[0].clone();
    let ann = t.connect(&id, &user(1)).await;
    let mut bob = t.connect(&id, &user(2)).await;
    let lock = json!({"action": "lock", "target": element});
    assert_eq!(t.send(&ann, &lock).await["granted"], true);
    // Locking again is idempotent and announces nothing new.
    assert_eq!(t.send(&ann, &lock).await["granted"], true);
    let (_, got) = split_received(&mut bob);
    assert_eq!(
        got.iter()
            .filter(|m| m["change"]["type"] == "LOCKED")
            .count(),
        1
    );
    // A change to the row holding the module is refused too.
    let row = path.split("/columns").next().unwrap();
    let refused = t
        .send(&bob, &edit("b1", 1, json!([{"op": "remove", "path": row}])))
        .await;
    assert_eq!(refused["code"], 4023, "{refused}");
    t.disconnect(&ann).await;
    let (_, got) = split_received(&mut bob);
    assert!(
        got.iter()
            .any(|m| m["change"]["type"] == "UNLOCKED" && m["change"]["target"] == element),
        "{got:?}"
    );
    assert_eq!(t.send(&bob, &lock).await["granted"], true);
    let ok = t
        .send(
            &bob,
            &edit(
                "b2",
                1,
                json!([{"op": "add", "path": format!("{path}/n"), "value": 1}]),
            ),
        )
        .await;
    assert_eq!(ok["type"], "ack");
}

async fn history_pages_newest_first_without_diffs(store: TestStore) {
    let t = TestApp::new(store.clone()).await;
    let id = t.create_session().await;
    let ann = t.connect(&id, &user(1)).await;
    for k in 0..7u64 {
        t.send(
            &ann,
            &edit(
                &format!("c{k}"),
                k + 1,
                json!([{"op": "add", "path": "/page/k", "value": k}]),
            ),
        )
        .await;
    }
    let page = |query: &str| {
        call(
            &t.app,
            coedit::handlers::get_session::handle,
            Event::history(Some(&t.api_key), &id, query),
        )
    };
    let first = page("limit=3").await;
    assert_eq!(first.status, 200, "{}", first.body);
    let first = first.json();
    let versions = |p: &Value| {
        p["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["version"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(versions(&first), [8, 7, 6]);
    assert_eq!(first["nextBefore"], 6);
    assert_eq!(
        first["entries"][0],
        json!({"version": 8, "timestamp": first["entries"][0]["timestamp"], "changeId": "c6",
               "label": "Text changed", "type": "text", "userId": "user-1"})
    );
    let second = page("limit=3&before=6").await.json();
    assert_eq!(versions(&second), [5, 4, 3]);
    let last = page("limit=3&before=3").await.json();
    assert_eq!(versions(&last), [2, 1]);
    assert_eq!(last["nextBefore"], Value::Null);
    assert_eq!(versions(&page("").await.json()).len(), 8);
    page("limit=0")
        .await
        .assert_error(400, 4000, "limit: must be 1 to 500");
    page("before=x")
        .await
        .assert_error(400, 4000, "before: must be a whole number");
    // Another tenant sees nothing; a token for the session reads it.
    let other = t.add_key("globex", coedit::api_key::Plan::Large).await;
    call(
        &t.app,
        coedit::handlers::get_session::handle,
        Event::history(Some(&other), &id, ""),
    )
    .await
    .assert_error(404, 5150, "");
    let token = t.join_token(&id, &user(3)).await;
    let res = call(
        &t.app,
        coedit::handlers::get_session::handle,
        Event::history(Some(&token), &id, "limit=1"),
    )
    .await;
    assert_eq!(versions(&res.json()), [8]);
}

async fn every_version_reads_back_before_and_after_compaction(store: TestStore) {
    let t = TestApp::new(store.clone()).await;
    let id = t.create_session().await;
    let (initial, _) = template_of(&t, &id).await;
    let ann = t.connect(&id, &user(1)).await;
    let total = coedit::session::change::COMPACT_EVERY + 5;
    for k in 0..total {
        let a = t
            .send(
                &ann,
                &edit(
                    &format!("c{k}"),
                    k + 1,
                    json!([{"op": "add", "path": format!("/page/k{}", k % 7), "value": k}]),
                ),
            )
            .await;
        assert_eq!(a["type"], "ack", "{a}");
    }
    let head = total + 1;
    let state = t
        .app
        .store
        .read_session(&sid(&id), t.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        state.session.snapshot_version.0,
        coedit::session::change::COMPACT_EVERY + 1,
        "compacted"
    );
    assert_eq!(
        state.tail.len() as u64,
        head - state.session.snapshot_version.0
    );

    let log = log_of(&t, &id).await;
    let version = |n: String| {
        call(
            &t.app,
            coedit::handlers::get_session::handle,
            Event::version(Some(&t.api_key), &id, &n),
        )
    };
    for n in [
        1,
        2,
        50,
        coedit::session::change::COMPACT_EVERY + 1,
        head - 1,
        head,
    ] {
        let res = version(n.to_string()).await;
        assert_eq!(res.status, 200, "{n}: {}", res.body);
        let got = res.json();
        assert_eq!(got["version"], n);
        let entries: Vec<&HistoryEntry> = log.iter().filter(|e| e.version.0 <= n).collect();
        assert_eq!(
            got["template"],
            replay(initial.clone(), &entries),
            "version {n}"
        );
    }
    assert_eq!(
        version(head.to_string()).await.json()["template"],
        template_of(&t, &id).await.0
    );
    version((head + 1).to_string()).await.assert_error(
        400,
        4000,
        &format!("versions are 1 to {head}"),
    );
    version("0".into())
        .await
        .assert_error(400, 4000, "n: must be a version");
    version("x".into())
        .await
        .assert_error(400, 4000, "n: must be a version");
}

async fn a_change_too_large_for_a_message_goes_over_rest(store: TestStore) {
    let t = TestApp::new(store.clone()).await;
    let id = t.create_session().await;
    let ann_user = user(1);
    let _ann = t.connect(&id, &ann_user).await;
    let mut bob = t.connect(&id, &user(2)).await;
    bob.received();
    let token = t.join_token(&id, &ann_user).await;
    let big = "z".repeat(200 * 1024);
    let change = edit(
        "big-1",
        1,
        json!([{"op": "add", "path": "/page/big", "value": big}]),
    );
    let post = |credential: String, body: String| {
        let t = &t;
        let id = id.clone();
        async move {
            call(
                &t.app,
                coedit::handlers::post_change::handle,
                Event::post_change(Some(&credential), &id, body),
            )
            .await
        }
    };
    let res = post(token.clone(), change.to_string()).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        res.json(),
        json!({"type": "ack", "changeId": "big-1", "version": 2})
    );
    // Bob is told to fetch it rather than sent a message API Gateway would refuse.
    assert_eq!(
        bob.received(),
        vec![json!({"type": "resync", "version": 2})]
    );
    assert_eq!(template_of(&t, &id).await.0["page"]["big"], big);
    // Sent again: the same answer, applied once.
    assert_eq!(
        post(token.clone(), change.to_string()).await.json()["version"],
        2
    );
    assert_eq!(log_of(&t, &id).await.len(), 2);
    // Small changes reach the others as changes.
    let small = edit(
        "small-1",
        2,
        json!([{"op": "add", "path": "/page/s", "value": 1}]),
    );
    assert_eq!(
        post(token.clone(), small.to_string()).await.json()["version"],
        3
    );
    let got = bob.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["historyEntry"]["changeId"], "small-1");
    assert_eq!(got[0]["historyEntry"]["userId"], "user-1");

    post(t.api_key.clone(), small.to_string())
        .await
        .assert_error(403, 4030, "join token");
    post(token.clone(), "{".into())
        .await
        .assert_error(400, 4000, "EOF");
    post(
        token.clone(),
        edit("x", 3, json!([{"op": "remove", "path": "/page"}])).to_string(),
    )
    .await
    .assert_error(400, 4001, "page must stay an object");
    let too_big = edit(
        "huge",
        3,
        json!([{"op": "add", "path": "/page/h", "value": "h".repeat(400 * 1024)}]),
    );
    post(token.clone(), too_big.to_string())
        .await
        .assert_error(413, 4013, "bytes");
    let other_session = t.create_session().await;
    let foreign = t.join_token(&other_session, &ann_user).await;
    post(foreign, small.to_string())
        .await
        .assert_error(403, 4030, "");
    assert_eq!(log_of(&t, &id).await.len(), 3);
}

/// What a change costs on DynamoDB, as it reports it, on a warm instance: one
/// Query (missed changes, members, locks) and one conditional write, the same for
/// a 3 KB and a 1.5 MB template.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_a_change_costs_the_same_for_small_and_large_templates() {
    let store = TestStore::dynamo().await;
    let TestStore::Dynamo(dynamo) = &store else {
        unreachable!()
    };
    let meter = dynamo.meter().clone();
    let t = TestApp::new(store.clone()).await;
    let mut small = fixture("hackathon-playground-template.json");
    small["comments"] = json!({"c1": {"content": "n".repeat(1400)}});
    let large = coedit_tests::large_template(1_500_000);
    let mut costs = Vec::new();
    for template in [small, large] {
        let id = t.create_session_from(&template).await;
        let (initial, _) = template_of(&t, &id).await;
        let size = initial.to_string().len();
        let (path, _) = module_paths(&initial)[0].clone();
        let ann = t.connect(&id, &user(1)).await;
        let _bob = t.connect(&id, &user(2)).await;
        let text = |k: u64| {
            format!(
                "<p style=\"margin:0\">Change {k}: {}</p>",
                "lorem ipsum ".repeat(25)
            )
        };
        // The first change loads the template (a cold instance); then it is warm.
        let first = edit(
            "warm-up",
            1,
            json!([{"op": "add", "path": format!("{path}/coeditText"), "value": text(0)}]),
        );
        assert_eq!(t.send(&ann, &first).await["type"], "ack");
        let before = meter.totals();
        let n = 20u64;
        for k in 1..=n {
            let change = edit(
                &format!("c{k}"),
                k + 1,
                json!([{"op": "replace", "path": format!("{path}/coeditText"), "value": text(k)}]),
            );
            assert_eq!(t.send(&ann, &change).await["type"], "ack");
        }
        let used = meter.totals() - before;
        let per = |x: f64| x / n as f64;
        println!(
            "template {size} bytes: per change {:.2} WRU, {:.2} RRU, {:.2} writes, {:.2} reads",
            per(used.write_units),
            per(used.read_units),
            per(used.write_requests as f64),
            per(used.read_requests as f64)
        );
        assert_eq!(used.write_requests, n, "{used:?}");
        assert_eq!(used.read_requests, n, "{used:?}");
        assert!(per(used.write_units) <= 2.0, "{used:?}");
        assert!(per(used.read_units) <= 1.0, "{used:?}");
        costs.push(used);

        // Compaction rewrites the snapshot once every COMPACT_EVERY changes; spread
        // over them it must stay below one write unit per change.
        let state = t
            .app
            .store
            .read_session(&sid(&id), t.clock.now())
            .await
            .unwrap()
            .unwrap();
        let (version, current) = state.current().unwrap();
        let before = meter.totals();
        assert_eq!(
            t.app
                .store
                .write_snapshot(&sid(&id), version, &current)
                .await
                .unwrap(),
            coedit::store::SnapshotOutcome::Stored
        );
        let compaction = meter.totals() - before;
        let every = coedit::session::change::COMPACT_EVERY as f64;
        println!(
            "template {size} bytes: compaction {:.0} WRU, {:.2} WRU per change amortised",
            compaction.write_units,
            compaction.write_units / every
        );
        assert!(compaction.write_units / every < 1.0, "{compaction:?}");
    }
    assert_eq!(costs[0], costs[1], "the same for 3 KB and 1.5 MB");
}

async fn a_connection_not_present_changes_nothing_and_is_closed(store: TestStore) {
    let t = TestApp::new(store.clone()).await;
    let id = t.create_session().await;
    let mut ann = t.connect(&id, &user(1)).await;
    let bob = t.connect(&id, &user(2)).await;
    let change = edit(
        "c1",
        1,
        json!([{"op": "add", "path": "/page/x", "value": 1}]),
    );
    // A connection id that never joined: nothing to answer, nothing stored.
    assert_eq!(
        send_to(&t.app, "c3RyYW5nZXI=", &change.to_string()).await,
        Value::Null
    );
    // Ann stopped pinging 50 s ago: she is told (5300) and closed, not heard.
    t.clock.advance(std::time::Duration::from_secs(40));
    assert_eq!(
        coedit_tests::ws::body_json(&t.ping(&bob).await)["type"],
        "pong"
    );
    t.clock.advance(std::time::Duration::from_secs(10));
    assert_eq!(t.send(&ann, &change).await, Value::Null);
    let told: Vec<Value> = ann
        .received()
        .into_iter()
        .filter(|m| m["type"] == "error")
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["code"], 5300);
    assert!(ann.was_closed());
    assert_eq!(log_of(&t, &id).await.len(), 1);
    let (template, _) = template_of(&t, &id).await;
    let lock = json!({"action": "lock", "target": template["page"]["rows"][0]["uuid"]});
    assert_eq!(t.send(&ann, &lock).await, Value::Null);
    assert_eq!(t.send(&bob, &lock).await["granted"], true);
}

async fn a_gone_connection_is_dropped_when_a_change_finds_it(store: TestStore) {
    let t = TestApp::new(store.clone()).await;
    let id = t.create_session().await;
    let ann = t.connect(&id, &user(1)).await;
    let mut bob = t.connect(&id, &user(2)).await;
    let cid = t.connect(&id, &user(3)).await;
    bob.received();
    // Cid's socket is gone without a `$disconnect`: API Gateway answers 410.
    t.hub.forget(&cid.id);
    // In its first seconds a connection answers 410 while its `$connect` is still
    // running (a join racing this change): it is not dropped for that.
    let early = edit(
        "c0",
        1,
        json!([{"op": "add", "path": "/page/y", "value": 0}]),
    );
    assert_eq!(t.send(&ann, &early).await["type"], "ack");
    let got = bob.received();
    assert_eq!(got.len(), 1, "{got:?}");
    t.clock.advance(coedit::session::presence::CONNECTING_GRACE);
    let change = edit(
        "c1",
        2,
        json!([{"op": "add", "path": "/page/x", "value": 1}]),
    );
    assert_eq!(t.send(&ann, &change).await["type"], "ack");
    let got = bob.received();
    assert_eq!(got[0]["type"], "change");
    assert_eq!(got[1]["change"]["type"], "USER_LEFT", "{got:?}");
    assert_eq!(got[1]["change"]["value"]["userId"], "user-3");
    let members = t
        .app
        .store
        .read_members(&sid(&id), t.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert!(members.connection(&cid.id).is_none());
    assert_eq!(members.session.seats, 2);
}

/// Ann and Bob type in their own blocks. Ann's ack arrives before Bob's lower
/// version reaches her, so her base (kept as the browser client keeps it) stays
/// below her own change; her next keystrokes, in the same block, must not be
/// refused. The same over REST for the user's own changes.
async fn own_changes_acknowledged_before_lower_versions_never_conflict(store: TestStore) {
    use coedit_tests::versions::VersionBook;
    let t = TestApp::new(store).await;
    let id = t
        .create_session_from(&fixture("playground-template.json"))
        .await;
    let (template, _) = template_of(&t, &id).await;
    let modules = module_paths(&template);
    let mut ann = t.connect(&id, &user(1)).await;
    let mut bob = t.connect(&id, &user(2)).await;
    let text = |m: usize, value: &str| json!([{"op": "add", "path": format!("{}/typed", modules[m].0), "value": value}]);
    let mut books = [VersionBook::new(1), VersionBook::new(1)];
    let edit = |book: &mut VersionBook, change_id: &str, patch: Value| {
        book.sent(change_id);
        json!({"action": "edit", "changeId": change_id, "baseVersion": book.version(), "patch": patch})
    };

    for round in 0..5 {
        // Bob's keystroke first; it reaches Ann only after her own ack.
        let b = edit(
            &mut books[1],
            &format!("b{round}"),
            text(1, &format!("b{round}")),
        );
        let acked = t.send(&bob, &b).await;
        assert_eq!(acked["type"], "ack", "{acked}");
        books[1].acked(acked["version"].as_u64().unwrap());
        for k in 0..3 {
            let a = edit(
                &mut books[0],
                &format!("a{round}-{k}"),
                text(0, &format!("a{round}-{k}")),
            );
            let acked = t.send(&ann, &a).await;
            assert_eq!(
                acked["type"], "ack",
                "round {round}, keystroke {k} on base {}: {acked}",
                a["baseVersion"]
            );
            books[0].acked(acked["version"].as_u64().unwrap());
        }
        // Now Bob's change and Ann's arrive, in any order.
        for (client, book) in [(&mut ann, 0), (&mut bob, 1)] {
            for m in client.received().into_iter().rev() {
                if m["type"] == "change" {
                    books[book].received(&m["historyEntry"]);
                }
            }
        }
        assert!(!books[0].has_gap() && !books[1].has_gap());
    }

    // Over REST: Ann's own changes (any channel) are hers; Bob's is missed and merged.
    let b = edit(&mut books[1], "b-last", text(1, "b-last"));
    assert_eq!(t.send(&bob, &b).await["type"], "ack");
    let token = t.join_token(&id, &user(1)).await;
    let body = json!({"changeId": "a-rest", "baseVersion": books[0].version() - 1, "patch": text(0, "a-rest")});
    let res = call(
        &t.app,
        coedit::handlers::post_change::handle,
        Event::post_change(Some(&token), &id, serde_json::to_vec(&body).unwrap()),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);

    let (server, version) = template_of(&t, &id).await;
    assert_eq!(version, 5 * 4 + 1 + 2);
    let at = |m: usize| &server.pointer(&modules[m].0).unwrap()["typed"];
    assert_eq!(at(0), "a-rest");
    assert_eq!(at(1), "b-last");
}

/// One user edits a row or a block at a time: a lock keeps other users off its
/// element and what it overlaps (a row's modules, a module's row), never the
/// holder's other tab; only rows and modules of the template are lockable; a
/// connection holds at most 5; every lock goes with its holder.
async fn one_lock_rule_for_locks_and_edits(store: TestStore) {
    let t = TestApp::new(store).await;
    let id = t
        .create_session_from(&fixture("playground-template.json"))
        .await;
    let (template, _) = template_of(&t, &id).await;
    let rows = template["page"]["rows"].as_array().unwrap();
    let row_uuid = |r: usize| rows[r]["uuid"].as_str().unwrap().to_owned();
    let modules = module_paths(&template);
    let in_row = |r: usize| {
        modules
            .iter()
            .filter(|(path, _)| path.starts_with(&format!("/page/rows/{r}/")))
            .cloned()
            .collect::<Vec<_>>()
    };
    let (row0, row0_modules) = (row_uuid(0), in_row(0));
    let ann = t.connect(&id, &user(1)).await;
    let ann_tab = t.connect(&id, &user(1)).await;
    let bob = t.connect(&id, &user(2)).await;
    let lock = |target: &str| json!({"action": "lock", "target": target});

    // Not an element of the template: refused, saying so.
    for target in [
        "nothing-here",
        template["page"]["rows"][0]["columns"][0]["uuid"]
            .as_str()
            .unwrap(),
    ] {
        let refused = t.send(&ann, &lock(target)).await;
        assert_eq!(refused["code"], 4000, "{refused}");
        assert!(
            refused["detail"]
                .as_str()
                .unwrap()
                .contains("no row or module"),
            "{refused}"
        );
    }
    // Ann holds row 0: Bob can take neither a module inside it nor change one.
    assert_eq!(t.send(&ann, &lock(&row0)).await["granted"], true);
    let (module_path, module_uuid) = row0_modules[0].clone();
    let answer = t.send(&bob, &lock(&module_uuid)).await;
    assert_eq!(
        (
            answer["granted"].clone(),
            answer["heldBy"]["userId"].clone()
        ),
        (json!(false), json!(user(1).user_id)),
        "{answer}"
    );
    let change = |who: &str, base: u64| {
        edit(
            who,
            base,
            json!([{"op": "add", "path": format!("{module_path}/n"), "value": who}]),
        )
    };
    assert_eq!(t.send(&bob, &change("b1", 1)).await["code"], 4023);
    // Ann's other tab is Ann: it edits inside her row and may take the row over.
    assert_eq!(t.send(&ann_tab, &change("t1", 1)).await["type"], "ack");
    assert_eq!(t.send(&ann_tab, &lock(&row0)).await["granted"], true);
    // Bob holds a module of row 1: Ann cannot take row 1.
    let (_, row1_module) = in_row(1)[0].clone();
    assert_eq!(t.send(&bob, &lock(&row1_module)).await["granted"], true);
    let answer = t.send(&ann, &lock(&row_uuid(1))).await;
    assert_eq!(
        (
            answer["granted"].clone(),
            answer["heldBy"]["userId"].clone()
        ),
        (json!(false), json!(user(2).user_id)),
        "{answer}"
    );

    // At most five locks per connection.
    let mut held = 1;
    for r in 2..rows.len() {
        let answer = t.send(&bob, &lock(&row_uuid(r))).await;
        if held < 5 {
            assert_eq!(answer["granted"], true, "{answer}");
            held += 1;
        } else {
            assert_eq!(answer["code"], 4029, "{answer}");
            break;
        }
    }
    assert_eq!(held, 5);
    // All five go when Bob leaves.
    t.disconnect(&bob).await;
    let members = t
        .app
        .store
        .read_members(&sid(&id), t.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert!(
        members
            .locks
            .iter()
            .all(|l| l.user.user_id != user(2).user_id),
        "{:?}",
        members.locks
    );
    assert_eq!(t.send(&ann, &lock(&row_uuid(1))).await["granted"], true);
}
