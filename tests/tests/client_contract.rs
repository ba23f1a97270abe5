//! What the browser client relies on from the server: a newcomer learns who is
//! here in one message, an ack carries the ops as applied when they differ from
//! the ones sent (so the sender's copy equals the server's), and a user's color
//! can carry nothing but a color. Both stores.

use coedit::handlers::join_session;
use coedit_tests::*;
use serde_json::{Value, json};

both_stores!(
    a_newcomer_learns_who_is_here,
    an_ack_says_how_a_change_was_applied,
    a_user_color_is_a_color,
);

async fn a_newcomer_learns_who_is_here(store: TestStore) {
    let t = TestApp::new(store).await;
    let id = t.create_session().await;
    let ann = t.connect(&id, &ws::user(1)).await;
    let bob = t.connect(&id, &ws::user(2)).await;
    let answer = t.send(&bob, &json!({"action": "presence"})).await;
    assert_eq!(answer["type"], "sessionChange", "{answer}");
    assert_eq!(answer["change"]["type"], "USER_JOINED");
    assert_eq!(answer["change"]["value"]["userId"], "user-2");
    let users = answer["sessionData"]["users"].as_object().unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[&ann.id]["username"], "User 1");
    assert_eq!(users[&bob.id]["username"], "User 2");
}

fn template() -> Value {
    json!({"page": {"rows": [
        {"uuid": "r1", "columns": [{"modules": [{"uuid": "m1", "descriptor": {"text": {"html": "a"}}}]}]}
    ]}})
}

async fn an_ack_says_how_a_change_was_applied(store: TestStore) {
    let t = TestApp::new(store).await;
    let id = t.create_session_from(&template()).await;
    let ann = t.connect(&id, &ws::user(1)).await;
    let bob = t.connect(&id, &ws::user(2)).await;
    let text = "/page/rows/0/columns/0/modules/0/descriptor/text/html";

    // Applied as sent: no diff.
    let ack = t
        .send(
            &ann,
            &json!({"action": "edit", "changeId": "a1", "baseVersion": 1,
            "patch": [{"op": "replace", "path": text, "value": "b"}]}),
        )
        .await;
    assert_eq!(ack, json!({"type": "ack", "changeId": "a1", "version": 2}));

    // Bob, still at 1, inserts a row before it: rebased, the ack says where.
    let ack = t
        .send(&bob, &json!({"action": "edit", "changeId": "b1", "baseVersion": 2,
            "patch": [{"op": "add", "path": "/page/rows/0", "value": {"uuid": "r0", "columns": []}}]}))
        .await;
    assert_eq!(ack["version"], 3);
    assert!(ack.get("diff").is_none(), "{ack}");
    let ack = t
        .send(
            &ann,
            &json!({"action": "edit", "changeId": "a2", "baseVersion": 2,
            "patch": [{"op": "replace", "path": text, "value": "c"}]}),
        )
        .await;
    assert_eq!(ack["version"], 4);
    let moved = "/page/rows/1/columns/0/modules/0/descriptor/text/html";
    assert_eq!(
        ack["diff"],
        json!([{"op": "replace", "path": moved, "value": "c"}])
    );

    // An append: `-` resolved to the index it landed at.
    let ack = t
        .send(&ann, &json!({"action": "edit", "changeId": "a3", "baseVersion": 4,
            "patch": [{"op": "add", "path": "/page/rows/-", "value": {"uuid": "r9", "columns": []}}]}))
        .await;
    assert_eq!(ack["diff"][0]["path"], "/page/rows/2", "{ack}");

    // Replaying what the sender knows gives the server's template.
    let mut mine = with_comments(&template());
    for ops in [
        json!([{"op": "replace", "path": text, "value": "b"}]),
        json!([{"op": "add", "path": "/page/rows/0", "value": {"uuid": "r0", "columns": []}}]),
        json!([{"op": "replace", "path": moved, "value": "c"}]),
        ack["diff"].clone(),
    ] {
        let ops = coedit::patch::parse(&ops).unwrap();
        let size = coedit::patch::json_bytes(&mine);
        coedit::patch::apply(&mut mine, size, &ops).unwrap();
    }
    let got = t.get(&t.api_key, &id).await.json();
    assert_eq!(got["template"], mine);
}

async fn a_user_color_is_a_color(store: TestStore) {
    let t = TestApp::new(store).await;
    let id = t.create_session().await;
    for (color, status) in [
        ("#c0ffee", 200),
        ("Teal", 200),
        ("red;background:url(https://evil.example)", 400),
        ("\"><script>alert(1)</script>", 400),
        ("rgb(1,2,3)", 400),
    ] {
        let body = json!({"userId": "u", "username": "U", "userColor": color});
        let res = call(
            &t.app,
            join_session::handle,
            Event::join_session(Some(&t.api_key), &id, body.to_string()),
        )
        .await;
        assert_eq!(res.status, status, "{color}: {}", res.body);
        if status == 400 {
            res.assert_error(400, 4000, "userColor: must be a hex color");
        }
    }
}
