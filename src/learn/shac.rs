//! The short-horizon actor-critic (SHAC, Xu et al., "Accelerated Policy Learning with Parallel
//! Differentiable Simulation", ICLR 2022) through the simulation.
//!
//! The batch runs windows of [`ShacSettings::window`] steps. Each window starts from the end
//! states of the previous one; every [`Task::horizon`] steps the batch is reset to the model's
//! initial state with newly drawn physical parameters (an episode). Per window:
//!
//! 1. The policy runs forward on the GPU in a [`Rollout`] of `window` steps, recording the state
//!    after every step ([`Rollout::forward_recording`]). Per-step, per-instance rewards are
//!    minus the task's per-step loss terms, recomputed on the host by the loss twin
//!    ([`crate::engine::twin::loss::loss_twin`]) from those recorded states: the rollout's loss
//!    kernel only keeps per-instance sums, and reading back the states costs no extra kernel.
//! 2. The actor loss per instance is `-(sum of the window's rewards + gamma^H V'(s_H)) / H`,
//!    with `V'` the target critic. Its gradient is exact through the window: the rollout's
//!    adjoint, seeded at the final state with `dV'/ds_H` from the critic's backward pass.
//!    The rewards inside the window are summed undiscounted (the GPU loss terms have no
//!    per-step weight); `gamma` discounts the bootstrap and the critic's targets.
//! 3. Observation normalisation: running mean and variance of the policy's observations,
//!    frozen within a window and updated after it. It is applied exactly by rewriting the first
//!    layer (and the skip path) of the policy ([`effective_params`]), so the GPU policy kernels
//!    run unchanged; the gradient is mapped back by the chain rule ([`normalized_gradient`]).
//! 4. The critic, an MLP on the host in f64 ([`Mlp`]), is regressed on TD(lambda) targets
//!    ([`td_lambda_targets`]) computed from the window's rewards and the target critic's values,
//!    with Adam over shuffled minibatches; the target critic follows it by Polyak averaging.
//!    Its input is the raw state of every body except the horizontal position (height,
//!    orientation, linear and angular velocity), normalised by running statistics too, so
//!    `dV/ds_H` is a gather.
//!
//! Everything is deterministic: the batch randomisation and the critic's minibatches are drawn
//! from counter-based generators keyed by the seed, and a checkpoint holds every number the next
//! window depends on (the batch's states included), so a resumed run is bit for bit the
//! uninterrupted one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::engine::buffers;
use crate::engine::gpu::Gpu;
use crate::engine::layout::{BODY_STATE_LEN, Compiled};
use crate::engine::sim::BodyState;
use crate::engine::twin::Instance;
use crate::error::{Error, Result};
use crate::grad::loss::{Loss, When, loss_twin};
use crate::grad::rollout::{Rollout, RolloutOptions};
use crate::learn::algorithm::{Algorithm, ShacSettings};
use crate::learn::optim::GpuOptimizer;
use crate::learn::policy::gpu::PolicyKernels;
use crate::learn::policy::{PolicyLayout, observe_twin};
use crate::learn::random::unit_random;
use crate::learn::tasks::Task;
use crate::learn::train::{IterationStats, TrainOptions};

/// Smallest standard deviation a normalised input is divided by: a constant input (a sensor
/// that never moves) would otherwise be scaled without bound.
pub const MIN_STD: f64 = 1e-2;

/// Running mean and variance of vectors, merged batch by batch (Chan et al.'s parallel
/// formula, so the order of the batches within one update does not matter).
#[derive(Clone, Debug, PartialEq)]
pub struct RunningStats {
    /// Samples seen.
    pub count: f64,
    /// Mean per component.
    pub mean: Vec<f64>,
    /// Population variance per component.
    pub var: Vec<f64>,
}

impl RunningStats {
    /// No samples yet: mean 0, variance 1 (normalising is then the identity).
    pub fn new(width: usize) -> Self {
        RunningStats {
            count: 0.0,
            mean: vec![0.0; width],
            var: vec![1.0; width],
        }
    }

    /// Merges the samples `rows` (each `mean.len()` wide, concatenated).
    pub fn update(&mut self, rows: &[f64]) {
        let w = self.mean.len();
        if w == 0 || rows.is_empty() {
            return;
        }
        let n = (rows.len() / w) as f64;
        let mut mean = vec![0.0; w];
        for r in rows.chunks_exact(w) {
            mean.iter_mut().zip(r).for_each(|(m, x)| *m += x);
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0; w];
        for r in rows.chunks_exact(w) {
            for k in 0..w {
                let d = r[k] - mean[k];
                var[k] += d * d;
            }
        }
        var.iter_mut().for_each(|v| *v /= n);
        if self.count == 0.0 {
            self.mean = mean;
            self.var = var;
            self.count = n;
            return;
        }
        let total = self.count + n;
        for k in 0..w {
            let delta = mean[k] - self.mean[k];
            let m2 = self.var[k] * self.count + var[k] * n + delta * delta * self.count * n / total;
            self.mean[k] += delta * n / total;
            self.var[k] = m2 / total;
        }
        self.count = total;
    }

    /// The standard deviation that component `k` is divided by.
    pub fn std(&self, k: usize) -> f64 {
        self.var[k].sqrt().max(MIN_STD)
    }

    /// `(x - mean) / std`, component-wise.
    pub fn normalize(&self, x: &[f64]) -> Vec<f64> {
        x.iter()
            .enumerate()
            .map(|(k, v)| (v - self.mean[k]) / self.std(k))
            .collect()
    }
}

/// The parameters the GPU policy runs so that it sees raw observations and computes what the
/// policy `theta` computes on normalised ones: the first layer's weights divided by the
/// observations' standard deviations and its bias shifted by the means (the skip path likewise,
/// its shift going into the output layer's bias).
pub fn effective_params(layout: &PolicyLayout, theta: &[f32], stats: &RunningStats) -> Vec<f32> {
    let mut p: Vec<f64> = theta.iter().map(|&v| f64::from(v)).collect();
    let first = layout.layers[0];
    let last = *layout.layers.last().expect("a policy has an output layer");
    let mut rescale = |w_offset: usize, b_offset: usize, outputs: usize| {
        for o in 0..outputs {
            let mut shift = 0.0;
            for k in 0..layout.n_obs {
                let w = f64::from(theta[w_offset + o * layout.n_obs + k]);
                p[w_offset + o * layout.n_obs + k] = w / stats.std(k);
                shift += w * stats.mean[k] / stats.std(k);
            }
            p[b_offset + o] -= shift;
        }
    };
    rescale(first.w_offset, first.b_offset, first.outputs);
    if let Some(s) = layout.skip_offset {
        rescale(s, last.b_offset, layout.n_out);
    }
    p.iter().map(|&v| v as f32).collect()
}

/// The gradient with respect to the normalised-space parameters `theta`, given the gradient
/// `grad` with respect to [`effective_params`] (the chain rule through that map).
pub fn normalized_gradient(layout: &PolicyLayout, grad: &[f64], stats: &RunningStats) -> Vec<f64> {
    let mut g = grad.to_vec();
    let first = layout.layers[0];
    let last = *layout.layers.last().expect("a policy has an output layer");
    let mut map = |w_offset: usize, b_offset: usize, outputs: usize| {
        for o in 0..outputs {
            let gb = grad[b_offset + o];
            for k in 0..layout.n_obs {
                let i = w_offset + o * layout.n_obs + k;
                g[i] = (grad[i] - gb * stats.mean[k]) / stats.std(k);
            }
        }
    };
    map(first.w_offset, first.b_offset, first.outputs);
    if let Some(s) = layout.skip_offset {
        map(s, last.b_offset, layout.n_out);
    }
    g
}

/// TD(lambda) returns of one window: `rewards[t]` is the reward of step `t` (reaching state
/// `t + 1`), `next_values[t]` the value of state `t + 1`. The last return bootstraps from the
/// window's end: `G_{H-1} = r_{H-1} + gamma V(s_H)`, and before it
/// `G_t = r_t + gamma ((1 - lambda) V(s_{t+1}) + lambda G_{t+1})`.
pub fn td_lambda_targets(
    rewards: &[f64],
    next_values: &[f64],
    gamma: f64,
    lambda: f64,
) -> Vec<f64> {
    let h = rewards.len();
    let mut g = vec![0.0; h];
    let mut next = 0.0;
    for t in (0..h).rev() {
        let v = next_values[t];
        g[t] = if t + 1 == h {
            rewards[t] + gamma * v
        } else {
            rewards[t] + gamma * ((1.0 - lambda) * v + lambda * next)
        };
        next = g[t];
    }
    g
}

/// A dense network on the host in f64: tanh hidden layers, one linear output. Parameters are
/// per layer the weights (outputs x inputs, row-major) and then the biases.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    /// Layer widths, input first, output (1) last.
    pub widths: Vec<usize>,
    /// Parameters.
    pub params: Vec<f64>,
}

impl Mlp {
    /// A network with Glorot-uniform weights keyed by `seed` and zero biases.
    pub fn new(inputs: usize, hidden: &[usize], seed: u64) -> Self {
        let mut widths = vec![inputs];
        widths.extend(hidden);
        widths.push(1);
        let mut params = Vec::new();
        for l in 0..widths.len() - 1 {
            let (i, o) = (widths[l], widths[l + 1]);
            let bound = (6.0 / (i + o) as f64).sqrt();
            params.extend(
                (0..i * o).map(|k| (2.0 * unit_random(seed, l as u64, k as u64) - 1.0) * bound),
            );
            params.extend(std::iter::repeat_n(0.0, o));
        }
        Mlp { widths, params }
    }

    /// Parameters in total.
    pub fn n_params(&self) -> usize {
        self.params.len()
    }

    /// Every layer's output (the input first) for input `x`, with parameters `params`.
    fn activations(&self, params: &[f64], x: &[f64]) -> Vec<Vec<f64>> {
        let mut acts = vec![x.to_vec()];
        let mut offset = 0;
        for l in 0..self.widths.len() - 1 {
            let (i, o) = (self.widths[l], self.widths[l + 1]);
            let input = &acts[l];
            let (w, b) = (
                &params[offset..offset + i * o],
                &params[offset + i * o..offset + i * o + o],
            );
            let last = l + 2 == self.widths.len();
            let y: Vec<f64> = (0..o)
                .map(|r| {
                    let z = b[r]
                        + w[r * i..(r + 1) * i]
                            .iter()
                            .zip(input)
                            .map(|(a, b)| a * b)
                            .sum::<f64>();
                    if last { z } else { z.tanh() }
                })
                .collect();
            offset += i * o + o;
            acts.push(y);
        }
        acts
    }

    /// The value of input `x` under parameters `params` (this network's or a copy's, such as a
    /// target network's).
    pub fn value_with(&self, params: &[f64], x: &[f64]) -> f64 {
        self.activations(params, x).last().expect("an output layer")[0]
    }

    /// The value of `x` and its gradients: `d_value * dV/dparams` added into `grads`, and
    /// `dV/dx` returned.
    pub fn backward_with(
        &self,
        params: &[f64],
        x: &[f64],
        d_value: f64,
        grads: &mut [f64],
    ) -> (f64, Vec<f64>) {
        let acts = self.activations(params, x);
        let layers = self.widths.len() - 1;
        let mut offsets = Vec::with_capacity(layers);
        let mut offset = 0;
        for l in 0..layers {
            offsets.push(offset);
            offset += self.widths[l] * self.widths[l + 1] + self.widths[l + 1];
        }
        let mut delta = vec![d_value];
        for l in (0..layers).rev() {
            let (i, o) = (self.widths[l], self.widths[l + 1]);
            let w0 = offsets[l];
            let input = &acts[l];
            for r in 0..o {
                grads[w0 + i * o + r] += delta[r];
                for k in 0..i {
                    grads[w0 + r * i + k] += delta[r] * input[k];
                }
            }
            let mut d_in = vec![0.0; i];
            for (r, d) in delta.iter().enumerate() {
                for k in 0..i {
                    d_in[k] += params[w0 + r * i + k] * d;
                }
            }
            if l > 0 {
                // The input of layer l is tanh's output a: the slope is 1 - a^2.
                for (d, a) in d_in.iter_mut().zip(input) {
                    *d *= 1.0 - a * a;
                }
            }
            delta = d_in;
        }
        (acts[layers][0], delta)
    }
}

/// Adam on the host, in f64 (the critic's optimiser).
#[derive(Clone, Debug, PartialEq)]
pub struct HostAdam {
    /// Learning rate.
    pub learning_rate: f64,
    /// First moments.
    pub m: Vec<f64>,
    /// Second moments.
    pub v: Vec<f64>,
    /// Updates done.
    pub step: u32,
}

impl HostAdam {
    /// Zero moments for `n` parameters.
    pub fn new(n: usize, learning_rate: f64) -> Self {
        HostAdam {
            learning_rate,
            m: vec![0.0; n],
            v: vec![0.0; n],
            step: 0,
        }
    }

    /// One update of `params` with gradient `grad` (beta1 0.9, beta2 0.999, epsilon 1e-8).
    pub fn update(&mut self, params: &mut [f64], grad: &[f64]) {
        const B1: f64 = 0.9;
        const B2: f64 = 0.999;
        self.step += 1;
        let c1 = 1.0 - B1.powi(self.step as i32);
        let c2 = 1.0 - B2.powi(self.step as i32);
        for k in 0..params.len() {
            self.m[k] = B1 * self.m[k] + (1.0 - B1) * grad[k];
            self.v[k] = B2 * self.v[k] + (1.0 - B2) * grad[k] * grad[k];
            params[k] -= self.learning_rate * (self.m[k] / c1) / ((self.v[k] / c2).sqrt() + 1e-8);
        }
    }
}

/// Indices into one instance's raw state of the critic's inputs: per body (slot 0 is the world)
/// its height, orientation, linear and angular velocity: 11 values, the horizontal position
/// left out so that the value does not depend on where the robot has got to.
pub fn critic_state_slots(n_bodies: usize) -> Vec<usize> {
    let mut slots = Vec::with_capacity(11 * n_bodies);
    for b in 1..=n_bodies {
        let base = b * BODY_STATE_LEN;
        slots.extend((2..BODY_STATE_LEN).map(|k| base + k));
    }
    slots
}

/// The metadata of a SHAC checkpoint, stored in `checkpoint.bin` before the numbers.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ShacCheckpointMeta {
    algorithm: String,
    task: String,
    iteration: u32,
    seed: u64,
    instances: usize,
    episode: u64,
    episode_step: u32,
    optimizer_step: u32,
    critic_step: u32,
    obs_count: f64,
    feature_count: f64,
    /// Length of every array of numbers, in order.
    lengths: Vec<usize>,
    /// FNV-1a hash of the numbers.
    checksum: u64,
}

/// The first bytes of a SHAC checkpoint file.
pub const SHAC_CHECKPOINT_MAGIC: &[u8; 8] = b"BDSHAC01";

/// What one window measured beyond [`IterationStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WindowReport {
    /// Mean reward per step over the window and the batch (for `quadruped-run`: the torso's
    /// forward speed, m/s).
    pub mean_reward: f64,
    /// The critic's mean squared error on its last pass over the window's data.
    pub critic_loss: f64,
    /// When this window ended an episode: the mean reward per step over that whole episode,
    /// averaged over the batch.
    pub episode_mean_reward: Option<f64>,
}

/// What one window's forward and backward pass produced.
struct WindowPass {
    frames: Vec<Vec<f32>>,
    rewards: Vec<f64>,
    params: Vec<f32>,
    loss: f64,
    gradient: Vec<f64>,
}

/// A policy trained by the short-horizon actor-critic.
pub struct ShacTrainer {
    gpu: Arc<Gpu>,
    task: Task,
    settings: ShacSettings,
    layout: PolicyLayout,
    compiled: Compiled,
    rollout: Rollout,
    params: wgpu::Buffer,
    grads: wgpu::Buffer,
    optimizer: GpuOptimizer,
    options: TrainOptions,
    loss_packed: Vec<u32>,
    theta: Vec<f32>,
    obs_stats: RunningStats,
    feature_stats: RunningStats,
    feature_slots: Vec<usize>,
    critic: Mlp,
    target_critic: Vec<f64>,
    critic_adam: HostAdam,
    states: Vec<f32>,
    episode_reward: Vec<f64>,
    episode: u64,
    episode_step: u32,
    iteration: u32,
    last_report: WindowReport,
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl ShacTrainer {
    /// A fresh policy and critic (initialised from `options.seed`) for `task`, whose algorithm
    /// must be [`Algorithm::Shac`].
    pub fn new(gpu: Arc<Gpu>, task: Task, options: TrainOptions) -> Result<ShacTrainer> {
        let Algorithm::Shac(settings) = task.algorithm.clone() else {
            return Err(Error::InvalidInput(format!(
                "task '{}' does not use the short-horizon actor-critic",
                task.name
            )));
        };
        if options.instances == 0 {
            return Err(Error::InvalidInput(
                "the number of instances must be at least 1".into(),
            ));
        }
        if settings.window == 0 || !task.horizon.is_multiple_of(settings.window) {
            return Err(Error::InvalidInput(format!(
                "task '{}': the window ({} steps) must divide the episode ({} steps)",
                task.name, settings.window, task.horizon
            )));
        }
        if !(0.0..=1.0).contains(&settings.gamma) || !(0.0..=1.0).contains(&settings.lambda) {
            return Err(Error::InvalidInput(format!(
                "task '{}': gamma and lambda must lie in [0, 1]",
                task.name
            )));
        }
        if settings.critic_minibatches == 0 || settings.critic_hidden.contains(&0) {
            return Err(Error::InvalidInput(format!(
                "task '{}': the critic needs at least one minibatch and positive layer widths",
                task.name
            )));
        }
        if task.loss.terms.iter().any(|t| t.when != When::EveryStep) {
            return Err(Error::InvalidInput(format!(
                "task '{}': the actor-critic takes per-step reward terms only",
                task.name
            )));
        }
        let layout = PolicyLayout::new(&task.policy, &task.model)?;
        let compiled = Compiled::new(&task.model);
        // The rollout's loss is the window's mean per-step loss (minus the mean reward).
        let window = settings.window;
        let mut window_loss = Loss::new();
        for t in &task.loss.terms {
            window_loss = window_loss.term(
                &t.target,
                t.quantity.clone(),
                t.weight / window as f32,
                t.when,
            );
        }
        let mut rollout_options = RolloutOptions::new(window);
        rollout_options.command_gradients = false;
        rollout_options.param_gradients = false;
        rollout_options.max_chunk = options.max_chunk;
        let mut rollout = Rollout::new(
            gpu.clone(),
            &task.model,
            options.instances,
            &window_loss,
            rollout_options,
        )?;
        let theta = layout.init_params(options.seed);
        let kernels = PolicyKernels::new(&gpu, &layout, &rollout, &theta)?;
        let params = kernels.params_buffer().clone();
        let grads = kernels.grads_buffer().clone();
        rollout.set_hook(Box::new(kernels));
        let optimizer = GpuOptimizer::new(
            gpu.clone(),
            task.optimizer,
            &params,
            &grads,
            layout.n_params,
        )?;
        let feature_slots = critic_state_slots(task.model.bodies.len());
        let hidden: Vec<usize> = settings.critic_hidden.iter().map(|&w| w as usize).collect();
        let critic = Mlp::new(feature_slots.len(), &hidden, options.seed ^ 0xC417_1C00);
        let target_critic = critic.params.clone();
        let critic_adam =
            HostAdam::new(critic.n_params(), f64::from(settings.critic_learning_rate));
        let loss_packed = task.loss.pack(&task.model)?;
        Ok(ShacTrainer {
            obs_stats: RunningStats::new(layout.n_obs),
            feature_stats: RunningStats::new(feature_slots.len()),
            episode_reward: vec![0.0; options.instances],
            gpu,
            settings,
            layout,
            compiled,
            rollout,
            params,
            grads,
            optimizer,
            loss_packed,
            theta,
            feature_slots,
            critic,
            target_critic,
            critic_adam,
            states: Vec::new(),
            episode: 0,
            episode_step: 0,
            iteration: 0,
            last_report: WindowReport::default(),
            task,
            options,
        })
    }

    /// The task.
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// The algorithm's settings.
    pub fn settings(&self) -> &ShacSettings {
        &self.settings
    }

    /// The policy layout.
    pub fn layout(&self) -> &PolicyLayout {
        &self.layout
    }

    /// Robots per window.
    pub fn instances(&self) -> usize {
        self.options.instances
    }

    /// Windows (actor updates) done.
    pub fn iteration(&self) -> u32 {
        self.iteration
    }

    /// Simulated robot-steps of training so far (robots x window x windows).
    pub fn robot_steps(&self) -> u64 {
        u64::from(self.iteration) * u64::from(self.settings.window) * self.options.instances as u64
    }

    /// What the last window measured beyond its [`IterationStats`].
    pub fn last_report(&self) -> WindowReport {
        self.last_report
    }

    /// The policy's parameters in normalised-observation space.
    pub fn params(&self) -> &[f32] {
        &self.theta
    }

    /// The observation statistics the policy normalises with.
    pub fn observation_stats(&self) -> &RunningStats {
        &self.obs_stats
    }

    /// The critic.
    pub fn critic(&self) -> &Mlp {
        &self.critic
    }

    /// Physical parameters of every instance for `episode`.
    fn episode_params(&self, episode: u64) -> Vec<f32> {
        let mut p = Vec::new();
        for i in 0..self.options.instances {
            p.extend(self.task.randomization.apply(
                &self.compiled,
                self.options.seed,
                i as u64,
                episode,
            ));
        }
        p
    }

    fn reset_states(&mut self) {
        let one = &self.compiled.initial_state;
        self.states = one.repeat(self.options.instances);
        self.episode_reward.iter_mut().for_each(|r| *r = 0.0);
    }

    /// Host instances carrying each robot's parameters, for the twins that read the states.
    fn host_instances(&self, params: &[f32]) -> Vec<Instance<'_, f64>> {
        let width = self.compiled.default_params.len();
        (0..self.options.instances)
            .map(|i| {
                let mut inst = Instance::<f64>::new(&self.compiled);
                inst.params = params[i * width..(i + 1) * width]
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect();
                inst
            })
            .collect()
    }

    /// Runs one window forward with the current policy from the current states, recording every
    /// step: the frames (initial state first) and the per-step rewards (instance-major).
    fn run_window(&mut self, params: &[f32]) -> Result<(Vec<Vec<f32>>, Vec<f64>)> {
        if self.episode_step == 0 || self.states.is_empty() {
            self.reset_states();
        }
        self.rollout.set_params(params)?;
        self.rollout.set_initial_state(&self.states)?;
        let effective = effective_params(&self.layout, &self.theta, &self.obs_stats);
        self.gpu
            .queue
            .write_buffer(&self.params, 0, bytemuck::cast_slice(&effective));
        let frames = self.rollout.forward_recording_raw(1)?;
        let h = self.settings.window as usize;
        let n = self.options.instances;
        let state_len = self.compiled.header.state_len as usize;
        let mut instances = self.host_instances(params);
        let mut rewards = vec![0.0; n * h];
        for (t, frame) in frames.iter().enumerate().skip(1) {
            for (i, inst) in instances.iter_mut().enumerate() {
                inst.state = frame[i * state_len..(i + 1) * state_len]
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect();
                rewards[i * h + t - 1] = -loss_twin(
                    &self.loss_packed,
                    self.task.loss.terms.len(),
                    inst,
                    t as u32,
                    u32::MAX,
                    None,
                );
            }
        }
        Ok((frames, rewards))
    }

    fn features(&self, frame: &[f32], i: usize) -> Vec<f64> {
        let state_len = self.compiled.header.state_len as usize;
        let s = &frame[i * state_len..(i + 1) * state_len];
        self.feature_slots
            .iter()
            .map(|&k| f64::from(s[k]))
            .collect()
    }

    /// The window's forward and backward pass with the current policy: the frames, the
    /// rewards, the batch's parameters, the mean actor loss and the summed gradient of the actor
    /// loss with respect to the normalised-space parameters. The GPU gradient buffer is left
    /// zero and the parameter buffer holds the effective parameters.
    fn window_pass(&mut self) -> Result<WindowPass> {
        let n = self.options.instances;
        let h = self.settings.window as usize;
        let gamma = f64::from(self.settings.gamma);
        let state_len = self.compiled.header.state_len as usize;
        let params = self.episode_params(self.episode);
        let (frames, rewards) = self.run_window(&params)?;
        // The bootstrap: gamma^H V'(s_H) / H per instance, and its gradient as the final-state
        // seed of the adjoint (the actor minimises minus it).
        let last = &frames[h];
        let bootstrap = gamma.powi(h as i32) / h as f64;
        let mut seed = vec![0.0f32; n * state_len];
        let mut values = 0.0;
        let mut scratch = vec![0.0; self.critic.n_params()];
        for i in 0..n {
            let x = self.feature_stats.normalize(&self.features(last, i));
            let (v, dx) = self
                .critic
                .backward_with(&self.target_critic, &x, 1.0, &mut scratch);
            values += v;
            for (k, &slot) in self.feature_slots.iter().enumerate() {
                seed[i * state_len + slot] =
                    (-bootstrap * dx[k] / self.feature_stats.std(k)) as f32;
            }
        }
        let gradients = self.rollout.backward_from(Some(&seed), &mut |_, _| {})?;
        let window_loss: f64 = gradients.loss.iter().map(|&l| f64::from(l)).sum::<f64>() / n as f64;
        let loss = window_loss - bootstrap * values / n as f64;
        let mut g = buffers::read_buffer(&self.gpu, &self.grads)?;
        g.truncate(self.layout.n_params);
        let g: Vec<f64> = g.iter().map(|&v| f64::from(v)).collect();
        self.gpu.queue.write_buffer(
            &self.grads,
            0,
            bytemuck::cast_slice(&vec![0.0f32; self.layout.n_params]),
        );
        let gradient = normalized_gradient(&self.layout, &g, &self.obs_stats);
        Ok(WindowPass {
            frames,
            rewards,
            params,
            loss,
            gradient,
        })
    }

    /// The mean actor loss of the next window and its mean gradient with respect to the
    /// normalised-space policy parameters, without updating anything (the batch's states,
    /// the statistics and the critic stay as they are).
    pub fn actor_gradient(&mut self) -> Result<(f64, Vec<f64>)> {
        let saved = (self.states.clone(), self.episode_reward.clone());
        let pass = self.window_pass()?;
        (self.states, self.episode_reward) = saved;
        let n = self.options.instances as f64;
        Ok((pass.loss, pass.gradient.iter().map(|g| g / n).collect()))
    }

    /// Replaces the policy's normalised-space parameters (the optimiser's moments stay).
    pub fn set_params(&mut self, theta: &[f32]) -> Result<()> {
        if theta.len() != self.layout.n_params {
            return Err(Error::InvalidInput(format!(
                "{} policy parameters given, the policy has {}",
                theta.len(),
                self.layout.n_params
            )));
        }
        self.theta = theta.to_vec();
        Ok(())
    }

    /// Runs one window: forward, the actor's exact gradient through it and an update, then the
    /// critic's regression and the target critic's averaging.
    pub fn step(&mut self) -> Result<IterationStats> {
        let started = Instant::now();
        let n = self.options.instances;
        let h = self.settings.window as usize;
        let state_len = self.compiled.header.state_len as usize;
        let WindowPass {
            frames,
            rewards,
            params,
            loss,
            gradient,
        } = self.window_pass()?;
        let last = &frames[h];
        // The optimiser takes the batch mean of the summed gradient.
        let g: Vec<f32> = gradient.iter().map(|&v| v as f32).collect();
        self.gpu
            .queue
            .write_buffer(&self.grads, 0, bytemuck::cast_slice(&g));
        self.gpu
            .queue
            .write_buffer(&self.params, 0, bytemuck::cast_slice(&self.theta));
        let learning_rate = self.optimizer.config().rate_at(self.optimizer.step + 1);
        let grad_norm = self.optimizer.update(1.0 / n as f32)?;
        if !grad_norm.is_finite() {
            return Err(Error::NonFiniteGradient(vec![]));
        }
        let mut theta = buffers::read_buffer(&self.gpu, &self.params)?;
        theta.truncate(self.layout.n_params);
        self.theta = theta;

        // Statistics of what this window saw, for the next window (frozen within one).
        let mut instances = self.host_instances(&params);
        let mut observations = Vec::with_capacity(n * h * self.layout.n_obs);
        let mut features = Vec::with_capacity(n * (h + 1) * self.feature_slots.len());
        for (t, frame) in frames.iter().enumerate() {
            for (i, inst) in instances.iter_mut().enumerate() {
                if t < h {
                    inst.state = frame[i * state_len..(i + 1) * state_len]
                        .iter()
                        .map(|&v| f64::from(v))
                        .collect();
                    observations.extend(observe_twin(&self.layout, inst, t as u32));
                }
                features.extend(self.features(frame, i));
            }
        }
        if self.settings.normalize_observations {
            self.obs_stats.update(&observations);
            // The critic's inputs at steps 0..H-1 (the end state is the next window's first).
            self.feature_stats
                .update(&features[..n * h * self.feature_slots.len()]);
        }
        let critic_loss = self.train_critic(&features, &rewards)?;

        let mean_reward = rewards.iter().sum::<f64>() / (n * h) as f64;
        for i in 0..n {
            self.episode_reward[i] += rewards[i * h..(i + 1) * h].iter().sum::<f64>();
        }
        self.states = last.clone();
        self.episode_step += self.settings.window;
        let mut episode_mean_reward = None;
        if self.episode_step >= self.task.horizon {
            episode_mean_reward = Some(
                self.episode_reward.iter().sum::<f64>() / (n as f64 * f64::from(self.task.horizon)),
            );
            self.episode += 1;
            self.episode_step = 0;
        }
        self.last_report = WindowReport {
            mean_reward,
            critic_loss,
            episode_mean_reward,
        };
        self.iteration += 1;
        Ok(IterationStats {
            iteration: self.iteration,
            loss: loss as f32,
            grad_norm,
            learning_rate,
            seconds: started.elapsed().as_secs_f32(),
        })
    }

    /// Regresses the critic on the window's TD(lambda) targets; returns the mean squared error
    /// of its last pass. `features` holds every instance's raw critic inputs at steps 0..=H
    /// (step-major), `rewards` the per-step rewards (instance-major).
    fn train_critic(&mut self, features: &[f64], rewards: &[f64]) -> Result<f64> {
        let n = self.options.instances;
        let h = self.settings.window as usize;
        let w = self.feature_slots.len();
        let at = |t: usize, i: usize| &features[(t * n + i) * w..(t * n + i + 1) * w];
        let mut inputs = Vec::with_capacity(n * h);
        let mut targets = Vec::with_capacity(n * h);
        for i in 0..n {
            let next_values: Vec<f64> = (1..=h)
                .map(|t| {
                    let x = self.feature_stats.normalize(at(t, i));
                    self.critic.value_with(&self.target_critic, &x)
                })
                .collect();
            let g = td_lambda_targets(
                &rewards[i * h..(i + 1) * h],
                &next_values,
                f64::from(self.settings.gamma),
                f64::from(self.settings.lambda),
            );
            for (t, target) in g.into_iter().enumerate() {
                inputs.push(self.feature_stats.normalize(at(t, i)));
                targets.push(target);
            }
        }
        let samples = inputs.len();
        let batches = (self.settings.critic_minibatches as usize).clamp(1, samples);
        let mut last_loss = 0.0;
        let mut grad = vec![0.0; self.critic.n_params()];
        for pass in 0..self.settings.critic_iterations {
            // A shuffle keyed by (seed, iteration, pass): the same on a resumed run.
            let key = self.options.seed
                ^ 0x5EED_C417
                ^ (u64::from(self.iteration) << 20)
                ^ u64::from(pass);
            let mut order: Vec<(u64, usize)> = (0..samples)
                .map(|k| {
                    (
                        (unit_random(key, 0, k as u64) * (1u64 << 53) as f64) as u64,
                        k,
                    )
                })
                .collect();
            order.sort_unstable();
            let mut total = 0.0;
            for b in 0..batches {
                let (lo, hi) = (b * samples / batches, (b + 1) * samples / batches);
                if lo == hi {
                    continue;
                }
                grad.iter_mut().for_each(|g| *g = 0.0);
                let scale = 1.0 / (hi - lo) as f64;
                for &(_, k) in &order[lo..hi] {
                    let v = self.critic.value_with(&self.critic.params, &inputs[k]);
                    let e = v - targets[k];
                    total += e * e;
                    self.critic.backward_with(
                        &self.critic.params,
                        &inputs[k],
                        2.0 * e * scale,
                        &mut grad,
                    );
                }
                self.critic_adam.update(&mut self.critic.params, &grad);
            }
            last_loss = total / samples as f64;
        }
        if !last_loss.is_finite() || self.critic.params.iter().any(|p| !p.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "the critic diverged at window {} (mean squared error {last_loss})",
                self.iteration + 1
            )));
        }
        let alpha = f64::from(self.settings.target_critic_alpha);
        for (t, c) in self.target_critic.iter_mut().zip(&self.critic.params) {
            *t = alpha * *t + (1.0 - alpha) * c;
        }
        Ok(last_loss)
    }

    /// Runs `episodes` whole episodes of the current policy on fresh batches (no update, the
    /// training state untouched) and returns the mean reward per step over them and the batch
    /// (for `quadruped-run`, the average forward speed in m/s). Episode `k` draws the physical
    /// parameters of a key no training episode uses.
    pub fn evaluate(&mut self, episodes: u32) -> Result<f64> {
        let saved = (
            self.states.clone(),
            self.episode_step,
            self.episode_reward.clone(),
        );
        let mut total = 0.0;
        let windows = self.task.horizon / self.settings.window;
        for k in 0..episodes {
            let params = self.episode_params(u64::MAX - u64::from(k));
            self.episode_step = 0;
            for _ in 0..windows {
                let (frames, rewards) = self.run_window(&params)?;
                total += rewards.iter().sum::<f64>();
                self.states = frames[self.settings.window as usize].clone();
                self.episode_step += self.settings.window;
            }
        }
        (self.states, self.episode_step, self.episode_reward) = saved;
        Ok(total
            / (f64::from(episodes) * f64::from(self.task.horizon) * self.options.instances as f64))
    }

    /// The body states of the batch (instance-major, model order) after every `every` steps
    /// of one episode of the current policy from a reset, the initial state first, for the
    /// viewer.
    pub fn record(&mut self, every: u32) -> Result<Vec<Vec<BodyState>>> {
        let state_len = self.compiled.header.state_len as usize;
        let frames = self.record_raw(every)?;
        Ok(frames
            .iter()
            .map(|raw| crate::engine::sim::bodies_from_raw(&self.task.model, state_len, raw))
            .collect())
    }

    /// [`ShacTrainer::record`] as raw state arrays (instance-major, `state_len` floats each).
    pub fn record_raw(&mut self, every: u32) -> Result<Vec<Vec<f32>>> {
        let every = every.max(1);
        let saved = (
            self.states.clone(),
            self.episode_step,
            self.episode_reward.clone(),
        );
        let params = self.episode_params(self.episode);
        self.episode_step = 0;
        let mut out = Vec::new();
        let mut step = 0u32;
        for _ in 0..self.task.horizon / self.settings.window {
            let (frames, _) = self.run_window(&params)?;
            for (t, frame) in frames.iter().enumerate() {
                let global = step + t as u32;
                if (t > 0 || step == 0)
                    && (global.is_multiple_of(every) || global == self.task.horizon)
                {
                    out.push(frame.clone());
                }
            }
            self.states = frames[self.settings.window as usize].clone();
            step += self.settings.window;
            self.episode_step = step;
        }
        (self.states, self.episode_step, self.episode_reward) = saved;
        Ok(out)
    }

    fn numbers(&self) -> Result<Vec<Vec<f64>>> {
        let (m, v) = self.optimizer.moments()?;
        let f = |x: &[f32]| x.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();
        Ok(vec![
            f(&self.theta),
            f(&m),
            f(&v),
            self.critic.params.clone(),
            self.critic_adam.m.clone(),
            self.critic_adam.v.clone(),
            self.target_critic.clone(),
            self.obs_stats.mean.clone(),
            self.obs_stats.var.clone(),
            self.feature_stats.mean.clone(),
            self.feature_stats.var.clone(),
            f(&self.states),
            self.episode_reward.clone(),
        ])
    }

    /// Saves everything the next window depends on into `dir/checkpoint.bin`, atomically:
    /// [`SHAC_CHECKPOINT_MAGIC`], the length of the JSON metadata (u32, little-endian), the
    /// metadata and the numbers (f64, little-endian; every f32 is exact in f64).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let arrays = self.numbers()?;
        let mut numbers = Vec::new();
        for x in arrays.iter().flatten() {
            numbers.extend_from_slice(&x.to_le_bytes());
        }
        let meta = ShacCheckpointMeta {
            algorithm: "shac".into(),
            task: self.task.name.clone(),
            iteration: self.iteration,
            seed: self.options.seed,
            instances: self.options.instances,
            episode: self.episode,
            episode_step: self.episode_step,
            optimizer_step: self.optimizer.step,
            critic_step: self.critic_adam.step,
            obs_count: self.obs_stats.count,
            feature_count: self.feature_stats.count,
            lengths: arrays.iter().map(Vec::len).collect(),
            checksum: fnv1a(&numbers),
        };
        let json =
            serde_json::to_string_pretty(&meta).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let mut file = Vec::with_capacity(12 + json.len() + numbers.len());
        file.extend_from_slice(SHAC_CHECKPOINT_MAGIC);
        file.extend_from_slice(&(json.len() as u32).to_le_bytes());
        file.extend_from_slice(json.as_bytes());
        file.extend_from_slice(&numbers);
        crate::io::files::write_atomic(&Self::checkpoint_path(dir), &file)
    }

    fn read_checkpoint(dir: &Path) -> Result<(ShacCheckpointMeta, Vec<Vec<f64>>)> {
        let path = Self::checkpoint_path(dir);
        let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
        let damaged = |why: &str| {
            Error::InvalidInput(format!(
                "{}: damaged or not a backdrive actor-critic checkpoint ({why})",
                path.display()
            ))
        };
        let rest = bytes
            .strip_prefix(SHAC_CHECKPOINT_MAGIC)
            .ok_or_else(|| damaged("no actor-critic header; is it a backpropagation run's?"))?;
        if rest.len() < 4 {
            return Err(damaged("cut short"));
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let json = rest.get(4..4 + len).ok_or_else(|| damaged("cut short"))?;
        let meta: ShacCheckpointMeta =
            serde_json::from_slice(json).map_err(|e| damaged(&format!("metadata: {e}")))?;
        let numbers = &rest[4 + len..];
        let expected: usize = meta.lengths.iter().sum::<usize>() * 8;
        if numbers.len() != expected || fnv1a(numbers) != meta.checksum {
            return Err(damaged("its numbers do not match its metadata"));
        }
        let mut floats = numbers
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")));
        let arrays = meta
            .lengths
            .iter()
            .map(|&l| floats.by_ref().take(l).collect())
            .collect();
        Ok((meta, arrays))
    }

    /// The task, iteration, seed and batch of the checkpoint in `dir`, without restoring it.
    pub fn checkpoint_info(dir: &Path) -> Result<crate::learn::train::CheckpointInfo> {
        let (meta, _) = Self::read_checkpoint(dir)?;
        Ok(crate::learn::train::CheckpointInfo {
            task: meta.task,
            iteration: meta.iteration,
            seed: meta.seed,
            instances: meta.instances,
        })
    }

    /// Restores a checkpoint saved by [`ShacTrainer::save`] for the same task and batch; the
    /// trainer's seed becomes the checkpoint's.
    pub fn load(&mut self, dir: &Path) -> Result<()> {
        let path = Self::checkpoint_path(dir);
        let (meta, arrays) = Self::read_checkpoint(dir)?;
        let current = self.numbers()?;
        let lengths: Vec<usize> = current.iter().map(Vec::len).collect();
        if meta.task != self.task.name
            || meta.instances != self.options.instances
            || meta.lengths.len() != lengths.len()
        {
            return Err(Error::InvalidInput(format!(
                "{}: checkpoint of task '{}' with {} robots, but this is task '{}' with {} (a resumed run keeps its batch)",
                path.display(),
                meta.task,
                meta.instances,
                self.task.name,
                self.options.instances
            )));
        }
        // The batch's states are empty before the first window: every other array must match.
        for (k, (&saved, &here)) in meta.lengths.iter().zip(&lengths).enumerate() {
            if k != 11 && saved != here {
                return Err(Error::InvalidInput(format!(
                    "{}: array {k} holds {saved} numbers, this task needs {here}",
                    path.display()
                )));
            }
        }
        let f = |x: &[f64]| x.iter().map(|&v| v as f32).collect::<Vec<f32>>();
        self.theta = f(&arrays[0]);
        self.gpu
            .queue
            .write_buffer(&self.params, 0, bytemuck::cast_slice(&self.theta));
        self.optimizer
            .restore(&f(&arrays[1]), &f(&arrays[2]), meta.optimizer_step);
        self.critic.params = arrays[3].clone();
        self.critic_adam.m = arrays[4].clone();
        self.critic_adam.v = arrays[5].clone();
        self.critic_adam.step = meta.critic_step;
        self.target_critic = arrays[6].clone();
        self.obs_stats = RunningStats {
            count: meta.obs_count,
            mean: arrays[7].clone(),
            var: arrays[8].clone(),
        };
        self.feature_stats = RunningStats {
            count: meta.feature_count,
            mean: arrays[9].clone(),
            var: arrays[10].clone(),
        };
        self.states = f(&arrays[11]);
        self.episode_reward = arrays[12].clone();
        self.episode = meta.episode;
        self.episode_step = meta.episode_step;
        self.iteration = meta.iteration;
        self.options.seed = meta.seed;
        Ok(())
    }

    /// The directory's checkpoint file.
    pub fn checkpoint_path(dir: &Path) -> PathBuf {
        dir.join("checkpoint.bin")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::policy::{Activation, PolicySpec, Sensor};

    #[test]
    fn running_stats_match_the_whole_sample() {
        let rows: Vec<f64> = (0..60)
            .map(|k| ((k as f64) * 0.77).sin() * (1.0 + (k % 3) as f64))
            .collect();
        let mut merged = RunningStats::new(3);
        merged.update(&rows[..21]);
        merged.update(&rows[21..]);
        let mut whole = RunningStats::new(3);
        whole.update(&rows);
        for k in 0..3 {
            let column: Vec<f64> = rows.iter().skip(k).step_by(3).copied().collect();
            let mean = column.iter().sum::<f64>() / column.len() as f64;
            let var = column.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / column.len() as f64;
            assert!((merged.mean[k] - mean).abs() < 1e-12 && (merged.var[k] - var).abs() < 1e-12);
            assert!((whole.mean[k] - mean).abs() < 1e-12 && (whole.var[k] - var).abs() < 1e-12);
        }
        assert_eq!(merged.count, 20.0);
    }

    #[test]
    fn td_lambda_targets_match_the_mixture_of_n_step_returns() {
        let rewards = [0.3, -0.1, 0.7, 0.2, 0.5];
        let values = [1.1, 0.4, -0.3, 0.9, 0.6];
        let (gamma, lambda): (f64, f64) = (0.9, 0.7);
        let h = rewards.len();
        let n_step = |t: usize, n: usize| {
            (0..n)
                .map(|k| gamma.powi(k as i32) * rewards[t + k])
                .sum::<f64>()
                + gamma.powi(n as i32) * values[t + n - 1]
        };
        let g = td_lambda_targets(&rewards, &values, gamma, lambda);
        for (t, &got) in g.iter().enumerate() {
            let m = h - t;
            let mut expected = (1..m)
                .map(|n| (1.0 - lambda) * lambda.powi(n as i32 - 1) * n_step(t, n))
                .sum::<f64>();
            expected += lambda.powi(m as i32 - 1) * n_step(t, m);
            assert!((got - expected).abs() < 1e-12, "t {t}: {got} vs {expected}");
        }
        // lambda 1 is the Monte-Carlo return with a bootstrap, lambda 0 one-step TD.
        let mc = td_lambda_targets(&rewards, &values, gamma, 1.0);
        assert!((mc[0] - n_step(0, h)).abs() < 1e-12);
        let td = td_lambda_targets(&rewards, &values, gamma, 0.0);
        assert!((td[2] - (rewards[2] + gamma * values[2])).abs() < 1e-12);
    }

    #[test]
    fn critic_backward_matches_finite_differences() {
        let mut mlp = Mlp::new(5, &[7, 6], 3);
        for (k, p) in mlp.params.iter_mut().enumerate() {
            *p += 0.05 * (k as f64 * 0.31).cos();
        }
        let x: Vec<f64> = (0..5).map(|k| (k as f64 * 1.3).sin()).collect();
        let mut grads = vec![0.0; mlp.n_params()];
        let (v, dx) = mlp.backward_with(&mlp.params, &x, 1.0, &mut grads);
        assert_eq!(v, mlp.value_with(&mlp.params, &x));
        let h = 1e-6;
        for k in 0..mlp.n_params() {
            let (mut a, mut b) = (mlp.params.clone(), mlp.params.clone());
            a[k] += h;
            b[k] -= h;
            let fd = (mlp.value_with(&a, &x) - mlp.value_with(&b, &x)) / (2.0 * h);
            assert!(
                (fd - grads[k]).abs() < 1e-7 * (1.0 + fd.abs()),
                "param {k}: {} vs {fd}",
                grads[k]
            );
        }
        for k in 0..5 {
            let (mut a, mut b) = (x.clone(), x.clone());
            a[k] += h;
            b[k] -= h;
            let fd =
                (mlp.value_with(&mlp.params, &a) - mlp.value_with(&mlp.params, &b)) / (2.0 * h);
            assert!((fd - dx[k]).abs() < 1e-7 * (1.0 + fd.abs()), "input {k}");
        }
    }

    #[test]
    fn host_adam_fits_a_critic_to_a_smooth_function() {
        let mut mlp = Mlp::new(2, &[16], 5);
        let mut adam = HostAdam::new(mlp.n_params(), 1e-2);
        let data: Vec<([f64; 2], f64)> = (0..40)
            .map(|k| {
                let x = [(k as f64 * 0.37).sin(), (k as f64 * 0.61).cos()];
                (x, x[0] * x[1] + 0.5 * x[0])
            })
            .collect();
        let mse = |m: &Mlp| {
            data.iter()
                .map(|(x, y)| (m.value_with(&m.params, x) - y).powi(2))
                .sum::<f64>()
                / 40.0
        };
        let before = mse(&mlp);
        for _ in 0..400 {
            let mut g = vec![0.0; mlp.n_params()];
            for (x, y) in &data {
                let e = mlp.value_with(&mlp.params, x) - y;
                mlp.backward_with(&mlp.params.clone(), x, 2.0 * e / 40.0, &mut g);
            }
            adam.update(&mut mlp.params, &g);
        }
        assert!(mse(&mlp) < 0.05 * before, "{before} -> {}", mse(&mlp));
    }

    fn layout(skip: bool) -> PolicyLayout {
        let model = crate::io::models::builtin("arm").unwrap();
        let spec = PolicySpec {
            sensors: vec![
                Sensor::JointAngle {
                    joint: model.joints[1].name.clone(),
                    axis: 0,
                },
                Sensor::Constant {
                    value: [0.5, -0.2, 0.1],
                },
            ],
            hidden: vec![6, 5],
            activation: Activation::Tanh,
            skip,
        };
        PolicyLayout::new(&spec, &model).unwrap()
    }

    #[test]
    fn effective_params_on_raw_observations_equal_the_policy_on_normalised_ones() {
        for skip in [false, true] {
            let l = layout(skip);
            let mut theta = l.init_params(9);
            for (k, v) in theta.iter_mut().enumerate() {
                *v += 0.2 * ((k as f32) * 0.41).sin();
            }
            let stats = RunningStats {
                count: 10.0,
                mean: (0..l.n_obs).map(|k| 0.3 * k as f64 - 0.4).collect(),
                var: (0..l.n_obs).map(|k| 0.5 + 0.7 * k as f64).collect(),
            };
            let raw: Vec<f64> = (0..l.n_obs).map(|k| (k as f64 * 0.9).cos()).collect();
            let a = l.forward(&effective_params(&l, &theta, &stats), &raw);
            let b = l.forward(&theta, &stats.normalize(&raw));
            for (x, y) in a[l.n_activations - l.n_out..]
                .iter()
                .zip(&b[l.n_activations - l.n_out..])
            {
                assert!((x - y).abs() < 1e-5, "skip {skip}: {x} vs {y}");
            }
            // The mapped gradient is the gradient of the normalised-space policy.
            let w: Vec<f64> = (0..l.n_out).map(|k| 1.0 - 0.3 * k as f64).collect();
            let eff = effective_params(&l, &theta, &stats);
            let act = l.forward(&eff, &raw);
            let mut g_eff = vec![0.0; l.n_params];
            l.backward(&eff, &act, &w, &mut g_eff);
            let mapped = normalized_gradient(&l, &g_eff, &stats);
            let norm = stats.normalize(&raw);
            let act = l.forward(&theta, &norm);
            let mut g = vec![0.0; l.n_params];
            l.backward(&theta, &act, &w, &mut g);
            for k in 0..l.n_params {
                assert!(
                    (mapped[k] - g[k]).abs() < 1e-4 * (1.0 + g[k].abs()),
                    "skip {skip}, param {k}: {} vs {}",
                    mapped[k],
                    g[k]
                );
            }
        }
    }

    #[test]
    fn critic_slots_leave_out_the_horizontal_position() {
        let slots = critic_state_slots(2);
        assert_eq!(slots.len(), 22);
        assert_eq!(slots[0], BODY_STATE_LEN + 2);
        assert!(
            !slots.contains(&(2 * BODY_STATE_LEN)) && !slots.contains(&(2 * BODY_STATE_LEN + 1))
        );
        assert_eq!(*slots.last().unwrap(), 3 * BODY_STATE_LEN - 1);
    }
}
