//! Open-loop periodic gaits: every actuator follows `offset + a sin(2 pi f t) + b cos(2 pi f t)`.
//!
//! Three numbers per actuator describe any 1.5 Hz gait a clock-driven controller could produce
//! without feedback, so a search over them (CMA-ES, [`search`]) asks what a robot can do at
//! all, independently of a neural policy and of gradients. The quadruped experiment runs it as
//! its CMA-ES baseline, and `examples/gait_search.rs` uses it to find how the best speed
//! depends on the servos' torque limit.

use std::sync::Arc;
use std::time::Instant;

use crate::engine::gpu::Gpu;
use crate::engine::sim::Simulator;
use crate::error::{Error, Result};
use crate::learn::cmaes::CmaEs;
use crate::model::Model;

/// Gait parameters per actuator: the offset and the sine and cosine amplitudes.
pub const PARAMS_PER_ACTUATOR: usize = 3;

/// Actuator `actuator`'s command at clock phase `phase` (radians) under `gait`
/// ([`PARAMS_PER_ACTUATOR`] numbers per actuator, in actuator order).
pub fn gait_command(gait: &[f64], actuator: usize, phase: f64) -> f64 {
    let p = &gait[PARAMS_PER_ACTUATOR * actuator..][..PARAMS_PER_ACTUATOR];
    p[0] + p[1] * phase.sin() + p[2] * phase.cos()
}

/// Runs a batch of robots, one gait each, from the model's initial state and measures how far
/// one body travels along +x.
pub struct GaitEvaluator {
    sim: Simulator,
    frequency: f64,
    steps: u32,
    body: usize,
}

impl GaitEvaluator {
    /// Up to `capacity` gaits per call of [`GaitEvaluator::forward_speeds`], at `frequency` Hz,
    /// over `seconds` of model time, measuring body `body` (by name).
    pub fn new(
        gpu: Arc<Gpu>,
        model: &Model,
        body: &str,
        frequency: f64,
        seconds: f64,
        capacity: usize,
    ) -> Result<Self> {
        let body = model.body_index(body).ok_or_else(|| {
            Error::InvalidInput(format!("model '{}' has no body '{body}'", model.name))
        })?;
        if !(frequency.is_finite() && seconds.is_finite() && seconds > 0.0) {
            return Err(Error::InvalidInput(format!(
                "a gait needs a finite frequency and a positive duration, got {frequency} Hz over {seconds} s"
            )));
        }
        let steps = (seconds / f64::from(model.settings.dt)).round().max(1.0) as u32;
        Ok(GaitEvaluator {
            sim: Simulator::new(gpu, model, capacity.max(1))?,
            frequency,
            steps,
            body,
        })
    }

    /// Parameters of one gait.
    pub fn gait_len(&self) -> usize {
        PARAMS_PER_ACTUATOR * self.sim.model().actuators.len()
    }

    /// Model time simulated per gait, in seconds.
    pub fn seconds(&self) -> f64 {
        f64::from(self.steps) * f64::from(self.sim.model().settings.dt)
    }

    /// The average forward speed (m/s: displacement along +x over the duration) of the measured
    /// body under each gait. Unused instances of the batch stand still with zero commands.
    pub fn forward_speeds(&mut self, gaits: &[Vec<f64>]) -> Result<Vec<f64>> {
        let n = self.sim.n_instances();
        let n_act = self.sim.model().actuators.len();
        if gaits.len() > n {
            return Err(Error::InvalidInput(format!(
                "{} gaits for an evaluator of {n} robots",
                gaits.len()
            )));
        }
        if let Some(g) = gaits.iter().find(|g| g.len() != self.gait_len()) {
            return Err(Error::InvalidInput(format!(
                "a gait of {} numbers for {n_act} actuators (expected {})",
                g.len(),
                self.gait_len()
            )));
        }
        self.sim.reset()?;
        let n_bodies = self.sim.model().bodies.len();
        let start: Vec<f64> = self
            .sim
            .body_states()?
            .chunks(n_bodies)
            .map(|b| f64::from(b[self.body].position[0]))
            .collect();
        let dt = f64::from(self.sim.model().settings.dt);
        let mut commands = vec![0.0f32; n * n_act];
        for k in 0..self.steps {
            // The command applied during step k, at the step's start time (like the policy's
            // clock sensor).
            let phase = std::f64::consts::TAU * self.frequency * f64::from(k) * dt;
            for (i, gait) in gaits.iter().enumerate() {
                for a in 0..n_act {
                    commands[i * n_act + a] = gait_command(gait, a, phase) as f32;
                }
            }
            self.sim.set_commands(&commands)?;
            self.sim.step(1)?;
        }
        let seconds = self.seconds();
        Ok(self
            .sim
            .body_states()?
            .chunks(n_bodies)
            .zip(&start)
            .take(gaits.len())
            .map(|(b, x0)| (f64::from(b[self.body].position[0]) - x0) / seconds)
            .collect())
    }
}

/// How a gait search went.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchResult {
    /// The fastest gait evaluated and its speed (m/s).
    pub best: Vec<f64>,
    /// See `best`.
    pub best_speed: f64,
    /// Generations run.
    pub generations: u64,
    /// Gaits evaluated (one rollout each).
    pub evaluations: u64,
    /// (evaluations so far, best speed of the generation) per generation.
    pub history: Vec<(u64, f64)>,
    /// Evaluations until a gait first beat the target speed, if one did.
    pub evaluations_to_target: Option<u64>,
    /// Wall time in seconds (to the target when reached, else of the whole search).
    pub wall_seconds: f64,
}

/// Search limits and settings.
#[derive(Clone, Debug)]
pub struct SearchOptions {
    /// Most gaits to evaluate.
    pub budget: u64,
    /// Candidates per generation (`None`: CMA-ES's default for the dimension, capped by the
    /// budget and by the evaluator's capacity).
    pub population: Option<usize>,
    /// Initial step size (radians of command).
    pub sigma: f64,
    /// CMA-ES seed.
    pub seed: u64,
    /// Stop at the first generation past this wall time (seconds).
    pub time_limit: Option<f64>,
    /// Stop once a gait is faster than this (m/s).
    pub target_speed: Option<f64>,
}

/// CMA-ES over open-loop gaits starting from `start` (all zeros: stand still). Every
/// generation is one batched rollout; `on_generation` sees each generation's best speed.
pub fn search(
    evaluator: &mut GaitEvaluator,
    start: &[f64],
    options: &SearchOptions,
    on_generation: &mut dyn FnMut(&SearchResult),
) -> Result<SearchResult> {
    let started = Instant::now();
    let capacity = evaluator.sim.n_instances();
    let default_population = CmaEs::new(start, options.sigma, options.seed).population();
    let population = options
        .population
        .unwrap_or(default_population)
        .min(capacity)
        .min(options.budget as usize)
        .max(2);
    let mut es = CmaEs::with_population(start, options.sigma, population, options.seed);
    let mut result = SearchResult {
        best_speed: f64::NEG_INFINITY,
        ..Default::default()
    };
    while result.evaluations + population as u64 <= options.budget
        && options
            .time_limit
            .is_none_or(|l| started.elapsed().as_secs_f64() < l)
    {
        let gaits = es.ask();
        let speeds = evaluator.forward_speeds(&gaits)?;
        es.tell(&speeds.iter().map(|v| -v).collect::<Vec<_>>());
        result.generations += 1;
        result.evaluations += population as u64;
        let (i, &speed) = speeds
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .expect("a population of at least 2");
        result.history.push((result.evaluations, speed));
        if speed > result.best_speed {
            result.best_speed = speed;
            result.best = gaits[i].clone();
        }
        on_generation(&result);
        if let Some(target) = options.target_speed
            && speed > target
        {
            result.evaluations_to_target = Some(result.evaluations);
            break;
        }
    }
    result.wall_seconds = started.elapsed().as_secs_f64();
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gait_command_is_offset_plus_sine_and_cosine() {
        let gait = [0.1, 0.5, -0.2, 1.0, 0.0, 0.0];
        assert!((gait_command(&gait, 0, 0.0) - (0.1 - 0.2)).abs() < 1e-12);
        let quarter = std::f64::consts::FRAC_PI_2;
        assert!((gait_command(&gait, 0, quarter) - (0.1 + 0.5)).abs() < 1e-12);
        assert_eq!(gait_command(&gait, 1, 1.234), 1.0);
    }
}
