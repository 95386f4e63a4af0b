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
//! 4. The critic, an MLP on the GPU ([`GpuCritic`], `shaders/critic.wgsl`; the host f64 [`Mlp`]
//!    is its CPU reference), is regressed on TD(lambda) targets ([`td_lambda_targets`])
//!    computed from the window's rewards and the target critic's values, with Adam on the GPU
//!    over shuffled minibatches; the target critic follows it by Polyak averaging.
//!    Its input is the raw state of every body except the horizontal position (height,
//!    orientation, linear and angular velocity), normalised by running statistics too, so
//!    `dV/ds_H` is a gather.
//!
//! Everything is deterministic: the batch randomisation and the critic's minibatches are drawn
//! from counter-based generators keyed by the seed, and a checkpoint holds every number the next
//! window depends on (the batch's states included), so a resumed run is bit for bit the
//! uninterrupted one.

use std::sync::Arc;
use std::time::Instant;

use crate::engine::buffers;
use crate::engine::gpu::Gpu;
use crate::engine::layout::Compiled;
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

mod checkpoint;
mod critic;
pub(crate) mod gpu_critic;
mod normalize;
mod targets;

pub use checkpoint::SHAC_CHECKPOINT_MAGIC;
pub use critic::{HostAdam, Mlp, critic_state_slots};
pub use gpu_critic::{GpuCritic, Network};
pub use normalize::{MIN_STD, RunningStats, effective_params, normalized_gradient};
pub use targets::td_lambda_targets;

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
    critic: GpuCritic,
    states: Vec<f32>,
    episode_reward: Vec<f64>,
    episode: u64,
    episode_step: u32,
    iteration: u32,
    last_report: WindowReport,
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
        let critic = GpuCritic::new(
            gpu.clone(),
            feature_slots.len(),
            &hidden,
            options.seed ^ 0xC417_1C00,
            settings.critic_learning_rate,
        )?;
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

    /// The critic (on the GPU).
    pub fn critic(&self) -> &GpuCritic {
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

    /// The critic's normalised inputs of instance `i` in `frame`, in f32 (as the GPU takes them).
    fn critic_row(&self, frame: &[f32], i: usize) -> impl Iterator<Item = f32> {
        self.feature_stats
            .normalize(&self.features(frame, i))
            .into_iter()
            .map(|v| v as f32)
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
        let rows: Vec<f32> = (0..n).flat_map(|i| self.critic_row(last, i)).collect();
        let (end_values, dx) = self.critic.value_gradients(Network::Target, &rows)?;
        let values: f64 = end_values.iter().map(|&v| f64::from(v)).sum();
        let w = self.feature_slots.len();
        for i in 0..n {
            for (k, &slot) in self.feature_slots.iter().enumerate() {
                seed[i * state_len + slot] =
                    (-bootstrap * f64::from(dx[i * w + k]) / self.feature_stats.std(k)) as f32;
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
        let normalized = |t: usize, i: usize| {
            self.feature_stats
                .normalize(at(t, i))
                .into_iter()
                .map(|v| v as f32)
        };
        // The target critic's values of every instance's states at steps 1..=H, in one pass.
        let next_rows: Vec<f32> = (0..n)
            .flat_map(|i| (1..=h).flat_map(move |t| normalized(t, i)))
            .collect();
        let next_values = self.critic.values(Network::Target, &next_rows)?;
        let mut inputs = Vec::with_capacity(n * h * w);
        let mut targets = Vec::with_capacity(n * h);
        for i in 0..n {
            let next: Vec<f64> = next_values[i * h..(i + 1) * h]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let g = td_lambda_targets(
                &rewards[i * h..(i + 1) * h],
                &next,
                f64::from(self.settings.gamma),
                f64::from(self.settings.lambda),
            );
            for (t, target) in g.into_iter().enumerate() {
                inputs.extend(normalized(t, i));
                targets.push(target as f32);
            }
        }
        let samples = targets.len();
        let batches = (self.settings.critic_minibatches as usize).clamp(1, samples);
        let mut last_loss = 0.0;
        let mut batch_inputs = Vec::with_capacity((samples / batches + 1) * w);
        let mut batch_targets = Vec::with_capacity(samples / batches + 1);
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
                batch_inputs.clear();
                batch_targets.clear();
                for &(_, k) in &order[lo..hi] {
                    batch_inputs.extend_from_slice(&inputs[k * w..(k + 1) * w]);
                    batch_targets.push(targets[k]);
                }
                // The minibatch's mean squared error: each row's error scaled by 1 / rows.
                total += self.critic.add_regression_gradient(
                    &batch_inputs,
                    &batch_targets,
                    1.0 / (hi - lo) as f32,
                )?;
                self.critic.update()?;
            }
            last_loss = total / samples as f64;
        }
        if !last_loss.is_finite() || self.critic.params()?.iter().any(|p| !p.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "the critic diverged at window {} (mean squared error {last_loss})",
                self.iteration + 1
            )));
        }
        self.critic
            .average_target(self.settings.target_critic_alpha);
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
}
