//! Setup shared by the criterion benches.
#![allow(dead_code)]

use std::sync::Arc;

use backdrive::engine::gpu::Gpu;
use backdrive::grad::loss::{Loss, Quantity, When};

/// The device, or `None` with a note naming the benchmarks skipped (a machine without any
/// adapter still runs the CPU benchmarks).
pub fn gpu_or_skip(what: &str) -> Option<Arc<Gpu>> {
    match Gpu::from_env() {
        Ok(gpu) => Some(Arc::new(gpu)),
        Err(e) => {
            eprintln!("skipping the {what}: {e}");
            None
        }
    }
}

/// The loss the GPU benches differentiate: the torso's final x.
pub fn torso_final_x() -> Loss {
    Loss::new().term(
        "torso",
        Quantity::Position {
            direction: [1.0, 0.0, 0.0],
        },
        1.0,
        When::Final,
    )
}
