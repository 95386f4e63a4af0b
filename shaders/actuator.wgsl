// Actuators on joint axes. Servos are rows whose impulse is clamped to max_force * dt and
// whose target speed is clamp(gain * (command - position), +-max_velocity) for the paper's
// position servo, or clamp(command, +-max_velocity) for a velocity servo. A force actuator
// applies clamp(command, +-max_force) * dt as an impulse along the axis before the solve; an
// affine one (MuJoCo's <general>) applies its law's force, times each term's coefficient,
// along every term's axis.

fn servo_rows_forward(i: u32) {
    let dt = hdr.dt;
    for (var s = 0u; s < hdr.n_servo; s++) {
        let rec = hdr.off_servo + s * 4u;
        let a = model_u32(rec);
        let joint = joint_row_bodies(model_u32(rec + 1u), i);
        let ax = joint_frame_axis(joint.frame, model_u32(rec + 2u));
        let velocity_servo = model_u32(rec + 3u) == 1u;
        let p = hdr.p_actuator + a * 3u;
        let gain = param(p, i);
        let max_force = param(p + 1u, i);
        let max_velocity = param(p + 2u, i);
        let u = command(a, i);
        let target_speed = clamp(select(gain * (u - ax.coordinate), u, velocity_servo), -max_velocity, max_velocity);
        let bound = max_force * dt;
        row_write_bodies(hdr.row_servo + s, i, ax.jac, joint.mass_a, joint.mass_b, -target_speed, -bound, bound,
                         0.0, 1.0, 0.0);
    }
}

// Adds `impulse` along a joint axis (Jacobian `jac`) to the velocities of joint j's bodies.
fn apply_joint_impulse(j: u32, jac: RowJacobian, impulse: f32, i: u32) {
    let jrec = joint_record(j);
    let ba = model_u32(jrec);
    let bb = model_u32(jrec + 1u);
    let sa = body_slot(ba) + 7u;
    let sb = body_slot(bb) + 7u;
    let qa = body_orientation(ba, i);
    let qb = body_orientation(bb, i);
    state_set_vec3(sa, i, state_vec3(sa, i) + impulse * body_inverse_mass(ba, i) * jac.lin_a);
    state_set_vec3(sa + 3u, i, state_vec3(sa + 3u, i) + impulse * inverse_inertia_mul(qa, body_inverse_inertia(ba, i), jac.ang_a));
    state_set_vec3(sb, i, state_vec3(sb, i) + impulse * body_inverse_mass(bb, i) * jac.lin_b);
    state_set_vec3(sb + 3u, i, state_vec3(sb + 3u, i) + impulse * inverse_inertia_mul(qb, body_inverse_inertia(bb, i), jac.ang_b));
}

// An affine actuator's law record (see pack.rs): [n_terms, gain, bias0, bias1, ctrl_lo,
// ctrl_hi, force_lo, force_hi, activation, command_rate, activation_rate, act_lo, act_hi], then
// [joint, axis, coefficient] per term. The force is clamp(gain * drive + bias0 + bias1 *
// sum_t c_t q_t, force); joint t gets c_t times it. The drive is clamp(u, ctrl), or, when the
// law has an activation (its state slot, else NO_ACTIVATION), the activation at the step's
// start, as MuJoCo's force uses act before its update.
const AFFINE_LAW_HEAD: u32 = 13u;
const NO_ACTIVATION: u32 = 0xffffffffu;

struct AffineForce {
    u: f32,
    raw: f32,
    force: f32,
}

fn affine_force(law: u32, a: u32, i: u32) -> AffineForce {
    var length = 0.0;
    for (var t = 0u; t < model_u32(law); t++) {
        let term = law + AFFINE_LAW_HEAD + t * 3u;
        length += model_f32(term + 2u) * joint_axis(model_u32(term), model_u32(term + 1u), i).coordinate;
    }
    var out: AffineForce;
    // A tendon spring's record has a = n_commands: no command (its gain is 0).
    out.u = select(0.0, command(min(a, max(hdr.n_commands, 1u) - 1u), i), a < hdr.n_commands);
    let u = clamp(out.u, model_f32(law + 4u), model_f32(law + 5u));
    let activation = model_u32(law + 8u);
    let has_activation = activation != NO_ACTIVATION;
    let drive = select(u, state_get(select(0u, activation, has_activation), i), has_activation);
    out.raw = model_f32(law + 1u) * drive + model_f32(law + 2u) + model_f32(law + 3u) * length;
    out.force = clamp(out.raw, model_f32(law + 6u), model_f32(law + 7u));
    return out;
}

// A force record's transmission term t: a plain force actuator (law 0) has one, its own joint
// axis with coefficient 1; an affine one has its law's terms. One code path for both keeps the
// kernel small (lavapipe compiles every inlined copy).
struct ForceTerm {
    j: u32,
    k: u32,
    c: f32,
}

fn force_term(rec: u32, law: u32, t: u32) -> ForceTerm {
    let plain = law == 0u;
    let term = law + AFFINE_LAW_HEAD + t * 3u;
    var out: ForceTerm;
    out.j = select(model_u32(term), model_u32(rec + 1u), plain);
    out.k = select(model_u32(term + 1u), model_u32(rec + 2u), plain);
    out.c = select(model_f32(term + 2u), 1.0, plain);
    return out;
}

// The actuator's force: clamp(command, +-max_force) for a plain force actuator, its law's
// otherwise. `law` is model data, the same in every instance: no divergence.
fn force_record_force(a: u32, law: u32, i: u32) -> AffineForce {
    if (law == 0u) {
        let max_force = param(hdr.p_actuator + a * 3u + 1u, i);
        var out: AffineForce;
        out.u = command(a, i);
        out.raw = out.u;
        out.force = clamp(out.u, -max_force, max_force);
        return out;
    }
    return affine_force(law, a, i);
}

fn force_actuators_forward(i: u32) {
    let dt = hdr.dt;
    for (var f = 0u; f < hdr.n_force; f++) {
        let rec = hdr.off_force + f * 4u;
        let a = model_u32(rec);
        let law = model_u32(rec + 3u);
        let force = force_record_force(a, law, i).force;
        let n = select(model_u32(law), 1u, law == 0u);
        for (var t = 0u; t < n; t++) {
            let term = force_term(rec, law, t);
            let ax = joint_axis(term.j, term.k, i);
            apply_joint_impulse(term.j, ax.jac, term.c * force * dt, i);
        }
    }
}

// ---- Adjoints.

fn servo_rows_adjoint(i: u32) {
    let dt = hdr.dt;
    // As joint_lock_rows_adjoint: a joint's frame, mass data and adjoint sums are shared by
    // its consecutive rows.
    var loaded = NO_JOINT;
    var joint: JointRowBodies;
    var acc: JointRowsAdjoint;
    for (var s_rev = 0u; s_rev < hdr.n_servo; s_rev++) {
        let s = hdr.n_servo - 1u - s_rev;
        let rec = hdr.off_servo + s * 4u;
        let a = model_u32(rec);
        let j = model_u32(rec + 1u);
        let k = model_u32(rec + 2u);
        if (j != loaded) {
            if (loaded != NO_JOINT) {
                joint_rows_adjoint_store(loaded, i, acc);
            }
            joint = joint_row_bodies(j, i);
            acc = joint_rows_adjoint_load(j, i);
            loaded = j;
        }
        let ax = joint_frame_axis(joint.frame, k);
        let velocity_servo = model_u32(rec + 3u) == 1u;
        let p = hdr.p_actuator + a * 3u;
        let gain = param(p, i);
        let max_velocity = param(p + 2u, i);
        let u = command(a, i);
        let w = row_write_adjoint_bodies(hdr.row_servo + s, i, ax.jac, joint.mass_a, joint.mass_b, 1.0, 0.0);
        let d = w.row;
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
        acc = joint_rows_adjoint_add(acc, w, joint_frame_axis_adjoint(joint.frame, j, k, d.jac, -d_raw * gain * position));
    }
    if (loaded != NO_JOINT) {
        joint_rows_adjoint_store(loaded, i, acc);
    }
}

// Adjoint of apply_joint_impulse for axis k of joint j: body parameters, orientations and
// the axis get their parts; returns the impulse's adjoint.
fn apply_joint_impulse_adjoint(j: u32, k: u32, impulse: f32, i: u32) -> f32 {
    let ax = joint_axis(j, k, i);
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
    joint_axis_adjoint(j, k, i, d_jac, 0.0);
    return d_impulse;
}

// Adjoint of affine_force given its forward values `f` and the force's adjoint.
fn affine_force_adjoint(law: u32, a: u32, i: u32, f: AffineForce, d_force: f32) {
    let d_raw = select(0.0, d_force, f.raw > model_f32(law + 6u) && f.raw < model_f32(law + 7u));
    let inside = f.u > model_f32(law + 4u) && f.u < model_f32(law + 5u);
    let activation = model_u32(law + 8u);
    if (activation != NO_ACTIVATION) {
        adj_add(hdr.adj_state + activation, i, d_raw * model_f32(law + 1u));
    } else if (a < hdr.n_commands) {
        command_adj_add(a, i, select(0.0, d_raw * model_f32(law + 1u), inside));
    }
    let d_length = d_raw * model_f32(law + 3u);
    var no_jac: RowJacobian;
    for (var t = 0u; t < model_u32(law); t++) {
        let term = law + AFFINE_LAW_HEAD + t * 3u;
        joint_axis_adjoint(model_u32(term), model_u32(term + 1u), i, no_jac, d_length * model_f32(term + 2u));
    }
}

fn force_actuators_adjoint(i: u32) {
    let dt = hdr.dt;
    for (var f_rev = 0u; f_rev < hdr.n_force; f_rev++) {
        let f = hdr.n_force - 1u - f_rev;
        let rec = hdr.off_force + f * 4u;
        let a = model_u32(rec);
        let law = model_u32(rec + 3u);
        let forward = force_record_force(a, law, i);
        let n = select(model_u32(law), 1u, law == 0u);
        var d_force = 0.0;
        for (var t_rev = 0u; t_rev < n; t_rev++) {
            let term = force_term(rec, law, n - 1u - t_rev);
            d_force += term.c * dt * apply_joint_impulse_adjoint(term.j, term.k, term.c * forward.force * dt, i);
        }
        if (law == 0u) {
            // force = clamp(u, -max_force, max_force)
            let p_max = hdr.p_actuator + a * 3u + 1u;
            let max_force = param(p_max, i);
            let u = forward.u;
            let above = max(u, -max_force);
            let d_above = select(0.0, d_force, above < max_force);
            let d_u = select(0.0, d_above, u > -max_force);
            command_adj_add(a, i, d_u);
            param_adj_add(p_max, i, (d_force - d_above) - (d_above - d_u));
        } else {
            affine_force_adjoint(law, a, i, forward, d_force);
        }
    }
}

// ---- Activations: after the solve, each activation moves to its value for the next step.

// The activation update of force record f: its law, actuator, command and the activation
// before its clamp.
struct ActivationUpdate {
    law: u32,
    a: u32,
    u: f32,
    raw: f32,
}

// Whether force record f's law has an activation (plain force actuators have no law).
fn force_record_activation(f: u32) -> u32 {
    let rec = hdr.off_force + f * 4u;
    let law = model_u32(rec + 3u);
    return select(model_u32(law + 8u), NO_ACTIVATION, law == 0u);
}

// act + dt * (command_rate * clamp(u, ctrl) - activation_rate * act), before its clamp.
fn activation_update(f: u32, act: f32, i: u32) -> ActivationUpdate {
    let rec = hdr.off_force + f * 4u;
    var out: ActivationUpdate;
    out.law = model_u32(rec + 3u);
    out.a = model_u32(rec);
    out.u = command(out.a, i);
    let u = clamp(out.u, model_f32(out.law + 4u), model_f32(out.law + 5u));
    out.raw = act + hdr.dt * (model_f32(out.law + 9u) * u - model_f32(out.law + 10u) * act);
    return out;
}

fn actuator_activation_forward(i: u32) {
    for (var f = 0u; f < hdr.n_force; f++) {
        let slot = force_record_activation(f);
        if (slot == NO_ACTIVATION) {
            continue;
        }
        let up = activation_update(f, state_get(slot, i), i);
        state_set(slot, i, clamp(up.raw, model_f32(up.law + 11u), model_f32(up.law + 12u)));
    }
}

// Runs between the position update's adjoint and the solve's: the activation before its update
// is read from the state saved after the force actuators (adj_saved), which the solve leaves.
fn actuator_activation_adjoint(i: u32) {
    for (var f_rev = 0u; f_rev < hdr.n_force; f_rev++) {
        let f = hdr.n_force - 1u - f_rev;
        let slot = force_record_activation(f);
        if (slot == NO_ACTIVATION) {
            continue;
        }
        let up = activation_update(f, adj_get(hdr.adj_saved + slot, i), i);
        let g = adj_get(hdr.adj_state + slot, i);
        let d_raw = select(0.0, g, up.raw > model_f32(up.law + 11u) && up.raw < model_f32(up.law + 12u));
        let inside = up.u > model_f32(up.law + 4u) && up.u < model_f32(up.law + 5u);
        command_adj_add(up.a, i, select(0.0, d_raw * hdr.dt * model_f32(up.law + 9u), inside));
        adj_set(hdr.adj_state + slot, i, d_raw * (1.0 - hdr.dt * model_f32(up.law + 10u)));
    }
}
