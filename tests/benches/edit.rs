//! Deciding one module-text change on a warm template: rebase over one missed
//! change, lock check, apply, history entry with its diff, then roll back so every
//! iteration starts alike. On the 163 KB playground fixture and a 1.5 MB template,
//! beside a plain clone of the template for scale (a change must cost far less).
//! `cargo bench -p coedit-tests --bench edit`

use std::hint::black_box;

use coedit::clock::Timestamp;
use coedit::session::change::{Author, Edit, Head, Outcome};
use coedit::session::{Template, User, Version};
use coedit_tests::*;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

fn first_module(template: &Value) -> String {
    for (r, row) in template["page"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        for (c, col) in row["columns"].as_array().into_iter().flatten().enumerate() {
            if col["modules"].as_array().is_some_and(|m| !m.is_empty()) {
                return format!("/page/rows/{r}/columns/{c}/modules/0");
            }
        }
    }
    panic!("no module")
}

fn edit(c: &mut Criterion) {
    let user = User {
        user_id: "u1".into(),
        username: "User 1".into(),
        user_color: "#123456".into(),
        role: Default::default(),
    };
    let templates = [
        ("playground-163KB", fixture("playground-template.json")),
        ("synthetic-1.5MB", large_template(1_500_000)),
    ];
    let mut group = c.benchmark_group("edit");
    for (name, template) in templates {
        let template =
            Template::prepare(template, "/template", coedit::patch::Limits::default()).unwrap();
        let mut head = Head::new(&template, Version(1)).unwrap();
        let doc = head.doc.clone();
        let module = first_module(&doc);
        // One change the sender has not seen: an insert of a row before its module.
        let missed = Edit::new(
            "missed".into(),
            1,
            &json!([{"op": "add", "path": "/page/rows/0", "value": {"uuid": "new-row", "columns": []}}]),
            "Row added".into(),
            "row".into(),
        )
        .unwrap();
        let Outcome::Accepted(a) = head
            .accept(&missed, &by(&user, "other"), |_| None, &[], Timestamp(0))
            .unwrap()
        else {
            panic!()
        };
        head.commit(a);
        let html = format!("<p style=\"margin:0\">{}</p>", "lorem ipsum ".repeat(25));
        let change = Edit::new(
            "c1".into(),
            1,
            &json!([{"op": "replace", "path": format!("{module}/descriptor"), "value": {"text": {"html": html}}}]),
            "Text changed".into(),
            "text".into(),
        )
        .unwrap();
        group.bench_function(BenchmarkId::new("rebase-apply-diff", name), |b| {
            b.iter(|| {
                let outcome = head
                    .accept(&change, &by(&user, "me"), |_| None, &[], Timestamp(0))
                    .unwrap();
                let Outcome::Accepted(a) = outcome else {
                    panic!()
                };
                black_box(&a.entry);
                head.roll_back(a);
            })
        });
        group.bench_function(BenchmarkId::new("clone-template-for-scale", name), |b| {
            b.iter(|| black_box(doc.clone()))
        });
    }
    group.finish();
}

criterion_group!(benches, edit);
criterion_main!(benches);

/// A change's author: `user` on connection `connection`.
fn by<'a>(user: &'a User, connection: &'a str) -> Author<'a> {
    Author {
        user,
        connection: Some(connection),
    }
}
