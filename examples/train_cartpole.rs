//! Training a policy from Rust: the cart-pole task, a few iterations, then a look at the loss.
//!
//! Run: `cargo run --release --example train_cartpole`

use std::sync::Arc;

use backdrive::engine::gpu::Gpu;
use backdrive::learn::tasks;
use backdrive::learn::train::{TrainOptions, Trainer};

fn main() -> anyhow::Result<()> {
    let gpu = Arc::new(Gpu::from_env()?);
    println!("adapter: {}", gpu.describe());
    let task = tasks::builtin("cartpole-balance")?;
    let mut trainer = Trainer::new(
        gpu,
        task,
        TrainOptions {
            instances: 8,
            seed: 1,
            max_chunk: None,
        },
    )?;
    println!(
        "policy of {} parameters on {} robots",
        trainer.layout().n_params,
        8
    );
    for _ in 0..20 {
        let s = trainer.step()?;
        println!(
            "iteration {:>3}  loss {:.5}  |grad| {:.4}  {:.2} s",
            s.iteration, s.loss, s.grad_norm, s.seconds
        );
    }
    trainer.save(std::path::Path::new("out/example-cartpole"))?;
    println!("saved out/example-cartpole/checkpoint.bin");
    Ok(())
}
