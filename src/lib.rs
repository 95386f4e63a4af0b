//! # backdrive
//!
//! Differentiable, GPU-batched rigid-body robot simulation: WGSL compute kernels step thousands
//! of independent instances of a robot model at once, without data-dependent branches, and a
//! hand-written adjoint kernel per forward kernel returns exact gradients through whole rollouts.
//!
//! The folders follow the data flow:
//!
//! - [`model`]: a [`Model`] from a TOML file or the builder; [`io`] reads MJCF, the shipped
//!   models, and writes files, plots and the viewer.
//! - [`engine`]: the compiled layout (flat records shared by kernels and CPU twins), batch
//!   buffers, the [`Simulator`] and the CPU twin of every kernel stage.
//! - [`grad`]: checkpointed rollouts forward and their adjoint backward ([`Rollout`]), losses
//!   ([`Loss`]), per-step Jacobians and gradient checks.
//! - [`learn`]: policies, optimisers and the [`Trainer`] that reduces gradients and updates the
//!   parameters; CMA-ES and open-loop gaits beside them.
//! - [`reproduce`]: the paper's experiments and Table 1.
//!
//! The types re-exported here are the ones most programs need:
//!
//! ```no_run
//! use backdrive::{Gpu, Model, Simulator};
//! # fn main() -> backdrive::Result<()> {
//! let gpu = std::sync::Arc::new(Gpu::from_env()?);
//! let model = backdrive::io::models::load("quadruped")?;
//! let mut sim = Simulator::new(gpu, &model, 128)?;
//! sim.step(100)?;
//! let states = sim.body_states()?;
//! # let _ = states; Ok(()) }
//! ```

pub mod engine;
pub mod error;
pub mod grad;
pub mod io;
pub mod learn;
pub mod model;
pub mod reproduce;

pub use engine::gpu::Gpu;
pub use engine::sim::{BodyState, Simulator};
pub use error::{Error, Result};
pub use grad::loss::Loss;
pub use grad::rollout::Rollout;
pub use learn::train::Trainer;
pub use model::Model;
