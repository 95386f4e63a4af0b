//! The GPU step agrees with its CPU twin on every shipped model.

mod common;

use common::one_step::gpu_step_against_twin;

use backdrive::engine::layout::Compiled;
use backdrive::engine::twin::Instance;
use backdrive::model::Model;
use backdrive::{Simulator, io::models};

/// Steps GPU and twin from the same state, one step at a time, and compares each step's result
/// (restarting the twin from the GPU state so that chaotic models do not diverge).
#[test]
fn gpu_matches_cpu_twin_on_every_shipped_model() {
    for name in models::names() {
        gpu_matches_twin(name, &models::builtin(name).unwrap(), 60);
    }
}

/// Contacts with every kind of world shape (and the ground) on the GPU as in the twin.
#[test]
fn gpu_matches_cpu_twin_against_every_world_shape() {
    let model = common::world_shapes::world_shapes_model();
    // Within the compared steps every body lands on its world shape.
    let compiled = Compiled::new(&model);
    let h = compiled.header;
    let mut twin = Instance::<f32>::new(&compiled);
    let mut landed = vec![false; model.bodies.len()];
    for _ in 0..80 {
        twin.step();
        for (c, (body, _)) in compiled.world_contacts.iter().enumerate() {
            let normal_row = (h.state_lambda + h.row_world_contact) as usize + 3 * c;
            landed[*body] |= twin.state[normal_row] > 0.0;
        }
    }
    assert!(landed.iter().all(|&l| l), "landed: {landed:?}");
    gpu_matches_twin("world shapes", &model, 80);
}

fn gpu_matches_twin(name: &str, model: &Model, steps: usize) {
    let gpu = common::gpu();
    let n = 3;
    let mut sim = Simulator::new(gpu.clone(), model, n).unwrap();
    // Give each instance different commands so that actuators are exercised.
    let n_cmd = model.actuators.len();
    let commands: Vec<f32> = (0..n * n_cmd)
        .map(|k| ((k as f32) * 0.7).sin() * 0.5)
        .collect();
    sim.set_commands(&commands).unwrap();
    let d = gpu_step_against_twin(&mut sim, model, &commands, steps);
    assert!(d.worst < 1e-3, "{name}: {d}");
    println!("{name}: over {steps} steps, {d}");
}
