//! The passive rows of a joint's free axes: spring-damper, dry friction and armature.

use super::UNBOUNDED;
use crate::model::Model;

/// One passive row on a joint's free axis: a compliant velocity row (its constraint-force
/// mixing `cfm` absolute, not scaled by the row's effective mass) whose bias is
/// `coordinate_gain * (coordinate - coordinate_target) - start_velocity_weight * (J v at the
/// step's start)` and whose impulse is clamped to `+-bound`. The solver's fixed point is then
/// the impulse `lambda = -(J v' + bias) / cfm` at the end-of-step velocity `v'`:
///
/// - spring-damper (`damping` c, `stiffness` k): `cfm = 1 / (dt (c + dt k))`,
///   `coordinate_gain = k / (c + dt k)`, the target `springref - reference`: the impulse is
///   `dt (k (target - q - dt J v') - c J v')`, implicit Euler, stable at any step;
/// - dry friction: `cfm = 0`, bias 0, bound `frictionloss * dt`;
/// - armature `I`: `cfm = 1 / I`, weight 1: the impulse is `-I (J v' - J v_start)`, the
///   generalized force of a rotor of inertia `I` turning with the joint, so the joint's
///   effective inertia grows by `I` as MuJoCo's armature (added to the joint-space mass
///   matrix's diagonal) makes it. The row is written before gravity and the force actuators
///   act, so that their impulses are shared with the rotor too;
/// - armature with a spring-damper: one row, their sum: `cfm = 1 / (dt (c + dt k) + I)`,
///   weight `I / (dt (c + dt k) + I)`, `coordinate_gain = dt k / (dt (c + dt k) + I)`.
///
/// A joint axis's armature row and its limit row are solved together, exactly, as one block
/// (`solve_axis_block` in `shaders/solver.wgsl`; [`ROW_BLOCK_FOLLOWER`](super::ROW_BLOCK_FOLLOWER)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PassiveRow {
    /// Joint index.
    pub joint: u32,
    /// Joint-frame axis (0..6).
    pub axis: u32,
    /// 1 for armature rows, else 0.
    pub start_velocity_weight: f32,
    /// Absolute constraint-force mixing (velocity per impulse).
    pub cfm: f32,
    /// Bias per unit of coordinate error, 1/s.
    pub coordinate_gain: f32,
    /// Coordinate the spring pulls toward, measured from the initial pose.
    pub coordinate_target: f32,
    /// Impulse bound.
    pub bound: f32,
}

/// The passive rows of a joint, on each free axis: spring-damper and armature (one row), dry
/// friction (only those whose coefficient is not zero).
pub fn passive_rows(model: &Model, joint: usize) -> Vec<PassiveRow> {
    let j = &model.joints[joint];
    let dt = model.settings.dt;
    let mut rows = Vec::new();
    for &axis in j.free_axes() {
        let row =
            |start_velocity_weight, cfm, coordinate_gain, coordinate_target, bound| PassiveRow {
                joint: joint as u32,
                axis,
                start_velocity_weight,
                cfm,
                coordinate_gain,
                coordinate_target,
                bound,
            };
        let damper = j.damping + dt * j.stiffness;
        if j.armature > 0.0 {
            // The rotor and the spring-damper in one row: two unbounded compliant rows on one
            // axis add their impulses, so their sum is the row with the summed inverse
            // compliances, and projected Gauss-Seidel need not converge between two rows with
            // one Jacobian.
            let resistance = dt * damper + j.armature;
            rows.push(row(
                j.armature / resistance,
                1.0 / resistance,
                dt * j.stiffness / resistance,
                j.springref - j.reference,
                UNBOUNDED,
            ));
        } else if damper > 0.0 {
            rows.push(row(
                0.0,
                1.0 / (dt * damper),
                j.stiffness / damper,
                j.springref - j.reference,
                UNBOUNDED,
            ));
        }
        if j.frictionloss > 0.0 {
            rows.push(row(0.0, 0.0, 0.0, 0.0, j.frictionloss * dt));
        }
    }
    rows
}
