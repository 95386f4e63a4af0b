//! Criterion benchmarks of the forward step: the GPU simulator for the quadruped at N = 1 and
//! 128, and the CPU twin of one instance. Sample sizes are small so that this also finishes on
//! a CPU Vulkan driver (lavapipe). Run with `cargo bench --bench step`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use backdrive::gpu::Gpu;
use backdrive::layout::Compiled;
use backdrive::twin::Instance;
use backdrive::{Simulator, models};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Steps per measured iteration of the GPU benchmarks (one submit and one wait).
const GPU_STEPS: u32 = 10;

fn gpu_step(c: &mut Criterion) {
    let gpu = match Gpu::new() {
        Ok(gpu) => Arc::new(gpu),
        Err(e) => {
            eprintln!("skipping the GPU benchmarks: {e}");
            return;
        }
    };
    eprintln!("adapter: {}", gpu.describe());
    let model = models::builtin("quadruped").expect("the shipped quadruped loads");
    let mut group = c.benchmark_group("gpu_step_quadruped");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        // One iteration of N = 128 takes about 0.3-0.5 s on lavapipe with 2 cores.
        .measurement_time(Duration::from_secs(10));
    for n in [1usize, 128] {
        let mut sim = Simulator::new(gpu.clone(), &model, n).expect("simulator");
        sim.step(GPU_STEPS).expect("warm-up step");
        group.throughput(Throughput::Elements(n as u64 * u64::from(GPU_STEPS)));
        group.bench_function(format!("n{n}_x{GPU_STEPS}_steps"), |b| {
            b.iter(|| sim.step(black_box(GPU_STEPS)).expect("step"))
        });
    }
    group.finish();
}

fn twin_step(c: &mut Criterion) {
    let model = models::builtin("quadruped").expect("the shipped quadruped loads");
    let compiled = Compiled::new(&model);
    let mut group = c.benchmark_group("twin_step_quadruped");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    group.bench_function("f32_one_step", |b| {
        let mut twin = Instance::<f32>::new(&compiled);
        b.iter(|| {
            twin.step();
            black_box(&twin.state);
        })
    });
    group.bench_function("f64_one_step", |b| {
        let mut twin = Instance::<f64>::new(&compiled);
        b.iter(|| {
            twin.step();
            black_box(&twin.state);
        })
    });
    group.finish();
}

criterion_group!(benches, gpu_step, twin_step);
criterion_main!(benches);
