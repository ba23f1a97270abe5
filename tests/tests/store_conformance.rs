//! One behaviour, two stores: every test here runs against the embedded store and
//! against Amazon's DynamoDB Local, with the table from infra/template.yaml.

mod common;

use std::sync::Arc;
use std::time::Duration;

use coedit::auth::{ApiKeyRecord, KeyHash, Plan};
use coedit::clock::Timestamp;
use coedit::session::{
    EMPTY_SESSION_LIFETIME, NewSession, SessionId, Template, TenantId, Version, new_session,
};
use coedit::store::SessionStore;
use common::*;
use serde_json::Value;

both_stores!(
    created_session_reads_back_whole,
    creation_is_history_entry_one,
    unknown_session_is_absent,
    session_nobody_joins_is_gone_after_a_minute,
    an_existing_id_is_never_overwritten,
    every_fixture_round_trips_byte_identical,
    large_templates_round_trip_through_several_parts,
    api_keys_are_stored_found_and_revoked,
    fifty_parallel_creates_get_distinct_ids,
    reads_during_writes_never_see_half_a_session,
    the_log_takes_each_version_once_and_reads_back_in_order,
    snapshots_move_forward_and_reads_see_snapshot_plus_log,
);

fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn now() -> Timestamp {
    Timestamp(1_795_428_000_000)
}

async fn is_absent(store: &Arc<dyn SessionStore>, id: &SessionId, at: Timestamp) -> bool {
    store.read_session(id, at).await.unwrap().is_none()
}

fn new_from(value: Value) -> NewSession {
    new_session(
        tenant(),
        "u1",
        Template::prepare(value, "/template").unwrap(),
        now(),
    )
}

async fn created_session_reads_back_whole(store: TestStore) {
    let store = store.store();
    let new = new_from(fixture("playground-template.json"));
    store.create_session(&new).await.unwrap();

    let state = store
        .read_session(&new.session.id, now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.session, new.session);
    assert_eq!(state.current().unwrap().0, Version(1));
    assert_eq!(state.snapshot.as_str(), new.template.as_str());
    assert!(state.connections.is_empty());
    assert!(state.users_by_id().is_empty());
}

async fn creation_is_history_entry_one(store: TestStore) {
    let store = store.store();
    let new = new_from(fixture("hackathon-playground-template.json"));
    store.create_session(&new).await.unwrap();
    let history = store
        .history(&new.session.id, Version(0), 100)
        .await
        .unwrap();
    assert_eq!(history, vec![new.first_entry.clone()]);
    assert!(
        store
            .history(&new.session.id, Version(0), 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .history(&new.session.id, Version(1), 100)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn unknown_session_is_absent(store: TestStore) {
    let store = store.store();
    assert!(is_absent(&store, &SessionId::generate(), now()).await);
    assert!(
        store
            .history(&SessionId::generate(), Version(0), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn session_nobody_joins_is_gone_after_a_minute(store: TestStore) {
    let store = store.store();
    let new = new_from(fixture("hackathon-playground-template.json"));
    store.create_session(&new).await.unwrap();
    let id = &new.session.id;
    let last_moment = now()
        .plus(EMPTY_SESSION_LIFETIME)
        .minus(Duration::from_millis(1));
    assert!(store.read_session(id, last_moment).await.unwrap().is_some());
    // Gone at 60 s, although nothing has deleted its items yet.
    assert!(is_absent(&store, id, now().plus(EMPTY_SESSION_LIFETIME)).await);
    assert!(is_absent(&store, id, now().plus(Duration::from_secs(3600))).await);
}

async fn an_existing_id_is_never_overwritten(store: TestStore) {
    let store = store.store();
    let first = new_from(fixture("hackathon-playground-template.json"));
    store.create_session(&first).await.unwrap();
    let mut second = new_from(fixture("playground-template.json"));
    second.session.id = first.session.id.clone();
    second.session.tenant = TenantId::parse("other").unwrap();
    assert!(store.create_session(&second).await.is_err());
    let state = store
        .read_session(&first.session.id, now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.session.tenant, tenant());
    assert_eq!(state.snapshot, first.template);
}

async fn every_fixture_round_trips_byte_identical(store: TestStore) {
    let store = store.store();
    for (name, template) in fixture_templates() {
        let new = new_from(template.clone());
        store.create_session(&new).await.unwrap();
        let state = store
            .read_session(&new.session.id, now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(state.snapshot.as_str(), new.template.as_str(), "{name}");
        // Fixtures all carry their uuids, so the stored form is exactly the input's.
        if name != "hackathon-playground-template.json" {
            assert_eq!(state.snapshot.as_str(), canonical(&template), "{name}");
        }
    }
}

async fn large_templates_round_trip_through_several_parts(store: TestStore) {
    let store = store.store();
    for template in [
        large_template(1_500_000),
        incompressible_template(1_500_000),
    ] {
        let new = new_from(template);
        assert!(new.template.len() >= 1_500_000);
        store.create_session(&new).await.unwrap();
        let state = store
            .read_session(&new.session.id, now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(state.snapshot.as_str(), new.template.as_str());
    }
}

async fn api_keys_are_stored_found_and_revoked(store: TestStore) {
    let store = store.store();
    let record = ApiKeyRecord {
        hash: KeyHash::of("ck_test"),
        tenant: tenant(),
        plan: Plan::Small,
        max_editors: Some(3),
        created_at: now(),
    };
    assert_eq!(store.find_api_key(&record.hash).await.unwrap(), None);
    store.put_api_key(&record).await.unwrap();
    assert_eq!(
        store.find_api_key(&record.hash).await.unwrap(),
        Some(record.clone())
    );
    // A key is never silently replaced.
    let other = ApiKeyRecord {
        tenant: TenantId::parse("evil").unwrap(),
        ..record.clone()
    };
    assert!(store.put_api_key(&other).await.is_err());
    assert_eq!(
        store.find_api_key(&record.hash).await.unwrap(),
        Some(record.clone())
    );
    assert!(store.revoke_api_key(&record.hash).await.unwrap());
    assert!(!store.revoke_api_key(&record.hash).await.unwrap());
    assert_eq!(store.find_api_key(&record.hash).await.unwrap(), None);
}

async fn fifty_parallel_creates_get_distinct_ids(store: TestStore) {
    let store = store.store();
    let template = fixture("playground-template.json");
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            let new = new_from(template.clone());
            tokio::spawn(async move { store.create_session(&new).await.map(|_| new.session.id) })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().unwrap());
    }
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), 50);
    for id in &ids {
        assert!(store.read_session(id, now()).await.unwrap().is_some());
    }
}

/// Readers poll a session while it is being written (several snapshot parts):
/// each read sees nothing or all of it, never a part.
async fn reads_during_writes_never_see_half_a_session(store: TestStore) {
    let store: Arc<dyn SessionStore> = store.store();
    for _ in 0..3 {
        let new = Arc::new(new_from(incompressible_template(1_200_000)));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (store, new, done) = (store.clone(), new.clone(), done.clone());
                tokio::spawn(async move {
                    let mut complete_reads = 0;
                    loop {
                        let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                        match store.read_session(&new.session.id, now()).await.unwrap() {
                            None => assert!(!finished, "absent after creation finished"),
                            Some(state) => {
                                assert_eq!(state.snapshot.as_str(), new.template.as_str());
                                complete_reads += 1;
                            }
                        }
                        if finished {
                            return complete_reads;
                        }
                    }
                })
            })
            .collect();
        store.create_session(&new).await.unwrap();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        for r in readers {
            assert!(r.await.unwrap() >= 1);
        }
    }
}

fn entry(version: u64, change_id: &str, diff: Value) -> coedit::session::HistoryEntry {
    coedit::session::HistoryEntry {
        version: Version(version),
        timestamp: now().to_rfc3339(),
        change_id: change_id.into(),
        label: "l".into(),
        kind: "t".into(),
        user_id: "u1".into(),
        diff: diff.as_array().cloned().unwrap_or_default(),
    }
}

async fn the_log_takes_each_version_once_and_reads_back_in_order(store: TestStore) {
    let store = store.store();
    let new = new_from(serde_json::json!({"page": {"n": 0}}));
    let id = &new.session.id;
    store.create_session(&new).await.unwrap();
    assert_eq!(store.head_version(id).await.unwrap(), Some(Version(1)));

    // Ten writers race for each of versions 2..=6: exactly one wins each.
    for v in 2..=6u64 {
        let racers = (0..10).map(|w| {
            let store = store.clone();
            let id = id.clone();
            async move {
                let e = entry(
                    v,
                    &format!("c{v}-{w}"),
                    serde_json::json!([{"op": "replace", "path": "/page/n", "value": v}]),
                );
                store.append_change(&id, &e).await.unwrap()
            }
        });
        let won = futures_util::future::join_all(racers).await;
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "version {v}");
    }
    assert_eq!(store.head_version(id).await.unwrap(), Some(Version(6)));

    let since = store
        .read_since(id, Version(3), now())
        .await
        .unwrap()
        .unwrap();
    let versions: Vec<u64> = since.entries.iter().map(|e| e.version.0).collect();
    assert_eq!(versions, [4, 5, 6]);
    assert_eq!(since.members.session.id, *id);
    assert!(
        store
            .read_since(id, Version(6), now())
            .await
            .unwrap()
            .unwrap()
            .entries
            .is_empty()
    );

    let newest: Vec<u64> = store
        .history_before(id, None, 4)
        .await
        .unwrap()
        .iter()
        .map(|e| e.version.0)
        .collect();
    assert_eq!(newest, [6, 5, 4, 3]);
    let older: Vec<u64> = store
        .history_before(id, Some(Version(3)), 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.version.0)
        .collect();
    assert_eq!(older, [2, 1]);
    assert!(
        store
            .history_before(id, Some(Version(1)), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // An expired session is not read.
    let later = now().plus(EMPTY_SESSION_LIFETIME);
    assert!(
        store
            .read_since(id, Version(1), later)
            .await
            .unwrap()
            .is_none()
    );
}

async fn snapshots_move_forward_and_reads_see_snapshot_plus_log(store: TestStore) {
    let store = store.store();
    let new = new_from(fixture("playground-template.json"));
    let id = &new.session.id;
    store.create_session(&new).await.unwrap();
    let mut head = coedit::session::change::Head::new(&new.template, Version(1)).unwrap();
    let mut entries = Vec::new();
    for v in 2..=5u64 {
        let e = entry(
            v,
            &format!("c{v}"),
            serde_json::json!([{"op": "add", "path": "/page/counter", "value": v}]),
        );
        assert!(store.append_change(id, &e).await.unwrap());
        entries.push(e);
    }
    head.catch_up(&entries[..2]).unwrap();
    let at3 = head.template().unwrap();
    head.catch_up(&entries).unwrap();
    let at5 = head.template().unwrap();

    let state = store.read_session(id, now()).await.unwrap().unwrap();
    assert_eq!(state.tail.len(), 4);
    assert_eq!(state.current().unwrap(), (Version(5), at5.clone()));

    assert!(store.write_snapshot(id, Version(3), &at3).await.unwrap());
    let state = store.read_session(id, now()).await.unwrap().unwrap();
    assert_eq!(state.session.snapshot_version, Version(3));
    assert_eq!(
        state.tail.iter().map(|e| e.version.0).collect::<Vec<_>>(),
        [4, 5]
    );
    assert_eq!(state.current().unwrap(), (Version(5), at5.clone()));

    // Never backwards.
    assert!(
        !store
            .write_snapshot(id, Version(2), &new.template)
            .await
            .unwrap()
    );
    assert!(!store.write_snapshot(id, Version(3), &at3).await.unwrap());
    assert!(store.write_snapshot(id, Version(5), &at5).await.unwrap());
    let state = store.read_session(id, now()).await.unwrap().unwrap();
    assert!(state.tail.is_empty());
    assert_eq!(state.current().unwrap(), (Version(5), at5));

    // The whole log stays readable after compaction.
    assert_eq!(store.history(id, Version(0), 100).await.unwrap().len(), 5);
}
