use proptest::prelude::*;
use serde_json::{Value, json};

use super::apply::Failure;
use super::*;

fn ops(v: Value) -> Vec<Op> {
    parse(&v).unwrap()
}

fn op(v: Value) -> Op {
    ops(json!([v])).remove(0)
}

fn doc() -> Value {
    json!({"page": {"rows": [
        {"uuid": "r0", "columns": [{"modules": [
            {"uuid": "m00", "text": "a"}, {"uuid": "m01", "text": "b"}]}]},
        {"uuid": "r1", "columns": [{"modules": [{"uuid": "m10", "text": "c"}]}]},
        {"uuid": "r2", "columns": [{"modules": [{"uuid": "m20", "text": "d"}]}]}
    ]}, "comments": {"k1": {"t": 1}, "k2": {"t": 2}}})
}

fn apply_sized(doc: &mut Value, ops: &[Op]) -> Result<Applied, (usize, Failure)> {
    let size = json_bytes(doc);
    apply(doc, size, ops)
}

/// Applies the ops one by one until one is refused (its index and why), checking
/// the size kept after each.
fn push_until_refused(
    d: &mut Value,
    size: usize,
    limits: Limits,
    patch: Vec<Value>,
) -> (Applied, Option<(usize, Failure)>) {
    let mut applied = Applied::new(size, limits);
    for (i, op) in ops(Value::from(patch)).iter().enumerate() {
        if let Err(why) = applied.push(d, op) {
            return (applied, Some((i, why)));
        }
        assert_eq!(applied.size(), json_bytes(d));
    }
    (applied, None)
}

/// The copy-doubling attack: each copy of the page into itself doubles the
/// template. It is refused at the copy that would pass the limit, measured before
/// anything is copied, and the template is as it was.
#[test]
fn copying_the_page_into_itself_stops_at_the_size_limit() {
    let mut d = json!({"page": {"text": "x".repeat(1000)}, "comments": {}});
    let base = d.clone();
    let size = json_bytes(&d);
    let patch: Vec<Value> = (1..=30)
        .map(|i| json!({"op": "copy", "from": "/page", "path": format!("/page/a{i}")}))
        .collect();
    let limits = Limits {
        max_copied: usize::MAX,
        ..Limits::for_template_bytes(100_000)
    };
    let (applied, refused) = push_until_refused(&mut d, size, limits, patch);
    let (at, why) = refused.expect("the copies must be refused");
    // 1 KB doubled 6 times is 64 KB; the 7th copy would make 128 KB.
    assert_eq!(at, 6);
    assert!(
        matches!(&why, Failure::TooLarge(m) if m.contains("at most 100000")),
        "{why:?}"
    );
    undo(&mut d, applied);
    assert_eq!(d, base);
}

/// Duplicating rows is fine, a fifth of the template limit at a time.
#[test]
fn a_change_copies_at_most_a_fifth_of_the_template_limit() {
    let mut d = json!({"page": {"rows": [{"text": "x".repeat(10_000)}]}, "comments": {}});
    let size = json_bytes(&d);
    let mut applied = Applied::new(size, Limits::for_template_bytes(200_000));
    let copy = op(json!({"op": "copy", "from": "/page/rows/0", "path": "/page/rows/-"}));
    for _ in 0..3 {
        applied.push(&mut d, &copy).unwrap();
    }
    // 4 copies of 10,011 bytes pass 40,000.
    let why = applied.push(&mut d, &copy).unwrap_err();
    assert!(
        matches!(&why, Failure::TooLarge(m) if m.contains("copies more than 40000")),
        "{why:?}"
    );
    assert_eq!(d["page"]["rows"].as_array().unwrap().len(), 4);
}

/// Copying and removing in turn keeps the template small but would fill the undo
/// log: what one change handles is bounded too.
#[test]
fn a_change_handles_at_most_twice_the_template_limit() {
    let mut d = json!({"page": {"text": "x".repeat(10_000)}, "comments": {}});
    let size = json_bytes(&d);
    let limits = Limits {
        max_copied: usize::MAX,
        ..Limits::for_template_bytes(50_000)
    };
    let mut patch = Vec::new();
    for _ in 0..20 {
        patch.push(json!({"op": "copy", "from": "/page/text", "path": "/page/b"}));
        patch.push(json!({"op": "remove", "path": "/page/b"}));
    }
    let (_, refused) = push_until_refused(&mut d, size, limits, patch);
    let (at, why) = refused.expect("refused");
    // Each copy and each remove handles the 10,002-byte string: the 10th op
    // passes 100,000.
    assert_eq!(at, 9);
    assert!(
        matches!(&why, Failure::TooLarge(m) if m.contains("handles more than 100000")),
        "{why:?}"
    );
}

#[test]
fn values_nested_past_the_depth_limit_are_refused() {
    let deep = |n: usize| -> Value {
        serde_json::from_str(&format!("{}1{}", "[".repeat(n), "]".repeat(n))).unwrap()
    };
    let mut d = json!({"page": {"a": {}}, "comments": {}});
    let limits = Limits::default();
    // /page/a/x is 3 containers deep (the root, page, a): room for 61 more.
    for (op, ok) in [
        (
            json!({"op": "add", "path": "/page/a/x", "value": deep(61)}),
            true,
        ),
        (
            json!({"op": "add", "path": "/page/a/y", "value": deep(62)}),
            false,
        ),
        (
            json!({"op": "replace", "path": "/page/a/x", "value": deep(62)}),
            false,
        ),
        (
            json!({"op": "copy", "from": "/page/a", "path": "/page/a/x/0/z"}),
            false,
        ),
        (
            json!({"op": "move", "from": "/page/a/x", "path": "/page/b"}),
            true,
        ),
        (
            json!({"op": "move", "from": "/page/b", "path": "/page/a/c"}),
            true,
        ),
        (
            json!({"op": "move", "from": "/page/a/c", "path": "/page/a/d/e"}),
            false,
        ),
    ] {
        let size = json_bytes(&d);
        let before = d.clone();
        let result = Applied::new(size, limits).push(&mut d, &op_of(&op));
        match ok {
            true => assert!(result.is_ok(), "{op}: {result:?}"),
            false => {
                assert!(
                    matches!(result, Err(Failure::TooDeep(_)) | Err(Failure::Invalid(_))),
                    "{op}: {result:?}"
                );
                assert_eq!(d, before);
            }
        }
    }
    assert!(depth(&d, 100) <= MAX_DEPTH);
}

fn op_of(v: &Value) -> Op {
    op(v.clone())
}

fn apply_all(doc: &mut Value, ops: &[Op]) -> Result<Vec<Op>, (usize, Failure)> {
    apply_sized(doc, ops).map(|a| a.ops)
}

#[test]
fn parse_says_which_op_is_wrong_and_why() {
    let cases = [
        (json!({}), "patch: must be an array"),
        (json!([]), "no operations"),
        (json!([1]), "patch[0]: must be an object"),
        (
            json!([{"op": "test", "path": "/page", "value": 1}, {"op": "dance", "path": "/page"}]),
            "patch[1]: unknown variant `dance`",
        ),
        (
            json!([{"op": "add", "path": "/page/x"}]),
            "patch[0]: missing field `value`",
        ),
        (
            json!([{"op": "add", "path": "page/x", "value": 1}]),
            "patch[0]",
        ),
        (json!([{"op": "remove", "path": 7}]), "patch[0]"),
        (
            json!([{"op": "replace", "path": "", "value": {}}]),
            "cannot change the template's root",
        ),
        (
            json!([{"op": "move", "from": "", "path": "/page/x"}]),
            "root",
        ),
    ];
    for (patch, says) in cases {
        let e = parse(&patch).unwrap_err();
        assert_eq!(e.code.number(), 4001, "{patch}");
        assert!(e.detail.contains(says), "{patch}: {}", e.detail);
    }
    let too_many: Vec<Value> = (0..=MAX_OPS)
        .map(|_| json!({"op": "test", "path": "/page", "value": 1}))
        .collect();
    assert!(
        parse(&Value::from(too_many))
            .unwrap_err()
            .detail
            .contains("at most")
    );
}

#[test]
fn ops_round_trip_to_their_json_form() {
    let patch = json!([
        {"op": "add", "path": "/page/rows/0/a~1b", "value": {"x": 1}},
        {"op": "move", "from": "/page/rows/1", "path": "/page/rows/0"},
        {"op": "test", "path": "/comments/k~01", "value": null}
    ]);
    assert_eq!(Value::from(to_json(&ops(patch.clone()))), patch);
}

#[test]
fn an_append_is_recorded_at_the_index_it_landed_at() {
    let mut d = doc();
    let applied = apply_all(
        &mut d,
        &ops(json!([{"op": "add", "path": "/page/rows/-", "value": {"uuid": "r3"}}])),
    )
    .unwrap();
    assert_eq!(applied[0].path().to_string(), "/page/rows/3");
    assert_eq!(d["page"]["rows"][3]["uuid"], "r3");
}

#[test]
fn a_failing_op_leaves_the_template_as_it_was_byte_for_byte() {
    let before = serde_json::to_string(&doc()).unwrap();
    let mut d = doc();
    let patch = ops(json!([
        {"op": "remove", "path": "/comments/k1"},
        {"op": "move", "from": "/page/rows/0", "path": "/page/rows/2"},
        {"op": "add", "path": "/page/rows/1/columns/0/modules/0/text", "value": "z"},
        {"op": "replace", "path": "/page/nothing/here", "value": 1}
    ]));
    let (at, why) = apply_sized(&mut d, &patch).unwrap_err();
    assert_eq!(at, 3);
    assert!(
        matches!(why, Failure::Invalid(ref m) if m.contains("does not exist")),
        "{why:?}"
    );
    assert_eq!(serde_json::to_string(&d).unwrap(), before);
}

#[test]
fn test_ops_and_bad_indices_fail() {
    let mut d = doc();
    let size = json_bytes(&d);
    let (_, why) = apply(
        &mut d,
        size,
        &ops(json!([{"op": "test", "path": "/page/rows/0/uuid", "value": "rX"}])),
    )
    .unwrap_err();
    assert_eq!(why, Failure::TestFailed);
    for (patch, says) in [
        (
            json!([{"op": "add", "path": "/page/rows/9", "value": 1}]),
            "not an index of this array (0 to 3)",
        ),
        (
            json!([{"op": "remove", "path": "/page/rows/01"}]),
            "not an index",
        ),
        (
            json!([{"op": "add", "path": "/page/rows/0/uuid/x", "value": 1}]),
            "neither an object nor an array",
        ),
        (
            json!([{"op": "move", "from": "/page/rows", "path": "/page/rows/0"}]),
            "into itself",
        ),
        (
            json!([{"op": "copy", "from": "/page/none", "path": "/page/x"}]),
            "from /page/none",
        ),
    ] {
        let (_, why) = apply_sized(&mut d, &ops(patch.clone())).unwrap_err();
        assert!(
            matches!(why, Failure::Invalid(ref m) if m.contains(says)),
            "{patch}: {why:?}"
        );
    }
    assert_eq!(d, doc());
}

#[test]
fn elements_touched_are_those_on_the_way_and_inside_what_is_removed() {
    let d = doc();
    let touched = |v: Value| touched_elements(&d, &op(v));
    assert_eq!(
        touched(
            json!({"op": "replace", "path": "/page/rows/0/columns/0/modules/1/text", "value": "x"})
        ),
        ["r0", "m01"]
    );
    assert_eq!(
        touched(json!({"op": "remove", "path": "/page/rows/1"})),
        ["r1", "m10"]
    );
    // Inserting a row before row 1 does not touch row 1.
    assert!(touched(json!({"op": "add", "path": "/page/rows/1", "value": {}})).is_empty());
    // Inserting a module into row 2 touches row 2.
    assert_eq!(
        touched(json!({"op": "add", "path": "/page/rows/2/columns/0/modules/0", "value": {}})),
        ["r2"]
    );
    assert_eq!(
        touched(
            json!({"op": "move", "from": "/page/rows/0/columns/0/modules/0", "path": "/page/rows/2/columns/0/modules/-"})
        ),
        ["r0", "m00", "r2"]
    );
    let all = touched(json!({"op": "replace", "path": "/page/rows", "value": []}));
    assert_eq!(all.len(), 7);
    assert!(touched(json!({"op": "remove", "path": "/comments/k1"})).is_empty());
}

fn rebased(sender: Value, missed: Value) -> Result<Op, Conflict> {
    let mut d = doc();
    let missed = apply_all(&mut d, &ops(missed)).unwrap();
    rebase(&op(sender), &missed, &d)
}

#[test]
fn indices_shift_over_inserts_and_removals_made_before_them() {
    let edit =
        json!({"op": "replace", "path": "/page/rows/1/columns/0/modules/0/text", "value": "x"});
    let shifted = rebased(
        edit.clone(),
        json!([{"op": "add", "path": "/page/rows/0", "value": {"uuid": "new"}}]),
    )
    .unwrap();
    assert_eq!(
        shifted.path().to_string(),
        "/page/rows/2/columns/0/modules/0/text"
    );
    let shifted = rebased(
        edit.clone(),
        json!([{"op": "remove", "path": "/page/rows/0"}]),
    )
    .unwrap();
    assert_eq!(
        shifted.path().to_string(),
        "/page/rows/0/columns/0/modules/0/text"
    );
    // Changes after it do not move it.
    let same = rebased(edit.clone(), json!([{"op": "remove", "path": "/page/rows/2"}, {"op": "add", "path": "/page/rows/-", "value": {}}])).unwrap();
    assert_eq!(
        same.path().to_string(),
        "/page/rows/1/columns/0/modules/0/text"
    );
    // A move is a removal and an insert.
    let moved = rebased(
        edit,
        json!([{"op": "move", "from": "/page/rows/0", "path": "/page/rows/2"}]),
    )
    .unwrap();
    assert_eq!(
        moved.path().to_string(),
        "/page/rows/0/columns/0/modules/0/text"
    );
}

#[test]
fn touching_what_was_removed_or_replaced_conflicts() {
    let edit =
        json!({"op": "replace", "path": "/page/rows/1/columns/0/modules/0/text", "value": "x"});
    for missed in [
        json!([{"op": "remove", "path": "/page/rows/1"}]),
        json!([{"op": "replace", "path": "/page/rows/1/columns", "value": []}]),
        json!([{"op": "replace", "path": "/page/rows/1/columns/0/modules/0/text", "value": "y"}]),
        json!([{"op": "move", "from": "/page/rows/1", "path": "/page/rows/0"}]),
    ] {
        assert!(rebased(edit.clone(), missed.clone()).is_err(), "{missed}");
    }
    // Removing or replacing something under which a missed op changed things.
    for sender in [
        json!({"op": "remove", "path": "/page/rows/1"}),
        json!({"op": "replace", "path": "/page/rows/1/columns/0", "value": {}}),
        json!({"op": "add", "path": "/page/rows/1/columns", "value": []}),
    ] {
        let missed = json!([{"op": "replace", "path": "/page/rows/1/columns/0/modules/0/text", "value": "y"}]);
        assert!(rebased(sender.clone(), missed).is_err(), "{sender}");
    }
    // Elsewhere is fine.
    assert!(rebased(edit, json!([{"op": "replace", "path": "/page/rows/2/columns/0/modules/0/text", "value": "y"}])).is_ok());
}

#[test]
fn concurrent_inserts_at_one_index_keep_the_accepted_order() {
    let mine = json!({"op": "add", "path": "/page/rows/1", "value": {"uuid": "mine"}});
    let theirs = json!([{"op": "add", "path": "/page/rows/1", "value": {"uuid": "theirs"}}]);
    assert_eq!(
        rebased(mine.clone(), theirs).unwrap().path().to_string(),
        "/page/rows/2"
    );
    // An insert where a row was removed lands where that row was.
    let at_removed = rebased(mine, json!([{"op": "remove", "path": "/page/rows/1"}])).unwrap();
    assert_eq!(at_removed.path().to_string(), "/page/rows/1");
}

#[test]
fn numeric_object_keys_are_not_indices() {
    let mut d = json!({"page": {"rows": []}, "comments": {"1": "a", "2": "b"}});
    let missed = apply_all(
        &mut d,
        &ops(json!([{"op": "add", "path": "/comments/0", "value": "z"}])),
    )
    .unwrap();
    let r = rebase(
        &op(json!({"op": "replace", "path": "/comments/1", "value": "y"})),
        &missed,
        &d,
    )
    .unwrap();
    assert_eq!(r.path().to_string(), "/comments/1");
}

// ---- properties ----

/// A small template: rows of one column of modules with text.
fn small_doc(rows: &[usize]) -> Value {
    let rows: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(r, n)| {
            let modules: Vec<Value> = (0..*n)
                .map(|m| json!({"uuid": format!("m{r}-{m}"), "text": format!("t{r}{m}")}))
                .collect();
            json!({"uuid": format!("r{r}"), "columns": [{"modules": modules}]})
        })
        .collect();
    json!({"page": {"rows": rows}})
}

/// Builds a valid op on `doc` from random numbers.
fn make_op(doc: &Value, kind: u8, a: usize, b: usize, tag: u32) -> Option<Op> {
    let rows = doc["page"]["rows"].as_array()?;
    let row_at = |n: usize| n % rows.len().max(1);
    let modules = |r: usize| {
        rows.get(r).map_or(0, |row| {
            row["columns"][0]["modules"].as_array().map_or(0, Vec::len)
        })
    };
    let v = match kind % 7 {
        0 => json!({"op": "add", "path": format!("/page/rows/{}", a % (rows.len() + 1)),
                     "value": {"uuid": format!("n{tag}"), "columns": [{"modules": []}]}}),
        1 if !rows.is_empty() => {
            json!({"op": "remove", "path": format!("/page/rows/{}", row_at(a))})
        }
        2 if !rows.is_empty() && modules(row_at(a)) > 0 => {
            let r = row_at(a);
            json!({"op": "replace", "path": format!("/page/rows/{r}/columns/0/modules/{}/text", b % modules(r)), "value": format!("x{tag}")})
        }
        3 if !rows.is_empty() => {
            let r = row_at(a);
            json!({"op": "add", "path": format!("/page/rows/{r}/columns/0/modules/{}", b % (modules(r) + 1)),
                   "value": {"uuid": format!("n{tag}"), "text": "new"}})
        }
        4 if !rows.is_empty() && modules(row_at(a)) > 0 => {
            let r = row_at(a);
            json!({"op": "remove", "path": format!("/page/rows/{r}/columns/0/modules/{}", b % modules(r))})
        }
        5 if rows.len() > 1 => {
            json!({"op": "move", "from": format!("/page/rows/{}", row_at(a)), "path": format!("/page/rows/{}", row_at(b))})
        }
        6 => json!({"op": "add", "path": format!("/page/p{}", a % 3), "value": tag}),
        _ => return None,
    };
    Some(op(v))
}

fn arb_rows() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..4, 1..5)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Two concurrent changes that do not conflict give the same template whichever
    /// the server accepted first.
    #[test]
    fn concurrent_changes_converge(rows in arb_rows(), ka in 0u8..7, a1 in 0usize..9, a2 in 0usize..9,
                                   kb in 0u8..7, b1 in 0usize..9, b2 in 0usize..9) {
        let base = small_doc(&rows);
        let (Some(a), Some(b)) = (make_op(&base, ka, a1, a2, 1), make_op(&base, kb, b1, b2, 2)) else {
            return Ok(());
        };
        // A accepted first, then B rebased over it.
        let mut left = base.clone();
        let a_applied = apply_all(&mut left, std::slice::from_ref(&a)).unwrap();
        let Ok(b_rebased) = rebase(&b, &a_applied, &left) else { return Ok(()); };
        if apply_all(&mut left, &[b_rebased]).is_err() { return Ok(()); }
        // A client that had applied B locally receives A, moved over B with A first.
        let mut right = base.clone();
        let b_applied = apply_all(&mut right, std::slice::from_ref(&b)).unwrap();
        let mut a_moved = a_applied.clone();
        let Ok(()) = transform_missed(&mut a_moved, &b_applied[0], &right) else { return Ok(()); };
        if apply_all(&mut right, &a_moved).is_err() { return Ok(()); }
        prop_assert_eq!(left, right, "a = {:?}, b = {:?}", a, b);
    }

    /// Changes to different modules never conflict, whatever their order.
    #[test]
    fn edits_of_different_modules_always_merge(rows in prop::collection::vec(1usize..4, 2..5), r1 in 0usize..9, r2 in 0usize..9, m in 0usize..9) {
        let base = small_doc(&rows);
        let r1 = r1 % rows.len();
        let r2 = (r1 + 1 + r2 % (rows.len() - 1)) % rows.len();
        let edit = |r: usize, tag: &str| op(json!({"op": "replace", "path": format!("/page/rows/{r}/columns/0/modules/{}/text", m % rows[r]), "value": tag}));
        let mut d = base.clone();
        let first = apply_all(&mut d, &[edit(r1, "one")]).unwrap();
        let second = rebase(&edit(r2, "two"), &first, &d).unwrap();
        apply_all(&mut d, &[second]).unwrap();
        prop_assert_eq!(&d["page"]["rows"][r1]["columns"][0]["modules"][m % rows[r1]]["text"], "one");
        prop_assert_eq!(&d["page"]["rows"][r2]["columns"][0]["modules"][m % rows[r2]]["text"], "two");
    }

    /// Under any limits, every op either fits them (and the size kept is exact) or
    /// is refused with the template as it was before it; undoing the ops that fit
    /// gives back the template byte for byte.
    #[test]
    fn limits_hold_op_by_op(rows in arb_rows(), room in 0usize..400, max_depth in 2usize..8, max_handled in 0usize..600,
                            raw in prop::collection::vec((0u8..5, 0u8..4, 0u8..4, 0u8..3), 1..12)) {
        let base = small_doc(&rows);
        let size = json_bytes(&base);
        let limits = Limits { max_bytes: size + room, max_depth: max_depth.max(depth(&base, 64)), max_copied: max_handled / 2, max_handled };
        let places = ["/page/rows/0", "/page/rows", "/page/a", "/page/a/b"];
        let values = [json!(1), json!({"x": [[2]]}), json!("0123456789".repeat(5)), json!([[[[[[]]]]]])];
        let kinds = ["add", "copy", "move", "replace", "remove"];
        let mut d = base.clone();
        let mut applied = Applied::new(size, limits);
        for (k, to, from, v) in raw {
            let Ok(patch) = parse(&json!([{"op": kinds[k as usize], "path": places[to as usize],
                "from": places[from as usize], "value": values[v as usize]}])) else { continue };
            let before = d.clone();
            match applied.push(&mut d, &patch[0]) {
                Ok(()) => {
                    prop_assert_eq!(applied.size(), json_bytes(&d));
                    prop_assert!(applied.size() <= limits.max_bytes);
                    prop_assert!(depth(&d, 64) <= limits.max_depth);
                }
                Err(_) => prop_assert_eq!(&d, &before),
            }
        }
        undo(&mut d, applied);
        prop_assert_eq!(serde_json::to_string(&d).unwrap(), serde_json::to_string(&base).unwrap());
    }

    /// Random op sequences never panic, and a failed patch changes nothing.
    #[test]
    fn random_ops_never_panic(rows in arb_rows(), raw in prop::collection::vec((0u8..6, prop::collection::vec("[a-z0-9~/-]{0,4}", 0..6), 0u8..4), 1..8)) {
        let base = small_doc(&rows);
        let kinds = ["add", "remove", "replace", "move", "copy", "test"];
        let patch: Vec<Value> = raw.iter().map(|(k, tokens, v)| {
            let path: String = tokens.iter().map(|t| format!("/{t}")).collect();
            let path = format!("/page{path}");
            json!({"op": kinds[*k as usize], "path": path, "from": "/page/rows/0", "value": v})
        }).collect();
        let Ok(patch) = parse(&Value::from(patch)) else { return Ok(()); };
        let mut d = base.clone();
        match apply_sized(&mut d, &patch) {
            Ok(applied) => {
                prop_assert_eq!(applied.size(), json_bytes(&d), "the size kept op by op is exact");
                for (i, op) in patch.iter().enumerate() {
                    let _ = rebase(op, &applied.ops[..i.min(applied.ops.len())], &d);
                    let _ = touched_elements(&d, op);
                }
                undo(&mut d, applied);
                prop_assert_eq!(serde_json::to_string(&d).unwrap(), serde_json::to_string(&base).unwrap());
            }
            Err(_) => prop_assert_eq!(d, base),
        }
    }
}
