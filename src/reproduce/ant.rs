//! `reproduce ant`: gymnasium's ant (`tasks::builtin("ant-run")`, MJCF) running forward, with
//! three methods side by side on one budget of simulated robot-steps: backpropagation through
//! whole episodes (the task's gradient learner), CMA-ES over open-loop gaits, and the
//! short-horizon actor-critic. Every row is charged in robot-steps (its evaluations are
//! rollouts of one robot over one episode) and wall time; its value is the torso's average
//! forward speed over one episode of the trained policy (or the best gait), in m/s.

use std::sync::Arc;

use crate::engine::gpu::Gpu;
use crate::engine::sim::BodyState;
use crate::error::{Error, Result};
use crate::learn::algorithm::{Algorithm, ShacSettings};
use crate::learn::tasks::{self, Task};

use super::policy::{crate_thousands, new_trainer, open_loop_gait_search, shac_run, train};
use super::{ExperimentResult, Options};

/// The goal for the ant: an average forward speed of 1 m/s over 10 s episodes.
pub const ANT_TARGET_SPEED: f64 = 1.0;

/// Robot-steps of the full experiment's actor-critic (the 2 million).
pub const ANT_ROBOT_STEPS: u64 = 2_000_000;

/// The torso's average forward speed (+x, m/s) between the first and the last frame of an
/// episode recorded as instance-major body states, averaged over the batch.
pub fn forward_speed(frames: &[Vec<BodyState>], torso: usize, bodies: usize, seconds: f64) -> f64 {
    let (Some(first), Some(last)) = (frames.first(), frames.last()) else {
        return f64::NAN;
    };
    let robots = first.len() / bodies.max(1);
    if robots == 0 || seconds <= 0.0 {
        return f64::NAN;
    }
    (0..robots)
        .map(|i| {
            let k = i * bodies + torso;
            f64::from(last[k].position[0] - first[k].position[0]) / seconds
        })
        .sum::<f64>()
        / robots as f64
}

/// The ant task trained by the actor-critic: `ant-run` itself when it is one, else `ant-run`
/// with `quadruped-run`'s actor-critic settings, its network and per-step (not averaged)
/// reward terms, as the actor-critic takes rewards per step.
fn shac_task(ant: &Task) -> Result<Task> {
    if matches!(ant.algorithm, Algorithm::Shac(_)) {
        return Ok(ant.clone());
    }
    let run = tasks::builtin("quadruped-run")?;
    let settings = match &run.algorithm {
        Algorithm::Shac(s) => s.clone(),
        _ => ShacSettings {
            window: 25,
            ..ShacSettings::default()
        },
    };
    let mut task = ant.clone();
    for t in &mut task.loss.terms {
        t.weight *= task.horizon as f32;
    }
    task.policy.hidden = run.policy.hidden.clone();
    task.policy.activation = run.policy.activation;
    task.policy.skip = run.policy.skip;
    task.optimizer = run.optimizer;
    task.instances = run.instances;
    task.algorithm = Algorithm::Shac(settings);
    Ok(task)
}

/// The ant task trained by backpropagation through whole episodes of `horizon` steps, its terms
/// averaged over the episode: `ant-run` itself when it is such a task (its terms averaged over
/// its own horizon, rescaled to `horizon`), else `ant-run` with its per-step terms averaged.
fn bptt_task(ant: &Task, horizon: u32) -> Task {
    let mut task = ant.clone();
    let scale = if matches!(ant.algorithm, Algorithm::Shac(_)) {
        task.algorithm = Algorithm::Bptt;
        1.0 / horizon as f32
    } else {
        ant.horizon as f32 / horizon as f32
    };
    for t in &mut task.loss.terms {
        t.weight *= scale;
    }
    task.horizon = horizon;
    task
}

/// Runs `reproduce ant`. The actor-critic trains for `options.budget` windows (default: as many
/// as [`ANT_ROBOT_STEPS`] robot-steps take; quick: 4 windows of 4 robots over 50-step
/// episodes); the other rows get the robot-steps it used.
pub fn ant(gpu: Arc<Gpu>, options: &Options) -> Result<ExperimentResult> {
    let ant = tasks::builtin("ant-run")?;
    let torso = ant
        .model
        .body_index("torso")
        .ok_or_else(|| Error::InvalidInput("the ant model has no body 'torso'".into()))?;
    let bodies = ant.model.bodies.len();
    let dt = f64::from(ant.model.settings.dt);
    let shac = shac_task(&ant)?;
    let Algorithm::Shac(settings) = &shac.algorithm else {
        unreachable!("shac_task returns an actor-critic task")
    };
    let window = u64::from(settings.window);
    let robots = if options.quick { 4 } else { shac.instances } as u64;
    let budget = options.budget.unwrap_or(if options.quick {
        4
    } else {
        (ANT_ROBOT_STEPS / (robots * window)).max(1)
    });
    let (mut s, horizon, robot_steps) = shac_run(
        gpu.clone(),
        options,
        budget,
        shac,
        &mut |t| {
            let seconds = f64::from(t.task().horizon) * dt;
            let frames = t.record(t.task().horizon)?;
            Ok(forward_speed(&frames, torso, bodies, seconds))
        },
        "the torso's average forward speed over one episode of the trained policy, batch mean",
    )?;
    let seconds = f64::from(horizon) * dt;
    let reached = |value: Option<f64>| value.is_some_and(|v| v > ANT_TARGET_SPEED);
    if reached(s.final_value) {
        s.iterations_to_threshold = Some(s.iterations);
        s.evaluations_to_threshold = Some(s.evaluations);
    }
    let episodes = (robot_steps / u64::from(horizon)).max(2);

    // Backpropagation through whole episodes of the same length, batch of the task's robots
    // (quick: 4), for as many robot-steps.
    let gradient_task = bptt_task(&ant, horizon);
    let gradient_robots = if options.quick {
        4
    } else {
        gradient_task.instances
    };
    let gradient_budget = episodes.max(gradient_robots as u64);
    let mut trainer = new_trainer(gpu.clone(), gradient_task, gradient_robots, options.seed)?;
    let mut g = train(
        &mut trainer,
        gradient_robots,
        options,
        gradient_budget,
        &mut |_, loss| Ok((-loss, false)),
        1,
        false,
        format!(
            "{horizon}-step episodes, {gradient_robots} randomised robots per update, Adam, clipping at 1"
        ),
    )?;
    g.method = format!("backdrive gradient (BPTT, Adam), batch {gradient_robots}");
    let frames = trainer.record(horizon)?;
    g.final_value = Some(forward_speed(&frames, torso, bodies, seconds));
    if reached(g.final_value) {
        g.iterations_to_threshold = Some(g.iterations);
        g.evaluations_to_threshold = Some(g.evaluations);
    }
    g.note = format!(
        "{}; {} rollouts of {horizon} steps = {} robot-steps; value: the torso's average forward speed over one episode of the trained policy, batch mean (not charged); loss: the task's (minus reward)",
        g.note,
        g.evaluations,
        crate_thousands(g.evaluations * u64::from(horizon))
    );

    // CMA-ES over open-loop gaits, from standing still, for as many robot-steps.
    let mut o = open_loop_gait_search(
        gpu.clone(),
        &ant.model,
        horizon,
        episodes,
        ANT_TARGET_SPEED,
        options,
    )?;
    o.note = format!(
        "{}; {} rollouts of {horizon} steps = {} robot-steps",
        o.note,
        o.evaluations,
        crate_thousands(o.evaluations * u64::from(horizon))
    );

    Ok(ExperimentResult {
        name: "ant".into(),
        description: format!(
            "gymnasium's ant (MJCF) running forward over {seconds:.1} s episodes: forward speed, healthy reward and control cost (Ant-v5's, without its termination)"
        ),
        threshold: format!("average forward speed > {ANT_TARGET_SPEED} m/s"),
        metric: "the torso's average forward speed over one episode, m/s".into(),
        parameters: crate::learn::policy::PolicyLayout::new(&ant.policy, &ant.model)?.n_params,
        quick: options.quick,
        budget,
        time_limit: options.time_limit,
        adapter: gpu.describe(),
        methods: vec![g, o, s],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(x: f32) -> BodyState {
        BodyState {
            position: [x, 0.0, 0.5],
            orientation: [0.0, 0.0, 0.0, 1.0],
            linear_velocity: [0.0; 3],
            angular_velocity: [0.0; 3],
        }
    }

    #[test]
    fn forward_speed_is_the_batch_mean_of_the_torsos_displacement_over_time() {
        // Two robots of two bodies, the torso second: displacements 2 m and 4 m over 2 s.
        let first = vec![body(9.0), body(1.0), body(9.0), body(-1.0)];
        let last = vec![body(0.0), body(3.0), body(0.0), body(3.0)];
        let v = forward_speed(&[first.clone(), last], 1, 2, 2.0);
        assert!((v - 1.5).abs() < 1e-12, "{v}");
        assert!(forward_speed(&[], 1, 2, 2.0).is_nan());
        assert!(forward_speed(&[first], 1, 2, 0.0).is_nan());
    }
}
