//! Model loading and compilation time against model size (issue 18 item 15): a chain of N
//! capsule links with a hinge and a servo each, as TOML and as MJCF, parsed, validated and
//! compiled. Linear loading keeps 100k bodies within seconds (it was 246 s).
//!
//! `cargo bench --bench load`

#[path = "../tests/common/large_models.rs"]
mod large_models;

use std::time::Duration;

use backdrive::Model;
use backdrive::engine::layout::Compiled;
use backdrive::io::mjcf::{self, MjcfOptions};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn load(c: &mut Criterion) {
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for n in [1_000usize, 10_000, 100_000] {
        group.throughput(Throughput::Elements(n as u64));
        let toml = large_models::chain_toml(n);
        group.bench_with_input(BenchmarkId::new("toml", n), &toml, |b, text| {
            b.iter(|| Compiled::new(&Model::from_toml_str(text, None).unwrap()))
        });
        let xml = large_models::chain_mjcf(n);
        group.bench_with_input(BenchmarkId::new("mjcf", n), &xml, |b, text| {
            b.iter(|| {
                let import = mjcf::from_str(text, None, &MjcfOptions::default()).unwrap();
                Compiled::new(&import.model)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, load);
criterion_main!(benches);
