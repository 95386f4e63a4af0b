//! # backdrive
//!
//! Differentiable, GPU-batched rigid-body robot simulation: WGSL compute kernels step thousands
//! of independent instances of a robot model at once, without data-dependent branches.
//!
//! Data flow: [`model::Model`] (Rust builder or TOML file) -> [`layout::Compiled`] (flat arrays
//! shared by kernels and CPU twins) -> [`Simulator`] (GPU buffers, `step_forward` dispatches)
//! -> bulk reads of body states. [`twin`] holds a CPU twin of every kernel stage, generic over
//! `f32` and `f64`, used to test the GPU results.

pub mod engine;
pub mod error;
pub mod grad;
pub mod io;
pub mod learn;
pub mod model;
pub mod reproduce;

// The modules' paths before the folders, until every use names the folder.
pub use engine::{buffers, finite_check, gpu, layout, shaders, sim, twin};
pub use grad::{gradcheck, jacobian, loss, measure, rollout};
pub use io::{files, mjcf, models, plot, progress, viewer};
pub use learn::{cmaes, gait, optim, policy, random, tasks, train};
pub use reproduce::table1;

pub use error::{Error, Result};
pub use model::Model;
pub use sim::{BodyState, Simulator};
