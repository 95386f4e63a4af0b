//! The constraint residual the Gauss-Seidel sweeps leave, per row kind, against the sweep
//! count, row order and over-relaxation, averaged over a rollout of each model with sine
//! commands on its actuators (the CPU twin, `backdrive::engine::twin::residual`):
//!
//! `cargo run --release --example solver_residual -- --models quadruped,ant,arm --sweeps
//! 5,10,15,20,30,40 --orders kernel,symmetric --relaxation 1 --steps 1000 --instances 8`
//!
//! Without `--relaxation` every row keeps its model's own factor (`settings.solver_relaxation`
//! on the lock and servo rows, 1 elsewhere), as the kernel steps it; the omega column then
//! reads `model`. `--sweeps` defaults to each model's own `solver_iterations`.
//!
//! Each cell is the mean row residual of that kind (m/s or rad/s) over every step of
//! `--instances` rollouts; `max` is the largest single row residual seen.
//!
//! `ant` is the gymnasium ant (`tests/fixtures/mjcf/gymnasium_ant.xml`, unsupported
//! attributes ignored); other names are shipped models or model files. `--precision f32`
//! measures with the f32 twin (the GPU's arithmetic) instead of f64.

use anyhow::{Context, bail};
use backdrive::engine::layout::Compiled;
use backdrive::engine::twin::residual::{
    KindResidual, RowKind, RowOrder, SweepPlan, measure_rollout,
};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Models: shipped names, `ant`, or model files.
    #[arg(long, value_delimiter = ',', default_value = "quadruped,ant,arm")]
    models: Vec<String>,
    /// Sweep counts to measure (default: each model's own).
    #[arg(long, value_delimiter = ',')]
    sweeps: Vec<u32>,
    /// Row orders: kernel, reversed, symmetric, contacts-first.
    #[arg(long, value_delimiter = ',', default_value = "kernel")]
    orders: Vec<String>,
    /// Over-relaxation factors of the `--relax-kinds` rows, in place of the model's own
    /// (default: the model's own factors on every row).
    #[arg(long, value_delimiter = ',')]
    relaxation: Vec<f64>,
    /// Row kinds the relaxation applies to (lock, limit, servo, contact, tendon, passive).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "lock,limit,servo,contact,tendon,passive"
    )]
    relax_kinds: Vec<String>,
    /// Warm-start factors to measure (default: each model's own).
    #[arg(long, value_delimiter = ',')]
    warm_start: Vec<f32>,
    /// Rollouts per case, each with its own command phase (as `backdrive rollout` shifts
    /// instances); the table averages them.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    instances: u32,
    /// Steps of each rollout.
    #[arg(long, default_value_t = 500)]
    steps: u32,
    /// f64 or f32 twin.
    #[arg(long, default_value = "f64")]
    precision: String,
}

fn load(name: &str) -> anyhow::Result<backdrive::Model> {
    if name == "ant" {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/mjcf/gymnasium_ant.xml"
        );
        return Ok(backdrive::io::models::load_with_warnings(path, true)?.model);
    }
    Ok(backdrive::io::models::load(name)?)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let orders = args
        .orders
        .iter()
        .map(|o| {
            RowOrder::ALL
                .into_iter()
                .find(|k| k.name() == o)
                .with_context(|| format!("unknown order '{o}'"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut relaxed_kinds = [false; RowKind::ALL.len()];
    for name in &args.relax_kinds {
        let kind = RowKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .with_context(|| format!("unknown row kind '{name}'"))?;
        relaxed_kinds[kind.index()] = true;
    }
    if !matches!(args.precision.as_str(), "f64" | "f32") {
        bail!("--precision: expected f64 or f32");
    }
    println!(
        "| model | warm start | order | omega | sweeps | {} | all rows | max | finite |",
        RowKind::ALL.map(RowKind::name).join(" | ")
    );
    println!(
        "|---|---:|---|---:|---:|{}---:|---|",
        "---:|".repeat(RowKind::ALL.len())
    );
    for name in &args.models {
        let model = load(name).with_context(|| format!("loading {name}"))?;
        let warm_starts = if args.warm_start.is_empty() {
            vec![model.settings.warm_start]
        } else {
            args.warm_start.clone()
        };
        for &warm_start in &warm_starts {
            let mut model = model.clone();
            model.settings.warm_start = warm_start;
            let compiled = Compiled::new(&model);
            let amplitudes: Vec<f64> = model
                .actuators
                .iter()
                .map(|a| match a.kind {
                    backdrive::model::ActuatorKind::PositionServo => 0.4,
                    backdrive::model::ActuatorKind::VelocityServo => {
                        0.5 * f64::from(a.max_velocity.min(4.0))
                    }
                    backdrive::model::ActuatorKind::Force => 0.5 * f64::from(a.max_force),
                    // MuJoCo's ctrl, whose ranges are mostly -1..1.
                    backdrive::model::ActuatorKind::Affine => 0.5,
                })
                .collect();
            let dt = f64::from(model.settings.dt);
            // The phases of `backdrive rollout`'s sine commands, shifted per instance.
            let phase = |step: u32, a: usize, instance: u32| {
                std::f64::consts::TAU * 1.5 * dt * f64::from(step)
                    + std::f64::consts::FRAC_PI_2 * a as f64
                    + std::f64::consts::TAU * f64::from(instance) / f64::from(args.instances)
            };
            let relaxations: Vec<Option<f64>> = if args.relaxation.is_empty() {
                vec![None]
            } else {
                args.relaxation.iter().copied().map(Some).collect()
            };
            let sweep_counts = if args.sweeps.is_empty() {
                vec![model.settings.solver_iterations]
            } else {
                args.sweeps.clone()
            };
            for &order in &orders {
                for &omega in &relaxations {
                    for &sweeps in &sweep_counts {
                        let plan = match omega {
                            Some(relaxation) => SweepPlan {
                                sweeps,
                                order,
                                relaxation,
                                relaxed_kinds,
                            },
                            None => SweepPlan {
                                order,
                                ..SweepPlan::kernel(sweeps)
                            },
                        };
                        let omega = omega.map_or("model".to_string(), |o| o.to_string());
                        let run = |instance: u32| {
                            if args.precision == "f64" {
                                measure_rollout::<f64>(&compiled, &plan, args.steps, |step, u| {
                                    for (a, c) in u.iter_mut().enumerate() {
                                        *c = amplitudes[a] * phase(step, a, instance).sin();
                                    }
                                })
                            } else {
                                measure_rollout::<f32>(&compiled, &plan, args.steps, |step, u| {
                                    for (a, c) in u.iter_mut().enumerate() {
                                        *c =
                                            (amplitudes[a] * phase(step, a, instance).sin()) as f32;
                                    }
                                })
                            }
                        };
                        // Every instance has the same rows, so the mean of the instances'
                        // means is the mean over all of them.
                        let reports: Vec<_> = (0..args.instances).map(run).collect();
                        let k = f64::from(args.instances);
                        let mut report = reports[0].clone();
                        for kind in report.kinds.values_mut() {
                            kind.mean = 0.0;
                        }
                        report.mean = reports.iter().map(|r| r.mean).sum::<f64>() / k;
                        report.finite = reports.iter().all(|r| r.finite);
                        for r in &reports {
                            for (kind, residual) in &r.kinds {
                                let total = report.kinds.entry(*kind).or_default();
                                total.mean += residual.mean / k;
                                total.max = total.max.max(residual.max);
                            }
                        }
                        let cells: Vec<String> = RowKind::ALL
                            .iter()
                            .map(|k| {
                                report
                                    .kinds
                                    .get(k)
                                    .map_or("-".into(), |KindResidual { mean, .. }| {
                                        format!("{mean:.2e}")
                                    })
                            })
                            .collect();
                        println!(
                            "| {name} | {warm_start} | {} | {omega} | {sweeps} | {} | {:.2e} | {:.2e} | {} |",
                            order.name(),
                            cells.join(" | "),
                            report.mean,
                            report.kinds.values().map(|k| k.max).fold(0.0, f64::max),
                            report.finite
                        );
                    }
                }
            }
        }
    }
    Ok(())
}
