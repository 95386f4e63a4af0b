//! A short library example: 16 quadrupeds driven by sine commands for one second of model time,
//! then the mean height of each robot's first body.
//!
//! `cargo run --release --example rollout`

use std::sync::Arc;

use backdrive::engine::gpu::Gpu;
use backdrive::{Simulator, io::models};

fn main() -> anyhow::Result<()> {
    let gpu = Arc::new(Gpu::from_env()?);
    println!("adapter: {}", gpu.describe());

    // A shipped model by name, or a path to a TOML model file.
    let model = models::load("quadruped")?;
    let n = 16;
    let mut sim = Simulator::new(gpu, &model, n)?;

    let n_act = model.actuators.len();
    let steps = (1.0 / model.settings.dt).round() as u32;
    for k in 0..steps {
        let t = k as f32 * model.settings.dt;
        // Instance-major commands: instance i's actuators are commands[i * n_act..][..n_act].
        let commands: Vec<f32> = (0..n * n_act)
            .map(|j| {
                let (i, a) = (j / n_act, j % n_act);
                0.3 * (std::f32::consts::TAU * (1.5 * t + i as f32 / n as f32) + a as f32).sin()
            })
            .collect();
        sim.set_commands(&commands)?;
        sim.step(1)?;
    }

    // Body states come back instance-major: n instances x bodies.
    let states = sim.body_states()?;
    let n_bodies = model.bodies.len();
    for i in 0..n {
        let s = &states[i * n_bodies];
        println!(
            "instance {i:2}: {} at ({:+.3}, {:+.3}, {:+.3})",
            model.bodies[0].name, s.position[0], s.position[1], s.position[2]
        );
    }
    Ok(())
}
