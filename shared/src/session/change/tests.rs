use serde_json::{Value, json};

use super::*;

fn user(n: u32) -> User {
    User {
        user_id: format!("u{n}"),
        username: format!("User {n}"),
        user_color: "#000".into(),
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

fn accept(h: &mut Head, e: &Edit) -> Result<Outcome> {
    h.accept(e, &user(1), nobody, &[], Timestamp(0))
}

fn commit(h: &mut Head, e: &Edit) -> Version {
    match accept(h, e).unwrap() {
        Outcome::Accepted(a) => {
            let v = a.entry.version;
            h.commit(a);
            v
        }
        Outcome::Duplicate(v) => panic!("duplicate of {v}"),
    }
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
    commit(
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
    commit(
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
    let e = h
        .accept(&edit("c1", 1, patch), &user(1), holder, &[], Timestamp(0))
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
