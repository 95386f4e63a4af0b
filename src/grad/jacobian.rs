//! Per-step dynamics Jacobians for optimal control: df/dx and df/du of the step map
//! `x' = f(x, u)` over the raw state (bodies, then the solver's warm-start impulses, which are
//! part of the state because the next step starts from them).
//!
//! Row `k` of both Jacobians is the adjoint of the seed `e_k`, so one horizon-1 adjoint over a
//! batch of `states * state_len` instances gives every Jacobian at once.

use std::sync::Arc;

use crate::engine::gpu::Gpu;
use crate::engine::layout::Compiled;
use crate::error::{Error, Result};
use crate::grad::loss::Loss;
use crate::grad::rollout::{Rollout, RolloutOptions};
use crate::model::Model;

/// Jacobians of one step at a batch of (state, command) points.
#[derive(Clone, Debug)]
pub struct StepJacobians {
    /// Raw state length `D`.
    pub state_len: usize,
    /// Number of actuators `A`.
    pub n_commands: usize,
    /// `f(x, u)` for every point, `D` each.
    pub next_state: Vec<f32>,
    /// `d f_out / d x_in`, row-major per point: `[point][out][in]`, `D * D` each.
    pub df_dx: Vec<f32>,
    /// `d f_out / d u_in`, row-major per point: `[point][out][in]`, `D * A` each.
    pub df_du: Vec<f32>,
}

impl StepJacobians {
    /// `df/dx[out][in]` of point `p`.
    pub fn dx(&self, p: usize, out: usize, input: usize) -> f32 {
        self.df_dx[(p * self.state_len + out) * self.state_len + input]
    }

    /// `df/du[out][in]` of point `p`.
    pub fn du(&self, p: usize, out: usize, input: usize) -> f32 {
        self.df_du[(p * self.state_len + out) * self.n_commands + input]
    }
}

/// Computes `f`, `df/dx` and `df/du` at each of the `states.len() / D` points (instance-major
/// raw states and commands).
pub fn step_jacobians(
    gpu: Arc<Gpu>,
    model: &Model,
    states: &[f32],
    commands: &[f32],
) -> Result<StepJacobians> {
    let compiled = Arc::new(Compiled::new(model));
    let d = compiled.header.state_len as usize;
    let a = compiled.header.n_commands as usize;
    if states.is_empty() || !states.len().is_multiple_of(d) {
        return Err(Error::InvalidInput(format!(
            "states: expected a multiple of the state length {d}, got {}",
            states.len()
        )));
    }
    let points = states.len() / d;
    if commands.len() != points * a {
        return Err(Error::InvalidInput(format!(
            "commands: expected {} values ({points} points x {a}), got {}",
            points * a,
            commands.len()
        )));
    }
    let n = points * d;
    let mut batch_states = Vec::with_capacity(n * d);
    let mut batch_commands = Vec::with_capacity(n * a);
    let mut seeds = vec![0.0f32; n * d];
    for p in 0..points {
        for k in 0..d {
            batch_states.extend_from_slice(&states[p * d..(p + 1) * d]);
            batch_commands.extend_from_slice(&commands[p * a..(p + 1) * a]);
            seeds[(p * d + k) * d + k] = 1.0;
        }
    }
    let mut options = RolloutOptions::new(1);
    options.checkpoint_every = Some(1);
    options.command_gradients = true;
    options.param_gradients = false;
    let mut rollout =
        Rollout::with_compiled(gpu, model, compiled.clone(), n, &Loss::new(), options)?;
    rollout.set_initial_state(&batch_states)?;
    rollout.set_commands(&batch_commands)?;
    rollout.forward()?;
    let final_states = rollout.final_state_raw()?;
    let g = rollout.backward_from(Some(&seeds), &mut |_, _| {})?;
    let mut next_state = Vec::with_capacity(points * d);
    for p in 0..points {
        next_state.extend_from_slice(&final_states[p * d * d..p * d * d + d]);
    }
    Ok(StepJacobians {
        state_len: d,
        n_commands: a,
        next_state,
        df_dx: g.initial_state,
        df_du: g.commands.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use crate::engine::layout::Compiled;
    use crate::engine::twin::Instance;

    /// The seeding arithmetic: row k of df/dx is the adjoint of e_k. Checked on the twin
    /// alone (the GPU version is tested in tests/jacobians.rs).
    #[test]
    fn adjoint_of_unit_seed_is_a_jacobian_row() {
        let model = crate::io::models::builtin("cartpole").unwrap();
        let c = Compiled::new(&model);
        let mut x = Instance::<f64>::new(&c);
        x.commands[0] = 3.0;
        for _ in 0..10 {
            x.step();
        }
        let d = x.state.len();
        let k = 13 + 7; // cart velocity x
        let mut adj = crate::engine::twin::Adjoint::<f64>::new(&c);
        adj.state[k] = 1.0;
        let mut y = x.clone();
        y.step_adjoint(&mut adj);
        for j in [13usize, 13 + 7, 26 + 3, 26 + 10] {
            let h = 1e-7;
            let (mut p, mut m) = (x.clone(), x.clone());
            p.state[j] += h;
            m.state[j] -= h;
            p.step();
            m.step();
            let fd = (p.state[k] - m.state[k]) / (2.0 * h);
            assert!(
                (fd - adj.state[j]).abs() < 1e-6 * (1.0 + fd.abs()),
                "d x'[{k}] / d x[{j}] of {d}"
            );
        }
    }
}
