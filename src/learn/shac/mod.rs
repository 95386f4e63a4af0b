//! The short-horizon actor-critic (SHAC, Xu et al., "Accelerated Policy Learning with Parallel
//! Differentiable Simulation", ICLR 2022) through the simulation.
//!
//! The batch runs windows of [`ShacSettings::window`] steps. Each window starts from the end
//! states of the previous one; every [`Task::horizon`] steps the batch is reset to the model's
//! initial state with newly drawn physical parameters (an episode). Per window:
//!
//! 1. The policy runs forward on the GPU in a [`Rollout`] of `window` steps, recording the state
//!    after every step and each robot's loss summed up to it
//!    ([`Rollout::forward_recording_losses`]). Per-step, per-instance rewards are minus the
//!    differences of those sums: the loss kernel's own terms, control costs on the step's
//!    commands included.
//! 2. The actor loss per instance is `-(sum of the window's rewards + gamma^H V'(s_H)) / H`,
//!    with `V'` the target critic. Its gradient is exact through the window: the rollout's
//!    adjoint, seeded at the final state with `dV'/ds_H` from the critic's backward pass.
//!    The rewards inside the window are summed undiscounted (the GPU loss terms have no
//!    per-step weight); `gamma` discounts the bootstrap and the critic's targets.
//! 3. Observation normalisation: running mean and variance of the policy's observations,
//!    frozen within a window and updated after it. It is applied exactly by rewriting the first
//!    layer (and the skip path) of the policy ([`effective_params`]), so the GPU policy kernels
//!    run unchanged; the gradient is mapped back by the chain rule ([`normalized_gradient`]).
//!    The output layer is rewritten the same way to scale the commands by
//!    [`ShacSettings::action_scale`] ([`scale_outputs`]).
//! 4. The critic, an MLP on the GPU ([`GpuCritic`], `shaders/critic.wgsl`; the host f64 [`Mlp`]
//!    is its CPU reference), is regressed on TD(lambda) targets ([`td_lambda_targets`])
//!    computed from the window's rewards and the target critic's values, with Adam on the GPU
//!    over shuffled minibatches; the target critic follows it by Polyak averaging.
//!    Its input is the raw state of every body except the horizontal position (height,
//!    orientation, linear and angular velocity), normalised by running statistics too, so
//!    `dV/ds_H` is a gather.
//!
//! 5. Terminations ([`crate::learn::tasks::Termination`]): a robot whose watched body leaves
//!    its healthy range is "terminated at step N" ([`terminal_steps`], on the recorded states):
//!    its later rewards are masked ([`mask_after_termination`]), its critic targets end there
//!    with no bootstrap, its actor bootstrap and seed are 0, and it restarts from the initial
//!    state with new physical parameters at the next window. Its loss terms in the adjoint stop
//!    at the terminal state too ([`Rollout::set_loss_last_steps`], the loss kernel's per-robot
//!    last paid step), so the actor's gradient is exactly that of the masked rewards.
//!
//! 6. Exploration and decorrelation: in training windows each command is the policy's output
//!    plus [`ShacSettings::action_noise`] times a standard normal drawn on the GPU from a hash
//!    of (window key, robot, step, output) (`action_noise` in `shaders/policy.wgsl`, twin
//!    [`crate::engine::twin::policy::action_noise_twin`]); the noise depends on no parameter,
//!    so the adjoint is unchanged and the gradient exact. Each robot starts every episode and
//!    every life after a termination from its own initial state when the task randomises the
//!    joints ([`crate::learn::tasks::Randomization::initial_state`]).
//!
//! Everything is deterministic: the batch randomisation and the critic's minibatches are drawn
//! from counter-based generators keyed by the seed, and a checkpoint holds every number the next
//! window depends on (the batch's states included), so a resumed run is bit for bit the
//! uninterrupted one.

use std::sync::Arc;
use std::time::Instant;

use crate::engine::buffers;
use crate::engine::gpu::Gpu;
use crate::engine::layout::BODY_STATE_LEN;
use crate::engine::layout::Compiled;
use crate::engine::sim::BodyState;
use crate::engine::twin::Instance;
use crate::error::{Error, Result};
use crate::grad::loss::{Loss, Quantity, When};
use crate::grad::rollout::{Rollout, RolloutOptions};
use crate::learn::algorithm::{Algorithm, ShacSettings};
use crate::learn::optim::GpuOptimizer;
use crate::learn::policy::gpu::{PolicyKernels, write_action_noise};
use crate::learn::policy::{PolicyLayout, observe_twin};
use crate::learn::random::unit_random;
use crate::learn::tasks::Task;
use crate::learn::train::{IterationStats, TrainOptions};
use profile::Stopwatch;

mod checkpoint;
mod critic;
pub(crate) mod gpu_critic;
mod normalize;
mod profile;
mod targets;

pub use checkpoint::SHAC_CHECKPOINT_MAGIC;
pub use critic::{HostAdam, Mlp, critic_state_slots};
pub use gpu_critic::{GpuCritic, Network};
pub use normalize::{MIN_STD, RunningStats, effective_params, normalized_gradient, scale_outputs};
pub use profile::{PhaseTimes, process_cpu_seconds};
pub use targets::td_lambda_targets;

/// What one window measured beyond [`IterationStats`]: what training is doing, window by window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WindowReport {
    /// Mean reward per step over the window and the batch, steps after a termination counting
    /// 0 (for `quadruped-run`: the torso's forward speed, m/s).
    pub mean_reward: f64,
    /// The critic's mean squared error on its last pass over the window's data.
    pub critic_loss: f64,
    /// When this window ended an episode: the mean reward per step over that whole episode,
    /// averaged over the batch.
    pub episode_mean_reward: Option<f64>,
    /// The critic's mean value of the window's states (its regression inputs), before this
    /// window's regression.
    pub value_mean: f64,
    /// The mean of the TD(lambda) targets the critic was regressed on: with
    /// [`WindowReport::value_mean`], whether the critic under- or over-estimates the returns.
    pub target_mean: f64,
    /// The target critic's mean value of the window's end states over the robots that were not
    /// terminated: the actor's bootstrap (times `gamma^H / H`).
    pub end_value_mean: f64,
    /// Robots whose episode this window terminated (reset for the next window).
    pub terminated: usize,
    /// The observation normaliser after this window: the mean over the components of |mean|.
    pub observation_mean_abs: f64,
    /// The smallest standard deviation the normaliser divides an observation by.
    pub observation_std_min: f64,
    /// The largest.
    pub observation_std_max: f64,
    /// The norm of the actor's batch-mean gradient before clipping.
    pub actor_grad_norm: f32,
}

impl WindowReport {
    /// One line for the log of window `window`, every field but the episode's.
    pub fn line(&self, window: u32) -> String {
        format!(
            "window {window}: reward/step {:.4}, |actor grad| {:.3e}, critic mse {:.3e}, \
             V(s) {:.4} vs targets {:.4}, V'(s_H) {:.4}, terminated {}, obs |mean| {:.3}, \
             obs std {:.3e}..{:.3e}",
            self.mean_reward,
            self.actor_grad_norm,
            self.critic_loss,
            self.value_mean,
            self.target_mean,
            self.end_value_mean,
            self.terminated,
            self.observation_mean_abs,
            self.observation_std_min,
            self.observation_std_max
        )
    }
}

/// What [`ShacTrainer::evaluation`] measured over fresh episodes of the current policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean reward per step over the episodes and the batch, a terminated robot earning
    /// nothing for the rest of its episode.
    pub mean_reward: f64,
    /// The average forward speed (m/s) of the body of the task's first `velocity` term, along
    /// the unit direction it rewards: per robot, its displacement from the episode's start to its end or
    /// its terminal state, over the episode's duration (a terminated robot counts as standing
    /// still for the rest of it, as `benches/peers/ppo_ant.py` measures). `None` when the task
    /// rewards no velocity.
    pub forward_speed: Option<f64>,
    /// The same speed over the whole episode, a terminated robot's policy running on to the
    /// episode's end (its termination still masks its rewards): the torso's displacement over
    /// the episode's duration, as open-loop gaits are measured (`backdrive::learn::gait`), so
    /// that a termination used as training shaping does not change what is compared.
    pub whole_episode_speed: Option<f64>,
    /// The fraction of the episodes' robot-steps taken before each robot's termination (1 when
    /// none is terminated): with a healthy reward, what tells the bonus from the speed.
    pub running: f64,
}

/// What one window's forward and backward pass produced.
struct WindowPass {
    frames: Vec<Vec<f32>>,
    rewards: Vec<f64>,
    terminal: Vec<Option<usize>>,
    params: Vec<f32>,
    loss: f64,
    gradient: Vec<f64>,
    end_value_mean: f64,
}

/// What one window's forward pass recorded: the states after every step (the initial state
/// first), the per-step rewards (instance-major, zero after a termination), per robot the
/// step whose state ended its episode early, if one did, and the masked loss.
struct WindowRun {
    frames: Vec<Vec<f32>>,
    rewards: Vec<f64>,
    terminal: Vec<Option<usize>>,
    /// The window's loss terms summed up to each robot's terminal state (its end if none), as
    /// the GPU sums them, averaged over the batch.
    loss: f64,
}

/// The first step `t` in `1..frames.len()` after which each robot's state satisfies the
/// termination condition (`None`: it never did, or the task has none).
pub fn terminal_steps(
    termination: Option<&crate::learn::tasks::Termination>,
    frames: &[Vec<f32>],
    instances: usize,
    state_len: usize,
) -> Vec<Option<usize>> {
    (0..instances)
        .map(|i| {
            let condition = termination?;
            (1..frames.len())
                .find(|&t| condition.terminated(&frames[t][i * state_len..(i + 1) * state_len]))
        })
        .collect()
}

/// Zeroes the rewards after each robot's termination: `rewards[i * h + s]` is the reward of the
/// step reaching state `s + 1`, so a robot terminated at state `t` keeps the rewards of steps
/// `0..t` (the last one reaching the terminal state, as Gymnasium pays it) and loses the rest.
pub fn mask_after_termination(rewards: &mut [f64], h: usize, terminal: &[Option<usize>]) {
    for (i, t) in terminal.iter().enumerate() {
        if let Some(t) = *t {
            rewards[i * h + t.min(h)..(i + 1) * h]
                .iter_mut()
                .for_each(|r| *r = 0.0);
        }
    }
}

/// The key of robot `i`'s draws (physical parameters, initial state) in `episode` after its
/// `resets` (none: the episode's draw). A reset count sits above any episode index a run
/// reaches, so a reset never repeats another draw.
fn life_key(episode: u64, resets: &[u32], i: usize) -> u64 {
    episode.wrapping_add(u64::from(resets.get(i).copied().unwrap_or(0)) << 32)
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
    theta: Vec<f32>,
    obs_stats: RunningStats,
    feature_stats: RunningStats,
    feature_slots: Vec<usize>,
    critic: GpuCritic,
    states: Vec<f32>,
    episode_reward: Vec<f64>,
    /// Per robot, how often a termination has reset it: the key of its physical parameters
    /// after a reset, so that each new life draws new ones.
    resets: Vec<u32>,
    episode: u64,
    episode_step: u32,
    iteration: u32,
    last_report: WindowReport,
    /// Where the last window's wall time went.
    phase_times: PhaseTimes,
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
        if !(settings.observation_std_floor.is_finite() && settings.observation_std_floor >= 0.0) {
            return Err(Error::InvalidInput(format!(
                "task '{}': observation_std_floor must be a number >= 0, not {}",
                task.name, settings.observation_std_floor
            )));
        }
        if !(settings.action_scale.is_finite() && settings.action_scale > 0.0) {
            return Err(Error::InvalidInput(format!(
                "task '{}': action_scale must be a positive number, not {}",
                task.name, settings.action_scale
            )));
        }
        let noise_ok = |v: f32| v.is_finite() && v >= 0.0;
        if !noise_ok(settings.action_noise) || !settings.action_noise_final.is_none_or(noise_ok) {
            return Err(Error::InvalidInput(format!(
                "task '{}': action_noise and action_noise_final must be numbers >= 0",
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
        // Refuses terms the model cannot evaluate before any window runs.
        task.loss.pack(&task.model)?;
        Ok(ShacTrainer {
            obs_stats: RunningStats::with_min_std(
                layout.n_obs,
                f64::from(settings.observation_std_floor),
            ),
            feature_stats: RunningStats::with_min_std(
                feature_slots.len(),
                f64::from(settings.observation_std_floor),
            ),
            episode_reward: vec![0.0; options.instances],
            resets: vec![0; options.instances],
            gpu,
            settings,
            layout,
            compiled,
            rollout,
            params,
            grads,
            optimizer,
            theta,
            feature_slots,
            critic,
            states: Vec::new(),
            episode: 0,
            episode_step: 0,
            iteration: 0,
            last_report: WindowReport::default(),
            phase_times: PhaseTimes::default(),
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

    /// Where the last window's wall time went, phase by phase.
    pub fn phase_times(&self) -> &PhaseTimes {
        &self.phase_times
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

    /// Physical parameters of every instance for `episode`, each robot's drawn anew after
    /// each of its `resets` (none: the episode's draw).
    fn episode_params(&self, episode: u64, resets: &[u32]) -> Vec<f32> {
        let mut p = Vec::new();
        for i in 0..self.options.instances {
            let key = life_key(episode, resets, i);
            p.extend(self.task.randomization.apply(
                &self.compiled,
                self.options.seed,
                i as u64,
                key,
            ));
        }
        p
    }

    /// The standard deviation of the next training window's exploration noise on the policy's
    /// outputs ([`ShacSettings::action_noise`], scheduled to
    /// [`ShacSettings::action_noise_final`] at the task's iterations).
    pub fn action_noise(&self) -> f32 {
        let start = self.settings.action_noise;
        let Some(end) = self.settings.action_noise_final else {
            return start;
        };
        let progress =
            (f64::from(self.iteration) / f64::from(self.task.iterations.max(1))).min(1.0);
        (f64::from(start) + (f64::from(end) - f64::from(start)) * progress) as f32
    }

    /// The next training window's noise key (below 2^24): keyed by the seed and the window, so
    /// a resumed run draws the same noise.
    pub fn noise_key(&self) -> u32 {
        (unit_random(
            self.options.seed ^ 0x0015_E000_A0C7,
            7,
            u64::from(self.iteration),
        ) * f64::from(1u32 << 24)) as u32
    }

    /// Robot `i`'s initial state for the life keyed like its physical parameters
    /// ([`life_key`]): the model's, with the task's joint ranges drawn
    /// ([`crate::learn::tasks::Randomization::initial_state`]).
    fn initial_state(&self, episode: u64, resets: &[u32], i: usize) -> Vec<f32> {
        self.task.randomization.initial_state(
            &self.task.model,
            &self.compiled.initial_state,
            self.options.seed,
            i as u64,
            life_key(episode, resets, i),
        )
    }

    fn reset_states(&mut self, episode: u64, resets: &[u32]) {
        self.states = (0..self.options.instances)
            .flat_map(|i| self.initial_state(episode, resets, i))
            .collect();
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
    /// step: the frames (initial state first), the per-step rewards (instance-major, masked
    /// after a termination) and the terminations. At an episode's start the batch starts from
    /// the initial states of `episode` (each robot's life keyed by its `resets`).
    /// `noise` is the standard deviation of the exploration noise on the policy's outputs (0:
    /// none), drawn from the window key of [`Self::iteration`].
    fn run_window(
        &mut self,
        params: &[f32],
        episode: u64,
        resets: &[u32],
        noise: f32,
    ) -> Result<WindowRun> {
        let mut watch = Stopwatch::start();
        if self.episode_step == 0 || self.states.is_empty() {
            self.reset_states(episode, resets);
        }
        self.rollout.set_params(params)?;
        self.rollout.set_initial_state(&self.states)?;
        // The terminations are learnt from this pass's states: every step is paid until then.
        self.rollout.set_loss_last_steps(None)?;
        let mut effective = effective_params(&self.layout, &self.theta, &self.obs_stats);
        scale_outputs(&self.layout, &mut effective, self.settings.action_scale);
        self.gpu
            .queue
            .write_buffer(&self.params, 0, bytemuck::cast_slice(&effective));
        write_action_noise(
            &self.gpu,
            &self.params,
            self.layout.n_params,
            noise * self.settings.action_scale,
            self.noise_key(),
        )?;
        watch.lap(&mut self.phase_times, "upload");
        let (frames, losses) = self.rollout.forward_recording_losses(1)?;
        watch.lap(&mut self.phase_times, "forward");
        let h = self.settings.window as usize;
        let n = self.options.instances;
        let state_len = self.compiled.header.state_len as usize;
        // Each step's reward is minus the GPU loss it added (the rollout's terms are weighted
        // 1 / H, hence the factor H): the loss kernel sees the step's commands, so a control
        // cost counts here as in the actor's gradient. A host twin rebuilt from the recorded
        // states alone would not see the commands (they are not part of the state).
        let mut rewards = vec![0.0; n * h];
        for t in 1..frames.len() {
            for i in 0..n {
                rewards[i * h + t - 1] =
                    -(f64::from(losses[t][i]) - f64::from(losses[t - 1][i])) * h as f64;
            }
        }
        let terminal = terminal_steps(self.task.termination.as_ref(), &frames, n, state_len);
        mask_after_termination(&mut rewards, h, &terminal);
        // The actor's window loss as the loss kernel sums it with the terminations' mask: each
        // robot's GPU loss up to its terminal state.
        let loss = (0..n)
            .map(|i| f64::from(losses[terminal[i].unwrap_or(h)][i]))
            .sum::<f64>()
            / n as f64;
        watch.lap(&mut self.phase_times, "rewards");
        Ok(WindowRun {
            frames,
            rewards,
            terminal,
            loss,
        })
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
        let mut watch = Stopwatch::start();
        let params = self.episode_params(self.episode, &self.resets);
        let resets = self.resets.clone();
        watch.lap(&mut self.phase_times, "parameters");
        let WindowRun {
            frames,
            rewards,
            terminal,
            loss: window_loss,
        } = self.run_window(&params, self.episode, &resets, self.action_noise())?;
        let mut watch = Stopwatch::start();
        // The bootstrap: gamma^H V'(s_H) / H per instance, and its gradient as the final-state
        // seed of the adjoint (the actor minimises minus it). A terminated robot has no value
        // after its end: no bootstrap, no seed.
        let last = &frames[h];
        let bootstrap = gamma.powi(h as i32) / h as f64;
        let mut seed = vec![0.0f32; n * state_len];
        // Only the robots still running are valued (one GPU pass over their rows).
        let alive_ids: Vec<usize> = (0..n).filter(|&i| terminal[i].is_none()).collect();
        let rows: Vec<f32> = alive_ids
            .iter()
            .flat_map(|&i| self.critic_row(last, i))
            .collect();
        let (end_values, dx) = if rows.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            self.critic.value_gradients(Network::Target, &rows)?
        };
        let values: f64 = end_values.iter().map(|&v| f64::from(v)).sum();
        let alive = alive_ids.len();
        let w = self.feature_slots.len();
        for (a, &i) in alive_ids.iter().enumerate() {
            for (k, &slot) in self.feature_slots.iter().enumerate() {
                seed[i * state_len + slot] =
                    (-bootstrap * f64::from(dx[a * w + k]) / self.feature_stats.std(k)) as f32;
            }
        }
        // A terminated robot's loss terms stop at its terminal state, in the adjoint as in the
        // rewards (its steps after it belong to no episode).
        let last_steps: Vec<u32> = terminal.iter().map(|t| t.unwrap_or(h) as u32).collect();
        watch.lap(&mut self.phase_times, "bootstrap");
        self.rollout.set_loss_last_steps(Some(&last_steps))?;
        self.rollout.backward_from(Some(&seed), &mut |_, _| {})?;
        watch.lap(&mut self.phase_times, "adjoint");
        let loss = window_loss - bootstrap * values / n as f64;
        let mut g = buffers::read_buffer(&self.gpu, &self.grads)?;
        g.truncate(self.layout.n_params);
        scale_outputs(&self.layout, &mut g, self.settings.action_scale);
        let g: Vec<f64> = g.iter().map(|&v| f64::from(v)).collect();
        self.gpu.queue.write_buffer(
            &self.grads,
            0,
            bytemuck::cast_slice(&vec![0.0f32; self.layout.n_params]),
        );
        let gradient = normalized_gradient(&self.layout, &g, &self.obs_stats);
        watch.lap(&mut self.phase_times, "gradient read-back");
        Ok(WindowPass {
            frames,
            rewards,
            terminal,
            params,
            loss,
            gradient,
            end_value_mean: values / alive.max(1) as f64,
        })
    }

    /// The target critic's value of one robot's raw state and its gradient with respect to
    /// the raw state's critic inputs ([`critic_state_slots`], in that order): through the
    /// normalisation `x = (s - mean) / std`, `dV/ds = dV/dx / std`. Computed in f64 on the host
    /// from the GPU critic's target weights: the reference the GPU bootstrap is checked against.
    pub fn bootstrap_gradient(&self, state: &[f32]) -> Result<(f64, Vec<f64>)> {
        let (host, target) = self.host_target_critic()?;
        let x = self.feature_stats.normalize(&self.raw_features(state));
        let mut scratch = vec![0.0; host.n_params()];
        let (v, dx) = host.backward_with(&target, &x, 1.0, &mut scratch);
        let ds = dx
            .iter()
            .enumerate()
            .map(|(k, d)| d / self.feature_stats.std(k))
            .collect();
        Ok((v, ds))
    }

    /// The target critic's value of one robot's raw state (what [`Self::bootstrap_gradient`]
    /// differentiates), in f64 on the host.
    pub fn target_value(&self, state: &[f32]) -> Result<f64> {
        let (host, target) = self.host_target_critic()?;
        Ok(host.value_with(
            &target,
            &self.feature_stats.normalize(&self.raw_features(state)),
        ))
    }

    fn raw_features(&self, state: &[f32]) -> Vec<f64> {
        self.feature_slots
            .iter()
            .map(|&k| f64::from(state[k]))
            .collect()
    }

    /// The critic's shape on the host and the target network's weights in f64.
    fn host_target_critic(&self) -> Result<(Mlp, Vec<f64>)> {
        let host = self.critic.to_host()?;
        let target = self
            .critic
            .target_params()?
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        Ok((host, target))
    }

    /// The feature normaliser the critic's inputs go through.
    pub fn feature_stats(&self) -> &RunningStats {
        &self.feature_stats
    }

    /// The batch's raw states (instance-major) where the next window starts (empty before the
    /// first window).
    pub fn states(&self) -> &[f32] {
        &self.states
    }

    /// Per robot, how often a termination has reset it.
    pub fn resets(&self) -> &[u32] {
        &self.resets
    }

    /// The mean actor loss of the next window and its mean gradient with respect to the
    /// normalised-space policy parameters, without updating anything (the batch's states,
    /// the statistics and the critic stay as they are).
    pub fn actor_gradient(&mut self) -> Result<(f64, Vec<f64>)> {
        let saved = (self.states.clone(), self.episode_reward.clone());
        let pass = self.window_pass();
        (self.states, self.episode_reward) = saved;
        let pass = pass?;
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
        let cpu_started = profile::process_cpu_seconds();
        self.phase_times = PhaseTimes::default();
        let n = self.options.instances;
        let h = self.settings.window as usize;
        let state_len = self.compiled.header.state_len as usize;
        let WindowPass {
            frames,
            rewards,
            terminal,
            params,
            loss,
            gradient,
            end_value_mean,
        } = self.window_pass()?;
        let mut watch = Stopwatch::start();
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
        watch.lap(&mut self.phase_times, "actor update");

        // Statistics of what this window saw, for the next window (frozen within one): the
        // states before each robot's termination (a fallen robot's are not the task's).
        let mut instances = self.host_instances(&params);
        let mut observations = Vec::with_capacity(n * h * self.layout.n_obs);
        let mut alive_features = Vec::with_capacity(n * h * self.feature_slots.len());
        let mut features = Vec::with_capacity(n * (h + 1) * self.feature_slots.len());
        for (t, frame) in frames.iter().enumerate() {
            for (i, inst) in instances.iter_mut().enumerate() {
                let x = self.features(frame, i);
                if t < terminal[i].unwrap_or(h) {
                    inst.state = frame[i * state_len..(i + 1) * state_len]
                        .iter()
                        .map(|&v| f64::from(v))
                        .collect();
                    observations.extend(observe_twin(&self.layout, inst, t as u32));
                    alive_features.extend_from_slice(&x);
                }
                features.extend(x);
            }
        }
        if self.settings.normalize_observations {
            self.obs_stats.update(&observations);
            // The critic's inputs at steps 0..H-1 (the end state is the next window's first).
            self.feature_stats.update(&alive_features);
        }
        watch.lap(&mut self.phase_times, "statistics");
        let (critic_loss, value_mean, target_mean) =
            self.train_critic(&features, &rewards, &terminal)?;
        let mut watch = Stopwatch::start();

        let mean_reward = rewards.iter().sum::<f64>() / (n * h) as f64;
        for i in 0..n {
            self.episode_reward[i] += rewards[i * h..(i + 1) * h].iter().sum::<f64>();
        }
        self.states = last.clone();
        // A terminated robot starts its next life at the next window: an initial state and
        // physical parameters drawn anew.
        for i in (0..n).filter(|&i| terminal[i].is_some()) {
            self.resets[i] += 1;
            let initial = self.initial_state(self.episode, &self.resets, i);
            self.states[i * state_len..(i + 1) * state_len].copy_from_slice(&initial);
        }
        self.episode_step += self.settings.window;
        let mut episode_mean_reward = None;
        if self.episode_step >= self.task.horizon {
            episode_mean_reward = Some(
                self.episode_reward.iter().sum::<f64>() / (n as f64 * f64::from(self.task.horizon)),
            );
            self.episode += 1;
            self.episode_step = 0;
        }
        let observation_std: Vec<f64> = (0..self.layout.n_obs)
            .map(|k| self.obs_stats.std(k))
            .collect();
        self.last_report = WindowReport {
            mean_reward,
            critic_loss,
            episode_mean_reward,
            value_mean,
            target_mean,
            end_value_mean,
            terminated: terminal.iter().filter(|t| t.is_some()).count(),
            observation_mean_abs: self.obs_stats.mean.iter().map(|m| m.abs()).sum::<f64>()
                / self.layout.n_obs.max(1) as f64,
            observation_std_min: observation_std
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min),
            observation_std_max: observation_std.iter().copied().fold(0.0, f64::max),
            actor_grad_norm: grad_norm,
        };
        self.iteration += 1;
        watch.lap(&mut self.phase_times, "bookkeeping");
        self.phase_times.cpu_seconds = cpu_started
            .zip(profile::process_cpu_seconds())
            .map(|(a, b)| b - a);
        Ok(IterationStats {
            iteration: self.iteration,
            loss: loss as f32,
            grad_norm,
            learning_rate,
            seconds: started.elapsed().as_secs_f32(),
        })
    }

    /// Regresses the critic on the window's TD(lambda) targets; returns the mean squared error
    /// of its last pass, the mean value of its inputs before the regression and the mean
    /// target. `features` holds every instance's raw critic inputs at steps 0..=H
    /// (step-major), `rewards` the per-step rewards (instance-major); a robot terminated at
    /// step `t` contributes its states `0..t`, and its return ends at `t` (no bootstrap).
    fn train_critic(
        &mut self,
        features: &[f64],
        rewards: &[f64],
        terminal: &[Option<usize>],
    ) -> Result<(f64, f64, f64)> {
        let mut watch = Stopwatch::start();
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
            let len = terminal[i].unwrap_or(h);
            let mut next: Vec<f64> = next_values[i * h..i * h + len]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            if terminal[i].is_some() {
                next[len - 1] = 0.0;
            }
            let g = td_lambda_targets(
                &rewards[i * h..i * h + len],
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
        if samples == 0 {
            watch.lap(&mut self.phase_times, "critic targets");
            return Ok((0.0, 0.0, 0.0));
        }
        let value_mean = self
            .critic
            .values(Network::Critic, &inputs)?
            .iter()
            .map(|&v| f64::from(v))
            .sum::<f64>()
            / samples as f64;
        let target_mean = targets.iter().map(|&t| f64::from(t)).sum::<f64>() / samples as f64;
        watch.lap(&mut self.phase_times, "critic targets");
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
        watch.lap(&mut self.phase_times, "critic passes");
        if !last_loss.is_finite() || self.critic.params()?.iter().any(|p| !p.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "the critic diverged at window {} (mean squared error {last_loss})",
                self.iteration + 1
            )));
        }
        self.critic
            .average_target(self.settings.target_critic_alpha);
        watch.lap(&mut self.phase_times, "critic check");
        Ok((last_loss, value_mean, target_mean))
    }

    /// Runs `episodes` whole episodes of the current policy on fresh batches (no update, the
    /// training state untouched) and returns the mean reward per step over them and the batch
    /// (for `quadruped-run`, the average forward speed in m/s). Episode `k` draws the physical
    /// parameters of a key no training episode uses. A terminated robot earns nothing for the
    /// rest of its episode (its steps still count in the mean).
    pub fn evaluate(&mut self, episodes: u32) -> Result<f64> {
        Ok(self.evaluation(episodes)?.mean_reward)
    }

    /// [`ShacTrainer::evaluate`] with the forward speed measured on the same episodes.
    pub fn evaluation(&mut self, episodes: u32) -> Result<Evaluation> {
        let saved = (
            self.states.clone(),
            self.episode_step,
            self.episode_reward.clone(),
        );
        let result = self.evaluate_episodes(episodes);
        (self.states, self.episode_step, self.episode_reward) = saved;
        result
    }

    /// The body of the task's first `velocity` term and the unit direction it rewards moving
    /// in (a reward's direction is stored negated in the loss, as minus the reward): what
    /// [`Evaluation::forward_speed`] measures.
    fn speed_measure(&self) -> Option<(usize, [f64; 3])> {
        self.task.loss.terms.iter().find_map(|t| match t.quantity {
            Quantity::Velocity { direction } => {
                let rewarded = direction.map(|d| -f64::from(t.weight) * f64::from(d));
                let norm = rewarded.iter().map(|d| d * d).sum::<f64>().sqrt();
                (norm > 0.0 && norm.is_finite()).then_some((
                    self.task.model.body_index(&t.target)?,
                    rewarded.map(|d| d / norm),
                ))
            }
            _ => None,
        })
    }

    fn evaluate_episodes(&mut self, episodes: u32) -> Result<Evaluation> {
        let n = self.options.instances;
        let h = self.settings.window as usize;
        let state_len = self.compiled.header.state_len as usize;
        let measure = self.speed_measure();
        // Displacement of robot `i` along the measured direction between two frames.
        let along = |from: &[f32], to: &[f32], i: usize| -> f64 {
            measure.map_or(0.0, |(body, direction)| {
                let base = i * state_len + (body + 1) * BODY_STATE_LEN;
                (0..3)
                    .map(|c| direction[c] * f64::from(to[base + c] - from[base + c]))
                    .sum()
            })
        };
        let mut total = 0.0;
        let mut distance = 0.0;
        let mut whole_distance = 0.0;
        let mut running = 0usize;
        let windows = self.task.horizon / self.settings.window;
        for k in 0..episodes {
            let episode = u64::MAX - u64::from(k);
            let params = self.episode_params(episode, &[]);
            self.episode_step = 0;
            let mut ended = vec![false; n];
            for _ in 0..windows {
                let run = self.run_window(&params, episode, &[], 0.0)?;
                for (i, ended) in ended.iter_mut().enumerate() {
                    whole_distance += along(&run.frames[0], &run.frames[h], i);
                    if !*ended {
                        total += run.rewards[i * h..(i + 1) * h].iter().sum::<f64>();
                        // A robot's episode ends at its terminal state: it keeps the distance
                        // it made up to there.
                        let last = run.terminal[i].unwrap_or(h);
                        distance += along(&run.frames[0], &run.frames[last], i);
                        running += last;
                    }
                    *ended |= run.terminal[i].is_some();
                }
                self.states = run.frames[h].clone();
                self.episode_step += self.settings.window;
            }
        }
        let robot_episodes = f64::from(episodes) * n as f64;
        let seconds = f64::from(self.task.horizon) * f64::from(self.task.model.settings.dt);
        Ok(Evaluation {
            mean_reward: total / (robot_episodes * f64::from(self.task.horizon)),
            forward_speed: measure.map(|_| distance / (robot_episodes * seconds)),
            whole_episode_speed: measure.map(|_| whole_distance / (robot_episodes * seconds)),
            running: running as f64 / (robot_episodes * f64::from(self.task.horizon)),
        })
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
        let params = self.episode_params(self.episode, &[]);
        self.episode_step = 0;
        let mut out = Vec::new();
        let mut step = 0u32;
        for _ in 0..self.task.horizon / self.settings.window {
            let frames = self.run_window(&params, self.episode, &[], 0.0)?.frames;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::tasks::Termination;

    #[test]
    fn a_robot_is_terminated_at_the_first_state_outside_the_range() {
        // Two bodies (slot 0 is the world), watching body 1: its height is raw slot 2 * 13 + 2.
        let state_len = 3 * BODY_STATE_LEN;
        let z = 2 * BODY_STATE_LEN + 2;
        let heights = [[0.5, 0.5], [0.4, 0.5], [0.1, 1.2], [0.3, f32::NAN]];
        let frames: Vec<Vec<f32>> = heights
            .iter()
            .map(|h| {
                let mut f = vec![0.0; 2 * state_len];
                f[z] = h[0];
                f[state_len + z] = h[1];
                f
            })
            .collect();
        let watch = Termination {
            body: 1,
            height: [0.2, 1.0],
            min_upright: None,
        };
        // Robot 0 dips below 0.2 at state 2 and comes back (still terminated at 2); robot 1
        // goes above 1.0 at state 2. The initial state is never checked.
        assert_eq!(
            terminal_steps(Some(&watch), &frames, 2, state_len),
            [Some(2), Some(2)]
        );
        let high = Termination {
            body: 1,
            height: [0.0, 1.1],
            min_upright: None,
        };
        // A non-finite height ends the episode too.
        assert_eq!(
            terminal_steps(Some(&high), &frames, 2, state_len),
            [None, Some(2)]
        );
        let low = Termination {
            body: 1,
            height: [0.0, 2.0],
            min_upright: None,
        };
        assert_eq!(
            terminal_steps(Some(&low), &frames, 2, state_len),
            [None, Some(3)]
        );
        assert_eq!(terminal_steps(None, &frames, 2, state_len), [None, None]);
        // Tilted: robot 1's body turned by 90 degrees about x at state 1 (quaternion
        // [sin 45, 0, 0, cos 45]: its z axis horizontal, cosine 0 with the world's up).
        let mut tilted = frames.clone();
        let q = 2 * BODY_STATE_LEN + 3;
        for f in &mut tilted {
            f[q + 3] = 1.0;
            f[state_len + q + 3] = 1.0;
        }
        tilted[1][state_len + q] = std::f32::consts::FRAC_1_SQRT_2;
        tilted[1][state_len + q + 3] = std::f32::consts::FRAC_1_SQRT_2;
        let upright = Termination {
            body: 1,
            height: [0.0, 2.0],
            min_upright: Some(0.5),
        };
        assert_eq!(
            terminal_steps(Some(&upright), &tilted, 2, state_len),
            [None, Some(1)]
        );
        let any_tilt = Termination {
            min_upright: Some(-0.5),
            ..upright
        };
        assert_eq!(
            terminal_steps(Some(&any_tilt), &tilted, 2, state_len),
            [None, Some(3)]
        );
    }

    #[test]
    fn rewards_after_the_terminal_state_are_masked() {
        let mut rewards: Vec<f64> = (1..=8).map(f64::from).collect();
        mask_after_termination(&mut rewards, 4, &[Some(2), None]);
        // Robot 0 keeps the rewards of the steps reaching states 1 and 2.
        assert_eq!(rewards, [1.0, 2.0, 0.0, 0.0, 5.0, 6.0, 7.0, 8.0]);
        let mut rewards = vec![1.0; 4];
        mask_after_termination(&mut rewards, 4, &[Some(4)]);
        assert_eq!(rewards, [1.0; 4]);
    }
}
