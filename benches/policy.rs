//! Criterion benchmarks of the batched policy kernels: the paper's 1,147,904-parameter
//! controller (Table 1) on the quadruped, four steps with the policy in the loop, forward alone
//! and forward plus backward (the recomputed policy forward, the input deltas and the weight
//! gradients), for 1 robot (the `_narrow` dense kernels) and 128 robots (the `_wide` ones).
//! Run with `cargo bench --bench policy`.

mod common;

use std::hint::black_box;
use std::time::Duration;

use backdrive::grad::rollout::{Rollout, RolloutOptions};
use backdrive::learn::policy::PolicyLayout;
use backdrive::learn::policy::gpu::PolicyKernels;
use backdrive::{io::models, reproduce::table1};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const STEPS: u32 = 4;

fn large_policy(c: &mut Criterion) {
    let Some(gpu) = common::gpu_or_skip("policy benchmarks") else {
        return;
    };
    let model = models::builtin("quadruped").expect("the shipped quadruped loads");
    let layout = PolicyLayout::new(&table1::policy_spec(&model, true), &model).expect("layout");
    let loss = common::torso_final_x();
    let mut group = c.benchmark_group("policy_large");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    for n in [1usize, 128] {
        let mut options = RolloutOptions::new(STEPS);
        options.command_gradients = false;
        let mut rollout = Rollout::new(gpu.clone(), &model, n, &loss, options).expect("rollout");
        let kernels = PolicyKernels::new(&gpu, &layout, &rollout, &layout.init_params(1))
            .expect("policy kernels");
        rollout.set_hook(Box::new(kernels));
        rollout.forward().expect("warm-up forward");
        rollout.backward().expect("warm-up backward");
        group.throughput(Throughput::Elements(n as u64 * u64::from(STEPS)));
        group.bench_function(format!("n{n}_forward_x{STEPS}_steps"), |b| {
            b.iter(|| black_box(rollout.forward().expect("forward")))
        });
        group.bench_function(format!("n{n}_forward_backward_x{STEPS}_steps"), |b| {
            b.iter(|| {
                rollout.forward().expect("forward");
                black_box(rollout.backward().expect("backward"))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, large_policy);
criterion_main!(benches);
