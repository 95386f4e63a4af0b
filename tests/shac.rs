//! The short-horizon actor-critic: windows continue the batch's states, its actor gradient
//! against finite differences, determinism and bit-identical resume, bad settings.

mod common;

use backdrive::engine::layout::Compiled;
use backdrive::engine::twin::Instance;
use backdrive::learn::algorithm::{Algorithm, ShacSettings};
use backdrive::learn::shac::ShacTrainer;
use backdrive::learn::tasks::{self, Task};
use backdrive::learn::train::TrainOptions;

fn options(instances: usize, seed: u64) -> TrainOptions {
    TrainOptions {
        instances,
        seed,
        max_chunk: None,
    }
}

fn small_settings(window: u32) -> ShacSettings {
    ShacSettings {
        window,
        critic_hidden: vec![8],
        critic_iterations: 2,
        critic_minibatches: 2,
        ..ShacSettings::default()
    }
}

/// `quadruped-run` cut to episodes of `horizon` steps, windows of `window`, a small policy.
fn small_run(horizon: u32, window: u32) -> Task {
    let mut task = tasks::builtin("quadruped-run").unwrap();
    task.horizon = horizon;
    task.policy.hidden = vec![8];
    task.algorithm = Algorithm::Shac(small_settings(window));
    task
}

/// The untrained policy commands zero, so an episode run as windows must be the plain rollout
/// of the model with zero commands: every window starts where the previous one ended.
#[test]
fn windows_continue_from_the_previous_windows_end_states() {
    let task = small_run(12, 4);
    let mut trainer = ShacTrainer::new(common::gpu(), task.clone(), options(2, 1)).unwrap();
    let frames = trainer.record_raw(1).unwrap();
    assert_eq!(frames.len(), 13, "the initial state and 12 steps");
    let compiled = Compiled::new(&task.model);
    let state_len = compiled.header.state_len as usize;
    let mut inst = Instance::<f64>::new(&compiled);
    inst.params = task
        .randomization
        .apply(&compiled, 1, 0, 0)
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    for (t, frame) in frames.iter().enumerate() {
        let gpu = &frame[..state_len];
        let worst = gpu
            .iter()
            .zip(&inst.state)
            .map(|(a, b)| (f64::from(*a) - b).abs())
            .fold(0.0, f64::max);
        assert!(
            worst < 1e-3,
            "step {t}: GPU windows differ from the twin by {worst}"
        );
        inst.step();
    }
}

/// The actor's gradient (through the window by the adjoint, plus the critic's bootstrap at its
/// end, through the observation normalisation) against central differences of the actor loss,
/// on the arm (no contacts, so the loss is smooth at the scale of the difference step).
#[test]
fn actor_gradient_matches_finite_differences() {
    let mut task = tasks::builtin("arm-reach").unwrap();
    task.horizon = 12;
    task.policy.hidden = vec![8];
    task.algorithm = Algorithm::Shac(small_settings(6));
    let mut trainer = ShacTrainer::new(common::gpu(), task, options(2, 3)).unwrap();
    // One window first: the statistics, the critic and the policy's output layer move off their
    // initial values, and the next window starts mid-episode.
    trainer.step().unwrap();
    assert!(trainer.observation_stats().count > 0.0);
    let theta = trainer.params().to_vec();
    let (loss, g) = trainer.actor_gradient().unwrap();
    let (again, g2) = trainer.actor_gradient().unwrap();
    assert_eq!(
        loss.to_bits(),
        again.to_bits(),
        "the gradient pass changes nothing"
    );
    assert_eq!(g, g2);
    for d in 0..3u64 {
        let dir: Vec<f64> = (0..theta.len())
            .map(|k| backdrive::learn::random::unit_random(d + 11, 0, k as u64) - 0.5)
            .collect();
        let norm = dir.iter().map(|v| v * v).sum::<f64>().sqrt();
        let h = 1e-3;
        let at = |s: f64| -> Vec<f32> {
            theta
                .iter()
                .zip(&dir)
                .map(|(t, v)| (f64::from(*t) + s * h * v / norm) as f32)
                .collect()
        };
        trainer.set_params(&at(1.0)).unwrap();
        let plus = trainer.actor_gradient().unwrap().0;
        trainer.set_params(&at(-1.0)).unwrap();
        let minus = trainer.actor_gradient().unwrap().0;
        trainer.set_params(&theta).unwrap();
        let fd = (plus - minus) / (2.0 * h);
        let adjoint: f64 = g.iter().zip(&dir).map(|(a, b)| a * b / norm).sum();
        assert!(
            (fd - adjoint).abs() < 2e-2 * fd.abs().max(adjoint.abs()) + 1e-5,
            "direction {d}: adjoint {adjoint} vs differences {fd}"
        );
    }
}

/// Two runs give the same bits, and a run saved mid-episode and resumed ends with the bits of
/// the uninterrupted one: policy, critic, statistics and every window's loss.
#[test]
fn training_is_deterministic_and_resumes_bit_for_bit() {
    let task = small_run(15, 5);
    let gpu = common::gpu();
    let run = |windows: u32| {
        let mut t = ShacTrainer::new(gpu.clone(), task.clone(), options(3, 7)).unwrap();
        let losses: Vec<u32> = (0..windows)
            .map(|_| t.step().unwrap().loss.to_bits())
            .collect();
        (t, losses)
    };
    let (whole, whole_losses) = run(5);
    let (again, again_losses) = run(5);
    assert_eq!(whole_losses, again_losses);
    assert_eq!(whole.params(), again.params());

    let dir = std::env::temp_dir().join(format!("backdrive-shac-resume-{}", std::process::id()));
    let (first, mut losses) = run(2);
    first.save(&dir).unwrap();
    let info = ShacTrainer::checkpoint_info(&dir).unwrap();
    assert_eq!((info.iteration, info.instances, info.seed), (2, 3, 7));
    let mut resumed = ShacTrainer::new(gpu.clone(), task.clone(), options(3, 99)).unwrap();
    resumed.load(&dir).unwrap();
    for _ in 0..3 {
        losses.push(resumed.step().unwrap().loss.to_bits());
    }
    assert_eq!(losses, whole_losses, "every window's loss, resumed or not");
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(resumed.params()), bits(whole.params()));
    let critic_bits = |t: &ShacTrainer| {
        let c = t.critic();
        let (m, v) = c.moments().unwrap();
        [c.params().unwrap(), c.target_params().unwrap(), m, v]
            .iter()
            .map(|x| bits(x))
            .collect::<Vec<_>>()
    };
    assert_eq!(critic_bits(&resumed), critic_bits(&whole));
    assert_eq!(resumed.critic().updates(), whole.critic().updates());
    assert_eq!(resumed.observation_stats(), whole.observation_stats());
    assert_eq!(resumed.iteration(), 5);

    // A damaged checkpoint is refused with its path.
    let path = ShacTrainer::checkpoint_path(&dir);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let message = resumed.load(&dir).unwrap_err().to_string();
    assert!(message.contains("checkpoint.bin"), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn settings_the_episode_cannot_hold_are_refused() {
    let gpu = common::gpu();
    let Err(e) = ShacTrainer::new(gpu.clone(), small_run(10, 4), options(1, 1)) else {
        panic!("a window of 4 does not divide 10 steps")
    };
    assert!(e.to_string().contains("must divide"), "{e}");
    let Err(e) = ShacTrainer::new(gpu, tasks::builtin("quadruped").unwrap(), options(1, 1)) else {
        panic!("quadruped trains by backpropagation")
    };
    assert!(e.to_string().contains("does not use"), "{e}");
}

/// A checkpoint of format 1 (its critic ran on the host in f64) is refused with its path and
/// the reason, not read as if its numbers were the GPU critic's.
#[test]
fn checkpoints_of_the_host_critic_format_are_refused_clearly() {
    let dir = std::env::temp_dir().join(format!("backdrive-shac-v1-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = ShacTrainer::checkpoint_path(&dir);
    std::fs::write(&path, b"BDSHAC01\x02\x00\x00\x00{}").unwrap();
    let message = ShacTrainer::checkpoint_info(&dir).unwrap_err().to_string();
    assert!(
        message.contains("checkpoint.bin") && message.contains("format 1"),
        "{message}"
    );
    let mut trainer = ShacTrainer::new(common::gpu(), small_run(10, 5), options(1, 1)).unwrap();
    let message = trainer.load(&dir).unwrap_err().to_string();
    assert!(message.contains("format 1"), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}
