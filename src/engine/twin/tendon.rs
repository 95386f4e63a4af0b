//! Twin of `shaders/tendon.wgsl`.

use super::contact::{point_jacobian, point_jacobian_adjoint};
use super::joint::{joint_axis, joint_axis_adjoint};
use super::math::{Q, Real, V3, select};
use super::solver::{RowJacobian, row_write, row_write_adjoint};
use super::{Adjoint, Instance, solver_zero_jacobian};
use crate::engine::layout::{UNBOUNDED, stride};

/// Mirrors `struct TendonLength`.
struct TendonLength<T> {
    jac: RowJacobian<T>,
    length: T,
}

/// Mirrors `struct TendonSide`.
struct TendonSide<T> {
    sign: T,
    gap: T,
    held: bool,
    violated: bool,
}

fn tendon_record<T: Real>(s: &Instance<'_, T>, t: u32) -> u32 {
    s.hdr.off_tendon + t * stride::TENDON as u32
}

fn tendon_term_record<T: Real>(s: &Instance<'_, T>, k: u32) -> u32 {
    s.hdr.off_tendon_term + k * stride::TENDON_TERM as u32
}

/// Mirrors `struct TendonSites`.
struct TendonSites<T> {
    a: u32,
    b: u32,
    offset_a: V3<T>,
    offset_b: V3<T>,
    qa: Q<T>,
    qb: Q<T>,
    arm_a: V3<T>,
    arm_b: V3<T>,
    dist: T,
    n: V3<T>,
}

fn tendon_sites<T: Real>(s: &Instance<'_, T>, first: u32) -> TendonSites<T> {
    let (ta, tb) = (
        tendon_term_record(s, first),
        tendon_term_record(s, first + 1),
    );
    let (a, b) = (s.model_u32(ta), s.model_u32(tb));
    let (offset_a, offset_b) = (s.model_vec3(ta + 1), s.model_vec3(tb + 1));
    let (qa, qb) = (s.body_orientation(a), s.body_orientation(b));
    let (arm_a, arm_b) = (qa.rotate(offset_a), qb.rotate(offset_b));
    let d = (s.body_position(b) + arm_b) - (s.body_position(a) + arm_a);
    let dist = d.length();
    TendonSites {
        a,
        b,
        offset_a,
        offset_b,
        qa,
        qb,
        arm_a,
        arm_b,
        dist,
        n: d * (T::one() / dist.max(T::of(1.0e-9))),
    }
}

fn tendon_length<T: Real>(s: &Instance<'_, T>, t: u32) -> TendonLength<T> {
    let rec = tendon_record(s, t);
    let first = s.model_u32(rec);
    let n = s.model_u32(rec + 1);
    if n == 0 {
        let sites = tendon_sites(s, first);
        return TendonLength {
            jac: point_jacobian(sites.n, sites.arm_a, sites.arm_b),
            length: sites.dist,
        };
    }
    let term = tendon_term_record(s, first);
    let c = s.model_f32(term + 2);
    let ax = joint_axis(s, s.model_u32(term), s.model_u32(term + 1));
    let mut length = c * ax.coordinate;
    for k in 1..n {
        let other = tendon_term_record(s, first + k);
        let q = joint_axis(s, s.model_u32(other), s.model_u32(other + 1)).coordinate;
        length += s.model_f32(other + 2) * q;
    }
    TendonLength {
        jac: ax.jac.scaled(c),
        length,
    }
}

fn tendon_side<T: Real>(s: &Instance<'_, T>, t: u32, length: T) -> TendonSide<T> {
    let rec = tendon_record(s, t);
    let lower = s.model_f32(rec + 2);
    let upper = s.model_f32(rec + 3);
    let held = lower == upper;
    let at_lower = length - lower < upper - length || held;
    let gap = select(upper - length, length - lower, at_lower);
    TendonSide {
        sign: select(-T::one(), T::one(), at_lower),
        gap,
        held,
        violated: gap < T::zero() || held,
    }
}

pub fn tendon_rows_forward<T: Real>(s: &mut Instance<'_, T>) {
    let h = s.hdr;
    let dt = T::of(h.dt);
    for t in 0..h.n_tendon {
        let tl = tendon_length(s, t);
        let side = tendon_side(s, t, tl.length);
        let bias = select(
            side.gap / dt,
            T::of(h.joint_erp) * side.gap / dt,
            side.violated,
        );
        row_write(
            s,
            h.row_tendon + t,
            tl.jac.scaled(side.sign),
            bias,
            select(T::zero(), -T::of(UNBOUNDED), side.held),
            T::of(UNBOUNDED),
            T::zero(),
            T::of(h.joint_mass_scale),
            T::of(h.joint_cfm_scale),
        );
    }
}

/// Adjoint of [`tendon_length`]: the Jacobian's adjoint goes to the first term's joint axis,
/// the length's to every term's coordinate.
fn tendon_length_adjoint<T: Real>(
    s: &Instance<'_, T>,
    adj: &mut Adjoint<T>,
    t: u32,
    d_jac: RowJacobian<T>,
    d_length: T,
) {
    let rec = tendon_record(s, t);
    let first = s.model_u32(rec);
    let n = s.model_u32(rec + 1);
    if n == 0 {
        tendon_sites_adjoint(adj, tendon_sites(s, first), d_jac, d_length);
        return;
    }
    let term = tendon_term_record(s, first);
    let c = s.model_f32(term + 2);
    let (j, k) = (s.model_u32(term), s.model_u32(term + 1));
    joint_axis_adjoint(s, adj, j, k, d_jac.scaled(c), d_length * c);
    for m in 1..n {
        let other = tendon_term_record(s, first + m);
        let (j, k) = (s.model_u32(other), s.model_u32(other + 1));
        let c = s.model_f32(other + 2);
        joint_axis_adjoint(s, adj, j, k, solver_zero_jacobian(), d_length * c);
    }
}

/// Adjoint of a spatial tendon's length and Jacobian, to its bodies' positions and
/// orientations (the sites' offsets are model data).
fn tendon_sites_adjoint<T: Real>(
    adj: &mut Adjoint<T>,
    s: TendonSites<T>,
    d_jac: RowJacobian<T>,
    d_length: T,
) {
    let eps = T::of(1.0e-9);
    let (d_n, d_arm_a, d_arm_b) = point_jacobian_adjoint(s.n, s.arm_a, s.arm_b, d_jac);
    let d_d = select(
        d_n * (T::one() / eps),
        (d_n - s.n * s.n.dot(d_n)) * (T::one() / s.dist) + s.n * d_length,
        s.dist > eps,
    );
    let (sa, sb) = (Instance::<T>::body_slot(s.a), Instance::<T>::body_slot(s.b));
    adj.state_add_vec3(sa, -d_d);
    adj.state_add_vec3(sb, d_d);
    let (dqa, _) = Q::rotate_adjoint(s.qa, s.offset_a, d_arm_a - d_d);
    let (dqb, _) = Q::rotate_adjoint(s.qb, s.offset_b, d_arm_b + d_d);
    adj.state_add_quat(sa + 3, dqa);
    adj.state_add_quat(sb + 3, dqb);
}

pub fn tendon_rows_adjoint<T: Real>(s: &mut Instance<'_, T>, adj: &mut Adjoint<T>) {
    let h = s.hdr;
    let dt = T::of(h.dt);
    for t in (0..h.n_tendon).rev() {
        let tl = tendon_length(s, t);
        let side = tendon_side(s, t, tl.length);
        let (d_jac, [d_bias, _, _, _]) = row_write_adjoint(
            s,
            adj,
            h.row_tendon + t,
            tl.jac.scaled(side.sign),
            T::of(h.joint_mass_scale),
            T::of(h.joint_cfm_scale),
        );
        let d_gap = d_bias * select(T::one() / dt, T::of(h.joint_erp) / dt, side.violated);
        tendon_length_adjoint(s, adj, t, d_jac.scaled(side.sign), d_gap * side.sign);
    }
}
