// Constraint rows and the projected Gauss-Seidel solver that every constraint kind feeds.
//
// A row is one scalar velocity constraint between bodies a and b:
//   J = [lin_a, ang_a, lin_b, ang_b],  impulse update  d = -m_c (J v + bias + cfm * lambda),
//   lambda clamped to [lo - mu * lambda_ref, hi + mu * lambda_ref].
// Friction rows use mu and the normal row as reference; every other row has mu = 0.
// Row scratch fields: 0 lin_a, 3 ang_a, 6 lin_b, 9 ang_b, 12..24 M^-1 J^T in the same order,
// 24 m_c, 25 cfm, 26 bias, 27 lo, 28 hi, 29 mu.

struct RowJacobian {
    lin_a: vec3<f32>, ang_a: vec3<f32>, lin_b: vec3<f32>, ang_b: vec3<f32>,
}

fn row_bodies(r: u32) -> vec3<u32> {
    let k = hdr.off_row + r * 4u;
    return vec3<u32>(model_u32(k), model_u32(k + 1u), model_u32(k + 2u));
}

// Writes a row; mass_scale and cfm_scale come from the soft-constraint coefficients
// (1 and 0 for a rigid row).
fn row_write(r: u32, i: u32, jac: RowJacobian, bias: f32, lo: f32, hi: f32, mu: f32,
             mass_scale: f32, cfm_scale: f32) {
    let bodies = row_bodies(r);
    let a = bodies.x;
    let b = bodies.y;
    let minv_lin_a = body_inverse_mass(a, i) * jac.lin_a;
    let minv_ang_a = inverse_inertia_mul(body_orientation(a, i), body_inverse_inertia(a, i), jac.ang_a);
    let minv_lin_b = body_inverse_mass(b, i) * jac.lin_b;
    let minv_ang_b = inverse_inertia_mul(body_orientation(b, i), body_inverse_inertia(b, i), jac.ang_b);
    let k = max(dot(jac.lin_a, minv_lin_a) + dot(jac.ang_a, minv_ang_a)
              + dot(jac.lin_b, minv_lin_b) + dot(jac.ang_b, minv_ang_b), 1.0e-12);
    row_set_vec3(r, 0u, i, jac.lin_a);
    row_set_vec3(r, 3u, i, jac.ang_a);
    row_set_vec3(r, 6u, i, jac.lin_b);
    row_set_vec3(r, 9u, i, jac.ang_b);
    row_set_vec3(r, 12u, i, minv_lin_a);
    row_set_vec3(r, 15u, i, minv_ang_a);
    row_set_vec3(r, 18u, i, minv_lin_b);
    row_set_vec3(r, 21u, i, minv_ang_b);
    row_set(r, 24u, i, mass_scale / k);
    row_set(r, 25u, i, cfm_scale * k);
    row_set(r, 26u, i, bias);
    row_set(r, 27u, i, lo);
    row_set(r, 28u, i, hi);
    row_set(r, 29u, i, mu);
}

// Relative velocity J v of a row's bodies.
fn row_velocity(r: u32, a: u32, b: u32, i: u32) -> f32 {
    return dot(row_vec3(r, 0u, i), body_velocity(a, i))
         + dot(row_vec3(r, 3u, i), body_angular_velocity(a, i))
         + dot(row_vec3(r, 6u, i), body_velocity(b, i))
         + dot(row_vec3(r, 9u, i), body_angular_velocity(b, i));
}

fn row_apply_impulse(r: u32, a: u32, b: u32, i: u32, impulse: f32) {
    let sa = body_slot(a) + 7u;
    let sb = body_slot(b) + 7u;
    state_set_vec3(sa, i, state_vec3(sa, i) + impulse * row_vec3(r, 12u, i));
    state_set_vec3(sa + 3u, i, state_vec3(sa + 3u, i) + impulse * row_vec3(r, 15u, i));
    state_set_vec3(sb, i, state_vec3(sb, i) + impulse * row_vec3(r, 18u, i));
    state_set_vec3(sb + 3u, i, state_vec3(sb + 3u, i) + impulse * row_vec3(r, 21u, i));
}

// Warm start from last step's impulses, then a fixed number of sweeps over all rows. The
// accumulated impulses stay in the state for the next step's warm start.
fn solve_forward(i: u32) {
    for (var r = 0u; r < hdr.n_rows; r++) {
        let bodies = row_bodies(r);
        let lambda = hdr.warm_start * state_get(hdr.state_lambda + r, i);
        state_set(hdr.state_lambda + r, i, lambda);
        row_apply_impulse(r, bodies.x, bodies.y, i, lambda);
    }
    for (var sweep = 0u; sweep < hdr.sweeps; sweep++) {
        for (var r = 0u; r < hdr.n_rows; r++) {
            let bodies = row_bodies(r);
            let lambda = state_get(hdr.state_lambda + r, i);
            let lambda_ref = state_get(hdr.state_lambda + bodies.z, i);
            let mu = row_get(r, 29u, i);
            let lo = row_get(r, 27u, i) - mu * lambda_ref;
            let hi = row_get(r, 28u, i) + mu * lambda_ref;
            let jv = row_velocity(r, bodies.x, bodies.y, i);
            let unclamped = lambda - row_get(r, 24u, i) * (jv + row_get(r, 26u, i) + row_get(r, 25u, i) * lambda);
            let lambda_new = min(max(unclamped, lo), hi);
            state_set(hdr.state_lambda + r, i, lambda_new);
            row_apply_impulse(r, bodies.x, bodies.y, i, lambda_new - lambda);
        }
    }
}
