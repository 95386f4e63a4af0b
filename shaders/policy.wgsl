// Neural policies inside the rollout: observations from the state, batched dense layers,
// commands for the step; and the adjoint of each, with deterministic gradient reductions.
//
// Activations and deltas are per-instance arrays (instance-blocked as in common.wgsl, width
// `layer.activation_width`) holding the
// observation vector at offset 0 and each layer's output after it. Parameters are shared:
// for each layer W (out x in, row-major) then b (out), then the optional skip matrix from the
// observation to the output (out x observations). Weight gradients are sums over instances in
// instance order inside one invocation per weight (no atomics), so a batch gives the same bits
// however it is chunked.

struct Layer {
    in_size: u32, out_size: u32, w_offset: u32, b_offset: u32,
    x_offset: u32, y_offset: u32, activation: u32, in_activation: u32,
    skip_offset: u32, skip_out_offset: u32, skip_out_size: u32, is_last: u32,
    has_bias: u32, n_sensors: u32, skip_in_size: u32, activation_width: u32,
    // The last layer: where in `policy_params` the action noise's [std, window key] lie
    // (0xffffffff: none).
    noise_offset: u32, pad_a: u32, pad_b: u32, pad_c: u32,
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

fn act_get(k: u32, i: u32) -> f32 { return activations[instance_index(layer.activation_width, k, i)]; }
fn act_set(k: u32, i: u32, v: f32) { activations[instance_index(layer.activation_width, k, i)] = v; }
fn delta_get(k: u32, i: u32) -> f32 { return deltas[instance_index(layer.activation_width, k, i)]; }
fn delta_set(k: u32, i: u32, v: f32) { deltas[instance_index(layer.activation_width, k, i)] = v; }
fn sensor_word(s: u32, k: u32) -> u32 { return sensors[s * SENSOR_LEN + k]; }
fn sensor_float(s: u32, k: u32) -> f32 { return bitcast<f32>(sensors[s * SENSOR_LEN + k]); }

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
                let rec = hdr.off_contact + index * CONTACT_RECORD_LEN;
                let b = model_u32(rec);
                let centre = body_position(b, i) + quat_rotate(body_orientation(b, i), model_vec3(rec + 1u));
                let gap = centre.z - model_f32(rec + 4u);
                act_set(out, i, select(0.0, 1.0, gap < sensor_float(s, 4u)));
            }
        }
    }
}

// The exploration noise added to output `o`'s command of instance `i` at this step:
// std * N(0, 1), the normal drawn (Box-Muller) from a hash of (window key, instance, step,
// output), so a resumed run draws the same. The instance is its index in the whole batch
// (`hdr.first_instance`: the chunk's offset), so that chunks draw different noise and a chunked
// batch the same as the whole one. It depends on no parameter, hence the adjoint:
// a command's adjoint is its output's, unchanged (policy_gather_command_adjoint). With std 0
// the command is the output itself (the normal is always finite). Mirrored by
// `action_noise_twin` (src/engine/twin/policy.rs).
fn noise_hash(x: u32) -> u32 {
    let h = x * 747796405u + 2891336453u;
    let w = ((h >> ((h >> 28u) + 4u)) ^ h) * 277803737u;
    return (w >> 22u) ^ w;
}

fn action_noise(o: u32, i: u32, info: Layer) -> f32 {
    if (info.noise_offset == 0xffffffffu) {
        return 0.0;
    }
    let spread = policy_params[info.noise_offset];
    let key = u32(policy_params[info.noise_offset + 1u]);
    let h = noise_hash(key ^ noise_hash((hdr.first_instance + i) ^ noise_hash(hdr.command_base_step * hdr.n_commands + o)));
    let h2 = noise_hash(h ^ 0x9e3779b9u);
    let u1 = (f32(h >> 8u) + 1.0) / 16777216.0;
    let u2 = f32(h2 >> 8u) / 16777216.0;
    return spread * (sqrt(-2.0 * log(u1)) * cos(6.2831853 * u2));
}

// One output of a dense layer for one instance (the fused kernels); the last layer also
// writes the command (plus the exploration noise).
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
        command_set_slot(hdr.command_base_step * hdr.n_commands + o, i, y + action_noise(o, i, layer));
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

// The kernels below keep their accumulators in vectors and load their operands in explicitly
// unrolled groups (no loop over a private array), so that they stay in registers.

// Eight values from a per-instance array (rows `row0 ..`, clamped to `last`) or from the
// parameters; `.lo` holds the first four.
struct Eight { lo: vec4<f32>, hi: vec4<f32>, }

// policy_params[base + min(r0 + r, last) * stride] for r < 4.
fn params4(base: u32, stride: u32, r0: u32, last: u32) -> vec4<f32> {
    return vec4<f32>(policy_params[base + min(r0, last) * stride],
                     policy_params[base + min(r0 + 1u, last) * stride],
                     policy_params[base + min(r0 + 2u, last) * stride],
                     policy_params[base + min(r0 + 3u, last) * stride]);
}

fn params8(base: u32, stride: u32, r0: u32, last: u32) -> Eight {
    return Eight(params4(base, stride, r0, last), params4(base, stride, r0 + 4u, last));
}

fn deltas8(row0: u32, last: u32, i: u32) -> Eight {
    return Eight(
        vec4<f32>(delta_get(min(row0, last), i), delta_get(min(row0 + 1u, last), i),
                  delta_get(min(row0 + 2u, last), i), delta_get(min(row0 + 3u, last), i)),
        vec4<f32>(delta_get(min(row0 + 4u, last), i), delta_get(min(row0 + 5u, last), i),
                  delta_get(min(row0 + 6u, last), i), delta_get(min(row0 + 7u, last), i)));
}

fn pick8(v: Eight, r: u32) -> f32 {
    return select(v.hi[r & 3u], v.lo[r & 3u], r < 4u);
}

// Activations of rows `row` for the four instances `ii`.
fn acts4(row: u32, ii: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(act_get(row, ii.x), act_get(row, ii.y), act_get(row, ii.z), act_get(row, ii.w));
}

fn deltas4(row: u32, ii: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(delta_get(row, ii.x), delta_get(row, ii.y), delta_get(row, ii.z), delta_get(row, ii.w));
}

// One 4 x 4 block: acc_r[c] for output (or input) r and instance c.
struct Block4 { r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32>, }

fn block_add(acc: Block4, w: vec4<f32>, x: vec4<f32>) -> Block4 {
    return Block4(acc.r0 + w.x * x, acc.r1 + w.y * x, acc.r2 + w.z * x, acc.r3 + w.w * x);
}

fn block_row(acc: Block4, r: u32) -> vec4<f32> {
    return select(select(acc.r3, acc.r2, r == 2u), select(acc.r1, acc.r0, r == 0u), r < 2u);
}

// Forward: y[o, i] = act(b[o] + sum_k W[o, k] x[k, i] (+ skip[o, :] . obs[:, i])).
fn dense_forward_block(ib: u32, ob: u32) {
    let i0 = ib * BLOCK;
    let o0 = ob * BLOCK;
    if (i0 >= hdr.n_instances || o0 >= layer.out_size) {
        return;
    }
    let ii = block_rows(i0, hdr.n_instances);
    let last_row = layer.out_size - 1u;
    let bias = select(vec4<f32>(0.0), params4(layer.b_offset, 1u, o0, last_row), layer.has_bias == 1u);
    var acc = Block4(vec4<f32>(bias.x), vec4<f32>(bias.y), vec4<f32>(bias.z), vec4<f32>(bias.w));
    for (var k = 0u; k < layer.in_size; k++) {
        let w = params4(layer.w_offset + k, layer.in_size, o0, last_row);
        acc = block_add(acc, w, acts4(layer.x_offset + k, ii));
    }
    if (layer.is_last == 1u && layer.skip_offset != 0xffffffffu) {
        for (var k = 0u; k < layer.skip_in_size; k++) {
            let w = params4(layer.skip_offset + k, layer.skip_in_size, o0, last_row);
            acc = block_add(acc, w, acts4(k, ii));
        }
    }
    for (var r = 0u; r < min(BLOCK, layer.out_size - o0); r++) {
        let z = block_row(acc, r);
        for (var c = 0u; c < min(BLOCK, hdr.n_instances - i0); c++) {
            dense_forward_store(o0 + r, i0 + c, z[c]);
        }
    }
}

fn dense_forward_store(o: u32, i: u32, z: f32) {
    let y = activate(z, layer.activation);
    act_set(layer.y_offset + o, i, y);
    if (layer.is_last == 1u) {
        command_set_slot(hdr.command_base_step * hdr.n_commands + o, i, y + action_noise(o, i, layer));
    }
}

// Wide batches: each lane takes four instances, `lane + 32 c` for c < 4, of its workgroup's
// 128, and eight outputs shared by the whole workgroup, so the activations are read in
// consecutive runs across the lanes and every weight is one value for all of them.
const WIDE_OUTPUTS: u32 = 8u;
const WIDE_LANES: u32 = 32u;
const WIDE_INSTANCES: u32 = 128u;

// The four instances of a wide lane, clamped to the last one for reading.
fn wide_instances(wid: u32, lane: u32) -> vec4<u32> {
    let i0 = wid * WIDE_INSTANCES + lane;
    return vec4<u32>(i0, i0 + WIDE_LANES, i0 + 2u * WIDE_LANES, i0 + 3u * WIDE_LANES);
}

// acc[c] += w * x[c] for eight rows: `.lo`/`.hi` per instance.
struct Wide { a: Eight, b: Eight, c: Eight, d: Eight, }

fn eight_fma(acc: Eight, w: Eight, x: f32) -> Eight {
    return Eight(acc.lo + w.lo * x, acc.hi + w.hi * x);
}

fn wide_add(acc: Wide, w: Eight, x: vec4<f32>) -> Wide {
    return Wide(eight_fma(acc.a, w, x.x), eight_fma(acc.b, w, x.y), eight_fma(acc.c, w, x.z), eight_fma(acc.d, w, x.w));
}

fn wide_get(acc: Wide, c: u32, r: u32) -> f32 {
    switch c {
        case 0u: { return pick8(acc.a, r); }
        case 1u: { return pick8(acc.b, r); }
        case 2u: { return pick8(acc.c, r); }
        default: { return pick8(acc.d, r); }
    }
}

@compute @workgroup_size(32)
fn dense_forward_wide(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let ii = wide_instances(wid.x, lid.x);
    let o0 = wid.y * WIDE_OUTPUTS;
    if (ii.x >= hdr.n_instances) {
        return;
    }
    let read = min(ii, vec4<u32>(hdr.n_instances - 1u));
    let last_row = layer.out_size - 1u;
    var bias = Eight(vec4<f32>(0.0), vec4<f32>(0.0));
    if (layer.has_bias == 1u) {
        bias = params8(layer.b_offset, 1u, o0, last_row);
    }
    var acc = Wide(bias, bias, bias, bias);
    for (var k = 0u; k < layer.in_size; k++) {
        let w = params8(layer.w_offset + k, layer.in_size, o0, last_row);
        acc = wide_add(acc, w, acts4(layer.x_offset + k, read));
    }
    if (layer.is_last == 1u && layer.skip_offset != 0xffffffffu) {
        for (var k = 0u; k < layer.skip_in_size; k++) {
            let w = params8(layer.skip_offset + k, layer.skip_in_size, o0, last_row);
            acc = wide_add(acc, w, acts4(k, read));
        }
    }
    for (var c = 0u; c < 4u; c++) {
        if (ii[c] < hdr.n_instances) {
            for (var r = 0u; r < min(WIDE_OUTPUTS, layer.out_size - o0); r++) {
                dense_forward_store(o0 + r, ii[c], wide_get(acc, c, r));
            }
        }
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
    let last_col = layer.in_size - 1u;
    var acc = Block4(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var o = 0u; o < layer.out_size; o++) {
        let w = params4(layer.w_offset + o * layer.in_size, 1u, k0, last_col);
        acc = block_add(acc, w, deltas4(layer.y_offset + o, ii));
    }
    if (layer.x_offset == 0u && layer.skip_offset != 0xffffffffu) {
        for (var o = 0u; o < layer.skip_out_size; o++) {
            let w = params4(layer.skip_offset + o * layer.in_size, 1u, k0, last_col);
            acc = block_add(acc, w, deltas4(layer.skip_out_offset + o, ii));
        }
    }
    for (var r = 0u; r < min(BLOCK, layer.in_size - k0); r++) {
        let d = block_row(acc, r);
        let row = layer.x_offset + k0 + r;
        for (var c = 0u; c < min(BLOCK, hdr.n_instances - i0); c++) {
            delta_set(row, i0 + c, d[c] * activation_slope(act_get(row, i0 + c), layer.in_activation));
        }
    }
}

// Wide batches, arranged as in dense_forward_wide: eight inputs per workgroup, four instances
// per lane.
@compute @workgroup_size(32)
fn dense_backward_wide(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let ii = wide_instances(wid.x, lid.x);
    let k0 = wid.y * WIDE_OUTPUTS;
    if (ii.x >= hdr.n_instances) {
        return;
    }
    let read = min(ii, vec4<u32>(hdr.n_instances - 1u));
    let last_col = layer.in_size - 1u;
    let zero = Eight(vec4<f32>(0.0), vec4<f32>(0.0));
    var acc = Wide(zero, zero, zero, zero);
    for (var o = 0u; o < layer.out_size; o++) {
        let w = params8(layer.w_offset + o * layer.in_size, 1u, k0, last_col);
        acc = wide_add(acc, w, deltas4(layer.y_offset + o, read));
    }
    if (layer.x_offset == 0u && layer.skip_offset != 0xffffffffu) {
        for (var o = 0u; o < layer.skip_out_size; o++) {
            let w = params8(layer.skip_offset + o * layer.in_size, 1u, k0, last_col);
            acc = wide_add(acc, w, deltas4(layer.skip_out_offset + o, read));
        }
    }
    for (var c = 0u; c < 4u; c++) {
        if (ii[c] < hdr.n_instances) {
            for (var r = 0u; r < min(WIDE_OUTPUTS, layer.in_size - k0); r++) {
                let row = layer.x_offset + k0 + r;
                let slope = activation_slope(act_get(row, ii[c]), layer.in_activation);
                delta_set(row, ii[c], wide_get(acc, c, r) * slope);
            }
        }
    }
}

@compute @workgroup_size(64)
fn dense_backward_narrow(@builtin(global_invocation_id) gid: vec3<u32>) {
    dense_backward_block(gid.y, gid.x);
}

// Gradients of the weights W[o, k] (k < in) and biases (k == in): the running totals plus
// sum_i delta[o, i] x[k, i], added in instance order, so a batch gives the same bits however it
// is chunked. Each lane takes one input k and sixteen outputs shared by its workgroup (so the
// deltas are one value for all lanes); no atomics.
const WEIGHT_OUTPUTS: u32 = 16u;

@compute @workgroup_size(64)
fn dense_weight_gradient(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let k = wid.x * 64u + lid.x;
    let o0 = wid.y * WEIGHT_OUTPUTS;
    let n_k = layer.in_size + layer.has_bias;
    if (k >= n_k) {
        return;
    }
    let is_bias = k == layer.in_size;
    // The bias column's input is 1; its reads stay on the last input row.
    let x_row = layer.x_offset + min(k, layer.in_size - 1u);
    let last_row = layer.out_size - 1u;
    var lo = Eight(vec4<f32>(0.0), vec4<f32>(0.0));
    var hi = lo;
    for (var r = 0u; r < 4u; r++) {
        lo.lo[r] = policy_grads[weight_gradient_index(min(o0 + r, last_row), k)];
        lo.hi[r] = policy_grads[weight_gradient_index(min(o0 + 4u + r, last_row), k)];
        hi.lo[r] = policy_grads[weight_gradient_index(min(o0 + 8u + r, last_row), k)];
        hi.hi[r] = policy_grads[weight_gradient_index(min(o0 + 12u + r, last_row), k)];
    }
    for (var i = 0u; i < hdr.n_instances; i++) {
        let x = select(act_get(x_row, i), 1.0, is_bias);
        lo = eight_fma(lo, deltas8(layer.y_offset + o0, layer.y_offset + last_row, i), x);
        hi = eight_fma(hi, deltas8(layer.y_offset + o0 + 8u, layer.y_offset + last_row, i), x);
    }
    for (var r = 0u; r < min(WEIGHT_OUTPUTS, layer.out_size - o0); r++) {
        let total = select(pick8(hi, r - 8u), pick8(lo, r), r < 8u);
        policy_grads[weight_gradient_index(o0 + r, k)] = total;
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
