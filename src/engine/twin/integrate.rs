//! Twin of `shaders/integrate.wgsl`.

use super::Instance;
use super::math::{Q, Real, V3, select};

pub fn integrate_velocity_forward<T: Real>(s: &mut Instance<'_, T>) {
    let h = s.hdr;
    let dt = T::of(h.dt);
    let gravity = V3::new(T::of(h.gravity_x), T::of(h.gravity_y), T::of(h.gravity_z)) * dt;
    for b in 1..h.n_bodies {
        let movable = select(T::zero(), T::one(), s.body_inverse_mass(b) > T::zero());
        let slot = Instance::<T>::body_slot(b) + 7;
        let v = s.state_vec3(slot) + gravity * movable;
        s.state_set_vec3(slot, v);
    }
}

pub fn integrate_position_forward<T: Real>(s: &mut Instance<'_, T>) {
    let dt = T::of(s.hdr.dt);
    let half = T::of(0.5);
    for b in 1..s.hdr.n_bodies {
        let slot = Instance::<T>::body_slot(b);
        let v = s.body_velocity(b);
        let w = s.body_angular_velocity(b);
        let x = s.body_position(b) + v * dt;
        s.state_set_vec3(slot, x);
        let q = s.body_orientation(b);
        let dq = Q::new(w, T::zero()).compose(q);
        let next = Q::new(q.v + dq.v * (half * dt), q.w + dq.w * half * dt).normalize();
        s.state_set_vec3(slot + 3, next.v);
        s.state[slot as usize + 6] = next.w;
    }
}

/// Gravity adds a constant (its mask has zero derivative): the adjoint passes through.
pub fn integrate_velocity_adjoint<T: Real>(_s: &mut Instance<'_, T>, _adj: &mut super::Adjoint<T>) {
}

/// Adjoint of the position update. `s` holds the state before the update.
pub fn integrate_position_adjoint<T: Real>(s: &mut Instance<'_, T>, adj: &mut super::Adjoint<T>) {
    let dt = T::of(s.hdr.dt);
    let half_dt = T::of(0.5) * dt;
    for b in 1..s.hdr.n_bodies {
        let slot = Instance::<T>::body_slot(b);
        // x' = x + dt v
        let dx = adj.state_vec3(slot);
        adj.state_add_vec3(slot + 7, dx * dt);
        // q' = normalize(q + dt/2 (w, 0) q)
        let q = s.body_orientation(b);
        let w = s.body_angular_velocity(b);
        let wq = Q::new(w, T::zero());
        let dq = wq.compose(q);
        let raw = Q::new(q.v + dq.v * half_dt, q.w + dq.w * half_dt);
        let out = raw.normalize();
        let g = Q::new(adj.state_vec3(slot + 3), adj.state[slot as usize + 6]);
        let draw = Q::normalize_adjoint(raw, out, g);
        let scaled = Q::new(draw.v * half_dt, draw.w * half_dt);
        let (dwq, dq_in) = Q::mul_adjoint(wq, q, scaled);
        let dq_total = draw.plus(dq_in);
        let s3 = slot as usize + 3;
        adj.state[s3] = dq_total.v.x;
        adj.state[s3 + 1] = dq_total.v.y;
        adj.state[s3 + 2] = dq_total.v.z;
        adj.state[s3 + 3] = dq_total.w;
        adj.state_add_vec3(slot + 10, dwq.v);
    }
}
