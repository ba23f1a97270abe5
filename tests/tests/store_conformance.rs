//! One behaviour, every store: each test here runs against the embedded store,
//! against Amazon's DynamoDB Local (with the table from infra/template.yaml), and
//! against the local stack's fault-injecting wrapper with its faults off.

use std::sync::Arc;
use std::time::Duration;

use coedit::api_key::{ApiKeyRecord, KeyHash, Plan};
use coedit::clock::{Clock, Timestamp};
use coedit::session::presence::{Departure, PRESENCE_CHECK_INTERVAL};
use coedit::session::{Connection, HEARTBEAT_TIMEOUT, Lock, User};
use coedit::session::{
    EMPTY_SESSION_LIFETIME, Ended, NewSession, Opening, SessionId, Template, TemplateKey, TenantId,
    Version, new_session,
};
use coedit::store::{
    AppendOutcome, CreateOutcome, EraseOutcome, JoinOutcome, LeaveOutcome, LockOutcome,
    ReleaseOutcome, RevokeOutcome, Seat, SessionStore, SnapshotOutcome, SweepTask, TouchOutcome,
};
use coedit_tests::*;
use serde_json::Value;

every_store!(
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
    seats_never_exceed_the_limit_however_many_race,
    a_seat_is_refused_as_not_found_for_other_tenants_and_expired_sessions,
    a_ping_keeps_a_connection_and_never_revives_a_stale_one,
    leaving_gives_the_seat_back_with_the_locks_and_the_last_starts_the_countdown,
    a_stale_departure_loses_to_a_ping_in_time,
    a_lock_has_one_holder_however_many_race,
    a_lock_is_free_once_its_holder_is_not_present,
    the_sweep_finds_due_sessions_and_erases_whole,
    a_template_key_names_one_session_per_tenant,
    a_session_that_starts_later_numbers_on,
    an_ended_session_is_kept_until_its_time,
    a_reported_version_only_moves_forward,
    a_log_read_stops_at_its_byte_budget,
    compaction_keeps_every_fifth_snapshot_to_rebuild_older_versions,
    a_long_session_is_erased_a_page_at_a_time_newest_first,
    a_session_ends_at_its_age_limit_with_people_in_it,
);

fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

/// The tests' "now": the real time at the start of the run. Not a fixed date:
/// DynamoDB Local deletes items whose TTL has passed, as DynamoDB does, so a
/// session created "in the past" would vanish while a test reads it.
fn now() -> Timestamp {
    static START: std::sync::OnceLock<Timestamp> = std::sync::OnceLock::new();
    *START.get_or_init(|| coedit::clock::SystemClock.now())
}

async fn is_absent(store: &Arc<dyn SessionStore>, id: &SessionId, at: Timestamp) -> bool {
    store.read_session(id, at).await.unwrap().is_none()
}

fn opening(value: Value) -> Opening {
    Opening {
        tenant: tenant(),
        user_id: "u1".into(),
        template: Template::prepare(value, "/template", coedit::patch::Limits::default()).unwrap(),
        version: Version::FIRST,
        template_key: None,
    }
}

fn new_from(value: Value) -> NewSession {
    new_session(opening(value), now())
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
        .history(&new.session.id, Version(0), 100, usize::MAX)
        .await
        .unwrap();
    assert_eq!(history, vec![new.first_entry.clone()]);
    assert!(
        store
            .history(&new.session.id, Version(0), 0, usize::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .history(&new.session.id, Version(1), 100, usize::MAX)
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
            .history(&SessionId::generate(), Version(0), 10, usize::MAX)
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
        // Fixtures all carry their uuids, so the stored form is exactly the input's
        // (with `comments`, which every template has).
        if name != "hackathon-playground-template.json" {
            let mut expected = template.clone();
            if let Some(root) = expected.as_object_mut() {
                root.entry("comments")
                    .or_insert_with(|| serde_json::json!({}));
            }
            assert_eq!(state.snapshot.as_str(), canonical(&expected), "{name}");
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
    assert_eq!(
        store.revoke_api_key(&record.hash).await.unwrap(),
        RevokeOutcome::Revoked
    );
    assert_eq!(
        store.revoke_api_key(&record.hash).await.unwrap(),
        RevokeOutcome::NotFound
    );
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
        connection: Some(format!("conn-{change_id}")),
    }
}

/// A read of the log stops after the entry that passes its byte budget, whichever
/// store: a sync or a rebase never reads more than it can use (beyond one page).
async fn a_log_read_stops_at_its_byte_budget(store: TestStore) {
    let store = store.store();
    let new = new_from(serde_json::json!({"page": {"n": 0}}));
    let id = &new.session.id;
    store.create_session(&new).await.unwrap();
    let mut sizes = Vec::new();
    for v in 2..=11u64 {
        let e = entry(
            v,
            &format!("c{v}"),
            serde_json::json!([{"op": "replace", "path": "/page/n", "value": "x".repeat(10_000)}]),
        );
        sizes.push(coedit::patch::json_bytes(&e));
        assert_eq!(
            store.append_change(id, &e).await.unwrap(),
            AppendOutcome::Appended
        );
    }
    let versions = |entries: Vec<coedit::session::HistoryEntry>| -> Vec<u64> {
        entries.iter().map(|e| e.version.0).collect()
    };
    let all = store
        .history(id, Version(1), 100, usize::MAX)
        .await
        .unwrap();
    assert_eq!(versions(all), (2..=11).collect::<Vec<_>>());
    // Three entries pass 2.5 of them: the third is the last read.
    let budget = sizes[0] * 5 / 2;
    let cut = store.history(id, Version(1), 100, budget).await.unwrap();
    assert_eq!(versions(cut), vec![2, 3, 4]);
    let cut = store.history(id, Version(5), 100, 0).await.unwrap();
    assert_eq!(versions(cut), vec![6]);
    let cut = store.history(id, Version(5), 2, usize::MAX).await.unwrap();
    assert_eq!(versions(cut), vec![6, 7]);
}

/// Versions older than the snapshot are rebuilt from the nearest kept template:
/// the first, every fifth compaction's, or the current one.
async fn compaction_keeps_every_fifth_snapshot_to_rebuild_older_versions(store: TestStore) {
    let store = store.store();
    let at = |v: u64| Template::from_canonical_json(format!(r#"{{"page":{{"n":{v}}}}}"#).into());
    let new = new_from(serde_json::json!({"page": {"n": 1}}));
    let id = &new.session.id;
    store.create_session(&new).await.unwrap();
    // Snapshots numbered 1 to 12 at versions 2 to 13; 5 and 10 (versions 6, 11) stay.
    for v in 2..=13u64 {
        assert_eq!(
            store.write_snapshot(id, Version(v), &at(v)).await.unwrap(),
            SnapshotOutcome::Stored
        );
    }
    for (wanted, nearest) in [
        (1, 1),
        (5, 1),
        (6, 6),
        (7, 6),
        (10, 6),
        (11, 11),
        (12, 11),
        (13, 13),
        (500, 13),
    ] {
        let (version, template) = store
            .kept_template(&new.session, Version(wanted))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(version, Version(nearest), "at {wanted}");
        let expected = if nearest == 1 {
            new.template.clone()
        } else {
            at(nearest)
        };
        assert_eq!(template, expected, "at {wanted}");
    }
}

/// Records that the host was told the expired session ended at `at`.
async fn tell_ended(store: &Arc<dyn SessionStore>, id: &SessionId, at: Timestamp) {
    let state = store.read_expired(id, at).await.unwrap().unwrap();
    store
        .mark_ended(&state.session, Ended { at, kept_until: at })
        .await
        .unwrap();
}

/// A session whose log is longer than one erase call deletes is erased over
/// several calls, newest first (each call goes on from what is left), then whole,
/// with its connections' lookups. On DynamoDB every item carries the TTL that
/// would reclaim it were the sweeper never to come.
async fn a_long_session_is_erased_a_page_at_a_time_newest_first(test_store: TestStore) {
    use coedit::store::ERASE_PAGE;
    let store = test_store.store();
    let id = session(&store).await;
    let last = ERASE_PAGE as u64 + 121;
    let versions: Vec<u64> = (2..=last).collect();
    for chunk in versions.chunks(50) {
        futures_util::future::join_all(chunk.iter().map(|&v| {
            let e = entry(
                v,
                &format!("c{v}"),
                serde_json::json!([{"op": "add", "path": "/page/x", "value": v}]),
            );
            let store = store.clone();
            let id = id.clone();
            async move { store.append_change(&id, &e).await.unwrap() }
        }))
        .await;
    }
    assert_eq!(store.head_version(&id).await.unwrap(), Some(Version(last)));
    // Someone still listed when it is ended (a client gone without a word).
    store.join(&seat(&id, 1, 5, now())).await.unwrap();
    if let TestStore::Dynamo(d) = &test_store {
        let items = session_items(d, &id).await;
        let floor = now().plus(coedit::session::RECLAIM_AFTER).millis() / 1000 - 3600;
        assert!(!items.is_empty());
        for item in &items {
            let ttl: i64 = item["ttl"].as_n().unwrap().parse().unwrap();
            assert!(ttl >= floor, "{:?} has ttl {ttl}", item["sk"]);
        }
    }
    let at = now().plus(coedit::session::MAX_SESSION_AGE);
    tell_ended(&store, &id, at).await;
    assert_eq!(
        store.erase_session(&id, at).await.unwrap(),
        EraseOutcome::MoreLeft
    );
    // Newest first: the head went down by a page.
    assert_eq!(
        store.head_version(&id).await.unwrap(),
        Some(Version(last - ERASE_PAGE as u64))
    );
    assert_eq!(
        store.erase_session(&id, at).await.unwrap(),
        EraseOutcome::Erased
    );
    assert_eq!(items_left(&test_store, id.as_str()).await, 0);
    assert_eq!(store.find_connection(&conn(&id, 1)).await.unwrap(), None);
    assert_eq!(
        store.erase_session(&id, at).await.unwrap(),
        EraseOutcome::NotDue
    );
}

/// Past `MAX_SESSION_AGE` a session is over even with people in it: not live,
/// refusing seats, and its end can be told and it erased.
async fn a_session_ends_at_its_age_limit_with_people_in_it(store: TestStore) {
    use coedit::session::MAX_SESSION_AGE;
    let store = store.store();
    let id = session(&store).await;
    assert_eq!(
        store.join(&seat(&id, 1, 5, now())).await.unwrap(),
        JoinOutcome::Joined
    );
    let before = now().plus(MAX_SESSION_AGE).millis() - 1000;
    assert!(
        store
            .read_members(&id, Timestamp(before))
            .await
            .unwrap()
            .is_some()
    );
    let at = now().plus(MAX_SESSION_AGE).plus(Duration::from_secs(1));
    assert!(store.read_members(&id, at).await.unwrap().is_none());
    assert_eq!(
        store.join(&seat(&id, 2, 5, at)).await.unwrap(),
        JoinOutcome::NotFound
    );
    tell_ended(&store, &id, at).await;
    assert_eq!(
        store.erase_session(&id, at).await.unwrap(),
        EraseOutcome::Erased
    );
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
        let appended = won
            .iter()
            .filter(|w| **w == AppendOutcome::Appended)
            .count();
        assert_eq!(appended, 1, "version {v}");
        assert!(
            won.iter()
                .all(|w| matches!(w, AppendOutcome::Appended | AppendOutcome::VersionTaken))
        );
    }
    assert_eq!(store.head_version(id).await.unwrap(), Some(Version(6)));

    let since = store
        .read_since(id, Version(3), now())
        .await
        .unwrap()
        .unwrap();
    let versions: Vec<u64> = since.entries.iter().map(|e| e.version.0).collect();
    assert_eq!(versions, [4, 5, 6]);
    // The connection that made each change is kept beside it.
    for e in &since.entries {
        assert_eq!(e.connection, Some(format!("conn-{}", e.change_id)));
    }
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
        assert_eq!(
            store.append_change(id, &e).await.unwrap(),
            AppendOutcome::Appended
        );
        entries.push(e);
    }
    head.catch_up(&entries[..2]).unwrap();
    let at3 = head.template().unwrap();
    head.catch_up(&entries).unwrap();
    let at5 = head.template().unwrap();

    let state = store.read_session(id, now()).await.unwrap().unwrap();
    assert_eq!(state.tail.len(), 4);
    assert_eq!(state.current().unwrap(), (Version(5), at5.clone()));

    assert_eq!(
        store.write_snapshot(id, Version(3), &at3).await.unwrap(),
        SnapshotOutcome::Stored
    );
    let state = store.read_session(id, now()).await.unwrap().unwrap();
    assert_eq!(state.session.snapshot_version, Version(3));
    assert_eq!(
        state.tail.iter().map(|e| e.version.0).collect::<Vec<_>>(),
        [4, 5]
    );
    assert_eq!(state.current().unwrap(), (Version(5), at5.clone()));

    // Never backwards.
    for (version, template) in [(Version(2), &new.template), (Version(3), &at3)] {
        assert_eq!(
            store.write_snapshot(id, version, template).await.unwrap(),
            SnapshotOutcome::NewerStored
        );
    }
    assert_eq!(
        store.write_snapshot(id, Version(5), &at5).await.unwrap(),
        SnapshotOutcome::Stored
    );
    let state = store.read_session(id, now()).await.unwrap().unwrap();
    assert!(state.tail.is_empty());
    assert_eq!(state.current().unwrap(), (Version(5), at5));

    // The whole log stays readable after compaction.
    assert_eq!(
        store
            .history(id, Version(0), 100, usize::MAX)
            .await
            .unwrap()
            .len(),
        5
    );
}

/// An element that overlaps no other.
fn alone(element: &str) -> coedit::patch::Lockable {
    coedit::patch::Lockable {
        id: element.to_owned(),
        overlaps: Vec::new(),
    }
}

fn user(n: usize) -> User {
    User {
        user_id: format!("u{n}"),
        username: format!("User {n}"),
        user_color: "#112233".into(),
        role: Default::default(),
    }
}

/// Connection `n` of a session. Unique across sessions, as API Gateway's are: DynamoDB
/// keeps a transaction's idempotency token (made from the connection id) for ten
/// minutes across tables.
fn conn(id: &SessionId, n: usize) -> String {
    format!("{n}-{id}")
}

fn seat(id: &SessionId, n: usize, max_editors: u32, at: Timestamp) -> Seat {
    Seat {
        session: id.clone(),
        tenant: tenant(),
        connection: Connection {
            id: conn(id, n),
            user: user(n),
            connected_at: at,
            last_seen: at,
        },
        max_editors,
        now: at,
    }
}

/// A fresh session of the small fixture.
async fn session(store: &Arc<dyn SessionStore>) -> SessionId {
    let new = new_from(fixture("hackathon-playground-template.json"));
    store.create_session(&new).await.unwrap();
    new.session.id
}

async fn members(
    store: &Arc<dyn SessionStore>,
    id: &SessionId,
    at: Timestamp,
) -> coedit::session::SessionMembers {
    store
        .read_members(id, at)
        .await
        .unwrap()
        .expect("the session is there")
}

async fn seats_never_exceed_the_limit_however_many_race(store: TestStore) {
    let store = store.store();
    let id = session(&store).await;
    let racers = (0..25).map(|n| {
        let (store, seat) = (store.clone(), seat(&id, n, 20, now()));
        tokio::spawn(async move { store.join(&seat).await.unwrap() })
    });
    let mut outcomes = Vec::new();
    for r in racers {
        outcomes.push(r.await.unwrap());
    }
    let joined = outcomes
        .iter()
        .filter(|o| **o == JoinOutcome::Joined)
        .count();
    let full = outcomes.iter().filter(|o| **o == JoinOutcome::Full).count();
    assert_eq!((joined, full), (20, 5), "{outcomes:?}");
    let m = members(&store, &id, now()).await;
    assert_eq!(m.session.seats, 20);
    assert_eq!(m.connections.len(), 20);
    // A joined session no longer expires; every connection finds its session.
    assert_eq!(m.session.expires_at, None);
    for c in &m.connections {
        assert_eq!(
            store.find_connection(&c.id).await.unwrap(),
            Some(id.clone())
        );
    }
    assert_eq!(store.find_connection("nobody").await.unwrap(), None);
}

async fn a_seat_is_refused_as_not_found_for_other_tenants_and_expired_sessions(store: TestStore) {
    let store = store.store();
    let id = session(&store).await;
    let mut foreign = seat(&id, 1, 5, now());
    foreign.tenant = TenantId::parse("globex").unwrap();
    assert_eq!(store.join(&foreign).await.unwrap(), JoinOutcome::NotFound);
    let unknown = seat(&SessionId::generate(), 1, 5, now());
    assert_eq!(store.join(&unknown).await.unwrap(), JoinOutcome::NotFound);
    let late = seat(&id, 1, 5, now().plus(EMPTY_SESSION_LIFETIME));
    assert_eq!(store.join(&late).await.unwrap(), JoinOutcome::NotFound);
    // Nothing was taken by the refusals.
    let m = members(&store, &id, now()).await;
    assert_eq!((m.session.seats, m.connections.len()), (0, 0));
    assert_eq!(
        store.join(&seat(&id, 1, 5, now())).await.unwrap(),
        JoinOutcome::Joined
    );
}

async fn a_ping_keeps_a_connection_and_never_revives_a_stale_one(store: TestStore) {
    let store = store.store();
    let id = session(&store).await;
    let s = seat(&id, 1, 5, now());
    store.join(&s).await.unwrap();
    let c = &s.connection.id;
    let later = now().plus(Duration::from_secs(40));
    assert_eq!(
        store.touch(&id, c, later).await.unwrap(),
        TouchOutcome::Alive
    );
    let m = members(&store, &id, later).await;
    assert_eq!(m.connection(c).unwrap().last_seen, later);
    // Silent for longer than the heartbeat timeout: stale, and a ping does not revive it.
    let stale = later.plus(HEARTBEAT_TIMEOUT).plus(Duration::from_millis(1));
    assert_eq!(
        store.touch(&id, c, stale).await.unwrap(),
        TouchOutcome::NotPresent
    );
    assert_eq!(
        members(&store, &id, stale)
            .await
            .connection(c)
            .unwrap()
            .last_seen,
        later
    );
    assert_eq!(
        store.touch(&id, "nobody", later).await.unwrap(),
        TouchOutcome::NotPresent
    );
}

async fn leaving_gives_the_seat_back_with_the_locks_and_the_last_starts_the_countdown(
    store: TestStore,
) {
    let store = store.store();
    let id = session(&store).await;
    let (ann, bob) = (seat(&id, 1, 5, now()), seat(&id, 2, 5, now()));
    store.join(&ann).await.unwrap();
    store.join(&bob).await.unwrap();
    let lock = Lock {
        element: "row-1".into(),
        connection_id: ann.connection.id.clone(),
        user: user(1),
        since: now(),
    };
    let m = members(&store, &id, now()).await;
    assert_eq!(
        store
            .take_lock(&m, &lock, &alone(&lock.element), now())
            .await
            .unwrap(),
        LockOutcome::Granted
    );

    let both = members(&store, &id, now()).await;
    let left = store
        .leave(&both, &ann.connection.id, Departure::Left, now())
        .await
        .unwrap();
    assert_eq!(left, LeaveOutcome::Left(ann.connection.clone()));
    let m = members(&store, &id, now()).await;
    assert_eq!(m.session.seats, 1);
    assert!(m.locks.is_empty(), "the lock left with its holder");
    assert_eq!(
        store.find_connection(&ann.connection.id).await.unwrap(),
        None
    );
    // A repeated or late departure finds nothing and changes nothing.
    let again = store
        .leave(&m, &ann.connection.id, Departure::Left, now())
        .await
        .unwrap();
    assert_eq!(again, LeaveOutcome::NotThere);
    assert_eq!(members(&store, &id, now()).await.session.seats, 1);

    // Decided on a view from before Ann left (two seats): the store reads again.
    let stale_view = both;
    let later = now().plus(Duration::from_secs(5));
    let left = store
        .leave(&stale_view, &bob.connection.id, Departure::Left, later)
        .await
        .unwrap();
    assert_eq!(left, LeaveOutcome::Left(bob.connection.clone()));
    let m = members(&store, &id, later).await;
    assert_eq!(m.session.seats, 0);
    assert_eq!(
        m.session.expires_at,
        Some(later.plus(EMPTY_SESSION_LIFETIME))
    );
    assert!(
        store
            .read_members(&id, later.plus(EMPTY_SESSION_LIFETIME))
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_stale_departure_loses_to_a_ping_in_time(store: TestStore) {
    let store = store.store();
    let id = session(&store).await;
    let s = seat(&id, 1, 5, now());
    store.join(&s).await.unwrap();
    let m = members(&store, &id, now()).await;
    // Still present: a stale drop does nothing.
    let out = store
        .leave(&m, &s.connection.id, Departure::Stale, now())
        .await
        .unwrap();
    assert_eq!(out, LeaveOutcome::NotThere);
    // Stale as read, but it pinged meanwhile: the ping wins.
    let stale_at = now().plus(HEARTBEAT_TIMEOUT).plus(Duration::from_secs(1));
    let seen_stale = members(&store, &id, stale_at).await;
    let pinged = now().plus(HEARTBEAT_TIMEOUT).minus(Duration::from_secs(1));
    assert_eq!(
        store.touch(&id, &s.connection.id, pinged).await.unwrap(),
        TouchOutcome::Alive
    );
    let out = store
        .leave(&seen_stale, &s.connection.id, Departure::Stale, stale_at)
        .await
        .unwrap();
    assert_eq!(out, LeaveOutcome::NotThere);
    assert_eq!(members(&store, &id, stale_at).await.session.seats, 1);
    // Really stale: dropped.
    let much_later = pinged.plus(HEARTBEAT_TIMEOUT).plus(Duration::from_secs(1));
    let m = members(&store, &id, much_later).await;
    let out = store
        .leave(&m, &s.connection.id, Departure::Stale, much_later)
        .await
        .unwrap();
    assert!(matches!(out, LeaveOutcome::Left(_)));
}

async fn a_lock_has_one_holder_however_many_race(store: TestStore) {
    let store = store.store();
    let id = session(&store).await;
    for n in 0..10 {
        store.join(&seat(&id, n, 20, now())).await.unwrap();
    }
    let m = Arc::new(members(&store, &id, now()).await);
    let racers = (0..10).map(|n| {
        let (store, m) = (store.clone(), m.clone());
        let lock = Lock {
            element: "module-1".into(),
            connection_id: conn(&id, n),
            user: user(n),
            since: now(),
        };
        tokio::spawn(async move {
            (
                n,
                store
                    .take_lock(&m, &lock, &alone(&lock.element), now())
                    .await
                    .unwrap(),
            )
        })
    });
    let mut winners = Vec::new();
    let mut holders_seen = Vec::new();
    for r in racers {
        match r.await.unwrap() {
            (n, LockOutcome::Granted) => winners.push(n),
            (_, LockOutcome::HeldBy(lock)) => holders_seen.push(lock.connection_id),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let winner = conn(&id, winners[0]);
    assert!(
        holders_seen.iter().all(|h| *h == winner),
        "{holders_seen:?}"
    );
    let locks = members(&store, &id, now()).await.locks;
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].connection_id, winner);

    // Only the holder releases it.
    let other = conn(&id, (winners[0] + 1) % 10);
    assert_eq!(
        store.release_lock(&id, "module-1", &other).await.unwrap(),
        ReleaseOutcome::NotHeld
    );
    assert_eq!(
        store.release_lock(&id, "module-1", &winner).await.unwrap(),
        ReleaseOutcome::Released
    );
    assert_eq!(
        store.release_lock(&id, "module-1", &winner).await.unwrap(),
        ReleaseOutcome::NotHeld
    );
    assert!(members(&store, &id, now()).await.locks.is_empty());
}

async fn a_lock_is_free_once_its_holder_is_not_present(store: TestStore) {
    let store = store.store();
    let id = session(&store).await;
    let (ann, bob) = (seat(&id, 1, 5, now()), seat(&id, 2, 5, now()));
    store.join(&ann).await.unwrap();
    store.join(&bob).await.unwrap();
    let lock_for = |s: &Seat, at: Timestamp| Lock {
        element: "row-1".into(),
        connection_id: s.connection.id.clone(),
        user: s.connection.user.clone(),
        since: at,
    };
    let m = members(&store, &id, now()).await;
    assert_eq!(
        store
            .take_lock(&m, &lock_for(&ann, now()), &alone("row-1"), now())
            .await
            .unwrap(),
        LockOutcome::Granted
    );
    // Taking it again is fine for the holder, refused to the other.
    let m = members(&store, &id, now()).await;
    assert_eq!(
        store
            .take_lock(&m, &lock_for(&ann, now()), &alone("row-1"), now())
            .await
            .unwrap(),
        LockOutcome::Granted
    );
    match store
        .take_lock(&m, &lock_for(&bob, now()), &alone("row-1"), now())
        .await
        .unwrap()
    {
        LockOutcome::HeldBy(held) => assert_eq!(held.connection_id, ann.connection.id),
        other => panic!("{other:?}"),
    }
    // Ann goes silent, Bob keeps pinging: once Ann is stale, Bob gets the lock.
    let later = now().plus(HEARTBEAT_TIMEOUT).plus(Duration::from_secs(1));
    store
        .touch(&id, &bob.connection.id, now().plus(Duration::from_secs(30)))
        .await
        .unwrap();
    let m = members(&store, &id, later).await;
    assert_eq!(
        store
            .take_lock(&m, &lock_for(&bob, later), &alone("row-1"), later)
            .await
            .unwrap(),
        LockOutcome::Granted
    );
    let locks = members(&store, &id, later).await.locks;
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].connection_id, bob.connection.id);
}

async fn the_sweep_finds_due_sessions_and_erases_whole(store: TestStore) {
    let store = store.store();
    let abandoned = session(&store).await;
    let occupied = session(&store).await;
    store.join(&seat(&occupied, 1, 5, now())).await.unwrap();
    let e = entry(
        2,
        "c2",
        serde_json::json!([{"op": "add", "path": "/page/x", "value": 1}]),
    );
    assert_eq!(
        store.append_change(&abandoned, &e).await.unwrap(),
        AppendOutcome::Appended
    );

    let due = |at: Timestamp| {
        let store = store.clone();
        async move { store.sweep_due(at, 100).await.unwrap() }
    };
    // Nothing is due yet.
    let early = due(now()).await;
    assert!(
        !early.contains(&SweepTask::Erase(abandoned.clone())),
        "{early:?}"
    );
    assert!(
        !early.contains(&SweepTask::CheckPresence(occupied.clone())),
        "{early:?}"
    );
    // A minute on: the abandoned one is to be erased, the occupied one looked at.
    let at = now()
        .plus(EMPTY_SESSION_LIFETIME)
        .max(now().plus(PRESENCE_CHECK_INTERVAL));
    let tasks = due(at).await;
    assert!(
        tasks.contains(&SweepTask::Erase(abandoned.clone())),
        "{tasks:?}"
    );
    assert!(
        tasks.contains(&SweepTask::CheckPresence(occupied.clone())),
        "{tasks:?}"
    );
    assert!(
        !tasks.contains(&SweepTask::Erase(occupied.clone())),
        "{tasks:?}"
    );
    // Looked at: not due again until the time it was given.
    let next = at.plus(Duration::from_secs(30));
    store
        .schedule_presence_check(&occupied, next)
        .await
        .unwrap();
    assert!(
        !due(at)
            .await
            .contains(&SweepTask::CheckPresence(occupied.clone()))
    );
    assert!(
        due(next)
            .await
            .contains(&SweepTask::CheckPresence(occupied.clone()))
    );

    // Erasure: only once expired and its end told, then whole.
    let not_yet = now().plus(Duration::from_secs(30));
    assert_eq!(
        store.erase_session(&abandoned, not_yet).await.unwrap(),
        EraseOutcome::NotDue
    );
    assert_eq!(
        store.erase_session(&abandoned, at).await.unwrap(),
        EraseOutcome::NotDue,
        "the host was not told it ended"
    );
    let session = store
        .read_expired(&abandoned, at)
        .await
        .unwrap()
        .unwrap()
        .session;
    assert!(store.read_expired(&occupied, at).await.unwrap().is_none());
    store
        .mark_ended(&session, Ended { at, kept_until: at })
        .await
        .unwrap();
    assert!(
        store
            .read_session(&abandoned, now())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.erase_session(&abandoned, at).await.unwrap(),
        EraseOutcome::Erased
    );
    assert!(
        store
            .read_session(&abandoned, now())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .read_members(&abandoned, now())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .history(&abandoned, Version(0), 10, usize::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .kept_template(&session, Version(u64::MAX >> 1))
            .await
            .unwrap()
            .is_none()
    );
    assert!(!due(at).await.contains(&SweepTask::Erase(abandoned.clone())));
    assert_eq!(
        store.erase_session(&abandoned, at).await.unwrap(),
        EraseOutcome::NotDue
    );
    // The occupied one is not erased, whatever the time.
    let much_later = at.plus(Duration::from_secs(3600));
    assert_eq!(
        store.erase_session(&occupied, much_later).await.unwrap(),
        EraseOutcome::NotDue
    );
}

/// A join or departure on DynamoDB is several writes; one that stops half-way
/// (the function timed out or crashed) leaves a seat claimed without its
/// connection. The sweeper gives such seats back once they are old enough not to
/// belong to a join in flight, and the last one out still starts the countdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_seats_left_half_taken_are_given_back() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use coedit::store::dynamo::keys;
    let TestStore::Dynamo(dynamo) = TestStore::dynamo().await else {
        unreachable!()
    };
    let store: Arc<dyn SessionStore> = dynamo.clone();
    let id = session(&store).await;
    let (ann, bob) = (seat(&id, 1, 5, now()), seat(&id, 2, 5, now()));
    store.join(&ann).await.unwrap();
    store.join(&bob).await.unwrap();
    // A join that claimed its seat and died; Bob's departure that removed his
    // connection and died before giving his seat back.
    dynamo
        .client()
        .update_item()
        .table_name(dynamo.table())
        .key("pk", AttributeValue::S(keys::session_pk(&id)))
        .key("sk", AttributeValue::S(keys::META.into()))
        .update_expression("SET seated.#c = :t")
        .expression_attribute_names("#c", conn(&id, 3))
        .expression_attribute_values(":t", AttributeValue::N(now().millis().to_string()))
        .send()
        .await
        .unwrap();
    dynamo
        .client()
        .delete_item()
        .table_name(dynamo.table())
        .key("pk", AttributeValue::S(keys::session_pk(&id)))
        .key(
            "sk",
            AttributeValue::S(keys::connection_sk(&bob.connection.id)),
        )
        .send()
        .await
        .unwrap();
    let m = members(&store, &id, now()).await;
    assert_eq!((m.session.seats, m.connections.len()), (3, 1));
    // Too young to tell from a join in flight: kept.
    let soon = now().plus(Duration::from_secs(10));
    assert_eq!(store.reclaim_seats(&id, soon).await.unwrap(), 0);
    let later = now().plus(coedit::session::presence::SEAT_SETTLE);
    assert_eq!(store.reclaim_seats(&id, later).await.unwrap(), 2);
    assert_eq!(store.reclaim_seats(&id, later).await.unwrap(), 0);
    let m = members(&store, &id, later).await;
    assert_eq!(m.session.seats, 1);
    // With the seats right, the limit holds again: four more fit under five.
    for n in 4..8 {
        assert_eq!(
            store.join(&seat(&id, n, 5, later)).await.unwrap(),
            JoinOutcome::Joined
        );
    }
    assert_eq!(
        store.join(&seat(&id, 8, 5, later)).await.unwrap(),
        JoinOutcome::Full
    );
}

fn keyed(key: &str, tenant: &TenantId, at: Timestamp) -> NewSession {
    let opening = Opening {
        tenant: tenant.clone(),
        template_key: Some(TemplateKey::parse(key).unwrap()),
        ..opening(serde_json::json!({"page": {"rows": []}}))
    };
    new_session(opening, at)
}

async fn a_template_key_names_one_session_per_tenant(store: TestStore) {
    let store = store.store();
    let key = TemplateKey::parse("welcome-email").unwrap();
    let first = keyed("welcome-email", &tenant(), now());
    assert_eq!(
        store.create_session(&first).await.unwrap(),
        CreateOutcome::Created
    );
    let found = store.find_template_session(&tenant(), &key).await.unwrap();
    assert_eq!(found.as_ref(), Some(&first.session.id));

    // A second start of the same key writes nothing, whichever session it names.
    let second = keyed("welcome-email", &tenant(), now());
    assert_eq!(
        store.create_session(&second).await.unwrap(),
        CreateOutcome::KeyTaken
    );
    let wrong = NewSession {
        replaces: Some(SessionId::generate()),
        ..keyed("welcome-email", &tenant(), now())
    };
    assert_eq!(
        store.create_session(&wrong).await.unwrap(),
        CreateOutcome::KeyTaken
    );
    for refused in [&second, &wrong] {
        assert!(is_absent(&store, &refused.session.id, now()).await);
        assert!(
            store
                .history(&refused.session.id, Version(0), 5, usize::MAX)
                .await
                .unwrap()
                .is_empty()
        );
    }

    // Another tenant's equal key is another claim.
    let other_tenant = TenantId::parse("globex").unwrap();
    let theirs = keyed("welcome-email", &other_tenant, now());
    assert_eq!(
        store.create_session(&theirs).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        store
            .find_template_session(&other_tenant, &key)
            .await
            .unwrap(),
        Some(theirs.session.id.clone())
    );
    assert_eq!(
        store.find_template_session(&tenant(), &key).await.unwrap(),
        Some(first.session.id.clone())
    );

    // Expired (nobody joined), not yet ended: a new session may take the key over.
    let expired = now().plus(EMPTY_SESSION_LIFETIME);
    let successor = NewSession {
        replaces: Some(first.session.id.clone()),
        ..keyed("welcome-email", &tenant(), expired)
    };
    assert_eq!(
        store.create_session(&successor).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        store.find_template_session(&tenant(), &key).await.unwrap(),
        Some(successor.session.id.clone())
    );
    // The old one's end does not free the key its successor holds.
    store
        .mark_ended(
            &first.session,
            Ended {
                at: expired,
                kept_until: expired,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.find_template_session(&tenant(), &key).await.unwrap(),
        Some(successor.session.id.clone())
    );
    // The successor's end frees it.
    let later = expired.plus(EMPTY_SESSION_LIFETIME);
    store
        .mark_ended(
            &successor.session,
            Ended {
                at: later,
                kept_until: later,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.find_template_session(&tenant(), &key).await.unwrap(),
        None
    );
    let third = keyed("welcome-email", &tenant(), later);
    assert_eq!(
        store.create_session(&third).await.unwrap(),
        CreateOutcome::Created
    );
}

async fn a_session_that_starts_later_numbers_on(store: TestStore) {
    let store = store.store();
    let new = new_session(
        Opening {
            version: Version(41),
            ..opening(serde_json::json!({"page": {"rows": []}}))
        },
        now(),
    );
    store.create_session(&new).await.unwrap();
    let id = &new.session.id;
    assert_eq!(store.head_version(id).await.unwrap(), Some(Version(41)));
    let e = entry(
        42,
        "c42",
        serde_json::json!([{"op": "add", "path": "/page/x", "value": 1}]),
    );
    assert_eq!(
        store.append_change(id, &e).await.unwrap(),
        AppendOutcome::Appended
    );
    let state = store.read_session(id, now()).await.unwrap().unwrap();
    assert_eq!(state.session.first_version, Version(41));
    assert_eq!(state.current().unwrap().0, Version(42));
    assert_eq!(
        store
            .history_before(id, None, 10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.version)
            .collect::<Vec<_>>(),
        [Version(42), Version(41)]
    );
    // Compaction keeps the first template, at the first version.
    let (_, template) = state.current().unwrap();
    assert_eq!(
        store
            .write_snapshot(id, Version(42), &template)
            .await
            .unwrap(),
        SnapshotOutcome::Stored
    );
    let (at, first) = store
        .kept_template(&state.session, Version(41))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((at, first.as_str()), (Version(41), new.template.as_str()));

    // Erasure finds the log from the first version on.
    let at = now().plus(EMPTY_SESSION_LIFETIME);
    store
        .mark_ended(&state.session, Ended { at, kept_until: at })
        .await
        .unwrap();
    assert_eq!(
        store.erase_session(id, at).await.unwrap(),
        EraseOutcome::Erased
    );
    assert!(
        store
            .history(id, Version(0), 10, usize::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.head_version(id).await.unwrap(), None);
}

async fn an_ended_session_is_kept_until_its_time(store: TestStore) {
    let store = store.store();
    let new = new_from(serde_json::json!({"page": {"rows": []}}));
    store.create_session(&new).await.unwrap();
    let id = &new.session.id;
    let at = now().plus(EMPTY_SESSION_LIFETIME);
    let kept_until = at.plus(Duration::from_secs(3600));
    let last = store.read_expired(id, at).await.unwrap().unwrap();
    store
        .mark_ended(&last.session, Ended { at, kept_until })
        .await
        .unwrap();
    // Marking again changes nothing.
    store
        .mark_ended(&last.session, Ended { at, kept_until })
        .await
        .unwrap();

    let due = |t| {
        let store = store.clone();
        async move { store.sweep_due(t, 1000).await.unwrap() }
    };
    assert!(!due(at).await.contains(&SweepTask::Erase(id.clone())));
    assert_eq!(
        store.erase_session(id, at).await.unwrap(),
        EraseOutcome::NotDue
    );
    let kept = store.read_expired(id, at).await.unwrap().unwrap();
    assert_eq!(kept.session.ended, Some(Ended { at, kept_until }));
    assert_eq!(kept.current().unwrap().1.as_str(), new.template.as_str());
    // Never live again: no join, no read as a live session.
    assert!(is_absent(&store, id, at).await);
    assert_eq!(
        store.join(&seat(id, 1, 5, at)).await.unwrap(),
        JoinOutcome::NotFound
    );

    assert!(
        due(kept_until)
            .await
            .contains(&SweepTask::Erase(id.clone()))
    );
    assert_eq!(
        store.erase_session(id, kept_until).await.unwrap(),
        EraseOutcome::Erased
    );
    assert!(store.read_expired(id, kept_until).await.unwrap().is_none());
}

async fn a_reported_version_only_moves_forward(store: TestStore) {
    let store = store.store();
    let id = session(&store).await;
    let reported = |store: Arc<dyn SessionStore>, id: SessionId| async move {
        store
            .read_members(&id, now())
            .await
            .unwrap()
            .unwrap()
            .session
            .reported
    };
    assert_eq!(reported(store.clone(), id.clone()).await, None);
    store.mark_reported(&id, Version(7), now()).await.unwrap();
    assert_eq!(
        reported(store.clone(), id.clone()).await,
        Some((Version(7), now()))
    );
    let later = now().plus(Duration::from_secs(60));
    store.mark_reported(&id, Version(5), later).await.unwrap();
    assert_eq!(
        reported(store.clone(), id.clone()).await,
        Some((Version(7), now()))
    );
    store.mark_reported(&id, Version(9), later).await.unwrap();
    assert_eq!(
        reported(store.clone(), id.clone()).await,
        Some((Version(9), later))
    );
}
