// Non-finite state detection, dispatched by the host after the step kernel: one invocation
// per instance scans its bodies' 13 state floats (position, orientation, linear and angular
// velocity) and records the first non-finite one. Standalone: it shares no declarations with
// the physics modules. CPU reference: `backdrive::finite_check::check_reference`.

struct CheckParams {
    // Instances in this chunk.
    n_instances: u32,
    // Bodies including the world at slot 0, which is never checked.
    n_bodies: u32,
    // Steps the preceding step dispatch ran.
    steps: u32,
    // Floats per instance of the state (instance-blocked as in common.wgsl's instance_index).
    state_len: u32,
}

@group(0) @binding(0) var<uniform> check: CheckParams;
@group(0) @binding(1) var<storage, read> check_state: array<f32>;
// Per instance, 4 words: steps checked so far, then (first non-finite step, body, component),
// the step being 0 while the state is finite.
@group(0) @binding(2) var<storage, read_write> check_record: array<u32>;

// By the bits: a compiler may assume floats are never NaN and fold `x != x` to false.
fn bits_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// common.wgsl's instance_index, over this module's own uniform.
fn state_index(slot: u32, i: u32) -> u32 {
    let lanes = min(INSTANCE_BLOCK, check.n_instances);
    return ((i / INSTANCE_BLOCK) * check.state_len + slot) * lanes + i % INSTANCE_BLOCK;
}

@compute @workgroup_size(64)
fn finite_check(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let n = check.n_instances;
    if (i >= n) {
        return;
    }
    let checked = check_record[i * 4u] + check.steps;
    check_record[i * 4u] = checked;
    if (check_record[i * 4u + 1u] != 0u) {
        return;
    }
    for (var b = 1u; b < check.n_bodies; b++) {
        for (var k = 0u; k < 13u; k++) {
            if (!bits_finite(check_state[state_index(b * 13u + k, i)])) {
                check_record[i * 4u + 1u] = checked;
                check_record[i * 4u + 2u] = b;
                check_record[i * 4u + 3u] = k;
                return;
            }
        }
    }
}
