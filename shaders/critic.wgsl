// The actor-critic's value network on the GPU: a dense tanh MLP with one linear output, run
// per row of critic inputs (a robot's state at one step), with its adjoint: the input gradient
// dV/dx (the actor's final-state seed) and the weight gradient of the squared-error regression.
// Standalone: it shares no bindings with the physics. The CPU reference is the host f64 `Mlp`
// (src/learn/shac/critic.rs).
//
// Per row, `units` holds every layer's output (the input first) and `deltas` the derivative of
// the output with respect to each unit's pre-activation (with respect to the input itself for
// the input units), unit-major with the row innermost (`array[unit * rows + row]`), so that
// neighbouring invocations of the per-row kernel touch neighbouring addresses. Parameters: per layer W (out x in, row-major) then b (out). Weight
// gradients are sums over rows in row order inside one invocation per parameter (no atomics),
// continuing the running sum already in `grads`, so a batch split into chunks of rows gives the
// bits of the whole batch.

struct Critic {
    rows: u32, mode: u32, n_layers: u32, n_units: u32,
    n_params: u32, n_inputs: u32, error_scale: f32, alpha: f32,
}

struct CriticLayer {
    in_size: u32, out_size: u32, w_offset: u32, b_offset: u32,
    x_unit: u32, y_unit: u32, pad0: u32, pad1: u32,
}

// Widest layer input (forward) or output (backward) whose units a row keeps in private memory
// while a layer reads them over and over: on a CPU Vulkan (lavapipe) a load from a storage
// buffer at an index that differs between invocations is a loop over the lanes, and a private
// array indexed by the loop counter is one vector load. Wider layers read the storage buffer,
// in the same order, so the bits are the same either way.
const CRITIC_CACHE: u32 = 256u;

// Modes of `critic_forward_backward`.
const MODE_VALUE: u32 = 0u;      // values only
const MODE_GRADIENT: u32 = 1u;   // values and dV/dx (deltas seeded with 1)
const MODE_REGRESSION: u32 = 2u; // seeded with error_scale * 2 (V - target); squared errors out

@group(0) @binding(0) var<uniform> critic: Critic;
@group(0) @binding(1) var<storage, read> critic_layers: array<CriticLayer>;
@group(0) @binding(2) var<storage, read_write> critic_params: array<f32>;
@group(0) @binding(3) var<storage, read_write> critic_grads: array<f32>;
@group(0) @binding(4) var<storage, read> critic_inputs: array<f32>;
@group(0) @binding(5) var<storage, read> critic_targets: array<f32>;
@group(0) @binding(6) var<storage, read_write> critic_units: array<f32>;
@group(0) @binding(7) var<storage, read_write> critic_deltas: array<f32>;
@group(0) @binding(8) var<storage, read_write> critic_values: array<f32>;
@group(0) @binding(9) var<storage, read_write> critic_errors: array<f32>;
@group(0) @binding(10) var<storage, read> critic_source: array<f32>;

fn unit_get(row: u32, u: u32) -> f32 { return critic_units[u * critic.rows + row]; }
fn unit_set(row: u32, u: u32, v: f32) { critic_units[u * critic.rows + row] = v; }
fn delta_get(row: u32, u: u32) -> f32 { return critic_deltas[u * critic.rows + row]; }
fn delta_set(row: u32, u: u32, v: f32) { critic_deltas[u * critic.rows + row] = v; }

// tanh of an argument clamped to +-20 (tanh is +-1 in f32 well before): some implementations
// compute it from exponentials that overflow to inf / inf = NaN for large arguments.
fn critic_tanh(z: f32) -> f32 {
    return tanh(clamp(z, -20.0, 20.0));
}

// One row: the forward pass, then (modes 1 and 2) the backward pass seeded at the output.
@compute @workgroup_size(64)
fn critic_forward_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.x;
    if (row >= critic.rows) {
        return;
    }
    for (var k = 0u; k < critic.n_inputs; k++) {
        unit_set(row, k, critic_inputs[row * critic.n_inputs + k]);
    }
    var value = 0.0;
    for (var l = 0u; l < critic.n_layers; l++) {
        let layer = critic_layers[l];
        let last = l + 1u == critic.n_layers;
        let cached = layer.in_size <= CRITIC_CACHE;
        var xs: array<f32, CRITIC_CACHE>;
        if (cached) {
            for (var k = 0u; k < layer.in_size; k++) {
                xs[k] = unit_get(row, layer.x_unit + k);
            }
        }
        for (var o = 0u; o < layer.out_size; o++) {
            var z = critic_params[layer.b_offset + o];
            let w = layer.w_offset + o * layer.in_size;
            if (cached) {
                for (var k = 0u; k < layer.in_size; k++) {
                    z += critic_params[w + k] * xs[k];
                }
            } else {
                for (var k = 0u; k < layer.in_size; k++) {
                    z += critic_params[w + k] * unit_get(row, layer.x_unit + k);
                }
            }
            let y = select(critic_tanh(z), z, last);
            unit_set(row, layer.y_unit + o, y);
            value = y;
        }
    }
    critic_values[row] = value;
    if (critic.mode == MODE_VALUE) {
        return;
    }
    var seed = 1.0;
    if (critic.mode == MODE_REGRESSION) {
        let e = value - critic_targets[row];
        critic_errors[row] = e * e;
        seed = critic.error_scale * 2.0 * e;
    }
    let out = critic_layers[critic.n_layers - 1u];
    delta_set(row, out.y_unit, seed);
    // The regression needs no dV/dx: its backward pass stops above the input layer.
    let lowest = select(0u, 1u, critic.mode == MODE_REGRESSION);
    for (var l = critic.n_layers; l > lowest; l--) {
        let layer = critic_layers[l - 1u];
        let cached = layer.out_size <= CRITIC_CACHE;
        var ds: array<f32, CRITIC_CACHE>;
        if (cached) {
            for (var o = 0u; o < layer.out_size; o++) {
                ds[o] = delta_get(row, layer.y_unit + o);
            }
        }
        for (var k = 0u; k < layer.in_size; k++) {
            var d = 0.0;
            if (cached) {
                for (var o = 0u; o < layer.out_size; o++) {
                    d += critic_params[layer.w_offset + o * layer.in_size + k] * ds[o];
                }
            } else {
                for (var o = 0u; o < layer.out_size; o++) {
                    d += critic_params[layer.w_offset + o * layer.in_size + k] * delta_get(row, layer.y_unit + o);
                }
            }
            // The input of a hidden layer is tanh's output a: the slope is 1 - a^2.
            let a = unit_get(row, layer.x_unit + k);
            delta_set(row, layer.x_unit + k, select(d * (1.0 - a * a), d, l == 1u));
        }
    }
}

// One parameter's gradient, summed over the rows in order onto what `critic_grads` holds.
@compute @workgroup_size(64)
fn critic_weight_gradient(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = gid.x;
    if (p >= critic.n_params) {
        return;
    }
    var l = 0u;
    for (var k = 0u; k < critic.n_layers; k++) {
        if (p >= critic_layers[k].w_offset) {
            l = k;
        }
    }
    let layer = critic_layers[l];
    let is_bias = p >= layer.b_offset;
    let r = select((p - layer.w_offset) / layer.in_size, p - layer.b_offset, is_bias);
    let k = select((p - layer.w_offset) % layer.in_size, 0u, is_bias);
    var acc = critic_grads[p];
    for (var row = 0u; row < critic.rows; row++) {
        let input = select(unit_get(row, layer.x_unit + k), 1.0, is_bias);
        acc += delta_get(row, layer.y_unit + r) * input;
    }
    critic_grads[p] = acc;
}

// The target network's Polyak averaging: target = alpha target + (1 - alpha) critic, with the
// target bound as `critic_params` and the critic as `critic_source`.
@compute @workgroup_size(64)
fn critic_target_average(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = gid.x;
    if (p >= critic.n_params) {
        return;
    }
    critic_params[p] = critic.alpha * critic_params[p] + (1.0 - critic.alpha) * critic_source[p];
}
