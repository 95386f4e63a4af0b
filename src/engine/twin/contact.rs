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

pub(super) fn point_jacobian<T: Real>(dir: V3<T>, arm_a: V3<T>, arm_b: V3<T>) -> RowJacobian<T> {
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
pub(super) fn point_jacobian_adjoint<T: Real>(
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

/// Mirrors `struct WorldShapeGeometry`.
#[derive(Clone, Copy, Debug)]
struct WorldShapeGeometry<T> {
    is_plane: bool,
    is_cylinder: bool,
    rounding: T,
    half: V3<T>,
}

fn world_shape_geometry<T: Real>(s: &Instance<'_, T>, rec: u32) -> WorldShapeGeometry<T> {
    WorldShapeGeometry {
        is_plane: s.model_f32(rec + 5) != T::zero(),
        is_cylinder: s.model_f32(rec + 6) != T::zero(),
        rounding: s.model_f32(rec + 7),
        half: s.model_vec3(rec + 16),
    }
}

fn sign_or_plus<T: Real>(p: V3<T>) -> V3<T> {
    let sg = |x: T| select(-T::one(), T::one(), x >= T::zero());
    V3::new(sg(p.x), sg(p.y), sg(p.z))
}

fn largest_axis<T: Real>(q: V3<T>) -> V3<T> {
    let x = q.x >= q.y && q.x >= q.z;
    let y = !x && q.y >= q.z;
    let one = |b: bool| select(T::zero(), T::one(), b);
    V3::new(one(x), one(y), one(!x && !y))
}

fn select_v3<T: Real>(f: V3<T>, t: V3<T>, cond: bool) -> V3<T> {
    if cond { t } else { f }
}

/// The intermediate values of `world_distance`, shared with its adjoint.
struct WorldDistanceParts<T> {
    rho: T,
    u: (T, T),
    s: V3<T>,
    q: V3<T>,
    len: T,
    outside: bool,
    nq: V3<T>,
    np: V3<T>,
    dist: T,
    normal: V3<T>,
}

/// Twin of `world_distance`: signed distance and outward normal, both in the shape's frame.
fn world_distance<T: Real>(l: V3<T>, g: &WorldShapeGeometry<T>) -> WorldDistanceParts<T> {
    let zero = T::zero();
    let rho = (l.x * l.x + l.y * l.y).sqrt();
    let r = rho.max(T::of(1.0e-9));
    let u = (l.x / r, l.y / r);
    let p = select_v3(l, V3::new(rho, zero, l.z), g.is_cylinder);
    let s = sign_or_plus(p);
    let q = V3::new(p.x.abs(), p.y.abs(), p.z.abs()) - g.half;
    let m = V3::new(q.x.max(zero), q.y.max(zero), q.z.max(zero));
    let len = m.length();
    let outside = len > zero;
    let inner = q.x.max(q.y.max(q.z)).min(zero);
    let nq = select_v3(
        largest_axis(q),
        m * (T::one() / len.max(T::of(1.0e-30))),
        outside,
    );
    let np = s.mul_elem(nq);
    let n_local = select_v3(np, V3::new(np.x * u.0, np.x * u.1, np.z), g.is_cylinder);
    WorldDistanceParts {
        rho,
        u,
        s,
        q,
        len,
        outside,
        nq,
        np,
        dist: select(len + inner - g.rounding, l.z, g.is_plane),
        normal: select_v3(n_local, V3::new(zero, zero, T::one()), g.is_plane),
    }
}

/// Twin of `world_distance_adjoint`.
fn world_distance_adjoint<T: Real>(
    l: V3<T>,
    g: &WorldShapeGeometry<T>,
    d_dist: T,
    d_normal: V3<T>,
) -> V3<T> {
    let zero = T::zero();
    let eps = T::of(1.0e-9);
    let w = world_distance(l, g);
    let (u, nq, np, s, q, rho) = (w.u, w.nq, w.np, w.s, w.q, w.rho);
    let axis = largest_axis(q);
    let d_box_dist = select(d_dist, zero, g.is_plane);
    let d_nl = select_v3(d_normal, V3::zero(), g.is_plane);
    let d_np = select_v3(
        d_nl,
        V3::new(d_nl.x * u.0 + d_nl.y * u.1, zero, d_nl.z),
        g.is_cylinder,
    );
    let d_u = (np.x * d_nl.x, np.x * d_nl.y);
    let d_nq = s.mul_elem(d_np);
    let d_m = (d_nq - nq * nq.dot(d_nq)) * (T::one() / w.len.max(T::of(1.0e-30))) + nq * d_box_dist;
    let positive = |x: T, d: T| select(zero, d, x > zero);
    let d_q = select_v3(
        axis * d_box_dist,
        V3::new(
            positive(q.x, d_m.x),
            positive(q.y, d_m.y),
            positive(q.z, d_m.z),
        ),
        w.outside,
    );
    let d_p = s.mul_elem(d_q);
    let d_rho_dl = if rho > zero {
        (l.x / rho, l.y / rho)
    } else {
        (zero, zero)
    };
    let d_u_dl = if rho > eps {
        let k = u.0 * d_u.0 + u.1 * d_u.1;
        ((d_u.0 - u.0 * k) / rho, (d_u.1 - u.1 * k) / rho)
    } else {
        (d_u.0 / eps, d_u.1 / eps)
    };
    let radial = V3::new(
        d_p.x * d_rho_dl.0 + d_u_dl.0,
        d_p.x * d_rho_dl.1 + d_u_dl.1,
        d_p.z,
    );
    select_v3(d_p, radial, g.is_cylinder) + V3::new(zero, zero, select(zero, d_dist, g.is_plane))
}

/// The contact of record `rec` at the current state: the contact point's centre in the
/// shape's frame, its signed distance, the world normal and the arm from the body's centre.
struct WorldContactPose<T> {
    local: V3<T>,
    dist: T,
    normal: V3<T>,
    arm: V3<T>,
}

fn world_contact_pose<T: Real>(
    s: &Instance<'_, T>,
    rec: u32,
    g: &WorldShapeGeometry<T>,
) -> WorldContactPose<T> {
    let b = s.model_u32(rec);
    let radius = s.model_f32(rec + 4);
    let shape_rot = s.model_quat(rec + 8);
    let x = s.body_position(b);
    let centre = x + s.body_orientation(b).rotate(s.model_vec3(rec + 1));
    let local = shape_rot.conj().rotate(centre - s.model_vec3(rec + 12));
    let wd = world_distance(local, g);
    let normal = shape_rot.rotate(wd.normal);
    WorldContactPose {
        local,
        dist: wd.dist,
        normal,
        arm: centre - normal * radius - x,
    }
}

pub fn world_contact_rows_forward<T: Real>(s: &mut Instance<'_, T>) {
    let h = s.hdr;
    for c in 0..h.n_world_contacts {
        let rec = h.off_world_contact + c * crate::engine::layout::stride::WORLD_CONTACT as u32;
        let b = s.model_u32(rec);
        let radius = s.model_f32(rec + 4);
        let g = world_shape_geometry(s, rec);
        let pose = world_contact_pose(s, rec, &g);
        let (n, arm) = (pose.normal, pose.arm);
        let t = tangent_basis(n);
        let frame = ContactFrame {
            normal: point_jacobian(n, V3::zero(), arm),
            tangent1: point_jacobian(t[0], V3::zero(), arm),
            tangent2: point_jacobian(t[1], V3::zero(), arm),
            gap: pose.dist - radius,
            approach_speed: (s.body_velocity(b) + s.body_angular_velocity(b).cross(arm)).dot(n),
        };
        let p = h.p_world_contact + c * 2;
        let (mu, e) = (s.param(p), s.param(p + 1));
        contact_rows_write(s, h.row_world_contact + 3 * c, frame, mu, e);
    }
}

pub fn world_contact_rows_adjoint<T: Real>(s: &mut Instance<'_, T>, adj: &mut super::Adjoint<T>) {
    use super::math::Q;
    let h = s.hdr;
    for c in (0..h.n_world_contacts).rev() {
        let rec = h.off_world_contact + c * crate::engine::layout::stride::WORLD_CONTACT as u32;
        let b = s.model_u32(rec);
        let offset = s.model_vec3(rec + 1);
        let radius = s.model_f32(rec + 4);
        let shape_rot = s.model_quat(rec + 8);
        let g = world_shape_geometry(s, rec);
        let pose = world_contact_pose(s, rec, &g);
        let (n, arm) = (pose.normal, pose.arm);
        let q = s.body_orientation(b);
        let w = s.body_angular_velocity(b);
        let relative = s.body_velocity(b) + w.cross(arm);
        let t = tangent_basis(n);
        let frame = ContactFrame {
            normal: point_jacobian(n, V3::zero(), arm),
            tangent1: point_jacobian(t[0], V3::zero(), arm),
            tangent2: point_jacobian(t[1], V3::zero(), arm),
            gap: pose.dist - radius,
            approach_speed: relative.dot(n),
        };
        let p = h.p_world_contact + c * 2;
        let (d_frame, d_mu, d_e) =
            contact_rows_write_adjoint(s, adj, h.row_world_contact + 3 * c, frame, s.param(p + 1));
        adj.param_add(p, d_mu);
        adj.param_add(p + 1, d_e);
        let (dn0, _, dab0) = point_jacobian_adjoint(n, V3::zero(), arm, d_frame.normal);
        let (dt1, _, dab1) = point_jacobian_adjoint(t[0], V3::zero(), arm, d_frame.tangent1);
        let (dt2, _, dab2) = point_jacobian_adjoint(t[1], V3::zero(), arm, d_frame.tangent2);
        let d_rel = n * d_frame.approach_speed;
        let d_arm = dab0 + dab1 + dab2 + d_rel.cross(w);
        let d_n = dn0 + tangent_basis_adjoint(n, [dt1, dt2]) + relative * d_frame.approach_speed
            - d_arm * radius;
        let slot = Instance::<T>::body_slot(b);
        adj.state_add_vec3(slot + 7, d_rel);
        adj.state_add_vec3(slot + 10, arm.cross(d_rel));
        let d_local =
            world_distance_adjoint(pose.local, &g, d_frame.gap, shape_rot.conj().rotate(d_n));
        let d_centre = d_arm + shape_rot.rotate(d_local);
        adj.state_add_vec3(slot, d_centre - d_arm);
        let (dq, _) = Q::rotate_adjoint(q, offset, d_centre);
        adj.state_add_quat(slot + 3, dq);
    }
}
