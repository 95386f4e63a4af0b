//! The short-horizon actor-critic: windows continue the batch's states, its actor gradient
//! against finite differences, determinism and bit-identical resume, bad settings.

mod common;

use backdrive::engine::layout::Compiled;
use backdrive::engine::twin::Instance;
use backdrive::learn::algorithm::{Algorithm, ShacSettings};
use backdrive::learn::shac::ShacTrainer;
use backdrive::learn::shac::critic_state_slots;
use backdrive::learn::tasks::{self, Task, Termination};
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
    // Robot 0's start in episode 0 (seed 1): the task's randomised joints, if it has them.
    inst.state = task
        .randomization
        .initial_state(&task.model, &compiled.initial_state, 1, 0, 0)
        .iter()
        .map(|&v| f64::from(v))
        .collect();
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
    actor_gradient_against_differences(1.0, 0.0);
}

/// The same with exploration noise on the commands ([`ShacSettings::action_noise`]): the
/// reparameterised noise (drawn from the window's key, the same in every evaluation of the
/// window) leaves the gradient exact.
#[test]
fn actor_gradient_with_action_noise_matches_finite_differences() {
    actor_gradient_against_differences(2.5, 0.4);
}

/// The same with the commands scaled ([`ShacSettings::action_scale`]): the output layer's
/// rewrite and its gradient's chain rule agree with the differences.
#[test]
fn actor_gradient_with_scaled_commands_matches_finite_differences() {
    actor_gradient_against_differences(2.5, 0.0);
}

fn actor_gradient_against_differences(action_scale: f32, action_noise: f32) {
    let mut task = tasks::builtin("arm-reach").unwrap();
    task.horizon = 12;
    task.policy.hidden = vec![8];
    task.algorithm = Algorithm::Shac(ShacSettings {
        action_scale,
        action_noise,
        ..small_settings(6)
    });
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
            "scale {action_scale}, noise {action_noise}, direction {d}: adjoint {adjoint} vs \
             differences {fd}"
        );
    }
}

/// Two runs give the same bits, and a run saved mid-episode and resumed ends with the bits of
/// the uninterrupted one: policy, critic, statistics and every window's loss.
#[test]
fn training_is_deterministic_and_resumes_bit_for_bit() {
    let mut task = small_run(15, 5);
    // With exploration noise on a schedule and randomised initial joints: both are drawn from
    // counter-based keys, so a resumed run draws what the uninterrupted one did.
    task.algorithm = Algorithm::Shac(ShacSettings {
        action_noise: 0.3,
        action_noise_final: Some(0.1),
        ..small_settings(5)
    });
    task.randomization.joint_angle = Some((-0.1, 0.1));
    task.randomization.joint_speed = Some((-0.3, 0.3));
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
    for action_scale in [0.0, -1.0, f32::NAN] {
        let mut task = small_run(12, 4);
        task.algorithm = Algorithm::Shac(ShacSettings {
            action_scale,
            ..small_settings(4)
        });
        let Err(e) = ShacTrainer::new(common::gpu(), task, options(1, 1)) else {
            panic!("action_scale {action_scale} accepted")
        };
        assert!(e.to_string().contains("action_scale"), "{e}");
    }
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

/// The critic's final-state seed of the actor's adjoint is the gradient of the target critic's
/// value of the raw state: against central differences of that value in each critic input.
#[test]
fn the_bootstrap_seed_is_the_gradient_of_the_target_critics_value() {
    let task = small_run(12, 4);
    let mut trainer = ShacTrainer::new(common::gpu(), task.clone(), options(2, 5)).unwrap();
    // Two windows: the feature statistics and the target critic move off their initial values.
    trainer.step().unwrap();
    trainer.step().unwrap();
    let state_len = Compiled::new(&task.model).header.state_len as usize;
    let state = trainer.states()[..state_len].to_vec();
    let (value, ds) = trainer.bootstrap_gradient(&state).unwrap();
    assert_eq!(value, trainer.target_value(&state).unwrap());
    let slots = critic_state_slots(task.model.bodies.len());
    assert_eq!(ds.len(), slots.len());
    let mut checked = 0;
    for (k, &slot) in slots.iter().enumerate() {
        // A step of 1% of the input's scale: the value's curvature stays out of the 1e-3.
        let h = (1e-2 * trainer.feature_stats().std(k)) as f32;
        let mut plus = state.clone();
        plus[slot] += h;
        let mut minus = state.clone();
        minus[slot] -= h;
        let step = f64::from(plus[slot]) - f64::from(minus[slot]);
        let fd =
            (trainer.target_value(&plus).unwrap() - trainer.target_value(&minus).unwrap()) / step;
        assert!(
            (fd - ds[k]).abs() < 1e-3 * fd.abs().max(ds[k].abs()) + 1e-6,
            "input {k} (raw slot {slot}): seed {} vs differences {fd}",
            ds[k]
        );
        checked += usize::from(fd.abs() > 1e-4);
    }
    assert!(checked > slots.len() / 2, "the value depends on its inputs");
}

/// A robot whose torso leaves the termination range earns nothing after it, is not
/// bootstrapped, and starts the next window from the initial state with new parameters; the
/// others go on. Checked against the rewards, terminations and values recomputed from the same
/// window's recorded states.
#[test]
fn a_terminated_robot_is_masked_not_bootstrapped_and_reset() {
    let mut task = small_run(12, 4);
    let torso = task.model.body_index("torso").unwrap();
    let compiled = Compiled::new(&task.model);
    let state_len = compiled.header.state_len as usize;
    let n = 6;
    let h = 4;
    let z = |frame: &[f32], i: usize| frame[i * state_len + (torso + 1) * 13 + 2];
    // The untrained policy's first window, as training will run it.
    let recorded = ShacTrainer::new(common::gpu(), task.clone(), options(n, 9))
        .unwrap()
        .record_raw(1)
        .unwrap();
    let frames = &recorded[..=h];
    // A floor between the robots' torso heights at the window's end: the settling torsos of
    // some cross it within the window, others' not (their masses and frictions differ).
    let mut at_end: Vec<f32> = (0..n).map(|i| z(&frames[h], i)).collect();
    at_end.sort_by(f32::total_cmp);
    let floor = 0.5 * (at_end[n / 2 - 1] + at_end[n / 2]);
    task.termination = Some(Termination {
        body: torso,
        height: [floor, 10.0],
        min_upright: None,
    });
    let expected: Vec<Option<usize>> = (0..n)
        .map(|i| (1..=h).find(|&t| !(floor..=10.0).contains(&z(&frames[t], i))))
        .collect();
    let ended = expected.iter().filter(|t| t.is_some()).count();
    assert!(
        ended > 0 && ended < n,
        "the floor {floor} splits the batch: {expected:?}"
    );

    let mut trainer = ShacTrainer::new(common::gpu(), task.clone(), options(n, 9)).unwrap();
    let values: Vec<f64> = (0..n)
        .map(|i| {
            trainer
                .target_value(&frames[h][i * state_len..(i + 1) * state_len])
                .unwrap()
        })
        .collect();
    let stats = trainer.step().unwrap();
    let report = trainer.last_report();
    assert_eq!(report.terminated, ended);
    let resets: Vec<u32> = expected.iter().map(|t| u32::from(t.is_some())).collect();
    assert_eq!(trainer.resets(), resets);
    // The reward is the torso's forward speed: masked from the step after the terminal state.
    let speed = |t: usize, i: usize| f64::from(frames[t][i * state_len + (torso + 1) * 13 + 7]);
    let mut masked = 0.0;
    for (i, end) in expected.iter().enumerate() {
        for s in 0..h {
            if end.is_none_or(|t| s < t) {
                masked += speed(s + 1, i);
            }
        }
    }
    let mean = masked / (n * h) as f64;
    assert!(
        (report.mean_reward - mean).abs() < 1e-6,
        "reward {} vs {mean}",
        report.mean_reward
    );
    // The bootstrap averages the target critic over the robots still running only.
    let alive: Vec<f64> = (0..n)
        .filter(|&i| expected[i].is_none())
        .map(|i| values[i])
        .collect();
    let end_value = alive.iter().sum::<f64>() / alive.len() as f64;
    // The GPU critic values in f32; the reference is its weights evaluated in f64.
    assert!(
        (report.end_value_mean - end_value).abs() < 1e-5 * (1.0 + end_value.abs()),
        "{} vs {end_value}",
        report.end_value_mean
    );
    // The actor's loss: minus the window's rewards up to each robot's termination over H,
    // minus gamma^H V'(s_H) / H of the robots still running, averaged over the batch.
    let gamma = 0.99f64;
    let loss = -masked / (h * n) as f64
        - gamma.powi(h as i32) / h as f64 * alive.iter().sum::<f64>() / n as f64;
    assert!(
        (f64::from(stats.loss) - loss).abs() < 1e-5 * (1.0 + loss.abs()),
        "actor loss {} vs {loss}",
        stats.loss
    );
    // The next window starts the terminated robots from an initial state of their next life
    // (episode 0, reset 1: key 1 << 32), its joints drawn anew by the task's ranges.
    for i in 0..n {
        let next = &trainer.states()[i * state_len..(i + 1) * state_len];
        if expected[i].is_some() {
            let reborn = task.randomization.initial_state(
                &task.model,
                &compiled.initial_state,
                9,
                i as u64,
                1 << 32,
            );
            assert_eq!(next, &reborn[..], "robot {i} reset");
            assert_ne!(next, &frames[0][i * state_len..(i + 1) * state_len]);
        } else {
            assert_eq!(next, &frames[h][i * state_len..(i + 1) * state_len]);
        }
    }
    // Its next life draws new physical parameters, and a resumed run keeps the count.
    trainer.step().unwrap();
    let dir = std::env::temp_dir().join(format!("backdrive-shac-term-{}", std::process::id()));
    trainer.save(&dir).unwrap();
    let mut resumed = ShacTrainer::new(common::gpu(), task, options(n, 9)).unwrap();
    resumed.load(&dir).unwrap();
    assert_eq!(resumed.resets(), trainer.resets());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The evaluation's forward speed is each robot's torso displacement along the rewarded
/// direction, up to its terminal state or the episode's end, over the episode's duration:
/// checked against the frames of the same policy's recorded episode (no randomisation, so
/// both run the same robots).
#[test]
fn the_evaluated_forward_speed_is_the_displacement_up_to_termination_over_the_episode() {
    let mut task = small_run(12, 4);
    task.randomization = Default::default();
    let torso = task.model.body_index("torso").unwrap();
    let state_len = Compiled::new(&task.model).header.state_len as usize;
    let seconds = 12.0 * f64::from(task.model.settings.dt);
    let n = 4;
    let x = |frame: &[f32], i: usize| f64::from(frame[i * state_len + (torso + 1) * 13]);
    let trainer_for = |task: &Task| {
        let mut t = ShacTrainer::new(common::gpu(), task.clone(), options(n, 5)).unwrap();
        // A policy that moves: the untrained one commands zero.
        let theta: Vec<f32> = (0..t.params().len())
            .map(|k| 0.5 * (backdrive::learn::random::unit_random(3, 0, k as u64) - 0.5) as f32)
            .collect();
        t.set_params(&theta).unwrap();
        t
    };
    let frames = trainer_for(&task).record_raw(1).unwrap();
    assert_eq!(frames.len(), 13);
    let whole: f64 = (0..n).map(|i| x(&frames[12], i) - x(&frames[0], i)).sum();
    let evaluation = trainer_for(&task).evaluation(1).unwrap();
    let speed = evaluation
        .forward_speed
        .expect("quadruped-run rewards velocity");
    let expected = whole / (n as f64 * seconds);
    assert!(expected.abs() > 1e-4, "the robots move: {expected}");
    assert!(
        (speed - expected).abs() < 1e-6 * (1.0 + expected.abs()),
        "{speed} vs {expected}"
    );
    // A height limit a quarter of the way from the torso's height after the first step to
    // its height at the end ends the (identical) robots' episodes early.
    let z = |frame: &[f32]| frame[(torso + 1) * 13 + 2];
    let (first, last) = (z(&frames[1]), z(&frames[12]));
    let limit = first + 0.25 * (last - first);
    let height = if last < first {
        [limit, 10.0]
    } else {
        [-10.0, limit]
    };
    task.termination = Some(Termination {
        body: torso,
        height,
        min_upright: None,
    });
    let end = (1..=12)
        .find(|&t| !(height[0]..=height[1]).contains(&z(&frames[t])))
        .unwrap();
    assert!(end < 12, "the robots end early: at step {end}");
    let ends = vec![end; n];
    let cut: f64 = (0..n)
        .map(|i| x(&frames[ends[i]], i) - x(&frames[0], i))
        .sum();
    let terminated = trainer_for(&task).evaluation(1).unwrap();
    let speed = terminated.forward_speed.unwrap();
    let expected = cut / (n as f64 * seconds);
    assert!(
        (speed - expected).abs() < 1e-6 * (1.0 + expected.abs()),
        "terminated: {speed} vs {expected}"
    );
    // Over the whole episode the terminated robots run on: the displacement of the recorded
    // episode, as without the termination (the termination masks rewards, not the motion).
    let whole_speed = terminated.whole_episode_speed.unwrap();
    let expected_whole = whole / (n as f64 * seconds);
    assert!(
        (whole_speed - expected_whole).abs() < 1e-6 * (1.0 + expected_whole.abs()),
        "whole episode: {whole_speed} vs {expected_whole}"
    );
    assert!(
        (whole_speed - speed).abs() > 1e-5,
        "the robots move after their termination: {whole_speed} vs {speed}"
    );
    // A task that rewards no velocity has no speed to report.
    let mut still = task.clone();
    still
        .loss
        .terms
        .retain(|t| !matches!(t.quantity, backdrive::grad::loss::Quantity::Velocity { .. }));
    let still_evaluation = trainer_for(&still).evaluation(1).unwrap();
    assert_eq!(still_evaluation.forward_speed, None);
    assert_eq!(still_evaluation.whole_episode_speed, None);
}

/// With a termination, the actor's loss is the window's loss terms summed up to each robot's
/// terminal state (recomputed here by the f64 loss twin from the window's recorded states)
/// minus the bootstrap of the robots still running, and the actor's gradient is that loss's
/// (central differences): the terminated robots' later steps are in neither. On the arm (no
/// contacts: smooth at the difference step), whose forearm sags through a height bound in the
/// first window.
#[test]
fn the_actor_gradient_stops_at_a_termination() {
    use backdrive::grad::loss::loss_twin;
    let mut task = tasks::builtin("arm-reach").unwrap();
    task.horizon = 12;
    task.policy.hidden = vec![8];
    task.algorithm = Algorithm::Shac(small_settings(6));
    let (n, h) = (4, 6);
    let forearm = task.model.body_index("forearm").unwrap();
    let compiled = Compiled::new(&task.model);
    let state_len = compiled.header.state_len as usize;
    let z = |frame: &[f32], i: usize| frame[i * state_len + (forearm + 1) * 13 + 2];
    let frames = ShacTrainer::new(common::gpu(), task.clone(), options(n, 3))
        .unwrap()
        .record_raw(1)
        .unwrap();
    // A floor between the robots' forearm heights at step 3: two of them cross it there, the
    // other two at step 4 (measured: they sag by 1e-3 per step and differ by 3e-5).
    let at = |t: usize| {
        let mut z: Vec<f32> = (0..n).map(|i| z(&frames[t], i)).collect();
        z.sort_by(f32::total_cmp);
        z
    };
    let sorted = at(3);
    let floor = 0.5 * (sorted[1] + sorted[2]);
    task.termination = Some(Termination {
        body: forearm,
        height: [floor, 10.0],
        min_upright: None,
    });
    let terminal: Vec<usize> = (0..n)
        .map(|i| (1..=h).find(|&t| z(&frames[t], i) < floor).unwrap())
        .collect();
    let mut steps = terminal.clone();
    steps.sort();
    assert_eq!(steps, [3, 3, 4, 4], "the floor {floor} splits the batch");
    // The reference: the loss terms (minus the rewards) of steps 1..=terminal, over H; no robot
    // is left to bootstrap.
    let packed = task.loss.pack(&task.model).unwrap();
    let mut inst = Instance::<f64>::new(&compiled);
    let mut masked = 0.0;
    let mut unmasked = 0.0;
    for i in 0..n {
        for (t, frame) in frames.iter().enumerate().take(h + 1).skip(1) {
            inst.state = frame[i * state_len..(i + 1) * state_len]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let term = loss_twin(
                &packed,
                task.loss.terms.len(),
                &inst,
                t as u32,
                u32::MAX,
                None,
            );
            unmasked += term / (h * n) as f64;
            if t <= terminal[i] {
                masked += term / (h * n) as f64;
            }
        }
    }
    let mut trainer = ShacTrainer::new(common::gpu(), task, options(n, 3)).unwrap();
    let theta = trainer.params().to_vec();
    let (loss, g) = trainer.actor_gradient().unwrap();
    let tolerance = 1e-5 * masked.abs();
    assert!(
        (unmasked - masked).abs() > 100.0 * tolerance,
        "the masked steps matter: {masked} vs {unmasked}"
    );
    assert!(
        (loss - masked).abs() < tolerance,
        "actor loss {loss} vs the masked sum {masked} (unmasked {unmasked})"
    );
    for d in 0..3u64 {
        let dir: Vec<f64> = (0..theta.len())
            .map(|k| backdrive::learn::random::unit_random(d + 21, 0, k as u64) - 0.5)
            .collect();
        let norm = dir.iter().map(|v| v * v).sum::<f64>().sqrt();
        let step = 1e-3;
        let at = |s: f64| -> Vec<f32> {
            theta
                .iter()
                .zip(&dir)
                .map(|(t, v)| (f64::from(*t) + s * step * v / norm) as f32)
                .collect()
        };
        trainer.set_params(&at(1.0)).unwrap();
        let plus = trainer.actor_gradient().unwrap().0;
        trainer.set_params(&at(-1.0)).unwrap();
        let minus = trainer.actor_gradient().unwrap().0;
        trainer.set_params(&theta).unwrap();
        let fd = (plus - minus) / (2.0 * step);
        let adjoint: f64 = g.iter().zip(&dir).map(|(a, b)| a * b / norm).sum();
        println!("direction {d}: adjoint {adjoint:.6e}, differences {fd:.6e}");
        assert!(
            (fd - adjoint).abs() < 2e-2 * fd.abs().max(adjoint.abs()) + 1e-9,
            "direction {d}: adjoint {adjoint} vs differences {fd}"
        );
    }
}

/// The evaluation counts the robot-steps before each robot's termination: all of them without
/// one (and its mean reward is `evaluate`'s), one per robot and episode when every robot is
/// terminated at its first step (a healthy range above the robot).
#[test]
fn the_evaluation_counts_the_steps_before_a_termination() {
    let mut task = small_run(12, 4);
    let n = 3;
    let mut free = ShacTrainer::new(common::gpu(), task.clone(), options(n, 5)).unwrap();
    let evaluation = free.evaluation(1).unwrap();
    let (reward, running) = (evaluation.mean_reward, evaluation.running);
    assert_eq!(running, 1.0);
    assert_eq!(reward.to_bits(), free.evaluate(1).unwrap().to_bits());
    let torso = task.model.body_index("torso").unwrap();
    task.termination = Some(Termination {
        body: torso,
        height: [10.0, 20.0],
        min_upright: None,
    });
    let mut ended = ShacTrainer::new(common::gpu(), task, options(n, 5)).unwrap();
    let evaluation = ended.evaluation(1).unwrap();
    let (first, running) = (evaluation.mean_reward, evaluation.running);
    assert!((running - 1.0 / 12.0).abs() < 1e-12, "{running}");
    assert!(first.is_finite() && first.abs() <= reward.abs().max(1.0));
}

/// The reported rewards are the loss kernel's own per-step terms, control cost included: a
/// policy whose output layer commands the constant `c` on every actuator (scaled by
/// `action_scale`) pays `w * actuators * (scale c)^2` per step, in the evaluation and in the
/// window's report (which the critic's targets are computed from). Before the fix the rewards
/// came from host twins that never saw the commands, and both were 0.
#[test]
fn the_reported_rewards_pay_the_control_cost() {
    use backdrive::grad::loss::{Loss, Quantity, When};
    let mut task = tasks::builtin("arm-reach").unwrap();
    task.horizon = 12;
    task.policy.hidden = vec![8];
    let scale = 2.0f32;
    task.algorithm = Algorithm::Shac(ShacSettings {
        action_scale: scale,
        ..small_settings(6)
    });
    let w = 0.25f32;
    task.loss = Loss::new().term("", Quantity::ControlCost, w, When::EveryStep);
    let mut trainer = ShacTrainer::new(common::gpu(), task.clone(), options(2, 3)).unwrap();
    let layout = trainer.layout().clone();
    let last = layout.layers.last().unwrap();
    let c = 0.3f32;
    let mut theta = trainer.params().to_vec();
    theta[last.b_offset..last.b_offset + last.outputs]
        .iter_mut()
        .for_each(|b| *b = c);
    trainer.set_params(&theta).unwrap();
    let command = f64::from(scale * c);
    let expected = -f64::from(w) * layout.n_out as f64 * command * command;
    assert!(expected < -0.01);
    let evaluated = trainer.evaluate(1).unwrap();
    assert!(
        (evaluated - expected).abs() < 1e-5 * expected.abs(),
        "evaluation: {evaluated} per step, the control cost is {expected}"
    );
    trainer.step().unwrap();
    let reported = trainer.last_report().mean_reward;
    assert!(
        (reported - expected).abs() < 1e-5 * expected.abs(),
        "window report: {reported} per step, the control cost is {expected}"
    );
}

/// The GPU's exploration noise is its twin's: with a control cost only and a policy that
/// outputs the constant `c`, a window's mean reward is minus the mean over robots, steps and
/// outputs of `w (scale (c + noise))^2`, the noise from `action_noise_twin` with the window's
/// key. Different keys draw different noise, and the evaluation draws none.
#[test]
fn the_commands_carry_the_twin_s_exploration_noise() {
    commands_carry_the_twin_s_noise(None);
}

/// The same with the batch split into chunks of 2 (3 robots: chunks of 2 and 1): each robot
/// draws the noise of its index in the whole batch, so the chunks draw different noise and the
/// chunked batch the same as the whole one (the twin's sum over the batch indices).
#[test]
fn chunked_batches_draw_each_robot_s_own_noise() {
    commands_carry_the_twin_s_noise(Some(2));
}

fn commands_carry_the_twin_s_noise(max_chunk: Option<usize>) {
    use backdrive::engine::twin::policy::action_noise_twin;
    use backdrive::grad::loss::{Loss, Quantity, When};
    let mut task = tasks::builtin("arm-reach").unwrap();
    task.horizon = 12;
    task.policy.hidden = vec![8];
    let (scale, noise) = (2.0f32, 0.5f32);
    task.algorithm = Algorithm::Shac(ShacSettings {
        action_scale: scale,
        action_noise: noise,
        ..small_settings(6)
    });
    let w = 0.25f32;
    task.loss = Loss::new().term("", Quantity::ControlCost, w, When::EveryStep);
    let n = 3;
    let chunked = TrainOptions {
        max_chunk,
        ..options(n, 3)
    };
    let mut trainer = ShacTrainer::new(common::gpu(), task, chunked).unwrap();
    let layout = trainer.layout().clone();
    let last = layout.layers.last().unwrap();
    let c = 0.3f32;
    let mut theta = trainer.params().to_vec();
    theta[last.b_offset..last.b_offset + last.outputs]
        .iter_mut()
        .for_each(|b| *b = c);
    trainer.set_params(&theta).unwrap();
    let expected = |key: u32| {
        let mut total = 0.0;
        for i in 0..n as u32 {
            for t in 0..6u32 {
                for o in 0..layout.n_out as u32 {
                    let eps = action_noise_twin(
                        f64::from(noise * scale),
                        key,
                        i,
                        t,
                        layout.n_out as u32,
                        o,
                    );
                    let command = f64::from(scale * c) + eps;
                    total += f64::from(w) * command * command;
                }
            }
        }
        -total / (n * 6) as f64
    };
    let without = -f64::from(w) * layout.n_out as f64 * f64::from(scale * c).powi(2);
    let evaluated = trainer.evaluate(1).unwrap();
    assert!(
        (evaluated - without).abs() < 1e-5 * without.abs(),
        "the evaluation adds no noise: {evaluated} vs {without}"
    );
    let key = trainer.noise_key();
    assert_eq!(trainer.action_noise(), noise);
    trainer.step().unwrap();
    let reported = trainer.last_report().mean_reward;
    let twin = expected(key);
    assert!(
        (reported - twin).abs() < 1e-5 * twin.abs(),
        "window 1: GPU {reported} vs twin {twin} (no noise: {without})"
    );
    assert!(
        (twin - without).abs() > 1e-3 * without.abs(),
        "{twin} vs {without}"
    );
    assert_ne!(trainer.noise_key(), key, "each window draws anew");
    assert!((expected(trainer.noise_key()) - twin).abs() > 1e-6);
}
