//! The Gauss-Seidel sweeps run on private copies of the solver state when the model fits
//! `layout::PRIVATE_SOLVER_BODIES` and `PRIVATE_SOLVER_ROWS`, and on storage memory otherwise.
//! Both paths must agree with the CPU twin; the shipped models take the private one.

mod common;

use common::one_step::gpu_step_against_twin;

use backdrive::engine::layout::{Compiled, PRIVATE_SOLVER_BODIES, PRIVATE_SOLVER_ROWS};
use backdrive::engine::twin::{Adjoint, Instance};
use backdrive::grad::loss::Loss;
use backdrive::grad::rollout::{Rollout, RolloutOptions};
use backdrive::model::{ModelBuilder, ShapeKind};
use backdrive::{Model, Simulator, io::models};

/// `count` balls dropped in a heap so that they hit the floor (contact rows, clamped
/// friction) and, with `collide`, each other (three rows per pair of balls).
fn heap_of_balls(count: u32, collide: bool) -> Model {
    let mut builder =
        ModelBuilder::new("heap of balls").with_settings(|s| s.sphere_collisions = collide);
    for k in 0..count {
        let f = k as f32;
        builder = builder
            .body(
                &format!("ball{k}"),
                0.5 + 0.01 * f,
                [0.15 * (f % 6.0), 0.15 * (f / 6.0).floor(), 0.12 + 0.02 * f],
            )
            .with_body(|b| b.friction = 0.6)
            .shape(ShapeKind::Sphere { radius: 0.08 }, [0.0; 3]);
    }
    builder.build().unwrap()
}

fn assert_gpu_matches_twin(model: &Model, steps: usize) {
    let gpu = common::gpu();
    let n = 3;
    let mut sim = Simulator::new(gpu, model, n).unwrap();
    let initial = sim.read_state_raw().unwrap();
    let d = gpu_step_against_twin(&mut sim, model, &[], steps);
    assert!(d.worst < 1e-3, "{}: {d}", model.name);
    assert_ne!(
        sim.read_state_raw().unwrap(),
        initial,
        "the bodies must move"
    );
}

#[test]
fn a_model_over_the_private_body_bound_runs_on_storage_and_matches_the_twin() {
    let model = heap_of_balls(PRIVATE_SOLVER_BODIES + 4, false);
    let compiled = Compiled::new(&model);
    assert!(compiled.header.n_bodies > PRIVATE_SOLVER_BODIES);
    assert!(!compiled.solver_state_fits_private());
    assert_gpu_matches_twin(&model, 40);
}

#[test]
fn a_model_over_the_private_row_bound_runs_on_storage_and_matches_the_twin() {
    let model = heap_of_balls(24, true);
    let compiled = Compiled::new(&model);
    assert!(compiled.header.n_bodies <= PRIVATE_SOLVER_BODIES);
    assert!(compiled.header.n_rows > PRIVATE_SOLVER_ROWS);
    assert!(!compiled.solver_state_fits_private());
    assert_gpu_matches_twin(&model, 40);
}

#[test]
fn every_shipped_model_takes_the_private_path() {
    for name in models::names() {
        let compiled = Compiled::new(&models::builtin(name).unwrap());
        assert!(compiled.solver_state_fits_private(), "{name}");
    }
}

/// One step's adjoint on the GPU against the f64 twin's, from a state 20 steps into a drop
/// (so that contacts are active) and a pseudo-random adjoint of the next state.
fn assert_one_step_adjoint_matches_twin(model: &Model) {
    let gpu = common::gpu();
    let compiled = Compiled::new(model);
    let n = 2;
    let mut sim = Simulator::new(gpu.clone(), model, n).unwrap();
    sim.step(20).unwrap();
    let states = sim.read_state_raw().unwrap();
    let len = compiled.header.state_len as usize;
    let seed: Vec<f32> = (0..n * len).map(|k| ((k as f32) * 0.37).sin()).collect();
    let mut options = RolloutOptions::new(1);
    options.checkpoint_every = Some(1);
    let mut rollout = Rollout::new(gpu, model, n, &Loss::new(), options).unwrap();
    rollout.set_initial_state(&states).unwrap();
    rollout.forward().unwrap();
    let g = rollout.backward_from(Some(&seed), &mut |_, _| {}).unwrap();
    for i in 0..n {
        let mut twin = Instance::<f64>::new(&compiled);
        twin.state = states[i * len..(i + 1) * len]
            .iter()
            .map(|&v| v.into())
            .collect();
        let mut adj = Adjoint::<f64>::new(&compiled);
        adj.state = seed[i * len..(i + 1) * len]
            .iter()
            .map(|&v| v.into())
            .collect();
        twin.step_adjoint(&mut adj);
        let gpu_state = &g.initial_state[i * len..(i + 1) * len];
        let diff: f64 = gpu_state
            .iter()
            .zip(&adj.state)
            .map(|(x, y)| (f64::from(*x) - y).powi(2))
            .sum::<f64>()
            .sqrt();
        let norm: f64 = adj.state.iter().map(|y| y * y).sum::<f64>().sqrt();
        let err = diff / norm.max(1e-3);
        assert!(
            err < 1e-3,
            "{}: instance {i}: relative error {err:e}",
            model.name
        );
    }
}

#[test]
fn the_adjoint_of_models_over_the_private_bounds_matches_the_twin() {
    assert_one_step_adjoint_matches_twin(&heap_of_balls(PRIVATE_SOLVER_BODIES + 4, false));
    assert_one_step_adjoint_matches_twin(&heap_of_balls(24, true));
}

/// On the storage path too, replaying the solver's tape (recorded by the forward pass, or by
/// the backward pass's segment recomputation) gives the bits of re-running the sweeps.
#[test]
fn the_solver_tape_gives_the_recomputed_gradients_on_the_storage_path() {
    use backdrive::grad::loss::{Quantity, When};
    use backdrive::grad::rollout::SolverTape;
    let model = heap_of_balls(24, true);
    let loss = Loss::new().term(
        "ball3",
        Quantity::PositionError {
            target: [0.2, 0.1, 0.0],
            mask: [1.0; 3],
        },
        1.0,
        When::EveryStep,
    );
    let run = |every: u32, tape_memory: Option<u64>| {
        let mut options = RolloutOptions::new(6);
        options.checkpoint_every = Some(every);
        options.tape_memory = tape_memory;
        let mut rollout = Rollout::new(common::gpu(), &model, 2, &loss, options).unwrap();
        rollout.forward().unwrap();
        (rollout.solver_tape(), rollout.backward().unwrap())
    };
    let (mode, reference) = run(1, Some(0));
    assert_eq!(mode, SolverTape::Recomputed);
    assert!(reference.initial_state.iter().any(|&g| g != 0.0));
    for (every, expected) in [(1, SolverTape::Forward), (4, SolverTape::Segments)] {
        let (mode, g) = run(every, None);
        assert_eq!(mode, expected);
        assert_eq!(g.loss, reference.loss, "every {every}");
        assert_eq!(g.initial_state, reference.initial_state, "every {every}");
        assert_eq!(g.params, reference.params, "every {every}");
    }
}

/// A chain of `links` capsules hinged one to the next (a limit and a position servo on each
/// hinge), released horizontally, swept 4 times with its locks and servos relaxed by
/// `relaxation`.
fn relaxed_chain(links: usize, relaxation: f32) -> Model {
    let mut model = Model::from_toml_str(&common::large_models::chain_toml(links), None).unwrap();
    model.settings.solver_iterations = 4;
    model.settings.solver_relaxation = relaxation;
    model
}

/// The worst relative difference, over `steps` steps of the f32 twin, between a step with the
/// model's relaxation and the same step without it: what a kernel that ignored the factor
/// would be off by.
fn relaxation_effect(model: &Model, steps: usize) -> f32 {
    let mut plain = model.clone();
    plain.settings.solver_relaxation = 1.0;
    let (relaxed, plain) = (Compiled::new(model), Compiled::new(&plain));
    let mut s = Instance::<f32>::new(&relaxed);
    let mut worst = 0.0f32;
    for _ in 0..steps {
        let mut other = Instance::<f32>::new(&plain);
        other.state.copy_from_slice(&s.state);
        s.step();
        other.step();
        for (a, b) in s.state.iter().zip(&other.state) {
            worst = worst.max((a - b).abs() / (1.0 + a.abs()));
        }
    }
    worst
}

#[test]
fn relaxed_locks_and_servos_match_the_twin_on_both_paths() {
    for (links, private) in [(6, true), (PRIVATE_SOLVER_BODIES as usize + 4, false)] {
        let model = relaxed_chain(links, 1.6);
        assert_eq!(
            Compiled::new(&model).solver_state_fits_private(),
            private,
            "{links} links"
        );
        // Well above the 1e-3 the GPU must match the twin to.
        let effect = relaxation_effect(&model, 40);
        assert!(effect > 1e-2, "{links} links: {effect:e}");
        assert_gpu_matches_twin(&model, 40);
        assert_one_step_adjoint_matches_twin(&model);
    }
}
