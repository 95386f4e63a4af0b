//! Gradients: checkpointed rollouts with their adjoint, losses, per-step Jacobians, gradient
//! checks against finite differences and gradient timings.

pub mod gradcheck;
pub mod jacobian;
pub mod loss;
pub mod measure;
pub mod rollout;
