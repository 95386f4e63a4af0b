// Constraint rows and the projected Gauss-Seidel solver that every constraint kind feeds.
//
// A row is one scalar velocity constraint between bodies a and b:
//   J = [lin_a, ang_a, lin_b, ang_b],  impulse update  d = -m_c (J v + bias + cfm * lambda),
//   lambda clamped to [lo - mu * lambda_ref, hi + mu * lambda_ref].
// Friction rows use mu and the normal row as reference; every other row has mu = 0.
// A row's relaxation omega (word 4 of the row's model-table entry, 1 unless the model's
// solver_relaxation relaxes it) scales the step: d = -omega m_c (...), computed as
// (omega m_c) (...) so that omega = 1 leaves every bit of plain Gauss-Seidel.
// Row scratch fields: 0 lin_a, 3 ang_a, 6 lin_b, 9 ang_b, 12..24 M^-1 J^T in the same order,
// 24 m_c, 25 cfm, 26 bias, 27 lo, 28 hi, 29 mu. On the GPU they are packed into 8 vec4
// records (`row_field` in common.wgsl): record k holds vec3 field 3k in xyz, and records 0-5
// hold m_c, cfm, bias, lo, hi, mu in w.
//
// The sweeps run from private (function-scope) copies of the bodies' velocities and the
// accumulated impulses when the model fits PRIVATE_SOLVER_BODIES and PRIVATE_SOLVER_ROWS
// (constants the host prepends, `layout::PRIVATE_SOLVER_*`): a CPU driver scalarises every
// storage access whose address differs per lane, and a GPU sends it to global memory. Larger
// models run the same arithmetic on the storage copies.

struct RowJacobian {
    lin_a: vec3<f32>, ang_a: vec3<f32>, lin_b: vec3<f32>, ang_b: vec3<f32>,
}

fn row_bodies(r: u32) -> vec3<u32> {
    let k = hdr.off_row + r * ROW_RECORD_LEN;
    return vec3<u32>(model_u32(k), model_u32(k + 1u), model_u32(k + 2u));
}

fn row_relaxation(r: u32) -> f32 {
    let k = hdr.off_row + r * ROW_RECORD_LEN;
    return model_f32(k + 4u);
}

// What row_write reads of a row's body: its orientation, inverse mass and inverse inertia.
// Rows that share bodies (a joint's rows, a contact's three) load it once: on a CPU driver
// each scalar storage load is a loop over the lanes.
struct BodyMass { q: vec4<f32>, inv_mass: f32, inv_inertia: vec3<f32>, }

fn body_mass(b: u32, i: u32) -> BodyMass {
    return BodyMass(body_orientation(b, i), body_inverse_mass(b, i), body_inverse_inertia(b, i));
}

// Writes a row; mass_scale and cfm_scale come from the soft-constraint coefficients
// (1 and 0 for a rigid row).
fn row_write(r: u32, i: u32, jac: RowJacobian, bias: f32, lo: f32, hi: f32, mu: f32,
             mass_scale: f32, cfm_scale: f32) {
    let bodies = row_bodies(r);
    row_write_bodies(r, i, jac, body_mass(bodies.x, i), body_mass(bodies.y, i), bias, lo, hi, mu,
                     mass_scale, cfm_scale);
}

// row_write with the mass data of the row's bodies a and b (`row_bodies(r)`) given.
fn row_write_bodies(r: u32, i: u32, jac: RowJacobian, mass_a: BodyMass, mass_b: BodyMass,
                    bias: f32, lo: f32, hi: f32, mu: f32, mass_scale: f32, cfm_scale: f32) {
    let minv_lin_a = mass_a.inv_mass * jac.lin_a;
    let minv_ang_a = inverse_inertia_mul(mass_a.q, mass_a.inv_inertia, jac.ang_a);
    let minv_lin_b = mass_b.inv_mass * jac.lin_b;
    let minv_ang_b = inverse_inertia_mul(mass_b.q, mass_b.inv_inertia, jac.ang_b);
    let k = max(dot(jac.lin_a, minv_lin_a) + dot(jac.ang_a, minv_ang_a)
              + dot(jac.lin_b, minv_lin_b) + dot(jac.ang_b, minv_ang_b), 1.0e-12);
    // A row with a linear part takes its softness (CFM) from the bodies' inverse masses alone,
    // so a joint's stiffness m w^2 does not depend on how the row's axis lies relative to the
    // lever arms (with a light-inertia body a world-axis row's K is dominated by rotation);
    // a purely angular row uses its own K. m_c = 1 / (K + CFM).
    let k_lin = dot(jac.lin_a, minv_lin_a) + dot(jac.lin_b, minv_lin_b);
    let k_soft = select(k, k_lin, k_lin > 0.0);
    let m_c = mass_scale / (mass_scale * (k - k_soft) + k_soft);
    // Whole records (the layout of `row_field`): 8 vector stores instead of 30 scalar ones,
    // which a CPU driver would turn into a loop over the lanes each.
    rows[row_index(r, 0u, i)] = vec4<f32>(jac.lin_a, m_c);
    rows[row_index(r, 1u, i)] = vec4<f32>(jac.ang_a, cfm_scale * k_soft);
    rows[row_index(r, 2u, i)] = vec4<f32>(jac.lin_b, bias);
    rows[row_index(r, 3u, i)] = vec4<f32>(jac.ang_b, lo);
    rows[row_index(r, 4u, i)] = vec4<f32>(minv_lin_a, hi);
    rows[row_index(r, 5u, i)] = vec4<f32>(minv_ang_a, mu);
    rows[row_index(r, 6u, i)] = vec4<f32>(minv_lin_b, 0.0);
    rows[row_index(r, 7u, i)] = vec4<f32>(minv_ang_b, 0.0);
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

fn solve_warm_start(i: u32) {
    for (var r = 0u; r < hdr.n_rows; r++) {
        let bodies = row_bodies(r);
        let lambda = hdr.warm_start * state_get(hdr.state_lambda + r, i);
        state_set(hdr.state_lambda + r, i, lambda);
        row_apply_impulse(r, bodies.x, bodies.y, i, lambda);
    }
}

// One projected Gauss-Seidel update of row r; returns the row's new accumulated impulse.
fn solve_row(r: u32, i: u32) -> f32 {
    let bodies = row_bodies(r);
    let lambda = state_get(hdr.state_lambda + r, i);
    let lambda_ref = state_get(hdr.state_lambda + bodies.z, i);
    let mu = row_get(r, 29u, i);
    let lo = row_get(r, 27u, i) - mu * lambda_ref;
    let hi = row_get(r, 28u, i) + mu * lambda_ref;
    let jv = row_velocity(r, bodies.x, bodies.y, i);
    let m_c = row_relaxation(r) * row_get(r, 24u, i);
    let unclamped = lambda - m_c * (jv + row_get(r, 26u, i) + row_get(r, 25u, i) * lambda);
    let lambda_new = min(max(unclamped, lo), hi);
    state_set(hdr.state_lambda + r, i, lambda_new);
    row_apply_impulse(r, bodies.x, bodies.y, i, lambda_new - lambda);
    return lambda_new;
}

// Warm start from last step's impulses, then a fixed number of sweeps over all rows. The
// accumulated impulses stay in the state for the next step's warm start.
fn solve_forward(i: u32) {
    if (solver_state_fits_private()) {
        solve_forward_private(i);
        return;
    }
    solve_warm_start(i);
    if (model_has_axis_blocks()) {
        for (var sweep = 0u; sweep < hdr.sweeps; sweep++) {
            for (var r = 0u; r < hdr.n_rows; r++) {
                solve_row_or_block(r, i);
            }
        }
        return;
    }
    for (var sweep = 0u; sweep < hdr.sweeps; sweep++) {
        for (var r = 0u; r < hdr.n_rows; r++) {
            solve_row(r, i);
        }
    }
}

// Whether any row leads or follows a joint-axis block. The sweeps branch on it once, outside
// their loops: a block test inside the row loop halved the quadruped's forward speed on
// lavapipe (measured: 9,400 against 19,100-19,500 robot-steps/s at N = 1,024), though the
// model has no block. The model table is the same for every invocation, so the branch is
// uniform.
fn model_has_axis_blocks() -> bool {
    var any = false;
    for (var r = 0u; r < hdr.n_rows; r++) {
        any = any || row_block(r) != 0u;
    }
    return any;
}

fn solver_state_fits_private() -> bool {
    return hdr.n_bodies <= PRIVATE_SOLVER_BODIES && hdr.n_rows <= PRIVATE_SOLVER_ROWS;
}

// The solver state in private memory: velocities (linear at 2b, angular at 2b + 1) and
// accumulated impulses.
struct PrivateSolverState {
    velocity: array<vec3<f32>, PRIVATE_SOLVER_VELOCITIES>,
    lambda: array<f32, PRIVATE_SOLVER_ROWS>,
}

// Loads the velocities and applies the warm start (solve_warm_start's operations).
fn private_solver_start(i: u32, s: ptr<function, PrivateSolverState>) {
    for (var b = 0u; b < hdr.n_bodies; b++) {
        (*s).velocity[2u * b] = body_velocity(b, i);
        (*s).velocity[2u * b + 1u] = body_angular_velocity(b, i);
    }
    for (var r = 0u; r < hdr.n_rows; r++) {
        let bodies = row_bodies(r);
        let l = hdr.warm_start * state_get(hdr.state_lambda + r, i);
        (*s).lambda[r] = l;
        let a = 2u * bodies.x;
        let b = 2u * bodies.y;
        (*s).velocity[a] = (*s).velocity[a] + l * row_record(r, 4u, i).xyz;
        (*s).velocity[a + 1u] = (*s).velocity[a + 1u] + l * row_record(r, 5u, i).xyz;
        (*s).velocity[b] = (*s).velocity[b] + l * row_record(r, 6u, i).xyz;
        (*s).velocity[b + 1u] = (*s).velocity[b + 1u] + l * row_record(r, 7u, i).xyz;
    }
}

// solve_row on the private state: the same operations in the same order, so the same bits.
fn private_solve_row(r: u32, i: u32, s: ptr<function, PrivateSolverState>) -> f32 {
    let bodies = row_bodies(r);
    let a = 2u * bodies.x;
    let b = 2u * bodies.y;
    let f0 = row_record(r, 0u, i);
    let f1 = row_record(r, 1u, i);
    let f2 = row_record(r, 2u, i);
    let f3 = row_record(r, 3u, i);
    let f4 = row_record(r, 4u, i);
    let f5 = row_record(r, 5u, i);
    let f6 = row_record(r, 6u, i);
    let f7 = row_record(r, 7u, i);
    let lambda_old = (*s).lambda[r];
    let lambda_ref = (*s).lambda[bodies.z];
    let mu = f5.w;
    let lo = f3.w - mu * lambda_ref;
    let hi = f4.w + mu * lambda_ref;
    let jv = dot(f0.xyz, (*s).velocity[a]) + dot(f1.xyz, (*s).velocity[a + 1u])
           + dot(f2.xyz, (*s).velocity[b]) + dot(f3.xyz, (*s).velocity[b + 1u]);
    let m_c = row_relaxation(r) * f0.w;
    let unclamped = lambda_old - m_c * (jv + f2.w + f1.w * lambda_old);
    let lambda_new = min(max(unclamped, lo), hi);
    (*s).lambda[r] = lambda_new;
    let impulse = lambda_new - lambda_old;
    (*s).velocity[a] = (*s).velocity[a] + impulse * f4.xyz;
    (*s).velocity[a + 1u] = (*s).velocity[a + 1u] + impulse * f5.xyz;
    (*s).velocity[b] = (*s).velocity[b] + impulse * f6.xyz;
    (*s).velocity[b + 1u] = (*s).velocity[b + 1u] + impulse * f7.xyz;
    return lambda_new;
}

fn private_solver_store(i: u32, s: ptr<function, PrivateSolverState>) {
    for (var b = 0u; b < hdr.n_bodies; b++) {
        state_set_vec3(body_slot(b) + 7u, i, (*s).velocity[2u * b]);
        state_set_vec3(body_slot(b) + 10u, i, (*s).velocity[2u * b + 1u]);
    }
    for (var r = 0u; r < hdr.n_rows; r++) {
        state_set(hdr.state_lambda + r, i, (*s).lambda[r]);
    }
}

fn solve_forward_private(i: u32) {
    var s: PrivateSolverState;
    private_solver_start(i, &s);
    if (model_has_axis_blocks()) {
        for (var sweep = 0u; sweep < hdr.sweeps; sweep++) {
            for (var r = 0u; r < hdr.n_rows; r++) {
                private_solve_row_or_block(r, i, &s);
            }
        }
    } else {
        for (var sweep = 0u; sweep < hdr.sweeps; sweep++) {
            for (var r = 0u; r < hdr.n_rows; r++) {
                private_solve_row(r, i, &s);
            }
        }
    }
    private_solver_store(i, &s);
}

// The block test stays out of the row loop where the model has no block, as in
// solve_forward_private (a per-row test halved the plain forward's speed on lavapipe).
fn solve_forward_taped_private(i: u32) {
    var s: PrivateSolverState;
    private_solver_start(i, &s);
    if (model_has_axis_blocks()) {
        for (var sweep = 0u; sweep < hdr.sweeps; sweep++) {
            for (var r = 0u; r < hdr.n_rows; r++) {
                tape_set_impulse(sweep, r, i, private_solve_row_or_block(r, i, &s));
            }
        }
    } else if (tape_plan.recorded != 0u) {
        for (var sweep = 0u; sweep < hdr.sweeps; sweep++) {
            var at = tape_index(sweep * hdr.n_rows, i);
            for (var r = 0u; r < hdr.n_rows; r++) {
                tape[at] = private_solve_row(r, i, &s);
                at += instance_slot_stride();
            }
        }
    } else {
        for (var sweep = 0u; sweep < hdr.sweeps; sweep++) {
            var at = history_index(sweep, i);
            for (var r = 0u; r < hdr.n_rows; r++) {
                adjoint[at] = private_solve_row(r, i, &s);
                at += instance_slot_stride();
            }
        }
    }
    private_solver_store(i, &s);
}

// ---- Adjoint of the solver.

// solve_forward, also recording every row's impulse after every sweep: into the tape in
// step_forward_taped (`tape_plan.recorded`), into the adjoint's history region in
// step_adjoint's recomputation. Without blocks each sweep computes its first store index once
// and steps it by instance_slot_stride(): with tape_index's arithmetic and the destination's
// branch in every row update the taped forward ran at 0.83-0.88 of the plain one's
// robot-steps per CPU-second on lavapipe, without them at 0.95-1.0 in 5 of 6 samples
// (quadruped, N = 256).
fn solve_forward_taped(i: u32) {
    if (solver_state_fits_private()) {
        solve_forward_taped_private(i);
        return;
    }
    solve_warm_start(i);
    if (model_has_axis_blocks()) {
        for (var sweep = 0u; sweep < hdr.sweeps; sweep++) {
            for (var r = 0u; r < hdr.n_rows; r++) {
                tape_set_impulse(sweep, r, i, solve_row_or_block(r, i));
            }
        }
        return;
    }
    if (tape_plan.recorded != 0u) {
        for (var sweep = 0u; sweep < hdr.sweeps; sweep++) {
            var at = tape_index(sweep * hdr.n_rows, i);
            for (var r = 0u; r < hdr.n_rows; r++) {
                tape[at] = solve_row(r, i);
                at += instance_slot_stride();
            }
        }
        return;
    }
    for (var sweep = 0u; sweep < hdr.sweeps; sweep++) {
        var at = history_index(sweep, i);
        for (var r = 0u; r < hdr.n_rows; r++) {
            adjoint[at] = solve_row(r, i);
            at += instance_slot_stride();
        }
    }
}

// The tape of a step: every row's impulse after every sweep (sweep-major), then every body's
// linear and angular velocity after the solve. Where the rollout records it in its forward
// passes (`tape_plan.recorded`), the tape array holds `tape_plan.window` steps, step t at
// t % window, and the adjoint replays it instead of re-running the sweeps; otherwise the
// adjoint kernel records the impulses of the step it recomputes in its history region.
fn tape_len() -> u32 {
    return hdr.sweeps * hdr.n_rows + 6u * hdr.n_bodies;
}

fn tape_index(k: u32, i: u32) -> u32 {
    return instance_index(tape_plan.width, (hdr.command_base_step % tape_plan.window) * tape_len() + k, i);
}

// Records row r's impulse after sweep `sweep` (0-based), for the sweeps with blocks. The
// branch is uniform.
fn tape_set_impulse(sweep: u32, r: u32, i: u32, lambda: f32) {
    if (tape_plan.recorded != 0u) {
        tape[tape_index(sweep * hdr.n_rows + r, i)] = lambda;
    } else {
        adj_set(hdr.adj_history + sweep * hdr.n_rows + r, i, lambda);
    }
}

// Where row 0's impulse after sweep `sweep` (0-based) lies in the adjoint's history region;
// row r's lies r instance_slot_stride() further on.
fn history_index(sweep: u32, i: u32) -> u32 {
    return instance_index(hdr.adj_len, hdr.adj_history + sweep * hdr.n_rows, i);
}

// How far apart consecutive slots of one instance lie in a per-instance array:
// instance_index is linear in the slot with this factor. The taped sweeps advance their
// store index by it instead of recomputing tape_index (a division, two remainders and a
// multiplication) for every row update.
fn instance_slot_stride() -> u32 {
    return min(INSTANCE_BLOCK, hdr.n_instances);
}

// Records every body's velocities after the solve (the taped forward's last solver record).
fn tape_record_velocities(i: u32) {
    let base = hdr.sweeps * hdr.n_rows;
    for (var b = 0u; b < hdr.n_bodies; b++) {
        let v = body_velocity(b, i);
        let w = body_angular_velocity(b, i);
        let k = base + 6u * b;
        tape[tape_index(k, i)] = v.x;
        tape[tape_index(k + 1u, i)] = v.y;
        tape[tape_index(k + 2u, i)] = v.z;
        tape[tape_index(k + 3u, i)] = w.x;
        tape[tape_index(k + 4u, i)] = w.y;
        tape[tape_index(k + 5u, i)] = w.z;
    }
}

// The solve's effect on the state, from the tape: the velocities and impulses the sweeps
// left, bit for bit, without running them.
fn solve_replay_tape(i: u32) {
    let base = hdr.sweeps * hdr.n_rows;
    for (var b = 0u; b < hdr.n_bodies; b++) {
        let k = base + 6u * b;
        let slot = body_slot(b) + 7u;
        state_set_vec3(slot, i, vec3<f32>(tape[tape_index(k, i)], tape[tape_index(k + 1u, i)], tape[tape_index(k + 2u, i)]));
        state_set_vec3(slot + 3u, i, vec3<f32>(tape[tape_index(k + 3u, i)], tape[tape_index(k + 4u, i)], tape[tape_index(k + 5u, i)]));
    }
    for (var r = 0u; r < hdr.n_rows; r++) {
        state_set(hdr.state_lambda + r, i, lambda_history(hdr.sweeps, r, i));
    }
}

// Impulse of row r after `sweep` sweeps; sweep 0 is the warm start.
// (`sweep` is the same for every instance: the branches are uniform.)
fn lambda_history(sweep: u32, r: u32, i: u32) -> f32 {
    if (sweep == 0u) {
        return hdr.warm_start * adj_get(hdr.adj_start + hdr.state_lambda + r, i);
    }
    if (tape_plan.recorded != 0u) {
        return tape[tape_index((sweep - 1u) * hdr.n_rows + r, i)];
    }
    return adj_get(hdr.adj_history + (sweep - 1u) * hdr.n_rows + r, i);
}

// Adjoint of v += M^-1 J^T impulse: returns d(impulse), accumulates d(M^-1 J^T).
fn row_apply_impulse_adjoint(r: u32, a: u32, b: u32, i: u32, impulse: f32) -> f32 {
    let sa = body_slot(a) + 7u;
    let sb = body_slot(b) + 7u;
    let gva = state_adj_vec3(sa, i);
    let gwa = state_adj_vec3(sa + 3u, i);
    let gvb = state_adj_vec3(sb, i);
    let gwb = state_adj_vec3(sb + 3u, i);
    row_adj_add_vec3(r, 12u, i, gva * impulse);
    row_adj_add_vec3(r, 15u, i, gwa * impulse);
    row_adj_add_vec3(r, 18u, i, gvb * impulse);
    row_adj_add_vec3(r, 21u, i, gwb * impulse);
    return dot(row_vec3(r, 12u, i), gva) + dot(row_vec3(r, 15u, i), gwa)
         + dot(row_vec3(r, 18u, i), gvb) + dot(row_vec3(r, 21u, i), gwb);
}

// The velocities of a row's two bodies (or their adjoints), held in registers while a row
// update is reversed: each is read and written once per update.
struct RowBodies { va: vec3<f32>, wa: vec3<f32>, vb: vec3<f32>, wb: vec3<f32>, }

fn load_velocities(sa: u32, sb: u32, i: u32) -> RowBodies {
    return RowBodies(state_vec3(sa, i), state_vec3(sa + 3u, i), state_vec3(sb, i), state_vec3(sb + 3u, i));
}

fn store_velocities(sa: u32, sb: u32, i: u32, v: RowBodies) {
    state_set_vec3(sa, i, v.va);
    state_set_vec3(sa + 3u, i, v.wa);
    state_set_vec3(sb, i, v.vb);
    state_set_vec3(sb + 3u, i, v.wb);
}

fn load_velocity_adjoints(sa: u32, sb: u32, i: u32) -> RowBodies {
    return RowBodies(state_adj_vec3(sa, i), state_adj_vec3(sa + 3u, i), state_adj_vec3(sb, i), state_adj_vec3(sb + 3u, i));
}

// Written out rather than looped: lavapipe counts every loop iteration of an invocation
// against its cap of 65,535 (see layout::LOOP_ITERATION_CAP).
fn store_velocity_adjoints(sa: u32, sb: u32, i: u32, g: RowBodies) {
    store_velocity_adjoints_of(sa, i, g.va, g.wa);
    store_velocity_adjoints_of(sb, i, g.vb, g.wb);
}

// Reverse of the Gauss-Seidel solve. The state holds the velocities after the solve and walks
// them back update by update; the adjoint of the state goes from after to before the solve
// and every row field's adjoint is accumulated. Mirrors `solve_adjoint` in the twin, with each
// row's fields and the two bodies' velocities and adjoints loaded once per update.
fn solve_adjoint(i: u32) {
    if (solver_state_fits_private()) {
        solve_adjoint_private(i);
        return;
    }
    if (model_has_axis_blocks()) {
        for (var sweep_rev = 0u; sweep_rev < hdr.sweeps; sweep_rev++) {
            let sweep = hdr.sweeps - sweep_rev;
            for (var r_rev = 0u; r_rev < hdr.n_rows; r_rev++) {
                let r = hdr.n_rows - 1u - r_rev;
                let block = row_block(r);
                if (block == ROW_BLOCK_FOLLOWER) { continue; }
                if (block != 0u) {
                    solve_axis_block_adjoint(sweep, r, block - 1u, i);
                    continue;
                }
                reverse_row_update(sweep, r, i);
            }
        }
    } else {
        for (var sweep_rev = 0u; sweep_rev < hdr.sweeps; sweep_rev++) {
            let sweep = hdr.sweeps - sweep_rev;
            for (var r_rev = 0u; r_rev < hdr.n_rows; r_rev++) {
                reverse_row_update(sweep, hdr.n_rows - 1u - r_rev, i);
            }
        }
    }
    for (var r_rev = 0u; r_rev < hdr.n_rows; r_rev++) {
        let r = hdr.n_rows - 1u - r_rev;
        let bodies = row_bodies(r);
        let lambda = lambda_history(0u, r, i);
        row_apply_impulse(r, bodies.x, bodies.y, i, -lambda);
        let lam_slot = hdr.adj_state + hdr.state_lambda + r;
        let d_lambda = adj_get(lam_slot, i) + row_apply_impulse_adjoint(r, bodies.x, bodies.y, i, lambda);
        adj_set(lam_slot, i, hdr.warm_start * d_lambda);
    }
}

// Reverse of solve_row's update of row r in sweep `sweep` (counting from 1) on the storage
// copies: walks the velocities back to before the update, takes the velocities' and impulses'
// adjoints through it and accumulates the row's field adjoints.
fn reverse_row_update(sweep: u32, r: u32, i: u32) {
    let bodies = row_bodies(r);
    let reference = bodies.z;
    let sa = body_slot(bodies.x) + 7u;
    let sb = body_slot(bodies.y) + 7u;
    let lambda_old = lambda_history(sweep - 1u, r, i);
    let delta = lambda_history(sweep, r, i) - lambda_old;
    let m_lin_a = row_vec3(r, 12u, i);
    let m_ang_a = row_vec3(r, 15u, i);
    let m_lin_b = row_vec3(r, 18u, i);
    let m_ang_b = row_vec3(r, 21u, i);
    // Walk the velocities back to before this update.
    var v = load_velocities(sa, sb, i);
    v.va -= m_lin_a * delta;
    v.wa -= m_ang_a * delta;
    v.vb -= m_lin_b * delta;
    v.wb -= m_ang_b * delta;
    store_velocities(sa, sb, i, v);
    // v' = v + M^-1 J^T delta
    var g = load_velocity_adjoints(sa, sb, i);
    let d_delta = dot(m_lin_a, g.va) + dot(m_ang_a, g.wa) + dot(m_lin_b, g.vb) + dot(m_ang_b, g.wb);
    row_adj_add_vec3(r, 12u, i, g.va * delta);
    row_adj_add_vec3(r, 15u, i, g.wa * delta);
    row_adj_add_vec3(r, 18u, i, g.vb * delta);
    row_adj_add_vec3(r, 21u, i, g.wb * delta);
    let lam_slot = hdr.adj_state + hdr.state_lambda + r;
    let d_new = adj_get(lam_slot, i) + d_delta;
    var d_old = -d_delta;
    let lambda_ref = select(
        select(lambda_history(sweep - 1u, reference, i), lambda_old, reference == r),
        lambda_history(sweep, reference, i),
        reference < r);
    // m_c relaxed; the row's own m_c gets omega times its adjoint.
    let omega = row_relaxation(r);
    let m_c = omega * row_get(r, 24u, i);
    let cfm = row_get(r, 25u, i);
    let bias = row_get(r, 26u, i);
    let mu = row_get(r, 29u, i);
    let lo = row_get(r, 27u, i) - mu * lambda_ref;
    let hi = row_get(r, 28u, i) + mu * lambda_ref;
    let j_lin_a = row_vec3(r, 0u, i);
    let j_ang_a = row_vec3(r, 3u, i);
    let j_lin_b = row_vec3(r, 6u, i);
    let j_ang_b = row_vec3(r, 9u, i);
    let jv = dot(j_lin_a, v.va) + dot(j_ang_a, v.wa) + dot(j_lin_b, v.vb) + dot(j_ang_b, v.wb);
    let unclamped = lambda_old - m_c * (jv + bias + cfm * lambda_old);
    let above_lo = max(unclamped, lo);
    let d_above = select(0.0, d_new, above_lo < hi);
    let d_hi = d_new - d_above;
    let d_unclamped = select(0.0, d_above, unclamped > lo);
    let d_lo = d_above - d_unclamped;
    let d_jv = -m_c * d_unclamped;
    row_adj_add(r, 24u, i, -(omega * d_unclamped) * (jv + bias + cfm * lambda_old));
    row_adj_add(r, 25u, i, d_jv * lambda_old);
    row_adj_add(r, 26u, i, d_jv);
    row_adj_add(r, 27u, i, d_lo);
    row_adj_add(r, 28u, i, d_hi);
    row_adj_add(r, 29u, i, (d_hi - d_lo) * lambda_ref);
    let d_ref = (d_hi - d_lo) * mu;
    // A row is never its own friction reference (mu = 0 there), but keep it exact.
    d_old += select(0.0, d_ref, reference == r);
    adj_add(hdr.adj_state + hdr.state_lambda + reference, i, select(d_ref, 0.0, reference == r));
    d_old += d_unclamped * (1.0 - m_c * cfm);
    // jv = J . v
    row_adj_add_vec3(r, 0u, i, v.va * d_jv);
    row_adj_add_vec3(r, 3u, i, v.wa * d_jv);
    row_adj_add_vec3(r, 6u, i, v.vb * d_jv);
    row_adj_add_vec3(r, 9u, i, v.wb * d_jv);
    g.va += j_lin_a * d_jv;
    g.wa += j_ang_a * d_jv;
    g.vb += j_lin_b * d_jv;
    g.wb += j_ang_b * d_jv;
    store_velocity_adjoints(sa, sb, i, g);
    adj_set(lam_slot, i, d_old);
}

// solve_adjoint's state in private memory: the velocities being walked back, their adjoints
// (linear at 2b, angular at 2b + 1) and the adjoints of the accumulated impulses.
struct PrivateAdjointState {
    velocity: array<vec3<f32>, PRIVATE_SOLVER_VELOCITIES>,
    velocity_adjoint: array<vec3<f32>, PRIVATE_SOLVER_VELOCITIES>,
    lambda_adjoint: array<f32, PRIVATE_SOLVER_ROWS>,
    // Every row's impulse at the point the reverse walk has reached: after sweep `sweep` for
    // the rows not yet undone in it, after `sweep - 1` for those undone (a friction row's
    // reference is then always its current entry), so each update loads one history value.
    lambda: array<f32, PRIVATE_SOLVER_ROWS>,
}

// solve_adjoint on private copies: the same operations in the same order, so the same bits.
// Row adjoints stay in storage (a row's 30 fields for every row do not fit private memory),
// as vec4 records accumulated whole: 8 vector loads and 8 stores per update.
fn solve_adjoint_private(i: u32) {
    var s: PrivateAdjointState;
    for (var b = 0u; b < hdr.n_bodies; b++) {
        let slot = body_slot(b) + 7u;
        s.velocity[2u * b] = state_vec3(slot, i);
        s.velocity[2u * b + 1u] = state_vec3(slot + 3u, i);
        s.velocity_adjoint[2u * b] = state_adj_vec3(slot, i);
        s.velocity_adjoint[2u * b + 1u] = state_adj_vec3(slot + 3u, i);
    }
    for (var r = 0u; r < hdr.n_rows; r++) {
        s.lambda_adjoint[r] = adj_get(hdr.adj_state + hdr.state_lambda + r, i);
        s.lambda[r] = lambda_history(hdr.sweeps, r, i);
    }
    if (model_has_axis_blocks()) {
        for (var sweep_rev = 0u; sweep_rev < hdr.sweeps; sweep_rev++) {
            let sweep = hdr.sweeps - sweep_rev;
            for (var r_rev = 0u; r_rev < hdr.n_rows; r_rev++) {
                let r = hdr.n_rows - 1u - r_rev;
                let block = row_block(r);
                if (block == ROW_BLOCK_FOLLOWER) { continue; }
                if (block != 0u) {
                    private_axis_block_adjoint(sweep, r, block - 1u, i, &s);
                    continue;
                }
                private_reverse_row_update(sweep, r, i, &s);
            }
        }
    } else {
        for (var sweep_rev = 0u; sweep_rev < hdr.sweeps; sweep_rev++) {
            let sweep = hdr.sweeps - sweep_rev;
            for (var r_rev = 0u; r_rev < hdr.n_rows; r_rev++) {
                private_reverse_row_update(sweep, hdr.n_rows - 1u - r_rev, i, &s);
            }
        }
    }
    // The warm start (row_apply_impulse and its adjoint, on the private copies).
    for (var r_rev = 0u; r_rev < hdr.n_rows; r_rev++) {
        let r = hdr.n_rows - 1u - r_rev;
        let bodies = row_bodies(r);
        let a = 2u * bodies.x;
        let b = 2u * bodies.y;
        let lambda = lambda_history(0u, r, i);
        let m_lin_a = row_record(r, 4u, i).xyz;
        let m_ang_a = row_record(r, 5u, i).xyz;
        let m_lin_b = row_record(r, 6u, i).xyz;
        let m_ang_b = row_record(r, 7u, i).xyz;
        let impulse = -lambda;
        s.velocity[a] = s.velocity[a] + impulse * m_lin_a;
        s.velocity[a + 1u] = s.velocity[a + 1u] + impulse * m_ang_a;
        s.velocity[b] = s.velocity[b] + impulse * m_lin_b;
        s.velocity[b + 1u] = s.velocity[b + 1u] + impulse * m_ang_b;
        let gva = s.velocity_adjoint[a];
        let gwa = s.velocity_adjoint[a + 1u];
        let gvb = s.velocity_adjoint[b];
        let gwb = s.velocity_adjoint[b + 1u];
        row_adj_add_vec3(r, 12u, i, gva * lambda);
        row_adj_add_vec3(r, 15u, i, gwa * lambda);
        row_adj_add_vec3(r, 18u, i, gvb * lambda);
        row_adj_add_vec3(r, 21u, i, gwb * lambda);
        let d_impulse = dot(m_lin_a, gva) + dot(m_ang_a, gwa) + dot(m_lin_b, gvb) + dot(m_ang_b, gwb);
        let d_lambda = s.lambda_adjoint[r] + d_impulse;
        s.lambda_adjoint[r] = hdr.warm_start * d_lambda;
    }
    for (var b = 0u; b < hdr.n_bodies; b++) {
        let slot = body_slot(b) + 7u;
        state_set_vec3(slot, i, s.velocity[2u * b]);
        state_set_vec3(slot + 3u, i, s.velocity[2u * b + 1u]);
        store_velocity_adjoints_of(slot, i, s.velocity_adjoint[2u * b], s.velocity_adjoint[2u * b + 1u]);
    }
    for (var r = 0u; r < hdr.n_rows; r++) {
        adj_set(hdr.adj_state + hdr.state_lambda + r, i, s.lambda_adjoint[r]);
    }
}

// reverse_row_update on solve_adjoint_private's state: the same operations in the same
// order. Row adjoints stay in storage, accumulated as whole vec4 records.
fn private_reverse_row_update(sweep: u32, r: u32, i: u32, s: ptr<function, PrivateAdjointState>) {
    let bodies = row_bodies(r);
    let reference = bodies.z;
    let a = 2u * bodies.x;
    let b = 2u * bodies.y;
    let lambda_old = lambda_history(sweep - 1u, r, i);
    let delta = (*s).lambda[r] - lambda_old;
    (*s).lambda[r] = lambda_old;
    let f0 = row_record(r, 0u, i);
    let f1 = row_record(r, 1u, i);
    let f2 = row_record(r, 2u, i);
    let f3 = row_record(r, 3u, i);
    let f4 = row_record(r, 4u, i);
    let f5 = row_record(r, 5u, i);
    let f6 = row_record(r, 6u, i);
    let f7 = row_record(r, 7u, i);
    let m_lin_a = f4.xyz;
    let m_ang_a = f5.xyz;
    let m_lin_b = f6.xyz;
    let m_ang_b = f7.xyz;
    // Walk the velocities back to before this update.
    var v = RowBodies((*s).velocity[a], (*s).velocity[a + 1u], (*s).velocity[b], (*s).velocity[b + 1u]);
    v.va -= m_lin_a * delta;
    v.wa -= m_ang_a * delta;
    v.vb -= m_lin_b * delta;
    v.wb -= m_ang_b * delta;
    (*s).velocity[a] = v.va;
    (*s).velocity[a + 1u] = v.wa;
    (*s).velocity[b] = v.vb;
    (*s).velocity[b + 1u] = v.wb;
    // v' = v + M^-1 J^T delta
    var g = RowBodies((*s).velocity_adjoint[a], (*s).velocity_adjoint[a + 1u],
                      (*s).velocity_adjoint[b], (*s).velocity_adjoint[b + 1u]);
    let d_delta = dot(m_lin_a, g.va) + dot(m_ang_a, g.wa) + dot(m_lin_b, g.vb) + dot(m_ang_b, g.wb);
    let d_m_lin_a = g.va * delta;
    let d_m_ang_a = g.wa * delta;
    let d_m_lin_b = g.vb * delta;
    let d_m_ang_b = g.wb * delta;
    let d_new = (*s).lambda_adjoint[r] + d_delta;
    var d_old = -d_delta;
    let lambda_ref = (*s).lambda[reference];
    // m_c relaxed; the row's own m_c gets omega times its adjoint.
    let omega = row_relaxation(r);
    let m_c = omega * f0.w;
    let cfm = f1.w;
    let bias = f2.w;
    let mu = f5.w;
    let lo = f3.w - mu * lambda_ref;
    let hi = f4.w + mu * lambda_ref;
    let j_lin_a = f0.xyz;
    let j_ang_a = f1.xyz;
    let j_lin_b = f2.xyz;
    let j_ang_b = f3.xyz;
    let jv = dot(j_lin_a, v.va) + dot(j_ang_a, v.wa) + dot(j_lin_b, v.vb) + dot(j_ang_b, v.wb);
    let unclamped = lambda_old - m_c * (jv + bias + cfm * lambda_old);
    let above_lo = max(unclamped, lo);
    let d_above = select(0.0, d_new, above_lo < hi);
    let d_hi = d_new - d_above;
    let d_unclamped = select(0.0, d_above, unclamped > lo);
    let d_lo = d_above - d_unclamped;
    let d_jv = -m_c * d_unclamped;
    let d_ref = (d_hi - d_lo) * mu;
    // A row is never its own friction reference (mu = 0 there), but keep it exact.
    d_old += select(0.0, d_ref, reference == r);
    (*s).lambda_adjoint[reference] = (*s).lambda_adjoint[reference] + select(d_ref, 0.0, reference == r);
    d_old += d_unclamped * (1.0 - m_c * cfm);
    // Every field of the row gets exactly one addition per update, so accumulating
    // whole records (one load and one store each) gives the bits of field-wise adds.
    // Records 0-5 carry m_c, cfm, bias, lo, hi, mu in w (see the top of this file).
    let d_m_c = -(omega * d_unclamped) * (jv + bias + cfm * lambda_old);
    let d_mu = (d_hi - d_lo) * lambda_ref;
    // jv = J . v
    row_adj_set_record(r, 0u, i, row_adj_record(r, 0u, i) + vec4<f32>(v.va * d_jv, d_m_c));
    row_adj_set_record(r, 1u, i, row_adj_record(r, 1u, i) + vec4<f32>(v.wa * d_jv, d_jv * lambda_old));
    row_adj_set_record(r, 2u, i, row_adj_record(r, 2u, i) + vec4<f32>(v.vb * d_jv, d_jv));
    row_adj_set_record(r, 3u, i, row_adj_record(r, 3u, i) + vec4<f32>(v.wb * d_jv, d_lo));
    row_adj_set_record(r, 4u, i, row_adj_record(r, 4u, i) + vec4<f32>(d_m_lin_a, d_hi));
    row_adj_set_record(r, 5u, i, row_adj_record(r, 5u, i) + vec4<f32>(d_m_ang_a, d_mu));
    row_adj_set_record(r, 6u, i, row_adj_record(r, 6u, i) + vec4<f32>(d_m_lin_b, 0.0));
    row_adj_set_record(r, 7u, i, row_adj_record(r, 7u, i) + vec4<f32>(d_m_ang_b, 0.0));
    g.va += j_lin_a * d_jv;
    g.wa += j_ang_a * d_jv;
    g.vb += j_lin_b * d_jv;
    g.wb += j_ang_b * d_jv;
    (*s).velocity_adjoint[a] = g.va;
    (*s).velocity_adjoint[a + 1u] = g.wa;
    (*s).velocity_adjoint[b] = g.vb;
    (*s).velocity_adjoint[b + 1u] = g.wb;
    (*s).lambda_adjoint[r] = d_old;
}

fn store_velocity_adjoints_of(slot: u32, i: u32, gv: vec3<f32>, gw: vec3<f32>) {
    adj_set(hdr.adj_state + slot, i, gv.x);
    adj_set(hdr.adj_state + slot + 1u, i, gv.y);
    adj_set(hdr.adj_state + slot + 2u, i, gv.z);
    adj_set(hdr.adj_state + slot + 3u, i, gw.x);
    adj_set(hdr.adj_state + slot + 4u, i, gw.y);
    adj_set(hdr.adj_state + slot + 5u, i, gw.z);
}

// What row_write_adjoint adds into one body's parameter and orientation adjoints. Rows that
// share a body (a joint's rows, a contact's three) keep the sums in registers between one load
// and one store: on a CPU driver every scalar storage access is a loop over the lanes. Each
// slot still gets the same additions in the same order, so the bits do not change.
struct BodyMassAdjoint { inv_mass: f32, inv_inertia: vec3<f32>, q: vec4<f32>, }

fn body_mass_adjoint_load(b: u32, i: u32) -> BodyMassAdjoint {
    var out: BodyMassAdjoint;
    if (hdr.param_gradients != 0u) {
        out.inv_mass = adj_get(hdr.adj_params + b * BODY_PARAM_LEN, i);
        out.inv_inertia = adj_vec3(hdr.adj_params + b * BODY_PARAM_LEN + 1u, i);
    }
    let q = hdr.adj_state + body_slot(b) + 3u;
    out.q = vec4<f32>(adj_vec3(q, i), adj_get(q + 3u, i));
    return out;
}

fn body_mass_adjoint_store(b: u32, i: u32, g: BodyMassAdjoint) {
    if (hdr.param_gradients != 0u) {
        adj_set(hdr.adj_params + b * BODY_PARAM_LEN, i, g.inv_mass);
        let p = hdr.adj_params + b * BODY_PARAM_LEN + 1u;
        adj_set(p, i, g.inv_inertia.x);
        adj_set(p + 1u, i, g.inv_inertia.y);
        adj_set(p + 2u, i, g.inv_inertia.z);
    }
    let q = hdr.adj_state + body_slot(b) + 3u;
    adj_set(q, i, g.q.x);
    adj_set(q + 1u, i, g.q.y);
    adj_set(q + 2u, i, g.q.z);
    adj_set(q + 3u, i, g.q.w);
}

fn body_mass_adjoint_add(acc: BodyMassAdjoint, d: BodyMassAdjoint) -> BodyMassAdjoint {
    return BodyMassAdjoint(acc.inv_mass + d.inv_mass, acc.inv_inertia + d.inv_inertia, acc.q + d.q);
}

// Two bodies' accumulated adjoints, for rows that share bodies a and b; `same` (a == b: one
// slot) adds both parts to a, a's first as row_write_adjoint's order has it.
struct RowBodiesAdjoint { a: BodyMassAdjoint, b: BodyMassAdjoint, }

fn row_bodies_adjoint_add(acc: RowBodiesAdjoint, same: bool, d: RowWriteAdjoint) -> RowBodiesAdjoint {
    var out = acc;
    out.a = body_mass_adjoint_add(acc.a, d.a);
    if (same) {
        out.a = body_mass_adjoint_add(out.a, d.b);
    } else {
        out.b = body_mass_adjoint_add(acc.b, d.b);
    }
    return out;
}

struct RowAdjoint {
    jac: RowJacobian,
    bias: f32, lo: f32, hi: f32, mu: f32,
}

// A row's adjoint and its two bodies' parts (to be added to their accumulated adjoints).
struct RowWriteAdjoint { row: RowAdjoint, a: BodyMassAdjoint, b: BodyMassAdjoint, }

// Adjoint of row_write: pulls the row's field adjoints back to its Jacobian, bias, bounds and
// friction coefficient (returned) and to the bodies' orientations, inverse masses and inertias.
fn row_write_adjoint(r: u32, i: u32, jac: RowJacobian, mass_scale: f32, cfm_scale: f32) -> RowAdjoint {
    let bodies = row_bodies(r);
    let d = row_write_adjoint_bodies(r, i, jac, body_mass(bodies.x, i), body_mass(bodies.y, i),
                                     mass_scale, cfm_scale);
    body_mass_adjoint_store(bodies.x, i, body_mass_adjoint_add(body_mass_adjoint_load(bodies.x, i), d.a));
    body_mass_adjoint_store(bodies.y, i, body_mass_adjoint_add(body_mass_adjoint_load(bodies.y, i), d.b));
    return d.row;
}

// row_write_adjoint with the mass data of the row's bodies (`row_bodies(r)`) given, returning
// the bodies' parts instead of adding them in storage. The row's field adjoints are read as
// its 8 records, one load each.
fn row_write_adjoint_bodies(r: u32, i: u32, jac: RowJacobian, mass_a: BodyMass, mass_b: BodyMass,
                            mass_scale: f32, cfm_scale: f32) -> RowWriteAdjoint {
    let g = array<vec4<f32>, 8>(row_adj_record(r, 0u, i), row_adj_record(r, 1u, i),
                                row_adj_record(r, 2u, i), row_adj_record(r, 3u, i),
                                row_adj_record(r, 4u, i), row_adj_record(r, 5u, i),
                                row_adj_record(r, 6u, i), row_adj_record(r, 7u, i));
    let qa = mass_a.q;
    let qb = mass_b.q;
    let ia = mass_a.inv_inertia;
    let ib = mass_b.inv_inertia;
    let ma = mass_a.inv_mass;
    let mb = mass_b.inv_mass;
    let minv_lin_a = ma * jac.lin_a;
    let minv_ang_a = inverse_inertia_mul(qa, ia, jac.ang_a);
    let minv_lin_b = mb * jac.lin_b;
    let minv_ang_b = inverse_inertia_mul(qb, ib, jac.ang_b);
    let k_raw = dot(jac.lin_a, minv_lin_a) + dot(jac.ang_a, minv_ang_a)
              + dot(jac.lin_b, minv_lin_b) + dot(jac.ang_b, minv_ang_b);
    let k = max(k_raw, 1.0e-12);
    // m_c = ms / (ms (k - k_soft) + k_soft), cfm = cs k_soft, k_soft = k_lin or k.
    let k_lin = dot(jac.lin_a, minv_lin_a) + dot(jac.lin_b, minv_lin_b);
    let soft_lin = k_lin > 0.0;
    let k_soft = select(k, k_lin, soft_lin);
    let den = mass_scale * (k - k_soft) + k_soft;
    // Field f's adjoint is g[f / 3].xyz for the vec3 fields, g[f - 24].w for m_c .. mu.
    let d_m = g[0].w / (den * den);
    let d_k_soft = -mass_scale * (1.0 - mass_scale) * d_m + cfm_scale * g[1].w;
    let d_k = select(0.0, -mass_scale * mass_scale * d_m + select(d_k_soft, 0.0, soft_lin), k_raw > 1.0e-12);
    // The linear terms feed both k and k_lin.
    let d_kl = d_k + select(0.0, d_k_soft, soft_lin);
    let d_mla = g[4].xyz + jac.lin_a * d_kl;
    let d_maa = g[5].xyz + jac.ang_a * d_k;
    let d_mlb = g[6].xyz + jac.lin_b * d_kl;
    let d_mab = g[7].xyz + jac.ang_b * d_k;
    let ta = inverse_inertia_mul_adjoint(qa, ia, jac.ang_a, d_maa);
    let tb = inverse_inertia_mul_adjoint(qb, ib, jac.ang_b, d_mab);
    var out: RowWriteAdjoint;
    out.a = BodyMassAdjoint(dot(jac.lin_a, d_mla), ta.inv_inertia, ta.q);
    out.b = BodyMassAdjoint(dot(jac.lin_b, d_mlb), tb.inv_inertia, tb.q);
    out.row.jac.lin_a = g[0].xyz + minv_lin_a * d_kl + d_mla * ma;
    out.row.jac.ang_a = g[1].xyz + minv_ang_a * d_k + ta.v;
    out.row.jac.lin_b = g[2].xyz + minv_lin_b * d_kl + d_mlb * mb;
    out.row.jac.ang_b = g[3].xyz + minv_ang_b * d_k + tb.v;
    out.row.bias = g[2].w;
    out.row.lo = g[3].w;
    out.row.hi = g[4].w;
    out.row.mu = g[5].w;
    return out;
}

fn row_jacobian_scaled(jac: RowJacobian, s: f32) -> RowJacobian {
    var out: RowJacobian;
    out.lin_a = jac.lin_a * s;
    out.ang_a = jac.ang_a * s;
    out.lin_b = jac.lin_b * s;
    out.ang_b = jac.ang_b * s;
    return out;
}

// ---- Joint-axis blocks (layout::ROW_BLOCK_FOLLOWER): a joint limit row and the passive
// (armature) row on the same axis share their Jacobian up to sign, so Gauss-Seidel between
// them converges by K^2 / ((K + cfm_p)(K + cfm_l)) per sweep, about 0.999 for a heavy rotor
// on a light body. The limit row (the block's lead) updates both rows exactly at its place
// in the sweep; the passive row's own place does nothing. Mirrors the twin's
// `solve_row_or_block`, `axis_block_solve` and `axis_block_adjoint`.

const ROW_BLOCK_FOLLOWER: u32 = 0xffffffffu;

// Word 3 of row r's table entry: 0, ROW_BLOCK_FOLLOWER or the block partner's row plus one.
fn row_block(r: u32) -> u32 {
    let k = hdr.off_row + r * ROW_RECORD_LEN;
    return model_u32(k + 3u);
}

// The block's scalar problem: speed = J v with both rows' current impulses applied, the
// rows' impulses before the update, K = J M^-1 J^T and the limit row's sign (its Jacobian
// is sign J).
struct AxisBlock {
    speed: f32, passive: f32, limit: f32, k: f32, sign: f32,
    passive_cfm: f32, passive_bias: f32, limit_cfm: f32, limit_bias: f32,
}

// The new impulses (passive, limit): u' + bias_p + cfm_p lambda_p = 0 at the new speed u',
// and either lambda_l = 0 with sign u' + bias_l >= 0 (idle) or sign u' + bias_l + cfm_l
// lambda_l = 0 with lambda_l > 0 (held). The held impulse is positive exactly when the idle
// solution violates the limit, so its sign picks the case.
fn axis_block_solve(b: AxisBlock) -> vec2<f32> {
    let free = b.speed - b.k * b.passive - b.sign * b.k * b.limit;
    let passive_idle = -(free + b.passive_bias) / (b.k + b.passive_cfm);
    let det = b.k * (b.passive_cfm + b.limit_cfm) + b.passive_cfm * b.limit_cfm;
    let passive_held = (-free * b.limit_cfm - b.passive_bias * (b.k + b.limit_cfm)
                        + b.sign * b.k * b.limit_bias) / det;
    let limit_held = (-b.sign * free * b.passive_cfm - b.limit_bias * (b.k + b.passive_cfm)
                      + b.sign * b.k * b.passive_bias) / det;
    let held = limit_held > 0.0;
    return vec2<f32>(select(passive_idle, passive_held, held), select(0.0, limit_held, held));
}

// Adjoint of axis_block_solve: every input's adjoint (sign's is 0: it is piecewise constant).
fn axis_block_adjoint(b: AxisBlock, d_passive: f32, d_limit: f32) -> AxisBlock {
    let free = b.speed - b.k * b.passive - b.sign * b.k * b.limit;
    let idle_den = b.k + b.passive_cfm;
    let passive_idle = -(free + b.passive_bias) / idle_den;
    let det = b.k * (b.passive_cfm + b.limit_cfm) + b.passive_cfm * b.limit_cfm;
    let passive_held = (-free * b.limit_cfm - b.passive_bias * (b.k + b.limit_cfm)
                        + b.sign * b.k * b.limit_bias) / det;
    let limit_held = (-b.sign * free * b.passive_cfm - b.limit_bias * (b.k + b.passive_cfm)
                      + b.sign * b.k * b.passive_bias) / det;
    let held = limit_held > 0.0;
    let d_passive_idle = select(d_passive, 0.0, held);
    let d_passive_held = select(0.0, d_passive, held);
    let d_limit_held = select(0.0, d_limit, held);
    let d_idle_num = -d_passive_idle / idle_den;
    let d_idle_den = -passive_idle * d_passive_idle / idle_den;
    let d_num_p = d_passive_held / det;
    let d_num_l = d_limit_held / det;
    let d_det = -(passive_held * d_passive_held + limit_held * d_limit_held) / det;
    let d_free = d_idle_num - b.limit_cfm * d_num_p - b.sign * b.passive_cfm * d_num_l;
    var d: AxisBlock;
    d.speed = d_free;
    d.passive = -b.k * d_free;
    d.limit = -b.sign * b.k * d_free;
    d.k = d_idle_den - (b.passive_bias - b.sign * b.limit_bias) * d_num_p
        - (b.limit_bias - b.sign * b.passive_bias) * d_num_l
        + d_det * (b.passive_cfm + b.limit_cfm)
        - (b.passive + b.sign * b.limit) * d_free;
    d.sign = 0.0;
    d.passive_cfm = d_idle_den - (b.sign * free + b.limit_bias) * d_num_l + d_det * (b.k + b.limit_cfm);
    d.passive_bias = d_idle_num - (b.k + b.limit_cfm) * d_num_p + b.sign * b.k * d_num_l;
    d.limit_cfm = -(free + b.passive_bias) * d_num_p + d_det * (b.k + b.passive_cfm);
    d.limit_bias = b.sign * b.k * d_num_p - (b.k + b.passive_cfm) * d_num_l;
    return d;
}

// K = J_p . M^-1 J_p^T of passive row p before its clamp.
fn axis_block_k_raw(p: u32, i: u32) -> f32 {
    return dot(row_vec3(p, 0u, i), row_vec3(p, 12u, i)) + dot(row_vec3(p, 3u, i), row_vec3(p, 15u, i))
         + dot(row_vec3(p, 6u, i), row_vec3(p, 18u, i)) + dot(row_vec3(p, 9u, i), row_vec3(p, 21u, i));
}

// The block of limit row r and passive row p from their fields, the speed and the impulses.
fn axis_block_inputs(r: u32, p: u32, i: u32, speed: f32, passive: f32, limit: f32) -> AxisBlock {
    let alignment = dot(row_vec3(r, 0u, i), row_vec3(p, 0u, i)) + dot(row_vec3(r, 3u, i), row_vec3(p, 3u, i))
                  + dot(row_vec3(r, 6u, i), row_vec3(p, 6u, i)) + dot(row_vec3(r, 9u, i), row_vec3(p, 9u, i));
    var b: AxisBlock;
    b.speed = speed;
    b.passive = passive;
    b.limit = limit;
    b.k = max(axis_block_k_raw(p, i), 1.0e-12);
    b.sign = select(-1.0, 1.0, alignment > 0.0);
    b.passive_cfm = row_get(p, 25u, i);
    b.passive_bias = row_get(p, 26u, i);
    b.limit_cfm = limit_cfm_with_rotor(row_get(r, 25u, i), b.passive_cfm, b.k, axis_block_k_lin(p, i));
    b.limit_bias = row_get(r, 26u, i);
    return b;
}

// The linear part of row p's K, as row_write computes it for the row's softness.
fn axis_block_k_lin(p: u32, i: u32) -> f32 {
    return dot(row_vec3(p, 0u, i), row_vec3(p, 12u, i)) + dot(row_vec3(p, 6u, i), row_vec3(p, 18u, i));
}

// The limit row's softness for the axis's inertia with its rotor. row_write made it
// cfm_scale k_soft from the bodies alone; a soft limit is a spring-damper tuned for the mass
// it holds, and along the axis that is 1 / k_soft + 1 / cfm_p (the rotor, and the damper's
// dt c), as MuJoCo's limit softness follows the joint-space inertia with armature.
fn limit_cfm_with_rotor(limit_cfm: f32, passive_cfm: f32, k: f32, k_lin: f32) -> f32 {
    let k_soft = select(k, k_lin, k_lin > 0.0);
    return limit_cfm * passive_cfm / (passive_cfm + k_soft);
}

// Row r's update in a sweep: solve_row, its block's exact solve, or nothing for a row its
// block's lead updates. Returns the row's impulse after its update.
fn solve_row_or_block(r: u32, i: u32) -> f32 {
    let block = row_block(r);
    if (block == 0u) { return solve_row(r, i); }
    if (block == ROW_BLOCK_FOLLOWER) { return state_get(hdr.state_lambda + r, i); }
    return solve_axis_block(r, block - 1u, i);
}

// The exact update of limit row r and passive row p; returns the limit row's impulse.
fn solve_axis_block(r: u32, p: u32, i: u32) -> f32 {
    let bodies = row_bodies(p);
    let b = axis_block_inputs(r, p, i, row_velocity(p, bodies.x, bodies.y, i),
                              state_get(hdr.state_lambda + p, i), state_get(hdr.state_lambda + r, i));
    let lambda_new = axis_block_solve(b);
    state_set(hdr.state_lambda + p, i, lambda_new.x);
    state_set(hdr.state_lambda + r, i, lambda_new.y);
    row_apply_impulse(p, bodies.x, bodies.y, i, lambda_new.x - b.passive);
    row_apply_impulse(r, bodies.x, bodies.y, i, lambda_new.y - b.limit);
    return lambda_new.y;
}

fn private_solve_row_or_block(r: u32, i: u32, s: ptr<function, PrivateSolverState>) -> f32 {
    let block = row_block(r);
    if (block == 0u) { return private_solve_row(r, i, s); }
    if (block == ROW_BLOCK_FOLLOWER) { return (*s).lambda[r]; }
    return private_solve_axis_block(r, block - 1u, i, s);
}

fn private_apply_impulse(r: u32, a: u32, b: u32, i: u32, impulse: f32, s: ptr<function, PrivateSolverState>) {
    (*s).velocity[a] = (*s).velocity[a] + impulse * row_record(r, 4u, i).xyz;
    (*s).velocity[a + 1u] = (*s).velocity[a + 1u] + impulse * row_record(r, 5u, i).xyz;
    (*s).velocity[b] = (*s).velocity[b] + impulse * row_record(r, 6u, i).xyz;
    (*s).velocity[b + 1u] = (*s).velocity[b + 1u] + impulse * row_record(r, 7u, i).xyz;
}

// solve_axis_block on the private state.
fn private_solve_axis_block(r: u32, p: u32, i: u32, s: ptr<function, PrivateSolverState>) -> f32 {
    let bodies = row_bodies(p);
    let a = 2u * bodies.x;
    let b = 2u * bodies.y;
    let speed = dot(row_record(p, 0u, i).xyz, (*s).velocity[a]) + dot(row_record(p, 1u, i).xyz, (*s).velocity[a + 1u])
              + dot(row_record(p, 2u, i).xyz, (*s).velocity[b]) + dot(row_record(p, 3u, i).xyz, (*s).velocity[b + 1u]);
    let blk = axis_block_inputs(r, p, i, speed, (*s).lambda[p], (*s).lambda[r]);
    let lambda_new = axis_block_solve(blk);
    (*s).lambda[p] = lambda_new.x;
    (*s).lambda[r] = lambda_new.y;
    private_apply_impulse(p, a, b, i, lambda_new.x - blk.passive, s);
    private_apply_impulse(r, a, b, i, lambda_new.y - blk.limit, s);
    return lambda_new.y;
}

// The block's update reversed, for both adjoint paths: v holds the bodies' velocities before
// the update (already walked back), g their adjoints after it, d_passive and d_limit the new
// impulses' accumulated adjoints. Accumulates the rows' field adjoints; returns the velocity
// adjoints before the update (in g) and the old impulses' adjoints (in passive, limit).
struct AxisBlockReverse { g: RowBodies, passive: f32, limit: f32, }

fn axis_block_reverse(r: u32, p: u32, i: u32, v: RowBodies, g_after: RowBodies,
                      passive_old: f32, limit_old: f32, delta_passive: f32, delta_limit: f32,
                      d_passive: f32, d_limit: f32) -> AxisBlockReverse {
    var g = g_after;
    // v' = v + M^-1 J_p^T delta_p + M^-1 J_l^T delta_l
    let d_delta_limit = dot(row_vec3(r, 12u, i), g.va) + dot(row_vec3(r, 15u, i), g.wa)
                      + dot(row_vec3(r, 18u, i), g.vb) + dot(row_vec3(r, 21u, i), g.wb);
    row_adj_add_vec3(r, 12u, i, g.va * delta_limit);
    row_adj_add_vec3(r, 15u, i, g.wa * delta_limit);
    row_adj_add_vec3(r, 18u, i, g.vb * delta_limit);
    row_adj_add_vec3(r, 21u, i, g.wb * delta_limit);
    let m_lin_a = row_vec3(p, 12u, i);
    let m_ang_a = row_vec3(p, 15u, i);
    let m_lin_b = row_vec3(p, 18u, i);
    let m_ang_b = row_vec3(p, 21u, i);
    let d_delta_passive = dot(m_lin_a, g.va) + dot(m_ang_a, g.wa) + dot(m_lin_b, g.vb) + dot(m_ang_b, g.wb);
    row_adj_add_vec3(p, 12u, i, g.va * delta_passive);
    row_adj_add_vec3(p, 15u, i, g.wa * delta_passive);
    row_adj_add_vec3(p, 18u, i, g.vb * delta_passive);
    row_adj_add_vec3(p, 21u, i, g.wb * delta_passive);
    let j_lin_a = row_vec3(p, 0u, i);
    let j_ang_a = row_vec3(p, 3u, i);
    let j_lin_b = row_vec3(p, 6u, i);
    let j_ang_b = row_vec3(p, 9u, i);
    let speed = dot(j_lin_a, v.va) + dot(j_ang_a, v.wa) + dot(j_lin_b, v.vb) + dot(j_ang_b, v.wb);
    let blk = axis_block_inputs(r, p, i, speed, passive_old, limit_old);
    let d = axis_block_adjoint(blk, d_passive + d_delta_passive, d_limit + d_delta_limit);
    // The limit's softness for the rotor: limit_cfm_with_rotor.
    let limit_cfm = row_get(r, 25u, i);
    let k_lin = axis_block_k_lin(p, i);
    let linear = k_lin > 0.0;
    let k_soft = select(blk.k, k_lin, linear);
    let den = blk.passive_cfm + k_soft;
    let d_passive_cfm = d.passive_cfm + d.limit_cfm * limit_cfm * k_soft / (den * den);
    let d_k_soft = -d.limit_cfm * limit_cfm * blk.passive_cfm / (den * den);
    let d_k_lin = select(0.0, d_k_soft, linear);
    // speed = J_p . v, K = J_p . M^-1 J_p^T (clamped below at 1e-12); the linear blocks also
    // feed k_lin.
    let d_k = select(0.0, d.k + select(d_k_soft, 0.0, linear), axis_block_k_raw(p, i) > 1.0e-12);
    let d_km = d_k + d_k_lin;
    row_adj_add_vec3(p, 0u, i, v.va * d.speed + m_lin_a * d_km);
    row_adj_add_vec3(p, 12u, i, j_lin_a * d_km);
    row_adj_add_vec3(p, 3u, i, v.wa * d.speed + m_ang_a * d_k);
    row_adj_add_vec3(p, 15u, i, j_ang_a * d_k);
    row_adj_add_vec3(p, 6u, i, v.vb * d.speed + m_lin_b * d_km);
    row_adj_add_vec3(p, 18u, i, j_lin_b * d_km);
    row_adj_add_vec3(p, 9u, i, v.wb * d.speed + m_ang_b * d_k);
    row_adj_add_vec3(p, 21u, i, j_ang_b * d_k);
    g.va += j_lin_a * d.speed;
    g.wa += j_ang_a * d.speed;
    g.vb += j_lin_b * d.speed;
    g.wb += j_ang_b * d.speed;
    row_adj_add(p, 25u, i, d_passive_cfm);
    row_adj_add(p, 26u, i, d.passive_bias);
    row_adj_add(r, 25u, i, d.limit_cfm * blk.passive_cfm / den);
    row_adj_add(r, 26u, i, d.limit_bias);
    return AxisBlockReverse(g, d.passive - d_delta_passive, d.limit - d_delta_limit);
}

// The velocities before the block's update: the limit row's impulse taken off, then the
// passive row's (the forward applied them in the other order).
fn axis_block_walk_back(r: u32, p: u32, i: u32, v_after: RowBodies, delta_passive: f32, delta_limit: f32) -> RowBodies {
    var v = v_after;
    v.va -= row_vec3(r, 12u, i) * delta_limit;
    v.wa -= row_vec3(r, 15u, i) * delta_limit;
    v.vb -= row_vec3(r, 18u, i) * delta_limit;
    v.wb -= row_vec3(r, 21u, i) * delta_limit;
    v.va -= row_vec3(p, 12u, i) * delta_passive;
    v.wa -= row_vec3(p, 15u, i) * delta_passive;
    v.vb -= row_vec3(p, 18u, i) * delta_passive;
    v.wb -= row_vec3(p, 21u, i) * delta_passive;
    return v;
}

// Reverse of solve_axis_block in solve_adjoint's walk (sweep counts from 1).
fn solve_axis_block_adjoint(sweep: u32, r: u32, p: u32, i: u32) {
    let bodies = row_bodies(p);
    let sa = body_slot(bodies.x) + 7u;
    let sb = body_slot(bodies.y) + 7u;
    let passive_old = lambda_history(sweep - 1u, p, i);
    let limit_old = lambda_history(sweep - 1u, r, i);
    let delta_passive = lambda_history(sweep, p, i) - passive_old;
    let delta_limit = lambda_history(sweep, r, i) - limit_old;
    let v = axis_block_walk_back(r, p, i, load_velocities(sa, sb, i), delta_passive, delta_limit);
    store_velocities(sa, sb, i, v);
    let slot_p = hdr.adj_state + hdr.state_lambda + p;
    let slot_r = hdr.adj_state + hdr.state_lambda + r;
    let d = axis_block_reverse(r, p, i, v, load_velocity_adjoints(sa, sb, i), passive_old, limit_old,
                               delta_passive, delta_limit, adj_get(slot_p, i), adj_get(slot_r, i));
    store_velocity_adjoints(sa, sb, i, d.g);
    adj_set(slot_p, i, d.passive);
    adj_set(slot_r, i, d.limit);
}

// solve_axis_block_adjoint on solve_adjoint_private's state.
fn private_axis_block_adjoint(sweep: u32, r: u32, p: u32, i: u32, s: ptr<function, PrivateAdjointState>) {
    let bodies = row_bodies(p);
    let a = 2u * bodies.x;
    let b = 2u * bodies.y;
    let passive_old = lambda_history(sweep - 1u, p, i);
    let limit_old = lambda_history(sweep - 1u, r, i);
    let delta_passive = lambda_history(sweep, p, i) - passive_old;
    let delta_limit = lambda_history(sweep, r, i) - limit_old;
    let v_after = RowBodies((*s).velocity[a], (*s).velocity[a + 1u], (*s).velocity[b], (*s).velocity[b + 1u]);
    let v = axis_block_walk_back(r, p, i, v_after, delta_passive, delta_limit);
    (*s).velocity[a] = v.va;
    (*s).velocity[a + 1u] = v.wa;
    (*s).velocity[b] = v.vb;
    (*s).velocity[b + 1u] = v.wb;
    let g = RowBodies((*s).velocity_adjoint[a], (*s).velocity_adjoint[a + 1u],
                      (*s).velocity_adjoint[b], (*s).velocity_adjoint[b + 1u]);
    let d = axis_block_reverse(r, p, i, v, g, passive_old, limit_old, delta_passive, delta_limit,
                               (*s).lambda_adjoint[p], (*s).lambda_adjoint[r]);
    (*s).velocity_adjoint[a] = d.g.va;
    (*s).velocity_adjoint[a + 1u] = d.g.wa;
    (*s).velocity_adjoint[b] = d.g.vb;
    (*s).velocity_adjoint[b + 1u] = d.g.wb;
    (*s).lambda_adjoint[p] = d.passive;
    (*s).lambda_adjoint[r] = d.limit;
    // The walk's current impulses (solve_adjoint_private) are the ones before this update.
    (*s).lambda[p] = passive_old;
    (*s).lambda[r] = limit_old;
}
