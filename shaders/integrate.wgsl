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
