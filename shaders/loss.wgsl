// Built-in loss terms, evaluated on the state after a step, and their adjoints.
//
// A term is a 12-word record: [kind, index, axis, when, weight, target xyzw, mask xyz].
//   kind 0: weight * sum_c mask_c (position_c - target_c)^2 of body `index`
//   kind 1: the same on the linear velocity       kind 2: on the angular velocity
//   kind 3: weight * (1 - (q . target)^2) on body `index`'s orientation
//   kind 4: weight * (coordinate - target_x)^2 of axis `axis` of joint `index`
//   kind 5: weight * (mask . position)            kind 6: weight * (mask . linear velocity)
//   kind 7: weight * (1 if target_x <= position_z <= target_y, else 0): a healthy bonus; a step
//           function of the state, so its adjoint is zero (none of the adjoint's cases fire)
//   kind 8: weight * sum_a command_a^2: the control cost of the step's commands (Ant-v5's
//           ctrl_cost); no state adjoint. Its command adjoint is added by loss_command_adjoint,
//           dispatched after step_adjoint: step_adjoint clears the commands' adjoint at its start
//           and the policy adjoint reads it right after, so loss_adjoint (which runs before the
//           step adjoint) cannot carry it.
//   when: bit 0 every step, bit 1 the last step of the rollout (loss_step == horizon).
// Per instance, loss_last_step[i] is the last loss step whose terms count: a robot whose episode
// ended (a termination) at the state after step t is paid up to t and nothing after, in the
// value and in every adjoint alike, so its gradient stops where its sum stops. f32 (exact for
// any horizon below 2^24); a huge value keeps every step.
// To add a term kind: add a branch-free case in loss_term_value and loss_term_adjoint, its
// twin in src/grad/loss.rs, and a variant of LossTerm; the finite-difference test covers it.

@group(0) @binding(7) var<storage, read> loss_terms: array<u32>;
@group(0) @binding(8) var<storage, read_write> loss_values: array<f32>;
@group(0) @binding(9) var<storage, read> loss_last_step: array<f32>;

fn loss_word(t: u32, k: u32) -> u32 { return loss_terms[t * LOSS_TERM_LEN + k]; }
fn loss_float(t: u32, k: u32) -> f32 { return bitcast<f32>(loss_terms[t * LOSS_TERM_LEN + k]); }

// Whether instance i is paid for the current loss step (not after its last one).
fn loss_paid(i: u32) -> bool {
    return f32(hdr.loss_step) <= loss_last_step[i];
}

// Weight of term t at the current loss step (0 when it does not apply).
fn loss_term_weight(t: u32) -> f32 {
    let when = loss_word(t, 3u);
    let every = (when & 1u) != 0u;
    let last = (when & 2u) != 0u && hdr.loss_step == hdr.horizon;
    return loss_float(t, 4u) * (select(0.0, 1.0, every) + select(0.0, 1.0, last));
}

fn command_squared_norm(i: u32) -> f32 {
    var sum = 0.0;
    for (var a = 0u; a < hdr.n_commands; a++) {
        let c = command(a, i);
        sum += c * c;
    }
    return sum;
}

fn loss_term_value(t: u32, i: u32) -> f32 {
    let kind = loss_word(t, 0u);
    let index = loss_word(t, 1u);
    let target_vec = vec3<f32>(loss_float(t, 5u), loss_float(t, 6u), loss_float(t, 7u));
    let target_quat = vec4<f32>(target_vec, loss_float(t, 8u));
    let mask = vec3<f32>(loss_float(t, 9u), loss_float(t, 10u), loss_float(t, 11u));
    // Body terms read body `index` (already offset past the world by the host).
    let slot = body_slot(select(index, 0u, kind == 4u));
    let vector = select(select(state_vec3(slot, i), state_vec3(slot + 7u, i), kind == 1u || kind == 6u),
                        state_vec3(slot + 10u, i), kind == 2u);
    let diff = vector - target_vec;
    let squared = dot(mask * diff, diff);
    let linear = dot(mask, vector);
    let q = state_quat(slot + 3u, i);
    let alignment = dot(q, target_quat);
    var coordinate = 0.0;
    if (kind == 4u) {
        coordinate = joint_axis(index, loss_word(t, 2u), i).coordinate;
    }
    let joint_error = coordinate - target_vec.x;
    var value = squared;
    value = select(value, 1.0 - alignment * alignment, kind == 3u);
    value = select(value, joint_error * joint_error, kind == 4u);
    value = select(value, linear, kind == 5u || kind == 6u);
    let height = state_vec3(slot, i).z;
    let healthy = height >= target_vec.x && height <= target_vec.y;
    value = select(value, select(0.0, 1.0, healthy), kind == 7u);
    value = select(value, command_squared_norm(i), kind == 8u);
    return value;
}

fn loss_term_adjoint(t: u32, i: u32, weight: f32) {
    let kind = loss_word(t, 0u);
    let index = loss_word(t, 1u);
    let target_vec = vec3<f32>(loss_float(t, 5u), loss_float(t, 6u), loss_float(t, 7u));
    let target_quat = vec4<f32>(target_vec, loss_float(t, 8u));
    let mask = vec3<f32>(loss_float(t, 9u), loss_float(t, 10u), loss_float(t, 11u));
    let slot = body_slot(select(index, 0u, kind == 4u));
    let on_velocity = kind == 1u || kind == 6u;
    let vector = select(select(state_vec3(slot, i), state_vec3(slot + 7u, i), on_velocity),
                        state_vec3(slot + 10u, i), kind == 2u);
    let squared_kind = kind <= 2u;
    // Kinds 7 and 8 add no state adjoint (7 is a step function, 8 depends on commands only).
    let linear_kind = kind == 5u || kind == 6u;
    let d_vector = select(vec3<f32>(0.0), 2.0 * weight * mask * (vector - target_vec), squared_kind)
                 + select(vec3<f32>(0.0), weight * mask, linear_kind);
    let vector_slot = select(select(slot, slot + 7u, on_velocity), slot + 10u, kind == 2u);
    state_adj_add_vec3(vector_slot, i, select(vec3<f32>(0.0), d_vector, kind != 3u && kind != 4u));
    let q = state_quat(slot + 3u, i);
    let alignment = dot(q, target_quat);
    state_adj_add_quat(slot + 3u, i, select(vec4<f32>(0.0), -2.0 * weight * alignment * target_quat, kind == 3u));
    if (kind == 4u) {
        let axis = loss_word(t, 2u);
        let coordinate = joint_axis(index, axis, i).coordinate;
        var no_jacobian: RowJacobian;
        no_jacobian.lin_a = vec3<f32>(0.0);
        no_jacobian.ang_a = vec3<f32>(0.0);
        no_jacobian.lin_b = vec3<f32>(0.0);
        no_jacobian.ang_b = vec3<f32>(0.0);
        joint_axis_adjoint(index, axis, i, no_jacobian, 2.0 * weight * (coordinate - target_vec.x));
    }
}

@compute @workgroup_size(64)
fn loss_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= hdr.n_instances) {
        return;
    }
    var total = 0.0;
    for (var t = 0u; t < hdr.n_loss_terms; t++) {
        total += loss_term_weight(t) * loss_term_value(t, i);
    }
    // select, not a product: an unpaid step's value (a fallen robot's, possibly not finite) is
    // dropped, not multiplied by 0.
    loss_values[i] += select(0.0, total, loss_paid(i));
}

@compute @workgroup_size(64)
fn loss_adjoint(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= hdr.n_instances) {
        return;
    }
    let paid = loss_paid(i);
    for (var t = 0u; t < hdr.n_loss_terms; t++) {
        loss_term_adjoint(t, i, select(0.0, loss_term_weight(t), paid));
    }
}

// The control-cost terms' (kind 8) gradient with respect to this step's commands, added into the
// commands' adjoint after step_adjoint has cleared and filled it (see the header comment).
@compute @workgroup_size(64)
fn loss_command_adjoint(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= hdr.n_instances) {
        return;
    }
    var weight = 0.0;
    for (var t = 0u; t < hdr.n_loss_terms; t++) {
        weight += select(0.0, loss_term_weight(t), loss_word(t, 0u) == 8u);
    }
    weight = select(0.0, weight, loss_paid(i));
    for (var a = 0u; a < hdr.n_commands; a++) {
        command_adj_add(a, i, 2.0 * weight * command(a, i));
    }
}
