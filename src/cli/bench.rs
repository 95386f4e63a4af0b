//! `backdrive bench`: forward throughput in robot-steps per second.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use backdrive::Simulator;
use serde::Serialize;

use super::{mib, thousands};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Fewer steps and a shorter time budget per case (a quick smoke figure).
    #[arg(long)]
    pub quick: bool,
    /// Also write every figure as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Models to measure (names or files).
    #[arg(long, value_delimiter = ',', default_value = "quadruped,ball,arm")]
    pub models: Vec<String>,
    /// Batch sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,128,4096")]
    pub instances: Vec<usize>,
    /// Steps per case (default 1000, or 100 with --quick). A case stops early once its time
    /// budget is spent (60 s, or 10 s with --quick); it always runs at least one call of 50
    /// steps (10 with --quick).
    #[arg(long)]
    pub steps: Option<u32>,
    /// Batch sizes of the gradient measurement (forward with checkpoints, then backward).
    #[arg(long, value_delimiter = ',', default_value = "1,128")]
    pub gradient_instances: Vec<usize>,
    /// Rollout length of the gradient measurement (default 200, or 20 with --quick).
    #[arg(long)]
    pub gradient_steps: Option<u32>,
    /// Checkpoint interval of the gradient measurement (default ceil(sqrt(steps)); 1 stores
    /// every state and skips the recomputation of segments).
    #[arg(long)]
    pub checkpoint_every: Option<u32>,
}

/// One measured gradient case.
#[derive(Debug, Serialize)]
struct GradientCase {
    model: String,
    instances: usize,
    steps: u32,
    checkpoint_every: u32,
    forward_seconds: f64,
    backward_seconds: f64,
    backward_over_forward: f64,
    forward_backward_robot_steps_per_s: f64,
    device_bytes: u64,
}

/// One measured case.
#[derive(Debug, Serialize)]
struct Case {
    model: String,
    bodies: usize,
    instances: usize,
    steps: u32,
    seconds: f64,
    steps_per_s: f64,
    robot_steps_per_s: f64,
    us_per_robot_step: f64,
    device_bytes: u64,
    chunks: usize,
}

#[derive(Debug, Serialize)]
struct AdapterJson {
    name: String,
    backend: String,
    device_type: String,
    driver: String,
    driver_info: String,
}

#[derive(Debug, Serialize)]
struct Report {
    backdrive_version: &'static str,
    adapter: AdapterJson,
    quick: bool,
    warm_up_steps: u32,
    steps_per_call: u32,
    time_budget_s: u64,
    results: Vec<Case>,
    gradient_results: Vec<GradientCase>,
}

/// Steps before timing: the first dispatch includes the driver's shader compilation.
const WARM_UP: u32 = 10;

pub fn run(args: &Args) -> anyhow::Result<()> {
    let gpu = super::open_gpu()?;
    println!("adapter: {}", gpu.describe());
    let target = args
        .steps
        .unwrap_or(if args.quick { 100 } else { 1000 })
        .max(1);
    let budget = Duration::from_secs(if args.quick { 10 } else { 60 });
    // Steps per `step()` call while timing: one call is one submit and one wait for the GPU.
    let block: u32 = if args.quick { 10 } else { 50 };
    println!(
        "forward step only, zero commands; {WARM_UP} warm-up steps, then up to {target} steps \
         per case in calls of {block} (each waits for the GPU), time budget {} s per case",
        budget.as_secs()
    );
    println!();
    println!(
        "{:<12} {:>6} {:>7} {:>6} {:>9} {:>10} {:>15} {:>14} {:>12}",
        "model",
        "bodies",
        "N",
        "steps",
        "seconds",
        "steps/s",
        "robot-steps/s",
        "us/robot-step",
        "memory"
    );
    let mut results = Vec::new();
    for spec in &args.models {
        let model = super::load_model(spec)?;
        for &n in &args.instances {
            let mut sim = Simulator::new(gpu.clone(), &model, n.max(1))
                .with_context(|| format!("creating {n} instances of '{spec}'"))?;
            sim.step(WARM_UP).context("warm-up")?;
            let mut done = 0u32;
            let mut elapsed = Duration::ZERO;
            while done < target && (done == 0 || elapsed < budget) {
                let this = block.min(target - done);
                let t0 = Instant::now();
                sim.step(this).context("stepping")?;
                elapsed += t0.elapsed();
                done += this;
            }
            let seconds = elapsed.as_secs_f64().max(1e-9);
            let case = Case {
                model: spec.clone(),
                bodies: model.bodies.len(),
                instances: sim.n_instances(),
                steps: done,
                seconds,
                steps_per_s: f64::from(done) / seconds,
                robot_steps_per_s: f64::from(done) * sim.n_instances() as f64 / seconds,
                us_per_robot_step: seconds * 1e6 / (f64::from(done) * sim.n_instances() as f64),
                device_bytes: sim.device_bytes(),
                chunks: sim.n_chunks(),
            };
            println!(
                "{:<12} {:>6} {:>7} {:>6} {:>9.3} {:>10.1} {:>15} {:>14.2} {:>12}",
                case.model,
                case.bodies,
                case.instances,
                case.steps,
                case.seconds,
                case.steps_per_s,
                thousands(case.robot_steps_per_s),
                case.us_per_robot_step,
                mib(case.device_bytes)
            );
            results.push(case);
        }
    }
    let gradient_results = gradient_cases(&gpu, args)?;
    if args.models.iter().any(|m| m == "quadruped") {
        println!();
        println!(
            "paper (Degrave et al., Table 1, quadruped, no gradient, 1000 steps): 1 robot on an \
             i7-5930K CPU 943 robot-steps/s; 128 robots on a GTX 1080 7,191 robot-steps/s"
        );
    }
    if let Some(path) = &args.json {
        let report = Report {
            backdrive_version: env!("CARGO_PKG_VERSION"),
            adapter: AdapterJson {
                name: gpu.info.name.clone(),
                backend: format!("{:?}", gpu.info.backend),
                device_type: format!("{:?}", gpu.info.device_type),
                driver: gpu.info.driver.clone(),
                driver_info: gpu.info.driver_info.clone(),
            },
            quick: args.quick,
            warm_up_steps: WARM_UP,
            steps_per_call: block,
            time_budget_s: budget.as_secs(),
            results,
            gradient_results,
        };
        let text = serde_json::to_string_pretty(&report)?;
        super::output::write_atomic(path, text.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Times a checkpointed forward pass and the adjoint pass of a rollout whose loss is the
/// bodies' final x positions (distance travelled), for every model and gradient batch size.
fn gradient_cases(
    gpu: &std::sync::Arc<backdrive::gpu::Gpu>,
    args: &Args,
) -> anyhow::Result<Vec<GradientCase>> {
    use backdrive::loss::{Loss, Quantity, When};
    use backdrive::rollout::{Rollout, RolloutOptions};
    let steps = args
        .gradient_steps
        .unwrap_or(if args.quick { 20 } else { 200 })
        .max(1);
    println!();
    println!(
        "gradients: loss = final x of every body, {steps} steps, checkpoints every {} steps; \
         one untimed warm-up pass",
        args.checkpoint_every
            .map(|k| k.to_string())
            .unwrap_or_else(|| "ceil(sqrt(T))".into())
    );
    println!(
        "{:<12} {:>7} {:>6} {:>10} {:>11} {:>10} {:>22} {:>12}",
        "model",
        "N",
        "steps",
        "forward s",
        "backward s",
        "bwd/fwd",
        "fwd+bwd robot-steps/s",
        "memory"
    );
    let mut out = Vec::new();
    for spec in &args.models {
        let model = super::load_model(spec)?;
        let mut loss = Loss::new();
        for b in &model.bodies {
            loss = loss.term(
                &b.name,
                Quantity::Position {
                    direction: [1.0, 0.0, 0.0],
                },
                1.0,
                When::Final,
            );
        }
        for &n in &args.gradient_instances {
            let mut options = RolloutOptions::new(steps);
            options.checkpoint_every = args.checkpoint_every;
            let k = options.interval();
            let mut rollout = Rollout::new(gpu.clone(), &model, n.max(1), &loss, options)
                .with_context(|| format!("creating a {steps}-step rollout of {n} '{spec}'"))?;
            let a = model.actuators.len();
            let commands: Vec<f32> = (0..n.max(1) * steps as usize * a)
                .map(|k| 0.2 * (k as f32 * 0.01).sin())
                .collect();
            rollout.set_commands(&commands)?;
            rollout.forward()?;
            rollout.backward()?;
            let t0 = Instant::now();
            rollout.forward()?;
            let forward = t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            rollout.backward()?;
            let backward = t1.elapsed().as_secs_f64();
            let case = GradientCase {
                model: spec.clone(),
                instances: n.max(1),
                steps,
                checkpoint_every: k,
                forward_seconds: forward,
                backward_seconds: backward,
                backward_over_forward: backward / forward.max(1e-9),
                forward_backward_robot_steps_per_s: f64::from(steps) * n.max(1) as f64
                    / (forward + backward).max(1e-9),
                device_bytes: rollout.device_bytes(),
            };
            println!(
                "{:<12} {:>7} {:>6} {:>10.3} {:>11.3} {:>10.2} {:>22} {:>12}",
                case.model,
                case.instances,
                case.steps,
                case.forward_seconds,
                case.backward_seconds,
                case.backward_over_forward,
                thousands(case.forward_backward_robot_steps_per_s),
                mib(case.device_bytes)
            );
            out.push(case);
        }
    }
    Ok(out)
}
