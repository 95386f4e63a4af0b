//! Criterion benchmarks of the per-step kernels: the GPU forward step for the quadruped at N = 1
//! and 128; one differentiable step (a horizon-1 `Rollout`: the forward kernel with its loss,
//! then the adjoint kernel, which recomputes the step's solver sweeps) at N = 1 and 16, forward
//! alone and forward plus backward; and the CPU twin of one instance. Sample sizes are small so
//! that this also finishes on a CPU Vulkan driver (lavapipe). Run with
//! `cargo bench --bench step`; `cargo bench --bench step -- adjoint` runs only the adjoint group.

mod common;

use std::hint::black_box;
use std::time::Duration;

use backdrive::engine::layout::Compiled;
use backdrive::engine::twin::Instance;
use backdrive::{Simulator, io::models};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Steps per measured iteration of the GPU benchmarks (one submit and one wait).
const GPU_STEPS: u32 = 10;

fn gpu_step(c: &mut Criterion) {
    let Some(gpu) = common::gpu_or_skip("GPU benchmarks") else {
        return;
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

/// One differentiable step: horizon-1 rollouts of the quadruped with the loss on the torso's
/// final x, so that a change of the forward or the adjoint kernel shows.
fn gpu_adjoint_step(c: &mut Criterion) {
    use backdrive::grad::rollout::{Rollout, RolloutOptions};
    let Some(gpu) = common::gpu_or_skip("GPU adjoint benchmarks") else {
        return;
    };
    let model = models::builtin("quadruped").expect("the shipped quadruped loads");
    let loss = common::torso_final_x();
    let mut group = c.benchmark_group("gpu_adjoint_step_quadruped");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for n in [1usize, 16] {
        let mut rollout =
            Rollout::new(gpu.clone(), &model, n, &loss, RolloutOptions::new(1)).expect("rollout");
        let commands: Vec<f32> = (0..n * model.actuators.len())
            .map(|k| 0.1 * (k as f32).sin())
            .collect();
        rollout.set_commands(&commands).expect("commands");
        rollout.forward().expect("warm-up forward");
        rollout.backward().expect("warm-up backward");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("n{n}_forward"), |b| {
            b.iter(|| black_box(rollout.forward().expect("forward")))
        });
        group.bench_function(format!("n{n}_forward_backward"), |b| {
            b.iter(|| {
                rollout.forward().expect("forward");
                black_box(rollout.backward().expect("backward"))
            })
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

criterion_group!(benches, gpu_step, gpu_adjoint_step, twin_step);
criterion_main!(benches);
