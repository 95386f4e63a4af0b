//! Gradient training of the quadruped gait task (batch 1, no randomisation, as in
//! `backdrive reproduce quadruped`) with the servos' torque limit and the optimiser's settings
//! overridden: does the learner find fast gaits when the robot can make them?
//!
//! ```text
//! cargo run --release --example quadruped_torque -- --max-force 40 --updates 110
//!     [--gain 30] [--horizon 200] [--truncation STEPS] [--learning-rate 1e-3] [--gradient-decay 0.95]
//! ```
//!
//! The README's quadruped section lists what it measured.

use std::sync::Arc;
use std::time::Instant;

use backdrive::engine::gpu::Gpu;
use backdrive::learn::tasks;
use backdrive::learn::train::{TrainOptions, Trainer};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Every servo's torque limit, Nm (the shipped robot: 4).
    #[arg(long, default_value_t = 4.0)]
    max_force: f32,
    /// Every servo's gain, 1/s (the shipped robot: 30).
    #[arg(long)]
    gain: Option<f32>,
    /// Episode length in steps of 10 ms (the task's: 200; the paper's: 1000).
    #[arg(long)]
    horizon: Option<u32>,
    /// Cut the gradient flowing back through the episode every this many steps.
    #[arg(long)]
    truncation: Option<u32>,
    /// Updates (one rollout of one robot each).
    #[arg(long, default_value_t = 100)]
    updates: u32,
    /// Adam's learning rate (the task's: 1e-3).
    #[arg(long)]
    learning_rate: Option<f32>,
    /// Per-step gradient decay (the task's: 0.95).
    #[arg(long)]
    gradient_decay: Option<f32>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut task = tasks::builtin("quadruped")?;
    task.randomization = Default::default();
    for actuator in &mut task.model.actuators {
        actuator.max_force = args.max_force;
        if let Some(gain) = args.gain {
            actuator.gain = gain;
        }
    }
    if let Some(horizon) = args.horizon {
        // The loss is the average forward speed over the episode.
        task.horizon = horizon;
        task.loss.terms[0].quantity = backdrive::grad::loss::Quantity::Velocity {
            direction: [-1.0 / horizon as f32, 0.0, 0.0],
        };
    }
    task.truncation = args.truncation;
    if let Some(lr) = args.learning_rate {
        task.optimizer.learning_rate = lr;
    }
    if let Some(decay) = args.gradient_decay {
        task.gradient_decay = decay;
    }
    let gpu = Arc::new(Gpu::from_env()?);
    let mut trainer = Trainer::new(
        gpu,
        task,
        TrainOptions {
            instances: 1,
            seed: args.seed,
            max_chunk: None,
        },
    )?;
    let started = Instant::now();
    let mut best = f32::MIN;
    for update in 1..=args.updates {
        let stats = trainer.step()?;
        best = best.max(-stats.loss);
        if update % 10 == 0 || update == 1 {
            println!(
                "update {update:4}: speed {:+.3} m/s (best {best:+.3}), gradient norm {:.3e}, {:.0} s",
                -stats.loss,
                stats.grad_norm,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
