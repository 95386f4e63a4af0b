//! The paper's ball throw: a 1 m sphere (mu 1, e 0.5) at rest at the origin; optimise the six
//! initial velocity components (linear and angular) so that after 500 steps (5 s) it rests at
//! (10, 0) with position error < 0.01 m and velocity error < 0.01.

use std::sync::Arc;
use std::time::Instant;

use crate::cmaes::CmaEs;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::layout::{BODY_STATE_LEN, Compiled};
use crate::loss::{Loss, Quantity, When};
use crate::model::Model;
use crate::rollout::{Rollout, RolloutOptions};

use super::{Adam, ExperimentResult, MethodResult, Options, out_of_time, progress_bar};

/// Where the ball must come to rest (its centre, 0.5 m above the ground).
pub const TARGET: [f32; 3] = [10.0, 0.0, 0.5];
/// Steps of the throw (5 s at dt = 0.01 s).
pub const HORIZON: u32 = 500;
/// Position error threshold, metres.
pub const POSITION_TOLERANCE: f64 = 0.01;
/// Velocity error threshold: the norm of (linear velocity in m/s, angular velocity in rad/s).
pub const VELOCITY_TOLERANCE: f64 = 0.01;
/// Slot of the ball's linear velocity in the raw state (angular velocity follows).
const VELOCITY_SLOT: usize = BODY_STATE_LEN + 7;

/// Position and velocity errors of one final state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThrowError {
    /// |position - target|, m.
    pub position: f64,
    /// |(v, w)|.
    pub velocity: f64,
}

impl ThrowError {
    /// Whether both errors are under the paper's thresholds.
    pub fn reached(&self) -> bool {
        self.position < POSITION_TOLERANCE && self.velocity < VELOCITY_TOLERANCE
    }

    /// max(position / tolerance, velocity / tolerance): below 1 when reached.
    pub fn ratio(&self) -> f64 {
        (self.position / POSITION_TOLERANCE).max(self.velocity / VELOCITY_TOLERANCE)
    }
}

/// The ball-throw simulator: `n` instances of the ball over 500 steps under the final-state
/// loss |p - target|^2 + |v|^2 + |w|^2.
pub struct BallThrow {
    rollout: Rollout,
    base: Vec<f32>,
    state_len: usize,
    n: usize,
}

impl BallThrow {
    /// The loss: squared position and velocity errors of the final state.
    pub fn loss() -> Loss {
        Self::weighted_loss([1.0; 3])
    }

    /// The loss with weights on the position, velocity and angular velocity terms.
    pub fn weighted_loss(w: [f32; 3]) -> Loss {
        Loss::new()
            .term(
                "ball",
                Quantity::PositionError {
                    target: TARGET,
                    mask: [1.0; 3],
                },
                w[0],
                When::Final,
            )
            .term(
                "ball",
                Quantity::VelocityError {
                    target: [0.0; 3],
                    mask: [1.0; 3],
                },
                w[1],
                When::Final,
            )
            .term(
                "ball",
                Quantity::AngularVelocityError {
                    target: [0.0; 3],
                    mask: [1.0; 3],
                },
                w[2],
                When::Final,
            )
    }

    /// `n` balls of `models/ball.toml` over `horizon` steps.
    pub fn new(gpu: Arc<Gpu>, n: usize, horizon: u32) -> Result<Self> {
        Self::with_loss(gpu, n, horizon, &Self::loss())
    }

    /// Like [`BallThrow::new`] under another loss.
    pub fn with_loss(gpu: Arc<Gpu>, n: usize, horizon: u32, loss: &Loss) -> Result<Self> {
        let model: Model = crate::models::builtin("ball")?;
        let compiled = Compiled::new(&model);
        let mut options = RolloutOptions::new(horizon);
        options.command_gradients = false;
        let rollout = Rollout::new(gpu, &model, n, loss, options)?;
        Ok(BallThrow {
            rollout,
            base: compiled.initial_state.clone(),
            state_len: compiled.initial_state.len(),
            n,
        })
    }

    /// Instances.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether there are no instances (never: a rollout has at least one).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Runs every instance forward from the given initial velocities (6 per instance: linear
    /// then angular); returns each loss and error.
    pub fn evaluate(&mut self, velocities: &[[f64; 6]]) -> Result<(Vec<f64>, Vec<ThrowError>)> {
        assert_eq!(velocities.len(), self.n);
        let mut state = Vec::with_capacity(self.n * self.state_len);
        for v in velocities {
            let mut s = self.base.clone();
            for k in 0..6 {
                s[VELOCITY_SLOT + k] = v[k] as f32;
            }
            state.extend(s);
        }
        self.rollout.set_initial_state(&state)?;
        let loss = self.rollout.forward()?;
        let finals = self.rollout.final_state()?;
        let errors = finals
            .chunks_exact(self.state_len)
            .map(|s| {
                let p = &s[BODY_STATE_LEN..BODY_STATE_LEN + 3];
                let position = p
                    .iter()
                    .zip(TARGET)
                    .map(|(a, b)| f64::from(a - b).powi(2))
                    .sum::<f64>()
                    .sqrt();
                let velocity = s[VELOCITY_SLOT..VELOCITY_SLOT + 6]
                    .iter()
                    .map(|v| f64::from(*v).powi(2))
                    .sum::<f64>()
                    .sqrt();
                ThrowError { position, velocity }
            })
            .collect();
        Ok((loss.iter().map(|l| f64::from(*l)).collect(), errors))
    }

    /// dL/d(initial velocities) of every instance, after [`BallThrow::evaluate`].
    pub fn gradient(&mut self) -> Result<Vec<[f64; 6]>> {
        let g = self.rollout.backward()?;
        Ok(g.initial_state
            .chunks_exact(self.state_len)
            .map(|s| std::array::from_fn(|k| f64::from(s[VELOCITY_SLOT + k])))
            .collect())
    }
}

/// Tracks one method's run against the threshold.
struct Tracker {
    started: Instant,
    result: MethodResult,
    best: Option<ThrowError>,
    bar: indicatif::ProgressBar,
}

impl Tracker {
    fn new(method: &str, note: String, options: &Options, budget: u64) -> Self {
        Tracker {
            started: Instant::now(),
            result: MethodResult {
                method: method.into(),
                source: "measured".into(),
                note,
                ..Default::default()
            },
            best: None,
            bar: progress_bar(options.progress, budget, method),
        }
    }

    /// Records `evals` more evaluations whose best loss and error are given; returns whether
    /// the threshold is met.
    fn record(&mut self, evals: u64, loss: f64, error: ThrowError) -> bool {
        let r = &mut self.result;
        r.evaluations += evals;
        r.loss_first.get_or_insert(loss);
        r.loss_last = Some(loss);
        r.history.push((r.evaluations, loss));
        if self.best.is_none_or(|b| error.ratio() < b.ratio()) {
            self.best = Some(error);
        }
        self.bar.set_position(r.evaluations);
        self.bar.set_message(format!(
            "loss {loss:.3e}  err {:.4} m {:.4} m/s",
            error.position, error.velocity
        ));
        if error.reached() && r.iterations_to_threshold.is_none() {
            r.iterations_to_threshold = Some(r.iterations);
            r.evaluations_to_threshold = Some(r.evaluations);
            r.wall_seconds = Some(self.started.elapsed().as_secs_f64());
            return true;
        }
        false
    }

    fn finish(mut self) -> MethodResult {
        self.bar.finish_and_clear();
        let r = &mut self.result;
        if r.wall_seconds.is_none() {
            r.wall_seconds = Some(self.started.elapsed().as_secs_f64());
        }
        if let Some(b) = self.best {
            r.final_value = Some(b.position.max(b.velocity));
            r.note = format!(
                "{}; best: {:.4} m, {:.4} m/s",
                r.note, b.position, b.velocity
            );
        }
        self.result
    }
}

/// Gradient descent with the adjoint's gradient: one rollout (forward and backward) per
/// iteration, Adam with the paper's settings.
pub fn gradient_descent(
    gpu: Arc<Gpu>,
    options: &Options,
    budget: u64,
    horizon: u32,
) -> Result<MethodResult> {
    let mut sim = BallThrow::new(gpu, 1, horizon)?;
    let mut t = Tracker::new(
        "backdrive gradient (Adam)",
        "Adam lr 1, beta1 = beta2 = 0.5; 1 evaluation = forward + adjoint".into(),
        options,
        budget,
    );
    let mut x = [0.0f64; 6];
    let mut adam = Adam::new(6, 1.0, 0.5, 0.5);
    loop {
        let (loss, err) = sim.evaluate(&[x])?;
        if t.record(1, loss[0], err[0])
            || t.result.evaluations >= budget
            || out_of_time(options, t.started)
        {
            break;
        }
        let g = sim.gradient()?;
        adam.step(&mut x, &g[0]);
        t.result.iterations += 1;
    }
    Ok(t.finish())
}

/// Gradient descent with central finite differences: one batch of 13 instances per iteration
/// (the point and +-h on each of the six velocities), the same Adam.
pub fn finite_differences(
    gpu: Arc<Gpu>,
    options: &Options,
    budget: u64,
    horizon: u32,
) -> Result<MethodResult> {
    let h = 1e-2;
    let mut sim = BallThrow::new(gpu, 13, horizon)?;
    let mut t = Tracker::new(
        "finite differences (Adam)",
        format!("central differences, h = {h} (13 rollouts per iteration); same Adam"),
        options,
        budget,
    );
    let mut x = [0.0f64; 6];
    let mut adam = Adam::new(6, 1.0, 0.5, 0.5);
    loop {
        let mut batch = vec![x; 13];
        for k in 0..6 {
            batch[1 + 2 * k][k] += h;
            batch[2 + 2 * k][k] -= h;
        }
        let (loss, err) = sim.evaluate(&batch)?;
        if t.record(13, loss[0], err[0])
            || t.result.evaluations + 13 > budget
            || out_of_time(options, t.started)
        {
            break;
        }
        let g: Vec<f64> = (0..6)
            .map(|k| (loss[1 + 2 * k] - loss[2 + 2 * k]) / (2.0 * h))
            .collect();
        adam.step(&mut x, &g);
        t.result.iterations += 1;
    }
    Ok(t.finish())
}

/// CMA-ES from zero velocities, step size 5 m/s, the default population of 9, every
/// generation one forward batch.
pub fn cma_es(gpu: Arc<Gpu>, options: &Options, budget: u64, horizon: u32) -> Result<MethodResult> {
    let mut es = CmaEs::new(&[0.0; 6], 5.0, options.seed);
    let lambda = es.population();
    let mut sim = BallThrow::new(gpu, lambda, horizon)?;
    let mut t = Tracker::new(
        "CMA-ES",
        format!("(mu/mu_w, {lambda})-CMA-ES, sigma0 = 5, one batch of {lambda} per generation"),
        options,
        budget,
    );
    loop {
        let xs = es.ask();
        let batch: Vec<[f64; 6]> = xs.iter().map(|x| std::array::from_fn(|k| x[k])).collect();
        let (loss, err) = sim.evaluate(&batch)?;
        es.tell(&loss);
        t.result.iterations += 1;
        let best = (0..lambda)
            .min_by(|&a, &b| err[a].ratio().total_cmp(&err[b].ratio()))
            .unwrap_or(0);
        let best_loss = loss.iter().copied().fold(f64::INFINITY, f64::min);
        if t.record(lambda as u64, best_loss, err[best])
            || t.result.evaluations + lambda as u64 > budget
            || out_of_time(options, t.started)
        {
            break;
        }
    }
    Ok(t.finish())
}

/// Runs the three methods.
pub fn run(gpu: Arc<Gpu>, options: &Options) -> Result<ExperimentResult> {
    let budget = options
        .budget
        .unwrap_or(if options.quick { 40 } else { 3_000 });
    let horizon = HORIZON;
    let mut methods = vec![
        MethodResult::paper(
            "paper: gradient (BPTT, Adam)",
            Some(88),
            Some(88),
            Some(16.3),
            "Degrave et al.; Theano on CPU",
        ),
        MethodResult::paper(
            "paper: CMA-ES",
            Some(2422),
            None,
            Some(59.9),
            "Degrave et al.; evaluations not stated",
        ),
    ];
    methods.push(gradient_descent(gpu.clone(), options, budget, horizon)?);
    methods.push(cma_es(gpu.clone(), options, budget, horizon)?);
    methods.push(finite_differences(gpu.clone(), options, budget, horizon)?);
    Ok(ExperimentResult {
        name: "ball-throw".into(),
        description: "6 initial velocities of a 1 m ball so that it rests at (10, 0) after 5 s"
            .into(),
        threshold: format!(
            "position error < {POSITION_TOLERANCE} m and |(v, w)| < {VELOCITY_TOLERANCE}"
        ),
        metric: "max(position error, velocity error) of the best throw".into(),
        parameters: 6,
        quick: options.quick,
        budget,
        time_limit: options.time_limit,
        adapter: gpu.describe(),
        methods,
    })
}
