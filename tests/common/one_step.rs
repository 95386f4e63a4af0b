//! The GPU's one-step adjoint against the f64 twin's, shared by the adjoint tests of every row
//! kind (shipped models, world shapes, passive joints, tendons).

use backdrive::Model;
use backdrive::engine::layout::Compiled;
use backdrive::engine::twin::{Adjoint, Instance};
use backdrive::grad::loss::Loss;
use backdrive::grad::rollout::{Rollout, RolloutOptions};

/// Relative error of the GPU's `a` against the twin's `b` (norm of the difference over the
/// norm of `b`, the latter floored at 1e-3 so that near-zero gradients compare absolutely).
pub fn rel_err(a: &[f32], b: &[f64]) -> f64 {
    let diff: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    diff / norm.max(1e-3)
}

/// One instance's relative errors of the state, parameter and command adjoints.
pub struct OneStepErrors {
    pub state: f64,
    pub params: f64,
    pub commands: f64,
}

/// Pulls `seed` (the adjoint of the next state, instance-major) back through one step from
/// `states` under `commands` on the GPU and in the f64 twin; returns each instance's errors.
pub fn one_step_adjoint_errors(
    model: &Model,
    states: &[f32],
    commands: &[f32],
    seed: &[f32],
) -> Vec<OneStepErrors> {
    let compiled = Compiled::new(model);
    let len = compiled.header.state_len as usize;
    let n = states.len() / len;
    let mut options = RolloutOptions::new(1);
    options.checkpoint_every = Some(1);
    let mut rollout = Rollout::new(super::gpu(), model, n, &Loss::new(), options).unwrap();
    rollout.set_initial_state(states).unwrap();
    rollout.set_commands(commands).unwrap();
    rollout.forward().unwrap();
    let g = rollout.backward_from(Some(seed), &mut |_, _| {}).unwrap();
    let a = model.actuators.len();
    let p = compiled.header.param_len as usize;
    let f64s = |x: &[f32]| x.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();
    (0..n)
        .map(|i| {
            let mut twin = Instance::<f64>::new(&compiled);
            twin.state = f64s(&states[i * len..(i + 1) * len]);
            twin.commands = f64s(&commands[i * a..(i + 1) * a]);
            let mut adj = Adjoint::<f64>::new(&compiled);
            adj.state = f64s(&seed[i * len..(i + 1) * len]);
            twin.step_adjoint(&mut adj);
            OneStepErrors {
                state: rel_err(&g.initial_state[i * len..(i + 1) * len], &adj.state),
                params: rel_err(&g.params[i * p..(i + 1) * p], &adj.params),
                commands: rel_err(
                    &g.commands.as_ref().unwrap()[i * a..(i + 1) * a],
                    &adj.commands,
                ),
            }
        })
        .collect()
}
