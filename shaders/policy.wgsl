// Neural policies inside the rollout: observations from the state, batched dense layers,
// commands for the step; and the adjoint of each, with deterministic gradient reductions.
//
// Activations and deltas are per-instance arrays (slot-major, instance innermost) holding the
// observation vector at offset 0 and each layer's output after it. Parameters are shared:
// for each layer W (out x in, row-major) then b (out), then the optional skip matrix from the
// observation to the output (out x observations). Weight gradients are sums over instances in
// instance order inside one invocation per weight (no atomics), so a batch gives the same bits
// however it is chunked.

struct Layer {
    in_size: u32, out_size: u32, w_offset: u32, b_offset: u32,
    x_offset: u32, y_offset: u32, activation: u32, in_activation: u32,
    skip_offset: u32, skip_out_offset: u32, skip_out_size: u32, is_last: u32,
    has_bias: u32, n_sensors: u32, skip_in_size: u32, pad0: u32,
}

// Sensor records: [kind, index, axis, out_offset, f0, f1, f2, f3].
//   0 joint coordinate, 1 joint speed (axis `axis` of joint `index`), 2 body position,
//   3 body linear velocity, 4 body orientation (4 values), 5 body angular velocity,
//   6 clock: sin and cos of 2 pi f0 t, 7 constant (f0, f1, f2), 8 contact flag of ground
//   contact point `index` (1 when its gap is below f0; no gradient).
@group(0) @binding(9) var<storage, read> policy_params: array<f32>;
@group(0) @binding(10) var<storage, read_write> policy_grads: array<f32>;
@group(0) @binding(11) var<storage, read_write> activations: array<f32>;
@group(0) @binding(12) var<storage, read_write> deltas: array<f32>;
@group(0) @binding(13) var<storage, read> sensors: array<u32>;
@group(0) @binding(14) var<uniform> layer: Layer;
// Every layer, for the fused kernels that run the whole network in one invocation.
@group(0) @binding(15) var<storage, read> layer_table: array<Layer>;

fn act_get(k: u32, i: u32) -> f32 { return activations[k * hdr.n_instances + i]; }
fn act_set(k: u32, i: u32, v: f32) { activations[k * hdr.n_instances + i] = v; }
fn delta_get(k: u32, i: u32) -> f32 { return deltas[k * hdr.n_instances + i]; }
fn delta_set(k: u32, i: u32, v: f32) { deltas[k * hdr.n_instances + i] = v; }
fn sensor_word(s: u32, k: u32) -> u32 { return sensors[s * 8u + k]; }
fn sensor_float(s: u32, k: u32) -> f32 { return bitcast<f32>(sensors[s * 8u + k]); }

fn activate(z: f32, kind: u32) -> f32 {
    return select(select(z, max(z, 0.0), kind == 1u), tanh(z), kind == 2u);
}

// Derivative of an activation from its output.
fn activation_slope(a: f32, kind: u32) -> f32 {
    return select(select(1.0, select(0.0, 1.0, a > 0.0), kind == 1u), 1.0 - a * a, kind == 2u);
}

fn clock_phase(s: u32) -> f32 {
    return 6.2831853 * sensor_float(s, 4u) * f32(hdr.command_base_step) * hdr.dt;
}

@compute @workgroup_size(64)
fn policy_observe_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= hdr.n_instances) {
        return;
    }
    observe(i, layer.n_sensors);
}

fn observe(i: u32, n_sensors: u32) {
    step_in_dispatch = 0u;
    for (var s = 0u; s < n_sensors; s++) {
        let kind = sensor_word(s, 0u);
        let index = sensor_word(s, 1u);
        let out = sensor_word(s, 3u);
        let slot = body_slot(index);
        switch kind {
            case 0u: { act_set(out, i, joint_axis(index, sensor_word(s, 2u), i).coordinate); }
            case 1u: {
                let ax = joint_axis(index, sensor_word(s, 2u), i);
                let rec = joint_record(index);
                let a = model_u32(rec);
                let b = model_u32(rec + 1u);
                act_set(out, i, dot(ax.jac.lin_a, body_velocity(a, i)) + dot(ax.jac.ang_a, body_angular_velocity(a, i))
                              + dot(ax.jac.lin_b, body_velocity(b, i)) + dot(ax.jac.ang_b, body_angular_velocity(b, i)));
            }
            case 2u, 3u, 5u: {
                let base = select(select(slot, slot + 7u, kind == 3u), slot + 10u, kind == 5u);
                let v = state_vec3(base, i);
                act_set(out, i, v.x); act_set(out + 1u, i, v.y); act_set(out + 2u, i, v.z);
            }
            case 4u: {
                let q = body_orientation(index, i);
                act_set(out, i, q.x); act_set(out + 1u, i, q.y); act_set(out + 2u, i, q.z); act_set(out + 3u, i, q.w);
            }
            case 6u: {
                let phase = clock_phase(s);
                act_set(out, i, sin(phase)); act_set(out + 1u, i, cos(phase));
            }
            case 7u: {
                act_set(out, i, sensor_float(s, 4u)); act_set(out + 1u, i, sensor_float(s, 5u));
                act_set(out + 2u, i, sensor_float(s, 6u));
            }
            default: {
                let rec = hdr.off_contact + index * 8u;
                let b = model_u32(rec);
                let centre = body_position(b, i) + quat_rotate(body_orientation(b, i), model_vec3(rec + 1u));
                let gap = centre.z - model_f32(rec + 4u);
                act_set(out, i, select(0.0, 1.0, gap < sensor_float(s, 4u)));
            }
        }
    }
}

// One output of a dense layer for one instance; the last layer also writes the command.
@compute @workgroup_size(64)
fn dense_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= hdr.n_instances) {
        return;
    }
    dense_output(i, gid.y, layer);
}

fn dense_output(i: u32, o: u32, layer: Layer) {
    var z = select(0.0, policy_params[layer.b_offset + o], layer.has_bias == 1u);
    let row = layer.w_offset + o * layer.in_size;
    for (var k = 0u; k < layer.in_size; k++) {
        z += policy_params[row + k] * act_get(layer.x_offset + k, i);
    }
    // The skip path from the observation enters the last layer.
    if (layer.is_last == 1u && layer.skip_offset != 0xffffffffu) {
        let srow = layer.skip_offset + o * layer.skip_in_size;
        for (var k = 0u; k < layer.skip_in_size; k++) {
            z += policy_params[srow + k] * act_get(k, i);
        }
    }
    let y = activate(z, layer.activation);
    act_set(layer.y_offset + o, i, y);
    if (layer.is_last == 1u) {
        commands[(hdr.command_base_step * hdr.n_commands + o) * hdr.n_instances + i] = y;
    }
}

// The output layer's delta is the adjoint of this step's commands.
@compute @workgroup_size(64)
fn policy_gather_command_adjoint(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let o = gid.y;
    if (i >= hdr.n_instances) {
        return;
    }
    delta_set(layer.y_offset + o, i, adj_get(hdr.adj_commands + o, i));
}

// Delta of one input of a layer: sum_o W[o, k] delta[o], times the input's activation slope.
// Layer 0 also adds the skip path into the observation's delta.
@compute @workgroup_size(64)
fn dense_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= hdr.n_instances) {
        return;
    }
    dense_input_delta(i, gid.y, layer);
}

fn dense_input_delta(i: u32, k: u32, layer: Layer) {
    var d = 0.0;
    for (var o = 0u; o < layer.out_size; o++) {
        d += policy_params[layer.w_offset + o * layer.in_size + k] * delta_get(layer.y_offset + o, i);
    }
    if (layer.x_offset == 0u && layer.skip_offset != 0xffffffffu) {
        for (var o = 0u; o < layer.skip_out_size; o++) {
            d += policy_params[layer.skip_offset + o * layer.in_size + k] * delta_get(layer.skip_out_offset + o, i);
        }
    }
    delta_set(layer.x_offset + k, i, d * activation_slope(act_get(layer.x_offset + k, i), layer.in_activation));
}

// Gradient of one weight (k < in) or the bias (k == in) of output o, summed over this chunk's
// instances in order onto the running total.
@compute @workgroup_size(64)
fn dense_weight_gradient(@builtin(global_invocation_id) gid: vec3<u32>) {
    let k = gid.x;
    let o = gid.y;
    if (k > layer.in_size || (k == layer.in_size && layer.has_bias == 0u)) {
        return;
    }
    let target_index = select(layer.w_offset + o * layer.in_size + k, layer.b_offset + o, k == layer.in_size);
    var total = policy_grads[target_index];
    for (var i = 0u; i < hdr.n_instances; i++) {
        let x = select(act_get(layer.x_offset + k, i), 1.0, k == layer.in_size);
        total += delta_get(layer.y_offset + o, i) * x;
    }
    policy_grads[target_index] = total;
}

// Adds d(observations)^T delta to the state adjoint.
@compute @workgroup_size(64)
fn policy_observe_adjoint(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= hdr.n_instances) {
        return;
    }
    observe_adjoint(i, layer.n_sensors);
}

fn observe_adjoint(i: u32, n_sensors: u32) {
    step_in_dispatch = 0u;
    var zero: RowJacobian;
    zero.lin_a = vec3<f32>(0.0); zero.ang_a = vec3<f32>(0.0);
    zero.lin_b = vec3<f32>(0.0); zero.ang_b = vec3<f32>(0.0);
    for (var s = 0u; s < n_sensors; s++) {
        let kind = sensor_word(s, 0u);
        let index = sensor_word(s, 1u);
        let out = sensor_word(s, 3u);
        let slot = body_slot(index);
        switch kind {
            case 0u: { joint_axis_adjoint(index, sensor_word(s, 2u), i, zero, delta_get(out, i)); }
            case 1u: {
                let axis = sensor_word(s, 2u);
                let ax = joint_axis(index, axis, i);
                let rec = joint_record(index);
                let a = model_u32(rec);
                let b = model_u32(rec + 1u);
                let d = delta_get(out, i);
                let sa = body_slot(a) + 7u;
                let sb = body_slot(b) + 7u;
                state_adj_add_vec3(sa, i, ax.jac.lin_a * d);
                state_adj_add_vec3(sa + 3u, i, ax.jac.ang_a * d);
                state_adj_add_vec3(sb, i, ax.jac.lin_b * d);
                state_adj_add_vec3(sb + 3u, i, ax.jac.ang_b * d);
                var dj: RowJacobian;
                dj.lin_a = body_velocity(a, i) * d; dj.ang_a = body_angular_velocity(a, i) * d;
                dj.lin_b = body_velocity(b, i) * d; dj.ang_b = body_angular_velocity(b, i) * d;
                joint_axis_adjoint(index, axis, i, dj, 0.0);
            }
            case 2u, 3u, 5u: {
                let base = select(select(slot, slot + 7u, kind == 3u), slot + 10u, kind == 5u);
                state_adj_add_vec3(base, i, vec3<f32>(delta_get(out, i), delta_get(out + 1u, i), delta_get(out + 2u, i)));
            }
            case 4u: {
                state_adj_add_quat(slot + 3u, i, vec4<f32>(delta_get(out, i), delta_get(out + 1u, i),
                                                           delta_get(out + 2u, i), delta_get(out + 3u, i)));
            }
            default: {}
        }
    }
}

// ---- Fused kernels: the whole network in one invocation per instance, for small networks
// (the host chooses them when every layer is narrow), saving a dispatch per layer. The weight
// gradients still go through dense_weight_gradient, which needs a sum over instances.

@compute @workgroup_size(64)
fn policy_forward_fused(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= hdr.n_instances) {
        return;
    }
    observe(i, layer.n_sensors);
    let n_layers = arrayLength(&layer_table);
    for (var l = 0u; l < n_layers; l++) {
        let info = layer_table[l];
        for (var o = 0u; o < info.out_size; o++) {
            dense_output(i, o, info);
        }
    }
}

@compute @workgroup_size(64)
fn policy_backward_fused(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= hdr.n_instances) {
        return;
    }
    let n_layers = arrayLength(&layer_table);
    let last = layer_table[n_layers - 1u];
    for (var o = 0u; o < last.out_size; o++) {
        delta_set(last.y_offset + o, i, adj_get(hdr.adj_commands + o, i));
    }
    for (var l_rev = 0u; l_rev < n_layers; l_rev++) {
        let info = layer_table[n_layers - 1u - l_rev];
        for (var k = 0u; k < info.in_size; k++) {
            dense_input_delta(i, k, info);
        }
    }
    observe_adjoint(i, layer.n_sensors);
}
