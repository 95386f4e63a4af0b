//! Steps per dispatch: a model whose steps run many loop iterations gives the same bits
//! however many steps the host asks one dispatch to run.
//!
//! lavapipe silently leaves an invocation's loops after 65,535 iterations; the quadruped with
//! 100 Gauss-Seidel sweeps needs about 12,000 per step, so 30 steps in one dispatch would be
//! cut short there without the host's bound.

mod common;

use backdrive::{Simulator, io::models};

#[test]
fn many_steps_per_dispatch_match_one_step_per_dispatch() {
    let gpu = common::gpu();
    let mut model = models::builtin("quadruped").unwrap();
    model.settings.solver_iterations = 100;
    let n = 4;
    let n_cmd = model.actuators.len();
    let commands: Vec<f32> = (0..n * n_cmd)
        .map(|k| ((k as f32) * 0.9).sin() * 0.4)
        .collect();
    let run = |steps_per_dispatch: u32| {
        let mut sim = Simulator::new(gpu.clone(), &model, n).unwrap();
        sim.set_commands(&commands).unwrap();
        sim.set_steps_per_dispatch(steps_per_dispatch);
        sim.step(30).unwrap();
        sim.read_state_raw().unwrap()
    };
    let one = run(1);
    let many = run(30);
    let initial = Simulator::new(gpu.clone(), &model, n)
        .unwrap()
        .read_state_raw()
        .unwrap();
    assert_ne!(one, initial, "the robots must move");
    let differing = one
        .iter()
        .zip(&many)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    assert_eq!(differing, 0, "{differing} of {} floats differ", one.len());
}
