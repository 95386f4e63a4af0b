//! Twin of `shaders/joint.wgsl`.

use super::Instance;
use super::math::{Real, V3, select};
use super::solver::{RowJacobian, row_write};
use crate::layout::UNBOUNDED;

/// Mirrors `struct JointAxis`.
#[derive(Clone, Copy, Debug)]
pub struct JointAxis<T> {
    pub jac: RowJacobian<T>,
    pub coordinate: T,
}

pub(crate) fn joint_record<T: Real>(s: &Instance<'_, T>, j: u32) -> u32 {
    s.hdr.off_joint + j * 12
}

pub fn joint_axis<T: Real>(s: &Instance<'_, T>, j: u32, k: u32) -> JointAxis<T> {
    let rec = joint_record(s, j);
    let a = s.model_u32(rec);
    let b = s.model_u32(rec + 1);
    let xa = s.body_position(a);
    let xb = s.body_position(b);
    let qa = s.body_orientation(a);
    let qb = s.body_orientation(b);
    let anchor_slot = s.hdr.p_joint + j * 6;
    let arm_a = qa.rotate(s.param_vec3(anchor_slot));
    let arm_b = qb.rotate(s.param_vec3(anchor_slot + 3));
    let frame_a = qa.mul(s.model_quat(rec + 4));
    let frame_b = qb.mul(s.model_quat(rec + 8));
    let one = |c: u32| select(T::zero(), T::one(), k % 3 == c);
    let unit = V3::new(one(0), one(1), one(2));
    let axis = frame_a.rotate(unit);
    let linear = k < 3;
    let separation = (xb + arm_b) - (xa + arm_a);
    let rotation = frame_a.conj().mul(frame_b).log();
    JointAxis {
        jac: RowJacobian {
            lin_a: select(V3::zero(), -axis, linear),
            ang_a: select(-axis, -arm_a.cross(axis), linear),
            lin_b: select(V3::zero(), axis, linear),
            ang_b: select(axis, arm_b.cross(axis), linear),
        },
        coordinate: select(rotation.dot(unit), separation.dot(axis), linear),
    }
}

pub fn joint_lock_rows_forward<T: Real>(s: &mut Instance<'_, T>) {
    let h = s.hdr;
    let dt = T::of(h.dt);
    for l in 0..h.n_lock {
        let rec = h.off_lock + l * 4;
        let ax = joint_axis(s, s.model_u32(rec), s.model_u32(rec + 1));
        row_write(
            s,
            l,
            ax.jac,
            T::of(h.joint_erp) * ax.coordinate / dt,
            -T::of(UNBOUNDED),
            T::of(UNBOUNDED),
            T::zero(),
            T::of(h.joint_mass_scale),
            T::of(h.joint_cfm_scale),
        );
    }
}

pub fn joint_limit_rows_forward<T: Real>(s: &mut Instance<'_, T>) {
    let h = s.hdr;
    let dt = T::of(h.dt);
    for l in 0..h.n_limit {
        let rec = h.off_limit + l * 4;
        let ax = joint_axis(s, s.model_u32(rec), s.model_u32(rec + 1));
        let lower = s.model_f32(rec + 2);
        let upper = s.model_f32(rec + 3);
        let c = ax.coordinate;
        let at_lower = c - lower < upper - c;
        let sign = select(-T::one(), T::one(), at_lower);
        let gap = select(upper - c, c - lower, at_lower);
        let violated = gap < T::zero();
        let bias = select(gap / dt, T::of(h.joint_erp) * gap / dt, violated);
        row_write(
            s,
            h.row_limit + l,
            ax.jac.scaled(sign),
            bias,
            T::zero(),
            T::of(UNBOUNDED),
            T::zero(),
            select(T::one(), T::of(h.joint_mass_scale), violated),
            select(T::zero(), T::of(h.joint_cfm_scale), violated),
        );
    }
}
