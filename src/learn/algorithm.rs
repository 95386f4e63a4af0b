//! Which learning algorithm a task trains with, and its settings.
//!
//! [`Algorithm::Bptt`] is backpropagation through whole (optionally truncated) episodes, the
//! paper's method and [`crate::learn::train::Trainer`]'s. [`Algorithm::Shac`] is a short-horizon
//! actor-critic (Xu et al., ICLR 2022): exact policy gradients through windows of
//! [`ShacSettings::window`] steps over the batch, the end of each window valued by a learned
//! critic regressed on TD(lambda) targets.

use serde::{Deserialize, Serialize};

/// The learning algorithm of a task.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "lowercase", deny_unknown_fields)]
pub enum Algorithm {
    /// Backpropagation through the episode (the default).
    #[default]
    Bptt,
    /// Short-horizon actor-critic.
    Shac(ShacSettings),
}

/// Settings of the short-horizon actor-critic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShacSettings {
    /// Steps per window: the policy gradient flows exactly through this many steps.
    pub window: u32,
    /// Discount per step.
    pub gamma: f32,
    /// TD(lambda) mixing of the critic's targets.
    pub lambda: f32,
    /// Hidden layer widths of the critic MLP.
    pub critic_hidden: Vec<u32>,
    /// Critic learning rate (Adam).
    pub critic_learning_rate: f32,
    /// Critic regression passes over each window's data.
    pub critic_iterations: u32,
    /// Minibatches per critic pass.
    pub critic_minibatches: u32,
    /// Polyak averaging factor of the target critic (1 keeps no target network).
    pub target_critic_alpha: f32,
    /// Normalise observations with running mean and variance.
    pub normalize_observations: bool,
    /// The commands are this times the policy's outputs, so the policy works in these units:
    /// for an MJCF model, its motors' `gear`, which makes an output of 1 MuJoCo's `ctrl` of 1
    /// (a backdrive force command is the torque itself). Applied, like the observation
    /// normalisation, by rewriting the output layer the GPU runs.
    pub action_scale: f32,
    /// The smallest standard deviation the observation and critic-input normalisers divide
    /// by (at least [`crate::learn::shac::MIN_STD`]). After a first window in which the
    /// untrained policy commands nothing, some observations have hardly varied; dividing by
    /// their tiny spread makes the next window's policy (and the critic's gradient)
    /// hypersensitive to them.
    pub observation_std_floor: f32,
    /// Exploration: the standard deviation of the Gaussian noise added to the policy's
    /// outputs in training windows (before [`Self::action_scale`], so in the policy's units),
    /// reparameterised (command = output + std * normal) so that the actor's gradient stays
    /// exact; drawn per window, robot, step and output from a counter-based generator keyed by
    /// the seed and the window. 0: a deterministic policy. Evaluations never add it.
    pub action_noise: f32,
    /// Where the noise's standard deviation ends: it goes linearly from
    /// [`Self::action_noise`] at the first window to this at the task's `iterations`, and stays
    /// there. `None`: constant.
    pub action_noise_final: Option<f32>,
}

impl Default for ShacSettings {
    fn default() -> Self {
        ShacSettings {
            window: 32,
            gamma: 0.99,
            lambda: 0.95,
            critic_hidden: vec![64, 64],
            critic_learning_rate: 2.0e-3,
            critic_iterations: 16,
            critic_minibatches: 4,
            target_critic_alpha: 0.2,
            normalize_observations: true,
            action_scale: 1.0,
            observation_std_floor: 0.01,
            action_noise: 0.0,
            action_noise_final: None,
        }
    }
}
