//! Losses assembled from built-in terms, evaluated on the GPU after every step
//! (`shaders/loss.wgsl`), with a CPU twin used by the tests.
//!
//! A loss is a weighted sum of terms; each term applies at every step (on the state after the
//! step), at the final step, or both. Divide a per-step term's weight by the horizon for a
//! time average, as the paper does.

use crate::error::{Error, Result};
use crate::layout::BODY_STATE_LEN;
use crate::model::Model;
use crate::twin::Instance;
use crate::twin::math::{Real, V3};

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

    /// Packs the terms into the 12-word records of `shaders/loss.wgsl`.
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
            };
            let index = if kind == 4 {
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
            let floats = [
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

/// CPU twin of the loss kernels on one instance: the value of the terms at `step` of a rollout
/// of `horizon` steps, and (when `adj` is given) their gradient added into `adj`.
pub fn loss_twin<T: Real>(
    packed: &[u32],
    n_terms: usize,
    inst: &Instance<'_, T>,
    step: u32,
    horizon: u32,
    mut adj: Option<&mut crate::twin::Adjoint<T>>,
) -> T {
    let f = |t: usize, k: usize| T::of(f32::from_bits(packed[t * 12 + k]));
    let mut total = T::zero();
    for t in 0..n_terms {
        let w = packed[t * 12 + 3];
        let every = if w & 1 != 0 { T::one() } else { T::zero() };
        let last = if w & 2 != 0 && step == horizon {
            T::one()
        } else {
            T::zero()
        };
        let weight = f(t, 4) * (every + last);
        let kind = packed[t * 12];
        let index = packed[t * 12 + 1];
        let target = V3::new(f(t, 5), f(t, 6), f(t, 7));
        let mask = V3::new(f(t, 9), f(t, 10), f(t, 11));
        let slot = index * BODY_STATE_LEN as u32;
        let vslot = match kind {
            1 | 6 => slot + 7,
            2 => slot + 10,
            _ => slot,
        };
        let two = T::of(2.0);
        match kind {
            0..=2 => {
                let v = inst.state_vec3(vslot);
                let d = v - target;
                total += weight * mask.mul_elem(d).dot(d);
                if let Some(a) = adj.as_deref_mut() {
                    a.state_add_vec3(vslot, mask.mul_elem(d) * (two * weight));
                }
            }
            3 => {
                let q = inst.body_orientation(index);
                let tq = [f(t, 5), f(t, 6), f(t, 7), f(t, 8)];
                let al = q.v.x * tq[0] + q.v.y * tq[1] + q.v.z * tq[2] + q.w * tq[3];
                total += weight * (T::one() - al * al);
                if let Some(a) = adj.as_deref_mut() {
                    let g = -two * weight * al;
                    for (k, v) in tq.iter().enumerate() {
                        a.state[(slot + 3) as usize + k] += g * *v;
                    }
                }
            }
            4 => {
                let axis = packed[t * 12 + 2];
                let c = crate::twin::joint_axis(inst, index, axis).coordinate;
                let e = c - target.x;
                total += weight * e * e;
                if let Some(a) = adj.as_deref_mut() {
                    let zero = crate::twin::solver_zero_jacobian();
                    crate::twin::joint_axis_adjoint(inst, a, index, axis, zero, two * weight * e);
                }
            }
            _ => {
                let v = inst.state_vec3(vslot);
                total += weight * mask.dot(v);
                if let Some(a) = adj.as_deref_mut() {
                    a.state_add_vec3(vslot, mask * weight);
                }
            }
        }
    }
    total
}
