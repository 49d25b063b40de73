//! Messages per second the router moves: clients send requests to the `lin-kv` service
//! through the real router task (count, network decision, delay queue, service, delivery
//! back to the client), 64 in flight per client, no latency. Node processes are left out:
//! what is measured is sunder's share of each message's cost.
//!
//! `cargo bench -p sunder-maelstrom --bench routing`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const CLIENTS: usize = 8;
const REQUESTS: u64 = 2_000;

fn routing(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("router");
    // A request and its reply per operation.
    g.throughput(Throughput::Elements(CLIENTS as u64 * REQUESTS * 2));
    g.sample_size(20);
    g.bench_function("client-service round trips", |b| {
        b.iter(|| {
            let routed = rt.block_on(sunder_maelstrom::run::route_only(CLIENTS, REQUESTS, 64));
            assert_eq!(routed, CLIENTS as u64 * REQUESTS * 2);
        })
    });
    g.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);
