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

// One output of a dense layer for one instance (the fused kernels); the last layer also
// writes the command.
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

// ---- Batched dense layers for wide networks, as register-blocked matrix products: each
// invocation computes a BLOCK x BLOCK block of outputs, so every value loaded feeds BLOCK
// multiply-adds instead of one. Within a workgroup the first index runs over instance blocks
// (the `wide` kernels, for batches of at least 32 instances) or over output blocks (the
// `narrow` kernels, for smaller batches, where instance blocks would idle the lanes); the
// weights are the same for every instance, so lanes that share them read them together.

const BLOCK: u32 = 4u;

// Rows `base .. base + BLOCK` of a per-instance array, clamped to the last valid row so that a
// partial block reads real memory; the clamped lanes' results are never written.
fn block_rows(base: u32, count: u32) -> vec4<u32> {
    let last = max(count, 1u) - 1u;
    return min(vec4<u32>(base, base + 1u, base + 2u, base + 3u), vec4<u32>(last));
}

// Forward: y[o, i] = act(b[o] + sum_k W[o, k] x[k, i] (+ skip[o, :] . obs[:, i])).
fn dense_forward_block(ib: u32, ob: u32) {
    let i0 = ib * BLOCK;
    let o0 = ob * BLOCK;
    if (i0 >= hdr.n_instances || o0 >= layer.out_size) {
        return;
    }
    let ii = block_rows(i0, hdr.n_instances);
    let oo = block_rows(o0, layer.out_size);
    var acc: array<vec4<f32>, 4>;
    for (var r = 0u; r < BLOCK; r++) {
        acc[r] = vec4<f32>(select(0.0, policy_params[layer.b_offset + oo[r]], layer.has_bias == 1u));
    }
    for (var k = 0u; k < layer.in_size; k++) {
        let row = layer.x_offset + k;
        let x = vec4<f32>(act_get(row, ii.x), act_get(row, ii.y), act_get(row, ii.z), act_get(row, ii.w));
        for (var r = 0u; r < BLOCK; r++) {
            acc[r] += policy_params[layer.w_offset + oo[r] * layer.in_size + k] * x;
        }
    }
    if (layer.is_last == 1u && layer.skip_offset != 0xffffffffu) {
        for (var k = 0u; k < layer.skip_in_size; k++) {
            let x = vec4<f32>(act_get(k, ii.x), act_get(k, ii.y), act_get(k, ii.z), act_get(k, ii.w));
            for (var r = 0u; r < BLOCK; r++) {
                acc[r] += policy_params[layer.skip_offset + oo[r] * layer.skip_in_size + k] * x;
            }
        }
    }
    for (var r = 0u; r < min(BLOCK, layer.out_size - o0); r++) {
        for (var c = 0u; c < min(BLOCK, hdr.n_instances - i0); c++) {
            let y = activate(acc[r][c], layer.activation);
            act_set(layer.y_offset + o0 + r, i0 + c, y);
            if (layer.is_last == 1u) {
                commands[(hdr.command_base_step * hdr.n_commands + o0 + r) * hdr.n_instances + i0 + c] = y;
            }
        }
    }
}

// Wide batches: each lane takes instances `lane` and `lane + 64` of its workgroup's 128 and
// eight outputs shared by the whole workgroup, so the activations are read in consecutive
// runs across the lanes and every weight is one value for all of them.
const WIDE_OUTPUTS: u32 = 8u;
const WIDE_GROUP: u32 = 64u;

@compute @workgroup_size(64)
fn dense_forward_wide(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i_a = wid.x * 2u * WIDE_GROUP + lid.x;
    let i_b = i_a + WIDE_GROUP;
    let o0 = wid.y * WIDE_OUTPUTS;
    if (i_a >= hdr.n_instances) {
        return;
    }
    let i_b_read = min(i_b, hdr.n_instances - 1u);
    let last_row = layer.out_size - 1u;
    var acc_a: array<f32, 8>;
    var acc_b: array<f32, 8>;
    for (var r = 0u; r < WIDE_OUTPUTS; r++) {
        let bias = select(0.0, policy_params[layer.b_offset + min(o0 + r, last_row)], layer.has_bias == 1u);
        acc_a[r] = bias;
        acc_b[r] = bias;
    }
    for (var k = 0u; k < layer.in_size; k++) {
        let xa = act_get(layer.x_offset + k, i_a);
        let xb = act_get(layer.x_offset + k, i_b_read);
        for (var r = 0u; r < WIDE_OUTPUTS; r++) {
            let w = policy_params[layer.w_offset + min(o0 + r, last_row) * layer.in_size + k];
            acc_a[r] += w * xa;
            acc_b[r] += w * xb;
        }
    }
    if (layer.is_last == 1u && layer.skip_offset != 0xffffffffu) {
        for (var k = 0u; k < layer.skip_in_size; k++) {
            let xa = act_get(k, i_a);
            let xb = act_get(k, i_b_read);
            for (var r = 0u; r < WIDE_OUTPUTS; r++) {
                let w = policy_params[layer.skip_offset + min(o0 + r, last_row) * layer.skip_in_size + k];
                acc_a[r] += w * xa;
                acc_b[r] += w * xb;
            }
        }
    }
    for (var r = 0u; r < min(WIDE_OUTPUTS, layer.out_size - o0); r++) {
        dense_forward_store(o0 + r, i_a, acc_a[r]);
        if (i_b < hdr.n_instances) {
            dense_forward_store(o0 + r, i_b, acc_b[r]);
        }
    }
}

fn dense_forward_store(o: u32, i: u32, z: f32) {
    let y = activate(z, layer.activation);
    act_set(layer.y_offset + o, i, y);
    if (layer.is_last == 1u) {
        commands[(hdr.command_base_step * hdr.n_commands + o) * hdr.n_instances + i] = y;
    }
}

@compute @workgroup_size(64)
fn dense_forward_narrow(@builtin(global_invocation_id) gid: vec3<u32>) {
    dense_forward_block(gid.y, gid.x);
}

// Input deltas: d[k, i] = slope(x[k, i]) * (sum_o W[o, k] delta[o, i] (+ skip^T delta_out)).
fn dense_backward_block(ib: u32, kb: u32) {
    let i0 = ib * BLOCK;
    let k0 = kb * BLOCK;
    if (i0 >= hdr.n_instances || k0 >= layer.in_size) {
        return;
    }
    let ii = block_rows(i0, hdr.n_instances);
    let kk = block_rows(k0, layer.in_size);
    var acc: array<vec4<f32>, 4>;
    for (var o = 0u; o < layer.out_size; o++) {
        let row = layer.y_offset + o;
        let d = vec4<f32>(delta_get(row, ii.x), delta_get(row, ii.y), delta_get(row, ii.z), delta_get(row, ii.w));
        let w = layer.w_offset + o * layer.in_size;
        for (var r = 0u; r < BLOCK; r++) {
            acc[r] += policy_params[w + kk[r]] * d;
        }
    }
    if (layer.x_offset == 0u && layer.skip_offset != 0xffffffffu) {
        for (var o = 0u; o < layer.skip_out_size; o++) {
            let row = layer.skip_out_offset + o;
            let d = vec4<f32>(delta_get(row, ii.x), delta_get(row, ii.y), delta_get(row, ii.z), delta_get(row, ii.w));
            let w = layer.skip_offset + o * layer.in_size;
            for (var r = 0u; r < BLOCK; r++) {
                acc[r] += policy_params[w + kk[r]] * d;
            }
        }
    }
    for (var r = 0u; r < min(BLOCK, layer.in_size - k0); r++) {
        for (var c = 0u; c < min(BLOCK, hdr.n_instances - i0); c++) {
            let row = layer.x_offset + k0 + r;
            delta_set(row, i0 + c, acc[r][c] * activation_slope(act_get(row, i0 + c), layer.in_activation));
        }
    }
}

// Wide batches, arranged as in dense_forward_wide: eight inputs per workgroup, two instances
// per lane.
@compute @workgroup_size(64)
fn dense_backward_wide(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i_a = wid.x * 2u * WIDE_GROUP + lid.x;
    let i_b = i_a + WIDE_GROUP;
    let k0 = wid.y * WIDE_OUTPUTS;
    if (i_a >= hdr.n_instances) {
        return;
    }
    let i_b_read = min(i_b, hdr.n_instances - 1u);
    let last_col = layer.in_size - 1u;
    var acc_a: array<f32, 8>;
    var acc_b: array<f32, 8>;
    for (var o = 0u; o < layer.out_size; o++) {
        let da = delta_get(layer.y_offset + o, i_a);
        let db = delta_get(layer.y_offset + o, i_b_read);
        let w = layer.w_offset + o * layer.in_size;
        for (var r = 0u; r < WIDE_OUTPUTS; r++) {
            let weight = policy_params[w + min(k0 + r, last_col)];
            acc_a[r] += weight * da;
            acc_b[r] += weight * db;
        }
    }
    if (layer.x_offset == 0u && layer.skip_offset != 0xffffffffu) {
        for (var o = 0u; o < layer.skip_out_size; o++) {
            let da = delta_get(layer.skip_out_offset + o, i_a);
            let db = delta_get(layer.skip_out_offset + o, i_b_read);
            let w = layer.skip_offset + o * layer.in_size;
            for (var r = 0u; r < WIDE_OUTPUTS; r++) {
                let weight = policy_params[w + min(k0 + r, last_col)];
                acc_a[r] += weight * da;
                acc_b[r] += weight * db;
            }
        }
    }
    for (var r = 0u; r < min(WIDE_OUTPUTS, layer.in_size - k0); r++) {
        let row = layer.x_offset + k0 + r;
        delta_set(row, i_a, acc_a[r] * activation_slope(act_get(row, i_a), layer.in_activation));
        if (i_b < hdr.n_instances) {
            delta_set(row, i_b, acc_b[r] * activation_slope(act_get(row, i_b), layer.in_activation));
        }
    }
}

@compute @workgroup_size(64)
fn dense_backward_narrow(@builtin(global_invocation_id) gid: vec3<u32>) {
    dense_backward_block(gid.y, gid.x);
}

// Gradients of the weights W[o, k] (k < in) and biases (k == in): the running totals plus
// sum_i delta[o, i] x[k, i], added in instance order, so a batch gives the same bits however it
// is chunked. Each lane takes one input k and eight outputs shared by its workgroup (so the
// deltas are one value for all lanes); no atomics.
@compute @workgroup_size(64)
fn dense_weight_gradient(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let k = wid.x * WIDE_GROUP + lid.x;
    let o0 = wid.y * WIDE_OUTPUTS;
    let n_k = layer.in_size + layer.has_bias;
    if (k >= n_k) {
        return;
    }
    let is_bias = k == layer.in_size;
    // The bias column's input is 1; its reads stay on the last input row.
    let x_row = layer.x_offset + min(k, layer.in_size - 1u);
    let last_row = layer.out_size - 1u;
    var acc: array<f32, 8>;
    for (var r = 0u; r < WIDE_OUTPUTS; r++) {
        acc[r] = policy_grads[weight_gradient_index(min(o0 + r, last_row), k)];
    }
    for (var i = 0u; i < hdr.n_instances; i++) {
        let x = select(act_get(x_row, i), 1.0, is_bias);
        for (var r = 0u; r < WIDE_OUTPUTS; r++) {
            acc[r] += delta_get(layer.y_offset + min(o0 + r, last_row), i) * x;
        }
    }
    for (var r = 0u; r < min(WIDE_OUTPUTS, layer.out_size - o0); r++) {
        policy_grads[weight_gradient_index(o0 + r, k)] = acc[r];
    }
}

fn weight_gradient_index(o: u32, k: u32) -> u32 {
    return select(layer.w_offset + o * layer.in_size + k, layer.b_offset + o, k == layer.in_size);
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
