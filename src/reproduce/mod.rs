//! The experiments of Degrave et al., "A Differentiable Physics Engine for Deep Learning in
//! Robotics" (2016/2019), run side by side with every method on the same simulator: gradient
//! descent with backdrive's analytic gradients (Adam), CMA-ES ([`crate::learn::cmaes`], a whole
//! population as the instances of one rollout) and gradient descent with central
//! finite-difference gradients (two rollouts per parameter, batched as instances).
//!
//! One budget accounting for all methods: model evaluations (rollouts of one robot over the
//! whole horizon, forward or forward and backward) and wall-clock time.

pub mod table1;

pub mod ant;
pub mod ball;
pub mod policy;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::engine::gpu::Gpu;
use crate::error::{Error, Result};

pub use ball::BallThrow;

/// Options shared by the experiments.
#[derive(Clone, Debug)]
pub struct Options {
    /// Most model evaluations per method (`None`: the experiment's default).
    pub budget: Option<u64>,
    /// Seed of CMA-ES and of policy initialisation.
    pub seed: u64,
    /// A CI-sized variant (small budget, shorter horizons where stated).
    pub quick: bool,
    /// Show progress bars on stderr.
    pub progress: bool,
    /// Stop each method after this many seconds of wall time (checked between iterations).
    pub time_limit: Option<f64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            budget: None,
            seed: 1,
            quick: false,
            progress: false,
            time_limit: None,
        }
    }
}

/// One method's row of a result table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MethodResult {
    /// Method name.
    pub method: String,
    /// "paper" (the published figure), "measured", or "not run".
    pub source: String,
    /// Iterations (updates or generations) until the threshold was first met; `None`: not
    /// reached (or not run).
    pub iterations_to_threshold: Option<u64>,
    /// Model evaluations (rollouts) until the threshold was first met.
    pub evaluations_to_threshold: Option<u64>,
    /// Iterations run in total.
    pub iterations: u64,
    /// Model evaluations in total.
    pub evaluations: u64,
    /// Wall time in seconds (to the threshold when reached, else of the whole run).
    pub wall_seconds: Option<f64>,
    /// The experiment's metric at the end (error, distance or speed; see
    /// [`ExperimentResult::metric`]).
    pub final_value: Option<f64>,
    /// The loss at the start and at the end (measured runs).
    pub loss_first: Option<f64>,
    /// See `loss_first`.
    pub loss_last: Option<f64>,
    /// Free text: settings, reasons for not running.
    pub note: String,
    /// (evaluations, loss) along the run.
    pub history: Vec<(u64, f64)>,
}

impl MethodResult {
    /// Records the loss after the evaluations counted so far.
    pub fn record_loss(&mut self, loss: f64) {
        self.loss_first.get_or_insert(loss);
        self.loss_last = Some(loss);
        self.history.push((self.evaluations, loss));
    }

    /// Records that the threshold was met after `iterations` and `evaluations`, and the wall
    /// time since `started`.
    pub fn reach(&mut self, iterations: u64, evaluations: u64, started: std::time::Instant) {
        self.iterations_to_threshold = Some(iterations);
        self.evaluations_to_threshold = Some(evaluations);
        self.wall_seconds = Some(started.elapsed().as_secs_f64());
    }

    /// Sets the wall time of the whole run unless the threshold already set it.
    pub fn finish_wall_time(&mut self, started: std::time::Instant) {
        self.wall_seconds
            .get_or_insert(started.elapsed().as_secs_f64());
    }

    /// A published figure.
    pub fn paper(
        method: &str,
        iterations: Option<u64>,
        evaluations: Option<u64>,
        wall: Option<f64>,
        note: &str,
    ) -> Self {
        MethodResult {
            method: method.into(),
            source: "paper".into(),
            iterations_to_threshold: iterations,
            evaluations_to_threshold: evaluations,
            iterations: iterations.unwrap_or(0),
            evaluations: evaluations.unwrap_or(0),
            wall_seconds: wall,
            note: note.into(),
            ..Default::default()
        }
    }

    /// A method that was not run, with the reason.
    pub fn not_run(method: &str, reason: String) -> Self {
        MethodResult {
            method: method.into(),
            source: "not run".into(),
            note: reason,
            ..Default::default()
        }
    }

    /// The factor by which the loss fell (first / last), for losses that are positive.
    pub fn loss_reduction(&self) -> Option<f64> {
        match (self.loss_first, self.loss_last) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        }
    }
}

/// The result of one experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExperimentResult {
    /// Experiment name.
    pub name: String,
    /// What is optimised.
    pub description: String,
    /// The threshold, in words.
    pub threshold: String,
    /// What `final_value` measures.
    pub metric: String,
    /// Optimised parameters.
    pub parameters: usize,
    /// Whether this was the `--quick` variant.
    pub quick: bool,
    /// Budget of model evaluations per method.
    pub budget: u64,
    /// Wall-time limit per method, seconds.
    #[serde(default)]
    pub time_limit: Option<f64>,
    /// The GPU adapter.
    pub adapter: String,
    /// Rows: the paper first, then the measured methods.
    pub methods: Vec<MethodResult>,
}

/// Names of the experiments.
pub fn names() -> Vec<&'static str> {
    vec![
        "ball-throw",
        "arm-reach",
        "arm-reach-random",
        "quadruped",
        "cartpole",
        "ant",
    ]
}

/// Runs one experiment by name.
pub fn run(gpu: Arc<Gpu>, name: &str, options: &Options) -> Result<ExperimentResult> {
    match name {
        "ball-throw" => ball::run(gpu, options),
        "arm-reach" => policy::arm_reach(gpu, options),
        "arm-reach-random" => policy::arm_reach_random(gpu, options),
        "quadruped" => policy::quadruped(gpu, options),
        "cartpole" => policy::cartpole(gpu, options),
        "ant" => ant::ant(gpu, options),
        other => Err(Error::InvalidInput(format!(
            "unknown experiment '{other}': expected one of {} or all",
            names().join(", ")
        ))),
    }
}

fn opt_u64(v: Option<u64>) -> String {
    v.map(|v| v.to_string())
        .unwrap_or_else(|| "not reached".into())
}

fn cells(r: &MethodResult) -> [String; 6] {
    if r.source == "not run" {
        return [
            r.method.clone(),
            "not run".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            r.note.clone(),
        ];
    }
    let (its, evals) = if r.source == "paper" {
        (
            r.iterations_to_threshold
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".into()),
            r.evaluations_to_threshold
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".into()),
        )
    } else if r.iterations_to_threshold.is_some() {
        (
            opt_u64(r.iterations_to_threshold),
            opt_u64(r.evaluations_to_threshold),
        )
    } else {
        (
            format!("not reached in {}", r.iterations),
            format!("not reached in {}", r.evaluations),
        )
    };
    [
        r.method.clone(),
        its,
        evals,
        r.wall_seconds
            .map(|s| format!("{s:.1} s"))
            .unwrap_or_else(|| "-".into()),
        r.final_value
            .map(|v| format!("{v:.4}"))
            .unwrap_or_else(|| "-".into()),
        r.note.clone(),
    ]
}

const HEADERS: [&str; 6] = [
    "method",
    "iterations to threshold",
    "evaluations to threshold",
    "wall time",
    "final",
    "notes",
];

fn limit_text(limit: Option<f64>) -> String {
    limit
        .map(|s| format!(" or {s:.0} s of wall time"))
        .unwrap_or_default()
}

/// Whether a method started at `started` has used up the time limit.
fn out_of_time(options: &Options, started: std::time::Instant) -> bool {
    options
        .time_limit
        .is_some_and(|l| started.elapsed().as_secs_f64() >= l)
}

/// A plain-text table for the terminal.
pub fn text_table(r: &ExperimentResult) -> String {
    let rows: Vec<[String; 6]> = r.methods.iter().map(cells).collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row.iter()).take(5) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = format!(
        "{}: {} ({} parameters{})\nthreshold: {}; final = {}; budget {} evaluations{} per method; adapter: {}\n",
        r.name,
        r.description,
        r.parameters,
        if r.quick { ", quick variant" } else { "" },
        r.threshold,
        r.metric,
        r.budget,
        limit_text(r.time_limit),
        r.adapter
    );
    let line = |cols: &[String]| {
        let mut s = String::new();
        for (k, c) in cols.iter().enumerate() {
            if k < 5 {
                s.push_str(&format!("{c:<w$}  ", w = widths[k]));
            } else {
                s.push_str(c);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    out.push_str(&line(&HEADERS.map(String::from)));
    for row in &rows {
        out.push_str(&line(row));
    }
    out
}

/// A Markdown section with the table of every experiment.
pub fn markdown(results: &[ExperimentResult]) -> String {
    let mut out = String::new();
    for r in results {
        out.push_str(&format!(
            "### {}{}\n\n{} ({} parameters). Threshold: {}. Final: {}. Budget: {} model evaluations{} per method. Adapter: {}.\n\n",
            r.name,
            if r.quick { " (quick)" } else { "" },
            r.description,
            r.parameters,
            r.threshold,
            r.metric,
            r.budget,
            limit_text(r.time_limit),
            r.adapter
        ));
        out.push_str(&format!("| {} |\n", HEADERS.join(" | ")));
        out.push_str(&format!("|{}\n", "---|".repeat(HEADERS.len())));
        for m in &r.methods {
            let c = cells(m).map(|s| s.replace('|', "\\|"));
            out.push_str(&format!("| {} |\n", c.join(" | ")));
        }
        out.push('\n');
    }
    out
}

/// A progress bar on stderr in the style of every command ([`crate::io::progress::bar`]), or a
/// hidden one.
fn progress_bar(show: bool, len: u64, prefix: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    crate::io::progress::bar(len, "evals", &format!("{prefix:>28}"))
}

/// Adam on the CPU in f64 (the paper's ball-throw settings: lr 1, beta1 = beta2 = 0.5).
#[derive(Clone, Debug)]
pub struct Adam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
}

impl Adam {
    /// Adam over `n` parameters.
    pub fn new(n: usize, lr: f64, beta1: f64, beta2: f64) -> Self {
        Adam {
            lr,
            beta1,
            beta2,
            eps: 1e-8,
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    /// Changes the learning rate (for a schedule).
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// One update of `x` with gradient `g`.
    pub fn step(&mut self, x: &mut [f64], g: &[f64]) {
        self.t += 1;
        let c1 = 1.0 - self.beta1.powi(self.t);
        let c2 = 1.0 - self.beta2.powi(self.t);
        for i in 0..x.len() {
            self.m[i] = self.beta1 * self.m[i] + (1.0 - self.beta1) * g[i];
            self.v[i] = self.beta2 * self.v[i] + (1.0 - self.beta2) * g[i] * g[i];
            x[i] -= self.lr * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + self.eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_minimises_a_quadratic() {
        let mut x = vec![3.0, -2.0];
        let mut adam = Adam::new(2, 0.1, 0.9, 0.999);
        for _ in 0..500 {
            let g: Vec<f64> = x.iter().map(|v| 2.0 * v).collect();
            adam.step(&mut x, &g);
        }
        assert!(x.iter().all(|v| v.abs() < 1e-2), "{x:?}");
    }

    #[test]
    fn tables_show_every_row() {
        let r = ExperimentResult {
            name: "x".into(),
            description: "d".into(),
            threshold: "t".into(),
            metric: "m".into(),
            parameters: 6,
            quick: true,
            budget: 10,
            time_limit: None,
            adapter: "a".into(),
            methods: vec![
                MethodResult::paper("paper", Some(88), None, Some(16.3), ""),
                MethodResult::not_run("fd", "needs 2P | rollouts".into()),
            ],
        };
        let md = markdown(std::slice::from_ref(&r));
        assert!(md.contains("| paper | 88 | - | 16.3 s |"), "{md}");
        assert!(md.contains("needs 2P \\| rollouts"), "{md}");
        assert!(text_table(&r).contains("not run"));
    }
}
