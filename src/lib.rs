//! # backdrive
//!
//! Differentiable, GPU-batched rigid-body robot simulation: WGSL compute kernels step thousands
//! of independent instances of a robot model at once, without data-dependent branches.
//!
//! Data flow: [`model::Model`] (Rust builder or TOML file) -> [`layout::Compiled`] (flat arrays
//! shared by kernels and CPU twins) -> [`Simulator`] (GPU buffers, `step_forward` dispatches)
//! -> bulk reads of body states. [`twin`] holds a CPU twin of every kernel stage, generic over
//! `f32` and `f64`, used to test the GPU results.

pub mod buffers;
pub mod cmaes;
pub mod error;
pub mod files;
pub mod finite_check;
pub mod gait;
pub mod gpu;
pub mod gradcheck;
pub mod jacobian;
pub mod layout;
pub mod loss;
pub mod measure;
pub mod mjcf;
pub mod model;
pub mod models;
pub mod optim;
pub mod plot;
pub mod policy;
pub mod progress;
pub mod random;
pub mod reproduce;
pub mod rollout;
pub mod shaders;
pub mod sim;
pub mod table1;
pub mod tasks;
pub mod train;
pub mod twin;
pub mod viewer;

pub use error::{Error, Result};
pub use model::Model;
pub use sim::{BodyState, Simulator};
