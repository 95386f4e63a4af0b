//! The policy experiments (arm reaching with a fixed and with random targets, quadruped gait,
//! cart-pole swing-up): gradient descent through the simulation with [`crate::learn::train::Trainer`].
//! CMA-ES and finite differences run on the cart-pole (a few hundred parameters; every candidate
//! or perturbation is one rollout, charged to the same budget). On the arm and quadruped
//! networks (18,000 to 34,000 parameters) they are not run: finite differences need 2P rollouts
//! per update and a full-covariance CMA-ES a P x P matrix with an eigendecomposition per
//! generation; the rows say so with the numbers.

use std::sync::Arc;
use std::time::Instant;

use crate::engine::gpu::Gpu;
use crate::error::{Error, Result};
use crate::learn::tasks::{self, Task};
use crate::learn::train::{TrainOptions, Trainer};

use super::{Adam, ExperimentResult, MethodResult, Options, out_of_time, progress_bar};
use crate::learn::cmaes::CmaEs;

fn baselines_not_run(p: usize) -> Vec<MethodResult> {
    vec![
        MethodResult::not_run(
            "CMA-ES",
            format!(
                "not run: {p} parameters; a full covariance holds {} entries and the paper's CMA-ES did not converge on such a network",
                crate_thousands(p as u64 * p as u64)
            ),
        ),
        MethodResult::not_run(
            "finite differences (Adam)",
            format!(
                "not run: needs 2P = {} rollouts per step (P = {p})",
                crate_thousands(2 * p as u64)
            ),
        ),
    ]
}

pub(super) fn crate_thousands(x: u64) -> String {
    let digits = x.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What an experiment measures of a policy: its metric value and whether the threshold is met,
/// given the trainer (holding the policy) and the loss of its last evaluation.
type Check<'a> = &'a mut dyn FnMut(&mut Trainer, f64) -> Result<(f64, bool)>;

/// Trains with `instances` robots per update until the threshold (when `stop` is set) or the
/// budget of evaluations. `check` runs after every update; `lag` is 1 when it judges the loss
/// measured before the update (the policy of the previous update), 0 when it measures the
/// updated policy itself.
#[allow(clippy::too_many_arguments)]
pub(super) fn train(
    trainer: &mut Trainer,
    instances: usize,
    options: &Options,
    budget: u64,
    check: Check<'_>,
    lag: u64,
    stop: bool,
    note: String,
) -> Result<MethodResult> {
    let started = Instant::now();
    let bar = progress_bar(options.progress, budget, "backdrive gradient (Adam)");
    let mut r = MethodResult {
        method: "backdrive gradient (Adam)".into(),
        source: "measured".into(),
        note,
        ..Default::default()
    };
    while r.evaluations + instances as u64 <= budget && !out_of_time(options, started) {
        let s = match trainer.step() {
            Ok(s) => s,
            // A row that blows up reports how far it got instead of failing the experiment.
            Err(crate::error::Error::NonFiniteGradient(_)) => {
                r.note = format!(
                    "{}; stopped at update {}: non-finite gradient",
                    r.note,
                    r.iterations + 1
                );
                break;
            }
            Err(e) => return Err(e),
        };
        let loss = f64::from(s.loss);
        r.iterations += 1;
        r.evaluations += instances as u64;
        r.record_loss(loss);
        let (value, reached) = check(trainer, loss)?;
        r.final_value = Some(value);
        bar.set_position(r.evaluations);
        bar.set_message(format!("loss {loss:.4}  value {value:.4}"));
        if reached && r.iterations_to_threshold.is_none() {
            r.reach(
                r.iterations - lag,
                r.evaluations - lag * instances as u64,
                started,
            );
            if stop {
                break;
            }
        }
    }
    bar.finish_and_clear();
    r.finish_wall_time(started);
    Ok(r)
}

/// CMA-ES over the policy parameters: every candidate is one rollout (batch 1, the trainer's
/// batch must be 1); after each generation `check` measures the generation's best candidate.
fn cma_es(
    trainer: &mut Trainer,
    options: &Options,
    budget: u64,
    sigma: f64,
    check: Check<'_>,
) -> Result<MethodResult> {
    let started = Instant::now();
    let start: Vec<f64> = trainer.params()?.iter().map(|&v| f64::from(v)).collect();
    let mut es = CmaEs::new(&start, sigma, options.seed);
    let lambda = es.population() as u64;
    let bar = progress_bar(options.progress, budget, "CMA-ES");
    let mut r = MethodResult {
        method: "CMA-ES".into(),
        source: "measured".into(),
        note: format!(
            "(mu/mu_w, {lambda})-CMA-ES from the initial policy, sigma0 = {sigma}; one rollout per candidate"
        ),
        ..Default::default()
    };
    let to_f32 = |x: &[f64]| x.iter().map(|&v| v as f32).collect::<Vec<f32>>();
    while r.evaluations + lambda <= budget && !out_of_time(options, started) {
        let xs = es.ask();
        let mut losses = Vec::with_capacity(xs.len());
        for x in &xs {
            trainer.set_params(&to_f32(x))?;
            losses.push(f64::from(trainer.evaluate()?));
        }
        es.tell(&losses);
        r.iterations += 1;
        r.evaluations += lambda;
        let best = (0..xs.len())
            .min_by(|&a, &b| losses[a].total_cmp(&losses[b]))
            .unwrap_or(0);
        let loss = losses[best];
        r.record_loss(loss);
        trainer.set_params(&to_f32(&xs[best]))?;
        let (value, reached) = check(trainer, loss)?;
        r.final_value = Some(value);
        bar.set_position(r.evaluations);
        bar.set_message(format!("best loss {loss:.4}  value {value:.4}"));
        if reached {
            r.reach(r.iterations, r.evaluations, started);
            break;
        }
    }
    bar.finish_and_clear();
    if r.iterations == 0 {
        return Ok(MethodResult::not_run(
            "CMA-ES",
            format!("not run: one generation is {lambda} rollouts, more than the budget"),
        ));
    }
    r.finish_wall_time(started);
    Ok(r)
}

/// Gradient descent with central finite differences of the policy parameters (2P + 1 rollouts
/// per update, batch 1) and the same Adam settings as the adjoint method (`lr`, clipping to 1).
fn finite_differences(
    trainer: &mut Trainer,
    options: &Options,
    budget: u64,
    lr: f64,
    h: f32,
    check: Check<'_>,
) -> Result<MethodResult> {
    let started = Instant::now();
    let mut theta = trainer.params()?;
    let p = theta.len();
    let per_step = 2 * p as u64 + 1;
    let method = "finite differences (Adam)";
    if per_step > budget {
        return Ok(MethodResult::not_run(
            method,
            format!(
                "not run: one update needs 2P + 1 = {} rollouts (P = {p}), more than the budget of {budget}",
                crate_thousands(per_step)
            ),
        ));
    }
    let bar = progress_bar(options.progress, budget, method);
    let mut adam = Adam::new(p, lr, 0.9, 0.999);
    let mut r = MethodResult {
        method: method.into(),
        source: "measured".into(),
        note: format!(
            "central differences, h = {h}, {per_step} rollouts per update; Adam {lr}, clipping at 1"
        ),
        ..Default::default()
    };
    while r.evaluations + per_step <= budget && !out_of_time(options, started) {
        trainer.set_params(&theta)?;
        let loss = f64::from(trainer.evaluate()?);
        let mut g = vec![0.0f64; p];
        let mut x = theta.clone();
        for k in 0..p {
            x[k] = theta[k] + h;
            trainer.set_params(&x)?;
            let plus = f64::from(trainer.evaluate()?);
            x[k] = theta[k] - h;
            trainer.set_params(&x)?;
            let minus = f64::from(trainer.evaluate()?);
            x[k] = theta[k];
            g[k] = (plus - minus) / (2.0 * f64::from(h));
        }
        let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm > 1.0 {
            g.iter_mut().for_each(|v| *v /= norm);
        }
        let mut t: Vec<f64> = theta.iter().map(|&v| f64::from(v)).collect();
        adam.step(&mut t, &g);
        theta = t.iter().map(|&v| v as f32).collect();
        trainer.set_params(&theta)?;
        r.iterations += 1;
        r.evaluations += per_step;
        r.record_loss(loss);
        let (value, reached) = check(trainer, loss)?;
        r.final_value = Some(value);
        bar.set_position(r.evaluations);
        if reached {
            r.reach(r.iterations, r.evaluations, started);
            break;
        }
    }
    bar.finish_and_clear();
    r.finish_wall_time(started);
    Ok(r)
}

pub(super) fn new_trainer(
    gpu: Arc<Gpu>,
    task: Task,
    instances: usize,
    seed: u64,
) -> Result<Trainer> {
    Trainer::new(
        gpu,
        task,
        TrainOptions {
            instances,
            seed,
            max_chunk: None,
        },
    )
}

/// The paper's fixed-target reach with its 2 x 128 ReLU network (our observation: the four
/// joint angles and the target, since no distance sensor exists), batch 1, Adam 1e-3 with
/// clipping to 1, gradient decay 0.95, loss averaged over every step of an 8 s episode.
/// Threshold: the forearm within 1 cm of the target at the end of the episode, measured on
/// the rollout of each update (so on the policy before that update).
pub fn arm_reach(gpu: Arc<Gpu>, options: &Options) -> Result<ExperimentResult> {
    let mut task = tasks::builtin("arm-reach")?;
    task.policy.hidden = vec![128, 128];
    task.gradient_decay = 0.95;
    task.optimizer = crate::learn::optim::OptimizerConfig::adam(1e-3);
    task.randomization = Default::default();
    // The paper's 8 s episodes (quick: 1 s).
    task.horizon = if options.quick { 100 } else { 800 };
    task.loss.terms[0].weight = 1.0 / task.horizon as f32;
    let p = crate::learn::policy::PolicyLayout::new(&task.policy, &task.model)?.n_params;
    let budget = options
        .budget
        .unwrap_or(if options.quick { 8 } else { 150 });
    let target = match &task.loss.terms[0].quantity {
        crate::grad::loss::Quantity::PositionError { target, .. } => *target,
        _ => [0.0; 3],
    };
    let horizon = task.horizon;
    let mut trainer = new_trainer(gpu.clone(), task, 1, options.seed)?;
    trainer.keep_final_state(true);
    let mut under_4cm: Option<u64> = None;
    let mut updates = 0u64;
    let mut check = |t: &mut Trainer, _: f64| -> Result<(f64, bool)> {
        updates += 1;
        let d = mean_final_distance(t, target);
        if d < 0.04 && under_4cm.is_none() {
            under_4cm = Some(updates - 1);
        }
        Ok((d, d < 0.01))
    };
    let mut r = train(
        &mut trainer,
        1,
        options,
        budget,
        &mut check,
        1,
        true,
        format!(
            "{horizon}-step episodes, batch 1, Adam 1e-3, clipping at 1, alpha 0.95; loss: squared distance averaged over every step"
        ),
    )?;
    r.note = format!(
        "{}; < 4 cm after {} evaluations; RMS distance over the last episode {:.4} m",
        r.note,
        under_4cm
            .map(|u| u.to_string())
            .unwrap_or_else(|| "- (not reached)".into()),
        r.loss_last.unwrap_or(f64::NAN).sqrt()
    );
    let mut methods = vec![MethodResult::paper(
        "paper: gradient (BPTT, Adam)",
        Some(150),
        Some(150),
        None,
        "17,284 parameters, 8 s episodes; < 4 cm after 100 and < 1 cm after 150 evaluations",
    )];
    methods.push(MethodResult::paper(
        "paper: CMA-ES",
        None,
        None,
        None,
        "did not converge in 60,000 evaluations (a week)",
    ));
    methods.push(r);
    methods.extend(baselines_not_run(p));
    Ok(ExperimentResult {
        name: "arm-reach".into(),
        description: "4-DOF arm, forearm centre to a fixed target, 2 x 128 ReLU MLP".into(),
        threshold: "forearm centre within 1 cm of the target at the end of the episode".into(),
        metric: "final distance of the last evaluated policy, m".into(),
        parameters: p,
        quick: options.quick,
        budget,
        time_limit: options.time_limit,
        adapter: gpu.describe(),
        methods,
    })
}

/// The gait task (`tasks::builtin("quadruped")`: 1.5 Hz clock plus proprioception, 2 x 128
/// ReLU with skip, 2 s episodes), batch 1 as in the paper, and beside it 64 randomised robots
/// per update (quick: 4) for as many updates.
pub fn quadruped(gpu: Arc<Gpu>, options: &Options) -> Result<ExperimentResult> {
    let mut task = tasks::builtin("quadruped")?;
    let randomization = task.randomization;
    task.randomization = Default::default();
    if options.quick {
        task.horizon = 50;
        task.loss.terms[0].quantity = crate::grad::loss::Quantity::Velocity {
            direction: [-1.0 / task.horizon as f32, 0.0, 0.0],
        };
    }
    let p = crate::learn::policy::PolicyLayout::new(&task.policy, &task.model)?.n_params;
    let budget = options
        .budget
        .unwrap_or(if options.quick { 4 } else { 500 });
    let horizon = task.horizon;
    let mut trainer = new_trainer(gpu.clone(), task.clone(), 1, options.seed)?;
    let r = train(
        &mut trainer,
        1,
        options,
        budget,
        &mut |_, loss| Ok((-loss, -loss > 1.17)),
        1,
        true,
        format!("{horizon}-step episodes (paper: 1000), batch 1, Adam 1e-3, alpha 0.95"),
    )?;
    // Beside it, a batch of randomised robots (the task's masses within 10%, friction 0.7 to
    // 1.2), for as many updates as the batch-1 run's budget allows it.
    let robots = if options.quick { 4 } else { 64 };
    let task_model = task.model.clone();
    let mut batched = task;
    batched.randomization = randomization;
    let mut trainer = new_trainer(gpu.clone(), batched, robots, options.seed)?;
    let mut rb = train(
        &mut trainer,
        robots,
        options,
        budget * robots as u64,
        &mut |_, loss| Ok((-loss, -loss > 1.17)),
        1,
        true,
        format!(
            "{horizon}-step episodes, {robots} randomised robots per update (masses within 10%, friction 0.7 to 1.2), at most {budget} updates; speed averaged over the batch"
        ),
    )?;
    rb.method = format!("backdrive gradient (Adam), batch {robots}");
    let gaits = open_loop_gait_search(gpu.clone(), &task_model, horizon, budget, 1.17, options)?;
    let mut methods = vec![MethodResult::paper(
        "paper: gradient (BPTT, Adam)",
        None,
        Some(500),
        Some(3600.0),
        "1.17 m/s after 500 evaluations (about 1 h on CPU), 17,952 parameters",
    )];
    methods.push(r);
    methods.push(rb);
    methods.extend(baselines_not_run(p));
    methods.push(gaits);
    let (shac, shac_horizon, robot_steps) = shac_run(
        gpu.clone(),
        options,
        budget,
        tasks::builtin("quadruped-run")?,
        &mut |t| t.evaluate(1),
        "average forward speed of the trained policy over one fresh episode of the batch",
    )?;
    let gait_budget = (robot_steps / u64::from(shac_horizon)).max(2);
    let mut long_gaits = open_loop_gait_search(
        gpu.clone(),
        &task_model,
        shac_horizon,
        gait_budget,
        1.17,
        options,
    )?;
    long_gaits.method = format!(
        "{} over {} steps, as many robot-steps as the actor-critic",
        long_gaits.method, shac_horizon
    );
    long_gaits.note = format!(
        "{}; {} rollouts of {shac_horizon} steps = {} robot-steps",
        long_gaits.note,
        long_gaits.evaluations,
        crate_thousands(long_gaits.evaluations * u64::from(shac_horizon))
    );
    methods.push(shac);
    methods.push(long_gaits);
    Ok(ExperimentResult {
        name: "quadruped".into(),
        description: "gait: maximise the torso's average forward speed".into(),
        threshold: "average forward speed > 1.17 m/s".into(),
        metric: "average forward speed of the last episode, m/s".into(),
        parameters: p,
        quick: options.quick,
        budget,
        time_limit: options.time_limit,
        adapter: gpu.describe(),
        methods,
    })
}

/// What the actor-critic's row reports of its trained policy.
pub(super) type ShacValue<'a> =
    &'a mut dyn FnMut(&mut crate::learn::shac::ShacTrainer) -> Result<f64>;

/// The short-horizon actor-critic on `task` (for `quadruped-run`: 10 s episodes, 64 robots,
/// windows of 25 steps; quick: episodes of two windows, 4 robots) for `budget` windows or the
/// time limit. Its value is what `value` measures of the trained policy (not charged), which
/// `value_note` says in words. Returns the row, the episode length and the robot-steps of
/// training, which the open-loop row beside it gets as its budget.
pub(super) fn shac_run(
    gpu: Arc<Gpu>,
    options: &Options,
    budget: u64,
    mut task: Task,
    value: ShacValue<'_>,
    value_note: &str,
) -> Result<(MethodResult, u32, u64)> {
    use crate::learn::shac::ShacTrainer;
    let robots = if options.quick { 4 } else { task.instances };
    let crate::learn::algorithm::Algorithm::Shac(settings) = &task.algorithm else {
        return Err(crate::error::Error::InvalidInput(format!(
            "the {} task does not use the actor-critic",
            task.name
        )));
    };
    if options.quick {
        task.horizon = 2 * settings.window;
    }
    let name = task.name.clone();
    let horizon = task.horizon;
    let started = Instant::now();
    let mut trainer = ShacTrainer::new(
        gpu,
        task,
        TrainOptions {
            instances: robots,
            seed: options.seed,
            max_chunk: None,
        },
    )?;
    let window = trainer.settings().window;
    let bar = progress_bar(options.progress, budget, "short-horizon actor-critic");
    let mut r = MethodResult {
        method: format!("short-horizon actor-critic ({name}), batch {robots}"),
        source: "measured".into(),
        ..Default::default()
    };
    while r.iterations < budget && !out_of_time(options, started) {
        let s = match trainer.step() {
            Ok(s) => s,
            // As in the other rows: report how far it got instead of failing the experiment.
            Err(crate::error::Error::NonFiniteGradient(_)) => {
                r.note = format!(
                    "stopped at window {}: non-finite gradient; ",
                    r.iterations + 1
                );
                break;
            }
            Err(e) => return Err(e),
        };
        r.iterations += 1;
        r.evaluations = trainer.robot_steps() / u64::from(horizon);
        r.record_loss(f64::from(s.loss));
        bar.set_position(r.iterations);
    }
    bar.finish_and_clear();
    let robot_steps = trainer.robot_steps();
    r.final_value = Some(value(&mut trainer)?);
    r.finish_wall_time(started);
    r.note = format!(
        "{}{} windows of {window} steps over {robots} robots = {} robot-steps ({} rollouts of {horizon} steps); value: {value_note} ({horizon} steps, not charged); loss: the actor's window loss",
        r.note,
        r.iterations,
        crate_thousands(robot_steps),
        r.evaluations
    );
    Ok((r, horizon, robot_steps))
}

/// CMA-ES over open-loop 1.5 Hz gaits (three numbers per servo, [`crate::learn::gait`]) from standing
/// still, with the same budget and horizon as the policy: what the robot can do without a
/// policy or gradients at all.
pub(super) fn open_loop_gait_search(
    gpu: Arc<Gpu>,
    model: &crate::model::Model,
    horizon: u32,
    budget: u64,
    target_speed: f64,
    options: &Options,
) -> Result<MethodResult> {
    use crate::learn::gait::{GaitEvaluator, SearchOptions, search};
    let seconds = f64::from(horizon) * f64::from(model.settings.dt);
    let start = vec![0.0; crate::learn::gait::PARAMS_PER_ACTUATOR * model.actuators.len()];
    let population = CmaEs::new(&start, 0.2, options.seed)
        .population()
        .min(budget as usize)
        .max(2);
    let mut evaluator = GaitEvaluator::new(gpu, model, "torso", 1.5, seconds, population)?;
    let bar = progress_bar(options.progress, budget, "CMA-ES, open-loop gait");
    let search_options = SearchOptions {
        budget,
        population: Some(population),
        sigma: 0.2,
        seed: options.seed,
        time_limit: options.time_limit,
        target_speed: Some(target_speed),
    };
    let found = search(&mut evaluator, &start, &search_options, &mut |g| {
        bar.set_position(g.evaluations);
        bar.set_message(format!("best {:.3} m/s", g.best_speed));
    })?;
    bar.finish_and_clear();
    let mut r = MethodResult {
        method: format!("CMA-ES, open-loop gait ({} parameters)", start.len()),
        source: "measured".into(),
        iterations: found.generations,
        evaluations: found.evaluations,
        iterations_to_threshold: found.evaluations_to_target.map(|_| found.generations),
        evaluations_to_threshold: found.evaluations_to_target,
        wall_seconds: Some(found.wall_seconds),
        final_value: found.best_speed.is_finite().then_some(found.best_speed),
        note: format!(
            "no policy: per servo an offset and 1.5 Hz sine and cosine amplitudes, from standing still, sigma0 = 0.2, {population} gaits per generation, {seconds:.1} s rollouts; value: the fastest gait found"
        ),
        ..Default::default()
    };
    for &(evaluations, speed) in &found.history {
        r.evaluations = evaluations;
        r.record_loss(-speed);
    }
    r.evaluations = found.evaluations;
    Ok(r)
}

/// Largest deviation of the pole from upright (rad) allowed over the last second of a
/// `cartpole` episode for a swing-up to count.
pub const SWINGUP_TOLERANCE: f64 = 0.2;

/// The pole's largest deviation from upright (rad, 0 upright, pi hanging) over the last second
/// of an episode of the trainer's current policy, and the cart's position on the rail at the
/// end (instance 0; states every 5 steps). One forward rollout, not counted as an evaluation.
pub fn swingup_deviation(trainer: &mut Trainer) -> Result<(f64, f64)> {
    let model = &trainer.task().model;
    let body = |name: &str| {
        model.body_index(name).ok_or_else(|| {
            Error::InvalidInput(format!("model '{}' has no body '{name}'", model.name))
        })
    };
    let (cart, pole) = (body("cart")?, body("pole")?);
    let every = 5;
    let frames_per_second = (1.0 / (model.settings.dt * every as f32)).round() as usize;
    let frames = trainer.record(every)?;
    let deviation = frames
        .iter()
        .rev()
        .take(frames_per_second + 1)
        .map(|f| {
            let (c, p) = (f[cart].position, f[pole].position);
            f64::from(p[0] - c[0]).atan2(f64::from(p[2] - c[2])).abs()
        })
        .fold(0.0, f64::max);
    let cart_x = frames
        .last()
        .map(|f| f64::from(f[cart].position[0]))
        .unwrap_or(f64::NAN);
    Ok((deviation, cart_x))
}

/// Cart-pole swing-up from the state (`tasks::builtin("cartpole-swingup")`): gradient descent,
/// CMA-ES and finite differences on one budget of rollouts (batch 1). Success: the pole within
/// [`SWINGUP_TOLERANCE`] of upright for the whole last second of the episode.
pub fn cartpole(gpu: Arc<Gpu>, options: &Options) -> Result<ExperimentResult> {
    let mut task = tasks::builtin("cartpole-swingup")?;
    if options.quick {
        // 1.5 s episodes and a larger step, so that 20 updates show learning.
        task.horizon = 150;
        for t in &mut task.loss.terms {
            t.weight *= 300.0 / 150.0;
        }
        task.optimizer.learning_rate = 1e-2;
    }
    let p = crate::learn::policy::PolicyLayout::new(&task.policy, &task.model)?.n_params;
    let budget = options
        .budget
        .unwrap_or(if options.quick { 20 } else { 400 });
    let horizon = task.horizon;
    let lr32 = task.optimizer.learning_rate;
    // The f32 rate in f64, rounded so that notes print 0.001 rather than 0.0010000000474974513.
    let lr = (f64::from(lr32) * 1e9).round() / 1e9;
    let alpha = task.gradient_decay;
    let cart_x = std::cell::Cell::new(f64::NAN);
    let mut check = |t: &mut Trainer, _loss: f64| -> Result<(f64, bool)> {
        let (d, x) = swingup_deviation(t)?;
        cart_x.set(x);
        Ok((d, d < SWINGUP_TOLERANCE))
    };
    let cart_note = |r: &mut MethodResult, x: f64| {
        if r.source == "measured" {
            r.note = format!(
                "{}; cart at x = {x:.2} m at the end of the last measured episode",
                r.note
            );
        }
    };
    let mut trainer = new_trainer(gpu.clone(), task.clone(), 1, options.seed)?;
    let gradient = train(
        &mut trainer,
        1,
        options,
        budget,
        &mut check,
        0,
        true,
        format!(
            "{horizon}-step episodes, batch 1, Adam {lr}, clipping at 1, alpha {alpha}; a recorded rollout after each update measures the pole"
        ),
    )?;
    let mut gradient = gradient;
    cart_note(&mut gradient, cart_x.get());
    // CMA-ES and finite differences on a smaller network (1 x 32 tanh): a full covariance of
    // the gradient's network would be P x P with an eigendecomposition per generation.
    let mut small = task.clone();
    small.policy.hidden = vec![32];
    small.policy.activation = crate::learn::policy::Activation::Tanh;
    let p_small = crate::learn::policy::PolicyLayout::new(&small.policy, &small.model)?.n_params;
    let mut trainer = new_trainer(gpu.clone(), small.clone(), 1, options.seed)?;
    let mut cma = cma_es(&mut trainer, options, budget, 0.5, &mut check)?;
    cma.note = format!("{}; 1 x 32 tanh network ({p_small} parameters)", cma.note);
    cart_note(&mut cma, cart_x.get());
    let mut trainer = new_trainer(gpu.clone(), small, 1, options.seed)?;
    let mut fd = finite_differences(&mut trainer, options, budget, lr, 1e-2, &mut check)?;
    fd.note = format!("{}; 1 x 32 tanh network ({p_small} parameters)", fd.note);
    cart_note(&mut fd, cart_x.get());
    let methods = vec![
        MethodResult::paper(
            "paper: gradient (camera, conv net)",
            Some(2420),
            None,
            None,
            "swing-up from pixels with a convolutional network; ours is from the state",
        ),
        gradient,
        cma,
        fd,
    ];
    Ok(ExperimentResult {
        name: "cartpole".into(),
        description: format!(
            "swing the pole up from hanging (a {} rad/s nudge) and hold it, from the state; 2 x 64 ReLU MLP",
            tasks::SWINGUP_NUDGE
        ),
        threshold: format!(
            "pole within {SWINGUP_TOLERANCE} rad of upright over the last second of the episode"
        ),
        metric:
            "largest deviation of the pole from upright over the last second, rad (pi: hanging)"
                .into(),
        parameters: p,
        quick: options.quick,
        budget,
        time_limit: options.time_limit,
        adapter: gpu.describe(),
        methods,
    })
}

/// The forearm's mean distance to `target` at the end of the last step's episodes (the
/// trainer must keep its final states).
fn mean_final_distance(trainer: &Trainer, target: [f32; 3]) -> f64 {
    let b = trainer.task().model.body_index("forearm").unwrap_or(0);
    let last = trainer.final_body_states();
    let n = trainer.instances();
    if last.is_empty() {
        return f64::NAN;
    }
    let stride = last.len() / n;
    let mut sum = 0.0;
    for i in 0..n {
        sum += last[i * stride + b]
            .position
            .iter()
            .zip(target)
            .map(|(a, t)| f64::from(a - t).powi(2))
            .sum::<f64>()
            .sqrt();
    }
    sum / n as f64
}

/// The paper's reach with random targets (`tasks::builtin("arm-reach-random")`: 3 inputs,
/// 3 x 128 ReLU instead of the paper's 3 x 1024, 2 s episodes instead of 8 s), batch 128
/// (`--quick`: 8 robots, 1 s episodes). Threshold: the forearm's final distance to the
/// target, averaged over the batch, < 10 cm; the first update under 5 cm is in the notes.
pub fn arm_reach_random(gpu: Arc<Gpu>, options: &Options) -> Result<ExperimentResult> {
    let mut task = tasks::builtin("arm-reach-random")?;
    let mut instances = task.instances;
    if options.quick {
        instances = 8;
        task.horizon = 100;
        task.loss.terms[0].weight = 1.0 / task.horizon as f32;
    }
    let p = crate::learn::policy::PolicyLayout::new(&task.policy, &task.model)?.n_params;
    let budget = options.budget.unwrap_or(if options.quick {
        10 * instances as u64
    } else {
        600 * instances as u64
    });
    let horizon = task.horizon;
    let mut under_5cm: Option<u64> = None;
    let mut updates = 0u64;
    let mut check = |t: &mut Trainer, _: f64| -> Result<(f64, bool)> {
        updates += 1;
        let d = mean_final_distance(t, tasks::ARM_RANDOM_TARGET);
        if d < 0.05 && under_5cm.is_none() {
            under_5cm = Some(updates - 1);
        }
        Ok((d, d < 0.1))
    };
    let mut trainer = new_trainer(gpu.clone(), task, instances, options.seed)?;
    trainer.keep_final_state(true);
    let mut r = train(
        &mut trainer,
        instances,
        options,
        budget,
        &mut check,
        1,
        false,
        format!(
            "{horizon}-step episodes, batch {instances}, Adam 1e-3, clipping at 1, alpha 0.95; targets drawn anew every update"
        ),
    )?;
    r.note = format!(
        "{}; < 5 cm after {}; RMS distance over the last batch's episodes {:.4} m",
        r.note,
        under_5cm
            .map(|u| format!("{u} updates"))
            .unwrap_or_else(|| "- (not reached)".into()),
        r.loss_last.unwrap_or(f64::NAN).sqrt()
    );
    let mut methods = vec![MethodResult::paper(
        "paper: gradient (BPTT, Adam)",
        Some(576),
        Some(576 * 128),
        None,
        "3 x 1024 ReLU, batch 128, 8 s; < 10 cm after 576 updates, < 5 cm after 2563",
    )];
    methods.push(r);
    methods.extend(baselines_not_run(p));
    Ok(ExperimentResult {
        name: "arm-reach-random".into(),
        description: "4-DOF arm, forearm centre to a random target per robot, 3 x 128 ReLU MLP"
            .into(),
        threshold: "final distance to the target, averaged over the batch, < 10 cm".into(),
        metric: "mean final distance of the last batch, m".into(),
        parameters: p,
        quick: options.quick,
        budget,
        time_limit: options.time_limit,
        adapter: gpu.describe(),
        methods,
    })
}
