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
    assert_eq!(state.session.version, Version(1));
    assert_eq!(state.template.as_str(), new.template.as_str());
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
    assert_eq!(state.template, first.template);
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
        assert_eq!(state.template.as_str(), new.template.as_str(), "{name}");
        // Fixtures all carry their uuids, so the stored form is exactly the input's.
        if name != "hackathon-playground-template.json" {
            assert_eq!(state.template.as_str(), canonical(&template), "{name}");
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
        assert_eq!(state.template.as_str(), new.template.as_str());
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
                                assert_eq!(state.template.as_str(), new.template.as_str());
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
