//! Twin of `shaders/solver.wgsl`: constraint rows and projected Gauss-Seidel.

use super::Instance;
use super::math::{Real, V3, inverse_inertia_mul, select};
use crate::engine::layout::{ROW_BLOCK_FOLLOWER, stride};

/// Mirrors `struct RowJacobian`.
#[derive(Clone, Copy, Debug)]
pub struct RowJacobian<T> {
    pub lin_a: V3<T>,
    pub ang_a: V3<T>,
    pub lin_b: V3<T>,
    pub ang_b: V3<T>,
}

impl<T: Real> RowJacobian<T> {
    pub fn scaled(self, s: T) -> Self {
        RowJacobian {
            lin_a: self.lin_a * s,
            ang_a: self.ang_a * s,
            lin_b: self.lin_b * s,
            ang_b: self.ang_b * s,
        }
    }
}

pub fn row_bodies<T: Real>(s: &Instance<'_, T>, r: u32) -> [u32; 3] {
    let k = s.hdr.off_row + r * stride::ROW as u32;
    [s.model_u32(k), s.model_u32(k + 1), s.model_u32(k + 2)]
}

/// Mirrors `row_relaxation`: the factor on row `r`'s Gauss-Seidel step.
pub fn row_relaxation<T: Real>(s: &Instance<'_, T>, r: u32) -> T {
    T::of(f32::from_bits(
        s.model_u32(s.hdr.off_row + r * stride::ROW as u32 + 4),
    ))
}

#[allow(clippy::too_many_arguments)]
pub fn row_write<T: Real>(
    s: &mut Instance<'_, T>,
    r: u32,
    jac: RowJacobian<T>,
    bias: T,
    lo: T,
    hi: T,
    mu: T,
    mass_scale: T,
    cfm_scale: T,
) {
    let [a, b, _] = row_bodies(s, r);
    let minv_lin_a = jac.lin_a * s.body_inverse_mass(a);
    let minv_ang_a =
        inverse_inertia_mul(s.body_orientation(a), s.body_inverse_inertia(a), jac.ang_a);
    let minv_lin_b = jac.lin_b * s.body_inverse_mass(b);
    let minv_ang_b =
        inverse_inertia_mul(s.body_orientation(b), s.body_inverse_inertia(b), jac.ang_b);
    let k = (jac.lin_a.dot(minv_lin_a)
        + jac.ang_a.dot(minv_ang_a)
        + jac.lin_b.dot(minv_lin_b)
        + jac.ang_b.dot(minv_ang_b))
    .max(T::of(1.0e-12));
    s.row_set_vec3(r, 0, jac.lin_a);
    s.row_set_vec3(r, 3, jac.ang_a);
    s.row_set_vec3(r, 6, jac.lin_b);
    s.row_set_vec3(r, 9, jac.ang_b);
    s.row_set_vec3(r, 12, minv_lin_a);
    s.row_set_vec3(r, 15, minv_ang_a);
    s.row_set_vec3(r, 18, minv_lin_b);
    s.row_set_vec3(r, 21, minv_ang_b);
    // A row with a linear part takes its softness (CFM) from the bodies' inverse masses alone,
    // so a joint's stiffness m w^2 does not depend on how the row's axis lies relative to the
    // lever arms (with a light-inertia body a world-axis row's K is dominated by rotation);
    // a purely angular row uses its own K. m_c = 1 / (K + CFM).
    let k_lin = jac.lin_a.dot(minv_lin_a) + jac.lin_b.dot(minv_lin_b);
    let k_soft = select(k, k_lin, k_lin > T::zero());
    s.row_set(r, 24, mass_scale / (mass_scale * (k - k_soft) + k_soft));
    s.row_set(r, 25, cfm_scale * k_soft);
    s.row_set(r, 26, bias);
    s.row_set(r, 27, lo);
    s.row_set(r, 28, hi);
    s.row_set(r, 29, mu);
}

pub(crate) fn row_velocity<T: Real>(s: &Instance<'_, T>, r: u32, a: u32, b: u32) -> T {
    s.row_vec3(r, 0).dot(s.body_velocity(a))
        + s.row_vec3(r, 3).dot(s.body_angular_velocity(a))
        + s.row_vec3(r, 6).dot(s.body_velocity(b))
        + s.row_vec3(r, 9).dot(s.body_angular_velocity(b))
}

pub(crate) fn row_apply_impulse<T: Real>(
    s: &mut Instance<'_, T>,
    r: u32,
    a: u32,
    b: u32,
    impulse: T,
) {
    let sa = Instance::<T>::body_slot(a) + 7;
    let sb = Instance::<T>::body_slot(b) + 7;
    let v = s.state_vec3(sa) + s.row_vec3(r, 12) * impulse;
    s.state_set_vec3(sa, v);
    let v = s.state_vec3(sa + 3) + s.row_vec3(r, 15) * impulse;
    s.state_set_vec3(sa + 3, v);
    let v = s.state_vec3(sb) + s.row_vec3(r, 18) * impulse;
    s.state_set_vec3(sb, v);
    let v = s.state_vec3(sb + 3) + s.row_vec3(r, 21) * impulse;
    s.state_set_vec3(sb + 3, v);
}

pub(crate) fn solve_warm_start<T: Real>(s: &mut Instance<'_, T>) {
    let h = s.hdr;
    for r in 0..h.n_rows {
        let [a, b, _] = row_bodies(s, r);
        let slot = (h.state_lambda + r) as usize;
        let lambda = T::of(h.warm_start) * s.state[slot];
        s.state[slot] = lambda;
        row_apply_impulse(s, r, a, b, lambda);
    }
}

/// One projected Gauss-Seidel update of row `r` (mirrors `solve_row`); returns the new impulse.
pub(crate) fn solve_row<T: Real>(s: &mut Instance<'_, T>, r: u32) -> T {
    let omega = row_relaxation(s, r);
    solve_row_relaxed(s, r, omega)
}

/// [`solve_row`] with relaxation `omega` in place of the row's own: the step is
/// `-(omega m_c) (J v + bias + cfm lambda)`, so that `omega = 1` gives plain Gauss-Seidel's
/// bits.
pub(crate) fn solve_row_relaxed<T: Real>(s: &mut Instance<'_, T>, r: u32, omega: T) -> T {
    let h = s.hdr;
    let lam = |r: u32| (h.state_lambda + r) as usize;
    let [a, b, reference] = row_bodies(s, r);
    let lambda = s.state[lam(r)];
    let lambda_ref = s.state[lam(reference)];
    let mu = s.row_get(r, 29);
    let lo = s.row_get(r, 27) - mu * lambda_ref;
    let hi = s.row_get(r, 28) + mu * lambda_ref;
    let jv = row_velocity(s, r, a, b);
    let m_c = omega * s.row_get(r, 24);
    let unclamped = lambda - m_c * (jv + s.row_get(r, 26) + s.row_get(r, 25) * lambda);
    let lambda_new = unclamped.max(lo).min(hi);
    s.state[lam(r)] = lambda_new;
    row_apply_impulse(s, r, a, b, lambda_new - lambda);
    lambda_new
}

pub fn solve_forward<T: Real>(s: &mut Instance<'_, T>) {
    solve_warm_start(s);
    for _ in 0..s.hdr.sweeps {
        for r in 0..s.hdr.n_rows {
            solve_row_or_block(s, r);
        }
    }
}

/// [`solve_forward`], also recording every row's impulse after every sweep in
/// `adj.lambda_history` (sweep-major).
pub fn solve_forward_taped<T: Real>(s: &mut Instance<'_, T>, adj: &mut super::Adjoint<T>) {
    solve_warm_start(s);
    let n_rows = s.hdr.n_rows;
    for sweep in 0..s.hdr.sweeps {
        for r in 0..n_rows {
            adj.lambda_history[(sweep * n_rows + r) as usize] = solve_row_or_block(s, r);
        }
    }
}

/// Adjoint of `v += M^-1 J^T impulse`: returns d(impulse) and accumulates d(M^-1 J^T).
fn row_apply_impulse_adjoint<T: Real>(
    s: &Instance<'_, T>,
    adj: &mut super::Adjoint<T>,
    r: u32,
    a: u32,
    b: u32,
    impulse: T,
) -> T {
    let sa = Instance::<T>::body_slot(a) + 7;
    let sb = Instance::<T>::body_slot(b) + 7;
    let (gva, gwa) = (adj.state_vec3(sa), adj.state_vec3(sa + 3));
    let (gvb, gwb) = (adj.state_vec3(sb), adj.state_vec3(sb + 3));
    adj.row_add_vec3(r, 12, gva * impulse);
    adj.row_add_vec3(r, 15, gwa * impulse);
    adj.row_add_vec3(r, 18, gvb * impulse);
    adj.row_add_vec3(r, 21, gwb * impulse);
    s.row_vec3(r, 12).dot(gva)
        + s.row_vec3(r, 15).dot(gwa)
        + s.row_vec3(r, 18).dot(gvb)
        + s.row_vec3(r, 21).dot(gwb)
}

/// Reverse of the Gauss-Seidel solve. `s` holds the state after the solve (velocities are
/// walked back update by update); `start` is the state before the step (for the previous
/// impulses). `adj.state` holds the adjoint after the solve and receives the adjoint before it;
/// `adj.rows` receives the adjoint of every row field.
pub fn solve_adjoint<T: Real>(s: &mut Instance<'_, T>, adj: &mut super::Adjoint<T>, start: &[T]) {
    let h = s.hdr;
    let n_rows = h.n_rows;
    let lam = |r: u32| (h.state_lambda + r) as usize;
    let warm = T::of(h.warm_start);
    let history = |adj: &super::Adjoint<T>, sweep: i64, r: u32| -> T {
        if sweep < 0 {
            warm * start[lam(r)]
        } else {
            adj.lambda_history[(sweep as u32 * n_rows + r) as usize]
        }
    };
    for sweep in (0..h.sweeps as i64).rev() {
        for r in (0..n_rows).rev() {
            match row_block(s, r) {
                0 => {}
                ROW_BLOCK_FOLLOWER => continue,
                partner => {
                    let passive = partner - 1;
                    let lambdas = [passive, r]
                        .map(|row| [history(adj, sweep - 1, row), history(adj, sweep, row)]);
                    solve_axis_block_adjoint(s, adj, r, passive, lambdas);
                    continue;
                }
            }
            let [a, b, reference] = row_bodies(s, r);
            let lambda_old = history(adj, sweep - 1, r);
            let lambda_new = history(adj, sweep, r);
            let delta = lambda_new - lambda_old;
            // Walk the velocities back to before this update.
            row_apply_impulse(s, r, a, b, -delta);
            let d_delta = row_apply_impulse_adjoint(s, adj, r, a, b, delta);
            let d_new = adj.state[lam(r)] + d_delta;
            let mut d_old = -d_delta;
            // The reference impulse as the forward update saw it.
            let lambda_ref = if reference < r {
                history(adj, sweep, reference)
            } else if reference == r {
                lambda_old
            } else {
                history(adj, sweep - 1, reference)
            };
            let mu = s.row_get(r, 29);
            let lo = s.row_get(r, 27) - mu * lambda_ref;
            let hi = s.row_get(r, 28) + mu * lambda_ref;
            // m_c relaxed; the row's own m_c gets omega times its adjoint.
            let omega = row_relaxation(s, r);
            let m_c = omega * s.row_get(r, 24);
            let cfm = s.row_get(r, 25);
            let bias = s.row_get(r, 26);
            let jv = row_velocity(s, r, a, b);
            let unclamped = lambda_old - m_c * (jv + bias + cfm * lambda_old);
            let above_lo = unclamped.max(lo);
            let d_above = if above_lo < hi { d_new } else { T::zero() };
            let d_hi = d_new - d_above;
            let d_unclamped = if unclamped > lo { d_above } else { T::zero() };
            let d_lo = d_above - d_unclamped;
            adj.row_add(r, 27, d_lo);
            adj.row_add(r, 28, d_hi);
            adj.row_add(r, 29, (d_hi - d_lo) * lambda_ref);
            let d_ref = (d_hi - d_lo) * mu;
            if reference == r {
                d_old += d_ref;
            } else {
                adj.state[lam(reference)] += d_ref;
            }
            d_old += d_unclamped * (T::one() - m_c * cfm);
            adj.row_add(
                r,
                24,
                -(omega * d_unclamped) * (jv + bias + cfm * lambda_old),
            );
            let d_jv = -m_c * d_unclamped;
            adj.row_add(r, 26, d_jv);
            adj.row_add(r, 25, d_jv * lambda_old);
            // jv = J . v
            let sa = Instance::<T>::body_slot(a) + 7;
            let sb = Instance::<T>::body_slot(b) + 7;
            adj.row_add_vec3(r, 0, s.body_velocity(a) * d_jv);
            adj.row_add_vec3(r, 3, s.body_angular_velocity(a) * d_jv);
            adj.row_add_vec3(r, 6, s.body_velocity(b) * d_jv);
            adj.row_add_vec3(r, 9, s.body_angular_velocity(b) * d_jv);
            adj.state_add_vec3(sa, s.row_vec3(r, 0) * d_jv);
            adj.state_add_vec3(sa + 3, s.row_vec3(r, 3) * d_jv);
            adj.state_add_vec3(sb, s.row_vec3(r, 6) * d_jv);
            adj.state_add_vec3(sb + 3, s.row_vec3(r, 9) * d_jv);
            adj.state[lam(r)] = d_old;
        }
    }
    for r in (0..n_rows).rev() {
        let [a, b, _] = row_bodies(s, r);
        let lambda = warm * start[lam(r)];
        row_apply_impulse(s, r, a, b, -lambda);
        let d_lambda = adj.state[lam(r)] + row_apply_impulse_adjoint(s, adj, r, a, b, lambda);
        adj.state[lam(r)] = warm * d_lambda;
    }
}

/// Adjoint of [`row_write`]: pulls the row's field adjoints back to its Jacobian, bias, bounds
/// and friction coefficient (returned) and to the bodies' orientations and inverse masses and
/// inertias (accumulated).
pub fn row_write_adjoint<T: Real>(
    s: &Instance<'_, T>,
    adj: &mut super::Adjoint<T>,
    r: u32,
    jac: RowJacobian<T>,
    mass_scale: T,
    cfm_scale: T,
) -> (RowJacobian<T>, [T; 4]) {
    use super::math::inverse_inertia_mul_adjoint;
    use crate::engine::layout::BODY_PARAM_LEN;
    let [a, b, _] = row_bodies(s, r);
    let (qa, qb) = (s.body_orientation(a), s.body_orientation(b));
    let (ia, ib) = (s.body_inverse_inertia(a), s.body_inverse_inertia(b));
    let (ma, mb) = (s.body_inverse_mass(a), s.body_inverse_mass(b));
    let minv_lin_a = jac.lin_a * ma;
    let minv_ang_a = inverse_inertia_mul(qa, ia, jac.ang_a);
    let minv_lin_b = jac.lin_b * mb;
    let minv_ang_b = inverse_inertia_mul(qb, ib, jac.ang_b);
    let k_raw = jac.lin_a.dot(minv_lin_a)
        + jac.ang_a.dot(minv_ang_a)
        + jac.lin_b.dot(minv_lin_b)
        + jac.ang_b.dot(minv_ang_b);
    let k = k_raw.max(T::of(1.0e-12));
    // m_c = ms / (ms (k - k_soft) + k_soft), cfm = cs k_soft, k_soft = k_lin or k.
    let k_lin = jac.lin_a.dot(minv_lin_a) + jac.lin_b.dot(minv_lin_b);
    let soft_lin = k_lin > T::zero();
    let k_soft = select(k, k_lin, soft_lin);
    let den = mass_scale * (k - k_soft) + k_soft;
    let d_m = adj.row_get(r, 24) / (den * den);
    let d_k_soft = -mass_scale * (T::one() - mass_scale) * d_m + cfm_scale * adj.row_get(r, 25);
    let d_k_clamped = -mass_scale * mass_scale * d_m + select(d_k_soft, T::zero(), soft_lin);
    let d_k = if k_raw > T::of(1.0e-12) {
        d_k_clamped
    } else {
        T::zero()
    };
    // The linear terms feed both k and k_lin.
    let d_kl = d_k + select(T::zero(), d_k_soft, soft_lin);
    let mut d_jac = RowJacobian {
        lin_a: adj.row_vec3(r, 0) + minv_lin_a * d_kl,
        ang_a: adj.row_vec3(r, 3) + minv_ang_a * d_k,
        lin_b: adj.row_vec3(r, 6) + minv_lin_b * d_kl,
        ang_b: adj.row_vec3(r, 9) + minv_ang_b * d_k,
    };
    let d_mla = adj.row_vec3(r, 12) + jac.lin_a * d_kl;
    let d_maa = adj.row_vec3(r, 15) + jac.ang_a * d_k;
    let d_mlb = adj.row_vec3(r, 18) + jac.lin_b * d_kl;
    let d_mab = adj.row_vec3(r, 21) + jac.ang_b * d_k;
    d_jac.lin_a = d_jac.lin_a + d_mla * ma;
    d_jac.lin_b = d_jac.lin_b + d_mlb * mb;
    let pa = a * BODY_PARAM_LEN as u32;
    let pb = b * BODY_PARAM_LEN as u32;
    adj.param_add(pa, jac.lin_a.dot(d_mla));
    adj.param_add(pb, jac.lin_b.dot(d_mlb));
    let (dqa, dia, dja) = inverse_inertia_mul_adjoint(qa, ia, jac.ang_a, d_maa);
    let (dqb, dib, djb) = inverse_inertia_mul_adjoint(qb, ib, jac.ang_b, d_mab);
    d_jac.ang_a = d_jac.ang_a + dja;
    d_jac.ang_b = d_jac.ang_b + djb;
    adj.param_add_vec3(pa + 1, dia);
    adj.param_add_vec3(pb + 1, dib);
    adj.state_add_quat(Instance::<T>::body_slot(a) + 3, dqa);
    adj.state_add_quat(Instance::<T>::body_slot(b) + 3, dqb);
    (
        d_jac,
        [
            adj.row_get(r, 26),
            adj.row_get(r, 27),
            adj.row_get(r, 28),
            adj.row_get(r, 29),
        ],
    )
}

/// Word 3 of row `r`'s table entry: 0, [`ROW_BLOCK_FOLLOWER`] or its block partner plus one.
pub(crate) fn row_block<T: Real>(s: &Instance<'_, T>, r: u32) -> u32 {
    s.model_u32(s.hdr.off_row + r * stride::ROW as u32 + 3)
}

/// Row `r`'s update in the sweep (mirrors `solve_row_or_block`): a lone row's projected
/// Gauss-Seidel update, the exact solve of the block it leads, or nothing for a row that its
/// block's lead row updates. Returns the row's impulse after its update.
pub(crate) fn solve_row_or_block<T: Real>(s: &mut Instance<'_, T>, r: u32) -> T {
    match row_block(s, r) {
        0 => solve_row(s, r),
        ROW_BLOCK_FOLLOWER => s.state[(s.hdr.state_lambda + r) as usize],
        partner => solve_axis_block(s, r, partner - 1),
    }
}

/// The scalar problem of a joint axis's limit row and its passive (armature) row, which share
/// the Jacobian `J` (the limit row's is `sign J`) and so `K = J M^-1 J^T` (mirrors `struct
/// AxisBlock`). Impulses are the rows' accumulated ones before the update.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AxisBlock<T> {
    /// `J v` with both rows' current impulses applied.
    pub speed: T,
    pub passive: T,
    pub limit: T,
    pub k: T,
    pub sign: T,
    pub passive_cfm: T,
    pub passive_bias: T,
    pub limit_cfm: T,
    pub limit_bias: T,
}

/// The exact solution `[passive, limit]` of the block (mirrors `axis_block_solve`): with
/// `u' = J v'` at the new impulses, `u' + bias_p + cfm_p lambda_p = 0` and either
/// `lambda_l = 0` with `sign u' + bias_l >= 0` (the limit idle) or `sign u' + bias_l + cfm_l
/// lambda_l = 0` with `lambda_l > 0` (held). The held case's `lambda_l > 0` is exactly the idle
/// case's violation, so the sign of the held impulse picks the case.
pub fn axis_block_solve<T: Real>(b: &AxisBlock<T>) -> [T; 2] {
    // J v with neither row's impulse.
    let free = b.speed - b.k * b.passive - b.sign * b.k * b.limit;
    let passive_idle = -(free + b.passive_bias) / (b.k + b.passive_cfm);
    let det = b.k * (b.passive_cfm + b.limit_cfm) + b.passive_cfm * b.limit_cfm;
    let passive_held = (-free * b.limit_cfm - b.passive_bias * (b.k + b.limit_cfm)
        + b.sign * b.k * b.limit_bias)
        / det;
    let limit_held = (-b.sign * free * b.passive_cfm - b.limit_bias * (b.k + b.passive_cfm)
        + b.sign * b.k * b.passive_bias)
        / det;
    let held = limit_held > T::zero();
    [
        select(passive_idle, passive_held, held),
        select(T::zero(), limit_held, held),
    ]
}

/// Adjoint of [`axis_block_solve`]: the adjoint of every input given those of the two new
/// impulses (`sign` gets none: it is piecewise constant).
pub fn axis_block_adjoint<T: Real>(b: &AxisBlock<T>, d_passive: T, d_limit: T) -> AxisBlock<T> {
    let free = b.speed - b.k * b.passive - b.sign * b.k * b.limit;
    let idle_den = b.k + b.passive_cfm;
    let passive_idle = -(free + b.passive_bias) / idle_den;
    let det = b.k * (b.passive_cfm + b.limit_cfm) + b.passive_cfm * b.limit_cfm;
    let passive_held = (-free * b.limit_cfm - b.passive_bias * (b.k + b.limit_cfm)
        + b.sign * b.k * b.limit_bias)
        / det;
    let limit_held = (-b.sign * free * b.passive_cfm - b.limit_bias * (b.k + b.passive_cfm)
        + b.sign * b.k * b.passive_bias)
        / det;
    let held = limit_held > T::zero();
    let d_passive_idle = select(d_passive, T::zero(), held);
    let d_passive_held = select(T::zero(), d_passive, held);
    let d_limit_held = select(T::zero(), d_limit, held);
    // The idle case: passive = -(free + bias_p) / (K + cfm_p).
    let d_idle_num = -d_passive_idle / idle_den;
    let d_idle_den = -passive_idle * d_passive_idle / idle_den;
    // The held case: numerators over det.
    let d_num_p = d_passive_held / det;
    let d_num_l = d_limit_held / det;
    let d_det = -(passive_held * d_passive_held + limit_held * d_limit_held) / det;
    let d_free = d_idle_num - b.limit_cfm * d_num_p - b.sign * b.passive_cfm * d_num_l;
    let d_k = d_idle_den
        - (b.passive_bias - b.sign * b.limit_bias) * d_num_p
        - (b.limit_bias - b.sign * b.passive_bias) * d_num_l
        + d_det * (b.passive_cfm + b.limit_cfm)
        - (b.passive + b.sign * b.limit) * d_free;
    AxisBlock {
        speed: d_free,
        passive: -b.k * d_free,
        limit: -b.sign * b.k * d_free,
        k: d_k,
        sign: T::zero(),
        passive_cfm: d_idle_den - (b.sign * free + b.limit_bias) * d_num_l
            + d_det * (b.k + b.limit_cfm),
        passive_bias: d_idle_num - (b.k + b.limit_cfm) * d_num_p + b.sign * b.k * d_num_l,
        limit_cfm: -(free + b.passive_bias) * d_num_p + d_det * (b.k + b.passive_cfm),
        limit_bias: b.sign * b.k * d_num_p - (b.k + b.passive_cfm) * d_num_l,
    }
}

/// The block's inputs from the rows' fields, the current velocities and the rows' impulses
/// `[passive, limit]`, and `K` before its clamp (for the adjoint).
fn axis_block_inputs<T: Real>(
    s: &Instance<'_, T>,
    limit: u32,
    passive: u32,
    lambdas: [T; 2],
) -> (AxisBlock<T>, T) {
    let [a, b, _] = row_bodies(s, passive);
    let jac = |r: u32| [0, 3, 6, 9].map(|f| s.row_vec3(r, f));
    let (jp, jl) = (jac(passive), jac(limit));
    let k_raw = (0..4)
        .map(|n| jp[n].dot(s.row_vec3(passive, 12 + 3 * n as u32)))
        .fold(T::zero(), |acc, x| acc + x);
    let alignment = (0..4)
        .map(|n| jl[n].dot(jp[n]))
        .fold(T::zero(), |acc, x| acc + x);
    let block = AxisBlock {
        speed: row_velocity(s, passive, a, b),
        passive: lambdas[0],
        limit: lambdas[1],
        k: k_raw.max(T::of(1.0e-12)),
        sign: select(-T::one(), T::one(), alignment > T::zero()),
        passive_cfm: s.row_get(passive, 25),
        passive_bias: s.row_get(passive, 26),
        limit_cfm: limit_cfm_with_rotor(
            s.row_get(limit, 25),
            s.row_get(passive, 25),
            k_raw.max(T::of(1.0e-12)),
            k_lin(s, passive),
        ),
        limit_bias: s.row_get(limit, 26),
    };
    (block, k_raw)
}

/// The linear part of row `r`'s `K`, as `row_write` computes it for the row's softness.
fn k_lin<T: Real>(s: &Instance<'_, T>, r: u32) -> T {
    s.row_vec3(r, 0).dot(s.row_vec3(r, 12)) + s.row_vec3(r, 6).dot(s.row_vec3(r, 18))
}

/// The limit row's softness for the axis's inertia with its rotor (mirrors
/// `limit_cfm_with_rotor`). `row_write` made it `cfm_scale k_soft` from the bodies alone
/// (`k_soft` = `k_lin` for a row with a linear part, else `K`); a soft limit is a spring-damper
/// tuned for the mass it holds, and along the axis that is `1 / k_soft + 1 / cfm_p`, the rotor
/// (and the damper's `dt c`) included, as MuJoCo's limit softness follows the joint-space
/// inertia with armature. So `cfm_l k_soft^-1 / (k_soft^-1 + cfm_p^-1)`.
pub fn limit_cfm_with_rotor<T: Real>(limit_cfm: T, passive_cfm: T, k: T, k_lin: T) -> T {
    let k_soft = select(k, k_lin, k_lin > T::zero());
    limit_cfm * passive_cfm / (passive_cfm + k_soft)
}

/// The exact update of the block of limit row `limit` and its passive row `passive` (mirrors
/// `solve_axis_block`); returns the limit row's new impulse.
fn solve_axis_block<T: Real>(s: &mut Instance<'_, T>, limit: u32, passive: u32) -> T {
    let [a, b, _] = row_bodies(s, passive);
    let h = s.hdr;
    let lam = |r: u32| s.state[(h.state_lambda + r) as usize];
    let (block, _) = axis_block_inputs(s, limit, passive, [lam(passive), lam(limit)]);
    let [passive_new, limit_new] = axis_block_solve(&block);
    s.state[(h.state_lambda + passive) as usize] = passive_new;
    s.state[(h.state_lambda + limit) as usize] = limit_new;
    row_apply_impulse(s, passive, a, b, passive_new - block.passive);
    row_apply_impulse(s, limit, a, b, limit_new - block.limit);
    limit_new
}

/// Reverse of one [`solve_axis_block`] inside [`solve_adjoint`]'s walk: `lambdas` holds the
/// passive row's and then the limit row's impulses before and after the update.
fn solve_axis_block_adjoint<T: Real>(
    s: &mut Instance<'_, T>,
    adj: &mut super::Adjoint<T>,
    limit: u32,
    passive: u32,
    lambdas: [[T; 2]; 2],
) {
    let h = s.hdr;
    let lam = |r: u32| (h.state_lambda + r) as usize;
    let [a, b, _] = row_bodies(s, passive);
    let [[passive_old, passive_new], [limit_old, limit_new]] = lambdas;
    let delta_passive = passive_new - passive_old;
    let delta_limit = limit_new - limit_old;
    // Walk the velocities back to before the update.
    row_apply_impulse(s, limit, a, b, -delta_limit);
    row_apply_impulse(s, passive, a, b, -delta_passive);
    let d_delta_limit = row_apply_impulse_adjoint(s, adj, limit, a, b, delta_limit);
    let d_delta_passive = row_apply_impulse_adjoint(s, adj, passive, a, b, delta_passive);
    let (block, k_raw) = axis_block_inputs(s, limit, passive, [passive_old, limit_old]);
    let d = axis_block_adjoint(
        &block,
        adj.state[lam(passive)] + d_delta_passive,
        adj.state[lam(limit)] + d_delta_limit,
    );
    // The limit's softness for the rotor: limit_cfm_with_rotor.
    let limit_cfm = s.row_get(limit, 25);
    let linear = k_lin(s, passive);
    let k_soft = select(block.k, linear, linear > T::zero());
    let den = block.passive_cfm + k_soft;
    let d_passive_cfm = d.passive_cfm + d.limit_cfm * limit_cfm * k_soft / (den * den);
    let d_k_soft = -d.limit_cfm * limit_cfm * block.passive_cfm / (den * den);
    let d_k_lin = select(T::zero(), d_k_soft, linear > T::zero());
    // speed = J_p . v, K = J_p . M^-1 J_p^T (clamped below at 1e-12).
    let d_k = if k_raw > T::of(1.0e-12) {
        d.k + select(d_k_soft, T::zero(), linear > T::zero())
    } else {
        T::zero()
    };
    let velocities = [
        s.body_velocity(a),
        s.body_angular_velocity(a),
        s.body_velocity(b),
        s.body_angular_velocity(b),
    ];
    let sa = Instance::<T>::body_slot(a) + 7;
    let sb = Instance::<T>::body_slot(b) + 7;
    for (n, slot) in [sa, sa + 3, sb, sb + 3].into_iter().enumerate() {
        let f = 3 * n as u32;
        let j = s.row_vec3(passive, f);
        let m = s.row_vec3(passive, 12 + f);
        // The linear blocks (lin_a, lin_b) also feed k_lin.
        let d_km = d_k + select(T::zero(), d_k_lin, n % 2 == 0);
        adj.row_add_vec3(passive, f, velocities[n] * d.speed + m * d_km);
        adj.row_add_vec3(passive, 12 + f, j * d_km);
        adj.state_add_vec3(slot, j * d.speed);
    }
    adj.row_add(passive, 25, d_passive_cfm);
    adj.row_add(passive, 26, d.passive_bias);
    adj.row_add(limit, 25, d.limit_cfm * block.passive_cfm / den);
    adj.row_add(limit, 26, d.limit_bias);
    adj.state[lam(passive)] = d.passive - d_delta_passive;
    adj.state[lam(limit)] = d.limit - d_delta_limit;
}
