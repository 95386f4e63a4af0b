//! Twin of `shaders/joint.wgsl`.

use super::Instance;
use super::math::{Real, V3, select};
use super::solver::{RowJacobian, row_write};
use crate::engine::layout::UNBOUNDED;

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
    let frame_a = qa.compose(s.model_quat(rec + 4));
    let frame_b = qb.compose(s.model_quat(rec + 8));
    let one = |c: u32| select(T::zero(), T::one(), k % 3 == c);
    let unit = V3::new(one(0), one(1), one(2));
    let axis = frame_a.rotate(unit);
    let linear = k < 3;
    let separation = (xb + arm_b) - (xa + arm_a);
    let relative = frame_a.conj().compose(frame_b);
    let hinge = s.model_u32(rec + 2) == 1;
    JointAxis {
        jac: RowJacobian {
            lin_a: select(V3::zero(), -axis, linear),
            ang_a: select(-axis, -arm_a.cross(axis), linear),
            lin_b: select(V3::zero(), axis, linear),
            ang_b: select(axis, arm_b.cross(axis), linear),
        },
        coordinate: select(
            angular_coordinate(frame_a, frame_b, relative, unit, axis, k, hinge),
            separation.dot(axis),
            linear,
        ),
    }
}

/// Rotation coordinate of axis `k` (3..6). Generic joints use the relative rotation vector.
/// A hinge may turn any amount about its axis, where the rotation vector would mix its locked
/// axes and jump at half a turn, so it uses the twist angle about the axis and, for the locked
/// axes, the misalignment `(x_a cross x_b) . axis_k` of the two frames' hinge axes.
fn angular_coordinate<T: Real>(
    frame_a: super::math::Q<T>,
    frame_b: super::math::Q<T>,
    relative: super::math::Q<T>,
    unit: V3<T>,
    axis: V3<T>,
    k: u32,
    hinge: bool,
) -> T {
    let generic = relative.log().dot(unit);
    let sign = select(T::one(), -T::one(), relative.w < T::zero());
    let two = T::of(2.0);
    let twist = two * (sign * relative.v.x).atan2(sign * relative.w);
    let x = V3::new(T::one(), T::zero(), T::zero());
    let swing = frame_a.rotate(x).cross(frame_b.rotate(x)).dot(axis);
    select(generic, select(swing, twist, k == 3), hinge)
}

/// A lock's softness `(mass scale, CFM scale, ERP)`: its record's own where
/// `settings.lock_frequency` set it, else the header's joint softness (`lock_softness` in
/// `shaders/joint.wgsl`).
fn lock_softness<T: Real>(s: &Instance<'_, T>, rec: u32) -> (T, T, T) {
    let h = s.hdr;
    let own = s.model_u32(rec + 2) != 0;
    let cfm = s.model_f32(rec + 3);
    (
        select(T::of(h.joint_mass_scale), T::one() / (T::one() + cfm), own),
        select(T::of(h.joint_cfm_scale), cfm, own),
        select(T::of(h.joint_erp), s.model_f32(rec + 2), own),
    )
}

pub fn joint_lock_rows_forward<T: Real>(s: &mut Instance<'_, T>) {
    let h = s.hdr;
    let dt = T::of(h.dt);
    for l in 0..h.n_lock {
        let rec = h.off_lock + l * 4;
        let ax = joint_axis(s, s.model_u32(rec), s.model_u32(rec + 1));
        let (mass_scale, cfm_scale, erp) = lock_softness(s, rec);
        row_write(
            s,
            l,
            ax.jac,
            erp * ax.coordinate / dt,
            -T::of(UNBOUNDED),
            T::of(UNBOUNDED),
            T::zero(),
            mass_scale,
            cfm_scale,
        );
    }
}

/// MuJoCo's impedance `d(x)` of a violation of depth `x >= 0` and its derivative `d'(x)`, from
/// the impedance record at `rec` (`layout::impedance_record`: `[k, b, d0, dmax, width,
/// midpoint, power]`). Mirrors `impedance` in `shaders/joint.wgsl`.
pub(crate) fn impedance<T: Real>(s: &Instance<'_, T>, rec: u32, depth: T) -> (T, T) {
    let (d0, dmax) = (s.model_f32(rec + 2), s.model_f32(rec + 3));
    let (width, mid, power) = (
        s.model_f32(rec + 4),
        s.model_f32(rec + 5),
        s.model_f32(rec + 6),
    );
    let one = T::one();
    let x = depth.max(T::zero());
    // A zero width is reached at once (the clamp keeps the ratio finite; the select drops it),
    // and the power's bases stay off 0, where the kernel's pow is undefined.
    let inside = x < width;
    let w = width.max(T::of(1.0e-30));
    let u = (x / w).min(one);
    let lower = u <= mid;
    let p1 = power - one;
    let below = u.max(T::of(1.0e-30));
    let above = (one - u).max(T::of(1.0e-30));
    let y_low = below.powf(power) / mid.powf(p1);
    let y_high = one - above.powf(power) / (one - mid).powf(p1);
    let dy_low = power * below.powf(p1) / mid.powf(p1);
    let dy_high = power * above.powf(p1) / (one - mid).powf(p1);
    let y = select(select(y_high, y_low, lower), one, !inside);
    let dy = select(select(dy_high, dy_low, lower), T::zero(), !inside);
    (d0 + y * (dmax - d0), dy * (dmax - d0) / w)
}

/// A violated limit row in MuJoCo's impedance model: `(mass scale, CFM scale, bias)` for a row
/// of gap `gap < 0` and start-of-step speed `speed`, from the impedance record at `rec`.
/// Converged alone, the row ends the step at `J v' = (1 - d)(u + h a0) - d bias`; MuJoCo's
/// `J v' = u + h ((1 - d) a0 + d (-b u - k d r))` is that with the row's share `s = K / (K +
/// cfm) = d` (cfm scale `(1 - d) / d`) and `bias = h d k r - (1 - h b) u`.
fn impedance_row<T: Real>(s: &Instance<'_, T>, rec: u32, gap: T, speed: T, dt: T) -> (T, T, T) {
    let (d, _) = impedance(s, rec, -gap);
    let (k, b) = (s.model_f32(rec), s.model_f32(rec + 1));
    (
        d,
        (T::one() - d) / d,
        dt * d * k * gap - (T::one() - dt * b) * speed,
    )
}

/// One-sided row on the nearer bound, written so that lambda >= 0 pushes back inside. With
/// the soft row (the default) it corrects with the ERP outside the limit and is speculative
/// inside (it only stops the coordinate from crossing the bound within this step); with
/// MuJoCo's impedance model (`Settings::limit_impedance`) it acts only while violated, as
/// MuJoCo's does, and its impulse cannot leave 0 inside (a bias of `UNBOUNDED`). Written at
/// the step's start: the impedance model needs the speed before this step's forces.
pub fn joint_limit_rows_forward<T: Real>(s: &mut Instance<'_, T>) {
    let h = s.hdr;
    let dt = T::of(h.dt);
    let mujoco = h.impedance_rows & crate::engine::layout::IMPEDANCE_LIMITS != 0;
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
        let jac = ax.jac.scaled(sign);
        let r = h.row_limit + l;
        let (mut mass_scale, mut cfm_scale) = (T::of(h.limit_mass_scale), T::of(h.limit_cfm_scale));
        let mut bias = select(gap / dt, T::of(h.limit_erp) * gap / dt, violated);
        if mujoco {
            let [a, b, _] = super::solver::row_bodies(s, r);
            let speed = jacobian_speed(s, jac, a, b);
            let (ms, cs, b_imp) = impedance_row(s, h.off_impedance, gap, speed, dt);
            mass_scale = ms;
            cfm_scale = cs;
            bias = select(T::of(UNBOUNDED), b_imp, violated);
        }
        row_write(
            s,
            r,
            jac,
            bias,
            T::zero(),
            T::of(UNBOUNDED),
            T::zero(),
            mass_scale,
            cfm_scale,
        );
    }
}

/// Adjoint of [`joint_axis`]: accumulates into both bodies' positions and orientations and into
/// the joint's anchor parameters.
pub fn joint_axis_adjoint<T: Real>(
    s: &Instance<'_, T>,
    adj: &mut super::Adjoint<T>,
    j: u32,
    k: u32,
    d_jac: RowJacobian<T>,
    d_coordinate: T,
) {
    use super::math::Q;
    let rec = joint_record(s, j);
    let a = s.model_u32(rec);
    let b = s.model_u32(rec + 1);
    let xa = s.body_position(a);
    let xb = s.body_position(b);
    let qa = s.body_orientation(a);
    let qb = s.body_orientation(b);
    let anchor_slot = s.hdr.p_joint + j * 6;
    let anchor_a = s.param_vec3(anchor_slot);
    let anchor_b = s.param_vec3(anchor_slot + 3);
    let arm_a = qa.rotate(anchor_a);
    let arm_b = qb.rotate(anchor_b);
    let frame_local_a = s.model_quat(rec + 4);
    let frame_local_b = s.model_quat(rec + 8);
    let frame_a = qa.compose(frame_local_a);
    let frame_b = qb.compose(frame_local_b);
    let one = |c: u32| select(T::zero(), T::one(), k % 3 == c);
    let unit = V3::new(one(0), one(1), one(2));
    let axis = frame_a.rotate(unit);
    let lin = select(T::zero(), T::one(), k < 3);
    let ang = T::one() - lin;
    let separation = (xb + arm_b) - (xa + arm_a);
    let relative = frame_a.conj().compose(frame_b);
    let hinge = s.model_u32(rec + 2) == 1;
    let x = V3::new(T::one(), T::zero(), T::zero());
    let hinge_a = frame_a.rotate(x);
    let hinge_b = frame_b.rotate(x);
    // Which angular coordinate the forward used (see `angular_coordinate`).
    let d_angular = d_coordinate * ang;
    let use_log = select(T::one(), T::zero(), hinge);
    let use_twist = select(T::zero(), T::one(), hinge && k == 3);
    let use_swing = select(T::zero(), T::one(), hinge && k != 3);
    let r2 = relative.v.x * relative.v.x + relative.w * relative.w;
    let two = T::of(2.0);
    let d_twist_vx = d_angular * use_twist * two * relative.w / r2;
    let d_twist_w = -d_angular * use_twist * two * relative.v.x / r2;
    let d_swing = d_angular * use_swing;

    // Linear axis: lin_a = -axis, ang_a = -(arm_a x axis), lin_b = axis, ang_b = arm_b x axis,
    // coordinate = separation . axis. Angular axis: ang_a = -axis, ang_b = axis,
    // coordinate = log(relative) . unit.
    let d_axis = (d_jac.lin_b - d_jac.lin_a - d_jac.ang_a.cross(arm_a)
        + d_jac.ang_b.cross(arm_b)
        + separation * d_coordinate)
        * lin
        + (d_jac.ang_b - d_jac.ang_a) * ang
        + hinge_a.cross(hinge_b) * d_swing;
    let d_arm_a_jac = -axis.cross(d_jac.ang_a) * lin;
    let d_arm_b_jac = axis.cross(d_jac.ang_b) * lin;
    let d_separation = axis * (d_coordinate * lin);
    let d_rotation = unit * (d_angular * use_log);

    let d_arm_a = d_arm_a_jac - d_separation;
    let d_arm_b = d_arm_b_jac + d_separation;
    let d_relative = Q::log_adjoint(relative, d_rotation)
        .plus(Q::new(V3::new(d_twist_vx, T::zero(), T::zero()), d_twist_w));
    let (d_frame_a_conj, d_frame_b) = Q::mul_adjoint(frame_a.conj(), frame_b, d_relative);
    let (d_frame_a_axis, _) = Q::rotate_adjoint(frame_a, unit, d_axis);
    // swing = (hinge_a x hinge_b) . axis
    let (d_frame_a_hinge, _) = Q::rotate_adjoint(frame_a, x, hinge_b.cross(axis) * d_swing);
    let (d_frame_b_hinge, _) = Q::rotate_adjoint(frame_b, x, axis.cross(hinge_a) * d_swing);
    let d_frame_a = d_frame_a_conj
        .conj()
        .plus(d_frame_a_axis)
        .plus(d_frame_a_hinge);
    let d_frame_b = d_frame_b.plus(d_frame_b_hinge);
    let (dqa_frame, _) = Q::mul_adjoint(qa, frame_local_a, d_frame_a);
    let (dqb_frame, _) = Q::mul_adjoint(qb, frame_local_b, d_frame_b);
    let (dqa_arm, d_anchor_a) = Q::rotate_adjoint(qa, anchor_a, d_arm_a);
    let (dqb_arm, d_anchor_b) = Q::rotate_adjoint(qb, anchor_b, d_arm_b);
    let sa = Instance::<T>::body_slot(a);
    let sb = Instance::<T>::body_slot(b);
    adj.state_add_vec3(sa, -d_separation);
    adj.state_add_vec3(sb, d_separation);
    adj.state_add_quat(sa + 3, dqa_frame.plus(dqa_arm));
    adj.state_add_quat(sb + 3, dqb_frame.plus(dqb_arm));
    adj.param_add_vec3(anchor_slot, d_anchor_a);
    adj.param_add_vec3(anchor_slot + 3, d_anchor_b);
}

pub fn joint_lock_rows_adjoint<T: Real>(s: &mut Instance<'_, T>, adj: &mut super::Adjoint<T>) {
    use super::solver::row_write_adjoint;
    let h = s.hdr;
    let dt = T::of(h.dt);
    for l in (0..h.n_lock).rev() {
        let rec = h.off_lock + l * 4;
        let (j, k) = (s.model_u32(rec), s.model_u32(rec + 1));
        let ax = joint_axis(s, j, k);
        let (mass_scale, cfm_scale, erp) = lock_softness(s, rec);
        let (d_jac, [d_bias, _, _, _]) =
            row_write_adjoint(s, adj, l, ax.jac, mass_scale, cfm_scale);
        joint_axis_adjoint(s, adj, j, k, d_jac, d_bias * erp / dt);
    }
}

/// Adjoint of [`joint_limit_rows_forward`]; runs with the state at the step's start.
pub fn joint_limit_rows_adjoint<T: Real>(s: &mut Instance<'_, T>, adj: &mut super::Adjoint<T>) {
    use super::solver::row_write_adjoint;
    let h = s.hdr;
    let dt = T::of(h.dt);
    let mujoco = h.impedance_rows & crate::engine::layout::IMPEDANCE_LIMITS != 0;
    for l in (0..h.n_limit).rev() {
        let rec = h.off_limit + l * 4;
        let (j, k) = (s.model_u32(rec), s.model_u32(rec + 1));
        let ax = joint_axis(s, j, k);
        let lower = s.model_f32(rec + 2);
        let upper = s.model_f32(rec + 3);
        let c = ax.coordinate;
        let at_lower = c - lower < upper - c;
        let sign = select(-T::one(), T::one(), at_lower);
        let gap = select(upper - c, c - lower, at_lower);
        let violated = gap < T::zero();
        let jac = ax.jac.scaled(sign);
        let r = h.row_limit + l;
        if !mujoco {
            let (d_jac, [d_bias, _, _, _]) = row_write_adjoint(
                s,
                adj,
                r,
                jac,
                T::of(h.limit_mass_scale),
                T::of(h.limit_cfm_scale),
            );
            let d_gap = d_bias * select(T::one() / dt, T::of(h.limit_erp) / dt, violated);
            joint_axis_adjoint(s, adj, j, k, d_jac.scaled(sign), d_gap * sign);
            continue;
        }
        let [a, b, _] = super::solver::row_bodies(s, r);
        let speed = jacobian_speed(s, jac, a, b);
        let imp = h.off_impedance;
        let (ms, cs, _) = impedance_row(s, imp, gap, speed, dt);
        // m_c = ms / (ms (K - K_soft) + K_soft) and cfm = cs K_soft (row_write), from the
        // fields the forward stored.
        let k_raw = row_inverse_effective_mass(s, r, jac);
        let k_lin = jac.lin_a.dot(s.row_vec3(r, 12)) + jac.lin_b.dot(s.row_vec3(r, 18));
        let k_soft = select(k_raw, k_lin, k_lin > T::zero());
        let den = ms * (k_raw - k_soft) + k_soft;
        let d_ms = adj.row_get(r, 24) * k_soft / (den * den);
        let d_cs = adj.row_get(r, 25) * k_soft;
        let (d_jac, [d_bias, _, _, _]) = row_write_adjoint(s, adj, r, jac, ms, cs);
        // The bias is UNBOUNDED (a constant) while the limit is not violated.
        let d_bias = select(T::zero(), d_bias, violated);
        let (d, d_prime) = impedance(s, imp, -gap);
        // Inside the limit d is d(0), a constant.
        let d_prime = select(T::zero(), d_prime, violated);
        let (stiffness, damping) = (s.model_f32(imp), s.model_f32(imp + 1));
        // d depends on the gap through x = -gap: dd/dgap = -d'(x).
        let d_d = d_ms - d_cs / (d * d) + d_bias * dt * stiffness * gap;
        let d_gap = d_bias * dt * d * stiffness - d_d * d_prime;
        let d_speed = -d_bias * (T::one() - dt * damping);
        let d_jac = RowJacobian {
            lin_a: d_jac.lin_a + s.body_velocity(a) * d_speed,
            ang_a: d_jac.ang_a + s.body_angular_velocity(a) * d_speed,
            lin_b: d_jac.lin_b + s.body_velocity(b) * d_speed,
            ang_b: d_jac.ang_b + s.body_angular_velocity(b) * d_speed,
        };
        let (sa, sb) = (Instance::<T>::body_slot(a), Instance::<T>::body_slot(b));
        adj.state_add_vec3(sa + 7, jac.lin_a * d_speed);
        adj.state_add_vec3(sa + 10, jac.ang_a * d_speed);
        adj.state_add_vec3(sb + 7, jac.lin_b * d_speed);
        adj.state_add_vec3(sb + 10, jac.ang_b * d_speed);
        joint_axis_adjoint(s, adj, j, k, d_jac.scaled(sign), d_gap * sign);
    }
}

/// Relative speed `J v` of a Jacobian at the bodies' current velocities.
fn jacobian_speed<T: Real>(s: &Instance<'_, T>, jac: RowJacobian<T>, a: u32, b: u32) -> T {
    jac.lin_a.dot(s.body_velocity(a))
        + jac.ang_a.dot(s.body_angular_velocity(a))
        + jac.lin_b.dot(s.body_velocity(b))
        + jac.ang_b.dot(s.body_angular_velocity(b))
}

/// `K = J M^-1 J^T` of row `r` from the fields [`row_write`] stored, in its order of operations.
fn row_inverse_effective_mass<T: Real>(s: &Instance<'_, T>, r: u32, jac: RowJacobian<T>) -> T {
    (jac.lin_a.dot(s.row_vec3(r, 12))
        + jac.ang_a.dot(s.row_vec3(r, 15))
        + jac.lin_b.dot(s.row_vec3(r, 18))
        + jac.ang_b.dot(s.row_vec3(r, 21)))
    .max(T::of(1.0e-12))
}

/// Mirrors `row_write_compliant`: a rigid [`row_write`] whose `m_c` and CFM are then replaced
/// by `1 / (K + cfm)` and the absolute `cfm`.
#[allow(clippy::too_many_arguments)]
fn row_write_compliant<T: Real>(
    s: &mut Instance<'_, T>,
    r: u32,
    jac: RowJacobian<T>,
    bias: T,
    lo: T,
    hi: T,
    cfm: T,
) {
    row_write(s, r, jac, bias, lo, hi, T::zero(), T::one(), T::zero());
    let k = row_inverse_effective_mass(s, r, jac);
    s.row_set(r, 24, T::one() / (k + cfm));
    s.row_set(r, 25, cfm);
}

/// Mirrors `row_write_compliant_adjoint`: the adjoint of `m_c` is rescaled by
/// `K^2 / (K + cfm)^2` so that the rigid row's adjoint (which differentiates `1 / K`) applies
/// the derivative of `1 / (K + cfm)`.
fn row_write_compliant_adjoint<T: Real>(
    s: &Instance<'_, T>,
    adj: &mut super::Adjoint<T>,
    r: u32,
    jac: RowJacobian<T>,
    cfm: T,
) -> (RowJacobian<T>, [T; 4]) {
    use super::solver::row_write_adjoint;
    let k = row_inverse_effective_mass(s, r, jac);
    let d_m = adj.row_get(r, 24);
    let total = k + cfm;
    adj.row_add(r, 24, d_m * (k * k) / (total * total) - d_m);
    row_write_adjoint(s, adj, r, jac, T::one(), T::zero())
}

/// Mirrors `joint_passive_rows_forward`: damping and springs, dry friction and armature rows
/// (see [`crate::engine::layout::PassiveRow`]), written at the step's start.
pub fn joint_passive_rows_forward<T: Real>(s: &mut Instance<'_, T>) {
    let h = s.hdr;
    for p in 0..h.n_passive {
        let rec = h.off_passive + p * 8;
        let ax = joint_axis(s, s.model_u32(rec), s.model_u32(rec + 1));
        let r = h.row_passive + p;
        let [a, b, _] = super::solver::row_bodies(s, r);
        let start_speed = jacobian_speed(s, ax.jac, a, b);
        let bias = s.model_f32(rec + 5) * (ax.coordinate - s.model_f32(rec + 6))
            - s.model_f32(rec + 2) * start_speed;
        let bound = s.model_f32(rec + 7);
        let cfm = s.model_f32(rec + 4);
        row_write_compliant(s, r, ax.jac, bias, -bound, bound, cfm);
    }
}

/// Mirrors `joint_passive_rows_adjoint`; runs with the state at the step's start.
pub fn joint_passive_rows_adjoint<T: Real>(s: &mut Instance<'_, T>, adj: &mut super::Adjoint<T>) {
    let h = s.hdr;
    for p in (0..h.n_passive).rev() {
        let rec = h.off_passive + p * 8;
        let (j, k) = (s.model_u32(rec), s.model_u32(rec + 1));
        let ax = joint_axis(s, j, k);
        let r = h.row_passive + p;
        let [a, b, _] = super::solver::row_bodies(s, r);
        let (d_jac, [d_bias, _, _, _]) =
            row_write_compliant_adjoint(s, adj, r, ax.jac, s.model_f32(rec + 4));
        // bias = gain (coordinate - target) - weight J v_start
        let d_speed = -d_bias * s.model_f32(rec + 2);
        let d_jac = RowJacobian {
            lin_a: d_jac.lin_a + s.body_velocity(a) * d_speed,
            ang_a: d_jac.ang_a + s.body_angular_velocity(a) * d_speed,
            lin_b: d_jac.lin_b + s.body_velocity(b) * d_speed,
            ang_b: d_jac.ang_b + s.body_angular_velocity(b) * d_speed,
        };
        let (sa, sb) = (Instance::<T>::body_slot(a), Instance::<T>::body_slot(b));
        adj.state_add_vec3(sa + 7, ax.jac.lin_a * d_speed);
        adj.state_add_vec3(sa + 10, ax.jac.ang_a * d_speed);
        adj.state_add_vec3(sb + 7, ax.jac.lin_b * d_speed);
        adj.state_add_vec3(sb + 10, ax.jac.ang_b * d_speed);
        joint_axis_adjoint(s, adj, j, k, d_jac, d_bias * s.model_f32(rec + 5));
    }
}
