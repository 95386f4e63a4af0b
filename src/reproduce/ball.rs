//! The paper's ball throw: a 1 m sphere (mu 1, e 0.5) at rest at the origin; optimise the six
//! initial velocity components (linear and angular) so that after 500 steps (5 s) it rests at
//! (10, 0) with position error < 0.01 m and velocity error < 0.01.

use std::sync::Arc;
use std::time::Instant;

use crate::engine::gpu::Gpu;
use crate::engine::layout::{BODY_STATE_LEN, Compiled};
use crate::error::Result;
use crate::grad::loss::{Loss, Quantity, When};
use crate::grad::rollout::{Rollout, RolloutOptions};
use crate::learn::cmaes::CmaEs;
use crate::model::Model;

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
    /// Final raw states of the last [`BallThrow::evaluate`] (instance-major).
    finals: Vec<f32>,
}

/// Residuals of a final state: position error (3), linear velocity (3), angular velocity (3).
pub const RESIDUALS: usize = 9;

/// Raw-state slot of residual `k`.
fn residual_slot(k: usize) -> usize {
    if k < 3 {
        BODY_STATE_LEN + k
    } else {
        VELOCITY_SLOT + k - 3
    }
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
        let model: Model = crate::io::models::builtin("ball")?;
        let compiled = Arc::new(Compiled::new(&model));
        let mut options = RolloutOptions::new(horizon);
        options.command_gradients = false;
        let rollout = Rollout::with_compiled(gpu, &model, compiled.clone(), n, loss, options)?;
        Ok(BallThrow {
            rollout,
            base: compiled.initial_state.clone(),
            state_len: compiled.initial_state.len(),
            n,
            finals: Vec::new(),
        })
    }

    /// [`RESIDUALS`] instances and no loss terms, for [`BallThrow::residual_jacobian`]: the
    /// adjoint of instance `k` is seeded with the unit vector of residual `k` alone.
    pub fn for_jacobian(gpu: Arc<Gpu>, horizon: u32) -> Result<Self> {
        Self::for_jacobian_batch(gpu, RESIDUALS, horizon)
    }

    /// `n` instances and no loss terms (forward passes and seeded backward passes only).
    pub fn for_jacobian_batch(gpu: Arc<Gpu>, n: usize, horizon: u32) -> Result<Self> {
        Self::with_loss(gpu, n, horizon, &Loss::new())
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
        self.finals = self.rollout.final_state_raw()?;
        let errors = self
            .finals
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

    /// The residuals r = (p - target, v, w) of every instance after [`BallThrow::evaluate`]:
    /// the loss of [`BallThrow::loss`] is |r|^2.
    pub fn residuals(&self) -> Vec<[f64; RESIDUALS]> {
        self.finals
            .chunks_exact(self.state_len)
            .map(|s| {
                std::array::from_fn(|k| {
                    let target = if k < 3 { f64::from(TARGET[k]) } else { 0.0 };
                    f64::from(s[residual_slot(k)]) - target
                })
            })
            .collect()
    }

    /// The 9 x 6 Jacobian dr/d(initial velocities) by the exact adjoint, after
    /// [`BallThrow::evaluate`] of the same throw in every instance of a
    /// [`BallThrow::for_jacobian`] simulator: one backward pass over the batch, instance `k`
    /// seeded with e_k on residual `k`, gives row `k`.
    pub fn residual_jacobian(&mut self) -> Result<[[f64; 6]; RESIDUALS]> {
        assert_eq!(self.n, RESIDUALS, "build the simulator with for_jacobian");
        let mut seed = vec![0.0f32; self.n * self.state_len];
        for k in 0..RESIDUALS {
            seed[k * self.state_len + residual_slot(k)] = 1.0;
        }
        let g = self.rollout.backward_from(Some(&seed), &mut |_, _| {})?;
        Ok(std::array::from_fn(|k| {
            let s = &g.initial_state[k * self.state_len..(k + 1) * self.state_len];
            std::array::from_fn(|j| f64::from(s[VELOCITY_SLOT + j]))
        }))
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
        r.record_loss(loss);
        if self.best.is_none_or(|b| error.ratio() < b.ratio()) {
            self.best = Some(error);
        }
        self.bar.set_position(r.evaluations);
        self.bar.set_message(format!(
            "loss {loss:.3e}  err {:.4} m {:.4} m/s",
            error.position, error.velocity
        ));
        if error.reached() && r.iterations_to_threshold.is_none() {
            r.reach(r.iterations, r.evaluations, self.started);
            return true;
        }
        false
    }

    fn finish(mut self) -> MethodResult {
        self.bar.finish_and_clear();
        let r = &mut self.result;
        r.finish_wall_time(self.started);
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

/// The trust radius of the first Gauss-Newton step, in the units of the six initial
/// velocities (m/s and rad/s).
pub const INITIAL_RADIUS: f64 = 5.0;

/// dr/dx: row `i` is residual `i`, column `k` initial velocity `k`.
type Jacobian = [[f64; 6]; RESIDUALS];

/// Where the 9 x 6 Jacobian of the residuals comes from.
enum Jacobians {
    /// The exact adjoint: the throw in all [`RESIDUALS`] instances of one batch, instance `k`
    /// seeded with residual `k` (the backward pass runs only for accepted steps).
    Adjoint(BallThrow),
    /// Central differences with step `h`: the throw and its 12 perturbations in one forward
    /// batch of 13 instances, every iteration.
    FiniteDifferences(BallThrow, f64),
}

impl Jacobians {
    /// Instances per iteration.
    fn batch(&self) -> u64 {
        match self {
            Jacobians::Adjoint(_) => RESIDUALS as u64,
            Jacobians::FiniteDifferences(..) => 13,
        }
    }

    /// Rolls `x` out; returns its residuals, its errors and, for finite differences, the
    /// Jacobian at `x`.
    fn evaluate(
        &mut self,
        x: [f64; 6],
    ) -> Result<([f64; RESIDUALS], ThrowError, Option<Jacobian>)> {
        match self {
            Jacobians::Adjoint(sim) => {
                let (_, err) = sim.evaluate(&[x; RESIDUALS])?;
                Ok((sim.residuals()[0], err[0], None))
            }
            Jacobians::FiniteDifferences(sim, h) => {
                let mut batch = vec![x; 13];
                for k in 0..6 {
                    batch[1 + 2 * k][k] += *h;
                    batch[2 + 2 * k][k] -= *h;
                }
                let (_, err) = sim.evaluate(&batch)?;
                let r = sim.residuals();
                let jac = std::array::from_fn(|i| {
                    std::array::from_fn(|k| (r[1 + 2 * k][i] - r[2 + 2 * k][i]) / (2.0 * *h))
                });
                Ok((r[0], err[0], Some(jac)))
            }
        }
    }

    /// The Jacobian at the point of the last [`Jacobians::evaluate`].
    fn jacobian(&mut self, from_forward: Option<Jacobian>) -> Result<Jacobian> {
        match (self, from_forward) {
            (_, Some(jac)) => Ok(jac),
            (Jacobians::Adjoint(sim), None) => sim.residual_jacobian(),
            (Jacobians::FiniteDifferences(..), None) => unreachable!("computed by evaluate"),
        }
    }
}

/// Gauss-Newton with the exact adjoint Jacobian: Levenberg-Marquardt on the residuals
/// r = (p - target, v, w), whose squared norm is the loss, from zero velocities. Every
/// iteration rolls the proposed throw out in the [`RESIDUALS`] instances of one batch; when
/// the loss falls the step is accepted and one backward pass over the batch gives the 9 x 6
/// Jacobian at the new point (row `k` from instance `k`, seeded with residual `k`); otherwise
/// the damping grows and the trust radius shrinks. Deterministic.
pub fn gauss_newton(
    gpu: Arc<Gpu>,
    options: &Options,
    budget: u64,
    horizon: u32,
) -> Result<MethodResult> {
    let sim = BallThrow::for_jacobian(gpu, horizon)?;
    levenberg_marquardt(
        Jacobians::Adjoint(sim),
        "backdrive gradient (Gauss-Newton)",
        format!(
            "Levenberg-Marquardt on the 9 residuals with the adjoint Jacobian, trust radius \
             {INITIAL_RADIUS} at first; 1 iteration = the proposed throw in a batch of \
             {RESIDUALS} instances (+ {RESIDUALS} adjoints when accepted) = {RESIDUALS} \
             evaluations"
        ),
        options,
        budget,
    )
}

/// The same Levenberg-Marquardt with a central-difference Jacobian (step `h` = 1e-2): the
/// proposed throw and its 12 perturbations in one forward batch of 13 per iteration.
pub fn finite_difference_gauss_newton(
    gpu: Arc<Gpu>,
    options: &Options,
    budget: u64,
    horizon: u32,
) -> Result<MethodResult> {
    let h = 1e-2;
    let sim = BallThrow::for_jacobian_batch(gpu, 13, horizon)?;
    levenberg_marquardt(
        Jacobians::FiniteDifferences(sim, h),
        "finite differences (Gauss-Newton)",
        format!(
            "the same Levenberg-Marquardt, central differences h = {h}; 1 iteration = the \
             proposed throw and 12 perturbations in a batch of 13 = 13 evaluations"
        ),
        options,
        budget,
    )
}

fn levenberg_marquardt(
    mut jacobians: Jacobians,
    method: &str,
    note: String,
    options: &Options,
    budget: u64,
) -> Result<MethodResult> {
    let batch = jacobians.batch();
    let mut t = Tracker::new(method, note, options, budget);
    let mut x = [0.0f64; 6];
    let (mut r, err, fd) = jacobians.evaluate(x)?;
    let mut cost = norm2(&r);
    if t.record(batch, cost, err) {
        return Ok(t.finish());
    }
    let mut jac = jacobians.jacobian(fd)?;
    let mut lm = Damping::default();
    while t.result.evaluations + batch <= budget && !out_of_time(options, t.started) {
        let Some(mut dx) = lm.step(&jac, &r) else {
            break;
        };
        let len = norm2(&dx).sqrt();
        if len > lm.radius {
            dx.iter_mut().for_each(|v| *v *= lm.radius / len);
        }
        let len = len.min(lm.radius);
        if len < 1e-9 {
            t.result.note.push_str("; stalled (step < 1e-9)");
            break;
        }
        let trial: [f64; 6] = std::array::from_fn(|k| x[k] + dx[k]);
        let (r_trial, err, fd) = jacobians.evaluate(trial)?;
        t.result.iterations += 1;
        let cost_trial = norm2(&r_trial);
        if t.record(batch, cost_trial, err) {
            break;
        }
        let linear: [f64; RESIDUALS] =
            std::array::from_fn(|i| r[i] + (0..6).map(|j| jac[i][j] * dx[j]).sum::<f64>());
        let predicted = cost - norm2(&linear);
        if cost_trial < cost {
            lm.accept((cost - cost_trial) / predicted.max(f64::MIN_POSITIVE), len);
            x = trial;
            r = r_trial;
            cost = cost_trial;
            jac = jacobians.jacobian(fd)?;
        } else {
            lm.reject(len);
        }
    }
    Ok(t.finish())
}

fn norm2(r: &[f64]) -> f64 {
    r.iter().map(|v| v * v).sum()
}

/// Levenberg damping (lambda times the largest diagonal entry of J^T J, Nielsen's update) and
/// a trust radius on the step length.
struct Damping {
    lambda: f64,
    nu: f64,
    radius: f64,
}

impl Default for Damping {
    fn default() -> Self {
        Damping {
            lambda: 1e-3,
            nu: 2.0,
            radius: INITIAL_RADIUS,
        }
    }
}

impl Damping {
    /// The step dx solving (J^T J + lambda max(diag J^T J) I) dx = -J^T r; `None` when
    /// singular.
    fn step(&self, jac: &Jacobian, r: &[f64; RESIDUALS]) -> Option<[f64; 6]> {
        let mut a = [[0.0f64; 7]; 6];
        for i in 0..6 {
            for j in 0..6 {
                a[i][j] = (0..RESIDUALS).map(|k| jac[k][i] * jac[k][j]).sum();
            }
            a[i][6] = -(0..RESIDUALS).map(|k| jac[k][i] * r[k]).sum::<f64>();
        }
        let max_diag = (0..6).map(|i| a[i][i]).fold(0.0, f64::max);
        for (i, row) in a.iter_mut().enumerate() {
            row[i] += self.lambda * max_diag;
        }
        solve6(a)
    }

    /// After an accepted step of length `len` whose actual / predicted reduction is `rho`.
    fn accept(&mut self, rho: f64, len: f64) {
        self.lambda *= (1.0f64 / 3.0).max(1.0 - (2.0 * rho - 1.0).powi(3));
        self.nu = 2.0;
        if rho > 0.75 {
            self.radius = self.radius.max(2.0 * len);
        } else if rho < 0.25 {
            self.radius = len / 2.0;
        }
    }

    /// After a rejected step of length `len`.
    fn reject(&mut self, len: f64) {
        self.lambda *= self.nu;
        self.nu *= 2.0;
        self.radius = len / 4.0;
    }
}

/// Solves the 6 x 6 system in the augmented matrix by Gaussian elimination with partial
/// pivoting; `None` when singular.
fn solve6(mut a: [[f64; 7]; 6]) -> Option<[f64; 6]> {
    for c in 0..6 {
        let p = (c..6).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))?;
        if a[p][c].abs() <= 0.0 || !a[p][c].is_finite() {
            return None;
        }
        a.swap(c, p);
        let pivot = a[c];
        for row in a.iter_mut().skip(c + 1) {
            let f = row[c] / pivot[c];
            for (v, p) in row.iter_mut().zip(pivot).skip(c) {
                *v -= f * p;
            }
        }
    }
    let mut x = [0.0f64; 6];
    for c in (0..6).rev() {
        let s: f64 = (c + 1..6).map(|j| a[c][j] * x[j]).sum();
        x[c] = (a[c][6] - s) / a[c][c];
    }
    Some(x)
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
    methods.push(gauss_newton(gpu.clone(), options, budget, horizon)?);
    methods.push(cma_es(gpu.clone(), options, budget, horizon)?);
    methods.push(finite_differences(gpu.clone(), options, budget, horizon)?);
    methods.push(finite_difference_gauss_newton(
        gpu.clone(),
        options,
        budget,
        horizon,
    )?);
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

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;

    #[test]
    fn solve6_solves_a_linear_system() {
        let m = [
            [4.0, 1.0, 0.0, 0.0, 2.0, 0.0],
            [1.0, 0.0, 1.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 5.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0, 1.0, 3.0],
            [2.0, 0.0, 0.0, 1.0, 6.0, 1.0],
            [0.0, 0.0, 0.0, 3.0, 1.0, 7.0],
        ];
        let x = [1.0, -2.0, 0.5, 3.0, -1.0, 0.25];
        let mut a = [[0.0; 7]; 6];
        for i in 0..6 {
            a[i][..6].copy_from_slice(&m[i]);
            a[i][6] = (0..6).map(|j| m[i][j] * x[j]).sum();
        }
        let y = solve6(a).unwrap();
        for k in 0..6 {
            assert!((y[k] - x[k]).abs() < 1e-12, "{y:?}");
        }
        assert!(solve6([[0.0; 7]; 6]).is_none());
    }

    /// On a linear least-squares problem the undamped limit is one Gauss-Newton step to the
    /// minimiser.
    #[test]
    fn damped_step_solves_linear_least_squares() {
        let jac: Jacobian =
            std::array::from_fn(|i| std::array::from_fn(|k| if i == k { 2.0 } else { 0.1 }));
        let r = [1.0; RESIDUALS];
        let lm = Damping {
            lambda: 1e-12,
            ..Damping::default()
        };
        let dx = lm.step(&jac, &r).unwrap();
        // The normal equations hold at r + J dx.
        let res: Vec<f64> = (0..RESIDUALS)
            .map(|i| r[i] + (0..6).map(|k| jac[i][k] * dx[k]).sum::<f64>())
            .collect();
        for k in 0..6 {
            let g: f64 = (0..RESIDUALS).map(|i| jac[i][k] * res[i]).sum();
            assert!(g.abs() < 1e-9, "{g}");
        }
    }
}
