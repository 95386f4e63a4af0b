// Fluid forces: MuJoCo's inertia model (the default one, used where no geom sets
// `fluidshape`), applied as an impulse before gravity, from the velocities at the step's start.
//
// Each body under the fluid (a record `[body, box side x, y, z]`, see `layout::inertia_box`)
// is replaced by its equivalent-inertia box: the box of uniform density with the body's mass
// and principal moments, sides b = (b_x, b_y, b_z). In the body's principal (inertia) frame,
// with v and w the body's linear velocity at its centre of mass and its angular velocity in
// that frame, rho the fluid's density and beta its viscosity, the fluid exerts, per axis,
//
//   force   f = -3 pi beta d v - 1/2 rho (b_y b_z, b_x b_z, b_x b_y) |v| v
//   torque  t = -pi beta d^3 w - rho/64 (b_x (b_y^4 + b_z^4), b_y (b_x^4 + b_z^4),
//                                        b_z (b_x^4 + b_y^4)) |w| w
//
// with d = (b_x + b_y + b_z) / 3 the diameter of the equivalent sphere (Stokes drag) and the
// products of v and w taken component by component: quadratic drag on each face, opposing the
// velocity component across it. MuJoCo (engine_passive.c, mj_inertiaBoxFluidModel; its
// documentation "Fluid forces", "Inertia model") adds these to the passive forces at the
// centre of mass; here the step adds dt f / m to the velocity and dt R I^-1 t to the angular
// velocity, R the body's orientation, explicitly as MuJoCo's Euler integrator does. No wind.
// |v| v is continuously differentiable (its derivative is 2 |v|), so the adjoint is exact
// everywhere. With density and viscosity both zero the host packs no record and the loop runs
// no iteration.

struct FluidCoefficients {
    linear: f32,
    angular: f32,
    quadratic_force: vec3<f32>,
    quadratic_torque: vec3<f32>,
}

fn fluid_coefficients(sides: vec3<f32>) -> FluidCoefficients {
    let rho = hdr.fluid_density;
    let beta = hdr.fluid_viscosity;
    let d = (sides.x + sides.y + sides.z) / 3.0;
    let pi = 3.14159265358979;
    let s4 = sides * sides * sides * sides;
    var c: FluidCoefficients;
    c.linear = 3.0 * pi * beta * d;
    c.angular = pi * beta * d * d * d;
    c.quadratic_force = 0.5 * rho * vec3<f32>(sides.y * sides.z, sides.x * sides.z, sides.x * sides.y);
    c.quadratic_torque = rho / 64.0 * sides * vec3<f32>(s4.y + s4.z, s4.x + s4.z, s4.x + s4.y);
    return c;
}

fn fluid_forces_forward(i: u32) {
    let dt = hdr.dt;
    for (var k = 0u; k < hdr.n_fluid; k++) {
        let rec = hdr.off_fluid + k * FLUID_RECORD_LEN;
        let b = model_u32(rec);
        let c = fluid_coefficients(model_vec3(rec + 1u));
        let q = body_orientation(b, i);
        let v = body_velocity(b, i);
        let w = body_angular_velocity(b, i);
        let v_local = quat_rotate(quat_conj(q), v);
        let w_local = quat_rotate(quat_conj(q), w);
        let force = -(c.linear + c.quadratic_force * abs(v_local)) * v_local;
        let torque = -(c.angular + c.quadratic_torque * abs(w_local)) * w_local;
        let slot = body_slot(b);
        state_set_vec3(slot + 7u, i, v + dt * body_inverse_mass(b, i) * quat_rotate(q, force));
        state_set_vec3(slot + 10u, i, w + dt * quat_rotate(q, body_inverse_inertia(b, i) * torque));
    }
}

// Adjoint; the state holds the step's start (the stage's input). The velocities' adjoints
// keep their identity part and gain the drag's; the orientation and the inverse mass and
// inertia gain theirs.
fn fluid_forces_adjoint(i: u32) {
    let dt = hdr.dt;
    for (var k = 0u; k < hdr.n_fluid; k++) {
        let rec = hdr.off_fluid + k * FLUID_RECORD_LEN;
        let b = model_u32(rec);
        let c = fluid_coefficients(model_vec3(rec + 1u));
        let q = body_orientation(b, i);
        let v = body_velocity(b, i);
        let w = body_angular_velocity(b, i);
        let v_local = quat_rotate(quat_conj(q), v);
        let w_local = quat_rotate(quat_conj(q), w);
        let force = -(c.linear + c.quadratic_force * abs(v_local)) * v_local;
        let torque = -(c.angular + c.quadratic_torque * abs(w_local)) * w_local;
        let slot = body_slot(b);
        let inv_mass = body_inverse_mass(b, i);
        let inv_inertia = body_inverse_inertia(b, i);
        let g_v = state_adj_vec3(slot + 7u, i);
        let g_w = state_adj_vec3(slot + 10u, i);

        // v' = v + dt m^-1 R f(R^T v)
        let force_world = quat_rotate(q, force);
        let outer_v = quat_rotate_adjoint(q, force, dt * inv_mass * g_v);
        let g_v_local = -(c.linear + 2.0 * c.quadratic_force * abs(v_local)) * outer_v.v;
        let inner_v = quat_rotate_adjoint(quat_conj(q), v, g_v_local);
        // w' = w + dt R I^-1 t(R^T w)
        let scaled = inv_inertia * torque;
        let outer_w = quat_rotate_adjoint(q, scaled, dt * g_w);
        let g_w_local = -(c.angular + 2.0 * c.quadratic_torque * abs(w_local)) * (outer_w.v * inv_inertia);
        let inner_w = quat_rotate_adjoint(quat_conj(q), w, g_w_local);

        state_adj_add_vec3(slot + 7u, i, inner_v.v);
        state_adj_add_vec3(slot + 10u, i, inner_w.v);
        state_adj_add_quat(slot + 3u, i, outer_v.q + quat_conj(inner_v.q) + outer_w.q + quat_conj(inner_w.q));
        let p = b * BODY_PARAM_LEN;
        param_adj_add(p, i, dt * dot(g_v, force_world));
        param_adj_add_vec3(p + 1u, i, outer_w.v * torque);
    }
}
