//! Policy training: gradients through policy and physics, learning, determinism, resume,
//! and bad input.

mod common;

use backdrive::engine::layout::Compiled;
use backdrive::engine::twin::Instance;
use backdrive::grad::loss::loss_twin;
use backdrive::learn::policy::{PolicyLayout, observe_twin};
use backdrive::learn::tasks::{self, Task};
use backdrive::learn::train::{TrainOptions, Trainer};

fn options(instances: usize, seed: u64) -> TrainOptions {
    TrainOptions {
        instances,
        seed,
        max_chunk: None,
    }
}

/// Mean loss of the policy `theta` over the trainer's batch, by the f64 CPU twins.
fn twin_loss(
    task: &Task,
    layout: &PolicyLayout,
    trainer: &Trainer,
    theta: &[f32],
    n: usize,
) -> f64 {
    let compiled = Compiled::new(&task.model);
    let packed = task.loss.pack(&task.model).unwrap();
    let mut total = 0.0;
    for i in 0..n {
        let mut inst = Instance::<f64>::new(&compiled);
        inst.params = trainer
            .instance_params(i)
            .iter()
            .map(|&v| v.into())
            .collect();
        for t in 0..task.horizon {
            let obs = observe_twin(layout, &inst, t);
            let act = layout.forward(theta, &obs);
            inst.commands = act[layout.n_activations - layout.n_out..].to_vec();
            inst.step();
            total += loss_twin(
                &packed,
                task.loss.terms.len(),
                &inst,
                t + 1,
                task.horizon,
                None,
            );
        }
    }
    total / n as f64
}

/// Hidden width 6 runs the fused per-instance kernels; 262 (over FUSED_MAX_WIDTH, and not a
/// multiple of the kernels' 4 x 4 blocks) the batched layer kernels, with 2 instances in the
/// `_narrow` arrangement and 33 (a partial block past `WIDE_MIN_INSTANCES`) in the `_wide` one.
#[test]
fn policy_gradient_through_physics_matches_finite_differences() {
    const { assert!(33 >= backdrive::learn::policy::gpu::WIDE_MIN_INSTANCES) };
    for (width, n) in [(6, 2), (262, 2), (262, 33)] {
        policy_gradient_check(width, n);
    }
}

fn policy_gradient_check(width: usize, n: usize) {
    let mut task = tasks::builtin("cartpole-balance").unwrap();
    task.horizon = 40;
    task.policy.hidden = vec![width];
    let mut trainer = Trainer::new(common::gpu(), task.clone(), options(n, 5)).unwrap();
    let layout = trainer.layout().clone();
    assert_eq!(
        backdrive::learn::policy::gpu::runs_fused(&layout, &common::gpu().limits),
        width <= backdrive::learn::policy::gpu::FUSED_MAX_WIDTH
    );
    // Move away from the zero output layer so that every parameter matters.
    for _ in 0..3 {
        trainer.step().unwrap();
    }
    let theta = trainer.params().unwrap();
    let (gpu_loss, grad) = trainer.gradient().unwrap();
    let reference = twin_loss(&task, &layout, &trainer, &theta, n);
    assert!(
        (f64::from(gpu_loss) - reference).abs() < 1e-3 * (1.0 + reference.abs()),
        "{gpu_loss} vs {reference}"
    );
    let mut analytic = Vec::new();
    let mut numeric = Vec::new();
    for k in (0..layout.n_params).step_by(1 + layout.n_params / 40) {
        let h = 1e-3f32 * theta[k].abs().max(1.0);
        let (mut plus, mut minus) = (theta.clone(), theta.clone());
        plus[k] += h;
        minus[k] -= h;
        let fd = (twin_loss(&task, &layout, &trainer, &plus, n)
            - twin_loss(&task, &layout, &trainer, &minus, n))
            / (f64::from(plus[k]) - f64::from(minus[k]));
        analytic.push(f64::from(grad[k]));
        numeric.push(fd);
    }
    let dot: f64 = analytic.iter().zip(&numeric).map(|(a, b)| a * b).sum();
    let na = analytic.iter().map(|a| a * a).sum::<f64>().sqrt();
    let nn = numeric.iter().map(|a| a * a).sum::<f64>().sqrt();
    let diff = analytic
        .iter()
        .zip(&numeric)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        .sqrt();
    println!(
        "policy gradient, hidden width {width}, {n} instances: relative error {:.2e}, cosine {:.6}",
        diff / nn,
        dot / (na * nn)
    );
    assert!(
        dot / (na * nn) > 0.999 && diff / nn < 1e-2,
        "{analytic:?}\n{numeric:?}"
    );
}

#[test]
fn cartpole_balance_learns() {
    let mut task = tasks::builtin("cartpole-balance").unwrap();
    task.horizon = 100;
    let mut trainer = Trainer::new(common::gpu(), task, options(4, 1)).unwrap();
    let first = trainer.step().unwrap().loss;
    let mut last = first;
    for _ in 0..30 {
        last = trainer.step().unwrap().loss;
    }
    println!("cartpole-balance: loss {first:.4} -> {last:.4} in 31 iterations");
    // Stated threshold: the loss falls to below half its initial value.
    assert!(last < 0.5 * first, "{first} -> {last}");
}

#[test]
fn training_is_bit_identical_across_chunkings_and_when_resumed() {
    let mut task = tasks::builtin("cartpole-balance").unwrap();
    task.horizon = 30;
    let gpu = common::gpu();
    let run = |max_chunk: Option<usize>, iterations: u32| {
        let mut t = Trainer::new(
            gpu.clone(),
            task.clone(),
            TrainOptions {
                instances: 5,
                seed: 9,
                max_chunk,
            },
        )
        .unwrap();
        for _ in 0..iterations {
            t.step().unwrap();
        }
        t
    };
    let whole = run(None, 4).params().unwrap();
    let chunked = run(Some(2), 4).params().unwrap();
    assert_eq!(
        whole.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        chunked.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        "chunking changed the trained parameters"
    );
    let dir = std::env::temp_dir().join(format!("backdrive-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    run(None, 2).save(&dir).unwrap();
    let mut resumed = Trainer::new(gpu.clone(), task.clone(), options(5, 123)).unwrap();
    resumed.load(&dir).unwrap();
    assert_eq!(resumed.iteration(), 2);
    for _ in 0..2 {
        resumed.step().unwrap();
    }
    let resumed = resumed.params().unwrap();
    assert_eq!(
        whole.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        resumed.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        "a resumed run must end with the same bits"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A wide policy (batched layer kernels) gives the same bits whether its 40 instances run as
/// one chunk (the `_wide` kernels) or as chunks of 16 and 8 (the `_narrow` ones).
#[test]
fn wide_policy_training_is_bit_identical_across_kernel_arrangements() {
    let mut task = tasks::builtin("cartpole-balance").unwrap();
    task.horizon = 20;
    task.policy.hidden = vec![262];
    let gpu = common::gpu();
    let run = |max_chunk: Option<usize>| {
        let mut t = Trainer::new(
            gpu.clone(),
            task.clone(),
            TrainOptions {
                instances: 40,
                seed: 3,
                max_chunk,
            },
        )
        .unwrap();
        for _ in 0..3 {
            t.step().unwrap();
        }
        t.params().unwrap()
    };
    let whole = run(None);
    let chunked = run(Some(16));
    assert_eq!(
        whole.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        chunked.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        "the kernel arrangement changed the trained parameters"
    );
}

#[test]
fn bad_input_gives_clear_errors_and_leaves_files_alone() {
    let gpu = common::gpu();
    let err = tasks::builtin("hopscotch").unwrap_err();
    assert!(
        err.to_string().contains("unknown task") && err.to_string().contains("quadruped"),
        "{err}"
    );
    let task = tasks::builtin("cartpole-balance").unwrap();
    assert!(Trainer::new(gpu.clone(), task.clone(), options(0, 1)).is_err());

    let dir = std::env::temp_dir().join(format!("backdrive-badckpt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("checkpoint.json");
    std::fs::write(&json, "this is not json").unwrap();
    let mut t = Trainer::new(gpu.clone(), task.clone(), options(2, 1)).unwrap();
    let err = t.load(&dir).unwrap_err();
    assert!(err.to_string().contains("checkpoint.json"), "{err}");
    assert_eq!(std::fs::read_to_string(&json).unwrap(), "this is not json");

    // A checkpoint of another task is refused and left intact.
    let _ = std::fs::remove_dir_all(&dir);
    let mut arm = tasks::builtin("arm-reach").unwrap();
    arm.horizon = 5;
    let other = Trainer::new(gpu.clone(), arm, options(2, 1)).unwrap();
    other.save(&dir).unwrap();
    let before = std::fs::read(dir.join("checkpoint.bin")).unwrap();
    let err = t.load(&dir).unwrap_err();
    assert!(err.to_string().contains("arm-reach"), "{err}");
    assert_eq!(std::fs::read(dir.join("checkpoint.bin")).unwrap(), before);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The paper's largest controller (3 inputs, 3 x 1024 hidden, 4 outputs: 2,107,396 parameters)
/// runs through the batched layer kernels and gives a finite, non-zero gradient.
#[test]
fn a_two_million_parameter_policy_trains() {
    let mut task = tasks::builtin("arm-reach").unwrap();
    task.horizon = 8;
    task.policy.sensors.truncate(task.policy.sensors.len() - 1);
    task.policy.sensors.truncate(0);
    task.policy
        .sensors
        .push(backdrive::learn::policy::Sensor::Constant {
            value: [0.5, 0.5, 0.5],
        });
    task.policy.hidden = vec![1024, 1024, 1024];
    let mut trainer = Trainer::new(common::gpu(), task, options(2, 3)).unwrap();
    assert_eq!(trainer.layout().n_params, 2_107_396);
    assert!(!backdrive::learn::policy::gpu::runs_fused(
        trainer.layout(),
        &common::gpu().limits
    ));
    // The zero output layer gets a gradient at once; a step then moves the hidden layers too.
    trainer.step().unwrap();
    let (loss, grad) = trainer.gradient().unwrap();
    assert!(loss.is_finite());
    assert!(grad.iter().all(|g| g.is_finite()));
    let hidden = trainer.layout().layers[0];
    assert!(
        grad[hidden.w_offset..hidden.b_offset]
            .iter()
            .any(|g| *g != 0.0)
    );
}

/// The GPU optimiser against the textbook update computed on the CPU: Adam with bias
/// correction and global-norm clipping, and SGD with momentum.
#[test]
fn gpu_optimizer_matches_a_cpu_reference() {
    use backdrive::learn::optim::{GpuOptimizer, Method, OptimizerConfig, Schedule};
    let gpu = common::gpu();
    let n = 300;
    let theta0: Vec<f32> = (0..n).map(|k| (k as f32 * 0.37).sin()).collect();
    let grads: Vec<Vec<f32>> = (0..3)
        .map(|s| {
            (0..n)
                .map(|k| ((k * 7 + s * 13) as f32 * 0.11).cos() * 3.0)
                .collect()
        })
        .collect();
    let buffer = |data: &[f32]| common::storage_buffer(&gpu, data);
    for method in [
        Method::Adam {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        },
        Method::Sgd { momentum: 0.9 },
    ] {
        let config = OptimizerConfig {
            method,
            learning_rate: 0.01,
            schedule: Schedule::Constant,
            max_norm: Some(1.0),
        };
        let theta_buf = buffer(&theta0);
        let grad_buf = buffer(&vec![0.0; n]);
        let mut opt = GpuOptimizer::new(gpu.clone(), config, &theta_buf, &grad_buf, n).unwrap();
        let scale = 0.5f64;
        let (mut theta, mut m, mut v) = (
            theta0.iter().map(|x| f64::from(*x)).collect::<Vec<_>>(),
            vec![0.0f64; n],
            vec![0.0f64; n],
        );
        for (step, g) in grads.iter().enumerate() {
            gpu.queue
                .write_buffer(&grad_buf, 0, bytemuck::cast_slice(g));
            let norm = opt.update(scale as f32).unwrap();
            let gs: Vec<f64> = g.iter().map(|x| f64::from(*x) * scale).collect();
            let cpu_norm = gs.iter().map(|x| x * x).sum::<f64>().sqrt();
            assert!(
                (f64::from(norm) - cpu_norm).abs() < 1e-4 * cpu_norm,
                "{norm} vs {cpu_norm}"
            );
            let clip = if cpu_norm > 1.0 { 1.0 / cpu_norm } else { 1.0 };
            let t = (step + 1) as i32;
            for k in 0..n {
                let g = gs[k] * clip;
                match method {
                    Method::Adam {
                        beta1,
                        beta2,
                        epsilon,
                    } => {
                        let (b1, b2) = (f64::from(beta1), f64::from(beta2));
                        m[k] = b1 * m[k] + (1.0 - b1) * g;
                        v[k] = b2 * v[k] + (1.0 - b2) * g * g;
                        let mh = m[k] / (1.0 - b1.powi(t));
                        let vh = v[k] / (1.0 - b2.powi(t));
                        theta[k] -= 0.01 * mh / (vh.sqrt() + f64::from(epsilon));
                    }
                    Method::Sgd { momentum } => {
                        m[k] = f64::from(momentum) * m[k] + g;
                        theta[k] -= 0.01 * m[k];
                    }
                }
            }
        }
        let got = backdrive::engine::buffers::read_buffer(&gpu, &theta_buf).unwrap();
        for k in 0..n {
            assert!(
                (f64::from(got[k]) - theta[k]).abs() < 1e-5,
                "{method:?} param {k}: {} vs {}",
                got[k],
                theta[k]
            );
        }
        let zeroed = backdrive::engine::buffers::read_buffer(&gpu, &grad_buf).unwrap();
        assert!(
            zeroed.iter().all(|g| *g == 0.0),
            "the update clears the gradient"
        );
    }
}

/// Gradients that explode through contact reach 1e19 and more, where a plain sum of squares
/// overflows f32: the norm must stay finite (and right), clipping must bound the step, and a
/// NaN or infinite entry must still give a non-finite norm.
#[test]
fn gradient_norm_survives_exploding_gradients() {
    use backdrive::learn::optim::{GpuOptimizer, Method, OptimizerConfig, Schedule};
    let gpu = common::gpu();
    let n = 1000;
    let huge: Vec<f32> = (0..n).map(|k| ((k as f32) * 0.7).sin() * 3.0e25).collect();
    let buffer = |data: &[f32]| common::storage_buffer(&gpu, data);
    let config = OptimizerConfig {
        method: Method::Sgd { momentum: 0.0 },
        learning_rate: 0.1,
        schedule: Schedule::Constant,
        max_norm: Some(1.0),
    };
    let theta_buf = buffer(&vec![0.0; n]);
    let grad_buf = buffer(&huge);
    let mut opt = GpuOptimizer::new(gpu.clone(), config, &theta_buf, &grad_buf, n).unwrap();
    let norm = opt.update(1.0).unwrap();
    let want = huge
        .iter()
        .map(|g| f64::from(*g).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!(
        norm.is_finite() && (f64::from(norm) - want).abs() < 1e-4 * want,
        "{norm} vs {want}"
    );
    // Clipped to norm 1, the SGD step has norm 0.1.
    let theta = backdrive::engine::buffers::read_buffer(&gpu, &theta_buf).unwrap();
    let step = theta
        .iter()
        .map(|t| f64::from(*t).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!((step - 0.1).abs() < 1e-4, "step norm {step}");
    let mut broken = huge.clone();
    broken[17] = f32::INFINITY;
    gpu.queue
        .write_buffer(&grad_buf, 0, bytemuck::cast_slice(&broken));
    assert!(!opt.update(1.0).unwrap().is_finite());
    broken[17] = f32::NAN;
    gpu.queue
        .write_buffer(&grad_buf, 0, bytemuck::cast_slice(&broken));
    assert!(!opt.update(1.0).unwrap().is_finite());
}

/// `arm-reach-random` moves every robot (initial state and the anchor of its weld to the world)
/// by its own random vector: after 0.2 s with zero commands each one stands where it was put.
#[test]
fn shifted_robots_stand_where_they_were_moved() {
    let mut task = tasks::builtin("arm-reach-random").unwrap();
    task.horizon = 20;
    let model = task.model.clone();
    let mut trainer = Trainer::new(common::gpu(), task, options(4, 1)).unwrap();
    let frames = trainer.record(20).unwrap();
    let last = frames.last().unwrap();
    assert_eq!(last.len(), 4 * model.bodies.len());
    let stride = model.bodies.len();
    let mut displacements = Vec::new();
    for i in 0..4 {
        let d = trainer.instance_displacement(i);
        assert!(d.iter().any(|v| v.abs() > 1e-3), "{d:?}");
        for name in ["pedestal", "forearm"] {
            let b = model.body_index(name).unwrap();
            let p0 = model.bodies[b].position;
            let p = last[i * stride + b].position;
            for k in 0..3 {
                assert!(
                    (p[k] - p0[k] - d[k]).abs() < 0.01,
                    "instance {i} {name}: {p:?} vs {p0:?} + {d:?}"
                );
            }
        }
        displacements.push(d);
    }
    assert_ne!(displacements[0], displacements[1]);
}

/// A checkpoint is one file; one of the earlier layout (`checkpoint.json` beside the raw
/// numbers in `checkpoint.bin`) still resumes, and the next save replaces it by the one file.
#[test]
fn a_checkpoint_is_one_file_and_the_earlier_two_file_layout_still_loads() {
    let gpu = common::gpu();
    let mut task = tasks::builtin("cartpole-balance").unwrap();
    task.horizon = 10;
    let mut t = Trainer::new(gpu.clone(), task.clone(), options(2, 7)).unwrap();
    t.step().unwrap();
    let dir = std::env::temp_dir().join(format!("backdrive-layout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    t.save(&dir).unwrap();
    let names = |dir: &std::path::Path| {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&dir), ["checkpoint.bin"]);
    let info = Trainer::checkpoint_info(&dir).unwrap();
    assert_eq!((info.iteration, info.instances, info.seed), (1, 2, 7));

    // Split it into the earlier layout.
    let bytes = std::fs::read(dir.join("checkpoint.bin")).unwrap();
    assert!(bytes.starts_with(backdrive::learn::train::CHECKPOINT_MAGIC));
    let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    std::fs::write(dir.join("checkpoint.json"), &bytes[12..12 + len]).unwrap();
    std::fs::write(dir.join("checkpoint.bin"), &bytes[12 + len..]).unwrap();
    let mut resumed = Trainer::new(gpu.clone(), task.clone(), options(2, 1)).unwrap();
    resumed.load(&dir).unwrap();
    assert_eq!(resumed.iteration(), 1);
    assert_eq!(
        resumed
            .params()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>(),
        t.params()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    );
    resumed.save(&dir).unwrap();
    assert_eq!(names(&dir), ["checkpoint.bin"]);
    assert_eq!(std::fs::read(dir.join("checkpoint.bin")).unwrap(), bytes);

    // A torn file is refused with its path.
    std::fs::write(dir.join("checkpoint.bin"), &bytes[..bytes.len() - 3]).unwrap();
    let err = Trainer::checkpoint_info(&dir).unwrap_err().to_string();
    assert!(
        err.contains("checkpoint.bin") && err.contains("damaged"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
