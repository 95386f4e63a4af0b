//! The GPU adjoint against its CPU twin (one step) and against finite differences of GPU
//! rollouts (whole trajectories).

mod common;

use common::one_step::{one_step_adjoint_errors, rel_err};

use backdrive::engine::layout::Compiled;
use backdrive::grad::loss::{Loss, Quantity, When};
use backdrive::grad::rollout::{Rollout, RolloutOptions, SolverTape};
use backdrive::learn::random::Lcg;
use backdrive::model::Model;
use backdrive::{Simulator, io::models};

/// A state reached by stepping the model with small commands, for every instance.
fn warmed_states(model: &Model, n: usize, steps: u32, rng: &mut Lcg) -> (Vec<f32>, Vec<f32>) {
    let gpu = common::gpu();
    let mut sim = Simulator::new(gpu, model, n).unwrap();
    let commands: Vec<f32> = (0..n * model.actuators.len())
        .map(|_| 0.3 * rng.signed_f32())
        .collect();
    sim.set_commands(&commands).unwrap();
    sim.step(steps).unwrap();
    (sim.read_state_raw().unwrap(), commands)
}

#[test]
fn one_step_adjoint_matches_the_f64_twin_on_every_shipped_model() {
    let mut rng = Lcg(42);
    for name in models::names() {
        one_step_adjoint_matches_twin(name, &models::builtin(name).unwrap(), 25, &mut rng);
    }
}

/// Contacts with every kind of world shape: the GPU adjoint as the twin's after 40 steps,
/// when every body has landed on its shape (measured on lavapipe with another seed: state
/// 3e-6 to 9e-6, parameters 5e-6 to 3e-5 relative error).
#[test]
fn one_step_adjoint_matches_the_f64_twin_against_every_world_shape() {
    let mut rng = Lcg(7);
    let model = common::world_shapes::world_shapes_model();
    one_step_adjoint_matches_twin("world shapes", &model, 40, &mut rng);
}

fn one_step_adjoint_matches_twin(name: &str, model: &Model, warmup: u32, rng: &mut Lcg) {
    let n = 4;
    let (states, commands) = warmed_states(model, n, warmup, rng);
    let len = Compiled::new(model).header.state_len as usize;
    let state_seed: Vec<f32> = (0..n * len).map(|_| rng.signed_f32()).collect();
    let errors = one_step_adjoint_errors(model, &states, &commands, &state_seed);
    for (i, e) in errors.iter().enumerate() {
        let (es, ep, ec) = (e.state, e.params, e.commands);
        println!("{name} instance {i}: state {es:.2e} params {ep:.2e} commands {ec:.2e}");
        assert!(es < 1e-3 && ep < 1e-3 && ec < 1e-3, "{name} instance {i}");
    }
}

use backdrive::grad::gradcheck::{GradcheckSetup, Group, GroupReport, gradcheck_against_twin};

fn report(name: &str, reports: &[GroupReport]) {
    for r in reports {
        println!(
            "{name} {}: relative error {:.2e}, cosine {:.6}",
            r.group.name(),
            r.relative_error(),
            r.cosine()
        );
    }
}

fn sine_commands(model: &Model, horizon: u32, amplitude: f32) -> Vec<f32> {
    let a = model.actuators.len();
    (0..horizon as usize * a)
        .map(|k| amplitude * ((k / a) as f32 * 0.05 + (k % a) as f32).sin())
        .collect()
}

#[test]
fn double_pendulum_100_steps_matches_finite_differences() {
    let model = models::builtin("double-pendulum").unwrap();
    let loss = Loss::new()
        .term(
            "lower",
            Quantity::PositionError {
                target: [1.5, 0.0, 2.5],
                mask: [1.0; 3],
            },
            0.01,
            When::EveryStep,
        )
        .term(
            "upper",
            Quantity::VelocityError {
                target: [0.0; 3],
                mask: [1.0; 3],
            },
            1.0,
            When::Final,
        );
    let setup = GradcheckSetup {
        options: RolloutOptions::new(100),
        loss,
        initial_state: None,
        commands: None,
        relative_step: 1e-3,
        max_inputs: 64,
    };
    let reports = gradcheck_against_twin(
        common::gpu(),
        &model,
        &setup,
        &[
            Group::InitialVelocities,
            Group::InitialPositions,
            Group::Params,
        ],
        1e-6,
    )
    .unwrap();
    report("double pendulum", &reports);
    for r in &reports {
        assert!(
            r.cosine() >= 0.999 && r.relative_error() <= 1e-3,
            "{:?}",
            r.group
        );
    }
}

#[test]
fn arm_100_steps_matches_finite_differences() {
    let model = models::builtin("arm").unwrap();
    let tip = model.bodies.last().unwrap().name.clone();
    let loss = Loss::new().term(
        &tip,
        Quantity::PositionError {
            target: [0.5, 0.5, 0.5],
            mask: [1.0; 3],
        },
        0.01,
        When::EveryStep,
    );
    let setup = GradcheckSetup {
        options: RolloutOptions::new(100),
        loss,
        initial_state: None,
        commands: Some(sine_commands(&model, 100, 0.5)),
        relative_step: 1e-3,
        max_inputs: 48,
    };
    let reports = gradcheck_against_twin(
        common::gpu(),
        &model,
        &setup,
        &[Group::InitialVelocities, Group::Commands, Group::Params],
        1e-6,
    )
    .unwrap();
    report("arm", &reports);
    for r in &reports {
        assert!(
            r.cosine() >= 0.999 && r.relative_error() <= 1e-3,
            "{:?}",
            r.group
        );
    }
}

#[test]
fn ball_throw_initial_velocity_gradient_within_one_percent() {
    let model = models::builtin("ball").unwrap();
    let compiled = Compiled::new(&model);
    let mut state = compiled.initial_state.clone();
    // Thrown forward and up with some spin: it lands, bounces, slides and rolls.
    state[13 + 7..13 + 13].copy_from_slice(&[4.0, 0.5, 3.0, 0.3, 1.0, -0.2]);
    let loss = Loss::new()
        .term(
            "ball",
            Quantity::PositionError {
                target: [10.0, 0.0, 0.5],
                mask: [1.0; 3],
            },
            1.0,
            When::Final,
        )
        .term(
            "ball",
            Quantity::VelocityError {
                target: [0.0; 3],
                mask: [1.0; 3],
            },
            1.0,
            When::Final,
        )
        .term(
            "ball",
            Quantity::AngularVelocityError {
                target: [0.0; 3],
                mask: [1.0; 3],
            },
            1.0,
            When::Final,
        );
    let setup = GradcheckSetup {
        options: RolloutOptions::new(500),
        loss,
        initial_state: Some(state),
        commands: None,
        relative_step: 1e-3,
        max_inputs: 6,
    };
    let reports = gradcheck_against_twin(
        common::gpu(),
        &model,
        &setup,
        &[Group::InitialVelocities],
        1e-6,
    )
    .unwrap();
    report("ball throw", &reports);
    let r = &reports[0];
    for (k, (a, f)) in r.adjoint.iter().zip(&r.finite_difference).enumerate() {
        println!("  component {k}: adjoint {a:.6} finite difference {f:.6}");
        assert!((a - f).abs() <= 0.01 * f.abs().max(1e-2), "component {k}");
    }
}

#[test]
fn checkpointed_and_stored_backward_passes_give_identical_gradients() {
    let model = models::builtin("cartpole").unwrap();
    let horizon = 60;
    let loss = Loss::new().term(
        "pole",
        Quantity::PositionError {
            target: [0.3, 0.0, 2.0],
            mask: [1.0; 3],
        },
        0.1,
        When::EveryStep,
    );
    let n = 3;
    let commands: Vec<f32> = (0..n * horizon as usize)
        .map(|k| 5.0 * (k as f32 * 0.13).sin())
        .collect();
    let mut results = Vec::new();
    for every in [Some(1), Some(7), None, Some(horizon)] {
        let mut options = RolloutOptions::new(horizon);
        options.checkpoint_every = every;
        let mut rollout = Rollout::new(common::gpu(), &model, n, &loss, options).unwrap();
        rollout.set_commands(&commands).unwrap();
        rollout.forward().unwrap();
        let g = rollout.backward().unwrap();
        results.push((every, g));
    }
    let (_, reference) = &results[0];
    for (every, g) in &results[1..] {
        assert_eq!(
            g.loss, reference.loss,
            "loss with checkpoints every {every:?}"
        );
        assert_eq!(g.initial_state, reference.initial_state, "{every:?}");
        assert_eq!(g.params, reference.params, "{every:?}");
        assert_eq!(g.commands, reference.commands, "{every:?}");
    }
    assert!(
        reference
            .commands
            .as_ref()
            .unwrap()
            .iter()
            .any(|v| *v != 0.0)
    );
}

/// The solver's tape, recorded by the forward pass (every state kept) or by the backward
/// pass's segment recomputation (checkpointed), gives the bits of re-running every step's
/// sweeps in the adjoint; a tape over its budget, or one that would break the memory limit,
/// is not recorded (the rollout falls back to re-running the sweeps rather than failing).
#[test]
fn a_recorded_solver_tape_gives_the_gradients_of_recomputed_sweeps() {
    let model = models::builtin("quadruped").unwrap();
    let horizon = 12;
    let n = 3;
    let loss = Loss::new()
        .term(
            "torso",
            Quantity::PositionError {
                target: [0.4, 0.1, 0.5],
                mask: [1.0; 3],
            },
            0.1,
            When::EveryStep,
        )
        .term(
            "torso",
            Quantity::Position {
                direction: [1.0, 0.0, 0.0],
            },
            1.0,
            When::Final,
        );
    let one: Vec<f32> = sine_commands(&model, horizon, 0.6);
    let commands: Vec<f32> = (0..n).flat_map(|_| one.iter().copied()).collect();
    let run = |every: u32, tape_memory: Option<u64>| {
        let mut options = RolloutOptions::new(horizon);
        options.checkpoint_every = Some(every);
        options.tape_memory = tape_memory;
        let mut rollout = Rollout::new(common::gpu(), &model, n, &loss, options).unwrap();
        rollout.set_commands(&commands).unwrap();
        rollout.forward().unwrap();
        (rollout.solver_tape(), rollout.backward().unwrap())
    };
    let (mode, reference) = run(1, Some(0));
    assert_eq!(mode, SolverTape::Recomputed);
    for (every, tape_memory, expected) in [
        (1, None, SolverTape::Forward),
        (5, None, SolverTape::Segments),
        (5, Some(0), SolverTape::Recomputed),
        (5, Some(64), SolverTape::Recomputed),
    ] {
        let (mode, g) = run(every, tape_memory);
        let case = format!("checkpoints every {every}, tape memory {tape_memory:?}");
        assert_eq!(mode, expected, "{case}");
        assert_eq!(g.loss, reference.loss, "{case}");
        assert_eq!(g.initial_state, reference.initial_state, "{case}");
        assert_eq!(g.params, reference.params, "{case}");
        assert_eq!(g.commands, reference.commands, "{case}");
    }
    assert!(reference.params.iter().any(|&g| g != 0.0));
    assert!(reference.commands.unwrap().iter().any(|&g| g != 0.0));

    // A memory limit that the rollout meets only without the tape: no tape, no refusal.
    let mut options = RolloutOptions::new(horizon);
    options.checkpoint_every = Some(1);
    let taped = backdrive::grad::rollout::estimate_memory(&model, n, &options);
    options.tape_memory = Some(0);
    let untaped = backdrive::grad::rollout::estimate_memory(&model, n, &options);
    assert!(taped.total() > untaped.total(), "{taped} against {untaped}");
    options.tape_memory = None;
    options.memory_limit = Some(untaped.total());
    let rollout = Rollout::new(common::gpu(), &model, n, &loss, options).unwrap();
    assert_eq!(rollout.solver_tape(), SolverTape::Recomputed);
}

#[test]
fn a_non_finite_gradient_is_reported_with_instance_and_step() {
    let model = models::builtin("ball").unwrap();
    let compiled = Compiled::new(&model);
    let horizon = 20;
    // A weight near f32's maximum makes the loss gradient overflow, for instance 1 only.
    let loss = Loss::new().term(
        "ball",
        Quantity::PositionError {
            target: [0.0, 0.0, 0.5],
            mask: [1.0; 3],
        },
        1.0e38,
        When::Final,
    );
    let mut states = compiled.initial_state.clone();
    let mut moved = compiled.initial_state.clone();
    moved[13] = 100.0;
    states.extend_from_slice(&moved);
    let mut rollout = Rollout::new(
        common::gpu(),
        &model,
        2,
        &loss,
        RolloutOptions::new(horizon),
    )
    .unwrap();
    rollout.set_initial_state(&states).unwrap();
    rollout.forward().unwrap();
    match rollout.backward() {
        Err(backdrive::Error::NonFiniteGradient(list)) => {
            assert_eq!(list, vec![(1, horizon - 1)], "{list:?}");
        }
        other => panic!("expected a non-finite gradient error, got {other:?}"),
    }
}

#[test]
fn memory_is_estimated_and_a_rollout_that_does_not_fit_is_refused() {
    let model = models::builtin("quadruped").unwrap();
    let options = RolloutOptions::new(1000);
    let estimate = backdrive::grad::rollout::estimate_memory(&model, 4096, &options);
    println!("quadruped, 4096 instances, 1000 steps: {estimate}");
    assert!(estimate.total() <= 1 << 30, "{estimate}");
    let mut small = RolloutOptions::new(1000);
    small.memory_limit = Some(1 << 20);
    let err = Rollout::new(common::gpu(), &model, 64, &Loss::new(), small)
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("over the limit"), "{err}");
}

#[test]
fn parameter_gradients_are_opt_in_and_change_nothing_else() {
    let model = models::builtin("cartpole").unwrap();
    let loss = Loss::new().term(
        "pole",
        Quantity::PositionError {
            target: [0.3, 0.0, 2.0],
            mask: [1.0; 3],
        },
        0.1,
        When::EveryStep,
    );
    let commands: Vec<f32> = (0..40).map(|k| 3.0 * (k as f32 * 0.2).sin()).collect();
    let run = |params: bool| {
        let mut options = RolloutOptions::new(40);
        options.param_gradients = params;
        let mut r = Rollout::new(common::gpu(), &model, 1, &loss, options).unwrap();
        r.set_commands(&commands).unwrap();
        r.forward().unwrap();
        r.backward().unwrap()
    };
    let (with, without) = (run(true), run(false));
    assert!(with.params.iter().any(|g| *g != 0.0));
    assert!(without.params.iter().all(|g| *g == 0.0));
    assert_eq!(with.initial_state, without.initial_state);
    assert_eq!(with.commands, without.commands);
}

/// Truncated backpropagation through time cuts the state adjoint every `window` steps: with
/// only a final loss, the last window's command gradients are the exact ones, every earlier
/// step's are zero, and so is the initial state's. Two chunks check the cut's offsets.
#[test]
fn truncation_cuts_the_state_adjoint_at_window_starts() {
    let model = models::builtin("cartpole").unwrap();
    let horizon = 60u32;
    let window = 25u32;
    let loss = Loss::new().term(
        "pole",
        Quantity::PositionError {
            target: [0.3, 0.0, 2.0],
            mask: [1.0; 3],
        },
        1.0,
        When::Final,
    );
    let n = 3;
    let n_act = model.actuators.len();
    let commands: Vec<f32> = (0..n * horizon as usize * n_act)
        .map(|k| 5.0 * (k as f32 * 0.13).sin())
        .collect();
    let run = |truncation: Option<u32>, max_chunk: Option<usize>| {
        let mut options = RolloutOptions::new(horizon);
        options.truncation = truncation;
        options.max_chunk = max_chunk;
        let mut rollout = Rollout::new(common::gpu(), &model, n, &loss, options).unwrap();
        rollout.set_commands(&commands).unwrap();
        rollout.forward().unwrap();
        rollout.backward().unwrap()
    };
    let exact = run(None, None);
    let cut = run(Some(window), Some(2));
    assert_eq!(cut.loss, exact.loss);
    let (exact_c, cut_c) = (exact.commands.unwrap(), cut.commands.unwrap());
    let per_instance = horizon as usize * n_act;
    let last_window = (horizon - horizon % window) as usize;
    for i in 0..n {
        for t in 0..horizon as usize {
            for a in 0..n_act {
                let k = i * per_instance + t * n_act + a;
                if t >= last_window {
                    assert_eq!(cut_c[k], exact_c[k], "instance {i} step {t}");
                } else {
                    assert_eq!(cut_c[k], 0.0, "instance {i} step {t}");
                }
            }
        }
        // Exact gradients reach every step (else the test would prove nothing).
        let early = &exact_c[i * per_instance..][..last_window * n_act];
        assert!(early.iter().any(|g| g.abs() > 1e-6), "instance {i}");
    }
    assert!(cut.initial_state.iter().all(|&g| g == 0.0));
    assert!(exact.initial_state.iter().any(|&g| g != 0.0));
    let bad = RolloutOptions {
        truncation: Some(0),
        ..RolloutOptions::new(horizon)
    };
    let err = Rollout::new(common::gpu(), &model, n, &loss, bad)
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("truncation must be at least one step"),
        "{err}"
    );
}

/// `Rollout::device_bytes` counts every buffer the rollout allocates, and `estimate_memory`
/// predicts all of them but the loss terms', on every shipped model, with and without command
/// gradients, in one chunk and in several.
#[test]
fn device_bytes_equal_the_memory_estimate_plus_the_loss_terms() {
    for name in models::names() {
        let model = models::builtin(name).unwrap();
        let body = model.bodies.last().unwrap().name.clone();
        let loss = Loss::new().term(
            &body,
            Quantity::PositionError {
                target: [0.0; 3],
                mask: [1.0; 3],
            },
            1.0,
            When::Final,
        );
        let loss_bytes = loss.pack(&model).unwrap().len() as u64 * 4;
        for (command_gradients, max_chunk) in [(true, None), (false, None), (true, Some(2))] {
            let mut options = RolloutOptions::new(12);
            options.command_gradients = command_gradients;
            options.max_chunk = max_chunk;
            let estimate = backdrive::grad::rollout::estimate_memory(&model, 5, &options);
            let rollout = Rollout::new(common::gpu(), &model, 5, &loss, options).unwrap();
            assert_eq!(
                rollout.device_bytes(),
                estimate.total() + loss_bytes,
                "{name}, command gradients {command_gradients}, max chunk {max_chunk:?}: \
                 estimate {estimate}"
            );
        }
    }
}

/// The healthy-height bonus (`Quantity::HealthyHeight`): the kernel counts the steps whose
/// height is in the band as the f64 twin does, and adds nothing to the gradient (a step
/// function of the state). The ball is thrown up through z = 1 and back, so each band holds
/// it for some steps and not for others.
#[test]
fn healthy_height_counts_like_the_twin_and_has_no_gradient() {
    let model = models::builtin("ball").unwrap();
    let compiled = Compiled::new(&model);
    let mut state = compiled.initial_state.clone();
    state[13 + 9] = 4.0;
    let horizon = 100;
    let bands = [(0.2, 1.0, 1.0), (1.0, 2.0, 10.0)];
    let mut loss = Loss::new();
    for (min_height, max_height, weight) in bands {
        loss = loss.term(
            "ball",
            Quantity::HealthyHeight {
                min_height,
                max_height,
            },
            weight,
            When::EveryStep,
        );
    }
    let packed = loss.pack(&model).unwrap();
    let twin = backdrive::grad::gradcheck::twin_loss(
        &compiled,
        &packed,
        loss.terms.len(),
        horizon,
        &state,
        &compiled.default_params,
        &[],
    );
    // Each band alone, to prove the test is not vacuous: both hold the ball part of the time.
    for (k, term) in loss.terms.iter().enumerate() {
        let single = Loss {
            terms: vec![term.clone()],
        };
        let steps = backdrive::grad::gradcheck::twin_loss(
            &compiled,
            &single.pack(&model).unwrap(),
            1,
            horizon,
            &state,
            &compiled.default_params,
            &[],
        ) / f64::from(term.weight);
        assert!(
            steps > 0.0 && steps < f64::from(horizon),
            "band {k}: {steps} steps"
        );
        assert_eq!(steps.fract(), 0.0, "band {k}");
    }
    let mut rollout = Rollout::new(
        common::gpu(),
        &model,
        1,
        &loss,
        RolloutOptions::new(horizon),
    )
    .unwrap();
    rollout.set_initial_state(&state).unwrap();
    let gpu = rollout.forward().unwrap()[0];
    assert_eq!(f64::from(gpu), twin, "GPU {gpu} twin {twin}");
    let grads = rollout.backward().unwrap();
    assert!(grads.initial_state.iter().all(|&g| g == 0.0));
    assert!(grads.params.iter().all(|&g| g == 0.0));
}

/// The control cost (`Quantity::ControlCost`, kernel kind 8): its value is the twin's, and its
/// command gradient, added by `loss_command_adjoint` after the step adjoint, matches the f64
/// twin's whole-rollout gradient and central differences of the twin, alone and mixed with a
/// state term (so that the two command gradients add). The `Final` term checks that only the
/// last step's commands pay it.
#[test]
fn control_cost_matches_the_twin_and_finite_differences() {
    let model = models::builtin("arm").unwrap();
    let compiled = Compiled::new(&model);
    let tip = model.bodies.last().unwrap().name.clone();
    let horizon = 60;
    let commands = sine_commands(&model, horizon, 0.5);
    let control = Loss::new()
        .term("", Quantity::ControlCost, 0.5, When::EveryStep)
        .term("", Quantity::ControlCost, 3.0, When::Final);
    let mixed = Loss {
        terms: control.terms.clone(),
    }
    .term(
        &tip,
        Quantity::PositionError {
            target: [0.5, 0.5, 0.5],
            mask: [1.0; 3],
        },
        0.01,
        When::EveryStep,
    );
    let a = model.actuators.len();
    // Alone: the value is 0.5 sum_t |a_t|^2 + 3 |a_last|^2 and the gradient 2 w a, no state
    // gradient at all.
    let expected: f64 = commands
        .iter()
        .map(|&c| 0.5 * f64::from(c) * f64::from(c))
        .sum::<f64>()
        + commands[(horizon as usize - 1) * a..]
            .iter()
            .map(|&c| 3.0 * f64::from(c) * f64::from(c))
            .sum::<f64>();
    for (name, loss) in [("control", &control), ("mixed", &mixed)] {
        let packed = loss.pack(&model).unwrap();
        let state = compiled.initial_state.clone();
        let twin = backdrive::grad::gradcheck::twin_loss(
            &compiled,
            &packed,
            loss.terms.len(),
            horizon,
            &state,
            &compiled.default_params,
            &commands,
        );
        let mut options = RolloutOptions::new(horizon);
        options.command_gradients = true;
        let mut rollout = Rollout::new(common::gpu(), &model, 1, loss, options).unwrap();
        rollout.set_initial_state(&state).unwrap();
        rollout.set_commands(&commands).unwrap();
        let gpu = f64::from(rollout.forward().unwrap()[0]);
        assert!(
            (gpu - twin).abs() <= 1e-5 * twin.abs(),
            "{name}: GPU {gpu} twin {twin}"
        );
        let grads = rollout.backward().unwrap();
        let gpu_commands = grads.commands.unwrap();
        let (twin_state, _, twin_commands) = backdrive::grad::gradcheck::twin_rollout_gradient(
            &compiled,
            &packed,
            loss.terms.len(),
            horizon,
            &state,
            &compiled.default_params,
            &commands,
        );
        let err = rel_err(&gpu_commands, &twin_commands);
        println!("{name}: command gradient relative error against the twin {err:.2e}");
        assert!(err <= 1e-4, "{name}: {err}");
        if name == "control" {
            assert!(
                (twin - expected).abs() <= 1e-9 * expected,
                "{twin} {expected}"
            );
            for (k, (&g, &c)) in gpu_commands.iter().zip(&commands).enumerate() {
                let last = k / a == horizon as usize - 1;
                let want = 2.0 * (0.5 + if last { 3.0 } else { 0.0 }) * c;
                assert!(
                    (g - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "{k}: {g} {want}"
                );
            }
            assert!(grads.initial_state.iter().all(|&g| g == 0.0));
            assert!(twin_state.iter().all(|&g| g == 0.0));
        }
    }
    let setup = GradcheckSetup {
        options: RolloutOptions::new(horizon),
        loss: mixed,
        initial_state: None,
        commands: Some(commands),
        relative_step: 1e-3,
        max_inputs: 48,
    };
    let reports = gradcheck_against_twin(
        common::gpu(),
        &model,
        &setup,
        &[Group::InitialVelocities, Group::Commands],
        1e-6,
    )
    .unwrap();
    report("control cost", &reports);
    for r in &reports {
        assert!(
            r.cosine() >= 0.999 && r.relative_error() <= 1e-3,
            "{:?}",
            r.group
        );
    }
}

/// ant-run pays Ant-v5's control cost: a `control_cost` loss per step (the actor-critic's
/// per-step reward, as Gymnasium's) of 0.5 per ctrl^2, ctrl being the command over the gear
/// (150), that packs as kernel kind 8.
#[test]
fn ant_run_has_the_control_cost() {
    let task = backdrive::learn::tasks::builtin("ant-run").unwrap();
    let terms: Vec<_> = task
        .loss
        .terms
        .iter()
        .filter(|t| t.quantity == Quantity::ControlCost)
        .collect();
    assert_eq!(terms.len(), 1);
    let per_ctrl_squared = f64::from(terms[0].weight) * 150.0 * 150.0;
    assert!((per_ctrl_squared - 0.5).abs() < 1e-5, "{per_ctrl_squared}");
    assert_eq!(terms[0].when, When::EveryStep);
}

/// A robot's loss terms stop at its last paid step (`Rollout::set_loss_last_steps`: where a
/// termination ended its episode): the masked rollout's loss and its command and initial-state
/// gradients are those of the rollout cut at that step (on the GPU, and by the f64 twins'
/// masked sum), nothing after it gets a gradient, and `None` pays every step again.
/// Checkpointed (the backward pass recomputes segments) and with a control cost (its own
/// adjoint kernel after the step adjoint).
#[test]
fn loss_terms_stop_at_each_robots_last_paid_step() {
    use backdrive::grad::loss::paid_loss_twin;
    use backdrive::grad::rollout::Gradients;
    let model = models::builtin("arm").unwrap();
    let compiled = Compiled::new(&model);
    let tip = model.bodies.last().unwrap().name.clone();
    let horizon = 24u32;
    let a = model.actuators.len();
    let loss = Loss::new()
        .term("", Quantity::ControlCost, 0.5, When::EveryStep)
        .term(
            &tip,
            Quantity::PositionError {
                target: [0.5, 0.5, 0.5],
                mask: [1.0; 3],
            },
            0.01,
            When::EveryStep,
        );
    let packed = loss.pack(&model).unwrap();
    let last = [horizon, 9, 0, 1, 13];
    let n = last.len();
    let commands: Vec<Vec<f32>> = (0..n)
        .map(|i| sine_commands(&model, horizon, 0.5 - 0.08 * i as f32))
        .collect();
    let run = |steps: u32, robots: &[usize], paid: Option<&[u32]>| -> (Vec<f32>, Gradients) {
        let mut options = RolloutOptions::new(steps);
        options.checkpoint_every = Some(4);
        let mut rollout =
            Rollout::new(common::gpu(), &model, robots.len(), &loss, options).unwrap();
        rollout
            .set_initial_state(&compiled.initial_state.repeat(robots.len()))
            .unwrap();
        let sequence: Vec<f32> = robots
            .iter()
            .flat_map(|&i| commands[i][..steps as usize * a].to_vec())
            .collect();
        rollout.set_commands(&sequence).unwrap();
        rollout.set_loss_last_steps(paid).unwrap();
        let values = rollout.forward().unwrap();
        (values, rollout.backward().unwrap())
    };
    let everyone: Vec<usize> = (0..n).collect();
    let (masked_loss, masked) = run(horizon, &everyone, Some(&last));
    let (full_loss, full) = run(horizon, &everyone, None);
    let masked_commands = masked.commands.unwrap();
    let full_commands = full.commands.unwrap();
    let s = compiled.header.state_len as usize;
    let per = horizon as usize * a;
    for (i, &t) in last.iter().enumerate() {
        let g = &masked_commands[i * per..(i + 1) * per];
        assert!(
            g[t as usize * a..].iter().all(|&v| v == 0.0),
            "robot {i}: a command after its last paid step {t} has a gradient"
        );
        // The f64 twins' masked sum over the whole horizon.
        let mut inst = backdrive::engine::twin::Instance::<f64>::new(&compiled);
        let mut twin = 0.0;
        for step in 0..horizon {
            let at = step as usize * a;
            inst.commands = commands[i][at..at + a]
                .iter()
                .map(|&c| f64::from(c))
                .collect();
            inst.step();
            twin += paid_loss_twin(
                &packed,
                loss.terms.len(),
                &inst,
                step + 1,
                horizon,
                t as f32,
                None,
            );
        }
        let gpu = f64::from(masked_loss[i]);
        assert!(
            (gpu - twin).abs() <= 1e-5 * twin.abs() + 1e-9,
            "robot {i}: GPU {gpu} twin {twin}"
        );
        if t < horizon {
            assert!(
                full_loss[i] > masked_loss[i] && full_commands[i * per..(i + 1) * per] != *g,
                "robot {i}: paying every step again changes its loss and gradient"
            );
        }
        if t == 0 {
            assert_eq!(masked_loss[i], 0.0);
            assert!(g.iter().all(|&v| v == 0.0));
            assert!(
                masked.initial_state[i * s..(i + 1) * s]
                    .iter()
                    .all(|&v| v == 0.0)
            );
            continue;
        }
        // The rollout cut at its last paid step, alone.
        let (cut_loss, cut) = run(t, &[i], None);
        let close = |x: f32, y: f32| (x - y).abs() <= 1e-6 * x.abs().max(y.abs()) + 1e-12;
        assert!(
            close(masked_loss[i], cut_loss[0]),
            "robot {i}: {} vs {}",
            masked_loss[i],
            cut_loss[0]
        );
        let cut_commands = cut.commands.unwrap();
        for (k, (&x, &y)) in g.iter().zip(&cut_commands).enumerate() {
            assert!(close(x, y), "robot {i}, command {k}: {x} vs {y}");
        }
        for (k, (&x, &y)) in masked.initial_state[i * s..(i + 1) * s]
            .iter()
            .zip(&cut.initial_state)
            .enumerate()
        {
            assert!(close(x, y), "robot {i}, state slot {k}: {x} vs {y}");
        }
        let (_, _, twin_commands) = backdrive::grad::gradcheck::twin_rollout_gradient(
            &compiled,
            &packed,
            loss.terms.len(),
            t,
            &compiled.initial_state,
            &compiled.default_params,
            &commands[i][..t as usize * a],
        );
        let err = rel_err(&g[..t as usize * a], &twin_commands);
        assert!(
            err <= 1e-4,
            "robot {i}: command gradient against the twin {err}"
        );
    }
    // Steps beyond 2^24 are not exact in the kernel's f32 and are refused.
    let mut rollout = Rollout::new(
        common::gpu(),
        &model,
        1,
        &loss,
        RolloutOptions::new(horizon),
    )
    .unwrap();
    assert!(rollout.set_loss_last_steps(Some(&[1 << 24])).is_err());
    assert!(rollout.set_loss_last_steps(Some(&[1, 2])).is_err());
}
