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
        let dq = Q::new(w, T::zero()).mul(q);
        let next = Q::new(q.v + dq.v * (half * dt), q.w + dq.w * half * dt).normalize();
        s.state_set_vec3(slot + 3, next.v);
        s.state[slot as usize + 6] = next.w;
    }
}
