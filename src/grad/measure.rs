//! Timed measurements of the gradient machinery, as `backdrive bench` reports them: a
//! checkpointed forward and adjoint pass of a batch, and the analytic parameter gradient of one
//! robot against central finite differences of all its physical parameters (the batch of
//! [`crate::grad::gradcheck::PerturbedBatch`]).
//!
//! Both use the same loss: the final x of every body, the distance the robot travelled.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::engine::gpu::Gpu;
use crate::error::Result;
use crate::grad::gradcheck::{GradcheckSetup, Group, GroupReport, PerturbedBatch};
use crate::grad::loss::{Loss, Quantity, When};
use crate::grad::rollout::{Rollout, RolloutOptions, estimate_memory};
use crate::model::Model;

/// The measurements' loss: the final x of every body (distance travelled).
pub fn distance_loss(model: &Model) -> Loss {
    let mut loss = Loss::new();
    for b in &model.bodies {
        loss = loss.term(
            &b.name,
            Quantity::Position {
                direction: [1.0, 0.0, 0.0],
            },
            1.0,
            When::Final,
        );
    }
    loss
}

/// One timed forward and adjoint pass of a batch.
#[derive(Clone, Debug, Serialize)]
pub struct GradientTiming {
    /// Robot instances in the batch.
    pub instances: usize,
    /// Steps of the rollout.
    pub steps: u32,
    /// Steps between stored checkpoints.
    pub checkpoint_every: u32,
    /// Where the backward pass got the solver's sweeps from (`Forward`, `Segments` or
    /// `Recomputed`, see [`crate::grad::rollout::SolverTape`]).
    pub solver_tape: String,
    /// Wall time of the checkpointed forward pass.
    pub forward_seconds: f64,
    /// Wall time of the adjoint pass (recomputation included).
    pub backward_seconds: f64,
    /// `backward_seconds / forward_seconds`.
    pub backward_over_forward: f64,
    /// Robot-steps of the checkpointed forward pass alone per second.
    pub forward_robot_steps_per_s: f64,
    /// Robot-steps per second of forward and backward together.
    pub forward_backward_robot_steps_per_s: f64,
    /// Device memory the rollout allocated.
    pub device_bytes: u64,
    /// What [`estimate_memory`] predicted.
    pub estimated_bytes: u64,
}

/// The rollout options of a gradient timing: `steps` steps, checkpoints every
/// `checkpoint_every` (`None`: the default rule), no command gradients.
pub fn gradient_options(steps: u32, checkpoint_every: Option<u32>) -> RolloutOptions {
    let mut options = RolloutOptions::new(steps);
    options.checkpoint_every = checkpoint_every;
    options.command_gradients = false;
    options
}

/// Times one forward and one adjoint pass of `instances` robots over `options.horizon` steps
/// with [`distance_loss`] and a fixed sine command sequence. Batches of at most 128 robots get an
/// untimed warm-up pass first (pipelines compile once per device; larger batches only pay for
/// the first touch of their buffers, which is part of their cost).
pub fn time_gradient(
    gpu: Arc<Gpu>,
    model: &Model,
    instances: usize,
    options: RolloutOptions,
) -> Result<GradientTiming> {
    let steps = options.horizon;
    let estimated_bytes = estimate_memory(model, instances, &options).total();
    let mut rollout = Rollout::new(gpu, model, instances, &distance_loss(model), options)?;
    let a = model.actuators.len();
    let commands: Vec<f32> = (0..instances * steps as usize * a)
        .map(|k| 0.2 * (k as f32 * 0.01).sin())
        .collect();
    rollout.set_commands(&commands)?;
    if instances <= 128 {
        rollout.forward()?;
        rollout.backward()?;
    }
    let t0 = Instant::now();
    rollout.forward()?;
    let forward_seconds = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    rollout.backward()?;
    let backward_seconds = t1.elapsed().as_secs_f64();
    let robot_steps = f64::from(steps) * instances as f64;
    Ok(GradientTiming {
        instances,
        steps,
        checkpoint_every: rollout.checkpoint_interval(),
        solver_tape: format!("{:?}", rollout.solver_tape()),
        forward_seconds,
        backward_seconds,
        backward_over_forward: backward_seconds / forward_seconds.max(1e-9),
        forward_robot_steps_per_s: robot_steps / forward_seconds.max(1e-9),
        forward_backward_robot_steps_per_s: robot_steps
            / (forward_seconds + backward_seconds).max(1e-9),
        device_bytes: rollout.device_bytes(),
        estimated_bytes,
    })
}

/// The analytic gradient of one robot against central finite differences over its physical
/// parameters, with the time each takes.
#[derive(Clone, Debug, Serialize)]
pub struct FiniteDifferenceTiming {
    /// Physical parameters compared (the world's slots excluded).
    pub parameters: usize,
    /// Steps of each rollout.
    pub steps: u32,
    /// Wall time of one forward and one adjoint pass of the robot alone.
    pub analytic_seconds: f64,
    /// Perturbed robots of the finite-difference batch, two per parameter (the batch also
    /// holds the nominal robot).
    pub fd_instances: usize,
    /// Wall time of the batch's forward pass.
    pub fd_seconds: f64,
    /// `fd_seconds / analytic_seconds`.
    pub fd_over_analytic: f64,
    /// Cosine between the two gradients (finite differences in f32 are noisy through
    /// contact); `None` when either gradient is zero.
    pub cosine: Option<f64>,
}

/// Relative step of the central differences of [`time_finite_differences`].
pub const FD_RELATIVE_STEP: f32 = 1e-3;

/// Times the analytic parameter gradient of one robot (one forward and one adjoint pass, after
/// an untimed warm-up) and the central differences of the same parameters (one forward pass of
/// a batch with two perturbed robots per parameter, after an untimed warm-up), and compares
/// them.
pub fn time_finite_differences(
    gpu: Arc<Gpu>,
    model: &Model,
    steps: u32,
) -> Result<FiniteDifferenceTiming> {
    let loss = distance_loss(model);
    let mut options = RolloutOptions::new(steps);
    options.command_gradients = false;
    let mut rollout = Rollout::new(gpu.clone(), model, 1, &loss, options.clone())?;
    rollout.forward()?;
    rollout.backward()?;
    let t0 = Instant::now();
    rollout.forward()?;
    let grads = rollout.backward()?;
    let analytic_seconds = t0.elapsed().as_secs_f64();

    let setup = GradcheckSetup {
        options,
        loss,
        initial_state: None,
        commands: None,
        relative_step: FD_RELATIVE_STEP,
        max_inputs: usize::MAX,
    };
    let mut batch = PerturbedBatch::new(gpu, model, &setup, &[Group::Params])?;
    batch.finite_differences()?;
    let t1 = Instant::now();
    let finite_difference = batch.finite_differences()?.remove(0);
    let fd_seconds = t1.elapsed().as_secs_f64();
    let report = GroupReport {
        group: Group::Params,
        adjoint: batch.adjoint_entries(&grads).remove(0),
        finite_difference,
    };
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nonzero = norm(&report.adjoint) > 1e-12 && norm(&report.finite_difference) > 1e-12;
    Ok(FiniteDifferenceTiming {
        parameters: report.adjoint.len(),
        steps,
        analytic_seconds,
        fd_instances: batch.n_instances() - 1,
        fd_seconds,
        fd_over_analytic: fd_seconds / analytic_seconds.max(1e-9),
        cosine: nonzero.then(|| report.cosine()),
    })
}
