//! Losses assembled from built-in terms, evaluated on the GPU after every step
//! (`shaders/loss.wgsl`), with a CPU twin ([`crate::engine::twin::loss`]) used by the tests.
//!
//! A loss is a weighted sum of terms; each term applies at every step (on the state after the
//! step), at the final step, or both. Divide a per-step term's weight by the horizon for a
//! time average, as the paper does.

use crate::error::{Error, Result};
use crate::model::Model;

pub use crate::engine::twin::loss::{loss_step_is_paid, loss_twin, paid_loss_twin};

/// Words per packed loss term: kind, index, axis, when, then eight floats (weight, target xyzw,
/// mask xyz). Emitted into the WGSL prelude as `LOSS_TERM_LEN`.
pub const LOSS_TERM_LEN: usize = 12;

/// When a term applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// On the state after every step.
    EveryStep,
    /// On the final state only.
    Final,
}

/// What a term measures.
#[derive(Clone, Debug, PartialEq)]
pub enum Quantity {
    /// Squared distance of a body's position to a target, per-axis weights in `mask`.
    PositionError { target: [f32; 3], mask: [f32; 3] },
    /// Squared distance of a body's linear velocity to a target.
    VelocityError { target: [f32; 3], mask: [f32; 3] },
    /// Squared distance of a body's angular velocity to a target.
    AngularVelocityError { target: [f32; 3], mask: [f32; 3] },
    /// `1 - (q . target)^2`: zero when the orientation equals `target` (`[x, y, z, w]`).
    OrientationError { target: [f32; 4] },
    /// Squared distance of a joint coordinate (axis 0..6 of the joint frame) to a target.
    JointError { axis: u32, target: f32 },
    /// `direction . position` (e.g. `[-1, 0, 0]` to reward distance travelled along x).
    Position { direction: [f32; 3] },
    /// `direction . velocity`.
    Velocity { direction: [f32; 3] },
    /// 1 while the body's height (world z) is within `[min_height, max_height]`, else 0: a
    /// healthy bonus as reward (Gymnasium's `healthy_reward`). Its gradient is zero wherever
    /// it is defined, so it shapes the reported return, not the policy gradient.
    HealthyHeight { min_height: f32, max_height: f32 },
    /// `sum_a command_a^2` over the step's actuator commands: a control cost (Ant-v5's
    /// `ctrl_cost` with its `ctrl_cost_weight` as the term's weight). The term's body name is
    /// not used. Its gradient flows to the commands (and through them to a policy).
    ControlCost,
}

/// One weighted term on a named body or joint.
#[derive(Clone, Debug, PartialEq)]
pub struct LossTerm {
    /// Body name, or joint name for [`Quantity::JointError`].
    pub target: String,
    /// The measured quantity.
    pub quantity: Quantity,
    /// Weight.
    pub weight: f32,
    /// When it applies.
    pub when: When,
}

/// A weighted sum of terms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Loss {
    /// The terms.
    pub terms: Vec<LossTerm>,
}

impl Loss {
    /// An empty loss (gradients then come only from explicit seeds).
    pub fn new() -> Self {
        Loss::default()
    }

    /// Adds a term.
    pub fn term(mut self, target: &str, quantity: Quantity, weight: f32, when: When) -> Self {
        self.terms.push(LossTerm {
            target: target.to_string(),
            quantity,
            weight,
            when,
        });
        self
    }

    /// Packs the terms into the [`LOSS_TERM_LEN`]-word records of `shaders/loss.wgsl`.
    pub fn pack(&self, model: &Model) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        for (k, t) in self.terms.iter().enumerate() {
            let (kind, axis, target, mask) = match &t.quantity {
                Quantity::PositionError { target, mask } => {
                    (0, 0, [target[0], target[1], target[2], 0.0], *mask)
                }
                Quantity::VelocityError { target, mask } => {
                    (1, 0, [target[0], target[1], target[2], 0.0], *mask)
                }
                Quantity::AngularVelocityError { target, mask } => {
                    (2, 0, [target[0], target[1], target[2], 0.0], *mask)
                }
                Quantity::OrientationError { target } => (3, 0, *target, [0.0; 3]),
                Quantity::JointError { axis, target } => {
                    (4, *axis, [*target, 0.0, 0.0, 0.0], [0.0; 3])
                }
                Quantity::Position { direction } => (5, 0, [0.0; 4], *direction),
                Quantity::Velocity { direction } => (6, 0, [0.0; 4], *direction),
                Quantity::HealthyHeight {
                    min_height,
                    max_height,
                } => (7, 0, [*min_height, *max_height, 0.0, 0.0], [0.0; 3]),
                Quantity::ControlCost => (8, 0, [0.0; 4], [0.0; 3]),
            };
            let index = if kind == 8 {
                0
            } else if kind == 4 {
                if axis >= 6 {
                    return Err(Error::InvalidInput(format!(
                        "loss term {k}: joint axis {axis} out of range 0..6"
                    )));
                }
                model.joint_index(&t.target).ok_or_else(|| {
                    Error::InvalidInput(format!("loss term {k}: unknown joint '{}'", t.target))
                })?
            } else {
                model.body_index(&t.target).ok_or_else(|| {
                    Error::InvalidInput(format!("loss term {k}: unknown body '{}'", t.target))
                })? + 1
            };
            let when = match t.when {
                When::EveryStep => 1,
                When::Final => 2,
            };
            let floats: [f32; LOSS_TERM_LEN - 4] = [
                t.weight, target[0], target[1], target[2], target[3], mask[0], mask[1], mask[2],
            ];
            if floats.iter().any(|v| !v.is_finite()) {
                return Err(Error::InvalidInput(format!(
                    "loss term {k}: non-finite number"
                )));
            }
            out.extend_from_slice(&[kind, index as u32, axis, when]);
            out.extend(floats.iter().map(|f| f.to_bits()));
        }
        if out.is_empty() {
            out.push(0);
        }
        Ok(out)
    }
}
