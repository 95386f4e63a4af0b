//! What "fallen" is for a robot: its torso's height and tilt standing still (zero commands),
//! under the best open-loop gait CMA-ES finds (the `gait_search` example's search), and under
//! gaits that make it fall, so that a task's `[termination]` range can be chosen from
//! measurements rather than guesses.
//!
//! ```text
//! cargo run --release --example fall_probe -- [--model quadruped] [--body torso]
//!     [--seconds 10] [--generations 7] [--population 12] [--frequency 1.5] [--seed 7]
//! ```
//!
//! Prints, per phase, the body's height z (min, mean, max) and its upright cosine (the world z
//! component of its z axis, as `[termination] min_upright` measures it).

use std::sync::Arc;

use backdrive::engine::gpu::Gpu;
use backdrive::engine::sim::Simulator;
use backdrive::io::models;
use backdrive::learn::gait::{GaitEvaluator, SearchOptions, gait_command, search};
use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "quadruped")]
    model: String,
    #[arg(long, default_value = "torso")]
    body: String,
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    #[arg(long, default_value_t = 7)]
    generations: u64,
    #[arg(long, default_value_t = 12)]
    population: usize,
    #[arg(long, default_value_t = 1.5)]
    frequency: f64,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// Height and upright cosine of a body state.
fn height_upright(position: [f32; 3], q: [f32; 4]) -> (f64, f64) {
    let upright = 1.0 - 2.0 * (q[0] * q[0] + q[1] * q[1]);
    (f64::from(position[2]), f64::from(upright))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let gpu = Arc::new(Gpu::from_env()?);
    let model = models::load(&args.model)?;
    let body = model
        .body_index(&args.body)
        .ok_or_else(|| anyhow::anyhow!("no body '{}'", args.body))?;
    let mut evaluator = GaitEvaluator::new(
        gpu.clone(),
        &model,
        &args.body,
        args.frequency,
        args.seconds,
        args.population,
    )?;
    let start = vec![0.0; evaluator.gait_len()];
    let options = SearchOptions {
        budget: args.generations * args.population as u64,
        population: Some(args.population),
        sigma: 0.2,
        seed: args.seed,
        time_limit: None,
        target_speed: None,
    };
    let result = search(&mut evaluator, &start, &options, &mut |_| {})?;
    println!(
        "CMA-ES best {:.4} m/s after {} rollouts",
        result.best_speed, result.evaluations
    );
    let n_act = model.actuators.len();
    // Gaits traced: standing (zero), the best, and the best scaled up (larger swings, which
    // tip the robot over).
    let gaits: Vec<(String, Vec<f64>)> = vec![
        ("zero commands".into(), vec![0.0; evaluator.gait_len()]),
        ("CMA-ES best".into(), result.best.clone()),
        (
            "best x3".into(),
            result.best.iter().map(|v| v * 3.0).collect(),
        ),
        (
            "best x6".into(),
            result.best.iter().map(|v| v * 6.0).collect(),
        ),
    ];
    let mut sim = Simulator::new(gpu, &model, gaits.len())?;
    let n_bodies = model.bodies.len();
    let dt = f64::from(model.settings.dt);
    let steps = (args.seconds / dt).round() as u32;
    let mut commands = vec![0.0f32; gaits.len() * n_act];
    // Per gait: per second, (min z, sum z, max z, min upright, count, x at the second's end).
    let seconds = (args.seconds.ceil()) as usize;
    let mut stats =
        vec![vec![(f64::MAX, 0.0, f64::MIN, f64::MAX, 0usize, 0.0); seconds]; gaits.len()];
    let start_x: Vec<f64> = sim
        .body_states()?
        .chunks(n_bodies)
        .map(|b| f64::from(b[body].position[0]))
        .collect();
    for k in 0..steps {
        let phase = std::f64::consts::TAU * args.frequency * f64::from(k) * dt;
        for (i, (_, gait)) in gaits.iter().enumerate() {
            for a in 0..n_act {
                commands[i * n_act + a] = gait_command(gait, a, phase) as f32;
            }
        }
        sim.set_commands(&commands)?;
        sim.step(1)?;
        let second = ((f64::from(k) * dt) as usize).min(seconds - 1);
        for (i, b) in sim.body_states()?.chunks(n_bodies).enumerate() {
            let (z, up) = height_upright(b[body].position, b[body].orientation);
            let s = &mut stats[i][second];
            s.0 = s.0.min(z);
            s.1 += z;
            s.2 = s.2.max(z);
            s.3 = s.3.min(up);
            s.4 += 1;
            s.5 = f64::from(b[body].position[0]) - start_x[i];
        }
    }
    let end = sim.body_states()?;
    for (i, (name, _)) in gaits.iter().enumerate() {
        let x = f64::from(end[i * n_bodies + body].position[0]);
        println!(
            "{name}: {:.4} m/s over {} s",
            (x - start_x[i]) / args.seconds,
            args.seconds
        );
        for (s, (lo, sum, hi, up, count, x)) in stats[i].iter().enumerate() {
            println!(
                "  second {s}: z min {lo:.3} mean {:.3} max {hi:.3}, upright min {up:.3}, x {x:+.3} m",
                sum / *count as f64
            );
        }
    }
    Ok(())
}
