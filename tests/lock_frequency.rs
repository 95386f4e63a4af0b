//! `settings.lock_frequency` (the locked joint axes' own softness, which the MJCF importer
//! sets) on the GPU: the forward step as its f32 twin's, and the one-step adjoint as the f64
//! twin's, on the shipped arm (hinges, a ball joint, limits and servos) with its locks
//! stiffened and softened.

mod common;

use common::one_step::{gpu_step_against_twin, one_step_adjoint_errors};

use backdrive::engine::layout::Compiled;
use backdrive::learn::random::Lcg;
use backdrive::{Simulator, io::models};

fn arm_with_locks_at(frequency: f32) -> backdrive::Model {
    let mut model = models::builtin("arm").unwrap();
    model.settings.lock_frequency = Some(frequency);
    model
}

#[test]
fn the_gpu_step_with_a_lock_frequency_matches_the_twin() {
    for frequency in [100.0, 8.0] {
        let model = arm_with_locks_at(frequency);
        let n = 3;
        let mut sim = Simulator::new(common::gpu(), &model, n).unwrap();
        let commands: Vec<f32> = (0..n * model.actuators.len())
            .map(|k| ((k as f32) * 0.7).sin() * 0.5)
            .collect();
        sim.set_commands(&commands).unwrap();
        let d = gpu_step_against_twin(&mut sim, &model, &commands, 60);
        println!("locks at {frequency} Hz: over 60 steps, {d}");
        assert!(d.worst < 1e-3, "locks at {frequency} Hz: {d}");
    }
}

#[test]
fn the_gpu_adjoint_with_a_lock_frequency_matches_the_twin() {
    let mut rng = Lcg(11);
    for frequency in [100.0, 8.0] {
        let model = arm_with_locks_at(frequency);
        let n = 3;
        let mut sim = Simulator::new(common::gpu(), &model, n).unwrap();
        let commands: Vec<f32> = (0..n * model.actuators.len())
            .map(|_| 0.3 * rng.signed_f32())
            .collect();
        sim.set_commands(&commands).unwrap();
        sim.step(25).unwrap();
        let states = sim.read_state_raw().unwrap();
        let len = Compiled::new(&model).header.state_len as usize;
        let seed: Vec<f32> = (0..n * len).map(|_| rng.signed_f32()).collect();
        for (i, e) in one_step_adjoint_errors(&model, &states, &commands, &seed)
            .iter()
            .enumerate()
        {
            let (es, ep, ec) = (e.state, e.params, e.commands);
            println!(
                "locks at {frequency} Hz, instance {i}: state {es:.2e} params {ep:.2e} commands {ec:.2e}"
            );
            assert!(
                es < 1e-3 && ep < 1e-3 && ec < 1e-3,
                "locks at {frequency} Hz, instance {i}"
            );
        }
    }
}
