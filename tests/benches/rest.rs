//! Create + get through the REST handlers on the embedded store, for every fixture
//! template and a synthetic 1.5 MB one. `cargo bench -p coedit-tests --bench rest`

use std::hint::black_box;

use coedit::handlers::{create_session, get_session};
use coedit_tests::*;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

fn rest(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t = rt.block_on(TestApp::new(TestStore::memory()));
    let mut templates = fixture_templates();
    templates.push(("synthetic-1.5MB".into(), large_template(1_500_000)));

    let mut group = c.benchmark_group("rest");
    for (name, template) in &templates {
        let body = serde_json::to_vec(&json!({"template": template, "userid": "bench"})).unwrap();
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("create", name), &body, |b, body| {
            b.iter(|| {
                let res = rt.block_on(call(
                    &t.app,
                    create_session::handle,
                    Event::create_session(Some(&t.api_key), body.clone()),
                ));
                assert_eq!(res.status, 201);
                black_box(res)
            })
        });
        let created = rt.block_on(call(
            &t.app,
            create_session::handle,
            Event::create_session(Some(&t.api_key), body.clone()),
        ));
        let id = created.json()["sessionId"].as_str().unwrap().to_owned();
        group.bench_with_input(BenchmarkId::new("get", name), &id, |b, id| {
            b.iter(|| {
                let res = rt.block_on(call(
                    &t.app,
                    get_session::handle,
                    Event::get_session(Some(&t.api_key), id),
                ));
                assert_eq!(res.status, 200);
                black_box(res)
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = rest
}
criterion_main!(benches);
