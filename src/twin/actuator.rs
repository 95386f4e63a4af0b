//! Twin of `shaders/actuator.wgsl`.

use super::Instance;
use super::joint::{joint_axis, joint_record};
use super::math::{Real, inverse_inertia_mul, select};
use super::solver::row_write;

pub fn servo_rows_forward<T: Real>(s: &mut Instance<'_, T>) {
    let h = s.hdr;
    let dt = T::of(h.dt);
    for sv in 0..h.n_servo {
        let rec = h.off_servo + sv * 4;
        let a = s.model_u32(rec);
        let ax = joint_axis(s, s.model_u32(rec + 1), s.model_u32(rec + 2));
        let velocity_servo = s.model_u32(rec + 3) == 1;
        let p = h.p_actuator + a * 3;
        let gain = s.param(p);
        let max_force = s.param(p + 1);
        let max_velocity = s.param(p + 2);
        let u = s.commands[a as usize];
        let target = select(gain * (u - ax.coordinate), u, velocity_servo)
            .max(-max_velocity)
            .min(max_velocity);
        let bound = max_force * dt;
        row_write(
            s,
            h.row_servo + sv,
            ax.jac,
            -target,
            -bound,
            bound,
            T::zero(),
            T::one(),
            T::zero(),
        );
    }
}

pub fn force_actuators_forward<T: Real>(s: &mut Instance<'_, T>) {
    let h = s.hdr;
    let dt = T::of(h.dt);
    for f in 0..h.n_force {
        let rec = h.off_force + f * 4;
        let a = s.model_u32(rec);
        let j = s.model_u32(rec + 1);
        let ax = joint_axis(s, j, s.model_u32(rec + 2));
        let max_force = s.param(h.p_actuator + a * 3 + 1);
        let impulse = s.commands[a as usize].max(-max_force).min(max_force) * dt;
        let jrec = joint_record(s, j);
        let ba = s.model_u32(jrec);
        let bb = s.model_u32(jrec + 1);
        let sa = Instance::<T>::body_slot(ba) + 7;
        let sb = Instance::<T>::body_slot(bb) + 7;
        let qa = s.body_orientation(ba);
        let qb = s.body_orientation(bb);
        let v = s.state_vec3(sa) + ax.jac.lin_a * (impulse * s.body_inverse_mass(ba));
        s.state_set_vec3(sa, v);
        let w = s.state_vec3(sa + 3)
            + inverse_inertia_mul(qa, s.body_inverse_inertia(ba), ax.jac.ang_a) * impulse;
        s.state_set_vec3(sa + 3, w);
        let v = s.state_vec3(sb) + ax.jac.lin_b * (impulse * s.body_inverse_mass(bb));
        s.state_set_vec3(sb, v);
        let w = s.state_vec3(sb + 3)
            + inverse_inertia_mul(qb, s.body_inverse_inertia(bb), ax.jac.ang_b) * impulse;
        s.state_set_vec3(sb + 3, w);
    }
}
