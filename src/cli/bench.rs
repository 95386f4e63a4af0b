//! `backdrive bench`: forward and forward-plus-backward throughput in robot-steps per second
//! against the batch size, peak device memory, the analytic gradient against finite
//! differences, and the paper's Table 1 (`--table1`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use backdrive::Simulator;
use backdrive::gpu::Gpu;
use backdrive::loss::{Loss, Quantity, When};
use backdrive::rollout::{Rollout, RolloutOptions, estimate_memory};
use serde::Serialize;

use super::{mib, thousands};

/// The MJCF ant measured under the name `ant`.
const ANT_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/mjcf/gymnasium_ant.xml"
);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Fewer batch sizes, shorter horizons and time budgets (about a minute on a 2-core CPU
    /// driver).
    #[arg(long)]
    pub quick: bool,
    /// Also write every figure as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write a PNG chart of throughput against N (log-log) to this file.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Reproduce the paper's Table 1 (quadruped with a 1,296- and a 1,147,904-parameter
    /// controller, 1 and 128 robots, with and without gradient) instead of the sweep; with
    /// --quick the horizon is shortened and the seconds extrapolated linearly to 1000 steps.
    #[arg(long)]
    pub table1: bool,
    /// Models to measure (names, files, or `ant` for the gymnasium ant MJCF fixture).
    #[arg(long, value_delimiter = ',', default_value = "quadruped,ball,arm,ant")]
    pub models: Vec<String>,
    /// Batch sizes (default 1,16,128,1024,4096,16384, or 1,16,128 with --quick).
    #[arg(long, value_delimiter = ',')]
    pub instances: Option<Vec<usize>>,
    /// Horizon T of the forward measurement (default 1000, or 50 with --quick). A case stops
    /// early once its time budget is spent (60 s, or 2 s with --quick); it always runs at least
    /// one call of 50 steps (10 with --quick). With --table1: the steps measured per cell
    /// (default 1000, or 16 with --quick), extrapolated linearly to 1000.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub steps: Option<u32>,
    /// Horizon of the forward-plus-backward measurement (default 1000, or 10 with --quick);
    /// shortened for a case whose predicted time exceeds the gradient budget (the JSON records
    /// the steps used).
    #[arg(long)]
    pub gradient_steps: Option<u32>,
    /// Seconds a gradient case may take, as predicted from the forward throughput (default 120,
    /// or 3 with --quick).
    #[arg(long)]
    pub gradient_budget: Option<f64>,
    /// Checkpoint interval of the gradient measurement (default: the rollout's, which keeps
    /// every state when the batch's trajectory fits in 64 MiB and checkpoints every
    /// ceil(sqrt(steps)) steps otherwise; 1 always keeps every state).
    #[arg(long)]
    pub checkpoint_every: Option<u32>,
    /// Skip a rollout whose estimated device memory exceeds this many MiB.
    #[arg(long, default_value_t = 8192)]
    pub memory_budget_mib: u64,
    /// Horizon of the analytic-versus-finite-difference comparison (default 200, or 10 with
    /// --quick).
    #[arg(long)]
    pub fd_steps: Option<u32>,
}

/// One measured forward case.
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
    /// The same model and N stepped by the f32 CPU twin on every core, same budget.
    twin_robot_steps_per_s: f64,
    twin_threads: usize,
    twin_robot_steps: u64,
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
    /// Robot-steps of the checkpointed forward pass alone per second.
    forward_robot_steps_per_s: f64,
    forward_backward_robot_steps_per_s: f64,
    device_bytes: u64,
    estimated_bytes: u64,
}

/// Analytic gradient (1 forward + 1 backward) against central finite differences (2P
/// forward rollouts batched as instances) over the model's P physical parameters.
#[derive(Debug, Serialize)]
struct FdCase {
    model: String,
    parameters: usize,
    steps: u32,
    analytic_seconds: f64,
    fd_instances: usize,
    fd_seconds: f64,
    fd_over_analytic: f64,
    /// Cosine between the two gradients (finite differences in f32 are noisy through contact);
    /// null when either gradient is zero.
    cosine: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Skipped {
    model: String,
    instances: usize,
    what: &'static str,
    reason: String,
}

#[derive(Debug, Serialize)]
struct AdapterJson {
    name: String,
    backend: String,
    device_type: String,
    driver: String,
    driver_info: String,
    description: String,
}

#[derive(Debug, Serialize)]
struct Report {
    backdrive_version: &'static str,
    adapter: AdapterJson,
    quick: bool,
    warm_up_steps: u32,
    steps_per_call: u32,
    time_budget_s: u64,
    gradient_budget_s: f64,
    memory_budget_mib: u64,
    results: Vec<Case>,
    gradient_results: Vec<GradientCase>,
    fd_results: Vec<FdCase>,
    skipped: Vec<Skipped>,
    #[serde(skip_serializing_if = "Option::is_none")]
    table1: Option<backdrive::table1::Table1Report>,
}

/// Steps before timing: the first dispatch includes the driver's shader compilation.
const WARM_UP: u32 = 10;

fn adapter_json(gpu: &Gpu) -> AdapterJson {
    AdapterJson {
        name: gpu.info.name.clone(),
        backend: format!("{:?}", gpu.info.backend),
        device_type: format!("{:?}", gpu.info.device_type),
        driver: gpu.info.driver.clone(),
        driver_info: gpu.info.driver_info.clone(),
        description: gpu.describe(),
    }
}

fn load(spec: &str) -> anyhow::Result<backdrive::Model> {
    if spec == "ant" {
        let options = backdrive::mjcf::MjcfOptions {
            ignore_unsupported: true,
            ..Default::default()
        };
        let import = backdrive::mjcf::load_mjcf_with(ANT_PATH, &options)
            .with_context(|| format!("loading the gymnasium ant from {ANT_PATH}"))?;
        Ok(import.model)
    } else {
        super::load_model(spec)
    }
}

/// Loss of the gradient measurements: the final x of every body (distance travelled).
fn distance_loss(model: &backdrive::Model) -> Loss {
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
    loss
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let gpu = super::open_gpu()?;
    println!("adapter: {}", gpu.describe());
    if args.table1 {
        return run_table1(
            &gpu,
            args.quick,
            args.steps,
            args.json.as_deref(),
            args.plot.as_deref(),
        );
    }
    let target = args
        .steps
        .unwrap_or(if args.quick { 50 } else { 1000 })
        .max(1);
    let instances = args.instances.clone().unwrap_or_else(|| {
        if args.quick {
            vec![1, 16, 128]
        } else {
            vec![1, 16, 128, 1024, 4096, 16384]
        }
    });
    let budget = Duration::from_secs(if args.quick { 2 } else { 60 });
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
    let mut skipped = Vec::new();
    let mut models = Vec::new();
    for spec in &args.models {
        let model = match load(spec) {
            Ok(m) => m,
            Err(e) => {
                println!("{spec:<12} skipped: {e:#}");
                skipped.push(Skipped {
                    model: spec.clone(),
                    instances: 0,
                    what: "model",
                    reason: format!("{e:#}"),
                });
                continue;
            }
        };
        for &n in &instances {
            let n = n.max(1);
            let mut sim = match Simulator::new(gpu.clone(), &model, n) {
                Ok(sim) => sim,
                Err(e) => {
                    println!("{spec:<12} {:>6} {n:>7} skipped: {e}", model.bodies.len());
                    skipped.push(Skipped {
                        model: spec.clone(),
                        instances: n,
                        what: "forward",
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
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
            let mut case = Case {
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
                twin_robot_steps_per_s: 0.0,
                twin_threads: 0,
                twin_robot_steps: 0,
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
            let twin = backdrive::twin::throughput::measure(sim.compiled(), n, done, budget);
            println!(
                "{:<12} {:>6} {:>7} {:>6} {:>9.3} {:>10} {:>15} {:>14.2}   f32 CPU twin, {} threads",
                "  twin",
                case.bodies,
                n,
                twin.robot_steps / n as u64,
                twin.seconds,
                "",
                thousands(twin.robot_steps_per_s),
                1e6 / twin.robot_steps_per_s,
                twin.threads
            );
            case.twin_robot_steps_per_s = twin.robot_steps_per_s;
            case.twin_threads = twin.threads;
            case.twin_robot_steps = twin.robot_steps;
            results.push(case);
        }
        models.push((spec.clone(), model));
    }
    let gradient_results = gradient_cases(&gpu, args, &models, &instances, &results, &mut skipped)?;
    let fd_results = fd_cases(&gpu, args, &models)?;
    if args.models.iter().any(|m| m == "quadruped") {
        println!();
        println!(
            "paper (Degrave et al., Table 1, quadruped, 1000 steps): no gradient, 1 robot on an \
             i7-5930K CPU 943 robot-steps/s, 128 robots on a GTX 1080 7,191 robot-steps/s; with \
             gradient, 128 robots on the GTX 1080 992 robot-steps/s (backward about 7-10x the \
             forward)"
        );
    }
    if let Some(path) = &args.plot {
        write_plot(path, &results, &gradient_results)?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.json {
        let report = Report {
            backdrive_version: env!("CARGO_PKG_VERSION"),
            adapter: adapter_json(&gpu),
            quick: args.quick,
            warm_up_steps: WARM_UP,
            steps_per_call: block,
            time_budget_s: budget.as_secs(),
            gradient_budget_s: gradient_budget(args),
            memory_budget_mib: args.memory_budget_mib,
            results,
            gradient_results,
            fd_results,
            skipped,
            table1: None,
        };
        let text = serde_json::to_string_pretty(&report)?;
        super::output::write_atomic(path, text.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn gradient_budget(args: &Args) -> f64 {
    args.gradient_budget
        .unwrap_or(if args.quick { 3.0 } else { 120.0 })
}

/// The paper's Table 1 (`bench --table1` and `reproduce table1`): prints the Markdown table and
/// writes the JSON and the plot when asked.
/// `steps` overrides the measured horizon (the seconds are extrapolated to 1000 steps).
pub(super) fn run_table1(
    gpu: &Arc<Gpu>,
    quick: bool,
    steps: Option<u32>,
    json: Option<&std::path::Path>,
    plot: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let steps = steps.unwrap_or(if quick {
        backdrive::table1::QUICK_STEPS
    } else {
        backdrive::table1::PAPER_STEPS
    });
    let report = backdrive::table1::run_with_steps(gpu.clone(), steps, &mut |line| {
        eprintln!("table 1: {line}");
    })?;
    println!();
    print!("{}", report.markdown());
    if let Some(path) = json {
        #[derive(Serialize)]
        struct Table1Json<'a> {
            backdrive_version: &'static str,
            adapter: AdapterJson,
            table1: &'a backdrive::table1::Table1Report,
        }
        let json = Table1Json {
            backdrive_version: env!("CARGO_PKG_VERSION"),
            adapter: adapter_json(gpu),
            table1: &report,
        };
        let text = serde_json::to_string_pretty(&json)?;
        super::output::write_atomic(path, text.as_bytes())?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = plot {
        let series: Vec<(String, Vec<(f64, f64)>)> = [true, false]
            .iter()
            .flat_map(|&g| {
                report
                    .controllers
                    .iter()
                    .map(move |c| (g, c.params))
                    .collect::<Vec<_>>()
            })
            .map(|(g, p)| {
                let points = report
                    .cells
                    .iter()
                    .filter(|c| c.gradient == g && c.params == p)
                    .map(|c| (c.robots as f64, c.seconds))
                    .collect();
                (
                    format!("{p} params, {}", if g { "grad" } else { "no grad" }),
                    points,
                )
            })
            .collect();
        backdrive::plot::line_chart_with(
            path,
            "Table 1: seconds for 1000 quadruped steps",
            "robots",
            "seconds",
            &series,
            &backdrive::plot::ChartOptions {
                log_x: true,
                log_y: true,
                ..Default::default()
            },
        )?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn write_plot(
    path: &std::path::Path,
    results: &[Case],
    gradient_results: &[GradientCase],
) -> anyhow::Result<()> {
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    let mut names: Vec<&str> = results.iter().map(|c| c.model.as_str()).collect();
    names.dedup();
    for name in names {
        let fwd: Vec<(f64, f64)> = results
            .iter()
            .filter(|c| c.model == name)
            .map(|c| (c.instances as f64, c.robot_steps_per_s))
            .collect();
        series.push((format!("{name} fwd"), fwd));
        let grad: Vec<(f64, f64)> = gradient_results
            .iter()
            .filter(|c| c.model == name)
            .map(|c| (c.instances as f64, c.forward_backward_robot_steps_per_s))
            .collect();
        if !grad.is_empty() {
            series.push((format!("{name} fwd+bwd"), grad));
        }
    }
    backdrive::plot::line_chart_with(
        path,
        "throughput against batch size",
        "robots N",
        "robot-steps/s",
        &series,
        &backdrive::plot::ChartOptions {
            log_x: true,
            log_y: true,
            ..Default::default()
        },
    )?;
    Ok(())
}

/// Times a checkpointed forward pass and the adjoint pass of a rollout whose loss is the
/// bodies' final x positions (distance travelled), for every model and batch size.
fn gradient_cases(
    gpu: &Arc<Gpu>,
    args: &Args,
    models: &[(String, backdrive::Model)],
    instances: &[usize],
    forward: &[Case],
    skipped: &mut Vec<Skipped>,
) -> anyhow::Result<Vec<GradientCase>> {
    let steps = args
        .gradient_steps
        .unwrap_or(if args.quick { 10 } else { 1000 })
        .max(1);
    let budget = gradient_budget(args);
    println!();
    println!(
        "gradients: loss = final x of every body, {steps} steps (fewer where the forward \
         throughput predicts more than {budget} s), checkpoints every {} steps; one untimed \
         warm-up pass",
        args.checkpoint_every
            .map(|k| k.to_string())
            .unwrap_or_else(|| {
                "K (every state when the trajectory fits in 64 MiB, else ceil(sqrt(T)); \
                 the JSON records K)"
                    .into()
            })
    );
    println!(
        "{:<12} {:>7} {:>6} {:>10} {:>11} {:>8} {:>15} {:>22} {:>12}",
        "model",
        "N",
        "steps",
        "forward s",
        "backward s",
        "bwd/fwd",
        "fwd robot-st/s",
        "fwd+bwd robot-steps/s",
        "memory"
    );
    let memory_budget = args.memory_budget_mib * 1024 * 1024;
    let mut out = Vec::new();
    for (spec, model) in models {
        let loss = distance_loss(model);
        for &n in instances {
            let n = n.max(1);
            // Shorten the horizon when the forward throughput predicts a case over budget
            // (forward plus a backward of up to 4x).
            let rate = forward
                .iter()
                .find(|c| &c.model == spec && c.instances == n)
                .map(|c| c.robot_steps_per_s);
            let mut t = steps;
            if let Some(rate) = rate {
                let fit = (budget * rate / (5.0 * n as f64)).floor();
                if fit < f64::from(t) {
                    t = fit.max(0.0) as u32;
                }
            }
            if t < 2 {
                let reason =
                    format!("predicted over the {budget} s gradient budget even at 2 steps");
                println!("{spec:<12} {n:>7} skipped: {reason}");
                skipped.push(Skipped {
                    model: spec.clone(),
                    instances: n,
                    what: "gradient",
                    reason,
                });
                continue;
            }
            let mut options = RolloutOptions::new(t);
            options.checkpoint_every = args.checkpoint_every;
            options.command_gradients = false;
            let estimate = estimate_memory(model, n, &options);
            if estimate.total() > memory_budget {
                let reason = format!(
                    "estimated {estimate} exceeds the budget of {} MiB",
                    args.memory_budget_mib
                );
                println!("{spec:<12} {n:>7} skipped: {reason}");
                skipped.push(Skipped {
                    model: spec.clone(),
                    instances: n,
                    what: "gradient",
                    reason,
                });
                continue;
            }
            let mut rollout = match Rollout::new(gpu.clone(), model, n, &loss, options) {
                Ok(r) => r,
                Err(e) => {
                    println!("{spec:<12} {n:>7} skipped: {e}");
                    skipped.push(Skipped {
                        model: spec.clone(),
                        instances: n,
                        what: "gradient",
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            let a = model.actuators.len();
            let commands: Vec<f32> = (0..n * t as usize * a)
                .map(|k| 0.2 * (k as f32 * 0.01).sin())
                .collect();
            rollout.set_commands(&commands)?;
            if n <= 128 {
                // Untimed warm-up (pipelines are compiled once per device; large batches
                // only pay for the first touch of their buffers).
                rollout.forward()?;
                rollout.backward()?;
            }
            let t0 = Instant::now();
            rollout.forward()?;
            let forward_s = t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            rollout.backward()?;
            let backward_s = t1.elapsed().as_secs_f64();
            let robot_steps = f64::from(t) * n as f64;
            let case = GradientCase {
                model: spec.clone(),
                instances: n,
                steps: t,
                checkpoint_every: rollout.checkpoint_interval(),
                forward_seconds: forward_s,
                backward_seconds: backward_s,
                backward_over_forward: backward_s / forward_s.max(1e-9),
                forward_robot_steps_per_s: robot_steps / forward_s.max(1e-9),
                forward_backward_robot_steps_per_s: robot_steps
                    / (forward_s + backward_s).max(1e-9),
                device_bytes: rollout.device_bytes(),
                estimated_bytes: estimate.total(),
            };
            println!(
                "{:<12} {:>7} {:>6} {:>10.3} {:>11.3} {:>8.2} {:>15} {:>22} {:>12}",
                case.model,
                case.instances,
                case.steps,
                case.forward_seconds,
                case.backward_seconds,
                case.backward_over_forward,
                thousands(case.forward_robot_steps_per_s),
                thousands(case.forward_backward_robot_steps_per_s),
                mib(case.device_bytes)
            );
            out.push(case);
        }
    }
    Ok(out)
}

/// The gradient of the final x of every body with respect to every physical parameter of one
/// robot: analytically (1 forward + 1 backward) and by central finite differences (2P
/// perturbed robots stepped as one batch).
fn fd_cases(
    gpu: &Arc<Gpu>,
    args: &Args,
    models: &[(String, backdrive::Model)],
) -> anyhow::Result<Vec<FdCase>> {
    let steps = args
        .fd_steps
        .unwrap_or(if args.quick { 10 } else { 200 })
        .max(1);
    println!();
    println!(
        "analytic gradient vs central finite differences over every physical parameter of one \
         robot, {steps} steps, loss = final x of every body"
    );
    println!(
        "{:<12} {:>6} {:>12} {:>10} {:>10} {:>10} {:>8}",
        "model", "P", "analytic s", "FD robots", "FD s", "FD/anal.", "cosine"
    );
    let mut out = Vec::new();
    for (spec, model) in models {
        let loss = distance_loss(model);
        let mut options = RolloutOptions::new(steps);
        options.command_gradients = false;
        let mut rollout = Rollout::new(gpu.clone(), model, 1, &loss, options)?;
        rollout.forward()?;
        rollout.backward()?;
        let t0 = Instant::now();
        rollout.forward()?;
        let grads = rollout.backward()?;
        let analytic = t0.elapsed().as_secs_f64();
        let base = rollout.params()?;
        let p = base.len();
        let mut sim = Simulator::new(gpu.clone(), model, 2 * p.max(1))?;
        let mut params = Vec::with_capacity(2 * p * p);
        let mut steps_h = Vec::with_capacity(p);
        for i in 0..p {
            let h = 1e-2 * base[i].abs().max(1e-2);
            steps_h.push(h);
            for sign in [1.0f32, -1.0] {
                let mut q = base.clone();
                q[i] += sign * h;
                params.extend_from_slice(&q);
            }
        }
        sim.step(1)?; // warm-up
        let t1 = Instant::now();
        sim.set_params(&params)?;
        sim.reset()?;
        sim.step(steps)?;
        let bodies = sim.body_states()?;
        let fd_s = t1.elapsed().as_secs_f64();
        let nb = model.bodies.len();
        let loss_of = |i: usize| -> f64 {
            bodies[i * nb..(i + 1) * nb]
                .iter()
                .map(|b| f64::from(b.position[0]))
                .sum()
        };
        let fd: Vec<f64> = (0..p)
            .map(|i| (loss_of(2 * i) - loss_of(2 * i + 1)) / (2.0 * f64::from(steps_h[i])))
            .collect();
        let dot: f64 = fd
            .iter()
            .zip(&grads.params)
            .map(|(a, b)| a * f64::from(*b))
            .sum();
        let na = fd.iter().map(|a| a * a).sum::<f64>().sqrt();
        let nb2 = grads
            .params
            .iter()
            .map(|b| f64::from(*b).powi(2))
            .sum::<f64>()
            .sqrt();
        let case = FdCase {
            model: spec.clone(),
            parameters: p,
            steps,
            analytic_seconds: analytic,
            fd_instances: 2 * p,
            fd_seconds: fd_s,
            fd_over_analytic: fd_s / analytic.max(1e-9),
            cosine: (na > 1e-12 && nb2 > 1e-12).then(|| dot / (na * nb2)),
        };
        println!(
            "{:<12} {:>6} {:>12.4} {:>10} {:>10.4} {:>10.2} {:>8}",
            case.model,
            case.parameters,
            case.analytic_seconds,
            case.fd_instances,
            case.fd_seconds,
            case.fd_over_analytic,
            case.cosine
                .map(|c| format!("{c:.4}"))
                .unwrap_or_else(|| "n/a".into())
        );
        out.push(case);
    }
    Ok(out)
}
