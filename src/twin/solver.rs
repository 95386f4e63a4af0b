//! Twin of `shaders/solver.wgsl`: constraint rows and projected Gauss-Seidel.

use super::Instance;
use super::math::{Real, V3, inverse_inertia_mul};

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
    let k = s.hdr.off_row + r * 4;
    [s.model_u32(k), s.model_u32(k + 1), s.model_u32(k + 2)]
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
    s.row_set(r, 24, mass_scale / k);
    s.row_set(r, 25, cfm_scale * k);
    s.row_set(r, 26, bias);
    s.row_set(r, 27, lo);
    s.row_set(r, 28, hi);
    s.row_set(r, 29, mu);
}

fn row_velocity<T: Real>(s: &Instance<'_, T>, r: u32, a: u32, b: u32) -> T {
    s.row_vec3(r, 0).dot(s.body_velocity(a))
        + s.row_vec3(r, 3).dot(s.body_angular_velocity(a))
        + s.row_vec3(r, 6).dot(s.body_velocity(b))
        + s.row_vec3(r, 9).dot(s.body_angular_velocity(b))
}

fn row_apply_impulse<T: Real>(s: &mut Instance<'_, T>, r: u32, a: u32, b: u32, impulse: T) {
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

pub fn solve_forward<T: Real>(s: &mut Instance<'_, T>) {
    let h = s.hdr;
    let lam = |r: u32| (h.state_lambda + r) as usize;
    for r in 0..h.n_rows {
        let [a, b, _] = row_bodies(s, r);
        let lambda = T::of(h.warm_start) * s.state[lam(r)];
        s.state[lam(r)] = lambda;
        row_apply_impulse(s, r, a, b, lambda);
    }
    for _ in 0..h.sweeps {
        for r in 0..h.n_rows {
            let [a, b, reference] = row_bodies(s, r);
            let lambda = s.state[lam(r)];
            let lambda_ref = s.state[lam(reference)];
            let mu = s.row_get(r, 29);
            let lo = s.row_get(r, 27) - mu * lambda_ref;
            let hi = s.row_get(r, 28) + mu * lambda_ref;
            let jv = row_velocity(s, r, a, b);
            let unclamped =
                lambda - s.row_get(r, 24) * (jv + s.row_get(r, 26) + s.row_get(r, 25) * lambda);
            let lambda_new = unclamped.max(lo).min(hi);
            s.state[lam(r)] = lambda_new;
            row_apply_impulse(s, r, a, b, lambda_new - lambda);
        }
    }
}
