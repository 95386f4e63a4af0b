// Actuators on joint axes. Servos are rows whose impulse is clamped to max_force * dt and
// whose target speed is clamp(gain * (command - position), +-max_velocity) for the paper's
// position servo, or clamp(command, +-max_velocity) for a velocity servo. A force actuator
// applies clamp(command, +-max_force) * dt as an impulse along the axis before the solve.

fn servo_rows_forward(i: u32) {
    let dt = hdr.dt;
    for (var s = 0u; s < hdr.n_servo; s++) {
        let rec = hdr.off_servo + s * 4u;
        let a = model_u32(rec);
        let ax = joint_axis(model_u32(rec + 1u), model_u32(rec + 2u), i);
        let velocity_servo = model_u32(rec + 3u) == 1u;
        let p = hdr.p_actuator + a * 3u;
        let gain = param(p, i);
        let max_force = param(p + 1u, i);
        let max_velocity = param(p + 2u, i);
        let u = command(a, i);
        let target_speed = clamp(select(gain * (u - ax.coordinate), u, velocity_servo), -max_velocity, max_velocity);
        let bound = max_force * dt;
        row_write(hdr.row_servo + s, i, ax.jac, -target_speed, -bound, bound, 0.0, 1.0, 0.0);
    }
}

fn force_actuators_forward(i: u32) {
    let dt = hdr.dt;
    for (var f = 0u; f < hdr.n_force; f++) {
        let rec = hdr.off_force + f * 4u;
        let a = model_u32(rec);
        let j = model_u32(rec + 1u);
        let ax = joint_axis(j, model_u32(rec + 2u), i);
        let max_force = param(hdr.p_actuator + a * 3u + 1u, i);
        let impulse = clamp(command(a, i), -max_force, max_force) * dt;
        let jrec = joint_record(j);
        let ba = model_u32(jrec);
        let bb = model_u32(jrec + 1u);
        let sa = body_slot(ba) + 7u;
        let sb = body_slot(bb) + 7u;
        let qa = body_orientation(ba, i);
        let qb = body_orientation(bb, i);
        state_set_vec3(sa, i, state_vec3(sa, i) + impulse * body_inverse_mass(ba, i) * ax.jac.lin_a);
        state_set_vec3(sa + 3u, i, state_vec3(sa + 3u, i) + impulse * inverse_inertia_mul(qa, body_inverse_inertia(ba, i), ax.jac.ang_a));
        state_set_vec3(sb, i, state_vec3(sb, i) + impulse * body_inverse_mass(bb, i) * ax.jac.lin_b);
        state_set_vec3(sb + 3u, i, state_vec3(sb + 3u, i) + impulse * inverse_inertia_mul(qb, body_inverse_inertia(bb, i), ax.jac.ang_b));
    }
}
