//! Throughput of the f32 twin: the plain-Rust baseline that `backdrive bench` sets beside the
//! kernel's figures.

use std::time::{Duration, Instant};

use super::Instance;
use crate::engine::layout::Compiled;

/// What [`measure`] measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TwinThroughput {
    /// Threads that stepped instances (one per core, at most one per instance).
    pub threads: usize,
    /// Instance-steps taken over all threads.
    pub robot_steps: u64,
    /// Wall-clock seconds of the stepping (threads started and joined included).
    pub seconds: f64,
    /// Instance-steps per second over all threads.
    pub robot_steps_per_s: f64,
}

/// Steps `n_instances` copies of a model, from its initial state with zero commands, with the
/// f32 twin on every core ([`std::thread::available_parallelism`]), as `backdrive bench` steps
/// the GPU. Each thread steps its share of the instances `steps` times, or stops after the
/// first step that ends past `budget` (it always takes one).
pub fn measure(
    compiled: &Compiled,
    n_instances: usize,
    steps: u32,
    budget: Duration,
) -> TwinThroughput {
    let n_instances = n_instances.max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(n_instances);
    let per_thread = n_instances.div_ceil(threads);
    let mut instances: Vec<Instance<'_, f32>> =
        (0..n_instances).map(|_| Instance::new(compiled)).collect();
    let start = Instant::now();
    let robot_steps = std::thread::scope(|scope| {
        let workers: Vec<_> = instances
            .chunks_mut(per_thread)
            .map(|group| {
                scope.spawn(move || {
                    let mut taken = 0u64;
                    for _ in 0..steps.max(1) {
                        group.iter_mut().for_each(Instance::step);
                        taken += group.len() as u64;
                        if start.elapsed() >= budget {
                            break;
                        }
                    }
                    taken
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or(0))
            .sum::<u64>()
    });
    let seconds = start.elapsed().as_secs_f64().max(1e-9);
    TwinThroughput {
        threads,
        robot_steps,
        seconds,
        robot_steps_per_s: robot_steps as f64 / seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_instance_takes_the_counted_steps() {
        let compiled = Compiled::new(&crate::io::models::builtin("quadruped").unwrap());
        let t = measure(&compiled, 5, 3, Duration::from_secs(60));
        assert_eq!(t.robot_steps, 15);
        assert!(t.threads >= 1 && t.threads <= 5);
        assert!(t.robot_steps_per_s > 0.0 && t.robot_steps_per_s.is_finite());
        let stopped = measure(&compiled, 2, 1000, Duration::ZERO);
        assert_eq!(
            stopped.robot_steps, 2,
            "the budget stops each instance after one step"
        );
    }
}
