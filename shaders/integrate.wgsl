// Semi-implicit Euler: velocities first (gravity), positions last (with solved velocities).

fn integrate_velocity_forward(i: u32) {
    let gravity = vec3<f32>(hdr.gravity_x, hdr.gravity_y, hdr.gravity_z) * hdr.dt;
    for (var b = 1u; b < hdr.n_bodies; b++) {
        // A zero inverse mass marks a body pinned in place: it feels no gravity.
        let movable = select(0.0, 1.0, body_inverse_mass(b, i) > 0.0);
        let slot = body_slot(b) + 7u;
        state_set_vec3(slot, i, state_vec3(slot, i) + movable * gravity);
    }
}

fn integrate_position_forward(i: u32) {
    let dt = hdr.dt;
    for (var b = 1u; b < hdr.n_bodies; b++) {
        let slot = body_slot(b);
        let v = body_velocity(b, i);
        let w = body_angular_velocity(b, i);
        state_set_vec3(slot, i, body_position(b, i) + dt * v);
        let q = body_orientation(b, i);
        let q_next = q + 0.5 * dt * quat_mul(vec4<f32>(w, 0.0), q);
        state_set_quat(slot + 3u, i, normalize(q_next));
    }
}

// Gravity adds a constant (its mask has zero derivative): the adjoint passes through.
fn integrate_velocity_adjoint(i: u32) {}

// Adjoint of the position update; the state holds the values before the update.
fn integrate_position_adjoint(i: u32) {
    let dt = hdr.dt;
    let half_dt = 0.5 * dt;
    for (var b = 1u; b < hdr.n_bodies; b++) {
        let slot = body_slot(b);
        state_adj_add_vec3(slot + 7u, i, dt * state_adj_vec3(slot, i));
        let q = body_orientation(b, i);
        let wq = vec4<f32>(body_angular_velocity(b, i), 0.0);
        let raw = q + half_dt * quat_mul(wq, q);
        let out = normalize(raw);
        let g = vec4<f32>(state_adj_vec3(slot + 3u, i), adj_get(hdr.adj_state + slot + 6u, i));
        let draw = quat_normalize_adjoint(raw, out, g);
        let dmul = quat_mul_adjoint(wq, q, half_dt * draw);
        let dq = draw + dmul.b;
        adj_set(hdr.adj_state + slot + 3u, i, dq.x);
        adj_set(hdr.adj_state + slot + 4u, i, dq.y);
        adj_set(hdr.adj_state + slot + 5u, i, dq.z);
        adj_set(hdr.adj_state + slot + 6u, i, dq.w);
        state_adj_add_vec3(slot + 10u, i, dmul.a.xyz);
    }
}
