//! The GPU's one-step adjoint against the f64 twin's, shared by the adjoint tests of every row
//! kind (shipped models, world shapes, passive joints, tendons).

use backdrive::engine::layout::Compiled;
use backdrive::engine::twin::{Adjoint, Instance};
use backdrive::grad::loss::Loss;
use backdrive::grad::rollout::{Rollout, RolloutOptions};
use backdrive::{Model, Simulator};

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

/// Where the GPU's forward step differed most from the f32 twin's.
pub struct StepDifference {
    /// Worst `|gpu - twin| / (1 + |twin|)` over every slot, instance and step (infinite where a
    /// slot is NaN on either side, so that a bound on it also catches NaN).
    pub worst: f32,
    pub step: usize,
    pub instance: usize,
    pub slot: usize,
    pub gpu: f32,
    pub twin: f32,
}

impl std::fmt::Display for StepDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "worst relative difference {:e} at step {} instance {} slot {}: gpu {} vs twin {}",
            self.worst, self.step, self.instance, self.slot, self.gpu, self.twin
        )
    }
}

/// Steps `sim` one step at a time, `steps` times, and each instance's f32 twin from the GPU's
/// state before every step, under `commands` (instance-major, as set on `sim`; empty where the
/// commands are the default zeros), and returns where the two differed most.
pub fn gpu_step_against_twin(
    sim: &mut Simulator,
    model: &Model,
    commands: &[f32],
    steps: usize,
) -> StepDifference {
    let compiled = Compiled::new(model);
    let len = sim.state_len();
    let n = sim.n_instances();
    let a = model.actuators.len();
    let mut out = StepDifference {
        worst: 0.0,
        step: 0,
        instance: 0,
        slot: 0,
        gpu: 0.0,
        twin: 0.0,
    };
    for step in 0..steps {
        let before = sim.read_state_raw().unwrap();
        sim.step(1).unwrap();
        let after = sim.read_state_raw().unwrap();
        for i in 0..n {
            let mut twin = Instance::<f32>::new(&compiled);
            twin.state.copy_from_slice(&before[i * len..(i + 1) * len]);
            if !commands.is_empty() {
                twin.commands.copy_from_slice(&commands[i * a..(i + 1) * a]);
            }
            twin.step();
            for (slot, (&g, &c)) in after[i * len..(i + 1) * len]
                .iter()
                .zip(&twin.state)
                .enumerate()
            {
                let err = (g - c).abs() / (1.0 + c.abs());
                let err = if err.is_nan() { f32::INFINITY } else { err };
                if err > out.worst {
                    out = StepDifference {
                        worst: err,
                        step,
                        instance: i,
                        slot,
                        gpu: g,
                        twin: c,
                    };
                }
            }
        }
    }
    out
}
