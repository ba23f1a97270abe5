use serde_json::{Value, json};

use super::*;

fn user(n: u32) -> User {
    User {
        user_id: format!("u{n}"),
        username: format!("User {n}"),
        user_color: "#000".into(),
        role: Default::default(),
    }
}

fn head() -> Head {
    let t = Template::from_value(&json!({"page": {"rows": [
        {"uuid": "r0", "columns": [{"modules": [{"uuid": "m0", "text": "a"}]}]},
        {"uuid": "r1", "columns": [{"modules": [{"uuid": "m1", "text": "b"}]}]}
    ]}}))
    .unwrap();
    Head::new(&t, Version(1)).unwrap()
}

fn edit(id: &str, base: u64, patch: Value) -> Edit {
    Edit::new(id.into(), base, &patch, "l".into(), "t".into()).unwrap()
}

fn text(r: usize, value: &str) -> Value {
    json!([{"op": "replace", "path": format!("/page/rows/{r}/columns/0/modules/0/text"), "value": value}])
}

fn nobody(_: &str) -> Option<User> {
    None
}

/// User 1 on connection `c1`.
fn accept(h: &mut Head, e: &Edit) -> Result<Outcome> {
    accept_from(h, e, &user(1), "c1")
}

fn accept_from(h: &mut Head, e: &Edit, user: &User, connection: &str) -> Result<Outcome> {
    let author = Author {
        user,
        connection: Some(connection),
    };
    h.accept(e, &author, nobody, &[], Timestamp(0))
}

/// Accepts and commits a change by `user` on `connection`; its version.
fn commit_from(h: &mut Head, e: &Edit, user: &User, connection: &str) -> Version {
    match accept_from(h, e, user, connection).unwrap() {
        Outcome::Accepted(a) => {
            let v = a.entry.version;
            h.commit(a);
            v
        }
        Outcome::Duplicate(v) => panic!("duplicate of {v}"),
    }
}

/// Accepts and commits a change by user 1 on connection `c1`; its version.
fn commit(h: &mut Head, e: &Edit) -> Version {
    commit_from(h, e, &user(1), "c1")
}

#[test]
fn changes_get_consecutive_versions_and_entries_record_what_was_applied() {
    let mut h = head();
    assert_eq!(commit(&mut h, &edit("c1", 1, text(0, "x"))), Version(2));
    let append = edit(
        "c2",
        2,
        json!([{"op": "add", "path": "/page/rows/-", "value": {"uuid": "r2"}}]),
    );
    let Outcome::Accepted(a) = accept(&mut h, &append).unwrap() else {
        panic!()
    };
    assert_eq!(a.entry.version, Version(3));
    assert_eq!(
        a.entry.diff,
        vec![json!({"op": "add", "path": "/page/rows/2", "value": {"uuid": "r2"}})]
    );
    assert_eq!(a.entry.user_id, "u1");
    h.commit(a);
    assert_eq!(h.version, Version(3));
}

#[test]
fn a_resent_change_is_recognised_by_its_id() {
    let mut h = head();
    let e = edit("c1", 1, text(0, "x"));
    commit(&mut h, &e);
    commit(&mut h, &edit("c2", 2, text(1, "y")));
    assert!(matches!(
        accept(&mut h, &e).unwrap(),
        Outcome::Duplicate(Version(2))
    ));
}

#[test]
fn an_old_change_is_rebased_or_refused_as_a_conflict() {
    let mut h = head();
    // Bob's changes, which Ann (connection c1) has not seen.
    let by_bob = |h: &mut Head, e: &Edit| commit_from(h, e, &user(2), "bob");
    by_bob(
        &mut h,
        &edit(
            "c1",
            1,
            json!([{"op": "add", "path": "/page/rows/0", "value": {"uuid": "new"}}]),
        ),
    );
    // Made on version 1: row 1 is now row 2.
    let Outcome::Accepted(a) = accept(&mut h, &edit("c2", 1, text(1, "y"))).unwrap() else {
        panic!()
    };
    assert_eq!(
        a.entry.diff[0]["path"],
        "/page/rows/2/columns/0/modules/0/text"
    );
    h.commit(a);
    by_bob(
        &mut h,
        &edit("c3", 3, json!([{"op": "remove", "path": "/page/rows/1"}])),
    );
    let before = h.doc.clone();
    let e = accept(&mut h, &edit("c4", 3, text(1, "z"))).unwrap_err();
    assert_eq!(e.code, Code::Conflict);
    assert!(e.detail.contains("patch[0]"), "{}", e.detail);
    assert_eq!(h.doc, before);
}

#[test]
fn locked_elements_stop_the_whole_change() {
    let mut h = head();
    let before = h.doc.clone();
    let patch = json!([
        {"op": "replace", "path": "/page/rows/0/columns/0/modules/0/text", "value": "x"},
        {"op": "remove", "path": "/page/rows/1"}
    ]);
    let holder = |id: &str| (id == "m1").then(|| user(2));
    let author = Author {
        user: &user(1),
        connection: Some("c1"),
    };
    let e = h
        .accept(&edit("c1", 1, patch), &author, holder, &[], Timestamp(0))
        .unwrap_err();
    assert_eq!(e.code, Code::Locked);
    assert!(
        e.detail.contains("patch[1]") && e.detail.contains("m1") && e.detail.contains("User 2"),
        "{}",
        e.detail
    );
    assert_eq!(h.doc, before);
    assert_eq!(h.version, Version(1));
}

#[test]
fn invalid_patches_say_which_op_and_change_nothing() {
    let mut h = head();
    let before = serde_json::to_string(&h.doc).unwrap();
    let cases = [
        (
            json!([{"op": "remove", "path": "/page"}]),
            Code::InvalidPatch,
            "page must stay an object",
        ),
        (
            json!([{"op": "replace", "path": "/page", "value": 3}]),
            Code::InvalidPatch,
            "page must stay an object",
        ),
        (
            json!([{"op": "add", "path": "/page/x", "value": 1}, {"op": "remove", "path": "/page/rows/7"}]),
            Code::InvalidPatch,
            "patch[1] (remove /page/rows/7)",
        ),
        (
            json!([{"op": "test", "path": "/page/rows/0/uuid", "value": "other"}]),
            Code::Conflict,
            "not the one tested",
        ),
    ];
    for (patch, code, says) in cases {
        let e = accept(&mut h, &edit("c", 1, patch.clone())).unwrap_err();
        assert_eq!(e.code, code, "{patch}");
        assert!(e.detail.contains(says), "{patch}: {}", e.detail);
        assert_eq!(serde_json::to_string(&h.doc).unwrap(), before);
    }
    let ahead = accept(&mut h, &edit("c", 5, text(0, "x"))).unwrap_err();
    assert_eq!(ahead.code, Code::Malformed);
}

#[test]
fn a_rolled_back_change_leaves_the_head_as_it_was() {
    let mut h = head();
    let before = serde_json::to_string(&h.doc).unwrap();
    let Outcome::Accepted(a) = accept(
        &mut h,
        &edit(
            "c1",
            1,
            json!([{"op": "move", "from": "/page/rows/0", "path": "/page/rows/1"}]),
        ),
    )
    .unwrap() else {
        panic!()
    };
    h.roll_back(a);
    assert_eq!(serde_json::to_string(&h.doc).unwrap(), before);
    assert_eq!(h.version, Version(1));
}

#[test]
fn catching_up_applies_stored_entries_in_order() {
    let mut writer = head();
    let mut entries = Vec::new();
    for n in 0..5 {
        let e = edit(
            &format!("c{n}"),
            writer.version.0,
            text(n % 2, &n.to_string()),
        );
        let Outcome::Accepted(a) = accept(&mut writer, &e).unwrap() else {
            panic!()
        };
        entries.push(a.entry.clone());
        writer.commit(a);
    }
    let mut reader = head();
    reader.catch_up(&entries[..2]).unwrap();
    reader.catch_up(&entries).unwrap();
    assert_eq!(reader.version, Version(6));
    assert_eq!(reader.doc, writer.doc);
    let mut gap = head();
    assert!(gap.catch_up(&entries[1..]).is_err());
}

/// Ann types in row 0 while Bob types in row 1. Bob's change takes version 2,
/// Ann's first keystroke version 3; Ann's ack arrives before Bob's change, so
/// Ann's base stays 1 (the highest version with nothing missing below it). Her
/// next keystroke replaces the same text on base 1: her own version 3 is not
/// something she missed, and Bob's change is merged as usual.
#[test]
fn own_acknowledged_changes_above_the_base_never_conflict() {
    let mut h = head();
    let (ann, bob) = (user(1), user(2));
    commit_from(&mut h, &edit("b1", 1, text(1, "B")), &bob, "bob");
    commit_from(&mut h, &edit("a1", 1, text(0, "A")), &ann, "ann");
    let Outcome::Accepted(a2) =
        accept_from(&mut h, &edit("a2", 1, text(0, "AA")), &ann, "ann").unwrap()
    else {
        panic!("Ann's second keystroke was refused")
    };
    assert_eq!(a2.entry.version, Version(4));
    assert_eq!(a2.entry.diff, text(0, "AA").as_array().unwrap().clone());
    assert_eq!(a2.entry.connection.as_deref(), Some("ann"));
    h.commit(a2);
    assert_eq!(
        h.doc["page"]["rows"][0]["columns"][0]["modules"][0]["text"],
        "AA"
    );
    assert_eq!(
        h.doc["page"]["rows"][1]["columns"][0]["modules"][0]["text"],
        "B"
    );

    // The same change from Ann's other tab is someone else's as far as that tab
    // knows: it did not see version 4, so it conflicts.
    let e = accept_from(&mut h, &edit("t1", 1, text(0, "tab")), &ann, "ann-tab").unwrap_err();
    assert_eq!(e.code, Code::Conflict);
}

/// Own changes that move things: Ann inserted a row at the top (version 3) after
/// Bob's change to row 1 (version 2), which she had not seen. Her next change, on
/// base 1, addresses rows as her copy has them (Bob's row 1 is her row 2); Bob's
/// change is moved over her insert before hers is rebased over it.
#[test]
fn own_structural_changes_move_what_was_missed_under_them() {
    let mut h = head();
    let (ann, bob) = (user(1), user(2));
    let b = edit("b1", 1, text(1, "B"));
    commit_from(&mut h, &b, &bob, "bob");
    let insert = edit(
        "a1",
        1,
        json!([{"op": "add", "path": "/page/rows/0", "value": {"uuid": "top", "columns": [{"modules": [{"uuid": "mt", "text": ""}]}]}}]),
    );
    commit_from(&mut h, &insert, &ann, "ann");
    // In Ann's copy: rows top, r0, r1. She edits r0 (her row 1) on base 1.
    let Outcome::Accepted(a2) =
        accept_from(&mut h, &edit("a2", 1, text(1, "A")), &ann, "ann").unwrap()
    else {
        panic!("refused")
    };
    assert_eq!(
        a2.entry.diff[0]["path"],
        "/page/rows/1/columns/0/modules/0/text"
    );
    h.commit(a2);
    assert_eq!(h.doc["page"]["rows"][1]["uuid"], "r0");
    assert_eq!(
        h.doc["page"]["rows"][1]["columns"][0]["modules"][0]["text"],
        "A"
    );
    assert_eq!(
        h.doc["page"]["rows"][2]["columns"][0]["modules"][0]["text"],
        "B"
    );
}

/// Over REST the author is a user, not a connection: all that user's changes are
/// their own.
#[test]
fn over_rest_a_users_own_changes_are_all_theirs() {
    let mut h = head();
    let (ann, bob) = (user(1), user(2));
    commit_from(&mut h, &edit("b1", 1, text(1, "B")), &bob, "bob");
    commit_from(&mut h, &edit("a1", 1, text(0, "A")), &ann, "ann");
    let rest = Author {
        user: &ann,
        connection: None,
    };
    let Outcome::Accepted(a2) = h
        .accept(
            &edit("a2", 1, text(0, "AA")),
            &rest,
            nobody,
            &[],
            Timestamp(0),
        )
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(a2.entry.connection, None);
    assert_eq!(a2.entry.user_id, "u1");
}

/// Compaction is due at the change that takes the log past `COMPACT_BYTES`, or at
/// every `COMPACT_EVERY`th, and only there; an instance that does not remember
/// the log back to the snapshot goes by the count alone.
#[test]
fn compaction_is_due_by_count_or_by_bytes_at_one_change() {
    let mut h = head();
    let big = "x".repeat(300 * 1024);
    let mut due = Vec::new();
    for v in 2..=8u64 {
        commit_from(
            &mut h,
            &edit(&format!("b{v}"), v - 1, text(0, &big)),
            &user(1),
            "c1",
        );
        if h.compaction_due(Version(1)) {
            due.push(v);
        }
    }
    // 300 KB each: the 4th change after the snapshot passes 1 MiB.
    assert_eq!(due, [5]);
    assert!(!h.compaction_due(Version(8)));

    let mut h = head();
    let mut due = Vec::new();
    for v in 2..=(2 * COMPACT_EVERY + 1) {
        commit_from(
            &mut h,
            &edit(&format!("s{v}"), v - 1, text(1, "s")),
            &user(1),
            "c1",
        );
        if h.compaction_due(Version(1)) {
            due.push(v);
        }
    }
    assert_eq!(due, [1 + COMPACT_EVERY, 1 + 2 * COMPACT_EVERY]);
}
