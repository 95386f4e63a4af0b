//! The GPU adjoint against its CPU twin (one step) and against finite differences of GPU
//! rollouts (whole trajectories).

mod common;

use backdrive::layout::Compiled;
use backdrive::loss::{Loss, Quantity, When};
use backdrive::model::Model;
use backdrive::rollout::{Rollout, RolloutOptions};
use backdrive::twin::{Adjoint, Instance};
use backdrive::{Simulator, models};

fn lcg(seed: &mut u64) -> f32 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

fn rel_err(a: &[f32], b: &[f64]) -> f64 {
    let diff: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    diff / norm.max(1e-3)
}

/// A state reached by stepping the model with small commands, for every instance.
fn warmed_states(model: &Model, n: usize, steps: u32, seed: &mut u64) -> (Vec<f32>, Vec<f32>) {
    let gpu = common::gpu();
    let mut sim = Simulator::new(gpu, model, n).unwrap();
    let commands: Vec<f32> = (0..n * model.actuators.len())
        .map(|_| 0.3 * lcg(seed))
        .collect();
    sim.set_commands(&commands).unwrap();
    sim.step(steps).unwrap();
    (sim.read_state_raw().unwrap(), commands)
}

#[test]
fn one_step_adjoint_matches_the_f64_twin_on_every_shipped_model() {
    let gpu = common::gpu();
    let mut seed = 42u64;
    for name in models::names() {
        let model = models::builtin(name).unwrap();
        let compiled = Compiled::new(&model);
        let n = 4;
        let (states, commands) = warmed_states(&model, n, 25, &mut seed);
        let len = compiled.header.state_len as usize;
        let state_seed: Vec<f32> = (0..n * len).map(|_| lcg(&mut seed)).collect();
        let mut options = RolloutOptions::new(1);
        options.checkpoint_every = Some(1);
        let mut rollout = Rollout::new(gpu.clone(), &model, n, &Loss::new(), options).unwrap();
        rollout.set_initial_state(&states).unwrap();
        rollout.set_commands(&commands).unwrap();
        rollout.forward().unwrap();
        let g = rollout.backward_from(Some(&state_seed), &mut |_, _| {}).unwrap();
        let a = model.actuators.len();
        let p = compiled.header.param_len as usize;
        for i in 0..n {
            let mut twin = Instance::<f64>::new(&compiled);
            twin.state = states[i * len..(i + 1) * len].iter().map(|&v| v.into()).collect();
            twin.commands = commands[i * a..(i + 1) * a].iter().map(|&v| v.into()).collect();
            let mut adj = Adjoint::<f64>::new(&compiled);
            adj.state = state_seed[i * len..(i + 1) * len].iter().map(|&v| v.into()).collect();
            twin.step_adjoint(&mut adj);
            let es = rel_err(&g.initial_state[i * len..(i + 1) * len], &adj.state);
            let ep = rel_err(&g.params[i * p..(i + 1) * p], &adj.params);
            let ec = rel_err(&g.commands.as_ref().unwrap()[i * a..(i + 1) * a], &adj.commands);
            println!("{name} instance {i}: state {es:.2e} params {ep:.2e} commands {ec:.2e}");
            assert!(es < 1e-3 && ep < 1e-3 && ec < 1e-3, "{name} instance {i}");
        }
    }
}
