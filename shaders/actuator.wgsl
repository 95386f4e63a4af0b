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

// ---- Adjoints.

fn servo_rows_adjoint(i: u32) {
    let dt = hdr.dt;
    for (var s_rev = 0u; s_rev < hdr.n_servo; s_rev++) {
        let s = hdr.n_servo - 1u - s_rev;
        let rec = hdr.off_servo + s * 4u;
        let a = model_u32(rec);
        let j = model_u32(rec + 1u);
        let k = model_u32(rec + 2u);
        let ax = joint_axis(j, k, i);
        let velocity_servo = model_u32(rec + 3u) == 1u;
        let p = hdr.p_actuator + a * 3u;
        let gain = param(p, i);
        let max_velocity = param(p + 2u, i);
        let u = command(a, i);
        let d = row_write_adjoint(hdr.row_servo + s, i, ax.jac, 1.0, 0.0);
        param_adj_add(p + 1u, i, (d.hi - d.lo) * dt);
        let raw = select(gain * (u - ax.coordinate), u, velocity_servo);
        let d_target = -d.bias;
        let above = max(raw, -max_velocity);
        let d_above = select(0.0, d_target, above < max_velocity);
        let d_raw = select(0.0, d_above, raw > -max_velocity);
        param_adj_add(p + 2u, i, (d_target - d_above) - (d_above - d_raw));
        let position = select(1.0, 0.0, velocity_servo);
        param_adj_add(p, i, d_raw * (u - ax.coordinate) * position);
        command_adj_add(a, i, d_raw * select(gain, 1.0, velocity_servo));
        joint_axis_adjoint(j, k, i, d.jac, -d_raw * gain * position);
    }
}

fn force_actuators_adjoint(i: u32) {
    let dt = hdr.dt;
    for (var f_rev = 0u; f_rev < hdr.n_force; f_rev++) {
        let f = hdr.n_force - 1u - f_rev;
        let rec = hdr.off_force + f * 4u;
        let a = model_u32(rec);
        let j = model_u32(rec + 1u);
        let k = model_u32(rec + 2u);
        let ax = joint_axis(j, k, i);
        let p_max = hdr.p_actuator + a * 3u + 1u;
        let max_force = param(p_max, i);
        let u = command(a, i);
        let impulse = clamp(u, -max_force, max_force) * dt;
        let jrec = joint_record(j);
        let ba = model_u32(jrec);
        let bb = model_u32(jrec + 1u);
        let sa = body_slot(ba) + 7u;
        let sb = body_slot(bb) + 7u;
        let qa = body_orientation(ba, i);
        let qb = body_orientation(bb, i);
        let ia = body_inverse_inertia(ba, i);
        let ib = body_inverse_inertia(bb, i);
        let ma = body_inverse_mass(ba, i);
        let mb = body_inverse_mass(bb, i);
        let gva = state_adj_vec3(sa, i);
        let gwa = state_adj_vec3(sa + 3u, i);
        let gvb = state_adj_vec3(sb, i);
        let gwb = state_adj_vec3(sb + 3u, i);
        let d_impulse = dot(ax.jac.lin_a, gva) * ma + dot(inverse_inertia_mul(qa, ia, ax.jac.ang_a), gwa)
                      + dot(ax.jac.lin_b, gvb) * mb + dot(inverse_inertia_mul(qb, ib, ax.jac.ang_b), gwb);
        param_adj_add(ba * BODY_PARAM_LEN, i, impulse * dot(ax.jac.lin_a, gva));
        param_adj_add(bb * BODY_PARAM_LEN, i, impulse * dot(ax.jac.lin_b, gvb));
        let ta = inverse_inertia_mul_adjoint(qa, ia, ax.jac.ang_a, gwa * impulse);
        let tb = inverse_inertia_mul_adjoint(qb, ib, ax.jac.ang_b, gwb * impulse);
        param_adj_add_vec3(ba * BODY_PARAM_LEN + 1u, i, ta.inv_inertia);
        param_adj_add_vec3(bb * BODY_PARAM_LEN + 1u, i, tb.inv_inertia);
        state_adj_add_quat(body_slot(ba) + 3u, i, ta.q);
        state_adj_add_quat(body_slot(bb) + 3u, i, tb.q);
        var d_jac: RowJacobian;
        d_jac.lin_a = gva * (impulse * ma);
        d_jac.ang_a = ta.v;
        d_jac.lin_b = gvb * (impulse * mb);
        d_jac.ang_b = tb.v;
        let d_clamped = d_impulse * dt;
        let above = max(u, -max_force);
        let d_above = select(0.0, d_clamped, above < max_force);
        let d_u = select(0.0, d_above, u > -max_force);
        command_adj_add(a, i, d_u);
        param_adj_add(p_max, i, (d_clamped - d_above) - (d_above - d_u));
        joint_axis_adjoint(j, k, i, d_jac, 0.0);
    }
}
