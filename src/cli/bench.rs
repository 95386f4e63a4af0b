//! `backdrive bench`: forward and forward-plus-backward throughput in robot-steps per second
//! against the batch size, peak device memory, the analytic gradient against finite
//! differences, and the paper's Table 1 (`--table1`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use backdrive::Simulator;
use backdrive::engine::gpu::Gpu;
use backdrive::engine::layout::Compiled;
use backdrive::grad::measure::{
    FiniteDifferenceTiming, GradientTiming, gradient_options, time_finite_differences,
    time_gradient,
};
use backdrive::grad::rollout::estimate_memory;
use serde::Serialize;

use super::{mib, thousands};

/// Where the MJCF ant measured under the name `ant` comes from; its text is compiled into the
/// binary, so an installed `backdrive` needs no source tree.
const ANT_SOURCE: &str = "tests/fixtures/mjcf/gymnasium_ant.xml";
const ANT_XML: &str = include_str!("../../tests/fixtures/mjcf/gymnasium_ant.xml");

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
    /// Models to measure (names, files, or `ant` for the gymnasium ant, built into the binary).
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
    #[serde(flatten)]
    timing: GradientTiming,
}

/// Analytic gradient (1 forward + 1 backward) against central finite differences (2P + 1
/// forward rollouts batched as instances) over the model's P physical parameters.
#[derive(Debug, Serialize)]
struct FdCase {
    model: String,
    #[serde(flatten)]
    timing: FiniteDifferenceTiming,
}

#[derive(Debug, Serialize)]
struct Skipped {
    model: String,
    instances: usize,
    what: &'static str,
    reason: String,
}

#[derive(Debug, Serialize)]
struct Report {
    backdrive_version: &'static str,
    adapter: super::table1::AdapterJson,
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
    table1: Option<backdrive::reproduce::table1::Table1Report>,
}

/// Steps before timing: the first dispatch includes the driver's shader compilation.
const WARM_UP: u32 = 10;

fn load(spec: &str) -> anyhow::Result<backdrive::Model> {
    if spec == "ant" {
        let options = backdrive::io::mjcf::MjcfOptions {
            ignore_unsupported: true,
            ..Default::default()
        };
        let import = backdrive::io::mjcf::from_str(ANT_XML, Some(Path::new(ANT_SOURCE)), &options)
            .with_context(|| format!("loading the gymnasium ant (built in from {ANT_SOURCE})"))?;
        let mut model = import.model;
        // The benchmark's workload stays the ant its numbers were measured on (README), with
        // the joint damping and armature dropped: the importer now keeps both, which would
        // add eight rows.
        for j in &mut model.joints {
            j.damping = 0.0;
            j.armature = 0.0;
        }
        Ok(model)
    } else {
        super::load_model(spec)
    }
}

/// A model as named on the command line, with the model loaded.
type NamedModel = (String, backdrive::Model);

/// How each forward case is timed.
struct ForwardPlan {
    /// Steps to time per case.
    target: u32,
    /// Steps per `step()` call while timing.
    block: u32,
    /// Time after which a case stops (after at least one call).
    budget: Duration,
}

/// Prints what the forward cases measure and the table's header.
fn print_forward_header(plan: &ForwardPlan) {
    let ForwardPlan {
        target,
        block,
        budget,
    } = plan;
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
}

/// The forward cases of every model and batch size; returns the cases, the skipped ones and
/// the models loaded.
fn forward_cases(
    gpu: &Arc<Gpu>,
    args: &Args,
    instances: &[usize],
    plan: &ForwardPlan,
) -> anyhow::Result<(Vec<Case>, Vec<Skipped>, Vec<NamedModel>)> {
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
        // One layout for every batch size of the model.
        let compiled = Arc::new(Compiled::new(&model));
        for &n in instances {
            let sized = (&model, &compiled, n);
            if let Some(case) = forward_case(gpu, spec, sized, plan, &mut skipped)? {
                results.push(case);
            }
        }
        models.push((spec.clone(), model));
    }
    Ok((results, skipped, models))
}

/// Times the forward step of `n` instances of `model`, then the f32 CPU twin on the same
/// work; `None` when the batch cannot be created (recorded in `skipped`).
fn forward_case(
    gpu: &Arc<Gpu>,
    spec: &String,
    (model, compiled, n): (&backdrive::Model, &Arc<Compiled>, usize),
    plan: &ForwardPlan,
    skipped: &mut Vec<Skipped>,
) -> anyhow::Result<Option<Case>> {
    let &ForwardPlan {
        target,
        block,
        budget,
    } = plan;
    let n = n.max(1);
    let mut sim = match Simulator::with_compiled(gpu.clone(), model, compiled.clone(), n) {
        Ok(sim) => sim,
        Err(e) => {
            println!("{spec:<12} {:>6} {n:>7} skipped: {e}", model.bodies.len());
            skipped.push(Skipped {
                model: spec.clone(),
                instances: n,
                what: "forward",
                reason: e.to_string(),
            });
            return Ok(None);
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
    let twin = backdrive::engine::twin::throughput::measure(sim.compiled(), n, done, budget);
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
    Ok(Some(case))
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    super::check_outputs(&[
        ("--json", args.json.as_deref()),
        ("--plot", args.plot.as_deref()),
    ])?;
    let gpu = super::open_gpu()?;
    println!("adapter: {}", gpu.describe());
    if args.table1 {
        return super::table1::run(
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
    let plan = ForwardPlan {
        target,
        block,
        budget,
    };
    print_forward_header(&plan);
    let (results, mut skipped, models) = forward_cases(&gpu, args, &instances, &plan)?;
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
            adapter: super::table1::adapter_json(&gpu),
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
        backdrive::io::files::write_atomic(path, text.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn gradient_budget(args: &Args) -> f64 {
    args.gradient_budget
        .unwrap_or(if args.quick { 3.0 } else { 120.0 })
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
            .map(|c| {
                (
                    c.timing.instances as f64,
                    c.timing.forward_backward_robot_steps_per_s,
                )
            })
            .collect();
        if !grad.is_empty() {
            series.push((format!("{name} fwd+bwd"), grad));
        }
    }
    backdrive::io::plot::line_chart_with(
        path,
        "throughput against batch size",
        "robots N",
        "robot-steps/s",
        &series,
        &backdrive::io::plot::ChartOptions {
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
            let mut skip = |reason: String| {
                println!("{spec:<12} {n:>7} skipped: {reason}");
                skipped.push(Skipped {
                    model: spec.clone(),
                    instances: n,
                    what: "gradient",
                    reason,
                });
            };
            if t < 2 {
                skip(format!(
                    "predicted over the {budget} s gradient budget even at 2 steps"
                ));
                continue;
            }
            let options = gradient_options(t, args.checkpoint_every);
            let estimate = estimate_memory(model, n, &options);
            if estimate.total() > memory_budget {
                skip(format!(
                    "estimated {estimate} exceeds the budget of {} MiB",
                    args.memory_budget_mib
                ));
                continue;
            }
            let timing = match time_gradient(gpu.clone(), model, n, options) {
                Ok(timing) => timing,
                // A batch the device cannot hold is a result of the sweep, not a failure.
                Err(e @ (backdrive::Error::TooLarge(_) | backdrive::Error::InvalidInput(_))) => {
                    skip(e.to_string());
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            println!(
                "{:<12} {:>7} {:>6} {:>10.3} {:>11.3} {:>8.2} {:>15} {:>22} {:>12}",
                spec,
                timing.instances,
                timing.steps,
                timing.forward_seconds,
                timing.backward_seconds,
                timing.backward_over_forward,
                thousands(timing.forward_robot_steps_per_s),
                thousands(timing.forward_backward_robot_steps_per_s),
                mib(timing.device_bytes)
            );
            out.push(GradientCase {
                model: spec.clone(),
                timing,
            });
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
        let timing = time_finite_differences(gpu.clone(), model, steps)?;
        println!(
            "{:<12} {:>6} {:>12.4} {:>10} {:>10.4} {:>10.2} {:>8}",
            spec,
            timing.parameters,
            timing.analytic_seconds,
            timing.fd_instances,
            timing.fd_seconds,
            timing.fd_over_analytic,
            timing
                .cosine
                .map(|c| format!("{c:.4}"))
                .unwrap_or_else(|| "n/a".into())
        );
        out.push(FdCase {
            model: spec.clone(),
            timing,
        });
    }
    Ok(out)
}
