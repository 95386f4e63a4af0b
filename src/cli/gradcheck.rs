//! `backdrive gradcheck`: the adjoint gradient against central finite differences.

use std::sync::Arc;

use backdrive::engine::layout::{BODY_STATE_LEN, Compiled};
use backdrive::grad::gradcheck::{
    GradcheckSetup, Group, GroupReport, gradcheck_against_twin_with_compiled,
    gradcheck_with_compiled,
};
use backdrive::grad::loss::{Loss, Quantity, When};
use backdrive::grad::rollout::RolloutOptions;

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
    /// Largest relative error accepted, >= 0. The default is 1e-2 against the device and 1e-3
    /// against the twin, widened to three times the finite differences' own noise (how much
    /// those at twice the step differ); a group whose noise exceeds 10% is reported as
    /// inconclusive instead of checked. Giving --tolerance or --min-cosine turns the widening
    /// and the inconclusive verdict off: both are then used as they are.
    #[arg(long, value_parser = parse_tolerance)]
    pub tolerance: Option<f64>,
    /// Smallest cosine similarity accepted, in [-1, 1] (default 0.99 against the device, 0.999
    /// against the twin, widened like the tolerance).
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

/// Above this relative disagreement between the finite differences at the step and at twice
/// the step, the differences do not resolve the derivative and the group is not checked.
const MAX_RESOLVABLE_NOISE: f64 = 0.1;

/// How the adjoint of a group compares with the finite differences.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verdict {
    Ok,
    Fail,
    /// The finite differences disagree with themselves by more than [`MAX_RESOLVABLE_NOISE`].
    Inconclusive,
}

/// The finite differences' own noise: their relative difference and cosine against the same
/// differences taken at twice the step.
fn noise(fine: &GroupReport, coarse: &GroupReport) -> (f64, f64) {
    let pair = GroupReport {
        group: fine.group,
        adjoint: coarse.finite_difference.clone(),
        finite_difference: fine.finite_difference.clone(),
    };
    (pair.relative_error(), pair.cosine())
}

/// Judges one group. `explicit` tolerances are used as they are; default ones are widened to
/// three times the measured noise, and a group too noisy to resolve is inconclusive, because
/// failing a correct gradient on noise teaches users to ignore the check.
fn verdict(
    report: &GroupReport,
    (noise, noise_cosine): (f64, f64),
    (tolerance, min_cosine): (f64, f64),
    explicit: bool,
) -> Verdict {
    let (e, c) = (report.relative_error(), report.cosine());
    if report.finite_difference.iter().all(|v| *v == 0.0) {
        return Verdict::Ok;
    }
    let (tolerance, min_cosine) = if explicit {
        (tolerance, min_cosine)
    } else {
        if noise.is_nan() || noise > MAX_RESOLVABLE_NOISE {
            return Verdict::Inconclusive;
        }
        (
            tolerance.max(3.0 * noise),
            min_cosine.min(1.0 - 3.0 * (1.0 - noise_cosine)),
        )
    };
    if e <= tolerance && c >= min_cosine {
        Verdict::Ok
    } else {
        Verdict::Fail
    }
}

fn print(report: &GroupReport, noise: (f64, f64), verdict: Verdict) {
    println!(
        "  {:<20} {:>4} inputs   relative error {:>9.2e}   cosine {:>9.6}   noise {:>8.2e}   {}",
        report.group.name(),
        report.adjoint.len(),
        report.relative_error(),
        report.cosine(),
        noise.0,
        match verdict {
            Verdict::Ok => "ok",
            Verdict::Fail => "FAIL",
            Verdict::Inconclusive => "inconclusive",
        }
    );
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let model = super::load_model(&args.model)?;
    let gpu = super::open_gpu()?;
    // One layout for the state set-up and both checks (the step and twice the step).
    let compiled = Arc::new(Compiled::new(&model));
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
    let check = |setup: &GradcheckSetup| match args.reference {
        Reference::Device => {
            gradcheck_with_compiled(gpu.clone(), &model, compiled.clone(), setup, &groups)
        }
        Reference::Twin => gradcheck_against_twin_with_compiled(
            gpu.clone(),
            &model,
            compiled.clone(),
            setup,
            &groups,
            setup.relative_step,
        ),
    };
    let reports = check(&setup)?;
    let mut coarse_setup = setup.clone();
    coarse_setup.relative_step *= 2.0;
    let coarse = check(&coarse_setup)?;
    let explicit = args.tolerance.is_some() || args.min_cosine.is_some();
    let (mut failed, mut inconclusive) = (0, 0);
    for (r, c) in reports.iter().zip(&coarse) {
        let noise = noise(r, c);
        let v = verdict(r, noise, (tolerance, min_cosine), explicit);
        print(r, noise, v);
        failed += usize::from(v == Verdict::Fail);
        inconclusive += usize::from(v == Verdict::Inconclusive);
    }
    println!(
        "noise: how much the finite differences at step {} and {} differ (relative)",
        setup.relative_step, coarse_setup.relative_step
    );
    if inconclusive > 0 {
        println!(
            "inconclusive: {inconclusive} group(s) not checked. Their finite differences change by \
             more than {:.0}% when the step doubles: the rollout is rough at the scale of the step \
             (perturbations switch contacts and clamps on and off, and in f32 the device also \
             rounds), so no difference quotient resolves the derivative there. Check those groups \
             on a shorter rollout (fewer --steps) or against the f64 twin (--reference twin).",
            MAX_RESOLVABLE_NOISE * 100.0
        );
    }
    if failed > 0 {
        println!(
            "note: rollouts with many contacts are rough at the scale of the difference step \
             (each perturbation changes which contacts and clamps are active); compare with \
             --reference twin --step-size 1e-7, or fewer --steps"
        );
        if explicit {
            anyhow::bail!(
                "gradient check failed: relative error above {tolerance:e} or cosine below \
                 {min_cosine}"
            );
        }
        anyhow::bail!(
            "gradient check failed: relative error above {tolerance:e} (or three times the \
             noise) or cosine below {min_cosine} (or as widened by the noise)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(adjoint: &[f64], finite_difference: &[f64]) -> GroupReport {
        GroupReport {
            group: Group::Params,
            adjoint: adjoint.to_vec(),
            finite_difference: finite_difference.to_vec(),
        }
    }

    #[test]
    fn default_tolerance_widens_to_the_noise_and_still_fails_a_wrong_gradient() {
        let defaults = (1e-2, 0.99);
        // 2% off, with differences that move by 2% when the step doubles: within the noise.
        let noisy = report(&[1.02, 1.0], &[1.0, 1.0]);
        assert_eq!(
            verdict(&noisy, (0.02, 0.9998), defaults, false),
            Verdict::Ok
        );
        // The same error with quiet differences is a failure.
        assert_eq!(verdict(&noisy, (1e-4, 1.0), defaults, false), Verdict::Fail);
        // A gradient 30% off fails even at 2% noise.
        let wrong = report(&[1.3, 0.7], &[1.0, 1.0]);
        assert_eq!(
            verdict(&wrong, (0.02, 0.9998), defaults, false),
            Verdict::Fail
        );
    }

    #[test]
    fn differences_too_noisy_to_resolve_are_inconclusive_unless_tolerances_are_given() {
        let r = report(&[1.5, 0.5], &[1.0, 1.0]);
        assert_eq!(
            verdict(&r, (0.3, 0.95), (1e-2, 0.99), false),
            Verdict::Inconclusive
        );
        assert_eq!(
            verdict(&r, (f64::NAN, f64::NAN), (1e-2, 0.99), false),
            Verdict::Inconclusive
        );
        assert_eq!(verdict(&r, (0.3, 0.95), (1e-2, 0.99), true), Verdict::Fail);
        let close = report(&[1.001, 1.0], &[1.0, 1.0]);
        assert_eq!(
            verdict(&close, (0.3, 0.95), (1e-2, 0.99), true),
            Verdict::Ok
        );
    }
}
