//! Twin of `shaders/contact.wgsl`.

use super::Instance;
use super::math::{Real, V3, select};
use super::solver::{RowJacobian, row_write};
use crate::layout::UNBOUNDED;

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
    row_write(
        s,
        first_row,
        frame.normal,
        bias,
        T::zero(),
        T::of(UNBOUNDED),
        T::zero(),
        select(T::one(), T::of(h.contact_mass_scale), violated),
        select(T::zero(), T::of(h.contact_cfm_scale), violated),
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
