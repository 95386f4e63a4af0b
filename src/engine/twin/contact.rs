//! Twin of `shaders/contact.wgsl`.

use super::Instance;
use super::math::{Real, V3, select};
use super::solver::{RowJacobian, row_write};
use crate::engine::layout::UNBOUNDED;

/// Mirrors `struct ContactFrame`.
#[derive(Clone, Copy, Debug)]
pub struct ContactFrame<T> {
    pub normal: RowJacobian<T>,
    pub tangent1: RowJacobian<T>,
    pub tangent2: RowJacobian<T>,
    pub gap: T,
    pub approach_speed: T,
}

fn contact_rows_write<T: Real>(
    s: &mut Instance<'_, T>,
    first_row: u32,
    frame: ContactFrame<T>,
    friction: T,
    restitution: T,
) {
    let h = s.hdr;
    let dt = T::of(h.dt);
    let gap = frame.gap;
    let violated = gap < T::zero();
    let position_bias = select(gap / dt, T::of(h.contact_erp) * gap / dt, violated);
    let closes_now = gap + dt * frame.approach_speed < T::zero();
    let bounces = closes_now && frame.approach_speed < -T::of(h.restitution_threshold);
    let bias = select(
        position_bias,
        position_bias.min(restitution * frame.approach_speed),
        bounces,
    );
    // A bounce is rigid: a soft row would reach only part of the restitution speed this step
    // and re-aim at a smaller approach speed the next, losing the bounce.
    row_write(
        s,
        first_row,
        frame.normal,
        bias,
        T::zero(),
        T::of(UNBOUNDED),
        T::zero(),
        select(T::of(h.contact_mass_scale), T::one(), bounces),
        select(T::of(h.contact_cfm_scale), T::zero(), bounces),
    );
    for (k, jac) in [frame.tangent1, frame.tangent2].into_iter().enumerate() {
        row_write(
            s,
            first_row + 1 + k as u32,
            jac,
            T::zero(),
            T::zero(),
            T::zero(),
            friction,
            T::one(),
            T::zero(),
        );
    }
}

fn point_jacobian<T: Real>(dir: V3<T>, arm_a: V3<T>, arm_b: V3<T>) -> RowJacobian<T> {
    RowJacobian {
        lin_a: -dir,
        ang_a: -arm_a.cross(dir),
        lin_b: dir,
        ang_b: arm_b.cross(dir),
    }
}

pub fn ground_contact_rows_forward<T: Real>(s: &mut Instance<'_, T>) {
    let h = s.hdr;
    let (zero, one) = (T::zero(), T::one());
    let normal = V3::new(zero, zero, one);
    for c in 0..h.n_contacts {
        let rec = h.off_contact + c * 8;
        let b = s.model_u32(rec);
        let radius = s.model_f32(rec + 4);
        let x = s.body_position(b);
        let centre = x + s.body_orientation(b).rotate(s.model_vec3(rec + 1));
        let point = centre - normal * radius;
        let arm = point - x;
        let frame = ContactFrame {
            normal: point_jacobian(normal, V3::zero(), arm),
            tangent1: point_jacobian(V3::new(one, zero, zero), V3::zero(), arm),
            tangent2: point_jacobian(V3::new(zero, one, zero), V3::zero(), arm),
            gap: centre.z - radius,
            approach_speed: (s.body_velocity(b) + s.body_angular_velocity(b).cross(arm))
                .dot(normal),
        };
        let p = h.p_contact + c * 2;
        let (mu, e) = (s.param(p), s.param(p + 1));
        contact_rows_write(s, h.row_contact + 3 * c, frame, mu, e);
    }
}

fn tangent_basis<T: Real>(n: V3<T>) -> [V3<T>; 2] {
    let one = T::one();
    let sg = select(-one, one, n.z >= T::zero());
    let a = -one / (sg + n.z);
    let b = n.x * n.y * a;
    [
        V3::new(one + sg * n.x * n.x * a, sg * b, -sg * n.x),
        V3::new(b, sg + n.y * n.y * a, -n.y),
    ]
}

pub fn sphere_pair_rows_forward<T: Real>(s: &mut Instance<'_, T>) {
    let h = s.hdr;
    let half = T::of(0.5);
    for p in 0..h.n_pairs {
        let rec = h.off_pair + p * 12;
        let a = s.model_u32(rec);
        let b = s.model_u32(rec + 1);
        let radius_a = s.model_f32(rec + 5);
        let radius_b = s.model_f32(rec + 9);
        let xa = s.body_position(a);
        let xb = s.body_position(b);
        let ca = xa + s.body_orientation(a).rotate(s.model_vec3(rec + 2));
        let cb = xb + s.body_orientation(b).rotate(s.model_vec3(rec + 6));
        let d = cb - ca;
        let dist = d.length();
        let n = d * (T::one() / dist.max(T::of(1.0e-9)));
        let point = ((ca + n * radius_a) + (cb - n * radius_b)) * half;
        let arm_a = point - xa;
        let arm_b = point - xb;
        let t = tangent_basis(n);
        let frame = ContactFrame {
            normal: point_jacobian(n, arm_a, arm_b),
            tangent1: point_jacobian(t[0], arm_a, arm_b),
            tangent2: point_jacobian(t[1], arm_a, arm_b),
            gap: dist - radius_a - radius_b,
            approach_speed: (s.body_velocity(b) + s.body_angular_velocity(b).cross(arm_b)
                - s.body_velocity(a)
                - s.body_angular_velocity(a).cross(arm_a))
            .dot(n),
        };
        let q = h.p_pair + p * 2;
        let (mu, e) = (s.param(q), s.param(q + 1));
        contact_rows_write(s, h.row_pair + 3 * p, frame, mu, e);
    }
}

/// Adjoint of [`contact_rows_write`]: returns the adjoint of the contact frame and of the
/// friction and restitution coefficients.
fn contact_rows_write_adjoint<T: Real>(
    s: &Instance<'_, T>,
    adj: &mut super::Adjoint<T>,
    first_row: u32,
    frame: ContactFrame<T>,
    restitution: T,
) -> (ContactFrame<T>, T, T) {
    use super::solver::row_write_adjoint;
    let h = s.hdr;
    let dt = T::of(h.dt);
    let gap = frame.gap;
    let violated = gap < T::zero();
    let factor = select(T::one(), T::of(h.contact_erp), violated);
    let position_bias = gap / dt * factor;
    let closes_now = gap + dt * frame.approach_speed < T::zero();
    let bounces = closes_now && frame.approach_speed < -T::of(h.restitution_threshold);
    let (d_normal, [d_bias, _, _, _]) = row_write_adjoint(
        s,
        adj,
        first_row,
        frame.normal,
        select(T::of(h.contact_mass_scale), T::one(), bounces),
        select(T::of(h.contact_cfm_scale), T::zero(), bounces),
    );
    let (d_t1, [_, _, _, d_mu1]) =
        row_write_adjoint(s, adj, first_row + 1, frame.tangent1, T::one(), T::zero());
    let (d_t2, [_, _, _, d_mu2]) =
        row_write_adjoint(s, adj, first_row + 2, frame.tangent2, T::one(), T::zero());
    let rest_bias = restitution * frame.approach_speed;
    // bias = select(pb, min(pb, e * approach), bounces)
    // min(a, b) picks b unless a < b.
    let takes_rest = bounces && position_bias >= rest_bias;
    let d_position_bias = select(d_bias, T::zero(), takes_rest);
    let d_rest = select(T::zero(), d_bias, takes_rest);
    (
        ContactFrame {
            normal: d_normal,
            tangent1: d_t1,
            tangent2: d_t2,
            gap: d_position_bias * factor / dt,
            approach_speed: d_rest * restitution,
        },
        d_mu1 + d_mu2,
        d_rest * frame.approach_speed,
    )
}

/// Adjoint of [`point_jacobian`]: (d_dir, d_arm_a, d_arm_b).
fn point_jacobian_adjoint<T: Real>(
    dir: V3<T>,
    arm_a: V3<T>,
    arm_b: V3<T>,
    g: RowJacobian<T>,
) -> (V3<T>, V3<T>, V3<T>) {
    let d_dir = g.lin_b - g.lin_a - g.ang_a.cross(arm_a) + g.ang_b.cross(arm_b);
    (d_dir, -dir.cross(g.ang_a), dir.cross(g.ang_b))
}

pub fn ground_contact_rows_adjoint<T: Real>(s: &mut Instance<'_, T>, adj: &mut super::Adjoint<T>) {
    use super::math::Q;
    let h = s.hdr;
    let (zero, one) = (T::zero(), T::one());
    let normal = V3::new(zero, zero, one);
    let dirs = [normal, V3::new(one, zero, zero), V3::new(zero, one, zero)];
    for c in (0..h.n_contacts).rev() {
        let rec = h.off_contact + c * 8;
        let b = s.model_u32(rec);
        let radius = s.model_f32(rec + 4);
        let offset = s.model_vec3(rec + 1);
        let x = s.body_position(b);
        let q = s.body_orientation(b);
        let v = s.body_velocity(b);
        let w = s.body_angular_velocity(b);
        let centre = x + q.rotate(offset);
        let point = centre - normal * radius;
        let arm = point - x;
        let frame = ContactFrame {
            normal: point_jacobian(normal, V3::zero(), arm),
            tangent1: point_jacobian(dirs[1], V3::zero(), arm),
            tangent2: point_jacobian(dirs[2], V3::zero(), arm),
            gap: centre.z - radius,
            approach_speed: (v + w.cross(arm)).dot(normal),
        };
        let p = h.p_contact + c * 2;
        let (d_frame, d_mu, d_e) =
            contact_rows_write_adjoint(s, adj, h.row_contact + 3 * c, frame, s.param(p + 1));
        adj.param_add(p, d_mu);
        adj.param_add(p + 1, d_e);
        let mut d_arm = V3::zero();
        for (dir, g) in dirs
            .iter()
            .zip([d_frame.normal, d_frame.tangent1, d_frame.tangent2])
        {
            d_arm = d_arm + point_jacobian_adjoint(*dir, V3::zero(), arm, g).2;
        }
        let d_rel = normal * d_frame.approach_speed;
        let slot = Instance::<T>::body_slot(b);
        adj.state_add_vec3(slot + 7, d_rel);
        adj.state_add_vec3(slot + 10, arm.cross(d_rel));
        d_arm = d_arm + d_rel.cross(w);
        let d_centre = d_arm + V3::new(zero, zero, d_frame.gap);
        adj.state_add_vec3(slot, d_centre - d_arm);
        let (dq, _) = Q::rotate_adjoint(q, offset, d_centre);
        adj.state_add_quat(slot + 3, dq);
    }
}

/// Adjoint of [`tangent_basis`].
fn tangent_basis_adjoint<T: Real>(n: V3<T>, g: [V3<T>; 2]) -> V3<T> {
    let one = T::one();
    let two = T::of(2.0);
    let sg = select(-one, one, n.z >= T::zero());
    let a = -one / (sg + n.z);
    let a2 = a * a;
    let d_b = sg * g[0].y + g[1].x;
    V3::new(
        g[0].x * two * sg * n.x * a - sg * g[0].z + d_b * n.y * a,
        g[1].y * two * n.y * a - g[1].z + d_b * n.x * a,
        g[0].x * sg * n.x * n.x * a2 + g[1].y * n.y * n.y * a2 + d_b * n.x * n.y * a2,
    )
}

pub fn sphere_pair_rows_adjoint<T: Real>(s: &mut Instance<'_, T>, adj: &mut super::Adjoint<T>) {
    use super::math::Q;
    let h = s.hdr;
    let half = T::of(0.5);
    let eps = T::of(1.0e-9);
    for p in (0..h.n_pairs).rev() {
        let rec = h.off_pair + p * 12;
        let a = s.model_u32(rec);
        let b = s.model_u32(rec + 1);
        let (oa, ob) = (s.model_vec3(rec + 2), s.model_vec3(rec + 6));
        let radius_a = s.model_f32(rec + 5);
        let radius_b = s.model_f32(rec + 9);
        let (xa, xb) = (s.body_position(a), s.body_position(b));
        let (qa, qb) = (s.body_orientation(a), s.body_orientation(b));
        let (va, vb) = (s.body_velocity(a), s.body_velocity(b));
        let (wa, wb) = (s.body_angular_velocity(a), s.body_angular_velocity(b));
        let ca = xa + qa.rotate(oa);
        let cb = xb + qb.rotate(ob);
        let d = cb - ca;
        let dist = d.length();
        let n = d * (T::one() / dist.max(eps));
        let point = ((ca + n * radius_a) + (cb - n * radius_b)) * half;
        let arm_a = point - xa;
        let arm_b = point - xb;
        let t = tangent_basis(n);
        let relative = vb + wb.cross(arm_b) - va - wa.cross(arm_a);
        let frame = ContactFrame {
            normal: point_jacobian(n, arm_a, arm_b),
            tangent1: point_jacobian(t[0], arm_a, arm_b),
            tangent2: point_jacobian(t[1], arm_a, arm_b),
            gap: dist - radius_a - radius_b,
            approach_speed: relative.dot(n),
        };
        let q = h.p_pair + p * 2;
        let (d_frame, d_mu, d_e) =
            contact_rows_write_adjoint(s, adj, h.row_pair + 3 * p, frame, s.param(q + 1));
        adj.param_add(q, d_mu);
        adj.param_add(q + 1, d_e);
        let (dn0, daa0, dab0) = point_jacobian_adjoint(n, arm_a, arm_b, d_frame.normal);
        let (dt1, daa1, dab1) = point_jacobian_adjoint(t[0], arm_a, arm_b, d_frame.tangent1);
        let (dt2, daa2, dab2) = point_jacobian_adjoint(t[1], arm_a, arm_b, d_frame.tangent2);
        let mut d_n = dn0 + tangent_basis_adjoint(n, [dt1, dt2]);
        let mut d_arm_a = daa0 + daa1 + daa2;
        let mut d_arm_b = dab0 + dab1 + dab2;
        let d_rel = n * d_frame.approach_speed;
        d_n = d_n + relative * d_frame.approach_speed;
        let (sa, sb) = (Instance::<T>::body_slot(a), Instance::<T>::body_slot(b));
        adj.state_add_vec3(sb + 7, d_rel);
        adj.state_add_vec3(sb + 10, arm_b.cross(d_rel));
        d_arm_b = d_arm_b + d_rel.cross(wb);
        adj.state_add_vec3(sa + 7, -d_rel);
        adj.state_add_vec3(sa + 10, -arm_a.cross(d_rel));
        d_arm_a = d_arm_a - d_rel.cross(wa);
        let d_dist = d_frame.gap;
        let d_point = d_arm_a + d_arm_b;
        let mut d_xa = -d_arm_a;
        let mut d_xb = -d_arm_b;
        let mut d_ca = d_point * half;
        let mut d_cb = d_point * half;
        d_n = d_n + d_point * (half * (radius_a - radius_b));
        let d_d = select(
            d_n * (T::one() / eps),
            (d_n - n * n.dot(d_n)) * (T::one() / dist) + n * d_dist,
            dist > eps,
        );
        d_cb = d_cb + d_d;
        d_ca = d_ca - d_d;
        d_xa = d_xa + d_ca;
        d_xb = d_xb + d_cb;
        adj.state_add_vec3(sa, d_xa);
        adj.state_add_vec3(sb, d_xb);
        let (dqa, _) = Q::rotate_adjoint(qa, oa, d_ca);
        let (dqb, _) = Q::rotate_adjoint(qb, ob, d_cb);
        adj.state_add_quat(sa + 3, dqa);
        adj.state_add_quat(sb + 3, dqb);
    }
}
