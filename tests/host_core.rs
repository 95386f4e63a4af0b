//! The GPU host core under `Simulator` and `Rollout`: a layout compiled once is shared, a
//! layout of another model is refused, and both give the same typed body states.

mod common;

use std::sync::Arc;

use backdrive::engine::layout::Compiled;
use backdrive::grad::loss::Loss;
use backdrive::grad::rollout::{Rollout, RolloutOptions};
use backdrive::learn::tasks;
use backdrive::learn::train::{TrainOptions, Trainer};
use backdrive::{Error, Simulator, io::models};

#[test]
fn a_layout_compiled_once_is_shared_by_simulators_and_rollouts() {
    let gpu = common::gpu();
    let model = models::builtin("quadruped").unwrap();
    let compiled = Arc::new(Compiled::new(&model));
    let sim = Simulator::with_compiled(gpu.clone(), &model, compiled.clone(), 2).unwrap();
    let rollout = Rollout::with_compiled(
        gpu,
        &model,
        compiled.clone(),
        2,
        &Loss::new(),
        RolloutOptions::new(3),
    )
    .unwrap();
    assert!(Arc::ptr_eq(&sim.compiled_shared(), &compiled));
    assert!(Arc::ptr_eq(&rollout.compiled_shared(), &compiled));
    // The test's, the simulator's and the rollout's: nobody compiled a copy.
    assert_eq!(Arc::strong_count(&compiled), 3);
}

/// One `backdrive train` run used to compile its model four times; the trainer now compiles it
/// once and its rollout shares it.
#[test]
fn a_trainer_compiles_its_model_once() {
    let task = tasks::builtin("cartpole-balance").unwrap();
    let options = TrainOptions {
        instances: 2,
        seed: 1,
        max_chunk: None,
    };
    let trainer = Trainer::new(common::gpu(), task, options).unwrap();
    // The trainer's handle and its rollout's.
    assert_eq!(Arc::strong_count(trainer.compiled()), 2);
}

#[test]
fn a_layout_of_another_model_is_refused() {
    let gpu = common::gpu();
    let quadruped = Arc::new(Compiled::new(&models::builtin("quadruped").unwrap()));
    let ball = models::builtin("ball").unwrap();
    let err = match Simulator::with_compiled(gpu.clone(), &ball, quadruped.clone(), 1) {
        Ok(_) => panic!("a ball simulated with the quadruped's layout"),
        Err(e) => e,
    };
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("'ball'"), "{err}");
    let options = RolloutOptions::new(2);
    let err = match Rollout::with_compiled(gpu, &ball, quadruped, 1, &Loss::new(), options) {
        Ok(_) => panic!("a ball rolled out with the quadruped's layout"),
        Err(e) => e,
    };
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
}

/// The same steps from the same state give the same bits through the simulator (10 steps per
/// dispatch, one chunk) and through a rollout (one step per dispatch, chunks of 2), and the
/// rollout's typed states are its raw states decoded.
#[test]
fn rollouts_and_simulators_give_the_same_typed_body_states() {
    let gpu = common::gpu();
    let model = models::builtin("quadruped").unwrap();
    let (n, steps) = (3, 20);
    let mut sim = Simulator::new(gpu.clone(), &model, n).unwrap();
    sim.step(steps).unwrap();
    let expected = sim.body_states().unwrap();
    assert_eq!(expected.len(), n * model.bodies.len());

    let mut options = RolloutOptions::new(steps);
    options.max_chunk = Some(2);
    let mut rollout =
        Rollout::with_compiled(gpu, &model, sim.compiled_shared(), n, &Loss::new(), options)
            .unwrap();
    rollout.forward().unwrap();
    assert_eq!(rollout.final_body_states().unwrap(), expected);
    let raw = rollout.final_state_raw().unwrap();
    assert_eq!(sim.bodies_from_raw(&raw), expected);
    let frames = rollout.forward_recording(5).unwrap();
    assert_eq!(frames.len(), 1 + (steps / 5) as usize);
    assert_eq!(frames.last().unwrap(), &expected);
    assert_ne!(frames[0], expected, "the quadruped moves in 20 steps");
}
