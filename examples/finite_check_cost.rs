//! Cost of the on-device non-finite state check: robot-steps per second of the same batch
//! without and with the check, at 1 and at 10 steps per dispatch, best of 3 interleaved runs.
//!
//! `cargo run --release --example finite_check_cost -- [MODEL] [INSTANCES] [STEPS]`

use std::sync::Arc;
use std::time::Instant;

use backdrive::engine::gpu::Gpu;
use backdrive::{Simulator, io::models};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = models::load(args.first().map_or("quadruped", String::as_str))?;
    let n: usize = args.get(1).map_or(Ok(128), |s| s.parse())?;
    let steps: u32 = args.get(2).map_or(Ok(200), |s| s.parse())?;
    let gpu = Arc::new(Gpu::new()?);
    println!("adapter: {}", gpu.describe());
    let cases = [(false, 10), (true, 10), (false, 1), (true, 1)];
    let mut best = [f64::MAX; 4];
    for _ in 0..3 {
        for (k, &(check, per)) in cases.iter().enumerate() {
            let mut sim = Simulator::new(gpu.clone(), &model, n)?;
            if check {
                sim.enable_finite_check()?;
            }
            sim.set_steps_per_dispatch(per);
            sim.step(per)?; // warm-up: pipeline compilation
            let t = Instant::now();
            sim.step(steps)?;
            best[k] = best[k].min(t.elapsed().as_secs_f64());
        }
    }
    for (k, &(check, per)) in cases.iter().enumerate() {
        println!(
            "{:<8} {per:>2} step(s)/dispatch: {:>12.0} robot-steps/s",
            if check { "check" } else { "no check" },
            f64::from(steps) * n as f64 / best[k]
        );
    }
    println!(
        "throughput with / without the check: {:.3} at 10 steps per dispatch, {:.3} at 1",
        best[0] / best[1],
        best[2] / best[3]
    );
    Ok(())
}
