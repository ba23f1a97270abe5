//! Fuzzing with proptest at scale: message parsing and the patch/rebase engine on a
//! real fixture template, with random and half-valid inputs. Bounded in every run
//! (`COEDIT_FUZZ_CASES`, 3000 by default per target); run longer by hand:
//!
//!   COEDIT_FUZZ_CASES=1000000 cargo test --release -p coedit-tests --test fuzz
//!
//! Every target checks more than "no panic": a refused input leaves the template
//! byte-identical, an accepted change replays to the same template elsewhere.

use coedit::clock::Timestamp;
use coedit::session::change::{Author, Edit, Head, Outcome};
use coedit::session::message::ClientMessage;
use coedit::session::{Template, User, Version};
use proptest::prelude::*;
use serde_json::{Value, json};

fn cases() -> u32 {
    std::env::var("COEDIT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

fn template() -> &'static Template {
    static T: std::sync::OnceLock<Template> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        Template::prepare(
            coedit_tests::fixture("black-friday-watch-sale.json"),
            "/template",
            coedit::patch::Limits::default(),
        )
        .unwrap()
    })
}

fn user(n: u32) -> User {
    User {
        user_id: format!("u{n}"),
        username: format!("U{n}"),
        user_color: "#000".into(),
        role: Default::default(),
    }
}

/// Paths that mostly exist in the fixture, plus broken ones.
fn arb_path() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("page".to_owned()),
        Just("rows".to_owned()),
        Just("columns".to_owned()),
        Just("modules".to_owned()),
        Just("descriptor".to_owned()),
        Just("uuid".to_owned()),
        Just("-".to_owned()),
        Just("~0".to_owned()),
        Just("~1".to_owned()),
        Just("~2".to_owned()),
        (0usize..14).prop_map(|i| i.to_string()),
        "[a-z0-9]{0,3}",
    ];
    let structured = (
        0usize..13,
        0usize..3,
        0usize..5,
        prop::collection::vec(token.clone(), 0..3),
    )
        .prop_map(|(r, c, m, rest)| {
            let mut p = format!("/page/rows/{r}/columns/{c}/modules/{m}");
            for t in rest {
                p.push('/');
                p.push_str(&t);
            }
            p
        });
    let loose = prop::collection::vec(token, 0..7)
        .prop_map(|ts| ts.iter().map(|t| format!("/{t}")).collect::<String>());
    prop_oneof![3 => structured, 2 => loose, 1 => "[ -~]{0,12}"]
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[ -~]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_op() -> impl Strategy<Value = Value> {
    let name = prop_oneof![
        Just("add"),
        Just("remove"),
        Just("replace"),
        Just("move"),
        Just("copy"),
        Just("test"),
        Just("jump")
    ];
    (name, arb_path(), arb_path(), arb_value(), any::<u8>()).prop_map(
        |(op, path, from, value, drop)| {
            let mut o = json!({"op": op, "path": path, "from": from, "value": value});
            // Sometimes a field is missing or of the wrong type.
            match drop % 11 {
                0 => {
                    o.as_object_mut().unwrap().remove("value");
                }
                1 => {
                    o.as_object_mut().unwrap().remove("from");
                }
                2 => o["path"] = json!(7),
                _ => {}
            }
            o
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// Any text: parsed or refused with 4000/4013, never a panic.
    #[test]
    fn any_text_is_a_message_or_a_clear_refusal(text in prop_oneof![
        "\\PC{0,64}",
        "[{}\\[\\]\":,a-z0-9 ]{0,64}",
        arb_value().prop_map(|v| v.to_string()),
        (prop_oneof![Just("ping"), Just("edit"), Just("lock"), Just("unlock"), Just("sync")], arb_value())
            .prop_map(|(a, v)| json!({"action": a, "changeId": v.clone(), "baseVersion": v.clone(), "patch": v.clone(), "target": v.clone(), "sinceVersion": v}).to_string()),
    ]) {
        match ClientMessage::parse(&text) {
            Ok(_) => {}
            Err(e) => {
                prop_assert!([4000, 4013].contains(&e.code.number()), "{e:?}");
                prop_assert!(!e.detail.is_empty());
            }
        }
    }

    /// Random patches on a real template, over random missed changes: accepted
    /// changes replay to the same template on a fresh head, refused ones leave the
    /// template byte-identical.
    #[test]
    fn random_changes_apply_whole_or_not_at_all(
        missed in prop::collection::vec(prop::collection::vec(arb_op(), 1..4), 0..4),
        ops in prop::collection::vec(arb_op(), 1..6),
        locked in prop::option::of(0usize..40),
    ) {
        let t = template();
        let mut head = Head::new(t, Version(1)).unwrap();
        let mut entries = Vec::new();
        // Changes by another user that the sender did not see.
        for (k, patch) in missed.iter().enumerate() {
            let Ok(edit) = Edit::new(format!("m{k}"), head.version.0, &Value::from(patch.clone()), String::new(), String::new()) else { continue };
            if let Ok(Outcome::Accepted(a)) = head.accept(&edit, &Author { user: &user(2), connection: Some("c2") }, |_| None, &[], Timestamp(0)) {
                entries.push(a.entry.clone());
                head.commit(a);
            }
        }
        let uuids: Vec<String> = {
            let text = head.template().unwrap();
            let mut ids = Vec::new();
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            collect_uuids(&v, &mut ids);
            ids
        };
        let held = locked.and_then(|i| uuids.get(i % uuids.len().max(1)).cloned());
        let before = head.template().unwrap();
        let Ok(edit) = Edit::new("c".into(), 1, &Value::from(ops), String::new(), String::new()) else {
            return Ok(());
        };
        let holder = |id: &str| (Some(id) == held.as_deref()).then(|| user(3));
        let sender = user(1);
        match head.accept(&edit, &Author { user: &sender, connection: Some("c1") }, holder, &[], Timestamp(0)) {
            Err(e) => {
                prop_assert!([4001, 4009, 4013, 4023].contains(&e.code.number()), "{e:?}");
                prop_assert_eq!(head.template().unwrap(), before, "a refused change changed the template");
            }
            Ok(Outcome::Duplicate(_)) => prop_assert!(false, "not a resend"),
            Ok(Outcome::Accepted(a)) => {
                prop_assert!(a.entry.version == head.version.next());
                entries.push(a.entry.clone());
                head.commit(a);
                prop_assert!(head.doc.get("page").is_some_and(Value::is_object));
                // Another instance catching up from the log gets the same template.
                let mut other = Head::new(t, Version(1)).unwrap();
                other.catch_up(&entries).unwrap();
                prop_assert_eq!(other.template().unwrap(), head.template().unwrap());
            }
        }
    }
}

fn collect_uuids(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(id)) = m.get("uuid") {
                out.push(id.clone());
            }
            for x in m.values() {
                collect_uuids(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_uuids(x, out)),
        _ => {}
    }
}
