//! The policy experiments (arm reaching, quadruped gait, cart-pole): gradient descent through
//! the simulation with [`crate::train::Trainer`]. CMA-ES and finite differences are not run on
//! these: with thousands of parameters, finite differences need 2P rollouts per update and a
//! full-covariance CMA-ES a P x P matrix; the rows say so with the numbers.

use std::sync::Arc;
use std::time::Instant;

use crate::error::Result;
use crate::gpu::Gpu;
use crate::layout::BODY_STATE_LEN;
use crate::tasks::{self, Task};
use crate::train::{TrainOptions, Trainer};

use super::{ExperimentResult, MethodResult, Options, out_of_time, progress_bar};

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

fn crate_thousands(x: u64) -> String {
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

/// What a policy experiment reports after each update.
enum Metric {
    /// Loss below a value (losses as given).
    LossBelow(f64),
    /// Minus the loss above a value (a speed).
    SpeedAbove(f64),
    /// No threshold.
    None,
}

/// Trains `task` with `instances` robots per update until the threshold or the budget of
/// evaluations; `value` maps the mean loss to the reported metric.
#[allow(clippy::too_many_arguments)]
fn train(
    gpu: Arc<Gpu>,
    task: Task,
    instances: usize,
    options: &Options,
    budget: u64,
    metric: Metric,
    value: fn(f64) -> f64,
    note: String,
) -> Result<(MethodResult, Trainer)> {
    let started = Instant::now();
    let mut trainer = Trainer::new(
        gpu,
        task,
        TrainOptions {
            instances,
            seed: options.seed,
            max_chunk: None,
        },
    )?;
    let bar = progress_bar(options.progress, budget, "backdrive gradient (Adam)");
    let mut r = MethodResult {
        method: "backdrive gradient (Adam)".into(),
        source: "measured".into(),
        note,
        ..Default::default()
    };
    while r.evaluations + instances as u64 <= budget && !out_of_time(options, started) {
        let s = trainer.step()?;
        let loss = f64::from(s.loss);
        r.iterations += 1;
        r.evaluations += instances as u64;
        r.loss_first.get_or_insert(loss);
        r.loss_last = Some(loss);
        r.history.push((r.evaluations, loss));
        r.final_value = Some(value(loss));
        bar.set_position(r.evaluations);
        bar.set_message(format!("loss {loss:.4}  value {:.4}", value(loss)));
        let reached = match metric {
            Metric::LossBelow(t) => loss < t,
            Metric::SpeedAbove(t) => -loss > t,
            Metric::None => false,
        };
        if reached && r.iterations_to_threshold.is_none() {
            // The loss is measured before this update: the policy of the previous update.
            r.iterations_to_threshold = Some(r.iterations - 1);
            r.evaluations_to_threshold = Some(r.evaluations);
            r.wall_seconds = Some(started.elapsed().as_secs_f64());
            break;
        }
    }
    bar.finish_and_clear();
    if r.wall_seconds.is_none() {
        r.wall_seconds = Some(started.elapsed().as_secs_f64());
    }
    Ok((r, trainer))
}

/// The paper's fixed-target reach with its 2 x 128 ReLU network (our observation: the four
/// joint angles and the target, since no distance sensor exists), batch 1, Adam 1e-3 with
/// clipping to 1, gradient decay 0.95, loss averaged over every step of a 2 s episode.
pub fn arm_reach(gpu: Arc<Gpu>, options: &Options) -> Result<ExperimentResult> {
    let mut task = tasks::builtin("arm-reach")?;
    task.policy.hidden = vec![128, 128];
    task.gradient_decay = 0.95;
    task.optimizer = crate::optim::OptimizerConfig::adam(1e-3);
    task.randomization = Default::default();
    if options.quick {
        task.horizon = 100;
        task.loss.terms[0].weight = 1.0 / task.horizon as f32;
    }
    let p = crate::policy::PolicyLayout::new(&task.policy, &task.model)?.n_params;
    let budget = options
        .budget
        .unwrap_or(if options.quick { 8 } else { 150 });
    let target = match &task.loss.terms[0].quantity {
        crate::loss::Quantity::PositionError { target, .. } => *target,
        _ => [0.0; 3],
    };
    let horizon = task.horizon;
    let model = task.model.clone();
    let (mut r, mut trainer) = train(
        gpu.clone(),
        task,
        1,
        options,
        budget,
        Metric::LossBelow(1e-4),
        f64::sqrt,
        format!(
            "{}-step episodes, batch 1, Adam 1e-3, alpha 0.95; threshold on the episode's RMS distance",
            horizon
        ),
    )?;
    // The final distance of the trained policy (one more rollout, not counted).
    let frames = trainer.record(horizon)?;
    if let Some(last) = frames.last() {
        let b = model.body_index("forearm").unwrap_or(0) + 1;
        let s = &last[b * BODY_STATE_LEN..b * BODY_STATE_LEN + 3];
        let d = s
            .iter()
            .zip(target)
            .map(|(a, t)| f64::from(a - t).powi(2))
            .sum::<f64>()
            .sqrt();
        r.note = format!("{}; final distance {:.4} m", r.note, d);
    }
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
        threshold: "RMS distance over the episode < 1 cm".into(),
        metric: "RMS distance over the last episode, m".into(),
        parameters: p,
        quick: options.quick,
        budget,
        time_limit: options.time_limit,
        adapter: gpu.describe(),
        methods,
    })
}

/// The gait task (`tasks::builtin("quadruped")`: 1.5 Hz clock plus proprioception, 2 x 128
/// ReLU with skip, 2 s episodes), batch 1 as in the paper.
pub fn quadruped(gpu: Arc<Gpu>, options: &Options) -> Result<ExperimentResult> {
    let mut task = tasks::builtin("quadruped")?;
    task.randomization = Default::default();
    if options.quick {
        task.horizon = 50;
        task.loss.terms[0].quantity = crate::loss::Quantity::Velocity {
            direction: [-1.0 / task.horizon as f32, 0.0, 0.0],
        };
    }
    let p = crate::policy::PolicyLayout::new(&task.policy, &task.model)?.n_params;
    let budget = options
        .budget
        .unwrap_or(if options.quick { 4 } else { 500 });
    let horizon = task.horizon;
    let (r, _) = train(
        gpu.clone(),
        task,
        1,
        options,
        budget,
        Metric::SpeedAbove(1.17),
        |l| -l,
        format!("{horizon}-step episodes (paper: 1000), batch 1, Adam 1e-3, alpha 0.95"),
    )?;
    let mut methods = vec![MethodResult::paper(
        "paper: gradient (BPTT, Adam)",
        None,
        Some(500),
        Some(3600.0),
        "1.17 m/s after 500 evaluations (about 1 h on CPU), 17,952 parameters",
    )];
    methods.push(r);
    methods.extend(baselines_not_run(p));
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

/// The cart-pole balance task (`tasks::builtin("cartpole-balance")`); swing-up is not built.
pub fn cartpole(gpu: Arc<Gpu>, options: &Options) -> Result<ExperimentResult> {
    let task = tasks::builtin("cartpole-balance")?;
    let p = crate::policy::PolicyLayout::new(&task.policy, &task.model)?.n_params;
    let instances = task.instances;
    let budget = options.budget.unwrap_or(if options.quick {
        8 * instances as u64
    } else {
        60 * instances as u64
    });
    let (r, _) = train(
        gpu.clone(),
        task,
        instances,
        options,
        budget,
        Metric::None,
        |l| l,
        format!("cartpole-balance (not swing-up), batch {instances}; no threshold: loss only"),
    )?;
    let mut methods = vec![MethodResult::paper(
        "paper: gradient (camera, conv net)",
        Some(2420),
        None,
        None,
        "swing-up from pixels; not comparable to this state-based balance task",
    )];
    methods.push(r);
    methods.extend(baselines_not_run(p));
    Ok(ExperimentResult {
        name: "cartpole".into(),
        description: "bring a pushed cart back to the origin without swinging the pole".into(),
        threshold: "none (balance task)".into(),
        metric: "mean loss of the last batch".into(),
        parameters: p,
        quick: options.quick,
        budget,
        time_limit: options.time_limit,
        adapter: gpu.describe(),
        methods,
    })
}
