//! The GPU optimiser (`shaders/optimizer.wgsl`) against its CPU twin (`twin::optimizer`):
//! the same norms, parameters and moments after several updates, for Adam with a cosine
//! schedule, SGD with momentum, and gradients large enough to overflow a plain sum of squares.

mod common;

use backdrive::engine::buffers::read_buffer;
use backdrive::engine::twin::optimizer::OptimizerTwin;
use backdrive::learn::optim::{GpuOptimizer, Method, OptimizerConfig, Schedule};

/// Relative difference, with an absolute floor for entries near zero.
fn close(a: f32, b: f32, tolerance: f32) -> bool {
    (a - b).abs() <= tolerance * (a.abs().max(b.abs()).max(1e-3))
}

#[test]
fn gpu_optimizer_matches_its_twin() {
    let gpu = common::gpu();
    // More parameters than the norm kernel's 256 lanes, and not a multiple of them.
    let n = 1000;
    let theta0: Vec<f32> = (0..n).map(|k| (k as f32 * 0.37).sin()).collect();
    let cases = [
        (
            "adam, cosine, clipped",
            Method::Adam {
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
            },
            Schedule::Cosine {
                iterations: 4,
                final_fraction: 0.1,
            },
            Some(1.0),
            3.0f32,
        ),
        (
            "sgd, unclipped",
            Method::Sgd { momentum: 0.9 },
            Schedule::Constant,
            None,
            0.01,
        ),
        (
            "adam, exploding gradients",
            Method::Adam {
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
            },
            Schedule::Constant,
            Some(1.0),
            3.0e25,
        ),
    ];
    for (name, method, schedule, max_norm, magnitude) in cases {
        let config = OptimizerConfig {
            method,
            learning_rate: 0.01,
            schedule,
            max_norm,
        };
        let theta_buf = common::storage_buffer(&gpu, &theta0);
        let grad_buf = common::storage_buffer(&gpu, &vec![0.0; n]);
        let mut gpu_opt = GpuOptimizer::new(gpu.clone(), config, &theta_buf, &grad_buf, n).unwrap();
        let mut twin = OptimizerTwin::new(config, n);
        let mut theta = theta0.clone();
        for step in 0..5 {
            let mut grads: Vec<f32> = (0..n)
                .map(|k| ((k * 7 + step * 13) as f32 * 0.11).cos() * magnitude)
                .collect();
            gpu.queue
                .write_buffer(&grad_buf, 0, bytemuck::cast_slice(&grads));
            let gpu_norm = gpu_opt.update(0.5).unwrap();
            let twin_norm = twin.update(&mut theta, &mut grads, 0.5);
            assert!(
                close(gpu_norm, twin_norm, 1e-6),
                "{name}, update {step}: norm {gpu_norm} vs twin {twin_norm}"
            );
        }
        let gpu_theta = read_buffer(&gpu, &theta_buf).unwrap();
        let (gpu_first, gpu_second) = gpu_opt.moments().unwrap();
        // Parameters are compared by how far they moved: the device's `pow` is accurate to a
        // few ulp of `exp2(t log2(beta))` only, and Adam's bias correction `1 - beta2^t`
        // amplifies that error about a thousandfold at t = 1, so the steps agree to about
        // 1e-4 of their size while the moments agree to f32 rounding.
        let mut worst = [0.0f32; 3];
        for k in 0..n {
            let moved = [
                (gpu_theta[k] - theta0[k], theta[k] - theta0[k], 1e-3),
                (gpu_first[k], twin.first[k], 1e-5),
                (gpu_second[k], twin.second[k], 1e-5),
            ];
            for (i, (a, b, tolerance)) in moved.into_iter().enumerate() {
                let what = ["parameter step", "first moment", "second moment"][i];
                assert!(
                    close(a, b, tolerance),
                    "{name}: {what} {k}: {a} vs twin {b}"
                );
                worst[i] = worst[i].max((a - b).abs() / a.abs().max(b.abs()).max(1e-3));
            }
        }
        assert_eq!(gpu_opt.step, twin.step);
        assert!(
            read_buffer(&gpu, &grad_buf)
                .unwrap()
                .iter()
                .all(|g| *g == 0.0)
        );
        println!(
            "{name}: worst relative differences: steps {:e}, first moments {:e}, second moments {:e}",
            worst[0], worst[1], worst[2]
        );
    }
}
