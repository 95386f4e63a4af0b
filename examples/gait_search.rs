//! How fast can a robot go at all? CMA-ES over open-loop periodic gaits (per servo an offset
//! and the sine and cosine amplitudes of its command, [`backdrive::learn::gait`]), one generation per
//! batched rollout, optionally with the servos' torque or speed limit overridden.
//!
//! ```text
//! cargo run --release --example gait_search -- [--model quadruped] [--max-force NM]
//!     [--max-velocity RAD_S] [--generations 25] [--population 64] [--seconds 2] [--frequency 1.5]
//! ```
//!
//! The README's quadruped section lists what it found for the shipped quadruped at 4, 16 and
//! 40 Nm.

use std::sync::Arc;

use backdrive::engine::gpu::Gpu;
use backdrive::io::models;
use backdrive::learn::gait::{GaitEvaluator, SearchOptions, search};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// A shipped model's name or a model file.
    #[arg(long, default_value = "quadruped")]
    model: String,
    /// The body whose forward speed counts.
    #[arg(long, default_value = "torso")]
    body: String,
    /// Override every actuator's force or torque limit (N or Nm).
    #[arg(long)]
    max_force: Option<f32>,
    /// Override every actuator's speed limit (rad/s or m/s).
    #[arg(long)]
    max_velocity: Option<f32>,
    #[arg(long, default_value_t = 25)]
    generations: u64,
    #[arg(long, default_value_t = 64)]
    population: usize,
    /// Model time per rollout, seconds.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Gait frequency, Hz.
    #[arg(long, default_value_t = 1.5)]
    frequency: f64,
    /// Initial step size of the search (radians of command).
    #[arg(long, default_value_t = 0.2)]
    sigma: f64,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let gpu = Arc::new(Gpu::from_env()?);
    let mut model = models::load(&args.model)?;
    for actuator in &mut model.actuators {
        if let Some(f) = args.max_force {
            actuator.max_force = f;
        }
        if let Some(v) = args.max_velocity {
            actuator.max_velocity = v;
        }
    }
    let mut evaluator = GaitEvaluator::new(
        gpu,
        &model,
        &args.body,
        args.frequency,
        args.seconds,
        args.population,
    )?;
    let limits: Vec<String> = model
        .actuators
        .iter()
        .take(1)
        .map(|a| format!("{} Nm, {} rad/s", a.max_force, a.max_velocity))
        .collect();
    println!(
        "{}: {} gaits per generation, {:.2} s each, servo limits {}",
        model.name,
        args.population,
        evaluator.seconds(),
        limits.join("")
    );
    let start = vec![0.0; evaluator.gait_len()];
    let options = SearchOptions {
        budget: args.generations * args.population as u64,
        population: Some(args.population),
        sigma: args.sigma,
        seed: args.seed,
        time_limit: None,
        target_speed: None,
    };
    let result = search(&mut evaluator, &start, &options, &mut |r| {
        let (evals, speed) = r.history.last().copied().unwrap_or_default();
        println!(
            "generation {:3} ({evals:5} rollouts): best of generation {speed:+.3} m/s, best so far {:+.3} m/s",
            r.generations, r.best_speed
        );
    })?;
    let gait: Vec<String> = result.best.iter().map(|v| format!("{v:.3}")).collect();
    println!(
        "best {:.3} m/s after {} rollouts ({:.0} s): [{}]",
        result.best_speed,
        result.evaluations,
        result.wall_seconds,
        gait.join(", ")
    );
    Ok(())
}
