//! `backdrive gradcheck`: the adjoint gradient against central finite differences.

use backdrive::gradcheck::{GradcheckSetup, Group, GroupReport, gradcheck, gradcheck_against_twin};
use backdrive::layout::{BODY_STATE_LEN, Compiled};
use backdrive::loss::{Loss, Quantity, When};
use backdrive::rollout::RolloutOptions;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Reference {
    /// Central differences of rollouts on the same device, in f32 (noise near 1e-3).
    Device,
    /// Central differences of the f64 CPU twin (the tight reference).
    Twin,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model file or shipped model name.
    pub model: String,
    /// Rollout length.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub steps: u32,
    /// What the finite differences are computed with.
    #[arg(long, value_enum, default_value_t = Reference::Device)]
    pub reference: Reference,
    /// Largest relative error accepted, >= 0 (default 1e-2 against the device, 1e-3 against
    /// the twin).
    #[arg(long, value_parser = parse_tolerance)]
    pub tolerance: Option<f64>,
    /// Smallest cosine similarity accepted, in [-1, 1] (default 0.99 against the device, 0.999
    /// against the twin).
    #[arg(long, value_parser = parse_cosine)]
    pub min_cosine: Option<f64>,
    /// Relative step of the differences, > 0 (default 1e-3 on the device, 1e-6 on the twin).
    #[arg(long, value_parser = parse_step_size)]
    pub step_size: Option<f32>,
    /// Most inputs perturbed per group (every group: velocities, positions, parameters,
    /// commands), at least 1; larger groups are checked on an evenly spaced subset.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_inputs: u32,
}

fn parse_tolerance(text: &str) -> Result<f64, String> {
    let x: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if x.is_finite() && x >= 0.0 {
        Ok(x)
    } else {
        Err(format!("expected a finite number >= 0, found {x}"))
    }
}

fn parse_cosine(text: &str) -> Result<f64, String> {
    let x: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if (-1.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(format!("a cosine similarity lies in [-1, 1], found {x}"))
    }
}

fn parse_step_size(text: &str) -> Result<f32, String> {
    let x: f32 = text.parse().map_err(|e| format!("{e}"))?;
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(format!("expected a positive finite number, found {x}"))
    }
}

/// The default loss: every body's time-averaged squared speed, plus its final distance from a
/// point 10 cm along x from where it started.
fn default_loss(model: &backdrive::Model, steps: u32) -> Loss {
    let mut loss = Loss::new();
    for b in &model.bodies {
        let p = b.position;
        loss = loss
            .term(
                &b.name,
                Quantity::PositionError {
                    target: [p[0] + 0.1, p[1], p[2]],
                    mask: [1.0; 3],
                },
                1.0,
                When::Final,
            )
            .term(
                &b.name,
                Quantity::VelocityError {
                    target: [0.0; 3],
                    mask: [1.0; 3],
                },
                0.1 / steps as f32,
                When::EveryStep,
            );
    }
    loss
}

fn print(report: &GroupReport, tolerance: f64, min_cosine: f64) -> bool {
    let (e, c) = (report.relative_error(), report.cosine());
    let ok =
        (e <= tolerance && c >= min_cosine) || report.finite_difference.iter().all(|v| *v == 0.0);
    println!(
        "  {:<20} {:>4} inputs   relative error {:>9.2e}   cosine {:>9.6}   {}",
        report.group.name(),
        report.adjoint.len(),
        e,
        c,
        if ok { "ok" } else { "FAIL" }
    );
    ok
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let model = super::load_model(&args.model)?;
    let gpu = super::open_gpu()?;
    let compiled = Compiled::new(&model);
    let a = model.actuators.len();
    let commands: Vec<f32> = (0..args.steps as usize * a)
        .map(|k| 0.3 * ((k / a.max(1)) as f32 * 0.05 + (k % a.max(1)) as f32).sin())
        .collect();
    // Start moving, so that every velocity matters.
    let mut state = compiled.initial_state.clone();
    for b in 1..=model.bodies.len() {
        state[b * BODY_STATE_LEN + 7] += 0.2;
    }
    let setup = GradcheckSetup {
        options: RolloutOptions::new(args.steps),
        loss: default_loss(&model, args.steps),
        initial_state: Some(state),
        commands: Some(commands),
        relative_step: args.step_size.unwrap_or(match args.reference {
            Reference::Device => 1e-3,
            Reference::Twin => 1e-6,
        }),
        max_inputs: args.max_inputs as usize,
    };
    let mut groups = vec![
        Group::InitialVelocities,
        Group::InitialPositions,
        Group::Params,
    ];
    if a > 0 {
        groups.push(Group::Commands);
    }
    let (tolerance, min_cosine) = match args.reference {
        Reference::Device => (
            args.tolerance.unwrap_or(1e-2),
            args.min_cosine.unwrap_or(0.99),
        ),
        Reference::Twin => (
            args.tolerance.unwrap_or(1e-3),
            args.min_cosine.unwrap_or(0.999),
        ),
    };
    println!("adapter: {}", gpu.describe());
    println!(
        "gradcheck of '{}' over {} steps against central differences ({})",
        model.name,
        args.steps,
        match args.reference {
            Reference::Device => "same device, f32",
            Reference::Twin => "CPU twin, f64",
        }
    );
    let reports = match args.reference {
        Reference::Device => gradcheck(gpu, &model, &setup, &groups)?,
        Reference::Twin => {
            gradcheck_against_twin(gpu, &model, &setup, &groups, setup.relative_step)?
        }
    };
    let mut all_ok = true;
    for r in &reports {
        all_ok &= print(r, tolerance, min_cosine);
    }
    if !all_ok {
        println!(
            "note: rollouts with many contacts are rough at the scale of the difference step \
             (each perturbation changes which contacts and clamps are active); compare with \
             --reference twin --step-size 1e-7, or fewer --steps"
        );
        anyhow::bail!(
            "gradient check failed: relative error above {tolerance:e} or cosine below {min_cosine}"
        );
    }
    Ok(())
}
